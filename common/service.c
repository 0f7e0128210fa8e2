#include "service.h"

#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "httpd.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "shutdown.h"

struct cw_service {
    struct cw_service_def def;
    cw_config *cfg;
    struct event_base *base;
    cw_metrics *metrics;
    cw_httpd *httpd;
    cw_shutdown *sd;
    cw_producer *producer;
    cw_consumer *consumer;
    struct cw_redis *redis;
    struct cw_chain *chain;
    int fatal;
    char client_id[64];
    struct lag_metric {
        struct cw_service *s;
        size_t topic;
    } lags[CW_CONSUMER_MAX_TOPICS]; /* the consumer-lag gauges' arguments */
};

static void on_fatal(void *arg, const char *reason)
{
    cw_service *s = arg;
    s->fatal = 1;
    cw_shutdown_begin(s->sd, reason);
}

/* ---- shutdown steps ---- */

static void stop_http(void *arg) { cw_httpd_stop_accepting(arg); }
static void stop_consumer(void *arg) { cw_consumer_stop(arg); }
static int consumer_drained(void *arg) { return cw_consumer_inflight(arg) == 0; }
static void close_consumer(void *arg) { cw_consumer_close_begin(arg); }
static int consumer_closed(void *arg) { return cw_consumer_closed(arg); }
static int producer_flushed(void *arg) { return cw_producer_pending(arg) == 0; }

/* ---- readiness and metrics ---- */

static int producer_ready(void *arg) { return cw_producer_is_ready(arg); }
static int consumer_ready(void *arg) { return cw_consumer_is_ready(arg); }
static double producer_pending_metric(void *arg) { return (double)cw_producer_pending(arg); }
static double consumer_inflight_metric(void *arg) { return (double)cw_consumer_inflight(arg); }
static double consumer_lag_metric(void *arg)
{
    const struct lag_metric *l = arg;
    return (double)cw_consumer_lag(l->s->consumer, l->topic);
}

static void kafka_options(const cw_service *s, struct cw_kafka_options *o)
{
    memset(o, 0, sizeof *o);
    o->brokers = cw_config_str(s->cfg, CW_SET_KAFKA_BROKERS);
    o->client_id = s->client_id;
    o->extra = cw_config_str(s->cfg, CW_SET_KAFKA_CONF);
    o->delivery_timeout_ms = (int)cw_config_int(s->cfg, CW_SET_KAFKA_DELIVERY_TIMEOUT);
}

static int start_http(cw_service *s, char *err, size_t errlen)
{
    int gateway = s->def.id == CW_SVC_GATEWAY;
    const char *bind = cw_config_str(s->cfg, gateway ? CW_SET_HTTP_BIND : CW_SET_ADMIN_BIND);
    int port = (int)cw_config_int(s->cfg, gateway ? CW_SET_HTTP_PORT : CW_SET_ADMIN_PORT);
    bool reuse = gateway && cw_config_int(s->cfg, CW_SET_HTTP_REUSE_PORT);
    s->httpd = cw_httpd_new(s->base, bind, port, reuse, s->metrics, err, errlen);
    if (!s->httpd) return -1;
    if (gateway) {
        struct cw_httpd_limits l = {
            .max_body = (size_t)cw_config_int(s->cfg, CW_SET_HTTP_MAX_BODY),
            .request_timeout_ms = cw_config_int(s->cfg, CW_SET_HTTP_REQUEST_TIMEOUT),
            .max_connections = (size_t)cw_config_int(s->cfg, CW_SET_HTTP_MAX_CONNECTIONS),
        };
        if (cw_httpd_set_limits(s->httpd, &l) != 0) {
            snprintf(err, errlen, "out of memory for %zu connections", l.max_connections);
            return -1;
        }
    }
    cw_shutdown_add(s->sd, CW_STAGE_STOP_ACCEPTING, "http", stop_http, NULL, s->httpd);
    cw_info("http.listening", "bind=%s port=%d role=%s", bind, cw_httpd_port(s->httpd),
            gateway ? "api" : "admin");
    return 0;
}

