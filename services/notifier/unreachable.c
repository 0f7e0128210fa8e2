/* Closing a case whose customer was never reached (see unreachable.h). */
#include "unreachable.h"

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "casestore.h"
#include "event.h"
#include "ids.h"
#include "log.h"
#include "publish.h"

#define TEMPLATE "followup_unreachable"

struct nt_unreachable {
    cw_redis *redis;
    cw_producer *producer;
    const cw_chain *chain;
    cw_redis_script *code, *commit;
};

// clang-format off
/* ARGV: 1 key prefix (cw:cb:reply:<phone hash>:), 2 case id, 3 first code to try, 4 ttl s,
 * 5 digits. The code this number already has for the case, else the first free one from
 * ARGV[3] on (another case of the same number may hold one). Returns the code, or nil. */
static const char code_lua[] =
    "local span = math.floor(10 ^ tonumber(ARGV[5])) "
    "for i = 0, 99 do "
    "  local code = string.format('%0' .. ARGV[5] .. 'd', (tonumber(ARGV[3]) + i) % span) "
    "  local k = ARGV[1] .. code "
    "  local v = redis.call('GET', k) "
    "  if v == ARGV[2] then return code end "
    "  if not v then redis.call('SET', k, ARGV[2], 'EX', ARGV[4]) return code end "
    "end "
    "return false";
// clang-format on

nt_unreachable *nt_unreachable_new(cw_redis *r, cw_producer *p, const cw_chain *chain)
{
    nt_unreachable *u = calloc(1, sizeof *u);
    if (!u) return NULL;
    *u = (nt_unreachable){.redis = r, .producer = p, .chain = chain};
    u->code = cw_redis_script_new(r, code_lua);
    u->commit = cw_redis_script_new(r, cw_case_event_commit_lua);
    if (!u->code || !u->commit) {
        free(u);
        return NULL;
    }
    return u;
}

void nt_unreachable_free(nt_unreachable *u) { free(u); }

struct close_job {
    nt_unreachable *u;
    void (*done)(void *, int, const char *);
    void *arg;
    char task_id[80], case_id[CW_ULID_LEN + 1], site[32];
    char case_no[48], tenant[64], language[16], phone[32], code[8];
    char owner[64], external_ref[128];
    bool regulator; /* a regulator's referral: its report-back task goes too */
    char close_id[CW_ULID_LEN + 1], sms_event_id[CW_ULID_LEN + 1];
    int64_t at_ms;
    int publishing, publish_failed;
};

static void finish(struct close_job *j, int ok, const char *why)
{
    j->done(j->arg, ok, why);
    free(j);
}

static const char *str_at(const redisReply *r, size_t i)
{
    return i < r->elements && r->element[i]->type == REDIS_REPLY_STRING ? r->element[i]->str : "";
}

static void on_marked(void *arg, const redisReply *r, const char *err)
{
    struct close_job *j = arg;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        finish(j, 0, err ? err : r->str);
        return;
    }
    finish(j, 1, NULL);
}

/* Step 5: the task is wrapped up; its outcome script stops answering "unreachable". A case
 * reopened before it could be closed has its follow-up cancelled, as a reopen does. */
static void mark_wrapped(struct close_job *j, bool cancelled)
{
    int rc = cw_redis_commandf(j->u->redis, on_marked, j,
                               "HSET cw:cb:task:%s wrapped %lld reported %lld state %s", j->task_id,
                               (long long)j->at_ms, (long long)j->at_ms,
                               cancelled ? "cancelled" : "unreachable");
    if (rc != CW_REDIS_OK) finish(j, 0, cw_redis_strerror(rc));
}

static void on_published(void *opaque, int error, const char *errstr)
{
    struct close_job *j = opaque;
    if (error) {
        cw_warn("notifier.unreachable_publish_failed", "case=%s error=\"%s\"", j->case_id, errstr);
        j->publish_failed = 1;
    }
    if (--j->publishing > 0) return;
    if (j->publish_failed)
        finish(j, 0, "Kafka did not take the close, its SMS or its regulator task (logged)");
    else
        mark_wrapped(j, false);
}

static int send_close(struct close_job *j, Casewire__V1__Envelope *env)
{
    uint8_t *buf;
    size_t len = cw_event_pack(env, &buf);
    if (!len) return -1;
    int rc = cw_producer_send(j->u->producer, CW_TOPIC_CASES, j->case_id, strlen(j->case_id), buf,
                              len, on_published, j);
    free(buf);
    if (rc != CW_PRODUCE_OK) return -1;
    j->publishing++;
    return 0;
}

