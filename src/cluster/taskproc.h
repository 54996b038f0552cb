/* taskproc.h - the child-process side of a worker's attempt (`tally __task`). */
#ifndef TALLY_TASKPROC_H
#define TALLY_TASKPROC_H

#include <jansson.h>

#include "exec/task.h"

int taskproc_main(int argc, char **argv);
/* Runs the attempt described by `assignment`, writes the result JSON to result_path; returns
 * the exit code for the child process. `where` (may be NULL) is shared with the worker, which
 * reads it to say which record a crashed map attempt was processing. */
int taskproc_run(json_t *assignment, const char *result_path, task_where *where);

#endif
