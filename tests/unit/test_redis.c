/* cw_redis without a server: URL parsing, option validation, refusal while not connected. */
#include "testing.h"
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/event.h>

#include "log.h"
#include "redis.h"

static struct cw_redis_options parse_ok(const char *url)
{
    struct cw_redis_options o;
    char err[256] = "";
    cw_redis_options_init(&o);
    ck_assert_msg(cw_redis_parse_url(url, &o, err, sizeof err) == 0, "%s: %s", url, err);
    return o;
}

START_TEST(url_good)
{
    struct cw_redis_options o = parse_ok("redis://127.0.0.1:6379");
    ck_assert_str_eq(o.host, "127.0.0.1");
    ck_assert_int_eq(o.port, 6379);
    ck_assert_int_eq(o.db, 0);
    ck_assert_str_eq(o.password, "");
    ck_assert_str_eq(o.username, "");

    o = parse_ok("redis://:s3cret@redis.internal:6380/2");
    ck_assert_str_eq(o.host, "redis.internal");
    ck_assert_int_eq(o.port, 6380);
    ck_assert_int_eq(o.db, 2);
    ck_assert_str_eq(o.password, "s3cret");
    ck_assert_str_eq(o.username, "");

    o = parse_ok("redis://svc:p%40ss%3Aw0rd@cache/15");
    ck_assert_str_eq(o.username, "svc");
    ck_assert_str_eq(o.password, "p@ss:w0rd");
    ck_assert_str_eq(o.host, "cache");
    ck_assert_int_eq(o.port, 6379); /* default port */
    ck_assert_int_eq(o.db, 15);

    o = parse_ok("redis://[::1]:7000/1");
    ck_assert_str_eq(o.host, "::1");
    ck_assert_int_eq(o.port, 7000);
    ck_assert_int_eq(o.db, 1);

    o = parse_ok("redis://localhost/");
    ck_assert_str_eq(o.host, "localhost");
    ck_assert_int_eq(o.db, 0);
}
END_TEST

START_TEST(url_keeps_other_options)
{
    struct cw_redis_options o;
    char err[256];
    cw_redis_options_init(&o);
    o.command_timeout_ms = 1234;
    o.max_inflight = 7;
    ck_assert_int_eq(cw_redis_parse_url("redis://h:1/3", &o, err, sizeof err), 0);
    ck_assert_int_eq(o.command_timeout_ms, 1234);
    ck_assert_int_eq(o.max_inflight, 7);
}
END_TEST

