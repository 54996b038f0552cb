/* test_split.c - unit tests for input expansion, split planning and the record reader
 * (src/data/input.c, src/data/reader.c): every split plan must yield every line exactly once. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "testutil.h"
#include "data/fields.h"
#include "data/input.h"
#include "data/reader.h"

/* ---- Temporary files --------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return testutil_make_root("split");
}

static int group_teardown(void **state)
{
    (void)state;
    return testutil_remove_root();
}

/* A fresh directory for one scenario. */
static void fresh_dir(char *out, size_t cap)
{
    snprintf(out, cap, "%s/s%u", testutil_root(), testutil_next());
    assert_int_equal(mkdir(out, 0755), 0);
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    if (n) assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

static void write_gz(const char *path, const char *data)
{
    gzFile g = gzopen(path, "wb");
    assert_non_null(g);
    assert_int_equal(gzwrite(g, data, (unsigned)strlen(data)), (int)strlen(data));
    assert_int_equal(gzclose(g), Z_OK);
}

/* mkdir -p of a path's parent directories, then the file. */
static void put(const char *dir, const char *rel, const char *text)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    for (char *s = path + strlen(dir) + 1; (s = strchr(s, '/')); s++) {
        *s = 0;
        mkdir(path, 0755);
        *s = '/';
    }
    write_file(path, text, strlen(text));
}

/* ---- Records: what the model expects and what the reader returns ------------------------- */

typedef struct rec {
    uint32_t file;
    uint64_t off;
    int too_long;
    char *data;
    size_t len;
} rec;

typedef struct recs {
    rec *v;
    size_t n, cap;
} recs;

static void recs_add(recs *r, uint32_t file, uint64_t off, int too_long, const char *data, size_t len)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->v = realloc(r->v, r->cap * sizeof *r->v);
        assert_non_null(r->v);
    }
    rec *x = &r->v[r->n++];
    x->file = file;
    x->off = off;
    x->too_long = too_long;
    x->len = too_long ? 0 : len;
    x->data = malloc(x->len + 1);
    assert_non_null(x->data);
    if (x->len) memcpy(x->data, data, x->len);
}

