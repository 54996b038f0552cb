/* taskproc.h - the executor: a long-lived child process of a worker (or of `tally run`) that
 * runs attempts one at a time (`tally __executor`), and the framing of the pipe between them.
 *
 * Pipe protocol: each message is a 4-byte length in host byte order followed by that many
 * bytes of JSON. The worker writes an assignment to the executor's fd 3, the executor answers
 * with one result on its fd 4, then waits for the next assignment. The executor exits when the
 * worker closes its end (or dies: a watchdog thread sees the hang-up even mid-task).
 *
 * Assignment: {"job","attempt","phase":"map"|"reduce","index","spec":{...},"work_dir",
 *              "split":{...},"skip":[...],"inline_max"? (map) |
 *              "maps":[{"index","address","attempt","segment"?}] + "token","coordinator","worker",
 *              "incarnation" (a cluster reduce: fetches from workers what came without a segment) |
 *              "map_dir","nmaps" (a `tally run` reduce: map outputs are local files)}
 *             or {"phase":"describe","spec":{...}}: load the job and run its setup() only (for the
 *             coordinator, which never runs user code itself): {"ok","error","name","flags",
 *             "columns","required":[{"name","hint"}]}
 * Result:     {"ok":bool,"error","fatal":bool,"counters":{...},"fetch_failed_map":N,"output"?: a map's
 *             output of at most inline_max bytes, [{"data","crc","records"}] per partition}; a reduce
 *             leaves its part file in OUT/_temporary/JOB.aN/ for the driver's task commit.
 */
#ifndef TALLY_TASKPROC_H
#define TALLY_TASKPROC_H

#include <stddef.h>

#include "common/util.h"

#define TASKPROC_MAX_FRAME (256u << 20)

/* The executor's life (`tally __executor LIVE_FILE LOG_LEVEL`, whose arguments cli/executor.c
 * checks): serves assignments on fds 3 and 4 until the worker goes away, publishing progress in
 * the task_live page of the file at live_path. Returns the exit code: 0 when the worker closed
 * the pipe, EXITCODE_FAILED when fds 3 and 4 are not pipes, the page cannot be mapped or a pipe
 * broke. */
int taskproc_serve(const char *live_path);

/* Writes one frame; 0 or a negative errno. */
int taskproc_frame_write(int fd, const char *data, size_t len);
/* Reads one frame into a malloc'd NUL-terminated buffer. Returns 1 with a frame, 0 at a clean
 * end of file before any byte, or a negative errno (a torn frame is -EPIPE). */
int taskproc_frame_read(int fd, char **data, size_t *len);

#endif
