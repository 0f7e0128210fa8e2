/*
 * What the staff console reads, staff only:
 *   GET /v1/me       who the token belongs to: name, department, roles, the sites they see,
 *                    the actions their roles allow, whose follow-up calls they make
 *   GET /v1/directory  a site's departments, staff and tenants (and the head office's), for
 *                    the console's pickers and names
 *   GET /v1/cases    a site's cases (open ones by default) with their running clocks, most
 *                    pressing first, filtered by status, category, urgency, department, owner
 *                    and tenant
 * Who sees what is one rule (cw_staff_sees_site): a site's staff their site, group staff every
 * site or the sites they list. Another site's cases are simply not in the answer.
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "domain.h"
#include "gateway.h"

#define LIST_DEFAULT 200
#define LIST_MAX 1000
#define LIST_MAX_SITES 50        /* a group list over more sites must name one */
#define LIST_SCAN_PER_INDEX 2000 /* newest cases read per site and status: bounds a script run */

/* The six clocks, in the order the list script returns their fields. */
enum { NCLOCKS = 6 };
static const int clock_kinds[NCLOCKS] = {
    CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF,    CASEWIRE__V1__CLOCK_KIND__CLOCK_TENANT_TRADING,
    CASEWIRE__V1__CLOCK_KIND__CLOCK_REPLY,      CASEWIRE__V1__CLOCK_KIND__CLOCK_FEEDBACK,
    CASEWIRE__V1__CLOCK_KIND__CLOCK_RESOLUTION, CASEWIRE__V1__CLOCK_KIND__CLOCK_FOLLOWUP};

static const char *const open_statuses[] = {"received", "assigned", "acknowledged", "reopened",
                                            "resolved"};
static const char *const all_statuses[] = {"received", "assigned", "acknowledged",
                                           "reopened", "resolved", "closed"};

bool gw_may_follow_up(const struct cw_staff *s, const struct cw_site *site)
{
    return s->site == site || (s->department && s->department == site->callback_department);
}

size_t gw_visible_sites(const struct cw_staff *s, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!s->site && s->nsites == 0) return 0; /* every site */
    size_t o = (size_t)snprintf(buf, len, ",");
    const struct cw_site *const *sites = s->site ? &s->site : s->sites;
    size_t n = s->site ? 1 : s->nsites;
    for (size_t i = 0; i < n && o < len; i++)
        o += (size_t)snprintf(buf + o, len - o, "%s,", sites[i]->id);
    return n;
}

/* ---- GET /v1/me ---- */

static json_t *site_json(const struct cw_site *s)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "id", s->id, "name", s->name, "name_en", s->name_en,
                     "timezone", s->timezone);
}

void gw_me(struct gw_req *r)
{
    const struct cw_staff *s = r->staff;
    const cw_chain *chain = r->gw->chain;
    json_t *roles = json_array(), *sites = json_array(), *callbacks = json_array(),
           *actions = json_array();
    for (size_t i = 0; i < s->nroles; i++)
        json_array_append_new(roles, json_pack("{s:s,s:s,s:s}", "id", s->roles[i]->id, "name",
                                               s->roles[i]->name, "name_en", s->roles[i]->name_en));
    for (size_t i = 0; i < cw_chain_site_count(chain); i++) {
        const struct cw_site *site = cw_chain_site_at(chain, i);
        if (cw_staff_sees_site(s, site)) json_array_append_new(sites, site_json(site));
        if (gw_may_follow_up(s, site)) json_array_append_new(callbacks, json_string(site->id));
    }
    for (int a = 1; a <= cw_vocab_max(CW_VOCAB_ACTION); a++)
        if (cw_action_name(a) && cw_staff_may(s, a))
            json_array_append_new(actions, json_string(cw_action_name(a)));
    json_t *dept = s->department ? json_pack("{s:s,s:s,s:s}", "id", s->department->id, "name",
                                             s->department->name, "name_en", s->department->name_en)
                                 : json_null();
    gw_reply(r, 200,
             json_pack("{s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:o,s:s}", "staff_id", s->id, "name", s->name,
                       "site", s->site ? json_string(s->site->id) : json_null(), "department", dept,
                       "roles", roles, "sites", sites, "actions", actions, "callback_sites",
                       callbacks, "language", cw_chain_default_language(chain)));
}

/* ---- GET /v1/directory ---- */

