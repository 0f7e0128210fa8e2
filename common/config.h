/*
 * Settings: one table (CW_SETTINGS below) with each setting's flag, environment variable,
 * type, default, bounds, help and the services that use it. Values come from the default,
 * then the environment, then command-line flags (--name=value or --name value); everything is
 * validated at start-up and read-only afterwards. `casewire-<service> --help` prints the
 * table for that service; docs/configuration.md is generated from it (make docs).
 */
#ifndef CW_CONFIG_H
#define CW_CONFIG_H

#include <stdio.h>

enum cw_service_id {
    CW_SVC_GATEWAY = 1 << 0,
    CW_SVC_ROUTER = 1 << 1,
    CW_SVC_DEADLINE = 1 << 2,
    CW_SVC_NOTIFIER = 1 << 3,
    CW_SVC_DEVBROKER = 1 << 4,
};
#define CW_SVC_WORKERS (CW_SVC_ROUTER | CW_SVC_DEADLINE | CW_SVC_NOTIFIER)
#define CW_SVC_STACK (CW_SVC_GATEWAY | CW_SVC_WORKERS)
#define CW_SVC_ALL (CW_SVC_STACK | CW_SVC_DEVBROKER)

enum cw_setting_type { CW_T_STRING, CW_T_INT, CW_T_MS, CW_T_BOOL };

