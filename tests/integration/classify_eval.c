/*
 * classify_eval: the router's classifier against a labelled set (tests/data/classification.jsonl,
 * described in tests/data/README.md), with a chain's rules. Prints one line per split (all,
 * dev, holdout, fresh; a split with no samples prints n=0) with the accuracy of each field and the
 * recall and precision of emergencies, then the recall of each category; with --misses, every wrong
 * field with its text and the rule that decided it (what to read when tuning the rules).
 *
 *   classify_eval --chain deploy/chain.example.yaml --data tests/data/classification.jsonl
 *                 [--rules-cache DIR] [--misses]
 *
 * --rules-cache keeps the compiled rules in DIR as the router does (docs/chain.md), so a second
 * run with the same rules skips the compile.
 *
 * Exit 0 when it ran (the figures are judged by tests/integration/classification.sh), 2 on bad
 * input: an unreadable file, a line that is not an object with the labels, an unknown label.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "chain.h"
#include "classify.h"
#include "domain.h"

enum { SPLIT_ALL, SPLIT_DEV, SPLIT_HOLDOUT, SPLIT_FRESH, SPLITS };
static const char *const split_names[SPLITS] = {"all", "dev", "holdout", "fresh"};

/* The split a sample's "split" names (tests/data/README.md), or -1. */
static int split_index(const char *name)
{
    for (int i = SPLIT_DEV; i < SPLITS; i++)
        if (strcmp(name, split_names[i]) == 0) return i;
    return -1;
}

struct tally {
    unsigned n, right[4]; /* type, category, urgency, validity */
    unsigned emergencies, emergencies_found, said_emergency;
    unsigned cat_n[16], cat_right[16];
};

struct sample {
    const char *id, *text, *split;
    int channel, want[4];
};

static int label(json_t *o, const char *key, enum cw_vocab v, const char *id)
{
    const char *s = json_string_value(json_object_get(o, key));
    int value = s ? cw_vocab_parse(v, s) : -1;
    if (value <= 0) fprintf(stderr, "classify_eval: %s: bad or missing \"%s\"\n", id, key);
    return value;
}

static int read_sample(json_t *o, struct sample *s)
{
    s->id = json_string_value(json_object_get(o, "id"));
    s->text = json_string_value(json_object_get(o, "text"));
    s->split = json_string_value(json_object_get(o, "split"));
    if (!s->id || !s->text) {
        fprintf(stderr, "classify_eval: a line without \"id\" or \"text\"\n");
        return -1;
    }
    if (!s->split) s->split = "dev";
    if (split_index(s->split) < 0) {
        fprintf(stderr, "classify_eval: %s: unknown split \"%s\" (dev, holdout or fresh)\n", s->id,
                s->split);
        return -1;
    }
    s->channel = label(o, "channel", CW_VOCAB_CHANNEL, s->id);
    s->want[0] = label(o, "type", CW_VOCAB_CASE_TYPE, s->id);
    s->want[1] = label(o, "category", CW_VOCAB_CATEGORY, s->id);
    s->want[2] = label(o, "urgency", CW_VOCAB_URGENCY, s->id);
    s->want[3] = label(o, "validity", CW_VOCAB_VALIDITY, s->id);
    for (int i = 0; i < 4; i++)
        if (s->want[i] <= 0) return -1;
    return s->channel > 0 ? 0 : -1;
}

static void count(struct tally *t, const struct sample *s, const int got[4])
{
    t->n++;
    for (int i = 0; i < 4; i++) t->right[i] += got[i] == s->want[i];
    int emergency = CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY;
    t->emergencies += s->want[2] == emergency;
    t->emergencies_found += s->want[2] == emergency && got[2] == emergency;
    t->said_emergency += got[2] == emergency;
    if (s->want[1] > 0 && s->want[1] < 16) {
        t->cat_n[s->want[1]]++;
        t->cat_right[s->want[1]] += got[1] == s->want[1];
    }
}

static double ratio(unsigned a, unsigned b) { return b ? (double)a / b : 0.0; }

static void report(const struct tally *t, const char *split)
{
    printf("split=%s n=%u type=%.3f category=%.3f urgency=%.3f validity=%.3f "
           "emergency_recall=%.3f emergencies=%u emergencies_found=%u emergency_precision=%.3f\n",
           split, t->n, ratio(t->right[0], t->n), ratio(t->right[1], t->n),
           ratio(t->right[2], t->n), ratio(t->right[3], t->n),
           ratio(t->emergencies_found, t->emergencies), t->emergencies, t->emergencies_found,
           ratio(t->emergencies_found, t->said_emergency));
}

