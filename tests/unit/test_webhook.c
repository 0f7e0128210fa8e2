/* Tenant webhooks: Standard Webhooks signing and verifying against the reference test vector,
 * delivery ids, the SSRF guard's address kinds (IPv4, IPv6 and IPv6 embedding IPv4) and the
 * URL shape check. */
#include <check.h>
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/un.h>

#include "testing.h"
#include "webhook.h"

/* The Standard Webhooks reference libraries' signing test, the same vector in each:
 * github.com/standard-webhooks/standard-webhooks, libraries/go/webhook_test.go (TestWebhookSign)
 * and libraries/javascript/src/webhook.test.ts ("sign function works"). The spec itself
 * (spec/standard-webhooks.md) gives the scheme but no secret with its example signature. */
#define VEC_SECRET "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
#define VEC_ID "msg_p5jXN8AQM9LWM0D4loKWxJek"
#define VEC_TS 1614265330LL
#define VEC_TS_TEXT "1614265330"
#define VEC_BODY "{\"test\": 2432232314}"
#define VEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
/* A v1 entry that is not the vector's: the reference tests' wrong signature */
#define OTHER_SIG "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
#define TOL 300

static int verify(const char *secret, const char *id, const char *ts, const char *body,
                  const char *header, long long now)
{
    return cw_wh_verify(secret, id, ts, body, strlen(body), header, now, TOL);
}

START_TEST(test_spec_vector)
{
    char sig[CW_WH_SIG_SIZE];
    memset(sig, 'x', sizeof sig);
    ck_assert_int_eq(
        cw_wh_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig, sizeof sig), 0);
    ck_assert_uint_eq(strlen(sig), strlen(VEC_SIG));
    ck_assert_int_eq(memcmp(sig, VEC_SIG, sizeof VEC_SIG), 0); /* with its NUL */
    /* exactly the room it needs */
    ck_assert_uint_eq(sizeof VEC_SIG, CW_WH_SIG_SIZE);
    ck_assert_int_eq(
        cw_wh_sign(VEC_SECRET, VEC_ID, VEC_TS, VEC_BODY, strlen(VEC_BODY), sig, CW_WH_SIG_SIZE - 1),
        -1);
}
END_TEST

