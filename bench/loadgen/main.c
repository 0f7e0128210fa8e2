/*
 * loadgen: the HTTP/1.1 load generator of the gateway benchmark (bench/gateway.sh).
 *
 * One thread, one libevent loop, N keep-alive connections speaking raw HTTP/1.1 over
 * bufferevents. evhttp's client would allocate a request object and a header queue per request;
 * all we need from an answer is its status, its Content-Length and where it ends.
 *
 * Two modes:
 *  1. Closed loop (default): each connection sends its next request as soon as the previous
 *     answer has arrived; latency runs from the send to the end of the answer. This measures
 *     how many requests a server can answer.
 *  2. Open loop (--rate R): request i is due at start + i/R whatever the server does. A due
 *     request goes out on any idle connection; when every connection is busy it waits for one,
 *     and the wait counts: latency runs from the due time, not from the send. A server that
 *     stalls for a second shows a second in the percentiles, instead of one slow request and a
 *     polite pause in the load (no coordinated omission).
 *
 * Requests due (open) or sent (closed) during --warmup are not counted, and warm-up requests
 * still waiting when the measured time begins are dropped. At the end, counted requests still
 * in flight get up to --timeout to finish; due requests that never went out are reported as
 * unsent. The result is one line of key=value pairs on stdout (summary_print()); the first
 * answer of each non-2xx status is shown on stderr, so that a benchmark of 404s or 422s
 * explains itself.
 *
 * With --log FILE, each counted request also gets one line there once it is answered or given
 * up (seq, due time since the epoch, the body's phone, status): the end-to-end benchmark
 * (bench/e2e.sh) joins it with what the SMS provider received.
 *
 * Bodies are realistic complaints for POST /v1/cases (docs/api.md), about 1 KiB each, with
 * Chinese text, a distinct mainland mobile number and a unique Idempotency-Key per request.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "bodies.h"
#include "hist.h"
#include "options.h"

#define MAX_LINE 8192         /* a status or header line longer than this is a protocol error */
#define MAX_BODY 8192         /* generated request bodies stay well under this */
#define SAMPLE_BYTES 300      /* how much of a non-2xx answer is shown */
#define MIN_TICK_NS 100000ULL /* open loop: at most 10,000 wakeups a second, batches beyond */
#define LATE_NS 1000000ULL    /* open loop: sent more than 1 ms after due = waited for a conn */
#define BACKOFF_MAX_MS 1000
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))

enum conn_state { CONN_CLOSED, CONN_CONNECTING, CONN_IDLE, CONN_BUSY };
enum parse_state { PARSE_STATUS, PARSE_HEADERS, PARSE_BODY };

struct lg;

struct lg_conn {
    struct lg *lg;
    struct bufferevent *bev;
    struct event *retry; /* frees a closed bufferevent, then reconnects after the backoff */
    enum conn_state state;
    int idle_pos; /* index in lg->idle, -1 when not idle */
    int fails;    /* consecutive failures since the last complete answer: the backoff */
    int backoff_ms;
    /* the request in flight */
    uint64_t start_ns; /* due time (open loop) or send time (closed loop) */
    uint64_t req_seq;  /* its request number (--log) */
    int counted;
    /* the answer being parsed */
    enum parse_state pstate;
    int status;
    int64_t content_length; /* -1: not given */
    int chunked, close_after, until_close, want_sample;
    uint64_t body_left;
    char sample[SAMPLE_BYTES];
    size_t sample_len;
};

struct lg_stats {
    uint64_t sent, completed, status[6], errors, timeouts, unfinished;
    uint64_t connect_errors, reconnects, late, loader_late, unsent, offered, warmup_skipped;
    uint64_t body_bytes;
};

