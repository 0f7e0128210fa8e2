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
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calendar.h"
#include "callbacks.h"
#include "event.h"
#include "hooks.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "redis.h"
#include "service.h"
#include "shutdown.h"
#include "sms.h"

#define CLAIM_BATCH 256
#define MAX_BUSY 2048      /* claimed tasks in progress before claiming pauses */
#define IDLE_CLAIM_MS 1000 /* look at the outbox at least this often (other notifiers' tasks) */
#define ADD_RETRY_MIN_MS 100
#define ADD_RETRY_MAX_MS 5000
#define STEP_RETRY_MS 500 /* a Redis write after a send failed: try it again */
#define STEP_ATTEMPTS 20
#define MAX_TEXT 4096 /* bytes of a rendered message */
#define MAX_TASK_ID 160
#define MAX_CASE_AGE_MS (7LL * 24 * 3600 * 1000) /* older case events are not acted on */

struct add;
struct task;

struct notifier {
    struct event_base *base;
    const cw_chain *chain;
    const struct cw_sms_settings *sms_cfg;
    const struct cw_webhook_settings *hook_cfg;
    unsigned hook_allow; /* address kinds webhooks may reach besides public ones */
    cw_calendar *cal;
    cw_redis *redis;
    cw_producer *producer;
    nt_outbox *outbox;
    nt_http *http;
    nt_sms *sms;
    nt_callbacks *callbacks;
    int64_t lease_ms;
    struct event *claim_timer;
    bool claiming, stopping, closing;
    size_t busy;
    struct add *adds;
    struct task *tasks;
    struct {
        cw_metric *added, *duplicates, *bad, *claims, *sent, *retry, *rejected, *unknown, *deferred,
            *suppressed, *failed, *fenced, *dead, *latency, *staff, *hook_sent, *hook_retry,
            *hook_failed, *too_old;
    } m;
};

static uint64_t rand_u64(void)
{
    uint64_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1) v = (uint64_t)clock();
    return v;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void claim_soon(struct notifier *n, int64_t delay_ms)
{
    if (n->closing || n->stopping) return;
    if (delay_ms < 0) delay_ms = 0;
    if (delay_ms > IDLE_CLAIM_MS) delay_ms = IDLE_CLAIM_MS;
    struct timeval tv = {delay_ms / 1000, (delay_ms % 1000) * 1000};
    /* an earlier wake-up wins over a later one */
    struct timeval left;
    if (evtimer_pending(n->claim_timer, &left)) {
        struct timeval now;
        event_base_gettimeofday_cached(n->base, &now);
        int64_t pending_ms = ((int64_t)left.tv_sec - now.tv_sec) * 1000 +
                             ((int64_t)left.tv_usec - now.tv_usec) / 1000;
        if (pending_ms <= delay_ms) return;
    }
    evtimer_add(n->claim_timer, &tv);
}

/* ------------------------------------------------------------------ taking ---- */

struct add {
    struct notifier *n;
    cw_kmsg *msg;
    cw_envelope *env;
    int attempts;
    bool refused;     /* not a deliverable task: on its way to the dead-letter topic */
    cw_envelope *rec; /* a record of casewire.cases.v1: its follow-up work comes first */
    bool rec_applied;
    struct event *retry;
    struct add *prev, *next;
};

static void add_step(struct add *a);
static void refused_send(struct add *a);

static void add_free(struct add *a)
{
    struct notifier *n = a->n;
    if (a->prev)
        a->prev->next = a->next;
    else if (n->adds == a)
        n->adds = a->next;
    if (a->next) a->next->prev = a->prev;
    if (a->retry) event_free(a->retry);
    cw_event_free(a->env);
    cw_event_free(a->rec);
    free(a);
}

static void add_done(struct add *a)
{
    cw_kmsg_done(a->msg);
    add_free(a);
}

static void on_add_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct add *a = arg;
    if (a->refused)
        refused_send(a);
    else
        add_step(a);
}

