/* zkstate.c - the ZooKeeper state backend and the leader election of the coordinators.
 *
 * Layout under BASE = CHROOT/tally (CHROOT from --zookeeper HOST:PORT,.../CHROOT):
 *   BASE/election/c-NNNNNNNNNN  ephemeral sequential, one per coordinator; data: its address.
 *                               The lowest is the leader; each other candidate watches only
 *                               the one just below it (herd-free: a death wakes one candidate)
 *   BASE/leader                 ephemeral, the leader's {"address","epoch"}: what clients read
 *   BASE/epoch                  its version is the epoch; a new leader bumps it, and every
 *                               write of a leader is a multi() that checks it first, so a
 *                               deposed leader's writes fail (ZBADVERSION) once a newer exists
 *   BASE/jobs/JOB/r-NNNNNNNNNN  the job's records in order (persistent sequential); data: 'E'
 *                               + JSON, or 'C' + a chunk continued in the next node (records
 *                               larger than a znode: ZooKeeper's 1 MB limit)
 *   BASE/workers/r-NNNNNNNNNN   worker records
 *
 * Session: a leader whose session expires, or that has been disconnected for 2/3 of the
 * session timeout (others may elect a new leader by then), is no longer healthy and steps
 * down before another can be elected; a follower that loses ZooKeeper stays a follower. */
#include "cluster/state.h"

#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define THREADED /* the synchronous API of libzookeeper_mt */
#include <zookeeper/zookeeper.h>

#include "common/log.h"

#define ZK_CHUNK 900000          /* bytes of record per znode (the limit is 1 MB with overhead) */
#define ZK_MULTI_BYTES 900000    /* bytes per multi() request */
#define ZK_MULTI_OPS 500
#define ZK_PATH 512

typedef struct zk_pending {
    char *job;                   /* NULL: a worker record */
    char *data;
    size_t len;
} zk_pending;

typedef struct zkstate {
    state base;
    zhandle_t *zh;
    char hosts[1024], root[200]; /* root: CHROOT/tally */
    char advertise[160];
    char me[ZK_PATH];            /* our election node's name (c-NNNNNNNNNN) */
    int epoch_version;
    uint64_t session_ms;
    _Atomic int connected, expired, recheck;
    _Atomic uint64_t disconnected_since;
    zk_pending *pending;
    size_t npending, cap;
    char **jobs;                 /* jobs whose node exists */
    size_t njobs;
} zkstate;

static void zk_watcher(zhandle_t *zh, int type, int st, const char *path, void *ctx)
{
    (void)zh;
    (void)path;
    zkstate *z = ctx;
    if (!z) return;
    if (type == ZOO_SESSION_EVENT) {
        if (st == ZOO_CONNECTED_STATE) {
            atomic_store(&z->connected, 1);
        } else if (st == ZOO_EXPIRED_SESSION_STATE) {
            atomic_store(&z->expired, 1);
            atomic_store(&z->connected, 0);
        } else {
            if (atomic_load(&z->connected)) atomic_store(&z->disconnected_since, time_mono_ms());
            atomic_store(&z->connected, 0);
        }
    }
    atomic_store(&z->recheck, 1);
}

/* A watch on the predecessor: any event on it means look again. */
static void zk_pred_watcher(zhandle_t *zh, int type, int st, const char *path, void *ctx)
{
    (void)zh;
    (void)type;
    (void)st;
    (void)path;
    zkstate *z = ctx;
    atomic_store(&z->recheck, 1);
}

/* Splits "zk://H:P,H:P/CHROOT" or "H:P,H:P/CHROOT" into hosts and chroot ("" for none). */
int state_zk_parse(const char *spec, char *hosts, size_t hcap, char *chroot, size_t ccap, struct err *e)
{
    if (strncmp(spec, "zk://", 5) == 0) spec += 5;
    size_t n = strcspn(spec, "/");
    if (n == 0 || n >= hcap) return err_set(e, -EINVAL, "ZooKeeper address '%s': expected HOST:PORT[,HOST:PORT...][/CHROOT]", spec);
    snprintf(hosts, hcap, "%.*s", (int)n, spec);
    const char *c = spec + n;
    while (c[0] == '/' && c[1] == '/') c++;
    size_t cl = strlen(c);
    while (cl > 0 && c[cl - 1] == '/') cl--;
    if (cl >= ccap) return err_set(e, -EINVAL, "ZooKeeper chroot too long");
    snprintf(chroot, ccap, "%.*s", (int)cl, c);
    return 0;
}

