/* Reading typed fields out of the YAML tree for the chain loader: every problem is reported
 * with the file, the line of the offending node and the field path, and loading goes on so
 * that one run shows every problem. */
#include "chain_impl.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- path and reports ---- */

size_t ld_push_key(struct cw_ld *ld, const char *key)
{
    size_t mark = ld->plen;
    int n =
        snprintf(ld->path + ld->plen, sizeof ld->path - ld->plen, "%s%s", ld->plen ? "." : "", key);
    if (n > 0) ld->plen += (size_t)n;
    if (ld->plen >= sizeof ld->path) ld->plen = sizeof ld->path - 1;
    return mark;
}

size_t ld_push_index(struct cw_ld *ld, size_t i)
{
    size_t mark = ld->plen;
    int n = snprintf(ld->path + ld->plen, sizeof ld->path - ld->plen, "[%zu]", i);
    if (n > 0) ld->plen += (size_t)n;
    if (ld->plen >= sizeof ld->path) ld->plen = sizeof ld->path - 1;
    return mark;
}

void ld_pop(struct cw_ld *ld, size_t mark)
{
    ld->plen = mark;
    ld->path[mark] = '\0';
}

void ld_verror(struct cw_ld *ld, const struct cw_ynode *at, const char *fmt, va_list ap)
{
    ld->errors++;
    if (ld->nkept == LIM_ERRORS) return;
    char msg[600];
    vsnprintf(msg, sizeof msg, fmt, ap);
    struct ld_problem *p = &ld->kept[ld->nkept];
    p->path = strdup(ld->path);
    p->message = strdup(msg);
    if (!p->path || !p->message) {
        free(p->path);
        free(p->message);
        return;
    }
    p->line = at ? at->line : 0;
    p->column = at ? at->column : 0;
    p->seq = ld->nkept++;
}

static void report_one(struct cw_ld *ld, int line, int column, const char *path, const char *msg)
{
    struct cw_chain_error e = {
        .file = ld->file, .line = line, .column = column, .path = path, .message = msg};
    if (ld->report) {
        ld->report(&e, ld->arg);
    } else {
        char buf[1024];
        cw_chain_error_format(&e, buf, sizeof buf);
        fprintf(stderr, "%s\n", buf);
    }
}

static int cmp_problem(const void *a, const void *b)
{
    const struct ld_problem *x = a, *y = b;
    if (x->line != y->line) return x->line < y->line ? -1 : 1;
    if (x->column != y->column) return x->column < y->column ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq; /* found first, reported first */
}

void ld_flush(struct cw_ld *ld)
{
    qsort(ld->kept, (size_t)ld->nkept, sizeof ld->kept[0], cmp_problem);
    for (int i = 0; i < ld->nkept; i++) {
        struct ld_problem *p = &ld->kept[i];
        report_one(ld, p->line, p->column, p->path, p->message);
        free(p->path);
        free(p->message);
    }
    if (ld->errors > ld->nkept) {
        char msg[80];
        snprintf(msg, sizeof msg, "%d more problems not shown", ld->errors - ld->nkept);
        report_one(ld, 0, 0, "", msg);
    }
    ld->nkept = 0;
}

void ld_error(struct cw_ld *ld, const struct cw_ynode *at, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    ld_verror(ld, at, fmt, ap);
    va_end(ap);
}

void ld_error_key(struct cw_ld *ld, const struct cw_ynode *at, const char *key, const char *fmt,
                  ...)
{
    size_t mark = ld_push_key(ld, key);
    va_list ap;
    va_start(ap, fmt);
    ld_verror(ld, at, fmt, ap);
    va_end(ap);
    ld_pop(ld, mark);
}

/* ---- shapes ---- */

static bool expect(struct cw_ld *ld, const struct cw_ynode *n, enum cw_ynode_type type)
{
    static const char *const names[] = {
        [CW_YNODE_SCALAR] = "a string", [CW_YNODE_SEQ] = "a list", [CW_YNODE_MAP] = "a map"};
    if (n->type == type && !(type == CW_YNODE_SCALAR && cw_ynode_is_null(n))) return true;
    ld_error(ld, n, "expected %s, found %s", names[type], cw_ynode_describe(n));
    return false;
}

static void unknown_key(struct cw_ld *ld, const struct cw_ynode *key, const char *const *allowed)
{
    const char *best = NULL;
    int best_d = strlen(key->str) >= 6 ? 4 : 3; /* suggest within 2 or 3 edits */
    for (size_t i = 0; allowed[i]; i++) {
        int d = cw_val_distance(key->str, allowed[i], best_d);
        if (d < best_d) best_d = d, best = allowed[i];
    }
    if (best)
        ld_error_key(ld, key, key->str, "unknown key (did you mean \"%s\"?)", best);
    else
        ld_error_key(ld, key, key->str, "unknown key");
}

