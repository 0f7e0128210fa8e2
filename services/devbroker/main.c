/*
 * casewire-devbroker: the development Kafka broker.
 *
 * librdkafka's mock cluster (rdkafka_mock.h) in a process of its own: it speaks the Kafka
 * protocol on loopback, so the services run unchanged against it or a real cluster. It keeps
 * everything in memory (a restart loses all topics) and trims each partition to about 5 MiB;
 * see docs/devbroker.md for what else it can and cannot do.
 *
 * 1. Start N mock brokers (random loopback ports, chosen by librdkafka).
 * 2. Create the project's topics (and any extra ones) with the configured partitions.
 * 3. Print the bootstrap address and write it to the bootstrap file (atomically, last), which
 *    is how `make run` and the tests know the broker is ready.
 * 4. With --control PATH: make a FIFO at PATH and take line commands from it on the event loop
 *    (brokers down and up, round-trip time, injected request errors), so tests can break the
 *    cluster without restarting it (a restart loses every topic and changes the ports).
 * 5. On SIGTERM/SIGINT: remove the file (and the FIFO), destroy the cluster, exit 0.
 */
#include <ctype.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "event.h"
#include "log.h"

static void on_log(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    enum cw_log_level lv = level <= 3 ? CW_LOG_ERROR : level <= 5 ? CW_LOG_WARN : CW_LOG_DEBUG;
    cw_log(lv, "kafka.log", "facility=%s msg=\"%s\"", fac, buf);
}

static int mkdir_parents(const char *path)
{
    char dir[PATH_MAX];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) return 0;
    *slash = '\0';
    for (char *p = dir + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(dir, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(dir, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* Written to a temporary name and renamed: readers never see half an address. */
static int write_bootstrap(const char *path, const char *bootstrap)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    if (mkdir_parents(path) != 0) return -1;
    FILE *f = fopen(tmp, "w");
    if (!f) return -1;
    int bad = fprintf(f, "%s\n", bootstrap) < 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, path) != 0) {
        unlink(tmp);
        return -1;
    }
    return 0;
}

static int create_topic(rd_kafka_mock_cluster_t *mc, const char *topic, int partitions, int brokers)
{
    int replication = brokers < 3 ? brokers : 3;
    rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, topic, partitions, replication);
    if (e) {
        cw_error("devbroker.topic_failed", "topic=%s code=%s", topic, rd_kafka_err2name(e));
        return -1;
    }
    cw_info("devbroker.topic", "topic=%s partitions=%d replication=%d", topic, partitions,
            replication);
    return 0;
}

static int create_topics(rd_kafka_mock_cluster_t *mc, const cw_config *cfg)
{
    int partitions = (int)cw_config_int(cfg, CW_SET_DEVBROKER_PARTITIONS);
    int brokers = (int)cw_config_int(cfg, CW_SET_DEVBROKER_BROKERS);
    for (size_t i = 0; i < cw_topics_count; i++)
        if (create_topic(mc, cw_topics[i], partitions, brokers) != 0) return -1;
    char *extra = strdup(cw_config_str(cfg, CW_SET_DEVBROKER_TOPICS)), *save = NULL;
    int rc = extra ? 0 : -1;
    for (char *t = extra ? strtok_r(extra, ",", &save) : NULL; t && rc == 0;
         t = strtok_r(NULL, ",", &save))
        rc = create_topic(mc, t, partitions, brokers);
    free(extra);
    return rc;
}

/* ---- the control FIFO (--control PATH) ----
 *
 * One command a line; `echo "down all" > PATH` from a shell. Every command is logged as
 * event=devbroker.control with result=ok, failed (librdkafka refused it) or rejected (not
 * understood; ignored). When the last writer closes, the FIFO reads end-of-file: it is
 * reopened, ready for the next writer. Commands run on the event loop; each mock call is a
 * round trip to the mock cluster's thread, so it has taken effect when it is logged. */

#define CONTROL_LINE_MAX 512
#define CONTROL_USAGE                                                                              \
    "commands: down all|<id>, up all|<id>, rtt all|<id> <ms>, errors <api> <error> <count>"

