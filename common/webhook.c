#include "webhook.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#define WH_PREFIX "whsec_"
#define WH_MAC_LEN 32
#define WH_B64_LEN 44 /* base64 of 32 bytes, with its one '=' */
/* 18 digits stay below LLONG_MAX: no overflow while parsing, and year 33 million is enough. */
#define WH_TS_DIGITS_MAX 18

/* ---- signing ---- */

static int b64_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

/* The HMAC key of a secret: whsec_ secrets decoded into buf, others as they are. EVP_DecodeBlock
 * skips whitespace and counts '=' padding as zero bytes, so the text is checked strictly here
 * and the padding taken off the length. */
static int wh_key(const char *secret, unsigned char buf[CW_WH_KEY_MAX + 3],
                  const unsigned char **key, size_t *keylen)
{
    if (!secret || !*secret) return -1;
    if (strncmp(secret, WH_PREFIX, sizeof WH_PREFIX - 1) != 0) {
        *key = (const unsigned char *)secret;
        *keylen = strlen(secret);
        return 0;
    }
    const char *b64 = secret + sizeof WH_PREFIX - 1;
    size_t n = strlen(b64), pad = 0;
    if (n == 0 || n % 4 != 0 || n / 4 * 3 > CW_WH_KEY_MAX + 2) return -1;
    if (b64[n - 1] == '=') pad = b64[n - 2] == '=' ? 2 : 1;
    for (size_t i = 0; i < n - pad; i++)
        if (!b64_char((unsigned char)b64[i])) return -1;
    int got = EVP_DecodeBlock(buf, (const unsigned char *)b64, (int)n);
    if (got < 0 || (size_t)got != n / 4 * 3 || (size_t)got - pad == 0 ||
        (size_t)got - pad > CW_WH_KEY_MAX)
        return -1;
    *key = buf;
    *keylen = (size_t)got - pad;
    return 0;
}

static int mac_update(EVP_MAC_CTX *c, const void *p, size_t n)
{
    return n == 0 || EVP_MAC_update(c, p, n);
}

/* HMAC-SHA256 over "<id>.<ts>.<body>", fed in pieces so the body is never copied. */
static int wh_hmac(const unsigned char *key, size_t keylen, const char *id, const char *ts,
                   const void *body, size_t len, unsigned char mac[WH_MAC_LEN])
{
    char digest[] = "SHA256";
    OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                           OSSL_PARAM_construct_end()};
    EVP_MAC *m = EVP_MAC_fetch(NULL, "HMAC", NULL);
    EVP_MAC_CTX *c = m ? EVP_MAC_CTX_new(m) : NULL;
    size_t n = 0;
    int ok = c && EVP_MAC_init(c, key, keylen, params) && mac_update(c, id, strlen(id)) &&
             mac_update(c, ".", 1) && mac_update(c, ts, strlen(ts)) && mac_update(c, ".", 1) &&
             mac_update(c, body, len) && EVP_MAC_final(c, mac, &n, WH_MAC_LEN) && n == WH_MAC_LEN;
    EVP_MAC_CTX_free(c);
    EVP_MAC_free(m);
    return ok ? 0 : -1;
}

static int id_ok(const char *msg_id) { return msg_id && *msg_id && !strchr(msg_id, '.'); }

/* b64 receives WH_B64_LEN characters and a NUL. */
static int wh_sign_b64(const char *secret, const char *msg_id, const char *ts, const void *body,
                       size_t len, char b64[WH_B64_LEN + 1])
{
    unsigned char buf[CW_WH_KEY_MAX + 3], mac[WH_MAC_LEN];
    const unsigned char *key;
    size_t keylen;
    int rc = -1;
    if (wh_key(secret, buf, &key, &keylen) == 0 &&
        wh_hmac(key, keylen, msg_id, ts, body, len, mac) == 0 &&
        EVP_EncodeBlock((unsigned char *)b64, mac, WH_MAC_LEN) == WH_B64_LEN)
        rc = 0;
    OPENSSL_cleanse(buf, sizeof buf);
    OPENSSL_cleanse(mac, sizeof mac);
    return rc;
}

int cw_wh_sign(const char *secret, const char *msg_id, long long timestamp_s, const void *body,
               size_t len, char *out, size_t outlen)
{
    char ts[24], b64[WH_B64_LEN + 1];
    if (!out || outlen < CW_WH_SIG_SIZE || !id_ok(msg_id) || timestamp_s < 0 || (!body && len))
        return -1;
    snprintf(ts, sizeof ts, "%lld", timestamp_s);
    if (wh_sign_b64(secret, msg_id, ts, body, len, b64) != 0) return -1;
    snprintf(out, outlen, "v1,%s", b64);
    return 0;
}

