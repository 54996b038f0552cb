/* wire.h - JSON encodings of what crosses the network: job specs, task assignments, attempt
 * reports and counters (protocol version TALLY_WIRE_VERSION, see docs/protocol.md). Every
 * decoder validates types and bounds and fails with a message naming the bad field; nothing a
 * peer sends can crash the receiver. */
#ifndef TALLY_WIRE_H
#define TALLY_WIRE_H

#include <jansson.h>
#include <stdint.h>

#include "cluster/execpool.h"
#include "common/util.h"
#include "data/input.h"
#include "exec/counters.h"
#include "exec/jobspec.h"
#include "exec/sched.h"

#define TALLY_WIRE_VERSION 1

json_t *wire_jobspec_encode(const jobspec *s);
int wire_jobspec_decode(const json_t *j, jobspec *s, struct err *e);

json_t *wire_counters_encode(const counters *c);
int wire_counters_decode(const json_t *j, counters *c, struct err *e);

/* A map task's input: the files it reads and its segments, as one input_set with one split. */
json_t *wire_split_encode(const input_set *in, size_t split);
int wire_split_decode(const json_t *j, input_set *out, struct err *e);

/* The part of an attempt's assignment (docs/protocol.md) that `tally run` and the coordinator
 * share: {"job","attempt","phase","index","spec"} and for a map its "split" and the "skip" list
 * of records that crashed earlier attempts. The caller adds where a reduce finds its input. */
json_t *wire_task_encode(const char *job_id, const sched_job *sj, uint32_t attempt, const json_t *spec,
                         const input_set *in);

/* Where each map's committed output is, as handed to a reducer and answered by
 * GET /v1/jobs/ID/maps: [{"index","address","attempt"}], attempt -1 (address "") while the
 * map has no committed output. In a reduce assignment an entry may also carry the reducer's
 * segment of that output itself, "segment":{"data" (base64),"crc","records"}, when the map
 * reported it (a small output, see WIRE_INLINE_MAX): the reducer then fetches nothing. */
typedef struct wire_map_loc {
    uint32_t index;
    int64_t attempt;
    char address[160];   /* host:port of the worker serving it */
    const char *data;    /* the segment in base64 (points into the decoded JSON), or NULL */
    size_t data_len;
    uint32_t crc;
    uint64_t records;
} wire_map_loc;

/* The largest map output (all its partitions) a coordinator may take inline in a report. */
#define WIRE_INLINE_MAX (1u << 20)

/* Decodes the array into n entries indexed by map number (every index 0..n-1 exactly once). */
int wire_maps_decode(const json_t *arr, wire_map_loc **out, size_t *n, struct err *e);

/* ---- Request bodies: one decoder per message, each holding the parsed JSON (strings point
 * into it) until its _free. Names of workers are [A-Za-z0-9._-], under 64 bytes. */

/* POST /v1/heartbeat (worker -> coordinator). */
typedef struct wire_running {
    const char *job;
    uint32_t attempt;
    int has_progress;         /* progress and counters were sent */
    double progress;          /* 0..1 */
    double rate; /* progress fraction per second, 0 when unknown */
    counters counters;        /* built-ins only; job counters arrive with the report */
} wire_running;

/* How loaded the worker's machine is, and whether it slows itself down on purpose: what a
 * scheduler may weigh before it trusts a worker with more work (or a speculative copy). */
typedef struct wire_health {
    double psi_cpu, psi_io, psi_memory; /* PSI "some avg10" in percent, or -1 when not reported */
    double load1;                        /* 1-minute load average, or -1 */
    double chaos_slow;                   /* the worker's --chaos-slow factor; 1 when none */
} wire_health;

/* The heartbeat's "health" object; fields below 0 are left out (not reported). */
json_t *wire_health_encode(const wire_health *h);

typedef struct wire_heartbeat {
    const char *name, *incarnation, *address;
    uint32_t slots;
    uint64_t wait_ms;         /* how long the coordinator may hold the answer */
    wire_running *running;
    size_t nrunning;
    wire_health health;       /* -1/-1/-1/-1/1 when the worker sent none (older workers) */
    json_t *root;
} wire_heartbeat;

int wire_heartbeat_decode(const char *body, size_t len, wire_heartbeat *hb, struct err *e);
void wire_heartbeat_free(wire_heartbeat *hb);

/* POST /v1/report (worker -> coordinator): an attempt's end. */
typedef struct wire_report {
    const char *name, *incarnation, *job;
    uint32_t attempt;
    int ok, fatal;
    const char *error;        /* "" when none */
    counters counters;
    int64_t fetch_failed_map; /* -1, or the map whose output the reducer gave up fetching */
    const char *skip_example; /* NULL, or the first record the attempt skipped and why */
    const char *crash_file;   /* NULL, or the record a crashed map attempt was on */
    uint64_t crash_offset;
    /* NULL, or a successful map's output itself, one entry per partition in order:
     * [{"data" (base64),"crc","records"}], at most WIRE_INLINE_MAX bytes in all (checked). */
    json_t *output;
    uint64_t output_bytes;    /* its size in base64 */
    json_t *root;
} wire_report;

int wire_report_decode(const char *body, size_t len, wire_report *r, struct err *e);
/* Decodes only an executor's result object (what "result" holds) into r's result fields; r
 * must be zeroed with counters initialised and fetch_failed_map -1 (strings point into res). */
int wire_result_decode(const json_t *res, wire_report *r, struct err *e);
void wire_report_free(wire_report *r);

/* POST /v1/fetch-failure (a reduce attempt -> coordinator). */
typedef struct wire_fetch_failure {
    const char *name, *incarnation, *job, *error;
    uint32_t attempt, map;
    int64_t map_attempt;      /* the map attempt whose output could not be fetched, or -1 */
    json_t *root;
} wire_fetch_failure;

int wire_fetch_failure_decode(const char *body, size_t len, wire_fetch_failure *f, struct err *e);
void wire_fetch_failure_free(wire_fetch_failure *f);

/* POST /v1/chaos (a test or an operator -> worker): {"slow": F}, the worker's new --chaos-slow
 * factor, a number from 1 to 1000. */
int wire_chaos_decode(const char *body, size_t len, double *slow, struct err *e);

/* A worker name as the coordinator accepts it. */
int wire_valid_name(const char *s);

/* Fetches a string/int field with bounds; helpers shared by the decoders and handlers. */
int wire_get_str(const json_t *obj, const char *key, const char **out, int required, struct err *e);
int wire_get_u64(const json_t *obj, const char *key, uint64_t max, uint64_t *out, int required,
                 struct err *e);
/* Parses a request body into an object; -EINVAL with a message if it is not one. */
int wire_parse_object(const char *body, size_t len, json_t **out, struct err *e);
/* Serialises compactly; caller frees. */
char *wire_dump(const json_t *j);

/* What a coordinator journals of a job (cluster/state.h): its plan (files and splits) and the
 * describer's answer, so that a coordinator that takes over needs neither the inputs listed
 * again nor the job's setup() run again. The decoders validate everything (a damaged record
 * is an error, never a wrong job). */
json_t *wire_plan_encode(const input_set *in);
int wire_plan_decode(const json_t *j, input_set *out, struct err *e);
json_t *wire_desc_encode(const execpool_job *d);
int wire_desc_decode(const json_t *j, execpool_job *d, struct err *e);

#endif