struct control {
    rd_kafka_mock_cluster_t *mc;
    struct event_base *base;
    int brokers;
    char path[PATH_MAX];
    int fd;
    struct event *ev;
    char line[CONTROL_LINE_MAX];
    size_t len;
    bool overlong; /* the current line went past CONTROL_LINE_MAX: rejected at its end */
};

/* The command as it can be logged: printable ASCII, no quotes or backslashes, bounded. */
static void control_printable(const char *in, char *out, size_t outlen)
{
    size_t o = 0;
    for (; *in && o + 1 < outlen; in++) {
        unsigned char ch = (unsigned char)*in;
        out[o++] = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\' ? (char)ch : '?';
    }
    out[o] = '\0';
}

/* Kafka protocol request types by name (the ones a test is likely to want). */
static const struct {
    const char *name;
    int key;
} api_keys[] = {
    {"Produce", 0},          {"Fetch", 1},           {"ListOffsets", 2},
    {"Metadata", 3},         {"OffsetCommit", 8},    {"OffsetFetch", 9},
    {"FindCoordinator", 10}, {"JoinGroup", 11},      {"Heartbeat", 12},
    {"LeaveGroup", 13},      {"SyncGroup", 14},      {"DescribeGroups", 15},
    {"ListGroups", 16},      {"SaslHandshake", 17},  {"ApiVersions", 18},
    {"CreateTopics", 19},    {"InitProducerId", 22}, {"AddPartitionsToTxn", 24},
    {"EndTxn", 26},          {"OffsetDelete", 47},
};

/* A whole decimal number in [min, max], or -1. */
static long control_number(const char *s, long min, long max)
{
    if (!s || !*s) return -1;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return -1;
    return v;
}

static int control_api_key(const char *s)
{
    long n = control_number(s, 0, 32767);
    if (n >= 0) return (int)n;
    for (size_t i = 0; i < sizeof api_keys / sizeof api_keys[0]; i++)
        if (strcasecmp(s, api_keys[i].name) == 0 ||
            (strncasecmp(s, api_keys[i].name, strlen(api_keys[i].name)) == 0 &&
             strcasecmp(s + strlen(api_keys[i].name), "Request") == 0))
            return api_keys[i].key;
    return -1;
}

/* An error code by number (e.g. 6, -195) or by name, with or without RD_KAFKA_RESP_ERR_
 * (NOT_LEADER_FOR_PARTITION, _TRANSPORT). Returns 0 and *out, or -1. */
static int control_error_code(const char *s, rd_kafka_resp_err_t *out)
{
    if (!s || !*s) return -1;
    long n = control_number(s, -200, 1000);
    if (n != -1 || strcmp(s, "-1") == 0) {
        if (n == 0) return -1; /* NO_ERROR is not an error to inject */
        *out = (rd_kafka_resp_err_t)n;
        return 0;
    }
    if (strncasecmp(s, "RD_KAFKA_RESP_ERR_", 18) == 0) s += 18;
    const struct rd_kafka_err_desc *descs;
    size_t cnt;
    rd_kafka_get_err_descs(&descs, &cnt);
    for (size_t i = 0; i < cnt; i++)
        if (descs[i].name && descs[i].code != RD_KAFKA_RESP_ERR_NO_ERROR &&
            strcasecmp(descs[i].name, s) == 0) {
            *out = descs[i].code;
            return 0;
        }
    return -1;
}

/* "all" -> 0 (every broker), an id -> the id, else -1. */
static int control_broker(const struct control *c, const char *s)
{
    if (s && strcmp(s, "all") == 0) return 0;
    return (int)control_number(s, 1, c->brokers);
}

static void control_rejected(const char *shown, const char *reason)
{
    cw_warn("devbroker.control", "command=\"%s\" result=rejected reason=\"%s\"", shown, reason);
}

/* Applies fn to one broker, or to every broker at once (id 0: librdkafka's -1). */
static rd_kafka_resp_err_t
control_each(struct control *c, int id,
             rd_kafka_resp_err_t (*fn)(rd_kafka_mock_cluster_t *, int32_t, int), int arg)
{
    return fn(c->mc, id ? id : -1, arg);
}