static void add_people(json_t *depts, json_t *people, const struct cw_department *d, size_t nd,
                       const struct cw_staff *st, size_t ns)
{
    for (size_t i = 0; i < nd; i++)
        json_array_append_new(depts, json_pack("{s:s,s:s,s:s,s:s,s:s*}", "id", d[i].id, "name",
                                               d[i].name, "name_en", d[i].name_en, "kind",
                                               cw_dept_kind_name(d[i].kind), "site",
                                               d[i].site ? d[i].site->id : NULL));
    for (size_t i = 0; i < ns; i++) {
        json_t *roles = json_array();
        for (size_t k = 0; k < st[i].nroles; k++)
            json_array_append_new(roles, json_string(st[i].roles[k]->id));
        json_array_append_new(people, json_pack("{s:s,s:s,s:s*,s:o}", "id", st[i].id, "name",
                                                st[i].name, "department",
                                                st[i].department ? st[i].department->id : NULL,
                                                "roles", roles));
    }
}

void gw_directory(struct gw_req *r, const char *query)
{
    struct evkeyvalq kv;
    if (evhttp_parse_query_str(query ? query : "", &kv) != 0) {
        gw_error(r, 400, "bad_request", "the query string could not be parsed", NULL);
        return;
    }
    const char *id = evhttp_find_header(&kv, "site");
    const struct cw_site *site = id               ? cw_chain_site(r->gw->chain, id)
                                 : r->staff->site ? r->staff->site
                                                  : NULL;
    evhttp_clear_headers(&kv);
    if (!site && !id) {
        gw_error(r, 400, "validation_failed", "give the site: ?site=SH01", "site");
        return;
    }
    if (!site || !cw_staff_sees_site(r->staff, site)) {
        gw_error(r, 404, "not_found", "no such site among yours", "site");
        return;
    }
    /* the site's people, then the head office's: cases go up to the group too */
    const struct cw_group *g = cw_chain_group(r->gw->chain);
    json_t *depts = json_array(), *people = json_array(), *tenants = json_array(),
           *roles = json_array();
    add_people(depts, people, site->departments, site->ndepartments, site->staff, site->nstaff);
    add_people(depts, people, g->departments, g->ndepartments, g->staff, g->nstaff);
    for (size_t i = 0; i < site->ntenants; i++) {
        const struct cw_tenant *t = site->tenants[i];
        json_array_append_new(tenants, json_pack("{s:s,s:s,s:s,s:s*,s:s*,s:s*}", "id", t->id,
                                                 "name", t->name, "name_en", t->name_en, "brand",
                                                 t->brand, "floor", t->floor, "unit", t->unit));
    }
    for (size_t i = 0; i < cw_chain_role_count(r->gw->chain); i++) {
        const struct cw_role *ro = cw_chain_role_at(r->gw->chain, i);
        json_array_append_new(roles, json_pack("{s:s,s:s,s:s}", "id", ro->id, "name", ro->name,
                                               "name_en", ro->name_en));
    }
    gw_reply(r, 200,
             json_pack("{s:s,s:o,s:o,s:o,s:o}", "site", site->id, "departments", depts, "staff",
                       people, "tenants", tenants, "roles", roles));
}

/* ---- GET /v1/cases ---- */

struct list_query {
    const struct cw_site *sites[LIST_MAX_SITES];
    size_t nsites;
    char statuses[96];
    int limit;
    bool overdue_only;
};

struct listed_case {
    json_t *obj;
    int64_t next_due; /* INT64_MAX: no running clock */
    int64_t created;
    bool overdue;
};

static int by_pressure(const void *a, const void *b)
{
    const struct listed_case *x = a, *y = b;
    if (x->overdue != y->overdue) return x->overdue ? -1 : 1;
    if (x->next_due != y->next_due) return x->next_due < y->next_due ? -1 : 1;
    return (x->created < y->created) - (x->created > y->created); /* newest first */
}

/* Fields per case in the script's answer: id, then these. */
static const char *const list_fields[] = {
    "site",    "case_no",   "status",     "channel",  "type",       "category",
    "urgency", "validity",  "department", "owner",    "tenant",     "created_ms",
    "summary", "repeat_of", "followup",   "acked_ms", "resolved_ms"};
enum { NFIELDS = sizeof list_fields / sizeof *list_fields, PER_CASE = 1 + NFIELDS + 3 * NCLOCKS };

