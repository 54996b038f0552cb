/* test_merge.c - unit tests for intermediate files and the k-way merge (src/data/ifile.c,
 * src/data/merge.c): round trips, corruption detection, and merged groups against a model. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "testutil.h"
#include "data/ifile.h"
#include "data/merge.h"
#include "tally/tally.h"

/* ---- Temporary files --------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    return testutil_make_root("merge");
}

static int group_teardown(void **state)
{
    (void)state;
    return testutil_remove_root();
}

static void tmp_path(char *out, size_t cap)
{
    snprintf(out, cap, "%s/f%u.ifile", testutil_root(), testutil_next());
}

static uint64_t file_size(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (uint64_t)st.st_size;
}

/* XORs one byte of a file with `mask`. */
static void flip_byte(const char *path, uint64_t off, uint8_t mask)
{
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= mask;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

/* ---- Records and their model order ------------------------------------------------------- */

static int kv_cmp_key(const void *pa, const void *pb)
{
    const kv *a = pa, *b = pb;
    int c = key_cmp(a->key, a->klen, b->key, b->klen);
    if (c) return c;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* The merge's promise: by key, then by source, then in each source's order. */
static int kv_cmp_merge(const void *pa, const void *pb)
{
    const kv *a = pa, *b = pb;
    int c = key_cmp(a->key, a->klen, b->key, b->klen);
    if (c) return c;
    if (a->src != b->src) return a->src < b->src ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* ---- Writing and reading files ----------------------------------------------------------- */

/* Writes `l` (sorted by partition, then key) to path. */
static void write_ifile(const char *path, uint32_t nparts, int int_values, const kvs *l)
{
    ifile_writer *w = NULL;
    struct err e = {0};
    assert_int_equal(ifile_writer_open(&w, path, nparts, int_values, &e), 0);
    for (size_t i = 0; i < l->n; i++) {
        const kv *x = &l->v[i];
        int rc = int_values ? ifile_writer_add_int(w, x->part, x->key, x->klen, x->ival, &e)
                            : ifile_writer_add(w, x->part, x->key, x->klen, x->val, x->vlen, &e);
        if (rc) fail_msg("ifile_writer_add: %s", e.msg);
    }
    assert_int_equal(ifile_writer_records(w), l->n);
    int rc = ifile_writer_close(w, &e);
    if (rc) fail_msg("ifile_writer_close: %s", e.msg);
}

static ifile_seg *open_part(const char *path, uint32_t part, int check_crc)
{
    ifile_part *parts = NULL;
    uint32_t n = 0;
    int iv = -1;
    struct err e = {0};
    int rc = ifile_read_index(path, &parts, &n, &iv, &e);
    if (rc) fail_msg("ifile_read_index: %s", e.msg);
    assert_true(part < n);
    ifile_seg *s = NULL;
    rc = ifile_seg_open(&s, path, parts[part].offset, parts[part].length, parts[part].crc, check_crc,
                        iv, &e);
    if (rc) fail_msg("ifile_seg_open: %s", e.msg);
    free(parts);
    return s;
}

/* Reads every record of one partition and compares it with the records of `l` in it. */
static void expect_part(const char *path, uint32_t part, int int_values, const kvs *l)
{
    ifile_seg *s = open_part(path, part, 1);
    struct err e = {0};
    size_t i = 0;
    for (;;) {
        const char *k, *v;
        size_t kl, vl;
        int64_t iv = 0;
        int rc = ifile_seg_next(s, &k, &kl, &v, &vl, &iv, &e);
        if (rc < 0) fail_msg("ifile_seg_next: %s", e.msg);
        if (rc == 0) break;
        while (i < l->n && l->v[i].part != part) i++;
        if (i == l->n) fail_msg("partition %u: more records than written", part);
        const kv *x = &l->v[i++];
        assert_int_equal(kl, x->klen);
        if (kl) assert_memory_equal(k, x->key, kl);
        if (int_values) {
            assert_int_equal(iv, x->ival);
        } else {
            assert_int_equal(vl, x->vlen);
            if (vl) assert_memory_equal(v, x->val, vl);
        }
    }
    while (i < l->n && l->v[i].part != part) i++;
    if (i != l->n) fail_msg("partition %u: fewer records than written", part);
    /* The end is sticky. */
    const char *k, *v;
    size_t kl, vl;
    int64_t iv;
    assert_int_equal(ifile_seg_next(s, &k, &kl, &v, &vl, &iv, &e), 0);
    ifile_seg_close(s);
}

/* Checks the trailer: partitions back to back from offset 0, record counts as written. */
static void expect_index(const char *path, uint32_t nparts, int int_values, const kvs *l)
{
    ifile_part *parts = NULL;
    uint32_t n = 0;
    int iv = -1;
    struct err e = {0};
    assert_int_equal(ifile_read_index(path, &parts, &n, &iv, &e), 0);
    assert_int_equal(n, nparts);
    assert_int_equal(iv, int_values);
    uint64_t off = 0;
    for (uint32_t p = 0; p < n; p++) {
        assert_int_equal(parts[p].offset, off);
        off += parts[p].length;
        uint64_t cnt = 0;
        for (size_t i = 0; i < l->n; i++) cnt += l->v[i].part == p;
        assert_int_equal(parts[p].records, cnt);
        if (cnt == 0) assert_int_equal(parts[p].length, 0);
        else assert_true(parts[p].length > 0);
    }
    /* After the data: the trailer, 28 bytes per partition and 16 more. */
    assert_int_equal(file_size(path), off + 28ull * nparts + 16);
    free(parts);
}

/* ---- Intermediate files ------------------------------------------------------------------ */

static void test_ifile_roundtrip_bytes(void **state)
{
    (void)state;
    char path[300];
    tmp_path(path, sizeof path);
    kvs l = {0};
    /* Partition 0: edge keys and values, including empty ones, 0x00/0xff bytes and a value
     * larger than the reader's buffer. */
    size_t big = 700 * 1024;
    char *bigval = malloc(big);
    for (size_t i = 0; i < big; i++) bigval[i] = (char)(i * 7 + 3);
    kvs_add(&l, 0, "", 0, "empty key", 9, 0);
    kvs_add(&l, 0, "\0", 1, "", 0, 0);
    kvs_add(&l, 0, "a", 1, "\xff\x00\x01", 3, 0);
    kvs_add(&l, 0, "a", 1, "dup", 3, 0);
    kvs_add(&l, 0, "a\0b", 3, bigval, big, 0);
    kvs_add(&l, 0, "\xff\xff", 2, "last", 4, 0);
    /* Partition 1 empty; partition 2 many small records; partition 3 empty (trailing). */
    char k[32], v[32];
    for (int i = 0; i < 5000; i++) {
        int kn = sprintf(k, "k%06d", i), vn = sprintf(v, "value-%d", i * 31);
        kvs_add(&l, 2, k, (size_t)kn, v, (size_t)vn, 0);
    }
    write_ifile(path, 4, 0, &l);
    expect_index(path, 4, 0, &l);
    for (uint32_t p = 0; p < 4; p++) expect_part(path, p, 0, &l);
    free(bigval);
    kvs_free(&l);
}

static void test_ifile_roundtrip_int(void **state)
{
    (void)state;
    char path[300];
    tmp_path(path, sizeof path);
    static const int64_t vals[] = {0, 1, -1, 63, -64, 64, -65, 1ll << 40, -(1ll << 40),
                                   INT64_MAX, INT64_MIN, INT64_MIN + 1, INT64_MAX - 1};
    kvs l = {0};
    char k[16];
    for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
        int kn = sprintf(k, "k%02zu", i);
        kvs_add(&l, (uint32_t)(i % 2), k, (size_t)kn, NULL, 0, vals[i]);
    }
    /* Partition order: all of 0 first, then 1. */
    kvs s = {0};
    for (uint32_t p = 0; p < 2; p++)
        for (size_t i = 0; i < l.n; i++)
            if (l.v[i].part == p) kvs_add(&s, p, l.v[i].key, l.v[i].klen, NULL, 0, l.v[i].ival);
    kvs_add(&s, 2, "", 0, NULL, 0, -7); /* an empty key with an int value */
    write_ifile(path, 3, 1, &s);
    expect_index(path, 3, 1, &s);
    for (uint32_t p = 0; p < 3; p++) expect_part(path, p, 1, &s);
    kvs_free(&l);
    kvs_free(&s);
}

static void test_ifile_many_partitions(void **state)
{
    (void)state;
    char path[300];
    tmp_path(path, sizeof path);
    kvs l = {0};
    char k[32];
    /* 1000 partitions; every third has (p % 5) records, so many are empty, including runs. */
    for (uint32_t p = 0; p < 1000; p++) {
        if (p % 3) continue;
        for (uint32_t i = 0; i < p % 5; i++) {
            int kn = sprintf(k, "p%u-%u", p, i);
            kvs_add(&l, p, k, (size_t)kn, k, (size_t)kn, 0);
        }
    }
    write_ifile(path, 1000, 0, &l);
    expect_index(path, 1000, 0, &l);
    for (uint32_t p = 0; p < 1000; p += 7) expect_part(path, p, 0, &l);
    expect_part(path, 999, 0, &l);
    kvs_free(&l);

    /* One partition with nothing at all. */
    tmp_path(path, sizeof path);
    write_ifile(path, 1, 0, &l);
    expect_index(path, 1, 0, &l);
    expect_part(path, 0, 0, &l);
}

static void test_ifile_partition_order_enforced(void **state)
{
    (void)state;
    char path[300];
    tmp_path(path, sizeof path);
    ifile_writer *w = NULL;
    struct err e = {0};
    assert_int_equal(ifile_writer_open(&w, path, 3, 0, &e), 0);
    assert_int_equal(ifile_writer_add(w, 2, "b", 1, "x", 1, &e), 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(ifile_writer_add(w, 1, "a", 1, "x", 1, &e), -EINVAL);
    assert_non_null(strstr(e.msg, path));
    ifile_writer_abort(w);
    /* A partition number >= nparts is refused too (on a fresh writer: a failed writer refuses
     * everything). */
    assert_int_equal(ifile_writer_open(&w, path, 3, 0, &e), 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(ifile_writer_add(w, 3, "a", 1, "x", 1, &e), -EINVAL);
    ifile_writer_abort(w);
    /* abort removes the file. */
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);

    /* A bad path names itself. */
    char bad[400];
    snprintf(bad, sizeof bad, "%s/no/such/dir/x", testutil_root());
    memset(&e, 0, sizeof e);
    assert_true(ifile_writer_open(&w, bad, 1, 0, &e) < 0);
    assert_non_null(strstr(e.msg, bad));
}

/* ifile.h: "On any earlier error, call [close] anyway to free (it fails)." After a refused
 * out-of-order record, close must therefore fail and leave no file that silently lacks the
 * record. */
static void test_ifile_close_after_error_fails(void **state)
{
    (void)state;
    char path[300];
    tmp_path(path, sizeof path);
    ifile_writer *w = NULL;
    struct err e = {0};
    assert_int_equal(ifile_writer_open(&w, path, 2, 0, &e), 0);
    assert_int_equal(ifile_writer_add(w, 1, "b", 1, "x", 1, &e), 0);
    assert_int_equal(ifile_writer_add(w, 0, "a", 1, "x", 1, &e), -EINVAL);
    memset(&e, 0, sizeof e);
    int rc = ifile_writer_close(w, &e);
    assert_true(rc < 0);
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0);
}

static void test_ifile_crc_mismatch(void **state)
{
    (void)state;
    char path[300];
    tmp_path(path, sizeof path);
    kvs l = {0};
    char k[32];
    for (int i = 0; i < 50; i++) {
        int kn = sprintf(k, "key%03d", i);
        kvs_add(&l, 0, k, (size_t)kn, "abcdefgh", 8, 0);
    }
    for (int i = 0; i < 50; i++) {
        int kn = sprintf(k, "key%03d", i);
        kvs_add(&l, 1, k, (size_t)kn, "abcdefgh", 8, 0);
    }
    write_ifile(path, 2, 0, &l);
    ifile_part *parts = NULL;
    uint32_t n = 0;
    int iv;
    struct err e = {0};
    assert_int_equal(ifile_read_index(path, &parts, &n, &iv, &e), 0);
    /* Flip a bit inside a value of partition 1 (record 10: 2 header bytes, 6 key bytes, then
     * the value), so that the record still parses. */
    uint64_t at = parts[1].offset + 10 * 16 + 2 + 6 + 3;
    flip_byte(path, at, 0x01);

    /* Partition 0 is untouched and still reads cleanly. */
    kvs l0 = {0};
    for (size_t i = 0; i < 50; i++) kvs_add(&l0, 0, l.v[i].key, l.v[i].klen, l.v[i].val, 8, 0);
    expect_part(path, 0, 0, &l0);

    /* Partition 1 fails with a checksum error naming the file, and never ends cleanly. */
    ifile_seg *s = open_part(path, 1, 1);
    int rc;
    const char *kk, *vv;
    size_t kl, vl;
    int64_t ival;
    size_t got = 0;
    memset(&e, 0, sizeof e);
    while ((rc = ifile_seg_next(s, &kk, &kl, &vv, &vl, &ival, &e)) == 1) got++;
    assert_int_equal(rc, -EBADMSG);
    assert_true(got < 50);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "checksum"));
    ifile_seg_close(s);

    /* Without the check, the flipped byte comes through as data. */
    s = open_part(path, 1, 0);
    got = 0;
    int seen_flip = 0;
    while ((rc = ifile_seg_next(s, &kk, &kl, &vv, &vl, &ival, &e)) == 1) {
        if (got == 10) seen_flip = memcmp(vv, "abcefgh", 3) == 0 && vv[3] == ('d' ^ 1);
        got++;
    }
    assert_int_equal(rc, 0);
    assert_int_equal(got, 50);
    assert_true(seen_flip);
    ifile_seg_close(s);

    free(parts);
    kvs_free(&l);
    kvs_free(&l0);
}

