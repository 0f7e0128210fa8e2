/*
 * Which clocks a case event moves, and the timers of a running clock (docs/deadline.md has
 * the table). Pure functions over the chain and the calendar: no I/O, so the table is tested
 * without Redis or Kafka (tests/unit/test_deadline.c).
 *
 * A running clock is armed as one warning timer per percent of its SLA policy ("w50", "w80",
 * at that fraction of the clock) and one breach timer ("b0": the clock ran out; it escalates
 * to ladder level 0, and each later breach "b<N>" to level N). The worker keeps what it needs
 * of a case as facts in the case's clock state (timers.h): site, case number, owner, urgency,
 * policy, language and the duration of each clock, all from CaseRouted, the owner changed by
 * a reassign. Every timer carries a payload (dl_payload) with what firing it needs.
 */
#ifndef DL_CLOCKS_H
#define DL_CLOCKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "chain.h"
#include "event.h"
#include "timers.h"

#define DL_PAYLOAD_MAX 512
#define DL_FACT_VALUE_MAX 80

/* What a timer carries (JSON in the store). */
struct dl_payload {
    char site[16];
    char case_no[48];
    int urgency;             /* Urgency */
    int kind;                /* ClockKind */
    int64_t start_ms;        /* when the clock (or, for a later level, the level) started */
    int64_t clock_due_ms;    /* when the clock (or level) runs out */
    int64_t at_ms;           /* when this timer is due */
    struct cw_duration span; /* the clock's duration: each later level gets as long again */
    int level;               /* breach: the ladder level it escalates to; warning: -1 */
    int warn_pct;            /* warning: its percent; breach: 0 */
};

int dl_payload_encode(const struct dl_payload *p, char *buf, size_t len);
/* 0, or -1 when json is not a payload of ours. */
int dl_payload_decode(const char *json, size_t len, struct dl_payload *out);

/* The facts the worker keeps about a case, read back before a case event is planned. */
struct dl_facts {
    char site[16], case_no[48], owner[72], policy[64];
    int urgency;
    struct cw_duration clocks[CW_CHAIN_CLOCKS]; /* by ClockKind; basis UNSET: not run */
    bool known;                                 /* CaseRouted was seen */
};

/* The fact names to read (dl_timers_read_facts) and how to read the reply into facts. */
extern const char *const dl_fact_names[];
extern const size_t dl_fact_count;
int dl_facts_from_reply(const struct redisReply *r, struct dl_facts *out);

/* One event's changes, with the storage they point into. */
struct dl_plan {
    struct dl_change change;
    const char *stops[CW_CHAIN_CLOCKS];
    struct dl_arm arms[DL_MAX_ARMS];
    char stages[DL_MAX_ARMS][DL_STAGE_MAX];
    char payloads[DL_MAX_ARMS][DL_PAYLOAD_MAX];
    struct dl_fact facts[DL_MAX_FACTS];
    char fact_values[DL_MAX_FACTS][DL_FACT_VALUE_MAX];
    char why[160]; /* when planning refused the event */
};

struct dl_ctx {
    const cw_chain *chain;
    const cw_calendar *cal;
};

/* Whether planning env needs the case's facts first (a CaseEvent that starts a clock). */
bool dl_needs_facts(const cw_envelope *env);
/* Plans a CaseRouted or CaseEvent (facts: the case's, or NULL when not needed). 1 with
 * out->change ready to apply, 0 when the event moves no clock (nothing to apply), -1 when
 * it cannot be planned (out->why says why: an unknown site, a case id the store refuses). */
int dl_plan_event(const struct dl_ctx *ctx, const cw_envelope *env, const struct dl_facts *facts,
                  struct dl_plan *out);

/* Due time of `span` started at start_ms on the site's calendar; a wall span when the
 * calendar has no answer. */
int64_t dl_span_due(const struct dl_ctx *ctx, const struct cw_site *site, int64_t start_ms,
                    const struct cw_duration *span);

#endif
