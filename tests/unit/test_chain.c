/* The chain model: the example chain loads and answers queries; every kind of broken chain
 * file is refused with the file, the line, the field path and a message that says what is
 * wrong (one broken file per test, tests/data/chain/broken/). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "chain.h"

#define EXAMPLE "deploy/chain.example.yaml"
#define BROKEN "tests/data/chain/broken/"

/* ---- collecting reports ---- */

struct problem {
    char *file, *path, *message;
    int line;
};

struct problems {
    struct problem v[200];
    int n;
};

static void collect(const struct cw_chain_error *e, void *arg)
{
    struct problems *p = arg;
    if (p->n >= (int)(sizeof p->v / sizeof p->v[0])) return;
    p->v[p->n++] = (struct problem){.file = strdup(e->file),
                                    .path = strdup(e->path),
                                    .message = strdup(e->message),
                                    .line = e->line};
}

static void problems_release(struct problems *p)
{
    for (int i = 0; i < p->n; i++) {
        free(p->v[i].file);
        free(p->v[i].path);
        free(p->v[i].message);
    }
    p->n = 0;
}

static void problems_print(const struct problems *p)
{
    for (int i = 0; i < p->n; i++)
        fprintf(stderr, "  %s:%d: %s: %s\n", p->v[i].file, p->v[i].line, p->v[i].path,
                p->v[i].message);
}

static cw_chain *load(const char *path, struct problems *p)
{
    memset(p, 0, sizeof *p);
    return cw_chain_load(path, collect, p);
}

static const char *hash(const char *secret)
{
    static char hex[CW_SHA256_HEX_LEN + 1];
    ck_assert_int_eq(cw_chain_hash_secret(secret, hex), 0);
    return hex;
}

/* ---- the example chain ---- */

static cw_chain *example;
static struct problems example_problems;

static void example_setup(void)
{
    example = load(EXAMPLE, &example_problems);
    if (!example) problems_print(&example_problems);
}

static void example_teardown(void)
{
    cw_chain_free(example);
    example = NULL;
    problems_release(&example_problems);
}

START_TEST(example_loads_without_problems)
{
    ck_assert_int_eq(example_problems.n, 0);
    ck_assert_ptr_nonnull(example);
    ck_assert_str_eq(cw_chain_id(example), "hx");
    ck_assert_str_eq(cw_chain_name(example), "华信商业集团");
    ck_assert_str_eq(cw_chain_name_en(example), "Huaxin Retail Group");
    ck_assert_str_eq(cw_chain_default_language(example), "zh");
    ck_assert_int_eq(cw_chain_language_count(example), 2);
    ck_assert_str_eq(cw_chain_language_at(example, 1), "en");
}
END_TEST

START_TEST(example_sites_and_calendars)
{
    ck_assert_int_eq(cw_chain_site_count(example), 3);
    const struct cw_site *sh01 = cw_chain_site_at(example, 0);
    ck_assert_str_eq(sh01->id, "SH01");
    ck_assert_int_eq(sh01->kind, CW_SITE_MALL);
    ck_assert_ptr_eq(cw_chain_site(example, "SH01"), sh01);
    ck_assert_ptr_null(cw_chain_site_at(example, 3));
    ck_assert_ptr_null(cw_chain_site(example, "SH99"));
    ck_assert_int_eq(cw_chain_site(example, "SH02")->kind, CW_SITE_SUPERMARKET);
    const struct cw_site *hz = cw_chain_site(example, "HZ01");
    ck_assert_int_eq(hz->kind, CW_SITE_DEPARTMENT_STORE);
    ck_assert_str_eq(hz->timezone, "Asia/Shanghai");
    /* fri 10:00-22:30, sun by weekday number 0 */
    ck_assert_int_eq(sh01->hours[CW_FRI].open, 600);
    ck_assert_int_eq(sh01->hours[CW_FRI].close, 1350);
    ck_assert(!sh01->hours[CW_SUN].closed);
    ck_assert_int_eq(sh01->working_days, CW_ALL_DAYS);
    ck_assert_int_eq(hz->working_days, CW_ALL_DAYS & ~(1u << CW_SUN));
    ck_assert_int_eq(sh01->nholidays, 3);
    ck_assert_int_eq(sh01->holidays[0].date, 20260101);
    const struct cw_site *sh02 = cw_chain_site(example, "SH02");
    ck_assert_int_eq(sh02->nspecial_days, 2);
    ck_assert_int_eq(sh02->special_days[1].date, 20260217);
    ck_assert(sh02->special_days[1].hours.closed);
    ck_assert_int_eq(sh01->ntenants, 4);
    ck_assert_int_eq(sh02->ntenants, 0);
}
END_TEST

