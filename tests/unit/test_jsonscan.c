/* test_jsonscan.c - unit tests for the validating JSON Lines scanner (src/data/jsonscan.c).
 *
 * Which records are valid follows jansson 2.14 (json_loadb with JSON_ALLOW_NUL, retried with
 * JSON_DECODE_INT_AS_REAL on integer overflow, an object required); fuzz/fuzz_json.c checks the
 * same against jansson itself on generated inputs. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "common/util.h"
#include "data/jsonscan.h"
#include "tally/tally.h"

/* ---- Helpers ----------------------------------------------------------------------------- */

static size_t add(jsonscan *s, const char *path)
{
    size_t idx = SIZE_MAX;
    assert_int_equal(jsonscan_add(s, path, &idx), 0);
    return idx;
}

/* A scanner with the given paths; index i is the i-th path. */
static jsonscan *scanner(const char *const *paths, size_t n)
{
    jsonscan *s = jsonscan_new();
    for (size_t i = 0; i < n; i++) assert_int_equal(add(s, paths[i]), i);
    return s;
}

static void scan_ok(jsonscan *s, const char *rec)
{
    int rc = jsonscan_record(s, rec, strlen(rec));
    if (rc != 0) fail_msg("record should be valid, got %d: %s", rc, rec);
}

/* Asserts that path `idx` has exactly the n bytes of want. */
static void expect_n(jsonscan *s, size_t idx, const char *want, size_t n)
{
    const char *v = NULL;
    size_t vn = 0;
    int rc = jsonscan_get(s, idx, &v, &vn);
    if (rc != 0) fail_msg("path '%s': expected \"%s\", got error %d", jsonscan_path(s, idx), want, rc);
    if (vn != n || memcmp(v, want, n) != 0)
        fail_msg("path '%s': expected \"%.*s\", got \"%.*s\"", jsonscan_path(s, idx), (int)n, want, (int)vn, v);
}

static void expect(jsonscan *s, size_t idx, const char *want) { expect_n(s, idx, want, strlen(want)); }

static void expect_code(jsonscan *s, size_t idx, int code)
{
    const char *v = NULL;
    size_t vn = 0;
    int rc = jsonscan_get(s, idx, &v, &vn);
    if (rc != code) fail_msg("path '%s': expected code %d, got %d", jsonscan_path(s, idx), code, rc);
}

/* jansson's verdict on a record, as fields.c took it before jsonscan: 0 or TALLY_EBADREC. */
static int jansson_judge(const char *rec, size_t n)
{
    json_error_t e;
    json_t *j = json_loadb(rec, n, JSON_ALLOW_NUL, &e);
    if (!j && json_error_code(&e) == json_error_numeric_overflow)
        j = json_loadb(rec, n, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &e);
    int rc = j && json_is_object(j) ? 0 : TALLY_EBADREC;
    json_decref(j);
    return rc;
}

/* Asserts that the n bytes of rec are valid (want 0) or malformed (want TALLY_EBADREC), and that
 * jansson agrees, so that every expectation here is jansson's. */
static void judge_n(const char *rec, size_t n, int want)
{
    if (jansson_judge(rec, n) != want)
        fail_msg("jansson judges it %s: \"%.*s\"", want ? "valid" : "malformed", (int)(n < 300 ? n : 300), rec);
    jsonscan *s = jsonscan_new();
    size_t a = add(s, "a");
    int rc = jsonscan_record(s, rec, n);
    if (rc != want)
        fail_msg("%s record judged %s: \"%.*s\"", want ? "malformed" : "valid", rc ? "malformed" : "valid",
                 (int)(n < 300 ? n : 300), rec);
    if (rc) expect_code(s, a, TALLY_EBADREC);
    jsonscan_free(s);
}

static void valid(const char *rec) { judge_n(rec, strlen(rec), 0); }
static void bad(const char *rec) { judge_n(rec, strlen(rec), TALLY_EBADREC); }

/* Judges a string body both in a short record (its end is scanned byte by byte) and followed by
 * enough bytes that the vector loop meets it. */
