#include "clocks.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"

enum {
    HANDOFF = CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF,
    TRADING = CASEWIRE__V1__CLOCK_KIND__CLOCK_TENANT_TRADING,
    REPLY = CASEWIRE__V1__CLOCK_KIND__CLOCK_REPLY,
    FEEDBACK = CASEWIRE__V1__CLOCK_KIND__CLOCK_FEEDBACK,
    RESOLUTION = CASEWIRE__V1__CLOCK_KIND__CLOCK_RESOLUTION,
    FOLLOWUP = CASEWIRE__V1__CLOCK_KIND__CLOCK_FOLLOWUP,
};
#define BIT(k) (1u << (k))
#define ALL_CLOCKS                                                                                 \
    (BIT(HANDOFF) | BIT(TRADING) | BIT(REPLY) | BIT(FEEDBACK) | BIT(RESOLUTION) | BIT(FOLLOWUP))

/* ---- durations as fact values: "w:<ms>", "h:<ms>" (working hours), "d:<days>" ---- */

static void span_format(const struct cw_duration *d, char *buf, size_t len)
{
    if (d->basis == CW_TIME_WORKING_DAYS)
        snprintf(buf, len, "d:%u", d->days);
    else
        snprintf(buf, len, "%c:%lld", d->basis == CW_TIME_WORKING_HOURS ? 'h' : 'w',
                 (long long)d->ms);
}

static int span_parse(const char *s, struct cw_duration *d)
{
    memset(d, 0, sizeof *d);
    if (!s || strlen(s) < 3 || s[1] != ':') return -1;
    char *end;
    long long v = strtoll(s + 2, &end, 10);
    if (*end || v < 0) return -1;
    switch (s[0]) {
    case 'w':
        d->basis = CW_TIME_WALL;
        d->ms = v;
        return 0;
    case 'h':
        d->basis = CW_TIME_WORKING_HOURS;
        d->ms = v;
        return 0;
    case 'd':
        if (v > 10000) return -1;
        d->basis = CW_TIME_WORKING_DAYS;
        d->days = (unsigned)v;
        return 0;
    }
    return -1;
}

int64_t dl_span_due(const struct dl_ctx *ctx, const struct cw_site *site, int64_t start_ms,
                    const struct cw_duration *span)
{
    int64_t due;
    if (span->basis != CW_TIME_WALL && cw_calendar_due(ctx->cal, site, start_ms, span, &due) == 0)
        return due;
    /* a site whose calendar has no answer still gets its clock, counted on the wall */
    int64_t ms = span->basis == CW_TIME_WORKING_DAYS ? (int64_t)span->days * 86400000 : span->ms;
    return start_ms + ms;
}

/* ---- payloads ---- */

int dl_payload_encode(const struct dl_payload *p, char *buf, size_t len)
{
    char span[40];
    span_format(&p->span, span, sizeof span);
    int n = snprintf(buf, len,
                     "{\"site\":\"%s\",\"no\":\"%s\",\"urg\":%d,\"kind\":%d,\"start\":%lld,"
                     "\"due\":%lld,\"at\":%lld,\"span\":\"%s\",\"level\":%d,\"warn\":%d}",
                     p->site, p->case_no, p->urgency, p->kind, (long long)p->start_ms,
                     (long long)p->clock_due_ms, (long long)p->at_ms, span, p->level, p->warn_pct);
    return n > 0 && (size_t)n < len ? 0 : -1;
}

static int copy_str(json_t *o, const char *key, char *out, size_t len)
{
    const char *s = json_string_value(json_object_get(o, key));
    if (!s || strlen(s) >= len) return -1;
    strcpy(out, s);
    return 0;
}

