/* sched.h - the job, task and attempt state machines: which task runs next, which attempt
 * commits, when a job has succeeded or failed. One implementation serves `tally run` (threads
 * in one process) and the cluster coordinator (workers over the network); it does no I/O and
 * takes time as a parameter, so callers drive it from their own loop and tests drive it by hand.
 *
 * Job:      QUEUED  -> RUNNING    sched_job_start()
 *           RUNNING -> SUCCEEDED  sched_attempt_succeeded() commits the last reduce task (maps
 *                                 lost after that are not needed: their re-runs are killed)
 *           RUNNING -> FAILED     sched_attempt_failed(): a task has failed max_attempts times,
 *                                 or its failure is fatal (retrying cannot help);
 *                                 sched_attempt_succeeded(): the last map commits and the maps
 *                                 skipped more than max_skipped_ratio of their records
 *           QUEUED/RUNNING -> CANCELLED  sched_job_cancel()
 *           QUEUED/RUNNING -> FAILED     sched_job_fail()
 * Task:     PENDING -> RUNNING    sched_assign() starts an attempt (maps first; reduces only
 *                                 once every map has succeeded; a reduce keeps running if a
 *                                 map output is lost later, and waits for its re-run)
 *           RUNNING -> SUCCEEDED  sched_attempt_succeeded(): the first successful attempt commits
 *           RUNNING -> PENDING    sched_attempt_failed() with attempts left, sched_attempt_killed()
 *           RUNNING -> FAILED     sched_attempt_failed() with no attempts left
 *           SUCCEEDED -> PENDING  sched_map_lost(): a map's output is gone with its worker
 * Copies:   a RUNNING task may get a second attempt beside its first (sched_start_copy: a
 *           speculative copy of a straggler, or a migration off a worker on probation); the
 *           first of them to succeed commits and the other is killed at once ("superseded").
 * Attempt:  RUNNING -> SUCCEEDED | FAILED | KILLED (lost worker, superseded, cancelled); a report
 *           about an attempt that is no longer RUNNING is ignored, so late results from a
 *           superseded attempt or a dead worker never change the outcome.
 */
#ifndef TALLY_SCHED_H
#define TALLY_SCHED_H

#include <stddef.h>
#include <stdint.h>

#include "exec/counters.h"

typedef enum sched_job_state {
    SCHED_JOB_QUEUED,     /* submitted, waiting for its turn */
    SCHED_JOB_RUNNING,    /* tasks are being assigned */
    SCHED_JOB_SUCCEEDED,  /* every reduce task committed; the output can be committed */
    SCHED_JOB_FAILED,     /* a task failed for good; `error` says which and why */
    SCHED_JOB_CANCELLED,  /* stopped on request */
} sched_job_state;

typedef enum sched_task_state {
    SCHED_TASK_PENDING,   /* waiting for a slot (or for the maps, for a reduce) */
    SCHED_TASK_RUNNING,   /* at least one attempt running */
    SCHED_TASK_SUCCEEDED, /* one attempt committed */
    SCHED_TASK_FAILED,    /* out of attempts */
} sched_task_state;

typedef enum sched_attempt_state {
    SCHED_ATTEMPT_RUNNING,
    SCHED_ATTEMPT_SUCCEEDED,
    SCHED_ATTEMPT_FAILED,
    SCHED_ATTEMPT_KILLED,
} sched_attempt_state;

typedef enum sched_phase { SCHED_MAP, SCHED_REDUCE } sched_phase;

/* Why an attempt was started while another attempt of its task was still running. */
typedef enum sched_copy {
    SCHED_COPY_NONE,      /* a first run, or a re-run after a failure or a loss */
    SCHED_COPY_STRAGGLER, /* speculative: its original's estimated time left was too long */
    SCHED_COPY_MIGRATE,   /* its original's worker was put on probation */
} sched_copy;

