/* Copied unchanged (below this line) from shared/yardsticks/wc_fast.c: the yardstick of bench/analytics.sh. */
/* wc_fast.c - single-threaded word counter, tuned (physical-limit proxy).
 * Same word definition and output as wc_hash.c: word = run of [A-Za-z];
 * -i folds to lower case. Differences: AVX2 letter classification into a
 * bitmask (no per-byte branches), word boundaries found with tzcnt, keys of
 * up to 16 bytes stored inline in the hash entry (no arena access, no memcmp
 * call on the hot path), lookups done in batches of 32 with the buckets
 * prefetched first.
 * Build: gcc -O3 -march=native -o wc_fast wc_fast.c   (needs AVX2)
 * Usage: ./wc_fast [-i] FILE > out
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct { uint64_t k0, k1; uint64_t hash; uint32_t off, len; uint64_t count; } ent; /* 40 B */

static ent *tab; static uint64_t cap, used;
static char *arena; static uint64_t asz, acap;
static int fold;

#define M64(n) ((n) >= 8 ? ~0ULL : ((1ULL << (8 * (n))) - 1))
#define FOLD 0x2020202020202020ULL

static void grow(void) {
    uint64_t ncap = cap * 2; ent *nt = calloc(ncap, sizeof(ent));
    if (!nt) { perror("calloc"); exit(1); }
    for (uint64_t i = 0; i < cap; i++) if (tab[i].count) {
        uint64_t j = tab[i].hash & (ncap - 1);
        while (nt[j].count) j = (j + 1) & (ncap - 1);
        nt[j] = tab[i];
    }
    free(tab); tab = nt; cap = ncap;
}

static inline uint64_t mix(uint64_t h, uint64_t w) { h = (h ^ w) * 0xff51afd7ed558ccdULL; return h ^ (h >> 32); }

typedef struct { const unsigned char *p; uint64_t w0, w1, h; uint32_t n; } tok;

/* p points into a buffer with >= 16 readable bytes past the word */
static inline void keyhash(tok *t, const unsigned char *p, uint32_t n) {
    uint64_t w0, w1, h;
    memcpy(&w0, p, 8); memcpy(&w1, p + 8, 8);
    if (__builtin_expect(n <= 16, 1)) {               /* branch-free masking */
        uint32_t n0 = n < 8 ? n : 8, n1 = n > 8 ? n - 8 : 0;
        uint64_t m0 = n0 == 8 ? ~0ULL : (1ULL << (8 * n0)) - 1;
        uint64_t m1 = n1 == 8 ? ~0ULL : (1ULL << (8 * n1)) - 1;
        w0 &= m0; w1 &= m1;
        if (fold) { w0 |= FOLD & m0; w1 |= FOLD & m1; }
        h = mix(mix(n, w0), w1);
    } else {
        if (fold) { w0 |= FOLD; w1 |= FOLD; }
        h = mix(mix(n, w0), w1);
        for (uint32_t i = 16; i < n; i += 8) {
            uint64_t w; memcpy(&w, p + i, 8);
            uint32_t r = n - i; w &= M64(r); if (fold) w |= FOLD & M64(r);
            h = mix(h, w);
        }
    }
    h *= 0xc4ceb9fe1a85ec53ULL; h ^= h >> 29;
    t->p = p; t->n = n; t->w0 = w0; t->w1 = w1; t->h = h;
}

static inline void lookup(const tok *t) {
    const unsigned char *p = t->p; uint32_t n = t->n;
    uint64_t w0 = t->w0, w1 = t->w1, h = t->h;
    uint64_t j = h & (cap - 1);
    for (;;) {
        ent *e = &tab[j];
        if (!e->count) break;
        if (e->hash == h && e->len == n && e->k0 == w0 && e->k1 == w1) {
            if (n <= 16) { e->count++; return; }
            /* long key: compare the rest (folded compare if -i) */
            const char *a = arena + e->off; uint32_t i = 16;
            for (; i < n; i++) { unsigned char c = p[i]; if (fold) c |= 0x20; if ((unsigned char)a[i] != c) break; }
            if (i == n) { e->count++; return; }
        }
        j = (j + 1) & (cap - 1);
    }
    if (asz + n > acap) { acap = acap * 2 + n; arena = realloc(arena, acap); if (!arena) { perror("realloc"); exit(1); } }
    for (uint32_t i = 0; i < n; i++) arena[asz + i] = fold ? (p[i] | 0x20) : p[i];
    tab[j] = (ent){ w0, w1, h, (uint32_t)asz, n, 1 }; asz += n;
    if (++used * 2 > cap) grow();
}

