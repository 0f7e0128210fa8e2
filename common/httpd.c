#include "httpd.h"

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <stdbool.h>
#include <stdint.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "log.h"
#include "metrics.h"

#define MAX_CHECKS 8
#define DEFAULT_MAX_BODY (64 * 1024)
#define DEFAULT_REQUEST_TIMEOUT_MS 10000
#define DEFAULT_MAX_CONNECTIONS 10000
#define MAX_HEADER_BYTES (16 * 1024)
#define IDLE_TIMEOUT_S 30

struct check {
    const char *name;
    int (*ready)(void *);
    void *arg;
};

struct conn;

struct cw_httpd {
    struct evhttp *http;
    struct evhttp_bound_socket *listener;
    struct cw_metrics *metrics;
    struct check checks[MAX_CHECKS];
    int nchecks, port;
    cw_httpd_handler *handler; /* everything not /healthz, /readyz, /metrics */
    void *handler_arg;
    size_t max_body;
    long long request_timeout_ms;
    struct conn **buckets; /* open connections by bufferevent */
    size_t nbuckets, nconns, max_conns;
    bool paused; /* listener disabled at the connection cap */
    unsigned long long deadline_closes;
};

/* ---- connections: whole-request deadline and a cap on open connections ----
 *
 * evhttp (libevent 2.1) has only an idle timeout, re-armed by every byte read, so a client
 * that trickles one byte every 2 s would keep a connection (and its buffers) forever. So
 * every connection gets a record of ours: evhttp_set_bevcb lets us create its bufferevent,
 * a callback on that bufferevent's input buffer sees the first byte of each request and
 * arms a deadline, and the request handler disarms it once the whole request (headers and
 * body) has arrived. When the deadline fires the socket is shut down: evhttp reads
 * end-of-file and frees the connection itself (we never free what evhttp owns), and its close
 * callback frees our record. At the connection cap the listener is disabled: new clients
 * wait in the kernel's backlog until a connection closes, rather than being accepted and
 * starved. (A filter bufferevent would be the textbook hook, but in 2.1 it does not flush a
 * reply written before evhttp enables writing, and it reports a write as done before it
 * reaches the socket.) */

struct conn {
    cw_httpd *h;
    struct bufferevent *bev;
    struct event *deadline;
    struct event *setup; /* runs once evhttp has made its connection object */
    struct conn *next;   /* hash chain */
    bool reading;        /* a request has started and is not yet fully read */
};

static size_t conn_slot(const cw_httpd *h, const void *bev)
{
    uintptr_t x = (uintptr_t)bev;
    x ^= x >> 17;
    x *= (uintptr_t)0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 29) & (h->nbuckets - 1);
}

static struct conn *conn_find(const cw_httpd *h, const struct bufferevent *bev)
{
    for (struct conn *c = h->buckets[conn_slot(h, bev)]; c; c = c->next)
        if (c->bev == bev) return c;
    return NULL;
}

static void listener_update(cw_httpd *h)
{
    if (!h->listener) return;
    struct evconnlistener *l = evhttp_bound_socket_get_listener(h->listener);
    if (!l) return;
    if (h->nconns >= h->max_conns && !h->paused) {
        evconnlistener_disable(l);
        h->paused = true;
        cw_warn("http.connections_full", "open=%zu max=%zu action=\"new connections wait\"",
                h->nconns, h->max_conns);
    } else if (h->nconns < h->max_conns && h->paused) {
        evconnlistener_enable(l);
        h->paused = false;
    }
}

static void conn_forget(struct conn *c)
{
    cw_httpd *h = c->h;
    struct conn **p = &h->buckets[conn_slot(h, c->bev)];
    while (*p && *p != c) p = &(*p)->next;
    if (*p) *p = c->next;
    event_free(c->deadline);
    event_free(c->setup);
    free(c);
    h->nconns--;
    listener_update(h);
}

static void conn_closed(struct evhttp_connection *evcon, void *arg)
{
    (void)evcon;
    conn_forget(arg);
}

static void conn_expired(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct conn *c = arg;
    c->h->deadline_closes++;
    c->reading = false;
    cw_info("http.request_deadline", "timeout_ms=%lld action=close", c->h->request_timeout_ms);
    /* evhttp reads end-of-file next and frees the connection; conn_closed frees the record. */
    evutil_socket_t sock = bufferevent_getfd(c->bev);
    if (sock >= 0) shutdown(sock, SHUT_RDWR);
}

static void arm_deadline(struct conn *c)
{
    struct timeval tv = {(time_t)(c->h->request_timeout_ms / 1000),
                         (suseconds_t)(c->h->request_timeout_ms % 1000) * 1000};
    evtimer_add(c->deadline, &tv);
    c->reading = true;
}

