/*
 * A fake SMS provider for the notifier's tests, speaking the generic HTTP provider's protocol
 * (docs/notifier.md) on loopback, with faults:
 *   fakesms --port-file F [--fail PCT] [--hang PCT] [--seed N]
 *           [--per-minute N] [--per-hour N] [--per-day N] [--hook-fail N] [--no-checks 1]
 *   POST /sms     {"id","to","text","template"}: PCT --fail of them get a 500 and are not
 *                 taken; PCT --hang are taken (the phone gets them) and never answered; the
 *                 rest are taken and answered 200 {"ref":"fake-N"}.
 *   GET /status?id=ID   200 {"status":"accepted","ref":...} when ID was taken, else 404.
 *   GET /stats    what it saw: {"taken","ids","dup_ids","dup_texts","limit_violations",
 *                 "errors_500","hung","requests"}. A duplicate is a message the phone got
 *                 twice; a limit violation is a message past --per-* for its number.
 *                 --no-checks 1 (benchmarks) counts neither: each would scan every message.
 *   GET /messages every message taken, one JSON object per line.
 *   POST /hook-hang  a tenant's server that takes the request and never answers (counted as
 *                 hooks_hung in /stats).
 *   POST /hook    a tenant's webhook receiver: answers 500 to the first --hook-fail deliveries
 *                 of each webhook-id, then 200; GET /hooks lists every request it got, one JSON
 *                 object per line: {"id","ts","sig","body","status"} (the headers as sent).
 * Stops on SIGTERM/SIGINT.
 */
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAX_MESSAGES 200000

struct message {
    char *id, *to, *text;
    long long ms;
};

static struct message *msgs;
static size_t nmsgs;
static int fail_pct, hang_pct, limits[3], hook_fail, no_checks;
static json_t *hooks; /* every webhook request, in order */
static unsigned long long rng = 88172645463325252ULL;
static long long requests, errors_500, hung, violations, dup_ids, dup_texts, hooks_hung;

static unsigned roll(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17; /* xorshift64 */
    return (unsigned)(rng % 100);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static const struct message *find(const char *id)
{
    for (size_t i = 0; i < nmsgs; i++)
        if (!strcmp(msgs[i].id, id)) return &msgs[i];
    return NULL;
}

static void reply(struct evhttp_request *req, int code, const char *body)
{
    struct evbuffer *b = evbuffer_new();
    evbuffer_add_printf(b, "%s", body);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    evhttp_send_reply(req, code, code == 200 ? "OK" : "Error", b);
    evbuffer_free(b);
}

static void take(const char *id, const char *to, const char *text)
{
    if (nmsgs == MAX_MESSAGES) return;
    long long now = now_ms();
    if (no_checks) { /* the benchmark's: no per-message scans of everything taken */
        msgs[nmsgs++] = (struct message){strdup(id), strdup(to), strdup(text), now};
        return;
    }
    static const long long spans[3] = {60000, 3600000, 86400000};
    for (int w = 0; w < 3; w++) {
        if (!limits[w]) continue;
        int n = 1;
        for (size_t i = 0; i < nmsgs; i++)
            if (!strcmp(msgs[i].to, to) && msgs[i].ms > now - spans[w]) n++;
        if (n > limits[w]) violations++;
    }
    if (find(id)) dup_ids++;
    for (size_t i = 0; i < nmsgs; i++)
        if (!strcmp(msgs[i].to, to) && !strcmp(msgs[i].text, text)) {
            dup_texts++;
            break;
        }
    msgs[nmsgs++] = (struct message){strdup(id), strdup(to), strdup(text), now};
}

static void on_sms(struct evhttp_request *req)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    json_t *o = json_loadb((const char *)evbuffer_pullup(in, -1), len, 0, NULL);
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *to = json_string_value(json_object_get(o, "to"));
    const char *text = json_string_value(json_object_get(o, "text"));
    if (!id || !to || !text) {
        reply(req, 400, "{\"error\":\"id, to and text are required\"}");
        json_decref(o);
        return;
    }
    unsigned r = roll();
    if (r < (unsigned)fail_pct) {
        errors_500++;
        reply(req, 500, "{\"error\":\"injected failure\"}");
    } else if (r < (unsigned)(fail_pct + hang_pct)) {
        hung++;
        take(id, to, text); /* sent to the phone, but the answer never comes */
    } else {
        take(id, to, text);
        char body[64];
        snprintf(body, sizeof body, "{\"ref\":\"fake-%zu\"}", nmsgs);
        reply(req, 200, body);
    }
    json_decref(o);
}

