/*
 * The timer store: every running clock of every case as timers in Redis, spread over
 * DL_SHARDS shards, each shard's keys under one hash tag (docs/deadline.md has the keys and
 * why). Three scripts, each one round trip and atomic:
 *
 *   apply  a case event's clock changes, once per event id: stop clocks, (re)start clocks
 *          with a new generation and their timers
 *   claim  take due timers (and timers whose lease ran out) under a lease and a fencing token
 *   fire   check that a claimed timer's token still holds, or commit its firing: remove it
 *          and arm the next timer of its clock (the next ladder level)
 *
 * Time is always Redis's (TIME), never the caller's. Replies are parsed by the dl_*_reply
 * functions; the callbacks are cw_redis's (docs in common/redis.h).
 */
#ifndef DL_TIMERS_H
#define DL_TIMERS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "redis.h"

#define DL_SHARDS 16
#define DL_WAKE_CHANNEL "cw:timers:wake" /* message: "<shard> <due ms>" */
#define DL_TIMER_ID_MAX 96
#define DL_TOKEN_MAX 24
/* Parts of a timer id, with their NUL: case ids, clocks and stages are [A-Za-z0-9_-]. */
#define DL_CASE_ID_MAX 32
#define DL_CLOCK_MAX 24
#define DL_STAGE_MAX 16

typedef struct dl_timers dl_timers;

/* The shard of a case: FNV-1a of its id, mod DL_SHARDS. */
unsigned dl_shard_of(const char *case_id);

/* Registers the scripts with r. NULL when out of memory. */
dl_timers *dl_timers_new(cw_redis *r);
void dl_timers_free(dl_timers *t);

/* A timer to arm: its clock ("handoff"), stage ("w50", "b0"), due time and payload (opaque to
 * the store; returned by claim). */
struct dl_arm {
    const char *clock, *stage;
    int64_t due_ms;
    const char *payload;
};

/* A fact about a case the worker keeps in its clock state (owner, policy, ...): names are
 * [A-Za-z0-9_-], shorter than DL_CLOCK_MAX. */
struct dl_fact {
    const char *name, *value;
};

/* One case event's changes. Each clock named in arms is restarted: its old timers are
 * cancelled and its generation goes up by one. Due times are Unix ms (years 2001 to 2286).
 * Facts are set with the changes, in the same script, once per event id. */
struct dl_change {
    const char *event_id, *case_id;
    const char *const *stops;
    size_t nstops;
    const struct dl_arm *arms;
    size_t narms;
    const struct dl_fact *facts;
    size_t nfacts;
};

enum { DL_MAX_ARMS = 64, DL_MAX_STOPS = 16, DL_MAX_FACTS = 16 };

/* Reply: {"ok"|"dup"}. CW_REDIS_BAD_COMMAND, before Redis, when there are too many stops or
 * arms, or a case id, clock, stage or due time that could not make a timer id (see above). */
int dl_timers_apply(dl_timers *t, const struct dl_change *c, cw_redis_reply_fn *cb, void *arg);
/* 1 applied, 0 already applied (a redelivery), -1 not a reply of apply. */
int dl_apply_reply(const redisReply *r);

/* Claims at most max timers of shard under a lease of lease_ms. */
int dl_timers_claim(dl_timers *t, unsigned shard, unsigned max, int64_t lease_ms,
                    cw_redis_reply_fn *cb, void *arg);

struct dl_claimed {
    const char *id, *token, *payload; /* point into the reply */
    size_t payload_len;
};
struct dl_claim {
    int64_t now_ms;  /* Redis's time at the claim */
    int64_t next_ms; /* when the shard next needs a worker (due or lease end); -1: never */
    size_t n;
    struct dl_claimed *timers; /* n of them, allocated: free() it */
    size_t skipped;            /* entries that were not timers of ours (never made by apply) */
};
/* 0 with *out filled (valid while the reply is), -1 when the reply is not claim's. */
int dl_claim_reply(const redisReply *r, struct dl_claim *out);

