/* report.c - `tally report`: percentiles, run-to-run comparison and CDF plots of results CSVs.
 *
 * Design notes.
 *
 * Everything is read and checked before anything is written: a malformed file fails the
 * command naming its line and column, and leaves DIR as it was. Then the CSV files are written
 * (each atomically), the tables printed, and only then are the plots drawn, so a machine
 * without gnuplot still gets the numbers.
 *
 * Percentiles are nearest-rank (the value at 1-based rank ceil(p/100 * n) of the sorted values):
 * always a time that was actually measured, and the same definition a reader can check by hand
 * on a sorted column. The rank is computed in integers, so p90 of 10 values is rank 9, not a
 * floating-point 9.000000001 rounded up to 10.
 *
 * Plots. gnuplot runs as a child with the script on its stdin and DIR as its working directory,
 * so the script names only files this module generated (cdf_data_<plot>_<k>.dat,
 * cdf_<plot>.png): no user path is ever spliced into it. The one user text in the script, a
 * legend title (a file's name), goes into a single-quoted gnuplot string, where only the quote
 * itself is special (doubled); control characters are replaced, and titles are drawn
 * `noenhanced` so that _ ^ @ & { } print as themselves. The data files are removed afterwards.
 */
#include "cli/report.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/opts.h"
#include "common/fsutil.h"
#include "common/util.h"

extern char **environ;

/* ---- Settings table ------------------------------------------------------------------------ */

static const char *report_o_dir, *report_o_gnuplot, *report_o_no_plots;

static const cli_opt report_opts[] = {
    {"output", 'o', "DIR", NULL, NULL, "directory for the report (created if missing; required)", &report_o_dir},
    {"gnuplot", 0, "PROGRAM", "TALLY_GNUPLOT", "gnuplot",
     "the gnuplot that draws the CDF plots (Debian package gnuplot-nox)", &report_o_gnuplot},
    {"no-plots", 0, NULL, NULL, NULL, "write the CSV files only, without gnuplot (removes older plots)",
     &report_o_no_plots},
};
#define REPORT_NOPTS (sizeof report_opts / sizeof report_opts[0])

static const char report_usage[] =
    "usage: tally report FILE.csv [FILE.csv...] -o DIR\n"
    "\n"
    "Compares the iteration times of runs, as written by --results FILE.csv: a header naming at\n"
    "least total_ms, map_ms and reduce_ms (slowest_attempt_ms is used when present; columns are\n"
    "found by name, others are ignored), then one row per iteration, times in whole milliseconds.\n"
    "The first FILE is the baseline. DIR gets:\n"
    "  percentiles.csv   file,measure,n,avg,p50,p90,p95,p99,max: a row per FILE and measure\n"
    "  comparison.csv    (two or more FILEs) measure,stat,BASE,NAME,improvement_NAME_%,...: a row\n"
    "                    per measure and stat; improvement = (BASE - NAME) / BASE x 100, positive\n"
    "                    when NAME is faster, empty when BASE is 0\n"
    "  cdf_total.png cdf_map.png cdf_reduce.png (and .svg): the empirical CDF of each FILE,\n"
    "                    drawn by gnuplot (its data files are removed afterwards)\n"
    "and the same tables are printed. Percentiles are nearest-rank: the p-th percentile of n\n"
    "values is the one at rank ceil(p/100 x n) of them sorted ascending (1-based), so it is\n"
    "always a measured time, never interpolated. avg and improvements have 1 decimal, rounded\n"
    "half away from zero. A FILE is named by its base name (by its path as given when two base\n"
    "names are equal). Exit status: 0 done, 1 a malformed FILE (the message names the line and\n"
    "column) or gnuplot missing or failed (the CSV files are written), 2 a usage error (also a\n"
    "FILE that cannot be read or a DIR that cannot be created).";

/* ---- Measures and statistics ----------------------------------------------------------------- */

static const struct report_measure {
    const char *column;
    int required;
    const char *plot; /* stem of the plot files (cdf_<plot>.png), or NULL: not plotted */
    const char *what; /* for the plot's title */
} report_measures[] = {
    {"total_ms", 1, "total", "total time per iteration"},
    {"map_ms", 1, "map", "map phase per iteration"},
    {"reduce_ms", 1, "reduce", "reduce phase per iteration"},
    {"slowest_attempt_ms", 0, NULL, NULL},
};
#define REPORT_NMEASURES (sizeof report_measures / sizeof report_measures[0])

