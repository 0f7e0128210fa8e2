#include "alisms.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SHA1_LEN 20
#define SIG_B64_LEN 28 /* base64 of 20 bytes, without its NUL */
#define SIG_PREFIX "Signature="

static bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
}

/* Writes one byte encoded into b; returns 1 or 3. */
static size_t enc_byte(unsigned char c, char b[3])
{
    static const char hex[] = "0123456789ABCDEF";
    if (unreserved(c)) {
        b[0] = (char)c;
        return 1;
    }
    b[0] = '%';
    b[1] = hex[c >> 4];
    b[2] = hex[c & 15];
    return 3;
}

/* Appends src encoded at out[*pos], keeping room for the NUL; -1 when it does not fit. */
static int put_enc(char *out, size_t outlen, size_t *pos, const char *src)
{
    for (const unsigned char *p = (const unsigned char *)src; *p; p++) {
        char b[3];
        size_t n = enc_byte(*p, b);
        if (outlen - *pos <= n) return -1;
        memcpy(out + *pos, b, n);
        *pos += n;
    }
    out[*pos] = '\0';
    return 0;
}

static int put_raw(char *out, size_t outlen, size_t *pos, const char *src, size_t n)
{
    if (outlen - *pos <= n) return -1;
    memcpy(out + *pos, src, n);
    *pos += n;
    out[*pos] = '\0';
    return 0;
}

int nt_ali_encode(const char *src, char *out, size_t outlen)
{
    if (outlen == 0) return -1;
    size_t pos = 0;
    out[0] = '\0';
    if (!src || put_enc(out, outlen, &pos, src) < 0) {
        out[0] = '\0';
        return -1;
    }
    return (int)pos;
}

/* ---- the string to sign, fed to the MAC as it is made ---- */

/* The StringToSign is about three times the canonical query: it goes to the MAC in pieces
 * instead of being built whole, and is kept only when the caller asked for it. */
struct sts_sink {
    EVP_MAC_CTX *mac;
    char *copy; /* NULL: not kept */
    size_t copylen, used;
    bool failed;
};

static void sink_put(struct sts_sink *k, const char *s, size_t n)
{
    if (k->failed || n == 0) return;
    if (!EVP_MAC_update(k->mac, (const unsigned char *)s, n)) {
        k->failed = true;
        return;
    }
    if (k->copy) {
        if (k->copylen - k->used <= n) {
            k->failed = true;
            return;
        }
        memcpy(k->copy + k->used, s, n);
        k->used += n;
        k->copy[k->used] = '\0';
    }
}

/* encode(text) into the sink, through a small buffer to keep the MAC updates few. */
static void sink_put_enc(struct sts_sink *k, const char *text, size_t len)
{
    char buf[256];
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (n + 3 > sizeof buf) {
            sink_put(k, buf, n);
            n = 0;
        }
        n += enc_byte((unsigned char)text[i], buf + n);
    }
    sink_put(k, buf, n);
}

/* Base64(HMAC-SHA1(secret + "&", method&%2F&encode(canonical))) into b64 (SIG_B64_LEN + 1). */
static int signature(const char *method, const char *secret, const char *canonical, size_t canonlen,
                     char *sts, size_t stslen, char *b64)
{
    size_t slen = strlen(secret);
    if (slen > NT_ALI_SECRET_MAX) return -1;
    unsigned char key[NT_ALI_SECRET_MAX + 1];
    memcpy(key, secret, slen);
    key[slen] = '&';

    int rc = -1;
    EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *ctx = mac ? EVP_MAC_CTX_new(mac) : NULL;
    OSSL_PARAM ps[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA1", 0),
                       OSSL_PARAM_construct_end()};
    if (ctx && EVP_MAC_init(ctx, key, slen + 1, ps)) {
        struct sts_sink k = {ctx, sts, stslen, 0, false};
        if (sts) sts[0] = '\0';
        sink_put(&k, method, strlen(method));
        sink_put(&k, "&%2F&", 5);
        sink_put_enc(&k, canonical, canonlen);
        unsigned char md[EVP_MAX_MD_SIZE];
        size_t mdlen = 0;
        if (!k.failed && EVP_MAC_final(ctx, md, &mdlen, sizeof md) && mdlen == SHA1_LEN) {
            rc = EVP_EncodeBlock((unsigned char *)b64, md, SHA1_LEN) == SIG_B64_LEN ? 0 : -1;
        }
    }
    EVP_MAC_CTX_free(ctx);
    EVP_MAC_free(mac);
    /* The key is the secret: leave no copy of it on the stack. */
    OPENSSL_cleanse(key, sizeof key);
    return rc;
}

