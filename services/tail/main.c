/*
 * casewire-tail: reads casewire topics and prints every record as one JSON object per line,
 * decoded from the protobuf schema (record.h, pbjson.h), personal data masked unless
 * --unmasked. For operators and tests; docs/events.md "Reading the topics" has examples.
 *
 * It must never disturb the services: it joins no consumer group and commits no offsets.
 * librdkafka's high-level consumer refuses assign() without a group.id, so this uses the
 * simple consumer (rd_kafka_consume_start_queue), which has no group at all, and starts
 * every partition of every topic (from a metadata request) explicitly into one queue.
 *
 * 1. Options (exit 2 on bad usage), brokers from the flag, the bootstrap file or the env.
 * 2. Metadata and watermarks of every topic, retried until the start-up deadline (30 s, or
 *    --timeout if shorter): Kafka briefly unreachable or a leader being elected is normal.
 * 3. Each partition starts at the beginning (--from-beginning) or at its high watermark as
 *    just read, so every record written after the "reading ..." line on stderr is printed
 *    (starting at "END" instead would resolve later and could skip some).
 * 4. Loop: take a record, print it; flush stdout whenever no record is waiting (prompt for a
 *    follower, no flush per line for a dump). A partition has reached its end when the
 *    consumer passes the high watermark read in step 2 (--until-end).
 * 5. Stop at --count, at --until-end, at SIGINT/SIGTERM or at --timeout (exit 1); stop every
 *    partition, destroy the handle.
 */
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "event.h"
#include "jsonw.h"
#include "options.h"
#include "record.h"

#define PROG TAIL_PROG
/* Without --timeout, start-up (metadata, watermarks) still gives up after this long. */
#define TAIL_STARTUP_TIMEOUT_MS 30000
/* Longest wait for a record before checking signals and the deadline. */
#define TAIL_WAIT_MS 100
/* librdkafka prefetches per partition with the simple consumer: bound what 30 partitions
 * can hold in memory (defaults are 64 MiB each). */
#define TAIL_QUEUED_KBYTES "2048"
#define TAIL_QUEUED_MESSAGES "1000"

struct tail_partition {
    int32_t id;
    int64_t end; /* high watermark at start: --until-end is done past it */
    int started, done;
};

struct tail_topic {
    const char *name;
    rd_kafka_topic_t *rkt;
    struct tail_partition *parts;
    size_t nparts;
};

struct tail {
    const struct tail_options *opt;
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue;
    struct tail_topic *topics;
    size_t ntopics, parts_total, parts_done;
    long long printed;
    int64_t deadline_ms; /* monotonic; 0: none */
    int fatal;           /* librdkafka reported a fatal error: stop, exit 1 */
    struct jsonw line;
    rd_kafka_resp_err_t last_error; /* repeated broker errors are reported once */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig) { stop_signal = sig; }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- 2. the Kafka handle, metadata, watermarks ---- */

/* librdkafka's warnings and errors, except connection failures ("FAIL"): those come again
 * through on_kafka_error, once per change, and in the start-up error message. */
static void on_kafka_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    (void)level;
    if (strcmp(fac, "FAIL") == 0) return;
    fprintf(stderr, PROG ": kafka: %s\n", buf);
}

/* Broker errors (unreachable, all brokers down) are transient: librdkafka reconnects and the
 * tail carries on; they are reported once per change so a long outage is not a flood. */
static void on_kafka_error(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    struct tail *t = opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) t->fatal = 1;
    if (err == t->last_error) return;
    t->last_error = err;
    fprintf(stderr, PROG ": kafka: %s\n", reason);
}

static int conf_set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char e[256];
    if (rd_kafka_conf_set(conf, k, v, e, sizeof e) == RD_KAFKA_CONF_OK) return 0;
    /* Never the value: --kafka-conf carries passwords. */
    fprintf(stderr, PROG ": kafka setting %s: %s\n", k, e);
    return -1;
}

