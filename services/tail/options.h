/*
 * casewire-tail's command line: what to read, from where, and when to stop. Parsed once at
 * start-up with getopt_long; every problem is a usage error (exit 2) named on stderr.
 */
#ifndef CW_TAIL_OPTIONS_H
#define CW_TAIL_OPTIONS_H

#include <stddef.h>

#define TAIL_PROG "casewire-tail"
#define TAIL_EXIT_USAGE 2

struct tail_options {
    const char *brokers;        /* --kafka-brokers, else $KAFKA_BROKERS (unless a file) */
    const char *bootstrap_file; /* --bootstrap-file: the caller reads it (tail_bootstrap_read) */
    const char *kafka_conf;     /* --kafka-conf, else $CASEWIRE_KAFKA_CONF; may be NULL */
    const char *key;            /* --key: only records with this key; NULL for all */
    const char **topics;        /* malloc'd array of names (pointing into argv or cw_topics) */
    size_t ntopics;
    int from_beginning, until_end, unmasked, quiet;
    long long count;  /* 0: no limit */
    double timeout_s; /* 0: none */
};

/* 0 ready, 1 after printing --help (exit 0), -1 after printing a usage error (exit 2), -2
 * out of memory (printed; exit 1). Call tail_options_release in every case. */
int tail_options_parse(struct tail_options *o, int argc, char **argv);
void tail_options_release(struct tail_options *o);

/* The first line of the devbroker's bootstrap file into buf; -1 with a message on stderr. */
int tail_bootstrap_read(const char *path, char *buf, size_t len);

#endif
