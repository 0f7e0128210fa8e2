/* libcurl's multi interface on the libevent loop (see http.h). The pattern is libcurl's own
 * "multi_socket" API: libcurl says which sockets to watch and when to wake it; we watch them
 * with events and call curl_multi_socket_action() when they are ready or the timer ends. */
#include "http.h"

#include <curl/curl.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Requests handed to libcurl at once; the rest wait here, in order. libcurl's own queue of
 * requests waiting for a connection is scanned on every removal (curl_multi_remove_handle took
 * a quarter of the notifier's CPU with 2,000 queued), and its timeouts would count the wait. */
#define MAX_ACTIVE 128

struct nt_http {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    size_t inflight, max_inflight, active;
    struct req *reqs;                  /* every request not answered, for nt_http_free */
    struct req *wait_head, *wait_tail; /* not handed to libcurl yet */
};

struct req {
    nt_http *h;
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* the request body, copied: libcurl reads it while sending */
    char *reply;
    size_t reply_len, reply_cap;
    nt_http_fn *cb;
    void *arg;
    int (*vet)(void *, const struct sockaddr *, const char **);
    void *vet_arg;
    const char *vet_why; /* set when vet refused an address */
    char errbuf[CURL_ERROR_SIZE];
    bool added; /* handed to libcurl (else waiting) */
    long timeout_ms;
    struct timeval queued; /* when it started waiting */
    struct req *prev, *next;
    struct req *wait_next;
};

/* Per watched socket. */
struct sock {
    nt_http *h;
    curl_socket_t fd;
    struct event *ev;
};

static int once_global(void)
{
    static int state; /* 0 not yet, 1 ok, -1 failed */
    if (!state) state = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 1 : -1;
    return state;
}

const char *nt_http_outcome_name(enum nt_http_outcome o)
{
    switch (o) {
    case NT_HTTP_DONE: return "done";
    case NT_HTTP_TIMEOUT: return "timeout";
    case NT_HTTP_UNREACHABLE: return "unreachable";
    case NT_HTTP_REFUSED_ADDR: return "refused_address";
    case NT_HTTP_BROKEN: return "broken";
    case NT_HTTP_CANCELLED: return "cancelled";
    }
    return "?";
}

static void req_free(struct req *r)
{
    nt_http *h = r->h;
    if (r->prev)
        r->prev->next = r->next;
    else
        h->reqs = r->next;
    if (r->next) r->next->prev = r->prev;
    h->inflight--;
    if (r->added) {
        curl_multi_remove_handle(h->multi, r->easy);
        h->active--;
    } else { /* only nt_http_free frees a waiting request: unlink it from the wait queue */
        struct req **pp = &h->wait_head, *last = NULL;
        while (*pp && *pp != r) last = *pp, pp = &(*pp)->wait_next;
        if (*pp) *pp = r->wait_next;
        if (h->wait_tail == r) h->wait_tail = last;
    }
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    free(r->body);
    free(r->reply);
    free(r);
}

static enum nt_http_outcome outcome_of(CURLcode rc, const struct req *r)
{
    if (rc == CURLE_OK) return NT_HTTP_DONE;
    if (r->vet_why) return NT_HTTP_REFUSED_ADDR;
    switch (rc) {
    case CURLE_OPERATION_TIMEDOUT: return NT_HTTP_TIMEOUT;
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT: return NT_HTTP_UNREACHABLE;
    default: return NT_HTTP_BROKEN;
    }
}

static void finish(struct req *r, CURLcode rc)
{
    struct nt_http_response resp = {.body = r->reply ? r->reply : "", .body_len = r->reply_len};
    resp.outcome = outcome_of(rc, r);
    long status = 0, sent = 0;
    double total = 0, pretransfer = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    /* Bytes of request written, or the transfer got as far as starting: either way the
     * server may have seen the request. Only when neither is it certainly not sent. */
    curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &sent);
    curl_easy_getinfo(r->easy, CURLINFO_PRETRANSFER_TIME, &pretransfer);
    if (pretransfer > 0) sent = 1;
    curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME, &total);
    resp.status = resp.outcome == NT_HTTP_DONE ? status : 0;
    resp.sent = sent > 0;
    resp.total_s = total;
    resp.error = rc == CURLE_OK ? ""
                 : r->vet_why   ? r->vet_why
                 : r->errbuf[0] ? r->errbuf
                                : curl_easy_strerror(rc);
    nt_http_fn *cb = r->cb;
    void *arg = r->arg;
    /* Callback first, while the reply buffer lives; then the request goes. */
    cb(arg, &resp);
    req_free(r);
}

