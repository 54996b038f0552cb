/* run.c - `tally run`: parse the command line, run the job on this machine, commit the output. */
#include "cli/cli.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/series.h"
#include "cluster/execpool.h"
#include "cluster/wire.h"
#include "common/claim.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "data/ifile.h"
#include "data/input.h"
#include "data/output.h"
#include "data/probe.h"
#include "exec/ctx.h"
#include "exec/jobreg.h"
#include "exec/local.h"
#include "exec/sched.h"

/* ---- Settings table ------------------------------------------------------------------------
 * Every engine option of `tally run`: its flag, environment variable, help, and how it is
 * applied. Parsing, --help and the environment all read this one table. */

typedef struct run_flags {
    int quiet;
    int help;
    series_opts series; /* --iterations, --keep-iterations, --results */
} run_flags;

typedef int (*run_apply_fn)(jobspec *s, run_flags *f, const char *v, struct err *e);

typedef struct run_setting {
    const char *name;
    char short_name;
    const char *metavar;     /* NULL: a switch without a value */
    const char *env;         /* environment variable, or NULL */
    const char *help;
    run_apply_fn apply;
} run_setting;

static int run_size(const char *v, uint64_t min, uint64_t *out, const char *what, struct err *e)
{
    if (util_parse_size(v, out) != 0 || *out < min)
        return err_set(e, -EINVAL, "%s: bad size '%s' (e.g. 64M, 1G; at least %llu bytes)", what, v,
                       (unsigned long long)min);
    return 0;
}

static int run_count(const char *v, uint64_t min, uint64_t max, uint64_t *out, const char *what, struct err *e)
{
    if (util_parse_u64(v, min, max, out) != 0)
        return err_set(e, -EINVAL, "%s: expected a whole number from %llu to %llu, got '%s'", what,
                       (unsigned long long)min, (unsigned long long)max, v);
    return 0;
}

static int run_set_maps(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f;
    return run_count(v, 1, 1000000, &s->maps, "-m", e);
}

static int run_set_reduces(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f;
    uint64_t n;
    int rc = run_count(v, 1, 100000, &n, "-r", e);
    s->reduces = (uint32_t)n;
    return rc;
}

static int run_set_workers(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f;
    uint64_t n;
    int rc = run_count(v, 1, 1024, &n, "-w", e);
    s->workers = (uint32_t)n;
    return rc;
}

static int run_set_out(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f, (void)e;
    free(s->out);
    s->out = xstrdup(v);
    return 0;
}

static int run_set_format(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f;
    s->format_forced = 1;
    if (strcmp(v, "text") == 0) s->format = FIELDS_TEXT;
    else if (strcmp(v, "csv") == 0) s->format = FIELDS_CSV;
    else if (strcmp(v, "jsonl") == 0 || strcmp(v, "json") == 0) s->format = FIELDS_JSONL;
    else return err_set(e, -EINVAL, "--format: expected text, csv or jsonl, got '%s'", v);
    return 0;
}

static int run_set_sort_buffer(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f;
    int rc = run_size(v, 4096, &s->sort_buffer, "--sort-buffer", e);
    if (rc == 0 && s->sort_buffer > (3ull << 30))
        rc = err_set(e, -EINVAL, "--sort-buffer: at most 3G per task");
    return rc;
}

static int run_set_max_record(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f;
    return run_size(v, 16, &s->max_record, "--max-record", e);
}

static int run_set_split_size(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f;
    return run_size(v, 1, &s->split_size, "--split-size", e);
}

static int run_set_work_dir(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f, (void)e;
    free(s->work_dir);
    s->work_dir = xstrdup(v);
    return 0;
}

static int run_set_strict(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f, (void)v, (void)e;
    s->strict = 1;
    return 0;
}

static int run_set_overwrite(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f, (void)v, (void)e;
    s->overwrite = 1;
    return 0;
}

static int run_set_quiet(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)s, (void)v, (void)e;
    f->quiet = 1;
    return 0;
}

