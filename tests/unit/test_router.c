/* The router's modules without its main: classification semantics on a small chain written
 * for each rule (evaluation order, the first rule per field, word boundaries, conditions,
 * hints, full-width forms, bad input). The accuracy on the labelled set is
 * tests/integration/classify_accuracy. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "classify.h"
#include "assign.h"
#include "plan.h"
#include "testing.h"

#include "router_chain.h"

static cw_chain *chain;
static rt_classifier *cls;

static void open_classifier(void)
{
    char err[256];
    chain = load_yaml(rules_yaml);
    cls = rt_classifier_new(chain, NULL, err, sizeof err);
    ck_assert_msg(cls != NULL, "%s", err);
}

static void close_classifier(void)
{
    rt_classifier_free(cls);
    cw_chain_free(chain);
}

/* Classifies text from the web form at SH01 (the common case). */
static struct rt_verdict classify_on(const char *text, int channel, const char *site)
{
    struct rt_case_text in = {
        .text = text, .len = strlen(text), .channel = channel, .site = cw_chain_site(chain, site)};
    struct rt_verdict v;
    char err[128];
    ck_assert_msg(rt_classify(cls, &in, &v, err, sizeof err) == 0, "%s: %s", text, err);
    return v;
}

static struct rt_verdict classify(const char *text)
{
    return classify_on(text, CASEWIRE__V1__CHANNEL__CHANNEL_WEB, "SH01");
}

START_TEST(emergency_rule_decides_and_says_why)
{
    open_classifier();
    struct rt_verdict v = classify("收银台旁边好像着火了，有烟");
    ck_assert_int_eq(v.urgency, CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY);
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY);
    ck_assert_str_eq(v.why[RT_URGENCY].rule_id, "fire");
    ck_assert_str_eq(v.why[RT_URGENCY].matched, "着火");
    ck_assert_str_eq(v.why[RT_VALIDITY].rule_id, "default");
    ck_assert_int_eq(v.rules_matched, 1);
    /* the first keyword in the text is the one named */
    v = classify("a burning smell, maybe a fire");
    ck_assert_str_eq(v.why[RT_CATEGORY].matched, "burning smell");
    close_classifier();
}
END_TEST

START_TEST(latin_keywords_match_whole_words_with_english_endings)
{
    open_classifier();
    static const struct {
        const char *text;
        int category;
    } cases[] = {
        {"I saw a rat in the food court", CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS},
        {"RATS everywhere!!", CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS},
        {"the toilets on 3F", CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS},
        {"B1的toilet没纸", CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS},
        {"please separate the queues", CASEWIRE__V1__CATEGORY__CATEGORY_OTHER},
        {"the ratio of staff is low", CASEWIRE__V1__CATEGORY__CATEGORY_OTHER},
        {"toiletries are expensive", CASEWIRE__V1__CATEGORY__CATEGORY_OTHER},
        {"a+b", CASEWIRE__V1__CATEGORY__CATEGORY_PRICE_DISPUTE}, /* punctuation is literal */
        {"aab", CASEWIRE__V1__CATEGORY__CATEGORY_OTHER},
        {"Ｔｏｉｌｅｔ", CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS}, /* full-width */
        {"厕所有老鼠", CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS},   /* Chinese: anywhere */
        /* a final e, consonant-y or doubled consonant takes its ending */
        {"someone is smoking by the exit", CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY},
        {"it smoked for a minute", CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY},
        {"Smokes!", CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY},
        {"smok", CASEWIRE__V1__CATEGORY__CATEGORY_OTHER},
        {"a mouse scurried past", CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS},
        {"mice scurrying", CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS},
        {"water dripping from the roof", CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS},
        {"it dripped", CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS},
        {"dripper", CASEWIRE__V1__CATEGORY__CATEGORY_OTHER},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rt_verdict v = classify(cases[i].text);
        ck_assert_msg(v.category == cases[i].category, "\"%s\": category %d, want %d",
                      cases[i].text, v.category, cases[i].category);
    }
    close_classifier();
}
END_TEST

/* Keywords and regexes are folded like the text, so a rule written with full-width
 * punctuation matches it in either width, and a folded bracket stays a literal. */
