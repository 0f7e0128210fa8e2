/*
 * Test producer for tests/integration/tail.sh: writes records with known content so the
 * script can check that casewire-tail decodes every field exactly.
 *   tail_produce fixtures
 *       ten records: one envelope of every body kind (every topic), plus three that do not
 *       decode (garbage bytes, an envelope whose body is of an unknown newer kind, a record
 *       without a value). The values are repeated in tail.sh; change both together.
 *   tail_produce note CASE_ID TEXT
 *       one CaseEvent (action note) on casewire.cases.v1, keyed by CASE_ID.
 *   tail_produce bad-intake
 *       six records on casewire.intake.v1 the router must refuse (for router.sh).
 * Brokers come from KAFKA_BROKERS. Exit 0 only when every record was acknowledged (acks=all).
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

#define CASE_A "01JDCASEAAAAAAAAAAAAAAAAAA"
#define CASE_B "01JDCASEBBBBBBBBBBBBBBBBBB"
#define CASE_C "01JDCASECCCCCCCCCCCCCCCCCC"

static int delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (m->err) {
        failed++;
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

static int send_raw(rd_kafka_t *rk, const char *topic, const char *key, const void *value,
                    size_t len)
{
    rd_kafka_resp_err_t err =
        rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_KEY(key, strlen(key)),
                          RD_KAFKA_V_VALUE((void *)value, len),
                          RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    if (err) fprintf(stderr, "produce to %s: %s\n", topic, rd_kafka_err2str(err));
    return err ? -1 : 0;
}

/* Packs env (extra bytes appended, e.g. an unknown field) and sends it keyed by its case. */
static int send_env(rd_kafka_t *rk, const char *topic, const cw_envelope *env, const void *extra,
                    size_t extra_len)
{
    uint8_t *buf;
    size_t n = cw_event_pack(env, &buf);
    if (n == 0) return -1;
    uint8_t *all = realloc(buf, n + extra_len);
    if (!all) {
        free(buf);
        return -1;
    }
    if (extra_len) memcpy(all + n, extra, extra_len);
    int rc = send_raw(rk, topic, env->meta->case_id, all, n + extra_len);
    free(all);
    return rc;
}

static void meta_fill(cw_event_meta *m, const char *event_id, const char *case_id,
                      const char *producer)
{
    casewire__v1__event_meta__init(m);
    m->event_id = (char *)event_id;
    m->case_id = (char *)case_id;
    m->site_id = "SH01";
    m->occurred_ms = 1795513667001;
    m->schema_version = CASEWIRE__V1__SCHEMA_VERSION__SCHEMA_VERSION_CURRENT;
    m->producer = (char *)producer;
}

static int send_case_submitted(rd_kafka_t *rk)
{
    cw_event_meta meta;
    meta_fill(&meta, "01JDEVENT00000000000000001", CASE_A, "gateway");
    meta.request_id = "req-1";
    Casewire__V1__Person customer = CASEWIRE__V1__PERSON__INIT;
    customer.name = "张三丰";
    customer.phone = "13800138000";
    Casewire__V1__Location loc = CASEWIRE__V1__LOCATION__INIT;
    loc.floor = "3F";
    loc.unit = "3F-12";
    loc.tenant_id = "T-ANTA";
    loc.brand = "安踏";
    loc.detail = "近东侧电梯";
    Casewire__V1__Purchase pur = CASEWIRE__V1__PURCHASE__INIT;
    pur.date = "2026-11-20";
    pur.amount_cents = 129900;
    pur.currency = "CNY";
    pur.receipt_no = "R-20261120-0007";
    pur.under_warranty = 1;
    Casewire__V1__CaseSubmitted b = CASEWIRE__V1__CASE_SUBMITTED__INIT;
    b.case_no = "SH01-261124-0042";
    b.channel = CASEWIRE__V1__CHANNEL__CHANNEL_WEB;
    b.text = "鞋底开胶，店铺拒绝退货，请回电 13912345678";
    b.customer = &customer;
    b.location = &loc;
    b.purchase = &pur;
    b.customer_request = "退货退款";
    b.type_hint = CASEWIRE__V1__CASE_TYPE__CASE_TYPE_COMPLAINT;
    b.category_hint = CASEWIRE__V1__CATEGORY__CATEGORY_PRODUCT_QUALITY;
    b.idempotency_key = "idem-42";
    b.language = "zh";
    b.reply_by_ms = 1795600000123;
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_SUBMITTED;
    env.case_submitted = &b;
    return send_env(rk, CW_TOPIC_INTAKE, &env, NULL, 0);
}

