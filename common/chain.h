/*
 * The chain: one retail group (集团) and everything casewire needs to know about it, read
 * once at start-up from one YAML file (docs/chain.md is the schema) and read-only afterwards.
 *
 * A chain has
 *   - roles: the jobs people hold (desk agent, floor supervisor, duty manager...). Every role
 *     used anywhere is declared once, with its Chinese and English name;
 *   - the group head office (集团总部): departments and staff that belong to no single site,
 *     such as the group head, a central 400 call centre, group supervision;
 *   - sites (门店 / 购物中心): a mall, supermarket or department store. Its id is the prefix of
 *     its case numbers (SH01-261124-0042). A site has its own time zone, weekly opening hours,
 *     working days, holidays and special days, an org chart (departments; staff with roles and
 *     weekly shifts) and an escalation ladder (逐级上报: roles from the first level up, no
 *     skipping) with a fallback role that is always on duty;
 *   - tenants (租户 / 商户): shops inside a site. They submit cases with their API keys and
 *     receive the cases about them by webhook. A tenant sees only its own cases;
 *   - chain-wide policy: routing (category -> department kinds), SLA policies (which clocks a
 *     case runs, first match by priority), classification rules (keywords -> category,
 *     urgency...) and SMS templates (per language, with per-site overrides).
 *
 * What a successful load guarantees (services rely on it and never re-check):
 *   1. ids are unique in their kind; staff ids across the whole chain; a secret hash (staff
 *      token or tenant API key) is unique across the whole chain;
 *   2. every reference resolves: site staff -> a department of their site, group staff -> a
 *      department of the group; roles -> declared roles; tenant, policy, rule and template
 *      sites -> sites; every site has a callback department (site's or group's);
 *   3. each site's ladder has at least one level, and every level is held by somebody at the
 *      site or in the group; the fallback role is held by staff of the site itself, whose
 *      shifts together cover the site's weekly opening hours (someone is always on duty);
 *   4. a route exists for category `other` (used for categories without their own), and at
 *      every site each route names at least one department kind the site (or the group) has;
 *   5. one SLA policy matches every case (a policy with an empty match), so every case gets
 *      clocks;
 *   6. every chain-wide SMS template has a text in the chain's default language.
 *
 * Times of day are minutes since local midnight in the site's time zone (0..1440); weekdays
 * and weekday bitmasks follow domain.h (sun = 0, bit 1u << tm_wday); dates are integers
 * yyyymmdd (20261001). Who is on duty at a given time and due-time arithmetic are not here.
 *
 * Memory: everything belongs to the cw_chain and lives until cw_chain_free(); pointers from
 * queries and inside the records stay valid until then. Lookups by id or hash are hash-table
 * lookups. Arrays keep file order, except policies and rules (evaluation order).
 * A loaded chain is never modified: any number of threads may query it at once.
 */
#ifndef CW_CHAIN_H
#define CW_CHAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "domain.h"

/* Limits (docs/chain.md lists them all). */
#define CW_CHAIN_MAX_SITES 5000
#define CW_CHAIN_MAX_STAFF 200000 /* in the whole chain */
#define CW_CHAIN_MAX_TENANTS 100000
#define CW_SHA256_HEX_LEN 64
#define CW_CHAIN_MAX_WARNINGS 5
#define CW_CHAIN_CLOCKS 7 /* clocks[] below is indexed by Casewire__V1__ClockKind (1..6) */
#define CW_CHAIN_MAX_LANGUAGES 4

typedef struct cw_chain cw_chain;

/* ---- problems found while loading ---- */

struct cw_chain_error {
    const char *file;
    int line;            /* 1-based; 0 when the problem is about the whole file */
    int column;          /* 1-based; 0 when unknown */
    const char *path;    /* field path, "sites[1].staff[0].shifts[2].from"; "" for the file */
    const char *message; /* "unknown time zone \"Asia/Shangai\"" */
};

/* Called once per problem, in the order found. The strings live only during the call. */
typedef void cw_chain_report_fn(const struct cw_chain_error *e, void *arg);

/* "deploy/chain.example.yaml:42: sites[1].timezone: unknown time zone \"Asia/Shangai\""
 * (parts that are empty or 0 are left out). Returns the length snprintf would write. */
int cw_chain_error_format(const struct cw_chain_error *e, char *buf, size_t len);

/* ---- the records (read-only) ---- */

struct cw_site;
struct cw_tenant;

