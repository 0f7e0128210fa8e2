/*
 * Tasks the notifier publishes itself when a follow-up ends (callbacks.c, unreachable.c): the
 * SMS with a reply code for a customer nobody reached, and the staff task that reports a
 * regulator's referral back to the regulator. They go to casewire.notify.v1 like everyone
 * else's, so the outbox takes each once; their ids derive from the callback task, so a retry
 * publishes the same ones.
 *
 * Regulator referrals (channel regulator: 工商/消协转办) are answered back once the follow-up is
 * over: the case's owner gets a staff task <callback task id>:regulator (template
 * regulator_report, params case_no, external_ref: the regulator's reference, outcome) in the
 * inbox the console lists.
 */
#ifndef NT_PUBLISH_H
#define NT_PUBLISH_H

#include <stddef.h>
#include <stdint.h>

#include "ids.h"
#include "kafka.h"

struct nt_new_task {
    int kind;                                      /* CASEWIRE__V1__NOTIFICATION_KIND__* */
    const char *task_id, *event_id, *causation_id; /* causation may be NULL */
    const char *case_id, *site, *tenant;           /* tenant NULL, "" or "-": none */
    const char *phone;                             /* a customer's SMS */
    const char *staff_id;                          /* a staff task */
    const char *template_id, *language;
    const char *const *keys, *const *values; /* nparams template placeholders */
    size_t nparams;
    int64_t at_ms;
};

/* Queues the task; cb(opaque, ...) gets the delivery report. Returns a cw_produce_result
 * (CW_PRODUCE_OK: cb will run). */
int nt_task_send(cw_producer *p, const struct nt_new_task *t, cw_delivery_fn *cb, void *opaque);

/* A ULID at at_ms whose other bits are SHA-256("<what>:<seed>"): the same on every retry. */
void nt_derived_id(int64_t at_ms, const char *what, const char *seed, char out[CW_ULID_LEN + 1]);

struct nt_regulator_report {
    const char *callback_task_id, *case_id, *site, *tenant;
    const char *owner, *case_no, *external_ref, *outcome; /* outcome: satisfied, unreachable */
    int64_t at_ms;                                        /* when the follow-up ended */
};

/* The regulator report-back task to the case's owner; as nt_task_send. */
int nt_regulator_send(cw_producer *p, const struct nt_regulator_report *rep, cw_delivery_fn *cb,
                      void *opaque);

/* A string of the case record the router wrote (cw:case:<id> record), record.path1 or
 * record.path1.path2, into out; "" when absent. */
void nt_record_field(const char *record_json, const char *path1, const char *path2, char *out,
                     size_t cap);

#endif
