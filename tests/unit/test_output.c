/* test_output.c - unit tests for owned directories (common/claim.c), canonical paths
 * (common/fsutil.c) and the output directory's claim, commit and rollback (data/output.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "common/claim.h"
#include "common/fsutil.h"
#include "data/output.h"
#include "testutil.h"

/* A fresh directory path under the test root (not created). */
static char *fresh(const char *name)
{
    return xasprintf("%s/%s%u", testutil_root(), name, testutil_next());
}

static void put(const char *dir, const char *name, const char *text)
{
    char *p = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(p);
}

/* The contents of dir/name, or "" if it does not exist (static buffer). */
static const char *get(const char *dir, const char *name)
{
    static char buf[256];
    char *p = xasprintf("%s/%s", dir, name);
    FILE *f = fopen(p, "r");
    free(p);
    buf[0] = '\0';
    if (!f) return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static int exists(const char *dir, const char *name)
{
    char *p = name ? xasprintf("%s/%s", dir, name) : xstrdup(dir);
    struct stat st;
    int r = lstat(p, &st) == 0;
    free(p);
    return r;
}

/* ---- Canonical paths --------------------------------------------------------------------- */

static void test_canonical(void **state)
{
    (void)state;
    char *d = fresh("canon");
    assert_int_equal(mkdir(d, 0755), 0);
    char *real = realpath(d, NULL);
    char *sub = xasprintf("%s/a", d);
    assert_int_equal(mkdir(sub, 0755), 0);
    char *link = xasprintf("%s/link", d);
    assert_int_equal(symlink(sub, link), 0);

    char *c = fs_canonical(d);
    assert_string_equal(c, real);
    free(c);
    /* A symlink resolves; .. and . go; a tail that does not exist is kept as mkdir -p makes it. */
    char *p = xasprintf("%s/link/../a/./x/y/../z", d);
    char *want = xasprintf("%s/a/x/z", real);
    c = fs_canonical(p);
    assert_string_equal(c, want);
    free(c);
    free(p);
    free(want);
    p = xasprintf("%s/link/new/..", d);
    want = xasprintf("%s/a", real);
    c = fs_canonical(p);
    assert_string_equal(c, want);
    free(c);
    free(p);
    free(want);
    c = fs_canonical("/");
    assert_string_equal(c, "/");
    free(c);
    c = fs_canonical("/no-such-dir-here/../etc/");
    assert_string_equal(c, "/etc");
    free(c);

    assert_true(fs_path_within("/a/b", "/a"));
    assert_true(fs_path_within("/a", "/a"));
    assert_false(fs_path_within("/ab", "/a"));
    assert_false(fs_path_within("/a", "/a/b"));
    assert_true(fs_path_within("/x", "/"));
    free(link);
    free(sub);
    free(real);
    free(d);
}

/* ---- Claims ------------------------------------------------------------------------------ */

static void test_claim_live_stale_foreign(void **state)
{
    (void)state;
    char *d = fresh("claim");
    struct err e = {0};
    claim a, b;
    assert_int_equal(claim_acquire(&a, d, "owner-a\n", &e), 0);
    assert_int_equal(a.took_over, 0);
    assert_true(exists(d, CLAIM_OWNER_FILE));
    /* Held: a second claimer (another open file, so another lock) is refused and told who. */
    assert_int_equal(claim_acquire(&b, d, "owner-b\n", &e), -EBUSY);
    assert_non_null(strstr(e.msg, "owner-a"));
    char holder[64];
    assert_int_equal(claim_probe(d, holder, sizeof holder), 1);
    assert_string_equal(holder, "owner-a");
    claim_release(&a);
    assert_false(exists(d, NULL));
    assert_int_equal(claim_probe(d, holder, sizeof holder), 0);

    /* A claim whose owner died is stale: taken over, with the dead owner's text. */
    pid_t pid = fork();
    if (pid == 0) {
        claim c;
        struct err ce = {0};
        _exit(claim_acquire(&c, d, "owner-dead phase=running\n", &ce) == 0 ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    put(d, "leftover", "x");
    assert_int_equal(claim_probe(d, holder, sizeof holder), 0);
    assert_int_equal(claim_acquire(&b, d, "owner-b\n", &e), 0);
    assert_int_equal(b.took_over, 1);
    assert_string_equal(b.previous, "owner-dead phase=running");
    assert_string_equal(get(d, CLAIM_OWNER_FILE), "owner-b\n");
    assert_true(exists(d, "leftover")); /* what to do with it is the taker's business */
    claim_release(&b);

    /* A directory without an owner file is not a claim: never taken. */
    assert_int_equal(mkdir(d, 0755), 0);
    put(d, "precious", "y");
    assert_int_equal(claim_acquire(&b, d, "owner-b\n", &e), -EEXIST);
    assert_string_equal(get(d, "precious"), "y");
    assert_int_equal(claim_probe(d, holder, sizeof holder), -EEXIST);
    free(d);
}

static void test_claim_fresh_and_reap(void **state)
{
    (void)state;
    char *parent = fresh("reap");
    struct err e = {0};
    claim live;
    assert_int_equal(claim_fresh(&live, parent, "job-", "live\n", &e), 0);
    assert_non_null(strstr(live.path, "/job-"));
    /* A dead one (its child exited holding the lock) and a foreign one. */
    pid_t pid = fork();
    if (pid == 0) {
        claim c;
        struct err ce = {0};
        _exit(claim_fresh(&c, parent, "job-", "dead\n", &ce) == 0 ? 0 : 1);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    char *foreign = xasprintf("%s/job-foreign", parent);
    assert_int_equal(mkdir(foreign, 0755), 0);
    assert_int_equal(claim_reap_stale(parent, "job-"), 1);
    assert_true(exists(live.path, NULL));
    assert_true(exists(foreign, NULL));
    assert_int_equal(claim_reap_stale(parent, "job-"), 0);
    claim_release(&live);
    free(foreign);
    free(parent);
}

/* ---- The output directory ---------------------------------------------------------------- */

static void test_output_refuses_and_keeps(void **state)
{
    (void)state;
    struct err e = {0};
    output o, o2;
    /* A non-empty OUT without --overwrite: refused, untouched. */
    char *d = fresh("out");
    assert_int_equal(mkdir(d, 0755), 0);
    put(d, "part-00000", "old\n");
    put(d, "_SUCCESS", "");
    assert_int_equal(output_prepare(&o, d, 0, "me", &e), -EEXIST);
    assert_string_equal(get(d, "part-00000"), "old\n");
    assert_true(exists(d, "_SUCCESS"));
    assert_false(exists(d, "_temporary"));

    /* One job holds OUT: another is refused (even with --overwrite) and changes nothing. */
    char *d2 = fresh("out");
    assert_int_equal(output_prepare(&o, d2, 0, "pid=1 job=first", &e), 0);
    assert_int_equal(output_prepare(&o2, d2, 1, "pid=2 job=second", &e), -EBUSY);
    assert_non_null(strstr(e.msg, "job=first"));
    assert_true(exists(d2, "_temporary"));
    put(o.tmp, "part-00000", "new\n");
    assert_int_equal(output_commit(&o, 1, "k\tv", "{}", &e), 0);
    output_free(&o);
    assert_string_equal(get(d2, "part-00000"), "new\n");
    assert_string_equal(get(d2, "_columns"), "k\tv\n");
    assert_true(exists(d2, "_SUCCESS"));
    assert_false(exists(d2, "_temporary"));
    /* A job refused because OUT is not empty must not touch the committed output. */
    assert_int_equal(output_prepare(&o2, d2, 0, "pid=2 job=second", &e), -EEXIST);
    assert_true(exists(d2, "_SUCCESS"));
    assert_string_equal(get(d2, "_columns"), "k\tv\n");
    free(d);
    free(d2);
}

static void test_output_overwrite_rolls_back(void **state)
{
    (void)state;
    struct err e = {0};
    output o;
    char *d = fresh("ow");
    assert_int_equal(mkdir(d, 0755), 0);
    put(d, "part-00000", "old0\n");
    put(d, "part-00001", "old1\n");
    put(d, "_SUCCESS", "");
    /* --overwrite moves the old entries aside; a failed job puts them back. */
    assert_int_equal(output_prepare(&o, d, 1, "me", &e), 0);
    assert_false(exists(d, "part-00000"));
    assert_false(exists(d, "_SUCCESS"));
    put(o.tmp, "part-00000", "new0\n");
    output_abort(&o);
    output_free(&o);
    assert_string_equal(get(d, "part-00000"), "old0\n");
    assert_string_equal(get(d, "part-00001"), "old1\n");
    assert_true(exists(d, "_SUCCESS"));
    assert_false(exists(d, "_temporary"));
    /* A job that commits replaces them: no old part is left. */
    assert_int_equal(output_prepare(&o, d, 1, "me", &e), 0);
    put(o.tmp, "part-00000", "new0\n");
    assert_int_equal(output_commit(&o, 1, NULL, "{}", &e), 0);
    output_free(&o);
    assert_string_equal(get(d, "part-00000"), "new0\n");
    assert_false(exists(d, "part-00001"));
    assert_false(exists(d, "_temporary"));
    /* An OUT the job created is removed by the rollback. */
    char *d2 = fresh("created");
    assert_int_equal(output_prepare(&o, d2, 0, "me", &e), 0);
    assert_true(o.created);
    output_abort(&o);
    output_free(&o);
    assert_false(exists(d2, NULL));
    free(d);
    free(d2);
}

/* Leaves OUT as a job that died in `phase` would have (its claim stale). */
static void die_in(const char *d, int overwrite, const char *phase, int commit_parts, int success)
{
    pid_t pid = fork();
    if (pid == 0) {
        output o;
        struct err e = {0};
        if (output_prepare(&o, d, overwrite, "pid=dead", &e) != 0) _exit(1);
        put(o.tmp, "part-00000", "dead0\n");
        char *text = xasprintf("pid=dead phase=%s\n", phase);
        claim_set_owner(&o.claim, text);
        if (commit_parts) {
            char *from = xasprintf("%s/part-00000", o.tmp), *to = xasprintf("%s/part-00000", d);
            if (rename(from, to) != 0) _exit(2);
        }
        if (success) put(d, "_SUCCESS", "");
        _exit(0);
    }
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_output_takes_over_stale_claims(void **state)
{
    (void)state;
    struct err e = {0};
    output o;
    /* Died while running an --overwrite job: the old output comes back. */
    char *d = fresh("stale");
    assert_int_equal(mkdir(d, 0755), 0);
    put(d, "part-00000", "old\n");
    put(d, "_SUCCESS", "");
    die_in(d, 1, "running", 0, 0);
    assert_false(exists(d, "part-00000"));
    assert_int_equal(output_prepare(&o, d, 0, "me", &e), -EEXIST); /* restored, so not empty */
    assert_string_equal(get(d, "part-00000"), "old\n");
    assert_true(exists(d, "_SUCCESS"));
    assert_false(exists(d, "_temporary"));
    /* Died half-way through committing: its parts go, the old output comes back. */
    die_in(d, 1, "committing", 1, 0);
    assert_string_equal(get(d, "part-00000"), "dead0\n");
    assert_int_equal(output_prepare(&o, d, 0, "me", &e), -EEXIST);
    assert_string_equal(get(d, "part-00000"), "old\n");
    /* Died after writing _SUCCESS: its output stands. */
    die_in(d, 1, "committing", 1, 1);
    assert_int_equal(output_prepare(&o, d, 0, "me", &e), -EEXIST);
    assert_string_equal(get(d, "part-00000"), "dead0\n");
    assert_false(exists(d, "_temporary"));
    /* Died in a job on an empty OUT: the next job just runs. */
    char *d2 = fresh("stale");
    die_in(d2, 0, "running", 0, 0);
    assert_int_equal(output_prepare(&o, d2, 0, "me", &e), 0);
    assert_false(exists(o.tmp, "part-00000")); /* the dead job's files are gone */
    output_abort(&o);
    output_free(&o);
    free(d);
    free(d2);
}

static void test_output_check_inputs(void **state)
{
    (void)state;
    struct err e = {0};
    char *d = fresh("overlap");
    assert_int_equal(mkdir(d, 0755), 0);
    char *in = xasprintf("%s/in", d);
    assert_int_equal(mkdir(in, 0755), 0);
    put(in, "a.csv", "x\n");
    char *file = xasprintf("%s/a.csv", in);
    char *args[] = {in};
    input_set set = {0};
    input_file f = {.name = file, .path = file};
    set.files = &f;
    set.nfiles = 1;
    char *out_same = xasprintf("%s/./in/", d), *out_parent = xstrdup(d), *out_inside = xasprintf("%s/out", in),
         *out_ok = xasprintf("%s/elsewhere", d);
    assert_int_equal(output_check_inputs(out_same, args, 1, NULL, &set, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "same directory"));
    assert_int_equal(output_check_inputs(out_parent, args, 1, NULL, &set, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "contains"));
    assert_int_equal(output_check_inputs(out_inside, args, 1, NULL, &set, &e), -EINVAL);
    assert_non_null(strstr(e.msg, "lies inside"));
    assert_int_equal(output_check_inputs(out_ok, args, 1, NULL, &set, &e), 0);
    /* A file reached through a link into OUT. */
    char *link = xasprintf("%s/link.csv", out_ok);
    assert_int_equal(mkdir(out_ok, 0755), 0);
    char *target = xasprintf("%s/t.csv", out_ok);
    put(out_ok, "t.csv", "y\n");
    char *outside = xasprintf("%s/outside.csv", d);
    assert_int_equal(symlink(target, outside), 0);
    char *args2[] = {outside};
    input_file f2 = {.name = outside, .path = outside};
    set.files = &f2;
    assert_int_equal(output_check_inputs(out_ok, args2, 1, NULL, &set, &e), -EINVAL);
    free(link);
    free(target);
    free(outside);
    free(out_same);
    free(out_parent);
    free(out_inside);
    free(out_ok);
    free(file);
    free(in);
    free(d);
}

static int setup(void **state)
{
    (void)state;
    return testutil_make_root("output");
}

static int teardown(void **state)
{
    (void)state;
    return testutil_remove_root();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_canonical),
        cmocka_unit_test(test_claim_live_stale_foreign),
        cmocka_unit_test(test_claim_fresh_and_reap),
        cmocka_unit_test(test_output_refuses_and_keeps),
        cmocka_unit_test(test_output_overwrite_rolls_back),
        cmocka_unit_test(test_output_takes_over_stale_claims),
        cmocka_unit_test(test_output_check_inputs),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
