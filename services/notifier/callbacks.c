/* Callback tasks for the follow-up (see callbacks.h). */
#include "callbacks.h"

#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "ids.h"
#include "log.h"
#include "policy.h"
#include "publish.h"
#include "unreachable.h"

struct nt_callbacks {
    cw_redis *redis;
    const cw_chain *chain;
    const cw_calendar *cal;
    cw_redis_script *add, *outcome;
    nt_unreachable *unreachable;
    cw_producer *producer;
};

/* A task that is over is kept a little longer than a year's reports need, then forgotten. */
#define KEEP_SETTLED_S "34560000" /* 400 days */

// clang-format off
/* KEYS task, queue, case's task, site's day of tasks; ARGV task id, case id, case no, site,
 * urgency, due ms, resolved ms, resolve event id. 1 new, 0 known. A new resolution supersedes
 * the case's earlier task if that is still open (a reopen that was never followed up). */
static const char add_lua[] =
    "if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end "
    "local prev = redis.call('GET', KEYS[3]) "
    "if prev and redis.call('HGET', 'cw:cb:task:' .. prev, 'state') == 'open' then "
    "  redis.call('HSET', 'cw:cb:task:' .. prev, 'state', 'superseded') "
    "  redis.call('EXPIRE', 'cw:cb:task:' .. prev, " KEEP_SETTLED_S ") "
    "  redis.call('ZREM', KEYS[2], prev) "
    "end "
    "redis.call('HSET', KEYS[1], 'case_id', ARGV[2], 'case_no', ARGV[3], 'site', ARGV[4], "
    "  'urgency', ARGV[5], 'due_ms', ARGV[6], 'resolved_ms', ARGV[7], 'event_id', ARGV[8], "
    "  'state', 'open', 'attempts', 0) "
    "redis.call('ZADD', KEYS[2], ARGV[6], ARGV[1]) "
    "redis.call('SET', KEYS[3], ARGV[1]) "
    "redis.call('SADD', KEYS[4], ARGV[2]) "
    "redis.call('EXPIRE', KEYS[4], 400 * 86400) "
    "return 1";

/* KEYS the case's task pointer; ARGV what (satisfied, not_satisfied, unreachable, or cancel:
 * the case was reopened or closed), now ms, retry ms, max attempts, event id. Every event id
 * applies once (remembered in the task). Returns none (no task), dup, closed (the task is
 * over), done, retry, {unreachable, task id} (the last attempt: again for the same event until
 * the task is "wrapped", see unreachable.h), {report, task id} (satisfied, and the case is a
 * regulator's referral: again until the task is "reported", see publish.h), cancelled. */
static const char outcome_lua[] =
    "local tid = redis.call('GET', KEYS[1]) "
    "if not tid then return 'none' end "
    "local tk = 'cw:cb:task:' .. tid "
    "local t = redis.call('HMGET', tk, 'state', 'site', 'attempts', 'wrapped', 'case_id', "
    "  'reported') "
    "if not t[1] then return 'none' end "
    "local function regulator() "
    "  return redis.call('HGET', 'cw:case:' .. t[5], 'channel') == 'regulator' end "
    "if redis.call('HSETNX', tk, 'ev:' .. ARGV[5], 1) == 0 then "
    /* the last unreachable call whose close did not finish: go on with it */
    "  if t[1] == 'unreachable' and not t[4] and ARGV[1] == 'unreachable' then "
    "    return {'unreachable', tid} end "
    /* a regulator's referral whose report-back task was not published yet */
    "  if t[1] == 'done' and not t[6] and ARGV[1] == 'satisfied' and regulator() then "
    "    return {'report', tid} end "
    "  return 'dup' "
    "end "
    "if t[1] ~= 'open' then return 'closed' end "
    "local q = 'cw:cb:' .. t[2] .. ':queue' "
    "if ARGV[1] == 'cancel' then "
    "  redis.call('HSET', tk, 'state', 'cancelled') "
    "  redis.call('EXPIRE', tk, " KEEP_SETTLED_S ") "
    "  redis.call('ZREM', q, tid) "
    "  return 'cancelled' "
    "end "
    "redis.call('HSET', tk, 'outcome', ARGV[1], 'agent', '', 'lease_until', 0) "
    "if ARGV[1] == 'unreachable' then "
    "  local n = tonumber(t[3] or '0') + 1 "
    "  redis.call('HSET', tk, 'attempts', n) "
    "  if n >= tonumber(ARGV[4]) then "
    "    redis.call('HSET', tk, 'state', 'unreachable') "
    "    redis.call('EXPIRE', tk, " KEEP_SETTLED_S ") "
    "    redis.call('ZREM', q, tid) "
    "    return {'unreachable', tid} "
    "  end "
    "  local due = tonumber(ARGV[2]) + tonumber(ARGV[3]) "
    /* not before then: the agents' claim refuses it until the hour is up (the gateway) */
    "  redis.call('HSET', tk, 'state', 'open', 'due_ms', due, 'not_before', due) "
    "  redis.call('ZADD', q, due, tid) "
    "  return 'retry' "
    "end "
    "redis.call('HSET', tk, 'state', 'done') "
    "redis.call('EXPIRE', tk, " KEEP_SETTLED_S ") "
    "redis.call('ZREM', q, tid) "
    /* not satisfied reopens the case: the regulator hears when it is settled */
    "if ARGV[1] == 'satisfied' and regulator() then return {'report', tid} end "
    "return 'done'";
