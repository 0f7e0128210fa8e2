/* Shared by the Check unit-test programs: one suite of plain tests, run in forked processes
 * (a crash fails its test, not the program); the exit status says whether all passed. */
#ifndef CW_TESTING_H
#define CW_TESTING_H

#include <check.h>
#include <stdlib.h>

static inline int cw_run_tests(const char *name, const TTest *const *tests, size_t n)
{
    Suite *s = suite_create(name);
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    for (size_t i = 0; i < n; i++) _tcase_add_test(tc, tests[i], 0, 0, 0, 1);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* int main(void) running the listed tests: CW_TEST_MAIN("log", test_a, test_b) */
#define CW_TEST_MAIN(name, ...)                                                                    \
    int main(void)                                                                                 \
    {                                                                                              \
        const TTest *const tests[] = {__VA_ARGS__};                                                \
        return cw_run_tests(name, tests, sizeof tests / sizeof tests[0]);                          \
    }

#endif
