/* series.h - iteration runs of `tally run` and `tally submit` (--iterations, --keep-iterations,
 * --results): where each iteration's output goes, and the results CSV with one row per
 * iteration that another tool (`tally report`) reads.
 *
 * A series is N runs of the same job, one after the other, each planned afresh. The commands
 * drive the loop themselves; this module only knows the names and the file format, so that
 * both write exactly the same rows. */
#ifndef TALLY_SERIES_H
#define TALLY_SERIES_H

#include <stdint.h>

#include "common/util.h"
#include "exec/sched.h"

#define SERIES_MAX_ITERATIONS 1000000

/* The header of the results CSV, exactly: a file with another first line is refused. */
#define SERIES_HEADER                                                                                      \
    "iteration,start,total_ms,map_ms,reduce_ms,slowest_attempt_ms,attempts,speculative_attempts,"        \
    "killed_attempts,slowest_worker"

typedef struct series_opts {
    uint64_t iterations;  /* 1..SERIES_MAX_ITERATIONS */
    int keep;             /* --keep-iterations: iteration i goes to OUT/iter-NNNN */
    const char *results;  /* --results FILE or DIR, or NULL; points into argv or the environment */
} series_opts;

/* 1 if more than one plain run was asked for: a series reports each iteration on stderr, and
 * `submit` cancels the running iteration's job on Ctrl-C instead of leaving it running. */
int series_active(const series_opts *o);

/* Where iteration i (from 1) writes: OUT itself, or OUT/iter-NNNN with --keep-iterations.
 * Returns a malloc'd path. */
char *series_out(const series_opts *o, const char *out, uint64_t i);

/* Before the first iteration, with --keep-iterations only (a no-op otherwise): OUT holds the
 * iterations' directories, so it is held to the rules of an OUT as a whole: it must be a
 * directory that is empty, or missing, unless `overwrite` (then each OUT/iter-NNNN is replaced
 * as --overwrite replaces an output, and nothing else in OUT is touched). *existed says whether
 * OUT was there, so that a failed series can remove an OUT it made. Returns 0, or -EEXIST /
 * -ENOTDIR with a message naming OUT. */
int series_check_out(const series_opts *o, const char *out, int overwrite, int *existed, struct err *e);

/* The results CSV. Rows are appended with one write() each on an O_APPEND descriptor, so a
 * row is complete in the file before the next iteration starts and a series that dies leaves
 * only whole rows. */
typedef struct series_results {
    char *path;  /* the file; NULL until chosen when --results named a directory */
    char *dir;   /* --results named this directory, or NULL */
    int fd;      /* -1 until opened */
} series_results;

/* Opens `arg` for appending before anything runs: a new or empty file gets the header, an
 * existing file must start with it (-EINVAL, naming the file, if not). A directory is only
 * checked to be writable: the file in it is named after the plan (series_results_choose).
 * Returns 0 or a negative code with a message; r needs series_results_close() either way. */
int series_results_open(series_results *r, const char *arg, struct err *e);
/* For a directory: opens DIR/results_M<maps>_R<reduces>_iters<N>_YYYYMMDD_HHMMSS.csv (local
 * time of `start_ms`, the first iteration's start) as series_results_open() opens a file and
 * prints its path on stderr. A no-op if the file is chosen already. */
int series_results_choose(series_results *r, uint64_t maps, uint64_t reduces, uint64_t iterations, uint64_t start_ms,
                          struct err *e);

/* One iteration's row. */
typedef struct series_row {
    uint64_t iteration;   /* 1..N */
    uint64_t start_ms;    /* wall clock, ms since the epoch */
    uint64_t total_ms;    /* the iteration's wall time */
    sched_summary sum;
} series_row;

/* Appends the row (the file must be chosen). Returns 0 or a negative code with a message. */
int series_results_append(series_results *r, const series_row *row, struct err *e);
void series_results_close(series_results *r);

/* The per-iteration line on stderr: "tally: iteration i/N: T ms (map M ms, reduce R ms)". */
void series_report(const series_row *row, uint64_t iterations);

#endif