START_TEST(test_verify)
{
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS), CW_WH_OK);
    /* the body, the id */
    ck_assert_int_eq(
        verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, "{\"test\": 2432232315}", VEC_SIG, VEC_TS),
        CW_WH_ERR_NO_MATCH);
    ck_assert_int_eq(
        verify(VEC_SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJeK", VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS),
        CW_WH_ERR_NO_MATCH);
    /* signed with another timestamp, sent with this one */
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, "1614265331", VEC_BODY, VEC_SIG, VEC_TS),
                     CW_WH_ERR_NO_MATCH);
    /* the tolerance, both ways, and its edges */
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS + TOL),
                     CW_WH_OK);
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS - TOL),
                     CW_WH_OK);
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS + TOL + 1),
                     CW_WH_ERR_TIMESTAMP);
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS - TOL - 1),
                     CW_WH_ERR_TIMESTAMP);
    ck_assert_int_eq(
        verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, VEC_SIG, -9000000000000000000LL),
        CW_WH_ERR_TIMESTAMP);
    ck_assert_int_eq(cw_wh_verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, strlen(VEC_BODY),
                                  VEC_SIG, VEC_TS, -1),
                     CW_WH_ERR_TIMESTAMP);
    /* timestamps that are not a plain number of seconds */
    const char *bad_ts[] = {"",
                            "16142653x0",
                            "-1614265330",
                            " 1614265330",
                            "1614265330.0",
                            "+1614265330",
                            "1234567890123456789"};
    for (size_t i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++)
        ck_assert_msg(verify(VEC_SECRET, VEC_ID, bad_ts[i], VEC_BODY, VEC_SIG, VEC_TS) ==
                          CW_WH_ERR_TIMESTAMP,
                      "timestamp \"%s\"", bad_ts[i]);
    /* another secret */
    ck_assert_int_eq(verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSv", VEC_ID, VEC_TS_TEXT, VEC_BODY,
                            VEC_SIG, VEC_TS),
                     CW_WH_ERR_NO_MATCH);
    ck_assert_int_eq(
        verify("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", VEC_ID, VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS),
        CW_WH_ERR_NO_MATCH); /* unprefixed: its raw bytes, another key */
    /* several signatures (key rotation), the right one among them, as in the reference tests */
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY,
                            OTHER_SIG " v2,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= " VEC_SIG
                                      " " OTHER_SIG,
                            VEC_TS),
                     CW_WH_OK);
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, "  " VEC_SIG "  ", VEC_TS),
                     CW_WH_OK);
    ck_assert_int_eq(
        verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, OTHER_SIG " " OTHER_SIG, VEC_TS),
        CW_WH_ERR_NO_MATCH);
    /* the right value under another version is not a v1 signature */
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY,
                            "v2,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=", VEC_TS),
                     CW_WH_ERR_NO_MATCH);
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY,
                            "v1a,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= " VEC_SIG, VEC_TS),
                     CW_WH_OK);
    /* a cut signature (as the reference tests have) and one with a byte more */
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, "v1,g0hM9SsE", VEC_TS),
                     CW_WH_ERR_NO_MATCH);
    ck_assert_int_eq(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, VEC_SIG "A", VEC_TS),
                     CW_WH_ERR_NO_MATCH);
    /* malformed: nothing that parses as <version>,<signature>, missing parts */
    const char *bad_hdr[] = {"", "   ", "v1,", ",abc",
                             "g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="};
    for (size_t i = 0; i < sizeof bad_hdr / sizeof bad_hdr[0]; i++)
        ck_assert_msg(verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, bad_hdr[i], VEC_TS) ==
                          CW_WH_ERR_MALFORMED,
                      "header \"%s\"", bad_hdr[i]);
    ck_assert_int_eq(cw_wh_verify(VEC_SECRET, VEC_ID, VEC_TS_TEXT, VEC_BODY, strlen(VEC_BODY), NULL,
                                  VEC_TS, TOL),
                     CW_WH_ERR_MALFORMED);
    ck_assert_int_eq(verify(VEC_SECRET, "", VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS),
                     CW_WH_ERR_MALFORMED);
    ck_assert_int_eq(verify(VEC_SECRET, "msg.1", VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS),
                     CW_WH_ERR_MALFORMED);
    /* our secret unusable */
    ck_assert_int_eq(verify("whsec_!!!!", VEC_ID, VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS),
                     CW_WH_ERR_KEY);
    ck_assert_int_eq(verify("", VEC_ID, VEC_TS_TEXT, VEC_BODY, VEC_SIG, VEC_TS), CW_WH_ERR_KEY);
}
END_TEST

START_TEST(test_raw_secret)
{
    /* a chain file's plain secret (deploy/chain.example.yaml's demo value) */
    const char *raw = "demo-webhook-secret-T-SH01-0312", *body = "{\"a\":1}";
    char sig[CW_WH_SIG_SIZE], sig2[CW_WH_SIG_SIZE], hdr[200];
    ck_assert_int_eq(cw_wh_sign(raw, "msg_x", 1700000000LL, body, strlen(body), sig, sizeof sig),
                     0);
    /* computed for this test with
     * printf '%s' 'msg_x.1700000000.{"a":1}' | openssl dgst -sha256 -hmac "$raw" -binary | base64
     */
    ck_assert_str_eq(sig, "v1,T5FtmKINaaEAy+wc4LE3m7pX1SKbbR2khKrnnDthSR0=");
    ck_assert_int_eq(
        cw_wh_verify(raw, "msg_x", "1700000000", body, strlen(body), sig, 1700000010LL, TOL),
        CW_WH_OK);
    /* the same key as whsec_ + base64 (31 bytes: one '=' of padding, which is no key byte) */
    ck_assert_int_eq(cw_wh_sign("whsec_ZGVtby13ZWJob29rLXNlY3JldC1ULVNIMDEtMDMxMg==", "msg_x",
                                1700000000LL, body, strlen(body), sig2, sizeof sig2),
                     0);
    ck_assert_str_eq(sig, sig2);
    /* both keys in the header, as while rotating from one to the other */
    snprintf(hdr, sizeof hdr, "%s %s", OTHER_SIG, sig);
    ck_assert_int_eq(
        cw_wh_verify(raw, "msg_x", "1700000000", body, strlen(body), hdr, 1700000000LL, TOL),
        CW_WH_OK);
    /* an empty body is signed too */
    ck_assert_int_eq(cw_wh_sign(raw, "msg_x", 1700000000LL, NULL, 0, sig, sizeof sig), 0);
    ck_assert_int_eq(cw_wh_verify(raw, "msg_x", "1700000000", NULL, 0, sig, 1700000000LL, TOL),
                     CW_WH_OK);
    ck_assert_int_eq(
        cw_wh_verify(raw, "msg_x", "1700000000", body, strlen(body), sig, 1700000000LL, TOL),
        CW_WH_ERR_NO_MATCH);
}
END_TEST

