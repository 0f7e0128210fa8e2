/*
 * Real HTTP clients for tests/integration/gateway_faults.sh (fault injection against a running
 * casewire-gateway on 127.0.0.1). Plain sockets and poll(): no HTTP library between the test
 * and what the gateway really sends.
 *
 *   gwload post --port P --out PREFIX --clients N --count N --key-prefix K
 *               [--token T] [--site S] [--channel C] [--timeout-ms MS] [--case-deadline-s S]
 *               [--stop-file F] [--events]
 *       N client processes; client c posts cases with the keys K-c-0, K-c-1, ... (its share of
 *       --count), one at a time on a keep-alive connection. A connection error, a timeout, a
 *       5xx, 429 or 409 request_in_progress is retried with the same key and the same body
 *       (after Retry-After, capped at 2 s, else a backoff of 50 ms doubling to 1 s) until
 *       a 202 or the case's deadline. Every 202 is a line "key case_id case_no 202" in
 *       PREFIX.c, written at once (the test watches the files grow). With --events every
 *       attempt is also a line "start_ms end_ms key status retry_after" in PREFIX.c.events
 *       (wall-clock ms; status 0 = connection error, -1 = timeout; retry_after -1 = none).
 *       --stop-file: start no new case once F exists (--count is then an upper bound).
 *       Exit 0 only if every case started got its 202 and nothing unexpected was answered.
 *   gwload slow --port P --conns N --interval-ms MS --max-s S
 *       Slowloris: N connections each send one byte of a request every MS; even ones trickle
 *       the request line and headers, odd ones send the headers at once and trickle the body.
 *       Reports, per connection, how long after its first byte the server closed it (or that
 *       it did not within S seconds). Prints "all_first_bytes_sent" once every connection
 *       has sent its first byte, "closed i ms" as they close, then a summary.
 *   gwload cap --port P --conns N --wait-ms MS
 *       Connection cap: opens N connections, then sends GET /v1/sites on each; counts those
 *       answered within MS; closes the answered ones and counts how many of the rest are
 *       answered within 15 s after that.
 *   gwload verify --tail FILE --answers FILE [--answers FILE...] [--keys K:CLIENTS:COUNT]
 *       Reads casewire-tail's JSON lines of casewire.intake.v1 and the 202 answers, and prints
 *       key=value lines: every 202 on Kafka, one case id per Idempotency-Key (matched by the
 *       hash the gateway puts in CaseSubmitted.idempotency_key and by external_ref, which
 *       gwload sets to the key), one event id per case id, distinct case numbers, and with
 *       --keys every expected key answered 202.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- small helpers ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int64_t ms)
{
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static void die(const char *what)
{
    perror(what);
    exit(2);
}

/* Options: --name value pairs, looked up by name. */
struct opts {
    int argc;
    char **argv;
};

static const char *opt(const struct opts *o, const char *name, const char *def)
{
    for (int i = 0; i + 1 < o->argc; i++)
        if (strcmp(o->argv[i], name) == 0) return o->argv[i + 1];
    return def;
}

static bool flag(const struct opts *o, const char *name)
{
    for (int i = 0; i < o->argc; i++)
        if (strcmp(o->argv[i], name) == 0) return true;
    return false;
}

static long opt_num(const struct opts *o, const char *name, long def)
{
    const char *v = opt(o, name, NULL);
    if (!v) return def;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v) {
        fprintf(stderr, "gwload: %s wants a number, not \"%s\"\n", name, v);
        exit(2);
    }
    return n;
}

static int connect_loopback(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
            err != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* ---- a minimal HTTP/1.1 client: one request at a time on a keep-alive connection ---- */

struct http {
    int port;
    int fd; /* -1: not connected */
    char buf[256 * 1024];
    size_t len;
};

struct answer {
    int status;      /* HTTP status; 0 connection error; -1 timeout */
    int retry_after; /* seconds, -1 when absent */
    bool close;      /* the server will close the connection */
    char body[8192];
};

static void http_close(struct http *h)
{
    if (h->fd >= 0) close(h->fd);
    h->fd = -1;
    h->len = 0;
}

/* Writes all of data before the deadline. 0, or the failed status (0 or -1). */
static int send_all(struct http *h, const char *data, size_t len, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(h->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int64_t left = deadline - mono_ms();
            if (left <= 0) return -1;
            struct pollfd p = {h->fd, POLLOUT, 0};
            poll(&p, 1, (int)left);
            continue;
        }
        return 0;
    }
    return 1;
}

