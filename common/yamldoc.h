/*
 * A YAML file as a read-only tree of maps, sequences and scalars, each node knowing its
 * 1-based line and column, so that a loader can say where a bad value is.
 *
 * Only the safe subset of YAML a configuration file needs is accepted:
 *   - one document per file, at most max_bytes long (CW_YDOC_MAX_BYTES by default);
 *   - no aliases (*name): they are how a small file expands into a huge tree ("billion
 *     laughs"), and a configuration has no use for them; anchors alone are ignored;
 *   - map keys are scalars, unique within their map;
 *   - nesting at most CW_YDOC_MAX_DEPTH levels; no NUL characters in scalars.
 * Tags are ignored: every scalar is text, and the reader decides what it means (the `plain`
 * flag tells `null` from "null").
 */
#ifndef CW_YAMLDOC_H
#define CW_YAMLDOC_H

#include <stdbool.h>
#include <stddef.h>

#define CW_YDOC_MAX_BYTES (8u << 20)
#define CW_YDOC_MAX_DEPTH 64

enum cw_ynode_type { CW_YNODE_SCALAR = 1, CW_YNODE_SEQ, CW_YNODE_MAP };

struct cw_ynode;

struct cw_ypair {
    const struct cw_ynode *key; /* always a scalar */
    const struct cw_ynode *value;
};

struct cw_ynode {
    enum cw_ynode_type type;
    int line, column; /* 1-based, where the node starts */
    /* CW_YNODE_SCALAR */
    const char *str; /* NUL-terminated, no NUL inside */
    size_t len;
    bool plain; /* unquoted, not a block scalar */
    /* CW_YNODE_SEQ: items[0..n-1]; CW_YNODE_MAP: pairs[0..n-1] in file order */
    size_t n;
    const struct cw_ynode *const *items;
    const struct cw_ypair *pairs;
};

typedef struct cw_ydoc cw_ydoc;

/* One problem; line and column are 1-based (0 when unknown). */
typedef void cw_ydoc_report_fn(int line, int column, const char *message, void *arg);

/* Reads and parses `path`. Returns NULL after reporting every problem found (a syntax error
 * stops the parse; duplicate keys do not). max_bytes 0 means CW_YDOC_MAX_BYTES. */
cw_ydoc *cw_ydoc_load(const char *path, size_t max_bytes, cw_ydoc_report_fn *report, void *arg);
/* The same from memory (for tests and embedded defaults). */
cw_ydoc *cw_ydoc_parse(const char *buf, size_t len, cw_ydoc_report_fn *report, void *arg);
void cw_ydoc_free(cw_ydoc *d);

/* The top node (never NULL: an empty file is an error). */
const struct cw_ynode *cw_ydoc_root(const cw_ydoc *d);

/* The value of `key` in map `n`, or NULL (also when n is not a map). */
const struct cw_ynode *cw_ynode_get(const struct cw_ynode *n, const char *key);
/* The key node of `key` in map `n` (for its line), or NULL. */
const struct cw_ynode *cw_ynode_key(const struct cw_ynode *n, const char *key);
/* 1 for a plain empty, "~", "null", "Null" or "NULL" scalar. */
bool cw_ynode_is_null(const struct cw_ynode *n);
/* "a map", "a list", "a string" / "nothing" for null, for messages. */
const char *cw_ynode_describe(const struct cw_ynode *n);

#endif
