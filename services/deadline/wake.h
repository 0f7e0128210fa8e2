/*
 * Wake-up messages: a SUBSCRIBE to DL_WAKE_CHANNEL on a connection of its own (cw_redis is a
 * request/response client and refuses SUBSCRIBE), on the process's loop, reconnected forever
 * with a backoff. The apply and fire scripts publish "<shard> <due ms>" when they arm a timer
 * earlier than its shard's head, so a worker's local timer is never later than the earliest
 * timer.
 *
 * Pub/sub delivers at most once: a message published while this connection is down is lost.
 * The state callback says when the subscription starts (after every reconnect: read every
 * shard's head again then) and when it is lost.
 */
#ifndef DL_WAKE_H
#define DL_WAKE_H

#include <stdbool.h>
#include <stdint.h>

#include "redis.h"

struct event_base;
typedef struct dl_wake dl_wake;

typedef void dl_wake_fn(void *arg, unsigned shard, int64_t due_ms);
typedef void dl_wake_state_fn(void *arg, bool subscribed);

/* NULL when out of memory. Connects once the loop runs. */
dl_wake *dl_wake_new(struct event_base *base, const struct cw_redis_options *opt, dl_wake_fn *fn,
                     dl_wake_state_fn *state, void *arg);
bool dl_wake_subscribed(const dl_wake *w);
/* Disconnects without calling back. */
void dl_wake_free(dl_wake *w);

/* "<shard> <due ms>" into its parts: 0, or -1 when it is not a wake-up message. */
int dl_wake_parse(const char *msg, size_t len, unsigned *shard, int64_t *due_ms);

#endif
