/* output.c - claiming, committing and rolling back a job's output directory (see output.h). */
#include "data/output.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"
#include "common/log.h"

#define OUTPUT_PREVIOUS "_previous"

/* Where a job is in its life, kept in the claim's owner text so that a job taking over a stale
 * claim knows what the dead owner had done to OUT:
 *   preparing   moving OUT's old entries into _temporary/_previous (--overwrite)
 *   running     OUT holds nothing of this job's yet
 *   committing  moving parts into OUT and writing _columns, _counters.json, _SUCCESS
 *   committed   _SUCCESS is written; only the claim is left to remove */
static int output_set_phase(output *o, const char *phase)
{
    char *text = xasprintf("%s phase=%s\n", o->owner, phase);
    int rc = claim_set_owner(&o->claim, text);
    free(text);
    return rc;
}

/* Entries of OUT that belong to the commit machinery, not to the output. */
static int output_is_machinery(const char *name)
{
    return strcmp(name, "_temporary") == 0 || strncmp(name, CLAIM_STAGING_PREFIX, strlen(CLAIM_STAGING_PREFIX)) == 0;
}

/* Calls fn(dir, name, arg) for each entry of dir but "." and ".."; stops at the first non-zero
 * return and returns it. Names are read first, so fn may rename or remove entries. */
static int output_each(const char *dir, int (*fn)(const char *dir, const char *name, void *arg), void *arg)
{
    DIR *d = opendir(dir);
    if (!d) return errno == ENOENT ? 0 : -errno;
    char **names = NULL;
    size_t n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
        names = xrealloc(names, (n + 1) * sizeof *names);
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        if (rc == 0) rc = fn(dir, names[i], arg);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int output_count_entry(const char *dir, const char *name, void *arg)
{
    (void)dir;
    if (!output_is_machinery(name)) ++*(int *)arg;
    return 0;
}

/* Moves an entry of OUT into _temporary/_previous (arg: the _previous path). */
static int output_stash_entry(const char *dir, const char *name, void *arg)
{
    if (output_is_machinery(name)) return 0;
    char *from = xasprintf("%s/%s", dir, name), *to = xasprintf("%s/%s", (const char *)arg, name);
    int rc = rename(from, to) == 0 ? 0 : -errno;
    free(from);
    free(to);
    return rc;
}

/* Moves an entry of _previous back into OUT (arg: OUT), never over an entry that is there. */
static int output_restore_entry(const char *dir, const char *name, void *arg)
{
    char *from = xasprintf("%s/%s", dir, name), *to = xasprintf("%s/%s", (const char *)arg, name);
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) != 0)
        log_warn("cannot restore %s to %s: %s (it stays in %s)", from, to, strerror(errno), dir);
    free(from);
    free(to);
    return 0;
}

static int output_remove_entry(const char *dir, const char *name, void *arg)
{
    (void)arg;
    if (output_is_machinery(name) || strcmp(name, CLAIM_OWNER_FILE) == 0) return 0;
    char *p = xasprintf("%s/%s", dir, name);
    fs_rmtree(p);
    free(p);
    return 0;
}

/* Puts back what --overwrite moved aside, if anything was. */
static void output_restore_previous(output *o)
{
    char *prev = xasprintf("%s/%s", o->tmp, OUTPUT_PREVIOUS);
    output_each(prev, output_restore_entry, o->dir);
    free(prev);
}

/* We took over the claim of a job that died: undo what it did, by the phase it was in. */
static void output_recover(output *o, const char *dead_owner)
{
    const char *ph = strstr(dead_owner, "phase=");
    ph = ph ? ph + 6 : "running";
    char *succ = xasprintf("%s/_SUCCESS", o->dir);
    struct stat st;
    int committed = strncmp(ph, "committed", 9) == 0 ||
                    (strncmp(ph, "committing", 10) == 0 && stat(succ, &st) == 0);
    free(succ);
    log_warn("%s: taking over from a job that is no longer running (%s): %s", o->dir, dead_owner,
             committed ? "it had committed its output" : "rolling back what it wrote");
    if (!committed) {
        /* While it committed, everything in OUT was its own: OUT was empty once claimed. */
        if (strncmp(ph, "committing", 10) == 0) output_each(o->dir, output_remove_entry, NULL);
        output_restore_previous(o);
    }
    output_each(o->tmp, output_remove_entry, NULL);
}

