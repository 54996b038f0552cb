/* health.h - how fast each worker is compared with the others, and which are on probation.
 *
 * The scheduler's memory of the workers, kept by the coordinator and consulted when it hands
 * out attempts (sched_pick_copy's slowness, probation). Like sched.c it does no I/O and takes
 * time as a parameter.
 *
 * Samples: every attempt that ends (succeeded, or superseded by a copy: then its estimated
 * total, elapsed / progress) adds its cost to its worker's window (the last `window` samples
 * no older than `window_ms`): duration per MiB of input for maps (splits differ in size),
 * duration for reduces. Costs compare only within a group (one job's one phase), so jobs of
 * any size mix in the window.
 *
 * The slow rule (the users' "p90 over the window exceeds the cluster's by a factor for K
 * consecutive checks", made automatic; a violation by 2 x the factor counts as two): at each
 * check, a worker's relative cost of a sample
 * is (its cost + F) / (the median cost of the *other* workers' samples of the same group + F),
 * F being `floor_ms` in the sample's cost units. The worker
 * is in violation when the p90 of its relative costs exceeds `factor` x the p90 of the other
 * workers' relative costs (taken the same way) and it has at least `min_samples` comparable
 * samples; its score is the ratio of the two. `checks` violations in a row put it on probation.
 *
 * Worker health:  OK -> PROBATION   health_check(): K consecutive violations (at most half of
 *                                   the workers are on probation at once; never the last one)
 *                 PROBATION -> OK   health_note_attempt(): `probes_ok` probe attempts in a row
 *                                   succeeded at most half way from 1 to the factor (1.5 for
 *                                   2: hysteresis), one sample at a time, and it has
 *                                   been on probation for at least `min_probation_ms`
 * On probation a worker gets no attempts except a probe every `probe_every_ms` (latency-
 * induced probation, Dean & Barroso, "The Tail at Scale"); its map outputs stay served.
 */
#ifndef TALLY_HEALTH_H
#define TALLY_HEALTH_H

#include <stddef.h>
#include <stdint.h>

#include "exec/sched.h"

typedef enum health_state { HEALTH_OK, HEALTH_PROBATION } health_state;

typedef struct health_rule {
    int enabled;              /* 0: nobody is put on probation (the scores are still kept) */
    double factor;            /* p90 relative cost above factor x the others' */
    uint32_t checks;          /* K: consecutive violations before probation */
    uint32_t window;          /* samples kept per worker */
    uint64_t window_ms;       /* and none older than this */
    uint32_t min_samples;     /* comparable samples a worker needs before it can be judged */
    uint32_t probes_ok;       /* good probes in a row that end a probation */
    uint64_t min_probation_ms;
    uint64_t probe_every_ms;
    double floor_ms;          /* added to both sides of every comparison: attempts of a few ms
                               * that differ by a few ms are not "2x slower" in any way a job's
                               * latency would notice (timer and scheduling noise) */
} health_rule;

typedef struct health_sample {
    uint64_t ms;              /* when it ended */
    double cost;
    double floor;             /* rule.floor_ms in this sample's cost units */
    double mib;               /* a map's split size in MiB (0 for reduces) */
    uint64_t group;           /* hash of (job, phase) */
} health_sample;

typedef struct health_worker {
    char name[64];
    health_state state;
    health_sample *ring;      /* `window` slots */
    size_t nsamples, head;
    uint32_t violations;      /* consecutive */
    double score;             /* p90 relative cost / the others' (0 until judged) */
    uint64_t since_ms;        /* when it entered its state */
    uint32_t probes_good;     /* consecutive probes that were not slow */
    uint64_t last_probe_ms;
    int fresh;                /* samples arrived since the last check */
    int rescore;              /* ... since its score was last computed (health_refresh) */
    /* Pressure as the worker reports it (-1: not reported). */
    double psi_cpu, psi_io, psi_memory, load1;
    double chaos_slow;        /* its --chaos-slow factor (failure injection; shown, never used) */
    uint64_t entries, exits;  /* probations begun and ended */
} health_worker;

/* A decision health_check() or health_note_attempt() took, for the caller's log and metrics. */
typedef struct health_event {
    const char *worker;
    health_state to;
    double score;
    char why[160];
} health_event;

/* Typical durations of the tasks of jobs run before (keyed by the caller's job signature),
 * the estimate sched_pick_copy() falls back to when no attempt of a phase has finished. */
#define HEALTH_HISTORY 64
typedef struct health_history {
    uint64_t sig;
    double ms[2][16];         /* recent successful durations per phase (a ring) */
    uint32_t n[2];
} health_history;

typedef struct health {
    health_rule rule;
    health_worker *workers;
    size_t nworkers, cap;
    health_history hist[HEALTH_HISTORY];
    size_t nhist;
    uint64_t entries, exits;
    uint64_t refreshed_ms;    /* health_refresh()'s last recount */
} health;

void health_init(health *h, const health_rule *rule);
void health_free(health *h);
health_worker *health_worker_get(health *h, const char *name); /* created on first use */
const health_worker *health_worker_find(const health *h, const char *name);

/* An attempt on `worker` ended after `ms`: succeeded (exact), or superseded at `progress`
 * (its total estimated). `bytes` is a map's split size (0 for reduces); group and sig are the
 * caller's hashes (job+phase; job signature for the history). A probe's outcome may end the
 * worker's probation: returns 1 and fills *ev if it did. */
int health_note_attempt(health *h, const char *worker, uint64_t group, uint64_t sig, sched_phase phase, double ms,
                        double progress, int succeeded, uint64_t bytes, uint64_t now, health_event *ev);
/* Runs the slow rule over every worker with new samples. Fills at
 * most `max` events (probations begun); returns how many. */
size_t health_check(health *h, uint64_t now, size_t nalive, health_event *ev, size_t max);
/* Recomputes the scores of the workers with new samples, without counting violations: the
 * speculation estimates between two checks see a worker that just turned slow. */
void health_refresh(health *h, uint64_t now);
/* May `worker` (on probation) get a probe attempt now? health_probe_sent() says it got one. */
int health_probe_due(const health *h, const char *worker, uint64_t now);
void health_probe_sent(health *h, const char *worker, uint64_t now);
int health_on_probation(const health *h, const char *worker);
/* Not (yet) on probation, but its last check found it slow by 1.5 x the factor or more: the
 * coordinator gives it no reduce
 * (a job's last stage, with nothing after it to make up for a slow one) while a healthy worker
 * can take it. */
int health_suspect(const health *h, const char *worker);
/* Its slowness for the speculation estimates: its score once judged slow-ish, else 1. */
double health_slowness(const health *h, const char *worker);
/* The median recent duration of `phase` for jobs with signature sig, or 0. */
double health_history_ms(const health *h, uint64_t sig, sched_phase phase);
/* A worker left the cluster (or restarted): its samples no longer describe it, and a probation
 * it was on ends (returns 1 then). */
int health_forget(health *h, const char *worker, uint64_t now);

const char *health_state_name(health_state s);

#endif