START_TEST(full_width_punctuation_in_rules_matches)
{
    open_classifier();
    static const struct {
        const char *text;
        int type;
    } cases[] = {
        {"厕所在哪？", CASEWIRE__V1__CASE_TYPE__CASE_TYPE_INQUIRY},
        {"厕所在哪?", CASEWIRE__V1__CASE_TYPE__CASE_TYPE_INQUIRY},
        {"厕所在哪", CASEWIRE__V1__CASE_TYPE__CASE_TYPE_COMPLAINT},
        {"（急）请回电", CASEWIRE__V1__CASE_TYPE__CASE_TYPE_INQUIRY},
        {"(急)请回电", CASEWIRE__V1__CASE_TYPE__CASE_TYPE_INQUIRY},
        {"急，请回电", CASEWIRE__V1__CASE_TYPE__CASE_TYPE_COMPLAINT}, /* not a group "(急)" */
        {"（问一下", CASEWIRE__V1__CASE_TYPE__CASE_TYPE_INQUIRY},     /* escaped: literal */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rt_verdict v = classify(cases[i].text);
        ck_assert_msg(v.type == cases[i].type, "\"%s\": type %d, want %d", cases[i].text, v.type,
                      cases[i].type);
    }
    close_classifier();
}
END_TEST

START_TEST(first_rule_to_set_a_field_decides_it)
{
    open_classifier();
    /* fire (100) takes category and urgency; pests (50) matched too but decides nothing */
    struct rt_verdict v = classify("there is a rat and a fire in the toilet");
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY);
    ck_assert_int_eq(v.rules_matched, 2);
    /* praise sets only the type; pests still sets the category */
    v = classify("thank you for removing the rat so fast");
    ck_assert_int_eq(v.type, CASEWIRE__V1__CASE_TYPE__CASE_TYPE_PRAISE);
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS);
    ck_assert_str_eq(v.why[RT_TYPE].rule_id, "praise");
    ck_assert_str_eq(v.why[RT_CATEGORY].rule_id, "pests");
    /* a regex */
    v = classify("结账的时候多收了 12 元");
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_PRICE_DISPUTE);
    ck_assert_str_eq(v.why[RT_CATEGORY].matched, "多收(了)?[[:space:]]*[0-9]+[[:space:]]*元");
    v = classify("下雨天门口很滑");
    ck_assert_int_eq(v.validity, CASEWIRE__V1__VALIDITY__VALIDITY_INVALID);
    close_classifier();
}
END_TEST

START_TEST(conditions_on_channel_and_site)
{
    open_classifier();
    struct rt_verdict v = classify("店里漏水了");
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_OTHER);
    ck_assert_int_eq(v.rules_matched, 0);
    v = classify_on("店里漏水了", CASEWIRE__V1__CHANNEL__CHANNEL_TENANT_API, "SH01");
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_ENVIRONMENT);
    ck_assert_int_eq(v.urgency, CASEWIRE__V1__URGENCY__URGENCY_IMPORTANT);
    ck_assert_int_eq(v.type, CASEWIRE__V1__CASE_TYPE__CASE_TYPE_REQUEST);
    v = classify_on("杭州", CASEWIRE__V1__CHANNEL__CHANNEL_WEB, "SH01");
    ck_assert_int_eq(v.department_kind, CW_DEPT_UNSPECIFIED);
    ck_assert(!v.why[RT_DEPARTMENT].set);
    v = classify_on("杭州", CASEWIRE__V1__CHANNEL__CHANNEL_WEB, "HZ01");
    ck_assert_int_eq(v.department_kind, CW_DEPT_SECURITY);
    ck_assert_str_eq(v.why[RT_DEPARTMENT].rule_id, "hz-only");
    close_classifier();
}
END_TEST

