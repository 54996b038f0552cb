/* test_report.c - unit tests for the nearest-rank percentiles of `tally report` (cli/report.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "cli/report.h"

/* The definition, ceil(p/100 * n), in exact rational arithmetic for the cross-check. */
static size_t model_rank(size_t n, unsigned p)
{
    size_t num = n * p;
    return num / 100 + (num % 100 != 0);
}

static void test_rank_examples(void **state)
{
    (void)state;
    assert_int_equal(report_rank(1, 50), 1);
    assert_int_equal(report_rank(1, 99), 1);
    assert_int_equal(report_rank(4, 50), 2);  /* exactly 2: not 3 */
    assert_int_equal(report_rank(10, 90), 9); /* exactly 9: no floating-point 9.0000001 */
    assert_int_equal(report_rank(10, 95), 10);
    assert_int_equal(report_rank(20, 95), 19);
    assert_int_equal(report_rank(100, 99), 99);
    assert_int_equal(report_rank(101, 99), 100);
    assert_int_equal(report_rank(1000, 99), 990);
    assert_int_equal(report_rank(7, 100), 7);
}

static void test_rank_matches_definition(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 2000; n++) {
        for (unsigned p = 1; p <= 100; p++) {
            size_t r = report_rank(n, p);
            assert_int_equal(r, model_rank(n, p));
            assert_true(r >= 1 && r <= n);
        }
    }
}

static void test_percentile_is_a_value(void **state)
{
    (void)state;
    const uint64_t v[] = {10, 20, 30, 40, 50, 60, 70, 80, 90, 100};
    assert_int_equal(report_percentile(v, 10, 50), 50); /* interpolation would say 55 */
    assert_int_equal(report_percentile(v, 10, 90), 90);
    assert_int_equal(report_percentile(v, 10, 95), 100);
    assert_int_equal(report_percentile(v, 10, 99), 100);
    assert_int_equal(report_percentile(v, 1, 99), 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rank_examples),
        cmocka_unit_test(test_rank_matches_definition),
        cmocka_unit_test(test_percentile_is_a_value),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
