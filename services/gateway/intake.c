/*
 * POST /v1/cases and POST /v1/tenant/cases: a new case.
 *
 * validate -> intake script (idempotency record, case number, pending case record) ->
 * produce CaseSubmitted -> delivery report -> commit script -> 202. A retry after a crash or
 * a refused write reuses the ids the idempotency record holds, so Kafka may carry the same
 * case twice (same case id and event id), never two cases for one key.
 */
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "domain.h"
#include "event.h"
#include "gateway.h"
#include "policy.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"

#define TEXT_MAX 4000
#define IDEM_TTL_S (24 * 3600)
#define SEQ_TTL_S (3 * 24 * 3600)

struct intake {
    /* validated request (strings point into r->body) */
    const struct cw_site *site;
    const struct cw_tenant *tenant; /* the case is the tenant's: its own, or about its shop */
    int channel, type_hint, category_hint, stops_trading, under_warranty;
    const char *text, *name, *language, *floor, *unit, *detail, *request, *external_ref;
    const char *purchase_date, *currency, *receipt_no, *order_no;
    int64_t amount_cents; /* -1: not given */
    char phone[24];       /* E.164, "" when not given */
    /* assigned */
    char case_id[CW_ULID_LEN + 1], event_id[CW_ULID_LEN + 1], case_no[48];
    int64_t reply_by_ms, now_ms;
};

static bool staff_channel(int ch)
{
    switch (ch) {
    case CASEWIRE__V1__CHANNEL__CHANNEL_SERVICE_DESK:
    case CASEWIRE__V1__CHANNEL__CHANNEL_PHONE:
    case CASEWIRE__V1__CHANNEL__CHANNEL_EMAIL:
    case CASEWIRE__V1__CHANNEL__CHANNEL_LETTER:
    case CASEWIRE__V1__CHANNEL__CHANNEL_REGULATOR:
    case CASEWIRE__V1__CHANNEL__CHANNEL_SOCIAL_MEDIA: return true;
    default: return false;
    }
}

/* Follow-up calls need a number; letters, mail, referrals and posts may come without one. */
static bool phone_required(int ch)
{
    switch (ch) {
    case CASEWIRE__V1__CHANNEL__CHANNEL_EMAIL:
    case CASEWIRE__V1__CHANNEL__CHANNEL_LETTER:
    case CASEWIRE__V1__CHANNEL__CHANNEL_REGULATOR:
    case CASEWIRE__V1__CHANNEL__CHANNEL_SOCIAL_MEDIA:
    case CASEWIRE__V1__CHANNEL__CHANNEL_TENANT_API: return false;
    default: return true;
    }
}

static int vocab_field(json_t *obj, const char *key, enum cw_vocab v, int *out, struct gw_verr *e)
{
    const char *s;
    *out = 0;
    if (gw_get_string(obj, key, "", 40, false, &s, e) != 0) return -1;
    if (!s) return 0;
    int x = cw_vocab_parse(v, s);
    if (x <= 0) {
        char choices[400];
        return gw_fail(e, "validation_failed", key, "unknown %s \"%.40s\"; one of: %s",
                       cw_vocab_title(v), s, cw_vocab_choices(v, choices, sizeof choices));
    }
    *out = x;
    return 0;
}

static int object_field(json_t *body, const char *key, json_t **out, struct gw_verr *e)
{
    json_t *v = json_object_get(body, key);
    *out = NULL;
    if (!v || json_is_null(v)) return 0;
    if (!json_is_object(v))
        return gw_fail(e, "validation_failed", key, "%s must be an object", key);
    *out = v;
    return 0;
}

