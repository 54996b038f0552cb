/* sched.c - job/task/attempt state transitions (see sched.h for the state machines). */
#include "exec/sched.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/util.h"

static void sched_push_pending(sched_job *j, uint32_t task)
{
    sched_phase ph = j->tasks[task].phase;
    j->tasks[task].state = SCHED_TASK_PENDING;
    uint32_t cap = j->ring_cap[ph];
    j->ring[ph][(j->ring_head[ph] + j->ring_len[ph]) % cap] = task;
    j->ring_len[ph]++;
}

static int64_t sched_pop_pending(sched_job *j, sched_phase ph)
{
    while (j->ring_len[ph] > 0) {
        uint32_t t = j->ring[ph][j->ring_head[ph]];
        j->ring_head[ph] = (j->ring_head[ph] + 1) % j->ring_cap[ph];
        j->ring_len[ph]--;
        if (j->tasks[t].state == SCHED_TASK_PENDING) return t;
    }
    return -1;
}

sched_job *sched_job_new(uint32_t nmaps, uint32_t nreduces, uint32_t max_attempts, uint64_t now)
{
    sched_job *j = xcalloc(1, sizeof *j);
    j->nmaps = nmaps;
    j->nreduces = nreduces;
    j->max_attempts = max_attempts ? max_attempts : 1;
    j->max_skipped_ratio = 1;
    j->submit_ms = now;
    j->tasks = xcalloc((size_t)nmaps + nreduces + 1, sizeof *j->tasks);
    for (uint32_t i = 0; i < nmaps + nreduces; i++) {
        sched_task *t = &j->tasks[i];
        t->phase = i < nmaps ? SCHED_MAP : SCHED_REDUCE;
        t->index = i < nmaps ? i : i - nmaps;
        t->committed = -1;
        counters_init(&t->counters);
    }
    j->ring_cap[SCHED_MAP] = nmaps ? nmaps : 1;
    j->ring_cap[SCHED_REDUCE] = nreduces ? nreduces : 1;
    for (int ph = 0; ph < 2; ph++) j->ring[ph] = xcalloc(j->ring_cap[ph], sizeof(uint32_t));
    for (uint32_t i = 0; i < nmaps + nreduces; i++) sched_push_pending(j, i);
    return j;
}

void sched_job_free(sched_job *j)
{
    if (!j) return;
    for (uint32_t i = 0; i < j->nmaps + j->nreduces; i++) counters_free(&j->tasks[i].counters);
    for (size_t i = 0; i < j->nattempts; i++) free(j->attempts[i].error);
    free(j->tasks);
    free(j->ring[0]);
    free(j->ring[1]);
    free(j->attempts);
    free(j->error);
    for (size_t i = 0; i < j->ncrashes; i++) free(j->crashes[i].file);
    free(j->crashes);
    free(j->skip_example);
    free(j);
}

void sched_job_start(sched_job *j, uint64_t now)
{
    if (j->state != SCHED_JOB_QUEUED) return;
    j->state = SCHED_JOB_RUNNING;
    j->start_ms = now;
    /* A job with nothing to do is done at once. */
    if (j->nmaps + j->nreduces == 0) {
        j->state = SCHED_JOB_SUCCEEDED;
        j->end_ms = now;
    }
}

static int64_t sched_start_attempt(sched_job *j, uint32_t task, const char *worker, uint64_t now)
{
    if (j->nattempts == j->cap) {
        j->cap = j->cap ? j->cap * 2 : 64;
        j->attempts = xrealloc(j->attempts, j->cap * sizeof *j->attempts);
    }
    sched_attempt *a = &j->attempts[j->nattempts];
    memset(a, 0, sizeof *a);
    a->id = (uint32_t)j->nattempts;
    a->task = task;
    a->state = SCHED_ATTEMPT_RUNNING;
    a->start_ms = now;
    a->blocked_on = -1;
    snprintf(a->worker, sizeof a->worker, "%s", worker ? worker : "");
    j->nattempts++;
    sched_task *t = &j->tasks[task];
    t->state = SCHED_TASK_RUNNING;
    t->running++;
    j->running++;
    return a->id;
}

