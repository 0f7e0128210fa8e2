#include "domain.h"

#include <string.h>

/* One table per vocabulary, indexed by value; a NULL slot has no name (unspecified). */

static const char *const channel_names[] = {
    [CASEWIRE__V1__CHANNEL__CHANNEL_WEB] = "web",
    [CASEWIRE__V1__CHANNEL__CHANNEL_APP] = "app",
    [CASEWIRE__V1__CHANNEL__CHANNEL_MINI_PROGRAM] = "mini_program",
    [CASEWIRE__V1__CHANNEL__CHANNEL_KIOSK] = "kiosk",
    [CASEWIRE__V1__CHANNEL__CHANNEL_SERVICE_DESK] = "service_desk",
    [CASEWIRE__V1__CHANNEL__CHANNEL_PHONE] = "phone",
    [CASEWIRE__V1__CHANNEL__CHANNEL_EMAIL] = "email",
    [CASEWIRE__V1__CHANNEL__CHANNEL_LETTER] = "letter",
    [CASEWIRE__V1__CHANNEL__CHANNEL_REGULATOR] = "regulator",
    [CASEWIRE__V1__CHANNEL__CHANNEL_SOCIAL_MEDIA] = "social_media",
    [CASEWIRE__V1__CHANNEL__CHANNEL_TENANT_API] = "tenant_api",
};

static const char *const case_type_names[] = {
    [CASEWIRE__V1__CASE_TYPE__CASE_TYPE_INQUIRY] = "inquiry",
    [CASEWIRE__V1__CASE_TYPE__CASE_TYPE_COMPLAINT] = "complaint",
    [CASEWIRE__V1__CASE_TYPE__CASE_TYPE_REQUEST] = "request",
    [CASEWIRE__V1__CASE_TYPE__CASE_TYPE_SUGGESTION] = "suggestion",
    [CASEWIRE__V1__CASE_TYPE__CASE_TYPE_PRAISE] = "praise",
};

static const char *const category_names[] = {
    [CASEWIRE__V1__CATEGORY__CATEGORY_PRODUCT_QUALITY] = "product_quality",
    [CASEWIRE__V1__CATEGORY__CATEGORY_SERVICE_ATTITUDE] = "service_attitude",
    [CASEWIRE__V1__CATEGORY__CATEGORY_ENVIRONMENT] = "environment",
    [CASEWIRE__V1__CATEGORY__CATEGORY_CLEANLINESS] = "cleanliness",
    [CASEWIRE__V1__CATEGORY__CATEGORY_PRICE_DISPUTE] = "price_dispute",
    [CASEWIRE__V1__CATEGORY__CATEGORY_ORDER_HANDLING] = "order_handling",
    [CASEWIRE__V1__CATEGORY__CATEGORY_RETURNS] = "returns",
    [CASEWIRE__V1__CATEGORY__CATEGORY_PARKING] = "parking",
    [CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY] = "safety",
    [CASEWIRE__V1__CATEGORY__CATEGORY_LOST_AND_FOUND] = "lost_and_found",
    [CASEWIRE__V1__CATEGORY__CATEGORY_OTHER] = "other",
};

static const char *const urgency_names[] = {
    [CASEWIRE__V1__URGENCY__URGENCY_GENERAL] = "general",
    [CASEWIRE__V1__URGENCY__URGENCY_IMPORTANT] = "important",
    [CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY] = "emergency",
};

static const char *const validity_names[] = {
    [CASEWIRE__V1__VALIDITY__VALIDITY_VALID] = "valid",
    [CASEWIRE__V1__VALIDITY__VALIDITY_INVALID] = "invalid",
};

static const char *const clock_names[] = {
    [CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF] = "handoff",
    [CASEWIRE__V1__CLOCK_KIND__CLOCK_TENANT_TRADING] = "tenant_trading",
    [CASEWIRE__V1__CLOCK_KIND__CLOCK_REPLY] = "reply",
    [CASEWIRE__V1__CLOCK_KIND__CLOCK_FEEDBACK] = "feedback",
    [CASEWIRE__V1__CLOCK_KIND__CLOCK_RESOLUTION] = "resolution",
    [CASEWIRE__V1__CLOCK_KIND__CLOCK_FOLLOWUP] = "followup",
};

static const char *const site_kind_names[] = {
    [CW_SITE_MALL] = "mall",
    [CW_SITE_SUPERMARKET] = "supermarket",
    [CW_SITE_DEPARTMENT_STORE] = "department_store",
};

