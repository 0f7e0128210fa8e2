/*
 * POST /v1/cases/{id}/events (staff) and POST /v1/tenant/cases/{id}/events (the tenant):
 * an action on a case becomes a CaseEvent on the cases topic, keyed by case id, so every
 * service sees one ordered history per case.
 *
 * The event script checks, atomically, that the case exists, is the caller's (a tenant's
 * own; a site's staff, their site's) and that its status allows the action; the status the
 * gateway keeps is what the gateway has seen. Concurrent actions on one case may both pass
 * the check: the router, which consumes the history in order, has the last word.
 */
#include <event2/http.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "chain.h"
#include "event.h"
#include "gateway.h"
#include "log.h"
#include "metrics.h"
#include "redis.h"
#include "roster.h"

struct action_def {
    const char *name;
    int action; /* Casewire__V1__CaseAction */
    bool tenant_may;
};

static const struct action_def actions[] = {
    {"acknowledge", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE, true},
    {"note", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_NOTE, true},
    {"reply", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REPLY, true},
    {"resolve", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_RESOLVE, true},
    {"reassign", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REASSIGN, false},
    {"reopen", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REOPEN, false},
    {"followup", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP, false},
    {"close", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_CLOSE, false},
};

static const char *const outcomes[] = {
    [CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_SATISFIED] = "satisfied",
    [CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_NOT_SATISFIED] = "not_satisfied",
    [CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_UNREACHABLE] = "unreachable"};

struct ev {
    const struct action_def *def;
    const char *note, *reply, *to_staff, *to_department, *outcome_name;
    int outcome;
    char case_id[CW_ULID_LEN + 1], event_id[CW_ULID_LEN + 1], case_no[48], site[16], tenant[64],
        old_status[48];
    const char *new_status; /* "" unchanged */
    int actor_kind;         /* CASEWIRE__V1__ACTOR_KIND__* */
    const char *actor_id;
    bool by_sms; /* a customer's SMS reply: a refusal is an answer, not an error */
    /* reassign: the department the case goes to (to_department, else to_staff's), and the
     * person picked in it when only a department was named */
    const char *department;
    char picked[64];
};

#define REASSIGN_CANDIDATES 32 /* people of a department the least loaded is picked among */

static const char *actor_kind_name(int k)
{
    return k == CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_TENANT     ? "tenant"
           : k == CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_CUSTOMER ? "customer"
                                                                : "staff";
}

static const char *status_after(const struct ev *ev)
{
    switch (ev->def->action) {
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE: return "acknowledged";
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_RESOLVE: return "resolved";
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REOPEN: return "reopened";
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_CLOSE: return "closed";
    case CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP:
        /* not satisfied: the case reopens (and the router escalates it) */
        return ev->outcome == CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_NOT_SATISFIED
                   ? "reopened"
                   : "";
    default: return "";
    }
}

/* Everyone in department d (its site's or the group's staff), up to max into out; returns how
 * many there are. */
static size_t department_staff(const cw_chain *chain, const struct cw_department *d,
                               const struct cw_staff **out, size_t max)
{
    const struct cw_staff *staff = d->site ? d->site->staff : cw_chain_group(chain)->staff;
    size_t n = d->site ? d->site->nstaff : cw_chain_group(chain)->nstaff, found = 0;
    for (size_t i = 0; i < n; i++)
        if (staff[i].department == d) {
            if (found < max) out[found] = &staff[i];
            found++;
        }
    return found;
}

