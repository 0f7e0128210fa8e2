/* The calendar: site-local time, RFC 3339, DST in Berlin and New York, opening hours and due
 * times for every basis. Expected instants are written by hand as RFC 3339 literals with
 * their offset (at() turns one into Unix ms with timegm, independently of the module), each
 * with the reason it is right. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "calendar.h"
#include "chain_yaml.h"
#include "testing.h"

/* Every site has a desk and one person on duty around the clock, so each calendar below is
 * valid (the fallback role covers any opening hours). Kept as YAML, not as clang-format
 * would lay it out. */
/* clang-format off */
#define SITE_TAIL(ID)                                                                              \
    "    departments: [{id: " ID "-desk, name: 服务台, kind: service_desk}]\n"                     \
    "    staff:\n"                                                                                 \
    "      - {id: " ID "-S1, name: 张三, department: " ID "-desk,\n"                               \
    "         roles: [desk_agent, duty_manager],\n"                                                \
    "         shifts: [{days: [mon, tue, wed, thu, fri, sat, sun], from: \"00:00\", to: \"24:00\"}]}\n" \
    "    escalation: {ladder: [desk_agent], fallback_role: duty_manager}\n"
#define EVERY_DAY(H)                                                                               \
    "{mon: \"" H "\", tue: \"" H "\", wed: \"" H "\", thu: \"" H "\", fri: \"" H "\",\n"          \
    "                    sat: \"" H "\", sun: \"" H "\"}\n"

static const char chain_yaml[] =
    "chain: {id: t, name: 测试集团, timezone: Asia/Shanghai}\n"
    "roles:\n"
    "  - {id: desk_agent, name: 服务台}\n"
    "  - {id: duty_manager, name: 值班经理}\n"
    "sites:\n"
    /* An office calendar: weekdays 09:00-18:00, National Day off (the 2nd is open short
     * hours but still a holiday), a make-up working Saturday, a short and a closed day. */
    "  - id: SH01\n"
    "    name: 上海店\n"
    "    kind: mall\n"
    "    opening_hours: {mon: \"09:00-18:00\", tue: \"09:00-18:00\", wed: \"09:00-18:00\",\n"
    "                    thu: \"09:00-18:00\", fri: \"09:00-18:00\", sat: closed, sun: closed}\n"
    "    working_days: [mon, tue, wed, thu, fri]\n"
    "    holidays:\n"
    "      - {date: 2026-10-01, name: 国庆节}\n"
    "      - {date: 2026-10-02, name: 国庆节}\n"
    "    special_days:\n"
    "      - {date: 2026-10-02, hours: \"10:00-16:00\", name: 国庆营业}\n"
    "      - {date: 2026-10-10, hours: \"10:00-16:00\", name: 调休}\n"
    "      - {date: 2026-12-24, hours: \"09:00-12:00\", name: 平安夜}\n"
    "      - {date: 2026-12-25, hours: closed, name: 圣诞}\n"
    SITE_TAIL("SH01")
    /* A bar: every night 20:00-02:00; Sunday is not a working day. */
    "  - id: BAR\n"
    "    name: 柏林\n"
    "    kind: mall\n"
    "    timezone: Europe/Berlin\n"
    "    opening_hours: " EVERY_DAY("20:00-02:00")
    "    working_days: [mon, tue, wed, thu, fri, sat]\n"
    SITE_TAIL("BAR")
    /* Open around the clock, every day a working day. */
    "  - id: NY\n"
    "    name: 纽约\n"
    "    kind: mall\n"
    "    timezone: America/New_York\n"
    "    opening_hours: " EVERY_DAY("00:00-24:00")
    SITE_TAIL("NY")
    "  - id: SYD\n"
    "    name: 悉尼\n"
    "    kind: mall\n"
    "    timezone: Australia/Sydney\n"
    "    opening_hours: " EVERY_DAY("00:00-24:00")
    SITE_TAIL("SYD")
    /* Monday's overnight hours overlap Tuesday's early opening. */
    "  - id: OVL\n"
    "    name: 重叠\n"
    "    kind: mall\n"
    "    opening_hours: {mon: \"22:00-06:00\", tue: \"01:00-23:00\", wed: closed, thu: closed,\n"
    "                    fri: closed, sat: closed, sun: closed}\n"
    SITE_TAIL("OVL")
    /* Never open. */
    "  - id: NEVER\n"
    "    name: 永不\n"
    "    kind: mall\n"
    "    opening_hours: " EVERY_DAY("closed")
    SITE_TAIL("NEVER")
    "routing:\n"
    "  - {category: other, departments: [service_desk]}\n"
    "sla_policies:\n"
    "  - {id: default, clocks: {reply: 24h}}\n";
