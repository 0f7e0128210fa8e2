/*
 * The follow-up (回访) for the call centre, staff only:
 *   GET  /v1/callbacks[?site=S]            the site's queue of callback tasks, most urgent first
 *   POST /v1/callbacks/{task_id}/claim     a lease on one task: two agents never call the same
 *                                          customer; the same agent claiming again renews it
 *   GET  /v1/reports/follow-up?site=S&date=YYYY-MM-DD
 *                                          resolved cases against callback tasks and outcomes
 * The notifier puts a task in the queue for every resolution (services/notifier/callbacks.c);
 * the agent records the outcome as an action on the case (POST /v1/cases/{id}/events, action
 * followup), which completes the task. A site's queue is its callback department's and its own
 * staff's; anyone else gets 404, as for another site's cases.
 */
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "chain.h"
#include "gateway.h"
#include "log.h"
#include "redis.h"

#define CLAIM_LEASE_MS (10 * 60 * 1000) /* an agent's call and its note */

/* The site of ?site=, or the caller's own; NULL having answered. */
static const struct cw_site *site_of(struct gw_req *r, struct evkeyvalq *q)
{
    const char *id = evhttp_find_header(q, "site");
    const struct cw_site *site = NULL;
    if (id) {
        site = cw_chain_site(r->gw->chain, id);
    } else if (r->staff->site) {
        site = r->staff->site;
    } else { /* group staff: the first site whose callbacks are their department's */
        for (size_t i = 0; !site && i < cw_chain_site_count(r->gw->chain); i++)
            if (gw_may_follow_up(r->staff, cw_chain_site_at(r->gw->chain, i)))
                site = cw_chain_site_at(r->gw->chain, i);
        if (!site) {
            gw_error(r, 400, "validation_failed", "give the site: ?site=SH01", "site");
            return NULL;
        }
    }
    if (!site || !gw_may_follow_up(r->staff, site)) {
        gw_error(r, 404, "not_found", "no such site among yours", "site");
        return NULL;
    }
    return site;
}

static int parse_query(struct gw_req *r, const char *query, struct evkeyvalq *q)
{
    if (evhttp_parse_query_str(query ? query : "", q) == 0) return 0;
    gw_error(r, 400, "bad_request", "the query string could not be parsed", NULL);
    return -1;
}

/* ---- the queue ---- */

static int urgency_rank(const char *u)
{
    return !u ? 0 : !strcmp(u, "emergency") ? 2 : !strcmp(u, "important") ? 1 : 0;
}

static int by_urgency_then_due(const void *a, const void *b)
{
    json_t *x = *(json_t *const *)a, *y = *(json_t *const *)b;
    int ux = urgency_rank(json_string_value(json_object_get(x, "urgency")));
    int uy = urgency_rank(json_string_value(json_object_get(y, "urgency")));
    if (ux != uy) return uy - ux;
    json_int_t dx = json_integer_value(json_object_get(x, "due_ms"));
    json_int_t dy = json_integer_value(json_object_get(y, "due_ms"));
    return (dx > dy) - (dx < dy);
}

