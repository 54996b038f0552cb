/* local.c - runs `tally run`'s attempts in executor processes, driven by the shared scheduler.
 *
 * `tally run` never runs job code in its own process, for the same reason a worker does not:
 * a user job that crashes (SIGSEGV in a .so), exits or leaks must fail an attempt, not the
 * job, and never leave OUT/_temporary or the work dir behind. Each slot is one executor
 * process (cluster/taskproc.c, started once and reused, as on a worker); an attempt whose
 * executor dies fails with the record its map() was on, and a record that crashed two
 * attempts is skipped by the next, exactly as on the cluster (sched_note_crash). The driving
 * thread assigns, commits reduce attempts (output_commit_task) and draws progress; one thread
 * per slot only carries an assignment to its executor and the result back.
 *
 * Locking: `lock` protects the queues, `shutdown` and every item's `exec` and `killed`; it is
 * taken before the executor pool's own lock, never after.
 */
#include "exec/local.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cluster/execpool.h"
#include "cluster/wire.h"
#include "common/log.h"
#include "data/output.h"

typedef struct local_item {
    uint32_t attempt;
    sched_phase phase;
    uint32_t index;
    json_t *assignment;
    execpool_exec *exec;         /* while its executor runs it */
    int killed;                  /* its executor was killed on purpose (cancel, job over) */
    json_t *result;
    struct local_item *next;     /* in todo or done */
    struct local_item *next_run; /* in `running` */
} local_item;

typedef struct local_pool {
    pthread_mutex_t lock;
    pthread_cond_t work_cv;      /* signalled when todo gains an item or on shutdown */
    pthread_cond_t done_cv;      /* signalled when done gains an item */
    local_item *todo, *done, *running;
    int shutdown;
    execpool *exec;
} local_pool;

static void local_push(local_item **q, local_item *it)
{
    it->next = NULL;
    while (*q) q = &(*q)->next;
    *q = it;
}

static void *local_thread(void *arg)
{
    local_pool *p = arg;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->todo && !p->shutdown) pthread_cond_wait(&p->work_cv, &p->lock);
        if (!p->todo) break;
        local_item *it = p->todo;
        p->todo = it->next;
        pthread_mutex_unlock(&p->lock);

        execpool_exec *x = execpool_acquire(p->exec);
        pthread_mutex_lock(&p->lock);
        int killed = it->killed;
        if (!killed) it->exec = x;
        pthread_mutex_unlock(&p->lock);
        if (!killed) {
            char *text = wire_dump(it->assignment);
            int wstatus = -1;
            struct err e = {0};
            if (execpool_run(p->exec, x, text, &it->result, &wstatus, &e) != 0)
                it->result = execpool_crash_result(it->assignment, execpool_live(x), wstatus);
            free(text);
            pthread_mutex_lock(&p->lock);
            it->exec = NULL;
            pthread_mutex_unlock(&p->lock);
        }
        execpool_release(p->exec, x);

        pthread_mutex_lock(&p->lock);
        local_push(&p->done, it);
        pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->lock);
    return NULL;
}

/* Kills every running attempt's executor: the job is over, their results are moot. Called
 * with the lock held. */
static void local_kill_running(local_pool *p)
{
    for (local_item *it = p->running; it; it = it->next_run) {
        if (it->killed) continue;
        it->killed = 1;
        if (it->exec) execpool_kill(p->exec, it->exec);
    }
}

/* What the driver does with a finished attempt's result. */
static void local_finish(const task_env *env, const char *job_id, sched_job *job, local_item *it,
                         uint64_t *maps_bytes_done)
{
    uint64_t now = time_wall_ms();
    char ctxs[64];
    snprintf(ctxs, sizeof ctxs, "task=%c%05u attempt=a%u", it->phase == SCHED_MAP ? 'm' : 'r', it->index, it->attempt);
    if (it->killed) {
        sched_attempt_killed(job, it->attempt, "killed: the job is over", now);
        return;
    }
    wire_report r;
    memset(&r, 0, sizeof r);
    counters_init(&r.counters);
    r.fetch_failed_map = -1;
    struct err e = {0};
    if (wire_result_decode(it->result, &r, &e) != 0) {
        r.ok = 0;
        r.error = e.msg;
    }
    if (r.ok && it->phase == SCHED_REDUCE &&
        output_commit_task(env->spec->out, job_id, it->attempt, it->index, &e) != 0) {
        r.ok = 0;
        r.error = e.msg;
    }
    if (r.ok) {
        sched_note_skip(job, r.skip_example);
        if (sched_attempt_succeeded(job, it->attempt, &r.counters, now) && it->phase == SCHED_MAP)
            *maps_bytes_done += env->inputs->splits[it->index].bytes;
        log_debug("%s succeeded", ctxs);
    } else {
        if (it->phase == SCHED_MAP && r.crash_file) sched_note_crash(job, it->index, r.crash_file, r.crash_offset);
        log_warn("%s failed: %s", ctxs, r.error);
        sched_attempt_failed(job, it->attempt, r.error, r.fatal, now);
    }
    counters_free(&r.counters);
}

