/* test_fields.c - unit tests for CSV and JSON Lines field access (src/data/fields.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/fields.h"
#include "tally/tally.h"

/* ---- Helpers ----------------------------------------------------------------------------- */

static fields_header *header_of(const char *line)
{
    fields_header *h = NULL;
    struct err e = {0};
    assert_int_equal(fields_header_parse(line, strlen(line), &h, &e), 0);
    assert_non_null(h);
    return h;
}

/* Asserts that field `name` of the current record is exactly `want`. */
static void expect_field(fields_cache *c, const char *name, const char *want)
{
    const char *v = NULL;
    size_t n = 0;
    char got[8192];
    int rc = fields_get(c, name, &v, &n);
    if (rc != 0) fail_msg("field '%s': expected \"%s\", got error %d", name, want, rc);
    assert_true(n < sizeof got);
    memcpy(got, v, n);
    got[n] = 0;
    assert_string_equal(got, want);
    assert_int_equal(n, strlen(want));
}

static void expect_code(fields_cache *c, const char *name, int code)
{
    const char *v = NULL;
    size_t n = 0;
    assert_int_equal(fields_get(c, name, &v, &n), code);
}

static void csv(fields_cache *c, const fields_header *h, const char *line)
{
    fields_cache_reset(c, FIELDS_CSV, h, line, strlen(line));
}

static void jsonl(fields_cache *c, const char *line)
{
    fields_cache_reset(c, FIELDS_JSONL, NULL, line, strlen(line));
}

/* ---- CSV headers ------------------------------------------------------------------------- */

static void test_header_names(void **state)
{
    (void)state;
    fields_header *h = header_of("id,\"na,me\",\"say \"\"hi\"\"\",,last");
    assert_int_equal(fields_header_count(h), 5);
    assert_string_equal(fields_header_name(h, 0), "id");
    assert_string_equal(fields_header_name(h, 1), "na,me");
    assert_string_equal(fields_header_name(h, 2), "say \"hi\"");
    assert_string_equal(fields_header_name(h, 3), "");
    assert_string_equal(fields_header_name(h, 4), "last");
    assert_null(fields_header_name(h, 5));
    fields_header_free(h);
}

static void test_header_stray_cr_and_empty(void **state)
{
    (void)state;
    fields_header *h = header_of("k,v\r");
    assert_int_equal(fields_header_count(h), 2);
    assert_string_equal(fields_header_name(h, 1), "v");
    fields_header_free(h);

    h = header_of(""); /* an empty line is one column with an empty name */
    assert_int_equal(fields_header_count(h), 1);
    assert_string_equal(fields_header_name(h, 0), "");
    fields_header_free(h);
}

static void test_header_errors(void **state)
{
    (void)state;
    fields_header *h = NULL;
    struct err e = {0};
    const char *bad = "a,\"b,c";
    assert_int_equal(fields_header_parse(bad, strlen(bad), &h, &e), -EINVAL);
    assert_null(h);
    assert_string_equal(e.msg, "CSV header: unterminated quote at offset 2");

    bad = "a,\"b\"x,c";
    assert_int_equal(fields_header_parse(bad, strlen(bad), &h, &e), -EINVAL);
    assert_string_equal(e.msg, "CSV header: text after a closing quote at offset 5");
}

static void test_header_many_columns(void **state)
{
    (void)state;
    char line[20000];
    size_t len = 0;
    for (int i = 0; i < 1000; i++) len += (size_t)sprintf(line + len, "%scol%d", i ? "," : "", i);
    fields_header *h = header_of(line);
    assert_int_equal(fields_header_count(h), 1000);
    assert_string_equal(fields_header_name(h, 999), "col999");

    char rec[20000];
    len = 0;
    for (int i = 0; i < 1000; i++) len += (size_t)sprintf(rec + len, "%sv%d", i ? "," : "", i);
    fields_cache *c = fields_cache_new();
    csv(c, h, rec);
    expect_field(c, "col0", "v0");
    expect_field(c, "col517", "v517");
    expect_field(c, "col999", "v999");
    expect_code(c, "col1000", TALLY_ENOFIELD);
    fields_cache_free(c);
    fields_header_free(h);
}

