/* output.h - the job output directory and its commit protocol.
 *
 * A job owns OUT through a claim on OUT/_temporary (common/claim.h): creating it is atomic, so
 * of two jobs started at once on one OUT exactly one gets it and the other is refused before
 * it touches anything; a job never removes what another job owns. OUT itself may exist
 * beforehand only if it is empty, or with --overwrite, whose old entries are moved into
 * OUT/_temporary/_previous (and put back if the job fails, deleted once it has committed).
 *
 * Reduce attempts write part files into OUT/_temporary and rename them to their final name
 * there when they succeed (task commit). When every reduce has committed, output_commit()
 * renames each part into OUT, then writes _columns and _counters.json, then _SUCCESS, and only
 * then gives up the claim (job commit). output_abort() removes exactly what the job wrote,
 * restores what --overwrite moved aside, and removes OUT if the job created it and it is
 * empty. A job whose process died (SIGKILL, a lost coordinator) leaves its claim stale; the
 * next job on that OUT takes it over and does that rollback first.
 *
 * States of OUT/_temporary:  (none) -> claimed (output_prepare) -> (none) (output_commit or
 * output_abort); claimed -> stale (the owner died) -> claimed (the next output_prepare).
 */
#ifndef TALLY_OUTPUT_H
#define TALLY_OUTPUT_H

#include <stdint.h>

#include "common/claim.h"
#include "common/util.h"
#include "data/input.h"

typedef struct output {
    char *dir;          /* OUT */
    char *tmp;          /* OUT/_temporary */
    char *owner;        /* the claim's owner text, without the phase */
    int created;        /* OUT did not exist before this job */
    claim claim;        /* held from output_prepare() to output_commit()/output_abort() */
    uint32_t committed; /* parts renamed into OUT so far by output_commit() */
    int committing;     /* output_commit() has begun: the files of the commit are this job's */
} output;

/* Claims OUT for a job described by `owner` (see claim_owner_text). Refuses (-EEXIST) a
 * non-empty OUT unless `overwrite`, and (-EBUSY) an OUT another running job writes; the
 * message names OUT and, for -EBUSY, the other job. */
int output_prepare(output *o, const char *dir, int overwrite, const char *owner, struct err *e);
/* Job commit: parts 0..nparts-1 must be in OUT/_temporary. columns may be NULL. */
int output_commit(output *o, uint32_t nparts, const char *columns, const char *counters_json,
                  struct err *e);
/* A coordinator that takes a job over from one that died (or was deposed) takes its claim
 * over as it stands, without the rollback output_prepare() does: `owner` is the text the job
 * was prepared with, `created` whether it made OUT. Returns 0 (held now; o->committing if the
 * job commit had begun, which output_commit() then finishes), 1 if the job had committed
 * (nothing is held), -EAGAIN if the previous coordinator still holds it (a paused process:
 * try again later), or another negative code with a message. */
int output_adopt(output *o, const char *dir, const char *owner, int created, struct err *e);
/* Where reduce attempt `attempt` of job `job_id` writes its part file: OUT/_temporary/
 * JOB.aN (malloc'd). Named by the job too, so that a late attempt of an earlier job on the
 * same OUT can never be mistaken for one of this job's. */
char *output_attempt_dir(const char *out, const char *job_id, uint32_t attempt);
/* Task commit, by whoever drives the job: the attempt's part file becomes the task's
 * OUT/_temporary/part-NNNNN (one rename), then its directory goes. */
int output_commit_task(const char *out, const char *job_id, uint32_t attempt, uint32_t part, struct err *e);
/* Rolls back everything the job did to OUT; a no-op on an output that was never prepared. */
void output_abort(output *o);
void output_free(output *o);

/* Refuses (-EINVAL, a usage error) an OUT that equals, contains or lies inside an input: the
 * input arguments `args` (directories, files, globs) and the expanded files of `in`, all
 * compared after resolving symbolic links and "..", so that --overwrite can never delete an
 * input and a job never reads its own output. Relative arguments are relative to `base`
 * (NULL: this process's directory), as for input_expand(). */
int output_check_inputs(const char *out, char *const *args, size_t nargs, const char *base, const input_set *in,
                        struct err *e);

#endif
