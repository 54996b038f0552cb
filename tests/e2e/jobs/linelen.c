/* linelen.c - a user job for the tests: counts input lines per length bucket (see userjob.sh).
 *
 * The key of a line of length L is floor(L / bucket) * bucket printed as 8 digits, so keys sort
 * numerically; the value is the number of lines. The bucket width comes from the job option
 * `--bucket N` / `-b N` or `--job-arg bucket=N` (default 10). A custom partitioner sends bucket
 * k to part k mod R, which the test checks. A job counter counts the empty lines.
 *
 * userjob.sh builds it with `cc -shared -fPIC -Iinclude` in several variants:
 *   (none)               int64 values, summed by the engine (TALLY_COMBINE_SUM)
 *   -DLINELEN_BYTES      decimal byte-string values with combine and reduce callbacks
 *   -DLINELEN_FLAKY      the first map call in the process fails: the engine must retry the
 *                        task and the output must not count that attempt's records
 *   -DLINELEN_FAIL       every map call fails: the job must fail with this job's message
 *   -DLINELEN_SEGV       map() forks a sleeping child, then dies with SIGSEGV, on a line
 *                        containing CRASH-HERE (cluster test: the crash is noticed, the record
 *                        is skipped after it crashed two attempts)
 *   -DLINELEN_SLOW       map() sleeps 0.2 ms per line, so attempts run long enough to watch
 *   -DLINELEN_FAIL_AT    each map() call on a record at offset 0 appends a byte to the file
 *                        named by the job argument fail_file, and fails once that file holds
 *                        fail_at bytes: with one map task and --max-attempts 1, run number
 *                        fail_at of a series fails (iterations.sh)
 *   -DLINELEN_SETUP_SEGV setup() dies with SIGSEGV when the job argument crash=1 is given (the
 *                        coordinator must survive loading it)
 *   -DLINELEN_BAD_ABI    declares an ABI version the engine does not have
 *   -DLINELEN_ABI1       declares ABI version 1 (before fold): it must still load and run
 *   -DLINELEN_NO_SYMBOL  exports the job under another name than tally_job_def
 */
#define _GNU_SOURCE /* memmem, usleep */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tally/tally.h"

struct linelen_state {
    unsigned long bucket;
};

static int linelen_setup(tally_ctx *ctx, void **state)
{
    const char *arg = tally_arg(ctx, "bucket");
    unsigned long bucket = 10;
#ifdef LINELEN_SETUP_SEGV
    const char *crash = tally_arg(ctx, "crash");
    if (crash && strcmp(crash, "1") == 0) raise(SIGSEGV);
#endif
    if (arg != NULL) {
        char *end;
        errno = 0;
        bucket = strtoul(arg, &end, 10);
        if (errno != 0 || *end != '\0' || bucket == 0)
            return tally_error(ctx, "linelen: bucket must be a positive integer, not '%s'", arg);
    }
    struct linelen_state *s = malloc(sizeof *s);
    if (s == NULL) return -ENOMEM;
    s->bucket = bucket;
    *state = s;
    return 0;
}

static void linelen_teardown(void *state)
{
    free(state);
}