/* The stats of a measure, in the order of the CSV columns and of comparison.csv's rows. */
static const unsigned report_pcts[] = {50, 90, 95, 99};
#define REPORT_NPCTS (sizeof report_pcts / sizeof report_pcts[0])
static const char *const report_stat_names[] = {"avg", "p50", "p90", "p95", "p99", "max"};
#define REPORT_NSTATS (sizeof report_stat_names / sizeof report_stat_names[0])

struct report_series {
    int present;   /* the file has this column */
    uint64_t *v;   /* one value per row; sorted ascending once the file is read */
    size_t n, cap;
    double avg;
};

struct report_file {
    const char *path; /* borrowed from argv */
    const char *name; /* its base name, or path when base names collide (borrowed) */
    struct report_series m[REPORT_NMEASURES];
};

size_t report_rank(size_t n, unsigned p)
{
    size_t r = (n * p + 99) / 100;
    return r ? r : 1;
}

uint64_t report_percentile(const uint64_t *sorted, size_t n, unsigned p)
{
    return sorted[report_rank(n, p) - 1];
}

/* Stat k (an index into report_stat_names) of a read series. */
static double report_stat(const struct report_series *s, size_t k)
{
    if (k == 0) return s->avg;
    if (k == REPORT_NSTATS - 1) return (double)s->v[s->n - 1];
    return (double)report_percentile(s->v, s->n, report_pcts[k - 1]);
}

/* Formats x with one decimal, rounded half away from zero: printf alone rounds half to even,
 * printing 0.25 as 0.2 where a spreadsheet (and a reader doing it by hand) says 0.3. */
static void report_fmt1(char *out, size_t size, double x)
{
    double r = round(x * 10.0);
    if (r == 0) r = 0; /* no "-0.0" */
    snprintf(out, size, "%.1f", r / 10.0);
}

/* Stat k of s as text: avg with one decimal, the others as the integers they are. */
static void report_fmt_stat(char *out, size_t size, const struct report_series *s, size_t k)
{
    if (k == 0)
        report_fmt1(out, size, s->avg);
    else
        snprintf(out, size, "%.0f", report_stat(s, k));
}

/* The improvement of `other` over `base` in %, or 0 (empty text) when it is undefined. */
static int report_improvement(char *out, size_t size, double base, double other)
{
    out[0] = 0;
    if (base == 0) return 0;
    report_fmt1(out, size, (base - other) / base * 100.0);
    return 1;
}

static int report_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* ---- Reading a results file ------------------------------------------------------------------ */

/* One line's fields, reused from line to line: the texts live in `store`, NUL-terminated. */
struct report_fields {
    char *store;
    size_t store_cap;
    size_t *at; /* offset of each field in store */
    size_t n, at_cap;
};

/* Splits a line (terminator removed) into fields by the RFC 4180 subset data/fields.c reads: a
 * field may be enclosed in double quotes, inside which commas are literal and "" is one quote.
 * A results file is read line by line, so a quoted field cannot hold a newline. Returns 0, or
 * -EINVAL with `why` and the 1-based column where it went wrong. */
static int report_split(const char *line, size_t len, struct report_fields *f, const char **why, size_t *col)
{
    /* Each field's text plus its NUL never takes more room than the line itself plus one. */
    if (f->store_cap < len + 1) {
        f->store_cap = len + 1;
        f->store = xrealloc(f->store, f->store_cap);
    }
    size_t i = 0, o = 0;
    f->n = 0;
    for (;;) {
        if (f->n == f->at_cap) {
            f->at_cap = f->at_cap ? 2 * f->at_cap : 16;
            f->at = xrealloc(f->at, f->at_cap * sizeof *f->at);
        }
        f->at[f->n++] = o;
        if (i < len && line[i] == '"') {
            for (i++;; i++) {
                if (i >= len) {
                    *why = "a quote that is never closed";
                    *col = f->n;
                    return -EINVAL;
                }
                if (line[i] == '"') {
                    if (i + 1 < len && line[i + 1] == '"') {
                        f->store[o++] = '"';
                        i++;
                        continue;
                    }
                    i++;
                    break;
                }
                f->store[o++] = line[i];
            }
            if (i < len && line[i] != ',') {
                *why = "text after a closing quote";
                *col = f->n;
                return -EINVAL;
            }
        } else {
            while (i < len && line[i] != ',') f->store[o++] = line[i++];
        }
        f->store[o++] = 0;
        if (i >= len) return 0;
        i++; /* the comma */
    }
}

static const char *report_field(const struct report_fields *f, size_t k) { return f->store + f->at[k]; }

