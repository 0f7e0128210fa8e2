#include "classify.h"

#include <hs.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "casewire.pb-c.h"
#include "domain.h"
#include "policy.h"
#include "rulecache.h"

/* One compiled keyword or regex: the rule it belongs to and its text in the chain. */
struct expr {
    unsigned rule;
    const char *source;
};

struct rt_classifier {
    const cw_chain *chain;
    size_t nrules;
    const struct cw_rule **rules; /* evaluation order */
    struct expr *exprs;
    size_t nexprs;
    hs_database_t *db; /* NULL when the chain has no rules */
    hs_scratch_t *scratch;
    /* Per call: the first expression that matched each rule (NULL: none), and which rules
     * were touched, so that resetting costs the matches, not the rule count. */
    const char **hit;
    unsigned *touched;
    size_t ntouched;
    char *folded; /* the text with full-width forms folded, RT_CLASSIFY_MAX_TEXT bytes */
    struct rt_classifier_origin origin;
};

static const char *const field_names[RT_FIELDS] = {"type", "category", "urgency", "validity",
                                                   "department"};

const char *rt_field_name(enum rt_field f) { return (unsigned)f < RT_FIELDS ? field_names[f] : ""; }

static bool is_alnum(unsigned char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_alpha(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z');
}

static bool is_vowel(unsigned char ch)
{
    ch = (unsigned char)(ch | 0x20);
    return ch == 'a' || ch == 'e' || ch == 'i' || ch == 'o' || ch == 'u';
}

/* Length of the valid UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or code
 * points past U+10FFFF), 0 when there is none. */
static size_t utf8_seq(const unsigned char *s, size_t left)
{
    unsigned char b = s[0];
    if (b < 0x80) return 1;
    size_t n = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc2 ? 2 : 0;
    if (n == 0 || b > 0xf4 || n > left) return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80) return 0;
    if (b == 0xe0 && s[1] < 0xa0) return 0;  /* overlong */
    if (b == 0xed && s[1] >= 0xa0) return 0; /* surrogate */
    if (b == 0xf0 && s[1] < 0x90) return 0;  /* overlong */
    if (b == 0xf4 && s[1] >= 0x90) return 0; /* past U+10FFFF */
    return n;
}

/* The ASCII character a full-width form (U+FF01..U+FF5E) or the ideographic space stands
 * for, when the n-byte sequence at s is one of them; 0 otherwise. Text and patterns are
 * folded the same way, so that a keyword written with "，" still matches. */
static char folded_ascii(const unsigned char *s, size_t n)
{
    if (n != 3) return 0;
    unsigned cp = (unsigned)(s[0] & 0x0f) << 12 | (unsigned)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
    if (cp >= 0xff01 && cp <= 0xff5e) return (char)(cp - 0xff01 + 0x21);
    if (cp == 0x3000) return ' ';
    return 0;
}

/* A keyword or regex from the chain with its full-width forms folded to ASCII. In a regex a
 * folded character is written \xHH (so "（" stays a literal, never a group), or as itself
 * right after a backslash. NULL when out of memory; the chain checked the UTF-8. */
static char *fold_source(const char *src, bool regex)
{
    const unsigned char *s = (const unsigned char *)src;
    size_t len = strlen(src);
    char *out = malloc(4 * len + 1), *p = out;
    if (!out) return NULL;
    bool escaped = false;
    for (size_t i = 0; i < len;) {
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0) n = 1;
        char ascii = folded_ascii(s + i, n);
        if (!ascii) {
            memcpy(p, s + i, n);
            p += n;
            escaped = regex && n == 1 && s[i] == '\\' && !escaped;
        } else if (regex && !escaped) {
            p += sprintf(p, "\\x%02x", (unsigned char)ascii);
        } else {
            *p++ = ascii;
            escaped = false;
        }
        i += n;
    }
    *p = '\0';
    return out;
}

/* A keyword as a Vectorscan expression (the header says why the boundaries and endings).
 * Every ASCII byte that is not a letter or digit is written \xHH, so no keyword can mean
 * anything but itself. NULL when out of memory. */
