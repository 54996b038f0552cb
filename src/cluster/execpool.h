/* execpool.h - a worker's executor processes, one per slot (see cluster/taskproc.c).
 *
 * Executor: STARTING/IDLE -> BUSY   execpool_acquire() hands it to one attempt
 *           BUSY -> IDLE            execpool_run() got a result; execpool_release()
 *           BUSY -> DEAD            execpool_run() saw it die (crash, execpool_kill) and reaped it
 *           DEAD -> STARTING        execpool_release() starts a new process at once, so the slot
 *                                   stays warm (or execpool_run(), if that failed)
 *           IDLE -> (dead unnoticed) -> STARTING  execpool_run() cannot hand it the assignment:
 *                                   reaped and replaced, the assignment goes to the new one
 * Executors are exec'd (`tally __executor`), never forked from the threaded worker, so they
 * are safe under sanitizers and share nothing with the worker but two pipes and task_live.
 */
#ifndef TALLY_EXECPOOL_H
#define TALLY_EXECPOOL_H

#include <stdint.h>
#include <sys/types.h>

#include <jansson.h>

#include "common/util.h"
#include "exec/ctx.h"
#include "exec/task.h"

typedef struct execpool execpool;
typedef struct execpool_exec execpool_exec;

/* Starts n executors of `exe`; their shared progress pages live in `dir`. */
int execpool_new(execpool **out, const char *exe, const char *dir, uint32_t n, const char *level, struct err *e);
/* Attempts that run longer than ms (0: no limit, the default) are killed: their executor is
 * SIGKILLed and execpool_run() reports it dead. */
void execpool_set_limit(execpool *p, uint64_t ms);
/* Shutting down: idle executors are told to exit (end of input), busy ones are killed, and
 * none is started any more. */
void execpool_close(execpool *p);
/* Reaps the executors (waiting up to 3 s for each to exit by itself) and frees the pool; no
 * attempt may be using it. */
void execpool_free(execpool *p);

/* Waits for an executor that is not busy and marks it busy. */
execpool_exec *execpool_acquire(execpool *p);
/* Runs one assignment: resets the executor's task_live, sends, waits for the result. Returns 0
 * with *result, or a negative code if the executor died or could not be started (then
 * *wstatus holds its wait status, or -1; execpool_release() starts a replacement). */
int execpool_run(execpool *p, execpool_exec *x, const char *assignment, json_t **result, int *wstatus,
                 struct err *e);
void execpool_release(execpool *p, execpool_exec *x);
/* SIGKILLs the executor's process (a running attempt the coordinator no longer wants). */
void execpool_kill(execpool *p, execpool_exec *x);
/* Sets the --chaos-slow factor in every executor's shared page (task_live_set_slow): attempts
 * running now pace themselves by it from their next checkpoint on, later ones from the start.
 * The pages outlive the processes, so replacements of dead executors get it too. */
void execpool_set_slow(execpool *p, double factor);
/* Executor processes started so far (the first ones and every replacement). */
uint64_t execpool_starts(execpool *p);
/* The executor's shared page: progress, counters and the record a map() call is on. */
task_live *execpool_live(execpool_exec *x);
/* The result of an attempt whose executor died (wstatus from execpool_run, or -1 if it could
 * not be started): the signal or exit status, and for a map the record its map() call was on
 * ("crash": {"file","offset"}), so that a record that keeps crashing attempts can be skipped. */
json_t *execpool_crash_result(const json_t *assignment, const task_live *live, int wstatus);

/* What an executor says of a job it loaded and set up (taskproc's "describe"). */
typedef struct execpool_job {
    char *name;           /* the job's name */
    uint32_t flags;       /* TALLY_* job flags */
    char *columns;        /* the _columns line, or NULL */
    ctx_fields required;  /* the fields it requires (tally_require_field) */
} execpool_job;

/* Loads the job `spec` (a wire job spec) in one of p's executors and runs its setup() there,
 * so that no user code runs in the caller. Returns 0 with *out (free with execpool_job_free),
 * -EINVAL if setup() refused the arguments (a usage error), or -EIO if the job crashed or ran
 * past the pool's limit; e names the job and why. */
int execpool_describe(execpool *p, const json_t *spec, const char *job, execpool_job *out, struct err *e);
void execpool_job_free(execpool_job *d);

#endif
