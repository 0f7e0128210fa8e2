/* The deadline worker's pure parts: which clocks each case event moves (the table of
 * docs/deadline.md), the timers of a running clock, and what firing one publishes and arms
 * next, on the example chain (SH01's ladder: floor_supervisor, operations_manager,
 * store_manager, group_head; fallback duty_manager). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clocks.h"
#include "escalate.h"
#include "testing.h"

#define EXAMPLE "deploy/chain.example.yaml"
#define CASE "01JDCASEAAAAAAAAAAAAAAAAAA"
/* Friday 2026-11-27 11:00 in Shanghai (03:00Z): SH01 is open, its day shift on duty. */
#define FRI_11 1795748400000LL
#define MIN 60000LL

static cw_chain *chain;
static cw_calendar *cal;
static struct dl_ctx ctx;

static void load(void)
{
    chain = cw_chain_load(EXAMPLE, NULL, NULL);
    ck_assert_ptr_nonnull(chain);
    char err[200];
    cal = cw_calendar_new(chain, err, sizeof err);
    ck_assert_msg(cal != NULL, "%s", err);
    ctx = (struct dl_ctx){chain, cal};
}

static void unload(void)
{
    cw_calendar_free(cal);
    cw_chain_free(chain);
}

/* ---- building events ---- */

struct ev {
    cw_envelope env;
    cw_event_meta meta;
    Casewire__V1__CaseRouted routed;
    Casewire__V1__CaseEvent event;
    Casewire__V1__Clock clocks[6], *clockp[6];
};

static void ev_meta(struct ev *e, const char *event_id)
{
    casewire__v1__envelope__init(&e->env);
    cw_event_meta_init_as(&e->meta, event_id, "test", CASE, "SH01", NULL, NULL);
    e->meta.occurred_ms = FRI_11;
    e->env.meta = &e->meta;
}

/* CaseRouted for a general complaint under the default policy: hand-off 10 min, reply 24 h,
 * feedback 1 working day, follow-up 3 h planned (no due time). */
static void routed(struct ev *e, int urgency)
{
    memset(e, 0, sizeof *e);
    ev_meta(e, "01JDEVENTROUTEDAAAAAAAAAAA");
    casewire__v1__case_routed__init(&e->routed);
    e->env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_ROUTED;
    e->env.case_routed = &e->routed;
    e->routed.case_no = "SH01-261125-0001";
    e->routed.owner_staff_id = "SH01-S001";
    e->routed.urgency = urgency;
    struct {
        int kind;
        int64_t dur, due;
        bool working;
    } c[] = {{1, 10 * MIN, FRI_11 + 10 * MIN, false},
             {3, 1440 * MIN, FRI_11 + 1440 * MIN, false},
             {4, 1440 * MIN, FRI_11 + 1440 * MIN, true},
             {6, 180 * MIN, 0, false}};
    for (size_t i = 0; i < 4; i++) {
        casewire__v1__clock__init(&e->clocks[i]);
        e->clocks[i].kind = c[i].kind;
        e->clocks[i].duration_ms = c[i].dur;
        e->clocks[i].due_ms = c[i].due;
        e->clocks[i].working_time = c[i].working;
        e->clocks[i].policy_id = "default";
        e->clockp[i] = &e->clocks[i];
    }
    e->routed.clocks = e->clockp;
    e->routed.n_clocks = 4;
}

static void action(struct ev *e, int act, int outcome)
{
    memset(e, 0, sizeof *e);
    ev_meta(e, "01JDEVENTACTIONAAAAAAAAAAA");
    casewire__v1__case_event__init(&e->event);
    e->env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT;
    e->env.case_event = &e->event;
    e->event.action = act;
    e->event.outcome = outcome;
}

