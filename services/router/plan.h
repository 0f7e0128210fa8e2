/*
 * The clocks of a routed case: which SLA policy applies to the case as classified, and the due
 * time of every clock it runs (docs/chain.md "How clocks are counted").
 *
 * Clocks start when the case was recorded (its submission time), not when the router reads it:
 * a router that was down for a minute does not give the staff a minute more. The follow-up
 * clock starts only when the case is resolved; it is planned with its duration and no due time
 * (the deadline worker arms it on resolve). The reply clock is never later than the reply-by
 * time the customer was promised at intake.
 */
#ifndef RT_PLAN_H
#define RT_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "calendar.h"
#include "chain.h"
#include "policy.h"

struct rt_clock {
    int kind;            /* ClockKind */
    int64_t due_ms;      /* 0: not running yet (follow-up) */
    int64_t duration_ms; /* the limit as configured; working days count 24 h each */
    bool working_time;   /* counted in the site's working time */
};

struct rt_plan {
    const struct cw_policy *policy;
    struct rt_clock clocks[CW_CHAIN_CLOCKS];
    size_t nclocks;
    bool calendar_fallback; /* the calendar had no answer: some due time is wall-clock */
};

/* Plans the clocks for a case with these facts recorded at start_ms (promised_reply_ms 0:
 * nothing promised). -1 only when no policy applies (a chain that did not load). */
int rt_plan_clocks(const cw_chain *chain, const cw_calendar *cal, const struct cw_case_facts *f,
                   int64_t start_ms, int64_t promised_reply_ms, struct rt_plan *out);

#endif