static void recs_free(recs *r)
{
    for (size_t i = 0; i < r->n; i++) free(r->v[i].data);
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* The documented record model of a CSV file, walked byte by byte: a record ends at a newline
 * outside double quotes; a quote opens a quoted field only at the start of a field (after a
 * comma, or first in the record, after the byte-order mark of the file if any); inside one, ""
 * is a quote and a quote followed by anything else closes it. A quote that is never closed ends
 * its record at the first newline after it (or at the end of the file). One \r before the
 * terminator is dropped; the first record is the header, never a record; a record longer than
 * max_record is reported as too long at its offset. */
static void model_csv(recs *out, uint32_t file, const char *s, size_t size, uint64_t max_record)
{
    enum { FIELD, UNQUOTED, QUOTED, QUOTE_SEEN };
    size_t start = 0;
    while (start < size) {
        size_t i = start, qopen = 0, end = SIZE_MAX;
        if (start == 0 && size >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) i = 3;
        int st = FIELD;
        for (; i < size && end == SIZE_MAX; i++) {
            char c = s[i];
            if (st == QUOTED) {
                if (c == '"') st = QUOTE_SEEN;
            } else if (c == '\n') {
                end = i;
            } else if (st == QUOTE_SEEN) {
                st = c == '"' ? QUOTED : c == ',' ? FIELD : UNQUOTED;
            } else if (c == '"' && st == FIELD) {
                st = QUOTED;
                qopen = i;
            } else {
                st = c == ',' ? FIELD : UNQUOTED;
            }
        }
        if (end == SIZE_MAX && st == QUOTED) {
            const char *nl = memchr(s + qopen, '\n', size - qopen);
            if (nl) end = (size_t)(nl - s);
        }
        if (end == SIZE_MAX) end = size;
        size_t n = end - start;
        if (n > 0 && s[end - 1] == '\r') n--;
        if (start > 0) {
            if (n > max_record) recs_add(out, file, start, 1, NULL, 0);
            else recs_add(out, file, start, 0, s + start, n);
        }
        start = end + 1;
    }
}

/* The documented record model of one file: lines split on \n, one trailing \r dropped, a final
 * line without \n still a record, and a line longer than max_record (not counting its
 * terminator) reported as too long at its offset; CSV files follow model_csv(). */
static void model_file(recs *out, uint32_t file, const char *s, size_t size, uint64_t max_record,
                       int csv)
{
    if (csv) {
        model_csv(out, file, s, size, max_record);
        return;
    }
    size_t start = 0;
    while (start < size) {
        const char *nl = memchr(s + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - s) : size;
        size_t n = end - start;
        if (n > 0 && s[end - 1] == '\r') n--;
        if (n > max_record) recs_add(out, file, start, 1, NULL, 0);
        else recs_add(out, file, start, 0, s + start, n);
        start = end + 1;
    }
}

/* Reads segment `seg` to its end, appending what the reader returns. Checks that every record
 * starts inside the segment and that progress covers the whole segment at the end. `header`
 * receives the reader's CSV header column count (0 when none). */
static void read_segment(recs *out, const input_set *in, const input_segment *seg,
                         uint64_t max_record, size_t *header_cols)
{
    reader *r = NULL;
    struct err e = {0};
    const input_file *f = &in->files[seg->file];
    int rc = reader_open(&r, f, seg, max_record, &e);
    if (rc) fail_msg("reader_open(%s [%llu,%llu)): %s", f->path, (unsigned long long)seg->start,
                     (unsigned long long)seg->end, e.msg);
    const fields_header *h = reader_header(r);
    *header_cols = h ? fields_header_count(h) : 0;
    for (;;) {
        const char *d = NULL;
        size_t n = 0;
        uint64_t off = UINT64_MAX;
        rc = reader_next(r, &d, &n, &off, &e);
        if (rc == READER_END) break;
        if (rc < 0) fail_msg("reader_next(%s): %s", f->path, e.msg);
        assert_true(rc == READER_RECORD || rc == READER_TOO_LONG);
        /* A record belongs to the split it starts in (gz files are read whole). */
        if (!f->gz && (off < seg->start || off >= seg->end))
            fail_msg("%s: record at %llu outside its segment [%llu,%llu)", f->path,
                     (unsigned long long)off, (unsigned long long)seg->start,
                     (unsigned long long)seg->end);
        recs_add(out, seg->file, off, rc == READER_TOO_LONG, d, n);
    }
    /* Calling again after the end stays at the end. */
    const char *d;
    size_t n;
    uint64_t off;
    assert_int_equal(reader_next(r, &d, &n, &off, &e), READER_END);
    if (!f->gz) assert_int_equal(reader_progress(r), seg->end - seg->start);
    reader_close(r);
}

/* Like read_segment(), but an error from the reader is an outcome, not a test failure: returns
 * 0, or the reader's negative code with its message in e (the records read before it are kept).
 * In a CSV file a record may start past the segment's end: when the edge scan misjudges a
 * malformed quote but still lands on a true record start further on, the records before it are
 * read by this split, still exactly once. */
static int try_segment(recs *out, const input_set *in, const input_segment *seg, uint64_t max_record,
                       struct err *e)
{
    reader *r = NULL;
    const input_file *f = &in->files[seg->file];
    int rc = reader_open(&r, f, seg, max_record, e);
    if (rc) return rc;
    for (;;) {
        const char *d = NULL;
        size_t n = 0;
        uint64_t off = UINT64_MAX;
        rc = reader_next(r, &d, &n, &off, e);
        if (rc <= 0) break;
        if (!f->gz && (off < seg->start || (off >= seg->end && f->format != FIELDS_CSV)))
            fail_msg("%s: record at %llu outside its segment [%llu,%llu)", f->path,
                     (unsigned long long)off, (unsigned long long)seg->start,
                     (unsigned long long)seg->end);
        recs_add(out, seg->file, off, rc == READER_TOO_LONG, d, n);
    }
    reader_close(r);
    return rc;
}

/* Reads every split; stops at the first error and returns it (0 if none). */
static int try_all_splits(recs *out, const input_set *in, uint64_t max_record, struct err *e)
{
    for (size_t k = 0; k < in->nsplits; k++) {
        const input_split *s = &in->splits[k];
        for (size_t i = 0; i < s->nsegs; i++) {
            int rc = try_segment(out, in, &s->segs[i], max_record, e);
            if (rc) return rc;
        }
    }
    return 0;
}

static void read_all_splits(recs *out, const input_set *in, uint64_t max_record)
{
    for (size_t k = 0; k < in->nsplits; k++) {
        const input_split *s = &in->splits[k];
        for (size_t i = 0; i < s->nsegs; i++) {
            size_t cols;
            read_segment(out, in, &s->segs[i], max_record, &cols);
            if (in->files[s->segs[i].file].format == FIELDS_CSV && in->files[s->segs[i].file].size)
                assert_true(cols > 0);
        }
    }
}

static void recs_expect_equal(const recs *got, const recs *want, const char *what)
{
    size_t n = got->n < want->n ? got->n : want->n;
    for (size_t i = 0; i < n; i++) {
        const rec *g = &got->v[i], *w = &want->v[i];
        if (g->file != w->file || g->off != w->off || g->too_long != w->too_long ||
            g->len != w->len || (g->len && memcmp(g->data, w->data, g->len) != 0))
            fail_msg("%s: record %zu: got file %u offset %llu %s \"%.*s\", want file %u offset "
                     "%llu %s \"%.*s\"", what, i, g->file, (unsigned long long)g->off,
                     g->too_long ? "too long" : "record", (int)g->len, g->data, w->file,
                     (unsigned long long)w->off, w->too_long ? "too long" : "record",
                     (int)w->len, w->data);
    }
    if (got->n != want->n)
        fail_msg("%s: got %zu records, want %zu", what, got->n, want->n);
}

/* ---- Plan invariants --------------------------------------------------------------------- */

/* Splits 0..m-1 must tile the plain files' bytes in order, with no gap, overlap or empty
 * segment, with sizes differing by at most one byte; then one whole split per gz file. */
static void check_plan(const input_set *in, uint64_t m)
{
    size_t ngz = 0;
    uint64_t plain = 0;
    for (size_t i = 0; i < in->nfiles; i++) {
        if (in->files[i].gz) ngz++;
        else plain += in->files[i].size;
    }
    assert_int_equal(in->nsplits, m + ngz);
    size_t fi = 0;
    uint64_t pos = 0, minb = UINT64_MAX, maxb = 0;
    for (size_t k = 0; k < m; k++) {
        const input_split *s = &in->splits[k];
        uint64_t bytes = 0;
        for (size_t i = 0; i < s->nsegs; i++) {
            const input_segment *g = &s->segs[i];
            while (fi < in->nfiles && (in->files[fi].gz || pos == in->files[fi].size)) {
                fi++;
                pos = 0;
            }
            assert_true(fi < in->nfiles);
            assert_int_equal(g->file, fi);
            assert_int_equal(g->start, pos);
            assert_true(g->end > g->start);
            assert_true(g->end <= in->files[fi].size);
            bytes += g->end - g->start;
            pos = g->end;
        }
        assert_int_equal(s->bytes, bytes);
        if (bytes < minb) minb = bytes;
        if (bytes > maxb) maxb = bytes;
    }
    while (fi < in->nfiles && (in->files[fi].gz || pos == in->files[fi].size)) {
        fi++;
        pos = 0;
    }
    assert_int_equal(fi, in->nfiles); /* every plain byte is in some split */
    if (m > 0) {
        assert_true(maxb - minb <= 1);
        assert_true(maxb == (plain + m - 1) / m);
    }
    size_t k = m;
    for (size_t i = 0; i < in->nfiles; i++) {
        if (!in->files[i].gz) continue;
        const input_split *s = &in->splits[k++];
        assert_int_equal(s->nsegs, 1);
        assert_int_equal(s->segs[0].file, i);
        assert_int_equal(s->segs[0].start, 0);
        assert_int_equal(s->segs[0].end, in->files[i].size);
    }
}

/* ---- The scenario driver ----------------------------------------------------------------- */

typedef struct file_spec {
    const char *name;  /* file name in the scenario directory; its extension picks the format */
    const char *data;
    size_t len;        /* 0: strlen(data) */
} file_spec;

/* Under AddressSanitizer every reader_open() costs milliseconds (its 1 MiB buffer is mapped
 * and poisoned afresh), so the sanitizer build checks a sample of M values where the plain
 * build checks all of them; the sample still puts a split edge on every byte. */
#ifdef __SANITIZE_ADDRESS__
#define SPLIT_SANITIZED 1
#else
#define SPLIT_SANITIZED 0
#endif

/* Writes the files, then for every M in ms[] expands and plans them and checks that the
 * records of all splits, in split order, are exactly the model's records of the files in
 * order. With may_fail, a reader may instead fail (a CSV split edge it cannot place), with
 * -EBADMSG and a message naming the file: a job fails, but never reads a record twice or loses
 * one. Returns for how many M a reader failed. */
static size_t check_files_ms_mode(const file_spec *files, size_t nfiles, const uint64_t *ms, size_t nms,
                                  uint64_t max_record, int may_fail)
{
    size_t failed = 0;
    char dir[300];
    fresh_dir(dir, sizeof dir);
    char **args = calloc(nfiles, sizeof *args);
    recs want = {0};
    for (size_t i = 0; i < nfiles; i++) {
        size_t len = files[i].len ? files[i].len : strlen(files[i].data);
        args[i] = malloc(strlen(dir) + strlen(files[i].name) + 2);
        sprintf(args[i], "%s/%s", dir, files[i].name);
        write_file(args[i], files[i].data, len);
        int gz;
        fields_format fmt = input_format_for(files[i].name, &gz);
        assert_false(gz);
        model_file(&want, (uint32_t)i, files[i].data, len, max_record, fmt == FIELDS_CSV);
    }
    for (size_t k = 0; k < nms; k++) {
        uint64_t m = ms[k];
        input_set in;
        struct err e = {0};
        int rc = input_expand(args, nfiles, NULL, 0, FIELDS_TEXT, &in, &e);
        if (rc) fail_msg("input_expand: %s", e.msg);
        assert_int_equal(in.nfiles, nfiles);
        assert_int_equal(input_plan(&in, m, 0, 0), 0);
        check_plan(&in, m);
        recs got = {0};
        char what[64];
        snprintf(what, sizeof what, "M=%llu", (unsigned long long)m);
        if (may_fail) {
            rc = try_all_splits(&got, &in, max_record, &e);
            if (rc) {
                if (rc != -EBADMSG || !strstr(e.msg, dir)) fail_msg("%s: reader failed with %d: %s", what, rc, e.msg);
                failed++;
            } else {
                recs_expect_equal(&got, &want, what);
            }
        } else {
            read_all_splits(&got, &in, max_record);
            recs_expect_equal(&got, &want, what);
        }
        recs_free(&got);
        input_set_free(&in);
    }
    recs_free(&want);
    for (size_t i = 0; i < nfiles; i++) free(args[i]);
    free(args);
    return failed;
}

static void check_files_ms(const file_spec *files, size_t nfiles, const uint64_t *ms, size_t nms,
                           uint64_t max_record)
{
    check_files_ms_mode(files, nfiles, ms, nms, max_record, 0);
}

/* Every M in [m_lo, m_hi]. */
static void check_files(const file_spec *files, size_t nfiles, uint64_t m_lo, uint64_t m_hi,
                        uint64_t max_record)
{
    size_t n = (size_t)(m_hi - m_lo + 1);
    uint64_t *ms = malloc(n * sizeof *ms);
    for (size_t i = 0; i < n; i++) ms[i] = m_lo + i;
    check_files_ms(files, nfiles, ms, n, max_record);
    free(ms);
}

static uint64_t total_len(const file_spec *files, size_t n)
{
    uint64_t t = 0;
    for (size_t i = 0; i < n; i++) t += files[i].len ? files[i].len : strlen(files[i].data);
    return t;
}

/* Every M from 1 to a few more than the number of bytes, so that a split edge falls on every
 * byte of the input, including just before and after each newline and \r. The sanitizer
 * build takes M = 1, 3 and the number of bytes (one-byte splits: an edge on every byte). */
static void check_every_m(const file_spec *files, size_t n, uint64_t max_record)
{
    uint64_t bytes = total_len(files, n);
    if (SPLIT_SANITIZED) {
        uint64_t ms[3] = {1, 3, bytes > 0 ? bytes : 1};
        check_files_ms(files, n, ms, 3, max_record);
    } else {
        check_files(files, n, 1, bytes + 3, max_record);
    }
}

#define NFILES(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Splits and records: fixed cases ----------------------------------------------------- */

static void test_lines_cross_split_edges(void **state)
{
    (void)state;
    const file_spec f[] = {{"a.txt", "alpha\nbeta\ngamma\ndelta epsilon\nz\n", 0}};
    check_every_m(f, 1, UINT64_MAX);
}

static void test_crlf_lines(void **state)
{
    (void)state;
    /* Split edges between \r and \n must not produce an empty or duplicated record; a \r that
     * is not before \n stays in the record. */
    const file_spec f[] = {{"a.txt", "a\r\nbb\r\n\r\nccc\r\nd\re\r\n\r\n", 0}};
    check_every_m(f, 1, UINT64_MAX);
    const file_spec g[] = {{"b.txt", "\r\n", 0}};
    check_every_m(g, 1, UINT64_MAX);
}

static void test_no_final_newline(void **state)
{
    (void)state;
    const file_spec f[] = {{"a.txt", "one\ntwo\nthree", 0}};
    check_every_m(f, 1, UINT64_MAX);
    const file_spec g[] = {{"b.txt", "x", 0}};
    check_every_m(g, 1, UINT64_MAX);
    const file_spec h[] = {{"c.txt", "last\r", 0}}; /* a final \r without \n is dropped too */
    check_every_m(h, 1, UINT64_MAX);
}

static void test_empty_file(void **state)
{
    (void)state;
    const file_spec f[] = {{"empty.txt", "", 0}};
    check_files(f, 1, 1, 5, UINT64_MAX);
}

static void test_only_newlines(void **state)
{
    (void)state;
    const file_spec f[] = {{"nl.txt", "\n\n\n\n\n\n\n", 0}};
    check_every_m(f, 1, UINT64_MAX);
    /* The model says seven empty records at offsets 0..6; check the model itself once. */
    recs want = {0};
    model_file(&want, 0, f[0].data, 7, UINT64_MAX, 0);
    assert_int_equal(want.n, 7);
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(want.v[i].off, i);
        assert_int_equal(want.v[i].len, 0);
    }
    recs_free(&want);
}