int64_t sched_assign(sched_job *j, const char *worker, unsigned phase_mask, uint64_t now)
{
    if (j->state != SCHED_JOB_RUNNING) return -1;
    int64_t t = -1;
    if (phase_mask & (1u << SCHED_MAP)) t = sched_pop_pending(j, SCHED_MAP);
    if (t < 0 && (phase_mask & (1u << SCHED_REDUCE)) && j->maps_done == j->nmaps)
        t = sched_pop_pending(j, SCHED_REDUCE);
    return t < 0 ? -1 : sched_start_attempt(j, (uint32_t)t, worker, now);
}

int64_t sched_start_copy(sched_job *j, uint32_t task, const char *worker, sched_copy reason, uint64_t now)
{
    if (j->state != SCHED_JOB_RUNNING || task >= j->nmaps + j->nreduces || j->tasks[task].state != SCHED_TASK_RUNNING)
        return -1;
    int64_t id = sched_start_attempt(j, task, worker, now);
    j->attempts[id].copy = reason;
    return id;
}

static int sched_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

double sched_phase_median_ms(sched_job *j, sched_phase phase)
{
    if (!j->median_stale[phase]) return j->median_ms[phase];
    size_t n = 0;
    double *d = xcalloc(j->nattempts + 1, sizeof *d);
    for (size_t i = 0; i < j->nattempts; i++) {
        const sched_attempt *a = &j->attempts[i];
        if (a->state == SCHED_ATTEMPT_SUCCEEDED && j->tasks[a->task].phase == phase && a->end_ms >= a->start_ms)
            d[n++] = (double)(a->end_ms - a->start_ms);
    }
    qsort(d, n, sizeof *d, sched_cmp_double);
    double m = n ? d[(n - 1) / 2] : 0;
    free(d);
    j->median_ms[phase] = m;
    j->median_stale[phase] = 0;
    return m;
}

static double sched_slowness(const sched_spec *sp, const char *worker)
{
    double s = sp->slowness ? sp->slowness(sp->arg, worker) : 0;
    return s > 0 ? s : 1;
}