/* clang-format on */

static cw_chain *chain;
static cw_calendar *cal;
static const struct cw_site *sh, *bar, *ny, *syd, *ovl, *never;

static void open_calendar(void)
{
    char err[256];
    chain = cw_test_chain_from_yaml(chain_yaml);
    ck_assert_ptr_nonnull(chain);
    cal = cw_calendar_new(chain, err, sizeof err);
    ck_assert_msg(cal != NULL, "%s", err);
    sh = cw_chain_site(chain, "SH01");
    bar = cw_chain_site(chain, "BAR");
    ny = cw_chain_site(chain, "NY");
    syd = cw_chain_site(chain, "SYD");
    ovl = cw_chain_site(chain, "OVL");
    never = cw_chain_site(chain, "NEVER");
}

static void close_calendar(void)
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

static const char *fmt(const struct cw_site *site, int64_t ms)
{
    static char buf[CW_CALENDAR_RFC3339_SIZE];
    if (cw_calendar_format(cal, site, ms, buf, sizeof buf) < 0) snprintf(buf, sizeof buf, "?");
    return buf;
}

static const struct cw_duration WALL_H = {CW_TIME_WALL, 3600000, 0};

static struct cw_duration wh(double hours)
{
    return (struct cw_duration){CW_TIME_WORKING_HOURS, (int64_t)(hours * 3600000), 0};
}

static struct cw_duration wd(unsigned days)
{
    return (struct cw_duration){CW_TIME_WORKING_DAYS, 0, days};
}

/* due(site, start, d) must be the instant `expect`. */
#define ck_due(site, start, d, expect)                                                             \
    do {                                                                                           \
        struct cw_duration d_ = (d);                                                               \
        int64_t due_ = 0;                                                                          \
        ck_assert_int_eq(cw_calendar_due(cal, site, at(start), &d_, &due_), 0);                    \
        ck_assert_msg(due_ == at(expect), "due from %s: %s, expected %s", start, fmt(site, due_),  \
                      expect);                                                                     \
    } while (0)

#define ck_local(site, instant, y, mo, d, h, mi, s, wday_, off)                                    \
    do {                                                                                           \
        struct cw_local l_;                                                                        \
        ck_assert_int_eq(cw_calendar_local(cal, site, at(instant), &l_), 0);                       \
        ck_assert_int_eq(l_.year, y);                                                              \
        ck_assert_int_eq(l_.month, mo);                                                            \
        ck_assert_int_eq(l_.day, d);                                                               \
        ck_assert_int_eq(l_.hour, h);                                                              \
        ck_assert_int_eq(l_.minute, mi);                                                           \
        ck_assert_int_eq(l_.second, s);                                                            \
        ck_assert_int_eq(l_.wday, wday_);                                                          \
        ck_assert_int_eq(l_.utc_offset_s, off);                                                    \
        ck_assert_int_eq(l_.yyyymmdd, (y)*10000 + (mo)*100 + (d));                                 \
    } while (0)

#define OPEN(site, t) cw_calendar_is_open(cal, site, at(t))

/* ---- construction ---- */

START_TEST(new_reads_zones_and_refuses_bad_ones)
{
    char err[256] = "x";
    open_calendar();
    ck_assert(at("1970-01-01T08:00:00+08:00") == 0); /* the helper itself */
    /* A site that is not the chain's (a copy) has no zone here. */
    struct cw_site copy = *sh;
    struct cw_local l;
    char buf[64];
    int64_t ms;
    ck_assert_int_eq(cw_calendar_local(cal, &copy, 0, &l), -1);
    ck_assert_int_eq(cw_calendar_format(cal, &copy, 0, buf, sizeof buf), -1);
    ck_assert(!cw_calendar_is_open(cal, &copy, 0));
    ck_assert_int_eq(cw_calendar_due(cal, &copy, 0, &WALL_H, &ms), -1);
    ck_assert_int_eq(cw_calendar_local(NULL, sh, 0, &l), -1);
    ck_assert_ptr_null(cw_calendar_new(NULL, err, sizeof err));
    ck_assert_str_eq(err, "no chain");
    cw_calendar_free(NULL);

    /* The zone files are read by cw_calendar_new itself: a broken one (TZif magic, then
     * nothing) is refused with its name. */
    char dir[] = "/tmp/cw-tz-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char sub[64], file[96];
    snprintf(sub, sizeof sub, "%s/Asia", dir);
    snprintf(file, sizeof file, "%s/Shanghai", sub);
    ck_assert_int_eq(mkdir(sub, 0700), 0);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fputs("TZif2", f);
    fclose(f);
    setenv("TZDIR", dir, 1);
    ck_assert_ptr_null(cw_calendar_new(chain, err, sizeof err));
    ck_assert_str_eq(err, "time zone Asia/Shanghai: not a TZif file");
    /* Missing: the system's reason. */
    unlink(file);
    ck_assert_ptr_null(cw_calendar_new(chain, err, sizeof err));
    ck_assert_str_eq(err, "time zone Asia/Shanghai: No such file or directory");
    rmdir(sub);
    rmdir(dir);
    unsetenv("TZDIR");
    close_calendar();
}
END_TEST