struct lg {
    struct lg_opts o;
    struct event_base *base;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    struct lg_conn *conns;
    int *idle; /* open loop: stack of idle connections */
    int nidle;
    struct event *tick, *end_ev, *drain_ev, *sig_int, *sig_term;
    uint64_t t0, warm_end, end, stopped_at;
    uint64_t rt0_ns; /* CLOCK_REALTIME at t0: --log's times since the epoch */
    FILE *log;       /* --log, or NULL */
    int stopping;
    uint64_t next_idx;       /* open loop: the next request to send */
    uint64_t first_counted;  /* open loop: the first request due after the warm-up */
    uint64_t seq;            /* request number: phone numbers and keys */
    uint64_t inflight_count; /* counted requests in flight */
    struct lg_bodies bodies;
    char runid[24];
    unsigned char sample_seen[600];
    struct lg_stats st;
    struct lg_hist hist;
    char body[MAX_BODY];
};

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static struct timeval tv_from_ns(uint64_t ns)
{
    struct timeval tv = {.tv_sec = (time_t)(ns / 1000000000ULL),
                         .tv_usec = (suseconds_t)(ns % 1000000000ULL / 1000)};
    return tv;
}

/* --log: request c's line, status 0 for an error or timeout, -1 for still in flight. */
static void log_request(const struct lg_conn *c, int status)
{
    struct lg *lg = c->lg;
    if (!lg->log || !c->counted) return;
    char phone[16];
    lg_body_phone(&lg->bodies, c->req_seq, phone);
    uint64_t due_us = (lg->rt0_ns + (c->start_ns - lg->t0)) / 1000;
    fprintf(lg->log, "%" PRIu64 " %" PRIu64 " %s %d\n", c->req_seq, due_us, phone, status);
}

/* ---- connections ---- */

static void conn_connect(struct lg_conn *c);
static void conn_ready(struct lg_conn *c);
static void lg_dispatch(struct lg *lg, uint64_t now, int from_tick);
static void lg_maybe_done(struct lg *lg);

static void idle_push(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    c->idle_pos = lg->nidle;
    lg->idle[lg->nidle++] = (int)(c - lg->conns);
}

static void idle_remove(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    if (c->idle_pos < 0) return;
    int last = lg->idle[--lg->nidle];
    lg->idle[c->idle_pos] = last;
    lg->conns[last].idle_pos = c->idle_pos;
    c->idle_pos = -1;
}

static int conn_send(struct lg_conn *c, uint64_t start_ns)
{
    struct lg *lg = c->lg;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    uint64_t seq = lg->seq++;
    size_t len = 0;
    if (lg->o.post && (len = lg_body_build(&lg->bodies, seq, lg->body, sizeof lg->body)) == 0)
        return -1;
    int r =
        evbuffer_add_printf(out, "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: casewire-loadgen\r\n",
                            lg->o.post ? "POST" : "GET", lg->o.path, lg->o.host_header);
    if (r >= 0 && lg->o.post)
        r = evbuffer_add_printf(out, "Content-Type: application/json\r\nContent-Length: %zu\r\n",
                                len);
    if (r >= 0 && lg->o.post && lg->o.idempotency)
        r = evbuffer_add_printf(out, "Idempotency-Key: lg-%s-%" PRIu64 "\r\n", lg->runid, seq);
    if (r >= 0) r = evbuffer_add(out, "\r\n", 2);
    if (r >= 0 && len) r = evbuffer_add(out, lg->body, len);
    if (r < 0) return -1;

    struct timeval tv = tv_from_ns((uint64_t)(lg->o.timeout_s * 1e9));
    bufferevent_set_timeouts(c->bev, &tv, &tv);
    c->state = CONN_BUSY;
    c->start_ns = start_ns;
    c->req_seq = seq;
    c->counted = start_ns >= lg->warm_end && start_ns < lg->end;
    c->pstate = PARSE_STATUS;
    if (c->counted) {
        lg->st.sent++;
        lg->st.body_bytes += len;
        lg->inflight_count++;
    }
    return 0;
}

/* Closes the connection (accounting for a request in flight) and arranges the reconnect. The
 * bufferevent is freed from the retry event, never inside its own callback. */
