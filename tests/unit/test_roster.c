/* The roster: who is on duty, from shifts read on the site's clock. Each test is a table of
 * cases, each with the reason it is right. Instants are RFC 3339 literals with the site's
 * offset (at() turns one into Unix ms with timegm, independently of the calendar), so the
 * local time a case is about can be read off the literal. 23 November 2026 is a Monday; the
 * Berlin clocks go forward on Sunday 29 March 2026 (02:00 -> 03:00) and back on Sunday
 * 25 October 2026 (03:00 -> 02:00). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "roster.h"
#include "chain_yaml.h"
#include "testing.h"

/* Kept as YAML, not as clang-format would lay it out. */
/* clang-format off */
#define WEEKDAYS "[mon, tue, wed, thu, fri]"
#define ALL_WEEK "[mon, tue, wed, thu, fri, sat, sun]"
#define EVERY_DAY(H)                                                                               \
    "{mon: \"" H "\", tue: \"" H "\", wed: \"" H "\", thu: \"" H "\", fri: \"" H "\",\n"          \
    "                    sat: \"" H "\", sun: \"" H "\"}\n"

static const char chain_yaml[] =
    "chain: {id: rt, name: 排班测试, timezone: Asia/Shanghai}\n"
    "roles:\n"
    "  - {id: desk_agent, name: 服务台}\n"
    "  - {id: duty_manager, name: 值班经理}\n"
    "  - {id: floor_supervisor, name: 楼层主管}\n"
    "  - {id: group_head, name: 集团总经理}\n"
    "  - {id: auditor, name: 稽查员}\n" /* declared, held by nobody */
    /* Head office: management (with a floor supervisor on call around the clock) and the
     * 400 call centre; no department of kind service_desk, floor or operations. */
    "group:\n"
    "  departments:\n"
    "    - {id: HQ-mgmt, name: 集团总部, kind: management}\n"
    "    - {id: HQ-400, name: 400热线, kind: call_center}\n"
    "  staff:\n"
    "    - {id: HQ-1, name: 陈一, department: HQ-mgmt, roles: [group_head],\n"
    "       shifts: [{days: " WEEKDAYS ", from: \"09:00\", to: \"18:00\"}]}\n"
    "    - {id: HQ-2, name: 陈二, department: HQ-mgmt, roles: [group_head]}\n"
    "    - {id: HQ-3, name: 陈三, department: HQ-400, roles: [desk_agent],\n"
    "       shifts: [{days: " ALL_WEEK ", from: \"08:00\", to: \"20:00\"}]}\n"
    "    - {id: HQ-4, name: 陈四, department: HQ-mgmt, roles: [floor_supervisor],\n"
    "       shifts: [{days: " ALL_WEEK ", from: \"00:00\", to: \"24:00\"}]}\n"
    "sites:\n"
    /* Shanghai (+08:00, no DST); no call centre and no management of its own. */
    "  - id: SH01\n"
    "    name: 上海店\n"
    "    kind: mall\n"
    "    opening_hours: " EVERY_DAY("10:00-22:00")
    "    departments:\n"
    "      - {id: SH01-desk, name: 服务台, kind: service_desk}\n"
    "      - {id: SH01-floor, name: 楼层, kind: floor}\n"
    "      - {id: SH01-ops, name: 营运部, kind: operations}\n"
    "    staff:\n"
    "      - {id: SH01-S1, name: 张一, department: SH01-desk, roles: [desk_agent],\n"
    "         shifts: [{days: " WEEKDAYS ", from: \"09:00\", to: \"17:00\"}]}\n"
    "      - {id: SH01-S2, name: 张二, department: SH01-desk, roles: [desk_agent],\n"
    "         shifts: [{days: [mon], from: \"22:00\", to: \"06:00\"}]}\n"
    "      - {id: SH01-S3, name: 张三, department: SH01-desk, roles: [desk_agent],\n"
    "         shifts: [{days: [sat, sun], from: \"10:30\", to: \"21:45\"}]}\n"
    "      - {id: SH01-S4, name: 张四, department: SH01-floor, roles: [floor_supervisor]}\n"
    "      - {id: SH01-S5, name: 张五, department: SH01-floor, roles: [floor_supervisor],\n"
    "         shifts: [{days: " WEEKDAYS ", from: \"10:00\", to: \"18:00\"}]}\n"
    "      - {id: SH01-DM, name: 张六, department: SH01-ops, roles: [duty_manager],\n"
    "         shifts: [{days: " ALL_WEEK ", from: \"00:00\", to: \"24:00\"}]}\n"
    "    escalation: {ladder: [floor_supervisor, group_head], fallback_role: duty_manager}\n"
    /* Berlin (CET/CEST), with its own call centre. */
    "  - id: BER\n"
    "    name: 柏林店\n"
    "    kind: mall\n"
    "    timezone: Europe/Berlin\n"
    "    opening_hours: " EVERY_DAY("10:00-20:00")
    "    departments:\n"
    "      - {id: BER-desk, name: 服务台, kind: service_desk}\n"
    "      - {id: BER-cc, name: 客服中心, kind: call_center}\n"
    "      - {id: BER-ops, name: 营运部, kind: operations}\n"
    "    staff:\n"
    "      - {id: BER-N1, name: 李一, department: BER-desk, roles: [desk_agent],\n"
    "         shifts: [{days: [sat], from: \"22:00\", to: \"06:00\"}]}\n"
    "      - {id: BER-E1, name: 李二, department: BER-desk, roles: [desk_agent],\n"
    "         shifts: [{days: [sun], from: \"02:00\", to: \"03:00\"}]}\n"
    "      - {id: BER-CC, name: 李三, department: BER-cc, roles: [desk_agent],\n"
    "         shifts: [{days: " WEEKDAYS ", from: \"09:00\", to: \"17:00\"}]}\n"
    "      - {id: BER-DM, name: 李四, department: BER-ops,\n"
    "         roles: [duty_manager, floor_supervisor],\n"
    "         shifts: [{days: " ALL_WEEK ", from: \"10:00\", to: \"20:00\"}]}\n"
    "    escalation: {ladder: [floor_supervisor, group_head], fallback_role: duty_manager}\n"
    "routing:\n"
    "  - {category: other, departments: [service_desk]}\n"
    "sla_policies:\n"
    "  - {id: default, clocks: {reply: 24h}}\n";
