/*
 * Site clocks and working calendars (calendar.h says what is computed; this says how).
 *
 * Time zones: each distinct zone's TZif file (RFC 8536) is read once. Its 64-bit data gives
 * the UTC offset changes up to the end of the table; its footer, a POSIX TZ string
 * ("EST5EDT,M3.2.0,M11.1.0"), the rule after it. The rule's changes are generated for 400
 * years past the table into the same arrays: POSIX rules name months, weeks and weekdays, and
 * the Gregorian calendar repeats exactly every 400 years (146097 days, a whole number of
 * weeks), so an instant later than that is folded back by whole 400-year cycles and looked
 * up in the same table. Every query is then one binary search (about 11 steps for a zone
 * with DST) and never touches TZ, tzset() or global state. Dropped are changes that keep the
 * offset (abbreviation or isdst only).
 *
 * Limits: leap-second zones ("right/...") are refused (Unix time has no leap seconds);
 * version 1 files (no footer) keep their last offset after their table; footer rules are
 * taken to give each year's changes in order (true of every tzdata zone). Before its first
 * change a zone keeps its first local time type, as RFC 8536 says.
 *
 * Working time is walked day by day: a day is its local date, numbered in days since
 * 1970-01-01; its hours become instants with zone_utc(); a due time scans forward from the
 * day before the start (whose overnight hours may still run) with the bounds of calendar.h.
 */
#include "calendar.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SEC_PER_DAY 86400
#define MS_PER_DAY 86400000LL
#define MIN_PER_DAY 1440
#define ERA_DAYS 146097 /* days in 400 Gregorian years */
#define ERA_SECONDS ((int64_t)ERA_DAYS * SEC_PER_DAY)
#define RULE_YEARS 400
#define MIN_MS (-62135596800000LL) /* 0001-01-01T00:00:00Z */
#define MAX_MS 253402300799999LL   /* 9999-12-31T23:59:59.999Z */
#define TZIF_MAX_BYTES (1 << 20)   /* real ones are under 4 KiB */
#define TZIF_MAX_TYPES 256
#define FOOTER_MAX 128
/* RFC 8536: offsets are more than -25 hours and less than 26 hours. */
#define OFFSET_MIN (-89999)
#define OFFSET_MAX 93599

struct zone {
    char *name;
    int64_t *utc; /* [n] when each offset change happens, Unix seconds, ascending */
    int64_t *loc; /* [n] utc[i] + off[i]: the local time the clock shows right after it */
    int32_t *off; /* [n] the offset from utc[i] on, seconds east of UTC */
    size_t n;
    int32_t off0;      /* before utc[0] (always, when n == 0) */
    bool periodic;     /* the table ends with RULE_YEARS years of a footer rule */
    int64_t fold_from; /* periodic: start of the 400-year window later instants fold into */
};

struct site_slot {
    const struct cw_site *site; /* NULL: free */
    const struct zone *zone;
};

struct cw_calendar {
    struct zone **zones; /* one per distinct zone name */
    size_t nzones;
    struct site_slot *slots; /* open addressing by site pointer */
    size_t mask;
};

static void set_err(char *err, size_t errlen, const char *fmt, const char *a, const char *b)
{
    if (err && errlen) snprintf(err, errlen, fmt, a, b);
}

/* ---- civil dates (proleptic Gregorian; H. Hinnant's algorithms) ---- */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