START_TEST(test_sign_refuses)
{
    char sig[CW_WH_SIG_SIZE];
    const char *b = VEC_BODY;
    size_t n = strlen(b);
    const char *bad_secrets[] = {"",
                                 "whsec_",
                                 "whsec_====",
                                 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaS", /* length 31 */
                                 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa w",
                                 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa=w",
                                 "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLa-_"};
    for (size_t i = 0; i < sizeof bad_secrets / sizeof bad_secrets[0]; i++)
        ck_assert_msg(cw_wh_sign(bad_secrets[i], VEC_ID, VEC_TS, b, n, sig, sizeof sig) == -1,
                      "secret \"%s\"", bad_secrets[i]);
    ck_assert_int_eq(cw_wh_sign(VEC_SECRET, "", VEC_TS, b, n, sig, sizeof sig), -1);
    ck_assert_int_eq(cw_wh_sign(VEC_SECRET, NULL, VEC_TS, b, n, sig, sizeof sig), -1);
    ck_assert_int_eq(cw_wh_sign(VEC_SECRET, "msg.1", VEC_TS, b, n, sig, sizeof sig), -1);
    ck_assert_int_eq(cw_wh_sign(VEC_SECRET, VEC_ID, -1, b, n, sig, sizeof sig), -1);
    ck_assert_int_eq(cw_wh_sign(VEC_SECRET, VEC_ID, VEC_TS, NULL, 3, sig, sizeof sig), -1);
    ck_assert_int_eq(cw_wh_sign(VEC_SECRET, VEC_ID, VEC_TS, b, n, NULL, 0), -1);
}
END_TEST

START_TEST(test_msg_id)
{
    char a[CW_WH_MSG_ID_SIZE], b[CW_WH_MSG_ID_SIZE];
    const char *task = "01JDCASEAAAAAAAAAAAAAAAAAA:receipt";
    ck_assert_int_eq(cw_wh_msg_id(task, a, sizeof a), 0);
    /* printf '%s' "$task" | sha256sum | cut -c1-32 */
    ck_assert_str_eq(a, "msg_16faeda31598a9a829f4fe0f3dfab781");
    ck_assert_int_eq(cw_wh_msg_id(task, b, sizeof b), 0); /* a retry: the same id */
    ck_assert_str_eq(a, b);
    ck_assert_int_eq(cw_wh_msg_id("01JDCASEAAAAAAAAAAAAAAAAAA.handoff.1.w80:x:y", b, sizeof b), 0);
    ck_assert_str_ne(a, b);
    ck_assert_ptr_null(strchr(b, '.')); /* fit for signing whatever the task id had */
    ck_assert_int_eq(cw_wh_msg_id("", b, sizeof b), -1);
    ck_assert_int_eq(cw_wh_msg_id(NULL, b, sizeof b), -1);
    ck_assert_int_eq(cw_wh_msg_id(task, b, CW_WH_MSG_ID_SIZE - 1), -1);
}
END_TEST