START_TEST(example_staff_by_id_and_token)
{
    const struct cw_staff *s = cw_chain_staff_by_token_hash(example, hash("demo-desk_agent-SH01"));
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->id, "SH01-S001");
    ck_assert_str_eq(s->site->id, "SH01");
    ck_assert_str_eq(s->department->id, "SH01-desk");
    ck_assert_int_eq(s->department->kind, CW_DEPT_SERVICE_DESK);
    ck_assert(cw_staff_has_role(s, "desk_agent"));
    ck_assert(!cw_staff_has_role(s, "duty_manager"));
    ck_assert_ptr_eq(cw_chain_staff(example, "SH01-S001"), s);
    /* upper-case hex is the same hash */
    char upper[CW_SHA256_HEX_LEN + 1];
    strcpy(upper, hash("demo-duty_manager-HZ01"));
    for (char *p = upper; *p; p++) *p = (char)(*p >= 'a' && *p <= 'f' ? *p - 32 : *p);
    ck_assert_str_eq(cw_chain_staff_by_token_hash(example, upper)->id, "HZ01-S013");
    const struct cw_staff *head = cw_chain_staff_by_token_hash(example, hash("demo-group_head-HQ"));
    ck_assert_ptr_nonnull(head);
    ck_assert_ptr_null(head->site);
    ck_assert_ptr_null(cw_chain_staff_by_token_hash(example, hash("demo-nobody")));
    ck_assert_ptr_null(cw_chain_staff_by_token_hash(example, "abc"));
    ck_assert_ptr_null(cw_chain_staff_by_token_hash(example, NULL));
    /* an overnight shift */
    const struct cw_staff *eng = cw_chain_staff(example, "SH01-S018");
    ck_assert_int_eq(eng->nshifts, 2);
    ck_assert(eng->shifts[1].overnight);
    ck_assert_int_eq(eng->shifts[1].from, 22 * 60);
    ck_assert_int_eq(eng->shifts[1].to, 6 * 60);
    ck_assert_int_eq(eng->shifts[1].days, (1u << CW_MON) | (1u << CW_TUE) | (1u << CW_WED));
    ck_assert_int_eq(cw_chain_group(example)->nstaff, 7);
    ck_assert_str_eq(cw_chain_department(example, "HQ-cc")->name_en, "Group 400 call centre");
    ck_assert_int_eq(cw_chain_role_count(example), 15);
    ck_assert_str_eq(cw_chain_role(example, "duty_manager")->name, "值班经理");
}
END_TEST

/* Who sees which site, and which actions a role allows. */
START_TEST(example_visibility_and_actions)
{
    const struct cw_site *sh01 = cw_chain_site(example, "SH01"),
                         *sh02 = cw_chain_site(example, "SH02"),
                         *hz01 = cw_chain_site(example, "HZ01");
    const struct cw_staff *desk = cw_chain_staff(example, "SH01-S001"),
                          *head = cw_chain_staff(example, "HQ-S001"),
                          *region = cw_chain_staff(example, "HQ-S020"),
                          *guard = cw_chain_staff(example, "SH01-S021"),
                          *auditor = cw_chain_staff(example, "HQ-S002");
    ck_assert(cw_staff_sees_site(desk, sh01));
    ck_assert(!cw_staff_sees_site(desk, sh02));
    ck_assert(cw_staff_sees_site(head, sh01) && cw_staff_sees_site(head, hz01));
    ck_assert_int_eq(region->nsites, 2);
    ck_assert(cw_staff_sees_site(region, sh01) && cw_staff_sees_site(region, sh02));
    ck_assert(!cw_staff_sees_site(region, hz01));
    ck_assert(!cw_staff_sees_site(NULL, sh01) && !cw_staff_sees_site(desk, NULL));
    /* no actions listed: every action; a listed role: only those */
    for (int a = CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE;
         a <= CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REPLY; a++)
        ck_assert(cw_staff_may(desk, a));
    ck_assert(cw_staff_may(guard, CASEWIRE__V1__CASE_ACTION__CASE_ACTION_RESOLVE));
    ck_assert(!cw_staff_may(guard, CASEWIRE__V1__CASE_ACTION__CASE_ACTION_CLOSE));
    ck_assert(!cw_staff_may(guard, CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP));
    ck_assert(cw_staff_may(auditor, CASEWIRE__V1__CASE_ACTION__CASE_ACTION_NOTE));
    ck_assert(!cw_staff_may(auditor, CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE));
    ck_assert(!cw_staff_may(desk, 0) && !cw_staff_may(desk, 40));
    ck_assert_uint_eq(cw_chain_role(example, "auditor")->actions,
                      1u << CASEWIRE__V1__CASE_ACTION__CASE_ACTION_NOTE);
}
END_TEST

