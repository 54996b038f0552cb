/* cli.h - the subcommands of the `tally` binary; each returns the process exit code. */
#ifndef TALLY_CLI_H
#define TALLY_CLI_H

#include <stdio.h>

#include <tally/tally.h>

#include "cli/series.h"
#include "common/exitcode.h"
#include "common/util.h"
#include "exec/jobspec.h"

/* The commands, one file each in src/cli/. argv[0] is the command's name ("run"); each parses
 * its own options (one settings table per command, which also feeds its --help) and calls the
 * libraries below. */
int cli_run(int argc, char **argv);         /* run.c */
int cli_coordinator(int argc, char **argv); /* coordinator.c */
int cli_worker(int argc, char **argv);      /* worker.c */
int cli_submit(int argc, char **argv);      /* submit.c */
int cli_status(int argc, char **argv);      /* status.c */
int cli_cancel(int argc, char **argv);      /* cancel.c */
int cli_executor(int argc, char **argv);    /* executor.c: the hidden `__executor` */

/* Parses `JOB [job options] [engine options] -o OUT INPUT...` (argv[1] is JOB) into spec, as
 * `tally run` and `tally submit` both accept it; the options of an iteration run, which stay
 * with the command and never go into the spec, into *series. Returns 0 or -EINVAL with a
 * message. */
int cli_run_parse(int argc, char **argv, jobspec *spec, int *quiet, int *help, series_opts *series, struct err *e);
/* Prints a job's own options ("Options of JOB:"), for tally run's and tally submit's --help. */
void cli_job_options_usage(FILE *out, const tally_job *job);

#endif
