/* client.c - `tally submit`, `tally status` and `tally cancel`: the coordinator's command-line
 * clients.
 *
 * Each command reads its settings table (cli/opts.h), answers --help without a token or a
 * coordinator, and reports every failure as one `tally: ` line whose wording and exit code
 * (common/exitcode.h) depend only on the kind of failure, never on the command:
 *   cannot connect, no answer, token refused (HTTP 401)                 EXITCODE_UNREACHABLE
 *   bad option, unknown job id, a submission the coordinator calls a
 *   usage error (missing input, unusable OUT, a field no input has)     EXITCODE_USAGE
 *   the job failed or was cancelled, any other refusal                  EXITCODE_FAILED
 *   Ctrl-C or SIGTERM while `submit` waits (the job goes on)            EXITCODE_INTERRUPTED
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cli/series.h"
#include "cluster/coord.h"
#include "cluster/leader.h"
#include "cluster/wire.h"
#include "common/claim.h"
#include "common/exitcode.h"
#include "exec/jobreg.h"
#include "net/http.h"

/* ---- Settings tables ---------------------------------------------------------------------- */

static const char *client_o_coord, *client_o_token, *client_o_detach, *client_o_json, *client_o_give_up,
    *client_o_weight;

#define CLIENT_OPT_COORD                                                                                   \
    {"coordinator", 0, "HOST:PORT", "TALLY_COORDINATOR", "127.0.0.1:7070", "the coordinator's address",    \
     &client_o_coord}
#define CLIENT_OPT_TOKEN                                                                                   \
    {"token-file", 0, "FILE", "TALLY_TOKEN_FILE", NULL, "file holding the cluster's token (required)",     \
     &client_o_token}

static const cli_opt client_submit_opts[] = {
    CLIENT_OPT_COORD,
    CLIENT_OPT_TOKEN,
    {"detach", 0, NULL, NULL, NULL, "print the job id and return at once instead of waiting", &client_o_detach},
    {"coordinator-timeout-ms", 0, "MS", "TALLY_COORDINATOR_TIMEOUT_MS", "10000",
     "while waiting, give up on a coordinator that has not answered for this long", &client_o_give_up},
    {"weight", 0, "W", "TALLY_WEIGHT", "1",
     "the job's share of the slots against the other running jobs (fair sharing; 0.01 to 1000)", &client_o_weight},
};
static const cli_opt client_status_opts[] = {
    CLIENT_OPT_COORD,
    CLIENT_OPT_TOKEN,
    {"json", 0, NULL, NULL, NULL, "print the coordinator's whole record as JSON", &client_o_json},
};
static const cli_opt client_cancel_opts[] = {CLIENT_OPT_COORD, CLIENT_OPT_TOKEN};

#define CLIENT_N(t) (sizeof t / sizeof t[0])

/* ---- Talking to the coordinator ----------------------------------------------------------- */

typedef struct client {
    const char *coordinator;
    leader ldr;             /* follows the leader among the --coordinator addresses */
    const char *token_file;
    char *token;
    double weight;          /* submit --weight */
} client;

/* One request's outcome: a transport failure (rc < 0, message in e), or an HTTP status with the
 * body, parsed when it is a JSON object. */
typedef struct client_answer {
    int rc;
    int status;
    char *text;
    json_t *body;
    struct err e;
} client_answer;

static void client_answer_free(client_answer *a)
{
    free(a->text);
    json_decref(a->body);
    memset(a, 0, sizeof *a);
}

/* Reads the token once the command line is known to be good (so --help never needs one).
 * Returns 0, or prints why not and returns the exit code. */
static int client_open(client *cl)
{
    struct err e = {0};
    cl->coordinator = client_o_coord;
    cl->token_file = client_o_token;
    if (!cl->token_file) {
        fprintf(stderr, "tally: --token-file FILE (or TALLY_TOKEN_FILE) is required: the file holding the "
                        "cluster's token (scripts/cluster.sh env prints it for a local cluster)\n");
        return EXITCODE_USAGE;
    }
    if (http_read_token_file(cl->token_file, &cl->token, &e) != 0) {
        fprintf(stderr, "tally: cannot read the token file: %s\n", e.msg);
        return EXITCODE_USAGE;
    }
    if (leader_init(&cl->ldr, cl->coordinator, &e) != 0) {
        fprintf(stderr, "tally: --coordinator: %s\n", e.msg);
        free(cl->token);
        cl->token = NULL;
        return EXITCODE_USAGE;
    }
    /* With several coordinators, a call waits out a failover (a new leader within about the
     * ZooKeeper session timeout) instead of failing. */
    cl->ldr.patience_ms = 15000;
    return 0;
}

