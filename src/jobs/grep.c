/* grep.c - the built-in distributed grep: matching lines keyed by FILE:OFFSET. */
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tally/tally.h>

extern const tally_job jobs_grep;

static int grep_setup(tally_ctx *ctx, void **state)
{
    const char *re = tally_arg(ctx, "regexp");
    if (!re) return tally_error(ctx, "missing -e REGEX");
    regex_t *rx = malloc(sizeof *rx);
    if (!rx) return -12;
    int rc = regcomp(rx, re, REG_EXTENDED | REG_NOSUB);
    if (rc) {
        char msg[256];
        regerror(rc, rx, msg, sizeof msg);
        free(rx);
        return tally_error(ctx, "bad regular expression '%s': %s", re, msg);
    }
    *state = rx;
    return 0;
}

static void grep_teardown(void *state)
{
    if (!state) return;
    regfree(state);
    free(state);
}

static int grep_map(tally_ctx *ctx, const tally_record *rec)
{
    const regex_t *rx = tally_state(ctx);
    /* REG_STARTEND: match within [0, len), NUL bytes inside the line included. The record is
     * NUL-terminated as well, which sanitizer interceptors of regexec() rely on. */
    regmatch_t m[1] = {{.rm_so = 0, .rm_eo = (regoff_t)rec->len}};
    if (regexec(rx, rec->data, 1, m, REG_STARTEND) != 0) return 0;
    char key[4096 + 32];
    int n = snprintf(key, sizeof key, "%s:%llu", rec->file, (unsigned long long)rec->offset);
    if (n < 0 || (size_t)n >= sizeof key) return tally_error(ctx, "%s: path too long", rec->file);
    return tally_emit(ctx, key, (size_t)n, rec->data, rec->len);
}

static int grep_reduce(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals)
{
    const void *v;
    size_t n;
    int rc;
    while ((rc = tally_values_next(vals, &v, &n)) == 1)
        if ((rc = tally_emit(ctx, key, klen, v, n)) != 0) return rc;
    return rc;
}

static const tally_option grep_options[] = {
    {"regexp", 'e', 1, "POSIX extended regular expression to match lines against"},
    {NULL, 0, 0, NULL},
};

const tally_job jobs_grep = {
    .abi_version = TALLY_ABI_VERSION,
    .name = "grep",
    .description = "lines matching -e REGEX, keyed by FILE:OFFSET",
    .options = grep_options,
    .setup = grep_setup,
    .teardown = grep_teardown,
    .map = grep_map,
    .reduce = grep_reduce,
};
