/*
 * What comes back from SMS (docs/api.md, "SMS"):
 *   POST /v1/sms/receipts   delivery receipts from the provider, signed
 *   POST /v1/sms/replies    a customer's reply from the provider, signed: an opt-out word
 *                           (TD, 退订, ...) or a follow-up reply code (the code and 1 or 2)
 *   POST /v1/sms/opt-outs   staff: a number opted out (or back in) at the desk or on the phone
 *
 * The provider signs its requests the Standard Webhooks way (common/webhook.h) with the chain's
 * sms.receipt_secret, so nobody else can mark messages delivered, opt numbers out or answer a
 * follow-up. Every one of them may be replayed: a receipt changes its message's status once
 * (the first one wins), an opt-out is a set membership, and a reply code answers its case once
 * (after that the case no longer waits for it). A replay is answered 200, so the provider stops.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "casestore.h"
#include "chain.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "webhook.h"

#define SIGNATURE_TOLERANCE_S 300    /* the standard's suggestion: 5 minutes either way */
#define MAX_RECEIPTS 100             /* per request */
#define MAX_REPLY_BYTES 640          /* a reply is one SMS: 70 characters, a few segments */
#define RECEIPT_TTL_S (14LL * 86400) /* as long as the notifier's outbox remembers a task */

/* Checks the provider's signature over the raw body. Returns 0, or -1 having answered. */
static int signed_by_provider(struct gw_req *r)
{
    const char *secret = cw_chain_sms(r->gw->chain)->receipt_secret;
    if (!secret) {
        gw_error(r, 404, "not_found",
                 "SMS receipts and replies are not set up: give sms.receipt_secret in the chain "
                 "file",
                 NULL);
        return -1;
    }
    struct evkeyvalq *h = evhttp_request_get_input_headers(r->req);
    const char *id = evhttp_find_header(h, "webhook-id");
    const char *ts = evhttp_find_header(h, "webhook-timestamp");
    const char *sig = evhttp_find_header(h, "webhook-signature");
    if (!id || !ts || !sig) {
        gw_error(r, 401, "unauthorized",
                 "sign the request: webhook-id, webhook-timestamp and webhook-signature "
                 "(Standard Webhooks, with sms.receipt_secret)",
                 NULL);
        return -1;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(r->req);
    size_t len = evbuffer_get_length(in);
    const unsigned char *body = evbuffer_pullup(in, -1);
    int v = cw_wh_verify(secret, id, ts, body ? body : (const unsigned char *)"", len, sig,
                         cw_now_ms() / 1000, SIGNATURE_TOLERANCE_S);
    if (v == CW_WH_OK) return 0;
    if (v == CW_WH_ERR_KEY) { /* ours, not the provider's */
        cw_error("sms.receipt_secret_unusable",
                 "request_id=%s reason=\"sms.receipt_secret cannot sign (a whsec_ secret that is "
                 "not base64?)\"",
                 r->request_id);
        gw_error(r, 500, "internal", "the gateway's SMS signing secret is unusable", NULL);
        return -1;
    }
    static const char *const verdicts[] = {"ok", "timestamp", "no_match", "malformed"};
    cw_warn("sms.bad_signature", "request_id=%s verdict=%s client_ip=%s", r->request_id,
            v >= -3 ? verdicts[-v] : "?", r->client_ip);
    /* unsigned floods cost an HMAC each: they count against the address's rate limit */
    if (gw_rate_check(r, 0, r->client_ip) != 0) return -1;
    gw_error(r, 401, "unauthorized",
             v == CW_WH_ERR_TIMESTAMP ? "webhook-timestamp is not within 5 minutes of our clock"
             : v == CW_WH_ERR_NO_MATCH
                 ? "the signature does not match the body (signed with sms.receipt_secret?)"
                 : "the signature headers are malformed",
             NULL);
    return -1;
}

/* ---- receipts ---- */

static void receipts_recorded(struct gw_req *r, const redisReply *reply, const char *err)
{
    json_t *items = r->op;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements != json_array_size(items)) {
        gw_error_retry(r, 503, "unavailable", "receipt store unavailable; retry", 2);
        return;
    }
    json_t *results = json_array();
    for (size_t i = 0; i < reply->elements; i++) {
        const char *what = gw_reply_str(reply, i);
        const char *id = json_string_value(json_object_get(json_array_get(items, i), "id"));
        if (!strcmp(what, "recorded"))
            cw_info("sms.receipt", "request_id=%s task=%s status=%s", r->request_id, id,
                    json_string_value(json_object_get(json_array_get(items, i), "status")));
        json_array_append_new(results, json_pack("{s:s,s:s}", "id", id, "result", what));
        cw_metric_add(r->gw->sms_receipts[!strcmp(what, "recorded")    ? 0
                                          : !strcmp(what, "duplicate") ? 1
                                                                       : 2],
                      1);
    }
    gw_reply(r, 200, json_pack("{s:o}", "results", results));
}