static int validate(struct gw_req *r, struct intake *in, struct gw_verr *e)
{
    static const char *const top_public[] = {
        "site",    "channel",   "text",          "customer",     "location", "purchase",
        "request", "type_hint", "category_hint", "external_ref", NULL};
    static const char *const top_tenant[] = {
        "text",      "customer",      "location",     "purchase",      "request",
        "type_hint", "category_hint", "external_ref", "stops_trading", NULL};
    static const char *const customer_keys[] = {"name", "phone", "language", NULL};
    static const char *const location_keys[] = {"floor", "unit", "tenant", "detail", NULL};
    static const char *const location_keys_tenant[] = {"floor", "unit", "detail", NULL};
    static const char *const purchase_keys[] = {
        "date", "amount", "currency", "receipt_no", "order_no", "under_warranty", NULL};
    struct gw *gw = r->gw;
    json_t *b = r->body;
    bool tenant_api = r->route == GW_TENANT_CASES_POST;
    in->amount_cents = -1;

    if (tenant_api) {
        if (json_object_get(b, "site") || json_object_get(b, "channel"))
            return gw_fail(e, "server_owned_field", json_object_get(b, "site") ? "site" : "channel",
                           "site and channel come from the tenant's API key and cannot be sent");
        if (gw_check_keys(b, "", top_tenant, e) != 0) return -1;
        in->tenant = r->tenant;
        in->site = r->tenant->site;
        in->channel = CASEWIRE__V1__CHANNEL__CHANNEL_TENANT_API;
        if (gw_get_bool(b, "stops_trading", "", &in->stops_trading, e) != 0) return -1;
    } else {
        if (gw_check_keys(b, "", top_public, e) != 0) return -1;
        const char *site;
        if (gw_get_string(b, "site", "", 16, true, &site, e) != 0) return -1;
        if (!(in->site = cw_chain_site(gw->chain, site)))
            return gw_fail(e, "validation_failed", "site",
                           "unknown site \"%.16s\"; GET /v1/sites lists them", site);
        if (vocab_field(b, "channel", CW_VOCAB_CHANNEL, &in->channel, e) != 0) return -1;
        if (!in->channel) return gw_fail(e, "validation_failed", "channel", "channel is required");
        if (in->channel == CASEWIRE__V1__CHANNEL__CHANNEL_TENANT_API)
            return gw_fail(e, "validation_failed", "channel",
                           "tenant systems use POST /v1/tenant/cases with their API key");
    }
    if (gw_get_string(b, "text", "", TEXT_MAX, true, &in->text, e) != 0) return -1;
    if (gw_get_string(b, "request", "", 1000, false, &in->request, e) != 0) return -1;
    if (gw_get_string(b, "external_ref", "", 64, false, &in->external_ref, e) != 0) return -1;
    if (vocab_field(b, "type_hint", CW_VOCAB_CASE_TYPE, &in->type_hint, e) != 0) return -1;
    if (vocab_field(b, "category_hint", CW_VOCAB_CATEGORY, &in->category_hint, e) != 0) return -1;

    json_t *cust, *loc, *pur;
    if (object_field(b, "customer", &cust, e) != 0 || object_field(b, "location", &loc, e) != 0 ||
        object_field(b, "purchase", &pur, e) != 0)
        return -1;

    const char *phone = NULL;
    if (cust) {
        if (gw_check_keys(cust, "customer", customer_keys, e) != 0) return -1;
        if (gw_get_string(cust, "name", "customer", 64, false, &in->name, e) != 0 ||
            gw_get_string(cust, "phone", "customer", 32, false, &phone, e) != 0 ||
            gw_get_string(cust, "language", "customer", 8, false, &in->language, e) != 0)
            return -1;
        if (in->language && strcmp(in->language, "zh") != 0 && strcmp(in->language, "en") != 0)
            return gw_fail(e, "validation_failed", "customer.language",
                           "customer.language is zh or en");
        if (phone && gw_normalize_phone(phone, in->phone, sizeof in->phone) != 0)
            return gw_fail(e, "validation_failed", "customer.phone",
                           "customer.phone must be a mainland mobile number (13800138000) or an "
                           "international number with its country code (+85291234567)");
    }
    if (!in->phone[0] && phone_required(in->channel))
        return gw_fail(e, "validation_failed", "customer.phone",
                       "customer.phone is required for channel %s: the follow-up call needs it",
                       cw_channel_name(in->channel));

    if (loc) {
        if (tenant_api && json_object_get(loc, "tenant"))
            return gw_fail(e, "server_owned_field", "location.tenant",
                           "the tenant comes from the API key and cannot be sent");
        if (gw_check_keys(loc, "location", tenant_api ? location_keys_tenant : location_keys, e) !=
            0)
            return -1;
        const char *tenant = NULL;
        if (gw_get_string(loc, "floor", "location", 32, false, &in->floor, e) != 0 ||
            gw_get_string(loc, "unit", "location", 32, false, &in->unit, e) != 0 ||
            gw_get_string(loc, "detail", "location", 200, false, &in->detail, e) != 0 ||
            (!tenant_api && gw_get_string(loc, "tenant", "location", 64, false, &tenant, e) != 0))
            return -1;
        if (tenant) {
            in->tenant = cw_chain_tenant(gw->chain, tenant);
            if (!in->tenant || in->tenant->site != in->site)
                return gw_fail(e, "validation_failed", "location.tenant",
                               "no tenant \"%.64s\" at site %s", tenant, in->site->id);
        }
    }

    if (pur) {
        if (gw_check_keys(pur, "purchase", purchase_keys, e) != 0) return -1;
        if (gw_get_string(pur, "date", "purchase", 10, false, &in->purchase_date, e) != 0 ||
            gw_get_string(pur, "currency", "purchase", 3, false, &in->currency, e) != 0 ||
            gw_get_string(pur, "receipt_no", "purchase", 64, false, &in->receipt_no, e) != 0 ||
            gw_get_string(pur, "order_no", "purchase", 64, false, &in->order_no, e) != 0 ||
            gw_get_bool(pur, "under_warranty", "purchase", &in->under_warranty, e) != 0)
            return -1;
        if (in->purchase_date) {
            int d = gw_parse_date(in->purchase_date);
            struct cw_local today;
            if (d < 0)
                return gw_fail(e, "validation_failed", "purchase.date",
                               "purchase.date must be a date as YYYY-MM-DD");
            if (d < 20000101)
                return gw_fail(e, "validation_failed", "purchase.date",
                               "purchase.date is before 2000-01-01");
            if (cw_calendar_local(gw->cal, in->site, cw_now_ms(), &today) == 0 &&
                d > today.yyyymmdd)
                return gw_fail(e, "validation_failed", "purchase.date",
                               "purchase.date is in the future (today is %04d-%02d-%02d at %s)",
                               today.year, today.month, today.day, in->site->id);
        }
        if (in->currency) {
            const char *c = in->currency;
            if (strlen(c) != 3 || c[0] < 'A' || c[0] > 'Z' || c[1] < 'A' || c[1] > 'Z' ||
                c[2] < 'A' || c[2] > 'Z')
                return gw_fail(e, "validation_failed", "purchase.currency",
                               "purchase.currency is an ISO 4217 code such as CNY");
        }
        json_t *amount = json_object_get(pur, "amount");
        if (amount && !json_is_null(amount) && (in->amount_cents = gw_parse_amount(amount)) < 0)
            return gw_fail(e, "validation_failed", "purchase.amount",
                           "purchase.amount must be a number from 0 to 10000000 with at most 2 "
                           "decimals, such as \"199.00\"");
    }
    return 0;
}