enum dl_fire_result {
    DL_FIRE_OK,        /* check: the token holds with enough lease left; commit: done (also
                        * for a commit retried after its first went through) */
    DL_FIRE_FENCED,    /* another worker holds or fired the timer: do nothing */
    DL_FIRE_CANCELLED, /* the clock stopped since the claim: do nothing */
    DL_FIRE_LATE,      /* check only: less than min_left_ms of the lease is left */
    DL_FIRE_BAD_REPLY,
};

/* check: is the token still the timer's, with at least min_left_ms of lease left?
 * commit (check false): the same token check, then the timer is removed, its token kept marked
 * as the one that fired it (until its cw:fired entry is trimmed) and, when next is given, the
 * next timer of the same clock and generation is armed (next->clock is ignored). */
int dl_timers_fire(dl_timers *t, const char *timer_id, const char *token, bool check,
                   int64_t min_left_ms, const struct dl_arm *next, cw_redis_reply_fn *cb,
                   void *arg);
enum dl_fire_result dl_fire_reply(const redisReply *r);

/* The same for up to DL_MAX_FIRE_BATCH timers of one shard in one script run (a claim's
 * batch): one round trip and one script call instead of one per timer. Each item's next is
 * for commit only. The reply holds one answer per item, read with the *_at functions. */
#define DL_MAX_FIRE_BATCH 10000 /* the highest claim batch (CASEWIRE_DEADLINE_BATCH) */
struct dl_fire_item {
    const char *id, *token;
    const struct dl_arm *next;
};
int dl_timers_fire_batch(dl_timers *t, unsigned shard, bool check, int64_t min_left_ms,
                         const struct dl_fire_item *items, size_t n, cw_redis_reply_fn *cb,
                         void *arg);
/* Whether the batch call would take this item (an id of this shard, a usable next timer):
 * callers leave a bad one out, so that it cannot fail the others. case_id: its case. */
bool dl_fire_item_ok(unsigned shard, bool check, const struct dl_fire_item *it,
                     char case_id[DL_CASE_ID_MAX]);
enum dl_fire_result dl_fire_reply_at(const redisReply *r, size_t i);
int dl_check_reply_at(const redisReply *r, size_t i, char *owner, size_t owner_len,
                      int64_t *left_ms);
/* A check's reply: DL_FIRE_OK with the case's owner fact ("" when none) and the lease left
 * (Redis's clock, at the check), or the refusal. */
int dl_check_reply(const redisReply *r, char *owner, size_t owner_len, int64_t *left_ms);

/* HMGET of the named facts of a case (reply: an array, nil for a fact never set). */
int dl_timers_read_facts(dl_timers *t, const char *case_id, const char *const *names, size_t n,
                         cw_redis_reply_fn *cb, void *arg);

/* The operator's view (inspect.c); these only read.
 * show: a case's clock state and its timers. Reply: {now ms, {field, value, ...} of the clock
 * state (gen:<clock>, on:<clock>, f:<fact>), the number of applied event ids, then id, due ms or
 * "", lease end ms or "", payload or "" for each timer the state lists}. */
int dl_timers_show(dl_timers *t, const char *case_id, cw_redis_reply_fn *cb, void *arg);
/* A shard's totals. Reply: {now ms, waiting, being fired (leased), waiting although due, all}. */
int dl_timers_shard_stats(dl_timers *t, unsigned shard, cw_redis_reply_fn *cb, void *arg);
/* One HSCAN step over a shard's payloads (cursor "0" to start; the reply's cursor "0": done). */
int dl_timers_scan(dl_timers *t, unsigned shard, const char *cursor, unsigned count,
                   cw_redis_reply_fn *cb, void *arg);

/* The parts of a timer id "<case>.<clock>.<gen>.<stage>", copied into the caller's buffers.
 * 0, or -1 when id is not a timer id. */
int dl_timer_id_parse(const char *id, char case_id[DL_CASE_ID_MAX], char clock[DL_CLOCK_MAX],
                      unsigned *gen, char stage[DL_STAGE_MAX]);

#endif