static int run_set_attempts(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f;
    uint64_t n;
    int rc = run_count(v, 1, 100, &n, "--max-attempts", e);
    s->max_attempts = (uint32_t)n;
    return rc;
}

static int run_set_skipped_ratio(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f;
    char *end;
    double r = strtod(v, &end);
    if (end == v || *end || !(r >= 0 && r <= 1))
        return err_set(e, -EINVAL, "--max-skipped-ratio: expected a number from 0 to 1, got '%s'", v);
    s->max_skipped_ratio = r;
    return 0;
}

static int run_set_job_arg(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)f;
    const char *eq = strchr(v, '=');
    if (!eq || eq == v) return err_set(e, -EINVAL, "--job-arg: expected KEY=VALUE, got '%s'", v);
    char *k = xstrndup(v, (size_t)(eq - v));
    jobspec_set_arg(s, k, eq + 1);
    free(k);
    return 0;
}

static int run_set_log_level(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)s, (void)f;
    log_level l;
    if (log_parse_level(v, &l) != 0)
        return err_set(e, -EINVAL, "--log-level: expected debug, info, warn, error or off, got '%s'", v);
    log_set_level(l);
    return 0;
}

static int run_set_iterations(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)s;
    return run_count(v, 1, SERIES_MAX_ITERATIONS, &f->series.iterations, "--iterations", e);
}

static int run_set_keep_iterations(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)s, (void)v, (void)e;
    f->series.keep = 1;
    return 0;
}

static int run_set_results(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)s;
    if (!*v) return err_set(e, -EINVAL, "--results: expected a file or a directory, got ''");
    f->series.results = v;
    return 0;
}

static int run_set_help(jobspec *s, run_flags *f, const char *v, struct err *e)
{
    (void)s, (void)v, (void)e;
    f->help = 1;
    return 0;
}

static const run_setting run_settings[] = {
    {"output", 'o', "OUT", NULL, "output directory (required)", run_set_out},
    {"maps", 'm', "M", NULL, "exactly M map tasks over splittable input (default: one per 64 MiB, at least W)", run_set_maps},
    {"reduces", 'r', "R", NULL, "R reduce tasks, one part file each (default 1)", run_set_reduces},
    {"workers", 'w', "W", "TALLY_WORKERS", "parallel task slots (default: number of CPUs)", run_set_workers},
    {"format", 0, "FMT", NULL, "input format: text, csv or jsonl (default: by file name)", run_set_format},
    {"sort-buffer", 0, "SIZE", "TALLY_SORT_BUFFER", "map output buffer per task before spilling (default 64M)", run_set_sort_buffer},
    {"max-record", 0, "SIZE", NULL, "longest record; longer ones are skipped and counted (default 64M)", run_set_max_record},
    {"split-size", 0, "SIZE", NULL, "bytes per map task when -m is not given (default 64M)", run_set_split_size},
    {"work-dir", 0, "DIR", "TALLY_WORK_DIR", "where intermediate files go (default $TMPDIR or /tmp)", run_set_work_dir},
    {"max-attempts", 0, "N", NULL, "attempts per task before the job fails (default 4)", run_set_attempts},
    {"max-skipped-ratio", 0, "R", "TALLY_MAX_SKIPPED_RATIO",
     "fail the job if more than this share of records is skipped (0..1, default 0.1; 1: no limit)",
     run_set_skipped_ratio},
    {"job-arg", 0, "K=V", NULL, "argument for a user job (repeatable)", run_set_job_arg},
    {"strict", 0, NULL, NULL, "fail on the first bad record instead of skipping it", run_set_strict},
    {"overwrite", 0, NULL, NULL, "replace a non-empty output directory", run_set_overwrite},
    {"iterations", 0, "N", "TALLY_ITERATIONS", "run the job N times, each planned afresh (default 1)",
     run_set_iterations},
    {"keep-iterations", 0, NULL, NULL, "iteration i goes to OUT/iter-NNNN instead of replacing OUT",
     run_set_keep_iterations},
    {"results", 0, "FILE", "TALLY_RESULTS",
     "append one CSV row per iteration to FILE (a directory: a file named after the plan in it)", run_set_results},
    {"quiet", 'q', NULL, NULL, "no progress line, nor a line per iteration", run_set_quiet},
    {"log-level", 0, "LEVEL", "TALLY_LOG_LEVEL", "debug, info, warn (default), error or off", run_set_log_level},
    {"help", 'h', NULL, NULL, "show this help", run_set_help},
};
#define RUN_NSETTINGS (sizeof run_settings / sizeof run_settings[0])