static void test_header_duplicate_names(void **state)
{
    (void)state;
    /* A repeated column name refers to its last column. */
    fields_header *h = header_of("a,b,a");
    fields_cache *c = fields_cache_new();
    csv(c, h, "1,2,3");
    expect_field(c, "a", "3");
    expect_field(c, "b", "2");
    csv(c, h, "1,2"); /* the last "a" column is missing from this record */
    expect_code(c, "a", TALLY_ENOFIELD);
    fields_cache_free(c);
    fields_header_free(h);
}

/* ---- CSV records ------------------------------------------------------------------------- */

static void test_csv_plain_and_quoted(void **state)
{
    (void)state;
    fields_header *h = header_of("id,name,value");
    fields_cache *c = fields_cache_new();

    csv(c, h, "1,alpha,10");
    expect_field(c, "id", "1");
    expect_field(c, "name", "alpha");
    expect_field(c, "value", "10");
    expect_code(c, "nope", TALLY_ENOFIELD);

    csv(c, h, "3,\"gamma, the third\",30");
    expect_field(c, "name", "gamma, the third");
    expect_field(c, "value", "30");

    csv(c, h, "8,\"de\"\"lta\",7");
    expect_field(c, "name", "de\"lta");
    expect_field(c, "id", "8");

    csv(c, h, "\"\"\"\",\"\"\"\"\"\",\"a\"\"b\"\"c\"");
    expect_field(c, "id", "\"");
    expect_field(c, "name", "\"\"");
    expect_field(c, "value", "a\"b\"c");

    /* A quote inside an unquoted field is just a character. */
    csv(c, h, "9,12\" pipe,x");
    expect_field(c, "name", "12\" pipe");

    /* Quoted fields may hold what would otherwise end a record. */
    csv(c, h, "\"a\tb\",\"\r\",\"x,y\"\"z\"");
    expect_field(c, "id", "a\tb");
    expect_field(c, "name", "\r");
    expect_field(c, "value", "x,y\"z");

    fields_cache_free(c);
    fields_header_free(h);
}

static void test_csv_empty_fields(void **state)
{
    (void)state;
    fields_header *h = header_of("a,b,c");
    fields_cache *c = fields_cache_new();

    csv(c, h, ",,");
    expect_field(c, "a", "");
    expect_field(c, "b", "");
    expect_field(c, "c", "");

    csv(c, h, "x,\"\",");
    expect_field(c, "a", "x");
    expect_field(c, "b", "");
    expect_field(c, "c", "");

    csv(c, h, ""); /* an empty record has one empty field */
    expect_field(c, "a", "");
    expect_code(c, "b", TALLY_ENOFIELD);

    fields_cache_free(c);
    fields_header_free(h);
}

static void test_csv_missing_and_extra_fields(void **state)
{
    (void)state;
    fields_header *h = header_of("id,name,value");
    fields_cache *c = fields_cache_new();

    csv(c, h, "6,beta");
    expect_field(c, "id", "6");
    expect_field(c, "name", "beta");
    expect_code(c, "value", TALLY_ENOFIELD);

    csv(c, h, "7,alpha,5,extra");
    expect_code(c, "id", TALLY_EBADREC);
    expect_code(c, "value", TALLY_EBADREC);

    csv(c, h, "1,2,3,"); /* a trailing comma is a fourth, empty, field */
    expect_code(c, "id", TALLY_EBADREC);

    fields_cache_free(c);
    fields_header_free(h);
}

