/* Tenant webhooks (see hooks.h). */
#include "hooks.h"

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "domain.h"
#include "ids.h"
#include "webhook.h"

/* "CASE_ACTION_ACKNOWLEDGE" -> "acknowledge": the tenant reads the same words as our API. */
static const char *enum_word(const ProtobufCEnumDescriptor *d, int v, char *buf, size_t len,
                             const char *prefix)
{
    const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(d, v);
    const char *name = ev ? ev->name : "unspecified";
    size_t pl = strlen(prefix);
    if (!strncmp(name, prefix, pl)) name += pl;
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++)
        buf[i] = (char)(name[i] >= 'A' && name[i] <= 'Z' ? name[i] - 'A' + 'a' : name[i]);
    buf[i] = '\0';
    return buf;
}

static json_t *iso_utc(int64_t ms)
{
    char buf[80];
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    if (ms <= 0 || !gmtime_r(&s, &tm)) return json_null();
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
    return json_string(buf);
}

static json_t *routed_data(const Casewire__V1__CaseRouted *r)
{
    json_t *clocks = json_array();
    for (size_t i = 0; clocks && i < r->n_clocks; i++) {
        const char *kind = cw_clock_name(r->clocks[i]->kind);
        json_array_append_new(clocks, json_pack("{s:s,s:o}", "kind", kind ? kind : "unspecified",
                                                "due", iso_utc(r->clocks[i]->due_ms)));
    }
    const char *cat = cw_category_name(r->category), *urg = cw_urgency_name(r->urgency),
               *type = cw_case_type_name(r->type);
    return json_pack("{s:s,s:s,s:s,s:s,s:o}", "type", type ? type : "unspecified", "category",
                     cat ? cat : "other", "urgency", urg ? urg : "general", "department",
                     r->department_id ? r->department_id : "", "clocks",
                     clocks ? clocks : json_array());
}

static json_t *event_data(const Casewire__V1__CaseEvent *e)
{
    char action[40], actor[40], outcome[40];
    json_t *d = json_pack("{s:s,s:s}", "action",
                          enum_word(&casewire__v1__case_action__descriptor, e->action, action,
                                    sizeof action, "CASE_ACTION_"),
                          "actor_kind",
                          enum_word(&casewire__v1__actor_kind__descriptor, e->actor_kind, actor,
                                    sizeof actor, "ACTOR_KIND_"));
    if (!d) return NULL;
    /* Free text goes to the tenant only when the tenant wrote it: staff notes are internal
     * and may hold anything, the customer's number included. */
    if (e->actor_kind == CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_TENANT) {
        if (e->note && *e->note) json_object_set_new(d, "note", json_string(e->note));
        if (e->reply && *e->reply) json_object_set_new(d, "reply", json_string(e->reply));
    }
    if (e->outcome)
        json_object_set_new(
            d, "outcome",
            json_string(enum_word(&casewire__v1__follow_up_outcome__descriptor, e->outcome, outcome,
                                  sizeof outcome, "FOLLOWUP_OUTCOME_")));
    return d;
}

cw_envelope *nt_hook_task(const cw_chain *chain, const cw_envelope *rec, const char **why)
{
    *why = NULL;
    const cw_event_meta *m = rec->meta;
    if (!m->tenant_id || !*m->tenant_id) return NULL;
    const char *type;
    json_t *data;
    if (rec->body_case == CASEWIRE__V1__ENVELOPE__BODY_CASE_ROUTED) {
        type = "case.routed";
        data = routed_data(rec->case_routed);
    } else if (rec->body_case == CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT) {
        type = "case.event";
        data = event_data(rec->case_event);
    } else {
        return NULL; /* deadlines and escalations are ours, not the tenant's */
    }
    const struct cw_tenant *t = cw_chain_tenant(chain, m->tenant_id);
    if (!t || !t->webhook_url) {
        json_decref(data);
        if (!t) *why = "unknown tenant";
        return NULL;
    }
    const char *case_no = rec->body_case == CASEWIRE__V1__ENVELOPE__BODY_CASE_ROUTED
                              ? rec->case_routed->case_no
                              : NULL;
    json_t *o =
        json_pack("{s:s,s:s,s:s,s:s,s:s,s:o,s:o}", "type", type, "id", m->event_id, "case_id",
                  m->case_id, "site", m->site_id ? m->site_id : "", "tenant", m->tenant_id,
                  "occurred_at", iso_utc(m->occurred_ms), "data", data ? data : json_object());
    if (o && case_no && *case_no) json_object_set_new(o, "case_no", json_string(case_no));
    char *body = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!body || strlen(body) > NT_HOOK_BODY_MAX) {
        free(body);
        *why = body ? "the event is too large for a webhook" : "out of memory";
        return NULL;
    }
    /* The task: owned by one allocation, freed with cw_event_free like any decoded event. */
    Casewire__V1__NotificationTask task = CASEWIRE__V1__NOTIFICATION_TASK__INIT;
    Casewire__V1__EventMeta meta;
    struct cw_event_ids ids;
    char task_id[64];
    snprintf(task_id, sizeof task_id, "wh:%s", m->event_id);
    if (cw_event_meta_init(&meta, &ids, "notifier", m->case_id, m->site_id, m->tenant_id,
                           m->event_id) != 0) {
        free(body);
        return NULL;
    }
    meta.occurred_ms = m->occurred_ms;
    task.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_WEBHOOK;
    task.task_id = task_id;
    task.webhook_body.data = (uint8_t *)body;
    task.webhook_body.len = strlen(body);
    task.due_ms = cw_now_ms();
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_TASK;
    env.notification_task = &task;
    uint8_t *buf;
    size_t len = cw_event_pack(&env, &buf);
    free(body);
    if (!len) return NULL;
    char err[100];
    cw_envelope *out = cw_event_unpack(buf, len, err, sizeof err);
    free(buf);
    return out;
}

