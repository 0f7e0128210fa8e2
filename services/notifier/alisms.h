/*
 * Alibaba Cloud SMS (Dysmsapi, API version 2017-05-25): the signed SendSms request and its
 * reply. Pure functions, no I/O, no global state; the caller owns every buffer, the nonce and
 * the clock, so a request can be reproduced byte for byte in tests.
 *
 * The signature is the RPC "POP" one (SignatureMethod HMAC-SHA1, SignatureVersion 1.0),
 * documented by Alibaba Cloud as "Signature method" for SMS
 * (https://www.alibabacloud.com/help/en/sms/signature-method; in Chinese, 生成请求签名,
 * https://help.aliyun.com/document_detail/101343.htm):
 *
 *   CanonicalizedQueryString = the parameters but Signature, sorted by name (byte order),
 *                              each name and value percent-encoded (below), as k=v&k=v
 *   StringToSign = HTTPMethod + "&" + encode("/") + "&" + encode(CanonicalizedQueryString)
 *   Signature    = Base64(HMAC-SHA1(AccessKeySecret + "&", StringToSign))
 *
 * The percent-encoding is RFC 3986's: A-Z a-z 0-9 - _ . ~ as they are, every other byte of the
 * UTF-8 text as %XX in upper-case hex (so a space is %20, never +). The reply's codes are those
 * of the SMS "API错误码" page (https://help.aliyun.com/document_detail/101346.html).
 */
#ifndef NT_ALISMS_H
#define NT_ALISMS_H

#include <stddef.h>
#include <stdint.h>

#define NT_ALI_MAX_PARAMS 64    /* nt_ali_sign refuses more */
#define NT_ALI_SECRET_MAX 127   /* longest AccessKeySecret accepted (Alibaba's are 30) */
#define NT_ALI_SEND_PARAMS 14   /* most parameters nt_ali_send_params fills */
#define NT_ALI_TIMESTAMP_LEN 21 /* "YYYY-MM-DDThh:mm:ssZ" and its NUL */
#define NT_ALI_REGION_DEFAULT "cn-hangzhou"

/* One request parameter. */
struct nt_ali_param {
    const char *name, *value;
};

/* Percent-encodes src (NUL-terminated) the Alibaba way into out; returns the length written, or
 * -1 when it does not fit (out is then "", so a cut encoding is never taken for a whole one).
 * out is always NUL-terminated when outlen > 0. */
int nt_ali_encode(const char *src, char *out, size_t outlen);

/* The signed query: sorts a copy of params, builds the canonical query, the string to sign and
 * the signature, and writes "Signature=<encoded>&<canonical query>" into out (the signature
 * first, as in Alibaba's documented example; the server accepts any order). string_to_sign
 * (may be NULL) receives the StringToSign, for tests and logs. method is "GET" or "POST".
 * Returns 0, or -1 (with out and string_to_sign set to "") for: more than NT_ALI_MAX_PARAMS
 * parameters, a NULL or empty name, a NULL value, a name given twice, a parameter named
 * Signature, another method, a secret longer than NT_ALI_SECRET_MAX, out or string_to_sign too
 * short, a crypto failure. */
int nt_ali_sign(const char *method, const struct nt_ali_param *params, size_t nparams,
                const char *access_key_secret, char *out, size_t outlen, char *string_to_sign,
                size_t stslen);

/* unix_ms as the Timestamp parameter wants it: ISO 8601 UTC to the second,
 * "YYYY-MM-DDThh:mm:ssZ" (milliseconds dropped, rounding down, also before 1970). Returns 0, or
 * -1 when outlen < NT_ALI_TIMESTAMP_LEN or the year is outside 0..9999. */
int nt_ali_timestamp(int64_t unix_ms, char *out, size_t outlen);

/* One SendSms request. Strings are borrowed, never copied. */
struct nt_ali_send {
    const char *access_key_id;
    const char *region;              /* NULL or "": NT_ALI_REGION_DEFAULT */
    const char *phone;               /* PhoneNumbers: one number or several, comma-separated */
    const char *sign_name;           /* the approved SMS signature (签名), UTF-8 */
    const char *template_code;       /* e.g. "SMS_71390007" */
    const char *template_param_json; /* JSON object text; NULL or "": template has no variables */
    const char *out_id;              /* our task id, echoed in receipts; NULL or "": omitted */
    const char *nonce;               /* SignatureNonce: unique per request (a UUID), caller's */
    int64_t timestamp_ms;            /* when the request is made, unix ms */
};

/* Fills params (at least NT_ALI_SEND_PARAMS entries) with the common and SendSms parameters, in
 * name order: AccessKeyId, Action=SendSms, Format=JSON, OutId (optional), PhoneNumbers,
 * RegionId, SignName, SignatureMethod=HMAC-SHA1, SignatureNonce, SignatureVersion=1.0,
 * TemplateCode, TemplateParam (optional), Timestamp, Version=2017-05-25. The Timestamp text is
 * written to timestamp (tslen >= NT_ALI_TIMESTAMP_LEN), which must outlive params. Returns the
 * number of parameters, or -1 when a required field (access_key_id, phone, sign_name,
 * template_code, nonce) is NULL or empty or the timestamp cannot be written. */
int nt_ali_send_params(const struct nt_ali_send *s, char *timestamp, size_t tslen,
                       struct nt_ali_param *params);

/* The whole signed query of a SendSms POST, the request body as
 * application/x-www-form-urlencoded (Alibaba's encoding is a valid form encoding: a space is
 * %20 and a + is %2B, so a form decoder reads back the same text). Returns 0 or -1 (as
 * nt_ali_send_params and nt_ali_sign). */
int nt_ali_send_query(const struct nt_ali_send *s, const char *access_key_secret, char *out,
                      size_t outlen);

/* What to do with a message after SendSms replied. */
enum nt_ali_outcome {
    NT_ALI_ACCEPTED,  /* Code OK: Alibaba took the message (delivery comes later, by receipt) */
    NT_ALI_THROTTLED, /* a rate or quota limit: retry later, after a long back-off */
    NT_ALI_RETRY,     /* transient, unknown, or a reply we could not read: retry */
    NT_ALI_PERMANENT, /* the request or the account is wrong: retrying cannot help */
};

/* The fields of a SendSms reply; texts longer than their array are cut (at a UTF-8 character
 * boundary) and NUL-terminated. */
struct nt_ali_reply {
    char code[64];
    char message[256];
    char biz_id[64];     /* BizId: Alibaba's id of the send, to query its receipt */
    char request_id[64]; /* RequestId: what Alibaba's support asks for */
    enum nt_ali_outcome outcome;
};

/* The outcome for a reply Code (NULL: NT_ALI_RETRY). */
enum nt_ali_outcome nt_ali_classify(const char *code);

/* Parses a SendSms JSON reply, {"Code":"OK","Message":"OK","BizId":"...","RequestId":"..."}, the
 * same shape for errors (with a Code other than OK). Returns 0, or -1 when json is not a JSON
 * object with a string Code (an HTML error page, a cut body): r's texts are then "" and its
 * outcome NT_ALI_RETRY, so a caller that only looks at the outcome retries. */
int nt_ali_parse_reply(const char *json, size_t len, struct nt_ali_reply *r);

#endif
