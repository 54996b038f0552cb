/* main.c - the `tally` command: dispatches to its subcommands. */
#include <stdio.h>
#include <string.h>

#include <tally/tally.h>

#include "cli/cli.h"
#include "common/log.h"
#include "exec/jobreg.h"
#include "cluster/coord.h"
#include "cluster/taskproc.h"
#include "cluster/worker.h"
#include "gen/gen.h"

#define TALLY_VERSION "0.1.0"

static void main_usage(FILE *out)
{
    fprintf(out,
            "tally %s - MapReduce on one machine or a cluster\n\n"
            "usage: tally COMMAND [ARGS]\n\n"
            "commands:\n"
            "  run JOB ... -o OUT INPUT...   run a job on this machine (tally run --help)\n"
            "  gen KIND ...                  write deterministic sample data (tally gen --help)\n"
            "  coordinator ...               run a cluster coordinator (tally coordinator --help)\n"
            "  worker ...                    run a cluster worker (tally worker --help)\n"
            "  submit ... JOB ... -o OUT IN  run a job on a cluster and wait for it\n"
            "  status [JOB] [--json]         workers and jobs of a cluster\n"
            "  cancel JOB                    cancel a cluster job\n"
            "  jobs                          list the built-in jobs\n"
            "  version                       print the version\n",
            TALLY_VERSION);
}

int main(int argc, char **argv)
{
    log_set_process("tally");
    if (argc < 2) {
        main_usage(stderr);
        return CLI_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0) return cli_run(argc - 1, argv + 1);
    if (strcmp(cmd, "gen") == 0) return gen_main(argc - 1, argv + 1);
    if (strcmp(cmd, "coordinator") == 0) return coord_main(argc - 1, argv + 1);
    if (strcmp(cmd, "worker") == 0) return worker_main(argc - 1, argv + 1);
    if (strcmp(cmd, "submit") == 0) return coord_submit_main(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0) return coord_status_main(argc - 1, argv + 1);
    if (strcmp(cmd, "cancel") == 0) return coord_cancel_main(argc - 1, argv + 1);
    if (strcmp(cmd, "__executor") == 0) return taskproc_main(argc - 1, argv + 1);
    if (strcmp(cmd, "jobs") == 0) {
        size_t n;
        const tally_job *const *b = jobreg_builtins(&n);
        for (size_t i = 0; i < n; i++) printf("%-10s %s\n", b[i]->name, b[i]->description);
        return CLI_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("tally %s (job ABI %d)\n", TALLY_VERSION, TALLY_ABI_VERSION);
        return CLI_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        main_usage(stdout);
        return CLI_OK;
    }
    fprintf(stderr, "tally: unknown command '%s'\n\n", cmd);
    main_usage(stderr);
    return CLI_USAGE;
}