int nt_hook_allow_mask(const struct cw_webhook_settings *ws, unsigned *mask, const char **bad)
{
    *mask = 0;
    for (size_t i = 0; i < ws->nallow_addresses; i++) {
        const char *name = ws->allow_addresses[i];
        int found = 0;
        for (int k = 0; k < CW_ADDR_KIND_COUNT && !found; k++) {
            const char *kn = cw_addr_kind_name((enum cw_addr_kind)k);
            size_t j = 0;
            /* the chain writes link_local, the guard link-local */
            while (kn[j] && name[j] && (kn[j] == name[j] || (kn[j] == '-' && name[j] == '_'))) j++;
            if (!kn[j] && !name[j]) {
                *mask |= CW_ADDR_BIT(k);
                found = 1;
            }
        }
        if (!found) {
            *bad = name;
            return -1;
        }
    }
    return 0;
}

struct hook_call {
    unsigned allow;
    nt_sms_fn *cb;
    void *arg;
    char why[80];
};

static int vet(void *arg, const struct sockaddr *sa, const char **why)
{
    struct hook_call *c = arg;
    enum cw_addr_kind k = cw_addr_classify(sa);
    if (cw_addr_allowed(k, c->allow)) return 0;
    snprintf(c->why, sizeof c->why, "the URL leads to a %s address: refused", cw_addr_kind_name(k));
    *why = c->why;
    return -1;
}

static void on_answer(void *arg, const struct nt_http_response *r)
{
    struct hook_call *c = arg;
    struct nt_sms_result res = {.http_status = r->status};
    if (r->outcome == NT_HTTP_REFUSED_ADDR) {
        res.outcome = NT_SMS_REJECTED;
        snprintf(res.error, sizeof res.error, "%s", r->error);
    } else if (r->outcome != NT_HTTP_DONE) {
        res.outcome = NT_SMS_RETRY; /* a receiver dedups by webhook-id: sending again is safe */
        snprintf(res.error, sizeof res.error, "%s: %.200s", nt_http_outcome_name(r->outcome),
                 r->error);
    } else if (r->status >= 200 && r->status < 300) {
        res.outcome = NT_SMS_SENT;
    } else if (r->status >= 300 && r->status < 400) {
        res.outcome = NT_SMS_REJECTED;
        snprintf(res.error, sizeof res.error,
                 "HTTP %ld: redirects are not followed; set the final URL", r->status);
    } else {
        res.outcome = NT_SMS_RETRY;
        snprintf(res.error, sizeof res.error, "HTTP %ld from the receiver", r->status);
    }
    c->cb(c->arg, &res);
    free(c);
}

int nt_hook_send(nt_http *http, const struct cw_webhook_settings *ws, unsigned allow_mask,
                 const struct cw_tenant *t, const char *task_id, const void *body, size_t len,
                 nt_sms_fn *cb, void *arg)
{
    char msg_id[CW_WH_MSG_ID_SIZE], sig[CW_WH_SIG_SIZE];
    long long now = (long long)time(NULL);
    if (cw_wh_msg_id(task_id, msg_id, sizeof msg_id) != 0 ||
        cw_wh_sign(t->webhook_secret, msg_id, now, body, len, sig, sizeof sig) != 0)
        return -1;
    struct hook_call *c = calloc(1, sizeof *c);
    if (!c) return -1;
    *c = (struct hook_call){.allow = allow_mask, .cb = cb, .arg = arg};
    char h_id[80], h_ts[48], h_sig[100];
    snprintf(h_id, sizeof h_id, "webhook-id: %s", msg_id);
    snprintf(h_ts, sizeof h_ts, "webhook-timestamp: %lld", now);
    snprintf(h_sig, sizeof h_sig, "webhook-signature: %s", sig);
    const char *headers[] = {"Content-Type: application/json", h_id, h_ts, h_sig};
    struct nt_http_request q = {.method = "POST",
                                .url = t->webhook_url,
                                .headers = headers,
                                .nheaders = 4,
                                .body = body,
                                .body_len = len,
                                .timeout_ms = (long)ws->timeout_ms,
                                .vet = vet,
                                .vet_arg = c};
    if (nt_http_send(http, &q, on_answer, c) != 0) {
        free(c);
        return -1;
    }
    return 0;
}
