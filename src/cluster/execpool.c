/* execpool.c - starts, feeds, reaps and restarts a worker's executor processes. */
#include "cluster/execpool.h"

#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cluster/taskproc.h"
#include "cluster/wire.h"
#include "common/log.h"

extern char **environ;

struct execpool_exec {
    uint32_t index;
    pid_t pid;          /* 0 when no process runs */
    int to, from;       /* our ends of its fd 3 and fd 4 */
    int busy;
    int killed;         /* execpool_kill() hit it: replace it before its next attempt */
    task_live *live;
};

struct execpool {
    pthread_mutex_t lock;   /* protects pid, to, from and busy of every executor */
    pthread_cond_t idle_cv;
    char *exe, *dir, *log_level;
    execpool_exec *ex;
    uint32_t n;
    int closing;
    uint64_t starts;
    uint64_t limit_ms;      /* longest an attempt may run; 0: no limit */
};

/* Starts x's process. Called with the lock held. */
static int execpool_spawn(execpool *p, execpool_exec *x, struct err *e)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0) return err_set(e, -errno, "pipe: %s", strerror(errno));
    if (pipe2(out, O_CLOEXEC) != 0) {
        int rc = err_set(e, -errno, "pipe: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        return rc;
    }
    char *live = xasprintf("%s/exec-%u.live", p->dir, x->index);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 3);
    posix_spawn_file_actions_adddup2(&fa, out[1], 4);
    /* Its own process group: execpool_kill() kills whatever job code started too, and a
     * Ctrl-C meant for the worker reaches the worker, which stops its executors itself. */
    posix_spawnattr_t sa;
    posix_spawnattr_init(&sa);
    posix_spawnattr_setflags(&sa, POSIX_SPAWN_SETPGROUP);
    posix_spawnattr_setpgroup(&sa, 0);
    char *argv[] = {p->exe, "__executor", live, p->log_level, NULL};
    pid_t pid;
    int k = posix_spawn(&pid, p->exe, &fa, &sa, argv, environ);
    posix_spawnattr_destroy(&sa);
    posix_spawn_file_actions_destroy(&fa);
    free(live);
    close(in[0]);
    close(out[1]);
    if (k != 0) {
        close(in[1]);
        close(out[0]);
        return err_set(e, -k, "cannot start executor %s: %s", p->exe, strerror(k));
    }
    x->pid = pid;
    x->to = in[1];
    x->from = out[0];
    x->killed = 0;
    p->starts++;
    return 0;
}

/* Reaps x's process: after grace_ms for it to exit by itself (its pipe closed), else killed.
 * Called with the lock held. Returns its wait status, or -1 if there was no process. */
static int execpool_reap(execpool_exec *x, uint64_t grace_ms)
{
    int st = -1;
    if (x->pid > 0) {
        uint64_t deadline = time_mono_ms() + grace_ms;
        pid_t k;
        while ((k = waitpid(x->pid, &st, WNOHANG)) == 0 && time_mono_ms() < deadline) usleep(2000);
        if (k == 0) {
            kill(-x->pid, SIGKILL);
            while (waitpid(x->pid, &st, 0) < 0 && errno == EINTR) {
            }
        } else if (k < 0) {
            st = -1;
        }
        kill(-x->pid, SIGKILL); /* what job code started lives in its group: end it too */
    }
    if (x->to >= 0) close(x->to);
    if (x->from >= 0) close(x->from);
    x->pid = 0;
    x->to = x->from = -1;
    return st;
}