static const struct {
    const char *ip;
    enum cw_addr_kind kind;
} addrs[] = {
    /* IPv4 */
    {"8.8.8.8", CW_ADDR_PUBLIC},
    {"1.1.1.1", CW_ADDR_PUBLIC},
    {"100.63.255.255", CW_ADDR_PUBLIC},
    {"100.128.0.0", CW_ADDR_PUBLIC},
    {"172.15.255.255", CW_ADDR_PUBLIC},
    {"172.32.0.0", CW_ADDR_PUBLIC},
    {"198.17.255.255", CW_ADDR_PUBLIC},
    {"198.20.0.0", CW_ADDR_PUBLIC},
    {"223.255.255.255", CW_ADDR_PUBLIC},
    {"127.0.0.1", CW_ADDR_LOOPBACK},
    {"127.255.255.254", CW_ADDR_LOOPBACK},
    {"10.0.0.1", CW_ADDR_PRIVATE},
    {"10.255.255.255", CW_ADDR_PRIVATE},
    {"172.16.0.1", CW_ADDR_PRIVATE},
    {"172.31.255.255", CW_ADDR_PRIVATE},
    {"192.168.1.1", CW_ADDR_PRIVATE},
    {"169.254.0.1", CW_ADDR_LINK_LOCAL},
    {"169.254.169.253", CW_ADDR_LINK_LOCAL},
    {"169.254.169.254", CW_ADDR_METADATA},
    {"169.254.170.2", CW_ADDR_METADATA},
    {"100.100.100.200", CW_ADDR_METADATA},
    {"100.64.0.1", CW_ADDR_CGNAT},
    {"100.127.255.255", CW_ADDR_CGNAT},
    {"0.0.0.0", CW_ADDR_UNSPECIFIED},
    {"0.1.2.3", CW_ADDR_UNSPECIFIED},
    {"224.0.0.1", CW_ADDR_MULTICAST},
    {"239.255.255.250", CW_ADDR_MULTICAST},
    {"255.255.255.255", CW_ADDR_BROADCAST},
    {"240.0.0.1", CW_ADDR_RESERVED},
    {"255.255.255.254", CW_ADDR_RESERVED},
    {"198.18.0.1", CW_ADDR_RESERVED},
    {"198.19.255.255", CW_ADDR_RESERVED},
    {"192.0.0.8", CW_ADDR_RESERVED},
    {"192.88.99.1", CW_ADDR_RESERVED},
    {"192.0.2.1", CW_ADDR_DOCUMENTATION},
    {"198.51.100.7", CW_ADDR_DOCUMENTATION},
    {"203.0.113.9", CW_ADDR_DOCUMENTATION},
    /* IPv6 */
    {"2606:4700::1111", CW_ADDR_PUBLIC},
    {"2001:4860:4860::8888", CW_ADDR_PUBLIC},
    {"::1", CW_ADDR_LOOPBACK},
    {"::", CW_ADDR_UNSPECIFIED},
    {"fc00::1", CW_ADDR_PRIVATE},
    {"fdff:ffff::1", CW_ADDR_PRIVATE},
    {"fec0::1", CW_ADDR_PRIVATE},
    {"64:ff9b:1::a00:1", CW_ADDR_PRIVATE},
    {"fe80::1", CW_ADDR_LINK_LOCAL},
    {"febf:ffff::1", CW_ADDR_LINK_LOCAL},
    {"fd00:ec2::254", CW_ADDR_METADATA},
    {"fd00:ec2::255", CW_ADDR_PRIVATE},
    {"ff02::1", CW_ADDR_MULTICAST},
    {"ff05::1:3", CW_ADDR_MULTICAST},
    {"2001:db8::1", CW_ADDR_DOCUMENTATION},
    {"3fff::1", CW_ADDR_DOCUMENTATION},
    {"2001:2::1", CW_ADDR_RESERVED},
    {"2001::1", CW_ADDR_RESERVED}, /* Teredo */
    {"100::1", CW_ADDR_RESERVED},
    {"4000::1", CW_ADDR_RESERVED},
    /* IPv4-mapped */
    {"::ffff:127.0.0.1", CW_ADDR_LOOPBACK},
    {"::ffff:7f00:1", CW_ADDR_LOOPBACK},
    {"::ffff:10.1.2.3", CW_ADDR_PRIVATE},
    {"::ffff:169.254.169.254", CW_ADDR_METADATA},
    {"::ffff:169.254.1.1", CW_ADDR_LINK_LOCAL},
    {"::ffff:100.64.1.1", CW_ADDR_CGNAT},
    {"::ffff:0.0.0.0", CW_ADDR_UNSPECIFIED},
    {"::ffff:224.0.0.1", CW_ADDR_MULTICAST},
    {"::ffff:255.255.255.255", CW_ADDR_BROADCAST},
    {"::ffff:192.0.2.1", CW_ADDR_DOCUMENTATION},
    {"::ffff:8.8.8.8", CW_ADDR_PUBLIC},
    /* IPv4-translated (SIIT) */
    {"::ffff:0:127.0.0.1", CW_ADDR_LOOPBACK},
    {"::ffff:0:8.8.8.8", CW_ADDR_PUBLIC},
    /* IPv4-compatible */
    {"::127.0.0.1", CW_ADDR_LOOPBACK},
    {"::192.168.0.1", CW_ADDR_PRIVATE},
    {"::169.254.169.254", CW_ADDR_METADATA},
    {"::8.8.8.8", CW_ADDR_PUBLIC},
    /* NAT64 */
    {"64:ff9b::127.0.0.1", CW_ADDR_LOOPBACK},
    {"64:ff9b::a9fe:a9fe", CW_ADDR_METADATA},
    {"64:ff9b::172.16.0.1", CW_ADDR_PRIVATE},
    {"64:ff9b::100.100.100.200", CW_ADDR_METADATA},
    {"64:ff9b::8.8.8.8", CW_ADDR_PUBLIC},
    /* 6to4: the IPv4 address in bits 16 to 48 */
    {"2002:7f00:1::", CW_ADDR_LOOPBACK},
    {"2002:a00:1::1", CW_ADDR_PRIVATE},
    {"2002:a9fe:a9fe::", CW_ADDR_METADATA},
    {"2002:c0a8:101:1::1", CW_ADDR_PRIVATE},
    {"2002:e000:1::", CW_ADDR_MULTICAST},
    {"2002:808:808::1", CW_ADDR_PUBLIC},
};