typedef struct sched_attempt {
    uint32_t id;          /* unique in the job; index into sched_job.attempts */
    uint32_t task;        /* index into sched_job.tasks */
    sched_attempt_state state;
    uint64_t start_ms, end_ms;
    char worker[64];      /* who runs it */
    char *error;
    double progress;      /* 0..1, as last reported while running; 1 once succeeded */
    uint64_t progress_ms; /* when progress was last reported */
    int64_t live[CNT_NBUILTIN]; /* its built-in counters so far (final ones go to the task) */
    uint64_t tag;         /* the caller's (the coordinator: which heartbeat answer carried it) */
    int counted;          /* the caller's (the coordinator: its end is in the metrics) */
    int64_t blocked_on;   /* a reduce waiting for this map's output to be re-run, or -1 */
    sched_copy copy;      /* SCHED_COPY_NONE, or why it was started beside a running attempt */
    double rate;          /* progress per second as its worker measured it, or 0 (then progress/elapsed) */
    int superseded;       /* KILLED because another attempt of its task committed first */
} sched_attempt;

typedef struct sched_task {
    sched_phase phase;
    uint32_t index;       /* map or reduce number */
    sched_task_state state;
    uint32_t failures;    /* failed attempts; killed ones do not count */
    uint32_t running;     /* attempts now running */
    int64_t committed;    /* id of the committed attempt, or -1 */
    counters counters;    /* of the committed attempt */
} sched_task;

/* A record a map attempt was on when its process died (bad-record skipping, Google
 * MapReduce section 4.6): once it has crashed SCHED_SKIP_AFTER attempts, later attempts of
 * its map skip it and count it in records_skipped. */
#define SCHED_SKIP_AFTER 2
#define SCHED_MAX_CRASHES 64 /* distinct records remembered per map */
typedef struct sched_crash {
    uint32_t map;
    char *file;
    uint64_t offset;
    uint32_t count;
} sched_crash;

typedef struct sched_job {
    sched_job_state state;
    uint32_t nmaps, nreduces;
    sched_task *tasks;    /* maps 0..nmaps-1, then reduces */
    sched_attempt *attempts;
    size_t nattempts, cap;
    uint32_t maps_done, reduces_done;
    /* Pending tasks in FIFO order, one ring per phase; a task is in its ring iff PENDING, so
     * assignment is O(1) however many tasks a job has. */
    uint32_t *ring[2];
    uint32_t ring_head[2], ring_len[2], ring_cap[2];
    uint32_t max_attempts;
    uint32_t blocked;     /* running reduce attempts waiting for a lost map's re-run */
    uint32_t running;     /* attempts running (the sum of the tasks' `running`) */
    double median_ms[2];  /* sched_phase_median_ms()'s, cached until the next success */
    int median_stale[2];
    char *error;
    uint64_t submit_ms, start_ms, end_ms;
    sched_crash *crashes;
    size_t ncrashes;
    /* Set by the caller after sched_job_new (default 1: no limit): once every map has
     * committed, a job whose maps skipped more than this share of their input records fails. */
    double max_skipped_ratio;
    char *skip_example;   /* the first skipped record a map reported, and why */
} sched_job;

sched_job *sched_job_new(uint32_t nmaps, uint32_t nreduces, uint32_t max_attempts, uint64_t now);
void sched_job_free(sched_job *j);
void sched_job_start(sched_job *j, uint64_t now);

/* Starts an attempt of the next runnable task on `worker`; returns its id, or -1 when nothing
 * can run now. `phase_mask` (1 << SCHED_MAP | 1 << SCHED_REDUCE) limits the phases offered. */
int64_t sched_assign(sched_job *j, const char *worker, unsigned phase_mask, uint64_t now);

/* Speculation (LATE, Zaharia et al., OSDI 2008; backup tasks, Dean & Ghemawat section 3.6).
 * For every running task with a single attempt, time left = (1 - progress) / rate, the rate
 * being the worker's measure or progress / elapsed. A fresh run on the candidate worker is
 * estimated from the median successful attempt of the same phase in this job, else from
 * `history_ms` (the same task in earlier runs of the same job, the caller's memory), else from
 * the attempt's own estimated total; each scaled by the workers' slowness (1 = typical).
 * A straggler is copied when time left > factor x the fresh estimate, it gains at least
 * min_gain_ms and it has run at least min_ms; a migration (the attempt's worker is on
 * probation) once it has run as long as a fresh run would take and its time left exceeds that:
 * a probe that is fast after all finishes first, and its worker's return is not held back by a
 * copy racing it from the start. */