static void test_more_splits_than_lines_and_bytes(void **state)
{
    (void)state;
    /* 3 lines, 12 bytes, up to 40 splits: most splits are empty, none loses or repeats. */
    const file_spec f[] = {{"a.txt", "abc\ndef\nghi\n", 0}};
    if (SPLIT_SANITIZED) {
        static const uint64_t ms[] = {1, 5, 12, 13, 25, 40};
        check_files_ms(f, 1, ms, sizeof ms / sizeof ms[0], UINT64_MAX);
    } else {
        check_files(f, 1, 1, 40, UINT64_MAX);
    }
    input_set in;
    struct err e = {0};
    char path[300];
    snprintf(path, sizeof path, "%s/s%u/a.txt", testutil_root(), *testutil_seq() - 1); /* the directory check_files() made */
    char *args[] = {path};
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    assert_int_equal(input_plan(&in, 40, 0, 0), 0);
    assert_int_equal(in.nsplits, 40);
    size_t empty = 0;
    for (size_t k = 0; k < in.nsplits; k++) empty += in.splits[k].nsegs == 0;
    assert_int_equal(empty, 40 - 12); /* 12 one-byte splits, the rest own no bytes */
    input_set_free(&in);
}

static void test_several_files_one_set(void **state)
{
    (void)state;
    /* Splits span file boundaries; a file without a final newline ends its last record at the
     * file's end, never running into the next file; empty files contribute nothing. */
    const file_spec f[] = {
        {"1.txt", "a\nb\n", 0},   {"2.txt", "", 0},      {"3.txt", "ccc\ndd", 0},
        {"4.txt", "\n", 0},       {"5.txt", "eeee\r\n", 0}, {"6.txt", "f", 0},
        {"7.txt", "", 0},         {"8.txt", "gg\nhh\n", 0},
    };
    check_every_m(f, NFILES(f), UINT64_MAX);
}

static void test_max_record_skipping(void **state)
{
    (void)state;
    /* With max_record 5: "toolongline" and the run of x's are skipped whole and reported at
     * their offsets, for every position of a split edge, including inside them. */
    const file_spec f[] = {{"a.txt", "ok\ntoolongline\nfine\nxxxxxxxxxxxxxxxxxxxx\n12345\n123456\nlast",
                            0}};
    check_every_m(f, 1, 5);
    /* At the limit exactly: 5 bytes is a record, 6 is too long, with and without a newline. */
    const file_spec g[] = {{"b.txt", "12345\n123456\n12345", 0}};
    check_every_m(g, 1, 5);
    const file_spec h[] = {{"c.txt", "abcdef", 0}};
    check_every_m(h, 1, 5);
    /* max_record 0: only empty lines survive. */
    const file_spec z[] = {{"d.txt", "\na\n\nbb\n", 0}};
    check_every_m(z, 1, 0);
    /* Too-long records across files. */
    const file_spec m[] = {{"e.txt", "0123456789", 0}, {"f.txt", "ab\n0123456789\ncd\n", 0}};
    check_every_m(m, NFILES(m), 5);
}

/* A CRLF line whose content is exactly max_record bytes is a record: terminators are not
 * part of it. */
static void test_crlf_line_at_max_record(void **state)
{
    (void)state;
    const file_spec f[] = {{"a.txt", "12345\r\nabc\r\n", 0}};
    check_every_m(f, 1, 5);
}

/* A CSV header longer than max_record is an error, however short: the header is never a
 * record, so it must not come back as a skipped one. */
static void test_csv_short_header_over_max_record(void **state)
{
    (void)state;
    char dir[300], path[400];
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/h.csv", dir);
    write_file(path, "abcdefghij\n1\n2\n", 15);
    char *args[] = {path};
    input_set in;
    struct err e = {0};
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    assert_int_equal(input_plan(&in, 1, 0, 0), 0);
    reader *r = NULL;
    int rc = reader_open(&r, &in.files[0], &in.splits[0].segs[0], 5, &e);
    if (rc == 0) {
        const char *d;
        size_t n;
        uint64_t off;
        rc = reader_next(r, &d, &n, &off, &e);
        reader_close(r);
        input_set_free(&in);
        fail_msg("header over max_record: reader_open succeeded, first result %d at %llu", rc,
                 (unsigned long long)off);
    }
    assert_non_null(strstr(e.msg, path));
    input_set_free(&in);
}

static void test_csv_header(void **state)
{
    (void)state;
    /* The header is never a record, and every split, including those that start mid-file,
     * sees it through reader_header() (read_all_splits checks the column count). */
    const file_spec f[] = {{"a.csv", "name,val\nx,1\ny,2\nzz,3\n", 0}};
    check_every_m(f, 1, UINT64_MAX);
    const file_spec crlf[] = {{"b.csv", "a,b\r\n1,2\r\n3,4", 0}};
    check_every_m(crlf, 1, UINT64_MAX);
    /* Several CSV files: each one's first line is its header; a text file in between keeps
     * its first line. */
    const file_spec many[] = {
        {"1.csv", "h1,h2\n1,2\n", 0}, {"2.txt", "t1\nt2\n", 0}, {"3.csv", "k\nv\n", 0},
        {"4.csv", "only,header\n", 0}, {"5.csv", "h\nlast", 0},
    };
    check_every_m(many, NFILES(many), UINT64_MAX);
    /* The header plus max_record: data lines over the limit are skipped, the header is not
     * subject to it while short. */
    const file_spec lim[] = {{"c.csv", "c1,c2\n1,2\n333333,4\n5,6\n", 0}};
    check_every_m(lim, 1, 5);
}

static void test_csv_header_names_mid_file(void **state)
{
    (void)state;
    char dir[300], path[400];
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/h.csv", dir);
    const char *text = "\xEF\xBB\xBFid,name\r\n1,a\r\n2,b\r\n3,c\r\n";
    write_file(path, text, strlen(text));
    char *args[] = {path};
    input_set in;
    struct err e = {0};
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    assert_int_equal(in.files[0].format, FIELDS_CSV);
    assert_int_equal(input_plan(&in, 4, 0, 0), 0);
    for (size_t k = 0; k < in.nsplits; k++) {
        for (size_t i = 0; i < in.splits[k].nsegs; i++) {
            reader *r = NULL;
            assert_int_equal(reader_open(&r, &in.files[0], &in.splits[k].segs[i], 1000, &e), 0);
            const fields_header *h = reader_header(r);
            assert_non_null(h);
            assert_int_equal(fields_header_count(h), 2);
            assert_string_equal(fields_header_name(h, 0), "id"); /* no byte-order mark */
            assert_string_equal(fields_header_name(h, 1), "name");
            reader_close(r);
        }
    }
    input_set_free(&in);
}

