/*
 * One HTTP request's life. A gw_req is referenced by the HTTP side (until the answer is sent)
 * and by every callback still to come (Redis, Kafka delivery report), so the work started
 * for a request finishes even after its client got a 503 or went away; the last release
 * frees it. Every answer goes through here: the request counter by route and status, the
 * latency histogram and the in-flight gauge stay exact.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gateway.h"
#include "log.h"
#include "metrics.h"

static const char *const route_names[GW_ROUTE__COUNT] = {
    [GW_CASES_POST] = "POST /v1/cases",
    [GW_CASE_STATUS] = "GET /v1/cases/{case_no}",
    [GW_CASE_EVENTS] = "POST /v1/cases/{id}/events",
    [GW_SITES] = "GET /v1/sites",
    [GW_OPENAPI] = "GET /v1/openapi.json",
    [GW_TENANT_CASES_POST] = "POST /v1/tenant/cases",
    [GW_TENANT_CASES_LIST] = "GET /v1/tenant/cases",
    [GW_TENANT_CASE_GET] = "GET /v1/tenant/cases/{id}",
    [GW_TENANT_CASE_EVENTS] = "POST /v1/tenant/cases/{id}/events",
    [GW_CASE_GET] = "GET /v1/cases/{id}",
    [GW_CALLBACKS_LIST] = "GET /v1/callbacks",
    [GW_CALLBACK_CLAIM] = "POST /v1/callbacks/{task_id}/claim",
    [GW_FOLLOWUP_REPORT] = "GET /v1/reports/follow-up",
    [GW_SMS_RECEIPTS] = "POST /v1/sms/receipts",
    [GW_SMS_REPLIES] = "POST /v1/sms/replies",
    [GW_SMS_OPTOUTS] = "POST /v1/sms/opt-outs",
    [GW_ME] = "GET /v1/me",
    [GW_DIRECTORY] = "GET /v1/directory",
    [GW_CASES_LIST] = "GET /v1/cases",
    [GW_REPORT_TODAY] = "GET /v1/reports/today",
    [GW_REPORT_DAILY] = "GET /v1/reports/daily",
    [GW_REPORT_WEEKLY] = "GET /v1/reports/weekly",
    [GW_REPORT_MONTHLY] = "GET /v1/reports/monthly",
    [GW_CONSOLE] = "console",
    [GW_OTHER] = "other",
};

static int64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct gw_req *r = arg;
    if (!gw_req_open(r)) return;
    long long ms = r->timeout_ms ? r->timeout_ms : r->gw->reply_timeout_ms;
    cw_warn("http.reply_timeout", "request_id=%s route=\"%s\" timeout_ms=%lld", r->request_id,
            route_names[r->route], ms);
    if (r->body) { /* a write */
        cw_metric_add(r->gw->unconfirmed, 1);
        gw_error_retry(r, 503, "unavailable",
                       "the write was not confirmed in time; retry with the same Idempotency-Key",
                       2);
    } else {
        gw_error_retry(r, 503, "unavailable", "the answer took too long; retry", 5);
    }
}

struct gw_req *gw_req_new(struct gw *gw, struct evhttp_request *req, enum gw_route route)
{
    struct gw_req *r = calloc(1, sizeof *r);
    if (!r) return NULL;
    r->gw = gw;
    r->req = req;
    r->route = route;
    r->refs = 1;
    r->t0_mono_us = mono_us();
    if (cw_ulid_new(r->request_id) != 0) snprintf(r->request_id, sizeof r->request_id, "-");
    gw->inflight++;
    gw->working++;
    return r;
}

int gw_req_arm(struct gw_req *r)
{
    r->deadline = evtimer_new(r->gw->base, on_deadline, r);
    if (!r->deadline) return -1;
    long long ms = r->timeout_ms ? r->timeout_ms : r->gw->reply_timeout_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    return evtimer_add(r->deadline, &tv);
}

bool gw_req_open(const struct gw_req *r) { return r->req != NULL; }