static void on_status(struct evhttp_request *req)
{
    struct evkeyvalq q;
    const char *query = evhttp_uri_get_query(evhttp_request_get_evhttp_uri(req));
    if (!query || evhttp_parse_query_str(query, &q) != 0) {
        reply(req, 400, "{\"error\":\"id is required\"}");
        return;
    }
    const char *id = evhttp_find_header(&q, "id");
    const struct message *m = id ? find(id) : NULL;
    if (m) {
        char body[128];
        snprintf(body, sizeof body, "{\"status\":\"accepted\",\"ref\":\"fake-%zu\"}",
                 (size_t)(m - msgs) + 1);
        reply(req, 200, body);
    } else {
        reply(req, 404, "{\"status\":\"unknown\"}");
    }
    evhttp_clear_headers(&q);
}

static void on_hook(struct evhttp_request *req)
{
    struct evkeyvalq *h = evhttp_request_get_input_headers(req);
    const char *id = evhttp_find_header(h, "webhook-id");
    const char *ts = evhttp_find_header(h, "webhook-timestamp");
    const char *sig = evhttp_find_header(h, "webhook-signature");
    struct evbuffer *in = evhttp_request_get_input_buffer(req);
    size_t len = evbuffer_get_length(in);
    int seen = 0;
    for (size_t i = 0; id && i < json_array_size(hooks); i++) {
        const char *other = json_string_value(json_object_get(json_array_get(hooks, i), "id"));
        seen += other && !strcmp(other, id);
    }
    int status = seen < hook_fail ? 500 : 200;
    json_array_append_new(hooks,
                          json_pack("{s:s,s:s,s:s,s:s%,s:i}", "id", id ? id : "", "ts",
                                    ts ? ts : "", "sig", sig ? sig : "", "body",
                                    (const char *)evbuffer_pullup(in, -1), len, "status", status));
    reply(req, status, status == 200 ? "{}" : "{\"error\":\"injected failure\"}");
}