int execpool_new(execpool **out, const char *exe, const char *dir, uint32_t n, const char *level, struct err *e)
{
    execpool *p = xcalloc(1, sizeof *p);
    pthread_mutex_init(&p->lock, NULL);
    pthread_cond_init(&p->idle_cv, NULL);
    p->exe = xstrdup(exe);
    p->dir = xstrdup(dir);
    p->log_level = xstrdup(level);
    p->n = n;
    p->ex = xcalloc(n, sizeof *p->ex);
    for (uint32_t i = 0; i < n; i++) {
        p->ex[i].index = i;
        p->ex[i].to = p->ex[i].from = -1;
    }
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        execpool_exec *x = &p->ex[i];
        char *path = xasprintf("%s/exec-%u.live", dir, i);
        int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, sizeof *x->live) != 0) {
            rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
        } else {
            x->live = mmap(NULL, sizeof *x->live, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
            if (x->live == MAP_FAILED) {
                x->live = NULL;
                rc = err_set(e, -errno, "%s: mmap: %s", path, strerror(errno));
            }
        }
        if (fd >= 0) close(fd);
        free(path);
        if (rc == 0) {
            task_live_reset(x->live);
            rc = execpool_spawn(p, x, e);
        }
    }
    if (rc) {
        execpool_free(p);
        return rc;
    }
    *out = p;
    return 0;
}

void execpool_free(execpool *p)
{
    if (!p) return;
    for (uint32_t i = 0; i < p->n; i++) {
        execpool_exec *x = &p->ex[i];
        if (x->to >= 0) {
            close(x->to);
            x->to = -1;
        }
        int had = x->pid > 0, st = execpool_reap(x, 3000);
        /* An executor that ends badly when told to stop (under sanitizers: a leak report)
         * is worth a line in the log. */
        if (had && p->closing && st != -1 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0) &&
            !(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL))
            log_warn("executor %u ended with %s %d at shutdown", i, WIFSIGNALED(st) ? "signal" : "status",
                     WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
        if (x->live) munmap(x->live, sizeof *x->live);
    }
    free(p->ex);
    free(p->exe);
    free(p->dir);
    free(p->log_level);
    pthread_mutex_destroy(&p->lock);
    pthread_cond_destroy(&p->idle_cv);
    free(p);
}

execpool_exec *execpool_acquire(execpool *p)
{
    pthread_mutex_lock(&p->lock);
    for (;;) {
        for (uint32_t i = 0; i < p->n; i++) {
            if (!p->ex[i].busy) {
                p->ex[i].busy = 1;
                pthread_mutex_unlock(&p->lock);
                /* Before its attempt is published: a heartbeat must not show the last one's. */
                task_live_reset(p->ex[i].live);
                return &p->ex[i];
            }
        }
        /* More attempts than slots (the coordinator saw a stale count): wait for one. */
        pthread_cond_wait(&p->idle_cv, &p->lock);
    }
}

void execpool_release(execpool *p, execpool_exec *x)
{
    pthread_mutex_lock(&p->lock);
    /* Start the replacement of a dead one now, so the next attempt on this slot does not
     * wait for a process to start. */
    struct err e = {0};
    if (x->killed && x->pid > 0) execpool_reap(x, 0); /* killed after its result came in */
    if (x->pid == 0 && !p->closing && execpool_spawn(p, x, &e) != 0)
        log_warn("executor %u: %s (will retry)", x->index, e.msg);
    x->busy = 0;
    pthread_cond_signal(&p->idle_cv);
    pthread_mutex_unlock(&p->lock);
}

void execpool_close(execpool *p)
{
    pthread_mutex_lock(&p->lock);
    p->closing = 1;
    for (uint32_t i = 0; i < p->n; i++) {
        execpool_exec *x = &p->ex[i];
        if (x->pid > 0 && x->busy) {
            kill(-x->pid, SIGKILL); /* its attempt thread reaps it */
        } else if (x->to >= 0) {
            close(x->to); /* end of input: it exits by itself, execpool_free reaps it */
            x->to = -1;
        }
    }
    pthread_mutex_unlock(&p->lock);
}

void execpool_kill(execpool *p, execpool_exec *x)
{
    pthread_mutex_lock(&p->lock);
    if (x->pid > 0) {
        kill(-x->pid, SIGKILL);
        x->killed = 1; /* even if its result is in: execpool_release() replaces it */
    }
    pthread_mutex_unlock(&p->lock);
}

