/* test_sched.c - unit tests for the job, task and attempt state machines (src/exec/sched.c),
 * driven by hand with explicit times, as the coordinator and `tally run` drive them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "exec/counters.h"
#include "exec/sched.h"

#define MAPS (1u << SCHED_MAP)
#define REDUCES (1u << SCHED_REDUCE)
#define ANY (MAPS | REDUCES)

/* ---- Helpers ----------------------------------------------------------------------------- */

static sched_job *started(uint32_t nmaps, uint32_t nreduces, uint32_t max_attempts)
{
    sched_job *j = sched_job_new(nmaps, nreduces, max_attempts, 100);
    assert_non_null(j);
    assert_int_equal(j->state, SCHED_JOB_QUEUED);
    sched_job_start(j, 200);
    return j;
}

/* Assigns one attempt and checks it is of the expected phase and task index. */
static uint32_t assign(sched_job *j, unsigned mask, sched_phase phase, uint32_t index, uint64_t now)
{
    int64_t a = sched_assign(j, "w1", mask, now);
    if (a < 0) fail_msg("nothing assigned, expected %s %u", phase == SCHED_MAP ? "map" : "reduce", index);
    const sched_attempt *at = &j->attempts[a];
    const sched_task *t = &j->tasks[at->task];
    if (t->phase != phase || t->index != index)
        fail_msg("assigned %s %u, expected %s %u", t->phase == SCHED_MAP ? "map" : "reduce",
                 t->index, phase == SCHED_MAP ? "map" : "reduce", index);
    assert_int_equal(at->state, SCHED_ATTEMPT_RUNNING);
    assert_int_equal(at->start_ms, now);
    assert_int_equal(t->state, SCHED_TASK_RUNNING);
    return (uint32_t)a;
}

static const sched_task *task_of(const sched_job *j, uint32_t attempt)
{
    return &j->tasks[j->attempts[attempt].task];
}

/* A counter set with input_records = n and a job counter "seen" = n. */
static counters *with_records(counters *c, int64_t n)
{
    counters_init(c);
    c->v[CNT_INPUT_RECORDS] = n;
    counters_add_user(c, "seen", n);
    return c;
}

static int64_t user_counter(const counters *c, const char *name)
{
    for (size_t i = 0; i < c->nuser; i++)
        if (strcmp(c->user[i].name, name) == 0) return c->user[i].value;
    return 0;
}

/* Succeeds an attempt with `n` records; asserts it was taken. */
static void succeed(sched_job *j, uint32_t a, int64_t n, uint64_t now)
{
    counters c;
    assert_int_equal(sched_attempt_succeeded(j, a, with_records(&c, n), now), 1);
    counters_free(&c);
    assert_int_equal(j->attempts[a].state, SCHED_ATTEMPT_SUCCEEDED);
    assert_int_equal(j->attempts[a].end_ms, now);
    assert_int_equal(task_of(j, a)->state, SCHED_TASK_SUCCEEDED);
    assert_int_equal(task_of(j, a)->committed, a);
}

/* ---- Order of phases --------------------------------------------------------------------- */

static void test_maps_before_reduces(void **state)
{
    (void)state;
    sched_job *j = sched_job_new(3, 2, 4, 100);
    /* Nothing runs before the job starts. */
    assert_int_equal(sched_assign(j, "w", ANY, 150), -1);
    sched_job_start(j, 200);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    assert_int_equal(j->start_ms, 200);
    assert_int_equal(j->submit_ms, 100);

    /* Maps in order; no reduce while any map is pending or running. */
    uint32_t m0 = assign(j, ANY, SCHED_MAP, 0, 210);
    uint32_t m1 = assign(j, ANY, SCHED_MAP, 1, 211);
    assert_int_equal(sched_assign(j, "w", REDUCES, 212), -1);
    uint32_t m2 = assign(j, ANY, SCHED_MAP, 2, 213);
    assert_int_equal(sched_assign(j, "w", ANY, 214), -1);
    succeed(j, m0, 10, 220);
    succeed(j, m2, 30, 221);
    assert_int_equal(j->maps_done, 2);
    /* Two of three maps done is not enough. */
    assert_int_equal(sched_assign(j, "w", ANY, 222), -1);
    succeed(j, m1, 20, 223);
    assert_int_equal(j->maps_done, 3);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);

    /* A worker that only takes maps gets nothing now. */
    assert_int_equal(sched_assign(j, "w", MAPS, 224), -1);
    uint32_t r0 = assign(j, ANY, SCHED_REDUCE, 0, 225);
    uint32_t r1 = assign(j, REDUCES, SCHED_REDUCE, 1, 226);
    assert_int_equal(sched_assign(j, "w", ANY, 227), -1);
    succeed(j, r1, 5, 230);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    assert_false(sched_job_done(j));
    succeed(j, r0, 6, 240);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    assert_true(sched_job_done(j));
    assert_int_equal(j->end_ms, 240);
    assert_int_equal(j->reduces_done, 2);
    assert_int_equal(sched_assign(j, "w", ANY, 250), -1);
    sched_job_free(j);
}

static void test_degenerate_jobs(void **state)
{
    (void)state;
    /* No tasks at all: done as soon as it starts. */
    sched_job *j = started(0, 0, 1);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    assert_int_equal(j->end_ms, 200);
    sched_job_free(j);

    /* Map-only: the last map commits the job. */
    j = started(2, 0, 1);
    uint32_t a = assign(j, ANY, SCHED_MAP, 0, 300);
    uint32_t b = assign(j, ANY, SCHED_MAP, 1, 300);
    assert_int_equal(sched_assign(j, "w", ANY, 301), -1);
    succeed(j, a, 1, 310);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    succeed(j, b, 1, 320);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    sched_job_free(j);

    /* Reduce-only: reduces run at once. */
    j = started(0, 1, 1);
    a = assign(j, ANY, SCHED_REDUCE, 0, 300);
    succeed(j, a, 1, 310);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    sched_job_free(j);

    /* max_attempts 0 is taken as 1. */
    j = sched_job_new(1, 0, 0, 0);
    assert_int_equal(j->max_attempts, 1);
    sched_job_free(j);
}

