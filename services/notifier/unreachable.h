/*
 * The end of the follow-up for a customer nobody could reach: after the last unreachable call
 * (callbacks.c), the case is closed as unreachable (its follow-up stays "unreachable": the
 * flag the report and the console show), and the customer gets an SMS with a reply code
 * ("reply 48271 if satisfied, 48272 if not", template followup_unreachable) that the gateway's
 * /v1/sms/replies turns into the follow-up outcome.
 *
 * Steps, each safe to repeat, so the caller retries the whole from the top until it finishes:
 *   1. read the case (status, number, language, customer's phone from its record);
 *   2. give the case a reply code for the customer's number (cw:cb:reply:<phone hash>:<code>,
 *      7 days): the same code on every retry;
 *   3. commit the close in the case store, only if the case is still resolved (a reopen in
 *      the meantime wins: nothing is closed or sent);
 *   4. publish the close (a CaseEvent from the notifier, actor system) to casewire.cases.v1 and
 *      the SMS task to casewire.notify.v1, with ids derived from the callback task, so a retry
 *      publishes the same events, which every consumer applies once;
 *   5. mark the callback task "wrapped".
 * The case store is written before Kafka here (the gateway does the reverse): the callback
 * task's outcome script answers "unreachable" again until step 5, so a notifier that dies in
 * between publishes on the next try.
 */
#ifndef NT_UNREACHABLE_H
#define NT_UNREACHABLE_H

#include <stdint.h>

#include "chain.h"
#include "kafka.h"
#include "redis.h"

typedef struct nt_unreachable nt_unreachable;

nt_unreachable *nt_unreachable_new(cw_redis *r, cw_producer *p, const cw_chain *chain);
void nt_unreachable_free(nt_unreachable *u);

/* Starts the steps for callback task task_id of case_id at site, whose last unreachable
 * outcome happened at at_ms. done(arg, ok, why) runs once, later; ok 0: try again later.
 * Returns 0, or -1 (out of memory; done never runs). */
int nt_unreachable_close(nt_unreachable *u, const char *task_id, const char *case_id,
                         const char *site, int64_t at_ms,
                         void (*done)(void *arg, int ok, const char *why), void *arg);

#endif