static void on_request(struct evhttp_request *req, void *arg)
{
    (void)arg;
    requests++;
    const char *path = evhttp_uri_get_path(evhttp_request_get_evhttp_uri(req));
    enum evhttp_cmd_type cmd = evhttp_request_get_command(req);
    if (!path) path = "";
    if (!strcmp(path, "/sms") && cmd == EVHTTP_REQ_POST) {
        on_sms(req);
    } else if (!strcmp(path, "/hook") && cmd == EVHTTP_REQ_POST) {
        on_hook(req);
    } else if (!strcmp(path, "/hook-hang") && cmd == EVHTTP_REQ_POST) {
        hooks_hung++; /* never answered: the notifier's timeout ends it */
    } else if (!strcmp(path, "/hooks")) {
        struct evbuffer *b = evbuffer_new();
        for (size_t i = 0; i < json_array_size(hooks); i++) {
            char *line = json_dumps(json_array_get(hooks, i), JSON_COMPACT);
            if (line) evbuffer_add_printf(b, "%s\n", line);
            free(line);
        }
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
    } else if (!strcmp(path, "/status") && cmd == EVHTTP_REQ_GET) {
        on_status(req);
    } else if (!strcmp(path, "/stats")) {
        /* every message taken is a new id unless it was counted as a duplicate id (kept
         * incrementally: a scan per /stats would be quadratic, and benchmarks poll it) */
        size_t ids = nmsgs - (size_t)dup_ids;
        char body[512];
        snprintf(body, sizeof body,
                 "{\"taken\":%zu,\"ids\":%zu,\"dup_ids\":%lld,\"dup_texts\":%lld,"
                 "\"limit_violations\":%lld,\"errors_500\":%lld,\"hung\":%lld,\"requests\":%lld,"
                 "\"hooks_hung\":%lld}",
                 nmsgs, ids, dup_ids, dup_texts, violations, errors_500, hung, requests,
                 hooks_hung);
        reply(req, 200, body);
    } else if (!strcmp(path, "/messages")) {
        struct evbuffer *b = evbuffer_new();
        for (size_t i = 0; i < nmsgs; i++) {
            json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "id", msgs[i].id, "to", msgs[i].to, "text",
                                  msgs[i].text, "ms", (json_int_t)msgs[i].ms);
            char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
            if (s) evbuffer_add_printf(b, "%s\n", s);
            free(s);
            json_decref(o);
        }
        evhttp_send_reply(req, 200, "OK", b);
        evbuffer_free(b);
    } else {
        reply(req, 404, "{\"error\":\"no such endpoint\"}");
    }
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopexit(arg, NULL);
}

int main(int argc, char **argv)
{
    const char *port_file = NULL;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *k = argv[i], *v = argv[i + 1];
        if (!strcmp(k, "--port-file"))
            port_file = v;
        else if (!strcmp(k, "--fail"))
            fail_pct = atoi(v);
        else if (!strcmp(k, "--hang"))
            hang_pct = atoi(v);
        else if (!strcmp(k, "--seed"))
            rng = strtoull(v, NULL, 10) | 1;
        else if (!strcmp(k, "--per-minute"))
            limits[0] = atoi(v);
        else if (!strcmp(k, "--per-hour"))
            limits[1] = atoi(v);
        else if (!strcmp(k, "--per-day"))
            limits[2] = atoi(v);
        else if (!strcmp(k, "--hook-fail"))
            hook_fail = atoi(v);
        else if (!strcmp(k, "--no-checks"))
            no_checks = atoi(v);
        else {
            fprintf(stderr, "fakesms: unknown option %s\n", k);
            return 2;
        }
    }
    msgs = calloc(MAX_MESSAGES, sizeof *msgs);
    hooks = json_array();
    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    struct evhttp_bound_socket *sock =
        http ? evhttp_bind_socket_with_handle(http, "127.0.0.1", 0) : NULL;
    if (!msgs || !sock || !port_file) {
        fprintf(stderr, "fakesms: cannot start (need --port-file; bind 127.0.0.1)\n");
        return 1;
    }
    evhttp_set_gencb(http, on_request, NULL);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
    struct sockaddr_storage ss;
    ev_socklen_t sl = sizeof ss;
    getsockname(evhttp_bound_socket_get_fd(sock), (struct sockaddr *)&ss, &sl);
    int port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", port_file);
    FILE *f = fopen(tmp, "w");
    if (!f || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 || rename(tmp, port_file) != 0) {
        fprintf(stderr, "fakesms: cannot write %s\n", port_file);
        return 1;
    }
    struct event *term = evsignal_new(base, SIGTERM, on_signal, base);
    struct event *intr = evsignal_new(base, SIGINT, on_signal, base);
    event_add(term, NULL);
    event_add(intr, NULL);
    signal(SIGPIPE, SIG_IGN);
    event_base_dispatch(base);
    event_free(term);
    event_free(intr);
    evhttp_free(http);
    event_base_free(base);
    for (size_t i = 0; i < nmsgs; i++) free(msgs[i].id), free(msgs[i].to), free(msgs[i].text);
    free(msgs);
    json_decref(hooks);
    return 0;
}