/* The reply clock of the first policy that applies to what is known now; 24 h (the manuals'
 * rule) if none sets one. */
static int64_t reply_by(struct gw *gw, const struct intake *in)
{
    struct cw_duration d = {.basis = CW_TIME_WALL, .ms = 24 * 3600 * 1000LL};
    /* Urgency and validity are the router's to decide: unknown here (0), so a policy that
     * needs them does not apply yet. The hints stand for type and category. */
    const struct cw_case_facts facts = {.type = in->type_hint,
                                        .category = in->category_hint,
                                        .channel = in->channel,
                                        .site = in->site,
                                        .has_tenant = in->tenant != NULL};
    for (size_t i = 0; i < cw_chain_policy_count(gw->chain); i++) {
        const struct cw_policy *p = cw_chain_policy_at(gw->chain, i);
        if (!cw_match_holds(&p->match, &facts)) continue;
        if (p->clocks[CASEWIRE__V1__CLOCK_KIND__CLOCK_REPLY].basis != CW_TIME_UNSET) {
            d = p->clocks[CASEWIRE__V1__CLOCK_KIND__CLOCK_REPLY];
            break;
        }
    }
    int64_t due;
    if (cw_calendar_due(gw->cal, in->site, in->now_ms, &d, &due) != 0)
        due = in->now_ms + 24 * 3600 * 1000LL; /* the site never opens: say a day */
    return due;
}

