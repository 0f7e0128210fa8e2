/*
 * An HTTP server on the loop (libevent evhttp) with the endpoints every casewire process
 * has: GET /healthz (the process and its loop answer), GET /readyz (every registered check
 * passes: Kafka, Redis...; 503 with the failing ones named otherwise) and GET /metrics
 * (Prometheus text). The gateway adds its API on the same server through cw_httpd_evhttp().
 * Limits: request bodies (64 KiB default), headers (16 KiB), idle connections (30 s), the
 * whole request (headers and body within 10 s of its first byte: libevent's own timeout is
 * only an idle timeout, which a client sending a byte every few seconds never trips), and open
 * connections (10,000: at the cap, new clients wait in the kernel's backlog).
 */
#ifndef CW_HTTPD_H
#define CW_HTTPD_H

#include <stdbool.h>
#include <stddef.h>

struct event_base;
struct evhttp;
struct evhttp_request;
struct cw_metrics;

typedef struct cw_httpd cw_httpd;

/* port 0 picks a free port: see cw_httpd_port(). reuse_port: other processes of the same user
 * may listen on the same address and port (SO_REUSEPORT), and the kernel spreads connections
 * over them: several gateways on one host behind one port. */
cw_httpd *cw_httpd_new(struct event_base *base, const char *bind_addr, int port, bool reuse_port,
                       struct cw_metrics *metrics, char *err, size_t errlen);
void cw_httpd_free(cw_httpd *h);
int cw_httpd_port(const cw_httpd *h);
struct evhttp *cw_httpd_evhttp(cw_httpd *h);

struct cw_httpd_limits {
    size_t max_body;              /* bytes; bigger bodies: the handler answers 413 */
    long long request_timeout_ms; /* headers and body, from the request's first byte */
    size_t max_connections;
};
int cw_httpd_set_limits(cw_httpd *h, const struct cw_httpd_limits *limits);
size_t cw_httpd_max_body(const cw_httpd *h);

/* Handles every request not for /healthz, /readyz or /metrics (the default answers 404).
 * The request has been read in full when it is called. */
typedef void cw_httpd_handler(struct evhttp_request *req, void *arg);
void cw_httpd_set_handler(cw_httpd *h, cw_httpd_handler *fn, void *arg);

size_t cw_httpd_connections(const cw_httpd *h);
/* Connections closed because a request was not read in full before its deadline. */
unsigned long long cw_httpd_deadline_closes(const cw_httpd *h);
int cw_httpd_add_check(cw_httpd *h, const char *name, int (*ready)(void *arg), void *arg);
/* Closes the listening socket; connections already open may finish their requests. */
void cw_httpd_stop_accepting(cw_httpd *h);

/* Sends a JSON body with the status code (and Content-Type). */
void cw_httpd_reply_json(struct evhttp_request *req, int code, const char *json);
/* {"error":{"code":..,"message":..,"field":..}}; field may be NULL. */
void cw_httpd_reply_error(struct evhttp_request *req, int status, const char *code,
                          const char *message, const char *field);

#endif
