/* coord.c - the coordinator: jobs, workers, assignment, failure detection, output commit.
 *
 * One mutex (`lock`) protects all coordinator state; HTTP handlers and the tick thread take it
 * for short, non-blocking sections. The only wait is a worker's long-poll heartbeat, which
 * waits on `work_cv` with the lock released, so no slow worker or client can stall anything.
 *
 * Worker:  ALIVE -> DEAD   coord_tick(): silent for --worker-timeout-ms; its running attempts
 *                          are killed and its committed maps reported lost (coord_worker_lost)
 *          DEAD -> ALIVE   a heartbeat arrives again (a new incarnation if it restarted)
 *          ALIVE -> ALIVE' a heartbeat with a new incarnation: what the old one held is lost
 * Job:     the sched_job state machine (exec/sched.h); when it reaches a terminal state,
 *          coord_job_check() commits (succeeded) or rolls back (failed, cancelled) the output.
 */
#include "cluster/coord.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/execpool.h"
#include "cluster/state.h"
#include "cluster/wire.h"
#include "common/claim.h"
#include "common/exitcode.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "data/input.h"
#include "data/output.h"
#include "data/probe.h"
#include "exec/ctx.h"
#include "exec/health.h"
#include "exec/sched.h"
#include "net/http.h"
#include "obs/metrics.h"
#include "obs/procmetrics.h"
#include "obs/statuspage.h"

#include <xxhash.h>

#define COORD_MAX_WORKERS 1024
#define COORD_KEEP_FINISHED 200
#define COORD_MAX_BODY (4u << 20)
#define COORD_DESCRIBE_MS 30000 /* longest a job's setup() may take before its submit fails */
/* Map outputs a job may have held inline (coord_inline) at once, in base64 bytes: beyond it,
 * its reducers fetch the rest from the workers as usual. */
#define COORD_INLINE_JOB_MAX (8u << 20)

typedef enum coord_worker_state { COORD_WORKER_ALIVE, COORD_WORKER_DEAD } coord_worker_state;

typedef struct coord_worker {
    char name[64];
    char incarnation[40];
    char address[160];
    uint32_t slots;
    coord_worker_state state;
    uint64_t last_seen;       /* monotonic ms when its last heartbeat arrived */
    uint64_t last_answered;   /* monotonic ms when its last heartbeat was answered */
    /* For the metrics (obs/metrics.h), bounds coord_buckets and coord_hb_buckets below: */
    metrics_hist attempt_secs[2]; /* [phase] durations of its successful attempts */
    metrics_hist heartbeat_gap; /* seconds from an answer to its next heartbeat */
    uint64_t heartbeats;      /* heartbeats received: numbers the answers that carry attempts */
} coord_worker;

/* A map's committed output as its report carried it (--inline-map-output): handed to the
 * reducers in their assignments, so that they fetch nothing, and kept when the map's worker
 * is lost (the output is not lost with it). Not journaled: a coordinator that takes over has
 * none, and its reducers fetch from the workers. */
typedef struct coord_inline {
    int64_t attempt;          /* the map attempt it is the output of; -1: none */
    json_t *parts;            /* [{"data","crc","records"}] per partition (wire_report.output) */
    uint64_t bytes;
} coord_inline;

typedef struct coord_job {
    char id[40];
    jobspec spec;
    json_t *spec_json;
    execpool_job desc;        /* what the describer executor said of the job */
    input_set inputs;
    output out;
    sched_job *sj;
    uint64_t version;         /* bumped at every report and state change, for waiting clients */
    int finished;             /* output committed or rolled back */
    uint64_t preempt_ms;      /* monotonic ms of its last preemption (coord_preempt) */
    uint64_t finished_mono;
    int created;              /* output_prepare() made OUT (journaled: the rollback needs it) */
    int adopted;              /* j->out holds OUT's claim (a resumed job: once output_adopt()ed) */
    int out_committed;        /* a resumed job whose OUT was committed before the takeover */
    int adopt_warned;
    uint64_t sig;             /* the job without its OUT (hash): runs of "the same job" share history */
    double weight;            /* its share of the slots against the other running jobs (fair sharing) */
    uint64_t exhausted;       /* coord_fair_one(): the assignment round that found nothing to run */
    coord_inline *inl;        /* per map, or NULL while none was held */
    uint64_t inl_bytes;
    struct coord_job *next;
} coord_job;