START_TEST(hints_and_stops_trading_fill_what_rules_leave)
{
    open_classifier();
    struct rt_case_text in = {.text = "请尽快处理",
                              .len = strlen("请尽快处理"),
                              .channel = CASEWIRE__V1__CHANNEL__CHANNEL_TENANT_API,
                              .site = cw_chain_site(chain, "SH01"),
                              .has_tenant = true,
                              .type_hint = CASEWIRE__V1__CASE_TYPE__CASE_TYPE_REQUEST,
                              .category_hint = CASEWIRE__V1__CATEGORY__CATEGORY_PARKING,
                              .stops_trading = true};
    struct rt_verdict v;
    char err[128];
    ck_assert_int_eq(rt_classify(cls, &in, &v, err, sizeof err), 0);
    ck_assert_int_eq(v.type, CASEWIRE__V1__CASE_TYPE__CASE_TYPE_REQUEST);
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_PARKING);
    ck_assert_str_eq(v.why[RT_CATEGORY].rule_id, "hint");
    ck_assert_int_eq(v.urgency, CASEWIRE__V1__URGENCY__URGENCY_IMPORTANT);
    ck_assert_str_eq(v.why[RT_URGENCY].rule_id, "stops_trading");
    /* a rule beats the hint; an emergency stays an emergency */
    in.text = "fire in the unit";
    in.len = strlen(in.text);
    ck_assert_int_eq(rt_classify(cls, &in, &v, err, sizeof err), 0);
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY);
    ck_assert_int_eq(v.urgency, CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY);
    /* out-of-range hints are ignored */
    in.text = "hello";
    in.len = 5;
    in.type_hint = 99;
    in.category_hint = -1;
    in.stops_trading = false;
    ck_assert_int_eq(rt_classify(cls, &in, &v, err, sizeof err), 0);
    ck_assert_int_eq(v.type, CASEWIRE__V1__CASE_TYPE__CASE_TYPE_COMPLAINT);
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_OTHER);
    ck_assert_int_eq(v.urgency, CASEWIRE__V1__URGENCY__URGENCY_GENERAL);
    close_classifier();
}
END_TEST

START_TEST(bad_text_is_refused_and_long_text_is_cut_at_a_character)
{
    open_classifier();
    static const char *const bad[] = {"\xff fire", "fire \xe7\x9d", "\xc0\xaf", "\xed\xa0\x80",
                                      "\xf4\x90\x80\x80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct rt_case_text in = {.text = bad[i], .len = strlen(bad[i]), .channel = 1};
        struct rt_verdict v;
        char err[128] = "";
        ck_assert_int_eq(rt_classify(cls, &in, &v, err, sizeof err), -1);
        ck_assert_str_eq(err, "text is not valid UTF-8");
    }
    /* 3-byte characters up to past the limit, then a keyword: not read; one before it is */
    size_t n = RT_CLASSIFY_MAX_TEXT + 64;
    char *text = malloc(n + 16);
    ck_assert_ptr_nonnull(text);
    size_t len = 0;
    while (len + 3 <= n) len += (size_t)sprintf(text + len, "好");
    len += (size_t)sprintf(text + len, " fire");
    struct rt_case_text in = {.text = text, .len = len, .channel = 1};
    struct rt_verdict v;
    char err[128];
    ck_assert_int_eq(rt_classify(cls, &in, &v, err, sizeof err), 0);
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_OTHER);
    memcpy(text, "fire  ", 6); /* in place of two 3-byte characters */
    ck_assert_int_eq(rt_classify(cls, &in, &v, err, sizeof err), 0);
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY);
    free(text);
    close_classifier();
}
END_TEST

START_TEST(a_regex_vectorscan_cannot_compile_names_its_rule)
{
    /* POSIX accepts it (the chain loads); it matches the empty text, which Vectorscan
     * refuses: the router must not start with a rule that would never be read right. */
    cw_chain *c = load_yaml(CHAIN_HEAD SITE("SH01") CHAIN_TAIL "classification_rules:\n"
                                                               "  - id: empty-match\n"
                                                               "    regex: [\"(a|b)*\"]\n"
                                                               "    set: {category: other}\n");
    char err[256] = "";
    rt_classifier *x = rt_classifier_new(c, NULL, err, sizeof err);
    ck_assert_ptr_null(x);
    ck_assert_msg(strstr(err, "classification rule empty-match: \"(a|b)*\"") != NULL, "%s", err);
    cw_chain_free(c);
    /* no rules at all: everything is the default */
    c = load_yaml(CHAIN_HEAD SITE("SH01") CHAIN_TAIL);
    x = rt_classifier_new(c, NULL, err, sizeof err);
    ck_assert_msg(x != NULL, "%s", err);
    ck_assert_int_eq(rt_classifier_expressions(x), 0);
    struct rt_case_text in = {.text = "fire", .len = 4, .channel = 1};
    struct rt_verdict v;
    ck_assert_int_eq(rt_classify(x, &in, &v, err, sizeof err), 0);
    ck_assert_int_eq(v.category, CASEWIRE__V1__CATEGORY__CATEGORY_OTHER);
    ck_assert_int_eq(v.rules_matched, 0);
    rt_classifier_free(x);
    cw_chain_free(c);
}
END_TEST

