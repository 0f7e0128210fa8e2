#include "escalate.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#include "domain.h"
#include "roster.h"

void dl_event_id(const char *timer_id, unsigned k, int64_t due_ms, char out[CW_ULID_LEN + 1])
{
    char in[DL_TIMER_ID_MAX + 16];
    int n = snprintf(in, sizeof in, "%s#%u", timer_id, k);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (n < 0 || !EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha256(), NULL) || mdlen < 10)
        memset(md, 0, 10); /* only when OpenSSL itself fails: still the same id each time */
    cw_ulid_make(due_ms, md, out);
}

/* "2026-11-25 14:03" in the site's time: what an SMS shows. */
static void local_minute(const struct dl_ctx *ctx, const struct cw_site *site, int64_t ms,
                         char *buf, size_t len)
{
    char iso[CW_CALENDAR_RFC3339_SIZE + 8];
    buf[0] = '\0';
    if (len < 17 || cw_calendar_format(ctx->cal, site, ms, iso, sizeof iso) <= 0) return;
    iso[10] = ' ';
    memcpy(buf, iso, 16);
    buf[16] = '\0';
}

static bool listed(const struct dl_firing *f, const char *id)
{
    for (size_t i = 0; i < f->fired.n_notified_staff_ids; i++)
        if (!strcmp(f->notified[i], id)) return true;
    return false;
}

static void notify(struct dl_firing *f, const char *id)
{
    if (f->fired.n_notified_staff_ids < DL_MAX_NOTIFY && !listed(f, id))
        f->notified[f->fired.n_notified_staff_ids++] = id;
}

/* The people of one ladder level at now (see escalate.h). */
static void notify_level(const struct dl_ctx *ctx, const struct cw_site *site,
                         const struct cw_role *role, int64_t now, struct dl_firing *f)
{
    const struct cw_staff *who[DL_NOTIFY_PER_LEVEL];
    size_t n =
        cw_roster_role_on_duty(ctx->chain, ctx->cal, site, role, now, who, DL_NOTIFY_PER_LEVEL);
    if (n == 0 && site->ladder.fallback)
        n = cw_roster_role_on_duty(ctx->chain, ctx->cal, site, site->ladder.fallback, now, who,
                                   DL_NOTIFY_PER_LEVEL);
    if (n == 0) n = cw_roster_role_holders(ctx->chain, site, role, who, DL_NOTIFY_PER_LEVEL);
    for (size_t i = 0; i < n && i < DL_NOTIFY_PER_LEVEL; i++) notify(f, who[i]->id);
}

static void param(struct dl_task *t, const char *key, const char *value)
{
    size_t i = t->task.n_params;
    if (i >= sizeof t->entries / sizeof t->entries[0]) return;
    casewire__v1__notification_task__params_entry__init(&t->entries[i]);
    t->entries[i].key = (char *)key;
    t->entries[i].value = (char *)value;
    t->params[i] = &t->entries[i];
    t->task.params = t->params;
    t->task.n_params = i + 1;
}

static struct dl_task *add_task(const struct dl_ctx *ctx, struct dl_firing *f, const char *timer_id,
                                const struct dl_payload *pl, int kind, const char *staff,
                                const char *template_id, int64_t now)
{
    if (f->ntasks >= DL_MAX_TASKS) return NULL;
    struct dl_task *t = &f->tasks[f->ntasks++];
    casewire__v1__envelope__init(&t->env);
    casewire__v1__notification_task__init(&t->task);
    dl_event_id(timer_id, (unsigned)f->ntasks, pl->at_ms, t->event_id);
    cw_event_meta_init_as(&t->meta, t->event_id, "deadline", f->case_id, pl->site, NULL,
                          f->event_id);
    t->meta.occurred_ms = now;
    snprintf(t->task_id, sizeof t->task_id, "%s:%s:%s", timer_id,
             kind == CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS ? "sms" : "task",
             staff);
    t->task.kind = kind;
    t->task.task_id = t->task_id;
    t->task.recipient_staff_id = (char *)staff;
    t->task.template_id = (char *)template_id;
    t->task.language = (char *)cw_chain_default_language(ctx->chain); /* staff read it */
    t->task.due_ms = now;
    t->task.priority = (uint32_t)pl->urgency;
    t->task.emergency = pl->urgency == CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY;
    t->env.meta = &t->meta;
    t->env.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_TASK;
    t->env.notification_task = &t->task;
    param(t, "case_no", pl->case_no);
    const struct cw_staff *st = cw_chain_staff(ctx->chain, staff);
    param(t, "staff_name", st && st->name ? st->name : staff);
    param(t, "due", f->due_s);
    if (pl->warn_pct == 0) param(t, "level", f->level_s);
    return t;
}

