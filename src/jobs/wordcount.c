/* wordcount.c - the built-in word count: key a word, value its number of occurrences. */
#include <stdlib.h>
#include <string.h>

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

static int wordcount_map(tally_ctx *ctx, const tally_record *rec)
{
    const uint8_t *p = (const uint8_t *)rec->data, *end = p + rec->len;
    int fold = tally_state(ctx) != NULL;
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
