/* Taking records into the outbox (see notifier.h). */
#include "notifier.h"

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
            nt_claim_soon(n, t->due_ms - nt_wall_ms());
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
        (rec->meta->occurred_ms > 0 && rec->meta->occurred_ms < nt_wall_ms() - MAX_CASE_AGE_MS)) {
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

void nt_take_record(void *arg, cw_kmsg *m)
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

void nt_take_park(struct notifier *n)
{
    for (struct add *a = n->adds; a; a = a->next)
        if (a->retry) {
            event_free(a->retry);
            a->retry = NULL;
        }
}

void nt_take_free(struct notifier *n)
{
    while (n->adds) add_done(n->adds);
}
