/*
 * Which SLA policy applies to a case, and the clocks it runs.
 *
 * A policy's `match` (and a classification rule's `when`) is a condition on what is known of
 * a case: each mask given must contain the case's value (docs/chain.md). What is not known yet
 * (0: the gateway before classification knows no urgency or validity) does not satisfy a
 * condition on it, so a policy that needs it does not apply yet. Policies are read in
 * evaluation order (priority, then file order); the first that holds applies; the chain
 * guarantees one always does (a policy with an empty match).
 */
#ifndef CW_POLICY_H
#define CW_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "calendar.h"
#include "chain.h"

/* What is known of a case: proto enum values, 0 when not known. */
struct cw_case_facts {
    int type, category, urgency, validity, channel;
    const struct cw_site *site;
    bool has_tenant;
};

bool cw_match_holds(const struct cw_match *m, const struct cw_case_facts *f);

/* The first policy that holds; NULL only for a chain without a catch-all (never loaded). */
const struct cw_policy *cw_policy_for(const cw_chain *c, const struct cw_case_facts *f);

/* Due time of clock `kind` (ClockKind) of policy p for a clock started at start_ms, in the
 * site's calendar. 0 with *due_ms set; 1 when the policy does not run that clock; -1 when the
 * calendar has no answer (a site that never opens). */
int cw_policy_due(const cw_calendar *cal, const struct cw_site *site, const struct cw_policy *p,
                  int kind, int64_t start_ms, int64_t *due_ms);

#endif