static void client_call(const client *cl, const char *method, const char *path, const char *body, long timeout_ms,
                        client_answer *a)
{
    memset(a, 0, sizeof *a);
    a->rc = leader_call((leader *)&cl->ldr, method, path, cl->token, body, timeout_ms, &a->status, &a->text, &a->e);
    if (a->rc == 0 && a->text) {
        struct err ignored = {0};
        if (wire_parse_object(a->text, strlen(a->text), &a->body, &ignored) != 0) a->body = NULL;
    }
}

/* The coordinator's own words for a refusal: its {"error": "..."}, else the first line of
 * whatever it sent (another server on that port, say). */
static void client_refusal(const client_answer *a, char *buf, size_t cap)
{
    const char *msg = json_string_value(json_object_get(a->body, "error"));
    if (msg) {
        snprintf(buf, cap, "%s", msg);
        return;
    }
    const char *t = a->text ? a->text : "";
    snprintf(buf, cap, "%.*s", (int)strcspn(t, "\r\n"), t);
    if (!buf[0]) snprintf(buf, cap, "no explanation");
}

/* Says why a request failed, in the words every client command uses, and returns the exit
 * code. `job` (may be NULL) is the job the request was about: a 404 then means there is none. */
static int client_explain(const client *cl, const client_answer *a, const char *job)
{
    if (a->rc == -EINVAL) {
        fprintf(stderr, "tally: --coordinator '%s' is not an address the client can use (%s)\n", cl->coordinator,
                a->e.msg);
        return EXITCODE_USAGE;
    }
    if (a->rc == -ETIMEDOUT) {
        fprintf(stderr, "tally: the coordinator at %s does not answer (%s): is it running, and is "
                        "--coordinator/TALLY_COORDINATOR its address?\n", cl->coordinator, strerror(ETIMEDOUT));
        return EXITCODE_UNREACHABLE;
    }
    if (a->rc == -EIO || a->rc == -EFBIG || a->rc == -ENOMEM) {
        fprintf(stderr, "tally: lost the connection to the coordinator at %s: %s\n", cl->coordinator, a->e.msg);
        return EXITCODE_UNREACHABLE;
    }
    if (a->rc < 0) {
        fprintf(stderr, "tally: cannot connect to the coordinator at %s (%s): start one with scripts/cluster.sh "
                        "up, or tally coordinator --token-file FILE, and point --coordinator/TALLY_COORDINATOR at it\n",
                cl->coordinator, strerror(-a->rc));
        return EXITCODE_UNREACHABLE;
    }
    if (a->status == 401) {
        fprintf(stderr, "tally: the coordinator at %s refused our token (HTTP 401): the token file %s does not "
                        "hold the token it was started with (--token-file/TALLY_TOKEN_FILE)\n",
                cl->coordinator, cl->token_file);
        return EXITCODE_UNREACHABLE;
    }
    if (a->status == 404 && job) {
        fprintf(stderr, "tally: no job %s on the coordinator at %s (tally status lists its jobs)\n", job,
                cl->coordinator);
        return EXITCODE_USAGE;
    }
    char why[512];
    client_refusal(a, why, sizeof why);
    fprintf(stderr, "tally: the coordinator at %s refused the request (HTTP %d): %s\n", cl->coordinator, a->status,
            why);
    return EXITCODE_FAILED;
}

/* Fetches one job; with wait_ms the coordinator answers when its version moves past `version`
 * (with until_done: only once the job is over) or when the wait ends. Returns 0 with *job, or
 * -1 with a failed answer in *a. */
static int client_get_job(const client *cl, const char *id, uint64_t wait_ms, uint64_t version, int until_done,
                          long timeout_ms, json_t **job, client_answer *a)
{
    char path[192];
    snprintf(path, sizeof path, "/v1/jobs/%s?wait_ms=%" PRIu64 "&version=%" PRIu64 "%s", id, wait_ms, version,
             until_done ? "&until=done" : "");
    client_call(cl, "GET", path, NULL, timeout_ms, a);
    if (a->rc || a->status != 200) return -1;
    json_t *jobs = json_object_get(a->body, "jobs");
    if (!json_is_array(jobs) || json_array_size(jobs) != 1) {
        a->status = 404;
        return -1;
    }
    *job = json_incref(json_array_get(jobs, 0));
    client_answer_free(a);
    return 0;
}