START_TEST(test_classify_table)
{
    for (size_t i = 0; i < sizeof addrs / sizeof addrs[0]; i++) {
        enum cw_addr_kind k = CW_ADDR_UNKNOWN;
        ck_assert_msg(cw_addr_classify_text(addrs[i].ip, &k) == 0, "%s", addrs[i].ip);
        ck_assert_msg(k == addrs[i].kind, "%s: %s, expected %s", addrs[i].ip, cw_addr_kind_name(k),
                      cw_addr_kind_name(addrs[i].kind));
    }
    /* not addresses: names, the integer and short forms inet_pton refuses, brackets, zones */
    const char *not_ip[] = {"",      "localhost",  "2130706433", "0x7f.1", "127.1",
                            "[::1]", "fe80::1%lo", "1.2.3.4.5",  "::g",    " 8.8.8.8"};
    for (size_t i = 0; i < sizeof not_ip / sizeof not_ip[0]; i++) {
        enum cw_addr_kind k;
        ck_assert_msg(cw_addr_classify_text(not_ip[i], &k) == -1, "\"%s\"", not_ip[i]);
    }
}
END_TEST

START_TEST(test_classify_sockaddr)
{
    struct sockaddr_in in = {.sin_family = AF_INET};
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    ck_assert_int_eq(inet_pton(AF_INET, "169.254.169.254", &in.sin_addr), 1);
    ck_assert_int_eq(cw_addr_classify((struct sockaddr *)&in), CW_ADDR_METADATA);
    ck_assert_int_eq(inet_pton(AF_INET, "93.184.215.14", &in.sin_addr), 1);
    ck_assert_int_eq(cw_addr_classify((struct sockaddr *)&in), CW_ADDR_PUBLIC);
    ck_assert_int_eq(inet_pton(AF_INET6, "::ffff:192.168.0.10", &in6.sin6_addr), 1);
    ck_assert_int_eq(cw_addr_classify((struct sockaddr *)&in6), CW_ADDR_PRIVATE);
    ck_assert_int_eq(inet_pton(AF_INET6, "fe80::1", &in6.sin6_addr), 1);
    in6.sin6_scope_id = 2;
    ck_assert_int_eq(cw_addr_classify((struct sockaddr *)&in6), CW_ADDR_LINK_LOCAL);
    ck_assert_int_eq(cw_addr_classify((struct sockaddr *)&un), CW_ADDR_UNKNOWN);
    ck_assert_int_eq(cw_addr_classify(NULL), CW_ADDR_UNKNOWN);
}
END_TEST

