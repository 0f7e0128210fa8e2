/* Pure parsers and validators for the values of a chain file: ids, times of day, opening
 * hours, dates, durations, hashes, URLs, phone numbers, time zones, template placeholders.
 * Each returns 0, or -1 with *why set to a static message. */
#include "chain_impl.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static bool is_upper_digit(char ch) { return (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9'); }
static bool is_lower_digit(char ch) { return (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'); }

int cw_val_id(const char *s, enum ld_id_kind kind, const char **why)
{
    size_t n = strlen(s);
    switch (kind) {
    case ID_SITE:
        *why = "a site id is 2 to 8 capital letters or digits, like SH01";
        if (n < 2 || n > 8) return -1;
        for (size_t i = 0; i < n; i++)
            if (!is_upper_digit(s[i])) return -1;
        return 0;
    case ID_ROLE:
        *why = "a role id is a lower-case letter, then lower-case letters, digits or _ "
               "(at most 32)";
        if (n < 1 || n > 32 || !(s[0] >= 'a' && s[0] <= 'z')) return -1;
        for (size_t i = 0; i < n; i++)
            if (!is_lower_digit(s[i]) && s[i] != '_') return -1;
        return 0;
    case ID_GENERIC:
        *why = "an id is a letter or digit, then letters, digits, '-', '_' or '.' (at most 64)";
        if (n < 1 || n > LIM_ID || !isalnum((unsigned char)s[0])) return -1;
        for (size_t i = 0; i < n; i++)
            if (!isalnum((unsigned char)s[i]) && !strchr("-_.", s[i])) return -1;
        return 0;
    }
    return -1;
}

/* "9:30", "09:30", "24:00" (when allowed) -> minutes since midnight. */
int cw_val_time(const char *s, bool allow_24, uint16_t *out, const char **why)
{
    *why = "a time of day is HH:MM, 00:00 to 23:59";
    const char *p = s;
    int h = 0, digits = 0;
    while (isdigit((unsigned char)*p) && digits < 3) h = h * 10 + (*p++ - '0'), digits++;
    if (digits < 1 || digits > 2 || *p++ != ':') return -1;
    if (!isdigit((unsigned char)p[0]) || !isdigit((unsigned char)p[1]) || p[2]) return -1;
    int m = (p[0] - '0') * 10 + (p[1] - '0');
    if (m > 59) return -1;
    if (h == 24 && m == 0 && allow_24) {
        *out = 1440;
        return 0;
    }
    if (allow_24) *why = "a time of day is HH:MM, 00:00 to 24:00";
    if (h > 23) return -1;
    *out = (uint16_t)(h * 60 + m);
    return 0;
}

/* "closed", or "10:00-22:00"; "22:00-02:00" ends after midnight; "00:00-24:00" all day. */
int cw_val_hours(const char *s, struct cw_hours *out, const char **why)
{
    *out = (struct cw_hours){0};
    if (strcmp(s, "closed") == 0) {
        out->closed = true;
        return 0;
    }
    const char *dash = strchr(s, '-');
    char open[8];
    *why = "opening hours are \"HH:MM-HH:MM\" or \"closed\"";
    if (!dash || dash - s >= (long)sizeof open) return -1;
    memcpy(open, s, (size_t)(dash - s));
    open[dash - s] = '\0';
    if (cw_val_time(open, false, &out->open, why) < 0) return -1;
    if (cw_val_time(dash + 1, true, &out->close, why) < 0) return -1;
    if (out->open == out->close) {
        *why = "opening and closing times are the same (all day is \"00:00-24:00\")";
        return -1;
    }
    out->overnight = out->close < out->open;
    return 0;
}

static bool leap(int y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

/* "2026-10-01" -> 20261001. */
int cw_val_date(const char *s, int *ymd, const char **why)
{
    *why = "a date is YYYY-MM-DD, a real day between 2000 and 2099";
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)s[i])) return -1;
    int y = atoi(s), m = atoi(s + 5), d = atoi(s + 8);
    static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 2000 || y > 2099 || m < 1 || m > 12 || d < 1) return -1;
    if (d > mdays[m - 1] + (m == 2 && leap(y))) return -1;
    *ymd = y * 10000 + m * 100 + d;
    return 0;
}

/* "30s" "10m" "1h" "2d" (wall clock), "90wm" "8wh" (working time), "1wd" (working days). */
int cw_val_duration(const char *s, struct cw_duration *out, const char **why)
{
    static const struct {
        const char *unit;
        enum cw_time_basis basis;
        long long ms;
    } units[] = {
        {"s", CW_TIME_WALL, 1000},
        {"m", CW_TIME_WALL, 60000},
        {"h", CW_TIME_WALL, 3600000},
        {"d", CW_TIME_WALL, 86400000},
        {"wm", CW_TIME_WORKING_HOURS, 60000},
        {"wh", CW_TIME_WORKING_HOURS, 3600000},
        {"wd", CW_TIME_WORKING_DAYS, 0},
    };
    *why = "a duration is a whole number and a unit: s, m, h, d (wall clock), wm, wh (working "
           "time), wd (working days), like 10m, 8wh, 1wd";
    char *end;
    if (!isdigit((unsigned char)s[0])) return -1;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || v <= 0) {
        if (!errno && v == 0) *why = "a duration must be more than zero";
        return -1;
    }
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit) != 0) continue;
        *out = (struct cw_duration){.basis = units[i].basis};
        if (units[i].basis == CW_TIME_WORKING_DAYS) {
            *why = "at most 60 working days";
            if (v > LIM_MAX_WORKING_DAYS) return -1;
            out->days = (unsigned)v;
            return 0;
        }
        *why = "at most 90 days";
        if (v > LIM_MAX_WALL_MS / units[i].ms) return -1;
        out->ms = v * units[i].ms;
        return 0;
    }
    return -1;
}

