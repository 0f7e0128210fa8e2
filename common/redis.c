/*
 * cw_redis: the contract is in redis.h. The connection goes through these states:
 *
 *   1. DOWN: no hiredis context. The retry timer is pending (backoff), unless closing.
 *   2. CONNECTING: redisAsyncConnect() returned and the handshake (AUTH, SELECT, PING,
 *      SCRIPT LOAD...) is pipelined at once; hiredis flushes it when TCP connects. User
 *      commands are refused, so nothing can overtake AUTH or see a NOAUTH/LOADING error.
 *   3. READY: the last handshake reply is in and none of AUTH/SELECT/PING failed.
 *   4. Back to DOWN when hiredis reports the connection lost (on_connect with an error, or
 *      on_disconnect), or when we drop it ourselves: the oldest command is past its deadline,
 *      or a handshake step failed. We drop only from our own events (the timeout timer, the
 *      deferred event), never from inside a hiredis callback, since redisAsyncFree() runs
 *      the callbacks of every command still pending.
 *   5. CLOSED once the connection is gone after cw_redis_close(): no more retries.
 *
 * Requests. Every command handed to hiredis carries a struct req as privdata, kept in
 * r->reqs in sending order, which is reply order, so the head is the oldest. hiredis calls
 * on_reply() exactly once per command (with NULL while freeing the context), and on_reply()
 * frees the req. The user callback may already have run by then (fail_all() before a drop,
 * so that user code runs from our event and not from deep inside hiredis): hence req->done.
 * Internal requests (handshake, idle PING, late SCRIPT LOAD) are born done.
 */
#include "redis.h"

#include <ctype.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <openssl/evp.h>

#include "log.h"

enum conn_state { ST_DOWN, ST_CONNECTING, ST_READY, ST_CLOSED };

/* K_AUTH..K_LOAD_HS: the handshake, in sending order. */
enum req_kind {
    K_USER,   /* cw_redis_command[f] */
    K_SCRIPT, /* EVALSHA, retried once as EVAL on NOSCRIPT */
    K_AUTH,
    K_SELECT,
    K_PING_HS,
    K_LOAD_HS,
    K_LOAD, /* SCRIPT LOAD of a script registered while connecting or connected */
    K_PING, /* liveness check when idle */
};

struct req {
    TAILQ_ENTRY(req) link;
    cw_redis *r;
    cw_redis_reply_fn *cb;
    void *arg;
    uint64_t deadline_ms;
    enum req_kind kind;
    bool done;    /* the user callback ran (internal requests: always) */
    bool retried; /* K_SCRIPT: the NOSCRIPT retry was sent */
    const cw_redis_script *script;
    char *cmd; /* K_SCRIPT: the formatted EVALSHA, kept for the retry */
    size_t cmdlen;
};
TAILQ_HEAD(req_list, req);

struct cw_redis_script {
    struct cw_redis_script *next;
    char sha[41];
    char *source;
    size_t len;
};

struct cw_redis {
    struct event_base *base;
    struct cw_redis_options opt;
    redisAsyncContext *ac; /* NULL when DOWN or CLOSED */
    enum conn_state state;
    bool ac_dying;           /* hiredis or we are tearing ac down: refuse everything */
    bool closing;            /* cw_redis_close() was called */
    bool close_pending;      /* graceful disconnect to start from the deferred event */
    const char *drop_reason; /* a drop is pending on the deferred event */
    int hs_pending;          /* handshake replies still expected */
    bool hs_failed;
    bool ever_ready;
    unsigned attempt; /* failed attempts in a row, for the backoff */
    uint64_t rng;
    int cb_depth;         /* > 0 while a user callback runs */
    struct req_list reqs; /* in flight, oldest first */
    size_t inflight;      /* user requests whose callback has not run */
    struct event *timeout_ev, *ping_ev, *retry_ev, *defer_ev;
    uint64_t timer_at; /* when timeout_ev fires, if pending */
    cw_redis_script *scripts;
    cw_redis_state_fn *state_fn;
    void *state_arg;
    struct cw_redis_stats st;
};

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata);