/* Why the guard looks at resolved addresses: the resolver turns integer, octal and hex hosts
 * into addresses that no string check on the URL would recognise. */
START_TEST(test_numeric_hosts_resolve)
{
    const char *hosts[] = {"2130706433", "0x7f.1", "0177.0.0.1", "127.1", "0x7f000001"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_flags = AI_NUMERICHOST}, *res = NULL;
        int rc = getaddrinfo(hosts[i], NULL, &hints, &res);
        if (rc != 0) {
            /* A resolver that refuses the inet_aton forms can't be fooled by them either:
             * nothing to check. (glibc accepts them.) */
            fprintf(stderr, "getaddrinfo(\"%s\", AI_NUMERICHOST): %s: skipped\n", hosts[i],
                    gai_strerror(rc));
            continue;
        }
        for (struct addrinfo *ai = res; ai; ai = ai->ai_next)
            ck_assert_msg(cw_addr_classify(ai->ai_addr) == CW_ADDR_LOOPBACK, "%s: %s", hosts[i],
                          cw_addr_kind_name(cw_addr_classify(ai->ai_addr)));
        freeaddrinfo(res);
    }
    /* and an IPv6 literal carrying loopback */
    struct addrinfo hints = {.ai_family = AF_INET6, .ai_flags = AI_NUMERICHOST}, *res = NULL;
    ck_assert_int_eq(getaddrinfo("::ffff:127.0.0.1", NULL, &hints, &res), 0);
    ck_assert_int_eq(cw_addr_classify(res->ai_addr), CW_ADDR_LOOPBACK);
    freeaddrinfo(res);
}
END_TEST

START_TEST(test_allowed)
{
    for (int k = 0; k < CW_ADDR_KIND_COUNT; k++) {
        /* nothing allowed: public only */
        ck_assert_int_eq(cw_addr_allowed((enum cw_addr_kind)k, 0), k == CW_ADDR_PUBLIC);
        /* every bit: all but UNKNOWN */
        ck_assert_int_eq(cw_addr_allowed((enum cw_addr_kind)k, ~0u), k != CW_ADDR_UNKNOWN);
    }
    unsigned tests = CW_ADDR_BIT(CW_ADDR_LOOPBACK);
    ck_assert_int_eq(cw_addr_allowed(CW_ADDR_LOOPBACK, tests), 1);
    ck_assert_int_eq(cw_addr_allowed(CW_ADDR_PUBLIC, tests), 1);
    ck_assert_int_eq(cw_addr_allowed(CW_ADDR_PRIVATE, tests), 0);
    ck_assert_int_eq(cw_addr_allowed(CW_ADDR_UNSPECIFIED, tests), 0);
    /* link-local allowed: the metadata service still is not */
    unsigned ll = CW_ADDR_BIT(CW_ADDR_LINK_LOCAL);
    enum cw_addr_kind k;
    ck_assert_int_eq(cw_addr_classify_text("169.254.169.254", &k), 0);
    ck_assert_int_eq(cw_addr_allowed(k, ll), 0);
    ck_assert_int_eq(cw_addr_classify_text("169.254.10.10", &k), 0);
    ck_assert_int_eq(cw_addr_allowed(k, ll), 1);
    ck_assert_int_eq(cw_addr_allowed(CW_ADDR_METADATA, ll | CW_ADDR_BIT(CW_ADDR_METADATA)), 1);
    ck_assert_int_eq(cw_addr_allowed(CW_ADDR_KIND_COUNT, ~0u), 0);
}
END_TEST

