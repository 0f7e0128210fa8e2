/* The SMS providers (see sms.h). Each provider turns a message into one request and the
 * answer into one of the four outcomes; everything about retries, limits and state is the
 * caller's. */
#include "sms.h"

#include <errno.h>
#include <stdarg.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "alisms.h"

/* The file provider looks this far back for a message's id after a crash mid-send. */
#define FILE_STATUS_SCAN (64 * 1024 * 1024)

struct nt_sms {
    const struct cw_sms_settings *s;
    const cw_chain *chain;
    nt_http *http;
    struct event_base *base;
    int fd; /* file provider */
};

/* One send or status check in flight. */
struct call {
    nt_sms *p;
    nt_sms_fn *cb;
    void *arg;
    int status_check;
    struct nt_sms_result res;
};

size_t nt_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

int nt_sms_render(const char *tmpl, const char *const *keys, const char *const *values, size_t n,
                  char *out, size_t outlen, char *missing, size_t missing_len)
{
    size_t o = 0;
    if (missing_len) missing[0] = '\0';
    for (const char *p = tmpl; *p;) {
        const char *piece = p, *close = NULL;
        size_t len = 1;
        if (*p == '{' && (close = strchr(p, '}'))) {
            size_t klen = (size_t)(close - p - 1);
            piece = "";
            len = 0;
            for (size_t i = 0; i < n; i++) {
                if (strlen(keys[i]) == klen && !memcmp(keys[i], p + 1, klen)) {
                    piece = values[i] ? values[i] : "";
                    len = strlen(piece);
                    break;
                }
            }
            if (!len && missing_len && !missing[0])
                snprintf(missing, missing_len, "%.*s", (int)klen, p + 1);
            p = close + 1;
        } else {
            p++;
        }
        if (o + len + 1 > outlen) return -1;
        memcpy(out + o, piece, len);
        o += len;
    }
    if (o + 1 > outlen) return -1;
    out[o] = '\0';
    return (int)nt_utf8_chars(out);
}

/* ---- calling back from the loop ---- */

static void deliver(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct call *c = arg;
    c->cb(c->arg, &c->res);
    free(c);
}

/* The contract says callbacks never run inside nt_sms_send(): the file provider's answer,
 * known at once, goes through the loop. */
static int later(struct call *c)
{
    const struct timeval now = {0, 0};
    if (event_base_once(c->p->base, -1, EV_TIMEOUT, deliver, c, &now) != 0) {
        free(c);
        return -1;
    }
    return 0;
}

static struct call *call_new(nt_sms *p, nt_sms_fn *cb, void *arg)
{
    struct call *c = calloc(1, sizeof *c);
    if (c) c->p = p, c->cb = cb, c->arg = arg;
    return c;
}

static void set_result(struct call *c, enum nt_sms_outcome o, long status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void set_result(struct call *c, enum nt_sms_outcome o, long status, const char *fmt, ...)
{
    c->res.outcome = o;
    c->res.http_status = status;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->res.error, sizeof c->res.error, fmt, ap);
    va_end(ap);
}

/* ---- file ---- */

