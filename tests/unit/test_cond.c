/* test_cond.c - unit tests for --where conditions, --agg lists and partial aggregates (cond.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/fields.h"
#include "jobs/cond.h"
#include "tally/tally.h"

/* ---- A record for tests: name/value pairs, NULL-terminated ------------------------------- */

/* A record is {"name", "value", ..., NULL}; the name "!bad" makes the record unparsable. */
static int rec_lookup(void *arg, const char *name, const void *ref, const char **val, size_t *vlen)
{
    (void)ref;
    const char *const *r = arg;
    for (size_t i = 0; r[i]; i += 2) {
        if (strcmp(r[i], "!bad") == 0) return TALLY_EBADREC;
        if (strcmp(r[i], name) == 0) {
            *val = r[i + 1];
            *vlen = strlen(r[i + 1]);
            return 0;
        }
    }
    return TALLY_ENOFIELD;
}

static cond *parse_ok(const char *text)
{
    cond *c = NULL;
    struct err e = {0};
    int rc = cond_parse(text, "--where", &c, &e);
    if (rc) fail_msg("cond_parse(%s) failed: %s", text, e.msg);
    assert_non_null(c);
    return c;
}

/* The failing field's name, copied: cond_failure borrows it from the condition. */
static char failed_field[64];

/* Evaluates text on rec; returns the evaluation's code, the match through *match, and on
 * failure the field's name in failed_field. */
static int eval_on(const char *text, const char *const *rec, int *match, cond_failure *fail)
{
    cond *c = parse_ok(text);
    *match = -1;
    failed_field[0] = 0;
    int rc = cond_eval(c, rec_lookup, (void *)rec, match, fail);
    if (rc && fail) snprintf(failed_field, sizeof failed_field, "%s", fail->field);
    cond_free(c);
    return rc;
}

static void expect_match(const char *text, const char *const *rec, int want)
{
    int m;
    int rc = eval_on(text, rec, &m, NULL);
    if (rc) fail_msg("%s: evaluation failed with %d", text, rc);
    if (m != want) fail_msg("%s: expected %s, got %s", text, want ? "true" : "false",
                            m ? "true" : "false");
}

/* The exact three-line message for an error at `off` in a short ASCII text: the message, the
 * text indented by four spaces, and a caret under the byte at `off`. */
static void expected_message(char *out, size_t cap, const char *what, const char *msg,
                             size_t off, const char *text)
{
    snprintf(out, cap, "%s: %s at offset %zu:\n    %s\n%*s^", what, msg, off, text, 4 + (int)off,
             "");
}

static void expect_cond_error(const char *text, size_t off, const char *msg)
{
    cond *c = NULL;
    struct err e = {0};
    char want[2048];
    assert_int_equal(cond_parse(text, "--where", &c, &e), -EINVAL);
    assert_null(c);
    expected_message(want, sizeof want, "--where", msg, off, text);
    assert_string_equal(e.msg, want);
}

static void expect_agg_error(const char *text, size_t off, const char *msg)
{
    aggspec *a = NULL;
    struct err e = {0};
    char want[2048];
    assert_int_equal(aggspec_parse(text, "--agg", &a, &e), -EINVAL);
    assert_null(a);
    expected_message(want, sizeof want, "--agg", msg, off, text);
    assert_string_equal(e.msg, want);
}

/* The echoed text of a pointing message: its second line without the four-space indent,
 * copied into `out`. Fails unless the message has exactly three lines and the second one is
 * indented by exactly four spaces. */
static void echo_line(const char *msg, char *out, size_t cap)
{
    const char *nl1 = strchr(msg, '\n');
    assert_non_null(nl1);
    const char *nl2 = strchr(nl1 + 1, '\n');
    assert_non_null(nl2);
    assert_null(strchr(nl2 + 1, '\n'));
    assert_true(nl2 - nl1 - 1 >= 4);
    assert_memory_equal(nl1 + 1, "    ", 4);
    size_t n = (size_t)(nl2 - nl1 - 1 - 4);
    assert_true(n < cap);
    memcpy(out, nl1 + 5, n);
    out[n] = 0;
}

/* For messages whose echo is cut or not plain ASCII: the first line must end with "at offset
 * off:", and the caret on the third line must sit under `ch` on the second. */
static void expect_caret_under(const char *msg, size_t off, char ch)
{
    char at[64], echo[1024];
    snprintf(at, sizeof at, " at offset %zu:\n", off);
    const char *nl1 = strchr(msg, '\n');
    assert_non_null(nl1);
    size_t atlen = strlen(at);
    assert_true((size_t)(nl1 + 1 - msg) >= atlen);
    assert_memory_equal(nl1 + 1 - atlen, at, atlen);
    echo_line(msg, echo, sizeof echo);
    const char *line2 = nl1 + 1, *line3 = strchr(line2, '\n') + 1;
    size_t col = strspn(line3, " ");
    assert_string_equal(line3 + col, "^");
    assert_true(col >= 4);
    assert_true(col < 4 + strlen(echo));
    assert_int_equal(line2[col], ch);
}

/* ---- Conditions: evaluation -------------------------------------------------------------- */

static void test_precedence(void **state)
{
    (void)state;
    /* and binds tighter: a==1 or (b==2 and c==3). */
    const char *r1[] = {"a", "1", "b", "0", "c", "0", NULL};
    const char *r2[] = {"a", "0", "b", "2", "c", "0", NULL};
    const char *r3[] = {"a", "0", "b", "2", "c", "3", NULL};
    expect_match("a==1 or b==2 and c==3", r1, 1);
    expect_match("a==1 or b==2 and c==3", r2, 0);
    expect_match("a==1 or b==2 and c==3", r3, 1);
    expect_match("b==2 and c==3 or a==1", r1, 1);
    expect_match("a==1 OR b==2 AND c==3", r1, 1);
    expect_match("a==1 OR b==2 AND c==3", r2, 0);
    /* Parentheses override it. */
    expect_match("(a==1 or b==2) and c==3", r1, 0);
    expect_match("(a==1 or b==2) and c==3", r3, 1);
    expect_match("((a==1) or ((b==2)) and (c==3))", r1, 1);
    expect_match("(a==0)and(b==2)", r2, 1);
    /* Long chains. */
    expect_match("a==9 or a==8 or a==7 or b==2", r2, 1);
    expect_match("a==0 and b==2 and c==0 and c!=1", r2, 1);
    expect_match("a==0 and b==2 and c==0 and c==1", r2, 0);
}

