/* test_procmetrics.c - unit tests for the process metrics (src/obs/procmetrics.c): the
 * /proc/PID/stat parser counts fields from the command name's last ')' and refuses short or
 * non-numeric lines; this process' own figures are plausible; the text is Prometheus'. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "obs/procmetrics.h"

/* A real line of /proc/PID/stat (Linux 6.x, 52 fields), the command name replaced by NAME. */
static char *stat_line(const char *name)
{
    return xasprintf("4242 (%s) S 1 4242 4242 0 -1 4194560 1510 0 0 0 12 7 0 0 20 0 3 0 250000 "
                     "332599296 2330 18446744073709551615 1 1 0 0 0 0 0 4096 17922 0 0 0 17 1 0 0 0 0 0 "
                     "0 0 0 0 0 0 0 0\n",
                     name);
}

static void test_parse_fields_after_the_name(void **unused)
{
    (void)unused;
    /* Spaces and parentheses in the command name must not shift the fields. */
    const char *names[] = {"tally", "tally worker", "a) 1 2 (b", ")", "x)(y"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *line = stat_line(names[i]);
        procmetrics m = {0};
        assert_int_equal(procmetrics_parse_stat(line, 4096, 100, 1700000000, &m), 0);
        assert_int_equal(m.resident_bytes, 2330ull * 4096);
        assert_int_equal(m.virtual_bytes, 332599296ull);
        /* Started 250000 ticks (2500 s at 100 Hz) after boot. */
        assert_true(m.start_time_s == 1700002500.0);
        free(line);
    }
}

static void test_parse_refuses_bad_lines(void **unused)
{
    (void)unused;
    procmetrics m = {0};
    assert_int_equal(procmetrics_parse_stat("", 4096, 100, 0, &m), -EINVAL);
    assert_int_equal(procmetrics_parse_stat("4242 tally S 1", 4096, 100, 0, &m), -EINVAL); /* no ')' */
    assert_int_equal(procmetrics_parse_stat("4242 (tally) S 1 4242 4242 0 -1 4194560\n", 4096, 100, 0, &m), -EINVAL);
    char *line = stat_line("tally");
    assert_int_equal(procmetrics_parse_stat(line, 4096, 0, 0, &m), -EINVAL); /* no clock rate */
    /* A field that is not a number: vsize (field 23) spelled with a letter. */
    char *bad = strstr(line, "332599296");
    assert_non_null(bad);
    bad[0] = 'x';
    assert_int_equal(procmetrics_parse_stat(line, 4096, 100, 0, &m), -EINVAL);
    free(line);
}

static void test_this_process(void **unused)
{
    (void)unused;
    procmetrics m;
    assert_int_equal(procmetrics_read(&m), 0);
    assert_true(m.resident_bytes > 0);
    assert_true(m.virtual_bytes >= m.resident_bytes);
    double now = (double)time(NULL);
    assert_true(m.start_time_s > now - 3600 && m.start_time_s <= now + 1);
    int64_t before = m.open_fds;
    assert_true(before >= 3);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    assert_int_equal(procmetrics_read(&m), 0);
    assert_int_equal(m.open_fds, before + 1);
    close(fd);
    assert_true(m.max_fds == -1 || m.max_fds >= m.open_fds);
}

static void test_text(void **unused)
{
    (void)unused;
    struct buf b = {0};
    procmetrics_write(&b);
    buf_putc(&b, '\0');
    const char *names[] = {"process_resident_memory_bytes", "process_virtual_memory_bytes",
                           "process_start_time_seconds", "process_open_fds"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char *type = xasprintf("# TYPE %s gauge\n%s ", names[i], names[i]);
        if (!strstr(b.data, type)) fail_msg("no '%s' in:\n%s", type, b.data);
        free(type);
    }
    assert_int_equal(b.data[b.len - 2], '\n'); /* every line ends, the last one too */
    buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_fields_after_the_name),
        cmocka_unit_test(test_parse_refuses_bad_lines),
        cmocka_unit_test(test_this_process),
        cmocka_unit_test(test_text),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