int cw_val_sha256_hex(const char *s, char out[CW_SHA256_HEX_LEN + 1], const char **why)
{
    *why = "a SHA-256 hash is 64 hex digits (printf %s TOKEN | sha256sum)";
    if (strlen(s) != CW_SHA256_HEX_LEN) return -1;
    for (size_t i = 0; i < CW_SHA256_HEX_LEN; i++) {
        if (!isxdigit((unsigned char)s[i])) return -1;
        out[i] = (char)tolower((unsigned char)s[i]);
    }
    out[CW_SHA256_HEX_LEN] = '\0';
    return 0;
}

int cw_val_url(const char *s, const char **why)
{
    const char *host;
    *why = "a webhook URL starts with http:// or https:// and has a host";
    if (strncmp(s, "https://", 8) == 0)
        host = s + 8;
    else if (strncmp(s, "http://", 7) == 0)
        host = s + 7;
    else
        return -1;
    if (!*host || *host == '/' || *host == ':' || *host == '?') return -1;
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p <= ' ' || *p == 0x7f) {
            *why = "a URL has no spaces or control characters";
            return -1;
        }
    }
    return 0;
}

/* Digits with an optional leading +, and spaces, dashes or parentheses between them. */
int cw_val_phone(const char *s, const char **why)
{
    int digits = 0;
    *why = "a phone number is 3 to 20 digits, optionally with a leading +, spaces, - or ()";
    for (const char *p = s; *p; p++) {
        if (isdigit((unsigned char)*p))
            digits++;
        else if (*p == '+' && p == s)
            continue;
        else if (!strchr(" -()", *p))
            return -1;
    }
    return digits >= 3 && digits <= 20 ? 0 : -1;
}

/* A name under the zoneinfo directory ($TZDIR or /usr/share/zoneinfo) holding a TZif file. */
int cw_val_timezone(const char *s, const char **why)
{
    *why = "a time zone is a name like Asia/Shanghai";
    if (!*s || s[0] == '/' || strstr(s, "..") || strlen(s) > 64) return -1;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("/_+-", *p)) return -1;
    const char *dir = getenv("TZDIR");
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir && *dir ? dir : "/usr/share/zoneinfo", s);
    char magic[4];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd >= 0 ? read(fd, magic, sizeof magic) : -1;
    if (fd >= 0) close(fd);
    if (got != 4 || memcmp(magic, "TZif", 4) != 0) {
        *why = "unknown time zone";
        return -1;
    }
    return 0;
}

/* "zh", "en", "zh-TW": a lower-case ISO 639-1 code, optionally a region. */
int cw_val_language(const char *s, const char **why)
{
    *why = "a language is a code like zh, en or zh-TW";
    if (!islower((unsigned char)s[0]) || !islower((unsigned char)s[1])) return -1;
    if (!s[2]) return 0;
    if (s[2] != '-' || !isupper((unsigned char)s[3]) || !isupper((unsigned char)s[4]) || s[5])
        return -1;
    return 0;
}

static const char *const placeholders[] = {
    "case_no",    "reply_by", "status_url", "site_name", "reply_code",
    "staff_name", "due",      "category",   "level",     NULL,
};

int cw_val_template(const char *text, char *bad, size_t badlen, const char **why)
{
    for (const char *p = text; *p; p++) {
        if (*p == '}') {
            *why = "a '}' without its '{':";
            snprintf(bad, badlen, "}");
            return -1;
        }
        if (*p != '{') continue;
        const char *close = strchr(p + 1, '}'), *open = strchr(p + 1, '{');
        if (!close || (open && open < close)) {
            *why = "a '{' without its '}':";
            snprintf(bad, badlen, "{");
            return -1;
        }
        size_t n = (size_t)(close - p - 1);
        bool known = false;
        for (size_t i = 0; placeholders[i] && !known; i++)
            known = strlen(placeholders[i]) == n && strncmp(placeholders[i], p + 1, n) == 0;
        if (!known) {
            *why = "unknown placeholder";
            snprintf(bad, badlen, "%.*s", (int)(close - p + 1), p);
            return -1;
        }
        p = close;
    }
    return 0;
}

void cw_val_lower_ascii(char *s)
{
    for (; *s; s++)
        if (*s >= 'A' && *s <= 'Z') *s = (char)(*s - 'A' + 'a');
}

int cw_val_distance(const char *a, const char *b, int cap)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return cap;
    int row[41];
    for (size_t j = 0; j <= lb; j++) row[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        int diag = row[0], best;
        row[0] = (int)i;
        best = row[0];
        for (size_t j = 1; j <= lb; j++) {
            int up = row[j];
            int v = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < v) v = up + 1;
            if (row[j - 1] + 1 < v) v = row[j - 1] + 1;
            row[j] = v;
            diag = up;
            if (v < best) best = v;
        }
        if (best >= cap) return cap;
    }
    return row[lb] < cap ? row[lb] : cap;
}