static void test_ifile_crc_large_partition(void **state)
{
    (void)state;
    /* A partition larger than the read buffer: records before the damage come out, then the
     * error; the damage is never mistaken for a clean end. */
    char path[300];
    tmp_path(path, sizeof path);
    kvs l = {0};
    char k[32], v[64];
    memset(v, 'v', sizeof v);
    for (int i = 0; i < 20000; i++) {
        int kn = sprintf(k, "key%08d", i);
        kvs_add(&l, 0, k, (size_t)kn, v, sizeof v, 0);
    }
    write_ifile(path, 1, 0, &l);
    uint64_t size = file_size(path);
    flip_byte(path, size - 16 - 28 - 10, 0x40); /* inside the last record's value */
    ifile_seg *s = open_part(path, 0, 1);
    struct err e = {0};
    const char *kk, *vv;
    size_t kl, vl;
    int64_t ival;
    int rc;
    size_t got = 0;
    while ((rc = ifile_seg_next(s, &kk, &kl, &vv, &vl, &ival, &e)) == 1) got++;
    assert_int_equal(rc, -EBADMSG);
    assert_non_null(strstr(e.msg, "checksum"));
    assert_true(got > 0 && got < 20000);
    ifile_seg_close(s);
    kvs_free(&l);
}

static void test_ifile_truncated(void **state)
{
    (void)state;
    char path[300];
    tmp_path(path, sizeof path);
    kvs l = {0};
    kvs_add(&l, 0, "alpha", 5, "one", 3, 0);
    kvs_add(&l, 0, "beta", 4, "two", 3, 0);
    kvs_add(&l, 0, "gamma", 5, "three", 5, 0);
    write_ifile(path, 1, 0, &l);
    ifile_part *parts = NULL;
    uint32_t n;
    int iv;
    struct err e = {0};
    assert_int_equal(ifile_read_index(path, &parts, &n, &iv, &e), 0);
    uint64_t len = parts[0].length;
    free(parts);

    /* A range cut inside the last record (a fetched segment that came short). */
    ifile_seg *s = NULL;
    assert_int_equal(ifile_seg_open(&s, path, 0, len - 2, 0, 0, 0, &e), 0);
    const char *kk, *vv;
    size_t kl, vl;
    int64_t ival;
    assert_int_equal(ifile_seg_next(s, &kk, &kl, &vv, &vl, &ival, &e), 1);
    assert_int_equal(ifile_seg_next(s, &kk, &kl, &vv, &vl, &ival, &e), 1);
    memset(&e, 0, sizeof e);
    assert_int_equal(ifile_seg_next(s, &kk, &kl, &vv, &vl, &ival, &e), -EBADMSG);
    assert_non_null(strstr(e.msg, path));
    assert_non_null(strstr(e.msg, "truncated"));
    ifile_seg_close(s);

    /* A range cut right after a record's key length (inside the header). */
    assert_int_equal(ifile_seg_open(&s, path, 0, 1, 0, 0, 0, &e), 0);
    memset(&e, 0, sizeof e);
    assert_int_equal(ifile_seg_next(s, &kk, &kl, &vv, &vl, &ival, &e), -EBADMSG);
    ifile_seg_close(s);

    /* The file itself cut short: the trailer is gone. */
    assert_int_equal(truncate(path, (off_t)(file_size(path) - 1)), 0);
    memset(&e, 0, sizeof e);
    parts = NULL;
    assert_int_equal(ifile_read_index(path, &parts, &n, &iv, &e), -EBADMSG);
    assert_null(parts);
    assert_non_null(strstr(e.msg, path));

    /* A range that runs past the end of the file. */
    assert_int_equal(truncate(path, (off_t)(len - 3)), 0);
    assert_int_equal(ifile_seg_open(&s, path, 0, len, 0, 0, 0, &e), 0);
    int rc;
    while ((rc = ifile_seg_next(s, &kk, &kl, &vv, &vl, &ival, &e)) == 1) {
    }
    assert_int_equal(rc, -EBADMSG);
    assert_non_null(strstr(e.msg, "truncated"));
    ifile_seg_close(s);

    /* Files that are not intermediate files at all. */
    FILE *f = fopen(path, "w");
    fputs("this is not an intermediate file, just some text\n", f);
    fclose(f);
    memset(&e, 0, sizeof e);
    assert_int_equal(ifile_read_index(path, &parts, &n, &iv, &e), -EBADMSG);
    assert_non_null(strstr(e.msg, path));
    assert_int_equal(truncate(path, 3), 0);
    assert_int_equal(ifile_read_index(path, &parts, &n, &iv, &e), -EBADMSG);
    kvs_free(&l);
}