static int parse_ts(const char *s, long long *out)
{
    long long v = 0;
    size_t n = 0;
    for (; s[n]; n++) {
        if (s[n] < '0' || s[n] > '9' || n == WH_TS_DIGITS_MAX) return -1;
        v = v * 10 + (s[n] - '0');
    }
    if (n == 0) return -1;
    *out = v;
    return 0;
}

int cw_wh_verify(const char *secret, const char *msg_id, const char *timestamp, const void *body,
                 size_t len, const char *signature_header, long long now_s, long long tolerance_s)
{
    if (!id_ok(msg_id) || !timestamp || !signature_header || !*signature_header || (!body && len))
        return CW_WH_ERR_MALFORMED;
    long long ts;
    if (parse_ts(timestamp, &ts) != 0 || tolerance_s < 0) return CW_WH_ERR_TIMESTAMP;
    /* Unsigned differences: exact for any now_s, where a signed one could overflow. */
    unsigned long long skew = ts >= now_s ? (unsigned long long)ts - (unsigned long long)now_s
                                          : (unsigned long long)now_s - (unsigned long long)ts;
    if (skew > (unsigned long long)tolerance_s) return CW_WH_ERR_TIMESTAMP;

    char want[WH_B64_LEN + 1];
    if (wh_sign_b64(secret, msg_id, timestamp, body, len, want) != 0) return CW_WH_ERR_KEY;

    int match = 0, known = 0;
    for (const char *p = signature_header; *p;) {
        size_t n = strcspn(p, " \t");
        if (n == 0) {
            p++;
            continue;
        }
        const char *comma = memchr(p, ',', n);
        if (comma && comma > p && comma < p + n - 1) {
            known = 1;
            size_t vlen = (size_t)(comma - p), slen = n - vlen - 1;
            /* Only the length can differ in time, and it is no secret. */
            if (vlen == 2 && memcmp(p, "v1", 2) == 0 && slen == WH_B64_LEN &&
                CRYPTO_memcmp(comma + 1, want, WH_B64_LEN) == 0)
                match = 1;
        }
        p += n;
    }
    OPENSSL_cleanse(want, sizeof want);
    if (match) return CW_WH_OK;
    return known ? CW_WH_ERR_NO_MATCH : CW_WH_ERR_MALFORMED;
}

int cw_wh_msg_id(const char *task_id, char *out, size_t outlen)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!task_id || !*task_id || !out || outlen < CW_WH_MSG_ID_SIZE) return -1;
    if (!EVP_Digest(task_id, strlen(task_id), md, &mdlen, EVP_sha256(), NULL) || mdlen < 16)
        return -1;
    memcpy(out, "msg_", 4);
    for (int i = 0; i < 16; i++) {
        out[4 + 2 * i] = hex[md[i] >> 4];
        out[5 + 2 * i] = hex[md[i] & 15];
    }
    out[CW_WH_MSG_ID_SIZE - 1] = '\0';
    return 0;
}

/* ---- the URL's shape ---- */

static int fail(char *why, size_t whylen, const char *reason)
{
    if (why && whylen) snprintf(why, whylen, "%s", reason);
    return -1;
}

static int host_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_';
}

int cw_wh_url_check(const char *url, char *why, size_t whylen)
{
    if (!url || !*url) return fail(why, whylen, "no URL");
    /* A backslash is a '/' to WHATWG parsers and not to curl: URLs that parsers read
     * differently are how host checks get fooled, so refuse them outright. */
    for (const unsigned char *c = (const unsigned char *)url; *c; c++)
        if (*c <= ' ' || *c == 0x7f || *c == '\\')
            return fail(why, whylen, "space, control character or backslash in the URL");
    const char *colon = strchr(url, ':');
    size_t slen = colon ? (size_t)(colon - url) : 0;
    if (!((slen == 4 && strncasecmp(url, "http", 4) == 0) ||
          (slen == 5 && strncasecmp(url, "https", 5) == 0)))
        return fail(why, whylen, "scheme must be http or https");
    if (strncmp(colon, "://", 3) != 0) return fail(why, whylen, "no host (no // after the scheme)");

    const char *auth = colon + 3, *end = auth + strcspn(auth, "/?#"), *hend;
    if (memchr(auth, '@', (size_t)(end - auth)))
        return fail(why, whylen, "user info (user:password@) is not allowed");
    if (auth == end) return fail(why, whylen, "no host");
    if (*auth == '[') {
        const char *close = memchr(auth, ']', (size_t)(end - auth));
        char lit[INET6_ADDRSTRLEN];
        struct in6_addr a6;
        size_t n = close ? (size_t)(close - auth - 1) : 0;
        if (!close || n == 0 || n >= sizeof lit) return fail(why, whylen, "bad IPv6 literal");
        memcpy(lit, auth + 1, n);
        lit[n] = '\0';
        if (inet_pton(AF_INET6, lit, &a6) != 1) return fail(why, whylen, "bad IPv6 literal");
        hend = close + 1;
        if (hend < end && *hend != ':') return fail(why, whylen, "junk after the IPv6 literal");
    } else {
        hend = auth;
        while (hend < end && *hend != ':') {
            if (!host_char((unsigned char)*hend))
                return fail(why, whylen, "host has a character host names do not have");
            hend++;
        }
        if (hend == auth) return fail(why, whylen, "no host");
        if (hend - auth > 253) return fail(why, whylen, "host name longer than 253 characters");
    }
    if (hend < end) { /* at the ':' */
        const char *d = hend + 1;
        long port = 0;
        if (end - d < 1 || end - d > 5) return fail(why, whylen, "port must be 1 to 65535");
        for (; d < end; d++) {
            if (*d < '0' || *d > '9') return fail(why, whylen, "port must be 1 to 65535");
            port = port * 10 + (*d - '0');
        }
        if (port < 1 || port > 65535) return fail(why, whylen, "port must be 1 to 65535");
    }
    return 0;
}

