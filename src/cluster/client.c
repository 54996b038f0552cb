/* client.c - `tally submit`, `tally status` and `tally cancel`: the coordinator's command-line
 * clients. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cluster/coord.h"
#include "cluster/wire.h"
#include "net/http.h"

typedef struct client {
    const char *coordinator;
    char *token;
    int detach, json, quiet;
} client;

/* Takes --coordinator, --token-file, --detach, --json and --quiet out of argv (also from the
 * environment: TALLY_COORDINATOR, TALLY_TOKEN_FILE), leaving the rest in order. */
static int client_args(int *argc, char **argv, client *cl, struct err *e)
{
    const char *tf = getenv("TALLY_TOKEN_FILE");
    cl->coordinator = getenv("TALLY_COORDINATOR") ? getenv("TALLY_COORDINATOR") : "127.0.0.1:7070";
    int n = 1;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        if ((strcmp(a, "--coordinator") == 0 || strcmp(a, "--token-file") == 0) && i + 1 < *argc) {
            if (a[2] == 'c') cl->coordinator = argv[++i];
            else tf = argv[++i];
        } else if (strncmp(a, "--coordinator=", 14) == 0) {
            cl->coordinator = a + 14;
        } else if (strncmp(a, "--token-file=", 13) == 0) {
            tf = a + 13;
        } else if (strcmp(a, "--detach") == 0) {
            cl->detach = 1;
        } else if (strcmp(a, "--json") == 0) {
            cl->json = 1;
        } else if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
            cl->quiet = 1;
        } else {
            argv[n++] = argv[i];
        }
    }
    *argc = n;
    argv[n] = NULL;
    if (!tf) return err_set(e, -EINVAL, "--token-file (or TALLY_TOKEN_FILE) is required");
    return http_read_token_file(tf, &cl->token, e);
}

/* Paths go to workers that may run elsewhere: make them absolute against our directory. */
static char *client_abs(const char *p)
{
    if (p[0] == '/') return xstrdup(p);
    char cwd[PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) return xstrdup(p);
    return xasprintf("%s/%s", cwd, p);
}

/* Fetches the job; with wait_ms, the coordinator answers when its version moves past
 * `version` (or, with until_done, only once the job is over) or when the wait ends. */
static int client_get_job(const client *cl, const char *id, uint64_t wait_ms, uint64_t version, int until_done,
                          json_t **job, struct err *e)
{
    char path[192];
    snprintf(path, sizeof path, "/v1/jobs/%s?wait_ms=%" PRIu64 "&version=%" PRIu64 "%s", id, wait_ms, version,
             until_done ? "&until=done" : "");
    int status = 0;
    char *out = NULL;
    int rc = http_call(cl->coordinator, "GET", path, cl->token, NULL, 10000 + (long)wait_ms, &status, &out, e);
    json_t *o = NULL;
    if (rc == 0 && status != 200) rc = err_set(e, -EIO, "coordinator answered HTTP %d: %s", status, out ? out : "");
    if (rc == 0) rc = wire_parse_object(out, strlen(out), &o, e);
    free(out);
    if (rc) return rc;
    json_t *jobs = json_object_get(o, "jobs");
    if (!json_is_array(jobs) || json_array_size(jobs) != 1) {
        json_decref(o);
        return err_set(e, -EIO, "coordinator sent no job %s", id);
    }
    *job = json_incref(json_array_get(jobs, 0));
    json_decref(o);
    return 0;
}

