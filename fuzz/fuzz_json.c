/* fuzz_json.c - differential libFuzzer target for the JSON Lines scanner (src/data/jsonscan.c),
 * with jansson as the oracle.
 *
 * The input is one record. jansson decides whether it is valid the way fields.c used to: json_loadb
 * with JSON_ALLOW_NUL, retried with JSON_DECODE_INT_AS_REAL after json_error_numeric_overflow, and
 * an object required. jsonscan_record() must agree. For a valid record, every path of a fixed set
 * and every key path jansson found (up to three levels) must have the same value in both:
 * strings byte for byte, numbers as the same double (or the same integer), true and false, null
 * and missing as absent, and objects and arrays as text without whitespace outside strings that
 * jansson reads back to an equal value. Paths found in the record are added after the first scan,
 * so the rescan is checked too, as is that values handed out before it stay as they were. */
#include <errno.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"
#include "data/jsonscan.h"
#include "tally/tally.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Paths every input is checked for; the seeds (fuzz/seeds_json) use these keys. */
static const char *const fuzz_fixed[] = {
    "a", "b", "a.b", "a.b.c", "k", "key", "o", "o.v", "o.v.w", "s", "n", "", ".", "a.", "x.y.z",
    "\xc3\xa9", "meta.model", "producer_id",
};
#define FUZZ_NFIXED (sizeof fuzz_fixed / sizeof fuzz_fixed[0])
#define FUZZ_MAX_PATHS 64

static void fuzz_fail(const char *what, const char *path, const char *v, size_t n)
{
    fprintf(stderr, "fuzz_json: %s (path \"%s\", got %zu bytes: \"%.*s\")\n", what, path ? path : "", n,
            (int)(n < 200 ? n : 200), v ? v : "");
    abort();
}

/* jansson's value at a dotted path: each part is a key of an object, as fields.c always meant. */
static json_t *fuzz_walk(json_t *v, const char *path)
{
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        if (!json_is_object(v)) return NULL;
        v = json_object_getn(v, path, n);
        if (!v || !dot) return v;
        path = dot + 1;
    }
}

/* 1 when text holds whitespace (or a NUL byte, which jansson may skip) outside its strings. */
static int fuzz_has_space(const char *p, size_t n)
{
    int in_string = 0;
    for (size_t i = 0; i < n; i++) {
        if (in_string) {
            if (p[i] == '\\') i++;
            else if (p[i] == '"') in_string = 0;
        } else if (p[i] == '"') {
            in_string = 1;
        } else if (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' || p[i] == '\r' || p[i] == '\0') {
            return 1;
        }
    }
    return 0;
}

/* Checks path `path` (index idx in s) against jansson's root, parsed with `flags`. */
static void fuzz_check(jsonscan *s, size_t idx, const char *path, json_t *root, size_t flags)
{
    const char *v = NULL;
    size_t n = 0;
    int rc = jsonscan_get(s, idx, &v, &n);
    json_t *j = fuzz_walk(root, path);
    if (!j || json_is_null(j)) {
        if (rc != TALLY_ENOFIELD) fuzz_fail("absent in jansson, found by jsonscan", path, v, n);
        return;
    }
    if (rc != 0) fuzz_fail("found by jansson, not by jsonscan", path, NULL, 0);
    switch (json_typeof(j)) {
    case JSON_STRING:
        if (n != json_string_length(j) || memcmp(v, json_string_value(j), n) != 0)
            fuzz_fail("strings differ", path, v, n);
        break;
    case JSON_TRUE:
        if (n != 4 || memcmp(v, "true", 4) != 0) fuzz_fail("true differs", path, v, n);
        break;
    case JSON_FALSE:
        if (n != 5 || memcmp(v, "false", 5) != 0) fuzz_fail("false differs", path, v, n);
        break;
    case JSON_INTEGER:
    case JSON_REAL: {
        char *num = xstrndup(v, n), *end;
        errno = 0;
        if (strlen(num) != n) fuzz_fail("a number holds a NUL", path, v, n);
        if (json_is_integer(j)) {
            long long x = strtoll(num, &end, 10);
            if (*end || errno || x != json_integer_value(j)) fuzz_fail("integers differ", path, v, n);
        } else {
            double x = strtod(num, &end);
            if (*end || x != json_real_value(j)) fuzz_fail("reals differ", path, v, n);
        }
        free(num);
        break;
    }
    case JSON_OBJECT:
    case JSON_ARRAY: {
        json_error_t e;
        if (n == 0 || v[0] != (json_is_object(j) ? '{' : '[')) fuzz_fail("composite of the wrong kind", path, v, n);
        if (fuzz_has_space(v, n)) fuzz_fail("composite not compacted", path, v, n);
        json_t *back = json_loadb(v, n, flags | JSON_DECODE_ANY, &e);
        if (!back || !json_equal(back, j)) fuzz_fail("composites differ", path, v, n);
        json_decref(back);
        break;
    }
    default: fuzz_fail("unexpected jansson type", path, v, n);
    }
}