/* ---- address kinds ---- */

static enum cw_addr_kind classify_v4(uint32_t a)
{
    static const struct {
        uint32_t net;
        unsigned bits;
        enum cw_addr_kind kind;
    } nets[] = {
        {0x00000000, 8, CW_ADDR_UNSPECIFIED},    /* 0/8 "this network" */
        {0x0a000000, 8, CW_ADDR_PRIVATE},        /* 10/8 */
        {0x64400000, 10, CW_ADDR_CGNAT},         /* 100.64/10 */
        {0x7f000000, 8, CW_ADDR_LOOPBACK},       /* 127/8 */
        {0xa9fe0000, 16, CW_ADDR_LINK_LOCAL},    /* 169.254/16 */
        {0xac100000, 12, CW_ADDR_PRIVATE},       /* 172.16/12 */
        {0xc0000000, 24, CW_ADDR_RESERVED},      /* 192.0.0/24 IETF protocol assignments */
        {0xc0000200, 24, CW_ADDR_DOCUMENTATION}, /* 192.0.2/24 TEST-NET-1 */
        {0xc0586300, 24, CW_ADDR_RESERVED},      /* 192.88.99/24 former 6to4 relay anycast */
        {0xc0a80000, 16, CW_ADDR_PRIVATE},       /* 192.168/16 */
        {0xc6120000, 15, CW_ADDR_RESERVED},      /* 198.18/15 benchmarking */
        {0xc6336400, 24, CW_ADDR_DOCUMENTATION}, /* 198.51.100/24 TEST-NET-2 */
        {0xcb007100, 24, CW_ADDR_DOCUMENTATION}, /* 203.0.113/24 TEST-NET-3 */
        {0xe0000000, 4, CW_ADDR_MULTICAST},      /* 224/4 */
        {0xf0000000, 4, CW_ADDR_RESERVED},       /* 240/4 */
    };
    /* Credentials live behind these; they sit inside link-local and CGNAT ranges, and saying
     * METADATA keeps them denied even where a deployment allows those ranges. */
    if (a == 0xa9fea9fe    /* 169.254.169.254: AWS, GCP, Azure, OCI... */
        || a == 0xa9feaa02 /* 169.254.170.2: AWS ECS task credentials */
        || a == 0x646464c8 /* 100.100.100.200: Alibaba Cloud */)
        return CW_ADDR_METADATA;
    if (a == 0xffffffff) return CW_ADDR_BROADCAST;
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        if ((a ^ nets[i].net) >> (32 - nets[i].bits) == 0) return nets[i].kind;
    return CW_ADDR_PUBLIC;
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static int v6_in(const unsigned char *a, const unsigned char *net, unsigned bits)
{
    unsigned whole = bits / 8, rest = bits % 8;
    if (memcmp(a, net, whole) != 0) return 0;
    return rest == 0 || ((a[whole] ^ net[whole]) >> (8 - rest)) == 0;
}

static enum cw_addr_kind classify_v6(const unsigned char *a)
{
    static const unsigned char zero[12] = {0};
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char translated[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0, 0};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b};
    static const unsigned char nat64_local[6] = {0, 0x64, 0xff, 0x9b, 0, 1};
    static const unsigned char aws_metadata[16] = {0xfd, 0, 0x0e, 0xc2, [14] = 0x02, 0x54};
    static const struct {
        unsigned char net[16];
        unsigned bits;
        enum cw_addr_kind kind;
    } nets[] = {
        {{0xfc}, 7, CW_ADDR_PRIVATE},                          /* unique local */
        {{0xfe, 0x80}, 10, CW_ADDR_LINK_LOCAL},                /* fe80::/10 */
        {{0xfe, 0xc0}, 10, CW_ADDR_PRIVATE},                   /* site-local, deprecated */
        {{0xff}, 8, CW_ADDR_MULTICAST},                        /* ff00::/8 */
        {{0x20, 0x01, 0x0d, 0xb8}, 32, CW_ADDR_DOCUMENTATION}, /* 2001:db8::/32 */
        {{0x3f, 0xff}, 20, CW_ADDR_DOCUMENTATION},             /* 3fff::/20 */
        {{0x20, 0x01}, 23, CW_ADDR_RESERVED}, /* IETF protocol assignments: Teredo, benchmarking */
    };
    /* Where the packets go is the embedded IPv4 address: judge that. */
    if (memcmp(a, mapped, 12) == 0 || memcmp(a, translated, 12) == 0 || memcmp(a, nat64, 12) == 0)
        return classify_v4(be32(a + 12));
    if (memcmp(a, zero, 12) == 0) {
        uint32_t last = be32(a + 12);
        if (last == 0) return CW_ADDR_UNSPECIFIED;
        if (last == 1) return CW_ADDR_LOOPBACK;
        return classify_v4(last); /* IPv4-compatible, deprecated but still parsed */
    }
    if (a[0] == 0x20 && a[1] == 0x02) return classify_v4(be32(a + 2)); /* 6to4 */
    /* Local-use NAT64 (RFC 8215): its embedding is the operator's choice, and it is ours. */
    if (memcmp(a, nat64_local, 6) == 0) return CW_ADDR_PRIVATE;
    if (memcmp(a, aws_metadata, 16) == 0) return CW_ADDR_METADATA;
    for (size_t i = 0; i < sizeof nets / sizeof nets[0]; i++)
        if (v6_in(a, nets[i].net, nets[i].bits)) return nets[i].kind;
    /* Only 2000::/3 is handed out as global unicast; the rest (100::/64 discard, 5f00::/16
     * SRv6, ...) is nowhere a webhook should go. */
    if ((a[0] & 0xe0) != 0x20) return CW_ADDR_RESERVED;
    return CW_ADDR_PUBLIC;
}