int64_t sched_pick_copy(sched_job *j, const char *worker, const sched_spec *sp, sched_copy reason, uint64_t now,
                        sched_copy_why *why)
{
    if (j->state != SCHED_JOB_RUNNING || reason == SCHED_COPY_NONE) return -1;
    double median[2] = {sched_phase_median_ms(j, SCHED_MAP), sched_phase_median_ms(j, SCHED_REDUCE)};
    double here = sched_slowness(sp, worker), best = 0;
    int64_t pick = -1;
    /* One pass over the attempts: each running task has exactly one attempt here when it is a
     * candidate (t->running == 1), so the attempt stands for its task. */
    for (size_t i = 0; i < j->nattempts; i++) {
        const sched_attempt *a = &j->attempts[i];
        const sched_task *t = &j->tasks[a->task];
        if (a->state != SCHED_ATTEMPT_RUNNING || t->state != SCHED_TASK_RUNNING || t->running != 1) continue;
        if (strcmp(a->worker, worker) == 0 || a->blocked_on >= 0 || now < a->start_ms) continue;
        /* A reduce while a lost map runs again is slow for the map's sake: a copy would wait
         * for the same map (and take a slot the map may need). */
        if (t->phase == SCHED_REDUCE && j->maps_done < j->nmaps) continue;
        int on_probation = sp->probation && sp->probation(sp->arg, a->worker);
        if (reason == SCHED_COPY_MIGRATE && !on_probation) continue;
        double elapsed = (double)(now - a->start_ms);
        if (reason == SCHED_COPY_STRAGGLER && elapsed < (double)sp->min_ms) continue;
        /* The rate as of the last progress report (reports come with heartbeats, so they
         * may be a few hundred ms old); time left counts from now. */
        double p = a->progress, seen = a->progress_ms > a->start_ms ? (double)(a->progress_ms - a->start_ms) : elapsed;
        double rate = a->rate > 0 ? a->rate / 1000.0 : p > 0 && seen > 0 ? p / seen : 0;
        double since = a->progress_ms > a->start_ms && now > a->progress_ms ? (double)(now - a->progress_ms) : 0;
        double there = sched_slowness(sp, a->worker);
        double typical = median[t->phase];
        if (typical <= 0 && sp->history_ms) typical = sp->history_ms(sp->arg, j, a->task);
        /* No progress reported yet (short attempts finish between two heartbeats): what a
         * typical attempt needs on its worker (typical x its slowness) less what it has run, or,
         * once it is late, as much again as it is late by; with nothing to compare, as long again
         * as it has run. A stuck attempt's time left grows with it: it is copied in the end. */
        double late = elapsed - typical, due = typical * there - elapsed;
        double guess = typical > 0 ? (due > late ? due : late) : 0, left;
        if (rate > 0) {
            /* From its rate, counting on from the last report (a long task near its end is not a
             * straggler however much longer than the median it runs); past the end that rate
             * promised (the report is old, the attempt slowed down), as much again as it is
             * overdue by, or the typical guess if that is more. */
            left = (1 - p) / rate - since;
            if (left < 0) {
                left = -left;
                if (guess > left) left = guess;
            }
        } else {
            left = typical > 0 ? guess : elapsed;
        }
        if (left < 0) left = 0;
        double fresh = typical > 0 ? typical * here : (elapsed + left) * here / there;
        int worth = reason == SCHED_COPY_MIGRATE ? elapsed >= fresh && left > fresh
                                                 : left > sp->factor * fresh && left - fresh >= (double)sp->min_gain_ms;
        if (!worth || left <= best) continue;
        best = left;
        pick = a->task;
        if (why) *why = (sched_copy_why){.attempt = a->id, .left_ms = left, .fresh_ms = fresh, .elapsed_ms = elapsed,
                                         .progress = p};
    }
    return pick;
}

static sched_attempt *sched_running_attempt(sched_job *j, uint32_t id)
{
    if (id >= j->nattempts) return NULL;
    sched_attempt *a = &j->attempts[id];
    return a->state == SCHED_ATTEMPT_RUNNING ? a : NULL;
}

/* An attempt ends (any outcome): it no longer waits for anything. */
static void sched_attempt_unblock(sched_job *j, sched_attempt *a)
{
    if (a->blocked_on >= 0) {
        a->blocked_on = -1;
        j->blocked--;
    }
}

/* The job is over: attempts still running are killed (a map re-run nobody needs any more,
 * the other attempts of a failed job), so that no slot stays taken by them. */
static void sched_finish_job(sched_job *j, sched_job_state s, uint64_t now)
{
    j->state = s;
    j->end_ms = now;
    for (size_t i = 0; i < j->nattempts; i++) {
        sched_attempt *a = &j->attempts[i];
        if (a->state != SCHED_ATTEMPT_RUNNING) continue;
        a->state = SCHED_ATTEMPT_KILLED;
        a->end_ms = now;
        free(a->error);
        a->error = xstrdup(s == SCHED_JOB_SUCCEEDED ? "not needed: the job succeeded"
                           : s == SCHED_JOB_CANCELLED ? "job cancelled" : "job failed");
        sched_attempt_unblock(j, a);
        j->tasks[a->task].running--;
        j->running--;
    }
}

/* Every map has committed: fails the job if they skipped too large a share of the input (a
 * wrong format or field would otherwise "succeed" with little or no output). Returns 1 if it
 * failed the job. */
