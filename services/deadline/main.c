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
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clocks.h"
#include "escalate.h"
#include "httpd.h"
#include "inspect.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "service.h"
#include "timers.h"
#include "wake.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
#define MAX_ERROR_REPLIES 5         /* Redis refusing a case's apply this often: skipped, logged */
#define RESYNC_MS 30000             /* every shard's head read again, in case a wake-up was lost */
#define RESYNC_UNSUBSCRIBED_MS 1000 /* ... while wake-ups cannot arrive at all */
#define COMMIT_ATTEMPTS 3
/* A shard whose claim just brought timers is claimed again no sooner than this: at thousands
 * of timers a second each claim then takes several (and so does each check and commit run)
 * instead of one, for at most this much lateness. Idle shards are claimed at their due time. */
#define BUSY_CLAIM_GAP_MS 4
#define NEVER INT64_MAX

struct job;
struct fire;

struct worker {
    struct event_base *base;
    const cw_chain *chain;
    cw_calendar *cal;
    struct dl_ctx ctx;
    cw_redis *redis;
    dl_timers *timers;
    dl_inspect *inspect; /* the operator view on the admin port */
    cw_producer *producer;
    dl_wake *wake;
    int64_t lease_ms;
    unsigned batch;
    size_t max_firing; /* claimed timers being fired at once, before claiming pauses */
    struct {
        int64_t due_mono;   /* when the shard next needs a claim (monotonic ms), NEVER */
        int64_t woken_mono; /* earliest wake-up that came while claiming, NEVER */
        bool claiming;
    } shards[DL_SHARDS];
    bool clock_known;
    int64_t redis_minus_mono; /* Redis's time minus our monotonic clock, from the last claim */
    struct event *wake_timer, *resync_timer;
    /* Fires waiting for their commit, by shard: sent together, one script run per shard, on
     * the loop's next turn (delivery reports come in bursts). */
    struct fire *commit_head[DL_SHARDS], *commit_tail[DL_SHARDS];
    struct event *commit_flush;
    struct job *jobs;
    struct fire *fires;
    size_t firing;
    unsigned claims_out; /* claims sent, not answered: their timers may come any moment */
    bool closing;
    struct cw_metric *applied, *duplicates, *skipped, *fired_warning, *fired_breach, *fenced_redis,
        *fenced_clock, *cancelled, *abandoned, *lateness, *claims, *retries;
};

/* ------------------------------------------------------------------ arming ---- */