static int file_send(nt_sms *p, const struct nt_sms_msg *m, struct call *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    json_t *o = json_pack(
        "{s:I,s:s,s:s,s:s,s:s}", "ms", (json_int_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000, "id",
        m->id, "to", m->phone, "template", m->template_id ? m->template_id : "", "text", m->text);
    char *line = o ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
    json_decref(o);
    if (!line) {
        set_result(c, NT_SMS_RETRY, 0, "out of memory");
        return later(c);
    }
    size_t len = strlen(line);
    line[len] = '\n'; /* json_dumps's NUL becomes the line end: one write, one line */
    ssize_t w = write(p->fd, line, len + 1);
    free(line);
    if (w == (ssize_t)(len + 1)) {
        snprintf(c->res.ref, sizeof c->res.ref, "%s", m->id);
        set_result(c, NT_SMS_SENT, 0, "%s", "");
    } else if (w < 0) {
        set_result(c, NT_SMS_RETRY, 0, "writing %s: %s", p->s->file, strerror(errno));
    } else {
        set_result(c, NT_SMS_UNKNOWN, 0, "short write to %s", p->s->file);
    }
    return later(c);
}

/* Whether a line with this id is in the last FILE_STATUS_SCAN bytes of the file. */
static int file_status(nt_sms *p, const struct nt_sms_msg *m, struct call *c)
{
    struct stat st;
    char needle[200];
    snprintf(needle, sizeof needle, "\"id\":\"%s\"", m->id);
    if (fstat(p->fd, &st) != 0) {
        set_result(c, NT_SMS_UNKNOWN, 0, "stat %s: %s", p->s->file, strerror(errno));
        return later(c);
    }
    off_t from = st.st_size > FILE_STATUS_SCAN ? st.st_size - FILE_STATUS_SCAN : 0;
    size_t len = (size_t)(st.st_size - from);
    char *buf = malloc(len + 1);
    ssize_t got = buf ? pread(p->fd, buf, len, from) : -1;
    if (got < 0) {
        set_result(c, NT_SMS_UNKNOWN, 0, "reading %s back", p->s->file);
    } else {
        buf[got] = '\0';
        if (strstr(buf, needle))
            set_result(c, NT_SMS_SENT, 0, "%s", "found in the file");
        else if (from == 0)
            set_result(c, NT_SMS_RETRY, 0, "%s", "not in the file");
        else
            set_result(c, NT_SMS_UNKNOWN, 0, "%s", "not in the file's last 64 MiB");
    }
    free(buf);
    return later(c);
}

/* ---- over HTTP (generic and Alibaba) ---- */

/* What an HTTP failure means for a message: whether any of the request left us is the only
 * test (libcurl may retry on a fresh connection after a reused one died: a connect error can
 * follow a request that went out). */
static void transport_failure(struct call *c, const struct nt_http_response *r)
{
    if (!r->sent)
        set_result(c, NT_SMS_RETRY, 0, "%s before sending: %s", nt_http_outcome_name(r->outcome),
                   r->error);
    else
        set_result(c, NT_SMS_UNKNOWN, 0, "%s after sending: %s", nt_http_outcome_name(r->outcome),
                   r->error);
}

static void http_status_reply(struct call *c, const struct nt_http_response *r)
{
    json_t *o = json_loadb(r->body, r->body_len, 0, NULL);
    const char *st = json_string_value(json_object_get(o, "status"));
    if (r->status == 200 && st && strcmp(st, "unknown") != 0) {
        const char *ref = json_string_value(json_object_get(o, "ref"));
        snprintf(c->res.ref, sizeof c->res.ref, "%.120s", ref ? ref : "");
        set_result(c, NT_SMS_SENT, r->status, "provider has it: %.40s", st);
    } else if (r->status == 404 && st && !strcmp(st, "unknown")) {
        /* Only the provider's own answer counts: a bare 404 may be a wrong status_url. */
        set_result(c, NT_SMS_RETRY, r->status, "%s", "the provider never received it");
    } else {
        set_result(c, NT_SMS_UNKNOWN, r->status, "status check answered HTTP %ld", r->status);
    }
    json_decref(o);
}

/* The provider's own words are not passed on: they may repeat the phone number. */
static void http_send_reply(struct call *c, const struct nt_http_response *r)
{
    long st = r->status;
    if (st >= 200 && st < 300) {
        json_t *o = json_loadb(r->body, r->body_len, 0, NULL);
        const char *ref = json_string_value(json_object_get(o, "ref"));
        snprintf(c->res.ref, sizeof c->res.ref, "%.120s", ref ? ref : "");
        json_decref(o);
        set_result(c, NT_SMS_SENT, st, "%s", "");
    } else if (st == 429 || st == 408 || st == 500 || st == 503) {
        /* The provider says it did not take it (or not now). */
        c->res.throttled = st == 429;
        set_result(c, NT_SMS_RETRY, st, "HTTP %ld from the provider", st);
    } else if (st >= 500) {
        /* 502, 504...: a proxy's answer; the provider may have taken it. */
        set_result(c, NT_SMS_UNKNOWN, st, "HTTP %ld (a gateway's answer)", st);
    } else {
        set_result(c, NT_SMS_REJECTED, st, "HTTP %ld from the provider: refused", st);
    }
}

static void aliyun_reply(struct call *c, const struct nt_http_response *r)
{
    struct nt_ali_reply a;
    if (nt_ali_parse_reply(r->body, r->body_len, &a) != 0) {
        /* No answer we understand (a proxy's error page): the request went out. */
        set_result(c, NT_SMS_UNKNOWN, r->status, "HTTP %ld without a SendSms answer", r->status);
        return;
    }
    snprintf(c->res.ref, sizeof c->res.ref, "%s", a.biz_id);
    /* Only the code: Alibaba's message text may quote the number. */
    switch (a.outcome) {
    case NT_ALI_ACCEPTED: set_result(c, NT_SMS_SENT, r->status, "%s", ""); break;
    case NT_ALI_THROTTLED:
        c->res.throttled = true;
        set_result(c, NT_SMS_RETRY, r->status, "Alibaba %.60s", a.code);
        break;
    case NT_ALI_RETRY: set_result(c, NT_SMS_RETRY, r->status, "Alibaba %.60s", a.code); break;
    case NT_ALI_PERMANENT:
        set_result(c, NT_SMS_REJECTED, r->status, "Alibaba %.60s", a.code);
        break;
    }
}

static void on_http(void *arg, const struct nt_http_response *r)
{
    struct call *c = arg;
    if (r->outcome != NT_HTTP_DONE && c->status_check)
        /* Not getting through to ask says nothing about the message: never "not sent" (a
         * resend could reach the phone twice). */
        set_result(c, NT_SMS_NO_ANSWER, 0, "status check: %s: %s", nt_http_outcome_name(r->outcome),
                   r->error);
    else if (r->outcome != NT_HTTP_DONE)
        transport_failure(c, r);
    else if (c->status_check)
        http_status_reply(c, r);
    else if (c->p->s->provider == CW_SMS_ALIYUN)
        aliyun_reply(c, r);
    else
        http_send_reply(c, r);
    c->cb(c->arg, &c->res);
    free(c);
}

/* A POST (body) or a GET (body NULL, ctype NULL). */
static int http_call(nt_sms *p, struct call *c, const char *url, const char *ctype,
                     const char *body, const char *idem)
{
    char h_ctype[80], h_idem[200], h_auth[300];
    const char *headers[3];
    size_t nh = 0;
    if (ctype) {
        snprintf(h_ctype, sizeof h_ctype, "Content-Type: %s", ctype);
        headers[nh++] = h_ctype;
    }
    if (idem) {
        snprintf(h_idem, sizeof h_idem, "Idempotency-Key: %s", idem);
        headers[nh++] = h_idem;
    }
    if (p->s->provider == CW_SMS_HTTP && p->s->token) {
        snprintf(h_auth, sizeof h_auth, "Authorization: Bearer %s", p->s->token);
        headers[nh++] = h_auth;
    }
    struct nt_http_request q = {.method = body ? "POST" : "GET",
                                .url = url,
                                .headers = headers,
                                .nheaders = nh,
                                .body = body,
                                .body_len = body ? strlen(body) : 0,
                                .timeout_ms = (long)p->s->timeout_ms};
    if (nt_http_send(p->http, &q, on_http, c) != 0) {
        free(c);
        return -1;
    }
    return 0;
}

static int http_send(nt_sms *p, const struct nt_sms_msg *m, struct call *c)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:s}", "id", m->id, "to", m->phone, "text", m->text,
                          "template", m->template_id ? m->template_id : "");
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body) {
        free(c);
        return -1;
    }
    int rc = http_call(p, c, p->s->url, "application/json", body, m->id);
    free(body);
    return rc;
}