static int sched_too_many_skipped(sched_job *j, uint64_t now)
{
    if (j->max_skipped_ratio >= 1) return 0;
    int64_t in = 0, skipped = 0;
    for (uint32_t m = 0; m < j->nmaps; m++) {
        in += j->tasks[m].counters.v[CNT_INPUT_RECORDS];
        skipped += j->tasks[m].counters.v[CNT_RECORDS_SKIPPED];
    }
    /* Records skipped for being too long are not counted as input: count them in. */
    int64_t total = in > skipped ? in : skipped;
    if (skipped == 0 || (double)skipped <= j->max_skipped_ratio * (double)total) return 0;
    free(j->error);
    j->error = xasprintf("%lld of %lld input records were skipped (%.1f%%), more than --max-skipped-ratio %g allows; "
                         "the first: %s (if that is expected, raise --max-skipped-ratio, up to 1)",
                         (long long)skipped, (long long)total, 100.0 * (double)skipped / (double)total,
                         j->max_skipped_ratio, j->skip_example ? j->skip_example : "(not reported)");
    sched_finish_job(j, SCHED_JOB_FAILED, now);
    return 1;
}

void sched_note_skip(sched_job *j, const char *example)
{
    if (!j->skip_example && example && *example) j->skip_example = xstrdup(example);
}

int sched_attempt_succeeded(sched_job *j, uint32_t id, const counters *c, uint64_t now)
{
    sched_attempt *a = sched_running_attempt(j, id);
    if (!a) return 0;
    sched_task *t = &j->tasks[a->task];
    a->end_ms = now;
    t->running--;
    j->running--;
    if (t->state == SCHED_TASK_SUCCEEDED || j->state != SCHED_JOB_RUNNING) {
        /* Another attempt committed first (or the job is over): this one loses. */
        a->state = SCHED_ATTEMPT_KILLED;
        a->error = xstrdup("superseded");
        a->superseded = 1;
        a->progress = 1; /* it did finish: its duration is a whole run's */
        return 0;
    }
    a->state = SCHED_ATTEMPT_SUCCEEDED;
    a->progress = 1;
    j->median_stale[t->phase] = 1;
    sched_attempt_unblock(j, a);
    t->state = SCHED_TASK_SUCCEEDED;
    t->committed = a->id;
    /* Its copy (or original) lost the race: killed now, so that its slot is free at once. */
    for (size_t i = 0; t->running && i < j->nattempts; i++) {
        sched_attempt *o = &j->attempts[i];
        if (o->task != a->task || o->state != SCHED_ATTEMPT_RUNNING) continue;
        o->state = SCHED_ATTEMPT_KILLED;
        o->end_ms = now;
        free(o->error);
        o->error = xasprintf("superseded: attempt a%u committed first", a->id);
        o->superseded = 1;
        sched_attempt_unblock(j, o);
        t->running--;
        j->running--;
    }
    counters_free(&t->counters);
    counters_init(&t->counters);
    if (c) counters_merge(&t->counters, c);
    if (t->phase == SCHED_MAP) {
        j->maps_done++;
        if (j->maps_done == j->nmaps && sched_too_many_skipped(j, now)) return 1;
        /* Reducers waiting for this map's output can fetch it now. */
        for (size_t i = 0; j->blocked && i < j->nattempts; i++)
            if (j->attempts[i].blocked_on == (int64_t)t->index) sched_attempt_unblock(j, &j->attempts[i]);
    } else {
        j->reduces_done++;
    }
    /* Every reduce committed is the end, even if a map output was lost after its reducers had
     * fetched it (that map's re-run is not needed); without reduces, every map must be done. */
    if (j->nreduces ? j->reduces_done == j->nreduces : j->maps_done == j->nmaps)
        sched_finish_job(j, SCHED_JOB_SUCCEEDED, now);
    return 1;
}

/* The task cannot succeed any more: it fails, and its job with it. */
static void sched_task_fail(sched_job *j, sched_task *t, const char *last, int fatal, uint64_t now)
{
    t->state = SCHED_TASK_FAILED;
    if (j->state != SCHED_JOB_RUNNING) return;
    free(j->error);
    if (fatal)
        j->error = xasprintf("%s task %u failed: %s", t->phase == SCHED_MAP ? "map" : "reduce", t->index, last);
    else
        j->error = xasprintf("%s task %u failed %u times; last error: %s", t->phase == SCHED_MAP ? "map" : "reduce",
                             t->index, t->failures, last);
    sched_finish_job(j, SCHED_JOB_FAILED, now);
}

