/* loadgen's command line: --help text, parsing and checking every option. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include "options.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: loadgen [options]\n"
        "\n"
        "HTTP/1.1 keep-alive load against one URL; prints one line of key=value pairs.\n"
        "Default: POST realistic ~1 KiB complaints (docs/api.md POST /v1/cases), each with a\n"
        "distinct phone number and a unique Idempotency-Key.\n"
        "\n"
        "  -u, --url URL          http://HOST:PORT/PATH (default http://127.0.0.1:8080/v1/cases)\n"
        "  -c, --connections N    keep-alive connections, 1..%d (default 64)\n"
        "  -d, --duration S       measured seconds, after the warm-up, up to %.0f (default 10)\n"
        "  -w, --warmup S         seconds of load first, not counted (default 2)\n"
        "  -r, --rate R           open loop: R requests/s on a fixed schedule, latency from the\n"
        "                         scheduled time (a request waiting for a free connection counts\n"
        "                         its wait); without it, closed loop: each connection sends its\n"
        "                         next request when the answer arrives\n"
        "  -t, --timeout S        a request unanswered after S seconds is a timeout; also how\n"
        "                         long requests in flight at the end may finish (default 10)\n"
        "  -m, --method M         POST (default) or GET (no body)\n"
        "      --no-idempotency   send no Idempotency-Key header\n"
        "      --seed N           random seed for the bodies (default: from the clock)\n"
        "      --sample           print one request body and exit\n"
        "      --log FILE         also write one line per counted request to FILE, when it\n"
        "                         is answered (or given up): \"seq due_us phone status\",\n"
        "                         due_us its due (open loop) or send (closed loop) time in\n"
        "                         microseconds since the epoch, phone the body's customer\n"
        "                         phone, status the HTTP status (0: error or timeout, -1:\n"
        "                         still in flight at the end)\n"
        "  -h, --help             this help\n"
        "\n"
        "Output keys:\n"
        "  mode connections duration_s  what ran (duration_s: the measured time)\n"
        "  sent completed               counted requests sent and answered\n"
        "  status_2xx .. status_5xx     answers by class\n"
        "  errors                       connection reset or unparsable answer, request in flight\n"
        "  timeouts unfinished          no answer within --timeout; still in flight at the end\n"
        "  connect_errors reconnects    failed connects; connections opened again\n"
        "  rate_2xx                     2xx answers per measured second\n"
        "  offered_rate offered         open loop: the schedule, per second and in all\n"
        "  late                         open loop: sent over 1 ms after due, waiting for a free\n"
        "                               connection (the server was slow)\n"
        "  loader_late                  open loop: sent over 1 ms after due because this\n"
        "                               program woke late (it was short of CPU)\n"
        "  unsent                       open loop: due, never sent before the end\n"
        "  warmup_skipped               open loop: warm-up requests still waiting when the\n"
        "                               measured time began, dropped\n"
        "  p50_ms p90_ms p99_ms p999_ms max_ms  latency of every counted answer, any status,\n"
        "                               within 1 %%\n"
        "  body_bytes_avg               average request body\n"
        "The first answer of each non-2xx status is shown on stderr.\n",
        MAX_CONNECTIONS, MAX_SECONDS);
}

static int parse_double(const char *s, double lo, double hi, double *out, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < lo || v > hi) {
        fprintf(stderr, "loadgen: %s must be a number in %g..%g, not \"%s\"\n", what, lo, hi, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_url(struct lg_opts *o, const char *url)
{
    if (strncmp(url, "http://", 7) != 0) {
        fprintf(stderr, "loadgen: only http:// URLs are supported, not \"%s\"\n", url);
        return -1;
    }
    const char *h = url + 7, *slash = strchr(h, '/');
    size_t hostport_len = slash ? (size_t)(slash - h) : strlen(h);
    const char *colon = memchr(h, ':', hostport_len);
    size_t host_len = colon ? (size_t)(colon - h) : hostport_len;
    size_t port_len = colon ? hostport_len - host_len - 1 : 2;
    const char *path = slash ? slash : "/";
    if (host_len == 0 || host_len >= sizeof o->host || port_len == 0 ||
        port_len >= sizeof o->port || strlen(path) >= sizeof o->path) {
        fprintf(stderr, "loadgen: cannot use URL \"%s\" (http://HOST[:PORT]/PATH)\n", url);
        return -1;
    }
    memcpy(o->host, h, host_len);
    o->host[host_len] = '\0';
    if (colon) {
        memcpy(o->port, colon + 1, port_len);
        o->port[port_len] = '\0';
    } else {
        strcpy(o->port, "80");
    }
    strcpy(o->path, path);
    snprintf(o->host_header, sizeof o->host_header, "%.*s", (int)hostport_len, h);
    return 0;
}

/* 0: run; 1: help shown; -1: bad usage. */
int opts_parse(struct lg_opts *o, int argc, char **argv)
{
    enum { OPT_NO_IDEMPOTENCY = 256, OPT_SEED, OPT_SAMPLE, OPT_LOG };
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'},
        {"method", required_argument, NULL, 'm'},
        {"no-idempotency", no_argument, NULL, OPT_NO_IDEMPOTENCY},
        {"seed", required_argument, NULL, OPT_SEED},
        {"sample", no_argument, NULL, OPT_SAMPLE},
        {"log", required_argument, NULL, OPT_LOG},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *url = "http://127.0.0.1:8080/v1/cases";
    double conns = 64;
    *o = (struct lg_opts){
        .post = 1, .duration_s = 10, .warmup_s = 2, .timeout_s = 10, .idempotency = 1};
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    o->seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid() ^ (uint64_t)ts.tv_nsec;
    int ch, rc = 0;
    while (rc == 0 && (ch = getopt_long(argc, argv, "u:c:d:w:r:t:m:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': url = optarg; break;
        case 'c': rc = parse_double(optarg, 1, MAX_CONNECTIONS, &conns, "--connections"); break;
        case 'd':
            rc = parse_double(optarg, 0.001, MAX_SECONDS, &o->duration_s, "--duration");
            break;
        case 'w': rc = parse_double(optarg, 0, MAX_SECONDS, &o->warmup_s, "--warmup"); break;
        case 'r': rc = parse_double(optarg, 0.001, MAX_RATE, &o->rate, "--rate"); break;
        case 't': rc = parse_double(optarg, 0.001, MAX_SECONDS, &o->timeout_s, "--timeout"); break;
        case 'm':
            if (strcasecmp(optarg, "GET") == 0 || strcasecmp(optarg, "POST") == 0) {
                o->post = strcasecmp(optarg, "POST") == 0;
            } else {
                fprintf(stderr, "loadgen: --method is GET or POST, not \"%s\"\n", optarg);
                rc = -1;
            }
            break;
        case OPT_NO_IDEMPOTENCY: o->idempotency = 0; break;
        case OPT_SEED: {
            char *end;
            errno = 0;
            o->seed = strtoull(optarg, &end, 0);
            if (errno || end == optarg || *end) {
                fprintf(stderr, "loadgen: --seed must be a whole number, not \"%s\"\n", optarg);
                rc = -1;
            }
            break;
        }
        case OPT_SAMPLE: o->sample = 1; break;
        case OPT_LOG:
            if (strlen(optarg) >= sizeof o->log_path) {
                fprintf(stderr, "loadgen: --log path too long\n");
                rc = -1;
            } else {
                strcpy(o->log_path, optarg);
            }
            break;
        case 'h': usage(stdout); return 1;
        default: rc = -1;
        }
    }
    if (rc == 0 && optind < argc) {
        fprintf(stderr, "loadgen: unexpected argument \"%s\"\n", argv[optind]);
        rc = -1;
    }
    if (rc == 0 && conns != (int)conns) {
        fprintf(stderr, "loadgen: --connections must be a whole number\n");
        rc = -1;
    }
    o->connections = (int)conns;
    if (rc == 0) rc = parse_url(o, url);
    if (rc < 0) fprintf(stderr, "loadgen: see --help\n");
    return rc;
}