static void test_attempt_ids_unique(void **state)
{
    (void)state;
    /* Many attempts (past the initial capacity of the attempt array), with failures and
     * kills: ids are 0, 1, 2, ... and index the attempts array. */
    sched_job *j = started(100, 10, 1000);
    char *seen = calloc(1000, 1);
    uint64_t now = 1000;
    uint32_t count = 0;
    while (!sched_job_done(j)) {
        int64_t a = sched_assign(j, "w", ANY, ++now);
        assert_true(a >= 0);
        assert_true(a < 1000);
        assert_false(seen[a]);
        seen[a] = 1;
        assert_int_equal(a, count);
        assert_int_equal(j->attempts[a].id, a);
        assert_string_equal(j->attempts[a].worker, "w");
        count++;
        if (count % 3 == 0) {
            assert_int_equal(sched_attempt_failed(j, (uint32_t)a, "flaky", 0, ++now), 1);
        } else if (count % 5 == 0) {
            assert_int_equal(sched_attempt_killed(j, (uint32_t)a, "lost", ++now), 1);
        } else {
            assert_int_equal(sched_attempt_succeeded(j, (uint32_t)a, NULL, ++now), 1);
        }
    }
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    assert_int_equal(j->nattempts, count);
    assert_true(count > 110);
    free(seen);
    sched_job_free(j);
}

/* ---- Failures ---------------------------------------------------------------------------- */

static void test_failure_requeues_until_max_attempts(void **state)
{
    (void)state;
    sched_job *j = started(2, 1, 3);
    uint32_t a0 = assign(j, ANY, SCHED_MAP, 0, 300);
    uint32_t a1 = assign(j, ANY, SCHED_MAP, 1, 300);
    /* Map 1 fails: back in the queue, behind nothing (map 0 is running). */
    assert_int_equal(sched_attempt_failed(j, a1, "disk error", 0, 310), 1);
    assert_int_equal(j->attempts[a1].state, SCHED_ATTEMPT_FAILED);
    assert_string_equal(j->attempts[a1].error, "disk error");
    assert_int_equal(j->attempts[a1].end_ms, 310);
    assert_int_equal(j->tasks[1].state, SCHED_TASK_PENDING);
    assert_int_equal(j->tasks[1].failures, 1);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    succeed(j, a0, 1, 315);
    /* Second failure: still pending. */
    uint32_t b1 = assign(j, ANY, SCHED_MAP, 1, 320);
    assert_int_not_equal(b1, a1);
    assert_int_equal(sched_attempt_failed(j, b1, "disk error", 0, 330), 1);
    assert_int_equal(j->tasks[1].failures, 2);
    assert_int_equal(j->tasks[1].state, SCHED_TASK_PENDING);
    /* Third failure with max_attempts 3: the job fails, naming the task and the error. */
    uint32_t c1 = assign(j, ANY, SCHED_MAP, 1, 340);
    assert_int_equal(sched_attempt_failed(j, c1, "out of memory", 0, 350), 1);
    assert_int_equal(j->tasks[1].failures, 3);
    assert_int_equal(j->tasks[1].state, SCHED_TASK_FAILED);
    assert_int_equal(j->state, SCHED_JOB_FAILED);
    assert_int_equal(j->end_ms, 350);
    assert_true(sched_job_done(j));
    assert_non_null(j->error);
    assert_non_null(strstr(j->error, "map task 1"));
    assert_non_null(strstr(j->error, "3 times"));
    assert_non_null(strstr(j->error, "out of memory"));
    /* Nothing more runs. */
    assert_int_equal(sched_assign(j, "w", ANY, 360), -1);
    sched_job_free(j);
}

static void test_failed_task_goes_to_back_of_queue(void **state)
{
    (void)state;
    sched_job *j = started(3, 0, 5);
    uint32_t a0 = assign(j, ANY, SCHED_MAP, 0, 300);
    assert_int_equal(sched_attempt_failed(j, a0, "x", 0, 301), 1);
    /* FIFO: maps 1 and 2 were waiting first. */
    assign(j, ANY, SCHED_MAP, 1, 302);
    assign(j, ANY, SCHED_MAP, 2, 303);
    assign(j, ANY, SCHED_MAP, 0, 304);
    assert_int_equal(sched_assign(j, "w", ANY, 305), -1);
    sched_job_free(j);
}

static void test_reduce_failure_names_reduce(void **state)
{
    (void)state;
    sched_job *j = started(1, 3, 2);
    succeed(j, assign(j, ANY, SCHED_MAP, 0, 300), 1, 301);
    uint32_t r0 = assign(j, ANY, SCHED_REDUCE, 0, 302);
    uint32_t r1 = assign(j, ANY, SCHED_REDUCE, 1, 302);
    assert_int_equal(sched_attempt_failed(j, r1, "bad input", 0, 303), 1);
    uint32_t r2 = assign(j, ANY, SCHED_REDUCE, 2, 304);
    r1 = assign(j, ANY, SCHED_REDUCE, 1, 305);
    assert_int_equal(sched_attempt_failed(j, r1, "bad input again", 0, 306), 1);
    assert_int_equal(j->state, SCHED_JOB_FAILED);
    assert_non_null(strstr(j->error, "reduce task 1"));
    assert_non_null(strstr(j->error, "bad input again"));
    /* Attempts still running when the job failed: a late success does not commit (nor
     * revive the job), a late failure does not change the error. */
    char *err = strdup(j->error);
    counters c;
    assert_int_equal(sched_attempt_succeeded(j, r0, with_records(&c, 99), 310), 0);
    counters_free(&c);
    assert_int_not_equal(j->attempts[r0].state, SCHED_ATTEMPT_SUCCEEDED);
    assert_int_equal(j->tasks[j->nmaps + 0].committed, -1);
    assert_int_equal(j->reduces_done, 0);
    sched_attempt_failed(j, r2, "something else", 1, 311);
    assert_int_equal(j->state, SCHED_JOB_FAILED);
    assert_string_equal(j->error, err);
    assert_int_equal(j->end_ms, 306);
    counters total;
    sched_job_counters(j, &total);
    assert_int_equal(total.v[CNT_INPUT_RECORDS], 1); /* only the committed map */
    counters_free(&total);
    free(err);
    sched_job_free(j);
}

static void test_fatal_failure_fails_at_once(void **state)
{
    (void)state;
    sched_job *j = started(2, 1, 10);
    uint32_t a0 = assign(j, ANY, SCHED_MAP, 0, 300);
    assign(j, ANY, SCHED_MAP, 1, 300);
    assert_int_equal(sched_attempt_failed(j, a0, "job has no map function", 1, 310), 1);
    assert_int_equal(j->tasks[0].failures, 1);
    assert_int_equal(j->tasks[0].state, SCHED_TASK_FAILED);
    assert_int_equal(j->state, SCHED_JOB_FAILED);
    assert_non_null(strstr(j->error, "map task 0"));
    assert_non_null(strstr(j->error, "job has no map function"));
    assert_int_equal(sched_assign(j, "w", ANY, 320), -1);
    sched_job_free(j);
}