/* The facts CaseRouted leaves, as the worker reads them back. */
static void facts_of_routed(struct dl_facts *f)
{
    memset(f, 0, sizeof *f);
    strcpy(f->site, "SH01");
    strcpy(f->case_no, "SH01-261125-0001");
    strcpy(f->owner, "SH01-S001");
    strcpy(f->policy, "default");
    f->urgency = 1;
    f->known = true;
    f->clocks[1] = (struct cw_duration){CW_TIME_WALL, 10 * MIN, 0};
    f->clocks[3] = (struct cw_duration){CW_TIME_WALL, 1440 * MIN, 0};
    f->clocks[4] = (struct cw_duration){CW_TIME_WORKING_DAYS, 0, 1};
    f->clocks[5] = (struct cw_duration){CW_TIME_WORKING_HOURS, 480 * MIN, 0};
    f->clocks[6] = (struct cw_duration){CW_TIME_WALL, 180 * MIN, 0};
}

/* "handoff reply" etc.: the clocks stopped, and the clocks started (one entry per clock, in
 * clock order), as space-separated names. */
static void describe(const struct dl_plan *p, char *stops, char *starts, size_t len)
{
    stops[0] = starts[0] = '\0';
    for (size_t i = 0; i < p->change.nstops; i++)
        snprintf(stops + strlen(stops), len - strlen(stops), "%s%s", i ? " " : "",
                 p->change.stops[i]);
    const char *last = NULL;
    for (size_t i = 0; i < p->change.narms; i++) {
        if (last && !strcmp(last, p->change.arms[i].clock)) continue;
        last = p->change.arms[i].clock;
        snprintf(starts + strlen(starts), len - strlen(starts), "%s%s", *starts ? " " : "", last);
    }
}

START_TEST(test_event_table)
{
    load();
    static const struct {
        int action, outcome;
        const char *stops, *starts;
    } table[] = {
        {CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE, 0, "handoff", ""},
        {CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REPLY, 0, "reply feedback", ""},
        {CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REASSIGN, 0, "", "handoff"},
        {CASEWIRE__V1__CASE_ACTION__CASE_ACTION_RESOLVE, 0,
         "handoff tenant_trading reply feedback resolution", "followup"},
        {CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REOPEN, 0, "followup", "reply resolution"},
        {CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP, 1, "followup", ""},
        {CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP, 2, "followup", "reply resolution"},
        {CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP, 3, "", ""},
        {CASEWIRE__V1__CASE_ACTION__CASE_ACTION_CLOSE, 0,
         "handoff tenant_trading reply feedback resolution followup", ""},
        {CASEWIRE__V1__CASE_ACTION__CASE_ACTION_NOTE, 0, "", ""},
    };
    struct dl_facts facts;
    facts_of_routed(&facts);
    struct dl_plan *p = malloc(sizeof *p);
    ck_assert_ptr_nonnull(p);
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        struct ev e;
        action(&e, table[i].action, table[i].outcome);
        int rc = dl_plan_event(&ctx, &e.env, &facts, p);
        char stops[200], starts[200];
        describe(p, stops, starts, sizeof stops);
        bool moves = *table[i].stops || *table[i].starts;
        ck_assert_msg(rc == (moves ? 1 : 0), "row %zu: planned %d", i, rc);
        ck_assert_msg(!strcmp(stops, table[i].stops), "row %zu stops \"%s\", want \"%s\"", i, stops,
                      table[i].stops);
        ck_assert_msg(!strcmp(starts, table[i].starts), "row %zu starts \"%s\", want \"%s\"", i,
                      starts, table[i].starts);
        bool starts_clock = *table[i].starts != '\0';
        ck_assert_msg(dl_needs_facts(&e.env) == starts_clock, "row %zu: facts needed", i);
        if (moves) ck_assert_str_eq(p->change.event_id, "01JDEVENTACTIONAAAAAAAAAAA");
    }
    /* Without what CaseRouted said (not seen yet), a start cannot be planned; a stop still is. */
    struct ev e;
    action(&e, CASEWIRE__V1__CASE_ACTION__CASE_ACTION_RESOLVE, 0);
    struct dl_facts unknown = {0};
    ck_assert_int_eq(dl_plan_event(&ctx, &e.env, &unknown, p), 1);
    ck_assert_int_eq(p->change.narms, 0);
    ck_assert_int_eq(p->change.nstops, 5);
    free(p);
    unload();
}
END_TEST

