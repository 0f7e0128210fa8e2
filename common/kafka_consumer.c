/* The consumer (see kafka.h): a consumer group on the loop, offsets stored only up to the first
 * message not yet done in each partition. */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "ids.h"
#include "kafka_impl.h"
#include "log.h"

/* A consumer at its in-flight limit still takes one message this often, so rebalances and
 * errors queued behind messages are served and max.poll.interval.ms is never exceeded. */
#define KAFKA_SATURATED_POLL_MS 1000
/* Saturated this long (effects stuck: Redis or Kafka down), the partitions are paused, so the
 * one-per-second polls above serve only rebalances and errors and in-flight stops growing. */
#define KAFKA_SATURATED_PAUSE_MS 5000

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
    if (why) kb_raise_fatal(&c->kb, why);
}

static void on_assign(cw_consumer *c, rd_kafka_topic_partition_list_t *parts)
{
    for (int i = 0; i < parts->cnt; i++) {
        struct ptrack *pt = calloc(1, sizeof *pt);
        if (!pt || !(pt->topic = strdup(parts->elems[i].topic))) {
            free(pt);
            kb_raise_fatal(&c->kb, "out of memory on partition assignment");
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
            kb_raise_fatal(&c->kb, rd_kafka_message_errstr(rkm));
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
        kb_raise_fatal(&c->kb, "out of memory for a consumed message");
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
    rd_kafka_conf_t *conf = kb_conf(&c->kb, opt, err, errlen);
    if (!conf) goto fail;
    /* Tuning first, then the operator's CASEWIRE_KAFKA_CONF, then what no loss rests on. */
    snprintf(num, sizeof num, "%d", opt->session_timeout_ms > 0 ? opt->session_timeout_ms : 10000);
    if (kb_conf_set(conf, "session.timeout.ms", num, err, errlen) ||
        kb_conf_set(conf, "auto.commit.interval.ms", "1000", err, errlen) ||
        /* The development broker does not wake waiting fetches: keep the wait short. */
        kb_conf_set(conf, "fetch.wait.max.ms", "10", err, errlen) ||
        kb_conf_set(conf, "queued.max.messages.kbytes", "16384", err, errlen) ||
        kb_conf_set_extra(conf, opt->extra, err, errlen) ||
        kb_conf_set(conf, "group.id", copt->group_id, err, errlen) ||
        kb_conf_set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        kb_conf_set(conf, "enable.auto.commit", "true", err, errlen) ||
        /* Only offsets we store (effects durable) are committed. */
        kb_conf_set(conf, "enable.auto.offset.store", "false", err, errlen)) {
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
    if (kb_wire(&c->kb, base, err, errlen) != 0) goto fail;
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
    kb_unwire(&c->kb);
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