static void test_killed_attempts_do_not_count(void **state)
{
    (void)state;
    /* With max_attempts 2, five kills in a row still leave the task runnable. */
    sched_job *j = started(1, 0, 2);
    for (int i = 0; i < 5; i++) {
        uint32_t a = assign(j, ANY, SCHED_MAP, 0, 300 + (uint64_t)i);
        assert_int_equal(sched_attempt_killed(j, a, "worker lost", 310 + (uint64_t)i), 1);
        assert_int_equal(j->attempts[a].state, SCHED_ATTEMPT_KILLED);
        assert_string_equal(j->attempts[a].error, "worker lost");
        assert_int_equal(j->tasks[0].failures, 0);
        assert_int_equal(j->tasks[0].state, SCHED_TASK_PENDING);
        assert_int_equal(j->tasks[0].running, 0);
    }
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    succeed(j, assign(j, ANY, SCHED_MAP, 0, 400), 1, 401);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    sched_job_free(j);
}

/* ---- Late and stale reports -------------------------------------------------------------- */

static void test_late_reports_ignored(void **state)
{
    (void)state;
    sched_job *j = started(2, 1, 3);
    uint32_t a = assign(j, ANY, SCHED_MAP, 0, 300);
    /* The worker is declared lost: the attempt is killed and the task re-queued. */
    assert_int_equal(sched_attempt_killed(j, a, "worker lost", 310), 1);
    /* Its result arrives later: ignored, whatever it says. */
    counters c;
    assert_int_equal(sched_attempt_succeeded(j, a, with_records(&c, 7), 320), 0);
    counters_free(&c);
    assert_int_equal(sched_attempt_failed(j, a, "late failure", 0, 321), 0);
    assert_int_equal(sched_attempt_failed(j, a, "late fatal", 1, 321), 0);
    assert_int_equal(sched_attempt_killed(j, a, "again", 322), 0);
    assert_int_equal(j->attempts[a].state, SCHED_ATTEMPT_KILLED);
    assert_string_equal(j->attempts[a].error, "worker lost");
    assert_int_equal(j->attempts[a].end_ms, 310);
    assert_int_equal(j->tasks[0].state, SCHED_TASK_PENDING);
    assert_int_equal(j->tasks[0].failures, 0);
    assert_int_equal(j->tasks[0].committed, -1);
    assert_int_equal(j->maps_done, 0);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);

    /* The retry commits; a report about the first attempt still changes nothing. */
    uint32_t b = assign(j, ANY, SCHED_MAP, 1, 330);
    uint32_t a2 = assign(j, ANY, SCHED_MAP, 0, 331);
    succeed(j, a2, 3, 340);
    assert_int_equal(sched_attempt_succeeded(j, a, NULL, 341), 0);
    assert_int_equal(j->tasks[0].committed, a2);
    /* A report about an attempt that succeeded is ignored too (duplicate message). */
    assert_int_equal(sched_attempt_succeeded(j, a2, NULL, 342), 0);
    assert_int_equal(sched_attempt_failed(j, a2, "dup", 0, 342), 0);
    assert_int_equal(j->maps_done, 1);
    assert_int_equal(j->tasks[0].failures, 0);
    /* Unknown attempt ids are ignored. */
    assert_int_equal(sched_attempt_succeeded(j, 9999, NULL, 343), 0);
    assert_int_equal(sched_attempt_failed(j, 9999, "?", 1, 343), 0);
    assert_int_equal(sched_attempt_killed(j, 9999, "?", 343), 0);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    succeed(j, b, 4, 350);
    succeed(j, assign(j, ANY, SCHED_REDUCE, 0, 360), 5, 370);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);

    counters total;
    sched_job_counters(j, &total);
    assert_int_equal(total.v[CNT_INPUT_RECORDS], 3 + 4 + 5); /* not the late 7 */
    counters_free(&total);
    sched_job_free(j);
}

/* ---- Lost map output --------------------------------------------------------------------- */

static void test_map_lost_requeues(void **state)
{
    (void)state;
    sched_job *j = started(2, 2, 3);
    uint32_t m0 = assign(j, ANY, SCHED_MAP, 0, 300);
    uint32_t m1 = assign(j, ANY, SCHED_MAP, 1, 300);
    /* Not committed yet: nothing to lose. */
    assert_int_equal(sched_map_lost(j, 0), 0);
    assert_int_equal(j->tasks[0].state, SCHED_TASK_RUNNING);
    succeed(j, m0, 10, 310);
    succeed(j, m1, 20, 311);
    uint32_t r0 = assign(j, ANY, SCHED_REDUCE, 0, 320);

    /* Map 1's worker dies with its output: the map runs again, reduces wait for it. */
    assert_int_equal(sched_map_lost(j, 1), 1);
    assert_int_equal(j->maps_done, 1);
    assert_int_equal(j->tasks[1].state, SCHED_TASK_PENDING);
    assert_int_equal(j->tasks[1].committed, -1);
    assert_int_equal(j->attempts[m1].state, SCHED_ATTEMPT_SUCCEEDED); /* history is kept */
    /* Losing it twice is a no-op; indices out of range are ignored. */
    assert_int_equal(sched_map_lost(j, 1), 0);
    assert_int_equal(j->maps_done, 1);
    assert_int_equal(sched_map_lost(j, 2), 0);
    assert_int_equal(sched_map_lost(j, 1000), 0);

    counters total;
    sched_job_counters(j, &total);
    assert_int_equal(total.v[CNT_INPUT_RECORDS], 10); /* the lost map's counters are gone */
    assert_int_equal(user_counter(&total, "seen"), 10);
    counters_free(&total);

    /* The map comes first; the pending reduce is not offered meanwhile. */
    uint32_t m1b = assign(j, ANY, SCHED_MAP, 1, 330);
    assert_int_equal(sched_assign(j, "w", ANY, 331), -1);
    /* The running reduce may finish; the job is not done before the map is. */
    succeed(j, r0, 1, 332);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    succeed(j, m1b, 21, 340);
    assert_int_equal(j->maps_done, 2);
    succeed(j, assign(j, ANY, SCHED_REDUCE, 1, 350), 2, 360);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);

    sched_job_counters(j, &total);
    assert_int_equal(total.v[CNT_INPUT_RECORDS], 10 + 21 + 1 + 2);
    assert_int_equal(total.v[CNT_TASK_ATTEMPTS], 5); /* m0, m1, r0, m1 again, r1 */
    counters_free(&total);

    /* After the job is over, nothing is lost any more. */
    assert_int_equal(sched_map_lost(j, 0), 0);
    assert_int_equal(j->maps_done, 2);
    sched_job_free(j);
}