/* Latency buckets (seconds) of the task duration histograms. */
static const double coord_buckets[] = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300};
#define COORD_NBUCKETS (sizeof coord_buckets / sizeof coord_buckets[0])
/* Heartbeat gap buckets (seconds): a long poll's next request normally follows within ms. */
static const double coord_hb_buckets[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define COORD_HB_NBUCKETS (sizeof coord_hb_buckets / sizeof coord_hb_buckets[0])
_Static_assert(COORD_NBUCKETS < METRICS_HIST_MAX && COORD_HB_NBUCKETS < METRICS_HIST_MAX, "metrics_hist has too few buckets");
/* A finished job's tally_job_tasks series stay this long, then go (bounded label cardinality). */
#define COORD_METRICS_FINISHED_MS 300000

typedef struct coord {
    pthread_mutex_t lock;
    pthread_cond_t work_cv;   /* broadcast when work may have appeared */
    pthread_cond_t job_cv;    /* broadcast when a job progressed (clients waiting on it) */
    coord_worker workers[COORD_MAX_WORKERS];
    size_t nworkers;
    coord_job *jobs;          /* submission order */
    uint64_t next_id;
    uint64_t heartbeat_ms, timeout_ms;
    char *token;
    http_server *srv;
    /* The coordinator never runs user code: a job is loaded and set up in this executor
     * process (execpool_describe), so a user job that crashes in setup() fails its submit only. */
    execpool *describer;
    claim scratch;            /* its directory (the executor's shared page lives there) */
    /* metrics, counted as things happen so that they never go backwards */
    uint64_t attempts_total[2][4];          /* [phase][attempt state] */
    metrics_hist task_secs[2];              /* [phase] durations of successful attempts (coord_buckets) */
    uint64_t jobs_total[5];                 /* by terminal state */
    uint64_t fetch_failures, workers_lost, max_heartbeat_gap;
    int64_t records_in, records_out, shuffle_bytes;
    /* State that outlives the process (cluster/state.h), or NULL: jobs die with it. */
    state *st;
    uint64_t epoch;                         /* this term's: on every answer to a worker */
    uint64_t jobs_resumed, attempts_adopted, elections, leader_since;
    char advertise[160];                    /* the address others reach this coordinator on */
    int deposed;                            /* not the leader (a follower, or its term is over) */
    int zk;                                 /* elected through ZooKeeper (--zookeeper) */
    int reset;                              /* stepped down: drop the state, campaign again */
    char leader_hint[160];                  /* the leader ZooKeeper names (refreshed by the main loop) */
    json_t *members;                        /* the coordinators [{address, role}], likewise */
    /* Tail latency (exec/health.h, sched_pick_copy): workers' health, speculation, migration. */
    health health;
    sched_spec spec;
    int speculation;                        /* --speculation on */
    double spec_cap;                        /* --speculation-cap: share of the slots copies may hold */
    uint64_t check_ms, last_check;          /* the slow rule runs this often (and at every job end) */
    uint64_t spec_launched[3], spec_won[3], spec_lost[3], probes; /* [sched_copy] */
    uint64_t assign_round;
    uint64_t inline_max;                    /* --inline-map-output: 0 off */
    uint64_t inline_held, inline_over, inline_kept; /* metrics: held, over the budget, kept on a loss */
    uint64_t fail_after, tasks_ok;          /* --fail-after-tasks (0: off), successes reported so far */
} coord;

static volatile sig_atomic_t coord_stop;

static void coord_on_signal(int sig)
{
    (void)sig;
    coord_stop = 1;
}

/* Waits on cv (with `lock` held) for at most ms milliseconds. */
static void coord_wait(coord *c, pthread_cond_t *cv, uint64_t ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    ts.tv_sec += (time_t)(ms / 1000);
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(cv, &c->lock, &ts);
}

/* ---- Workers ----------------------------------------------------------------------------- */

static coord_worker *coord_find_worker(coord *c, const char *name)
{
    for (size_t i = 0; i < c->nworkers; i++)
        if (strcmp(c->workers[i].name, name) == 0) return &c->workers[i];
    return NULL;
}

static uint32_t coord_running_on(const coord *c, const char *name)
{
    uint32_t n = 0;
    /* A job that is over has nothing running (sched_finish_job() kills what was left). */
    for (const coord_job *j = c->jobs; j; j = j->next)
        for (size_t i = 0; !sched_job_done(j->sj) && i < j->sj->nattempts; i++)
            if (j->sj->attempts[i].state == SCHED_ATTEMPT_RUNNING && strcmp(j->sj->attempts[i].worker, name) == 0) n++;
    return n;
}

static void coord_attempt_sample(coord *c, const coord_job *j, const sched_attempt *a);

/* An attempt ended: counted once in the metrics, and a sample of its worker's speed. */
static void coord_count_attempt(coord *c, const coord_job *j, uint32_t id)
{
    sched_job *sj = j->sj;
    sched_attempt *a = &sj->attempts[id];
    if (a->counted || a->state == SCHED_ATTEMPT_RUNNING) return;
    a->counted = 1;
    sched_phase ph = sj->tasks[a->task].phase;
    c->attempts_total[ph][a->state]++;
    coord_attempt_sample(c, j, a);
    if (a->state != SCHED_ATTEMPT_SUCCEEDED) return;
    double secs = (double)(a->end_ms - a->start_ms) / 1000.0;
    metrics_hist_observe(&c->task_secs[ph], coord_buckets, COORD_NBUCKETS, secs);
    coord_worker *w = coord_find_worker(c, a->worker);
    if (w) metrics_hist_observe(&w->attempt_secs[ph], coord_buckets, COORD_NBUCKETS, secs);
}

/* ---- Tail latency: worker health, speculative copies, migration (exec/health.h) ------------ */

static uint64_t coord_group(const coord_job *j, sched_phase ph)
{
    return XXH3_64bits_withSeed(j->id, strlen(j->id), (uint64_t)ph + 1);
}

/* The job as a user would call it "the same job": everything in its spec but OUT, so that
 * the runs of an iteration series (or daily runs) share their history of task times. */
static uint64_t coord_job_sig(const coord_job *j)
{
    json_t *o = json_deep_copy(j->spec_json);
    json_object_del(o, "out");
    char *text = wire_dump(o);
    uint64_t h = XXH3_64bits(text, strlen(text));
    free(text);
    json_decref(o);
    return h;
}

static void coord_attempt_sample(coord *c, const coord_job *j, const sched_attempt *a)
{
    const sched_job *sj = j->sj;
    const sched_task *t = &sj->tasks[a->task];
    if (a->copy != SCHED_COPY_NONE) {
        if (a->state == SCHED_ATTEMPT_SUCCEEDED) c->spec_won[a->copy]++;
        else if (a->state == SCHED_ATTEMPT_KILLED) c->spec_lost[a->copy]++;
    }
    if ((a->state != SCHED_ATTEMPT_SUCCEEDED && !a->superseded) || a->end_ms < a->start_ms) return;
    uint64_t bytes = t->phase == SCHED_MAP && t->index < j->inputs.nsplits ? j->inputs.splits[t->index].bytes : 0;
    health_event ev;
    if (health_note_attempt(&c->health, a->worker, coord_group(j, t->phase), j->sig, t->phase,
                            (double)(a->end_ms - a->start_ms), a->progress, a->state == SCHED_ATTEMPT_SUCCEEDED, bytes,
                            time_mono_ms(), &ev))
        log_info("worker=%s back from probation: %s", ev.worker, ev.why);
}

static double coord_spec_slowness(void *arg, const char *worker)
{
    return health_slowness(&((coord *)arg)->health, worker);
}

static int coord_spec_probation(void *arg, const char *worker)
{
    return health_on_probation(&((coord *)arg)->health, worker);
}

static double coord_spec_history(void *arg, const sched_job *sj, uint32_t task)
{
    coord *c = arg;
    for (const coord_job *j = c->jobs; j; j = j->next)
        if (j->sj == sj) return health_history_ms(&c->health, j->sig, sj->tasks[task].phase);
    return 0;
}

/* A worker's health for status: its state, score, probation counts and reported pressure. */
static json_t *coord_health_json(const coord *c, const char *name)
{
    const health_worker *h = health_worker_find(&c->health, name);
    if (!h) return json_pack("{s:s, s:f, s:i}", "state", "ok", "score", 0.0, "probations", 0);
    json_t *o = json_pack("{s:s, s:f, s:i, s:i, s:i}", "state", health_state_name(h->state), "score", h->score,
                          "probations", (int)h->entries, "violations", (int)h->violations, "samples", (int)h->nsamples);
    if (h->state == HEALTH_PROBATION)
        json_object_set_new(o, "probation_ms", json_integer((json_int_t)(time_mono_ms() - h->since_ms)));
    static const char *keys[] = {"psi_cpu", "psi_io", "psi_memory", "load1"};
    const double vals[] = {h->psi_cpu, h->psi_io, h->psi_memory, h->load1};
    for (int k = 0; k < 4; k++)
        if (vals[k] >= 0) json_object_set_new(o, keys[k], json_real(vals[k]));
    if (h->chaos_slow > 1) json_object_set_new(o, "chaos_slow", json_real(h->chaos_slow));
    return o;
}

/* The slow rule, run from the tick every --slow-check-ms and at every job end. */
static void coord_health_check(coord *c, uint64_t now, int force)
{
    if (!force && (now < c->last_check || now - c->last_check < c->check_ms)) return;
    c->last_check = now;
    size_t alive = 0;
    for (size_t i = 0; i < c->nworkers; i++) alive += c->workers[i].state == COORD_WORKER_ALIVE;
    health_event ev[8];
    size_t n = health_check(&c->health, now, alive, ev, 8);
    for (size_t i = 0; i < n; i++)
        log_warn("worker=%s put on probation: %s; its running attempts are copied elsewhere when that is faster",
                 ev[i].worker, ev[i].why);
    if (n) pthread_cond_broadcast(&c->work_cv);
}

/* ---- State: scheduler events, their records and their replay ----------------------------- */

/* Every change to a job's scheduler state goes through coord_event(): the change is applied
 * by coord_apply(), the one function a replay calls too, and recorded (cluster/state.h). Only
 * the scheduler's inputs are recorded, never its derived state, so the replayed job is the
 * same job: the same attempt ids, the same queues, the same counters. */

static coord_job *coord_find_job(coord *c, const char *id);

static int coord_record(coord *c, const coord_job *j, json_t *rec)
{
    int rc = 0;
    if (c->st) {
        if (j) json_object_set_new(rec, "j", json_string(j->id));
        if ((rc = state_append(c->st, j ? j->id : NULL, rec)) != 0)
            log_error("job=%s: a state record could not be kept: %s", j ? j->id : "-", strerror(-rc));
    }
    json_decref(rec);
    return rc;
}

static int coord_rec_int(const json_t *rec, const char *key, int64_t min, int64_t max, int64_t *out, struct err *e)
{
    json_t *v = json_object_get(rec, key);
    if (!json_is_integer(v) || json_integer_value(v) < min || json_integer_value(v) > max)
        return err_set(e, -EBADMSG, "field '%s' must be an integer from %lld to %lld", key, (long long)min,
                       (long long)max);
    *out = json_integer_value(v);
    return 0;
}

static const char *coord_rec_str(const json_t *rec, const char *key)
{
    const char *v = json_string_value(json_object_get(rec, key));
    return v ? v : "";
}

/* Applies the event `rec` ("ok", "fail", "kill", "lost", "blocked", "cancel", "abort") to j. */
static int coord_apply(coord_job *j, const json_t *rec, struct err *e)
{
    sched_job *sj = j->sj;
    const char *t = coord_rec_str(rec, "t");
    int64_t a = 0, m = 0, ms = 0;
    int rc = coord_rec_int(rec, "ms", 0, INT64_MAX, &ms, e);
    if (rc == 0 && json_object_get(rec, "a")) rc = coord_rec_int(rec, "a", 0, (int64_t)sj->nattempts - 1, &a, e);
    if (rc == 0 && json_object_get(rec, "m")) rc = coord_rec_int(rec, "m", 0, (int64_t)sj->nmaps - 1, &m, e);
    if (rc) return rc;
    const char *why = json_string_value(json_object_get(rec, "e"));
    if (strcmp(t, "ok") == 0) {
        counters cs;
        if ((rc = wire_counters_decode(json_object_get(rec, "c"), &cs, e)) != 0) return rc;
        const char *skip = json_string_value(json_object_get(rec, "skip"));
        if (skip) sched_note_skip(sj, skip);
        sched_attempt_succeeded(sj, (uint32_t)a, &cs, (uint64_t)ms);
        counters_free(&cs);
    } else if (strcmp(t, "fail") == 0) {
        const char *cf = json_string_value(json_object_get(rec, "crash_file"));
        int64_t off = 0;
        if (cf && (rc = coord_rec_int(rec, "crash_offset", 0, INT64_MAX, &off, e)) != 0) return rc;
        if (cf && sj->tasks[sj->attempts[a].task].phase == SCHED_MAP)
            sched_note_crash(sj, sj->tasks[sj->attempts[a].task].index, cf, (uint64_t)off);
        sched_attempt_failed(sj, (uint32_t)a, why, json_is_true(json_object_get(rec, "fatal")), (uint64_t)ms);
    } else if (strcmp(t, "kill") == 0) {
        sched_attempt_killed(sj, (uint32_t)a, why, (uint64_t)ms);
    } else if (strcmp(t, "lost") == 0) {
        sched_map_lost(sj, (uint32_t)m);
    } else if (strcmp(t, "blocked") == 0) {
        sched_reduce_blocked(sj, (uint32_t)a, (uint32_t)m);
    } else if (strcmp(t, "cancel") == 0) {
        sched_job_cancel(sj, why, (uint64_t)ms);
    } else if (strcmp(t, "abort") == 0) {
        sched_job_fail(sj, why, (uint64_t)ms);
    } else {
        return err_set(e, -EBADMSG, "unknown record type '%s'", t);
    }
    return 0;
}

/* Applies and records an event (rec is taken). */
static void coord_event(coord *c, coord_job *j, json_t *rec)
{
    struct err e = {0};
    if (!json_object_get(rec, "ms")) json_object_set_new(rec, "ms", json_integer((json_int_t)time_wall_ms()));
    if (coord_apply(j, rec, &e) != 0) log_error("job=%s: internal: event not applied: %s", j->id, e.msg);
    coord_record(c, j, rec);
}

static json_t *coord_ev(const char *type, uint32_t attempt, const char *why)
{
    return json_pack("{s:s, s:I, s:s?}", "t", type, "a", (json_int_t)attempt, "e", why);
}

/* Makes every record so far durable; a coordinator whose term is over steps down here. */
static void coord_step_down(coord *c, const char *why);
static int coord_sync(coord *c, struct err *e)
{
    if (!c->st) return 0;
    int rc = state_sync(c->st, e);
    if (rc == -ESTALE) coord_step_down(c, e->msg);
    else if (rc) log_error("writing the job state failed: %s", e->msg);
    return rc;
}

static void coord_record_worker(coord *c, const coord_worker *w)
{
    coord_record(c, NULL, json_pack("{s:s, s:s, s:s, s:s, s:i}", "t", "worker", "name", w->name, "inc",
                                    w->incarnation, "addr", w->address, "slots", (int)w->slots));
}

static void coord_job_check(coord *c, coord_job *j);
static const coord_inline *coord_inline_of(const coord_job *j, uint32_t m);

/* Everything `w` held is gone: its running attempts are killed and its committed map outputs
 * are lost for every job that still needs them. */
static void coord_worker_lost(coord *c, coord_worker *w, const char *why)
{
    c->workers_lost++;
    if (health_forget(&c->health, w->name, time_mono_ms()))
        log_info("worker=%s: its probation ends with it (%s); it is judged afresh if it comes back", w->name, why);
    for (coord_job *j = c->jobs; j; j = j->next) {
        if (sched_job_done(j->sj)) continue;
        for (size_t i = 0; i < j->sj->nattempts; i++) {
            sched_attempt *a = &j->sj->attempts[i];
            if (strcmp(a->worker, w->name) != 0) continue;
            if (a->state == SCHED_ATTEMPT_RUNNING) {
                coord_event(c, j, coord_ev("kill", a->id, why));
                coord_count_attempt(c, j, a->id);
            }
        }
        if (j->sj->reduces_done < j->sj->nreduces) {
            for (uint32_t m = 0; m < j->sj->nmaps; m++) {
                sched_task *t = &j->sj->tasks[m];
                if (t->committed >= 0 && strcmp(j->sj->attempts[t->committed].worker, w->name) == 0) {
                    if (coord_inline_of(j, m)) {
                        /* Its output came with its report: the reducers get it from here. */
                        c->inline_kept++;
                        log_info("job=%s task=m%05u: worker %s lost (%s); its output is held here, not re-run", j->id,
                                 m, w->name, why);
                        continue;
                    }
                    log_warn("job=%s task=m%05u: output lost with worker %s (%s); re-running", j->id, m, w->name, why);
                    coord_event(c, j, json_pack("{s:s, s:i}", "t", "lost", "m", (int)m));
                }
            }
        }
        coord_job_check(c, j);
    }
}

/* ---- Jobs -------------------------------------------------------------------------------- */

static coord_job *coord_find_job(coord *c, const char *id)
{
    for (coord_job *j = c->jobs; j; j = j->next)
        if (strcmp(j->id, id) == 0) return j;
    return NULL;
}

/* The inline output of map m, if the coordinator holds that of its committed attempt. */
static const coord_inline *coord_inline_of(const coord_job *j, uint32_t m)
{
    const sched_task *t = &j->sj->tasks[m];
    if (!j->inl || t->committed < 0 || j->inl[m].attempt != t->committed) return NULL;
    return &j->inl[m];
}

static void coord_inline_drop(coord_job *j)
{
    for (uint32_t m = 0; j->inl && m < j->sj->nmaps; m++) json_decref(j->inl[m].parts);
    free(j->inl);
    j->inl = NULL;
    j->inl_bytes = 0;
}

/* Keeps map attempt a's reported output (its report's "output"), within the job's budget. */
static void coord_inline_keep(coord *c, coord_job *j, const sched_attempt *a, json_t *parts, uint64_t bytes)
{
    uint32_t m = j->sj->tasks[a->task].index;
    if (json_array_size(parts) != j->sj->nreduces) return; /* not an output of this job's shape */
    if (!j->inl) {
        j->inl = xcalloc(j->sj->nmaps, sizeof *j->inl);
        for (uint32_t k = 0; k < j->sj->nmaps; k++) j->inl[k].attempt = -1;
    }
    coord_inline *x = &j->inl[m];
    j->inl_bytes -= x->bytes;
    json_decref(x->parts);
    *x = (coord_inline){.attempt = -1};
    if (j->inl_bytes + bytes > COORD_INLINE_JOB_MAX) {
        c->inline_over++;
        return;
    }
    *x = (coord_inline){.attempt = a->id, .parts = json_incref(parts), .bytes = bytes};
    j->inl_bytes += bytes;
    c->inline_held++;
}

static void coord_job_free(coord_job *j)
{
    coord_inline_drop(j);
    output_free(&j->out);
    input_set_free(&j->inputs);
    sched_job_free(j->sj);
    execpool_job_free(&j->desc);
    json_decref(j->spec_json);
    jobspec_free(&j->spec);
    free(j);
}

/* Keeps a bounded history of finished jobs (a job history server's): the oldest go first, and
 * the state store drops their records. Called from the tick only, where no loop over the jobs
 * is in progress. */
static void coord_trim_history(coord *c)
{
    size_t finished = 0;
    for (coord_job *j = c->jobs; j; j = j->next) finished += j->finished;
    for (coord_job **p = &c->jobs; *p && finished > COORD_KEEP_FINISHED;) {
        if ((*p)->finished) {
            finished--;
            coord_job *old = *p;
            *p = old->next;
            if (c->st) state_forget(c->st, old->id);
            coord_job_free(old);
        } else {
            p = &(*p)->next;
        }
    }
}

/* The job is over: its end is journaled, the waiting clients told, the metrics counted. */
static void coord_job_ended(coord *c, coord_job *j)
{
    j->finished = 1;
    coord_inline_drop(j);
    for (size_t i = 0; i < j->sj->nattempts; i++) coord_count_attempt(c, j, (uint32_t)i);
    j->version++;
    pthread_cond_broadcast(&c->job_cv);
    j->finished_mono = time_mono_ms();
    c->jobs_total[j->sj->state]++;
    /* The slow rule looks at the samples the job left at once: the next job (an iteration
     * series submits it as soon as this one is reported) already sees a worker on probation. */
    coord_health_check(c, time_mono_ms(), 1);
    coord_record(c, j, json_pack("{s:s, s:s, s:s?, s:I}", "t", "end", "state", sched_job_state_name(j->sj->state),
                                 "e", j->sj->error, "ms", (json_int_t)time_wall_ms()));
    log_info("job=%s %s%s%s", j->id, sched_job_state_name(j->sj->state), j->sj->error ? ": " : "",
             j->sj->error ? j->sj->error : "");
}

/* Commits or rolls back the output of a job that reached a terminal state. The outcome is
 * durable before OUT shows it (a coordinator that takes over mid-commit finishes the commit,
 * never rolls back a job whose _SUCCESS may exist); a resumed job waits until it holds OUT. */
static void coord_job_check(coord *c, coord_job *j)
{
    if (j->finished || !sched_job_done(j->sj) || !j->adopted) return;
    struct err se = {0};
    if (coord_sync(c, &se) != 0) return; /* tried again at the next tick */
    if (j->sj->state == SCHED_JOB_SUCCEEDED) {
        counters cs;
        sched_job_counters(j->sj, &cs);
        cs.v[CNT_INPUT_FILES] = (int64_t)j->inputs.nfiles;
        cs.v[CNT_INPUT_BYTES] = (int64_t)j->inputs.total_bytes;
        struct buf json = {0};
        counters_to_json(&cs, &json);
        struct err e = {0};
        if (!j->out_committed && output_commit(&j->out, j->spec.reduces, j->desc.columns, json.data, &e) != 0) {
            j->sj->state = SCHED_JOB_FAILED;
            free(j->sj->error);
            j->sj->error = xasprintf("committing output: %s", e.msg);
            output_abort(&j->out);
        }
        c->records_in += cs.v[CNT_INPUT_RECORDS];
        c->records_out += cs.v[CNT_OUTPUT_RECORDS];
        c->shuffle_bytes += cs.v[CNT_SHUFFLE_BYTES];
        buf_free(&json);
        counters_free(&cs);
    } else {
        output_abort(&j->out);
    }
    coord_job_ended(c, j);
}

/* Where every map's committed output is: [{"index","address","attempt"}] (wire_maps_decode). */
static json_t *coord_maps_json(coord *c, const coord_job *j, int64_t part)
{
    json_t *maps = json_array();
    for (uint32_t m = 0; m < j->sj->nmaps; m++) {
        const sched_task *mt = &j->sj->tasks[m];
        const coord_worker *w = mt->committed >= 0 ? coord_find_worker(c, j->sj->attempts[mt->committed].worker) : NULL;
        json_t *o = json_pack("{s:i, s:s, s:I}", "index", (int)m, "address", w ? w->address : "", "attempt",
                              (json_int_t)(w ? mt->committed : -1));
        const coord_inline *x = part >= 0 && w ? coord_inline_of(j, m) : NULL;
        if (x) json_object_set(o, "segment", json_array_get(x->parts, (size_t)part));
        json_array_append_new(maps, o);
    }
    return maps;
}

static json_t *coord_task_json(coord *c, coord_job *j, uint32_t id)
{
    json_t *o = wire_task_encode(j->id, j->sj, id, j->spec_json, &j->inputs);
    const sched_task *t = &j->sj->tasks[j->sj->attempts[id].task];
    if (t->phase == SCHED_REDUCE) json_object_set_new(o, "maps", coord_maps_json(c, j, t->index));
    else if (c->inline_max) json_object_set_new(o, "inline_max", json_integer((json_int_t)c->inline_max));
    return o;
}

/* Attempt `id` of job j was started on w: recorded, tagged with the heartbeat answer seq that
 * carries it, and added to that answer. */
static void coord_started(coord *c, coord_worker *w, coord_job *j, int64_t id, uint64_t seq, json_t *tasks)
{
    sched_attempt *a = &j->sj->attempts[id];
    a->tag = seq;
    json_t *rec = json_pack("{s:s, s:I, s:I, s:s, s:I}", "t", "start", "a", (json_int_t)id, "task", (json_int_t)a->task,
                            "w", w->name, "ms", (json_int_t)a->start_ms);
    if (a->copy != SCHED_COPY_NONE) json_object_set_new(rec, "copy", json_integer(a->copy));
    coord_record(c, j, rec);
    json_array_append_new(tasks, coord_task_json(c, j, (uint32_t)id));
}

/* Starts one attempt on w from the running job furthest below its fair share of the slots
 * (running attempts / weight; the oldest job on ties), as Hadoop's and Spark's fair
 * schedulers do, so that a small job does not queue behind a big one. `round` marks the jobs
 * found to have nothing to run for w in this answer. blocked_only > 0: only jobs whose reducers
 * wait for a lost map; < 0: no such job. Returns 1 if it started one. */
static int coord_fair_one(coord *c, coord_worker *w, unsigned mask, int blocked_only, uint64_t seq, uint64_t round,
                          json_t *tasks)
{
    for (;;) {
        coord_job *best = NULL;
        double best_load = 0;
        for (coord_job *j = c->jobs; j; j = j->next) {
            if (j->finished || sched_job_done(j->sj) || j->exhausted == round || (blocked_only > 0 && !j->sj->blocked) ||
                (blocked_only < 0 && j->sj->blocked))
                continue;
            double load = (double)j->sj->running / (j->weight > 0 ? j->weight : 1);
            if (!best || load < best_load) {
                best = j;
                best_load = load;
            }
        }
        if (!best) return 0;
        int64_t id = sched_assign(best->sj, w->name, mask, time_wall_ms());
        if (id >= 0) {
            coord_started(c, w, best, id, seq, tasks);
            return 1;
        }
        best->exhausted = round;
    }
}

/* Could any running attempt be copied now: one that has run --speculation-min-ms (a possible
 * straggler) or one on a worker on probation (a possible migration)? Cheap, so that the costly
 * estimates (health_refresh, sched_pick_copy) and the wake-ups they need happen only then:
 * small jobs whose attempts all take less pay nothing for speculation. */
static int coord_copy_possible(coord *c, uint64_t now_wall)
{
    for (const coord_job *j = c->jobs; j; j = j->next) {
        if (j->finished || sched_job_done(j->sj) || j->sj->running == 0) continue;
        for (size_t i = 0; i < j->sj->nattempts; i++) {
            const sched_attempt *a = &j->sj->attempts[i];
            if (a->state != SCHED_ATTEMPT_RUNNING) continue;
            if (c->speculation && now_wall >= a->start_ms + c->spec.min_ms) return 1;
            if (c->health.rule.enabled && health_on_probation(&c->health, a->worker)) return 1;
        }
    }
    return 0;
}

/* Copies of running attempts onto w, which has free slots and nothing else to run: first
 * migrations (the original's worker is on probation and a fresh run here is faster than what
 * it has left), then speculative copies of stragglers, at most --speculation-cap of the slots
 * at once. Every decision is logged with its reason. */
static void coord_copies(coord *c, coord_worker *w, uint64_t seq, uint32_t *running, json_t *tasks)
{
    uint64_t now = time_wall_ms();
    /* Copies go to fast, healthy workers only: not one found slow, nor one slower than typical
     * by the slow rule's factor. */
    if (health_suspect(&c->health, w->name) || health_slowness(&c->health, w->name) >= c->health.rule.factor) return;
    if (!coord_copy_possible(c, now)) return;
    uint32_t slots = 0, copies = 0;
    for (size_t i = 0; i < c->nworkers; i++)
        if (c->workers[i].state == COORD_WORKER_ALIVE && !health_on_probation(&c->health, c->workers[i].name))
            slots += c->workers[i].slots;
    double capf = c->spec_cap * (double)slots;
    uint32_t cap = capf < 1 ? 1 : (uint32_t)(capf + 0.999);
    for (const coord_job *j = c->jobs; j; j = j->next)
        for (size_t i = 0; !sched_job_done(j->sj) && i < j->sj->nattempts; i++)
            copies += j->sj->attempts[i].state == SCHED_ATTEMPT_RUNNING && j->sj->attempts[i].copy == SCHED_COPY_STRAGGLER;
    health_refresh(&c->health, time_mono_ms());
    while (*running < w->slots) {
        coord_job *best = NULL;
        int64_t task = -1;
        sched_copy reason = SCHED_COPY_NONE;
        sched_copy_why why = {0}, cand;
        for (int pass = 0; pass < 2 && !best; pass++) {
            sched_copy r = pass == 0 ? SCHED_COPY_MIGRATE : SCHED_COPY_STRAGGLER;
            if (r == SCHED_COPY_MIGRATE && !c->health.rule.enabled) continue;
            if (r == SCHED_COPY_STRAGGLER && (!c->speculation || copies >= cap)) continue;
            for (coord_job *j = c->jobs; j; j = j->next) {
                if (j->finished || sched_job_done(j->sj)) continue;
                int64_t t = sched_pick_copy(j->sj, w->name, &c->spec, r, now, &cand);
                if (t >= 0 && (!best || cand.left_ms > why.left_ms)) {
                    best = j;
                    task = t;
                    why = cand;
                    reason = r;
                }
            }
        }
        if (!best) return;
        int64_t id = sched_start_copy(best->sj, (uint32_t)task, w->name, reason, now);
        if (id < 0) return;
        const sched_attempt *o = &best->sj->attempts[why.attempt];
        const sched_task *t = &best->sj->tasks[task];
        log_info("job=%s task=%c%05u: %s a%" PRId64 " on %s beside a%u on %s: %.0f ms left at %.0f%% after %.0f ms, a "
                 "fresh run here ~%.0f ms", best->id, t->phase == SCHED_MAP ? 'm' : 'r', t->index,
                 reason == SCHED_COPY_MIGRATE ? "migrating (its worker is on probation) to" : "speculative copy", id,
                 w->name, o->id, o->worker, why.left_ms, 100 * why.progress, why.elapsed_ms, why.fresh_ms);
        c->spec_launched[reason]++;
        if (reason == SCHED_COPY_STRAGGLER) copies++;
        coord_started(c, w, best, id, seq, tasks);
        (*running)++;
    }
}

/* Starts as many attempts on `w` as it has free slots: first the re-runs of lost maps that
 * running reducers wait for, whatever their job's place in the queue (those reducers hold
 * slots until the maps are done), then by fair share, then copies. A worker on probation
 * gets only a probe now and then (one attempt, when it runs nothing). */
static json_t *coord_assign(coord *c, coord_worker *w, uint64_t seq)
{
    json_t *tasks = json_array();
    uint32_t running = coord_running_on(c, w->name);
    uint64_t round = ++c->assign_round;
    const unsigned any = (1u << SCHED_MAP) | (1u << SCHED_REDUCE);
    if (health_on_probation(&c->health, w->name)) {
        uint64_t now = time_mono_ms();
        /* A map, and not a lost one that reducers wait for: a probe may well be slow, and a slow
         * reduce (a job's last stage) would hold its whole job. */
        if (running == 0 && health_probe_due(&c->health, w->name, now) &&
            coord_fair_one(c, w, 1u << SCHED_MAP, -1, seq, round, tasks)) {
            health_probe_sent(&c->health, w->name, now);
            c->probes++;
            log_info("worker=%s (on probation): probe attempt sent", w->name);
        }
        return tasks;
    }
    /* A worker found slow at its last check (not yet on probation) runs maps only while a
     * healthy worker is there to take the reduces. */
    unsigned mask = any;
    if (c->health.rule.enabled && health_suspect(&c->health, w->name)) {
        for (size_t i = 0; i < c->nworkers && mask == any; i++) {
            const coord_worker *o = &c->workers[i];
            if (o != w && o->state == COORD_WORKER_ALIVE && !health_on_probation(&c->health, o->name) &&
                !health_suspect(&c->health, o->name))
                mask = 1u << SCHED_MAP;
        }
    }
    while (running < w->slots && coord_fair_one(c, w, 1u << SCHED_MAP, 1, seq, round, tasks)) running++;
    while (running < w->slots && coord_fair_one(c, w, mask, 0, seq, round, tasks)) running++;
    if (running < w->slots) coord_copies(c, w, seq, &running, tasks);
    return tasks;
}

/* ---- HTTP handlers ----------------------------------------------------------------------- */

static int coord_not_leader(coord *c, http_response *resp);

static void coord_heartbeat(coord *c, const http_request *req, http_response *resp)
{
    struct err e = {0};
    wire_heartbeat hb;
    if (wire_heartbeat_decode(req->body, req->body_len, &hb, &e) != 0) {
        http_respond_error(resp, 400, e.msg);
        return;
    }
    const char *name = hb.name, *inc = hb.incarnation;
    uint64_t wait = hb.wait_ms;
    pthread_mutex_lock(&c->lock);
    uint64_t now = time_mono_ms();
    coord_worker *w = coord_find_worker(c, name);
    if (!w) {
        if (c->nworkers == COORD_MAX_WORKERS) {
            pthread_mutex_unlock(&c->lock);
            http_respond_error(resp, 503, "too many workers");
            wire_heartbeat_free(&hb);
            return;
        }
        w = &c->workers[c->nworkers++];
        memset(w, 0, sizeof *w);
        snprintf(w->name, sizeof w->name, "%s", name);
        snprintf(w->incarnation, sizeof w->incarnation, "%s", inc);
        log_info("worker=%s registered from %s with %u slots", name, hb.address, hb.slots);
    } else if (strcmp(w->incarnation, inc) != 0) {
        log_warn("worker=%s restarted (new incarnation): what it held is lost", name);
        coord_worker_lost(c, w, "worker restarted");
        snprintf(w->incarnation, sizeof w->incarnation, "%s", inc);
        w->heartbeats = 0; /* recorded below with its new incarnation */
    } else if (w->state == COORD_WORKER_ALIVE && w->last_answered) {
        uint64_t gap = now - w->last_answered;
        if (gap > c->max_heartbeat_gap) c->max_heartbeat_gap = gap;
        metrics_hist_observe(&w->heartbeat_gap, coord_hb_buckets, COORD_HB_NBUCKETS, (double)gap / 1000.0);
    }
    if (w->state == COORD_WORKER_DEAD) log_info("worker=%s is back", name);
    w->state = COORD_WORKER_ALIVE;
    w->last_seen = now;
    if (strcmp(w->address, hb.address) != 0 || w->slots != hb.slots || w->heartbeats == 0) {
        w->slots = hb.slots;
        snprintf(w->address, sizeof w->address, "%s", hb.address);
        coord_record_worker(c, w);
    }
    /* Its pressure as it measures it: shown by status and the metrics. */
    health_worker *hw = health_worker_get(&c->health, name);
    hw->psi_cpu = hb.health.psi_cpu;
    hw->psi_io = hb.health.psi_io;
    hw->psi_memory = hb.health.psi_memory;
    hw->load1 = hb.health.load1;
    hw->chaos_slow = hb.health.chaos_slow;
    /* Attempts the worker runs that are no longer wanted (superseded, cancelled, job over). */
    json_t *kill = json_array();
    for (size_t i = 0; i < hb.nrunning; i++) {
        const wire_running *r = &hb.running[i];
        coord_job *j = coord_find_job(c, r->job);
        if (!j || r->attempt >= j->sj->nattempts || j->sj->attempts[r->attempt].state != SCHED_ATTEMPT_RUNNING ||
            strcmp(j->sj->attempts[r->attempt].worker, name) != 0) {
            json_array_append_new(kill, json_pack("{s:s, s:I}", "job", r->job, "attempt", (json_int_t)r->attempt));
            continue;
        }
        /* Progress and counters so far: shown by status, and the basis for telling a slow
         * attempt from a stuck one. */
        if (r->has_progress) {
            sched_attempt_progress(j->sj, r->attempt, r->progress, r->counters.v, time_wall_ms());
            j->sj->attempts[r->attempt].rate = r->rate; /* the worker's, smoothed: sched_pick_copy */
        }
        if (j->sj->attempts[r->attempt].tag == 0) {
            /* Started under an earlier term (restored from the state): the worker still runs
             * it, so it goes on and its result will count. */
            j->sj->attempts[r->attempt].tag = w->heartbeats + 1;
            c->attempts_adopted++;
            log_info("job=%s attempt=a%u worker=%s: adopted (started before the takeover)", j->id, r->attempt, name);
        }
    }
    /* Attempts handed to this worker in the answer to an earlier heartbeat must be in this
     * one's list (the worker reads an answer before it sends the next heartbeat, and keeps an
     * attempt listed until it has reported it, or given up reporting). One that is not never
     * reached the worker (the answer was lost) or ended without a report: run it again. */
    uint64_t seq = ++w->heartbeats;
    for (coord_job *j = c->jobs; j; j = j->next) {
        if (sched_job_done(j->sj)) continue;
        for (size_t i = 0; i < j->sj->nattempts; i++) {
            sched_attempt *a = &j->sj->attempts[i];
            if (a->state != SCHED_ATTEMPT_RUNNING || a->tag >= seq || strcmp(a->worker, name) != 0) continue;
            int listed = 0;
            for (size_t k = 0; k < hb.nrunning && !listed; k++)
                listed = hb.running[k].attempt == a->id && strcmp(hb.running[k].job, j->id) == 0;
            if (listed) continue;
            log_warn("job=%s attempt=a%u worker=%s: not in the worker's heartbeat (answer lost?); running it again",
                     j->id, a->id, name);
            coord_event(c, j, coord_ev("kill", a->id, "lost: the worker does not have it"));
            coord_count_attempt(c, j, a->id);
            j->version++;
        }
    }
    json_t *finished = json_array();
    for (coord_job *j = c->jobs; j; j = j->next)
        if (j->finished && now - j->finished_mono < 30000) json_array_append_new(finished, json_string(j->id));
    /* Long poll: answer as soon as there is work, or after about `wait` ms. */
    if (wait > c->timeout_ms / 2) wait = c->timeout_ms / 2;
    uint64_t deadline = now + wait;
    json_t *tasks = coord_assign(c, w, seq);
    while (json_array_size(tasks) == 0 && !coord_stop) {
        now = time_mono_ms();
        if (now >= deadline) break;
        coord_wait(c, &c->work_cv, deadline - now);
        /* Not refreshing last_seen here: a worker killed during its long poll must be
         * declared dead --worker-timeout-ms after its last request arrived, not after the
         * poll it will never read ends. A live worker's next request comes within wait
         * (at most half the timeout) of this answer. */
        w = coord_find_worker(c, name);
        if (!w || strcmp(w->incarnation, inc) != 0 || w->state != COORD_WORKER_ALIVE) break;
        json_decref(tasks);
        tasks = coord_assign(c, w, seq);
    }
    if (c->deposed) {
        pthread_mutex_unlock(&c->lock);
        json_decref(tasks);
        json_decref(kill);
        json_decref(finished);
        wire_heartbeat_free(&hb);
        coord_not_leader(c, resp);
        return;
    }
    w = coord_find_worker(c, name);
    if (w && strcmp(w->incarnation, inc) == 0) w->last_answered = time_mono_ms();
    /* What the answer carries (attempts started or killed) is durable before the worker acts
     * on it: a coordinator that takes over knows every attempt a worker may be running. */
    if (coord_sync(c, &e) != 0) {
        pthread_mutex_unlock(&c->lock);
        json_decref(tasks);
        json_decref(kill);
        json_decref(finished);
        http_respond_error(resp, 503, "the coordinator cannot write its state: try again");
        wire_heartbeat_free(&hb);
        return;
    }
    uint64_t epoch = c->epoch;
    pthread_mutex_unlock(&c->lock);
    json_t *out = json_pack("{s:I, s:o, s:o, s:o, s:I}", "heartbeat_ms", (json_int_t)c->heartbeat_ms, "tasks", tasks,
                            "kill", kill, "finished_jobs", finished, "epoch", (json_int_t)epoch);
    resp->status = 200;
    resp->body = wire_dump(out);
    resp->body_len = strlen(resp->body);
    json_decref(out);
    wire_heartbeat_free(&hb);
}

static void coord_report(coord *c, const http_request *req, http_response *resp)
{
    struct err e = {0};
    wire_report rep;
    if (wire_report_decode(req->body, req->body_len, &rep, &e) != 0) {
        http_respond_error(resp, 400, e.msg);
        return;
    }
    const char *name = rep.name, *inc = rep.incarnation, *jid = rep.job, *error = rep.error;
    uint32_t att = rep.attempt;
    int ok = rep.ok, fatal = rep.fatal;
    counters *cs = &rep.counters;
    pthread_mutex_lock(&c->lock);
    coord_worker *w = coord_find_worker(c, name);
    coord_job *j = coord_find_job(c, jid);
    if (!w || strcmp(w->incarnation, inc) != 0) {
        http_respond_error(resp, 409, "unknown worker or stale incarnation: result ignored");
    } else if (!j || att >= j->sj->nattempts || strcmp(j->sj->attempts[att].worker, name) != 0) {
        http_respond_error(resp, 404, "no such attempt on this worker");
    } else {
        sched_job *sj = j->sj;
        sched_attempt *a = &sj->attempts[att];
        sched_task *t = &sj->tasks[a->task];
        int was_running = a->state == SCHED_ATTEMPT_RUNNING;
        json_t *okrec = NULL;
        if (was_running && ok) {
            okrec = json_pack("{s:s, s:I, s:o}", "t", "ok", "a", (json_int_t)a->id, "c", wire_counters_encode(cs));
            if (rep.skip_example && *rep.skip_example) json_object_set_new(okrec, "skip", json_string(rep.skip_example));
        }
        if (!was_running) {
            /* A late result from a superseded or lost attempt: ignored by design. */
        } else if (ok && t->phase == SCHED_REDUCE && t->state != SCHED_TASK_SUCCEEDED && !sched_job_done(sj)) {
            /* Task commit: exactly one attempt's part file becomes the task's (a rename inside
             * _temporary, idempotent, then journaled: see docs/design.md, "Commit"). */
            struct err ce = {0};
            if (output_commit_task(j->spec.out, j->id, a->id, t->index, &ce) == 0) {
                coord_event(c, j, okrec);
            } else {
                json_decref(okrec);
                coord_event(c, j, coord_ev("fail", a->id, ce.msg));
            }
            okrec = NULL;
        } else if (ok) {
            coord_event(c, j, okrec);
            okrec = NULL;
            if (t->phase == SCHED_MAP && rep.output && t->committed == (int64_t)a->id)
                coord_inline_keep(c, j, a, rep.output, rep.output_bytes);
        } else if (rep.fetch_failed_map >= 0) {
            /* The reducer reported each failure as it happened (/v1/fetch-failure, which re-ran
             * the map) and has now given up: its failure counts, so a reducer that cannot fetch
             * anything cannot keep a job going for ever. */
            log_warn("job=%s attempt=a%u worker=%s gave up fetching map %" PRId64 ": %s", j->id, a->id, name,
                     rep.fetch_failed_map, error);
            coord_event(c, j, coord_ev("fail", a->id, *error ? error : "fetch failure"));
        } else {
            log_warn("job=%s attempt=a%u worker=%s failed: %s", j->id, a->id, name, error);
            json_t *rec = coord_ev("fail", a->id, *error ? error : "failed");
            json_object_set_new(rec, "fatal", json_boolean(fatal));
            if (t->phase == SCHED_MAP && rep.crash_file) {
                json_object_set_new(rec, "crash_file", json_string(rep.crash_file));
                json_object_set_new(rec, "crash_offset", json_integer((json_int_t)rep.crash_offset));
            }
            coord_event(c, j, rec);
        }
        json_decref(okrec);
        if (was_running) {
            /* A commit kills the task's other attempt (its copy or original) at once. */
            for (size_t i = 0; i < sj->nattempts; i++)
                if (sj->attempts[i].task == a->task) coord_count_attempt(c, j, (uint32_t)i);
        }
        coord_job_check(c, j);
        j->version++;
        pthread_cond_broadcast(&c->work_cv);
        pthread_cond_broadcast(&c->job_cv);
        /* The worker forgets the attempt once answered: its outcome must be durable first. */
        int synced = coord_sync(c, &e) == 0;
        if (synced && was_running && ok && c->fail_after && ++c->tasks_ok >= c->fail_after) {
            /* Failure drills: the worker gets no answer and reports to the next leader. */
            log_warn("failure injection: crashing after %" PRIu64 " tasks (--fail-after-tasks)", c->tasks_ok);
            kill(getpid(), SIGKILL);
        }
        if (synced) http_respond_json(resp, 200, "{}");
        else http_respond_error(resp, 503, "the coordinator cannot write its state: report again");
    }
    pthread_mutex_unlock(&c->lock);
    wire_report_free(&rep);
}

/* POST /v1/fetch-failure: a running reducer could not fetch a map's output. The map is run
 * again (once, however many reducers report it); the reducer keeps what it fetched and waits
 * for the new output through GET /v1/jobs/ID/maps. */
static void coord_fetch_failure(coord *c, const http_request *req, http_response *resp)
{
    struct err e = {0};
    wire_fetch_failure f;
    if (wire_fetch_failure_decode(req->body, req->body_len, &f, &e) != 0) {
        http_respond_error(resp, 400, e.msg);
        return;
    }
    const char *name = f.name, *inc = f.incarnation, *jid = f.job, *error = f.error;
    uint32_t att = f.attempt, map = f.map;
    pthread_mutex_lock(&c->lock);
    coord_worker *w = coord_find_worker(c, name);
    coord_job *j = coord_find_job(c, jid);
    if (!w || strcmp(w->incarnation, inc) != 0) {
        http_respond_error(resp, 409, "unknown worker or stale incarnation");
    } else if (!j || att >= j->sj->nattempts || strcmp(j->sj->attempts[att].worker, name) != 0 ||
               j->sj->attempts[att].state != SCHED_ATTEMPT_RUNNING || map >= j->sj->nmaps) {
        http_respond_error(resp, 409, "no such running attempt on this worker, or no such map");
    } else {
        sched_task *t = &j->sj->tasks[map];
        c->fetch_failures++;
        if (t->committed >= 0 && t->committed == f.map_attempt) {
            log_warn("job=%s task=m%05u: attempt a%u could not fetch its output (%s); re-running it", j->id,
                     (unsigned)map, (unsigned)att, error);
            coord_event(c, j, json_pack("{s:s, s:i}", "t", "lost", "m", (int)map));
            j->version++;
            pthread_cond_broadcast(&c->work_cv);
        }
        /* It waits for the map now (unless the map has already committed again). */
        if (j->sj->tasks[map].state != SCHED_TASK_SUCCEEDED)
            coord_event(c, j, json_pack("{s:s, s:I, s:i}", "t", "blocked", "a", (json_int_t)att, "m", (int)map));
        if (coord_sync(c, &e) == 0) http_respond_json(resp, 200, "{}");
        else http_respond_error(resp, 503, "the coordinator cannot write its state: try again");
    }
    pthread_mutex_unlock(&c->lock);
    wire_fetch_failure_free(&f);
}

/* GET /v1/jobs/ID/maps: where each map output is now, for reducers waiting on a re-run. */
static void coord_maps(coord *c, const char *id, http_response *resp)
{
    pthread_mutex_lock(&c->lock);
    coord_job *j = coord_find_job(c, id);
    if (!j) {
        pthread_mutex_unlock(&c->lock);
        http_respond_error(resp, 404, "no such job");
        return;
    }
    json_t *o = json_pack("{s:b, s:o}", "running", !sched_job_done(j->sj), "maps", coord_maps_json(c, j, -1));
    pthread_mutex_unlock(&c->lock);
    resp->status = 200;
    resp->body = wire_dump(o);
    resp->body_len = strlen(resp->body);
    json_decref(o);
}

static void coord_submit(coord *c, const http_request *req, http_response *resp)
{
    struct err e = {0};
    json_t *b = NULL;
    coord_job *j = xcalloc(1, sizeof *j);
    int usage = 1;
    if (wire_parse_object(req->body, req->body_len, &b, &e) || wire_jobspec_decode(json_object_get(b, "spec"), &j->spec, &e))
        goto fail;
    /* Mistakes on the submitter's command line (bad job arguments, a missing input, an OUT
     * that overlaps an input or is in use) are usage errors: `submit` exits 2 for them. */
    j->spec_json = wire_jobspec_encode(&j->spec);
    j->sig = coord_job_sig(j);
    j->weight = 1;
    json_t *wv = json_object_get(b, "weight");
    if (wv && (!json_is_number(wv) || json_number_value(wv) < 0.01 || json_number_value(wv) > 1000)) {
        err_set(&e, -EINVAL, "field 'weight' must be a number from 0.01 to 1000");
        goto fail;
    }
    if (wv) j->weight = json_number_value(wv);
    int drc = execpool_describe(c->describer, j->spec_json, j->spec.job, &j->desc, &e);
    if (drc) {
        usage = drc != -EIO;
        goto fail;
    }
    if (input_expand(j->spec.inputs, j->spec.ninputs, j->spec.cwd, j->spec.format_forced, j->spec.format, &j->inputs, &e))
        goto fail;
    if (j->desc.flags & TALLY_NEEDS_FIELDS) {
        for (size_t i = 0; i < j->inputs.nfiles; i++) {
            if (j->inputs.files[i].format == FIELDS_TEXT) {
                err_set(&e, -EINVAL, "%s: job %s needs CSV or JSON Lines input (name the file .csv/.jsonl or use --format)",
                        j->inputs.files[i].name, j->desc.name);
                goto fail;
            }
        }
    }
    const ctx_fields *need = &j->desc.required;
    if (probe_fields(&j->inputs, need->names, need->hints, need->n, j->spec.max_record, &e)) goto fail;
    if (output_check_inputs(j->spec.out, j->spec.inputs, j->spec.ninputs, j->spec.cwd, &j->inputs, &e)) goto fail;
    pthread_mutex_lock(&c->lock);
    uint64_t slots = 0;
    for (size_t i = 0; i < c->nworkers; i++)
        if (c->workers[i].state == COORD_WORKER_ALIVE) slots += c->workers[i].slots;
    snprintf(j->id, sizeof j->id, "j%" PRIu64 "-%" PRIu64, time_wall_ms() / 1000, ++c->next_id);
    pthread_mutex_unlock(&c->lock);
    input_plan(&j->inputs, j->spec.maps, j->spec.split_size, slots ? slots : 1);
    /* "resumable": a client that lost this coordinator must leave the claim to the next one. */
    char *what = xasprintf("coordinator job=%s%s", j->id, c->st ? " resumable" : "");
    char *owner = claim_owner_text(what);
    free(what);
    int prc = output_prepare(&j->out, j->spec.out, j->spec.overwrite, owner, &e);
    free(owner);
    if (prc) goto fail;
    usage = 0;
    j->created = j->out.created;
    j->adopted = 1;
    j->sj = sched_job_new((uint32_t)j->inputs.nsplits, j->spec.reduces, j->spec.max_attempts, time_wall_ms());
    j->sj->max_skipped_ratio = j->spec.max_skipped_ratio;
    sched_job_start(j->sj, j->sj->submit_ms);
    pthread_mutex_lock(&c->lock);
    if (c->st) {
        /* The job with its plan, before anyone hears of it: a coordinator that takes over
         * runs it on, from the same splits. */
        int arc = coord_record(c, j, json_pack("{s:s, s:O, s:o, s:o, s:b, s:I, s:f}", "t", "job", "spec", j->spec_json,
                                               "desc", wire_desc_encode(&j->desc), "plan", wire_plan_encode(&j->inputs),
                                               "created", j->created, "ms", (json_int_t)j->sj->submit_ms, "weight",
                                               j->weight));
        if (arc) err_set(&e, arc, "its plan (%zu splits) is too large to keep in the state store: use fewer maps",
                         j->inputs.nsplits);
        if (arc || coord_sync(c, &e) != 0) {
            pthread_mutex_unlock(&c->lock);
            output_abort(&j->out);
            err_prefix(&e, "the coordinator cannot record the job: ");
            usage = 0;
            goto fail;
        }
    }
    coord_job **p = &c->jobs;
    while (*p) p = &(*p)->next;
    *p = j;
    coord_job_check(c, j); /* a job with no tasks is done at once */
    coord_sync(c, &e);
    pthread_cond_broadcast(&c->work_cv);
    log_info("job=%s submitted: %s, %u map%s, %u reduce%s, output %s", j->id, j->spec.job, j->sj->nmaps,
             j->sj->nmaps == 1 ? "" : "s", j->sj->nreduces, j->sj->nreduces == 1 ? "" : "s", j->spec.out);
    http_respond_json(resp, 200, "{\"id\":\"%s\"}", j->id);
    pthread_mutex_unlock(&c->lock);
    json_decref(b);
    return;
fail: {
    json_t *err = json_pack("{s:s, s:b}", "error", e.msg, "usage", usage);
    resp->status = 400;
    resp->body = wire_dump(err);
    resp->body_len = strlen(resp->body);
    json_decref(err);
}
    json_decref(b);
    coord_job_free(j);
}

static json_t *coord_job_json(const coord_job *j, int with_tasks)
{
    const sched_job *sj = j->sj;
    counters cs;
    sched_job_counters(sj, &cs);
    cs.v[CNT_INPUT_FILES] = (int64_t)j->inputs.nfiles;
    cs.v[CNT_INPUT_BYTES] = (int64_t)j->inputs.total_bytes;
    json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:o, s:I, s:I, s:I}", "id", j->id, "job",
                          j->spec.job, "out", j->spec.out, "state",
                          sched_job_done(sj) && !j->finished ? "running" : sched_job_state_name(sj->state),
                          "maps_total", (int)sj->nmaps, "maps_done", (int)sj->maps_done, "reduces_total",
                          (int)sj->nreduces, "reduces_done", (int)sj->reduces_done, "counters",
                          wire_counters_encode(&cs), "submit_ms", (json_int_t)sj->submit_ms, "start_ms",
                          (json_int_t)sj->start_ms, "end_ms", (json_int_t)sj->end_ms);
    counters_free(&cs);
    json_object_set_new(o, "error", sj->error ? json_string(sj->error) : json_null());
    json_object_set_new(o, "version", json_integer((json_int_t)j->version));
    json_object_set_new(o, "weight", json_real(j->weight));
    /* Phase progress: done tasks count 1, running ones their best attempt's progress. */
    double prog[2] = {0, 0};
    for (uint32_t t = 0; t < sj->nmaps + sj->nreduces; t++)
        if (sj->tasks[t].state == SCHED_TASK_SUCCEEDED) prog[sj->tasks[t].phase] += 1;
    for (size_t i = 0; i < sj->nattempts; i++) {
        const sched_attempt *a = &sj->attempts[i];
        if (a->state == SCHED_ATTEMPT_RUNNING && sj->tasks[a->task].state != SCHED_TASK_SUCCEEDED)
            prog[sj->tasks[a->task].phase] += a->progress / (sj->tasks[a->task].running ? sj->tasks[a->task].running : 1);
    }
    json_object_set_new(o, "map_progress", json_real(sj->nmaps ? prog[0] / sj->nmaps : 1));
    sched_summary sum;
    sched_job_summary(sj, &sum);
    json_object_set_new(o, "summary", json_pack("{s:I, s:I, s:I, s:s, s:i, s:i, s:i}", "map_ms", (json_int_t)sum.map_ms,
                                                 "reduce_ms", (json_int_t)sum.reduce_ms, "slowest_attempt_ms",
                                                 (json_int_t)sum.slowest_ms, "slowest_worker", sum.slowest_worker,
                                                 "attempts", (int)sum.attempts, "speculative", (int)sum.speculative,
                                                 "killed", (int)sum.killed));
    json_object_set_new(o, "reduce_progress", json_real(sj->nreduces ? prog[1] / sj->nreduces : 1));
    if (with_tasks) {
        json_t *tasks = json_array();
        for (uint32_t t = 0; t < sj->nmaps + sj->nreduces; t++) {
            const sched_task *tk = &sj->tasks[t];
            json_t *atts = json_array();
            for (size_t i = 0; i < sj->nattempts; i++) {
                const sched_attempt *a = &sj->attempts[i];
                if (a->task != t) continue;
                json_t *ao = json_pack("{s:i, s:s, s:s, s:I, s:I}", "id", (int)a->id, "worker", a->worker, "state",
                                       sched_attempt_state_name(a->state), "start_ms", (json_int_t)a->start_ms,
                                       "end_ms", (json_int_t)a->end_ms);
                json_object_set_new(ao, "error", a->error ? json_string(a->error) : json_null());
                json_object_set_new(ao, "progress", json_real(a->progress));
                json_object_set_new(ao, "speculative", json_boolean(a->copy != SCHED_COPY_NONE));
                if (a->copy != SCHED_COPY_NONE) json_object_set_new(ao, "copy", json_string(sched_copy_name(a->copy)));
                if (a->state == SCHED_ATTEMPT_RUNNING) {
                    counters live;
                    counters_init(&live);
                    memcpy(live.v, a->live, sizeof live.v);
                    json_object_set_new(ao, "counters", wire_counters_encode(&live));
                }
                json_array_append_new(atts, ao);
            }
            json_array_append_new(tasks, json_pack("{s:s, s:i, s:s, s:o}", "phase", tk->phase == SCHED_MAP ? "map" : "reduce",
                                                   "index", (int)tk->index, "state", sched_task_state_name(tk->state),
                                                   "attempts", atts));
        }
        json_object_set_new(o, "tasks", tasks);
    }
    return o;
}