static int client_job_over(const char *state)
{
    return state && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0);
}

static int client_int(const json_t *o, const char *key)
{
    return (int)json_integer_value(json_object_get(o, key));
}

/* ---- submit --------------------------------------------------------------------------------- */

static volatile sig_atomic_t client_interrupted;

static void client_on_signal(int sig)
{
    (void)sig;
    client_interrupted = 1;
}

/* Paths go to workers that may run elsewhere: make them absolute against our directory. */
static char *client_abs(const char *p)
{
    if (p[0] == '/') return xstrdup(p);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return xstrdup(p);
    return xasprintf("%s/%s", cwd, p);
}

static void client_submit_usage(FILE *out, const tally_job *job)
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
    cli_opts_list(out, "Options of submit (anywhere before or among the job's)", client_submit_opts,
                  CLIENT_N(client_submit_opts));
    cli_job_options_usage(out, job);
    fprintf(out, "\nThe other options are tally run's (tally run --help): -m, -r, --format, --sort-buffer,\n"
                 "--max-record, --split-size, --max-attempts, --max-skipped-ratio, --strict, --overwrite,\n"
                 "--job-arg, -q, and --iterations, --keep-iterations, --results (one job per iteration, each\n"
                 "submitted once the one before succeeded; Ctrl-C cancels the running one); -w and --work-dir\n"
                 "do not apply (each worker has its own).%s\n",
            job ? "" : "\ntally submit JOB --help lists a job's own options.");
}

/* The owner text of a claim names its job as "job=ID" followed by a space or the end. */
static int client_owner_names(const char *owner, const char *id)
{
    size_t n = strlen(id);
    for (const char *p = strstr(owner, "job="); p; p = strstr(p + 1, "job=")) {
        if ((p == owner || p[-1] == ' ') && strncmp(p + 4, id, n) == 0 &&
            (p[4 + n] == '\0' || p[4 + n] == ' ' || p[4 + n] == '\n'))
            return 1;
    }
    return 0;
}

/* After losing the coordinator: what OUT/_temporary, the job's claim on OUT, says about the job.
 * A claim of this job that no live process holds means its coordinator is gone: when the job
 * had written nothing but that directory (phase running, no old entries put aside by
 * --overwrite), removing it is the whole rollback, done holding the dead owner's lock so that
 * nobody takes the claim over meanwhile; anything more is left to the next job on OUT, whose
 * take-over rolls it back properly (data/output.h). */
static void client_lost_claim(const char *out, const char *id)
{
    char *tmp = xasprintf("%s/_temporary", out), *ofile = xasprintf("%s/%s", tmp, CLAIM_OWNER_FILE);
    char *prev = xasprintf("%s/_previous", tmp), *succ = xasprintf("%s/_SUCCESS", out);
    char owner[256];
    struct stat st;
    int live = claim_probe(tmp, owner, sizeof owner);
    if (live == 1) {
        fprintf(stderr, "tally: a live process still holds %s (%.*s): the job may still be running; check with "
                        "tally status %s once the coordinator answers\n",
                tmp, (int)strcspn(owner, "\n"), owner, id);
    } else if (live == 0 && owner[0] && client_owner_names(owner, id) && strstr(owner, " resumable")) {
        /* Its coordinator keeps the job's state (--state-dir, --zookeeper): the next one
         * resumes it from this very claim, so nothing here is the client's to remove. */
        fprintf(stderr, "tally: job %s is kept by its coordinators' state: it goes on when a coordinator takes over; "
                        "follow it with tally status %s\n", id, id);
    } else if (live == 0 && owner[0] && client_owner_names(owner, id)) {
        int fd = open(ofile, O_RDWR | O_CLOEXEC);
        int locked = fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0;
        /* Re-read under the lock: the claim may have been taken over since the probe. */
        live = locked ? claim_probe(tmp, owner, sizeof owner) : -1;
        int mine = live == 1 && client_owner_names(owner, id);
        int only_tmp = mine && strstr(owner, "phase=running") && stat(prev, &st) != 0;
        if (only_tmp) {
            claim c = {.path = tmp, .fd = fd};
            tmp = NULL;
            fd = -1;
            claim_release(&c);
            fprintf(stderr, "tally: the coordinator that ran job %s is gone (nothing holds its claim on OUT): the "
                            "job did not finish; removed the %s/_temporary it left\n", id, out);
        } else if (mine) {
            fprintf(stderr, "tally: the coordinator that ran job %s is gone (nothing holds its claim on OUT): the "
                            "job did not finish; the next job on %s rolls back what it wrote%s\n",
                    id, out, stat(prev, &st) == 0 ? " and puts back the entries --overwrite moved aside" : "");
        }
        if (fd >= 0) close(fd);
    } else if (live == 0 && !owner[0] && stat(succ, &st) == 0) {
        fprintf(stderr, "tally: %s exists: the job may have committed its output before the coordinator was "
                        "lost; check with tally status %s once the coordinator answers\n", succ, id);
    }
    free(tmp);
    free(ofile);
    free(prev);
    free(succ);
}