static void conn_input(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    struct conn *c = arg;
    if (info->n_added > 0 && !c->reading) arm_deadline(c);
}

/* evhttp sets its connection as the bufferevent's callback argument; when it could not set
 * the connection up it has already freed the bufferevent, which our reference kept alive
 * with its callbacks cleared. */
static void conn_setup(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    struct conn *c = arg;
    void *evcon = NULL;
    bufferevent_getcb(c->bev, NULL, NULL, NULL, &evcon);
    struct bufferevent *bev = c->bev;
    if (evcon) {
        evhttp_connection_set_closecb(evcon, conn_closed, c);
    } else {
        conn_forget(c);
    }
    bufferevent_decref(bev);
}

static struct bufferevent *conn_new(struct event_base *base, void *arg)
{
    cw_httpd *h = arg;
    struct conn *c = calloc(1, sizeof *c);
    if (!c) goto fail;
    c->h = h;
    c->bev = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
    c->deadline = evtimer_new(base, conn_expired, c);
    c->setup = event_new(base, -1, 0, conn_setup, c);
    if (!c->bev || !c->deadline || !c->setup ||
        !evbuffer_add_cb(bufferevent_get_input(c->bev), conn_input, c))
        goto fail;
    bufferevent_incref(c->bev); /* until conn_setup has looked at it */
    event_active(c->setup, 0, 0);
    size_t slot = conn_slot(h, c->bev);
    c->next = h->buckets[slot];
    h->buckets[slot] = c;
    h->nconns++;
    listener_update(h);
    return c->bev;
fail:
    /* evhttp falls back to a bufferevent of its own: the connection works, without a deadline. */
    cw_error("http.conn_setup_failed", "reason=\"out of memory\"");
    if (c) {
        if (c->bev) bufferevent_free(c->bev);
        if (c->deadline) event_free(c->deadline);
        if (c->setup) event_free(c->setup);
        free(c);
    }
    return NULL;
}

/* evhttp reads bodies up to this much, so that our handler can answer a body over the limit
 * with a JSON 413; beyond it evhttp refuses the body before reading it (plain 413). */
static size_t hard_body_cap(size_t max_body) { return max_body * 2; }

/* Power of two, at least the connection cap: chains stay short. */
static int size_buckets(cw_httpd *h)
{
    size_t n = 64;
    while (n < h->max_conns) n <<= 1;
    struct conn **b = calloc(n, sizeof *b);
    if (!b) return -1;
    struct conn **old = h->buckets;
    size_t oldn = h->nbuckets;
    h->buckets = b;
    h->nbuckets = n;
    for (size_t i = 0; i < oldn; i++) {
        for (struct conn *c = old[i], *next; c; c = next) {
            next = c->next;
            size_t slot = conn_slot(h, c->bev);
            c->next = b[slot];
            b[slot] = c;
        }
    }
    free(old);
    return 0;
}

/* The answer has been written. Bytes of the next request that arrived with this one (in the
 * same read) were already in the input buffer when it was read, so conn_input saw no new
 * bytes for them: its deadline starts now, from the previous answer. */
static void request_answered(struct evhttp_request *req, void *arg)
{
    (void)req;
    struct conn *c = arg;
    if (!c->reading && evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) arm_deadline(c);
}

static void request_read(cw_httpd *h, struct evhttp_request *req)
{
    struct evhttp_connection *evcon = evhttp_request_get_connection(req);
    struct bufferevent *bev = evcon ? evhttp_connection_get_bufferevent(evcon) : NULL;
    struct conn *c = bev ? conn_find(h, bev) : NULL;
    if (!c) return;
    evtimer_del(c->deadline);
    c->reading = false;
    evhttp_request_set_on_complete_cb(req, request_answered, c);
}

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
    json_t *e =
        json_pack("{s:{s:s,s:s,s:s*}}", "error", "code", code, "message", message, "field", field);
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
    request_read(arg, req);
    if (only_get(req)) cw_httpd_reply_json(req, 200, "{\"status\":\"ok\"}");
}

static void on_readyz(struct evhttp_request *req, void *arg)
{
    cw_httpd *h = arg;
    request_read(h, req);
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
    request_read(h, req);
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
    cw_httpd *h = arg;
    request_read(h, req);
    if (h->handler) {
        h->handler(req, h->handler_arg);
        return;
    }
    cw_httpd_reply_error(req, 404, "not_found", "no such endpoint", NULL);
}