struct job {
    struct worker *w;
    cw_kmsg *msg;
    cw_envelope *env;
    struct job *prev, *next;
    struct job *after; /* the next record of the same case, waiting for this one */
    bool waiting;      /* in some job's `after` chain, not started */
    bool reading;      /* the current step reads the facts (else it applies) */
    bool facts_loaded; /* facts holds the case's facts: a retried apply plans with them too */
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
    job_done(j);
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

static void on_case_record(void *arg, cw_kmsg *m)
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

/* ------------------------------------------------------------------ firing ---- */

struct fire {
    struct worker *w;
    struct fire *prev, *next;
    struct fire *commit_next; /* in the shard's commit queue */
    unsigned shard;
    char id[DL_TIMER_ID_MAX], token[DL_TOKEN_MAX];
    struct dl_payload pl;
    int64_t claimed_ms; /* Redis's time at the claim */
    int64_t check_sent; /* monotonic */
    char owner[80];
    struct dl_firing *firing;
    int deliveries, commit_attempts;
    bool delivery_failed, committing;
    struct event *retry;
};

static void schedule(struct worker *w);

/* Whether one more claim fits: the timers being fired, plus a full batch for each claim still
 * out and for this one, stay within max_firing. */
static bool room_for_claim(const struct worker *w)
{
    return w->firing + (w->claims_out + 1) * (size_t)w->batch <= w->max_firing;
}

/* Fires of one shard sent in one script run (check or commit): the reply's answer i is
 * fires[i]'s. */
struct fire_batch {
    struct worker *w;
    size_t n;
    struct fire *fires[];
};

static struct fire_batch *batch_new(struct worker *w, size_t cap)
{
    struct fire_batch *b = malloc(sizeof *b + cap * sizeof b->fires[0]);
    if (b) *b = (struct fire_batch){.w = w};
    return b;
}

/* 1 when r holds one answer (three entries) for each fire of b. */
static bool batch_reply_ok(const struct fire_batch *b, const redisReply *r)
{
    return r && r->type == REDIS_REPLY_ARRAY && r->elements == 3 * b->n;
}

static void fire_free(struct fire *f)
{
    struct worker *w = f->w;
    if (f->prev)
        f->prev->next = f->next;
    else
        w->fires = f->next;
    if (f->next) f->next->prev = f->prev;
    if (f->retry) event_free(f->retry);
    free(f->firing);
    free(f);
    w->firing--;
    /* room again: just now (claimed() and a claim's failure call schedule() themselves) */
    if (!w->closing && w->firing + (w->claims_out + 1) * (size_t)w->batch == w->max_firing)
        schedule(w);
}

/* Given up on this worker: its lease runs out and any worker fires it then, same ids. */
static void fire_abandon(struct fire *f, const char *why)
{
    cw_warn("deadline.fire_abandoned", "timer=%s reason=\"%s\" (fired again after its lease)",
            f->id, why);
    cw_metric_add(f->w->abandoned, 1);
    fire_free(f);
}

static void fenced(struct fire *f, struct cw_metric *counter, const char *why)
{
    cw_warn("deadline.fenced", "timer=%s reason=\"%s\"", f->id, why);
    cw_metric_add(counter, 1);
    fire_free(f);
}

static void commit(struct fire *f);

static void on_commit_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    commit(arg);
}

/* r: the batch's reply, i: this fire's answer in it (r NULL and err set when the run failed). */
static void committed(struct fire *f, const redisReply *r, size_t i, const char *err)
{
    struct worker *w = f->w;
    enum dl_fire_result res = err ? DL_FIRE_BAD_REPLY : dl_fire_reply_at(r, i);
    switch (res) {
    case DL_FIRE_OK:
        cw_metric_add(f->pl.warn_pct ? w->fired_warning : w->fired_breach, 1);
        cw_metric_observe(w->lateness, (double)(f->claimed_ms - f->pl.at_ms) / 1000.0);
        if (!f->pl.warn_pct)
            cw_info("deadline.escalated", "timer=%s case_no=%s level=%u notified=%zu late_ms=%lld",
                    f->id, f->pl.case_no, f->firing->fired.ladder_level,
                    f->firing->fired.n_notified_staff_ids,
                    (long long)(f->claimed_ms - f->pl.at_ms));
        fire_free(f);
        return;
    case DL_FIRE_FENCED: /* exact: a retry of our own commit is answered ok (fire script) */
        fenced(f, w->fenced_redis, "another worker holds the timer: its lease ran out");
        return;
    case DL_FIRE_CANCELLED: /* the clock stopped while we published: nothing to arm */
        cw_metric_add(w->cancelled, 1);
        fire_free(f);
        return;
    default:
        if (f->commit_attempts < COMMIT_ATTEMPTS) {
            if (!f->retry && !(f->retry = evtimer_new(w->base, on_commit_retry, f))) break;
            struct timeval tv = {0, 100000 * f->commit_attempts};
            evtimer_add(f->retry, &tv);
            return;
        }
        break;
    }
    const char *why = err ? err : r && r->type == REDIS_REPLY_ERROR ? r->str : "commit failed";
    fire_abandon(f, why);
}

typedef void fire_answer_fn(struct fire *f, const redisReply *r, size_t i, const char *err);

/* Hands each fire of b its answer (or the run's error), then frees b. */
static void batch_answered(struct fire_batch *b, const redisReply *r, const char *err,
                           const char *what, fire_answer_fn *answer)
{
    if (!b->w->closing) {
        if (!err && !batch_reply_ok(b, r)) err = r && r->type == REDIS_REPLY_ERROR ? r->str : what;
        for (size_t i = 0; i < b->n; i++) answer(b->fires[i], err ? NULL : r, i, err);
    }
    free(b);
}