/* Adds the key paths of object o below `prefix` (up to `depth` more levels) to the list. */
static void fuzz_collect(json_t *o, const char *prefix, int depth, char **paths, size_t *n)
{
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v)
    {
        if (*n == FUZZ_MAX_PATHS) return;
        char *p = prefix ? xasprintf("%s.%s", prefix, key) : xstrdup(key);
        paths[(*n)++] = p;
        if (depth > 1 && json_is_object(v)) fuzz_collect(v, p, depth - 1, paths, n);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* One scanner lives across inputs, so that reuse (rewound scratch, stale values) is tested. */
    static jsonscan *kept;
    const char *rec = (const char *)data;
    json_error_t jerr;
    size_t flags = JSON_ALLOW_NUL;
    json_t *root = json_loadb(rec, size, flags, &jerr);
    if (!root && json_error_code(&jerr) == json_error_numeric_overflow) {
        flags |= JSON_DECODE_INT_AS_REAL;
        root = json_loadb(rec, size, flags, &jerr);
    }
    int valid = root && json_is_object(root);

    if (!kept) {
        kept = jsonscan_new();
        for (size_t i = 0; i < FUZZ_NFIXED; i++) {
            size_t idx;
            if (jsonscan_add(kept, fuzz_fixed[i], &idx) != 0 || idx != i) abort();
        }
    }
    jsonscan *s = jsonscan_new();
    size_t idx;
    for (size_t i = 0; i < FUZZ_NFIXED; i++)
        if (jsonscan_add(s, fuzz_fixed[i], &idx) != 0 || idx != i) abort();

    int rc = jsonscan_record(s, rec, size), rck = jsonscan_record(kept, rec, size);
    if (rc != rck) fuzz_fail("a reused scanner disagrees", NULL, NULL, 0);
    if (valid != (rc == 0)) {
        fprintf(stderr, "fuzz_json: jansson says %s (%s), jsonscan returned %d\n", valid ? "valid" : "invalid",
                valid ? "" : jerr.text, rc);
        abort();
    }
    if (!valid) {
        if (jsonscan_get(s, 0, &(const char *){0}, &(size_t){0}) != TALLY_EBADREC) abort();
        goto out;
    }

    /* The fixed paths, and copies of what they gave, to check after the rescan. */
    const char *first[FUZZ_NFIXED];
    size_t firstn[FUZZ_NFIXED];
    char *copies[FUZZ_NFIXED];
    for (size_t i = 0; i < FUZZ_NFIXED; i++) {
        fuzz_check(s, i, fuzz_fixed[i], root, flags);
        fuzz_check(kept, i, fuzz_fixed[i], root, flags);
        copies[i] = NULL;
        if (jsonscan_get(s, i, &first[i], &firstn[i]) == 0) {
            copies[i] = xmalloc(firstn[i] + 1);
            memcpy(copies[i], first[i], firstn[i]);
        }
    }

    /* The record's own key paths: a path added after the scan is absent until the rescan. */
    char *paths[FUZZ_MAX_PATHS];
    size_t np = 0, base = jsonscan_count(s);
    fuzz_collect(root, NULL, 3, paths, &np);
    for (size_t i = 0; i < np; i++) {
        if (jsonscan_add(s, paths[i], &idx) != 0) abort();
        if (idx >= base && jsonscan_get(s, idx, &(const char *){0}, &(size_t){0}) != TALLY_ENOFIELD)
            fuzz_fail("a path added after the scan has a value", paths[i], NULL, 0);
    }
    if (jsonscan_rescan(s) != 0) fuzz_fail("the rescan failed", NULL, NULL, 0);
    for (size_t i = 0; i < np; i++) {
        if (jsonscan_add(s, paths[i], &idx) != 0) abort();
        fuzz_check(s, idx, paths[i], root, flags);
    }
    for (size_t i = 0; i < FUZZ_NFIXED; i++) {
        fuzz_check(s, i, fuzz_fixed[i], root, flags);
        if (copies[i] && memcmp(first[i], copies[i], firstn[i]) != 0)
            fuzz_fail("a value changed under the rescan", fuzz_fixed[i], first[i], firstn[i]);
        free(copies[i]);
    }
    for (size_t i = 0; i < np; i++) free(paths[i]);

out:
    jsonscan_free(s);
    json_decref(root);
    return 0;
}