struct cw_hours {
    uint16_t open, close; /* minutes since midnight; close may be 1440 (24:00) */
    bool closed;          /* closed all day: open and close are 0 */
    bool overnight;       /* close <= open: the day ends after midnight (22:00-02:00) */
};

struct cw_holiday {
    int date; /* yyyymmdd */
    const char *name;
};

struct cw_special_day {
    int date;              /* yyyymmdd */
    struct cw_hours hours; /* replaces the weekday's opening hours that day */
    const char *name;
};

struct cw_role {
    const char *id, *name, *name_en;
    /* The staff actions on a case it allows: bit (1u << Casewire__V1__CaseAction) each; 0 when
     * the file lists none, which allows every action. A person may do what any of their roles
     * allows (cw_staff_may). */
    uint32_t actions;
};

struct cw_department {
    const char *id, *name, *name_en;
    enum cw_dept_kind kind;     /* never CW_DEPT_TENANT */
    const struct cw_site *site; /* NULL: group head office */
    const char *phone;          /* NULL when not given */
};

struct cw_shift {
    unsigned days;     /* weekday bitmask: the days the shift starts on */
    uint16_t from, to; /* minutes since midnight; to may be 1440 */
    bool overnight;    /* to <= from: ends the next day */
};

struct cw_staff {
    const char *id, *name;
    const char *phone;          /* NULL when not given (personal data: never log it) */
    const struct cw_site *site; /* NULL: group head office */
    const struct cw_department *department;
    const struct cw_role *const *roles;
    size_t nroles;
    const struct cw_shift *shifts; /* none: not rostered, reachable by assignment only */
    size_t nshifts;
    const char *token_sha256; /* lower-case hex of the bearer token's SHA-256, or NULL */
    /* Group staff only: the sites they see (a regional manager's); none: every site. */
    const struct cw_site *const *sites;
    size_t nsites;
};

struct cw_ladder {
    const struct cw_role *const *levels; /* levels[0] is the first level (ladder_level 0) */
    size_t nlevels;
    const struct cw_role *fallback; /* whoever holds it on duty, when a level has nobody */
};

struct cw_site {
    const char *id; /* [A-Z0-9]{2,8}: prefix of case numbers */
    const char *name, *name_en;
    enum cw_site_kind kind;
    const char *timezone; /* a name under the zoneinfo directory: Asia/Shanghai */
    const char *phone, *address, *address_en; /* NULL when not given */
    struct cw_hours hours[7];                 /* weekly opening hours by weekday, sun = 0 */
    unsigned working_days;                    /* weekday bitmask for working-time clocks */
    const struct cw_holiday *holidays;        /* sorted by date: not working days */
    size_t nholidays;
    const struct cw_special_day *special_days; /* sorted by date */
    size_t nspecial_days;
    const struct cw_department *departments;
    size_t ndepartments;
    const struct cw_staff *staff;
    size_t nstaff;
    struct cw_ladder ladder;
    const struct cw_department *callback_department; /* follow-up calls (回访); never NULL */
    const struct cw_tenant *const *tenants;          /* the tenants of this site */
    size_t ntenants;
};

struct cw_group {
    const struct cw_department *departments;
    size_t ndepartments;
    const struct cw_staff *staff;
    size_t nstaff;
};

struct cw_api_key {
    const char *id;     /* names the key in logs, e.g. "k1" */
    const char *sha256; /* lower-case hex */
    const struct cw_tenant *tenant;
};

struct cw_tenant {
    const char *id, *name, *name_en, *brand;
    const struct cw_site *site;
    const char *floor, *unit;                 /* "3F", "3F-12"; NULL when not given */
    const char *contact_name, *contact_phone; /* NULL when not given (personal data) */
    const struct cw_api_key *api_keys;
    size_t napi_keys;
    const char *webhook_url;    /* http(s) URL, or NULL: no webhook */
    const char *webhook_secret; /* HMAC key for webhook signatures; set when webhook_url is */
};

/* Which departments answer for a category, in order of preference: `tenant` applies when the
 * case names a tenant of the site; any other kind when the site (or the group) has a
 * department of that kind. */
struct cw_route {
    int category; /* Casewire__V1__Category */
    const enum cw_dept_kind *kinds;
    size_t nkinds;
};

/* A condition on a case. Each mask has bit (1u << enum value) set for every accepted value,
 * 0 = any value. Every field given must match. */
struct cw_match {
    uint32_t types, categories, urgencies, validities, channels;
    const struct cw_site *const *sites; /* nsites == 0: any site */
    size_t nsites;
    int tenant; /* -1 any, 1 the case names a tenant, 0 it does not */
};

