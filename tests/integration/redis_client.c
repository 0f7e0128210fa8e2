/*
 * The Redis client (common/redis.c) against a real redis-server; driven by redis_client.sh.
 *
 *   redis_client MODE PORT [DIR]
 *
 *   backpressure  max_inflight=5: the 6th command is refused; close drains; free fails the rest
 *   timeout       through a proxy that can swallow everything: commands time out, the client
 *                 reconnects; an idle client finds the dead peer by PING
 *   scripts       EVALSHA; SCRIPT FLUSH (by the driver) falls back to EVAL; a restart (by the
 *                 driver) reloads scripts on reconnect
 *   auth          AUTH and SELECT from a URL, again after CLIENT KILL; a wrong password
 *   stream        INCR every 2 ms while the driver kills and restarts redis
 *
 * Prints TAP lines ("ok - ..." / "not ok - ..."), "# phase=NAME" lines the driver waits for
 * (and DIR/NAME files it creates in reply), and exits 0 when every check passed. Each mode is
 * a small state machine stepped by a timer; every wait has a deadline.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include "log.h"
#include "redis.h"

#define MAX_CMDS 100000

static struct event_base *base;
static cw_redis *R;
static const char *mode, *dir;
static int redis_port, step, npass, nfail;
static uint64_t t_mark;

/* Per command id: queued (returned 0), callback count, outcome. */
static unsigned char queued[MAX_CMDS], calls[MAX_CMDS];
/* outcome: R reply, E error reply, t timeout, d disconnected, s shutting down */
static char outcome[MAX_CMDS];
static int issued, completed, dups;
static long long last_int;
static char last_str[2048]; /* the last string reply (binary, truncated): last_len bytes */
static size_t last_len;
static int ups, downs;
static uint64_t t_down; /* when the last "down" state callback came */
static int blackhole;   /* timeout mode: the proxy swallows bytes both ways */

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void check(int cond, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int cond, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s - %s: ", cond ? "ok" : "not ok", mode);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    if (cond)
        npass++;
    else
        nfail++;
}

static void done(void) { event_base_loopbreak(base); }

static void on_reply(void *arg, const redisReply *reply, const char *err)
{
    int id = (int)(intptr_t)arg;
    if (calls[id]++) {
        dups++;
        return;
    }
    completed++;
    if (reply) {
        outcome[id] = reply->type == REDIS_REPLY_ERROR ? 'E' : 'R';
        last_int = reply->type == REDIS_REPLY_INTEGER ? reply->integer : -1;
        last_len = !reply->str                    ? 0
                   : reply->len < sizeof last_str ? reply->len
                                                  : sizeof last_str - 1;
        memcpy(last_str, reply->str ? reply->str : "", last_len);
        last_str[last_len] = '\0';
    } else {
        outcome[id] = !strcmp(err, "timeout")         ? 't'
                      : !strcmp(err, "disconnected")  ? 'd'
                      : !strcmp(err, "shutting down") ? 's'
                                                      : '?';
    }
}

static void on_state(void *arg, int ready)
{
    (void)arg;
    if (ready) {
        ups++;
    } else {
        downs++;
        t_down = now_ms();
        blackhole = 0; /* heal the proxy at once, before the first retry can hit it */
    }
}

/* Queues argv[0..argc) on c (a script run when s != NULL) under a new id; returns the id, or
 * -1 when refused, with the result in *rc. */
static int issue_on(cw_redis *c, const cw_redis_script *s, int nkeys, int argc, const char **argv,
                    const size_t *lens, int *rc)
{
    if (issued >= MAX_CMDS) {
        *rc = CW_REDIS_QUEUE_FULL;
        return -1;
    }
    int id = issued++;
    void *arg = (void *)(intptr_t)id;
    *rc = s ? cw_redis_script_run(c, s, on_reply, arg, nkeys, argc, argv, lens)
            : cw_redis_command(c, on_reply, arg, argc, argv, lens);
    queued[id] = *rc == CW_REDIS_OK;
    return *rc == CW_REDIS_OK ? id : -1;
}

static int issue(const cw_redis_script *s, int nkeys, int argc, const char **argv,
                 const size_t *lens, int *rc)
{
    return issue_on(R, s, nkeys, argc, argv, lens, rc);
}

