/* test_mapbuf.c - unit tests for the map-side buffer and the default partitioner
 * (src/data/mapbuf.c): sum and list modes against simple reference models. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"
#include "data/mapbuf.h"
#include "data/values.h"
#include "tally/tally.h"

/* ---- A reference model: records kept in a plain array, sorted with qsort ----------------- */

static int bytes_cmp(const char *a, size_t al, const char *b, size_t bl) { return key_cmp(a, al, b, bl); }

/* (partition, key), then the value, so that a group's values compare as a sorted multiset. */
static int ref_cmp(const void *pa, const void *pb)
{
    const kv *a = pa, *b = pb;
    if (a->part != b->part) return a->part < b->part ? -1 : 1;
    int c = key_cmp(a->key, a->klen, b->key, b->klen);
    if (c) return c;
    if (a->ival != b->ival) return a->ival < b->ival ? -1 : 1;
    return bytes_cmp(a->val, a->vlen, b->val, b->vlen);
}

/* One value as read from the buffer, for sorting a group's values. */
typedef struct got_val {
    const char *val;
    size_t vlen;
    int64_t ival;
} got_val;

static int got_cmp(const void *pa, const void *pb)
{
    const got_val *a = pa, *b = pb;
    if (a->ival != b->ival) return a->ival < b->ival ? -1 : 1;
    return bytes_cmp(a->val, a->vlen, b->val, b->vlen);
}

/* Sorts the buffer and checks its groups against the model: the same (partition, key) groups
 * in (partition, key) order, each with the same multiset of values. In sum mode the model must
 * hold one record per key with its sum. */
static void expect_groups(mapbuf *mb, kvs *r, int int_values)
{
    if (r->n > 1) qsort(r->v, r->n, sizeof *r->v, ref_cmp);
    mapbuf_sort(mb);
    size_t pos = 0, groups = 0;
    uint32_t part;
    const char *key;
    size_t klen;
    tally_values *vals;
    got_val *got = malloc((r->n ? r->n : 1) * sizeof *got);
    uint32_t prev_part = 0;
    const char *prev_key = NULL;
    size_t prev_klen = 0;
    while (mapbuf_next_group(mb, &part, &key, &klen, &vals)) {
        if (pos >= r->n) fail_msg("group %zu: more groups than the model", groups);
        const kv *w = &r->v[pos];
        if (part != w->part || key_cmp(key, klen, w->key, w->klen) != 0)
            fail_msg("group %zu: got partition %u key '%.*s' (%zu bytes), want %u '%.*s' (%zu)",
                     groups, part, (int)klen, key, klen, w->part, (int)w->klen, w->key, w->klen);
        /* Strictly increasing (partition, key): equal keys form one group. */
        if (groups > 0)
            assert_true(prev_part < part ||
                        (prev_part == part && key_cmp(prev_key, prev_klen, key, klen) < 0));
        size_t end = pos;
        while (end < r->n && r->v[end].part == part &&
               key_cmp(r->v[end].key, r->v[end].klen, key, klen) == 0)
            end++;
        size_t n = 0;
        const void *v;
        size_t vl;
        int64_t iv = 0;
        while (vals->next(vals, &v, &vl, &iv) == 1) {
            if (n >= end - pos) fail_msg("group %zu: more values than the model", groups);
            got[n++] = (got_val){int_values ? NULL : v, int_values ? 0 : vl, int_values ? iv : 0};
        }
        assert_int_equal(n, end - pos);
        if (n > 1) qsort(got, n, sizeof *got, got_cmp);
        for (size_t i = 0; i < n; i++) {
            const kv *x = &r->v[pos + i];
            if (int_values) {
                assert_int_equal(got[i].ival, x->ival);
            } else {
                assert_int_equal(got[i].vlen, x->vlen);
                if (x->vlen) assert_memory_equal(got[i].val, x->val, x->vlen);
            }
        }
        prev_part = part;
        prev_key = key; /* keys stay valid until mapbuf_reset */
        prev_klen = klen;
        pos = end;
        groups++;
    }
    assert_int_equal(pos, r->n);
    assert_int_equal(mapbuf_next_group(mb, &part, &key, &klen, &vals), 0);
    free(got);
}

