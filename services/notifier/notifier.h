/*
 * The notifier's insides, shared by its files (not a public header); main.c has the overview.
 *   take.c     taking: records of casewire.notify.v1 and casewire.cases.v1 into the outbox (and
 *              the follow-up's work), each offset committed once Redis has it
 *   deliver.c  delivering: claims of due tasks, SMS and webhook sends, the outcome recorded
 *   main.c     setup, metrics, shutdown
 */
#ifndef NT_NOTIFIER_H
#define NT_NOTIFIER_H
#include <event2/event.h>
#include <hiredis/hiredis.h>
#include <jansson.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calendar.h"
#include "callbacks.h"
#include "event.h"
#include "hooks.h"
#include "http.h"
#include "log.h"
#include "metrics.h"
#include "outbox.h"
#include "redis.h"
#include "service.h"
#include "shutdown.h"
#include "sms.h"

#define CLAIM_BATCH 256
#define MAX_BUSY 2048      /* claimed tasks in progress before claiming pauses */
#define IDLE_CLAIM_MS 1000 /* look at the outbox at least this often (other notifiers' tasks) */
#define ADD_RETRY_MIN_MS 100
#define ADD_RETRY_MAX_MS 5000
#define STEP_RETRY_MS 500 /* a Redis write after a send failed: try it again */
#define STEP_ATTEMPTS 20
#define MAX_TEXT 4096 /* bytes of a rendered message */
#define MAX_TASK_ID 160
#define MAX_CASE_AGE_MS (7LL * 24 * 3600 * 1000) /* older case events are not acted on */

struct add;
struct task;

struct notifier {
    struct event_base *base;
    const cw_chain *chain;
    const struct cw_sms_settings *sms_cfg;
    const struct cw_webhook_settings *hook_cfg;
    unsigned hook_allow; /* address kinds webhooks may reach besides public ones */
    cw_calendar *cal;
    cw_redis *redis;
    cw_producer *producer;
    nt_outbox *outbox;
    nt_http *http;      /* SMS providers */
    nt_http *hook_http; /* tenant webhooks: their own connections and slots, so a tenant whose
                         * server hangs cannot hold up the customers' SMS */
    nt_sms *sms;
    nt_callbacks *callbacks;
    int64_t lease_ms;
    struct event *claim_timer;
    bool claiming, stopping, closing;
    size_t busy;
    struct add *adds;
    struct task *tasks;
    struct {
        cw_metric *added, *duplicates, *bad, *claims, *sent, *retry, *rejected, *unknown, *deferred,
            *suppressed, *failed, *fenced, *dead, *latency, *staff, *hook_sent, *hook_retry,
            *hook_failed, *too_old;
    } m;
};

static inline uint64_t nt_rand_u64(void)
{
    uint64_t v = 0;
    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1) v = (uint64_t)clock();
    return v;
}

static inline int64_t nt_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- take.c ---- */
/* A record of casewire.notify.v1 or casewire.cases.v1 (the consumer's callback, arg the
 * notifier). */
void nt_take_record(void *arg, cw_kmsg *m);
/* At exit: the retry timers go first (parked: nothing is committed, the records come back
 * after the restart), then, once Redis and HTTP are closed, the records themselves. */
void nt_take_park(struct notifier *n);
void nt_take_free(struct notifier *n);

/* ---- deliver.c ---- */
/* Claims due tasks within delay_ms (an earlier wake-up wins), unless stopping. */
void nt_claim_soon(struct notifier *n, int64_t delay_ms);
void nt_claim_timer(evutil_socket_t fd, short what, void *arg);
/* At exit, as for taking: claimed tasks come back after their lease. */
void nt_deliver_park(struct notifier *n);
void nt_deliver_free(struct notifier *n);
/* Shutdown stages: no new claims; then the sends under way are done. */
void nt_stop_delivering(void *arg);
int nt_deliveries_done(void *arg);
double nt_busy_now(void *arg);

#endif
