/* yaml2json FILE: every document of a YAML stream (multi-document files too) as one JSON array
 * on stdout, for tests/integration/deploy.sh to read with jq.
 *
 *   mappings  -> objects (keys must be scalars; a key given twice is an error)
 *   sequences -> arrays
 *   scalars   -> strings, except plain (unquoted, untagged) scalars that the YAML 1.2 core
 *                schema resolves otherwise:
 *                  null:   ~ null Null NULL and the empty scalar
 *                  bool:   true True TRUE false False FALSE
 *                  int:    [-+]?[0-9]+, 0o[0-7]+, 0x[0-9a-fA-F]+ (a real if beyond 64 bits)
 *                  float:  [-+]?(.[0-9]+|[0-9]+(.[0-9]*)?)([eE][-+]?[0-9]+)?
 *                          (.inf, -.inf and .nan stay strings: JSON has no such numbers)
 *                YAML 1.1's yes/no/on/off, 0644-as-octal and 1_000 are NOT resolved: they stay
 *                strings (or decimal 644). Write manifests that mean the same either way.
 *   tags      -> !!str (and the non-specific "!") make a string, !!int !!float !!bool !!null
 *                must resolve as such, !!map !!seq are allowed; any other tag is refused.
 *   anchors and aliases are refused (a manifest that needs them is harder to review).
 *
 * Exit status 0; 1 on any YAML error, printed as FILE:LINE:COLUMN: what (1-based); 2 on bad
 * usage or an unreadable file. */
#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define MAX_DEPTH 256
#define TAG_PREFIX "tag:yaml.org,2002:"

struct ctx {
    yaml_parser_t parser;
    const char *file;
    bool failed;
};

static void fail_at(struct ctx *c, yaml_mark_t mark, const char *what, const char *detail)
{
    if (c->failed) return;
    c->failed = true;
    fprintf(stderr, "%s:%zu:%zu: %s%s%s\n", c->file, mark.line + 1, mark.column + 1, what,
            detail ? ": " : "", detail ? detail : "");
}

static bool next_event(struct ctx *c, yaml_event_t *ev)
{
    if (yaml_parser_parse(&c->parser, ev)) return true;
    yaml_parser_t *p = &c->parser;
    char what[512];
    if (p->context)
        snprintf(what, sizeof what, "%s %s", p->problem ? p->problem : "error", p->context);
    else
        snprintf(what, sizeof what, "%s", p->problem ? p->problem : "YAML error");
    fail_at(c, p->problem_mark, what, NULL);
    return false;
}

static bool all_in(const char *s, const char *set)
{
    if (!*s) return false;
    for (; *s; s++)
        if (!strchr(set, *s)) return false;
    return true;
}

static const char *digits = "0123456789";

static bool is_core_int(const char *s)
{
    if (!strncmp(s, "0o", 2)) return all_in(s + 2, "01234567");
    if (!strncmp(s, "0x", 2)) return all_in(s + 2, "0123456789abcdefABCDEF");
    if (*s == '-' || *s == '+') s++;
    return all_in(s, digits);
}

/* [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool is_core_float(const char *s)
{
    if (*s == '-' || *s == '+') s++;
    size_t lead = strspn(s, digits);
    s += lead;
    if (*s == '.') {
        s++;
        size_t frac = strspn(s, digits);
        if (!lead && !frac) return false;
        s += frac;
    } else if (!lead) {
        return false;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '-' || *s == '+') s++;
        size_t ex = strspn(s, digits);
        if (!ex) return false;
        s += ex;
    }
    return *s == '\0';
}

static bool is_null(const char *s)
{
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

static int is_bool(const char *s) /* 1 true, 0 false, -1 neither */
{
    if (!strcmp(s, "true") || !strcmp(s, "True") || !strcmp(s, "TRUE")) return 1;
    if (!strcmp(s, "false") || !strcmp(s, "False") || !strcmp(s, "FALSE")) return 0;
    return -1;
}

static json_t *int_value(const char *s)
{
    int base = 10;
    const char *p = s;
    if (!strncmp(s, "0o", 2)) base = 8, p = s + 2;
    if (!strncmp(s, "0x", 2)) base = 16, p = s + 2;
    errno = 0;
    char *end;
    long long v = strtoll(p, &end, base);
    if (errno == ERANGE) return json_real(strtod(s, NULL)); /* base 10 only reaches here */
    return json_integer((json_int_t)v);
}