static int cmd1(const char *a0, int *rc) { return issue(NULL, 0, 1, &a0, NULL, rc); }
static int cmd2(const char *a0, const char *a1, int *rc)
{
    const char *argv[] = {a0, a1};
    return issue(NULL, 0, 2, argv, NULL, rc);
}

static int cmd3(const char *a0, const char *a1, const char *a2, int *rc)
{
    const char *argv[] = {a0, a1, a2};
    return issue(NULL, 0, 3, argv, NULL, rc);
}

static int count_outcome(int from, int to, char what)
{
    int n = 0;
    for (int i = from; i < to; i++) n += outcome[i] == what;
    return n;
}

static void check_exactly_once(void)
{
    int bad = 0, nq = 0;
    for (int i = 0; i < issued; i++) {
        nq += queued[i];
        bad += queued[i] ? calls[i] != 1 : calls[i] != 0;
    }
    check(bad == 0 && dups == 0 && nq == completed,
          "every queued command called back exactly once, refused ones never "
          "(issued=%d queued=%d completed=%d bad=%d dups=%d)",
          issued, nq, completed, bad, dups);
}

static int file_exists(const char *name)
{
    char path[1024];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir ? dir : ".", name);
    return stat(path, &st) == 0;
}

static cw_redis *client(int port, int max_inflight, int timeout_ms)
{
    struct cw_redis_options o;
    char err[256];
    cw_redis_options_init(&o);
    o.port = port;
    o.max_inflight = max_inflight;
    o.command_timeout_ms = timeout_ms;
    o.connect_timeout_ms = 5 * timeout_ms; /* longer: the command timer must not wait for it */
    o.backoff_min_ms = 20;
    o.backoff_max_ms = 200;
    o.ping_interval_ms = 100;
    cw_redis *r = cw_redis_new(base, &o, err, sizeof err);
    if (!r) {
        fprintf(stderr, "cw_redis_new: %s\n", err);
        exit(2);
    }
    cw_redis_on_state(r, on_state, NULL);
    return r;
}

/* ---- backpressure, close, free ---- */

static int id0, wait_id = -1; /* wait_id: the command whose reply the next step needs */

static void tick_backpressure(void)
{
    int rc, rc6, rc7;
    switch (step) {
    case 0:
        if (!cw_redis_is_ready(R)) return;
        id0 = issued;
        for (int i = 0; i < 5; i++) cmd1("PING", &rc);
        cmd1("PING", &rc6);
        cw_redis_script *s = cw_redis_script_new(R, "return 1");
        issue(s, 0, 0, NULL, NULL, &rc7);
        check(queued[id0] && queued[id0 + 1] && queued[id0 + 2] && queued[id0 + 3] &&
                  queued[id0 + 4],
              "5 commands queued");
        check(rc6 == CW_REDIS_QUEUE_FULL && rc7 == CW_REDIS_QUEUE_FULL,
              "the 6th command and a script run are refused with QUEUE_FULL (%s, %s)",
              cw_redis_strerror(rc6), cw_redis_strerror(rc7));
        check(cw_redis_inflight(R) == 5 && !cw_redis_idle(R), "in flight = 5, not idle");
        step = 1;
        break;
    case 1:
        if (!cw_redis_idle(R)) return;
        check(count_outcome(id0, id0 + 5, 'R') == 5 && calls[id0 + 5] == 0 && calls[id0 + 6] == 0,
              "the 5 got PONG, the refused ones were never called back");
        check(cmd1("PING", &rc) >= 0, "accepted again once drained");
        check(cw_redis_commandf(R, on_reply, NULL, "SUBSCRIBE %s", "ch") == CW_REDIS_BAD_COMMAND &&
                  issue(NULL, 0, 0, NULL, NULL, &rc) < 0 && rc == CW_REDIS_BAD_COMMAND,
              "SUBSCRIBE and an empty command are refused with BAD_COMMAND");
        id0 = issued++;
        rc = cw_redis_commandf(R, on_reply, (void *)(intptr_t)id0, "SET %s %b", "bp:bin",
                               "a\0b\r\n", (size_t)5);
        queued[id0] = rc == CW_REDIS_OK;
        wait_id = cmd2("GET", "bp:bin", &rc);
        step = 2;
        break;
    case 2:
        if (!cw_redis_idle(R)) return;
        check(outcome[id0] == 'R' && last_len == 5 && !memcmp(last_str, "a\0b\r\n", 5),
              "binary safe: SET %%b of \"a\\0b\\r\\n\" reads back 5 bytes");
        id0 = issued;
        for (int i = 0; i < 3; i++) cmd2("INCR", "bp:closed", &rc);
        cw_redis_close(R);
        cmd1("PING", &rc);
        check(rc == CW_REDIS_CLOSED, "after close: refused with CLOSED (%s)",
              cw_redis_strerror(rc));
        check(!cw_redis_is_ready(R), "after close: not ready");
        step = 3;
        break;
    case 3:
        if (!cw_redis_idle(R) || downs < 1) return;
        check(count_outcome(id0, id0 + 3, 'R') == 3, "close drained: the 3 in flight got replies");
        cw_redis_free(R);
        R = client(redis_port, 100, 2000);
        step = 4;
        break;
    case 4:
        if (!cw_redis_is_ready(R)) return;
        id0 = issued;
        for (int i = 0; i < 3; i++) cmd2("INCR", "bp:freed", &rc);
        cw_redis_free(R);
        R = NULL;
        check(count_outcome(id0, id0 + 3, 's') == 3,
              "free with 3 in flight: each failed with \"shutting down\" during free");
        check_exactly_once();
        done();
        break;
    }
}