START_TEST(example_tenants_by_key)
{
    const struct cw_tenant *t =
        cw_chain_tenant_by_key_hash(example, hash("demo-tenant-T-SH01-0312"));
    ck_assert_ptr_nonnull(t);
    ck_assert_str_eq(t->id, "T-SH01-0312");
    ck_assert_str_eq(t->name, "悦茶坊");
    ck_assert_str_eq(t->site->id, "SH01");
    ck_assert_str_eq(t->unit, "3F-12");
    ck_assert_str_eq(t->webhook_url, "https://hooks.yuechafang.example/casewire");
    ck_assert_str_eq(t->webhook_secret, "demo-webhook-secret-T-SH01-0312");
    const struct cw_api_key *k = cw_chain_api_key_by_hash(example, hash("demo-tenant-T-SH01-0520"));
    ck_assert_str_eq(k->id, "k1");
    ck_assert_str_eq(k->tenant->id, "T-SH01-0520");
    ck_assert_ptr_eq(cw_chain_tenant(example, "T-SH01-0520"), k->tenant);
    ck_assert_ptr_null(cw_chain_tenant(example, "T-SH01-9999"));
    ck_assert_ptr_null(cw_chain_tenant(example, "T-SH01-B112")->webhook_url);
    ck_assert_int_eq(cw_chain_tenant_count(example), 4);
    /* a staff token is not an API key */
    ck_assert_ptr_null(cw_chain_tenant_by_key_hash(example, hash("demo-desk_agent-SH01")));
}
END_TEST

START_TEST(example_ladders)
{
    const struct cw_ladder *l = cw_chain_ladder(example, "SH01");
    ck_assert_int_eq(l->nlevels, 4);
    ck_assert_str_eq(l->levels[0]->id, "floor_supervisor");
    ck_assert_str_eq(l->levels[3]->id, "group_head");
    ck_assert_str_eq(l->fallback->id, "duty_manager");
    l = cw_chain_ladder(example, "HZ01");
    ck_assert_int_eq(l->nlevels, 3);
    ck_assert_str_eq(l->levels[0]->id, "counter_staff");
    ck_assert_str_eq(l->levels[1]->id, "section_head");
    ck_assert_str_eq(l->levels[2]->id, "auditor");
    ck_assert_ptr_null(cw_chain_ladder(example, "XX01"));
    ck_assert_str_eq(cw_chain_site(example, "SH02")->callback_department->id, "HQ-cc");
    ck_assert_str_eq(cw_chain_site(example, "SH01")->callback_department->id, "SH01-cc");
}
END_TEST

START_TEST(example_templates_override_by_site_and_language)
{
    const char *lang = NULL;
    const char *t = cw_chain_template(example, "case_received", "SH02", "zh", &lang);
    ck_assert_ptr_nonnull(strstr(t, "【华信超市】"));
    ck_assert_str_eq(lang, "zh");
    t = cw_chain_template(example, "case_received", "SH02", "en", &lang);
    ck_assert_ptr_nonnull(strstr(t, "[Huaxin Supermarket]"));
    ck_assert_str_eq(lang, "en");
    t = cw_chain_template(example, "case_received", "SH01", "zh", NULL);
    ck_assert_ptr_nonnull(strstr(t, "【华信】您的投诉已受理"));
    t = cw_chain_template(example, "case_received", NULL, "en", NULL);
    ck_assert_ptr_nonnull(strstr(t, "[Huaxin] Your case {case_no}"));
    t = cw_chain_template(example, "staff_escalated", "HZ01", "fr", &lang); /* default language */
    ck_assert_ptr_nonnull(strstr(t, "第{level}级"));
    ck_assert_str_eq(lang, "zh");
    ck_assert_ptr_null(cw_chain_template(example, "no_such_template", "SH01", "zh", NULL));
}
END_TEST

