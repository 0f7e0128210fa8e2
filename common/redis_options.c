/*
 * Options and REDIS_URL parsing for the Redis client (the contract is in redis.h). Kept apart
 * from redis.c: pure string handling with no connection state, tested on its own.
 */
#include <ctype.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "redis.h"

#define MS_MAX 3600000 /* an hour: the bound for every duration option */

static int __attribute__((format(printf, 3, 4)))
fail(char *err, size_t errlen, const char *fmt, ...)
{
    if (err && errlen) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void cw_redis_options_init(struct cw_redis_options *opt)
{
    *opt = (struct cw_redis_options){.host = "127.0.0.1",
                                     .port = 6379,
                                     .command_timeout_ms = 2000,
                                     .connect_timeout_ms = 2000,
                                     .max_inflight = 10000,
                                     .backoff_min_ms = 100,
                                     .backoff_max_ms = 5000,
                                     .ping_interval_ms = 1000};
}

int cw_redis_options_check(const struct cw_redis_options *opt, char *err, size_t errlen)
{
    const struct {
        const char *name;
        int v, lo, hi;
    } b[] = {
        {"port", opt->port, 1, 65535},
        {"db", opt->db, 0, INT_MAX},
        {"command_timeout_ms", opt->command_timeout_ms, 1, MS_MAX},
        {"connect_timeout_ms", opt->connect_timeout_ms, 1, MS_MAX},
        {"max_inflight", opt->max_inflight, 1, 10000000},
        {"backoff_min_ms", opt->backoff_min_ms, 1, MS_MAX},
        {"backoff_max_ms", opt->backoff_max_ms, opt->backoff_min_ms, MS_MAX},
        {"ping_interval_ms", opt->ping_interval_ms, 1, MS_MAX},
    };
    if (!memchr(opt->host, '\0', sizeof opt->host) || !opt->host[0])
        return fail(err, errlen, "redis host is empty");
    if (!memchr(opt->username, '\0', sizeof opt->username) ||
        !memchr(opt->password, '\0', sizeof opt->password))
        return fail(err, errlen, "redis username or password is not terminated");
    for (size_t i = 0; i < sizeof b / sizeof b[0]; i++)
        if (b[i].v < b[i].lo || b[i].v > b[i].hi)
            return fail(err, errlen, "redis %s must be %d..%d (got %d)", b[i].name, b[i].lo,
                        b[i].hi, b[i].v);
    return 0;
}

/* %-decodes in[0..n) into out; -1 on a bad escape, an encoded NUL, or no room. */
static int pct_decode(char *out, size_t outsz, const char *in, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)in[i];
        if (c == '%') {
            char hex[3] = {i + 2 < n ? in[i + 1] : 0, i + 2 < n ? in[i + 2] : 0, 0};
            if (!isxdigit((unsigned char)hex[0]) || !isxdigit((unsigned char)hex[1]) ||
                !(c = (int)strtol(hex, NULL, 16)))
                return -1;
            i += 2;
        }
        if (o + 1 >= outsz) return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return 0;
}

/* Decimal digits only, within lo..hi. */
static int parse_int(const char *s, size_t n, long lo, long hi, int *out)
{
    long v = 0;
    if (n == 0 || n > 10) return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < lo || v > hi) return -1;
    *out = (int)v;
    return 0;
}

int cw_redis_parse_url(const char *url, struct cw_redis_options *opt, char *err, size_t errlen)
{
    struct cw_redis_options o = *opt;
    const char *p, *end, *at, *host, *host_end, *port;

    if (!url || strncmp(url, "redis://", 8) != 0)
        return fail(err, errlen,
                    url && !strncmp(url, "rediss://", 9)
                        ? "redis URL: rediss:// (TLS) is not supported"
                        : "redis URL must look like redis://[:password@]host:port[/db]");
    p = url + 8;
    end = p + strcspn(p, "/?#"); /* the authority: [userinfo@]host[:port] */
    o.username[0] = o.password[0] = '\0';
    if ((at = memrchr(p, '@', (size_t)(end - p)))) {
        const char *colon = memchr(p, ':', (size_t)(at - p));
        if (!colon) return fail(err, errlen, "redis URL: credentials must be [user]:password@");
        if (pct_decode(o.username, sizeof o.username, p, (size_t)(colon - p)) ||
            pct_decode(o.password, sizeof o.password, colon + 1, (size_t)(at - colon - 1)))
            return fail(err, errlen, "redis URL: user or password too long or badly %%-encoded");
        p = at + 1;
    }
    if (*p == '[') { /* [IPv6] */
        host = p + 1;
        if (!(host_end = memchr(host, ']', (size_t)(end - host))))
            return fail(err, errlen, "redis URL: unterminated [ in host");
        port = host_end + 1;
        if (port < end && *port != ':') return fail(err, errlen, "redis URL: junk after ]");
    } else {
        host = p;
        host_end = memchr(p, ':', (size_t)(end - p));
        if (!host_end) host_end = end;
        port = host_end;
    }
    if (host_end == host) return fail(err, errlen, "redis URL: missing host");
    if ((size_t)(host_end - host) >= sizeof o.host)
        return fail(err, errlen, "redis URL: host too long");
    memcpy(o.host, host, (size_t)(host_end - host));
    o.host[host_end - host] = '\0';
    o.port = 6379;
    if (port < end && parse_int(port + 1, (size_t)(end - port - 1), 1, 65535, &o.port))
        return fail(err, errlen, "redis URL: bad port \"%.*s\" (want 1..65535)",
                    (int)(end - port - 1 > 16 ? 16 : end - port - 1), port + 1);
    o.db = 0;
    if (*end == '/' && end[1] && parse_int(end + 1, strlen(end + 1), 0, INT_MAX, &o.db))
        return fail(err, errlen, "redis URL: bad db \"%.16s\" (want /0, /1, ...)", end + 1);
    if (*end == '?' || *end == '#')
        return fail(err, errlen, "redis URL: query strings and fragments are not supported");
    *opt = o;
    return 0;
}
