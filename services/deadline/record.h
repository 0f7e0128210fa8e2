/*
 * The deadline worker's projection into the case record (docs/deadline.md, "What the worker
 * writes into the case record"). The staff console and the reports read a case from its hash
 * cw:case:<case_id> (the gateway's and the router's, docs/redis.md); the clocks live in the
 * timer store's own keys (timers.h), so the worker copies what they need into the case:
 *
 *   due:<clock>       the running clock's due time (Unix ms): set when it starts or restarts,
 *                     removed when it stops
 *   stopped:<clock>   when the event that stopped the running clock occurred (ms)
 *   breached:<clock>  when the clock first breached (the breach timer's due ms): set once
 *   level:<clock>     the highest ladder level notified so far: only goes up
 *   cw:case:<case_id>:history   one "escalated" entry per breach fired, scored by its due ms
 *
 * Never creates a case: a case with no record (no status field) gets nothing. Each write is one
 * small script on the case's own keys, idempotent: a redelivered event or a timer fired again
 * writes the same values, and a breach's history entry is derived from the timer and its firing
 * plan only, so it is the same bytes every time (the ZADD adds nothing twice).
 */
#ifndef DL_RECORD_H
#define DL_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include "clocks.h"
#include "escalate.h"
#include "redis.h"
#include "timers.h"

typedef struct dl_record dl_record;

/* Registers the scripts with r. NULL when out of memory. */
dl_record *dl_record_new(cw_redis *r);
void dl_record_free(dl_record *rec);

/* Whether a case event's changes move a clock (a stop or a start): else nothing to write. */
bool dl_record_moves(const struct dl_change *c);
/* After c was applied (or found applied): due:<clock> of each clock started (its b0 timer's
 * due), and for each stopped clock that was running, stopped:<clock> = stopped_ms and no due.
 * Reply: see dl_record_reply. */
int dl_record_clocks(dl_record *rec, const struct dl_change *c, int64_t stopped_ms,
                     cw_redis_reply_fn *cb, void *arg);

/* After a breach timer's fire f (planned for timer_id, payload pl) was confirmed by Kafka:
 * breached:<clock>, level:<clock> and the history entry. Reply: see dl_record_reply. */
int dl_record_escalated(dl_record *rec, const char *timer_id, const struct dl_payload *pl,
                        const struct dl_firing *f, cw_redis_reply_fn *cb, void *arg);

/* 1 written, 0 the case has no record (nothing written), -1 not a reply of these scripts. */
int dl_record_reply(const redisReply *r);

/* The history entry of a breach fire (JSON, keys sorted, no spaces), malloc'd; NULL when out
 * of memory. {"at":<due ms>,"clock":"<clock>","event":"escalated","event_id":"<DeadlineFired's
 * id>","level":<N>,"notified":["<staff id>",...]} */
char *dl_record_history_entry(const struct dl_payload *pl, const struct dl_firing *f);

#endif
