/* taskproc.c - the executor: runs a worker's attempts in a separate, long-lived process.
 *
 * A worker never runs job code in its own process: a user job that crashes (SIGSEGV in a .so)
 * or leaks must not take the worker, its shuffle server and its other attempts down with it.
 * Each slot of a worker has one executor process, started once and reused for attempt after
 * attempt (Hadoop's JVM reuse, Spark's executors). Starting a process per attempt cost this
 * engine 15-60 ms per task (exec and dynamic linking, or fork's copy-on-write faults and TLB
 * shootdowns in a threaded worker, then page faults on a fresh map buffer), which was most of
 * a small job's latency. An executor keeps what is worth keeping between attempts: the opened
 * job (its .so and setup state) while the job id stays the same, and the map buffer with its
 * faulted-in memory. Both are dropped after a minute without work, so an idle worker is small.
 *
 * If an executor dies mid-attempt the worker reports the attempt failed, names the record
 * its map() call was on (from the shared task_live), and starts a new executor.
 */
#include "cluster/taskproc.h"

#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cluster/leader.h"
#include "cluster/wire.h"
#include "common/exitcode.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "data/ifile.h"
#include "data/mapbuf.h"
#include "data/output.h"
#include "exec/ctx.h"
#include "exec/task.h"
#include "net/http.h"

#define TASKPROC_IN 3
#define TASKPROC_OUT 4
#define TASKPROC_IDLE_MS 60000
/* Failures to fetch one map's output that an attempt waits out (the coordinator re-runs the
 * map each time) before it gives up: the attempt fails (counted against --max-attempts) and
 * runs again, since a reducer that cannot fetch fresh outputs either may be broken itself. */
#define TASKPROC_MAX_FETCH_FAILURES 4

/* What an executor keeps between attempts. */
typedef struct taskproc_cache {
    char job_id[64];
    jobspec spec;
    const tally_job *job;
    void *handle, *state;
    mapbuf *mb;
} taskproc_cache;

/* ---- Frames ------------------------------------------------------------------------------ */

static int taskproc_io(int fd, void *buf, size_t len, int writing)
{
    char *p = buf;
    size_t done = 0;
    while (done < len) {
        ssize_t k = writing ? write(fd, p + done, len - done) : read(fd, p + done, len - done);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) return -errno;
        if (k == 0) return done == 0 ? 0 : -EPIPE;
        done += (size_t)k;
    }
    return 1;
}

int taskproc_frame_write(int fd, const char *data, size_t len)
{
    if (len > TASKPROC_MAX_FRAME) return -EMSGSIZE;
    uint32_t n = (uint32_t)len;
    int rc = taskproc_io(fd, &n, sizeof n, 1);
    if (rc == 1 && len > 0) rc = taskproc_io(fd, (void *)data, len, 1);
    return rc == 1 ? 0 : rc == 0 ? -EPIPE : rc;
}

int taskproc_frame_read(int fd, char **data, size_t *len)
{
    uint32_t n;
    *data = NULL;
    int rc = taskproc_io(fd, &n, sizeof n, 0);
    if (rc <= 0) return rc;
    if (n > TASKPROC_MAX_FRAME) return -EMSGSIZE;
    /* Grow with what arrives rather than trusting the length: a torn frame that claims
     * 256 MiB must not cost 256 MiB. */
    size_t cap = n < 65536 ? (size_t)n + 1 : 65536, got = 0;
    char *buf = xmalloc(cap);
    while (got < n) {
        if (got == cap - 1) {
            cap = cap * 2 > (size_t)n + 1 ? (size_t)n + 1 : cap * 2;
            buf = xrealloc(buf, cap);
        }
        size_t want = cap - 1 - got;
        if (want > n - got) want = n - got;
        rc = taskproc_io(fd, buf + got, want, 0);
        if (rc != 1) {
            free(buf);
            return rc == 0 ? -EPIPE : rc;
        }
        got += want;
    }
    buf[n] = '\0';
    *data = buf;
    *len = n;
    return 1;
}

/* ---- Reduce input: fetching map outputs -------------------------------------------------- */

/* The assignment fields a reduce attempt uses to talk to the coordinator. */
typedef struct taskproc_peer {
    const char *job, *token, *coordinator, *worker, *incarnation;
    uint64_t attempt;
} taskproc_peer;

