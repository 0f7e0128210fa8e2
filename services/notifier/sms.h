/*
 * SMS providers behind one interface, chosen by the chain's `sms.provider`:
 *   file    appends one JSON line per message to a file (the embedded default: var/sms.log)
 *   http    a generic HTTP/JSON provider (docs/notifier.md gives its small protocol)
 *   aliyun  Alibaba Cloud SMS: SendSms with a signed request (alisms.h)
 *
 * A send ends in one of four outcomes. NT_SMS_UNKNOWN is the one that matters: the request may
 * have reached the provider (a timeout, a connection broken after sending), so the message may
 * be on its way to the phone. The caller must not send it again before nt_sms_status() says
 * the provider never got it; when the provider cannot tell, it counts as sent.
 */
#ifndef NT_SMS_H
#define NT_SMS_H

#include <stdbool.h>
#include <stddef.h>

#include "chain.h"
#include "http.h"

enum nt_sms_outcome {
    NT_SMS_SENT = 0,  /* the provider accepted it */
    NT_SMS_RETRY,     /* not sent (or refused for now: throttled, 5xx): try again later */
    NT_SMS_REJECTED,  /* refused for good (bad number, template, credentials): do not retry */
    NT_SMS_UNKNOWN,   /* may have been sent: check status before any resend */
    NT_SMS_NO_ANSWER, /* nt_sms_status() only: the provider could not be asked (no connection
                       * in time, refused, timed out): ask again later, never resend */
};

struct nt_sms_result {
    enum nt_sms_outcome outcome;
    bool throttled; /* with NT_SMS_RETRY: the provider's rate limit; wait long */
    long http_status;
    char ref[128];   /* the provider's message id, when it gave one */
    char error[256]; /* what went wrong, for logs and the result event (no personal data) */
};

struct nt_sms_msg {
    const char *id;          /* our task id: the provider's idempotency key / OutId */
    const char *phone;       /* personal data: never logged */
    const char *text;        /* rendered */
    const char *template_id; /* ours */
    const char *params_json; /* {"case_no":"..."}: Alibaba renders its own template from it */
};

typedef struct nt_sms nt_sms;
typedef void nt_sms_fn(void *arg, const struct nt_sms_result *r);

/* NULL with a reason when the settings cannot work (a file that cannot be opened). */
nt_sms *nt_sms_new(const struct cw_sms_settings *s, const cw_chain *chain, nt_http *http,
                   struct event_base *base, char *err, size_t errlen);
void nt_sms_free(nt_sms *p);
const char *nt_sms_provider_name(const nt_sms *p);

/* 0: cb runs once, later, from the loop. -1: refused at once (too busy); retry later. */
int nt_sms_send(nt_sms *p, const struct nt_sms_msg *m, nt_sms_fn *cb, void *arg);
/* After NT_SMS_UNKNOWN (or a crash in the middle of a send): SENT when the provider has the
 * message, RETRY when it certainly does not (its own answer says so), UNKNOWN when it cannot
 * tell (the caller then treats the message as sent: a second SMS is worse than a missing
 * receipt), NO_ANSWER when the question did not get through (ask again). */
int nt_sms_status(nt_sms *p, const struct nt_sms_msg *m, nt_sms_fn *cb, void *arg);

/* Renders template text with the task's params ({name} -> value; a placeholder without a
 * value becomes empty and is named in *missing). Returns the length in characters (UTF-8
 * code points), or -1 when out is too small. */
int nt_sms_render(const char *tmpl, const char *const *keys, const char *const *values, size_t n,
                  char *out, size_t outlen, char *missing, size_t missing_len);
/* Characters (code points) of a UTF-8 string. */
size_t nt_utf8_chars(const char *s);

#endif