/* Reads more into h->buf before the deadline: >0 bytes, 0 closed/error, -1 timeout. */
static int read_more(struct http *h, int64_t deadline)
{
    if (h->len == sizeof h->buf) return 0;
    for (;;) {
        ssize_t n = recv(h->fd, h->buf + h->len, sizeof h->buf - h->len, 0);
        if (n > 0) {
            h->len += (size_t)n;
            return (int)n;
        }
        if (n == 0) return 0;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return 0;
        int64_t left = deadline - mono_ms();
        if (left <= 0) return -1;
        struct pollfd p = {h->fd, POLLIN, 0};
        poll(&p, 1, (int)left);
    }
}

static const char *find_header(const char *head, size_t headlen, const char *name, char *out,
                               size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + headlen;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            size_t vl = (size_t)(eol - v);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) vl--;
            if (vl >= outlen) vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        p = eol + 1;
    }
    return NULL;
}

/* One request and its answer. On any error the connection is dropped (a fresh one next). */
static void http_do(struct http *h, const char *request, size_t reqlen, int timeout_ms,
                    struct answer *a)
{
    int64_t deadline = mono_ms() + timeout_ms;
    a->status = 0;
    a->retry_after = -1;
    a->close = false;
    a->body[0] = '\0';
    if (h->fd < 0) {
        h->len = 0;
        if ((h->fd = connect_loopback(h->port, timeout_ms)) < 0) return;
    }
    int s = send_all(h, request, reqlen, deadline);
    if (s <= 0) {
        a->status = s;
        http_close(h);
        return;
    }
    char *eoh;
    for (;;) {
        h->buf[h->len < sizeof h->buf ? h->len : sizeof h->buf - 1] = '\0';
        if ((eoh = strstr(h->buf, "\r\n\r\n"))) break;
        int r = read_more(h, deadline);
        if (r <= 0) {
            a->status = r;
            http_close(h);
            return;
        }
    }
    size_t headlen = (size_t)(eoh - h->buf) + 4;
    int status = 0;
    if (sscanf(h->buf, "HTTP/1.%*d %d", &status) != 1 || status < 100) {
        fprintf(stderr, "gwload: not an HTTP answer: %.80s\n", h->buf);
        http_close(h);
        return;
    }
    char v[64];
    long clen = find_header(h->buf, headlen, "Content-Length", v, sizeof v) ? atol(v) : -1;
    if (find_header(h->buf, headlen, "Retry-After", v, sizeof v)) a->retry_after = atoi(v);
    a->close =
        find_header(h->buf, headlen, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0;
    if (clen < 0 || (size_t)clen > sizeof h->buf - headlen) {
        fprintf(stderr, "gwload: answer %d without a usable Content-Length\n", status);
        http_close(h);
        return;
    }
    while (h->len < headlen + (size_t)clen) {
        int r = read_more(h, deadline);
        if (r <= 0) {
            a->status = r;
            http_close(h);
            return;
        }
    }
    size_t bl = (size_t)clen < sizeof a->body ? (size_t)clen : sizeof a->body - 1;
    memcpy(a->body, h->buf + headlen, bl);
    a->body[bl] = '\0';
    a->status = status;
    size_t used = headlen + (size_t)clen;
    memmove(h->buf, h->buf + used, h->len - used);
    h->len -= used;
    if (a->close) http_close(h);
}

/* ---- post: clients that must get every case accepted ---- */

struct post_cfg {
    int port, timeout_ms, deadline_s;
    const char *out, *key_prefix, *token, *site, *channel, *stop_file;
    bool events;
};

struct tally {
    long started, accepted, failed, attempts, s202, s503, s409, s5xx, s429, s4xx, conn_err,
        timeouts, retry_after_missing;
};

static bool retryable(const struct answer *a)
{
    if (a->status <= 0 || a->status >= 500 || a->status == 429) return true;
    return a->status == 409 && strstr(a->body, "request_in_progress") != NULL;
}

static int post_client(const struct post_cfg *c, int client, long first, long count)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%d", c->out, client);
    FILE *out = fopen(path, "w");
    FILE *ev = NULL;
    if (c->events) {
        snprintf(path, sizeof path, "%s.%d.events", c->out, client);
        ev = fopen(path, "w");
    }
    if (!out || (c->events && !ev)) die(path);
    setvbuf(out, NULL, _IOLBF, 0);
    if (ev) setvbuf(ev, NULL, _IOLBF, 0);
    struct http *h = calloc(1, sizeof *h);
    if (!h) die("calloc");
    h->fd = -1;
    h->port = c->port;
    struct tally t = {0};
    char key[128], body[1024], req[4096];
    for (long i = first; i < first + count; i++) {
        struct stat st;
        if (c->stop_file && stat(c->stop_file, &st) == 0) break;
        snprintf(key, sizeof key, "%s-%d-%ld", c->key_prefix, client, i);
        int bl =
            snprintf(body, sizeof body,
                     "{\"site\":\"%s\",\"channel\":\"%s\",\"text\":\"fault-injection case %s\","
                     "\"customer\":{\"name\":\"测试顾客\",\"phone\":\"13800138000\"},"
                     "\"external_ref\":\"%s\"}",
                     c->site, c->channel, key, key);
        char auth[600] = "";
        if (c->token && *c->token)
            snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", c->token);
        int rl =
            snprintf(req, sizeof req,
                     "POST /v1/cases HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: "
                     "application/json\r\n%sIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s",
                     c->port, auth, key, bl, body);
        t.started++;
        int64_t case_deadline = mono_ms() + (int64_t)c->deadline_s * 1000;
        int64_t backoff = 50;
        bool done = false;
        while (!done) {
            struct answer a;
            int64_t t0 = wall_ms();
            http_do(h, req, (size_t)rl, c->timeout_ms, &a);
            int64_t t1 = wall_ms();
            t.attempts++;
            if (ev)
                fprintf(ev, "%lld %lld %s %d %d\n", (long long)t0, (long long)t1, key, a.status,
                        a.retry_after);
            if (a.status == 0)
                t.conn_err++;
            else if (a.status == -1)
                t.timeouts++;
            else if (a.status == 202)
                t.s202++;
            else if (a.status == 503)
                t.s503++;
            else if (a.status == 409)
                t.s409++;
            else if (a.status == 429)
                t.s429++;
            else if (a.status >= 500)
                t.s5xx++;
            else
                t.s4xx++;
            if ((a.status == 503 || a.status == 429 || a.status == 409) && a.retry_after < 0)
                t.retry_after_missing++;
            if (a.status == 202) {
                json_error_t je;
                json_t *j = json_loads(a.body, 0, &je);
                const char *id = j ? json_string_value(json_object_get(j, "case_id")) : NULL;
                const char *no = j ? json_string_value(json_object_get(j, "case_no")) : NULL;
                if (!id || !no) {
                    fprintf(stderr, "gwload: client %d: 202 without case_id/case_no: %s\n", client,
                            a.body);
                    t.failed++;
                } else {
                    fprintf(out, "%s %s %s 202\n", key, id, no);
                    t.accepted++;
                }
                json_decref(j);
                done = true;
            } else if (retryable(&a)) {
                if (mono_ms() >= case_deadline) {
                    fprintf(stderr,
                            "gwload: client %d: %s not accepted within %d s (last status %d)\n",
                            client, key, c->deadline_s, a.status);
                    t.failed++;
                    done = true;
                    break;
                }
                int64_t wait =
                    a.retry_after > 0 ? (a.retry_after > 2 ? 2000 : a.retry_after * 1000) : backoff;
                sleep_ms(wait);
                backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
            } else {
                fprintf(stderr, "gwload: client %d: %s answered %d (not retryable): %s\n", client,
                        key, a.status, a.body);
                t.failed++;
                done = true;
            }
        }
    }
    http_close(h);
    free(h);
    fclose(out);
    if (ev) fclose(ev);
    printf("client=%d started=%ld accepted=%ld failed=%ld attempts=%ld s202=%ld s503=%ld s409=%ld "
           "s429=%ld s5xx=%ld s4xx=%ld conn_errors=%ld timeouts=%ld retry_after_missing=%ld\n",
           client, t.started, t.accepted, t.failed, t.attempts, t.s202, t.s503, t.s409, t.s429,
           t.s5xx, t.s4xx, t.conn_err, t.timeouts, t.retry_after_missing);
    fflush(stdout);
    return t.failed == 0 && t.accepted == t.started && t.retry_after_missing == 0 ? 0 : 1;
}

