/* output.c - preparing, committing and rolling back a job's output directory. */
#include "data/output.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/fsutil.h"

int output_prepare(output *o, const char *dir, int overwrite, struct err *e)
{
    memset(o, 0, sizeof *o);
    int ne = fs_dir_nonempty(dir);
    if (ne < 0) return err_set(e, ne, "%s: output exists and is not a directory", dir);
    struct stat st;
    int existed = stat(dir, &st) == 0;
    if (ne > 0) {
        if (!overwrite)
            return err_set(e, -EEXIST, "%s: output directory is not empty (use --overwrite to replace it)", dir);
        int rc = fs_rmtree(dir);
        if (rc) return err_set(e, rc, "%s: cannot remove old output: %s", dir, strerror(-rc));
        existed = 0;
    }
    int rc = fs_mkdirs(dir, e);
    if (rc) return rc;
    o->dir = xstrdup(dir);
    o->created = !existed;
    o->tmp = xasprintf("%s/_temporary", dir);
    if (mkdir(o->tmp, 0755) != 0 && errno != EEXIST) {
        rc = err_set(e, -errno, "%s: %s", o->tmp, strerror(errno));
        output_abort(o);
        return rc;
    }
    return 0;
}

int output_commit(output *o, uint32_t nparts, const char *columns, const char *counters_json,
                  struct err *e)
{
    int rc = 0;
    for (uint32_t i = 0; i < nparts && rc == 0; i++) {
        char *from = xasprintf("%s/part-%05u", o->tmp, i);
        char *to = xasprintf("%s/part-%05u", o->dir, i);
        if (rename(from, to) != 0) rc = err_set(e, -errno, "committing %s: %s", to, strerror(errno));
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
        fs_rmtree(o->tmp);
        char *p = xasprintf("%s/_SUCCESS", o->dir);
        rc = fs_write_atomic(p, "", 0, e);
        free(p);
    }
    return rc;
}

void output_abort(output *o)
{
    if (!o->dir) return;
    if (o->created) {
        fs_rmtree(o->dir);
        return;
    }
    /* OUT existed (empty) before: remove only what this job put there. */
    fs_rmtree(o->tmp);
    {
        static const char *fixed[] = {"_SUCCESS", "_counters.json", "_columns"};
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) {
            char *p = xasprintf("%s/%s", o->dir, fixed[i]);
            unlink(p);
            free(p);
        }
        for (uint32_t i = 0;; i++) {
            char *p = xasprintf("%s/part-%05u", o->dir, i);
            int gone = unlink(p) != 0;
            free(p);
            if (gone) break;
        }
    }
}

void output_free(output *o)
{
    free(o->dir);
    free(o->tmp);
    memset(o, 0, sizeof *o);
}
