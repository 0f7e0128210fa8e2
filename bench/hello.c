/*
 * hello: the ceiling of the gateway benchmark (bench/gateway.sh). A bare libevent evhttp
 * server that answers every request with 200 {"ok":true}, keeping the connection alive: what
 * one libevent process on this machine can answer when the handler does nothing. The gateway
 * uses the same evhttp, so gateway/hello is the share of the ceiling its own work leaves.
 *
 *   hello [--port N] [--bind ADDR]   N 0 (the default) picks a free port
 *
 * Prints "port=N" on stdout once it listens; stops on SIGINT or SIGTERM.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>

/* The same bounds as the gateway's server (common/httpd.c), so that both read the same. */
#define MAX_BODY_BYTES (64 * 1024)
#define MAX_HEADER_BYTES (16 * 1024)
#define IDLE_TIMEOUT_S 30

static const char reply[] = "{\"ok\":true}";

static void on_request(struct evhttp_request *req, void *arg)
{
    struct evbuffer *out = arg;
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type", "application/json");
    /* One buffer for every answer: evhttp_send_reply() moves its contents to the connection,
     * leaving it empty, and the loop is the only thread. */
    evbuffer_add(out, reply, sizeof reply - 1);
    evhttp_send_reply(req, 200, "OK", out);
}

static void on_signal(evutil_socket_t fd, short what, void *arg)
{
    (void)fd, (void)what;
    event_base_loopbreak(arg);
}

static void usage(FILE *out)
{
    fprintf(out, "usage: hello [--port N] [--bind ADDR]\n"
                 "\n"
                 "Answers every request with 200 {\"ok\":true} over keep-alive HTTP/1.1: the\n"
                 "ceiling one libevent process reaches. Prints port=N once listening; SIGINT or\n"
                 "SIGTERM stops it.\n"
                 "\n"
                 "  -p, --port N     port to listen on, 0..65535; 0 (default) picks a free one\n"
                 "  -b, --bind ADDR  address to listen on (default 127.0.0.1)\n"
                 "  -h, --help       this help\n");
}

/* 0: run; 1: help shown; -1: bad usage. */
static int opts_parse(int argc, char **argv, int *port, const char **bind_addr)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"bind", required_argument, NULL, 'b'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "p:b:h", longopts, NULL)) != -1) {
        char *end;
        switch (ch) {
        case 'p':
            *port = (int)strtol(optarg, &end, 10);
            if (end == optarg || *end || *port < 0 || *port > 65535) {
                fprintf(stderr, "hello: --port must be 0..65535, not \"%s\"\n", optarg);
                return -1;
            }
            break;
        case 'b': *bind_addr = optarg; break;
        case 'h': usage(stdout); return 1;
        default: fprintf(stderr, "hello: see --help\n"); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hello: unexpected argument \"%s\"; see --help\n", argv[optind]);
        return -1;
    }
    return 0;
}

static int bound_port(struct evhttp_bound_socket *bound)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(evhttp_bound_socket_get_fd(bound), (struct sockaddr *)&ss, &len) < 0) return -1;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

int main(int argc, char **argv)
{
    int port = 0, rc = 1;
    const char *bind_addr = "127.0.0.1";
    int o = opts_parse(argc, argv, &port, &bind_addr);
    if (o != 0) return o > 0 ? 0 : 2;
    signal(SIGPIPE, SIG_IGN); /* a client gone mid-answer is an error code, not a death */

    struct event_base *base = event_base_new();
    struct evhttp *http = base ? evhttp_new(base) : NULL;
    struct evbuffer *out = evbuffer_new();
    struct event *sig_int = base ? evsignal_new(base, SIGINT, on_signal, base) : NULL;
    struct event *sig_term = base ? evsignal_new(base, SIGTERM, on_signal, base) : NULL;
    if (!http || !out || !sig_int || !sig_term) {
        fprintf(stderr, "hello: cannot set up the event loop\n");
        goto out_free;
    }
    evsignal_add(sig_int, NULL);
    evsignal_add(sig_term, NULL);
    evhttp_set_max_body_size(http, MAX_BODY_BYTES);
    evhttp_set_max_headers_size(http, MAX_HEADER_BYTES);
    evhttp_set_timeout(http, IDLE_TIMEOUT_S);
    evhttp_set_allowed_methods(http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD | EVHTTP_REQ_POST |
                                         EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE);
    evhttp_set_gencb(http, on_request, out);

    struct evhttp_bound_socket *bound =
        evhttp_bind_socket_with_handle(http, bind_addr, (ev_uint16_t)port);
    int actual = bound ? bound_port(bound) : -1;
    if (actual < 0) {
        fprintf(stderr, "hello: cannot listen on %s:%d\n", bind_addr, port);
        goto out_free;
    }
    printf("port=%d\n", actual);
    fflush(stdout);
    rc = event_base_dispatch(base) < 0 ? 1 : 0;

out_free:
    if (sig_term) event_free(sig_term);
    if (sig_int) event_free(sig_int);
    if (out) evbuffer_free(out);
    if (http) evhttp_free(http);
    if (base) event_base_free(base);
    return rc;
}