/* Parses a time: digits only, no sign, no decimals, within uint64_t. Returns NULL or why not. */
static const char *report_parse_ms(const char *s, uint64_t *out)
{
    if (!*s) return "empty";
    if (s[0] == '-' && s[1] >= '0' && s[1] <= '9') return "negative";
    uint64_t v = 0;
    for (const char *c = s; *c; c++) {
        if (*c < '0' || *c > '9') return "not a whole number of milliseconds";
        unsigned d = (unsigned)(*c - '0');
        if (v > (UINT64_MAX - d) / 10) return "too large";
        v = v * 10 + d;
    }
    *out = v;
    return NULL;
}

/* Appends the header's column names to b, for a message saying what the file does have. */
static void report_list_columns(struct buf *b, const struct report_fields *f)
{
    for (size_t k = 0; k < f->n; k++) buf_appendf(b, "%s'%s'", k ? ", " : "", report_field(f, k));
}

/* Reads and checks one results file into r (r->path set, the rest zero). Returns 0; -ENOENT
 * (or another errno) when it cannot be read, a usage error; -EINVAL for malformed contents.
 * The message names the file and, for contents, the line and column. */
static int report_read(struct report_file *r, struct err *e)
{
    FILE *fp = fopen(r->path, "r");
    if (!fp) return err_set(e, -errno, "cannot open %s: %s", r->path, strerror(errno));
    struct report_fields f = {0};
    struct buf cols = {0};
    char *line = NULL;
    size_t cap = 0, lineno = 0, rows = 0, nfields = 0;
    size_t col[REPORT_NMEASURES];
    int rc = 0, header = 0;
    ssize_t got;
    while ((got = getline(&line, &cap, fp)) >= 0) {
        lineno++;
        size_t len = (size_t)got;
        if (len && line[len - 1] == '\n') len--;
        if (len && line[len - 1] == '\r') len--;
        const char *p = line;
        /* A byte-order mark, as spreadsheets save UTF-8 CSV, is not part of the first name. */
        if (lineno == 1 && len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
            p += 3;
            len -= 3;
        }
        if (len == 0) continue; /* a blank line, e.g. at the end of a hand-edited file */
        const char *why;
        size_t at;
        if (memchr(p, 0, len)) {
            rc = err_set(e, -EINVAL, "%s: line %zu: a NUL byte (not a CSV text file?)", r->path, lineno);
            goto out;
        }
        if (report_split(p, len, &f, &why, &at) != 0) {
            rc = err_set(e, -EINVAL, "%s: line %zu: field %zu: %s", r->path, lineno, at, why);
            goto out;
        }
        if (!header) {
            header = 1;
            nfields = f.n;
            for (size_t m = 0; m < REPORT_NMEASURES; m++) {
                col[m] = SIZE_MAX;
                for (size_t k = 0; k < f.n; k++) {
                    if (strcmp(report_field(&f, k), report_measures[m].column) != 0) continue;
                    if (col[m] != SIZE_MAX) {
                        rc = err_set(e, -EINVAL, "%s: line %zu: the header names column %s twice", r->path,
                                     lineno, report_measures[m].column);
                        goto out;
                    }
                    col[m] = k;
                }
                r->m[m].present = col[m] != SIZE_MAX;
                if (report_measures[m].required && !r->m[m].present) {
                    report_list_columns(&cols, &f);
                    rc = err_set(e, -EINVAL,
                                 "%s: line %zu: the header has no column %s (a results file needs total_ms, "
                                 "map_ms and reduce_ms; this one has %.600s)",
                                 r->path, lineno, report_measures[m].column, cols.data);
                    goto out;
                }
            }
            continue;
        }
        if (f.n != nfields) {
            rc = err_set(e, -EINVAL, "%s: line %zu: %zu fields, but the header has %zu", r->path, lineno, f.n,
                         nfields);
            goto out;
        }
        for (size_t m = 0; m < REPORT_NMEASURES; m++) {
            struct report_series *s = &r->m[m];
            if (!s->present) continue;
            uint64_t v;
            const char *val = report_field(&f, col[m]);
            if ((why = report_parse_ms(val, &v)) != NULL) {
                rc = err_set(e, -EINVAL, "%s: line %zu: column %s: '%.60s%s' is %s", r->path, lineno,
                             report_measures[m].column, val, strlen(val) > 60 ? "..." : "", why);
                goto out;
            }
            if (s->n == s->cap) {
                s->cap = s->cap ? 2 * s->cap : 64;
                s->v = xrealloc(s->v, s->cap * sizeof *s->v);
            }
            s->v[s->n++] = v;
        }
        rows++;
    }
    if (ferror(fp)) {
        rc = err_set(e, -errno, "cannot read %s: %s", r->path, strerror(errno));
        goto out;
    }
    if (!header) {
        rc = err_set(e, -EINVAL, "%s: line %zu: the file is empty (expected a header naming total_ms, map_ms, "
                     "reduce_ms)", r->path, lineno + 1);
        goto out;
    }
    if (rows == 0) {
        rc = err_set(e, -EINVAL, "%s: line %zu: a header but no rows after it", r->path, lineno);
        goto out;
    }
    for (size_t m = 0; m < REPORT_NMEASURES; m++) {
        struct report_series *s = &r->m[m];
        if (!s->present) continue;
        qsort(s->v, s->n, sizeof *s->v, report_cmp_u64);
        /* Summed in long double: exact for any realistic total, and no uint64_t overflow. */
        long double sum = 0;
        for (size_t k = 0; k < s->n; k++) sum += (long double)s->v[k];
        s->avg = (double)(sum / (long double)s->n);
    }
out:
    free(line);
    free(f.store);
    free(f.at);
    buf_free(&cols);
    fclose(fp);
    return rc;
}

