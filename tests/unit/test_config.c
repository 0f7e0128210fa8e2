/* Settings: defaults < environment < flags, bounds, every problem named, secrets never logged. */
#include "testing.h"
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"

static int load(cw_config **c, unsigned svc, int argc, char **argv, char *err, size_t n)
{
    return cw_config_load(c, svc, "gateway", argc, argv, err, n);
}

static void clear_env(void)
{
    unsetenv("CASEWIRE_HTTP_PORT");
    unsetenv("REDIS_URL");
    unsetenv("CASEWIRE_REDIS_TIMEOUT");
    unsetenv("CASEWIRE_LOG_LEVEL");
}

START_TEST(defaults_env_then_flags)
{
    clear_env();
    char err[512];
    cw_config *c;
    char *argv0[] = {"gw", NULL};
    ck_assert_int_eq(load(&c, CW_SVC_GATEWAY, 1, argv0, err, sizeof err), CW_CONFIG_OK);
    ck_assert_int_eq(cw_config_int(c, CW_SET_HTTP_PORT), 8080);
    ck_assert_int_eq(cw_config_int(c, CW_SET_REDIS_TIMEOUT), 2000);
    ck_assert_str_eq(cw_config_source(c, CW_SET_HTTP_PORT), "default");
    cw_config_free(c);

    setenv("CASEWIRE_HTTP_PORT", "9090", 1);
    setenv("CASEWIRE_REDIS_TIMEOUT", "250ms", 1);
    ck_assert_int_eq(load(&c, CW_SVC_GATEWAY, 1, argv0, err, sizeof err), CW_CONFIG_OK);
    ck_assert_int_eq(cw_config_int(c, CW_SET_HTTP_PORT), 9090);
    ck_assert_int_eq(cw_config_int(c, CW_SET_REDIS_TIMEOUT), 250);
    ck_assert_str_eq(cw_config_source(c, CW_SET_HTTP_PORT), "env");
    cw_config_free(c);

    char *argv1[] = {"gw", "--http-port=7070", "--redis-timeout", "3s", NULL};
    ck_assert_int_eq(load(&c, CW_SVC_GATEWAY, 4, argv1, err, sizeof err), CW_CONFIG_OK);
    ck_assert_int_eq(cw_config_int(c, CW_SET_HTTP_PORT), 7070);
    ck_assert_int_eq(cw_config_int(c, CW_SET_REDIS_TIMEOUT), 3000);
    ck_assert_str_eq(cw_config_source(c, CW_SET_HTTP_PORT), "flag");
    cw_config_free(c);
    clear_env();
}
END_TEST

START_TEST(every_problem_is_reported)
{
    clear_env();
    setenv("CASEWIRE_HTTP_PORT", "70000", 1);
    char err[1024];
    cw_config *c = (cw_config *)1;
    char *argv[] = {"gw", "--redis-timeout=5x", "--log-level=loud", NULL};
    ck_assert_int_eq(load(&c, CW_SVC_GATEWAY, 3, argv, err, sizeof err), CW_CONFIG_ERROR);
    ck_assert_ptr_null(c);
    ck_assert_ptr_nonnull(strstr(err, "CASEWIRE_HTTP_PORT"));
    ck_assert_ptr_nonnull(strstr(err, "70000 is outside 0..65535"));
    ck_assert_ptr_nonnull(strstr(err, "\"5x\" is not valid (expected a duration"));
    ck_assert_ptr_nonnull(strstr(err, "log level \"loud\""));
    clear_env();
}
END_TEST

START_TEST(unknown_and_foreign_flags_are_refused)
{
    clear_env();
    char err[512];
    cw_config *c;
    char *a1[] = {"gw", "--http-prot=1", NULL};
    ck_assert_int_eq(load(&c, CW_SVC_GATEWAY, 2, a1, err, sizeof err), CW_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "unknown option \"--http-prot=1\""));
    /* --partitions belongs to the devbroker, not the gateway */
    char *a2[] = {"gw", "--partitions=3", NULL};
    ck_assert_int_eq(load(&c, CW_SVC_GATEWAY, 2, a2, err, sizeof err), CW_CONFIG_ERROR);
    char *a3[] = {"gw", "--http-port", NULL};
    ck_assert_int_eq(load(&c, CW_SVC_GATEWAY, 2, a3, err, sizeof err), CW_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "needs a value"));
    char *a4[] = {"gw", "stray", NULL};
    ck_assert_int_eq(load(&c, CW_SVC_GATEWAY, 2, a4, err, sizeof err), CW_CONFIG_ERROR);
    ck_assert_ptr_nonnull(strstr(err, "unexpected argument"));
}
END_TEST

static char logged[8192];
static void capture(const char *line, size_t len, void *arg)
{
    (void)arg;
    strncat(logged, line,
            len < sizeof logged - strlen(logged) - 1 ? len : sizeof logged - strlen(logged) - 1);
}

START_TEST(secrets_are_not_logged)
{
    clear_env();
    setenv("REDIS_URL", "redis://:hunter2@10.0.0.5:6379/0", 1);
    char err[512];
    cw_config *c;
    char *argv[] = {"gw", NULL};
    ck_assert_int_eq(load(&c, CW_SVC_GATEWAY, 1, argv, err, sizeof err), CW_CONFIG_OK);
    logged[0] = '\0';
    cw_log_set_sink(capture, NULL);
    cw_config_log(c);
    cw_log_set_sink(NULL, NULL);
    ck_assert_ptr_null(strstr(logged, "hunter2"));
    ck_assert_ptr_nonnull(strstr(logged, "setting=redis-url value=\"(set, not shown)\""));
    ck_assert_ptr_nonnull(strstr(logged, "setting=http-port value=\"8080\""));
    cw_config_free(c);
    clear_env();
}
END_TEST

START_TEST(help_exits_without_config)
{
    char err[64];
    cw_config *c = (cw_config *)1;
    char *argv[] = {"gw", "--help", NULL};
    FILE *saved = stdout;
    stdout = fopen("/dev/null", "w");
    int rc = load(&c, CW_SVC_GATEWAY, 2, argv, err, sizeof err);
    fclose(stdout);
    stdout = saved;
    ck_assert_int_eq(rc, CW_CONFIG_EXIT);
    ck_assert_ptr_null(c);
}
END_TEST

CW_TEST_MAIN("config", defaults_env_then_flags, every_problem_is_reported,
             unknown_and_foreign_flags_are_refused, secrets_are_not_logged,
             help_exits_without_config)