static int by_name(const void *a, const void *b)
{
    /* strcmp compares as unsigned char: the byte order the server sorts by. */
    return strcmp(((const struct nt_ali_param *)a)->name, ((const struct nt_ali_param *)b)->name);
}

int nt_ali_sign(const char *method, const struct nt_ali_param *params, size_t nparams,
                const char *access_key_secret, char *out, size_t outlen, char *string_to_sign,
                size_t stslen)
{
    if (outlen > 0) out[0] = '\0';
    if (string_to_sign && stslen > 0) string_to_sign[0] = '\0';
    if (!method || (strcmp(method, "GET") != 0 && strcmp(method, "POST") != 0)) return -1;
    if (!access_key_secret || nparams > NT_ALI_MAX_PARAMS || (nparams > 0 && !params)) return -1;
    if (outlen == 0 || (string_to_sign && stslen == 0)) return -1;

    struct nt_ali_param sorted[NT_ALI_MAX_PARAMS];
    for (size_t i = 0; i < nparams; i++) {
        const struct nt_ali_param *p = &params[i];
        if (!p->name || !p->name[0] || !p->value || strcmp(p->name, "Signature") == 0) return -1;
        sorted[i] = *p;
    }
    if (nparams > 1) qsort(sorted, nparams, sizeof sorted[0], by_name);
    for (size_t i = 1; i < nparams; i++) {
        /* With two values for one name, which one the server keeps is undocumented: refuse. */
        if (strcmp(sorted[i - 1].name, sorted[i].name) == 0) return -1;
    }

    /* The canonical query first, at the start of out; the signature goes in front of it once
     * known (whatever fits the whole fits the canonical query alone). */
    size_t pos = 0;
    for (size_t i = 0; i < nparams; i++) {
        if ((i > 0 && put_raw(out, outlen, &pos, "&", 1) < 0) ||
            put_enc(out, outlen, &pos, sorted[i].name) < 0 ||
            put_raw(out, outlen, &pos, "=", 1) < 0 ||
            put_enc(out, outlen, &pos, sorted[i].value) < 0) {
            out[0] = '\0';
            return -1;
        }
    }
    size_t canonlen = pos;

    char b64[SIG_B64_LEN + 1], sig[3 * SIG_B64_LEN + 1];
    int siglen;
    if (signature(method, access_key_secret, out, canonlen, string_to_sign, stslen, b64) < 0 ||
        (siglen = nt_ali_encode(b64, sig, sizeof sig)) < 0) {
        out[0] = '\0';
        if (string_to_sign) string_to_sign[0] = '\0';
        return -1;
    }

    size_t head = strlen(SIG_PREFIX) + (size_t)siglen + (canonlen > 0 ? 1 : 0);
    if (outlen - canonlen <= head) {
        out[0] = '\0';
        if (string_to_sign) string_to_sign[0] = '\0';
        return -1;
    }
    memmove(out + head, out, canonlen + 1);
    memcpy(out, SIG_PREFIX, strlen(SIG_PREFIX));
    memcpy(out + strlen(SIG_PREFIX), sig, (size_t)siglen);
    if (canonlen > 0) out[head - 1] = '&';
    return 0;
}

/* ---- SendSms ---- */

