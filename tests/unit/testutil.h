/* testutil.h - helpers shared by the unit tests: a private temporary directory per test binary,
 * the engine's key order and a model list of records. Everything is static inline so a test includes only what it uses
 * without unused-function warnings. */
#ifndef TALLY_TESTUTIL_H
#define TALLY_TESTUTIL_H

#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "common/util.h"

/* The directory itself, and a counter for unique names inside it. */
static inline char *testutil_root(void)
{
    static char root[256];
    return root;
}

static inline unsigned *testutil_seq(void)
{
    static unsigned seq;
    return &seq;
}

static inline unsigned testutil_next(void) { return (*testutil_seq())++; }

/* Creates $TMPDIR/tally_<name>_XXXXXX; use from a cmocka group setup. Returns 0 or -1. */
static inline int testutil_make_root(const char *name)
{
    const char *t = getenv("TMPDIR");
    snprintf(testutil_root(), 256, "%s/tally_%s_XXXXXX", t && *t ? t : "/tmp", name);
    return mkdtemp(testutil_root()) ? 0 : -1;
}

static inline int testutil_rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

/* Removes the directory and everything in it; use from a cmocka group teardown. */
static inline int testutil_remove_root(void)
{
    return nftw(testutil_root(), testutil_rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* The intermediate order: bytes in memcmp order, a key before every longer key it prefixes. */
static inline int key_cmp(const char *a, size_t al, const char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

/* A list of (partition, key, value) records, the model the tests compare the engine with. */
typedef struct kv {
    uint32_t part;
    char *key, *val;  /* NUL-terminated copies */
    size_t klen, vlen;
    int64_t ival;     /* int values, or a sum */
    size_t src, seq;  /* for merge models: which source, position in it */
} kv;

typedef struct kvs {
    kv *v;
    size_t n, cap;
} kvs;

static inline void kvs_add(kvs *l, uint32_t part, const void *key, size_t klen, const void *val, size_t vlen,
                           int64_t ival)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    kv *x = &l->v[l->n++];
    memset(x, 0, sizeof *x);
    x->part = part;
    x->key = xmalloc(klen + 1);
    x->val = xmalloc(vlen + 1);
    if (klen) memcpy(x->key, key, klen);
    if (vlen) memcpy(x->val, val, vlen);
    x->key[klen] = x->val[vlen] = '\0';
    x->klen = klen;
    x->vlen = vlen;
    x->ival = ival;
}

static inline void kvs_free(kvs *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->v[i].key);
        free(l->v[i].val);
    }
    free(l->v);
    memset(l, 0, sizeof *l);
}

#endif
