/* Alibaba Cloud SMS request signing and SendSms replies (services/notifier/alisms.c).
 *
 * The signing example is Alibaba's own SendSms example, AccessKeyId testId and AccessKeySecret
 * testSecret. Its parameters are on the SMS page "生成请求签名"
 * (https://help.aliyun.com/document_detail/101343.htm, in English "Signature method",
 * https://www.alibabacloud.com/help/en/sms/signature-method); the signed request,
 * "GET /?Signature=zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D&AccessKeyId=testId&Action=SendSms&...",
 * is the example of Alibaba's guide "HTTP协议及签名" as republished on Alibaba's developer site
 * (https://developer.aliyun.com/ask/218522, steps on /ask/218529). The StringToSign below
 * follows from the documented rules; it was recomputed with Python's urllib and hmac, and a
 * wrong one could not give the documented signature. The POST signature (uXFmOZ...) is not
 * from the documentation: computed the same way. */
#include <check.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alisms.h"
#include "testing.h"

#define DOC_SECRET "testSecret"
#define DOC_SIGNATURE "zJDF%2BLrzhj%2FThnlvIToysFRq6t4%3D" /* zJDF+Lrzhj/ThnlvIToysFRq6t4= */
#define DOC_CANONICAL                                                                              \
    "AccessKeyId=testId&Action=SendSms&Format=XML&OutId=123&PhoneNumbers=15300000001"              \
    "&RegionId=cn-hangzhou"                                                                        \
    "&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8"  \
    "&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466"               \
    "&SignatureVersion=1.0&TemplateCode=SMS_71390007"                                              \
    "&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z"          \
    "&Version=2017-05-25"
#define DOC_STRING_TO_SIGN                                                                         \
    "GET&%2F&AccessKeyId%3DtestId%26Action%3DSendSms%26Format%3DXML%26OutId%3D123"                 \
    "%26PhoneNumbers%3D15300000001%26RegionId%3Dcn-hangzhou"                                       \
    "%26SignName%3D%25E9%2598%25BF%25E9%2587%258C%25E4%25BA%2591%25E7%259F%25AD%25E4%25BF%25A1"    \
    "%25E6%25B5%258B%25E8%25AF%2595%25E4%25B8%2593%25E7%2594%25A8"                                 \
    "%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3D45e25e9b-0a6f-4070-8c85-2956eda1b466"       \
    "%26SignatureVersion%3D1.0%26TemplateCode%3DSMS_71390007"                                      \
    "%26TemplateParam%3D%257B%2522customer%2522%253A%2522test%2522%257D"                           \
    "%26Timestamp%3D2017-07-12T02%253A42%253A19Z%26Version%3D2017-05-25"
/* 2017-07-12T02:42:19Z */
#define DOC_TIME_MS 1499827339000LL

/* In the documentation's (Java HashMap) order, not sorted: the sorting is the module's. */
static const struct nt_ali_param doc_params[] = {
    {"SignatureMethod", "HMAC-SHA1"},
    {"SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"},
    {"AccessKeyId", "testId"},
    {"SignatureVersion", "1.0"},
    {"Timestamp", "2017-07-12T02:42:19Z"},
    {"Format", "XML"},
    {"Action", "SendSms"},
    {"Version", "2017-05-25"},
    {"RegionId", "cn-hangzhou"},
    {"PhoneNumbers", "15300000001"},
    {"SignName", "阿里云短信测试专用"},
    {"TemplateParam", "{\"customer\":\"test\"}"},
    {"TemplateCode", "SMS_71390007"},
    {"OutId", "123"},
};
#define NDOC (sizeof doc_params / sizeof doc_params[0])

static struct nt_ali_send doc_send(void)
{
    return (struct nt_ali_send){
        .access_key_id = "testId",
        .region = "cn-hangzhou",
        .phone = "15300000001",
        .sign_name = "阿里云短信测试专用",
        .template_code = "SMS_71390007",
        .template_param_json = "{\"customer\":\"test\"}",
        .out_id = "123",
        .nonce = "45e25e9b-0a6f-4070-8c85-2956eda1b466",
        .timestamp_ms = DOC_TIME_MS,
    };
}

static const char *encoded(const char *s)
{
    static char b[4096];
    ck_assert_int_ge(nt_ali_encode(s, b, sizeof b), 0);
    return b;
}

/* ---- signing ---- */

