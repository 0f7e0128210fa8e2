/*
 * One Kafka record as casewire-tail's output line: where it is (topic, partition, offset,
 * key, timestamp) and the decoded Envelope under "event", or, when the value is not a
 * casewire event, "error" with the reason and "value_length" (plus whatever part of it did
 * decode under "event"), so no record is ever skipped silently.
 */
#ifndef CW_TAIL_RECORD_H
#define CW_TAIL_RECORD_H

#include <librdkafka/rdkafka.h>

#include "jsonw.h"

/* Replaces w's content with the line for m (no newline). 0, or -1 when out of memory. */
int record_format(struct jsonw *w, const rd_kafka_message_t *m, int unmasked);

#endif