static int send_case_routed(rd_kafka_t *rk)
{
    cw_event_meta meta;
    meta_fill(&meta, "01JDEVENT00000000000000002", CASE_A, "router");
    meta.causation_id = "01JDEVENT00000000000000001";
    Casewire__V1__Clock c1 = CASEWIRE__V1__CLOCK__INIT, c2 = CASEWIRE__V1__CLOCK__INIT;
    c1.kind = CASEWIRE__V1__CLOCK_KIND__CLOCK_HANDOFF;
    c1.due_ms = 1795514267001;
    c1.duration_ms = 600000;
    c1.policy_id = "P-STD";
    c2.kind = CASEWIRE__V1__CLOCK_KIND__CLOCK_RESOLUTION;
    c2.due_ms = 1795686467001;
    c2.duration_ms = 172800000;
    c2.working_time = 1;
    c2.policy_id = "P-STD";
    Casewire__V1__Clock *clocks[] = {&c1, &c2};
    Casewire__V1__RuleMatch r = CASEWIRE__V1__RULE_MATCH__INIT;
    r.rule_id = "R-7";
    r.field = "urgency";
    r.value = "emergency";
    r.matched = "受伤";
    Casewire__V1__RuleMatch *rules[] = {&r};
    Casewire__V1__CaseRouted b = CASEWIRE__V1__CASE_ROUTED__INIT;
    b.case_no = "SH01-261124-0042";
    b.type = CASEWIRE__V1__CASE_TYPE__CASE_TYPE_COMPLAINT;
    b.category = CASEWIRE__V1__CATEGORY__CATEGORY_RETURNS;
    b.urgency = CASEWIRE__V1__URGENCY__URGENCY_EMERGENCY;
    b.validity = CASEWIRE__V1__VALIDITY__VALIDITY_VALID;
    b.department_id = "D-CS";
    b.owner_staff_id = "S-0042";
    b.first_ask_staff_id = "S-0001";
    b.n_clocks = 2;
    b.clocks = clocks;
    b.n_matched_rules = 1;
    b.matched_rules = rules;
    b.ladder_level = 2;
    b.channel = CASEWIRE__V1__CHANNEL__CHANNEL_WEB;
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_ROUTED;
    env.case_routed = &b;
    return send_env(rk, CW_TOPIC_CASES, &env, NULL, 0);
}

static int send_case_event(rd_kafka_t *rk, const char *case_id, int note_only, const char *text)
{
    cw_event_meta meta;
    meta_fill(&meta, note_only ? "01JDEVENT00000000000000099" : "01JDEVENT00000000000000003",
              case_id, "gateway");
    meta.tenant_id = "T-ANTA";
    Casewire__V1__CaseEvent b = CASEWIRE__V1__CASE_EVENT__INIT;
    b.actor_id = "S-0042";
    b.actor_kind = CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_STAFF;
    b.note = (char *)text;
    if (note_only) {
        b.action = CASEWIRE__V1__CASE_ACTION__CASE_ACTION_NOTE;
    } else {
        b.action = CASEWIRE__V1__CASE_ACTION__CASE_ACTION_FOLLOWUP;
        b.outcome = CASEWIRE__V1__FOLLOW_UP_OUTCOME__FOLLOWUP_OUTCOME_NOT_SATISFIED;
        b.reply = "已致歉 👍";
    }
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT;
    env.case_event = &b;
    return send_env(rk, CW_TOPIC_CASES, &env, NULL, 0);
}

static int send_deadline_fired(rd_kafka_t *rk)
{
    cw_event_meta meta;
    meta_fill(&meta, "01JDEVENT00000000000000004", CASE_B, "deadline");
    char *staff[] = {"S-0042", "S-0100"};
    Casewire__V1__DeadlineFired b = CASEWIRE__V1__DEADLINE_FIRED__INIT;
    b.clock = CASEWIRE__V1__CLOCK_KIND__CLOCK_RESOLUTION;
    b.due_ms = 1795600000000;
    b.fired_ms = 1795600000500;
    b.warning = 1;
    b.warning_percent = 80;
    b.ladder_level = 1;
    b.n_notified_staff_ids = 2;
    b.notified_staff_ids = staff;
    b.timer_id = "tm-9";
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_DEADLINE_FIRED;
    env.deadline_fired = &b;
    return send_env(rk, CW_TOPIC_CASES, &env, NULL, 0);
}