static void run_usage(FILE *out, const tally_job *job)
{
    if (job) {
        fprintf(out, "usage: tally run [options] %s [options of %s] [options] -o OUT INPUT...\n\n%s\n", job->name,
                job->name, job->description ? job->description : "");
    } else {
        fprintf(out, "usage: tally run [options] JOB [options of JOB] [options] -o OUT INPUT...\n\n"
                     "JOB is a built-in job or the path of a user job (.so); tally run JOB --help lists its\n"
                     "own options:\n");
    }
    size_t n;
    const tally_job *const *b = jobreg_builtins(&n);
    for (size_t i = 0; !job && i < n; i++) fprintf(out, "  %-10s %s\n", b[i]->name, b[i]->description);
    fprintf(out, "\nINPUT: files, directories (recursively) or globs; .csv, .jsonl/.json, .gz by name.\n"
                 "OUT must not overlap an input. Exit status: 0 done, 1 the job failed, 2 a usage error\n"
                 "(including a missing input or an unusable OUT), 130 interrupted.\n\nOptions:\n");
    for (size_t i = 0; i < RUN_NSETTINGS; i++) {
        const run_setting *s = &run_settings[i];
        char flag[64];
        if (s->short_name)
            snprintf(flag, sizeof flag, "-%c, --%s%s%s", s->short_name, s->name, s->metavar ? " " : "",
                     s->metavar ? s->metavar : "");
        else
            snprintf(flag, sizeof flag, "    --%s%s%s", s->name, s->metavar ? " " : "", s->metavar ? s->metavar : "");
        fprintf(out, "  %-26s %s%s%s%s\n", flag, s->help, s->env ? " [env " : "", s->env ? s->env : "",
                s->env ? "]" : "");
    }
    cli_job_options_usage(out, job);
}

void cli_job_options_usage(FILE *out, const tally_job *job)
{
    if (!job || !job->options) return;
    fprintf(out, "\nOptions of %s:\n", job->name);
    for (const tally_option *o = job->options; o->name; o++) {
        char flag[64];
        if (o->short_name)
            snprintf(flag, sizeof flag, "-%c, --%s%s", o->short_name, o->name, o->has_value ? " VALUE" : "");
        else
            snprintf(flag, sizeof flag, "    --%s%s", o->name, o->has_value ? " VALUE" : "");
        fprintf(out, "  %-26s %s\n", flag, o->help ? o->help : "");
    }
}

/* Matches argv[*i] against the engine table and the job's options. Returns 1 if consumed,
 * 0 if it is not an option (an INPUT), or a negative code with a message. */