/* X(id, flag, env, type, default, min, max, services, secret, help) */
#define CW_SETTINGS(X)                                                                             \
    X(LOG_LEVEL, "log-level", "CASEWIRE_LOG_LEVEL", CW_T_STRING, "info", 0, 0, CW_SVC_ALL, 0,      \
      "debug, info, warn or error")                                                                \
    X(CHAIN, "chain", "CASEWIRE_CHAIN", CW_T_STRING, "deploy/chain.example.yaml", 0, 0,            \
      CW_SVC_STACK, 0, "the chain file (YAML): sites, staff, tenants, policies, rules, templates") \
    X(KAFKA_BROKERS, "kafka-brokers", "KAFKA_BROKERS", CW_T_STRING, "", 0, 0, CW_SVC_STACK, 0,     \
      "Kafka bootstrap servers, host:port[,host:port]")                                            \
    X(KAFKA_CONF, "kafka-conf", "CASEWIRE_KAFKA_CONF", CW_T_STRING, "", 0, 0, CW_SVC_STACK, 1,     \
      "more librdkafka properties, key=value[,key=value] (TLS, SASL; tuning such as linger.ms); "  \
      "acks, idempotence, message timeout, group id and offset handling stay casewire's")          \
    X(KAFKA_DELIVERY_TIMEOUT, "kafka-delivery-timeout", "CASEWIRE_KAFKA_DELIVERY_TIMEOUT",         \
      CW_T_MS, "30s", 1000, 900000, CW_SVC_STACK, 0,                                               \
      "give up on a produced message after this long (librdkafka message.timeout.ms)")             \
    X(KAFKA_MAX_INFLIGHT, "kafka-max-inflight", "CASEWIRE_KAFKA_MAX_INFLIGHT", CW_T_INT, "1000",   \
      1, 100000, CW_SVC_WORKERS, 0,                                                                \
      "consumed messages being worked on at once before fetching pauses")                          \
    X(REDIS_URL, "redis-url", "REDIS_URL", CW_T_STRING, "redis://127.0.0.1:6379", 0, 0,            \
      CW_SVC_STACK, 1, "Redis, redis://[:password@]host:port[/db]")                                \
    X(REDIS_TIMEOUT, "redis-timeout", "CASEWIRE_REDIS_TIMEOUT", CW_T_MS, "2s", 10, 60000,          \
      CW_SVC_STACK, 0, "a Redis command without an answer after this long fails")                  \
    X(REDIS_MAX_INFLIGHT, "redis-max-inflight", "CASEWIRE_REDIS_MAX_INFLIGHT", CW_T_INT, "10000",  \
      1, 1000000, CW_SVC_STACK, 0, "Redis commands in flight before new ones are refused")         \
    X(HTTP_BIND, "http-bind", "CASEWIRE_HTTP_BIND", CW_T_STRING, "127.0.0.1", 0, 0,                \
      CW_SVC_GATEWAY, 0, "address the gateway listens on (0.0.0.0 for all)")                       \
    X(HTTP_PORT, "http-port", "CASEWIRE_HTTP_PORT", CW_T_INT, "8080", 0, 65535, CW_SVC_GATEWAY, 0, \
      "gateway HTTP port (0: any free port)")                                                      \
    X(HTTP_REUSE_PORT, "http-reuse-port", "CASEWIRE_HTTP_REUSE_PORT", CW_T_BOOL, "false", 0, 1,    \
      CW_SVC_GATEWAY, 0,                                                                           \
      "share the port with other gateways on this host (SO_REUSEPORT: the kernel spreads new "     \
      "connections over them)")                                                                    \
    X(HTTP_MAX_BODY, "http-max-body", "CASEWIRE_HTTP_MAX_BODY", CW_T_INT, "65536", 1024, 16777216, \
      CW_SVC_GATEWAY, 0, "largest request body in bytes; bigger ones are answered 413")            \
    X(HTTP_REQUEST_TIMEOUT, "http-request-timeout", "CASEWIRE_HTTP_REQUEST_TIMEOUT", CW_T_MS,      \
      "10s", 100, 600000, CW_SVC_GATEWAY, 0,                                                       \
      "a request's headers and body must arrive within this long of its first byte, else the "     \
      "connection is closed")                                                                      \
    X(HTTP_MAX_CONNECTIONS, "http-max-connections", "CASEWIRE_HTTP_MAX_CONNECTIONS", CW_T_INT,     \
      "10000", 1, 1000000, CW_SVC_GATEWAY, 0,                                                      \
      "open client connections; beyond this new ones wait in the kernel's backlog")                \
    X(REPLY_TIMEOUT, "reply-timeout", "CASEWIRE_REPLY_TIMEOUT", CW_T_MS, "5s", 100, 60000,         \
      CW_SVC_GATEWAY, 0,                                                                           \
      "a write Kafka and Redis have not confirmed within this long is answered 503 (retry)")       \
    X(RATE_IP_PER_MIN, "rate-ip-per-min", "CASEWIRE_RATE_IP_PER_MIN", CW_T_INT, "60", 0,           \
      100000000, CW_SVC_GATEWAY, 0, "public requests per client IP and minute (0: no limit)")      \
    X(RATE_IP_BURST, "rate-ip-burst", "CASEWIRE_RATE_IP_BURST", CW_T_INT, "20", 1, 100000000,      \
      CW_SVC_GATEWAY, 0, "public requests one client IP may send at once above its rate")          \
    X(RATE_PHONE_PER_HOUR, "rate-phone-per-hour", "CASEWIRE_RATE_PHONE_PER_HOUR", CW_T_INT, "10",  \
      0, 100000000, CW_SVC_GATEWAY, 0,                                                             \
      "public cases per customer phone number and hour (0: no limit)")                             \
    X(RATE_TENANT_PER_MIN, "rate-tenant-per-min", "CASEWIRE_RATE_TENANT_PER_MIN", CW_T_INT,        \
      "6000", 0, 100000000, CW_SVC_GATEWAY, 0,                                                     \
      "tenant API requests per tenant and minute (0: no limit)")                                   \
    X(ADMIN_BIND, "admin-bind", "CASEWIRE_ADMIN_BIND", CW_T_STRING, "127.0.0.1", 0, 0,             \
      CW_SVC_WORKERS, 0, "address of a worker's /healthz, /readyz and /metrics")                   \
    X(ADMIN_PORT, "admin-port", "CASEWIRE_ADMIN_PORT", CW_T_INT, "0", 0, 65535, CW_SVC_WORKERS, 0, \
      "worker admin HTTP port (0: any free port; the bound port is logged)")                       \
    X(SHUTDOWN_TIMEOUT, "shutdown-timeout", "CASEWIRE_SHUTDOWN_TIMEOUT", CW_T_MS, "8s", 100,       \
      120000, CW_SVC_ALL, 0, "finish in-flight work and stop within this long after SIGTERM")      \
    X(RULES_CACHE, "rules-cache", "CASEWIRE_RULES_CACHE", CW_T_STRING, "var/cache/rules", 0, 0,    \
      CW_SVC_ROUTER, 0,                                                                            \
      "directory for compiled classification rules, so a restart loads them in milliseconds "      \
      "instead of compiling them again (empty: compile at every start)")                           \
    X(DEADLINE_LEASE, "lease", "CASEWIRE_DEADLINE_LEASE", CW_T_MS, "5s", 200, 600000,              \
      CW_SVC_DEADLINE, 0,                                                                          \
      "deadline worker: a claimed timer is this worker's for this long; if it dies, another "      \
      "worker fires the timer after it (the bound on lateness when a worker dies)")                \
    X(DEADLINE_BATCH, "claim-batch", "CASEWIRE_DEADLINE_BATCH", CW_T_INT, "256", 1, 10000,         \
      CW_SVC_DEADLINE, 0, "deadline worker: most timers taken from a shard in one claim")          \
    X(DEVBROKER_BROKERS, "brokers", "CASEWIRE_DEVBROKER_BROKERS", CW_T_INT, "3", 1, 9,             \
      CW_SVC_DEVBROKER, 0, "devbroker: number of mock brokers")                                    \
    X(DEVBROKER_PARTITIONS, "partitions", "CASEWIRE_DEVBROKER_PARTITIONS", CW_T_INT, "6", 1, 256,  \
      CW_SVC_DEVBROKER, 0, "devbroker: partitions per topic")                                      \
    X(DEVBROKER_TOPICS, "topics", "CASEWIRE_DEVBROKER_TOPICS", CW_T_STRING, "", 0, 0,              \
      CW_SVC_DEVBROKER, 0,                                                                         \
      "devbroker: extra topics to create, comma separated (the project's "                         \
      "topics are always created)")                                                                \
    X(DEVBROKER_BOOTSTRAP_FILE, "bootstrap-file", "CASEWIRE_DEVBROKER_BOOTSTRAP_FILE",             \
      CW_T_STRING, "var/run/kafka.bootstrap", 0, 0, CW_SVC_DEVBROKER, 0,                           \
      "devbroker: write the bootstrap address here once the topics exist")

