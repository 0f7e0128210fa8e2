/*
 * What a case is, who answers for it and which clocks run, from its intake record alone: the
 * same record and chain always give the same decision, so a redelivered record is republished
 * with exactly the events of the first time (the owner, picked by load, comes from Redis).
 */
#include <stdio.h>
#include <string.h>

#include "domain.h"
#include "log.h"
#include "router.h"

static int reject(struct rt_job *job, const char *fmt, const char *arg)
{
    snprintf(job->reject_reason, sizeof job->reject_reason, fmt, arg);
    return -1;
}

/* Printable, bounded: an id from the record goes into reasons and logs. */
static const char *shown(const char *s)
{
    static char buf[80];
    size_t i = 0;
    for (; s && s[i] && i < sizeof buf - 1; i++)
        buf[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    buf[i] = '\0';
    return buf;
}

const char *rt_customer_phone(const struct rt_job *job)
{
    const Casewire__V1__CaseSubmitted *cs = job->cs;
    return cs && cs->customer && cs->customer->phone ? cs->customer->phone : "";
}

int rt_decide(struct router *rt, struct rt_job *job)
{
    const cw_envelope *env = job->env;
    if (env->body_case != CASEWIRE__V1__ENVELOPE__BODY_CASE_SUBMITTED || !env->case_submitted)
        return reject(job, "%s", "not a CaseSubmitted: casewire.intake.v1 carries new cases only");
    job->cs = env->case_submitted;
    const Casewire__V1__CaseSubmitted *cs = job->cs;
    const cw_event_meta *meta = env->meta;
    if (!cw_ulid_valid(meta->case_id))
        return reject(job, "meta.case_id \"%s\" is not a ULID", shown(meta->case_id));
    if (!(job->site = cw_chain_site(rt->chain, meta->site_id ? meta->site_id : "")))
        return reject(job, "unknown site \"%s\" (not in this router's chain)",
                      shown(meta->site_id));
    if (!cs->case_no || !*cs->case_no) return reject(job, "%s", "no case_no");
    job->tenant = NULL;
    if (meta->tenant_id && *meta->tenant_id) {
        /* The gateway checked the tenant; a chain reloaded since may have dropped it. The case
         * still needs an owner: it is routed as one without a tenant. */
        job->tenant = cw_chain_tenant(rt->chain, meta->tenant_id);
        if (!job->tenant)
            cw_warn("router.unknown_tenant", "case_id=%s tenant=%s", meta->case_id,
                    shown(meta->tenant_id));
    }

    const char *text = cs->text ? cs->text : "";
    struct rt_case_text in = {
        .text = text,
        .len = strlen(text),
        .channel = cs->channel,
        .site = job->site,
        .has_tenant = job->tenant != NULL,
        .type_hint = cs->type_hint,
        .category_hint = cs->category_hint,
        .stops_trading = cs->stops_trading,
    };
    char err[200];
    if (rt_classify(rt->classifier, &in, &job->verdict, err, sizeof err) != 0)
        return reject(job, "cannot classify: %s", err);

    /* Clocks run from when the case was recorded, not from when it is read here. */
    int64_t start = meta->occurred_ms > 0 ? meta->occurred_ms : cw_ulid_time_ms(meta->case_id);
    const struct rt_verdict *v = &job->verdict;
    if (rt_assign(rt->chain, rt->cal, job->site, job->tenant, v->category, v->department_kind,
                  start, &job->assignment) != 0 ||
        job->assignment.ncandidates == 0)
        return reject(job, "nobody can own a case at site %s (chain without fallback holders?)",
                      job->site->id);
    struct cw_case_facts facts = {
        .type = v->type,
        .category = v->category,
        .urgency = v->urgency,
        .validity = v->validity,
        .channel = cs->channel,
        .site = job->site,
        .has_tenant = job->tenant != NULL,
    };
    if (rt_plan_clocks(rt->chain, rt->cal, &facts, start, cs->reply_by_ms, &job->plan) != 0)
        return reject(job, "no SLA policy applies at site %s", job->site->id);
    return 0;
}
