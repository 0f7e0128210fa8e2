/*
 * Kafka producer and consumer on the process's libevent loop (librdkafka underneath).
 *
 * librdkafka's queues signal a pipe when they become non-empty; the loop reads the pipe and
 * serves the queue, so every callback below runs on the loop's thread, never on one of
 * librdkafka's.
 *
 * Producer: enable.idempotence=true and acks=all, always. cw_producer_send() either queues
 * the message, and then its delivery callback runs exactly once (success, or the final error
 * after librdkafka's own retries, or "shutting down" at free), or refuses it at once:
 * CW_PRODUCE_QUEUE_FULL is backpressure (slow down or answer 503), never a reason to drop.
 * A fatal producer error (the idempotence guarantee is broken) is reported to the fatal
 * callback; the service must stop and restart.
 *
 * Consumer: a consumer group member. Every message is handed to the handler as a cw_kmsg;
 * the handler applies its effects (possibly asynchronously) and calls cw_kmsg_done() once
 * they are durable. Offsets are stored only up to the first message not yet done in each
 * partition and committed from there, so a crash or rebalance redelivers every message whose
 * effects were not confirmed (at-least-once; effects must be idempotent, keyed by event id).
 * At most max_inflight messages are out at once: beyond that no more are taken from
 * librdkafka's bounded local queue, which in turn stops fetching (backpressure).
 */
#ifndef CW_KAFKA_H
#define CW_KAFKA_H

#include <stddef.h>
#include <stdint.h>

struct event_base;

struct cw_kafka_options {
    const char *brokers;     /* bootstrap.servers */
    const char *client_id;   /* client.id, e.g. "casewire-gateway" */
    const char *extra;       /* "key=value,key=value": more librdkafka properties (TLS, SASL) */
    int delivery_timeout_ms; /* producer: message.timeout.ms (default 30000) */
    int linger_ms;           /* producer: linger.ms (default 2) */
    int session_timeout_ms;  /* consumer: session.timeout.ms (default 10000) */
};

typedef struct cw_producer cw_producer;

enum cw_produce_result {
    CW_PRODUCE_OK = 0,
    CW_PRODUCE_QUEUE_FULL = -1, /* backpressure: try later */
    CW_PRODUCE_FAILED = -2,     /* refused (unknown topic, message too large, fatal state) */
};

/* error is 0 on success, else a librdkafka error code with a message. */
typedef void cw_delivery_fn(void *opaque, int error, const char *errstr);

cw_producer *cw_producer_new(struct event_base *base, const struct cw_kafka_options *opt, char *err,
                             size_t errlen);
/* Refuses new messages (CW_PRODUCE_FAILED) and fails those still pending: their delivery
 * callbacks run now, with an error. The producer stays valid until cw_producer_free(). */
void cw_producer_close(cw_producer *p);
/* Closes if not closed yet, then frees. */
void cw_producer_free(cw_producer *p);

int cw_producer_send(cw_producer *p, const char *topic, const void *key, size_t keylen,
                     const void *value, size_t len, cw_delivery_fn *cb, void *opaque);

/* Messages waiting for delivery reports: 0 means flushed. */
size_t cw_producer_pending(const cw_producer *p);
/* 1 when a broker connection is up (from librdkafka statistics, refreshed every second). */
int cw_producer_is_ready(const cw_producer *p);
void cw_producer_on_fatal(cw_producer *p, void (*fn)(void *arg, const char *reason), void *arg);

typedef struct cw_consumer cw_consumer;
typedef struct cw_kmsg cw_kmsg;

typedef void cw_consume_fn(void *arg, cw_kmsg *m);

struct cw_consumer_options {
    const char *group_id;
    const char *const *topics;
    size_t ntopics;
    int max_inflight; /* default 1000 */
    cw_consume_fn *handler;
    void *handler_arg;
};

cw_consumer *cw_consumer_new(struct event_base *base, const struct cw_kafka_options *opt,
                             const struct cw_consumer_options *copt, char *err, size_t errlen);
/* Stops handing out messages (pauses fetching); messages already handed out may finish. */
void cw_consumer_stop(cw_consumer *c);
/* Commits what is done, leaves the group, asynchronously; poll cw_consumer_closed().
 * Messages not yet done are detached: their offsets are never stored (they are redelivered),
 * their data is no longer available (cw_kmsg_value gives NULL), and cw_kmsg_done() still
 * must be called once for each, to free it. The same holds after cw_consumer_free(). */
void cw_consumer_close_begin(cw_consumer *c);
int cw_consumer_closed(const cw_consumer *c);
void cw_consumer_free(cw_consumer *c);
size_t cw_consumer_inflight(const cw_consumer *c);
int cw_consumer_is_ready(const cw_consumer *c);
void cw_consumer_on_fatal(cw_consumer *c, void (*fn)(void *arg, const char *reason), void *arg);

struct cw_consumer_stats {
    uint64_t received, done, rebalances;
    size_t inflight, assigned_partitions;
    size_t inflight_peak; /* highest in-flight count seen */
    int saturated;        /* at max_inflight right now */
};
void cw_consumer_stats(const cw_consumer *c, struct cw_consumer_stats *out);
/* What this member still has to consume of topic topic_index of its subscription: the sum over
 * its assigned partitions of the high watermark minus the offset it stored, from librdkafka's
 * statistics (refreshed every second); -1 until the first statistics. */
#define CW_CONSUMER_MAX_TOPICS 8
int64_t cw_consumer_lag(const cw_consumer *c, size_t topic_index);

/* NULL for a record without a value (a tombstone) and for a detached message. */
const void *cw_kmsg_value(const cw_kmsg *m, size_t *len);
/* 1 once the consumer closed with m not done: its data is gone, it will be redelivered. */
int cw_kmsg_detached(const cw_kmsg *m);
const void *cw_kmsg_key(const cw_kmsg *m, size_t *len);
const char *cw_kmsg_topic(const cw_kmsg *m);
int32_t cw_kmsg_partition(const cw_kmsg *m);
int64_t cw_kmsg_offset(const cw_kmsg *m);
/* The message's effects are durable: its offset may be committed once every earlier message
 * of its partition is done too. Frees m; call exactly once per message. */
void cw_kmsg_done(cw_kmsg *m);

#endif
