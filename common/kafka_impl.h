/*
 * What kafka.c (the shared base and the producer) and kafka_consumer.c (the consumer) share:
 * the handle and its loop wiring. Not part of the contract: services include kafka.h only.
 */
#ifndef CW_KAFKA_IMPL_H
#define CW_KAFKA_IMPL_H

#include <event2/event.h>
#include <jansson.h>
#include <librdkafka/rdkafka.h>

#include "kafka.h"

/* Work done per wakeup before yielding to other events (memcached's reqs_per_event). */
#define KAFKA_BATCH_PER_WAKEUP 200

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

/* A setting into conf; err names the key, never the value (CASEWIRE_KAFKA_CONF carries
 * passwords). 0 or -1. */
int kb_conf_set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen);
/* The operator's "key=value,key=value" properties, in order. 0 or -1. */
int kb_conf_set_extra(rd_kafka_conf_t *conf, const char *extra, char *err, size_t errlen);
/* Starts the shutdown through the fatal hook, once. */
void kb_raise_fatal(struct kbase *kb, const char *reason);
/* The configuration both roles start from (brokers, client id, statistics, logs, callbacks). */
rd_kafka_conf_t *kb_conf(struct kbase *kb, const struct cw_kafka_options *opt, char *err,
                         size_t errlen);
/* After rd_kafka_new: route logs to kb->queue and make the loop serve it. */
int kb_wire(struct kbase *kb, struct event_base *base, char *err, size_t errlen);
void kb_unwire(struct kbase *kb);

#endif