static void add_later(struct add *a, const char *why)
{
    int64_t ms = ADD_RETRY_MIN_MS << (a->attempts < 6 ? a->attempts : 6);
    if (ms > ADD_RETRY_MAX_MS) ms = ADD_RETRY_MAX_MS;
    a->attempts++;
    if (a->attempts == 5 || a->attempts % 50 == 0)
        cw_warn("notifier.add_retrying", "partition=%d offset=%lld attempts=%d reason=\"%s\"",
                (int)cw_kmsg_partition(a->msg), (long long)cw_kmsg_offset(a->msg), a->attempts,
                why);
    if (!a->retry && !(a->retry = evtimer_new(a->n->base, on_add_retry, a))) {
        cw_error("notifier.out_of_memory", "where=add_retry");
        return; /* the record stays undone: redelivered after a restart */
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(a->retry, &tv);
}

static void on_added(void *arg, const redisReply *r, const char *err)
{
    struct add *a = arg;
    struct notifier *n = a->n;
    if (n->closing) return; /* parked: redelivered after the restart */
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        add_later(a, err ? err : r && r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
        return;
    }
    const Casewire__V1__NotificationTask *t = a->env->notification_task;
    if (r->integer == 1) {
        cw_metric_add(t->kind == CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_STAFF_TASK
                          ? n->m.staff
                          : n->m.added,
                      1);
        if (t->kind != CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_STAFF_TASK)
            claim_soon(n, t->due_ms - wall_ms());
    } else {
        cw_metric_add(n->m.duplicates, 1);
    }
    add_done(a);
}

static void on_rec_applied(void *arg, int ok, const char *why)
{
    struct add *a = arg;
    if (a->n->closing) return;
    if (!ok) {
        add_later(a, why ? why : "the follow-up store failed");
        return;
    }
    a->rec_applied = true;
    add_step(a);
}

static void add_step(struct add *a)
{
    struct notifier *n = a->n;
    if (a->rec && !a->rec_applied) {
        int rc = nt_callbacks_apply(n->callbacks, a->rec, a->attempts, on_rec_applied, a);
        if (rc > 0) return; /* on_rec_applied goes on */
        if (rc < 0) {
            add_later(a, "Redis refused the follow-up");
            return;
        }
        a->rec_applied = true;
    }
    if (!a->env) { /* nothing for the outbox: the record is done */
        add_done(a);
        return;
    }
    const Casewire__V1__NotificationTask *t = a->env->notification_task;
    uint8_t *buf;
    size_t len = cw_event_pack(a->env, &buf);
    if (!len) {
        add_later(a, "out of memory");
        return;
    }
    const char *inbox = t->kind == CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_STAFF_TASK
                            ? t->recipient_staff_id
                            : NULL;
    int rc = nt_outbox_add(n->outbox, t->task_id, buf, len, t->due_ms > 0 ? t->due_ms : 0, inbox,
                           on_added, a);
    free(buf);
    if (rc != CW_REDIS_OK) add_later(a, cw_redis_strerror(rc));
}

/* Why a task cannot be delivered at all, or NULL. */
static const char *task_problem(const cw_envelope *env)
{
    if (env->body_case != CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_TASK) return "not a task";
    const Casewire__V1__NotificationTask *t = env->notification_task;
    if (!t->task_id || !*t->task_id) return "no task_id";
    if (strlen(t->task_id) > MAX_TASK_ID) return "task_id longer than 160 bytes";
    /* ids end up in Redis state strings, file lines and URLs: printable ASCII without
     * separators or quotes */
    for (const char *p = t->task_id; *p; p++)
        if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || strchr("|\"\\", *p))
            return "task_id has spaces, quotes, '|' or non-ASCII bytes";
    switch (t->kind) {
    case CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS:
        if (!t->template_id || !*t->template_id) return "an SMS without template_id";
        if (!(t->recipient && t->recipient->phone && *t->recipient->phone) &&
            !(t->recipient_staff_id && *t->recipient_staff_id))
            return "an SMS without a recipient";
        return NULL;
    case CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_WEBHOOK:
        if (!env->meta->tenant_id || !*env->meta->tenant_id) return "a webhook without a tenant";
        if (!t->webhook_body.len) return "a webhook without a body";
        return NULL;
    case CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_STAFF_TASK:
        if (!t->recipient_staff_id || !*t->recipient_staff_id || strlen(t->recipient_staff_id) > 64)
            return "a staff task without recipient_staff_id";
        return NULL;
    default: return "a kind this notifier does not deliver yet";
    }
}

/* A record that is not a deliverable task goes, as it came, to the dead-letter topic; its
 * offset is committed only once Kafka has it there (an add with `refused` set). */

static void on_refused_delivered(void *opaque, int error, const char *errstr)
{
    struct add *a = opaque;
    struct notifier *n = a->n;
    if (n->closing) return; /* not done: the record comes back after the restart */
    if (!error) {
        cw_metric_add(n->m.dead, 1);
        add_done(a);
        return;
    }
    cw_error("notifier.dlq_not_delivered", "partition=%d offset=%lld error=\"%s\"",
             (int)cw_kmsg_partition(a->msg), (long long)cw_kmsg_offset(a->msg), errstr);
    add_later(a, errstr);
}

static void refused_send(struct add *a)
{
    struct notifier *n = a->n;
    size_t len = 0, klen = 0;
    const void *v = cw_kmsg_value(a->msg, &len);
    const void *k = cw_kmsg_key(a->msg, &klen);
    if (!v) { /* a tombstone: nothing to keep */
        add_done(a);
        return;
    }
    if (cw_producer_send(n->producer, CW_TOPIC_NOTIFY_DLQ, k, klen, v, len, on_refused_delivered,
                         a) != CW_PRODUCE_OK)
        add_later(a, "the producer refused the dead letter");
}

