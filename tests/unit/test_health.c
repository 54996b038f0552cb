/* test_health.c - unit tests for the per-worker statistics, the slow rule and probation
 * (src/exec/health.c), driven by hand with explicit times as the coordinator drives them. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "exec/health.h"

static const health_rule rule = {.enabled = 1, .factor = 2, .checks = 3, .window = 20, .window_ms = 600000,
                                 .min_samples = 3, .probes_ok = 3, .min_probation_ms = 1000, .probe_every_ms = 500};

/* One "iteration": every worker runs `per` maps of group g; w3 takes `slow` times as long. */
static void iteration(health *h, uint64_t g, double slow, uint64_t now, int per)
{
    static const char *names[] = {"w1", "w2", "w3"};
    for (int k = 0; k < per; k++)
        for (int i = 0; i < 3; i++) {
            double ms = (20 + 2 * k + i) * (i == 2 ? slow : 1);
            health_note_attempt(h, names[i], g, 7, SCHED_MAP, ms, 1, 1, 1 << 20, now, NULL);
        }
}

static void test_slow_worker_put_on_probation_after_k_checks(void **state)
{
    (void)state;
    health h;
    health_init(&h, &rule);
    health_event ev[4];
    uint64_t now = 1000;
    /* 3x slower: a violation at each check, probation at the third. */
    for (int it = 1; it <= 3; it++) {
        iteration(&h, (uint64_t)it, 3, now, 3);
        size_t n = health_check(&h, now, 3, ev, 4);
        assert_int_equal(n, it == 3 ? 1 : 0);
        assert_int_equal(health_suspect(&h, "w3"), it < 3); /* score >= 1.5 x 2 */
        now += 100;
    }
    assert_string_equal(ev[0].worker, "w3");
    assert_int_equal(ev[0].to, HEALTH_PROBATION);
    assert_true(ev[0].score > 2.5 && ev[0].score < 4);
    assert_true(health_on_probation(&h, "w3"));
    assert_false(health_on_probation(&h, "w1"));
    assert_false(health_suspect(&h, "w1"));
    assert_true(health_slowness(&h, "w3") > 2.5);
    assert_true(health_slowness(&h, "w1") < 1.5);
    /* The history of the healthy workers' runs of this job. */
    assert_true(health_history_ms(&h, 7, SCHED_MAP) >= 20 && health_history_ms(&h, 7, SCHED_MAP) <= 25);
    assert_true(health_history_ms(&h, 8, SCHED_MAP) == 0);
    /* Probes: due every probe_every_ms. */
    assert_false(health_probe_due(&h, "w3", now));
    assert_true(health_probe_due(&h, "w3", now + 500));
    health_probe_sent(&h, "w3", now + 500);
    assert_false(health_probe_due(&h, "w3", now + 600));
    /* A slow probe keeps it there; three fast ones (after the minimum time) end it. */
    iteration(&h, 9, 1, now, 2);
    health_event back;
    assert_int_equal(health_note_attempt(&h, "w3", 9, 7, SCHED_MAP, 200, 1, 1, 1 << 20, now + 600, &back), 0);
    assert_int_equal(health_note_attempt(&h, "w3", 9, 7, SCHED_MAP, 21, 1, 1, 1 << 20, now + 700, &back), 0);
    assert_int_equal(health_note_attempt(&h, "w3", 9, 7, SCHED_MAP, 21, 1, 1, 1 << 20, now + 800, &back), 0);
    assert_true(health_on_probation(&h, "w3")); /* not yet min_probation_ms */
    assert_int_equal(health_note_attempt(&h, "w3", 9, 7, SCHED_MAP, 21, 1, 1, 1 << 20, now + 1200, &back), 1);
    assert_int_equal(back.to, HEALTH_OK);
    assert_false(health_on_probation(&h, "w3"));
    assert_int_equal(h.entries, 1);
    assert_int_equal(h.exits, 1);
    health_free(&h);
}

/* 6x slower: violations by twice the factor count double, probation at the second check. */
static void test_much_slower_worker_goes_sooner(void **state)
{
    (void)state;
    health h;
    health_init(&h, &rule);
    health_event ev[4];
    iteration(&h, 1, 6, 1000, 3);
    assert_int_equal(health_check(&h, 1000, 3, ev, 4), 0);
    iteration(&h, 2, 6, 1100, 3);
    assert_int_equal(health_check(&h, 1100, 3, ev, 4), 1);
    assert_true(health_on_probation(&h, "w3"));
    health_free(&h);
}