static int run_parse_opt(int argc, char **argv, int *i, const tally_job *job, jobspec *s, run_flags *f,
                         struct err *e)
{
    const char *a = argv[*i];
    if (a[0] != '-' || a[1] == 0) return 0;
    const char *name = NULL, *inline_val = NULL;
    char shortc = 0;
    char namebuf[128];
    if (a[1] == '-') {
        name = a + 2;
        const char *eq = strchr(name, '=');
        if (eq) {
            snprintf(namebuf, sizeof namebuf, "%.*s", (int)(eq - name), name);
            name = namebuf;
            inline_val = eq + 1;
        }
    } else {
        shortc = a[1];
        if (a[2]) inline_val = a + 2;
    }
    for (size_t k = 0; k < RUN_NSETTINGS; k++) {
        const run_setting *st = &run_settings[k];
        if (name ? strcmp(name, st->name) != 0 : shortc != st->short_name) continue;
        const char *v = NULL;
        if (st->metavar) {
            v = inline_val;
            if (!v) {
                if (*i + 1 >= argc) return err_set(e, -EINVAL, "option %s needs a value (%s)", a, st->metavar);
                v = argv[++*i];
            }
        } else if (inline_val) {
            return err_set(e, -EINVAL, "option %s takes no value", a);
        }
        int rc = st->apply(s, f, v, e);
        return rc ? rc : 1;
    }
    if (job && job->options) {
        for (const tally_option *o = job->options; o->name; o++) {
            if (name ? strcmp(name, o->name) != 0 : (o->short_name == 0 || shortc != o->short_name)) continue;
            const char *v = "1";
            if (o->has_value) {
                v = inline_val;
                if (!v) {
                    if (*i + 1 >= argc) return err_set(e, -EINVAL, "option %s needs a value", a);
                    v = argv[++*i];
                }
            } else if (inline_val) {
                return err_set(e, -EINVAL, "option %s takes no value", a);
            }
            jobspec_set_arg(s, o->name, v);
            return 1;
        }
    }
    if (!job)
        return err_set(e, -EINVAL, "unknown option '%s' (a job's own options go after its name; see tally run --help)", a);
    return err_set(e, -EINVAL, "unknown option '%s' for job %s (see tally run %s --help)", a, job->name, job->name);
}

/* ---- Progress and summary ---------------------------------------------------------------- */

typedef struct run_progress {
    int tty;
    uint64_t total_bytes;
    int printed;
} run_progress;

static void run_show_progress(void *arg, const local_status *st, int final)
{
    run_progress *p = arg;
    if (!p->tty) return;
    if (final) {
        if (p->printed) fputs("\r\033[K", stdout);
        fflush(stdout);
        return;
    }
    double secs = (double)st->elapsed_ms / 1000.0;
    double mbs = secs > 0 ? (double)st->input_bytes_done / 1e6 / secs : 0;
    printf("\r\033[Kmaps %u/%u  reduces %u/%u  %.1f MB/s  %.1fs", st->job->maps_done, st->job->nmaps,
           st->job->reduces_done, st->job->nreduces, mbs, secs);
    fflush(stdout);
    p->printed = 1;
}

static volatile sig_atomic_t run_interrupted;

static void run_on_signal(int sig)
{
    (void)sig;
    run_interrupted = 1;
}

int cli_run_parse(int argc, char **argv, jobspec *spec, int *quiet, int *help, series_opts *series, struct err *e)
{
    run_flags flags = {.series.iterations = 1};
    const tally_job *job = NULL;
    void *handle = NULL;
    int rc = 0, i = 1;
    /* The environment first, so that the command line wins (the same for run and submit). */
    for (size_t k = 0; k < RUN_NSETTINGS; k++) {
        const run_setting *st = &run_settings[k];
        const char *v = st->env ? getenv(st->env) : NULL;
        if (v && *v && st->apply(spec, &flags, v, e) != 0) {
            size_t n = strlen(e->msg);
            snprintf(e->msg + n, sizeof e->msg - n, " (from %s)", st->env);
            return e->code ? e->code : -EINVAL;
        }
    }
    /* Engine options may come before the job's name (`tally run -q wordcount ...`); the job's
     * own options only after it, since the job says what they are. */
    for (; i < argc && rc == 0 && argv[i][0] == '-' && argv[i][1]; i++) {
        int k = run_parse_opt(argc, argv, &i, NULL, spec, &flags, e);
        if (k < 0) rc = k;
    }
    if (rc == 0 && flags.help && i >= argc) {
        *quiet = flags.quiet;
        *help = 1;
        *series = flags.series;
        return 0;
    }
    if (rc == 0 && i >= argc) rc = err_set(e, -EINVAL, "no JOB given (see tally run --help)");
    if (rc == 0) {
        spec->job = xstrdup(argv[i]);
        rc = jobreg_load(spec->job, &job, &handle, e);
    }
    for (i++; i < argc && rc == 0; i++) {
        int k = run_parse_opt(argc, argv, &i, job, spec, &flags, e);
        if (k < 0) rc = k;
        else if (k == 0) jobspec_add_input(spec, argv[i]);
    }
    jobreg_unload(handle);
    *quiet = flags.quiet;
    *help = flags.help;
    *series = flags.series;
    if (rc || flags.help) return rc;
    if (!spec->out) return err_set(e, -EINVAL, "missing -o OUT (see tally run --help)");
    if (spec->ninputs == 0) return err_set(e, -EINVAL, "no INPUT given (see tally run --help)");
    return 0;
}

