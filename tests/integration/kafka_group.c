/*
 * Test driver for common/kafka against the devbroker.
 *   kafka_group produce TOPIC COUNT RATE_PER_S
 *       sends COUNT messages "m<i>" (keys spread over partitions) at about RATE per second,
 *       waits for every delivery report; exit 0 only if all were confirmed.
 *   kafka_group consume TOPIC GROUP OUTFILE
 *       group member: each message's effect is one line appended to OUTFILE, written after a
 *       random 0-3 ms delay (so completions come out of order), then cw_kmsg_done().
 *       Runs until SIGTERM, then shuts down in order (stop, drain, close).
 *       With ITEST_HOLD=1 it never completes a message: it holds them (up to max_inflight),
 *       and at SIGTERM closes at once, so the held ones are detached; it then completes them
 *       and reports what a detached message looks like.
 * Brokers come from KAFKA_BROKERS.
 */
#include <event2/event.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ids.h"
#include "kafka.h"
#include "log.h"

struct producer_run {
    cw_producer *p;
    struct event_base *base;
    const char *topic;
    long count, sent, confirmed, failed, per_tick;
    struct event *tick;
};

static void on_delivered(void *opaque, int error, const char *errstr)
{
    struct producer_run *r = opaque;
    if (error) {
        r->failed++;
        fprintf(stderr, "delivery failed: %s\n", errstr);
    } else {
        r->confirmed++;
    }
    if (r->confirmed + r->failed == r->count) event_base_loopbreak(r->base);
}

static void on_produce_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct producer_run *r = arg;
    for (long n = 0; n < r->per_tick && r->sent < r->count; n++) {
        char v[32], k[16];
        int vl = snprintf(v, sizeof v, "m%ld", r->sent);
        int kl = snprintf(k, sizeof k, "%ld", r->sent % 97);
        int rc = cw_producer_send(r->p, r->topic, k, (size_t)kl, v, (size_t)vl, on_delivered, r);
        if (rc == CW_PRODUCE_QUEUE_FULL) break; /* backpressure: next tick */
        if (rc != CW_PRODUCE_OK) {
            fprintf(stderr, "send refused\n");
            exit(1);
        }
        r->sent++;
    }
    if (r->sent == r->count) event_del(r->tick);
}

static int run_produce(const char *topic, long count, long rate)
{
    char err[512];
    struct event_base *base = event_base_new();
    struct cw_kafka_options o = {.brokers = getenv("KAFKA_BROKERS"), .client_id = "itest-producer"};
    struct producer_run r = {
        .base = base, .topic = topic, .count = count, .per_tick = rate / 100 + 1};
    r.p = cw_producer_new(base, &o, err, sizeof err);
    if (!r.p) {
        fprintf(stderr, "producer: %s\n", err);
        return 1;
    }
    r.tick = event_new(base, -1, EV_PERSIST, on_produce_tick, &r);
    struct timeval tv = {0, 10000};
    event_add(r.tick, &tv);
    event_base_dispatch(base);
    printf("produced %ld confirmed %ld failed %ld\n", r.sent, r.confirmed, r.failed);
    event_free(r.tick);
    cw_producer_free(r.p);
    event_base_free(base);
    return r.confirmed == count ? 0 : 1;
}

struct consumer_run {
    struct event_base *base;
    cw_consumer *c;
    int fd;
    int stopping;
    int64_t stop_deadline; /* like the services: give up on a clean close after 10 s */
    int hold;              /* ITEST_HOLD: keep messages, never complete them before close */
    cw_kmsg *held[4096];
    size_t nheld;
    struct event *poll;
};

struct pending {
    struct consumer_run *r;
    cw_kmsg *m;
    struct event *ev;
};

static void on_effect_due(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct pending *p = arg;
    size_t len;
    const char *v = cw_kmsg_value(p->m, &len);
    char line[64];
    if (len > sizeof line - 2) len = sizeof line - 2;
    memcpy(line, v, len);
    line[len++] = '\n';
    if (write(p->r->fd, line, len) != (ssize_t)len) {
        perror("write");
        exit(1);
    }
    cw_kmsg_done(p->m); /* effect durable (in the file) */
    event_free(p->ev);
    free(p);
}

