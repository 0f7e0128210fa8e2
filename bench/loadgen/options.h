/* loadgen's command line (options.c) and what it yields. */
#ifndef LG_OPTIONS_H
#define LG_OPTIONS_H

#include <stdint.h>

#define MAX_CONNECTIONS 10000
#define MAX_SECONDS 600.0
#define MAX_RATE 1000000.0

struct lg_opts {
    char host[256];
    char port[8];
    char path[1024];
    char host_header[300];
    int post;
    int connections;
    double duration_s, warmup_s, rate, timeout_s;
    int idempotency;
    uint64_t seed;
    int sample;
    char log_path[1024]; /* --log: one line per counted request, "" for none */
};

/* 0: run; 1: --help was printed (exit 0); -1: bad usage, said on stderr (exit 2). */
int opts_parse(struct lg_opts *o, int argc, char **argv);

#endif