/* A case event: the webhook task for the case's tenant, if it has a webhook. */
static void on_case_record(struct notifier *n, cw_kmsg *m)
{
    size_t len = 0;
    const void *v = cw_kmsg_value(m, &len);
    char err[200];
    cw_envelope *rec = v ? cw_event_unpack(v, len, err, sizeof err) : NULL;
    const char *why = NULL;
    /* Undecodable records are the router's to refuse. Events older than a week are not acted
     * on: a first start (or a notifier down that long) does not flood tenants with a month of
     * webhooks and the call centre with long-closed cases; a week is within what the outbox
     * remembers (NT_KEEP_DONE_MS), so a redelivered record still changes nothing. */
    if (!rec ||
        (rec->meta->occurred_ms > 0 && rec->meta->occurred_ms < wall_ms() - MAX_CASE_AGE_MS)) {
        if (rec) cw_metric_add(n->m.too_old, 1);
        cw_event_free(rec);
        cw_kmsg_done(m);
        return;
    }
    cw_envelope *task = nt_hook_task(n->chain, rec, &why);
    if (why)
        cw_warn("notifier.webhook_skipped", "case=%s event=%s reason=\"%s\"", rec->meta->case_id,
                rec->meta->event_id, why);
    struct add *a = calloc(1, sizeof *a);
    if (!a) {
        cw_error("notifier.out_of_memory", "where=case_record");
        cw_event_free(task);
        cw_event_free(rec);
        return; /* not done: redelivered after a restart */
    }
    /* the follow-up first (a resolution's callback task), then the tenant's webhook */
    *a = (struct add){.n = n, .msg = m, .env = task, .rec = rec, .next = n->adds};
    if (n->adds) n->adds->prev = a;
    n->adds = a;
    add_step(a);
}

static void on_task_record(void *arg, cw_kmsg *m)
{
    struct notifier *n = arg;
    if (!strcmp(cw_kmsg_topic(m), CW_TOPIC_CASES)) {
        on_case_record(n, m);
        return;
    }
    size_t len = 0;
    const void *v = cw_kmsg_value(m, &len);
    char err[200] = "empty record";
    cw_envelope *env = v ? cw_event_unpack(v, len, err, sizeof err) : NULL;
    const char *problem = env ? task_problem(env) : err;
    struct add *a = calloc(1, sizeof *a);
    if (!a) {
        cw_error("notifier.out_of_memory", "where=add");
        cw_event_free(env);
        return; /* not done: redelivered after a restart */
    }
    *a = (struct add){.n = n, .msg = m, .env = env, .refused = problem != NULL, .next = n->adds};
    if (n->adds) n->adds->prev = a;
    n->adds = a;
    if (problem) {
        /* Tasks we cannot deliver are kept whole on the dead-letter topic, never dropped. */
        cw_warn("notifier.task_refused", "partition=%d offset=%lld reason=\"%s\"",
                (int)cw_kmsg_partition(m), (long long)cw_kmsg_offset(m), problem);
        cw_metric_add(n->m.bad, 1);
        refused_send(a);
    } else {
        add_step(a);
    }
}

/* -------------------------------------------------------------- delivering ---- */

struct task {
    struct notifier *n;
    char id[MAX_TASK_ID + 1];
    cw_envelope *env;
    const Casewire__V1__NotificationTask *t;
    unsigned claim, tries;
    unsigned max_attempts; /* by kind: sms.* or webhooks.* of the chain */
    int64_t backoff_min_ms, backoff_max_ms;
    bool was_calling; /* an earlier claim may have sent it: ask the provider first */
    bool customer;
    const struct cw_site *site;
    char phone[64], phone_hash[NT_PHONE_HASH_LEN + 1];
    char text[MAX_TEXT];
    char params_json[2048];
    char error[300];
    /* the pending Redis write, retried until it lands or the lease would run out, and the
     * result published once it landed */
    enum { STEP_NONE, STEP_SETTLE, STEP_RESCHEDULE } step;
    const char *step_state;
    char step_ref[128];
    int64_t step_delay;
    int step_attempts;
    int result_status;
    struct event *retry;
    struct task *prev, *next;
};

static void task_free(struct task *k)
{
    struct notifier *n = k->n;
    if (k->prev)
        k->prev->next = k->next;
    else if (n->tasks == k)
        n->tasks = k->next;
    if (k->next) k->next->prev = k->prev;
    if (k->retry) event_free(k->retry);
    cw_event_free(k->env);
    free(k);
    n->busy--;
    if (n->busy == MAX_BUSY - 1) claim_soon(n, 0); /* claiming had paused */
}

static void on_result_delivered(void *opaque, int error, const char *errstr)
{
    (void)opaque;
    if (error) cw_warn("notifier.result_not_delivered", "error=\"%s\"", errstr);
}

/* What became of a task, for whoever follows: console, reports, the tenant's view. Sent once
 * the outbox recorded it, so a fenced worker publishes nothing. */