/* GET /v1/jobs/ID?wait_ms=N&version=V holds the answer until the job's version differs from V
 * (something happened) or N ms passed, so `submit` learns of completion at once without
 * polling; with &until=done it holds it until the job is over (or N ms passed). */
static void coord_status(coord *c, const char *only, const http_request *req, http_response *resp)
{
    pthread_mutex_lock(&c->lock);
    const char *ws = req ? http_request_query(req, "wait_ms") : NULL;
    const char *vs = req ? http_request_query(req, "version") : NULL;
    const char *until = req ? http_request_query(req, "until") : NULL;
    int until_done = until && strcmp(until, "done") == 0;
    uint64_t wait = 0, seen = 0;
    if (only && ws && vs && util_parse_u64(ws, 0, 30000, &wait) == 0 && util_parse_u64(vs, 0, UINT64_MAX, &seen) == 0) {
        uint64_t deadline = time_mono_ms() + wait;
        for (;;) {
            coord_job *j = coord_find_job(c, only);
            if (!j || (!until_done && j->version != seen) || j->finished || coord_stop) break;
            uint64_t now = time_mono_ms();
            if (now >= deadline) break;
            coord_wait(c, &c->job_cv, deadline - now);
            if (c->deposed) break;
        }
    }
    if (c->deposed) {
        /* Stepped down while the request waited: the jobs are the next leader's now. */
        pthread_mutex_unlock(&c->lock);
        coord_not_leader(c, resp);
        return;
    }
    json_t *workers = json_array();
    for (size_t i = 0; i < c->nworkers; i++) {
        const coord_worker *w = &c->workers[i];
        json_t *wo = json_pack("{s:s, s:s, s:s, s:i, s:i, s:I}", "name", w->name, "address", w->address, "state",
                               w->state == COORD_WORKER_ALIVE ? "alive" : "dead", "slots", (int)w->slots, "running",
                               (int)coord_running_on(c, w->name), "last_seen_ms_ago",
                               (json_int_t)(time_mono_ms() - w->last_seen));
        json_object_set_new(wo, "health", coord_health_json(c, w->name));
        json_array_append_new(workers, wo);
    }
    json_t *jobs = json_array();
    int found = only == NULL;
    for (coord_job *j = c->jobs; j; j = j->next) {
        if (only && strcmp(only, j->id) != 0) continue;
        found = 1;
        json_array_append_new(jobs, coord_job_json(j, 1));
    }
    pthread_mutex_unlock(&c->lock);
    if (!found) {
        json_decref(workers);
        json_decref(jobs);
        http_respond_error(resp, 404, "no such job");
        return;
    }
    pthread_mutex_lock(&c->lock);
    json_t *members = c->members ? json_deep_copy(c->members) : json_array();
    json_t *me = json_pack("{s:s, s:s, s:I, s:s}", "address", c->advertise, "role", c->deposed ? "follower" : "leader",
                           "epoch", (json_int_t)c->epoch, "state", !c->st ? "none" : c->zk ? "zookeeper" : "journal");
    pthread_mutex_unlock(&c->lock);
    size_t k;
    json_t *m;
    int listed = 0;
    json_array_foreach(members, k, m) {
        const char *a = json_string_value(json_object_get(m, "address"));
        if (a && strcmp(a, c->advertise) == 0) {
            json_object_update(m, me);
            listed = 1;
        }
    }
    if (!listed) json_array_append(members, me);
    json_decref(me);
    json_t *o = json_pack("{s:o, s:o, s:o}", "workers", workers, "jobs", jobs, "coordinators", members);
    resp->status = 200;
    resp->body = wire_dump(o);
    resp->body_len = strlen(resp->body);
    json_decref(o);
}