START_TEST(example_policies_rules_routes)
{
    ck_assert_int_eq(cw_chain_policy_count(example), 9);
    const struct cw_policy *first = cw_chain_policy_at(example, 0);
    ck_assert_str_eq(first->id, "emergency");
    ck_assert_int_eq(first->match.urgencies, 1u << CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY);
    ck_assert_int_eq(first->clocks[CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF].ms, 5 * 60000);
    ck_assert_int_eq(first->nwarnings, 2);
    ck_assert_int_eq(first->warnings[1], 80);
    const struct cw_policy *def = cw_chain_policy_at(example, 8);
    ck_assert_str_eq(def->id, "default");
    ck_assert_int_eq(def->match.tenant, -1);
    const struct cw_duration *reply = &def->clocks[CASEWIRE__V1__CLOCK_KIND__CLOCK_REPLY];
    ck_assert_int_eq(reply->basis, CW_TIME_WALL);
    ck_assert_int_eq(reply->ms, 24LL * 3600000);
    ck_assert_int_eq(def->clocks[CASEWIRE__V1__CLOCK_KIND__CLOCK_FEEDBACK].basis,
                     CW_TIME_WORKING_DAYS);
    ck_assert_int_eq(def->clocks[CASEWIRE__V1__CLOCK_KIND__CLOCK_FEEDBACK].days, 1);
    ck_assert_int_eq(def->clocks[CASEWIRE__V1__CLOCK_KIND__CLOCK_RESOLUTION].basis, CW_TIME_UNSET);
    const struct cw_policy *after_sales = cw_chain_policy(example, "after-sales");
    const struct cw_duration *as = &after_sales->clocks[CASEWIRE__V1__CLOCK_KIND__CLOCK_RESOLUTION];
    ck_assert_int_eq(as->basis, CW_TIME_WORKING_HOURS);
    ck_assert_int_eq(as->ms, 8LL * 3600000);

    ck_assert_int_ge(cw_chain_rule_count(example), 12);
    for (size_t i = 1; i < cw_chain_rule_count(example); i++)
        ck_assert_int_ge(cw_chain_rule_at(example, i - 1)->priority,
                         cw_chain_rule_at(example, i)->priority);
    const struct cw_rule *fire = cw_chain_rule(example, "emergency-fire");
    ck_assert_int_eq(fire->set.urgency, CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY);
    ck_assert_int_eq(fire->set.category, CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY);
    ck_assert_str_eq(fire->patterns[0], "着火");
    const struct cw_rule *trade = cw_chain_rule(example, "tenant-cannot-trade");
    ck_assert_int_eq(trade->when.channels, 1u << CASEWIRE__V1__CHANNEL__CHANNEL_TENANT_API);
    const struct cw_rule *inq = cw_chain_rule(example, "inquiry");
    ck_assert_str_eq(inq->patterns[6], "may i ask"); /* stored lower-cased */
    ck_assert_int_eq(cw_chain_rule(example, "price-dispute")->nregex, 2);

    const struct cw_route *r = cw_chain_route(example, CASEWIRE__V1__CATEGORY__CATEGORY_PARKING);
    ck_assert_int_eq(r->nkinds, 2);
    ck_assert_int_eq(r->kinds[0], CW_DEPT_PARKING);
    r = cw_chain_route(example, CASEWIRE__V1__CATEGORY__CATEGORY_PRODUCT_QUALITY);
    ck_assert_int_eq(r->kinds[0], CW_DEPT_TENANT);
    ck_assert_int_eq(cw_chain_route(example, 0)->category, CASEWIRE__V1__CATEGORY__CATEGORY_OTHER);
    ck_assert_int_eq(cw_chain_route_count(example), 11);
}
END_TEST

/* ---- small valid chains ---- */