int coord_submit_main(int argc, char **argv)
{
    client cl = {0};
    struct err e = {0};
    jobspec spec;
    jobspec_init(&spec);
    int quiet = 0, help = 0, rc = CLI_USAGE;
    if (client_args(&argc, argv, &cl, &e) != 0) {
        fprintf(stderr, "tally submit: %s\n", e.msg);
        goto done;
    }
    if (argc < 2) {
        fprintf(stderr, "usage: tally submit --coordinator HOST:PORT --token-file FILE [--detach] JOB [options] -o OUT INPUT...\n");
        goto done;
    }
    if (cli_run_parse(argc, argv, &spec, &quiet, &help, &e) != 0) {
        fprintf(stderr, "tally submit: %s\n", e.msg);
        goto done;
    }
    if (help) {
        printf("usage: tally submit --coordinator HOST:PORT --token-file FILE [--detach] JOB [job options] [-m M] [-r R] -o OUT INPUT...\n"
               "JOB, options and INPUT are as for tally run (tally run --help); paths are as the workers see them.\n");
        rc = 0;
        goto done;
    }
    for (size_t i = 0; i < spec.ninputs; i++) {
        char *a = client_abs(spec.inputs[i]);
        free(spec.inputs[i]);
        spec.inputs[i] = a;
    }
    char *o = client_abs(spec.out);
    free(spec.out);
    spec.out = o;
    if (spec.job[0] != '/' && strchr(spec.job, '/')) {
        char *j = client_abs(spec.job);
        free(spec.job);
        spec.job = j;
    }
    json_t *body = json_pack("{s:o}", "spec", wire_jobspec_encode(&spec));
    char *s = wire_dump(body);
    json_decref(body);
    int status = 0;
    char *out = NULL;
    rc = CLI_FAILED;
    int k = http_call(cl.coordinator, "POST", "/v1/jobs", cl.token, s, 60000, &status, &out, &e);
    free(s);
    json_t *r = NULL;
    if (k == 0 && wire_parse_object(out ? out : "", out ? strlen(out) : 0, &r, &e) != 0) k = -EIO;
    free(out);
    if (k) {
        fprintf(stderr, "tally submit: %s: %s\n", cl.coordinator, e.msg);
        json_decref(r);
        goto done;
    }
    if (status != 200) {
        const char *msg = json_string_value(json_object_get(r, "error"));
        fprintf(stderr, "tally submit: %s\n", msg ? msg : "rejected");
        rc = json_is_true(json_object_get(r, "usage")) ? CLI_USAGE : CLI_FAILED;
        json_decref(r);
        goto done;
    }
    char id[64];
    snprintf(id, sizeof id, "%s", json_string_value(json_object_get(r, "id")) ? json_string_value(json_object_get(r, "id")) : "");
    json_decref(r);
    if (cl.detach) {
        printf("%s\n", id);
        rc = 0;
        goto done;
    }
    int tty = !quiet && !cl.quiet && isatty(STDOUT_FILENO);
    uint64_t t0 = time_mono_ms(), fails = 0, version = 0;
    for (;;) {
        json_t *job = NULL;
        /* Without a progress line to draw there is nothing to wake up for before the end. */
        if (client_get_job(&cl, id, tty ? 200 : 5000, version, !tty, &job, &e) != 0) {
            if (++fails > 100) {
                fprintf(stderr, "tally submit: lost the coordinator: %s\n", e.msg);
                goto done;
            }
            usleep(100000);
            continue;
        }
        fails = 0;
        version = (uint64_t)json_integer_value(json_object_get(job, "version"));
        const char *state = json_string_value(json_object_get(job, "state"));
        if (tty)
            printf("\r\033[Kjob %s  map %3.0f%% (%d/%d)  reduce %3.0f%% (%d/%d)  %.1fs", id,
                   100 * json_number_value(json_object_get(job, "map_progress")),
                   (int)json_integer_value(json_object_get(job, "maps_done")), (int)json_integer_value(json_object_get(job, "maps_total")),
                   100 * json_number_value(json_object_get(job, "reduce_progress")),
                   (int)json_integer_value(json_object_get(job, "reduces_done")), (int)json_integer_value(json_object_get(job, "reduces_total")),
                   (double)(time_mono_ms() - t0) / 1000.0);
        if (state && (strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 || strcmp(state, "cancelled") == 0)) {
            if (tty) printf("\r\033[K");
            if (strcmp(state, "succeeded") == 0) {
                char *succ = xasprintf("%s/_SUCCESS", spec.out);
                struct stat st;
                if (stat(succ, &st) == 0) {
                    json_t *c = json_object_get(job, "counters");
                    printf("tally: job %s succeeded in %.2f s: %" JSON_INTEGER_FORMAT " records in, %" JSON_INTEGER_FORMAT
                           " out, %" JSON_INTEGER_FORMAT " skipped\n", id, (double)(time_mono_ms() - t0) / 1000.0,
                           json_integer_value(json_object_get(c, "input_records")),
                           json_integer_value(json_object_get(c, "output_records")),
                           json_integer_value(json_object_get(c, "records_skipped")));
                    rc = 0;
                } else {
                    fprintf(stderr, "tally submit: job %s succeeded but %s is not visible here\n", id, succ);
                }
                free(succ);
            } else {
                const char *err = json_string_value(json_object_get(job, "error"));
                fprintf(stderr, "tally: job %s %s: %s\n", id, state, err ? err : "");
            }
            json_decref(job);
            break;
        }
        json_decref(job);
    }
done:
    jobspec_free(&spec);
    free(cl.token);
    return rc;
}