static void report_file_free(struct report_file *r)
{
    for (size_t m = 0; m < REPORT_NMEASURES; m++) free(r->m[m].v);
}

/* Names each file by its base name, or by its path as given if two base names are equal (two
 * runs' results/latest.csv), so that columns, rows and legends are never ambiguous. */
static void report_name_files(struct report_file *files, size_t n)
{
    int clash = 0;
    for (size_t i = 0; i < n; i++) {
        const char *slash = strrchr(files[i].path, '/');
        files[i].name = slash && slash[1] ? slash + 1 : files[i].path;
        for (size_t j = 0; j < i; j++) clash |= strcmp(files[i].name, files[j].name) == 0;
    }
    if (clash)
        for (size_t i = 0; i < n; i++) files[i].name = files[i].path;
}

/* ---- The CSV files ----------------------------------------------------------------------------- */

static void report_percentiles_csv(struct buf *b, const struct report_file *files, size_t n)
{
    buf_appendf(b, "file,measure,n");
    for (size_t k = 0; k < REPORT_NSTATS; k++) buf_appendf(b, ",%s", report_stat_names[k]);
    buf_putc(b, '\n');
    for (size_t i = 0; i < n; i++) {
        for (size_t m = 0; m < REPORT_NMEASURES; m++) {
            const struct report_series *s = &files[i].m[m];
            if (!s->present) continue;
            buf_append_csv_field(b, files[i].name);
            buf_appendf(b, ",%s,%zu", report_measures[m].column, s->n);
            for (size_t k = 0; k < REPORT_NSTATS; k++) {
                char t[64];
                report_fmt_stat(t, sizeof t, s, k);
                buf_appendf(b, ",%s", t);
            }
            buf_putc(b, '\n');
        }
    }
}

static void report_comparison_csv(struct buf *b, const struct report_file *files, size_t n)
{
    buf_appendf(b, "measure,stat,");
    buf_append_csv_field(b, files[0].name);
    for (size_t i = 1; i < n; i++) {
        char *imp = xasprintf("improvement_%s_%%", files[i].name);
        buf_putc(b, ',');
        buf_append_csv_field(b, files[i].name);
        buf_putc(b, ',');
        buf_append_csv_field(b, imp);
        free(imp);
    }
    buf_putc(b, '\n');
    for (size_t m = 0; m < REPORT_NMEASURES; m++) {
        const struct report_series *base = &files[0].m[m];
        if (!base->present) continue; /* nothing to compare against */
        for (size_t k = 0; k < REPORT_NSTATS; k++) {
            char t[64];
            report_fmt_stat(t, sizeof t, base, k);
            buf_appendf(b, "%s,%s,%s", report_measures[m].column, report_stat_names[k], t);
            for (size_t i = 1; i < n; i++) {
                const struct report_series *s = &files[i].m[m];
                char imp[64] = "";
                t[0] = 0;
                if (s->present) {
                    report_fmt_stat(t, sizeof t, s, k);
                    report_improvement(imp, sizeof imp, report_stat(base, k), report_stat(s, k));
                }
                buf_appendf(b, ",%s,%s", t, imp);
            }
            buf_putc(b, '\n');
        }
    }
}

/* ---- The tables on stdout ------------------------------------------------------------------- */