int output_prepare(output *o, const char *dir, int overwrite, const char *owner, struct err *e)
{
    memset(o, 0, sizeof *o);
    o->claim.fd = -1;
    struct stat st;
    int rc = 0;
    if (stat(dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) return err_set(e, -ENOTDIR, "%s: output exists and is not a directory", dir);
    } else if (errno != ENOENT) {
        return err_set(e, -errno, "%s: %s", dir, strerror(errno));
    } else {
        char *parent = xstrdup(dir);
        char *slash = strrchr(parent, '/');
        if (slash && slash != parent) {
            *slash = '\0';
            rc = fs_mkdirs(parent, e);
        }
        free(parent);
        if (rc) return rc;
        if (mkdir(dir, 0755) == 0) o->created = 1;
        else if (errno != EEXIST) return err_set(e, -errno, "%s: %s", dir, strerror(errno));
    }
    o->dir = xstrdup(dir);
    o->tmp = xasprintf("%s/_temporary", dir);
    o->owner = xstrndup(owner, strcspn(owner, "\n"));
    /* Staging directories of claimers that were killed mid-claim. */
    claim_reap_stale(dir, CLAIM_STAGING_PREFIX);
    char *text = xasprintf("%s phase=preparing\n", o->owner);
    rc = claim_acquire(&o->claim, o->tmp, text, e);
    if (rc == -EEXIST && overwrite) {
        /* Not a tally claim (an older tally's, or made by hand): --overwrite replaces it. */
        log_warn("%s was not made by a running tally job: --overwrite removes it", o->tmp);
        fs_rmtree(o->tmp);
        rc = claim_acquire(&o->claim, o->tmp, text, e);
    }
    free(text);
    if (rc == -EBUSY) {
        char holder[256];
        claim_probe(o->tmp, holder, sizeof holder);
        err_set(e, -EBUSY, "%s: another job is writing this output directory (%s)", dir,
                holder[0] ? holder : "its owner is unknown");
    } else if (rc == -EEXIST) {
        err_set(e, -EEXIST, "%s: output directory is not empty: %s/_temporary was not made by a running tally job "
                            "(use --overwrite to replace it)", dir, dir);
    }
    if (rc) goto fail;
    if (o->claim.took_over) output_recover(o, o->claim.previous);
    int entries = 0;
    if ((rc = output_each(dir, output_count_entry, &entries)) != 0) {
        err_set(e, rc, "%s: %s", dir, strerror(-rc));
        goto fail;
    }
    if (entries > 0 && !overwrite) {
        rc = err_set(e, -EEXIST, "%s: output directory is not empty (use --overwrite to replace it)", dir);
        goto fail;
    }
    if (entries > 0) {
        char *prev = xasprintf("%s/%s", o->tmp, OUTPUT_PREVIOUS);
        if (mkdir(prev, 0755) != 0) rc = err_set(e, -errno, "%s: %s", prev, strerror(errno));
        if (rc == 0 && (rc = output_each(dir, output_stash_entry, prev)) != 0)
            err_set(e, rc, "%s: moving the old output aside: %s", dir, strerror(-rc));
        free(prev);
        if (rc) goto fail;
    }
    if ((rc = output_set_phase(o, "running")) != 0) {
        err_set(e, rc, "%s: %s", o->tmp, strerror(-rc));
        goto fail;
    }
    return 0;
fail:
    output_abort(o);
    output_free(o);
    return rc;
}