static int send_notification_task(rd_kafka_t *rk)
{
    cw_event_meta meta;
    meta_fill(&meta, "01JDEVENT00000000000000005", CASE_A, "router");
    Casewire__V1__Person who = CASEWIRE__V1__PERSON__INIT;
    who.name = "李四";
    who.phone = "+86 139 1234 5678";
    Casewire__V1__NotificationTask__ParamsEntry p1 =
        CASEWIRE__V1__NOTIFICATION_TASK__PARAMS_ENTRY__INIT;
    Casewire__V1__NotificationTask__ParamsEntry p2 =
        CASEWIRE__V1__NOTIFICATION_TASK__PARAMS_ENTRY__INIT;
    p1.key = "case_no";
    p1.value = "SH01-261124-0042";
    p2.key = "reply_by";
    p2.value = "明天 18:00";
    Casewire__V1__NotificationTask__ParamsEntry *params[] = {&p1, &p2};
    static const uint8_t body[] = {0x00, 0xff, 0x7b, 0x7d, 0xe4};
    Casewire__V1__NotificationTask b = CASEWIRE__V1__NOTIFICATION_TASK__INIT;
    b.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS;
    b.task_id = "task-1";
    b.recipient = &who;
    b.template_id = "case_received";
    b.language = "zh";
    b.n_params = 2;
    b.params = params;
    b.due_ms = 1795513668000;
    b.priority = 7;
    b.emergency = 1;
    b.webhook_body.data = (uint8_t *)body;
    b.webhook_body.len = sizeof body;
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_TASK;
    env.notification_task = &b;
    return send_env(rk, CW_TOPIC_NOTIFY, &env, NULL, 0);
}

static int send_notification_result(rd_kafka_t *rk)
{
    cw_event_meta meta;
    meta_fill(&meta, "01JDEVENT00000000000000006", CASE_B, "notifier");
    Casewire__V1__NotificationResult b = CASEWIRE__V1__NOTIFICATION_RESULT__INIT;
    b.task_id = "task-9";
    b.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_WEBHOOK;
    b.status = CASEWIRE__V1__DELIVERY_STATUS__DELIVERY_STATUS_FAILED;
    b.attempt = 3;
    b.provider = "tenant-webhook";
    b.error = "HTTP 503 from tenant";
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_RESULT;
    env.notification_result = &b;
    return send_env(rk, CW_TOPIC_NOTIFY_RESULTS, &env, NULL, 0);
}

static int send_dead_letter(rd_kafka_t *rk)
{
    cw_event_meta meta;
    meta_fill(&meta, "01JDEVENT00000000000000007", CASE_B, "notifier");
    static const char body[] = "{\"case_no\":\"SH01-261124-0042\"}";
    Casewire__V1__NotificationTask b = CASEWIRE__V1__NOTIFICATION_TASK__INIT;
    b.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_WEBHOOK;
    b.task_id = "task-9";
    b.template_id = "tenant_case";
    b.priority = 1;
    b.webhook_body.data = (uint8_t *)body;
    b.webhook_body.len = sizeof body - 1;
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_TASK;
    env.notification_task = &b;
    return send_env(rk, CW_TOPIC_NOTIFY_DLQ, &env, NULL, 0);
}

static int send_undecodable(rd_kafka_t *rk)
{
    /* Field 1, length-delimited, with a length far past the end: malformed protobuf. */
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    if (send_raw(rk, CW_TOPIC_CASES, CASE_C, garbage, sizeof garbage) != 0) return -1;

    /* Meta, and a body of a kind this build does not know: field 99, "hello". */
    cw_event_meta meta;
    meta_fill(&meta, "01JDEVENT00000000000000008", CASE_C, "future");
    meta.site_id = "SH02";
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    /* tag (99 << 3 | 2) = 794 as a varint: 0x9a 0x06; length 5 */
    static const uint8_t newer_body[] = {0x9a, 0x06, 5, 'h', 'e', 'l', 'l', 'o'};
    if (send_env(rk, CW_TOPIC_CASES, &env, newer_body, sizeof newer_body) != 0) return -1;

    /* No value at all (a tombstone). */
    return send_raw(rk, CW_TOPIC_INTAKE, CASE_C, NULL, 0);
}

