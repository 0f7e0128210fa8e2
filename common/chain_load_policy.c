/* Loading the parts of a chain file that refer to sites: tenants, and the chain-wide policy
 * (routing, SLA policies, classification rules, SMS templates). */
#include "chain_impl.h"
#include "webhook.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* ---- tenants ---- */

static void ld_webhook(struct cw_ld *ld, const struct cw_ynode *tm, struct cw_tenant *t)
{
    const struct cw_ynode *m =
        ld_submap(ld, tm, "webhook", LD_OPTIONAL, KEYS("url", "secret", "secret_env"));
    if (!m) return;
    size_t mark = ld_push_key(ld, "webhook");
    const char *url = ld_str(ld, m, "url", LD_REQUIRED, LIM_URL), *why;
    char shape[160];
    if (url && cw_val_url(url, &why) < 0) {
        ld_error_key(ld, cw_ynode_get(m, "url"), "url", "bad URL \"%s\": %s", url, why);
        url = NULL;
    } else if (url && cw_wh_url_check(url, shape, sizeof shape) != 0) {
        /* what the notifier would refuse at send time, said at load time instead */
        ld_error_key(ld, cw_ynode_get(m, "url"), "url", "webhook URL \"%s\": %s", url, shape);
        url = NULL;
    }
    const char *secret = ld_secret_value(ld, m, "secret", "secret_env", LD_REQUIRED);
    if (secret && url) t->webhook_url = url, t->webhook_secret = secret;
    ld_pop(ld, mark);
}

static void ld_api_keys(struct cw_ld *ld, const struct cw_ynode *tm, struct cw_tenant *t)
{
    size_t n;
    const struct cw_ynode *list = ld_list(ld, tm, "api_keys", LD_OPTIONAL, LIM_API_KEYS, &n);
    struct cw_api_key *keys = ARENA_NEW(&ld->c->arena, struct cw_api_key, n);
    size_t mark = ld_push_key(ld, "api_keys");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        if (ld_map_keys(ld, m, KEYS("id", "sha256"))) {
            struct cw_api_key *k = &keys[t->napi_keys];
            k->tenant = t;
            k->id = ld_id(ld, m, "id", LD_REQUIRED, ID_GENERIC);
            for (size_t j = 0; k->id && j < t->napi_keys; j++)
                if (strcmp(keys[j].id, k->id) == 0)
                    ld_error_key(ld, cw_ynode_get(m, "id"), "id", "duplicate key id \"%s\"", k->id);
            char owner[2 * LIM_ID + 32];
            snprintf(owner, sizeof owner, "API key %s of tenant %s", k->id ? k->id : "?",
                     t->id ? t->id : "?");
            k->sha256 =
                ld_secret_hash(ld, m, "sha256", LD_REQUIRED, cw_arena_strdup(&ld->c->arena, owner));
            if (k->id && k->sha256) {
                cw_strmap_put(&ld->c->by_key, k->sha256, k, 0, NULL);
                t->napi_keys++;
            }
        }
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    t->api_keys = keys;
}

static void ld_tenant(struct cw_ld *ld, const struct cw_ynode *m, struct cw_tenant *t)
{
    const char *why;
    t->site = ld_ref(ld, m, "site", LD_REQUIRED, &ld->c->by_site, "site");
    t->name = ld_str(ld, m, "name", LD_REQUIRED, LIM_NAME);
    t->name_en = ld_str(ld, m, "name_en", LD_OPTIONAL, LIM_NAME);
    if (!t->name_en) t->name_en = t->name;
    t->brand = ld_str(ld, m, "brand", LD_OPTIONAL, LIM_NAME);
    t->floor = ld_str(ld, m, "floor", LD_OPTIONAL, 32);
    t->unit = ld_str(ld, m, "unit", LD_OPTIONAL, 32);
    const struct cw_ynode *cm = ld_submap(ld, m, "contact", LD_OPTIONAL, KEYS("name", "phone"));
    if (cm) {
        size_t mark = ld_push_key(ld, "contact");
        t->contact_name = ld_str(ld, cm, "name", LD_OPTIONAL, LIM_NAME);
        t->contact_phone = ld_str(ld, cm, "phone", LD_OPTIONAL, 32);
        if (t->contact_phone && cw_val_phone(t->contact_phone, &why) < 0)
            ld_error_key(ld, cw_ynode_get(cm, "phone"), "phone", "%s", why);
        ld_pop(ld, mark);
    }
    ld_api_keys(ld, m, t);
    ld_webhook(ld, m, t);
}

