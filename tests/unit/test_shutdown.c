/* Shutdown: stages run in their fixed order whatever the registration order, a step that
 * never finishes is abandoned at the deadline (and the shutdown is not clean), and the loop
 * ends either way. */
#include "testing.h"
#include <event2/event.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ids.h"
#include "shutdown.h"

static char order[64];
static int flush_polls;

static void mark(char c)
{
    size_t n = strlen(order);
    order[n] = c;
    order[n + 1] = '\0';
}
static void begin_a(void *arg)
{
    (void)arg;
    mark('A');
} /* stop accepting */
static void begin_d(void *arg)
{
    (void)arg;
    mark('D');
} /* drain */
static void begin_f(void *arg)
{
    (void)arg;
    mark('F');
} /* flush */
static void begin_c(void *arg)
{
    (void)arg;
    mark('C');
} /* close consumers */
static void begin_r(void *arg)
{
    (void)arg;
    mark('R');
} /* redis */
/* The flush step finishes on its third poll: the next stage must wait for it. */
static int flush_done(void *arg)
{
    (void)arg;
    return ++flush_polls >= 3;
}
static int never_done(void *arg)
{
    (void)arg;
    return 0;
}

static void start(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    cw_shutdown_begin(arg, "test");
}

START_TEST(stages_run_in_order)
{
    struct event_base *base = event_base_new();
    cw_shutdown *sd = cw_shutdown_new(base, 5000);
    order[0] = '\0';
    flush_polls = 0;
    cw_shutdown_add(sd, CW_STAGE_DISCONNECT_REDIS, "redis", begin_r, NULL, NULL);
    cw_shutdown_add(sd, CW_STAGE_CLOSE_CONSUMERS, "consumer", begin_c, NULL, NULL);
    cw_shutdown_add(sd, CW_STAGE_FLUSH_PRODUCERS, "producer", begin_f, flush_done, NULL);
    cw_shutdown_add(sd, CW_STAGE_DRAIN, "drain", begin_d, NULL, NULL);
    cw_shutdown_add(sd, CW_STAGE_STOP_ACCEPTING, "http", begin_a, NULL, NULL);
    event_base_once(base, -1, EV_TIMEOUT, start, sd, NULL);
    event_base_dispatch(base);
    ck_assert_str_eq(order, "ADFCR");
    ck_assert_int_ge(flush_polls, 3);
    ck_assert(cw_shutdown_started(sd));
    ck_assert(cw_shutdown_clean(sd));
    cw_shutdown_free(sd);
    event_base_free(base);
    alarm(0); /* the backstop armed after the loop ends */
}
END_TEST

/* A drain that never finishes is abandoned at its share (half the time left), and the flush
 * after it still gets time to finish: one stuck stage does not starve the final commit. */
START_TEST(stuck_step_is_abandoned_and_later_stages_still_run)
{
    struct event_base *base = event_base_new();
    cw_shutdown *sd = cw_shutdown_new(base, 400);
    order[0] = '\0';
    flush_polls = 0;
    cw_shutdown_add(sd, CW_STAGE_DRAIN, "stuck", begin_d, never_done, NULL);
    cw_shutdown_add(sd, CW_STAGE_FLUSH_PRODUCERS, "producer", begin_f, flush_done, NULL);
    cw_shutdown_add(sd, CW_STAGE_DISCONNECT_REDIS, "redis", begin_r, NULL, NULL);
    int64_t t0 = cw_mono_ms();
    event_base_once(base, -1, EV_TIMEOUT, start, sd, NULL);
    event_base_dispatch(base);
    int64_t took = cw_mono_ms() - t0;
    ck_assert_str_eq(order, "DFR");
    ck_assert_int_ge(flush_polls, 3);  /* the flush finished, not abandoned */
    ck_assert(!cw_shutdown_clean(sd)); /* the drain did not */
    ck_assert_int_ge(took, 200);       /* the drain had its half of 400 ms */
    ck_assert_int_lt(took, 5000);
    cw_shutdown_free(sd);
    event_base_free(base);
    alarm(0);
}
END_TEST

START_TEST(begin_twice_is_one_shutdown)
{
    struct event_base *base = event_base_new();
    cw_shutdown *sd = cw_shutdown_new(base, 1000);
    order[0] = '\0';
    cw_shutdown_add(sd, CW_STAGE_STOP_ACCEPTING, "http", begin_a, NULL, NULL);
    cw_shutdown_begin(sd, "first");
    cw_shutdown_begin(sd, "second");
    event_base_dispatch(base);
    ck_assert_str_eq(order, "A");
    cw_shutdown_free(sd);
    event_base_free(base);
    alarm(0);
}
END_TEST

CW_TEST_MAIN("shutdown", stages_run_in_order, stuck_step_is_abandoned_and_later_stages_still_run,
             begin_twice_is_one_shutdown)