/* What the tenant API shows of a case, personal data masked; stored with the case. */
static char *view_json(const struct intake *in)
{
    char mp[CW_MASK_PHONE_MAX], mn[CW_MASK_NAME_MAX];
    json_t *v = json_pack("{s:s,s:s*,s:s*,s:s*,s:b}", "text", in->text, "request", in->request,
                          "external_ref", in->external_ref, "channel", cw_channel_name(in->channel),
                          "stops_trading", in->stops_trading);
    if (!v) return NULL;
    json_t *loc =
        json_pack("{s:s*,s:s*,s:s*}", "floor", in->floor, "unit", in->unit, "detail", in->detail);
    if (loc && json_object_size(loc)) json_object_set(v, "location", loc);
    json_decref(loc);
    json_t *c = json_pack("{s:s*,s:s*}", "name", in->name ? cw_mask_name(mn, in->name) : NULL,
                          "phone", in->phone[0] ? cw_mask_phone(mp, in->phone) : NULL);
    if (c && json_object_size(c)) json_object_set(v, "customer", c);
    json_decref(c);
    if (in->type_hint)
        json_object_set_new(v, "type_hint", json_string(cw_case_type_name(in->type_hint)));
    if (in->category_hint)
        json_object_set_new(v, "category_hint", json_string(cw_category_name(in->category_hint)));
    char *s = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    return s;
}

static json_t *response(struct gw *gw, const struct intake *in)
{
    char when[CW_CALENDAR_RFC3339_SIZE + 8];
    gw_format_time(gw, in->site, in->reply_by_ms, when, sizeof when);
    return json_pack("{s:s,s:s,s:s,s:s,s:s,s:I}", "case_id", in->case_id, "case_no", in->case_no,
                     "status", "received", "site", in->site->id, "reply_by", when, "reply_by_ms",
                     (json_int_t)in->reply_by_ms);
}

static void committed(struct gw_req *r, const redisReply *reply, const char *err)
{
    struct intake *in = r->op;
    (void)reply;
    /* Kafka has the case: that is the promise. A failed commit only delays what Redis shows
     * (and a retry with the key produces the same case again, harmlessly). */
    if (err)
        cw_warn("intake.commit_failed", "request_id=%s case_id=%s error=\"%s\"", r->request_id,
                in->case_id, err);
    cw_metric_add(r->gw->cases_accepted, 1);
    if (r->answer)
        gw_reply_raw(r, 202, r->answer, strlen(r->answer));
    else
        gw_reply(r, 202, response(r->gw, in));
}

static void delivered(void *opaque, int error, const char *errstr)
{
    struct gw_req *r = opaque;
    struct intake *in = r->op;
    if (error) {
        cw_warn("intake.not_delivered", "request_id=%s case_id=%s error=\"%s\"", r->request_id,
                in->case_id, errstr);
        gw_store_release(r);
        gw_store_unavailable(r, CW_PRODUCE_FAILED, "case");
        gw_req_release(r);
        return;
    }
    cw_info("intake.accepted", "request_id=%s case_id=%s case_no=%s site=%s channel=%s",
            r->request_id, in->case_id, in->case_no, in->site->id, cw_channel_name(in->channel));
    json_t *resp = response(r->gw, in);
    r->answer = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    json_decref(resp);
    const char *argv[] = {r->idem_key, in->case_id, r->answer ? r->answer : "{}"};
    int rc = gw_store_run(r, GW_S_INTAKE_COMMIT, 1, 3, argv, committed);
    if (rc != 0) committed(r, NULL, cw_redis_strerror(rc));
    gw_req_release(r);
}