static int run_post(const struct opts *o)
{
    struct post_cfg c = {
        .port = (int)opt_num(o, "--port", 0),
        .timeout_ms = (int)opt_num(o, "--timeout-ms", 10000),
        .deadline_s = (int)opt_num(o, "--case-deadline-s", 120),
        .out = opt(o, "--out", NULL),
        .key_prefix = opt(o, "--key-prefix", "case"),
        .token = opt(o, "--token", ""),
        .site = opt(o, "--site", "SH01"),
        .channel = opt(o, "--channel", "service_desk"),
        .stop_file = opt(o, "--stop-file", NULL),
        .events = flag(o, "--events"),
    };
    int clients = (int)opt_num(o, "--clients", 1);
    long count = opt_num(o, "--count", 1);
    if (!c.port || !c.out || clients < 1 || clients > 64 || count < clients) {
        fprintf(
            stderr,
            "gwload post: --port and --out are required; 1..64 --clients, --count >= clients\n");
        return 2;
    }
    pid_t pids[64];
    for (int i = 0; i < clients; i++) {
        long share = count / clients + (i < count % clients ? 1 : 0);
        fflush(stdout);
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) _exit(post_client(&c, i, 0, share));
        pids[i] = p;
    }
    int bad = 0;
    for (int i = 0; i < clients; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
    }
    printf("post: clients=%d failed_clients=%d\n", clients, bad);
    return bad ? 1 : 0;
}