// clang-format on

nt_callbacks *nt_callbacks_new(cw_redis *r, cw_producer *p, const cw_chain *chain,
                               const cw_calendar *cal)
{
    nt_callbacks *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    *c = (nt_callbacks){.redis = r, .chain = chain, .cal = cal, .producer = p};
    c->add = cw_redis_script_new(r, add_lua);
    c->outcome = cw_redis_script_new(r, outcome_lua);
    c->unreachable = nt_unreachable_new(r, p, chain);
    if (!c->add || !c->outcome || !c->unreachable) {
        nt_unreachable_free(c->unreachable);
        free(c);
        return NULL;
    }
    return c;
}

void nt_callbacks_free(nt_callbacks *c)
{
    if (!c) return;
    nt_unreachable_free(c->unreachable);
    free(c);
}

/* One resolution or outcome being applied. */
struct job {
    nt_callbacks *c;
    void (*done)(void *, int, const char *);
    void *arg;
    char case_id[CW_ULID_LEN + 1], event_id[CW_ULID_LEN + 1], site[32];
    int64_t at_ms;
    bool outcome; /* a follow-up outcome: it may arrive before its resolution's task exists */
    char task_id[80];
    int attempt;
};

static void finish(struct job *j, int ok, const char *why)
{
    j->done(j->arg, ok, why);
    free(j);
}

static const char *field(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : NULL;
}

/* ---- a regulator's referral: the report-back task, once the follow-up is done ---- */

static void on_reported(void *arg, const redisReply *r, const char *err)
{
    struct job *j = arg;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        finish(j, 0, err ? err : r->str);
        return;
    }
    finish(j, 1, NULL);
}

static void on_report_published(void *opaque, int error, const char *errstr)
{
    struct job *j = opaque;
    if (error) {
        finish(j, 0, errstr);
        return;
    }
    int rc = cw_redis_commandf(j->c->redis, on_reported, j, "HSET cw:cb:task:%s reported %lld",
                               j->task_id, (long long)j->at_ms);
    if (rc != CW_REDIS_OK) finish(j, 0, cw_redis_strerror(rc));
}