/* ---- timeout, through a proxy that can swallow everything ---- */

struct pair {
    struct bufferevent *a, *b;
    struct pair *next, **pprev;
};
static struct pair *pairs;
static struct evconnlistener *listener;

static void pair_free(struct pair *p)
{
    if (p->next) p->next->pprev = p->pprev;
    *p->pprev = p->next;
    bufferevent_free(p->a);
    bufferevent_free(p->b);
    free(p);
}

static void pair_read(struct bufferevent *bev, void *arg)
{
    struct pair *p = arg;
    struct evbuffer *in = bufferevent_get_input(bev);
    if (blackhole)
        evbuffer_drain(in, evbuffer_get_length(in));
    else
        bufferevent_write_buffer(bev == p->a ? p->b : p->a, in);
}

static void pair_event(struct bufferevent *bev, short what, void *arg)
{
    (void)bev;
    if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) pair_free(arg);
}

static void on_accept(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa, int len,
                      void *arg)
{
    struct sockaddr_in to = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)redis_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct pair *p = calloc(1, sizeof *p);
    (void)l, (void)sa, (void)len, (void)arg;
    p->a = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
    p->b = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    if ((p->next = pairs)) pairs->pprev = &p->next;
    p->pprev = &pairs;
    pairs = p;
    bufferevent_setcb(p->a, pair_read, NULL, pair_event, p);
    bufferevent_setcb(p->b, pair_read, NULL, pair_event, p);
    bufferevent_enable(p->a, EV_READ | EV_WRITE);
    bufferevent_enable(p->b, EV_READ | EV_WRITE);
    if (bufferevent_socket_connect(p->b, (struct sockaddr *)&to, sizeof to) < 0) pair_free(p);
}

static int proxy_start(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    listener =
        evconnlistener_new_bind(base, on_accept, NULL, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                -1, (struct sockaddr *)&a, sizeof a);
    if (!listener || getsockname(evconnlistener_get_fd(listener), (struct sockaddr *)&a, &alen)) {
        fprintf(stderr, "proxy: cannot listen\n");
        exit(2);
    }
    return ntohs(a.sin_port);
}

enum { TO_MS = 300, PING_MS = 100, BACKOFF_MAX_MS = 200, SLACK_MS = 700 };