/* Downloads partition `part` of map `loc` into dest in one request (the segment's length,
 * CRC and record count come as response headers); sets the segment and adds the partition's
 * record count to *records. */
static int taskproc_fetch_one(const taskproc_peer *p, const wire_map_loc *loc, uint32_t part,
                              const char *dest, task_segment *seg, uint64_t *records, int *local, struct err *e)
{
    char path[256];
    snprintf(path, sizeof path, "/v1/shuffle?job=%s&map=%u&part=%u", p->job, loc->index, part);
    http_header h[3] = {{.name = "X-Tally-Length"}, {.name = "X-Tally-Crc"}, {.name = "X-Tally-Records"}};
    int status = 0;
    uint64_t got = 0, length = 0, crc = 0, nrec = 0;
    /* A failure on this side (the reducer's disk) is not the map output's fault: it must not
     * make the coordinator re-run the map (http_download says which it was). */
    *local = 0;
    /* A short connect/stall budget: a map's worker that stopped answering is declared dead by
     * the coordinator within its worker timeout; this attempt should learn it about as fast. */
    int rc = loc->address[0] ? http_download(loc->address, path, p->token, dest, 3000, h, 3, &status, &got, local, e)
                             : err_set(e, -ENOENT, "no location");
    if (rc == 0 && (!h[0].found || !h[1].found || util_parse_u64(h[0].value, 0, UINT64_MAX >> 1, &length) ||
                    util_parse_u64(h[1].value, 0, UINT32_MAX, &crc) ||
                    (h[2].found && util_parse_u64(h[2].value, 0, UINT64_MAX >> 1, &nrec))))
        rc = err_set(e, -EPROTO, "missing or bad X-Tally-Length/Crc/Records headers");
    if (rc == 0 && got != length)
        rc = err_set(e, -EPROTO, "got %" PRIu64 " bytes of a %" PRIu64 "-byte segment", got, length);
    if (rc) {
        err_prefix(e, "fetching map %u output from %s: ", loc->index, loc->address[0] ? loc->address : "(nowhere)");
        return rc;
    }
    free(seg->path);
    *seg = (task_segment){.path = xstrdup(dest), .offset = 0, .length = length, .crc = (uint32_t)crc};
    *records += nrec;
    return 0;
}

/* A call to the leading coordinator (the worker passes its --coordinator: a list, or zk://). */
static int taskproc_leader_call(const char *coordinator, const char *method, const char *path, const char *token,
                                const char *body, long timeout_ms, int *status, char **out, struct err *e)
{
    leader l;
    int rc = leader_init(&l, coordinator, e);
    if (rc == 0) rc = leader_call(&l, method, path, token, body, timeout_ms, status, out, e);
    leader_free(&l);
    return rc;
}

/* Tells the coordinator that map `loc` could not be fetched, then waits until it has a newer
 * committed attempt and updates loc. Returns 0 when there is one to fetch. */
static int taskproc_refetch_wait(const taskproc_peer *p, wire_map_loc *loc, const char *why, struct err *e)
{
    json_t *body = json_pack("{s:s, s:s, s:s, s:I, s:i, s:I, s:s}", "name", p->worker, "incarnation",
                             p->incarnation, "job", p->job, "attempt", (json_int_t)p->attempt, "map",
                             (int)loc->index, "map_attempt", (json_int_t)loc->attempt, "error", why);
    char *s = wire_dump(body);
    json_decref(body);
    int status = 0;
    char *out = NULL;
    int rc = taskproc_leader_call(p->coordinator, "POST", "/v1/fetch-failure", p->token, s, 5000, &status, &out, e);
    free(s);
    free(out);
    if (rc == 0 && status != 200) rc = err_set(e, -EIO, "coordinator refused the fetch-failure report (HTTP %d)", status);
    if (rc) return rc;
    char path[128];
    snprintf(path, sizeof path, "/v1/jobs/%s/maps", p->job);
    uint64_t sleep_ms = 20;
    for (;;) {
        out = NULL;
        rc = taskproc_leader_call(p->coordinator, "GET", path, p->token, NULL, 5000, &status, &out, e);
        json_t *o = NULL;
        wire_map_loc *locs = NULL;
        size_t n = 0;
        if (rc == 0 && status != 200) rc = err_set(e, -EIO, "map locations: HTTP %d", status);
        if (rc == 0) rc = wire_parse_object(out, strlen(out), &o, e);
        if (rc == 0) rc = wire_maps_decode(json_object_get(o, "maps"), &locs, &n, e);
        if (rc == 0 && !json_is_true(json_object_get(o, "running"))) rc = err_set(e, -ECANCELED, "job is over");
        if (rc == 0 && loc->index >= n) rc = err_set(e, -EINVAL, "map locations: map %u missing", loc->index);
        free(out);
        json_decref(o);
        if (rc == 0 && locs[loc->index].attempt >= 0 && locs[loc->index].attempt != loc->attempt) {
            *loc = locs[loc->index];
            loc->data = NULL; /* fetched from where it now is (its JSON is freed above) */
            free(locs);
            return 0;
        }
        free(locs);
        if (rc) return rc;
        usleep((useconds_t)(sleep_ms * 1000));
        if (sleep_ms < 200) sleep_ms *= 2;
    }
}