static int linelen_map(tally_ctx *ctx, const tally_record *rec)
{
#ifdef LINELEN_FLAKY
    static int failed_once;
    if (__atomic_exchange_n(&failed_once, 1, __ATOMIC_SEQ_CST) == 0)
        return tally_error(ctx, "linelen: failing the first map call on purpose");
#endif
#ifdef LINELEN_FAIL
    return tally_error(ctx, "linelen: failing every map call on purpose");
#endif
#ifdef LINELEN_SEGV
    if (memmem(rec->data, rec->len, "CRASH-HERE", 10) != NULL) {
        /* Leave a child behind that holds whatever the process had open, as job code that
         * forks might: the crash must still be noticed. */
        if (fork() == 0) {
            sleep(60);
            _exit(0);
        }
        raise(SIGSEGV);
    }
#endif
#ifdef LINELEN_SLOW
    usleep(200);
#endif
#ifdef LINELEN_FAIL_AT
    if (rec->offset == 0) {
        const char *path = tally_arg(ctx, "fail_file"), *at = tally_arg(ctx, "fail_at");
        int fd = path ? open(path, O_WRONLY | O_APPEND | O_CREAT, 0644) : -1;
        struct stat st;
        int ok = fd >= 0 && write(fd, "x", 1) == 1 && fstat(fd, &st) == 0;
        if (fd >= 0) close(fd);
        if (!ok) return tally_error(ctx, "linelen: cannot count runs in fail_file '%s'", path ? path : "(not given)");
        if (at && st.st_size >= strtol(at, NULL, 10))
            return tally_error(ctx, "linelen: failing run %lld on purpose", (long long)st.st_size);
    }
#endif
    const struct linelen_state *s = tally_state(ctx);
    char key[32];
    int n = snprintf(key, sizeof key, "%08lu", (unsigned long)(rec->len / s->bucket * s->bucket));
    if (rec->len == 0) tally_counter_add(ctx, "linelen_empty_lines", 1);
#ifdef LINELEN_BYTES
    return tally_emit(ctx, key, (size_t)n, "1", 1);
#else
    return tally_emit_int(ctx, key, (size_t)n, 1);
#endif
}

#ifdef LINELEN_BYTES
/* Sums decimal values; returns 0 or a negative code. */
static int linelen_sum(tally_ctx *ctx, tally_values *vals, int64_t *sum)
{
    const void *v;
    size_t vlen;
    int rc;
    *sum = 0;
    while ((rc = tally_values_next(vals, &v, &vlen)) == 1) {
        char buf[32];
        if (vlen == 0 || vlen >= sizeof buf) return tally_error(ctx, "linelen: bad value length %zu", vlen);
        memcpy(buf, v, vlen);
        buf[vlen] = '\0';
        char *end;
        long long x = strtoll(buf, &end, 10);
        if (*end != '\0') return tally_error(ctx, "linelen: bad value '%s'", buf);
        *sum += x;
    }
    return rc;
}

static int linelen_emit_sum(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals)
{
    int64_t sum;
    int rc = linelen_sum(ctx, vals, &sum);
    if (rc < 0) return rc;
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%" PRId64, sum);
    return tally_emit(ctx, key, klen, buf, (size_t)n);
}
#else
static int linelen_emit_sum(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals)
{
    int64_t sum = 0, x;
    int rc;
    while ((rc = tally_values_next_int(vals, &x)) == 1) sum += x;
    if (rc < 0) return rc;
    return tally_emit_int(ctx, key, klen, sum);
}

static uint32_t linelen_partition(const void *key, size_t klen, uint32_t nparts, void *state)
{
    const struct linelen_state *s = state;
    char buf[32];
    if (klen >= sizeof buf) return 0;
    memcpy(buf, key, klen);
    buf[klen] = '\0';
    return (uint32_t)(strtoul(buf, NULL, 10) / s->bucket % nparts);
}
#endif

static const char *linelen_columns(void *state)
{
    (void)state;
    return "length\tlines";
}

static const tally_option linelen_options[] = {
    {"bucket", 'b', 1, "bucket width in bytes (default 10)"},
    {NULL, 0, 0, NULL},
};

#ifdef LINELEN_NO_SYMBOL
#define LINELEN_SYMBOL linelen_job_def
#else
#define LINELEN_SYMBOL tally_job_def
#endif
#ifdef LINELEN_BAD_ABI
#define LINELEN_ABI (TALLY_ABI_VERSION + 41)
#elif defined LINELEN_ABI1
#define LINELEN_ABI 1
#else
#define LINELEN_ABI TALLY_ABI_VERSION
#endif

extern const tally_job LINELEN_SYMBOL;
const tally_job LINELEN_SYMBOL = {
    .abi_version = LINELEN_ABI,
    .name = "linelen",
    .description = "counts lines per length bucket (a test job)",
#ifdef LINELEN_BYTES
    .flags = 0,
    .combine = linelen_emit_sum,
#else
    .flags = TALLY_INT_VALUES | TALLY_COMBINE_SUM,
    .partition = linelen_partition,
#endif
    .options = linelen_options,
    .setup = linelen_setup,
    .teardown = linelen_teardown,
    .map = linelen_map,
    .reduce = linelen_emit_sum,
    .columns = linelen_columns,
};