enum cw_setting {
#define CW_SETTING_ENUM(id, ...) CW_SET_##id,
    CW_SETTINGS(CW_SETTING_ENUM)
#undef CW_SETTING_ENUM
        CW_SET__COUNT
};

typedef struct cw_config cw_config;

enum cw_config_result { CW_CONFIG_OK = 0, CW_CONFIG_EXIT = 1, CW_CONFIG_ERROR = -1 };

/* Builds the configuration of `service` (one of enum cw_service_id) from defaults, the
 * environment and argv. Returns CW_CONFIG_OK with *out set; CW_CONFIG_EXIT after printing
 * --help or --config-doc; CW_CONFIG_ERROR with every problem described in err. */
int cw_config_load(cw_config **out, unsigned service, const char *service_name, int argc,
                   char **argv, char *err, size_t errlen);
void cw_config_free(cw_config *c);

const char *cw_config_str(const cw_config *c, enum cw_setting s);
long long cw_config_int(const cw_config *c,
                        enum cw_setting s); /* CW_T_INT, CW_T_MS (in ms), BOOL */
/* Where a value came from: "default", "env" or "flag". */
const char *cw_config_source(const cw_config *c, enum cw_setting s);

/* Logs the effective settings of this service, secrets masked. */
void cw_config_log(const cw_config *c);
void cw_config_print_help(unsigned service, const char *service_name, FILE *out);
/* The whole table as Markdown, for docs/configuration.md. */
void cw_config_print_markdown(FILE *out);

#endif