static void commits_done(void *arg, const redisReply *r, const char *err)
{
    batch_answered(arg, r, err, "unexpected reply to commit", committed);
}

/* Sends every queued commit: per shard, one script run of up to DL_MAX_FIRE_BATCH timers. */
static void flush_commits(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct worker *w = arg;
    if (w->closing) return;
    for (unsigned s = 0; s < DL_SHARDS; s++) {
        while (w->commit_head[s]) {
            size_t n = 0;
            for (struct fire *f = w->commit_head[s]; f && n < DL_MAX_FIRE_BATCH; f = f->commit_next)
                n++;
            struct fire_batch *b = batch_new(w, n);
            struct dl_fire_item *items = malloc(n * sizeof *items);
            for (size_t i = 0; i < n; i++) {
                struct fire *f = w->commit_head[s];
                w->commit_head[s] = f->commit_next;
                f->commit_next = NULL;
                if (!b || !items) {
                    committed(f, NULL, 0, "out of memory"); /* retried after a pause */
                    continue;
                }
                char case_id[DL_CASE_ID_MAX];
                items[b->n] = (struct dl_fire_item){f->id, f->token,
                                                    f->firing->has_next ? &f->firing->next : NULL};
                if (!dl_fire_item_ok(s, false, &items[b->n], case_id)) {
                    /* not allowed to fail the others: left to its lease, logged each time */
                    fire_abandon(f, "its next timer cannot be armed");
                    continue;
                }
                b->fires[b->n++] = f;
            }
            if (!w->commit_head[s]) w->commit_tail[s] = NULL;
            if (b && items && b->n > 0) {
                int rc = dl_timers_fire_batch(w->timers, s, false, 0, items, b->n, commits_done, b);
                if (rc != CW_REDIS_OK) commits_done(b, NULL, cw_redis_strerror(rc));
            } else {
                free(b);
            }
            free(items);
        }
    }
}

static void commit(struct fire *f)
{
    struct worker *w = f->w;
    f->committing = true;
    f->commit_attempts++;
    if (w->commit_tail[f->shard])
        w->commit_tail[f->shard]->commit_next = f;
    else
        w->commit_head[f->shard] = f;
    w->commit_tail[f->shard] = f;
    event_active(w->commit_flush, 0, 0); /* once per loop turn, however many are queued */
}

static void delivered(void *opaque, int error, const char *errstr)
{
    struct fire *f = opaque;
    if (f->w->closing) return;
    if (error) {
        f->delivery_failed = true;
        cw_warn("deadline.not_delivered", "timer=%s error=\"%s\"", f->id, errstr);
    }
    if (--f->deliveries > 0) return;
    if (f->delivery_failed) {
        fire_abandon(f, "Kafka did not confirm");
        return;
    }
    commit(f);
}

static int produce(struct fire *f, const cw_envelope *env, const char *topic)
{
    uint8_t *buf;
    size_t len = cw_event_pack(env, &buf);
    if (!len) return CW_PRODUCE_FAILED;
    const char *key = env->meta->case_id;
    int rc = cw_producer_send(f->w->producer, topic, key, strlen(key), buf, len, delivered, f);
    free(buf);
    if (rc == CW_PRODUCE_OK) f->deliveries++;
    return rc;
}

static void publish(struct fire *f)
{
    struct dl_firing *p = f->firing;
    int rc = produce(f, &p->env, CW_TOPIC_CASES);
    for (size_t i = 0; rc == CW_PRODUCE_OK && i < p->ntasks; i++)
        rc = produce(f, &p->tasks[i].env, CW_TOPIC_NOTIFY);
    if (rc == CW_PRODUCE_OK) return;
    /* Part of it may be out: the same events go again after the lease, same ids. */
    if (f->deliveries > 0)
        f->delivery_failed = true;
    else
        fire_abandon(f, rc == CW_PRODUCE_QUEUE_FULL ? "producer queue full" : "produce refused");
}

