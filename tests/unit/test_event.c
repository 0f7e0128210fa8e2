/* The event schema: every event kind round-trips through an Envelope, unknown fields are
 * tolerated, and malformed or oversized input is refused with a reason. */
#include "testing.h"
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "event.h"

static cw_envelope *roundtrip(cw_envelope *env)
{
    uint8_t *buf;
    size_t n = cw_event_pack(env, &buf);
    ck_assert_uint_gt(n, 0);
    char err[128];
    cw_envelope *back = cw_event_unpack(buf, n, err, sizeof err);
    ck_assert_msg(back != NULL, "unpack failed: %s", err);
    free(buf);
    return back;
}

static void meta_for(cw_envelope *env, cw_event_meta *meta, struct cw_event_ids *ids)
{
    casewire__v1__envelope__init(env);
    ck_assert_int_eq(cw_event_meta_init(meta, ids, "test", "01JD3K5Q8R0000000000000000", "SH01",
                                        "T-SH01-0312", NULL),
                     0);
    env->meta = meta;
}

static void check_meta(const cw_envelope *b, const cw_event_meta *m)
{
    ck_assert_str_eq(b->meta->event_id, m->event_id);
    ck_assert_str_eq(b->meta->case_id, m->case_id);
    ck_assert_str_eq(b->meta->site_id, "SH01");
    ck_assert_str_eq(b->meta->tenant_id, "T-SH01-0312");
    ck_assert_int_eq(b->meta->occurred_ms, m->occurred_ms);
    ck_assert_uint_eq(b->meta->schema_version, 1);
    ck_assert(cw_ulid_valid(b->meta->event_id));
}

START_TEST(case_submitted_roundtrips)
{
    cw_envelope env;
    cw_event_meta meta;
    struct cw_event_ids ids;
    meta_for(&env, &meta, &ids);
    Casewire__V1__CaseSubmitted cs = CASEWIRE__V1__CASE_SUBMITTED__INIT;
    Casewire__V1__Person who = CASEWIRE__V1__PERSON__INIT;
    Casewire__V1__Purchase buy = CASEWIRE__V1__PURCHASE__INIT;
    who.name = "王小明";
    who.phone = "13812345678";
    buy.amount_cents = 129900;
    buy.receipt_no = "R-88";
    cs.case_no = "SH01-261124-0042";
    cs.channel = CASEWIRE__V1__CHANNEL__CHANNEL_PHONE;
    cs.text = "空调不制冷，三楼很热";
    cs.customer = &who;
    cs.purchase = &buy;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_SUBMITTED;
    env.case_submitted = &cs;
    cw_envelope *b = roundtrip(&env);
    check_meta(b, &meta);
    ck_assert_int_eq(b->body_case, CASEWIRE__V1__ENVELOPE__BODY_CASE_SUBMITTED);
    ck_assert_str_eq(b->case_submitted->case_no, "SH01-261124-0042");
    ck_assert_str_eq(b->case_submitted->text, "空调不制冷，三楼很热");
    ck_assert_str_eq(b->case_submitted->customer->phone, "13812345678");
    ck_assert_int_eq(b->case_submitted->purchase->amount_cents, 129900);
    ck_assert_int_eq(b->case_submitted->channel, CASEWIRE__V1__CHANNEL__CHANNEL_PHONE);
    cw_event_free(b);
}
END_TEST

START_TEST(case_routed_roundtrips)
{
    cw_envelope env;
    cw_event_meta meta;
    struct cw_event_ids ids;
    meta_for(&env, &meta, &ids);
    Casewire__V1__CaseRouted r = CASEWIRE__V1__CASE_ROUTED__INIT;
    Casewire__V1__Clock c1 = CASEWIRE__V1__CLOCK__INIT, c2 = CASEWIRE__V1__CLOCK__INIT;
    Casewire__V1__Clock *clocks[] = {&c1, &c2};
    Casewire__V1__RuleMatch m1 = CASEWIRE__V1__RULE_MATCH__INIT;
    Casewire__V1__RuleMatch *rules[] = {&m1};
    c1.kind = CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF;
    c1.due_ms = 1795505521991;
    c2.kind = CASEWIRE__V1__CLOCK_KIND__CLOCK_RESOLUTION;
    c2.working_time = 1;
    m1.rule_id = "safety-fire";
    m1.field = "urgency";
    r.category = CASEWIRE__V1__CATEGORY__CATEGORY_SAFETY;
    r.urgency = CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY;
    r.owner_staff_id = "SH01-S003";
    r.n_clocks = 2;
    r.clocks = clocks;
    r.n_matched_rules = 1;
    r.matched_rules = rules;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_ROUTED;
    env.case_routed = &r;
    cw_envelope *b = roundtrip(&env);
    check_meta(b, &meta);
    ck_assert_uint_eq(b->case_routed->n_clocks, 2);
    ck_assert_int_eq(b->case_routed->clocks[0]->due_ms, 1795505521991);
    ck_assert(b->case_routed->clocks[1]->working_time);
    ck_assert_str_eq(b->case_routed->matched_rules[0]->rule_id, "safety-fire");
    ck_assert_int_eq(b->case_routed->urgency, CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY);
    cw_event_free(b);
}
END_TEST