static void test_csv_header_too_long(void **state)
{
    (void)state;
    /* A header over max_record that does not fit in the reader's first read is an error that
     * names the file. */
    char dir[300], path[400];
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/wide.csv", dir);
    size_t n = 20000;
    char *text = malloc(n + 8);
    for (size_t i = 0; i < n; i++) text[i] = i % 2 ? ',' : 'c';
    memcpy(text + n, "\n1,2\n", 6);
    write_file(path, text, n + 5);
    free(text);
    char *args[] = {path};
    input_set in;
    struct err e = {0};
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    assert_int_equal(input_plan(&in, 1, 0, 0), 0);
    reader *r = NULL;
    assert_true(reader_open(&r, &in.files[0], &in.splits[0].segs[0], 1000, &e) < 0);
    assert_null(r);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "header"));
    input_set_free(&in);
}

static void test_buffer_boundaries(void **state)
{
    (void)state;
    /* Records longer than the reader's 1 MiB block: one of 1.5 MiB is read whole (the buffer
     * grows), one of 2.5 MiB is over max_record and skipped without growing; short lines
     * around them land on both sides of every block edge. */
    size_t cap = 6u << 20, n = 0;
    char *text = malloc(cap);
    assert_non_null(text);
    unsigned x = 12345;
    while (n < (1u << 20) + 100) {
        x = x * 1103515245u + 12345u;
        size_t len = (x >> 16) % 97;
        for (size_t i = 0; i < len; i++) text[n++] = (char)('a' + (i + len) % 26);
        text[n++] = '\n';
    }
    memset(text + n, 'L', 3u << 19);
    n += 3u << 19;
    text[n++] = '\n';
    for (int i = 0; i < 1000; i++) n += (size_t)sprintf(text + n, "line %d\r\n", i);
    memset(text + n, 'H', 5u << 19);
    n += 5u << 19;
    text[n++] = '\n';
    for (int i = 0; i < 1000; i++) n += (size_t)sprintf(text + n, "tail %d\n", i);
    assert_true(n < cap);
    const file_spec f[] = {{"big.txt", text, n}};
    static const uint64_t ms[] = {1, 7, 2, 3};
    check_files_ms(f, 1, ms, SPLIT_SANITIZED ? 2 : 4, 2u << 20);
    free(text);
}

static void test_gz_files_are_whole_splits(void **state)
{
    (void)state;
    char dir[300], p1[400], p2[400], p3[400], p4[400];
    fresh_dir(dir, sizeof dir);
    snprintf(p1, sizeof p1, "%s/a.txt", dir);
    snprintf(p2, sizeof p2, "%s/b.txt.gz", dir);
    snprintf(p3, sizeof p3, "%s/c.txt", dir);
    snprintf(p4, sizeof p4, "%s/d.csv.gz", dir);
    write_file(p1, "a1\na2\n", 6);
    write_gz(p2, "g1\r\ng2\n\ng3");
    write_file(p3, "c1\n", 3);
    write_gz(p4, "h1,h2\nx,y\n");
    char *args[] = {p1, p2, p3, p4};
    input_set in;
    struct err e = {0};
    assert_int_equal(input_expand(args, 4, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    assert_true(in.files[1].gz && in.files[3].gz);
    assert_int_equal(in.files[3].format, FIELDS_CSV);
    for (uint64_t m = 1; m <= 12; m += SPLIT_SANITIZED ? 4 : 1) {
        input_set_free(&in);
        assert_int_equal(input_expand(args, 4, NULL, 0, FIELDS_TEXT, &in, &e), 0);
        assert_int_equal(input_plan(&in, m, 0, 0), 0);
        check_plan(&in, m);
        recs got = {0}, want = {0};
        read_all_splits(&got, &in, UINT64_MAX);
        /* Plain files first (split order), then each gz file, with uncompressed offsets. */
        model_file(&want, 0, "a1\na2\n", 6, UINT64_MAX, 0);
        model_file(&want, 2, "c1\n", 3, UINT64_MAX, 0);
        model_file(&want, 1, "g1\r\ng2\n\ng3", 10, UINT64_MAX, 0);
        model_file(&want, 3, "h1,h2\nx,y\n", 10, UINT64_MAX, 1);
        recs_expect_equal(&got, &want, "gz");
        recs_free(&got);
        recs_free(&want);
    }
    input_set_free(&in);
}

/* A deterministic pseudo-random generator for the randomized cases. */
static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

/* ---- CSV records: quoted fields that hold newlines (RFC 4180) ---------------------------- */

static void test_csv_quoted_newlines(void **state)
{
    (void)state;
    /* A quoted field holds newlines, CRLFs, commas and "" escapes; a split edge on every byte
     * (including inside quotes, between \r and \n, right after a comma and a newline) must give
     * every record once, whole, with its embedded newlines. */
    const file_spec f[] = {{"q.csv",
                            "id,text,n\n"
                            "1,\"one\nnewline\",10\n"
                            "2,\"crlf\r\ninside\r\n\",20\r\n"
                            "3,\"a,\nb\",30\n"
                            "4,\"\"\"quoted\"\"\nand \"\"\"\"\",40\n"
                            "5,plain,50\n"
                            "6,\",\n,\n\",60\n"
                            "7,\"\",70\n"
                            "8,\"\n\",\"\n\"\n"
                            "9,\"last, no newline\nat the end\"",
                            0}};
    check_every_m(f, 1, UINT64_MAX);
    /* The model itself, once: 9 records, the second holding its newline. */
    recs want = {0};
    model_file(&want, 0, f[0].data, strlen(f[0].data), UINT64_MAX, 1);
    assert_int_equal(want.n, 9);
    assert_int_equal(want.v[0].len, strlen("1,\"one\nnewline\",10"));
    assert_memory_equal(want.v[1].data, "2,\"crlf\r\ninside\r\n\",20", want.v[1].len);
    recs_free(&want);
    /* Quotes not at a field start are literal: they open nothing. */
    const file_spec g[] = {{"lit.csv", "a,b\n12\" pipe,x\n\"ok\",y\nsay \"hi\" there,z\n", 0}};
    check_every_m(g, 1, UINT64_MAX);
    /* ... and a quote after them that does open a field, never to close it, ends its record at
     * the next newline. The scan for split edges may take that quote for a closing one; a
     * reader then fails rather than read a record twice or lose one. */
    const file_spec h[] = {{"lit2.csv", "a,b\n12\" pipe,x\nsay \"hi\n\",z\n", 0}};
    static const uint64_t one[] = {1};
    check_files_ms(h, 1, one, 1, UINT64_MAX);
    uint64_t ms[40];
    for (size_t i = 0; i < 40; i++) ms[i] = i + 1;
    check_files_ms_mode(h, 1, ms, SPLIT_SANITIZED ? 5 : 40, UINT64_MAX, 1);
    /* Several CSV files and a text file: quotes never carry over from one file to the next. */
    const file_spec many[] = {
        {"1.csv", "h\n\"open\nclosed\"\n", 0}, {"2.txt", "\"a\nb\"\n", 0},
        {"3.csv", "h,i\n1,\"x\n", 0},          {"4.csv", "h\n\"y\"\n", 0},
    };
    check_every_m(many, NFILES(many), UINT64_MAX);
}

static void test_csv_quoted_header(void **state)
{
    (void)state;
    /* The header is the first record, quoted newlines and all, also after a byte-order mark. */
    const file_spec f[] = {{"h.csv", "\xEF\xBB\xBF\"first\ncol\",\"second, col\"\r\n1,2\r\n\"3\n\",4\r\n", 0}};
    check_every_m(f, 1, UINT64_MAX);
    char dir[300], path[400];
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/h.csv", dir);
    write_file(path, f[0].data, strlen(f[0].data));
    char *args[] = {path};
    input_set in;
    struct err e = {0};
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    assert_int_equal(input_plan(&in, 5, 0, 0), 0);
    for (size_t k = 0; k < in.nsplits; k++) {
        for (size_t i = 0; i < in.splits[k].nsegs; i++) {
            reader *r = NULL;
            assert_int_equal(reader_open(&r, &in.files[0], &in.splits[k].segs[i], 1000, &e), 0);
            const fields_header *h = reader_header(r);
            assert_non_null(h);
            assert_int_equal(fields_header_count(h), 2);
            assert_string_equal(fields_header_name(h, 0), "first\ncol");
            assert_string_equal(fields_header_name(h, 1), "second, col");
            reader_close(r);
        }
    }
    input_set_free(&in);
}

static void test_csv_unterminated_quote(void **state)
{
    (void)state;
    /* A quote that never closes ends its record at the first newline after it; the lines after
     * it are records again, whatever M is: it swallows nothing. */
    const file_spec f[] = {{"u.csv", "h,v\n1,a\n2,\"never closed\n3,b\n4,c\r\n5,d", 0}};
    check_every_m(f, 1, UINT64_MAX);
    recs want = {0};
    model_file(&want, 0, f[0].data, strlen(f[0].data), UINT64_MAX, 1);
    assert_int_equal(want.n, 5);
    assert_int_equal(want.v[1].len, strlen("2,\"never closed"));
    recs_free(&want);
    /* Opened in the last line: runs to the end. After closed multi-line fields in one record:
     * the record keeps them. "" pairs after the quote do not close it. */
    const file_spec g[] = {{"u2.csv", "h\n1\n\"open to the end\nstill", 0}};
    check_every_m(g, 1, UINT64_MAX);
    const file_spec h[] = {{"u3.csv", "a,b,c\n\"x\ny\",\"never\nz,\"\"w\"\"\n1,2,3\n", 0}};
    check_every_m(h, 1, UINT64_MAX);
    /* A stray quote that a later quote does close makes one long malformed record of the lines
     * between (RFC 4180 has it so); its split edges can be misjudged, and then a reader fails
     * rather than read a record twice or lose one. */
    const file_spec m[] = {{"m.csv", "id,name,value\n4,\"stray,40\n5,alpha,x\n6,beta\n8,\"de\"\"lta\",7\n9,z,3\n", 0}};
    if (SPLIT_SANITIZED) {
        static const uint64_t ms[] = {1, 3, 7, 70};
        check_files_ms_mode(m, 1, ms, 4, UINT64_MAX, 1);
    } else {
        uint64_t ms[80];
        for (size_t i = 0; i < 80; i++) ms[i] = i + 1;
        check_files_ms_mode(m, 1, ms, 80, UINT64_MAX, 1);
    }
}

static void test_csv_quoted_max_record(void **state)
{
    (void)state;
    /* Records over max_record are skipped whole, quoted newlines and all, at their offsets;
     * an unterminated quote in an over-long record still ends it at the next newline. */
    const file_spec f[] = {{"l.csv", "h,v\nok,1\n\"long\nquoted\nfield\",2\nshort,\"a\nb\"\nx,\"unclosed\nnext,3\nend,4\n", 0}};
    check_every_m(f, 1, 8);
    /* With max_record smaller than the reader's first buffer fill it all goes through the
     * dropping path: a long quoted field that never closes, then a short record. */
    size_t n = 0, cap = 300000;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)sprintf(text + n, "h,v\n1,\"");
    for (int i = 0; i < 20000; i++) n += (size_t)sprintf(text + n, "line %d\n", i);
    n += (size_t)sprintf(text + n, "\",x\n2,\"open");
    memset(text + n, 'z', 70000);
    n += 70000;
    n += (size_t)sprintf(text + n, "\n3,y\n4,w\n");
    assert_true(n < cap);
    const file_spec g[] = {{"big.csv", text, n}};
    /* Read whole, exactly; cut into splits, the unterminated quote can mislead the edge scan
     * (it is malformed CSV), and a reader may fail instead. */
    static const uint64_t one[] = {1}, ms[] = {2, 5, 9};
    check_files_ms(g, 1, one, 1, 1000);
    check_files_ms(g, 1, one, 1, 100000);
    check_files_ms_mode(g, 1, ms, SPLIT_SANITIZED ? 1 : 3, 1000, 1);
    /* Well-formed, the same long quoted field splits anywhere. */
    char *end = strstr(text, "\",x\n2,\"open");
    assert_non_null(end);
    end[6] = 'o'; /* 2,"open... -> 2,oopen...: no quote */
    check_files_ms(g, 1, ms, SPLIT_SANITIZED ? 1 : 3, 1000);
    free(text);
}

static void test_csv_edge_guess_fooled(void **state)
{
    (void)state;
    /* A quoted field longer than the scan's window, without quotes inside, straddling a split
     * edge: the scan takes the edge to lie outside quotes, and the reader of the split before it,
     * parsing from a true record start, finds its record running past the edge: an error that
     * names the file and the record's offset, never a record read twice. */
    size_t n = 0, cap = 2u << 20;
    char *text = malloc(cap);
    assert_non_null(text);
    n += (size_t)sprintf(text + n, "h,v\n1,\"");
    while (n < (1u << 20)) n += (size_t)sprintf(text + n, "a line inside one quoted field\n");
    n += (size_t)sprintf(text + n, "\",x\n2,y\n");
    const file_spec f[] = {{"g.csv", text, n}};
    static const uint64_t ms[] = {2};
    assert_int_equal(check_files_ms_mode(f, 1, ms, 1, UINT64_MAX, 1), 1);
    /* The message: the file and the offset of the record (4). */
    char dir[300], path[400];
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/g.csv", dir);
    write_file(path, text, n);
    free(text);
    char *args[] = {path};
    input_set in;
    struct err e = {0};
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    assert_int_equal(input_plan(&in, 2, 0, 0), 0);
    recs got = {0};
    assert_int_equal(try_all_splits(&got, &in, UINT64_MAX, &e), -EBADMSG);
    assert_int_equal(got.n, 0);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "offset 4:"));
    recs_free(&got);
    input_set_free(&in);
    /* With one split there is no guess: the file reads whole. */
    const file_spec g[] = {{"g1.csv", "h,v\n1,\"a\nb\",c\n", 0}};
    static const uint64_t one[] = {1};
    assert_int_equal(check_files_ms_mode(g, 1, one, 1, UINT64_MAX, 1), 0);
}

