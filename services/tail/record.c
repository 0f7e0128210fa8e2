#include "record.h"

#include "event.h"
#include "pbjson.h"

static void write_position(struct jsonw *w, const rd_kafka_message_t *m)
{
    jsonw_key(w, "topic");
    jsonw_string(w, rd_kafka_topic_name(m->rkt));
    jsonw_key(w, "partition");
    jsonw_int(w, m->partition);
    jsonw_key(w, "offset");
    jsonw_int(w, m->offset);
    jsonw_key(w, "key");
    if (m->key)
        jsonw_string_n(w, m->key, m->key_len);
    else
        jsonw_null(w);
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    if (ts >= 0) {
        jsonw_key(w, "timestamp_ms");
        jsonw_int(w, ts);
    }
}

/* The reason cw_event_unpack gave, the length, and the part that decoded, if any: an event
 * without a body (a kind newer than this build) still shows its meta and unknown fields. */
static void write_undecodable(struct jsonw *w, const rd_kafka_message_t *m, const char *why,
                              int unmasked)
{
    jsonw_key(w, "error");
    jsonw_string(w, why);
    jsonw_key(w, "value_length");
    jsonw_uint(w, m->len);
    if (!m->payload || m->len > CW_EVENT_MAX_BYTES) return;
    cw_envelope *partial = casewire__v1__envelope__unpack(NULL, m->len, m->payload);
    if (!partial) return;
    jsonw_key(w, "event");
    pbjson_write_message(w, &partial->base, unmasked);
    casewire__v1__envelope__free_unpacked(partial, NULL);
}

int record_format(struct jsonw *w, const rd_kafka_message_t *m, int unmasked)
{
    jsonw_reset(w);
    jsonw_object_begin(w);
    write_position(w, m);
    if (!m->payload) {
        write_undecodable(w, m, "no value (a tombstone)", unmasked);
    } else {
        char err[256];
        cw_envelope *env = cw_event_unpack(m->payload, m->len, err, sizeof err);
        if (env) {
            jsonw_key(w, "event");
            pbjson_write_message(w, &env->base, unmasked);
            cw_event_free(env);
        } else {
            write_undecodable(w, m, err, unmasked);
        }
    }
    jsonw_object_end(w);
    if (!jsonw_failed(w)) return 0;

    /* Out of memory half way: say so in a short line rather than lose the record. */
    jsonw_reset(w);
    jsonw_object_begin(w);
    write_position(w, m);
    jsonw_key(w, "error");
    jsonw_string(w, "out of memory while formatting this record");
    jsonw_key(w, "value_length");
    jsonw_uint(w, m->len);
    jsonw_object_end(w);
    return jsonw_failed(w) ? -1 : 0;
}
