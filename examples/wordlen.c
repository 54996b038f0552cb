/* wordlen.c - an example user job: a histogram of word lengths, written against tally.h only.
 *
 * Build: `make` builds it to build/examples/wordlen.so; by hand:
 *     cc -std=c11 -O2 -fPIC -shared -Iinclude -o wordlen.so examples/wordlen.c
 * Run:
 *     tally run build/examples/wordlen.so --job-arg min=3 -o out books/
 * Output: one line per word length, `LENGTH<TAB>COUNT`; the key is zero-padded to four digits
 * so that byte order (the order keys have within a part file) is numeric order.
 *
 * It shows each part of the API: setup() reading a job argument into state, map() emitting
 * integer values, a combiner (here a custom one, so the engine calls back into the job at
 * spill time), reduce(), a job counter, and teardown().
 */
#include <stdio.h>
#include <stdlib.h>

#include <tally/tally.h>

typedef struct wordlen_state {
    long min; /* words shorter than this are not counted */
} wordlen_state;

static int wordlen_setup(tally_ctx *ctx, void **state)
{
    wordlen_state *st = malloc(sizeof *st);
    if (!st) return -12; /* -ENOMEM */
    st->min = 1;
    const char *min = tally_arg(ctx, "min");
    if (min) {
        char *end;
        st->min = strtol(min, &end, 10);
        if (*end || st->min < 1) {
            free(st);
            return tally_error(ctx, "--job-arg min=N: expected a positive number, got '%s'", min);
        }
    }
    *state = st;
    return 0;
}

static void wordlen_teardown(void *state) { free(state); }

static int wordlen_is_letter(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c >= 0x80;
}

static int wordlen_map(tally_ctx *ctx, const tally_record *rec)
{
    const wordlen_state *st = tally_state(ctx);
    size_t i = 0;
    while (i < rec->len) {
        while (i < rec->len && !wordlen_is_letter((unsigned char)rec->data[i])) i++;
        size_t start = i;
        while (i < rec->len && wordlen_is_letter((unsigned char)rec->data[i])) i++;
        size_t n = i - start;
        if (n == 0) break;
        if ((long)n < st->min) {
            tally_counter_add(ctx, "wordlen_short_words", 1);
            continue;
        }
        char key[16];
        int k = snprintf(key, sizeof key, "%04zu", n > 9999 ? (size_t)9999 : n);
        int rc = tally_emit_int(ctx, key, (size_t)k, 1);
        if (rc) return rc;
    }
    return 0;
}

/* Used both as the combiner and the reducer: the sum of the counts. */
static int wordlen_sum(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals)
{
    int64_t sum = 0, v;
    int rc;
    while ((rc = tally_values_next_int(vals, &v)) == 1) sum += v;
    if (rc < 0) return rc;
    return tally_emit_int(ctx, key, klen, sum);
}

const tally_job tally_job_def = {
    .abi_version = TALLY_ABI_VERSION,
    .name = "wordlen",
    .description = "histogram of word lengths (example user job)",
    .flags = TALLY_INT_VALUES,
    .setup = wordlen_setup,
    .teardown = wordlen_teardown,
    .map = wordlen_map,
    .combine = wordlen_sum,
    .reduce = wordlen_sum,
};