/* clang-format on */

static cw_chain *chain;
static cw_calendar *cal;
static const struct cw_site *sh, *ber;

static void open_roster(void)
{
    char err[256];
    chain = cw_test_chain_from_yaml(chain_yaml);
    ck_assert_ptr_nonnull(chain);
    cal = cw_calendar_new(chain, err, sizeof err);
    ck_assert_msg(cal != NULL, "%s", err);
    sh = cw_chain_site(chain, "SH01");
    ber = cw_chain_site(chain, "BER");
    ck_assert_ptr_nonnull(sh);
    ck_assert_ptr_nonnull(ber);
}

static void close_roster(void)
{
    cw_calendar_free(cal);
    cw_chain_free(chain);
    cal = NULL;
    chain = NULL;
}

/* "2026-11-25T14:03:00+08:00" or "...Z" -> Unix ms. */
static int64_t at(const char *s)
{
    struct tm tm = {0};
    int oh = 0, om = 0, n = 0;
    char sign = 'Z';
    ck_assert_int_ge(sscanf(s, "%d-%d-%dT%d:%d:%d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                            &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n),
                     6);
    if (s[n] != 'Z') ck_assert_int_eq(sscanf(s + n, "%c%d:%d", &sign, &oh, &om), 3);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    int64_t off = (sign == '-' ? -1 : 1) * (oh * 3600 + om * 60);
    return ((int64_t)timegm(&tm) - off) * 1000;
}

static const struct cw_site *site(const char *id)
{
    const struct cw_site *s = cw_chain_site(chain, id);
    ck_assert_msg(s != NULL, "no site %s", id);
    return s;
}

static const struct cw_staff *staff(const char *id)
{
    const struct cw_staff *s = cw_chain_staff(chain, id);
    ck_assert_msg(s != NULL, "no staff %s", id);
    return s;
}

static const struct cw_role *role(const char *id)
{
    const struct cw_role *r = cw_chain_role(chain, id);
    ck_assert_msg(r != NULL, "no role %s", id);
    return r;
}

/* "A,B": the ids of v[0..n), n <= max. */
static const char *ids(const struct cw_staff *const *v, size_t n)
{
    static char buf[512];
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i) strcat(buf, ",");
        strcat(buf, v[i]->id);
    }
    return buf;
}

/* ---- on duty ---- */

struct duty_case {
    const char *staff, *site, *at;
    bool on;
    const char *why;
};

