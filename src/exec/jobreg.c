/* jobreg.c - the built-in job table and dlopen() of user jobs with an ABI check. */
#include "exec/jobreg.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

/* What jobreg_load hands back for a user job: the dlopen() handle and, for a job built for
 * ABI 1, a copy of its definition padded with the ABI 2 members (all NULL), since reading past
 * the end of the job's own shorter struct would be reading someone else's memory. */
struct jobreg_handle {
    void *dl;
    tally_job *copy;
};

extern const tally_job jobs_wordcount, jobs_grep, jobs_index, jobs_aggregate;

static const tally_job *const jobreg_table[] = {&jobs_wordcount, &jobs_grep, &jobs_index, &jobs_aggregate};

const tally_job *const *jobreg_builtins(size_t *n)
{
    *n = sizeof jobreg_table / sizeof jobreg_table[0];
    return jobreg_table;
}

static int jobreg_check(const tally_job *j, const char *name, struct err *e)
{
    if (j->abi_version != TALLY_ABI_VERSION && j->abi_version != 1)
        return err_set(e, -EINVAL, "%s: job ABI version %u, this tally supports %u: rebuild the job against this tally's include/tally/tally.h",
                       name, j->abi_version, TALLY_ABI_VERSION);
    if (!j->name || !j->map || !j->reduce)
        return err_set(e, -EINVAL, "%s: job definition lacks a name, map or reduce function", name);
    if (j->abi_version >= 2 && j->fold &&
        (!j->fold_size || !j->fold_encode || !j->combine || (j->flags & (TALLY_INT_VALUES | TALLY_COMBINE_SUM))))
        return err_set(e, -EINVAL, "%s: a job with fold needs fold_size, fold_encode and combine, and byte values", name);
    return 0;
}

int jobreg_load(const char *name, const tally_job **job, void **handle, struct err *e)
{
    *handle = NULL;
    size_t n = strlen(name);
    int is_path = strchr(name, '/') != NULL || (n > 3 && strcmp(name + n - 3, ".so") == 0);
    if (!is_path) {
        for (size_t i = 0; i < sizeof jobreg_table / sizeof jobreg_table[0]; i++) {
            if (strcmp(jobreg_table[i]->name, name) == 0) {
                *job = jobreg_table[i];
                return 0;
            }
        }
        return err_set(e, -ENOENT, "unknown job '%s' (built-in jobs: wordcount, grep, index, aggregate; a user job is a path to a .so)", name);
    }
    void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
    if (!h) return err_set(e, -EINVAL, "cannot load job %s: %s", name, dlerror());
    const tally_job *j = dlsym(h, TALLY_JOB_SYMBOL);
    if (!j) {
        dlclose(h);
        return err_set(e, -EINVAL, "%s: no '%s' symbol: a user job must export `const tally_job %s`",
                       name, TALLY_JOB_SYMBOL, TALLY_JOB_SYMBOL);
    }
    int rc = jobreg_check(j, name, e);
    if (rc) {
        dlclose(h);
        return rc;
    }
    struct jobreg_handle *jh = xcalloc(1, sizeof *jh);
    jh->dl = h;
    if (j->abi_version == 1) {
        jh->copy = xcalloc(1, sizeof *jh->copy);
        memcpy(jh->copy, j, TALLY_JOB_V1_SIZE);
        j = jh->copy;
    }
    *job = j;
    *handle = jh;
    return 0;
}

void jobreg_unload(void *handle)
{
    struct jobreg_handle *jh = handle;
    if (!jh) return;
    dlclose(jh->dl);
    free(jh->copy);
    free(jh);
}
