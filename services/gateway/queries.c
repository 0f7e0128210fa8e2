/*
 * Reading cases: the customer's status check by case number and phone digits, and the
 * tenant's list and detail of its own cases. "Not yours" and "does not exist" get the same
 * 404, so nobody can learn which case numbers or ids exist.
 */
#include <ctype.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "gateway.h"
#include "log.h"

#define LOOKUP_MAX_FAILURES "10"
#define LOOKUP_WINDOW_S "3600"
#define LIST_SCAN_CAP "2000"

static void set_time(struct gw *gw, json_t *obj, const char *key, const struct cw_site *site,
                     const char *ms)
{
    if (!ms || !*ms) return;
    char buf[48];
    gw_format_time(gw, site, strtoll(ms, NULL, 10), buf, sizeof buf);
    json_object_set_new(obj, key, json_string(buf));
}

static void looked_up(struct gw_req *r, const redisReply *reply, const char *err)
{
    if (err) {
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
        return;
    }
    const char *status = gw_reply_str(reply, 0);
    if (strcmp(status, "limited") == 0) {
        gw_error_retry(r, 429, "rate_limited",
                       "too many wrong tries for this case number; try again later",
                       atoi(gw_reply_str(reply, 1)));
        return;
    }
    if (strcmp(status, "ok") != 0) {
        gw_error(r, 404, "not_found", "no case with this number and these phone digits", NULL);
        return;
    }
    const struct cw_site *site = cw_chain_site(r->gw->chain, gw_reply_str(reply, 2));
    json_t *o = json_pack("{s:s,s:s,s:s}", "case_no", r->path_id, "site", gw_reply_str(reply, 2),
                          "status", gw_reply_str(reply, 1));
    if (o) {
        set_time(r->gw, o, "received_at", site, gw_reply_str(reply, 3));
        set_time(r->gw, o, "reply_by", site, gw_reply_str(reply, 4));
        set_time(r->gw, o, "updated_at", site, gw_reply_str(reply, 5));
    }
    gw_reply(r, 200, o);
}

