/* submit.c - `tally submit`: runs a job on a cluster and waits for it, or a series of them
 * (--iterations: one job per iteration, each submitted once the one before succeeded).
 *
 * Its own settings (coordinator, token, --detach, --weight, ...) are taken out of the command
 * line wherever they are; what is left is parsed as tally run's (cli_run_parse), job options
 * included. The series is driven here, as `tally run` drives its own (series.h knows only the
 * output directories and the results file): each iteration is a client_submit() and a
 * client_wait() of cluster/client.h, whose job record gives the results row. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/series.h"
#include "cluster/client.h"
#include "exec/jobreg.h"

static const char *submit_o_coord, *submit_o_token, *submit_o_detach, *submit_o_give_up, *submit_o_weight;

static const cli_opt submit_opts[] = {
    CLI_OPT_COORDINATOR(submit_o_coord),
    CLI_OPT_TOKEN_FILE(submit_o_token),
    {"detach", 0, NULL, NULL, NULL, "print the job id and return at once instead of waiting", &submit_o_detach},
    {"coordinator-timeout-ms", 0, "MS", "TALLY_COORDINATOR_TIMEOUT_MS", "10000",
     "while waiting, give up on a coordinator that has not answered for this long", &submit_o_give_up},
    {"weight", 0, "W", "TALLY_WEIGHT", "1",
     "the job's share of the slots against the other running jobs (fair sharing; 0.01 to 1000)", &submit_o_weight},
};
#define SUBMIT_NOPTS (sizeof submit_opts / sizeof submit_opts[0])

/* Ctrl-C or SIGTERM: client_wait() stops waiting (and, in a series, cancels the job). */
static volatile sig_atomic_t submit_interrupted;

static void submit_on_signal(int sig)
{
    (void)sig;
    submit_interrupted = 1;
}

/* Paths go to workers that may run elsewhere: make them absolute against our directory. */
static char *submit_abs(const char *p)
{
    if (p[0] == '/') return xstrdup(p);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return xstrdup(p);
    return xasprintf("%s/%s", cwd, p);
}

static void submit_usage(FILE *out, const tally_job *job)
{
    const char *name = job ? job->name : "JOB";
    fprintf(out, "usage: tally submit [submit options] %s [options of %s] [options] -o OUT INPUT...\n\n", name, name);
    if (job) fprintf(out, "%s\n\n", job->description ? job->description : "");
    fprintf(out, "Runs the job on the cluster and waits for it, with tally run's progress line. Paths are\n"
                 "as the workers see them (relative ones are relative to this directory). Exit status: 0 OUT/_SUCCESS\n"
                 "exists, 1 the job failed or was cancelled, 2 a usage error (also the coordinator's: a\n"
                 "missing input, an unusable OUT, a field no input has), 3 cannot reach the coordinator or\n"
                 "it refused the token (also: lost it while waiting), 130 interrupted: the job goes on\n"
                 "(in an iteration run it is cancelled).\n\n");
    cli_opts_list(out, "Options of submit (anywhere before or among the job's)", submit_opts, SUBMIT_NOPTS);
    cli_job_options_usage(out, job);
    fprintf(out, "\nThe other options are tally run's (tally run --help): -m, -r, --format, --sort-buffer,\n"
                 "--max-record, --split-size, --max-attempts, --max-skipped-ratio, --strict, --overwrite,\n"
                 "--job-arg, -q, and --iterations, --keep-iterations, --results (one job per iteration, each\n"
                 "submitted once the one before succeeded; Ctrl-C cancels the running one); -w and --work-dir\n"
                 "do not apply (each worker has its own).%s\n",
            job ? "" : "\ntally submit JOB --help lists a job's own options.");
}