static void test_ifile_corrupt_trailer(void **state)
{
    (void)state;
    char path[300];
    tmp_path(path, sizeof path);
    kvs l = {0};
    kvs_add(&l, 0, "a", 1, "b", 1, 0);
    write_ifile(path, 1, 0, &l);
    /* The partition's length (trailer bytes 8..15) made huge: past the end of the file. */
    uint64_t size = file_size(path);
    flip_byte(path, size - 16 - 28 + 8 + 6, 0x10);
    ifile_part *parts = NULL;
    uint32_t n;
    int iv;
    struct err e = {0};
    assert_int_equal(ifile_read_index(path, &parts, &n, &iv, &e), -EBADMSG);
    assert_null(parts);
    assert_non_null(strstr(e.msg, "corrupt"));
    kvs_free(&l);
}

static void test_ifile_enospc_injected(void **state)
{
    (void)state;
    char path[300];
    tmp_path(path, sizeof path);
    setenv("TALLY_FAULT_ENOSPC_AFTER", "100", 1);
    ifile_fault_init();
    ifile_writer *w = NULL;
    struct err e = {0};
    assert_int_equal(ifile_writer_open(&w, path, 1, 0, &e), 0);
    char k[32];
    int rc = 0;
    for (int i = 0; i < 100 && rc == 0; i++) {
        int kn = sprintf(k, "key%04d", i);
        rc = ifile_writer_add(w, 0, k, (size_t)kn, "value", 5, &e);
    }
    assert_int_equal(rc, 0); /* buffered: nothing written yet */
    rc = ifile_writer_close(w, &e);
    setenv("TALLY_FAULT_ENOSPC_AFTER", "-1", 1);
    ifile_fault_init();
    assert_int_equal(rc, -ENOSPC);
    assert_non_null(strstr(e.msg, path));
    struct stat st;
    assert_int_not_equal(stat(path, &st), 0); /* no half-written file is left behind */

    /* With the fault off again, the same writes succeed. */
    kvs l = {0};
    kvs_add(&l, 0, "a", 1, "b", 1, 0);
    write_ifile(path, 1, 0, &l);
    expect_part(path, 0, 0, &l);
    kvs_free(&l);
}