/* SH01-261124-0042 */
static bool case_no_shape(const char *s)
{
    size_t n = strlen(s);
    if (n < 13 || n > 40) return false;
    for (const char *p = s; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-') return false;
    return strchr(s, '-') != NULL;
}

void gw_case_status(struct gw_req *r, const char *phone_last4)
{
    if (!phone_last4 || strlen(phone_last4) != 4 || !isdigit((unsigned char)phone_last4[0]) ||
        !isdigit((unsigned char)phone_last4[1]) || !isdigit((unsigned char)phone_last4[2]) ||
        !isdigit((unsigned char)phone_last4[3])) {
        gw_error(r, 404, "not_found",
                 "no case with this number and these phone digits (give phone_last4=NNNN, the last "
                 "4 digits of the phone number on the case)",
                 NULL);
        return;
    }
    if (!case_no_shape(r->path_id)) {
        gw_error(r, 404, "not_found", "no case with this number and these phone digits", NULL);
        return;
    }
    char key[80];
    snprintf(key, sizeof key, "cw:lookupfail:%s", r->path_id);
    const char *argv[] = {key, r->path_id, phone_last4, LOOKUP_MAX_FAILURES, LOOKUP_WINDOW_S};
    if (gw_store_run(r, GW_S_LOOKUP, 1, 5, argv, looked_up) != 0)
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
}

/* ---- tenant: list ---- */

/* RFC 3339 ("2026-11-24T14:03:00+08:00", "...Z") or Unix milliseconds -> ms; -1 if neither. */
static long long parse_time(const char *s)
{
    char *end;
    long long ms = strtoll(s, &end, 10);
    if (*s && !*end && ms >= 0) return ms;
    int y, mo, d, h, mi, sec, n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &n) != 6) return -1;
    const char *p = s + n;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++) {
        }
    int off = 0;
    if (*p == 'Z' && !p[1]) {
        off = 0;
    } else if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int oh, om;
        if (sscanf(p + 1, "%2d:%2d", &oh, &om) != 2) return -1;
        off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
    } else {
        return -1;
    }
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60) return -1;
    /* days from civil (Howard Hinnant's algorithm) */
    int yy = y - (mo <= 2);
    int era = (yy >= 0 ? yy : yy - 399) / 400;
    int yoe = yy - era * 400;
    int doy = (153 * (mo + (mo > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    long long days = (long long)era * 146097 + doe - 719468;
    return ((days * 86400 + h * 3600 + mi * 60 + sec) - off) * 1000;
}

static void listed(struct gw_req *r, const redisReply *reply, const char *err)
{
    if (err || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 1) {
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
        return;
    }
    const struct cw_site *site = r->tenant->site;
    json_t *cases = json_array();
    for (size_t i = 1; i + 7 <= reply->elements; i += 7) {
        json_t *c = json_pack("{s:s,s:s,s:s,s:s}", "case_id", gw_reply_str(reply, i), "case_no",
                              gw_reply_str(reply, i + 1), "status", gw_reply_str(reply, i + 2),
                              "channel", gw_reply_str(reply, i + 3));
        if (!c) continue;
        set_time(r->gw, c, "received_at", site, gw_reply_str(reply, i + 4));
        set_time(r->gw, c, "reply_by", site, gw_reply_str(reply, i + 5));
        set_time(r->gw, c, "updated_at", site, gw_reply_str(reply, i + 6));
        json_array_append_new(cases, c);
    }
    const char *next = gw_reply_str(reply, 0);
    gw_reply(r, 200, json_pack("{s:o,s:s?}", "cases", cases, "next_cursor", *next ? next : NULL));
}

static bool status_list_ok(const char *s)
{
    for (; *s; s++)
        if (!islower((unsigned char)*s) && *s != ',' && *s != '_') return false;
    return true;
}

void gw_tenant_list(struct gw_req *r, const char *query)
{
    struct evkeyvalq q;
    if (evhttp_parse_query_str(query ? query : "", &q) != 0) {
        gw_error(r, 400, "bad_request", "the query string could not be parsed", NULL);
        return;
    }
    const char *status = evhttp_find_header(&q, "status"), *since = evhttp_find_header(&q, "since"),
               *until = evhttp_find_header(&q, "until"), *limit_s = evhttp_find_header(&q, "limit"),
               *cursor = evhttp_find_header(&q, "cursor");
    long long min = 0, max = -1, limit = 50, cursor_score = -1;
    char cursor_id[CW_ULID_LEN + 1] = "", statuses[200] = "", maxs[24], mins[24], limits[8];
    const char *bad = NULL;
    if (since && (min = parse_time(since)) < 0) bad = "since";
    if (!bad && until && (max = parse_time(until)) < 0) bad = "until";
    if (!bad && limit_s) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (*end || limit < 1 || limit > 200) bad = "limit";
    }
    if (!bad && status) {
        if (strlen(status) > sizeof statuses - 3 || !status_list_ok(status))
            bad = "status";
        else
            snprintf(statuses, sizeof statuses, ",%s,", status);
    }
    if (!bad && cursor) {
        int n = 0;
        if (sscanf(cursor, "%lld:%26[0-9A-Z]%n", &cursor_score, cursor_id, &n) != 2 || cursor[n] ||
            !cw_ulid_valid(cursor_id))
            bad = "cursor";
    }
    for (struct evkeyval *kv = q.tqh_first; kv && !bad; kv = kv->next.tqe_next)
        if (strcmp(kv->key, "status") && strcmp(kv->key, "since") && strcmp(kv->key, "until") &&
            strcmp(kv->key, "limit") && strcmp(kv->key, "cursor"))
            bad = kv->key;
    if (bad) {
        char msg[256];
        snprintf(msg, sizeof msg,
                 "bad query parameter %.40s (status: a,b; since/until: RFC 3339 or Unix ms; limit: "
                 "1..200; cursor: the next_cursor of the previous page)",
                 bad);
        evhttp_clear_headers(&q);
        gw_error(r, 400, "bad_request", msg, bad);
        return;
    }
    if (cursor_score >= 0 && (max < 0 || cursor_score < max)) max = cursor_score;
    if (max < 0)
        snprintf(maxs, sizeof maxs, "+inf");
    else
        snprintf(maxs, sizeof maxs, "%lld", max);
    snprintf(mins, sizeof mins, "%lld", min);
    snprintf(limits, sizeof limits, "%lld", limit);
    char key[96];
    snprintf(key, sizeof key, "cw:tenant:%s:cases", r->tenant->id);
    /* a cursor only skips entries at exactly its own score */
    const char *cid = cursor_score >= 0 && cursor_score == max ? cursor_id : "";
    const char *argv[] = {key, maxs, mins, cid, limits, statuses, LIST_SCAN_CAP};
    evhttp_clear_headers(&q);
    if (gw_store_run(r, GW_S_LIST, 1, 7, argv, listed) != 0)
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
}

/* ---- tenant: one case ---- */

static void got(struct gw_req *r, const redisReply *reply, const char *err)
{
    if (err) {
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
        return;
    }
    /* id, case_no, status, channel, created, reply_by, updated, tenant, site, view, followup */
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 11 ||
        strcmp(gw_reply_str(reply, 7), r->tenant->id) != 0) {
        gw_error(r, 404, "not_found", "no such case", NULL);
        return;
    }
    const struct cw_site *site = r->tenant->site;
    json_t *view = json_loads(gw_reply_str(reply, 9), 0, NULL);
    json_t *o = json_is_object(view) ? view : json_object();
    if (o != view) json_decref(view);
    json_object_set_new(o, "case_id", json_string(gw_reply_str(reply, 0)));
    json_object_set_new(o, "case_no", json_string(gw_reply_str(reply, 1)));
    json_object_set_new(o, "status", json_string(gw_reply_str(reply, 2)));
    json_object_set_new(o, "channel", json_string(gw_reply_str(reply, 3)));
    json_object_set_new(o, "site", json_string(gw_reply_str(reply, 8)));
    set_time(r->gw, o, "received_at", site, gw_reply_str(reply, 4));
    set_time(r->gw, o, "reply_by", site, gw_reply_str(reply, 5));
    set_time(r->gw, o, "updated_at", site, gw_reply_str(reply, 6));
    if (*gw_reply_str(reply, 10))
        json_object_set_new(o, "followup", json_string(gw_reply_str(reply, 10)));
    gw_reply(r, 200, o);
}

