#include "plan.h"

#include <string.h>

#include "casewire.pb-c.h"

static int64_t limit_ms(const struct cw_duration *d)
{
    return d->basis == CW_TIME_WORKING_DAYS ? (int64_t)d->days * 86400000LL : d->ms;
}

int rt_plan_clocks(const cw_chain *chain, const cw_calendar *cal, const struct cw_case_facts *f,
                   int64_t start_ms, int64_t promised_reply_ms, struct rt_plan *out)
{
    memset(out, 0, sizeof *out);
    out->policy = cw_policy_for(chain, f);
    if (!out->policy) return -1;
    for (int kind = 1; kind < CW_CHAIN_CLOCKS; kind++) {
        const struct cw_duration *d = &out->policy->clocks[kind];
        if (d->basis == CW_TIME_UNSET) continue;
        struct rt_clock *c = &out->clocks[out->nclocks++];
        *c = (struct rt_clock){
            .kind = kind, .duration_ms = limit_ms(d), .working_time = d->basis != CW_TIME_WALL};
        if (kind == CASEWIRE__V1__CLOCK_KIND__CLOCK_FOLLOWUP) continue; /* starts on resolve */
        if (cw_calendar_due(cal, f->site, start_ms, d, &c->due_ms) != 0) {
            /* A site that never opens (or a due time past the calendar's reach): count wall
             * time rather than run no clock at all. */
            c->due_ms = start_ms + c->duration_ms;
            out->calendar_fallback = true;
        }
        if (kind == CASEWIRE__V1__CLOCK_KIND__CLOCK_REPLY && promised_reply_ms > 0 &&
            promised_reply_ms < c->due_ms)
            c->due_ms = promised_reply_ms;
    }
    return 0;
}