/* ---- small helpers ---- */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timeval ms_tv(uint64_t ms)
{
    return (struct timeval){.tv_sec = (time_t)(ms / 1000),
                            .tv_usec = (suseconds_t)(ms % 1000) * 1000};
}

static uint64_t rng_next(cw_redis *r) /* xorshift64*: jitter only */
{
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return r->rng * 2685821657736338717ull;
}

/* Connection failures are logged on attempts 0, 1, 2, 4, 8...: visible, not a flood. */
static bool log_failure(const cw_redis *r) { return (r->attempt & (r->attempt - 1)) == 0; }

/* ---- requests ---- */

static void req_free(struct req *q)
{
    redisFreeCommand(q->cmd);
    free(q);
}

/* Arms the timeout timer for the oldest request's deadline, unless it is armed for that or
 * earlier: firing early is harmless (on_timeout re-arms), firing late is not. A timer left
 * from a handshake (connect_timeout_ms) may be later than a new command's deadline. */
static void timer_arm(cw_redis *r)
{
    struct req *q = TAILQ_FIRST(&r->reqs);
    if (!q || (evtimer_pending(r->timeout_ev, NULL) && r->timer_at <= q->deadline_ms)) return;
    uint64_t now = now_ms();
    r->timer_at = q->deadline_ms;
    struct timeval tv = ms_tv(q->deadline_ms > now ? q->deadline_ms - now : 0);
    evtimer_add(r->timeout_ev, &tv);
}

static void req_track(cw_redis *r, struct req *q, uint64_t deadline_ms)
{
    q->deadline_ms = deadline_ms;
    TAILQ_INSERT_TAIL(&r->reqs, q, link);
    timer_arm(r);
}

static bool send_internal(cw_redis *r, enum req_kind kind, uint64_t deadline_ms,
                          const cw_redis_script *s, const char *fmt, ...)
{
    struct req *q = calloc(1, sizeof *q);
    if (!q) return false;
    *q = (struct req){.r = r, .kind = kind, .done = true, .script = s};
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAsyncCommand(r->ac, on_reply, q, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        free(q);
        return false;
    }
    req_track(r, q, deadline_ms);
    return true;
}

static void deliver(cw_redis *r, struct req *q, const redisReply *reply, const char *err)
{
    q->done = true;
    r->inflight--;
    if (!reply || reply->type == REDIS_REPLY_ERROR) r->st.errors++;
    if (err && !strcmp(err, "timeout")) r->st.timeouts++;
    if (q->cb) {
        r->cb_depth++;
        q->cb(q->arg, reply, err);
        r->cb_depth--;
    }
}

/* Runs the callback of every user request in flight; they stay listed until hiredis lets go
 * of them. Callers set ac_dying first, so the callbacks cannot queue anything new. */
static void fail_all(cw_redis *r, const char *reason)
{
    struct req *q;
    TAILQ_FOREACH(q, &r->reqs, link)
    if (!q->done) deliver(r, q, NULL, reason);
}

static void notify_state(cw_redis *r, int ready)
{
    if (!r->state_fn) return;
    r->cb_depth++;
    r->state_fn(r->state_arg, ready);
    r->cb_depth--;
}

/* ---- connection ---- */

static void schedule_retry(cw_redis *r)
{
    if (r->closing) return;
    uint64_t d = (uint64_t)r->opt.backoff_min_ms, max = (uint64_t)r->opt.backoff_max_ms;
    for (unsigned i = 0; i < r->attempt && d < max; i++) d *= 2;
    if (d > max) d = max;
    d = d / 2 + rng_next(r) % (d - d / 2 + 1); /* jitter: 50..100% of the step */
    r->attempt++;
    struct timeval tv = ms_tv(d);
    evtimer_add(r->retry_ev, &tv);
}

/* The connection is gone (or never came): forget it, tell, and retry unless closing. `why`
 * may point into the dying context, so it is used before anything else. */
