/*
 * An HTTP server on the loop (libevent evhttp) with the endpoints every casewire process
 * has: GET /healthz (the process and its loop answer), GET /readyz (every registered check
 * passes: Kafka, Redis...; 503 with the failing ones named otherwise) and GET /metrics
 * (Prometheus text). The gateway adds its API on the same server through cw_httpd_evhttp().
 * Limits: request bodies (64 KiB default), headers (16 KiB), idle connections (30 s).
 */
#ifndef CW_HTTPD_H
#define CW_HTTPD_H

#include <stddef.h>

struct event_base;
struct evhttp;
struct evhttp_request;
struct cw_metrics;

typedef struct cw_httpd cw_httpd;

/* port 0 picks a free port: see cw_httpd_port(). */
cw_httpd *cw_httpd_new(struct event_base *base, const char *bind_addr, int port,
                       struct cw_metrics *metrics, char *err, size_t errlen);
void cw_httpd_free(cw_httpd *h);
int cw_httpd_port(const cw_httpd *h);
struct evhttp *cw_httpd_evhttp(cw_httpd *h);
int cw_httpd_add_check(cw_httpd *h, const char *name, int (*ready)(void *arg), void *arg);
/* Closes the listening socket; connections already open may finish their requests. */
void cw_httpd_stop_accepting(cw_httpd *h);

/* Sends a JSON body with the status code (and Content-Type). */
void cw_httpd_reply_json(struct evhttp_request *req, int code, const char *json);
/* {"error":{"code":..,"message":..,"field":..}}; field may be NULL. */
void cw_httpd_reply_error(struct evhttp_request *req, int status, const char *code,
                          const char *message, const char *field);

#endif
