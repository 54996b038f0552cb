/* client.h - a client of the coordinator, for `tally submit`, `tally status` and `tally cancel`
 * (cli/submit.c, status.c, cancel.c): sends jobs, waits for them, fetches status and job
 * records, cancels jobs.
 *
 * Every call that fails has already said why on stderr, in one `tally: ` line whose wording and
 * exit code (common/exitcode.h) depend only on the kind of failure, never on the command:
 *   cannot connect, no answer, token refused (HTTP 401)                 EXITCODE_UNREACHABLE
 *   bad address or token file, unknown job id, a submission the
 *   coordinator calls a usage error (missing input, unusable OUT,
 *   a field no input has)                                               EXITCODE_USAGE
 *   the job failed or was cancelled, any other refusal                  EXITCODE_FAILED
 *   interrupted while waiting for a job (the job goes on)               EXITCODE_INTERRUPTED
 * and returns that code; a call that succeeds returns 0.
 */
#ifndef TALLY_CLIENT_H
#define TALLY_CLIENT_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cluster/leader.h"
#include "exec/jobspec.h"
#include "exec/sched.h"

typedef struct client_config {
    const char *coordinator;  /* the coordinators: HOST:PORT[,...] or zk://... (cluster/leader.h) */
    const char *token_file;   /* the file holding the cluster's token; NULL is a usage error */
} client_config;

/* A client: zero it, client_open() it, client_close() it (also when client_open() failed). */
typedef struct client {
    const char *coordinator;  /* cfg's, for messages */
    leader ldr;               /* follows the leader among the coordinators */
    const char *token_file;
    char *token;
} client;

/* Reads the token and sets out to find the leading coordinator (nothing is sent yet). Returns 0
 * or the exit code. cfg's strings must outlive cl. */
int client_open(client *cl, const client_config *cfg);
void client_close(client *cl);

/* Submits spec with `weight` (its share of the slots, fair sharing); returns 0 with the job's
 * id in id[cap], or the exit code. */
int client_submit(client *cl, const jobspec *spec, double weight, char *id, size_t cap);

/* How client_wait() waits. */
typedef struct client_wait_opts {
    int quiet;                /* no progress line, even on a terminal */
    uint64_t t0;              /* time_mono_ms() when the job was submitted: the job's time */
    uint64_t give_up_ms;      /* give up on a coordinator silent for this long */
    int cancel_on_stop;       /* when *interrupted: cancel the job (else it goes on) */
    const volatile sig_atomic_t *interrupted; /* set by the caller's signal handler */
} client_wait_opts;

/* Waits for job `id`, writing to `out` (whose _SUCCESS it checks), until it is over, with a
 * progress line on a terminal and its outcome on stdout or stderr. Returns 0 if it succeeded
 * and OUT/_SUCCESS is visible here, else the exit code. *final (may be NULL) receives the job's
 * last record once it is over (the caller owns it), else NULL. Losing the coordinator, it says
 * what OUT's claim tells of the job and rolls back what only the job's dead coordinator could
 * have (data/output.h). */
int client_wait(client *cl, const char *id, const char *out, const client_wait_opts *o, json_t **final);

/* The "summary" of a job record, for a results row (zeros if the coordinator sent none). */
void client_summary(const json_t *job, sched_summary *sum);

/* GET /v1/status (job NULL: the workers and jobs), or /v1/jobs/JOB (that job and the workers).
 * Returns 0 with the answer's text in *text (the caller frees it) and its JSON in *body (the
 * caller's; NULL if it is not a JSON object), or the exit code. */
int client_status(client *cl, const char *job, char **text, json_t **body);
/* The record of job `id` into *job (the caller's); 0 or the exit code. */
int client_job(client *cl, const char *id, json_t **job);
/* Asks the coordinator to cancel job `id`; 0 with the job's state after it in *state (malloc'd;
 * "cancelled", or the state it had already reached; "" if the answer named none), or the exit
 * code. */
int client_cancel(client *cl, const char *id, char **state);

/* Reading records: a string field ("" when missing), an integer field (0), and whether a job
 * state is a final one. */
const char *client_str(const json_t *o, const char *key);
int client_int(const json_t *o, const char *key);
int client_job_over(const char *state);

#endif