static void on_message(void *arg, cw_kmsg *m)
{
    struct consumer_run *r = arg;
    if (r->hold) {
        if (r->nheld == sizeof r->held / sizeof r->held[0]) exit(1);
        r->held[r->nheld++] = m;
        if (r->nheld == 200) printf("held 200\n"), fflush(stdout);
        return;
    }
    struct pending *p = malloc(sizeof *p);
    if (!p) exit(1);
    p->r = r;
    p->m = m;
    p->ev = evtimer_new(r->base, on_effect_due, p);
    struct timeval tv = {0, (rand() % 4) * 1000};
    evtimer_add(p->ev, &tv);
}

/* Shutdown in order: stop taking messages, drain, close (commit + leave), end the loop. */
static void on_stop_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct consumer_run *r = arg;
    if (cw_mono_ms() > r->stop_deadline) {
        fprintf(stderr, "consumer did not close within 10 s (broker gone?); stopping anyway\n");
        event_base_loopbreak(r->base);
        return;
    }
    if (cw_consumer_inflight(r->c) > 0 && !r->hold) return;
    cw_consumer_close_begin(r->c); /* hold mode: detaches every held message */
    if (cw_consumer_closed(r->c)) event_base_loopbreak(r->base);
}

static void on_term(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    struct consumer_run *r = arg;
    if (r->stopping) return;
    r->stopping = 1;
    r->stop_deadline = cw_mono_ms() + 10000;
    cw_consumer_stop(r->c);
    struct timeval tv = {0, 10000};
    r->poll = event_new(r->base, -1, EV_PERSIST, on_stop_poll, r);
    event_add(r->poll, &tv);
}

static int run_consume(const char *topic, const char *group, const char *outfile)
{
    char err[512];
    struct consumer_run r = {.base = event_base_new(), .hold = getenv("ITEST_HOLD") != NULL};
    srand((unsigned)getpid());
    r.fd = open(outfile, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (r.fd < 0) {
        perror(outfile);
        return 1;
    }
    struct cw_kafka_options o = {.brokers = getenv("KAFKA_BROKERS"),
                                 .client_id = "itest-consumer",
                                 .session_timeout_ms = 6000};
    const char *topics[] = {topic};
    struct cw_consumer_options co = {
        .group_id = group,
        .topics = topics,
        .ntopics = 1,
        .max_inflight = getenv("ITEST_MAX_INFLIGHT") ? atoi(getenv("ITEST_MAX_INFLIGHT")) : 200,
        .handler = on_message,
        .handler_arg = &r};
    r.c = cw_consumer_new(r.base, &o, &co, err, sizeof err);
    if (!r.c) {
        fprintf(stderr, "consumer: %s\n", err);
        return 1;
    }
    struct event *term = evsignal_new(r.base, SIGTERM, on_term, &r);
    evsignal_add(term, NULL);
    event_base_dispatch(r.base);
    struct cw_consumer_stats st;
    cw_consumer_stats(r.c, &st);
    printf("consumer done received=%llu done=%llu rebalances=%llu inflight_peak=%zu\n",
           (unsigned long long)st.received, (unsigned long long)st.done,
           (unsigned long long)st.rebalances, st.inflight_peak);
    /* Held messages were detached at close: no data, and done only frees them. */
    size_t empty = 0;
    for (size_t i = 0; i < r.nheld; i++) {
        size_t len;
        if (!cw_kmsg_value(r.held[i], &len) && len == 0 && cw_kmsg_offset(r.held[i]) == -1) empty++;
        cw_kmsg_done(r.held[i]);
    }
    if (r.hold)
        printf("detached=%zu empty=%zu inflight_after=%zu\n", r.nheld, empty,
               cw_consumer_inflight(r.c));
    event_free(term);
    if (r.poll) event_free(r.poll);
    cw_consumer_free(r.c);
    event_base_free(r.base);
    close(r.fd);
    return 0;
}

int main(int argc, char **argv)
{
    cw_log_init("itest", getenv("CW_LOG_LEVEL") ? getenv("CW_LOG_LEVEL") : "info");
    if (argc == 5 && strcmp(argv[1], "produce") == 0)
        return run_produce(argv[2], atol(argv[3]), atol(argv[4]));
    if (argc == 5 && strcmp(argv[1], "consume") == 0) return run_consume(argv[2], argv[3], argv[4]);
    fprintf(stderr, "usage: kafka_group produce TOPIC COUNT RATE | consume TOPIC GROUP OUTFILE\n");
    return 2;
}
