/* The chain model: memory (arena, id maps), queries, the error format, secret hashing.
 * Loading is in chain_load*.c, checks across records in chain_check.c. */
#include "chain_impl.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

/* ---- arena ---- */

struct arena_block {
    struct arena_block *next;
    size_t used, cap;
    max_align_t data[];
};

enum { ARENA_BLOCK = 64 * 1024 };

static void *xmalloc(size_t n)
{
    void *p = malloc(n);
    if (!p) {
        fputs("casewire: out of memory while loading the chain\n", stderr);
        abort();
    }
    return p;
}

void *cw_arena_alloc(struct cw_arena *a, size_t size)
{
    const size_t align = _Alignof(max_align_t);
    size = (size + align - 1) / align * align;
    if (size == 0) size = align;
    struct arena_block *b = a->head;
    if (!b || b->cap - b->used < size) {
        size_t cap = size > ARENA_BLOCK / 2 ? size : ARENA_BLOCK;
        b = xmalloc(sizeof *b + cap);
        b->used = 0;
        b->cap = cap;
        if (size > ARENA_BLOCK / 2 && a->head) { /* big one: keep filling the current block */
            b->next = a->head->next;
            a->head->next = b;
        } else {
            b->next = a->head;
            a->head = b;
        }
    }
    void *p = (char *)b->data + b->used;
    b->used += size;
    memset(p, 0, size);
    return p;
}

char *cw_arena_strdup(struct cw_arena *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = cw_arena_alloc(a, n);
    memcpy(d, s, n);
    return d;
}

void cw_arena_release(struct cw_arena *a)
{
    struct arena_block *b = a->head;
    while (b) {
        struct arena_block *next = b->next;
        /* Webhook secrets live here: do not leave them in freed memory. */
        explicit_bzero(b->data, b->used);
        free(b);
        b = next;
    }
    a->head = NULL;
}

/* ---- string map: open addressing, linear probing, at most half full ---- */

struct strmap_slot {
    const char *key;
    const void *value;
    uint64_t hash;
    int line;
};

static uint64_t fnv1a(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ull;
    return h;
}

static struct strmap_slot *slot_find(const struct cw_strmap *m, const char *key, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        struct strmap_slot *s = &m->slots[i];
        if (!s->key || (s->hash == h && strcmp(s->key, key) == 0)) return s;
    }
}

static void strmap_grow(struct cw_strmap *m)
{
    struct cw_strmap big = {.cap = m->cap ? m->cap * 2 : 64};
    big.slots = xmalloc(big.cap * sizeof *big.slots);
    memset(big.slots, 0, big.cap * sizeof *big.slots);
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key) *slot_find(&big, m->slots[i].key, m->slots[i].hash) = m->slots[i];
    big.n = m->n;
    free(m->slots);
    *m = big;
}

int cw_strmap_put(struct cw_strmap *m, const char *key, const void *value, int line,
                  int *first_line)
{
    if ((m->n + 1) * 2 > m->cap) strmap_grow(m);
    uint64_t h = fnv1a(key);
    struct strmap_slot *s = slot_find(m, key, h);
    if (s->key) {
        if (first_line) *first_line = s->line;
        return 1;
    }
    *s = (struct strmap_slot){.key = key, .value = value, .hash = h, .line = line};
    m->n++;
    return 0;
}

const void *cw_strmap_get(const struct cw_strmap *m, const char *key)
{
    if (!m->n || !key) return NULL;
    const struct strmap_slot *s = slot_find(m, key, fnv1a(key));
    return s->key ? s->value : NULL;
}

void cw_strmap_release(struct cw_strmap *m)
{
    free(m->slots);
    *m = (struct cw_strmap){0};
}

/* ---- lifecycle ---- */

cw_chain *cw_chain_new(void)
{
    cw_chain *c = xmalloc(sizeof *c);
    memset(c, 0, sizeof *c);
    return c;
}

void cw_chain_free(cw_chain *c)
{
    if (!c) return;
    struct cw_strmap *maps[] = {&c->by_site,  &c->by_role,    &c->by_department, &c->by_staff,
                                &c->by_token, &c->by_tenant,  &c->by_key,        &c->by_policy,
                                &c->by_rule,  &c->by_template};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++) cw_strmap_release(maps[i]);
    cw_arena_release(&c->arena);
    free(c);
}

