/*
 * The follow-up (回访): every resolution of a case puts exactly one callback task in its site's
 * call-centre queue in Redis, due when the case's follow-up clock runs out (its SLA policy,
 * counted in the site's calendar); the gateway lists the queue to agents and leases tasks to
 * them; the outcome an agent records (a CaseEvent, action followup) completes the task, or,
 * when the customer was unreachable, puts it back after NT_CB_RETRY_MS, up to
 * NT_CB_MAX_ATTEMPTS calls, after which the case is closed as unreachable and the customer
 * gets an SMS with a reply code (unreachable.h). A reopen or a close cancels the open task; a new
 * resolution supersedes an earlier one still open. docs/notifier.md, "The follow-up", lists the
 * keys; the gateway reads the same ones.
 */
#ifndef NT_CALLBACKS_H
#define NT_CALLBACKS_H

#include "calendar.h"
#include "chain.h"
#include "event.h"
#include "kafka.h"
#include "redis.h"

#define NT_CB_RETRY_MS (60LL * 60 * 1000) /* an unreachable customer is called again in 1 h */
#define NT_CB_MAX_ATTEMPTS 3
#define NT_CB_DEFAULT_DUE_MS (3LL * 60 * 60 * 1000) /* when no policy runs the follow-up clock */
#define NT_CB_WAIT_ATTEMPTS 6 /* an outcome waits this many retries for its task to appear */

typedef struct nt_callbacks nt_callbacks;

nt_callbacks *nt_callbacks_new(cw_redis *r, cw_producer *p, const cw_chain *chain,
                               const cw_calendar *cal);
void nt_callbacks_free(nt_callbacks *c);

/* 1 when rec is a resolution, a follow-up outcome, a reopen or a close: the work has started
 * and done(arg, ok, why) runs once, later (ok 0: try again later, with attempt + 1). 0 when rec
 * is none of those (done never runs). -1 when Redis refused it now (try again later; done
 * never runs). The callback task of a resolution is keyed by the resolve event's id, and a
 * task applies each event id once: redelivery changes nothing. */
int nt_callbacks_apply(nt_callbacks *c, const cw_envelope *rec, int attempt,
                       void (*done)(void *arg, int ok, const char *why), void *arg);

#endif
