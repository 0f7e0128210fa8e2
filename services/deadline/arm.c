/* Arming: case events into the timer store, then the clocks into the case record (see
 * worker.h). */
#include "worker.h"

struct job {
    struct worker *w;
    cw_kmsg *msg;
    cw_envelope *env;
    struct job *prev, *next;
    struct job *after;  /* the next record of the same case, waiting for this one */
    bool waiting;       /* in some job's `after` chain, not started */
    bool reading;       /* the current step reads the facts (else it applies) */
    bool facts_loaded;  /* facts holds the case's facts: a retried apply plans with them too */
    bool applied;       /* the apply answered ok or dup: only the case record is left to write */
    int64_t stopped_ms; /* when the stops occurred, for the case record (kept for a retry) */
    int attempts, error_replies;
    struct event *retry;
    struct dl_facts facts;
    struct dl_plan plan;
};

static void job_step(struct job *j);

static const char *job_case(const struct job *j) { return j->env->meta->case_id; }

static void job_free(struct job *j)
{
    if (j->retry) event_free(j->retry);
    cw_event_free(j->env);
    free(j);
}

/* The record's effects are durable: its offset may be committed; the case's next record
 * starts. */
static void job_done(struct job *j)
{
    struct worker *w = j->w;
    struct job *after = j->after;
    if (j->prev)
        j->prev->next = j->next;
    else
        w->jobs = j->next;
    if (j->next) j->next->prev = j->prev;
    cw_kmsg_done(j->msg);
    job_free(j);
    if (after) {
        after->waiting = false;
        after->next = w->jobs;
        if (w->jobs) w->jobs->prev = after;
        w->jobs = after;
        job_step(after);
    }
}

static void on_job_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    job_step(arg);
}

static void job_retry(struct job *j, const char *why)
{
    struct worker *w = j->w;
    if (w->closing) return;
    j->attempts++;
    long ms = RETRY_MIN_MS;
    for (int i = 1; i < j->attempts && ms < RETRY_MAX_MS; i++) ms *= 2;
    if (ms > RETRY_MAX_MS) ms = RETRY_MAX_MS;
    ms = ms / 2 + random() % (ms / 2 + 1);
    if (j->attempts == 1 || j->attempts % 20 == 0)
        cw_warn("deadline.retrying", "case_id=%s attempt=%d reason=\"%s\"", job_case(j),
                j->attempts, why);
    cw_metric_add(w->retries, 1);
    if (!j->retry && !(j->retry = evtimer_new(w->base, on_job_retry, j))) return; /* parked */
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(j->retry, &tv);
}

static void job_skip(struct job *j, const char *why)
{
    cw_warn("deadline.event_skipped",
            "case_id=%s event_id=%s topic=%s partition=%d offset=%lld "
            "reason=\"%s\"",
            j->env->meta->case_id, j->env->meta->event_id, cw_kmsg_topic(j->msg),
            (int)cw_kmsg_partition(j->msg), (long long)cw_kmsg_offset(j->msg), why);
    cw_metric_add(j->w->skipped, 1);
    job_done(j);
}

static void recorded(void *arg, const redisReply *r, const char *err)
{
    struct job *j = arg;
    if (j->w->closing) return;
    if (err) {
        job_retry(j, err);
        return;
    }
    if (dl_record_reply(r) < 0) { /* 0: the case has no record, nothing to write */
        const char *what = r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";
        cw_error("deadline.record_error", "case_id=%s error=\"%s\"", job_case(j), what);
        if (++j->error_replies >= MAX_ERROR_REPLIES) {
            job_skip(j, what);
            return;
        }
        job_retry(j, what);
        return;
    }
    job_done(j);
}

/* The applied plan's clocks into the case record (record.h): after a dup too, so that a
 * redelivered event converges the record. The case's events come here in order (see
 * dl_arm_record): the last one's wins. */
static void record_clocks(struct job *j)
{
    if (!dl_record_moves(&j->plan.change)) {
        job_done(j);
        return;
    }
    int rc = dl_record_clocks(j->w->record, &j->plan.change, j->stopped_ms, recorded, j);
    if (rc == CW_REDIS_BAD_COMMAND)
        job_skip(j, "the case record refuses its case id or clocks");
    else if (rc != CW_REDIS_OK)
        job_retry(j, cw_redis_strerror(rc));
}

