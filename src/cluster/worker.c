/* worker.c - `tally worker`: heartbeats to the coordinator, runs attempts in child processes,
 * serves its map outputs to reducers.
 *
 * Threads: the main thread runs the heartbeat loop (a long poll: the coordinator answers at
 * once when it has work, else after about one heartbeat interval); each running attempt has a
 * thread that hands it to one of the worker's executor processes (cluster/execpool.c, one per
 * slot, started once), waits and reports the result at once, so a finished task frees its
 * slot without waiting for the next heartbeat; libmicrohttpd's threads serve shuffle and
 * metrics requests. `lock` protects the attempt list and the counters; lock order: `lock`,
 * then the executor pool's.
 *
 * Each heartbeat also says how the machine is doing (`health`: pressure stall information,
 * load, the --chaos-slow factor) and how fast each attempt progresses (`rate`), for a
 * coordinator that wants to tell a slow worker from a big task.
 */
#include "cluster/worker.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <fcntl.h>
#include <spawn.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cluster/execpool.h"
#include "cluster/leader.h"
#include "cluster/taskproc.h"
#include "cluster/wire.h"
#include "common/claim.h"
#include "common/exitcode.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "data/ifile.h"
#include "net/http.h"
#include "obs/procmetrics.h"

typedef struct worker_attempt {
    char job[64];
    uint32_t attempt;
    struct execpool_exec *exec; /* while it runs */
    int killed;          /* the coordinator no longer wants it: do not start it */
    /* Its progress rate, from the samples the heartbeats take (worker_rate_sample). */
    uint64_t run_ns;     /* when its executor got it; 0 before */
    uint64_t sample_ns;  /* the last sample the rate counts from, and its progress */
    double sample_p;
    double rate;         /* progress per second; 0 while unknown */
    json_t *assignment;
    struct worker *w;
    struct worker_attempt *next;
} worker_attempt;

typedef struct worker {
    const char *coordinator, *name, *listen, *work_dir, *fail_mode;
    leader ldr;          /* follows the leading coordinator (--coordinator: list or zk://) */
    uint64_t epoch;      /* the newest coordinator epoch seen: older answers are refused */
    char *token;
    const char *token_file;
    claim dir;           /* work_dir, owned by this process (a second worker of that name is refused) */
    int refused;         /* the coordinator refused our token (HTTP 401): stop, exit EXITCODE_UNREACHABLE */
    char address[WORKER_ADDRESS_MAX];
    char incarnation[40];
    uint32_t slots;
    uint64_t heartbeat_ms;
    uint64_t fail_after;
    int fail_after_set;
    char exe[4096];
    execpool *pool;      /* one executor process per slot */
    double chaos_crash, chaos_delay;
    uint64_t chaos_max_delay_ms;
    uint64_t drop_assignments; /* TALLY_FAULT_DROP_ASSIGNMENTS=N: ignore the first N assignments */
    uint64_t rng;
    http_server *srv;
    /* Jobs whose directories it removed lately, and when (the heartbeat loop's alone): the
     * coordinator lists a finished job in every answer for 30 s, and answers come every few ms
     * while work is handed out, so each was removed again at every answer (a series of small
     * jobs: ~150 failed stat() calls per job). Now at most once a second, which still clears
     * what a late attempt of the job left. */
    struct {
        char id[48];
        uint64_t ms;
    } removed[64];
    unsigned removed_next;
    wire_health health;     /* the last reading of /proc (the heartbeat loop's alone) */
    uint64_t health_ms;     /* when it was taken; 0: never */
    pthread_mutex_t lock;   /* protects everything below */
    double chaos_slow;      /* --chaos-slow, or what POST /v1/chaos set; 1: off */
    worker_attempt *attempts;
    uint64_t started, succeeded, failed, shuffle_bytes, shuffle_requests;
    _Atomic uint64_t hb_ok_ms; /* when a heartbeat was last answered (time_mono_ms); 0: never */
} worker;

/* /readyz: ready while a heartbeat was answered this recently (longer than a leader change). */
#define WORKER_READY_MS 10000

extern char **environ;

static volatile sig_atomic_t worker_stop;

static void worker_on_signal(int sig)
{
    (void)sig;
    worker_stop = 1;
}

static double worker_rand(worker *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t z = (w->rng += 0x9E3779B97F4A7C15ull);
    pthread_mutex_unlock(&w->lock);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (double)(z >> 11) / 9007199254740992.0;
}

