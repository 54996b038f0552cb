/* test_metrics.c - unit tests for the Prometheus histograms (src/obs/metrics.c): a value on a
 * bound counts in that bound's bucket (le is "less or equal"), values above the last bound only
 * in +Inf, and the text is cumulative, with _sum and _count, exactly as scrapers read it. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>

#include "obs/metrics.h"

static const double bounds[] = {0.01, 0.1, 1};
#define NB (sizeof bounds / sizeof bounds[0])

static void test_observe_buckets(void **unused)
{
    (void)unused;
    metrics_hist h = {0};
    metrics_hist_observe(&h, bounds, NB, 0);     /* below the first bound */
    metrics_hist_observe(&h, bounds, NB, 0.01);  /* on it: still the first bucket */
    metrics_hist_observe(&h, bounds, NB, 0.011);
    metrics_hist_observe(&h, bounds, NB, 1);
    metrics_hist_observe(&h, bounds, NB, 7.5);   /* above every bound: +Inf only */
    assert_int_equal(h.n[0], 2);
    assert_int_equal(h.n[1], 1);
    assert_int_equal(h.n[2], 1);
    assert_int_equal(h.n[3], 1);
    assert_int_equal(h.count, 5);
    assert_true(h.sum > 8.520999 && h.sum < 8.521001);
}

static void test_write_text(void **unused)
{
    (void)unused;
    metrics_hist h = {0};
    metrics_hist_observe(&h, bounds, NB, 0.005);
    metrics_hist_observe(&h, bounds, NB, 0.5);
    metrics_hist_observe(&h, bounds, NB, 2);
    struct buf b = {0};
    metrics_hist_write(&b, "x_seconds", "worker=\"w1\",phase=\"map\"", &h, bounds, NB);
    buf_putc(&b, '\0');
    assert_string_equal(b.data, "x_seconds_bucket{worker=\"w1\",phase=\"map\",le=\"0.01\"} 1\n"
                                "x_seconds_bucket{worker=\"w1\",phase=\"map\",le=\"0.1\"} 1\n"
                                "x_seconds_bucket{worker=\"w1\",phase=\"map\",le=\"1\"} 2\n"
                                "x_seconds_bucket{worker=\"w1\",phase=\"map\",le=\"+Inf\"} 3\n"
                                "x_seconds_sum{worker=\"w1\",phase=\"map\"} 2.505000\n"
                                "x_seconds_count{worker=\"w1\",phase=\"map\"} 3\n");
    buf_free(&b);
    /* An empty histogram still has every line, all zero. */
    metrics_hist empty = {0};
    metrics_hist_write(&b, "y", "phase=\"reduce\"", &empty, bounds, NB);
    buf_putc(&b, '\0');
    assert_non_null(strstr(b.data, "y_bucket{phase=\"reduce\",le=\"+Inf\"} 0\ny_sum{phase=\"reduce\"} 0.000000\n"
                                   "y_count{phase=\"reduce\"} 0\n"));
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_observe_buckets),
        cmocka_unit_test(test_write_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
