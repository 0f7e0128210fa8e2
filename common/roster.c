/* The roster (roster.h): shifts read on a site's clock, and the lists built from them. */
#include "roster.h"

/* One question "on duty at ms?" asked of many staff. Staff of one list nearly always share
 * one clock (a site's staff its own, the group's the case's site), so the local time is
 * computed once per clock change rather than once per person. */
struct roster_query {
    const cw_calendar *cal;
    const struct cw_site *site; /* the case's site: the clock of group staff */
    int64_t ms;
    const struct cw_site *clock; /* the site the fields below were computed for, or NULL */
    bool ok;                     /* the calendar had a local time */
    int wday, minute;            /* weekday (sun = 0) and minute of the local day */
};

/* Where the staff found go: the first max into v, all of them counted. */
struct roster_out {
    const struct cw_staff **v;
    size_t max, n;
};

typedef bool roster_keep_fn(const struct cw_staff *st, const void *arg);

static unsigned day_bit(int wday) { return 1u << wday; }

/* Whether sh covers minute m of a local day with weekday wday (shifts start and end on whole
 * minutes, so the seconds never matter). The part of an overnight shift after midnight
 * belongs to the day before, so that day's bit decides. */
static bool shift_covers(const struct cw_shift *sh, int wday, int m)
{
    bool today = (sh->days & day_bit(wday)) != 0;
    if (!sh->overnight) return today && m >= sh->from && m < sh->to;
    bool yesterday = (sh->days & day_bit((wday + 6) % 7)) != 0;
    return (today && m >= sh->from) || (yesterday && m < sh->to);
}

static bool query_on_duty(struct roster_query *q, const struct cw_staff *st)
{
    if (st->nshifts == 0) return false; /* not rostered: skip the calendar */
    const struct cw_site *clock = st->site ? st->site : q->site;
    if (!clock) return false;
    if (clock != q->clock) {
        struct cw_local l = {0};
        q->clock = clock;
        q->ok = cw_calendar_local(q->cal, clock, q->ms, &l) == 0 && l.wday >= 0 && l.wday < 7;
        q->wday = l.wday;
        q->minute = l.hour * 60 + l.minute;
    }
    if (!q->ok) return false;
    for (size_t i = 0; i < st->nshifts; i++)
        if (shift_covers(&st->shifts[i], q->wday, q->minute)) return true;
    return false;
}

bool cw_roster_on_duty(const cw_calendar *cal, const struct cw_site *site,
                       const struct cw_staff *st, int64_t ms)
{
    if (!cal || !site || !st) return false;
    struct roster_query q = {.cal = cal, .site = site, .ms = ms};
    return query_on_duty(&q, st);
}

/* Adds the staff of v[0..n) that `keep` accepts and, when q is not NULL, who are on duty. */
static void scan(const struct cw_staff *v, size_t n, roster_keep_fn *keep, const void *arg,
                 struct roster_query *q, struct roster_out *o)
{
    for (size_t i = 0; i < n; i++) {
        if (!keep(&v[i], arg) || (q && !query_on_duty(q, &v[i]))) continue;
        if (o->n < o->max) o->v[o->n] = &v[i];
        o->n++;
    }
}

static bool in_department(const struct cw_staff *st, const void *arg)
{
    return st->department == arg;
}

static bool of_kind(const struct cw_staff *st, const void *arg)
{
    return st->department && st->department->kind == *(const enum cw_dept_kind *)arg;
}

static bool holds_role(const struct cw_staff *st, const void *arg)
{
    return cw_staff_has_role(st, ((const struct cw_role *)arg)->id);
}

static bool has_kind(const struct cw_department *v, size_t n, enum cw_dept_kind kind)
{
    for (size_t i = 0; i < n; i++)
        if (v[i].kind == kind) return true;
    return false;
}

static struct roster_out out_init(const struct cw_staff **out, size_t max)
{
    return (struct roster_out){.v = out, .max = out ? max : 0};
}

size_t cw_roster_department_on_duty(const cw_chain *c, const cw_calendar *cal,
                                    const struct cw_site *site, const struct cw_department *d,
                                    int64_t ms, const struct cw_staff **out, size_t max)
{
    if (!c || !cal || !site || !d) return 0;
    struct roster_query q = {.cal = cal, .site = site, .ms = ms};
    struct roster_out o = out_init(out, max);
    const struct cw_group *g = cw_chain_group(c);
    if (d->site)
        scan(d->site->staff, d->site->nstaff, in_department, d, &q, &o);
    else if (g)
        scan(g->staff, g->nstaff, in_department, d, &q, &o);
    return o.n;
}

size_t cw_roster_kind_on_duty(const cw_chain *c, const cw_calendar *cal, const struct cw_site *site,
                              enum cw_dept_kind kind, int64_t ms, const struct cw_staff **out,
                              size_t max)
{
    if (!c || !cal || !site) return 0;
    struct roster_query q = {.cal = cal, .site = site, .ms = ms};
    struct roster_out o = out_init(out, max);
    const struct cw_group *g = cw_chain_group(c);
    /* The group stands in only for a kind the site lacks, not for a site's empty desk. */
    if (has_kind(site->departments, site->ndepartments, kind))
        scan(site->staff, site->nstaff, of_kind, &kind, &q, &o);
    else if (g && has_kind(g->departments, g->ndepartments, kind))
        scan(g->staff, g->nstaff, of_kind, &kind, &q, &o);
    return o.n;
}

size_t cw_roster_role_on_duty(const cw_chain *c, const cw_calendar *cal, const struct cw_site *site,
                              const struct cw_role *role, int64_t ms, const struct cw_staff **out,
                              size_t max)
{
    if (!c || !cal || !site || !role) return 0;
    struct roster_query q = {.cal = cal, .site = site, .ms = ms};
    struct roster_out o = out_init(out, max);
    const struct cw_group *g = cw_chain_group(c);
    scan(site->staff, site->nstaff, holds_role, role, &q, &o);
    if (o.n == 0 && g) scan(g->staff, g->nstaff, holds_role, role, &q, &o);
    return o.n;
}

size_t cw_roster_role_holders(const cw_chain *c, const struct cw_site *site,
                              const struct cw_role *role, const struct cw_staff **out, size_t max)
{
    if (!c || !site || !role) return 0;
    struct roster_out o = out_init(out, max);
    const struct cw_group *g = cw_chain_group(c);
    scan(site->staff, site->nstaff, holds_role, role, NULL, &o);
    if (g) scan(g->staff, g->nstaff, holds_role, role, NULL, &o);
    return o.n;
}