static void test_operators(void **state)
{
    (void)state;
    const char *r[] = {"n", "5", "s", "abc", NULL};
    static const struct {
        const char *text;
        int want;
    } cases[] = {
        {"n == 5", 1},    {"n == 6", 0},     {"n = 5", 1},      {"n = 4", 0},
        {"n != 5", 0},    {"n != 6", 1},     {"n < 6", 1},      {"n < 5", 0},
        {"n <= 5", 1},    {"n <= 4", 0},     {"n > 4", 1},      {"n > 5", 0},
        {"n >= 5", 1},    {"n >= 6", 0},     {"s == 'abc'", 1}, {"s == 'abd'", 0},
        {"s != 'abc'", 0}, {"s != 'ab'", 1}, {"s < 'abd'", 1},  {"s < 'abc'", 0},
        {"s <= 'abc'", 1}, {"s <= 'abb'", 0}, {"s > 'ab'", 1},  {"s > 'abc'", 0},
        {"s >= 'abc'", 1}, {"s >= 'abca'", 0},
        /* The literal may come first; the operator keeps its direction. */
        {"6 > n", 1},     {"4 > n", 0},      {"'abd' > s", 1},  {"5 <= n", 1},
        /* Whitespace is optional. */
        {"n==5", 1},      {"s>='abc'", 1},  {"s<'abc'", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        expect_match(cases[i].text, r, cases[i].want);
    /* ...but a number runs into a following word: */
    expect_cond_error("n>=5and s=='abc'", 3, "invalid number '5and'");
    expect_match("n>=5 and s=='abc'", r, 1);
    expect_match("s=='abc'and n>=5", r, 1);
}

static void test_numbers_versus_strings(void **state)
{
    (void)state;
    const char *r[] = {"ten", "10", "nine", "9", "word", "10x", "hex", "0x10", "sp", " 5",
                       "real", "1e1", "neg", "-2.5", "inf", "inf", "nan", "nan", "dot", "5.",
                       NULL};
    /* Both numbers: numeric order, quoted or not. */
    expect_match("ten > nine", r, 1);
    expect_match("ten > '9'", r, 1);
    expect_match("'10' > nine", r, 1);
    expect_match("ten == 10.0", r, 1);
    expect_match("ten == '1e1'", r, 1);
    expect_match("real == ten", r, 1);
    expect_match("neg < -2", r, 1);
    expect_match("neg == -2.50", r, 1);
    expect_match("neg >= -2.5e0", r, 1);
    expect_match("dot == 5", r, 1);
    expect_match("ten == +10", r, 1);
    expect_match("ten > .5", r, 1);
    /* One side not a number: bytes, so "10x" < "9". */
    expect_match("word < nine", r, 1);
    expect_match("word < '9'", r, 1);
    expect_match("word > ten", r, 1); /* "10" is a prefix of "10x" */
    /* Hex, inf, nan and leading spaces are not numbers. */
    expect_match("hex == 16", r, 0);
    expect_match("hex == '0x10'", r, 1);
    expect_match("hex < 1", r, 1); /* "0x10" < "1" as bytes */
    expect_match("sp == 5", r, 0);
    expect_match("sp == ' 5'", r, 1);
    expect_match("inf > 1000", r, 1); /* "inf" > "1000" as bytes */
    expect_match("nan == 'nan'", r, 1);
    /* Two fields. */
    expect_match("ten != nine", r, 1);
    expect_match("ten == ten", r, 1);
}

static void test_field_names(void **state)
{
    (void)state;
    const char *r[] = {"ground_truth", "cat", "inferred", "dog", "meta.k", "x", "a-b", "1",
                       "_u", "2", "caf\xc3\xa9", "3", "c9", "4", NULL};
    expect_match("ground_truth!=inferred", r, 1);
    expect_match("ground_truth==inferred", r, 0);
    expect_match("meta.k=='x'", r, 1);
    expect_match("a-b==1", r, 1);
    expect_match("a-b>-1", r, 1);
    expect_match("_u==2", r, 1);
    expect_match("caf\xc3\xa9==3", r, 1);
    expect_match("c9==4", r, 1);
}

static void test_string_literals(void **state)
{
    (void)state;
    const char *r[] = {"q", "it's", "dq", "say \"hi\"", "bs", "a\\b", "e", "", "kw",
                       "x and (y, z)", "t", "a\tb", NULL};
    expect_match("q == 'it''s'", r, 1);
    expect_match("q == 'it\\'s'", r, 1);
    expect_match("q == \"it's\"", r, 1);
    expect_match("dq == 'say \"hi\"'", r, 1);
    expect_match("dq == \"say \\\"hi\\\"\"", r, 1);
    expect_match("dq == \"say \"\"hi\"\"\"", r, 1);
    expect_match("bs == 'a\\\\b'", r, 1); /* \\ is one backslash */
    expect_match("bs == 'a\\b'", r, 1);   /* a lone backslash is literal */
    expect_match("e == ''", r, 1);
    expect_match("e < 'a'", r, 1);
    expect_match("kw == 'x and (y, z)'", r, 1);
    expect_match("t == 'a\tb'", r, 1);
    expect_match("q=='it''s'and e==''", r, 1);
}

static void test_missing_and_bad_records(void **state)
{
    (void)state;
    const char *r[] = {"a", "1", "b", "2", NULL};
    const char *bad[] = {"!bad", "", NULL};
    cond_failure f = {0};
    int m;
    assert_int_equal(eval_on("zz == 1", r, &m, &f), TALLY_ENOFIELD);
    assert_string_equal(failed_field, "zz");
    assert_int_equal(m, -1);

    /* Every field is read even when the answer is already known, so a record lacking one is
     * always reported, whatever the order of the terms. */
    memset(&f, 0, sizeof f);
    assert_int_equal(eval_on("a == 1 or zz == 1", r, &m, &f), TALLY_ENOFIELD);
    assert_string_equal(failed_field, "zz");
    assert_int_equal(eval_on("a == 2 and yy == 1", r, &m, &f), TALLY_ENOFIELD);
    assert_string_equal(failed_field, "yy");
    assert_int_equal(eval_on("1 < a and (b == 2 or (xx == 1 and b == ww))", r, &m, &f),
                     TALLY_ENOFIELD);
    assert_string_equal(failed_field, "xx"); /* the first missing one */
    assert_int_equal(eval_on("b == ww", r, &m, &f), TALLY_ENOFIELD);
    assert_string_equal(failed_field, "ww");

    assert_int_equal(eval_on("a == 1", bad, &m, &f), TALLY_EBADREC);
    assert_string_equal(failed_field, "a");

    /* A NULL failure pointer is allowed. */
    assert_int_equal(eval_on("zz == 1", r, &m, NULL), TALLY_ENOFIELD);
}

static void test_failure_text(void **state)
{
    (void)state;
    char why[256];
    cond_failure f = {"value", NULL, 0};
    cond_failure_text(TALLY_ENOFIELD, &f, why, sizeof why);
    assert_string_equal(why, "missing field 'value'");
    cond_failure_text(TALLY_EBADREC, &f, why, sizeof why);
    assert_string_equal(why, "malformed record");
    f.val = "ab\"c\nd";
    f.vlen = 6;
    cond_failure_text(AGGSPEC_ENOTNUM, &f, why, sizeof why);
    assert_string_equal(why, "field 'value' is not a number: \"ab?c?d\"");
    f.val = "0123456789012345678901234567890123456789_tail";
    f.vlen = strlen(f.val);
    cond_failure_text(AGGSPEC_ENOTNUM, &f, why, sizeof why);
    assert_string_equal(why, "field 'value' is not a number: "
                             "\"0123456789012345678901234567890123456789...\"");
    cond_failure_text(-EIO, &f, why, sizeof why);
    assert_string_equal(why, "cannot read field 'value' (error -5)");
}

static void test_cond_number_and_compare(void **state)
{
    (void)state;
    static const char *yes[] = {"0", "-0", "+5", "1.", ".5", "-.5", "1e3", "1E-3", "2.5e+10",
                                "123456789012345678901234567890", "1e-400"};
    static const char *no[] = {"", "-", "+", ".", "e5", "1e", "1e+", "0x10", "inf", "nan",
                               " 5", "5 ", "1.2.3", "1,5", "--1", "1e999", "١"};
    double d;
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        if (!cond_number(yes[i], strlen(yes[i]), &d)) fail_msg("'%s' should be a number", yes[i]);
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        if (cond_number(no[i], strlen(no[i]), &d)) fail_msg("'%s' is not a number", no[i]);
    assert_true(cond_number("2.5e+10", 7, &d));
    assert_true(d == 2.5e10);
    assert_true(cond_number("12", 1, &d)); /* only the first n bytes count */
    assert_true(d == 1);

    assert_true(cond_compare("10", 2, "9", 1) > 0);
    assert_true(cond_compare("10", 2, "9x", 2) < 0);
    assert_true(cond_compare("1e1", 3, "10", 2) == 0);
    assert_true(cond_compare("ab", 2, "abc", 3) < 0);
    assert_true(cond_compare("abc", 3, "ab", 2) > 0);
    assert_true(cond_compare("", 0, "", 0) == 0);
    assert_true(cond_compare("\xff", 1, "a", 1) > 0); /* bytes compare unsigned */
}

/* ---- Conditions: errors ------------------------------------------------------------------ */

#define OPERAND "expected a field name, a number or a quoted string"

/* The fast path of number parsing gives exactly strtod's double (and strtoll's integer) on
 * plain decimals of every shape near its limits: 18 and 19 digits, 2^53, 22 fraction digits. */
static void test_number_fast_path_exact(void **state)
{
    (void)state;
    static const char *fixed[] = {"0", "-0", "+0", "0.0", "-0.0", "1.", ".5", "-.5", "+.25",
                                  "9007199254740991.5", "9007199254740993", "0.1", "0.3",
                                  "123456789012345678", "1234567890123456789",
                                  "9223372036854775807", "-9223372036854775808",
                                  "9223372036854775808", "0.0000000000000000000001",
                                  "0.00000000000000000000001", "5.079", "17.99999999999999999",
                                  "000000000000000000000000000000001.5"};
    unsigned seed = 11;
    char buf[64];
    for (int k = 0; k < 200000 + (int)(sizeof fixed / sizeof fixed[0]); k++) {
        const char *s = buf;
        if (k < (int)(sizeof fixed / sizeof fixed[0])) {
            s = fixed[k];
        } else {
            /* Random digits around the fast path's limits, with a point anywhere. */
            int nd = 1 + (int)(rand_r(&seed) % 24), point = (int)(rand_r(&seed) % (nd + 2)) - 1;
            size_t n = 0;
            if (rand_r(&seed) % 3 == 0) buf[n++] = '-';
            for (int i = 0; i < nd; i++) {
                if (i == point) buf[n++] = '.';
                buf[n++] = (char)('0' + rand_r(&seed) % 10);
            }
            buf[n] = 0;
        }
        double want = strtod(s, NULL), got;
        /* An integer that fits int64 is read by strtoll (as before the fast path): -0 is 0. */
        errno = 0;
        long long iv = strchr(s, '.') ? 0 : strtoll(s, NULL, 10);
        if (!strchr(s, '.') && errno == 0) want = (double)iv;
        assert_true(cond_number(s, strlen(s), &got));
        if (memcmp(&want, &got, sizeof got) != 0) fail_msg("'%s': got %.17g, strtod says %.17g", s, got, want);
    }
}

static void test_cond_errors(void **state)
{
    (void)state;
    expect_cond_error("a = 1 and b ~ 2", 12, "expected a comparison operator");
    expect_cond_error("", 0, OPERAND);
    expect_cond_error("   ", 3, OPERAND);
    expect_cond_error("a ==", 4, OPERAND);
    expect_cond_error("a == 'abc", 5, "unterminated string");
    expect_cond_error("a=='it''s", 3, "unterminated string");
    expect_cond_error("a==\"x", 3, "unterminated string");
    expect_cond_error("a=='x\\'", 3, "unterminated string");
    expect_cond_error("(a==1", 0, "unclosed '('");
    expect_cond_error("a==1 and ((b==2) or c==3", 9, "unclosed '('");
    expect_cond_error("a==1)", 4, "unmatched ')'");
    expect_cond_error("a==1 b==2", 5, "expected 'and', 'or' or the end of the condition");
    expect_cond_error("a==1 And b==2", 5, "expected 'and', 'or' or the end of the condition");
    expect_cond_error("(a==1 b==2)", 6, "expected 'and', 'or' or ')'");
    expect_cond_error("1==2", 0, "a comparison needs a field name on one side");
    expect_cond_error("a==1 or 'x'=='y'", 8, "a comparison needs a field name on one side");
    expect_cond_error("a==1x", 3, "invalid number '1x'");
    expect_cond_error("a==1.2.3", 3, "invalid number '1.2.3'");
    expect_cond_error("a==0x10", 3, "invalid number '0x10'");
    expect_cond_error("a==1e", 3, "invalid number '1e'");
    expect_cond_error("a==1 and", 8, OPERAND);
    expect_cond_error("a==1 or or b==2", 8, OPERAND);
    expect_cond_error("a ! 1", 2, "expected a comparison operator");
    expect_cond_error("a", 1, "expected a comparison operator");
    expect_cond_error("a b", 2, "expected a comparison operator");
    expect_cond_error("and==1", 0, OPERAND);
    expect_cond_error("a==()", 3, OPERAND);
    expect_cond_error("()", 1, OPERAND);
    expect_cond_error("a == -", 5, OPERAND);
    expect_cond_error("a <> 1", 3, OPERAND);
    expect_cond_error("a == 1 and (b == 2 or c ~ 3)", 24, "expected a comparison operator");
    expect_cond_error("a == 1 && b == 2", 7, "expected 'and', 'or' or the end of the condition");
}

static void test_cond_error_nesting(void **state)
{
    (void)state;
    char text[400];
    size_t n = 0;
    for (int i = 0; i < 64; i++) text[n++] = '(';
    memcpy(text + n, "a==1", 4);
    n += 4;
    for (int i = 0; i < 64; i++) text[n++] = ')';
    text[n] = 0;
    cond *c = parse_ok(text); /* 64 levels are fine */
    const char *r[] = {"a", "1", NULL};
    int m = -1;
    assert_int_equal(cond_eval(c, rec_lookup, r, &m, NULL), 0);
    assert_int_equal(m, 1);
    cond_free(c);

    n = 0;
    for (int i = 0; i < 65; i++) text[n++] = '(';
    memcpy(text + n, "a==1", 5);
    struct err e = {0};
    assert_int_equal(cond_parse(text, "--where", &c, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "--where: too many nested parentheses (at most 64)"));
    expect_caret_under(e.msg, 64, '(');
}

static void test_cond_error_utf8_and_long(void **state)
{
    (void)state;
    cond *c = NULL;
    struct err e = {0};
    /* The caret counts characters: "café" is 5 bytes but 4 columns. */
    assert_int_equal(cond_parse("caf\xc3\xa9 ~ 1", "--where", &c, &e), -EINVAL);
    assert_string_equal(e.msg, "--where: expected a comparison operator at offset 6:\n"
                               "    caf\xc3\xa9 ~ 1\n"
                               "         ^");

    /* A control character is shown as a space so the caret stays aligned. */
    char echo[1024];
    assert_int_equal(cond_parse("a\t== 1 ~", "--where", &c, &e), -EINVAL);
    expect_caret_under(e.msg, 7, '~');
    echo_line(e.msg, echo, sizeof echo);
    assert_string_equal(echo, "a == 1 ~");

    /* A long condition is cut around the error, which stays visible under the caret. */
    char text[1000];
    size_t n = 0;
    for (int i = 0; i < 60; i++) n += (size_t)sprintf(text + n, "a==%d and ", i % 10);
    size_t off = n + 2;
    sprintf(text + n, "b ~ 2 and c == 3");
    assert_int_equal(cond_parse(text, "--where", &c, &e), -EINVAL);
    expect_caret_under(e.msg, off, '~');
    echo_line(e.msg, echo, sizeof echo);
    size_t elen = strlen(echo);
    assert_memory_equal(echo, "...", 3);
    /* The tail is short enough to show whole, so no trailing "...". */
    assert_true(elen > 6);
    assert_string_equal(echo + elen - 6, "c == 3");
    assert_true(elen <= 3 + 200);

    /* An error at the very start of a long text: no leading "...", trailing "...". */
    memmove(text + 1, text, strlen(text) + 1);
    text[0] = '~';
    assert_int_equal(cond_parse(text, "--where", &c, &e), -EINVAL);
    expect_caret_under(e.msg, 0, '~');
    echo_line(e.msg, echo, sizeof echo);
    elen = strlen(echo);
    assert_int_equal(echo[0], '~');
    assert_true(elen > 3);
    assert_string_equal(echo + elen - 3, "...");
    assert_true(elen <= 200 + 3);
    assert_null(c);
}

/* ---- Aggregate lists --------------------------------------------------------------------- */

static aggspec *agg_ok(const char *text)
{
    aggspec *a = NULL;
    struct err e = {0};
    int rc = aggspec_parse(text, "--agg", &a, &e);
    if (rc) fail_msg("aggspec_parse(%s) failed: %s", text, e.msg);
    assert_non_null(a);
    return a;
}

static void test_agg_split(void **state)
{
    (void)state;
    aggspec *a = agg_ok("count_if(ground_truth!=inferred),count,ratio_if(ground_truth!=inferred)");
    assert_int_equal(a->n, 3);
    assert_int_equal(a->items[0].kind, AGGSPEC_COUNT_IF);
    assert_string_equal(a->items[0].text, "count_if(ground_truth!=inferred)");
    assert_non_null(a->items[0].cond);
    assert_int_equal(a->items[1].kind, AGGSPEC_COUNT);
    assert_string_equal(a->items[1].text, "count");
    assert_int_equal(a->items[2].kind, AGGSPEC_RATIO_IF);
    assert_string_equal(a->items[2].text, "ratio_if(ground_truth!=inferred)");
    aggspec_free(a);

    /* Commas inside parentheses and quotes belong to the condition. */
    a = agg_ok(" count_if(x=='a,b' or (y==1 and z=='),(')) , sum( value ) ,AVG(v),min(m),max(m),"
               "count()");
    assert_int_equal(a->n, 6);
    assert_string_equal(a->items[0].text, "count_if(x=='a,b' or (y==1 and z=='),('))");
    assert_int_equal(a->items[1].kind, AGGSPEC_SUM);
    assert_string_equal(a->items[1].text, "sum( value )");
    assert_string_equal(a->items[1].field, "value");
    assert_int_equal(a->items[2].kind, AGGSPEC_AVG);
    assert_string_equal(a->items[2].field, "v");
    assert_int_equal(a->items[3].kind, AGGSPEC_MIN);
    assert_int_equal(a->items[4].kind, AGGSPEC_MAX);
    assert_int_equal(a->items[5].kind, AGGSPEC_COUNT);
    assert_string_equal(a->items[5].text, "count()");

    const char *r[] = {"x", "a,b", "y", "1", "z", "),(", NULL};
    int m = -1;
    assert_int_equal(cond_eval(a->items[0].cond, rec_lookup, r, &m, NULL), 0);
    assert_int_equal(m, 1);
    aggspec_free(a);

    a = agg_ok("sum(meta.device-id)");
    assert_string_equal(a->items[0].field, "meta.device-id");
    aggspec_free(a);
}

static void test_agg_errors(void **state)
{
    (void)state;
#define EXPECTED_AGG \
    "expected an aggregate: count, count_if(COND), ratio_if(COND), sum(F), avg(F), min(F) or max(F)"
#define UNKNOWN(x) \
    "unknown aggregate '" x "' (known: count, count_if, ratio_if, sum, avg, min, max)"
    expect_agg_error("", 0, EXPECTED_AGG);
    expect_agg_error("count,", 6, EXPECTED_AGG);
    expect_agg_error("count,,sum(x)", 6, EXPECTED_AGG);
    expect_agg_error("  , count", 2, EXPECTED_AGG);
    expect_agg_error("(count)", 0, EXPECTED_AGG);
    expect_agg_error("'count'", 0, EXPECTED_AGG);
    expect_agg_error("foo(x)", 0, UNKNOWN("foo"));
    expect_agg_error("count, median(v)", 7, UNKNOWN("median"));
    expect_agg_error("sum", 3, "expected '(' after 'sum'");
    expect_agg_error("sum x", 4, "expected '(' after 'sum'");
    expect_agg_error("sum(x", 3, "unclosed '('");
    expect_agg_error("count_if((a==1), count", 8, "unclosed '('");
    expect_agg_error("sum(x))", 6, "unmatched ')'");
    expect_agg_error("sum(x),)", 7, "unmatched ')'");
    expect_agg_error("sum()", 4, "expected a field name");
    expect_agg_error("sum(  )", 6, "expected a field name");
    expect_agg_error("sum(1)", 4, "expected a field name");
    expect_agg_error("avg(.x)", 4, "expected a field name");
    expect_agg_error("sum(a b)", 6, "expected ')' after the field name");
    expect_agg_error("sum(a+b)", 5, "expected ')' after the field name");
    expect_agg_error("sum(x) y", 7, "unexpected text after ')'");
    expect_agg_error("count(x)", 6, "count takes no argument (count_if(COND) counts matches)");
    expect_agg_error("count x", 6, "unexpected text after 'count'");
    /* Errors inside a condition point into the whole list. */
    expect_agg_error("count,count_if(a ~ 1)", 17, "expected a comparison operator");
    expect_agg_error("count_if()", 9, OPERAND);
    expect_agg_error("ratio_if(a==1 or)", 16, OPERAND);
    expect_agg_error("count_if(a==1))", 14, "unmatched ')'");
    expect_agg_error("count_if(x=='a)", 12, "unterminated string");
    expect_agg_error("count_if(1==1)", 9, "a comparison needs a field name on one side");
#undef UNKNOWN
#undef EXPECTED_AGG

    /* At most AGGSPEC_MAX_ITEMS aggregates. */
    char text[1000];
    size_t n = 0;
    for (int i = 0; i < AGGSPEC_MAX_ITEMS; i++) n += (size_t)sprintf(text + n, "count,");
    text[n - 1] = 0;
    aggspec *a = agg_ok(text);
    assert_int_equal(a->n, AGGSPEC_MAX_ITEMS);
    aggspec_free(a);
    text[n - 1] = ',';
    sprintf(text + n, "sum(x)");
    struct err e = {0};
    assert_int_equal(aggspec_parse(text, "--agg", &a, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "--agg: too many aggregates (at most 64)"));
    expect_caret_under(e.msg, n, 's');
}

static void test_group_fields(void **state)
{
    (void)state;
    char **names = NULL;
    size_t n = 0;
    struct err e = {0};
    char want[512];
    assert_int_equal(aggspec_parse_fields("house_id, household_id ,plug_id", "--group-by",
                                          &names, &n, &e), 0);
    assert_int_equal(n, 3);
    assert_string_equal(names[0], "house_id");
    assert_string_equal(names[1], "household_id");
    assert_string_equal(names[2], "plug_id");
    aggspec_free_fields(names, n);

    assert_int_equal(aggspec_parse_fields("house id", "--group-by", &names, &n, &e), 0);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "house id"); /* CSV headers may contain spaces */
    aggspec_free_fields(names, n);

    static const struct {
        const char *text;
        size_t off;
    } bad[] = {{"", 0}, {"a,,b", 2}, {"a,", 2}, {" , a", 1}, {"a,  ", 4}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        names = NULL;
        assert_int_equal(aggspec_parse_fields(bad[i].text, "--group-by", &names, &n, &e),
                         -EINVAL);
        assert_null(names);
        expected_message(want, sizeof want, "--group-by", "expected a field name", bad[i].off,
                         bad[i].text);
        assert_string_equal(e.msg, want);
    }
}

/* ---- Partial aggregates ------------------------------------------------------------------ */

/* Feeds records through aggspec_record, encodes each one, and merges the encodings into one
 * result in a given order; returns the formatted text. */
static void aggregate_records(const char *spec, const char *const *const *recs, size_t nrec,
                              char *out)
{
    aggspec *a = agg_ok(spec);
    aggspec_slot acc[AGGSPEC_MAX_ITEMS], one[AGGSPEC_MAX_ITEMS];
    unsigned char enc[AGGSPEC_ENCODED_MAX];
    aggspec_init(a, acc);
    for (size_t i = 0; i < nrec; i++) {
        cond_failure f = {0};
        int rc = aggspec_record(a, rec_lookup, (void *)recs[i], one, &f);
        if (rc) fail_msg("record %zu: code %d, field %s", i, rc, f.field ? f.field : "-");
        size_t len = aggspec_encode(a, one, enc);
        assert_true(len <= AGGSPEC_ENCODED_MAX);
        assert_int_equal(aggspec_decode_merge(a, acc, enc, len), 0);
    }
    aggspec_format(a, acc, out);
    aggspec_free(a);
}

#define REC(...) ((const char *const[]){__VA_ARGS__, NULL})

static void expect_aggregate(const char *spec, const char *const *const *recs, size_t nrec,
                             const char *want)
{
    char out[AGGSPEC_TEXT_MAX];
    aggregate_records(spec, recs, nrec, out);
    assert_string_equal(out, want);
}

static void test_agg_values(void **state)
{
    (void)state;
    const char *const *ints[] = {REC("v", "3"), REC("v", "-1"), REC("v", "10"), REC("v", "+2")};
    expect_aggregate("count,sum(v),avg(v),min(v),max(v)", ints, 4, "4\t14\t3.5\t-1\t10");

    const char *const *mixed[] = {REC("v", "3"), REC("v", "2.5"), REC("v", "4")};
    expect_aggregate("sum(v),avg(v),min(v),max(v)", mixed, 3, "9.5\t3.1666666666666665\t2.5\t4");

    const char *const *same[] = {REC("v", "2"), REC("v", "2")};
    expect_aggregate("avg(v),sum(v)", same, 2, "2\t4");

    const char *const *reals[] = {REC("v", "1.0"), REC("v", "2e0")};
    expect_aggregate("sum(v),min(v),max(v)", reals, 2, "3\t1\t2");

    const char *const *cmp[] = {REC("a", "x", "b", "x"), REC("a", "x", "b", "y"),
                                REC("a", "1", "b", "1.0")};
    expect_aggregate("count_if(a!=b),count,ratio_if(a!=b),ratio_if(a==b)", cmp, 3,
                     "1\t3\t0.3333333333333333\t0.6666666666666666");

    const char *const *half[] = {REC("a", "1"), REC("a", "0")};
    expect_aggregate("ratio_if(a==1),count_if(a>5)", half, 2, "0.5\t0");
}

static void test_agg_big_integers(void **state)
{
    (void)state;
    /* Integer sums are exact beyond 64 bits and print as integers whenever they fit int64. */
    const char *const *up[] = {REC("v", "9223372036854775807"), REC("v", "1")};
    expect_aggregate("sum(v),max(v)", up, 2, "9.223372036854776e+18\t9223372036854775807");
    const char *const *back[] = {REC("v", "9223372036854775807"), REC("v", "1"), REC("v", "-1")};
    expect_aggregate("sum(v)", back, 3, "9223372036854775807");
    const char *const *low[] = {REC("v", "-9223372036854775808"), REC("v", "-9223372036854775808"),
                                REC("v", "9223372036854775807"), REC("v", "9223372036854775807")};
    expect_aggregate("sum(v),min(v),avg(v)", low, 4, "-2\t-9223372036854775808\t-0.5");
    /* Beyond int64 a value is a real. */
    const char *const *huge[] = {REC("v", "1"), REC("v", "99999999999999999999")};
    expect_aggregate("max(v),min(v)", huge, 2, "1e+20\t1");
    const char *const *neg[] = {REC("v", "-5"), REC("v", "3")};
    expect_aggregate("sum(v)", neg, 2, "-2");
}

static void test_agg_compensated_sum(void **state)
{
    (void)state;
    static const char *const tenth[] = {"v", "0.1", NULL};
    const char *const *tenths[10];
    for (int i = 0; i < 10; i++) tenths[i] = tenth;
    expect_aggregate("sum(v),avg(v)", tenths, 10, "1\t0.1");

    /* The order of combining barely matters. */
    const char *const *cancel[] = {REC("v", "1e16"), REC("v", "1.0"), REC("v", "-1e16")};
    expect_aggregate("sum(v)", cancel, 3, "1");
    const char *const *cancel2[] = {REC("v", "1.0"), REC("v", "1e16"), REC("v", "-1e16")};
    expect_aggregate("sum(v)", cancel2, 3, "1");

    /* A sum that overflows is infinite, not NaN. */
    const char *const *huge[] = {REC("v", "1e308"), REC("v", "1e308"), REC("v", "1")};
    expect_aggregate("sum(v),avg(v),max(v)", huge, 3, "inf\tinf\t1e+308");

    /* Partials merged in a tree give the same answer as one by one. */
    aggspec *a = agg_ok("sum(v),avg(v),min(v),max(v),count");
    static const char *vals[] = {"0.1", "7", "1e-3", "-2.5", "1e15", "3", "0.7", "-1e15"};
    aggspec_slot one[8][AGGSPEC_MAX_ITEMS], left[AGGSPEC_MAX_ITEMS], right[AGGSPEC_MAX_ITEMS],
        seq[AGGSPEC_MAX_ITEMS];
    char t1[AGGSPEC_TEXT_MAX], t2[AGGSPEC_TEXT_MAX];
    aggspec_init(a, left);
    aggspec_init(a, right);
    aggspec_init(a, seq);
    for (int i = 0; i < 8; i++) {
        const char *r[] = {"v", vals[i], NULL};
        assert_int_equal(aggspec_record(a, rec_lookup, r, one[i], NULL), 0);
        aggspec_merge(a, seq, one[i]);
        aggspec_merge(a, i % 2 ? left : right, one[i]);
    }
    aggspec_merge(a, right, left);
    aggspec_format(a, seq, t1);
    aggspec_format(a, right, t2);
    assert_string_equal(t1, t2);
    assert_string_equal(t1, "8.301\t1.037625\t-1e+15\t1e+15\t8");
    aggspec_free(a);
}

static void test_agg_record_failures(void **state)
{
    (void)state;
    aggspec *a = agg_ok("count,count_if(k=='x'),sum(v)");
    aggspec_slot s[AGGSPEC_MAX_ITEMS];
    cond_failure f = {0};
    const char *no_v[] = {"k", "x", NULL};
    assert_int_equal(aggspec_record(a, rec_lookup, no_v, s, &f), TALLY_ENOFIELD);
    assert_string_equal(f.field, "v");
    const char *no_k[] = {"v", "1", NULL};
    assert_int_equal(aggspec_record(a, rec_lookup, no_k, s, &f), TALLY_ENOFIELD);
    assert_string_equal(f.field, "k");
    const char *text_v[] = {"k", "x", "v", "12abc", NULL};
    assert_int_equal(aggspec_record(a, rec_lookup, text_v, s, &f), AGGSPEC_ENOTNUM);
    assert_string_equal(f.field, "v");
    assert_int_equal(f.vlen, 5);
    assert_memory_equal(f.val, "12abc", 5);
    const char *empty_v[] = {"k", "x", "v", "", NULL};
    assert_int_equal(aggspec_record(a, rec_lookup, empty_v, s, &f), AGGSPEC_ENOTNUM);
    const char *bad[] = {"!bad", "", NULL};
    assert_int_equal(aggspec_record(a, rec_lookup, bad, s, NULL), TALLY_EBADREC);
    const char *ok[] = {"k", "y", "v", "2", NULL};
    assert_int_equal(aggspec_record(a, rec_lookup, ok, s, &f), 0);
    char out[AGGSPEC_TEXT_MAX];
    aggspec_format(a, s, out);
    assert_string_equal(out, "1\t0\t2");
    aggspec_free(a);
}

static void test_agg_encoding(void **state)
{
    (void)state;
    aggspec *a = agg_ok("count,count_if(a==1),ratio_if(a==1),sum(v),avg(v),min(v),max(v)");
    aggspec_slot s[AGGSPEC_MAX_ITEMS], acc[AGGSPEC_MAX_ITEMS];
    unsigned char enc[AGGSPEC_ENCODED_MAX];
    char t1[AGGSPEC_TEXT_MAX], t2[AGGSPEC_TEXT_MAX];

    /* A partial holding large counts, a 128-bit sum and reals survives encoding unchanged. */
    aggspec_init(a, s);
    for (int i = 0; i < 7; i++) s[i].n = UINT64_MAX / 3;
    s[2].total = UINT64_MAX / 2;
    s[3].lo = 0x8000000000000001ull;
    s[3].hi = -3;
    s[4].is_int = 0;
    s[4].sum = 1e300;
    s[4].comp = -1e-300;
    s[5].ival = INT64_MIN;
    s[6].is_int = 0;
    s[6].dval = -0.1;
    size_t len = aggspec_encode(a, s, enc);
    assert_true(len <= 12 + 32 * 7);
    aggspec_init(a, acc);
    assert_int_equal(aggspec_decode_merge(a, acc, enc, len), 0);
    assert_memory_equal(&acc[3].lo, &s[3].lo, sizeof s[3].lo);
    assert_int_equal(acc[3].hi, -3);
    assert_true(acc[4].sum == 1e300 && acc[4].comp == -1e-300);
    assert_true(acc[5].ival == INT64_MIN);
    assert_true(acc[6].dval == -0.1);
    aggspec_format(a, s, t1);
    aggspec_format(a, acc, t2);
    assert_string_equal(t1, t2);

    /* The layout is fixed: one record's partial of "count" is these bytes on every machine. */
    aggspec *c = agg_ok("count,min(v)");
    const char *r[] = {"v", "-2.5", NULL};
    assert_int_equal(aggspec_record(c, rec_lookup, r, s, NULL), 0);
    len = aggspec_encode(c, s, enc);
    static const unsigned char want[] = {1, 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0x04, 0xc0};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(enc, want, sizeof want);

    /* Anything else is refused. */
    aggspec_init(c, acc);
    assert_int_equal(aggspec_decode_merge(c, acc, enc, len - 1), -EBADMSG);
    unsigned char longer[sizeof want + 1];
    memcpy(longer, want, sizeof want);
    longer[sizeof want] = 0;
    assert_int_equal(aggspec_decode_merge(c, acc, longer, sizeof longer), -EBADMSG);
    unsigned char bad[sizeof want];
    memcpy(bad, want, sizeof want);
    bad[0] = 2; /* version */
    assert_int_equal(aggspec_decode_merge(c, acc, bad, sizeof bad), -EBADMSG);
    bad[0] = 1;
    bad[1] = 3; /* entry count */
    assert_int_equal(aggspec_decode_merge(c, acc, bad, sizeof bad), -EBADMSG);
    bad[1] = 2;
    bad[4] = 2; /* is_int flag */
    assert_int_equal(aggspec_decode_merge(c, acc, bad, sizeof bad), -EBADMSG);
    assert_int_equal(aggspec_decode_merge(c, acc, "", 0), -EBADMSG);
    static const unsigned char endless[] = {1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                            0xff, 0xff, 0xff, 0xff, 0xff};
    assert_int_equal(aggspec_decode_merge(c, acc, endless, sizeof endless), -EBADMSG);
    /* Encodings of another spec do not fit this one. */
    assert_int_equal(aggspec_decode_merge(a, acc, want, sizeof want), -EBADMSG);
    aggspec_free(c);
    aggspec_free(a);
}

static void test_format_double(void **state)
{
    (void)state;
    static const struct {
        double d;
        const char *want;
    } cases[] = {
        {0.5, "0.5"},
        {1.0 / 3, "0.3333333333333333"},
        {2.0 / 3, "0.6666666666666666"},
        {0.1, "0.1"},
        {0.1 + 0.2, "0.30000000000000004"},
        {8.85, "8.85"},
        {1.0, "1"},
        {-0.0, "-0"},
        {123456789012.0, "123456789012"},
        {1e21, "1e+21"},
        {1e-5, "1e-05"},
        {-2.5e-300, "-2.5e-300"},
        {1.7976931348623157e308, "1.7976931348623157e+308"},
    };
    char out[32];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t n = aggspec_format_double(cases[i].d, out);
        assert_string_equal(out, cases[i].want);
        assert_int_equal(n, strlen(cases[i].want));
    }
    aggspec_format_double(NAN, out);
    assert_string_equal(out, "nan");
    aggspec_format_double(-INFINITY, out);
    assert_string_equal(out, "-inf");
}