int coord_status_main(int argc, char **argv)
{
    client cl = {0};
    struct err e = {0};
    if (client_args(&argc, argv, &cl, &e) != 0) {
        fprintf(stderr, "tally status: %s\n", e.msg);
        return CLI_USAGE;
    }
    char path[128] = "/v1/status";
    if (argc > 1) snprintf(path, sizeof path, "/v1/jobs/%s", argv[1]);
    int status = 0;
    char *out = NULL;
    if (http_call(cl.coordinator, "GET", path, cl.token, NULL, 10000, &status, &out, &e) != 0) {
        fprintf(stderr, "tally status: %s: %s\n", cl.coordinator, e.msg);
        free(cl.token);
        return CLI_FAILED;
    }
    free(cl.token);
    if (status != 200) {
        fprintf(stderr, "tally status: HTTP %d: %s\n", status, out ? out : "");
        free(out);
        return CLI_FAILED;
    }
    if (cl.json) {
        printf("%s\n", out);
        free(out);
        return 0;
    }
    json_t *o = NULL;
    if (wire_parse_object(out, strlen(out), &o, &e) != 0) {
        fprintf(stderr, "tally status: %s\n", e.msg);
        free(out);
        return CLI_FAILED;
    }
    free(out);
    size_t i;
    json_t *v;
    printf("%-20s %-22s %-6s %5s %7s\n", "WORKER", "ADDRESS", "STATE", "SLOTS", "RUNNING");
    json_array_foreach(json_object_get(o, "workers"), i, v)
        printf("%-20s %-22s %-6s %5d %7d\n", json_string_value(json_object_get(v, "name")),
               json_string_value(json_object_get(v, "address")), json_string_value(json_object_get(v, "state")),
               (int)json_integer_value(json_object_get(v, "slots")), (int)json_integer_value(json_object_get(v, "running")));
    printf("\n%-22s %-10s %-10s %9s %5s %9s %5s  %s\n", "JOB", "NAME", "STATE", "MAPS", "MAP%", "REDUCES", "RED%",
           "ERROR");
    json_array_foreach(json_object_get(o, "jobs"), i, v) {
        char maps[32], reds[32];
        snprintf(maps, sizeof maps, "%d/%d", (int)json_integer_value(json_object_get(v, "maps_done")),
                 (int)json_integer_value(json_object_get(v, "maps_total")));
        snprintf(reds, sizeof reds, "%d/%d", (int)json_integer_value(json_object_get(v, "reduces_done")),
                 (int)json_integer_value(json_object_get(v, "reduces_total")));
        const char *jn = json_string_value(json_object_get(v, "job"));
        const char *slash = jn ? strrchr(jn, '/') : NULL;
        printf("%-22s %-10.10s %-10s %9s %4.0f%% %9s %4.0f%%  %s\n", json_string_value(json_object_get(v, "id")),
               slash ? slash + 1 : jn, json_string_value(json_object_get(v, "state")), maps,
               100 * json_number_value(json_object_get(v, "map_progress")), reds,
               100 * json_number_value(json_object_get(v, "reduce_progress")),
               json_string_value(json_object_get(v, "error")) ? json_string_value(json_object_get(v, "error")) : "");
    }
    /* One job asked for: its running attempts, with what their heartbeats said. */
    json_t *one = argc > 1 ? json_array_get(json_object_get(o, "jobs"), 0) : NULL;
    int header = 0;
    json_array_foreach(json_object_get(one, "tasks"), i, v) {
        size_t k;
        json_t *a;
        json_array_foreach(json_object_get(v, "attempts"), k, a) {
            const char *st = json_string_value(json_object_get(a, "state"));
            if (!st || strcmp(st, "running") != 0) continue;
            if (!header++)
                printf("\n%-8s %-8s %-20s %8s %12s %12s\n", "ATTEMPT", "TASK", "WORKER", "PROGRESS", "RECORDS IN",
                       "RECORDS OUT");
            json_t *cs = json_object_get(a, "counters");
            const char *ph = json_string_value(json_object_get(v, "phase"));
            char task[24], att[24];
            snprintf(task, sizeof task, "%c%05d", ph ? ph[0] : '?', (int)json_integer_value(json_object_get(v, "index")));
            snprintf(att, sizeof att, "a%d", (int)json_integer_value(json_object_get(a, "id")));
            int is_map = ph && strcmp(ph, "map") == 0;
            printf("%-8s %-8s %-20s %7.0f%% %12" JSON_INTEGER_FORMAT " %12" JSON_INTEGER_FORMAT "\n", att, task,
                   json_string_value(json_object_get(a, "worker")), 100 * json_number_value(json_object_get(a, "progress")),
                   json_integer_value(json_object_get(cs, is_map ? "input_records" : "reduce_input_records")),
                   json_integer_value(json_object_get(cs, is_map ? "map_output_records" : "output_records")));
        }
    }
    json_decref(o);
    return 0;
}

int coord_cancel_main(int argc, char **argv)
{
    client cl = {0};
    struct err e = {0};
    if (client_args(&argc, argv, &cl, &e) != 0 || argc != 2) {
        fprintf(stderr, "tally cancel: %s\n", e.msg[0] ? e.msg : "usage: tally cancel [--coordinator HOST:PORT] JOB_ID");
        free(cl.token);
        return CLI_USAGE;
    }
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/cancel", argv[1]);
    int status = 0;
    char *out = NULL;
    int rc = http_call(cl.coordinator, "POST", path, cl.token, "{}", 10000, &status, &out, &e);
    free(cl.token);
    if (rc || status != 200) {
        fprintf(stderr, "tally cancel: %s\n", rc ? e.msg : (out ? out : "failed"));
        free(out);
        return CLI_FAILED;
    }
    printf("%s\n", out);
    free(out);
    return 0;
}