/* Random CSV files: records of quoted and unquoted fields, the quoted ones holding commas,
 * newlines, CRLFs and "" escapes, sometimes a stray or unterminated quote; random M. Well-formed
 * files must read exactly for every M; with stray quotes a reader may fail instead (see
 * check_files_ms_mode), and must, rarely. */
static void test_csv_random(void **state)
{
    (void)state;
    static char buf[3][4096];
    char names[3][16];
    file_spec f[3];
    static const char *const pieces[] = {"a", "bc", "12", " ", ",", "\n", "\r\n", "\"\"", "x,y", "\n\n"};
    size_t malformed_runs = 0, failed = 0;
    for (int iter = 0; iter < (SPLIT_SANITIZED ? 20 : 400); iter++) {
        size_t nfiles = 1 + rnd(2);
        int bad = rnd(4) == 0; /* this run may have stray and unterminated quotes */
        malformed_runs += (size_t)bad;
        uint64_t max_record = rnd(4) == 0 ? 10 + rnd(40) : UINT64_MAX; /* over the header */
        for (size_t i = 0; i < nfiles; i++) {
            size_t n = (size_t)sprintf(buf[i], "h1,\"h\n2\"%s", rnd(2) ? "\r\n" : "\n");
            size_t nrec = rnd(12);
            for (size_t r = 0; r < nrec && n < sizeof buf[i] - 200; r++) {
                size_t nf = 1 + rnd(3);
                for (size_t k = 0; k < nf; k++) {
                    if (k) buf[i][n++] = ',';
                    if (rnd(2)) {
                        buf[i][n++] = '"';
                        size_t np = rnd(5);
                        for (size_t j = 0; j < np; j++) {
                            const char *pc = pieces[rnd(NFILES(pieces))];
                            memcpy(buf[i] + n, pc, strlen(pc));
                            n += strlen(pc);
                        }
                        if (!(bad && rnd(6) == 0)) buf[i][n++] = '"'; /* else unterminated */
                    } else {
                        size_t len = rnd(6);
                        for (size_t j = 0; j < len; j++) buf[i][n++] = (char)('a' + rnd(26));
                        if (bad && rnd(5) == 0) buf[i][n++] = '"'; /* a literal, mid-field */
                    }
                }
                if (r + 1 < nrec || rnd(2)) {
                    if (rnd(3) == 0) buf[i][n++] = '\r';
                    buf[i][n++] = '\n';
                }
            }
            buf[i][n] = 0;
            sprintf(names[i], "%zu.csv", i);
            f[i] = (file_spec){names[i], buf[i], n};
        }
        uint64_t total = total_len(f, nfiles);
        uint64_t ms[3] = {1 + rnd((uint32_t)total + 4), 1 + rnd(9), total};
        size_t k = check_files_ms_mode(f, nfiles, ms, SPLIT_SANITIZED ? 1 : 3, max_record, bad);
        failed += k;
    }
    /* Stray quotes fool the scan now and then, not all the time. */
    if (!SPLIT_SANITIZED) assert_true(failed < malformed_runs * 3);
}

/* ---- gzip: whole, concatenated, and damaged ------------------------------------------------ */