/* ---- local time ---- */

START_TEST(local_date_follows_the_site_not_utc)
{
    open_calendar();
    /* 15:59:59Z is 23:59:59 in Shanghai (+8), still Tuesday the 24th; a second later it is
     * Wednesday the 25th there while UTC is still on the 24th: case number date 261125. */
    ck_local(sh, "2026-11-24T15:59:59Z", 2026, 11, 24, 23, 59, 59, CW_TUE, 28800);
    ck_local(sh, "2026-11-24T16:00:00Z", 2026, 11, 25, 0, 0, 0, CW_WED, 28800);
    struct cw_local l;
    ck_assert_int_eq(cw_calendar_local(cal, sh, at("2026-11-24T16:00:00Z"), &l), 0);
    ck_assert_int_eq(l.yyyymmdd % 1000000, 261125);
    /* The other way round: 03:00Z on the 25th is 22:00 on the 24th in New York (EST, -5). */
    ck_local(ny, "2026-11-25T03:00:00Z", 2026, 11, 24, 22, 0, 0, CW_TUE, -18000);
    /* Milliseconds round down, before 1970 too: -1 ms is 07:59:59 on 1 Jan 1970 in
     * Shanghai (it had no DST then). */
    ck_assert_int_eq(cw_calendar_local(cal, sh, -1, &l), 0);
    ck_assert_int_eq(l.yyyymmdd, 19700101);
    ck_assert_int_eq(l.hour * 3600 + l.minute * 60 + l.second, 7 * 3600 + 59 * 60 + 59);
    ck_assert_int_eq(cw_calendar_local(cal, sh, at("2026-11-25T06:03:00Z") + 999, &l), 0);
    ck_assert_int_eq(l.second, 0);
    /* Out of the supported years. */
    ck_assert_int_eq(cw_calendar_local(cal, sh, INT64_MAX, &l), -1);
    ck_assert_int_eq(cw_calendar_local(cal, sh, INT64_MIN, &l), -1);
    close_calendar();
}
END_TEST

START_TEST(rfc3339_carries_the_site_offset)
{
    open_calendar();
    char buf[CW_CALENDAR_RFC3339_SIZE];
    int64_t t = at("2026-11-25T06:03:00Z");
    ck_assert_int_eq(cw_calendar_format(cal, sh, t, buf, sizeof buf), 25);
    ck_assert_str_eq(buf, "2026-11-25T14:03:00+08:00");
    ck_assert_str_eq(fmt(ny, t), "2026-11-25T01:03:00-05:00");       /* EST in November */
    ck_assert_str_eq(fmt(bar, t), "2026-11-25T07:03:00+01:00");      /* CET */
    ck_assert_str_eq(fmt(sh, t + 999), "2026-11-25T14:03:00+08:00"); /* seconds precision */
    /* Shanghai kept local mean time, +8:05:43, until 1901: the offset is cut to +08:05 and
     * the clock shown with it, so the text is still exactly 1900-01-01T00:00:00Z. */
    ck_assert_str_eq(fmt(sh, at("1900-01-01T00:00:00Z")), "1900-01-01T08:05:00+08:05");
    ck_assert_int_eq(cw_calendar_format(cal, sh, t, buf, CW_CALENDAR_RFC3339_SIZE - 1), -1);
    ck_assert_int_eq(cw_calendar_format(cal, sh, INT64_MAX, buf, sizeof buf), -1);
    close_calendar();
}
END_TEST

