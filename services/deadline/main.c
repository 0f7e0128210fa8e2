/*
 * casewire-deadline: keeps every case's clocks as timers in Redis and escalates when one runs
 * out (issue 4/7; docs/deadline.md has the design).
 *
 * Two halves on one loop:
 *   - arming: a consumer of casewire.cases.v1 (group casewire-deadline). Each CaseRouted or
 *     CaseEvent becomes one apply of the timer store (timers.h), planned by clocks.h; a
 *     case's events are applied one after the other, in their order on the partition.
 *   - firing: one libevent timer, set for the earliest moment any shard needs a worker, from
 *     claim replies and wake-up messages (wake.h), both on Redis's clock and turned into
 *     relative delays. A claim's timers are checked together in one script run (each lease
 *     still ours, half of it left), each is published (escalate.h) and, once Kafka confirmed,
 *     queued for its commit; the commits queued by a turn of the loop go in one script run per
 *     shard. Redis then does two script runs per claim batch, not two per timer.
 *   - the operator view (inspect.h) on the admin port.
 * A worker that dies loses nothing: records not applied are redelivered, timers it claimed
 * are claimed again by any worker once their lease ran out.
 */

#include "worker.h"

/* ------------------------------------------------------------------ setup ---- */

static double firing_now(void *arg) { return (double)((struct worker *)arg)->firing; }

static void metrics(struct worker *w, cw_metrics *m)
{
    w->applied = cw_metrics_counter(m, "casewire_deadline_events_applied_total",
                                    "Case events that moved clocks", NULL);
    w->duplicates =
        cw_metrics_counter(m, "casewire_deadline_events_redelivered_total",
                           "Case events seen again (already applied): nothing changed", NULL);
    w->skipped = cw_metrics_counter(m, "casewire_deadline_events_skipped_total",
                                    "Case events that could not be applied (logged)", NULL);
    const char *fired_help = "Timers fired: warnings to the owner, breaches up the ladder";
    w->fired_warning =
        cw_metrics_counter(m, "casewire_deadline_fired_total", fired_help, "kind", "warning", NULL);
    w->fired_breach =
        cw_metrics_counter(m, "casewire_deadline_fired_total", fired_help, "kind", "breach", NULL);
    const char *fenced_help = "Fires refused because another worker holds the timer now: by "
                              "Redis (the token moved on) or by this worker's own clock (the "
                              "check's answer came back after half a lease)";
    w->fenced_redis =
        cw_metrics_counter(m, "casewire_deadline_fenced_total", fenced_help, "by", "redis", NULL);
    w->fenced_clock = cw_metrics_counter(m, "casewire_deadline_fenced_total", fenced_help, "by",
                                         "own_clock", NULL);
    w->cancelled = cw_metrics_counter(m, "casewire_deadline_cancelled_total",
                                      "Claimed timers whose clock stopped before they fired", NULL);
    w->abandoned = cw_metrics_counter(m, "casewire_deadline_abandoned_total",
                                      "Claimed timers left to their lease (Redis or Kafka failed): "
                                      "fired again after it",
                                      NULL);
    w->claims = cw_metrics_counter(m, "casewire_deadline_claims_total", "Claim scripts run", NULL);
    w->retries = cw_metrics_counter(m, "casewire_deadline_retries_total",
                                    "Case events retried after a Redis failure", NULL);
    static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
                                    0.25,  0.5,    1,     2.5,  5,     10,   30};
    w->lateness = cw_metrics_histogram(m, "casewire_deadline_lateness_seconds",
                                       "Redis time at the claim minus the timer's due time", bounds,
                                       sizeof bounds / sizeof bounds[0], NULL);
    cw_metrics_gauge_fn(m, "casewire_deadline_firing", "Claimed timers being fired", firing_now, w,
                        NULL);
}

static int setup(struct worker *w, cw_service *svc)
{
    char err[512];
    const cw_config *cfg = cw_service_config(svc);
    w->base = cw_service_base(svc);
    w->chain = cw_service_chain(svc);
    w->redis = cw_service_redis(svc);
    w->producer = cw_service_producer(svc);
    w->lease_ms = cw_config_int(cfg, CW_SET_DEADLINE_LEASE);
    w->batch = (unsigned)cw_config_int(cfg, CW_SET_DEADLINE_BATCH);
    w->max_firing = DL_SHARDS * (size_t)w->batch; /* a claim out on every shard at once */
    if (!(w->cal = cw_calendar_new(w->chain, err, sizeof err))) {
        cw_error("deadline.calendar_failed", "reason=\"%s\"", err);
        return -1;
    }
    w->ctx = (struct dl_ctx){w->chain, w->cal};
    if (!(w->timers = dl_timers_new(w->redis)) || !(w->record = dl_record_new(w->redis)) ||
        !(w->inspect = dl_inspect_new(w->timers, w->chain)))
        return -1;
    cw_httpd_set_handler(cw_service_httpd(svc), dl_inspect_handle, w->inspect);
    struct cw_redis_options o;
    cw_redis_options_init(&o);
    if (cw_redis_parse_url(cw_config_str(cfg, CW_SET_REDIS_URL), &o, err, sizeof err) != 0)
        return -1;
    if (!(w->wake = dl_wake_new(w->base, &o, dl_fire_wake_message, dl_fire_wake_state, w)))
        return -1;
    explicit_bzero(&o, sizeof o);
    if (!(w->wake_timer = evtimer_new(w->base, dl_fire_wake_timer, w)) ||
        !(w->resync_timer = evtimer_new(w->base, dl_fire_resync, w)) ||
        !(w->commit_flush = event_new(w->base, -1, 0, dl_fire_flush_commits, w)))
        return -1;
    for (unsigned s = 0; s < DL_SHARDS; s++)
        w->shards[s].due_mono = w->shards[s].woken_mono = NEVER;
    struct timeval soon = {0, 0};
    evtimer_add(w->resync_timer, &soon); /* the first claims, once the loop runs */
    metrics(w, cw_service_metrics(svc));
    cw_info("deadline.ready", "lease_ms=%lld claim_batch=%u shards=%d", (long long)w->lease_ms,
            w->batch, DL_SHARDS);
    const char *topics[] = {CW_TOPIC_CASES};
    return cw_service_consume(svc, topics, 1, dl_arm_record, w);
}

static const struct cw_service_def def = {
    .name = "deadline",
    .id = CW_SVC_DEADLINE,
    .needs = CW_NEEDS_CHAIN | CW_NEEDS_REDIS | CW_NEEDS_PRODUCER,
};

int main(int argc, char **argv)
{
    int exit_code = 0;
    cw_service *svc = cw_service_new(&def, argc, argv, &exit_code);
    if (!svc) return exit_code;
    struct worker w = {0};
    exit_code = setup(&w, svc) == 0 ? cw_service_run(svc) : 1;

    /* Parked: records not applied are redelivered after a restart, timers being fired are
     * fired by whoever claims them after their lease. Nothing new starts from here on. */
    w.closing = true;
    if (w.wake_timer) event_free(w.wake_timer);
    if (w.resync_timer) event_free(w.resync_timer);
    if (w.commit_flush) event_free(w.commit_flush);
    dl_wake_free(w.wake);
    dl_arm_park(&w);
    dl_fire_park(&w);
    cw_service_free(svc); /* fails what is in flight: the callbacks return at once */
    dl_arm_free(&w);
    dl_fire_free(&w);
    dl_inspect_free(w.inspect); /* its Redis calls were failed and answered above */
    dl_timers_free(w.timers);
    dl_record_free(w.record);
    cw_calendar_free(w.cal);
    return exit_code;
}