/* Ctrl-C during an iteration run: the series stops as it would if the job failed, so the job
 * is cancelled (the coordinator rolls back what it wrote) rather than left to commit. */
static int client_stop_job(const client *cl, const char *id)
{
    char path[128];
    client_answer a;
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    client_call(cl, "POST", path, "{}", 10000, &a);
    const char *state = a.rc == 0 && a.status == 200 ? json_string_value(json_object_get(a.body, "state")) : NULL;
    if (state && strcmp(state, "cancelled") == 0)
        fprintf(stderr, "tally: interrupted: cancelled job %s (what it wrote to OUT is rolled back)\n", id);
    else if (state)
        fprintf(stderr, "tally: interrupted: job %s was already %s\n", id, state);
    else
        fprintf(stderr, "tally: interrupted, but job %s could not be cancelled (%s): cancel it with tally cancel %s\n",
                id, a.rc ? a.e.msg : "the coordinator refused", id);
    client_answer_free(&a);
    return EXITCODE_INTERRUPTED;
}

/* Waits for job `id` (submitted at t0) with a progress line on a terminal; returns the exit
 * code. On Ctrl-C the job goes on, or with `cancel_on_stop` is cancelled. *final (may be NULL)
 * receives the job's last record once it is over (the caller owns it), else NULL. */
