/* testutil.h - helpers shared by the unit tests: a private temporary directory per test binary
 * and the engine's key order. Everything is static inline so a test includes only what it uses
 * without unused-function warnings. */
#ifndef TALLY_TESTUTIL_H
#define TALLY_TESTUTIL_H

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

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

#endif