static void judge_string(const char *body, int want)
{
    char rec[512];
    snprintf(rec, sizeof rec, "{\"s\":\"%s\"}", body);
    judge_n(rec, strlen(rec), want);
    snprintf(rec, sizeof rec, "{\"s\":\"%s\",\"pad\":\"0123456789abcdef0123456789abcdef\"}", body);
    judge_n(rec, strlen(rec), want);
    snprintf(rec, sizeof rec, "{\"s\":\"0123456789abc%s\",\"pad\":\"0123456789abcdef0123456789abcdef\"}", body);
    judge_n(rec, strlen(rec), want);
}

/* ---- Values ------------------------------------------------------------------------------ */

static void test_values_of_every_type(void **state)
{
    (void)state;
    static const char *const paths[] = {"s", "i", "r", "t", "f", "n", "o", "a", "eo", "ea", "missing"};
    jsonscan *s = scanner(paths, 11);
    const char *rec = "{\"s\":\"text\",\"i\":-12,\"r\":1.50e+3,\"t\":true,\"f\":false,\"n\":null,"
                      "\"o\":{\"x\":[1,{\"y\":\"a b\"}],\"z\":null},\"a\":[true,\"q\",[]],\"eo\":{},\"ea\":[]}";
    scan_ok(s, rec);
    expect(s, 0, "text");
    expect(s, 1, "-12");
    expect(s, 2, "1.50e+3");
    expect(s, 3, "true");
    expect(s, 4, "false");
    expect_code(s, 5, TALLY_ENOFIELD); /* null is absent */
    expect(s, 6, "{\"x\":[1,{\"y\":\"a b\"}],\"z\":null}");
    expect(s, 7, "[true,\"q\",[]]");
    expect(s, 8, "{}");
    expect(s, 9, "[]");
    expect_code(s, 10, TALLY_ENOFIELD);

    /* Texts without escapes or whitespace are the record's own bytes: no copy. */
    const char *v;
    size_t n;
    assert_int_equal(jsonscan_get(s, 0, &v, &n), 0);
    assert_ptr_equal(v, strstr(rec, "text"));
    assert_int_equal(jsonscan_get(s, 6, &v, &n), 0);
    assert_ptr_equal(v, strstr(rec, "{\"x\""));
    jsonscan_free(s);
}

static void test_numbers_as_written(void **state)
{
    (void)state;
    static const char *const nums[] = {
        "0", "-0", "7", "-7", "12", "1.50", "0.0", "-0.25", "1e3", "1E3", "1e+3", "1e-3", "-2.5E-3",
        "1.0e00", "12345678901234567890", "-9223372036854775809", "9223372036854775807", "1e-999",
        "1.7976931348623157e308", "-1.7976931348623157e308", "4.9e-324", "0e999", "0.000001e310",
    };
    jsonscan *s = jsonscan_new();
    size_t a = add(s, "a");
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char rec[128];
        snprintf(rec, sizeof rec, "{\"a\":%s}", nums[i]);
        scan_ok(s, rec);
        expect(s, a, nums[i]);
        snprintf(rec, sizeof rec, "{\"a\": %s , \"b\":[%s]}", nums[i], nums[i]);
        scan_ok(s, rec);
        expect(s, a, nums[i]);
    }
    jsonscan_free(s);
}

static void test_huge_numbers(void **state)
{
    (void)state;
    char rec[1024];
    /* An integer beyond int64 is read as a real by jansson's retry: valid while a double holds it. */
    memset(rec, 0, sizeof rec);
    strcpy(rec, "{\"a\":");
    memset(rec + 5, '9', 308);
    strcpy(rec + 5 + 308, "}");
    valid(rec);
    rec[5] = '1';
    memset(rec + 6, '0', 308); /* 10^308 */
    strcpy(rec + 6 + 308, "}");
    valid(rec);
    memset(rec + 5, '9', 309); /* 309 nines: beyond DBL_MAX */
    strcpy(rec + 5 + 309, "}");
    bad(rec);
    rec[5] = '-'; /* -999...9 with 308 nines */
    valid(rec);
    strcpy(rec + 5 + 309, "9}");
    bad(rec);

    bad("{\"a\":1e999}");
    bad("{\"a\":-1e999}");
    bad("{\"a\":1e309}");
    bad("{\"a\":1.7976931348623159e308}"); /* rounds past DBL_MAX */
    bad("{\"a\":1, \"b\":{\"c\":[2e400]}}");
    valid("{\"a\":1e308}");
    valid("{\"a\":1e-400}");
    valid("{\"a\":0.0000000001e312}");
    bad("{\"a\":10000000000e300}");
    valid("{\"a\":123456789012345678901234567890, \"b\":1.5}");
}