/* Hands waiting requests to libcurl while there is room. A request libcurl refuses fails
 * as never sent. */
static void start_waiting(nt_http *h)
{
    while (h->wait_head && h->active < MAX_ACTIVE) {
        struct req *r = h->wait_head;
        h->wait_head = r->wait_next;
        if (!h->wait_head) h->wait_tail = NULL;
        r->wait_next = NULL;
        /* Waited longer than its own timeout: failed as never sent, so that the caller's
         * lease (two timeouts and some) still covers every request that does go out. */
        struct timeval now;
        event_base_gettimeofday_cached(h->base, &now);
        long waited =
            (now.tv_sec - r->queued.tv_sec) * 1000 + (now.tv_usec - r->queued.tv_usec) / 1000;
        if (waited > r->timeout_ms) {
            struct nt_http_response late = {.outcome = NT_HTTP_TIMEOUT,
                                            .body = "",
                                            .error = "waited too long for a connection"};
            r->cb(r->arg, &late);
            req_free(r);
            continue;
        }
        if (curl_multi_add_handle(h->multi, r->easy) == CURLM_OK) {
            r->added = true;
            h->active++;
            continue;
        }
        struct nt_http_response resp = {
            .outcome = NT_HTTP_UNREACHABLE, .body = "", .error = "libcurl refused the request"};
        r->cb(r->arg, &resp);
        req_free(r);
    }
}

static void check_done(nt_http *h)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(h->multi, &left))) {
        if (msg->msg != CURLMSG_DONE) continue;
        struct req *r = NULL;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (r) finish(r, msg->data.result);
    }
    start_waiting(h);
}

static void on_socket_ready(evutil_socket_t fd, short what, void *arg)
{
    struct sock *s = arg;
    nt_http *h = s->h;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) | (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    int running;
    curl_multi_socket_action(h->multi, fd, flags, &running);
    check_done(h);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    nt_http *h = arg;
    int running;
    curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    check_done(h);
}

static int socket_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    (void)easy;
    nt_http *h = userp;
    struct sock *s = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            if (s->ev) event_free(s->ev);
            free(s);
        }
        curl_multi_assign(h->multi, fd, NULL);
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof *s);
        if (!s) return -1;
        s->h = h;
        s->fd = fd;
        curl_multi_assign(h->multi, fd, s);
    } else if (s->ev) {
        event_free(s->ev);
        s->ev = NULL;
    }
    short kind = (short)((what & CURL_POLL_IN ? EV_READ : 0) |
                         (what & CURL_POLL_OUT ? EV_WRITE : 0) | EV_PERSIST);
    s->ev = event_new(h->base, fd, kind, on_socket_ready, s);
    if (!s->ev) return -1; /* libcurl fails the transfer; REMOVE still comes for s */
    if (event_add(s->ev, NULL) != 0) return -1;
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    (void)multi;
    nt_http *h = userp;
    if (timeout_ms < 0) {
        evtimer_del(h->timer);
        return 0;
    }
    /* 0 means "now": from the loop, never from inside this callback (libcurl forbids it). */
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    return evtimer_add(h->timer, &tv) == 0 ? 0 : -1;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    struct req *r = arg;
    size_t len = size * n, room = NT_HTTP_MAX_BODY - r->reply_len;
    size_t take = len < room ? len : room; /* the rest is read and dropped */
    if (take && r->reply_len + take + 1 > r->reply_cap) {
        size_t cap = r->reply_cap ? r->reply_cap * 2 : 1024;
        while (cap < r->reply_len + take + 1) cap *= 2;
        char *p = realloc(r->reply, cap);
        if (!p) return 0; /* libcurl fails the transfer: a "write error" */
        r->reply = p, r->reply_cap = cap;
    }
    if (take) {
        memcpy(r->reply + r->reply_len, data, take);
        r->reply_len += take;
        r->reply[r->reply_len] = '\0';
    }
    return len;
}