/* "a=b,c=d" from --kafka-conf / CASEWIRE_KAFKA_CONF, as the services read it. */
static int conf_set_extra(rd_kafka_conf_t *conf, const char *extra)
{
    if (!extra || !*extra) return 0;
    char *copy = strdup(extra), *save = NULL;
    int rc = 0, item = 0;
    if (!copy) return -1;
    for (char *kv = strtok_r(copy, ",", &save); kv && rc == 0; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        item++;
        if (!eq || eq == kv) {
            fprintf(stderr, PROG ": --kafka-conf item %d is not key=value\n", item);
            rc = -1;
            break;
        }
        *eq = '\0';
        rc = conf_set(conf, kv, eq + 1);
    }
    free(copy);
    return rc;
}

static int tail_connect(struct tail *t, const char *brokers)
{
    char e[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (conf_set(conf, "bootstrap.servers", brokers) || conf_set(conf, "client.id", PROG) ||
        /* Nothing is ever committed or stored: this reader has no group and no position. */
        conf_set(conf, "enable.auto.commit", "false") ||
        conf_set(conf, "enable.auto.offset.store", "false") ||
        conf_set(conf, "enable.partition.eof", "true") ||
        /* An offset gone by retention: go on from the oldest record rather than skip ahead. */
        conf_set(conf, "auto.offset.reset", "earliest") ||
        /* The devbroker does not wake a waiting fetch when data arrives (docs/devbroker.md). */
        conf_set(conf, "fetch.wait.max.ms", "100") ||
        conf_set(conf, "queued.max.messages.kbytes", TAIL_QUEUED_KBYTES) ||
        conf_set(conf, "queued.min.messages", TAIL_QUEUED_MESSAGES) ||
        conf_set(conf, "log_level", "4") /* warnings and worse */ ||
        conf_set_extra(conf, t->opt->kafka_conf))
        goto fail_conf;
    rd_kafka_conf_set_opaque(conf, t);
    rd_kafka_conf_set_log_cb(conf, on_kafka_log);
    rd_kafka_conf_set_error_cb(conf, on_kafka_error);
    t->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, e, sizeof e);
    if (!t->rk) {
        fprintf(stderr, PROG ": kafka: %s\n", e);
        goto fail_conf;
    }
    /* conf now belongs to t->rk */
    t->queue = rd_kafka_queue_new(t->rk);
    if (!t->queue) {
        fprintf(stderr, PROG ": kafka: cannot create a queue\n");
        return -1;
    }
    return 0;
fail_conf:
    if (!t->rk) rd_kafka_conf_destroy(conf);
    return -1;
}

/* Each start-up request waits at most this long, so a signal is noticed between retries. */
#define TAIL_REQUEST_MS 2000

/* Transient at start-up: worth retrying until the deadline. */
static int retriable(rd_kafka_resp_err_t err)
{
    switch (err) {
    case RD_KAFKA_RESP_ERR__TRANSPORT:
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN:
    case RD_KAFKA_RESP_ERR__WAIT_COORD:
    case RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE:
    case RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
    case RD_KAFKA_RESP_ERR__RESOLVE: return 1;
    default: return 0;
    }
}

static int time_left_ms(int64_t deadline)
{
    int64_t left = deadline - now_ms();
    return left <= 0 ? 0 : left > TAIL_REQUEST_MS ? TAIL_REQUEST_MS : (int)left;
}

static void pause_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static const struct rd_kafka_metadata_topic *metadata_topic(const struct rd_kafka_metadata *md,
                                                            const char *name)
{
    for (int k = 0; k < md->topic_cnt; k++)
        if (strcmp(md->topics[k].topic, name) == 0) return &md->topics[k];
    return NULL;
}

/* Partition ids of every topic from one metadata request for all topics. Asking for all
 * rather than for ours by name matters: a request naming a topic makes brokers that
 * auto-create topics (the devbroker does, whatever the client asks) create a misspelt one. */