static void test_map_lost_is_retried_not_failed(void **state)
{
    (void)state;
    /* Losing output is not the map's fault: it does not use up attempts. */
    sched_job *j = started(1, 1, 1);
    for (int i = 0; i < 3; i++) {
        succeed(j, assign(j, ANY, SCHED_MAP, 0, 300 + (uint64_t)i), 1, 310 + (uint64_t)i);
        assert_int_equal(sched_map_lost(j, 0), 1);
        assert_int_equal(j->tasks[0].failures, 0);
    }
    succeed(j, assign(j, ANY, SCHED_MAP, 0, 400), 1, 401);
    succeed(j, assign(j, ANY, SCHED_REDUCE, 0, 402), 1, 403);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    sched_job_free(j);
}

/* ---- Cancel ------------------------------------------------------------------------------ */

static void test_cancel_kills_running(void **state)
{
    (void)state;
    sched_job *j = started(3, 1, 3);
    uint32_t a0 = assign(j, ANY, SCHED_MAP, 0, 300);
    uint32_t a1 = assign(j, ANY, SCHED_MAP, 1, 300);
    succeed(j, a0, 5, 305);
    uint32_t a2 = assign(j, ANY, SCHED_MAP, 2, 306);
    sched_job_cancel(j, "user asked", 310);
    assert_int_equal(j->state, SCHED_JOB_CANCELLED);
    assert_true(sched_job_done(j));
    assert_int_equal(j->end_ms, 310);
    assert_string_equal(j->error, "user asked");
    assert_int_equal(j->attempts[a0].state, SCHED_ATTEMPT_SUCCEEDED);
    assert_int_equal(j->attempts[a1].state, SCHED_ATTEMPT_KILLED);
    assert_int_equal(j->attempts[a2].state, SCHED_ATTEMPT_KILLED);
    assert_int_equal(j->attempts[a1].end_ms, 310);
    assert_int_equal(j->tasks[1].running, 0);
    assert_int_equal(j->tasks[2].running, 0);
    assert_int_equal(sched_assign(j, "w", ANY, 320), -1);
    /* Results of the killed attempts arrive later: ignored. */
    assert_int_equal(sched_attempt_succeeded(j, a1, NULL, 330), 0);
    assert_int_equal(sched_attempt_failed(j, a2, "x", 1, 330), 0);
    assert_int_equal(j->state, SCHED_JOB_CANCELLED);
    /* A second cancel or a lost map changes nothing. */
    sched_job_cancel(j, "again", 340);
    assert_string_equal(j->error, "user asked");
    assert_int_equal(j->end_ms, 310);
    assert_int_equal(sched_map_lost(j, 0), 0);
    sched_job_free(j);

    /* A queued job can be cancelled; a finished one cannot. */
    j = sched_job_new(1, 1, 1, 0);
    sched_job_cancel(j, NULL, 5);
    assert_int_equal(j->state, SCHED_JOB_CANCELLED);
    assert_non_null(j->error);
    sched_job_start(j, 6);
    assert_int_equal(j->state, SCHED_JOB_CANCELLED);
    sched_job_free(j);

    j = started(0, 0, 1);
    sched_job_cancel(j, "late", 300);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    sched_job_free(j);
}

/* ---- Counters ---------------------------------------------------------------------------- */

static void test_counters_from_committed_only(void **state)
{
    (void)state;
    sched_job *j = started(3, 2, 4);
    counters c, total;
    uint32_t m0 = assign(j, ANY, SCHED_MAP, 0, 300);
    uint32_t m1 = assign(j, ANY, SCHED_MAP, 1, 300);
    uint32_t m2 = assign(j, ANY, SCHED_MAP, 2, 300);
    /* A failed attempt's counters never count (reports of failure carry none). */
    assert_int_equal(sched_attempt_failed(j, m1, "x", 0, 301), 1);
    succeed(j, m0, 100, 302);
    /* Before the job ends, the sum is that of the committed tasks so far. */
    sched_job_counters(j, &total);
    assert_int_equal(total.v[CNT_INPUT_RECORDS], 100);
    assert_int_equal(user_counter(&total, "seen"), 100);
    assert_int_equal(total.v[CNT_MAP_TASKS], 3);
    assert_int_equal(total.v[CNT_REDUCE_TASKS], 2);
    assert_int_equal(total.v[CNT_TASK_ATTEMPTS], 3);
    counters_free(&total);

    assert_int_equal(sched_attempt_killed(j, m2, "lost", 303), 1);
    uint32_t m1b = assign(j, ANY, SCHED_MAP, 1, 304);
    uint32_t m2b = assign(j, ANY, SCHED_MAP, 2, 304);
    succeed(j, m1b, 20, 305);
    /* A committed attempt's counters are its own, not added to a previous one. */
    succeed(j, m2b, 3, 306);
    uint32_t r0 = assign(j, ANY, SCHED_REDUCE, 0, 307);
    uint32_t r1 = assign(j, ANY, SCHED_REDUCE, 1, 307);
    counters_init(&c);
    c.v[CNT_OUTPUT_RECORDS] = 7;
    counters_add_user(&c, "reduced", 2);
    assert_int_equal(sched_attempt_succeeded(j, r0, &c, 310), 1);
    counters_free(&c);
    succeed(j, r1, 4000, 311);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);

    sched_job_counters(j, &total);
    assert_int_equal(total.v[CNT_INPUT_RECORDS], 100 + 20 + 3 + 4000);
    assert_int_equal(user_counter(&total, "seen"), 100 + 20 + 3 + 4000);
    assert_int_equal(total.v[CNT_OUTPUT_RECORDS], 7);
    assert_int_equal(user_counter(&total, "reduced"), 2);
    assert_int_equal(total.v[CNT_MAP_TASKS], 3);
    assert_int_equal(total.v[CNT_REDUCE_TASKS], 2);
    /* Every attempt started counts: 3 + 2 retries + 2 reduces. */
    assert_int_equal(total.v[CNT_TASK_ATTEMPTS], 7);
    assert_int_equal(total.v[CNT_TASK_ATTEMPTS], (int64_t)j->nattempts);
    counters_free(&total);
    sched_job_free(j);
}

/* ---- Bad records: the skip limit and crash notes ----------------------------------------- */

/* Succeeds map attempt a with `in` input records of which `skipped` were skipped. */
static void succeed_skipping(sched_job *j, uint32_t a, int64_t in, int64_t skipped, const char *example, uint64_t now)
{
    counters c;
    counters_init(&c);
    c.v[CNT_INPUT_RECORDS] = in;
    c.v[CNT_RECORDS_SKIPPED] = skipped;
    sched_note_skip(j, example);
    assert_int_equal(sched_attempt_succeeded(j, a, &c, now), 1);
    counters_free(&c);
}

