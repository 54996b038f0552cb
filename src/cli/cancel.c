/* cancel.c - `tally cancel JOB`: cancels a queued or running job of a cluster and says what it
 * had done. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "cluster/client.h"

static const char *cancel_o_coord, *cancel_o_token;

static const cli_opt cancel_opts[] = {CLI_OPT_COORDINATOR(cancel_o_coord), CLI_OPT_TOKEN_FILE(cancel_o_token)};
#define CANCEL_NOPTS (sizeof cancel_opts / sizeof cancel_opts[0])

int cli_cancel(int argc, char **argv)
{
    client cl = {0};
    struct err e = {0};
    char **pos = NULL;
    size_t npos = 0;
    json_t *job = NULL;
    char *after = NULL;
    int rc = cli_opts_parse(cancel_opts, CANCEL_NOPTS, argc, argv, &pos, &npos, &e);
    if (rc == 1) {
        cli_opts_usage(stdout,
                       "usage: tally cancel [options] JOB\n\n"
                       "Cancels a queued or running job: its attempts are killed and what it wrote to OUT is\n"
                       "removed. Exit status: 0 cancelled, 1 the job was already over, 2 a usage error (also:\n"
                       "no such job), 3 cannot reach the coordinator or it refused the token.",
                       cancel_opts, CANCEL_NOPTS);
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
    client_config ccfg = {.coordinator = cancel_o_coord, .token_file = cancel_o_token};
    if ((rc = client_open(&cl, &ccfg)) != 0) goto done;
    const char *id = pos[0];
    /* What the job had done, for the message; then the cancel itself. */
    if ((rc = client_job(&cl, id, &job)) != 0) goto done;
    const char *before = client_str(job, "state");
    if (client_job_over(before)) {
        fprintf(stderr, "tally: job %s already %s: nothing to cancel\n", id, before);
        rc = EXITCODE_FAILED;
        goto done;
    }
    if ((rc = client_cancel(&cl, id, &after)) != 0) {
        /* client_cancel() said why */
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
done:
    json_decref(job);
    free(after);
    free(pos);
    client_close(&cl);
    return rc;
}
