/*
 * The domain vocabulary: the lower snake-case names used in the chain file (YAML), in the
 * HTTP API and in logs, and the numbers behind them.
 *
 * Channels, case types, categories, urgency, validity and clocks are the protobuf-c enums of
 * proto/casewire.proto (so a parsed value goes straight into an event); site kinds, department
 * kinds and weekdays are local to the chain model. Value 0 is always "unspecified" and has no
 * name: parsing never returns it.
 *
 * Weekdays are numbered like struct tm's tm_wday (sun = 0 ... sat = 6), so a weekday bitmask
 * is tested with `mask & (1u << tm.tm_wday)`.
 */
#ifndef CW_DOMAIN_H
#define CW_DOMAIN_H

#include <stddef.h>

#include "casewire.pb-c.h"

enum cw_site_kind {
    CW_SITE_KIND_UNSPECIFIED = 0,
    CW_SITE_MALL,             /* 购物中心: tenant shops inside */
    CW_SITE_SUPERMARKET,      /* 超市 */
    CW_SITE_DEPARTMENT_STORE, /* 百货: counters (专柜) in business sections */
};

/* What a department does; the routing table maps categories to these. */
enum cw_dept_kind {
    CW_DEPT_UNSPECIFIED = 0,
    CW_DEPT_TENANT,           /* routing only: the tenant shop the case is about */
    CW_DEPT_SERVICE_DESK,     /* 总服务台 */
    CW_DEPT_CALL_CENTER,      /* 客服中心 / 400热线 */
    CW_DEPT_CUSTOMER_SERVICE, /* 客服部 */
    CW_DEPT_FLOOR,            /* 楼层管理 / 卖场 */
    CW_DEPT_OPERATIONS,       /* 营运部 */
    CW_DEPT_MERCHANDISE,      /* 商品部 (supermarket buying and quality) */
    CW_DEPT_COUNTER,          /* 专柜 */
    CW_DEPT_BUSINESS_SECTION, /* 营业科 */
    CW_DEPT_ENGINEERING,      /* 工程部 */
    CW_DEPT_CLEANING,         /* 保洁 */
    CW_DEPT_SECURITY,         /* 安保 / 防损 */
    CW_DEPT_PARKING,          /* 停车场 */
    CW_DEPT_MANAGEMENT,       /* 总经理室 / 店长室 / 集团总部 */
    CW_DEPT_AUDIT,            /* 监察部 / 稽查科 */
};

enum cw_weekday {
    CW_SUN = 0,
    CW_MON,
    CW_TUE,
    CW_WED,
    CW_THU,
    CW_FRI,
    CW_SAT,
};
#define CW_ALL_DAYS 0x7fu

enum cw_vocab {
    CW_VOCAB_CHANNEL,   /* Casewire__V1__Channel */
    CW_VOCAB_CASE_TYPE, /* Casewire__V1__CaseType */
    CW_VOCAB_CATEGORY,  /* Casewire__V1__Category */
    CW_VOCAB_URGENCY,   /* Casewire__V1__Urgency */
    CW_VOCAB_VALIDITY,  /* Casewire__V1__Validity */
    CW_VOCAB_CLOCK,     /* Casewire__V1__ClockKind */
    CW_VOCAB_SITE_KIND, /* enum cw_site_kind */
    CW_VOCAB_DEPT_KIND, /* enum cw_dept_kind */
    CW_VOCAB_WEEKDAY,   /* enum cw_weekday */
    CW_VOCAB_ACTION,    /* Casewire__V1__CaseAction: what staff do to a case */
    CW_VOCAB__COUNT
};

/* The value named `name` (exact, case-sensitive), or -1 when unknown or NULL. */
int cw_vocab_parse(enum cw_vocab v, const char *name);
/* The name of `value`, or NULL when it has none (0, out of range). */
const char *cw_vocab_name(enum cw_vocab v, int value);
/* Highest value of the vocabulary: values run 1..max (weekdays 0..6). */
int cw_vocab_max(enum cw_vocab v);
/* What one item is called in messages: "channel", "category", "weekday"... */
const char *cw_vocab_title(enum cw_vocab v);
/* "a, b, c": every name in value order, truncated to fit; returns buf. */
const char *cw_vocab_choices(enum cw_vocab v, char *buf, size_t len);

/* Shorthands, one pair per vocabulary. */
static inline int cw_channel_parse(const char *s) { return cw_vocab_parse(CW_VOCAB_CHANNEL, s); }
static inline const char *cw_channel_name(int v) { return cw_vocab_name(CW_VOCAB_CHANNEL, v); }
static inline int cw_case_type_parse(const char *s)
{
    return cw_vocab_parse(CW_VOCAB_CASE_TYPE, s);
}
static inline const char *cw_case_type_name(int v) { return cw_vocab_name(CW_VOCAB_CASE_TYPE, v); }
static inline int cw_category_parse(const char *s) { return cw_vocab_parse(CW_VOCAB_CATEGORY, s); }
static inline const char *cw_category_name(int v) { return cw_vocab_name(CW_VOCAB_CATEGORY, v); }
static inline int cw_urgency_parse(const char *s) { return cw_vocab_parse(CW_VOCAB_URGENCY, s); }
static inline const char *cw_urgency_name(int v) { return cw_vocab_name(CW_VOCAB_URGENCY, v); }
static inline int cw_validity_parse(const char *s) { return cw_vocab_parse(CW_VOCAB_VALIDITY, s); }
static inline const char *cw_validity_name(int v) { return cw_vocab_name(CW_VOCAB_VALIDITY, v); }
static inline int cw_clock_parse(const char *s) { return cw_vocab_parse(CW_VOCAB_CLOCK, s); }
static inline const char *cw_clock_name(int v) { return cw_vocab_name(CW_VOCAB_CLOCK, v); }
static inline int cw_site_kind_parse(const char *s)
{
    return cw_vocab_parse(CW_VOCAB_SITE_KIND, s);
}
static inline const char *cw_site_kind_name(int v) { return cw_vocab_name(CW_VOCAB_SITE_KIND, v); }
static inline int cw_dept_kind_parse(const char *s)
{
    return cw_vocab_parse(CW_VOCAB_DEPT_KIND, s);
}
static inline const char *cw_dept_kind_name(int v) { return cw_vocab_name(CW_VOCAB_DEPT_KIND, v); }
static inline int cw_weekday_parse(const char *s) { return cw_vocab_parse(CW_VOCAB_WEEKDAY, s); }
static inline const char *cw_weekday_name(int v) { return cw_vocab_name(CW_VOCAB_WEEKDAY, v); }
static inline int cw_action_parse(const char *s) { return cw_vocab_parse(CW_VOCAB_ACTION, s); }
static inline const char *cw_action_name(int v) { return cw_vocab_name(CW_VOCAB_ACTION, v); }

#endif