static int client_wait(const client *cl, const char *id, const jobspec *spec, int quiet, uint64_t t0,
                       uint64_t give_up_ms, int cancel_on_stop, json_t **final)
{
    if (final) *final = NULL;
    int tty = !quiet && isatty(STDOUT_FILENO), printed = 0, rc = EXITCODE_FAILED;
    uint64_t last_answer = time_mono_ms(), version = 0;
    /* Short waits: Ctrl-C is seen between two requests (libcurl carries on through signals). */
    uint64_t wait_ms = tty ? 200 : 500;
    long timeout_ms = (long)wait_ms + (long)(give_up_ms < 10000 ? give_up_ms : 10000) + 1000;
    char lost[1024] = "";
    for (;;) {
        if (client_interrupted) {
            if (printed) printf("\r\033[K");
            fflush(stdout);
            if (cancel_on_stop) return client_stop_job(cl, id);
            fprintf(stderr, "tally: stopped waiting; job %s goes on: follow it with tally status %s, cancel it "
                            "with tally cancel %s\n", id, id, id);
            return EXITCODE_INTERRUPTED;
        }
        json_t *job = NULL;
        client_answer a;
        if (client_get_job(cl, id, wait_ms, version, !tty, timeout_ms, &job, &a) != 0) {
            if (a.rc == 0 && a.status != 404 && a.status != 421 && a.status < 500) {
                /* A refusal (the token, say) that asking again will not change. */
                rc = client_explain(cl, &a, id);
                client_answer_free(&a);
                return rc;
            }
            if (a.rc == 0 && a.status == 404) {
                snprintf(lost, sizeof lost, "it no longer knows the job: was it restarted?");
                client_answer_free(&a);
                break;
            }
            if (a.rc) snprintf(lost, sizeof lost, "%s", strerror(-a.rc));
            else snprintf(lost, sizeof lost, "HTTP %d", a.status);
            client_answer_free(&a);
            if (time_mono_ms() - last_answer >= give_up_ms) {
                char s[64];
                snprintf(s, sizeof s, " for %.1f s", (double)(time_mono_ms() - last_answer) / 1000.0);
                strncat(lost, s, sizeof lost - strlen(lost) - 1);
                break;
            }
            usleep(100000);
            continue;
        }
        last_answer = time_mono_ms();
        version = (uint64_t)json_integer_value(json_object_get(job, "version"));
        const char *state = json_string_value(json_object_get(job, "state"));
        json_t *c = json_object_get(job, "counters");
        double secs = (double)(time_mono_ms() - t0) / 1000.0;
        double mb = (double)json_integer_value(json_object_get(c, "input_bytes")) / 1e6;
        if (tty && !client_job_over(state)) {
            double done = json_number_value(json_object_get(job, "map_progress")) * mb;
            printf("\r\033[Kjob %s  map %3.0f%% (%d/%d)  reduce %3.0f%% (%d/%d)  %.1f MB/s  %.1fs", id,
                   100 * json_number_value(json_object_get(job, "map_progress")), client_int(job, "maps_done"),
                   client_int(job, "maps_total"), 100 * json_number_value(json_object_get(job, "reduce_progress")),
                   client_int(job, "reduces_done"), client_int(job, "reduces_total"), secs > 0 ? done / secs : 0.0,
                   secs);
            fflush(stdout);
            printed = 1;
        }
        if (!client_job_over(state)) {
            json_decref(job);
            continue;
        }
        if (printed) printf("\r\033[K");
        if (strcmp(state, "succeeded") == 0) {
            char *succ = xasprintf("%s/_SUCCESS", spec->out);
            struct stat st;
            if (stat(succ, &st) == 0) {
                printf("tally: job %s succeeded in %.2f s: %.1f MB at %.1f MB/s, %" JSON_INTEGER_FORMAT
                       " records in, %" JSON_INTEGER_FORMAT " out, %" JSON_INTEGER_FORMAT " skipped\n",
                       id, secs, mb, secs > 0 ? mb / secs : 0.0, json_integer_value(json_object_get(c, "input_records")),
                       json_integer_value(json_object_get(c, "output_records")),
                       json_integer_value(json_object_get(c, "records_skipped")));
                rc = EXITCODE_OK;
            } else {
                fflush(stdout);
                fprintf(stderr, "tally: job %s succeeded but %s is not visible here: is OUT on a mount this machine "
                                "shares with the workers?\n", id, succ);
            }
            free(succ);
        } else {
            const char *err = json_string_value(json_object_get(job, "error"));
            fflush(stdout);
            fprintf(stderr, "tally: job %s %s: %s\n", id, state, err ? err : "no reason given");
        }
        if (final) *final = json_incref(job);
        json_decref(job);
        return rc;
    }
    if (printed) printf("\r\033[K");
    fflush(stdout);
    fprintf(stderr, "tally: lost the coordinator at %s while waiting for job %s (%s): the job's fate is unknown; "
                    "once the coordinator answers, tally status %s says what became of it (%s/_SUCCESS exists "
                    "once it succeeded)\n", cl->coordinator, id, lost, id, spec->out);
    client_lost_claim(spec->out, id);
    return EXITCODE_UNREACHABLE;
}

/* Sends the job; returns 0 with its id in id[], or prints why not and returns the exit code. */
static int client_send_job(const client *cl, const jobspec *spec, char *id, size_t cap)
{
    json_t *body = json_pack("{s:o, s:f}", "spec", wire_jobspec_encode(spec), "weight", cl->weight);
    char *s = wire_dump(body);
    json_decref(body);
    client_answer a;
    int rc = 0;
    client_call(cl, "POST", "/v1/jobs", s, 60000, &a);
    free(s);
    const char *idv = a.rc == 0 && a.status == 200 ? json_string_value(json_object_get(a.body, "id")) : NULL;
    if (a.rc == 0 && a.status == 400 && json_object_get(a.body, "usage")) {
        /* The coordinator checked the job as tally run would: say what it found. */
        char why[1024];
        client_refusal(&a, why, sizeof why);
        fprintf(stderr, "tally: %s\n", why);
        rc = json_is_true(json_object_get(a.body, "usage")) ? EXITCODE_USAGE : EXITCODE_FAILED;
    } else if (a.rc == 0 && a.status == 200 && !idv) {
        fprintf(stderr, "tally: the coordinator at %s accepted the job but sent no job id\n", cl->coordinator);
        rc = EXITCODE_FAILED;
    } else if (!idv) {
        rc = client_explain(cl, &a, NULL);
    }
    snprintf(id, cap, "%s", idv ? idv : "");
    client_answer_free(&a);
    return rc;
}