START_TEST(documented_example)
{
    char out[2048], sts[2048];
    ck_assert_int_eq(
        nt_ali_sign("GET", doc_params, NDOC, DOC_SECRET, out, sizeof out, sts, sizeof sts), 0);
    ck_assert_str_eq(sts, DOC_STRING_TO_SIGN);
    ck_assert_str_eq(out, "Signature=" DOC_SIGNATURE "&" DOC_CANONICAL);
    /* no copy of the string to sign asked for: same query */
    char again[2048];
    ck_assert_int_eq(nt_ali_sign("GET", doc_params, NDOC, DOC_SECRET, again, sizeof again, NULL, 0),
                     0);
    ck_assert_str_eq(again, out);
    /* the method is signed */
    ck_assert_int_eq(
        nt_ali_sign("POST", doc_params, NDOC, DOC_SECRET, again, sizeof again, sts, sizeof sts), 0);
    ck_assert(strncmp(sts, "POST&%2F&AccessKeyId%3DtestId%26", 32) == 0);
    ck_assert_str_ne(again, out);
}
END_TEST

/* nt_ali_send_params makes the documented parameters, Format aside (we ask for JSON). */
START_TEST(send_params_make_the_documented_request)
{
    struct nt_ali_send s = doc_send();
    char ts[NT_ALI_TIMESTAMP_LEN];
    struct nt_ali_param p[NT_ALI_SEND_PARAMS];
    int n = nt_ali_send_params(&s, ts, sizeof ts, p);
    ck_assert_int_eq(n, NT_ALI_SEND_PARAMS);
    ck_assert_str_eq(ts, "2017-07-12T02:42:19Z");
    int format = -1;
    for (int i = 0; i < n; i++) {
        if (i > 0) ck_assert_int_lt(strcmp(p[i - 1].name, p[i].name), 0); /* in name order */
        if (strcmp(p[i].name, "Format") == 0) format = i;
    }
    ck_assert_int_ge(format, 0);
    ck_assert_str_eq(p[format].value, "JSON");
    p[format].value = "XML";
    char out[2048];
    ck_assert_int_eq(nt_ali_sign("GET", p, (size_t)n, DOC_SECRET, out, sizeof out, NULL, 0), 0);
    ck_assert_str_eq(out, "Signature=" DOC_SIGNATURE "&" DOC_CANONICAL);

    /* optional parts left out, the default region */
    s.out_id = "";
    s.template_param_json = NULL;
    s.region = NULL;
    n = nt_ali_send_params(&s, ts, sizeof ts, p);
    ck_assert_int_eq(n, NT_ALI_SEND_PARAMS - 2);
    for (int i = 0; i < n; i++) {
        ck_assert_str_ne(p[i].name, "OutId");
        ck_assert_str_ne(p[i].name, "TemplateParam");
        if (strcmp(p[i].name, "RegionId") == 0) ck_assert_str_eq(p[i].value, "cn-hangzhou");
    }
    /* required parts missing */
    const char **req[] = {&s.access_key_id, &s.phone, &s.sign_name, &s.template_code, &s.nonce};
    for (size_t i = 0; i < sizeof req / sizeof req[0]; i++) {
        s = doc_send();
        *req[i] = "";
        ck_assert_int_eq(nt_ali_send_params(&s, ts, sizeof ts, p), -1);
        *req[i] = NULL;
        ck_assert_int_eq(nt_ali_send_params(&s, ts, sizeof ts, p), -1);
    }
    s = doc_send();
    ck_assert_int_eq(nt_ali_send_params(&s, ts, sizeof ts - 1, p), -1);
}
END_TEST