static void check_duty(const struct duty_case *v, size_t n)
{
    open_roster();
    for (size_t i = 0; i < n; i++) {
        bool on = cw_roster_on_duty(cal, site(v[i].site), staff(v[i].staff), at(v[i].at));
        ck_assert_msg(on == v[i].on, "%s at %s (%s): %s, expected %s: %s", v[i].staff, v[i].at,
                      v[i].site, on ? "on" : "off", v[i].on ? "on" : "off", v[i].why);
    }
    close_roster();
}

#define CHECK_DUTY(table) check_duty(table, sizeof table / sizeof table[0])

START_TEST(shifts_are_half_open_on_their_weekdays)
{
    static const struct duty_case cases[] = {
        {"SH01-S1", "SH01", "2026-11-23T08:59:59+08:00", false, "Monday, before 09:00"},
        {"SH01-S1", "SH01", "2026-11-23T09:00:00+08:00", true, "the start is covered"},
        {"SH01-S1", "SH01", "2026-11-23T16:59:59+08:00", true, "last second before the end"},
        {"SH01-S1", "SH01", "2026-11-23T17:00:00+08:00", false, "the end is not covered"},
        {"SH01-S1", "SH01", "2026-11-27T12:00:00+08:00", true, "Friday is in the mask"},
        {"SH01-S1", "SH01", "2026-11-28T12:00:00+08:00", false, "Saturday is not"},
        {"SH01-S1", "SH01", "2026-11-29T12:00:00+08:00", false, "Sunday is not"},
        /* SH01-S3: Saturday and Sunday 10:30-21:45, minutes that are not whole hours. */
        {"SH01-S3", "SH01", "2026-11-28T10:29:59+08:00", false, "Saturday, before 10:30"},
        {"SH01-S3", "SH01", "2026-11-28T10:30:00+08:00", true, "Saturday's start"},
        {"SH01-S3", "SH01", "2026-11-29T21:44:59+08:00", true, "Sunday, before 21:45"},
        {"SH01-S3", "SH01", "2026-11-29T21:45:00+08:00", false, "Sunday's end"},
        {"SH01-S3", "SH01", "2026-11-27T12:00:00+08:00", false, "weekend shift, Friday"},
        {"SH01-S3", "SH01", "2026-11-30T12:00:00+08:00", false, "weekend shift, Monday"},
        /* 21:00Z on Sunday is 05:00 on Monday in Shanghai: the local weekday decides. */
        {"SH01-S3", "SH01", "2026-11-29T21:00:00Z", false, "Monday 05:00 local, not Sunday"},
        {"SH01-S1", "SH01", "2026-11-23T01:00:00Z", true, "09:00 local, not 01:00 UTC"},
        {"SH01-DM", "SH01", "2026-11-23T00:00:00+08:00", true, "00:00-24:00 covers midnight"},
        {"SH01-DM", "SH01", "2026-11-29T23:59:59+08:00", true, "24:00 covers the last second"},
        {"SH01-S4", "SH01", "2026-11-23T12:00:00+08:00", false, "no shifts: never on duty"},
        {"SH01-S4", "SH01", "2026-11-28T12:00:00+08:00", false, "no shifts: not at weekends"},
    };
    CHECK_DUTY(cases);
}
END_TEST

START_TEST(overnight_shifts_belong_to_the_day_they_start)
{
    /* SH01-S2 works Monday 22:00 to Tuesday 06:00 only. */
    static const struct duty_case cases[] = {
        {"SH01-S2", "SH01", "2026-11-23T21:59:59+08:00", false, "Monday, before the start"},
        {"SH01-S2", "SH01", "2026-11-23T22:00:00+08:00", true, "Monday's start"},
        {"SH01-S2", "SH01", "2026-11-24T00:00:00+08:00", true, "Tuesday's midnight"},
        {"SH01-S2", "SH01", "2026-11-24T03:00:00+08:00", true, "Tuesday 03:00: Monday's bit"},
        {"SH01-S2", "SH01", "2026-11-24T05:59:59+08:00", true, "last second before 06:00"},
        {"SH01-S2", "SH01", "2026-11-24T06:00:00+08:00", false, "the end, next day"},
        {"SH01-S2", "SH01", "2026-11-24T22:00:00+08:00", false, "Tuesday's bit is unset"},
        {"SH01-S2", "SH01", "2026-11-25T03:00:00+08:00", false, "Wednesday: Tuesday's unset"},
        {"SH01-S2", "SH01", "2026-11-23T03:00:00+08:00", false, "Monday 03:00: Sunday's unset"},
    };
    CHECK_DUTY(cases);
}
END_TEST

