/*
 * The notifier's outbox in Redis: every notification task it has taken from Kafka, until it is
 * delivered or given up, so that a notifier killed at any moment loses nothing and a task is
 * never delivered twice. Keys share one hash tag ({nt}), so the scripts are atomic also on a
 * Redis Cluster (docs/notifier.md lists them):
 *
 *   nt:{nt}:env   hash  task id -> the NotificationTask envelope as received (until settled)
 *   nt:{nt}:st    hash  task id -> "state|claim|tries[|ref]"
 *   nt:{nt}:due   zset  task id -> when to look at it next (ms): due, retry, or lease end
 *   nt:{nt}:done  zset  task id -> when it was settled (kept NT_KEEP_DONE_MS for dedup)
 *   nt:{nt}:rl:H  zset  task id -> ms it was sent to the phone number whose hash is H
 *   nt:{nt}:optout set  hashes of phone numbers that opted out
 *   nt:{nt}:inbox:STAFF zset task id -> due ms: staff tasks (the console reads them)
 *
 * A task's life: add (once per task id: redelivery changes nothing) -> claim (under a lease,
 * with a claim number that fences late workers) -> for SMS, prepare (opt-out and the limits
 * per number, then "calling" is recorded: from here on the message may reach the phone) ->
 * settle (final) or reschedule (a retry or a deferral). A claim that finds a task "calling"
 * (or "checking": a claim that found it calling died too) knows a send may have happened: it
 * marks the task "checking" and the caller asks the provider before any resend; only prepare
 * (a new send) or settle clears the mark. A send whose outcome is unknown is rescheduled as
 * "calling", so the provider is asked after the backoff, not at once. Time is Redis's (TIME),
 * never the caller's.
 */
#ifndef NT_OUTBOX_H
#define NT_OUTBOX_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"

#define NT_KEEP_DONE_MS (14LL * 24 * 3600 * 1000) /* longer than Kafka keeps the tasks */

typedef struct nt_outbox nt_outbox;

nt_outbox *nt_outbox_new(cw_redis *r);
void nt_outbox_free(nt_outbox *o);

/* Adds a task: reply integer 1 (new) or 0 (already known). A staff task (inbox non-NULL)
 * goes straight to that staff member's inbox and is settled as delivered. */
int nt_outbox_add(nt_outbox *o, const char *task_id, const void *env, size_t len, int64_t due_ms,
                  const char *inbox_staff, cw_redis_reply_fn *cb, void *arg);

/* One claimed task. */
struct nt_claimed {
    const char *id;
    const void *env;
    size_t env_len;
    /* the state before this claim: queued, retrying, deferred, sending (an earlier claim
     * died before sending), calling (a send may have happened: ask the provider first) */
    const char *prior;
    unsigned claim, tries;
};

/* Claims up to max due tasks for lease_ms. Parse the reply with nt_outbox_claim_reply. */
int nt_outbox_claim(nt_outbox *o, int64_t lease_ms, unsigned max, cw_redis_reply_fn *cb, void *arg);
/* The reply's tasks into out (at most cap); *now_ms is Redis's time, *next_ms the earliest
 * next due time (-1: none). Returns the number of tasks, or -1 for a malformed reply. */
int nt_outbox_claim_reply(const redisReply *r, struct nt_claimed *out, size_t cap, int64_t *now_ms,
                          int64_t *next_ms);

/* For an SMS: checks the opt-out list (check_optout) and the limits per number (0: none),
 * then records "calling". Reply: ["go"], ["optout"], ["wait", ms], ["fenced"]. */
int nt_outbox_prepare(nt_outbox *o, const char *task_id, unsigned claim, const char *phone_hash,
                      int check_optout, const int limits[3], cw_redis_reply_fn *cb, void *arg);

/* Final: state (sent, failed, suppressed, delivered) with tries and the provider's reference.
 * Reply "ok", "fenced" (another claim took it) or "gone". */
int nt_outbox_settle(nt_outbox *o, const char *task_id, unsigned claim, const char *state,
                     unsigned tries, const char *ref, cw_redis_reply_fn *cb, void *arg);
/* Not yet: state (retrying, deferred, or calling: ask the provider first) and when to look
 * again, delay_ms from Redis's now. */
int nt_outbox_reschedule(nt_outbox *o, const char *task_id, unsigned claim, const char *state,
                         unsigned tries, int64_t delay_ms, cw_redis_reply_fn *cb, void *arg);

#endif
