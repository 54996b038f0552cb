/* test_series.c - unit tests for the results CSV and the output directories of iteration runs
 * (cli/series.c): the exact header and rows, refusing another header, the name chosen in a
 * directory, and OUT under --keep-iterations. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/series.h"
#include "testutil.h"

/* 2026-12-04T02:30:00.123Z */
#define START_MS 1796351400123ull

static char *tpath(const char *name)
{
    return xasprintf("%s/%u-%s", testutil_root(), testutil_next(), name);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct buf b = {0};
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) buf_append(&b, chunk, n);
    fclose(f);
    buf_putc(&b, '\0');
    return b.data;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static series_row row_of(uint64_t i, const char *worker)
{
    series_row r = {.iteration = i, .start_ms = START_MS, .total_ms = 250};
    r.sum.map_ms = 120;
    r.sum.reduce_ms = 100;
    r.sum.slowest_ms = 90;
    r.sum.attempts = 13;
    r.sum.speculative = 1;
    r.sum.killed = 1;
    snprintf(r.sum.slowest_worker, sizeof r.sum.slowest_worker, "%s", worker);
    return r;
}

static void test_new_file_header_and_rows(void **state)
{
    (void)state;
    char *p = tpath("new.csv");
    series_results r;
    struct err e = {0};
    assert_int_equal(series_results_open(&r, p, &e), 0);
    assert_string_equal(r.path, p);
    series_row a = row_of(1, "w1"), b = row_of(2, "odd,\"name\"");
    assert_int_equal(series_results_append(&r, &a, &e), 0);
    assert_int_equal(series_results_append(&r, &b, &e), 0);
    series_results_close(&r);
    char *text = slurp(p);
    assert_string_equal(text, SERIES_HEADER "\n"
                              "1,2026-12-04T02:30:00.123Z,250,120,100,90,13,1,1,w1\n"
                              "2,2026-12-04T02:30:00.123Z,250,120,100,90,13,1,1,\"odd,\"\"name\"\"\"\n");
    free(text);
    free(p);
}

static void test_existing_and_empty_files(void **state)
{
    (void)state;
    struct err e = {0};
    series_results r;
    series_row a = row_of(3, "local");
    /* Ours, its last row cut short: the next row starts on a line of its own. */
    char *p = tpath("ours.csv");
    spit(p, SERIES_HEADER "\n1,2026");
    assert_int_equal(series_results_open(&r, p, &e), 0);
    assert_int_equal(series_results_append(&r, &a, &e), 0);
    series_results_close(&r);
    char *text = slurp(p);
    assert_string_equal(text, SERIES_HEADER "\n1,2026\n3,2026-12-04T02:30:00.123Z,250,120,100,90,13,1,1,local\n");
    free(text);
    free(p);
    /* Empty: it gets the header. */
    p = tpath("empty.csv");
    spit(p, "");
    assert_int_equal(series_results_open(&r, p, &e), 0);
    series_results_close(&r);
    text = slurp(p);
    assert_string_equal(text, SERIES_HEADER "\n");
    free(text);
    free(p);
}

static void test_other_header_refused(void **state)
{
    (void)state;
    /* The last one is the header short of its last letter. */
    static const char *others[] = {"iteration,start,total_ms\n1,x,3\n", SERIES_HEADER ",extra\n", "x\n",
                                   ("iteration,start,total_ms,map_ms,reduce_ms,slowest_attempt_ms,attempts,"
                                    "speculative_attempts,killed_attempts,slowest_worke\n")};
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
        char *p = tpath("other.csv");
        spit(p, others[i]);
        series_results r;
        struct err e = {0};
        assert_int_equal(series_results_open(&r, p, &e), -EINVAL);
        assert_non_null(strstr(e.msg, p));
        series_results_close(&r);
        char *text = slurp(p);
        assert_string_equal(text, others[i]);
        free(text);
        free(p);
    }
}

static void test_directory_name(void **state)
{
    (void)state;
    char *d = tpath("resdir");
    assert_int_equal(mkdir(d, 0755), 0);
    series_results r;
    struct err e = {0};
    assert_int_equal(series_results_open(&r, d, &e), 0);
    assert_null(r.path);
    assert_int_equal(r.fd, -1);
    setenv("TZ", "UTC", 1);
    tzset();
    assert_int_equal(series_results_choose(&r, 10, 2, 100, START_MS, &e), 0);
    char *want = xasprintf("%s/results_M10_R2_iters100_20261204_023000.csv", d);
    assert_string_equal(r.path, want);
    /* Chosen once: a second call keeps the first name. */
    assert_int_equal(series_results_choose(&r, 11, 3, 100, START_MS + 5000, &e), 0);
    assert_string_equal(r.path, want);
    series_row a = row_of(1, "w2");
    assert_int_equal(series_results_append(&r, &a, &e), 0);
    series_results_close(&r);
    char *text = slurp(want);
    assert_string_equal(text, SERIES_HEADER "\n1,2026-12-04T02:30:00.123Z,250,120,100,90,13,1,1,w2\n");
    free(text);
    free(want);
    free(d);
}

static void test_outputs(void **state)
{
    (void)state;
    series_opts plain = {.iterations = 3}, keep = {.iterations = 3, .keep = 1};
    char *s = series_out(&plain, "/x/out", 2);
    assert_string_equal(s, "/x/out");
    free(s);
    s = series_out(&keep, "/x/out", 2);
    assert_string_equal(s, "/x/out/iter-0002");
    free(s);
    s = series_out(&keep, "/x/out", 12345);
    assert_string_equal(s, "/x/out/iter-12345");
    free(s);
    assert_int_equal(series_active(&plain), 1);
    series_opts one = {.iterations = 1}, one_res = {.iterations = 1, .results = "f.csv"};
    assert_int_equal(series_active(&one), 0);
    assert_int_equal(series_active(&one_res), 1);

    struct err e = {0};
    int existed = -1;
    char *d = tpath("keepout");
    assert_int_equal(series_check_out(&keep, d, 0, &existed, &e), 0); /* missing */
    assert_int_equal(existed, 0);
    assert_int_equal(mkdir(d, 0755), 0);
    assert_int_equal(series_check_out(&keep, d, 0, &existed, &e), 0); /* empty */
    assert_int_equal(existed, 1);
    char *f = xasprintf("%s/part-00000", d);
    spit(f, "old\n");
    assert_int_equal(series_check_out(&keep, d, 0, &existed, &e), -EEXIST);
    assert_non_null(strstr(e.msg, d));
    assert_int_equal(series_check_out(&keep, d, 1, &existed, &e), 0); /* --overwrite */
    assert_int_equal(series_check_out(&keep, f, 1, &existed, &e), -ENOTDIR);
    assert_int_equal(series_check_out(&plain, f, 0, &existed, &e), 0); /* not ours to check */
    free(f);
    free(d);
}

static int setup(void **state)
{
    (void)state;
    return testutil_make_root("series");
}

static int teardown(void **state)
{
    (void)state;
    return testutil_remove_root();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_new_file_header_and_rows),
        cmocka_unit_test(test_existing_and_empty_files),
        cmocka_unit_test(test_other_header_refused),
        cmocka_unit_test(test_directory_name),
        cmocka_unit_test(test_outputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
