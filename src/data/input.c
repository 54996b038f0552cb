/* input.c - expands INPUT arguments into files and plans the map splits over them. */
#include "data/input.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <glob.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Paths come in pairs: `name` as the user gave it (what jobs and messages show) and `path`, the
 * same resolved against the submitter's directory when the coordinator expands them. */
static int input_add_file(input_set *in, size_t *cap, const char *name, const char *path, uint64_t size, int force,
                          fields_format forced)
{
    if (in->nfiles == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        in->files = xrealloc(in->files, *cap * sizeof *in->files);
    }
    input_file *f = &in->files[in->nfiles++];
    f->name = xstrdup(name);
    f->path = xstrdup(path);
    f->size = size;
    f->format = input_format_for(name, &f->gz);
    if (force) f->format = forced;
    in->total_bytes += size;
    return 0;
}

static int input_cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int input_cmp_file(const void *a, const void *b)
{
    return strcmp(((const input_file *)a)->name, ((const input_file *)b)->name);
}

static char *input_join(const char *dir, const char *name)
{
    return xasprintf("%s%s%s", dir, dir[0] && dir[strlen(dir) - 1] == '/' ? "" : "/", name);
}

/* Walks a directory tree, adding every regular file; the caller sorts them by full path. */
static int input_walk(input_set *in, size_t *cap, const char *dirname, const char *dir, int force, fields_format forced,
                      struct err *e)
{
    DIR *d = opendir(dir);
    if (!d) return err_set(e, -errno, "%s: %s", dirname, strerror(errno));
    char **names = NULL;
    size_t n = 0, ncap = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || de->d_name[0] == '_') continue;
        if (n == ncap) {
            ncap = ncap ? ncap * 2 : 32;
            names = xrealloc(names, ncap * sizeof *names);
        }
        names[n++] = xstrdup(de->d_name);
    }
    closedir(d);
    if (n) qsort(names, n, sizeof *names, input_cmp_str);
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        char *name = input_join(dirname, names[i]), *path = input_join(dir, names[i]);
        struct stat st;
        if (rc == 0) {
            if (stat(path, &st) != 0) {
                rc = err_set(e, -errno, "%s: %s", name, strerror(errno));
            } else if (S_ISDIR(st.st_mode)) {
                rc = input_walk(in, cap, name, path, force, forced, e);
            } else if (S_ISREG(st.st_mode)) {
                rc = input_add_file(in, cap, name, path, (uint64_t)st.st_size, force, forced);
            }
        }
        free(name);
        free(path);
        free(names[i]);
    }
    free(names);
    return rc;
}

static int input_add_arg(input_set *in, size_t *cap, const char *base, const char *arg, int force,
                         fields_format forced, struct err *e)
{
    char *path = base && arg[0] != '/' ? input_join(base, arg) : xstrdup(arg);
    struct stat st;
    int rc = 0;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode)) {
            size_t before = in->nfiles;
            rc = input_walk(in, cap, arg, path, force, forced, e);
            if (rc == 0 && in->nfiles == before) rc = err_set(e, -ENOENT, "%s: directory has no input files", arg);
            if (rc == 0) qsort(in->files + before, in->nfiles - before, sizeof *in->files, input_cmp_file);
        } else if (!S_ISREG(st.st_mode)) {
            rc = err_set(e, -EINVAL, "%s: not a regular file or directory", arg);
        } else {
            rc = input_add_file(in, cap, arg, path, (uint64_t)st.st_size, force, forced);
        }
        free(path);
        return rc;
    }
    int saved = errno;
    if (strpbrk(arg, "*?[")) {
        glob_t g;
        int grc = glob(path, 0, NULL, &g);
        if (grc == GLOB_NOMATCH) rc = err_set(e, -ENOENT, "%s: no input matches this pattern", arg);
        else if (grc != 0) rc = err_set(e, -EIO, "%s: cannot expand pattern", arg);
        /* Matches are named as the pattern was: relative to the same directory. */
        size_t strip = base && arg[0] != '/' ? strlen(path) - strlen(arg) : 0;
        for (size_t i = 0; grc == 0 && i < g.gl_pathc && rc == 0; i++)
            rc = input_add_arg(in, cap, base, g.gl_pathv[i] + strip, force, forced, e);
        if (grc == 0) globfree(&g);
        free(path);
        return rc;
    }
    free(path);
    return err_set(e, -saved, "%s: %s", arg, strerror(saved));
}