static void test_csv_malformed(void **state)
{
    (void)state;
    fields_header *h = header_of("id,name,value");
    fields_cache *c = fields_cache_new();

    csv(c, h, "4,\"unterminated,40");
    expect_code(c, "id", TALLY_EBADREC);
    expect_code(c, "name", TALLY_EBADREC);

    csv(c, h, "9,\"bad\"x,3");
    expect_code(c, "id", TALLY_EBADREC);

    csv(c, h, "\"a\" ,b,c"); /* even a space after the closing quote */
    expect_code(c, "name", TALLY_EBADREC);

    csv(c, h, "1,2,\""); /* a lone quote opens a field that never closes */
    expect_code(c, "id", TALLY_EBADREC);

    /* The next record is judged on its own. */
    csv(c, h, "2,beta,20");
    expect_field(c, "value", "20");

    fields_cache_free(c);
    fields_header_free(h);
}

/* Records the reader hands over may hold the newlines of quoted fields (RFC 4180): they are
 * data, as are \r\n pairs inside quotes; only a \r at the very end is line-ending debris. */
static void test_csv_quoted_newlines(void **state)
{
    (void)state;
    fields_header *h = header_of("id,\"multi\nline name\",v");
    assert_string_equal(fields_header_name(h, 1), "multi\nline name");
    fields_cache *c = fields_cache_new();

    csv(c, h, "1,\"two\nlines\",3");
    expect_field(c, "multi\nline name", "two\nlines");
    expect_field(c, "v", "3");

    csv(c, h, "2,\"crlf\r\ninside\r\n\",4");
    expect_field(c, "multi\nline name", "crlf\r\ninside\r\n");
    expect_field(c, "v", "4");

    csv(c, h, "3,\"a, \"\"b\"\"\n,c\",\"\n\"");
    expect_field(c, "multi\nline name", "a, \"b\"\n,c");
    expect_field(c, "v", "\n");

    csv(c, h, "4,\"ends in CR\r\",5\r");
    expect_field(c, "multi\nline name", "ends in CR\r");
    expect_field(c, "v", "5");

    csv(c, h, "\n,x,y"); /* an unquoted field holds no newline but the reader's word is final */
    expect_field(c, "id", "\n");

    csv(c, h, "5,\"never\nclosed,6"); /* what the reader hands over for an unterminated quote */
    expect_code(c, "v", TALLY_EBADREC);

    fields_cache_free(c);
    fields_header_free(h);
}

static void test_csv_stray_cr(void **state)
{
    (void)state;
    fields_header *h = header_of("k,v");
    fields_cache *c = fields_cache_new();

    csv(c, h, "a,1\r");
    expect_field(c, "k", "a");
    expect_field(c, "v", "1");

    csv(c, h, "a,\"1\"\r"); /* the \r is not text after the closing quote */
    expect_field(c, "v", "1");

    csv(c, h, "a,\r");
    expect_field(c, "v", "");

    fields_cache_free(c);
    fields_header_free(h);
}

static void test_csv_values_stay_valid(void **state)
{
    (void)state;
    fields_header *h = header_of("a,b,c");
    fields_cache *c = fields_cache_new();
    const char *va, *vb, *vc;
    size_t na, nb, nc;

    /* Values from several lookups of one record must all stay valid until the next reset. */
    csv(c, h, "\"x\"\"1\",\"y\"\"2\",z");
    assert_int_equal(fields_get(c, "a", &va, &na), 0);
    assert_int_equal(fields_get(c, "b", &vb, &nb), 0);
    assert_int_equal(fields_get(c, "c", &vc, &nc), 0);
    assert_int_equal(fields_get(c, "a", &va, &na), 0);
    assert_int_equal(na, 3);
    assert_memory_equal(va, "x\"1", 3);
    assert_int_equal(nb, 3);
    assert_memory_equal(vb, "y\"2", 3);
    assert_int_equal(nc, 1);
    assert_memory_equal(vc, "z", 1);

    /* Unescaping reuses the cache's buffer: growing records must still come out right. */
    char big[10000];
    memset(big, 'q', sizeof big);
    memcpy(big, "\"\"\"", 3);
    memcpy(big + 9000, "\",b,c", 6);
    csv(c, h, big);
    assert_int_equal(fields_get(c, "a", &va, &na), 0);
    assert_int_equal(na, 1 + 8997); /* the "" pair, then the q run */
    assert_int_equal(va[0], '"');
    assert_int_equal(va[na - 1], 'q');
    expect_field(c, "c", "c");

    fields_cache_free(c);
    fields_header_free(h);
}