static int validate(struct gw_req *r, struct ev *ev, struct gw_verr *e)
{
    static const char *const keys[] = {"action",        "note",    "reply", "to_staff",
                                       "to_department", "outcome", NULL};
    json_t *b = r->body;
    const char *action;
    if (gw_check_keys(b, "", keys, e) != 0) return -1;
    if (gw_get_string(b, "action", "", 20, true, &action, e) != 0) return -1;
    for (size_t i = 0; i < sizeof actions / sizeof *actions; i++)
        if (strcmp(actions[i].name, action) == 0) ev->def = &actions[i];
    bool tenant = r->client == GW_TENANT;
    if (!ev->def || (tenant && !ev->def->tenant_may))
        return gw_fail(
            e, "validation_failed", "action", "unknown action \"%.20s\"; one of: %s", action,
            tenant ? "acknowledge, note, reply, resolve"
                   : "acknowledge, note, reply, resolve, reassign, reopen, followup, close");
    int a = ev->def->action;
    if (r->client == GW_STAFF && !cw_staff_may(r->staff, a))
        return gw_fail(e, "forbidden", "action", "your roles do not allow %s", ev->def->name);
    if (gw_get_string(b, "note", "", 4000, a == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_NOTE,
                      &ev->note, e) != 0 ||
        gw_get_string(b, "reply", "", 4000, a == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REPLY,
                      &ev->reply, e) != 0 ||
        gw_get_string(b, "to_staff", "", 64, false, &ev->to_staff, e) != 0 ||
        gw_get_string(b, "to_department", "", 64, false, &ev->to_department, e) != 0 ||
        gw_get_string(b, "outcome", "", 20, a == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP,
                      &ev->outcome_name, e) != 0)
        return -1;
    if (ev->reply && a != CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REPLY)
        return gw_fail(e, "validation_failed", "reply", "reply goes with action reply");
    if ((ev->to_staff || ev->to_department) && a != CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REASSIGN)
        return gw_fail(e, "validation_failed", ev->to_staff ? "to_staff" : "to_department",
                       "to_staff and to_department go with action reassign");
    if (ev->outcome_name && a != CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP)
        return gw_fail(e, "validation_failed", "outcome", "outcome goes with action followup");
    if (a == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REASSIGN) {
        if (!ev->to_staff && !ev->to_department)
            return gw_fail(e, "validation_failed", "to_staff",
                           "reassign needs to_staff or to_department");
        if (ev->to_staff && !cw_chain_staff(r->gw->chain, ev->to_staff))
            return gw_fail(e, "validation_failed", "to_staff", "no staff member \"%.64s\"",
                           ev->to_staff);
        const struct cw_department *d =
            ev->to_department ? cw_chain_department(r->gw->chain, ev->to_department) : NULL;
        if (ev->to_department && !d)
            return gw_fail(e, "validation_failed", "to_department", "no department \"%.64s\"",
                           ev->to_department);
        if (d && !ev->to_staff && !department_staff(r->gw->chain, d, NULL, 0))
            return gw_fail(e, "validation_failed", "to_department",
                           "department \"%.64s\" has nobody to take the case: name to_staff",
                           ev->to_department);
        const struct cw_staff *st =
            ev->to_staff ? cw_chain_staff(r->gw->chain, ev->to_staff) : NULL;
        ev->department = d ? d->id : st && st->department ? st->department->id : NULL;
    }
    if (ev->outcome_name) {
        for (int i = 1; i < (int)(sizeof outcomes / sizeof *outcomes); i++)
            if (strcmp(outcomes[i], ev->outcome_name) == 0) ev->outcome = i;
        if (!ev->outcome)
            return gw_fail(e, "validation_failed", "outcome",
                           "outcome is satisfied, not_satisfied or unreachable");
    }
    return 0;
}

static json_t *response(const struct ev *ev)
{
    return json_pack("{s:s,s:s,s:s,s:s}", "event_id", ev->event_id, "case_id", ev->case_id,
                     "case_no", ev->case_no, "status",
                     ev->new_status[0] ? ev->new_status : ev->old_status);
}

static void committed(struct gw_req *r, const redisReply *reply, const char *err)
{
    struct ev *ev = r->op;
    (void)reply;
    if (err)
        cw_warn("event.commit_failed", "request_id=%s case_id=%s error=\"%s\"", r->request_id,
                ev->case_id, err);
    cw_metric_add(r->gw->events_accepted, 1);
    if (r->answer)
        gw_reply_raw(r, 202, r->answer, strlen(r->answer));
    else
        gw_reply(r, 202, response(ev));
}

