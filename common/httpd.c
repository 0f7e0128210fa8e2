#include "httpd.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "metrics.h"

#define MAX_CHECKS 8
#define MAX_BODY_BYTES (64 * 1024)
#define MAX_HEADER_BYTES (16 * 1024)
#define IDLE_TIMEOUT_S 30

struct check {
    const char *name;
    int (*ready)(void *);
    void *arg;
};

struct cw_httpd {
    struct evhttp *http;
    struct evhttp_bound_socket *listener;
    struct cw_metrics *metrics;
    struct check checks[MAX_CHECKS];
    int nchecks, port;
};

void cw_httpd_reply_json(struct evhttp_request *req, int code, const char *json)
{
    struct evbuffer *b = evbuffer_new();
    if (!b) {
        evhttp_send_error(req, 500, "out of memory");
        return;
    }
    evbuffer_add(b, json, strlen(json));
    evbuffer_add(b, "\n", 1);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "application/json; charset=utf-8");
    evhttp_send_reply(req, code, NULL, b);
    evbuffer_free(b);
}

void cw_httpd_reply_error(struct evhttp_request *req, int status, const char *code,
                          const char *message, const char *field)
{
    json_t *e = json_pack("{s:{s:s,s:s,s:s?}}", "error", "code", code, "message", message, "field", field);
    char *s = e ? json_dumps(e, JSON_COMPACT) : NULL;
    cw_httpd_reply_json(req, status, s ? s : "{\"error\":{\"code\":\"internal\"}}");
    free(s);
    json_decref(e);
}

static int only_get(struct evhttp_request *req)
{
    enum evhttp_cmd_type m = evhttp_request_get_command(req);
    if (m == EVHTTP_REQ_GET || m == EVHTTP_REQ_HEAD) return 1;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Allow", "GET, HEAD");
    cw_httpd_reply_error(req, 405, "method_not_allowed", "this endpoint answers GET only", NULL);
    return 0;
}

static void on_healthz(struct evhttp_request *req, void *arg)
{
    (void)arg;
    if (only_get(req)) cw_httpd_reply_json(req, 200, "{\"status\":\"ok\"}");
}

static void on_readyz(struct evhttp_request *req, void *arg)
{
    cw_httpd *h = arg;
    if (!only_get(req)) return;
    json_t *checks = json_object();
    int all = 1;
    for (int i = 0; i < h->nchecks; i++) {
        int ok = h->checks[i].ready(h->checks[i].arg);
        all &= ok != 0;
        json_object_set_new(checks, h->checks[i].name, json_string(ok ? "ok" : "unavailable"));
    }
    json_t *body = json_pack("{s:s,s:o}", "status", all ? "ready" : "not_ready", "checks", checks);
    char *s = json_dumps(body, JSON_COMPACT);
    cw_httpd_reply_json(req, all ? 200 : 503, s ? s : "{}");
    free(s);
    json_decref(body);
}

static void on_metrics(struct evhttp_request *req, void *arg)
{
    cw_httpd *h = arg;
    if (!only_get(req)) return;
    struct evbuffer *b = evbuffer_new();
    if (!b || !h->metrics || cw_metrics_render(h->metrics, b) != 0) {
        if (b) evbuffer_free(b);
        evhttp_send_error(req, 500, "metrics unavailable");
        return;
    }
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, NULL, b);
    evbuffer_free(b);
}

static void on_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    cw_httpd_reply_error(req, 404, "not_found", "no such endpoint", NULL);
}

cw_httpd *cw_httpd_new(struct event_base *base, const char *bind_addr, int port,
                       struct cw_metrics *metrics, char *err, size_t errlen)
{
    cw_httpd *h = calloc(1, sizeof *h);
    if (!h || !(h->http = evhttp_new(base))) {
        snprintf(err, errlen, "out of memory");
        free(h);
        return NULL;
    }
    h->metrics = metrics;
    evhttp_set_max_body_size(h->http, MAX_BODY_BYTES);
    evhttp_set_max_headers_size(h->http, MAX_HEADER_BYTES);
    evhttp_set_timeout(h->http, IDLE_TIMEOUT_S);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_cb(h->http, "/healthz", on_healthz, h);
    evhttp_set_cb(h->http, "/readyz", on_readyz, h);
    evhttp_set_cb(h->http, "/metrics", on_metrics, h);
    evhttp_set_gencb(h->http, on_other, h);
    h->listener = evhttp_bind_socket_with_handle(h->http, bind_addr, (ev_uint16_t)port);
    if (!h->listener) {
        snprintf(err, errlen, "cannot listen on %s:%d (in use, or not an address of this host?)",
                 bind_addr, port);
        cw_httpd_free(h);
        return NULL;
    }
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    evutil_socket_t fd = evhttp_bound_socket_get_fd(h->listener);
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
        h->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return h;
}

void cw_httpd_free(cw_httpd *h)
{
    if (!h) return;
    if (h->http) evhttp_free(h->http);
    free(h);
}

int cw_httpd_port(const cw_httpd *h) { return h->port; }
struct evhttp *cw_httpd_evhttp(cw_httpd *h) { return h->http; }

int cw_httpd_add_check(cw_httpd *h, const char *name, int (*ready)(void *), void *arg)
{
    if (h->nchecks == MAX_CHECKS) return -1;
    h->checks[h->nchecks++] = (struct check){name, ready, arg};
    return 0;
}

void cw_httpd_stop_accepting(cw_httpd *h)
{
    if (!h->listener) return;
    evhttp_del_accept_socket(h->http, h->listener);
    h->listener = NULL;
}