enum cw_addr_kind cw_addr_classify(const struct sockaddr *sa)
{
    if (!sa) return CW_ADDR_UNKNOWN;
    if (sa->sa_family == AF_INET) {
        struct sockaddr_in in;
        memcpy(&in, sa, sizeof in);
        return classify_v4(ntohl(in.sin_addr.s_addr));
    }
    if (sa->sa_family == AF_INET6) {
        struct sockaddr_in6 in6;
        memcpy(&in6, sa, sizeof in6);
        return classify_v6(in6.sin6_addr.s6_addr);
    }
    return CW_ADDR_UNKNOWN;
}

const char *cw_addr_kind_name(enum cw_addr_kind k)
{
    switch (k) {
    case CW_ADDR_PUBLIC: return "public";
    case CW_ADDR_LOOPBACK: return "loopback";
    case CW_ADDR_PRIVATE: return "private";
    case CW_ADDR_LINK_LOCAL: return "link-local";
    case CW_ADDR_METADATA: return "metadata";
    case CW_ADDR_CGNAT: return "cgnat";
    case CW_ADDR_UNSPECIFIED: return "unspecified";
    case CW_ADDR_MULTICAST: return "multicast";
    case CW_ADDR_BROADCAST: return "broadcast";
    case CW_ADDR_RESERVED: return "reserved";
    case CW_ADDR_DOCUMENTATION: return "documentation";
    case CW_ADDR_UNKNOWN:
    case CW_ADDR_KIND_COUNT: break;
    }
    return "unknown";
}

int cw_addr_allowed(enum cw_addr_kind k, unsigned allow_mask)
{
    if (k == CW_ADDR_PUBLIC) return 1;
    if ((unsigned)k >= CW_ADDR_UNKNOWN) return 0;
    return (allow_mask & CW_ADDR_BIT(k)) != 0;
}

int cw_addr_classify_text(const char *ip, enum cw_addr_kind *out)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (!ip || !out) return -1;
    if (inet_pton(AF_INET, ip, &a4) == 1) {
        *out = classify_v4(ntohl(a4.s_addr));
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &a6) == 1) {
        *out = classify_v6(a6.s6_addr);
        return 0;
    }
    return -1;
}