static rd_kafka_resp_err_t do_down(rd_kafka_mock_cluster_t *mc, int32_t id, int arg)
{
    (void)arg;
    return rd_kafka_mock_broker_set_down(mc, id);
}
static rd_kafka_resp_err_t do_up(rd_kafka_mock_cluster_t *mc, int32_t id, int arg)
{
    (void)arg;
    return rd_kafka_mock_broker_set_up(mc, id);
}
static rd_kafka_resp_err_t do_rtt(rd_kafka_mock_cluster_t *mc, int32_t id, int ms)
{
    return rd_kafka_mock_broker_set_rtt(mc, id, ms);
}

static void control_command(struct control *c, char *line)
{
    char shown[200];
    /* trim; blank lines and # comments are skipped silently */
    while (*line == ' ' || *line == '\t') line++;
    size_t n = strlen(line);
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (!*line || *line == '#') return;
    control_printable(line, shown, sizeof shown);

    char copy[CONTROL_LINE_MAX], *save = NULL, *w[6] = {0};
    snprintf(copy, sizeof copy, "%s", line);
    int nw = 0;
    for (char *t = strtok_r(copy, " \t", &save); t; t = strtok_r(NULL, " \t", &save)) {
        if (nw == 5) {
            control_rejected(shown, "too many words; " CONTROL_USAGE);
            return;
        }
        w[nw++] = t;
    }
    const char *cmd = w[0];
    rd_kafka_resp_err_t e;
    if (strcmp(cmd, "down") == 0 || strcmp(cmd, "up") == 0) {
        int id = control_broker(c, w[1]);
        if (nw != 2 || id < 0) {
            char why[160];
            snprintf(why, sizeof why, "usage: %s all|<broker id 1..%d>", cmd, c->brokers);
            control_rejected(shown, why);
            return;
        }
        e = control_each(c, id, cmd[0] == 'd' ? do_down : do_up, 0);
    } else if (strcmp(cmd, "rtt") == 0) {
        int id = control_broker(c, w[1]);
        long ms = control_number(w[2], 0, 600000);
        if (nw != 3 || id < 0 || ms < 0) {
            char why[160];
            snprintf(why, sizeof why, "usage: rtt all|<broker id 1..%d> <ms 0..600000>",
                     c->brokers);
            control_rejected(shown, why);
            return;
        }
        e = control_each(c, id, do_rtt, (int)ms);
    } else if (strcmp(cmd, "errors") == 0) {
        int api = nw == 4 ? control_api_key(w[1]) : -1;
        rd_kafka_resp_err_t code = RD_KAFKA_RESP_ERR_NO_ERROR;
        long count = nw == 4 ? control_number(w[3], 1, 100000) : -1;
        if (nw != 4 || api < 0 || control_error_code(w[2], &code) != 0 || count < 1) {
            control_rejected(shown, "usage: errors <api key name or number, e.g. Produce or 0> "
                                    "<error name or number, e.g. NOT_LEADER_FOR_PARTITION or 6> "
                                    "<count 1..100000>");
            return;
        }
        rd_kafka_resp_err_t *codes = malloc((size_t)count * sizeof *codes);
        if (!codes) {
            control_rejected(shown, "out of memory");
            return;
        }
        for (long i = 0; i < count; i++) codes[i] = code;
        rd_kafka_mock_push_request_errors_array(c->mc, (int16_t)api, (size_t)count, codes);
        free(codes);
        cw_info("devbroker.control", "command=\"%s\" result=ok api_key=%d error=%s count=%ld",
                shown, api, rd_kafka_err2name(code), count);
        return;
    } else {
        control_rejected(shown, "unknown command; " CONTROL_USAGE);
        return;
    }
    if (e)
        cw_warn("devbroker.control", "command=\"%s\" result=failed reason=\"%s\"", shown,
                rd_kafka_err2str(e));
    else
        cw_info("devbroker.control", "command=\"%s\" result=ok", shown);
}

static void on_control(evutil_socket_t fd, short what, void *arg);