static void test_too_many_skipped_fails_after_the_maps(void **state)
{
    (void)state;
    /* Without a limit (the default of sched_job_new) any number of skips is fine. */
    sched_job *j = started(2, 1, 4);
    succeed_skipping(j, assign(j, ANY, SCHED_MAP, 0, 300), 100, 100, "f: offset 0: bad", 301);
    succeed_skipping(j, assign(j, ANY, SCHED_MAP, 1, 302), 100, 100, NULL, 303);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    sched_job_free(j);

    /* 10% allowed: 15 of 200 pass; the check waits for the last map. */
    j = started(2, 1, 4);
    j->max_skipped_ratio = 0.1;
    succeed_skipping(j, assign(j, ANY, SCHED_MAP, 0, 300), 100, 15, "f: offset 7: missing field 'x'", 301);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    succeed_skipping(j, assign(j, ANY, SCHED_MAP, 1, 302), 100, 0, NULL, 303);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    sched_job_free(j);

    /* 21 of 200 is more than 10%: the job fails once every map is in, naming the first skip. */
    j = started(2, 1, 4);
    j->max_skipped_ratio = 0.1;
    uint32_t m0 = assign(j, ANY, SCHED_MAP, 0, 300);
    uint32_t m1 = assign(j, ANY, SCHED_MAP, 1, 300);
    succeed_skipping(j, m0, 100, 20, "f: offset 7: missing field 'x'", 301);
    assert_int_equal(j->state, SCHED_JOB_RUNNING);
    succeed_skipping(j, m1, 100, 1, "g: offset 9: other", 302);
    assert_int_equal(j->state, SCHED_JOB_FAILED);
    assert_non_null(strstr(j->error, "21 of 200"));
    assert_non_null(strstr(j->error, "f: offset 7: missing field 'x'"));
    assert_non_null(strstr(j->error, "--max-skipped-ratio"));
    assert_int_equal(sched_assign(j, "w1", ANY, 303), -1); /* no reduce runs */
    sched_job_free(j);

    /* Records skipped for being too long are not input records: all skipped is still 100%. */
    j = started(1, 1, 4);
    j->max_skipped_ratio = 0.5;
    succeed_skipping(j, assign(j, ANY, SCHED_MAP, 0, 300), 0, 3, "h: offset 0: record longer than --max-record", 301);
    assert_int_equal(j->state, SCHED_JOB_FAILED);
    assert_non_null(strstr(j->error, "3 of 3"));
    sched_job_free(j);
}

static void test_crashing_records_are_skipped_after_two(void **state)
{
    (void)state;
    sched_job *j = started(2, 1, 4);
    const sched_crash *sk[SCHED_MAX_CRASHES];
    assert_int_equal(sched_map_skips(j, 0, sk, SCHED_MAX_CRASHES), 0);
    sched_note_crash(j, 0, "a.txt", 40);
    assert_int_equal(sched_map_skips(j, 0, sk, SCHED_MAX_CRASHES), 0); /* once may be bad luck */
    sched_note_crash(j, 1, "a.txt", 40);                               /* another map's count */
    sched_note_crash(j, 0, "b.txt", 40);                               /* another file */
    sched_note_crash(j, 0, "a.txt", 40);
    assert_int_equal(sched_map_skips(j, 0, sk, SCHED_MAX_CRASHES), 1);
    assert_string_equal(sk[0]->file, "a.txt");
    assert_int_equal(sk[0]->offset, 40);
    assert_int_equal(sched_map_skips(j, 1, sk, SCHED_MAX_CRASHES), 0);
    /* At most SCHED_MAX_CRASHES distinct records per map are remembered (map 1 has a.txt:40). */
    for (uint64_t off = 1000; off < 1000 + 2 * SCHED_MAX_CRASHES; off++) {
        sched_note_crash(j, 1, "c.txt", off);
        sched_note_crash(j, 1, "c.txt", off);
    }
    assert_int_equal(sched_map_skips(j, 1, sk, SCHED_MAX_CRASHES), SCHED_MAX_CRASHES - 1);
    sched_job_free(j);
}

static void test_state_names(void **state)
{
    (void)state;
    assert_string_equal(sched_job_state_name(SCHED_JOB_QUEUED), "queued");
    assert_string_equal(sched_job_state_name(SCHED_JOB_RUNNING), "running");
    assert_string_equal(sched_job_state_name(SCHED_JOB_SUCCEEDED), "succeeded");
    assert_string_equal(sched_job_state_name(SCHED_JOB_FAILED), "failed");
    assert_string_equal(sched_job_state_name(SCHED_JOB_CANCELLED), "cancelled");
    assert_string_equal(sched_task_state_name(SCHED_TASK_PENDING), "pending");
    assert_string_equal(sched_task_state_name(SCHED_TASK_FAILED), "failed");
    assert_string_equal(sched_attempt_state_name(SCHED_ATTEMPT_KILLED), "killed");
    assert_string_equal(sched_attempt_state_name(SCHED_ATTEMPT_SUCCEEDED), "succeeded");
}

/* ---- A randomized run against the invariants --------------------------------------------- */

static uint64_t rng_state = 0x853C49E6748FEA9Bull;

static uint32_t rnd(uint32_t n)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return n ? (uint32_t)(rng_state % n) : 0;
}

/* Random assignments and reports (success, failure, kill, lost maps, stale reports); after
 * every step the invariants hold: no reduce runs while a map is not committed, a task's
 * `running` equals its running attempts, maps_done and reduces_done count committed tasks,
 * each task is in its queue iff pending, and a job ends only as the rules say. */