static void conn_close(struct lg_conn *c, int timed_out)
{
    struct lg *lg = c->lg;
    if (c->state == CONN_BUSY && c->counted) {
        log_request(c, 0);
        lg->inflight_count--;
        if (timed_out)
            lg->st.timeouts++;
        else
            lg->st.errors++;
    }
    if (c->state == CONN_CONNECTING) lg->st.connect_errors++;
    idle_remove(c);
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    bufferevent_setcb(c->bev, NULL, NULL, NULL, NULL);
    c->state = CONN_CLOSED;
    /* The first failure reconnects at once (a server closing an idle keep-alive connection is
     * normal); repeated ones back off, so that a dead server is not hammered. */
    c->backoff_ms = c->fails == 0 ? 0 : 10 << (c->fails < 8 ? c->fails - 1 : 7);
    if (c->backoff_ms > BACKOFF_MAX_MS) c->backoff_ms = BACKOFF_MAX_MS;
    c->fails++;
    struct timeval now = {0, 0};
    evtimer_add(c->retry, &now);
    lg_maybe_done(lg);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct lg_conn *c = arg;
    if (c->bev) {
        bufferevent_free(c->bev);
        c->bev = NULL;
        if (c->backoff_ms > 0 && !c->lg->stopping) {
            struct timeval tv = {c->backoff_ms / 1000, c->backoff_ms % 1000 * 1000};
            evtimer_add(c->retry, &tv);
            return;
        }
    }
    if (c->lg->stopping) return;
    c->lg->st.reconnects++;
    conn_connect(c);
}

static int parse_status(struct lg_conn *c, const char *line)
{
    /* "HTTP/1.1 202 Accepted" */
    if (strncmp(line, "HTTP/1.", 7) != 0 || !line[7] || line[8] != ' ') return -1;
    char *end;
    long status = strtol(line + 9, &end, 10);
    if (end == line + 9 || status < 100 || status > 599) return -1;
    c->status = (int)status;
    c->content_length = -1;
    c->chunked = 0;
    c->close_after = line[7] == '0'; /* HTTP/1.0 closes unless told otherwise: we do not care */
    c->pstate = PARSE_HEADERS;
    return 0;
}

static int parse_header_end(struct lg_conn *c)
{
    if (c->status < 200) { /* an interim answer (100 Continue): the real one follows */
        c->pstate = PARSE_STATUS;
        return 0;
    }
    if (c->chunked) return -1; /* evhttp always sends Content-Length; no need for chunks */
    c->until_close = c->content_length < 0 && c->status != 204 && c->status != 304;
    c->body_left = c->content_length > 0 ? (uint64_t)c->content_length : 0;
    if (c->status == 204 || c->status == 304) c->body_left = 0;
    c->want_sample = c->status >= 300 && !c->lg->sample_seen[c->status];
    c->sample_len = 0;
    c->pstate = PARSE_BODY;
    return 0;
}

static int parse_header(struct lg_conn *c, const char *line)
{
    if (!*line) return parse_header_end(c);
    const char *colon = strchr(line, ':');
    if (!colon) return -1;
    const char *v = colon + 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t name_len = (size_t)(colon - line);
    if (name_len == 14 && strncasecmp(line, "Content-Length", 14) == 0) {
        char *end;
        errno = 0;
        long long n = strtoll(v, &end, 10);
        if (errno || end == v || n < 0) return -1;
        c->content_length = n;
    } else if (name_len == 10 && strncasecmp(line, "Connection", 10) == 0) {
        if (strcasestr(v, "close")) c->close_after = 1;
        if (strcasestr(v, "keep-alive")) c->close_after = 0;
    } else if (name_len == 17 && strncasecmp(line, "Transfer-Encoding", 17) == 0) {
        if (strcasestr(v, "chunked")) c->chunked = 1;
    }
    return 0;
}

