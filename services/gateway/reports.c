/*
 * Reports for managers and the console (staff only; docs/api.md, "Reports"):
 *   GET /v1/reports/today[?site=S]                    today at a glance
 *   GET /v1/reports/{daily|weekly|monthly}?date=D[&site=S][&format=csv]
 * A report covers the cases a site received in the period (site-local days: a daily report one
 * day, a weekly report Monday to Sunday, a monthly report the calendar month), as they stand
 * now, and the follow-up of the cases resolved in the period. Without ?site= it covers every
 * site the caller sees (the group's staff: the group), with a row per site.
 *
 * How it runs, without holding Redis or the loop for long:
 *   1. per site, one script run each: the ids of the cases received in the period, the
 *      follow-up counts per day (and, for today, the open and overdue counts);
 *   2. the cases' fields, ROWS_BATCH ids per script run, ROWS_INFLIGHT runs at a time;
 *   3. the figures, into JSON or CSV (report_answer.c).
 * Bounded: at most MAX_CASES cases per report (beyond: 400, narrow it), 31 days, the sites the
 * caller sees; a report's answer has REPORT_TIMEOUT_MS (main.c) before it is a 503.
 */
#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/hiredis.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "chain.h"
#include "domain.h"
#include "gateway.h"
#include "log.h"
#include "redis.h"
#include "report.h"

/* ---- small containers ---- */

static void dur_add(struct durations *d, double s)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? 2 * d->cap : 256;
        double *v = realloc(d->v, cap * sizeof *v);
        if (!v) return; /* a figure short by one, not a failed report */
        d->v = v;
        d->cap = cap;
    }
    d->v[d->n++] = s;
}

int rp_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double rp_dur_rank(const struct durations *d, double p)
{
    size_t k = (size_t)ceil(p * (double)d->n);
    return d->v[k ? k - 1 : 0];
}