static void test_csv_name_buffer_reused(void **state)
{
    (void)state;
    /* The lookup memo is keyed by the name's address; a caller that reuses one buffer for
     * different names must still get the right columns. */
    fields_header *h = header_of("alpha,beta,gamma");
    fields_cache *c = fields_cache_new();
    char name[16];
    csv(c, h, "1,2,3");
    strcpy(name, "alpha");
    expect_field(c, name, "1");
    strcpy(name, "gamma");
    expect_field(c, name, "3");
    strcpy(name, "beta");
    expect_field(c, name, "2");
    strcpy(name, "delta");
    expect_code(c, name, TALLY_ENOFIELD);
    fields_cache_free(c);
    fields_header_free(h);
}

static void test_csv_headers_alternate(void **state)
{
    (void)state;
    /* Records of two files interleave in one cache; each uses its own header's columns. */
    fields_header *h1 = header_of("x,y");
    fields_header *h2 = header_of("y,x");
    fields_cache *c = fields_cache_new();
    const char *x = "x", *y = "y";
    for (int i = 0; i < 3; i++) {
        csv(c, h1, "1,2");
        expect_field(c, x, "1");
        expect_field(c, y, "2");
        csv(c, h2, "1,2");
        expect_field(c, x, "2");
        expect_field(c, y, "1");
    }
    /* A new header in place of a freed one (perhaps at the same address) is not confused
     * with it. */
    fields_header_free(h1);
    h1 = header_of("z,x");
    csv(c, h1, "7,8");
    expect_field(c, x, "8");
    expect_code(c, y, TALLY_ENOFIELD);
    fields_cache_free(c);
    fields_header_free(h1);
    fields_header_free(h2);
}

static void test_csv_edge_file(void **state)
{
    (void)state;
    /* tests/data/edge/malformed.csv, record by record. Its unterminated quote comes last: a
     * quote opened at a field start runs on over newlines to the next quote, so anywhere else
     * it would join the rows after it into one record (the reader's business, test_split.c). */
    static const struct {
        const char *line;
        int rc;           /* for "value" */
        const char *name; /* expected "name" when rc == 0 or for a short record */
        const char *value;
    } rows[] = {
        {"1,alpha,10", 0, "alpha", "10"},
        {"2,beta,20", 0, "beta", "20"},
        {"3,\"gamma, the third\",30", 0, "gamma, the third", "30"},
        {"5,alpha,not_a_number", 0, "alpha", "not_a_number"},
        {"6,beta", TALLY_ENOFIELD, "beta", NULL},
        {"7,alpha,5,extra", TALLY_EBADREC, NULL, NULL},
        {"8,\"de\"\"lta\",7", 0, "de\"lta", "7"},
        {"9,\"bad\"x,3", TALLY_EBADREC, NULL, NULL},
        {"10,beta,2.5", 0, "beta", "2.5"},
        {"4,\"unterminated,40", TALLY_EBADREC, NULL, NULL},
    };
    fields_header *h = header_of("id,name,value");
    fields_cache *c = fields_cache_new();
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        csv(c, h, rows[i].line);
        if (rows[i].rc == 0)
            expect_field(c, "value", rows[i].value);
        else
            expect_code(c, "value", rows[i].rc);
        if (rows[i].name)
            expect_field(c, "name", rows[i].name);
        else
            expect_code(c, "name", rows[i].rc);
    }
    fields_cache_free(c);
    fields_header_free(h);
}