START_TEST(dst_in_berlin_both_ways)
{
    open_calendar();
    /* 29 March 2026 (last Sunday of March), 01:00Z: CET 02:00 -> CEST 03:00. */
    ck_local(bar, "2026-03-29T00:59:59Z", 2026, 3, 29, 1, 59, 59, CW_SUN, 3600);
    ck_local(bar, "2026-03-29T01:00:00Z", 2026, 3, 29, 3, 0, 0, CW_SUN, 7200);
    ck_assert_str_eq(fmt(bar, at("2026-03-29T01:00:00Z")), "2026-03-29T03:00:00+02:00");
    /* 25 October 2026 (last Sunday of October), 01:00Z: CEST 03:00 -> CET 02:00. */
    ck_local(bar, "2026-10-25T00:59:59Z", 2026, 10, 25, 2, 59, 59, CW_SUN, 7200);
    ck_local(bar, "2026-10-25T01:00:00Z", 2026, 10, 25, 2, 0, 0, CW_SUN, 3600);
    ck_assert_str_eq(fmt(bar, at("2026-10-25T01:00:00Z")), "2026-10-25T02:00:00+01:00");
    close_calendar();
}
END_TEST

START_TEST(dst_in_new_york_both_ways)
{
    open_calendar();
    /* 8 March 2026 (second Sunday of March), 07:00Z: EST 02:00 -> EDT 03:00. */
    ck_local(ny, "2026-03-08T06:59:59Z", 2026, 3, 8, 1, 59, 59, CW_SUN, -18000);
    ck_local(ny, "2026-03-08T07:00:00Z", 2026, 3, 8, 3, 0, 0, CW_SUN, -14400);
    /* 1 November 2026 (first Sunday of November), 06:00Z: EDT 02:00 -> EST 01:00. */
    ck_local(ny, "2026-11-01T05:59:59Z", 2026, 11, 1, 1, 59, 59, CW_SUN, -14400);
    ck_local(ny, "2026-11-01T06:00:00Z", 2026, 11, 1, 1, 0, 0, CW_SUN, -18000);
    ck_assert_str_eq(fmt(ny, at("2026-11-01T06:00:00Z")), "2026-11-01T01:00:00-05:00");
    /* Past the file's table (2037) and past the 400-year window of the rule (2439): July
     * is always EDT, December always EST under today's rule. */
    ck_assert_str_eq(fmt(ny, at("2100-07-01T12:00:00Z")), "2100-07-01T08:00:00-04:00");
    ck_assert_str_eq(fmt(ny, at("2500-07-01T12:00:00Z")), "2500-07-01T08:00:00-04:00");
    ck_assert_str_eq(fmt(ny, at("9999-12-31T12:00:00Z")), "9999-12-31T07:00:00-05:00");
    close_calendar();
}
END_TEST

START_TEST(local_to_instant_skipped_and_repeated_times)
{
    open_calendar();
    int64_t ms;
    ck_assert_int_eq(cw_calendar_instant(cal, sh, 20261125, 9 * 3600, &ms), 0);
    ck_assert(ms == at("2026-11-25T09:00:00+08:00"));
    /* 02:30 does not exist in Berlin on 29 March: the instant the clocks jump. */
    ck_assert_int_eq(cw_calendar_instant(cal, bar, 20260329, 9000, &ms), 0);
    ck_assert(ms == at("2026-03-29T03:00:00+02:00"));
    /* 02:30 happens twice on 25 October: the first time, still CEST. */
    ck_assert_int_eq(cw_calendar_instant(cal, bar, 20261025, 9000, &ms), 0);
    ck_assert(ms == at("2026-10-25T02:30:00+02:00"));
    /* New York: 02:30 on 8 March is skipped; 01:30 on 1 November is first EDT. */
    ck_assert_int_eq(cw_calendar_instant(cal, ny, 20260308, 9000, &ms), 0);
    ck_assert(ms == at("2026-03-08T03:00:00-04:00"));
    ck_assert_int_eq(cw_calendar_instant(cal, ny, 20261101, 5400, &ms), 0);
    ck_assert(ms == at("2026-11-01T01:30:00-04:00"));
    /* 24:00 is the next midnight. */
    ck_assert_int_eq(cw_calendar_instant(cal, sh, 20261231, 86400, &ms), 0);
    ck_assert(ms == at("2027-01-01T00:00:00+08:00"));
    ck_assert_int_eq(cw_calendar_instant(cal, sh, 20260230, 0, &ms), -1);
    ck_assert_int_eq(cw_calendar_instant(cal, sh, 20261125, 86401, &ms), -1);
    ck_assert_int_eq(cw_calendar_instant(cal, sh, 20261125, -1, &ms), -1);
    close_calendar();
}
END_TEST