static int produce(struct gw_req *r)
{
    struct intake *in = r->op;
    Casewire__V1__Envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    Casewire__V1__EventMeta meta;
    Casewire__V1__CaseSubmitted cs = CASEWIRE__V1__CASE_SUBMITTED__INIT;
    Casewire__V1__Person person = CASEWIRE__V1__PERSON__INIT;
    Casewire__V1__Location loc = CASEWIRE__V1__LOCATION__INIT;
    Casewire__V1__Purchase pur = CASEWIRE__V1__PURCHASE__INIT;
    const char *tenant = in->tenant ? in->tenant->id : NULL;
    /* the same event id on every retry */
    cw_event_meta_init_as(&meta, in->event_id, "gateway", in->case_id, in->site->id, tenant, NULL);
    meta.occurred_ms = in->now_ms;
    meta.request_id = r->request_id;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_SUBMITTED;
    env.case_submitted = &cs;
    cs.case_no = in->case_no;
    cs.channel = in->channel;
    cs.text = (char *)in->text;
    if (in->name || in->phone[0]) {
        person.name = (char *)(in->name ? in->name : "");
        person.phone = in->phone;
        cs.customer = &person;
    }
    loc.floor = (char *)(in->floor ? in->floor
                                   : (in->tenant && in->tenant->floor ? in->tenant->floor : ""));
    loc.unit =
        (char *)(in->unit ? in->unit : (in->tenant && in->tenant->unit ? in->tenant->unit : ""));
    loc.tenant_id = (char *)(tenant ? tenant : "");
    loc.brand = (char *)(in->tenant && in->tenant->brand ? in->tenant->brand : "");
    loc.detail = (char *)(in->detail ? in->detail : "");
    cs.location = &loc;
    if (in->purchase_date || in->amount_cents >= 0 || in->receipt_no || in->order_no ||
        in->under_warranty) {
        pur.date = (char *)(in->purchase_date ? in->purchase_date : "");
        pur.amount_cents = in->amount_cents > 0 ? in->amount_cents : 0;
        pur.currency = (char *)(in->currency ? in->currency : (in->amount_cents >= 0 ? "CNY" : ""));
        pur.receipt_no = (char *)(in->receipt_no ? in->receipt_no : "");
        pur.order_no = (char *)(in->order_no ? in->order_no : "");
        pur.under_warranty = in->under_warranty;
        cs.purchase = &pur;
    }
    cs.customer_request = (char *)(in->request ? in->request : "");
    cs.type_hint = in->type_hint;
    cs.category_hint = in->category_hint;
    cs.recorded_by = (char *)(r->staff ? r->staff->id : "");
    cs.idempotency_key = r->idem_key[0] ? strrchr(r->idem_key, ':') + 1 : "";
    cs.language = (char *)(in->language ? in->language : cw_chain_default_language(r->gw->chain));
    cs.reply_by_ms = in->reply_by_ms;
    cs.external_ref = (char *)(in->external_ref ? in->external_ref : "");
    cs.stops_trading = in->stops_trading;

    uint8_t *buf;
    size_t len = cw_event_pack(&env, &buf);
    if (!len) return -1;
    int rc = cw_producer_send(r->gw->producer, CW_TOPIC_INTAKE, in->case_id, strlen(in->case_id),
                              buf, len, delivered, r);
    free(buf);
    if (rc == CW_PRODUCE_OK) gw_req_hold(r);
    return rc;
}