START_TEST(dst_days_follow_the_local_clock)
{
    static const struct duty_case cases[] = {
        /* BER-N1: Saturday 22:00-06:00. On 29 March it lasts 7 real hours. */
        {"BER-N1", "BER", "2026-03-28T21:59:59+01:00", false, "before Saturday's start"},
        {"BER-N1", "BER", "2026-03-28T22:00:00+01:00", true, "Saturday's start (CET)"},
        {"BER-N1", "BER", "2026-03-29T01:59:59+01:00", true, "the last second before the jump"},
        {"BER-N1", "BER", "2026-03-29T03:00:00+02:00", true, "the jump: 03:00 CEST"},
        {"BER-N1", "BER", "2026-03-29T05:59:59+02:00", true, "05:59:59 local (CEST)"},
        {"BER-N1", "BER", "2026-03-29T06:00:00+02:00", false, "06:00 local, 04:00Z"},
        /* On 25 October it lasts 9 real hours, the repeated hour included. */
        {"BER-N1", "BER", "2026-10-24T22:00:00+02:00", true, "Saturday's start (CEST)"},
        {"BER-N1", "BER", "2026-10-25T02:30:00+02:00", true, "02:30, first time"},
        {"BER-N1", "BER", "2026-10-25T02:30:00+01:00", true, "02:30, second time"},
        {"BER-N1", "BER", "2026-10-25T05:59:59+01:00", true, "05:59:59 local (CET), 04:59:59Z"},
        {"BER-N1", "BER", "2026-10-25T06:00:00+01:00", false, "06:00 local (CET)"},
        /* BER-E1: Sunday 02:00-03:00, an hour that 29 March does not have and 25 October has
         * twice. */
        {"BER-E1", "BER", "2026-03-29T01:59:59+01:00", false, "before 02:00"},
        {"BER-E1", "BER", "2026-03-29T03:00:00+02:00", false, "02:00-03:00 was skipped"},
        {"BER-E1", "BER", "2026-10-25T01:59:59+02:00", false, "before the first 02:00"},
        {"BER-E1", "BER", "2026-10-25T02:00:00+02:00", true, "the first 02:00 (CEST)"},
        {"BER-E1", "BER", "2026-10-25T02:59:59+02:00", true, "the first 02:59:59"},
        {"BER-E1", "BER", "2026-10-25T02:00:00+01:00", true, "the second 02:00 (CET)"},
        {"BER-E1", "BER", "2026-10-25T02:59:59+01:00", true, "the second 02:59:59"},
        {"BER-E1", "BER", "2026-10-25T03:00:00+01:00", false, "03:00 CET: the end"},
        {"BER-E1", "BER", "2026-11-01T02:30:00+01:00", true, "an ordinary Sunday"},
    };
    CHECK_DUTY(cases);
}
END_TEST

START_TEST(group_staff_use_the_clock_of_the_case_site)
{
    /* 02:00Z is 10:00 in Shanghai and 03:00 in Berlin; 12:00Z is 20:00 and 13:00. */
    static const struct duty_case cases[] = {
        {"HQ-1", "SH01", "2026-11-23T02:00:00Z", true, "10:00 on the Shanghai clock"},
        {"HQ-1", "BER", "2026-11-23T02:00:00Z", false, "03:00 on the Berlin clock"},
        {"HQ-1", "SH01", "2026-11-23T12:00:00Z", false, "20:00 on the Shanghai clock"},
        {"HQ-1", "BER", "2026-11-23T12:00:00Z", true, "13:00 on the Berlin clock"},
        /* Site staff keep their own site's clock, whatever the case's site. */
        {"SH01-S1", "BER", "2026-11-23T02:00:00Z", true, "10:00 in Shanghai, S1's clock"},
        {"BER-CC", "SH01", "2026-11-23T12:00:00Z", true, "13:00 in Berlin, BER-CC's clock"},
    };
    CHECK_DUTY(cases);
}
END_TEST

/* ---- lists ---- */

enum list_fn { DEPARTMENT, KIND, ROLE, HOLDERS };