START_TEST(minimal_chain_and_defaults)
{
    struct problems p;
    cw_chain *c = load("tests/data/chain/minimal.yaml", &p);
    ck_assert_int_eq(p.n, 0);
    ck_assert_ptr_nonnull(c);
    const struct cw_site *s = cw_chain_site(c, "T01");
    ck_assert_str_eq(s->timezone, "Asia/Shanghai"); /* the chain's */
    ck_assert_str_eq(s->name_en, "测试店");         /* name_en defaults to name */
    ck_assert_int_eq(s->working_days, CW_ALL_DAYS);
    ck_assert_str_eq(s->callback_department->id, "T01-desk"); /* service desk as last resort */
    ck_assert(s->hours[CW_SUN].closed);
    /* no route of its own: the route of `other` */
    ck_assert_int_eq(cw_chain_route(c, CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY)->category,
                     CASEWIRE__V1__CATEGORY__CATEGORY_OTHER);
    ck_assert_ptr_null(cw_chain_template(c, "case_received", "T01", "zh", NULL));
    ck_assert_int_eq(cw_chain_tenant_count(c), 0);
    cw_chain_free(c);
}
END_TEST

START_TEST(webhook_secret_from_the_environment)
{
    struct problems p;
    setenv("CW_TEST_WEBHOOK_SECRET", "a-long-enough-test-secret", 1);
    cw_chain *c = load("tests/data/chain/secret_env.yaml", &p);
    problems_print(&p); /* prints nothing when all is well */
    ck_assert_int_eq(p.n, 0);
    const struct cw_tenant *t = cw_chain_tenant_by_key_hash(c, hash("demo-tenant-1"));
    ck_assert_str_eq(t->webhook_secret, "a-long-enough-test-secret");
    ck_assert_str_eq(t->contact_phone, "139 0000 0001");
    cw_chain_free(c);
    unsetenv("CW_TEST_WEBHOOK_SECRET");
    ck_assert_ptr_null(load("tests/data/chain/secret_env.yaml", &p));
    ck_assert_int_eq(p.n, 1);
    ck_assert_str_eq(p.v[0].path, "tenants[0].webhook.secret_env");
    problems_release(&p);
}
END_TEST

START_TEST(hash_secret_is_sha256_hex)
{
    char hex[CW_SHA256_HEX_LEN + 1];
    ck_assert_int_eq(cw_chain_hash_secret("abc", hex), 0);
    ck_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    ck_assert_int_eq(cw_chain_hash_secret("", hex), 0);
    ck_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    ck_assert_int_eq(cw_chain_hash_secret(NULL, hex), -1);
}
END_TEST

/* ---- broken chains ---- */