static const struct dl_arm *arm_of(const struct dl_plan *p, const char *clock, const char *stage)
{
    for (size_t i = 0; i < p->change.narms; i++)
        if (!strcmp(p->change.arms[i].clock, clock) && !strcmp(p->change.arms[i].stage, stage))
            return &p->change.arms[i];
    return NULL;
}

static const char *fact_of(const struct dl_plan *p, const char *name)
{
    for (size_t i = 0; i < p->change.nfacts; i++)
        if (!strcmp(p->change.facts[i].name, name)) return p->change.facts[i].value;
    return NULL;
}

START_TEST(test_routed_arms_and_facts)
{
    load();
    struct dl_plan *p = malloc(sizeof *p);
    struct ev e;
    routed(&e, 1);
    ck_assert_int_eq(dl_plan_event(&ctx, &e.env, NULL, p), 1);
    ck_assert_int_eq(p->change.nstops, 0);
    /* hand-off: warnings at 50 % and 80 % of its 10 minutes, the breach at its due time */
    const struct dl_arm *w50 = arm_of(p, "handoff", "w50"), *w80 = arm_of(p, "handoff", "w80"),
                        *b0 = arm_of(p, "handoff", "b0");
    ck_assert_ptr_nonnull(w50);
    ck_assert_ptr_nonnull(w80);
    ck_assert_ptr_nonnull(b0);
    ck_assert_int_eq(w50->due_ms, FRI_11 + 5 * MIN);
    ck_assert_int_eq(w80->due_ms, FRI_11 + 8 * MIN);
    ck_assert_int_eq(b0->due_ms, FRI_11 + 10 * MIN);
    struct dl_payload pl;
    ck_assert_int_eq(dl_payload_decode(b0->payload, strlen(b0->payload), &pl), 0);
    ck_assert_int_eq(pl.level, 0);
    ck_assert_int_eq(pl.warn_pct, 0);
    ck_assert_int_eq(pl.at_ms, FRI_11 + 10 * MIN);
    ck_assert_str_eq(pl.case_no, "SH01-261125-0001");
    ck_assert_int_eq(pl.span.basis, CW_TIME_WALL);
    ck_assert_int_eq(pl.span.ms, 10 * MIN);
    /* reply and feedback run; the follow-up is only planned (no due time): no timers */
    ck_assert_ptr_nonnull(arm_of(p, "reply", "b0"));
    ck_assert_ptr_nonnull(arm_of(p, "feedback", "b0"));
    ck_assert_ptr_null(arm_of(p, "followup", "b0"));
    ck_assert_int_eq(p->change.narms, 9);
    /* what later events need: owner, policy, and each clock's duration (a working-day clock
     * keeps its policy's basis) */
    ck_assert_str_eq(fact_of(p, "owner"), "SH01-S001");
    ck_assert_str_eq(fact_of(p, "policy"), "default");
    ck_assert_str_eq(fact_of(p, "d_handoff"), "w:600000");
    ck_assert_str_eq(fact_of(p, "d_feedback"), "d:1");
    ck_assert_str_eq(fact_of(p, "d_followup"), "w:10800000");
    /* an unknown site cannot be planned: the event is skipped with a reason */
    e.meta.site_id = "XX99";
    ck_assert_int_eq(dl_plan_event(&ctx, &e.env, NULL, p), -1);
    ck_assert_ptr_nonnull(strstr(p->why, "XX99"));

    /* reassign: a new owner, and the hand-off clock again from the moment of the reassign */
    struct dl_facts facts;
    facts_of_routed(&facts);
    action(&e, CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REASSIGN, 0);
    e.event.reassign_to_staff_id = "SH01-S002";
    e.meta.occurred_ms = FRI_11 + 30 * MIN;
    ck_assert_int_eq(dl_plan_event(&ctx, &e.env, &facts, p), 1);
    ck_assert_str_eq(fact_of(p, "owner"), "SH01-S002");
    ck_assert_int_eq(arm_of(p, "handoff", "b0")->due_ms, FRI_11 + 40 * MIN);
    /* resolve: the follow-up's 3 h from the resolution */
    action(&e, CASEWIRE__V1__CASE_ACTION__CASE_ACTION_RESOLVE, 0);
    ck_assert_int_eq(dl_plan_event(&ctx, &e.env, &facts, p), 1);
    ck_assert_int_eq(arm_of(p, "followup", "b0")->due_ms, FRI_11 + 180 * MIN);
    ck_assert_int_eq(arm_of(p, "followup", "w50")->due_ms, FRI_11 + 90 * MIN);
    free(p);
    unload();
}
END_TEST

