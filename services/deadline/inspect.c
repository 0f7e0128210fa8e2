#include "inspect.h"

#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clocks.h"
#include "domain.h"
#include "httpd.h"
#include "ids.h"
#include "log.h"

#define CASES_PREFIX "/v1/timers/cases/"
#define COUNTS_PATH "/v1/timers/counts"
#define SCAN_STEP 1000 /* payloads per HSCAN: about 250 KB a reply */
#define MAX_WAITERS 32 /* requests waiting for the count that runs */
#define MAX_SITES 4096 /* sites counted; more are summed under "(other)" */
#define SITE_MAX 16

enum { N_WARNINGS, N_BREACHES, N_PAST_DUE, N_COUNTS };

struct site_counts {
    char site[SITE_MAX];
    long long n[CW_CHAIN_CLOCKS][N_COUNTS];
};

struct waiter {
    struct evhttp_request *req;
    char site[SITE_MAX]; /* "" for every site */
};

/* The count that runs: shard after shard, its totals, then every payload. */
struct scan {
    unsigned shard;
    char cursor[32];
    int64_t now_ms;     /* Redis's time at the last shard's totals */
    int64_t start_ms;   /* at the first */
    int64_t mono_start; /* when the count began (monotonic ms), for took_ms */
    long long waiting, firing, overdue, all, unreadable;
    struct site_counts *sites;
    size_t nsites, cap;
    struct site_counts other; /* sites past MAX_SITES */
    bool other_used;
};

struct dl_inspect {
    dl_timers *timers;
    const cw_chain *chain;
    struct scan *scan;
    struct waiter waiters[MAX_WAITERS];
    size_t nwaiters;
};

dl_inspect *dl_inspect_new(dl_timers *timers, const cw_chain *chain)
{
    dl_inspect *in = calloc(1, sizeof *in);
    if (!in) return NULL;
    in->timers = timers;
    in->chain = chain;
    return in;
}

static void scan_free(struct scan *s)
{
    if (!s) return;
    free(s->sites);
    free(s);
}

void dl_inspect_free(dl_inspect *in)
{
    if (!in) return;
    scan_free(in->scan);
    free(in);
}

/* ------------------------------------------------------------ answers ---- */

static void reply(struct evhttp_request *req, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        cw_httpd_reply_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    cw_httpd_reply_json(req, status, s);
    free(s);
}

static void unavailable(struct evhttp_request *req, const char *err)
{
    char msg[256];
    snprintf(msg, sizeof msg, "Redis did not answer (%s): retry when /readyz is ok", err);
    cw_httpd_reply_error(req, 503, "unavailable", msg, NULL);
}

/* "2026-11-24T22:38:27.123Z" */
static void iso_ms(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms % 1000));
}

static json_t *time_pair(json_t *o, const char *name, int64_t ms)
{
    char iso[32], key[48];
    iso_ms(ms, iso);
    snprintf(key, sizeof key, "%s_ms", name);
    json_object_set_new(o, name, json_string(iso));
    json_object_set_new(o, key, json_integer(ms));
    return o;
}

static const char *str_of(const redisReply *e)
{
    return e && (e->type == REDIS_REPLY_STRING || e->type == REDIS_REPLY_STATUS) ? e->str : NULL;
}

static bool ms_of(const char *s, int64_t *out)
{
    if (!s || !*s) return false;
    char *end;
    double v = strtod(s, &end); /* scores come back as "1764024000000" or "1.764024e+12" */
    if (*end || v < 0 || v > 1e14) return false;
    *out = (int64_t)v;
    return true;
}

/* ------------------------------------------------------- one case ---- */

struct timer_row {
    const char *id, *payload;
    char clock[DL_CLOCK_MAX], stage[DL_STAGE_MAX];
    unsigned gen;
    int64_t due_ms, lease_ms;
    int64_t sort_ms; /* its due time: from the due index, else from its payload */
    bool waiting, leased;
};

static int by_due(const void *a, const void *b)
{
    const struct timer_row *x = a, *y = b;
    return x->sort_ms < y->sort_ms ? -1 : x->sort_ms > y->sort_ms;
}