static void on_report_case(void *arg, const redisReply *r, const char *err)
{
    struct job *j = arg;
    if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 4) {
        finish(j, 0, err ? err : "bad reply");
        return;
    }
    char ref[128];
    nt_record_field(field(r, 3) ? field(r, 3) : "", "external_ref", NULL, ref, sizeof ref);
    struct nt_regulator_report rep = {.callback_task_id = j->task_id,
                                      .case_id = j->case_id,
                                      .site = j->site,
                                      .tenant = field(r, 2),
                                      .owner = field(r, 0),
                                      .case_no = field(r, 1) ? field(r, 1) : j->case_id,
                                      .external_ref = ref,
                                      /* the case's follow-up field may not show it yet:
                                       * the gateway commits after Kafka confirmed */
                                      .outcome = "satisfied",
                                      .at_ms = j->at_ms};
    if (!rep.owner || !*rep.owner) {
        /* the router always assigns someone; a case without an owner has nobody to ask */
        cw_warn("notifier.regulator_no_owner", "case=%s: nobody to report back to the regulator",
                j->case_id);
        on_report_published(j, 0, NULL);
        return;
    }
    int rc = nt_regulator_send(j->c->producer, &rep, on_report_published, j);
    if (rc != CW_PRODUCE_OK) finish(j, 0, "Kafka did not take the regulator report task");
}

static void report_back(struct job *j, const char *task_id)
{
    snprintf(j->task_id, sizeof j->task_id, "%s", task_id);
    int rc = cw_redis_commandf(j->c->redis, on_report_case, j,
                               "HMGET cw:case:%s owner case_no tenant record", j->case_id);
    if (rc != CW_REDIS_OK) finish(j, 0, cw_redis_strerror(rc));
}

static void on_closed(void *arg, int ok, const char *why) { finish(arg, ok, why); }

static void on_script(void *arg, const redisReply *r, const char *err)
{
    struct job *j = arg;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        finish(j, 0, err ? err : r->str);
        return;
    }
    bool str = r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING;
    if (str) cw_debug("notifier.callback_outcome", "case=%s result=%s", j->case_id, r->str);
    /* The case's records are applied concurrently: an outcome can overtake the resolution
     * whose task it completes. Wait for it a while; a case resolved before the notifier knew
     * about follow-ups has no task at all, and then the outcome has nothing to do. */
    if (str && j->outcome && !strcmp(r->str, "none") && j->attempt < NT_CB_WAIT_ATTEMPTS) {
        finish(j, 0, "no callback task yet");
        return;
    }
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 &&
        r->element[0]->type == REDIS_REPLY_STRING && r->element[1]->type == REDIS_REPLY_STRING) {
        if (!strcmp(r->element[0]->str, "unreachable")) { /* the last call */
            if (nt_unreachable_close(j->c->unreachable, r->element[1]->str, j->case_id, j->site,
                                     j->at_ms, on_closed, j) != 0)
                finish(j, 0, "out of memory");
        } else {
            report_back(j, r->element[1]->str);
        }
        return;
    }
    finish(j, 1, NULL);
}

/* The case's facts are in: its follow-up clock, then the task. */
static void on_case(void *arg, const redisReply *r, const char *err)
{
    struct job *j = arg;
    nt_callbacks *c = j->c;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        finish(j, 0, err ? err : "bad reply");
        return;
    }
    const char *case_no = field(r, 0), *tenant = field(r, 6), *urgency = field(r, 3);
    const struct cw_site *site = cw_chain_site(c->chain, j->site);
    struct cw_case_facts f = {.site = site, .has_tenant = tenant && *tenant && strcmp(tenant, "-")};
    if (field(r, 1)) f.type = cw_case_type_parse(field(r, 1));
    if (field(r, 2)) f.category = cw_category_parse(field(r, 2));
    if (urgency) f.urgency = cw_urgency_parse(urgency);
    if (field(r, 4)) f.validity = cw_validity_parse(field(r, 4));
    if (field(r, 5)) f.channel = cw_channel_parse(field(r, 5));
    /* a name this chain does not know counts as not known */
    if (f.type < 0) f.type = 0;
    if (f.category < 0) f.category = 0;
    if (f.urgency < 0) f.urgency = 0;
    if (f.validity < 0) f.validity = 0;
    if (f.channel < 0) f.channel = 0;
    int64_t due = j->at_ms + NT_CB_DEFAULT_DUE_MS;
    const struct cw_policy *p = site ? cw_policy_for(c->chain, &f) : NULL;
    if (p && cw_policy_due(c->cal, site, p, CASEWIRE__V1__CLOCK_KIND__CLOCK_FOLLOWUP, j->at_ms,
                           &due) < 0)
        due = j->at_ms + NT_CB_DEFAULT_DUE_MS;
    struct cw_local day;
    int ymd = site && cw_calendar_local(c->cal, site, j->at_ms, &day) == 0 ? day.yyyymmdd : 0;
    char task_id[64], tk[80], q[64], ck[64], dk[80], due_s[24], at_s[24];
    snprintf(task_id, sizeof task_id, "%s-%s", j->case_id, j->event_id);
    snprintf(tk, sizeof tk, "cw:cb:task:%s", task_id);
    snprintf(q, sizeof q, "cw:cb:%s:queue", j->site);
    snprintf(ck, sizeof ck, "cw:cb:case:%s", j->case_id);
    snprintf(dk, sizeof dk, "cw:cb:%s:created:%d", j->site, ymd);
    snprintf(due_s, sizeof due_s, "%lld", (long long)due);
    snprintf(at_s, sizeof at_s, "%lld", (long long)j->at_ms);
    const char *argv[] = {tk,
                          q,
                          ck,
                          dk,
                          task_id,
                          j->case_id,
                          case_no ? case_no : j->case_id,
                          j->site,
                          urgency ? urgency : "general",
                          due_s,
                          at_s,
                          j->event_id};
    int rc = cw_redis_script_run(c->redis, c->add, on_script, j, 4, 12, argv, NULL);
    if (rc != CW_REDIS_OK) finish(j, 0, cw_redis_strerror(rc));
}