static char *keyword_expression(const char *keyword)
{
    char *kw = fold_source(keyword, false);
    if (!kw) return NULL;
    size_t n = strlen(kw);
    char *out = malloc(4 * n + 64), *p = out;
    if (!out) {
        free(kw);
        return NULL;
    }
    unsigned char last = n ? (unsigned char)kw[n - 1] : 0;
    unsigned char before = n > 1 ? (unsigned char)kw[n - 2] : 0;
    /* How many final letters an ending replaces: "smoke" -> "smoking", "carry" -> "carried" */
    size_t stem = n;
    if (n >= 3 && (last | 0x20) == 'e' && is_alpha(before) && (before | 0x20) != 'e')
        stem = n - 1;
    else if (n >= 3 && (last | 0x20) == 'y' && is_alpha(before) && !is_vowel(before))
        stem = n - 1;
    if (n && is_alnum((unsigned char)kw[0])) p += sprintf(p, "\\b");
    for (size_t i = 0; i < stem; i++) {
        unsigned char ch = (unsigned char)kw[i];
        if (ch >= 0x80 || is_alnum(ch))
            *p++ = (char)ch;
        else
            p += sprintf(p, "\\x%02x", ch);
    }
    if (stem < n && (last | 0x20) == 'e')
        p += sprintf(p, "(?:e|es|ed|ing)\\b");
    else if (stem < n)
        p += sprintf(p, "(?:y|ies|ied|ying)\\b");
    else if (is_alpha(last) && is_alpha(before) && is_vowel(before) && !is_vowel(last) &&
             !strchr("wxyWXY", last))
        /* a final consonant may double: "stop" -> "stopped", "chat" -> "chatting" */
        p += sprintf(p, "(?:s|es|ed|ing|%ced|%cing)?\\b", last, last);
    else if (is_alpha(last))
        p += sprintf(p, "(?:s|es|ed|ing)?\\b");
    else if (is_alnum(last))
        p += sprintf(p, "\\b");
    *p = '\0';
    free(kw);
    return out;
}

static size_t count_expressions(const cw_chain *chain)
{
    size_t n = 0;
    for (size_t i = 0; i < cw_chain_rule_count(chain); i++) {
        const struct cw_rule *r = cw_chain_rule_at(chain, i);
        n += r->npatterns + r->nregex;
    }
    return n;
}

/* The cache key: everything the compiled database depends on. A different library version
 * or CPU (the database targets the host it is compiled on), or any change to an expression,
 * its flags or its order, gives another key. */
static int cache_key(const char *const *text, const unsigned *flags, size_t n,
                     unsigned char key[RT_RULECACHE_KEY_LEN])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    hs_platform_info_t platform;
    unsigned int len = 0;
    const unsigned mode = HS_MODE_BLOCK;
    int ok = md && hs_populate_platform(&platform) == HS_SUCCESS &&
             EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, "casewire-rules-1", 17) == 1 &&
             EVP_DigestUpdate(md, hs_version(), strlen(hs_version()) + 1) == 1 &&
             EVP_DigestUpdate(md, &platform.tune, sizeof platform.tune) == 1 &&
             EVP_DigestUpdate(md, &platform.cpu_features, sizeof platform.cpu_features) == 1 &&
             EVP_DigestUpdate(md, &mode, sizeof mode) == 1;
    for (size_t i = 0; ok && i < n; i++)
        ok = EVP_DigestUpdate(md, &flags[i], sizeof flags[i]) == 1 &&
             EVP_DigestUpdate(md, text[i], strlen(text[i]) + 1) == 1;
    ok = ok && EVP_DigestFinal_ex(md, key, &len) == 1 && len == RT_RULECACHE_KEY_LEN;
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The database from the cache when it holds these expressions, else compiled (and stored
 * when there is a cache). Only a failure to compile fails: the cache is an optimisation. */
static int load_or_compile(rt_classifier *c, const char *const *text, const unsigned *flags,
                           const unsigned *ids, const char *cache_dir, char *err, size_t errlen)
{
    struct rt_classifier_origin *o = &c->origin;
    double start = now_ms();
    unsigned char key[RT_RULECACHE_KEY_LEN];
    bool cache = cache_dir && *cache_dir;
    if (cache && cache_key(text, flags, c->nexprs, key) != 0) {
        snprintf(o->cache_note, sizeof o->cache_note, "cannot compute the cache key");
        cache = false;
    }
    if (cache) {
        int got = rt_rulecache_load(cache_dir, key, &c->db, o->cache_note, sizeof o->cache_note);
        if (got == 1) {
            o->from_cache = true;
            o->ms = now_ms() - start;
            return 0;
        }
        c->db = NULL; /* got 0: a first start, or rules changed; -1: the note says why */
    }
    hs_compile_error_t *cerr = NULL;
    if (hs_compile_multi(text, flags, ids, (unsigned)c->nexprs, HS_MODE_BLOCK, NULL, &c->db,
                         &cerr) != HS_SUCCESS) {
        if (cerr && cerr->expression >= 0 && (size_t)cerr->expression < c->nexprs) {
            const struct expr *x = &c->exprs[cerr->expression];
            snprintf(err, errlen, "classification rule %s: \"%s\": %s", c->rules[x->rule]->id,
                     x->source, cerr->message);
        } else
            snprintf(err, errlen, "classification rules: %s", cerr ? cerr->message : "?");
        hs_free_compile_error(cerr);
        return -1;
    }
    o->ms = now_ms() - start;
    if (cache) {
        char why[sizeof o->cache_note - 16];
        if (rt_rulecache_store(cache_dir, key, c->db, why, sizeof why) != 0)
            snprintf(o->cache_note, sizeof o->cache_note, "not stored: %s", why);
        else
            o->stored = true;
    }
    return 0;
}