void gw_req_hold(struct gw_req *r) { r->refs++; }

void gw_req_release(struct gw_req *r)
{
    if (--r->refs > 0) return;
    if (r->deadline) event_free(r->deadline);
    if (r->op_free) r->op_free(r->op);
    json_decref(r->body);
    free(r->answer);
    r->gw->working--;
    free(r);
}

static void count(struct gw_req *r, int status)
{
    struct gw *gw = r->gw;
    if (status < 100 || status >= GW_MAX_STATUS) status = 500;
    struct cw_metric **m = &gw->requests[r->route][status];
    if (!*m) {
        char code[8];
        snprintf(code, sizeof code, "%d", status);
        *m = cw_metrics_counter(gw->metrics, "casewire_http_requests_total",
                                "HTTP API requests answered, by route and status", "route",
                                route_names[r->route], "status", code, NULL);
    }
    if (*m) cw_metric_add(*m, 1);
    if (!gw->latency[r->route])
        gw->latency[r->route] = cw_metrics_histogram(
            gw->metrics, "casewire_http_request_duration_seconds",
            "time from a request fully read to its answer", cw_metrics_latency_buckets,
            cw_metrics_latency_buckets_count, "route", route_names[r->route], NULL);
    if (gw->latency[r->route])
        cw_metric_observe(gw->latency[r->route], (double)(mono_us() - r->t0_mono_us) / 1e6);
}

static void send_answer(struct gw_req *r, int status, const char *content_type,
                        const char *disposition, const char *data, size_t len, bool newline)
{
    if (!r->req) return;
    struct evhttp_request *req = r->req;
    r->req = NULL;
    r->gw->inflight--;
    if (r->deadline) evtimer_del(r->deadline);
    count(r, status);
    struct evkeyvalq *h = evhttp_request_get_output_headers(req);
    evhttp_add_header(h, "Content-Type", content_type);
    if (disposition) evhttp_add_header(h, "Content-Disposition", disposition);
    evhttp_add_header(h, "X-Request-Id", r->request_id);
    struct evbuffer *b = evbuffer_new();
    if (b) {
        evbuffer_add(b, data, len);
        if (newline) evbuffer_add(b, "\n", 1);
    }
    evhttp_send_reply(req, status, NULL, b);
    if (b) evbuffer_free(b);
    gw_req_release(r);
}

void gw_reply_raw(struct gw_req *r, int status, const char *json, size_t len)
{
    /* one answer per line for people reading with curl; documents that end in a newline
     * (the OpenAPI file) are sent byte for byte */
    send_answer(r, status, "application/json; charset=utf-8", NULL, json, len,
                len == 0 || json[len - 1] != '\n');
}

void gw_reply_typed(struct gw_req *r, int status, const char *content_type, const char *disposition,
                    const char *data, size_t len)
{
    send_answer(r, status, content_type, disposition, data, len, false);
}

void gw_reply(struct gw_req *r, int status, json_t *body)
{
    char *s = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!s) {
        gw_reply_raw(r, 500, "{\"error\":{\"code\":\"internal\",\"message\":\"out of memory\"}}",
                     55);
        return;
    }
    gw_reply_raw(r, status, s, strlen(s));
    free(s);
}

void gw_error(struct gw_req *r, int status, const char *code, const char *message,
              const char *field)
{
    gw_reply(r, status,
             json_pack("{s:{s:s,s:s,s:s*}}", "error", "code", code, "message", message, "field",
                       field && *field ? field : NULL));
}

void gw_error_retry(struct gw_req *r, int status, const char *code, const char *message,
                    int retry_after_s)
{
    if (!r->req) return;
    char v[16];
    snprintf(v, sizeof v, "%d", retry_after_s < 1 ? 1 : retry_after_s);
    evhttp_add_header(evhttp_request_get_output_headers(r->req), "Retry-After", v);
    gw_error(r, status, code, message, NULL);
}