int cw_chain_error_format(const struct cw_chain_error *e, char *buf, size_t len)
{
    char line[16] = "";
    if (e->line > 0) snprintf(line, sizeof line, ":%d", e->line);
    const char *path = e->path ? e->path : "";
    return snprintf(buf, len, "%s%s: %s%s%s", e->file ? e->file : "", line, path, *path ? ": " : "",
                    e->message ? e->message : "");
}

int cw_chain_hash_secret(const char *secret, char out_hex[CW_SHA256_HEX_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    out_hex[0] = '\0';
    if (!secret || !EVP_Digest(secret, strlen(secret), md, &n, EVP_sha256(), NULL) || n != 32)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < n; i++) {
        out_hex[2 * i] = hex[md[i] >> 4];
        out_hex[2 * i + 1] = hex[md[i] & 15];
    }
    out_hex[2 * n] = '\0';
    return 0;
}

/* ---- queries ---- */

const char *cw_chain_id(const cw_chain *c) { return c->id; }
const char *cw_chain_name(const cw_chain *c) { return c->name; }
const char *cw_chain_name_en(const cw_chain *c) { return c->name_en; }
const char *cw_chain_timezone(const cw_chain *c) { return c->timezone; }
const char *cw_chain_default_language(const cw_chain *c) { return c->languages[0]; }
size_t cw_chain_language_count(const cw_chain *c) { return c->nlanguages; }

const char *cw_chain_language_at(const cw_chain *c, size_t i)
{
    return i < c->nlanguages ? c->languages[i] : NULL;
}

size_t cw_chain_site_count(const cw_chain *c) { return c->nsites; }

const struct cw_site *cw_chain_site_at(const cw_chain *c, size_t i)
{
    return i < c->nsites ? &c->sites[i] : NULL;
}

const struct cw_site *cw_chain_site(const cw_chain *c, const char *id)
{
    return cw_strmap_get(&c->by_site, id);
}

const struct cw_group *cw_chain_group(const cw_chain *c) { return &c->group; }
size_t cw_chain_role_count(const cw_chain *c) { return c->nroles; }

const struct cw_role *cw_chain_role_at(const cw_chain *c, size_t i)
{
    return i < c->nroles ? &c->roles[i] : NULL;
}

const struct cw_role *cw_chain_role(const cw_chain *c, const char *id)
{
    return cw_strmap_get(&c->by_role, id);
}

const struct cw_department *cw_chain_department(const cw_chain *c, const char *id)
{
    return cw_strmap_get(&c->by_department, id);
}

const struct cw_staff *cw_chain_staff(const cw_chain *c, const char *id)
{
    return cw_strmap_get(&c->by_staff, id);
}

/* Lower-cases a presented hash into buf; NULL when it cannot be one. */
static const char *hash_key(const char *hex, char buf[CW_SHA256_HEX_LEN + 1])
{
    if (!hex || strlen(hex) != CW_SHA256_HEX_LEN) return NULL;
    for (size_t i = 0; i <= CW_SHA256_HEX_LEN; i++) buf[i] = (char)tolower((unsigned char)hex[i]);
    return buf;
}

const struct cw_staff *cw_chain_staff_by_token_hash(const cw_chain *c, const char *sha256_hex)
{
    char buf[CW_SHA256_HEX_LEN + 1];
    return cw_strmap_get(&c->by_token, hash_key(sha256_hex, buf));
}

bool cw_staff_has_role(const struct cw_staff *s, const char *role_id)
{
    for (size_t i = 0; s && role_id && i < s->nroles; i++)
        if (strcmp(s->roles[i]->id, role_id) == 0) return true;
    return false;
}

bool cw_staff_sees_site(const struct cw_staff *s, const struct cw_site *site)
{
    if (!s || !site) return false;
    if (s->site) return s->site == site;
    if (s->nsites == 0) return true;
    for (size_t i = 0; i < s->nsites; i++)
        if (s->sites[i] == site) return true;
    return false;
}

