/* cli.h - the subcommands of the `tally` binary; each returns the process exit code. */
#ifndef TALLY_CLI_H
#define TALLY_CLI_H

#define CLI_OK 0
#define CLI_FAILED 1 /* the job (or command) ran and failed */
#define CLI_USAGE 2  /* the command line is wrong */

int cli_run(int argc, char **argv);

#endif
