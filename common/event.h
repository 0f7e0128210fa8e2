/*
 * Events on Kafka: every message is a casewire.v1.Envelope (proto/casewire.proto), keyed by
 * case id. These helpers fill the common metadata and bound what is decoded.
 * docs/events.md lists the topics and what each carries.
 */
#ifndef CW_EVENT_H
#define CW_EVENT_H

#include <stddef.h>
#include <stdint.h>

#include "casewire.pb-c.h"
#include "ids.h"

#define CW_TOPIC_INTAKE "casewire.intake.v1" /* CaseSubmitted */
#define CW_TOPIC_CASES "casewire.cases.v1"   /* CaseRouted, CaseEvent, DeadlineFired */
#define CW_TOPIC_NOTIFY "casewire.notify.v1" /* NotificationTask */
#define CW_TOPIC_NOTIFY_RESULTS "casewire.notify-results.v1" /* NotificationResult */
#define CW_TOPIC_NOTIFY_DLQ "casewire.notify-dlq.v1"         /* NotificationTask that gave up */
#define CW_TOPIC_INTAKE_DLQ "casewire.intake-dlq.v1" /* Rejected: intake the router refused */

/* Every topic, for the devbroker and for operators creating topics. */
extern const char *const cw_topics[];
extern const size_t cw_topics_count;

/* Largest event accepted from Kafka; anything bigger is rejected undecoded. */
#define CW_EVENT_MAX_BYTES (1024 * 1024)

typedef Casewire__V1__Envelope cw_envelope;
typedef Casewire__V1__EventMeta cw_event_meta;

/* Storage for the strings a meta points to, so a meta can live on the stack. */
struct cw_event_ids {
    char event_id[CW_ULID_LEN + 1];
};

/* Fills meta: new event id, now, current schema version, producer and the given ids
 * (strings are referenced, not copied; tenant_id and causation_id may be NULL). */
int cw_event_meta_init(cw_event_meta *meta, struct cw_event_ids *ids, const char *producer,
                       const char *case_id, const char *site_id, const char *tenant_id,
                       const char *causation_id);
/* The same with an event id the caller already has: a retry re-sends the same event. */
void cw_event_meta_init_as(cw_event_meta *meta, const char *event_id, const char *producer,
                           const char *case_id, const char *site_id, const char *tenant_id,
                           const char *causation_id);

/* Packs into a malloc'd buffer; returns its length, or 0 on failure. */
size_t cw_event_pack(const cw_envelope *env, uint8_t **out);
/* Decodes; NULL when too large, malformed, or missing meta/ids. Free with cw_event_free.
 * Unknown fields are tolerated (kept by protobuf-c, ignored by us). */
cw_envelope *cw_event_unpack(const void *data, size_t len, char *err, size_t errlen);
void cw_event_free(cw_envelope *env);

#endif
