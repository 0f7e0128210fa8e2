/*
 * Orderly shutdown in a fixed order of stages, within one deadline:
 *
 *   1. STOP_ACCEPTING    close listeners, pause consumers: no new work comes in
 *   2. DRAIN             let work in flight finish (HTTP requests, consumed messages)
 *   3. FLUSH_PRODUCERS   wait for Kafka delivery reports of everything produced
 *   4. CLOSE_CONSUMERS   commit what is done, leave the consumer group
 *   5. DISCONNECT_REDIS  last, because the stages before may still write to Redis
 *
 * Each step registers begin() (start it, without blocking) and done() (is it finished?);
 * the loop keeps running and done() is polled every 10 ms. Each stage may use a share of the
 * time left when it starts (20%, 50%, 50%, 67%, all of the rest), so an overrunning stage
 * never leaves the later ones without time. A step not done by then is logged by name and
 * skipped, and the loop ends anyway, within the whole deadline. SIGINT/SIGTERM
 * start the shutdown; a second signal, or the deadline plus a grace period passing after the
 * loop has ended (a destructor that hangs), ends the process at once with exit code 3.
 */
#ifndef CW_SHUTDOWN_H
#define CW_SHUTDOWN_H

struct event_base;

enum cw_shutdown_stage {
    CW_STAGE_STOP_ACCEPTING,
    CW_STAGE_DRAIN,
    CW_STAGE_FLUSH_PRODUCERS,
    CW_STAGE_CLOSE_CONSUMERS,
    CW_STAGE_DISCONNECT_REDIS,
    CW_STAGE__COUNT
};

typedef struct cw_shutdown cw_shutdown;

cw_shutdown *cw_shutdown_new(struct event_base *base, long long timeout_ms);
void cw_shutdown_free(cw_shutdown *sd);

/* begin may be NULL (nothing to start); done may be NULL (finished once begun). */
int cw_shutdown_add(cw_shutdown *sd, enum cw_shutdown_stage stage, const char *name,
                    void (*begin)(void *arg), int (*done)(void *arg), void *arg);
/* SIGINT and SIGTERM start the shutdown; SIGPIPE is ignored. */
int cw_shutdown_watch_signals(cw_shutdown *sd);
void cw_shutdown_begin(cw_shutdown *sd, const char *reason);
int cw_shutdown_started(const cw_shutdown *sd);
/* 1 when every step finished before the deadline. */
int cw_shutdown_clean(const cw_shutdown *sd);

#endif
