/* Kafka on the loop (see kafka.h): what producer and consumer share, and the producer. The
 * consumer is kafka_consumer.c; kafka_impl.h holds what the two files share. */
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
#include "kafka_impl.h"
#include "log.h"

/* Safety net: serve the queues at least this often even if no wakeup arrives. */
#define KAFKA_TICK_MS 100

/* ---- shared: configuration, callbacks and loop wiring ---- */

int kb_conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen)
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
int kb_conf_set_extra(rd_kafka_conf_t *conf, const char *extra, char *err, size_t errlen)
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
        if ((rc = kb_conf_set(conf, kv, eq + 1, err, errlen)) != 0) break;
    }
    free(copy);
    return rc;
}

void kb_raise_fatal(struct kbase *kb, const char *reason)
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
        kb_raise_fatal(kb, why);
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

rd_kafka_conf_t *kb_conf(struct kbase *kb, const struct cw_kafka_options *opt, char *err,
                         size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!opt->brokers || !*opt->brokers) {
        snprintf(err, errlen, "no Kafka brokers given (set KAFKA_BROKERS)");
        goto fail;
    }
    if (kb_conf_set(conf, "bootstrap.servers", opt->brokers, err, errlen) ||
        kb_conf_set(conf, "client.id", opt->client_id ? opt->client_id : "casewire", err, errlen) ||
        kb_conf_set(conf, "statistics.interval.ms", "1000", err, errlen) ||
        kb_conf_set(conf, "log.queue", "true", err, errlen) ||
        /* Small requests (one case, one delivery report) must not wait for the peer's delayed
         * ACK: with Nagle on, every produce after the first waits up to 40 ms. */
        kb_conf_set(conf, "socket.nagle.disable", "true", err, errlen) ||
        /* back within a second of a broker coming back, not librdkafka's default 10 s */
        kb_conf_set(conf, "reconnect.backoff.max.ms", "1000", err, errlen))
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
int kb_wire(struct kbase *kb, struct event_base *base, char *err, size_t errlen)
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

void kb_unwire(struct kbase *kb)
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
    rd_kafka_conf_t *conf = kb_conf(&p->kb, opt, err, errlen);
    if (!conf) goto fail;
    /* Tuning first, then the operator's CASEWIRE_KAFKA_CONF (which may change any of it),
     * then what the promises rest on, which it may not. */
    snprintf(num, sizeof num, "%d", opt->linger_ms > 0 ? opt->linger_ms : 2);
    if (kb_conf_set(conf, "linger.ms", num, err, errlen) ||
        kb_conf_set_extra(conf, opt->extra, err, errlen)) {
        rd_kafka_conf_destroy(conf);
        goto fail;
    }
    snprintf(num, sizeof num, "%d",
             opt->delivery_timeout_ms > 0 ? opt->delivery_timeout_ms : 30000);
    if (kb_conf_set(conf, "enable.idempotence", "true", err, errlen) ||
        kb_conf_set(conf, "acks", "all", err, errlen) ||
        kb_conf_set(conf, "message.timeout.ms", num, err, errlen)) {
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
    if (kb_wire(&p->kb, base, err, errlen) != 0) goto fail;
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
    kb_unwire(&p->kb);
    if (p->kb.queue) rd_kafka_queue_destroy(p->kb.queue);
    if (p->kb.rk) rd_kafka_destroy(p->kb.rk);
    free(p);
}