static void coord_cancel(coord *c, const char *id, http_response *resp)
{
    pthread_mutex_lock(&c->lock);
    coord_job *j = coord_find_job(c, id);
    if (!j) {
        http_respond_error(resp, 404, "no such job");
    } else {
        if (!sched_job_done(j->sj))
            coord_event(c, j, json_pack("{s:s, s:s}", "t", "cancel", "e", "cancelled by request"));
        coord_job_check(c, j);
        struct err e = {0};
        if (coord_sync(c, &e) != 0) http_respond_error(resp, 503, "the coordinator cannot write its state: try again");
        else http_respond_json(resp, 200, "{\"id\":\"%s\",\"state\":\"%s\"}", j->id, sched_job_state_name(j->sj->state));
    }
    pthread_mutex_unlock(&c->lock);
}

/* The per-job and per-worker series of coord_metrics(), with the lock held. Their labels are
 * bounded: `worker` by the workers this coordinator knows, `job_id` (not `job`, Prometheus' own
 * label for the scrape job) by the unfinished jobs and those finished in the last
 * COORD_METRICS_FINISHED_MS, all among the jobs `tally status` lists. */
static void coord_metrics_detail(coord *c, struct buf *b)
{
    static const char *phases[] = {"map", "reduce"};
    uint64_t now = time_mono_ms();
    buf_appendf(b, "# HELP tally_job_tasks Tasks of a job, by phase and state (unfinished jobs, and finished ones for "
                   "5 minutes).\n# TYPE tally_job_tasks gauge\n");
    for (coord_job *j = c->jobs; j; j = j->next) {
        if (j->finished && now - j->finished_mono > COORD_METRICS_FINISHED_MS) continue;
        uint64_t n[2][4] = {{0}};
        for (uint32_t t = 0; t < j->sj->nmaps + j->sj->nreduces; t++) n[j->sj->tasks[t].phase][j->sj->tasks[t].state]++;
        for (int p = 0; p < 2; p++)
            for (int s = 0; s < 4; s++)
                buf_appendf(b, "tally_job_tasks{job_id=\"%s\",phase=\"%s\",state=\"%s\"} %" PRIu64 "\n", j->id,
                            phases[p], sched_task_state_name((sched_task_state)s), n[p][s]);
    }
    uint64_t (*running)[2] = xcalloc(c->nworkers ? c->nworkers : 1, sizeof *running);
    for (coord_job *j = c->jobs; j; j = j->next)
        for (size_t i = 0; !sched_job_done(j->sj) && i < j->sj->nattempts; i++) {
            const sched_attempt *a = &j->sj->attempts[i];
            const coord_worker *w = a->state == SCHED_ATTEMPT_RUNNING ? coord_find_worker(c, a->worker) : NULL;
            if (w) running[w - c->workers][j->sj->tasks[a->task].phase]++;
        }
    buf_appendf(b, "# HELP tally_attempts_running Attempts running now, by worker and phase.\n"
                   "# TYPE tally_attempts_running gauge\n");
    for (size_t i = 0; i < c->nworkers; i++)
        for (int p = 0; p < 2; p++)
            buf_appendf(b, "tally_attempts_running{worker=\"%s\",phase=\"%s\"} %" PRIu64 "\n", c->workers[i].name,
                        phases[p], running[i][p]);
    free(running);
    buf_appendf(b, "# HELP tally_worker_attempt_duration_seconds Duration of the worker's successful attempts.\n"
                   "# TYPE tally_worker_attempt_duration_seconds histogram\n");
    char labels[128];
    for (size_t i = 0; i < c->nworkers; i++)
        for (int p = 0; p < 2; p++) {
            snprintf(labels, sizeof labels, "worker=\"%s\",phase=\"%s\"", c->workers[i].name, phases[p]);
            metrics_hist_write(b, "tally_worker_attempt_duration_seconds", labels, &c->workers[i].attempt_secs[p],
                             coord_buckets, COORD_NBUCKETS);
        }
    buf_appendf(b, "# HELP tally_heartbeat_gap_seconds Time from the answer to a worker's heartbeat to its next one.\n"
                   "# TYPE tally_heartbeat_gap_seconds histogram\n");
    for (size_t i = 0; i < c->nworkers; i++) {
        snprintf(labels, sizeof labels, "worker=\"%s\"", c->workers[i].name);
        metrics_hist_write(b, "tally_heartbeat_gap_seconds", labels, &c->workers[i].heartbeat_gap, coord_hb_buckets,
                         COORD_HB_NBUCKETS);
    }
    buf_appendf(b, "# HELP tally_worker_heartbeat_age_seconds Time since a live worker's last heartbeat arrived (it is "
                   "declared dead at --worker-timeout-ms).\n# TYPE tally_worker_heartbeat_age_seconds gauge\n");
    for (size_t i = 0; i < c->nworkers; i++)
        if (c->workers[i].state == COORD_WORKER_ALIVE)
            buf_appendf(b, "tally_worker_heartbeat_age_seconds{worker=\"%s\"} %.3f\n", c->workers[i].name,
                        (double)(now - c->workers[i].last_seen) / 1000.0);
}

