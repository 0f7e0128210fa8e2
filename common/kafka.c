#include "kafka.h"

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include "ids.h"
#include "log.h"

/* Work done per wakeup before yielding to other events (memcached's reqs_per_event). */
#define KAFKA_BATCH_PER_WAKEUP 200
/* Safety net: serve the queues at least this often even if no wakeup arrives. */
#define KAFKA_TICK_MS 100
/* A consumer at its in-flight limit still takes one message this often, so rebalances and
 * errors queued behind messages are served and max.poll.interval.ms is never exceeded. */
#define KAFKA_SATURATED_POLL_MS 1000
/* Saturated this long (effects stuck: Redis or Kafka down), the partitions are paused, so the
 * one-per-second polls above serve only rebalances and errors and in-flight stops growing. */
#define KAFKA_SATURATED_PAUSE_MS 5000

/* What producer and consumer share: the handle, its loop wiring, readiness, fatal hook. */
struct kbase {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* the queue the loop serves */
    int pipefd[2];           /* librdkafka writes to [1] when the queue becomes non-empty */
    struct event *wake_ev, *tick_ev;
    void (*serve)(struct kbase *); /* producer or consumer specific */
    int ready;
    void (*fatal_fn)(void *, const char *);
    void *fatal_arg;
    int fatal_raised;
    const char *role;                            /* "producer" / "consumer" for logs */
    void (*stats)(struct kbase *, json_t *root); /* more from the statistics, or NULL */
};

/* ---- shared: configuration, callbacks and loop wiring ---- */

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen)
{
    char e[256];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof e) != RD_KAFKA_CONF_OK) {
        /* The value is never shown: CASEWIRE_KAFKA_CONF carries passwords. */
        (void)v;
        snprintf(err, errlen, "kafka setting %s: %s", k, e);
        return -1;
    }
    return 0;
}

/* "a=b,c=d" from the operator: extra properties for real clusters (security.protocol...).
 * Errors name the item's position and key, never a value (it may be a password). */
static int conf_set_extra(rd_kafka_conf_t *conf, const char *extra, char *err, size_t errlen)
{
    if (!extra || !*extra) return 0;
    char *copy = strdup(extra), *save = NULL;
    int rc = 0, item = 0;
    if (!copy) return -1;
    for (char *kv = strtok_r(copy, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        item++;
        if (!eq || eq == kv) {
            snprintf(err, errlen,
                     "CASEWIRE_KAFKA_CONF item %d is not key=value (values may not contain commas)",
                     item);
            rc = -1;
            break;
        }
        *eq = '\0';
        if ((rc = conf_set(conf, kv, eq + 1, err, errlen)) != 0) break;
    }
    free(copy);
    return rc;
}

static void raise_fatal(struct kbase *kb, const char *reason)
{
    if (kb->fatal_raised) return;
    kb->fatal_raised = 1;
    cw_error("kafka.fatal", "role=%s reason=\"%s\"", kb->role, reason);
    if (kb->fatal_fn) kb->fatal_fn(kb->fatal_arg, reason);
}

static void on_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    struct kbase *kb = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char why[512];
        rd_kafka_fatal_error(rk, why, sizeof why);
        raise_fatal(kb, why);
        return;
    }
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) kb->ready = 0;
    /* Transient: librdkafka retries by itself. */
    cw_warn("kafka.error", "role=%s code=%s reason=\"%s\"", kb->role,
            rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    enum cw_log_level lv = level <= 3 ? CW_LOG_ERROR : level <= 5 ? CW_LOG_WARN : CW_LOG_DEBUG;
    cw_log(lv, "kafka.log", "facility=%s msg=\"%s\"", fac, buf);
}