static unsigned long fnv(const char *s)
{
    unsigned long h = 2166136261u;
    for (; *s; s++) h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

static void tally_add(struct tally *t, const char *key)
{
    if (!*key) return;
    if (2 * (t->used + 1) > t->cap) {
        size_t cap = t->cap ? 2 * t->cap : 64;
        struct tally_slot *s = calloc(cap, sizeof *s);
        if (!s) return;
        for (size_t i = 0; i < t->cap; i++) {
            if (!t->slots[i].key) continue;
            size_t j = fnv(t->slots[i].key) & (cap - 1);
            while (s[j].key) j = (j + 1) & (cap - 1);
            s[j] = t->slots[i];
        }
        free(t->slots);
        t->slots = s;
        t->cap = cap;
    }
    size_t j = fnv(key) & (t->cap - 1);
    while (t->slots[j].key && strcmp(t->slots[j].key, key)) j = (j + 1) & (t->cap - 1);
    if (!t->slots[j].key) {
        if (!(t->slots[j].key = strdup(key))) return;
        t->used++;
    }
    t->slots[j].n++;
}

static const struct tally_slot *tally_find(const struct tally *t, const char *key)
{
    if (!t->cap) return NULL;
    size_t j = fnv(key) & (t->cap - 1);
    while (t->slots[j].key && strcmp(t->slots[j].key, key)) j = (j + 1) & (t->cap - 1);
    return t->slots[j].key ? &t->slots[j] : NULL;
}

static void tally_release(struct tally *t)
{
    for (size_t i = 0; i < t->cap; i++) free(t->slots[i].key);
    free(t->slots);
}

int rp_by_count_desc(const void *a, const void *b)
{
    const struct tally_slot *x = a, *y = b;
    if (x->n != y->n) return x->n < y->n ? 1 : -1;
    return strcmp(x->key, y->key);
}

/* ---- dates (proleptic Gregorian, yyyymmdd) ---- */

static long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long era = (y >= 0 ? y : y - 399) / 400;
    long yoe = y - era * 400;
    long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int civil_from_days(long z)
{
    z += 719468;
    long era = (z >= 0 ? z : z - 146096) / 146097;
    long doe = z - era * 146097;
    long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long y = yoe + era * 400, doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    long mp = (5 * doy + 2) / 153, d = doy - (153 * mp + 2) / 5 + 1;
    long m = mp + (mp < 10 ? 3 : -9);
    return (int)((y + (m <= 2)) * 10000 + m * 100 + d);
}

static long ymd_days(int ymd) { return days_from_civil(ymd / 10000, ymd / 100 % 100, ymd % 100); }

void rp_ymd_text(int ymd, char out[16])
{
    snprintf(out, 16, "%04d-%02d-%02d", ymd / 10000, ymd / 100 % 100, ymd % 100);
}

static void job_free(void *p)
{
    struct job *j = p;
    if (!j) return;
    for (size_t i = 0; i < j->nids; i++) free(j->ids[i]);
    free(j->ids);
    free(j->sites);
    json_decref(j->missing);
    tally_release(&j->departments);
    tally_release(&j->department_kinds);
    tally_release(&j->causes);
    tally_release(&j->site_index);
    for (int i = 0; i < NTIMES; i++) free(j->times[i].v);
    free(j);
}

/* The job's index of site id, through the tally keyed by site id (built in pick_sites). */
static int site_index(const struct job *j, const char *id)
{
    const struct tally_slot *slot = tally_find(&j->site_index, id);
    return slot ? (int)slot->n : -1;
}

static void fail(struct job *j, const char *err)
{
    if (!j->failed)
        cw_warn("report.failed", "request_id=%s report=%s error=\"%s\"", j->r->request_id,
                rp_kind_names[j->kind], err ? err : "unexpected reply");
    j->failed = true;
}

/* ---- stage 2: the cases' fields ---- */

static void add_row(struct job *j, const redisReply *r, size_t b)
{
#define FIELD(k) gw_reply_str(r, b + (k))
    int s = site_index(j, FIELD(F_SITE));
    int64_t created = strtoll(FIELD(F_CREATED), NULL, 10);
    j->received++;
    int v;
    if ((v = cw_channel_parse(FIELD(F_CHANNEL))) > 0 && v < 16) j->by_channel[v]++;
    if ((v = cw_case_type_parse(FIELD(F_TYPE))) > 0 && v < 8) j->by_type[v]++;
    if ((v = cw_category_parse(FIELD(F_CATEGORY))) > 0 && v < 16) j->by_category[v]++;
    if ((v = cw_urgency_parse(FIELD(F_URGENCY))) > 0 && v < 4) j->by_urgency[v]++;
    v = cw_validity_parse(FIELD(F_VALIDITY));
    if (v == CASEWIRE__V1__VALIDITY__VALIDITY_VALID) j->valid++;
    if (v == CASEWIRE__V1__VALIDITY__VALIDITY_INVALID) j->invalid++;
    for (size_t i = 0; i < NSTATUS; i++)
        if (!strcmp(FIELD(F_STATUS), statuses[i])) j->by_status[i]++;
    if (*FIELD(F_REPEAT)) j->repeats++;
    const char *dept = FIELD(F_DEPARTMENT);
    tally_add(&j->departments, dept);
    const struct cw_department *d = *dept ? cw_chain_department(j->r->gw->chain, dept) : NULL;
    if (d)
        tally_add(&j->department_kinds, cw_dept_kind_name(d->kind));
    else if (*dept)
        tally_add(&j->department_kinds, "tenant"); /* a tenant answers the case */
    const char *cause = FIELD(F_CAUSE);
    if (*cause && strcmp(cause, "default") && strcmp(cause, "hint")) tally_add(&j->causes, cause);
    /* times from receipt: to the owner's acknowledgement, to the first reply (a resolution is
     * an answer too), to the latest resolution */
    int64_t acked = strtoll(FIELD(F_ACKED), NULL, 10),
            replied = strtoll(FIELD(F_REPLIED), NULL, 10),
            resolved = strtoll(FIELD(F_RESOLVED), NULL, 10);
    if (resolved && (!replied || resolved < replied)) replied = resolved;
    int64_t at[NTIMES] = {acked, replied, resolved};
    for (int t = 0; t < NTIMES; t++)
        if (at[t] && created && at[t] >= created)
            dur_add(&j->times[t], (double)(at[t] - created) / 1000.0);
    bool breached_any = false;
    for (int k = 0; k < NCLOCKS; k++) {
        const char *due = FIELD(F_CLOCKS + 3 * k), *stopped = FIELD(F_CLOCKS + 3 * k + 1),
                   *breached = FIELD(F_CLOCKS + 3 * k + 2);
        if (*breached) { /* breached once is breached, whatever happened since */
            j->clocks[k][1]++;
            breached_any = true;
        } else if (*due) {
            j->clocks[k][strtoll(due, NULL, 10) <= j->now ? 3 : 2]++;
        } else if (*stopped) {
            j->clocks[k][0]++;
        }
    }
    if (s >= 0) {
        j->sites[s].received++;
        if (breached_any) j->sites[s].breached_cases++;
        struct cw_local l;
        if (cw_calendar_local(j->r->gw->cal, j->sites[s].site, created, &l) == 0) {
            long off = ymd_days(l.yyyymmdd) - ymd_days(j->days[0]);
            if (off >= 0 && off < j->ndays) j->received_on[off]++;
        }
    }
#undef FIELD
}

static void next_rows(struct job *j);

static void rows_read(struct gw_req *r, const redisReply *reply, const char *err)
{
    struct job *j = r->op;
    j->rows_out--;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % ROW_FIELDS)
        fail(j, err);
    else
        for (size_t b = 0; b < reply->elements; b += ROW_FIELDS) add_row(j, reply, b);
    next_rows(j);
}