int dl_payload_decode(const char *json, size_t len, struct dl_payload *out)
{
    memset(out, 0, sizeof *out);
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, NULL);
    if (!o) return -1;
    json_int_t urg = 0, kind = 0, start = 0, due = 0, at = 0, level = 0, warn = 0;
    const char *span = NULL;
    int rc =
        json_unpack(o, "{s:I,s:I,s:I,s:I,s:I,s:s,s:I,s:I}", "urg", &urg, "kind", &kind, "start",
                    &start, "due", &due, "at", &at, "span", &span, "level", &level, "warn", &warn);
    if (rc == 0 && (copy_str(o, "site", out->site, sizeof out->site) != 0 ||
                    copy_str(o, "no", out->case_no, sizeof out->case_no) != 0 ||
                    span_parse(span, &out->span) != 0 || kind <= 0 || kind >= CW_CHAIN_CLOCKS ||
                    level < -1 || level > 64 || warn < 0 || warn > 100))
        rc = -1;
    json_decref(o);
    if (rc != 0) return -1;
    out->urgency = (int)urg;
    out->kind = (int)kind;
    out->start_ms = start;
    out->clock_due_ms = due;
    out->at_ms = at;
    out->level = (int)level;
    out->warn_pct = (int)warn;
    return 0;
}

/* ---- facts ---- */

enum { F_SITE, F_NO, F_OWNER, F_POLICY, F_URGENCY, F_CLOCKS };
const char *const dl_fact_names[] = {
    "site",
    "no",
    "owner",
    "policy",
    "urgency",
    "d_handoff",
    "d_tenant_trading",
    "d_reply",
    "d_feedback",
    "d_resolution",
    "d_followup",
};
const size_t dl_fact_count = sizeof dl_fact_names / sizeof dl_fact_names[0];

static void copy_fact(const redisReply *e, char *out, size_t len)
{
    out[0] = '\0';
    if (e->type == REDIS_REPLY_STRING && e->len < len) memcpy(out, e->str, e->len + 1);
}

int dl_facts_from_reply(const redisReply *r, struct dl_facts *out)
{
    memset(out, 0, sizeof *out);
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != dl_fact_count) return -1;
    copy_fact(r->element[F_SITE], out->site, sizeof out->site);
    copy_fact(r->element[F_NO], out->case_no, sizeof out->case_no);
    copy_fact(r->element[F_OWNER], out->owner, sizeof out->owner);
    copy_fact(r->element[F_POLICY], out->policy, sizeof out->policy);
    char urg[8];
    copy_fact(r->element[F_URGENCY], urg, sizeof urg);
    out->urgency = atoi(urg);
    for (int k = HANDOFF; k <= FOLLOWUP; k++) {
        const redisReply *e = r->element[F_CLOCKS + k - HANDOFF];
        if (e->type == REDIS_REPLY_STRING) span_parse(e->str, &out->clocks[k]);
    }
    out->known = out->site[0] != '\0';
    return 0;
}

static void fact(struct dl_plan *p, const char *name, const char *value)
{
    size_t i = p->change.nfacts;
    if (i >= DL_MAX_FACTS) return;
    snprintf(p->fact_values[i], sizeof p->fact_values[i], "%s", value ? value : "");
    p->facts[i] = (struct dl_fact){name, p->fact_values[i]};
    p->change.nfacts = i + 1;
}

/* ---- arming a clock ---- */

static int arm(struct dl_plan *p, struct dl_payload *pl, int64_t due, const char *stage)
{
    size_t i = p->change.narms;
    pl->at_ms = due;
    if (i >= DL_MAX_ARMS || dl_payload_encode(pl, p->payloads[i], sizeof p->payloads[i]) != 0)
        return -1;
    snprintf(p->stages[i], sizeof p->stages[i], "%s", stage);
    p->arms[i] = (struct dl_arm){cw_clock_name(pl->kind), p->stages[i], due, p->payloads[i]};
    p->change.narms = i + 1;
    return 0;
}

/* The moment pct percent of the clock [start, due) has passed: working hours counted on the
 * calendar, wall and working-day clocks as that fraction of the time between. */
static int64_t warning_due(const struct dl_ctx *ctx, const struct cw_site *site,
                           const struct dl_payload *pl, int pct)
{
    if (pl->span.basis == CW_TIME_WORKING_HOURS) {
        struct cw_duration part = {CW_TIME_WORKING_HOURS, pl->span.ms * pct / 100, 0};
        return dl_span_due(ctx, site, pl->start_ms, &part);
    }
    return pl->start_ms + (pl->clock_due_ms - pl->start_ms) * pct / 100;
}