/* What the case's history shows of this action (docs/api.md, GET /v1/cases/{id}). */
static char *history_entry(const struct ev *ev, int64_t at_ms)
{
    json_t *h = json_pack("{s:I,s:s,s:s,s:s,s:s}", "at", (json_int_t)at_ms, "event", ev->def->name,
                          "event_id", ev->event_id, "actor", ev->actor_id, "actor_kind",
                          actor_kind_name(ev->actor_kind));
    if (!h) return NULL;
    if (ev->note) json_object_set_new(h, "note", json_string(ev->note));
    if (ev->reply) json_object_set_new(h, "reply", json_string(ev->reply));
    if (ev->outcome_name) json_object_set_new(h, "outcome", json_string(ev->outcome_name));
    if (ev->to_staff) json_object_set_new(h, "to_staff", json_string(ev->to_staff));
    if (ev->to_department) json_object_set_new(h, "to_department", json_string(ev->to_department));
    if (ev->new_status[0]) json_object_set_new(h, "status", json_string(ev->new_status));
    char *s = json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(h);
    return s;
}

static void delivered(void *opaque, int error, const char *errstr)
{
    struct gw_req *r = opaque;
    struct ev *ev = r->op;
    if (error) {
        cw_warn("event.not_delivered", "request_id=%s case_id=%s error=\"%s\"", r->request_id,
                ev->case_id, errstr);
        gw_store_release(r);
        gw_store_unavailable(r, CW_PRODUCE_FAILED, "action");
        gw_req_release(r);
        return;
    }
    cw_info("event.accepted", "request_id=%s case_id=%s action=%s actor=%s", r->request_id,
            ev->case_id, ev->def->name, ev->actor_id);
    json_t *resp = response(ev);
    r->answer = resp ? json_dumps(resp, JSON_COMPACT) : NULL;
    json_decref(resp);
    char now[24], at[24];
    snprintf(now, sizeof now, "%lld", (long long)cw_now_ms());
    /* The entry's time is its event id's: the same on a retried commit, so it is one entry. */
    int64_t at_ms = cw_ulid_time_ms(ev->event_id);
    snprintf(at, sizeof at, "%lld", (long long)at_ms);
    char *entry = history_entry(ev, at_ms);
    char day[16] = "";
    struct cw_local local;
    const struct cw_site *site = cw_chain_site(r->gw->chain, ev->site);
    if (site && cw_calendar_local(r->gw->cal, site, at_ms, &local) == 0)
        snprintf(day, sizeof day, "%d", local.yyyymmdd);
    const char *argv[] = {r->idem_key,
                          ev->case_id,
                          ev->def->name,
                          ev->outcome_name ? ev->outcome_name : "",
                          now,
                          ev->new_status,
                          r->answer ? r->answer : "{}",
                          entry ? entry : "{}",
                          at,
                          ev->to_staff ? ev->to_staff : "",
                          day,
                          "",
                          ev->department ? ev->department : ""};
    int rc = gw_store_run(r, GW_S_EVENT_COMMIT, 1, 13, argv, committed);
    free(entry);
    if (rc != 0) committed(r, NULL, cw_redis_strerror(rc));
    gw_req_release(r);
}

static int produce(struct gw_req *r)
{
    struct ev *ev = r->op;
    Casewire__V1__Envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    Casewire__V1__EventMeta meta;
    Casewire__V1__CaseEvent ce = CASEWIRE__V1__CASE_EVENT__INIT;
    cw_event_meta_init_as(&meta, ev->event_id, "gateway", ev->case_id, ev->site,
                          strcmp(ev->tenant, "-") ? ev->tenant : NULL, NULL);
    meta.request_id = r->request_id;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT;
    env.case_event = &ce;
    ce.action = ev->def->action;
    ce.actor_kind = ev->actor_kind;
    ce.actor_id = (char *)ev->actor_id;
    ce.note = (char *)(ev->note ? ev->note : "");
    ce.reply = (char *)(ev->reply ? ev->reply : "");
    ce.reassign_to_staff_id = (char *)(ev->to_staff ? ev->to_staff : "");
    ce.reassign_to_department_id = (char *)(ev->to_department ? ev->to_department : "");
    ce.outcome = ev->outcome;
    uint8_t *buf;
    size_t len = cw_event_pack(&env, &buf);
    if (!len) return CW_PRODUCE_FAILED;
    int rc = cw_producer_send(r->gw->producer, CW_TOPIC_CASES, ev->case_id, strlen(ev->case_id),
                              buf, len, delivered, r);
    free(buf);
    if (rc == CW_PRODUCE_OK) gw_req_hold(r);
    return rc;
}