/* gzip-compresses data into memory (one member). Returns a malloc'd buffer of *n bytes. */
static unsigned char *gz_bytes(const char *data, size_t len, size_t *n)
{
    z_stream zs = {0};
    assert_int_equal(deflateInit2(&zs, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&zs, (uLong)len) + 32;
    unsigned char *out = malloc(cap);
    assert_non_null(out);
    zs.next_in = (unsigned char *)(uintptr_t)data;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    assert_int_equal(deflate(&zs, Z_FINISH), Z_STREAM_END);
    *n = cap - zs.avail_out;
    deflateEnd(&zs);
    return out;
}

/* Reads the one file at `path` whole. Returns what the reader said last (READER_END or an
 * error, message in e) and the records in got. */
static int read_gz_file(const char *path, recs *got, struct err *e)
{
    char *args[] = {(char *)path};
    input_set in;
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, e), 0);
    assert_int_equal(input_plan(&in, 3, 0, 0), 0);
    assert_int_equal(in.nsplits, 1);
    int rc = try_all_splits(got, &in, UINT64_MAX, e);
    input_set_free(&in);
    return rc;
}

static void test_gz_members_and_padding(void **state)
{
    (void)state;
    char dir[300], path[400];
    fresh_dir(dir, sizeof dir);
    /* Two members (cat a.gz b.gz), then zero padding: one stream of the lines of both. */
    const char *a = "a1\na2\npartial ", *b = "line\nb1\n";
    size_t na, nb;
    unsigned char *ga = gz_bytes(a, strlen(a), &na), *gb = gz_bytes(b, strlen(b), &nb);
    unsigned char *cat = malloc(na + nb + 64);
    assert_non_null(cat);
    memcpy(cat, ga, na);
    memcpy(cat + na, gb, nb);
    memset(cat + na + nb, 0, 64);
    for (int pad = 0; pad <= 1; pad++) {
        snprintf(path, sizeof path, "%s/cat%d.txt.gz", dir, pad);
        write_file(path, cat, na + nb + (pad ? 64 : 0));
        recs got = {0}, want = {0};
        struct err e = {0};
        int rc = read_gz_file(path, &got, &e);
        if (rc) fail_msg("concatenated members: %s", e.msg);
        model_file(&want, 0, "a1\na2\npartial line\nb1\n", 22, UINT64_MAX, 0);
        recs_expect_equal(&got, &want, "two gzip members");
        recs_free(&got);
        recs_free(&want);
    }
    /* A CSV whose quoted field spans the two members. */
    const char *c1 = "h,v\n1,\"one\n", *c2 = "two\",3\n";
    size_t n1, n2;
    unsigned char *g1 = gz_bytes(c1, strlen(c1), &n1), *g2 = gz_bytes(c2, strlen(c2), &n2);
    unsigned char *both = malloc(n1 + n2);
    assert_non_null(both);
    memcpy(both, g1, n1);
    memcpy(both + n1, g2, n2);
    snprintf(path, sizeof path, "%s/q.csv.gz", dir);
    write_file(path, both, n1 + n2);
    recs got = {0}, want = {0};
    struct err e = {0};
    if (read_gz_file(path, &got, &e)) fail_msg("gz CSV: %s", e.msg);
    model_file(&want, 0, "h,v\n1,\"one\ntwo\",3\n", 18, UINT64_MAX, 1);
    recs_expect_equal(&got, &want, "gz CSV across members");
    recs_free(&got);
    recs_free(&want);
    free(ga);
    free(gb);
    free(cat);
    free(g1);
    free(g2);
    free(both);
}

/* A damaged .gz file is an error naming the file, never read as complete. */
static void expect_gz_error(const char *dir, const char *name, const void *bytes, size_t n,
                            const char *what, uint64_t min_records)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_file(path, bytes, n);
    recs got = {0};
    struct err e = {0};
    int rc = read_gz_file(path, &got, &e);
    if (rc != -EBADMSG) fail_msg("%s: expected -EBADMSG, got %d (%zu records)", name, rc, got.n);
    if (!strstr(e.msg, path) || !strstr(e.msg, what)) fail_msg("%s: message \"%s\" lacks \"%s\"", name, e.msg, what);
    assert_true(got.n >= min_records);
    recs_free(&got);
}

static void test_gz_damaged(void **state)
{
    (void)state;
    char dir[300];
    fresh_dir(dir, sizeof dir);
    /* Enough text that a cut in the middle leaves whole lines before it. */
    size_t len = 0, cap = 200000;
    char *text = malloc(cap);
    assert_non_null(text);
    unsigned x = 7;
    while (len < cap - 100) {
        x = x * 1103515245u + 12345u;
        len += (size_t)sprintf(text + len, "line %u of random words %u\n", x >> 8, x >> 20);
    }
    size_t n;
    unsigned char *gz = gz_bytes(text, len, &n);
    /* Cut in the middle, just before the trailer, inside the trailer, and after the header. */
    expect_gz_error(dir, "half.txt.gz", gz, n / 2, "ends early", 1);
    expect_gz_error(dir, "notrailer.txt.gz", gz, n - 8, "ends early", 1000);
    expect_gz_error(dir, "halftrailer.txt.gz", gz, n - 3, "ends early", 1000);
    expect_gz_error(dir, "header.txt.gz", gz, 10, "ends early", 0);
    expect_gz_error(dir, "onebyte.txt.gz", gz, 1, "ends early", 0);
    /* A flipped bit in the CRC, and in the length (the check fails as the member ends, so the
     * records of the member's last stretch of output may never be seen). */
    gz[n - 6] ^= 0x10;
    expect_gz_error(dir, "crc.txt.gz", gz, n, "incorrect data check", 0);
    gz[n - 6] ^= 0x10;
    gz[n - 2] ^= 0x01;
    expect_gz_error(dir, "len.txt.gz", gz, n, "incorrect length check", 0);
    gz[n - 2] ^= 0x01;
    /* A second member cut after one byte, and bytes after the stream that are not gzip. */
    unsigned char *more = malloc(n + 16);
    assert_non_null(more);
    memcpy(more, gz, n);
    more[n] = 0x1f;
    expect_gz_error(dir, "second.txt.gz", more, n + 1, "ends early", 1000);
    memcpy(more + n, "trailing text\n", 14);
    expect_gz_error(dir, "garbage.txt.gz", more, n + 14, "not gzip", 1000);
    /* Not gzip at all, empty, and a CSV whose header cannot be read. */
    expect_gz_error(dir, "plain.txt.gz", text, len, "not in gzip format", 0);
    expect_gz_error(dir, "empty.txt.gz", "", 0, "not in gzip format", 0);
    expect_gz_error(dir, "plain.csv.gz", "a,b\n1,2\n", 8, "not in gzip format", 0);
    size_t nc;
    unsigned char *gc = gz_bytes("col1,col2\n1,2\n", 14, &nc);
    expect_gz_error(dir, "cut.csv.gz", gc, nc - 10, "ends early", 0);
    free(gc);
    free(more);
    free(gz);
    free(text);
}

/* ---- Splits and records: randomized ------------------------------------------------------ */


/* Random files of random lines (lengths mostly short, sometimes long; \n or \r\n; with or
 * without a final newline; sometimes empty), random max_record and random M, sometimes CSV. */
static void test_random_plans(void **state)
{
    (void)state;
    char bufs[3][2048];
    file_spec f[3];
    char names[3][16];
    for (int iter = 0; iter < (SPLIT_SANITIZED ? 20 : 300); iter++) {
        size_t nfiles = 1 + rnd(3);
        int csv = rnd(4) == 0;
        /* A CSV header over max_record is a known bug with its own test: keep it under. */
        uint64_t max_record = rnd(3) == 0 ? UINT64_MAX : (csv ? 6 : 0) + rnd(20);
        for (size_t i = 0; i < nfiles; i++) {
            size_t n = 0;
            if (csv) n += (size_t)sprintf(bufs[i], "h1,h2%s", rnd(2) ? "\r\n" : "\n");
            size_t lines = rnd(13);
            for (size_t l = 0; l < lines; l++) {
                size_t len = rnd(5) == 0 ? 20 + rnd(30) : rnd(11);
                int crlf = rnd(3) == 0;
                /* The CRLF-at-exactly-max_record edge is a known bug with its own test. */
                if (crlf && len == max_record) len++;
                for (size_t c = 0; c < len; c++) {
                    uint32_t k = rnd(30);
                    /* A \r inside a line (never last, so it is not a terminator). */
                    bufs[i][n++] = k == 0 && c + 1 < len ? '\r' : k < 3 ? ',' : (char)('a' + k % 26);
                }
                int last = l + 1 == lines;
                if (!last || rnd(3)) {
                    if (crlf) bufs[i][n++] = '\r';
                    bufs[i][n++] = '\n';
                }
            }
            sprintf(names[i], "%zu.%s", i, csv ? "csv" : "txt");
            f[i] = (file_spec){names[i], bufs[i], n};
            if (n == 0) f[i].data = ""; /* len 0 means strlen: keep it 0 */
            bufs[i][n] = 0;
        }
        uint64_t total = total_len(f, nfiles);
        uint64_t m = 1 + rnd((uint32_t)(SPLIT_SANITIZED && total > 12 ? 12 : total) + 4);
        check_files(f, nfiles, m, m, max_record);
    }
}