/* ---- Merge ------------------------------------------------------------------------------- */

/* Writes each source as partition `part` of its own `nparts`-partition file (other
 * partitions hold decoys), opens the segments and returns the merge. */
static merge *merge_sources(kvs *srcs, size_t n, int int_values, uint32_t part, uint32_t nparts)
{
    ifile_seg **segs = calloc(n ? n : 1, sizeof *segs);
    for (size_t i = 0; i < n; i++) {
        char path[300];
        tmp_path(path, sizeof path);
        kvs f = {0};
        for (uint32_t p = 0; p < nparts; p++) {
            if (p == part) {
                for (size_t r = 0; r < srcs[i].n; r++) {
                    const kv *x = &srcs[i].v[r];
                    kvs_add(&f, p, x->key, x->klen, x->val, x->vlen, x->ival);
                }
            } else {
                kvs_add(&f, p, "decoy", 5, "decoy", 5, 999);
            }
        }
        write_ifile(path, nparts, int_values, &f);
        kvs_free(&f);
        segs[i] = open_part(path, part, 1);
    }
    merge *m = merge_new(segs, n, int_values);
    free(segs);
    return m;
}

/* Runs the merge to its end. Of group g, the first take(g) values are read (SIZE_MAX: all);
 * checks every key and read value against the model: all sources' records sorted by key,
 * source and position. */
