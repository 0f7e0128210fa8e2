/*
 * Levelled, structured logging: one line per event on stderr,
 *
 *   ts=2026-11-24T07:40:01.123Z level=info svc=gateway event=case.accepted case_no=SH01-...
 *
 * `event` names what happened (dotted, lower case); the rest is key=value pairs formatted by
 * the caller. Filtering by level is a single comparison before any formatting (cw_log macro).
 *
 * Personal data never appears in clear. Callers mask it explicitly with cw_mask_phone() and
 * cw_mask_name(); as a safety net every line is scrubbed of phone-number-shaped digit runs
 * (Chinese mobiles with or without +86, landlines with an area code, and separated groups such
 * as 555-0123-4567) before it is written. Customer free text is never logged at all.
 */
#ifndef CW_LOG_H
#define CW_LOG_H

#include <stddef.h>

enum cw_log_level { CW_LOG_DEBUG = 0, CW_LOG_INFO, CW_LOG_WARN, CW_LOG_ERROR, CW_LOG_OFF };

extern enum cw_log_level cw_log_min_level;

/* Service name for the svc= field; level from "debug", "info", "warn", "error".
 * Returns -1 for an unknown level name. */
int cw_log_init(const char *service, const char *level);
/* Parses a level name; -1 when unknown. */
int cw_log_level_parse(const char *name);

#define cw_log(level, event, ...)                                                                  \
    do {                                                                                           \
        if ((level) >= cw_log_min_level) cw_log_write((level), (event), __VA_ARGS__);              \
    } while (0)
#define cw_debug(event, ...) cw_log(CW_LOG_DEBUG, event, __VA_ARGS__)
#define cw_info(event, ...) cw_log(CW_LOG_INFO, event, __VA_ARGS__)
#define cw_warn(event, ...) cw_log(CW_LOG_WARN, event, __VA_ARGS__)
#define cw_error(event, ...) cw_log(CW_LOG_ERROR, event, __VA_ARGS__)

void cw_log_write(enum cw_log_level level, const char *event, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Where lines go (default stderr); for tests. */
void cw_log_set_sink(void (*sink)(const char *line, size_t len, void *arg), void *arg);

/* "13812345678" -> "*******5678": only the last 4 digits, which staff use to match a caller. */
#define CW_MASK_PHONE_MAX 24
const char *cw_mask_phone(char out[CW_MASK_PHONE_MAX], const char *phone);
/* "王小明" -> "王**", "John Smith" -> "J*********": first character only (UTF-8 aware). */
#define CW_MASK_NAME_MAX 64
const char *cw_mask_name(char out[CW_MASK_NAME_MAX], const char *name);
/* Replaces phone-shaped digit runs in buf (NUL-terminated) with '*' except their last 4
 * digits. Returns the number of runs masked. */
int cw_log_scrub(char *buf);

#endif