void execpool_set_limit(execpool *p, uint64_t ms)
{
    p->limit_ms = ms;
}

void execpool_set_slow(execpool *p, double factor)
{
    /* No lock: the pages are mapped for the pool's life and the factor is one atomic word. */
    for (uint32_t i = 0; i < p->n; i++)
        if (p->ex[i].live) task_live_set_slow(p->ex[i].live, factor);
}

uint64_t execpool_starts(execpool *p)
{
    pthread_mutex_lock(&p->lock);
    uint64_t n = p->starts;
    pthread_mutex_unlock(&p->lock);
    return n;
}

task_live *execpool_live(execpool_exec *x)
{
    return x->live;
}

json_t *execpool_crash_result(const json_t *assignment, const task_live *live, int wstatus)
{
    struct err e = {0};
    if (wstatus != -1 && WIFSIGNALED(wstatus))
        err_set(&e, -EINTR, "task process killed by signal %d (%s)", WTERMSIG(wstatus), strsignal(WTERMSIG(wstatus)));
    else if (wstatus != -1)
        err_set(&e, -EIO, "task process exited with status %d and no result", WEXITSTATUS(wstatus));
    else
        err_set(&e, -EIO, "task process could not be started");
    json_t *files = json_object_get(json_object_get(assignment, "split"), "files");
    uint32_t fi = live->file;
    json_t *file = fi != UINT32_MAX ? json_array_get(files, fi) : NULL;
    /* The name as given: what the skip list and the job's tally_record.file use. */
    const char *path = file ? json_string_value(json_object_get(file, "name")) : NULL;
    if (!path) return json_pack("{s:b, s:s, s:b}", "ok", 0, "error", e.msg, "fatal", 0);
    uint64_t off = live->offset;
    err_prefix(&e, "%s: offset %" PRIu64 ": ", path, off);
    return json_pack("{s:b, s:s, s:b, s:{s:s, s:I}}", "ok", 0, "error", e.msg, "fatal", 0, "crash", "file", path,
                     "offset", (json_int_t)off);
}

int execpool_describe(execpool *p, const json_t *spec, const char *job, execpool_job *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    json_t *a = json_pack("{s:s, s:O}", "phase", "describe", "spec", spec), *r = NULL;
    char *text = wire_dump(a);
    json_decref(a);
    int wstatus = -1;
    execpool_exec *x = execpool_acquire(p);
    int rc = execpool_run(p, x, text, &r, &wstatus, e);
    json_t *crash = rc ? execpool_crash_result(NULL, execpool_live(x), wstatus) : NULL;
    execpool_release(p, x);
    free(text);
    if (rc) {
        err_set(e, -EIO, "job %s could not be loaded: %s", job, json_string_value(json_object_get(crash, "error")));
        json_decref(crash);
        return -EIO;
    }
    const char *name = NULL, *cols = NULL, *msg = NULL;
    uint64_t flags = 0;
    if (!json_is_true(json_object_get(r, "ok"))) {
        rc = wire_get_str(r, "error", &msg, 0, e) == 0 && msg ? err_set(e, -EINVAL, "%s", msg)
                                                              : err_set(e, -EINVAL, "job %s cannot run", job);
    } else if ((rc = wire_get_str(r, "name", &name, 1, e)) || (rc = wire_get_str(r, "columns", &cols, 0, e)) ||
               (rc = wire_get_u64(r, "flags", UINT32_MAX, &flags, 1, e))) {
        err_prefix(e, "describing job %s: ", job);
        rc = -EIO;
    } else {
        out->name = xstrdup(name);
        out->columns = cols ? xstrdup(cols) : NULL;
        out->flags = (uint32_t)flags;
        /* tally_require_field() is how fields get into a ctx_fields: call it as setup() did. */
        tally_ctx ctx;
        ctx_init(&ctx, NULL, NULL, NULL, NULL);
        ctx.required = &out->required;
        size_t i;
        json_t *f;
        json_array_foreach(json_object_get(r, "required"), i, f) {
            const char *fn = json_string_value(json_object_get(f, "name"));
            if (fn) tally_require_field(&ctx, fn, json_string_value(json_object_get(f, "hint")));
        }
    }
    json_decref(r);
    if (rc) execpool_job_free(out);
    return rc;
}

