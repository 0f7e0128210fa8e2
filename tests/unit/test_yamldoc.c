/* The YAML tree: line numbers, lookups, and the refusals (aliases, duplicate keys, size,
 * depth, several documents, syntax errors). */
#include "testing.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "yamldoc.h"

struct seen {
    int n, line, column;
    char msg[512];
};

static void collect(int line, int column, const char *message, void *arg)
{
    struct seen *s = arg;
    if (s->n++ == 0) {
        s->line = line;
        s->column = column;
        snprintf(s->msg, sizeof s->msg, "%s", message);
    }
}

static cw_ydoc *parse(const char *text, struct seen *s)
{
    memset(s, 0, sizeof *s);
    return cw_ydoc_parse(text, strlen(text), collect, s);
}

START_TEST(tree_has_lines_and_columns)
{
    struct seen s;
    cw_ydoc *d = parse("# comment\n"
                       "name: 华信\n"
                       "sites:\n"
                       "  - id: SH01\n"
                       "    hours: {mon: \"10:00-22:00\"}\n"
                       "  - id: \"SH02\"\n"
                       "empty:\n",
                       &s);
    ck_assert_ptr_nonnull(d);
    ck_assert_int_eq(s.n, 0);
    const struct cw_ynode *root = cw_ydoc_root(d);
    ck_assert_int_eq(root->type, CW_YNODE_MAP);
    ck_assert_int_eq(root->n, 3);
    ck_assert_str_eq(cw_ynode_get(root, "name")->str, "华信");
    const struct cw_ynode *sites = cw_ynode_get(root, "sites");
    ck_assert_int_eq(sites->type, CW_YNODE_SEQ);
    ck_assert_int_eq(sites->n, 2);
    ck_assert_int_eq(sites->items[1]->line, 6);
    const struct cw_ynode *id = cw_ynode_get(sites->items[1], "id");
    ck_assert_str_eq(id->str, "SH02");
    ck_assert(!id->plain);
    ck_assert_int_eq(id->line, 6);
    ck_assert_int_eq(id->column, 9);
    const struct cw_ynode *mon = cw_ynode_get(cw_ynode_get(sites->items[0], "hours"), "mon");
    ck_assert_int_eq(mon->line, 5);
    ck_assert_int_eq(cw_ynode_key(root, "sites")->line, 3);
    ck_assert(cw_ynode_is_null(cw_ynode_get(root, "empty")));
    ck_assert(!cw_ynode_is_null(id));
    ck_assert_ptr_null(cw_ynode_get(root, "missing"));
    ck_assert_ptr_null(cw_ynode_get(sites, "id")); /* not a map */
    ck_assert_str_eq(cw_ynode_describe(sites), "a list");
    cw_ydoc_free(d);
}
END_TEST

START_TEST(aliases_are_refused)
{
    struct seen s;
    cw_ydoc *d = parse("a: &a [lol, lol]\nb: [*a, *a]\n", &s);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.line, 2);
    ck_assert_ptr_nonnull(strstr(s.msg, "aliases (*a) are not allowed"));
}
END_TEST

START_TEST(duplicate_keys_are_all_reported)
{
    struct seen s;
    cw_ydoc *d = parse("a: 1\nb: 2\na: 3\n", &s);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_eq(s.line, 3);
    ck_assert_int_eq(s.column, 1);
    ck_assert_str_eq(s.msg, "duplicate key \"a\" (first at line 1)");
    /* parsing goes on: one report per duplicate, inner maps too (reported as they close) */
    d = parse("a: 1\na: 2\nc: {x: 1, x: 2, x: 3}\n", &s);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(s.n, 3);
    ck_assert_int_eq(s.line, 3);
    ck_assert_str_eq(s.msg, "duplicate key \"x\" (first at line 3)");
}
END_TEST

START_TEST(syntax_errors_have_line_and_problem)
{
    struct seen s;
    cw_ydoc *d = parse("a: 1\nb: [1, 2\nc: 3\n", &s);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(s.n, 1);
    ck_assert_int_ge(s.line, 2);
    ck_assert_ptr_nonnull(strstr(s.msg, "YAML syntax error: "));
    d = parse("a: 1\nb: \"\xff\"\n", &s); /* not UTF-8 */
    ck_assert_ptr_null(d);
    ck_assert_int_eq(s.line, 2);
    ck_assert_ptr_nonnull(strstr(s.msg, "UTF-8"));
    d = parse("a: 1\n b: 2\n", &s);
    ck_assert_ptr_null(d);
    ck_assert_int_eq(s.line, 2);
    ck_assert_ptr_nonnull(strstr(s.msg, "mapping values are not allowed"));
}
END_TEST

START_TEST(one_document_not_empty_not_too_deep)
{
    struct seen s;
    ck_assert_ptr_null(parse("a: 1\n---\nb: 2\n", &s));
    ck_assert_ptr_nonnull(strstr(s.msg, "only one YAML document"));
    ck_assert_int_eq(s.line, 2);
    ck_assert_ptr_null(parse("# nothing\n", &s));
    ck_assert_str_eq(s.msg, "the file is empty");
    char deep[400] = "";
    for (int i = 0; i < CW_YDOC_MAX_DEPTH + 1; i++) strcat(deep, "[");
    ck_assert_ptr_null(parse(deep, &s));
    ck_assert_ptr_nonnull(strstr(s.msg, "nested more than 64 levels"));
    ck_assert_ptr_null(parse("a: \"x\\0y\"\n", &s));
    ck_assert_ptr_nonnull(strstr(s.msg, "NUL character"));
    ck_assert_ptr_null(parse("? [a, b]\n: 1\n", &s));
    ck_assert_ptr_nonnull(strstr(s.msg, "map key must be a plain string"));
}
END_TEST

START_TEST(files_over_the_limit_are_refused)
{
    char path[] = "/tmp/cw-ydoc-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    const char *text = "a: 1\nb: 2\n";
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    struct seen s = {0};
    cw_ydoc *d = cw_ydoc_load(path, 5, collect, &s);
    ck_assert_ptr_null(d);
    ck_assert_ptr_nonnull(strstr(s.msg, "the file is 10 bytes, more than the limit of 5"));
    memset(&s, 0, sizeof s);
    d = cw_ydoc_load(path, 0, collect, &s);
    ck_assert_ptr_nonnull(d);
    ck_assert_str_eq(cw_ynode_get(cw_ydoc_root(d), "b")->str, "2");
    cw_ydoc_free(d);
    unlink(path);
    memset(&s, 0, sizeof s);
    ck_assert_ptr_null(cw_ydoc_load("/nonexistent/chain.yaml", 0, collect, &s));
    ck_assert_ptr_nonnull(strstr(s.msg, "cannot open"));
    ck_assert_ptr_null(cw_ydoc_load("/tmp", 0, collect, &s));
}
END_TEST

CW_TEST_MAIN("yamldoc", tree_has_lines_and_columns, aliases_are_refused,
             duplicate_keys_are_all_reported, syntax_errors_have_line_and_problem,
             one_document_not_empty_not_too_deep, files_over_the_limit_are_refused)