bool cw_staff_may(const struct cw_staff *s, int action)
{
    if (!s || action <= 0 || action >= 32) return false;
    for (size_t i = 0; i < s->nroles; i++)
        if (!s->roles[i]->actions || (s->roles[i]->actions & (1u << action))) return true;
    return false;
}

size_t cw_chain_tenant_count(const cw_chain *c) { return c->ntenants; }

const struct cw_tenant *cw_chain_tenant_at(const cw_chain *c, size_t i)
{
    return i < c->ntenants ? &c->tenants[i] : NULL;
}

const struct cw_tenant *cw_chain_tenant(const cw_chain *c, const char *id)
{
    return cw_strmap_get(&c->by_tenant, id);
}

const struct cw_api_key *cw_chain_api_key_by_hash(const cw_chain *c, const char *sha256_hex)
{
    char buf[CW_SHA256_HEX_LEN + 1];
    return cw_strmap_get(&c->by_key, hash_key(sha256_hex, buf));
}

const struct cw_tenant *cw_chain_tenant_by_key_hash(const cw_chain *c, const char *sha256_hex)
{
    const struct cw_api_key *k = cw_chain_api_key_by_hash(c, sha256_hex);
    return k ? k->tenant : NULL;
}

const struct cw_ladder *cw_chain_ladder(const cw_chain *c, const char *site_id)
{
    const struct cw_site *s = cw_chain_site(c, site_id);
    return s ? &s->ladder : NULL;
}

const struct cw_route *cw_chain_route(const cw_chain *c, int category)
{
    const int other = CASEWIRE__V1__CATEGORY__CATEGORY_OTHER;
    if (category > 0 && category <= other && c->route_of[category]) return c->route_of[category];
    return c->route_of[other];
}

size_t cw_chain_route_count(const cw_chain *c) { return c->nroutes; }

const struct cw_route *cw_chain_route_at(const cw_chain *c, size_t i)
{
    return i < c->nroutes ? &c->routes[i] : NULL;
}

size_t cw_chain_policy_count(const cw_chain *c) { return c->npolicies; }

const struct cw_policy *cw_chain_policy_at(const cw_chain *c, size_t i)
{
    return i < c->npolicies ? c->policies[i] : NULL;
}

const struct cw_policy *cw_chain_policy(const cw_chain *c, const char *id)
{
    return cw_strmap_get(&c->by_policy, id);
}

size_t cw_chain_rule_count(const cw_chain *c) { return c->nrules; }

const struct cw_rule *cw_chain_rule_at(const cw_chain *c, size_t i)
{
    return i < c->nrules ? c->rules[i] : NULL;
}

const struct cw_rule *cw_chain_rule(const cw_chain *c, const char *id)
{
    return cw_strmap_get(&c->by_rule, id);
}

const char *cw_chain_template_key(struct cw_arena *a, const char *id, const char *site_id,
                                  char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s\x1f%s", id, site_id ? site_id : "");
    if (n < 0 || (size_t)n >= len) return NULL;
    return a ? cw_arena_strdup(a, buf) : buf;
}

static const struct tmpl *template_find(const cw_chain *c, const char *id, const char *site_id)
{
    char buf[2 * LIM_ID + 8];
    const char *key = cw_chain_template_key(NULL, id, site_id, buf, sizeof buf);
    return key ? cw_strmap_get(&c->by_template, key) : NULL;
}

static int language_index(const cw_chain *c, const char *lang)
{
    for (size_t i = 0; lang && i < c->nlanguages; i++)
        if (strcmp(c->languages[i], lang) == 0) return (int)i;
    return -1;
}

const char *cw_chain_template(const cw_chain *c, const char *id, const char *site_id,
                              const char *lang, const char **used_lang)
{
    if (!id) return NULL;
    const struct tmpl *own = site_id ? template_find(c, id, site_id) : NULL;
    const struct tmpl *base = template_find(c, id, NULL);
    int li = language_index(c, lang);
    const struct {
        const struct tmpl *t;
        int lang;
    } order[] = {
        {own, li},
        {base, li},
        {own, 0},
        {base, 0},
    };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++) {
        if (!order[i].t || order[i].lang < 0 || !order[i].t->text[order[i].lang]) continue;
        if (used_lang) *used_lang = c->languages[order[i].lang];
        return order[i].t->text[order[i].lang];
    }
    return NULL;
}
