/*
 * Feeds the deadline worker for tests/integration/deadline*.sh.
 *
 *   deadline_feed routed CASE_ID SITE URGENCY OWNER HANDOFF_MS
 *       CaseRouted on casewire.cases.v1: a hand-off clock of HANDOFF_MS (wall time) from now,
 *       under the policy "default" (warnings at 50 and 80 %).
 *   deadline_feed action CASE_ID SITE ACTION
 *       a CaseEvent (acknowledge, resolve, close, ...) on casewire.cases.v1.
 *   deadline_feed arm N FIRST_MS SPREAD_MS
 *       N timers straight into the timer store (REDIS_URL): a 50 % warning of a hand-off clock
 *       of N different cases at SH01, due from Redis's now + FIRST_MS, evenly over SPREAD_MS.
 *       Prints "armed N first=<ms> last=<ms>" (Redis time).
 * KAFKA_BROKERS and REDIS_URL from the environment. Exit 0 only when everything was confirmed.
 */
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clocks.h"
#include "domain.h"
#include "event.h"
#include "ids.h"
#include "kafka.h"
#include "redis.h"
#include "timers.h"

static struct event_base *base;
static int pending, failures;

static void on_delivery(void *opaque, int error, const char *errstr)
{
    (void)opaque;
    pending--;
    if (error) {
        failures++;
        fprintf(stderr, "delivery failed: %s\n", errstr);
    }
}

static bool run_until_done(int seconds)
{
    int64_t end = cw_mono_ms() + seconds * 1000LL;
    while (pending > 0 && cw_mono_ms() < end) event_base_loop(base, EVLOOP_ONCE);
    return pending == 0;
}

static int produce(const cw_envelope *env)
{
    char err[256];
    struct cw_kafka_options o = {.brokers = getenv("KAFKA_BROKERS"), .client_id = "deadline-feed"};
    cw_producer *p = cw_producer_new(base, &o, err, sizeof err);
    if (!p) {
        fprintf(stderr, "producer: %s\n", err);
        return 1;
    }
    uint8_t *buf;
    size_t len = cw_event_pack(env, &buf);
    const char *key = env->meta->case_id;
    int rc =
        len ? cw_producer_send(p, CW_TOPIC_CASES, key, strlen(key), buf, len, on_delivery, NULL)
            : CW_PRODUCE_FAILED;
    free(buf);
    if (rc == CW_PRODUCE_OK) pending++;
    bool done = rc == CW_PRODUCE_OK && run_until_done(30);
    cw_producer_free(p);
    return done && failures == 0 ? 0 : 1;
}

static int routed(const char *case_id, const char *site, int urgency, const char *owner,
                  long long handoff_ms)
{
    char event_id[CW_ULID_LEN + 1];
    cw_ulid_new(event_id);
    cw_event_meta meta;
    cw_event_meta_init_as(&meta, event_id, "router", case_id, site, NULL, NULL);
    Casewire__V1__CaseRouted r = CASEWIRE__V1__CASE_ROUTED__INIT;
    r.case_no = "TEST-000001";
    r.urgency = urgency;
    r.owner_staff_id = (char *)owner;
    Casewire__V1__Clock c = CASEWIRE__V1__CLOCK__INIT, *cp = &c;
    c.kind = CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF;
    c.duration_ms = handoff_ms;
    c.due_ms = cw_now_ms() + handoff_ms;
    c.policy_id = "default";
    r.clocks = &cp;
    r.n_clocks = 1;
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_ROUTED;
    env.case_routed = &r;
    return produce(&env);
}

static int action(const char *case_id, const char *site, const char *name)
{
    static const struct {
        const char *name;
        int action;
    } names[] = {{"acknowledge", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE},
                 {"resolve", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_RESOLVE},
                 {"reopen", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REOPEN},
                 {"reassign", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REASSIGN},
                 {"close", CASEWIRE__V1__CASE_ACTION__CASE_ACTION_CLOSE}};
    Casewire__V1__CaseEvent e = CASEWIRE__V1__CASE_EVENT__INIT;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (!strcmp(names[i].name, name)) e.action = names[i].action;
    if (!e.action) {
        fprintf(stderr, "unknown action %s\n", name);
        return 2;
    }
    char event_id[CW_ULID_LEN + 1];
    cw_ulid_new(event_id);
    cw_event_meta meta;
    cw_event_meta_init_as(&meta, event_id, "gateway", case_id, site, NULL, NULL);
    e.actor_id = "SH01-S001";
    e.actor_kind = CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_STAFF;
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT;
    env.case_event = &e;
    return produce(&env);
}