START_TEST(test_payload_round_trip)
{
    struct dl_payload in = {.site = "SH01",
                            .case_no = "SH01-261125-0001",
                            .urgency = 3,
                            .kind = 5,
                            .start_ms = FRI_11,
                            .clock_due_ms = FRI_11 + 8 * MIN,
                            .at_ms = FRI_11 + 4 * MIN,
                            .span = {CW_TIME_WORKING_HOURS, 8 * MIN, 0},
                            .level = -1,
                            .warn_pct = 50};
    char buf[DL_PAYLOAD_MAX];
    ck_assert_int_eq(dl_payload_encode(&in, buf, sizeof buf), 0);
    struct dl_payload out;
    ck_assert_int_eq(dl_payload_decode(buf, strlen(buf), &out), 0);
    ck_assert_int_eq(memcmp(&in, &out, sizeof in), 0);
    const char *bad[] = {"",
                         "{}",
                         "not json",
                         "{\"site\":\"SH01\"}",
                         "{\"site\":\"SH01\",\"no\":\"x\",\"urg\":1,\"kind\":99,\"start\":1,"
                         "\"due\":2,\"at\":2,\"span\":\"w:1\",\"level\":0,\"warn\":0}",
                         "{\"site\":\"SH01\",\"no\":\"x\",\"urg\":1,\"kind\":1,\"start\":1,"
                         "\"due\":2,\"at\":2,\"span\":\"q:1\",\"level\":0,\"warn\":0}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        ck_assert_msg(dl_payload_decode(bad[i], strlen(bad[i]), &out) == -1, "bad %zu accepted", i);
}
END_TEST

static struct dl_payload breach(int level, int urgency)
{
    struct dl_payload p = {.site = "SH01",
                           .case_no = "SH01-261125-0001",
                           .urgency = urgency,
                           .kind = 1,
                           .start_ms = FRI_11 - 10 * MIN,
                           .clock_due_ms = FRI_11,
                           .at_ms = FRI_11,
                           .span = {CW_TIME_WALL, 10 * MIN, 0},
                           .level = level};
    return p;
}

static bool has_role(const char *staff, const char *role)
{
    return cw_staff_has_role(cw_chain_staff(chain, staff), role);
}

START_TEST(test_escalation_climbs_the_ladder)
{
    load();
    struct dl_firing *f = malloc(sizeof *f);
    ck_assert_ptr_nonnull(f);
    const char *roles[] = {"floor_supervisor", "operations_manager", "store_manager", "group_head"};
    char id[DL_TIMER_ID_MAX];
    for (int level = 0; level < 4; level++) {
        struct dl_payload pl = breach(level, 1);
        snprintf(id, sizeof id, "%s.handoff.1.b%d", CASE, level);
        ck_assert_int_eq(dl_firing_plan(&ctx, id, &pl, "SH01-S001", FRI_11, f), 0);
        ck_assert_int_eq(f->fired.ladder_level, level);
        ck_assert_int_eq(f->fired.warning, 0);
        ck_assert_uint_ge(f->fired.n_notified_staff_ids, 1);
        for (size_t i = 0; i < f->fired.n_notified_staff_ids; i++)
            ck_assert_msg(has_role(f->fired.notified_staff_ids[i], roles[level]) ||
                              has_role(f->fired.notified_staff_ids[i], "duty_manager"),
                          "level %d notified %s", level, f->fired.notified_staff_ids[i]);
        /* an SMS and a staff task for each person */
        ck_assert_uint_eq(f->ntasks, 2 * f->fired.n_notified_staff_ids);
        if (level < 3) { /* the next level, the clock's duration later */
            ck_assert(f->has_next);
            char want[8];
            snprintf(want, sizeof want, "b%d", level + 1);
            ck_assert_str_eq(f->next.stage, want);
            ck_assert_int_eq(f->next.due_ms, FRI_11 + 10 * MIN);
            struct dl_payload next;
            ck_assert_int_eq(dl_payload_decode(f->next.payload, strlen(f->next.payload), &next), 0);
            ck_assert_int_eq(next.level, level + 1);
        } else {
            ck_assert(!f->has_next); /* the top of the ladder */
        }
    }
    /* an emergency alerts three levels at once and continues from the fourth */
    struct dl_payload pl = breach(0, 3);
    snprintf(id, sizeof id, "%s.handoff.1.b0", CASE);
    ck_assert_int_eq(dl_firing_plan(&ctx, id, &pl, "SH01-S001", FRI_11, f), 0);
    ck_assert_int_eq(f->fired.ladder_level, 2);
    ck_assert_str_eq(f->next.stage, "b3");
    int seen[3] = {0};
    for (size_t i = 0; i < f->fired.n_notified_staff_ids; i++)
        for (int l = 0; l < 3; l++) seen[l] += has_role(f->fired.notified_staff_ids[i], roles[l]);
    ck_assert_msg(seen[0] && seen[1] && seen[2], "levels 0-2 notified: %d %d %d", seen[0], seen[1],
                  seen[2]);
    ck_assert(f->tasks[0].task.emergency);
    free(f);
    unload();
}
END_TEST

START_TEST(test_warning_and_ids)
{
    load();
    struct dl_firing *f = malloc(sizeof *f), *g = malloc(sizeof *g);
    struct dl_payload pl = breach(-1, 1);
    pl.warn_pct = 80;
    pl.at_ms = FRI_11 - 2 * MIN;
    const char *id = CASE ".handoff.1.w80";
    ck_assert_int_eq(dl_firing_plan(&ctx, id, &pl, "SH01-S001", FRI_11 - 2 * MIN + 3, f), 0);
    ck_assert(f->fired.warning);
    ck_assert_int_eq(f->fired.warning_percent, 80);
    ck_assert_int_eq(f->fired.n_notified_staff_ids, 1);
    ck_assert_str_eq(f->fired.notified_staff_ids[0], "SH01-S001");
    ck_assert_uint_eq(f->ntasks, 1);
    ck_assert_str_eq(f->tasks[0].task.template_id, "staff_deadline_warning");
    ck_assert(!f->has_next);
    /* Fired again (by another worker, later): the same event ids and task ids. */
    ck_assert_int_eq(dl_firing_plan(&ctx, id, &pl, "SH01-S001", FRI_11 + 5000, g), 0);
    ck_assert_str_eq(f->event_id, g->event_id);
    ck_assert_str_eq(f->tasks[0].event_id, g->tasks[0].event_id);
    ck_assert_str_eq(f->tasks[0].task_id, g->tasks[0].task_id);
    ck_assert(cw_ulid_valid(f->event_id));
    ck_assert_int_eq(cw_ulid_time_ms(f->event_id), pl.at_ms);
    ck_assert_str_ne(f->event_id, f->tasks[0].event_id);
    /* another timer: other ids */
    ck_assert_int_eq(dl_firing_plan(&ctx, CASE ".handoff.1.w50", &pl, "SH01-S001", FRI_11, g), 0);
    ck_assert_str_ne(f->event_id, g->event_id);
    /* no owner known: the warning is still recorded, nobody is messaged */
    ck_assert_int_eq(dl_firing_plan(&ctx, id, &pl, "", FRI_11, g), 0);
    ck_assert_uint_eq(g->ntasks, 0);
    /* a site that left the chain */
    strcpy(pl.site, "XX99");
    ck_assert_int_eq(dl_firing_plan(&ctx, id, &pl, "SH01-S001", FRI_11, g), -1);
    free(f);
    free(g);
    unload();
}
END_TEST

CW_TEST_MAIN("deadline", test_event_table, test_routed_arms_and_facts, test_payload_round_trip,
             test_escalation_climbs_the_ladder, test_warning_and_ids)