void execpool_job_free(execpool_job *d)
{
    free(d->name);
    free(d->columns);
    ctx_fields_free(&d->required);
    memset(d, 0, sizeof *d);
}

/* Waits for x's result frame. If x dies, the read ends when nothing holds the pipe any more;
 * a process the job's code forked may still hold it, so a dead x's process group is killed
 * (x itself is left to be reaped). */
static int execpool_read_result(execpool_exec *x, int from, uint64_t limit_ms, char **msg, size_t *len)
{
    uint64_t deadline = limit_ms ? time_mono_ms() + limit_ms : 0;
    for (;;) {
        struct pollfd pf = {.fd = from, .events = POLLIN};
        /* Short: a dead executor whose pipe a forked child still holds is found by this
         * check only, and that attempt's slot (and its retry) waits meanwhile. */
        int k = poll(&pf, 1, 50);
        if (k > 0) return taskproc_frame_read(from, msg, len);
        if (k < 0 && errno != EINTR) return -errno;
        siginfo_t si;
        memset(&si, 0, sizeof si);
        if (waitid(P_PID, (id_t)x->pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 && si.si_pid == x->pid)
            kill(-x->pid, SIGKILL);
        else if (deadline && time_mono_ms() > deadline)
            kill(-x->pid, SIGKILL); /* over its time: the read ends once it is gone */
    }
}

int execpool_run(execpool *p, execpool_exec *x, const char *assignment, json_t **result, int *wstatus,
                 struct err *e)
{
    *result = NULL;
    *wstatus = -1;
    int rc = 0;
    /* Twice at most: an executor that died while idle (nothing noticed it) fails the write
     * of the assignment; then a fresh one gets it, and the attempt has not started yet. */
    for (int tries = 0; tries < 2; tries++) {
        pthread_mutex_lock(&p->lock);
        rc = x->pid > 0 ? 0 : p->closing ? err_set(e, -ECANCELED, "worker is stopping") : execpool_spawn(p, x, e);
        int to = x->to, from = x->from;
        pthread_mutex_unlock(&p->lock);
        if (rc) return rc;
        /* Only this thread reads and writes x's pipes while x is busy; the lock is not held
         * across the attempt so that execpool_kill() can reach the process. */
        rc = taskproc_frame_write(to, assignment, strlen(assignment));
        if (rc != 0) {
            pthread_mutex_lock(&p->lock);
            *wstatus = execpool_reap(x, 0);
            pthread_mutex_unlock(&p->lock);
            log_warn("executor %u was gone before it got an attempt; starting another", x->index);
            continue;
        }
        char *msg = NULL;
        size_t len = 0;
        rc = execpool_read_result(x, from, p->limit_ms, &msg, &len);
        if (rc == 1) {
            rc = wire_parse_object(msg, len, result, e);
            free(msg);
            if (rc == 0) return 0;
            log_warn("executor %u sent a malformed result: %s", x->index, e->msg);
        }
        /* It died mid-attempt (or broke the protocol): reap it. execpool_release() starts
         * its replacement, once no kill meant for this attempt can reach the new process. */
        pthread_mutex_lock(&p->lock);
        *wstatus = execpool_reap(x, 0);
        pthread_mutex_unlock(&p->lock);
        return err_set(e, -EPIPE, "executor died");
    }
    return err_set(e, -EPIPE, "executor died before it got the attempt");
}