/* ---- Split planning ---------------------------------------------------------------------- */

static void expand_one_dir(const char *dir, input_set *in)
{
    char *args[] = {(char *)dir};
    struct err e = {0};
    int rc = input_expand(args, 1, NULL, 0, FIELDS_TEXT, in, &e);
    if (rc) fail_msg("input_expand(%s): %s", dir, e.msg);
}

static void test_plan_default_count(void **state)
{
    (void)state;
    char dir[300];
    fresh_dir(dir, sizeof dir);
    char big[1000];
    memset(big, 'x', sizeof big);
    for (size_t i = 99; i < sizeof big; i += 100) big[i] = '\n';
    char path[400];
    snprintf(path, sizeof path, "%s/a.txt", dir);
    write_file(path, big, 600);
    snprintf(path, sizeof path, "%s/b.txt", dir);
    write_file(path, big, 400);
    input_set in;

    /* 1000 bytes at 300 per split: 4 splits. */
    expand_one_dir(dir, &in);
    assert_int_equal(in.total_bytes, 1000);
    assert_int_equal(input_plan(&in, 0, 300, 1), 0);
    check_plan(&in, 4);
    input_set_free(&in);

    /* min_splits raises it. */
    expand_one_dir(dir, &in);
    assert_int_equal(input_plan(&in, 0, 300, 10), 0);
    check_plan(&in, 10);
    input_set_free(&in);

    /* Exactly divisible. */
    expand_one_dir(dir, &in);
    assert_int_equal(input_plan(&in, 0, 250, 1), 0);
    check_plan(&in, 4);
    input_set_free(&in);

    /* A split size larger than the input: one split. */
    expand_one_dir(dir, &in);
    assert_int_equal(input_plan(&in, 0, 1u << 30, 0), 0);
    check_plan(&in, 1);
    input_set_free(&in);

    /* gz files add one split each on top of the plain ones. */
    snprintf(path, sizeof path, "%s/c.txt.gz", dir);
    write_gz(path, "z\n");
    expand_one_dir(dir, &in);
    assert_int_equal(input_plan(&in, 0, 300, 1), 0);
    check_plan(&in, 4);
    input_set_free(&in);
}

static void test_plan_degenerate_inputs(void **state)
{
    (void)state;
    char dir[300], path[400];
    input_set in;

    /* Only empty files: one split with no segments, which reads nothing. */
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/e1.txt", dir);
    write_file(path, "", 0);
    snprintf(path, sizeof path, "%s/e2.txt", dir);
    write_file(path, "", 0);
    expand_one_dir(dir, &in);
    assert_int_equal(in.nfiles, 2);
    assert_int_equal(input_plan(&in, 0, 1000, 1), 0);
    assert_int_equal(in.nsplits, 1);
    assert_int_equal(in.splits[0].nsegs, 0);
    assert_int_equal(in.splits[0].bytes, 0);
    input_set_free(&in);

    /* Only gz files, default M: one split per gz file and nothing else. */
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/a.gz", dir);
    write_gz(path, "1\n");
    snprintf(path, sizeof path, "%s/b.gz", dir);
    write_gz(path, "2\n");
    expand_one_dir(dir, &in);
    assert_int_equal(input_plan(&in, 0, 1000, 4), 0);
    check_plan(&in, 0);
    input_set_free(&in);

    /* Only gz files and an explicit M: -m counts the splits of the splittable bytes, and there
     * are none, so one split per gz file and no empty map tasks (issue 7, item 7). */
    for (uint64_t m = 1; m <= 20; m += 19) {
        expand_one_dir(dir, &in);
        assert_int_equal(input_plan(&in, m, 1000, 4), 0);
        check_plan(&in, 0);
        assert_int_equal(in.nsplits, 2);
        input_set_free(&in);
    }

    /* Empty plain files next to a gz file: no plain splits are padded in, with or without M. */
    snprintf(path, sizeof path, "%s/c.txt", dir);
    write_file(path, "", 0);
    expand_one_dir(dir, &in);
    assert_int_equal(input_plan(&in, 0, 1000, 4), 0);
    check_plan(&in, 0);
    assert_int_equal(in.nsplits, 2);
    input_set_free(&in);
    expand_one_dir(dir, &in);
    assert_int_equal(input_plan(&in, 20, 1000, 4), 0);
    check_plan(&in, 0);
    assert_int_equal(in.nsplits, 2);
    input_set_free(&in);

    /* Only empty plain files and an explicit M: M splits that read nothing, as -m says. */
    fresh_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/e.txt", dir);
    write_file(path, "", 0);
    expand_one_dir(dir, &in);
    assert_int_equal(input_plan(&in, 5, 1000, 1), 0);
    check_plan(&in, 5);
    input_set_free(&in);
}

/* ---- Input expansion --------------------------------------------------------------------- */

static void expect_paths(const input_set *in, const char *dir, const char *const *rel, size_t n)
{
    char want[512];
    for (size_t i = 0; i < n && i < in->nfiles; i++) {
        snprintf(want, sizeof want, "%s/%s", dir, rel[i]);
        if (strcmp(in->files[i].path, want) != 0)
            fail_msg("file %zu: got %s, want %s", i, in->files[i].path, want);
    }
    if (in->nfiles != n) fail_msg("got %zu files, want %zu", in->nfiles, n);
}

static void make_tree(const char *dir)
{
    put(dir, "b.txt", "bb\n");
    put(dir, "a.txt", "a\n");
    put(dir, "B.txt", "BBBB\n");
    put(dir, "c.csv", "h\n1\n");
    put(dir, "empty.txt", "");
    put(dir, "sub/z.txt", "z\n");
    put(dir, "sub/a.txt", "sa\n");
    put(dir, "sub/deeper/m.jsonl", "{}\n");
    put(dir, "sub/_part.txt", "skip\n");
    put(dir, "sub/.x", "skip\n");
    put(dir, ".hidden.txt", "skip\n");
    put(dir, "_SUCCESS", "");
    put(dir, ".git/x.txt", "skip\n");
    put(dir, "_tmp/y.txt", "skip\n");
}

static const char *const tree_files[] = {"B.txt",     "a.txt",     "b.txt",
                                         "c.csv",     "empty.txt", "sub/a.txt",
                                         "sub/deeper/m.jsonl", "sub/z.txt"};