/* Step 4: the close for every consumer (deadline worker, webhooks, our own callback queue),
 * and the SMS with the reply code. */
static void publish(struct close_job *j)
{
    Casewire__V1__Envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    Casewire__V1__EventMeta meta;
    Casewire__V1__CaseEvent ce = CASEWIRE__V1__CASE_EVENT__INIT;
    const char *tenant = *j->tenant && strcmp(j->tenant, "-") ? j->tenant : NULL;
    cw_event_meta_init_as(&meta, j->close_id, "notifier", j->case_id, j->site, tenant, NULL);
    meta.occurred_ms = j->at_ms;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT;
    env.case_event = &ce;
    ce.action = CASEWIRE__V1__CASE_ACTION__CASE_ACTION_CLOSE;
    ce.actor_kind = CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_SYSTEM;
    ce.actor_id = "notifier";
    ce.note = "closed as unreachable: the customer did not answer the follow-up calls";
    ce.outcome = CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_UNREACHABLE;
    /* one reference held while both are queued, so the first report cannot finish the job */
    j->publishing = 1;
    if (send_close(j, &env) != 0) j->publish_failed = 1;

    if (!j->publish_failed && j->phone[0]) {
        const struct cw_site *site = cw_chain_site(j->u->chain, j->site);
        const char *lang = j->language[0] ? j->language : cw_chain_default_language(j->u->chain);
        bool en = !strcmp(lang, "en");
        char task_id[96];
        snprintf(task_id, sizeof task_id, "%s:unreachable-sms", j->task_id);
        const char *keys[] = {"case_no", "reply_code", "site_name"};
        const char *values[] = {j->case_no, j->code,
                                !site                 ? ""
                                : en && site->name_en ? site->name_en
                                                      : site->name};
        struct nt_new_task t = {.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS,
                                .task_id = task_id,
                                .event_id = j->sms_event_id,
                                .causation_id = j->close_id,
                                .case_id = j->case_id,
                                .site = j->site,
                                .tenant = j->tenant,
                                .phone = j->phone,
                                .template_id = TEMPLATE,
                                .language = lang,
                                .keys = keys,
                                .values = values,
                                .nparams = 3,
                                .at_ms = j->at_ms};
        if (nt_task_send(j->u->producer, &t, on_published, j) == CW_PRODUCE_OK)
            j->publishing++;
        else
            j->publish_failed = 1;
    }
    if (j->regulator && !j->owner[0])
        cw_warn("notifier.regulator_no_owner", "case=%s: nobody to report back to the regulator",
                j->case_id);
    if (!j->publish_failed && j->regulator && j->owner[0]) {
        struct nt_regulator_report rep = {.callback_task_id = j->task_id,
                                          .case_id = j->case_id,
                                          .site = j->site,
                                          .tenant = j->tenant,
                                          .owner = j->owner,
                                          .case_no = j->case_no,
                                          .external_ref = j->external_ref,
                                          .outcome = "unreachable",
                                          .at_ms = j->at_ms};
        if (nt_regulator_send(j->u->producer, &rep, on_published, j) == CW_PRODUCE_OK)
            j->publishing++;
        else
            j->publish_failed = 1;
    }
    on_published(j, 0, NULL);
}

static void on_committed(void *arg, const redisReply *r, const char *err)
{
    struct close_job *j = arg;
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        finish(j, 0, err ? err : r->type == REDIS_REPLY_ERROR ? r->str : "bad reply");
        return;
    }
    if (r->integer != 1) {
        /* reopened (or gone) meanwhile: that decision stands; nothing to close or send */
        cw_info("notifier.unreachable_not_closed", "case=%s reason=%s", j->case_id,
                r->integer == 0 ? "no such case" : "no longer resolved");
        mark_wrapped(j, true);
        return;
    }
    cw_info("notifier.closed_unreachable", "case=%s task=%s sms=%s", j->case_id, j->task_id,
            j->phone[0] ? "yes" : "no phone");
    publish(j);
}

/* Step 3: the close, in the case store, if the case is still resolved. */
static void commit_close(struct close_job *j)
{
    nt_derived_id(j->at_ms, "close", j->task_id, j->close_id);
    nt_derived_id(j->at_ms, "sms", j->task_id, j->sms_event_id);
    json_t *h =
        json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "at", (json_int_t)j->at_ms, "event", "close",
                  "event_id", j->close_id, "actor", "notifier", "actor_kind", "system", "note",
                  "closed as unreachable: the customer did not answer the follow-up calls",
                  "outcome", "unreachable", "status", "closed");
    char *entry = h ? json_dumps(h, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
    json_decref(h);
    if (!entry) {
        finish(j, 0, "out of memory");
        return;
    }
    char now[24], at[24];
    snprintf(now, sizeof now, "%lld", (long long)cw_now_ms());
    snprintf(at, sizeof at, "%lld", (long long)j->at_ms);
    const char *argv[] = {"", j->case_id, "close", "unreachable", now, "closed", "{}", entry,
                          at, "",         "",      "resolved"};
    int rc = cw_redis_script_run(j->u->redis, j->u->commit, on_committed, j, 1, 12, argv, NULL);
    free(entry);
    if (rc != CW_REDIS_OK) finish(j, 0, cw_redis_strerror(rc));
}