static void begun(struct gw_req *r, const redisReply *reply, const char *err)
{
    struct intake *in = r->op;
    if (err) {
        cw_warn("intake.redis_failed", "request_id=%s error=\"%s\"", r->request_id, err);
        gw_error_retry(r, 503, "unavailable",
                       "case store unavailable; retry with the same Idempotency-Key", 2);
        return;
    }
    if (gw_store_idem_answer(r, reply, "case")) return;
    /* new or retry: "case_id event_id case_no reply_by" */
    long long rb = 0;
    if (sscanf(gw_reply_str(reply, 1), "%26s %26s %47s %lld", in->case_id, in->event_id,
               in->case_no, &rb) != 4) {
        cw_error("intake.bad_store_reply", "request_id=%s", r->request_id);
        gw_error_retry(r, 503, "unavailable", "case store answered unexpectedly; retry", 2);
        return;
    }
    in->reply_by_ms = rb;
    int rc = produce(r);
    if (rc != CW_PRODUCE_OK) {
        cw_warn("intake.produce_refused", "request_id=%s case_id=%s reason=%s", r->request_id,
                in->case_id, rc == CW_PRODUCE_QUEUE_FULL ? "queue_full" : "failed");
        gw_store_release(r);
        gw_store_unavailable(r, rc, "case");
    }
}

static void begin(struct gw_req *r, struct intake *in)
{
    struct gw *gw = r->gw;
    struct cw_local local;
    in->now_ms = cw_now_ms();
    if (cw_ulid_new(in->case_id) != 0 || cw_ulid_new(in->event_id) != 0 ||
        cw_calendar_local(gw->cal, in->site, in->now_ms, &local) != 0) {
        gw_error(r, 500, "internal", "could not number the case", NULL);
        return;
    }
    in->reply_by_ms = reply_by(gw, in);
    char seq_key[64], yymmdd[8], now[24], lease[24], ttl[16], rb[24], seq_ttl[16];
    snprintf(yymmdd, sizeof yymmdd, "%06d", local.yyyymmdd % 1000000);
    snprintf(seq_key, sizeof seq_key, "cw:seq:%s:%s", in->site->id, yymmdd);
    snprintf(now, sizeof now, "%lld", (long long)in->now_ms);
    snprintf(lease, sizeof lease, "%lld", gw->reply_timeout_ms + 1000);
    snprintf(ttl, sizeof ttl, "%d", IDEM_TTL_S);
    snprintf(seq_ttl, sizeof seq_ttl, "%d", SEQ_TTL_S);
    snprintf(rb, sizeof rb, "%lld", (long long)in->reply_by_ms);
    size_t plen = strlen(in->phone);
    const char *last4 = plen >= 4 ? in->phone + plen - 4 : "";
    char *view = view_json(in);
    const char *argv[] = {r->idem_key,
                          seq_key,
                          r->body_sha,
                          now,
                          lease,
                          ttl,
                          in->case_id,
                          in->event_id,
                          rb,
                          in->site->id,
                          yymmdd,
                          in->tenant ? in->tenant->id : "",
                          cw_channel_name(in->channel),
                          last4,
                          view ? view : "{}",
                          seq_ttl};
    int rc = gw_store_run(r, GW_S_INTAKE, 2, 16, argv, begun);
    free(view);
    if (rc != 0) {
        cw_warn("intake.redis_refused", "request_id=%s reason=\"%s\"", r->request_id,
                cw_redis_strerror(rc));
        gw_error_retry(r, 503, "unavailable",
                       "case store unavailable; retry with the same Idempotency-Key", 2);
    }
}

void gw_intake(struct gw_req *r)
{
    struct intake *in = calloc(1, sizeof *in);
    if (!in) {
        gw_error(r, 500, "internal", "out of memory", NULL);
        return;
    }
    r->op = in;
    r->op_free = free;
    struct gw_verr e = {0};
    if (validate(r, in, &e) != 0) {
        gw_error(r, 422, e.code, e.message, e.field);
        return;
    }
    if (r->route == GW_CASES_POST) {
        if (staff_channel(in->channel) && r->client != GW_STAFF) {
            gw_error(r, 401, "unauthorized",
                     "cases on staff channels are recorded by staff: send Authorization: Bearer "
                     "<staff token>",
                     NULL);
            return;
        }
        if (r->staff && !cw_staff_sees_site(r->staff, in->site)) {
            gw_error(r, 403, "forbidden", "staff record cases for their own sites only", "site");
            return;
        }
        if (!staff_channel(in->channel) && in->phone[0] && gw_rate_check(r, 1, in->phone) != 0)
            return;
    }
    begin(r, in);
}
