/* mapbuf.c - map-side buffer: in-memory combining table or record list, sort, group iteration. */
#include "data/mapbuf.h"

#include <stdlib.h>
#include <string.h>
/* Inline xxHash from Debian's libxxhash-dev header: short keys hash without a library call. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/util.h"

/* Every record in the arena is [u32 klen][u32 vlen][key][value]; in sum mode the value is the
 * running int64 sum, updated in place. */
#define MB_HDR 8u
#define MB_TABLE_MIN 4096u

/* A sum-mode hash table slot: half a cache line holding the running sum and the first bytes of
 * the key, so that a lookup of a short key (most words) touches one line and not the arena.
 * Profiling word count showed the two dependent cache misses (slot, then arena key) taking
 * over 70% of map time. */
#define MB_INLINE 12u
typedef struct mb_slot {
    uint32_t tag;             /* high hash bits, never 0; 0 marks an empty slot */
    uint32_t off;             /* arena offset of the record (key bytes for sorting) */
    int64_t val;              /* the running sum */
    uint32_t klen;
    char key[MB_INLINE];      /* the key's first bytes, zero-padded */
} mb_slot;

#define MB_BATCH 16u
#define MB_BATCH_KEYS 1024u
typedef struct mb_pending {
    uint64_t hash;
    uint32_t koff, klen;      /* key bytes in mapbuf.bkeys */
    int64_t val;
} mb_pending;

typedef struct mb_ent {       /* sort index entry */
    uint64_t prefix;          /* first 8 key bytes, big-endian, zero-padded */
    uint32_t part;
    uint32_t off;
} mb_ent;

typedef struct mb_iter {
    struct tally_values base;
    mapbuf *mb;
    size_t cur, end;
} mb_iter;

struct mapbuf {
    uint32_t nparts;
    uint64_t limit;
    int int_values, sum_mode;
    uint32_t (*partition)(const void *, size_t, uint32_t, void *);
    void *pstate;

    char *arena;
    size_t alen, acap;

    mb_ent *idx;              /* list mode: appended per record; sum mode: built by sort */
    size_t nidx, idxcap;

    mb_slot *table;           /* sum mode only */
    size_t tcap, tused;
    mb_pending batch[MB_BATCH];
    unsigned nbatch;
    size_t bklen;
    char bkeys[MB_BATCH_KEYS];

    size_t group;             /* next index entry to group */
    mb_iter it;
};

static uint64_t mb_prefix(const char *k, size_t n)
{
    uint8_t b[8] = {0};
    memcpy(b, k, n < 8 ? n : 8);
    return (uint64_t)b[0] << 56 | (uint64_t)b[1] << 48 | (uint64_t)b[2] << 40 | (uint64_t)b[3] << 32 |
           (uint64_t)b[4] << 24 | (uint64_t)b[5] << 16 | (uint64_t)b[6] << 8 | (uint64_t)b[7];
}

static uint32_t mb_part(const mapbuf *mb, const void *key, size_t klen, uint64_t hash)
{
    if (mb->nparts == 1) return 0;
    if (mb->partition) return mb->partition(key, klen, mb->nparts, mb->pstate);
    return (uint32_t)(hash % mb->nparts);
}

uint32_t tally_hash_partition(const void *key, size_t klen, uint32_t nparts)
{
    return nparts <= 1 ? 0 : (uint32_t)(XXH3_64bits(key, klen) % nparts);
}

mapbuf *mapbuf_new(uint32_t nparts, uint64_t limit, int int_values, int sum_mode,
                   uint32_t (*partition)(const void *, size_t, uint32_t, void *), void *pstate)
{
    mapbuf *mb = xcalloc(1, sizeof *mb);
    mb->nparts = nparts ? nparts : 1;
    mb->limit = limit;
    mb->int_values = int_values || sum_mode;
    mb->sum_mode = sum_mode;
    mb->partition = partition;
    mb->pstate = pstate;
    if (sum_mode) {
        /* Start small enough that the table is at most a quarter of the budget. */
        mb->tcap = MB_TABLE_MIN;
        while (mb->tcap > 16 && mb->tcap * sizeof(mb_slot) * 4 > limit) mb->tcap /= 2;
        mb->table = xcalloc(mb->tcap, sizeof *mb->table);
    }
    return mb;
}