enum cw_time_basis {
    CW_TIME_UNSET = 0,     /* the clock does not run */
    CW_TIME_WALL,          /* wall-clock time: 30s, 10m, 1h, 2d */
    CW_TIME_WORKING_HOURS, /* counted only inside the site's opening hours: 8wh, 90wm */
    CW_TIME_WORKING_DAYS,  /* whole working days of the site's calendar: 1wd */
};

struct cw_duration {
    enum cw_time_basis basis;
    int64_t ms;    /* CW_TIME_WALL, CW_TIME_WORKING_HOURS */
    unsigned days; /* CW_TIME_WORKING_DAYS */
};

struct cw_policy {
    const char *id;
    int priority;
    struct cw_match match;
    struct cw_duration clocks[CW_CHAIN_CLOCKS]; /* by clock kind; basis UNSET: not run */
    uint8_t warnings[CW_CHAIN_MAX_WARNINGS];    /* percents of each clock, ascending */
    size_t nwarnings;
};

/* A classification rule. It matches when `when` matches and the case text contains one of
 * the patterns (case-insensitive for Latin letters: patterns are stored lower-cased) or
 * matches one of the regexes (POSIX extended; compile them with REG_EXTENDED | REG_ICASE |
 * REG_NOSUB). Rules run in evaluation order; for each field, the first matching rule that
 * sets it decides. */
struct cw_rule {
    const char *id;
    int priority;
    const char *const *patterns;
    size_t npatterns;
    const char *const *regex;
    size_t nregex;
    struct cw_match when; /* only channels, sites and tenant are used */
    struct {
        int type, category, urgency, validity; /* proto enum values; 0: not set */
        enum cw_dept_kind department_kind;     /* CW_DEPT_UNSPECIFIED: not set */
    } set;
};

/* How the notifier sends SMS (the chain's `sms:` section; docs/chain.md). Every field has a
 * default, so a chain without the section sends through the file provider. */
enum cw_sms_provider {
    CW_SMS_FILE = 0, /* appends each message to a file: the embedded default */
    CW_SMS_HTTP,     /* a generic HTTP/JSON provider */
    CW_SMS_ALIYUN,   /* Alibaba Cloud SMS (Dysmsapi SendSms, signed requests) */
};

struct cw_sms_template_code {
    const char *template_id; /* ours: case_received */
    const char *code;        /* the provider's: SMS_123456789 */
};

struct cw_sms_settings {
    enum cw_sms_provider provider;
    const char *file;                     /* file: path (default var/sms.log) */
    const char *url, *status_url, *token; /* http: send, status by our id, bearer (or NULL) */
    const char *aliyun_endpoint;          /* default https://dysmsapi.aliyuncs.com/ */
    const char *aliyun_region;            /* default cn-hangzhou */
    const char *aliyun_key_id, *aliyun_key_secret, *aliyun_sign_name;
    const struct cw_sms_template_code *aliyun_templates;
    size_t naliyun_templates;
    int64_t timeout_ms;     /* one provider request (default 5 s) */
    int max_attempts;       /* then dead-lettered (default 6) */
    int64_t backoff_min_ms; /* first retry after about this long, doubling (default 2 s) */
    int64_t backoff_max_ms; /* (default 10 min) */
    int max_chars;          /* longer messages are refused and reported (default 500) */
    int per_minute, per_hour, per_day; /* per phone number, 0: no limit (default 1, 5, 10) */
    uint16_t quiet_from, quiet_to;     /* site-local minutes; equal: no quiet hours (21:00-08:00) */
    const char *status_link;           /* fills {status_url}: a URL with {case_no}, or NULL */
    const char *receipt_secret;        /* signs receipts and replies sent to the gateway, or NULL */
};

/* Tenant webhooks (the chain's `webhooks:` section). */
struct cw_webhook_settings {
    int64_t timeout_ms;     /* default 10 s */
    int max_attempts;       /* default 8 */
    int64_t backoff_min_ms; /* default 5 s */
    int64_t backoff_max_ms; /* default 1 h */
    /* Address kinds a webhook may reach besides public ones ("loopback", "private",
     * "link_local", "metadata", "cgnat", "unspecified", "multicast", "broadcast", "reserved",
     * "documentation"): for tests and closed networks only; empty by default. */
    const char *const *allow_addresses;
    size_t nallow_addresses;
};

/* ---- loading ---- */

/* Reads and checks the chain file. Every problem found is reported (report NULL: printed to
 * stderr); returns NULL if there was any. */