static void test_numbers_malformed(void **state)
{
    (void)state;
    static const char *const nums[] = {
        "01", "-01", "00", "-", "--1", "+1", "1.", "-.5", ".5", "1.e3", "1e", "1e+", "1E-", "0x10",
        "1.5.3", "NaN", "Infinity", "-Infinity", "1e1.5", "1_000", "١",
    };
    for (size_t i = 0; i < sizeof nums / sizeof nums[0]; i++) {
        char rec[128];
        snprintf(rec, sizeof rec, "{\"a\":%s}", nums[i]);
        bad(rec);
        snprintf(rec, sizeof rec, "{\"a\":[%s]}", nums[i]);
        bad(rec);
    }
}

static void test_literals(void **state)
{
    (void)state;
    valid("{\"a\":[true,false,null]}");
    static const char *const lits[] = {"tru", "truex", "True", "TRUE", "nul", "nulll", "fals", "falsey",
                                       "t", "n", "f", "undefined", "true1", "null0"};
    for (size_t i = 0; i < sizeof lits / sizeof lits[0]; i++) {
        char rec[64];
        snprintf(rec, sizeof rec, "{\"a\":%s}", lits[i]);
        bad(rec);
    }
    jsonscan *s = jsonscan_new();
    size_t a = add(s, "a");
    scan_ok(s, "{\"a\":true}");
    expect(s, a, "true");
    scan_ok(s, "{\"a\" : false }");
    expect(s, a, "false");
    scan_ok(s, "{\"a\":null}");
    expect_code(s, a, TALLY_ENOFIELD);
    jsonscan_free(s);
}

/* ---- Strings ----------------------------------------------------------------------------- */

