/* claim.c - directories owned by one live process, told apart by a lock on their owner file. */
#include "common/claim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

/* A name beside `path` that no other process uses: PREFIX + pid + a per-process counter. */
static char *claim_sibling(const char *path, const char *tag)
{
    static _Atomic unsigned long seq;
    const char *slash = strrchr(path, '/');
    int dirlen = slash ? (int)(slash - path) + 1 : 0;
    return xasprintf("%.*s%s%s%d-%lu-%llx", dirlen, path, CLAIM_STAGING_PREFIX, tag, (int)getpid(),
                     (unsigned long)atomic_fetch_add(&seq, 1), (unsigned long long)time_mono_ns());
}

int claim_set_owner(claim *c, const char *owner)
{
    size_t n = strlen(owner);
    if (ftruncate(c->fd, 0) != 0) return -errno;
    ssize_t k = pwrite(c->fd, owner, n, 0);
    return k == (ssize_t)n ? 0 : k < 0 ? -errno : -EIO;
}

/* Reads the owner text of an open owner file into buf, without its newline. */
static void claim_read_owner(int fd, char *buf, size_t cap)
{
    if (!buf || cap == 0) return;
    ssize_t k = pread(fd, buf, cap - 1, 0);
    buf[k > 0 ? k : 0] = '\0';
    buf[strcspn(buf, "\n")] = '\0';
}

/* Creates the claim through a staging directory renamed into place. Returns 0, -EEXIST if
 * `path` exists already, or another negative code with a message. */
static int claim_create(claim *c, const char *path, const char *owner, struct err *e)
{
    char *staging = claim_sibling(path, "");
    char *ofile = xasprintf("%s/%s", staging, CLAIM_OWNER_FILE);
    int rc = 0, fd = -1;
    if (mkdir(staging, 0755) != 0) {
        rc = err_set(e, -errno, "%s: %s", staging, strerror(errno));
        goto out;
    }
    fd = open(ofile, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        rc = err_set(e, -errno, "%s: %s", ofile, strerror(errno));
        goto undo;
    }
    c->fd = fd;
    if ((rc = claim_set_owner(c, owner)) != 0) {
        err_set(e, rc, "%s: %s", ofile, strerror(-rc));
        goto undo;
    }
    if (rename(staging, path) == 0) {
        c->path = xstrdup(path);
        goto out;
    }
    rc = errno == ENOTEMPTY || errno == EEXIST ? -EEXIST
         : errno == ENOTDIR                    ? err_set(e, -ENOTDIR, "%s: exists and is not a directory", path)
                                               : err_set(e, -errno, "%s: %s", path, strerror(errno));
undo:
    unlink(ofile);
    rmdir(staging);
    if (fd >= 0) close(fd);
    c->fd = -1;
out:
    free(ofile);
    free(staging);
    return rc;
}

int claim_acquire(claim *c, const char *path, const char *owner, struct err *e)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    /* A few rounds: the claim may be released or taken between our steps. */
    for (int round = 0; round < 8; round++) {
        int rc = claim_create(c, path, owner, e);
        if (rc != -EEXIST) return rc;
        char *ofile = xasprintf("%s/%s", path, CLAIM_OWNER_FILE);
        int fd = open(ofile, O_RDWR | O_CLOEXEC);
        if (fd < 0) {
            int err = errno;
            struct stat st;
            free(ofile);
            if (err == ENOENT && stat(path, &st) != 0 && errno == ENOENT) continue; /* just released */
            if (err == ENOENT) return err_set(e, -EEXIST, "%s exists and was not made by a tally job", path);
            return err_set(e, -err, "%s/%s: %s", path, CLAIM_OWNER_FILE, strerror(err));
        }
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int err = errno;
            char holder[256];
            claim_read_owner(fd, holder, sizeof holder);
            close(fd);
            free(ofile);
            if (err == EWOULDBLOCK)
                return err_set(e, -EBUSY, "%s is held by a running job (%s)", path, holder[0] ? holder : "owner unknown");
            return err_set(e, -err, "%s/%s: %s", path, CLAIM_OWNER_FILE, strerror(err));
        }
        /* The lock is ours, so its owner is dead, unless the claim was released and made
         * anew between open() and flock(): then the file we locked is no longer the one. */
        struct stat a, b;
        int same = fstat(fd, &a) == 0 && stat(ofile, &b) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev;
        free(ofile);
        if (!same) {
            close(fd);
            continue;
        }
        c->fd = fd;
        c->path = xstrdup(path);
        c->took_over = 1;
        claim_read_owner(fd, c->previous, sizeof c->previous);
        if ((rc = claim_set_owner(c, owner)) != 0) {
            err_set(e, rc, "%s/%s: %s", path, CLAIM_OWNER_FILE, strerror(-rc));
            claim_drop(c);
            return rc;
        }
        return 0;
    }
    return err_set(e, -EBUSY, "%s keeps changing hands; try again", path);
}