/* ---- The command ------------------------------------------------------------------------- */

/* Where the work dir goes: --work-dir, else $TMPDIR, else /tmp. */
static const char *run_work_parent(const jobspec *spec)
{
    const char *t = getenv("TMPDIR");
    return spec->work_dir ? spec->work_dir : t && *t ? t : "/tmp";
}

/* What one run of the job was like, for the row of an iteration run. */
typedef struct run_outcome {
    int planned;        /* the inputs were planned: maps and reduces are known */
    uint64_t maps;
    uint32_t reduces;
    uint64_t start_ms;  /* wall clock when planning began */
    uint64_t total_ms;  /* from planning to the job commit */
    sched_summary sum;
} run_outcome;

/* What the iterations of one `tally run` share: the work dir and the executors in it. Only the
 * first iteration pays for starting executor processes (each an exec of this binary with its
 * libraries, and the describe that waits for it: a few ms of an iteration that takes a few
 * tens); every iteration's job gets an id of its own, so the executors open and set up the job
 * afresh for it, with its spec (its OUT under --keep-iterations) and a new setup() state, as a
 * fresh process would. Each iteration's intermediate files go to a directory of its own in the
 * work dir, removed when it ends. */
typedef struct run_session {
    claim work;
    execpool *pool;
    uint32_t slots;     /* executors in pool */
    uint64_t runs;      /* jobs run so far: numbers their ids */
} run_session;

static void run_session_close(run_session *ss)
{
    if (ss->pool) {
        execpool_close(ss->pool);
        execpool_free(ss->pool);
        ss->pool = NULL;
    }
    claim_release(&ss->work);
}

/* Makes sure ss has a work dir and at least `slots` executors. */
static int run_session_ready(run_session *ss, const jobspec *spec, uint32_t slots, struct err *e)
{
    if (ss->pool && ss->slots >= slots) return 0;
    if (ss->pool) {
        /* A later iteration planned wider (its inputs grew): a bigger pool. */
        execpool_close(ss->pool);
        execpool_free(ss->pool);
        ss->pool = NULL;
    }
    if (ss->work.fd < 0) {
        /* Work dirs of runs that were killed, which had no chance to clean up, go first. */
        int reaped = claim_reap_stale(run_work_parent(spec), "tally-job-");
        if (reaped) log_info("removed %d work dir(s) of tally runs that are no longer running", reaped);
        char *what = xasprintf("job=%s", spec->job);
        char *owner = claim_owner_text(what);
        free(what);
        int rc = claim_fresh(&ss->work, run_work_parent(spec), "tally-job-", owner, e);
        free(owner);
        if (rc) {
            err_prefix(e, "work dir: ");
            return rc;
        }
    }
    char exe[4096];
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[exe_len > 0 ? exe_len : 0] = '\0';
    if (exe_len <= 0) return err_set(e, -ENOENT, "cannot start executors: cannot find the tally binary");
    int rc = execpool_new(&ss->pool, exe, ss->work.path, slots, log_level_name(), e);
    if (rc) {
        err_prefix(e, "cannot start executors: ");
        return rc;
    }
    ss->slots = slots;
    return 0;
}

/* Runs the job once, start to end, as `tally run` always has: expands, probes and plans the
 * inputs, claims spec->out, runs the tasks on the session's executors (started by the first
 * iteration), then commits or rolls back. An iteration run calls it once per iteration and so
 * plans everything afresh: the inputs may have changed in between. `check_out` is what the
 * inputs must not overlap: all of OUT, also when the iteration writes below it. Returns the exit
 * code; *oc is filled as far as the run got. */
