/* journal.c - the embedded state backend: a write-ahead journal in --state-dir DIR.
 *
 * DIR/journal is a sequence of frames, one per record:
 *
 *     LLLLLLLL CCCCCCCC JOB JSON\n     L: payload length, C: its CRC-32, both 8 hex digits;
 *                                      payload: the job id ("-" for none), a space, the record
 *
 * Appends only ever add whole frames at the end, so a crash can leave at most one torn frame,
 * the last: a frame that fails its checks with no valid frame after it is torn and is cut off
 * (logged); one with valid frames after it means the file was damaged, and loading stops with
 * an error that names the offset. DIR/epoch holds the generation, one higher at every open;
 * DIR/lock is flock()ed for as long as this process uses DIR, so two coordinators can never
 * write one journal. Records of jobs that left the history are dropped by rewriting the
 * journal (compaction: write journal.new, fsync, rename over journal), in batches. */
#include "cluster/state.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "common/claim.h"
#include "common/fsutil.h"
#include "common/log.h"

#define JOURNAL_HDR 18           /* "LLLLLLLL CCCCCCCC " */
#define JOURNAL_MAX_RECORD (64u << 20)
#define JOURNAL_COMPACT_AFTER 32 /* forgotten jobs before the journal is rewritten */

typedef struct journal {
    state base;
    char *dir, *path;
    int fd, lock_fd;
    struct buf pending;          /* frames appended, not yet written */
    char **forgotten;
    size_t nforgotten;
} journal;

static uint32_t journal_crc(const char *p, size_t n)
{
    return (uint32_t)crc32(0L, (const Bytef *)p, (uInt)n);
}

static int journal_hex8(const char *p, uint32_t *out)
{
    uint32_t v = 0;
    for (int i = 0; i < 8; i++) {
        char c = p[i];
        int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
        if (d < 0) return -1;
        v = v << 4 | (uint32_t)d;
    }
    *out = v;
    return 0;
}

/* Checks the frame at off; on success sets *payload, *plen and returns the next offset. Returns
 * 0 (never a valid next offset, frames are never empty) with *why set if the frame is bad. */
static size_t journal_frame(const char *data, size_t size, size_t off, const char **payload, size_t *plen,
                            const char **why)
{
    uint32_t len, crc;
    if (size - off < JOURNAL_HDR) return *why = "a frame header cut short", 0;
    if (journal_hex8(data + off, &len) || data[off + 8] != ' ' || journal_hex8(data + off + 9, &crc) ||
        data[off + 17] != ' ')
        return *why = "a malformed frame header", 0;
    if (len == 0 || len > JOURNAL_MAX_RECORD) return *why = "an impossible record length", 0;
    if (size - off - JOURNAL_HDR < (size_t)len + 1) return *why = "a record cut short", 0;
    const char *p = data + off + JOURNAL_HDR;
    if (p[len] != '\n') return *why = "a record without its end of line", 0;
    if (journal_crc(p, len) != crc) return *why = "a checksum mismatch", 0;
    *payload = p;
    *plen = len;
    return off + JOURNAL_HDR + len + 1;
}

/* Is there any valid frame after a bad one at `off`? (Then the file is damaged, not torn.) */
static int journal_valid_after(const char *data, size_t size, size_t off)
{
    for (size_t i = off; i < size; i++) {
        if (data[i] != '\n' || i + 1 >= size) continue;
        const char *p, *why;
        size_t n;
        if (journal_frame(data, size, i + 1, &p, &n, &why)) return 1;
    }
    return 0;
}

static int journal_read_all(const char *path, char **out, size_t *size, struct err *e)
{
    *out = NULL;
    *size = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return errno == ENOENT ? 0 : err_set(e, -errno, "%s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    char *data = xmalloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (got < (size_t)st.st_size) {
        ssize_t r = read(fd, data + got, (size_t)st.st_size - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
            free(data);
            close(fd);
            return rc;
        }
        if (r == 0) break;
        got += (size_t)r;
    }
    close(fd);
    *out = data;
    *size = got;
    return 0;
}

