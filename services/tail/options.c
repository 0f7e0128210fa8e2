#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "event.h"

static void print_help(FILE *out)
{
    fprintf(out,
            "usage: " TAIL_PROG " [options]\n"
            "Prints every record of the casewire topics as one JSON object per line on stdout:\n"
            "topic, partition, offset, key (the case id), timestamp_ms and the decoded event;\n"
            "a record that does not decode is printed with \"error\" and \"value_length\".\n"
            "Joins no consumer group and commits no offsets: it never disturbs the services.\n"
            "\n"
            "  --kafka-brokers LIST    Kafka bootstrap servers host:port[,host:port]\n"
            "                          (default: $KAFKA_BROKERS)\n"
            "  --bootstrap-file PATH   read the brokers from the devbroker's bootstrap file\n"
            "                          (var/run/kafka.bootstrap under make run)\n"
            "  --kafka-conf K=V[,K=V]  more librdkafka properties, e.g. TLS and SASL for a real\n"
            "                          cluster (default: $CASEWIRE_KAFKA_CONF)\n"
            "  --topic T[,T...]        topics to read, repeatable (default: every casewire\n"
            "                          topic)\n"
            "  --from-beginning        start at the oldest record (default: only records\n"
            "                          written after start)\n"
            "  --until-end             exit 0 once every partition reached the end it had at\n"
            "                          start (with --from-beginning: a dump of the topics)\n"
            "  --count N               exit 0 after printing N records (with --until-end:\n"
            "                          whichever comes first)\n"
            "  --timeout S             exit 1 after S seconds (decimals allowed) unless --count\n"
            "                          or --until-end finished first (default: no limit)\n"
            "  --key K                 only records with this key (a case id)\n"
            "  --unmasked              print personal data (customer names and phone numbers)\n"
            "                          in clear: only for tests and authorised debugging. By\n"
            "                          default names and phones are masked like in the logs\n"
            "                          (\"张**\", \"*******8000\") and phone-shaped numbers in\n"
            "                          any other text are scrubbed.\n"
            "  --quiet                 no \"reading ...\" line on stderr once started\n"
            "  --help                  this text\n"
            "\n"
            "Exit status: 0 done (or stopped by SIGINT/SIGTERM while following), 1 Kafka\n"
            "unreachable, unknown topic, --timeout, output error, 2 bad usage.\n"
            "Example: " TAIL_PROG " --from-beginning --until-end --key 01JD... | jq .event\n");
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, TAIL_PROG ": ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n" TAIL_PROG ": try '" TAIL_PROG " --help'\n");
    va_end(ap);
    return -1;
}

/* Not the user's fault: exit 1, not 2. */
static int out_of_memory(void)
{
    fprintf(stderr, TAIL_PROG ": out of memory\n");
    return -2;
}