int nt_ali_timestamp(int64_t unix_ms, char *out, size_t outlen)
{
    if (outlen > 0) out[0] = '\0';
    if (outlen < NT_ALI_TIMESTAMP_LEN) return -1;
    int64_t secs = unix_ms / 1000 - (unix_ms % 1000 < 0 ? 1 : 0);
    time_t t = (time_t)secs;
    struct tm tm;
    if ((int64_t)t != secs || !gmtime_r(&t, &tm)) return -1;
    long year = (long)tm.tm_year + 1900;
    if (year < 0 || year > 9999) return -1;
    int n = snprintf(out, outlen, "%04ld-%02d-%02dT%02d:%02d:%02dZ", year, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    if (n != NT_ALI_TIMESTAMP_LEN - 1) {
        out[0] = '\0';
        return -1;
    }
    return 0;
}

static bool given(const char *s) { return s && s[0]; }

int nt_ali_send_params(const struct nt_ali_send *s, char *timestamp, size_t tslen,
                       struct nt_ali_param *params)
{
    if (!s || !params || !given(s->access_key_id) || !given(s->phone) || !given(s->sign_name) ||
        !given(s->template_code) || !given(s->nonce))
        return -1;
    if (!timestamp || nt_ali_timestamp(s->timestamp_ms, timestamp, tslen) < 0) return -1;

    int n = 0;
    params[n++] = (struct nt_ali_param){"AccessKeyId", s->access_key_id};
    params[n++] = (struct nt_ali_param){"Action", "SendSms"};
    params[n++] = (struct nt_ali_param){"Format", "JSON"};
    if (given(s->out_id)) params[n++] = (struct nt_ali_param){"OutId", s->out_id};
    params[n++] = (struct nt_ali_param){"PhoneNumbers", s->phone};
    params[n++] =
        (struct nt_ali_param){"RegionId", given(s->region) ? s->region : NT_ALI_REGION_DEFAULT};
    params[n++] = (struct nt_ali_param){"SignName", s->sign_name};
    params[n++] = (struct nt_ali_param){"SignatureMethod", "HMAC-SHA1"};
    params[n++] = (struct nt_ali_param){"SignatureNonce", s->nonce};
    params[n++] = (struct nt_ali_param){"SignatureVersion", "1.0"};
    params[n++] = (struct nt_ali_param){"TemplateCode", s->template_code};
    if (given(s->template_param_json))
        params[n++] = (struct nt_ali_param){"TemplateParam", s->template_param_json};
    params[n++] = (struct nt_ali_param){"Timestamp", timestamp};
    params[n++] = (struct nt_ali_param){"Version", "2017-05-25"};
    return n;
}

int nt_ali_send_query(const struct nt_ali_send *s, const char *access_key_secret, char *out,
                      size_t outlen)
{
    char ts[NT_ALI_TIMESTAMP_LEN];
    struct nt_ali_param params[NT_ALI_SEND_PARAMS];
    int n = nt_ali_send_params(s, ts, sizeof ts, params);
    if (n < 0) {
        if (outlen > 0) out[0] = '\0';
        return -1;
    }
    return nt_ali_sign("POST", params, (size_t)n, access_key_secret, out, outlen, NULL, 0);
}

/* ---- the reply ---- */

/* Rate and quota limits: the same message may go through later. The day and month limits are
 * the account's own (set in the console), lifted by the calendar or by an operator. */
static const char *const throttled_codes[] = {
    "isv.BUSINESS_LIMIT_CONTROL",
    "isv.DAY_LIMIT_CONTROL",
    "isv.MONTH_LIMIT_CONTROL",
};

/* Wrong request, template, signature, number or account: the same request fails again. The
 * account ones (balance, service stopped) need an operator, not a retry loop. */
static const char *const permanent_codes[] = {
    "InvalidAccessKeyId.NotFound",
    "InvalidAction.NotFound",
    "InvalidVersion",
    "SignatureDoesNotMatch",
    "isp.RAM_PERMISSION_DENY",
    "isv.ACCOUNT_ABNORMAL",
    "isv.ACCOUNT_NOT_EXISTS",
    "isv.AMOUNT_NOT_ENOUGH",
    "isv.BLACK_KEY_CONTROL_LIMIT",
    "isv.DENY_IP_RANGE",
    "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
    "isv.EXTEND_CODE_ERROR",
    "isv.INVALID_JSON_PARAM",
    "isv.INVALID_PARAMETERS",
    "isv.MOBILE_COUNT_OVER_LIMIT",
    "isv.MOBILE_NUMBER_ILLEGAL",
    "isv.OUT_OF_SERVICE",
    "isv.PARAM_LENGTH_LIMIT",
    "isv.PARAM_NOT_SUPPORT_URL",
    "isv.PRODUCT_UNSUBSCRIBE",
    "isv.PRODUCT_UN_SUBSCRIPT",
    "isv.SIGN_STATE_ILLEGAL",
    "isv.SMS_CONTENT_ILLEGAL",
    "isv.SMS_SIGNATURE_ILLEGAL",
    "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
    "isv.SMS_SIGN_ILLEGAL",
    "isv.SMS_TEMPLATE_ILLEGAL",
    "isv.TEMPLATE_MISSING_PARAMETERS",
    "isv.TEMPLATE_PARAMS_ILLEGAL",
};

static bool listed(const char *code, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(code, list[i]) == 0) return true;
    return false;
}

