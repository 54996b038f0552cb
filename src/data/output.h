/* output.h - the job output directory and its commit protocol.
 *
 * Reduce attempts write part files into OUT/_temporary and rename them to their final name
 * there when they succeed (task commit). When every reduce has committed, output_commit()
 * renames each part into OUT, then writes _columns and _counters.json, and _SUCCESS last (job
 * commit). output_abort() removes everything the job wrote, so a failed or interrupted job
 * leaves neither _SUCCESS nor a part file, and removes OUT itself if the job created it.
 */
#ifndef TALLY_OUTPUT_H
#define TALLY_OUTPUT_H

#include <stdint.h>

#include "common/util.h"

typedef struct output {
    char *dir;      /* OUT */
    char *tmp;      /* OUT/_temporary */
    int created;    /* OUT did not exist before this job */
} output;

/* Refuses a non-empty OUT unless `overwrite` (then empties it); creates OUT/_temporary. */
int output_prepare(output *o, const char *dir, int overwrite, struct err *e);
/* Job commit: parts 0..nparts-1 must be in OUT/_temporary. columns may be NULL. */
int output_commit(output *o, uint32_t nparts, const char *columns, const char *counters_json,
                  struct err *e);
void output_abort(output *o);
void output_free(output *o);

#endif