/* Gives every site the list of its tenants. */
static void attach_tenants(cw_chain *c)
{
    size_t *count = ARENA_NEW(&c->arena, size_t, c->nsites + 1);
    for (size_t i = 0; i < c->ntenants; i++)
        if (c->tenants[i].site) count[c->tenants[i].site - c->sites]++;
    for (size_t s = 0; s < c->nsites; s++)
        c->sites[s].tenants = ARENA_NEW(&c->arena, const struct cw_tenant *, count[s]);
    for (size_t i = 0; i < c->ntenants; i++) {
        struct cw_site *s = (struct cw_site *)c->tenants[i].site;
        if (s) ((const struct cw_tenant **)s->tenants)[s->ntenants++] = &c->tenants[i];
    }
}

void ld_tenants(struct cw_ld *ld, const struct cw_ynode *root)
{
    cw_chain *c = ld->c;
    size_t n;
    const struct cw_ynode *list =
        ld_list(ld, root, "tenants", LD_OPTIONAL, CW_CHAIN_MAX_TENANTS, &n);
    c->tenants = ARENA_NEW(&c->arena, struct cw_tenant, n);
    size_t mark = ld_push_key(ld, "tenants");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        if (ld_map_keys(ld, m,
                        KEYS("id", "site", "floor", "unit", "name", "name_en", "brand", "contact",
                             "api_keys", "webhook"))) {
            struct cw_tenant *t = &c->tenants[c->ntenants];
            *t = (struct cw_tenant){0};
            t->id = ld_id(ld, m, "id", LD_REQUIRED, ID_GENERIC);
            ld_tenant(ld, m, t);
            size_t ik = ld_push_key(ld, "id");
            if (t->id && ld_unique(ld, &c->by_tenant, t->id, t, cw_ynode_get(m, "id"), "tenant id"))
                c->ntenants++;
            ld_pop(ld, ik);
        }
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    attach_tenants(c);
}

/* ---- routing ---- */

