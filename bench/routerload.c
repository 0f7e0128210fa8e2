/*
 * routerload: the two halves of the router benchmark (bench/router.sh).
 *
 *   routerload produce N
 *       puts N CaseSubmitted records on casewire.intake.v1, as the gateway would: three sites
 *       of the example chain, eight kinds of matter (emergencies among them), each case with
 *       its own phone (no repeats), acks=all, idempotent; returns once every delivery report
 *       is in. Prints "produced=N ms=T".
 *
 *   routerload pipe GROUP N TOPIC
 *       the peer: raw librdkafka, no casewire code. A consumer in GROUP reads the intake
 *       records and, for each, produces three records to TOPIC (the router's CaseRouted and
 *       two notification tasks; here three copies of the record, a similar size), and stores
 *       the record's offset only once all three are acknowledged, as the router does. The
 *       same settings as common/kafka.c (acks=all, idempotence, linger 2 ms, Nagle off,
 *       10 ms fetch wait). Stops after N records. Prints "piped=N ms=T", T from the first
 *       record consumed to the last one done, so the group join is not counted.
 *
 * Brokers come from KAFKA_BROKERS.
 */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"
#include "ids.h"

static rd_kafka_conf_t *base_conf(const char *brokers)
{
    static const char *const settings[][2] = {
        {"socket.nagle.disable", "true"},
        {"linger.ms", "2"},
        {"enable.idempotence", "true"},
        {"acks", "all"},
    };
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    char err[256];
    if (rd_kafka_conf_set(conf, "bootstrap.servers", brokers, err, sizeof err) != RD_KAFKA_CONF_OK)
        goto fail;
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (rd_kafka_conf_set(conf, settings[i][0], settings[i][1], err, sizeof err) !=
            RD_KAFKA_CONF_OK)
            goto fail;
    return conf;
fail:
    fprintf(stderr, "routerload: %s\n", err);
    exit(2);
}

static rd_kafka_t *new_client(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    char err[256];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "routerload: %s\n", err);
        exit(2);
    }
    return rk;
}

static long delivered, failed;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk, (void)opaque;
    if (m->err) {
        failed++;
        fprintf(stderr, "routerload: delivery failed: %s\n", rd_kafka_err2str(m->err));
    } else
        delivered++;
}

/* One case as the gateway would submit it (services/gateway/intake.c). */
static size_t pack_case(long i, char case_id[CW_ULID_LEN + 1], uint8_t **out)
{
    static const char *const sites[] = {"SH01", "SH02", "HZ01"};
    static const char *const texts[] = {
        "鞋子穿了两天就开胶了，要求退货",
        "洗手间很脏，地上有水",
        "停车场收费比标的贵",
        "收银员态度很差，爱理不理",
        "I was overcharged at the checkout",
        "Lost my wallet near the food court",
        "空调不制冷，太热了",
        "有人在一楼晕倒了，快来人",
    };
    const char *site = sites[i % 3];
    char text[256], phone[16], case_no[40];
    snprintf(text, sizeof text, "%s (%ld)", texts[i % 8], i);
    snprintf(phone, sizeof phone, "139%08ld", i % 100000000);
    snprintf(case_no, sizeof case_no, "%s-261124-%06ld", site, i);
    if (cw_ulid_new(case_id) != 0) return 0;
    cw_event_meta meta;
    struct cw_event_ids ids;
    if (cw_event_meta_init(&meta, &ids, "gateway", case_id, site, NULL, NULL) != 0) return 0;
    Casewire__V1__Person person = CASEWIRE__V1__PERSON__INIT;
    person.name = "顾客";
    person.phone = phone;
    Casewire__V1__CaseSubmitted cs = CASEWIRE__V1__CASE_SUBMITTED__INIT;
    cs.case_no = case_no;
    cs.channel = CASEWIRE__V1__CHANNEL__CHANNEL_WEB;
    cs.text = text;
    cs.customer = &person;
    cs.language = "zh";
    cs.reply_by_ms = meta.occurred_ms + 24 * 3600 * 1000;
    cw_envelope env = CASEWIRE__V1__ENVELOPE__INIT;
    env.meta = &meta;
    env.body_case = CASEWIRE__V1__ENVELOPE__BODY_CASE_SUBMITTED;
    env.case_submitted = &cs;
    return cw_event_pack(&env, out);
}

