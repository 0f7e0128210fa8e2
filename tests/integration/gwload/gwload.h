/* gwload's pieces (main.c says what the program is for). */
#ifndef GWLOAD_H
#define GWLOAD_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct opts {
    int argc;
    char **argv;
};

struct http {
    int port;
    int fd; /* -1: not connected */
    char buf[256 * 1024];
    size_t len;
};

struct answer {
    int status;      /* HTTP status; 0 connection error; -1 timeout */
    int retry_after; /* seconds, -1 when absent */
    bool close;      /* the server will close the connection */
    char body[8192];
};

/* http.c: clocks, options, and a minimal HTTP/1.1 client (one request at a time on a
 * keep-alive connection) */
int64_t mono_ms(void);
int64_t wall_ms(void);
void sleep_ms(int64_t ms);
void die(const char *what);
const char *opt(const struct opts *o, const char *name, const char *def);
bool flag(const struct opts *o, const char *name);
long opt_num(const struct opts *o, const char *name, long def);
int connect_loopback(int port, int timeout_ms);
void http_close(struct http *h);
/* Writes all of data before the deadline. 0, or the failed status (0 or -1). */
int send_all(struct http *h, const char *data, size_t len, int64_t deadline);
int read_more(struct http *h, int64_t deadline);
const char *find_header(const char *head, size_t headlen, const char *name, char *out,
                        size_t outlen);
void http_do(struct http *h, const char *request, size_t reqlen, int timeout_ms, struct answer *a);

/* the modes */
int run_post(const struct opts *o);   /* post.c */
int run_slow(const struct opts *o);   /* conns.c */
int run_cap(const struct opts *o);    /* conns.c */
int run_verify(const struct opts *o); /* verify.c */

#endif