/* ---- slow: slowloris connections ---- */

struct slow_conn {
    int fd;
    const char *data;
    size_t len, sent;
    int64_t first_ms, next_ms, closed_ms;
    const char *how;
};

static int run_slow(const struct opts *o)
{
    int port = (int)opt_num(o, "--port", 0);
    int n = (int)opt_num(o, "--conns", 100);
    int interval = (int)opt_num(o, "--interval-ms", 2000);
    int max_s = (int)opt_num(o, "--max-s", 30);
    if (!port || n < 1 || n > 1000 || interval < 1) {
        fprintf(stderr, "gwload slow: --port required, 1..1000 --conns\n");
        return 2;
    }
    static const char head_trickle[] =
        "GET /v1/sites HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Pad: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    static const char body_head[] =
        "POST /v1/cases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 200\r\n\r\n";
    static char body_trickle[sizeof body_head - 1 + 200];
    memcpy(body_trickle, body_head, sizeof body_head - 1);
    memset(body_trickle + sizeof body_head - 1, ' ', 200);

    struct slow_conn *c = calloc((size_t)n, sizeof *c);
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    if (!c || !p) die("calloc");
    for (int i = 0; i < n; i++) {
        if ((c[i].fd = connect_loopback(port, 5000)) < 0) {
            fprintf(stderr, "gwload slow: connection %d could not connect: %s\n", i,
                    strerror(errno));
            return 1;
        }
        c[i].data = i % 2 ? body_trickle : head_trickle;
        c[i].len = i % 2 ? sizeof body_trickle : sizeof head_trickle - 1;
        c[i].closed_ms = -1;
    }
    /* First bytes: even connections one byte, odd ones all their headers at once. */
    for (int i = 0; i < n; i++) {
        size_t first = i % 2 ? sizeof body_head - 1 : 1;
        c[i].first_ms = mono_ms();
        ssize_t w = send(c[i].fd, c[i].data, first, MSG_NOSIGNAL);
        if (w != (ssize_t)first) {
            fprintf(stderr, "gwload slow: connection %d: first send failed\n", i);
            return 1;
        }
        c[i].sent = first;
        c[i].next_ms = c[i].first_ms + interval;
    }
    printf("all_first_bytes_sent conns=%d\n", n);
    fflush(stdout);
    int open = n;
    int64_t end = mono_ms() + (int64_t)max_s * 1000;
    while (open > 0 && mono_ms() < end) {
        int64_t now = mono_ms(), next = end;
        for (int i = 0; i < n; i++) {
            if (c[i].closed_ms >= 0) continue;
            if (now >= c[i].next_ms && c[i].sent < c[i].len) {
                ssize_t w = send(c[i].fd, c[i].data + c[i].sent, 1, MSG_NOSIGNAL);
                if (w == 1) {
                    c[i].sent++;
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    c[i].closed_ms = now;
                    c[i].how = errno == EPIPE ? "epipe" : "reset_on_send";
                    close(c[i].fd);
                    open--;
                    printf("closed %d %lld %s\n", i, (long long)(c[i].closed_ms - c[i].first_ms),
                           c[i].how);
                    fflush(stdout);
                    continue;
                }
                c[i].next_ms += interval;
            }
            if (c[i].next_ms < next) next = c[i].next_ms;
        }
        int np = 0;
        int idx[1000];
        for (int i = 0; i < n; i++) {
            if (c[i].closed_ms >= 0) continue;
            p[np] = (struct pollfd){c[i].fd, POLLIN, 0};
            idx[np++] = i;
        }
        int wait = (int)(next - mono_ms());
        if (wait < 0) wait = 0;
        if (poll(p, (nfds_t)np, wait) <= 0) continue;
        now = mono_ms();
        for (int k = 0; k < np; k++) {
            if (!p[k].revents) continue;
            int i = idx[k];
            char buf[4096];
            ssize_t r = recv(c[i].fd, buf, sizeof buf, 0);
            if (r > 0) {
                /* the server answered something (a 408 or 400 before closing is fine) */
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            c[i].closed_ms = now;
            c[i].how = r == 0 ? "eof" : "reset";
            close(c[i].fd);
            open--;
            printf("closed %d %lld %s\n", i, (long long)(c[i].closed_ms - c[i].first_ms), c[i].how);
            fflush(stdout);
        }
    }
    long long min = -1, max = -1;
    int closed = 0;
    for (int i = 0; i < n; i++) {
        if (c[i].closed_ms < 0) {
            printf("still_open %d after %d s (sent %zu of %zu bytes)\n", i, max_s, c[i].sent,
                   c[i].len);
            close(c[i].fd);
            continue;
        }
        long long e = c[i].closed_ms - c[i].first_ms;
        closed++;
        if (min < 0 || e < min) min = e;
        if (e > max) max = e;
    }
    printf("slow: conns=%d closed=%d min_ms=%lld max_ms=%lld\n", n, closed, min, max);
    free(c);
    free(p);
    return closed == n ? 0 : 1;
}

/* ---- cap: the connection cap ---- */

static int run_cap(const struct opts *o)
{
    int port = (int)opt_num(o, "--port", 0);
    int n = (int)opt_num(o, "--conns", 40);
    int wait_ms = (int)opt_num(o, "--wait-ms", 2000);
    if (!port || n < 1 || n > 1000) {
        fprintf(stderr, "gwload cap: --port required, 1..1000 --conns\n");
        return 2;
    }
    struct http **h = calloc((size_t)n, sizeof *h);
    bool *answered = calloc((size_t)n, sizeof *answered);
    if (!h || !answered) die("calloc");
    /* The kernel completes the handshake of a connection the gateway has not accepted (it
     * waits in the listen backlog), so every connect succeeds. */
    for (int i = 0; i < n; i++) {
        if (!(h[i] = calloc(1, sizeof **h))) die("calloc");
        h[i]->port = port;
        if ((h[i]->fd = connect_loopback(port, 5000)) < 0) {
            fprintf(stderr, "gwload cap: connection %d could not connect\n", i);
            return 1;
        }
    }
    static const char req[] = "GET /v1/sites HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (int i = 0; i < n; i++)
        if (send(h[i]->fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) {
            fprintf(stderr, "gwload cap: connection %d: send failed\n", i);
            return 1;
        }
    /* Phase 1: who is answered within wait_ms. */
    int first = 0, first_max_idx = -1, broken = 0;
    int64_t end = mono_ms() + wait_ms;
    for (;;) {
        struct pollfd p[1000];
        int idx[1000], np = 0;
        for (int i = 0; i < n; i++)
            if (!answered[i] && h[i]->fd >= 0)
                p[np] = (struct pollfd){h[i]->fd, POLLIN, 0}, idx[np++] = i;
        int left = (int)(end - mono_ms());
        if (np == 0 || left <= 0) break;
        if (poll(p, (nfds_t)np, left) <= 0) continue;
        for (int k = 0; k < np; k++) {
            if (!p[k].revents) continue;
            int i = idx[k];
            int r = read_more(h[i], mono_ms() + 1000);
            if (r <= 0) {
                broken++;
                http_close(h[i]);
                continue;
            }
            h[i]->buf[h[i]->len < sizeof h[i]->buf ? h[i]->len : sizeof h[i]->buf - 1] = '\0';
            if (strstr(h[i]->buf, "\r\n\r\n") && strncmp(h[i]->buf, "HTTP/1.1 200", 12) == 0) {
                answered[i] = true;
                first++;
                if (i > first_max_idx) first_max_idx = i;
            }
        }
    }
    printf("cap: phase1 answered=%d of %d within %d ms (highest index answered %d, broken %d)\n",
           first, n, wait_ms, first_max_idx, broken);
    /* Phase 2: close the answered ones; the rest must be answered now. */
    for (int i = 0; i < n; i++)
        if (answered[i]) http_close(h[i]);
    int later = 0;
    end = mono_ms() + 15000;
    int64_t t0 = mono_ms(), last_ms = 0;
    for (;;) {
        struct pollfd p[1000];
        int idx[1000], np = 0;
        for (int i = 0; i < n; i++)
            if (!answered[i] && h[i]->fd >= 0)
                p[np] = (struct pollfd){h[i]->fd, POLLIN, 0}, idx[np++] = i;
        int left = (int)(end - mono_ms());
        if (np == 0 || left <= 0) break;
        if (poll(p, (nfds_t)np, left) <= 0) continue;
        for (int k = 0; k < np; k++) {
            if (!p[k].revents) continue;
            int i = idx[k];
            int r = read_more(h[i], mono_ms() + 1000);
            if (r <= 0) {
                broken++;
                http_close(h[i]);
                continue;
            }
            h[i]->buf[h[i]->len < sizeof h[i]->buf ? h[i]->len : sizeof h[i]->buf - 1] = '\0';
            if (strstr(h[i]->buf, "\r\n\r\n") && strncmp(h[i]->buf, "HTTP/1.1 200", 12) == 0) {
                answered[i] = true;
                later++;
                last_ms = mono_ms() - t0;
            }
        }
    }
    printf("cap: phase2 answered=%d of %d after the first were closed (last after %lld ms, broken "
           "%d)\n",
           later, n - first, (long long)last_ms, broken);
    printf("cap: first=%d later=%d broken=%d\n", first, later, broken);
    for (int i = 0; i < n; i++) {
        http_close(h[i]);
        free(h[i]);
    }
    free(h);
    free(answered);
    return 0;
}

/* ---- verify: the answers against what is on Kafka ---- */

/* A string-keyed hash table of records; no deletion. */
struct rec {
    char *key;
    char *a, *b, *c; /* meaning depends on the table */
    int n, m;
    struct rec *next;
};
struct table {
    struct rec *slot[16384];
};

static unsigned hash_str(const char *s)
{
    unsigned h = 2166136261u;
    while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static struct rec *table_get(struct table *t, const char *key, bool create)
{
    unsigned s = hash_str(key) % 16384;
    for (struct rec *r = t->slot[s]; r; r = r->next)
        if (strcmp(r->key, key) == 0) return r;
    if (!create) return NULL;
    struct rec *r = calloc(1, sizeof *r);
    if (!r || !(r->key = strdup(key))) die("calloc");
    r->next = t->slot[s];
    t->slot[s] = r;
    return r;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    if (!(*dst = strdup(v ? v : ""))) die("strdup");
}

/* What the gateway puts in CaseSubmitted.idempotency_key for a POST /v1/cases key: the hex
 * SHA-256 of "<route>\n<key>" (services/gateway/store.c, route 0 = POST /v1/cases). */
static void idem_hash(const char *key, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char in[300];
    int n = snprintf(in, sizeof in, "0\n%s", key);
    if (!EVP_Digest(in, (size_t)n, md, &len, EVP_sha256(), NULL)) die("EVP_Digest");
    for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static const char *jpath_str(json_t *root, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(root, a);
    if (b) v = json_object_get(v, b);
    if (c) v = json_object_get(v, c);
    return json_string_value(v);
}

static int run_verify(const struct opts *o)
{
    const char *tail = opt(o, "--tail", NULL);
    const char *keys = opt(o, "--keys", NULL);
    if (!tail) {
        fprintf(stderr, "gwload verify: --tail FILE required\n");
        return 2;
    }
    static struct table by_case, by_idem, by_ref, by_caseno, answers;
    /* Kafka: every CaseSubmitted record. */
    FILE *f = fopen(tail, "r");
    if (!f) die(tail);
    char *line = NULL;
    size_t cap = 0;
    long records = 0, undecodable = 0, copies = 0, event_id_mismatch = 0, caseno_shared = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        if (!j) {
            undecodable++;
            continue;
        }
        const char *case_id = jpath_str(j, "event", "meta", "case_id");
        const char *event_id = jpath_str(j, "event", "meta", "event_id");
        const char *idem = jpath_str(j, "event", "case_submitted", "idempotency_key");
        const char *ref = jpath_str(j, "event", "case_submitted", "external_ref");
        const char *case_no = jpath_str(j, "event", "case_submitted", "case_no");
        if (!case_id || !event_id || !case_no) {
            undecodable++;
            json_decref(j);
            continue;
        }
        records++;
        struct rec *r = table_get(&by_case, case_id, true);
        if (r->n++ == 0) {
            set_str(&r->a, event_id);
            set_str(&r->b, case_no);
            set_str(&r->c, idem);
            struct rec *cn = table_get(&by_caseno, case_no, true);
            if (cn->n++ > 0) caseno_shared++;
            /* distinct case ids per idempotency hash and per external_ref */
            if (idem && *idem) table_get(&by_idem, idem, true)->n++;
            if (ref && *ref) {
                struct rec *rr = table_get(&by_ref, ref, true);
                if (rr->n++ == 0) set_str(&rr->a, case_id);
            }
        } else {
            copies++;
            if (strcmp(r->a, event_id) != 0 || strcmp(r->b, case_no) != 0) event_id_mismatch++;
        }
        json_decref(j);
    }
    fclose(f);

    /* The 202 answers. */
    long answered = 0, dup_answers = 0, answer_not_on_kafka = 0, answer_caseno_mismatch = 0,
         answer_wrong_key = 0;
    for (int i = 0; i + 1 < o->argc; i++) {
        if (strcmp(o->argv[i], "--answers") != 0) continue;
        FILE *a = fopen(o->argv[i + 1], "r");
        if (!a) die(o->argv[i + 1]);
        while (getline(&line, &cap, a) > 0) {
            char key[200], id[64], no[64];
            int status;
            if (sscanf(line, "%199s %63s %63s %d", key, id, no, &status) != 4 || status != 202)
                continue;
            answered++;
            struct rec *an = table_get(&answers, key, true);
            if (an->n++ > 0) {
                dup_answers++;
                if (strcmp(an->a, id) != 0) answer_wrong_key++;
                continue;
            }
            set_str(&an->a, id);
            struct rec *r = table_get(&by_case, id, false);
            if (!r) {
                answer_not_on_kafka++;
                if (answer_not_on_kafka <= 5)
                    printf("# 202 not on Kafka: %s case_id=%s case_no=%s\n", key, id, no);
                continue;
            }
            if (strcmp(r->b, no) != 0) answer_caseno_mismatch++;
            char hx[65];
            idem_hash(key, hx);
            if (!r->c || strcmp(r->c, hx) != 0) {
                answer_wrong_key++;
                if (answer_wrong_key <= 5)
                    printf("# %s: Kafka's idempotency_key for case %s is %s, expected %s\n", key,
                           id, r->c ? r->c : "-", hx);
            }
        }
        fclose(a);
    }

    /* Per key: distinct case ids on Kafka (by hash and by external_ref). Keys are the
     * expected ones (--keys) or else the answered ones. */
    long keys_checked = 0, keys_not_answered = 0, keys_multi = 0, keys_absent = 0;
    char prefix[100] = "";
    long clients = 0, count = 0;
    if (keys && sscanf(keys, "%99[^:]:%ld:%ld", prefix, &clients, &count) != 3) {
        fprintf(stderr, "gwload verify: --keys PREFIX:CLIENTS:COUNT\n");
        return 2;
    }
    for (long c = 0; keys && c < clients; c++) {
        long share = count / clients + (c < count % clients ? 1 : 0);
        for (long i = 0; i < share; i++) {
            char key[200], hx[65];
            snprintf(key, sizeof key, "%s-%ld-%ld", prefix, c, i);
            keys_checked++;
            if (!table_get(&answers, key, false)) {
                keys_not_answered++;
                if (keys_not_answered <= 5) printf("# never answered 202: %s\n", key);
            }
            idem_hash(key, hx);
            struct rec *ri = table_get(&by_idem, hx, false);
            struct rec *rr = table_get(&by_ref, key, false);
            int ni = ri ? ri->n : 0, nr = rr ? rr->n : 0;
            if (ni == 0 || nr == 0) keys_absent++;
            if (ni > 1 || nr > 1) {
                keys_multi++;
                if (keys_multi <= 5)
                    printf("# %s: %d case ids by hash, %d by external_ref\n", key, ni, nr);
            }
        }
    }
    if (!keys) {
        for (int s = 0; s < 16384; s++)
            for (struct rec *an = answers.slot[s]; an; an = an->next) {
                char hx[65];
                idem_hash(an->key, hx);
                keys_checked++;
                struct rec *ri = table_get(&by_idem, hx, false);
                struct rec *rr = table_get(&by_ref, an->key, false);
                int ni = ri ? ri->n : 0, nr = rr ? rr->n : 0;
                if (ni == 0 || nr == 0) keys_absent++;
                if (ni > 1 || nr > 1) keys_multi++;
            }
    }
    printf("kafka_records=%ld kafka_cases=%ld kafka_copies=%ld undecodable=%ld\n", records,
           records - copies, copies, undecodable);
    printf("event_id_mismatch=%ld caseno_shared=%ld\n", event_id_mismatch, caseno_shared);
    printf("answered=%ld dup_answers=%ld answer_not_on_kafka=%ld answer_caseno_mismatch=%ld "
           "answer_wrong_key=%ld\n",
           answered, dup_answers, answer_not_on_kafka, answer_caseno_mismatch, answer_wrong_key);
    printf("keys_checked=%ld keys_not_answered=%ld keys_multi_case=%ld keys_absent=%ld\n",
           keys_checked, keys_not_answered, keys_multi, keys_absent);
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc < 2) {
        fprintf(stderr, "usage: gwload post|slow|cap|verify [--option value ...] (see gwload.c)\n");
        return 2;
    }
    struct opts o = {argc - 2, argv + 2};
    if (strcmp(argv[1], "post") == 0) return run_post(&o);
    if (strcmp(argv[1], "slow") == 0) return run_slow(&o);
    if (strcmp(argv[1], "cap") == 0) return run_cap(&o);
    if (strcmp(argv[1], "verify") == 0) return run_verify(&o);
    fprintf(stderr, "gwload: unknown mode %s\n", argv[1]);
    return 2;
}
