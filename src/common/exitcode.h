/* exitcode.h - the process exit codes of every tally command (README, "Exit codes"): the CLI
 * returns them, and so do the library calls it makes on a command's behalf (coord_run,
 * worker_run, the client calls, taskproc_serve), which know which kind of failure they met. */
#ifndef TALLY_EXITCODE_H
#define TALLY_EXITCODE_H

#define EXITCODE_OK 0
#define EXITCODE_FAILED 1      /* the job (or command) ran and failed */
#define EXITCODE_USAGE 2       /* the command line is wrong: bad option, missing input, unusable OUT */
#define EXITCODE_UNREACHABLE 3 /* cannot reach the coordinator, or it refused our token */
#define EXITCODE_INTERRUPTED 130 /* stopped by Ctrl-C / SIGTERM (128 + SIGINT, as shells report it) */

#endif