/* Kafka's own rule for topic names, so a typo is refused before any network round trip. */
static int topic_name_valid(const char *t, size_t n)
{
    if (n == 0 || n > 249) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Adds each name of a comma list (arg stays alive: it is argv), skipping duplicates. */
static int add_topics(struct tail_options *o, char *arg)
{
    char *save = NULL;
    /* strtok_r would skip empty items silently: "a,,b" is a typo worth naming. */
    if (!*arg || *arg == ',' || arg[strlen(arg) - 1] == ',' || strstr(arg, ",,"))
        return usage_error("--topic: empty topic name in '%s'", arg);
    for (char *t = strtok_r(arg, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!topic_name_valid(t, strlen(t)))
            return usage_error("--topic: '%s' is not a valid topic name", t);
        int dup = 0;
        for (size_t i = 0; i < o->ntopics; i++) dup |= strcmp(o->topics[i], t) == 0;
        if (dup) continue;
        const char **nt = realloc(o->topics, (o->ntopics + 1) * sizeof *nt);
        if (!nt) return out_of_memory();
        o->topics = nt;
        o->topics[o->ntopics++] = t;
    }
    return 0;
}

int tail_options_parse(struct tail_options *o, int argc, char **argv)
{
    enum {
        O_BROKERS = 256,
        O_BOOTSTRAP,
        O_CONF,
        O_TOPIC,
        O_BEGIN,
        O_UNTIL,
        O_COUNT,
        O_TIMEOUT,
        O_KEY,
        O_UNMASKED,
        O_QUIET,
        O_HELP
    };
    static const struct option longopts[] = {
        {"kafka-brokers", required_argument, NULL, O_BROKERS},
        {"bootstrap-file", required_argument, NULL, O_BOOTSTRAP},
        {"kafka-conf", required_argument, NULL, O_CONF},
        {"topic", required_argument, NULL, O_TOPIC},
        {"from-beginning", no_argument, NULL, O_BEGIN},
        {"until-end", no_argument, NULL, O_UNTIL},
        {"count", required_argument, NULL, O_COUNT},
        {"timeout", required_argument, NULL, O_TIMEOUT},
        {"key", required_argument, NULL, O_KEY},
        {"unmasked", no_argument, NULL, O_UNMASKED},
        {"quiet", no_argument, NULL, O_QUIET},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    char *end;
    int c, rc;
    opterr = 0; /* our own messages, with the --help hint */
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case O_BROKERS: o->brokers = optarg; break;
        case O_BOOTSTRAP: o->bootstrap_file = optarg; break;
        case O_CONF: o->kafka_conf = optarg; break;
        case O_TOPIC:
            if ((rc = add_topics(o, optarg)) != 0) return rc;
            break;
        case O_BEGIN: o->from_beginning = 1; break;
        case O_UNTIL: o->until_end = 1; break;
        case O_COUNT:
            errno = 0;
            o->count = strtoll(optarg, &end, 10);
            if (errno || end == optarg || *end || o->count < 1)
                return usage_error("--count: '%s' is not a whole number of at least 1", optarg);
            break;
        case O_TIMEOUT:
            errno = 0;
            o->timeout_s = strtod(optarg, &end);
            if (errno || end == optarg || *end || !isfinite(o->timeout_s) || o->timeout_s <= 0 ||
                o->timeout_s > 31536000)
                return usage_error("--timeout: '%s' is not a number of seconds above 0", optarg);
            break;
        case O_KEY:
            if (!*optarg) return usage_error("--key: empty key");
            o->key = optarg;
            break;
        case O_UNMASKED: o->unmasked = 1; break;
        case O_QUIET: o->quiet = 1; break;
        case O_HELP: print_help(stdout); return 1;
        default:
            /* getopt_long sets optopt to the option's value when its argument is wrong. */
            for (const struct option *lo = longopts; optopt && lo->name; lo++)
                if (lo->val == optopt)
                    return usage_error("--%s %s", lo->name,
                                       lo->has_arg ? "needs a value" : "takes no value");
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc) return usage_error("unexpected argument '%s'", argv[optind]);
    if (o->brokers && o->bootstrap_file)
        return usage_error("give --kafka-brokers or --bootstrap-file, not both");
    if (!o->brokers && !o->bootstrap_file) {
        o->brokers = getenv("KAFKA_BROKERS");
        if (!o->brokers || !*o->brokers)
            return usage_error("no Kafka: give --kafka-brokers, --bootstrap-file or set "
                               "KAFKA_BROKERS");
    }
    if (!o->kafka_conf) o->kafka_conf = getenv("CASEWIRE_KAFKA_CONF");
    if (o->ntopics == 0) {
        o->topics = malloc(cw_topics_count * sizeof *o->topics);
        if (!o->topics) return out_of_memory();
        for (size_t i = 0; i < cw_topics_count; i++) o->topics[i] = cw_topics[i];
        o->ntopics = cw_topics_count;
    }
    return 0;
}

int tail_bootstrap_read(const char *path, char *buf, size_t len)
{
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr,
                TAIL_PROG ": cannot read bootstrap file %s: %s (is the devbroker running?)\n", path,
                strerror(errno));
        return -1;
    }
    int ok = fgets(buf, (int)len, f) != NULL;
    fclose(f);
    buf[ok ? strcspn(buf, " \t\r\n") : 0] = '\0';
    if (!*buf) {
        fprintf(stderr, TAIL_PROG ": bootstrap file %s is empty\n", path);
        return -1;
    }
    return 0;
}

void tail_options_release(struct tail_options *o)
{
    free(o->topics);
    o->topics = NULL;
    o->ntopics = 0;
}
