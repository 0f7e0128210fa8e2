/*
 * The asynchronous Redis client every service uses: one connection, on the process's libevent
 * loop (hiredis async underneath), reconnected forever.
 *
 * Connection. cw_redis_new() only validates the options; connecting happens on the loop.
 * Every (re)connection first sends, pipelined: AUTH (when a password is set), SELECT (db != 0),
 * PING, then SCRIPT LOAD of every registered script. The client is *ready* once those replies
 * are in; an AUTH/SELECT/PING error (wrong password, server still LOADING) drops the connection
 * and retries. A lost or failed connection is retried after an exponential backoff with
 * jitter (backoff_min_ms doubling up to backoff_max_ms; reset once ready). Readiness changes
 * are reported to the state callback; while not ready, commands are refused at once rather
 * than queued, so a service sees the outage immediately and can answer 503 or slow down.
 *
 * Commands. cw_redis_command() and friends either
 *   - return CW_REDIS_OK: the command is queued, and its callback runs EXACTLY ONCE, later,
 *     from the loop: with the reply (possibly a Redis error reply, REDIS_REPLY_ERROR) and
 *     err == NULL, or with reply == NULL and err one of "timeout", "disconnected",
 *     "shutting down"; or
 *   - return a negative enum cw_redis_result and never call the callback.
 * A callback is never called from inside the function that queued its command. The reply is
 * owned by the client and valid only during the callback. SUBSCRIBE and MONITOR are refused:
 * this is a request/response client.
 *
 * Timeouts. Redis answers in order, so only the oldest command in flight is watched. When it
 * has waited command_timeout_ms, the connection is presumed dead: every command in flight
 * fails with "timeout" and the client reconnects. When idle, a PING every ping_interval_ms
 * finds a dead peer the same way. connect_timeout_ms bounds TCP connect plus the handshake.
 *
 * Backpressure. At most max_inflight commands are in flight; beyond that CW_REDIS_QUEUE_FULL
 * tells the caller to slow down (it is not an error to log).
 *
 * Scripts. cw_redis_script_new() registers Lua source once (at start-up, typically) and
 * computes its SHA-1 locally; runs send EVALSHA, and a NOSCRIPT reply (script cache flushed,
 * or a new server) is retried once with EVAL, so the callback sees only the script's reply.
 * Scripts belong to the client and are freed with it.
 *
 * Shutdown. cw_redis_close() refuses new commands (CW_REDIS_CLOSED), lets those in flight
 * finish and then disconnects; wait for cw_redis_idle() with a deadline, then cw_redis_free(),
 * which fails whatever is still in flight with "shutting down".
 *
 * Callbacks run on the loop's thread. Inside a callback, queuing more commands is fine;
 * cw_redis_free() is not (the client is in use: defer it to the loop).
 */
#ifndef CW_REDIS_H
#define CW_REDIS_H

#include <stddef.h>
#include <stdint.h>

#include <hiredis/hiredis.h>

struct event_base;

typedef struct cw_redis cw_redis;
typedef struct cw_redis_script cw_redis_script;

#define CW_REDIS_HOST_MAX 256
#define CW_REDIS_SECRET_MAX 256

struct cw_redis_options {
    char host[CW_REDIS_HOST_MAX];       /* name or IP ("127.0.0.1"); names resolve blocking */
    int port;                           /* 6379 */
    int db;                             /* SELECTed on every connect when not 0 */
    char username[CW_REDIS_SECRET_MAX]; /* ACL user for AUTH; "" = the default user */
    char password[CW_REDIS_SECRET_MAX]; /* "" = no AUTH; never logged */
    int command_timeout_ms;             /* 2000 */
    int connect_timeout_ms;             /* 2000: TCP connect plus the handshake */
    int max_inflight;                   /* 10000 */
    int backoff_min_ms;                 /* 100: first retry after 50..100 ms */
    int backoff_max_ms;                 /* 5000 */
    int ping_interval_ms;               /* 1000: PING when idle */
};