/* Checks one receipt; fills its four script arguments. */
static int receipt_args(json_t *it, size_t i, const char **argv, char *at_buf, size_t at_len,
                        struct gw_verr *e)
{
    static const char *const keys[] = {"id", "status", "code", "at_ms", NULL};
    char path[32];
    snprintf(path, sizeof path, "receipts[%zu]", i);
    if (!json_is_object(it))
        return gw_fail(e, "validation_failed", path, "%s must be an object", path);
    const char *id, *status, *code;
    if (gw_check_keys(it, path, keys, e) != 0 ||
        gw_get_string(it, "id", path, 128, true, &id, e) != 0 ||
        gw_get_string(it, "status", path, 16, true, &status, e) != 0 ||
        gw_get_string(it, "code", path, 64, false, &code, e) != 0)
        return -1;
    char field[48];
    snprintf(field, sizeof field, "%s.status", path);
    if (strcmp(status, "delivered") && strcmp(status, "failed"))
        return gw_fail(e, "validation_failed", field, "%s is delivered or failed", field);
    json_t *at = json_object_get(it, "at_ms");
    snprintf(field, sizeof field, "%s.at_ms", path);
    if (at && (!json_is_integer(at) || json_integer_value(at) < 0))
        return gw_fail(e, "validation_failed", field,
                       "%s is the provider's time of the receipt, Unix milliseconds", field);
    snprintf(at_buf, at_len, "%lld",
             at ? (long long)json_integer_value(at) : (long long)cw_now_ms());
    argv[0] = id;
    argv[1] = status;
    argv[2] = code ? code : "";
    argv[3] = at_buf;
    return 0;
}

void gw_sms_receipts(struct gw_req *r)
{
    if (signed_by_provider(r) != 0) return;
    static const char *const keys[] = {"receipts", NULL};
    struct gw_verr e = {0};
    json_t *items = json_object_get(r->body, "receipts");
    size_t n = json_array_size(items);
    if (gw_check_keys(r->body, "", keys, &e) != 0) {
        gw_error(r, 422, e.code, e.message, e.field);
        return;
    }
    if (!json_is_array(items) || n == 0 || n > MAX_RECEIPTS) {
        gw_error(r, 422, "validation_failed", "receipts is a list of 1 to 100 receipts",
                 "receipts");
        return;
    }
    const char **argv = calloc(2 + 4 * n, sizeof *argv);
    char(*at)[24] = calloc(n, sizeof *at);
    char ttl[16];
    if (!argv || !at) {
        free(argv);
        free(at);
        gw_error(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    snprintf(ttl, sizeof ttl, "%lld", RECEIPT_TTL_S);
    argv[0] = ttl;
    int bad = 0;
    for (size_t i = 0; i < n && !bad; i++)
        bad = receipt_args(json_array_get(items, i), i, argv + 1 + 4 * i, at[i], sizeof at[i], &e);
    if (bad) {
        gw_error(r, 422, e.code, e.message, e.field);
    } else {
        r->op = json_incref(items);
        r->op_free = (void (*)(void *))json_decref;
        if (gw_store_run(r, GW_S_SMS_RECEIPTS, 0, (int)(1 + 4 * n), argv, receipts_recorded) != 0)
            gw_error_retry(r, 503, "unavailable", "receipt store unavailable; retry", 2);
    }
    free(argv);
    free(at);
}

/* ---- replies ---- */

/* Upper-cases ASCII, turns full-width digits and letters (what a Chinese keyboard often sends)
 * into ASCII, and drops spaces: "　ｔｄ " -> "TD", "4827 1" -> "48271". */
static void fold_reply(const char *in, char *out, size_t cap)
{
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)in; *p && n + 4 < cap;) {
        if (p[0] == 0xEF && p[1] == 0xBC && p[2] >= 0x90 && p[2] <= 0x99) { /* ０-９ */
            out[n++] = (char)('0' + p[2] - 0x90);
            p += 3;
        } else if (p[0] == 0xEF && ((p[1] == 0xBC && p[2] >= 0xA1 && p[2] <= 0xBA) ||
                                    (p[1] == 0xBD && p[2] >= 0x81 && p[2] <= 0x9A))) { /* Ａ-ｚ */
            out[n++] = (char)('A' + (p[1] == 0xBC ? p[2] - 0xA1 : p[2] - 0x81));
            p += 3;
        } else if (p[0] == 0xE3 && p[1] == 0x80 && p[2] == 0x80) { /* ideographic space */
            p += 3;
        } else if (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') {
            p++;
        } else {
            out[n++] = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
            p++;
        }
    }
    out[n] = '\0';
}