static void tick_timeout(void)
{
    int rc;
    struct cw_redis_stats st;
    if (wait_id >= 0 && !calls[wait_id]) return;
    switch (step) {
    case 0:
        if (!cw_redis_is_ready(R)) return;
        wait_id = id0 = cmd3("SET", "to:k", "v", &rc);
        step = 1;
        break;
    case 1:
        check(id0 >= 0 && outcome[id0] == 'R', "through the proxy: SET works");
        blackhole = 1;
        t_mark = now_ms();
        id0 = issued;
        for (int i = 0; i < 5; i++) wait_id = cmd2("GET", "to:k", &rc);
        step = 2;
        break;
    case 2:
        check(count_outcome(id0, id0 + 5, 't') == 5,
              "no answer: all 5 in flight fail with \"timeout\"");
        check(t_down - t_mark >= TO_MS - 10 && t_down - t_mark <= TO_MS + SLACK_MS,
              "timed out after %llu ms (timeout %d ms)", (unsigned long long)(t_down - t_mark),
              TO_MS);
        check(!cw_redis_is_ready(R) && downs == 1, "connection dropped (not ready)");
        step = 3;
        break;
    case 3:
        if (!cw_redis_is_ready(R)) return;
        check(now_ms() - t_down <= BACKOFF_MAX_MS + SLACK_MS, "reconnected %llu ms after the drop",
              (unsigned long long)(now_ms() - t_down));
        wait_id = id0 = cmd2("GET", "to:k", &rc);
        step = 4;
        break;
    case 4:
        check(id0 >= 0 && outcome[id0] == 'R' && !strcmp(last_str, "v"), "works again: GET = v");
        blackhole = 1; /* idle now: only the PING can notice */
        t_mark = now_ms();
        step = 5;
        break;
    case 5:
        if (downs < 2) return;
        check(t_down - t_mark <= PING_MS + TO_MS + SLACK_MS,
              "idle dead peer found by PING after %llu ms", (unsigned long long)(t_down - t_mark));
        step = 6;
        break;
    case 6:
        if (!cw_redis_is_ready(R)) return;
        wait_id = id0 = cmd1("PING", &rc);
        step = 7;
        break;
    case 7:
        check(id0 >= 0 && outcome[id0] == 'R', "works again after the idle drop");
        cw_redis_stats_get(R, &st);
        check(st.timeouts == 5 && st.reconnects >= 2 && st.in_flight == 0,
              "stats: timeouts=%llu reconnects=%llu in_flight=%zu", (unsigned long long)st.timeouts,
              (unsigned long long)st.reconnects, st.in_flight);
        check_exactly_once();
        done();
        break;
    }
}

/* ---- scripts ---- */

static cw_redis_script *incrby, *broken;
static const char bin_key[] = "sc:k\0\xff\r\n"; /* binary safe: NUL, CR LF */
static long long v1;
static uint64_t retries0;

static int run_incrby(const char *by, int *rc)
{
    const char *argv[] = {bin_key, by};
    const size_t lens[] = {sizeof bin_key - 1, strlen(by)};
    return issue(incrby, 1, 2, argv, lens, rc);
}

static uint64_t retries(void)
{
    struct cw_redis_stats st;
    cw_redis_stats_get(R, &st);
    return st.script_retries;
}

static void tick_scripts(void)
{
    int rc;
    if (wait_id >= 0 && !calls[wait_id]) return;
    switch (step) {
    case 0:
        if (!cw_redis_is_ready(R)) return;
        check(1, "ready although one registered script does not compile");
        wait_id = id0 = run_incrby("5", &rc);
        step = 1;
        break;
    case 1:
        v1 = last_int;
        check(id0 >= 0 && outcome[id0] == 'R' && v1 >= 5 && retries() == 0,
              "EVALSHA of a script loaded at connect: %lld, no NOSCRIPT retry", v1);
        wait_id = id0 = issue(broken, 0, 0, NULL, NULL, &rc);
        step = 2;
        break;
    case 2:
        check(id0 >= 0 && outcome[id0] == 'E' && strstr(last_str, "NOSCRIPT") == NULL &&
                  strstr(last_str, "compil") != NULL,
              "a broken script reports its compile error (\"%.60s\")", last_str);
        printf("# phase=flush-now\n");
        step = 3;
        break;
    case 3:
        if (!file_exists("flushed")) return;
        retries0 = retries();
        wait_id = id0 = run_incrby("7", &rc);
        step = 4;
        break;
    case 4:
        check(id0 >= 0 && outcome[id0] == 'R' && last_int == v1 + 7 && retries() == retries0 + 1,
              "after SCRIPT FLUSH: NOSCRIPT retried transparently, reply %lld", last_int);
        wait_id = id0 = run_incrby("7", &rc);
        step = 5;
        break;
    case 5:
        check(id0 >= 0 && outcome[id0] == 'R' && last_int == v1 + 14 && retries() == retries0 + 1,
              "the fallback re-cached the script: no second retry");
        printf("# phase=restart-now\n");
        step = 6;
        break;
    case 6:
        if (downs < 1 || !cw_redis_is_ready(R)) return;
        retries0 = retries();
        wait_id = id0 = run_incrby("1", &rc);
        step = 7;
        break;
    case 7:
        check(id0 >= 0 && outcome[id0] == 'R' && last_int >= 1 && retries() == retries0,
              "after a redis restart the script was reloaded on reconnect (no NOSCRIPT retry)");
        check_exactly_once();
        done();
        break;
    }
}