static void conn_lost(cw_redis *r, const char *why)
{
    bool was_ready = r->state == ST_READY;
    const char *h = r->opt.host;
    int port = r->opt.port;

    if (r->closing)
        cw_info("redis.closed", "host=%s port=%d", h, port);
    else if (was_ready)
        cw_warn("redis.disconnected", "host=%s port=%d reason=\"%s\"", h, port, why);
    else if (log_failure(r))
        cw_warn("redis.connect_failed", "host=%s port=%d attempt=%u reason=\"%s\"", h, port,
                r->attempt + 1, why);
    r->ac = NULL;
    r->ac_dying = false;
    r->close_pending = false;
    r->drop_reason = NULL;
    r->state = r->closing ? ST_CLOSED : ST_DOWN;
    evtimer_del(r->timeout_ev);
    schedule_retry(r);
    if (was_ready) notify_state(r, 0);
}

/* Fails the user requests with `reason`, then frees the context. Only from our own events
 * or cw_redis_free(), never from inside a hiredis callback. */
static void ac_release(cw_redis *r, const char *reason)
{
    redisAsyncContext *ac = r->ac;
    r->ac_dying = true;
    fail_all(r, reason);
    r->ac = NULL;       /* so that on_disconnect does not take it for a lost connection */
    redisAsyncFree(ac); /* on_reply(NULL) for every request: all done by now */
}

static void conn_drop_now(cw_redis *r, const char *reason)
{
    if (!r->ac) return;
    ac_release(r, reason);
    conn_lost(r, reason);
}

/* From inside hiredis callbacks: drop on the next loop turn. */
static void request_drop(cw_redis *r, const char *reason)
{
    if (!r->ac || r->ac_dying || r->drop_reason) return;
    r->drop_reason = reason;
    event_active(r->defer_ev, EV_TIMEOUT, 1);
}

static void set_ready(cw_redis *r)
{
    r->state = ST_READY;
    r->attempt = 0;
    if (r->ever_ready) r->st.reconnects++;
    r->ever_ready = true;
    cw_info("redis.connected", "host=%s port=%d db=%d", r->opt.host, r->opt.port, r->opt.db);
    notify_state(r, 1);
}

static void internal_reply(cw_redis *r, const struct req *q, const redisReply *reply)
{
    static const char *const step[] = {
        [K_AUTH] = "auth",           [K_SELECT] = "select",    [K_PING_HS] = "ping",
        [K_LOAD_HS] = "script_load", [K_LOAD] = "script_load", [K_PING] = "ping"};
    if (!reply) return; /* the context is going away: on_connect/on_disconnect deal with it */
    if (reply->type == REDIS_REPLY_ERROR) {
        if (q->kind == K_LOAD_HS || q->kind == K_LOAD) {
            /* A script that does not compile: its runs will return the error; not fatal. */
            cw_warn("redis.script_load_failed", "sha=%s err=\"%.200s\"", q->script->sha,
                    reply->str);
        } else if (q->kind != K_PING && !r->hs_failed) {
            r->hs_failed = true;
            if (log_failure(r))
                cw_warn("redis.handshake_failed", "host=%s port=%d step=%s err=\"%.200s\"",
                        r->opt.host, r->opt.port, step[q->kind], reply->str);
            request_drop(r, "handshake failed");
        }
    }
    if (q->kind == K_LOAD || q->kind == K_PING) return;
    if (--r->hs_pending == 0 && !r->hs_failed && r->state == ST_CONNECTING && !r->closing)
        set_ready(r);
}

