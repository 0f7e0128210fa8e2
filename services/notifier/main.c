/*
 * casewire-notifier: delivers notification tasks (issue 5/7; docs/notifier.md has the design).
 *
 * Two halves on one loop:
 *   - taking: a consumer of casewire.notify.v1 (group casewire-notifier). Each task goes into
 *     the outbox in Redis (outbox.h), once per task id; only then is its offset committed. A
 *     staff task goes straight to the staff member's inbox.
 *   - delivering: claims of due tasks from the outbox, under a lease. An SMS is rendered from
 *     the chain's template, held back in the customer's quiet hours and by the limits per
 *     number, checked against the opt-out list, and sent through the provider (sms.h). A send
 *     whose fate is unknown (a timeout) is checked with the provider, never sent again
 *     blindly. Failures are retried with exponential backoff and jitter; after the last
 *     attempt, or when the provider refuses for good, the task goes to casewire.notify-dlq.v1
 *     and the dead-letter counter rises (an alert). Each outcome is published to
 *     casewire.notify-results.v1.
 * A notifier that dies loses nothing: tasks not yet in the outbox are redelivered by Kafka,
 * tasks it claimed are claimed again by any notifier once their lease ran out.
 */

#include "notifier.h"

/* ------------------------------------------------------------------ set-up ---- */

static void metrics(struct notifier *n, cw_metrics *m)
{
    const char *h = "SMS outcomes: sent (accepted by the provider), retry, rejected (for good), "
                    "unknown (timeout: checked, not resent), deferred (quiet hours, limits per "
                    "number), suppressed (opted out), failed (dead-lettered)";
#define SMS(field, outcome)                                                                        \
    n->m.field = cw_metrics_counter(m, "casewire_notifier_sms_total", h, "outcome", outcome, NULL)
    SMS(sent, "sent");
    SMS(retry, "retry");
    SMS(rejected, "rejected");
    SMS(unknown, "unknown");
    SMS(deferred, "deferred");
    SMS(suppressed, "suppressed");
    SMS(failed, "failed");
#undef SMS
    const char *hh = "Webhook deliveries: delivered (2xx), retry, failed (refused for good)";
    n->m.hook_sent =
        cw_metrics_counter(m, "casewire_notifier_webhooks_total", hh, "outcome", "delivered", NULL);
    n->m.hook_retry =
        cw_metrics_counter(m, "casewire_notifier_webhooks_total", hh, "outcome", "retry", NULL);
    n->m.hook_failed =
        cw_metrics_counter(m, "casewire_notifier_webhooks_total", hh, "outcome", "failed", NULL);
    n->m.too_old = cw_metrics_counter(m, "casewire_notifier_old_case_events_total",
                                      "Case events older than a week: not acted on", NULL);
    n->m.added = cw_metrics_counter(m, "casewire_notifier_tasks_total",
                                    "Tasks taken into the outbox", "kind", "delivery", NULL);
    n->m.staff = cw_metrics_counter(m, "casewire_notifier_tasks_total",
                                    "Tasks taken into the outbox", "kind", "staff_inbox", NULL);
    n->m.duplicates = cw_metrics_counter(m, "casewire_notifier_duplicates_total",
                                         "Tasks seen again (redelivery): no effect", NULL);
    n->m.bad = cw_metrics_counter(m, "casewire_notifier_refused_total",
                                  "Records that are not a deliverable task (dead-lettered)", NULL);
    n->m.dead =
        cw_metrics_counter(m, "casewire_notifier_dead_letters_total",
                           "Tasks put on casewire.notify-dlq.v1: alert on any increase", NULL);
    n->m.claims =
        cw_metrics_counter(m, "casewire_notifier_claims_total", "Claim scripts run", NULL);
    n->m.fenced = cw_metrics_counter(m, "casewire_notifier_fenced_total",
                                     "Writes refused because another claim holds the task", NULL);
    n->m.latency =
        cw_metrics_histogram(m, "casewire_notifier_task_to_provider_seconds",
                             "From a task's due time to the provider accepting it",
                             cw_metrics_latency_buckets, cw_metrics_latency_buckets_count, NULL);
    cw_metrics_gauge_fn(m, "casewire_notifier_busy", "Claimed tasks being delivered", nt_busy_now,
                        n, NULL);
}