static void applied(void *arg, const redisReply *r, const char *err)
{
    struct job *j = arg;
    if (j->w->closing) return;
    if (err) {
        job_retry(j, err);
        return;
    }
    int rc = dl_apply_reply(r);
    if (rc < 0) {
        const char *what = r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply";
        cw_error("deadline.apply_error", "case_id=%s error=\"%s\"", job_case(j), what);
        if (++j->error_replies >= MAX_ERROR_REPLIES) {
            job_skip(j, what);
            return;
        }
        job_retry(j, what);
        return;
    }
    cw_metric_add(rc == 1 ? j->w->applied : j->w->duplicates, 1);
    /* A retry from here on writes the case record only: the apply is done. */
    j->applied = true;
    j->attempts = j->error_replies = 0;
    const cw_event_meta *meta = j->env->meta;
    j->stopped_ms = meta->occurred_ms > 0 ? meta->occurred_ms : cw_now_ms();
    record_clocks(j);
}

static void apply_plan(struct job *j, const struct dl_facts *facts)
{
    int rc = dl_plan_event(&j->w->ctx, j->env, facts, &j->plan);
    if (rc < 0) {
        job_skip(j, j->plan.why);
        return;
    }
    if (rc == 0) {
        job_done(j);
        return;
    }
    rc = dl_timers_apply(j->w->timers, &j->plan.change, applied, j);
    if (rc == CW_REDIS_BAD_COMMAND)
        job_skip(j, "the timer store refuses its ids or due times");
    else if (rc != CW_REDIS_OK)
        job_retry(j, cw_redis_strerror(rc));
}

static void facts_read(void *arg, const redisReply *r, const char *err)
{
    struct job *j = arg;
    if (j->w->closing) return;
    if (err || dl_facts_from_reply(r, &j->facts) != 0) {
        job_retry(j, err ? err : "unexpected reply to the facts");
        return;
    }
    j->reading = false;
    j->facts_loaded = true;
    j->attempts = 0;
    apply_plan(j, &j->facts);
}

static void job_step(struct job *j)
{
    if (j->w->closing) return;
    if (j->applied) {
        record_clocks(j);
        return;
    }
    if (!j->reading) {
        apply_plan(j, j->facts_loaded ? &j->facts : NULL);
        return;
    }
    int rc = dl_timers_read_facts(j->w->timers, job_case(j), dl_fact_names, dl_fact_count,
                                  facts_read, j);
    if (rc == CW_REDIS_BAD_COMMAND)
        job_skip(j, "case id the timer store refuses");
    else if (rc != CW_REDIS_OK)
        job_retry(j, cw_redis_strerror(rc));
}

void dl_arm_record(void *arg, cw_kmsg *m)
{
    struct worker *w = arg;
    size_t len = 0;
    const void *value = cw_kmsg_value(m, &len);
    char err[200];
    cw_envelope *env = value ? cw_event_unpack(value, len, err, sizeof err) : NULL;
    if (!env) {
        /* Not an event anyone could act on; the router and the gateway are the writers. */
        if (!cw_kmsg_detached(m))
            cw_warn("deadline.record_skipped", "topic=%s partition=%d offset=%lld reason=\"%s\"",
                    cw_kmsg_topic(m), (int)cw_kmsg_partition(m), (long long)cw_kmsg_offset(m),
                    value ? err : "no value");
        cw_kmsg_done(m);
        return;
    }
    if (env->body_case != CASEWIRE__V1__ENVELOPE__BODY_CASE_ROUTED &&
        env->body_case != CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT) {
        cw_event_free(env); /* DeadlineFired (ours) and what else shares the topic */
        cw_kmsg_done(m);
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j) {
        cw_error("deadline.no_memory", "offset=%lld (redelivered after a restart)",
                 (long long)cw_kmsg_offset(m));
        cw_event_free(env);
        return;
    }
    j->w = w;
    j->msg = m;
    j->env = env;
    j->reading = dl_needs_facts(env);
    /* A case's records apply in order: wait behind the last one of the same case. */
    for (struct job *o = w->jobs; o; o = o->next)
        if (!strcmp(job_case(o), job_case(j))) {
            while (o->after) o = o->after;
            o->after = j;
            j->waiting = true;
            return;
        }
    j->next = w->jobs;
    if (w->jobs) w->jobs->prev = j;
    w->jobs = j;
    job_step(j);
}

void dl_arm_park(struct worker *w)
{
    for (struct job *j = w->jobs; j; j = j->next)
        if (j->retry) {
            event_free(j->retry);
            j->retry = NULL;
        }
}

void dl_arm_free(struct worker *w)
{
    struct job *jobs = w->jobs;
    w->jobs = NULL;
    while (jobs) {
        struct job *next = jobs->next;
        for (struct job *a = jobs->after; a;) {
            struct job *an = a->after;
            cw_kmsg_done(a->msg);
            job_free(a);
            a = an;
        }
        cw_kmsg_done(jobs->msg);
        job_free(jobs);
        jobs = next;
    }
}