/* A table of text cells printed with aligned columns: the first `left` columns flush left
 * (names), the others flush right (numbers). */
struct report_table {
    size_t ncols, left;
    char **cells; /* row-major, malloc'd */
    size_t n, cap;
};

static void report_cell(struct report_table *t, const char *s)
{
    if (t->n == t->cap) {
        t->cap = t->cap ? 2 * t->cap : 64;
        t->cells = xrealloc(t->cells, t->cap * sizeof *t->cells);
    }
    t->cells[t->n++] = xstrdup(s);
}

/* Width on a terminal: UTF-8 continuation bytes take no column. */
static size_t report_width(const char *s)
{
    size_t w = 0;
    for (; *s; s++) w += ((unsigned char)*s & 0xc0) != 0x80;
    return w;
}

static void report_table_print(FILE *out, struct report_table *t)
{
    size_t *w = xcalloc(t->ncols, sizeof *w);
    for (size_t i = 0; i < t->n; i++) {
        size_t cw = report_width(t->cells[i]);
        if (cw > w[i % t->ncols]) w[i % t->ncols] = cw;
    }
    for (size_t i = 0; i < t->n; i++) {
        size_t c = i % t->ncols, pad = w[c] - report_width(t->cells[i]);
        int last = c == t->ncols - 1;
        if (c >= t->left) fprintf(out, "%*s", (int)pad, "");
        fputs(t->cells[i], out);
        if (c < t->left && !last) fprintf(out, "%*s", (int)pad, "");
        fputs(last ? "\n" : "  ", out);
    }
    for (size_t i = 0; i < t->n; i++) free(t->cells[i]);
    free(t->cells);
    free(w);
}

static void report_print(FILE *out, const struct report_file *files, size_t n)
{
    struct report_table t = {.ncols = 3 + REPORT_NSTATS, .left = 2};
    report_cell(&t, "file");
    report_cell(&t, "measure");
    report_cell(&t, "n");
    for (size_t k = 0; k < REPORT_NSTATS; k++) report_cell(&t, report_stat_names[k]);
    for (size_t i = 0; i < n; i++) {
        for (size_t m = 0; m < REPORT_NMEASURES; m++) {
            const struct report_series *s = &files[i].m[m];
            if (!s->present) continue;
            char c[64];
            report_cell(&t, files[i].name);
            report_cell(&t, report_measures[m].column);
            snprintf(c, sizeof c, "%zu", s->n);
            report_cell(&t, c);
            for (size_t k = 0; k < REPORT_NSTATS; k++) {
                report_fmt_stat(c, sizeof c, s, k);
                report_cell(&t, c);
            }
        }
    }
    fprintf(out, "Percentiles in ms (nearest rank: the value at rank ceil(p/100 x n), sorted ascending)\n\n");
    report_table_print(out, &t);
    if (n < 2) return;

    struct report_table c = {.ncols = 2 + 1 + 2 * (n - 1), .left = 2};
    report_cell(&c, "measure");
    report_cell(&c, "stat");
    report_cell(&c, files[0].name);
    for (size_t i = 1; i < n; i++) {
        char *h = xasprintf("vs %s", files[0].name);
        report_cell(&c, files[i].name);
        report_cell(&c, h);
        free(h);
    }
    for (size_t m = 0; m < REPORT_NMEASURES; m++) {
        const struct report_series *base = &files[0].m[m];
        if (!base->present) continue;
        for (size_t k = 0; k < REPORT_NSTATS; k++) {
            char v[64], imp[64];
            report_cell(&c, report_measures[m].column);
            report_cell(&c, report_stat_names[k]);
            report_fmt_stat(v, sizeof v, base, k);
            report_cell(&c, v);
            for (size_t i = 1; i < n; i++) {
                const struct report_series *s = &files[i].m[m];
                if (!s->present) {
                    report_cell(&c, "-");
                    report_cell(&c, "-");
                    continue;
                }
                report_fmt_stat(v, sizeof v, s, k);
                report_cell(&c, v);
                if (report_improvement(imp, sizeof imp, report_stat(base, k), report_stat(s, k))) {
                    char *p = xasprintf("%s%s%%", imp[0] == '-' ? "" : "+", imp);
                    report_cell(&c, p);
                    free(p);
                } else {
                    report_cell(&c, "-");
                }
            }
        }
    }
    fprintf(out, "\nComparison with the baseline %s (improvement = (baseline - other) / baseline; "
                 "+ is faster)\n\n", files[0].name);
    report_table_print(out, &c);
}