static void next_rows(struct job *j)
{
    if (!gw_req_open(j->r)) return; /* answered (the deadline) or gone: stop reading */
    while (!j->failed && j->rows_out < ROWS_INFLIGHT && j->next_row < j->nids) {
        size_t n = j->nids - j->next_row;
        if (n > ROWS_BATCH) n = ROWS_BATCH;
        if (gw_store_run(j->r, GW_S_REPORT_ROWS, 0, (int)n, (const char **)(j->ids + j->next_row),
                         rows_read) != 0) {
            fail(j, "case store unavailable");
            break;
        }
        j->next_row += n;
        j->rows_out++;
    }
    if (j->rows_out == 0 && (j->failed || j->next_row == j->nids)) rp_answer(j);
}

/* ---- stage 1: ids, follow-up counts, open counts ---- */

static void send_sites(struct job *j);

/* Stage 1 is over when every site's calls are sent and answered: then stage 2 (or the answer). */
static void stage_check(struct job *j)
{
    if (j->pending > 0 || (j->next_site < j->nsites && !j->failed && !j->too_many)) return;
    if (j->too_many && !j->failed) {
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the report covers more than %d cases: ask for one site or a shorter period",
                 MAX_CASES);
        gw_error(j->r, 400, "validation_failed", msg, "site");
        return;
    }
    if (j->kind == K_TODAY || j->failed) {
        rp_answer(j);
        return;
    }
    next_rows(j);
}

/* One of stage 1's calls answered. */
static void stage_done(struct job *j)
{
    j->pending--;
    if (!gw_req_open(j->r)) return; /* answered (the deadline) or gone: stop reading */
    if (!j->failed && !j->too_many) send_sites(j);
    stage_check(j);
}

static void ids_read(struct job *j, struct rep_site *s, const redisReply *reply, const char *err)
{
    (void)s;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        fail(j, err);
    } else if (reply->element[0]->integer || j->nids + reply->elements - 1 > MAX_CASES) {
        j->too_many = true;
    } else {
        char **ids = realloc(j->ids, (j->nids + reply->elements) * sizeof *ids);
        if (!ids) {
            fail(j, "out of memory");
        } else {
            j->ids = ids;
            for (size_t i = 1; i < reply->elements; i++) {
                char *id = strdup(gw_reply_str(reply, i));
                if (id) j->ids[j->nids++] = id;
            }
        }
    }
    stage_done(j);
}

/* A script run for one site of the job: the callback learns which. Holds the request. */
struct site_call {
    struct job *j;
    size_t site;
    void (*cb)(struct job *j, struct rep_site *s, const redisReply *reply, const char *err);
};

static void site_called(void *arg, const redisReply *reply, const char *err)
{
    struct site_call *c = arg;
    struct gw_req *r = c->j->r;
    c->cb(c->j, &c->j->sites[c->site], reply, err);
    free(c);
    gw_req_release(r);
}