/* ---- auth: AUTH and SELECT from the URL, on every (re)connect ---- */

static cw_redis *B, *C; /* B: right password, db 3; C: wrong password */

static cw_redis *client_url(const char *fmt)
{
    struct cw_redis_options o;
    char url[128], err[256];
    cw_redis_options_init(&o);
    snprintf(url, sizeof url, fmt, redis_port);
    if (cw_redis_parse_url(url, &o, err, sizeof err)) {
        fprintf(stderr, "parse_url: %s\n", err);
        exit(2);
    }
    o.backoff_min_ms = 20;
    o.backoff_max_ms = 200;
    return cw_redis_new(base, &o, err, sizeof err);
}

static int config_pass(const char *pass, int *rc)
{
    const char *argv[] = {"CONFIG", "SET", "requirepass", pass};
    return issue(NULL, 0, 4, argv, NULL, rc);
}

static void tick_auth(void)
{
    int rc;
    const char *info[] = {"CLIENT", "INFO"};
    const char *kill[] = {"CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes"};
    struct cw_redis_stats st;
    if (wait_id >= 0 && !calls[wait_id]) return;
    switch (step) {
    case 0:
        if (!cw_redis_is_ready(R)) return;
        wait_id = id0 = config_pass("s3cret", &rc);
        step = 1;
        break;
    case 1:
        check(id0 >= 0 && outcome[id0] == 'R', "requirepass set");
        B = client_url("redis://:s3cret@127.0.0.1:%d/3");
        C = client_url("redis://:wrong@127.0.0.1:%d/3");
        t_mark = now_ms();
        step = 2;
        break;
    case 2:
        if (!cw_redis_is_ready(B)) return;
        wait_id = id0 = issue_on(B, NULL, 0, 2, info, NULL, &rc);
        step = 3;
        break;
    case 3:
        check(id0 >= 0 && outcome[id0] == 'R' && strstr(last_str, " db=3 "),
              "AUTH and SELECT from the URL: the connection is in db 3");
        wait_id = id0 = issue(NULL, 0, 6, kill, NULL, &rc);
        step = 4;
        break;
    case 4:
        check(id0 >= 0 && outcome[id0] == 'R' && last_int >= 1, "CLIENT KILL cut the client off");
        step = 5;
        break;
    case 5:
        cw_redis_stats_get(B, &st);
        if (st.reconnects < 1 || !cw_redis_is_ready(B)) return;
        wait_id = id0 = issue_on(B, NULL, 0, 2, info, NULL, &rc);
        step = 6;
        break;
    case 6:
        check(id0 >= 0 && outcome[id0] == 'R' && strstr(last_str, " db=3 "),
              "after a reconnect: AUTH and SELECT again (db 3)");
        step = 7;
        break;
    case 7:
        if (now_ms() - t_mark < 500) return; /* C has retried a few times by then */
        cw_redis_stats_get(C, &st);
        check(!cw_redis_is_ready(C) && !st.connected && st.reconnects == 0 &&
                  issue_on(C, NULL, 0, 2, info, NULL, &rc) < 0 && rc == CW_REDIS_NOT_CONNECTED,
              "a wrong password never becomes ready (%llu ms), commands refused",
              (unsigned long long)(now_ms() - t_mark));
        wait_id = id0 = config_pass("", &rc);
        step = 8;
        break;
    case 8:
        check(id0 >= 0 && outcome[id0] == 'R', "requirepass cleared");
        cw_redis_free(B);
        cw_redis_free(C);
        check_exactly_once();
        done();
        break;
    }
}

/* ---- stream: INCR every 2 ms across a redis kill and restart ---- */

enum { STREAM_OK = 200 };
static int ok_before, ok_after, failed_calls, refused;

