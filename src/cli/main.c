/* main.c - the `tally` command: dispatches to its subcommands. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tally/tally.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/report.h"
#include "common/log.h"
#include "exec/jobreg.h"
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
            "  report FILE.csv... -o DIR     percentiles, comparison and CDF plots of --results files\n"
            "  coordinator ...               run a cluster coordinator (tally coordinator --help)\n"
            "  worker ...                    run a cluster worker (tally worker --help)\n"
            "  submit ... JOB ... -o OUT IN  run a job on a cluster and wait for it\n"
            "  status [JOB] [--json]         workers and jobs of a cluster\n"
            "  cancel JOB                    cancel a cluster job\n"
            "  jobs                          list the built-in jobs\n"
            "  version                       print the version\n\n"
            "tally COMMAND --help lists a command's options. Exit status, the same for every command:\n"
            "0 ok, 1 the job failed, 2 a usage error, 3 cannot reach the coordinator or it refused\n"
            "the token, 130 interrupted.\n",
            TALLY_VERSION);
}

/* The commands without options (jobs, version) still answer --help and refuse what they do
 * not take. Returns -1 to go on, else the exit code. */
static int main_no_options(int argc, char **argv, const char *usage)
{
    char **pos = NULL;
    size_t npos = 0;
    struct err e = {0};
    int rc = cli_opts_parse(NULL, 0, argc, argv, &pos, &npos, &e);
    if (rc == 0 && npos) rc = err_set(&e, -EINVAL, "unexpected argument '%s' (see --help)", pos[0]);
    free(pos);
    if (rc == 1) {
        cli_opts_usage(stdout, usage, NULL, 0);
        return EXITCODE_OK;
    }
    if (rc) {
        fprintf(stderr, "tally %s: %s\n", argv[0], e.msg);
        return EXITCODE_USAGE;
    }
    return -1;
}

int main(int argc, char **argv)
{
    log_set_process("tally");
    if (argc < 2) {
        main_usage(stderr);
        return EXITCODE_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "run") == 0) return cli_run(argc - 1, argv + 1);
    if (strcmp(cmd, "gen") == 0) return gen_main(argc - 1, argv + 1);
    if (strcmp(cmd, "report") == 0) return report_main(argc - 1, argv + 1);
    if (strcmp(cmd, "coordinator") == 0) return cli_coordinator(argc - 1, argv + 1);
    if (strcmp(cmd, "worker") == 0) return cli_worker(argc - 1, argv + 1);
    if (strcmp(cmd, "submit") == 0) return cli_submit(argc - 1, argv + 1);
    if (strcmp(cmd, "status") == 0) return cli_status(argc - 1, argv + 1);
    if (strcmp(cmd, "cancel") == 0) return cli_cancel(argc - 1, argv + 1);
    if (strcmp(cmd, "__executor") == 0) return cli_executor(argc - 1, argv + 1);
    if (strcmp(cmd, "jobs") == 0) {
        int rc = main_no_options(argc - 1, argv + 1, "usage: tally jobs\n\nLists the built-in jobs, one a line.");
        if (rc >= 0) return rc;
        size_t n;
        const tally_job *const *b = jobreg_builtins(&n);
        for (size_t i = 0; i < n; i++) printf("%-10s %s\n", b[i]->name, b[i]->description);
        return EXITCODE_OK;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        int rc = main_no_options(argc - 1, argv + 1, "usage: tally version\n\nPrints the version of tally and of its job ABI.");
        if (rc >= 0) return rc;
        printf("tally %s (job ABI %d)\n", TALLY_VERSION, TALLY_ABI_VERSION);
        return EXITCODE_OK;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        main_usage(stdout);
        return EXITCODE_OK;
    }
    fprintf(stderr, "tally: unknown %s '%s'\n\n", cmd[0] == '-' ? "option" : "command", cmd);
    main_usage(stderr);
    return EXITCODE_USAGE;
}