int nt_callbacks_apply(nt_callbacks *c, const cw_envelope *rec, int attempt,
                       void (*done)(void *arg, int ok, const char *why), void *arg)
{
    if (rec->body_case != CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT) return 0;
    const Casewire__V1__CaseEvent *e = rec->case_event;
    int resolve = e->action == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_RESOLVE;
    int outcome = e->action == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP && e->outcome;
    int cancel = e->action == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REOPEN ||
                 e->action == CASEWIRE__V1__CASE_ACTION__CASE_ACTION_CLOSE;
    if (!resolve && !outcome && !cancel) return 0;
    const cw_event_meta *m = rec->meta;
    if (!cw_ulid_valid(m->case_id) || !cw_ulid_valid(m->event_id) || !m->site_id ||
        strlen(m->site_id) >= 32)
        return 0; /* not ours to judge: the router refuses such records */
    struct job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    *j = (struct job){.c = c,
                      .done = done,
                      .arg = arg,
                      .at_ms = m->occurred_ms,
                      .outcome = outcome,
                      .attempt = attempt};
    if (j->at_ms <= 0) j->at_ms = cw_now_ms();
    snprintf(j->case_id, sizeof j->case_id, "%s", m->case_id);
    snprintf(j->event_id, sizeof j->event_id, "%s", m->event_id);
    snprintf(j->site, sizeof j->site, "%s", m->site_id);
    int rc;
    if (resolve) {
        rc = cw_redis_commandf(c->redis, on_case, j,
                               "HMGET cw:case:%s case_no type category urgency "
                               "validity channel tenant",
                               j->case_id);
    } else {
        const char *word =
            cancel ? "cancel"
            : e->outcome == CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_SATISFIED
                ? "satisfied"
            : e->outcome == CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_UNREACHABLE
                ? "unreachable"
                : "not_satisfied";
        char ck[64], now[24], retry[24], max[8];
        snprintf(ck, sizeof ck, "cw:cb:case:%s", j->case_id);
        snprintf(now, sizeof now, "%lld", (long long)j->at_ms);
        snprintf(retry, sizeof retry, "%lld", NT_CB_RETRY_MS);
        snprintf(max, sizeof max, "%d", NT_CB_MAX_ATTEMPTS);
        const char *argv[] = {ck, word, now, retry, max, j->event_id};
        rc = cw_redis_script_run(c->redis, c->outcome, on_script, j, 1, 6, argv, NULL);
    }
    if (rc != CW_REDIS_OK) {
        free(j);
        return -1;
    }
    return 1;
}