static double metric_connections(void *arg) { return (double)((cw_httpd *)arg)->nconns; }
static double metric_deadline_closes(void *arg)
{
    return (double)((cw_httpd *)arg)->deadline_closes;
}

/* The listening socket: evhttp's own bind sets SO_REUSEADDR only, so with reuse_port the
 * listener is made here. */
static struct evhttp_bound_socket *bind_socket(cw_httpd *h, struct event_base *base,
                                               const char *addr, int port, bool reuse_port)
{
    if (!reuse_port) return evhttp_bind_socket_with_handle(h->http, addr, (ev_uint16_t)port);
    struct evutil_addrinfo hints = {.ai_family = AF_UNSPEC,
                                    .ai_socktype = SOCK_STREAM,
                                    .ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICHOST},
                           *ai = NULL;
    char service[8];
    snprintf(service, sizeof service, "%d", port);
    if (evutil_getaddrinfo(addr, service, &hints, &ai) != 0 || !ai) return NULL;
    struct evconnlistener *l = evconnlistener_new_bind(
        base, NULL, NULL,
        LEV_OPT_REUSEABLE | LEV_OPT_REUSEABLE_PORT | LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC,
        -1, ai->ai_addr, (int)ai->ai_addrlen);
    evutil_freeaddrinfo(ai);
    if (!l) return NULL;
    struct evhttp_bound_socket *b = evhttp_bind_listener(h->http, l);
    if (!b) evconnlistener_free(l);
    return b;
}

cw_httpd *cw_httpd_new(struct event_base *base, const char *bind_addr, int port, bool reuse_port,
                       struct cw_metrics *metrics, char *err, size_t errlen)
{
    cw_httpd *h = calloc(1, sizeof *h);
    if (!h || !(h->http = evhttp_new(base))) {
        snprintf(err, errlen, "out of memory");
        free(h);
        return NULL;
    }
    h->metrics = metrics;
    h->max_body = DEFAULT_MAX_BODY;
    h->request_timeout_ms = DEFAULT_REQUEST_TIMEOUT_MS;
    h->max_conns = DEFAULT_MAX_CONNECTIONS;
    if (size_buckets(h) != 0) {
        snprintf(err, errlen, "out of memory");
        cw_httpd_free(h);
        return NULL;
    }
    evhttp_set_max_body_size(h->http, hard_body_cap(h->max_body));
    evhttp_set_bevcb(h->http, conn_new, h);
    if (metrics) {
        cw_metrics_gauge_fn(metrics, "casewire_http_connections", "open HTTP connections",
                            metric_connections, h, NULL);
        cw_metrics_counter_fn(metrics, "casewire_http_deadline_closes_total",
                              "connections closed because a request was not read in full in time",
                              metric_deadline_closes, h, NULL);
    }
    evhttp_set_max_headers_size(h->http, MAX_HEADER_BYTES);
    evhttp_set_timeout(h->http, IDLE_TIMEOUT_S);
    evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                            EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE | EVHTTP_REQ_PATCH |
                                            EVHTTP_REQ_OPTIONS);
    evhttp_set_cb(h->http, "/healthz", on_healthz, h);
    evhttp_set_cb(h->http, "/readyz", on_readyz, h);
    evhttp_set_cb(h->http, "/metrics", on_metrics, h);
    evhttp_set_gencb(h->http, on_other, h);
    h->listener = bind_socket(h, base, bind_addr, port, reuse_port);
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
    h->listener = NULL; /* freed by evhttp_free; closing connections must not touch it */
    if (h->http) evhttp_free(h->http);
    free(h->buckets);
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
    h->paused = false;
}

int cw_httpd_set_limits(cw_httpd *h, const struct cw_httpd_limits *l)
{
    if (l->max_body == 0 || l->request_timeout_ms <= 0 || l->max_connections == 0) return -1;
    h->max_body = l->max_body;
    h->request_timeout_ms = l->request_timeout_ms;
    size_t old = h->max_conns;
    h->max_conns = l->max_connections;
    if (h->max_conns > old && size_buckets(h) != 0) {
        h->max_conns = old;
        return -1;
    }
    evhttp_set_max_body_size(h->http, hard_body_cap(h->max_body));
    listener_update(h);
    return 0;
}

size_t cw_httpd_max_body(const cw_httpd *h) { return h->max_body; }

void cw_httpd_set_handler(cw_httpd *h, cw_httpd_handler *fn, void *arg)
{
    h->handler = fn;
    h->handler_arg = arg;
}

size_t cw_httpd_connections(const cw_httpd *h) { return h->nconns; }
unsigned long long cw_httpd_deadline_closes(const cw_httpd *h) { return h->deadline_closes; }