/* r: the batch's reply, i: this fire's answer in it (r NULL and err set when the run failed). */
static void checked(struct fire *f, const redisReply *r, size_t i, const char *err)
{
    struct worker *w = f->w;
    int64_t left = 0;
    int res = err ? DL_FIRE_BAD_REPLY : dl_check_reply_at(r, i, f->owner, sizeof f->owner, &left);
    switch (res) {
    case DL_FIRE_OK: break;
    case DL_FIRE_FENCED: fenced(f, w->fenced_redis, "another worker holds the timer"); return;
    case DL_FIRE_CANCELLED:
        cw_metric_add(w->cancelled, 1);
        fire_free(f);
        return;
    case DL_FIRE_LATE: fire_abandon(f, "less than half of the lease left"); return;
    default: fire_abandon(f, err ? err : "unexpected reply to check"); return;
    }
    /* The lease ends no earlier than (when the check was sent) + left. A worker that was
     * stopped (SIGSTOP, a VM pause) after Redis answered reads the answer late: when half a
     * lease may be gone, another worker may already have the timer, so this one stays out. */
    if (cw_mono_ms() - f->check_sent > left - w->lease_ms / 2) {
        fenced(f, w->fenced_clock, "the check's answer came too late: paused past the lease?");
        return;
    }
    if (!(f->firing = malloc(sizeof *f->firing))) {
        fire_abandon(f, "out of memory");
        return;
    }
    if (dl_firing_plan(&w->ctx, f->id, &f->pl, f->owner, f->claimed_ms, f->firing) != 0) {
        /* Its site left the chain: nobody to tell. Committed, so that it does not come back. */
        cw_error("deadline.timer_unusable", "timer=%s site=%s reason=\"site not in the chain\"",
                 f->id, f->pl.site);
        f->firing->has_next = false;
        commit(f);
        return;
    }
    publish(f);
}

static void checks_done(void *arg, const redisReply *r, const char *err)
{
    batch_answered(arg, r, err, "unexpected reply to check", checked);
}

/* A claimed timer becomes a fire; NULL when it could not (logged, left to its lease). */
static struct fire *start_fire(struct worker *w, unsigned shard, const struct dl_claimed *c,
                               int64_t now)
{
    struct fire *f = calloc(1, sizeof *f);
    if (!f) {
        cw_error("deadline.no_memory", "timer=%.*s (fired again after its lease)", 80, c->id);
        return NULL;
    }
    f->w = w;
    f->shard = shard;
    snprintf(f->id, sizeof f->id, "%s", c->id);
    snprintf(f->token, sizeof f->token, "%s", c->token);
    f->claimed_ms = now;
    f->next = w->fires;
    if (w->fires) w->fires->prev = f;
    w->fires = f;
    w->firing++;
    if (dl_payload_decode(c->payload, c->payload_len, &f->pl) != 0) {
        /* Not a payload this version writes: left to its lease, and logged each time. */
        fire_abandon(f, "payload not understood");
        return NULL;
    }
    return f;
}

/* One check for a claim's timers: token still ours, at least half the lease left. */
static void check_claimed(struct worker *w, unsigned shard, const struct dl_claim *c)
{
    struct fire_batch *b = batch_new(w, c->n);
    struct dl_fire_item *items = malloc((c->n ? c->n : 1) * sizeof *items);
    for (size_t i = 0; i < c->n; i++) {
        struct fire *f = start_fire(w, shard, &c->timers[i], c->now_ms);
        if (!f) continue;
        if (!b || !items) {
            fire_abandon(f, "out of memory");
            continue;
        }
        char case_id[DL_CASE_ID_MAX];
        items[b->n] = (struct dl_fire_item){f->id, f->token, NULL};
        if (!dl_fire_item_ok(shard, true, &items[b->n], case_id)) {
            fire_abandon(f, "not a timer id of this shard"); /* not allowed to fail the rest */
            continue;
        }
        b->fires[b->n++] = f;
    }
    if (b && items && b->n > 0) {
        int64_t now = cw_mono_ms();
        for (size_t i = 0; i < b->n; i++) b->fires[i]->check_sent = now;
        int rc = dl_timers_fire_batch(w->timers, shard, true, w->lease_ms / 2, items, b->n,
                                      checks_done, b);
        if (rc != CW_REDIS_OK) checks_done(b, NULL, cw_redis_strerror(rc));
    } else {
        free(b);
    }
    free(items);
}

