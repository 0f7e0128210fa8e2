#include "gwload.h"

/* ---- slow: slowloris connections ---- */

struct slow_conn {
    int fd;
    const char *data;
    size_t len, sent;
    int64_t first_ms, next_ms, closed_ms;
    const char *how;
};

int run_slow(const struct opts *o)
{
    int port = (int)opt_num(o, "--port", 0);
    int n = (int)opt_num(o, "--conns", 100);
    int interval = (int)opt_num(o, "--interval-ms", 2000);
    int max_s = (int)opt_num(o, "--max-s", 30);
    if (!port || n < 1 || n > 1000 || interval < 1) {
        fprintf(stderr, "gwload slow: --port required, 1..1000 --conns\n");
        return 2;
    }
    static const char head_trickle[] =
        "GET /v1/sites HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slowloris\r\nX-Pad: "
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    static const char body_head[] =
        "POST /v1/cases HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        "Content-Length: 200\r\n\r\n";
    static char body_trickle[sizeof body_head - 1 + 200];
    memcpy(body_trickle, body_head, sizeof body_head - 1);
    memset(body_trickle + sizeof body_head - 1, ' ', 200);

    struct slow_conn *c = calloc((size_t)n, sizeof *c);
    struct pollfd *p = calloc((size_t)n, sizeof *p);
    if (!c || !p) die("calloc");
    for (int i = 0; i < n; i++) {
        if ((c[i].fd = connect_loopback(port, 5000)) < 0) {
            fprintf(stderr, "gwload slow: connection %d could not connect: %s\n", i,
                    strerror(errno));
            return 1;
        }
        c[i].data = i % 2 ? body_trickle : head_trickle;
        c[i].len = i % 2 ? sizeof body_trickle : sizeof head_trickle - 1;
        c[i].closed_ms = -1;
    }
    /* First bytes: even connections one byte, odd ones all their headers at once. */
    for (int i = 0; i < n; i++) {
        size_t first = i % 2 ? sizeof body_head - 1 : 1;
        c[i].first_ms = mono_ms();
        ssize_t w = send(c[i].fd, c[i].data, first, MSG_NOSIGNAL);
        if (w != (ssize_t)first) {
            fprintf(stderr, "gwload slow: connection %d: first send failed\n", i);
            return 1;
        }
        c[i].sent = first;
        c[i].next_ms = c[i].first_ms + interval;
    }
    printf("all_first_bytes_sent conns=%d\n", n);
    fflush(stdout);
    int open = n;
    int64_t end = mono_ms() + (int64_t)max_s * 1000;
    while (open > 0 && mono_ms() < end) {
        int64_t now = mono_ms(), next = end;
        for (int i = 0; i < n; i++) {
            if (c[i].closed_ms >= 0) continue;
            if (now >= c[i].next_ms && c[i].sent < c[i].len) {
                ssize_t w = send(c[i].fd, c[i].data + c[i].sent, 1, MSG_NOSIGNAL);
                if (w == 1) {
                    c[i].sent++;
                } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
                    c[i].closed_ms = now;
                    c[i].how = errno == EPIPE ? "epipe" : "reset_on_send";
                    close(c[i].fd);
                    open--;
                    printf("closed %d %lld %s\n", i, (long long)(c[i].closed_ms - c[i].first_ms),
                           c[i].how);
                    fflush(stdout);
                    continue;
                }
                c[i].next_ms += interval;
            }
            if (c[i].next_ms < next) next = c[i].next_ms;
        }
        int np = 0;
        int idx[1000];
        for (int i = 0; i < n; i++) {
            if (c[i].closed_ms >= 0) continue;
            p[np] = (struct pollfd){c[i].fd, POLLIN, 0};
            idx[np++] = i;
        }
        int wait = (int)(next - mono_ms());
        if (wait < 0) wait = 0;
        if (poll(p, (nfds_t)np, wait) <= 0) continue;
        now = mono_ms();
        for (int k = 0; k < np; k++) {
            if (!p[k].revents) continue;
            int i = idx[k];
            char buf[4096];
            ssize_t r = recv(c[i].fd, buf, sizeof buf, 0);
            if (r > 0) {
                /* the server answered something (a 408 or 400 before closing is fine) */
                continue;
            }
            if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            c[i].closed_ms = now;
            c[i].how = r == 0 ? "eof" : "reset";
            close(c[i].fd);
            open--;
            printf("closed %d %lld %s\n", i, (long long)(c[i].closed_ms - c[i].first_ms), c[i].how);
            fflush(stdout);
        }
    }
    long long min = -1, max = -1;
    int closed = 0;
    for (int i = 0; i < n; i++) {
        if (c[i].closed_ms < 0) {
            printf("still_open %d after %d s (sent %zu of %zu bytes)\n", i, max_s, c[i].sent,
                   c[i].len);
            close(c[i].fd);
            continue;
        }
        long long e = c[i].closed_ms - c[i].first_ms;
        closed++;
        if (min < 0 || e < min) min = e;
        if (e > max) max = e;
    }
    printf("slow: conns=%d closed=%d min_ms=%lld max_ms=%lld\n", n, closed, min, max);
    free(c);
    free(p);
    return closed == n ? 0 : 1;
}

