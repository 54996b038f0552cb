/* index.c - the built-in inverted index: for each word, the input files that contain it. */
#include <stdlib.h>
#include <string.h>

#include <tally/tally.h>

#include "common/util.h"
#include "jobs/words.h"

extern const tally_job jobs_index;

static int index_map(tally_ctx *ctx, const tally_record *rec)
{
    const uint8_t *p = (const uint8_t *)rec->data, *end = p + rec->len;
    size_t flen = strlen(rec->file), n;
    const uint8_t *w;
    while ((w = words_next(&p, end, &n)) != NULL) {
        int rc = tally_emit(ctx, w, n, rec->file, flen);
        if (rc) return rc;
    }
    return 0;
}

typedef struct index_doc {
    const char *p;
    size_t n;
} index_doc;

static int index_cmp(const void *a, const void *b)
{
    const index_doc *x = a, *y = b;
    size_t n = x->n < y->n ? x->n : y->n;
    int c = memcmp(x->p, y->p, n);
    return c ? c : (x->n > y->n) - (x->n < y->n);
}

/* Collects the distinct values of a key, byte-sorted. Values are copied into `store` because
 * the iterator's pointers do not outlive the next call. */
static int index_collect(tally_values *vals, struct buf *store, index_doc **docs, size_t *ndocs)
{
    const void *v;
    size_t n, cnt = 0, cap = 0;
    size_t *offs = NULL, *lens = NULL;
    int rc;
    while ((rc = tally_values_next(vals, &v, &n)) == 1) {
        if (cnt == cap) {
            cap = cap ? cap * 2 : 16;
            offs = xrealloc(offs, cap * sizeof *offs);
            lens = xrealloc(lens, cap * sizeof *lens);
        }
        offs[cnt] = store->len;
        lens[cnt] = n;
        buf_append(store, v, n);
        cnt++;
    }
    index_doc *d = xmalloc((cnt ? cnt : 1) * sizeof *d);
    for (size_t i = 0; i < cnt; i++) d[i] = (index_doc){store->data + offs[i], lens[i]};
    free(offs);
    free(lens);
    qsort(d, cnt, sizeof *d, index_cmp);
    size_t u = 0;
    for (size_t i = 0; i < cnt; i++)
        if (u == 0 || index_cmp(&d[u - 1], &d[i]) != 0) d[u++] = d[i];
    *docs = d;
    *ndocs = u;
    return rc;
}

/* The combiner keeps one value per distinct file. */
static int index_combine(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals)
{
    struct buf store = {0};
    index_doc *d;
    size_t n;
    int rc = index_collect(vals, &store, &d, &n);
    for (size_t i = 0; i < n && rc == 0; i++) rc = tally_emit(ctx, key, klen, d[i].p, d[i].n);
    free(d);
    buf_free(&store);
    return rc;
}

static int index_reduce(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals)
{
    struct buf store = {0}, out = {0};
    index_doc *d;
    size_t n;
    int rc = index_collect(vals, &store, &d, &n);
    if (rc == 0) {
        buf_appendf(&out, "%zu ", n);
        for (size_t i = 0; i < n; i++) {
            if (i) buf_putc(&out, ',');
            buf_append(&out, d[i].p, d[i].n);
        }
        rc = tally_emit(ctx, key, klen, out.data, out.len);
    }
    free(d);
    buf_free(&store);
    buf_free(&out);
    return rc;
}

const tally_job jobs_index = {
    .abi_version = TALLY_ABI_VERSION,
    .name = "index",
    .description = "inverted index: for each word, the number and names of files containing it",
    .map = index_map,
    .combine = index_combine,
    .reduce = index_reduce,
};