static void test_text_and_missing_header(void **state)
{
    (void)state;
    fields_cache *c = fields_cache_new();
    fields_cache_reset(c, FIELDS_TEXT, NULL, "a,b", 3);
    expect_code(c, "a", -EINVAL);
    fields_cache_reset(c, FIELDS_CSV, NULL, "a,b", 3); /* a CSV file without a header line */
    expect_code(c, "a", TALLY_EBADREC);
    fields_cache_free(c);
}

static void test_reset_without_lookup(void **state)
{
    (void)state;
    /* Records whose fields are never read are never parsed; nothing leaks either way. */
    fields_cache *c = fields_cache_new();
    for (int i = 0; i < 100; i++) jsonl(c, "{\"a\":1}");
    jsonl(c, "{\"a\":[1, 2]}");
    expect_field(c, "a", "[1,2]");
    jsonl(c, "not json");
    fields_cache_free(c);
    fields_cache_free(NULL);
    fields_header_free(NULL);
}

/* ---- JSON Lines -------------------------------------------------------------------------- */

static void test_json_strings(void **state)
{
    (void)state;
    fields_cache *c = fields_cache_new();
    jsonl(c, "{\"s\":\"a\\nb\\t\\\"q\\\" \\u00e9 \\\\\",\"e\":\"\",\"u\":\"caf\xc3\xa9\"}");
    expect_field(c, "s", "a\nb\t\"q\" \xc3\xa9 \\");
    expect_field(c, "e", "");
    expect_field(c, "u", "caf\xc3\xa9");

    /* \u0000 inside a string is kept: the length tells. */
    jsonl(c, "{\"z\":\"a\\u0000b\"}");
    const char *v;
    size_t n;
    assert_int_equal(fields_get(c, "z", &v, &n), 0);
    assert_int_equal(n, 3);
    assert_memory_equal(v, "a\0b", 3);
    fields_cache_free(c);
}

static void test_json_numbers_as_written(void **state)
{
    (void)state;
    fields_cache *c = fields_cache_new();
    jsonl(c, "{\"i\":12, \"neg\": -7, \"r\":2.5, \"z\":1.50, \"e\":1e3, \"E\":-2.5E-3,"
             " \"zero\":-0, \"big\":12345678901234567890, \"f\":1.0}");
    expect_field(c, "i", "12");
    expect_field(c, "neg", "-7");
    expect_field(c, "r", "2.5");
    expect_field(c, "z", "1.50");
    expect_field(c, "e", "1e3");
    expect_field(c, "E", "-2.5E-3");
    expect_field(c, "zero", "-0");
    expect_field(c, "big", "12345678901234567890");
    expect_field(c, "f", "1.0");
    fields_cache_free(c);
}

static void test_json_bools_null_composites(void **state)
{
    (void)state;
    fields_cache *c = fields_cache_new();
    jsonl(c, "{ \"t\" : true , \"f\":false, \"n\":null,"
             " \"o\": {\"x\": [1, 2.50 ,{\"y\" : \"a b\"}], \"s\":\"{ [ \\\" ]\"} ,"
             " \"a\":[ ], \"eo\":{} }");
    expect_field(c, "t", "true");
    expect_field(c, "f", "false");
    expect_code(c, "n", TALLY_ENOFIELD);
    expect_field(c, "o", "{\"x\":[1,2.50,{\"y\":\"a b\"}],\"s\":\"{ [ \\\" ]\"}");
    expect_field(c, "o.x", "[1,2.50,{\"y\":\"a b\"}]");
    expect_field(c, "o.s", "{ [ \" ]");
    expect_field(c, "a", "[]");
    expect_field(c, "eo", "{}");
    fields_cache_free(c);
}