/* Consumes what has arrived: 1 when the answer is complete, 0 for more, -1 on garbage. */
static int conn_parse(struct lg_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    while (c->pstate != PARSE_BODY) {
        size_t eol_len = 0;
        struct evbuffer_ptr eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_CRLF);
        if (eol.pos < 0) return evbuffer_get_length(in) > MAX_LINE ? -1 : 0;
        char line[MAX_LINE + 1];
        if ((size_t)eol.pos > MAX_LINE) return -1;
        evbuffer_remove(in, line, (size_t)eol.pos);
        line[eol.pos] = '\0';
        evbuffer_drain(in, eol_len);
        int r = c->pstate == PARSE_STATUS ? parse_status(c, line) : parse_header(c, line);
        if (r < 0) return -1;
    }
    size_t have = evbuffer_get_length(in);
    size_t take = c->until_close || have < c->body_left ? have : (size_t)c->body_left;
    if (c->want_sample && c->sample_len < SAMPLE_BYTES - 1) {
        size_t room = SAMPLE_BYTES - 1 - c->sample_len;
        ev_ssize_t got = evbuffer_copyout(in, c->sample + c->sample_len, take < room ? take : room);
        if (got > 0) c->sample_len += (size_t)got;
    }
    evbuffer_drain(in, take);
    if (c->until_close) return 0; /* complete at EOF */
    c->body_left -= take;
    return c->body_left == 0 ? 1 : 0;
}

