#include "yamldoc.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

/* Nodes are built with mutable fields, then only ever handed out as const. */
struct node {
    struct cw_ynode pub;
    size_t cap; /* allocated items or pairs */
};

struct cw_ydoc {
    struct node *root;
};

struct frame {
    struct node *node;
    struct node *pending_key; /* maps: key read, value not yet */
};

struct builder {
    yaml_parser_t parser;
    struct frame stack[CW_YDOC_MAX_DEPTH];
    int depth;
    struct node *root;
    bool had_document;
    int errors;
    cw_ydoc_report_fn *report;
    void *arg;
};

static void __attribute__((format(printf, 4, 5)))
report(struct builder *b, int line, int column, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    b->errors++;
    if (b->report) b->report(line, column, msg, b->arg);
}

static void node_free(struct node *n)
{
    if (!n) return;
    if (n->pub.type == CW_YNODE_SCALAR) free((void *)n->pub.str);
    for (size_t i = 0; n->pub.type == CW_YNODE_SEQ && i < n->pub.n; i++)
        node_free((struct node *)n->pub.items[i]);
    for (size_t i = 0; n->pub.type == CW_YNODE_MAP && i < n->pub.n; i++) {
        node_free((struct node *)n->pub.pairs[i].key);
        node_free((struct node *)n->pub.pairs[i].value);
    }
    free((void *)n->pub.items);
    free((void *)n->pub.pairs);
    free(n);
}

static struct node *node_new(enum cw_ynode_type type, const yaml_mark_t *mark)
{
    struct node *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->pub.type = type;
    n->pub.line = (int)mark->line + 1;
    n->pub.column = (int)mark->column + 1;
    return n;
}

static struct node *scalar_new(struct builder *b, const yaml_event_t *ev)
{
    struct node *n = node_new(CW_YNODE_SCALAR, &ev->start_mark);
    char *s = n ? malloc(ev->data.scalar.length + 1) : NULL;
    if (!s) {
        free(n);
        return NULL;
    }
    memcpy(s, ev->data.scalar.value, ev->data.scalar.length);
    s[ev->data.scalar.length] = '\0';
    n->pub.str = s;
    n->pub.len = ev->data.scalar.length;
    n->pub.plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    if (memchr(s, '\0', n->pub.len)) {
        report(b, n->pub.line, n->pub.column, "a NUL character is not allowed in a string");
        n->pub.len = strlen(s);
    }
    return n;
}

/* Grows the items or pairs array of a container by one slot. */
static int grow(struct node *n)
{
    if (n->pub.n < n->cap) return 0;
    size_t cap = n->cap ? n->cap * 2 : 4;
    if (n->pub.type == CW_YNODE_SEQ) {
        void *p = realloc((void *)n->pub.items, cap * sizeof *n->pub.items);
        if (!p) return -1;
        n->pub.items = p;
    } else {
        void *p = realloc((void *)n->pub.pairs, cap * sizeof *n->pub.pairs);
        if (!p) return -1;
        n->pub.pairs = p;
    }
    n->cap = cap;
    return 0;
}

/* Attaches a finished or just-opened node to its parent. Returns -1 to stop. */
static int attach(struct builder *b, struct node *n)
{
    if (b->depth == 0) {
        b->root = n;
        return 0;
    }
    struct frame *f = &b->stack[b->depth - 1];
    struct node *p = f->node;
    if (p->pub.type == CW_YNODE_MAP && !f->pending_key) {
        if (n->pub.type != CW_YNODE_SCALAR) {
            report(b, n->pub.line, n->pub.column, "a map key must be a plain string");
            node_free(n);
            return -1;
        }
        f->pending_key = n;
        return 0;
    }
    if (grow(p) < 0) {
        report(b, n->pub.line, n->pub.column, "out of memory");
        node_free(n);
        return -1;
    }
    if (p->pub.type == CW_YNODE_SEQ) {
        ((const struct cw_ynode **)p->pub.items)[p->pub.n++] = &n->pub;
    } else {
        struct cw_ypair *pair = (struct cw_ypair *)&p->pub.pairs[p->pub.n++];
        pair->key = &f->pending_key->pub;
        pair->value = &n->pub;
        f->pending_key = NULL;
    }
    return 0;
}