static int start_producer(cw_service *s, char *err, size_t errlen)
{
    struct cw_kafka_options o;
    kafka_options(s, &o);
    s->producer = cw_producer_new(s->base, &o, err, errlen);
    if (!s->producer) return -1;
    cw_producer_on_fatal(s->producer, on_fatal, s);
    cw_httpd_add_check(s->httpd, "kafka", producer_ready, s->producer);
    cw_shutdown_add(s->sd, CW_STAGE_FLUSH_PRODUCERS, "kafka-producer", NULL, producer_flushed,
                    s->producer);
    cw_metrics_gauge_fn(s->metrics, "casewire_kafka_producer_pending",
                        "Produced messages waiting for a delivery report", producer_pending_metric,
                        s->producer, NULL);
    return 0;
}

static int redis_ready(void *arg) { return cw_redis_is_ready(arg); }
static void redis_close(void *arg) { cw_redis_close(arg); }
static int redis_idle(void *arg) { return cw_redis_idle(arg); }

/* Redis statistics as metrics, read when /metrics is rendered. */
#define REDIS_STAT_FN(field)                                                                       \
    static double redis_##field(void *arg)                                                         \
    {                                                                                              \
        struct cw_redis_stats st;                                                                  \
        cw_redis_stats_get(arg, &st);                                                              \
        return (double)st.field;                                                                   \
    }
REDIS_STAT_FN(commands)
REDIS_STAT_FN(errors)
REDIS_STAT_FN(timeouts)
REDIS_STAT_FN(reconnects)
REDIS_STAT_FN(in_flight)
REDIS_STAT_FN(connected)

static void redis_metrics(cw_service *s)
{
    cw_metrics *m = s->metrics;
    void *r = s->redis;
    cw_metrics_counter_fn(m, "casewire_redis_commands_total", "Redis commands queued",
                          redis_commands, r, NULL);
    cw_metrics_counter_fn(m, "casewire_redis_errors_total", "Redis commands that failed",
                          redis_errors, r, NULL);
    cw_metrics_counter_fn(m, "casewire_redis_timeouts_total", "Redis commands that timed out",
                          redis_timeouts, r, NULL);
    cw_metrics_counter_fn(m, "casewire_redis_reconnects_total", "Redis reconnections",
                          redis_reconnects, r, NULL);
    cw_metrics_gauge_fn(m, "casewire_redis_inflight", "Redis commands in flight", redis_in_flight,
                        r, NULL);
    cw_metrics_gauge_fn(m, "casewire_redis_connected", "1 when Redis is connected and ready",
                        redis_connected, r, NULL);
}

static int start_redis(cw_service *s, char *err, size_t errlen)
{
    struct cw_redis_options o;
    cw_redis_options_init(&o);
    if (cw_redis_parse_url(cw_config_str(s->cfg, CW_SET_REDIS_URL), &o, err, errlen) != 0)
        return -1;
    o.command_timeout_ms = (int)cw_config_int(s->cfg, CW_SET_REDIS_TIMEOUT);
    o.max_inflight = (int)cw_config_int(s->cfg, CW_SET_REDIS_MAX_INFLIGHT);
    s->redis = cw_redis_new(s->base, &o, err, errlen);
    if (!s->redis) return -1;
    cw_httpd_add_check(s->httpd, "redis", redis_ready, s->redis);
    cw_shutdown_add(s->sd, CW_STAGE_DISCONNECT_REDIS, "redis", redis_close, redis_idle, s->redis);
    redis_metrics(s);
    return 0;
}

/* One log line per problem, each naming file, line and field, so an operator can fix them
 * all in one go rather than one per restart. */
static void report_chain_problem(const struct cw_chain_error *e, void *arg)
{
    char line[1024];
    cw_chain_error_format(e, line, sizeof line);
    cw_error("chain.invalid", "problem=\"%s\"", line);
    ++*(int *)arg;
}