/* ---- opening hours ---- */

START_TEST(open_on_weekdays_special_days_and_holidays)
{
    open_calendar();
    /* Monday 09:00-18:00, the closing minute excluded. */
    ck_assert(!OPEN(sh, "2026-11-23T08:59:59+08:00"));
    ck_assert(OPEN(sh, "2026-11-23T09:00:00+08:00"));
    ck_assert(OPEN(sh, "2026-11-23T17:59:59+08:00"));
    ck_assert(!OPEN(sh, "2026-11-23T18:00:00+08:00"));
    ck_assert(!OPEN(sh, "2026-11-28T12:00:00+08:00")); /* Saturday: closed */
    /* A holiday does not close the site (it stops working-time clocks only). */
    ck_assert(OPEN(sh, "2026-10-01T10:00:00+08:00"));
    /* The 2nd is a holiday with special hours 10:00-16:00: those hours apply. */
    ck_assert(!OPEN(sh, "2026-10-02T09:30:00+08:00"));
    ck_assert(OPEN(sh, "2026-10-02T10:30:00+08:00"));
    ck_assert(OPEN(sh, "2026-10-10T11:00:00+08:00"));  /* make-up Saturday */
    ck_assert(!OPEN(sh, "2026-12-24T12:00:00+08:00")); /* short day: closed at 12:00 */
    ck_assert(!OPEN(sh, "2026-12-25T10:00:00+08:00")); /* special day closed */
    ck_assert(!OPEN(never, "2026-11-23T12:00:00+08:00"));
    close_calendar();
}
END_TEST

START_TEST(open_overnight_and_across_dst)
{
    open_calendar();
    /* Saturday 20:00 to Sunday 02:00; Sunday's own night 20:00 to Monday 02:00 (is_open
     * does not care that Sunday is not a working day). */
    ck_assert(!OPEN(bar, "2026-11-28T19:59:59+01:00"));
    ck_assert(OPEN(bar, "2026-11-28T20:00:00+01:00"));
    ck_assert(OPEN(bar, "2026-11-29T01:59:59+01:00"));
    ck_assert(!OPEN(bar, "2026-11-29T02:00:00+01:00"));
    ck_assert(OPEN(bar, "2026-11-29T21:00:00+01:00"));
    ck_assert(OPEN(bar, "2026-11-30T01:00:00+01:00"));
    /* 29 March: 02:00 never comes; Saturday night ends when the clocks jump (01:00Z). */
    ck_assert(OPEN(bar, "2026-03-29T01:59:59+01:00"));
    ck_assert(!OPEN(bar, "2026-03-29T03:00:00+02:00"));
    /* 25 October: the night ends at the first 02:00 (CEST, 00:00Z); the repeated hour is
     * closed. */
    ck_assert(OPEN(bar, "2026-10-25T01:59:59+02:00"));
    ck_assert(!OPEN(bar, "2026-10-25T02:30:00+02:00"));
    ck_assert(!OPEN(bar, "2026-10-25T02:30:00+01:00"));
    /* Monday 22:00-06:00 overlaps Tuesday 01:00-23:00. */
    ck_assert(OPEN(ovl, "2026-11-24T03:00:00+08:00"));
    ck_assert(OPEN(ovl, "2026-11-24T22:59:59+08:00"));
    ck_assert(!OPEN(ovl, "2026-11-24T23:00:00+08:00"));
    close_calendar();
}
END_TEST

/* ---- due times ---- */

START_TEST(due_wall_clock)
{
    open_calendar();
    /* Wall time ignores calendars: one hour after 01:30 EST on 8 March is 03:30 EDT. */
    ck_due(ny, "2026-03-08T01:30:00-05:00", WALL_H, "2026-03-08T03:30:00-04:00");
    ck_due(never, "2026-11-23T10:00:00+08:00", WALL_H, "2026-11-23T11:00:00+08:00");
    close_calendar();
}
END_TEST