/* Writes the segments that came inline with the assignment (wire_map_loc.data) back to back
 * into one file in dir, and points their segs at it: no request, and one file however many
 * maps. A failure here is the reducer's own (local). */
static int taskproc_inline_segments(const wire_map_loc *locs, size_t n, const char *dir, task_segment *segs,
                                    uint64_t *records, struct err *e)
{
    size_t have = 0;
    for (size_t i = 0; i < n; i++) have += locs[i].data != NULL;
    if (have == 0) return 0;
    char *path = xasprintf("%s/inline.seg", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644), rc = 0;
    if (fd < 0) rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
    uint64_t off = 0;
    struct buf b = {0};
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (!locs[i].data) continue;
        b.len = 0;
        if (buf_append_unbase64(&b, locs[i].data, locs[i].data_len) != 0) {
            rc = err_set(e, -EPROTO, "map %u: the segment in the assignment is not base64", locs[i].index);
            break;
        }
        if (b.len && (rc = ifile_write_all(fd, b.data, b.len)) != 0) {
            err_set(e, rc, "%s: %s", path, strerror(-rc));
            break;
        }
        free(segs[i].path);
        segs[i] = (task_segment){.path = xstrdup(path), .offset = off, .length = b.len, .crc = locs[i].crc};
        *records += locs[i].records;
        off += b.len;
    }
    buf_free(&b);
    if (fd >= 0 && close(fd) != 0 && rc == 0) rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
    free(path);
    return rc;
}

/* Fetches partition `part` of every map output into dir, but those that came inline. A map
 * output that cannot be fetched is reported and fetched again once the coordinator has re-run
 * the map: what was fetched already is kept (the reducer goes on rather than starting over).
 * After too many failures, *failed_map names the map and the attempt fails. */
static int taskproc_fetch(const taskproc_peer *p, wire_map_loc *locs, size_t n, uint32_t part, const char *dir,
                          task_segment *segs, uint64_t *records, task_live *live, task_pace *pace,
                          int64_t *failed_map, struct err *e)
{
    int rc = taskproc_inline_segments(locs, n, dir, segs, records, e);
    if (rc) return rc;
    for (size_t i = 0; i < n; i++) {
        if (locs[i].data) continue;
        char *dest = xasprintf("%s/map-%05u.seg", dir, locs[i].index);
        uint32_t failures = 0, tries_here = 0;
        int local = 0;
        while ((rc = taskproc_fetch_one(p, &locs[i], part, dest, &segs[i], records, &local, e)) != 0) {
            log_warn("%s", e->msg);
            if (local) break;
            /* Once more from the same place before blaming the map output: a connection the
             * worker's server closed under us, a moment's overload. */
            if (++tries_here < 2) continue;
            tries_here = 0;
            struct err we = {0};
            if (++failures > TASKPROC_MAX_FETCH_FAILURES ||
                taskproc_refetch_wait(p, &locs[i], e->msg, &we) != 0) {
                if (we.msg[0]) log_warn("cannot wait for map %u to be re-run: %s", locs[i].index, we.msg);
                *failed_map = locs[i].index;
                break;
            }
            task_pace_skip(pace); /* --chaos-slow multiplies work, not the wait for another worker */
            log_info("map %u re-ran (attempt a%" PRId64 " on %s): fetching it again", locs[i].index, locs[i].attempt,
                     locs[i].address);
        }
        free(dest);
        if (rc) return rc;
        if (live) task_live_publish(live, 0.5 * (double)(i + 1) / (double)n, NULL);
        task_pace_check(pace, 0);
    }
    if (live) task_live_publish(live, 0.5, NULL);
    task_pace_check(pace, 0);
    return 0;
}

