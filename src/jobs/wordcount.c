/* wordcount.c - the built-in word count: key a word, value its number of occurrences. */
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <tally/tally.h>

#include "jobs/words.h"

extern const tally_job jobs_wordcount;

/* The state is just the --fold-case switch, stored in the pointer itself. */
static int wordcount_setup(tally_ctx *ctx, void **state)
{
    const char *fold = tally_arg(ctx, "fold-case");
    *state = (fold && strcmp(fold, "0") != 0) ? (void *)1 : NULL;
    return 0;
}

#ifdef __SSE2__
/* One bit per byte of p[0..64) that belongs to a word (words.h: an ASCII letter or a byte >=
 * 0x80): (b | 0x20) - 'a' <= 25 unsigned is a letter, and movemask of the bytes themselves
 * gives the high ones. */
static inline uint64_t wordcount_mask64(const uint8_t *p)
{
    const __m128i lower = _mm_set1_epi8(0x20), a = _mm_set1_epi8('a'), z = _mm_set1_epi8(25);
    uint64_t m = 0;
    for (int k = 0; k < 4; k++) {
        __m128i v = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        __m128i t = _mm_sub_epi8(_mm_or_si128(v, lower), a);
        __m128i le = _mm_cmpeq_epi8(_mm_min_epu8(t, z), t);
        uint64_t bits = (uint64_t)(unsigned)(_mm_movemask_epi8(le) | _mm_movemask_epi8(v));
        m |= bits << (16 * k);
    }
    return m;
}

/* The words of a record, found 64 bytes at a time from bit masks (TALLY_RECORD_PAD makes the
 * reads past its end safe; those bits are cleared) and emitted in batches of up to 64 with one
 * call each. Profiling showed the byte loop of words_next and the engine call per word taking
 * a third of word count's map time. */
static int wordcount_map_fast(tally_ctx *ctx, const uint8_t *p, size_t len)
{
    const void *keys[64];
    size_t lens[64], n = 0, start = 0;
    uint64_t carry = 0; /* 1: the previous chunk ended inside a word */
    int rc;
    for (size_t c = 0; c < len; c += 64) {
        uint64_t m = wordcount_mask64(p + c);
        if (len - c < 64) m &= (1ull << (len - c)) - 1;
        uint64_t prev = (m << 1) | carry;
        uint64_t ev = (m & ~prev) | (~m & prev); /* word starts and word ends, alternating */
        carry = m >> 63;
        while (ev) {
            size_t at = c + (size_t)__builtin_ctzll(ev);
            ev &= ev - 1;
            if (m & (1ull << (at - c))) {
                start = at;
                continue;
            }
            keys[n] = p + start;
            lens[n] = at - start;
            if (++n == 64) {
                if ((rc = tally_emit_int_many(ctx, keys, lens, n, 1))) return rc;
                n = 0;
            }
        }
    }
    if (carry) { /* a word runs to the very end of a record of a multiple of 64 bytes */
        keys[n] = p + start;
        lens[n++] = len - start;
    }
    return n ? tally_emit_int_many(ctx, keys, lens, n, 1) : 0;
}
#endif

static int wordcount_map(tally_ctx *ctx, const tally_record *rec)
{
    const uint8_t *p = (const uint8_t *)rec->data, *end = p + rec->len;
    int fold = tally_state(ctx) != NULL;
#ifdef __SSE2__
    if (!fold) return wordcount_map_fast(ctx, p, rec->len);
#endif
    const uint8_t *w;
    size_t n;
    while ((w = words_next(&p, end, &n)) != NULL) {
        int rc;
        if (!fold) {
            rc = tally_emit_int(ctx, w, n, 1);
        } else {
            uint8_t small[128];
            uint8_t *b = n <= sizeof small ? small : malloc(n);
            if (!b) return -12; /* -ENOMEM */
            for (size_t i = 0; i < n; i++) b[i] = (w[i] >= 'A' && w[i] <= 'Z') ? (uint8_t)(w[i] + 32) : w[i];
            rc = tally_emit_int(ctx, b, n, 1);
            if (b != small) free(b);
        }
        if (rc) return rc;
    }
    return 0;
}

static int wordcount_reduce(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals)
{
    int64_t sum = 0, v;
    int rc;
    while ((rc = tally_values_next_int(vals, &v)) == 1) sum += v;
    if (rc < 0) return rc;
    return tally_emit_int(ctx, key, klen, sum);
}

static const tally_option wordcount_options[] = {
    {"fold-case", 0, 0, "count words case-insensitively (ASCII lower-casing)"},
    {NULL, 0, 0, NULL},
};

const tally_job jobs_wordcount = {
    .abi_version = TALLY_ABI_VERSION,
    .name = "wordcount",
    .description = "count words (runs of ASCII letters or bytes >= 0x80)",
    .flags = TALLY_INT_VALUES | TALLY_COMBINE_SUM,
    .options = wordcount_options,
    .setup = wordcount_setup,
    .map = wordcount_map,
    .reduce = wordcount_reduce,
};