/* Ready when some real broker (nodeid >= 0) is UP; librdkafka sends statistics every second. */
static int on_stats(rd_kafka_t *rk, char *json, size_t len, void *opaque)
{
    (void)rk;
    struct kbase *kb = opaque;
    json_error_t jerr;
    json_t *root = json_loadb(json, len, 0, &jerr);
    json_t *brokers = root ? json_object_get(root, "brokers") : NULL;
    const char *name;
    json_t *b;
    int up = 0;
    json_object_foreach(brokers, name, b)
    {
        const char *state = json_string_value(json_object_get(b, "state"));
        json_int_t nodeid = json_integer_value(json_object_get(b, "nodeid"));
        if (state && strcmp(state, "UP") == 0 && nodeid >= 0) up = 1;
    }
    kb->ready = up;
    if (root && kb->stats) kb->stats(kb, root);
    json_decref(root);
    return 0; /* we do not keep json: librdkafka frees it */
}

static void on_wake(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    char drain[64];
    while (read(fd, drain, sizeof drain) > 0) {
    }
    struct kbase *kb = arg;
    kb->serve(kb);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct kbase *kb = arg;
    kb->serve(kb);
}

static rd_kafka_conf_t *kbase_conf(struct kbase *kb, const struct cw_kafka_options *opt, char *err,
                                   size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!opt->brokers || !*opt->brokers) {
        snprintf(err, errlen, "no Kafka brokers given (set KAFKA_BROKERS)");
        goto fail;
    }
    if (conf_set(conf, "bootstrap.servers", opt->brokers, err, errlen) ||
        conf_set(conf, "client.id", opt->client_id ? opt->client_id : "casewire", err, errlen) ||
        conf_set(conf, "statistics.interval.ms", "1000", err, errlen) ||
        conf_set(conf, "log.queue", "true", err, errlen) ||
        /* Small requests (one case, one delivery report) must not wait for the peer's delayed
         * ACK: with Nagle on, every produce after the first waits up to 40 ms. */
        conf_set(conf, "socket.nagle.disable", "true", err, errlen) ||
        /* back within a second of a broker coming back, not librdkafka's default 10 s */
        conf_set(conf, "reconnect.backoff.max.ms", "1000", err, errlen))
        goto fail;
    rd_kafka_conf_set_opaque(conf, kb);
    rd_kafka_conf_set_error_cb(conf, on_error);
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_conf_set_stats_cb(conf, on_stats);
    return conf;
fail:
    rd_kafka_conf_destroy(conf);
    return NULL;
}