/* ---- Keys that share prefixes around the 8-byte sort prefix and the 12 inline bytes ------- */

typedef struct keyset {
    char k[64][40];
    size_t n[64];
    size_t count;
} keyset;

static void keyset_add(keyset *s, const void *k, size_t n)
{
    assert_true(s->count < 64 && n <= 40);
    memcpy(s->k[s->count], k, n);
    s->n[s->count++] = n;
}

static void edge_keyset(keyset *s)
{
    memset(s, 0, sizeof *s);
    const char *base = "abcdefghijklmnopqrstuvwxyz0123456789";
    /* Every prefix length 0..20 of one string: each is a prefix of the next. */
    for (size_t n = 0; n <= 20; n++) keyset_add(s, base, n);
    /* Variants differing just before, at and after bytes 8 and 12. */
    static const size_t at[] = {6, 7, 8, 9, 10, 11, 12, 13, 16};
    for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
        char k[40];
        memcpy(k, base, 20);
        k[at[i]] = 'A';
        keyset_add(s, k, 20);
        k[at[i]] = '\xff';
        keyset_add(s, k, at[i] + 1);
    }
    /* Zero bytes: after a short key, padding the 8-byte prefix, past 8 and 12 bytes. */
    keyset_add(s, "abc\0", 4);
    keyset_add(s, "abc\0\0\0\0\0", 8);
    keyset_add(s, "abc\0\0\0\0\0\0", 9);
    keyset_add(s, "abcdefgh\0", 9);
    keyset_add(s, "abcdefgh\0\0\0\0\0", 13);
    keyset_add(s, "abcdefghijkl\0", 13);
    keyset_add(s, "\0", 1);
    keyset_add(s, "\0\0\0\0\0\0\0\0\0\0\0\0\0", 13);
    keyset_add(s, "\xff\xff\xff\xff\xff\xff\xff\xff\xff", 9);
    keyset_add(s, "\xff", 1);
    for (size_t i = 0; i < s->count; i++)
        for (size_t j = 0; j < i; j++)
            assert_true(s->n[i] != s->n[j] || memcmp(s->k[i], s->k[j], s->n[i]) != 0);
}

/* ---- List mode --------------------------------------------------------------------------- */

static void list_mode_edges(uint32_t nparts)
{
    keyset ks;
    edge_keyset(&ks);
    mapbuf *mb = mapbuf_new(nparts, 64u << 20, 0, 0, NULL, NULL);
    kvs r = {0};
    char v[32];
    /* Each key several times, interleaved, with distinct values (one empty). */
    for (int round = 0; round < 3; round++) {
        for (size_t i = 0; i < ks.count; i++) {
            size_t j = (i * 17 + (size_t)round * 5) % ks.count;
            int vn = round == 1 && j % 4 == 0 ? 0 : snprintf(v, sizeof v, "r%d-%zu", round, j);
            assert_int_equal(mapbuf_add(mb, ks.k[j], ks.n[j], v, (size_t)vn), 0);
            kvs_add(&r, tally_hash_partition(ks.k[j], ks.n[j], nparts), ks.k[j], ks.n[j], v,
                    (size_t)vn, 0);
        }
    }
    assert_int_equal(mapbuf_records(mb), 3 * ks.count);
    expect_groups(mb, &r, 0);
    kvs_free(&r);
    mapbuf_free(mb);
}

static void test_list_mode_edge_keys(void **state)
{
    (void)state;
    list_mode_edges(1);
    list_mode_edges(3);
    list_mode_edges(7);
}

static uint64_t rng_state = 0xD1B54A32D192ED03ull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

/* A random key from a small alphabet with long shared prefixes, 0..20 bytes. */
static size_t random_key(char *k)
{
    static const char alphabet[] = {'\0', 'a', 'b', '\xff'};
    size_t n = rnd(21);
    size_t shared = rnd(2) ? (n < 12 ? n : 12) : 0;
    for (size_t i = 0; i < n; i++) k[i] = i < shared ? 'p' : alphabet[rnd(4)];
    return n;
}