int cli_submit(int argc, char **argv)
{
    client cl = {0};
    double weight = 0;
    struct err e = {0};
    jobspec spec;
    jobspec_init(&spec);
    series_opts series = {.iterations = 1};
    series_results res = {.fd = -1};
    char *base_out = NULL;
    int quiet = 0, help = 0, rc = EXITCODE_USAGE, out_existed = 1;
    uint64_t give_up_ms = 0;
    signal(SIGPIPE, SIG_IGN);
    util_catch_stop_signals(submit_on_signal);
    if (cli_opts_take(submit_opts, SUBMIT_NOPTS, &argc, argv, &e) != 0) {
        fprintf(stderr, "tally: %s\n", e.msg);
        goto done;
    }
    if (util_parse_u64(submit_o_give_up, 0, 86400000, &give_up_ms) != 0) {
        fprintf(stderr, "tally: --coordinator-timeout-ms: expected milliseconds, got '%s'\n", submit_o_give_up);
        goto done;
    }
    if (argc < 2) {
        submit_usage(stderr, NULL);
        goto done;
    }
    if (cli_run_parse(argc, argv, &spec, &quiet, &help, &series, &e) != 0) {
        fprintf(stderr, "tally: %s\n", e.msg);
        goto done;
    }
    if (help) {
        const tally_job *job = NULL;
        void *handle = NULL;
        if (spec.job && jobreg_load(spec.job, &job, &handle, &e) != 0) {
            fprintf(stderr, "tally: %s\n", e.msg);
            goto done;
        }
        submit_usage(stdout, job);
        jobreg_unload(handle);
        rc = EXITCODE_OK;
        goto done;
    }
    if (submit_o_detach && series_active(&series)) {
        fprintf(stderr, "tally: --detach returns once one job is accepted: it does not go with --iterations, "
                        "--keep-iterations or --results, which wait for every iteration\n");
        goto done;
    }
    if (util_parse_double(submit_o_weight, 0.01, 1000, &weight) != 0) {
        fprintf(stderr, "tally: --weight: expected a number from 0.01 to 1000, got '%s'\n", submit_o_weight);
        goto done;
    }
    client_config ccfg = {.coordinator = submit_o_coord, .token_file = submit_o_token};
    if ((rc = client_open(&cl, &ccfg)) != 0) goto done;
    rc = EXITCODE_USAGE;
    /* Inputs go as given, with the directory they are relative to: jobs see the paths the user
     * typed (grep and index print them), as under tally run. */
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd)) spec.cwd = xstrdup(cwd);
    base_out = submit_abs(spec.out);
    free(spec.out);
    spec.out = NULL;
    if (spec.job[0] != '/' && strchr(spec.job, '/')) {
        char *j = submit_abs(spec.job);
        free(spec.job);
        spec.job = j;
    }
    /* As under tally run, and here too before anything is sent: OUT is as the workers see it,
     * which the client assumes it shares (it looks for OUT/_SUCCESS). */
    if ((series.results && series_results_open(&res, series.results, &e) != 0) ||
        series_check_out(&series, base_out, spec.overwrite, &out_existed, &e) != 0) {
        fprintf(stderr, "tally: %s\n", e.msg);
        goto done;
    }
    /* One job per iteration, each planned by the coordinator afresh; after the first, each
     * replaces the output of the one before (--overwrite's commit) or, with --keep-iterations,
     * gets OUT/iter-NNNN. */
    int overwrite = spec.overwrite;
    uint64_t n = series.iterations, i;
    rc = 0;
    for (i = 1; i <= n; i++) {
        if (submit_interrupted) {
            fprintf(stderr, "tally: interrupted before iteration %" PRIu64 "\n", i);
            rc = EXITCODE_INTERRUPTED;
            break;
        }
        free(spec.out);
        spec.out = series_out(&series, base_out, i);
        spec.overwrite = overwrite || (i > 1 && !series.keep);
        char id[64];
        series_row row = {.iteration = i, .start_ms = time_wall_ms()};
        uint64_t t0 = time_mono_ms();
        if ((rc = client_submit(&cl, &spec, weight, id, sizeof id)) != 0) break;
        if (submit_o_detach) {
            printf("%s\n", id);
            break;
        }
        json_t *job = NULL;
        client_wait_opts wo = {.quiet = quiet, .t0 = t0, .give_up_ms = give_up_ms,
                               .cancel_on_stop = series_active(&series), .interrupted = &submit_interrupted};
        rc = client_wait(&cl, id, spec.out, &wo, &job);
        row.total_ms = time_mono_ms() - t0;
        if (job) client_summary(job, &row.sum);
        /* The file in a --results directory is named after the first plan (the coordinator's). */
        if (i == 1 && job &&
            series_results_choose(&res, (uint64_t)json_integer_value(json_object_get(job, "maps_total")),
                                  (uint64_t)json_integer_value(json_object_get(job, "reduces_total")), n,
                                  row.start_ms, &e) != 0) {
            fprintf(stderr, "tally: %s\n", e.msg);
            if (rc == 0) rc = EXITCODE_FAILED;
        }
        json_decref(job);
        if (rc) break;
        if (res.fd >= 0 && series_results_append(&res, &row, &e) != 0) {
            fprintf(stderr, "tally: %s\n", e.msg);
            rc = EXITCODE_FAILED;
            break;
        }
        if (series_active(&series) && !quiet) series_report(&row, n);
    }
    if (rc && n > 1) {
        fprintf(stderr, "tally: the series stopped at iteration %" PRIu64 " of %" PRIu64 " (%" PRIu64
                        " succeeded)\n", i, n, i - 1);
        if (i > 1 && res.path) fprintf(stderr, "tally: their rows are in %s\n", res.path);
    }
    /* Only if empty: OUT made for the iterations' directories, none of which committed. */
    if (rc && series.keep && !out_existed) rmdir(base_out);
done:
    series_results_close(&res);
    free(base_out);
    jobspec_free(&spec);
    client_close(&cl);
    return rc;
}