enum cw_redis_result {
    CW_REDIS_OK = 0,
    CW_REDIS_NOT_CONNECTED = -1, /* not ready (connecting, reconnecting): try later */
    CW_REDIS_QUEUE_FULL = -2,    /* max_inflight commands in flight: backpressure */
    CW_REDIS_CLOSED = -3,        /* cw_redis_close() was called */
    CW_REDIS_BAD_COMMAND = -4,   /* no arguments, bad format, SUBSCRIBE/MONITOR */
    CW_REDIS_NO_MEMORY = -5,
};

/* reply != NULL (err == NULL), or reply == NULL and err says why. */
typedef void cw_redis_reply_fn(void *arg, const redisReply *reply, const char *err);
/* ready: 1 when the client became ready, 0 when it stopped being ready. */
typedef void cw_redis_state_fn(void *arg, int ready);

struct cw_redis_stats {
    uint64_t commands;       /* queued (commands and script runs) */
    uint64_t refused;        /* refused at once (not connected, queue full, closed) */
    uint64_t errors;         /* completed with an error reply or reply == NULL */
    uint64_t timeouts;       /* completed with "timeout" */
    uint64_t reconnects;     /* times the client became ready again after the first */
    uint64_t script_retries; /* NOSCRIPT replies retried with EVAL */
    size_t in_flight;        /* queued, callback not yet called */
    int connected;           /* ready */
};

/* Defaults: 127.0.0.1:6379, db 0, no password, the timeouts and bounds above. */
void cw_redis_options_init(struct cw_redis_options *opt);
/* 0, or -1 with a message naming the bad option. */
int cw_redis_options_check(const struct cw_redis_options *opt, char *err, size_t errlen);
/* "redis://[[user]:password@]host[:port][/db]" (user and password may be %-encoded; host may
 * be "[ipv6]") into host, port, db, username and password; the other fields are left alone.
 * 0, or -1 with a message (which never contains the password) and opt unchanged. */
int cw_redis_parse_url(const char *url, struct cw_redis_options *opt, char *err, size_t errlen);

/* NULL with a message on bad options. Starts connecting once the loop runs. Sets SIGPIPE to
 * SIG_IGN unless the process already handles it (hiredis writes with write(2)). */
cw_redis *cw_redis_new(struct event_base *base, const struct cw_redis_options *opt, char *err,
                       size_t errlen);
/* Fails what is in flight with "shutting down" (those callbacks run inside this call). */
void cw_redis_free(cw_redis *r);

void cw_redis_on_state(cw_redis *r, cw_redis_state_fn *fn, void *arg);
/* 1 when commands are accepted: connected, handshake done, not closing. */
int cw_redis_is_ready(const cw_redis *r);

/* Binary safe; argvlen may be NULL for NUL-terminated arguments. cb may be NULL. */
int cw_redis_command(cw_redis *r, cw_redis_reply_fn *cb, void *arg, int argc, const char **argv,
                     const size_t *argvlen);
/* hiredis format: %s a C string, %b a pointer and a size_t length, %d %lld ... numbers.
 * Each %s/%b is one argument, whatever it contains. */
int cw_redis_commandf(cw_redis *r, cw_redis_reply_fn *cb, void *arg, const char *fmt, ...);
/* "queue full", "not connected", ... for a negative enum cw_redis_result. */
const char *cw_redis_strerror(int result);

/* NULL only when out of memory or source is empty. */
cw_redis_script *cw_redis_script_new(cw_redis *r, const char *source);
const char *cw_redis_script_sha(const cw_redis_script *s); /* 40 hex digits */
/* argv holds the nkeys keys, then the other arguments (argc in all). */
int cw_redis_script_run(cw_redis *r, const cw_redis_script *s, cw_redis_reply_fn *cb, void *arg,
                        int nkeys, int argc, const char **argv, const size_t *argvlen);

/* Refuses new commands (CW_REDIS_CLOSED); those in flight still get their replies, then the
 * connection is closed and never retried. May be called from a callback. */
void cw_redis_close(cw_redis *r);
size_t cw_redis_inflight(const cw_redis *r);
/* 1 when no command is in flight: after cw_redis_close(), the drain is over. */
int cw_redis_idle(const cw_redis *r);
void cw_redis_stats_get(const cw_redis *r, struct cw_redis_stats *st);

#endif