static void test_list_mode_random(void **state)
{
    (void)state;
    /* Enough records for the quicksort's partitioning (not only the insertion sort), with
     * many duplicates. */
    static const uint32_t parts[] = {1, 2, 5};
    for (size_t p = 0; p < 3; p++) {
        mapbuf *mb = mapbuf_new(parts[p], 256u << 20, 0, 0, NULL, NULL);
        kvs r = {0};
        for (int i = 0; i < 20000; i++) {
            char k[32], v[8];
            size_t kl = random_key(k);
            size_t vl = rnd(8);
            for (size_t c = 0; c < vl; c++) v[c] = (char)rnd(256);
            mapbuf_add(mb, k, kl, v, vl);
            kvs_add(&r, tally_hash_partition(k, kl, parts[p]), k, kl, v, vl, 0);
        }
        expect_groups(mb, &r, 0);
        kvs_free(&r);
        mapbuf_free(mb);
    }
}

static void test_list_mode_int_values(void **state)
{
    (void)state;
    /* TALLY_INT_VALUES without sum: values are kept one by one, not added up. */
    keyset ks;
    edge_keyset(&ks);
    mapbuf *mb = mapbuf_new(4, 64u << 20, 1, 0, NULL, NULL);
    kvs r = {0};
    static const int64_t vals[] = {0, -1, 1, INT64_MAX, INT64_MIN, 42};
    for (size_t i = 0; i < ks.count; i++) {
        for (size_t j = 0; j <= i % 6; j++) {
            mapbuf_add_int(mb, ks.k[i], ks.n[i], vals[j]);
            kvs_add(&r, tally_hash_partition(ks.k[i], ks.n[i], 4), ks.k[i], ks.n[i], NULL, 0,
                    vals[j]);
        }
    }
    assert_int_equal(mapbuf_records(mb), r.n);
    expect_groups(mb, &r, 1);
    kvs_free(&r);
    mapbuf_free(mb);
}

/* ---- Sum mode ---------------------------------------------------------------------------- */

/* A pool of keys for the sum tests: short, sharing their first 8, 12 or 16 bytes (the sort
 * prefix and the bytes a hash slot may hold inline), with 0x00 bytes, and some of 300 bytes. */
#define POOL 3000
static char *pool_key[POOL];
static size_t pool_len[POOL];

static void make_pool(void)
{
    for (size_t i = 0; i < POOL; i++) {
        char k[600];
        size_t n;
        switch (i % 7) {
        case 0: n = (size_t)sprintf(k, "w%zu", i); break;
        case 1: n = (size_t)sprintf(k, "abcdefghijkl%zu", i); break;       /* shared 12 bytes */
        case 2: n = (size_t)sprintf(k, "abcdefgh%zu", i); break;           /* shared 8 bytes */
        case 3: n = (size_t)sprintf(k, "abcdefghijk%c", (char)('A' + i % 50)); break;
        case 4:
            n = 300 + i % 7;
            memset(k, 'L', n);
            sprintf(k + n - 8, "%07zu", i);
            n = strlen(k);
            break;
        case 5: n = (size_t)sprintf(k, "abcdefghijklmnop%zu", i); break;   /* shared 16 bytes */
        default:
            n = (size_t)sprintf(k, "z%zu", i);
            k[0] = '\0';                                                    /* embedded 0x00 */
            break;
        }
        pool_key[i] = malloc(n);
        memcpy(pool_key[i], k, n);
        pool_len[i] = n;
    }
}

static void free_pool(void)
{
    for (size_t i = 0; i < POOL; i++) free(pool_key[i]);
}

/* The pool has duplicate keys by construction (case 3): the reference sums per distinct key,
 * found by sorting the pool. */
static void sum_reference(const int64_t *sums, uint32_t nparts, kvs *r,
                          uint32_t (*pf)(const void *, size_t, uint32_t, void *), void *pstate)
{
    kvs all = {0};
    for (size_t i = 0; i < POOL; i++) {
        uint32_t part = pf ? pf(pool_key[i], pool_len[i], nparts, pstate)
                           : tally_hash_partition(pool_key[i], pool_len[i], nparts);
        kvs_add(&all, part, pool_key[i], pool_len[i], NULL, 0, sums[i]);
    }
    if (all.n > 1) qsort(all.v, all.n, sizeof *all.v, ref_cmp);
    for (size_t i = 0; i < all.n;) {
        size_t j = i;
        int64_t s = 0;
        int used = 0;
        while (j < all.n && key_cmp(all.v[j].key, all.v[j].klen, all.v[i].key, all.v[i].klen) == 0) {
            if (all.v[j].ival != INT64_MIN) { /* INT64_MIN marks a pool entry never added */
                s = (int64_t)((uint64_t)s + (uint64_t)all.v[j].ival);
                used = 1;
            }
            j++;
        }
        if (used) kvs_add(r, all.v[i].part, all.v[i].key, all.v[i].klen, NULL, 0, s);
        i = j;
    }
    kvs_free(&all);
}