/* The POST body: Format=JSON, signed as POST; checked against an HMAC computed here. */
START_TEST(send_query_for_a_post)
{
    const char *canonical =
        "AccessKeyId=testId&Action=SendSms&Format=JSON&OutId=123&PhoneNumbers=15300000001"
        "&RegionId=cn-hangzhou"
        "&SignName=%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94"
        "%A8&SignatureMethod=HMAC-SHA1&SignatureNonce=45e25e9b-0a6f-4070-8c85-2956eda1b466"
        "&SignatureVersion=1.0&TemplateCode=SMS_71390007"
        "&TemplateParam=%7B%22customer%22%3A%22test%22%7D&Timestamp=2017-07-12T02%3A42%3A19Z"
        "&Version=2017-05-25";
    struct nt_ali_send s = doc_send();
    char out[2048];
    ck_assert_int_eq(nt_ali_send_query(&s, DOC_SECRET, out, sizeof out), 0);

    char sts[2048];
    snprintf(sts, sizeof sts, "POST&%%2F&%s", encoded(canonical));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    ck_assert_ptr_nonnull(HMAC(EVP_sha1(), DOC_SECRET "&", (int)strlen(DOC_SECRET "&"),
                               (const unsigned char *)sts, strlen(sts), md, &mdlen));
    ck_assert_uint_eq(mdlen, 20);
    char b64[29];
    EVP_EncodeBlock((unsigned char *)b64, md, 20);
    ck_assert_str_eq(b64, "uXFmOZ+G8ZX3qPh4wK0RMGokzcw="); /* computed, not documented */
    char want[2048];
    snprintf(want, sizeof want, "Signature=%s&%s", encoded(b64), canonical);
    ck_assert_str_eq(out, want);

    /* no OutId: none in the body */
    s.out_id = NULL;
    ck_assert_int_eq(nt_ali_send_query(&s, DOC_SECRET, out, sizeof out), 0);
    ck_assert_ptr_null(strstr(out, "OutId"));
    ck_assert_ptr_nonnull(strstr(out, "&Action=SendSms&Format=JSON&PhoneNumbers="));
    s.phone = NULL;
    ck_assert_int_eq(nt_ali_send_query(&s, DOC_SECRET, out, sizeof out), -1);
    ck_assert_str_eq(out, "");
}
END_TEST

/* ---- percent-encoding ---- */

START_TEST(encoding_edge_cases)
{
    ck_assert_str_eq(encoded("a b"), "a%20b");
    ck_assert_str_eq(encoded("*"), "%2A");
    ck_assert_str_eq(encoded("~"), "~");
    ck_assert_str_eq(encoded("/"), "%2F");
    ck_assert_str_eq(encoded("+"), "%2B");
    ck_assert_str_eq(encoded("="), "%3D");
    ck_assert_str_eq(encoded("&"), "%26");
    ck_assert_str_eq(encoded("%"), "%25");
    ck_assert_str_eq(encoded("阿里"), "%E9%98%BF%E9%87%8C");
    ck_assert_str_eq(encoded("AZaz09-_."), "AZaz09-_.");
    ck_assert_str_eq(encoded("\x01\x7f\xff"), "%01%7F%FF");
    ck_assert_str_eq(encoded("{\"k\":\"v, w\"}"), "%7B%22k%22%3A%22v%2C%20w%22%7D");
    ck_assert_str_eq(encoded(""), "");
    char b[8];
    ck_assert_int_eq(nt_ali_encode("a b", b, sizeof b), 5);
}
END_TEST

START_TEST(encoding_out_of_space)
{
    char b[16];
    /* "a b" is 5 bytes encoded: 6 with the NUL */
    ck_assert_int_eq(nt_ali_encode("a b", b, 6), 5);
    ck_assert_str_eq(b, "a%20b");
    memset(b, 'x', sizeof b);
    ck_assert_int_eq(nt_ali_encode("a b", b, 5), -1);
    ck_assert_str_eq(b, ""); /* NUL-terminated, and no cut encoding left behind */
    ck_assert_int_eq(nt_ali_encode("a b", b, 3), -1);
    ck_assert_str_eq(b, "");
    ck_assert_int_eq(nt_ali_encode("", b, 1), 0);
    memset(b, 'x', sizeof b);
    ck_assert_int_eq(nt_ali_encode("a", b, 0), -1);
    ck_assert_int_eq(b[0], 'x'); /* outlen 0: nothing written */
    ck_assert_int_eq(nt_ali_encode(NULL, b, sizeof b), -1);
}
END_TEST

/* ---- sorting ---- */

/* Byte order: a name sorts before its extensions, upper case before lower case. */
START_TEST(sorting_by_bytes)
{
    const struct nt_ali_param p[] = {
        {"SignatureVersion", "1"}, {"ab", "2"},  {"SignName", "3"}, {"a", "4"},
        {"SignatureNonce", "5"},   {"aB", "6"},  {"Sign", "7"},     {"A", "8"},
        {"SignatureMethod", "9"},  {"a_", "10"},
    };
    char out[512], sts[1024];
    ck_assert_int_eq(
        nt_ali_sign("GET", p, sizeof p / sizeof p[0], "k", out, sizeof out, sts, sizeof sts), 0);
    const char *canonical = "A=8&Sign=7&SignName=3&SignatureMethod=9&SignatureNonce=5"
                            "&SignatureVersion=1&a=4&aB=6&a_=10&ab=2";
    const char *amp = strchr(out, '&');
    ck_assert_ptr_nonnull(amp);
    ck_assert_str_eq(amp + 1, canonical);
    char want[1024];
    snprintf(want, sizeof want, "GET&%%2F&%s", encoded(canonical));
    ck_assert_str_eq(sts, want);
}
END_TEST

