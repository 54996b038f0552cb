/* taskproc.c - one attempt in a child process of a worker (also `tally __task FILE RESULT`).
 *
 * A worker never runs job code in its own process: a user job that crashes (SIGSEGV in a .so)
 * or leaks must not take the worker, its shuffle server and its other attempts down with it.
 * The worker forks, the child runs taskproc_run() on the coordinator's assignment and writes a
 * result file; a child killed by a signal leaves none and the worker reports the signal. The
 * worker forks without exec because exec'ing tally (36 shared libraries, libcurl's included)
 * cost about 60 ms per task, most of a small job's latency budget.
 *
 * Assignment: {"job","attempt","phase":"map"|"reduce","index","spec":{...},"work_dir",
 *              "split":{...} (map) | "maps":[{"index","address"}] (reduce), "token"}
 * Result:     {"ok":bool,"error","fatal":bool,"counters":{...},"fetch_failed_map":N}
 */
#include "cluster/taskproc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cluster/wire.h"
#include "common/fsutil.h"
#include "common/log.h"
#include "data/ifile.h"
#include "exec/ctx.h"
#include "exec/task.h"
#include "net/http.h"

/* Downloads partition `part` of each map output into dir; fills segs. On a fetch failure sets
 * *failed_map to the map's index. */
static int taskproc_fetch(const json_t *maps, const char *job, uint32_t part, const char *token,
                          const char *dir, task_segment *segs, int64_t *failed_map, struct err *e)
{
    size_t i;
    json_t *m;
    json_array_foreach(maps, i, m) {
        uint64_t index = 0;
        const char *addr;
        int rc;
        if ((rc = wire_get_u64(m, "index", 1000000, &index, 1, e)) || (rc = wire_get_str(m, "address", &addr, 1, e)))
            return rc;
        char path[256];
        snprintf(path, sizeof path, "/v1/shuffle?job=%s&map=%llu&part=%u&meta=1", job,
                 (unsigned long long)index, part);
        int status = 0;
        char *body = NULL;
        /* Short timeouts: a map's worker that stopped answering is declared dead by the
         * coordinator within its worker timeout, and this attempt should fail as fast. */
        rc = http_call(addr, "GET", path, token, NULL, 3000, &status, &body, e);
        json_t *meta = NULL;
        uint64_t length = 0, crc = 0;
        if (rc == 0 && status != 200) rc = err_set(e, -EIO, "shuffle index of map %llu from %s: HTTP %d: %s",
                                                   (unsigned long long)index, addr, status, body ? body : "");
        if (rc == 0) rc = wire_parse_object(body, strlen(body), &meta, e);
        if (rc == 0) rc = wire_get_u64(meta, "length", UINT64_MAX >> 1, &length, 1, e);
        if (rc == 0) rc = wire_get_u64(meta, "crc", UINT32_MAX, &crc, 1, e);
        json_decref(meta);
        free(body);
        char *dest = xasprintf("%s/map-%05llu.seg", dir, (unsigned long long)index);
        if (rc == 0 && length > 0) {
            snprintf(path, sizeof path, "/v1/shuffle?job=%s&map=%llu&part=%u", job, (unsigned long long)index, part);
            rc = http_download(addr, path, token, dest, (long)(5000 + length / 20000), &status, e);
        } else if (rc == 0) {
            FILE *f = fopen(dest, "w");
            if (f) fclose(f);
        }
        if (rc) {
            *failed_map = (int64_t)index;
            err_prefix(e, "fetching map %llu output from %s: ", (unsigned long long)index, addr);
            free(dest);
            return rc;
        }
        segs[i] = (task_segment){.path = dest, .offset = 0, .length = length, .crc = (uint32_t)crc};
    }
    return 0;
}

static int taskproc_write_result(const char *path, int ok, const char *error, int fatal,
                                 const counters *c, int64_t failed_map)
{
    json_t *r = json_pack("{s:b, s:s, s:b, s:o}", "ok", ok, "error", error ? error : "", "fatal", fatal,
                          "counters", wire_counters_encode(c));
    if (failed_map >= 0) json_object_set_new(r, "fetch_failed_map", json_integer(failed_map));
    char *s = wire_dump(r);
    json_decref(r);
    int rc = fs_write_atomic(path, s, strlen(s), NULL);
    free(s);
    return rc;
}