static void tick_stream(void)
{
    int rc, id;
    struct cw_redis_stats st;
    static int seen;

    /* Account for replies since the last tick. */
    for (; seen < issued; seen++) {
        if (queued[seen] && !calls[seen]) break;
        if (!queued[seen]) continue;
        if (outcome[seen] == 'R')
            step >= 4 ? ok_after++ : ok_before++;
        else
            failed_calls++;
    }
    if (step == 0 && !cw_redis_is_ready(R)) return;
    if (step < 5) {
        id = cmd2("INCR", "stream:n", &rc);
        if (id < 0) refused++;
    }
    switch (step) {
    case 0:
        if (ok_before < STREAM_OK) return;
        printf("# phase=kill-now\n");
        step = 1;
        break;
    case 1: /* the driver paused redis (CLIENT PAUSE): kill it with commands in flight */
        if (cw_redis_inflight(R) < 10) return;
        printf("# phase=inflight\n");
        step = 2;
        break;
    case 2:
        if (!refused && !failed_calls) return;
        printf("# phase=outage\n");
        step = 3;
        break;
    case 3:
        if (!cw_redis_is_ready(R)) return;
        printf("# phase=reconnected\n");
        step = 4;
        break;
    case 4:
        if (ok_after < STREAM_OK) return;
        step = 5;
        break;
    case 5:
        if (!cw_redis_idle(R) || seen < issued) return;
        cw_redis_stats_get(R, &st);
        printf("# issued=%d ok_before=%d ok_after=%d failed=%d refused=%d\n", issued, ok_before,
               ok_after, failed_calls, refused);
        check_exactly_once();
        check(count_outcome(0, issued, 'd') >= 10 && refused > 0 &&
                  count_outcome(0, issued, '?') + count_outcome(0, issued, 'E') == 0,
              "the outage failed commands cleanly: %d in flight got \"disconnected\", %d refused",
              count_outcome(0, issued, 'd'), refused);
        check(ok_after >= STREAM_OK, "commands succeed again after the restart (%d)", ok_after);
        check(st.commands == (uint64_t)completed && st.reconnects == 1 && st.in_flight == 0,
              "stats agree: commands=%llu reconnects=%llu", (unsigned long long)st.commands,
              (unsigned long long)st.reconnects);
        done();
        break;
    }
}

/* ---- main ---- */

static void (*tick)(void);
static uint64_t deadline;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what, (void)arg;
    if (now_ms() > deadline) {
        check(0, "deadline passed at step %d", step);
        done();
        return;
    }
    tick();
}

int main(int argc, char **argv)
{
    int tick_ms = 10, limit_s = 30;
    if (argc < 3) {
        fprintf(stderr,
                "usage: redis_client backpressure|timeout|scripts|auth|stream PORT [DIR]\n");
        return 2;
    }
    mode = argv[1];
    redis_port = atoi(argv[2]);
    dir = argc > 3 ? argv[3] : NULL;
    setvbuf(stdout, NULL, _IOLBF, 0);
    cw_log_init("itest", "info");
    base = event_base_new();

    if (!strcmp(mode, "backpressure")) {
        tick = tick_backpressure;
        R = client(redis_port, 5, 2000);
    } else if (!strcmp(mode, "timeout")) {
        tick = tick_timeout;
        R = client(proxy_start(), 100, TO_MS);
    } else if (!strcmp(mode, "scripts")) {
        tick = tick_scripts;
        R = client(redis_port, 100, 2000);
        incrby = cw_redis_script_new(R, "return redis.call('INCRBY', KEYS[1], ARGV[1])");
        broken = cw_redis_script_new(R, "return +");
    } else if (!strcmp(mode, "auth")) {
        tick = tick_auth;
        R = client(redis_port, 100, 2000);
    } else if (!strcmp(mode, "stream")) {
        tick = tick_stream;
        tick_ms = 2;
        limit_s = 45;
        R = client(redis_port, 1000, 1000);
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 2;
    }
    deadline = now_ms() + (uint64_t)limit_s * 1000;
    struct event *t = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, tick_ms * 1000};
    event_add(t, &tv);
    event_base_dispatch(base);

    cw_redis_free(R);
    event_free(t);
    while (pairs) pair_free(pairs);
    if (listener) evconnlistener_free(listener);
    event_base_free(base);
    if (npass + nfail == 0) check(0, "no checks ran");
    return nfail ? 1 : 0;
}