void gw_tenant_get(struct gw_req *r)
{
    const char *argv[] = {r->path_id};
    if (gw_store_run(r, GW_S_GET, 0, 1, argv, got) != 0)
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
}

/* ---- staff: the whole record ---- */

/* A clock or history entry's "*_ms" time, also as local time of the site under `key`. */
static void add_local_time(struct gw *gw, json_t *obj, const char *ms_key, const char *key,
                           const struct cw_site *site)
{
    json_t *v = json_object_get(obj, ms_key);
    if (!json_is_integer(v)) return;
    char buf[48];
    gw_format_time(gw, site, (int64_t)json_integer_value(v), buf, sizeof buf);
    json_object_set_new(obj, key, json_string(buf));
}

/* "due:handoff" = ms into clock_state.handoff.due (and due_ms); stopped_at, breached_at;
 * level as a number. */
static void add_clock_mark(struct gw *gw, json_t *state, const char *field, const char *v,
                           const struct cw_site *site)
{
    const char *colon = strchr(field, ':');
    char mark[16];
    size_t n = (size_t)(colon - field);
    if (n >= sizeof mark || !colon[1] || !*v) return;
    memcpy(mark, field, n);
    mark[n] = '\0';
    json_t *c = json_object_get(state, colon + 1);
    if (!c) {
        c = json_object();
        json_object_set_new(state, colon + 1, c);
    }
    long long x = strtoll(v, NULL, 10);
    if (!strcmp(mark, "level")) {
        json_object_set_new(c, "level", json_integer(x));
        return;
    }
    const char *key = !strcmp(mark, "due")        ? "due"
                      : !strcmp(mark, "stopped")  ? "stopped_at"
                      : !strcmp(mark, "breached") ? "breached_at"
                                                  : NULL;
    if (!key) return;
    char buf[48];
    gw_format_time(gw, site, x, buf, sizeof buf);
    json_object_set_new(c, key, json_string(buf));
    if (!strcmp(mark, "due")) json_object_set_new(c, "due_ms", json_integer(x));
}

