#include "assign.h"

#include <string.h>

#include "roster.h"

static const struct cw_department *first_of_kind(const struct cw_department *v, size_t n,
                                                 enum cw_dept_kind kind)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == kind) return &v[i];
    return NULL;
}

/* The site's department of that kind, else the group's, else NULL. */
static const struct cw_department *department_of(const cw_chain *chain, const struct cw_site *site,
                                                 enum cw_dept_kind kind)
{
    const struct cw_department *d = first_of_kind(site->departments, site->ndepartments, kind);
    const struct cw_group *g = cw_chain_group(chain);
    if (!d && g) d = first_of_kind(g->departments, g->ndepartments, kind);
    return d;
}

static void choose_department(const cw_chain *chain, const struct cw_site *site,
                              const struct cw_tenant *tenant, int category,
                              enum cw_dept_kind rule_kind, struct rt_assignment *out)
{
    if (rule_kind != CW_DEPT_UNSPECIFIED && rule_kind != CW_DEPT_TENANT &&
        (out->department = department_of(chain, site, rule_kind))) {
        out->kind = rule_kind;
        return;
    }
    const struct cw_route *route = cw_chain_route(chain, category);
    for (size_t i = 0; route && i < route->nkinds; i++) {
        enum cw_dept_kind k = route->kinds[i];
        if (k == CW_DEPT_TENANT) {
            if (tenant && tenant->site == site) out->tenant = tenant;
            continue;
        }
        if ((out->department = department_of(chain, site, k))) {
            out->kind = k;
            return;
        }
    }
}

int rt_assign(const cw_chain *chain, const cw_calendar *cal, const struct cw_site *site,
              const struct cw_tenant *tenant, int category, enum cw_dept_kind rule_kind, int64_t ms,
              struct rt_assignment *out)
{
    memset(out, 0, sizeof *out);
    if (!chain || !cal || !site) return -1;
    choose_department(chain, site, tenant, category, rule_kind, out);
    size_t n = 0;
    if (out->department)
        n = cw_roster_kind_on_duty(chain, cal, site, out->kind, ms, out->candidates,
                                   RT_MAX_CANDIDATES);
    out->pick = RT_PICK_ON_DUTY;
    const struct cw_role *fallback = site->ladder.fallback;
    if (n == 0 && fallback) {
        n = cw_roster_role_on_duty(chain, cal, site, fallback, ms, out->candidates,
                                   RT_MAX_CANDIDATES);
        out->pick = RT_PICK_FALLBACK_ON_DUTY;
    }
    if (n == 0 && fallback) {
        n = cw_roster_role_holders(chain, site, fallback, out->candidates, RT_MAX_CANDIDATES);
        out->pick = RT_PICK_FALLBACK_HOLDER;
    }
    out->ncandidates = n < RT_MAX_CANDIDATES ? n : RT_MAX_CANDIDATES;
    return out->ncandidates ? 0 : -1;
}

const char *rt_pick_name(enum rt_pick p)
{
    switch (p) {
    case RT_PICK_ON_DUTY: return "on_duty";
    case RT_PICK_FALLBACK_ON_DUTY: return "fallback_on_duty";
    case RT_PICK_FALLBACK_HOLDER: return "fallback_holder";
    }
    return "";
}
