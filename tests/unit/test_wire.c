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

/* The heartbeat's "health" and each attempt's "rate": optional (an older worker sends neither),
 * validated when present. */
static void test_heartbeat_health(void **unused)
{
    (void)unused;
    struct err e = {0};
    wire_heartbeat hb;
    assert_int_equal(wire_heartbeat_decode(S("{\"version\":1,\"name\":\"w\",\"incarnation\":\"i\",\"address\":\"a\","
                                             "\"slots\":1,\"running\":[{\"job\":\"j\",\"attempt\":1}]}"),
                                           &hb, &e),
                     0);
    assert_true(hb.health.psi_cpu == -1 && hb.health.psi_io == -1 && hb.health.psi_memory == -1);
    assert_true(hb.health.load1 == -1 && hb.health.chaos_slow == 1);
    assert_true(hb.running[0].rate == 0);
    wire_heartbeat_free(&hb);

    assert_int_equal(wire_heartbeat_decode(S("{\"version\":1,\"name\":\"w\",\"incarnation\":\"i\",\"address\":\"a\","
                                             "\"slots\":1,\"health\":{\"psi_cpu\":12.5,\"psi_io\":0,\"psi_memory\":100,"
                                             "\"load1\":3,\"chaos_slow\":4,\"future\":\"ignored\"},"
                                             "\"running\":[{\"job\":\"j\",\"attempt\":1,\"progress\":0.25,"
                                             "\"counters\":{},\"rate\":0.125},{\"job\":\"j\",\"attempt\":2,\"rate\":0}]}"),
                                           &hb, &e),
                     0);
    assert_true(hb.health.psi_cpu == 12.5 && hb.health.psi_io == 0 && hb.health.psi_memory == 100);
    assert_true(hb.health.load1 == 3 && hb.health.chaos_slow == 4);
    assert_true(hb.running[0].rate == 0.125);
    assert_true(hb.running[1].rate == 0);
    wire_heartbeat_free(&hb);

    /* Only some fields: a container without PSI still reports its load. */
    assert_int_equal(wire_heartbeat_decode(S("{\"version\":1,\"name\":\"w\",\"incarnation\":\"i\",\"address\":\"a\","
                                             "\"slots\":1,\"health\":{\"load1\":0.5}}"),
                                           &hb, &e),
                     0);
    assert_true(hb.health.psi_cpu == -1 && hb.health.load1 == 0.5 && hb.health.chaos_slow == 1);
    wire_heartbeat_free(&hb);

#define HB "{\"version\":1,\"name\":\"w\",\"incarnation\":\"i\",\"address\":\"a\",\"slots\":1,"
    static const struct {
        const char *body, *want;
    } bad[] = {
        {HB "\"health\":[]}", "field 'health' must be an object"},
        {HB "\"health\":3}", "field 'health' must be an object"},
        {HB "\"health\":{\"psi_cpu\":100.5}}", "health: field 'psi_cpu'"},
        {HB "\"health\":{\"psi_cpu\":\"1\"}}", "health: field 'psi_cpu'"},
        {HB "\"health\":{\"psi_io\":-1}}", "health: field 'psi_io'"},
        {HB "\"health\":{\"psi_memory\":true}}", "health: field 'psi_memory'"},
        {HB "\"health\":{\"load1\":-0.5}}", "health: field 'load1'"},
        {HB "\"health\":{\"load1\":1e999}}", "malformed JSON"}, /* jansson refuses overflow */
        {HB "\"health\":{\"chaos_slow\":0.5}}", "health: field 'chaos_slow'"},
        {HB "\"health\":{\"chaos_slow\":1000.5}}", "health: field 'chaos_slow'"},
        {HB "\"health\":{\"chaos_slow\":{}}}", "health: field 'chaos_slow'"},
        {HB "\"running\":[{\"job\":\"j\",\"attempt\":1,\"rate\":-0.1}]}", "running[0]: field 'rate'"},
        {HB "\"running\":[{\"job\":\"j\",\"attempt\":1,\"rate\":2e6}]}", "running[0]: field 'rate'"},
        {HB "\"running\":[{\"job\":\"j\",\"attempt\":1,\"rate\":\"fast\"}]}", "running[0]: field 'rate'"},
    };
#undef HB
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        assert_fails(wire_heartbeat_decode(bad[i].body, strlen(bad[i].body), &hb, &e), &e, bad[i].want);
    }

    /* What the worker sends decodes to what it measured; unknown values are left out. */
    wire_health h = {.psi_cpu = 1.5, .psi_io = -1, .psi_memory = 0, .load1 = 2.25, .chaos_slow = 3};
    json_t *body = json_pack("{s:i, s:s, s:s, s:s, s:i, s:o}", "version", TALLY_WIRE_VERSION, "name", "w",
                             "incarnation", "i", "address", "a", "slots", 1, "health", wire_health_encode(&h));
    assert_null(json_object_get(json_object_get(body, "health"), "psi_io"));
    char *text = wire_dump(body);
    json_decref(body);
    assert_int_equal(wire_heartbeat_decode(text, strlen(text), &hb, &e), 0);
    free(text);
    assert_true(hb.health.psi_cpu == 1.5 && hb.health.psi_io == -1 && hb.health.psi_memory == 0);
    assert_true(hb.health.load1 == 2.25 && hb.health.chaos_slow == 3);
    wire_heartbeat_free(&hb);
}