/* ---- Small map outputs travel with the report -------------------------------------------- */

/* The committed map output at `path` as the result's "output" (one {"data","crc","records"} per
 * partition, docs/protocol.md), if the whole file is at most `max` bytes; else NULL, and the
 * reducers fetch it from the worker as usual. The file stays: the worker serves it to any
 * reducer whose assignment comes without the segment (a coordinator that took over, or one
 * over its budget). */
static json_t *taskproc_inline_output(const char *path, uint64_t max)
{
    struct stat st;
    if (max == 0 || stat(path, &st) != 0 || (uint64_t)st.st_size > max) return NULL;
    ifile_part *parts = NULL;
    uint32_t np = 0;
    int iv;
    struct err e = {0};
    if (ifile_read_index(path, &parts, &np, &iv, &e) != 0) return NULL;
    json_t *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    char *bytes = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (fd >= 0 && got < (size_t)st.st_size) {
        ssize_t k = pread(fd, bytes + got, (size_t)st.st_size - got, (off_t)got);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        got += (size_t)k;
    }
    if (fd >= 0 && got == (size_t)st.st_size) {
        out = json_array();
        for (uint32_t p = 0; p < np && out; p++) {
            if (parts[p].offset > got || parts[p].length > got - parts[p].offset) {
                json_decref(out); /* an index that does not fit the file: let the shuffle say so */
                out = NULL;
                break;
            }
            struct buf b = {0};
            buf_append_base64(&b, bytes + parts[p].offset, (size_t)parts[p].length);
            json_array_append_new(out, json_pack("{s:s, s:I, s:I}", "data", b.data, "crc", (json_int_t)parts[p].crc,
                                                 "records", (json_int_t)parts[p].records));
            buf_free(&b);
        }
    }
    if (fd >= 0) close(fd);
    free(bytes);
    free(parts);
    return out;
}

/* ---- One attempt ------------------------------------------------------------------------- */

static void taskproc_cache_drop(taskproc_cache *c)
{
    if (c->job) ctx_job_close(c->job, c->handle, c->state);
    if (c->job_id[0]) jobspec_free(&c->spec);
    mapbuf_free(c->mb);
    memset(c, 0, sizeof *c);
}

/* Opens the assignment's job, or reuses it if the last attempt was of the same job. */
static int taskproc_job(taskproc_cache *c, const char *job_id, const json_t *spec_json, int *fatal, struct err *e)
{
    if (c->job && strcmp(c->job_id, job_id) == 0) return 0;
    mapbuf *mb = c->mb;
    c->mb = NULL;
    taskproc_cache_drop(c);
    c->mb = mb;
    jobspec_init(&c->spec);
    snprintf(c->job_id, sizeof c->job_id, "%s", job_id);
    int rc = wire_jobspec_decode(spec_json, &c->spec, e);
    if (rc == 0 && (rc = ctx_job_open(&c->spec, &c->job, &c->handle, &c->state, NULL, e)) != 0) *fatal = 1;
    if (rc) {
        jobspec_free(&c->spec);
        c->job = NULL;
        c->job_id[0] = '\0';
    }
    return rc;
}

/* Creates a reduce attempt's directory in OUT/_temporary: only that one, not its parents. If
 * OUT/_temporary is gone the job is over (committed or rolled back), and a late attempt must
 * not bring its output directory back. */
static int taskproc_attempt_dir(const char *dir, struct err *e)
{
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) return err_set(e, -errno, "%s: %s", dir, strerror(errno));
    return 0;
}

