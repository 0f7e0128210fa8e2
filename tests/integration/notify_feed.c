/*
 * Test producer for tests/integration/notifier.sh: writes notification tasks onto
 * casewire.notify.v1 the way the router and the deadline worker do.
 *   notify_feed sms PREFIX N PHONES COPIES [TEMPLATE [EMERGENCY]]
 *       N customer SMS tasks (task ids PREFIX-0 .. PREFIX-<N-1>) to PHONES distinct numbers
 *       (13900000000 + i % PHONES), template case_received by default, each written COPIES
 *       times (a redelivered task must still be sent once). NOTIFY_FEED_PHONE_BASE=K makes
 *       the numbers start at 13900000000 + K. NOTIFY_FEED_RATE=R writes R tasks a second
 *       (default: as fast as Kafka takes them); NOTIFY_FEED_STAMP=1 ends each task id with
 *       its due time in ms (PREFIX-i-MS), for a benchmark to measure from.
 *   notify_feed staff PREFIX N STAFF_ID
 *       N staff SMS tasks (template staff_assigned) to STAFF_ID.
 *   notify_feed inbox PREFIX N STAFF_ID
 *       N staff tasks (kind STAFF_TASK) for STAFF_ID's inbox.
 *   notify_feed case-event CASE_ID TENANT_ID
 *       one CaseEvent (a tenant's reply) on casewire.cases.v1 for a case of TENANT_ID at SH01:
 *       the notifier owes the tenant a webhook.
 *   notify_feed garbage
 *       one record that is not an envelope, and one task without a task id.
 * Brokers come from KAFKA_BROKERS. Exit 0 only when every record was acknowledged.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "ids.h"

static int delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk, (void)opaque;
    if (m->err) {
        failed++;
        fprintf(stderr, "delivery failed: %s\n", rd_kafka_err2str(m->err));
    } else {
        delivered++;
    }
}

static int send_raw(rd_kafka_t *rk, const char *key, const void *value, size_t len)
{
    for (;;) {
        rd_kafka_resp_err_t err = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(CW_TOPIC_NOTIFY), RD_KAFKA_V_KEY(key, strlen(key)),
            RD_KAFKA_V_VALUE((void *)value, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_END);
        if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            rd_kafka_poll(rk, 50);
            continue;
        }
        if (err) fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
        return err ? -1 : 0;
    }
}

/* One task in its envelope, keyed by its case id. */
static int send_task_env(rd_kafka_t *rk, cw_event_meta *meta, Casewire__V1__NotificationTask *t)
{
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_NOTIFICATION_TASK;
    env.notification_task = t;
    uint8_t *buf;
    size_t len = cw_event_pack(&env, &buf);
    if (!len) return -1;
    int rc = send_raw(rk, meta->case_id, buf, len);
    free(buf);
    return rc;
}

struct spec {
    const char *prefix, *tmpl, *staff;
    int kind, emergency;
};

static int send_task(rd_kafka_t *rk, const struct spec *s, int i, int phones)
{
    char case_id[CW_ULID_LEN + 1], task_id[96], phone[24], case_no[32];
    if (cw_ulid_new(case_id) != 0) return -1;
    int64_t due = cw_now_ms();
    if (getenv("NOTIFY_FEED_STAMP"))
        snprintf(task_id, sizeof task_id, "%s-%d-%lld", s->prefix, i, (long long)due);
    else
        snprintf(task_id, sizeof task_id, "%s-%d", s->prefix, i);
    const char *base = getenv("NOTIFY_FEED_PHONE_BASE"); /* numbers start here (default 0) */
    snprintf(phone, sizeof phone, "139%08d",
             (base ? atoi(base) : 0) + i % (phones > 0 ? phones : 1));
    snprintf(case_no, sizeof case_no, "SH01-261125-%04d", i % 10000);
    cw_event_meta meta;
    struct cw_event_ids ids;
    if (cw_event_meta_init(&meta, &ids, "router", case_id, "SH01", NULL, NULL) != 0) return -1;
    Casewire__V1__NotificationTask t = CASEWIRE__V1__NOTIFICATION_TASK__INIT;
    Casewire__V1__Person p = CASEWIRE__V1__PERSON__INIT;
    Casewire__V1__NotificationTask__ParamsEntry e[3];
    Casewire__V1__NotificationTask__ParamsEntry *ep[3] = {&e[0], &e[1], &e[2]};
    const char *keys[3] = {"case_no", "reply_by", "site_name"};
    const char *vals[3] = {case_no, "11月26日 18:00", "华信广场"};
    for (int k = 0; k < 3; k++) {
        casewire__v1__notification_task__params_entry__init(&e[k]);
        e[k].key = (char *)keys[k];
        e[k].value = (char *)vals[k];
    }
    t.kind = s->kind;
    t.task_id = task_id;
    t.template_id = (char *)s->tmpl;
    t.language = "zh";
    t.n_params = 3;
    t.params = ep;
    t.due_ms = due;
    t.emergency = s->emergency;
    if (s->staff) {
        t.recipient_staff_id = (char *)s->staff;
    } else {
        p.name = "张三";
        p.phone = phone;
        t.recipient = &p;
    }
    return send_task_env(rk, &meta, &t);
}