/* Arms the warnings of policy (NULL: none) and the breach of the clock in base. */
static int arm_clock(const struct dl_ctx *ctx, struct dl_plan *p, const struct cw_site *site,
                     const struct cw_policy *policy, const struct dl_payload *base)
{
    struct dl_payload pl = *base;
    char stage[DL_STAGE_MAX];
    for (size_t w = 0; policy && w < policy->nwarnings; w++) {
        pl.warn_pct = policy->warnings[w];
        pl.level = -1;
        int64_t due = warning_due(ctx, site, &pl, pl.warn_pct);
        if (due <= pl.start_ms || due >= pl.clock_due_ms) continue; /* nothing to warn of */
        snprintf(stage, sizeof stage, "w%d", pl.warn_pct);
        if (arm(p, &pl, due, stage) != 0) return -1;
    }
    pl.warn_pct = 0;
    pl.level = 0;
    return arm(p, &pl, pl.clock_due_ms, "b0");
}

/* ---- events ---- */

static void plan_init(struct dl_plan *p, const cw_envelope *env)
{
    memset(p, 0, sizeof *p);
    p->change.event_id = env->meta->event_id;
    p->change.case_id = env->meta->case_id;
    p->change.stops = p->stops;
    p->change.arms = p->arms;
    p->change.facts = p->facts;
}

static int plan_routed(const struct dl_ctx *ctx, const cw_envelope *env, struct dl_plan *p)
{
    const Casewire__V1__CaseRouted *r = env->case_routed;
    const struct cw_site *site = cw_chain_site(ctx->chain, env->meta->site_id);
    if (!site) {
        snprintf(p->why, sizeof p->why, "unknown site \"%s\"", env->meta->site_id);
        return -1;
    }
    const char *policy_id = r->n_clocks && r->clocks[0]->policy_id ? r->clocks[0]->policy_id : "";
    const struct cw_policy *policy = cw_chain_policy(ctx->chain, policy_id);
    char urg[8], span_s[40];
    snprintf(urg, sizeof urg, "%d", (int)r->urgency);
    fact(p, "site", site->id);
    fact(p, "no", r->case_no);
    fact(p, "owner", r->owner_staff_id);
    fact(p, "policy", policy_id);
    fact(p, "urgency", urg);
    int64_t created = cw_ulid_time_ms(env->meta->case_id);
    if (created <= 0) created = env->meta->occurred_ms;
    for (size_t i = 0; i < r->n_clocks; i++) {
        const Casewire__V1__Clock *c = r->clocks[i];
        int kind = (int)c->kind;
        if (kind < HANDOFF || kind > FOLLOWUP || c->duration_ms < 0) continue;
        /* The event's duration decides; a working-time clock keeps its policy's basis (whole
         * working days are not a number of milliseconds). */
        struct cw_duration span = {c->working_time ? CW_TIME_WORKING_HOURS : CW_TIME_WALL,
                                   c->duration_ms, 0};
        if (c->working_time && policy && policy->clocks[kind].basis == CW_TIME_WORKING_DAYS)
            span = policy->clocks[kind];
        span_format(&span, span_s, sizeof span_s);
        char name[DL_CLOCK_MAX];
        snprintf(name, sizeof name, "d_%s", cw_clock_name(kind));
        for (size_t f = F_CLOCKS; f < dl_fact_count; f++) /* the static name, not the buffer */
            if (!strcmp(dl_fact_names[f], name)) fact(p, dl_fact_names[f], span_s);
        if (c->due_ms <= 0) continue; /* planned, not running yet (the follow-up) */
        struct dl_payload pl = {.urgency = (int)r->urgency, .kind = kind, .span = span};
        snprintf(pl.site, sizeof pl.site, "%s", site->id);
        snprintf(pl.case_no, sizeof pl.case_no, "%s", r->case_no);
        pl.clock_due_ms = c->due_ms;
        pl.start_ms = c->working_time ? created : c->due_ms - c->duration_ms;
        if (pl.start_ms > pl.clock_due_ms) pl.start_ms = pl.clock_due_ms;
        if (arm_clock(ctx, p, site, policy, &pl) != 0) {
            snprintf(p->why, sizeof p->why, "too many timers");
            return -1;
        }
    }
    return 1;
}

struct moves {
    unsigned stops, starts;
};

