/* client.c - the coordinator's client (client.h): requests with the token to the leading
 * coordinator, jobs submitted and waited for, the one way every failure is explained. */
#include "cluster/client.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/wire.h"
#include "common/claim.h"
#include "common/exitcode.h"
#include "net/http.h"

/* ---- Talking to the coordinator ----------------------------------------------------------- */

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

int client_open(client *cl, const client_config *cfg)
{
    struct err e = {0};
    cl->coordinator = cfg->coordinator;
    cl->token_file = cfg->token_file;
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

void client_close(client *cl)
{
    free(cl->token);
    cl->token = NULL;
    leader_free(&cl->ldr);
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

int client_job(client *cl, const char *id, json_t **job)
{
    client_answer a;
    if (client_get_job(cl, id, 0, 0, 0, 10000, job, &a) == 0) return 0;
    int rc = client_explain(cl, &a, id);
    client_answer_free(&a);
    return rc;
}

int client_job_over(const char *state)
{
    return state && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0);
}

int client_int(const json_t *o, const char *key)
{
    return (int)json_integer_value(json_object_get(o, key));
}

const char *client_str(const json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

/* ---- Waiting for a job ---------------------------------------------------------------------- */

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

int client_wait(client *cl, const char *id, const char *out, const client_wait_opts *o, json_t **final)
{
    if (final) *final = NULL;
    int quiet = o->quiet;
    uint64_t t0 = o->t0, give_up_ms = o->give_up_ms;
    int tty = !quiet && isatty(STDOUT_FILENO), printed = 0, rc = EXITCODE_FAILED;
    uint64_t last_answer = time_mono_ms(), version = 0;
    /* Short waits: Ctrl-C is seen between two requests (libcurl carries on through signals). */
    uint64_t wait_ms = tty ? 200 : 500;
    long timeout_ms = (long)wait_ms + (long)(give_up_ms < 10000 ? give_up_ms : 10000) + 1000;
    char lost[1024] = "";
    for (;;) {
        if (*o->interrupted) {
            if (printed) printf("\r\033[K");
            fflush(stdout);
            if (o->cancel_on_stop) return client_stop_job(cl, id);
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
            char *succ = xasprintf("%s/_SUCCESS", out);
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
                    "once it succeeded)\n", cl->coordinator, id, lost, id, out);
    client_lost_claim(out, id);
    return EXITCODE_UNREACHABLE;
}

/* ---- Submitting, status, cancelling --------------------------------------------------------- */

int client_submit(client *cl, const jobspec *spec, double weight, char *id, size_t cap)
{
    json_t *body = json_pack("{s:o, s:f}", "spec", wire_jobspec_encode(spec), "weight", weight);
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

void client_summary(const json_t *job, sched_summary *sum)
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

int client_status(client *cl, const char *job, char **text, json_t **body)
{
    char path[128] = "/v1/status";
    if (job) snprintf(path, sizeof path, "/v1/jobs/%s", job);
    client_answer a;
    client_call(cl, "GET", path, NULL, 10000, &a);
    int rc = 0;
    *text = NULL;
    *body = NULL;
    if (a.rc || a.status != 200) {
        rc = client_explain(cl, &a, job);
    } else {
        *text = a.text;
        *body = a.body;
        a.text = NULL;
        a.body = NULL;
    }
    client_answer_free(&a);
    return rc;
}

int client_cancel(client *cl, const char *id, char **state)
{
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", id);
    client_answer a;
    client_call(cl, "POST", path, "{}", 10000, &a);
    int rc = 0;
    *state = NULL;
    if (a.rc == 0 && a.status == 200) *state = xstrdup(client_str(a.body, "state"));
    else rc = client_explain(cl, &a, id);
    client_answer_free(&a);
    return rc;
}