static const char *field_value(int field, int v)
{
    static const enum cw_vocab vocab[4] = {CW_VOCAB_CASE_TYPE, CW_VOCAB_CATEGORY, CW_VOCAB_URGENCY,
                                           CW_VOCAB_VALIDITY};
    const char *s = cw_vocab_name(vocab[field], v);
    return s ? s : "?";
}

static void print_misses(const struct sample *s, const int got[4], const struct rt_verdict *v)
{
    for (int i = 0; i < 4; i++) {
        if (got[i] == s->want[i]) continue;
        printf("miss %s %s: got %s (%s \"%s\") want %s: %s\n", s->id,
               rt_field_name((enum rt_field)i), field_value(i, got[i]), v->why[i].rule_id,
               v->why[i].matched, field_value(i, s->want[i]), s->text);
    }
}

int main(int argc, char **argv)
{
    const char *chain_path = NULL, *data_path = NULL, *cache_dir = NULL;
    int misses = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--chain") == 0 && i + 1 < argc)
            chain_path = argv[++i];
        else if (strcmp(argv[i], "--data") == 0 && i + 1 < argc)
            data_path = argv[++i];
        else if (strcmp(argv[i], "--rules-cache") == 0 && i + 1 < argc)
            cache_dir = argv[++i];
        else if (strcmp(argv[i], "--misses") == 0)
            misses = 1;
        else {
            fprintf(
                stderr,
                "usage: classify_eval --chain FILE --data FILE [--rules-cache DIR] [--misses]\n");
            return 2;
        }
    }
    if (!chain_path || !data_path) {
        fprintf(stderr,
                "usage: classify_eval --chain FILE --data FILE [--rules-cache DIR] [--misses]\n");
        return 2;
    }
    cw_chain *chain = cw_chain_load(chain_path, NULL, NULL);
    if (!chain) return 2;
    char err[512];
    rt_classifier *cls = rt_classifier_new(chain, cache_dir, err, sizeof err);
    if (!cls) {
        fprintf(stderr, "classify_eval: %s\n", err);
        return 2;
    }
    FILE *f = fopen(data_path, "r");
    if (!f) {
        perror(data_path);
        return 2;
    }
    struct tally tally[SPLITS] = {0};
    char *line = NULL;
    size_t cap = 0;
    int lineno = 0, rc = 0;
    while (getline(&line, &cap, f) > 0) {
        lineno++;
        if (line[strspn(line, " \t\r\n")] == '\0') continue;
        json_error_t jerr;
        json_t *o = json_loads(line, 0, &jerr);
        struct sample s;
        if (!json_is_object(o) || read_sample(o, &s) != 0) {
            fprintf(stderr, "classify_eval: %s:%d: not a labelled sample\n", data_path, lineno);
            json_decref(o);
            rc = 2;
            break;
        }
        struct rt_case_text in = {.text = s.text,
                                  .len = strlen(s.text),
                                  .channel = s.channel,
                                  .has_tenant =
                                      s.channel == CASEWIRE__V1__CHANNEL__CHANNEL_TENANT_API,
                                  .site = cw_chain_site_at(chain, 0)};
        struct rt_verdict v;
        if (rt_classify(cls, &in, &v, err, sizeof err) != 0) {
            fprintf(stderr, "classify_eval: %s: %s\n", s.id, err);
            json_decref(o);
            rc = 2;
            break;
        }
        int got[4] = {v.type, v.category, v.urgency, v.validity};
        count(&tally[SPLIT_ALL], &s, got);
        count(&tally[split_index(s.split)], &s, got);
        if (misses) print_misses(&s, got, &v);
        json_decref(o);
    }
    free(line);
    fclose(f);
    if (rc == 0) {
        for (int i = 0; i < SPLITS; i++) report(&tally[i], split_names[i]);
        for (int c = 1; c < 16; c++)
            if (tally[SPLIT_ALL].cat_n[c])
                printf("category_recall %s=%.3f (%u/%u)\n", cw_category_name(c),
                       ratio(tally[SPLIT_ALL].cat_right[c], tally[SPLIT_ALL].cat_n[c]),
                       tally[SPLIT_ALL].cat_right[c], tally[SPLIT_ALL].cat_n[c]);
    }
    rt_classifier_free(cls);
    cw_chain_free(chain);
    return rc;
}