static void publish_result(struct task *k)
{
    struct notifier *n = k->n;
    Casewire__V1__Envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    Casewire__V1__EventMeta meta;
    Casewire__V1__NotificationResult res = CASEWIRE__V1__NOTIFICATION_RESULT__INIT;
    struct cw_event_ids ids;
    const cw_event_meta *tm = k->env->meta;
    if (cw_event_meta_init(&meta, &ids, "notifier", tm->case_id, tm->site_id, tm->tenant_id,
                           tm->event_id) != 0)
        return;
    res.task_id = k->id;
    res.kind = k->t->kind;
    res.status = k->result_status;
    res.attempt = k->tries;
    res.provider = (char *)nt_sms_provider_name(n->sms);
    res.provider_ref = k->step == STEP_SETTLE ? k->step_ref : "";
    res.error = k->error;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_RESULT;
    env.notification_result = &res;
    uint8_t *buf;
    size_t len = cw_event_pack(&env, &buf);
    if (!len) return;
    if (cw_producer_send(n->producer, CW_TOPIC_NOTIFY_RESULTS, tm->case_id, strlen(tm->case_id),
                         buf, len, on_result_delivered, NULL) != CW_PRODUCE_OK)
        cw_warn("notifier.result_not_sent", "task=%s", k->id);
    free(buf);
}

static void step_run(struct task *k);

static void on_step_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    step_run(arg);
}

static const char *reply_word(const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements >= 1 &&
                   r->element[0]->type == REDIS_REPLY_STRING
               ? r->element[0]->str
               : NULL;
}

static void on_step(void *arg, const redisReply *r, const char *err)
{
    struct task *k = arg;
    if (k->n->closing) return;
    const char *word = reply_word(r);
    if (word && !strcmp(word, "ok")) {
        publish_result(k);
        task_free(k);
        return;
    }
    if (word && (!strcmp(word, "fenced") || !strcmp(word, "gone"))) {
        cw_metric_add(k->n->m.fenced, 1);
        cw_warn("notifier.fenced", "task=%s claim=%u reply=%s", k->id, k->claim, word);
        task_free(k);
        return;
    }
    if (++k->step_attempts >= STEP_ATTEMPTS) {
        /* The lease runs out and another claim takes the task; if it was "calling", that
         * claim asks the provider before anything. */
        cw_error("notifier.step_abandoned", "task=%s reason=\"%s\"", k->id,
                 err                                 ? err
                 : r && r->type == REDIS_REPLY_ERROR ? r->str
                                                     : "bad reply");
        task_free(k);
        return;
    }
    if (!k->retry && !(k->retry = evtimer_new(k->n->base, on_step_retry, k))) {
        task_free(k);
        return;
    }
    struct timeval tv = {0, STEP_RETRY_MS * 1000};
    evtimer_add(k->retry, &tv);
}

static void step_run(struct task *k)
{
    struct notifier *n = k->n;
    int rc = k->step == STEP_SETTLE
                 ? nt_outbox_settle(n->outbox, k->id, k->claim, k->step_state, k->tries,
                                    k->step_ref, on_step, k)
                 : nt_outbox_reschedule(n->outbox, k->id, k->claim, k->step_state, k->tries,
                                        k->step_delay, on_step, k);
    if (rc != CW_REDIS_OK) on_step(k, NULL, cw_redis_strerror(rc));
}

static void settle(struct task *k, const char *state, int status, const char *ref)
{
    k->step = STEP_SETTLE;
    k->step_state = state;
    k->result_status = status;
    snprintf(k->step_ref, sizeof k->step_ref, "%s", ref ? ref : "");
    step_run(k);
}

static void reschedule(struct task *k, const char *state, int status, int64_t delay_ms)
{
    k->step = STEP_RESCHEDULE;
    k->step_state = state;
    k->result_status = status;
    k->step_delay = delay_ms;
    step_run(k);
}

/* The task is on the dead-letter topic (or could not be put there). */
static void on_task_dead_lettered(void *opaque, int error, const char *errstr)
{
    struct task *k = opaque;
    struct notifier *n = k->n;
    if (n->closing) return;
    if (error) {
        /* Not settled: the lease brings it back and it gives up again. */
        cw_error("notifier.dlq_not_delivered", "task=%s error=\"%s\"", k->id, errstr);
        task_free(k);
        return;
    }
    cw_metric_add(n->m.dead, 1);
    settle(k, "failed", CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED, NULL);
}

/* Given up: the task, whole, on the dead-letter topic, an alert, then settled as failed. */
static void give_up(struct task *k)
{
    struct notifier *n = k->n;
    cw_metric_add(k->t->kind == CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_WEBHOOK
                      ? n->m.hook_failed
                      : n->m.failed,
                  1);
    cw_error("notifier.dead_letter", "task=%s kind=%d tries=%u reason=\"%s\"", k->id,
             (int)k->t->kind, k->tries, k->error);
    uint8_t *buf;
    size_t len = cw_event_pack(k->env, &buf);
    const char *key = k->env->meta->case_id;
    int rc = len ? cw_producer_send(n->producer, CW_TOPIC_NOTIFY_DLQ, key, strlen(key), buf, len,
                                    on_task_dead_lettered, k)
                 : CW_PRODUCE_FAILED;
    if (len) free(buf);
    if (rc != CW_PRODUCE_OK) on_task_dead_lettered(k, -1, "the producer refused it");
}