int sched_attempt_failed(sched_job *j, uint32_t id, const char *error, int fatal, uint64_t now)
{
    sched_attempt *a = sched_running_attempt(j, id);
    if (!a) return 0;
    sched_task *t = &j->tasks[a->task];
    a->state = SCHED_ATTEMPT_FAILED;
    a->end_ms = now;
    a->error = xstrdup(error ? error : "failed");
    sched_attempt_unblock(j, a);
    t->running--;
    j->running--;
    t->failures++;
    if (t->state != SCHED_TASK_RUNNING) return 1;
    /* Out of attempts, but its other attempt (a copy, or the original of one) still runs and
     * may yet commit: the task fails only if that one fails too. */
    if (!fatal && t->failures >= j->max_attempts && t->running > 0) return 1;
    if (fatal || t->failures >= j->max_attempts) sched_task_fail(j, t, a->error, fatal, now);
    else if (t->running == 0) sched_push_pending(j, a->task);
    return 1;
}

int sched_attempt_killed(sched_job *j, uint32_t id, const char *why, uint64_t now)
{
    sched_attempt *a = sched_running_attempt(j, id);
    if (!a) return 0;
    sched_task *t = &j->tasks[a->task];
    a->state = SCHED_ATTEMPT_KILLED;
    a->end_ms = now;
    a->error = xstrdup(why ? why : "killed");
    sched_attempt_unblock(j, a);
    t->running--;
    j->running--;
    if (t->state != SCHED_TASK_RUNNING || t->running > 0) return 1;
    if (t->failures >= j->max_attempts) {
        /* Its copy failed its last attempt while this one ran on; now nothing runs. */
        const char *last = "out of attempts";
        for (size_t i = j->nattempts; i-- > 0;)
            if (j->attempts[i].task == a->task && j->attempts[i].state == SCHED_ATTEMPT_FAILED) {
                last = j->attempts[i].error;
                break;
            }
        sched_task_fail(j, t, last, 0, now);
    } else {
        sched_push_pending(j, a->task);
    }
    return 1;
}

void sched_attempt_progress(sched_job *j, uint32_t id, double progress, const int64_t live[CNT_NBUILTIN],
                            uint64_t now)
{
    sched_attempt *a = sched_running_attempt(j, id);
    if (!a) return;
    a->progress = progress < 0 ? 0 : progress > 1 ? 1 : progress;
    a->progress_ms = now;
    if (live) memcpy(a->live, live, sizeof a->live);
}

int sched_map_lost(sched_job *j, uint32_t map_index)
{
    if (map_index >= j->nmaps) return 0;
    sched_task *t = &j->tasks[map_index];
    if (t->state != SCHED_TASK_SUCCEEDED || j->state != SCHED_JOB_RUNNING) return 0;
    if (t->running) t->state = SCHED_TASK_RUNNING;
    else sched_push_pending(j, map_index);
    t->committed = -1;
    counters_free(&t->counters);
    counters_init(&t->counters);
    j->maps_done--;
    return 1;
}

void sched_job_cancel(sched_job *j, const char *why, uint64_t now)
{
    if (sched_job_done(j)) return;
    free(j->error);
    j->error = xstrdup(why ? why : "cancelled");
    sched_finish_job(j, SCHED_JOB_CANCELLED, now);
}

void sched_job_fail(sched_job *j, const char *why, uint64_t now)
{
    if (sched_job_done(j)) return;
    free(j->error);
    j->error = xstrdup(why ? why : "failed");
    sched_finish_job(j, SCHED_JOB_FAILED, now);
}

