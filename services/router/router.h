/*
 * The router's insides, shared by its files (not a public header).
 *
 *   main.c     setup, the consumer, one job per intake record: decide, store, publish, done
 *   decide.c   what a case is, who owns it and which clocks run (classify, assign, plan)
 *   store.c    the route script: the case record, indexes, owner by load, repeats (docs/redis.md)
 *   publish.c  the events it writes: CaseRouted, the first NotificationTasks, Rejected
 *
 * One intake record is one job. Its effects happen in this order, each keyed so that doing it
 * again changes nothing: the route script (keyed by case id: a second run returns the first
 * decision), the events (same event ids and task ids on every attempt), a mark that they were
 * delivered, and only then the record's offset. A crash anywhere redelivers the record and the
 * job picks up where the stored decision says.
 */
#ifndef RT_ROUTER_H
#define RT_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "assign.h"
#include "calendar.h"
#include "chain.h"
#include "classify.h"
#include "event.h"
#include "ids.h"
#include "kafka.h"
#include "plan.h"

struct event;
struct event_base;
struct cw_redis;
struct cw_redis_script;
struct redisReply;
struct cw_metric;

/* Owner ids are staff ids (chain ids: at most 64 bytes). */
#define RT_ID_MAX 72

struct router {
    struct event_base *base;
    const cw_chain *chain;
    cw_calendar *cal;
    rt_classifier *classifier;
    struct cw_redis *redis;
    cw_producer *producer;
    struct cw_redis_script *route_script;
    int64_t repeat_window_ms;
    struct rt_job *jobs; /* every job not finished, for the shutdown */
    bool closing;        /* the loop has ended: park jobs, start nothing */
    struct cw_metric *routed, *redelivered, *rejected, *retries, *repeats;
};

enum rt_step { RT_STEP_ROUTE, RT_STEP_PUBLISH, RT_STEP_MARK, RT_STEP_REJECT };

struct rt_job {
    struct router *rt;
    cw_kmsg *msg;
    struct rt_job *prev, *next;
    enum rt_step step;
    struct event *retry_timer;
    int attempts;      /* of the current step */
    int error_replies; /* Redis error replies (a script or data problem, not an outage) */
    int deliveries;    /* produced, report not yet in */
    bool delivery_failed;

    /* the intake record */
    cw_envelope *env; /* NULL when it did not decode */
    const Casewire__V1__CaseSubmitted *cs;
    const struct cw_site *site;
    const struct cw_tenant *tenant;
    char reject_reason[256];

    /* the decision */
    struct rt_verdict verdict;
    struct rt_assignment assignment;
    struct rt_plan plan;
    char owner[RT_ID_MAX];
    char routed_event_id[CW_ULID_LEN + 1];
    char repeat_of[CW_ULID_LEN + 1];
    bool duplicate; /* the route script had already run for this case */
};

/* ---- decide.c ---- */
/* Checks and decides for job->env; 0, or -1 with job->reject_reason set (the record goes to
 * the dead-letter topic). */
int rt_decide(struct router *rt, struct rt_job *job);
/* The customer's phone (E.164) on the case, or "". */
const char *rt_customer_phone(const struct rt_job *job);

/* ---- store.c ---- */
int rt_store_init(struct router *rt);
/* Runs the route script for the job; cb gets the reply. Returns 0 or a negative cw_redis
 * result (the callback is then never called). */
int rt_store_route(struct router *rt, struct rt_job *job,
                   void (*cb)(void *arg, const struct redisReply *reply, const char *err));
/* Reads the route script's reply into the job: 0, or -1 when it is not one. */
int rt_store_route_reply(struct rt_job *job, const struct redisReply *reply, bool *published);
/* Records that the job's events were all delivered. */
int rt_store_mark(struct router *rt, struct rt_job *job,
                  void (*cb)(void *arg, const struct redisReply *reply, const char *err));

/* ---- publish.c ---- */
/* Produces CaseRouted and the notification tasks of a decided job; each delivery report goes
 * to cb. Returns how many were produced (job->deliveries is raised by that many), or a negative
 * CW_PRODUCE_* when the first could not be: nothing is then outstanding. A refusal after the
 * first leaves the ones produced outstanding and returns their count with *incomplete set. */
int rt_publish_routed(struct router *rt, struct rt_job *job, cw_delivery_fn *cb, bool *incomplete);
/* Produces the record, whole, to the dead-letter topic with job->reject_reason. */
int rt_publish_rejected(struct router *rt, struct rt_job *job, cw_delivery_fn *cb);
/* The case's JSON record for Redis (everything staff may read): malloc'd, or NULL. */
char *rt_record_json(const struct rt_job *job);

#endif