int dl_firing_plan(const struct dl_ctx *ctx, const char *timer_id, const struct dl_payload *pl,
                   const char *owner, int64_t now_ms, struct dl_firing *f)
{
    memset(f, 0, sizeof *f);
    const struct cw_site *site = cw_chain_site(ctx->chain, pl->site);
    char clock[DL_CLOCK_MAX], stage[DL_STAGE_MAX];
    unsigned gen;
    if (!site || site->ladder.nlevels == 0 ||
        dl_timer_id_parse(timer_id, f->case_id, clock, &gen, stage) != 0)
        return -1;
    dl_event_id(timer_id, 0, pl->at_ms, f->event_id);
    casewire__v1__envelope__init(&f->env);
    casewire__v1__deadline_fired__init(&f->fired);
    cw_event_meta_init_as(&f->meta, f->event_id, "deadline", f->case_id, site->id, NULL, NULL);
    f->meta.occurred_ms = now_ms;
    f->env.meta = &f->meta;
    f->env.body_case = CASEWIRE__V1__ENVELOPE__BODY_DEADLINE_FIRED;
    f->env.deadline_fired = &f->fired;
    f->fired.clock = pl->kind;
    f->fired.due_ms = pl->at_ms;
    f->fired.fired_ms = now_ms;
    f->fired.timer_id = (char *)timer_id;
    f->fired.notified_staff_ids = (char **)f->notified;

    if (pl->warn_pct > 0) { /* a warning: the owner, before the clock runs out */
        f->fired.warning = true;
        f->fired.warning_percent = (uint32_t)pl->warn_pct;
        local_minute(ctx, site, pl->clock_due_ms, f->due_s, sizeof f->due_s);
        if (*owner) {
            notify(f, owner);
            add_task(ctx, f, timer_id, pl, CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS,
                     f->notified[0], "staff_deadline_warning", now_ms);
        }
        return 0;
    }

    int top = (int)site->ladder.nlevels - 1;
    int first = pl->level < 0 ? 0 : pl->level > top ? top : pl->level;
    int span = pl->urgency == CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY ? DL_EMERGENCY_LEVELS : 1;
    int last = first + span - 1 > top ? top : first + span - 1;
    /* Who was on duty when the timer came due, not when it was claimed: a timer fired again
     * after a lease publishes the same people under the same event ids. */
    for (int l = first; l <= last; l++)
        notify_level(ctx, site, site->ladder.levels[l], pl->at_ms, f);
    f->fired.ladder_level = (uint32_t)last;

    int64_t act_by = pl->clock_due_ms;
    if (last < top) { /* the next level's breach, as long again after this one */
        struct dl_payload next = *pl;
        next.level = last + 1;
        next.start_ms = pl->at_ms;
        next.clock_due_ms = dl_span_due(ctx, site, pl->at_ms, &pl->span);
        if (next.clock_due_ms <= pl->at_ms) next.clock_due_ms = pl->at_ms + 1;
        next.at_ms = next.clock_due_ms;
        snprintf(f->next_stage, sizeof f->next_stage, "b%d", next.level);
        if (dl_payload_encode(&next, f->next_payload, sizeof f->next_payload) == 0) {
            f->has_next = true;
            /* no clock: the store arms it in the timer's own clock and generation */
            f->next = (struct dl_arm){NULL, f->next_stage, next.at_ms, f->next_payload};
            act_by = next.at_ms;
        }
    }
    local_minute(ctx, site, act_by, f->due_s, sizeof f->due_s);
    snprintf(f->level_s, sizeof f->level_s, "%d", last + 1); /* people count from 1 */
    for (size_t i = 0; i < f->fired.n_notified_staff_ids; i++) {
        const char *who = f->notified[i];
        add_task(ctx, f, timer_id, pl, CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS, who,
                 "staff_escalated", now_ms);
        add_task(ctx, f, timer_id, pl,
                 CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_STAFF_TASK, who,
                 "staff_escalated", now_ms);
    }
    return 0;
}