static void test_sum_mode_many_adds(void **state)
{
    (void)state;
    make_pool();
    static const uint32_t parts[] = {1, 7};
    for (size_t p = 0; p < 2; p++) {
        int64_t *sums = malloc(POOL * sizeof *sums);
        for (size_t i = 0; i < POOL; i++) sums[i] = INT64_MIN;
        mapbuf *mb = mapbuf_new(parts[p], 64u << 20, 1, 1, NULL, NULL);
        for (int n = 0; n < 200000; n++) {
            /* Skewed: a few keys very often, most rarely; some keys never. */
            size_t i = rnd(4) ? rnd(50) : rnd(POOL - 100);
            int64_t v = (int64_t)rnd(2001) - 1000;
            assert_int_equal(mapbuf_add_int(mb, pool_key[i], pool_len[i], v), 0);
            sums[i] = sums[i] == INT64_MIN ? v : sums[i] + v;
        }
        kvs r = {0};
        sum_reference(sums, parts[p], &r, NULL, NULL);
        assert_int_equal(mapbuf_records(mb), r.n);
        expect_groups(mb, &r, 1);
        kvs_free(&r);
        mapbuf_free(mb);
        free(sums);
    }
    free_pool();
}

static void test_sum_mode_edge_keys_and_wrap(void **state)
{
    (void)state;
    keyset ks;
    edge_keyset(&ks);
    mapbuf *mb = mapbuf_new(3, 64u << 20, 1, 1, NULL, NULL);
    kvs r = {0};
    for (size_t i = 0; i < ks.count; i++) {
        int64_t s = 0;
        for (size_t j = 0; j <= i % 5; j++) {
            mapbuf_add_int(mb, ks.k[i], ks.n[i], (int64_t)(i * 100 + j));
            s += (int64_t)(i * 100 + j);
        }
        kvs_add(&r, tally_hash_partition(ks.k[i], ks.n[i], 3), ks.k[i], ks.n[i], NULL, 0, s);
    }
    /* Sums wrap around like Java's long. */
    mapbuf_add_int(mb, "wrap", 4, INT64_MAX);
    mapbuf_add_int(mb, "wrap", 4, 2);
    kvs_add(&r, tally_hash_partition("wrap", 4, 3), "wrap", 4, NULL, 0, INT64_MIN + 1);
    mapbuf_add_int(mb, "zero", 4, 5);
    mapbuf_add_int(mb, "zero", 4, -5);
    kvs_add(&r, tally_hash_partition("zero", 4, 3), "zero", 4, NULL, 0, 0);
    assert_int_equal(mapbuf_records(mb), r.n);
    expect_groups(mb, &r, 1);
    kvs_free(&r);
    mapbuf_free(mb);
}

/* ---- Budget ------------------------------------------------------------------------------ */

static void test_list_mode_budget(void **state)
{
    (void)state;
    const uint64_t limit = 64 * 1024;
    mapbuf *mb = mapbuf_new(3, limit, 0, 0, NULL, NULL);
    for (int cycle = 0; cycle < 3; cycle++) {
        assert_false(mapbuf_full(mb));
        kvs r = {0};
        int full = 0;
        size_t n = 0;
        char k[32];
        while (!full) {
            int kn = sprintf(k, "c%d-key-%05zu", cycle, n++);
            full = mapbuf_add(mb, k, (size_t)kn, "some value bytes", 16);
            kvs_add(&r, tally_hash_partition(k, (size_t)kn, 3), k, (size_t)kn, "some value bytes",
                    16, 0);
            assert_int_equal(full, mapbuf_full(mb));
            assert_true(n < 100000);
        }
        assert_true(mapbuf_bytes(mb) >= limit);
        /* Not full much earlier than the budget: records of ~48 bytes each. */
        assert_true(n > limit / 64);
        /* Everything added is still there. */
        expect_groups(mb, &r, 0);
        kvs_free(&r);
        mapbuf_reset(mb);
        assert_int_equal(mapbuf_records(mb), 0);
        assert_false(mapbuf_full(mb));
    }
    mapbuf_free(mb);
}

