/* status.c - `tally status [JOB]`: the cluster's coordinators, workers and jobs, or one job and
 * its running attempts, as tables (or the coordinator's record with --json). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cluster/client.h"

static const char *status_o_coord, *status_o_token, *status_o_json;

static const cli_opt status_opts[] = {
    CLI_OPT_COORDINATOR(status_o_coord),
    CLI_OPT_TOKEN_FILE(status_o_token),
    {"json", 0, NULL, NULL, NULL, "print the coordinator's whole record as JSON", &status_o_json},
};
#define STATUS_NOPTS (sizeof status_opts / sizeof status_opts[0])

static void status_print_jobs(const json_t *jobs)
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
static void status_print_attempts(const json_t *job)
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

int cli_status(int argc, char **argv)
{
    client cl = {0};
    struct err e = {0};
    char **pos = NULL;
    size_t npos = 0;
    int rc = cli_opts_parse(status_opts, STATUS_NOPTS, argc, argv, &pos, &npos, &e);
    const char *job = npos ? pos[0] : NULL;
    if (rc == 1) {
        cli_opts_usage(stdout,
                       "usage: tally status [options] [JOB]\n\n"
                       "Without JOB: the cluster's workers and jobs. With JOB: that job and its running attempts.\n"
                       "Exit status: 0 ok, 2 a usage error (also: no such job), 3 cannot reach the coordinator\n"
                       "or it refused the token.",
                       status_opts, STATUS_NOPTS);
        rc = EXITCODE_OK;
        goto done;
    }
    if (rc == 0 && npos > 1) rc = err_set(&e, -EINVAL, "status takes at most one JOB, got '%s' and '%s'", pos[0], pos[1]);
    if (rc) {
        fprintf(stderr, "tally: %s\n", e.msg);
        rc = EXITCODE_USAGE;
        goto done;
    }
    client_config ccfg = {.coordinator = status_o_coord, .token_file = status_o_token};
    if ((rc = client_open(&cl, &ccfg)) != 0) goto done;
    char *text = NULL;
    json_t *body = NULL;
    if ((rc = client_status(&cl, job, &text, &body)) != 0) {
        /* client_status() said why */
    } else if (status_o_json) {
        printf("%s\n", text);
    } else if (!body) {
        fprintf(stderr, "tally: the coordinator at %s sent a status that is not JSON\n", cl.coordinator);
        rc = EXITCODE_FAILED;
    } else if (job) {
        status_print_jobs(json_object_get(body, "jobs"));
        status_print_attempts(json_array_get(json_object_get(body, "jobs"), 0));
    } else {
        size_t i;
        json_t *v;
        printf("%-22s %-9s %6s  %s\n", "COORDINATOR", "ROLE", "EPOCH", "STATE");
        json_array_foreach(json_object_get(body, "coordinators"), i, v) {
            json_t *ep = json_object_get(v, "epoch");
            char epoch[32] = "-";
            if (json_is_integer(ep)) snprintf(epoch, sizeof epoch, "%" JSON_INTEGER_FORMAT, json_integer_value(ep));
            printf("%-22s %-9s %6s  %s\n", client_str(v, "address"), client_str(v, "role"), epoch,
                   json_object_get(v, "state") ? client_str(v, "state") : "-");
        }
        printf("\n");
        printf("%-20s %-22s %-6s %5s %7s  %-9s %5s %7s %5s\n", "WORKER", "ADDRESS", "STATE", "SLOTS", "RUNNING",
               "HEALTH", "SLOW", "PSI-CPU", "LOAD");
        json_array_foreach(json_object_get(body, "workers"), i, v) {
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
        if (json_array_size(json_object_get(body, "workers")) == 0)
            printf("(no worker has registered: start one with tally worker --coordinator %s --token-file FILE)\n",
                   cl.coordinator);
        printf("\n");
        status_print_jobs(json_object_get(body, "jobs"));
    }
    free(text);
    json_decref(body);
done:
    free(pos);
    client_close(&cl);
    return rc;
}