/* The retry after tries attempts: doubling from retry_after up to retry_max; a provider's rate
 * limit waits retry_max. Each drawn from the upper half, so a burst of failures does not come
 * back as a burst. */
static int64_t backoff_ms(const struct task *k, bool throttled)
{
    int64_t ms = k->backoff_min_ms;
    for (unsigned i = 1; i < k->tries && ms < k->backoff_max_ms; i++) ms *= 2;
    if (ms > k->backoff_max_ms || throttled) ms = k->backoff_max_ms;
    return ms / 2 + (int64_t)(rand_u64() % (uint64_t)(ms / 2 + 1));
}

static void sent_ok(struct task *k, const char *ref)
{
    struct notifier *n = k->n;
    cw_metric_add(n->m.sent, 1);
    int64_t late = wall_ms() - k->t->due_ms;
    if (k->t->due_ms > 0 && late >= 0) cw_metric_observe(n->m.latency, (double)late / 1000.0);
    settle(k, "sent", CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_ACCEPTED, ref);
}

/* An attempt that certainly did not reach the phone (tries already counts it). */
static void not_sent(struct task *k, bool throttled)
{
    struct notifier *n = k->n;
    if (k->tries >= k->max_attempts) {
        give_up(k);
        return;
    }
    cw_metric_add(k->t->kind == CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_WEBHOOK
                      ? n->m.hook_retry
                      : n->m.retry,
                  1);
    int64_t delay = backoff_ms(k, throttled);
    cw_info("notifier.retrying", "task=%s tries=%u in_ms=%lld reason=\"%s\"", k->id, k->tries,
            (long long)delay, k->error);
    reschedule(k, "retrying", CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRYING, delay);
}

static void on_sent(void *arg, const struct nt_sms_result *r)
{
    struct task *k = arg;
    struct notifier *n = k->n;
    if (n->closing) return;
    k->tries++;
    snprintf(k->error, sizeof k->error, "%s", r->error);
    switch (r->outcome) {
    case NT_SMS_SENT: sent_ok(k, r->ref); return;
    case NT_SMS_RETRY: not_sent(k, r->throttled); return;
    case NT_SMS_REJECTED:
        cw_metric_add(n->m.rejected, 1);
        give_up(k);
        return;
    case NT_SMS_UNKNOWN:
        /* A timeout is not a failure: the provider may have sent it. The task stays
         * "calling" and the provider is asked after the backoff (not at once: it may still be
         * working on the request), by whichever notifier claims it then. */
        cw_metric_add(n->m.unknown, 1);
        cw_info("notifier.send_unknown", "task=%s reason=\"%s\"", k->id, r->error);
        reschedule(k, "calling", CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRYING,
                   backoff_ms(k, false));
        return;
    }
}

static void sms_send(struct task *k)
{
    struct nt_sms_msg msg = {.id = k->id,
                             .phone = k->phone,
                             .text = k->text,
                             .template_id = k->t->template_id,
                             .params_json = k->params_json};
    if (nt_sms_send(k->n->sms, &msg, on_sent, k) != 0) {
        /* Nothing went out; counted as an attempt, so a task that can never start (a param
         * that is not UTF-8) ends on the dead-letter topic instead of looping. */
        k->tries++;
        snprintf(k->error, sizeof k->error, "the send could not start");
        not_sent(k, false);
    }
}

static void on_prepared(void *arg, const redisReply *r, const char *err)
{
    struct task *k = arg;
    struct notifier *n = k->n;
    if (n->closing) return;
    const char *word = reply_word(r);
    if (!word) {
        /* Left to the lease. Had the script run after all (a timeout), the task is "calling"
         * and the next claim asks the provider, who has nothing: then it is sent. */
        cw_warn("notifier.prepare_failed", "task=%s reason=\"%s\"", k->id,
                err                                 ? err
                : r && r->type == REDIS_REPLY_ERROR ? r->str
                                                    : "bad reply");
        task_free(k);
        return;
    }
    if (!strcmp(word, "go")) {
        sms_send(k);
    } else if (!strcmp(word, "optout")) {
        cw_metric_add(n->m.suppressed, 1);
        snprintf(k->error, sizeof k->error, "the number opted out");
        settle(k, "suppressed", CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_SUPPRESSED, NULL);
    } else if (!strcmp(word, "wait") && r->elements >= 2) {
        long long wait =
            r->element[1]->type == REDIS_REPLY_INTEGER ? r->element[1]->integer : 60000;
        cw_metric_add(n->m.deferred, 1);
        snprintf(k->error, sizeof k->error, "limit per number: deferred %lld ms", wait);
        reschedule(k, "deferred", CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_DEFERRED, wait);
    } else { /* fenced, gone: another claim has it */
        cw_metric_add(n->m.fenced, 1);
        task_free(k);
    }
}