static int garbage(rd_kafka_t *rk)
{
    static const char junk[] = "\x08\x96\x01 not an envelope";
    if (send_raw(rk, "01JDGARBAGE000000000000000", junk, sizeof junk - 1) != 0) return -1;
    /* a task without a task id */
    char case_id[CW_ULID_LEN + 1];
    cw_event_meta meta;
    struct cw_event_ids ids;
    if (cw_ulid_new(case_id) != 0 ||
        cw_event_meta_init(&meta, &ids, "router", case_id, "SH01", NULL, NULL) != 0)
        return -1;
    Casewire__V1__NotificationTask t = CASEWIRE__V1__NOTIFICATION_TASK__INIT;
    t.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS;
    t.template_id = "case_received";
    return send_task_env(rk, &meta, &t);
}

static int case_event(rd_kafka_t *rk, const char *case_id, const char *tenant)
{
    cw_event_meta meta;
    struct cw_event_ids ids;
    if (cw_event_meta_init(&meta, &ids, "gateway", case_id, "SH01", tenant, NULL) != 0) return -1;
    Casewire__V1__CaseEvent e = CASEWIRE__V1__CASE_EVENT__INIT;
    e.action = CASEWIRE__V1__CASE_ACTION__CASE_ACTION_REPLY;
    e.actor_id = (char *)tenant;
    e.actor_kind = CASEWIRE__V1__ACTOR_KIND__ACTOR_KIND_TENANT;
    e.reply = "已联系顾客，全额退款";
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_EVENT;
    env.case_event = &e;
    uint8_t *buf;
    size_t len = cw_event_pack(&env, &buf);
    if (!len) return -1;
    rd_kafka_resp_err_t err = rd_kafka_producev(
        rk, RD_KAFKA_V_TOPIC(CW_TOPIC_CASES), RD_KAFKA_V_KEY(case_id, strlen(case_id)),
        RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_END);
    free(buf);
    if (err) fprintf(stderr, "produce: %s\n", rd_kafka_err2str(err));
    return err ? -1 : 0;
}

static int usage(void)
{
    fprintf(stderr, "usage: KAFKA_BROKERS=... notify_feed sms PREFIX N PHONES COPIES [TEMPLATE "
                    "[EMERGENCY]] | staff PREFIX N STAFF_ID | inbox PREFIX N STAFF_ID | case-event "
                    "CASE_ID TENANT_ID | case-events N TENANT_ID | garbage\n");
    return 2;
}

int main(int argc, char **argv)
{
    const char *brokers = getenv("KAFKA_BROKERS");
    if (!brokers || argc < 2) return usage();
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) ||
        rd_kafka_conf_set(conf, "acks", "all", err, sizeof err) ||
        rd_kafka_conf_set(conf, "linger.ms", "5", err, sizeof err)) {
        fprintf(stderr, "%s\n", err);
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    int rc = 0, want = 0;
    if (!strcmp(argv[1], "case-event") && argc == 4) {
        rc = case_event(rk, argv[2], argv[3]);
        want = 1;
    } else if (!strcmp(argv[1], "case-events") && argc == 4) { /* N of a tenant, new cases */
        want = atoi(argv[2]);
        for (int i = 0; rc == 0 && i < want; i++) {
            char case_id[CW_ULID_LEN + 1];
            rc = cw_ulid_new(case_id) != 0 ? -1 : case_event(rk, case_id, argv[3]);
        }
    } else if (!strcmp(argv[1], "garbage")) {
        rc = garbage(rk);
        want = 2;
    } else if (argc >= 5) {
        struct spec s = {.prefix = argv[2],
                         .tmpl = "case_received",
                         .kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_SMS};
        int n = atoi(argv[3]), phones = 1, copies = 1;
        if (!strcmp(argv[1], "sms")) {
            phones = atoi(argv[4]);
            copies = argc > 5 ? atoi(argv[5]) : 1;
            if (argc > 6) s.tmpl = argv[6];
            s.emergency = argc > 7 && atoi(argv[7]);
        } else if (!strcmp(argv[1], "staff") || !strcmp(argv[1], "inbox")) {
            s.staff = argv[4];
            s.tmpl = "staff_assigned";
            if (!strcmp(argv[1], "inbox"))
                s.kind = CASEWIRE__V1__NOTIFICATION_KIND__NOTIFICATION_KIND_STAFF_TASK;
        } else {
            rd_kafka_destroy(rk);
            return usage();
        }
        const char *rate_s = getenv("NOTIFY_FEED_RATE");
        double rate = rate_s ? atof(rate_s) : 0;
        int64_t start = cw_mono_ms();
        for (int c = 0; c < copies && rc == 0; c++)
            for (int i = 0; i < n && rc == 0; i++) {
                /* paced: task k goes out at start + k / rate */
                while (rate > 0 && (double)(cw_mono_ms() - start) < (double)want * 1000.0 / rate)
                    rd_kafka_poll(rk, 1);
                rc = send_task(rk, &s, i, phones);
                want++;
                rd_kafka_poll(rk, 0);
            }
    } else {
        rd_kafka_destroy(rk);
        return usage();
    }
    if (rd_kafka_flush(rk, 30000) != RD_KAFKA_RESP_ERR_NO_ERROR) rc = -1;
    rd_kafka_destroy(rk);
    if (rc == 0 && (failed || delivered != want)) rc = -1;
    printf("%d written\n", delivered);
    return rc == 0 ? 0 : 1;
}