/* ---- refusals ---- */

START_TEST(sign_out_of_space_and_bad_input)
{
    char full[2048], sts[2048];
    ck_assert_int_eq(
        nt_ali_sign("GET", doc_params, NDOC, DOC_SECRET, full, sizeof full, sts, sizeof sts), 0);
    size_t need = strlen(full) + 1, stsneed = strlen(sts) + 1;
    char *out = malloc(need), *s = malloc(stsneed);
    ck_assert_int_eq(nt_ali_sign("GET", doc_params, NDOC, DOC_SECRET, out, need, s, stsneed), 0);
    ck_assert_str_eq(out, full);
    ck_assert_str_eq(s, sts);
    /* every shorter out (with the canonical query fitting or not), then a short string_to_sign */
    for (size_t len = 0; len < need; len++) {
        out[0] = 'x';
        ck_assert_int_eq(nt_ali_sign("GET", doc_params, NDOC, DOC_SECRET, out, len, NULL, 0), -1);
        if (len > 0) ck_assert_int_eq(out[0], '\0');
    }
    ck_assert_int_eq(nt_ali_sign("GET", doc_params, NDOC, DOC_SECRET, out, need, s, stsneed - 1),
                     -1);
    ck_assert_str_eq(out, "");
    ck_assert_str_eq(s, "");
    free(out);
    free(s);

    char o[256];
    struct nt_ali_param many[NT_ALI_MAX_PARAMS + 1];
    char names[NT_ALI_MAX_PARAMS + 1][16];
    for (int i = 0; i <= NT_ALI_MAX_PARAMS; i++) {
        snprintf(names[i], sizeof names[i], "p%02d", i);
        many[i] = (struct nt_ali_param){names[i], ""};
    }
    char big[4096];
    ck_assert_int_eq(nt_ali_sign("GET", many, NT_ALI_MAX_PARAMS, "k", big, sizeof big, NULL, 0), 0);
    ck_assert_int_eq(nt_ali_sign("GET", many, NT_ALI_MAX_PARAMS + 1, "k", big, sizeof big, NULL, 0),
                     -1);

    const struct nt_ali_param dup[] = {{"A", "1"}, {"B", "2"}, {"A", "3"}};
    ck_assert_int_eq(nt_ali_sign("GET", dup, 3, "k", o, sizeof o, NULL, 0), -1);
    const struct nt_ali_param sig[] = {{"A", "1"}, {"Signature", "x"}};
    ck_assert_int_eq(nt_ali_sign("GET", sig, 2, "k", o, sizeof o, NULL, 0), -1);
    const struct nt_ali_param noval[] = {{"A", NULL}};
    ck_assert_int_eq(nt_ali_sign("GET", noval, 1, "k", o, sizeof o, NULL, 0), -1);
    const struct nt_ali_param noname[] = {{"", "1"}};
    ck_assert_int_eq(nt_ali_sign("GET", noname, 1, "k", o, sizeof o, NULL, 0), -1);
    ck_assert_int_eq(nt_ali_sign("PUT", doc_params, NDOC, "k", full, sizeof full, NULL, 0), -1);
    ck_assert_int_eq(nt_ali_sign(NULL, doc_params, NDOC, "k", full, sizeof full, NULL, 0), -1);
    ck_assert_int_eq(nt_ali_sign("GET", doc_params, NDOC, NULL, full, sizeof full, NULL, 0), -1);
    char longsecret[NT_ALI_SECRET_MAX + 2];
    memset(longsecret, 's', sizeof longsecret - 1);
    longsecret[sizeof longsecret - 1] = '\0';
    ck_assert_int_eq(nt_ali_sign("GET", doc_params, NDOC, longsecret, full, sizeof full, NULL, 0),
                     -1);
    longsecret[NT_ALI_SECRET_MAX] = '\0';
    ck_assert_int_eq(nt_ali_sign("GET", doc_params, NDOC, longsecret, full, sizeof full, NULL, 0),
                     0);
    /* no parameters: the signature alone */
    ck_assert_int_eq(nt_ali_sign("GET", NULL, 0, "k", o, sizeof o, sts, sizeof sts), 0);
    ck_assert_str_eq(sts, "GET&%2F&");
    ck_assert(strncmp(o, "Signature=", 10) == 0 && strchr(o, '&') == NULL);
}
END_TEST

