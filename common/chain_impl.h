/*
 * Internals shared by chain.c (model, indexes, queries), chain_fields.c (reading typed fields
 * out of the YAML tree with error reports), chain_values.c (pure parsers for times, dates,
 * durations, hashes...), chain_load.c (chain, roles, group, sites), chain_load_policy.c
 * (tenants, routing, SLA policies, rules, templates) and chain_check.c (consistency checks
 * across records). Not part of the contract: services include chain.h only.
 *
 * Memory during a load: every record and string goes into the chain's arena, so one
 * cw_chain_free() releases everything, also after a failed load. Running out of memory while
 * loading a configuration of at most 8 MiB aborts the process, as Redis's zmalloc does.
 */
#ifndef CW_CHAIN_IMPL_H
#define CW_CHAIN_IMPL_H

#include <stdarg.h>

#include "chain.h"
#include "yamldoc.h"

/* Limits beyond those in chain.h (docs/chain.md lists them all). */
enum {
    LIM_ERRORS = 100, /* problems reported; beyond, only how many more */
    LIM_ID = 64,
    LIM_NAME = 128, /* bytes of UTF-8: about 40 Chinese characters */
    LIM_TEXT = 256, /* addresses, descriptions */
    LIM_URL = 512,
    LIM_SECRET_MIN = 16,
    LIM_SECRET = 256,
    LIM_TEMPLATE = 1000,
    LIM_PATTERN = 128,
    LIM_REGEX = 256,
    LIM_ROLES = 200,
    LIM_DEPARTMENTS = 200, /* per site, and in the group */
    LIM_SITE_STAFF = 5000, /* per site, and in the group */
    LIM_STAFF_ROLES = 16,
    LIM_SHIFTS = 14,
    LIM_CALENDAR_DAYS = 400, /* holidays, and special days, per site */
    LIM_LADDER = 8,
    LIM_API_KEYS = 8,
    LIM_ROUTE_KINDS = 8,
    LIM_POLICIES = 500,
    LIM_RULES = 2000,
    LIM_PATTERNS = 200,
    LIM_REGEXES = 20,
    LIM_TEMPLATES = 50000,
    LIM_MAX_WORKING_DAYS = 60,
};

#define LIM_MAX_WALL_MS (90LL * 24 * 3600 * 1000) /* durations: 90 days */

/* ---- arena ---- */

struct arena_block;
struct cw_arena {
    struct arena_block *head;
};
void *cw_arena_alloc(struct cw_arena *a, size_t size); /* zeroed; aborts when out of memory */
char *cw_arena_strdup(struct cw_arena *a, const char *s);
void cw_arena_release(struct cw_arena *a);
#define ARENA_NEW(a, type, n) ((type *)cw_arena_alloc((a), sizeof(type) * (n)))

/* ---- string -> pointer map (keys are not copied: they must outlive the map) ---- */

struct strmap_slot;
struct cw_strmap {
    struct strmap_slot *slots;
    size_t cap, n;
};
/* 0 added; 1 already there (*first_line = the line it was added with). */
int cw_strmap_put(struct cw_strmap *m, const char *key, const void *value, int line,
                  int *first_line);
const void *cw_strmap_get(const struct cw_strmap *m, const char *key);
void cw_strmap_release(struct cw_strmap *m);

/* ---- the chain ---- */

struct tmpl {
    const char *id;
    const struct cw_site *site;               /* NULL: chain-wide */
    const char *text[CW_CHAIN_MAX_LANGUAGES]; /* by index in cw_chain.languages */
    int line;                                 /* for checks after loading */
    size_t index;
};

struct cw_chain {
    struct cw_arena arena;
    const char *id, *name, *name_en, *timezone;
    const char *languages[CW_CHAIN_MAX_LANGUAGES]; /* [0] is the default language */
    size_t nlanguages;
    struct cw_role *roles;
    size_t nroles;
    struct cw_group group;
    struct cw_site *sites;
    size_t nsites;
    struct cw_tenant *tenants;
    size_t ntenants;
    struct cw_route *routes;
    size_t nroutes;
    const struct cw_route *route_of[CASEWIRE__V1__CATEGORY__CATEGORY_OTHER + 1];
    const struct cw_policy **policies; /* evaluation order */
    size_t npolicies;
    const struct cw_rule **rules; /* evaluation order */
    size_t nrules;
    struct tmpl *templates;
    size_t ntemplates;
    struct cw_sms_settings sms;
    struct cw_webhook_settings webhooks;
    struct cw_strmap by_site, by_role, by_department, by_staff, by_token, by_tenant, by_key,
        by_policy, by_rule, by_template;
};