/* POST /v1/chaos bodies. */
static void test_chaos(void **unused)
{
    (void)unused;
    struct err e = {0};
    double f = 0;
    assert_int_equal(wire_chaos_decode(S("{\"slow\":4}"), &f, &e), 0);
    assert_true(f == 4);
    assert_int_equal(wire_chaos_decode(S("{\"slow\":1.0}"), &f, &e), 0);
    assert_true(f == 1);
    assert_int_equal(wire_chaos_decode(S("{\"slow\":1000}"), &f, &e), 0);
    assert_true(f == 1000);
    static const char *const bad[] = {
        "{}", "{\"slow\":null}", "{\"slow\":0.99}", "{\"slow\":0}", "{\"slow\":-3}", "{\"slow\":1000.01}",
        "{\"slow\":\"4\"}", "{\"slow\":[4]}", "{\"slow\":true}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&e, 0, sizeof e);
        assert_fails(wire_chaos_decode(bad[i], strlen(bad[i]), &f, &e), &e, "'slow'");
    }
    assert_fails(wire_chaos_decode(S("[4]"), &f, &e), &e, "JSON object");
    assert_fails(wire_chaos_decode(S("{\"slow\":4"), &f, &e), &e, "malformed JSON");
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

/* Inline map outputs: base64 both ways, a report's "output" and a reduce assignment's
 * "segment" decoded and checked. */
static void test_inline_output(void **unused)
{
    (void)unused;
    static const char *const plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *const coded[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    for (size_t i = 0; i < 7; i++) {
        struct buf b = {0}, d = {0};
        buf_append_base64(&b, plain[i], strlen(plain[i]));
        assert_string_equal(b.data ? b.data : "", coded[i]);
        assert_int_equal(buf_append_unbase64(&d, coded[i], strlen(coded[i])), 0);
        assert_int_equal(d.len, strlen(plain[i]));
        assert_memory_equal(d.data, plain[i], d.len);
        buf_free(&b);
        buf_free(&d);
    }
    unsigned char all[256];
    for (int i = 0; i < 256; i++) all[i] = (unsigned char)i;
    struct buf b = {0}, d = {0};
    buf_append_base64(&b, all, sizeof all);
    assert_int_equal(buf_append_unbase64(&d, b.data, b.len), 0);
    assert_int_equal(d.len, sizeof all);
    assert_memory_equal(d.data, all, sizeof all);
    buf_free(&b);
    static const char *const badb64[] = {"Zg=", "Z===", "Zg==Zg==", "Zm9v!A==", "=Zm9"};
    for (size_t i = 0; i < 5; i++) {
        d.len = 0;
        if (buf_append_unbase64(&d, badb64[i], strlen(badb64[i])) == 0) fail_msg("'%s' decoded", badb64[i]);
    }
    buf_free(&d);

    struct err e = {0};
    json_error_t je;
    wire_report r;
    const char *ok = "{\"name\":\"w1\",\"incarnation\":\"i\",\"job\":\"j1\",\"attempt\":3,\"result\":{\"ok\":true,"
                     "\"output\":[{\"data\":\"Zm9v\",\"crc\":7,\"records\":2},{\"data\":\"\",\"crc\":0,\"records\":0}]}}";
    assert_int_equal(wire_report_decode(ok, strlen(ok), &r, &e), 0);
    assert_non_null(r.output);
    assert_int_equal(json_array_size(r.output), 2);
    assert_int_equal(r.output_bytes, 4);
    wire_report_free(&r);
    static const char *const badrep[] = {
        "{\"name\":\"w1\",\"incarnation\":\"i\",\"job\":\"j1\",\"attempt\":3,\"result\":{\"ok\":true,\"output\":{}}}",
        "{\"name\":\"w1\",\"incarnation\":\"i\",\"job\":\"j1\",\"attempt\":3,\"result\":{\"ok\":true,"
        "\"output\":[{\"data\":\"Zm9\",\"crc\":7,\"records\":2}]}}",
        "{\"name\":\"w1\",\"incarnation\":\"i\",\"job\":\"j1\",\"attempt\":3,\"result\":{\"ok\":true,"
        "\"output\":[{\"data\":\"Zm9v\",\"crc\":-1,\"records\":2}]}}",
        "{\"name\":\"w1\",\"incarnation\":\"i\",\"job\":\"j1\",\"attempt\":3,\"result\":{\"ok\":true,"
        "\"output\":[{\"crc\":1,\"records\":2}]}}",
    };
    for (size_t i = 0; i < sizeof badrep / sizeof badrep[0]; i++) {
        memset(&e, 0, sizeof e);
        if (wire_report_decode(badrep[i], strlen(badrep[i]), &r, &e) == 0) fail_msg("'%s' decoded", badrep[i]);
        assert_non_null(strstr(e.msg, "output"));
    }
    /* A segment larger than any map output may be is refused before it is decoded. */
    struct buf big = {0};
    for (size_t i = 0; i < (WIRE_INLINE_MAX / 3 + 2) * 4; i++) buf_putc(&big, 'A');
    json_t *report = json_pack("{s:s, s:s, s:s, s:i, s:{s:b, s:[{s:s, s:i, s:i}]}}", "name", "w1", "incarnation", "i",
                               "job", "j1", "attempt", 3, "result", "ok", 1, "output", "data", big.data, "crc", 1,
                               "records", 1);
    char *text = json_dumps(report, JSON_COMPACT);
    memset(&e, 0, sizeof e);
    assert_true(wire_report_decode(text, strlen(text), &r, &e) != 0);
    free(text);
    json_decref(report);
    buf_free(&big);

    json_t *maps = json_loads("[{\"index\":0,\"address\":\"h:1\",\"attempt\":2,\"segment\":{\"data\":\"Zm9v\","
                              "\"crc\":9,\"records\":1}},{\"index\":1,\"address\":\"h:2\",\"attempt\":3}]",
                              0, &je);
    wire_map_loc *locs = NULL;
    size_t n = 0;
    assert_int_equal(wire_maps_decode(maps, &locs, &n, &e), 0);
    assert_int_equal(n, 2);
    assert_non_null(locs[0].data);
    assert_int_equal(locs[0].data_len, 4);
    assert_int_equal(locs[0].crc, 9);
    assert_int_equal(locs[0].records, 1);
    assert_null(locs[1].data);
    free(locs);
    json_decref(maps);
    maps = json_loads("[{\"index\":0,\"address\":\"h:1\",\"attempt\":2,\"segment\":{\"data\":7,\"crc\":9,"
                      "\"records\":1}}]", 0, &je);
    memset(&e, 0, sizeof e);
    assert_true(wire_maps_decode(maps, &locs, &n, &e) != 0);
    assert_non_null(strstr(e.msg, "segment"));
    json_decref(maps);
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
        cmocka_unit_test(test_heartbeat_health),
        cmocka_unit_test(test_chaos),
        cmocka_unit_test(test_report),
        cmocka_unit_test(test_fetch_failure_and_maps),
        cmocka_unit_test(test_inline_output),
        cmocka_unit_test(test_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
