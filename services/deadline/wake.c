#include "wake.h"

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "timers.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

struct dl_wake {
    struct event_base *base;
    struct cw_redis_options opt;
    dl_wake_fn *fn;
    dl_wake_state_fn *state;
    void *arg;
    redisAsyncContext *ac; /* NULL while disconnected */
    struct event *retry;
    int backoff_ms;
    bool subscribed, closing;
};

int dl_wake_parse(const char *msg, size_t len, unsigned *shard, int64_t *due_ms)
{
    char buf[48];
    if (!msg || len == 0 || len >= sizeof buf) return -1;
    memcpy(buf, msg, len);
    buf[len] = '\0';
    char *end;
    unsigned long s = strtoul(buf, &end, 10);
    if (end == buf || *end != ' ' || s >= DL_SHARDS) return -1;
    char *p = end + 1;
    long long d = strtoll(p, &end, 10);
    if (end == p || *end || d <= 0) return -1;
    *shard = (unsigned)s;
    *due_ms = d;
    return 0;
}

static void set_subscribed(dl_wake *w, bool on)
{
    if (w->subscribed == on) return;
    w->subscribed = on;
    if (on) w->backoff_ms = BACKOFF_MIN_MS;
    if (w->state && !w->closing) w->state(w->arg, on);
}

static void schedule_connect(dl_wake *w)
{
    if (w->closing) return;
    long ms = w->backoff_ms / 2 + random() % (w->backoff_ms / 2 + 1);
    w->backoff_ms = w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(w->retry, &tv);
}

static void on_reply(redisAsyncContext *ac, void *reply, void *privdata)
{
    dl_wake *w = privdata;
    redisReply *r = reply;
    (void)ac;
    if (!r || w->closing) return;
    if (r->type == REDIS_REPLY_ERROR) {
        /* a wrong password or a refused SUBSCRIBE: drop the connection and try again later */
        cw_warn("deadline.wake_refused", "error=\"%s\"", r->str);
        redisAsyncDisconnect(w->ac);
        return;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements != 3 ||
        r->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = r->element[0]->str;
    if (!strcmp(kind, "subscribe")) {
        set_subscribed(w, true);
    } else if (!strcmp(kind, "message") && r->element[2]->type == REDIS_REPLY_STRING) {
        unsigned shard;
        int64_t due;
        if (dl_wake_parse(r->element[2]->str, r->element[2]->len, &shard, &due) == 0)
            w->fn(w->arg, shard, due);
    }
}

static void on_connect(const redisAsyncContext *ac, int status)
{
    dl_wake *w = ac->data;
    if (status != REDIS_OK) { /* hiredis frees the context after this */
        cw_warn("deadline.wake_connect_failed", "host=%s port=%d error=\"%s\"", w->opt.host,
                w->opt.port, ac->errstr);
        w->ac = NULL;
        schedule_connect(w);
    }
}

static void on_disconnect(const redisAsyncContext *ac, int status)
{
    dl_wake *w = ac->data;
    (void)status;
    w->ac = NULL;
    if (w->closing) return;
    cw_warn("deadline.wake_disconnected", "host=%s port=%d error=\"%s\"", w->opt.host, w->opt.port,
            ac->errstr[0] ? ac->errstr : "closed");
    set_subscribed(w, false);
    schedule_connect(w);
}

static void connect_now(evutil_socket_t fd, short what, void *arg)
{
    dl_wake *w = arg;
    (void)fd;
    (void)what;
    redisAsyncContext *ac = redisAsyncConnect(w->opt.host, w->opt.port);
    if (!ac || ac->err) {
        cw_warn("deadline.wake_connect_failed", "host=%s port=%d error=\"%s\"", w->opt.host,
                w->opt.port, ac ? ac->errstr : "out of memory");
        if (ac) redisAsyncFree(ac);
        schedule_connect(w);
        return;
    }
    ac->data = w;
    w->ac = ac;
    if (redisLibeventAttach(ac, w->base) != REDIS_OK) {
        redisAsyncFree(ac);
        w->ac = NULL;
        schedule_connect(w);
        return;
    }
    /* a peer that vanished without a FIN is noticed, and the subscription made again */
    redisEnableKeepAlive(&ac->c);
    redisAsyncSetConnectCallback(ac, on_connect);
    redisAsyncSetDisconnectCallback(ac, on_disconnect);
    /* commands queue until the connection is up; errors come back to on_reply */
    if (w->opt.password[0]) {
        if (w->opt.username[0])
            redisAsyncCommand(ac, on_reply, w, "AUTH %s %s", w->opt.username, w->opt.password);
        else
            redisAsyncCommand(ac, on_reply, w, "AUTH %s", w->opt.password);
    }
    redisAsyncCommand(ac, on_reply, w, "SUBSCRIBE %s", DL_WAKE_CHANNEL);
}

dl_wake *dl_wake_new(struct event_base *base, const struct cw_redis_options *opt, dl_wake_fn *fn,
                     dl_wake_state_fn *state, void *arg)
{
    dl_wake *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->base = base;
    w->opt = *opt;
    w->fn = fn;
    w->state = state;
    w->arg = arg;
    w->backoff_ms = BACKOFF_MIN_MS;
    if (!(w->retry = evtimer_new(base, connect_now, w))) {
        free(w);
        return NULL;
    }
    struct timeval now = {0, 0};
    evtimer_add(w->retry, &now);
    return w;
}

bool dl_wake_subscribed(const dl_wake *w) { return w->subscribed; }

void dl_wake_free(dl_wake *w)
{
    if (!w) return;
    w->closing = true;
    if (w->ac) redisAsyncFree(w->ac); /* calls on_disconnect, which now does nothing */
    event_free(w->retry);
    explicit_bzero(&w->opt, sizeof w->opt);
    free(w);
}
