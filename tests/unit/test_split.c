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

/* The documented record model of one file: lines split on \n, one trailing \r dropped, a final
 * line without \n still a record, the first line of a CSV file never a record, and a line
 * longer than max_record (not counting its terminator) reported as too long at its offset. */
static void model_file(recs *out, uint32_t file, const char *s, size_t size, uint64_t max_record,
                       int csv)
{
    size_t start = 0;
    while (start < size) {
        const char *nl = memchr(s + start, '\n', size - start);
        size_t end = nl ? (size_t)(nl - s) : size;
        size_t n = end - start;
        if (n > 0 && s[end - 1] == '\r') n--;
        if (!(csv && start == 0)) {
            if (n > max_record) recs_add(out, file, start, 1, NULL, 0);
            else recs_add(out, file, start, 0, s + start, n);
        }
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
 * order. */
static void check_files_ms(const file_spec *files, size_t nfiles, const uint64_t *ms, size_t nms,
                           uint64_t max_record)
{
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
        int rc = input_expand(args, nfiles, 0, FIELDS_TEXT, &in, &e);
        if (rc) fail_msg("input_expand: %s", e.msg);
        assert_int_equal(in.nfiles, nfiles);
        assert_int_equal(input_plan(&in, m, 0, 0), 0);
        check_plan(&in, m);
        recs got = {0};
        read_all_splits(&got, &in, max_record);
        char what[64];
        snprintf(what, sizeof what, "M=%llu", (unsigned long long)m);
        recs_expect_equal(&got, &want, what);
        recs_free(&got);
        input_set_free(&in);
    }
    recs_free(&want);
    for (size_t i = 0; i < nfiles; i++) free(args[i]);
    free(args);
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
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), 0);
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
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), 0);
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
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), 0);
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
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), 0);
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
    assert_int_equal(input_expand(args, 4, 0, FIELDS_TEXT, &in, &e), 0);
    assert_true(in.files[1].gz && in.files[3].gz);
    assert_int_equal(in.files[3].format, FIELDS_CSV);
    for (uint64_t m = 1; m <= 12; m += SPLIT_SANITIZED ? 4 : 1) {
        input_set_free(&in);
        assert_int_equal(input_expand(args, 4, 0, FIELDS_TEXT, &in, &e), 0);
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

/* ---- Splits and records: randomized ------------------------------------------------------ */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

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
    int rc = input_expand(args, 1, 0, FIELDS_TEXT, in, &e);
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
    assert_int_equal(input_expand(args, 2, 0, FIELDS_TEXT, &in, &e), 0);
    const char *const mixed[] = {"sub/a.txt", "sub/deeper/m.jsonl", "sub/z.txt", "b.txt"};
    expect_paths(&in, dir, mixed, NFILES(mixed));
    input_set_free(&in);

    /* --format forces every file's format. */
    char *one[] = {dir};
    assert_int_equal(input_expand(one, 1, 1, FIELDS_JSONL, &in, &e), 0);
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
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), 0);
    const char *const txt[] = {"B.txt", "a.txt", "b.txt", "empty.txt"};
    expect_paths(&in, dir, txt, NFILES(txt));
    input_set_free(&in);

    /* A pattern matching a directory expands it like a directory argument. */
    snprintf(pat, sizeof pat, "%s/s?b", dir);
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), 0);
    const char *const sub[] = {"sub/a.txt", "sub/deeper/m.jsonl", "sub/z.txt"};
    expect_paths(&in, dir, sub, NFILES(sub));
    input_set_free(&in);

    snprintf(pat, sizeof pat, "%s/[ab].txt", dir);
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), 0);
    const char *const ab[] = {"a.txt", "b.txt"};
    expect_paths(&in, dir, ab, NFILES(ab));
    input_set_free(&in);

    /* No match: an error naming the pattern, and nothing left allocated. */
    snprintf(pat, sizeof pat, "%s/*.nomatch", dir);
    memset(&e, 0, sizeof e);
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), -ENOENT);
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
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), -ENOENT);
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(in.nfiles, 0);

    snprintf(good, sizeof good, "%s/good.txt", dir);
    write_file(good, "x\n", 2);
    char *two[] = {good, path};
    memset(&e, 0, sizeof e);
    assert_int_equal(input_expand(two, 2, 0, FIELDS_TEXT, &in, &e), -ENOENT);
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(in.nfiles, 0);
    assert_null(in.files);

    /* Not a regular file or directory. */
    char *dev[] = {"/dev/null"};
    memset(&e, 0, sizeof e);
    assert_int_equal(input_expand(dev, 1, 0, FIELDS_TEXT, &in, &e), -EINVAL);
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
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), -ENOENT);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "no input files"));
    assert_int_equal(in.nfiles, 0);

    /* Only names that are skipped, at every level. */
    put(path, ".hidden", "x\n");
    put(path, "_SUCCESS", "");
    put(path, "_logs/x.txt", "x\n");
    put(path, "sub/.x", "x\n");
    memset(&e, 0, sizeof e);
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), -ENOENT);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "no input files"));

    /* An empty subdirectory next to a file is no error: the file is the input. */
    put(path, "sub2/data.txt", "d\n");
    char empty[500];
    snprintf(empty, sizeof empty, "%s/sub3", path);
    assert_int_equal(mkdir(empty, 0755), 0);
    assert_int_equal(input_expand(args, 1, 0, FIELDS_TEXT, &in, &e), 0);
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
