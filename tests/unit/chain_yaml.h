/* Unit tests that need a chain write it as YAML in the test and load it through a temporary
 * file, the way services read theirs. */
#ifndef CW_TEST_CHAIN_YAML_H
#define CW_TEST_CHAIN_YAML_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "chain.h"

/* The loaded chain, or NULL when it does not load (problems printed to stderr). */
static inline cw_chain *cw_test_chain_from_yaml(const char *yaml)
{
    char path[] = "/tmp/cw-test-chain-XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    FILE *f = fdopen(fd, "w");
    ck_assert_ptr_nonnull(f);
    fputs(yaml, f);
    fclose(f);
    cw_chain *c = cw_chain_load(path, NULL, NULL);
    unlink(path);
    return c;
}

#endif