static int setup(struct notifier *n, cw_service *svc)
{
    char err[512];
    n->base = cw_service_base(svc);
    n->chain = cw_service_chain(svc);
    n->sms_cfg = cw_chain_sms(n->chain);
    n->hook_cfg = cw_chain_webhooks(n->chain);
    const char *bad;
    if (nt_hook_allow_mask(n->hook_cfg, &n->hook_allow, &bad) != 0) {
        cw_error("notifier.bad_setting", "webhooks.allow_addresses=%s", bad);
        return -1;
    }
    if (n->hook_allow)
        cw_warn("notifier.webhook_guard_relaxed",
                "allowed=%zu reason=\"webhooks.allow_addresses lets tenant URLs reach private "
                "addresses: tests and closed networks only\"",
                n->hook_cfg->nallow_addresses);
    n->redis = cw_service_redis(svc);
    n->producer = cw_service_producer(svc);
    /* Long enough for a send and its status check, so a live notifier keeps its tasks. */
    int64_t longest = n->sms_cfg->timeout_ms > n->hook_cfg->timeout_ms ? n->sms_cfg->timeout_ms
                                                                       : n->hook_cfg->timeout_ms;
    n->lease_ms = 2 * longest + 10000;
    if (!(n->cal = cw_calendar_new(n->chain, err, sizeof err))) {
        cw_error("notifier.calendar_failed", "reason=\"%s\"", err);
        return -1;
    }
    if (!(n->callbacks = nt_callbacks_new(n->redis, n->producer, n->chain, n->cal))) return -1;
    if (!(n->outbox = nt_outbox_new(n->redis)) ||
        !(n->http = nt_http_new(n->base, MAX_BUSY, err, sizeof err)) ||
        !(n->hook_http = nt_http_new(n->base, MAX_BUSY, err, sizeof err))) {
        cw_error("notifier.setup_failed", "reason=\"%s\"", n->outbox ? err : "out of memory");
        return -1;
    }
    if (!(n->sms = nt_sms_new(n->sms_cfg, n->chain, n->http, n->base, err, sizeof err))) {
        cw_error("notifier.sms_provider_failed", "reason=\"%s\"", err);
        return -1;
    }
    if (!(n->claim_timer = evtimer_new(n->base, nt_claim_timer, n))) return -1;
    cw_shutdown *sd = cw_service_shutdown(svc);
    if (cw_shutdown_add(sd, CW_STAGE_STOP_ACCEPTING, "deliveries", nt_stop_delivering, NULL, n) ||
        cw_shutdown_add(sd, CW_STAGE_DRAIN, "deliveries", NULL, nt_deliveries_done, n))
        return -1;
    metrics(n, cw_service_metrics(svc));
    nt_claim_soon(n, 0);
    const struct cw_sms_settings *s = n->sms_cfg;
    cw_info("notifier.ready",
            "sms_provider=%s max_attempts=%d per_minute=%d per_hour=%d per_day=%d "
            "quiet=%02d:%02d-%02d:%02d lease_ms=%lld",
            nt_sms_provider_name(n->sms), s->max_attempts, s->per_minute, s->per_hour, s->per_day,
            s->quiet_from / 60, s->quiet_from % 60, s->quiet_to / 60, s->quiet_to % 60,
            (long long)n->lease_ms);
    const char *topics[] = {CW_TOPIC_NOTIFY, CW_TOPIC_CASES};
    return cw_service_consume(svc, topics, 2, nt_take_record, n);
}

static const struct cw_service_def def = {
    .name = "notifier",
    .id = CW_SVC_NOTIFIER,
    .needs = CW_NEEDS_CHAIN | CW_NEEDS_REDIS | CW_NEEDS_PRODUCER,
};

int main(int argc, char **argv)
{
    int exit_code = 0;
    cw_service *svc = cw_service_new(&def, argc, argv, &exit_code);
    if (!svc) return exit_code;
    struct notifier n = {0};
    exit_code = setup(&n, svc) == 0 ? cw_service_run(svc) : 1;

    /* Parked: records not in the outbox are redelivered after a restart; claimed tasks are
     * claimed again after their lease, those "calling" checked with the provider first. */
    n.closing = true;
    if (n.claim_timer) event_free(n.claim_timer);
    nt_take_park(&n);
    nt_deliver_park(&n);
    nt_http_free(n.http); /* its callbacks see closing and return */
    nt_http_free(n.hook_http);
    cw_service_free(svc); /* fails Redis calls in flight: their callbacks return at once */
    nt_take_free(&n);
    nt_deliver_free(&n);
    nt_sms_free(n.sms);
    nt_outbox_free(n.outbox);
    nt_callbacks_free(n.callbacks);
    cw_calendar_free(n.cal);
    return exit_code;
}