/* Pipelined right after connect: nothing else may be sent before it. */
static void handshake_send(cw_redis *r)
{
    const struct cw_redis_options *o = &r->opt;
    uint64_t dl = now_ms() + (uint64_t)o->connect_timeout_ms;
    int n = 0;
    bool ok = true;

    if (o->password[0] && o->username[0])
        n += send_internal(r, K_AUTH, dl, NULL, "AUTH %s %s", o->username, o->password);
    else if (o->password[0])
        n += send_internal(r, K_AUTH, dl, NULL, "AUTH %s", o->password);
    if (o->db) n += send_internal(r, K_SELECT, dl, NULL, "SELECT %d", o->db);
    ok = send_internal(r, K_PING_HS, dl, NULL, "PING");
    n += ok;
    for (const cw_redis_script *s = r->scripts; s; s = s->next)
        n += send_internal(r, K_LOAD_HS, dl, s, "SCRIPT LOAD %b", s->source, s->len);
    r->hs_pending = n;
    if (!ok) request_drop(r, "out of memory");
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    cw_redis *r = ac->data;
    if (status != REDIS_OK && ac == r->ac) conn_lost(r, ac->errstr);
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    cw_redis *r = ac->data;
    if (ac == r->ac) conn_lost(r, status == REDIS_OK ? "closed" : ac->errstr);
}

static void conn_start(cw_redis *r)
{
    redisAsyncContext *ac = redisAsyncConnect(r->opt.host, r->opt.port);
    if (!ac || ac->err) {
        conn_lost(r, ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        return;
    }
    ac->data = r;
    redisLibeventAttach(ac, r->base);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    r->ac = ac;
    r->state = ST_CONNECTING;
    r->hs_failed = false;
    handshake_send(r);
}

/* ---- events ---- */

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    conn_start(arg);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    cw_redis *r = arg;
    struct req *q = TAILQ_FIRST(&r->reqs);
    (void)fd, (void)what;
    if (!q) return;
    if (q->deadline_ms > now_ms()) {
        timer_arm(r);
        return;
    }
    conn_drop_now(r, r->state == ST_READY ? "timeout" : "connect timeout");
}

static void on_ping(evutil_socket_t fd, short what, void *arg)
{
    cw_redis *r = arg;
    (void)fd, (void)what;
    if (r->state == ST_READY && !r->closing && !r->ac_dying && !r->drop_reason &&
        TAILQ_EMPTY(&r->reqs))
        send_internal(r, K_PING, now_ms() + (uint64_t)r->opt.command_timeout_ms, NULL, "PING");
}

static void on_defer(evutil_socket_t fd, short what, void *arg)
{
    cw_redis *r = arg;
    (void)fd, (void)what;
    if (r->drop_reason) {
        conn_drop_now(r, r->drop_reason);
    } else if (r->close_pending && r->ac && !r->ac_dying) {
        r->close_pending = false;
        redisAsyncDisconnect(r->ac); /* after the replies in flight; then on_disconnect */
    }
}

/* ---- replies ---- */

static bool is_noscript(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ERROR && !strncmp(reply->str, "NOSCRIPT", 8);
}

/* Resends q's EVALSHA as EVAL: the same arguments after "EVALSHA <sha>", the source instead.
 * EVAL also puts the script back into the server's cache for the next EVALSHA. */
static bool script_retry(cw_redis *r, redisAsyncContext *ac, struct req *q)
{
    const cw_redis_script *s = q->script;
    int argc = atoi(q->cmd + 1); /* "*<argc>\r\n$7\r\nEVALSHA\r\n$40\r\n<sha>\r\n<rest>" */
    char head[64];
    size_t skip = (size_t)snprintf(head, sizeof head, "*%d\r\n", argc) + 13 + 47;
    size_t hl = (size_t)snprintf(head, sizeof head, "*%d\r\n$4\r\nEVAL\r\n$%zu\r\n", argc, s->len);
    size_t n = hl + s->len + 2 + (q->cmdlen - skip);
    char *eval = NULL;
    int rc = REDIS_ERR;

    if (skip > q->cmdlen || ac != r->ac || r->ac_dying || r->closing || !(eval = malloc(n)))
        goto out;
    memcpy(eval, head, hl);
    memcpy(eval + hl, s->source, s->len);
    memcpy(eval + hl + s->len, "\r\n", 2);
    memcpy(eval + hl + s->len + 2, q->cmd + skip, q->cmdlen - skip);
    rc = redisAsyncFormattedCommand(ac, on_reply, q, eval, n);
    if (rc == REDIS_OK) {
        q->retried = true;
        r->st.script_retries++;
        req_track(r, q, now_ms() + (uint64_t)r->opt.command_timeout_ms);
    }
out:
    free(eval);
    return rc == REDIS_OK;
}

