/*
 * A small concurrent HTTP client for gateway_api.sh: many requests over a few keep-alive
 * connections (libevent's evhttp client), so a thousand requests take seconds, not minutes.
 *
 *   gwclient URL CONNECTIONS < requests > responses
 *
 * URL is http://127.0.0.1:PORT. Each input line is one request, a JSON object:
 *   {"m": "POST", "p": "/v1/cases", "h": {"Authorization": "Bearer ..."}, "b": BODY}
 * "m" defaults to GET; BODY is a string sent as is, or any other JSON value sent compact;
 * with a body, Content-Type is application/json unless "h" names one.
 * Each output line answers the input line of the same number, in input order:
 *   {"i": N, "status": 202, "retry_after": "1", "body": <the JSON answer, or a string>}
 * A request that got no answer (connection refused, reset, 30 s timeout) has status 0 and
 * "error". Exits 0 when every request got an HTTP answer, 1 otherwise, 2 on bad usage.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>

#define TIMEOUT_S 30
#define MAX_CONNS 256

struct job {
    enum evhttp_cmd_type method;
    char *path;
    json_t *headers; /* object or NULL */
    char *body;      /* NULL: none */
    char *out;       /* the answer line, once answered */
};

struct conn {
    struct evhttp_connection *evcon;
    size_t job; /* the job in flight */
};

static struct event_base *base;
static struct job *jobs;
static size_t njobs, next_job, done_jobs, failed;
static char host[256];
static int port;

static void start_next(struct conn *c);

static enum evhttp_cmd_type method_of(const char *m)
{
    if (!m || !strcmp(m, "GET")) return EVHTTP_REQ_GET;
    if (!strcmp(m, "POST")) return EVHTTP_REQ_POST;
    if (!strcmp(m, "PUT")) return EVHTTP_REQ_PUT;
    if (!strcmp(m, "DELETE")) return EVHTTP_REQ_DELETE;
    if (!strcmp(m, "HEAD")) return EVHTTP_REQ_HEAD;
    if (!strcmp(m, "PATCH")) return EVHTTP_REQ_PATCH;
    return (enum evhttp_cmd_type)0;
}

