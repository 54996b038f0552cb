/* mapbuf.c - map-side buffer: in-memory combining table or record list, sort, group iteration. */
#include "data/mapbuf.h"

#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "common/util.h"

/* Every record in the arena is [u32 klen][u32 vlen][key][value]; in sum mode the value is the
 * running int64 sum, updated in place. */
#define MB_HDR 8u
#define MB_TABLE_MIN 4096u

typedef struct mb_slot {      /* sum-mode hash table slot */
    uint64_t hash;
    uint32_t off;             /* arena offset of the record; UINT32_MAX when empty */
    uint32_t klen;
} mb_slot;

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
        mb->tcap = MB_TABLE_MIN;
        mb->table = xmalloc(mb->tcap * sizeof *mb->table);
        memset(mb->table, 0xff, mb->tcap * sizeof *mb->table);
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

void mapbuf_add(mapbuf *mb, const void *key, size_t klen, const void *val, size_t vlen)
{
    uint64_t hash = (mb->nparts > 1 && !mb->partition) ? XXH3_64bits(key, klen) : 0;
    uint32_t off = mb_append(mb, key, klen, val, vlen);
    mb_index(mb, off, mb_part(mb, key, klen, hash), key, klen);
}

static void mb_grow_table(mapbuf *mb)
{
    size_t ncap = mb->tcap * 2;
    mb_slot *nt = xmalloc(ncap * sizeof *nt);
    memset(nt, 0xff, ncap * sizeof *nt);
    for (size_t i = 0; i < mb->tcap; i++) {
        if (mb->table[i].off == UINT32_MAX) continue;
        size_t j = (size_t)mb->table[i].hash & (ncap - 1);
        while (nt[j].off != UINT32_MAX) j = (j + 1) & (ncap - 1);
        nt[j] = mb->table[i];
    }
    free(mb->table);
    mb->table = nt;
    mb->tcap = ncap;
}

void mapbuf_add_int(mapbuf *mb, const void *key, size_t klen, int64_t val)
{
    if (!mb->sum_mode) {
        mapbuf_add(mb, key, klen, &val, sizeof val);
        return;
    }
    uint64_t hash = XXH3_64bits(key, klen);
    size_t mask = mb->tcap - 1;
    size_t j = (size_t)hash & mask;
    for (;;) {
        mb_slot *s = &mb->table[j];
        if (s->off == UINT32_MAX) break;
        if (s->hash == hash && s->klen == klen) {
            char *rec = mb->arena + s->off;
            if (memcmp(rec + MB_HDR, key, klen) == 0) {
                int64_t cur;
                memcpy(&cur, rec + MB_HDR + klen, sizeof cur);
                cur = (int64_t)((uint64_t)cur + (uint64_t)val); /* wraps like Java's long */
                memcpy(rec + MB_HDR + klen, &cur, sizeof cur);
                return;
            }
        }
        j = (j + 1) & mask;
    }
    uint32_t off = mb_append(mb, key, klen, &val, sizeof val);
    mb->table[j] = (mb_slot){.hash = hash, .off = off, .klen = (uint32_t)klen};
    mb->tused++;
    /* Grow at 50% load while the budget allows; past it the buffer reports full instead. */
    if (mb->tused * 2 > mb->tcap &&
        mb->alen + mb->tused * sizeof(mb_ent) + mb->tcap * 2 * sizeof(mb_slot) <= mb->limit)
        mb_grow_table(mb);
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

uint64_t mapbuf_records(const mapbuf *mb) { return mb->sum_mode ? mb->tused : mb->nidx; }

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
        mb->nidx = 0;
        if (mb->idxcap < mb->tused) {
            free(mb->idx);
            mb->idxcap = mb->tused;
            mb->idx = xmalloc(mb->idxcap * sizeof *mb->idx);
        }
        for (size_t i = 0; i < mb->tcap; i++) {
            const mb_slot *s = &mb->table[i];
            if (s->off == UINT32_MAX) continue;
            const char *key = mb->arena + s->off + MB_HDR;
            mb->idx[mb->nidx++] = (mb_ent){.prefix = mb_prefix(key, s->klen),
                                           .part = mb_part(mb, key, s->klen, s->hash),
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
        memset(mb->table, 0xff, mb->tcap * sizeof *mb->table);
        mb->tused = 0;
    }
    /* Give back what a huge run left behind, so one skewed spill does not pin memory. */
    if (mb->acap > mb->limit) {
        free(mb->arena);
        mb->arena = NULL;
        mb->acap = 0;
    }
}
