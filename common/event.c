#include "event.h"

#include <stdio.h>
#include <stdlib.h>

const char *const cw_topics[] = {CW_TOPIC_INTAKE,         CW_TOPIC_CASES,      CW_TOPIC_NOTIFY,
                                 CW_TOPIC_NOTIFY_RESULTS, CW_TOPIC_NOTIFY_DLQ, CW_TOPIC_INTAKE_DLQ};
const size_t cw_topics_count = sizeof cw_topics / sizeof cw_topics[0];

static char *or_empty(const char *s) { return (char *)(s ? s : ""); }

void cw_event_meta_init_as(cw_event_meta *meta, const char *event_id, const char *producer,
                           const char *case_id, const char *site_id, const char *tenant_id,
                           const char *causation_id)
{
    casewire__v1__event_meta__init(meta);
    meta->event_id = or_empty(event_id);
    meta->case_id = or_empty(case_id);
    meta->site_id = or_empty(site_id);
    meta->tenant_id = or_empty(tenant_id);
    meta->occurred_ms = cw_now_ms();
    meta->schema_version = CASEWIRE__V1__SCHEMA_VERSION__SCHEMA_VERSION_CURRENT;
    meta->producer = or_empty(producer);
    meta->causation_id = or_empty(causation_id);
}

int cw_event_meta_init(cw_event_meta *meta, struct cw_event_ids *ids, const char *producer,
                       const char *case_id, const char *site_id, const char *tenant_id,
                       const char *causation_id)
{
    if (cw_ulid_new(ids->event_id) != 0) return -1;
    cw_event_meta_init_as(meta, ids->event_id, producer, case_id, site_id, tenant_id, causation_id);
    return 0;
}

size_t cw_event_pack(const cw_envelope *env, uint8_t **out)
{
    size_t n = casewire__v1__envelope__get_packed_size(env);
    *out = malloc(n ? n : 1);
    if (!*out) return 0;
    return casewire__v1__envelope__pack(env, *out);
}

cw_envelope *cw_event_unpack(const void *data, size_t len, char *err, size_t errlen)
{
    if (len > CW_EVENT_MAX_BYTES) {
        snprintf(err, errlen, "event of %zu bytes is over the %d byte limit", len,
                 CW_EVENT_MAX_BYTES);
        return NULL;
    }
    cw_envelope *env = casewire__v1__envelope__unpack(NULL, len, data);
    if (!env) {
        snprintf(err, errlen, "not a casewire.v1.Envelope (malformed protobuf)");
        return NULL;
    }
    if (!env->meta || !env->meta->event_id || !*env->meta->event_id || !env->meta->case_id ||
        !*env->meta->case_id) {
        snprintf(err, errlen, "event without meta.event_id or meta.case_id");
        casewire__v1__envelope__free_unpacked(env, NULL);
        return NULL;
    }
    if (env->body_case == CASEWIRE__V1__ENVELOPE__BODY__NOT_SET) {
        snprintf(err, errlen, "event %s has no body (unknown kind from a newer producer?)",
                 env->meta->event_id);
        casewire__v1__envelope__free_unpacked(env, NULL);
        return NULL;
    }
    return env;
}

void cw_event_free(cw_envelope *env)
{
    if (env) casewire__v1__envelope__free_unpacked(env, NULL);
}