static void test_escape_and_columns(void **state)
{
    (void)state;
    char out[64];
    size_t n = aggspec_escape("a\tb\nc\rd\\e", 9, out);
    out[n] = 0;
    assert_string_equal(out, "a\\tb\\nc\\rd\\\\e");
    assert_int_equal(aggspec_escape("", 0, out), 0);

    aggspec *a = agg_ok("count, avg(value) ,count_if(s=='a\tb')");
    char *group[] = {"house_id", "household\\id"};
    char *cols = aggspec_columns(a, group, 2);
    assert_string_equal(cols, "house_id\thousehold\\\\id\tcount\tavg(value)\tcount_if(s=='a\\tb')");
    free(cols);
    cols = aggspec_columns(a, NULL, 0);
    assert_string_equal(cols, "count\tavg(value)\tcount_if(s=='a\\tb')");
    free(cols);
    aggspec_free(a);
}

/* ---- The aggregate job's logic, end to end over real CSV and JSON Lines records ----------
 *
 * This mirrors what jobs/aggregate.c does through the engine (where, group key, partials,
 * combine, reduce) with fields.c doing the field access, records split between two "map
 * tasks" whose partials are combined before the "reduce". */

struct sim_group {
    char key[256];
    size_t klen;
    aggspec_slot slots[AGGSPEC_MAX_ITEMS];
};