void mapbuf_free(mapbuf *mb)
{
    if (!mb) return;
    free(mb->arena);
    free(mb->idx);
    free(mb->table);
    free(mb);
}

/* Appends a record to the arena; returns its offset. */
static uint32_t mb_append(mapbuf *mb, const void *key, size_t klen, const void *val, size_t vlen)
{
    size_t need = MB_HDR + klen + vlen;
    if (mb->alen + need > mb->acap) {
        size_t cap = mb->acap ? mb->acap : 1u << 16;
        while (cap < mb->alen + need) cap *= 2;
        mb->arena = xrealloc(mb->arena, cap);
        mb->acap = cap;
    }
    uint32_t off = (uint32_t)mb->alen;
    uint32_t h[2] = {(uint32_t)klen, (uint32_t)vlen};
    char *p = mb->arena + off;
    memcpy(p, h, MB_HDR);
    memcpy(p + MB_HDR, key, klen);
    if (vlen) memcpy(p + MB_HDR + klen, val, vlen);
    mb->alen += need;
    return off;
}

static void mb_index(mapbuf *mb, uint32_t off, uint32_t part, const char *key, size_t klen)
{
    if (mb->nidx == mb->idxcap) {
        mb->idxcap = mb->idxcap ? mb->idxcap * 2 : 4096;
        mb->idx = xrealloc(mb->idx, mb->idxcap * sizeof *mb->idx);
    }
    mb->idx[mb->nidx++] = (mb_ent){.prefix = mb_prefix(key, klen), .part = part, .off = off};
}

int mapbuf_add(mapbuf *mb, const void *key, size_t klen, const void *val, size_t vlen)
{
    uint64_t hash = (mb->nparts > 1 && !mb->partition) ? XXH3_64bits(key, klen) : 0;
    uint32_t off = mb_append(mb, key, klen, val, vlen);
    mb_index(mb, off, mb_part(mb, key, klen, hash), key, klen);
    return mapbuf_full(mb);
}

static uint32_t mb_tag(uint64_t hash) { return (uint32_t)(hash >> 32) | 1u; }

static void mb_grow_table(mapbuf *mb)
{
    size_t ncap = mb->tcap * 2;
    mb_slot *nt = xcalloc(ncap, sizeof *nt);
    for (size_t i = 0; i < mb->tcap; i++) {
        const mb_slot *s = &mb->table[i];
        if (!s->tag) continue;
        const char *key = mb->arena + s->off + MB_HDR;
        size_t j = (size_t)XXH3_64bits(key, s->klen) & (ncap - 1);
        while (nt[j].tag) j = (j + 1) & (ncap - 1);
        nt[j] = *s;
    }
    free(mb->table);
    mb->table = nt;
    mb->tcap = ncap;
}

/* `pad` is the key's first MB_INLINE bytes, zero-padded: a fixed-size compare the compiler
 * turns into a few loads, where memcmp() of a variable length was a library call. */
static inline int mb_slot_matches(const mapbuf *mb, const mb_slot *s, uint32_t tag, const char *pad,
                                  const char *key, size_t klen)
{
    if (s->tag != tag || s->klen != klen || memcmp(s->key, pad, MB_INLINE) != 0) return 0;
    return klen <= MB_INLINE ||
           memcmp(mb->arena + s->off + MB_HDR + MB_INLINE, key + MB_INLINE, klen - MB_INLINE) == 0;
}

/* Folds one key into the table (the slot's line was prefetched when the key was batched). */
static void mb_sum_one(mapbuf *mb, uint64_t hash, const char *key, size_t klen, int64_t val)
{
    uint32_t tag = mb_tag(hash);
    char pad[MB_INLINE] = {0};
    memcpy(pad, key, klen < MB_INLINE ? klen : MB_INLINE);
    size_t mask = mb->tcap - 1, j = (size_t)hash & mask;
    for (;;) {
        mb_slot *s = &mb->table[j];
        if (!s->tag) break;
        if (mb_slot_matches(mb, s, tag, pad, key, klen)) {
            s->val = (int64_t)((uint64_t)s->val + (uint64_t)val); /* wraps like Java's long */
            return;
        }
        j = (j + 1) & mask;
    }
    int64_t zero = 0;
    mb_slot *s = &mb->table[j];
    s->tag = tag;
    s->off = mb_append(mb, key, klen, &zero, sizeof zero);
    s->val = val;
    s->klen = (uint32_t)klen;
    memcpy(s->key, pad, MB_INLINE);
    mb->tused++;
    /* Grow at 50% load while the budget allows; past it the buffer reports full instead. */
    if (mb->tused * 2 > mb->tcap &&
        mb->alen + mb->tused * sizeof(mb_ent) + mb->tcap * 2 * sizeof(mb_slot) <= mb->limit)
        mb_grow_table(mb);
}