static void test_expand_directory(void **state)
{
    (void)state;
    char dir[300];
    fresh_dir(dir, sizeof dir);
    make_tree(dir);
    input_set in;
    expand_one_dir(dir, &in);
    expect_paths(&in, dir, tree_files, NFILES(tree_files));
    /* Byte order of the whole path. */
    for (size_t i = 1; i < in.nfiles; i++) assert_true(strcmp(in.files[i - 1].path, in.files[i].path) < 0);
    static const uint64_t sizes[] = {5, 2, 3, 4, 0, 3, 3, 2};
    uint64_t total = 0;
    for (size_t i = 0; i < in.nfiles; i++) {
        assert_int_equal(in.files[i].size, sizes[i]);
        total += sizes[i];
        assert_false(in.files[i].gz);
    }
    assert_int_equal(in.total_bytes, total);
    assert_int_equal(in.files[0].format, FIELDS_TEXT);
    assert_int_equal(in.files[3].format, FIELDS_CSV);
    assert_int_equal(in.files[6].format, FIELDS_JSONL);
    input_set_free(&in);
    assert_int_equal(in.nfiles, 0);
    assert_null(in.files);

    /* A trailing slash does not double it in the paths. */
    char slash[310];
    snprintf(slash, sizeof slash, "%s/", dir);
    expand_one_dir(slash, &in);
    expect_paths(&in, dir, tree_files, NFILES(tree_files));
    input_set_free(&in);

    /* Arguments keep their order; a file and a directory mix. */
    char a1[400], a2[400];
    snprintf(a1, sizeof a1, "%s/sub", dir);
    snprintf(a2, sizeof a2, "%s/b.txt", dir);
    char *args[] = {a1, a2};
    struct err e = {0};
    assert_int_equal(input_expand(args, 2, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    const char *const mixed[] = {"sub/a.txt", "sub/deeper/m.jsonl", "sub/z.txt", "b.txt"};
    expect_paths(&in, dir, mixed, NFILES(mixed));
    input_set_free(&in);

    /* --format forces every file's format. */
    char *one[] = {dir};
    assert_int_equal(input_expand(one, 1, NULL, 1, FIELDS_JSONL, &in, &e), 0);
    for (size_t i = 0; i < in.nfiles; i++) assert_int_equal(in.files[i].format, FIELDS_JSONL);
    input_set_free(&in);
}

/* Files under a directory come in byte order of their whole path: "x-1.txt" before "x/1",
 * since '-' (0x2d) sorts below '/' (0x2f). */
static void test_expand_byte_order_below_slash(void **state)
{
    (void)state;
    char dir[300];
    fresh_dir(dir, sizeof dir);
    put(dir, "x/1", "1\n");
    put(dir, "x-1.txt", "2\n");
    put(dir, "x.txt", "3\n");
    input_set in;
    expand_one_dir(dir, &in);
    const char *const want[] = {"x-1.txt", "x.txt", "x/1"};
    expect_paths(&in, dir, want, NFILES(want));
    input_set_free(&in);
}

static void test_expand_glob(void **state)
{
    (void)state;
    char dir[300], pat[400];
    fresh_dir(dir, sizeof dir);
    make_tree(dir);
    input_set in;
    struct err e = {0};
    char *args[] = {pat};

    snprintf(pat, sizeof pat, "%s/*.txt", dir);
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    const char *const txt[] = {"B.txt", "a.txt", "b.txt", "empty.txt"};
    expect_paths(&in, dir, txt, NFILES(txt));
    input_set_free(&in);

    /* A pattern matching a directory expands it like a directory argument. */
    snprintf(pat, sizeof pat, "%s/s?b", dir);
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    const char *const sub[] = {"sub/a.txt", "sub/deeper/m.jsonl", "sub/z.txt"};
    expect_paths(&in, dir, sub, NFILES(sub));
    input_set_free(&in);

    snprintf(pat, sizeof pat, "%s/[ab].txt", dir);
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    const char *const ab[] = {"a.txt", "b.txt"};
    expect_paths(&in, dir, ab, NFILES(ab));
    input_set_free(&in);

    /* No match: an error naming the pattern, and nothing left allocated. */
    snprintf(pat, sizeof pat, "%s/*.nomatch", dir);
    memset(&e, 0, sizeof e);
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), -ENOENT);
    assert_non_null(strstr(e.msg, pat));
    assert_int_equal(in.nfiles, 0);
    assert_null(in.files);
}

static void test_expand_errors(void **state)
{
    (void)state;
    char dir[300], path[400], good[400];
    fresh_dir(dir, sizeof dir);
    input_set in;
    struct err e = {0};

    /* A missing path, alone or after a good one: the error names it. */
    snprintf(path, sizeof path, "%s/missing.txt", dir);
    char *args[] = {path};
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), -ENOENT);
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(in.nfiles, 0);

    snprintf(good, sizeof good, "%s/good.txt", dir);
    write_file(good, "x\n", 2);
    char *two[] = {good, path};
    memset(&e, 0, sizeof e);
    assert_int_equal(input_expand(two, 2, NULL, 0, FIELDS_TEXT, &in, &e), -ENOENT);
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(in.nfiles, 0);
    assert_null(in.files);

    /* Not a regular file or directory. */
    char *dev[] = {"/dev/null"};
    memset(&e, 0, sizeof e);
    assert_int_equal(input_expand(dev, 1, NULL, 0, FIELDS_TEXT, &in, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "/dev/null"));
    assert_int_equal(in.nfiles, 0);
}

/* Known engine bug: input_walk() calls qsort(NULL, 0, ...) on a directory
 * that holds no usable names (empty, or only '.'/'_' names), which is undefined behaviour; the
 * sanitizer build aborts on it, taking the whole test binary down. The plain build checks the
 * behaviour; the sanitizer build skips until the walk is fixed. */
static void test_expand_empty_directory(void **state)
{
    (void)state;
    char dir[300], path[400];
    fresh_dir(dir, sizeof dir);
    input_set in;
    struct err e = {0};
    char *args[] = {path};

    /* Empty: an error naming it. */
    snprintf(path, sizeof path, "%s/emptydir", dir);
    assert_int_equal(mkdir(path, 0755), 0);
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), -ENOENT);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "no input files"));
    assert_int_equal(in.nfiles, 0);

    /* Only names that are skipped, at every level. */
    put(path, ".hidden", "x\n");
    put(path, "_SUCCESS", "");
    put(path, "_logs/x.txt", "x\n");
    put(path, "sub/.x", "x\n");
    memset(&e, 0, sizeof e);
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), -ENOENT);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "no input files"));

    /* An empty subdirectory next to a file is no error: the file is the input. */
    put(path, "sub2/data.txt", "d\n");
    char empty[500];
    snprintf(empty, sizeof empty, "%s/sub3", path);
    assert_int_equal(mkdir(empty, 0755), 0);
    assert_int_equal(input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e), 0);
    const char *const one[] = {"sub2/data.txt"};
    expect_paths(&in, path, one, 1);
    input_set_free(&in);
}

static void test_format_for(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        fields_format fmt;
        int gz;
    } cases[] = {
        {"a.csv", FIELDS_CSV, 0},        {"a.CSV", FIELDS_CSV, 0},
        {"a.csv.gz", FIELDS_CSV, 1},     {"a.csv.GZ", FIELDS_CSV, 1},
        {"a.jsonl", FIELDS_JSONL, 0},    {"a.json", FIELDS_JSONL, 0},
        {"a.jsonl.gz", FIELDS_JSONL, 1}, {"a.txt", FIELDS_TEXT, 0},
        {"a.txt.gz", FIELDS_TEXT, 1},    {"a.gz", FIELDS_TEXT, 1},
        {"csv", FIELDS_TEXT, 0},         {"dir.csv/a.txt", FIELDS_TEXT, 0},
        {"a.csvx", FIELDS_TEXT, 0},      {"gz", FIELDS_TEXT, 0},
    };
    for (size_t i = 0; i < NFILES(cases); i++) {
        int gz = -1;
        fields_format f = input_format_for(cases[i].name, &gz);
        if (f != cases[i].fmt || gz != cases[i].gz)
            fail_msg("%s: got format %d gz %d, want %d %d", cases[i].name, f, gz, cases[i].fmt,
                     cases[i].gz);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_cross_split_edges),
        cmocka_unit_test(test_crlf_lines),
        cmocka_unit_test(test_no_final_newline),
        cmocka_unit_test(test_empty_file),
        cmocka_unit_test(test_only_newlines),
        cmocka_unit_test(test_more_splits_than_lines_and_bytes),
        cmocka_unit_test(test_several_files_one_set),
        cmocka_unit_test(test_max_record_skipping),
        cmocka_unit_test(test_crlf_line_at_max_record),
        cmocka_unit_test(test_csv_header),
        cmocka_unit_test(test_csv_header_names_mid_file),
        cmocka_unit_test(test_csv_header_too_long),
        cmocka_unit_test(test_csv_short_header_over_max_record),
        cmocka_unit_test(test_buffer_boundaries),
        cmocka_unit_test(test_gz_files_are_whole_splits),
        cmocka_unit_test(test_gz_members_and_padding),
        cmocka_unit_test(test_gz_damaged),
        cmocka_unit_test(test_csv_quoted_newlines),
        cmocka_unit_test(test_csv_quoted_header),
        cmocka_unit_test(test_csv_unterminated_quote),
        cmocka_unit_test(test_csv_quoted_max_record),
        cmocka_unit_test(test_csv_edge_guess_fooled),
        cmocka_unit_test(test_csv_random),
        cmocka_unit_test(test_random_plans),
        cmocka_unit_test(test_plan_default_count),
        cmocka_unit_test(test_plan_degenerate_inputs),
        cmocka_unit_test(test_expand_directory),
        cmocka_unit_test(test_expand_byte_order_below_slash),
        cmocka_unit_test(test_expand_glob),
        cmocka_unit_test(test_expand_errors),
        cmocka_unit_test(test_expand_empty_directory),
        cmocka_unit_test(test_format_for),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