static void staff_got(struct gw_req *r, const redisReply *reply, const char *err)
{
    if (err) {
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
        return;
    }
    if (!reply || reply->type != REDIS_REPLY_ARRAY || reply->elements < 3) {
        gw_error(r, 404, "not_found", "no such case", NULL);
        return;
    }
    /* id, name, value, ..., "#history", entries... */
    size_t n = reply->elements, hist = n;
    for (size_t i = 1; i < n; i += 2)
        if (strcmp(gw_reply_str(reply, i), "#history") == 0) {
            hist = i;
            break;
        }
    const char *site_id = "", *status = "", *record = NULL, *view = NULL;
    for (size_t i = 1; i + 1 < hist; i += 2) {
        const char *k = gw_reply_str(reply, i), *v = gw_reply_str(reply, i + 1);
        if (strcmp(k, "site") == 0) site_id = v;
        if (strcmp(k, "status") == 0) status = v;
        if (strcmp(k, "record") == 0) record = v;
        if (strcmp(k, "view") == 0) view = v;
    }
    /* Not confirmed yet, or another site's (unless the reader is the group's): the same 404. */
    const struct cw_site *site = cw_chain_site(r->gw->chain, site_id);
    if (!site || strcmp(status, "pending") == 0 || !cw_staff_sees_site(r->staff, site)) {
        gw_error(r, 404, "not_found", "no such case", NULL);
        return;
    }
    /* The router's record (everything, personal data included: staff call the customer back);
     * before routing, the gateway's view. */
    json_t *o = json_loads(record ? record : view ? view : "{}", 0, NULL);
    if (!json_is_object(o)) {
        json_decref(o);
        o = json_object();
    }
    json_object_set_new(o, "case_id", json_string(gw_reply_str(reply, 0)));
    static const char *const times[][2] = {
        {"created_ms", "received_at"},    {"reply_by_ms", "reply_by"},
        {"updated_ms", "updated_at"},     {"routed_ms", "routed_at"},
        {"acked_ms", "acknowledged_at"},  {"replied_ms", "replied_at"},
        {"resolved_ms", "resolved_at"},   {"closed_ms", "closed_at"},
        {"followup_ms", "followed_up_at"}};
    json_t *clock_state = json_object();
    for (size_t i = 1; i + 1 < hist; i += 2) {
        const char *k = gw_reply_str(reply, i), *v = gw_reply_str(reply, i + 1);
        bool done = false;
        for (size_t t = 0; t < sizeof times / sizeof times[0]; t++)
            if (strcmp(k, times[t][0]) == 0) {
                set_time(r->gw, o, times[t][1], site, v);
                done = true;
            }
        if (!done && strchr(k, ':')) { /* the deadline worker's marks: due:handoff ... */
            add_clock_mark(r->gw, clock_state, k, v, site);
            continue;
        }
        /* internal: the phone check value, the tenant's masked view, the record itself, the
         * list's summary of the text */
        if (done || !*v || strcmp(k, "phone_check") == 0 || strcmp(k, "view") == 0 ||
            strcmp(k, "record") == 0 || strcmp(k, "summary") == 0)
            continue;
        json_object_set_new(o, k, json_string(v));
    }
    json_object_set_new(o, "clock_state", clock_state);
    json_t *clocks = json_object_get(o, "clocks");
    size_t i;
    json_t *c;
    json_array_foreach(clocks, i, c) add_local_time(r->gw, c, "due_ms", "due", site);
    json_t *history = json_array();
    for (size_t h = hist + 1; h < n; h++) {
        json_t *e = json_loads(gw_reply_str(reply, h), 0, NULL);
        if (!json_is_object(e)) {
            json_decref(e);
            continue;
        }
        json_object_set(e, "at_ms", json_object_get(e, "at"));
        json_object_del(e, "at");
        add_local_time(r->gw, e, "at_ms", "at", site);
        json_array_append_new(history, e);
    }
    json_object_set_new(o, "history", history);
    gw_reply(r, 200, o);
}

void gw_staff_get(struct gw_req *r)
{
    const char *argv[] = {r->path_id};
    if (gw_store_run(r, GW_S_STAFF_GET, 0, 1, argv, staff_got) != 0)
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
}