/* ---- clocks ---- */

/* clang-format off */
#define HOURS_SITE(ID, TZ)                                                                         \
    "  - id: " ID "\n"                                                                             \
    "    name: 店" ID "\n"                                                                         \
    "    kind: mall\n"                                                                             \
    "    timezone: " TZ "\n"                                                                       \
    "    opening_hours: {mon: \"10:00-22:00\", tue: \"10:00-22:00\", wed: \"10:00-22:00\",\n"     \
    "                    thu: \"10:00-22:00\", fri: \"10:00-22:00\", sat: \"10:00-22:00\",\n"     \
    "                    sun: \"10:00-22:00\"}\n"                                                  \
    "    working_days: [mon, tue, wed, thu, fri]\n"                                                \
    "    holidays: [{date: 2027-01-01, name: 元旦}]\n"                                              \
    "    departments: [{id: " ID "-desk, name: 服务台, kind: service_desk}]\n"                     \
    "    staff:\n"                                                                                 \
    "      - {id: " ID "-S1, name: 张三, department: " ID "-desk,\n"                               \
    "         roles: [desk_agent, duty_manager],\n"                                                \
    "         shifts: [{days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"24:00\"}]}\n" \
    "    escalation: {ladder: [desk_agent], fallback_role: duty_manager}\n"

static const char plan_yaml[] =
    CHAIN_HEAD HOURS_SITE("SH01", "Asia/Shanghai") HOURS_SITE("BER", "Europe/Berlin")
    "routing:\n"
    "  - {category: other, departments: [service_desk]}\n"
    "sla_policies:\n"
    "  - {id: emergency, priority: 100, match: {urgencies: [emergency]},\n"
    "     clocks: {handoff: 5m, reply: 1h, resolution: 8wh, followup: 3h}}\n"
    "  - {id: tenant-trading, priority: 90, match: {channels: [tenant_api], urgencies: [important]},\n"
    "     clocks: {tenant_trading: 1h, reply: 24h}}\n"
    "  - {id: after-sales, priority: 70, match: {categories: [product_quality]},\n"
    "     clocks: {handoff: 10m, feedback: 1wd, resolution: 8wh, followup: 3h}}\n"
    "  - {id: default, clocks: {handoff: 10m, reply: 24h, followup: 3h}}\n";
/* clang-format on */

/* "2026-12-31T21:00:00+08:00" -> Unix ms, by timegm: independent of the calendar. */
static int64_t at(const char *rfc3339)
{
    struct tm tm = {0};
    int sign_h, m;
    char sign;
    ck_assert_int_eq(sscanf(rfc3339, "%d-%d-%dT%d:%d:%d%c%d:%d", &tm.tm_year, &tm.tm_mon,
                            &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &sign, &sign_h, &m),
                     9);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t off = (int64_t)(sign_h * 60 + m) * 60 * (sign == '-' ? -1 : 1);
    return ((int64_t)timegm(&tm) - off) * 1000;
}

static cw_calendar *plan_cal;

static const struct rt_clock *plan_for(const char *site, int category, int urgency, int channel,
                                       const char *start, int64_t promised, struct rt_plan *p,
                                       const char *want_policy)
{
    char err[256];
    chain = load_yaml(plan_yaml);
    plan_cal = cw_calendar_new(chain, err, sizeof err);
    ck_assert_msg(plan_cal != NULL, "%s", err);
    struct cw_case_facts f = {.type = CASEWIRE__V1__CASE_TYPE__CASE_TYPE_COMPLAINT,
                              .category = category,
                              .urgency = urgency,
                              .validity = CASEWIRE__V1__VALIDITY__VALIDITY_VALID,
                              .channel = channel,
                              .site = cw_chain_site(chain, site)};
    ck_assert_int_eq(rt_plan_clocks(chain, plan_cal, &f, at(start), promised, p), 0);
    ck_assert_str_eq(p->policy->id, want_policy);
    return p->clocks;
}

static void plan_done(void)
{
    cw_calendar_free(plan_cal);
    cw_chain_free(chain);
}

static const struct rt_clock *clock_of(const struct rt_plan *p, int kind)
{
    for (size_t i = 0; i < p->nclocks; i++)
        if (p->clocks[i].kind == kind) return &p->clocks[i];
    return NULL;
}