static void local_item_free(local_item *it)
{
    json_decref(it->assignment);
    json_decref(it->result);
    free(it);
}

int local_run(const task_env *env, execpool *exec, const char *job_id, const json_t *spec, sched_job *job,
              uint32_t slots, volatile sig_atomic_t *interrupted, local_progress_fn progress, void *arg, struct err *e)
{
    if (slots == 0) slots = 1;
    int rc = 0;
    local_pool p;
    memset(&p, 0, sizeof p);
    p.exec = exec;
    pthread_mutex_init(&p.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p.work_cv, NULL);
    pthread_cond_init(&p.done_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_t *threads = xcalloc(slots, sizeof *threads);
    uint32_t nthreads = 0;
    for (; nthreads < slots; nthreads++)
        if (pthread_create(&threads[nthreads], NULL, local_thread, &p) != 0) break;
    if (nthreads == 0) {
        sched_job_cancel(job, "cannot start a thread", time_wall_ms());
        rc = err_set(e, -EAGAIN, "cannot start a thread");
    }
    uint64_t t0 = time_mono_ms(), last_progress = 0, maps_bytes_done = 0;
    uint32_t running = 0;
    sched_job_start(job, time_wall_ms());

    pthread_mutex_lock(&p.lock);
    for (;;) {
        /* Hand out work while there are free slots. */
        while (nthreads && !sched_job_done(job) && running < nthreads) {
            int64_t id = sched_assign(job, "local", (1u << SCHED_MAP) | (1u << SCHED_REDUCE), time_wall_ms());
            if (id < 0) break;
            const sched_task *t = &job->tasks[job->attempts[id].task];
            local_item *it = xcalloc(1, sizeof *it);
            it->attempt = (uint32_t)id;
            it->phase = t->phase;
            it->index = t->index;
            it->assignment = wire_task_encode(job_id, job, (uint32_t)id, spec, env->inputs);
            json_object_set_new(it->assignment, "work_dir", json_string(env->work_dir));
            if (t->phase == SCHED_REDUCE) {
                json_object_set_new(it->assignment, "map_dir", json_string(env->work_dir));
                json_object_set_new(it->assignment, "nmaps", json_integer(job->nmaps));
            }
            log_debug("task=%c%05u attempt=a%u assigned", t->phase == SCHED_MAP ? 'm' : 'r', t->index, it->attempt);
            it->next_run = p.running;
            p.running = it;
            local_push(&p.todo, it);
            running++;
            pthread_cond_signal(&p.work_cv);
        }
        if (running == 0) break; /* done, or nothing can ever run again */

        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += 100 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        if (!p.done) pthread_cond_timedwait(&p.done_cv, &p.lock, &ts);
        while (p.done) {
            local_item *it = p.done;
            p.done = it->next;
            for (local_item **q = &p.running; *q; q = &(*q)->next_run) {
                if (*q == it) {
                    *q = it->next_run;
                    break;
                }
            }
            running--;
            local_finish(env, job_id, job, it, &maps_bytes_done);
            local_item_free(it);
        }
        if (interrupted && *interrupted && !sched_job_done(job))
            sched_job_cancel(job, "interrupted", time_wall_ms());
        if (sched_job_done(job)) local_kill_running(&p);

        uint64_t now = time_mono_ms();
        if (progress && now - last_progress >= 100) {
            last_progress = now;
            uint64_t inflight = 0;
            for (local_item *it = p.running; it; it = it->next_run) {
                double frac;
                int64_t live[CNT_NBUILTIN];
                if (it->phase == SCHED_MAP && it->exec && task_live_read(execpool_live(it->exec), &frac, live) == 0)
                    inflight += (uint64_t)(frac * (double)env->inputs->splits[it->index].bytes);
            }
            local_status st = {.job = job, .input_bytes_done = maps_bytes_done + inflight, .elapsed_ms = now - t0};
            pthread_mutex_unlock(&p.lock);
            progress(arg, &st, 0);
            pthread_mutex_lock(&p.lock);
        }
    }
    p.shutdown = 1;
    pthread_cond_broadcast(&p.work_cv);
    pthread_mutex_unlock(&p.lock);
    for (uint32_t i = 0; i < nthreads; i++) pthread_join(threads[i], NULL);
    free(threads);
    if (rc == 0 && !sched_job_done(job)) {
        /* Nothing running and nothing assignable: only a scheduler bug gets here. */
        sched_job_cancel(job, "internal error: no runnable task", time_wall_ms());
        rc = err_set(e, -EINVAL, "internal error: no runnable task");
    }
    if (progress) {
        local_status st = {.job = job, .input_bytes_done = maps_bytes_done, .elapsed_ms = time_mono_ms() - t0};
        progress(arg, &st, 1);
    }
    pthread_cond_destroy(&p.work_cv);
    pthread_cond_destroy(&p.done_cv);
    pthread_mutex_destroy(&p.lock);
    return rc;
}