bool ld_map_keys(struct cw_ld *ld, const struct cw_ynode *n, const char *const *allowed)
{
    if (!expect(ld, n, CW_YNODE_MAP)) return false;
    for (size_t i = 0; i < n->n; i++) {
        const struct cw_ynode *key = n->pairs[i].key;
        bool ok = false;
        for (size_t j = 0; allowed[j] && !ok; j++) ok = strcmp(allowed[j], key->str) == 0;
        if (!ok) unknown_key(ld, key, allowed);
    }
    return true;
}

const struct cw_ynode *ld_field(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                                unsigned flags)
{
    const struct cw_ynode *v = cw_ynode_get(m, key);
    if (v && cw_ynode_is_null(v)) v = NULL; /* "key:" with nothing is the same as no key */
    if (!v && (flags & LD_REQUIRED)) ld_error_key(ld, m, key, "missing required field");
    return v;
}

const char *ld_scalar(struct cw_ld *ld, const struct cw_ynode *n, size_t maxlen)
{
    if (!expect(ld, n, CW_YNODE_SCALAR)) return NULL;
    if (n->len > maxlen) {
        ld_error(ld, n, "too long: %zu bytes, at most %zu", n->len, maxlen);
        return NULL;
    }
    for (const char *p = n->str; *p; p++) {
        if ((unsigned char)*p < ' ' && *p != '\n' && *p != '\t') {
            ld_error(ld, n, "control characters are not allowed");
            return NULL;
        }
    }
    return cw_arena_strdup(&ld->c->arena, n->str);
}

const char *ld_str(struct cw_ld *ld, const struct cw_ynode *m, const char *key, unsigned flags,
                   size_t maxlen)
{
    const struct cw_ynode *v = ld_field(ld, m, key, flags);
    if (!v) return NULL;
    size_t mark = ld_push_key(ld, key);
    const char *s = ld_scalar(ld, v, maxlen);
    ld_pop(ld, mark);
    return s;
}

const char *ld_id(struct cw_ld *ld, const struct cw_ynode *m, const char *key, unsigned flags,
                  enum ld_id_kind kind)
{
    const char *s = ld_str(ld, m, key, flags, LIM_ID), *why;
    if (s && cw_val_id(s, kind, &why) < 0) {
        ld_error_key(ld, cw_ynode_get(m, key), key, "bad id \"%s\": %s", s, why);
        return NULL;
    }
    return s;
}

bool ld_int(struct cw_ld *ld, const struct cw_ynode *m, const char *key, unsigned flags, long min,
            long max, int *out)
{
    const struct cw_ynode *v = ld_field(ld, m, key, flags);
    if (!v) return false;
    size_t mark = ld_push_key(ld, key);
    bool ok = false;
    if (expect(ld, v, CW_YNODE_SCALAR)) {
        char *end;
        long x = strtol(v->str, &end, 10);
        if (end == v->str || *end)
            ld_error(ld, v, "expected a whole number, found \"%s\"", v->str);
        else if (x < min || x > max)
            ld_error(ld, v, "%ld is out of range %ld..%ld", x, min, max);
        else
            *out = (int)x, ok = true;
    }
    ld_pop(ld, mark);
    return ok;
}

int ld_bool(struct cw_ld *ld, const struct cw_ynode *m, const char *key)
{
    const struct cw_ynode *v = ld_field(ld, m, key, LD_OPTIONAL);
    if (!v) return -1;
    if (v->type == CW_YNODE_SCALAR && v->plain) {
        if (!strcmp(v->str, "true")) return 1;
        if (!strcmp(v->str, "false")) return 0;
    }
    ld_error_key(ld, v, key, "expected true or false, found %s", cw_ynode_describe(v));
    return -1;
}

int ld_enum_scalar(struct cw_ld *ld, const struct cw_ynode *n, enum cw_vocab v)
{
    if (!expect(ld, n, CW_YNODE_SCALAR)) return -1;
    int x = cw_vocab_parse(v, n->str);
    if (x < 0) {
        char choices[400];
        ld_error(ld, n, "unknown %s \"%s\" (one of: %s)", cw_vocab_title(v), n->str,
                 cw_vocab_choices(v, choices, sizeof choices));
    }
    return x;
}

int ld_enum(struct cw_ld *ld, const struct cw_ynode *m, const char *key, unsigned flags,
            enum cw_vocab v)
{
    const struct cw_ynode *n = ld_field(ld, m, key, flags);
    if (!n) return 0;
    size_t mark = ld_push_key(ld, key);
    int x = ld_enum_scalar(ld, n, v);
    ld_pop(ld, mark);
    return x;
}