START_TEST(case_event_deadline_task_result_roundtrip)
{
    cw_envelope env;
    cw_event_meta meta;
    struct cw_event_ids ids;
    meta_for(&env, &meta, &ids);

    Casewire__V1__CaseEvent ce = CASEWIRE__V1__CASE_EVENT__INIT;
    ce.action = CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP;
    ce.outcome = CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_NOT_SATISFIED;
    ce.actor_id = "SH01-C002";
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT;
    env.case_event = &ce;
    cw_envelope *b = roundtrip(&env);
    check_meta(b, &meta);
    ck_assert_int_eq(b->case_event->outcome,
                     CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_NOT_SATISFIED);
    cw_event_free(b);

    Casewire__V1__DeadlineFired df = CASEWIRE__V1__DEADLINE_FIRED__INIT;
    char *notified[] = {"SH01-S001", "SH01-M001"};
    df.clock = CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF;
    df.ladder_level = 2;
    df.n_notified_staff_ids = 2;
    df.notified_staff_ids = notified;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_DEADLINE_FIRED;
    env.deadline_fired = &df;
    b = roundtrip(&env);
    ck_assert_uint_eq(b->deadline_fired->ladder_level, 2);
    ck_assert_str_eq(b->deadline_fired->notified_staff_ids[1], "SH01-M001");
    cw_event_free(b);

    Casewire__V1__NotificationTask t = CASEWIRE__V1__NOTIFICATION_TASK__INIT;
    Casewire__V1__NotificationTask__ParamsEntry p1 =
        CASEWIRE__V1__NOTIFICATION_TASK__PARAMS_ENTRY__INIT;
    Casewire__V1__NotificationTask__ParamsEntry *params[] = {&p1};
    p1.key = "case_no";
    p1.value = "SH01-261124-0042";
    t.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS;
    t.task_id = "task-1";
    t.n_params = 1;
    t.params = params;
    t.webhook_body.data = (uint8_t *)"{}";
    t.webhook_body.len = 2;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_TASK;
    env.notification_task = &t;
    b = roundtrip(&env);
    ck_assert_str_eq(b->notification_task->params[0]->value, "SH01-261124-0042");
    ck_assert_uint_eq(b->notification_task->webhook_body.len, 2);
    cw_event_free(b);

    Casewire__V1__NotificationResult nr = CASEWIRE__V1__NOTIFICATION_RESULT__INIT;
    nr.task_id = "task-1";
    nr.status = CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_DEFERRED;
    nr.attempt = 3;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_RESULT;
    env.notification_result = &nr;
    b = roundtrip(&env);
    ck_assert_int_eq(b->notification_result->status,
                     CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_DEFERRED);
    ck_assert_uint_eq(b->notification_result->attempt, 3);
    cw_event_free(b);
}
END_TEST

/* A newer producer adds field 99 (a string) to the meta and field 200 to the envelope: an
 * old reader must decode the rest unchanged. */
START_TEST(unknown_fields_are_tolerated)
{
    cw_envelope env;
    cw_event_meta meta;
    struct cw_event_ids ids;
    meta_for(&env, &meta, &ids);
    Casewire__V1__CaseEvent ce = CASEWIRE__V1__CASE_EVENT__INIT;
    ce.action = CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT;
    env.case_event = &ce;
    uint8_t *buf;
    size_t n = cw_event_pack(&env, &buf);
    /* envelope field 200, wire type 2 (length-delimited): tag = 200<<3|2 = 1602 = 0xC2 0x0C */
    static const uint8_t extra[] = {0xC2, 0x0C, 0x03, 'n', 'e', 'w'};
    uint8_t *grown = malloc(n + sizeof extra);
    memcpy(grown, buf, n);
    memcpy(grown + n, extra, sizeof extra);
    char err[128];
    cw_envelope *b = cw_event_unpack(grown, n + sizeof extra, err, sizeof err);
    ck_assert_msg(b != NULL, "%s", err);
    ck_assert_int_eq(b->case_event->action, CASEWIRE__V1__CASE_ACTION__CASE_ACTION_ACKNOWLEDGE);
    ck_assert_uint_eq(b->base.n_unknown_fields, 1);
    check_meta(b, &meta);
    cw_event_free(b);
    free(grown);
    free(buf);
}
END_TEST

