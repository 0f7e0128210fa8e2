/*
 * The roster: who is on duty at an instant, from the weekly shifts of the loaded chain
 * (chain.h) read on a site's clock (calendar.h). The router uses it to assign a case, the
 * deadline worker to find the person for the next ladder level.
 *
 * On duty. Staff member st is on duty at instant ms when one of st's shifts covers the local
 * time of ms on the clock of st's site. Group head-office staff (st->site NULL) have no clock
 * of their own: they are read on the clock of `site`, the site the case belongs to (a group
 * 09:00-18:00 shift means 09:00-18:00 at that site).
 *   - a shift covers [from, to) on each weekday of `days` (the days it starts on): on duty at
 *     09:00 for a 09:00-17:00 shift, not at 17:00;
 *   - an overnight shift (`overnight`: to earlier than from) ends at `to` on the next day, and
 *     that part belongs to the day it started on: Monday's 22:00-06:00 covers Tuesday 03:00
 *     because Monday's bit is set, whatever Tuesday's is;
 *   - the local clock decides, DST days included: a skipped hour (spring forward) is not
 *     worked, a repeated hour (fall back) is covered both times. So a Saturday 22:00-06:00
 *     shift lasts 7 hours on the night the clocks go forward and 9 on the night they go back;
 *   - staff with no shifts are never on duty: they are reachable by explicit assignment only;
 *   - nobody is on duty when the calendar has no local time for ms (a site that is not the
 *     chain's, an instant outside years 1..9999).
 *
 * Lists. Each list function writes the first `max` staff found to out, in chain order (the
 * file order of the staff arrays, a site's staff before the group's), and returns how many it
 * found, which may exceed max (like snprintf): max 0 counts only, and out may then be NULL.
 *
 * Bad input: a NULL chain, calendar, site, staff, department or role gives false or 0 (site
 * is required even for site staff, who do not need its clock: callers always have one).
 * Pure functions over the chain and the calendar (no allocation, no state): any number of
 * threads may call them at once.
 */
#ifndef CW_ROSTER_H
#define CW_ROSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "chain.h"

/* Whether st is on duty at ms (rules above); site is the case's site. */
bool cw_roster_on_duty(const cw_calendar *cal, const struct cw_site *site,
                       const struct cw_staff *st, int64_t ms);

/* The staff of department d on duty at ms: d's site's staff, or the group's staff when d is a
 * group department (d->site NULL), those read on the clock of `site`. */
size_t cw_roster_department_on_duty(const cw_chain *c, const cw_calendar *cal,
                                    const struct cw_site *site, const struct cw_department *d,
                                    int64_t ms, const struct cw_staff **out, size_t max);

/* The staff on duty at ms in the site's departments of that kind; when the site has no
 * department of that kind at all, in the group's departments of that kind. A site that has
 * the kind but nobody on duty in it gives 0: the router tries its route's next kind. */
size_t cw_roster_kind_on_duty(const cw_chain *c, const cw_calendar *cal, const struct cw_site *site,
                              enum cw_dept_kind kind, int64_t ms, const struct cw_staff **out,
                              size_t max);

/* The staff holding role who are on duty at ms: the site's own; when none of those is on
 * duty, the group's. */
size_t cw_roster_role_on_duty(const cw_chain *c, const cw_calendar *cal, const struct cw_site *site,
                              const struct cw_role *role, int64_t ms, const struct cw_staff **out,
                              size_t max);

/* Everyone holding role, on duty or not: the site's staff, then the group's. The last resort,
 * so that a case never has nobody. */
size_t cw_roster_role_holders(const cw_chain *c, const struct cw_site *site,
                              const struct cw_role *role, const struct cw_staff **out, size_t max);

#endif