static void coord_metrics(coord *c, http_response *resp)
{
    static const char *phases[] = {"map", "reduce"};
    struct buf b = {0};
    pthread_mutex_lock(&c->lock);
    uint64_t by_state[5] = {0}, tasks[2][4] = {{0}}, alive = 0, dead = 0;
    for (coord_job *j = c->jobs; j; j = j->next) {
        if (!j->finished) by_state[sched_job_done(j->sj) ? SCHED_JOB_RUNNING : j->sj->state]++;
        if (j->finished) continue;
        for (uint32_t t = 0; t < j->sj->nmaps + j->sj->nreduces; t++) tasks[j->sj->tasks[t].phase][j->sj->tasks[t].state]++;
    }
    for (size_t i = 0; i < c->nworkers; i++) {
        if (c->workers[i].state == COORD_WORKER_ALIVE) alive++;
        else dead++;
    }
    buf_appendf(&b, "# HELP tally_jobs Jobs not yet finished, by state.\n# TYPE tally_jobs gauge\n");
    buf_appendf(&b, "tally_jobs{state=\"queued\"} %" PRIu64 "\ntally_jobs{state=\"running\"} %" PRIu64 "\n",
                by_state[SCHED_JOB_QUEUED], by_state[SCHED_JOB_RUNNING]);
    buf_appendf(&b, "# HELP tally_jobs_finished_total Jobs finished, by outcome.\n# TYPE tally_jobs_finished_total counter\n");
    for (int s = SCHED_JOB_SUCCEEDED; s <= SCHED_JOB_CANCELLED; s++)
        buf_appendf(&b, "tally_jobs_finished_total{state=\"%s\"} %" PRIu64 "\n", sched_job_state_name((sched_job_state)s),
                    c->jobs_total[s]);
    buf_appendf(&b, "# HELP tally_tasks Tasks of unfinished jobs, by phase and state.\n# TYPE tally_tasks gauge\n");
    for (int p = 0; p < 2; p++)
        for (int s = 0; s < 4; s++)
            buf_appendf(&b, "tally_tasks{phase=\"%s\",state=\"%s\"} %" PRIu64 "\n", phases[p],
                        sched_task_state_name((sched_task_state)s), tasks[p][s]);
    buf_appendf(&b, "# HELP tally_attempts_total Task attempts ended, by phase and outcome.\n# TYPE tally_attempts_total counter\n");
    for (int p = 0; p < 2; p++)
        for (int s = SCHED_ATTEMPT_SUCCEEDED; s <= SCHED_ATTEMPT_KILLED; s++)
            buf_appendf(&b, "tally_attempts_total{phase=\"%s\",outcome=\"%s\"} %" PRIu64 "\n", phases[p],
                        sched_attempt_state_name((sched_attempt_state)s), c->attempts_total[p][s]);
    buf_appendf(&b, "# HELP tally_task_duration_seconds Duration of successful task attempts.\n# TYPE tally_task_duration_seconds histogram\n");
    for (int p = 0; p < 2; p++) {
        char labels[32];
        snprintf(labels, sizeof labels, "phase=\"%s\"", phases[p]);
        metrics_hist_write(&b, "tally_task_duration_seconds", labels, &c->task_secs[p], coord_buckets, COORD_NBUCKETS);
    }
    buf_appendf(&b, "# HELP tally_workers Known workers, by state.\n# TYPE tally_workers gauge\n"
                    "tally_workers{state=\"alive\"} %" PRIu64 "\ntally_workers{state=\"dead\"} %" PRIu64 "\n", alive, dead);
    buf_appendf(&b, "# HELP tally_workers_lost_total Workers declared dead or restarted.\n# TYPE tally_workers_lost_total counter\n"
                    "tally_workers_lost_total %" PRIu64 "\n", c->workers_lost);
    buf_appendf(&b, "# HELP tally_heartbeat_max_gap_seconds Longest a live worker took to send a heartbeat after its previous one was answered.\n"
                    "# TYPE tally_heartbeat_max_gap_seconds gauge\ntally_heartbeat_max_gap_seconds %.3f\n",
                (double)c->max_heartbeat_gap / 1000.0);
    buf_appendf(&b, "# HELP tally_shuffle_fetch_failures_total Reducer reports of map outputs they could not fetch.\n"
                    "# TYPE tally_shuffle_fetch_failures_total counter\ntally_shuffle_fetch_failures_total %" PRIu64 "\n",
                c->fetch_failures);
    buf_appendf(&b, "# HELP tally_map_outputs_inline_total Map outputs that came with their reports (--inline-map-output), "
                    "by what became of them.\n# TYPE tally_map_outputs_inline_total counter\n"
                    "tally_map_outputs_inline_total{event=\"held\"} %" PRIu64 "\n"
                    "tally_map_outputs_inline_total{event=\"over_budget\"} %" PRIu64 "\n"
                    "tally_map_outputs_inline_total{event=\"kept_on_loss\"} %" PRIu64 "\n",
                c->inline_held, c->inline_over, c->inline_kept);
    buf_appendf(&b, "# HELP tally_shuffle_bytes_total Bytes shuffled by succeeded jobs.\n# TYPE tally_shuffle_bytes_total counter\n"
                    "tally_shuffle_bytes_total %" PRId64 "\n", c->shuffle_bytes);
    buf_appendf(&b, "# HELP tally_records_total Records read and written by succeeded jobs.\n# TYPE tally_records_total counter\n"
                    "tally_records_total{direction=\"in\"} %" PRId64 "\ntally_records_total{direction=\"out\"} %" PRId64 "\n",
                c->records_in, c->records_out);
    buf_appendf(&b, "# HELP tally_coordinator_leader 1 while this coordinator leads.\n# TYPE tally_coordinator_leader gauge\n"
                    "tally_coordinator_leader %d\n", !c->deposed);
    buf_appendf(&b, "# HELP tally_coordinator_epoch The epoch of this coordinator's term.\n# TYPE tally_coordinator_epoch gauge\n"
                    "tally_coordinator_epoch %" PRIu64 "\n", c->epoch);
    buf_appendf(&b, "# HELP tally_leader_elections_total Times this coordinator became the leader.\n"
                    "# TYPE tally_leader_elections_total counter\ntally_leader_elections_total %" PRIu64 "\n", c->elections);
    buf_appendf(&b, "# HELP tally_leader_seconds Time since this coordinator became the leader (0 if it is not).\n"
                    "# TYPE tally_leader_seconds gauge\ntally_leader_seconds %.3f\n",
                c->deposed ? 0.0 : (double)(time_mono_ms() - c->leader_since) / 1000.0);
    buf_appendf(&b, "# HELP tally_jobs_resumed_total Unfinished jobs taken over from an earlier coordinator.\n"
                    "# TYPE tally_jobs_resumed_total counter\ntally_jobs_resumed_total %" PRIu64 "\n", c->jobs_resumed);
    buf_appendf(&b, "# HELP tally_attempts_adopted_total Running attempts taken over from an earlier coordinator "
                    "(not re-run).\n# TYPE tally_attempts_adopted_total counter\ntally_attempts_adopted_total %" PRIu64 "\n",
                c->attempts_adopted);
    buf_appendf(&b, "# HELP tally_speculative_attempts_total Copies of running attempts, by event (launched; won: "
                    "committed; killed: lost the race or were stopped) and reason (straggler: speculative; "
                    "migration: off a worker on probation).\n# TYPE tally_speculative_attempts_total counter\n");
    for (int r = SCHED_COPY_STRAGGLER; r <= SCHED_COPY_MIGRATE; r++)
        buf_appendf(&b, "tally_speculative_attempts_total{event=\"launched\",reason=\"%s\"} %" PRIu64 "\n"
                        "tally_speculative_attempts_total{event=\"won\",reason=\"%s\"} %" PRIu64 "\n"
                        "tally_speculative_attempts_total{event=\"killed\",reason=\"%s\"} %" PRIu64 "\n",
                    sched_copy_name((sched_copy)r), c->spec_launched[r], sched_copy_name((sched_copy)r), c->spec_won[r],
                    sched_copy_name((sched_copy)r), c->spec_lost[r]);
    buf_appendf(&b, "# HELP tally_migrations_total Attempts copied off a worker on probation.\n"
                    "# TYPE tally_migrations_total counter\ntally_migrations_total %" PRIu64 "\n",
                c->spec_launched[SCHED_COPY_MIGRATE]);
    buf_appendf(&b, "# HELP tally_probation_total Probations begun (enter) and ended (exit).\n"
                    "# TYPE tally_probation_total counter\ntally_probation_total{event=\"enter\"} %" PRIu64 "\n"
                    "tally_probation_total{event=\"exit\"} %" PRIu64 "\n", c->health.entries, c->health.exits);
    buf_appendf(&b, "# HELP tally_probes_total Probe attempts sent to workers on probation.\n"
                    "# TYPE tally_probes_total counter\ntally_probes_total %" PRIu64 "\n", c->probes);
    buf_appendf(&b, "# HELP tally_worker_slowness The worker's p90 attempt cost over the other workers' (1 = typical; "
                    "0 = not judged yet).\n# TYPE tally_worker_slowness gauge\n");
    for (size_t i = 0; i < c->health.nworkers; i++)
        buf_appendf(&b, "tally_worker_slowness{worker=\"%s\"} %.3f\n", c->health.workers[i].name, c->health.workers[i].score);
    buf_appendf(&b, "# HELP tally_worker_probation 1 while the worker is on probation.\n# TYPE tally_worker_probation gauge\n");
    for (size_t i = 0; i < c->health.nworkers; i++)
        buf_appendf(&b, "tally_worker_probation{worker=\"%s\"} %d\n", c->health.workers[i].name,
                    c->health.workers[i].state == HEALTH_PROBATION);
    buf_appendf(&b, "# HELP tally_worker_pressure Pressure stall information the worker reports (PSI some avg10, "
                    "percent).\n# TYPE tally_worker_pressure gauge\n");
    for (size_t i = 0; i < c->health.nworkers; i++) {
        const health_worker *h = &c->health.workers[i];
        static const char *res[] = {"cpu", "io", "memory"};
        const double v[] = {h->psi_cpu, h->psi_io, h->psi_memory};
        for (int k = 0; k < 3; k++)
            if (v[k] >= 0) buf_appendf(&b, "tally_worker_pressure{worker=\"%s\",resource=\"%s\"} %.2f\n", h->name, res[k], v[k]);
    }
    buf_appendf(&b, "# HELP tally_worker_load1 The worker's 1-minute load average as it reports it.\n"
                    "# TYPE tally_worker_load1 gauge\n");
    for (size_t i = 0; i < c->health.nworkers; i++)
        if (c->health.workers[i].load1 >= 0)
            buf_appendf(&b, "tally_worker_load1{worker=\"%s\"} %.2f\n", c->health.workers[i].name, c->health.workers[i].load1);
    coord_metrics_detail(c, &b);
    if (c->st) state_metrics(c->st, &b);
    pthread_mutex_unlock(&c->lock);
    procmetrics_write(&b);
    http_respond_metrics(resp, &b, "coordinator");
}