/* The instant quiet hours end, when ms is inside them at the site; else 0. */
static int64_t quiet_until(const struct notifier *n, const struct cw_site *site, int64_t ms)
{
    const struct cw_sms_settings *s = n->sms_cfg;
    if (!site || s->quiet_from == s->quiet_to) return 0;
    struct cw_local l;
    if (cw_calendar_local(n->cal, site, ms, &l) != 0) return 0;
    int min = l.hour * 60 + l.minute;
    bool overnight = s->quiet_to < s->quiet_from;
    bool quiet = overnight ? (min >= s->quiet_from || min < s->quiet_to)
                           : (min >= s->quiet_from && min < s->quiet_to);
    if (!quiet) return 0;
    int date = l.yyyymmdd;
    if (overnight && min >= s->quiet_from) { /* ends tomorrow: the date a day on */
        struct cw_local next;
        if (cw_calendar_local(n->cal, site, ms + (int64_t)(24 * 60 - min) * 60000 + 60000, &next))
            return 0;
        date = next.yyyymmdd;
    }
    int64_t end;
    if (cw_calendar_instant(n->cal, site, date, s->quiet_to * 60, &end) != 0) return 0;
    return end > ms ? end : 0;
}

/* Quiet hours, then the opt-out list and the limits per number, then the send. Limits and
 * opt-out are the customer's: staff must get their escalations (raise their numbers' limits
 * with the provider). */
static void proceed(struct task *k)
{
    struct notifier *n = k->n;
    int64_t until = k->customer && !k->t->emergency ? quiet_until(n, k->site, wall_ms()) : 0;
    if (until) {
        cw_metric_add(n->m.deferred, 1);
        snprintf(k->error, sizeof k->error, "quiet hours at the site");
        reschedule(k, "deferred", CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_DEFERRED,
                   until - wall_ms());
        return;
    }
    const struct cw_sms_settings *s = n->sms_cfg;
    const int none[3] = {0, 0, 0}, customer[3] = {s->per_minute, s->per_hour, s->per_day};
    int rc = nt_outbox_prepare(n->outbox, k->id, k->claim, k->phone_hash, k->customer,
                               k->customer ? customer : none, on_prepared, k);
    if (rc != CW_REDIS_OK) on_prepared(k, NULL, cw_redis_strerror(rc));
}

/* The provider's answer about a task an earlier claim may have sent. */
static void on_status(void *arg, const struct nt_sms_result *r)
{
    struct task *k = arg;
    struct notifier *n = k->n;
    if (n->closing) return;
    switch (r->outcome) {
    case NT_SMS_SENT: sent_ok(k, r->ref); return;
    case NT_SMS_RETRY: /* the provider never got it: a send now is the first one */
        k->was_calling = false;
        if (k->tries >= k->max_attempts)
            give_up(k);
        else
            proceed(k);
        return;
    case NT_SMS_REJECTED:
    case NT_SMS_UNKNOWN:
        /* Nobody can say: a second SMS to the customer is worse than a missing one. */
        snprintf(k->error, sizeof k->error, "outcome unknown, treated as sent: %s", r->error);
        cw_warn("notifier.treated_as_sent", "task=%s reason=\"%s\"", k->id, r->error);
        sent_ok(k, "unknown");
        return;
    }
}

static void check_status(struct task *k)
{
    struct nt_sms_msg msg = {.id = k->id,
                             .phone = k->phone,
                             .text = k->text,
                             .template_id = k->t->template_id,
                             .params_json = k->params_json};
    if (nt_sms_status(k->n->sms, &msg, on_status, k) != 0) {
        /* Could not ask now: leave it to the lease; the mark keeps it "calling". */
        cw_warn("notifier.status_check_failed", "task=%s", k->id);
        task_free(k);
    }
}

/* Fills phone, text and params_json; NULL, or why the SMS cannot be sent at all. */
static const char *sms_compose(struct task *k)
{
    struct notifier *n = k->n;
    const Casewire__V1__NotificationTask *t = k->t;
    k->site = cw_chain_site(n->chain, k->env->meta->site_id);
    if (t->recipient && t->recipient->phone && *t->recipient->phone) {
        snprintf(k->phone, sizeof k->phone, "%s", t->recipient->phone);
        k->customer = true;
    } else {
        const struct cw_staff *st = cw_chain_staff(n->chain, t->recipient_staff_id);
        if (!st) return "unknown staff id";
        if (!st->phone) return "the staff member has no phone number in the chain file";
        snprintf(k->phone, sizeof k->phone, "%s", st->phone);
    }
    nt_phone_hash(k->phone, k->phone_hash);
    const char *tmpl = cw_chain_template(n->chain, t->template_id, k->site ? k->site->id : NULL,
                                         t->language, NULL);
    if (!tmpl) return "unknown template";
    const char *keys[24], *values[24];
    size_t np = 0;
    for (size_t i = 0; i < t->n_params && np < 23; i++, np++) {
        keys[np] = t->params[i]->key;
        values[np] = t->params[i]->value;
    }
    /* {status_url}: the chain's link to the customer's status page, unless the task has one */
    char link[600];
    bool has_link = false;
    for (size_t i = 0; i < np; i++) has_link |= !strcmp(keys[i], "status_url");
    if (!has_link && n->sms_cfg->status_link &&
        nt_sms_render(n->sms_cfg->status_link, keys, values, np, link, sizeof link, NULL, 0) >= 0) {
        keys[np] = "status_url";
        values[np++] = link;
    }
    /* Alibaba renders its own copy of the template from these */
    json_t *params = json_object();
    for (size_t i = 0; params && i < np; i++)
        json_object_set_new(params, keys[i], json_string(values[i]));
    char *pj = params ? json_dumps(params, JSON_COMPACT) : NULL;
    json_decref(params);
    snprintf(k->params_json, sizeof k->params_json, "%s", pj ? pj : "{}");
    free(pj);
    char missing[64];
    int chars =
        nt_sms_render(tmpl, keys, values, np, k->text, sizeof k->text, missing, sizeof missing);
    if (chars < 0) return "the message does not fit 4 KiB";
    if (missing[0])
        cw_warn("notifier.template_value_missing", "task=%s template=%s placeholder=%s", k->id,
                t->template_id, missing);
    if (chars > n->sms_cfg->max_chars) {
        /* Reported, never cut: a cut message may lose the case number or the link. */
        snprintf(k->error, sizeof k->error,
                 "the message is %d characters, the limit is %d (sms.max_chars): shorten "
                 "template %s",
                 chars, n->sms_cfg->max_chars, t->template_id);
        return k->error;
    }
    return NULL;
}