static int compile(rt_classifier *c, const char *cache_dir, char *err, size_t errlen)
{
    const char **text = calloc(c->nexprs, sizeof *text);
    char **owned = calloc(c->nexprs, sizeof *owned);
    unsigned *flags = calloc(c->nexprs, sizeof *flags), *ids = calloc(c->nexprs, sizeof *ids);
    int rc = -1;
    if (!text || !owned || !flags || !ids) goto out_of_memory;
    size_t e = 0;
    for (size_t r = 0; r < c->nrules; r++) {
        const struct cw_rule *rule = c->rules[r];
        for (size_t i = 0; i < rule->npatterns; i++, e++) {
            if (!(owned[e] = keyword_expression(rule->patterns[i]))) goto out_of_memory;
            text[e] = owned[e];
            c->exprs[e] = (struct expr){(unsigned)r, rule->patterns[i]};
        }
        for (size_t i = 0; i < rule->nregex; i++, e++) {
            if (!(owned[e] = fold_source(rule->regex[i], true))) goto out_of_memory;
            text[e] = owned[e];
            c->exprs[e] = (struct expr){(unsigned)r, rule->regex[i]};
        }
    }
    for (size_t i = 0; i < c->nexprs; i++) {
        /* One report per expression per scan is all the rules need. */
        flags[i] = HS_FLAG_CASELESS | HS_FLAG_UTF8 | HS_FLAG_SINGLEMATCH;
        ids[i] = (unsigned)i;
    }
    if (load_or_compile(c, text, flags, ids, cache_dir, err, errlen) != 0) goto out;
    if (hs_alloc_scratch(c->db, &c->scratch) != HS_SUCCESS) {
        snprintf(err, errlen, "classification rules: cannot allocate scan space");
        goto out;
    }
    rc = 0;
    goto out;
out_of_memory:
    snprintf(err, errlen, "classification rules: out of memory");
out:
    for (size_t i = 0; owned && i < c->nexprs; i++) free(owned[i]);
    free(owned);
    free(text);
    free(flags);
    free(ids);
    return rc;
}

rt_classifier *rt_classifier_new(const cw_chain *chain, const char *cache_dir, char *err,
                                 size_t errlen)
{
    rt_classifier *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    c->chain = chain;
    c->nrules = cw_chain_rule_count(chain);
    c->nexprs = count_expressions(chain);
    c->rules = calloc(c->nrules + 1, sizeof *c->rules);
    c->exprs = calloc(c->nexprs + 1, sizeof *c->exprs);
    c->hit = calloc(c->nrules + 1, sizeof *c->hit);
    c->touched = calloc(c->nrules + 1, sizeof *c->touched);
    c->folded = malloc(RT_CLASSIFY_MAX_TEXT);
    if (!c->rules || !c->exprs || !c->hit || !c->touched || !c->folded) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < c->nrules; i++) c->rules[i] = cw_chain_rule_at(chain, i);
    if (c->nexprs && compile(c, cache_dir, err, errlen) != 0) goto fail;
    return c;
fail:
    rt_classifier_free(c);
    return NULL;
}

void rt_classifier_free(rt_classifier *c)
{
    if (!c) return;
    hs_free_scratch(c->scratch);
    hs_free_database(c->db);
    free(c->rules);
    free(c->exprs);
    free(c->hit);
    free(c->touched);
    free(c->folded);
    free(c);
}

size_t rt_classifier_expressions(const rt_classifier *c) { return c ? c->nexprs : 0; }

const struct rt_classifier_origin *rt_classifier_origin(const rt_classifier *c)
{
    return &c->origin;
}

/* Copies at most RT_CLASSIFY_MAX_TEXT bytes of in (whole characters only) into c->folded,
 * full-width ASCII forms (U+FF01..U+FF5E) and the ideographic space as ASCII. Returns the
 * length, or -1 when in is not valid UTF-8. */
static long fold(rt_classifier *c, const char *in, size_t len)
{
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, o = 0;
    while (i < len) {
        size_t n = utf8_seq(s + i, len - i);
        if (n == 0) return -1;
        if (o + n > RT_CLASSIFY_MAX_TEXT) break;
        char ascii = folded_ascii(s + i, n);
        if (ascii)
            c->folded[o++] = ascii;
        else {
            memcpy(c->folded + o, s + i, n);
            o += n;
        }
        i += n;
    }
    return (long)o;
}