cw_chain *cw_chain_new(void);
/* "id\x1fSITE" (site NULL: "id\x1f"), the key of by_template. */
const char *cw_chain_template_key(struct cw_arena *a, const char *id, const char *site_id,
                                  char *buf, size_t len);

/* ---- loader context ---- */

struct ld_problem {
    int line, column, seq;
    char *path, *message;
};

struct cw_ld {
    cw_chain *c;
    const char *file;
    cw_chain_report_fn *report;
    void *arg;
    int errors;                         /* found, including those not kept */
    struct ld_problem kept[LIM_ERRORS]; /* reported, by line, at the end */
    int nkept;
    bool people_ok; /* no problem in the group's or this site's staff: role checks are fair */
    char path[512];
    size_t plen;
    size_t nstaff_total;
    struct cw_strmap secrets; /* hash -> who ("staff SH01-S001"), across tokens and keys */
};

/* Path: push returns the previous length, pop restores it. */
size_t ld_push_key(struct cw_ld *ld, const char *key);
size_t ld_push_index(struct cw_ld *ld, size_t i);
void ld_pop(struct cw_ld *ld, size_t mark);

/* Records a problem at node `at` (its line; NULL: no line) under the current path. */
void ld_error(struct cw_ld *ld, const struct cw_ynode *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ld_verror(struct cw_ld *ld, const struct cw_ynode *at, const char *fmt, va_list ap);
/* Reports the problems recorded, sorted by line, and forgets them. */
void ld_flush(struct cw_ld *ld);
/* The same with `key` appended to the path for this one report. */
void ld_error_key(struct cw_ld *ld, const struct cw_ynode *at, const char *key, const char *fmt,
                  ...) __attribute__((format(printf, 4, 5)));

enum ld_flags {
    LD_OPTIONAL = 0,
    LD_REQUIRED = 1 << 0,
};

/* Checks that n is a map (reporting "expected a map") and that its keys are all in allowed
 * (NULL-terminated), reporting each unknown one. Returns false when n is not a map. */
bool ld_map_keys(struct cw_ld *ld, const struct cw_ynode *n, const char *const *allowed);

/* Field readers: each looks up `key` in map `m`, reports what is wrong under path.key, and
 * returns the value, or NULL / false when the field is missing or bad. */
const struct cw_ynode *ld_field(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                                unsigned flags);
const char *ld_str(struct cw_ld *ld, const struct cw_ynode *m, const char *key, unsigned flags,
                   size_t maxlen);
/* A scalar string value of node n itself (path already pushed). */
const char *ld_scalar(struct cw_ld *ld, const struct cw_ynode *n, size_t maxlen);

enum ld_id_kind { ID_GENERIC, ID_SITE, ID_ROLE };
const char *ld_id(struct cw_ld *ld, const struct cw_ynode *m, const char *key, unsigned flags,
                  enum ld_id_kind kind);
bool ld_int(struct cw_ld *ld, const struct cw_ynode *m, const char *key, unsigned flags, long min,
            long max, int *out);
/* -1 when absent, else 0 or 1. */
int ld_bool(struct cw_ld *ld, const struct cw_ynode *m, const char *key);
/* A vocabulary name: its value, 0 when absent, -1 when bad. */
int ld_enum(struct cw_ld *ld, const struct cw_ynode *m, const char *key, unsigned flags,
            enum cw_vocab v);
int ld_enum_scalar(struct cw_ld *ld, const struct cw_ynode *n, enum cw_vocab v);
/* A list of vocabulary names as a bitmask (1u << value); 0 when absent. */
uint32_t ld_enum_mask(struct cw_ld *ld, const struct cw_ynode *m, const char *key, enum cw_vocab v);
/* A list: returns the node (NULL when absent or not a list) and *n, capped at max with a
 * report when longer. required lists must not be empty. */
const struct cw_ynode *ld_list(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                               unsigned flags, size_t max, size_t *n);
/* A map with only the allowed keys; NULL when absent or not a map. */
const struct cw_ynode *ld_submap(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                                 unsigned flags, const char *const *allowed);
/* Looks up the id in `key` in map `idx`; reports "unknown <what> "x"". */
const void *ld_ref(struct cw_ld *ld, const struct cw_ynode *m, const char *key, unsigned flags,
                   const struct cw_strmap *idx, const char *what);
/* Adds id -> value to idx, reporting "duplicate <what> id" at node n (path already pushed). */
bool ld_unique(struct cw_ld *ld, struct cw_strmap *idx, const char *id, const void *value,
               const struct cw_ynode *n, const char *what);
/* A list of site ids (match.sites, when.sites). */
const struct cw_site *const *ld_site_list(struct cw_ld *ld, const struct cw_ynode *m,
                                          const char *key, size_t *n);
/* Optional 64-hex secret hash at key, unique across the chain; lower-cased copy or NULL. */
const char *ld_secret_hash(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                           unsigned flags, const char *owner);

/* ---- value parsers (chain_values.c): 0 ok, -1 bad with *why set ---- */

int cw_val_id(const char *s, enum ld_id_kind kind, const char **why);
int cw_val_time(const char *s, bool allow_24, uint16_t *out, const char **why);
int cw_val_hours(const char *s, struct cw_hours *out, const char **why);
int cw_val_date(const char *s, int *ymd, const char **why);
int cw_val_duration(const char *s, struct cw_duration *out, const char **why);
int cw_val_sha256_hex(const char *s, char out[CW_SHA256_HEX_LEN + 1], const char **why);
int cw_val_url(const char *s, const char **why);
int cw_val_phone(const char *s, const char **why);
int cw_val_timezone(const char *s, const char **why);
int cw_val_language(const char *s, const char **why);
/* Unknown placeholder or stray brace: -1, with the offending text copied into bad. */
int cw_val_template(const char *text, char *bad, size_t badlen, const char **why);
void cw_val_lower_ascii(char *s);
/* Levenshtein distance, capped: for "did you mean". */
int cw_val_distance(const char *a, const char *b, int cap);

/* ---- loaders ---- */

/* chain_load_policy.c; chain_load.c has cw_chain_load() and the chain, roles, group, sites. */
void ld_tenants(struct cw_ld *ld, const struct cw_ynode *root);
void ld_routing(struct cw_ld *ld, const struct cw_ynode *root);
void ld_policies(struct cw_ld *ld, const struct cw_ynode *root);
void ld_rules(struct cw_ld *ld, const struct cw_ynode *root);
void ld_templates(struct cw_ld *ld, const struct cw_ynode *root);
/* chain_load_notify.c: the sms and webhooks sections. */
void ld_sms(struct cw_ld *ld, const struct cw_ynode *root);
void ld_webhooks(struct cw_ld *ld, const struct cw_ynode *root);
/* A secret given in the file (key) or named by an environment variable (env_key): the value,
 * or NULL (reported when required or bad). */
const char *ld_secret_value(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                            const char *env_key, unsigned flags);
/* A wall-clock duration ("5s", "10m") in ms within min..max; false when absent or bad. */
bool ld_wall_ms(struct cw_ld *ld, const struct cw_ynode *m, const char *key, int64_t min,
                int64_t max, int64_t *out);

/* ---- checks across records (chain_check.c) ---- */

/* Shifts of one person (node: the staff map) must not overlap, overnight spills included. */
void ck_shifts(struct cw_ld *ld, const struct cw_staff *s, const struct cw_ynode *node);
/* Whether somebody holds role r: staff of the site, or (site_only false) of the group too. */
bool ck_role_held(const cw_chain *c, const struct cw_site *s, const struct cw_role *r,
                  bool site_only);
/* The fallback role's shifts cover the opening hours; every route can be served at the site.
 * node: the site map. */
void ck_site(struct cw_ld *ld, struct cw_site *site, const struct cw_ynode *node);
/* A regex that regcomp accepts (REG_EXTENDED | REG_ICASE | REG_NOSUB). */
bool ck_regex(struct cw_ld *ld, const char *re, const struct cw_ynode *n);
/* Whole-chain checks once everything is loaded: route `other`, default policy. */
void ck_chain(struct cw_ld *ld, const struct cw_ynode *root);

#endif