int taskproc_main(int argc, char **argv)
{
    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: tally __task ASSIGNMENT RESULT [WHERE] (internal)\n");
        return CLI_USAGE;
    }
    json_error_t je;
    json_t *a = json_load_file(argv[1], 0, &je);
    if (!a) {
        fprintf(stderr, "tally __task: %s: %s\n", argv[1], je.text);
        return CLI_FAILED;
    }
    task_where *where = NULL;
    int fd = argc == 4 ? open(argv[3], O_RDWR | O_CLOEXEC) : -1;
    if (fd >= 0) {
        where = mmap(NULL, sizeof *where, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
        if (where == MAP_FAILED) where = NULL;
        close(fd);
    }
    int rc = taskproc_run(a, argv[2], where);
    if (where) munmap(where, sizeof *where);
    json_decref(a);
    return rc;
}

int taskproc_run(json_t *a, const char *result_path, task_where *where)
{
    uint64_t t0 = time_mono_ns();
    ifile_fault_init();
    struct err e = {0};
    jobspec spec;
    jobspec_init(&spec);
    input_set split = {0};
    const tally_job *job = NULL;
    void *handle = NULL, *state = NULL;
    task_result res;
    task_result_init(&res);
    int64_t failed_map = -1;
    int rc = 0;
    const char *jobid, *phase, *work_dir, *token;
    uint64_t attempt = 0, index = 0;
    if ((rc = wire_get_str(a, "job", &jobid, 1, &e)) || (rc = wire_get_str(a, "phase", &phase, 1, &e)) ||
        (rc = wire_get_str(a, "work_dir", &work_dir, 1, &e)) || (rc = wire_get_str(a, "token", &token, 1, &e)) ||
        (rc = wire_get_u64(a, "attempt", UINT32_MAX, &attempt, 1, &e)) ||
        (rc = wire_get_u64(a, "index", 1000000, &index, 1, &e)))
        goto done;
    jobspec_free(&spec);
    if ((rc = wire_jobspec_decode(json_object_get(a, "spec"), &spec, &e))) goto done;
    char logctx[128];
    snprintf(logctx, sizeof logctx, "job=%s task=%c%05llu attempt=a%llu", jobid, phase[0],
             (unsigned long long)index, (unsigned long long)attempt);
    log_set_context(logctx);
    if ((rc = ctx_job_open(&spec, &job, &handle, &state, &e))) {
        res.fatal = 1;
        goto done;
    }
    log_debug("job opened after %.1f ms", (double)(time_mono_ns() - t0) / 1e6);
    task_env env = {.spec = &spec, .job = job, .state = state, .work_dir = work_dir, .where = where};
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
        rc = task_run_map(&env, &split.splits[0], (uint32_t)index, (uint32_t)attempt, NULL, NULL, &res);
        if (rc) e = res.err;
    } else {
        json_t *maps = json_object_get(a, "maps");
        if (!json_is_array(maps)) {
            rc = err_set(&e, -EINVAL, "reduce assignment lacks 'maps'");
            goto done;
        }
        char *dir = xasprintf("%s/reduce-%05llu.a%llu", work_dir, (unsigned long long)index,
                              (unsigned long long)attempt);
        char *out_tmp = xasprintf("%s/_temporary/a%llu", spec.out, (unsigned long long)attempt);
        size_t n = json_array_size(maps);
        task_segment *segs = xcalloc(n ? n : 1, sizeof *segs);
        rc = fs_mkdirs(dir, &e);
        /* Only the attempt's own directory: if OUT/_temporary is gone the job is over, and a
         * late attempt must not bring its output directory back. */
        if (rc == 0 && mkdir(out_tmp, 0755) != 0 && errno != EEXIST)
            rc = err_set(&e, -errno, "%s: %s", out_tmp, strerror(errno));
        if (rc == 0) rc = taskproc_fetch(maps, jobid, (uint32_t)index, token, dir, segs, &failed_map, &e);
        if (rc == 0) {
            env.out_tmp = out_tmp;
            rc = task_run_reduce(&env, (uint32_t)index, (uint32_t)attempt, segs, n, &res);
            if (rc) e = res.err;
        }
        task_segments_free(segs, n);
        fs_rmtree(dir);
        free(dir);
        free(out_tmp);
    }
done:
    log_debug("task done after %.1f ms", (double)(time_mono_ns() - t0) / 1e6);
    if (rc && !e.msg[0]) err_set(&e, rc, "task failed (code %d)", rc);
    taskproc_write_result(result_path, rc == 0, rc ? e.msg : NULL, res.fatal, &res.counters, failed_map);
    task_result_free(&res);
    input_set_free(&split);
    if (job) ctx_job_close(job, handle, state);
    jobspec_free(&spec);
    return rc == 0 ? 0 : CLI_FAILED;
}