START_TEST(url_bad)
{
    struct {
        const char *url, *want;
    } cases[] = {
        {"http://127.0.0.1:6379", "redis://"},
        {"rediss://127.0.0.1:6379", "TLS"},
        {"", "redis://"},
        {"redis://", "missing host"},
        {"redis://:6379", "missing host"},
        {"redis://host:0", "bad port"},
        {"redis://host:65536", "bad port"},
        {"redis://host:63x9", "bad port"},
        {"redis://host:", "bad port"},
        {"redis://host/x", "bad db"},
        {"redis://host/-1", "bad db"},
        {"redis://host/1?timeout=3", "bad db"},
        {"redis://host?db=1", "query"},
        {"redis://pw@host", "credentials"},
        {"redis://:%zz@host", "encoded"},
        {"redis://[::1:6379", "unterminated"},
        {"redis://[::1]x", "junk"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct cw_redis_options o, before;
        char err[256] = "";
        cw_redis_options_init(&o);
        before = o;
        ck_assert_msg(cw_redis_parse_url(cases[i].url, &o, err, sizeof err) == -1, "%s accepted",
                      cases[i].url);
        ck_assert_msg(strstr(err, cases[i].want) != NULL, "%s: \"%s\" lacks \"%s\"", cases[i].url,
                      err, cases[i].want);
        ck_assert_msg(memcmp(&o, &before, sizeof o) == 0, "%s: options changed", cases[i].url);
    }
    char err[256];
    struct cw_redis_options o;
    cw_redis_options_init(&o);
    ck_assert_int_eq(cw_redis_parse_url(NULL, &o, err, sizeof err), -1);
}
END_TEST

START_TEST(url_error_hides_password)
{
    struct cw_redis_options o;
    char err[256] = "";
    cw_redis_options_init(&o);
    ck_assert_int_eq(cw_redis_parse_url("redis://:topsecret@host:port", &o, err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "bad port"));
    ck_assert_ptr_null(strstr(err, "topsecret"));
}
END_TEST

START_TEST(options_validation)
{
    struct cw_redis_options o;
    char err[256];
    cw_redis_options_init(&o);
    ck_assert_int_eq(cw_redis_options_check(&o, err, sizeof err), 0);
    ck_assert_int_eq(o.command_timeout_ms, 2000);
    ck_assert_int_eq(o.max_inflight, 10000);
    ck_assert_int_eq(o.backoff_min_ms, 100);
    ck_assert_int_eq(o.backoff_max_ms, 5000);

    struct cw_redis_options bad;
#define EXPECT_BAD(stmt, want)                                                                     \
    do {                                                                                           \
        bad = o;                                                                                   \
        stmt;                                                                                      \
        err[0] = '\0';                                                                             \
        ck_assert_int_eq(cw_redis_options_check(&bad, err, sizeof err), -1);                       \
        ck_assert_msg(strstr(err, want) != NULL, "\"%s\" lacks \"%s\"", err, want);                \
        struct event_base *b = event_base_new();                                                   \
        ck_assert_ptr_null(cw_redis_new(b, &bad, err, sizeof err));                                \
        ck_assert_msg(strstr(err, want) != NULL, "new: \"%s\" lacks \"%s\"", err, want);           \
        event_base_free(b);                                                                        \
    } while (0)
    EXPECT_BAD(bad.host[0] = '\0', "host");
    EXPECT_BAD(bad.port = 0, "port");
    EXPECT_BAD(bad.port = 70000, "port");
    EXPECT_BAD(bad.db = -1, "db");
    EXPECT_BAD(bad.command_timeout_ms = 0, "command_timeout_ms");
    EXPECT_BAD(bad.connect_timeout_ms = -5, "connect_timeout_ms");
    EXPECT_BAD(bad.max_inflight = 0, "max_inflight");
    EXPECT_BAD(bad.backoff_min_ms = 0, "backoff_min_ms");
    EXPECT_BAD((bad.backoff_min_ms = 500, bad.backoff_max_ms = 100), "backoff_max_ms");
    EXPECT_BAD(bad.ping_interval_ms = 0, "ping_interval_ms");
}
END_TEST

START_TEST(script_sha_is_computed_locally)
{
    struct event_base *b = event_base_new();
    struct cw_redis_options o;
    char err[256];
    cw_redis_options_init(&o);
    o.port = 1;
    cw_redis *r = cw_redis_new(b, &o, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    cw_redis_script *s = cw_redis_script_new(r, "return 1");
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(cw_redis_script_sha(s), "e0e1f9fabfc9d4800c877a703b823ac0578ff8db");
    ck_assert_ptr_null(cw_redis_script_new(r, ""));
    cw_redis_free(r);
    event_base_free(b);
}
END_TEST

static int calls;
static void count_call(void *arg, const redisReply *reply, const char *err)
{
    (void)arg, (void)reply, (void)err;
    calls++;
}

static int closed_port(void)
{
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    ck_assert_int_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    close(fd); /* nothing listens there now */
    return ntohs(a.sin_port);
}

static char logbuf[16384];
static size_t loglen;
static void capture(const char *line, size_t len, void *arg)
{
    (void)arg;
    if (loglen + len < sizeof logbuf) {
        memcpy(logbuf + loglen, line, len);
        loglen += len;
        logbuf[loglen] = '\0';
    }
}

START_TEST(refused_while_not_connected)
{
    struct event_base *b = event_base_new();
    struct cw_redis_options o;
    struct cw_redis_stats st;
    char err[256];
    cw_log_init("test", "info");
    cw_log_set_sink(capture, NULL);
    loglen = 0;
    logbuf[0] = '\0';
    cw_redis_options_init(&o);
    o.port = closed_port();
    o.backoff_min_ms = 10;
    o.backoff_max_ms = 40;
    strcpy(o.password, "hunter2");
    cw_redis *r = cw_redis_new(b, &o, err, sizeof err);
    ck_assert_ptr_nonnull(r);
    cw_redis_script *s = cw_redis_script_new(r, "return 1");
    const char *argv[] = {"GET", "k"};
    calls = 0;

    ck_assert_int_eq(cw_redis_command(r, count_call, NULL, 2, argv, NULL), CW_REDIS_NOT_CONNECTED);
    ck_assert_int_eq(cw_redis_commandf(r, count_call, NULL, "SET %s %b", "k", "v", (size_t)1),
                     CW_REDIS_NOT_CONNECTED);
    ck_assert_int_eq(cw_redis_script_run(r, s, count_call, NULL, 0, 0, NULL, NULL),
                     CW_REDIS_NOT_CONNECTED);
    /* A few connection attempts fail on the loop; still nothing is called back. */
    struct timeval tv = {0, 300 * 1000};
    event_base_loopexit(b, &tv);
    event_base_dispatch(b);
    ck_assert_int_eq(cw_redis_command(r, count_call, NULL, 2, argv, NULL), CW_REDIS_NOT_CONNECTED);
    ck_assert_int_eq(calls, 0);
    ck_assert_int_eq(cw_redis_is_ready(r), 0);
    ck_assert_int_eq(cw_redis_idle(r), 1);
    cw_redis_stats_get(r, &st);
    ck_assert_uint_eq(st.refused, 4);
    ck_assert_uint_eq(st.commands, 0);
    ck_assert_int_eq(st.connected, 0);
    ck_assert_uint_eq(st.in_flight, 0);

    cw_redis_close(r);
    ck_assert_int_eq(cw_redis_command(r, count_call, NULL, 2, argv, NULL), CW_REDIS_CLOSED);
    cw_redis_free(r);
    ck_assert_int_eq(calls, 0);
    event_base_free(b);
    cw_log_set_sink(NULL, NULL);

    ck_assert_ptr_nonnull(strstr(logbuf, "event=redis.connect_failed"));
    ck_assert_ptr_null(strstr(logbuf, "hunter2"));
}
END_TEST

START_TEST(strerror_names_results)
{
    ck_assert_str_eq(cw_redis_strerror(CW_REDIS_QUEUE_FULL), "queue full");
    ck_assert_str_eq(cw_redis_strerror(CW_REDIS_NOT_CONNECTED), "not connected");
    ck_assert_str_eq(cw_redis_strerror(CW_REDIS_CLOSED), "closed");
    ck_assert_str_eq(cw_redis_strerror(-99), "unknown error");
}
END_TEST

CW_TEST_MAIN("redis", url_good, url_keeps_other_options, url_bad, url_error_hides_password,
             options_validation, script_sha_is_computed_locally, refused_while_not_connected,
             strerror_names_results)