static void expect_merge(merge *m, kvs *srcs, size_t n, int int_values, size_t (*take)(size_t))
{
    kvs all = {0};
    for (size_t i = 0; i < n; i++) {
        for (size_t r = 0; r < srcs[i].n; r++) {
            const kv *x = &srcs[i].v[r];
            kvs_add(&all, 0, x->key, x->klen, x->val, x->vlen, x->ival);
            all.v[all.n - 1].src = i;
            all.v[all.n - 1].seq = r;
        }
    }
    if (all.n > 1) qsort(all.v, all.n, sizeof *all.v, kv_cmp_merge);
    size_t pos = 0, group = 0;
    struct err e = {0};
    const char *key;
    size_t klen;
    tally_values *vals;
    int rc;
    while ((rc = merge_next_group(m, &key, &klen, &vals, &e)) == 1) {
        if (pos >= all.n) fail_msg("group %zu: more groups than the model", group);
        /* The group's key is the next distinct key of the model. */
        assert_int_equal(klen, all.v[pos].klen);
        if (klen) assert_memory_equal(key, all.v[pos].key, klen);
        size_t end = pos;
        while (end < all.n && key_cmp(all.v[end].key, all.v[end].klen, key, klen) == 0) end++;
        size_t want = take ? take(group) : SIZE_MAX;
        size_t i = pos;
        for (; i < end && (want == SIZE_MAX || i - pos < want); i++) {
            if (int_values) {
                int64_t v;
                rc = tally_values_next_int(vals, &v);
                assert_int_equal(rc, 1);
                assert_int_equal(v, all.v[i].ival);
            } else {
                const void *v;
                size_t vl;
                rc = tally_values_next(vals, &v, &vl);
                assert_int_equal(rc, 1);
                assert_int_equal(vl, all.v[i].vlen);
                if (vl) assert_memory_equal(v, all.v[i].val, vl);
            }
        }
        if (i == end && want == SIZE_MAX) {
            /* All values read: the iterator ends, and stays ended. */
            const void *v;
            size_t vl;
            int64_t iv;
            assert_int_equal(vals->next(vals, &v, &vl, &iv), 0);
            assert_int_equal(vals->next(vals, &v, &vl, &iv), 0);
        }
        pos = end;
        group++;
    }
    if (rc < 0) fail_msg("merge_next_group: %s", e.msg);
    assert_int_equal(rc, 0);
    assert_int_equal(pos, all.n);
    assert_int_equal(merge_next_group(m, &key, &klen, &vals, &e), 0); /* the end is sticky */
    assert_int_equal(merge_records(m), all.n);
    kvs_free(&all);
}