static json_t *clock_entry(json_t *clocks, const char *clock)
{
    json_t *c = json_object_get(clocks, clock);
    if (!c) {
        c = json_pack("{s:i,s:[]}", "generation", 0, "timers");
        json_object_set_new(clocks, clock, c);
    }
    return c;
}

static json_t *timer_json(const struct timer_row *t, int64_t now)
{
    json_t *o = json_pack("{s:s,s:I,s:s}", "id", t->id, "generation", (json_int_t)t->gen, "stage",
                          t->stage);
    if (!o) return NULL;
    struct dl_payload p;
    bool known = t->payload && dl_payload_decode(t->payload, strlen(t->payload), &p) == 0;
    int64_t due = t->waiting ? t->due_ms : known ? p.at_ms : 0;
    if (known) {
        json_object_set_new(o, "kind", json_string(p.warn_pct ? "warning" : "breach"));
        if (p.warn_pct)
            json_object_set_new(o, "percent", json_integer(p.warn_pct));
        else
            json_object_set_new(o, "ladder_level", json_integer(p.level));
        time_pair(o, "clock_due", p.clock_due_ms);
    }
    if (due) {
        time_pair(o, "due", due);
        json_object_set_new(o, "due_in_ms", json_integer(due - now));
    }
    /* A lease that ran out: the timer waits for the next claim (a worker died or stalled). */
    const char *state = t->leased && t->lease_ms > now ? "firing"
                        : t->leased                    ? "lease_expired"
                        : !t->waiting                  ? "missing"
                        : t->due_ms <= now             ? "overdue"
                                                       : "waiting";
    json_object_set_new(o, "state", json_string(state));
    if (t->leased) time_pair(o, "lease_until", t->lease_ms);
    if (!known) json_object_set_new(o, "payload_unreadable", json_true());
    return o;
}

static json_t *facts_json(const redisReply *fields)
{
    json_t *facts = json_object();
    for (size_t i = 0; facts && i + 1 < fields->elements; i += 2) {
        const char *f = str_of(fields->element[i]), *v = str_of(fields->element[i + 1]);
        if (!f || !v || strncmp(f, "f:", 2) != 0) continue;
        if (strcmp(f + 2, "urgency") == 0) {
            const char *name = cw_urgency_name(atoi(v));
            json_object_set_new(facts, "urgency", json_string(name ? name : v));
        } else {
            json_object_set_new(facts, f + 2, json_string(v));
        }
    }
    return facts;
}

struct show_call {
    dl_inspect *in;
    struct evhttp_request *req;
    char case_id[DL_CASE_ID_MAX];
};

static json_t *case_json(const char *case_id, const redisReply *r, int64_t now)
{
    const redisReply *fields = r->element[1];
    json_t *clocks = json_object();
    json_t *o =
        json_pack("{s:s,s:i,s:I,s:o}", "case_id", case_id, "shard", (int)dl_shard_of(case_id),
                  "events_applied", (json_int_t)r->element[2]->integer, "clocks", clocks);
    if (!o) return NULL;
    time_pair(o, "now", now);
    json_object_set_new(o, "facts", facts_json(fields));
    for (size_t i = 0; i + 1 < fields->elements; i += 2) {
        const char *f = str_of(fields->element[i]), *v = str_of(fields->element[i + 1]);
        if (f && v && strncmp(f, "gen:", 4) == 0)
            json_object_set_new(clock_entry(clocks, f + 4), "generation", json_integer(atoll(v)));
    }
    size_t n = (r->elements - 3) / 4;
    struct timer_row *rows = n ? calloc(n, sizeof *rows) : NULL;
    if (n && !rows) {
        json_decref(o);
        return NULL;
    }
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *const *e = &r->element[3 + 4 * i];
        struct timer_row *t = &rows[k];
        char case_part[DL_CASE_ID_MAX];
        t->id = str_of(e[0]);
        if (!t->id || dl_timer_id_parse(t->id, case_part, t->clock, &t->gen, t->stage) != 0)
            continue;
        t->waiting = ms_of(str_of(e[1]), &t->due_ms);
        t->leased = ms_of(str_of(e[2]), &t->lease_ms);
        const char *pl = str_of(e[3]);
        t->payload = pl && *pl ? pl : NULL;
        struct dl_payload p;
        t->sort_ms = t->waiting ? t->due_ms
                     : t->payload && dl_payload_decode(t->payload, strlen(t->payload), &p) == 0
                         ? p.at_ms
                         : INT64_MAX;
        k++;
    }
    if (k > 1) qsort(rows, k, sizeof *rows, by_due); /* rows is NULL when there are none */
    for (size_t i = 0; i < k; i++)
        json_array_append_new(json_object_get(clock_entry(clocks, rows[i].clock), "timers"),
                              timer_json(&rows[i], now));
    free(rows);
    json_object_set_new(o, "armed", json_integer((json_int_t)k));
    return o;
}