static void test_json_nested_paths(void **state)
{
    (void)state;
    fields_cache *c = fields_cache_new();
    jsonl(c, "{\"user\":\"b\",\"n\":6,\"meta\":{\"k\":null,\"device\":{\"id\":42,\"tag\":\"x\"}},"
             "\"arr\":[{\"id\":1}],\"a.b\":5}");
    expect_field(c, "meta.device.id", "42");
    expect_field(c, "meta.device.tag", "x");
    expect_field(c, "meta.device", "{\"id\":42,\"tag\":\"x\"}");
    expect_code(c, "meta.k", TALLY_ENOFIELD);       /* null is absent */
    expect_code(c, "meta.device.id.x", TALLY_ENOFIELD); /* through a number */
    expect_code(c, "user.x", TALLY_ENOFIELD);       /* through a string */
    expect_code(c, "arr.id", TALLY_ENOFIELD);       /* arrays are not walked */
    expect_code(c, "meta.missing", TALLY_ENOFIELD);
    expect_code(c, "a.b", TALLY_ENOFIELD);          /* dots always mean nesting */
    expect_code(c, "", TALLY_ENOFIELD);
    fields_cache_free(c);
}

static void test_json_duplicates_and_escaped_keys(void **state)
{
    (void)state;
    fields_cache *c = fields_cache_new();
    /* The last of repeated keys wins, as in jansson. */
    jsonl(c, "{\"k\":1.50,\"o\":{\"v\":1},\"k\":2.50,\"o\":{\"v\":2}}");
    expect_field(c, "k", "2.50");
    expect_field(c, "o.v", "2");

    /* Keys written with escapes are found, and their values come out as written like any
     * other (before data/jsonscan.c, jansson printed them: 1.50 came out as "1.5"). */
    jsonl(c, "{\"k\\u0065y\":1.50,\"n\":7,\"s\":\"v\",\"o\":{\"a\" : 1}}");
    expect_field(c, "key", "1.50");
    expect_field(c, "n", "7");
    expect_field(c, "s", "v");
    expect_field(c, "o", "{\"a\":1}");
    fields_cache_free(c);
}

static void test_json_malformed(void **state)
{
    (void)state;
    static const char *bad[] = {
        "{\"user\":\"a\",\"n\":3", "not json at all", "[1,2,3]", "\"str\"", "12", "",
        "{\"a\":1} x", "{\"a\":1}{\"b\":2}", "{\"a\":NaN}", "{'a':1}", "{\"a\":1,}",
        "{\"a\":\"\xff\"}", "{\"a\":1e999}",
    };
    fields_cache *c = fields_cache_new();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        jsonl(c, bad[i]);
        expect_code(c, "a", TALLY_EBADREC);
        expect_code(c, "user", TALLY_EBADREC);
    }
    jsonl(c, "  {\"a\":1}  \r"); /* surrounding whitespace, a stray \r included, is fine */
    expect_field(c, "a", "1");
    fields_cache_free(c);
}

static void test_json_edge_file(void **state)
{
    (void)state;
    /* tests/data/edge/malformed.jsonl, record by record: user, n, meta.k. */
    static const struct {
        const char *line;
        int rc_user, rc_n, rc_k;
        const char *user, *n, *k;
    } rows[] = {
        {"{\"user\":\"a\",\"n\":1,\"meta\":{\"k\":\"x\"}}", 0, 0, 0, "a", "1", "x"},
        {"{\"user\":\"b\",\"n\":2.5,\"meta\":{\"k\":\"y\"}}", 0, 0, 0, "b", "2.5", "y"},
        {"{\"user\":\"a\",\"n\":3", TALLY_EBADREC, TALLY_EBADREC, TALLY_EBADREC, 0, 0, 0},
        {"not json at all", TALLY_EBADREC, TALLY_EBADREC, TALLY_EBADREC, 0, 0, 0},
        {"[1,2,3]", TALLY_EBADREC, TALLY_EBADREC, TALLY_EBADREC, 0, 0, 0},
        {"{\"user\":\"c\",\"n\":\"four\"}", 0, 0, TALLY_ENOFIELD, "c", "four", 0},
        {"{\"user\":null,\"n\":4}", TALLY_ENOFIELD, 0, TALLY_ENOFIELD, 0, "4", 0},
        {"{\"n\":5}", TALLY_ENOFIELD, 0, TALLY_ENOFIELD, 0, "5", 0},
        {"{\"user\":\"b\",\"n\":6,\"meta\":{\"k\":null}}", 0, 0, TALLY_ENOFIELD, "b", "6", 0},
        {"{\"user\":\"a\",\"n\":-7}", 0, 0, TALLY_ENOFIELD, "a", "-7", 0},
    };
    fields_cache *c = fields_cache_new();
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        jsonl(c, rows[i].line);
        if (rows[i].rc_user) expect_code(c, "user", rows[i].rc_user);
        else expect_field(c, "user", rows[i].user);
        if (rows[i].rc_n) expect_code(c, "n", rows[i].rc_n);
        else expect_field(c, "n", rows[i].n);
        if (rows[i].rc_k) expect_code(c, "meta.k", rows[i].rc_k);
        else expect_field(c, "meta.k", rows[i].k);
    }
    fields_cache_free(c);
}