static void add_clocks(struct gw *gw, const struct cw_site *site, const redisReply *reply,
                       size_t base, int64_t now, struct listed_case *lc)
{
    json_t *clocks = json_array(), *breached = json_array();
    for (int k = 0; k < NCLOCKS; k++) {
        const char *due = gw_reply_str(reply, base + 3 * (size_t)k);
        const char *br = gw_reply_str(reply, base + 3 * (size_t)k + 1);
        const char *lvl = gw_reply_str(reply, base + 3 * (size_t)k + 2);
        const char *name = cw_clock_name(clock_kinds[k]);
        if (*br) json_array_append_new(breached, json_string(name));
        if (!*due) continue;
        int64_t d = strtoll(due, NULL, 10);
        char when[48];
        gw_format_time(gw, site, d, when, sizeof when);
        json_t *c = json_pack("{s:s,s:I,s:s,s:b}", "clock", name, "due_ms", (json_int_t)d, "due",
                              when, "breached", *br != '\0');
        if (c && *lvl) json_object_set_new(c, "level", json_integer(atoi(lvl)));
        if (c) json_array_append_new(clocks, c);
        if (d < lc->next_due) lc->next_due = d;
    }
    lc->overdue = lc->next_due <= now;
    json_object_set_new(lc->obj, "clocks", clocks);
    json_object_set_new(lc->obj, "breached", breached);
    if (lc->next_due != INT64_MAX)
        json_object_set_new(lc->obj, "next_due_ms", json_integer((json_int_t)lc->next_due));
    json_object_set_new(lc->obj, "overdue", json_boolean(lc->overdue));
}

static void listed(struct gw_req *r, const redisReply *reply, const char *err)
{
    struct list_query *q = r->op;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 ||
        (reply->elements - 1) % PER_CASE) {
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
        return;
    }
    size_t n = (reply->elements - 1) / PER_CASE;
    struct listed_case *cases = calloc(n ? n : 1, sizeof *cases);
    if (!cases) {
        gw_error(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    int64_t now = cw_now_ms();
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        size_t b = 1 + i * PER_CASE;
        const struct cw_site *site = cw_chain_site(r->gw->chain, gw_reply_str(reply, b + 1));
        json_t *o = json_pack("{s:s}", "case_id", gw_reply_str(reply, b));
        if (!o) continue;
        for (size_t f = 0; f < NFIELDS; f++) {
            const char *v = gw_reply_str(reply, b + 1 + f);
            if (*v && strcmp(list_fields[f], "created_ms") && strcmp(list_fields[f], "acked_ms") &&
                strcmp(list_fields[f], "resolved_ms"))
                json_object_set_new(o, list_fields[f], json_string(v));
        }
        struct listed_case *lc = &cases[kept];
        lc->obj = o;
        lc->next_due = INT64_MAX;
        lc->created = strtoll(gw_reply_str(reply, b + 12), NULL, 10);
        char when[48];
        gw_format_time(r->gw, site, lc->created, when, sizeof when);
        json_object_set_new(o, "created_ms", json_integer((json_int_t)lc->created));
        json_object_set_new(o, "received_at", json_string(when));
        add_clocks(r->gw, site, reply, b + 1 + NFIELDS, now, lc);
        if (q->overdue_only && !lc->overdue) {
            json_decref(o);
            continue;
        }
        kept++;
    }
    qsort(cases, kept, sizeof *cases, by_pressure);
    json_t *arr = json_array();
    for (size_t i = 0; i < kept; i++) {
        if ((int)i < q->limit)
            json_array_append_new(arr, cases[i].obj);
        else
            json_decref(cases[i].obj);
    }
    free(cases);
    json_t *sites = json_array();
    for (size_t i = 0; i < q->nsites; i++)
        json_array_append_new(sites, json_string(q->sites[i]->id));
    gw_reply(r, 200,
             json_pack("{s:o,s:I,s:I,s:b,s:o}", "sites", sites, "now_ms", (json_int_t)now, "total",
                       (json_int_t)kept, "truncated", reply->element[0]->integer != 0, "cases",
                       arr));
}

static bool valid_status(const char *s)
{
    for (size_t i = 0; i < sizeof all_statuses / sizeof *all_statuses; i++)
        if (!strcmp(s, all_statuses[i])) return true;
    return false;
}