static int tail_describe(struct tail *t, int64_t deadline)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    const char *waiting_for = NULL; /* a topic without a leader yet */
    for (;;) {
        int left = time_left_ms(deadline);
        if (stop_signal) return -1;
        if (left == 0) {
            fprintf(stderr, PROG ": no metadata from %s in time (%s%s%s)\n", t->opt->brokers,
                    rd_kafka_err2str(err), waiting_for ? ", topic " : "",
                    waiting_for ? waiting_for : "");
            return -1;
        }
        err = rd_kafka_metadata(t->rk, 1, NULL, &md, left);
        if (err) {
            if (!retriable(err)) {
                fprintf(stderr, PROG ": metadata: %s\n", rd_kafka_err2str(err));
                return -1;
            }
            pause_ms(100);
            continue;
        }
        waiting_for = NULL;
        for (size_t i = 0; i < t->ntopics && !waiting_for; i++) {
            const struct rd_kafka_metadata_topic *mt = metadata_topic(md, t->topics[i].name);
            if (!mt || mt->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
                fprintf(stderr, PROG ": topic %s does not exist\n", t->topics[i].name);
                rd_kafka_metadata_destroy(md);
                return -1;
            }
            if (mt->err || mt->partition_cnt <= 0) {
                err = mt->err ? mt->err : RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
                waiting_for = t->topics[i].name;
            }
        }
        if (!waiting_for) break;
        rd_kafka_metadata_destroy(md);
        if (!retriable(err)) {
            fprintf(stderr, PROG ": topic %s: %s\n", waiting_for, rd_kafka_err2str(err));
            return -1;
        }
        pause_ms(100);
    }
    int rc = 0;
    for (size_t i = 0; i < t->ntopics && rc == 0; i++) {
        struct tail_topic *tp = &t->topics[i];
        const struct rd_kafka_metadata_topic *mt = metadata_topic(md, tp->name); /* checked above */
        tp->parts = calloc((size_t)mt->partition_cnt, sizeof *tp->parts);
        if (!tp->parts) {
            fprintf(stderr, PROG ": out of memory\n");
            rc = -1;
            break;
        }
        tp->nparts = (size_t)mt->partition_cnt;
        for (size_t k = 0; k < tp->nparts; k++) tp->parts[k].id = mt->partitions[k].id;
        t->parts_total += tp->nparts;
    }
    rd_kafka_metadata_destroy(md);
    return rc;
}

/* The high watermark (the offset the next record will get) of every partition, from one
 * ListOffsets request per broker: offsets_for_times with the "latest" timestamp (-1) asks for
 * all of them at once, where query_watermark_offsets would take a round trip per partition. */
static int tail_query_ends(struct tail *t, int64_t deadline)
{
    rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR__TIMED_OUT;
    for (;;) {
        int left = time_left_ms(deadline);
        if (stop_signal) return -1;
        if (left == 0) {
            fprintf(stderr, PROG ": no end offsets from %s in time (%s)\n", t->opt->brokers,
                    rd_kafka_err2str(err));
            return -1;
        }
        rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
        for (size_t i = 0; i < t->ntopics; i++)
            for (size_t k = 0; k < t->topics[i].nparts; k++)
                rd_kafka_topic_partition_list_add(list, t->topics[i].name, t->topics[i].parts[k].id)
                    ->offset = RD_KAFKA_OFFSET_END;
        err = rd_kafka_offsets_for_times(t->rk, list, left);
        for (int i = 0; !err && i < list->cnt; i++) err = list->elems[i].err;
        for (size_t i = 0; !err && i < t->ntopics; i++) {
            for (size_t k = 0; k < t->topics[i].nparts; k++) {
                struct tail_partition *p = &t->topics[i].parts[k];
                rd_kafka_topic_partition_t *e =
                    rd_kafka_topic_partition_list_find(list, t->topics[i].name, p->id);
                if (!e || e->offset < 0)
                    err = RD_KAFKA_RESP_ERR__BAD_MSG; /* no answer for it */
                else
                    p->end = e->offset;
            }
        }
        rd_kafka_topic_partition_list_destroy(list);
        if (!err) return 0;
        if (!retriable(err)) {
            fprintf(stderr, PROG ": end offsets: %s\n", rd_kafka_err2str(err));
            return -1;
        }
        pause_ms(100);
    }
}

static void partition_reached(struct tail *t, struct tail_partition *p, int64_t next_offset)
{
    if (p->done || next_offset < p->end) return;
    p->done = 1;
    t->parts_done++;
}

/* ---- 3. start every partition ---- */