/* What the core schema makes of a plain scalar. */
static json_t *resolve_plain(const char *s)
{
    if (is_null(s)) return json_null();
    int b = is_bool(s);
    if (b >= 0) return json_boolean(b);
    if (is_core_int(s)) return int_value(s);
    if (is_core_float(s)) return json_real(strtod(s, NULL));
    return json_string(s);
}

static json_t *scalar(struct ctx *c, const yaml_event_t *ev)
{
    const char *v = (const char *)ev->data.scalar.value;
    const char *tag = (const char *)ev->data.scalar.tag;
    yaml_mark_t at = ev->start_mark;
    if (strlen(v) != ev->data.scalar.length) {
        fail_at(c, at, "a scalar with a NUL character", NULL);
        return NULL;
    }
    json_t *out = NULL;
    if (!tag) {
        bool plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        out = plain ? resolve_plain(v) : json_string(v);
    } else if (!strcmp(tag, "!") || !strcmp(tag, TAG_PREFIX "str")) {
        out = json_string(v);
    } else if (!strcmp(tag, TAG_PREFIX "null")) {
        if (!is_null(v)) fail_at(c, at, "not a null", v);
        out = json_null();
    } else if (!strcmp(tag, TAG_PREFIX "bool")) {
        if (is_bool(v) < 0) fail_at(c, at, "not a bool", v);
        out = json_boolean(is_bool(v) == 1);
    } else if (!strcmp(tag, TAG_PREFIX "int")) {
        if (!is_core_int(v)) fail_at(c, at, "not an int", v);
        out = int_value(v);
    } else if (!strcmp(tag, TAG_PREFIX "float")) {
        if (!is_core_float(v) && !is_core_int(v)) fail_at(c, at, "not a float", v);
        out = json_real(strtod(v, NULL));
    } else {
        fail_at(c, at, "tag not supported", tag);
    }
    if (c->failed) {
        json_decref(out);
        return NULL;
    }
    if (!out) fail_at(c, at, "out of memory or not UTF-8", NULL);
    return out;
}

static json_t *node(struct ctx *c, yaml_event_t *ev, int depth);

/* Reads nodes up to the end event; for a mapping, pairs of key and value. */
static json_t *collection(struct ctx *c, const yaml_event_t *start, bool mapping, int depth)
{
    json_t *out = mapping ? json_object() : json_array();
    yaml_event_type_t end = mapping ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;
    if (!out) {
        fail_at(c, start->start_mark, "out of memory", NULL);
        return NULL;
    }
    for (;;) {
        yaml_event_t ev;
        if (!next_event(c, &ev)) break;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            return out;
        }
        if (!mapping) {
            json_t *item = node(c, &ev, depth + 1);
            if (!item || json_array_append_new(out, item) != 0) break;
            continue;
        }
        /* a key: a scalar, untagged or !!str, no anchor */
        yaml_mark_t key_at = ev.start_mark;
        if (ev.type != YAML_SCALAR_EVENT) {
            fail_at(c, key_at, "a mapping key that is not a scalar", NULL);
            yaml_event_delete(&ev);
            break;
        }
        if (ev.data.scalar.anchor) {
            fail_at(c, key_at, "anchors are refused", (const char *)ev.data.scalar.anchor);
            yaml_event_delete(&ev);
            break;
        }
        /* JSON keys are text: a plain key like 8080 or true keeps its spelling */
        const char *ktag = (const char *)ev.data.scalar.tag;
        if (ktag && strcmp(ktag, "!") && strcmp(ktag, TAG_PREFIX "str")) {
            fail_at(c, key_at, "tag not supported on a key", ktag);
            yaml_event_delete(&ev);
            break;
        }
        char *key = NULL;
        if (strlen((const char *)ev.data.scalar.value) == ev.data.scalar.length)
            key = strdup((const char *)ev.data.scalar.value);
        yaml_event_delete(&ev);
        if (!key) {
            fail_at(c, key_at, "a key with a NUL character, or out of memory", NULL);
            break;
        }
        if (json_object_get(out, key)) {
            fail_at(c, key_at, "duplicate mapping key", key);
            free(key);
            break;
        }
        yaml_event_t vev;
        if (!next_event(c, &vev)) {
            free(key);
            break;
        }
        json_t *val = node(c, &vev, depth + 1);
        if (!val) {
            free(key);
            break;
        }
        int rc = json_object_set_new(out, key, val);
        free(key);
        if (rc != 0) {
            fail_at(c, key_at, "a key that is not UTF-8", NULL);
            break;
        }
    }
    json_decref(out);
    return NULL;
}

