/*
 * The frame every casewire daemon runs in, so that a service's main() only adds its own
 * logic. cw_service_new() does, in order:
 *
 *   1. settings (common/config.h) from defaults, environment and flags; --help
 *   2. logging, an event loop, SIGINT/SIGTERM wired to the orderly shutdown
 *   3. the metrics registry and the HTTP server with /healthz, /readyz, /metrics
 *      (the gateway's public port, or a worker's admin port)
 *   4. what the service declares it needs: the chain file, a Redis client, a Kafka producer,
 *      each added to /readyz and to its shutdown stage
 *
 * Consumers are added by the service with cw_service_consume(). A fatal error from Kafka
 * starts the shutdown and makes the exit code 1.
 */
#ifndef CW_SERVICE_H
#define CW_SERVICE_H

#include <stddef.h>

#include "config.h"
#include "kafka.h"

struct event_base;
struct cw_metrics;
struct cw_httpd;
struct cw_redis;
struct cw_chain;
struct cw_shutdown;

enum cw_service_needs {
    CW_NEEDS_CHAIN = 1 << 0,
    CW_NEEDS_REDIS = 1 << 1,
    CW_NEEDS_PRODUCER = 1 << 2,
};

struct cw_service_def {
    const char *name; /* "gateway", "router", ... */
    unsigned id;      /* enum cw_service_id */
    unsigned needs;   /* enum cw_service_needs */
};

typedef struct cw_service cw_service;

/* NULL when the service must not run; *exit_code says how to exit (0 after --help,
 * 2 for bad settings, 1 when something could not start). */
cw_service *cw_service_new(const struct cw_service_def *def, int argc, char **argv, int *exit_code);
/* The whole life of a daemon with no logic of its own yet: new, run, free. Returns the exit code.
 */
int cw_service_main(const struct cw_service_def *def, int argc, char **argv);
/* Runs the loop until the shutdown completes. Returns the process exit code. */
int cw_service_run(cw_service *s);
void cw_service_free(cw_service *s);

/* Joins the group "casewire-<name>" on these topics. Returns 0, or -1 (logged). */
int cw_service_consume(cw_service *s, const char *const *topics, size_t ntopics,
                       cw_consume_fn *handler, void *arg);
/* Registers a check for /readyz. */
int cw_service_add_check(cw_service *s, const char *name, int (*ready)(void *), void *arg);

struct event_base *cw_service_base(cw_service *s);
const cw_config *cw_service_config(cw_service *s);
struct cw_metrics *cw_service_metrics(cw_service *s);
struct cw_httpd *cw_service_httpd(cw_service *s);
struct cw_shutdown *cw_service_shutdown(cw_service *s);
cw_producer *cw_service_producer(cw_service *s);        /* NULL unless CW_NEEDS_PRODUCER */
cw_consumer *cw_service_consumer(cw_service *s);        /* NULL until cw_service_consume */
struct cw_redis *cw_service_redis(cw_service *s);       /* NULL unless CW_NEEDS_REDIS */
const struct cw_chain *cw_service_chain(cw_service *s); /* NULL unless CW_NEEDS_CHAIN */
const char *cw_service_name(const cw_service *s);

#endif
