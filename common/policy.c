#include "policy.h"

#include <stddef.h>

/* A mask condition: 0 is "any"; otherwise the value must be known and listed. */
static bool mask_holds(uint32_t mask, int value)
{
    if (!mask) return true;
    return value > 0 && value < 32 && (mask & (1u << (unsigned)value));
}

bool cw_match_holds(const struct cw_match *m, const struct cw_case_facts *f)
{
    if (!mask_holds(m->types, f->type) || !mask_holds(m->categories, f->category) ||
        !mask_holds(m->urgencies, f->urgency) || !mask_holds(m->validities, f->validity) ||
        !mask_holds(m->channels, f->channel))
        return false;
    if (m->tenant >= 0 && (m->tenant == 1) != f->has_tenant) return false;
    if (m->nsites == 0) return true;
    for (size_t i = 0; i < m->nsites; i++)
        if (m->sites[i] == f->site) return true;
    return false;
}

const struct cw_policy *cw_policy_for(const cw_chain *c, const struct cw_case_facts *f)
{
    for (size_t i = 0; i < cw_chain_policy_count(c); i++) {
        const struct cw_policy *p = cw_chain_policy_at(c, i);
        if (cw_match_holds(&p->match, f)) return p;
    }
    return NULL;
}

int cw_policy_due(const cw_calendar *cal, const struct cw_site *site, const struct cw_policy *p,
                  int kind, int64_t start_ms, int64_t *due_ms)
{
    if (!p || kind <= 0 || kind >= CW_CHAIN_CLOCKS || p->clocks[kind].basis == CW_TIME_UNSET)
        return 1;
    return cw_calendar_due(cal, site, start_ms, &p->clocks[kind], due_ms) == 0 ? 0 : -1;
}