/* ---- Plots ---------------------------------------------------------------------------------- */

/* Appends s to the script as a single-quoted gnuplot string: there only the quote is special
 * (written twice); a control character, which would end the command, becomes '?'. */
static void report_gp_string(struct buf *b, const char *s)
{
    buf_putc(b, '\'');
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '\'') buf_putc(b, '\'');
        buf_putc(b, c < 0x20 || c == 0x7f ? '?' : (char)c);
    }
    buf_putc(b, '\'');
}

/* The data file of plotted measure m of file k, relative to DIR (malloc'd). */
static char *report_data_name(size_t m, size_t k)
{
    return xasprintf("cdf_data_%s_%zu.dat", report_measures[m].plot, k + 1);
}

/* Writes one file's empirical CDF of measure m: a point (x, fraction of values <= x) after
 * each distinct value, for gnuplot's `steps`. It starts at (lo, 0) and ends at (hi, 1), lo and
 * hi being the smallest and largest value of any file, so that every curve spans the whole
 * x axis (the CDF is 0 below a file's first value and 1 from its last). */
static int report_write_cdf(const char *dir, size_t m, size_t k, const struct report_series *s, uint64_t lo,
                            uint64_t hi, struct err *e)
{
    struct buf b = {0};
    buf_appendf(&b, "# %s: value, fraction of iterations with a value <= it\n", report_measures[m].column);
    buf_appendf(&b, "%llu 0\n", (unsigned long long)lo);
    for (size_t i = 0; i < s->n; i++)
        if (i + 1 == s->n || s->v[i + 1] != s->v[i])
            buf_appendf(&b, "%llu %.10g\n", (unsigned long long)s->v[i], (double)(i + 1) / (double)s->n);
    if (hi > s->v[s->n - 1]) buf_appendf(&b, "%llu 1\n", (unsigned long long)hi);
    char *name = report_data_name(m, k);
    char *path = xasprintf("%s/%s", dir, name);
    int rc = fs_write_atomic(path, b.data, b.len, e);
    free(path);
    free(name);
    buf_free(&b);
    return rc;
}

static void report_plot_script(struct buf *b, const struct report_file *files, size_t n)
{
    static const char *const terms[][2] = {
        {"pngcairo size 900,600 noenhanced font 'Sans,11'", "png"},
        {"svg size 900,600 noenhanced font 'Sans,11'", "svg"},
    };
    /* Times as plain numbers (1200000, not 1.2e+06); names are UTF-8 more often than not. */
    buf_appendf(b, "set encoding utf8\nset format x '%%.10g'\n"
                   "set xlabel 'time (ms)'\nset ylabel 'fraction of iterations'\n"
                   "set grid\nset key right bottom box opaque\n"
                   /* A little room around the data: the first and last steps (and the line at
                    * 1) would otherwise run along the border, hidden. xfix: no widening to the
                    * next tic, which would start a time axis at a negative tic. */
                   "set yrange [-0.02:1.02]\nset ytics 0, 0.1, 1\n"
                   "set autoscale xfix\nset offsets graph 0.02, graph 0.02, 0, 0\n");
    for (size_t m = 0; m < REPORT_NMEASURES; m++) {
        if (!report_measures[m].plot) continue;
        buf_appendf(b, "set title 'Empirical CDF of %s (%s)'\n", report_measures[m].column,
                    report_measures[m].what);
        for (size_t t = 0; t < 2; t++) {
            buf_appendf(b, "set terminal %s\nset output 'cdf_%s.%s'\n", terms[t][0], report_measures[m].plot,
                        terms[t][1]);
            buf_appendf(b, "plot");
            for (size_t k = 0; k < n; k++) {
                char *data = report_data_name(m, k);
                buf_appendf(b, "%s '%s' using 1:2 with steps linewidth 2 title ", k ? ", \\\n    " : " ", data);
                report_gp_string(b, files[k].name);
                free(data);
            }
            buf_appendf(b, "\nset output\n");
        }
    }
}

/* The first lines of what gnuplot printed (fd, rewound), for an error message; malloc'd. */
static char *report_child_output(int fd)
{
    char text[600];
    ssize_t got = pread(fd, text, sizeof text - 1, 0);
    if (got <= 0) return xstrdup("it printed nothing");
    text[got] = 0;
    struct buf b = {0};
    buf_appendf(&b, "it said: ");
    for (char *p = text; *p; p++) {
        if (*p == '\n') {
            while (p[1] == '\n' || p[1] == ' ') p++;
            if (p[1]) buf_appendf(&b, " / ");
        } else {
            buf_putc(&b, *p);
        }
    }
    return b.data;
}

