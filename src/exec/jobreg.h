/* jobreg.h - finds a job by name: the built-in jobs, or a user job loaded from a shared object. */
#ifndef TALLY_JOBREG_H
#define TALLY_JOBREG_H

#include <stddef.h>

#include <tally/tally.h>

#include "common/util.h"

/* Loads `name`: a built-in job name, or a path (contains '/' or ends in ".so") to a user job
 * that exports TALLY_JOB_SYMBOL. On success *handle is the dlopen handle (NULL for built-ins)
 * to pass to jobreg_unload. Errors: -ENOENT unknown job, -EINVAL unloadable or bad ABI; the
 * message says which and what to do. */
int jobreg_load(const char *name, const tally_job **job, void **handle, struct err *e);
void jobreg_unload(void *handle);
/* The built-in jobs, for `tally jobs` and help. */
const tally_job *const *jobreg_builtins(size_t *n);

#endif
