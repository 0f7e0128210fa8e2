/*
 * The field rules of docs/api.md. Messages name the field and say what would be accepted,
 * because the person reading them is a tenant's developer at integration time or a form
 * showing them to a customer.
 */
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway.h"

/* Never accepted from a client: the server decides them. */
static const char *const server_owned[] = {"case_id",    "case_no",     "status",   "assignee",
                                           "tenant",     "recorded_by", "reply_by", "reply_by_ms",
                                           "created_at", "event_id",    NULL};

int gw_fail(struct gw_verr *e, const char *code, const char *field, const char *fmt, ...)
{
    e->code = code;
    snprintf(e->field, sizeof e->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof e->message, fmt, ap);
    va_end(ap);
    return -1;
}

static void join(char *out, size_t len, const char *path, const char *key)
{
    if (path && *path)
        snprintf(out, len, "%s.%s", path, key);
    else
        snprintf(out, len, "%s", key);
}

static bool listed(const char *const *list, const char *key)
{
    for (; *list; list++)
        if (strcmp(*list, key) == 0) return true;
    return false;
}

/* Edits needed to turn a into b, capped: enough to suggest "did you mean". */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 40 || lb > 40) return 99;
    size_t d[41][41];
    for (size_t i = 0; i <= la; i++) d[i][0] = i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb];
}

int gw_check_keys(json_t *obj, const char *path, const char *const *allowed, struct gw_verr *e)
{
    const char *key;
    json_t *v;
    char field[64];
    json_object_foreach(obj, key, v)
    {
        if (listed(allowed, key)) continue;
        join(field, sizeof field, path, key);
        if (listed(server_owned, key) && !(path && *path))
            return gw_fail(e, "server_owned_field", field,
                           "%s is set by the server and cannot be sent", field);
        const char *best = NULL;
        size_t bestd = 3;
        for (const char *const *a = allowed; *a; a++) {
            size_t dd = distance(key, *a);
            if (dd < bestd) bestd = dd, best = *a;
        }
        if (best)
            return gw_fail(e, "unknown_field", field, "unknown field %s (did you mean %s?)", field,
                           best);
        return gw_fail(e, "unknown_field", field, "unknown field %s", field);
    }
    return 0;
}

size_t gw_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) n++;
    return n;
}

static bool blank(const char *s)
{
    for (; *s; s++)
        if (!isspace((unsigned char)*s)) return false;
    return true;
}

int gw_get_string(json_t *obj, const char *key, const char *path, size_t max_chars, bool required,
                  const char **out, struct gw_verr *e)
{
    char field[64];
    join(field, sizeof field, path, key);
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (required) return gw_fail(e, "validation_failed", field, "%s is required", field);
        return 0;
    }
    if (!json_is_string(v))
        return gw_fail(e, "validation_failed", field, "%s must be a string", field);
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return gw_fail(e, "validation_failed", field, "%s must not contain NUL characters", field);
    if (blank(s)) {
        if (required) return gw_fail(e, "validation_failed", field, "%s must not be empty", field);
        return 0;
    }
    size_t n = gw_utf8_chars(s);
    if (n > max_chars)
        return gw_fail(e, "validation_failed", field,
                       "%s is %zu characters long; at most %zu are accepted", field, n, max_chars);
    *out = s;
    return 0;
}

int gw_get_bool(json_t *obj, const char *key, const char *path, int *out, struct gw_verr *e)
{
    char field[64];
    join(field, sizeof field, path, key);
    json_t *v = obj ? json_object_get(obj, key) : NULL;
    *out = 0;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_boolean(v))
        return gw_fail(e, "validation_failed", field, "%s must be true or false", field);
    *out = json_is_true(v);
    return 0;
}

int gw_normalize_phone(const char *in, char *out, size_t outlen)
{
    char digits[32];
    size_t n = 0;
    bool plus = false;
    for (const char *p = in; *p; p++) {
        if (*p == ' ' || *p == '-' || *p == '(' || *p == ')') continue;
        if (*p == '+' && n == 0 && !plus) {
            plus = true;
            continue;
        }
        if (!isdigit((unsigned char)*p) || n + 1 >= sizeof digits) return -1;
        digits[n++] = *p;
    }
    digits[n] = '\0';
    const char *d = digits;
    /* 0086 / 86 prefixes of a mainland mobile */
    if (!plus && n == 15 && strncmp(d, "0086", 4) == 0) d += 4, n -= 4, plus = false;
    if (plus && n == 13 && strncmp(d, "86", 2) == 0) d += 2, n -= 2, plus = false;
    if (!plus) {
        /* mainland mobile: 11 digits, 1[3-9]x */
        if (n != 11 || d[0] != '1' || d[1] < '3' || d[1] > '9') return -1;
        return snprintf(out, outlen, "+86%s", d) < (int)outlen ? 0 : -1;
    }
    /* E.164: country code not 0, 7..15 digits */
    if (n < 7 || n > 15 || d[0] == '0') return -1;
    return snprintf(out, outlen, "+%s", d) < (int)outlen ? 0 : -1;
}

int gw_parse_date(const char *s)
{
    int y, m, d;
    char extra;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-') return -1;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &extra) != 3) return -1;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1]) return -1;
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    if (m == 2 && d == 29 && !leap) return -1;
    return y * 10000 + m * 100 + d;
}

int64_t gw_parse_amount(json_t *v)
{
    char buf[32];
    if (json_is_integer(v)) {
        json_int_t i = json_integer_value(v);
        return i < 0 || i > 10000000 ? -1 : (int64_t)i * 100;
    }
    if (json_is_real(v)) {
        double x = json_real_value(v);
        if (!(x >= 0 && x <= 10000000)) return -1;
        int64_t cents = (int64_t)(x * 100 + 0.5);
        /* more than 2 decimals is a mistake worth telling, not rounding away */
        double back = (double)cents / 100;
        return back - x > 1e-6 || x - back > 1e-6 ? -1 : cents;
    }
    if (!json_is_string(v) || json_string_length(v) >= sizeof buf) return -1;
    snprintf(buf, sizeof buf, "%s", json_string_value(v));
    const char *p = buf;
    int64_t whole = 0, frac = 0;
    int nwhole = 0, nfrac = 0;
    for (; isdigit((unsigned char)*p); p++, nwhole++) {
        if (nwhole >= 9) return -1;
        whole = whole * 10 + (*p - '0');
    }
    if (nwhole == 0) return -1;
    if (*p == '.') {
        for (p++; isdigit((unsigned char)*p); p++, nfrac++) {
            if (nfrac >= 2) return -1;
            frac = frac * 10 + (*p - '0');
        }
        if (nfrac == 0) return -1;
        if (nfrac == 1) frac *= 10;
    }
    if (*p) return -1;
    if (whole > 10000000 || (whole == 10000000 && frac > 0)) return -1;
    return whole * 100 + frac;
}