static void conn_answered(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    uint64_t now = now_ns();
    if (c->want_sample && !lg->sample_seen[c->status]) {
        lg->sample_seen[c->status] = 1;
        c->sample[c->sample_len] = '\0';
        for (char *p = c->sample; *p; p++) /* one line on stderr, whatever the body */
            if (*p == '\n' || *p == '\r' || *p == '\t') *p = ' ';
        fprintf(stderr, "loadgen: first %d answer: %s\n", c->status, c->sample);
    }
    if (c->counted) {
        log_request(c, c->status);
        lg->inflight_count--;
        lg->st.completed++;
        lg->st.status[c->status / 100]++;
        hist_add(&lg->hist, now > c->start_ns ? (now - c->start_ns) / 1000 : 0);
    }
    c->fails = 0;
    bufferevent_set_timeouts(c->bev, NULL, NULL);
    if (c->close_after || c->until_close) {
        c->state = CONN_IDLE; /* nothing in flight any more: the close costs no request */
        conn_close(c, 0);
        return;
    }
    conn_ready(c);
    lg_maybe_done(lg);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    (void)bev;
    struct lg_conn *c = arg;
    /* A new request may be sent from conn_answered(): keep going while one is in flight. */
    while (c->state == CONN_BUSY) {
        int r = conn_parse(c);
        if (r < 0) {
            conn_close(c, 0);
            return;
        }
        if (r == 0) return;
        conn_answered(c);
    }
    /* Bytes nobody asked for: the server is confused, start afresh. */
    if (c->state == CONN_IDLE && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
        conn_close(c, 0);
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct lg_conn *c = arg;
    if (what & BEV_EVENT_CONNECTED) {
        int one = 1;
        /* Small requests must leave at once, not wait for Nagle. */
        setsockopt(bufferevent_getfd(bev), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        bufferevent_set_timeouts(bev, NULL, NULL);
        conn_ready(c);
        return;
    }
    if (what & BEV_EVENT_EOF && c->state == CONN_BUSY && c->until_close &&
        c->pstate == PARSE_BODY) {
        conn_answered(c); /* the body ran to the close */
        return;
    }
    conn_close(c, (what & BEV_EVENT_TIMEOUT) != 0);
}

static void conn_connect(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    c->bev = bufferevent_socket_new(lg->base, -1, BEV_OPT_CLOSE_ON_FREE);
    if (!c->bev) {
        fprintf(stderr, "loadgen: bufferevent_socket_new failed\n");
        event_base_loopbreak(lg->base);
        return;
    }
    bufferevent_setcb(c->bev, on_read, NULL, on_event, c);
    bufferevent_enable(c->bev, EV_READ | EV_WRITE);
    struct timeval tv = tv_from_ns((uint64_t)(lg->o.timeout_s * 1e9));
    bufferevent_set_timeouts(c->bev, &tv, &tv); /* bounds the connect too */
    c->state = CONN_CONNECTING;
    c->idle_pos = -1;
    c->until_close = 0;
    if (bufferevent_socket_connect(c->bev, (struct sockaddr *)&lg->addr, (int)lg->addrlen) < 0)
        conn_close(c, 0);
}

/* A connection can take a request: the next one at once (closed loop), or whatever is due. */
static void conn_ready(struct lg_conn *c)
{
    struct lg *lg = c->lg;
    c->state = CONN_IDLE;
    if (lg->stopping) return;
    if (lg->o.rate > 0) {
        idle_push(c);
        lg_dispatch(lg, now_ns(), 0);
        return;
    }
    if (conn_send(c, now_ns()) < 0) {
        fprintf(stderr, "loadgen: cannot build a request\n");
        event_base_loopbreak(lg->base);
    }
}

/* ---- the schedule ---- */

/* Open loop: request i is due at t0 + i/rate. */
static uint64_t due_time(const struct lg *lg, uint64_t i)
{
    return lg->t0 + (uint64_t)((double)i * 1e9 / lg->o.rate);
}
/* How many requests are due at `at`. */
static uint64_t due_count(const struct lg *lg, uint64_t at)
{
    if (at < lg->t0) return 0;
    return (uint64_t)((double)(at - lg->t0) * 1e-9 * lg->o.rate) + 1;
}

/* Sends what is due on idle connections. A request sent over 1 ms after it fell due waited
 * either for a free connection (sent when one came free: the server was slow) or for the
 * loader's own timer (sent from the tick: the loader was short of CPU). While requests wait,
 * every connection is busy, so the tick cannot send them: the two causes stay apart. */
static void lg_dispatch(struct lg *lg, uint64_t now, int from_tick)
{
    /* A backlog left from the warm-up is dropped when the measured time starts: it is not
     * counted, and an overloaded server would otherwise spend the whole measured time on it
     * (every counted request unsent, 0 accepted per second). */
    if (now >= lg->warm_end && lg->next_idx < lg->first_counted) {
        lg->st.warmup_skipped += lg->first_counted - lg->next_idx;
        lg->next_idx = lg->first_counted;
    }
    uint64_t due = due_count(lg, now < lg->end ? now : lg->end - 1);
    while (lg->next_idx < due && lg->nidle > 0) {
        uint64_t at = due_time(lg, lg->next_idx);
        struct lg_conn *c = &lg->conns[lg->idle[lg->nidle - 1]];
        idle_remove(c);
        if (conn_send(c, at) < 0) {
            fprintf(stderr, "loadgen: cannot build a request\n");
            event_base_loopbreak(lg->base);
            return;
        }
        if (c->counted && now > at && now - at > LATE_NS) {
            if (from_tick)
                lg->st.loader_late++;
            else
                lg->st.late++;
        }
        lg->next_idx++;
    }
}

static void timer_in(struct event *ev, uint64_t ns)
{
    struct timeval tv = tv_from_ns(ns);
    evtimer_add(ev, &tv);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct lg *lg = arg;
    if (lg->stopping) return;
    uint64_t now = now_ns();
    lg_dispatch(lg, now, 1);
    /* Wake when the next request falls due; batch when they come faster than the tick. */
    uint64_t next = due_time(lg, due_count(lg, now));
    timer_in(lg->tick, next > now + MIN_TICK_NS ? next - now : MIN_TICK_NS);
}

static void lg_maybe_done(struct lg *lg)
{
    if (lg->stopping && lg->inflight_count == 0) event_base_loopbreak(lg->base);
}

/* The end (or a signal): no new requests; counted ones in flight get --timeout to finish. */
static void lg_stop(struct lg *lg)
{
    if (lg->stopping) return;
    uint64_t now = now_ns();
    if (lg->o.rate > 0) {
        lg_dispatch(lg, now, 1);
        uint64_t until = now < lg->end ? now : lg->end - 1;
        uint64_t due = due_count(lg, until);
        lg->st.offered = due > lg->first_counted ? due - lg->first_counted : 0;
        lg->st.unsent = lg->st.offered > lg->st.sent ? lg->st.offered - lg->st.sent : 0;
    }
    lg->stopping = 1;
    lg->stopped_at = now < lg->end ? now : lg->end;
    timer_in(lg->drain_ev, (uint64_t)(lg->o.timeout_s * 1e9));
    lg_maybe_done(lg);
}

static void on_end(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    lg_stop(arg);
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct lg *lg = arg;
    lg->st.unfinished = lg->inflight_count;
    for (int i = 0; i < lg->o.connections; i++)
        if (lg->conns[i].state == CONN_BUSY) log_request(&lg->conns[i], -1);
    event_base_loopbreak(lg->base);
}

/* ---- set-up, summary, options ---- */

static void summary_print(const struct lg *lg)
{
    double secs = lg->stopped_at > lg->warm_end ? (double)(lg->stopped_at - lg->warm_end) / 1e9 : 0;
    const struct lg_stats *s = &lg->st;
    printf("mode=%s connections=%d duration_s=%.3f sent=%" PRIu64 " completed=%" PRIu64
           " status_2xx=%" PRIu64 " status_3xx=%" PRIu64 " status_4xx=%" PRIu64
           " status_5xx=%" PRIu64 " errors=%" PRIu64 " timeouts=%" PRIu64 " unfinished=%" PRIu64
           " connect_errors=%" PRIu64 " reconnects=%" PRIu64 " rate_2xx=%.1f",
           lg->o.rate > 0 ? "open" : "closed", lg->o.connections, secs, s->sent, s->completed,
           s->status[2], s->status[3], s->status[4], s->status[5], s->errors, s->timeouts,
           s->unfinished, s->connect_errors, s->reconnects,
           secs > 0 ? (double)s->status[2] / secs : 0.0);
    if (lg->o.rate > 0)
        printf(" offered_rate=%.1f offered=%" PRIu64 " late=%" PRIu64 " loader_late=%" PRIu64
               " unsent=%" PRIu64 " warmup_skipped=%" PRIu64,
               secs > 0 ? (double)s->offered / secs : 0.0, s->offered, s->late, s->loader_late,
               s->unsent, s->warmup_skipped);
    printf(" p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f p999_ms=%.3f max_ms=%.3f body_bytes_avg=%.0f\n",
           hist_percentile_ms(&lg->hist, 50), hist_percentile_ms(&lg->hist, 90),
           hist_percentile_ms(&lg->hist, 99), hist_percentile_ms(&lg->hist, 99.9),
           (double)lg->hist.max_us / 1000.0,
           s->sent ? (double)s->body_bytes / (double)s->sent : 0.0);
    fflush(stdout);
}

static int fd_limit_raise(int connections)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)connections + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -1;
    if (rl.rlim_cur >= need) return 0;
    rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need) {
        fprintf(stderr, "loadgen: %d connections need %lu descriptors; the limit is %lu\n",
                connections, (unsigned long)need, (unsigned long)rl.rlim_cur);
        return -1;
    }
    return 0;
}