static void on_reply(redisAsyncContext *ac, void *raw, void *privdata)
{
    struct req *q = privdata;
    cw_redis *r = q->r;
    const redisReply *reply = raw;

    TAILQ_REMOVE(&r->reqs, q, link);
    if (!reply && ac == r->ac) r->ac_dying = true; /* hiredis is freeing the context */
    if (q->kind != K_USER && q->kind != K_SCRIPT) {
        internal_reply(r, q, reply);
    } else if (!q->done) {
        if (q->kind == K_SCRIPT && reply && !q->retried && is_noscript(reply) &&
            script_retry(r, ac, q))
            return; /* q lives on as the EVAL */
        deliver(r, q, reply, reply ? NULL : "disconnected");
    }
    req_free(q);
}

/* ---- commands ---- */

static int refuse(cw_redis *r, int rc)
{
    r->st.refused++;
    return rc;
}

static int admit(const cw_redis *r)
{
    if (r->closing) return CW_REDIS_CLOSED;
    if (r->state != ST_READY || r->ac_dying || r->drop_reason) return CW_REDIS_NOT_CONNECTED;
    if (r->inflight >= (size_t)r->opt.max_inflight) return CW_REDIS_QUEUE_FULL;
    return CW_REDIS_OK;
}

/* SUBSCRIBE and MONITOR change the protocol to push messages: one reply per command no more. */
static bool cmd_unsupported(const char *cmd, size_t len)
{
    static const char *const bad[] = {"subscribe",    "psubscribe",   "ssubscribe", "unsubscribe",
                                      "punsubscribe", "sunsubscribe", "monitor"};
    const char *p = memchr(cmd, '\n', len), *name;
    char *end;
    if (!p || p + 1 >= cmd + len || p[1] != '$') return false;
    long n = strtol(p + 2, &end, 10);
    name = end + 2;
    if (n <= 0 || name + n > cmd + len) return false;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if ((size_t)n == strlen(bad[i]) && !strncasecmp(name, bad[i], (size_t)n)) return true;
    return false;
}

/* Takes ownership of cmd (from redisFormatCommand*). */
static int submit(cw_redis *r, enum req_kind kind, cw_redis_reply_fn *cb, void *arg, char *cmd,
                  int len, const cw_redis_script *s)
{
    struct req *q = NULL;
    int rc = CW_REDIS_BAD_COMMAND;

    if (len <= 0 || cmd_unsupported(cmd, (size_t)len)) goto out_free_cmd;
    rc = CW_REDIS_NO_MEMORY;
    if (!(q = calloc(1, sizeof *q))) goto out_free_cmd;
    *q = (struct req){.r = r, .cb = cb, .arg = arg, .kind = kind, .script = s};
    rc = CW_REDIS_NOT_CONNECTED;
    if (redisAsyncFormattedCommand(r->ac, on_reply, q, cmd, (size_t)len) != REDIS_OK)
        goto out_free_req;
    if (kind == K_SCRIPT) {
        q->cmd = cmd;
        q->cmdlen = (size_t)len;
    } else {
        redisFreeCommand(cmd);
    }
    r->inflight++;
    r->st.commands++;
    req_track(r, q, now_ms() + (uint64_t)r->opt.command_timeout_ms);
    return CW_REDIS_OK;

out_free_req:
    free(q);
out_free_cmd:
    redisFreeCommand(cmd);
    return refuse(r, rc);
}

int cw_redis_command(cw_redis *r, cw_redis_reply_fn *cb, void *arg, int argc, const char **argv,
                     const size_t *argvlen)
{
    char *cmd = NULL;
    int rc = admit(r);
    if (rc) return refuse(r, rc);
    if (argc < 1 || !argv) return refuse(r, CW_REDIS_BAD_COMMAND);
    int len = redisFormatCommandArgv(&cmd, argc, argv, argvlen);
    return submit(r, K_USER, cb, arg, cmd, len, NULL);
}