static void shown(void *arg, const redisReply *r, const char *err)
{
    struct show_call *sc = arg;
    int64_t now = 0;
    if (err) {
        unavailable(sc->req, err);
    } else if (!r || r->type != REDIS_REPLY_ARRAY || r->elements < 3 || (r->elements - 3) % 4 ||
               !ms_of(str_of(r->element[0]), &now) || r->element[1]->type != REDIS_REPLY_ARRAY ||
               r->element[2]->type != REDIS_REPLY_INTEGER) {
        cw_error("deadline.inspect_bad_reply", "case=%s", sc->case_id);
        cw_httpd_reply_error(sc->req, 500, "internal", "unexpected reply from Redis (logged)",
                             NULL);
    } else if (r->element[1]->elements == 0 && r->element[2]->integer == 0) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "no clock state for case %s: not routed yet, or not a case id (the case id, not "
                 "the case number)",
                 sc->case_id);
        cw_httpd_reply_error(sc->req, 404, "not_found", msg, NULL);
    } else {
        reply(sc->req, 200, case_json(sc->case_id, r, now));
    }
    free(sc);
}

static void show_case(dl_inspect *in, struct evhttp_request *req, const char *case_id)
{
    size_t len = strlen(case_id);
    if (len == 0 || len >= DL_CASE_ID_MAX ||
        strspn(case_id, "0123456789ABCDEFGHJKMNPQRSTVWXYZabcdefghjkmnpqrstvwxyz") != len) {
        cw_httpd_reply_error(req, 400, "invalid",
                             "a case id is a ULID: 26 characters of Crockford's base 32",
                             "case_id");
        return;
    }
    char upper[DL_CASE_ID_MAX];
    for (size_t i = 0; i <= len; i++) /* ULIDs are case-insensitive; ours are stored upper case */
        upper[i] = (char)(case_id[i] >= 'a' && case_id[i] <= 'z' ? case_id[i] - 32 : case_id[i]);
    case_id = upper;
    struct show_call *sc = calloc(1, sizeof *sc);
    if (!sc) {
        cw_httpd_reply_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    *sc = (struct show_call){.in = in, .req = req};
    snprintf(sc->case_id, sizeof sc->case_id, "%s", case_id);
    int rc = dl_timers_show(in->timers, sc->case_id, shown, sc);
    if (rc != CW_REDIS_OK) {
        unavailable(req, cw_redis_strerror(rc));
        free(sc);
    }
}

/* ------------------------------------------------------------ counts ---- */

static void scan_step(dl_inspect *in);

static struct site_counts *site_slot(struct scan *s, const char *site)
{
    for (size_t i = s->nsites; i-- > 0;) /* few sites: a short walk */
        if (strcmp(s->sites[i].site, site) == 0) return &s->sites[i];
    if (s->nsites == MAX_SITES) { /* not a site of any chain we know: summed, not dropped */
        s->other_used = true;
        return &s->other;
    }
    if (s->nsites == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        struct site_counts *n = realloc(s->sites, cap * sizeof *n);
        if (!n) return NULL;
        s->sites = n;
        s->cap = cap;
    }
    struct site_counts *c = &s->sites[s->nsites++];
    memset(c, 0, sizeof *c);
    snprintf(c->site, sizeof c->site, "%s", site);
    return c;
}

static void count_payload(struct scan *s, const char *json, size_t len)
{
    struct dl_payload p;
    struct site_counts *c;
    if (dl_payload_decode(json, len, &p) != 0 || !(c = site_slot(s, p.site))) {
        s->unreadable++;
        return;
    }
    long long *n = c->n[p.kind];
    n[p.warn_pct ? N_WARNINGS : N_BREACHES]++;
    if (p.at_ms <= s->now_ms) n[N_PAST_DUE]++;
}

static json_t *site_json(const struct site_counts *c)
{
    json_t *clocks = json_object();
    long long all = 0, past = 0;
    for (int k = 1; c && k < CW_CHAIN_CLOCKS; k++) {
        const long long *n = c->n[k];
        if (!n[N_WARNINGS] && !n[N_BREACHES]) continue;
        all += n[N_WARNINGS] + n[N_BREACHES];
        past += n[N_PAST_DUE];
        json_object_set_new(clocks, cw_clock_name(k),
                            json_pack("{s:I,s:I,s:I}", "warnings", (json_int_t)n[N_WARNINGS],
                                      "breaches", (json_int_t)n[N_BREACHES], "past_due",
                                      (json_int_t)n[N_PAST_DUE]));
    }
    return json_pack("{s:I,s:I,s:o}", "timers", (json_int_t)all, "past_due", (json_int_t)past,
                     "clocks", clocks);
}

static json_t *counts_json(const struct scan *s, const char *only, int64_t took_ms)
{
    json_t *sites = json_object();
    json_t *o = json_pack(
        "{s:{s:I,s:I,s:I,s:I},s:I,s:I,s:o}", "store", "timers", (json_int_t)s->all, "waiting",
        (json_int_t)s->waiting, "firing", (json_int_t)s->firing, "overdue", (json_int_t)s->overdue,
        "unreadable", (json_int_t)s->unreadable, "took_ms", (json_int_t)took_ms, "sites", sites);
    if (!o) return NULL;
    time_pair(o, "at", s->start_ms);
    const struct site_counts *found = NULL;
    for (size_t i = 0; i < s->nsites; i++) {
        if (*only && strcmp(s->sites[i].site, only) != 0) continue;
        found = &s->sites[i];
        json_object_set_new(sites, s->sites[i].site, site_json(&s->sites[i]));
    }
    if (*only && !found) json_object_set_new(sites, only, site_json(NULL));
    if (!*only && s->other_used) json_object_set_new(sites, "(other)", site_json(&s->other));
    return o;
}

static void scan_finish(dl_inspect *in, const char *err)
{
    struct scan *s = in->scan;
    int64_t took = cw_mono_ms() - s->mono_start;
    for (size_t i = 0; i < in->nwaiters; i++) {
        if (err)
            unavailable(in->waiters[i].req, err);
        else
            reply(in->waiters[i].req, 200, counts_json(s, in->waiters[i].site, took));
    }
    in->nwaiters = 0;
    in->scan = NULL;
    scan_free(s);
}

static void scanned(void *arg, const redisReply *r, const char *err)
{
    dl_inspect *in = arg;
    struct scan *s = in->scan;
    if (err) {
        scan_finish(in, err);
        return;
    }
    const redisReply *page =
        r && r->type == REDIS_REPLY_ARRAY && r->elements == 2 ? r->element[1] : NULL;
    const char *cursor = r && r->elements == 2 ? str_of(r->element[0]) : NULL;
    if (!page || page->type != REDIS_REPLY_ARRAY || !cursor || strlen(cursor) >= sizeof s->cursor) {
        cw_error("deadline.inspect_bad_reply", "shard=%u step=scan", s->shard);
        scan_finish(in, "unexpected reply to HSCAN");
        return;
    }
    for (size_t i = 0; i + 1 < page->elements; i += 2) {
        const redisReply *v = page->element[i + 1];
        if (v->type == REDIS_REPLY_STRING)
            count_payload(s, v->str, v->len);
        else
            s->unreadable++;
    }
    if (strcmp(cursor, "0") == 0) {
        s->shard++;
        strcpy(s->cursor, "0");
    } else {
        strcpy(s->cursor, cursor);
    }
    scan_step(in);
}

static void shard_totals(void *arg, const redisReply *r, const char *err)
{
    dl_inspect *in = arg;
    struct scan *s = in->scan;
    if (err) {
        scan_finish(in, err);
        return;
    }
    int64_t now;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 5 ||
        !ms_of(str_of(r->element[0]), &now)) {
        cw_error("deadline.inspect_bad_reply", "shard=%u step=totals", s->shard);
        scan_finish(in, "unexpected reply to the shard totals");
        return;
    }
    long long v[4];
    for (int i = 0; i < 4; i++)
        v[i] = r->element[1 + i]->type == REDIS_REPLY_INTEGER ? r->element[1 + i]->integer : 0;
    if (!s->start_ms) s->start_ms = now;
    s->now_ms = now;
    s->waiting += v[0];
    s->firing += v[1];
    s->overdue += v[2];
    s->all += v[3];
    int rc = dl_timers_scan(in->timers, s->shard, "0", SCAN_STEP, scanned, in);
    if (rc != CW_REDIS_OK) scan_finish(in, cw_redis_strerror(rc));
}