static void check_invariants(const sched_job *j)
{
    uint32_t maps_done = 0, reduces_done = 0, running_all = 0;
    for (uint32_t t = 0; t < j->nmaps + j->nreduces; t++) {
        const sched_task *task = &j->tasks[t];
        uint32_t running = 0, failed = 0;
        int64_t committed = -1;
        for (size_t a = 0; a < j->nattempts; a++) {
            if (j->attempts[a].task != t) continue;
            running += j->attempts[a].state == SCHED_ATTEMPT_RUNNING;
            failed += j->attempts[a].state == SCHED_ATTEMPT_FAILED;
            if (j->attempts[a].state == SCHED_ATTEMPT_SUCCEEDED) committed = (int64_t)a;
        }
        assert_int_equal(task->running, running);
        assert_int_equal(task->failures, failed);
        running_all += running;
        assert_true(running <= 2); /* an attempt and at most one copy */
        /* A commit kills its sibling at once. */
        if (task->state == SCHED_TASK_SUCCEEDED) assert_int_equal(running, 0);
        if (task->state == SCHED_TASK_SUCCEEDED) {
            assert_true(task->committed >= 0);
            assert_int_equal(j->attempts[task->committed].state, SCHED_ATTEMPT_SUCCEEDED);
            assert_true(committed >= 0);
            if (task->phase == SCHED_MAP) maps_done++;
            else reduces_done++;
        } else {
            assert_int_equal(task->committed, -1);
        }
        if (j->state == SCHED_JOB_RUNNING && task->state == SCHED_TASK_PENDING)
            assert_int_equal(running, 0);
        /* Out of attempts is fine while its other attempt still runs (it may commit), or for a
         * map that then committed (its output may be lost and its re-run have no attempt left). */
        if (j->state == SCHED_JOB_RUNNING) {
            assert_true(task->failures <= j->max_attempts);
            assert_true(task->failures < j->max_attempts || task->running > 0 || committed >= 0);
        }
    }
    assert_int_equal(j->running, running_all);
    assert_int_equal(j->maps_done, maps_done);
    assert_int_equal(j->reduces_done, reduces_done);
    /* While the job runs, each pending task is queued exactly once, and nothing else is. */
    if (j->state == SCHED_JOB_RUNNING) {
        uint32_t n = j->nmaps + j->nreduces;
        uint32_t *queued = calloc(n ? n : 1, sizeof *queued);
        for (int ph = 0; ph < 2; ph++)
            for (uint32_t i = 0; i < j->ring_len[ph]; i++) {
                uint32_t t = j->ring[ph][(j->ring_head[ph] + i) % j->ring_cap[ph]];
                assert_true(t < n);
                assert_int_equal(j->tasks[t].phase, ph);
                queued[t]++;
            }
        for (uint32_t t = 0; t < n; t++)
            assert_int_equal(queued[t], j->tasks[t].state == SCHED_TASK_PENDING);
        free(queued);
    }
    if (j->state == SCHED_JOB_SUCCEEDED) {
        /* Every reduce committed; a map output lost after that need not be made again. */
        assert_int_equal(reduces_done, j->nreduces);
        if (j->nreduces == 0) assert_int_equal(maps_done, j->nmaps);
    }
    if (j->state == SCHED_JOB_FAILED) assert_non_null(j->error);
    /* A job that is over has nothing running; waiting reducers are counted exactly. */
    uint32_t blocked = 0;
    for (size_t i = 0; i < j->nattempts; i++) {
        if (sched_job_done(j)) assert_int_not_equal(j->attempts[i].state, SCHED_ATTEMPT_RUNNING);
        if (j->attempts[i].blocked_on >= 0) {
            assert_int_equal(j->attempts[i].state, SCHED_ATTEMPT_RUNNING);
            blocked++;
        }
    }
    assert_int_equal(blocked, j->blocked);
}

static void test_random_runs(void **state)
{
    (void)state;
    for (int run = 0; run < 200; run++) {
        uint32_t nmaps = rnd(6), nreduces = rnd(4), maxa = 1 + rnd(4);
        sched_job *j = started(nmaps, nreduces, maxa);
        uint64_t now = 1000;
        uint32_t *live = calloc(4096, sizeof *live);
        size_t nlive = 0;
        for (int step = 0; step < 400 && !sched_job_done(j); step++) {
            uint32_t op = rnd(10);
            now++;
            if (op < 4) {
                unsigned mask = rnd(4) ? ANY : rnd(2) ? MAPS : REDUCES;
                uint32_t undone = j->nmaps - j->maps_done;
                int64_t a = sched_assign(j, "w", mask, now);
                if (a >= 0) {
                    const sched_task *t = task_of(j, (uint32_t)a);
                    if (t->phase == SCHED_REDUCE) assert_int_equal(undone, 0);
                    assert_true(mask & (1u << t->phase));
                    live[nlive++] = (uint32_t)a;
                }
            } else if (op < 8 && nlive) {
                size_t i = rnd((uint32_t)nlive);
                uint32_t a = live[i];
                live[i] = live[--nlive];
                uint32_t kind = rnd(10);
                if (kind < 6) sched_attempt_succeeded(j, a, NULL, now);
                else if (kind < 8) sched_attempt_failed(j, a, "random", rnd(20) == 0, now);
                else sched_attempt_killed(j, a, "random", now);
            } else if (op == 8 && j->nattempts) {
                /* A stale report about any attempt. */
                uint32_t a = rnd((uint32_t)j->nattempts);
                if (j->attempts[a].state != SCHED_ATTEMPT_RUNNING) {
                    sched_attempt_state before = j->attempts[a].state;
                    assert_int_equal(sched_attempt_succeeded(j, a, NULL, now), 0);
                    assert_int_equal(sched_attempt_failed(j, a, "stale", 0, now), 0);
                    assert_int_equal(j->attempts[a].state, before);
                }
            } else if (op == 9 && nmaps && rnd(3) == 0) {
                sched_map_lost(j, rnd(nmaps));
            } else if (op == 9 && nlive && rnd(2) == 0) {
                /* A copy of a running task (with one attempt), as the coordinator starts them. */
                uint32_t a = live[rnd((uint32_t)nlive)];
                uint32_t t = j->attempts[a].task;
                if (j->tasks[t].running == 1) {
                    int64_t c = sched_start_copy(j, t, "w2", rnd(2) ? SCHED_COPY_STRAGGLER : SCHED_COPY_MIGRATE, now);
                    assert_true(c >= 0);
                    live[nlive++] = (uint32_t)c;
                }
            } else if (op == 9 && nmaps && nlive) {
                /* A running attempt says it waits for a map (accepted for reduces only). */
                sched_reduce_blocked(j, live[rnd((uint32_t)nlive)], rnd(nmaps));
            }
            check_invariants(j);
        }
        free(live);
        sched_job_free(j);
    }
}

/* Progress is taken from running attempts only, clamped to 0..1, and a success sets it to 1;
 * a reduce keeps running while a map it needs is lost and re-run (it waits for the output). */