START_TEST(due_working_hours_office)
{
    open_calendar();
    /* Before opening: counting starts at 09:00. */
    ck_due(sh, "2026-11-23T07:00:00+08:00", wh(2), "2026-11-23T11:00:00+08:00");
    /* After closing: Tuesday 09:00 + 2h. */
    ck_due(sh, "2026-11-23T19:00:00+08:00", wh(2), "2026-11-24T11:00:00+08:00");
    /* Across closing: 1h on Monday (17-18), 2h on Tuesday. */
    ck_due(sh, "2026-11-23T17:00:00+08:00", wh(3), "2026-11-24T11:00:00+08:00");
    /* Ending exactly at closing stays there, not at the next opening. */
    ck_due(sh, "2026-11-23T16:00:00+08:00", wh(2), "2026-11-23T18:00:00+08:00");
    /* Friday evening: 30 min on Friday, Saturday and Sunday off, 30 min on Monday. */
    ck_due(sh, "2026-11-27T17:30:00+08:00", wh(1), "2026-11-30T09:30:00+08:00");
    /* Many days: 9 h a day, Monday 09:00 + 40h = four days (36 h) + 4 h on Friday. */
    ck_due(sh, "2026-11-23T09:00:00+08:00", wh(40), "2026-11-27T13:00:00+08:00");
    /* On a holiday (Thu 1 Oct): the 2nd is a holiday too though open, the weekend is off:
     * Monday 5 Oct 09:00 + 1h. */
    ck_due(sh, "2026-10-01T10:00:00+08:00", wh(1), "2026-10-05T10:00:00+08:00");
    /* Friday 17:00 + 2h: 1h Friday, then the make-up Saturday (10:00-16:00) counts. */
    ck_due(sh, "2026-10-09T17:00:00+08:00", wh(2), "2026-10-10T11:00:00+08:00");
    /* Christmas Eve closes at 12:00, Christmas is closed, then the weekend: 1h + 1h. */
    ck_due(sh, "2026-12-24T11:00:00+08:00", wh(2), "2026-12-28T10:00:00+08:00");
    close_calendar();
}
END_TEST

START_TEST(due_working_hours_overnight_dst_and_overlap)
{
    open_calendar();
    /* Saturday 23:00: 3h until Sunday 02:00 (Saturday's hours); Sunday night belongs to
     * Sunday, not a working day; Monday 20:00 + 2h. */
    ck_due(bar, "2026-11-28T23:00:00+01:00", wh(5), "2026-11-30T22:00:00+01:00");
    /* Sunday 01:00 is inside Saturday's hours: counts at once. */
    ck_due(bar, "2026-11-29T01:00:00+01:00", wh(0.5), "2026-11-29T01:30:00+01:00");
    /* Monday 01:00 is inside Sunday's hours: waits for Monday 20:00. */
    ck_due(bar, "2026-11-30T01:00:00+01:00", wh(0.5), "2026-11-30T20:30:00+01:00");
    /* 28 March 20:00 CET: the night ends when the clocks jump at 01:00Z, 6 h later. */
    ck_due(bar, "2026-03-28T20:00:00+01:00", wh(6), "2026-03-29T03:00:00+02:00");
    /* 24 October 20:00 CEST: the night ends at the first 02:00 (00:00Z), 6 h; Sunday is off,
     * so the 7th hour is Monday 20:00-21:00 CET. */
    ck_due(bar, "2026-10-24T20:00:00+02:00", wh(7), "2026-10-26T21:00:00+01:00");
    /* Around the clock: days join up; 50 h from Monday 10:00 is Wednesday 12:00. */
    ck_due(ny, "2026-11-23T10:00:00-05:00", wh(50), "2026-11-25T12:00:00-05:00");
    /* 8 March has 23 hours: 24 working hours from Saturday noon is Sunday 13:00 EDT. */
    ck_due(ny, "2026-03-07T12:00:00-05:00", wh(24), "2026-03-08T13:00:00-04:00");
    /* Monday 22:00-06:00 (8 h) then Tuesday's hours from 06:00 on (01:00-06:00 is counted
     * once): 10 h end Tuesday 08:00. */
    ck_due(ovl, "2026-11-23T22:00:00+08:00", wh(10), "2026-11-24T08:00:00+08:00");
    close_calendar();
}
END_TEST