/* Runs gnuplot in dir with the script on its stdin. Returns 0, -ENOENT when there is no
 * gnuplot, or another negative code; messages name the program and the package. */
static int report_gnuplot(const char *dir, const char *gnuplot, const struct buf *script, struct err *e)
{
    /* Its output goes to an unlinked file: nothing to drain while we write the script, and
     * read back only if it fails (on success it prints at most warnings, e.g. an empty x range
     * when every iteration took the same time). */
    char tmpl[] = "/tmp/tally-report-gnuplot.XXXXXX";
    const char *tmp = getenv("TMPDIR");
    char *outpath = tmp && *tmp ? xasprintf("%s/tally-report-gnuplot.XXXXXX", tmp) : xstrdup(tmpl);
    int outfd = mkstemp(outpath);
    if (outfd < 0) {
        int rc = err_set(e, -errno, "cannot create %s: %s", outpath, strerror(errno));
        free(outpath);
        return rc;
    }
    unlink(outpath);
    free(outpath);
    int in[2];
    if (pipe2(in, O_CLOEXEC) != 0) {
        int rc = err_set(e, -errno, "pipe: %s", strerror(errno));
        close(outfd);
        return rc;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, outfd, 1);
    posix_spawn_file_actions_adddup2(&fa, outfd, 2);
    posix_spawn_file_actions_addchdir_np(&fa, dir);
    /* -d: no ~/.gnuplot or system gnuplotrc, so every machine draws the same plots. */
    char *argv[] = {(char *)gnuplot, "-d", NULL};
    pid_t pid;
    int k = posix_spawnp(&pid, gnuplot, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    int rc = 0;
    if (k != 0) {
        close(in[1]);
        close(outfd);
        if (k == ENOENT)
            return err_set(e, -ENOENT,
                           "cannot draw the CDF plots: %s not found (install Debian's gnuplot-nox package: "
                           "apt-get install gnuplot-nox; or point --gnuplot at one, or skip the plots with "
                           "--no-plots)",
                           gnuplot);
        return err_set(e, -k, "cannot draw the CDF plots: cannot run %s: %s", gnuplot, strerror(k));
    }
    /* A gnuplot that dies early closes the pipe: EPIPE (SIGPIPE is ignored), then its status
     * below says what happened. */
    for (size_t done = 0; done < script->len;) {
        ssize_t w = write(in[1], script->data + done, script->len - done);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) break;
        done += (size_t)w;
    }
    close(in[1]);
    int st;
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            rc = err_set(e, -errno, "waiting for %s: %s", gnuplot, strerror(errno));
            goto out;
        }
    }
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        char *said = report_child_output(outfd);
        if (WIFEXITED(st))
            rc = err_set(e, -EIO, "%s failed drawing the CDF plots in %s (exit status %d); %s", gnuplot, dir,
                         WEXITSTATUS(st), said);
        else
            rc = err_set(e, -EIO, "%s failed drawing the CDF plots in %s (killed by signal %d); %s", gnuplot,
                         dir, WIFSIGNALED(st) ? WTERMSIG(st) : 0, said);
        free(said);
    }
out:
    close(outfd);
    return rc;
}

/* Removes the plots of an earlier report from dir: a plot left beside new CSV files (after
 * --no-plots or a failed gnuplot) would show other data. */
static void report_remove_plots(const char *dir)
{
    for (size_t m = 0; m < REPORT_NMEASURES; m++) {
        if (!report_measures[m].plot) continue;
        for (const char *ext = "png";; ext = "svg") {
            char *p = xasprintf("%s/cdf_%s.%s", dir, report_measures[m].plot, ext);
            unlink(p);
            free(p);
            if (strcmp(ext, "svg") == 0) break;
        }
    }
}