int output_commit(output *o, uint32_t nparts, const char *columns, const char *counters_json,
                  struct err *e)
{
    int rc = output_set_phase(o, "committing");
    if (rc) return err_set(e, rc, "%s: %s", o->tmp, strerror(-rc));
    o->committing = 1;
    /* Fault injection for the coordinator failover tests: TALLY_FAULT_COMMIT_PAUSE_MS=N pauses
     * the job commit for N ms after its first part, so that a test can kill the process in the
     * middle of it. */
    const char *pause = getenv("TALLY_FAULT_COMMIT_PAUSE_MS");
    uint64_t pause_ms = 0;
    if (pause && util_parse_u64(pause, 0, 600000, &pause_ms) != 0) pause_ms = 0;
    for (uint32_t i = 0; i < nparts && rc == 0; i++) {
        if (i == 1 && pause_ms) {
            log_warn("fault injection: pausing %llu ms in the job commit of %s", (unsigned long long)pause_ms, o->dir);
            usleep((useconds_t)(pause_ms * 1000));
        }
        char *from = xasprintf("%s/part-%05u", o->tmp, i);
        char *to = xasprintf("%s/part-%05u", o->dir, i);
        struct stat st;
        /* Already moved by an earlier run of this commit (a coordinator that took over). */
        if (rename(from, to) == 0 || (errno == ENOENT && stat(to, &st) == 0)) o->committed++;
        else rc = err_set(e, -errno, "committing %s: %s", to, strerror(errno));
        free(from);
        free(to);
    }
    if (rc == 0 && columns) {
        char *p = xasprintf("%s/_columns", o->dir);
        char *line = xasprintf("%s\n", columns);
        rc = fs_write_atomic(p, line, strlen(line), e);
        free(line);
        free(p);
    }
    if (rc == 0) {
        char *p = xasprintf("%s/_counters.json", o->dir);
        char *body = xasprintf("%s\n", counters_json);
        rc = fs_write_atomic(p, body, strlen(body), e);
        free(body);
        free(p);
    }
    if (rc == 0) {
        char *p = xasprintf("%s/_SUCCESS", o->dir);
        rc = fs_write_atomic(p, "", 0, e);
        free(p);
    }
    /* _SUCCESS first, the claim last: until the claim is gone no other job may look at OUT,
     * so none can see (or --overwrite) a half-committed output. */
    if (rc == 0 && output_set_phase(o, "committed") == 0) claim_release(&o->claim);
    return rc;
}

int output_adopt(output *o, const char *dir, const char *owner, int created, struct err *e)
{
    memset(o, 0, sizeof *o);
    o->claim.fd = -1;
    o->dir = xstrdup(dir);
    o->tmp = xasprintf("%s/_temporary", dir);
    o->owner = xstrndup(owner, strcspn(owner, "\n"));
    o->created = created;
    /* The job's mark in the owner text, "job=ID" up to the next space. */
    const char *mark = strstr(o->owner, "job=");
    char *tag = mark ? xstrndup(mark, strcspn(mark, " ")) : xstrdup(o->owner);
    char *text = xasprintf("%s phase=running\n", o->owner);
    char *succ = xasprintf("%s/_SUCCESS", dir);
    struct stat st;
    int rc = claim_acquire(&o->claim, o->tmp, text, e);
    if (rc == 0 && !o->claim.took_over) {
        /* Nobody held it: the job had committed (the claim goes last), or OUT was cleared. */
        claim_release(&o->claim);
        rc = stat(succ, &st) == 0 ? 1
             : err_set(e, -ENOENT, "%s: the job's output in progress (_temporary) is gone: it was removed while "
                                   "no coordinator ran", dir);
    } else if (rc == 0) {
        const char *prev = o->claim.previous;
        const char *pm = strstr(prev, tag);
        if (!pm || (pm[strlen(tag)] != ' ' && pm[strlen(tag)] != '\0' && pm[strlen(tag)] != '\n')) {
            rc = err_set(e, -EBUSY, "%s: claimed by another job since (%s)", dir, prev);
            claim_drop(&o->claim);
        } else if (strstr(prev, "phase=committed")) {
            claim_release(&o->claim);
            rc = 1;
        } else if (strstr(prev, "phase=committing")) {
            o->committing = 1;
            if (output_set_phase(o, "committing") != 0) log_warn("%s: cannot record the phase", o->tmp);
        }
    } else if (rc == -EBUSY) {
        char holder[256];
        claim_probe(o->tmp, holder, sizeof holder);
        const char *pm = strstr(holder, tag);
        rc = pm ? err_set(e, -EAGAIN, "%s: still held by the coordinator before this one (%s)", dir, holder)
                : err_set(e, -EBUSY, "%s: claimed by another job since (%s)", dir, holder);
    } else if (rc == -EEXIST) {
        err_set(e, -EEXIST, "%s/_temporary is no longer a claim (changed by hand?)", dir);
    }
    free(succ);
    free(text);
    free(tag);
    if (rc < 0) output_free(o);
    return rc;
}

