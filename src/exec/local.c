/* local.c - a thread pool executing scheduler attempts for `tally run`. */
#include "exec/local.h"

#include <errno.h>
#include <stdio.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "data/mapbuf.h"

typedef struct local_item {
    uint32_t attempt;
    sched_phase phase;
    uint32_t index;
    int rc;
    task_result res;
    struct local_item *next;
} local_item;

typedef struct local_slot {
    struct local_pool *pool;
    pthread_t thread;
    mapbuf *mb;                  /* kept from one map attempt to the next on this thread */
    _Atomic uint64_t progress;   /* bytes consumed by this slot's current map attempt */
} local_slot;

typedef struct local_pool {
    pthread_mutex_t lock;        /* protects the two queues and `shutdown` */
    pthread_cond_t work_cv;      /* signalled when todo gains an item or on shutdown */
    pthread_cond_t done_cv;      /* signalled when done gains an item */
    local_item *todo, *done;
    int shutdown;
    task_env env;                /* env->cancel points at `cancel` below */
    volatile int cancel;
    const sched_job *job;
} local_pool;

static void local_push(local_item **q, local_item *it)
{
    it->next = NULL;
    while (*q) q = &(*q)->next;
    *q = it;
}

static int local_run_reduce(local_pool *p, local_item *it)
{
    uint32_t nmaps = p->job->nmaps;
    char **paths = xcalloc(nmaps ? nmaps : 1, sizeof *paths);
    for (uint32_t m = 0; m < nmaps; m++) paths[m] = task_map_output_path(&p->env, m);
    task_segment *segs = NULL;
    int rc = task_local_segments((const char *const *)paths, nmaps, it->index, &segs, &it->res.err);
    if (rc == 0) {
        rc = task_run_reduce(&p->env, it->index, it->attempt, segs, nmaps, &it->res);
        task_segments_free(segs, nmaps);
    }
    for (uint32_t m = 0; m < nmaps; m++) free(paths[m]);
    free(paths);
    return rc;
}

static void *local_thread(void *arg)
{
    local_slot *slot = arg;
    local_pool *p = slot->pool;
    pthread_mutex_lock(&p->lock);
    for (;;) {
        while (!p->todo && !p->shutdown) pthread_cond_wait(&p->work_cv, &p->lock);
        if (!p->todo) break;
        local_item *it = p->todo;
        p->todo = it->next;
        pthread_mutex_unlock(&p->lock);

        char ctxs[96];
        snprintf(ctxs, sizeof ctxs, "task=%c%05u attempt=a%u", it->phase == SCHED_MAP ? 'm' : 'r',
                 it->index, it->attempt);
        log_set_context(ctxs);
        task_result_init(&it->res);
        atomic_store(&slot->progress, 0);
        if (it->phase == SCHED_MAP)
            it->rc = task_run_map(&p->env, &p->env.inputs->splits[it->index], it->index, it->attempt,
                                  &slot->progress, &slot->mb, &it->res);
        else
            it->rc = local_run_reduce(p, it);
        atomic_store(&slot->progress, 0);
        if (it->rc && it->rc != -ECANCELED) log_warn("attempt failed: %s", it->res.err.msg);
        log_set_context(NULL);

        pthread_mutex_lock(&p->lock);
        local_push(&p->done, it);
        pthread_cond_signal(&p->done_cv);
    }
    pthread_mutex_unlock(&p->lock);
    mapbuf_free(slot->mb);
    slot->mb = NULL;
    return NULL;
}

int local_run(const task_env *env, sched_job *job, uint32_t slots, volatile sig_atomic_t *interrupted,
              local_progress_fn progress, void *arg, struct err *e)
{
    (void)e;
    if (slots == 0) slots = 1;
    local_pool p;
    memset(&p, 0, sizeof p);
    pthread_mutex_init(&p.lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&p.work_cv, NULL);
    pthread_cond_init(&p.done_cv, &ca);
    pthread_condattr_destroy(&ca);
    p.env = *env;
    p.env.cancel = &p.cancel;
    p.job = job;
    local_slot *slot = xcalloc(slots, sizeof *slot);
    for (uint32_t i = 0; i < slots; i++) {
        slot[i].pool = &p;
        pthread_create(&slot[i].thread, NULL, local_thread, &slot[i]);
    }
    uint64_t t0 = time_mono_ms(), last_progress = 0;
    uint64_t *split_bytes = NULL;
    uint64_t maps_bytes_done = 0;
    if (job->nmaps) {
        split_bytes = xcalloc(job->nmaps, sizeof *split_bytes);
        for (uint32_t m = 0; m < job->nmaps && m < env->inputs->nsplits; m++)
            split_bytes[m] = env->inputs->splits[m].bytes;
    }
    uint32_t running = 0;
    sched_job_start(job, time_wall_ms());

    pthread_mutex_lock(&p.lock);
    for (;;) {
        /* Hand out work while there are free slots. */
        while (!sched_job_done(job) && running < slots) {
            int64_t id = sched_assign(job, "local", (1u << SCHED_MAP) | (1u << SCHED_REDUCE), time_wall_ms());
            if (id < 0) break;
            const sched_attempt *a = &job->attempts[id];
            local_item *it = xcalloc(1, sizeof *it);
            it->attempt = (uint32_t)id;
            it->phase = job->tasks[a->task].phase;
            it->index = job->tasks[a->task].index;
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
            running--;
            uint64_t now = time_wall_ms();
            if (it->rc == 0) {
                if (sched_attempt_succeeded(job, it->attempt, &it->res.counters, now) && it->phase == SCHED_MAP)
                    maps_bytes_done += split_bytes[it->index];
            } else if (it->rc == -ECANCELED) {
                sched_attempt_killed(job, it->attempt, "cancelled", now);
            } else {
                sched_attempt_failed(job, it->attempt, it->res.err.msg, it->res.fatal, now);
            }
            task_result_free(&it->res);
            free(it);
        }
        if (interrupted && *interrupted && !sched_job_done(job))
            sched_job_cancel(job, "interrupted", time_wall_ms());
        if (sched_job_done(job)) p.cancel = 1; /* stop what still runs: its result is moot */

        uint64_t now = time_mono_ms();
        if (progress && now - last_progress >= 100) {
            last_progress = now;
            uint64_t inflight = 0;
            for (uint32_t i = 0; i < slots; i++) inflight += atomic_load(&slot[i].progress);
            local_status st = {.job = job, .input_bytes_done = maps_bytes_done + inflight,
                               .elapsed_ms = now - t0};
            pthread_mutex_unlock(&p.lock);
            progress(arg, &st, 0);
            pthread_mutex_lock(&p.lock);
        }
    }
    p.shutdown = 1;
    pthread_cond_broadcast(&p.work_cv);
    pthread_mutex_unlock(&p.lock);
    for (uint32_t i = 0; i < slots; i++) pthread_join(slot[i].thread, NULL);
    int rc = 0;
    if (!sched_job_done(job)) {
        /* Nothing running and nothing assignable: only a scheduler bug gets here. */
        sched_job_cancel(job, "internal error: no runnable task", time_wall_ms());
        rc = -EINVAL;
    }
    if (progress) {
        local_status st = {.job = job, .input_bytes_done = maps_bytes_done, .elapsed_ms = time_mono_ms() - t0};
        progress(arg, &st, 1);
    }
    free(split_bytes);
    free(slot);
    pthread_cond_destroy(&p.work_cv);
    pthread_cond_destroy(&p.done_cv);
    pthread_mutex_destroy(&p.lock);
    return rc;
}
