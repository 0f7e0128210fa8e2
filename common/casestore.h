/*
 * The case store's one write that more than one service makes: committing an action on a case
 * (docs/redis.md, "Cases"). The gateway commits staff, tenant and customer actions; the
 * notifier commits the close of a case whose customer could not be reached.
 */
#ifndef CW_CASESTORE_H
#define CW_CASESTORE_H

/* Lua. KEYS: the idempotency record ('' none). ARGV: 1 case id, 2 action name, 3 follow-up
 * outcome ('' none: a reopen clears the case's), 4 now ms, 5 new status ('' same), 6 response
 * (stored in the idempotency record), 7 history entry (JSON), 8 its time (ms), 9 new owner (''
 * same), 10 the site's date of the event (yyyymmdd, '' unknown), 11 optional: the status the case
 * must have, else nothing is written and the reply is -1; with it, a commit whose history entry
 * is in already writes nothing again and replies 1 (a retry must not undo what happened
 * since); 12 optional: the case's new department ('' same). Keeps the
 * router's indexes: the site's cases by status, the owner's open cases and open load, and the
 * times the reports measure: acked_ms and replied_ms (the first), resolved_ms, closed_ms and
 * followup_ms (the latest), each the entry's time (ARGV 8). The history
 * is a sorted set of entries that name their event: a retried commit adds nothing. Reply 1, or 0:
 * no such case. */
extern const char cw_case_event_commit_lua[];

/* A follow-up reply code: this many digits, which the customer sends back followed by 1
 * (satisfied) or 2 (not satisfied). The notifier keeps cw:cb:reply:<phone hash>:<code> -> case
 * id for CW_REPLY_CODE_TTL_S; the gateway's /v1/sms/replies looks it up. */
#define CW_REPLY_CODE_DIGITS 4
#define CW_REPLY_CODE_TTL_S (7 * 86400)

#endif