char *output_attempt_dir(const char *out, const char *job_id, uint32_t attempt)
{
    return xasprintf("%s/_temporary/%s.a%u", out, job_id, attempt);
}

int output_commit_task(const char *out, const char *job_id, uint32_t attempt, uint32_t part, struct err *e)
{
    char *dir = output_attempt_dir(out, job_id, attempt);
    char *from = xasprintf("%s/part-%05u", dir, part), *to = xasprintf("%s/_temporary/part-%05u", out, part);
    struct stat st;
    int rc = 0;
    /* Idempotent: a coordinator that took over may commit again what its predecessor renamed
     * but had not journaled; the attempt's own part is gone then, and the task's is there. */
    if (rename(from, to) != 0 && !(errno == ENOENT && stat(to, &st) == 0))
        rc = err_set(e, -errno, "committing %s: %s", to, strerror(errno));
    if (rc == 0) rmdir(dir);
    free(from);
    free(to);
    free(dir);
    return rc;
}

void output_abort(output *o)
{
    if (!o->dir || !o->claim.path) return;
    /* Only what this job wrote: the parts it moved into OUT and the files of its commit (OUT
     * was empty, or emptied into _previous, when it was claimed). */
    for (uint32_t i = 0; i < o->committed; i++) {
        char *p = xasprintf("%s/part-%05u", o->dir, i);
        unlink(p);
        free(p);
    }
    o->committed = 0;
    static const char *meta[] = {"_SUCCESS", "_counters.json", "_columns"};
    for (size_t i = 0; o->committing && i < sizeof meta / sizeof meta[0]; i++) {
        char *p = xasprintf("%s/%s", o->dir, meta[i]);
        unlink(p);
        free(p);
    }
    output_restore_previous(o);
    claim_release(&o->claim);
    if (o->created) rmdir(o->dir); /* only if empty: another job may be claiming it now */
}

void output_free(output *o)
{
    claim_drop(&o->claim);
    free(o->dir);
    free(o->tmp);
    free(o->owner);
    memset(o, 0, sizeof *o);
    o->claim.fd = -1;
}

/* ---- OUT against the inputs -------------------------------------------------------------- */

static int output_overlap(const char *out_arg, const char *out, const char *in_arg, const char *in, struct err *e)
{
    const char *how = strcmp(out, in) == 0 ? "is the same directory as" : fs_path_within(out, in) ? "lies inside"
                      : fs_path_within(in, out)                            ? "contains"
                                                                           : NULL;
    if (!how) return 0;
    return err_set(e, -EINVAL, "-o %s %s the input %s (OUT and the inputs must not overlap: --overwrite would delete "
                               "the input, and a job must not read its own output)", out_arg, how, in_arg);
}

int output_check_inputs(const char *out, char *const *args, size_t nargs, const char *base, const input_set *in,
                        struct err *e)
{
    char *cout = fs_canonical(out);
    if (!cout) return err_set(e, -errno, "%s: cannot resolve: %s", out, strerror(errno));
    int rc = 0;
    for (size_t i = 0; i < nargs && rc == 0; i++) {
        struct stat st;
        glob_t g = {0};
        char *arg = base && args[i][0] != '/' ? xasprintf("%s/%s", base, args[i]) : xstrdup(args[i]);
        int globbed = stat(arg, &st) != 0 && strpbrk(arg, "*?[") && glob(arg, 0, NULL, &g) == 0;
        size_t n = globbed ? g.gl_pathc : 1;
        for (size_t k = 0; k < n && rc == 0; k++) {
            const char *p = globbed ? g.gl_pathv[k] : arg;
            char *c = fs_canonical(p);
            if (c) rc = output_overlap(out, cout, globbed ? p : args[i], c, e);
            free(c);
        }
        if (globbed) globfree(&g);
        free(arg);
    }
    /* Files reached through symbolic links may still lie inside OUT. */
    for (size_t i = 0; in && i < in->nfiles && rc == 0; i++) {
        char *c = fs_canonical(in->files[i].path);
        if (c && fs_path_within(c, cout)) rc = output_overlap(out, cout, in->files[i].name, c, e);
        free(c);
    }
    free(cout);
    return rc;
}