static const struct broken {
    const char *file;
    int line;
    const char *path;    /* exact */
    const char *message; /* substring */
} broken[] = {
    {"syntax", 10, "", "YAML syntax error: did not find expected '-' indicator"},
    {"aliases", 3, "", "aliases (*a) are not allowed"},
    {"duplicate_yaml_key", 10, "", "duplicate key \"kind\" (first at line 9)"},
    {"missing_field", 7, "sites[0].kind", "missing required field"},
    {"unknown_key", 10, "sites[0].timzone", "unknown key (did you mean \"timezone\"?)"},
    {"wrong_type", 18, "sites[0].staff[0].roles", "expected a list, found a string"},
    {"duplicate_staff", 21, "sites[0].staff[1].id",
     "duplicate staff id \"T01-S1\" (first at line 15)"},
    {"unknown_department", 21, "sites[0].staff[1].department", "unknown department \"T01-ops\""},
    {"department_of_group", 23, "sites[0].staff[1].department",
     "department \"HQ\" belongs to the group, not to site T01"},
    {"tenant_site", 29, "tenants[0].site", "unknown site \"T99\""},
    {"bad_site_id", 7, "sites[0].id", "bad id \"t01-shanghai\""},
    {"bad_timezone", 10, "sites[0].timezone", "unknown time zone \"Asia/Shangai\""},
    {"bad_time", 19, "sites[0].staff[0].shifts[0].from", "bad time \"25:00\""},
    {"hours_bad", 11, "sites[0].opening_hours.sat", "bad hours \"09:00-21:00h\""},
    {"bad_date", 14, "sites[0].holidays[1].date", "bad date \"2026-02-30\""},
    {"bad_duration", 26, "sla_policies[0].clocks.reply", "bad duration \"10x\""},
    {"shift_overlap", 21, "sites[0].staff[0].shifts[1]", "overlaps shifts[0] on sun"},
    {"ladder_undeclared", 22, "sites[0].escalation.ladder[1]", "undeclared role \"area_manager\""},
    {"ladder_unheld", 23, "sites[0].escalation.ladder[2]",
     "nobody at site T01 or in the group holds role \"group_head\""},
    {"fallback_unheld", 27, "sites[0].escalation.fallback_role",
     "no staff of site T01 holds the fallback role \"duty_manager\""},
    {"fallback_gap", 22, "sites[0].escalation.fallback_role",
     "nobody holding duty_manager is on shift while the site is open: mon 17:30-21:00"},
    {"bad_hash", 20, "sites[0].staff[0].token_sha256", "a SHA-256 hash is 64 hex digits"},
    {"duplicate_key_hash", 35, "tenants[1].api_keys[0].sha256",
     "the same hash is already used by API key k1 of tenant T-T01-001 (line 31)"},
    {"webhook_url", 32, "tenants[0].webhook.url", "bad URL \"ftp://hooks.example/x\""},
    {"secret_env_missing", 32, "tenants[0].webhook.secret_env",
     "environment variable CW_TEST_UNSET_SECRET is not set"},
    {"unknown_enum", 25, "routing[1].category", "unknown category \"produt_quality\" (one of: "},
    {"no_other_route", 23, "routing", "no route for category other"},
    {"route_unservable", 12, "sites[0].departments", "no department can take category parking"},
    {"empty_patterns", 32, "classification_rules[1].patterns", "must not be empty"},
    {"bad_regex", 32, "classification_rules[1].regex[0]", "bad regex \"(rude|impolite\""},
    {"warnings_order", 26, "sla_policies[0].warnings[1]", "ascending order (50 after 80)"},
    {"no_default_policy", 25, "sla_policies", "no policy matches every case"},
    {"template_placeholder", 30, "sms_templates[0].en", "unknown placeholder {case_number}"},
    {"empty_match_list", 26, "sla_policies[0].match.categories",
     "must not be empty (leave the key out for any)"},
    {"staff_role_undeclared", 21, "sites[0].staff[1].roles[1]", "undeclared role \"cashier\""},
    {"no_callback", 7, "sites[0].callback_department", "nobody makes the follow-up calls"},
    {"duplicate_template", 29, "sms_templates[1].id",
     "duplicate template \"case_received\" (first at line 28)"},
    {"template_override_only", 28, "sms_templates[0]",
     "template \"case_received\" for site T01 has no chain-wide template to override"},
    {"role_action_unknown", 5, "roles[2].actions[1]", "unknown action \"escalate\" (one of: "},
    {"site_staff_sites", 21, "sites[0].staff[1].sites",
     "only group staff list sites: a site's staff see their own site"},
    {"group_staff_unknown_site", 10, "group.staff[0].sites[1]", "unknown site \"T02\""},
};

START_TEST(broken_file_is_refused_with_where_and_why)
{
    const struct broken *b = &broken[_i];
    char path[256];
    snprintf(path, sizeof path, BROKEN "%s.yaml", b->file);
    unsetenv("CW_TEST_UNSET_SECRET");
    struct problems p;
    cw_chain *c = load(path, &p);
    if (p.n != 1) problems_print(&p);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(p.n, 1); /* one defect, one report: nothing echoes */
    ck_assert_str_eq(p.v[0].file, path);
    ck_assert_int_eq(p.v[0].line, b->line);
    ck_assert_str_eq(p.v[0].path, b->path);
    ck_assert_msg(strstr(p.v[0].message, b->message), "%s: message \"%s\" lacks \"%s\"", b->file,
                  p.v[0].message, b->message);
    problems_release(&p);
}
END_TEST

