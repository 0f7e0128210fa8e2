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
 * 4. On SIGTERM/SIGINT: remove the file, destroy the cluster, exit 0.
 */
#include <errno.h>
#include <event2/event.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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
    cw_info("devbroker.topic", "topic=%s partitions=%d replication=%d", topic, partitions, replication);
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
    for (char *t = extra ? strtok_r(extra, ",", &save) : NULL; t && rc == 0; t = strtok_r(NULL, ",", &save))
        rc = create_topic(mc, t, partitions, brokers);
    free(extra);
    return rc;
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
    int rc = cw_config_load(&cfg, CW_SVC_DEVBROKER, "devbroker", argc, argv, err, sizeof err);
    if (rc == CW_CONFIG_EXIT) return 0;
    if (rc != CW_CONFIG_OK) {
        fprintf(stderr, "casewire-devbroker: %s\n", err);
        return 2;
    }
    cw_log_init("devbroker", cw_config_str(cfg, CW_SET_LOG_LEVEL));
    cw_config_log(cfg);
    const char *bootfile = cw_config_str(cfg, CW_SET_DEVBROKER_BOOTSTRAP_FILE);
    int exit_code = 1;

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
    if (write_bootstrap(bootfile, bootstrap) != 0) {
        cw_error("devbroker.start_failed", "file=%s reason=\"cannot write bootstrap file: %s\"", bootfile,
                 strerror(errno));
        goto out_loop;
    }
    printf("devbroker ready: KAFKA_BROKERS=%s\n", bootstrap);
    fflush(stdout);
    cw_info("devbroker.ready", "bootstrap=%s file=%s", bootstrap, bootfile);
    event_base_dispatch(base);
    unlink(bootfile);
    exit_code = 0;
out_loop:
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