static json_t *taskproc_run(taskproc_cache *cache, json_t *a, task_live *live)
{
    uint64_t t0 = time_mono_ns();
    struct err e = {0};
    input_set split = {0};
    task_result res;
    task_result_init(&res);
    int64_t failed_map = -1;
    int rc = 0;
    const char *jobid, *phase, *work_dir, *map_dir = NULL;
    taskproc_peer peer = {0};
    uint64_t index = 0, inline_max = 0;
    json_t *inline_out = NULL;
    /* From here on the attempt's time is work that --chaos-slow multiplies: loading the job
     * and fetching map outputs included. */
    task_pace pace;
    task_pace_begin(&pace, live);
    /* The peer fields are there when a reduce fetches from other workers (the cluster); `tally
     * run` sends "map_dir" instead: its map outputs are local files. */
    if ((rc = wire_get_str(a, "job", &jobid, 1, &e)) || (rc = wire_get_str(a, "phase", &phase, 1, &e)) ||
        (rc = wire_get_str(a, "work_dir", &work_dir, 1, &e)) || (rc = wire_get_str(a, "token", &peer.token, 0, &e)) ||
        (rc = wire_get_str(a, "coordinator", &peer.coordinator, 0, &e)) ||
        (rc = wire_get_str(a, "worker", &peer.worker, 0, &e)) ||
        (rc = wire_get_str(a, "incarnation", &peer.incarnation, 0, &e)) ||
        (rc = wire_get_str(a, "map_dir", &map_dir, 0, &e)) ||
        (rc = wire_get_u64(a, "attempt", UINT32_MAX, &peer.attempt, 1, &e)) ||
        (rc = wire_get_u64(a, "index", 1000000, &index, 1, &e)) ||
        (rc = wire_get_u64(a, "inline_max", WIRE_INLINE_MAX, &inline_max, 0, &e)))
        goto done;
    peer.job = jobid;
    char logctx[192];
    if (peer.worker)
        snprintf(logctx, sizeof logctx, "worker=%s job=%s task=%c%05llu attempt=a%llu", peer.worker, jobid, phase[0],
                 (unsigned long long)index, (unsigned long long)peer.attempt);
    else /* under tally run: one job, one machine */
        snprintf(logctx, sizeof logctx, "task=%c%05llu attempt=a%llu", phase[0], (unsigned long long)index,
                 (unsigned long long)peer.attempt);
    log_set_context(logctx);
    if ((rc = taskproc_job(cache, jobid, json_object_get(a, "spec"), &res.fatal, &e))) goto done;
    task_env env = {.spec = &cache->spec, .job = cache->job, .state = cache->state, .work_dir = work_dir, .live = live,
                    .pace = &pace};
    task_skip skips[64];
    if (strcmp(phase, "map") == 0) {
        if ((rc = wire_split_decode(json_object_get(a, "split"), &split, &e))) goto done;
        env.inputs = &split;
        size_t i;
        json_t *sk;
        json_array_foreach(json_object_get(a, "skip"), i, sk) {
            const char *path;
            uint64_t off;
            if (env.nskip < 64 && wire_get_str(sk, "file", &path, 1, &e) == 0 &&
                wire_get_u64(sk, "offset", UINT64_MAX >> 1, &off, 1, &e) == 0)
                skips[env.nskip++] = (task_skip){.path = path, .offset = off};
        }
        env.skip = skips;
        rc = task_run_map(&env, &split.splits[0], (uint32_t)index, (uint32_t)peer.attempt, NULL, &cache->mb, &res);
        if (rc) e = res.err;
        if (rc == 0 && inline_max) {
            char *path = task_map_output_path(&env, (uint32_t)index);
            inline_out = taskproc_inline_output(path, inline_max);
            free(path);
        }
    } else if (map_dir) {
        uint64_t nmaps = 0;
        if ((rc = wire_get_u64(a, "nmaps", 1000000, &nmaps, 1, &e))) goto done;
        char **paths = xcalloc(nmaps ? nmaps : 1, sizeof *paths);
        for (uint64_t m = 0; m < nmaps; m++) paths[m] = xasprintf("%s/map-%05u.out", map_dir, (unsigned)m);
        task_segment *segs = NULL;
        char *out_tmp = output_attempt_dir(cache->spec.out, jobid, (uint32_t)peer.attempt);
        rc = task_local_segments((const char *const *)paths, nmaps, (uint32_t)index, &segs, &e);
        if (rc == 0) rc = taskproc_attempt_dir(out_tmp, &e);
        if (rc == 0) {
            env.out_tmp = out_tmp;
            rc = task_run_reduce(&env, (uint32_t)index, (uint32_t)peer.attempt, segs, nmaps, &res);
            if (rc) e = res.err;
        }
        task_segments_free(segs, nmaps);
        for (uint64_t m = 0; m < nmaps; m++) free(paths[m]);
        free(paths);
        free(out_tmp);
    } else {
        wire_map_loc *locs = NULL;
        size_t n = 0;
        if (!peer.token || !peer.coordinator || !peer.worker || !peer.incarnation) {
            rc = err_set(&e, -EINVAL, "a reduce assignment needs map_dir, or token, coordinator, worker and incarnation");
            goto done;
        }
        if ((rc = wire_maps_decode(json_object_get(a, "maps"), &locs, &n, &e))) goto done;
        char *dir = xasprintf("%s/reduce-%05llu.a%llu", work_dir, (unsigned long long)index,
                              (unsigned long long)peer.attempt);
        char *out_tmp = output_attempt_dir(cache->spec.out, jobid, (uint32_t)peer.attempt);
        task_segment *segs = xcalloc(n ? n : 1, sizeof *segs);
        rc = fs_mkdirs(dir, &e);
        if (rc == 0) rc = taskproc_attempt_dir(out_tmp, &e);
        uint64_t records = 0;
        if (rc == 0)
            rc = taskproc_fetch(&peer, locs, n, (uint32_t)index, dir, segs, &records, live, &pace, &failed_map, &e);
        log_debug("fetched %zu segments after %.1f ms", n, (double)(time_mono_ns() - t0) / 1e6);
        if (rc == 0) {
            env.out_tmp = out_tmp;
            env.reduce_records = records;
            rc = task_run_reduce(&env, (uint32_t)index, (uint32_t)peer.attempt, segs, n, &res);
            if (rc) e = res.err;
        }
        task_segments_free(segs, n);
        free(locs);
        fs_rmtree(dir);
        free(dir);
        free(out_tmp);
    }
done:
    task_pace_check(&pace, 1);
    if (pace.slept_ns)
        log_debug("chaos-slow: slept %.1f ms of the attempt's %.1f ms", (double)pace.slept_ns / 1e6,
                  (double)(time_mono_ns() - t0) / 1e6);
    log_debug("attempt done after %.1f ms", (double)(time_mono_ns() - t0) / 1e6);
    if (rc && !e.msg[0]) err_set(&e, rc, "task failed (code %d)", rc);
    json_t *r = json_pack("{s:b, s:s, s:b, s:o}", "ok", rc == 0, "error", rc ? e.msg : "", "fatal", res.fatal,
                          "counters", wire_counters_encode(&res.counters));
    if (failed_map >= 0) json_object_set_new(r, "fetch_failed_map", json_integer(failed_map));
    if (inline_out && rc == 0) json_object_set_new(r, "output", inline_out);
    else json_decref(inline_out);
    if (res.skip_note[0]) json_object_set_new(r, "skip_example", json_string(res.skip_note));
    task_result_free(&res);
    input_set_free(&split);
    log_set_context(NULL);
    return r;
}

