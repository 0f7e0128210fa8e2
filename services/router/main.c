/*
 * casewire-router: reads new cases from casewire.intake.v1 (consumer group casewire-router),
 * decides what each is, who owns it and which clocks run, stores the decision with the case
 * record in Redis and publishes CaseRouted and the first notification tasks. router.h says how
 * a job goes and why doing it twice changes nothing; docs/events.md and docs/redis.md say what
 * it writes.
 *
 * Nothing is dropped: a record that cannot be routed goes, whole and with the reason, to
 * casewire.intake-dlq.v1; a Redis or Kafka outage holds the record (and, through the
 * consumer's in-flight bound, the partition) and retries with backoff until it passes.
 */
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "router.h"
#include "service.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
/* Redis answering with an error (not an outage) this many times: the record goes to the
 * dead-letter topic rather than holding its partition for ever. */
#define MAX_ERROR_REPLIES 5
#define REPEAT_WINDOW_MS (24LL * 3600 * 1000)

static void run_step(struct rt_job *job);

static void job_free(struct rt_job *job)
{
    struct router *rt = job->rt;
    if (job->prev)
        job->prev->next = job->next;
    else
        rt->jobs = job->next;
    if (job->next) job->next->prev = job->prev;
    if (job->retry_timer) event_free(job->retry_timer);
    cw_event_free(job->env);
    free(job);
}

/* The job's effects are durable: its offset may be committed. */
static void finish(struct rt_job *job)
{
    cw_kmsg_done(job->msg);
    job_free(job);
}

static void on_retry_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    run_step(arg);
}

