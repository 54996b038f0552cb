/* mapbuf.c - map-side buffer: in-memory combining table or record list, sort, group iteration. */
#include "data/mapbuf.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
/* Inline xxHash from Debian's libxxhash-dev header: short keys hash without a library call. */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "common/util.h"

/* Every record in the arena is [u32 klen][u32 vlen][key][value]; in sum mode the value is the
 * running int64 sum, updated in place. */
#define MB_HDR 8u
#define MB_TABLE_MIN 4096u

/* A sum-mode hash table slot: half a cache line holding the running sum and, for keys of up to
 * 16 bytes (most words), the whole key zero-padded in two words, so that a lookup compares
 * three integers and touches no other memory. Keys of up to 16 bytes also get their own cheap
 * hash. Profiling word count showed the two dependent cache misses (slot, then arena key) and
 * the library calls around them (xxHash, memcmp, memcpy per word) taking most of map time. */
#define MB_SHORT 16u
typedef struct mb_slot {
    uint32_t tag;             /* high hash bits | length class; 0 marks an empty slot */
    uint32_t off;             /* arena offset of the record (the key bytes, for sorting) */
    int64_t val;              /* the running sum */
    uint64_t k0, k1;          /* the key's first 16 bytes, zero-padded */
} mb_slot;

#define MB_BATCH 32u
typedef struct mb_pending {   /* a short-key add waiting for its prefetched slot */
    uint64_t hash, k0, k1;
    uint32_t klen;
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
    size_t fold_size;         /* fold mode: the accumulator size; 0 otherwise */
    int table_mode;           /* sum or fold mode: keys live in the hash table */
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

/* Loads a key of up to 16 bytes into two zero-padded little-endian words, with fixed-size
 * (possibly overlapping) loads that never read outside the key. */
static inline void mb_load16(const uint8_t *p, size_t n, uint64_t *k0, uint64_t *k1)
{
    uint64_t a = 0, b = 0;
    if (n >= 8) {
        memcpy(&a, p, 8);
        if (n > 8) {
            memcpy(&b, p + n - 8, 8);
            b >>= 8 * (16 - n);
        }
    } else if (n >= 4) {
        uint32_t x, y;
        memcpy(&x, p, 4);
        memcpy(&y, p + n - 4, 4);
        a = x | ((uint64_t)y << (8 * (n - 4)));
    } else if (n > 0) {
        a = p[0] | ((uint64_t)p[n >> 1] << (8 * (n >> 1))) | ((uint64_t)p[n - 1] << (8 * (n - 1)));
    }
    *k0 = a;
    *k1 = b;
}

/* A multiply-fold hash of a short key (the shape of XXH3's short-input path), finished with
 * a splitmix avalanche so that both the low bits (table index) and high bits (tag) are good. */
static inline uint64_t mb_hash16(uint64_t k0, uint64_t k1, size_t n)
{
    unsigned __int128 m = (unsigned __int128)(k0 ^ 0x9E3779B97F4A7C15ull) *
                          (k1 ^ 0xC2B2AE3D27D4EB4Full ^ (uint64_t)n);
    uint64_t h = (uint64_t)m ^ (uint64_t)(m >> 64);
    h ^= h >> 31;
    h *= 0xBF58476D1CE4E5B9ull;
    return h ^ (h >> 29);
}

static inline uint64_t mb_key_hash(const char *key, size_t klen)
{
    if (klen > MB_SHORT) return XXH3_64bits(key, klen);
    uint64_t k0, k1;
    mb_load16((const uint8_t *)key, klen, &k0, &k1);
    return mb_hash16(k0, k1, klen);
}

/* The tag keeps 27 hash bits and a length class in the low 5 bits: 1 + klen for short keys
 * (so two zero-padded keys of different lengths never match), 18 for long ones. */
static inline uint32_t mb_tag(uint64_t hash, size_t klen)
{
    return ((uint32_t)(hash >> 32) & ~31u) | (uint32_t)(klen <= MB_SHORT ? klen + 1 : MB_SHORT + 2);
}

/* Allocates a zeroed table. Tables of 2 MiB and more are 2 MiB-aligned and marked for
 * transparent huge pages: with 4 KiB pages nearly every probe of a large table also missed
 * the TLB, and perf showed the prefetch instruction itself stalling on the page walk. */
static mb_slot *mb_table_alloc(size_t cap)
{
    size_t bytes = cap * sizeof(mb_slot);
    if (bytes < (2u << 20)) return xcalloc(cap, sizeof(mb_slot));
    void *p = NULL;
    if (posix_memalign(&p, 2u << 20, bytes) != 0) return xcalloc(cap, sizeof(mb_slot));
    madvise(p, bytes, MADV_HUGEPAGE);
    memset(p, 0, bytes);
    return p;
}

static mapbuf *mb_new(uint32_t nparts, uint64_t limit, int int_values, int sum_mode, size_t fold_size,
                     uint32_t (*partition)(const void *, size_t, uint32_t, void *), void *pstate)
{
    mapbuf *mb = xcalloc(1, sizeof *mb);
    mb->nparts = nparts ? nparts : 1;
    mb->limit = limit;
    mb->int_values = int_values || sum_mode;
    mb->sum_mode = sum_mode;
    mb->fold_size = fold_size;
    mb->table_mode = sum_mode || fold_size;
    mb->partition = partition;
    mb->pstate = pstate;
    if (mb->table_mode) {
        /* Start small enough that the table is at most a quarter of the budget. */
        mb->tcap = MB_TABLE_MIN;
        while (mb->tcap > 16 && mb->tcap * sizeof(mb_slot) * 4 > limit) mb->tcap /= 2;
        mb->table = mb_table_alloc(mb->tcap);
    }
    return mb;
}

mapbuf *mapbuf_new(uint32_t nparts, uint64_t limit, int int_values, int sum_mode,
                   uint32_t (*partition)(const void *, size_t, uint32_t, void *), void *pstate)
{
    return mb_new(nparts, limit, int_values, sum_mode, 0, partition, pstate);
}

mapbuf *mapbuf_new_fold(uint32_t nparts, uint64_t limit, size_t acc_size,
                        uint32_t (*partition)(const void *, size_t, uint32_t, void *), void *pstate)
{
    return mb_new(nparts, limit, 0, 0, acc_size, partition, pstate);
}

int mapbuf_compatible(const mapbuf *mb, uint32_t nparts, uint64_t limit, int int_values, int sum_mode,
                      size_t acc_size, uint32_t (*partition)(const void *, size_t, uint32_t, void *),
                      void *pstate)
{
    return mb->nparts == (nparts ? nparts : 1) && mb->limit == limit &&
           mb->int_values == ((int_values || sum_mode) && !acc_size) && mb->sum_mode == sum_mode &&
           mb->fold_size == acc_size && mb->partition == partition && mb->pstate == pstate;
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
    if (vlen && val) memcpy(p + MB_HDR + klen, val, vlen);
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

static void mb_grow_table(mapbuf *mb)
{
    size_t ncap = mb->tcap * 2;
    mb_slot *nt = mb_table_alloc(ncap);
    for (size_t i = 0; i < mb->tcap; i++) {
        const mb_slot *s = &mb->table[i];
        if (!s->tag) continue;
        uint32_t klen;
        memcpy(&klen, mb->arena + s->off, 4);
        size_t j = (size_t)mb_key_hash(mb->arena + s->off + MB_HDR, klen) & (ncap - 1);
        while (nt[j].tag) j = (j + 1) & (ncap - 1);
        nt[j] = *s;
    }
    free(mb->table);
    mb->table = nt;
    mb->tcap = ncap;
}

/* Fold mode's records keep the accumulator 8-byte aligned (jobs store doubles and int64s in
 * it): [klen][vlen][key][padding][acc], the value starting at the next multiple of 8. */
static inline size_t mb_val_at(const mapbuf *mb, uint32_t klen)
{
    size_t at = MB_HDR + klen;
    return mb->fold_size ? (at + 7) & ~(size_t)7 : at;
}

/* Fills an empty slot with a new key and grows the table at 70% load while the budget allows;
 * past the budget the buffer reports full instead. In fold mode the record gets room for the
 * accumulator (the caller fills it) and val is unused. */
static uint32_t mb_insert(mapbuf *mb, mb_slot *s, uint32_t tag, const char *key, size_t klen,
                          uint64_t k0, uint64_t k1, int64_t val)
{
    int64_t zero = 0;
    s->tag = tag;
    if (mb->fold_size) {
        size_t pad = mb_val_at(mb, (uint32_t)klen) - MB_HDR - klen;
        mb->alen = (mb->alen + 7) & ~(size_t)7; /* records start aligned, so accs are too */
        s->off = mb_append(mb, key, klen, NULL, pad + mb->fold_size);
        uint32_t vl = (uint32_t)mb->fold_size;
        memcpy(mb->arena + s->off + 4, &vl, 4);
    } else {
        s->off = mb_append(mb, key, klen, &zero, sizeof zero);
    }
    uint32_t off = s->off;
    s->val = val;
    s->k0 = k0;
    s->k1 = k1;
    mb->tused++;
    if (mb->tused * 10 > mb->tcap * 7 &&
        mb->alen + mb->tused * sizeof(mb_ent) + mb->tcap * 2 * sizeof(mb_slot) <= mb->limit)
        mb_grow_table(mb);
    return off;
}

/* Folds a short key into the table (its slot's line was prefetched when it was batched). */
static void mb_sum_short(mapbuf *mb, const mb_pending *p)
{
    uint32_t tag = mb_tag(p->hash, p->klen);
    size_t mask = mb->tcap - 1, j = (size_t)p->hash & mask;
    for (;;) {
        mb_slot *s = &mb->table[j];
        if (!s->tag) break;
        if (s->tag == tag && s->k0 == p->k0 && s->k1 == p->k1) {
            s->val = (int64_t)((uint64_t)s->val + (uint64_t)p->val); /* wraps like Java's long */
            return;
        }
        j = (j + 1) & mask;
    }
    uint64_t words[2] = {p->k0, p->k1};
    mb_insert(mb, &mb->table[j], tag, (const char *)words, p->klen, p->k0, p->k1, p->val);
}

/* The slot of a key of any length in the table (sum or fold mode): 1 with *slot at the key's,
 * or 0 with *slot at the empty slot where it goes; *tag, *k0 and *k1 are what an insert there
 * needs. Short keys match on the tag (which holds their length) and their inline bytes alone;
 * long ones (tag class MB_SHORT + 2 for every length) also on their stored length and bytes. */
static int mb_find(const mapbuf *mb, const char *key, size_t klen, size_t *slot, uint32_t *tag,
                   uint64_t *k0, uint64_t *k1)
{
    uint64_t hash = mb_key_hash(key, klen);
    mb_load16((const uint8_t *)key, klen < MB_SHORT ? klen : MB_SHORT, k0, k1);
    *tag = mb_tag(hash, klen);
    size_t mask = mb->tcap - 1, j = (size_t)hash & mask;
    for (;; j = (j + 1) & mask) {
        const mb_slot *s = &mb->table[j];
        if (!s->tag) break;
        if (s->tag != *tag || s->k0 != *k0 || s->k1 != *k1) continue;
        if (klen <= MB_SHORT) break;
        const char *rec = mb->arena + s->off;
        uint32_t rl;
        memcpy(&rl, rec, 4);
        if (rl == klen && memcmp(rec + MB_HDR, key, klen) == 0) break;
    }
    *slot = j;
    return mb->table[j].tag != 0;
}

static void mb_sum_long(mapbuf *mb, const char *key, size_t klen, int64_t val)
{
    size_t j;
    uint32_t tag;
    uint64_t k0, k1;
    if (mb_find(mb, key, klen, &j, &tag, &k0, &k1)) {
        mb_slot *s = &mb->table[j];
        s->val = (int64_t)((uint64_t)s->val + (uint64_t)val);
        return;
    }
    mb_insert(mb, &mb->table[j], tag, key, klen, k0, k1, val);
}

static void mb_flush_batch(mapbuf *mb)
{
    for (unsigned i = 0; i < mb->nbatch; i++) mb_sum_short(mb, &mb->batch[i]);
    mb->nbatch = 0;
}

/* mb_load16 for a key followed by at least 16 readable bytes: two plain loads and two masks,
 * no branches on the length. Profiling word count showed mispredicted length branches in
 * mb_load16 as a large part of the add: word lengths are close to random. */
static inline void mb_load16_padded(const uint8_t *p, size_t n, uint64_t *k0, uint64_t *k1)
{
    static const uint64_t lo[17] = {0, 0xff, 0xffff, 0xffffff, 0xffffffff, 0xffffffffffull,
                                    0xffffffffffffull, 0xffffffffffffffull, ~0ull, ~0ull, ~0ull,
                                    ~0ull, ~0ull, ~0ull, ~0ull, ~0ull, ~0ull};
    uint64_t a, b;
    memcpy(&a, p, 8);
    memcpy(&b, p + 8, 8);
    *k0 = a & lo[n];
    *k1 = b & lo[n > 8 ? n - 8 : 0];
}

/* Queues a short key for the next flush, its slot prefetched; flushes a full batch. Returns 1
 * when it flushed (inserts, the only thing that can fill the buffer, happen there). */
static inline int mb_batch_add(mapbuf *mb, const void *key, size_t klen, int64_t val, int padded)
{
    mb_pending *p = &mb->batch[mb->nbatch++];
    if (padded) mb_load16_padded(key, klen, &p->k0, &p->k1);
    else mb_load16(key, klen, &p->k0, &p->k1);
    p->hash = mb_hash16(p->k0, p->k1, klen);
    p->klen = (uint32_t)klen;
    p->val = val;
    __builtin_prefetch(&mb->table[(size_t)p->hash & (mb->tcap - 1)], 1);
    if (mb->nbatch < MB_BATCH) return 0;
    mb_flush_batch(mb);
    return 1;
}

int mapbuf_add_int(mapbuf *mb, const void *key, size_t klen, int64_t val)
{
    if (!mb->sum_mode) return mapbuf_add(mb, key, klen, &val, sizeof val);
    if (klen > MB_SHORT) {
        mb_sum_long(mb, key, klen, val); /* order does not matter to a sum */
        return mapbuf_full(mb);
    }
    return mb_batch_add(mb, key, klen, val, 0) && mapbuf_full(mb);
}

size_t mapbuf_add_int_many(mapbuf *mb, const void *const *keys, const size_t *lens, size_t n, int64_t val,
                           int padded)
{
    for (size_t i = 0; i < n; i++) {
        if (lens[i] > MB_SHORT) mb_sum_long(mb, keys[i], lens[i], val);
        else if (!mb_batch_add(mb, keys[i], lens[i], val, padded)) continue;
        if (mapbuf_full(mb)) return i + 1;
    }
    return n;
}

void *mapbuf_fold_slot(mapbuf *mb, const void *key, size_t klen, int *is_new)
{
    size_t j;
    uint32_t tag;
    uint64_t k0, k1;
    if (mb_find(mb, key, klen, &j, &tag, &k0, &k1)) {
        *is_new = 0;
        return mb->arena + mb->table[j].off + mb_val_at(mb, (uint32_t)klen);
    }
    /* The table may grow (moving slots) and the arena may move: keep the record's offset. */
    uint32_t off = mb_insert(mb, &mb->table[j], tag, key, klen, k0, k1, 0);
    *is_new = 1;
    return mb->arena + off + mb_val_at(mb, (uint32_t)klen);
}

uint64_t mapbuf_bytes(const mapbuf *mb)
{
    size_t n = mb->table_mode ? mb->tused : mb->nidx;
    return mb->alen + n * sizeof(mb_ent) + mb->tcap * sizeof(mb_slot);
}

int mapbuf_full(const mapbuf *mb)
{
    if (mapbuf_bytes(mb) >= mb->limit) return 1;
    /* A table at 85% load probes too long; it could not grow within the budget. */
    return mb->table_mode && mb->tused * 20 >= mb->tcap * 17;
}

uint64_t mapbuf_records(mapbuf *mb)
{
    if (mb->nbatch) mb_flush_batch(mb);
    return mb->table_mode ? mb->tused : mb->nidx;
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
    if (mb->table_mode) {
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
            uint32_t klen;
            memcpy(&klen, rec, 4);
            if (mb->sum_mode) memcpy(rec + MB_HDR + klen, &s->val, sizeof s->val); /* for iteration */
            /* The partition hash is xxHash, as tally_hash_partition() promises. */
            uint64_t hash = (mb->nparts > 1 && !mb->partition) ? XXH3_64bits(key, klen) : 0;
            mb->idx[mb->nidx++] = (mb_ent){.prefix = mb_prefix(key, klen),
                                           .part = mb_part(mb, key, klen, hash),
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
    const char *v = rec + mb_val_at(it->mb, h[0]);
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
    if (!mb->table_mode) /* table keys are already distinct */
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
    mb->nbatch = 0;
    mb->alen = 0;
    mb->nidx = 0;
    mb->group = 0;
    if (mb->table_mode) {
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