static int on_match(unsigned int id, unsigned long long from, unsigned long long to,
                    unsigned int flags, void *ctx)
{
    (void)from, (void)to, (void)flags;
    rt_classifier *c = ctx;
    const struct expr *x = &c->exprs[id];
    /* Matches come in the order they end in the text: the rule keeps its first. */
    if (!c->hit[x->rule]) {
        c->hit[x->rule] = x->source;
        c->touched[c->ntouched++] = x->rule;
    }
    return 0;
}

static bool when_holds(const struct cw_rule *r, const struct rt_case_text *in)
{
    const struct cw_case_facts f = {
        .channel = in->channel, .site = in->site, .has_tenant = in->has_tenant};
    return cw_match_holds(&r->when, &f);
}

static void decide(struct rt_verdict *v, enum rt_field f, int value, const char *rule_id,
                   const char *matched)
{
    if (v->why[f].set) return;
    v->why[f] = (struct rt_reason){rule_id, matched, value, true};
}

/* Each field the rule sets that no earlier rule decided. */
static void apply_rule(struct rt_verdict *v, const struct cw_rule *r, const char *matched)
{
    if (r->set.type) decide(v, RT_TYPE, r->set.type, r->id, matched);
    if (r->set.category) decide(v, RT_CATEGORY, r->set.category, r->id, matched);
    if (r->set.urgency) decide(v, RT_URGENCY, r->set.urgency, r->id, matched);
    if (r->set.validity) decide(v, RT_VALIDITY, r->set.validity, r->id, matched);
    if (r->set.department_kind != CW_DEPT_UNSPECIFIED)
        decide(v, RT_DEPARTMENT, (int)r->set.department_kind, r->id, matched);
}

/* Fields no rule set: the hints, the tenant's "stops trading", then the defaults. */
static void fill_in(struct rt_verdict *v, const struct rt_case_text *in)
{
    if (in->type_hint > 0 && in->type_hint <= cw_vocab_max(CW_VOCAB_CASE_TYPE))
        decide(v, RT_TYPE, in->type_hint, "hint", "");
    if (in->category_hint > 0 && in->category_hint <= cw_vocab_max(CW_VOCAB_CATEGORY))
        decide(v, RT_CATEGORY, in->category_hint, "hint", "");
    /* A tenant that cannot trade is important whatever the words (domain.md); a rule may
     * still have made it an emergency. */
    if (in->stops_trading && (!v->why[RT_URGENCY].set ||
                              v->why[RT_URGENCY].value < CASEWIRE__V1__URGENCY__URGENCY_IMPORTANT))
        v->why[RT_URGENCY] =
            (struct rt_reason){"stops_trading", "", CASEWIRE__V1__URGENCY__URGENCY_IMPORTANT, true};
    decide(v, RT_TYPE, CASEWIRE__V1__CASE_TYPE__CASE_TYPE_COMPLAINT, "default", "");
    decide(v, RT_CATEGORY, CASEWIRE__V1__CATEGORY__CATEGORY_OTHER, "default", "");
    decide(v, RT_URGENCY, CASEWIRE__V1__URGENCY__URGENCY_GENERAL, "default", "");
    decide(v, RT_VALIDITY, CASEWIRE__V1__VALIDITY__VALIDITY_VALID, "default", "");
    v->type = v->why[RT_TYPE].value;
    v->category = v->why[RT_CATEGORY].value;
    v->urgency = v->why[RT_URGENCY].value;
    v->validity = v->why[RT_VALIDITY].value;
    v->department_kind = v->why[RT_DEPARTMENT].set ? (enum cw_dept_kind)v->why[RT_DEPARTMENT].value
                                                   : CW_DEPT_UNSPECIFIED;
}

int rt_classify(rt_classifier *c, const struct rt_case_text *in, struct rt_verdict *out, char *err,
                size_t errlen)
{
    memset(out, 0, sizeof *out);
    long len = fold(c, in->text ? in->text : "", in->text ? in->len : 0);
    if (len < 0) {
        snprintf(err, errlen, "text is not valid UTF-8");
        return -1;
    }
    c->ntouched = 0;
    if (c->db && len > 0 &&
        hs_scan(c->db, c->folded, (unsigned)len, 0, c->scratch, on_match, c) != HS_SUCCESS) {
        for (size_t i = 0; i < c->ntouched; i++) c->hit[c->touched[i]] = NULL;
        snprintf(err, errlen, "classification scan failed");
        return -1;
    }
    /* Touched rules in evaluation order: the first rule to set a field decides it. */
    for (size_t r = 0; r < c->nrules && c->ntouched; r++) {
        if (!c->hit[r]) continue;
        if (when_holds(c->rules[r], in)) {
            out->rules_matched++;
            apply_rule(out, c->rules[r], c->hit[r]);
        }
    }
    for (size_t i = 0; i < c->ntouched; i++) c->hit[c->touched[i]] = NULL;
    fill_in(out, in);
    return 0;
}