/* Runs the current step again after a backoff (doubling, with jitter). */
static void retry_later(struct rt_job *job, const char *why)
{
    struct router *rt = job->rt;
    if (rt->closing) return; /* parked: the record will be redelivered */
    job->attempts++;
    long ms = RETRY_MIN_MS;
    for (int i = 1; i < job->attempts && ms < RETRY_MAX_MS; i++) ms *= 2;
    if (ms > RETRY_MAX_MS) ms = RETRY_MAX_MS;
    ms = ms / 2 + (long)(random() % (ms / 2 + 1));
    if (job->attempts == 1 || job->attempts % 20 == 0)
        cw_warn("router.retrying", "case_id=%s step=%d attempt=%d reason=\"%s\"",
                job->env && job->env->meta ? job->env->meta->case_id : "-", (int)job->step,
                job->attempts, why);
    cw_metric_add(rt->retries, 1);
    if (!job->retry_timer && !(job->retry_timer = evtimer_new(rt->base, on_retry_timer, job))) {
        cw_error("router.no_memory", "case_id=%s", job->env->meta->case_id);
        return; /* parked until shutdown; redelivered then */
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(job->retry_timer, &tv);
}

static void go(struct rt_job *job, enum rt_step step)
{
    job->step = step;
    job->attempts = 0;
    run_step(job);
}

static void reject(struct rt_job *job)
{
    cw_warn("router.rejected", "topic=%s partition=%d offset=%lld reason=\"%s\"",
            cw_kmsg_topic(job->msg), (int)cw_kmsg_partition(job->msg),
            (long long)cw_kmsg_offset(job->msg), job->reject_reason);
    go(job, RT_STEP_REJECT);
}

static void delivered(void *opaque, int error, const char *errstr)
{
    struct rt_job *job = opaque;
    if (job->rt->closing) {
        job->deliveries--; /* parked: redelivered after the restart */
        return;
    }
    if (error) {
        job->delivery_failed = true;
        cw_warn("router.not_delivered", "case_id=%s error=\"%s\"",
                job->env && job->env->meta ? job->env->meta->case_id : "-", errstr);
    }
    if (--job->deliveries > 0) return;
    if (job->delivery_failed) {
        job->delivery_failed = false;
        retry_later(job, "Kafka did not confirm");
        return;
    }
    if (job->step == RT_STEP_REJECT) {
        cw_metric_add(job->rt->rejected, 1);
        finish(job);
        return;
    }
    go(job, RT_STEP_MARK);
}

static void marked(void *arg, const redisReply *reply, const char *err)
{
    struct rt_job *job = arg;
    if (job->rt->closing) return;
    /* Not being able to mark costs only a republication of the same events after a
     * redelivery: not worth holding the partition for. */
    if (err || !reply || reply->type == REDIS_REPLY_ERROR)
        cw_warn("router.mark_failed", "case_id=%s error=\"%s\"", job->env->meta->case_id,
                err     ? err
                : reply ? reply->str
                        : "no reply");
    finish(job);
}

static void routed(void *arg, const redisReply *reply, const char *err)
{
    struct rt_job *job = arg;
    struct router *rt = job->rt;
    if (rt->closing) return;
    if (err) {
        retry_later(job, err);
        return;
    }
    bool published = false;
    if (reply->type == REDIS_REPLY_ERROR || rt_store_route_reply(job, reply, &published) != 0) {
        const char *what = reply->type == REDIS_REPLY_ERROR ? reply->str : "unexpected reply";
        cw_error("router.store_error", "case_id=%s error=\"%s\"", job->env->meta->case_id, what);
        if (++job->error_replies >= MAX_ERROR_REPLIES) {
            snprintf(job->reject_reason, sizeof job->reject_reason, "the case store refused it: %s",
                     what);
            reject(job);
            return;
        }
        retry_later(job, what);
        return;
    }
    if (job->duplicate) {
        cw_metric_add(rt->redelivered, 1);
    } else {
        cw_metric_add(rt->routed, 1);
        if (job->repeat_of[0]) cw_metric_add(rt->repeats, 1);
        cw_info("router.routed",
                "case_id=%s case_no=%s site=%s category=%s urgency=%s department=%s owner=%s "
                "pick=%s repeat_of=%s",
                job->env->meta->case_id, job->cs->case_no, job->site->id,
                cw_category_name(job->verdict.category), cw_urgency_name(job->verdict.urgency),
                job->assignment.department ? job->assignment.department->id : "-", job->owner,
                rt_pick_name(job->assignment.pick), job->repeat_of[0] ? job->repeat_of : "-");
    }
    if (published) {
        finish(job);
        return;
    }
    go(job, RT_STEP_PUBLISH);
}

static void run_step(struct rt_job *job)
{
    struct router *rt = job->rt;
    if (rt->closing) return;
    int rc;
    switch (job->step) {
    case RT_STEP_ROUTE:
        rc = rt_store_route(rt, job, routed);
        if (rc != 0) retry_later(job, cw_redis_strerror(rc));
        return;
    case RT_STEP_PUBLISH: {
        bool incomplete = false;
        rc = rt_publish_routed(rt, job, delivered, &incomplete);
        if (rc < 0) {
            retry_later(job,
                        rc == CW_PRODUCE_QUEUE_FULL ? "producer queue full" : "produce refused");
            return;
        }
        job->deliveries += rc;
        job->delivery_failed = incomplete;
        return;
    }
    case RT_STEP_MARK:
        rc = rt_store_mark(rt, job, marked);
        if (rc != 0) marked(job, NULL, cw_redis_strerror(rc));
        return;
    case RT_STEP_REJECT:
        rc = rt_publish_rejected(rt, job, delivered);
        if (rc != CW_PRODUCE_OK) {
            retry_later(job,
                        rc == CW_PRODUCE_QUEUE_FULL ? "producer queue full" : "produce refused");
            return;
        }
        job->deliveries = 1;
        return;
    }
}

static void on_intake(void *arg, cw_kmsg *m)
{
    struct router *rt = arg;
    struct rt_job *job = calloc(1, sizeof *job);
    if (!job) {
        /* Not done: the record stays in flight and is redelivered after a restart. */
        cw_error("router.no_memory", "topic=%s offset=%lld", cw_kmsg_topic(m),
                 (long long)cw_kmsg_offset(m));
        return;
    }
    job->rt = rt;
    job->msg = m;
    job->next = rt->jobs;
    if (rt->jobs) rt->jobs->prev = job;
    rt->jobs = job;

    size_t len = 0;
    const void *value = cw_kmsg_value(m, &len);
    char err[200];
    if (!value && !cw_kmsg_detached(m)) {
        snprintf(job->reject_reason, sizeof job->reject_reason, "%s", "no value (a tombstone)");
        reject(job);
        return;
    }
    if (!(job->env = cw_event_unpack(value, len, err, sizeof err))) {
        snprintf(job->reject_reason, sizeof job->reject_reason, "%s", err);
        reject(job);
        return;
    }
    if (rt_decide(rt, job) != 0) {
        reject(job);
        return;
    }
    go(job, RT_STEP_ROUTE);
}

static int classifier_ready(void *arg) { return ((struct router *)arg)->classifier != NULL; }

static int setup(struct router *rt, cw_service *svc)
{
    char err[512];
    rt->base = cw_service_base(svc);
    rt->chain = cw_service_chain(svc);
    rt->redis = cw_service_redis(svc);
    rt->producer = cw_service_producer(svc);
    rt->repeat_window_ms = REPEAT_WINDOW_MS;
    if (!(rt->cal = cw_calendar_new(rt->chain, err, sizeof err))) {
        cw_error("router.calendar_failed", "reason=\"%s\"", err);
        return -1;
    }
    const char *cache_dir = cw_config_str(cw_service_config(svc), CW_SET_RULES_CACHE);
    if (!(rt->classifier = rt_classifier_new(rt->chain, cache_dir, err, sizeof err))) {
        cw_error("router.rules_failed", "reason=\"%s\"", err);
        return -1;
    }
    const struct rt_classifier_origin *o = rt_classifier_origin(rt->classifier);
    cw_info("router.rules_ready", "rules=%zu expressions=%zu source=%s ms=%.0f cache=%s",
            cw_chain_rule_count(rt->chain), rt_classifier_expressions(rt->classifier),
            o->from_cache ? "cache" : "compiled", o->ms,
            !*cache_dir     ? "off"
            : o->from_cache ? "hit"
            : o->stored     ? "stored"
                            : "not-stored");
    /* A cache that cannot be used costs this and the next start a compile, nothing else. */
    if (o->cache_note[0])
        cw_warn("router.rules_cache_problem", "dir=\"%s\" reason=\"%s\"%s", cache_dir,
                o->cache_note, o->stored ? " (compiled and stored again)" : "");
    if (rt_store_init(rt) != 0) {
        cw_error("router.no_memory", "what=scripts");
        return -1;
    }
    cw_metrics *m = cw_service_metrics(svc);
    rt->routed = cw_metrics_counter(m, "casewire_router_cases_routed_total",
                                    "Cases routed for the first time", NULL);
    rt->redelivered = cw_metrics_counter(
        m, "casewire_router_redelivered_total",
        "Intake records seen again (redelivery after a crash or rebalance): nothing changed", NULL);
    rt->rejected = cw_metrics_counter(m, "casewire_router_rejected_total",
                                      "Intake records sent to casewire.intake-dlq.v1", NULL);
    rt->retries = cw_metrics_counter(m, "casewire_router_retries_total",
                                     "Steps retried after a Redis or Kafka failure", NULL);
    rt->repeats = cw_metrics_counter(m, "casewire_router_repeat_complaints_total",
                                     "Cases linked to an earlier case as a repeat complaint", NULL);
    cw_service_add_check(svc, "classifier", classifier_ready, rt);
    const char *topics[] = {CW_TOPIC_INTAKE};
    return cw_service_consume(svc, topics, 1, on_intake, rt);
}

static const struct cw_service_def def = {
    .name = "router",
    .id = CW_SVC_ROUTER,
    .needs = CW_NEEDS_CHAIN | CW_NEEDS_REDIS | CW_NEEDS_PRODUCER,
};

int main(int argc, char **argv)
{
    int exit_code = 0;
    cw_service *svc = cw_service_new(&def, argc, argv, &exit_code);
    if (!svc) return exit_code;
    struct router rt = {0};
    if (setup(&rt, svc) == 0)
        exit_code = cw_service_run(svc);
    else
        exit_code = 1;

    /* Jobs still open are parked: their timers go while the loop exists, the clients fail
     * what is in flight without starting anything new, and only once the consumer is gone
     * (their records detached: never committed, so redelivered) are they released. */
    rt.closing = true;
    for (struct rt_job *j = rt.jobs; j; j = j->next)
        if (j->retry_timer) {
            event_free(j->retry_timer);
            j->retry_timer = NULL;
        }
    size_t open = 0;
    for (struct rt_job *j = rt.jobs; j; j = j->next) open++;
    if (open) cw_warn("router.jobs_left", "count=%zu (redelivered after restart)", open);
    struct rt_job *left = rt.jobs;
    rt.jobs = NULL;
    cw_service_free(svc);
    while (left) {
        struct rt_job *next = left->next;
        cw_kmsg_done(left->msg);
        left->prev = left->next = NULL;
        cw_event_free(left->env);
        free(left);
        left = next;
    }
    rt_classifier_free(rt.classifier);
    cw_calendar_free(rt.cal);
    return exit_code;
}