/* After rd_kafka_new: route logs to `queue`, make the loop serve it. */
static int kbase_wire(struct kbase *kb, struct event_base *base, char *err, size_t errlen)
{
    kb->pipefd[0] = kb->pipefd[1] = -1;
    if (pipe2(kb->pipefd, O_NONBLOCK | O_CLOEXEC) != 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    rd_kafka_set_log_queue(kb->rk, kb->queue);
    rd_kafka_queue_io_event_enable(kb->queue, kb->pipefd[1], "1", 1);
    kb->wake_ev = event_new(base, kb->pipefd[0], EV_READ | EV_PERSIST, on_wake, kb);
    kb->tick_ev = event_new(base, -1, EV_PERSIST, on_tick, kb);
    struct timeval tick = {0, KAFKA_TICK_MS * 1000};
    if (!kb->wake_ev || !kb->tick_ev || event_add(kb->wake_ev, NULL) ||
        event_add(kb->tick_ev, &tick)) {
        snprintf(err, errlen, "cannot register Kafka events with the loop");
        return -1;
    }
    return 0;
}

static void kbase_unwire(struct kbase *kb)
{
    if (kb->queue) rd_kafka_queue_io_event_enable(kb->queue, -1, NULL, 0);
    if (kb->wake_ev) event_free(kb->wake_ev);
    if (kb->tick_ev) event_free(kb->tick_ev);
    kb->wake_ev = kb->tick_ev = NULL;
    for (int i = 0; i < 2; i++)
        if (kb->pipefd[i] >= 0) close(kb->pipefd[i]);
    kb->pipefd[0] = kb->pipefd[1] = -1;
}

/* ---- producer ---- */

struct cw_producer {
    struct kbase kb;
    size_t pending;
    int closed;
};

struct delivery {
    cw_delivery_fn *cb;
    void *opaque;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    cw_producer *p = opaque;
    struct delivery *d = m->_private;
    p->pending--;
    if (m->err == 0) p->kb.ready = 1;
    if (d) {
        d->cb(d->opaque, m->err, m->err ? rd_kafka_err2str(m->err) : NULL);
        free(d);
    }
}

static void producer_serve(struct kbase *kb)
{
    /* rd_kafka_poll serves what is queued now: delivery reports, errors, logs, stats. */
    rd_kafka_poll(kb->rk, 0);
}

cw_producer *cw_producer_new(struct event_base *base, const struct cw_kafka_options *opt, char *err,
                             size_t errlen)
{
    cw_producer *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->kb.role = "producer";
    p->kb.serve = producer_serve;
    p->kb.pipefd[0] = p->kb.pipefd[1] = -1;
    char num[32];
    rd_kafka_conf_t *conf = kbase_conf(&p->kb, opt, err, errlen);
    if (!conf) goto fail;
    /* Tuning first, then the operator's CASEWIRE_KAFKA_CONF (which may change any of it),
     * then what the promises rest on, which it may not. */
    snprintf(num, sizeof num, "%d", opt->linger_ms > 0 ? opt->linger_ms : 2);
    if (conf_set(conf, "linger.ms", num, err, errlen) ||
        conf_set_extra(conf, opt->extra, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    snprintf(num, sizeof num, "%d",
             opt->delivery_timeout_ms > 0 ? opt->delivery_timeout_ms : 30000);
    if (conf_set(conf, "enable.idempotence", "true", err, errlen) ||
        conf_set(conf, "acks", "all", err, errlen) ||
        conf_set(conf, "message.timeout.ms", num, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    /* The opaque given to the dr callback is the conf opaque: our kbase, first member. */
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    char e[256];
    p->kb.rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, e, sizeof e);
    if (!p->kb.rk) {
        snprintf(err, errlen, "kafka producer: %s", e);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    p->kb.queue = rd_kafka_queue_get_main(p->kb.rk);
    if (kbase_wire(&p->kb, base, err, errlen) != 0) goto fail;
    return p;
fail:
    cw_producer_free(p);
    return NULL;
}

int cw_producer_send(cw_producer *p, const char *topic, const void *key, size_t keylen,
                     const void *value, size_t len, cw_delivery_fn *cb, void *opaque)
{
    if (p->kb.fatal_raised || p->closed) return CW_PRODUCE_FAILED;
    struct delivery *d = NULL;
    if (cb) {
        d = malloc(sizeof *d);
        if (!d) return CW_PRODUCE_QUEUE_FULL;
        d->cb = cb;
        d->opaque = opaque;
    }
    rd_kafka_resp_err_t e = rd_kafka_producev(
        p->kb.rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY((void *)key, keylen),
        RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
        RD_KAFKA_V_OPAQUE(d), RD_KAFKA_V_END);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR) {
        p->pending++;
        return CW_PRODUCE_OK;
    }
    free(d);
    if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL) return CW_PRODUCE_QUEUE_FULL;
    cw_warn("kafka.produce_refused", "topic=%s code=%s", topic, rd_kafka_err2name(e));
    return CW_PRODUCE_FAILED;
}

size_t cw_producer_pending(const cw_producer *p) { return p->pending; }
int cw_producer_is_ready(const cw_producer *p) { return p->kb.ready && !p->kb.fatal_raised; }

void cw_producer_on_fatal(cw_producer *p, void (*fn)(void *, const char *), void *arg)
{
    p->kb.fatal_fn = fn;
    p->kb.fatal_arg = arg;
}

void cw_producer_close(cw_producer *p)
{
    if (!p || p->closed) return;
    p->closed = 1;
    if (!p->kb.rk) return;
    /* Whatever is still queued fails now, through its delivery callback, exactly once. The
     * purge reports arrive through the queue: serve it until all are in (bounded). */
    rd_kafka_purge(p->kb.rk, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT);
    int64_t until = cw_mono_ms() + 5000;
    while (p->pending && cw_mono_ms() < until) rd_kafka_poll(p->kb.rk, 50);
    if (p->pending)
        cw_error("kafka.close_incomplete",
                 "pending=%zu reason=\"delivery reports missing after purge\"", p->pending);
}

void cw_producer_free(cw_producer *p)
{
    if (!p) return;
    cw_producer_close(p);
    kbase_unwire(&p->kb);
    if (p->kb.queue) rd_kafka_queue_destroy(p->kb.queue);
    if (p->kb.rk) rd_kafka_destroy(p->kb.rk);
    free(p);
}

/* ---- consumer ---- */

/* In-flight messages of one assigned partition, in offset order. */
struct ptrack {
    char *topic;
    int32_t partition;
    int revoked; /* no longer ours: finish in-flight messages, store nothing */
    TAILQ_HEAD(, cw_kmsg) inflight;
    LIST_ENTRY(ptrack) link;
};

struct cw_kmsg {
    rd_kafka_message_t *rkm;
    struct ptrack *pt;
    cw_consumer *c;
    int done;
    TAILQ_ENTRY(cw_kmsg) link;
};

struct cw_consumer {
    struct kbase kb;
    struct cw_consumer_options opt;
    LIST_HEAD(, ptrack) parts;   /* assigned partitions */
    LIST_HEAD(, ptrack) revoked; /* no longer assigned, messages still in flight */
    char *group_id;
    struct ptrack *last; /* lookup cache: messages come in runs per partition */
    size_t inflight, nparts;
    int paused, stopped, closing, closed;
    int saturated;           /* at max_inflight: messages wait in librdkafka's bounded queue */
    int64_t last_poll_ms;    /* monotonic */
    int64_t saturated_since; /* monotonic, when saturated */
    size_t inflight_peak;
    uint64_t received, done, rebalances;
    /* per subscribed topic: what this member still has to consume (cw_consumer_lag) */
    struct {
        char *topic;
        int64_t lag;
    } lag[CW_CONSUMER_MAX_TOPICS];
    size_t nlag;
};

/* From the statistics (every second): per subscribed topic, the sum over this member's
 * partitions of the high watermark minus the offset it stored (its effects are durable up to
 * there). Partitions librdkafka does not know a lag for yet (-1) are left out. */
static void consumer_stats(struct kbase *kb, json_t *root)
{
    cw_consumer *c = (cw_consumer *)kb; /* kb is its first member */
    json_t *topics = json_object_get(root, "topics");
    for (size_t i = 0; i < c->nlag; i++) {
        json_t *parts = json_object_get(json_object_get(topics, c->lag[i].topic), "partitions");
        const char *id;
        json_t *p;
        int64_t sum = 0;
        json_object_foreach(parts, id, p)
        {
            if (!strcmp(id, "-1")) continue; /* librdkafka's internal UA partition */
            json_t *v = json_object_get(p, "consumer_lag_stored");
            if (!v) v = json_object_get(p, "consumer_lag");
            json_int_t lag = json_integer_value(v);
            if (json_is_integer(v) && lag > 0) sum += lag;
        }
        c->lag[i].lag = sum;
    }
}

static struct ptrack *ptrack_find(cw_consumer *c, const char *topic, int32_t partition)
{
    if (c->last && c->last->partition == partition && strcmp(c->last->topic, topic) == 0)
        return c->last;
    struct ptrack *pt;
    LIST_FOREACH(pt, &c->parts, link)
    {
        if (pt->partition == partition && strcmp(pt->topic, topic) == 0) return c->last = pt;
    }
    return NULL;
}

static void ptrack_release_if_empty(struct ptrack *pt)
{
    if (pt->revoked && TAILQ_EMPTY(&pt->inflight)) {
        LIST_REMOVE(pt, link);
        free(pt->topic);
        free(pt);
    }
}

static void set_paused(cw_consumer *c, int pause)
{
    if (c->paused == pause) return;
    rd_kafka_topic_partition_list_t *a = NULL;
    if (rd_kafka_assignment(c->kb.rk, &a) == 0 && a) {
        if (pause)
            rd_kafka_pause_partitions(c->kb.rk, a);
        else
            rd_kafka_resume_partitions(c->kb.rk, a);
        rd_kafka_topic_partition_list_destroy(a);
    }
    c->paused = pause;
}

static int cooperative(cw_consumer *c)
{
    const char *proto = rd_kafka_rebalance_protocol(c->kb.rk);
    return proto && strcmp(proto, "COOPERATIVE") == 0;
}

/* Applies an assignment change; a failure leaves the consumer consuming nothing while it
 * looks healthy, so it is fatal. */
static void apply_assignment(cw_consumer *c, rd_kafka_topic_partition_list_t *parts, int assign)
{
    const char *why = NULL;
    if (cooperative(c)) {
        rd_kafka_error_t *e = assign ? rd_kafka_incremental_assign(c->kb.rk, parts)
                                     : rd_kafka_incremental_unassign(c->kb.rk, parts);
        if (e) {
            cw_error("kafka.assign_failed", "group=%s reason=\"%s\"", c->group_id,
                     rd_kafka_error_string(e));
            why = "partition assignment failed";
            rd_kafka_error_destroy(e);
        }
    } else {
        rd_kafka_resp_err_t e = rd_kafka_assign(c->kb.rk, assign ? parts : NULL);
        if (e) {
            cw_error("kafka.assign_failed", "group=%s code=%s", c->group_id, rd_kafka_err2name(e));
            why = "partition assignment failed";
        }
    }
    if (why) raise_fatal(&c->kb, why);
}

static void on_assign(cw_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        struct ptrack *pt = calloc(1, sizeof *pt);
        if (!pt || !(pt->topic = strdup(parts->elems[i].topic))) {
            free(pt);
            raise_fatal(&c->kb, "out of memory on partition assignment");
            return;
        }
        pt->partition = parts->elems[i].partition;
        TAILQ_INIT(&pt->inflight);
        LIST_INSERT_HEAD(&c->parts, pt, link);
        c->nparts++;
    }
    apply_assignment(c, parts, 1);
    if (c->stopped || c->paused) rd_kafka_pause_partitions(c->kb.rk, parts);
    c->kb.ready = 1;
    cw_info("kafka.assigned", "group=%s partitions=%d total=%zu", c->group_id, parts->cnt,
            c->nparts);
}

static void on_revoke(cw_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        struct ptrack *pt = ptrack_find(c, parts->elems[i].topic, parts->elems[i].partition);
        if (!pt) continue;
        LIST_REMOVE(pt, link);
        if (c->last == pt) c->last = NULL;
        c->nparts--;
        pt->revoked = 1;
        LIST_INSERT_HEAD(&c->revoked, pt, link);
        ptrack_release_if_empty(pt);
    }
    /* With auto-commit on, librdkafka commits the stored offsets as part of unassigning. */
    apply_assignment(c, parts, 0);
    cw_info("kafka.revoked", "group=%s partitions=%d total=%zu", c->group_id, parts->cnt,
            c->nparts);
}

static void on_rebalance(rd_kafka_t *rk, rd_kafka_resp_err_t err,
                         rd_kafka_topic_partition_list_t *parts, void *opaque)
{
    (void)rk;
    cw_consumer *c = opaque;
    c->rebalances++;
    if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
        on_assign(c, parts);
    else
        on_revoke(c, parts);
}

static void handle_message(cw_consumer *c, rd_kafka_message_t *rkm)
{
    if (rkm->err) {
        if (rkm->err == RD_KAFKA_RESP_ERR__FATAL)
            raise_fatal(&c->kb, rd_kafka_message_errstr(rkm));
        else if (rkm->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            cw_warn("kafka.consume_error", "code=%s reason=\"%s\"", rd_kafka_err2name(rkm->err),
                    rd_kafka_message_errstr(rkm));
        rd_kafka_message_destroy(rkm);
        return;
    }
    struct ptrack *pt = ptrack_find(c, rd_kafka_topic_name(rkm->rkt), rkm->partition);
    if (!pt || c->stopped) {
        /* Not ours (anymore) or shutting down: not handled, not stored, so redelivered. */
        rd_kafka_message_destroy(rkm);
        return;
    }
    cw_kmsg *m = calloc(1, sizeof *m);
    if (!m) {
        /* Not stored: it comes back after a restart. Better to stop than to skip it. */
        rd_kafka_message_destroy(rkm);
        raise_fatal(&c->kb, "out of memory for a consumed message");
        return;
    }
    m->rkm = rkm;
    m->pt = pt;
    m->c = c;
    TAILQ_INSERT_TAIL(&pt->inflight, m, link);
    c->inflight++;
    if (c->inflight > c->inflight_peak) c->inflight_peak = c->inflight;
    c->received++;
    c->opt.handler(c->opt.handler_arg, m);
}

/* Backpressure: at max_inflight the consumer stops taking messages from librdkafka's queue,
 * whose size (queued.max.messages.kbytes) then stops the fetching. Pausing the partitions
 * instead would be ~400x slower: librdkafka discards what it prefetched on pause and fetches
 * it again on resume (measured: 542 vs 214,285 msg/s). Pause is kept for shutdown only. */
static int may_take(cw_consumer *c, int64_t now)
{
    int full = c->inflight >= (size_t)c->opt.max_inflight;
    if (full && !c->saturated) c->saturated_since = now;
    c->saturated = full;
    if (full && !c->paused && now - c->saturated_since >= KAFKA_SATURATED_PAUSE_MS) {
        cw_warn("kafka.stalled",
                "group=%s inflight=%zu reason=\"effects not completing; fetching paused\"",
                c->group_id, c->inflight);
        set_paused(c, 1);
    }
    return !full || now - c->last_poll_ms >= KAFKA_SATURATED_POLL_MS;
}

static void consumer_serve(struct kbase *kb)
{
    cw_consumer *c = (cw_consumer *)kb;
    if (c->closed) return;
    int64_t now = cw_mono_ms();
    for (int n = 0; n < KAFKA_BATCH_PER_WAKEUP && may_take(c, now); n++) {
        /* Serves rebalances, errors, logs and statistics too. */
        rd_kafka_message_t *rkm = rd_kafka_consumer_poll(kb->rk, 0);
        c->last_poll_ms = now;
        if (!rkm) break;
        handle_message(c, rkm);
        /* More may be queued; librdkafka signals only when the queue was empty. */
        if (n == KAFKA_BATCH_PER_WAKEUP - 1) event_active(kb->wake_ev, EV_READ, 0);
    }
    if (c->closing && !c->closed && rd_kafka_consumer_closed(kb->rk)) {
        c->closed = 1;
        cw_info("kafka.consumer_closed", "group=%s", c->group_id);
    }
}

cw_consumer *cw_consumer_new(struct event_base *base, const struct cw_kafka_options *opt,
                             const struct cw_consumer_options *copt, char *err, size_t errlen)
{
    if (!copt->group_id || !copt->ntopics || !copt->handler) {
        snprintf(err, errlen, "consumer needs a group id, topics and a handler");
        return NULL;
    }
    cw_consumer *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    c->kb.role = "consumer";
    c->kb.serve = consumer_serve;
    c->kb.stats = consumer_stats;
    c->kb.pipefd[0] = c->kb.pipefd[1] = -1;
    c->opt = *copt;
    c->opt.topics = NULL; /* the caller's; used only below */
    if (c->opt.max_inflight <= 0) c->opt.max_inflight = 1000;
    LIST_INIT(&c->parts);
    LIST_INIT(&c->revoked);
    if (!(c->group_id = strdup(copt->group_id))) goto fail;
    for (size_t i = 0; i < copt->ntopics && i < CW_CONSUMER_MAX_TOPICS; i++) {
        if (!(c->lag[i].topic = strdup(copt->topics[i]))) goto fail;
        c->lag[i].lag = -1;
        c->nlag++;
    }
    char num[32], e[256];
    rd_kafka_conf_t *conf = kbase_conf(&c->kb, opt, err, errlen);
    if (!conf) goto fail;
    /* Tuning first, then the operator's CASEWIRE_KAFKA_CONF, then what no loss rests on. */
    snprintf(num, sizeof num, "%d", opt->session_timeout_ms > 0 ? opt->session_timeout_ms : 10000);
    if (conf_set(conf, "session.timeout.ms", num, err, errlen) ||
        conf_set(conf, "auto.commit.interval.ms", "1000", err, errlen) ||
        /* The development broker does not wake waiting fetches: keep the wait short. */
        conf_set(conf, "fetch.wait.max.ms", "10", err, errlen) ||
        conf_set(conf, "queued.max.messages.kbytes", "16384", err, errlen) ||
        conf_set_extra(conf, opt->extra, err, errlen) ||
        conf_set(conf, "group.id", copt->group_id, err, errlen) ||
        conf_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        conf_set(conf, "enable.auto.commit", "true", err, errlen) ||
        /* Only offsets we store (effects durable) are committed. */
        conf_set(conf, "enable.auto.offset.store", "false", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_conf_set_rebalance_cb(conf, on_rebalance);
    c->kb.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!c->kb.rk) {
        snprintf(err, errlen, "kafka consumer: %s", e);
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    rd_kafka_poll_set_consumer(c->kb.rk);
    c->kb.queue = rd_kafka_queue_get_consumer(c->kb.rk);
    if (kbase_wire(&c->kb, base, err, errlen) != 0) goto fail;
    rd_kafka_topic_partition_list_t *subs = rd_kafka_topic_partition_list_new((int)copt->ntopics);
    for (size_t i = 0; i < copt->ntopics; i++)
        rd_kafka_topic_partition_list_add(subs, copt->topics[i], RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t se = rd_kafka_subscribe(c->kb.rk, subs);
    rd_kafka_topic_partition_list_destroy(subs);
    if (se) {
        snprintf(err, errlen, "kafka subscribe: %s", rd_kafka_err2str(se));
        goto fail;
    }
    return c;
fail:
    cw_consumer_free(c);
    return NULL;
}

/* Messages still out when the consumer closes or is freed are detached: their librdkafka
 * message is destroyed now (librdkafka's close and destroy block while any is alive), their
 * offset is never stored (so they are redelivered to whoever owns the partition next), and
 * the handler's later cw_kmsg_done() only frees the handle. */
static void detach_partition(cw_consumer *c, struct ptrack *pt)
{
    cw_kmsg *m;
    while ((m = TAILQ_FIRST(&pt->inflight))) {
        TAILQ_REMOVE(&pt->inflight, m, link);
        rd_kafka_message_destroy(m->rkm);
        m->rkm = NULL;
        c->inflight--;
        if (m->done) {
            free(m); /* done, waiting behind an earlier message: ours */
        } else {
            m->c = NULL; /* the handler's: freed by its cw_kmsg_done() */
            m->pt = NULL;
        }
    }
}

static void detach_all(cw_consumer *c)
{
    struct ptrack *pt, *next;
    size_t n = c->inflight;
    LIST_FOREACH(pt, &c->parts, link) detach_partition(c, pt);
    for (pt = LIST_FIRST(&c->revoked); pt; pt = next) {
        next = LIST_NEXT(pt, link);
        detach_partition(c, pt);
        ptrack_release_if_empty(pt);
    }
    if (n)
        cw_warn("kafka.detached",
                "group=%s messages=%zu reason=\"not done at close; redelivered later\"",
                c->group_id, n);
}

void cw_kmsg_done(cw_kmsg *m)
{
    cw_consumer *c = m->c;
    struct ptrack *pt = m->pt;
    int64_t next = -1;
    if (!c) { /* detached at close: nothing to store */
        free(m);
        return;
    }
    m->done = 1;
    c->done++;
    /* Advance over the done prefix of the partition; the first not-done message holds it. */
    cw_kmsg *h;
    while ((h = TAILQ_FIRST(&pt->inflight)) && h->done) {
        TAILQ_REMOVE(&pt->inflight, h, link);
        next = h->rkm->offset + 1;
        rd_kafka_message_destroy(h->rkm);
        free(h);
        c->inflight--;
    }
    if (next >= 0 && !pt->revoked) {
        rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
        rd_kafka_topic_partition_list_add(l, pt->topic, pt->partition)->offset = next;
        rd_kafka_resp_err_t e = rd_kafka_offsets_store(c->kb.rk, l);
        if (e)
            cw_warn("kafka.offset_store", "topic=%s partition=%d code=%s", pt->topic,
                    (int)pt->partition, rd_kafka_err2name(e));
        rd_kafka_topic_partition_list_destroy(l);
    }
    ptrack_release_if_empty(pt);
    /* Room again: take what waits in the queue now (no wakeup comes for it otherwise). */
    if (c->saturated && c->inflight < (size_t)c->opt.max_inflight && !c->stopped) {
        c->saturated = 0;
        event_active(c->kb.wake_ev, EV_READ, 0);
    }
    if (c->paused && !c->stopped && c->inflight <= (size_t)c->opt.max_inflight / 2)
        set_paused(c, 0);
}

const void *cw_kmsg_value(const cw_kmsg *m, size_t *len)
{
    *len = m->rkm ? m->rkm->len : 0;
    return m->rkm ? m->rkm->payload : NULL;
}
int cw_kmsg_detached(const cw_kmsg *m) { return m->rkm == NULL; }
const void *cw_kmsg_key(const cw_kmsg *m, size_t *len)
{
    *len = m->rkm ? m->rkm->key_len : 0;
    return m->rkm ? m->rkm->key : NULL;
}
const char *cw_kmsg_topic(const cw_kmsg *m) { return m->pt ? m->pt->topic : ""; }
int32_t cw_kmsg_partition(const cw_kmsg *m) { return m->rkm ? m->rkm->partition : -1; }
int64_t cw_kmsg_offset(const cw_kmsg *m) { return m->rkm ? m->rkm->offset : -1; }

void cw_consumer_stop(cw_consumer *c)
{
    if (c->stopped) return;
    set_paused(c, 1);
    c->stopped = 1;
}

void cw_consumer_close_begin(cw_consumer *c)
{
    if (c->closing) return;
    cw_consumer_stop(c);
    c->closing = 1;
    detach_all(c); /* normally nothing: the drain stage waited for them */
    rd_kafka_error_t *e = rd_kafka_consumer_close_queue(c->kb.rk, c->kb.queue);
    if (e) {
        cw_warn("kafka.close_failed", "group=%s reason=\"%s\"", c->group_id,
                rd_kafka_error_string(e));
        rd_kafka_error_destroy(e);
        c->closed = 1;
    }
    event_active(c->kb.wake_ev, EV_READ, 0);
}

int cw_consumer_closed(const cw_consumer *c) { return c->closed; }
size_t cw_consumer_inflight(const cw_consumer *c) { return c->inflight; }
int cw_consumer_is_ready(const cw_consumer *c) { return c->kb.ready && !c->kb.fatal_raised; }

void cw_consumer_on_fatal(cw_consumer *c, void (*fn)(void *, const char *), void *arg)
{
    c->kb.fatal_fn = fn;
    c->kb.fatal_arg = arg;
}

int64_t cw_consumer_lag(const cw_consumer *c, size_t topic_index)
{
    return c && topic_index < c->nlag ? c->lag[topic_index].lag : -1;
}

void cw_consumer_stats(const cw_consumer *c, struct cw_consumer_stats *out)
{
    out->received = c->received;
    out->done = c->done;
    out->rebalances = c->rebalances;
    out->saturated = c->saturated;
    out->inflight_peak = c->inflight_peak;
    out->inflight = c->inflight;
    out->assigned_partitions = c->nparts;
}

void cw_consumer_free(cw_consumer *c)
{
    if (!c) return;
    kbase_unwire(&c->kb);
    detach_all(c);
    struct ptrack *pt;
    while ((pt = LIST_FIRST(&c->parts))) {
        LIST_REMOVE(pt, link);
        free(pt->topic);
        free(pt);
    }
    if (c->kb.queue) rd_kafka_queue_destroy(c->kb.queue);
    if (c->kb.rk) {
        /* Closed already (or abandoned at the deadline): do not close again inside destroy,
         * which is where librdkafka 2.0.2 was seen to hang. */
        rd_kafka_destroy_flags(c->kb.rk, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE);
    }
    free(c->group_id);
    for (size_t i = 0; i < c->nlag; i++) free(c->lag[i].topic);
    free(c);
}