static int cmp_pair_key(const void *a, const void *b)
{
    const struct cw_ypair *x = *(const struct cw_ypair *const *)a;
    const struct cw_ypair *y = *(const struct cw_ypair *const *)b;
    int c = strcmp(x->key->str, y->key->str);
    if (c) return c;
    return x->key->line != y->key->line ? (x->key->line < y->key->line ? -1 : 1)
                                        : (x->key->column < y->key->column ? -1 : 1);
}

/* Sorting makes this O(n log n) even for a hostile map with a million keys. */
static void check_duplicate_keys(struct builder *b, const struct node *map)
{
    size_t n = map->pub.n;
    if (n < 2) return;
    const struct cw_ypair **v = malloc(n * sizeof *v);
    if (!v) return;
    for (size_t i = 0; i < n; i++) v[i] = &map->pub.pairs[i];
    qsort(v, n, sizeof *v, cmp_pair_key);
    for (size_t i = 1; i < n; i++) {
        const struct cw_ynode *k = v[i]->key, *first = v[i - 1]->key;
        if (strcmp(k->str, first->str) != 0) continue;
        size_t j = i - 1;
        while (j > 0 && strcmp(v[j - 1]->key->str, k->str) == 0) j--;
        report(b, k->line, k->column, "duplicate key \"%s\" (first at line %d)", k->str,
               v[j]->key->line);
    }
    free(v);
}

static int open_container(struct builder *b, enum cw_ynode_type type, const yaml_event_t *ev)
{
    if (b->depth >= CW_YDOC_MAX_DEPTH) {
        report(b, (int)ev->start_mark.line + 1, (int)ev->start_mark.column + 1,
               "nested more than %d levels deep", CW_YDOC_MAX_DEPTH);
        return -1;
    }
    struct node *n = node_new(type, &ev->start_mark);
    if (!n) {
        report(b, (int)ev->start_mark.line + 1, 0, "out of memory");
        return -1;
    }
    if (attach(b, n) < 0) return -1;
    b->stack[b->depth++] = (struct frame){.node = n};
    return 0;
}

static void close_container(struct builder *b)
{
    struct frame *f = &b->stack[--b->depth];
    if (f->node->pub.type == CW_YNODE_MAP) check_duplicate_keys(b, f->node);
    node_free(f->pending_key); /* only after an error */
}

/* Handles one event. Returns 1 at the end of the stream, 0 to go on, -1 to stop. */
static int on_event(struct builder *b, const yaml_event_t *ev)
{
    int line = (int)ev->start_mark.line + 1, col = (int)ev->start_mark.column + 1;
    switch (ev->type) {
    case YAML_STREAM_END_EVENT: return 1;
    case YAML_DOCUMENT_START_EVENT:
        if (b->had_document) {
            report(b, line, col, "only one YAML document is allowed per file");
            return -1;
        }
        b->had_document = true;
        return 0;
    case YAML_ALIAS_EVENT:
        report(b, line, col, "aliases (*%s) are not allowed", (const char *)ev->data.alias.anchor);
        return -1;
    case YAML_SCALAR_EVENT: {
        struct node *n = scalar_new(b, ev);
        if (!n) {
            report(b, line, col, "out of memory");
            return -1;
        }
        return attach(b, n);
    }
    case YAML_SEQUENCE_START_EVENT: return open_container(b, CW_YNODE_SEQ, ev);
    case YAML_MAPPING_START_EVENT: return open_container(b, CW_YNODE_MAP, ev);
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: close_container(b); return 0;
    default: return 0;
    }
}

/* Reader errors (bad UTF-8) only know the byte offset: count lines up to it. */
static int line_of_offset(const char *buf, size_t len, size_t offset)
{
    int line = 1;
    for (size_t i = 0; i < offset && i < len; i++) line += buf[i] == '\n';
    return line;
}

static void report_parser_error(struct builder *b, const char *buf, size_t len)
{
    const yaml_parser_t *p = &b->parser;
    const char *problem = p->problem ? p->problem : "cannot parse";
    if (p->error == YAML_MEMORY_ERROR) problem = "out of memory";
    int line = (int)p->problem_mark.line + 1, col = (int)p->problem_mark.column + 1;
    if (p->error == YAML_READER_ERROR) {
        report(b, line_of_offset(buf, len, p->problem_offset), 0,
               "YAML syntax error: %s at byte %zu", problem, p->problem_offset);
    } else if (p->context) {
        report(b, line, col, "YAML syntax error: %s (%s at line %d)", problem, p->context,
               (int)p->context_mark.line + 1);
    } else {
        report(b, line, col, "YAML syntax error: %s", problem);
    }
}