#define K(name) CASEWIRE__V1__CLOCK_KIND__CLOCK_##name
#define PRODUCT CASEWIRE__V1__CATEGORY__CATEGORY_PRODUCT_QUALITY
#define GENERAL CASEWIRE__V1__URGENCY__URGENCY_GENERAL
#define WEB CASEWIRE__V1__CHANNEL__CHANNEL_WEB

START_TEST(working_time_clocks_skip_closing_time_weekends_month_ends_and_the_new_year_holiday)
{
    struct rt_plan p;
    /* Thursday 21:00, the last working hour of 2026: 1 h today; Friday is New Year's Day
     * (a holiday), then the weekend; Monday 4 January 10:00 + 7 h. */
    plan_for("SH01", PRODUCT, GENERAL, WEB, "2026-12-31T21:00:00+08:00", 0, &p, "after-sales");
    ck_assert_int_eq(p.nclocks, 4);
    ck_assert_int_eq(clock_of(&p, K(RESOLUTION))->due_ms, at("2027-01-04T17:00:00+08:00"));
    ck_assert(clock_of(&p, K(RESOLUTION))->working_time);
    ck_assert_int_eq(clock_of(&p, K(RESOLUTION))->duration_ms, 8 * 3600000LL);
    /* the next working day, same time of day */
    ck_assert_int_eq(clock_of(&p, K(FEEDBACK))->due_ms, at("2027-01-04T21:00:00+08:00"));
    /* wall-clock time: ten minutes, closed or not */
    ck_assert_int_eq(clock_of(&p, K(HANDOFF))->due_ms, at("2026-12-31T21:10:00+08:00"));
    ck_assert(!clock_of(&p, K(HANDOFF))->working_time);
    /* follow-up: planned, starts on resolve */
    ck_assert_int_eq(clock_of(&p, K(FOLLOWUP))->due_ms, 0);
    ck_assert_int_eq(clock_of(&p, K(FOLLOWUP))->duration_ms, 3 * 3600000LL);
    ck_assert_ptr_null(clock_of(&p, K(REPLY)));
    ck_assert(!p.calendar_fallback);
    plan_done();
    /* Month end on a weekday: Monday 31 August 21:00, 1 h; Tuesday 1 September 10:00 + 7 h. */
    plan_for("SH01", PRODUCT, GENERAL, WEB, "2026-08-31T21:00:00+08:00", 0, &p, "after-sales");
    ck_assert_int_eq(clock_of(&p, K(RESOLUTION))->due_ms, at("2026-09-01T17:00:00+08:00"));
    ck_assert_int_eq(clock_of(&p, K(FEEDBACK))->due_ms, at("2026-09-01T21:00:00+08:00"));
    plan_done();
    /* Month end on a Friday: 31 July 21:00, 1 h; the weekend is off; Monday 3 August. */
    plan_for("SH01", PRODUCT, GENERAL, WEB, "2026-07-31T21:00:00+08:00", 0, &p, "after-sales");
    ck_assert_int_eq(clock_of(&p, K(RESOLUTION))->due_ms, at("2026-08-03T17:00:00+08:00"));
    ck_assert_int_eq(clock_of(&p, K(FEEDBACK))->due_ms, at("2026-08-03T21:00:00+08:00"));
    plan_done();
}
END_TEST

START_TEST(a_case_filed_while_closed_starts_at_the_next_opening_in_its_own_time_zone)
{
    struct rt_plan p;
    /* Monday 23:30 in Shanghai: Tuesday 10:00 + 8 h */
    plan_for("SH01", PRODUCT, GENERAL, WEB, "2026-11-23T23:30:00+08:00", 0, &p, "after-sales");
    ck_assert_int_eq(clock_of(&p, K(RESOLUTION))->due_ms, at("2026-11-24T18:00:00+08:00"));
    plan_done();
    /* the same instant is 16:30 on Monday in Berlin: 5.5 h today, 2.5 h on Tuesday */
    plan_for("BER", PRODUCT, GENERAL, WEB, "2026-11-23T23:30:00+08:00", 0, &p, "after-sales");
    ck_assert_int_eq(clock_of(&p, K(RESOLUTION))->due_ms, at("2026-11-24T12:30:00+01:00"));
    plan_done();
}
END_TEST