static int control_open(struct control *c)
{
    /* Non-blocking: opening the read end does not wait for a writer. */
    c->fd = open(c->path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (c->fd < 0) return -1;
    c->ev = event_new(c->base, c->fd, EV_READ | EV_PERSIST, on_control, c);
    if (!c->ev || event_add(c->ev, NULL) != 0) {
        if (c->ev) event_free(c->ev);
        c->ev = NULL;
        close(c->fd);
        c->fd = -1;
        return -1;
    }
    return 0;
}

static void control_close(struct control *c)
{
    if (c->ev) event_free(c->ev);
    c->ev = NULL;
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
}

/* One complete line (or the end of the last writer's data). */
static void control_line_done(struct control *c)
{
    c->line[c->len] = '\0';
    if (c->overlong) {
        char shown[64];
        control_printable(c->line, shown, sizeof shown);
        control_rejected(shown, "line too long");
    } else {
        control_command(c, c->line);
    }
    c->len = 0;
    c->overlong = false;
}

static void control_feed(struct control *c, const char *buf, ssize_t n)
{
    for (ssize_t i = 0; i < n; i++) {
        if (buf[i] == '\n') {
            control_line_done(c);
        } else if (c->len + 1 < sizeof c->line) {
            c->line[c->len++] = buf[i] ? buf[i] : '?';
        } else {
            c->overlong = true;
        }
    }
}

static void on_control(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct control *c = arg;
    char buf[1024];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) control_feed(c, buf, n);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    /* End of file: the last writer closed (or a read error). Its last line counts even
     * without a newline. */
    if (n < 0) cw_warn("devbroker.control_read_failed", "reason=\"%s\"", strerror(errno));
    if (c->len || c->overlong) control_line_done(c);
    /* Reopen for the next writer, before letting go of this descriptor: a writer that came,
     * wrote and left since the end of file left its lines in the pipe, which exists only
     * while someone holds it open; read them from the old descriptor, then close it. */
    int old = c->fd;
    struct event *old_ev = c->ev;
    c->fd = -1;
    c->ev = NULL;
    if (control_open(c) != 0)
        cw_error("devbroker.control_failed", "path=%s reason=\"cannot reopen: %s\"", c->path,
                 strerror(errno));
    while ((n = read(old, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR))
        if (n > 0) control_feed(c, buf, n);
    if (n == 0 && (c->len || c->overlong)) control_line_done(c); /* that writer is gone too */
    event_free(old_ev);
    close(old);
}

/* Makes the FIFO (replacing a stale one from an earlier run) and starts reading it. */
static int control_start(struct control *c)
{
    struct stat st;
    if (mkdir_parents(c->path) != 0) return -1;
    if (lstat(c->path, &st) == 0) {
        if (!S_ISFIFO(st.st_mode)) {
            errno = EEXIST;
            return -1;
        }
        if (unlink(c->path) != 0) return -1;
    }
    if (mkfifo(c->path, 0600) != 0) return -1;
    if (control_open(c) != 0) {
        int saved = errno;
        unlink(c->path);
        errno = saved;
        return -1;
    }
    return 0;
}

/* Takes --control PATH / --control=PATH out of argv (the shared settings table does not know
 * it). Returns the path or NULL; -1 in *bad when the flag has no value. */
static const char *take_control_flag(int *argc, char **argv, int *bad)
{
    const char *path = NULL;
    int out = 1;
    *bad = 0;
    for (int a = 1; a < *argc; a++) {
        if (strcmp(argv[a], "--control") == 0) {
            if (a + 1 >= *argc || !argv[a + 1][0]) {
                *bad = 1;
                continue;
            }
            path = argv[++a];
        } else if (strncmp(argv[a], "--control=", 10) == 0) {
            path = argv[a] + 10;
            if (!*path) *bad = 1;
        } else {
            argv[out++] = argv[a];
        }
    }
    *argc = out;
    argv[out] = NULL;
    return path && *path ? path : NULL;
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    cw_info("devbroker.stopping", "signal=%d", (int)sig);
    event_base_loopbreak(arg);
}

int main(int argc, char **argv)
{
    char err[1024];
    cw_config *cfg;
    int bad_control;
    const char *control_path = take_control_flag(&argc, argv, &bad_control);
    int rc = cw_config_load(&cfg, CW_SVC_DEVBROKER, "devbroker", argc, argv, err, sizeof err);
    if (rc == CW_CONFIG_EXIT) {
        bool help = false; /* --config-doc also exits here: its Markdown gets nothing of ours */
        for (int a = 1; a < argc; a++) help |= !strcmp(argv[a], "--help") || !strcmp(argv[a], "-h");
        if (help)
            printf("  --%-24s %s\n      %s\n      %s\n", "control PATH",
                   "devbroker: make a FIFO at PATH and take commands from it, one a line:",
                   "down all|<id>, up all|<id>, rtt all|<id> <ms>, errors <api> <error> <count>",
                   "(docs/devbroker.md; default: no control FIFO)");
        return 0;
    }
    if (bad_control) {
        fprintf(stderr, "casewire-devbroker: --control needs a path\n");
        if (rc == CW_CONFIG_OK) cw_config_free(cfg);
        return 2;
    }
    if (rc != CW_CONFIG_OK) {
        fprintf(stderr, "casewire-devbroker: %s\n", err);
        return 2;
    }
    cw_log_init("devbroker", cw_config_str(cfg, CW_SET_LOG_LEVEL));
    cw_config_log(cfg);
    const char *bootfile = cw_config_str(cfg, CW_SET_DEVBROKER_BOOTSTRAP_FILE);
    int exit_code = 1;
    struct control control = {.fd = -1};

    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set_log_cb(conf, on_log);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        cw_error("devbroker.start_failed", "reason=\"%s\"", err);
        rd_kafka_conf_destroy(conf);
        goto out_cfg;
    }
    rd_kafka_mock_cluster_t *mc =
        rd_kafka_mock_cluster_new(rk, (int)cw_config_int(cfg, CW_SET_DEVBROKER_BROKERS));
    if (!mc) {
        cw_error("devbroker.start_failed", "reason=\"mock cluster could not start\"");
        goto out_rk;
    }
    if (create_topics(mc, cfg) != 0) goto out_mc;
    const char *bootstrap = rd_kafka_mock_cluster_bootstraps(mc);
    struct event_base *base = event_base_new();
    struct event *sigterm = base ? evsignal_new(base, SIGTERM, on_signal, base) : NULL;
    struct event *sigint = base ? evsignal_new(base, SIGINT, on_signal, base) : NULL;
    if (!sigterm || !sigint || evsignal_add(sigterm, NULL) || evsignal_add(sigint, NULL)) {
        cw_error("devbroker.start_failed", "reason=\"cannot set up the event loop\"");
        goto out_loop;
    }
    if (control_path) {
        control.mc = mc;
        control.base = base;
        control.brokers = (int)cw_config_int(cfg, CW_SET_DEVBROKER_BROKERS);
        if (strlen(control_path) >= sizeof control.path) {
            cw_error("devbroker.start_failed", "reason=\"--control path too long\"");
            goto out_loop;
        }
        snprintf(control.path, sizeof control.path, "%s", control_path);
        if (control_start(&control) != 0) {
            cw_error("devbroker.start_failed",
                     "path=%s reason=\"cannot make the control FIFO: %s\"", control.path,
                     strerror(errno));
            control.path[0] = '\0';
            goto out_loop;
        }
        cw_info("devbroker.control_ready", "path=%s brokers=%d", control.path, control.brokers);
    }
    if (write_bootstrap(bootfile, bootstrap) != 0) {
        cw_error("devbroker.start_failed", "file=%s reason=\"cannot write bootstrap file: %s\"",
                 bootfile, strerror(errno));
        goto out_loop;
    }
    printf("devbroker ready: KAFKA_BROKERS=%s\n", bootstrap);
    fflush(stdout);
    cw_info("devbroker.ready", "bootstrap=%s file=%s", bootstrap, bootfile);
    event_base_dispatch(base);
    unlink(bootfile);
    exit_code = 0;
out_loop:
    control_close(&control);
    if (control.path[0]) unlink(control.path);
    if (sigterm) event_free(sigterm);
    if (sigint) event_free(sigint);
    if (base) event_base_free(base);
out_mc:
    rd_kafka_mock_cluster_destroy(mc);
out_rk:
    rd_kafka_destroy(rk);
out_cfg:
    cw_config_free(cfg);
    return exit_code;
}
