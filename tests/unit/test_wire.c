/* test_wire.c - unit tests for the decoders of what workers and reducers send the coordinator
 * (src/cluster/wire.c) and for the executor pipe frames (src/cluster/taskproc.c): good
 * messages decode to the right values, bad ones fail with a message naming the field. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/taskproc.h"
#include "cluster/wire.h"

#define S(lit) lit, sizeof lit - 1

/* Asserts that rc failed and e's message contains `want`. */
static void assert_fails(int rc, const struct err *e, const char *want)
{
    if (rc == 0) fail_msg("decoded, expected an error about '%s'", want);
    if (!strstr(e->msg, want)) fail_msg("error '%s' does not mention '%s'", e->msg, want);
}

static void test_heartbeat(void **unused)
{
    (void)unused;
    struct err e = {0};
    wire_heartbeat hb;
    assert_int_equal(wire_heartbeat_decode(S("{\"version\":1,\"name\":\"w-1.a\",\"incarnation\":\"abc\","
                                             "\"address\":\"127.0.0.1:9\",\"slots\":3,\"wait_ms\":250,"
                                             "\"running\":[{\"job\":\"j1\",\"attempt\":4,\"progress\":0.5,"
                                             "\"counters\":{\"input_records\":7}},{\"job\":\"j2\",\"attempt\":0}]}"),
                                           &hb, &e),
                     0);
    assert_string_equal(hb.name, "w-1.a");
    assert_string_equal(hb.address, "127.0.0.1:9");
    assert_int_equal(hb.slots, 3);
    assert_int_equal(hb.wait_ms, 250);
    assert_int_equal(hb.nrunning, 2);
    assert_string_equal(hb.running[0].job, "j1");
    assert_int_equal(hb.running[0].attempt, 4);
    assert_true(hb.running[0].has_progress);
    assert_true(hb.running[0].progress == 0.5);
    assert_int_equal(hb.running[0].counters.v[CNT_INPUT_RECORDS], 7);
    assert_false(hb.running[1].has_progress);
    wire_heartbeat_free(&hb);

    static const struct {
        const char *body, *want;
    } bad[] = {
        {"[]", "JSON object"},
        {"{\"version\":2,\"name\":\"w\",\"incarnation\":\"i\",\"address\":\"a\",\"slots\":1}", "protocol version"},
        {"{\"version\":1,\"incarnation\":\"i\",\"address\":\"a\",\"slots\":1}", "'name'"},
        {"{\"version\":1,\"name\":\"../x\",\"incarnation\":\"i\",\"address\":\"a\",\"slots\":1}", "'name'"},
        {"{\"version\":1,\"name\":\"w\",\"incarnation\":\"i\",\"address\":\"a\",\"slots\":0}", "'slots'"},
        {"{\"version\":1,\"name\":\"w\",\"incarnation\":\"i\",\"address\":\"a\",\"slots\":1,\"running\":{}}", "'running'"},
        {"{\"version\":1,\"name\":\"w\",\"incarnation\":\"i\",\"address\":\"a\",\"slots\":1,"
         "\"running\":[{\"job\":\"j\",\"attempt\":1,\"progress\":2,\"counters\":{}}]}", "running[0]: 'progress'"},
        {"{\"version\":1,\"name\":\"w\",\"incarnation\":\"i\",\"address\":\"a\",\"slots\":1,"
         "\"running\":[{\"job\":\"j\",\"attempt\":-1}]}", "running[0]: field 'attempt'"},
        {"{\"version\":1,\"name\":\"w\",\"incarnation\":\"i\",\"address\":\"a\",\"slots\":1,"
         "\"running\":[{\"job\":\"j\",\"attempt\":1,\"progress\":0.1,\"counters\":{\"x\":\"1\"}}]}", "counter 'x'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        assert_fails(wire_heartbeat_decode(bad[i].body, strlen(bad[i].body), &hb, &e), &e, bad[i].want);
    }
}

static void test_report(void **unused)
{
    (void)unused;
    struct err e = {0};
    wire_report r;
    assert_int_equal(wire_report_decode(S("{\"name\":\"w\",\"incarnation\":\"i\",\"job\":\"j\",\"attempt\":9,"
                                          "\"result\":{\"ok\":false,\"error\":\"boom\",\"fatal\":true,"
                                          "\"counters\":{\"input_records\":3,\"mine\":2},"
                                          "\"crash\":{\"file\":\"/in\",\"offset\":120},\"fetch_failed_map\":4}}"),
                                        &r, &e),
                     0);
    assert_int_equal(r.attempt, 9);
    assert_false(r.ok);
    assert_true(r.fatal);
    assert_string_equal(r.error, "boom");
    assert_int_equal(r.counters.v[CNT_INPUT_RECORDS], 3);
    assert_int_equal(r.counters.nuser, 1);
    assert_string_equal(r.crash_file, "/in");
    assert_int_equal(r.crash_offset, 120);
    assert_int_equal(r.fetch_failed_map, 4);
    wire_report_free(&r);
    assert_int_equal(wire_report_decode(S("{\"name\":\"w\",\"incarnation\":\"i\",\"job\":\"j\",\"attempt\":1,"
                                          "\"result\":{\"ok\":true}}"),
                                        &r, &e),
                     0);
    assert_true(r.ok);
    assert_string_equal(r.error, "");
    assert_null(r.crash_file);
    assert_int_equal(r.fetch_failed_map, -1);
    wire_report_free(&r);
    assert_fails(wire_report_decode(S("{\"name\":\"w\",\"incarnation\":\"i\",\"job\":\"j\",\"attempt\":1,\"result\":3}"),
                                    &r, &e),
                 &e, "'result'");
    assert_fails(wire_report_decode(S("{\"name\":\"w\",\"incarnation\":\"i\",\"job\":\"j\",\"attempt\":1,"
                                      "\"result\":{\"crash\":{\"file\":\"/in\"}}}"),
                                    &r, &e),
                 &e, "crash: missing field 'offset'");
    assert_fails(wire_report_decode(S("{\"name\":\"w\",\"incarnation\":\"i\",\"job\":\"j\",\"attempt\":1,"
                                      "\"result\":{\"fetch_failed_map\":-2}}"),
                                    &r, &e),
                 &e, "'fetch_failed_map'");
}

static void test_fetch_failure_and_maps(void **unused)
{
    (void)unused;
    struct err e = {0};
    wire_fetch_failure f;
    assert_int_equal(wire_fetch_failure_decode(S("{\"name\":\"w\",\"incarnation\":\"i\",\"job\":\"j\",\"attempt\":7,"
                                                 "\"map\":2,\"map_attempt\":-1}"),
                                               &f, &e),
                     0);
    assert_int_equal(f.attempt, 7);
    assert_int_equal(f.map, 2);
    assert_int_equal(f.map_attempt, -1);
    assert_string_equal(f.error, "");
    wire_fetch_failure_free(&f);
    assert_fails(wire_fetch_failure_decode(S("{\"name\":\"w\",\"incarnation\":\"i\",\"job\":\"j\",\"attempt\":7,\"map\":2}"),
                                           &f, &e),
                 &e, "'map_attempt'");

    json_error_t je;
    json_t *good = json_loads("[{\"index\":1,\"address\":\"h:2\",\"attempt\":5},{\"index\":0,\"address\":\"\",\"attempt\":-1}]",
                              0, &je);
    wire_map_loc *locs = NULL;
    size_t n = 0;
    assert_int_equal(wire_maps_decode(good, &locs, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_int_equal(locs[0].attempt, -1);
    assert_string_equal(locs[1].address, "h:2");
    assert_int_equal(locs[1].attempt, 5);
    free(locs);
    json_decref(good);
    static const char *bad[] = {
        "[{\"index\":0,\"address\":\"a\"},{\"index\":0,\"address\":\"b\"}]", /* repeated */
        "[{\"index\":1,\"address\":\"a\"}]",                                 /* out of range */
        "[{\"index\":0,\"address\":\"a\",\"attempt\":-2}]",
        "{}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        json_t *j = json_loads(bad[i], 0, &je);
        memset(&e, 0, sizeof e);
        int rc = wire_maps_decode(j, &locs, &n, &e);
        if (rc == 0) fail_msg("'%s' decoded", bad[i]);
        assert_null(locs);
        json_decref(j);
    }
}

static void test_frames(void **unused)
{
    (void)unused;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    assert_int_equal(taskproc_frame_write(fds[1], S("{\"a\":1}")), 0);
    assert_int_equal(taskproc_frame_write(fds[1], "", 0), 0);
    uint32_t huge = TASKPROC_MAX_FRAME + 1;
    assert_int_equal(write(fds[1], &huge, sizeof huge), (ssize_t)sizeof huge);
    char *data = NULL;
    size_t len = 0;
    assert_int_equal(taskproc_frame_read(fds[0], &data, &len), 1);
    assert_int_equal(len, 7);
    assert_string_equal(data, "{\"a\":1}");
    free(data);
    assert_int_equal(taskproc_frame_read(fds[0], &data, &len), 1);
    assert_int_equal(len, 0);
    free(data);
    assert_int_equal(taskproc_frame_read(fds[0], &data, &len), -EMSGSIZE);
    /* A frame cut short by the writer's end: an error, not a frame; then a clean end. */
    uint32_t claim = 100000;
    assert_int_equal(write(fds[1], &claim, sizeof claim), (ssize_t)sizeof claim);
    assert_int_equal(write(fds[1], "xyz", 3), 3);
    close(fds[1]);
    assert_int_equal(taskproc_frame_read(fds[0], &data, &len), -EPIPE);
    assert_null(data);
    assert_int_equal(taskproc_frame_read(fds[0], &data, &len), 0);
    close(fds[0]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heartbeat),
        cmocka_unit_test(test_report),
        cmocka_unit_test(test_fetch_failure_and_maps),
        cmocka_unit_test(test_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
