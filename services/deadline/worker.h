/*
 * The deadline worker's insides, shared by its files (not a public header); main.c has the
 * overview.
 *   arm.c   arming: case events of casewire.cases.v1 into the timer store
 *   fire.c  firing: claims of due timers, their checks, publishes and commits, and the wake-ups
 *   main.c  setup, metrics, shutdown
 * Both halves also project clocks and escalations into the case record (record.h).
 */
#ifndef DL_WORKER_H
#define DL_WORKER_H
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clocks.h"
#include "escalate.h"
#include "httpd.h"
#include "inspect.h"
#include "log.h"
#include "metrics.h"
#include "record.h"
#include "redis.h"
#include "service.h"
#include "timers.h"
#include "wake.h"

#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 5000
#define MAX_ERROR_REPLIES 5         /* Redis refusing a case's apply this often: skipped, logged */
#define RESYNC_MS 30000             /* every shard's head read again, in case a wake-up was lost */
#define RESYNC_UNSUBSCRIBED_MS 1000 /* ... while wake-ups cannot arrive at all */
#define COMMIT_ATTEMPTS 3
#define RECORD_ATTEMPTS 3 /* a breach's write into the case record, before committing without */
/* A shard whose claim just brought timers is claimed again no sooner than this: at thousands
 * of timers a second each claim then takes several (and so does each check and commit run)
 * instead of one, for at most this much lateness. Idle shards are claimed at their due time. */
#define BUSY_CLAIM_GAP_MS 4
#define NEVER INT64_MAX

struct job;
struct fire;

struct worker {
    struct event_base *base;
    const cw_chain *chain;
    cw_calendar *cal;
    struct dl_ctx ctx;
    cw_redis *redis;
    dl_timers *timers;
    dl_record *record;   /* what the case record shows of the clocks (record.h) */
    dl_inspect *inspect; /* the operator view on the admin port */
    cw_producer *producer;
    dl_wake *wake;
    int64_t lease_ms;
    unsigned batch;
    size_t max_firing; /* claimed timers being fired at once, before claiming pauses */
    struct {
        int64_t due_mono;   /* when the shard next needs a claim (monotonic ms), NEVER */
        int64_t woken_mono; /* earliest wake-up that came while claiming, NEVER */
        bool claiming;
    } shards[DL_SHARDS];
    bool clock_known;
    int64_t redis_minus_mono; /* Redis's time minus our monotonic clock, from the last claim */
    struct event *wake_timer, *resync_timer;
    /* Fires waiting for their commit, by shard: sent together, one script run per shard, on
     * the loop's next turn (delivery reports come in bursts). */
    struct fire *commit_head[DL_SHARDS], *commit_tail[DL_SHARDS];
    struct event *commit_flush;
    struct job *jobs;
    struct fire *fires;
    size_t firing;
    unsigned claims_out; /* claims sent, not answered: their timers may come any moment */
    bool closing;
    struct cw_metric *applied, *duplicates, *skipped, *fired_warning, *fired_breach, *fenced_redis,
        *fenced_clock, *cancelled, *abandoned, *lateness, *claims, *retries;
};

/* ---- arm.c ---- */
/* A record of casewire.cases.v1 (the consumer's callback, arg the worker). */
void dl_arm_record(void *arg, cw_kmsg *m);
/* At exit: retry timers first (parked), then, once Redis is closed, the records themselves
 * (not committed: redelivered after the restart). */
void dl_arm_park(struct worker *w);
void dl_arm_free(struct worker *w);

/* ---- fire.c ---- */
void dl_fire_wake_message(void *arg, unsigned shard, int64_t due_ms);
void dl_fire_wake_state(void *arg, bool subscribed);
void dl_fire_wake_timer(evutil_socket_t fd, short what, void *arg);
void dl_fire_resync(evutil_socket_t fd, short what, void *arg);
void dl_fire_flush_commits(evutil_socket_t fd, short what, void *arg);
/* At exit, as for arming: timers being fired are claimed again after their lease. */
void dl_fire_park(struct worker *w);
void dl_fire_free(struct worker *w);

#endif
