/* fsutil.c - recursive directory creation and removal, atomic writes, canonical paths. */
#include "common/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "data/ifile.h"

int fs_mkdirs(const char *path, struct err *e)
{
    /* Most calls find the parent there (a worker makes a job's directory for each attempt):
     * one mkdir, not one per component. */
    struct stat st;
    if (mkdir(path, 0755) == 0) return 0;
    if (errno == EEXIST) {
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) return err_set(e, -ENOTDIR, "%s: not a directory", path);
        return 0;
    }
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s == '/' || *s == 0) {
            char c = *s;
            *s = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                rc = err_set(e, -errno, "%s: %s", p, strerror(errno));
                break;
            }
            *s = c;
            if (!c) break;
        }
    }
    if (rc == 0) {
        if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            rc = err_set(e, -ENOTDIR, "%s: not a directory", path);
    }
    free(p);
    return rc;
}

int fs_rmtree(const char *path)
{
    if (!path || !*path || strcmp(path, "/") == 0) return -EINVAL;
    struct stat st;
    if (lstat(path, &st) != 0) return errno == ENOENT ? 0 : -errno;
    if (!S_ISDIR(st.st_mode)) return unlink(path) == 0 ? 0 : -errno;
    int rc = 0;
    DIR *d = opendir(path);
    if (d) {
        struct dirent *de;
        while ((de = readdir(d)) != NULL) {
            if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0) continue;
            char *sub = xasprintf("%s/%s", path, de->d_name);
            int r = fs_rmtree(sub);
            if (r && !rc) rc = r;
            free(sub);
        }
        closedir(d);
    }
    if (rmdir(path) != 0 && !rc) rc = -errno;
    return rc;
}

int fs_write_atomic(const char *path, const void *data, size_t len, struct err *e)
{
    char *tmp = xasprintf("%s.tmp-%d", path, (int)getpid());
    int rc = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        rc = err_set(e, -errno, "%s: %s", tmp, strerror(errno));
        goto out;
    }
    rc = ifile_write_all(fd, data, len);
    if (close(fd) != 0 && rc == 0) rc = -errno;
    if (rc) {
        err_set(e, rc, "writing %s: %s", path, strerror(-rc));
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        rc = err_set(e, -errno, "renaming %s: %s", tmp, strerror(errno));
        unlink(tmp);
    }
out:
    free(tmp);
    return rc;
}

char *fs_mkdtemp(const char *parent, const char *prefix, struct err *e)
{
    if (fs_mkdirs(parent, e) != 0) return NULL;
    char *t = xasprintf("%s/%sXXXXXX", parent, prefix);
    if (!mkdtemp(t)) {
        err_set(e, -errno, "%s: %s", t, strerror(errno));
        free(t);
        return NULL;
    }
    return t;
}

/* Appends the components of `rest` to the canonical directory in b, resolving "." and "..". */
static void fs_append_normalised(struct buf *b, const char *rest)
{
    while (*rest) {
        while (*rest == '/') rest++;
        size_t n = strcspn(rest, "/");
        if (n == 0) break;
        if (n == 1 && rest[0] == '.') {
            /* nothing */
        } else if (n == 2 && rest[0] == '.' && rest[1] == '.') {
            while (b->len > 1 && b->data[b->len - 1] != '/') b->len--;
            if (b->len > 1) b->len--; /* the slash, unless it is the root */
        } else {
            if (b->len > 1 || b->data[0] != '/') buf_putc(b, '/');
            buf_append(b, rest, n);
        }
        rest += n;
    }
    buf_putc(b, '\0');
    b->len--;
}

char *fs_canonical(const char *path)
{
    char *abs;
    if (path[0] == '/') {
        abs = xstrdup(path);
    } else {
        char cwd[PATH_MAX];
        if (!getcwd(cwd, sizeof cwd)) return NULL;
        abs = xasprintf("%s/%s", cwd, path);
    }
    /* Cut at each slash from the right until the head exists; resolve the head for real. */
    struct buf b = {0};
    size_t cut = strlen(abs);
    for (;;) {
        char save = abs[cut];
        abs[cut] = '\0';
        char *real = realpath(cut ? abs : "/", NULL);
        abs[cut] = save;
        if (real) {
            buf_append(&b, real, strlen(real));
            free(real);
            break;
        }
        while (cut > 0 && abs[cut - 1] != '/') cut--;
        if (cut == 0) {
            buf_putc(&b, '/');
            break;
        }
        cut--; /* onto the slash */
    }
    fs_append_normalised(&b, abs + cut);
    free(abs);
    return b.data;
}

int fs_path_within(const char *child, const char *parent)
{
    size_t n = strlen(parent);
    if (n == 1 && parent[0] == '/') return child[0] == '/';
    return strncmp(child, parent, n) == 0 && (child[n] == '\0' || child[n] == '/');
}
