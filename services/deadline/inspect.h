/*
 * The operator's view of the timer store, served on the deadline worker's admin port
 * (docs/deadline.md, "Operator view"). Both endpoints only read Redis:
 *
 *   GET /v1/timers/cases/{case_id}   one case: each clock's generation and its armed timers
 *                                    (stage, due time, waiting or being fired), and the facts
 *                                    the worker keeps (site, owner, policy, ...)
 *   GET /v1/timers/counts[?site=S]   timers per site and clock (warnings, breaches, past due)
 *                                    and the store's totals: waiting, being fired, overdue
 *
 * Counts read every payload (HSCAN, shard after shard), so a count costs time in proportion to
 * the timers armed. One count runs at a time; requests that arrive meanwhile get its answer.
 */
#ifndef DL_INSPECT_H
#define DL_INSPECT_H

#include "chain.h"
#include "timers.h"

struct evhttp_request;

typedef struct dl_inspect dl_inspect;

/* NULL when out of memory. The timers and the chain must outlive it. */
dl_inspect *dl_inspect_new(dl_timers *timers, const cw_chain *chain);
/* After the Redis client was closed (its callbacks have run). */
void dl_inspect_free(dl_inspect *in);
/* A cw_httpd_handler (arg: the dl_inspect): answers the endpoints above, 404 otherwise. */
void dl_inspect_handle(struct evhttp_request *req, void *arg);

#endif