static void listed(struct gw_req *r, const redisReply *reply, const char *err)
{
    const struct cw_site *site = r->op;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements % 10) {
        gw_error_retry(r, 503, "unavailable", "callback store unavailable; retry", 2);
        return;
    }
    size_t n = reply->elements / 10;
    json_t **items = calloc(n ? n : 1, sizeof *items);
    if (!items) {
        gw_error(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    int64_t now = cw_now_ms();
    for (size_t i = 0; i < n; i++) {
        const char *f[10];
        for (int k = 0; k < 10; k++) f[k] = gw_reply_str(reply, i * 10 + (size_t)k);
        long long due = atoll(f[4]), lease = atoll(f[7]);
        char due_s[40];
        gw_format_time(r->gw, site, due, due_s, sizeof due_s);
        json_t *t = json_pack("{s:s,s:s,s:s,s:s,s:s,s:I,s:i}", "task_id", f[0], "case_id", f[1],
                              "case_no", f[2], "urgency", *f[3] ? f[3] : "general", "due", due_s,
                              "due_ms", (json_int_t)due, "attempts", atoi(f[5]));
        if (t && *f[6] && lease > now) { /* someone is on the phone with this customer */
            char lease_s[40];
            gw_format_time(r->gw, site, lease, lease_s, sizeof lease_s);
            json_object_set_new(t, "claimed_by", json_string(f[6]));
            json_object_set_new(t, "claimed_until", json_string(lease_s));
        }
        long long not_before = atoll(f[9]);
        if (t && not_before > now) { /* not reached last time: the next call not before then */
            char nb[40];
            gw_format_time(r->gw, site, not_before, nb, sizeof nb);
            json_object_set_new(t, "not_before", json_string(nb));
        }
        items[i] = t ? t : json_object();
    }
    qsort(items, n, sizeof *items, by_urgency_then_due);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) json_array_append_new(arr, items[i]);
    free(items);
    gw_reply(r, 200, json_pack("{s:s,s:o}", "site", site->id, "tasks", arr));
}

void gw_callbacks_list(struct gw_req *r, const char *query)
{
    struct evkeyvalq q;
    if (parse_query(r, query, &q) != 0) return;
    const struct cw_site *site = site_of(r, &q);
    evhttp_clear_headers(&q);
    if (!site) return;
    r->op = (void *)site; /* the chain's: not freed with the request */
    const char *argv[] = {site->id};
    if (gw_store_run(r, GW_S_CB_LIST, 0, 1, argv, listed) != 0)
        gw_error_retry(r, 503, "unavailable", "callback store unavailable; retry", 2);
}

/* ---- claiming ---- */

static void claimed(struct gw_req *r, const redisReply *reply, const char *err)
{
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY) {
        gw_error_retry(r, 503, "unavailable", "callback store unavailable; retry", 2);
        return;
    }
    const char *word = gw_reply_str(reply, 0);
    const struct cw_site *site = r->staff->site;
    char till[40];
    if (!strcmp(word, "ok")) {
        gw_format_time(r->gw, site, atoll(gw_reply_str(reply, 3)), till, sizeof till);
        cw_info("callback.claimed", "request_id=%s task=%s agent=%s", r->request_id, r->path_id,
                r->staff->id);
        gw_reply(r, 200,
                 json_pack("{s:s,s:s,s:s,s:s,s:s}", "task_id", r->path_id, "case_id",
                           gw_reply_str(reply, 1), "case_no", gw_reply_str(reply, 2), "claimed_by",
                           r->staff->id, "claimed_until", till));
    } else if (!strcmp(word, "taken")) {
        gw_format_time(r->gw, site, atoll(gw_reply_str(reply, 2)), till, sizeof till);
        char msg[200];
        snprintf(msg, sizeof msg, "%s is calling this customer (until %s); take another task",
                 gw_reply_str(reply, 1), till);
        gw_error(r, 409, "claimed", msg, NULL);
    } else if (!strcmp(word, "later")) {
        gw_format_time(r->gw, site, atoll(gw_reply_str(reply, 1)), till, sizeof till);
        char msg[160];
        snprintf(msg, sizeof msg,
                 "the customer was not reached on the last call: call again after %s", till);
        gw_error(r, 409, "too_early", msg, NULL);
    } else if (!strcmp(word, "closed")) {
        char msg[120];
        snprintf(msg, sizeof msg, "this follow-up is over (%s)", gw_reply_str(reply, 1));
        gw_error(r, 409, "closed", msg, NULL);
    } else {
        gw_error(r, 404, "not_found", "no such callback task among your sites'", NULL);
    }
}