START_TEST(every_independent_problem_is_reported)
{
    static const struct {
        int line;
        const char *path, *message;
    } want[] = {
        {10, "sites[0].timzone", "unknown key"},
        {20, "sites[0].staff[0].shifts[0].from", "bad time \"8:3\""},
        {27, "sla_policies[0].clocks.resolution", "bad duration \"2x\""},
        {27, "sla_policies[0].warnings[1]", "a warning is a percent of the clock, 1 to 99"},
        {30, "tenants[0].site", "unknown site \"T99\""},
        {34, "sms_templates[0].zh", "unknown placeholder {oops}"},
    };
    struct problems p;
    ck_assert_ptr_null(load(BROKEN "multi.yaml", &p));
    if (p.n != (int)(sizeof want / sizeof want[0])) problems_print(&p);
    ck_assert_int_eq(p.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < p.n; i++) { /* in line order */
        ck_assert_int_eq(p.v[i].line, want[i].line);
        ck_assert_str_eq(p.v[i].path, want[i].path);
        ck_assert_ptr_nonnull(strstr(p.v[i].message, want[i].message));
    }
    problems_release(&p);
}
END_TEST

static void count_only(const struct cw_chain_error *e, void *arg)
{
    (void)e;
    ++*(int *)arg;
}

START_TEST(report_format_and_missing_file)
{
    struct cw_chain_error e = {.file = "deploy/chain.example.yaml",
                               .line = 42,
                               .path = "sites[1].timezone",
                               .message = "unknown time zone \"Asia/Shangai\""};
    char buf[256];
    cw_chain_error_format(&e, buf, sizeof buf);
    ck_assert_str_eq(buf, "deploy/chain.example.yaml:42: sites[1].timezone: unknown time zone "
                          "\"Asia/Shangai\"");
    e = (struct cw_chain_error){.file = "x.yaml", .path = "", .message = "cannot open"};
    cw_chain_error_format(&e, buf, sizeof buf);
    ck_assert_str_eq(buf, "x.yaml: cannot open");

    struct problems p;
    ck_assert_ptr_null(load("tests/data/chain/no-such-file.yaml", &p));
    ck_assert_int_eq(p.n, 1);
    ck_assert_int_eq(p.v[0].line, 0);
    ck_assert_ptr_nonnull(strstr(p.v[0].message, "cannot open"));
    problems_release(&p);
    int n = 0;
    ck_assert_ptr_null(cw_chain_load(BROKEN "bad_duration.yaml", count_only, &n));
    ck_assert_int_eq(n, 1);
    cw_chain_free(NULL);
}
END_TEST

/* A file with hundreds of problems: the first 100 are reported, then how many more. */
START_TEST(reports_are_bounded)
{
    char path[] = "/tmp/cw-chain-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "chain: {id: t, name: t, timezone: Asia/Shanghai}\nroles:\n");
    for (int i = 0; i < 150; i++) fprintf(f, "  - {id: Bad-%d, name: x}\n", i);
    fclose(f);
    struct problems p;
    ck_assert_ptr_null(load(path, &p));
    unlink(path);
    ck_assert_int_eq(p.n, 101);
    ck_assert_int_eq(p.v[0].line, 3);
    ck_assert_ptr_nonnull(strstr(p.v[100].message, "more problems not shown"));
    problems_release(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("chain");
    TCase *ex = tcase_create("example");
    tcase_add_checked_fixture(ex, example_setup, example_teardown);
    tcase_add_test(ex, example_loads_without_problems);
    tcase_add_test(ex, example_sites_and_calendars);
    tcase_add_test(ex, example_staff_by_id_and_token);
    tcase_add_test(ex, example_visibility_and_actions);
    tcase_add_test(ex, example_tenants_by_key);
    tcase_add_test(ex, example_ladders);
    tcase_add_test(ex, example_templates_override_by_site_and_language);
    tcase_add_test(ex, example_policies_rules_routes);
    suite_add_tcase(s, ex);
    TCase *ok = tcase_create("valid");
    tcase_add_test(ok, minimal_chain_and_defaults);
    tcase_add_test(ok, webhook_secret_from_the_environment);
    tcase_add_test(ok, hash_secret_is_sha256_hex);
    tcase_add_test(ok, report_format_and_missing_file);
    tcase_add_test(ok, reports_are_bounded);
    suite_add_tcase(s, ok);
    TCase *bad = tcase_create("broken");
    tcase_add_loop_test(bad, broken_file_is_refused_with_where_and_why, 0,
                        (int)(sizeof broken / sizeof broken[0]));
    tcase_add_test(bad, every_independent_problem_is_reported);
    suite_add_tcase(s, bad);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