/* Job ids come from the network: only [A-Za-z0-9_-] may become a path component. */
static int worker_valid_id(const char *s)
{
    /* It starts with a letter or digit: never "_owner" (the worker's claim file) or "-x". */
    if (!s || !*s || strlen(s) > 48 || !((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9')))
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return 0;
    return 1;
}

/* ---- Shuffle and metrics server ---------------------------------------------------------- */

static void worker_shuffle(worker *w, const http_request *req, http_response *resp)
{
    const char *job = http_request_query(req, "job"), *map = http_request_query(req, "map"),
               *part = http_request_query(req, "part"), *meta = http_request_query(req, "meta");
    uint64_t m, p;
    if (!worker_valid_id(job) || !map || !part || util_parse_u64(map, 0, 1000000, &m) ||
        util_parse_u64(part, 0, 100000, &p)) {
        http_respond_error(resp, 400, "need job=ID, map=N and part=N");
        return;
    }
    char *path = xasprintf("%s/%s/map-%05llu.out", w->work_dir, job, (unsigned long long)m);
    ifile_part *parts = NULL;
    uint32_t np = 0;
    int iv;
    struct err e = {0};
    if (ifile_read_index(path, &parts, &np, &iv, &e) != 0) {
        http_respond_error(resp, 404, "no such map output on this worker");
        free(path);
        return;
    }
    if (p >= np) {
        http_respond_error(resp, 400, "partition out of range");
    } else if (meta) {
        http_respond_json(resp, 200, "{\"length\":%" PRIu64 ",\"crc\":%" PRIu32 ",\"records\":%" PRIu64 "}",
                          parts[p].length, parts[p].crc, parts[p].records);
    } else {
        resp->status = 200;
        resp->content_type = "application/octet-stream";
        resp->file_path = path;
        path = NULL;
        resp->file_offset = parts[p].offset;
        resp->file_length = parts[p].length;
        /* What the segment is, so that a reducer needs no separate meta request. */
        resp->headers[0].name = "X-Tally-Length";
        snprintf(resp->headers[0].value, sizeof resp->headers[0].value, "%" PRIu64, parts[p].length);
        resp->headers[1].name = "X-Tally-Crc";
        snprintf(resp->headers[1].value, sizeof resp->headers[1].value, "%" PRIu32, parts[p].crc);
        resp->headers[2].name = "X-Tally-Records";
        snprintf(resp->headers[2].value, sizeof resp->headers[2].value, "%" PRIu64, parts[p].records);
        resp->nheaders = 3;
        pthread_mutex_lock(&w->lock);
        w->shuffle_bytes += parts[p].length;
        w->shuffle_requests++;
        pthread_mutex_unlock(&w->lock);
    }
    free(parts);
    free(path);
}

static void worker_metrics(worker *w, http_response *resp)
{
    struct buf b = {0};
    pthread_mutex_lock(&w->lock);
    uint64_t running = 0;
    for (worker_attempt *a = w->attempts; a; a = a->next) running++;
    buf_appendf(&b, "# HELP tally_worker_attempts_total Task attempts this worker finished, by outcome.\n"
                    "# TYPE tally_worker_attempts_total counter\n"
                    "tally_worker_attempts_total{outcome=\"succeeded\"} %" PRIu64 "\n"
                    "tally_worker_attempts_total{outcome=\"failed\"} %" PRIu64 "\n"
                    "# HELP tally_worker_attempts_started_total Task attempts this worker started.\n"
                    "# TYPE tally_worker_attempts_started_total counter\n"
                    "tally_worker_attempts_started_total %" PRIu64 "\n"
                    "# HELP tally_worker_running_attempts Task attempts running now.\n"
                    "# TYPE tally_worker_running_attempts gauge\n"
                    "tally_worker_running_attempts %" PRIu64 "\n"
                    "# HELP tally_worker_slots Task slots of this worker.\n"
                    "# TYPE tally_worker_slots gauge\n"
                    "tally_worker_slots %u\n"
                    "# HELP tally_worker_executor_starts_total Executor processes started (one per slot, then replacements of dead ones).\n"
                    "# TYPE tally_worker_executor_starts_total counter\n"
                    "tally_worker_executor_starts_total %" PRIu64 "\n"
                    "# HELP tally_shuffle_served_bytes_total Map output bytes served to reducers.\n"
                    "# TYPE tally_shuffle_served_bytes_total counter\n"
                    "tally_shuffle_served_bytes_total %" PRIu64 "\n"
                    "# HELP tally_shuffle_served_requests_total Map output segments served to reducers.\n"
                    "# TYPE tally_shuffle_served_requests_total counter\n"
                    "tally_shuffle_served_requests_total %" PRIu64 "\n",
                w->succeeded, w->failed, w->started, running, w->slots, execpool_starts(w->pool), w->shuffle_bytes,
                w->shuffle_requests);
    pthread_mutex_unlock(&w->lock);
    procmetrics_write(&b);
    http_respond_metrics(resp, &b, "worker");
}

/* GET /v1/chaos: the --chaos-slow factor; POST {"slow": F}: a new one, for attempts started
 * from now on and, from their next checkpoint, for those running (so a test can make a slow
 * worker fast again without restarting it). The server has checked the token and capped the
 * body already. */
static void worker_chaos(worker *w, const http_request *req, http_response *resp)
{
    if (strcmp(req->method, "POST") == 0) {
        double f = 1;
        struct err e = {0};
        if (wire_chaos_decode(req->body, req->body_len, &f, &e) != 0) {
            http_respond_error(resp, 400, e.msg);
            return;
        }
        pthread_mutex_lock(&w->lock);
        double old = w->chaos_slow;
        w->chaos_slow = f;
        execpool_set_slow(w->pool, f);
        pthread_mutex_unlock(&w->lock);
        log_info("chaos-slow: factor %g (was %g), set by %s", f, old, req->remote);
    }
    pthread_mutex_lock(&w->lock);
    double f = w->chaos_slow;
    pthread_mutex_unlock(&w->lock);
    http_respond_json(resp, 200, "{\"slow\":%.15g}", f);
}

/* GET /readyz: 200 while the coordinator answers our heartbeats (a worker that cannot reach
 * one gets no work), else 503. No token needed, no data given. */
static void worker_readyz(worker *w, http_response *resp)
{
    uint64_t ok = atomic_load(&w->hb_ok_ms), now = time_mono_ms();
    if (ok && now - ok < WORKER_READY_MS) http_respond_json(resp, 200, "{\"ready\":true}");
    else http_respond_json(resp, 503, "{\"ready\":false,\"why\":\"no heartbeat answered lately\"}");
}

static void worker_http(void *arg, const http_request *req, http_response *resp)
{
    worker *w = arg;
    if (strcmp(req->path, "/readyz") == 0 && strcmp(req->method, "GET") == 0) {
        worker_readyz(w, resp);
        return;
    }
    if (!req->authorized) {
        if (strcmp(req->path, "/healthz") == 0) http_respond_json(resp, 200, "{\"ok\":true}");
        else http_respond_error(resp, 401, "missing or wrong bearer token");
        return;
    }
    if (strcmp(req->path, "/v1/chaos") == 0 && (strcmp(req->method, "GET") == 0 || strcmp(req->method, "POST") == 0))
        worker_chaos(w, req, resp);
    else if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/v1/shuffle") == 0) worker_shuffle(w, req, resp);
    else if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/metrics") == 0) worker_metrics(w, resp);
    else if (strcmp(req->method, "GET") == 0 && strcmp(req->path, "/healthz") == 0) http_respond_json(resp, 200, "{\"ok\":true}");
    else http_respond_error(resp, 404, "no such endpoint");
}

/* ---- Attempts ---------------------------------------------------------------------------- */

static void worker_die(worker *w, const char *why)
{
    log_warn("failure injection: %s", why);
    (void)w;
    kill(getpid(), SIGKILL);
}

/* Applies --fail-after-tasks and the chaos knobs at the start of a task. */
static void worker_inject(worker *w)
{
    pthread_mutex_lock(&w->lock);
    uint64_t n = ++w->started;
    pthread_mutex_unlock(&w->lock);
    if (w->fail_after_set && n > w->fail_after) {
        if (strcmp(w->fail_mode, "exit") == 0) {
            log_warn("failure injection: exiting after %" PRIu64 " tasks", w->fail_after);
            _exit(3);
        }
        if (strcmp(w->fail_mode, "hang") == 0) {
            log_warn("failure injection: hanging after %" PRIu64 " tasks", w->fail_after);
            raise(SIGSTOP);
            return; /* resumed by SIGCONT: carry on */
        }
        worker_die(w, "crashing after --fail-after-tasks");
    }
    if (w->chaos_crash > 0 && worker_rand(w) < w->chaos_crash) worker_die(w, "chaos crash");
    if (w->chaos_delay > 0 && worker_rand(w) < w->chaos_delay) {
        uint64_t ms = (uint64_t)(worker_rand(w) * (double)w->chaos_max_delay_ms);
        struct timespec ts = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void worker_report(worker *w, worker_attempt *a, json_t *result)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:i, s:O}", "name", w->name, "incarnation", w->incarnation,
                             "job", a->job, "attempt", (int)a->attempt, "result", result);
    char *s = wire_dump(body);
    json_decref(body);
    /* Long enough to outlast a coordinator failover (a new leader is elected within the
     * ZooKeeper session timeout): an unreported success would be run again. */
    uint64_t deadline = time_mono_ms() + 60000;
    while (time_mono_ms() < deadline && !worker_stop) {
        int status = 0;
        char *out = NULL;
        struct err e = {0};
        int rc = leader_call(&w->ldr, "POST", "/v1/report", w->token, s, 5000, &status, &out, &e);
        free(out);
        if (rc == 0 && status < 500) break;
        log_warn("job=%s attempt=a%u: report failed (%s), retrying", a->job, a->attempt,
                 rc ? e.msg : "server error");
        usleep(200000);
    }
    free(s);
}

/* Takes a off the attempt list (the next heartbeat no longer lists it) and frees it. */
static void worker_unlist(worker *w, worker_attempt *a)
{
    pthread_mutex_lock(&w->lock);
    for (worker_attempt **p = &w->attempts; *p; p = &(*p)->next) {
        if (*p == a) {
            *p = a->next;
            break;
        }
    }
    pthread_mutex_unlock(&w->lock);
    json_decref(a->assignment);
    free(a);
}

static void *worker_attempt_thread(void *arg)
{
    worker_attempt *a = arg;
    worker *w = a->w;
    uint64_t t_begin = time_mono_ns();
    worker_inject(w);
    char *jobdir = xasprintf("%s/%s", w->work_dir, a->job);
    struct err e = {0};
    json_t *result = NULL;
    json_object_set_new(a->assignment, "work_dir", json_string(jobdir));
    json_object_set_new(a->assignment, "token", json_string(w->token));
    json_object_set_new(a->assignment, "coordinator", json_string(w->coordinator));
    json_object_set_new(a->assignment, "worker", json_string(w->name));
    json_object_set_new(a->assignment, "incarnation", json_string(w->incarnation));
    int rc = fs_mkdirs(jobdir, &e);
    if (rc == 0) {
        execpool_exec *x = execpool_acquire(w->pool);
        /* Published under the lock, so that a kill from the coordinator either stops the
         * attempt from starting or reaches its executor (if that executor has no process,
         * execpool_run() starts one; the coordinator repeats the kill at the next heartbeat
         * for as long as the attempt is listed). */
        pthread_mutex_lock(&w->lock);
        if (a->killed) rc = err_set(&e, -ECANCELED, "killed before it started");
        else {
            a->exec = x;
            a->run_ns = time_mono_ns();
        }
        pthread_mutex_unlock(&w->lock);
        if (rc == 0) {
            char *text = wire_dump(a->assignment);
            int wstatus = -1;
            uint64_t t_sent = time_mono_ns();
            rc = execpool_run(w->pool, x, text, &result, &wstatus, &e);
            free(text);
            log_debug("job=%s attempt=a%u: waited %.1f ms for an executor, ran %.1f ms", a->job, a->attempt,
                      (double)(t_sent - t_begin) / 1e6, (double)(time_mono_ns() - t_sent) / 1e6);
            if (rc) result = execpool_crash_result(a->assignment, execpool_live(x), wstatus);
            pthread_mutex_lock(&w->lock);
            a->exec = NULL;
            pthread_mutex_unlock(&w->lock);
        }
        execpool_release(w->pool, x);
    }
    if (!result) result = json_pack("{s:b, s:s, s:b}", "ok", 0, "error", e.msg, "fatal", 0);
    pthread_mutex_lock(&w->lock);
    if (json_is_true(json_object_get(result, "ok"))) w->succeeded++;
    else w->failed++;
    pthread_mutex_unlock(&w->lock);
    worker_report(w, a, result);
    json_decref(result);
    free(jobdir);
    /* Off the list: the slot is free. */
    worker_unlist(w, a);
    return NULL;
}

static void worker_start(worker *w, json_t *task)
{
    const char *job;
    uint64_t attempt;
    struct err e = {0};
    if (wire_get_str(task, "job", &job, 1, &e) || wire_get_u64(task, "attempt", UINT32_MAX, &attempt, 1, &e) ||
        !worker_valid_id(job)) {
        log_warn("ignoring malformed task from the coordinator: %s", e.msg);
        return;
    }
    worker_attempt *a = xcalloc(1, sizeof *a);
    snprintf(a->job, sizeof a->job, "%s", job);
    a->attempt = (uint32_t)attempt;
    a->assignment = json_incref(task);
    a->w = w;
    pthread_mutex_lock(&w->lock);
    a->next = w->attempts;
    w->attempts = a;
    pthread_mutex_unlock(&w->lock);
    int k = util_thread_detached(worker_attempt_thread, a);
    if (k != 0) {
        /* Left out of the next heartbeat, the coordinator runs it again. */
        log_warn("job=%s attempt=a%u: cannot start a thread: %s", a->job, a->attempt, strerror(-k));
        worker_unlist(w, a);
    }
}

static void worker_kill(worker *w, const char *job, uint64_t attempt)
{
    pthread_mutex_lock(&w->lock);
    for (worker_attempt *a = w->attempts; a; a = a->next) {
        if (strcmp(a->job, job) != 0 || a->attempt != attempt) continue;
        a->killed = 1;
        if (a->exec) execpool_kill(w->pool, a->exec);
    }
    pthread_mutex_unlock(&w->lock);
}

/* ---- Health ------------------------------------------------------------------------------ */

/* Reads a small /proc file into buf (NUL-terminated); 0, or -1 if it is absent or unreadable. */
static int worker_read_small(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    size_t got = 0;
    while (got < cap - 1) {
        ssize_t k = read(fd, buf + got, cap - 1 - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            /* PSI files exist but refuse reads when the kernel was booted with psi=0. */
            close(fd);
            return -1;
        }
        if (k == 0) break;
        got += (size_t)k;
    }
    close(fd);
    buf[got] = '\0';
    return got ? 0 : -1;
}

/* The "some avg10" of a PSI file (/proc/pressure/cpu, io, memory): the share of the last ten
 * seconds in which at least one task waited for the resource, in percent; -1 if unknown. */
static double worker_psi(const char *path)
{
    char buf[512];
    if (worker_read_small(path, buf, sizeof buf) != 0) return -1;
    const char *some = strncmp(buf, "some ", 5) == 0 ? buf : strstr(buf, "\nsome ");
    const char *avg = some ? strstr(some, "avg10=") : NULL;
    const char *eol = some ? strchr(some + 1, '\n') : NULL;
    if (!avg || (eol && avg > eol)) return -1;
    char *end;
    double v = strtod(avg + 6, &end);
    return end != avg + 6 && isfinite(v) && v >= 0 && v <= 100 ? v : -1;
}

static double worker_load1(void)
{
    char buf[256];
    if (worker_read_small("/proc/loadavg", buf, sizeof buf) != 0) return -1;
    char *end;
    double v = strtod(buf, &end);
    return end != buf && isfinite(v) && v >= 0 ? v : -1;
}

/* The heartbeat's health: /proc is read at most once a second (PSI's shortest average is ten
 * seconds and the load average's a minute, so reading it at every heartbeat, which can come
 * every few ms when work is handed out, would only cost); the chaos factor is always current. */
static void worker_health(worker *w, wire_health *out)
{
    uint64_t now = time_mono_ms();
    if (w->health_ms == 0 || now - w->health_ms >= 1000) {
        w->health.psi_cpu = worker_psi("/proc/pressure/cpu");
        w->health.psi_io = worker_psi("/proc/pressure/io");
        w->health.psi_memory = worker_psi("/proc/pressure/memory");
        w->health.load1 = worker_load1();
        w->health_ms = now;
    }
    *out = w->health;
    pthread_mutex_lock(&w->lock);
    out->chaos_slow = w->chaos_slow;
    pthread_mutex_unlock(&w->lock);
}

/* ---- Heartbeat loop ---------------------------------------------------------------------- */

/* Samples closer together than this are not measured: the interval grows until the next. */
#define WORKER_RATE_MIN_NS 100000000ull
/* Time constant of the smoothing, in seconds. */
#define WORKER_RATE_TAU_S 2.0

/* Updates a's progress rate with a new sample (progress p at time now). Called with the lock.
 *
 * The rate is an exponentially weighted moving average of the rates between samples, weighted
 * by the time each interval covers (tau 2 s), and starts as progress over the time since the
 * executor got the attempt. Not progress over the whole age of the attempt: what a scheduler
 * wants to know is how fast an attempt goes now, to estimate its time left and to see a
 * worker turn slow (or fast again) mid-attempt, and a whole-life average would remember the
 * job's loading, a reduce's fetching half (which runs at another speed than its reducing
 * half), or a slow-down long since over. Two seconds smooths the steps in which progress is
 * published and the jitter of the heartbeats, and follows a change within a few heartbeats. */
static void worker_rate_sample(worker_attempt *a, uint64_t now, double p)
{
    if (a->sample_ns == 0) {
        a->sample_ns = a->run_ns;
        a->sample_p = 0;
    }
    if (p < a->sample_p) {
        /* Progress went back (it should not): start measuring again from here. */
        a->sample_ns = now;
        a->sample_p = p;
        return;
    }
    if (now < a->sample_ns + WORKER_RATE_MIN_NS) return;
    double dt = (double)(now - a->sample_ns) / 1e9, inst = (p - a->sample_p) / dt;
    if (a->rate <= 0) a->rate = inst;
    else a->rate += (1 - exp(-dt / WORKER_RATE_TAU_S)) * (inst - a->rate);
    if (!(a->rate >= 0 && a->rate <= 1e6)) a->rate = 0; /* what the protocol allows */
    a->sample_ns = now;
    a->sample_p = p;
}

static int worker_heartbeat(worker *w, uint64_t *next_wait)
{
    json_t *running = json_array();
    wire_health health;
    worker_health(w, &health);
    pthread_mutex_lock(&w->lock);
    uint64_t now = time_mono_ns();
    for (worker_attempt *a = w->attempts; a; a = a->next) {
        json_t *r = json_pack("{s:s, s:i}", "job", a->job, "attempt", (int)a->attempt);
        counters live;
        counters_init(&live);
        double progress = 0;
        if (a->exec && task_live_read(execpool_live(a->exec), &progress, live.v) == 0) {
            json_object_set_new(r, "progress", json_real(progress));
            json_object_set_new(r, "counters", wire_counters_encode(&live));
            worker_rate_sample(a, now, progress);
            if (a->rate > 0) json_object_set_new(r, "rate", json_real(a->rate));
        }
        counters_free(&live);
        json_array_append_new(running, r);
    }
    pthread_mutex_unlock(&w->lock);
    json_t *body = json_pack("{s:i, s:s, s:s, s:s, s:i, s:o, s:I, s:o}", "version", TALLY_WIRE_VERSION, "name",
                             w->name, "incarnation", w->incarnation, "address", w->address, "slots",
                             (int)w->slots, "running", running, "wait_ms", (json_int_t)w->heartbeat_ms,
                             "health", wire_health_encode(&health));
    char *s = wire_dump(body);
    json_decref(body);
    int status = 0;
    char *out = NULL;
    struct err e = {0};
    int rc = leader_call(&w->ldr, "POST", "/v1/heartbeat", w->token, s, (long)w->heartbeat_ms + 5000,
                       &status, &out, &e);
    free(s);
    if (rc == 0 && status == 401) {
        /* Retrying cannot help: the token is wrong until someone fixes the token file. */
        w->refused = 1;
        free(out);
        return -EACCES;
    }
    if (rc == 0 && status != 200) rc = err_set(&e, -EIO, "HTTP %d: %s", status, out ? out : "");
    json_t *resp = NULL;
    if (rc == 0) rc = wire_parse_object(out, strlen(out), &resp, &e);
    free(out);
    if (rc) {
        log_warn("heartbeat to %s failed: %s", w->coordinator, e.msg);
        return rc;
    }
    /* Fencing: an answer from a coordinator older than one already heard from is a deposed
     * leader's (paused, or cut off from ZooKeeper): nothing in it is acted on. */
    uint64_t epoch = 0;
    if (wire_get_u64(resp, "epoch", UINT64_MAX >> 1, &epoch, 0, &e) == 0 && epoch < w->epoch) {
        log_warn("ignoring a heartbeat answer of epoch %" PRIu64 ": epoch %" PRIu64 " has begun", epoch, w->epoch);
        json_decref(resp);
        return -ESTALE;
    }
    if (epoch > w->epoch) {
        if (w->epoch) log_info("coordinator epoch %" PRIu64 " (was %" PRIu64 ")", epoch, w->epoch);
        w->epoch = epoch;
    }
    atomic_store(&w->hb_ok_ms, time_mono_ms());
    uint64_t hb = w->heartbeat_ms;
    if (wire_get_u64(resp, "heartbeat_ms", 600000, &hb, 0, &e) == 0 && hb > 0) w->heartbeat_ms = hb;
    *next_wait = 0;
    size_t i;
    json_t *t;
    json_array_foreach(json_object_get(resp, "kill"), i, t) {
        const char *job;
        uint64_t att;
        if (wire_get_str(t, "job", &job, 1, &e) == 0 && wire_get_u64(t, "attempt", UINT32_MAX, &att, 1, &e) == 0)
            worker_kill(w, job, att);
    }
    json_array_foreach(json_object_get(resp, "finished_jobs"), i, t) {
        const char *id = json_string_value(t);
        if (!json_is_string(t) || !worker_valid_id(id)) continue;
        const size_t nr = sizeof w->removed / sizeof w->removed[0];
        uint64_t now_ms = time_mono_ms();
        size_t k = 0;
        while (k < nr && strcmp(w->removed[k].id, id) != 0) k++;
        if (k < nr && now_ms - w->removed[k].ms < 1000) continue;
        char *dir = xasprintf("%s/%s", w->work_dir, id);
        fs_rmtree(dir);
        free(dir);
        if (k == nr) snprintf(w->removed[k = w->removed_next++ % nr].id, sizeof w->removed[0].id, "%s", id);
        w->removed[k].ms = now_ms;
    }
    json_array_foreach(json_object_get(resp, "tasks"), i, t) {
        if (w->drop_assignments > 0) {
            /* Fault injection: as if this part of the answer never arrived. */
            w->drop_assignments--;
            log_warn("fault injection: dropping the assignment of attempt a%" JSON_INTEGER_FORMAT,
                     json_integer_value(json_object_get(t, "attempt")));
            continue;
        }
        worker_start(w, t);
    }
    json_decref(resp);
    return 0;
}

/* The worker's own directory inside `parent`: tally-worker-NAME, the name reduced to characters
 * that cannot leave the parent. */
static char *worker_dir_path(const char *parent, const char *name)
{
    char *p = xasprintf("%s/tally-worker-%.200s", parent, name);
    for (char *c = p + strlen(parent) + 1; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
              *c == '_' || *c == '-'))
            *c = '_';
    return p;
}

/* Claims the work dir. A new incarnation starts clean: what an earlier one left (its claim is
 * stale, or it predates claims) is lost by definition. Only that directory is ever removed. */
static int worker_claim_dir(worker *w, const char *parent, struct err *e)
{
    int rc = fs_mkdirs(parent, e);
    char *what = xasprintf("worker=%s", w->name);
    char *owner = claim_owner_text(what);
    free(what);
    if (rc == 0) rc = claim_acquire(&w->dir, w->work_dir, owner, e);
    if (rc == -EEXIST) {
        fs_rmtree(w->work_dir); /* tally-worker-NAME of a worker from before claims */
        rc = claim_acquire(&w->dir, w->work_dir, owner, e);
    }
    free(owner);
    if (rc == -EBUSY)
        err_prefix(e, "another worker of this name uses its work dir (give this one another --name or --work-dir): ");
    if (rc == 0 && w->dir.took_over) {
        DIR *d = opendir(w->work_dir);
        struct dirent *de;
        while (d && (de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || strcmp(de->d_name, CLAIM_OWNER_FILE) == 0)
                continue;
            char *p = xasprintf("%s/%s", w->work_dir, de->d_name);
            fs_rmtree(p);
            free(p);
        }
        if (d) closedir(d);
    }
    return rc;
}

int worker_run(const worker_config *cfg)
{
    struct err e = {0};
    int rc;
    /* Static: attempt threads still finishing when the worker stops may use it until exit. */
    static worker w;
    memset(&w, 0, sizeof w);
    w.slots = cfg->slots;
    w.fail_after = cfg->fail_after;
    w.fail_after_set = cfg->fail_after_set;
    w.chaos_crash = cfg->chaos_crash;
    w.chaos_delay = cfg->chaos_delay;
    w.chaos_max_delay_ms = cfg->chaos_max_delay_ms;
    w.chaos_slow = cfg->chaos_slow;
    if (http_read_token_file(cfg->token_file, &w.token, &e) != 0) {
        fprintf(stderr, "tally worker: %s\n", e.msg);
        return EXITCODE_FAILED;
    }
    char host[128] = "";
    gethostname(host, sizeof host - 1);
    char defname[200];
    snprintf(defname, sizeof defname, "%s-%d", host, (int)getpid());
    w.name = cfg->name ? cfg->name : defname;
    const char *tmpdir = getenv("TMPDIR");
    const char *parent = cfg->work_dir ? cfg->work_dir : tmpdir && *tmpdir ? tmpdir : "/tmp";
    char *work_dir = worker_dir_path(parent, w.name);
    w.work_dir = work_dir;
    w.token_file = cfg->token_file;
    w.coordinator = cfg->coordinator;
    w.fail_mode = cfg->fail_mode;
    w.heartbeat_ms = 250;
    const char *drop = getenv("TALLY_FAULT_DROP_ASSIGNMENTS");
    if (drop && util_parse_u64(drop, 0, UINT32_MAX, &w.drop_assignments) != 0) {
        fprintf(stderr, "tally worker: TALLY_FAULT_DROP_ASSIGNMENTS: expected a number\n");
        return EXITCODE_USAGE;
    }
    uint64_t rnd[2] = {0, 0};
    if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) rnd[0] = time_wall_ms() ^ (uint64_t)getpid();
    snprintf(w.incarnation, sizeof w.incarnation, "%016" PRIx64, rnd[0]);
    w.rng = cfg->chaos_seeded ? cfg->chaos_seed : rnd[1];
    pthread_mutex_init(&w.lock, NULL);
    ssize_t exe_len = readlink("/proc/self/exe", w.exe, sizeof w.exe - 1);
    if (exe_len <= 0) snprintf(w.exe, sizeof w.exe, "%s", cfg->argv0);
    log_set_process("worker");
    char ctx[96];
    snprintf(ctx, sizeof ctx, "worker=%s", w.name);
    log_set_context(ctx);

    char lhost[128];
    uint64_t lport = 0;
    const char *colon = strrchr(cfg->listen, ':');
    if (!colon || (size_t)(colon - cfg->listen) >= sizeof lhost || util_parse_u64(colon + 1, 0, 65535, &lport)) {
        fprintf(stderr, "tally worker: --listen: expected HOST:PORT\n");
        return EXITCODE_USAGE;
    }
    snprintf(lhost, sizeof lhost, "%.*s", (int)(colon - cfg->listen), cfg->listen);
    if ((rc = worker_claim_dir(&w, parent, &e)) != 0) {
        fprintf(stderr, "tally worker: work dir: %s\n", e.msg);
        return rc == -EBUSY ? EXITCODE_USAGE : EXITCODE_FAILED;
    }
    if (execpool_new(&w.pool, w.exe, w.work_dir, w.slots, cfg->log_level, &e) != 0) {
        fprintf(stderr, "tally worker: %s\n", e.msg);
        claim_release(&w.dir);
        return EXITCODE_FAILED;
    }
    execpool_set_slow(w.pool, w.chaos_slow);
    if (w.chaos_slow > 1) log_info("chaos-slow: every attempt takes %g times as long", w.chaos_slow);
    if (http_server_start(&w.srv, lhost, (uint16_t)lport, w.token, 64 * 1024, worker_http, &w, &e) != 0) {
        fprintf(stderr, "tally worker: %s\n", e.msg);
        claim_release(&w.dir);
        return EXITCODE_FAILED;
    }
    /* Behind a container network the listen address is not the one others can reach. */
    if (cfg->advertise) snprintf(w.address, sizeof w.address, "%s", cfg->advertise);
    else snprintf(w.address, sizeof w.address, "%s:%u", strcmp(lhost, "0.0.0.0") == 0 ? host : lhost,
                  http_server_port(w.srv));
    if (leader_init(&w.ldr, w.coordinator, &e) != 0) {
        fprintf(stderr, "tally worker: --coordinator: %s\n", e.msg);
        http_server_stop(w.srv);
        execpool_close(w.pool);
        execpool_free(w.pool);
        claim_release(&w.dir);
        return EXITCODE_USAGE;
    }
    util_catch_stop_signals(worker_on_signal);
    signal(SIGPIPE, SIG_IGN);
    log_info("listening on %s, coordinator %s, %u slots, work dir %s", w.address, w.coordinator, w.slots, w.work_dir);
    printf("worker %s listening on %s\n", w.name, w.address);
    fflush(stdout);

    /* Retry soon, whatever the failure: a failed heartbeat costs a refused connection, while
     * every ms of backoff after a coordinator failover is a ms of idle slots (the new leader
     * assigns nothing until the workers find it). */
    uint64_t backoff = 50;
    while (!worker_stop && !w.refused) {
        uint64_t wait = 0;
        if (worker_heartbeat(&w, &wait) != 0) {
            usleep((useconds_t)(backoff * 1000));
            if (backoff < 250) backoff *= 2;
        } else {
            backoff = 50;
        }
    }
    log_info("stopping");
    execpool_close(w.pool);
    /* The attempt threads see their executors die; let them finish before freeing. */
    for (int i = 0; i < 300; i++) {
        pthread_mutex_lock(&w.lock);
        int busy = w.attempts != NULL;
        pthread_mutex_unlock(&w.lock);
        if (!busy) break;
        usleep(10000);
    }
    http_server_stop(w.srv);
    if (!w.attempts) execpool_free(w.pool);
    claim_release(&w.dir);
    free(work_dir);
    free(w.token);
    leader_free(&w.ldr);
    if (w.refused) {
        fprintf(stderr, "tally worker: the coordinator at %s refused our token (HTTP 401): the token file %s does "
                        "not hold the token it was started with\n", w.coordinator, w.token_file);
        return EXITCODE_UNREACHABLE;
    }
    return 0;
}