static void produce_or_release(struct gw_req *r)
{
    int rc = produce(r);
    if (rc != CW_PRODUCE_OK) {
        gw_store_release(r);
        gw_store_unavailable(r, rc, "action");
    }
}

static void picked(struct gw_req *r, const redisReply *reply, const char *err)
{
    struct ev *ev = r->op;
    const char *who = err ? "" : gw_reply_str(reply, 0);
    if (!*who) {
        gw_store_release(r);
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
        return;
    }
    snprintf(ev->picked, sizeof ev->picked, "%s", who);
    ev->to_staff = ev->picked; /* the event names who takes it: the deadline worker's owner */
    produce_or_release(r);
}

/* A reassign to a department: whoever of it is on duty now (else anyone of it) with the fewest
 * open cases at the case's site, as the router picks (cw:load:<site>). */
static void pick_owner(struct gw_req *r)
{
    struct ev *ev = r->op;
    const cw_chain *chain = r->gw->chain;
    const struct cw_department *d = cw_chain_department(chain, ev->to_department);
    const struct cw_site *site = cw_chain_site(chain, ev->site);
    const struct cw_staff *people[REASSIGN_CANDIDATES];
    size_t n = d && site ? cw_roster_department_on_duty(chain, r->gw->cal, site, d, cw_now_ms(),
                                                        people, REASSIGN_CANDIDATES)
                         : 0;
    if (n == 0 && d) n = department_staff(chain, d, people, REASSIGN_CANDIDATES);
    if (n > REASSIGN_CANDIDATES) n = REASSIGN_CANDIDATES;
    const char *argv[1 + REASSIGN_CANDIDATES] = {ev->site};
    for (size_t i = 0; i < n; i++) argv[1 + i] = people[i]->id;
    if (n == 0 || gw_store_run(r, GW_S_LEAST_LOADED, 0, (int)(1 + n), argv, picked) != 0) {
        gw_store_release(r);
        gw_error_retry(r, 503, "unavailable", "case store unavailable; retry", 2);
    }
}

static void begun(struct gw_req *r, const redisReply *reply, const char *err)
{
    struct ev *ev = r->op;
    if (err) {
        gw_error_retry(r, 503, "unavailable",
                       "case store unavailable; retry with the same Idempotency-Key", 2);
        return;
    }
    const char *status = gw_reply_str(reply, 0);
    if (ev->by_sms && (!strcmp(status, "not_found") || !strcmp(status, "invalid"))) {
        /* the reply came too late, or twice: the provider must not resend it */
        gw_reply(r, 200,
                 json_pack("{s:s,s:s}", "action", "none", "reason",
                           "the case no longer waits for this reply"));
        return;
    }
    if (strcmp(status, "not_found") == 0) {
        gw_error(r, 404, "not_found", "no such case", NULL);
        return;
    }
    if (strcmp(status, "invalid") == 0) {
        char msg[200];
        snprintf(msg, sizeof msg, "%s is not possible: the case is %s", ev->def->name,
                 gw_reply_str(reply, 1));
        gw_error(r, 409, "invalid_transition", msg, "action");
        return;
    }
    if (gw_store_idem_answer(r, reply, "action")) return;
    if (sscanf(gw_reply_str(reply, 1), "%26s %26s %47s %15s %63s %47s", ev->case_id, ev->event_id,
               ev->case_no, ev->site, ev->tenant, ev->old_status) != 6) {
        gw_error_retry(r, 503, "unavailable", "case store answered unexpectedly; retry", 2);
        return;
    }
    ev->new_status = status_after(ev);
    if (ev->to_department && !ev->to_staff) {
        pick_owner(r);
        return;
    }
    produce_or_release(r);
}