static int http_status(nt_sms *p, const struct nt_sms_msg *m, struct call *c)
{
    if (!p->s->status_url) {
        set_result(c, NT_SMS_UNKNOWN, 0, "%s", "the provider has no status URL");
        return later(c);
    }
    char url[1200], id[3 * 160 + 1];
    if (nt_ali_encode(m->id, id, sizeof id) < 0 ||
        snprintf(url, sizeof url, "%s%cid=%s", p->s->status_url,
                 strchr(p->s->status_url, '?') ? '&' : '?', id) >= (int)sizeof url) {
        free(c);
        return -1;
    }
    c->status_check = 1;
    return http_call(p, c, url, NULL, NULL, NULL);
}

static int aliyun_send(nt_sms *p, const struct nt_sms_msg *m, struct call *c)
{
    unsigned char rnd[16];
    char nonce[33];
    if (RAND_bytes(rnd, sizeof rnd) != 1) {
        free(c);
        return -1;
    }
    for (size_t i = 0; i < sizeof rnd; i++) snprintf(nonce + 2 * i, 3, "%02x", rnd[i]);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    const char *code = cw_chain_sms_code(p->chain, m->template_id);
    if (!code) {
        set_result(c, NT_SMS_REJECTED, 0,
                   "no Alibaba template code for \"%s\" (sms.aliyun."
                   "template_codes)",
                   m->template_id ? m->template_id : "");
        return later(c);
    }
    struct nt_ali_send s = {
        .access_key_id = p->s->aliyun_key_id,
        .region = p->s->aliyun_region,
        .phone = m->phone,
        .sign_name = p->s->aliyun_sign_name,
        .template_code = code,
        .template_param_json = m->params_json ? m->params_json : "{}",
        .out_id = m->id,
        .nonce = nonce,
        .timestamp_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000,
    };
    char body[8192];
    if (nt_ali_send_query(&s, p->s->aliyun_key_secret, body, sizeof body) != 0) {
        set_result(c, NT_SMS_REJECTED, 0, "%s", "the signed request does not fit");
        return later(c);
    }
    return http_call(p, c, p->s->aliyun_endpoint, "application/x-www-form-urlencoded", body, NULL);
}