static void test_sum_mode_budget(void **state)
{
    (void)state;
    const uint64_t limit = 64 * 1024;
    mapbuf *mb = mapbuf_new(2, limit, 1, 1, NULL, NULL);
    for (int cycle = 0; cycle < 3; cycle++) {
        assert_false(mapbuf_full(mb));
        kvs r = {0};
        int full = 0;
        size_t n = 0;
        char k[32];
        /* Repeated keys never fill the buffer... */
        for (int i = 0; i < 10000; i++) assert_int_equal(mapbuf_add_int(mb, "same", 4, 1), 0);
        kvs_add(&r, tally_hash_partition("same", 4, 2), "same", 4, NULL, 0, 10000);
        /* ...distinct keys do. */
        while (!full) {
            int kn = sprintf(k, "c%d-k%zu", cycle, n++);
            full = mapbuf_add_int(mb, k, (size_t)kn, (int64_t)n);
            kvs_add(&r, tally_hash_partition(k, (size_t)kn, 2), k, (size_t)kn, NULL, 0, (int64_t)n);
            assert_true(n < 200000);
        }
        assert_true(mapbuf_full(mb));
        assert_true(n > 16);
        assert_int_equal(mapbuf_records(mb), r.n);
        expect_groups(mb, &r, 1);
        kvs_free(&r);
        mapbuf_reset(mb);
        assert_int_equal(mapbuf_records(mb), 0);
    }
    mapbuf_free(mb);
}

/* ---- Partitioning ------------------------------------------------------------------------ */

static void test_hash_partition_spread(void **state)
{
    (void)state;
    static const uint32_t rs[] = {2, 7, 16};
    for (size_t t = 0; t < 3; t++) {
        uint32_t R = rs[t];
        uint64_t count[16] = {0};
        char k[32];
        for (int i = 0; i < 100000; i++) {
            int kn = sprintf(k, "key-%d", i);
            uint32_t p = tally_hash_partition(k, (size_t)kn, R);
            assert_true(p < R);
            count[p]++;
        }
        double mean = 100000.0 / R;
        for (uint32_t p = 0; p < R; p++)
            if (count[p] < mean * 0.9 || count[p] > mean * 1.1)
                fail_msg("R=%u: partition %u has %llu keys, mean %.0f", R, p,
                         (unsigned long long)count[p], mean);
    }
    /* Deterministic, and one partition means partition 0. */
    assert_int_equal(tally_hash_partition("abc", 3, 7), tally_hash_partition("abc", 3, 7));
    assert_int_equal(tally_hash_partition("abc", 3, 1), 0);
    assert_int_equal(tally_hash_partition("", 0, 1), 0);
    assert_true(tally_hash_partition("", 0, 5) < 5);
}

typedef struct custom_state {
    uint32_t calls;
    uint32_t bad_nparts;
} custom_state;

/* Partition by key length: easy to predict, far from the hash's choices. */
static uint32_t by_length(const void *key, size_t klen, uint32_t nparts, void *pstate)
{
    (void)key;
    custom_state *cs = pstate;
    cs->calls++;
    if (nparts != 5) cs->bad_nparts++;
    return (uint32_t)(klen % nparts);
}

static void test_custom_partitioner(void **state)
{
    (void)state;
    keyset ks;
    edge_keyset(&ks);
    for (int sum = 0; sum < 2; sum++) {
        custom_state cs = {0};
        mapbuf *mb = mapbuf_new(5, 64u << 20, sum, sum, by_length, &cs);
        kvs r = {0};
        for (size_t i = 0; i < ks.count; i++) {
            if (sum) {
                mapbuf_add_int(mb, ks.k[i], ks.n[i], (int64_t)i);
                kvs_add(&r, (uint32_t)(ks.n[i] % 5), ks.k[i], ks.n[i], NULL, 0, (int64_t)i);
            } else {
                mapbuf_add(mb, ks.k[i], ks.n[i], "v", 1);
                kvs_add(&r, (uint32_t)(ks.n[i] % 5), ks.k[i], ks.n[i], "v", 1, 0);
            }
        }
        expect_groups(mb, &r, sum);
        assert_true(cs.calls >= ks.count);
        assert_int_equal(cs.bad_nparts, 0);
        kvs_free(&r);
        mapbuf_free(mb);
    }
}