static void test_progress_and_reduce_survives_map_loss(void **unused)
{
    (void)unused;
    sched_job *j = started(2, 1, 4);
    uint32_t m0 = assign(j, ANY, SCHED_MAP, 0, 300), m1 = assign(j, ANY, SCHED_MAP, 1, 300);
    int64_t live[CNT_NBUILTIN] = {0};
    live[CNT_INPUT_RECORDS] = 42;
    sched_attempt_progress(j, m0, 0.25, live, 310);
    assert_true(j->attempts[m0].progress == 0.25);
    assert_int_equal(j->attempts[m0].live[CNT_INPUT_RECORDS], 42);
    assert_int_equal(j->attempts[m0].progress_ms, 310);
    sched_attempt_progress(j, m0, 7.0, NULL, 320);
    assert_true(j->attempts[m0].progress == 1.0);
    sched_attempt_progress(j, m1, -3.0, NULL, 320);
    assert_true(j->attempts[m1].progress == 0.0);
    assert_int_equal(sched_attempt_succeeded(j, m0, NULL, 400), 1);
    assert_true(j->attempts[m0].progress == 1.0);
    assert_int_equal(sched_attempt_succeeded(j, m1, NULL, 400), 1);
    /* Not running any more: ignored. */
    sched_attempt_progress(j, m1, 0.5, live, 410);
    assert_true(j->attempts[m1].progress == 1.0);
    uint32_t r0 = assign(j, ANY, SCHED_REDUCE, 0, 500);
    /* Map 1's output is lost while the reduce fetches: the map runs again, the reduce goes on,
     * waiting for it until the map commits. */
    assert_int_equal(sched_reduce_blocked(j, r0, 0), 0); /* map 0 is there: nothing to wait for */
    assert_int_equal(sched_map_lost(j, 1), 1);
    assert_int_equal(sched_reduce_blocked(j, r0, 1), 1);
    assert_int_equal(sched_reduce_blocked(j, m1, 1), 0); /* not a running reduce */
    assert_int_equal(j->blocked, 1);
    assert_int_equal(j->attempts[r0].blocked_on, 1);
    assert_int_equal(j->attempts[r0].state, SCHED_ATTEMPT_RUNNING);
    uint32_t m1b = assign(j, ANY, SCHED_MAP, 1, 600);
    assert_int_equal(j->blocked, 1);
    assert_int_equal(sched_assign(j, "w2", ANY, 600), -1);
    assert_int_equal(sched_attempt_succeeded(j, m1b, NULL, 700), 1);
    assert_int_equal(j->blocked, 0);
    assert_int_equal(j->attempts[r0].blocked_on, -1);
    assert_int_equal(sched_attempt_succeeded(j, r0, NULL, 800), 1);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    assert_int_equal(j->nattempts, 4);
    sched_job_free(j);

    /* A map lost after its reducer fetched it: the last reduce ends the job, and the map's
     * re-run, no longer needed, is killed. */
    j = started(1, 1, 4);
    m0 = assign(j, ANY, SCHED_MAP, 0, 300);
    assert_int_equal(sched_attempt_succeeded(j, m0, NULL, 400), 1);
    r0 = assign(j, ANY, SCHED_REDUCE, 0, 500);
    assert_int_equal(sched_map_lost(j, 0), 1);
    uint32_t m0b = assign(j, ANY, SCHED_MAP, 0, 600);
    assert_int_equal(sched_attempt_succeeded(j, r0, NULL, 700), 1);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    assert_int_equal(j->attempts[m0b].state, SCHED_ATTEMPT_KILLED);
    assert_int_equal(j->tasks[0].running, 0);
    sched_job_free(j);
}

/* ---- Copies: speculation and migration ---------------------------------------------------- */

static double slow_w1(void *arg, const char *worker)
{
    (void)arg;
    return strcmp(worker, "w1") == 0 ? 10 : 1;
}

static int probation_w1(void *arg, const char *worker)
{
    (void)arg;
    return strcmp(worker, "w1") == 0;
}

static int probation_w2(void *arg, const char *worker)
{
    (void)arg;
    return strcmp(worker, "w2") == 0;
}

static const sched_spec spec_plain = {.factor = 2, .min_ms = 100, .min_gain_ms = 50};

static void test_straggler_copied_and_first_to_finish_commits(void **state)
{
    (void)state;
    sched_job *j = started(3, 0, 4);
    counters c;
    /* Two maps take 100 ms on w2; the third is on w1 and has done 10% after 400 ms. */
    uint32_t a0 = (uint32_t)sched_assign(j, "w2", ANY, 1000);
    uint32_t a1 = (uint32_t)sched_assign(j, "w2", ANY, 1000);
    uint32_t a2 = (uint32_t)sched_assign(j, "w1", ANY, 1000);
    assert_int_equal(sched_attempt_succeeded(j, a0, with_records(&c, 1), 1100), 1);
    counters_free(&c);
    assert_int_equal(sched_attempt_succeeded(j, a1, with_records(&c, 1), 1100), 1);
    counters_free(&c);
    /* Too young (50 ms): no copy, whatever its estimate. */
    sched_attempt_progress(j, a2, 0.01, NULL, 1050);
    assert_int_equal(sched_pick_copy(j, "w2", &spec_plain, SCHED_COPY_STRAGGLER, 1050, NULL), -1);
    sched_attempt_progress(j, a2, 0.1, NULL, 1400);
    /* Never on its own worker. */
    assert_int_equal(sched_pick_copy(j, "w1", &spec_plain, SCHED_COPY_STRAGGLER, 1400, NULL), -1);
    sched_copy_why why;
    int64_t t = sched_pick_copy(j, "w2", &spec_plain, SCHED_COPY_STRAGGLER, 1400, &why);
    assert_int_equal(t, j->attempts[a2].task);
    assert_int_equal(why.attempt, a2);
    assert_true(why.left_ms > 3000 && why.left_ms < 4000); /* 0.9 / (0.1 / 400 ms) = 3600 ms */
    assert_true(why.fresh_ms > 99 && why.fresh_ms < 101); /* the median map here: 100 ms */
    int64_t copy = sched_start_copy(j, (uint32_t)t, "w2", SCHED_COPY_STRAGGLER, 1400);
    assert_true(copy > a2);
    assert_int_equal(j->attempts[copy].copy, SCHED_COPY_STRAGGLER);
    assert_int_equal(j->tasks[t].running, 2);
    assert_int_equal(j->running, 2);
    /* One copy per task: nothing more to copy. */
    assert_int_equal(sched_pick_copy(j, "w3", &spec_plain, SCHED_COPY_STRAGGLER, 1500, NULL), -1);
    /* The copy commits first: the original is killed at once, and its late success ignored. */
    assert_int_equal(sched_attempt_succeeded(j, (uint32_t)copy, with_records(&c, 1), 1500), 1);
    counters_free(&c);
    assert_int_equal(j->attempts[a2].state, SCHED_ATTEMPT_KILLED);
    assert_non_null(strstr(j->attempts[a2].error, "superseded"));
    assert_true(j->attempts[a2].superseded);
    assert_false(j->attempts[copy].superseded);
    assert_int_equal(j->tasks[t].committed, copy);
    assert_int_equal(j->running, 0);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    assert_int_equal(sched_attempt_succeeded(j, a2, with_records(&c, 1), 1600), 0);
    counters_free(&c);
    sched_summary sum;
    sched_job_summary(j, &sum);
    assert_int_equal(sum.attempts, 4);
    assert_int_equal(sum.speculative, 1);
    assert_int_equal(sum.killed, 1);
    assert_string_equal(sum.slowest_worker, "w1");
    assert_int_equal(sum.slowest_ms, 500);
    sched_job_free(j);
}