int claim_fresh(claim *c, const char *parent, const char *prefix, const char *owner, struct err *e)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    int rc = fs_mkdirs(parent, e);
    for (int tries = 0; rc == 0 && tries < 16; tries++) {
        uint64_t r = time_mono_ns() * 0x9E3779B97F4A7C15ull ^ ((uint64_t)getpid() << 32) ^ (uint64_t)tries;
        char *path = xasprintf("%s/%s%08llx", parent, prefix, (unsigned long long)(r >> 32));
        rc = claim_create(c, path, owner, e);
        free(path);
        if (rc != -EEXIST) return rc;
        rc = 0;
    }
    return rc ? rc : err_set(e, -EEXIST, "%s: cannot find a free name for a %s directory", parent, prefix);
}

void claim_release(claim *c)
{
    if (c->path && c->fd >= 0) {
        /* Out of the way in one step, so that nobody sees a half-removed claim (a directory
         * whose owner file is gone looks foreign), then removed at leisure. */
        char *dead = claim_sibling(c->path, "done-");
        if (rename(c->path, dead) == 0) fs_rmtree(dead);
        else fs_rmtree(c->path);
        free(dead);
    }
    claim_drop(c);
}

void claim_drop(claim *c)
{
    /* Only a claim with a path holds an fd: a zeroed claim (calloc'd) has fd 0, not ours. */
    if (c->path && c->fd >= 0) close(c->fd);
    free(c->path);
    c->path = NULL;
    c->fd = -1;
    c->took_over = 0;
    c->previous[0] = '\0';
}

int claim_probe(const char *path, char *buf, size_t cap)
{
    if (buf && cap) buf[0] = '\0';
    char *ofile = xasprintf("%s/%s", path, CLAIM_OWNER_FILE);
    int fd = open(ofile, O_RDONLY | O_CLOEXEC);
    free(ofile);
    if (fd < 0) {
        struct stat st;
        return stat(path, &st) == 0 ? -EEXIST : 0;
    }
    claim_read_owner(fd, buf, cap);
    int live = flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK;
    close(fd);
    return live;
}

int claim_reap_stale(const char *dir, const char *prefix)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    size_t plen = strlen(prefix);
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (strncmp(de->d_name, prefix, plen) != 0) continue;
        char *path = xasprintf("%s/%s", dir, de->d_name);
        char *ofile = xasprintf("%s/%s", path, CLAIM_OWNER_FILE);
        int fd = open(ofile, O_RDONLY | O_CLOEXEC);
        struct stat st;
        /* An empty owner file is one being made: its creator writes the text after taking the
         * lock, so only a lock-free file with text belongs to a dead process. */
        if (fd >= 0 && flock(fd, LOCK_EX | LOCK_NB) == 0 && fstat(fd, &st) == 0 && st.st_size > 0) {
            /* Holding the dead owner's lock, nobody else can take the claim meanwhile. */
            claim c = {.path = path, .fd = fd};
            path = NULL;
            claim_release(&c);
            removed++;
        } else if (fd >= 0) {
            close(fd);
        }
        free(ofile);
        free(path);
    }
    closedir(d);
    return removed;
}

char *claim_owner_text(const char *what)
{
    char host[256] = "";
    gethostname(host, sizeof host - 1);
    return xasprintf("pid=%d host=%s%s%s\n", (int)getpid(), host, what && *what ? " " : "", what ? what : "");
}