static bool opt_out_word(const char *s)
{
    static const char *const words[] = {"TD", "T", "N", "STOP", "UNSUBSCRIBE", "退订", "取消"};
    for (size_t i = 0; i < sizeof words / sizeof *words; i++)
        if (!strcmp(s, words[i])) return true;
    return false;
}

struct reply {
    char hash[CW_PHONE_HASH_LEN + 1];
    char code[8];
    bool satisfied;
};

static void opted_out(struct gw_req *r, const redisReply *reply, const char *err)
{
    /* {1 opted out | 0 opted back in, 1 changed | 0 already so} */
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_INTEGER ||
        reply->element[1]->type != REDIS_REPLY_INTEGER) {
        gw_error_retry(r, 503, "unavailable", "opt-out store unavailable; retry", 2);
        return;
    }
    bool out = reply->element[0]->integer == 1, changed = reply->element[1]->integer > 0;
    cw_info("sms.opt_out", "request_id=%s by=%s opted_out=%s changed=%s", r->request_id,
            r->staff ? r->staff->id : "sms", out ? "yes" : "no", changed ? "yes" : "no");
    gw_reply(r, 200,
             json_pack("{s:s,s:b}", "action", out ? "opted_out" : "opted_in", "changed", changed));
}

static void code_found(struct gw_req *r, const redisReply *reply, const char *err)
{
    struct reply *rp = r->op;
    if (err || !reply) {
        gw_error_retry(r, 503, "unavailable", "reply store unavailable; retry", 2);
        return;
    }
    if (reply->type != REDIS_REPLY_STRING || !cw_ulid_valid(reply->str)) {
        cw_info("sms.reply_unmatched", "request_id=%s code=%s", r->request_id, rp->code);
        gw_reply(r, 200,
                 json_pack("{s:s,s:s}", "action", "none", "reason",
                           "no case waits for this reply code from this number"));
        return;
    }
    char case_id[CW_ULID_LEN + 1];
    snprintf(case_id, sizeof case_id, "%s", reply->str);
    bool satisfied = rp->satisfied;
    /* the event takes r->op over */
    free(rp);
    r->op = NULL;
    r->op_free = NULL;
    gw_customer_followup(r, case_id, satisfied);
}