static bool is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int month_days(int64_t y, int m)
{
    static const int n[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return n[m - 1] + (m == 2 && is_leap(y));
}

/* Days since 1970-01-01. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = floor_div(y, 400), yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    return era * ERA_DAYS + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
}

static void civil_from_days(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468;
    int64_t era = floor_div(days, ERA_DAYS), doe = days - era * ERA_DAYS;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100), mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* 1970-01-01 was a Thursday. */
static int weekday(int64_t days) { return (int)((days % 7 + 7 + CW_THU) % 7); }

/* ---- zone queries ---- */

/* The index of the last v[i] <= t, or -1. */
static ptrdiff_t find_le(const int64_t *v, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (v[mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (ptrdiff_t)lo - 1;
}

static int32_t off_at(const struct zone *z, ptrdiff_t i) { return i < 0 ? z->off0 : z->off[i]; }

/* Moves t (UTC or local seconds) back into the table by whole 400-year cycles; returns the
 * shift to add back to a result. */
static int64_t zone_fold(const struct zone *z, int64_t *t)
{
    if (!z->periodic || *t < z->fold_from + ERA_SECONDS) return 0;
    int64_t shift = (*t - z->fold_from) / ERA_SECONDS * ERA_SECONDS;
    *t -= shift;
    return shift;
}

/* The UTC offset at instant t (seconds). */
static int32_t zone_offset(const struct zone *z, int64_t t)
{
    zone_fold(z, &t);
    return off_at(z, find_le(z->utc, z->n, t));
}

/* The instant (seconds) of local time `local`: a skipped local time gives the instant the
 * clocks jump (*exact false), a repeated one its first occurrence. */
static int64_t zone_utc(const struct zone *z, int64_t local, bool *exact)
{
    int64_t shift = zone_fold(z, &local), t;
    ptrdiff_t i = find_le(z->loc, z->n, local); /* the last change the clock is past */
    bool ok = true;
    if (i >= 0 && local < z->utc[i] + off_at(z, i - 1)) {
        t = local - off_at(z, i - 1); /* shown before change i too: the earlier one */
    } else if ((size_t)(i + 1) < z->n && local - off_at(z, i) >= z->utc[i + 1]) {
        t = z->utc[i + 1]; /* jumped over by change i + 1 */
        ok = false;
    } else {
        t = local - off_at(z, i);
    }
    if (exact) *exact = ok;
    return t + shift;
}

/* The same in milliseconds: the fraction is kept unless the time was skipped. */
static int64_t zone_utc_ms(const struct zone *z, int64_t local_ms)
{
    int64_t s = floor_div(local_ms, 1000);
    bool exact;
    int64_t t = zone_utc(z, s, &exact);
    return t * 1000 + (exact ? local_ms - s * 1000 : 0);
}

static int64_t zone_local_ms(const struct zone *z, int64_t ms)
{
    return ms + (int64_t)zone_offset(z, floor_div(ms, 1000)) * 1000;
}

/* The local date of instant ms, in days since 1970-01-01. */
static int64_t zone_day(const struct zone *z, int64_t ms)
{
    return floor_div(zone_local_ms(z, ms), MS_PER_DAY);
}

/* ---- the POSIX TZ footer ---- */

struct rule_date {
    char kind;    /* 'J': Jn, day 1..365 without Feb 29; 'n': day 0..365; 'M': Mm.w.d */
    int a, b, c;  /* n, or month, week (5 = last), weekday */
    int32_t time; /* local time of the change, seconds (may be < 0 or > 24h) */
};

struct posix_tz {
    int32_t std_off, dst_off; /* seconds east of UTC */
    bool dst;
    struct rule_date start, end; /* into and out of DST */
};

/* "CET" or "<+08>". */
static bool parse_abbr(const char **p)
{
    const char *s = *p, *b;
    if (*s == '<') {
        for (b = ++s; *s && *s != '>'; s++) continue;
        if (*s != '>' || s == b) return false;
        *p = s + 1;
        return true;
    }
    for (b = s; isalpha((unsigned char)*s); s++) continue;
    if (s - b < 3) return false;
    *p = s;
    return true;
}

static bool parse_num(const char **p, int lo, int hi, int *out)
{
    const char *s = *p;
    int n = 0, digits = 0;
    for (; isdigit((unsigned char)*s) && digits < 4; s++, digits++) n = n * 10 + (*s - '0');
    if (!digits || n < lo || n > hi) return false;
    *out = n;
    *p = s;
    return true;
}

/* [+-]hh[:mm[:ss]] in seconds, hh <= max_h. */
static bool parse_hms(const char **p, int max_h, int32_t *out)
{
    const char *s = *p;
    int sign = 1, v[3] = {0, 0, 0};
    if (*s == '+' || *s == '-') sign = *s++ == '-' ? -1 : 1;
    if (!parse_num(&s, 0, max_h, &v[0])) return false;
    for (int i = 1; i < 3 && *s == ':'; i++) {
        s++;
        if (!parse_num(&s, 0, 59, &v[i])) return false;
    }
    *out = sign * (v[0] * 3600 + v[1] * 60 + v[2]);
    *p = s;
    return true;
}

static bool parse_rule_date(const char **p, struct rule_date *r)
{
    const char *s = *p;
    r->time = 7200; /* POSIX default: 02:00 */
    r->kind = *s == 'J' || *s == 'M' ? *s++ : 'n';
    if (r->kind == 'J' && !parse_num(&s, 1, 365, &r->a)) return false;
    if (r->kind == 'n' && !parse_num(&s, 0, 365, &r->a)) return false;
    if (r->kind == 'M' &&
        !(parse_num(&s, 1, 12, &r->a) && *s++ == '.' && parse_num(&s, 1, 5, &r->b) && *s++ == '.' &&
          parse_num(&s, 0, 6, &r->c)))
        return false;
    if (*s == '/') {
        s++;
        if (!parse_hms(&s, 167, &r->time)) return false; /* RFC 8536 allows -167h..167h */
    }
    *p = s;
    return true;
}

/* "CST-8", "CET-1CEST,M3.5.0,M10.5.0/3". A DST part needs its rule (tzdata always gives it;
 * POSIX leaves the default to the implementation). */
static bool parse_posix_tz(const char *s, struct posix_tz *tz)
{
    int32_t off;
    *tz = (struct posix_tz){0};
    if (!parse_abbr(&s) || !parse_hms(&s, 24, &off)) return false;
    tz->std_off = -off; /* POSIX counts hours west */
    if (!*s) return true;
    if (!parse_abbr(&s)) return false;
    tz->dst = true;
    tz->dst_off = tz->std_off + 3600;
    if (*s != ',') {
        if (!parse_hms(&s, 24, &off)) return false;
        tz->dst_off = -off;
    }
    return *s++ == ',' && parse_rule_date(&s, &tz->start) && *s++ == ',' &&
           parse_rule_date(&s, &tz->end) && *s == '\0';
}

/* Days since 1970-01-01 of a rule's date in year y. */
static int64_t rule_day(const struct rule_date *r, int64_t y)
{
    if (r->kind == 'J') return days_from_civil(y, 1, 1) + r->a - 1 + (is_leap(y) && r->a >= 60);
    if (r->kind == 'n') return days_from_civil(y, 1, 1) + r->a;
    int64_t first = days_from_civil(y, r->a, 1);
    int64_t d = first + (r->c - weekday(first) + 7) % 7 + 7 * (r->b - 1);
    while (d >= first + month_days(y, r->a)) d -= 7; /* week 5: the last one */
    return d;
}

/* Appends a change generated by the rule: only after the file's last listed change
 * (`table_end`; the file's own entries are the first `fixed`); one at the same instant as the
 * previous generated one replaces it (a permanent-DST rule ends and restarts DST at once). */
static void zone_push_rule(struct zone *z, size_t fixed, int64_t table_end, int64_t t, int32_t off)
{
    if (t <= table_end) return;
    if (z->n > fixed && t <= z->utc[z->n - 1]) {
        if (t < z->utc[z->n - 1]) return;
        z->n--;
    }
    if (off == off_at(z, (ptrdiff_t)z->n - 1)) return;
    z->utc[z->n] = t;
    z->off[z->n++] = off;
}

/* Generates the rule's changes from the year of the file's last listed change (table_end,
 * INT64_MIN: none) for RULE_YEARS + 3 years; the folding window starts two years in, when
 * only the rule decides the offset. The last listed change may be one dropped for keeping
 * the offset (Grand Turk's AST -> EDT in 2018): the rule starts after it all the same. */
static void zone_extend(struct zone *z, int64_t table_end, const struct posix_tz *tz)
{
    size_t fixed = z->n;
    int64_t y0 = 1970;
    int m, d;
    if (table_end != INT64_MIN) civil_from_days(floor_div(table_end, SEC_PER_DAY), &y0, &m, &d);
    for (int64_t y = y0; y <= y0 + 2 + RULE_YEARS; y++) {
        int64_t on = rule_day(&tz->start, y) * SEC_PER_DAY + tz->start.time - tz->std_off;
        int64_t off = rule_day(&tz->end, y) * SEC_PER_DAY + tz->end.time - tz->dst_off;
        if (on < off) {
            zone_push_rule(z, fixed, table_end, on, tz->dst_off);
            zone_push_rule(z, fixed, table_end, off, tz->std_off);
        } else { /* southern hemisphere: DST spans the new year */
            zone_push_rule(z, fixed, table_end, off, tz->std_off);
            zone_push_rule(z, fixed, table_end, on, tz->dst_off);
        }
    }
    z->periodic = true;
    z->fold_from = days_from_civil(y0 + 2, 1, 1) * SEC_PER_DAY;
}

/* ---- TZif files ---- */

struct tzif_counts {
    uint32_t isut, isstd, leap, time, type, chars;
};

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const unsigned char *p)
{
    return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

/* The header at p; returns where its data starts, or NULL. */
static const unsigned char *tzif_header(const unsigned char *p, const unsigned char *end,
                                        struct tzif_counts *c)
{
    if (end - p < 44 || memcmp(p, "TZif", 4) != 0) return NULL;
    *c = (struct tzif_counts){be32(p + 20), be32(p + 24), be32(p + 28),
                              be32(p + 32), be32(p + 36), be32(p + 40)};
    return p + 44;
}

static uint64_t tzif_data_size(const struct tzif_counts *c, unsigned tsize)
{
    return (uint64_t)c->time * (tsize + 1) + (uint64_t)c->type * 6 + c->chars +
           (uint64_t)c->leap * (tsize + 4) + c->isstd + c->isut;
}

/* The footer after the 64-bit data: "\nCST-8\n". Empty: no rule. */
static int tzif_footer(const unsigned char *p, const unsigned char *end, char *out)
{
    if (p >= end || *p != '\n') return -1;
    const unsigned char *nl = memchr(p + 1, '\n', (size_t)(end - p - 1));
    if (!nl || nl - p - 1 >= FOOTER_MAX) return -1;
    memcpy(out, p + 1, (size_t)(nl - p - 1));
    out[nl - p - 1] = '\0';
    return 0;
}

static int zone_parse(struct zone *z, const unsigned char *buf, size_t len, const char **why)
{
    const unsigned char *end = buf + len, *p;
    struct tzif_counts c;
    unsigned tsize = 4;
    *why = "not a TZif file";
    if (!(p = tzif_header(buf, end, &c))) return -1;
    if (buf[4] >= '2') { /* skip the 32-bit data for the 64-bit header and data */
        uint64_t skip = tzif_data_size(&c, 4);
        if (skip > (uint64_t)(end - p) || !(p = tzif_header(p + skip, end, &c))) goto truncated;
        tsize = 8;
    }
    uint64_t size = tzif_data_size(&c, tsize);
    if (size > (uint64_t)(end - p)) goto truncated;
    if (c.leap) {
        *why = "leap-second time zones are not supported";
        return -1;
    }
    *why = "bad TZif data";
    if (c.type == 0 || c.type > TZIF_MAX_TYPES) return -1;
    const unsigned char *idx = p + (size_t)c.time * tsize, *types = idx + c.time;
    int32_t offs[TZIF_MAX_TYPES];
    for (uint32_t k = 0; k < c.type; k++) {
        offs[k] = (int32_t)be32(types + 6 * k);
        if (offs[k] < OFFSET_MIN || offs[k] > OFFSET_MAX) return -1;
    }
    size_t cap = c.time + 2 * (RULE_YEARS + 3);
    z->utc = malloc(cap * sizeof *z->utc);
    z->loc = malloc(cap * sizeof *z->loc);
    z->off = malloc(cap * sizeof *z->off);
    if (!z->utc || !z->loc || !z->off) {
        *why = "out of memory";
        return -1;
    }
    z->off0 = offs[0];
    int64_t table_end = INT64_MIN; /* the last change listed, kept or not */
    for (uint32_t i = 0; i < c.time; i++) {
        const unsigned char *q = p + (size_t)i * tsize;
        int64_t t = tsize == 8 ? be64(q) : (int32_t)be32(q);
        if (idx[i] >= c.type || t <= table_end) return -1;
        table_end = t;
        if (offs[idx[i]] == off_at(z, (ptrdiff_t)z->n - 1)) continue;
        z->utc[z->n] = t;
        z->off[z->n++] = offs[idx[i]];
    }
    if (tsize == 8) {
        char footer[FOOTER_MAX];
        struct posix_tz tz;
        *why = "bad TZ string at the end of the TZif file";
        if (tzif_footer(p + size, end, footer) < 0) return -1;
        if (footer[0] && !parse_posix_tz(footer, &tz)) return -1;
        if (footer[0] && tz.dst) zone_extend(z, table_end, &tz);
    }
    for (size_t i = 0; i < z->n; i++) z->loc[i] = z->utc[i] + z->off[i];
    return 0;
truncated:
    *why = "truncated TZif file";
    return -1;
}

static void zone_free(struct zone *z)
{
    if (!z) return;
    free(z->name);
    free(z->utc);
    free(z->loc);
    free(z->off);
    free(z);
}

/* Reads whole small regular file `path` into *buf. Returns its length, or -1 (errno set, or
 * EFBIG when too large). */
static ssize_t read_small_file(const char *path, unsigned char **buf)
{
    struct stat st;
    ssize_t got = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (fstat(fd, &st) < 0) goto fail;
    if (!S_ISREG(st.st_mode) || st.st_size > TZIF_MAX_BYTES) {
        errno = S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        goto fail;
    }
    if (!(*buf = malloc((size_t)st.st_size + 1))) goto fail;
    while (got < st.st_size) {
        ssize_t r = read(fd, *buf + got, (size_t)(st.st_size - got));
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) goto fail; /* *buf is the caller's to free */
        if (r == 0) break;    /* a file that shrank: what is there will not parse */
        got += r;
    }
    close(fd);
    return got;
fail:;
    int saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

static struct zone *zone_load(const char *dir, const char *name, char *err, size_t errlen)
{
    char path[4096];
    unsigned char *buf = NULL;
    const char *why = "out of memory";
    struct zone *z = calloc(1, sizeof *z);
    if (!z || !(z->name = strdup(name))) goto fail;
    if (snprintf(path, sizeof path, "%s/%s", dir, name) >= (int)sizeof path) {
        why = "path too long";
        goto fail;
    }
    ssize_t len = read_small_file(path, &buf);
    if (len < 0) {
        why = strerror(errno); /* start-up, one thread */
        goto fail;
    }
    if (zone_parse(z, buf, (size_t)len, &why) < 0) goto fail;
    free(buf);
    return z;
fail:
    set_err(err, errlen, "time zone %s: %s", name, why);
    free(buf);
    zone_free(z);
    return NULL;
}

/* ---- the calendar ---- */

static size_t slot_of(const struct cw_site *site, size_t mask)
{
    return (size_t)(((uint64_t)(uintptr_t)site * 0x9E3779B97F4A7C15u) >> 32) & mask;
}

static const struct zone *site_zone(const cw_calendar *cal, const struct cw_site *site)
{
    if (!cal || !site) return NULL;
    for (size_t i = slot_of(site, cal->mask); cal->slots[i].site; i = (i + 1) & cal->mask)
        if (cal->slots[i].site == site) return cal->slots[i].zone;
    return NULL;
}

/* The calendar's table for zone `name`, read on first use. */
static const struct zone *calendar_zone(cw_calendar *cal, const char *dir, const char *name,
                                        char *err, size_t errlen)
{
    for (size_t i = 0; i < cal->nzones; i++)
        if (strcmp(cal->zones[i]->name, name) == 0) return cal->zones[i];
    struct zone *z = zone_load(dir, name, err, errlen);
    if (z) cal->zones[cal->nzones++] = z;
    return z;
}

cw_calendar *cw_calendar_new(const cw_chain *chain, char *err, size_t errlen)
{
    if (!chain) {
        set_err(err, errlen, "%s%s", "no chain", "");
        return NULL;
    }
    size_t nsites = cw_chain_site_count(chain), cap = 16;
    while (cap < 2 * nsites) cap <<= 1; /* at most half full: short probes */
    cw_calendar *cal = calloc(1, sizeof *cal);
    if (!cal || !(cal->slots = calloc(cap, sizeof *cal->slots)) ||
        !(cal->zones = calloc(nsites + 1, sizeof *cal->zones))) {
        set_err(err, errlen, "%s%s", "out of memory", "");
        cw_calendar_free(cal);
        return NULL;
    }
    cal->mask = cap - 1;
    const char *dir = getenv("TZDIR"); /* as the chain loader checked the names */
    if (!dir || !*dir) dir = "/usr/share/zoneinfo";
    for (size_t i = 0; i < nsites; i++) {
        const struct cw_site *site = cw_chain_site_at(chain, i);
        const struct zone *z = calendar_zone(cal, dir, site->timezone, err, errlen);
        if (!z) {
            cw_calendar_free(cal);
            return NULL;
        }
        size_t k = slot_of(site, cal->mask);
        while (cal->slots[k].site) k = (k + 1) & cal->mask;
        cal->slots[k] = (struct site_slot){site, z};
    }
    return cal;
}

void cw_calendar_free(cw_calendar *cal)
{
    if (!cal) return;
    for (size_t i = 0; i < cal->nzones; i++) zone_free(cal->zones[i]);
    free(cal->zones);
    free(cal->slots);
    free(cal);
}

/* ---- local time ---- */

static bool in_range(int64_t ms) { return ms >= MIN_MS && ms <= MAX_MS; }

static int local_fill(int64_t local_s, int32_t off, struct cw_local *out)
{
    int64_t days = floor_div(local_s, SEC_PER_DAY), sod = local_s - days * SEC_PER_DAY, y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    if (y < 1 || y > 9999) return -1;
    *out = (struct cw_local){.year = (int)y,
                             .month = m,
                             .day = d,
                             .hour = (int)(sod / 3600),
                             .minute = (int)(sod / 60 % 60),
                             .second = (int)(sod % 60),
                             .wday = weekday(days),
                             .utc_offset_s = off,
                             .yyyymmdd = (int)y * 10000 + m * 100 + d};
    return 0;
}

int cw_calendar_local(const cw_calendar *cal, const struct cw_site *site, int64_t ms,
                      struct cw_local *out)
{
    const struct zone *z = site_zone(cal, site);
    if (!z || !out || !in_range(ms)) return -1;
    int64_t s = floor_div(ms, 1000);
    int32_t off = zone_offset(z, s);
    return local_fill(s + off, off, out);
}

int cw_calendar_format(const cw_calendar *cal, const struct cw_site *site, int64_t ms, char *buf,
                       size_t len)
{
    const struct zone *z = site_zone(cal, site);
    struct cw_local l;
    if (!z || !buf || len < CW_CALENDAR_RFC3339_SIZE || !in_range(ms)) return -1;
    int64_t s = floor_div(ms, 1000);
    int32_t off = zone_offset(z, s);
    off -= off % 60; /* RFC 3339 offsets have no seconds */
    if (local_fill(s + off, off, &l) < 0) return -1;
    int a = off < 0 ? -off : off;
    return snprintf(buf, len, "%04d-%02d-%02dT%02d:%02d:%02d%c%02d:%02d", l.year, l.month, l.day,
                    l.hour, l.minute, l.second, off < 0 ? '-' : '+', a / 3600, a / 60 % 60);
}

int cw_calendar_instant(const cw_calendar *cal, const struct cw_site *site, int yyyymmdd,
                        int sec_of_day, int64_t *ms)
{
    const struct zone *z = site_zone(cal, site);
    int y = yyyymmdd / 10000, m = yyyymmdd / 100 % 100, d = yyyymmdd % 100;
    if (!z || !ms || y < 1 || y > 9999 || m < 1 || m > 12 || d < 1 || d > month_days(y, m) ||
        sec_of_day < 0 || sec_of_day > SEC_PER_DAY)
        return -1;
    int64_t t = zone_utc(z, days_from_civil(y, m, d) * SEC_PER_DAY + sec_of_day, NULL) * 1000;
    if (!in_range(t)) return -1;
    *ms = t;
    return 0;
}

/* ---- days and their hours ---- */

static int cmp_holiday(const void *key, const void *elem)
{
    int a = *(const int *)key, b = ((const struct cw_holiday *)elem)->date;
    return (a > b) - (a < b);
}

static int cmp_special(const void *key, const void *elem)
{
    int a = *(const int *)key, b = ((const struct cw_special_day *)elem)->date;
    return (a > b) - (a < b);
}

struct day {
    struct cw_hours hours; /* the special day's, else the weekday's */
    bool working;
};

static void day_get(const struct cw_site *site, int64_t days, struct day *out)
{
    int64_t y;
    int m, d;
    civil_from_days(days, &y, &m, &d);
    int ymd = (int)y * 10000 + m * 100 + d, wday = weekday(days);
    const struct cw_special_day *sp = site->nspecial_days
                                          ? bsearch(&ymd, site->special_days, site->nspecial_days,
                                                    sizeof *site->special_days, cmp_special)
                                          : NULL;
    bool holiday = site->nholidays && bsearch(&ymd, site->holidays, site->nholidays,
                                              sizeof *site->holidays, cmp_holiday);
    out->hours = sp ? sp->hours : site->hours[wday];
    out->working = !out->hours.closed && !holiday && (sp || (site->working_days >> wday & 1u));
}

/* The hours of local day `days` as instants [*open, *close) in ms; false when none. */
static bool day_hours(const struct zone *z, int64_t days, const struct cw_hours *h, int64_t *open,
                      int64_t *close)
{
    int end = h->overnight ? h->close + MIN_PER_DAY : h->close; /* minutes from its midnight */
    if (h->closed || end <= h->open) return false;
    *open = zone_utc(z, days * SEC_PER_DAY + h->open * 60, NULL) * 1000;
    *close = zone_utc(z, days * SEC_PER_DAY + end * 60, NULL) * 1000;
    return *open < *close; /* both inside one skipped hour: none */
}

/* From day *days on (at most CW_CALENDAR_IDLE_DAYS of them, none past `last`), the first
 * working day whose hours end after instant `after`: sets *days and its hours. */
static int next_working(const struct zone *z, const struct cw_site *site, int64_t *days,
                        int64_t last, int64_t after, int64_t *open, int64_t *close)
{
    for (int idle = 0; idle < CW_CALENDAR_IDLE_DAYS && *days <= last; idle++, (*days)++) {
        struct day d;
        day_get(site, *days, &d);
        if (d.working && day_hours(z, *days, &d.hours, open, close) && *close > after) return 0;
    }
    return -1;
}

bool cw_calendar_is_open(const cw_calendar *cal, const struct cw_site *site, int64_t ms)
{
    const struct zone *z = site_zone(cal, site);
    if (!z || !in_range(ms)) return false;
    int64_t today = zone_day(z, ms), open, close;
    /* Yesterday's overnight hours may still run; tomorrow's may have begun when the clocks
     * went back across midnight. */
    for (int64_t days = today - 1; days <= today + 1; days++) {
        struct day d;
        day_get(site, days, &d);
        if (day_hours(z, days, &d.hours, &open, &close) && open <= ms && ms < close) return true;
    }
    return false;
}

/* ---- due times ---- */

static int due_working_hours(const struct zone *z, const struct cw_site *site, int64_t start,
                             int64_t left, int64_t *due)
{
    int64_t days = zone_day(z, start) - 1, last = days + CW_CALENDAR_SCAN_DAYS, at = start;
    int64_t open, close;
    if (left < 0) return -1;
    for (;;) {
        if (next_working(z, site, &days, last, at, &open, &close) < 0) return -1;
        if (open < at) open = at; /* started inside, or overlapping hours counted once */
        if (left <= close - open) {
            *due = open + left;
            return 0;
        }
        left -= close - open;
        at = close;
        days++;
    }
}

static int due_working_days(const struct zone *z, const struct cw_site *site, int64_t start,
                            unsigned n, int64_t *due)
{
    int64_t days = zone_day(z, start) - 1, last = days + CW_CALENDAR_SCAN_DAYS;
    int64_t open, close;
    if (next_working(z, site, &days, last, start, &open, &close) < 0) return -1;
    int64_t from = open > start ? open : start;
    /* Time of day counted from the midnight of the day the hours belong to: past 24h
     * inside the small hours of overnight hours. */
    int64_t tod = zone_local_ms(z, from) - days * MS_PER_DAY;
    for (unsigned k = 0; k < n; k++) {
        days++;
        if (next_working(z, site, &days, last, from, &open, &close) < 0) return -1;
    }
    if (n == 0) {
        *due = from;
        return 0;
    }
    int64_t t = zone_utc_ms(z, days * MS_PER_DAY + tod);
    *due = t < open ? open : t > close ? close : t;
    return 0;
}

int cw_calendar_due(const cw_calendar *cal, const struct cw_site *site, int64_t start_ms,
                    const struct cw_duration *d, int64_t *due_ms)
{
    const struct zone *z = site_zone(cal, site);
    int64_t due = 0;
    int rc = -1;
    if (!z || !d || !due_ms || !in_range(start_ms)) return -1;
    switch (d->basis) {
    case CW_TIME_WALL:
        if (d->ms >= 0 && d->ms <= MAX_MS - start_ms) {
            due = start_ms + d->ms;
            rc = 0;
        }
        break;
    case CW_TIME_WORKING_HOURS: rc = due_working_hours(z, site, start_ms, d->ms, &due); break;
    case CW_TIME_WORKING_DAYS: rc = due_working_days(z, site, start_ms, d->days, &due); break;
    case CW_TIME_UNSET: break; /* the clock does not run: no due time */
    }
    if (rc < 0 || !in_range(due)) return -1;
    *due_ms = due;
    return 0;
}