struct list_case {
    const char *site, *key; /* key: a department id, a kind name or a role id */
    const char *at;         /* unused by HOLDERS */
    const char *expect;     /* the ids found, in order, comma-separated */
    const char *why;
};

static size_t list(enum list_fn fn, const struct list_case *lc, const struct cw_staff **out,
                   size_t max)
{
    const struct cw_site *s = site(lc->site);
    int64_t ms = lc->at ? at(lc->at) : 0;
    switch (fn) {
    case DEPARTMENT: {
        const struct cw_department *d = cw_chain_department(chain, lc->key);
        ck_assert_msg(d != NULL, "no department %s", lc->key);
        return cw_roster_department_on_duty(chain, cal, s, d, ms, out, max);
    }
    case KIND: {
        int kind = cw_dept_kind_parse(lc->key);
        ck_assert_msg(kind > 0, "no kind %s", lc->key);
        return cw_roster_kind_on_duty(chain, cal, s, (enum cw_dept_kind)kind, ms, out, max);
    }
    case ROLE: return cw_roster_role_on_duty(chain, cal, s, role(lc->key), ms, out, max);
    case HOLDERS: return cw_roster_role_holders(chain, s, role(lc->key), out, max);
    }
    return 0;
}

static void check_lists(enum list_fn fn, const struct list_case *v, size_t n)
{
    open_roster();
    for (size_t i = 0; i < n; i++) {
        const struct cw_staff *out[16];
        size_t found = list(fn, &v[i], out, 16);
        ck_assert_msg(found <= 16, "%s at %s: %zu found", v[i].key, v[i].at, found);
        ck_assert_msg(strcmp(ids(out, found), v[i].expect) == 0,
                      "%s at %s %s: [%s], expected [%s]: %s", v[i].key, v[i].site,
                      v[i].at ? v[i].at : "", ids(out, found), v[i].expect, v[i].why);
    }
    close_roster();
}

#define CHECK_LISTS(fn, table) check_lists(fn, table, sizeof table / sizeof table[0])

START_TEST(department_on_duty_lists_its_staff)
{
    static const struct list_case cases[] = {
        {"SH01", "SH01-desk", "2026-11-23T12:00:00+08:00", "SH01-S1", "weekday desk"},
        {"SH01", "SH01-desk", "2026-11-28T12:00:00+08:00", "SH01-S3", "weekend desk"},
        {"SH01", "SH01-desk", "2026-11-24T03:00:00+08:00", "SH01-S2", "Monday's night"},
        {"SH01", "SH01-desk", "2026-11-25T03:00:00+08:00", "", "no night on Tuesdays"},
        {"SH01", "SH01-floor", "2026-11-28T12:00:00+08:00", "", "S4 has no shifts"},
        {"SH01", "SH01-ops", "2026-11-28T12:00:00+08:00", "SH01-DM", "only ops staff"},
        /* A group department: its staff on the case site's clock (12:30Z: 20:30, 13:30). */
        {"SH01", "HQ-400", "2026-11-23T12:30:00Z", "", "20:30 in Shanghai"},
        {"BER", "HQ-400", "2026-11-23T12:30:00Z", "HQ-3", "13:30 in Berlin"},
        {"SH01", "HQ-mgmt", "2026-11-23T12:00:00+08:00", "HQ-1,HQ-4", "HQ-2 has no shifts"},
    };
    CHECK_LISTS(DEPARTMENT, cases);
}
END_TEST

START_TEST(kind_on_duty_falls_back_to_the_group_only_for_missing_kinds)
{
    static const struct list_case cases[] = {
        {"SH01", "service_desk", "2026-11-23T12:00:00+08:00", "SH01-S1", "the site's desk"},
        {"SH01", "floor", "2026-11-23T12:00:00+08:00", "SH01-S5", "the site's floor"},
        {"SH01", "operations", "2026-11-23T12:00:00+08:00", "SH01-DM", "the site's ops"},
        {"SH01", "call_center", "2026-11-23T12:00:00+08:00", "HQ-3", "no site call centre"},
        {"SH01", "management", "2026-11-23T12:00:00+08:00", "HQ-1,HQ-4", "group management"},
        {"SH01", "management", "2026-11-28T12:00:00+08:00", "HQ-4", "HQ-1 is off at weekends"},
        {"BER", "call_center", "2026-11-23T12:00:00+01:00", "BER-CC", "the site's own"},
        /* BER has a call centre, empty on Saturdays: no fallback, although HQ-3 is on. */
        {"BER", "call_center", "2026-11-28T12:00:00+01:00", "", "the site's, nobody on"},
        {"SH01", "parking", "2026-11-23T12:00:00+08:00", "", "nobody has the kind"},
    };
    CHECK_LISTS(KIND, cases);
}
END_TEST