int cw_redis_commandf(cw_redis *r, cw_redis_reply_fn *cb, void *arg, const char *fmt, ...)
{
    char *cmd = NULL;
    int rc = admit(r);
    if (rc) return refuse(r, rc);
    va_list ap;
    va_start(ap, fmt);
    int len = redisvFormatCommand(&cmd, fmt, ap);
    va_end(ap);
    return submit(r, K_USER, cb, arg, cmd, len, NULL);
}

const char *cw_redis_strerror(int result)
{
    static const char *const names[] = {[-CW_REDIS_OK] = "ok",
                                        [-CW_REDIS_NOT_CONNECTED] = "not connected",
                                        [-CW_REDIS_QUEUE_FULL] = "queue full",
                                        [-CW_REDIS_CLOSED] = "closed",
                                        [-CW_REDIS_BAD_COMMAND] = "bad command",
                                        [-CW_REDIS_NO_MEMORY] = "out of memory"};
    return result <= 0 && -result < (int)(sizeof names / sizeof names[0]) ? names[-result]
                                                                          : "unknown error";
}

/* ---- scripts ---- */

cw_redis_script *cw_redis_script_new(cw_redis *r, const char *source)
{
    size_t len = source ? strlen(source) : 0;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    cw_redis_script *s;

    if (!len || !(s = calloc(1, sizeof *s))) return NULL;
    if (!(s->source = strdup(source)) || !EVP_Digest(source, len, md, &mdlen, EVP_sha1(), NULL) ||
        mdlen != 20) {
        free(s->source);
        free(s);
        return NULL;
    }
    for (unsigned i = 0; i < mdlen; i++) snprintf(s->sha + 2 * i, 3, "%02x", md[i]);
    s->len = len;
    s->next = r->scripts;
    r->scripts = s;
    /* Connecting or connected: load it now (a reconnect loads every script anyway). */
    if (r->ac && !r->ac_dying && !r->drop_reason && !r->closing)
        send_internal(r, K_LOAD, now_ms() + (uint64_t)r->opt.command_timeout_ms, s,
                      "SCRIPT LOAD %b", s->source, s->len);
    return s;
}

const char *cw_redis_script_sha(const cw_redis_script *s) { return s->sha; }

int cw_redis_script_run(cw_redis *r, const cw_redis_script *s, cw_redis_reply_fn *cb, void *arg,
                        int nkeys, int argc, const char **argv, const size_t *argvlen)
{
    char nk[16], *cmd = NULL;
    int rc = admit(r);
    if (rc) return refuse(r, rc);
    if (!s || nkeys < 0 || argc < nkeys || argc > 1000000 || (argc && !argv))
        return refuse(r, CW_REDIS_BAD_COMMAND);
    /* "EVALSHA" sha nkeys argv...: one allocation for the pointers and the lengths */
    const char **av = malloc((size_t)(argc + 3) * (sizeof *av + sizeof(size_t)));
    if (!av) return refuse(r, CW_REDIS_NO_MEMORY);
    size_t *al = (size_t *)(av + argc + 3);
    snprintf(nk, sizeof nk, "%d", nkeys);
    av[0] = "EVALSHA", al[0] = 7;
    av[1] = s->sha, al[1] = 40;
    av[2] = nk, al[2] = strlen(nk);
    for (int i = 0; i < argc; i++) {
        av[3 + i] = argv[i];
        al[3 + i] = argvlen ? argvlen[i] : strlen(argv[i]);
    }
    int len = redisFormatCommandArgv(&cmd, argc + 3, av, al);
    free(av);
    return submit(r, K_SCRIPT, cb, arg, cmd, len, s);
}

/* ---- lifecycle ---- */

/* hiredis writes with write(2): writing to a connection the server has just closed raises
 * SIGPIPE, which would kill the process in the middle of a Redis restart. */