/* ---- Describing a job -------------------------------------------------------------------- */

/* {"phase":"describe","spec":{...}}: loads the job and runs its setup(), as the coordinator
 * must before it accepts a job, but here, where a user job that crashes takes only this
 * process down. Answers {"ok","error","name","flags","columns","required":[{"name","hint"}]}. */
static json_t *taskproc_describe(const json_t *a)
{
    struct err e = {0};
    jobspec spec;
    const tally_job *job = NULL;
    void *handle = NULL, *state = NULL;
    ctx_fields req = {0};
    int rc = wire_jobspec_decode(json_object_get(a, "spec"), &spec, &e);
    if (rc == 0) rc = ctx_job_open(&spec, &job, &handle, &state, &req, &e);
    json_t *r;
    if (rc) {
        r = json_pack("{s:b, s:s}", "ok", 0, "error", e.msg);
    } else {
        const char *cols = job->columns ? job->columns(state) : NULL;
        json_t *fields = json_array();
        for (size_t i = 0; i < req.n; i++)
            json_array_append_new(fields, json_pack("{s:s, s:s?}", "name", req.names[i], "hint", req.hints[i]));
        r = json_pack("{s:b, s:s, s:I, s:s?, s:o}", "ok", 1, "name", job->name ? job->name : "", "flags",
                      (json_int_t)job->flags, "columns", cols, "required", fields);
        ctx_job_close(job, handle, state);
    }
    ctx_fields_free(&req);
    jobspec_free(&spec);
    return r;
}

