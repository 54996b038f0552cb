/* local.h - runs a job's tasks in executor processes of this machine, driven by the shared
 * scheduler: the driver of `tally run`; the cluster coordinator drives the same sched_job with
 * remote workers instead. */
#ifndef TALLY_LOCAL_H
#define TALLY_LOCAL_H

#include <signal.h>
#include <stdint.h>

#include <jansson.h>

#include "exec/sched.h"
#include "exec/task.h"

struct execpool;

typedef struct local_status {
    const sched_job *job;
    uint64_t input_bytes_done;   /* bytes of input consumed by map attempts so far */
    uint64_t elapsed_ms;
} local_status;

/* Called about every 100 ms from the driving thread, and once at the end. */
typedef void (*local_progress_fn)(void *arg, const local_status *st, int final);

/* Runs `job` to a terminal state, at most `slots` attempts at once on the executors of `exec`
 * (at least `slots` of them; the caller owns the pool), `spec` being the job spec as the
 * executors take it (wire_jobspec_encode) and `job_id` the id they know the job by: executors
 * keep a job opened while the id stays the same, so each run on a kept pool needs its own. `interrupted` (may be NULL) is polled: when it
 * becomes non-zero the job is cancelled and running attempts are killed. Returns 0 when the
 * loop ran to the end (check job->state), or a negative code on an internal error. */
int local_run(const task_env *env, struct execpool *exec, const char *job_id, const json_t *spec, sched_job *job,
              uint32_t slots, volatile sig_atomic_t *interrupted, local_progress_fn progress, void *arg, struct err *e);

#endif
