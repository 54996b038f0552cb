/* merge.c - heap-based k-way merge of sorted segments with per-key value iteration. */
#include "data/merge.h"

#include <stdlib.h>
#include <string.h>

typedef struct merge_src {
    ifile_seg *seg;
    const char *key, *val;
    size_t klen, vlen;
    int64_t ival;
    size_t index;
} merge_src;

typedef struct merge_iter {
    struct tally_values base;
    merge *m;
} merge_iter;

struct merge {
    merge_src *srcs;
    merge_src **heap;      /* live sources, heap-ordered */
    size_t nsrc, nheap;
    int int_values;
    int started;
    merge_src *pending;    /* source whose current value was handed out; advance it next */
    struct buf key;        /* the current group's key */
    int in_group;
    merge_iter it;
    struct err err;
    uint64_t records;
};

static int merge_less(const merge_src *a, const merge_src *b)
{
    size_t n = a->klen < b->klen ? a->klen : b->klen;
    int c = memcmp(a->key, b->key, n);
    if (c) return c < 0;
    if (a->klen != b->klen) return a->klen < b->klen;
    return a->index < b->index;
}

static void merge_sift_down(merge *m, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, s = i;
        if (l < m->nheap && merge_less(m->heap[l], m->heap[s])) s = l;
        if (r < m->nheap && merge_less(m->heap[r], m->heap[s])) s = r;
        if (s == i) return;
        merge_src *t = m->heap[i];
        m->heap[i] = m->heap[s];
        m->heap[s] = t;
        i = s;
    }
}

/* Reads the next record of the source at the heap top and restores the heap. */
static int merge_advance_top(merge *m)
{
    merge_src *s = m->heap[0];
    int rc = ifile_seg_next(s->seg, &s->key, &s->klen, &s->val, &s->vlen, &s->ival, &m->err);
    if (rc < 0) return rc;
    if (rc == 0) {
        m->heap[0] = m->heap[--m->nheap];
    } else {
        m->records++;
    }
    if (m->nheap) merge_sift_down(m, 0);
    return 0;
}

merge *merge_new(ifile_seg **segs, size_t n, int int_values)
{
    merge *m = xcalloc(1, sizeof *m);
    m->srcs = xcalloc(n ? n : 1, sizeof *m->srcs);
    m->heap = xcalloc(n ? n : 1, sizeof *m->heap);
    m->nsrc = n;
    m->int_values = int_values;
    for (size_t i = 0; i < n; i++) {
        m->srcs[i].seg = segs[i];
        m->srcs[i].index = i;
    }
    return m;
}

static int merge_start(merge *m)
{
    m->started = 1;
    for (size_t i = 0; i < m->nsrc; i++) {
        merge_src *s = &m->srcs[i];
        int rc = ifile_seg_next(s->seg, &s->key, &s->klen, &s->val, &s->vlen, &s->ival, &m->err);
        if (rc < 0) return rc;
        if (rc > 0) {
            m->heap[m->nheap++] = s;
            m->records++;
        }
    }
    for (size_t i = m->nheap / 2; i-- > 0;) merge_sift_down(m, i);
    return 0;
}

static int merge_top_matches(const merge *m)
{
    if (m->nheap == 0) return 0;
    const merge_src *t = m->heap[0];
    return t->klen == m->key.len && memcmp(t->key, m->key.data, t->klen) == 0;
}

static int merge_iter_next(struct tally_values *base, const void **val, size_t *vlen, int64_t *ival)
{
    merge *m = ((merge_iter *)base)->m;
    if (m->pending) {
        m->pending = NULL;
        int rc = merge_advance_top(m);
        if (rc < 0) {
            base->error = rc;
            return rc;
        }
    }
    if (!m->in_group || !merge_top_matches(m)) {
        m->in_group = 0;
        return 0;
    }
    merge_src *t = m->heap[0];
    *val = t->val;
    *vlen = t->vlen;
    *ival = t->ival;
    m->pending = t;
    return 1;
}

int merge_next_group(merge *m, const char **key, size_t *klen, tally_values **vals, struct err *e)
{
    int rc;
    if (!m->started && (rc = merge_start(m)) < 0) goto fail;
    /* Skip what the caller left of the previous group. */
    if (m->in_group) {
        const void *v;
        size_t vl;
        int64_t iv;
        while ((rc = merge_iter_next(&m->it.base, &v, &vl, &iv)) > 0) {
        }
        if (rc < 0) goto fail;
    }
    if (m->pending) {
        m->pending = NULL;
        if ((rc = merge_advance_top(m)) < 0) goto fail;
    }
    if (m->nheap == 0) return 0;
    m->key.len = 0;
    buf_append(&m->key, m->heap[0]->key, m->heap[0]->klen);
    m->in_group = 1;
    m->it = (merge_iter){.base = {.next = merge_iter_next, .int_values = m->int_values}, .m = m};
    *key = m->key.data;
    *klen = m->key.len;
    *vals = &m->it.base;
    return 1;
fail:
    if (e) *e = m->err;
    return rc;
}

const struct err *merge_error(const merge *m) { return &m->err; }

uint64_t merge_records(const merge *m) { return m->records; }

void merge_free(merge *m)
{
    if (!m) return;
    for (size_t i = 0; i < m->nsrc; i++) ifile_seg_close(m->srcs[i].seg);
    free(m->srcs);
    free(m->heap);
    buf_free(&m->key);
    free(m);
}
