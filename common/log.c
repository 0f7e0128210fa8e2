#include "log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum cw_log_level cw_log_min_level = CW_LOG_INFO;

static char log_service[32] = "casewire";
static void (*log_sink)(const char *, size_t, void *);
static void *log_sink_arg;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

int cw_log_level_parse(const char *name)
{
    for (int i = CW_LOG_DEBUG; i <= CW_LOG_OFF; i++)
        if (strcmp(name, level_names[i]) == 0) return i;
    return -1;
}

int cw_log_init(const char *service, const char *level)
{
    int lv = cw_log_level_parse(level);
    if (lv < 0) return -1;
    cw_log_min_level = (enum cw_log_level)lv;
    snprintf(log_service, sizeof log_service, "%s", service);
    return 0;
}

void cw_log_set_sink(void (*sink)(const char *, size_t, void *), void *arg)
{
    log_sink = sink;
    log_sink_arg = arg;
}

/* A phone-shaped run: digits with single '-' or ' ' between groups, optional leading '+',
 * not glued to an identifier on either side, so ids, versions, addresses, case numbers like
 * SH01-261124-0042 and 13-digit millisecond times are left alone. Glue is a letter, digit or
 * '_'; a '.' or '-' that joins the run to another letter or digit (10.0.0.1, SH01-2611). */
static int glued_before(const char *buf, const char *p)
{
    if (p == buf) return 0;
    unsigned char c = (unsigned char)p[-1];
    if (isalnum(c) || c == '_') return 1;
    return (c == '.' || c == '-') && p - 1 > buf && isalnum((unsigned char)p[-2]);
}

static int glued_after(const char *end)
{
    unsigned char c = (unsigned char)*end;
    if (isalnum(c) || c == '_') return 1;
    return (c == '.' || c == '-') && isalnum((unsigned char)end[1]);
}

static int looks_like_phone(const char *digits, int n, int separated, int plus)
{
    if (n == 11 && digits[0] == '1' && digits[1] >= '3' && digits[1] <= '9') return 1;
    if ((n == 13 && strncmp(digits, "86", 2) == 0 && digits[2] == '1') ||
        (n == 15 && strncmp(digits, "0086", 4) == 0))
        return 1;
    if (digits[0] == '0' && n >= 10 && n <= 12) return 1; /* landline with area code */
    if (plus && n >= 8 && n <= 15) return 1;
    if (separated && n >= 7 && n <= 15) return 1;
    return 0;
}

static int is_date_shape(const char *start, const char *end)
{
    /* YYYY-MM-DD */
    return end - start == 10 && start[4] == '-' && start[7] == '-';
}

int cw_log_scrub(char *buf)
{
    int masked = 0;
    char *p = buf;
    while (*p) {
        int plus = 0; /* length of a leading "+" or its URL encoding "%2B" */
        char *start = p;
        if (*p == '+' && isdigit((unsigned char)p[1]))
            plus = 1;
        else if (*p == '%' && p[1] == '2' && (p[2] == 'B' || p[2] == 'b') &&
                 isdigit((unsigned char)p[3]))
            plus = 3;
        if (!(isdigit((unsigned char)*p) || plus) || glued_before(buf, p)) {
            p++;
            continue;
        }
        char digits[32];
        int n = 0, separated = 0;
        char *q = p + plus;
        char *last = q;
        while (*q) {
            if (isdigit((unsigned char)*q)) {
                if (n < (int)sizeof digits - 1) digits[n] = *q;
                n++;
                last = q;
                q++;
            } else if ((*q == '-' || *q == ' ') && isdigit((unsigned char)q[1]) && n > 0) {
                separated = 1;
                q++;
            } else {
                break;
            }
        }
        char *end = last + 1;
        digits[n < (int)sizeof digits ? n : (int)sizeof digits - 1] = '\0';
        if (!glued_after(end) && n < (int)sizeof digits && !is_date_shape(start, end) &&
            looks_like_phone(digits, n, separated, plus)) {
            int keep = 4, seen = 0;
            for (char *r = end - 1; r >= start + plus; r--) {
                if (isdigit((unsigned char)*r)) {
                    if (seen++ >= keep) *r = '*';
                }
            }
            masked++;
        }
        p = end > p ? end : p + 1;
    }
    return masked;
}

const char *cw_mask_phone(char out[CW_MASK_PHONE_MAX], const char *phone)
{
    size_t n = 0;
    const char *p;
    if (!phone || !*phone) {
        out[0] = '\0';
        return out;
    }
    for (p = phone; *p; p++)
        if (isdigit((unsigned char)*p)) n++;
    size_t k = 0, seen = 0;
    for (p = phone; *p && k < CW_MASK_PHONE_MAX - 1; p++) {
        if (!isdigit((unsigned char)*p)) continue;
        out[k++] = (n - seen <= 4) ? *p : '*';
        seen++;
    }
    out[k] = '\0';
    return out;
}

const char *cw_mask_name(char out[CW_MASK_NAME_MAX], const char *name)
{
    if (!name || !*name) {
        out[0] = '\0';
        return out;
    }
    /* Copy the first UTF-8 character, then one '*' per further character. */
    size_t len = 1, k = 0;
    unsigned char c = (unsigned char)name[0];
    if (c >= 0xF0)
        len = 4;
    else if (c >= 0xE0)
        len = 3;
    else if (c >= 0xC0)
        len = 2;
    for (size_t i = 0; i < len && name[i]; i++) out[k++] = name[i];
    for (const unsigned char *p = (const unsigned char *)name + len; *p && k < CW_MASK_NAME_MAX - 1;
         p++)
        if ((*p & 0xC0) != 0x80) out[k++] = '*';
    out[k] = '\0';
    return out;
}

void cw_log_write(enum cw_log_level level, const char *event, const char *fmt, ...)
{
    char line[2048];
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    int n = snprintf(line, sizeof line,
                     "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03dZ level=%s svc=%s event=%s",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                     (int)(tv.tv_usec / 1000), level_names[level], log_service, event);
    if (n < 0) return;
    size_t used = (size_t)n < sizeof line ? (size_t)n : sizeof line - 1;
    if (fmt && *fmt && used < sizeof line - 2) {
        /* Scrub before cutting to length: a number cut in half would escape the scrubber. */
        char kv[2 * sizeof line];
        va_list ap;
        va_start(ap, fmt);
        int m = vsnprintf(kv, sizeof kv, fmt, ap);
        va_end(ap);
        if (m > 0) {
            cw_log_scrub(kv);
            line[used++] = ' ';
            size_t len = strlen(kv), room = sizeof line - used - 1;
            if (len > room) len = room;
            memcpy(line + used, kv, len);
            used += len;
            line[used] = '\0';
        }
    }
    /* One line per event: newlines inside values would forge extra lines. */
    for (size_t i = 0; i < used; i++)
        if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
    if (used > sizeof line - 2) used = sizeof line - 2;
    line[used++] = '\n';
    line[used] = '\0';
    if (log_sink) {
        log_sink(line, used, log_sink_arg);
        return;
    }
    /* A single write() keeps lines whole when several processes share a terminal. */
    ssize_t w = write(STDERR_FILENO, line, used);
    (void)w;
}
