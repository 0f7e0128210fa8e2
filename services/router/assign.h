/*
 * Who answers for a case: the department from the route of its category at its site, and
 * the people who may own it now. The owner among them is picked in Redis by open load (the
 * router's route script), so two routers never both pick the least-loaded person on stale
 * numbers.
 *
 *   1. Department kinds in order: the kind a classification rule set, if the site (or the
 *      group) has it; then the route's kinds (docs/chain.md `routing`). `tenant` applies when
 *      the case names a tenant of the site: that tenant answers too (webhook, tenant API), and
 *      the staff department is the next kind the site or the group has.
 *   2. Candidates: the staff of that kind on duty now (common/roster.h).
 *   3. Nobody on duty there: the holders of the site's fallback role who are on duty; nobody
 *      on duty at all (a site closed at night): every holder of the fallback role. A case is
 *      never without an owner.
 */
#ifndef RT_ASSIGN_H
#define RT_ASSIGN_H

#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "chain.h"

#define RT_MAX_CANDIDATES 32 /* the least loaded of these owns the case */

enum rt_pick { RT_PICK_ON_DUTY, RT_PICK_FALLBACK_ON_DUTY, RT_PICK_FALLBACK_HOLDER };

struct rt_assignment {
    enum cw_dept_kind kind;
    const struct cw_department *department; /* the first of that kind at the site, or the group's */
    const struct cw_tenant *tenant;         /* the tenant that answers too, or NULL */
    const struct cw_staff *candidates[RT_MAX_CANDIDATES];
    size_t ncandidates;
    enum rt_pick pick;
};

/* -1 when no department and nobody can be found (a chain that did not load: the loader
 * guarantees a route and a fallback holder for every site). */
int rt_assign(const cw_chain *chain, const cw_calendar *cal, const struct cw_site *site,
              const struct cw_tenant *tenant, int category, enum cw_dept_kind rule_kind, int64_t ms,
              struct rt_assignment *out);

const char *rt_pick_name(enum rt_pick p);

#endif