static int lg_resolve(struct lg *lg)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(lg->o.host, lg->o.port, &hints, &res);
    if (rc != 0) {
        fprintf(stderr, "loadgen: cannot resolve %s:%s: %s\n", lg->o.host, lg->o.port,
                gai_strerror(rc));
        return -1;
    }
    memcpy(&lg->addr, res->ai_addr, res->ai_addrlen);
    lg->addrlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    lg_stop(arg);
}

static int lg_init(struct lg *lg)
{
    struct event_config *cfg = event_config_new();
    if (!cfg) return -1;
    /* Open-loop schedules need sub-millisecond timers (timerfd), not epoll's milliseconds. */
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    lg->base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    lg->conns = calloc((size_t)lg->o.connections, sizeof *lg->conns);
    lg->idle = calloc((size_t)lg->o.connections, sizeof *lg->idle);
    if (!lg->base || !lg->conns || !lg->idle) return -1;
    lg->tick = evtimer_new(lg->base, on_tick, lg);
    lg->end_ev = evtimer_new(lg->base, on_end, lg);
    lg->drain_ev = evtimer_new(lg->base, on_drain_timeout, lg);
    lg->sig_int = evsignal_new(lg->base, SIGINT, on_signal, lg);
    lg->sig_term = evsignal_new(lg->base, SIGTERM, on_signal, lg);
    if (!lg->tick || !lg->end_ev || !lg->drain_ev || !lg->sig_int || !lg->sig_term) return -1;
    evsignal_add(lg->sig_int, NULL);
    evsignal_add(lg->sig_term, NULL);
    for (int i = 0; i < lg->o.connections; i++) {
        lg->conns[i].lg = lg;
        lg->conns[i].idle_pos = -1;
        lg->conns[i].retry = evtimer_new(lg->base, on_retry, &lg->conns[i]);
        if (!lg->conns[i].retry) return -1;
    }
    lg_bodies_init(&lg->bodies, lg->o.seed);
    snprintf(lg->runid, sizeof lg->runid, "%" PRIx64, now_ns() ^ ((uint64_t)getpid() << 40));
    return 0;
}