/* Records the router must send to casewire.intake-dlq.v1, each keyed by its own ULID
 * (01JDBAD000000000000000000N): garbage bytes, a CaseRouted where a CaseSubmitted belongs,
 * an unknown site, no case number, text that is not UTF-8, and a tombstone. */
static int send_bad_intake(rd_kafka_t *rk)
{
    static const uint8_t garbage[] = {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f};
    if (send_raw(rk, CW_TOPIC_INTAKE, "01JDBAD0000000000000000001", garbage, sizeof garbage))
        return -1;
    cw_event_meta meta;
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    Casewire__V1__CaseRouted routed = CASEWIRE__V1__CASE_ROUTED__INIT;
    meta_fill(&meta, "01JDBADEVENT00000000000002", "01JDBAD0000000000000000002", "gateway");
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_ROUTED;
    env.case_routed = &routed;
    if (send_env(rk, CW_TOPIC_INTAKE, &env, NULL, 0)) return -1;

    Casewire__V1__CaseSubmitted cs = CASEWIRE__V1__CASE_SUBMITTED__INIT;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_SUBMITTED;
    env.case_submitted = &cs;
    cs.channel = CASEWIRE__V1__CHANNEL__CHANNEL_WEB;
    cs.case_no = "ZZ99-261124-0001";
    cs.text = "unknown site";
    meta_fill(&meta, "01JDBADEVENT00000000000003", "01JDBAD0000000000000000003", "gateway");
    meta.site_id = "ZZ99";
    if (send_env(rk, CW_TOPIC_INTAKE, &env, NULL, 0)) return -1;

    cs.case_no = "";
    cs.text = "no case number";
    meta_fill(&meta, "01JDBADEVENT00000000000004", "01JDBAD0000000000000000004", "gateway");
    if (send_env(rk, CW_TOPIC_INTAKE, &env, NULL, 0)) return -1;

    cs.case_no = "SH01-261124-9995";
    cs.text = "caf\xc3 au lait \xff";
    meta_fill(&meta, "01JDBADEVENT00000000000005", "01JDBAD0000000000000000005", "gateway");
    if (send_env(rk, CW_TOPIC_INTAKE, &env, NULL, 0)) return -1;

    return send_raw(rk, CW_TOPIC_INTAKE, "01JDBAD0000000000000000006", NULL, 0);
}

int main(int argc, char **argv)
{
    const char *brokers = getenv("KAFKA_BROKERS");
    int fixtures = argc == 2 && strcmp(argv[1], "fixtures") == 0;
    int note = argc == 4 && strcmp(argv[1], "note") == 0;
    int bad = argc == 2 && strcmp(argv[1], "bad-intake") == 0;
    if (!brokers || (!fixtures && !note && !bad)) {
        fprintf(
            stderr,
            "usage: KAFKA_BROKERS=... tail_produce fixtures | note CASE_ID TEXT | bad-intake\n");
        return 2;
    }
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) ||
        rd_kafka_conf_set(conf, "acks", "all", err, sizeof err)) {
        fprintf(stderr, "config: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "producer: %s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    int sent = 0, rc = 0;
    if (fixtures) {
        rc = send_case_submitted(rk) || send_case_routed(rk) ||
             send_case_event(rk, CASE_A, 0, "回访：顾客不满意，留言 021-5555-0123") ||
             send_deadline_fired(rk) || send_notification_task(rk) ||
             send_notification_result(rk) || send_dead_letter(rk) || send_undecodable(rk);
        sent = 10;
    } else if (bad) {
        rc = send_bad_intake(rk);
        sent = 6;
    } else {
        rc = send_case_event(rk, argv[2], 1, argv[3]);
        sent = 1;
    }
    if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR)
        fprintf(stderr, "flush: not every record was acknowledged within 30 s\n");
    rd_kafka_destroy(rk);
    printf("sent %d delivered %d failed %d\n", sent, delivered, failed);
    return rc == 0 && delivered == sent && failed == 0 ? 0 : 1;
}
