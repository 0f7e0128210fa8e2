/* Consistency checks across records of a chain: overlapping shifts, roles nobody holds,
 * opening hours nobody covers, routes a site cannot serve, regexes, the defaults every case
 * needs. Called by the loaders while the YAML tree is at hand, for line numbers. */
#include "chain_impl.h"

#include <regex.h>
#include <stdio.h>
#include <string.h>

enum { DAY = 1440, WEEK = 7 * DAY };

/* ---- shifts ---- */

static unsigned shift_len(const struct cw_shift *sh)
{
    return sh->overnight ? (unsigned)(sh->to + DAY - sh->from) : (unsigned)(sh->to - sh->from);
}

/* Do [a, a+la) and [b, b+lb) overlap on the weekly circle? */
static bool overlap_weekly(unsigned a, unsigned la, unsigned b, unsigned lb)
{
    for (int k = -1; k <= 1; k++) {
        long bb = (long)b + k * WEEK;
        if ((long)a < bb + (long)lb && bb < (long)(a + la)) return true;
    }
    return false;
}

/* The weekday where shifts a and b first overlap, or -1. */
static int shifts_overlap(const struct cw_shift *a, const struct cw_shift *b)
{
    for (int da = 0; da < 7; da++) {
        if (!(a->days & (1u << da))) continue;
        for (int db = 0; db < 7; db++) {
            if (!(b->days & (1u << db))) continue;
            if (overlap_weekly((unsigned)(da * DAY + a->from), shift_len(a),
                               (unsigned)(db * DAY + b->from), shift_len(b)))
                return db;
        }
    }
    return -1;
}

void ck_shifts(struct cw_ld *ld, const struct cw_staff *s, const struct cw_ynode *node)
{
    const struct cw_ynode *list = cw_ynode_get(node, "shifts");
    for (size_t j = 1; j < s->nshifts; j++) {
        for (size_t i = 0; i < j; i++) {
            int day = shifts_overlap(&s->shifts[i], &s->shifts[j]);
            if (day < 0 || !s->shifts[i].days || !s->shifts[j].days) continue;
            size_t mark = ld_push_key(ld, "shifts");
            size_t mi = ld_push_index(ld, j);
            ld_error(ld, list->items[j],
                     "overlaps shifts[%zu] on %s (overnight shifts end the "
                     "next day)",
                     i, cw_weekday_name(day));
            ld_pop(ld, mi);
            ld_pop(ld, mark);
            break;
        }
    }
}

/* ---- roles and duty coverage ---- */

static bool staff_hold(const struct cw_staff *staff, size_t n, const struct cw_role *r)
{
    for (size_t i = 0; i < n; i++)
        for (size_t k = 0; k < staff[i].nroles; k++)
            if (staff[i].roles[k] == r) return true;
    return false;
}

bool ck_role_held(const cw_chain *c, const struct cw_site *s, const struct cw_role *r,
                  bool site_only)
{
    if (staff_hold(s->staff, s->nstaff, r)) return true;
    return !site_only && staff_hold(c->group.staff, c->group.nstaff, r);
}

static void mark_minutes(uint8_t *week, unsigned start, unsigned len)
{
    start %= WEEK;
    unsigned first = len < WEEK - start ? len : WEEK - start; /* Saturday night wraps */
    memset(week + start, 1, first);
    memset(week, 1, len - first);
}

/* Appends " mon 17:30-21:00" to gaps for the first stretch of day d nobody covers. */
static void day_gap(const uint8_t *week, int d, const struct cw_hours *h, char *gaps, size_t len)
{
    unsigned open = (unsigned)(d * DAY + h->open);
    unsigned n =
        h->overnight ? (unsigned)(h->close + DAY - h->open) : (unsigned)(h->close - h->open);
    unsigned m = 0;
    while (m < n && week[(open + m) % WEEK]) m++;
    if (m == n) return;
    unsigned end = m;
    while (end < n && !week[(open + end) % WEEK]) end++;
    unsigned a = (h->open + m) % DAY, b = (h->open + end) % DAY;
    size_t used = strlen(gaps);
    snprintf(gaps + used, len - used, "%s%s %02u:%02u-%02u:%02u", used ? ", " : "",
             cw_weekday_name(d), a / 60, a % 60, b == 0 && end == n ? 24 : b / 60, b % 60);
}