START_TEST(due_working_days_office)
{
    open_calendar();
    ck_due(sh, "2026-11-23T10:15:00+08:00", wd(1), "2026-11-24T10:15:00+08:00");
    /* Friday afternoon: the next working day is Monday. */
    ck_due(sh, "2026-11-27T15:00:00+08:00", wd(1), "2026-11-30T15:00:00+08:00");
    ck_due(sh, "2026-11-23T10:00:00+08:00", wd(5), "2026-11-30T10:00:00+08:00");
    /* After closing: moved to Tuesday 09:00, one working day later is Wednesday 09:00. */
    ck_due(sh, "2026-11-23T19:00:00+08:00", wd(1), "2026-11-25T09:00:00+08:00");
    /* On a Saturday: moved to Monday 09:00, due Tuesday 09:00. */
    ck_due(sh, "2026-11-28T12:00:00+08:00", wd(1), "2026-12-01T09:00:00+08:00");
    /* On a holiday: moved past the holidays and weekend to Monday 5 Oct 09:00. */
    ck_due(sh, "2026-10-01T10:00:00+08:00", wd(1), "2026-10-06T09:00:00+08:00");
    /* The next working day closes at 12:00, before 15:00: due at its closing. */
    ck_due(sh, "2026-12-23T15:00:00+08:00", wd(1), "2026-12-24T12:00:00+08:00");
    /* The next working day (make-up Saturday) opens at 10:00, after 09:30: due at opening. */
    ck_due(sh, "2026-10-09T09:30:00+08:00", wd(1), "2026-10-10T10:00:00+08:00");
    /* 2 working days from Wednesday: Thursday (short day, 10:00 fits), Christmas closed,
     * weekend, Monday. */
    ck_due(sh, "2026-12-23T10:00:00+08:00", wd(2), "2026-12-28T10:00:00+08:00");
    close_calendar();
}
END_TEST

START_TEST(due_working_days_overnight_and_dst)
{
    open_calendar();
    /* Tuesday 01:00 is 25:00 of Monday's night: one working day later is 25:00 of Tuesday's
     * night, Wednesday 01:00. */
    ck_due(bar, "2026-12-01T01:00:00+01:00", wd(1), "2026-12-02T01:00:00+01:00");
    /* Saturday night: Sunday is not a working day, so Monday night at 21:00. */
    ck_due(bar, "2026-11-28T21:00:00+01:00", wd(1), "2026-11-30T21:00:00+01:00");
    /* Same local time across spring forward: 23 real hours later. */
    ck_due(ny, "2026-03-07T12:00:00-05:00", wd(1), "2026-03-08T12:00:00-04:00");
    /* 02:30 does not exist on 8 March: the instant the clocks jump. */
    ck_due(ny, "2026-03-07T02:30:00-05:00", wd(1), "2026-03-08T03:00:00-04:00");
    /* 01:30 on 1 November happens twice: the first (EDT). */
    ck_due(ny, "2026-10-31T01:30:00-04:00", wd(1), "2026-11-01T01:30:00-04:00");
    /* From the second 01:30 (EST) the next day's 01:30 is plain EST. */
    ck_due(ny, "2026-11-01T01:30:00-05:00", wd(1), "2026-11-02T01:30:00-05:00");
    close_calendar();
}
END_TEST

START_TEST(due_zero_is_the_moved_start)
{
    open_calendar();
    ck_due(sh, "2026-11-23T10:00:00+08:00", wh(0), "2026-11-23T10:00:00+08:00");
    ck_due(sh, "2026-11-28T10:00:00+08:00", wh(0), "2026-11-30T09:00:00+08:00"); /* Sat */
    ck_due(sh, "2026-11-23T10:00:00+08:00", wd(0), "2026-11-23T10:00:00+08:00");
    ck_due(sh, "2026-11-23T18:00:00+08:00", wd(0), "2026-11-24T09:00:00+08:00"); /* closed */
    struct cw_duration zero = {CW_TIME_WALL, 0, 0};
    ck_due(never, "2026-11-23T10:00:00+08:00", zero, "2026-11-23T10:00:00+08:00");
    close_calendar();
}
END_TEST

START_TEST(due_impossible_is_refused)
{
    open_calendar();
    int64_t due = 42, t = at("2026-11-23T10:00:00+08:00");
    struct cw_duration d = wh(1), days = wd(1), unset = {CW_TIME_UNSET, 0, 0};
    struct cw_duration neg = {CW_TIME_WORKING_HOURS, -1, 0}, negwall = {CW_TIME_WALL, -1, 0};
    struct cw_duration huge = {CW_TIME_WALL, INT64_MAX, 0};
    /* Never open: no working time within the bound. */
    ck_assert_int_eq(cw_calendar_due(cal, never, t, &d, &due), -1);
    ck_assert_int_eq(cw_calendar_due(cal, never, t, &days, &due), -1);
    ck_assert_int_eq(due, 42);
    /* 20 years of working hours is past the 10-year scan. */
    struct cw_duration years = wh(20.0 * 366 * 24);
    ck_assert_int_eq(cw_calendar_due(cal, ny, t, &years, &due), -1);
    ck_assert_int_eq(cw_calendar_due(cal, sh, t, &unset, &due), -1);
    ck_assert_int_eq(cw_calendar_due(cal, sh, t, &neg, &due), -1);
    ck_assert_int_eq(cw_calendar_due(cal, sh, t, &negwall, &due), -1);
    ck_assert_int_eq(cw_calendar_due(cal, sh, t, &huge, &due), -1);
    ck_assert_int_eq(cw_calendar_due(cal, sh, INT64_MAX, &WALL_H, &due), -1);
    ck_assert_int_eq(cw_calendar_due(cal, sh, t, NULL, &due), -1);
    close_calendar();
}
END_TEST