/* status=open (the default), all, or a comma-separated list: into "a b c". */
static int parse_statuses(const char *v, char *out, size_t len)
{
    out[0] = '\0';
    const char *const *set = open_statuses;
    size_t n = sizeof open_statuses / sizeof *open_statuses;
    if (v && !strcmp(v, "all")) {
        set = all_statuses;
        n = sizeof all_statuses / sizeof *all_statuses;
    } else if (v && strcmp(v, "open")) {
        char buf[96];
        snprintf(buf, sizeof buf, "%s", v);
        size_t o = 0;
        for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
            if (!valid_status(t)) return -1;
            o += (size_t)snprintf(out + o, len - o, "%s%s", o ? " " : "", t);
            if (o >= len) return -1;
        }
        return o ? 0 : -1;
    }
    size_t o = 0;
    for (size_t i = 0; i < n; i++)
        o += (size_t)snprintf(out + o, len - o, "%s%s", i ? " " : "", set[i]);
    return 0;
}

/* The sites of ?site=, or every site the caller sees (up to LIST_MAX_SITES). 0, or -1 having
 * answered. */
static int list_sites(struct gw_req *r, const char *id, struct list_query *q)
{
    const cw_chain *chain = r->gw->chain;
    if (id) {
        const struct cw_site *s = cw_chain_site(chain, id);
        if (!s || !cw_staff_sees_site(r->staff, s)) {
            gw_error(r, 404, "not_found", "no such site among yours", "site");
            return -1;
        }
        q->sites[q->nsites++] = s;
        return 0;
    }
    for (size_t i = 0; i < cw_chain_site_count(chain); i++) {
        const struct cw_site *s = cw_chain_site_at(chain, i);
        if (!cw_staff_sees_site(r->staff, s)) continue;
        if (q->nsites == LIST_MAX_SITES) {
            gw_error(r, 400, "validation_failed",
                     "you see more than 50 sites: give the site (?site=SH01)", "site");
            return -1;
        }
        q->sites[q->nsites++] = s;
    }
    return 0;
}

void gw_cases_list(struct gw_req *r, const char *query)
{
    struct evkeyvalq kv;
    if (evhttp_parse_query_str(query ? query : "", &kv) != 0) {
        gw_error(r, 400, "bad_request", "the query string could not be parsed", NULL);
        return;
    }
    struct list_query *q = calloc(1, sizeof *q);
    static const char *const filter_keys[5] = {"category", "urgency", "department", "owner",
                                               "tenant"};
    const char *limit = evhttp_find_header(&kv, "limit");
    const char *overdue = evhttp_find_header(&kv, "overdue");
    char *end = NULL;
    long lim = limit ? strtol(limit, &end, 10) : LIST_DEFAULT;
    const char *filters[5] = {NULL}; /* category, urgency, department, owner, tenant: NULL any */
    if (!q) {
        gw_error(r, 503, "unavailable", "out of memory", NULL);
        goto out;
    }
    r->op = q;
    r->op_free = free;
    if (limit && (*end || lim < 1 || lim > LIST_MAX)) {
        gw_error(r, 400, "validation_failed", "limit is 1 to 1000", "limit");
        goto out;
    }
    q->limit = (int)lim;
    q->overdue_only = overdue && (!strcmp(overdue, "1") || !strcmp(overdue, "true"));
    if (parse_statuses(evhttp_find_header(&kv, "status"), q->statuses, sizeof q->statuses) != 0) {
        gw_error(r, 400, "validation_failed",
                 "status is open, all, or a list of received, assigned, acknowledged, reopened, "
                 "resolved, closed",
                 "status");
        goto out;
    }
    if (list_sites(r, evhttp_find_header(&kv, "site"), q) != 0) goto out;
    for (int i = 0; i < 5; i++) {
        const char *v = evhttp_find_header(&kv, filter_keys[i]);
        if (v && strlen(v) > 64) {
            gw_error(r, 400, "validation_failed", "a filter is at most 64 characters",
                     filter_keys[i]);
            goto out;
        }
        filters[i] = v;
    }
    {
        char scan[16];
        snprintf(scan, sizeof scan, "%d", LIST_SCAN_PER_INDEX);
        const char *argv[8 + LIST_MAX_SITES];
        int argc = 0;
        argv[argc++] = q->statuses;
        argv[argc++] = scan;
        for (int i = 0; i < 5; i++) argv[argc++] = filters[i] ? filters[i] : "";
        for (size_t i = 0; i < q->nsites; i++) argv[argc++] = q->sites[i]->id;
        if (gw_store_run(r, GW_S_CASES_LIST, 0, argc, argv, listed) != 0)
            gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
    }
out:
    /* (an answer above may have freed q with the request: nothing here touches it) */
    evhttp_clear_headers(&kv);
}