START_TEST(the_policy_follows_the_classification_and_the_reply_keeps_the_promise)
{
    struct rt_plan p;
    int64_t promise = at("2026-11-24T15:30:00+08:00");
    plan_for("SH01", PRODUCT, CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY, WEB,
             "2026-11-24T15:00:00+08:00", promise, &p, "emergency");
    ck_assert_int_eq(clock_of(&p, K(HANDOFF))->due_ms, at("2026-11-24T15:05:00+08:00"));
    ck_assert_int_eq(clock_of(&p, K(REPLY))->due_ms, promise); /* 30 min promised, policy 1 h */
    plan_done();
    plan_for("SH01", CASEWIRE__V1__CATEGORY__CATEGORY_OTHER, GENERAL, WEB,
             "2026-11-24T15:00:00+08:00", at("2026-11-26T15:00:00+08:00"), &p, "default");
    ck_assert_int_eq(clock_of(&p, K(REPLY))->due_ms, at("2026-11-25T15:00:00+08:00"));
    plan_done();
    plan_for("SH01", CASEWIRE__V1__CATEGORY__CATEGORY_ENVIRONMENT,
             CASEWIRE__V1__URGENCY__URGENCY_IMPORTANT, CASEWIRE__V1__CHANNEL__CHANNEL_TENANT_API,
             "2026-11-24T15:00:00+08:00", 0, &p, "tenant-trading");
    ck_assert_int_eq(p.nclocks, 2);
    ck_assert_int_eq(clock_of(&p, K(TENANT_TRADING))->due_ms, at("2026-11-24T16:00:00+08:00"));
    plan_done();
}
END_TEST

/* ---- assignment ---- */

/* clang-format off */
static const char assign_yaml[] =
    "chain: {id: t, name: 测试集团, timezone: Asia/Shanghai}\n"
    "roles:\n"
    "  - {id: desk_agent, name: 服务台}\n"
    "  - {id: duty_manager, name: 值班经理}\n"
    "  - {id: floor_supervisor, name: 楼层主管}\n"
    "  - {id: engineer, name: 工程师}\n"
    "  - {id: security_guard, name: 保安}\n"
    "group:\n"
    "  departments: [{id: HQ-sec, name: 集团安保, kind: security}]\n"
    "  staff:\n"
    "    - {id: G1, name: 集团保安, department: HQ-sec, roles: [security_guard],\n"
    "       shifts: [{days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"24:00\"}]}\n"
    "sites:\n"
    "  - id: SH01\n"
    "    name: 上海店\n"
    "    kind: mall\n"
    "    opening_hours: {mon: \"10:00-22:00\", tue: \"10:00-22:00\", wed: \"10:00-22:00\",\n"
    "                    thu: \"10:00-22:00\", fri: \"10:00-22:00\", sat: \"10:00-22:00\",\n"
    "                    sun: \"10:00-22:00\"}\n"
    "    departments:\n"
    "      - {id: SH01-desk, name: 服务台, kind: service_desk}\n"
    "      - {id: SH01-floor, name: 楼层, kind: floor}\n"
    "      - {id: SH01-eng, name: 工程部, kind: engineering}\n"
    "    staff:\n"
    "      - {id: S1, name: 张一, department: SH01-desk, roles: [desk_agent, duty_manager],\n"
    "         shifts: [{days: [mon, tue, wed, thu, fri, sat, sun], from: \"10:00\", to: \"22:00\"}]}\n"
    "      - {id: S2, name: 张二, department: SH01-floor, roles: [floor_supervisor],\n"
    "         shifts: [{days: [mon, tue, wed, thu, fri], from: \"10:00\", to: \"16:00\"}]}\n"
    "      - {id: S3, name: 张三, department: SH01-floor, roles: [floor_supervisor],\n"
    "         shifts: [{days: [mon, tue, wed, thu, fri], from: \"16:00\", to: \"22:00\"}]}\n"
    "      - {id: S4, name: 张四, department: SH01-eng, roles: [engineer]}\n"
    "    escalation: {ladder: [desk_agent], fallback_role: duty_manager}\n"
    "tenants:\n"
    "  - {id: T1, site: SH01, name: 茶店}\n"
    "routing:\n"
    "  - {category: product_quality, departments: [tenant, floor, operations]}\n"
    "  - {category: environment, departments: [engineering, operations]}\n"
    "  - {category: safety, departments: [security]}\n"
    "  - {category: other, departments: [service_desk]}\n"
    "sla_policies:\n"
    "  - {id: default, clocks: {reply: 24h}}\n";
/* clang-format on */