/* ---- against glibc, and speed ---- */

static uint64_t rng_state = 0x9E3779B97F4A7C15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

START_TEST(local_matches_glibc_localtime)
{
    open_calendar();
    const struct cw_site *sites[] = {bar, ny, syd};
    const int64_t from = at("2000-01-01T00:00:00Z") / 1000, to = at("2036-01-01T00:00:00Z") / 1000;
    const int64_t far = at("2600-01-01T00:00:00Z") / 1000;
    for (size_t z = 0; z < 3; z++) {
        setenv("TZ", sites[z]->timezone, 1);
        tzset();
        /* 10000 instants in 2000-2035, then 1000 from 2036 to 2600 (the footer's rule). */
        for (int i = 0; i < 11000; i++) {
            int64_t s = i < 10000 ? from + (int64_t)(rng() % (uint64_t)(to - from))
                                  : to + (int64_t)(rng() % (uint64_t)(far - to));
            time_t tt = (time_t)s;
            struct tm tm;
            struct cw_local l;
            ck_assert_ptr_nonnull(localtime_r(&tt, &tm));
            ck_assert_int_eq(cw_calendar_local(cal, sites[z], s * 1000 + 500, &l), 0);
            ck_assert_msg(
                l.year == tm.tm_year + 1900 && l.month == tm.tm_mon + 1 && l.day == tm.tm_mday &&
                    l.hour == tm.tm_hour && l.minute == tm.tm_min && l.second == tm.tm_sec &&
                    l.wday == tm.tm_wday && l.utc_offset_s == tm.tm_gmtoff,
                "%s at %lld: %s", sites[z]->timezone, (long long)s, fmt(sites[z], s * 1000));
        }
    }
    close_calendar();
}
END_TEST

START_TEST(speed_of_due_working_hours)
{
    open_calendar();
    enum { N = 200000 };
    struct cw_duration d = wh(8);
    const struct cw_site *sites[] = {sh, ny};
    int64_t t0 = at("2026-01-01T00:00:00+08:00"), due;
    for (size_t k = 0; k < 2; k++) {
        int failed = 0;
        struct timespec a, b;
        struct cw_local l;
        clock_gettime(CLOCK_MONOTONIC, &a);
        /* Starts spread over a year, in and out of hours. No ck_assert inside: each one
         * records a mark point through the fork's pipe and would be what is measured. */
        for (int i = 0; i < N; i++)
            failed +=
                cw_calendar_due(cal, sites[k], t0 + (int64_t)(rng() % 31536000000u), &d, &due) != 0;
        clock_gettime(CLOCK_MONOTONIC, &b);
        double due_s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
        for (int i = 0; i < N; i++)
            failed +=
                cw_calendar_local(cal, sites[k], t0 + (int64_t)(rng() % 31536000000u), &l) != 0;
        clock_gettime(CLOCK_MONOTONIC, &a);
        double local_s = (double)(a.tv_sec - b.tv_sec) + (double)(a.tv_nsec - b.tv_nsec) / 1e9;
        printf("calendar: %s (%s): cw_calendar_due 8wh %.1fM calls/s, cw_calendar_local %.1fM "
               "calls/s\n",
               sites[k]->id, sites[k]->timezone, N / due_s / 1e6, N / local_s / 1e6);
        ck_assert_int_eq(failed, 0);
    }
    close_calendar();
}
END_TEST

CW_TEST_MAIN("calendar", new_reads_zones_and_refuses_bad_ones, local_date_follows_the_site_not_utc,
             rfc3339_carries_the_site_offset, dst_in_berlin_both_ways, dst_in_new_york_both_ways,
             local_to_instant_skipped_and_repeated_times,
             open_on_weekdays_special_days_and_holidays, open_overnight_and_across_dst,
             due_wall_clock, due_working_hours_office, due_working_hours_overnight_dst_and_overlap,
             due_working_days_office, due_working_days_overnight_and_dst,
             due_zero_is_the_moved_start, due_impossible_is_refused, local_matches_glibc_localtime,
             speed_of_due_working_hours)