START_TEST(test_kind_names)
{
    static const char *names[] = {"public",    "loopback", "private",       "link-local",
                                  "metadata",  "cgnat",    "unspecified",   "multicast",
                                  "broadcast", "reserved", "documentation", "unknown"};
    ck_assert_uint_eq(sizeof names / sizeof names[0], CW_ADDR_KIND_COUNT);
    for (int k = 0; k < CW_ADDR_KIND_COUNT; k++)
        ck_assert_str_eq(cw_addr_kind_name((enum cw_addr_kind)k), names[k]);
    ck_assert_str_eq(cw_addr_kind_name(CW_ADDR_KIND_COUNT), "unknown");
}
END_TEST

START_TEST(test_url_check)
{
    const char *good[] = {"https://hooks.example.com/casewire", "http://hooks.example.com",
                          "HTTPS://hooks.example.com/x?y=1#z", "Http://hooks.example.com:8080/",
                          "https://hooks.example.com:65535", "https://my_host.example.com/",
                          "http://[2606:4700::1111]:443/in", "http://[::1]/",
                          /* passes the shape check; the connect-time check refuses it */
                          "http://2130706433/", "https://example.com/path@with-at"};
    char why[100];
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        why[0] = '\0';
        ck_assert_msg(cw_wh_url_check(good[i], why, sizeof why) == 0, "%s: %s", good[i], why);
    }
    static const struct {
        const char *url, *why;
    } bad[] = {
        {"ftp://hooks.example.com/", "scheme must be http or https"},
        {"file:///etc/passwd", "scheme must be http or https"},
        {"gopher://127.0.0.1:6379/_", "scheme must be http or https"},
        {"httpx://hooks.example.com/", "scheme must be http or https"},
        {"hooks.example.com/in", "scheme must be http or https"},
        {"://hooks.example.com/", "scheme must be http or https"},
        {"https:hooks.example.com", "no host (no // after the scheme)"},
        {"https://user:pass@hooks.example.com/", "user info (user:password@) is not allowed"},
        {"https://hooks.example.com@169.254.169.254/", "user info (user:password@) is not allowed"},
        {"https://@hooks.example.com/", "user info (user:password@) is not allowed"},
        {"https://", "no host"},
        {"https:///path", "no host"},
        {"https://:443/", "no host"},
        {"https://?q", "no host"},
        {"https://hooks.example.com:0/", "port must be 1 to 65535"},
        {"https://hooks.example.com:65536/", "port must be 1 to 65535"},
        {"https://hooks.example.com:/", "port must be 1 to 65535"},
        {"https://hooks.example.com:443x/", "port must be 1 to 65535"},
        {"https://hooks.example.com:000443/", "port must be 1 to 65535"},
        {"https://[::1/", "bad IPv6 literal"},
        {"https://[]/", "bad IPv6 literal"},
        {"https://[fe80::1%25eth0]/", "bad IPv6 literal"},
        {"https://[::1]x/", "junk after the IPv6 literal"},
        {"https://hooks.exa%6dple.com/", "host has a character host names do not have"},
        {"https://hooks example.com/", "space, control character or backslash in the URL"},
        {"https://hooks.example.com\\@127.0.0.1/",
         "space, control character or backslash in the URL"},
        {"https://hooks.example.com/\r\nX: y", "space, control character or backslash in the URL"},
        {"", "no URL"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        why[0] = '\0';
        ck_assert_msg(cw_wh_url_check(bad[i].url, why, sizeof why) == -1, "%s", bad[i].url);
        ck_assert_msg(strcmp(why, bad[i].why) == 0, "%s: \"%s\"", bad[i].url, why);
    }
    ck_assert_int_eq(cw_wh_url_check("ftp://x/", NULL, 0), -1);
    ck_assert_int_eq(cw_wh_url_check(NULL, why, sizeof why), -1);
    /* a short reason buffer is cut, not overrun */
    char tiny[6];
    ck_assert_int_eq(cw_wh_url_check("ftp://x/", tiny, sizeof tiny), -1);
    ck_assert_str_eq(tiny, "schem");
}
END_TEST

CW_TEST_MAIN("webhook", test_spec_vector, test_verify, test_raw_secret, test_sign_refuses,
             test_msg_id, test_classify_table, test_classify_sockaddr, test_numeric_hosts_resolve,
             test_allowed, test_kind_names, test_url_check)