/* ---- cap: the connection cap ---- */

/* Reads every connection not answered yet until `end`, marking those whose answer is a
 * complete 200. Returns how many were answered now; counts connections that broke, the highest
 * index answered and when the last answer came (ms after t0). */
static int collect_answers(struct http **h, int n, bool *answered, int64_t end, int64_t t0,
                           int *broken, int *max_idx, int64_t *last_ms)
{
    int got = 0;
    for (;;) {
        struct pollfd p[1000];
        int idx[1000], np = 0;
        for (int i = 0; i < n; i++)
            if (!answered[i] && h[i]->fd >= 0)
                p[np] = (struct pollfd){h[i]->fd, POLLIN, 0}, idx[np++] = i;
        int left = (int)(end - mono_ms());
        if (np == 0 || left <= 0) return got;
        if (poll(p, (nfds_t)np, left) <= 0) continue;
        for (int k = 0; k < np; k++) {
            if (!p[k].revents) continue;
            int i = idx[k];
            if (read_more(h[i], mono_ms() + 1000) <= 0) {
                (*broken)++;
                http_close(h[i]);
                continue;
            }
            h[i]->buf[h[i]->len < sizeof h[i]->buf ? h[i]->len : sizeof h[i]->buf - 1] = '\0';
            if (strstr(h[i]->buf, "\r\n\r\n") && strncmp(h[i]->buf, "HTTP/1.1 200", 12) == 0) {
                answered[i] = true;
                got++;
                if (i > *max_idx) *max_idx = i;
                *last_ms = mono_ms() - t0;
            }
        }
    }
}

int run_cap(const struct opts *o)
{
    int port = (int)opt_num(o, "--port", 0);
    int n = (int)opt_num(o, "--conns", 40);
    int wait_ms = (int)opt_num(o, "--wait-ms", 2000);
    if (!port || n < 1 || n > 1000) {
        fprintf(stderr, "gwload cap: --port required, 1..1000 --conns\n");
        return 2;
    }
    struct http **h = calloc((size_t)n, sizeof *h);
    bool *answered = calloc((size_t)n, sizeof *answered);
    if (!h || !answered) die("calloc");
    /* The kernel completes the handshake of a connection the gateway has not accepted (it
     * waits in the listen backlog), so every connect succeeds. */
    for (int i = 0; i < n; i++) {
        if (!(h[i] = calloc(1, sizeof **h))) die("calloc");
        h[i]->port = port;
        if ((h[i]->fd = connect_loopback(port, 5000)) < 0) {
            fprintf(stderr, "gwload cap: connection %d could not connect\n", i);
            return 1;
        }
    }
    static const char req[] = "GET /v1/sites HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    for (int i = 0; i < n; i++)
        if (send(h[i]->fd, req, sizeof req - 1, MSG_NOSIGNAL) != (ssize_t)(sizeof req - 1)) {
            fprintf(stderr, "gwload cap: connection %d: send failed\n", i);
            return 1;
        }
    /* Phase 1: who is answered within wait_ms. */
    int broken = 0, first_max_idx = -1;
    int64_t t0 = mono_ms(), last_ms = 0;
    int first =
        collect_answers(h, n, answered, t0 + wait_ms, t0, &broken, &first_max_idx, &last_ms);
    printf("cap: phase1 answered=%d of %d within %d ms (highest index answered %d, broken %d)\n",
           first, n, wait_ms, first_max_idx, broken);
    /* Phase 2: close the answered ones; the rest must be answered now. */
    for (int i = 0; i < n; i++)
        if (answered[i]) http_close(h[i]);
    int later_max_idx = -1;
    last_ms = 0;
    t0 = mono_ms();
    int later = collect_answers(h, n, answered, t0 + 15000, t0, &broken, &later_max_idx, &last_ms);
    printf("cap: phase2 answered=%d of %d after the first were closed (last after %lld ms, broken "
           "%d)\n",
           later, n - first, (long long)last_ms, broken);
    printf("cap: first=%d later=%d broken=%d\n", first, later, broken);
    for (int i = 0; i < n; i++) {
        http_close(h[i]);
        free(h[i]);
    }
    free(h);
    free(answered);
    return 0;
}