/* ---- the interface ---- */

nt_sms *nt_sms_new(const struct cw_sms_settings *s, const cw_chain *chain, nt_http *http,
                   struct event_base *base, char *err, size_t errlen)
{
    nt_sms *p = calloc(1, sizeof *p);
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    *p = (nt_sms){.s = s, .chain = chain, .http = http, .base = base, .fd = -1};
    if (s->provider == CW_SMS_FILE) {
        p->fd = open(s->file, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
        if (p->fd < 0) {
            snprintf(err, errlen, "sms.file %s: %s (does its folder exist?)", s->file,
                     strerror(errno));
            free(p);
            return NULL;
        }
        /* pread for status checks needs a readable descriptor */
        close(p->fd);
        p->fd = open(s->file, O_RDWR | O_APPEND | O_CLOEXEC);
        if (p->fd < 0) {
            snprintf(err, errlen, "sms.file %s: %s", s->file, strerror(errno));
            free(p);
            return NULL;
        }
    }
    return p;
}

void nt_sms_free(nt_sms *p)
{
    if (!p) return;
    if (p->fd >= 0) close(p->fd);
    free(p);
}

const char *nt_sms_provider_name(const nt_sms *p)
{
    switch (p->s->provider) {
    case CW_SMS_FILE: return "file";
    case CW_SMS_HTTP: return "http";
    case CW_SMS_ALIYUN: return "aliyun";
    }
    return "?";
}

int nt_sms_send(nt_sms *p, const struct nt_sms_msg *m, nt_sms_fn *cb, void *arg)
{
    struct call *c = call_new(p, cb, arg);
    if (!c) return -1;
    switch (p->s->provider) {
    case CW_SMS_FILE: return file_send(p, m, c);
    case CW_SMS_HTTP: return http_send(p, m, c);
    case CW_SMS_ALIYUN: return aliyun_send(p, m, c);
    }
    free(c);
    return -1;
}

int nt_sms_status(nt_sms *p, const struct nt_sms_msg *m, nt_sms_fn *cb, void *arg)
{
    struct call *c = call_new(p, cb, arg);
    if (!c) return -1;
    switch (p->s->provider) {
    case CW_SMS_FILE: return file_status(p, m, c);
    case CW_SMS_HTTP: return http_status(p, m, c);
    case CW_SMS_ALIYUN:
        /* QuerySendDetails finds a message by phone, date and BizId, and a send that timed
         * out never told us its BizId: Alibaba cannot say, so it counts as sent. */
        set_result(c, NT_SMS_UNKNOWN, 0, "%s", "Alibaba cannot be asked without a BizId");
        return later(c);
    }
    free(c);
    return -1;
}