/* A coordinator that is not the leader answers every API call with 421 and where the leader
 * is, if it knows: {"error": "...", "leader": "HOST:PORT"} (clients and workers follow it). */
static int coord_not_leader(coord *c, http_response *resp)
{
    pthread_mutex_lock(&c->lock);
    int deposed = c->deposed;
    pthread_mutex_unlock(&c->lock);
    if (!deposed) return 0;
    char addr[160];
    pthread_mutex_lock(&c->lock);
    snprintf(addr, sizeof addr, "%s", c->leader_hint);
    pthread_mutex_unlock(&c->lock);
    json_t *o = json_pack("{s:s}", "error", addr[0] ? "not the leader: ask the leader" : "not the leader, and no leader is known now: try again shortly");
    if (addr[0] && strcmp(addr, c->advertise) != 0) json_object_set_new(o, "leader", json_string(addr));
    resp->status = 421;
    resp->body = wire_dump(o);
    resp->body_len = strlen(resp->body);
    json_decref(o);
    return 1;
}

/* GET /readyz: 200 while this coordinator leads (and can schedule), 503 otherwise, so that a
 * load balancer or a Kubernetes Service sends clients to the leader only. No token needed,
 * no data given. */
static void coord_readyz(coord *c, http_response *resp)
{
    pthread_mutex_lock(&c->lock);
    int deposed = c->deposed;
    pthread_mutex_unlock(&c->lock);
    if (deposed) http_respond_json(resp, 503, "{\"ready\":false,\"why\":\"not the leader\"}");
    else http_respond_json(resp, 200, "{\"ready\":true}");
}