static curl_socket_t open_socket(void *arg, curlsocktype purpose, struct curl_sockaddr *addr)
{
    struct req *r = arg;
    (void)purpose;
    const char *why = NULL;
    if (r->vet && r->vet(r->vet_arg, &addr->addr, &why) != 0) {
        r->vet_why = why ? why : "address refused";
        return CURL_SOCKET_BAD;
    }
    r->vet_why = NULL; /* an earlier address was refused, this one is fine */
    return socket(addr->family, addr->socktype, addr->protocol);
}

nt_http *nt_http_new(struct event_base *base, size_t max_inflight, char *err, size_t errlen)
{
    if (once_global() < 0) {
        snprintf(err, errlen, "libcurl did not initialise");
        return NULL;
    }
    nt_http *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    h->base = base;
    h->max_inflight = max_inflight ? max_inflight : 1000;
    h->multi = curl_multi_init();
    h->timer = evtimer_new(base, on_timer, h);
    if (!h->multi || !h->timer) {
        snprintf(err, errlen, "out of memory");
        nt_http_free(h);
        return NULL;
    }
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb);
    curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
    /* Enough kept-alive connections for a provider at thousands of requests a second. */
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, 64L);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, 256L);
    return h;
}

void nt_http_free(nt_http *h)
{
    if (!h) return;
    while (h->reqs) {
        struct req *r = h->reqs;
        struct nt_http_response resp = {
            .outcome = NT_HTTP_CANCELLED, .body = "", .error = "shutting down", .sent = 1};
        r->cb(r->arg, &resp);
        req_free(r);
    }
    if (h->multi) curl_multi_cleanup(h->multi);
    if (h->timer) event_free(h->timer);
    free(h);
}

int nt_http_send(nt_http *h, const struct nt_http_request *q, nt_http_fn *cb, void *arg)
{
    if (h->inflight >= h->max_inflight || !q->url || !q->method) return -1;
    struct req *r = calloc(1, sizeof *r);
    if (!r) return -1;
    r->h = h, r->cb = cb, r->arg = arg, r->vet = q->vet, r->vet_arg = q->vet_arg;
    r->timeout_ms = q->timeout_ms > 0 ? q->timeout_ms : 10000L;
    r->easy = curl_easy_init();
    int bad = !r->easy;
    for (size_t i = 0; !bad && i < q->nheaders; i++) {
        struct curl_slist *l = curl_slist_append(r->headers, q->headers[i]);
        if (!l)
            bad = 1;
        else
            r->headers = l;
    }
    /* No "Expect: 100-continue": it costs a round trip per POST for nothing here. */
    struct curl_slist *l = bad ? NULL : curl_slist_append(r->headers, "Expect:");
    if (!l)
        bad = 1;
    else
        r->headers = l;
    if (!bad && q->body_len) {
        r->body = malloc(q->body_len);
        if (!r->body)
            bad = 1;
        else
            memcpy(r->body, q->body, q->body_len);
    }
    if (bad) {
        curl_easy_cleanup(r->easy);
        curl_slist_free_all(r->headers);
        free(r->body);
        free(r);
        return -1;
    }
    CURL *e = r->easy;
    curl_easy_setopt(e, CURLOPT_URL, q->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_PROXY, "");
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, q->timeout_ms > 0 ? q->timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, q->timeout_ms > 0 ? q->timeout_ms : 10000L);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
    curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "casewire-notifier/1");
    if (!strcmp(q->method, "POST")) {
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
    } else if (strcmp(q->method, "GET")) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, q->method);
    }
    if (h->active < MAX_ACTIVE && !h->wait_head) {
        if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
            curl_easy_cleanup(e);
            curl_slist_free_all(r->headers);
            free(r->body);
            free(r);
            return -1;
        }
        r->added = true;
        h->active++;
    } else if (h->wait_tail) {
        event_base_gettimeofday_cached(h->base, &r->queued);
        h->wait_tail->wait_next = r;
        h->wait_tail = r;
    } else {
        event_base_gettimeofday_cached(h->base, &r->queued);
        h->wait_head = h->wait_tail = r;
    }
    r->next = h->reqs;
    if (h->reqs) h->reqs->prev = r;
    h->reqs = r;
    h->inflight++;
    return 0;
}
