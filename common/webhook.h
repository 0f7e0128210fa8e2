/*
 * Tenant webhooks: signing the Standard Webhooks way (standardwebhooks.com, the spec's
 * "Signature scheme" and "Webhook headers") and the guard that keeps a tenant's webhook URL
 * from reaching our own network (server-side request forgery).
 *
 * Signing: headers webhook-id, webhook-timestamp (Unix seconds) and webhook-signature, a
 * space-separated list of "v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>". The key
 * is the base64-decoded part after "whsec_" when the secret has that prefix, else the secret's
 * own bytes: our chain file holds plain-text secrets (16 to 256 characters, docs/chain.md), and
 * a tenant that imports a whsec_ secret from elsewhere keeps it. (The reference libraries
 * base64-decode an unprefixed secret too; ours are not base64, so they are used as they are.)
 *
 * The guard classifies addresses, not host names: a name (or a URL's host written as an
 * integer, "http://2130706433/", or in octal or hex, "http://0x7f.1/") only says where it goes
 * once resolved, and may resolve differently on the next lookup. The caller checks every
 * address libcurl is about to connect to (CURLOPT_OPENSOCKETFUNCTION) with cw_addr_classify
 * and cw_addr_allowed; cw_wh_url_check only vets the URL's shape before any request.
 *
 * Pure functions, no global state; safe from any thread.
 */
#ifndef CW_WEBHOOK_H
#define CW_WEBHOOK_H

#include <stddef.h>
#include <sys/socket.h>

/* "v1," + 44 base64 characters of a SHA-256 HMAC + NUL */
#define CW_WH_SIG_SIZE 48
/* "msg_" + 32 hex digits + NUL */
#define CW_WH_MSG_ID_SIZE 37
/* A whsec_ secret's decoded key, in bytes: the spec asks for 24 to 64; room to spare. */
#define CW_WH_KEY_MAX 256

/* cw_wh_verify's results */
enum cw_wh_verdict {
    CW_WH_OK = 0,
    CW_WH_ERR_TIMESTAMP = -1, /* not a decimal number of seconds, or outside the tolerance */
    CW_WH_ERR_NO_MATCH = -2,  /* no v1 signature in the header is the body's */
    CW_WH_ERR_MALFORMED = -3, /* missing or empty id or header, '.' in the id, no entry parses */
    CW_WH_ERR_KEY = -4,       /* our side: the secret is empty or bad base64, or HMAC failed */
};

/* Writes "v1,<base64>" (NUL-terminated, CW_WH_SIG_SIZE bytes are enough) for body signed with
 * secret under msg_id and timestamp_s. msg_id must be non-empty and have no '.' (the signed
 * content is '.'-delimited: a '.' would let a signature move between id and timestamp).
 * Returns 0, or -1: bad secret (empty, or whsec_ with bad base64), bad id, negative timestamp,
 * out too small, crypto failure. */
int cw_wh_sign(const char *secret, const char *msg_id, long long timestamp_s, const void *body,
               size_t len, char *out, size_t outlen);

/* Checks a received webhook: timestamp is the webhook-timestamp header's text (decimal digits
 * only), signature_header the webhook-signature header. The timestamp must be within
 * tolerance_s seconds of now_s either way (replays, and clocks set ahead); a negative tolerance
 * accepts nothing. Entries of another version than v1 (v1a, v2) are skipped; any v1 entry
 * matching is enough (key rotation sends several). The comparison is in constant time.
 * Returns an enum cw_wh_verdict: CW_WH_OK (0) or a negative code. */
int cw_wh_verify(const char *secret, const char *msg_id, const char *timestamp, const void *body,
                 size_t len, const char *signature_header, long long now_s, long long tolerance_s);

/* The webhook-id of a notification task: "msg_" + hex of the first 16 bytes of
 * SHA-256(task_id). Deterministic, so every retry of a delivery carries the same id (the
 * receiver's idempotency key, as the spec asks), whatever characters the task id has (ours
 * have ':' and '.', which the signed content must not see in an id). Returns 0, or -1 (empty
 * task id, out smaller than CW_WH_MSG_ID_SIZE, crypto failure). */
int cw_wh_msg_id(const char *task_id, char *out, size_t outlen);

/* Vets a tenant's webhook URL before any request: scheme http or https (any case) followed by
 * "//", a host (a name of letters, digits, '-', '_' and '.', or a bracketed IPv6 literal), no
 * userinfo ("user:pass@"), a port of 1 to 65535 if one is given, no spaces or control
 * characters anywhere. Says nothing about where the host leads (see the top of this file).
 * Returns 0, or -1 with the reason in why (if why is not NULL). */
int cw_wh_url_check(const char *url, char *why, size_t whylen);

/* What an address is, for the SSRF guard. Addresses embedding an IPv4 address (IPv4-mapped
 * ::ffff:a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d, IPv4-compatible ::a.b.c.d, NAT64
 * 64:ff9b::/96, 6to4 2002::/16) are what the embedded address is: that is where the packets
 * end up. */
enum cw_addr_kind {
    CW_ADDR_PUBLIC,        /* none of the below */
    CW_ADDR_LOOPBACK,      /* 127/8, ::1 */
    CW_ADDR_PRIVATE,       /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10, 64:ff9b:1::/48 */
    CW_ADDR_LINK_LOCAL,    /* 169.254/16, fe80::/10 */
    CW_ADDR_METADATA,      /* cloud instance metadata: 169.254.169.254, 169.254.170.2,
                              100.100.100.200, fd00:ec2::254 (link-local, CGNAT and ULA
                              addresses, but reported as METADATA) */
    CW_ADDR_CGNAT,         /* shared address space 100.64/10 */
    CW_ADDR_UNSPECIFIED,   /* 0/8 (0.0.0.0 reaches this host on Linux), :: */
    CW_ADDR_MULTICAST,     /* 224/4, ff00::/8 */
    CW_ADDR_BROADCAST,     /* 255.255.255.255 */
    CW_ADDR_RESERVED,      /* 240/4, 192.0.0/24, 192.88.99/24, benchmarking 198.18/15 and
                              2001:2::/48, the rest of 2001::/23, 100::/64, 5f00::/16, IPv6
                              outside 2000::/3 */
    CW_ADDR_DOCUMENTATION, /* 192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20 */
    CW_ADDR_UNKNOWN,       /* not an IPv4 or IPv6 socket address */
    CW_ADDR_KIND_COUNT
};

/* A kind's bit in cw_addr_allowed's mask */
#define CW_ADDR_BIT(kind) (1u << (unsigned)(kind))

enum cw_addr_kind cw_addr_classify(const struct sockaddr *sa);

/* "public", "loopback", "private", "link-local", "metadata", "cgnat", "unspecified",
 * "multicast", "broadcast", "reserved", "documentation", "unknown" */
const char *cw_addr_kind_name(enum cw_addr_kind k);

/* Whether a webhook may connect to an address of kind k: public always, UNKNOWN never, any
 * other kind only when its bit is in allow_mask (tests allow CW_ADDR_BIT(CW_ADDR_LOOPBACK)).
 * Allowing LINK_LOCAL does not allow METADATA: it takes its own bit. Returns 1 or 0. */
int cw_addr_allowed(enum cw_addr_kind k, unsigned allow_mask);

/* Classifies an address written as text, IPv4 dotted quad or IPv6 (inet_pton's forms: no
 * brackets, no zone, no "2130706433"). Returns 0, or -1 if ip is not an address. */
int cw_addr_classify_text(const char *ip, enum cw_addr_kind *out);

#endif