/* ---- The executor's loop ----------------------------------------------------------------- */

static atomic_int taskproc_busy; /* an attempt is running */

/* Ends the process when the worker goes away while an attempt runs: the worker holds the only
 * write end of fd 3, so a hang-up there means it has exited, been killed or told us to stop.
 * When idle, the main loop sees the end of input itself and exits normally (so that leak
 * checkers get to run). */
static void *taskproc_watchdog(void *arg)
{
    (void)arg;
    for (;;) {
        struct pollfd pf = {.fd = TASKPROC_IN, .events = 0};
        if (poll(&pf, 1, -1) > 0 && (pf.revents & (POLLHUP | POLLERR | POLLNVAL))) {
            if (atomic_load(&taskproc_busy)) _exit(0);
            return NULL;
        }
    }
}

int taskproc_serve(const char *live_path)
{
    log_set_process("executor");
    /* A closed stderr (tally run ... 2>&1 | head) or a worker gone from the result pipe is an
     * error to handle, never a reason to die mid-attempt. */
    signal(SIGPIPE, SIG_IGN);
    /* Nothing but the two pipes and stdio is ours: whatever else the worker had open (its
     * connections) goes, and processes a job starts must not hold the pipes, or the worker
     * would wait on them for a result after this process died. */
    close_range(TASKPROC_OUT + 1, ~0u, 0);
    if (fcntl(TASKPROC_IN, F_SETFD, FD_CLOEXEC) != 0 || fcntl(TASKPROC_OUT, F_SETFD, FD_CLOEXEC) != 0) {
        fprintf(stderr, "tally __executor: fds 3 and 4 must be the worker's pipes\n");
        return EXITCODE_FAILED;
    }
    ifile_fault_init();
    task_live *live = NULL;
    int fd = open(live_path, O_RDWR | O_CLOEXEC);
    if (fd >= 0) {
        live = mmap(NULL, sizeof *live, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (live == MAP_FAILED) live = NULL;
        close(fd);
    }
    if (!live) {
        fprintf(stderr, "tally __executor: %s: cannot map: %s\n", live_path, strerror(errno));
        return EXITCODE_FAILED;
    }
    if (util_thread_detached(taskproc_watchdog, NULL) != 0) {
        fprintf(stderr, "tally __executor: cannot start its watchdog thread\n");
        return EXITCODE_FAILED;
    }
    taskproc_cache cache;
    memset(&cache, 0, sizeof cache);
    int rc = 0;
    for (;;) {
        struct pollfd pf = {.fd = TASKPROC_IN, .events = POLLIN};
        int k = poll(&pf, 1, TASKPROC_IDLE_MS);
        if (k < 0 && errno == EINTR) continue;
        if (k == 0) {
            /* Idle for a while: give the memory back. */
            taskproc_cache_drop(&cache);
            malloc_trim(0);
            continue;
        }
        char *msg = NULL;
        size_t len = 0;
        k = taskproc_frame_read(TASKPROC_IN, &msg, &len);
        if (k <= 0) {
            rc = k < 0 ? EXITCODE_FAILED : 0;
            break;
        }
        struct err e = {0};
        json_t *a = NULL, *r;
        if (wire_parse_object(msg, len, &a, &e) == 0) {
            atomic_store(&taskproc_busy, 1);
            const char *phase = json_string_value(json_object_get(a, "phase"));
            r = phase && strcmp(phase, "describe") == 0 ? taskproc_describe(a) : taskproc_run(&cache, a, live);
            atomic_store(&taskproc_busy, 0);
        } else {
            r = json_pack("{s:b, s:s, s:b}", "ok", 0, "error", e.msg, "fatal", 0);
        }
        free(msg);
        json_decref(a);
        char *s = wire_dump(r);
        json_decref(r);
        k = taskproc_frame_write(TASKPROC_OUT, s, strlen(s));
        free(s);
        if (k) {
            rc = EXITCODE_FAILED;
            break;
        }
    }
    taskproc_cache_drop(&cache);
    munmap(live, sizeof *live);
    return rc;
}
