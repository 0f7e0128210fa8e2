/* Delivering claimed tasks (see notifier.h). */
#include "notifier.h"

void nt_claim_soon(struct notifier *n, int64_t delay_ms)
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
    char phone[64], phone_hash[CW_PHONE_HASH_LEN + 1];
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
    if (n->busy == MAX_BUSY - 1) nt_claim_soon(n, 0); /* claiming had paused */
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
    return ms / 2 + (int64_t)(nt_rand_u64() % (uint64_t)(ms / 2 + 1));
}

static void sent_ok(struct task *k, const char *ref)
{
    struct notifier *n = k->n;
    cw_metric_add(n->m.sent, 1);
    int64_t late = nt_wall_ms() - k->t->due_ms;
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
    case NT_SMS_NO_ANSWER: /* a send does not answer this (only a status check does) */
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
    int64_t until = k->customer && !k->t->emergency ? quiet_until(n, k->site, nt_wall_ms()) : 0;
    if (until) {
        cw_metric_add(n->m.deferred, 1);
        snprintf(k->error, sizeof k->error, "quiet hours at the site");
        reschedule(k, "deferred", CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_DEFERRED,
                   until - nt_wall_ms());
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
    case NT_SMS_NO_ANSWER:
        /* The provider could not be asked: still "calling", asked again after the backoff,
         * counted as a try; when the tries run out, nobody can say (below). */
        if (++k->tries < k->max_attempts) {
            snprintf(k->error, sizeof k->error, "%s", r->error);
            cw_info("notifier.status_unanswered", "task=%s tries=%u reason=\"%s\"", k->id, k->tries,
                    r->error);
            reschedule(k, "calling", CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_RETRYING,
                       backoff_ms(k, false));
            return;
        }
        /* fall through */
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
    cw_phone_hash(k->phone, k->phone_hash);
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
    } else if (nt_hook_send(n->hook_http, n->hook_cfg, n->hook_allow, t, k->id, body->data,
                            body->len, on_hook, k) != 0) {
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
        nt_claim_soon(n, IDLE_CLAIM_MS / 4);
        return;
    }
    for (int i = 0; i < k; i++) take(n, &got[i]);
    if (k == CLAIM_BATCH)
        nt_claim_soon(n, 0);
    else
        nt_claim_soon(n, next < 0 ? IDLE_CLAIM_MS : next - now);
}

void nt_claim_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct notifier *n = arg;
    if (n->closing || n->stopping || n->claiming) return;
    if (n->busy >= MAX_BUSY) return; /* task_free() claims again when there is room */
    if (!cw_redis_is_ready(n->redis)) {
        nt_claim_soon(n, IDLE_CLAIM_MS / 4);
        return;
    }
    size_t room = MAX_BUSY - n->busy;
    unsigned max = room < CLAIM_BATCH ? (unsigned)room : CLAIM_BATCH;
    cw_metric_add(n->m.claims, 1);
    n->claiming = true;
    int rc = nt_outbox_claim(n->outbox, n->lease_ms, max, on_claimed, n);
    if (rc != CW_REDIS_OK) {
        n->claiming = false;
        nt_claim_soon(n, IDLE_CLAIM_MS / 4);
    }
}

/* Shutdown: no new claims, and the sends under way finish and are recorded before Redis
 * closes (else each would be left "calling", and counted as sent after a status check that
 * cannot tell). */
void nt_stop_delivering(void *arg)
{
    struct notifier *n = arg;
    n->stopping = true;
    evtimer_del(n->claim_timer);
}

int nt_deliveries_done(void *arg)
{
    const struct notifier *n = arg;
    return n->busy == 0 && !n->claiming;
}

double nt_busy_now(void *arg) { return (double)((struct notifier *)arg)->busy; }

void nt_deliver_park(struct notifier *n)
{
    for (struct task *k = n->tasks; k; k = k->next)
        if (k->retry) {
            event_free(k->retry);
            k->retry = NULL;
        }
}

void nt_deliver_free(struct notifier *n)
{
    while (n->tasks) task_free(n->tasks);
}