cw_chain *cw_chain_load(const char *path, cw_chain_report_fn *report, void *arg);
void cw_chain_free(cw_chain *c);

/* ---- queries ---- */

const char *cw_chain_id(const cw_chain *c);
const char *cw_chain_name(const cw_chain *c);
const char *cw_chain_name_en(const cw_chain *c);
const char *cw_chain_timezone(const cw_chain *c); /* the group head office's */
const char *cw_chain_default_language(const cw_chain *c);
size_t cw_chain_language_count(const cw_chain *c);
const char *cw_chain_language_at(const cw_chain *c, size_t i);

size_t cw_chain_site_count(const cw_chain *c);
const struct cw_site *cw_chain_site_at(const cw_chain *c, size_t i); /* NULL past the end */
const struct cw_site *cw_chain_site(const cw_chain *c, const char *id);
const struct cw_group *cw_chain_group(const cw_chain *c);

size_t cw_chain_role_count(const cw_chain *c);
const struct cw_role *cw_chain_role_at(const cw_chain *c, size_t i);
const struct cw_role *cw_chain_role(const cw_chain *c, const char *id);

const struct cw_department *cw_chain_department(const cw_chain *c, const char *id);
const struct cw_staff *cw_chain_staff(const cw_chain *c, const char *id);
/* By the SHA-256 hex (either case) of a presented bearer token. */
const struct cw_staff *cw_chain_staff_by_token_hash(const cw_chain *c, const char *sha256_hex);
bool cw_staff_has_role(const struct cw_staff *s, const char *role_id);
/* Whether s may see site's cases, queues and reports: a site's staff their own site, group
 * staff the sites they list (every site when they list none). */
bool cw_staff_sees_site(const struct cw_staff *s, const struct cw_site *site);
/* Whether one of s's roles allows action (Casewire__V1__CaseAction). */
bool cw_staff_may(const struct cw_staff *s, int action);

size_t cw_chain_tenant_count(const cw_chain *c);
const struct cw_tenant *cw_chain_tenant_at(const cw_chain *c, size_t i);
const struct cw_tenant *cw_chain_tenant(const cw_chain *c, const char *id);
/* By the SHA-256 hex (either case) of a presented API key; the key names its tenant. */
const struct cw_api_key *cw_chain_api_key_by_hash(const cw_chain *c, const char *sha256_hex);
const struct cw_tenant *cw_chain_tenant_by_key_hash(const cw_chain *c, const char *sha256_hex);

/* The escalation ladder of a site, or NULL when there is no such site. */
const struct cw_ladder *cw_chain_ladder(const cw_chain *c, const char *site_id);

/* The route of a category; categories without their own use the route of `other`. */
const struct cw_route *cw_chain_route(const cw_chain *c, int category);
size_t cw_chain_route_count(const cw_chain *c);
const struct cw_route *cw_chain_route_at(const cw_chain *c, size_t i);

/* In evaluation order: priority descending, then file order. */
size_t cw_chain_policy_count(const cw_chain *c);
const struct cw_policy *cw_chain_policy_at(const cw_chain *c, size_t i);
const struct cw_policy *cw_chain_policy(const cw_chain *c, const char *id);
size_t cw_chain_rule_count(const cw_chain *c);
const struct cw_rule *cw_chain_rule_at(const cw_chain *c, size_t i);
const struct cw_rule *cw_chain_rule(const cw_chain *c, const char *id);

/* The text of SMS template `id` for a site (site_id NULL: chain-wide) in language `lang`.
 * Tries the site's own template in `lang`, the chain-wide one in `lang`, then both in the
 * chain's default language. NULL when the template id is unknown. *used_lang (if not NULL)
 * is set to the language of the text returned. */
const char *cw_chain_template(const cw_chain *c, const char *id, const char *site_id,
                              const char *lang, const char **used_lang);

/* Never NULL: the defaults when the file has no such section. */
const struct cw_sms_settings *cw_chain_sms(const cw_chain *c);
const struct cw_webhook_settings *cw_chain_webhooks(const cw_chain *c);
/* The provider's template code for one of our template ids, or NULL. */
const char *cw_chain_sms_code(const cw_chain *c, const char *template_id);

/* ---- secrets ---- */

/* out_hex = lower-case hex SHA-256 of secret (OpenSSL EVP). Returns 0, or -1 on failure. */
int cw_chain_hash_secret(const char *secret, char out_hex[CW_SHA256_HEX_LEN + 1]);

#endif
