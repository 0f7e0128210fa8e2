/*
 * Classification: what a case is (type, category, urgency, validity, and optionally which
 * kind of department answers for it), decided by the chain's classification rules.
 *
 * Every keyword and regex of every rule is compiled once, at start-up, into one Vectorscan
 * database, so one pass over the text finds every rule that matches however many rules there
 * are. Then the rules are read in evaluation order (priority, then file order) and, for each
 * field, the first matching rule that sets it decides (docs/chain.md). A field no rule sets
 * takes the caller's hint (type, category) or the default (complaint, other, general, valid).
 * A tenant that says the problem stops it trading makes the case at least important.
 *
 * Keywords are literal and case-insensitive. A keyword that begins with a Latin letter or
 * digit matches only at the start of a word ("rat" does not match "separate") and one that
 * ends with a letter may take an English ending: s, es, ed, ing ("toilet" matches
 * "toilets"), with a final e or consonant-y replaced ("smoke": "smoking"; "carry":
 * "carried") and a final consonant after a vowel doubled ("stop": "stopped"). Chinese has
 * no word boundaries, so Chinese keywords match anywhere. Full-width forms (ＡＣ, １２, "，",
 * "？") and the ideographic space are read as their ASCII forms, in the text and in the
 * keywords and regexes alike, so "，" in a rule matches "，" and "," in a text.
 *
 * Each decision names its reason (rule id and the keyword that matched, or "hint",
 * "stops_trading", "default"), so every routed case can be explained.
 */
#ifndef RT_CLASSIFY_H
#define RT_CLASSIFY_H

#include <stdbool.h>
#include <stddef.h>

#include "chain.h"

/* Only this much of a text is read: a complaint longer than this says what it is about in
 * its first 64 KiB. */
#define RT_CLASSIFY_MAX_TEXT 65536

typedef struct rt_classifier rt_classifier;

/* What classification looks at. */
struct rt_case_text {
    const char *text; /* UTF-8 (checked: invalid input is refused, never scanned) */
    size_t len;
    int channel; /* Casewire__V1__Channel */
    const struct cw_site *site;
    bool has_tenant;
    int type_hint, category_hint; /* proto enum values; 0: none */
    bool stops_trading;
};

enum rt_field { RT_TYPE, RT_CATEGORY, RT_URGENCY, RT_VALIDITY, RT_DEPARTMENT, RT_FIELDS };

/* Why a field has its value. Strings live as long as the chain. */
struct rt_reason {
    const char *rule_id; /* a rule's id, or "hint", "stops_trading", "default" */
    const char *matched; /* the keyword or regex that matched; "" for the others */
    int value;           /* the value set (department: enum cw_dept_kind) */
    bool set;            /* false: nothing decided this field (department only) */
};

struct rt_verdict {
    int type, category, urgency, validity; /* proto enum values, never 0 */
    enum cw_dept_kind department_kind;     /* CW_DEPT_UNSPECIFIED: the route decides */
    struct rt_reason why[RT_FIELDS];       /* indexed by enum rt_field */
    unsigned rules_matched;                /* rules whose text and conditions matched */
};

/* Compiles the chain's rules, or loads them from cache_dir when it holds the compiled form of
 * exactly these rules (rulecache.h; NULL or "": no cache). NULL with the reason in err (a
 * rule's regex Vectorscan cannot compile: "classification rule price-dispute: regex
 * \"...\": <why>"); a cache that cannot be read or written is never an error. The chain must
 * outlive the classifier. */
rt_classifier *rt_classifier_new(const cw_chain *chain, const char *cache_dir, char *err,
                                 size_t errlen);
void rt_classifier_free(rt_classifier *c);

/* Number of keywords and regexes compiled. */
size_t rt_classifier_expressions(const rt_classifier *c);

/* How the rules were made ready, for the start-up log. */
struct rt_classifier_origin {
    bool from_cache;      /* loaded from the cache, not compiled */
    bool stored;          /* compiled and stored in the cache */
    double ms;            /* time to load or compile */
    char cache_note[512]; /* why the cache was not used or not written; "" otherwise */
};
const struct rt_classifier_origin *rt_classifier_origin(const rt_classifier *c);

/* 0 with *out filled, or -1 with the reason in err (text not valid UTF-8, scan failure).
 * Not thread-safe: one classifier per thread (it owns the scan's scratch space). */
int rt_classify(rt_classifier *c, const struct rt_case_text *in, struct rt_verdict *out, char *err,
                size_t errlen);

const char *rt_field_name(enum rt_field f);

#endif