enum nt_ali_outcome nt_ali_classify(const char *code)
{
    if (!code) return NT_ALI_RETRY;
    if (strcmp(code, "OK") == 0) return NT_ALI_ACCEPTED;
    /* The gateway's flow control: Throttling, Throttling.User, Throttling.Api, ... */
    if (strncmp(code, "Throttling", 10) == 0 && (code[10] == '\0' || code[10] == '.'))
        return NT_ALI_THROTTLED;
    if (listed(code, throttled_codes, sizeof throttled_codes / sizeof throttled_codes[0]))
        return NT_ALI_THROTTLED;
    if (listed(code, permanent_codes, sizeof permanent_codes / sizeof permanent_codes[0]))
        return NT_ALI_PERMANENT;
    /* isp.SYSTEM_ERROR, SignatureNonceUsed, InvalidTimeStamp.Expired and codes added after this
     * list was written: a retry (with a new nonce and time) is the safe side, the retry budget
     * bounds it. */
    return NT_ALI_RETRY;
}

/* Copies src into dst (size n), cut at a UTF-8 character boundary so that logs stay valid
 * UTF-8 (Alibaba's messages are often Chinese). */
static void copy_cut(char *dst, size_t n, const char *src)
{
    size_t len = src ? strlen(src) : 0;
    if (len >= n) {
        len = n - 1;
        while (len > 0 && ((unsigned char)src[len] & 0xC0) == 0x80) len--;
    }
    if (len > 0) memcpy(dst, src, len);
    dst[len] = '\0';
}

int nt_ali_parse_reply(const char *json, size_t len, struct nt_ali_reply *r)
{
    memset(r, 0, sizeof *r);
    r->outcome = NT_ALI_RETRY;
    if (!json) return -1;
    json_t *root = json_loadb(json, len, 0, NULL);
    const char *code =
        json_is_object(root) ? json_string_value(json_object_get(root, "Code")) : NULL;
    if (!code) {
        json_decref(root);
        return -1;
    }
    copy_cut(r->code, sizeof r->code, code);
    copy_cut(r->message, sizeof r->message, json_string_value(json_object_get(root, "Message")));
    copy_cut(r->biz_id, sizeof r->biz_id, json_string_value(json_object_get(root, "BizId")));
    copy_cut(r->request_id, sizeof r->request_id,
             json_string_value(json_object_get(root, "RequestId")));
    /* Classified on the whole code, not on the copy that might be cut. */
    r->outcome = nt_ali_classify(code);
    json_decref(root);
    return 0;
}