int input_expand(char *const *args, size_t nargs, const char *base, int force, fields_format forced, input_set *out,
                 struct err *e)
{
    memset(out, 0, sizeof *out);
    size_t cap = 0;
    for (size_t i = 0; i < nargs; i++) {
        int rc = input_add_arg(out, &cap, base, args[i], force, forced, e);
        if (rc) {
            input_set_free(out);
            return rc;
        }
    }
    /* Each file must be readable now, so that the error names it before any task runs. */
    for (size_t i = 0; i < out->nfiles; i++) {
        FILE *f = fopen(out->files[i].path, "rb");
        if (!f) {
            int rc = err_set(e, -errno, "%s: %s", out->files[i].name, strerror(errno));
            input_set_free(out);
            return rc;
        }
        fclose(f);
    }
    return 0;
}

static void input_split_add(input_split *s, size_t *cap, uint32_t file, uint64_t start, uint64_t end)
{
    if (s->nsegs == *cap) {
        *cap = *cap ? *cap * 2 : 2;
        s->segs = xrealloc(s->segs, *cap * sizeof *s->segs);
    }
    s->segs[s->nsegs++] = (input_segment){.file = file, .start = start, .end = end};
    s->bytes += end - start;
}

int input_plan(input_set *in, uint64_t m, uint64_t split_size, uint64_t min_splits)
{
    uint64_t plain = 0, ngz = 0;
    for (size_t i = 0; i < in->nfiles; i++) {
        if (in->files[i].gz) ngz++;
        else plain += in->files[i].size;
    }
    if (m == 0) {
        m = split_size ? (plain + split_size - 1) / split_size : 1;
        if (m < min_splits) m = min_splits;
        /* Nothing to cut: one split (reading nothing) rather than min_splits empty ones. */
        if (plain == 0 || m == 0) m = 1;
    }
    /* M counts the splits of the splittable bytes. When there are none, only the gz files bring
     * splits (an empty split beside them would be a map task with nothing to read); a job whose
     * files are all empty keeps its M splits, so that it still runs (and -m is still obeyed). */
    if (plain == 0 && ngz > 0) m = 0;
    in->nsplits = (size_t)(m + ngz);
    in->splits = xcalloc(in->nsplits ? in->nsplits : 1, sizeof *in->splits);
    /* Split k owns the global byte range [k*plain/m, (k+1)*plain/m) of the concatenated plain
     * files; a range crossing a file boundary becomes several segments. */
    size_t fi = 0;
    uint64_t fbase = 0; /* global offset of files[fi] among plain files */
    for (uint64_t k = 0; k < m; k++) {
        input_split *s = &in->splits[k];
        size_t cap = 0;
        uint64_t lo = (uint64_t)((unsigned __int128)plain * k / m);
        uint64_t hi = (uint64_t)((unsigned __int128)plain * (k + 1) / m);
        while (lo < hi) {
            while (fi < in->nfiles && (in->files[fi].gz || fbase + in->files[fi].size <= lo)) {
                if (!in->files[fi].gz) fbase += in->files[fi].size;
                fi++;
            }
            if (fi >= in->nfiles) break;
            uint64_t fend = fbase + in->files[fi].size;
            uint64_t segend = hi < fend ? hi : fend;
            input_split_add(s, &cap, (uint32_t)fi, lo - fbase, segend - fbase);
            lo = segend;
        }
    }
    size_t k = (size_t)m;
    for (size_t i = 0; i < in->nfiles; i++) {
        if (!in->files[i].gz) continue;
        size_t cap = 0;
        input_split_add(&in->splits[k++], &cap, (uint32_t)i, 0, in->files[i].size);
    }
    return 0;
}

void input_set_free(input_set *in)
{
    for (size_t i = 0; i < in->nfiles; i++) {
        free(in->files[i].path);
        free(in->files[i].name);
    }
    free(in->files);
    for (size_t i = 0; i < in->nsplits; i++) free(in->splits[i].segs);
    free(in->splits);
    memset(in, 0, sizeof *in);
}

static int input_ends_with(const char *s, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k && strncasecmp(s + n - k, suf, k) == 0;
}

fields_format input_format_for(const char *path, int *gz)
{
    size_t n = strlen(path);
    *gz = input_ends_with(path, n, ".gz");
    if (*gz) n -= 3;
    if (input_ends_with(path, n, ".csv")) return FIELDS_CSV;
    if (input_ends_with(path, n, ".jsonl") || input_ends_with(path, n, ".json")) return FIELDS_JSONL;
    return FIELDS_TEXT;
}
