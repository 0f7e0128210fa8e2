/*
 * A JSON text writer into one growing buffer, for casewire-tail's one-object-per-line output.
 *
 * Why not jansson: a tree per record would be built only to be printed once, jansson cannot
 * hold a uint64 above INT64_MAX, and it refuses strings that are not UTF-8 (protobuf-c does
 * not check them); here invalid bytes become U+FFFD so a damaged record still prints.
 *
 * Commas are placed by the writer: every value (or key) written after the first one in an
 * object or array is preceded by ','. Out of memory sets a sticky flag that the caller checks
 * once per line (jsonw_failed) instead of after every call.
 */
#ifndef CW_TAIL_JSONW_H
#define CW_TAIL_JSONW_H

#include <stddef.h>
#include <stdint.h>

struct jsonw {
    char *buf;
    size_t len, cap;
    int need_comma; /* a value was written at this level: the next one needs ',' */
    int failed;     /* allocation failed: the buffer content is incomplete */
};

void jsonw_init(struct jsonw *w);
void jsonw_release(struct jsonw *w);
/* Empties the buffer for the next line (keeps the allocation). */
void jsonw_reset(struct jsonw *w);
int jsonw_failed(const struct jsonw *w);

void jsonw_object_begin(struct jsonw *w);
void jsonw_object_end(struct jsonw *w);
void jsonw_array_begin(struct jsonw *w);
void jsonw_array_end(struct jsonw *w);
/* An object member's name; the value written next belongs to it. */
void jsonw_key(struct jsonw *w, const char *name);

/* Strings are UTF-8; invalid sequences are written as U+FFFD, control characters escaped. */
void jsonw_string(struct jsonw *w, const char *s);
void jsonw_string_n(struct jsonw *w, const char *s, size_t n);
void jsonw_int(struct jsonw *w, int64_t v);
void jsonw_uint(struct jsonw *w, uint64_t v);
/* Finite values as numbers; NaN and infinities as the strings proto3 JSON uses. */
void jsonw_double(struct jsonw *w, double v, int float_precision);
void jsonw_bool(struct jsonw *w, int v);
void jsonw_null(struct jsonw *w);
/* Standard base64 with padding, as a JSON string (proto3 JSON for bytes). */
void jsonw_base64(struct jsonw *w, const uint8_t *data, size_t n);

#endif