/* ------------------------------------------------------------ claiming ---- */

struct claim_call {
    struct worker *w;
    unsigned shard;
};

static void on_wake_timer(evutil_socket_t fd, short what, void *arg);

static void claimed(void *arg, const redisReply *r, const char *err)
{
    struct claim_call *cc = arg;
    struct worker *w = cc->w;
    unsigned shard = cc->shard;
    free(cc);
    if (w->closing) return;
    w->claims_out--;
    int64_t mono = cw_mono_ms();
    struct dl_claim c;
    if (err || dl_claim_reply(r, &c) != 0) {
        /* Redis is away or answered oddly: try this shard again soon. */
        w->shards[shard].due_mono = mono + RETRY_MIN_MS * 5;
        if (w->shards[shard].woken_mono < w->shards[shard].due_mono) /* woken meanwhile */
            w->shards[shard].due_mono = w->shards[shard].woken_mono;
        w->shards[shard].woken_mono = NEVER;
        w->shards[shard].claiming = false;
        schedule(w);
        return;
    }
    cw_metric_add(w->claims, 1);
    w->redis_minus_mono = c.now_ms - mono;
    w->clock_known = true;
    if (c.skipped)
        cw_warn("deadline.foreign_timers", "shard=%u count=%zu (not written by casewire)", shard,
                c.skipped);
    check_claimed(w, shard, &c);
    if (c.n + c.skipped >= w->batch)
        w->shards[shard].due_mono = mono; /* more may be due */
    else
        w->shards[shard].due_mono = c.next_ms < 0 ? NEVER : c.next_ms - w->redis_minus_mono;
    if (c.n > 0 && c.n + c.skipped < w->batch &&
        w->shards[shard].due_mono < mono + BUSY_CLAIM_GAP_MS)
        w->shards[shard].due_mono = mono + BUSY_CLAIM_GAP_MS;
    /* A wake-up published after Redis ran this claim is not in its answer. */
    if (w->shards[shard].woken_mono < w->shards[shard].due_mono)
        w->shards[shard].due_mono = w->shards[shard].woken_mono;
    w->shards[shard].woken_mono = NEVER;
    free(c.timers);
    /* Only now: a fire freed above (and the schedule() it calls) must not claim this shard
     * again before its due time was set from this answer. */
    w->shards[shard].claiming = false;
    schedule(w);
}

static void claim(struct worker *w, unsigned shard)
{
    struct claim_call *cc = malloc(sizeof *cc);
    if (!cc) return;
    *cc = (struct claim_call){w, shard};
    w->shards[shard].claiming = true;
    int rc = dl_timers_claim(w->timers, shard, w->batch, w->lease_ms, claimed, cc);
    if (rc == CW_REDIS_OK) w->claims_out++;
    if (rc != CW_REDIS_OK) {
        free(cc);
        w->shards[shard].claiming = false;
        w->shards[shard].due_mono = cw_mono_ms() + RETRY_MIN_MS * 5; /* not connected yet */
    }
}

/* Claims every shard that is due (as long as there is room), then sets the one timer for
 * the next shard due. */
static void schedule(struct worker *w)
{
    if (w->closing) return;
    int64_t now = cw_mono_ms(), next = NEVER;
    for (unsigned s = 0; s < DL_SHARDS; s++) {
        if (w->shards[s].claiming) continue;
        if (w->shards[s].due_mono <= now && room_for_claim(w)) claim(w, s);
        if (!w->shards[s].claiming && w->shards[s].due_mono < next) next = w->shards[s].due_mono;
    }
    if (!room_for_claim(w)) return; /* fire_free() calls again */
    evtimer_del(w->wake_timer);
    if (next == NEVER) return;
    int64_t ms = next - now;
    if (ms < 0) ms = 0;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(w->wake_timer, &tv);
}