static void coord_http(void *arg, const http_request *req, http_response *resp)
{
    coord *c = arg;
    const char *m = req->method, *p = req->path;
    if (!req->authorized) {
        /* The public paths only (net/http.h): probes and the status page's static files. */
        if (strcmp(p, "/healthz") == 0) http_respond_json(resp, 200, "{\"ok\":true}");
        else if (strcmp(p, "/readyz") == 0) coord_readyz(c, resp);
        else if (!statuspage_serve(p, resp)) http_respond_error(resp, 401, "missing or wrong bearer token");
        return;
    }
    if (strcmp(m, "GET") == 0 && statuspage_serve(p, resp)) return;
    if (strcmp(m, "GET") == 0 && strcmp(p, "/readyz") == 0) {
        coord_readyz(c, resp);
        return;
    }
    if (strcmp(p, "/metrics") != 0 && strcmp(p, "/healthz") != 0 && coord_not_leader(c, resp)) return;
    if (strcmp(m, "POST") == 0 && strcmp(p, "/v1/heartbeat") == 0) coord_heartbeat(c, req, resp);
    else if (strcmp(m, "POST") == 0 && strcmp(p, "/v1/report") == 0) coord_report(c, req, resp);
    else if (strcmp(m, "POST") == 0 && strcmp(p, "/v1/jobs") == 0) coord_submit(c, req, resp);
    else if (strcmp(m, "GET") == 0 && strcmp(p, "/v1/status") == 0) coord_status(c, NULL, NULL, resp);
    else if (strcmp(m, "POST") == 0 && strcmp(p, "/v1/fetch-failure") == 0) coord_fetch_failure(c, req, resp);
    else if (strcmp(m, "GET") == 0 && strncmp(p, "/v1/jobs/", 9) == 0 && !strchr(p + 9, '/')) coord_status(c, p + 9, req, resp);
    else if (strcmp(m, "GET") == 0 && strncmp(p, "/v1/jobs/", 9) == 0 && strlen(p) > 14 && strlen(p) < 80 &&
             strcmp(p + strlen(p) - 5, "/maps") == 0) {
        char id[80];
        snprintf(id, sizeof id, "%.*s", (int)(strlen(p) - 14), p + 9);
        coord_maps(c, id, resp);
    }
    else if (strcmp(m, "POST") == 0 && strncmp(p, "/v1/jobs/", 9) == 0 && strlen(p) > 16 &&
             strcmp(p + strlen(p) - 7, "/cancel") == 0) {
        char id[64];
        snprintf(id, sizeof id, "%.*s", (int)(strlen(p) - 16), p + 9);
        coord_cancel(c, id, resp);
    } else if (strcmp(m, "GET") == 0 && strcmp(p, "/metrics") == 0) coord_metrics(c, resp);
    else if (strcmp(m, "GET") == 0 && strcmp(p, "/healthz") == 0) http_respond_json(resp, 200, "{\"ok\":true}");
    else http_respond_error(resp, 404, "no such endpoint");
}

/* ---- Taking over: replaying the state, resuming the jobs ---------------------------------- */

static int coord_replay_job(coord *c, const json_t *rec, struct err *e)
{
    const char *id = coord_rec_str(rec, "j");
    if (!wire_valid_name(id)) return err_set(e, -EBADMSG, "a job record without a valid job id");
    if (coord_find_job(c, id)) return err_set(e, -EBADMSG, "job %s is submitted twice", id);
    coord_job *j = xcalloc(1, sizeof *j);
    snprintf(j->id, sizeof j->id, "%s", id);
    int64_t ms = 0;
    int rc = coord_rec_int(rec, "ms", 0, INT64_MAX, &ms, e);
    if (rc == 0) rc = wire_jobspec_decode(json_object_get(rec, "spec"), &j->spec, e);
    if (rc == 0) rc = wire_desc_decode(json_object_get(rec, "desc"), &j->desc, e);
    if (rc == 0) rc = wire_plan_decode(json_object_get(rec, "plan"), &j->inputs, e);
    if (rc) {
        err_prefix(e, "job %s: ", id);
        coord_job_free(j);
        return rc;
    }
    j->spec_json = wire_jobspec_encode(&j->spec);
    j->sig = coord_job_sig(j);
    j->weight = 1;
    json_t *wv = json_object_get(rec, "weight");
    if (json_is_number(wv) && json_number_value(wv) >= 0.01 && json_number_value(wv) <= 1000) j->weight = json_number_value(wv);
    j->created = json_is_true(json_object_get(rec, "created"));
    j->sj = sched_job_new((uint32_t)j->inputs.nsplits, j->spec.reduces, j->spec.max_attempts, (uint64_t)ms);
    j->sj->max_skipped_ratio = j->spec.max_skipped_ratio;
    sched_job_start(j->sj, (uint64_t)ms);
    /* Keep new ids after the replayed ones ("jSECONDS-N"). */
    const char *dash = strrchr(id, '-');
    uint64_t n = 0;
    if (dash && util_parse_u64(dash + 1, 0, UINT64_MAX, &n) == 0 && n > c->next_id) c->next_id = n;
    coord_job **p = &c->jobs;
    while (*p) p = &(*p)->next;
    *p = j;
    return 0;
}

static int coord_replay_worker(coord *c, const json_t *rec, struct err *e)
{
    const char *name = coord_rec_str(rec, "name"), *inc = coord_rec_str(rec, "inc"), *addr = coord_rec_str(rec, "addr");
    int64_t slots = 0;
    if (!wire_valid_name(name) || !*inc || coord_rec_int(rec, "slots", 1, 1 << 16, &slots, e))
        return err_set(e, -EBADMSG, "a worker record without a valid name, incarnation or slots");
    coord_worker *w = coord_find_worker(c, name);
    if (!w) {
        if (c->nworkers == COORD_MAX_WORKERS) return err_set(e, -EBADMSG, "more than %d workers", COORD_MAX_WORKERS);
        w = &c->workers[c->nworkers++];
        memset(w, 0, sizeof *w);
        snprintf(w->name, sizeof w->name, "%s", name);
    }
    snprintf(w->incarnation, sizeof w->incarnation, "%s", inc);
    snprintf(w->address, sizeof w->address, "%s", addr);
    w->slots = (uint32_t)slots;
    w->state = COORD_WORKER_ALIVE;
    return 0;
}

/* Replays an attempt start: the scheduler, in the same state as when it chose, must choose the
 * same task again (the same FIFO), under the same id. */
static int coord_replay_start(coord_job *j, const json_t *rec, struct err *e)
{
    sched_job *sj = j->sj;
    int64_t a = 0, task = 0, ms = 0;
    const char *w = coord_rec_str(rec, "w");
    int rc = coord_rec_int(rec, "a", 0, UINT32_MAX, &a, e);
    if (rc == 0) rc = coord_rec_int(rec, "task", 0, (int64_t)sj->nmaps + sj->nreduces - 1, &task, e);
    if (rc == 0) rc = coord_rec_int(rec, "ms", 0, INT64_MAX, &ms, e);
    if (rc) return rc;
    int64_t copy = 0;
    if (json_object_get(rec, "copy") && (rc = coord_rec_int(rec, "copy", SCHED_COPY_STRAGGLER, SCHED_COPY_MIGRATE, &copy, e)))
        return rc;
    int64_t got = copy ? sched_start_copy(sj, (uint32_t)task, w, (sched_copy)copy, (uint64_t)ms)
                       : sched_assign(sj, w, 1u << sj->tasks[task].phase, (uint64_t)ms);
    if (got != a || sj->attempts[got].task != (uint32_t)task)
        return err_set(e, -EBADMSG, "attempt a%lld of task %lld does not replay (the scheduler %s): the records are "
                                    "out of order or from another version", (long long)a, (long long)task,
                       got < 0 ? "had nothing to run" : "chose another task or id");
    sj->attempts[got].tag = 0; /* restored: adopted once its worker lists it (coord_heartbeat) */
    return 0;
}

static int coord_replay(void *arg, const json_t *rec, const char *where, struct err *e)
{
    coord *c = arg;
    const char *t = coord_rec_str(rec, "t"), *jid = coord_rec_str(rec, "j");
    int rc;
    if (strcmp(t, "job") == 0) {
        rc = coord_replay_job(c, rec, e);
    } else if (strcmp(t, "worker") == 0) {
        rc = coord_replay_worker(c, rec, e);
    } else {
        coord_job *j = coord_find_job(c, jid);
        if (!j) {
            rc = err_set(e, -EBADMSG, "a '%s' record of job '%s', which was never submitted", t, jid);
        } else if (strcmp(t, "start") == 0) {
            rc = coord_replay_start(j, rec, e);
        } else if (strcmp(t, "end") == 0) {
            const char *st = coord_rec_str(rec, "state");
            int k = SCHED_JOB_SUCCEEDED;
            while (k <= SCHED_JOB_CANCELLED && strcmp(st, sched_job_state_name((sched_job_state)k)) != 0) k++;
            if (k > SCHED_JOB_CANCELLED) {
                rc = err_set(e, -EBADMSG, "job %s ends in an unknown state '%s'", jid, st);
            } else {
                /* The job's own end may differ from the scheduler's (its commit failed). */
                if (!sched_job_done(j->sj)) sched_job_fail(j->sj, "ended", j->sj->submit_ms);
                j->sj->state = (sched_job_state)k;
                free(j->sj->error);
                const char *why = json_string_value(json_object_get(rec, "e"));
                j->sj->error = why ? xstrdup(why) : NULL;
                j->finished = 1;
                j->finished_mono = time_mono_ms();
                rc = 0;
            }
        } else {
            rc = coord_apply(j, rec, e);
        }
    }
    if (rc) err_prefix(e, "%s: ", where);
    return rc;
}

/* A resumed job takes over its OUT claim (output_adopt). Returns 0 when it holds it or the job
 * is over, -EAGAIN while the previous coordinator still holds it. */
static int coord_job_adopt(coord *c, coord_job *j)
{
    if (j->adopted) return 0;
    struct err e = {0};
    char *what = xasprintf("coordinator job=%s resumable", j->id);
    char *owner = claim_owner_text(what);
    free(what);
    int rc = output_adopt(&j->out, j->spec.out, owner, j->created, &e);
    free(owner);
    if (rc == -EAGAIN) {
        if (!j->adopt_warned++) log_warn("job=%s: waiting for OUT: %s", j->id, e.msg);
        return rc;
    }
    j->adopted = 1;
    if (rc == 1) {
        /* Committed by the coordinator before this one, which died before journaling it. */
        j->out_committed = 1;
        if (!sched_job_done(j->sj)) {
            log_warn("job=%s: %s has _SUCCESS but the job's tasks are not all committed here", j->id, j->spec.out);
            coord_event(c, j, json_pack("{s:s, s:s}", "t", "abort", "e",
                                        "the output was committed by a coordinator whose last records were lost"));
        }
    } else if (rc < 0) {
        log_error("job=%s cannot go on: %s", j->id, e.msg);
        char *why = xasprintf("resuming after a coordinator change: %s", e.msg);
        coord_event(c, j, json_pack("{s:s, s:s}", "t", "abort", "e", why));
        free(why);
    }
    coord_job_check(c, j);
    return 0;
}

/* After the replay: every job that is not over goes on. Reduce tasks committed by the previous
 * coordinator get their part renamed if it died between journaling and renaming (the rename
 * is idempotent); attempts that were running stay running until their worker's first
 * heartbeat says whether it still has them; the known workers count as alive until they have
 * been silent for --worker-timeout-ms from now. */
static void coord_resume(coord *c)
{
    uint64_t now = time_mono_ms();
    for (size_t i = 0; i < c->nworkers; i++) {
        c->workers[i].last_seen = now;
        c->workers[i].heartbeats = 0;
    }
    for (coord_job *j = c->jobs; j; j = j->next) {
        if (j->finished) continue;
        sched_job *sj = j->sj;
        uint32_t running = 0;
        for (size_t i = 0; i < sj->nattempts; i++) running += sj->attempts[i].state == SCHED_ATTEMPT_RUNNING;
        for (uint32_t r = 0; r < sj->nreduces && !sched_job_done(sj); r++) {
            const sched_task *t = &sj->tasks[sj->nmaps + r];
            struct err e = {0};
            if (t->committed >= 0 && output_commit_task(j->spec.out, j->id, (uint32_t)t->committed, r, &e) != 0) {
                char *why = xasprintf("reduce task %u was committed but its part is gone: %s", r, e.msg);
                coord_event(c, j, json_pack("{s:s, s:s}", "t", "abort", "e", why));
                free(why);
            }
        }
        c->jobs_resumed++;
        log_info("job=%s resumed: %u/%u maps and %u/%u reduces committed (not run again), %u attempt%s running "
                 "(adopted when their workers confirm them)", j->id, sj->maps_done, sj->nmaps, sj->reduces_done,
                 sj->nreduces, running, running == 1 ? "" : "s");
        coord_job_adopt(c, j);
    }
    coord_trim_history(c);
}

/* ---- The periodic tick: every timeout and retry is driven from here ---------------------- */

/* Reducers wait in their slots for lost map outputs to be re-run. If waiting reducers and
 * other work hold every slot while such a map is pending, the map can never run: kill the
 * youngest waiting reduce attempt (it lost the least; killed attempts are not failures). The
 * freed slot goes to the map (coord_assign() serves those maps first). At most one per job
 * per heartbeat interval, so that the slot is taken before anything else is killed. */
