/*
 * Prometheus metrics: a registry of families (counter, gauge, histogram), each with children
 * per label set, rendered in the text exposition format for GET /metrics.
 *
 * Register once at start-up (or on first use) and keep the returned pointer: updates are then
 * a plain add, with no lookup. Labels are given as name/value pairs ending with NULL; values
 * are escaped here. One process, one loop: no locking.
 */
#ifndef CW_METRICS_H
#define CW_METRICS_H

#include <stddef.h>

struct evbuffer;

typedef struct cw_metrics cw_metrics;
typedef struct cw_metric cw_metric; /* one child: a family plus one label set */

cw_metrics *cw_metrics_new(void);
void cw_metrics_free(cw_metrics *m);

/* Each returns the child for these labels (created on first use), or NULL on misuse: a bad
 * name, a counter not ending in _total, the same name registered with another type, or
 * another set of label names. Label arguments: "name", "value", ..., NULL. */
cw_metric *cw_metrics_counter(cw_metrics *m, const char *name, const char *help, ...)
    __attribute__((sentinel));
cw_metric *cw_metrics_gauge(cw_metrics *m, const char *name, const char *help, ...)
    __attribute__((sentinel));
/* Bounds ascending, without +Inf; shared by all children of the family. */
cw_metric *cw_metrics_histogram(cw_metrics *m, const char *name, const char *help,
                                const double *bounds, size_t nbounds, ...)
    __attribute__((sentinel));
/* A gauge whose value is read from fn(arg) at render time (queue depths, in-flight). */
cw_metric *cw_metrics_gauge_fn(cw_metrics *m, const char *name, const char *help,
                               double (*fn)(void *arg), void *arg, ...) __attribute__((sentinel));

/* A counter whose value is read from fn(arg) at render time (a library's own totals). */
cw_metric *cw_metrics_counter_fn(cw_metrics *m, const char *name, const char *help,
                                 double (*fn)(void *arg), void *arg, ...) __attribute__((sentinel));

void cw_metric_add(cw_metric *c, double v); /* counters: v >= 0 */
void cw_metric_set(cw_metric *g, double v);
void cw_metric_observe(cw_metric *h, double v);
double cw_metric_value(const cw_metric *c); /* counters and gauges; histograms: the count */

/* Appends the exposition text. Returns 0, or -1 if out of memory. */
int cw_metrics_render(const cw_metrics *m, struct evbuffer *out);

/* Latency buckets in seconds, 1 ms .. 10 s. */
extern const double cw_metrics_latency_buckets[];
extern const size_t cw_metrics_latency_buckets_count;

#endif
