/* series.c - the output directories and the results CSV of iteration runs (see series.h). */
#include "cli/series.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int series_active(const series_opts *o)
{
    return o->iterations > 1 || o->keep || o->results;
}

char *series_out(const series_opts *o, const char *out, uint64_t i)
{
    return o->keep ? xasprintf("%s/iter-%04" PRIu64, out, i) : xstrdup(out);
}

int series_check_out(const series_opts *o, const char *out, int overwrite, int *existed, struct err *e)
{
    struct stat st;
    *existed = 0;
    if (!o->keep) return 0;
    if (stat(out, &st) != 0) {
        if (errno == ENOENT) return 0;
        return err_set(e, -errno, "%s: %s", out, strerror(errno));
    }
    *existed = 1;
    if (!S_ISDIR(st.st_mode)) return err_set(e, -ENOTDIR, "%s: output exists and is not a directory", out);
    if (overwrite) return 0;
    DIR *d = opendir(out);
    if (!d) return err_set(e, -errno, "%s: %s", out, strerror(errno));
    struct dirent *de;
    int entries = 0;
    while (!entries && (de = readdir(d)) != NULL)
        entries = strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0;
    closedir(d);
    if (entries)
        return err_set(e, -EEXIST, "%s: output directory is not empty (use --overwrite to replace its iter-NNNN "
                                   "directories)", out);
    return 0;
}

/* ---- The CSV file ------------------------------------------------------------------------- */

/* Writes all of buf at the end of the file (O_APPEND: one write() is one append). */
static int series_write(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return n < 0 ? -errno : -EIO;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Makes the open file a results file: writes the header into an empty one, checks the first
 * line of any other. Holds an flock meanwhile, so that two series starting on one new file do
 * not both write a header; where the file system has no flock (some network mounts) it goes
 * on without, as the risk is only a second header line. */
static int series_adopt_file(int fd, const char *path, struct err *e)
{
    static const char header[] = SERIES_HEADER "\n";
    struct stat st;
    int rc = 0, locked = flock(fd, LOCK_EX) == 0;
    if (fstat(fd, &st) != 0) {
        rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
        if (locked) flock(fd, LOCK_UN);
        return rc;
    }
    if (st.st_size == 0) {
        rc = series_write(fd, header, sizeof header - 1);
        if (rc) err_set(e, rc, "%s: %s", path, strerror(-rc));
    } else {
        char first[sizeof header + 1];
        ssize_t n = pread(fd, first, sizeof first - 1, 0);
        first[n > 0 ? n : 0] = '\0';
        size_t line = strcspn(first, "\r\n");
        if (n < 0) {
            rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
        } else if (line != sizeof header - 2 || memcmp(first, header, line) != 0) {
            first[line] = '\0';
            rc = err_set(e, -EINVAL, "--results %s: the file exists with another header ('%.80s%s'); expected '%s' "
                                     "(name a new file, or a directory)", path, first, line > 80 ? "..." : "",
                         SERIES_HEADER);
        } else {
            /* A row cut short (the disk filled up, say) must not swallow the next one. */
            char last = '\n';
            if (pread(fd, &last, 1, st.st_size - 1) == 1 && last != '\n' && (rc = series_write(fd, "\n", 1)) != 0)
                err_set(e, rc, "%s: %s", path, strerror(-rc));
        }
    }
    if (locked) flock(fd, LOCK_UN);
    return rc;
}

static int series_open_file(series_results *r, const char *path, struct err *e)
{
    int fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return err_set(e, -errno, "--results %s: %s", path, strerror(errno));
    int rc = series_adopt_file(fd, path, e);
    if (rc) {
        close(fd);
        return rc;
    }
    r->fd = fd;
    r->path = xstrdup(path);
    return 0;
}

int series_results_open(series_results *r, const char *arg, struct err *e)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    struct stat st;
    if (stat(arg, &st) == 0 && S_ISDIR(st.st_mode)) {
        /* The name waits for the plan; a directory we cannot write into is refused now, not
         * after the first iteration has run. */
        if (access(arg, W_OK | X_OK) != 0) return err_set(e, -errno, "--results %s: %s", arg, strerror(errno));
        r->dir = xstrdup(arg);
        return 0;
    }
    return series_open_file(r, arg, e);
}

int series_results_choose(series_results *r, uint64_t maps, uint64_t reduces, uint64_t iterations, uint64_t start_ms,
                          struct err *e)
{
    if (r->path || !r->dir) return 0;
    time_t secs = (time_t)(start_ms / 1000);
    struct tm tm;
    char stamp[32] = "00000000_000000";
    if (localtime_r(&secs, &tm)) strftime(stamp, sizeof stamp, "%Y%m%d_%H%M%S", &tm);
    char *path = xasprintf("%s/results_M%" PRIu64 "_R%" PRIu64 "_iters%" PRIu64 "_%s.csv", r->dir, maps, reduces,
                           iterations, stamp);
    int rc = series_open_file(r, path, e);
    if (rc == 0) fprintf(stderr, "tally: results go to %s\n", path);
    free(path);
    return rc;
}

int series_results_append(series_results *r, const series_row *row, struct err *e)
{
    if (r->fd < 0) return err_set(e, -EBADF, "internal error: no results file chosen");
    time_t secs = (time_t)(row->start_ms / 1000);
    struct tm tm;
    char when[40] = "1970-01-01T00:00:00";
    if (gmtime_r(&secs, &tm)) strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%S", &tm);
    struct buf b = {0};
    buf_appendf(&b, "%" PRIu64 ",%s.%03uZ,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%u,%u,%u,", row->iteration,
                when, (unsigned)(row->start_ms % 1000), row->total_ms, row->sum.map_ms, row->sum.reduce_ms,
                row->sum.slowest_ms, row->sum.attempts, row->sum.speculative, row->sum.killed);
    buf_append_csv_field(&b, row->sum.slowest_worker);
    buf_putc(&b, '\n');
    int rc = series_write(r->fd, b.data, b.len);
    buf_free(&b);
    if (rc) return err_set(e, rc, "--results %s: %s", r->path, strerror(-rc));
    return 0;
}

void series_results_close(series_results *r)
{
    if (r->fd >= 0) close(r->fd);
    free(r->path);
    free(r->dir);
    memset(r, 0, sizeof *r);
    r->fd = -1;
}

void series_report(const series_row *row, uint64_t iterations)
{
    fprintf(stderr, "tally: iteration %" PRIu64 "/%" PRIu64 ": %" PRIu64 " ms (map %" PRIu64 " ms, reduce %" PRIu64
                    " ms)\n", row->iteration, iterations, row->total_ms, row->sum.map_ms, row->sum.reduce_ms);
}