static void test_json_name_buffer_reused(void **state)
{
    (void)state;
    /* As for CSV: names are remembered by address, and a buffer reused for another name, or a
     * name first asked for in the middle of a record, must still get the right value. */
    fields_cache *c = fields_cache_new();
    char name[16];
    for (int i = 0; i < 3; i++) {
        jsonl(c, "{\"alpha\":1,\"beta\":{\"x\":\"b\\u0078\"},\"gamma\":[ 3 ]}");
        strcpy(name, "alpha");
        expect_field(c, name, "1");
        strcpy(name, "beta.x");
        expect_field(c, name, "bx");
        strcpy(name, "gamma");
        expect_field(c, name, "[3]");
        strcpy(name, "delta");
        expect_code(c, name, TALLY_ENOFIELD);
        expect_field(c, "alpha", "1");
    }
    jsonl(c, "{\"alpha\":2,");
    expect_code(c, name, TALLY_EBADREC);
    expect_code(c, "epsilon", TALLY_EBADREC); /* a new name on a malformed record */
    jsonl(c, "{\"epsilon\":5}");
    expect_field(c, "epsilon", "5");
    fields_cache_free(c);
}

static void test_json_values_stay_valid(void **state)
{
    (void)state;
    /* Compacted composites live in the cache's arena: many of them, some large, must all stay
     * valid together until the next record. */
    fields_cache *c = fields_cache_new();
    char line[40000];
    size_t len = (size_t)sprintf(line, "{\"big\": [");
    for (int i = 0; i < 3000; i++) len += (size_t)sprintf(line + len, "%s %d", i ? "," : "", i);
    len += (size_t)sprintf(line + len, "], \"small\": [ 1 ], \"o\": { \"a\" : 2 }, \"n\": 3.0}");
    const char *v[4];
    size_t n[4];
    for (int round = 0; round < 3; round++) {
        fields_cache_reset(c, FIELDS_JSONL, NULL, line, len);
        assert_int_equal(fields_get(c, "small", &v[0], &n[0]), 0);
        assert_int_equal(fields_get(c, "big", &v[1], &n[1]), 0);
        assert_int_equal(fields_get(c, "o", &v[2], &n[2]), 0);
        assert_int_equal(fields_get(c, "n", &v[3], &n[3]), 0);
        assert_int_equal(n[0], 3);
        assert_memory_equal(v[0], "[1]", 3);
        assert_memory_equal(v[1], "[0,1,2,3,", 9);
        assert_memory_equal(v[1] + n[1] - 6, ",2999]", 6);
        assert_int_equal(n[2], 7);
        assert_memory_equal(v[2], "{\"a\":2}", 7);
        assert_int_equal(n[3], 3);
        assert_memory_equal(v[3], "3.0", 3);
    }
    fields_cache_free(c);
}