/* Consumes ev (a node's first event) and what belongs to it. */
static json_t *node(struct ctx *c, yaml_event_t *ev, int depth)
{
    json_t *out = NULL;
    yaml_mark_t at = ev->start_mark;
    const yaml_char_t *anchor = NULL;
    if (ev->type == YAML_SCALAR_EVENT) anchor = ev->data.scalar.anchor;
    if (ev->type == YAML_SEQUENCE_START_EVENT) anchor = ev->data.sequence_start.anchor;
    if (ev->type == YAML_MAPPING_START_EVENT) anchor = ev->data.mapping_start.anchor;
    const char *tag = NULL;
    if (ev->type == YAML_SEQUENCE_START_EVENT) tag = (const char *)ev->data.sequence_start.tag;
    if (ev->type == YAML_MAPPING_START_EVENT) tag = (const char *)ev->data.mapping_start.tag;

    if (depth > MAX_DEPTH) {
        fail_at(c, at, "nested too deep", NULL);
    } else if (anchor) {
        fail_at(c, at, "anchors are refused", (const char *)anchor);
    } else if (tag && strcmp(tag, TAG_PREFIX "map") && strcmp(tag, TAG_PREFIX "seq")) {
        fail_at(c, at, "tag not supported", tag);
    } else {
        switch (ev->type) {
        case YAML_ALIAS_EVENT:
            fail_at(c, at, "aliases are refused", (const char *)ev->data.alias.anchor);
            break;
        case YAML_SCALAR_EVENT: out = scalar(c, ev); break;
        case YAML_SEQUENCE_START_EVENT: out = collection(c, ev, false, depth); break;
        case YAML_MAPPING_START_EVENT: out = collection(c, ev, true, depth); break;
        default: fail_at(c, at, "unexpected event", NULL); break;
        }
    }
    yaml_event_delete(ev);
    return out;
}

int main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-') {
        fprintf(stderr, "usage: yaml2json FILE   (every document, as a JSON array on stdout)\n");
        return 2;
    }
    struct ctx c = {.file = argv[1]};
    FILE *f = fopen(c.file, "rb");
    if (!f) {
        fprintf(stderr, "%s: %s\n", c.file, strerror(errno));
        return 2;
    }
    json_t *docs = json_array();
    if (!docs || !yaml_parser_initialize(&c.parser)) {
        fprintf(stderr, "yaml2json: out of memory\n");
        return 2;
    }
    yaml_parser_set_input_file(&c.parser, f);
    bool done = false;
    while (!done && !c.failed) {
        yaml_event_t ev;
        if (!next_event(&c, &ev)) break;
        switch (ev.type) {
        case YAML_STREAM_START_EVENT:
        case YAML_DOCUMENT_END_EVENT: break;
        case YAML_STREAM_END_EVENT: done = true; break;
        case YAML_DOCUMENT_START_EVENT: {
            yaml_event_t root;
            if (!next_event(&c, &root)) break;
            json_t *doc = node(&c, &root, 0);
            if (doc && json_array_append_new(docs, doc) != 0) fail_at(&c, ev.start_mark, "oom", 0);
            break;
        }
        default: fail_at(&c, ev.start_mark, "unexpected event", NULL); break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&c.parser);
    fclose(f);
    if (c.failed) {
        json_decref(docs);
        return 1;
    }
    int rc = json_dumpf(docs, stdout, JSON_COMPACT) == 0 && fputc('\n', stdout) != EOF ? 0 : 2;
    json_decref(docs);
    if (fflush(stdout) != 0) rc = 2;
    return rc;
}