static void mb_flush_batch(mapbuf *mb)
{
    for (unsigned i = 0; i < mb->nbatch; i++) {
        const mb_pending *p = &mb->batch[i];
        mb_sum_one(mb, p->hash, mb->bkeys + p->koff, p->klen, p->val);
    }
    mb->nbatch = 0;
    mb->bklen = 0;
}

int mapbuf_add_int(mapbuf *mb, const void *key, size_t klen, int64_t val)
{
    if (!mb->sum_mode) return mapbuf_add(mb, key, klen, &val, sizeof val);
    uint64_t hash = XXH3_64bits(key, klen);
    if (klen > MB_BATCH_KEYS / 4) {
        /* Long keys skip the batch (order does not matter to a sum). */
        mb_sum_one(mb, hash, key, klen, val);
        return mapbuf_full(mb);
    }
    if (mb->bklen + klen > MB_BATCH_KEYS) mb_flush_batch(mb);
    __builtin_prefetch(&mb->table[(size_t)hash & (mb->tcap - 1)], 1);
    memcpy(mb->bkeys + mb->bklen, key, klen);
    mb->batch[mb->nbatch++] = (mb_pending){.hash = hash, .koff = (uint32_t)mb->bklen,
                                           .klen = (uint32_t)klen, .val = val};
    mb->bklen += klen;
    if (mb->nbatch < MB_BATCH) return 0;
    mb_flush_batch(mb);
    return mapbuf_full(mb);
}

uint64_t mapbuf_bytes(const mapbuf *mb)
{
    size_t n = mb->sum_mode ? mb->tused : mb->nidx;
    return mb->alen + n * sizeof(mb_ent) + mb->tcap * sizeof(mb_slot);
}

int mapbuf_full(const mapbuf *mb)
{
    if (mapbuf_bytes(mb) >= mb->limit) return 1;
    /* A table at 75% load probes too long; it could not grow within the budget. */
    return mb->sum_mode && mb->tused * 4 >= mb->tcap * 3;
}

uint64_t mapbuf_records(mapbuf *mb)
{
    if (mb->nbatch) mb_flush_batch(mb);
    return mb->sum_mode ? mb->tused : mb->nidx;
}

/* ---- Sorting ----------------------------------------------------------------------------- */

static inline int mb_cmp(const mapbuf *mb, const mb_ent *a, const mb_ent *b)
{
    if (a->part != b->part) return a->part < b->part ? -1 : 1;
    if (a->prefix != b->prefix) return a->prefix < b->prefix ? -1 : 1;
    const char *ra = mb->arena + a->off, *rb = mb->arena + b->off;
    uint32_t la, lb;
    memcpy(&la, ra, 4);
    memcpy(&lb, rb, 4);
    if (la > 8 && lb > 8) {
        size_t n = (la < lb ? la : lb) - 8;
        int c = memcmp(ra + MB_HDR + 8, rb + MB_HDR + 8, n);
        if (c) return c;
    }
    return la < lb ? -1 : la > lb;
}

static void mb_isort(const mapbuf *mb, mb_ent *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        mb_ent x = v[i];
        size_t j = i;
        while (j > 0 && mb_cmp(mb, &x, &v[j - 1]) < 0) {
            v[j] = v[j - 1];
            j--;
        }
        v[j] = x;
    }
}

/* Quicksort with median-of-three pivots and insertion sort for short ranges; recursion on the
 * smaller side keeps the stack logarithmic. Profiling showed qsort()'s indirect comparator
 * call dominating spills of small keys, hence the hand-written loop over 16-byte entries. */