typedef struct sched_spec {
    double factor;            /* straggler: time left must exceed factor x a fresh run */
    uint64_t min_ms;          /* never copy an attempt younger than this */
    uint64_t min_gain_ms;     /* nor one whose copy would save less than this */
    /* The caller's view of the workers: how many times slower than typical (1 = typical,
     * 0 = unknown, taken as 1), and whether a worker is on probation. */
    double (*slowness)(void *arg, const char *worker);
    int (*probation)(void *arg, const char *worker);
    /* A typical duration of this task from earlier runs of the same job, or 0. */
    double (*history_ms)(void *arg, const sched_job *j, uint32_t task);
    void *arg;
} sched_spec;

/* The decision sched_pick_copy() made, for the log and the metrics. */
typedef struct sched_copy_why {
    uint32_t attempt;         /* the original */
    double left_ms, fresh_ms, elapsed_ms, progress;
} sched_copy_why;

/* The task whose copy on `worker` is worth most (largest time left) by the rules above for
 * `reason`, or -1. Changes nothing. */
int64_t sched_pick_copy(sched_job *j, const char *worker, const sched_spec *sp, sched_copy reason, uint64_t now,
                        sched_copy_why *why);
/* Starts a copy of RUNNING task `task` on `worker`; returns its attempt id, or -1 if the task
 * is not running (then nothing changes). */
int64_t sched_start_copy(sched_job *j, uint32_t task, const char *worker, sched_copy reason, uint64_t now);
/* The median duration of the job's successful attempts of `phase`, or 0 if none (cached: it is
 * recomputed only after a success). */
double sched_phase_median_ms(sched_job *j, sched_phase phase);

/* Reports. Each returns 1 if it changed state, 0 if ignored (attempt not running). */
int sched_attempt_succeeded(sched_job *j, uint32_t attempt, const counters *c, uint64_t now);
int sched_attempt_failed(sched_job *j, uint32_t attempt, const char *error, int fatal, uint64_t now);
int sched_attempt_killed(sched_job *j, uint32_t attempt, const char *why, uint64_t now);
/* Progress of a running attempt (ignored otherwise). */
void sched_attempt_progress(sched_job *j, uint32_t attempt, double progress, const int64_t live[CNT_NBUILTIN],
                            uint64_t now);
/* A running reduce attempt waits for map_index's output (lost, being re-run); cleared when
 * that map commits again. Returns 1 if recorded. */
int sched_reduce_blocked(sched_job *j, uint32_t attempt, uint32_t map_index);
/* A committed map's output was lost: the map must run again. Returns 1 if it was committed. */
int sched_map_lost(sched_job *j, uint32_t map_index);
void sched_job_cancel(sched_job *j, const char *why, uint64_t now);
/* The job cannot go on for a reason outside its tasks (its output directory was taken away
 * while no coordinator ran): RUNNING -> FAILED with `why` as its error. */
void sched_job_fail(sched_job *j, const char *why, uint64_t now);
/* An attempt that is about to be reported succeeded skipped records; `example` names the first
 * ("file: offset N: why"), kept for the message if the job fails for skipping too many. */
void sched_note_skip(sched_job *j, const char *example);
/* A map attempt's process died while map() was on the record at file:offset. */
void sched_note_crash(sched_job *j, uint32_t map_index, const char *file, uint64_t offset);
/* The records map `map_index` must skip: up to `max` of them into out[]; returns how many. */
size_t sched_map_skips(const sched_job *j, uint32_t map_index, const sched_crash **out, size_t max);

int sched_job_done(const sched_job *j);   /* in a terminal state */
/* Sums the committed tasks' counters plus map_tasks, reduce_tasks and task_attempts. */
void sched_job_counters(const sched_job *j, counters *out);

/* What one run of a job was like, for the per-iteration results (`--results`) and status:
 * phases from the job's start to its last map commit and from there to its end. */
typedef struct sched_summary {
    uint64_t map_ms, reduce_ms;
    uint64_t slowest_ms;      /* the longest attempt that ended (any outcome) */
    char slowest_worker[64];  /* where it ran */
    uint32_t attempts, speculative, killed;
} sched_summary;
void sched_job_summary(const sched_job *j, sched_summary *out);

const char *sched_job_state_name(sched_job_state s);
const char *sched_copy_name(sched_copy c);
const char *sched_task_state_name(sched_task_state s);
const char *sched_attempt_state_name(sched_attempt_state s);

#endif