static int load_chain(cw_service *s, char *err, size_t errlen)
{
    const char *path = cw_config_str(s->cfg, CW_SET_CHAIN);
    int problems = 0;
    s->chain = cw_chain_load(path, report_chain_problem, &problems);
    if (!s->chain) {
        snprintf(err, errlen,
                 "the chain file %s has %d problem(s), each logged above as chain.invalid; "
                 "fix them and start again",
                 path, problems);
        return -1;
    }
    cw_info("chain.loaded", "file=%s chain=%s sites=%zu tenants=%zu", path, cw_chain_id(s->chain),
            cw_chain_site_count(s->chain), cw_chain_tenant_count(s->chain));
    return 0;
}

static int start_parts(cw_service *s, char *err, size_t errlen)
{
    if ((s->def.needs & CW_NEEDS_CHAIN) && load_chain(s, err, errlen) != 0) return -1;
    if (start_http(s, err, errlen) != 0) return -1;
    if ((s->def.needs & CW_NEEDS_REDIS) && start_redis(s, err, errlen) != 0) return -1;
    if ((s->def.needs & CW_NEEDS_PRODUCER) && start_producer(s, err, errlen) != 0) return -1;
    return 0;
}

cw_service *cw_service_new(const struct cw_service_def *def, int argc, char **argv, int *exit_code)
{
    char err[2048] = "";
    cw_service *s = calloc(1, sizeof *s);
    *exit_code = 1;
    if (!s) return NULL;
    s->def = *def;
    snprintf(s->client_id, sizeof s->client_id, "casewire-%s", def->name);
    int rc = cw_config_load(&s->cfg, def->id, def->name, argc, argv, err, sizeof err);
    if (rc != CW_CONFIG_OK) {
        if (rc == CW_CONFIG_EXIT)
            *exit_code = 0;
        else {
            fprintf(stderr, "casewire-%s: %s\n", def->name, err);
            *exit_code = 2;
        }
        free(s);
        return NULL;
    }
    cw_log_init(def->name, cw_config_str(s->cfg, CW_SET_LOG_LEVEL));
    cw_config_log(s->cfg);
    /* The epoll changelist folds the add/del pairs a keep-alive connection makes in one loop
     * turn (evhttp stops reading while it answers, writes, then reads again) into one
     * epoll_ctl. Its one caveat is dup()ed descriptors, which nothing here registers. */
    struct event_config *ec = event_config_new();
    if (ec) {
        event_config_set_flag(ec, EVENT_BASE_FLAG_EPOLL_USE_CHANGELIST);
        s->base = event_base_new_with_config(ec);
        event_config_free(ec);
    }
    s->metrics = cw_metrics_new();
    s->sd =
        s->base ? cw_shutdown_new(s->base, cw_config_int(s->cfg, CW_SET_SHUTDOWN_TIMEOUT)) : NULL;
    if (!s->base || !s->metrics || !s->sd || cw_shutdown_watch_signals(s->sd) != 0) {
        snprintf(err, sizeof err, "cannot set up the event loop");
        goto fail;
    }
    cw_metric_set(cw_metrics_gauge(s->metrics, "casewire_start_time_seconds",
                                   "Unix time the process started", "service", def->name, NULL),
                  (double)cw_now_ms() / 1000.0);
    if (start_parts(s, err, sizeof err) != 0) goto fail;
    cw_info("service.started", "service=%s", def->name);
    return s;
fail:
    cw_error("service.start_failed", "service=%s reason=\"%s\"", def->name, err);
    cw_service_free(s);
    return NULL;
}