static inline uint32_t letters32(const unsigned char *p) {
    __m256i v = _mm256_loadu_si256((const __m256i *)p);
    __m256i t = _mm256_sub_epi8(_mm256_or_si256(v, _mm256_set1_epi8(0x20)), _mm256_set1_epi8('a'));
    __m256i le = _mm256_cmpeq_epi8(_mm256_min_epu8(t, _mm256_set1_epi8(25)), t);
    return (uint32_t)_mm256_movemask_epi8(le);
}

/* batch of tokens: hash all, prefetch their buckets, then look them up,
 * so that the cache misses of a batch overlap */
#define BATCH 32
static tok batch[BATCH]; static int nb;
static void flush(void) {
    for (int i = 0; i < nb; i++) __builtin_prefetch(&tab[batch[i].h & (cap - 1)]);
    for (int i = 0; i < nb; i++) lookup(&batch[i]);
    nb = 0;
}

#define BUF (1 << 20)
int main(int argc, char **argv) {
    int ai = 1;
    if (ai < argc && strcmp(argv[ai], "-i") == 0) { fold = 1; ai++; }
    if (ai >= argc) { fprintf(stderr, "usage: %s [-i] FILE\n", argv[0]); return 2; }
    int fd = open(argv[ai], O_RDONLY);
    if (fd < 0) { perror(argv[ai]); return 1; }
    cap = 1 << 16; tab = calloc(cap, sizeof(ent)); acap = 1 << 20; arena = malloc(acap);
    struct timespec t0, t1; clock_gettime(CLOCK_MONOTONIC, &t0);
    /* buf: [carry | data | zero padding]; masks: one bit per byte */
    unsigned char *buf = aligned_alloc(64, 2 * BUF + 128);
    uint64_t *mask = aligned_alloc(64, (2 * BUF / 64 + 4) * 8);
    uint64_t carry = 0, total = 0, bytes = 0;
    for (;;) {
        ssize_t r = read(fd, buf + carry, BUF);
        if (r < 0) { perror("read"); return 1; }
        bytes += r;
        int eof = (r == 0);
        uint64_t n = carry + r, nw = (n + 63) / 64;
        memset(buf + n, 0, 128);                      /* padding: non-letters */
        for (uint64_t k = 0; k < nw; k++)
            mask[k] = letters32(buf + 64 * k) | (uint64_t)letters32(buf + 64 * k + 32) << 32;
        mask[nw] = 0;
        uint64_t pos = 0;
        for (;;) {
            /* next letter at or after pos */
            uint64_t k = pos >> 6, m = mask[k] & (~0ULL << (pos & 63));
            while (!m && ++k < nw) m = mask[k];
            if (k >= nw) { flush(); carry = 0; break; }
            uint64_t s = (k << 6) + __builtin_ctzll(m);
            /* next non-letter after s */
            k = s >> 6; m = ~mask[k] & (~0ULL << (s & 63));
            while (!m) m = ~mask[++k];                    /* mask[nw] == 0 stops it */
            uint64_t e = (k << 6) + __builtin_ctzll(m);
            if (e >= n && !eof) {                         /* partial word: carry */
                flush();
                carry = n - s;
                if (carry > BUF) { fprintf(stderr, "word too long\n"); return 1; }
                memmove(buf, buf + s, carry);
                break;
            }
            keyhash(&batch[nb++], buf + s, (uint32_t)(e - s)); total++;
            if (nb == BATCH) flush();
            pos = e;
        }
        if (eof) break;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double secs = (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
    static char obuf[1 << 16]; setvbuf(stdout, obuf, _IOFBF, sizeof obuf);
    for (uint64_t k = 0; k < cap; k++) if (tab[k].count)
        printf("%lu %.*s\n", (unsigned long)tab[k].count, (int)tab[k].len, arena + tab[k].off);
    fflush(stdout);
    fprintf(stderr, "wc_fast: words=%lu unique=%lu bytes=%lu count_phase=%.3fs (%.0f MB/s)\n",
            (unsigned long)total, (unsigned long)used, (unsigned long)bytes, secs, bytes / secs / 1e6);
    return 0;
}
