/*
 * The staff console (docs/console.md): plain HTML, CSS and JavaScript under
 * services/gateway/console/, built into the gateway's binary by scripts/embed-console.sh, so
 * the files served are always those the binary was built with and nothing comes from a CDN.
 *   GET /            redirects to /console/
 *   GET /console     redirects to /console/
 *   GET /console/    index.html
 *   GET /console/F   the file F
 * The console signs in with a staff token it keeps in the browser's session storage and sends
 * as Authorization: Bearer on every API call; these files themselves are public.
 */
#include <event2/http.h>
#include <string.h>

#include "gateway.h"

struct console_file {
    const char *name; /* "index.html" */
    const unsigned char *data;
    unsigned long len;
};
extern const struct console_file cw_console_files[];
extern const unsigned long cw_console_nfiles;

bool gw_console_path(const char *path)
{
    return !strcmp(path, "/") || !strcmp(path, "/console") || !strncmp(path, "/console/", 9);
}

static const char *content_type(const char *name)
{
    const char *dot = strrchr(name, '.');
    static const char *const types[][2] = {
        {".html", "text/html; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".json", "application/json; charset=utf-8"},
        {".txt", "text/plain; charset=utf-8"},
    };
    for (size_t i = 0; dot && i < sizeof types / sizeof *types; i++)
        if (!strcmp(dot, types[i][0])) return types[i][1];
    return "application/octet-stream";
}

void gw_console_serve(struct gw_req *r, const char *path)
{
    struct evkeyvalq *h = evhttp_request_get_output_headers(r->req);
    if (!strcmp(path, "/") || !strcmp(path, "/console")) {
        evhttp_add_header(h, "Location", "/console/");
        gw_reply_typed(r, 302, "text/plain; charset=utf-8", NULL, "/console/\n", 11);
        return;
    }
    const char *name = path + 9;
    if (!*name) name = "index.html";
    for (unsigned long i = 0; i < cw_console_nfiles; i++) {
        const struct console_file *f = &cw_console_files[i];
        if (strcmp(f->name, name)) continue;
        /* everything is ours: no script, style or image from anywhere else, no framing */
        evhttp_add_header(h, "Content-Security-Policy",
                          "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'");
        evhttp_add_header(h, "X-Content-Type-Options", "nosniff");
        evhttp_add_header(h, "Referrer-Policy", "no-referrer");
        evhttp_add_header(h, "Cache-Control", "no-cache");
        gw_reply_typed(r, 200, content_type(f->name), NULL, (const char *)f->data, f->len);
        return;
    }
    gw_error(r, 404, "not_found", "no such file in the console", NULL);
}