static const char *const dept_kind_names[] = {
    [CW_DEPT_TENANT] = "tenant",
    [CW_DEPT_SERVICE_DESK] = "service_desk",
    [CW_DEPT_CALL_CENTER] = "call_center",
    [CW_DEPT_CUSTOMER_SERVICE] = "customer_service",
    [CW_DEPT_FLOOR] = "floor",
    [CW_DEPT_OPERATIONS] = "operations",
    [CW_DEPT_MERCHANDISE] = "merchandise",
    [CW_DEPT_COUNTER] = "counter",
    [CW_DEPT_BUSINESS_SECTION] = "business_section",
    [CW_DEPT_ENGINEERING] = "engineering",
    [CW_DEPT_CLEANING] = "cleaning",
    [CW_DEPT_SECURITY] = "security",
    [CW_DEPT_PARKING] = "parking",
    [CW_DEPT_MANAGEMENT] = "management",
    [CW_DEPT_AUDIT] = "audit",
};

static const char *const weekday_names[] = {
    [CW_SUN] = "sun", [CW_MON] = "mon", [CW_TUE] = "tue", [CW_WED] = "wed",
    [CW_THU] = "thu", [CW_FRI] = "fri", [CW_SAT] = "sat",
};

static const char *const action_names[] = {
    [CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE] = "acknowledge",
    [CASEWIRE__V1__CASE_ACTION__CASE_ACTION_NOTE] = "note",
    [CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REASSIGN] = "reassign",
    [CASEWIRE__V1__CASE_ACTION__CASE_ACTION_RESOLVE] = "resolve",
    [CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REOPEN] = "reopen",
    [CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP] = "followup",
    [CASEWIRE__V1__CASE_ACTION__CASE_ACTION_CLOSE] = "close",
    [CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REPLY] = "reply",
};

struct vocab {
    const char *title;
    const char *const *names;
    int count; /* entries in names: values 0..count-1 */
};

#define VOCAB(title, table)                                                                        \
    {                                                                                              \
        title, table, (int)(sizeof table / sizeof table[0])                                        \
    }
static const struct vocab vocabs[CW_VOCAB__COUNT] = {
    [CW_VOCAB_CHANNEL] = VOCAB("channel", channel_names),
    [CW_VOCAB_CASE_TYPE] = VOCAB("type", case_type_names),
    [CW_VOCAB_CATEGORY] = VOCAB("category", category_names),
    [CW_VOCAB_URGENCY] = VOCAB("urgency", urgency_names),
    [CW_VOCAB_VALIDITY] = VOCAB("validity", validity_names),
    [CW_VOCAB_CLOCK] = VOCAB("clock", clock_names),
    [CW_VOCAB_SITE_KIND] = VOCAB("site kind", site_kind_names),
    [CW_VOCAB_DEPT_KIND] = VOCAB("department kind", dept_kind_names),
    [CW_VOCAB_WEEKDAY] = VOCAB("weekday", weekday_names),
    [CW_VOCAB_ACTION] = VOCAB("action", action_names),
};
#undef VOCAB

static const struct vocab *vocab_get(enum cw_vocab v)
{
    return (unsigned)v < CW_VOCAB__COUNT ? &vocabs[v] : NULL;
}

int cw_vocab_parse(enum cw_vocab v, const char *name)
{
    const struct vocab *t = vocab_get(v);
    if (!t || !name) return -1;
    for (int i = 0; i < t->count; i++)
        if (t->names[i] && strcmp(t->names[i], name) == 0) return i;
    return -1;
}

const char *cw_vocab_name(enum cw_vocab v, int value)
{
    const struct vocab *t = vocab_get(v);
    if (!t || value < 0 || value >= t->count) return NULL;
    return t->names[value];
}

int cw_vocab_max(enum cw_vocab v)
{
    const struct vocab *t = vocab_get(v);
    return t ? t->count - 1 : -1;
}

const char *cw_vocab_title(enum cw_vocab v)
{
    const struct vocab *t = vocab_get(v);
    return t ? t->title : "";
}

const char *cw_vocab_choices(enum cw_vocab v, char *buf, size_t len)
{
    const struct vocab *t = vocab_get(v);
    size_t used = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    for (int i = 0; t && i < t->count; i++) {
        if (!t->names[i]) continue;
        size_t n = strlen(t->names[i]), sep = used ? 2 : 0;
        if (used + sep + n + 1 > len) break;
        if (sep) memcpy(buf + used, ", ", 2);
        memcpy(buf + used + sep, t->names[i], n + 1);
        used += sep + n;
    }
    return buf;
}