static int run_iteration(jobspec *spec, const char *check_out, int quiet, run_session *ss, run_outcome *oc)
{
    struct err e = {0};
    execpool_job job = {0};
    execpool *pool = NULL;
    json_t *spec_json = NULL;
    input_set inputs = {0};
    output out = {.claim.fd = -1};
    sched_job *sj = NULL;
    char *owner = NULL, *run_dir = NULL, job_id[32] = "";
    int rc = EXITCODE_USAGE, have_out = 0;
    uint64_t t_plan = time_mono_ns();

    memset(oc, 0, sizeof *oc);
    oc->start_ms = time_wall_ms();
    /* A missing or unreadable input is a mistake on the command line, like a bad option. */
    if (input_expand(spec->inputs, spec->ninputs, NULL, spec->format_forced, spec->format, &inputs, &e) != 0) {
        fprintf(stderr, "tally: %s\n", e.msg);
        goto done;
    }
    input_plan(&inputs, spec->maps, spec->split_size, spec->workers);
    oc->planned = 1;
    oc->maps = inputs.nsplits;
    oc->reduces = spec->reduces;
    /* No more executors than attempts can ever run at once. */
    uint32_t slots = spec->workers ? spec->workers : 1, widest = (uint32_t)inputs.nsplits;
    if (spec->reduces > widest) widest = spec->reduces;
    if (slots > widest) slots = widest ? widest : 1;
    log_debug("%zu input file%s, %llu bytes, %zu map task%s, %u reduce task%s, %u slot%s", inputs.nfiles,
              inputs.nfiles == 1 ? "" : "s", (unsigned long long)inputs.total_bytes, inputs.nsplits,
              inputs.nsplits == 1 ? "" : "s", spec->reduces, spec->reduces == 1 ? "" : "s", slots,
              slots == 1 ? "" : "s");

    /* The work dir, and in it the executors: user code runs there, never in this process, so
     * even a job whose setup() crashes only fails. */
    rc = EXITCODE_FAILED;
    if (run_session_ready(ss, spec, slots, &e) != 0) {
        fprintf(stderr, "tally: %s\n", e.msg);
        goto done;
    }
    pool = ss->pool;
    snprintf(job_id, sizeof job_id, "local-%" PRIu64, ++ss->runs);
    run_dir = xasprintf("%s/%s", ss->work.path, job_id);
    if (mkdir(run_dir, 0700) != 0) {
        fprintf(stderr, "tally: work dir: %s: %s\n", run_dir, strerror(errno));
        goto done;
    }
    char *what = xasprintf("job=%s", spec->job);
    owner = claim_owner_text(what);
    free(what);
    spec_json = wire_jobspec_encode(spec);
    /* setup() checks the job's arguments: a refusal is a usage error, before anything else. */
    int drc = execpool_describe(pool, spec_json, spec->job, &job, &e);
    if (drc) {
        fprintf(stderr, "tally: %s\n", e.msg);
        rc = drc == -EIO ? EXITCODE_FAILED : EXITCODE_USAGE;
        goto done;
    }
    rc = EXITCODE_USAGE;
    if (job.flags & TALLY_NEEDS_FIELDS) {
        for (size_t i = 0; i < inputs.nfiles; i++) {
            if (inputs.files[i].format == FIELDS_TEXT) {
                fprintf(stderr, "tally: %s: job %s needs CSV or JSON Lines input (name the file .csv/.jsonl or use --format)\n",
                        inputs.files[i].name, job.name);
                goto done;
            }
        }
    }
    const ctx_fields *need = &job.required;
    if (probe_fields(&inputs, need->names, need->hints, need->n, spec->max_record, &e) != 0 ||
        output_check_inputs(check_out, spec->inputs, spec->ninputs, NULL, &inputs, &e) != 0) {
        fprintf(stderr, "tally: %s\n", e.msg);
        goto done;
    }
    if (output_prepare(&out, spec->out, spec->overwrite, owner, &e) != 0) {
        fprintf(stderr, "tally: %s\n", e.msg);
        goto done;
    }
    have_out = 1;
    rc = EXITCODE_FAILED;
    log_debug("output %s claimed; work dir %s", spec->out, run_dir);

    task_env env = {.spec = spec, .inputs = &inputs, .work_dir = run_dir, .out_tmp = out.tmp};
    sj = sched_job_new((uint32_t)inputs.nsplits, spec->reduces, spec->max_attempts, time_wall_ms());
    sj->max_skipped_ratio = spec->max_skipped_ratio;
    run_progress prog = {.tty = !quiet && isatty(STDOUT_FILENO), .total_bytes = inputs.total_bytes};
    uint64_t t0 = time_mono_ns();
    if (local_run(&env, pool, job_id, spec_json, sj, slots, &run_interrupted, run_show_progress, &prog, &e) != 0 &&
        !sj->error)
        sched_job_cancel(sj, e.msg, time_wall_ms());
    double secs = (double)(time_mono_ns() - t0) / 1e9;
    sched_job_summary(sj, &oc->sum);

    if (sj->state == SCHED_JOB_SUCCEEDED) {
        counters c;
        sched_job_counters(sj, &c);
        c.v[CNT_INPUT_FILES] = (int64_t)inputs.nfiles;
        c.v[CNT_INPUT_BYTES] = (int64_t)inputs.total_bytes;
        struct buf json = {0};
        counters_to_json(&c, &json);
        if (output_commit(&out, spec->reduces, job.columns, json.data, &e) != 0) {
            fprintf(stderr, "tally: committing output: %s\n", e.msg);
        } else {
            oc->total_ms = (time_mono_ns() - t_plan) / 1000000;
            rc = 0;
            have_out = 0;
            log_debug("committed %u part(s), _counters.json and _SUCCESS to %s", spec->reduces, spec->out);
            double mb = (double)inputs.total_bytes / 1e6;
            printf("tally: %s done in %.2f s: %.1f MB at %.1f MB/s, %lld records in, %lld out, %lld skipped\n",
                   job.name, secs, mb, secs > 0 ? mb / secs : 0.0, (long long)c.v[CNT_INPUT_RECORDS],
                   (long long)c.v[CNT_OUTPUT_RECORDS], (long long)c.v[CNT_RECORDS_SKIPPED]);
            fflush(stdout);
        }
        buf_free(&json);
        counters_free(&c);
    } else if (sj->state == SCHED_JOB_CANCELLED && run_interrupted) {
        fprintf(stderr, "tally: job %s interrupted: nothing was written to %s\n", job.name, spec->out);
        rc = EXITCODE_INTERRUPTED;
    } else {
        fprintf(stderr, "tally: job %s failed: %s\n", job.name, sj->error ? sj->error : "unknown error");
    }

done:
    if (have_out) output_abort(&out);
    output_free(&out);
    if (run_dir) {
        fs_rmtree(run_dir);
        free(run_dir);
    }
    free(owner);
    execpool_job_free(&job);
    json_decref(spec_json);
    sched_job_free(sj);
    input_set_free(&inputs);
    return rc;
}