/* Keys that stress the order: empty, prefixes of each other, 0x00 and 0xff bytes. */
static const struct {
    const char *k;
    size_t n;
} edge_keys[] = {
    {"", 0},      {"\0", 1},     {"\0\0", 2},   {"\0\xff", 2}, {"a", 1},       {"a\0", 2},
    {"a\0\0", 3}, {"a\0b", 3},   {"ab", 2},     {"abc", 3},    {"abcd", 4},    {"a\x7f", 2},
    {"a\x80", 2}, {"a\xff", 2},  {"b", 1},      {"\x7f", 1},   {"\x80", 1},    {"\xff", 1},
    {"\xff\0", 2}, {"\xff\xff", 2}, {"\xff\xff\xff", 3},
};
#define NEDGE (sizeof edge_keys / sizeof edge_keys[0])

/* Builds sources from the edge keys: source s gets key i (count c times) when (i + s) % 3 != 0,
 * sorted by key as a writer must receive them. */
static void edge_sources(kvs *srcs, size_t n, int with_dups)
{
    char v[32];
    for (size_t s = 0; s < n; s++) {
        memset(&srcs[s], 0, sizeof srcs[s]);
        for (size_t i = 0; i < NEDGE; i++) {
            if ((i + s) % 3 == 0) continue;
            size_t copies = with_dups ? 1 + (i * 7 + s) % 3 : 1;
            for (size_t c = 0; c < copies; c++) {
                int vn = sprintf(v, "s%zu-k%zu-c%zu", s, i, c);
                kvs_add(&srcs[s], 0, edge_keys[i].k, edge_keys[i].n, v, (size_t)vn,
                        (int64_t)(s * 1000 + i * 10 + c) * (c % 2 ? -1 : 1));
                srcs[s].v[srcs[s].n - 1].seq = srcs[s].n - 1;
            }
        }
        if (srcs[s].n > 1) qsort(srcs[s].v, srcs[s].n, sizeof *srcs[s].v, kv_cmp_key);
    }
}