cw_ydoc *cw_ydoc_parse(const char *buf, size_t len, cw_ydoc_report_fn *report_fn, void *arg)
{
    struct builder b = {.report = report_fn, .arg = arg};
    if (!yaml_parser_initialize(&b.parser)) {
        report(&b, 0, 0, "out of memory");
        return NULL;
    }
    yaml_parser_set_input_string(&b.parser, (const unsigned char *)buf, len);
    int rc = 0;
    while (rc == 0) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&b.parser, &ev)) {
            report_parser_error(&b, buf, len);
            rc = -1;
            break;
        }
        rc = on_event(&b, &ev);
        yaml_event_delete(&ev);
    }
    while (b.depth > 0) close_container(&b); /* only after an error */
    yaml_parser_delete(&b.parser);
    if (rc > 0 && !b.root) report(&b, 1, 1, "the file is empty");
    cw_ydoc *d = NULL;
    if (b.errors == 0 && (d = calloc(1, sizeof *d)) != NULL) {
        d->root = b.root;
        return d;
    }
    node_free(b.root);
    return NULL;
}

static char *read_file(const char *path, size_t max, size_t *len, struct builder *b)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    char *buf = NULL;
    if (fd < 0 || fstat(fd, &st) < 0) {
        report(b, 0, 0, "cannot open: %s", strerror(errno));
        goto close_fd;
    }
    if (!S_ISREG(st.st_mode)) {
        report(b, 0, 0, "not a regular file");
        goto close_fd;
    }
    if ((unsigned long long)st.st_size > max) {
        report(b, 0, 0, "the file is %lld bytes, more than the limit of %zu", (long long)st.st_size,
               max);
        goto close_fd;
    }
    buf = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (buf && got <= (size_t)st.st_size) { /* reads one byte past: the file may grow */
        ssize_t r = read(fd, buf + got, (size_t)st.st_size + 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (buf && got != (size_t)st.st_size) {
        report(b, 0, 0, "the file changed while it was read");
        free(buf);
        buf = NULL;
    }
    *len = got;
close_fd:
    if (fd >= 0) close(fd);
    return buf;
}

cw_ydoc *cw_ydoc_load(const char *path, size_t max_bytes, cw_ydoc_report_fn *report_fn, void *arg)
{
    struct builder b = {.report = report_fn, .arg = arg};
    size_t len = 0;
    char *buf = read_file(path, max_bytes ? max_bytes : CW_YDOC_MAX_BYTES, &len, &b);
    if (!buf) return NULL;
    cw_ydoc *d = cw_ydoc_parse(buf, len, report_fn, arg);
    free(buf);
    return d;
}

void cw_ydoc_free(cw_ydoc *d)
{
    if (!d) return;
    node_free(d->root);
    free(d);
}

const struct cw_ynode *cw_ydoc_root(const cw_ydoc *d) { return &d->root->pub; }

const struct cw_ynode *cw_ynode_key(const struct cw_ynode *n, const char *key)
{
    if (!n || n->type != CW_YNODE_MAP) return NULL;
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->pairs[i].key->str, key) == 0) return n->pairs[i].key;
    return NULL;
}

const struct cw_ynode *cw_ynode_get(const struct cw_ynode *n, const char *key)
{
    if (!n || n->type != CW_YNODE_MAP) return NULL;
    for (size_t i = 0; i < n->n; i++)
        if (strcmp(n->pairs[i].key->str, key) == 0) return n->pairs[i].value;
    return NULL;
}

bool cw_ynode_is_null(const struct cw_ynode *n)
{
    if (!n || n->type != CW_YNODE_SCALAR || !n->plain) return false;
    const char *s = n->str;
    return !*s || !strcmp(s, "~") || !strcmp(s, "null") || !strcmp(s, "Null") || !strcmp(s, "NULL");
}

const char *cw_ynode_describe(const struct cw_ynode *n)
{
    if (!n || cw_ynode_is_null(n)) return "nothing";
    switch (n->type) {
    case CW_YNODE_MAP: return "a map";
    case CW_YNODE_SEQ: return "a list";
    case CW_YNODE_SCALAR: return "a string";
    }
    return "?";
}