static void test_strings_unescaped(void **state)
{
    (void)state;
    jsonscan *s = jsonscan_new();
    size_t a = add(s, "a");
    scan_ok(s, "{\"a\":\"q\\\" b\\\\ s\\/ \\b\\f\\n\\r\\t\"}");
    expect(s, a, "q\" b\\ s/ \b\f\n\r\t");
    scan_ok(s, "{\"a\":\"\\u0041\\u00e9\\u20AC\\uffff\"}");
    expect(s, a, "A\xc3\xa9\xe2\x82\xac\xef\xbf\xbf");
    scan_ok(s, "{\"a\":\"\\ud83d\\ude00 \\uDBFF\\uDFFF\"}"); /* surrogate pairs: U+1F600, U+10FFFF */
    expect(s, a, "\xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf");
    scan_ok(s, "{\"a\":\"x\\u0000y\"}"); /* JSON_ALLOW_NUL: the length tells */
    expect_n(s, a, "x\0y", 3);
    scan_ok(s, "{\"a\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}");
    expect(s, a, "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    scan_ok(s, "{\"a\":\"\"}");
    expect(s, a, "");

    /* Escapes on both sides of the 16-byte blocks of the vector loop. */
    char rec[256], want[256];
    for (int at = 0; at < 40; at++) {
        int n = snprintf(rec, sizeof rec, "{\"a\":\"%.*s\\n%.*s\\u00e9\",\"z\":1}", at,
                         "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH", 20, "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        assert_true(n > 0);
        snprintf(want, sizeof want, "%.*s\n%.*s\xc3\xa9", at, "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH", 20,
                 "ABCDEFGHIJKLMNOPQRSTUVWXYZ");
        scan_ok(s, rec);
        expect(s, a, want);
    }

    /* A long string, escapes and all. */
    size_t len = 0, wlen = 0;
    char *big = xmalloc(20000), *bw = xmalloc(20000);
    len += (size_t)sprintf(big, "{\"a\":\"");
    for (int i = 0; i < 1000; i++) {
        len += (size_t)sprintf(big + len, "word%03d\\t\xc3\xa9 ", i);
        wlen += (size_t)sprintf(bw + wlen, "word%03d\t\xc3\xa9 ", i);
    }
    len += (size_t)sprintf(big + len, "\"}");
    assert_int_equal(jsonscan_record(s, big, len), 0);
    expect_n(s, a, bw, wlen);
    free(big);
    free(bw);
    jsonscan_free(s);
}

static void test_strings_malformed(void **state)
{
    (void)state;
    static const char *const bodies[] = {
        "\x01", "a\x1f", "tab\there", "new\nline", "cr\r", "\\x41", "\\a", "\\'", "\\U0041", "\\u12",
        "\\u12G4", "\\u", "\\", "\\ud800", "\\udbff", "\\udc00", "\\udfff", "\\ud800x", "\\ud800\\n",
        "\\ud800\\u0041", "\\ud800\\ud800", "\\udc00\\ud800", "\\ud800\\udc0", "x\\",
    };
    for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) judge_string(bodies[i], TALLY_EBADREC);
    judge_string("\\ud800\\udc00", 0);
    judge_string("\x7f", 0); /* DEL is not a control character to JSON */

    /* A raw NUL byte inside a string is a control character. */
    judge_n("{\"a\":\"x\0y\"}", 11, TALLY_EBADREC);
    bad("{\"a\":\"unterminated}");
    bad("{\"a\":\"unterminated");
    bad("{\"a\":\"ends in a backslash\\");
}

static void test_utf8(void **state)
{
    (void)state;
    static const char *const good[] = {
        "\xc2\x80", "\xdf\xbf", "\xe0\xa0\x80", "\xe2\x82\xac", "\xed\x9f\xbf", "\xee\x80\x80", "\xef\xbf\xbf",
        "\xf0\x90\x80\x80", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf", "\xc3\xa9\xc3\xa9\xc3\xa9",
    };
    static const char *const broken[] = {
        "\x80", "\xbf", "\xc0\x80", "\xc1\xbf",               /* continuation bytes, overlong ASCII */
        "\xe0\x80\x80", "\xe0\x9f\xbf", "\xf0\x80\x80\x80",   /* overlong */
        "\xf0\x8f\xbf\xbf", "\xed\xa0\x80", "\xed\xbf\xbf",   /* overlong, encoded surrogates */
        "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xf8", "\xfe", "\xff", /* beyond U+10FFFF */
        "\xc3", "\xe2\x82", "\xf0\x9f\x98", "\xc3x", "\xe2\x82x", "\xf0\x9f\x98x", "\xc3\xc3", /* truncated */
        "\xe2\xc2\x80",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) judge_string(good[i], 0);
    for (size_t i = 0; i < sizeof broken / sizeof broken[0]; i++) judge_string(broken[i], TALLY_EBADREC);
    /* A sequence cut off by the end of the record, and non-ASCII outside strings. */
    bad("{\"a\":\"\xe2\x82");
    bad("{\"a\":1,\xc3\xa9:2}");
    bad("{\"a\":1}\xc3\xa9");
}

/* ---- Keys and paths ---------------------------------------------------------------------- */

static void test_keys(void **state)
{
    (void)state;
    static const char *const paths[] = {"key", "b", "a.b", "", "\xc3\xa9", "o.\xc3\xa9"};
    jsonscan *s = scanner(paths, 6);
    /* Keys are compared after unescaping; a key holding a dot cannot be reached. */
    scan_ok(s, "{\"k\\u0065y\":1.50,\"a\\u002eb\":1,\"a.b\":2,\"\\u00e9\":\"e\",\"\":\"empty\","
               "\"o\":{\"\xc3\xa9\":\"raw\"},\"b\":{}}");
    expect(s, 0, "1.50");
    expect(s, 1, "{}");
    expect_code(s, 2, TALLY_ENOFIELD);
    expect(s, 3, "empty");
    expect(s, 4, "e");
    expect(s, 5, "raw");

    /* Keys in any order, and keys that only look alike. */
    scan_ok(s, "{\"b\":2,\"ke\":0,\"keyy\":0,\"Key\":0,\"key\":3,\"a\":{\"bb\":0,\"b\":4}}");
    expect(s, 0, "3");
    expect(s, 1, "2");
    expect(s, 2, "4");
    expect_code(s, 3, TALLY_ENOFIELD);

    /* Keys must be strings, and jansson refuses NUL in a key even with JSON_ALLOW_NUL. */
    bad("{a:1}");
    bad("{1:1}");
    bad("{'a':1}");
    bad("{null:1}");
    bad("{\"a\\u0000\":1}");
    bad("{\"a\":{\"\\u0000\":1}}");
    bad("{\"a\":[{\"b\\u0000c\":1}]}");
    valid("{\"a\\u0001\":1}");
    jsonscan_free(s);
}

static void test_nested_paths(void **state)
{
    (void)state;
    static const char *const paths[] = {"meta.device.id", "meta.device", "meta", "meta.k", "user.x",
                                        "arr.id", "meta.device.id.x", "n.x", "z.y"};
    jsonscan *s = scanner(paths, 9);
    scan_ok(s, "{\"user\":\"b\",\"n\":6,\"meta\":{\"k\":null,\"device\":{\"id\":42,\"tag\":\"x\"}},"
               "\"arr\":[{\"id\":1}],\"z\":null}");
    expect(s, 0, "42");
    expect(s, 1, "{\"id\":42,\"tag\":\"x\"}");
    expect(s, 2, "{\"k\":null,\"device\":{\"id\":42,\"tag\":\"x\"}}");
    expect_code(s, 3, TALLY_ENOFIELD); /* null */
    expect_code(s, 4, TALLY_ENOFIELD); /* through a string */
    expect_code(s, 5, TALLY_ENOFIELD); /* arrays are not walked */
    expect_code(s, 6, TALLY_ENOFIELD); /* through a number */
    expect_code(s, 7, TALLY_ENOFIELD);
    expect_code(s, 8, TALLY_ENOFIELD); /* through null */

    /* The same names deeper down, or inside arrays, are other paths. */
    scan_ok(s, "{\"x\":{\"meta\":{\"device\":{\"id\":1}}},\"arr\":[{\"meta\":{\"device\":{\"id\":2}}}],"
               "\"meta\":{\"device\":{\"id\":3}}}");
    expect(s, 0, "3");
    jsonscan_free(s);
}

static void test_duplicates(void **state)
{
    (void)state;
    static const char *const paths[] = {"o.v", "o", "k", "a.b.c", "a.b", "o.v.w"};
    jsonscan *s = scanner(paths, 6);
    scan_ok(s, "{\"k\":1.50,\"o\":{\"v\":1},\"k\":2.50,\"o\":{\"v\":2}}");
    expect(s, 0, "2");
    expect(s, 1, "{\"v\":2}");
    expect(s, 2, "2.50");

    scan_ok(s, "{\"o\":{\"v\":1},\"o\":5}"); /* the last "o" has no v */
    expect_code(s, 0, TALLY_ENOFIELD);
    expect(s, 1, "5");

    scan_ok(s, "{\"o\":5,\"o\":{\"v\":1}}");
    expect(s, 0, "1");

    scan_ok(s, "{\"o\":{\"v\":1},\"o\":{\"w\":2}}");
    expect_code(s, 0, TALLY_ENOFIELD);

    scan_ok(s, "{\"o\":{\"v\":1,\"v\":null}}");
    expect_code(s, 0, TALLY_ENOFIELD);
    scan_ok(s, "{\"o\":{\"v\":null,\"v\":\"x\"},\"k\":1,\"k\":null}");
    expect(s, 0, "x");
    expect_code(s, 2, TALLY_ENOFIELD);

    scan_ok(s, "{\"a\":{\"b\":{\"c\":1}},\"a\":{\"b\":2}}");
    expect_code(s, 3, TALLY_ENOFIELD);
    expect(s, 4, "2");
    scan_ok(s, "{\"a\":{\"b\":{\"c\":1},\"b\":{\"d\":1}},\"a\":{\"b\":{\"c\":3}}}");
    expect(s, 3, "3");

    scan_ok(s, "{\"o\":{\"v\":{\"w\":1}},\"o\":{\"v\":{\"x\":2}}}");
    expect_code(s, 5, TALLY_ENOFIELD);
    expect(s, 0, "{\"x\":2}");

    /* A key written with escapes is the same key. */
    scan_ok(s, "{\"o\":{\"v\":1},\"\\u006f\":{\"\\u0076\":7}}");
    expect(s, 0, "7");
    jsonscan_free(s);
}

/* ---- Structure --------------------------------------------------------------------------- */

static void test_whitespace_everywhere(void **state)
{
    (void)state;
    static const char *const paths[] = {"a", "o.v", "o", "e"};
    jsonscan *s = scanner(paths, 4);
    scan_ok(s, " \t\r\n{ \"a\" :\t[ 1 ,\n{ \"b\" : 2 } , \" s p \" ] ,\r\"o\" : { \"v\" : \"x y\" } ,"
               " \"e\" : [ ] } \r\n\t ");
    expect(s, 0, "[1,{\"b\":2},\" s p \"]");
    expect(s, 1, "x y");
    expect(s, 2, "{\"v\":\"x y\"}");
    expect(s, 3, "[]");
    scan_ok(s, "{}");
    scan_ok(s, " { } ");
    expect_code(s, 0, TALLY_ENOFIELD);
    /* Only JSON's four whitespace bytes. */
    bad("{\"a\":1}\f");
    bad("\v{\"a\":1}");
    bad("{\"a\":\xc2\xa0 1}");
    jsonscan_free(s);
}

static void test_malformed_structure(void **state)
{
    (void)state;
    static const char *const recs[] = {
        "", " ", "\n", "[1,2,3]", "[]", "\"str\"", "12", "true", "null", "not json at all",
        "{", "}", "{\"a\":1", "{\"a\":1} x", "{\"a\":1}{\"b\":2}", "{\"a\":1},", "{\"a\":1,}",
        "{,}", "{,\"a\":1}", "{\"a\"}", "{\"a\":}", "{\"a\" 1}", "{\"a\"::1}", "{\"a\":1 \"b\":2}",
        "{\"a\":1,,\"b\":2}", "{\"a\":[1,]}", "{\"a\":[,1]}", "{\"a\":[1 2]}", "{\"a\":[}", "{\"a\":]}",
        "{\"a\":[1}", "{\"a\":{]}", "{\"a\":{\"b\":1]}", "{\"a\":[1]]}", "{\"a\":1}}", "{\"a\":NaN}",
        "{\"a\":'x'}", "{\"a\":1;\"b\":2}", "{\"a\":1}\n{\"b\":2}", "{\"a\":/*c*/1}",
    };
    for (size_t i = 0; i < sizeof recs / sizeof recs[0]; i++) bad(recs[i]);
    valid("{\"a\":[1,[2,[3,{}]],{\"b\":[]}]}");
}

/* A record nested `levels` containers (arrays or objects, by `open`) below its top-level object;
 * the innermost holds `inner` (for objects, as the value of key "a"), or nothing. */
static void judge_depth(int levels, const char *inner, char open, int want)
{
    struct buf b = {0};
    buf_appendf(&b, "{\"a\":");
    for (int i = 0; i < levels; i++) buf_appendf(&b, "%s", open == '[' ? "[" : i + 1 < levels ? "{\"a\":" : "{");
    if (open == '[') buf_appendf(&b, "%s", inner);
    else if (*inner) buf_appendf(&b, "\"a\":%s", inner);
    for (int i = 0; i < levels; i++) buf_putc(&b, open == '[' ? ']' : '}');
    buf_putc(&b, '}');
    judge_n(b.data, b.len, want);
    buf_free(&b);
}

static void test_depth(void **state)
{
    (void)state;
    /* The top-level object is at depth 1: 2047 more containers reach the maximum, 2048. */
    judge_depth(2046, "1", '[', 0);
    judge_depth(2047, "", '[', 0);
    judge_depth(2047, "1", '[', TALLY_EBADREC); /* the 1 would be at depth 2049 */
    judge_depth(2047, "[]", '[', TALLY_EBADREC);
    judge_depth(2048, "", '[', TALLY_EBADREC);
    judge_depth(5000, "", '[', TALLY_EBADREC);
    judge_depth(2046, "1", '{', 0);
    judge_depth(2047, "", '{', 0);
    judge_depth(2047, "1", '{', TALLY_EBADREC);
    judge_depth(2048, "", '{', TALLY_EBADREC);

    /* A deep record still yields its values. */
    jsonscan *s = jsonscan_new();
    size_t b = add(s, "b");
    char *rec = xmalloc(10000);
    size_t n = (size_t)sprintf(rec, "{\"a\":");
    for (int i = 0; i < 2000; i++) rec[n++] = '[';
    for (int i = 0; i < 2000; i++) rec[n++] = ']';
    n += (size_t)sprintf(rec + n, ",\"b\":\"after\"}");
    assert_int_equal(jsonscan_record(s, rec, n), 0);
    expect(s, b, "after");
    free(rec);
    jsonscan_free(s);
}

static void test_nul_bytes(void **state)
{
    (void)state;
    /* jansson loses a NUL byte it reads just past a number or a literal (it puts the byte back,
     * and its buffer takes a NUL for empty), so one such NUL is skipped; anywhere else a NUL byte
     * is malformed. */
    judge_n("{\"a\":1\0}", 8, 0);
    judge_n("{\"a\":-2.5e3\0 ,\"b\":2}", 20, 0);
    judge_n("{\"a\":true\0}", 11, 0);
    judge_n("{\"a\":[null\0,false\0]}", 20, 0);
    judge_n("{\"a\":1\0\0}", 9, TALLY_EBADREC);
    judge_n("{\"a\":1 \0}", 9, TALLY_EBADREC);
    judge_n("{\"a\":\"x\"\0}", 10, TALLY_EBADREC);
    judge_n("{\"a\":{}\0}", 9, TALLY_EBADREC);
    judge_n("{\"a\":1}\0", 8, TALLY_EBADREC);
    judge_n("\0{\"a\":1}", 8, TALLY_EBADREC);
    judge_n("{\0\"a\":1}", 8, TALLY_EBADREC);
    judge_n("{\"a\"\0:1}", 8, TALLY_EBADREC);
    judge_n("{\"a\":\0 1}", 9, TALLY_EBADREC);

    jsonscan *s = jsonscan_new();
    size_t a = add(s, "a"), b = add(s, "b");
    assert_int_equal(jsonscan_record(s, "{\"a\":12\0,\"b\":[1\0,true\0]}", 24), 0);
    expect(s, a, "12");
    expect(s, b, "[1,true]"); /* gone from composites too, like whitespace */
    jsonscan_free(s);
}

/* ---- The API ----------------------------------------------------------------------------- */

static void test_plan_and_rescan(void **state)
{
    (void)state;
    jsonscan *s = jsonscan_new();
    const char *v;
    size_t n;
    assert_int_equal(jsonscan_count(s), 0);
    size_t a = add(s, "a");
    assert_int_equal(add(s, "a"), a); /* the same path, the same index */
    size_t ab = add(s, "a.b");
    assert_int_equal(jsonscan_count(s), 2);
    assert_string_equal(jsonscan_path(s, ab), "a.b");
    assert_null(jsonscan_path(s, 2));
    assert_int_equal(jsonscan_get(s, a, &v, &n), -EINVAL); /* no record yet */
    assert_int_equal(jsonscan_rescan(s), -EINVAL);

    const char *rec = "{\"a\":{\"b\":\"x\\ty\",\"c\":[ 1, 2 ]},\"d\":\"z\\u00e9\"}";
    scan_ok(s, rec);
    expect(s, ab, "x\ty");
    const char *kept, *kept2;
    size_t keptn, kept2n;
    assert_int_equal(jsonscan_get(s, ab, &kept, &keptn), 0);
    assert_int_equal(jsonscan_get(s, a, &kept2, &kept2n), 0);
    assert_int_equal(jsonscan_get(s, 7, &v, &n), -EINVAL);

    /* A path added after the scan has no value until the record is scanned again, and values
     * handed out before the rescan stay valid. */
    size_t c = add(s, "a.c"), d = add(s, "d");
    expect_code(s, c, TALLY_ENOFIELD);
    expect_code(s, d, TALLY_ENOFIELD);
    assert_int_equal(jsonscan_rescan(s), 0);
    expect(s, c, "[1,2]");
    expect(s, d, "z\xc3\xa9");
    expect(s, ab, "x\ty");
    assert_int_equal(keptn, 3);
    assert_memory_equal(kept, "x\ty", 3);
    assert_memory_equal(kept2, "{\"b\":\"x\\ty\",\"c\":[1,2]}", kept2n);

    /* Nothing carries over from one record to the next. */
    scan_ok(s, "{\"d\":1}");
    expect_code(s, a, TALLY_ENOFIELD);
    expect_code(s, ab, TALLY_ENOFIELD);
    expect(s, d, "1");
    assert_int_equal(jsonscan_record(s, "{\"d\":1", 6), TALLY_EBADREC);
    expect_code(s, d, TALLY_EBADREC);
    assert_int_equal(jsonscan_rescan(s), TALLY_EBADREC);
    scan_ok(s, "{\"d\":2}");
    expect(s, d, "2");
    jsonscan_free(s);
    jsonscan_free(NULL);
}

static void test_scratch_reuse(void **state)
{
    (void)state;
    /* Unescaped and compacted texts share the scratch space: many of them, some large, must all
     * stay valid together, record after record. */
    static const char *const paths[] = {"big", "small", "e", "o"};
    jsonscan *s = scanner(paths, 4);
    char *line = xmalloc(60000);
    size_t len = (size_t)sprintf(line, "{\"big\": [");
    for (int i = 0; i < 3000; i++) len += (size_t)sprintf(line + len, "%s %d", i ? "," : "", i);
    len += (size_t)sprintf(line + len, "], \"small\": [ 1 ], \"e\": \"\\n%s\", \"o\": { \"a\" : 2 }}",
                           "0123456789012345678901234567890123456789");
    for (int round = 0; round < 5; round++) {
        const char *v[4];
        size_t n[4];
        assert_int_equal(jsonscan_record(s, line, len), 0);
        for (size_t i = 0; i < 4; i++) assert_int_equal(jsonscan_get(s, i, &v[i], &n[i]), 0);
        assert_memory_equal(v[0], "[0,1,2,3,", 9);
        assert_memory_equal(v[0] + n[0] - 6, ",2999]", 6);
        assert_int_equal(n[1], 3);
        assert_memory_equal(v[1], "[1]", 3);
        assert_int_equal(n[2], 41);
        assert_memory_equal(v[2], "\n0123456789", 11);
        assert_int_equal(n[3], 7);
        assert_memory_equal(v[3], "{\"a\":2}", 7);
    }
    free(line);
    jsonscan_free(s);
}

static void test_inference_record(void **state)
{
    (void)state;
    static const char *const paths[] = {"producer_id", "ground_truth", "inferred",   "confidence", "latency_ms",
                                        "meta.model",  "meta.version", "_id.$oid", "meta",       "_id.x"};
    jsonscan *s = scanner(paths, 10);
    const char *rec = "{\"_id\":{\"$oid\":\"665a64805634d359888be444\"},\"producer_id\":\"producer-03\","
                      "\"ground_truth\":\"bird\",\"inferred\":\"person\",\"confidence\":0.4657,"
                      "\"latency_ms\":40,\"meta\":{\"model\":\"vit_b16\",\"version\":4}}";
    for (int i = 0; i < 3; i++) {
        scan_ok(s, rec);
        expect(s, 0, "producer-03");
        expect(s, 1, "bird");
        expect(s, 2, "person");
        expect(s, 3, "0.4657");
        expect(s, 4, "40");
        expect(s, 5, "vit_b16");
        expect(s, 6, "4");
        expect(s, 7, "665a64805634d359888be444");
        expect(s, 8, "{\"model\":\"vit_b16\",\"version\":4}");
        expect_code(s, 9, TALLY_ENOFIELD);
    }
    jsonscan_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_of_every_type),
        cmocka_unit_test(test_numbers_as_written),
        cmocka_unit_test(test_huge_numbers),
        cmocka_unit_test(test_numbers_malformed),
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_strings_unescaped),
        cmocka_unit_test(test_strings_malformed),
        cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_nested_paths),
        cmocka_unit_test(test_duplicates),
        cmocka_unit_test(test_whitespace_everywhere),
        cmocka_unit_test(test_malformed_structure),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_nul_bytes),
        cmocka_unit_test(test_plan_and_rescan),
        cmocka_unit_test(test_scratch_reuse),
        cmocka_unit_test(test_inference_record),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