static void on_wake_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    schedule(arg);
}

static void all_shards_now(struct worker *w)
{
    int64_t now = cw_mono_ms();
    for (unsigned s = 0; s < DL_SHARDS; s++)
        if (w->shards[s].due_mono > now) w->shards[s].due_mono = now;
    schedule(w);
}

static void on_resync(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    all_shards_now(w);
    int64_t ms = w->wake && dl_wake_subscribed(w->wake) ? RESYNC_MS : RESYNC_UNSUBSCRIBED_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(w->resync_timer, &tv);
}

static void on_wake_message(void *arg, unsigned shard, int64_t due_ms)
{
    struct worker *w = arg;
    int64_t due = w->clock_known ? due_ms - w->redis_minus_mono : cw_mono_ms();
    if (w->shards[shard].claiming) { /* the claim's answer may predate it: kept for then */
        if (due < w->shards[shard].woken_mono) w->shards[shard].woken_mono = due;
        return;
    }
    if (due < w->shards[shard].due_mono) {
        w->shards[shard].due_mono = due;
        schedule(w);
    }
}

static void on_wake_state(void *arg, bool subscribed)
{
    struct worker *w = arg;
    cw_info("deadline.wakeups", "subscribed=%s", subscribed ? "yes" : "no");
    /* Messages published while we were not listening are lost: read every head again. */
    if (subscribed) all_shards_now(w);
}

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
    if (!(w->timers = dl_timers_new(w->redis)) ||
        !(w->inspect = dl_inspect_new(w->timers, w->chain)))
        return -1;
    cw_httpd_set_handler(cw_service_httpd(svc), dl_inspect_handle, w->inspect);
    struct cw_redis_options o;
    cw_redis_options_init(&o);
    if (cw_redis_parse_url(cw_config_str(cfg, CW_SET_REDIS_URL), &o, err, sizeof err) != 0)
        return -1;
    if (!(w->wake = dl_wake_new(w->base, &o, on_wake_message, on_wake_state, w))) return -1;
    explicit_bzero(&o, sizeof o);
    if (!(w->wake_timer = evtimer_new(w->base, on_wake_timer, w)) ||
        !(w->resync_timer = evtimer_new(w->base, on_resync, w)) ||
        !(w->commit_flush = event_new(w->base, -1, 0, flush_commits, w)))
        return -1;
    for (unsigned s = 0; s < DL_SHARDS; s++)
        w->shards[s].due_mono = w->shards[s].woken_mono = NEVER;
    struct timeval soon = {0, 0};
    evtimer_add(w->resync_timer, &soon); /* the first claims, once the loop runs */
    metrics(w, cw_service_metrics(svc));
    cw_info("deadline.ready", "lease_ms=%lld claim_batch=%u shards=%d", (long long)w->lease_ms,
            w->batch, DL_SHARDS);
    const char *topics[] = {CW_TOPIC_CASES};
    return cw_service_consume(svc, topics, 1, on_case_record, w);
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
    for (struct job *j = w.jobs; j; j = j->next)
        if (j->retry) {
            event_free(j->retry);
            j->retry = NULL;
        }
    for (struct fire *f = w.fires; f; f = f->next)
        if (f->retry) {
            event_free(f->retry);
            f->retry = NULL;
        }
    struct job *jobs = w.jobs;
    struct fire *fires = w.fires;
    w.jobs = NULL;
    w.fires = NULL;
    cw_service_free(svc); /* fails what is in flight: the callbacks above return at once */
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
    while (fires) {
        struct fire *next = fires->next;
        free(fires->firing);
        free(fires);
        fires = next;
    }
    dl_inspect_free(w.inspect); /* its Redis calls were failed and answered above */
    dl_timers_free(w.timers);
    cw_calendar_free(w.cal);
    return exit_code;
}
