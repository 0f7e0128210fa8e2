/*
 * Tenant webhooks: which case events a tenant is told about, the JSON it gets, and the signed
 * POST that delivers it (Standard Webhooks: webhook-id, webhook-timestamp, webhook-signature;
 * webhook.h signs). docs/notifier.md, "Tenant webhooks", is the tenant developer's reference.
 *
 * A delivery never follows a redirect, has a timeout, and connects only to addresses the guard
 * allows (public ones, plus the kinds the chain's webhooks.allow_addresses names): the check
 * is on every address the URL's name resolves to, at connect time, so a name that resolves to
 * a private address (or changes to one) is refused too. A delivery is retried under the same
 * webhook-id, so a receiver that dedups by it sees each event once.
 */
#ifndef NT_HOOKS_H
#define NT_HOOKS_H

#include <stddef.h>

#include "chain.h"
#include "event.h"
#include "http.h"
#include "sms.h" /* struct nt_sms_result: the same four outcomes */

#define NT_HOOK_BODY_MAX (32 * 1024)

/* The webhook task for a record of casewire.cases.v1, or NULL when the case's tenant has no
 * webhook (or the record is not one a tenant is told about: routed cases and case events).
 * *why says why not when it is NULL for a reason worth logging. Free with cw_event_free. */
cw_envelope *nt_hook_task(const cw_chain *chain, const cw_envelope *rec, const char **why);

/* The allow mask for the chain's webhooks.allow_addresses; -1 with *bad naming an unknown
 * kind. */
int nt_hook_allow_mask(const struct cw_webhook_settings *ws, unsigned *mask, const char **bad);

/* POSTs body to the tenant's URL, signed with its secret. 0: cb runs once, later; -1: could
 * not start (cb never runs). Outcomes: SENT (2xx), RETRY (other answers, timeouts, unreachable),
 * REJECTED (a redirect, or an address the guard refuses). */
int nt_hook_send(nt_http *http, const struct cw_webhook_settings *ws, unsigned allow_mask,
                 const struct cw_tenant *t, const char *task_id, const void *body, size_t len,
                 nt_sms_fn *cb, void *arg);

#endif