static void mb_qsort(const mapbuf *mb, mb_ent *v, size_t n)
{
    while (n > 24) {
        size_t m = n / 2;
        mb_ent *a = &v[0], *b = &v[m], *c = &v[n - 1];
        mb_ent *med;
        if (mb_cmp(mb, a, b) < 0)
            med = mb_cmp(mb, b, c) < 0 ? b : (mb_cmp(mb, a, c) < 0 ? c : a);
        else
            med = mb_cmp(mb, a, c) < 0 ? a : (mb_cmp(mb, b, c) < 0 ? c : b);
        mb_ent pivot = *med;
        size_t i = 0, j = n - 1;
        for (;;) {
            while (mb_cmp(mb, &v[i], &pivot) < 0) i++;
            while (mb_cmp(mb, &pivot, &v[j]) < 0) j--;
            if (i >= j) break;
            mb_ent t = v[i];
            v[i] = v[j];
            v[j] = t;
            i++;
            j--;
        }
        size_t left = j + 1;
        if (left < n - left) {
            mb_qsort(mb, v, left);
            v += left;
            n -= left;
        } else {
            mb_qsort(mb, v + left, n - left);
            n = left;
        }
    }
    mb_isort(mb, v, n);
}

void mapbuf_sort(mapbuf *mb)
{
    if (mb->sum_mode) {
        if (mb->nbatch) mb_flush_batch(mb);
        mb->nidx = 0;
        if (mb->idxcap < mb->tused) {
            free(mb->idx);
            mb->idxcap = mb->tused;
            mb->idx = xmalloc(mb->idxcap * sizeof *mb->idx);
        }
        for (size_t i = 0; i < mb->tcap; i++) {
            const mb_slot *s = &mb->table[i];
            if (!s->tag) continue;
            char *rec = mb->arena + s->off;
            const char *key = rec + MB_HDR;
            memcpy(rec + MB_HDR + s->klen, &s->val, sizeof s->val); /* the sum, for iteration */
            uint64_t hash = (mb->nparts > 1 && !mb->partition) ? XXH3_64bits(key, s->klen) : 0;
            mb->idx[mb->nidx++] = (mb_ent){.prefix = mb_prefix(key, s->klen),
                                           .part = mb_part(mb, key, s->klen, hash),
                                           .off = s->off};
        }
    }
    mb_qsort(mb, mb->idx, mb->nidx);
    mb->group = 0;
}

/* ---- Group iteration --------------------------------------------------------------------- */

static int mb_iter_next(struct tally_values *base, const void **val, size_t *vlen, int64_t *ival)
{
    mb_iter *it = (mb_iter *)base;
    if (it->cur >= it->end) return 0;
    const char *rec = it->mb->arena + it->mb->idx[it->cur++].off;
    uint32_t h[2];
    memcpy(h, rec, MB_HDR);
    const char *v = rec + MB_HDR + h[0];
    if (it->mb->int_values) {
        memcpy(ival, v, sizeof *ival);
        *val = NULL;
        *vlen = 0;
    } else {
        *val = v;
        *vlen = h[1];
    }
    return 1;
}

int mapbuf_next_group(mapbuf *mb, uint32_t *part, const char **key, size_t *klen, tally_values **vals)
{
    if (mb->group >= mb->nidx) return 0;
    size_t i = mb->group, j = i + 1;
    if (!mb->sum_mode) /* sum mode keys are already distinct */
        while (j < mb->nidx && mb_cmp(mb, &mb->idx[i], &mb->idx[j]) == 0) j++;
    const char *rec = mb->arena + mb->idx[i].off;
    uint32_t kl;
    memcpy(&kl, rec, 4);
    *part = mb->idx[i].part;
    *key = rec + MB_HDR;
    *klen = kl;
    mb->it = (mb_iter){.base = {.next = mb_iter_next, .int_values = mb->int_values},
                       .mb = mb, .cur = i, .end = j};
    *vals = &mb->it.base;
    mb->group = j;
    return 1;
}

void mapbuf_reset(mapbuf *mb)
{
    mb->alen = 0;
    mb->nidx = 0;
    mb->group = 0;
    if (mb->sum_mode) {
        memset(mb->table, 0, mb->tcap * sizeof *mb->table);
        mb->tused = 0;
    }
    /* Give back what a huge run left behind, so one skewed spill does not pin memory. */
    if (mb->acap > mb->limit) {
        free(mb->arena);
        mb->arena = NULL;
        mb->acap = 0;
    }
}
