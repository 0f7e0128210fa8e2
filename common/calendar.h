/*
 * The calendar: each site's own clock and working calendar, for case numbers
 * (SH01-261124-0042 carries the site-local date), messages, opening checks and SLA due times.
 *
 * Built once from a loaded chain (cw_calendar_new reads the TZif file of every distinct time
 * zone of the chain's sites once; sites sharing a zone share its table) and read-only
 * afterwards: any number of threads may query it at once. Queries never touch TZ, tzset() or
 * the file system: a UTC offset is a binary search in the zone's table of offset changes.
 *
 * Instants are Unix milliseconds (UTC). Supported instants: years 0001 to 9999 (UTC);
 * anything else, or a site that is not one of the chain's, gives -1 (false for is_open).
 *
 * Local time -> instant (opening and closing times, "09:00 on 2026-11-25"):
 *   - a local time that does not exist (skipped by a DST change, 02:30 on the spring-forward
 *     day in Berlin) is the instant the clocks jump (01:00Z, shown as 03:00+02:00): the first
 *     instant whose local time is at or after the one asked for;
 *   - a local time that occurs twice (02:30 on the fall-back day) is its first occurrence
 *     (02:30+02:00).
 *
 * Opening hours and working time (docs/chain.md, "How clocks are counted", says the same):
 *   - a day's hours are its special day's if it has one, else its weekday's. They are the
 *     instants from its opening to its closing, converted as above; overnight hours
 *     (22:00-02:00) belong to the day they start on; close 24:00 is the next midnight;
 *   - open: inside some day's hours. Holidays do not close a site (a special day does);
 *   - a working day: its hours are not `closed`, its date is not a holiday, and its weekday is
 *     in working_days or it is a special day (a special day makes any weekday a working day;
 *     a holiday stays a holiday even when it also has special hours);
 *   - working time: the hours of working days. Days whose hours overlap (an overnight day and
 *     an early next day) count the shared time once.
 *
 * Due times (cw_calendar_due), the start moved forward to the next working time first when
 * it is outside working time:
 *   - WALL: start + ms;
 *   - WORKING_HOURS: the instant at which ms of working time have passed since the (moved)
 *     start; ms == 0 gives the moved start. Exactly at a closing time stays at that closing;
 *   - WORKING_DAYS n: on the nth working day after the one the moved start belongs to, the
 *     same local time of day as the moved start (counted from its own day's midnight, so
 *     01:00 inside Monday's 22:00-02:00 means 01:00 after Tuesday's hours begin), kept within
 *     that day's hours: its closing time when it closes earlier, its opening time when it
 *     opens later. Working days whose hours end before the moved start do not count. n == 0
 *     gives the moved start.
 * A due time is -1 (no answer) when no working time is found in CW_CALENDAR_IDLE_DAYS
 * consecutive days (a site that never opens), or would be more than CW_CALENDAR_SCAN_DAYS
 * days after the start, or for a negative or UNSET duration.
 */
#ifndef CW_CALENDAR_H
#define CW_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chain.h"

/* A valid chain may list 400 holidays and 400 closed special days in a row: past those and a
 * week, a site with any working weekday has working time. */
#define CW_CALENDAR_IDLE_DAYS 808
/* About ten years: bounds the work of one due-time computation. */
#define CW_CALENDAR_SCAN_DAYS 3660
/* "2026-11-25T14:03:00+08:00" and its NUL. */
#define CW_CALENDAR_RFC3339_SIZE 26

typedef struct cw_calendar cw_calendar;

/* An instant on a site's clock. */
struct cw_local {
    int year, month, day;     /* 2026, 1..12, 1..31 */
    int hour, minute, second; /* 0..23, 0..59, 0..59 */
    int wday;                 /* sun = 0, as enum cw_weekday */
    int utc_offset_s;         /* local - UTC, seconds: 28800 in Shanghai */
    int yyyymmdd;             /* 20261125; % 1000000 gives the 261125 of case numbers */
};

/* Reads the zone of every site of `chain` ($TZDIR or /usr/share/zoneinfo). NULL on failure
 * with the reason in err ("Asia/Shanghai: truncated TZif file"). The chain must outlive the
 * calendar. */
cw_calendar *cw_calendar_new(const cw_chain *chain, char *err, size_t errlen);
void cw_calendar_free(cw_calendar *cal);

/* The site-local date and time of instant ms (milliseconds are dropped, rounding down). */
int cw_calendar_local(const cw_calendar *cal, const struct cw_site *site, int64_t ms,
                      struct cw_local *out);

/* RFC 3339 with the site's offset, seconds precision: "2026-11-25T14:03:00+08:00" (never
 * "Z"). Historic offsets with seconds (local mean time before ~1900) are cut to whole minutes,
 * the clock shown with them, so the text still names the instant. Returns the length (25), or
 * -1 when len < CW_CALENDAR_RFC3339_SIZE or the instant or site is not supported. */
int cw_calendar_format(const cw_calendar *cal, const struct cw_site *site, int64_t ms, char *buf,
                       size_t len);

/* The instant of local time sec_of_day (0..86400; 86400 is the next midnight) on local date
 * yyyymmdd at the site; skipped and repeated local times as in the comment above. */
int cw_calendar_instant(const cw_calendar *cal, const struct cw_site *site, int yyyymmdd,
                        int sec_of_day, int64_t *ms);

/* Whether instant ms is inside the site's opening hours (holidays included). */
bool cw_calendar_is_open(const cw_calendar *cal, const struct cw_site *site, int64_t ms);

/* start_ms + d in the site's calendar (rules above). 0 with *due_ms set, or -1. */
int cw_calendar_due(const cw_calendar *cal, const struct cw_site *site, int64_t start_ms,
                    const struct cw_duration *d, int64_t *due_ms);

#endif