/* The shifts of the fallback role's holders must cover the weekly opening hours. */
static void ck_coverage(struct cw_ld *ld, const struct cw_site *s, const struct cw_ynode *node)
{
    const struct cw_role *fb = s->ladder.fallback;
    uint8_t week[WEEK] = {0};
    for (size_t i = 0; i < s->nstaff; i++) {
        const struct cw_staff *st = &s->staff[i];
        if (!staff_hold(st, 1, fb)) continue;
        for (size_t k = 0; k < st->nshifts; k++)
            for (int d = 0; d < 7; d++)
                if (st->shifts[k].days & (1u << d))
                    mark_minutes(week, (unsigned)(d * DAY + st->shifts[k].from),
                                 shift_len(&st->shifts[k]));
    }
    char gaps[300] = "";
    for (int d = 0; d < 7; d++)
        if (!s->hours[d].closed) day_gap(week, d, &s->hours[d], gaps, sizeof gaps);
    if (!*gaps) return;
    const struct cw_ynode *at = cw_ynode_get(cw_ynode_get(node, "escalation"), "fallback_role");
    size_t mark = ld_push_key(ld, "escalation");
    ld_push_key(ld, "fallback_role");
    ld_error(ld, at, "nobody holding %s is on shift while the site is open: %s", fb->id, gaps);
    ld_pop(ld, mark);
}

/* ---- routes ---- */

static bool has_kind(const struct cw_department *d, size_t n, enum cw_dept_kind k)
{
    for (size_t i = 0; i < n; i++)
        if (d[i].kind == k) return true;
    return false;
}

static void ck_routes(struct cw_ld *ld, const struct cw_site *s, const struct cw_ynode *node)
{
    const cw_chain *c = ld->c;
    for (size_t i = 0; i < c->nroutes; i++) {
        const struct cw_route *r = &c->routes[i];
        bool ok = false;
        char kinds[200] = "";
        for (size_t k = 0; k < r->nkinds && !ok; k++) {
            if (r->kinds[k] == CW_DEPT_TENANT) continue;
            ok = has_kind(s->departments, s->ndepartments, r->kinds[k]) ||
                 has_kind(c->group.departments, c->group.ndepartments, r->kinds[k]);
            size_t used = strlen(kinds);
            snprintf(kinds + used, sizeof kinds - used, "%s%s", used ? ", " : "",
                     cw_dept_kind_name(r->kinds[k]));
        }
        if (!ok)
            ld_error_key(ld, cw_ynode_key(node, "departments"), "departments",
                         "no department can take category %s: neither the site nor the group "
                         "has one of kind %s",
                         cw_category_name(r->category), kinds);
    }
}

void ck_site(struct cw_ld *ld, struct cw_site *site, const struct cw_ynode *node)
{
    if (!ld->people_ok) return; /* the problems already reported would echo here */
    if (site->ladder.fallback && staff_hold(site->staff, site->nstaff, site->ladder.fallback))
        ck_coverage(ld, site, node);
    ck_routes(ld, site, node);
}

bool ck_regex(struct cw_ld *ld, const char *re, const struct cw_ynode *n)
{
    regex_t rx;
    int rc = regcomp(&rx, re, REG_EXTENDED | REG_ICASE | REG_NOSUB);
    if (rc == 0) {
        regfree(&rx);
        return true;
    }
    char msg[200];
    regerror(rc, &rx, msg, sizeof msg);
    ld_error(ld, n, "bad regex \"%s\": %s", re, msg);
    return false;
}

/* ---- whole chain ---- */

static bool match_any(const struct cw_match *m)
{
    return !m->types && !m->categories && !m->urgencies && !m->validities && !m->channels &&
           !m->nsites && m->tenant < 0;
}

void ck_chain(struct cw_ld *ld, const struct cw_ynode *root)
{
    const cw_chain *c = ld->c;
    const struct cw_ynode *routing = cw_ynode_key(root, "routing");
    if (routing && !c->route_of[CASEWIRE__V1__CATEGORY__CATEGORY_OTHER])
        ld_error_key(ld, routing, "routing",
                     "no route for category other (used for every "
                     "category without its own route)");
    bool any = false;
    for (size_t i = 0; i < c->npolicies && !any; i++) any = match_any(&c->policies[i]->match);
    const struct cw_ynode *pol = cw_ynode_key(root, "sla_policies");
    if (pol && !any)
        ld_error_key(ld, pol, "sla_policies",
                     "no policy matches every case: add a default "
                     "policy without match (lowest priority)");
    char buf[2 * LIM_ID + 8];
    for (size_t i = 0; i < c->ntemplates; i++) {
        const struct tmpl *t = &c->templates[i];
        const char *key = cw_chain_template_key(NULL, t->id, NULL, buf, sizeof buf);
        if (!t->site || (key && cw_strmap_get(&c->by_template, key))) continue;
        size_t mark = ld_push_key(ld, "sms_templates");
        ld_push_index(ld, t->index);
        struct cw_ynode at = {.line = t->line};
        ld_error(ld, &at, "template \"%s\" for site %s has no chain-wide template to override",
                 t->id, t->site->id);
        ld_pop(ld, mark);
    }
}