static void ignore_sigpipe(void)
{
    struct sigaction sa;
    if (sigaction(SIGPIPE, NULL, &sa) == 0 && sa.sa_handler == SIG_DFL) signal(SIGPIPE, SIG_IGN);
}

static void free_events(cw_redis *r)
{
    struct event *evs[] = {r->timeout_ev, r->ping_ev, r->retry_ev, r->defer_ev};
    for (size_t i = 0; i < sizeof evs / sizeof evs[0]; i++)
        if (evs[i]) event_free(evs[i]);
}

cw_redis *cw_redis_new(struct event_base *base, const struct cw_redis_options *opt, char *err,
                       size_t errlen)
{
    cw_redis *r;
    struct timeval ping, now = {0, 0};

    if (!base || !opt) {
        snprintf(err, errlen, "redis: no event base or options");
        return NULL;
    }
    if (cw_redis_options_check(opt, err, errlen)) return NULL;
    ignore_sigpipe();
    if (!(r = calloc(1, sizeof *r))) goto fail_alloc;
    r->base = base;
    r->opt = *opt;
    TAILQ_INIT(&r->reqs);
    r->rng = ((now_ms() << 20) ^ (uint64_t)(uintptr_t)r ^ (uint64_t)getpid()) | 1;
    r->timeout_ev = evtimer_new(base, on_timeout, r);
    r->retry_ev = evtimer_new(base, on_retry, r);
    r->defer_ev = event_new(base, -1, 0, on_defer, r);
    r->ping_ev = event_new(base, -1, EV_PERSIST, on_ping, r);
    if (!r->timeout_ev || !r->retry_ev || !r->defer_ev || !r->ping_ev) goto fail_events;
    ping = ms_tv((uint64_t)opt->ping_interval_ms);
    event_add(r->ping_ev, &ping);
    evtimer_add(r->retry_ev, &now); /* connect from the loop: scripts registered before
                                       it runs are loaded in the first handshake */
    return r;

fail_events:
    free_events(r);
    free(r);
fail_alloc:
    snprintf(err, errlen, "redis: out of memory");
    return NULL;
}

void cw_redis_free(cw_redis *r)
{
    if (!r) return;
    if (r->cb_depth) { /* the caller's stack still holds r: a bug, not a runtime error */
        cw_error("redis.misuse", "cw_redis_free called from a redis callback");
        abort();
    }
    r->closing = true;
    if (r->ac) ac_release(r, "shutting down");
    free_events(r);
    while (r->scripts) {
        cw_redis_script *s = r->scripts;
        r->scripts = s->next;
        free(s->source);
        free(s);
    }
    free(r);
}

void cw_redis_close(cw_redis *r)
{
    if (r->closing) return;
    r->closing = true;
    evtimer_del(r->retry_ev);
    event_del(r->ping_ev);
    if (!r->ac) { /* down: nothing to drain */
        r->state = ST_CLOSED;
        cw_info("redis.closed", "host=%s port=%d", r->opt.host, r->opt.port);
    } else if (r->ac_dying) {
        /* being torn down right now: conn_lost() will see closing */
    } else if (r->state == ST_READY) {
        r->close_pending = true; /* maybe inside a hiredis callback: disconnect from the loop */
        event_active(r->defer_ev, EV_TIMEOUT, 1);
    } else {
        request_drop(r, "shutting down"); /* mid-handshake: nothing of the user's in flight */
    }
}

void cw_redis_on_state(cw_redis *r, cw_redis_state_fn *fn, void *arg)
{
    r->state_fn = fn;
    r->state_arg = arg;
}

int cw_redis_is_ready(const cw_redis *r)
{
    return r->state == ST_READY && !r->ac_dying && !r->drop_reason && !r->closing;
}

size_t cw_redis_inflight(const cw_redis *r) { return r->inflight; }

int cw_redis_idle(const cw_redis *r) { return r->inflight == 0; }

void cw_redis_stats_get(const cw_redis *r, struct cw_redis_stats *st)
{
    *st = r->st;
    st->in_flight = r->inflight;
    st->connected = r->state == ST_READY && !r->ac_dying;
}