static void lg_free(struct lg *lg)
{
    for (int i = 0; lg->conns && i < lg->o.connections; i++) {
        if (lg->conns[i].bev) bufferevent_free(lg->conns[i].bev);
        if (lg->conns[i].retry) event_free(lg->conns[i].retry);
    }
    struct event *evs[] = {lg->tick, lg->end_ev, lg->drain_ev, lg->sig_int, lg->sig_term};
    for (size_t i = 0; i < N_OF(evs); i++)
        if (evs[i]) event_free(evs[i]);
    free(lg->conns);
    free(lg->idle);
    if (lg->base) event_base_free(lg->base);
    free(lg);
}

static void lg_run(struct lg *lg)
{
    struct timespec rt;
    lg->t0 = now_ns();
    clock_gettime(CLOCK_REALTIME, &rt);
    lg->rt0_ns = (uint64_t)rt.tv_sec * 1000000000ULL + (uint64_t)rt.tv_nsec;
    lg->warm_end = lg->t0 + (uint64_t)(lg->o.warmup_s * 1e9);
    lg->end = lg->warm_end + (uint64_t)(lg->o.duration_s * 1e9);
    if (lg->o.rate > 0) lg->first_counted = due_count(lg, lg->warm_end - 1);
    timer_in(lg->end_ev, lg->end - lg->t0);
    for (int i = 0; i < lg->o.connections; i++) conn_connect(&lg->conns[i]);
    if (lg->o.rate > 0) timer_in(lg->tick, 0);
    event_base_dispatch(lg->base);
    if (!lg->stopping) { /* broken out of by an error: report what there is */
        lg->stopped_at = now_ns() < lg->end ? now_ns() : lg->end;
        lg->st.unfinished = lg->inflight_count;
    }
}

int main(int argc, char **argv)
{
    struct lg *lg = calloc(1, sizeof *lg);
    if (!lg) {
        fprintf(stderr, "loadgen: out of memory\n");
        return 1;
    }
    int rc = opts_parse(&lg->o, argc, argv);
    if (rc != 0) {
        free(lg);
        return rc > 0 ? 0 : 2;
    }
    if (lg->o.sample) {
        lg_bodies_init(&lg->bodies, lg->o.seed);
        size_t len = lg_body_build(&lg->bodies, 0, lg->body, sizeof lg->body);
        printf("%.*s\n", (int)len, lg->body);
        free(lg);
        return len ? 0 : 1;
    }
    /* A server closing a connection while we write must be an error code, not a death. */
    signal(SIGPIPE, SIG_IGN);
    if (fd_limit_raise(lg->o.connections) < 0 || lg_resolve(lg) < 0) {
        free(lg);
        return 1;
    }
    if (lg_init(lg) < 0) {
        fprintf(stderr, "loadgen: cannot set up the event loop\n");
        lg_free(lg);
        return 1;
    }
    if (lg->o.log_path[0] && !(lg->log = fopen(lg->o.log_path, "w"))) {
        fprintf(stderr, "loadgen: cannot write %s\n", lg->o.log_path);
        lg_free(lg);
        return 1;
    }
    lg_run(lg);
    summary_print(lg);
    int log_failed = lg->log && fclose(lg->log) != 0;
    if (log_failed) fprintf(stderr, "loadgen: could not write %s\n", lg->o.log_path);
    lg_free(lg);
    return log_failed ? 1 : 0;
}