static void deliver_sms(struct task *k)
{
    struct notifier *n = k->n;
    const char *why = sms_compose(k);
    if (why) {
        if (why != k->error) snprintf(k->error, sizeof k->error, "%s", why);
        cw_metric_add(n->m.rejected, 1);
        give_up(k);
    } else if (k->was_calling) { /* a send may have happened under an earlier claim */
        check_status(k);
    } else if (k->tries >= k->max_attempts) {
        give_up(k); /* the last give-up did not land: again */
    } else {
        proceed(k);
    }
}

static void on_hook(void *arg, const struct nt_sms_result *r)
{
    struct task *k = arg;
    struct notifier *n = k->n;
    if (n->closing) return;
    k->tries++;
    snprintf(k->error, sizeof k->error, "%s", r->error);
    if (r->outcome == NT_SMS_SENT) {
        cw_metric_add(n->m.hook_sent, 1);
        settle(k, "delivered", CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_DELIVERED, NULL);
    } else if (r->outcome == NT_SMS_REJECTED) {
        give_up(k);
    } else {
        not_sent(k, false);
    }
}

static void deliver_webhook(struct task *k)
{
    struct notifier *n = k->n;
    const struct cw_tenant *t = cw_chain_tenant(n->chain, k->env->meta->tenant_id);
    const ProtobufCBinaryData *body = &k->t->webhook_body;
    if (!t || !t->webhook_url) {
        snprintf(k->error, sizeof k->error, "tenant %s has no webhook in the chain file",
                 k->env->meta->tenant_id ? k->env->meta->tenant_id : "(none)");
        give_up(k);
    } else if (k->tries >= k->max_attempts) {
        give_up(k);
    } else if (nt_hook_send(n->http, n->hook_cfg, n->hook_allow, t, k->id, body->data, body->len,
                            on_hook, k) != 0) {
        k->tries++;
        snprintf(k->error, sizeof k->error, "the delivery could not start");
        not_sent(k, false);
    }
}

static void take(struct notifier *n, const struct nt_claimed *c)
{
    char err[200];
    cw_envelope *env = cw_event_unpack(c->env, c->env_len, err, sizeof err);
    struct task *k = env ? calloc(1, sizeof *k) : NULL;
    if (!k) {
        /* It was checked before it went in: only memory can fail here; the lease retries. */
        cw_error("notifier.claimed_unreadable", "task=%s reason=\"%s\"", c->id,
                 env ? "out of memory" : err);
        cw_event_free(env);
        return;
    }
    k->n = n;
    snprintf(k->id, sizeof k->id, "%s", c->id);
    k->env = env;
    k->t = env->notification_task;
    k->claim = c->claim;
    k->tries = c->tries;
    k->was_calling = !strcmp(c->prior, "calling");
    bool hook = k->t->kind == CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_WEBHOOK;
    k->max_attempts = (unsigned)(hook ? n->hook_cfg->max_attempts : n->sms_cfg->max_attempts);
    k->backoff_min_ms = hook ? n->hook_cfg->backoff_min_ms : n->sms_cfg->backoff_min_ms;
    k->backoff_max_ms = hook ? n->hook_cfg->backoff_max_ms : n->sms_cfg->backoff_max_ms;
    k->next = n->tasks;
    if (n->tasks) n->tasks->prev = k;
    n->tasks = k;
    n->busy++;
    if (k->t->kind == CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS) {
        deliver_sms(k);
    } else if (hook) {
        deliver_webhook(k);
    } else {
        snprintf(k->error, sizeof k->error, "kind %d is not delivered by this notifier",
                 (int)k->t->kind);
        give_up(k);
    }
}