/* Quote-free records of every length across the 16-byte blocks of the SIMD splitter, with
 * every count of fields around the header's, read by name and through interned handles,
 * against a plain split at commas. */
static void test_csv_plain_split_random(void **state)
{
    (void)state;
    fields_header *h = header_of("c0,c1,c2,c3,c4,c5,c6,c7,c8,c9,c10,c11");
    const struct tally_field *refs[12];
    char names[12][16];
    for (int i = 0; i < 12; i++) {
        snprintf(names[i], sizeof names[i], "c%d", i);
        refs[i] = fields_ref(names[i]);
        assert_non_null(refs[i]);
        assert_ptr_equal(refs[i], fields_ref(names[i])); /* one handle per name */
    }
    fields_cache *c = fields_cache_new();
    unsigned seed = 5;
    char line[256];
    for (int k = 0; k < 20000; k++) {
        size_t n = (size_t)(rand_r(&seed) % 120), nf = 1;
        for (size_t i = 0; i < n; i++) {
            unsigned r = rand_r(&seed) % 8;
            line[i] = r == 0 ? ',' : r == 1 ? ' ' : (char)('a' + r);
        }
        if (n && rand_r(&seed) % 5 == 0) line[n - 1] = '\r'; /* line-ending debris: trimmed */
        line[n] = 0;
        for (size_t i = 0; i < n; i++) nf += line[i] == ',';
        csv(c, h, line);
        size_t len = n && line[n - 1] == '\r' ? n - 1 : n, start = 0, col = 0;
        for (size_t i = 0; i <= len && col < 12; i++) {
            if (i < len && line[i] != ',') continue;
            const char *v;
            size_t vl;
            int want = nf > 12 ? TALLY_EBADREC : 0;
            assert_int_equal(fields_get_ref(c, refs[col], &v, &vl), want);
            assert_int_equal(fields_get(c, names[col], &v, &vl), want);
            if (!want) {
                assert_int_equal(vl, i - start);
                assert_memory_equal(v, line + start, vl);
            }
            start = i + 1;
            col++;
        }
        for (; col < 12 && nf <= 12; col++) {
            const char *v;
            size_t vl;
            assert_int_equal(fields_get_ref(c, refs[col], &v, &vl), TALLY_ENOFIELD);
        }
    }
    fields_cache_free(c);
    fields_header_free(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_plain_split_random),
        cmocka_unit_test(test_header_names),
        cmocka_unit_test(test_header_stray_cr_and_empty),
        cmocka_unit_test(test_header_errors),
        cmocka_unit_test(test_header_many_columns),
        cmocka_unit_test(test_header_duplicate_names),
        cmocka_unit_test(test_csv_plain_and_quoted),
        cmocka_unit_test(test_csv_empty_fields),
        cmocka_unit_test(test_csv_missing_and_extra_fields),
        cmocka_unit_test(test_csv_malformed),
        cmocka_unit_test(test_csv_quoted_newlines),
        cmocka_unit_test(test_csv_stray_cr),
        cmocka_unit_test(test_csv_values_stay_valid),
        cmocka_unit_test(test_csv_name_buffer_reused),
        cmocka_unit_test(test_csv_headers_alternate),
        cmocka_unit_test(test_csv_edge_file),
        cmocka_unit_test(test_text_and_missing_header),
        cmocka_unit_test(test_reset_without_lookup),
        cmocka_unit_test(test_json_strings),
        cmocka_unit_test(test_json_numbers_as_written),
        cmocka_unit_test(test_json_bools_null_composites),
        cmocka_unit_test(test_json_nested_paths),
        cmocka_unit_test(test_json_duplicates_and_escaped_keys),
        cmocka_unit_test(test_json_malformed),
        cmocka_unit_test(test_json_edge_file),
        cmocka_unit_test(test_json_name_buffer_reused),
        cmocka_unit_test(test_json_values_stay_valid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