static struct moves moves_of(const Casewire__V1__CaseEvent *e)
{
    switch (e->action) {
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE: return (struct moves){BIT(HANDOFF), 0};
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REPLY:
        return (struct moves){BIT(REPLY) | BIT(FEEDBACK), 0};
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REASSIGN: return (struct moves){0, BIT(HANDOFF)};
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_RESOLVE:
        return (struct moves){BIT(HANDOFF) | BIT(TRADING) | BIT(REPLY) | BIT(FEEDBACK) |
                                  BIT(RESOLUTION),
                              BIT(FOLLOWUP)};
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REOPEN:
        return (struct moves){BIT(FOLLOWUP), BIT(RESOLUTION) | BIT(REPLY)};
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP:
        if (e->outcome == CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_SATISFIED)
            return (struct moves){BIT(FOLLOWUP), 0};
        if (e->outcome == CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_NOT_SATISFIED)
            return (struct moves){BIT(FOLLOWUP), BIT(RESOLUTION) | BIT(REPLY)};
        return (struct moves){0, 0};
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_CLOSE: return (struct moves){ALL_CLOCKS, 0};
    default: return (struct moves){0, 0}; /* note, and actions this version does not know */
    }
}

bool dl_needs_facts(const cw_envelope *env)
{
    return env->body_case == CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT &&
           (moves_of(env->case_event).starts != 0 ||
            env->case_event->action == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REASSIGN);
}

static int plan_case_event(const struct dl_ctx *ctx, const cw_envelope *env,
                           const struct dl_facts *facts, struct dl_plan *p)
{
    const Casewire__V1__CaseEvent *e = env->case_event;
    struct moves mv = moves_of(e);
    for (int k = HANDOFF; k <= FOLLOWUP; k++)
        if (mv.stops & BIT(k) && !(mv.starts & BIT(k)))
            p->stops[p->change.nstops++] = cw_clock_name(k);
    if (e->action == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REASSIGN && e->reassign_to_staff_id &&
        *e->reassign_to_staff_id)
        fact(p, "owner", e->reassign_to_staff_id);
    /* Starting a clock needs what CaseRouted said of the case. Without it (an action recorded
     * before the case was routed: never in order on one partition) only the stops apply. */
    const struct cw_site *site =
        facts && facts->known ? cw_chain_site(ctx->chain, facts->site) : NULL;
    if (mv.starts && site) {
        const struct cw_policy *policy = cw_chain_policy(ctx->chain, facts->policy);
        int64_t start = env->meta->occurred_ms > 0 ? env->meta->occurred_ms : cw_now_ms();
        for (int k = HANDOFF; k <= FOLLOWUP; k++) {
            if (!(mv.starts & BIT(k)) || facts->clocks[k].basis == CW_TIME_UNSET) continue;
            struct dl_payload pl = {.urgency = facts->urgency, .kind = k, .span = facts->clocks[k]};
            snprintf(pl.site, sizeof pl.site, "%s", site->id);
            snprintf(pl.case_no, sizeof pl.case_no, "%s", facts->case_no);
            pl.start_ms = start;
            pl.clock_due_ms = dl_span_due(ctx, site, start, &facts->clocks[k]);
            if (arm_clock(ctx, p, site, policy, &pl) != 0) {
                snprintf(p->why, sizeof p->why, "too many timers");
                return -1;
            }
        }
    }
    return p->change.nstops || p->change.narms || p->change.nfacts ? 1 : 0;
}

int dl_plan_event(const struct dl_ctx *ctx, const cw_envelope *env, const struct dl_facts *facts,
                  struct dl_plan *out)
{
    plan_init(out, env);
    int rc;
    switch (env->body_case) {
    case CASEWIRE__V1__ENVELOPE__BODY_CASE_ROUTED: rc = plan_routed(ctx, env, out); break;
    case CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT: rc = plan_case_event(ctx, env, facts, out); break;
    default: return 0; /* DeadlineFired (ours) and anything else on the topic */
    }
    if (rc == 1 &&
        (strlen(env->meta->case_id) >= DL_CASE_ID_MAX || !cw_ulid_valid(env->meta->case_id))) {
        snprintf(out->why, sizeof out->why, "case id \"%.40s\" is not a ULID", env->meta->case_id);
        return -1;
    }
    return rc;
}