static int coord_preempt(coord *c, coord_job *j, uint64_t now)
{
    sched_job *sj = j->sj;
    if (j->finished || sched_job_done(sj) || sj->blocked == 0 || now - j->preempt_ms < c->heartbeat_ms) return 0;
    uint32_t pending = 0, running_maps = 0;
    for (uint32_t m = 0; m < sj->nmaps; m++) {
        if (sj->tasks[m].state == SCHED_TASK_PENDING) pending++;
        running_maps += sj->tasks[m].running;
    }
    if (pending == 0 || running_maps > 0) return 0;
    for (size_t i = 0; i < c->nworkers; i++)
        if (c->workers[i].state == COORD_WORKER_ALIVE && coord_running_on(c, c->workers[i].name) < c->workers[i].slots)
            return 0;
    sched_attempt *victim = NULL;
    for (size_t i = 0; i < sj->nattempts; i++) {
        sched_attempt *a = &sj->attempts[i];
        if (a->state == SCHED_ATTEMPT_RUNNING && a->blocked_on >= 0 && (!victim || a->start_ms >= victim->start_ms))
            victim = a;
    }
    if (!victim) return 0;
    log_warn("job=%s attempt=a%u worker=%s: waiting reduce preempted, its slot is needed to re-run map %" PRId64,
             j->id, victim->id, victim->worker, victim->blocked_on);
    coord_event(c, j, coord_ev("kill", victim->id, "preempted: its slot was needed to re-run a lost map"));
    coord_count_attempt(c, j, victim->id);
    j->preempt_ms = now;
    j->version++;
    return 1;
}

static void coord_free_jobs(coord *c)
{
    while (c->jobs) {
        coord_job *j = c->jobs;
        c->jobs = j->next;
        coord_job_free(j);
    }
}

/* Called with the lock held: from now on this coordinator decides nothing (every API call
 * is answered 421); the main loop then drops its jobs (their OUT claims are dropped, never
 * rolled back: the next leader goes on with them) and campaigns again. */
static void coord_step_down(coord *c, const char *why)
{
    if (c->deposed) return;
    log_error("stepping down (epoch %" PRIu64 "): %s", c->epoch, why);
    c->deposed = 1;
    c->reset = 1;
    pthread_cond_broadcast(&c->work_cv);
    pthread_cond_broadcast(&c->job_cv);
}

/* Becomes the leader: replays the state, resumes the jobs. Returns non-zero if the state
 * cannot be loaded (the error names what is wrong). */
static int coord_take_over(coord *c, struct err *e)
{
    pthread_mutex_lock(&c->lock);
    uint64_t t0 = time_mono_ms();
    c->epoch = c->st->epoch;
    uint64_t resumed_before = c->jobs_resumed;
    int rc = state_load(c->st, coord_replay, c, e);
    if (rc == 0) {
        coord_resume(c);
        rc = coord_sync(c, e);
    }
    if (rc == 0) {
        c->deposed = 0;
        c->elections++;
        c->leader_since = time_mono_ms();
        log_info("leader now (epoch %" PRIu64 "), state loaded in %" PRIu64 " ms: %" PRIu64 " unfinished job%s resumed, "
                 "%zu workers known", c->epoch, time_mono_ms() - t0, c->jobs_resumed - resumed_before,
                 c->jobs_resumed - resumed_before == 1 ? "" : "s",
                 c->nworkers);
    }
    pthread_mutex_unlock(&c->lock);
    return rc;
}

static void coord_tick(coord *c)
{
    pthread_mutex_lock(&c->lock);
    if (c->deposed) {
        pthread_mutex_unlock(&c->lock);
        return;
    }
    uint64_t now = time_mono_ms();
    int changed = 0;
    coord_trim_history(c);
    for (size_t i = 0; i < c->nworkers; i++) {
        coord_worker *w = &c->workers[i];
        if (w->state == COORD_WORKER_ALIVE && now - w->last_seen > c->timeout_ms) {
            log_warn("worker=%s silent for %" PRIu64 " ms: declared dead", w->name, now - w->last_seen);
            w->state = COORD_WORKER_DEAD;
            coord_worker_lost(c, w, "worker lost (heartbeat timeout)");
            changed = 1;
        }
    }
    for (coord_job *j = c->jobs; j; j = j->next) {
        if (!j->adopted && coord_job_adopt(c, j) == 0) changed = 1;
        coord_job_check(c, j);
        changed |= coord_preempt(c, j, now);
    }
    coord_health_check(c, now, 0);
    /* Copies depend on time passing, not only on events: let the workers waiting for work
     * look again while anything runs. */
    struct err e = {0};
    coord_sync(c, &e);
    if (changed || coord_copy_possible(c, time_wall_ms())) pthread_cond_broadcast(&c->work_cv);
    pthread_mutex_unlock(&c->lock);
}

/* The tail-latency settings (exec/health.h's slow rule, sched_spec's speculation) into c. */
static void coord_set_tail(coord *c, const coord_config *cfg)
{
    health_rule r = {.window_ms = 600000, .min_samples = 1, .probes_ok = 3};
    r.enabled = cfg->probation;
    r.factor = cfg->slow_factor;
    r.checks = cfg->slow_checks;
    r.window = cfg->slow_window;
    r.floor_ms = cfg->slow_floor_ms;
    r.min_probation_ms = cfg->probation_ms;
    r.probe_every_ms = cfg->probe_every_ms;
    health_init(&c->health, &r);
    c->speculation = cfg->speculation;
    c->spec_cap = cfg->speculation_cap;
    c->check_ms = cfg->slow_check_ms;
    uint64_t min_ms = cfg->speculation_min_ms;
    c->spec = (sched_spec){.factor = cfg->speculation_factor, .min_ms = min_ms, .min_gain_ms = min_ms / 2,
                           .slowness = coord_spec_slowness, .probation = coord_spec_probation,
                           .history_ms = coord_spec_history, .arg = c};
}

int coord_run(const coord_config *cfg)
{
    struct err e = {0};
    coord *c = xcalloc(1, sizeof *c);
    c->heartbeat_ms = cfg->heartbeat_ms;
    c->timeout_ms = cfg->worker_timeout_ms;
    c->inline_max = cfg->inline_map_output;
    c->fail_after = cfg->fail_after_tasks;
    coord_set_tail(c, cfg);
    const char *host = cfg->host;
    log_set_process("coordinator");
    if (http_read_token_file(cfg->token_file, &c->token, &e) != 0) {
        fprintf(stderr, "tally coordinator: %s\n", e.msg);
        free(c);
        return EXITCODE_FAILED;
    }
    pthread_mutex_init(&c->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->work_cv, &ca);
    pthread_cond_init(&c->job_cv, &ca);
    pthread_condattr_destroy(&ca);
    char exe[4096];
    ssize_t exe_len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[exe_len > 0 ? exe_len : 0] = '\0';
    const char *tmp = getenv("TMPDIR");
    char *owner = claim_owner_text("coordinator");
    claim_reap_stale(tmp && *tmp ? tmp : "/tmp", "tally-coordinator-");
    int prc = exe_len > 0 ? claim_fresh(&c->scratch, tmp && *tmp ? tmp : "/tmp", "tally-coordinator-", owner, &e)
                          : err_set(&e, -ENOENT, "cannot find the tally binary to start executors");
    free(owner);
    if (prc == 0) prc = execpool_new(&c->describer, exe, c->scratch.path, 1, cfg->log_level, &e);
    if (prc == 0) execpool_set_limit(c->describer, COORD_DESCRIBE_MS);
    if (prc != 0) {
        fprintf(stderr, "tally coordinator: %s\n", e.msg);
        claim_release(&c->scratch);
        free(c->token);
        free(c);
        return EXITCODE_FAILED;
    }
    if (prc == 0 && cfg->state_dir && cfg->zookeeper)
        prc = err_set(&e, -EINVAL, "--state-dir and --zookeeper exclude each other: the state lives in one place");
    if (prc == 0 && cfg->state_dir) {
        prc = state_open_journal(&c->st, cfg->state_dir, &e);
        if (prc == 0) {
            c->epoch = c->st->epoch;
            c->elections = 1;
            c->leader_since = time_mono_ms();
            prc = state_load(c->st, coord_replay, c, &e);
        }
        if (prc == 0) {
            coord_resume(c);
            prc = coord_sync(c, &e);
            log_info("state: %s, epoch %" PRIu64 ", %" PRIu64 " unfinished job%s resumed", cfg->state_dir, c->epoch,
                     c->jobs_resumed, c->jobs_resumed == 1 ? "" : "s");
        }
    }
    if (prc == 0) prc = http_server_start(&c->srv, host, cfg->port, c->token, COORD_MAX_BODY, coord_http, c, &e);
    uint64_t session_ms = cfg->zk_session_ms;
    if (prc == 0) {
        snprintf(c->advertise, sizeof c->advertise, "%s", cfg->advertise ? cfg->advertise : "");
        if (!c->advertise[0]) snprintf(c->advertise, sizeof c->advertise, "%s:%u", host, http_server_port(c->srv));
    }
    if (prc == 0 && cfg->zookeeper) {
        c->zk = 1;
        c->deposed = 1; /* a follower until elected */
        if (session_ms < 1000 || session_ms > 600000)
            prc = err_set(&e, -EINVAL, "--zk-session-ms takes milliseconds (1000 to 600000)");
        if (prc == 0) prc = state_open_zk(&c->st, cfg->zookeeper, c->advertise, session_ms, &e);
    }
    if (prc != 0) {
        fprintf(stderr, "tally coordinator: %s\n", e.msg);
        if (c->srv) http_server_stop(c->srv);
        coord_free_jobs(c);
        state_close(c->st);
        execpool_close(c->describer);
        execpool_free(c->describer);
        claim_release(&c->scratch);
        free(c->token);
        free(c);
        return EXITCODE_FAILED;
    }
    util_catch_stop_signals(coord_on_signal);
    signal(SIGPIPE, SIG_IGN);
    log_info("listening on %s:%u (heartbeat %" PRIu64 " ms, worker timeout %" PRIu64 " ms)", host,
             http_server_port(c->srv), c->heartbeat_ms, c->timeout_ms);
    printf("coordinator listening on %s:%u\n", host, http_server_port(c->srv));
    fflush(stdout);
    /* The tick bounds how late a dead worker is noticed: keep it a small part of the timeout. */
    uint64_t tick = c->timeout_ms / 50 < 20 ? c->timeout_ms / 50 : 20;
    if (tick < 5) tick = 5;
    int exit_rc = 0;
    uint64_t last_look = 0, last_loop = time_mono_ms();
    if (!c->zk) {
        c->elections = 1;
        c->leader_since = time_mono_ms();
    }
    while (!coord_stop) {
        usleep((useconds_t)(tick * 1000));
        if (c->zk && time_mono_ms() - last_look >= 300) {
            /* What followers answer with, and what status shows: read outside the lock. */
            last_look = time_mono_ms();
            char hint[160] = "";
            state_zk_leader(c->st, hint, sizeof hint);
            json_t *members = state_zk_members(c->st);
            pthread_mutex_lock(&c->lock);
            snprintf(c->leader_hint, sizeof c->leader_hint, "%s", hint);
            json_decref(c->members);
            c->members = members;
            pthread_mutex_unlock(&c->lock);
        }
        if (c->zk) {
            int won = 0, h = 0;
            if (c->deposed && !c->reset && state_zk_campaign(c->st, &won, &e) != 0) {
                log_warn("election: %s", e.msg);
                if (e.code == -ESTALE) c->reset = 1;
                err_clear(&e);
            }
            if (won && coord_take_over(c, &e) != 0) {
                log_error("cannot take over: %s", e.msg);
                fprintf(stderr, "tally coordinator: cannot take over: %s\n", e.msg);
                exit_rc = EXITCODE_FAILED;
                break;
            }
            if (won) last_loop = time_mono_ms(); /* the load's time is not a pause */
            /* A leader that did not run for 2/3 of the session timeout (SIGSTOP, a stalled
             * machine) may have been replaced meanwhile: it steps down without waiting for
             * ZooKeeper to say so (fencing would refuse its writes anyway). */
            uint64_t gap = time_mono_ms() - last_loop;
            if (!c->deposed && (h = state_zk_healthy(c->st)) == 0 && gap > session_ms * 2 / 3) h = -ETIME;
            if (!c->deposed && h != 0) {
                char why[128];
                snprintf(why, sizeof why, "%s", h == -ESTALE ? "the ZooKeeper session expired"
                                                : h == -ETIME ? "this process did not run for 2/3 of the session timeout"
                                                              : "cut off from ZooKeeper for 2/3 of the session timeout");
                pthread_mutex_lock(&c->lock);
                coord_step_down(c, why);
                pthread_mutex_unlock(&c->lock);
            }
            if (c->reset) {
                /* Stepped down: forget everything, rejoin the election with a new session. */
                pthread_mutex_lock(&c->lock);
                coord_free_jobs(c);
                c->nworkers = 0;
                pthread_mutex_unlock(&c->lock);
                state *old = c->st;
                pthread_mutex_lock(&c->lock);
                c->st = NULL;
                pthread_mutex_unlock(&c->lock);
                state_close(old);
                while (!coord_stop && state_open_zk(&c->st, cfg->zookeeper, c->advertise, session_ms, &e) != 0) {
                    log_warn("rejoining the election: %s", e.msg);
                    err_clear(&e);
                    sleep(1);
                }
                c->reset = 0;
                log_info("a follower again");
            }
        }
        coord_tick(c);
        last_loop = time_mono_ms();
    }
    log_info("stopping");
    pthread_mutex_lock(&c->lock);
    pthread_cond_broadcast(&c->work_cv);
    pthread_cond_broadcast(&c->job_cv);
    pthread_mutex_unlock(&c->lock);
    http_server_stop(c->srv);
    /* Without a state store the unfinished jobs end with the process: roll back their output.
     * With one, they go on when a coordinator starts on the state again. */
    for (coord_job *j = c->jobs; j && !c->st && !c->deposed; j = j->next)
        if (!j->finished) output_abort(&j->out);
    coord_free_jobs(c);
    state_close(c->st);
    execpool_close(c->describer);
    execpool_free(c->describer);
    claim_release(&c->scratch);
    free(c->token);
    json_decref(c->members);
    health_free(&c->health);
    free(c);
    return exit_rc;
}