static void finish(size_t i, json_t *line)
{
    json_object_set_new(line, "i", json_integer((json_int_t)i));
    jobs[i].out = json_dumps(line, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(line);
    done_jobs++;
}

static void on_done(struct evhttp_request *req, void *arg)
{
    struct conn *c = arg;
    size_t i = c->job;
    int status = req ? evhttp_request_get_response_code(req) : 0;
    json_t *line = json_object();
    if (status == 0) {
        failed++;
        json_object_set_new(line, "status", json_integer(0));
        json_object_set_new(line, "error",
                            json_string("no answer (connection failed or timed out)"));
        /* evhttp connects again for the connection's next request */
    } else {
        json_object_set_new(line, "status", json_integer(status));
        struct evkeyvalq *h = evhttp_request_get_input_headers(req);
        const char *ra = evhttp_find_header(h, "Retry-After");
        if (ra) json_object_set_new(line, "retry_after", json_string(ra));
        const char *ct = evhttp_find_header(h, "Content-Type");
        if (ct) json_object_set_new(line, "content_type", json_string(ct));
        struct evbuffer *in = evhttp_request_get_input_buffer(req);
        size_t len = evbuffer_get_length(in);
        const char *data = (const char *)evbuffer_pullup(in, -1);
        json_t *body = len ? json_loadb(data, len, 0, NULL) : NULL;
        if (!body) body = json_stringn_nocheck(data ? data : "", len);
        json_object_set_new(line, "body", body);
    }
    finish(i, line);
    start_next(c);
    if (done_jobs == njobs) event_base_loopbreak(base);
}

static void start_next(struct conn *c)
{
    while (next_job < njobs) {
        size_t i = next_job++;
        struct job *j = &jobs[i];
        c->job = i;
        struct evhttp_request *req = evhttp_request_new(on_done, c);
        if (!req) {
            failed++;
            finish(i, json_pack("{s:i,s:s}", "status", 0, "error", "out of memory"));
            continue;
        }
        struct evkeyvalq *h = evhttp_request_get_output_headers(req);
        char hostport[300];
        snprintf(hostport, sizeof hostport, "%s:%d", host, port);
        evhttp_add_header(h, "Host", hostport);
        bool has_ct = false;
        const char *k;
        json_t *v;
        json_object_foreach(j->headers, k, v)
        {
            if (!json_is_string(v)) continue;
            if (!strcasecmp(k, "Content-Type")) has_ct = true;
            evhttp_add_header(h, k, json_string_value(v));
        }
        if (j->body) {
            if (!has_ct) evhttp_add_header(h, "Content-Type", "application/json");
            evbuffer_add(evhttp_request_get_output_buffer(req), j->body, strlen(j->body));
        }
        if (evhttp_make_request(c->evcon, req, j->method, j->path) != 0) {
            /* evhttp freed req */
            failed++;
            finish(i, json_pack("{s:i,s:s}", "status", 0, "error", "could not send the request"));
            continue;
        }
        return;
    }
}

static int read_jobs(FILE *f)
{
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t n;
    while ((n = getline(&line, &lcap, f)) > 0) {
        if (n <= 1) continue;
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        if (!json_is_object(o)) {
            fprintf(stderr, "gwclient: line %zu: not a JSON object: %s\n", njobs + 1, je.text);
            json_decref(o);
            free(line);
            return -1;
        }
        if (njobs == cap) {
            cap = cap ? 2 * cap : 1024;
            jobs = realloc(jobs, cap * sizeof *jobs);
            if (!jobs) abort();
        }
        struct job *j = &jobs[njobs];
        memset(j, 0, sizeof *j);
        j->method = method_of(json_string_value(json_object_get(o, "m")));
        const char *p = json_string_value(json_object_get(o, "p"));
        json_t *b = json_object_get(o, "b");
        if (!j->method || !p) {
            fprintf(stderr, "gwclient: line %zu: bad \"m\" or missing \"p\"\n", njobs + 1);
            json_decref(o);
            free(line);
            return -1;
        }
        j->path = strdup(p);
        j->headers = json_incref(json_object_get(o, "h"));
        if (json_is_string(b))
            j->body = strdup(json_string_value(b));
        else if (b)
            j->body = json_dumps(b, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(o);
        njobs++;
    }
    free(line);
    return 0;
}

int main(int argc, char **argv)
{
    int nconns = argc > 2 ? atoi(argv[2]) : 0;
    if (argc != 3 || sscanf(argv[1], "http://%255[^:]:%d", host, &port) != 2 || nconns < 1 ||
        nconns > MAX_CONNS) {
        fprintf(stderr, "usage: gwclient http://HOST:PORT CONNECTIONS(1..%d) < requests\n",
                MAX_CONNS);
        return 2;
    }
    if (read_jobs(stdin) != 0) return 2;
    base = event_base_new();
    if (!base) return 1;
    struct conn conns[MAX_CONNS] = {{0}};
    if ((size_t)nconns > njobs) nconns = (int)njobs;
    for (int i = 0; i < nconns; i++) {
        conns[i].evcon = evhttp_connection_base_new(base, NULL, host, (unsigned short)port);
        if (!conns[i].evcon) return 1;
        evhttp_connection_set_timeout(conns[i].evcon, TIMEOUT_S);
    }
    for (int i = 0; i < nconns; i++) start_next(&conns[i]);
    if (done_jobs < njobs) event_base_dispatch(base);
    for (size_t i = 0; i < njobs; i++) {
        puts(jobs[i].out ? jobs[i].out : "{\"status\":0,\"error\":\"never sent\"}");
        free(jobs[i].out);
        free(jobs[i].path);
        free(jobs[i].body);
        json_decref(jobs[i].headers);
    }
    for (int i = 0; i < nconns; i++)
        if (conns[i].evcon) evhttp_connection_free(conns[i].evcon);
    free(jobs);
    event_base_free(base);
    return failed || done_jobs < njobs ? 1 : 0;
}
