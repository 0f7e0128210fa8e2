#include "jsonw.h"

#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void jsonw_init(struct jsonw *w) { memset(w, 0, sizeof *w); }

void jsonw_release(struct jsonw *w)
{
    free(w->buf);
    memset(w, 0, sizeof *w);
}

void jsonw_reset(struct jsonw *w)
{
    w->len = 0;
    w->need_comma = 0;
    w->failed = 0;
}

int jsonw_failed(const struct jsonw *w) { return w->failed; }

/* Makes room for n more bytes (and a NUL, so the line can be handed to stdio as a string). */
static int reserve(struct jsonw *w, size_t n)
{
    if (w->failed) return -1;
    if (w->len + n + 1 <= w->cap) return 0;
    size_t cap = w->cap ? w->cap : 4096;
    while (cap < w->len + n + 1) {
        if (cap > SIZE_MAX / 2) goto fail;
        cap *= 2;
    }
    char *nb = realloc(w->buf, cap);
    if (!nb) goto fail;
    w->buf = nb;
    w->cap = cap;
    return 0;
fail:
    w->failed = 1;
    return -1;
}

static void put(struct jsonw *w, const char *s, size_t n)
{
    if (reserve(w, n) != 0) return;
    memcpy(w->buf + w->len, s, n);
    w->len += n;
    w->buf[w->len] = '\0';
}

static void put_c(struct jsonw *w, char c) { put(w, &c, 1); }

/* Before any value or key: the separator from the previous sibling. */
static void separate(struct jsonw *w)
{
    if (w->need_comma) put_c(w, ',');
    w->need_comma = 0;
}

void jsonw_object_begin(struct jsonw *w)
{
    separate(w);
    put_c(w, '{');
}

void jsonw_object_end(struct jsonw *w)
{
    put_c(w, '}');
    w->need_comma = 1;
}

void jsonw_array_begin(struct jsonw *w)
{
    separate(w);
    put_c(w, '[');
}

void jsonw_array_end(struct jsonw *w)
{
    put_c(w, ']');
    w->need_comma = 1;
}

void jsonw_key(struct jsonw *w, const char *name)
{
    jsonw_string(w, name);
    put_c(w, ':');
    w->need_comma = 0; /* the member's value follows without a comma */
}

/* Length of the well-formed UTF-8 sequence at p (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), or 0 when the bytes there are not one. */
static size_t utf8_len(const unsigned char *p, size_t left)
{
    unsigned char c = p[0];
    size_t n;
    uint32_t cp;
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        n = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        n = 4, cp = c & 0x07;
    else
        return 0;
    if (n > left) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return n;
}

void jsonw_string_n(struct jsonw *w, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    separate(w);
    put_c(w, '"');
    size_t i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            put(w, esc, 2);
            i++;
        } else if (c < 0x20) {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            if (c == '\n')
                put(w, "\\n", 2);
            else if (c == '\t')
                put(w, "\\t", 2);
            else if (c == '\r')
                put(w, "\\r", 2);
            else
                put(w, esc, 6);
            i++;
        } else {
            size_t len = utf8_len(p + i, n - i);
            if (len == 0) {
                put(w, "\xEF\xBF\xBD", 3); /* U+FFFD for one invalid byte, then resync */
                i++;
            } else {
                put(w, s + i, len);
                i += len;
            }
        }
    }
    put_c(w, '"');
    w->need_comma = 1;
}

void jsonw_string(struct jsonw *w, const char *s) { jsonw_string_n(w, s, s ? strlen(s) : 0); }

void jsonw_int(struct jsonw *w, int64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRId64, v);
    separate(w);
    put(w, num, (size_t)n);
    w->need_comma = 1;
}

void jsonw_uint(struct jsonw *w, uint64_t v)
{
    char num[24];
    int n = snprintf(num, sizeof num, "%" PRIu64, v);
    separate(w);
    put(w, num, (size_t)n);
    w->need_comma = 1;
}

void jsonw_double(struct jsonw *w, double v, int float_precision)
{
    if (isnan(v)) {
        jsonw_string(w, "NaN");
        return;
    }
    if (isinf(v)) {
        jsonw_string(w, v > 0 ? "Infinity" : "-Infinity");
        return;
    }
    char num[40];
    /* 9 significant digits round-trip a float, 17 a double. */
    int n = snprintf(num, sizeof num, "%.*g", float_precision ? 9 : 17, v);
    separate(w);
    put(w, num, (size_t)n);
    w->need_comma = 1;
}

void jsonw_bool(struct jsonw *w, int v)
{
    separate(w);
    put(w, v ? "true" : "false", v ? 4 : 5);
    w->need_comma = 1;
}

void jsonw_null(struct jsonw *w)
{
    separate(w);
    put(w, "null", 4);
    w->need_comma = 1;
}

void jsonw_base64(struct jsonw *w, const uint8_t *data, size_t n)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    separate(w);
    put_c(w, '"');
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16;
        if (i + 1 < n) v |= (uint32_t)data[i + 1] << 8;
        if (i + 2 < n) v |= data[i + 2];
        char q[4] = {tab[(v >> 18) & 63], tab[(v >> 12) & 63], i + 1 < n ? tab[(v >> 6) & 63] : '=',
                     i + 2 < n ? tab[v & 63] : '='};
        put(w, q, 4);
    }
    put_c(w, '"');
    w->need_comma = 1;
}
