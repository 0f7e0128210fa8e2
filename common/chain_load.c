/* Loading a chain file: the top level, the chain itself, roles, the group head office and
 * the sites with their calendars, departments, staff, shifts and ladders. Tenants and the
 * chain-wide policy are in chain_load_policy.c. */
#include "chain_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const char *const weekday_keys[7] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* ---- chain and roles ---- */

static void ld_languages(struct cw_ld *ld, const struct cw_ynode *m)
{
    cw_chain *c = ld->c;
    size_t n;
    const struct cw_ynode *list =
        ld_list(ld, m, "languages", LD_OPTIONAL, CW_CHAIN_MAX_LANGUAGES, &n);
    size_t mark = ld_push_key(ld, "languages");
    if (list && list->n == 0) ld_error(ld, list, "must not be empty");
    for (size_t i = 0; list && i < n; i++) {
        size_t im = ld_push_index(ld, i);
        const char *s = ld_scalar(ld, list->items[i], 8), *why;
        bool twice = false;
        for (size_t j = 0; s && j < c->nlanguages; j++) twice |= strcmp(c->languages[j], s) == 0;
        if (s && cw_val_language(s, &why) < 0)
            ld_error(ld, list->items[i], "%s", why);
        else if (twice)
            ld_error(ld, list->items[i], "\"%s\" is twice", s);
        else if (s)
            c->languages[c->nlanguages++] = s;
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    if (!list) {
        c->languages[0] = "zh";
        c->languages[1] = "en";
        c->nlanguages = 2;
    }
    const char *def = ld_str(ld, m, "default_language", LD_OPTIONAL, 8);
    if (!def) return;
    for (size_t i = 0; i < c->nlanguages; i++) {
        if (strcmp(c->languages[i], def) != 0) continue;
        c->languages[i] = c->languages[0]; /* the default goes first */
        c->languages[0] = def;
        return;
    }
    ld_error_key(ld, cw_ynode_get(m, "default_language"), "default_language",
                 "\"%s\" is not one of the chain's languages", def);
}

static void ld_header(struct cw_ld *ld, const struct cw_ynode *root)
{
    cw_chain *c = ld->c;
    const struct cw_ynode *m =
        ld_submap(ld, root, "chain", LD_REQUIRED,
                  KEYS("id", "name", "name_en", "timezone", "default_language", "languages"));
    if (!m) {
        c->languages[c->nlanguages++] = "zh";
        return;
    }
    size_t mark = ld_push_key(ld, "chain");
    c->id = ld_id(ld, m, "id", LD_REQUIRED, ID_GENERIC);
    c->name = ld_str(ld, m, "name", LD_REQUIRED, LIM_NAME);
    c->name_en = ld_str(ld, m, "name_en", LD_OPTIONAL, LIM_NAME);
    if (!c->name_en) c->name_en = c->name;
    c->timezone = ld_str(ld, m, "timezone", LD_REQUIRED, 64);
    const char *why;
    if (c->timezone && cw_val_timezone(c->timezone, &why) < 0)
        ld_error_key(ld, cw_ynode_get(m, "timezone"), "timezone", "%s \"%s\"", why, c->timezone);
    ld_languages(ld, m);
    ld_pop(ld, mark);
    if (c->nlanguages == 0) c->languages[c->nlanguages++] = "zh";
}

static void ld_roles(struct cw_ld *ld, const struct cw_ynode *root)
{
    cw_chain *c = ld->c;
    size_t n;
    const struct cw_ynode *list = ld_list(ld, root, "roles", LD_REQUIRED, LIM_ROLES, &n);
    c->roles = ARENA_NEW(&c->arena, struct cw_role, n);
    size_t mark = ld_push_key(ld, "roles");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        if (ld_map_keys(ld, m, KEYS("id", "name", "name_en", "actions"))) {
            struct cw_role *r = &c->roles[c->nroles];
            r->actions = ld_enum_mask(ld, m, "actions", CW_VOCAB_ACTION);
            r->id = ld_id(ld, m, "id", LD_REQUIRED, ID_ROLE);
            r->name = ld_str(ld, m, "name", LD_REQUIRED, LIM_NAME);
            r->name_en = ld_str(ld, m, "name_en", LD_OPTIONAL, LIM_NAME);
            if (!r->name_en) r->name_en = r->name;
            size_t ik = ld_push_key(ld, "id");
            if (r->id && ld_unique(ld, &c->by_role, r->id, r, cw_ynode_get(m, "id"), "role id"))
                c->nroles++;
            ld_pop(ld, ik);
        }
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
}

/* ---- departments and staff (sites and the group alike) ---- */

static void ld_department(struct cw_ld *ld, const struct cw_ynode *m, struct cw_department *d)
{
    d->id = ld_id(ld, m, "id", LD_REQUIRED, ID_GENERIC);
    d->name = ld_str(ld, m, "name", LD_REQUIRED, LIM_NAME);
    d->name_en = ld_str(ld, m, "name_en", LD_OPTIONAL, LIM_NAME);
    if (!d->name_en) d->name_en = d->name;
    int kind = ld_enum(ld, m, "kind", LD_REQUIRED, CW_VOCAB_DEPT_KIND);
    if (kind == CW_DEPT_TENANT)
        ld_error_key(ld, cw_ynode_get(m, "kind"), "kind",
                     "\"tenant\" is only for routing: tenants are listed under tenants");
    d->kind = kind > 0 ? (enum cw_dept_kind)kind : CW_DEPT_UNSPECIFIED;
    d->phone = ld_str(ld, m, "phone", LD_OPTIONAL, 32);
    const char *why;
    if (d->phone && cw_val_phone(d->phone, &why) < 0)
        ld_error_key(ld, cw_ynode_get(m, "phone"), "phone", "%s", why);
}

static void ld_departments(struct cw_ld *ld, const struct cw_ynode *owner, unsigned flags,
                           const struct cw_site *site, const struct cw_department **out,
                           size_t *nout)
{
    cw_chain *c = ld->c;
    size_t n;
    const struct cw_ynode *list = ld_list(ld, owner, "departments", flags, LIM_DEPARTMENTS, &n);
    struct cw_department *deps = ARENA_NEW(&c->arena, struct cw_department, n);
    size_t count = 0, mark = ld_push_key(ld, "departments");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        if (ld_map_keys(ld, m, KEYS("id", "name", "name_en", "kind", "phone"))) {
            struct cw_department *d = &deps[count];
            *d = (struct cw_department){0};
            d->site = site;
            ld_department(ld, m, d);
            size_t ik = ld_push_key(ld, "id");
            if (d->id &&
                ld_unique(ld, &c->by_department, d->id, d, cw_ynode_get(m, "id"), "department id"))
                count++;
            ld_pop(ld, ik);
        }
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    *out = deps;
    *nout = count;
}

static void ld_shift(struct cw_ld *ld, const struct cw_ynode *m, struct cw_shift *sh)
{
    const char *why;
    if (ld_field(ld, m, "days", LD_REQUIRED))
        sh->days = ld_enum_mask(ld, m, "days", CW_VOCAB_WEEKDAY);
    const char *from = ld_str(ld, m, "from", LD_REQUIRED, 8);
    const char *to = ld_str(ld, m, "to", LD_REQUIRED, 8);
    if (from && cw_val_time(from, false, &sh->from, &why) < 0)
        ld_error_key(ld, cw_ynode_get(m, "from"), "from", "bad time \"%s\": %s", from, why);
    else if (to && cw_val_time(to, true, &sh->to, &why) < 0)
        ld_error_key(ld, cw_ynode_get(m, "to"), "to", "bad time \"%s\": %s", to, why);
    else if (from && to && sh->from == sh->to)
        ld_error_key(ld, cw_ynode_get(m, "to"), "to", "a shift cannot start and end at %s", to);
    sh->overnight = sh->to < sh->from;
}

static void ld_staff_roles(struct cw_ld *ld, const struct cw_ynode *m, struct cw_staff *s)
{
    size_t n;
    const struct cw_ynode *list = ld_list(ld, m, "roles", LD_REQUIRED, LIM_STAFF_ROLES, &n);
    const struct cw_role **roles = ARENA_NEW(&ld->c->arena, const struct cw_role *, n);
    size_t mark = ld_push_key(ld, "roles");
    for (size_t i = 0; list && i < n; i++) {
        size_t im = ld_push_index(ld, i);
        const char *id = ld_scalar(ld, list->items[i], LIM_ID);
        const struct cw_role *r = id ? cw_strmap_get(&ld->c->by_role, id) : NULL;
        if (id && !r) ld_error(ld, list->items[i], "undeclared role \"%s\" (see roles)", id);
        if (r) roles[s->nroles++] = r;
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    s->roles = roles;
}

static void ld_staff_shifts(struct cw_ld *ld, const struct cw_ynode *m, struct cw_staff *s)
{
    size_t n;
    const struct cw_ynode *list = ld_list(ld, m, "shifts", LD_OPTIONAL, LIM_SHIFTS, &n);
    struct cw_shift *shifts = ARENA_NEW(&ld->c->arena, struct cw_shift, n);
    size_t mark = ld_push_key(ld, "shifts");
    for (size_t i = 0; list && i < n; i++) {
        size_t im = ld_push_index(ld, i);
        if (ld_map_keys(ld, list->items[i], KEYS("days", "from", "to")))
            ld_shift(ld, list->items[i], &shifts[i]);
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    s->shifts = shifts;
    s->nshifts = n;
}

static void ld_one_staff(struct cw_ld *ld, const struct cw_ynode *m, struct cw_staff *s)
{
    const char *why;
    s->id = ld_id(ld, m, "id", LD_REQUIRED, ID_GENERIC);
    s->name = ld_str(ld, m, "name", LD_REQUIRED, LIM_NAME);
    s->phone = ld_str(ld, m, "phone", LD_OPTIONAL, 32);
    if (s->phone && cw_val_phone(s->phone, &why) < 0)
        ld_error_key(ld, cw_ynode_get(m, "phone"), "phone", "%s", why);
    s->department = ld_ref(ld, m, "department", LD_REQUIRED, &ld->c->by_department, "department");
    if (s->department && s->department->site != s->site) {
        const struct cw_site *ds = s->department->site;
        ld_error_key(ld, cw_ynode_get(m, "department"), "department",
                     "department \"%s\" belongs to %s%s, not to %s%s", s->department->id,
                     ds ? "site " : "the group", ds ? ds->id : "", s->site ? "site " : "the group",
                     s->site ? s->site->id : "");
        s->department = NULL;
    }
    ld_staff_roles(ld, m, s);
    ld_staff_shifts(ld, m, s);
    if (s->id) {
        char owner[LIM_ID + 16];
        snprintf(owner, sizeof owner, "the token of staff %s", s->id);
        s->token_sha256 = ld_secret_hash(ld, m, "token_sha256", LD_OPTIONAL,
                                         cw_arena_strdup(&ld->c->arena, owner));
    }
    ck_shifts(ld, s, m);
}

static void ld_staff(struct cw_ld *ld, const struct cw_ynode *owner, unsigned flags,
                     const struct cw_site *site, const struct cw_staff **out, size_t *nout)
{
    cw_chain *c = ld->c;
    size_t n;
    const struct cw_ynode *list = ld_list(ld, owner, "staff", flags, LIM_SITE_STAFF, &n);
    if (ld->nstaff_total + n > CW_CHAIN_MAX_STAFF) {
        ld_error_key(ld, list, "staff", "more than %d staff in the chain", CW_CHAIN_MAX_STAFF);
        n = CW_CHAIN_MAX_STAFF - ld->nstaff_total;
    }
    ld->nstaff_total += n;
    struct cw_staff *staff = ARENA_NEW(&c->arena, struct cw_staff, n);
    size_t count = 0, mark = ld_push_key(ld, "staff");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        if (ld_map_keys(ld, m,
                        KEYS("id", "name", "phone", "department", "roles", "shifts", "token_sha256",
                             "sites"))) {
            struct cw_staff *s = &staff[count];
            *s = (struct cw_staff){0};
            s->site = site;
            ld_one_staff(ld, m, s);
            if (site && cw_ynode_get(m, "sites"))
                ld_error_key(ld, cw_ynode_get(m, "sites"), "sites",
                             "only group staff list sites: a site's staff see their own site");
            size_t ik = ld_push_key(ld, "id");
            if (s->id && ld_unique(ld, &c->by_staff, s->id, s, cw_ynode_get(m, "id"), "staff id")) {
                if (s->token_sha256) cw_strmap_put(&c->by_token, s->token_sha256, s, 0, NULL);
                count++;
            }
            ld_pop(ld, ik);
        }
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    *out = staff;
    *nout = count;
}

static void ld_group(struct cw_ld *ld, const struct cw_ynode *root)
{
    struct cw_group *g = &ld->c->group;
    const struct cw_ynode *m =
        ld_submap(ld, root, "group", LD_OPTIONAL, KEYS("departments", "staff"));
    if (!m) return;
    size_t mark = ld_push_key(ld, "group");
    int before = ld->errors;
    ld_departments(ld, m, LD_OPTIONAL, NULL, &g->departments, &g->ndepartments);
    ld_staff(ld, m, LD_OPTIONAL, NULL, &g->staff, &g->nstaff);
    ld->people_ok = ld->errors == before;
    ld_pop(ld, mark);
}

/* The sites group staff see (group.staff[].sites): read once the sites are known. */
static void ld_group_sites(struct cw_ld *ld, const struct cw_ynode *root)
{
    const struct cw_ynode *g = cw_ynode_get(root, "group");
    const struct cw_ynode *list = g ? cw_ynode_get(g, "staff") : NULL;
    if (!list || list->type != CW_YNODE_SEQ) return;
    size_t mark = ld_push_key(ld, "group");
    size_t ms = ld_push_key(ld, "staff");
    for (size_t i = 0; i < list->n && i < LIM_SITE_STAFF; i++) {
        const struct cw_ynode *m = list->items[i];
        const struct cw_ynode *id = cw_ynode_get(m, "id");
        if (!cw_ynode_get(m, "sites") || !id || id->type != CW_YNODE_SCALAR) continue;
        struct cw_staff *s = (struct cw_staff *)cw_strmap_get(&ld->c->by_staff, id->str);
        if (!s || s->site) continue; /* reported where the staff member was read */
        size_t im = ld_push_index(ld, i);
        s->sites = ld_site_list(ld, m, "sites", &s->nsites);
        ld_pop(ld, im);
    }
    ld_pop(ld, ms);
    ld_pop(ld, mark);
}

/* ---- site calendar ---- */

static void ld_opening_hours(struct cw_ld *ld, const struct cw_ynode *site, struct cw_site *s)
{
    const struct cw_ynode *m = ld_submap(ld, site, "opening_hours", LD_REQUIRED,
                                         KEYS("sun", "mon", "tue", "wed", "thu", "fri", "sat"));
    if (!m) return;
    size_t mark = ld_push_key(ld, "opening_hours");
    for (int d = 0; d < 7; d++) {
        const char *v = ld_str(ld, m, weekday_keys[d], LD_REQUIRED, 16), *why;
        if (v && cw_val_hours(v, &s->hours[d], &why) < 0)
            ld_error_key(ld, cw_ynode_get(m, weekday_keys[d]), weekday_keys[d],
                         "bad hours \"%s\": %s", v, why);
    }
    ld_pop(ld, mark);
}

static int cmp_date(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b; /* date is the first member of both */
    return (x > y) - (x < y);
}

/* Reads "date" of calendar entry m; reports bad and duplicate dates. */
static bool ld_calendar_date(struct cw_ld *ld, const struct cw_ynode *m, struct cw_strmap *seen,
                             int *date)
{
    const char *s = ld_str(ld, m, "date", LD_REQUIRED, 16), *why;
    if (!s) return false;
    const struct cw_ynode *n = cw_ynode_get(m, "date");
    if (cw_val_date(s, date, &why) < 0) {
        ld_error_key(ld, n, "date", "bad date \"%s\": %s", s, why);
        return false;
    }
    size_t mark = ld_push_key(ld, "date");
    bool ok = ld_unique(ld, seen, s, s, n, "date");
    ld_pop(ld, mark);
    return ok;
}

static void ld_holidays(struct cw_ld *ld, const struct cw_ynode *site, struct cw_site *s)
{
    size_t n, count = 0;
    const struct cw_ynode *list = ld_list(ld, site, "holidays", LD_OPTIONAL, LIM_CALENDAR_DAYS, &n);
    struct cw_holiday *h = ARENA_NEW(&ld->c->arena, struct cw_holiday, n);
    struct cw_strmap seen = {0};
    size_t mark = ld_push_key(ld, "holidays");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        if (ld_map_keys(ld, m, KEYS("date", "name")) &&
            ld_calendar_date(ld, m, &seen, &h[count].date))
            h[count++].name = ld_str(ld, m, "name", LD_OPTIONAL, LIM_NAME);
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    cw_strmap_release(&seen);
    qsort(h, count, sizeof *h, cmp_date);
    s->holidays = h;
    s->nholidays = count;
}

static void ld_special_days(struct cw_ld *ld, const struct cw_ynode *site, struct cw_site *s)
{
    size_t n, count = 0;
    const struct cw_ynode *list =
        ld_list(ld, site, "special_days", LD_OPTIONAL, LIM_CALENDAR_DAYS, &n);
    struct cw_special_day *sd = ARENA_NEW(&ld->c->arena, struct cw_special_day, n);
    struct cw_strmap seen = {0};
    size_t mark = ld_push_key(ld, "special_days");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        struct cw_special_day *d = &sd[count];
        *d = (struct cw_special_day){0};
        if (ld_map_keys(ld, m, KEYS("date", "hours", "name")) &&
            ld_calendar_date(ld, m, &seen, &d->date)) {
            const char *v = ld_str(ld, m, "hours", LD_REQUIRED, 16), *why;
            d->name = ld_str(ld, m, "name", LD_OPTIONAL, LIM_NAME);
            if (v && cw_val_hours(v, &d->hours, &why) < 0)
                ld_error_key(ld, cw_ynode_get(m, "hours"), "hours", "bad hours \"%s\": %s", v, why);
            else if (v)
                count++;
        }
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    cw_strmap_release(&seen);
    qsort(sd, count, sizeof *sd, cmp_date);
    s->special_days = sd;
    s->nspecial_days = count;
}

static void ld_calendar(struct cw_ld *ld, const struct cw_ynode *m, struct cw_site *s)
{
    const char *why;
    s->timezone = ld_str(ld, m, "timezone", LD_OPTIONAL, 64);
    if (s->timezone && cw_val_timezone(s->timezone, &why) < 0)
        ld_error_key(ld, cw_ynode_get(m, "timezone"), "timezone", "%s \"%s\"", why, s->timezone);
    if (!s->timezone) s->timezone = ld->c->timezone;
    ld_opening_hours(ld, m, s);
    s->working_days = ld_enum_mask(ld, m, "working_days", CW_VOCAB_WEEKDAY);
    if (!ld_field(ld, m, "working_days", LD_OPTIONAL)) s->working_days = CW_ALL_DAYS;
    ld_holidays(ld, m, s);
    ld_special_days(ld, m, s);
}

/* ---- sites ---- */

static const struct cw_role *ld_ladder_role(struct cw_ld *ld, const struct cw_ynode *n,
                                            const struct cw_site *s)
{
    const char *id = ld_scalar(ld, n, LIM_ID);
    const struct cw_role *r = id ? cw_strmap_get(&ld->c->by_role, id) : NULL;
    if (id && !r) ld_error(ld, n, "undeclared role \"%s\" (see roles)", id);
    if (r && ld->people_ok && !ck_role_held(ld->c, s, r, false)) {
        ld_error(ld, n, "nobody at site %s or in the group holds role \"%s\"", s->id, r->id);
        r = NULL;
    }
    return r;
}

static void ld_escalation(struct cw_ld *ld, const struct cw_ynode *site, struct cw_site *s)
{
    const struct cw_ynode *m =
        ld_submap(ld, site, "escalation", LD_REQUIRED, KEYS("ladder", "fallback_role"));
    if (!m) return;
    size_t n, mark = ld_push_key(ld, "escalation");
    const struct cw_ynode *list = ld_list(ld, m, "ladder", LD_REQUIRED, LIM_LADDER, &n);
    const struct cw_role **levels = ARENA_NEW(&ld->c->arena, const struct cw_role *, n);
    size_t ml = ld_push_key(ld, "ladder");
    for (size_t i = 0; list && i < n; i++) {
        size_t im = ld_push_index(ld, i);
        const struct cw_role *r = ld_ladder_role(ld, list->items[i], s);
        for (size_t j = 0; r && j < s->ladder.nlevels; j++) {
            if (levels[j] != r) continue;
            ld_error(ld, list->items[i], "role \"%s\" is twice in the ladder", r->id);
            r = NULL;
        }
        if (r) levels[s->ladder.nlevels++] = r;
        ld_pop(ld, im);
    }
    ld_pop(ld, ml);
    s->ladder.levels = levels;
    const struct cw_ynode *fb = ld_field(ld, m, "fallback_role", LD_REQUIRED);
    if (fb) {
        size_t mf = ld_push_key(ld, "fallback_role");
        const char *id = ld_scalar(ld, fb, LIM_ID);
        s->ladder.fallback = id ? cw_strmap_get(&ld->c->by_role, id) : NULL;
        if (id && !s->ladder.fallback)
            ld_error(ld, fb, "undeclared role \"%s\" (see roles)", id);
        else if (s->ladder.fallback && ld->people_ok &&
                 !ck_role_held(ld->c, s, s->ladder.fallback, true))
            ld_error(ld, fb, "no staff of site %s holds the fallback role \"%s\"", s->id, id);
        ld_pop(ld, mf);
    }
    ld_pop(ld, mark);
}

static const struct cw_department *find_kind(const struct cw_department *d, size_t n,
                                             enum cw_dept_kind kind)
{
    for (size_t i = 0; i < n; i++)
        if (d[i].kind == kind) return &d[i];
    return NULL;
}

/* Who makes the follow-up calls (回访): as given, else the site's call centre, the group's
 * call centre, the site's customer service or service desk. */
static void ld_callback(struct cw_ld *ld, const struct cw_ynode *m, struct cw_site *s)
{
    const struct cw_group *g = &ld->c->group;
    const struct cw_ynode *n = ld_field(ld, m, "callback_department", LD_OPTIONAL);
    const struct cw_department *d =
        ld_ref(ld, m, "callback_department", LD_OPTIONAL, &ld->c->by_department, "department");
    if (d && d->site && d->site != s) {
        ld_error_key(ld, n, "callback_department", "department \"%s\" belongs to site %s", d->id,
                     d->site->id);
        return;
    }
    if (d) {
        s->callback_department = d;
        return;
    }
    if (n) return; /* reported */
    if (!(d = find_kind(s->departments, s->ndepartments, CW_DEPT_CALL_CENTER)) &&
        !(d = find_kind(g->departments, g->ndepartments, CW_DEPT_CALL_CENTER)) &&
        !(d = find_kind(s->departments, s->ndepartments, CW_DEPT_CUSTOMER_SERVICE)) &&
        !(d = find_kind(s->departments, s->ndepartments, CW_DEPT_SERVICE_DESK)))
        ld_error_key(ld, m, "callback_department",
                     "nobody makes the follow-up calls: add a "
                     "call_center, customer_service or service_desk department, or name one");
    s->callback_department = d;
}

static void ld_site(struct cw_ld *ld, const struct cw_ynode *m, struct cw_site *s)
{
    const char *why;
    s->name = ld_str(ld, m, "name", LD_REQUIRED, LIM_NAME);
    s->name_en = ld_str(ld, m, "name_en", LD_OPTIONAL, LIM_NAME);
    if (!s->name_en) s->name_en = s->name;
    int kind = ld_enum(ld, m, "kind", LD_REQUIRED, CW_VOCAB_SITE_KIND);
    s->kind = kind > 0 ? (enum cw_site_kind)kind : CW_SITE_KIND_UNSPECIFIED;
    s->phone = ld_str(ld, m, "phone", LD_OPTIONAL, 32);
    if (s->phone && cw_val_phone(s->phone, &why) < 0)
        ld_error_key(ld, cw_ynode_get(m, "phone"), "phone", "%s", why);
    s->address = ld_str(ld, m, "address", LD_OPTIONAL, LIM_TEXT);
    s->address_en = ld_str(ld, m, "address_en", LD_OPTIONAL, LIM_TEXT);
    int before = ld->errors;
    ld_calendar(ld, m, s);
    ld_departments(ld, m, LD_REQUIRED, s, &s->departments, &s->ndepartments);
    ld_staff(ld, m, LD_REQUIRED, s, &s->staff, &s->nstaff);
    bool group_ok = ld->people_ok;
    ld->people_ok = group_ok && ld->errors == before; /* else role checks would cascade */
    ld_escalation(ld, m, s);
    ld_callback(ld, m, s);
    ck_site(ld, s, m);
    ld->people_ok = group_ok;
}

static void ld_sites(struct cw_ld *ld, const struct cw_ynode *root)
{
    cw_chain *c = ld->c;
    size_t n;
    const struct cw_ynode *list = ld_list(ld, root, "sites", LD_REQUIRED, CW_CHAIN_MAX_SITES, &n);
    c->sites = ARENA_NEW(&c->arena, struct cw_site, n);
    size_t mark = ld_push_key(ld, "sites");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        if (ld_map_keys(ld, m,
                        KEYS("id", "name", "name_en", "kind", "timezone", "phone", "address",
                             "address_en", "opening_hours", "working_days", "holidays",
                             "special_days", "departments", "staff", "escalation",
                             "callback_department"))) {
            struct cw_site *s = &c->sites[c->nsites];
            *s = (struct cw_site){0};
            s->id = ld_id(ld, m, "id", LD_REQUIRED, ID_SITE);
            size_t ik = ld_push_key(ld, "id");
            bool ok =
                s->id && ld_unique(ld, &c->by_site, s->id, s, cw_ynode_get(m, "id"), "site id");
            ld_pop(ld, ik);
            if (ok) {
                c->nsites++;
                ld_site(ld, m, s);
            }
        }
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
}

/* ---- the file ---- */

static void report_yaml(int line, int column, const char *message, void *arg)
{
    struct cw_ld *ld = arg;
    struct cw_ynode at = {.line = line, .column = column};
    ld_error(ld, line ? &at : NULL, "%s", message);
}

cw_chain *cw_chain_load(const char *path, cw_chain_report_fn *report, void *arg)
{
    struct cw_ld ld = {.file = path, .report = report, .arg = arg, .people_ok = true};
    cw_ydoc *doc = cw_ydoc_load(path, 0, report_yaml, &ld);
    if (!doc) {
        ld_flush(&ld);
        return NULL;
    }
    const struct cw_ynode *root = cw_ydoc_root(doc);
    ld.c = cw_chain_new();
    if (ld_map_keys(&ld, root,
                    KEYS("chain", "roles", "group", "sites", "tenants", "routing", "sla_policies",
                         "classification_rules", "sms_templates", "sms", "webhooks"))) {
        ld_header(&ld, root);
        ld_roles(&ld, root);
        ld_routing(&ld, root);
        ld_group(&ld, root);
        ld_sites(&ld, root);
        ld_group_sites(&ld, root);
        ld_tenants(&ld, root);
        ld_policies(&ld, root);
        ld_rules(&ld, root);
        ld_templates(&ld, root);
        ld_sms(&ld, root);
        ld_webhooks(&ld, root);
        ck_chain(&ld, root);
    }
    cw_strmap_release(&ld.secrets);
    cw_ydoc_free(doc);
    ld_flush(&ld);
    if (ld.errors == 0) return ld.c;
    cw_chain_free(ld.c);
    return NULL;
}