static int tail_start(struct tail *t)
{
    int64_t startup = now_ms() + TAIL_STARTUP_TIMEOUT_MS;
    if (t->deadline_ms && t->deadline_ms < startup) startup = t->deadline_ms;

    t->topics = calloc(t->opt->ntopics, sizeof *t->topics);
    if (!t->topics) {
        fprintf(stderr, PROG ": out of memory\n");
        return -1;
    }
    t->ntopics = t->opt->ntopics;
    for (size_t i = 0; i < t->ntopics; i++) t->topics[i].name = t->opt->topics[i];
    if (tail_describe(t, startup) != 0) return -1;
    /* Topic handles only now: librdkafka refreshes the metadata of every topic it has a
     * handle for, by name, which would create a misspelt topic on such brokers. */
    for (size_t i = 0; i < t->ntopics; i++) {
        struct tail_topic *tp = &t->topics[i];
        tp->rkt = rd_kafka_topic_new(t->rk, tp->name, NULL);
        if (!tp->rkt) {
            fprintf(stderr, PROG ": topic %s: %s\n", tp->name,
                    rd_kafka_err2str(rd_kafka_last_error()));
            return -1;
        }
    }
    /* The ends are needed for --until-end and to know where "new" records start. */
    if ((t->opt->until_end || !t->opt->from_beginning) && tail_query_ends(t, startup) != 0)
        return -1;
    for (size_t i = 0; i < t->ntopics; i++) {
        struct tail_topic *tp = &t->topics[i];
        for (size_t k = 0; k < tp->nparts; k++) {
            struct tail_partition *p = &tp->parts[k];
            int64_t start = t->opt->from_beginning ? RD_KAFKA_OFFSET_BEGINNING : p->end;
            /* Starting at its end already: nothing to wait for in this partition. An empty
             * partition read from the beginning is done at its first end-of-partition event. */
            if (t->opt->until_end && !t->opt->from_beginning) partition_reached(t, p, p->end);
            if (rd_kafka_consume_start_queue(tp->rkt, p->id, start, t->queue) != 0) {
                fprintf(stderr, PROG ": cannot read %s [%d]: %s\n", tp->name, (int)p->id,
                        rd_kafka_err2str(rd_kafka_last_error()));
                return -1;
            }
            p->started = 1;
        }
    }
    return 0;
}

static void tail_release(struct tail *t)
{
    for (size_t i = 0; i < t->ntopics; i++) {
        struct tail_topic *tp = &t->topics[i];
        for (size_t k = 0; k < tp->nparts; k++)
            if (tp->parts[k].started) rd_kafka_consume_stop(tp->rkt, tp->parts[k].id);
        free(tp->parts);
        if (tp->rkt) rd_kafka_topic_destroy(tp->rkt);
    }
    free(t->topics);
    if (t->queue) rd_kafka_queue_destroy(t->queue);
    if (t->rk) rd_kafka_destroy(t->rk);
    jsonw_release(&t->line);
}

/* ---- 4. the loop ---- */

static struct tail_partition *find_partition(struct tail *t, const rd_kafka_message_t *m)
{
    for (size_t i = 0; i < t->ntopics; i++) {
        if (t->topics[i].rkt != m->rkt) continue;
        for (size_t k = 0; k < t->topics[i].nparts; k++)
            if (t->topics[i].parts[k].id == m->partition) return &t->topics[i].parts[k];
    }
    return NULL;
}

/* Output errors end the run; a reader that went away (EPIPE, `| head`) is not worth a
 * message. */
static void output_failed(void)
{
    if (errno != EPIPE) fprintf(stderr, PROG ": writing output: %s\n", strerror(errno));
}