static int
run_for_site(struct job *j, size_t site, enum gw_script script, int argc, const char **argv,
             void (*cb)(struct job *, struct rep_site *, const redisReply *, const char *))
{
    struct site_call *c = malloc(sizeof *c);
    if (!c) return -1;
    *c = (struct site_call){j, site, cb};
    if (cw_redis_script_run(j->r->gw->redis, j->r->gw->scripts[script], site_called, c, 0, argc,
                            argv, NULL) != 0) {
        free(c);
        return -1;
    }
    gw_req_hold(j->r);
    j->pending++;
    return 0;
}

static long long int_at(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_INTEGER ? r->element[i]->integer
                                                                         : 0;
}

static void followup_read(struct job *j, struct rep_site *s, const redisReply *reply,
                          const char *err)
{
    size_t want = (size_t)j->ndays * FU_FIELDS;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < want) {
        fail(j, err);
    } else {
        for (int d = 0; d < j->ndays; d++)
            for (int k = 0; k < FU_FIELDS; k++)
                s->fu[d][k] = int_at(reply, (size_t)d * FU_FIELDS + (size_t)k);
        for (size_t i = want; i < reply->elements && json_array_size(j->missing) < 100; i++)
            json_array_append_new(j->missing, json_string(gw_reply_str(reply, i)));
    }
    stage_done(j);
}

static void open_read(struct job *j, struct rep_site *s, const redisReply *reply, const char *err)
{
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) {
        fail(j, err);
    } else {
        s->open = int_at(reply, 0);
        s->overdue = int_at(reply, 1);
        s->open_truncated = int_at(reply, 2) != 0;
    }
    stage_done(j);
}

/* Stage 1's calls for the next sites, SITES_INFLIGHT sites' worth at a time (a group of
 * thousands of sites must not fill the Redis client's queue). */
static void send_sites(struct job *j)
{
    char from[24], to[24], max[16], now[24];
    char days[MAX_DAYS][12];
    for (int d = 0; d < j->ndays; d++) snprintf(days[d], sizeof days[d], "%d", j->days[d]);
    snprintf(max, sizeof max, "%d", MAX_CASES);
    snprintf(now, sizeof now, "%lld", (long long)j->now);
    unsigned per_site = j->kind == K_TODAY ? 3 : 2;
    while (j->next_site < j->nsites && j->pending < SITES_INFLIGHT * per_site) {
        size_t i = j->next_site++;
        struct rep_site *s = &j->sites[i];
        snprintf(from, sizeof from, "%lld", (long long)s->from_ms);
        snprintf(to, sizeof to, "%lld", (long long)s->to_ms);
        const char *ids_argv[] = {s->site->id, from, to, max};
        const char *fu_argv[1 + MAX_DAYS] = {s->site->id};
        for (int d = 0; d < j->ndays; d++) fu_argv[1 + d] = days[d];
        const char *open_argv[] = {s->site->id, now, OPEN_SCAN};
        if (run_for_site(j, i, GW_S_REPORT_IDS, 4, ids_argv, ids_read) != 0 ||
            run_for_site(j, i, GW_S_REPORT_FOLLOWUP, 1 + j->ndays, fu_argv, followup_read) != 0 ||
            (j->kind == K_TODAY &&
             run_for_site(j, i, GW_S_REPORT_OPEN, 3, open_argv, open_read) != 0)) {
            fail(j, "case store unavailable");
            j->next_site = j->nsites; /* send no more: the answers out still come back */
            break;
        }
    }
}

/* ---- the request ---- */