/* Draws cdf_<plot>.png and .svg for every plotted measure in dir (earlier ones removed first). */
static int report_plots(const char *dir, const char *gnuplot, const struct report_file *files, size_t n,
                        struct err *e)
{
    int rc = 0;
    struct buf script = {0};
    report_remove_plots(dir);
    for (size_t m = 0; m < REPORT_NMEASURES; m++) {
        if (!report_measures[m].plot) continue;
        uint64_t lo = UINT64_MAX, hi = 0;
        for (size_t k = 0; k < n; k++) {
            const struct report_series *s = &files[k].m[m];
            if (s->v[0] < lo) lo = s->v[0];
            if (s->v[s->n - 1] > hi) hi = s->v[s->n - 1];
        }
        for (size_t k = 0; k < n && rc == 0; k++) rc = report_write_cdf(dir, m, k, &files[k].m[m], lo, hi, e);
    }
    if (rc == 0) {
        report_plot_script(&script, files, n);
        rc = report_gnuplot(dir, gnuplot, &script, e);
    }
    for (size_t m = 0; m < REPORT_NMEASURES; m++) {
        if (!report_measures[m].plot) continue;
        for (size_t k = 0; k < n; k++) {
            char *name = report_data_name(m, k);
            char *p = xasprintf("%s/%s", dir, name);
            unlink(p);
            free(p);
            free(name);
        }
        /* gnuplot's exit status is 0 even when, e.g., a font problem left a plot unwritten. */
        for (const char *ext = "png"; rc == 0; ext = "svg") {
            char *p = xasprintf("%s/cdf_%s.%s", dir, report_measures[m].plot, ext);
            struct stat st;
            if (stat(p, &st) != 0 || st.st_size == 0)
                rc = err_set(e, -EIO, "%s exited without writing %s", gnuplot, p);
            free(p);
            if (strcmp(ext, "svg") == 0) break;
        }
    }
    buf_free(&script);
    return rc;
}

/* ---- The command -------------------------------------------------------------------------- */

static int report_write(const char *dir, const char *name, struct buf *b, struct err *e)
{
    char *path = xasprintf("%s/%s", dir, name);
    int rc = fs_write_atomic(path, b->data, b->len, e);
    free(path);
    buf_free(b);
    return rc;
}

int report_main(int argc, char **argv)
{
    char **pos = NULL;
    size_t npos = 0;
    struct err e = {0};
    struct report_file *files = NULL;
    int code = EXITCODE_OK;
    int rc = cli_opts_parse(report_opts, REPORT_NOPTS, argc, argv, &pos, &npos, &e);
    if (rc == 1) {
        cli_opts_usage(stdout, report_usage, report_opts, REPORT_NOPTS);
        goto done;
    }
    if (rc == 0 && npos == 0) rc = err_set(&e, -EINVAL, "report needs at least one results FILE.csv (see --help)");
    if (rc == 0 && (!report_o_dir || !*report_o_dir))
        rc = err_set(&e, -EINVAL, "report needs -o DIR, the directory for the report (see --help)");
    if (rc) {
        fprintf(stderr, "tally report: %s\n", e.msg);
        code = EXITCODE_USAGE;
        goto done;
    }
    /* A gnuplot that exits before reading its whole script must not kill us with SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);

    files = xcalloc(npos, sizeof *files);
    for (size_t i = 0; i < npos; i++) {
        files[i].path = pos[i];
        if ((rc = report_read(&files[i], &e)) != 0) {
            fprintf(stderr, "tally report: %s\n", e.msg);
            code = rc == -EINVAL ? EXITCODE_FAILED : EXITCODE_USAGE;
            goto done;
        }
    }
    report_name_files(files, npos);

    const char *dir = report_o_dir;
    if (fs_mkdirs(dir, &e) != 0) {
        fprintf(stderr, "tally report: cannot create the report directory: %s\n", e.msg);
        code = EXITCODE_USAGE;
        goto done;
    }
    struct buf b = {0};
    report_percentiles_csv(&b, files, npos);
    rc = report_write(dir, "percentiles.csv", &b, &e);
    if (rc == 0 && npos >= 2) {
        report_comparison_csv(&b, files, npos);
        rc = report_write(dir, "comparison.csv", &b, &e);
    } else if (rc == 0) {
        /* One file compares with nothing: a comparison.csv left by an earlier report would
         * describe other runs. */
        char *p = xasprintf("%s/comparison.csv", dir);
        unlink(p);
        free(p);
    }
    if (rc) {
        fprintf(stderr, "tally report: %s\n", e.msg);
        code = EXITCODE_FAILED;
        goto done;
    }
    report_print(stdout, files, npos);
    fflush(stdout);
    if (report_o_no_plots) {
        report_remove_plots(dir);
    } else if (report_plots(dir, report_o_gnuplot, files, npos, &e) != 0) {
        fprintf(stderr, "tally report: %s\ntally report: the CSV files are written in %s\n", e.msg, dir);
        code = EXITCODE_FAILED;
    }
done:
    for (size_t i = 0; files && i < npos; i++) report_file_free(&files[i]);
    free(files);
    free(pos);
    return code;
}
