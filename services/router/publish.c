/*
 * What the router writes to Kafka for a case: the decision (CaseRouted, on the cases topic)
 * and the first notification tasks (the customer's receipt SMS, the owner's assignment
 * notice). Every id is the same on every attempt: the routed event id comes from the stored
 * decision, the tasks' event ids follow from it, and task ids name the case and the purpose,
 * so a republished task is the same task to the notifier.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "domain.h"
#include "log.h"
#include "router.h"

/* The ULID k after `in` (its random part plus k): a stable, distinct id for the k-th event
 * that follows from one decision. */
static void ulid_plus(const char *in, unsigned k, char out[CW_ULID_LEN + 1])
{
    static const char digits[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    memcpy(out, in, CW_ULID_LEN + 1);
    for (int i = CW_ULID_LEN - 1; i >= 10 && k; i--) {
        const char *p = strchr(digits, out[i]);
        unsigned v = (unsigned)(p ? p - digits : 0) + k;
        out[i] = digits[v % 32];
        k = v / 32;
    }
}

/* "2026-11-25 14:03" in the site's time: what an SMS shows. */
static void sms_time(const struct router *rt, const struct cw_site *site, int64_t ms, char *buf,
                     size_t len)
{
    char iso[CW_CALENDAR_RFC3339_SIZE + 8];
    if (cw_calendar_format(rt->cal, site, ms, iso, sizeof iso) <= 0) {
        snprintf(buf, len, "%s", "");
        return;
    }
    iso[10] = ' ';
    iso[16] = '\0';
    snprintf(buf, len, "%s", iso);
}

static int64_t clock_due(const struct rt_job *job, int kind)
{
    for (size_t i = 0; i < job->plan.nclocks; i++)
        if (job->plan.clocks[i].kind == kind) return job->plan.clocks[i].due_ms;
    return 0;
}

static bool english(const Casewire__V1__CaseSubmitted *cs)
{
    return cs->language && strcmp(cs->language, "en") == 0;
}

static int send(struct router *rt, const cw_envelope *env, const char *topic, cw_delivery_fn *cb,
                void *arg)
{
    uint8_t *buf;
    size_t len = cw_event_pack(env, &buf);
    if (!len) return CW_PRODUCE_FAILED;
    const char *key = env->meta->case_id;
    int rc = cw_producer_send(rt->producer, topic, key, strlen(key), buf, len, cb, arg);
    free(buf);
    return rc;
}

/* One NotificationTask: fills env's body (task and map entries live in the caller's frame). */
struct task {
    Casewire__V1__NotificationTask t;
    Casewire__V1__NotificationTask__ParamsEntry entries[6];
    Casewire__V1__NotificationTask__ParamsEntry *params[6];
    Casewire__V1__Person person;
    char task_id[CW_ULID_LEN + RT_ID_MAX + 16];
};

static void task_param(struct task *t, const char *key, const char *value)
{
    size_t i = t->t.n_params;
    if (i >= sizeof t->entries / sizeof t->entries[0]) return;
    Casewire__V1__NotificationTask__ParamsEntry e =
        CASEWIRE__V1__NOTIFICATION_TASK__PARAMS_ENTRY__INIT;
    e.key = (char *)key;
    e.value = (char *)value;
    t->entries[i] = e;
    t->params[i] = &t->entries[i];
    t->t.params = t->params;
    t->t.n_params = i + 1;
}

int rt_publish_routed(struct router *rt, struct rt_job *job, cw_delivery_fn *cb, bool *incomplete)
{
    const cw_event_meta *in = job->env->meta;
    const Casewire__V1__CaseSubmitted *cs = job->cs;
    const struct rt_verdict *v = &job->verdict;
    const char *tenant = job->tenant ? job->tenant->id : NULL;
    *incomplete = false;

    /* ---- CaseRouted ---- */
    Casewire__V1__Envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    Casewire__V1__EventMeta meta;
    Casewire__V1__CaseRouted routed = CASEWIRE__V1__CASE_ROUTED__INIT;
    cw_event_meta_init_as(&meta, job->routed_event_id, "router", in->case_id, job->site->id, tenant,
                          in->event_id);
    meta.request_id = in->request_id;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_ROUTED;
    env.case_routed = &routed;
    routed.case_no = cs->case_no;
    routed.type = v->type;
    routed.category = v->category;
    routed.urgency = v->urgency;
    routed.validity = v->validity;
    routed.department_id =
        (char *)(job->assignment.department ? job->assignment.department->id : "");
    routed.owner_staff_id = job->owner;
    routed.first_ask_staff_id = cs->recorded_by ? cs->recorded_by : "";
    routed.repeat_of_case_id = job->repeat_of;
    routed.channel = cs->channel;

    Casewire__V1__Clock clocks[CW_CHAIN_CLOCKS], *clockp[CW_CHAIN_CLOCKS];
    const char *policy = job->plan.policy ? job->plan.policy->id : "";
    for (size_t i = 0; i < job->plan.nclocks && i < CW_CHAIN_CLOCKS; i++) {
        Casewire__V1__Clock c = CASEWIRE__V1__CLOCK__INIT;
        c.kind = job->plan.clocks[i].kind;
        c.due_ms = job->plan.clocks[i].due_ms;
        c.duration_ms = job->plan.clocks[i].duration_ms;
        c.working_time = job->plan.clocks[i].working_time;
        c.policy_id = (char *)policy;
        clocks[i] = c;
        clockp[i] = &clocks[i];
        routed.n_clocks = i + 1;
    }
    routed.clocks = clockp;

    Casewire__V1__RuleMatch rules[RT_FIELDS], *rulep[RT_FIELDS];
    for (int f = 0; f < RT_FIELDS; f++) {
        const struct rt_reason *why = &v->why[f];
        if (f == RT_DEPARTMENT && !why->set) continue;
        Casewire__V1__RuleMatch m = CASEWIRE__V1__RULE_MATCH__INIT;
        m.rule_id = (char *)why->rule_id;
        m.field = (char *)rt_field_name(f);
        m.value = (char *)(f == RT_TYPE       ? cw_case_type_name(why->value)
                           : f == RT_CATEGORY ? cw_category_name(why->value)
                           : f == RT_URGENCY  ? cw_urgency_name(why->value)
                           : f == RT_VALIDITY ? cw_validity_name(why->value)
                                              : cw_dept_kind_name(why->value));
        m.matched = (char *)(why->matched ? why->matched : "");
        rules[routed.n_matched_rules] = m;
        rulep[routed.n_matched_rules] = &rules[routed.n_matched_rules];
        routed.n_matched_rules++;
    }
    routed.matched_rules = rulep;

    int rc = send(rt, &env, CW_TOPIC_CASES, cb, job);
    if (rc != CW_PRODUCE_OK) return rc;
    int produced = 1;

    /* ---- the tasks ---- */
    char reply_by[40], handoff_due[40];
    sms_time(rt, job->site, cs->reply_by_ms, reply_by, sizeof reply_by);
    int64_t due = clock_due(job, CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF);
    sms_time(rt, job->site, due, handoff_due, sizeof handoff_due);
    const char *site_name =
        english(cs) && job->site->name_en ? job->site->name_en : job->site->name;
    bool emergency = v->urgency == CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY;
    const char *lang = cs->language && *cs->language ? cs->language : "zh";
    int64_t created = in->occurred_ms > 0 ? in->occurred_ms : cw_ulid_time_ms(in->case_id);

    struct task tasks[2];
    size_t ntasks = 0;
    const char *phone = rt_customer_phone(job);
    if (*phone) {
        struct task *t = &tasks[ntasks++];
        memset(t, 0, sizeof *t);
        t->t = (Casewire__V1__NotificationTask)CASEWIRE__V1__NOTIFICATION_TASK__INIT;
        t->person = (Casewire__V1__Person)CASEWIRE__V1__PERSON__INIT;
        t->person.name = cs->customer->name ? cs->customer->name : "";
        t->person.phone = (char *)phone;
        snprintf(t->task_id, sizeof t->task_id, "%s:receipt", in->case_id);
        t->t.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS;
        t->t.recipient = &t->person;
        t->t.template_id = "case_received";
        t->t.language = (char *)lang;
        t->t.due_ms = created;
        t->t.priority = (uint32_t)v->urgency;
        task_param(t, "case_no", cs->case_no);
        task_param(t, "reply_by", reply_by);
        task_param(t, "site_name", site_name);
    }
    const struct cw_staff *owner = cw_chain_staff(rt->chain, job->owner);
    {
        struct task *t = &tasks[ntasks++];
        memset(t, 0, sizeof *t);
        t->t = (Casewire__V1__NotificationTask)CASEWIRE__V1__NOTIFICATION_TASK__INIT;
        snprintf(t->task_id, sizeof t->task_id, "%s:assigned:%s", in->case_id, job->owner);
        t->t.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS;
        t->t.recipient_staff_id = job->owner;
        t->t.template_id = "staff_assigned";
        /* staff read the chain's default language */
        t->t.language = (char *)cw_chain_default_language(rt->chain);
        t->t.due_ms = created;
        t->t.priority = (uint32_t)v->urgency;
        t->t.emergency = emergency;
        task_param(t, "case_no", cs->case_no);
        task_param(t, "category", cw_category_name(v->category));
        task_param(t, "staff_name", owner && owner->name ? owner->name : job->owner);
        task_param(t, "due", handoff_due);
        task_param(t, "site_name", job->site->name);
    }
    for (size_t i = 0; i < ntasks; i++) {
        Casewire__V1__Envelope tenv = CASEWIRE__V1__ENVELOPE__INIT;
        Casewire__V1__EventMeta tmeta;
        char event_id[CW_ULID_LEN + 1];
        ulid_plus(job->routed_event_id, (unsigned)i + 1, event_id);
        cw_event_meta_init_as(&tmeta, event_id, "router", in->case_id, job->site->id, tenant,
                              job->routed_event_id);
        tmeta.request_id = in->request_id;
        tasks[i].t.task_id = tasks[i].task_id;
        tenv.meta = &tmeta;
        tenv.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_TASK;
        tenv.notification_task = &tasks[i].t;
        if (send(rt, &tenv, CW_TOPIC_NOTIFY, cb, job) != CW_PRODUCE_OK) {
            *incomplete = true;
            break;
        }
        produced++;
    }
    return produced;
}

int rt_publish_rejected(struct router *rt, struct rt_job *job, cw_delivery_fn *cb)
{
    size_t vlen = 0, klen = 0;
    const void *value = cw_kmsg_value(job->msg, &vlen);
    const void *key = cw_kmsg_key(job->msg, &klen);
    if (cw_kmsg_detached(job->msg)) return CW_PRODUCE_FAILED; /* it will be redelivered */

    /* The case id if the record says one, else its key if that is one, else "-". */
    char case_id[CW_ULID_LEN + 1] = "-";
    if (job->env && job->env->meta && cw_ulid_valid(job->env->meta->case_id))
        snprintf(case_id, sizeof case_id, "%s", job->env->meta->case_id);
    else if (key && klen == CW_ULID_LEN) {
        char k[CW_ULID_LEN + 1];
        memcpy(k, key, CW_ULID_LEN);
        k[CW_ULID_LEN] = '\0';
        if (cw_ulid_valid(k)) memcpy(case_id, k, sizeof case_id);
    }
    const char *site = job->env && job->env->meta ? job->env->meta->site_id : NULL;
    Casewire__V1__Envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    Casewire__V1__EventMeta meta;
    Casewire__V1__Rejected rej = CASEWIRE__V1__REJECTED__INIT;
    struct cw_event_ids ids;
    if (cw_event_meta_init(&meta, &ids, "router", case_id, site, NULL, NULL) != 0)
        return CW_PRODUCE_FAILED;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_REJECTED;
    env.rejected = &rej;
    rej.source_topic = (char *)cw_kmsg_topic(job->msg);
    rej.source_partition = cw_kmsg_partition(job->msg);
    rej.source_offset = cw_kmsg_offset(job->msg);
    rej.reason = job->reject_reason;
    rej.original_key.data = (uint8_t *)key;
    rej.original_key.len = key ? klen : 0;
    rej.original_value.data = (uint8_t *)value;
    rej.original_value.len = vlen;
    uint8_t *buf;
    size_t len = cw_event_pack(&env, &buf);
    if (!len) return CW_PRODUCE_FAILED;
    /* Same key as the original, so a fixed record replays into its case's partition. */
    int rc =
        cw_producer_send(rt->producer, CW_TOPIC_INTAKE_DLQ, key, key ? klen : 0, buf, len, cb, job);
    free(buf);
    return rc;
}

static json_t *reason_json(const struct rt_reason *why, const char *value)
{
    return json_pack("{s:s,s:s,s:s}", "value", value, "rule", why->rule_id ? why->rule_id : "",
                     "matched", why->matched ? why->matched : "");
}

static void set_str(json_t *o, const char *key, const char *v)
{
    if (v && *v) json_object_set_new(o, key, json_string(v));
}

char *rt_record_json(const struct rt_job *job)
{
    const Casewire__V1__CaseSubmitted *cs = job->cs;
    const struct rt_verdict *v = &job->verdict;
    json_t *o = json_object();
    if (!o) return NULL;
    set_str(o, "text", cs->text);
    set_str(o, "request", cs->customer_request);
    set_str(o, "recorded_by", cs->recorded_by);
    set_str(o, "external_ref", cs->external_ref);
    set_str(o, "intake_event_id", job->env->meta->event_id);
    if (cs->stops_trading) json_object_set_new(o, "stops_trading", json_true());
    if (cs->type_hint)
        json_object_set_new(o, "type_hint", json_string(cw_case_type_name(cs->type_hint)));
    if (cs->category_hint)
        json_object_set_new(o, "category_hint", json_string(cw_category_name(cs->category_hint)));
    if (cs->customer) {
        json_t *c = json_object();
        set_str(c, "name", cs->customer->name);
        set_str(c, "phone", cs->customer->phone);
        json_object_set_new(o, "customer", c);
    }
    if (cs->location) {
        json_t *l = json_object();
        set_str(l, "floor", cs->location->floor);
        set_str(l, "unit", cs->location->unit);
        set_str(l, "brand", cs->location->brand);
        set_str(l, "detail", cs->location->detail);
        if (json_object_size(l))
            json_object_set_new(o, "location", l);
        else
            json_decref(l);
    }
    if (cs->purchase) {
        const Casewire__V1__Purchase *p = cs->purchase;
        json_t *j = json_object();
        set_str(j, "date", p->date);
        if (p->amount_cents) json_object_set_new(j, "amount_cents", json_integer(p->amount_cents));
        set_str(j, "currency", p->currency);
        set_str(j, "receipt_no", p->receipt_no);
        set_str(j, "order_no", p->order_no);
        if (p->under_warranty) json_object_set_new(j, "under_warranty", json_true());
        json_object_set_new(o, "purchase", j);
    }
    json_t *cls = json_object();
    json_object_set_new(cls, "type", reason_json(&v->why[RT_TYPE], cw_case_type_name(v->type)));
    json_object_set_new(cls, "category",
                        reason_json(&v->why[RT_CATEGORY], cw_category_name(v->category)));
    json_object_set_new(cls, "urgency",
                        reason_json(&v->why[RT_URGENCY], cw_urgency_name(v->urgency)));
    json_object_set_new(cls, "validity",
                        reason_json(&v->why[RT_VALIDITY], cw_validity_name(v->validity)));
    if (v->why[RT_DEPARTMENT].set)
        json_object_set_new(
            cls, "department_kind",
            reason_json(&v->why[RT_DEPARTMENT], cw_dept_kind_name(v->department_kind)));
    json_object_set_new(o, "classification", cls);

    const struct rt_assignment *a = &job->assignment;
    json_t *asg = json_pack("{s:s,s:s,s:i}", "department_kind", cw_dept_kind_name(a->kind), "pick",
                            rt_pick_name(a->pick), "candidates", (int)a->ncandidates);
    if (asg && a->department) {
        json_object_set_new(asg, "department", json_string(a->department->id));
        set_str(asg, "department_name", a->department->name);
    }
    if (asg && a->tenant) json_object_set_new(asg, "tenant", json_string(a->tenant->id));
    json_object_set_new(o, "assignment", asg);

    json_t *clocks = json_array();
    for (size_t i = 0; i < job->plan.nclocks; i++) {
        const struct rt_clock *c = &job->plan.clocks[i];
        json_t *j = json_pack("{s:s,s:I,s:b}", "kind", cw_clock_name(c->kind), "duration_ms",
                              (json_int_t)c->duration_ms, "working_time", c->working_time);
        if (j && c->due_ms) json_object_set_new(j, "due_ms", json_integer(c->due_ms));
        json_array_append_new(clocks, j);
    }
    json_object_set_new(o, "clocks", clocks);
    if (job->plan.policy) json_object_set_new(o, "policy", json_string(job->plan.policy->id));
    if (job->plan.calendar_fallback) json_object_set_new(o, "calendar_fallback", json_true());
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}
