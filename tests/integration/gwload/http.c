/* gwload: clocks, options and a minimal HTTP/1.1 client. */
#include "gwload.h"

/* ---- small helpers ---- */

int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void sleep_ms(int64_t ms)
{
    if (ms <= 0) return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void die(const char *what)
{
    perror(what);
    exit(2);
}

/* Options: --name value pairs, looked up by name. */
const char *opt(const struct opts *o, const char *name, const char *def)
{
    for (int i = 0; i + 1 < o->argc; i++)
        if (strcmp(o->argv[i], name) == 0) return o->argv[i + 1];
    return def;
}

bool flag(const struct opts *o, const char *name)
{
    for (int i = 0; i < o->argc; i++)
        if (strcmp(o->argv[i], name) == 0) return true;
    return false;
}

long opt_num(const struct opts *o, const char *name, long def)
{
    const char *v = opt(o, name, NULL);
    if (!v) return def;
    char *end;
    long n = strtol(v, &end, 10);
    if (*end || end == v) {
        fprintf(stderr, "gwload: %s wants a number, not \"%s\"\n", name, v);
        exit(2);
    }
    return n;
}

int connect_loopback(int port, int timeout_ms)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        struct pollfd p = {fd, POLLOUT, 0};
        int err = 0;
        socklen_t len = sizeof err;
        if (poll(&p, 1, timeout_ms) != 1 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 ||
            err != 0) {
            close(fd);
            return -1;
        }
    }
    return fd;
}

/* ---- a minimal HTTP/1.1 client: one request at a time on a keep-alive connection ---- */

void http_close(struct http *h)
{
    if (h->fd >= 0) close(h->fd);
    h->fd = -1;
    h->len = 0;
}

/* Writes all of data before the deadline. 0, or the failed status (0 or -1). */
int send_all(struct http *h, const char *data, size_t len, int64_t deadline)
{
    size_t off = 0;
    while (off < len) {
        ssize_t n = send(h->fd, data + off, len - off, MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int64_t left = deadline - mono_ms();
            if (left <= 0) return -1;
            struct pollfd p = {h->fd, POLLOUT, 0};
            poll(&p, 1, (int)left);
            continue;
        }
        return 0;
    }
    return 1;
}

/* Reads more into h->buf before the deadline: >0 bytes, 0 closed/error, -1 timeout. */
int read_more(struct http *h, int64_t deadline)
{
    if (h->len == sizeof h->buf) return 0;
    for (;;) {
        ssize_t n = recv(h->fd, h->buf + h->len, sizeof h->buf - h->len, 0);
        if (n > 0) {
            h->len += (size_t)n;
            return (int)n;
        }
        if (n == 0) return 0;
        if (errno == EINTR) continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) return 0;
        int64_t left = deadline - mono_ms();
        if (left <= 0) return -1;
        struct pollfd p = {h->fd, POLLIN, 0};
        poll(&p, 1, (int)left);
    }
}

const char *find_header(const char *head, size_t headlen, const char *name, char *out,
                        size_t outlen)
{
    size_t nl = strlen(name);
    const char *p = head, *end = head + headlen;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
        if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) v++;
            size_t vl = (size_t)(eol - v);
            while (vl && (v[vl - 1] == '\r' || v[vl - 1] == ' ')) vl--;
            if (vl >= outlen) vl = outlen - 1;
            memcpy(out, v, vl);
            out[vl] = '\0';
            return out;
        }
        p = eol + 1;
    }
    return NULL;
}

/* One request and its answer. On any error the connection is dropped (a fresh one next). */
void http_do(struct http *h, const char *request, size_t reqlen, int timeout_ms, struct answer *a)
{
    int64_t deadline = mono_ms() + timeout_ms;
    a->status = 0;
    a->retry_after = -1;
    a->close = false;
    a->body[0] = '\0';
    if (h->fd < 0) {
        h->len = 0;
        if ((h->fd = connect_loopback(h->port, timeout_ms)) < 0) return;
    }
    int s = send_all(h, request, reqlen, deadline);
    if (s <= 0) {
        a->status = s;
        http_close(h);
        return;
    }
    char *eoh;
    for (;;) {
        h->buf[h->len < sizeof h->buf ? h->len : sizeof h->buf - 1] = '\0';
        if ((eoh = strstr(h->buf, "\r\n\r\n"))) break;
        int r = read_more(h, deadline);
        if (r <= 0) {
            a->status = r;
            http_close(h);
            return;
        }
    }
    size_t headlen = (size_t)(eoh - h->buf) + 4;
    int status = 0;
    if (sscanf(h->buf, "HTTP/1.%*d %d", &status) != 1 || status < 100) {
        fprintf(stderr, "gwload: not an HTTP answer: %.80s\n", h->buf);
        http_close(h);
        return;
    }
    char v[64];
    long clen = find_header(h->buf, headlen, "Content-Length", v, sizeof v) ? atol(v) : -1;
    if (find_header(h->buf, headlen, "Retry-After", v, sizeof v)) a->retry_after = atoi(v);
    a->close =
        find_header(h->buf, headlen, "Connection", v, sizeof v) && strcasecmp(v, "close") == 0;
    if (clen < 0 || (size_t)clen > sizeof h->buf - headlen) {
        fprintf(stderr, "gwload: answer %d without a usable Content-Length\n", status);
        http_close(h);
        return;
    }
    while (h->len < headlen + (size_t)clen) {
        int r = read_more(h, deadline);
        if (r <= 0) {
            a->status = r;
            http_close(h);
            return;
        }
    }
    size_t bl = (size_t)clen < sizeof a->body ? (size_t)clen : sizeof a->body - 1;
    memcpy(a->body, h->buf + headlen, bl);
    a->body[bl] = '\0';
    a->status = status;
    size_t used = headlen + (size_t)clen;
    memmove(h->buf, h->buf + used, h->len - used);
    h->len -= used;
    if (a->close) http_close(h);
}