static void on_code(void *arg, const redisReply *r, const char *err)
{
    struct close_job *j = arg;
    if (!r || r->type == REDIS_REPLY_ERROR) {
        finish(j, 0, err ? err : r->str);
        return;
    }
    if (r->type != REDIS_REPLY_STRING) {
        /* 100 codes in a row taken by this number's other cases: it gets no SMS, and the log
         * says so; the case still closes */
        cw_warn("notifier.no_reply_code", "case=%s", j->case_id);
        j->phone[0] = '\0';
    } else {
        snprintf(j->code, sizeof j->code, "%s", r->str);
    }
    commit_close(j);
}

/* Step 2: the customer's reply code, the same on every retry. */
static void reply_code(struct close_job *j)
{
    char hash[CW_PHONE_HASH_LEN + 1], prefix[64], first[16], ttl[16], digits[4];
    cw_phone_hash(j->phone, hash);
    snprintf(prefix, sizeof prefix, "cw:cb:reply:%s:", hash);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    if (EVP_Digest(j->task_id, strlen(j->task_id), md, &mdlen, EVP_sha256(), NULL) != 1)
        memset(md, 0, 4);
    unsigned seed = ((unsigned)md[0] << 16 | (unsigned)md[1] << 8 | md[2]) % 10000u;
    snprintf(first, sizeof first, "%u", seed);
    snprintf(ttl, sizeof ttl, "%d", CW_REPLY_CODE_TTL_S);
    snprintf(digits, sizeof digits, "%d", CW_REPLY_CODE_DIGITS);
    const char *argv[] = {prefix, j->case_id, first, ttl, digits};
    int rc = cw_redis_script_run(j->u->redis, j->u->code, on_code, j, 0, 5, argv, NULL);
    if (rc != CW_REDIS_OK) finish(j, 0, cw_redis_strerror(rc));
}

static void on_case(void *arg, const redisReply *r, const char *err)
{
    struct close_job *j = arg;
    if (!r || r->type != REDIS_REPLY_ARRAY) {
        finish(j, 0, err ? err : "bad reply");
        return;
    }
    if (!*str_at(r, 0)) { /* the case expired from the store: nothing left to close */
        cw_warn("notifier.unreachable_no_case", "case=%s", j->case_id);
        mark_wrapped(j, false);
        return;
    }
    snprintf(j->case_no, sizeof j->case_no, "%s", *str_at(r, 1) ? str_at(r, 1) : j->case_id);
    snprintf(j->tenant, sizeof j->tenant, "%s", str_at(r, 2));
    snprintf(j->language, sizeof j->language, "%s", str_at(r, 3));
    /* the customer's phone is personal data: never logged */
    nt_record_field(str_at(r, 4), "customer", "phone", j->phone, sizeof j->phone);
    nt_record_field(str_at(r, 4), "external_ref", NULL, j->external_ref, sizeof j->external_ref);
    snprintf(j->owner, sizeof j->owner, "%s", str_at(r, 6));
    j->regulator = !strcmp(str_at(r, 5), "regulator");
    if (j->phone[0])
        reply_code(j);
    else
        commit_close(j);
}

int nt_unreachable_close(nt_unreachable *u, const char *task_id, const char *case_id,
                         const char *site, int64_t at_ms,
                         void (*done)(void *arg, int ok, const char *why), void *arg)
{
    struct close_job *j = calloc(1, sizeof *j);
    if (!j) return -1;
    *j = (struct close_job){.u = u, .done = done, .arg = arg, .at_ms = at_ms};
    snprintf(j->task_id, sizeof j->task_id, "%s", task_id);
    snprintf(j->case_id, sizeof j->case_id, "%s", case_id);
    snprintf(j->site, sizeof j->site, "%s", site);
    int rc = cw_redis_commandf(
        u->redis, on_case, j,
        "HMGET cw:case:%s status case_no tenant language record channel owner", case_id);
    if (rc != CW_REDIS_OK) {
        free(j);
        return -1;
    }
    return 0;
}