/* After a series stopped at iteration i of n: what there is of it. */
static void run_series_stopped(const series_opts *so, const series_results *res, const char *out, uint64_t i,
                               uint64_t n)
{
    if (n == 1) return;
    if (i == 1)
        fprintf(stderr, "tally: the series stopped at iteration 1 of %" PRIu64 "\n", n);
    else if (so->keep)
        fprintf(stderr, "tally: the series stopped at iteration %" PRIu64 " of %" PRIu64 "; the %" PRIu64
                        " before it succeeded: their outputs are in %s/iter-*\n", i, n, i - 1, out);
    else
        fprintf(stderr, "tally: the series stopped at iteration %" PRIu64 " of %" PRIu64 "; the %" PRIu64
                        " before it succeeded: %s holds the output of the last one\n", i, n, i - 1, out);
    if (i > 1 && res->path) fprintf(stderr, "tally: their rows are in %s\n", res->path);
}

int cli_run(int argc, char **argv)
{
    struct err e = {0};
    jobspec spec;
    jobspec_init(&spec);
    run_flags flags = {0};
    series_results res = {.fd = -1};
    run_session ss = {.work.fd = -1};
    char *base_out = NULL;
    int rc = EXITCODE_USAGE, out_existed = 1;

    /* A closed stdout or stderr (`tally run ... | head -1`) must not kill the job: writes to
     * them fail with EPIPE instead, and the job goes on to commit or roll back. A hang-up
     * (the terminal went away) stops the job like Ctrl-C, so that it cleans up. */
    signal(SIGPIPE, SIG_IGN);
    util_catch_stop_signals(run_on_signal);
    signal(SIGHUP, run_on_signal);
    ifile_fault_init();
    if (argc < 2) {
        run_usage(stderr, NULL);
        goto done;
    }
    if (cli_run_parse(argc, argv, &spec, &flags.quiet, &flags.help, &flags.series, &e) != 0) {
        fprintf(stderr, "tally: %s\n", e.msg);
        goto done;
    }
    if (flags.help) {
        const tally_job *hj = NULL;
        void *hh = NULL;
        if (spec.job && jobreg_load(spec.job, &hj, &hh, &e) != 0) {
            fprintf(stderr, "tally: %s\n", e.msg);
            goto done;
        }
        run_usage(stdout, hj);
        jobreg_unload(hh);
        rc = 0;
        goto done;
    }
    /* A results file that is not ours, or an OUT that cannot hold the iterations, is refused
     * before anything runs, like a bad option. */
    if ((flags.series.results && series_results_open(&res, flags.series.results, &e) != 0) ||
        series_check_out(&flags.series, spec.out, spec.overwrite, &out_existed, &e) != 0) {
        fprintf(stderr, "tally: %s\n", e.msg);
        goto done;
    }

    /* The series: iteration 1 obeys the usual rules for OUT; each later one replaces the
     * output of the one before through --overwrite's commit (the old output is put aside, and
     * comes back if the iteration fails), or under --keep-iterations gets a directory of its
     * own. */
    base_out = spec.out;
    spec.out = NULL;
    int overwrite = spec.overwrite;
    uint64_t n = flags.series.iterations, i;
    rc = 0;
    for (i = 1; i <= n; i++) {
        if (run_interrupted) {
            rc = EXITCODE_INTERRUPTED;
            fprintf(stderr, "tally: interrupted before iteration %" PRIu64 "\n", i);
            break;
        }
        free(spec.out);
        spec.out = series_out(&flags.series, base_out, i);
        spec.overwrite = overwrite || (i > 1 && !flags.series.keep);
        run_outcome oc;
        rc = run_iteration(&spec, base_out, flags.quiet, &ss, &oc);
        /* The file in a --results directory is named after the first plan, whatever became of
         * the iteration. */
        if (i == 1 && oc.planned && series_results_choose(&res, oc.maps, oc.reduces, n, oc.start_ms, &e) != 0) {
            fprintf(stderr, "tally: %s\n", e.msg);
            if (rc == 0) rc = EXITCODE_FAILED;
        }
        if (rc) break;
        series_row row = {.iteration = i, .start_ms = oc.start_ms, .total_ms = oc.total_ms, .sum = oc.sum};
        if (res.fd >= 0 && series_results_append(&res, &row, &e) != 0) {
            fprintf(stderr, "tally: %s\n", e.msg);
            rc = EXITCODE_FAILED;
            break;
        }
        if (series_active(&flags.series) && !flags.quiet) series_report(&row, n);
    }
    if (rc) {
        run_series_stopped(&flags.series, &res, base_out, i, n);
        /* Only if empty: OUT made for the iterations' directories, none of which committed. */
        if (flags.series.keep && !out_existed) rmdir(base_out);
    }

done:
    run_session_close(&ss);
    series_results_close(&res);
    free(base_out);
    jobspec_free(&spec);
    return rc;
}
