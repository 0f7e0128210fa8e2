/* Firing due timers (see worker.h). */
#include "worker.h"

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
    int deliveries, commit_attempts, record_attempts;
    bool delivery_failed, committing;
    struct event *retry; /* the case record's write, then the commit, tried again */
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
static void record_escalation(struct fire *f);

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct fire *f = arg;
    if (f->committing)
        commit(f);
    else
        record_escalation(f);
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
            if (!f->retry && !(f->retry = evtimer_new(w->base, on_retry, f))) break;
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
void dl_fire_flush_commits(evutil_socket_t fd, short what, void *arg)
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

/* The case record's write failed (why): tried again a little later, RECORD_ATTEMPTS in all,
 * as long as half of the lease is left for the commit. */
static void record_failed(struct fire *f, const char *why)
{
    struct worker *w = f->w;
    if (f->record_attempts < RECORD_ATTEMPTS && cw_mono_ms() - f->check_sent < w->lease_ms / 2 &&
        (f->retry || (f->retry = evtimer_new(w->base, on_retry, f)))) {
        struct timeval tv = {0, 100000 * f->record_attempts};
        evtimer_add(f->retry, &tv);
        return;
    }
    /* The escalation itself happened: Kafka confirmed its DeadlineFired and its tasks, and the
     * people were told. Only the case record misses it. Committing anyway moves the ladder on;
     * not committing would fire the timer again after its lease, for the record's sake. */
    cw_warn("deadline.record_failed",
            "timer=%s case_no=%s attempts=%d reason=\"%s\" (escalated and committed; the case "
            "record does not show it)",
            f->id, f->pl.case_no, f->record_attempts, why);
    commit(f);
}

static void escalation_recorded(void *arg, const redisReply *r, const char *err)
{
    struct fire *f = arg;
    if (f->w->closing) return;
    if (!err && dl_record_reply(r) >= 0) { /* 0: the case has no record, nothing written */
        commit(f);
        return;
    }
    record_failed(f, err ? err : r->type == REDIS_REPLY_ERROR ? r->str : "unexpected reply");
}

/* A breach confirmed by Kafka, before its commit: breached, level and the history entry into
 * the case record (record.h). A worker killed before the commit fires the timer again later
 * and writes the same bytes again: nothing changes. */
static void record_escalation(struct fire *f)
{
    f->record_attempts++;
    int rc = dl_record_escalated(f->w->record, f->id, &f->pl, f->firing, escalation_recorded, f);
    if (rc != CW_REDIS_OK) record_failed(f, cw_redis_strerror(rc));
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
    if (f->pl.warn_pct == 0)
        record_escalation(f); /* then the commit */
    else
        commit(f); /* warnings write nothing into the case record */
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

void dl_fire_wake_timer(evutil_socket_t fd, short what, void *arg);

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

void dl_fire_wake_timer(evutil_socket_t fd, short what, void *arg)
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

void dl_fire_resync(evutil_socket_t fd, short what, void *arg)
{
    struct worker *w = arg;
    (void)fd;
    (void)what;
    all_shards_now(w);
    int64_t ms = w->wake && dl_wake_subscribed(w->wake) ? RESYNC_MS : RESYNC_UNSUBSCRIBED_MS;
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(w->resync_timer, &tv);
}

void dl_fire_wake_message(void *arg, unsigned shard, int64_t due_ms)
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

void dl_fire_wake_state(void *arg, bool subscribed)
{
    struct worker *w = arg;
    cw_info("deadline.wakeups", "subscribed=%s", subscribed ? "yes" : "no");
    /* Messages published while we were not listening are lost: read every head again. */
    if (subscribed) all_shards_now(w);
}

void dl_fire_park(struct worker *w)
{
    for (struct fire *f = w->fires; f; f = f->next)
        if (f->retry) {
            event_free(f->retry);
            f->retry = NULL;
        }
}

void dl_fire_free(struct worker *w)
{
    struct fire *fires = w->fires;
    w->fires = NULL;
    while (fires) {
        struct fire *next = fires->next;
        free(fires->firing);
        free(fires);
        fires = next;
    }
}