static void on_claimed(void *arg, const redisReply *r, const char *err)
{
    struct notifier *n = arg;
    n->claiming = false;
    if (n->closing) return;
    struct nt_claimed got[CLAIM_BATCH];
    int64_t now = 0, next = -1;
    int k = r && !err ? nt_outbox_claim_reply(r, got, CLAIM_BATCH, &now, &next) : -1;
    if (k < 0) {
        if (r && r->type == REDIS_REPLY_ERROR)
            cw_warn("notifier.claim_failed", "reply=\"%s\"", r->str);
        claim_soon(n, IDLE_CLAIM_MS / 4);
        return;
    }
    for (int i = 0; i < k; i++) take(n, &got[i]);
    if (k == CLAIM_BATCH)
        claim_soon(n, 0);
    else
        claim_soon(n, next < 0 ? IDLE_CLAIM_MS : next - now);
}

static void on_claim_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct notifier *n = arg;
    if (n->closing || n->stopping || n->claiming) return;
    if (n->busy >= MAX_BUSY) return; /* task_free() claims again when there is room */
    if (!cw_redis_is_ready(n->redis)) {
        claim_soon(n, IDLE_CLAIM_MS / 4);
        return;
    }
    size_t room = MAX_BUSY - n->busy;
    unsigned max = room < CLAIM_BATCH ? (unsigned)room : CLAIM_BATCH;
    cw_metric_add(n->m.claims, 1);
    n->claiming = true;
    int rc = nt_outbox_claim(n->outbox, n->lease_ms, max, on_claimed, n);
    if (rc != CW_REDIS_OK) {
        n->claiming = false;
        claim_soon(n, IDLE_CLAIM_MS / 4);
    }
}

/* ------------------------------------------------------------------ set-up ---- */

/* Shutdown: no new claims, and the sends under way finish and are recorded before Redis
 * closes (else each would be left "calling", and counted as sent after a status check that
 * cannot tell). */
static void stop_delivering(void *arg)
{
    struct notifier *n = arg;
    n->stopping = true;
    evtimer_del(n->claim_timer);
}

static int deliveries_done(void *arg)
{
    const struct notifier *n = arg;
    return n->busy == 0 && !n->claiming;
}

static double busy_now(void *arg) { return (double)((struct notifier *)arg)->busy; }

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
    cw_metrics_gauge_fn(m, "casewire_notifier_busy", "Claimed tasks being delivered", busy_now, n,
                        NULL);
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
    if (!(n->callbacks = nt_callbacks_new(n->redis, n->chain, n->cal))) return -1;
    if (!(n->outbox = nt_outbox_new(n->redis)) ||
        !(n->http = nt_http_new(n->base, MAX_BUSY, err, sizeof err))) {
        cw_error("notifier.setup_failed", "reason=\"%s\"", n->outbox ? err : "out of memory");
        return -1;
    }
    if (!(n->sms = nt_sms_new(n->sms_cfg, n->chain, n->http, n->base, err, sizeof err))) {
        cw_error("notifier.sms_provider_failed", "reason=\"%s\"", err);
        return -1;
    }
    if (!(n->claim_timer = evtimer_new(n->base, on_claim_timer, n))) return -1;
    cw_shutdown *sd = cw_service_shutdown(svc);
    if (cw_shutdown_add(sd, CW_STAGE_STOP_ACCEPTING, "deliveries", stop_delivering, NULL, n) ||
        cw_shutdown_add(sd, CW_STAGE_DRAIN, "deliveries", NULL, deliveries_done, n))
        return -1;
    metrics(n, cw_service_metrics(svc));
    claim_soon(n, 0);
    const struct cw_sms_settings *s = n->sms_cfg;
    cw_info("notifier.ready",
            "sms_provider=%s max_attempts=%d per_minute=%d per_hour=%d per_day=%d "
            "quiet=%02d:%02d-%02d:%02d lease_ms=%lld",
            nt_sms_provider_name(n->sms), s->max_attempts, s->per_minute, s->per_hour, s->per_day,
            s->quiet_from / 60, s->quiet_from % 60, s->quiet_to / 60, s->quiet_to % 60,
            (long long)n->lease_ms);
    const char *topics[] = {CW_TOPIC_NOTIFY, CW_TOPIC_CASES};
    return cw_service_consume(svc, topics, 2, on_task_record, n);
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
    for (struct add *a = n.adds; a; a = a->next)
        if (a->retry) {
            event_free(a->retry);
            a->retry = NULL;
        }
    for (struct task *k = n.tasks; k; k = k->next)
        if (k->retry) {
            event_free(k->retry);
            k->retry = NULL;
        }
    nt_http_free(n.http); /* its callbacks see closing and return */
    cw_service_free(svc); /* fails Redis calls in flight: their callbacks return at once */
    while (n.adds) add_done(n.adds);
    while (n.tasks) task_free(n.tasks);
    nt_sms_free(n.sms);
    nt_outbox_free(n.outbox);
    nt_callbacks_free(n.callbacks);
    cw_calendar_free(n.cal);
    return exit_code;
}
