/* task.h - runs one attempt of a map or reduce task in this process.
 *
 * A map attempt reads its split, calls the job's map, buffers and combines the output in a
 * mapbuf, spills sorted runs when the buffer is full, and merges the runs into one map output
 * file with a segment per reduce partition. A reduce attempt k-way merges its partition's
 * segment of every map output, calls the job's reduce per key and writes one part file.
 * Attempts write under attempt-specific names and rename on success, so a failed or superseded
 * attempt never leaves a file under a committed name. The same code runs under `tally run`'s
 * threads and inside a cluster worker.
 */
#ifndef TALLY_TASK_H
#define TALLY_TASK_H

#include <stdatomic.h>
#include <stdint.h>

#include <tally/tally.h>

#include "common/util.h"
#include "data/input.h"
#include "exec/counters.h"
#include "exec/jobspec.h"

struct mapbuf;

typedef struct task_env {
    const jobspec *spec;
    const tally_job *job;
    void *state;                /* the job's setup() state */
    const input_set *inputs;    /* files (and the planned splits) the map splits refer to */
    const char *work_dir;       /* where this process keeps intermediate files */
    const char *out_tmp;        /* OUT/_temporary: committed part files wait here */
    volatile int *cancel;       /* set to stop attempts early (Ctrl-C, job cancelled) */
    /* Used by cluster executors (may be NULL): `live` is memory shared with the worker, which
     * reads the attempt's progress and counters from it for its heartbeats and, if the task
     * process dies, the record its map() call was on. Records listed in `skip` (those that
     * crashed attempts before) are skipped and counted instead of being given to the job
     * (bad-record skipping, Google MapReduce section 4.6). */
    struct task_live *live;
    struct task_pace *pace;     /* may be NULL: checkpoints of --chaos-slow (below) */
    const struct task_skip *skip;
    size_t nskip;
    uint64_t reduce_records;    /* records in the reduce's input, when known: for progress */
} task_env;

/* What a running attempt shows the process that supervises it. The crash location is written
 * around every map() call; progress and counters every few hundred records, under a sequence
 * number (odd while writing) so that a reader in another process never sees half an update. */
typedef struct task_live {
    volatile uint32_t file;     /* index into inputs->files, UINT32_MAX when not in map() */
    volatile uint64_t offset;
    _Atomic uint32_t seq;
    double progress;            /* 0..1 */
    int64_t counters[CNT_NBUILTIN];
    /* The other direction, supervisor to attempt: the --chaos-slow factor (the bits of a
     * double; 0 when never set, i.e. 1), read at every checkpoint so that a worker can change
     * it under a running attempt. Not per attempt: task_live_reset() leaves it alone. */
    _Atomic uint64_t slow_bits;
} task_live;

/* Clears what an attempt publishes (before the next one starts). */
void task_live_reset(task_live *l);
void task_live_publish(task_live *l, double progress, const counters *c);
/* Copies a consistent snapshot; returns 0, or -1 if the writer kept it busy (try later). */
int task_live_read(const task_live *l, double *progress, int64_t values[CNT_NBUILTIN]);
/* The slow-down factor: set by the worker, read by the attempt's checkpoints. Factors below 1
 * (and anything not a number) read as 1, above 1000 as 1000. */
void task_live_set_slow(task_live *l, double factor);
double task_live_slow(const task_live *l);

/* Deliberate slowness (failure injection, `tally worker --chaos-slow F`): an attempt runs F
 * times as long as it otherwise would, and evenly so. At each checkpoint it owes (F - 1) times
 * the time it worked since the previous one, and pays that debt by sleeping once it reaches a
 * millisecond, so its progress advances F times slower all along: a scheduler sees a slow
 * attempt from its first heartbeat, not one that stalls at the end. The map loop checkpoints
 * every 256 records, the reduce loop every 256 groups, a reducer after each fetched segment
 * (fetching counts as work), and the executor once more when the attempt ends (spills, merges
 * and commits count too). A kill stays prompt: it is a SIGKILL of the executor, and a sleep
 * also ends early, in 10 ms slices, when the factor drops to 1. */
typedef struct task_pace {
    const task_live *live;      /* where the factor is read; NULL: never slows */
    uint64_t mark_ns;           /* when the last checkpoint ended: time since then is work */
    int64_t debt_ns;            /* sleep owed and not yet slept (negative: overslept) */
    uint64_t slept_ns;          /* slept in all */
} task_pace;

void task_pace_begin(task_pace *p, const task_live *live);
/* A checkpoint (p may be NULL). `final`: the attempt's end, pay the whole debt now. */
void task_pace_check(task_pace *p, int final);
/* The time since the last checkpoint was spent waiting for others (a reducer waiting for a
 * map to be re-run), not working: it is not multiplied. p may be NULL. */
void task_pace_skip(task_pace *p);

typedef struct task_skip {
    const char *path;
    uint64_t offset;
} task_skip;

typedef struct task_result {
    counters counters;
    struct err err;
    int fatal;                  /* retrying cannot help (bad input under --strict, ...) */
    char skip_note[256];        /* the first record skipped and why ("" if none) */
} task_result;

/* One reduce input: a sorted segment of some file (a local map output, or a fetched copy). */
typedef struct task_segment {
    char *path;
    uint64_t offset, length;
    uint32_t crc;
} task_segment;

void task_result_init(task_result *r);
void task_result_free(task_result *r);

/* Path of map task `index`'s committed output in env->work_dir (caller frees). */
char *task_map_output_path(const task_env *env, uint32_t index);

/* Runs a map attempt; `progress` (may be NULL) receives the input bytes consumed so far.
 * `reuse` (may be NULL) is a per-thread slot holding a map buffer from an earlier attempt: a
 * thread that runs many maps keeps its table and arena instead of faulting in fresh memory
 * for each (the caller frees it with mapbuf_free at the end). Returns 0 on success (output
 * committed) or a negative code with res->err set. */
int task_run_map(const task_env *env, const input_split *split, uint32_t index, uint32_t attempt,
                 _Atomic uint64_t *progress, struct mapbuf **reuse, task_result *res);

/* Finds partition `part` in each of the `n` map output files. */
int task_local_segments(const char *const *paths, size_t n, uint32_t part, task_segment **segs,
                        struct err *e);
void task_segments_free(task_segment *segs, size_t n);

/* Runs a reduce attempt over `segs`, committing OUT/_temporary/part-NNNNN on success. */
int task_run_reduce(const task_env *env, uint32_t index, uint32_t attempt, const task_segment *segs,
                    size_t nsegs, task_result *res);

#endif