START_TEST(assignment_follows_route_shifts_and_fallback)
{
    char err[256];
    chain = load_yaml(assign_yaml);
    cw_calendar *cal = cw_calendar_new(chain, err, sizeof err);
    ck_assert_msg(cal != NULL, "%s", err);
    const struct cw_site *sh = cw_chain_site(chain, "SH01");
    const struct cw_tenant *t1 = cw_chain_tenant(chain, "T1");
    static const struct {
        const char *why, *when;
        int category;
        enum cw_dept_kind rule_kind;
        bool tenant;
        const char *department, *owners; /* owners: candidate ids, space-separated */
        enum rt_pick pick;
    } cases[] = {
        {"a product complaint about a tenant: the tenant and the floor on duty",
         "2026-11-23T11:00:00+08:00", 1, CW_DEPT_UNSPECIFIED, true, "SH01-floor", "S2",
         RT_PICK_ON_DUTY},
        {"the late floor shift", "2026-11-23T17:00:00+08:00", 1, CW_DEPT_UNSPECIFIED, true,
         "SH01-floor", "S3", RT_PICK_ON_DUTY},
        {"Saturday: no floor shift, the duty manager on duty", "2026-11-28T11:00:00+08:00", 1,
         CW_DEPT_UNSPECIFIED, false, "SH01-floor", "S1", RT_PICK_FALLBACK_ON_DUTY},
        {"an engineer without shifts is never on duty", "2026-11-23T11:00:00+08:00", 3,
         CW_DEPT_UNSPECIFIED, false, "SH01-eng", "S1", RT_PICK_FALLBACK_ON_DUTY},
        {"closed at night: every holder of the fallback role", "2026-11-23T23:00:00+08:00", 11,
         CW_DEPT_UNSPECIFIED, false, "SH01-desk", "S1", RT_PICK_FALLBACK_HOLDER},
        {"a kind the site lacks: the group's department", "2026-11-23T23:00:00+08:00", 9,
         CW_DEPT_UNSPECIFIED, false, "HQ-sec", "G1", RT_PICK_ON_DUTY},
        {"a rule's department kind comes first", "2026-11-23T17:00:00+08:00", 11, CW_DEPT_FLOOR,
         false, "SH01-floor", "S3", RT_PICK_ON_DUTY},
        {"a rule's kind the site has not: the route", "2026-11-23T11:00:00+08:00", 11,
         CW_DEPT_PARKING, false, "SH01-desk", "S1", RT_PICK_ON_DUTY},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct rt_assignment a;
        ck_assert_int_eq(rt_assign(chain, cal, sh, cases[i].tenant ? t1 : NULL, cases[i].category,
                                   cases[i].rule_kind, at(cases[i].when), &a),
                         0);
        char got[128] = "";
        for (size_t k = 0; k < a.ncandidates; k++)
            snprintf(got + strlen(got), sizeof got - strlen(got), "%s%s", k ? " " : "",
                     a.candidates[k]->id);
        ck_assert_msg(a.department && strcmp(a.department->id, cases[i].department) == 0,
                      "%s: department %s", cases[i].why, a.department ? a.department->id : "-");
        ck_assert_msg(strcmp(got, cases[i].owners) == 0, "%s: candidates \"%s\"", cases[i].why,
                      got);
        ck_assert_msg(a.pick == cases[i].pick, "%s: pick %s", cases[i].why, rt_pick_name(a.pick));
        ck_assert_msg((a.tenant == t1) == cases[i].tenant, "%s: tenant", cases[i].why);
    }
    cw_calendar_free(cal);
    cw_chain_free(chain);
}
END_TEST

CW_TEST_MAIN("router", emergency_rule_decides_and_says_why,
             latin_keywords_match_whole_words_with_english_endings,
             full_width_punctuation_in_rules_matches, first_rule_to_set_a_field_decides_it,
             conditions_on_channel_and_site, hints_and_stops_trading_fill_what_rules_leave,
             bad_text_is_refused_and_long_text_is_cut_at_a_character,
             a_regex_vectorscan_cannot_compile_names_its_rule,
             working_time_clocks_skip_closing_time_weekends_month_ends_and_the_new_year_holiday,
             a_case_filed_while_closed_starts_at_the_next_opening_in_its_own_time_zone,
             the_policy_follows_the_classification_and_the_reply_keeps_the_promise,
             assignment_follows_route_shifts_and_fallback)