/* Fold mode: one accumulator per key (here a sum and a count of 16 bytes), 8-byte aligned
 * whatever the key length, surviving table growth, iterated once per key in (partition, key)
 * order with the accumulator as the value. */
typedef struct fold_acc {
    int64_t sum;
    uint64_t n;
} fold_acc;

static void test_fold_mode(void **state)
{
    (void)state;
    make_pool();
    static const uint32_t parts[] = {1, 5};
    for (size_t p = 0; p < 2; p++) {
        int64_t *sums = malloc(POOL * sizeof *sums);
        uint64_t *counts = calloc(POOL, sizeof *counts);
        for (size_t i = 0; i < POOL; i++) sums[i] = INT64_MIN;
        mapbuf *mb = mapbuf_new_fold(parts[p], 64u << 20, sizeof(fold_acc), NULL, NULL);
        assert_true(mapbuf_compatible(mb, parts[p], 64u << 20, 0, 0, sizeof(fold_acc), NULL, NULL));
        assert_false(mapbuf_compatible(mb, parts[p], 64u << 20, 0, 0, 0, NULL, NULL));
        /* The pool repeats some keys: count each under its first index. */
        size_t *canon = malloc(POOL * sizeof *canon);
        for (size_t i = 0; i < POOL; i++) {
            canon[i] = i;
            for (size_t j = 0; j < i; j++)
                if (pool_len[j] == pool_len[i] && memcmp(pool_key[j], pool_key[i], pool_len[i]) == 0) {
                    canon[i] = j;
                    break;
                }
        }
        for (int n = 0; n < 100000; n++) {
            size_t i = canon[rnd(4) ? rnd(40) : rnd(POOL)];
            int64_t v = (int64_t)rnd(2001) - 1000;
            int is_new;
            fold_acc *acc = mapbuf_fold_slot(mb, pool_key[i], pool_len[i], &is_new);
            assert_int_equal((uintptr_t)acc % 8, 0);
            assert_int_equal(is_new, sums[i] == INT64_MIN);
            if (is_new) {
                acc->sum = v;
                acc->n = 1;
                sums[i] = v;
            } else {
                acc->sum += v;
                acc->n++;
                sums[i] += v;
            }
            counts[i]++;
            assert_false(mapbuf_full(mb));
        }
        mapbuf_sort(mb);
        uint32_t part, prev_part = 0;
        const char *key, *prev = NULL;
        size_t klen, prev_len = 0, groups = 0;
        tally_values *vals;
        while (mapbuf_next_group(mb, &part, &key, &klen, &vals)) {
            if (groups++) assert_true(prev_part < part || (prev_part == part && key_cmp(prev, prev_len, key, klen) < 0));
            assert_int_equal(part, tally_hash_partition(key, klen, parts[p]));
            size_t i = 0;
            while (i < POOL && (pool_len[i] != klen || memcmp(pool_key[i], key, klen) != 0)) i++;
            assert_true(i < POOL);
            const void *v;
            size_t vl;
            int64_t iv;
            assert_int_equal(vals->next(vals, &v, &vl, &iv), 1);
            assert_int_equal(vl, sizeof(fold_acc));
            fold_acc a;
            memcpy(&a, v, sizeof a);
            assert_int_equal(a.sum, sums[i]);
            assert_int_equal(a.n, counts[i]);
            assert_int_equal(vals->next(vals, &v, &vl, &iv), 0);
            prev = key, prev_len = klen, prev_part = part;
        }
        size_t want = 0;
        for (size_t i = 0; i < POOL; i++) want += sums[i] != INT64_MIN;
        assert_int_equal(groups, want);
        assert_int_equal(mapbuf_records(mb), want);
        mapbuf_reset(mb);
        assert_int_equal(mapbuf_records(mb), 0);
        mapbuf_free(mb);
        free(canon);
        free(sums);
        free(counts);
    }
    free_pool();
}

