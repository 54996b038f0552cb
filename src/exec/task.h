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
} task_live;

void task_live_reset(task_live *l);
void task_live_publish(task_live *l, double progress, const counters *c);
/* Copies a consistent snapshot; returns 0, or -1 if the writer kept it busy (try later). */
int task_live_read(const task_live *l, double *progress, int64_t values[CNT_NBUILTIN]);

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