static void ld_route(struct cw_ld *ld, const struct cw_ynode *m, struct cw_route *r)
{
    size_t n;
    r->category = ld_enum(ld, m, "category", LD_REQUIRED, CW_VOCAB_CATEGORY);
    const struct cw_ynode *list = ld_list(ld, m, "departments", LD_REQUIRED, LIM_ROUTE_KINDS, &n);
    enum cw_dept_kind *kinds = ARENA_NEW(&ld->c->arena, enum cw_dept_kind, n);
    size_t mark = ld_push_key(ld, "departments");
    for (size_t i = 0; list && i < n; i++) {
        size_t im = ld_push_index(ld, i);
        int k = ld_enum_scalar(ld, list->items[i], CW_VOCAB_DEPT_KIND);
        if (k > 0) kinds[r->nkinds++] = (enum cw_dept_kind)k;
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    r->kinds = kinds;
}

void ld_routing(struct cw_ld *ld, const struct cw_ynode *root)
{
    cw_chain *c = ld->c;
    size_t n;
    const struct cw_ynode *list = ld_list(ld, root, "routing", LD_REQUIRED, 64, &n);
    c->routes = ARENA_NEW(&c->arena, struct cw_route, n);
    int first_line[CASEWIRE__V1__CATEGORY__CATEGORY_OTHER + 1] = {0};
    size_t mark = ld_push_key(ld, "routing");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        struct cw_route *r = &c->routes[c->nroutes];
        *r = (struct cw_route){0};
        if (ld_map_keys(ld, m, KEYS("category", "departments"))) ld_route(ld, m, r);
        if (r->category > 0 && first_line[r->category]) {
            ld_error_key(ld, cw_ynode_get(m, "category"), "category",
                         "category %s is routed twice (first at line %d)",
                         cw_category_name(r->category), first_line[r->category]);
        } else if (r->category > 0 && r->nkinds > 0) {
            first_line[r->category] = m->line;
            c->route_of[r->category] = r;
            c->nroutes++;
        }
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
}

/* ---- SLA policies ---- */

static void ld_match(struct cw_ld *ld, const struct cw_ynode *parent, const char *key,
                     const char *const *allowed, struct cw_match *mt)
{
    *mt = (struct cw_match){.tenant = -1};
    const struct cw_ynode *m = ld_submap(ld, parent, key, LD_OPTIONAL, allowed);
    if (!m) return;
    size_t mark = ld_push_key(ld, key);
    mt->types = ld_enum_mask(ld, m, "types", CW_VOCAB_CASE_TYPE);
    mt->categories = ld_enum_mask(ld, m, "categories", CW_VOCAB_CATEGORY);
    mt->urgencies = ld_enum_mask(ld, m, "urgencies", CW_VOCAB_URGENCY);
    mt->validities = ld_enum_mask(ld, m, "validities", CW_VOCAB_VALIDITY);
    mt->channels = ld_enum_mask(ld, m, "channels", CW_VOCAB_CHANNEL);
    mt->sites = ld_site_list(ld, m, "sites", &mt->nsites);
    mt->tenant = ld_bool(ld, m, "tenant");
    ld_pop(ld, mark);
}

static void ld_clocks(struct cw_ld *ld, const struct cw_ynode *pm, struct cw_policy *p)
{
    const struct cw_ynode *m =
        ld_submap(ld, pm, "clocks", LD_REQUIRED,
                  KEYS("handoff", "tenant_trading", "reply", "feedback", "resolution", "followup"));
    if (!m) return;
    size_t mark = ld_push_key(ld, "clocks");
    if (m->n == 0) ld_error(ld, m, "a policy needs at least one clock");
    for (int k = 1; k <= cw_vocab_max(CW_VOCAB_CLOCK); k++) {
        const char *name = cw_clock_name(k), *why;
        const char *v = ld_str(ld, m, name, LD_OPTIONAL, 16);
        if (v && cw_val_duration(v, &p->clocks[k], &why) < 0)
            ld_error_key(ld, cw_ynode_get(m, name), name, "bad duration \"%s\": %s", v, why);
    }
    ld_pop(ld, mark);
}

static void ld_warnings(struct cw_ld *ld, const struct cw_ynode *pm, struct cw_policy *p)
{
    size_t n;
    const struct cw_ynode *list =
        ld_list(ld, pm, "warnings", LD_OPTIONAL, CW_CHAIN_MAX_WARNINGS, &n);
    size_t mark = ld_push_key(ld, "warnings");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *it = list->items[i];
        size_t im = ld_push_index(ld, i);
        char *end = NULL;
        long v = it->type == CW_YNODE_SCALAR ? strtol(it->str, &end, 10) : 0;
        if (!end || end == it->str || *end || v < 1 || v > 99)
            ld_error(ld, it, "a warning is a percent of the clock, 1 to 99");
        else if (p->nwarnings && v <= p->warnings[p->nwarnings - 1])
            ld_error(ld, it, "warnings must be in ascending order (%ld after %d)", v,
                     p->warnings[p->nwarnings - 1]);
        else
            p->warnings[p->nwarnings++] = (uint8_t)v;
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
}

static int cmp_priority(int pa, int pb, const void *a, const void *b)
{
    if (pa != pb) return pa > pb ? -1 : 1;
    return a < b ? -1 : a > b; /* same array: address order is file order */
}

static int cmp_policy(const void *a, const void *b)
{
    const struct cw_policy *x = *(const struct cw_policy *const *)a;
    const struct cw_policy *y = *(const struct cw_policy *const *)b;
    return cmp_priority(x->priority, y->priority, x, y);
}

void ld_policies(struct cw_ld *ld, const struct cw_ynode *root)
{
    cw_chain *c = ld->c;
    size_t n;
    const struct cw_ynode *list = ld_list(ld, root, "sla_policies", LD_REQUIRED, LIM_POLICIES, &n);
    struct cw_policy *all = ARENA_NEW(&c->arena, struct cw_policy, n);
    c->policies = ARENA_NEW(&c->arena, const struct cw_policy *, n);
    size_t mark = ld_push_key(ld, "sla_policies");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        struct cw_policy *p = &all[i];
        if (ld_map_keys(ld, m,
                        KEYS("id", "description", "priority", "match", "clocks", "warnings"))) {
            p->id = ld_id(ld, m, "id", LD_REQUIRED, ID_GENERIC);
            ld_str(ld, m, "description", LD_OPTIONAL, LIM_TEXT);
            ld_int(ld, m, "priority", LD_OPTIONAL, 0, 1000000, &p->priority);
            ld_match(ld, m, "match",
                     KEYS("types", "categories", "urgencies", "validities", "channels", "sites",
                          "tenant"),
                     &p->match);
            ld_clocks(ld, m, p);
            ld_warnings(ld, m, p);
            size_t ik = ld_push_key(ld, "id");
            if (p->id && ld_unique(ld, &c->by_policy, p->id, p, cw_ynode_get(m, "id"), "policy id"))
                c->policies[c->npolicies++] = p;
            ld_pop(ld, ik);
        }
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    qsort(c->policies, c->npolicies, sizeof *c->policies, cmp_policy);
}

/* ---- classification rules ---- */

static const char *const *ld_patterns(struct cw_ld *ld, const struct cw_ynode *rm, const char *key,
                                      size_t max, size_t *count)
{
    size_t n;
    const struct cw_ynode *list = ld_list(ld, rm, key, LD_OPTIONAL, max, &n);
    const char **out = ARENA_NEW(&ld->c->arena, const char *, n);
    bool regex = strcmp(key, "regex") == 0;
    size_t mark = ld_push_key(ld, key);
    *count = 0;
    if (list && list->n == 0) ld_error(ld, list, "must not be empty");
    for (size_t i = 0; list && i < n; i++) {
        size_t im = ld_push_index(ld, i);
        const struct cw_ynode *it = list->items[i];
        char *s = (char *)ld_scalar(ld, it, regex ? LIM_REGEX : LIM_PATTERN);
        if (s && !*s)
            ld_error(ld, it, "an empty pattern matches everything");
        else if (s && regex && !ck_regex(ld, s, it))
            s = NULL;
        else if (s && !regex)
            cw_val_lower_ascii(s);
        if (s && *s) out[(*count)++] = s;
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    return out;
}

static void ld_rule_set(struct cw_ld *ld, const struct cw_ynode *rm, struct cw_rule *r)
{
    const struct cw_ynode *m =
        ld_submap(ld, rm, "set", LD_REQUIRED,
                  KEYS("type", "category", "urgency", "validity", "department_kind"));
    if (!m) return;
    size_t mark = ld_push_key(ld, "set");
    int v;
    if (m->n == 0) ld_error(ld, m, "a rule must set at least one field");
    if ((v = ld_enum(ld, m, "type", 0, CW_VOCAB_CASE_TYPE)) > 0) r->set.type = v;
    if ((v = ld_enum(ld, m, "category", 0, CW_VOCAB_CATEGORY)) > 0) r->set.category = v;
    if ((v = ld_enum(ld, m, "urgency", 0, CW_VOCAB_URGENCY)) > 0) r->set.urgency = v;
    if ((v = ld_enum(ld, m, "validity", 0, CW_VOCAB_VALIDITY)) > 0) r->set.validity = v;
    if ((v = ld_enum(ld, m, "department_kind", 0, CW_VOCAB_DEPT_KIND)) > 0)
        r->set.department_kind = (enum cw_dept_kind)v;
    ld_pop(ld, mark);
}

static int cmp_rule(const void *a, const void *b)
{
    const struct cw_rule *x = *(const struct cw_rule *const *)a;
    const struct cw_rule *y = *(const struct cw_rule *const *)b;
    return cmp_priority(x->priority, y->priority, x, y);
}

static void ld_rule(struct cw_ld *ld, const struct cw_ynode *m, struct cw_rule *r)
{
    r->id = ld_id(ld, m, "id", LD_REQUIRED, ID_GENERIC);
    ld_str(ld, m, "description", LD_OPTIONAL, LIM_TEXT);
    ld_int(ld, m, "priority", LD_OPTIONAL, 0, 1000000, &r->priority);
    r->patterns = ld_patterns(ld, m, "patterns", LIM_PATTERNS, &r->npatterns);
    r->regex = ld_patterns(ld, m, "regex", LIM_REGEXES, &r->nregex);
    if (!ld_field(ld, m, "patterns", LD_OPTIONAL) && !ld_field(ld, m, "regex", LD_OPTIONAL))
        ld_error_key(ld, m, "patterns", "a rule needs patterns or regex");
    ld_match(ld, m, "when", KEYS("channels", "sites", "tenant"), &r->when);
    ld_rule_set(ld, m, r);
}

void ld_rules(struct cw_ld *ld, const struct cw_ynode *root)
{
    cw_chain *c = ld->c;
    size_t n;
    const struct cw_ynode *list =
        ld_list(ld, root, "classification_rules", LD_OPTIONAL, LIM_RULES, &n);
    struct cw_rule *all = ARENA_NEW(&c->arena, struct cw_rule, n);
    c->rules = ARENA_NEW(&c->arena, const struct cw_rule *, n);
    size_t mark = ld_push_key(ld, "classification_rules");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        if (ld_map_keys(
                ld, m, KEYS("id", "description", "priority", "patterns", "regex", "when", "set"))) {
            ld_rule(ld, m, &all[i]);
            size_t ik = ld_push_key(ld, "id");
            if (all[i].id &&
                ld_unique(ld, &c->by_rule, all[i].id, &all[i], cw_ynode_get(m, "id"), "rule id"))
                c->rules[c->nrules++] = &all[i];
            ld_pop(ld, ik);
        }
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    qsort(c->rules, c->nrules, sizeof *c->rules, cmp_rule);
}

/* ---- SMS templates ---- */

static void ld_template_texts(struct cw_ld *ld, const struct cw_ynode *m, struct tmpl *t)
{
    const cw_chain *c = ld->c;
    size_t given = 0;
    for (size_t i = 0; i < c->nlanguages; i++) {
        const char *lang = c->languages[i], *why;
        const char *text = ld_str(ld, m, lang, LD_OPTIONAL, LIM_TEMPLATE);
        char bad[64];
        given += ld_field(ld, m, lang, LD_OPTIONAL) != NULL;
        if (text && cw_val_template(text, bad, sizeof bad, &why) < 0)
            ld_error_key(ld, cw_ynode_get(m, lang), lang, "%s %s%s", why, bad,
                         strlen(bad) > 1 ? " (known: {case_no} {reply_by} {status_url} "
                                           "{site_name} {reply_code} {staff_name} {due} "
                                           "{category} {level})"
                                         : "");
        else if (text)
            t->text[i] = text;
    }
    if (!given)
        ld_error_key(ld, m, c->languages[0], "a template needs a text in at least one language");
    else if (!t->site && !ld_field(ld, m, c->languages[0], LD_OPTIONAL))
        ld_error_key(ld, m, c->languages[0],
                     "a chain-wide template needs a text in the default language");
}

static void ld_template(struct cw_ld *ld, const struct cw_ynode *m, struct tmpl *t)
{
    const char *allowed[CW_CHAIN_MAX_LANGUAGES + 4] = {"id", "site", "description"};
    for (size_t i = 0; i < ld->c->nlanguages; i++) allowed[3 + i] = ld->c->languages[i];
    if (!ld_map_keys(ld, m, allowed)) return;
    t->id = ld_id(ld, m, "id", LD_REQUIRED, ID_GENERIC);
    t->site = ld_ref(ld, m, "site", LD_OPTIONAL, &ld->c->by_site, "site");
    ld_str(ld, m, "description", LD_OPTIONAL, LIM_TEXT);
    ld_template_texts(ld, m, t);
}

void ld_templates(struct cw_ld *ld, const struct cw_ynode *root)
{
    cw_chain *c = ld->c;
    size_t n;
    const struct cw_ynode *list =
        ld_list(ld, root, "sms_templates", LD_OPTIONAL, LIM_TEMPLATES, &n);
    c->templates = ARENA_NEW(&c->arena, struct tmpl, n);
    size_t mark = ld_push_key(ld, "sms_templates");
    for (size_t i = 0; list && i < n; i++) {
        const struct cw_ynode *m = list->items[i];
        size_t im = ld_push_index(ld, i);
        struct tmpl *t = &c->templates[c->ntemplates];
        *t = (struct tmpl){.line = m->line, .index = i};
        ld_template(ld, m, t);
        char buf[2 * LIM_ID + 8];
        const char *key = t->id
                              ? cw_chain_template_key(&c->arena, t->id,
                                                      t->site ? t->site->id : NULL, buf, sizeof buf)
                              : NULL;
        const struct cw_ynode *idn = cw_ynode_get(m, "id");
        int first = 0;
        if (key && cw_strmap_put(&c->by_template, key, t, idn->line, &first) == 0)
            c->ntemplates++;
        else if (key)
            ld_error_key(ld, idn, "id", "duplicate template \"%s\"%s%s (first at line %d)", t->id,
                         t->site ? " for site " : "", t->site ? t->site->id : "", first);
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
}