void gw_sms_replies(struct gw_req *r)
{
    if (signed_by_provider(r) != 0) return;
    static const char *const keys[] = {"from", "text", "id", NULL};
    struct gw_verr e = {0};
    const char *from, *text, *id;
    char phone[32];
    if (gw_check_keys(r->body, "", keys, &e) != 0 ||
        gw_get_string(r->body, "from", "", 32, true, &from, &e) != 0 ||
        gw_get_string(r->body, "text", "", MAX_REPLY_BYTES, true, &text, &e) != 0 ||
        gw_get_string(r->body, "id", "", 128, false, &id, &e) != 0) {
        gw_error(r, 422, e.code, e.message, e.field);
        return;
    }
    /* providers often send a Chinese number as 86 and 11 digits, without the + */
    char plus[40];
    if (strlen(from) == 13 && !strncmp(from, "861", 3) && strspn(from, "0123456789") == 13) {
        snprintf(plus, sizeof plus, "+%s", from);
        from = plus;
    }
    if (gw_normalize_phone(from, phone, sizeof phone) != 0) {
        gw_error(r, 422, "validation_failed", "from is the customer's phone number", "from");
        return;
    }
    struct reply *rp = calloc(1, sizeof *rp);
    if (!rp) {
        gw_error(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    r->op = rp;
    r->op_free = free;
    cw_phone_hash(phone, rp->hash);
    char folded[MAX_REPLY_BYTES + 1];
    fold_reply(text, folded, sizeof folded);
    size_t n = strlen(folded);
    if (opt_out_word(folded)) {
        const char *argv[] = {rp->hash, "1"};
        if (gw_store_run(r, GW_S_SMS_OPTOUT, 0, 2, argv, opted_out) != 0)
            gw_error_retry(r, 503, "unavailable", "opt-out store unavailable; retry", 2);
        return;
    }
    bool code = n == CW_REPLY_CODE_DIGITS + 1 && (folded[n - 1] == '1' || folded[n - 1] == '2');
    for (size_t i = 0; code && i < n; i++) code = folded[i] >= '0' && folded[i] <= '9';
    if (!code) {
        /* free text: a person should read it, but it answers nothing by itself */
        cw_info("sms.reply_ignored", "request_id=%s provider_id=%s chars=%zu", r->request_id,
                id ? id : "-", gw_utf8_chars(text));
        gw_reply(r, 200,
                 json_pack("{s:s,s:s}", "action", "none", "reason",
                           "neither an opt-out word nor a reply code"));
        return;
    }
    rp->satisfied = folded[n - 1] == '1';
    snprintf(rp->code, sizeof rp->code, "%.*s", CW_REPLY_CODE_DIGITS, folded);
    char key[80];
    snprintf(key, sizeof key, "cw:cb:reply:%s:%s", rp->hash, rp->code);
    const char *argv[] = {key};
    if (gw_store_run(r, GW_S_SMS_REPLY_CODE, 1, 1, argv, code_found) != 0)
        gw_error_retry(r, 503, "unavailable", "reply store unavailable; retry", 2);
}

/* ---- opt-outs by staff ---- */

void gw_sms_optouts(struct gw_req *r)
{
    static const char *const keys[] = {"phone", "opted_out", NULL};
    struct gw_verr e = {0};
    const char *from;
    int out;
    char phone[32], hash[CW_PHONE_HASH_LEN + 1];
    if (gw_check_keys(r->body, "", keys, &e) != 0 ||
        gw_get_string(r->body, "phone", "", 32, true, &from, &e) != 0 ||
        gw_get_bool(r->body, "opted_out", "", &out, &e) != 0) {
        gw_error(r, 422, e.code, e.message, e.field);
        return;
    }
    json_t *given = json_object_get(r->body, "opted_out");
    if (!given || json_is_null(given)) out = 1; /* the usual request: no more SMS */
    if (gw_normalize_phone(from, phone, sizeof phone) != 0) {
        gw_error(r, 422, "validation_failed",
                 "phone is a mainland mobile number or an E.164 number (+8613800138000)", "phone");
        return;
    }
    cw_phone_hash(phone, hash);
    const char *argv[] = {hash, out ? "1" : "0"};
    if (gw_store_run(r, GW_S_SMS_OPTOUT, 0, 2, argv, opted_out) != 0)
        gw_error_retry(r, 503, "unavailable", "opt-out store unavailable; retry", 2);
}
