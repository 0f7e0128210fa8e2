#include "gwload.h"

/* ---- verify: the answers against what is on Kafka ---- */

/* A string-keyed hash table of records; no deletion. */
struct rec {
    char *key;
    char *a, *b, *c; /* meaning depends on the table */
    int n, m;
    struct rec *next;
};
struct table {
    struct rec *slot[16384];
};

static unsigned hash_str(const char *s)
{
    unsigned h = 2166136261u;
    while (*s) h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

static struct rec *table_get(struct table *t, const char *key, bool create)
{
    unsigned s = hash_str(key) % 16384;
    for (struct rec *r = t->slot[s]; r; r = r->next)
        if (strcmp(r->key, key) == 0) return r;
    if (!create) return NULL;
    struct rec *r = calloc(1, sizeof *r);
    if (!r || !(r->key = strdup(key))) die("calloc");
    r->next = t->slot[s];
    t->slot[s] = r;
    return r;
}

static void set_str(char **dst, const char *v)
{
    free(*dst);
    if (!(*dst = strdup(v ? v : ""))) die("strdup");
}

/* What the gateway puts in CaseSubmitted.idempotency_key for a POST /v1/cases key: the hex
 * SHA-256 of "<route>\n<key>" (services/gateway/store.c, route 0 = POST /v1/cases). */
static void idem_hash(const char *key, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    char in[300];
    int n = snprintf(in, sizeof in, "0\n%s", key);
    if (!EVP_Digest(in, (size_t)n, md, &len, EVP_sha256(), NULL)) die("EVP_Digest");
    for (unsigned i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static const char *jpath_str(json_t *root, const char *a, const char *b, const char *c)
{
    json_t *v = json_object_get(root, a);
    if (b) v = json_object_get(v, b);
    if (c) v = json_object_get(v, c);
    return json_string_value(v);
}

int run_verify(const struct opts *o)
{
    const char *tail = opt(o, "--tail", NULL);
    const char *keys = opt(o, "--keys", NULL);
    if (!tail) {
        fprintf(stderr, "gwload verify: --tail FILE required\n");
        return 2;
    }
    static struct table by_case, by_idem, by_ref, by_caseno, answers;
    /* Kafka: every CaseSubmitted record. */
    FILE *f = fopen(tail, "r");
    if (!f) die(tail);
    char *line = NULL;
    size_t cap = 0;
    long records = 0, undecodable = 0, copies = 0, event_id_mismatch = 0, caseno_shared = 0;
    while (getline(&line, &cap, f) > 0) {
        json_error_t je;
        json_t *j = json_loads(line, 0, &je);
        if (!j) {
            undecodable++;
            continue;
        }
        const char *case_id = jpath_str(j, "event", "meta", "case_id");
        const char *event_id = jpath_str(j, "event", "meta", "event_id");
        const char *idem = jpath_str(j, "event", "case_submitted", "idempotency_key");
        const char *ref = jpath_str(j, "event", "case_submitted", "external_ref");
        const char *case_no = jpath_str(j, "event", "case_submitted", "case_no");
        if (!case_id || !event_id || !case_no) {
            undecodable++;
            json_decref(j);
            continue;
        }
        records++;
        struct rec *r = table_get(&by_case, case_id, true);
        if (r->n++ == 0) {
            set_str(&r->a, event_id);
            set_str(&r->b, case_no);
            set_str(&r->c, idem);
            struct rec *cn = table_get(&by_caseno, case_no, true);
            if (cn->n++ > 0) caseno_shared++;
            /* distinct case ids per idempotency hash and per external_ref */
            if (idem && *idem) table_get(&by_idem, idem, true)->n++;
            if (ref && *ref) {
                struct rec *rr = table_get(&by_ref, ref, true);
                if (rr->n++ == 0) set_str(&rr->a, case_id);
            }
        } else {
            copies++;
            if (strcmp(r->a, event_id) != 0 || strcmp(r->b, case_no) != 0) event_id_mismatch++;
        }
        json_decref(j);
    }
    fclose(f);

    /* The 202 answers. */
    long answered = 0, dup_answers = 0, answer_not_on_kafka = 0, answer_caseno_mismatch = 0,
         answer_wrong_key = 0;
    for (int i = 0; i + 1 < o->argc; i++) {
        if (strcmp(o->argv[i], "--answers") != 0) continue;
        FILE *a = fopen(o->argv[i + 1], "r");
        if (!a) die(o->argv[i + 1]);
        while (getline(&line, &cap, a) > 0) {
            char key[200], id[64], no[64];
            int status;
            if (sscanf(line, "%199s %63s %63s %d", key, id, no, &status) != 4 || status != 202)
                continue;
            answered++;
            struct rec *an = table_get(&answers, key, true);
            if (an->n++ > 0) {
                dup_answers++;
                if (strcmp(an->a, id) != 0) answer_wrong_key++;
                continue;
            }
            set_str(&an->a, id);
            struct rec *r = table_get(&by_case, id, false);
            if (!r) {
                answer_not_on_kafka++;
                if (answer_not_on_kafka <= 5)
                    printf("# 202 not on Kafka: %s case_id=%s case_no=%s\n", key, id, no);
                continue;
            }
            if (strcmp(r->b, no) != 0) answer_caseno_mismatch++;
            char hx[65];
            idem_hash(key, hx);
            if (!r->c || strcmp(r->c, hx) != 0) {
                answer_wrong_key++;
                if (answer_wrong_key <= 5)
                    printf("# %s: Kafka's idempotency_key for case %s is %s, expected %s\n", key,
                           id, r->c ? r->c : "-", hx);
            }
        }
        fclose(a);
    }

    /* Per key: distinct case ids on Kafka (by hash and by external_ref). Keys are the
     * expected ones (--keys) or else the answered ones. */
    long keys_checked = 0, keys_not_answered = 0, keys_multi = 0, keys_absent = 0;
    char prefix[100] = "";
    long clients = 0, count = 0;
    if (keys && sscanf(keys, "%99[^:]:%ld:%ld", prefix, &clients, &count) != 3) {
        fprintf(stderr, "gwload verify: --keys PREFIX:CLIENTS:COUNT\n");
        return 2;
    }
    for (long c = 0; keys && c < clients; c++) {
        long share = count / clients + (c < count % clients ? 1 : 0);
        for (long i = 0; i < share; i++) {
            char key[200], hx[65];
            snprintf(key, sizeof key, "%s-%ld-%ld", prefix, c, i);
            keys_checked++;
            if (!table_get(&answers, key, false)) {
                keys_not_answered++;
                if (keys_not_answered <= 5) printf("# never answered 202: %s\n", key);
            }
            idem_hash(key, hx);
            struct rec *ri = table_get(&by_idem, hx, false);
            struct rec *rr = table_get(&by_ref, key, false);
            int ni = ri ? ri->n : 0, nr = rr ? rr->n : 0;
            if (ni == 0 || nr == 0) keys_absent++;
            if (ni > 1 || nr > 1) {
                keys_multi++;
                if (keys_multi <= 5)
                    printf("# %s: %d case ids by hash, %d by external_ref\n", key, ni, nr);
            }
        }
    }
    if (!keys) {
        for (int s = 0; s < 16384; s++)
            for (struct rec *an = answers.slot[s]; an; an = an->next) {
                char hx[65];
                idem_hash(an->key, hx);
                keys_checked++;
                struct rec *ri = table_get(&by_idem, hx, false);
                struct rec *rr = table_get(&by_ref, an->key, false);
                int ni = ri ? ri->n : 0, nr = rr ? rr->n : 0;
                if (ni == 0 || nr == 0) keys_absent++;
                if (ni > 1 || nr > 1) keys_multi++;
            }
    }
    printf("kafka_records=%ld kafka_cases=%ld kafka_copies=%ld undecodable=%ld\n", records,
           records - copies, copies, undecodable);
    printf("event_id_mismatch=%ld caseno_shared=%ld\n", event_id_mismatch, caseno_shared);
    printf("answered=%ld dup_answers=%ld answer_not_on_kafka=%ld answer_caseno_mismatch=%ld "
           "answer_wrong_key=%ld\n",
           answered, dup_answers, answer_not_on_kafka, answer_caseno_mismatch, answer_wrong_key);
    printf("keys_checked=%ld keys_not_answered=%ld keys_multi_case=%ld keys_absent=%ld\n",
           keys_checked, keys_not_answered, keys_multi, keys_absent);
    free(line);
    return 0;
}