static void free_sources(kvs *srcs, size_t n)
{
    for (size_t i = 0; i < n; i++) kvs_free(&srcs[i]);
}

static void test_merge_edge_keys(void **state)
{
    (void)state;
    /* The model's order itself: each edge key sorts strictly after the previous. */
    for (size_t i = 1; i < NEDGE; i++)
        assert_true(key_cmp(edge_keys[i - 1].k, edge_keys[i - 1].n, edge_keys[i].k, edge_keys[i].n) < 0);
    kvs srcs[4];
    edge_sources(srcs, 4, 0);
    merge *m = merge_sources(srcs, 4, 0, 0, 1);
    expect_merge(m, srcs, 4, 0, NULL);
    merge_free(m);
    free_sources(srcs, 4);
}

static void test_merge_groups_all_values(void **state)
{
    (void)state;
    /* Duplicate keys within and across sources; the sources are partition 2 of 4-partition
     * files, so segment offsets matter. */
    kvs srcs[5];
    edge_sources(srcs, 5, 1);
    merge *m = merge_sources(srcs, 5, 0, 2, 4);
    expect_merge(m, srcs, 5, 0, NULL);
    merge_free(m);
    free_sources(srcs, 5);
}

static size_t take_cycle(size_t g)
{
    static const size_t pattern[] = {0, 1, SIZE_MAX, 2, 0, 0, 1, 3};
    return pattern[g % (sizeof pattern / sizeof pattern[0])];
}

static void test_merge_partial_values(void **state)
{
    (void)state;
    /* Groups whose values are not read, or read in part, are skipped correctly. */
    kvs srcs[3];
    edge_sources(srcs, 3, 1);
    merge *m = merge_sources(srcs, 3, 0, 0, 1);
    expect_merge(m, srcs, 3, 0, take_cycle);
    merge_free(m);
    free_sources(srcs, 3);

    /* None read at all. */
    edge_sources(srcs, 3, 1);
    m = merge_sources(srcs, 3, 1, 0, 1);
    size_t groups = 0;
    const char *key;
    size_t klen;
    tally_values *vals;
    struct err e = {0};
    while (merge_next_group(m, &key, &klen, &vals, &e) == 1) groups++;
    assert_int_equal(groups, NEDGE);
    size_t total = srcs[0].n + srcs[1].n + srcs[2].n;
    assert_int_equal(merge_records(m), total);
    merge_free(m);
    free_sources(srcs, 3);
}

static void test_merge_int_values(void **state)
{
    (void)state;
    kvs srcs[4];
    edge_sources(srcs, 4, 1);
    merge *m = merge_sources(srcs, 4, 1, 1, 3);
    expect_merge(m, srcs, 4, 1, NULL);
    merge_free(m);
    free_sources(srcs, 4);
}

static void test_merge_zero_and_empty_sources(void **state)
{
    (void)state;
    struct err e = {0};
    const char *key;
    size_t klen;
    tally_values *vals;
    merge *m = merge_new(NULL, 0, 0);
    assert_int_equal(merge_next_group(m, &key, &klen, &vals, &e), 0);
    assert_int_equal(merge_next_group(m, &key, &klen, &vals, &e), 0);
    assert_int_equal(merge_records(m), 0);
    merge_free(m);

    /* Empty sources among non-empty ones, and all empty. */
    kvs srcs[4] = {{0}};
    kvs_add(&srcs[1], 0, "k", 1, "v1", 2, 1);
    kvs_add(&srcs[3], 0, "k", 1, "v3", 2, 3);
    kvs_add(&srcs[3], 0, "l", 1, "v4", 2, 4);
    m = merge_sources(srcs, 4, 0, 0, 2);
    expect_merge(m, srcs, 4, 0, NULL);
    merge_free(m);
    free_sources(srcs, 4);

    kvs none[3] = {{0}};
    m = merge_sources(none, 3, 0, 1, 2);
    assert_int_equal(merge_next_group(m, &key, &klen, &vals, &e), 0);
    merge_free(m);
}

static void test_merge_single_source(void **state)
{
    (void)state;
    kvs src = {0};
    kvs_add(&src, 0, "a", 1, "1", 1, 0);
    kvs_add(&src, 0, "a", 1, "2", 1, 0);
    kvs_add(&src, 0, "a", 1, "3", 1, 0);
    kvs_add(&src, 0, "b", 1, "4", 1, 0);
    merge *m = merge_sources(&src, 1, 0, 0, 1);
    expect_merge(m, &src, 1, 0, NULL);
    merge_free(m);
    m = merge_sources(&src, 1, 0, 0, 1);
    expect_merge(m, &src, 1, 0, take_cycle);
    merge_free(m);
    kvs_free(&src);
}

