/* Tasks the notifier publishes itself (see publish.h). */
#include "publish.h"

#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

#define MAX_PARAMS 8

int nt_task_send(cw_producer *p, const struct nt_new_task *t, cw_delivery_fn *cb, void *opaque)
{
    if (t->nparams > MAX_PARAMS) return CW_PRODUCE_FAILED;
    Casewire__V1__Envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    Casewire__V1__EventMeta meta;
    Casewire__V1__NotificationTask task = CASEWIRE__V1__NOTIFICATION_TASK__INIT;
    Casewire__V1__Person person = CASEWIRE__V1__PERSON__INIT;
    Casewire__V1__NotificationTask__ParamsEntry pe[MAX_PARAMS], *params[MAX_PARAMS];
    for (size_t i = 0; i < t->nparams; i++) {
        casewire__v1__notification_task__params_entry__init(&pe[i]);
        pe[i].key = (char *)t->keys[i];
        pe[i].value = (char *)t->values[i];
        params[i] = &pe[i];
    }
    const char *tenant = t->tenant && *t->tenant && strcmp(t->tenant, "-") ? t->tenant : NULL;
    cw_event_meta_init_as(&meta, t->event_id, "notifier", t->case_id, t->site, tenant,
                          t->causation_id);
    meta.occurred_ms = t->at_ms;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_TASK;
    env.notification_task = &task;
    task.kind = t->kind;
    task.task_id = (char *)t->task_id;
    if (t->phone) {
        person.phone = (char *)t->phone;
        task.recipient = &person;
    }
    task.recipient_staff_id = (char *)(t->staff_id ? t->staff_id : "");
    task.template_id = (char *)t->template_id;
    task.language = (char *)(t->language ? t->language : "");
    task.due_ms = t->at_ms;
    task.params = params;
    task.n_params = t->nparams;
    uint8_t *buf;
    size_t len = cw_event_pack(&env, &buf);
    if (!len) return CW_PRODUCE_FAILED;
    int rc =
        cw_producer_send(p, CW_TOPIC_NOTIFY, t->case_id, strlen(t->case_id), buf, len, cb, opaque);
    free(buf);
    return rc;
}

void nt_derived_id(int64_t at_ms, const char *what, const char *seed, char out[CW_ULID_LEN + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    char in[256];
    int n = snprintf(in, sizeof in, "%s:%s", what, seed);
    if (n < 0 || (size_t)n >= sizeof in) n = (int)sizeof in - 1;
    if (EVP_Digest(in, (size_t)n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 10)
        memset(md, 0, 10);
    cw_ulid_make(at_ms, md, out);
}

int nt_regulator_send(cw_producer *p, const struct nt_regulator_report *rep, cw_delivery_fn *cb,
                      void *opaque)
{
    if (!rep->owner || !*rep->owner) return CW_PRODUCE_FAILED;
    char task_id[128], event_id[CW_ULID_LEN + 1];
    snprintf(task_id, sizeof task_id, "%s:regulator", rep->callback_task_id);
    nt_derived_id(rep->at_ms, "regulator", rep->callback_task_id, event_id);
    const char *keys[] = {"case_no", "external_ref", "outcome"};
    const char *values[] = {rep->case_no, rep->external_ref ? rep->external_ref : "", rep->outcome};
    struct nt_new_task t = {.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_STAFF_TASK,
                            .task_id = task_id,
                            .event_id = event_id,
                            .case_id = rep->case_id,
                            .site = rep->site,
                            .tenant = rep->tenant,
                            .staff_id = rep->owner,
                            .template_id = "regulator_report",
                            .keys = keys,
                            .values = values,
                            .nparams = 3,
                            .at_ms = rep->at_ms};
    return nt_task_send(p, &t, cb, opaque);
}

void nt_record_field(const char *record_json, const char *path1, const char *path2, char *out,
                     size_t cap)
{
    json_t *o = record_json && *record_json ? json_loads(record_json, 0, NULL) : NULL;
    json_t *v = json_object_get(o, path1);
    if (path2) v = json_object_get(v, path2);
    snprintf(out, cap, "%s", json_string_value(v) ? json_string_value(v) : "");
    json_decref(o);
}