static void test_no_copy_of_a_normal_attempt(void **state)
{
    (void)state;
    sched_job *j = started(4, 0, 4);
    counters c;
    uint32_t a[4];
    for (int i = 0; i < 4; i++) a[i] = (uint32_t)sched_assign(j, i < 2 ? "w1" : "w2", ANY, 1000);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(sched_attempt_succeeded(j, a[i], with_records(&c, 1), 1200), 1);
        counters_free(&c);
    }
    /* Half done after 150 ms of a 200 ms median: about 150 ms left, no reason to copy. */
    sched_attempt_progress(j, a[2], 0.5, NULL, 1150);
    sched_attempt_progress(j, a[3], 0.6, NULL, 1150);
    assert_int_equal(sched_pick_copy(j, "w1", &spec_plain, SCHED_COPY_STRAGGLER, 1150, NULL), -1);
    /* Migration only moves attempts off a worker on probation: none of these is on one... */
    sched_spec sp = spec_plain;
    sp.probation = probation_w1;
    assert_int_equal(sched_pick_copy(j, "w1", &sp, SCHED_COPY_MIGRATE, 1150, NULL), -1);
    /* ...and nothing moves from w1 to w1. With w2 on probation, its attempts that have run as
     * long as a fresh run (the 200 ms median) and have more than that left move. */
    sp.probation = probation_w2;
    assert_int_equal(sched_pick_copy(j, "w1", &sp, SCHED_COPY_MIGRATE, 1150, NULL), -1);
    sched_attempt_progress(j, a[2], 0.1, NULL, 1300);
    assert_int_equal(sched_pick_copy(j, "w1", &sp, SCHED_COPY_MIGRATE, 1300, NULL), j->attempts[a[2]].task);
    sched_job_free(j);
}

/* R=1, the single reduce on the slow worker: no other reduce ever finishes, so the estimate
 * comes from the workers' slowness (10x on w1). */
static void test_single_reduce_on_slow_worker_is_copied(void **state)
{
    (void)state;
    sched_job *j = started(1, 1, 4);
    counters c;
    uint32_t m = (uint32_t)sched_assign(j, "w2", ANY, 1000);
    assert_int_equal(sched_attempt_succeeded(j, m, with_records(&c, 1), 1100), 1);
    counters_free(&c);
    uint32_t r = (uint32_t)sched_assign(j, "w1", ANY, 1100);
    sched_attempt_progress(j, r, 0.05, NULL, 1300);
    assert_int_equal(sched_pick_copy(j, "w2", &spec_plain, SCHED_COPY_STRAGGLER, 1300, NULL), -1);
    sched_spec sp = spec_plain;
    sp.slowness = slow_w1;
    sched_copy_why why;
    assert_int_equal(sched_pick_copy(j, "w2", &sp, SCHED_COPY_STRAGGLER, 1300, &why), j->attempts[r].task);
    assert_true(why.fresh_ms < why.left_ms / 5);
    /* On probation: migrated, whatever --speculation-min-ms, once it has run as long as a fresh
     * run elsewhere would take (400 ms here: a probe that is fast after all finishes first). */
    sp.probation = probation_w1;
    sp.min_ms = 100000;
    assert_int_equal(sched_pick_copy(j, "w2", &sp, SCHED_COPY_MIGRATE, 1300, NULL), -1);
    assert_int_equal(sched_pick_copy(j, "w2", &sp, SCHED_COPY_MIGRATE, 1600, NULL), j->attempts[r].task);
    int64_t copy = sched_start_copy(j, j->attempts[r].task, "w2", SCHED_COPY_MIGRATE, 1600);
    /* The original finishes first after all: it commits and the copy is killed. */
    assert_int_equal(sched_attempt_succeeded(j, r, with_records(&c, 1), 1400), 1);
    counters_free(&c);
    assert_int_equal(j->attempts[copy].state, SCHED_ATTEMPT_KILLED);
    assert_int_equal(j->state, SCHED_JOB_SUCCEEDED);
    sched_job_free(j);
}

/* A copy's failure leaves the original running; the task is not pending twice. */
static void test_failed_copy_leaves_original(void **state)
{
    (void)state;
    sched_job *j = started(1, 0, 4);
    uint32_t a = (uint32_t)sched_assign(j, "w1", ANY, 1000);
    int64_t copy = sched_start_copy(j, j->attempts[a].task, "w2", SCHED_COPY_STRAGGLER, 1500);
    assert_true(copy >= 0);
    assert_int_equal(sched_attempt_failed(j, (uint32_t)copy, "disk full", 0, 1600), 1);
    assert_int_equal(j->tasks[0].state, SCHED_TASK_RUNNING);
    assert_int_equal(j->tasks[0].running, 1);
    assert_int_equal(sched_assign(j, "w3", ANY, 1700), -1);
    /* No copy of a task that is not running. */
    counters c;
    assert_int_equal(sched_attempt_succeeded(j, a, with_records(&c, 1), 1800), 1);
    counters_free(&c);
    assert_int_equal(sched_start_copy(j, 0, "w2", SCHED_COPY_STRAGGLER, 1900), -1);
    sched_job_free(j);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_maps_before_reduces),
        cmocka_unit_test(test_degenerate_jobs),
        cmocka_unit_test(test_attempt_ids_unique),
        cmocka_unit_test(test_failure_requeues_until_max_attempts),
        cmocka_unit_test(test_failed_task_goes_to_back_of_queue),
        cmocka_unit_test(test_reduce_failure_names_reduce),
        cmocka_unit_test(test_fatal_failure_fails_at_once),
        cmocka_unit_test(test_killed_attempts_do_not_count),
        cmocka_unit_test(test_late_reports_ignored),
        cmocka_unit_test(test_map_lost_requeues),
        cmocka_unit_test(test_map_lost_is_retried_not_failed),
        cmocka_unit_test(test_cancel_kills_running),
        cmocka_unit_test(test_counters_from_committed_only),
        cmocka_unit_test(test_too_many_skipped_fails_after_the_maps),
        cmocka_unit_test(test_crashing_records_are_skipped_after_two),
        cmocka_unit_test(test_state_names),
        cmocka_unit_test(test_progress_and_reduce_survives_map_loss),
        cmocka_unit_test(test_random_runs),
        cmocka_unit_test(test_straggler_copied_and_first_to_finish_commits),
        cmocka_unit_test(test_no_copy_of_a_normal_attempt),
        cmocka_unit_test(test_single_reduce_on_slow_worker_is_copied),
        cmocka_unit_test(test_failed_copy_leaves_original),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
