/* Metrics: exposition format, escaping, histograms, and misuse refused. */
#include "testing.h"
#include <event2/buffer.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"

static char *render(cw_metrics *m)
{
    struct evbuffer *b = evbuffer_new();
    ck_assert_int_eq(cw_metrics_render(m, b), 0);
    evbuffer_add(b, "", 1);
    char *s = strdup((const char *)evbuffer_pullup(b, -1));
    evbuffer_free(b);
    return s;
}

static double twelve(void *arg)
{
    (void)arg;
    return 12;
}

START_TEST(counters_gauges_render)
{
    cw_metrics *m = cw_metrics_new();
    cw_metric *a = cw_metrics_counter(m, "http_requests_total", "Requests.", "route", "/v1/cases",
                                      "status", "202", NULL);
    cw_metric *b = cw_metrics_counter(m, "http_requests_total", "Requests.", "route", "/v1/cases",
                                      "status", "503", NULL);
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_ne(a, b);
    ck_assert_ptr_eq(a, cw_metrics_counter(m, "http_requests_total", "Requests.", "route",
                                           "/v1/cases", "status", "202", NULL));
    cw_metric_add(a, 3);
    cw_metric_add(a, -1); /* counters never go down */
    cw_metric_add(b, 1);
    cw_metric_set(cw_metrics_gauge(m, "inflight", "In flight.", NULL), 7);
    cw_metrics_gauge_fn(m, "queue_depth", "Depth.", twelve, NULL, NULL);
    char *s = render(m);
    ck_assert_ptr_nonnull(
        strstr(s, "# HELP http_requests_total Requests.\n# TYPE http_requests_total counter\n"));
    ck_assert_ptr_nonnull(strstr(s, "http_requests_total{route=\"/v1/cases\",status=\"202\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(s, "http_requests_total{route=\"/v1/cases\",status=\"503\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(s, "# TYPE inflight gauge\ninflight 7\n"));
    ck_assert_ptr_nonnull(strstr(s, "queue_depth 12\n"));
    /* one HELP per family, even with two children */
    ck_assert_ptr_null(
        strstr(strstr(s, "# HELP http_requests_total") + 1, "# HELP http_requests_total"));
    free(s);
    cw_metrics_free(m);
}
END_TEST

START_TEST(label_values_are_escaped)
{
    cw_metrics *m = cw_metrics_new();
    cw_metric_add(cw_metrics_counter(m, "odd_total", "Odd\nhelp \\ here.", "v", "a\"b\\c\nd", NULL),
                  1);
    char *s = render(m);
    ck_assert_ptr_nonnull(strstr(s, "# HELP odd_total Odd\\nhelp \\\\ here.\n"));
    ck_assert_ptr_nonnull(strstr(s, "odd_total{v=\"a\\\"b\\\\c\\nd\"} 1\n"));
    free(s);
    cw_metrics_free(m);
}
END_TEST

START_TEST(histogram_buckets_are_cumulative)
{
    cw_metrics *m = cw_metrics_new();
    const double bounds[] = {0.01, 0.1, 1};
    cw_metric *h =
        cw_metrics_histogram(m, "latency_seconds", "Latency.", bounds, 3, "route", "x", NULL);
    ck_assert_ptr_nonnull(h);
    cw_metric_observe(h, 0.005);
    cw_metric_observe(h, 0.05);
    cw_metric_observe(h, 0.05);
    cw_metric_observe(h, 5);
    char *s = render(m);
    ck_assert_ptr_nonnull(strstr(s, "latency_seconds_bucket{route=\"x\",le=\"0.01\"} 1\n"));
    ck_assert_ptr_nonnull(strstr(s, "latency_seconds_bucket{route=\"x\",le=\"0.1\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(s, "latency_seconds_bucket{route=\"x\",le=\"1\"} 3\n"));
    ck_assert_ptr_nonnull(strstr(s, "latency_seconds_bucket{route=\"x\",le=\"+Inf\"} 4\n"));
    ck_assert_ptr_nonnull(strstr(s, "latency_seconds_sum{route=\"x\"} 5.105\n"));
    ck_assert_ptr_nonnull(strstr(s, "latency_seconds_count{route=\"x\"} 4\n"));
    free(s);
    cw_metrics_free(m);
}
END_TEST

START_TEST(misuse_is_refused)
{
    cw_metrics *m = cw_metrics_new();
    ck_assert_ptr_null(cw_metrics_counter(m, "requests", "no _total suffix", NULL));
    ck_assert_ptr_null(cw_metrics_gauge(m, "9bad", "bad name", NULL));
    ck_assert_ptr_nonnull(cw_metrics_gauge(m, "g", "gauge", "a", "1", NULL));
    ck_assert_ptr_null(cw_metrics_counter(m, "g", "same name, other type", NULL));
    ck_assert_ptr_null(cw_metrics_gauge(m, "g", "other label names", "b", "1", NULL));
    ck_assert_ptr_null(cw_metrics_gauge(m, "h", "reserved label", "le", "1", NULL));
    const double desc[] = {1, 0.5};
    ck_assert_ptr_null(cw_metrics_histogram(m, "hist", "bounds not ascending", desc, 2, NULL));
    cw_metrics_free(m);
}
END_TEST

CW_TEST_MAIN("metrics", counters_gauges_render, label_values_are_escaped,
             histogram_buckets_are_cumulative, misuse_is_refused)
