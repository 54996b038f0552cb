/* fuzz_reader.c - libFuzzer target for the record reader (src/data/reader.c), the decoder of
 * input files: CSV records and the scan that places CSV split edges, lines, and gzip streams.
 *
 * The first byte picks the file's kind (CSV, text, or a .gz file of CSV whose bytes are the
 * input itself), the number of splits M (1 to 16) and --max-record; the rest is the file.
 * Beyond not crashing, it checks the reader's promise: the splits of any M read exactly the
 * records of one split, in order, or one of them fails with -EBADMSG (a split edge the scan
 * misjudged, bad gzip data); they never read a record twice or lose one. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "data/input.h"
#include "data/reader.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct fuzz_recs {
    uint64_t *off;
    size_t *len;  /* SIZE_MAX: too long */
    char **data;
    size_t n, cap;
} fuzz_recs;

static void fuzz_recs_free(fuzz_recs *r)
{
    for (size_t i = 0; i < r->n; i++) free(r->data[i]);
    free(r->off);
    free(r->len);
    free(r->data);
    memset(r, 0, sizeof *r);
}

static void fuzz_recs_add(fuzz_recs *r, uint64_t off, const char *d, size_t len, int too_long)
{
    if (r->n == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 64;
        r->off = xrealloc(r->off, r->cap * sizeof *r->off);
        r->len = xrealloc(r->len, r->cap * sizeof *r->len);
        r->data = xrealloc(r->data, r->cap * sizeof *r->data);
    }
    r->off[r->n] = off;
    r->len[r->n] = too_long ? SIZE_MAX : len;
    r->data[r->n] = xmalloc(too_long ? 1 : len + 1);
    if (!too_long && len) memcpy(r->data[r->n], d, len);
    r->n++;
}

/* Reads every split of the plan for M; returns 0 or the first reader error. */
static int fuzz_read(const char *path, uint64_t m, uint64_t max_record, fuzz_recs *out)
{
    char *args[] = {(char *)path};
    input_set in;
    struct err e = {0};
    if (input_expand(args, 1, NULL, 0, FIELDS_TEXT, &in, &e) != 0) abort();
    input_plan(&in, m, 0, 0);
    int rc = 0;
    for (size_t k = 0; k < in.nsplits && rc == 0; k++) {
        for (size_t i = 0; i < in.splits[k].nsegs && rc == 0; i++) {
            const input_segment *seg = &in.splits[k].segs[i];
            reader *r = NULL;
            rc = reader_open(&r, &in.files[seg->file], seg, max_record, &e);
            if (rc) break;
            const char *d;
            size_t n;
            uint64_t off;
            while ((rc = reader_next(r, &d, &n, &off, &e)) > 0) {
                if (off < seg->start && !in.files[0].gz) abort(); /* before its split */
                fuzz_recs_add(out, off, d, n, rc == READER_TOO_LONG);
            }
            reader_close(r);
        }
    }
    if (rc < 0 && rc != -EBADMSG) abort();
    /* A CSV header that is too long or does not parse is bad data whatever M is: told apart
     * from a misjudged split edge, which only M > 1 can meet. */
    if (rc == -EBADMSG && strstr(e.msg, "CSV header")) rc = -EINVAL;
    input_set_free(&in);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64];
    if (!dir[0]) {
        strcpy(dir, "/tmp/fuzz_reader.XXXXXX");
        if (!mkdtemp(dir)) abort();
    }
    if (size < 1) return 0;
    static const char *const names[] = {"in.csv", "in.txt", "in.csv.gz", "in.csv"};
    unsigned kind = data[0] & 3, m = 1 + ((data[0] >> 2) & 15);
    uint64_t max_record = data[0] & 0x40 ? 64 : UINT64_MAX;
    char path[128];
    snprintf(path, sizeof path, "%s/%s", dir, names[kind]);
    FILE *f = fopen(path, "wb");
    if (!f) abort();
    if (size > 1 && fwrite(data + 1, 1, size - 1, f) != size - 1) abort();
    fclose(f);

    fuzz_recs whole = {0}, split = {0};
    int rc1 = fuzz_read(path, 1, max_record, &whole);
    int rcm = fuzz_read(path, m, max_record, &split);
    if (rc1 == 0 && rcm == 0) {
        if (whole.n != split.n) abort();
        for (size_t i = 0; i < whole.n; i++) {
            if (whole.off[i] != split.off[i] || whole.len[i] != split.len[i]) abort();
            if (whole.len[i] != SIZE_MAX && memcmp(whole.data[i], split.data[i], whole.len[i]) != 0) abort();
        }
    }
    if (rc1 == -EBADMSG && kind != 2) abort(); /* one split has no edge to misjudge */
    fuzz_recs_free(&whole);
    fuzz_recs_free(&split);
    unlink(path);
    return 0;
}