static void test_no_probation_without_noise_or_when_disabled(void **state)
{
    (void)state;
    health h;
    health_event ev[4];
    health_init(&h, &rule);
    for (int it = 1; it <= 10; it++) {
        iteration(&h, (uint64_t)it, 1.3, 1000 + (uint64_t)it, 3);
        assert_int_equal(health_check(&h, 1000 + (uint64_t)it, 3, ev, 4), 0);
    }
    health_free(&h);
    health_rule off = rule;
    off.enabled = 0;
    health_init(&h, &off);
    for (int it = 1; it <= 5; it++) {
        iteration(&h, (uint64_t)it, 10, 1000, 3);
        assert_int_equal(health_check(&h, 1000, 3, ev, 4), 0);
    }
    assert_true(h.workers[2].score > 5); /* still judged, only not acted on */
    health_free(&h);
}

/* Superseded attempts count with their estimated total (elapsed / progress): a worker whose
 * every attempt loses to a copy is still seen to be slow. */
static void test_superseded_attempts_count(void **state)
{
    (void)state;
    health h;
    health_event ev[4];
    health_init(&h, &rule);
    for (int it = 1; it <= 3; it++) {
        for (int k = 0; k < 3; k++) {
            health_note_attempt(&h, "w1", (uint64_t)it, 1, SCHED_MAP, 20, 1, 1, 1 << 20, 1000, NULL);
            health_note_attempt(&h, "w2", (uint64_t)it, 1, SCHED_MAP, 22, 1, 1, 1 << 20, 1000, NULL);
            /* killed after 40 ms at 20%: 200 ms in all */
            health_note_attempt(&h, "w3", (uint64_t)it, 1, SCHED_MAP, 40, 0.2, 0, 1 << 20, 1000, NULL);
        }
        health_check(&h, 1000, 3, ev, 4);
    }
    assert_true(health_on_probation(&h, "w3"));
    health_free(&h);
}

/* Never the last healthy worker, never more than half the cluster. */
static void test_probation_limits(void **state)
{
    (void)state;
    health h;
    health_event ev[4];
    health_init(&h, &rule);
    for (int it = 1; it <= 3; it++) {
        for (int k = 0; k < 3; k++) {
            health_note_attempt(&h, "w1", (uint64_t)it, 1, SCHED_MAP, 20, 1, 1, 0, 1000, NULL);
            health_note_attempt(&h, "w2", (uint64_t)it, 1, SCHED_MAP, 200, 1, 1, 0, 1000, NULL);
        }
        health_check(&h, 1000, 1, ev, 4); /* only one worker alive: nobody is put on probation */
    }
    assert_false(health_on_probation(&h, "w2"));
    /* With a second live worker it can be (its violations stood while it could not be). */
    health_note_attempt(&h, "w2", 3, 1, SCHED_MAP, 200, 1, 1, 0, 1000, NULL);
    assert_int_equal(health_check(&h, 1000, 2, ev, 4), 1);
    assert_true(health_on_probation(&h, "w2"));
    /* Nobody else goes while w2 is out: w1 is the last healthy worker. */
    health_note_attempt(&h, "w1", 3, 1, SCHED_MAP, 2000, 1, 1, 0, 1000, NULL);
    assert_int_equal(health_check(&h, 1000, 2, ev, 4), 0);
    health_free(&h);
}

/* A cluster of 60: the one slow worker is found, and nobody else; the scores of the others
 * stay near 1. */
static void test_many_workers(void **state)
{
    (void)state;
    health h;
    health_init(&h, &rule);
    health_event ev[4];
    char name[16];
    size_t n = 0;
    for (int it = 1; it <= 3; it++) {
        for (int k = 0; k < 4; k++)
            for (int i = 0; i < 60; i++) {
                snprintf(name, sizeof name, "w%02d", i);
                double ms = (20 + (i * 7 + k * 3) % 9) * (i == 42 ? 4 : 1);
                health_note_attempt(&h, name, (uint64_t)it, 1, SCHED_MAP, ms, 1, 1, 1 << 20, 1000, NULL);
            }
        n += health_check(&h, 1000, 60, ev, 4);
    }
    assert_int_equal(n, 1);
    assert_true(health_on_probation(&h, "w42"));
    for (int i = 0; i < 60; i++) {
        snprintf(name, sizeof name, "w%02d", i);
        if (i != 42) assert_true(health_slowness(&h, name) < 1.5);
    }
    health_free(&h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_worker_put_on_probation_after_k_checks),
        cmocka_unit_test(test_much_slower_worker_goes_sooner),
        cmocka_unit_test(test_no_probation_without_noise_or_when_disabled),
        cmocka_unit_test(test_superseded_attempts_count),
        cmocka_unit_test(test_probation_limits),
        cmocka_unit_test(test_many_workers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