/* 0 when handled, -1 on a fatal error (printed). */
static int tail_handle(struct tail *t, const rd_kafka_message_t *m)
{
    struct tail_partition *p = find_partition(t, m);
    if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
        if (p) partition_reached(t, p, m->offset);
        return 0;
    }
    if (m->err) {
        /* Consumer errors name a partition and are transient (librdkafka retries). */
        fprintf(stderr, PROG ": %s [%d]: %s\n", m->rkt ? rd_kafka_topic_name(m->rkt) : "kafka",
                (int)m->partition, rd_kafka_message_errstr(m));
        return 0;
    }
    if (p) partition_reached(t, p, m->offset + 1);
    t->last_error = RD_KAFKA_RESP_ERR_NO_ERROR; /* records flow: report the next outage again */
    const char *key = t->opt->key;
    if (key && (!m->key || m->key_len != strlen(key) || memcmp(m->key, key, m->key_len) != 0))
        return 0;
    if (t->opt->count && t->printed >= t->opt->count) return 0;
    if (record_format(&t->line, m, t->opt->unmasked) != 0) {
        fprintf(stderr, PROG ": out of memory formatting %s [%d] offset %lld\n",
                rd_kafka_topic_name(m->rkt), (int)m->partition, (long long)m->offset);
        return -1;
    }
    t->line.buf[t->line.len] = '\n'; /* jsonw keeps room for its NUL */
    if (fwrite(t->line.buf, 1, t->line.len + 1, stdout) != t->line.len + 1) {
        output_failed();
        return -1;
    }
    t->printed++;
    return 0;
}

static int finished(const struct tail *t)
{
    if (t->opt->count && t->printed >= t->opt->count) return 1;
    return t->opt->until_end && t->parts_done == t->parts_total;
}

/* Returns the exit status. */
static int tail_run(struct tail *t)
{
    while (!finished(t)) {
        if (stop_signal) {
            if (t->opt->count || t->opt->until_end) {
                fprintf(stderr, PROG ": stopped by signal %d before the end (%lld printed)\n",
                        (int)stop_signal, t->printed);
                if (fflush(stdout) != 0) output_failed();
                return 1;
            }
            break;
        }
        int wait = TAIL_WAIT_MS;
        if (t->deadline_ms) {
            int64_t left = t->deadline_ms - now_ms();
            if (left <= 0) {
                fprintf(stderr, PROG ": timed out after %g s (%lld records printed",
                        t->opt->timeout_s, t->printed);
                if (t->opt->until_end)
                    fprintf(stderr, ", %zu of %zu partitions at their end", t->parts_done,
                            t->parts_total);
                fprintf(stderr, ")\n");
                if (fflush(stdout) != 0) output_failed();
                return 1;
            }
            if (left < wait) wait = (int)left;
        }
        rd_kafka_poll(t->rk, 0); /* error callbacks */
        if (t->fatal) return 1;  /* reported by on_kafka_error */
        rd_kafka_message_t *m = rd_kafka_consume_queue(t->queue, 0);
        if (!m) {
            /* Nothing waiting: show what we have before blocking. */
            if (fflush(stdout) != 0) {
                output_failed();
                return 1;
            }
            m = rd_kafka_consume_queue(t->queue, wait);
            if (!m) continue;
        }
        int rc = tail_handle(t, m);
        rd_kafka_message_destroy(m);
        if (rc != 0) return 1;
    }
    if (fflush(stdout) != 0) {
        output_failed();
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct tail_options opt = {0};
    struct tail t = {.opt = &opt};
    char bootstrap[1024];
    int rc = 1;

    int prc = tail_options_parse(&opt, argc, argv);
    if (prc != 0) {
        tail_options_release(&opt);
        return prc == 1 ? 0 : prc == -1 ? TAIL_EXIT_USAGE : 1;
    }
    if (opt.bootstrap_file) {
        if (tail_bootstrap_read(opt.bootstrap_file, bootstrap, sizeof bootstrap) != 0) goto out;
        opt.brokers = bootstrap;
    }
    if (opt.timeout_s > 0) t.deadline_ms = now_ms() + (int64_t)ceil(opt.timeout_s * 1000);

    struct sigaction sa = {.sa_handler = on_signal};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN); /* a closed stdout is an error from fwrite, handled there */

    jsonw_init(&t.line);
    if (tail_connect(&t, opt.brokers) != 0 || tail_start(&t) != 0) goto out;
    if (!opt.quiet)
        fprintf(stderr, PROG ": reading %zu partition%s of %zu topic%s %s, %s\n", t.parts_total,
                t.parts_total == 1 ? "" : "s", t.ntopics, t.ntopics == 1 ? "" : "s",
                opt.from_beginning ? "from the beginning" : "from their end",
                opt.until_end ? "until the end" : "following (Ctrl-C stops)");
    rc = tail_run(&t);
out:
    tail_release(&t);
    tail_options_release(&opt);
    return rc;
}