START_TEST(role_on_duty_prefers_the_site_then_the_group)
{
    static const struct list_case cases[] = {
        /* HQ-4 holds floor_supervisor and is always on: used only when the site has none. */
        {"SH01", "floor_supervisor", "2026-11-23T12:00:00+08:00", "SH01-S5", "site first"},
        {"SH01", "floor_supervisor", "2026-11-28T12:00:00+08:00", "HQ-4", "site's are off"},
        {"BER", "floor_supervisor", "2026-11-23T12:00:00+01:00", "BER-DM", "site first"},
        {"BER", "floor_supervisor", "2026-11-23T21:00:00+01:00", "HQ-4", "BER-DM is off"},
        {"SH01", "desk_agent", "2026-11-23T12:00:00+08:00", "SH01-S1", "HQ-3 is on too"},
        {"SH01", "desk_agent", "2026-11-25T19:00:00+08:00", "HQ-3", "no site agent at 19:00"},
        {"SH01", "group_head", "2026-11-23T12:00:00+08:00", "HQ-1", "only the group has it"},
        {"SH01", "group_head", "2026-11-28T12:00:00+08:00", "", "HQ-1 off, HQ-2 unrostered"},
        {"BER", "duty_manager", "2026-11-23T21:00:00+01:00", "", "no group duty manager"},
    };
    CHECK_LISTS(ROLE, cases);
}
END_TEST

START_TEST(role_holders_are_everyone_site_first)
{
    static const struct list_case cases[] = {
        {"SH01", "floor_supervisor", NULL, "SH01-S4,SH01-S5,HQ-4", "unrostered S4 included"},
        {"SH01", "desk_agent", NULL, "SH01-S1,SH01-S2,SH01-S3,HQ-3", "site's, then group's"},
        {"SH01", "group_head", NULL, "HQ-1,HQ-2", "only the group holds it"},
        {"BER", "duty_manager", NULL, "BER-DM", "not SH01's duty manager"},
        {"BER", "auditor", NULL, "", "held by nobody"},
    };
    CHECK_LISTS(HOLDERS, cases);
}
END_TEST

/* The snprintf contract: the full count, only max written. */
START_TEST(lists_count_past_max)
{
    static const struct list_case mgmt = {"SH01", "management", "2026-11-23T12:00:00+08:00",
                                          "HQ-1,HQ-4", ""};
    static const struct list_case desk = {"SH01", "desk_agent", NULL, "", ""};
    static const struct list_case hq = {"SH01", "HQ-mgmt", "2026-11-23T12:00:00+08:00", "", ""};
    static const struct list_case fs = {"SH01", "floor_supervisor", "2026-11-23T12:00:00+08:00", "",
                                        ""};
    static const struct cw_staff untouched = {.id = "untouched"};
    const struct cw_staff *out[4] = {&untouched, &untouched, &untouched, &untouched};
    open_roster();
    ck_assert_uint_eq(list(KIND, &mgmt, out, 1), 2);
    ck_assert_str_eq(ids(out, 1), "HQ-1");
    ck_assert_ptr_eq(out[1], &untouched);
    ck_assert_uint_eq(list(HOLDERS, &desk, out, 2), 4);
    ck_assert_str_eq(ids(out, 2), "SH01-S1,SH01-S2");
    ck_assert_ptr_eq(out[2], &untouched);
    ck_assert_uint_eq(list(DEPARTMENT, &hq, NULL, 0), 2);
    ck_assert_uint_eq(list(ROLE, &fs, NULL, 0), 1);
    /* out NULL with max > 0: counted, nothing written. */
    ck_assert_uint_eq(list(HOLDERS, &desk, NULL, 3), 4);
    close_roster();
}
END_TEST