/* Reserves the event in the case store (idempotency, the transition's check), then produces
 * it (begun), then commits it (delivered). */
static void start(struct gw_req *r, struct ev *ev)
{
    char new_event[CW_ULID_LEN + 1], now[24], lease[24], ttl[16];
    if (cw_ulid_new(new_event) != 0) {
        gw_error(r, 500, "internal", "could not make an event id", NULL);
        return;
    }
    snprintf(now, sizeof now, "%lld", (long long)cw_now_ms());
    snprintf(lease, sizeof lease, "%lld", r->gw->reply_timeout_ms + 1000);
    snprintf(ttl, sizeof ttl, "%d", 24 * 3600);
    /* the sites a staff member acts on (",SH01,"; "" every site), checked in the script; a
     * site id is at most 8 characters */
    size_t nsites = r->client == GW_STAFF && !r->staff->site ? r->staff->nsites : 1;
    char *site = malloc(2 + 9 * nsites);
    if (!site) {
        gw_error(r, 503, "unavailable", "out of memory", NULL);
        return;
    }
    site[0] = '\0';
    if (r->client == GW_STAFF) gw_visible_sites(r->staff, site, 2 + 9 * nsites);
    const char *tenant = r->client == GW_TENANT ? r->tenant->id : "";
    const char *argv[] = {r->idem_key,
                          r->body_sha,
                          now,
                          lease,
                          ttl,
                          r->path_id,
                          site,
                          tenant,
                          ev->def->name,
                          new_event,
                          ev->outcome_name ? ev->outcome_name : "",
                          actor_kind_name(ev->actor_kind)};
    int rc = gw_store_run(r, GW_S_EVENT, 1, 12, argv, begun);
    free(site);
    if (rc != 0)
        gw_error_retry(r, 503, "unavailable",
                       "case store unavailable; retry with the same Idempotency-Key", 2);
}

/* The request's event state, owned by r; NULL having answered. */
static struct ev *new_ev(struct gw_req *r)
{
    struct ev *ev = calloc(1, sizeof *ev);
    if (!ev) {
        gw_error(r, 500, "internal", "out of memory", NULL);
        return NULL;
    }
    r->op = ev;
    r->op_free = free;
    return ev;
}

void gw_case_event(struct gw_req *r)
{
    struct ev *ev = new_ev(r);
    if (!ev) return;
    struct gw_verr e = {0};
    if (validate(r, ev, &e) != 0) {
        gw_error(r, strcmp(e.code, "forbidden") ? 422 : 403, e.code, e.message, e.field);
        return;
    }
    ev->actor_kind = r->client == GW_TENANT ? CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_TENANT
                                            : CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_STAFF;
    ev->actor_id = r->client == GW_TENANT ? r->tenant->id : r->staff->id;
    start(r, ev);
}

void gw_customer_followup(struct gw_req *r, const char *case_id, bool satisfied)
{
    struct ev *ev = new_ev(r);
    if (!ev) return;
    snprintf(r->path_buf, sizeof r->path_buf, "%s", case_id);
    r->path_id = r->path_buf;
    for (size_t i = 0; i < sizeof actions / sizeof *actions; i++)
        if (actions[i].action == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP)
            ev->def = &actions[i];
    ev->outcome = satisfied ? CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_SATISFIED
                            : CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_NOT_SATISFIED;
    ev->outcome_name = outcomes[ev->outcome];
    ev->note = satisfied ? "the customer replied by SMS: satisfied"
                         : "the customer replied by SMS: not satisfied";
    ev->actor_kind = CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_CUSTOMER;
    ev->actor_id = "sms";
    ev->by_sms = true;
    start(r, ev);
}