/* The days of the period around `day` (yyyymmdd). */
static void period_days(struct job *j, int day)
{
    long first = ymd_days(day), n = 1;
    if (j->kind == K_WEEKLY) {
        long wd = ((first + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday; sun = 0 */
        first -= (wd + 6) % 7;               /* back to Monday */
        n = 7;
    } else if (j->kind == K_MONTHLY) {
        first = ymd_days(day / 100 * 100 + 1);
        int next =
            day / 10000 * 10000 + (day / 100 % 100 == 12 ? 10101 : day / 100 % 100 * 100 + 101);
        n = ymd_days(next) - first;
    }
    j->ndays = (int)n;
    for (long i = 0; i < n; i++) j->days[i] = civil_from_days(first + i);
}

/* date=YYYY-MM-DD (monthly also YYYY-MM); absent: today at the first site. -1 when malformed. */
static int parse_day(struct job *j, const char *v)
{
    if (!v) {
        struct cw_local l;
        if (cw_calendar_local(j->r->gw->cal, j->sites[0].site, j->now, &l) != 0) return -1;
        return l.yyyymmdd;
    }
    char buf[16];
    if (j->kind == K_MONTHLY && strlen(v) == 7) {
        snprintf(buf, sizeof buf, "%s-01", v);
        v = buf;
    }
    return gw_parse_date(v);
}

static int pick_sites(struct job *j, const char *id)
{
    const cw_chain *chain = j->r->gw->chain;
    const struct cw_staff *st = j->r->staff;
    j->sites = calloc(cw_chain_site_count(chain), sizeof *j->sites);
    if (!j->sites) return -1;
    for (size_t i = 0; i < cw_chain_site_count(chain); i++) {
        const struct cw_site *s = cw_chain_site_at(chain, i);
        if (!cw_staff_sees_site(st, s) || (id && strcmp(id, s->id))) continue;
        tally_add(&j->site_index, s->id);
        struct tally_slot *slot = (struct tally_slot *)tally_find(&j->site_index, s->id);
        if (!slot) return -1;
        slot->n = (long long)j->nsites;
        j->sites[j->nsites++].site = s;
    }
    return 0;
}

static void start(struct gw_req *r, enum kind kind, const char *query)
{
    struct evkeyvalq q;
    if (evhttp_parse_query_str(query ? query : "", &q) != 0) {
        gw_error(r, 400, "bad_request", "the query string could not be parsed", NULL);
        return;
    }
    struct job *j = calloc(1, sizeof *j);
    if (!j || !(j->missing = json_array())) {
        free(j);
        gw_error(r, 503, "unavailable", "out of memory", NULL);
        evhttp_clear_headers(&q);
        return;
    }
    r->op = j;
    r->op_free = job_free;
    j->r = r;
    j->kind = kind;
    j->now = cw_now_ms();
    const char *site = evhttp_find_header(&q, "site"), *format = evhttp_find_header(&q, "format");
    int day;
    if (pick_sites(j, site) != 0) {
        gw_error(r, 503, "unavailable", "out of memory", NULL);
    } else if (j->nsites == 0) {
        gw_error(r, 404, "not_found", site ? "no such site among yours" : "you see no site",
                 "site");
    } else if (format && strcmp(format, "json") && (strcmp(format, "csv") || kind == K_TODAY)) {
        gw_error(r, 400, "validation_failed",
                 kind == K_TODAY ? "format is json" : "format is json or csv", "format");
    } else if ((day = parse_day(j, kind == K_TODAY ? NULL : evhttp_find_header(&q, "date"))) < 0) {
        gw_error(r, 400, "validation_failed",
                 kind == K_MONTHLY ? "date is YYYY-MM-DD or YYYY-MM" : "date is YYYY-MM-DD",
                 "date");
    } else {
        j->csv = format && !strcmp(format, "csv");
        period_days(j, day);
        bool ok = true;
        for (size_t i = 0; i < j->nsites && ok; i++) {
            struct rep_site *s = &j->sites[i];
            int after = civil_from_days(ymd_days(j->days[j->ndays - 1]) + 1);
            ok = cw_calendar_instant(r->gw->cal, s->site, j->days[0], 0, &s->from_ms) == 0 &&
                 cw_calendar_instant(r->gw->cal, s->site, after, 0, &s->to_ms) == 0;
        }
        if (!ok)
            gw_error(r, 400, "validation_failed", "that date is outside the calendar", "date");
        else {
            send_sites(j);
            stage_check(j);
        }
    }
    evhttp_clear_headers(&q);
}

void gw_report_today(struct gw_req *r, const char *query) { start(r, K_TODAY, query); }

void gw_report_period(struct gw_req *r, const char *query)
{
    start(r,
          r->route == GW_REPORT_DAILY    ? K_DAILY
          : r->route == GW_REPORT_WEEKLY ? K_WEEKLY
                                         : K_MONTHLY,
          query);
}