static int zk_connect(zkstate *z, struct err *e)
{
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    z->zh = zookeeper_init(z->hosts, zk_watcher, (int)z->session_ms, NULL, z, 0);
    if (!z->zh) return err_set(e, -errno ? -errno : -EIO, "ZooKeeper %s: cannot start a session: %s", z->hosts, strerror(errno));
    uint64_t deadline = time_mono_ms() + (z->session_ms > 5000 ? z->session_ms : 5000);
    while (!atomic_load(&z->connected) && time_mono_ms() < deadline) usleep(5000);
    if (!atomic_load(&z->connected))
        return err_set(e, -ETIMEDOUT, "ZooKeeper %s: no server answered within %" PRIu64 " ms", z->hosts,
                       deadline > 0 ? (z->session_ms > 5000 ? z->session_ms : 5000) : 0);
    return 0;
}

/* Creates path and its parents (persistent, empty) where missing. */
static int zk_mkdirs(zkstate *z, const char *path, struct err *e)
{
    char p[ZK_PATH];
    snprintf(p, sizeof p, "%s", path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        int rc = zoo_create(z->zh, p, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
        if (rc != ZOK && rc != ZNODEEXISTS) return err_set(e, -EIO, "ZooKeeper: creating %s: %s", p, zerror(rc));
        *s = c;
        if (c == '\0') break;
    }
    return 0;
}

static int zk_cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Job ids are "jSECONDS-N" with N counting up across leaders: order by N. */
static uint64_t zk_job_seq(const char *id)
{
    const char *d = strrchr(id, '-');
    return d ? strtoull(d + 1, NULL, 10) : 0;
}

static int zk_cmp_jobs(const void *a, const void *b)
{
    uint64_t x = zk_job_seq(*(char *const *)a), y = zk_job_seq(*(char *const *)b);
    return x < y ? -1 : x > y ? 1 : strcmp(*(char *const *)a, *(char *const *)b);
}

static int zk_children(zkstate *z, const char *path, char ***out, size_t *n, int (*cmp)(const void *, const void *),
                       struct err *e)
{
    struct String_vector v = {0};
    int rc = zoo_get_children(z->zh, path, 0, &v);
    *out = NULL;
    *n = 0;
    if (rc == ZNONODE) return 0;
    if (rc != ZOK) return err_set(e, -EIO, "ZooKeeper: listing %s: %s", path, zerror(rc));
    char **names = xcalloc((size_t)v.count + 1, sizeof *names);
    for (int i = 0; i < v.count; i++) names[i] = xstrdup(v.data[i]);
    deallocate_String_vector(&v);
    qsort(names, (size_t)v.count, sizeof *names, cmp);
    *out = names;
    *n = (size_t)v.count;
    return 0;
}

static void zk_free_names(char **names, size_t n)
{
    for (size_t i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Replays the records under dir (r-* in order), joining chunks. */
static int zk_load_dir(zkstate *z, const char *dir, state_replay_fn fn, void *arg, char *buf, struct err *e)
{
    char **names;
    size_t n;
    int rc = zk_children(z, dir, &names, &n, zk_cmp_names, e);
    struct buf rec = {0};
    char where[ZK_PATH + 32], first[ZK_PATH + 32] = "";
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (strncmp(names[i], "r-", 2) != 0) {
            rc = err_set(e, -EBADMSG, "znode %s/%s: unexpected (only r-N records belong there)", dir, names[i]);
            break;
        }
        snprintf(where, sizeof where, "znode %s/%s", dir, names[i]);
        int len = 1 << 20;
        int zr = zoo_get(z->zh, where + 6, 0, buf, &len, NULL);
        if (zr != ZOK) {
            rc = err_set(e, -EIO, "ZooKeeper: reading %s: %s", where + 6, zerror(zr));
            break;
        }
        if (len < 1 || (buf[0] != 'E' && buf[0] != 'C')) {
            rc = err_set(e, -EBADMSG, "%s: unexpected contents (not a tally record: expected 'E' or 'C' and JSON)", where);
            break;
        }
        if (rec.len == 0) snprintf(first, sizeof first, "%s", where);
        buf_append(&rec, buf + 1, (size_t)len - 1);
        if (buf[0] == 'C') continue;
        json_error_t je;
        json_t *j = json_loadb(rec.data ? rec.data : "", rec.len, JSON_REJECT_DUPLICATES, &je);
        if (!j || !json_is_object(j)) rc = err_set(e, -EBADMSG, "%s: the record is not a JSON object%s%s", first,
                                                   j ? "" : ": ", j ? "" : je.text);
        else rc = fn(arg, j, first, e);
        json_decref(j);
        rec.len = 0;
    }
    if (rc == 0 && rec.len) rc = err_set(e, -EBADMSG, "%s: a record chunk without its end", first);
    buf_free(&rec);
    zk_free_names(names, n);
    return rc;
}

static void zk_note_job(zkstate *z, const char *job)
{
    z->jobs = xrealloc(z->jobs, (z->njobs + 1) * sizeof *z->jobs);
    z->jobs[z->njobs++] = xstrdup(job);
}

static int zk_has_job(const zkstate *z, const char *job)
{
    for (size_t i = 0; i < z->njobs; i++)
        if (strcmp(z->jobs[i], job) == 0) return 1;
    return 0;
}

static int zk_load(state *s, state_replay_fn fn, void *arg, struct err *e)
{
    zkstate *z = (zkstate *)s;
    char *buf = xmalloc(1 << 20);
    char path[ZK_PATH];
    snprintf(path, sizeof path, "%s/workers", z->root);
    int rc = zk_load_dir(z, path, fn, arg, buf, e);
    char **jobs = NULL;
    size_t n = 0;
    snprintf(path, sizeof path, "%s/jobs", z->root);
    if (rc == 0) rc = zk_children(z, path, &jobs, &n, zk_cmp_jobs, e);
    for (size_t i = 0; i < n && rc == 0; i++) {
        char dir[ZK_PATH];
        snprintf(dir, sizeof dir, "%s/jobs/%s", z->root, jobs[i]);
        zk_note_job(z, jobs[i]);
        rc = zk_load_dir(z, dir, fn, arg, buf, e);
    }
    zk_free_names(jobs, n);
    free(buf);
    if (rc == 0) log_info("ZooKeeper %s%s: state of %zu jobs loaded", z->hosts, z->root, n);
    return rc;
}

static int zk_append(state *s, const char *job, const char *line, size_t len)
{
    zkstate *z = (zkstate *)s;
    /* All chunks of one record go in one multi(): more would be written in part. */
    if (len > (size_t)(ZK_MULTI_OPS - 2) * ZK_CHUNK) return -EFBIG;
    if (z->npending == z->cap) {
        z->cap = z->cap ? z->cap * 2 : 64;
        z->pending = xrealloc(z->pending, z->cap * sizeof *z->pending);
    }
    z->pending[z->npending++] = (zk_pending){.job = job ? xstrdup(job) : NULL, .data = xstrndup(line, len), .len = len};
    return 0;
}

typedef struct zk_batch {
    zoo_op_t ops[ZK_MULTI_OPS + 1];
    char *data[ZK_MULTI_OPS + 1], *path[ZK_MULTI_OPS + 1], *made[ZK_MULTI_OPS + 1];
    int n;
    size_t bytes;
} zk_batch;

static void zk_batch_free(zk_batch *b)
{
    for (int i = 1; i < b->n; i++) {
        free(b->data[i]);
        free(b->path[i]);
        free(b->made[i]);
    }
    b->n = 1;
    b->bytes = 0;
}

/* Adds the creates of one record (its chunks) to the batch. */
static void zk_batch_record(zk_batch *b, zkstate *z, const zk_pending *p)
{
    size_t off = 0;
    do {
        size_t n = p->len - off > ZK_CHUNK ? ZK_CHUNK : p->len - off;
        char *data = xmalloc(n + 1);
        data[0] = off + n < p->len ? 'C' : 'E';
        memcpy(data + 1, p->data + off, n);
        int i = b->n++;
        b->data[i] = data;
        b->path[i] = p->job ? xasprintf("%s/jobs/%s/r-", z->root, p->job) : xasprintf("%s/workers/r-", z->root);
        b->made[i] = xmalloc(ZK_PATH);
        zoo_create_op_init(&b->ops[i], b->path[i], data, (int)n + 1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT_SEQUENTIAL,
                           b->made[i], ZK_PATH);
        b->bytes += n + 1 + strlen(b->path[i]);
        off += n;
    } while (off < p->len && b->n < ZK_MULTI_OPS);
}

static size_t zk_chunks(const zk_pending *p)
{
    return p->len / ZK_CHUNK + 1;
}

/* Writes the pending records in order, as few multi() requests as fit, each one fenced by
 * the epoch check (ops[0]). Records written are dropped from the pending list even if a later
 * request fails, so that a retry never writes one twice. */
static int zk_sync(state *s, struct err *e)
{
    zkstate *z = (zkstate *)s;
    zk_batch *b = xcalloc(1, sizeof *b);
    char epoch[ZK_PATH];
    snprintf(epoch, sizeof epoch, "%s/epoch", z->root);
    zoo_check_op_init(&b->ops[0], epoch, z->epoch_version);
    b->n = 1;
    int rc = 0;
    size_t i = 0;
    while (i < z->npending && rc == 0) {
        size_t j = i;
        while (j < z->npending) {
            zk_pending *p = &z->pending[j];
            if (j > i && (b->n + (int)zk_chunks(p) > ZK_MULTI_OPS || b->bytes + p->len > ZK_MULTI_BYTES)) break;
            if (p->job && !zk_has_job(z, p->job)) {
                /* The job's node first (empty, so harmless if a deposed leader made it). */
                char *jp = xasprintf("%s/jobs/%s", z->root, p->job);
                int zr = zoo_create(z->zh, jp, NULL, -1, &ZOO_OPEN_ACL_UNSAFE, ZOO_PERSISTENT, NULL, 0);
                free(jp);
                if (zr != ZOK && zr != ZNODEEXISTS) {
                    rc = err_set(e, -EIO, "ZooKeeper: creating the node of job %s: %s", p->job, zerror(zr));
                    break;
                }
                zk_note_job(z, p->job);
            }
            zk_batch_record(b, z, p);
            j++;
        }
        if (rc) break;
        zoo_op_result_t res[ZK_MULTI_OPS + 1];
        int zr = zoo_multi(z->zh, b->n, b->ops, res);
        if (zr != ZOK) {
            if (res[0].err == ZBADVERSION || zr == ZSESSIONEXPIRED || zr == ZINVALIDSTATE) {
                z->base.stale = 1;
                rc = err_set(e, -ESTALE, "ZooKeeper: %s: a newer coordinator epoch exists, or our session ended",
                             zerror(res[0].err != ZOK ? res[0].err : zr));
            } else {
                rc = err_set(e, -EIO, "ZooKeeper: writing the job state: %s", zerror(zr));
            }
        }
        zk_batch_free(b);
        if (rc) break;
        for (; i < j; i++) {
            free(z->pending[i].job);
            free(z->pending[i].data);
        }
    }
    memmove(z->pending, z->pending + i, (z->npending - i) * sizeof *z->pending);
    z->npending -= i;
    free(b);
    return rc;
}

static void zk_forget(state *s, const char *job)
{
    zkstate *z = (zkstate *)s;
    char dir[ZK_PATH];
    snprintf(dir, sizeof dir, "%s/jobs/%s", z->root, job);
    char **names;
    size_t n;
    struct err e = {0};
    if (zk_children(z, dir, &names, &n, zk_cmp_names, &e) != 0) return;
    for (size_t i = 0; i < n; i++) {
        char p[ZK_PATH * 2];
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        zoo_delete(z->zh, p, -1);
    }
    zoo_delete(z->zh, dir, -1);
    zk_free_names(names, n);
    for (size_t i = 0; i < z->njobs; i++) {
        if (strcmp(z->jobs[i], job) == 0) {
            free(z->jobs[i]);
            z->jobs[i] = z->jobs[--z->njobs];
            break;
        }
    }
}

static void zk_close(state *s)
{
    zkstate *z = (zkstate *)s;
    if (z->zh) zookeeper_close(z->zh);
    for (size_t i = 0; i < z->npending; i++) {
        free(z->pending[i].job);
        free(z->pending[i].data);
    }
    free(z->pending);
    for (size_t i = 0; i < z->njobs; i++) free(z->jobs[i]);
    free(z->jobs);
    free(z);
}

static const state_ops zk_ops = {"zookeeper", zk_load, zk_append, zk_sync, zk_forget, zk_close};

int state_open_zk(state **out, const char *spec, const char *advertise, uint64_t session_ms, struct err *e)
{
    *out = NULL;
    zkstate *z = xcalloc(1, sizeof *z);
    z->base.ops = &zk_ops;
    z->session_ms = session_ms;
    snprintf(z->advertise, sizeof z->advertise, "%s", advertise);
    char chroot[ZK_PATH];
    int rc = state_zk_parse(spec, z->hosts, sizeof z->hosts, chroot, sizeof z->root - 8, e);
    snprintf(z->root, sizeof z->root, "%.190s/tally", chroot);
    if (rc == 0) rc = zk_connect(z, e);
    char p[ZK_PATH];
    static const char *dirs[] = {"election", "jobs", "workers", "epoch"};
    for (size_t i = 0; rc == 0 && i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", z->root, dirs[i]);
        rc = zk_mkdirs(z, p, e);
    }
    if (rc == 0) {
        char path[ZK_PATH], made[ZK_PATH];
        snprintf(path, sizeof path, "%s/election/c-", z->root);
        int zr = zoo_create(z->zh, path, advertise, (int)strlen(advertise), &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL_SEQUENTIAL,
                            made, sizeof made);
        if (zr != ZOK) rc = err_set(e, -EIO, "ZooKeeper: joining the election: %s", zerror(zr));
        else snprintf(z->me, sizeof z->me, "%s", strrchr(made, '/') + 1);
    }
    if (rc) {
        zk_close(&z->base);
        return rc;
    }
    atomic_store(&z->recheck, 1);
    log_info("ZooKeeper %s%s: candidate %s (session timeout %d ms)", z->hosts, z->root, z->me, zoo_recv_timeout(z->zh));
    *out = &z->base;
    return 0;
}

int state_zk_campaign(state *s, int *leader, struct err *e)
{
    zkstate *z = (zkstate *)s;
    *leader = 0;
    if (!atomic_exchange(&z->recheck, 0)) return 0;
    char path[ZK_PATH];
    snprintf(path, sizeof path, "%s/election", z->root);
    char **names;
    size_t n;
    int rc = zk_children(z, path, &names, &n, zk_cmp_names, e);
    if (rc) {
        atomic_store(&z->recheck, 1);
        return rc;
    }
    size_t mine = n;
    for (size_t i = 0; i < n; i++)
        if (strcmp(names[i], z->me) == 0) mine = i;
    if (mine == n) {
        rc = err_set(e, -ESTALE, "our election node %s is gone (session expired)", z->me);
    } else if (mine > 0) {
        /* Watch only the candidate just before us. */
        char pred[ZK_PATH * 2];
        snprintf(pred, sizeof pred, "%s/%s", path, names[mine - 1]);
        struct Stat st;
        int zr = zoo_wexists(z->zh, pred, zk_pred_watcher, z, &st);
        if (zr == ZNONODE) atomic_store(&z->recheck, 1); /* gone already: look again */
        else if (zr != ZOK) atomic_store(&z->recheck, 1);
    } else {
        /* We lead: a new epoch, then the address for the clients. */
        char ep[ZK_PATH];
        snprintf(ep, sizeof ep, "%s/epoch", z->root);
        struct Stat st;
        int zr = ZOK;
        for (int tries = 0; tries < 10; tries++) {
            char buf[64];
            int len = sizeof buf;
            zr = zoo_get(z->zh, ep, 0, buf, &len, &st);
            if (zr != ZOK) break;
            zr = zoo_set2(z->zh, ep, z->advertise, (int)strlen(z->advertise), st.version, &st);
            if (zr != ZBADVERSION) break;
        }
        if (zr != ZOK) {
            rc = err_set(e, -EIO, "ZooKeeper: starting a new epoch: %s", zerror(zr));
            atomic_store(&z->recheck, 1);
        } else {
            z->epoch_version = st.version;
            z->base.epoch = (uint64_t)st.version;
            char lp[ZK_PATH], data[256];
            snprintf(lp, sizeof lp, "%s/leader", z->root);
            snprintf(data, sizeof data, "{\"address\":\"%s\",\"epoch\":%d}", z->advertise, st.version);
            zoo_delete(z->zh, lp, -1);
            zr = zoo_create(z->zh, lp, data, (int)strlen(data), &ZOO_OPEN_ACL_UNSAFE, ZOO_EPHEMERAL, NULL, 0);
            if (zr != ZOK) log_warn("ZooKeeper: publishing the leader address: %s", zerror(zr));
            *leader = 1;
        }
    }
    zk_free_names(names, n);
    return rc;
}

int state_zk_healthy(state *s)
{
    zkstate *z = (zkstate *)s;
    if (atomic_load(&z->expired)) return -ESTALE;
    if (!atomic_load(&z->connected) && time_mono_ms() - atomic_load(&z->disconnected_since) > z->session_ms * 2 / 3)
        return -ENOTCONN;
    return 0;
}

int state_zk_leader(state *s, char *addr, size_t cap)
{
    zkstate *z = (zkstate *)s;
    char lp[ZK_PATH], buf[512];
    int len = sizeof buf - 1;
    snprintf(lp, sizeof lp, "%s/leader", z->root);
    addr[0] = '\0';
    if (zoo_get(z->zh, lp, 0, buf, &len, NULL) != ZOK || len <= 0) return -ENOENT;
    buf[len] = '\0';
    json_t *j = json_loads(buf, 0, NULL);
    const char *a = json_string_value(json_object_get(j, "address"));
    if (a) snprintf(addr, cap, "%s", a);
    json_decref(j);
    return a ? 0 : -EBADMSG;
}

json_t *state_zk_members(state *s)
{
    zkstate *z = (zkstate *)s;
    json_t *arr = json_array();
    char path[ZK_PATH];
    snprintf(path, sizeof path, "%s/election", z->root);
    char **names;
    size_t n;
    struct err e = {0};
    if (zk_children(z, path, &names, &n, zk_cmp_names, &e) != 0) return arr;
    for (size_t i = 0; i < n; i++) {
        char p[ZK_PATH * 2], buf[256];
        int len = sizeof buf - 1;
        snprintf(p, sizeof p, "%s/%s", path, names[i]);
        if (zoo_get(z->zh, p, 0, buf, &len, NULL) != ZOK || len < 0) len = 0;
        buf[len] = '\0';
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "address", buf, "role", i == 0 ? "leader" : "follower",
                                             "node", names[i]));
    }
    zk_free_names(names, n);
    return arr;
}

int state_zk_reader(state **out, const char *spec, struct err *e)
{
    *out = NULL;
    zkstate *z = xcalloc(1, sizeof *z);
    z->base.ops = &zk_ops;
    z->session_ms = 10000;
    char chroot[ZK_PATH];
    int rc = state_zk_parse(spec, z->hosts, sizeof z->hosts, chroot, sizeof z->root - 8, e);
    snprintf(z->root, sizeof z->root, "%.190s/tally", chroot);
    if (rc == 0) rc = zk_connect(z, e);
    if (rc) {
        zk_close(&z->base);
        return rc;
    }
    *out = &z->base;
    return 0;
}