struct sim_task {
    struct sim_group groups[16];
    size_t n;
};

static struct sim_group *sim_find(struct sim_task *t, const aggspec *a, const char *key,
                                  size_t klen)
{
    for (size_t i = 0; i < t->n; i++)
        if (t->groups[i].klen == klen && memcmp(t->groups[i].key, key, klen) == 0)
            return &t->groups[i];
    assert_true(t->n < 16);
    struct sim_group *g = &t->groups[t->n++];
    memcpy(g->key, key, klen);
    g->klen = klen;
    aggspec_init(a, g->slots);
    return g;
}

static int sim_lookup(void *arg, const char *name, const void *ref, const char **val, size_t *vlen)
{
    (void)ref;
    return fields_get(arg, name, val, vlen);
}

static int cmp_lines(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

static void simulate(fields_format fmt, const char *header, const char *const *lines,
                     const char *group_by, const char *agg, const char *where,
                     const char *const *want, size_t want_skipped)
{
    struct err e = {0};
    char **group = NULL;
    size_t ngroup = 0, skipped = 0;
    aggspec *a = agg_ok(agg);
    cond *w = where ? parse_ok(where) : NULL;
    assert_int_equal(aggspec_parse_fields(group_by, "--group-by", &group, &ngroup, &e), 0);
    fields_header *h = NULL;
    if (header) assert_int_equal(fields_header_parse(header, strlen(header), &h, &e), 0);
    fields_cache *fc = fields_cache_new();
    static struct sim_task tasks[2], reduce;
    memset(tasks, 0, sizeof tasks);
    memset(&reduce, 0, sizeof reduce);

    for (size_t i = 0; lines[i]; i++) {
        fields_cache_reset(fc, fmt, h, lines[i], strlen(lines[i]));
        cond_failure f = {0};
        aggspec_slot one[AGGSPEC_MAX_ITEMS];
        unsigned char enc[AGGSPEC_ENCODED_MAX];
        char key[256];
        size_t klen = 0;
        int m = 1, rc = 0;
        if (w) rc = cond_eval(w, sim_lookup, fc, &m, &f);
        if (rc == 0 && !m) continue;
        for (size_t g = 0; rc == 0 && g < ngroup; g++) {
            const char *v;
            size_t vl;
            rc = fields_get(fc, group[g], &v, &vl);
            if (rc == 0) {
                if (g) key[klen++] = '\t';
                klen += aggspec_escape(v, vl, key + klen);
            }
        }
        if (rc == 0) rc = aggspec_record(a, sim_lookup, fc, one, &f);
        if (rc) {
            skipped++;
            continue;
        }
        size_t len = aggspec_encode(a, one, enc);
        struct sim_group *g = sim_find(&tasks[i % 2], a, key, klen);
        assert_int_equal(aggspec_decode_merge(a, g->slots, enc, len), 0);
    }
    /* "combine" each task's groups, then "reduce" across tasks. */
    for (int t = 0; t < 2; t++) {
        for (size_t i = 0; i < tasks[t].n; i++) {
            unsigned char enc[AGGSPEC_ENCODED_MAX];
            size_t len = aggspec_encode(a, tasks[t].groups[i].slots, enc);
            struct sim_group *g = sim_find(&reduce, a, tasks[t].groups[i].key,
                                           tasks[t].groups[i].klen);
            assert_int_equal(aggspec_decode_merge(a, g->slots, enc, len), 0);
        }
    }
    char *got[16];
    for (size_t i = 0; i < reduce.n; i++) {
        char text[AGGSPEC_TEXT_MAX];
        aggspec_format(a, reduce.groups[i].slots, text);
        got[i] = xasprintf("%.*s\t%s", (int)reduce.groups[i].klen, reduce.groups[i].key, text);
    }
    qsort(got, reduce.n, sizeof got[0], cmp_lines);
    size_t nwant = 0;
    while (want[nwant]) nwant++;
    for (size_t i = 0; i < reduce.n && i < nwant; i++) assert_string_equal(got[i], want[i]);
    assert_int_equal(reduce.n, nwant);
    assert_int_equal(skipped, want_skipped);

    for (size_t i = 0; i < reduce.n; i++) free(got[i]);
    fields_cache_free(fc);
    fields_header_free(h);
    aggspec_free_fields(group, ngroup);
    aggspec_free(a);
    cond_free(w);
}

static void test_job_jsonl_mismatch_rate(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "{\"producer_id\":\"p1\",\"ground_truth\":\"cat\",\"inferred\":\"cat\"}",
        "{\"producer_id\":\"p1\",\"ground_truth\":\"cat\",\"inferred\":\"dog\"}",
        "{\"producer_id\":\"p2\",\"ground_truth\":1,\"inferred\":1.0}",
        "{\"producer_id\":\"p1\",\"ground_truth\":\"dog\",\"inferred\":\"cat\"}",
        "{\"producer_id\":\"p2\",\"ground_truth\":\"x\"}",
        "{\"producer_id\":\"p2\",\"ground_truth\":\"10\",\"inferred\":9}",
        "not json",
        "{\"producer_id\":\"p\\tq\",\"ground_truth\":\"a\",\"inferred\":\"a\"}",
        "{\"producer_id\":null,\"ground_truth\":\"a\",\"inferred\":\"b\"}",
        "{\"producer_id\":3,\"meta\":{},\"ground_truth\":true,\"inferred\":\"true\"}",
        NULL,
    };
    static const char *const want[] = {
        "3\t0\t1\t0",
        "p1\t2\t3\t0.6666666666666666",
        "p2\t1\t2\t0.5",
        "p\\tq\t0\t1\t0",
        NULL,
    };
    simulate(FIELDS_JSONL, NULL, lines, "producer_id",
             "count_if(ground_truth!=inferred),count,ratio_if(ground_truth!=inferred)", NULL,
             want, 3);
}

