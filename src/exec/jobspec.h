/* jobspec.h - everything that defines one job run: the job, its arguments, inputs, output and
 * settings. `tally run` fills it from the command line; the cluster sends it over the wire. */
#ifndef TALLY_JOBSPEC_H
#define TALLY_JOBSPEC_H

#include <stddef.h>
#include <stdint.h>

#include "data/fields.h"

#define JOBSPEC_DEFAULT_SORT_BUFFER (64ull << 20)
#define JOBSPEC_DEFAULT_MAX_RECORD (64ull << 20)
#define JOBSPEC_DEFAULT_SPLIT_SIZE (64ull << 20)
#define JOBSPEC_DEFAULT_MAX_ATTEMPTS 4u
/* A job that skips more than this share of its input records fails (--max-skipped-ratio). */
#define JOBSPEC_DEFAULT_MAX_SKIPPED_RATIO 0.1

typedef struct jobspec {
    char *job;              /* built-in job name, or the path of a user job .so */
    size_t nargs;
    char **arg_names, **arg_values;
    char **inputs;
    size_t ninputs;
    char *out;
    uint64_t maps;          /* -m; 0 = one per split_size bytes, at least `workers` */
    uint32_t reduces;       /* -r */
    uint32_t workers;       /* -w: parallel task slots of `tally run` */
    int format_forced;      /* --format given */
    fields_format format;
    uint64_t sort_buffer;   /* --sort-buffer, bytes per map task */
    uint64_t max_record;    /* --max-record */
    uint64_t split_size;
    int strict, overwrite;
    uint32_t max_attempts;
    double max_skipped_ratio; /* --max-skipped-ratio: 0..1; 1 accepts any number of skipped records */
    char *work_dir;         /* --work-dir: parent of the job's own intermediate directory */
    char *cwd;              /* the directory relative inputs are relative to (tally submit's);
                             * NULL: this process's */
} jobspec;

void jobspec_init(jobspec *s);
void jobspec_free(jobspec *s);
/* Sets (or replaces) a job argument; copies both strings. */
void jobspec_set_arg(jobspec *s, const char *name, const char *value);
/* The value of a job argument or NULL. */
const char *jobspec_arg(const jobspec *s, const char *name);
void jobspec_add_input(jobspec *s, const char *path);

#endif
