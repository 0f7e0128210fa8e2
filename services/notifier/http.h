/*
 * An HTTP client on the process's libevent loop: libcurl's multi interface, its sockets and
 * timer driven by the loop (CURLMOPT_SOCKETFUNCTION / CURLMOPT_TIMERFUNCTION), so one thread
 * keeps any number of requests in flight. Connections are kept alive and reused per host
 * (the multi handle's connection cache); TLS is libcurl's (OpenSSL).
 *
 * Every request: no redirects followed, http and https only, no proxy from the environment
 * (a proxy would hide the address we really connect to), a total timeout, and a reply body
 * kept up to NT_HTTP_MAX_BODY bytes. An optional `vet` callback sees every address libcurl is
 * about to connect to, after name resolution, and may refuse it: that is where the webhook
 * guard stops a tenant's URL from reaching our own network (also through DNS rebinding).
 *
 * Whether a request may have reached the server matters to callers that must not repeat an
 * effect (an SMS): `sent` says whether any byte of the request left this process.
 */
#ifndef NT_HTTP_H
#define NT_HTTP_H

#include <stddef.h>

struct event_base;
struct sockaddr;

#define NT_HTTP_MAX_BODY (64 * 1024)

typedef struct nt_http nt_http;

enum nt_http_outcome {
    NT_HTTP_DONE = 0,     /* a complete reply: see status */
    NT_HTTP_TIMEOUT,      /* no complete reply within the timeout */
    NT_HTTP_UNREACHABLE,  /* name not resolved, connection refused, TLS handshake failed */
    NT_HTTP_REFUSED_ADDR, /* vet refused every address the name resolved to */
    NT_HTTP_BROKEN,       /* the connection broke, or the reply was malformed */
    NT_HTTP_CANCELLED,    /* the client was freed first */
};

struct nt_http_request {
    const char *method; /* "GET" or "POST" */
    const char *url;
    const char *const *headers; /* "Name: value" */
    size_t nheaders;
    const void *body; /* POST body, may be NULL */
    size_t body_len;
    long timeout_ms;
    /* 0 allows the connection to sa, anything else refuses it (then *why_kind is logged). */
    int (*vet)(void *vet_arg, const struct sockaddr *sa, const char **why);
    void *vet_arg;
};

struct nt_http_response {
    enum nt_http_outcome outcome;
    long status;      /* HTTP status with NT_HTTP_DONE, else 0 */
    const char *body; /* NUL-terminated, possibly cut at NT_HTTP_MAX_BODY */
    size_t body_len;
    int sent;          /* 1 when some of the request was written to the server */
    const char *error; /* libcurl's words, or why vet refused; "" with NT_HTTP_DONE */
    double total_s;    /* from start to the end */
};

typedef void nt_http_fn(void *arg, const struct nt_http_response *r);

nt_http *nt_http_new(struct event_base *base, size_t max_inflight, char *err, size_t errlen);
/* Fails the requests still in flight with NT_HTTP_CANCELLED (callbacks run inside). */
void nt_http_free(nt_http *h);

/* 0: the callback runs exactly once, later, from the loop. -1: refused at once (too many in
 * flight, out of memory, bad request); the callback is never called. */
int nt_http_send(nt_http *h, const struct nt_http_request *req, nt_http_fn *cb, void *arg);
const char *nt_http_outcome_name(enum nt_http_outcome o);

#endif