static void test_job_csv_plugs(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "1,1377986401,68.451,0,11,0,0",
        "2,1377986401,19.05,1,0,0,0",
        "3,1377986402,5,1,0,0,0",
        "4,1377986403,2.5,1,0,0,0",
        "5,1377986403,7,1,1,0,0",
        "6,1377986404,x,1,1,0,0",
        "7,1377986404,3,1",
        "8,1377986405,4,1,0,1,1",
        "9,\"bad\"x,1,1,0,0,0",
        "10,1377986406,1,0,1,0",
        "11,1377986406,-3,1.0,1,0,0",
        "12,1377986406,8,2,1,0,0,extra",
        NULL,
    };
    static const char *const want[] = {
        "0\t0\t0\t3\t8.85\t2.5\t19.05",
        "0\t0\t1\t2\t2\t-3\t7",
        "1\t1\t0\t1\t4\t4\t4",
        NULL,
    };
    simulate(FIELDS_CSV, "id,timestamp,value,property,plug_id,household_id,house_id", lines,
             "house_id,household_id,plug_id", "count,avg(value),min(value),max(value)",
             "property==1", want, 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_operators),
        cmocka_unit_test(test_numbers_versus_strings),
        cmocka_unit_test(test_field_names),
        cmocka_unit_test(test_string_literals),
        cmocka_unit_test(test_missing_and_bad_records),
        cmocka_unit_test(test_failure_text),
        cmocka_unit_test(test_cond_number_and_compare),
        cmocka_unit_test(test_number_fast_path_exact),
        cmocka_unit_test(test_cond_errors),
        cmocka_unit_test(test_cond_error_nesting),
        cmocka_unit_test(test_cond_error_utf8_and_long),
        cmocka_unit_test(test_agg_split),
        cmocka_unit_test(test_agg_errors),
        cmocka_unit_test(test_group_fields),
        cmocka_unit_test(test_agg_values),
        cmocka_unit_test(test_agg_big_integers),
        cmocka_unit_test(test_agg_compensated_sum),
        cmocka_unit_test(test_agg_record_failures),
        cmocka_unit_test(test_agg_encoding),
        cmocka_unit_test(test_format_double),
        cmocka_unit_test(test_escape_and_columns),
        cmocka_unit_test(test_job_jsonl_mismatch_rate),
        cmocka_unit_test(test_job_csv_plugs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