static uint64_t rng_state = 0x243F6A8885A308D3ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

static size_t take_random(size_t g)
{
    (void)g;
    uint32_t r = rnd(5);
    return r == 4 ? SIZE_MAX : r;
}

static void test_merge_random(void **state)
{
    (void)state;
    static const char alphabet[] = {'\0', 'a', 'b', '\xff'};
    for (int iter = 0; iter < 60; iter++) {
        size_t n = 1 + rnd(8);
        int int_values = rnd(2);
        kvs srcs[8];
        for (size_t s = 0; s < n; s++) {
            memset(&srcs[s], 0, sizeof srcs[s]);
            size_t cnt = rnd(40);
            for (size_t r = 0; r < cnt; r++) {
                char k[4], v[8];
                size_t kl = rnd(4);
                for (size_t c = 0; c < kl; c++) k[c] = alphabet[rnd(4)];
                size_t vl = rnd(8);
                for (size_t c = 0; c < vl; c++) v[c] = (char)rnd(256);
                kvs_add(&srcs[s], 0, k, kl, v, vl, (int64_t)rnd(1u << 31) - (1 << 30));
                srcs[s].v[r].seq = r;
            }
            if (srcs[s].n > 1) qsort(srcs[s].v, srcs[s].n, sizeof *srcs[s].v, kv_cmp_key);
        }
        merge *m = merge_sources(srcs, n, int_values, 0, 1);
        expect_merge(m, srcs, n, int_values, iter % 2 ? take_random : NULL);
        merge_free(m);
        free_sources(srcs, n);
    }
}

static void test_merge_corrupt_source(void **state)
{
    (void)state;
    /* A damaged source surfaces as an error from the merge, never as a short result. */
    char good[300], bad[300];
    tmp_path(good, sizeof good);
    tmp_path(bad, sizeof bad);
    kvs l = {0};
    kvs_add(&l, 0, "a", 1, "xxxx", 4, 0);
    kvs_add(&l, 0, "b", 1, "yyyy", 4, 0);
    write_ifile(good, 1, 0, &l);
    write_ifile(bad, 1, 0, &l);
    flip_byte(bad, 4, 0x02); /* a value byte of the first record */
    ifile_seg *segs[2] = {open_part(good, 0, 1), open_part(bad, 0, 1)};
    merge *m = merge_new(segs, 2, 0);
    struct err e = {0};
    const char *key;
    size_t klen;
    tally_values *vals;
    int rc;
    int saw_error = 0;
    while ((rc = merge_next_group(m, &key, &klen, &vals, &e)) == 1) {
        const void *v;
        size_t vl;
        int r;
        while ((r = tally_values_next(vals, &v, &vl)) == 1) {
        }
        if (r < 0) {
            saw_error = 1;
            assert_non_null(strstr(merge_error(m)->msg, bad));
            break;
        }
    }
    if (rc < 0) {
        saw_error = 1;
        assert_non_null(strstr(e.msg, bad));
        assert_non_null(strstr(e.msg, "checksum"));
    }
    assert_true(saw_error);
    merge_free(m);
    kvs_free(&l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ifile_roundtrip_bytes),
        cmocka_unit_test(test_ifile_roundtrip_int),
        cmocka_unit_test(test_ifile_many_partitions),
        cmocka_unit_test(test_ifile_partition_order_enforced),
        cmocka_unit_test(test_ifile_close_after_error_fails),
        cmocka_unit_test(test_ifile_crc_mismatch),
        cmocka_unit_test(test_ifile_crc_large_partition),
        cmocka_unit_test(test_ifile_truncated),
        cmocka_unit_test(test_ifile_corrupt_trailer),
        cmocka_unit_test(test_ifile_enospc_injected),
        cmocka_unit_test(test_merge_edge_keys),
        cmocka_unit_test(test_merge_groups_all_values),
        cmocka_unit_test(test_merge_partial_values),
        cmocka_unit_test(test_merge_int_values),
        cmocka_unit_test(test_merge_zero_and_empty_sources),
        cmocka_unit_test(test_merge_single_source),
        cmocka_unit_test(test_merge_random),
        cmocka_unit_test(test_merge_corrupt_source),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