void gw_callback_claim(struct gw_req *r)
{
    /* the task's site is checked in the script, against every site whose follow-up the caller
     * works (a group call centre may be the callback department of several) */
    size_t cap = 2, len = 1;
    const cw_chain *chain = r->gw->chain;
    for (size_t i = 0; i < cw_chain_site_count(chain); i++)
        cap += strlen(cw_chain_site_at(chain, i)->id) + 1;
    char *sites = malloc(cap);
    if (!sites) {
        gw_error(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    strcpy(sites, ",");
    for (size_t i = 0; i < cw_chain_site_count(chain); i++) {
        const struct cw_site *s = cw_chain_site_at(chain, i);
        if (!gw_may_follow_up(r->staff, s)) continue;
        len += (size_t)snprintf(sites + len, cap - len, "%s,", s->id);
    }
    char lease[16];
    snprintf(lease, sizeof lease, "%d", CLAIM_LEASE_MS);
    const char *argv[] = {r->path_id, r->staff->id, lease, sites};
    if (gw_store_run(r, GW_S_CB_CLAIM, 0, 4, argv, claimed) != 0)
        gw_error_retry(r, 503, "unavailable", "callback store unavailable; retry", 2);
    free(sites);
}

/* ---- the report ---- */

struct report {
    const struct cw_site *site;
    char date[16];
};

static void reported(struct gw_req *r, const redisReply *reply, const char *err)
{
    struct report *rep = r->op;
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 5) {
        gw_error_retry(r, 503, "unavailable", "report store unavailable; retry", 2);
        return;
    }
    long long resolved = reply->element[0]->integer, tasks = reply->element[1]->integer,
              followed = reply->element[2]->integer, waiting = reply->element[3]->integer,
              nmissing = reply->element[4]->integer;
    json_t *missing = json_array(), *unreachable = json_array();
    for (size_t i = 5; i < reply->elements; i++)
        json_array_append_new(i < 5 + (size_t)nmissing ? missing : unreachable,
                              json_string(gw_reply_str(reply, i)));
    /* no resolved case: nothing was owed, so every rate is met */
    double cb_rate = resolved ? (double)tasks / (double)resolved : 1.0;
    double fu_rate = resolved ? (double)followed / (double)resolved : 1.0;
    gw_reply(r, 200,
             json_pack("{s:s,s:s,s:I,s:I,s:I,s:I,s:f,s:f,s:o,s:o}", "site", rep->site->id, "date",
                       rep->date, "resolved", (json_int_t)resolved, "callback_tasks",
                       (json_int_t)tasks, "followed_up", (json_int_t)followed, "waiting",
                       (json_int_t)waiting, "callback_rate", cb_rate, "followup_rate", fu_rate,
                       "without_callback_task", missing, "closed_unreachable", unreachable));
}

void gw_followup_report(struct gw_req *r, const char *query)
{
    struct evkeyvalq q;
    if (parse_query(r, query, &q) != 0) return;
    const struct cw_site *site = site_of(r, &q);
    const char *date = evhttp_find_header(&q, "date");
    int ymd = date ? gw_parse_date(date) : -1;
    struct report *rep = site ? calloc(1, sizeof *rep) : NULL;
    if (site && ymd < 0) {
        gw_error(r, 400, "validation_failed", "give the day: date=YYYY-MM-DD", "date");
    } else if (site && !rep) {
        gw_error(r, 503, "unavailable", "out of memory", NULL);
    } else if (site) {
        rep->site = site;
        snprintf(rep->date, sizeof rep->date, "%s", date);
        r->op = rep;
        r->op_free = free;
        char day[16];
        snprintf(day, sizeof day, "%d", ymd);
        const char *argv[] = {site->id, day};
        if (gw_store_run(r, GW_S_FOLLOWUP_REPORT, 0, 2, argv, reported) != 0)
            gw_error_retry(r, 503, "unavailable", "report store unavailable; retry", 2);
        rep = NULL;
    }
    free(rep);
    evhttp_clear_headers(&q);
}