static int produce(const char *brokers, long n)
{
    rd_kafka_conf_t *conf = base_conf(brokers);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = new_client(RD_KAFKA_PRODUCER, conf);
    int64_t t0 = cw_mono_ms();
    for (long i = 0; i < n; i++) {
        char case_id[CW_ULID_LEN + 1];
        uint8_t *buf = NULL;
        size_t len = pack_case(i, case_id, &buf);
        if (!len) {
            fprintf(stderr, "routerload: cannot build case %ld\n", i);
            return 1;
        }
        rd_kafka_resp_err_t err;
        while ((err = rd_kafka_producev(
                    rk, RD_KAFKA_V_TOPIC(CW_TOPIC_INTAKE), RD_KAFKA_V_KEY(case_id, CW_ULID_LEN),
                    RD_KAFKA_V_VALUE(buf, len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_FREE),
                    RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        if (err) {
            fprintf(stderr, "routerload: produce: %s\n", rd_kafka_err2str(err));
            free(buf);
            return 1;
        }
        rd_kafka_poll(rk, 0);
    }
    rd_kafka_flush(rk, 120000);
    printf("produced=%ld ms=%lld\n", delivered, (long long)(cw_mono_ms() - t0));
    rd_kafka_destroy(rk);
    return delivered == n && failed == 0 ? 0 : 1;
}

/* One consumed record waiting for its three outputs. */
struct pending {
    char *topic;
    int32_t partition;
    int64_t offset;
    int left;
};

static rd_kafka_t *consumer;
static long done_records;
static int64_t last_done_ms;

static void on_piped(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk, (void)opaque;
    struct pending *p = m->_private;
    if (m->err) {
        fprintf(stderr, "routerload: delivery failed: %s\n", rd_kafka_err2str(m->err));
        exit(1);
    }
    if (--p->left > 0) return;
    rd_kafka_topic_partition_list_t *l = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(l, p->topic, p->partition)->offset = p->offset + 1;
    rd_kafka_offsets_store(consumer, l);
    rd_kafka_topic_partition_list_destroy(l);
    free(p->topic);
    free(p);
    done_records++;
    last_done_ms = cw_mono_ms();
}

static int pipe_records(const char *brokers, const char *group, long n, const char *out_topic)
{
    rd_kafka_conf_t *pconf = base_conf(brokers);
    rd_kafka_conf_set_dr_msg_cb(pconf, on_piped);
    rd_kafka_t *producer = new_client(RD_KAFKA_PRODUCER, pconf);

    rd_kafka_conf_t *cconf = base_conf(brokers);
    static const char *const settings[][2] = {
        {"group.id", NULL},
        {"session.timeout.ms", "10000"},
        {"auto.commit.interval.ms", "1000"},
        {"fetch.wait.max.ms", "10"},
        {"queued.max.messages.kbytes", "16384"},
        {"auto.offset.reset", "earliest"},
        {"enable.auto.commit", "true"},
        {"enable.auto.offset.store", "false"},
    };
    char err[256];
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++)
        if (rd_kafka_conf_set(cconf, settings[i][0], settings[i][1] ? settings[i][1] : group, err,
                              sizeof err) != RD_KAFKA_CONF_OK) {
            fprintf(stderr, "routerload: %s\n", err);
            return 2;
        }
    consumer = new_client(RD_KAFKA_CONSUMER, cconf);
    rd_kafka_poll_set_consumer(consumer);
    rd_kafka_topic_partition_list_t *topics = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(topics, CW_TOPIC_INTAKE, RD_KAFKA_PARTITION_UA);
    rd_kafka_resp_err_t e = rd_kafka_subscribe(consumer, topics);
    rd_kafka_topic_partition_list_destroy(topics);
    if (e) {
        fprintf(stderr, "routerload: subscribe: %s\n", rd_kafka_err2str(e));
        return 1;
    }

    long consumed = 0;
    int64_t first_ms = 0;
    while (done_records < n) {
        rd_kafka_poll(producer, 0);
        if (consumed >= n) {
            rd_kafka_poll(producer, 10);
            continue;
        }
        rd_kafka_message_t *m = rd_kafka_consumer_poll(consumer, 10);
        if (!m) continue;
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                fprintf(stderr, "routerload: consume: %s\n", rd_kafka_message_errstr(m));
            rd_kafka_message_destroy(m);
            continue;
        }
        if (!first_ms) first_ms = cw_mono_ms();
        consumed++;
        struct pending *p = malloc(sizeof *p);
        if (!p || !(p->topic = strdup(rd_kafka_topic_name(m->rkt)))) {
            fprintf(stderr, "routerload: out of memory\n");
            return 1;
        }
        p->partition = m->partition;
        p->offset = m->offset;
        p->left = 3;
        for (int k = 0; k < 3; k++) {
            while (
                (e = rd_kafka_producev(
                     producer, RD_KAFKA_V_TOPIC(out_topic), RD_KAFKA_V_KEY(m->key, m->key_len),
                     RD_KAFKA_V_VALUE(m->payload, m->len), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                     RD_KAFKA_V_OPAQUE(p), RD_KAFKA_V_END)) == RD_KAFKA_RESP_ERR__QUEUE_FULL)
                rd_kafka_poll(producer, 10);
            if (e) {
                fprintf(stderr, "routerload: produce: %s\n", rd_kafka_err2str(e));
                return 1;
            }
        }
        rd_kafka_message_destroy(m);
    }
    printf("piped=%ld ms=%lld\n", done_records, (long long)(last_done_ms - first_ms));
    rd_kafka_consumer_close(consumer);
    rd_kafka_destroy(consumer);
    rd_kafka_flush(producer, 10000);
    rd_kafka_destroy(producer);
    return 0;
}

int main(int argc, char **argv)
{
    const char *brokers = getenv("KAFKA_BROKERS");
    if (!brokers || !*brokers) {
        fprintf(stderr, "routerload: set KAFKA_BROKERS\n");
        return 2;
    }
    if (argc == 3 && strcmp(argv[1], "produce") == 0) return produce(brokers, atol(argv[2]));
    if (argc == 5 && strcmp(argv[1], "pipe") == 0)
        return pipe_records(brokers, argv[2], atol(argv[3]), argv[4]);
    fprintf(stderr, "usage: KAFKA_BROKERS=... routerload produce N | pipe GROUP N TOPIC\n");
    return 2;
}