START_TEST(bad_input_gives_nobody)
{
    open_roster();
    int64_t t = at("2026-11-23T12:00:00+08:00"); /* Monday noon: SH01-S1 and SH01-DM are on */
    const struct cw_staff *s1 = staff("SH01-S1"), *hq4 = staff("HQ-4");
    const struct cw_staff *dm = staff("SH01-DM");
    const struct cw_department *desk = cw_chain_department(chain, "SH01-desk");
    const struct cw_role *fs = role("floor_supervisor");
    const struct cw_staff *out[4];
    struct cw_site copy = *sh; /* not one of the chain's sites: the calendar has no zone */

    /* Each refusal next to the same question asked properly, which is answered. */
    ck_assert(cw_roster_on_duty(cal, sh, s1, t));
    ck_assert(!cw_roster_on_duty(cal, NULL, s1, t));
    ck_assert(!cw_roster_on_duty(cal, sh, NULL, t));
    ck_assert(!cw_roster_on_duty(NULL, sh, s1, t));
    /* Calendar failures: an instant past year 9999, a site it does not know. */
    ck_assert(cw_roster_on_duty(cal, sh, dm, 0));
    ck_assert(!cw_roster_on_duty(cal, sh, dm, INT64_MAX));
    ck_assert(!cw_roster_on_duty(cal, sh, dm, INT64_MIN));
    ck_assert(cw_roster_on_duty(cal, sh, hq4, t));
    ck_assert(!cw_roster_on_duty(cal, &copy, hq4, t));

    ck_assert_uint_eq(cw_roster_department_on_duty(chain, cal, sh, desk, t, out, 4), 1);
    ck_assert_uint_eq(cw_roster_department_on_duty(NULL, cal, sh, desk, t, out, 4), 0);
    ck_assert_uint_eq(cw_roster_department_on_duty(chain, NULL, sh, desk, t, out, 4), 0);
    ck_assert_uint_eq(cw_roster_department_on_duty(chain, cal, NULL, desk, t, out, 4), 0);
    ck_assert_uint_eq(cw_roster_department_on_duty(chain, cal, sh, NULL, t, out, 4), 0);

    ck_assert_uint_eq(cw_roster_kind_on_duty(chain, cal, sh, CW_DEPT_OPERATIONS, t, out, 4), 1);
    ck_assert_uint_eq(cw_roster_kind_on_duty(NULL, cal, sh, CW_DEPT_OPERATIONS, t, out, 4), 0);
    ck_assert_uint_eq(cw_roster_kind_on_duty(chain, NULL, sh, CW_DEPT_OPERATIONS, t, out, 4), 0);
    ck_assert_uint_eq(cw_roster_kind_on_duty(chain, cal, NULL, CW_DEPT_OPERATIONS, t, out, 4), 0);
    ck_assert_uint_eq(cw_roster_kind_on_duty(chain, cal, sh, CW_DEPT_OPERATIONS, INT64_MAX, out, 4),
                      0);
    ck_assert_uint_eq(cw_roster_kind_on_duty(chain, cal, sh, CW_DEPT_TENANT, t, out, 4), 0);

    ck_assert_uint_eq(cw_roster_role_on_duty(chain, cal, sh, fs, t, out, 4), 1);
    ck_assert_uint_eq(cw_roster_role_on_duty(NULL, cal, sh, fs, t, out, 4), 0);
    ck_assert_uint_eq(cw_roster_role_on_duty(chain, NULL, sh, fs, t, out, 4), 0);
    ck_assert_uint_eq(cw_roster_role_on_duty(chain, cal, NULL, fs, t, out, 4), 0);
    ck_assert_uint_eq(cw_roster_role_on_duty(chain, cal, sh, NULL, t, out, 4), 0);

    ck_assert_uint_eq(cw_roster_role_holders(chain, sh, fs, out, 4), 3);
    ck_assert_uint_eq(cw_roster_role_holders(NULL, sh, fs, out, 4), 0);
    ck_assert_uint_eq(cw_roster_role_holders(chain, NULL, fs, out, 4), 0);
    ck_assert_uint_eq(cw_roster_role_holders(chain, sh, NULL, out, 4), 0);
    close_roster();
}
END_TEST

CW_TEST_MAIN("roster", shifts_are_half_open_on_their_weekdays,
             overnight_shifts_belong_to_the_day_they_start, dst_days_follow_the_local_clock,
             group_staff_use_the_clock_of_the_case_site, department_on_duty_lists_its_staff,
             kind_on_duty_falls_back_to_the_group_only_for_missing_kinds,
             role_on_duty_prefers_the_site_then_the_group, role_holders_are_everyone_site_first,
             lists_count_past_max, bad_input_gives_nobody)