static int journal_load(state *s, state_replay_fn fn, void *arg, struct err *e)
{
    journal *j = (journal *)s;
    char *data;
    size_t size;
    int rc = journal_read_all(j->path, &data, &size, e);
    if (rc) return rc;
    size_t off = 0, n = 0;
    while (rc == 0 && off < size) {
        const char *p, *why = NULL;
        size_t len;
        size_t next = journal_frame(data, size, off, &p, &len, &why);
        if (!next) {
            if (journal_valid_after(data, size, off)) {
                rc = err_set(e, -EBADMSG, "%s: offset %zu: %s, with valid records after it: the journal is damaged "
                                          "(restore DIR from a backup, or move it away to start afresh)",
                             j->path, off, why);
                break;
            }
            log_warn("%s: offset %zu: a torn last record (%s, %zu bytes): a write cut short by a crash, ignored",
                     j->path, off, why, size - off);
            if (truncate(j->path, (off_t)off) != 0)
                rc = err_set(e, -errno, "%s: cannot cut off the torn record: %s", j->path, strerror(errno));
            break;
        }
        const char *sp = memchr(p, ' ', len);
        json_error_t je;
        json_t *rec = sp ? json_loadb(sp + 1, len - (size_t)(sp + 1 - p), JSON_REJECT_DUPLICATES, &je) : NULL;
        char where[600];
        snprintf(where, sizeof where, "%s: offset %zu", j->path, off);
        if (!rec || !json_is_object(rec)) {
            rc = err_set(e, -EBADMSG, "%s: the record is not a JSON object%s%s", where, rec ? "" : ": ",
                         rec ? "" : je.text);
        } else {
            rc = fn(arg, rec, where, e);
            n++;
        }
        json_decref(rec);
        off = next;
    }
    free(data);
    if (rc == 0) log_info("%s: %zu records replayed", j->path, n);
    return rc;
}

static int journal_append(state *s, const char *job, const char *line, size_t len)
{
    journal *j = (journal *)s;
    const char *id = job && *job ? job : "-";
    /* What journal_load() would refuse to read back is never written. */
    if (strlen(id) + 1 + len > JOURNAL_MAX_RECORD) return -EFBIG;
    size_t plen = strlen(id) + 1 + len;
    size_t at = j->pending.len;
    buf_appendf(&j->pending, "%08x %08x %s ", (unsigned)plen, 0u, id);
    buf_append(&j->pending, line, len);
    buf_putc(&j->pending, '\n');
    /* The CRC covers the payload, which is in place now. */
    char crc[9];
    snprintf(crc, sizeof crc, "%08x", (unsigned)journal_crc(j->pending.data + at + JOURNAL_HDR, plen));
    memcpy(j->pending.data + at + 9, crc, 8);
    return 0;
}

static int journal_write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -errno;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int journal_sync(state *s, struct err *e)
{
    journal *j = (journal *)s;
    if (j->pending.len == 0) return 0;
    struct stat st;
    off_t before = fstat(j->fd, &st) == 0 ? st.st_size : -1;
    int rc = journal_write_all(j->fd, j->pending.data, j->pending.len);
    if (rc == 0 && fdatasync(j->fd) != 0) rc = -errno;
    if (rc) {
        /* Cut off what part of the frames made it, so that a later sync cannot put valid
         * frames after a torn one; the frames stay pending (nobody acted on them). */
        if (before >= 0 && ftruncate(j->fd, before) != 0) log_warn("%s: %s", j->path, strerror(errno));
        return err_set(e, rc, "%s: %s", j->path, strerror(-rc));
    }
    j->pending.len = 0;
    return 0;
}

static int journal_is_forgotten(const journal *j, const char *id, size_t idlen)
{
    for (size_t i = 0; i < j->nforgotten; i++)
        if (strlen(j->forgotten[i]) == idlen && memcmp(j->forgotten[i], id, idlen) == 0) return 1;
    return 0;
}

static int journal_fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    int rc = fsync(fd) == 0 ? 0 : -errno;
    close(fd);
    return rc;
}

/* Rewrites the journal without the forgotten jobs' records. */
static int journal_compact(journal *j, struct err *e)
{
    int rc = journal_sync(&j->base, e);
    char *data = NULL, *tmp = xasprintf("%s.new", j->path);
    size_t size = 0, kept = 0, dropped = 0;
    if (rc == 0) rc = journal_read_all(j->path, &data, &size, e);
    int fd = rc == 0 ? open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600) : -1;
    if (rc == 0 && fd < 0) rc = err_set(e, -errno, "%s: %s", tmp, strerror(errno));
    struct buf out = {0};
    for (size_t off = 0; rc == 0 && off < size;) {
        const char *p, *why;
        size_t len, next = journal_frame(data, size, off, &p, &len, &why);
        if (!next) break; /* cannot happen: this process wrote every frame since the load */
        const char *sp = memchr(p, ' ', len);
        if (sp && journal_is_forgotten(j, p, (size_t)(sp - p))) {
            dropped++;
        } else {
            buf_append(&out, data + off, next - off);
            kept++;
        }
        off = next;
    }
    if (rc == 0 && (rc = journal_write_all(fd, out.data ? out.data : "", out.len)) == 0 && fsync(fd) != 0) rc = -errno;
    if (fd >= 0) close(fd);
    if (rc == 0 && rename(tmp, j->path) != 0) rc = -errno;
    if (rc == 0) journal_fsync_dir(j->dir);
    if (rc == 0) {
        int nfd = open(j->path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (nfd < 0) {
            rc = -errno;
        } else {
            close(j->fd);
            j->fd = nfd;
        }
        log_info("%s: compacted: %zu records kept, %zu of %zu finished jobs dropped", j->path, kept, dropped,
                 j->nforgotten);
    } else {
        unlink(tmp);
        if (e && !e->msg[0]) err_set(e, rc, "%s: compacting: %s", j->path, strerror(-rc));
    }
    buf_free(&out);
    free(data);
    free(tmp);
    return rc;
}