const struct cw_ynode *ld_list(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                               unsigned flags, size_t max, size_t *n)
{
    *n = 0;
    const struct cw_ynode *v = ld_field(ld, m, key, flags);
    if (!v) return NULL;
    size_t mark = ld_push_key(ld, key);
    if (!expect(ld, v, CW_YNODE_SEQ))
        v = NULL;
    else if (v->n == 0 && (flags & LD_REQUIRED))
        ld_error(ld, v, "must not be empty");
    else if (v->n > max)
        ld_error(ld, v, "too many items: %zu, at most %zu", v->n, max);
    ld_pop(ld, mark);
    if (v) *n = v->n > max ? max : v->n;
    return v;
}

uint32_t ld_enum_mask(struct cw_ld *ld, const struct cw_ynode *m, const char *key, enum cw_vocab v)
{
    size_t n;
    const struct cw_ynode *list = ld_list(ld, m, key, LD_OPTIONAL, 32, &n);
    uint32_t mask = 0;
    size_t mark = ld_push_key(ld, key);
    if (list && list->n == 0) ld_error(ld, list, "must not be empty (leave the key out for any)");
    for (size_t i = 0; list && i < n; i++) {
        size_t im = ld_push_index(ld, i);
        int x = ld_enum_scalar(ld, list->items[i], v);
        if (x >= 0) mask |= 1u << x;
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    return mask;
}

const struct cw_ynode *ld_submap(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                                 unsigned flags, const char *const *allowed)
{
    const struct cw_ynode *v = ld_field(ld, m, key, flags);
    if (!v) return NULL;
    size_t mark = ld_push_key(ld, key);
    bool ok = ld_map_keys(ld, v, allowed);
    ld_pop(ld, mark);
    return ok ? v : NULL;
}

const void *ld_ref(struct cw_ld *ld, const struct cw_ynode *m, const char *key, unsigned flags,
                   const struct cw_strmap *idx, const char *what)
{
    const char *id = ld_str(ld, m, key, flags, LIM_ID);
    if (!id) return NULL;
    const void *p = cw_strmap_get(idx, id);
    if (!p) ld_error_key(ld, cw_ynode_get(m, key), key, "unknown %s \"%s\"", what, id);
    return p;
}

bool ld_unique(struct cw_ld *ld, struct cw_strmap *idx, const char *id, const void *value,
               const struct cw_ynode *n, const char *what)
{
    int first = 0;
    if (cw_strmap_put(idx, id, value, n ? n->line : 0, &first) == 0) return true;
    ld_error(ld, n, "duplicate %s \"%s\" (first at line %d)", what, id, first);
    return false;
}

const struct cw_site *const *ld_site_list(struct cw_ld *ld, const struct cw_ynode *m,
                                          const char *key, size_t *n)
{
    size_t count;
    const struct cw_ynode *list = ld_list(ld, m, key, LD_OPTIONAL, CW_CHAIN_MAX_SITES, &count);
    const struct cw_site **sites = ARENA_NEW(&ld->c->arena, const struct cw_site *, count);
    size_t mark = ld_push_key(ld, key);
    if (list && list->n == 0) ld_error(ld, list, "must not be empty (leave the key out for any)");
    *n = 0;
    for (size_t i = 0; list && i < count; i++) {
        size_t im = ld_push_index(ld, i);
        const char *id = ld_scalar(ld, list->items[i], LIM_ID);
        const struct cw_site *s = id ? cw_strmap_get(&ld->c->by_site, id) : NULL;
        if (id && !s) ld_error(ld, list->items[i], "unknown site \"%s\"", id);
        if (s) sites[(*n)++] = s;
        ld_pop(ld, im);
    }
    ld_pop(ld, mark);
    return sites;
}

const char *ld_secret_hash(struct cw_ld *ld, const struct cw_ynode *m, const char *key,
                           unsigned flags, const char *owner)
{
    const char *s = ld_str(ld, m, key, flags, 128), *why;
    if (!s) return NULL;
    const struct cw_ynode *n = cw_ynode_get(m, key);
    char hex[CW_SHA256_HEX_LEN + 1];
    if (cw_val_sha256_hex(s, hex, &why) < 0) {
        ld_error_key(ld, n, key, "%s", why);
        return NULL;
    }
    char *h = cw_arena_strdup(&ld->c->arena, hex);
    int first = 0;
    if (cw_strmap_put(&ld->secrets, h, owner, n->line, &first) != 0) {
        const char *prev = cw_strmap_get(&ld->secrets, h);
        ld_error_key(ld, n, key, "the same hash is already used by %s (line %d)", prev, first);
        return NULL;
    }
    return h;
}