/* The next step: a shard's totals, then its payloads page by page. */
static void scan_step(dl_inspect *in)
{
    struct scan *s = in->scan;
    if (s->shard == DL_SHARDS) {
        scan_finish(in, NULL);
        return;
    }
    int rc = strcmp(s->cursor, "0") == 0
                 ? dl_timers_shard_stats(in->timers, s->shard, shard_totals, in)
                 : dl_timers_scan(in->timers, s->shard, s->cursor, SCAN_STEP, scanned, in);
    if (rc != CW_REDIS_OK) scan_finish(in, cw_redis_strerror(rc));
}

static void counts(dl_inspect *in, struct evhttp_request *req)
{
    struct evkeyvalq q = {0};
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (query && evhttp_parse_query_str(query, &q) != 0) {
        cw_httpd_reply_error(req, 400, "invalid", "the query string could not be read", NULL);
        return;
    }
    const char *site = evhttp_find_header(&q, "site");
    bool ok = !site ||
              (*site && strlen(site) < SITE_MAX &&
               strspn(site, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") ==
                   strlen(site));
    struct waiter w = {.req = req};
    if (ok && site) snprintf(w.site, sizeof w.site, "%s", site);
    evhttp_clear_headers(&q);
    if (!ok) {
        cw_httpd_reply_error(req, 400, "invalid", "site is a site id of the chain, e.g. SH01",
                             "site");
        return;
    }
    if (in->nwaiters == MAX_WAITERS) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After", "5");
        cw_httpd_reply_error(req, 429, "busy",
                             "too many count requests wait for the count that runs: retry later",
                             NULL);
        return;
    }
    if (!in->scan && !(in->scan = calloc(1, sizeof *in->scan))) {
        cw_httpd_reply_error(req, 500, "internal", "out of memory", NULL);
        return;
    }
    in->waiters[in->nwaiters++] = w;
    if (in->nwaiters > 1) return; /* answered by the count that runs */
    strcpy(in->scan->cursor, "0");
    in->scan->mono_start = cw_mono_ms();
    scan_step(in);
}

/* ------------------------------------------------------------ routing ---- */

void dl_inspect_handle(struct evhttp_request *req, void *arg)
{
    dl_inspect *in = arg;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    bool ours = path && (strcmp(path, COUNTS_PATH) == 0 ||
                         strncmp(path, CASES_PREFIX, strlen(CASES_PREFIX)) == 0);
    if (!ours) {
        cw_httpd_reply_error(req, 404, "not_found",
                             "no such endpoint: this admin port answers /healthz, /readyz, "
                             "/metrics, " CASES_PREFIX "{case_id} and " COUNTS_PATH,
                             NULL);
        return;
    }
    if (evhttp_request_get_command(req) != EVHTTP_REQ_GET) {
        evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET");
        cw_httpd_reply_error(req, 405, "method_not_allowed", "this endpoint answers GET only",
                             NULL);
        return;
    }
    if (strcmp(path, COUNTS_PATH) == 0)
        counts(in, req);
    else
        show_case(in, req, path + strlen(CASES_PREFIX));
}
