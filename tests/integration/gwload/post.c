#include "gwload.h"

/* ---- post: clients that must get every case accepted ---- */

struct post_cfg {
    int port, timeout_ms, deadline_s;
    const char *out, *key_prefix, *token, *site, *channel, *stop_file;
    bool events;
};

struct tally {
    long started, accepted, failed, attempts, s202, s503, s409, s5xx, s429, s4xx, conn_err,
        timeouts, retry_after_missing;
};

static bool retryable(const struct answer *a)
{
    if (a->status <= 0 || a->status >= 500 || a->status == 429) return true;
    return a->status == 409 && strstr(a->body, "request_in_progress") != NULL;
}

static int post_client(const struct post_cfg *c, int client, long first, long count)
{
    char path[4096];
    snprintf(path, sizeof path, "%s.%d", c->out, client);
    FILE *out = fopen(path, "w");
    FILE *ev = NULL;
    if (c->events) {
        snprintf(path, sizeof path, "%s.%d.events", c->out, client);
        ev = fopen(path, "w");
    }
    if (!out || (c->events && !ev)) die(path);
    setvbuf(out, NULL, _IOLBF, 0);
    if (ev) setvbuf(ev, NULL, _IOLBF, 0);
    struct http *h = calloc(1, sizeof *h);
    if (!h) die("calloc");
    h->fd = -1;
    h->port = c->port;
    struct tally t = {0};
    char key[128], body[1024], req[4096];
    for (long i = first; i < first + count; i++) {
        struct stat st;
        if (c->stop_file && stat(c->stop_file, &st) == 0) break;
        snprintf(key, sizeof key, "%s-%d-%ld", c->key_prefix, client, i);
        int bl =
            snprintf(body, sizeof body,
                     "{\"site\":\"%s\",\"channel\":\"%s\",\"text\":\"fault-injection case %s\","
                     "\"customer\":{\"name\":\"测试顾客\",\"phone\":\"13800138000\"},"
                     "\"external_ref\":\"%s\"}",
                     c->site, c->channel, key, key);
        char auth[600] = "";
        if (c->token && *c->token)
            snprintf(auth, sizeof auth, "Authorization: Bearer %s\r\n", c->token);
        int rl =
            snprintf(req, sizeof req,
                     "POST /v1/cases HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: "
                     "application/json\r\n%sIdempotency-Key: %s\r\nContent-Length: %d\r\n\r\n%s",
                     c->port, auth, key, bl, body);
        t.started++;
        int64_t case_deadline = mono_ms() + (int64_t)c->deadline_s * 1000;
        int64_t backoff = 50;
        bool done = false;
        while (!done) {
            struct answer a;
            int64_t t0 = wall_ms();
            http_do(h, req, (size_t)rl, c->timeout_ms, &a);
            int64_t t1 = wall_ms();
            t.attempts++;
            if (ev)
                fprintf(ev, "%lld %lld %s %d %d\n", (long long)t0, (long long)t1, key, a.status,
                        a.retry_after);
            if (a.status == 0)
                t.conn_err++;
            else if (a.status == -1)
                t.timeouts++;
            else if (a.status == 202)
                t.s202++;
            else if (a.status == 503)
                t.s503++;
            else if (a.status == 409)
                t.s409++;
            else if (a.status == 429)
                t.s429++;
            else if (a.status >= 500)
                t.s5xx++;
            else
                t.s4xx++;
            if ((a.status == 503 || a.status == 429 || a.status == 409) && a.retry_after < 0)
                t.retry_after_missing++;
            if (a.status == 202) {
                json_error_t je;
                json_t *j = json_loads(a.body, 0, &je);
                const char *id = j ? json_string_value(json_object_get(j, "case_id")) : NULL;
                const char *no = j ? json_string_value(json_object_get(j, "case_no")) : NULL;
                if (!id || !no) {
                    fprintf(stderr, "gwload: client %d: 202 without case_id/case_no: %s\n", client,
                            a.body);
                    t.failed++;
                } else {
                    fprintf(out, "%s %s %s 202\n", key, id, no);
                    t.accepted++;
                }
                json_decref(j);
                done = true;
            } else if (retryable(&a)) {
                if (mono_ms() >= case_deadline) {
                    fprintf(stderr,
                            "gwload: client %d: %s not accepted within %d s (last status %d)\n",
                            client, key, c->deadline_s, a.status);
                    t.failed++;
                    done = true;
                    break;
                }
                int64_t wait =
                    a.retry_after > 0 ? (a.retry_after > 2 ? 2000 : a.retry_after * 1000) : backoff;
                sleep_ms(wait);
                backoff = backoff * 2 > 1000 ? 1000 : backoff * 2;
            } else {
                fprintf(stderr, "gwload: client %d: %s answered %d (not retryable): %s\n", client,
                        key, a.status, a.body);
                t.failed++;
                done = true;
            }
        }
    }
    http_close(h);
    free(h);
    fclose(out);
    if (ev) fclose(ev);
    printf("client=%d started=%ld accepted=%ld failed=%ld attempts=%ld s202=%ld s503=%ld s409=%ld "
           "s429=%ld s5xx=%ld s4xx=%ld conn_errors=%ld timeouts=%ld retry_after_missing=%ld\n",
           client, t.started, t.accepted, t.failed, t.attempts, t.s202, t.s503, t.s409, t.s429,
           t.s5xx, t.s4xx, t.conn_err, t.timeouts, t.retry_after_missing);
    fflush(stdout);
    return t.failed == 0 && t.accepted == t.started && t.retry_after_missing == 0 ? 0 : 1;
}

int run_post(const struct opts *o)
{
    struct post_cfg c = {
        .port = (int)opt_num(o, "--port", 0),
        .timeout_ms = (int)opt_num(o, "--timeout-ms", 10000),
        .deadline_s = (int)opt_num(o, "--case-deadline-s", 120),
        .out = opt(o, "--out", NULL),
        .key_prefix = opt(o, "--key-prefix", "case"),
        .token = opt(o, "--token", ""),
        .site = opt(o, "--site", "SH01"),
        .channel = opt(o, "--channel", "service_desk"),
        .stop_file = opt(o, "--stop-file", NULL),
        .events = flag(o, "--events"),
    };
    int clients = (int)opt_num(o, "--clients", 1);
    long count = opt_num(o, "--count", 1);
    if (!c.port || !c.out || clients < 1 || clients > 64 || count < clients) {
        fprintf(
            stderr,
            "gwload post: --port and --out are required; 1..64 --clients, --count >= clients\n");
        return 2;
    }
    pid_t pids[64];
    for (int i = 0; i < clients; i++) {
        long share = count / clients + (i < count % clients ? 1 : 0);
        fflush(stdout);
        pid_t p = fork();
        if (p < 0) die("fork");
        if (p == 0) _exit(post_client(&c, i, 0, share));
        pids[i] = p;
    }
    int bad = 0;
    for (int i = 0; i < clients; i++) {
        int st;
        if (waitpid(pids[i], &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
    }
    printf("post: clients=%d failed_clients=%d\n", clients, bad);
    return bad ? 1 : 0;
}