/* ---- arm: straight into the store ---- */

static int64_t redis_now = -1;
static void on_time(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    pending--;
    if (!err && r->type == REDIS_REPLY_ARRAY && r->elements == 2)
        redis_now = strtoll(r->element[0]->str, NULL, 10) * 1000 +
                    strtoll(r->element[1]->str, NULL, 10) / 1000;
}

static void on_applied(void *arg, const redisReply *r, const char *err)
{
    (void)arg;
    pending--;
    if (err || dl_apply_reply(r) != 1) {
        failures++;
        fprintf(stderr, "apply: %s\n", err ? err : r->type == REDIS_REPLY_ERROR ? r->str : "dup");
    }
}

static int arm(int n, long long first_ms, long long spread_ms)
{
    char err[256];
    struct cw_redis_options o;
    cw_redis_options_init(&o);
    if (cw_redis_parse_url(getenv("REDIS_URL") ? getenv("REDIS_URL") : "", &o, err, sizeof err)) {
        fprintf(stderr, "REDIS_URL: %s\n", err);
        return 2;
    }
    cw_redis *r = cw_redis_new(base, &o, err, sizeof err);
    dl_timers *t = r ? dl_timers_new(r) : NULL;
    if (!t) {
        fprintf(stderr, "redis: %s\n", err);
        return 1;
    }
    int64_t end = cw_mono_ms() + 10000;
    while (!cw_redis_is_ready(r) && cw_mono_ms() < end) event_base_loop(base, EVLOOP_ONCE);
    pending = 1;
    if (cw_redis_commandf(r, on_time, NULL, "TIME") != CW_REDIS_OK || !run_until_done(10) ||
        redis_now < 0) {
        fprintf(stderr, "redis: no TIME\n");
        return 1;
    }
    int64_t first = redis_now + first_ms, last = first;
    for (int i = 0; i < n; i++) {
        char case_id[CW_ULID_LEN + 1], event_id[CW_ULID_LEN + 1], payload[DL_PAYLOAD_MAX];
        cw_ulid_new(case_id);
        cw_ulid_new(event_id);
        int64_t due = first + (n > 1 ? spread_ms * i / (n - 1) : 0);
        last = due;
        struct dl_payload pl = {.site = "SH01",
                                .case_no = "TEST-000001",
                                .urgency = 1,
                                .kind = CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF,
                                .start_ms = due - 60000,
                                .clock_due_ms = due + 60000,
                                .at_ms = due,
                                .span = {CW_TIME_WALL, 120000, 0},
                                .level = -1,
                                .warn_pct = 50};
        dl_payload_encode(&pl, payload, sizeof payload);
        struct dl_arm a = {"handoff", "w50", due, payload};
        struct dl_fact owner = {"owner", "SH01-S001"};
        struct dl_change c = {.event_id = event_id,
                              .case_id = case_id,
                              .arms = &a,
                              .narms = 1,
                              .facts = &owner,
                              .nfacts = 1};
        while (pending >= 1000) event_base_loop(base, EVLOOP_ONCE);
        if (dl_timers_apply(t, &c, on_applied, NULL) != CW_REDIS_OK) {
            fprintf(stderr, "apply refused\n");
            return 1;
        }
        pending++;
    }
    bool done = run_until_done(60);
    dl_timers_free(t);
    cw_redis_free(r);
    if (!done || failures) return 1;
    printf("armed %d first=%lld last=%lld\n", n, (long long)first, (long long)last);
    return 0;
}

int main(int argc, char **argv)
{
    base = event_base_new();
    if (!base) return 1;
    int rc = 2;
    if (argc == 7 && !strcmp(argv[1], "routed"))
        rc = routed(argv[2], argv[3], atoi(argv[4]), argv[5], atoll(argv[6]));
    else if (argc == 5 && !strcmp(argv[1], "action"))
        rc = action(argv[2], argv[3], argv[4]);
    else if (argc == 5 && !strcmp(argv[1], "arm"))
        rc = arm(atoi(argv[2]), atoll(argv[3]), atoll(argv[4]));
    else
        fprintf(stderr, "usage: deadline_feed routed CASE SITE URGENCY OWNER HANDOFF_MS | action "
                        "CASE SITE ACTION | arm N FIRST_MS SPREAD_MS\n");
    event_base_free(base);
    return rc;
}