/* The "summary" of a job's record (zeros if the coordinator sent none). */
static void client_summary(const json_t *job, sched_summary *sum)
{
    const json_t *o = json_object_get(job, "summary");
    memset(sum, 0, sizeof *sum);
    sum->map_ms = (uint64_t)json_integer_value(json_object_get(o, "map_ms"));
    sum->reduce_ms = (uint64_t)json_integer_value(json_object_get(o, "reduce_ms"));
    sum->slowest_ms = (uint64_t)json_integer_value(json_object_get(o, "slowest_attempt_ms"));
    sum->attempts = (uint32_t)json_integer_value(json_object_get(o, "attempts"));
    sum->speculative = (uint32_t)json_integer_value(json_object_get(o, "speculative"));
    sum->killed = (uint32_t)json_integer_value(json_object_get(o, "killed"));
    const char *w = json_string_value(json_object_get(o, "slowest_worker"));
    snprintf(sum->slowest_worker, sizeof sum->slowest_worker, "%s", w ? w : "");
}

int coord_submit_main(int argc, char **argv)
{
    client cl = {0};
    struct err e = {0};
    jobspec spec;
    jobspec_init(&spec);
    series_opts series = {.iterations = 1};
    series_results res = {.fd = -1};
    char *base_out = NULL;
    int quiet = 0, help = 0, rc = EXITCODE_USAGE, out_existed = 1;
    uint64_t give_up_ms = 0;
    signal(SIGPIPE, SIG_IGN);
    util_catch_stop_signals(client_on_signal);
    if (cli_opts_take(client_submit_opts, CLIENT_N(client_submit_opts), &argc, argv, &e) != 0) {
        fprintf(stderr, "tally: %s\n", e.msg);
        goto done;
    }
    if (util_parse_u64(client_o_give_up, 0, 86400000, &give_up_ms) != 0) {
        fprintf(stderr, "tally: --coordinator-timeout-ms: expected milliseconds, got '%s'\n", client_o_give_up);
        goto done;
    }
    if (argc < 2) {
        client_submit_usage(stderr, NULL);
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
        client_submit_usage(stdout, job);
        jobreg_unload(handle);
        rc = EXITCODE_OK;
        goto done;
    }
    if (client_o_detach && series_active(&series)) {
        fprintf(stderr, "tally: --detach returns once one job is accepted: it does not go with --iterations, "
                        "--keep-iterations or --results, which wait for every iteration\n");
        goto done;
    }
    if (util_parse_double(client_o_weight, 0.01, 1000, &cl.weight) != 0) {
        fprintf(stderr, "tally: --weight: expected a number from 0.01 to 1000, got '%s'\n", client_o_weight);
        goto done;
    }
    if ((rc = client_open(&cl)) != 0) goto done;
    rc = EXITCODE_USAGE;
    /* Inputs go as given, with the directory they are relative to: jobs see the paths the user
     * typed (grep and index print them), as under tally run. */
    char cwd[PATH_MAX];
    if (getcwd(cwd, sizeof cwd)) spec.cwd = xstrdup(cwd);
    base_out = client_abs(spec.out);
    free(spec.out);
    spec.out = NULL;
    if (spec.job[0] != '/' && strchr(spec.job, '/')) {
        char *j = client_abs(spec.job);
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
        if (client_interrupted) {
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
        if ((rc = client_send_job(&cl, &spec, id, sizeof id)) != 0) break;
        if (client_o_detach) {
            printf("%s\n", id);
            break;
        }
        json_t *job = NULL;
        rc = client_wait(&cl, id, &spec, quiet, t0, give_up_ms, series_active(&series), &job);
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
    free(cl.token);
    leader_free(&cl.ldr);
    return rc;
}

/* ---- status --------------------------------------------------------------------------------- */

static const char *client_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void client_print_jobs(const json_t *jobs)
{
    size_t i;
    json_t *v;
    printf("%-22s %-10s %-10s %9s %5s %9s %5s  %s\n", "JOB", "NAME", "STATE", "MAPS", "MAP%", "REDUCES", "RED%",
           "ERROR");
    json_array_foreach(jobs, i, v) {
        char maps[32], reds[32];
        snprintf(maps, sizeof maps, "%d/%d", client_int(v, "maps_done"), client_int(v, "maps_total"));
        snprintf(reds, sizeof reds, "%d/%d", client_int(v, "reduces_done"), client_int(v, "reduces_total"));
        const char *jn = client_str(v, "job");
        const char *slash = strrchr(jn, '/');
        printf("%-22s %-10.10s %-10s %9s %4.0f%% %9s %4.0f%%  %s\n", client_str(v, "id"), slash ? slash + 1 : jn,
               client_str(v, "state"), maps, 100 * json_number_value(json_object_get(v, "map_progress")), reds,
               100 * json_number_value(json_object_get(v, "reduce_progress")), client_str(v, "error"));
    }
}

/* One job's running attempts, with what their heartbeats said. */
static void client_print_attempts(const json_t *job)
{
    size_t i;
    json_t *v;
    int header = 0;
    json_array_foreach(json_object_get(job, "tasks"), i, v) {
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(v, "attempts"), k, a) {
            if (strcmp(client_str(a, "state"), "running") != 0) continue;
            if (!header++)
                printf("\n%-8s %-8s %-20s %8s %12s %12s  %s\n", "ATTEMPT", "TASK", "WORKER", "PROGRESS", "RECORDS IN",
                       "RECORDS OUT", "COPY");
            json_t *cs = json_object_get(a, "counters");
            const char *ph = client_str(v, "phase");
            char task[24], att[24];
            snprintf(task, sizeof task, "%c%05d", ph[0] ? ph[0] : '?', client_int(v, "index"));
            snprintf(att, sizeof att, "a%d", client_int(a, "id"));
            int is_map = strcmp(ph, "map") == 0;
            printf("%-8s %-8s %-20s %7.0f%% %12" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "  %s\n", att, task,
                   client_str(a, "worker"), 100 * json_number_value(json_object_get(a, "progress")),
                   json_integer_value(json_object_get(cs, is_map ? "input_records" : "reduce_input_records")),
                   json_integer_value(json_object_get(cs, is_map ? "map_output_records" : "output_records")),
                   json_object_get(a, "copy") ? client_str(a, "copy") : "-");
        }
    }
}

int coord_status_main(int argc, char **argv)
{
    client cl = {0};
    struct err e = {0};
    char **pos = NULL;
    size_t npos = 0;
    int rc = cli_opts_parse(client_status_opts, CLIENT_N(client_status_opts), argc, argv, &pos, &npos, &e);
    const char *job = npos ? pos[0] : NULL;
    if (rc == 1) {
        cli_opts_usage(stdout,
                       "usage: tally status [options] [JOB]\n\n"
                       "Without JOB: the cluster's workers and jobs. With JOB: that job and its running attempts.\n"
                       "Exit status: 0 ok, 2 a usage error (also: no such job), 3 cannot reach the coordinator\n"
                       "or it refused the token.",
                       client_status_opts, CLIENT_N(client_status_opts));
        rc = EXITCODE_OK;
        goto done;
    }
    if (rc == 0 && npos > 1) rc = err_set(&e, -EINVAL, "status takes at most one JOB, got '%s' and '%s'", pos[0], pos[1]);
    if (rc) {
        fprintf(stderr, "tally: %s\n", e.msg);
        rc = EXITCODE_USAGE;
        goto done;
    }
    if ((rc = client_open(&cl)) != 0) goto done;
    char path[128] = "/v1/status";
    if (job) snprintf(path, sizeof path, "/v1/jobs/%s", job);
    client_answer a;
    client_call(&cl, "GET", path, NULL, 10000, &a);
    if (a.rc || a.status != 200) {
        rc = client_explain(&cl, &a, job);
    } else if (client_o_json) {
        printf("%s\n", a.text);
    } else if (!a.body) {
        fprintf(stderr, "tally: the coordinator at %s sent a status that is not JSON\n", cl.coordinator);
        rc = EXITCODE_FAILED;
    } else if (job) {
        client_print_jobs(json_object_get(a.body, "jobs"));
        client_print_attempts(json_array_get(json_object_get(a.body, "jobs"), 0));
    } else {
        size_t i;
        json_t *v;
        printf("%-22s %-9s %6s  %s\n", "COORDINATOR", "ROLE", "EPOCH", "STATE");
        json_array_foreach(json_object_get(a.body, "coordinators"), i, v) {
            json_t *ep = json_object_get(v, "epoch");
            char epoch[32] = "-";
            if (json_is_integer(ep)) snprintf(epoch, sizeof epoch, "%" JSON_INTEGER_FORMAT, json_integer_value(ep));
            printf("%-22s %-9s %6s  %s\n", client_str(v, "address"), client_str(v, "role"), epoch,
                   json_object_get(v, "state") ? client_str(v, "state") : "-");
        }
        printf("\n");
        printf("%-20s %-22s %-6s %5s %7s  %-9s %5s %7s %5s\n", "WORKER", "ADDRESS", "STATE", "SLOTS", "RUNNING",
               "HEALTH", "SLOW", "PSI-CPU", "LOAD");
        json_array_foreach(json_object_get(a.body, "workers"), i, v) {
            const json_t *h = json_object_get(v, "health");
            char psi[16] = "-", load[16] = "-";
            if (json_is_number(json_object_get(h, "psi_cpu")))
                snprintf(psi, sizeof psi, "%.1f%%", json_number_value(json_object_get(h, "psi_cpu")));
            if (json_is_number(json_object_get(h, "load1")))
                snprintf(load, sizeof load, "%.2f", json_number_value(json_object_get(h, "load1")));
            printf("%-20s %-22s %-6s %5d %7d  %-9s %5.2f %7s %5s\n", client_str(v, "name"), client_str(v, "address"),
                   client_str(v, "state"), client_int(v, "slots"), client_int(v, "running"),
                   h ? client_str(h, "state") : "-", json_number_value(json_object_get(h, "score")), psi, load);
        }
        if (json_array_size(json_object_get(a.body, "workers")) == 0)
            printf("(no worker has registered: start one with tally worker --coordinator %s --token-file FILE)\n",
                   cl.coordinator);
        printf("\n");
        client_print_jobs(json_object_get(a.body, "jobs"));
    }
    client_answer_free(&a);
done:
    free(pos);
    free(cl.token);
    leader_free(&cl.ldr);
    return rc;
}

/* ---- cancel --------------------------------------------------------------------------------- */

int coord_cancel_main(int argc, char **argv)
{
    client cl = {0};
    struct err e = {0};
    char **pos = NULL;
    size_t npos = 0;
    json_t *job = NULL;
    int rc = cli_opts_parse(client_cancel_opts, CLIENT_N(client_cancel_opts), argc, argv, &pos, &npos, &e);
    if (rc == 1) {
        cli_opts_usage(stdout,
                       "usage: tally cancel [options] JOB\n\n"
                       "Cancels a queued or running job: its attempts are killed and what it wrote to OUT is\n"
                       "removed. Exit status: 0 cancelled, 1 the job was already over, 2 a usage error (also:\n"
                       "no such job), 3 cannot reach the coordinator or it refused the token.",
                       client_cancel_opts, CLIENT_N(client_cancel_opts));
        rc = EXITCODE_OK;
        goto done;
    }
    if (rc == 0 && npos != 1)
        rc = npos ? err_set(&e, -EINVAL, "cancel takes one JOB, got %zu ('%s', '%s'...)", npos, pos[0], pos[1])
                  : err_set(&e, -EINVAL, "cancel needs the JOB to cancel (tally status lists them)");
    if (rc) {
        fprintf(stderr, "tally: %s\n", e.msg);
        rc = EXITCODE_USAGE;
        goto done;
    }
    if ((rc = client_open(&cl)) != 0) goto done;
    const char *id = pos[0];
    client_answer a;
    /* What the job had done, for the message; then the cancel itself. */
    if (client_get_job(&cl, id, 0, 0, 0, 10000, &job, &a) != 0) {
        rc = client_explain(&cl, &a, id);
        client_answer_free(&a);
        goto done;
    }
    const char *before = client_str(job, "state");
    if (client_job_over(before)) {
        fprintf(stderr, "tally: job %s already %s: nothing to cancel\n", id, before);
        rc = EXITCODE_FAILED;
        goto done;
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    client_call(&cl, "POST", path, "{}", 10000, &a);
    const char *after = a.rc == 0 && a.status == 200 ? client_str(a.body, "state") : NULL;
    if (!after) {
        rc = client_explain(&cl, &a, id);
    } else if (strcmp(after, "cancelled") != 0) {
        fprintf(stderr, "tally: job %s already %s: nothing to cancel\n", id, after);
        rc = EXITCODE_FAILED;
    } else if (strcmp(before, "queued") == 0) {
        printf("tally: job %s cancelled (it was queued: nothing had run)\n", id);
        rc = EXITCODE_OK;
    } else {
        printf("tally: job %s cancelled (it was %s: %d/%d maps, %d/%d reduces done)\n", id, before,
               client_int(job, "maps_done"), client_int(job, "maps_total"), client_int(job, "reduces_done"),
               client_int(job, "reduces_total"));
        rc = EXITCODE_OK;
    }
    client_answer_free(&a);
done:
    json_decref(job);
    free(pos);
    free(cl.token);
    leader_free(&cl.ldr);
    return rc;
}