START_TEST(unknown_enum_value_is_kept_not_fatal)
{
    cw_envelope env;
    cw_event_meta meta;
    struct cw_event_ids ids;
    meta_for(&env, &meta, &ids);
    Casewire__V1__CaseEvent ce = CASEWIRE__V1__CASE_EVENT__INIT;
    ce.action = 42; /* a value a newer schema might add */
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT;
    env.case_event = &ce;
    cw_envelope *b = roundtrip(&env);
    ck_assert_int_eq(b->case_event->action, 42);
    cw_event_free(b);
}
END_TEST

START_TEST(bad_input_is_refused_with_a_reason)
{
    char err[128];
    static const uint8_t junk[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x0F};
    ck_assert_ptr_null(cw_event_unpack(junk, sizeof junk, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "malformed"));
    ck_assert_ptr_null(cw_event_unpack(junk, CW_EVENT_MAX_BYTES + 1, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "limit"));
    /* valid protobuf, but no meta */
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    uint8_t *buf;
    size_t n = cw_event_pack(&env, &buf);
    ck_assert_ptr_null(cw_event_unpack(buf, n, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "meta"));
    free(buf);
    /* meta but no body */
    cw_event_meta meta;
    struct cw_event_ids ids;
    meta_for(&env, &meta, &ids);
    n = cw_event_pack(&env, &buf);
    ck_assert_ptr_null(cw_event_unpack(buf, n, err, sizeof err));
    ck_assert_ptr_nonnull(strstr(err, "no body"));
    free(buf);
}
END_TEST

START_TEST(ulids_are_unique_sorted_and_timed)
{
    char a[CW_ULID_LEN + 1], b[CW_ULID_LEN + 1];
    int64_t before = cw_now_ms();
    ck_assert_int_eq(cw_ulid_new(a), 0);
    ck_assert(cw_ulid_valid(a));
    ck_assert_int_ge(cw_ulid_time_ms(a), before);
    ck_assert_int_le(cw_ulid_time_ms(a), cw_now_ms());
    for (int i = 0; i < 1000; i++) {
        ck_assert_int_eq(cw_ulid_new(b), 0);
        ck_assert_str_ne(a, b);
        ck_assert_int_ge(cw_ulid_time_ms(b), cw_ulid_time_ms(a));
    }
    ck_assert(!cw_ulid_valid("01JD3K5Q8R000000000000000"));  /* 25 chars */
    ck_assert(!cw_ulid_valid("01JD3K5Q8R00000000000000IL")); /* I, L not in the alphabet */
    ck_assert(!cw_ulid_valid("81JD3K5Q8R0000000000000000")); /* time overflows 48 bits */
}
END_TEST

/* The random part comes from a pool refilled a kilobyte at a time: ids across many refills
 * are all distinct, and a forked child does not hand out the ids its parent will. */
static int cmp_ids(const void *a, const void *b) { return strcmp(a, b); }

START_TEST(ulid_randomness_is_not_repeated_across_refills_or_fork)
{
    enum { N = 2000 }; /* 2000 ids x 10 bytes: about 20 refills */
    static char ids[N + 1][CW_ULID_LEN + 1];
    for (int i = 0; i < N; i++) ck_assert_int_eq(cw_ulid_new(ids[i]), 0);
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        char child[CW_ULID_LEN + 1];
        int ok = cw_ulid_new(child) == 0 && write(pipefd[1], child, CW_ULID_LEN) == CW_ULID_LEN;
        _exit(ok ? 0 : 1);
    }
    char parent[CW_ULID_LEN + 1];
    ck_assert_int_eq(cw_ulid_new(parent), 0);
    ck_assert_int_eq(read(pipefd[0], ids[N], CW_ULID_LEN), CW_ULID_LEN);
    ids[N][CW_ULID_LEN] = '\0';
    int status = 0;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(pipefd[0]);
    close(pipefd[1]);
    /* Only the random part: ids made in the same millisecond share the time part. */
    ck_assert_str_ne(ids[N] + 10, parent + 10);
    for (int i = 0; i <= N; i++) memmove(ids[i], ids[i] + 10, CW_ULID_LEN - 10 + 1);
    qsort(ids, N + 1, sizeof ids[0], cmp_ids);
    for (int i = 1; i <= N; i++) ck_assert_str_ne(ids[i - 1], ids[i]);
}
END_TEST

CW_TEST_MAIN("event", case_submitted_roundtrips, case_routed_roundtrips,
             case_event_deadline_task_result_roundtrip, unknown_fields_are_tolerated,
             unknown_enum_value_is_kept_not_fatal, bad_input_is_refused_with_a_reason,
             ulids_are_unique_sorted_and_timed,
             ulid_randomness_is_not_repeated_across_refills_or_fork)