/* A fold buffer reports full within its budget, however many distinct keys come. */
static void test_fold_mode_budget(void **state)
{
    (void)state;
    uint64_t limit = 256u << 10;
    mapbuf *mb = mapbuf_new_fold(2, limit, 64, NULL, NULL);
    char key[32];
    int full = 0;
    for (int i = 0; i < 100000 && !full; i++) {
        int n = snprintf(key, sizeof key, "key-%d", i), is_new;
        memset(mapbuf_fold_slot(mb, key, (size_t)n, &is_new), 0, 64);
        assert_true(is_new);
        full = mapbuf_full(mb);
    }
    assert_true(full);
    assert_true(mapbuf_bytes(mb) <= limit + 4096);
    mapbuf_free(mb);
}

/* mapbuf_add_int_many, with and without the padded loads, sums exactly as mapbuf_add_int. */
static void test_sum_mode_add_many(void **state)
{
    (void)state;
    make_pool();
    /* Keys copied into one padded buffer, so the padded path may over-read safely. */
    char *arena = calloc(1, POOL * 128 + 64);
    const void **keys = malloc(POOL * sizeof *keys);
    size_t *lens = malloc(POOL * sizeof *lens);
    for (int padded = 0; padded < 2; padded++) {
        mapbuf *a = mapbuf_new(3, 64u << 20, 1, 1, NULL, NULL);
        mapbuf *b = mapbuf_new(3, 64u << 20, 1, 1, NULL, NULL);
        size_t n = 0, at = 0;
        for (int k = 0; k < 20000; k++) {
            size_t i = rnd(POOL);
            if (pool_len[i] > 100) continue;
            memcpy(arena + at, pool_key[i], pool_len[i]);
            memset(arena + at + pool_len[i], 'x', 16); /* garbage after the key must not count */
            keys[n] = arena + at;
            lens[n] = pool_len[i];
            at += pool_len[i] + 16;
            mapbuf_add_int(a, pool_key[i], pool_len[i], 3);
            if (++n == POOL || at > POOL * 128 - 200) {
                assert_int_equal(mapbuf_add_int_many(b, keys, lens, n, 3, padded), n);
                n = at = 0;
            }
        }
        assert_int_equal(mapbuf_add_int_many(b, keys, lens, n, 3, padded), n);
        assert_int_equal(mapbuf_records(a), mapbuf_records(b));
        mapbuf_sort(a);
        mapbuf_sort(b);
        uint32_t pa, pb;
        const char *ka, *kb;
        size_t la, lb;
        tally_values *va, *vb;
        while (mapbuf_next_group(a, &pa, &ka, &la, &va)) {
            assert_true(mapbuf_next_group(b, &pb, &kb, &lb, &vb));
            assert_int_equal(pa, pb);
            assert_int_equal(key_cmp(ka, la, kb, lb), 0);
            const void *v;
            size_t vl;
            int64_t ia, ib;
            assert_int_equal(va->next(va, &v, &vl, &ia), 1);
            assert_int_equal(vb->next(vb, &v, &vl, &ib), 1);
            assert_int_equal(ia, ib);
        }
        assert_false(mapbuf_next_group(b, &pb, &kb, &lb, &vb));
        mapbuf_free(a);
        mapbuf_free(b);
    }
    free(arena);
    free(keys);
    free(lens);
    free_pool();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_list_mode_edge_keys),
        cmocka_unit_test(test_list_mode_random),
        cmocka_unit_test(test_list_mode_int_values),
        cmocka_unit_test(test_sum_mode_many_adds),
        cmocka_unit_test(test_sum_mode_edge_keys_and_wrap),
        cmocka_unit_test(test_list_mode_budget),
        cmocka_unit_test(test_sum_mode_budget),
        cmocka_unit_test(test_hash_partition_spread),
        cmocka_unit_test(test_custom_partitioner),
        cmocka_unit_test(test_fold_mode),
        cmocka_unit_test(test_fold_mode_budget),
        cmocka_unit_test(test_sum_mode_add_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