static void journal_forget(state *s, const char *job)
{
    journal *j = (journal *)s;
    j->forgotten = xrealloc(j->forgotten, (j->nforgotten + 1) * sizeof *j->forgotten);
    j->forgotten[j->nforgotten++] = xstrdup(job);
    if (j->nforgotten < JOURNAL_COMPACT_AFTER) return;
    struct err e = {0};
    if (journal_compact(j, &e) != 0) {
        log_warn("journal compaction failed (the journal stays as it was): %s", e.msg);
        return;
    }
    for (size_t i = 0; i < j->nforgotten; i++) free(j->forgotten[i]);
    j->nforgotten = 0;
}

static void journal_close(state *s)
{
    journal *j = (journal *)s;
    struct err e = {0};
    if (journal_sync(s, &e) != 0) log_warn("%s", e.msg);
    if (j->fd >= 0) close(j->fd);
    if (j->lock_fd >= 0) close(j->lock_fd);
    for (size_t i = 0; i < j->nforgotten; i++) free(j->forgotten[i]);
    free(j->forgotten);
    buf_free(&j->pending);
    free(j->dir);
    free(j->path);
    free(j);
}

static const state_ops journal_ops = {"journal", journal_load, journal_append, journal_sync, journal_forget,
                                      journal_close};

/* DIR/epoch: the generation, rewritten durably (write, fsync, rename, fsync DIR). */
static int journal_next_epoch(journal *j, uint64_t *epoch, struct err *e)
{
    char *p = xasprintf("%s/epoch", j->dir), *tmp = xasprintf("%s/epoch.new", j->dir);
    char text[32] = "";
    uint64_t prev = 0;
    int rc = 0;
    FILE *f = fopen(p, "r");
    if (f) {
        if (!fgets(text, sizeof text, f)) text[0] = '\0';
        fclose(f);
        text[strcspn(text, "\n")] = '\0';
        if (util_parse_u64(text, 0, UINT64_MAX - 1, &prev) != 0)
            rc = err_set(e, -EBADMSG, "%s: expected the generation number, found '%.20s'", p, text);
    } else if (errno != ENOENT) {
        rc = err_set(e, -errno, "%s: %s", p, strerror(errno));
    }
    if (rc == 0) {
        snprintf(text, sizeof text, "%" PRIu64 "\n", prev + 1);
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || journal_write_all(fd, text, strlen(text)) != 0 || fsync(fd) != 0 || rename(tmp, p) != 0)
            rc = err_set(e, -errno, "%s: %s", p, strerror(errno));
        if (fd >= 0) close(fd);
        if (rc == 0) journal_fsync_dir(j->dir);
    }
    *epoch = prev + 1;
    free(p);
    free(tmp);
    return rc;
}

int state_open_journal(state **out, const char *dir, struct err *e)
{
    *out = NULL;
    int rc = fs_mkdirs(dir, e);
    if (rc) return rc;
    journal *j = xcalloc(1, sizeof *j);
    j->base.ops = &journal_ops;
    j->dir = xstrdup(dir);
    j->path = xasprintf("%s/journal", dir);
    j->fd = -1;
    char *lock = xasprintf("%s/lock", dir);
    j->lock_fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (j->lock_fd < 0) {
        rc = err_set(e, -errno, "%s: %s", lock, strerror(errno));
    } else if (flock(j->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char holder[256] = "";
        ssize_t n = pread(j->lock_fd, holder, sizeof holder - 1, 0);
        holder[n > 0 ? n : 0] = '\0';
        holder[strcspn(holder, "\n")] = '\0';
        rc = err_set(e, -EBUSY, "--state-dir %s is in use by another coordinator (%s)", dir,
                     holder[0] ? holder : "its owner is unknown");
    } else {
        char *owner = claim_owner_text("coordinator");
        if (ftruncate(j->lock_fd, 0) == 0 && pwrite(j->lock_fd, owner, strlen(owner), 0) < 0)
            log_warn("%s: %s", lock, strerror(errno));
        free(owner);
    }
    free(lock);
    if (rc == 0) rc = journal_next_epoch(j, &j->base.epoch, e);
    if (rc == 0) {
        j->fd = open(j->path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (j->fd < 0) rc = err_set(e, -errno, "%s: %s", j->path, strerror(errno));
    }
    if (rc) {
        journal_close(&j->base);
        return rc;
    }
    *out = &j->base;
    return 0;
}