int cw_service_consume(cw_service *s, const char *const *topics, size_t ntopics,
                       cw_consume_fn *handler, void *arg)
{
    char err[512], group[64];
    struct cw_kafka_options o;
    kafka_options(s, &o);
    snprintf(group, sizeof group, "casewire-%s", s->def.name);
    struct cw_consumer_options co = {
        .group_id = group,
        .topics = topics,
        .ntopics = ntopics,
        .max_inflight = (int)cw_config_int(s->cfg, CW_SET_KAFKA_MAX_INFLIGHT),
        .handler = handler,
        .handler_arg = arg,
    };
    s->consumer = cw_consumer_new(s->base, &o, &co, err, sizeof err);
    if (!s->consumer) {
        cw_error("service.consume_failed", "group=%s reason=\"%s\"", group, err);
        return -1;
    }
    cw_consumer_on_fatal(s->consumer, on_fatal, s);
    cw_httpd_add_check(s->httpd, "kafka-consumer", consumer_ready, s->consumer);
    cw_shutdown_add(s->sd, CW_STAGE_STOP_ACCEPTING, "kafka-consumer", stop_consumer, NULL,
                    s->consumer);
    cw_shutdown_add(s->sd, CW_STAGE_DRAIN, "kafka-consumer", NULL, consumer_drained, s->consumer);
    cw_shutdown_add(s->sd, CW_STAGE_CLOSE_CONSUMERS, "kafka-consumer", close_consumer,
                    consumer_closed, s->consumer);
    cw_metrics_gauge_fn(s->metrics, "casewire_kafka_consumer_inflight",
                        "Consumed messages whose effects are not yet durable",
                        consumer_inflight_metric, s->consumer, NULL);
    for (size_t i = 0; i < ntopics && i < CW_CONSUMER_MAX_TOPICS; i++) {
        s->lags[i] = (struct lag_metric){s, i};
        cw_metrics_gauge_fn(s->metrics, "casewire_kafka_consumer_lag",
                            "Messages of the topic this process still has to consume on its "
                            "partitions (high watermark minus stored offset); -1 until known",
                            consumer_lag_metric, &s->lags[i], "topic", topics[i], NULL);
    }
    return 0;
}

int cw_service_add_check(cw_service *s, const char *name, int (*ready)(void *), void *arg)
{
    return cw_httpd_add_check(s->httpd, name, ready, arg);
}

int cw_service_run(cw_service *s)
{
    event_base_dispatch(s->base);
    int clean = cw_shutdown_started(s->sd) && cw_shutdown_clean(s->sd);
    cw_info("service.stopped", "service=%s clean=%s", s->def.name, clean ? "yes" : "no");
    return s->fatal ? 1 : 0;
}

void cw_service_free(cw_service *s)
{
    if (!s) return;
    /* Effects chain across clients (a Redis reply leads to a send, a delivery report to a
     * Redis command, either to cw_kmsg_done), so: refuse new work on both, fail what is
     * pending while every object still exists, then free; the consumer, which the others'
     * callbacks complete messages on, goes last. */
    if (s->redis) cw_redis_close(s->redis);
    cw_producer_close(s->producer);
    cw_redis_free(s->redis);
    cw_producer_free(s->producer);
    cw_consumer_free(s->consumer);
    cw_httpd_free(s->httpd);
    cw_chain_free(s->chain);
    cw_shutdown_free(s->sd);
    cw_metrics_free(s->metrics);
    if (s->base) event_base_free(s->base);
    cw_config_free(s->cfg);
    free(s);
}

int cw_service_main(const struct cw_service_def *def, int argc, char **argv)
{
    int exit_code;
    cw_service *s = cw_service_new(def, argc, argv, &exit_code);
    if (!s) return exit_code;
    exit_code = cw_service_run(s);
    cw_service_free(s);
    return exit_code;
}

struct event_base *cw_service_base(cw_service *s) { return s->base; }
const cw_config *cw_service_config(cw_service *s) { return s->cfg; }
struct cw_metrics *cw_service_metrics(cw_service *s) { return s->metrics; }
struct cw_httpd *cw_service_httpd(cw_service *s) { return s->httpd; }
struct cw_shutdown *cw_service_shutdown(cw_service *s) { return s->sd; }
cw_producer *cw_service_producer(cw_service *s) { return s->producer; }
cw_consumer *cw_service_consumer(cw_service *s) { return s->consumer; }
struct cw_redis *cw_service_redis(cw_service *s) { return s->redis; }
const struct cw_chain *cw_service_chain(cw_service *s) { return s->chain; }
const char *cw_service_name(const cw_service *s) { return s->def.name; }