START_TEST(timestamps)
{
    char ts[NT_ALI_TIMESTAMP_LEN];
    ck_assert_int_eq(nt_ali_timestamp(DOC_TIME_MS, ts, sizeof ts), 0);
    ck_assert_str_eq(ts, "2017-07-12T02:42:19Z");
    ck_assert_int_eq(nt_ali_timestamp(DOC_TIME_MS + 999, ts, sizeof ts), 0);
    ck_assert_str_eq(ts, "2017-07-12T02:42:19Z");
    ck_assert_int_eq(nt_ali_timestamp(0, ts, sizeof ts), 0);
    ck_assert_str_eq(ts, "1970-01-01T00:00:00Z");
    ck_assert_int_eq(nt_ali_timestamp(-1, ts, sizeof ts), 0);
    ck_assert_str_eq(ts, "1969-12-31T23:59:59Z");
    ck_assert_int_eq(nt_ali_timestamp(1795748400000LL, ts, sizeof ts), 0);
    ck_assert_str_eq(ts, "2026-11-27T03:00:00Z");
    ck_assert_int_eq(nt_ali_timestamp(DOC_TIME_MS, ts, sizeof ts - 1), -1);
    ck_assert_int_eq(nt_ali_timestamp(253402300800000LL, ts, sizeof ts), -1); /* year 10000 */
}
END_TEST

/* ---- replies ---- */

static int parse(const char *json, struct nt_ali_reply *r)
{
    return nt_ali_parse_reply(json, strlen(json), r);
}

START_TEST(reply_ok)
{
    struct nt_ali_reply r;
    ck_assert_int_eq(
        parse("{\"Message\":\"OK\",\"RequestId\":\"F655A8D5-B967-440B-8683-DAD6FF8DE990\","
              "\"Code\":\"OK\",\"BizId\":\"900619746936498440^0\"}",
              &r),
        0);
    ck_assert_int_eq(r.outcome, NT_ALI_ACCEPTED);
    ck_assert_str_eq(r.code, "OK");
    ck_assert_str_eq(r.message, "OK");
    ck_assert_str_eq(r.biz_id, "900619746936498440^0");
    ck_assert_str_eq(r.request_id, "F655A8D5-B967-440B-8683-DAD6FF8DE990");
}
END_TEST

START_TEST(reply_throttled)
{
    struct nt_ali_reply r;
    ck_assert_int_eq(parse("{\"Message\":\"触发小时级流控Permits:5\",\"RequestId\":\"R1\","
                           "\"Code\":\"isv.BUSINESS_LIMIT_CONTROL\"}",
                           &r),
                     0);
    ck_assert_int_eq(r.outcome, NT_ALI_THROTTLED);
    ck_assert_str_eq(r.code, "isv.BUSINESS_LIMIT_CONTROL");
    ck_assert_str_eq(r.message, "触发小时级流控Permits:5");
    ck_assert_str_eq(r.biz_id, ""); /* none on errors */
    ck_assert_int_eq(nt_ali_classify("isv.DAY_LIMIT_CONTROL"), NT_ALI_THROTTLED);
    ck_assert_int_eq(nt_ali_classify("isv.MONTH_LIMIT_CONTROL"), NT_ALI_THROTTLED);
    ck_assert_int_eq(nt_ali_classify("Throttling.User"), NT_ALI_THROTTLED);
    ck_assert_int_eq(nt_ali_classify("Throttling"), NT_ALI_THROTTLED);
    ck_assert_int_eq(nt_ali_classify("ThrottlingX"), NT_ALI_RETRY);
}
END_TEST