void sched_note_crash(sched_job *j, uint32_t map_index, const char *file, uint64_t offset)
{
    size_t per_map = 0;
    for (size_t i = 0; i < j->ncrashes; i++) {
        sched_crash *c = &j->crashes[i];
        if (c->map != map_index) continue;
        if (c->offset == offset && strcmp(c->file, file) == 0) {
            c->count++;
            return;
        }
        per_map++;
    }
    if (per_map >= SCHED_MAX_CRASHES) return;
    j->crashes = xrealloc(j->crashes, (j->ncrashes + 1) * sizeof *j->crashes);
    j->crashes[j->ncrashes++] = (sched_crash){.map = map_index, .file = xstrdup(file), .offset = offset, .count = 1};
}

size_t sched_map_skips(const sched_job *j, uint32_t map_index, const sched_crash **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < j->ncrashes && n < max; i++)
        if (j->crashes[i].map == map_index && j->crashes[i].count >= SCHED_SKIP_AFTER) out[n++] = &j->crashes[i];
    return n;
}

int sched_reduce_blocked(sched_job *j, uint32_t id, uint32_t map_index)
{
    sched_attempt *a = sched_running_attempt(j, id);
    if (!a || j->tasks[a->task].phase != SCHED_REDUCE || map_index >= j->nmaps ||
        j->tasks[map_index].state == SCHED_TASK_SUCCEEDED)
        return 0;
    if (a->blocked_on < 0) j->blocked++;
    a->blocked_on = map_index;
    return 1;
}

int sched_job_done(const sched_job *j)
{
    return j->state == SCHED_JOB_SUCCEEDED || j->state == SCHED_JOB_FAILED ||
           j->state == SCHED_JOB_CANCELLED;
}

void sched_job_counters(const sched_job *j, counters *out)
{
    counters_init(out);
    for (uint32_t i = 0; i < j->nmaps + j->nreduces; i++)
        if (j->tasks[i].committed >= 0) counters_merge(out, &j->tasks[i].counters);
    out->v[CNT_MAP_TASKS] = j->nmaps;
    out->v[CNT_REDUCE_TASKS] = j->nreduces;
    out->v[CNT_TASK_ATTEMPTS] = (int64_t)j->nattempts;
}

void sched_job_summary(const sched_job *j, sched_summary *out)
{
    memset(out, 0, sizeof *out);
    uint64_t maps_end = j->start_ms;
    for (size_t i = 0; i < j->nattempts; i++) {
        const sched_attempt *a = &j->attempts[i];
        out->attempts++;
        if (a->copy != SCHED_COPY_NONE) out->speculative++;
        if (a->state == SCHED_ATTEMPT_KILLED) out->killed++;
        if (a->state == SCHED_ATTEMPT_RUNNING || a->end_ms < a->start_ms) continue;
        if (a->end_ms - a->start_ms >= out->slowest_ms) {
            out->slowest_ms = a->end_ms - a->start_ms;
            snprintf(out->slowest_worker, sizeof out->slowest_worker, "%s", a->worker);
        }
        if (j->tasks[a->task].phase == SCHED_MAP && a->state == SCHED_ATTEMPT_SUCCEEDED && a->end_ms > maps_end)
            maps_end = a->end_ms;
    }
    uint64_t end = j->end_ms ? j->end_ms : maps_end;
    out->map_ms = maps_end > j->start_ms ? maps_end - j->start_ms : 0;
    out->reduce_ms = j->nreduces && end > maps_end ? end - maps_end : 0;
}

const char *sched_copy_name(sched_copy c)
{
    static const char *n[] = {"", "straggler", "migration"};
    return n[c];
}

const char *sched_job_state_name(sched_job_state s)
{
    static const char *n[] = {"queued", "running", "succeeded", "failed", "cancelled"};
    return n[s];
}

const char *sched_task_state_name(sched_task_state s)
{
    static const char *n[] = {"pending", "running", "succeeded", "failed"};
    return n[s];
}

const char *sched_attempt_state_name(sched_attempt_state s)
{
    static const char *n[] = {"running", "succeeded", "failed", "killed"};
    return n[s];
}