START_TEST(reply_permanent)
{
    struct nt_ali_reply r;
    ck_assert_int_eq(parse("{\"Message\":\"invalid mobile number\",\"RequestId\":\"R2\","
                           "\"Code\":\"isv.MOBILE_NUMBER_ILLEGAL\"}",
                           &r),
                     0);
    ck_assert_int_eq(r.outcome, NT_ALI_PERMANENT);
    ck_assert_str_eq(r.request_id, "R2");
    const char *permanent[] = {"isv.TEMPLATE_MISSING_PARAMETERS",
                               "isv.INVALID_PARAMETERS",
                               "isv.SMS_TEMPLATE_ILLEGAL",
                               "isv.SMS_SIGNATURE_ILLEGAL",
                               "InvalidAccessKeyId.NotFound",
                               "SignatureDoesNotMatch",
                               "isv.AMOUNT_NOT_ENOUGH",
                               "isv.BLACK_KEY_CONTROL_LIMIT",
                               "isv.OUT_OF_SERVICE"};
    for (size_t i = 0; i < sizeof permanent / sizeof permanent[0]; i++)
        ck_assert_msg(nt_ali_classify(permanent[i]) == NT_ALI_PERMANENT, "%s", permanent[i]);
    /* the gateway's own error body, same Code field */
    ck_assert_int_eq(parse("{\"RequestId\":\"R3\",\"HostId\":\"dysmsapi.aliyuncs.com\","
                           "\"Code\":\"SignatureDoesNotMatch\",\"Message\":\"Specified signature"
                           " is not matched with our calculation.\"}",
                           &r),
                     0);
    ck_assert_int_eq(r.outcome, NT_ALI_PERMANENT);
}
END_TEST

/* Unknown codes retry; a reply that is not a JSON object with a string Code returns -1 with
 * outcome NT_ALI_RETRY and empty texts. */
START_TEST(reply_unknown_or_malformed)
{
    struct nt_ali_reply r;
    ck_assert_int_eq(parse("{\"Code\":\"isp.SYSTEM_ERROR\",\"Message\":\"\"}", &r), 0);
    ck_assert_int_eq(r.outcome, NT_ALI_RETRY);
    ck_assert_int_eq(parse("{\"Code\":\"isv.SOMETHING_NEW\"}", &r), 0);
    ck_assert_int_eq(r.outcome, NT_ALI_RETRY);
    ck_assert_int_eq(nt_ali_classify(NULL), NT_ALI_RETRY);
    ck_assert_int_eq(nt_ali_classify(""), NT_ALI_RETRY);

    const char *bad[] = {"",
                         "<html>502 Bad Gateway</html>",
                         "{\"Code\":\"OK\"",
                         "[\"OK\"]",
                         "{\"Code\":200}",
                         "{\"Message\":\"OK\"}",
                         "null"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_msg(parse(bad[i], &r) == -1, "%s", bad[i]);
        ck_assert_int_eq(r.outcome, NT_ALI_RETRY);
        ck_assert_str_eq(r.code, "");
    }
    ck_assert_int_eq(nt_ali_parse_reply(NULL, 0, &r), -1);
    ck_assert_int_eq(r.outcome, NT_ALI_RETRY);
    /* len bounds the text: the OK reply cut short is malformed */
    const char *ok = "{\"Code\":\"OK\",\"BizId\":\"1\"}";
    ck_assert_int_eq(nt_ali_parse_reply(ok, strlen(ok) - 1, &r), -1);
}
END_TEST

START_TEST(reply_texts_are_cut_safely)
{
    /* "a" then 300 bytes of 3-byte characters: byte 255 falls inside a character, the cut
     * goes back to the character's start */
    char json[1024] = "{\"Code\":\"isv.INVALID_PARAMETERS\",\"Message\":\"a";
    for (int i = 0; i < 100; i++) strcat(json, "错");
    strcat(json, "\",\"BizId\":\"");
    for (int i = 0; i < 100; i++) strcat(json, "b");
    strcat(json, "\"}");
    struct nt_ali_reply r;
    ck_assert_int_eq(parse(json, &r), 0);
    ck_assert_uint_eq(strlen(r.message), 253); /* "a" and 84 characters */
    ck_assert_int_eq(memcmp(r.message + 250, "错", 3), 0);
    ck_assert_uint_eq(strlen(r.biz_id), sizeof r.biz_id - 1);
    ck_assert_int_eq(r.outcome, NT_ALI_PERMANENT);
    /* a code longer than the array is still classified on its whole text */
    char code[200] = "{\"Code\":\"";
    for (int i = 0; i < 100; i++) strcat(code, "x");
    strcat(code, "\"}");
    ck_assert_int_eq(parse(code, &r), 0);
    ck_assert_uint_eq(strlen(r.code), sizeof r.code - 1);
    ck_assert_int_eq(r.outcome, NT_ALI_RETRY);
}
END_TEST

CW_TEST_MAIN("alisms", documented_example, send_params_make_the_documented_request,
             send_query_for_a_post, encoding_edge_cases, encoding_out_of_space, sorting_by_bytes,
             sign_out_of_space_and_bad_input, timestamps, reply_ok, reply_throttled,
             reply_permanent, reply_unknown_or_malformed, reply_texts_are_cut_safely)
