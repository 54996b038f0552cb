/* task.c - runs map and reduce attempts: the data path from input records to part files. */
#include "exec/task.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "data/fields.h"
#include "data/ifile.h"
#include "data/mapbuf.h"
#include "data/merge.h"
#include "data/reader.h"
#include "exec/ctx.h"

/* Runs merged at once at most; more runs are merged in several passes. */
#define TASK_MERGE_FANIN 64
#define TASK_OUT_BUF (256u * 1024u)

void task_result_init(task_result *r)
{
    counters_init(&r->counters);
    err_clear(&r->err);
    r->fatal = 0;
    r->skip_note[0] = '\0';
}

void task_result_free(task_result *r) { counters_free(&r->counters); }

char *task_map_output_path(const task_env *env, uint32_t index)
{
    return xasprintf("%s/map-%05u.out", env->work_dir, index);
}

static int task_int_values(const tally_job *job)
{
    return (job->flags & (TALLY_INT_VALUES | TALLY_COMBINE_SUM)) != 0;
}

/* ==== Map side ============================================================================ */

typedef struct map_state {
    const task_env *env;
    uint32_t index, attempt;
    task_result *res;
    mapbuf *mb;
    int sum_mode, int_values;
    size_t fold_size;         /* the job folds at emit time (tally_job.fold): its acc size */
    unsigned char *enc;       /* fold_encode's output buffer */
    size_t enc_cap;
    const char *rec_lo, *rec_hi; /* the record being mapped: [data, data + len + pad - 16] */
    char **runs;              /* spill files written so far */
    size_t nruns;
    uint32_t next_run;        /* names runs uniquely across merge passes */
    int spill_rc;             /* first spill failure, reported by the emit that caused it */
} map_state;

/* The combiner's emit target: one ifile writer and the partition/key of the current group. */
typedef struct combine_sink {
    ifile_writer *w;
    uint32_t part;
    const char *key;
    size_t klen;
    counters *counters;
} combine_sink;

static int task_combine_emit(tally_ctx *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    combine_sink *s = ctx->sink;
    if (klen != s->klen || memcmp(key, s->key, klen) != 0)
        return err_set(&ctx->err, -EINVAL, "combine must emit the key it was given");
    s->counters->v[CNT_COMBINE_OUTPUT_RECORDS]++;
    return ifile_writer_add(s->w, s->part, key, klen, val, vlen, &ctx->err);
}

static int task_combine_emit_int(tally_ctx *ctx, const void *key, size_t klen, int64_t val)
{
    combine_sink *s = ctx->sink;
    if (klen != s->klen || memcmp(key, s->key, klen) != 0)
        return err_set(&ctx->err, -EINVAL, "combine must emit the key it was given");
    s->counters->v[CNT_COMBINE_OUTPUT_RECORDS]++;
    return ifile_writer_add_int(s->w, s->part, key, klen, val, &ctx->err);
}

/* Counts the values the combiner pulls, for combine_input_records. */
typedef struct counting_values {
    struct tally_values base;
    tally_values *inner;
    counters *counters;
} counting_values;

static int task_counting_next(struct tally_values *it, const void **val, size_t *vlen, int64_t *ival)
{
    counting_values *cv = (counting_values *)it;
    int rc = cv->inner->next(cv->inner, val, vlen, ival);
    if (rc == 1) cv->counters->v[CNT_COMBINE_INPUT_RECORDS]++;
    if (rc < 0) it->error = rc;
    return rc;
}

/* Writes one group to `w`: through the job's combiner when it has one (and the engine is not
 * summing natively), else value by value. */
static int task_write_group(const task_env *env, ifile_writer *w, uint32_t part, const char *key,
                            size_t klen, tally_values *vals, int use_combiner, counters *c,
                            struct err *e)
{
    int rc;
    if (use_combiner) {
        combine_sink sink = {.w = w, .part = part, .key = key, .klen = klen, .counters = c};
        tally_ctx ctx;
        ctx_init(&ctx, env->job, env->state, env->spec, c);
        ctx.emit = task_combine_emit;
        ctx.emit_int = task_combine_emit_int;
        ctx.sink = &sink;
        counting_values cv = {.base = {.next = task_counting_next, .int_values = vals->int_values},
                              .inner = vals, .counters = c};
        rc = env->job->combine(&ctx, key, klen, &cv.base);
        if (rc == 0 && cv.base.error) rc = cv.base.error;
        if (rc) {
            if (ctx.err.msg[0]) *e = ctx.err;
            else err_set(e, rc, "combine failed (code %d)", rc);
            if (e->code == 0) e->code = rc < 0 ? rc : -EINVAL;
            return e->code;
        }
        return 0;
    }
    const void *v;
    size_t vl;
    int64_t iv;
    while ((rc = vals->next(vals, &v, &vl, &iv)) == 1) {
        rc = vals->int_values ? ifile_writer_add_int(w, part, key, klen, iv, e)
                              : ifile_writer_add(w, part, key, klen, v, vl, e);
        if (rc) return rc;
    }
    if (rc < 0) return err_set(e, rc, "reading values: %s", strerror(-rc));
    return 0;
}

static int task_use_combiner(const map_state *ms)
{
    return ms->env->job->combine != NULL && !ms->sum_mode && !ms->fold_size;
}

/* Fold mode's spill of one key: its accumulator, encoded by the job into the portable value. */
static int task_write_folded(map_state *ms, ifile_writer *w, uint32_t part, const char *key,
                             size_t klen, tally_values *vals, struct err *e)
{
    const tally_job *job = ms->env->job;
    const void *acc;
    size_t alen;
    int64_t iv;
    if (vals->next(vals, &acc, &alen, &iv) != 1) return 0;
    size_t n = job->fold_encode(ms->env->state, acc, ms->enc, ms->enc_cap);
    if (n > ms->enc_cap) {
        ms->enc = xrealloc(ms->enc, n);
        ms->enc_cap = n;
        n = job->fold_encode(ms->env->state, acc, ms->enc, ms->enc_cap);
        if (n > ms->enc_cap) return err_set(e, -EINVAL, "fold_encode asked for more room twice");
    }
    ms->res->counters.v[CNT_COMBINE_OUTPUT_RECORDS]++;
    return ifile_writer_add(w, part, key, klen, ms->enc, n, e);
}

/* Sorts the buffer and writes it to a new run file (or to `final_path` directly). */
static int task_spill(map_state *ms, const char *final_path)
{
    const task_env *env = ms->env;
    struct err *e = &ms->res->err;
    counters *c = &ms->res->counters;
    char *path = final_path ? xstrdup(final_path)
                            : xasprintf("%s/map-%05u.a%u.run%u", env->work_dir, ms->index,
                                        ms->attempt, ms->next_run++);
    ifile_writer *w = NULL;
    int rc = ifile_writer_open(&w, path, env->spec->reduces, ms->int_values, e);
    if (rc) {
        free(path);
        return rc;
    }
    mapbuf_sort(ms->mb);
    uint32_t part;
    const char *key;
    size_t klen;
    tally_values *vals;
    uint64_t groups = 0;
    while (mapbuf_next_group(ms->mb, &part, &key, &klen, &vals)) {
        rc = ms->fold_size ? task_write_folded(ms, w, part, key, klen, vals, e)
                           : task_write_group(env, w, part, key, klen, vals, task_use_combiner(ms), c, e);
        if (rc) break;
        if ((++groups & 1023) == 0 && env->cancel && *env->cancel) {
            rc = err_set(e, -ECANCELED, "cancelled");
            break;
        }
    }
    uint64_t written = ifile_writer_records(w);
    if (rc) {
        ifile_writer_abort(w);
    } else {
        rc = ifile_writer_close(w, e);
    }
    if (rc) {
        free(path);
        return rc;
    }
    if (ms->sum_mode) {
        c->v[CNT_COMBINE_OUTPUT_RECORDS] += (int64_t)written;
    }
    c->v[CNT_SPILLED_RECORDS] += (int64_t)written;
    mapbuf_reset(ms->mb);
    if (final_path) {
        free(path);
    } else {
        ms->runs = xrealloc(ms->runs, (ms->nruns + 1) * sizeof *ms->runs);
        ms->runs[ms->nruns++] = path;
    }
    return 0;
}

static int task_map_emit(tally_ctx *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    map_state *ms = ctx->sink;
    if (ms->int_values)
        return err_set(&ctx->err, -EINVAL, "this job declares integer values: use tally_emit_int");
    if (ms->spill_rc) return ms->spill_rc;
    ms->res->counters.v[CNT_MAP_OUTPUT_RECORDS]++;
    if (ms->fold_size) {
        if (vlen != ms->fold_size)
            return err_set(&ctx->err, -EINVAL, "this job folds: every value map emits must be %zu bytes, not %zu",
                           ms->fold_size, vlen);
        ms->res->counters.v[CNT_COMBINE_INPUT_RECORDS]++;
        int is_new, rc;
        void *acc = mapbuf_fold_slot(ms->mb, key, klen, &is_new);
        if (is_new) {
            memcpy(acc, val, vlen);
        } else if ((rc = ms->env->job->fold(ms->env->state, acc, val, vlen)) != 0) {
            if (!ctx->err.msg[0]) err_set(&ctx->err, rc, "fold failed (code %d)", rc);
            return rc;
        }
        if (!mapbuf_full(ms->mb)) return 0;
        ms->spill_rc = task_spill(ms, NULL);
        if (ms->spill_rc) ctx->err = ms->res->err;
        return ms->spill_rc;
    }
    if (mapbuf_add(ms->mb, key, klen, val, vlen)) {
        ms->spill_rc = task_spill(ms, NULL);
        if (ms->spill_rc) ctx->err = ms->res->err;
    }
    return ms->spill_rc;
}

static int task_map_emit_int(tally_ctx *ctx, const void *key, size_t klen, int64_t val)
{
    map_state *ms = ctx->sink;
    if (!ms->int_values) {
        char tmp[24];
        int n = snprintf(tmp, sizeof tmp, "%" PRId64, val);
        return task_map_emit(ctx, key, klen, tmp, (size_t)n);
    }
    if (ms->spill_rc) return ms->spill_rc;
    ms->res->counters.v[CNT_MAP_OUTPUT_RECORDS]++;
    if (ms->sum_mode) ms->res->counters.v[CNT_COMBINE_INPUT_RECORDS]++;
    if (mapbuf_add_int(ms->mb, key, klen, val)) {
        ms->spill_rc = task_spill(ms, NULL);
        if (ms->spill_rc) ctx->err = ms->res->err;
    }
    return ms->spill_rc;
}

static int task_map_emit_int_many(tally_ctx *ctx, const void *const *keys, const size_t *lens, size_t n,
                                  int64_t val)
{
    map_state *ms = ctx->sink;
    if (!ms->int_values || !ms->sum_mode) {
        for (size_t i = 0; i < n; i++) {
            int rc = task_map_emit_int(ctx, keys[i], lens[i], val);
            if (rc) return rc;
        }
        return 0;
    }
    if (ms->spill_rc) return ms->spill_rc;
    /* Keys inside the record have TALLY_RECORD_PAD readable bytes after them (cheap to check,
     * and any key from elsewhere takes the careful path). */
    int padded = 1;
    for (size_t i = 0; i < n && padded; i++) {
        const char *k = keys[i];
        padded = k >= ms->rec_lo && k + lens[i] <= ms->rec_hi;
    }
    /* One call per batch, the counters once: word count emits a line's words this way. */
    for (size_t i = 0; i < n;) {
        size_t done = mapbuf_add_int_many(ms->mb, keys + i, lens + i, n - i, val, padded);
        ms->res->counters.v[CNT_MAP_OUTPUT_RECORDS] += (int64_t)done;
        ms->res->counters.v[CNT_COMBINE_INPUT_RECORDS] += (int64_t)done;
        i += done;
        if (i < n || mapbuf_full(ms->mb)) {
            ms->spill_rc = task_spill(ms, NULL);
            if (ms->spill_rc) {
                ctx->err = ms->res->err;
                return ms->spill_rc;
            }
        }
    }
    return 0;
}

/* Merges `n` run files into `out_path`, combining equal keys across runs. */
static int task_merge_runs(map_state *ms, char **runs, size_t n, const char *out_path)
{
    const task_env *env = ms->env;
    struct err *e = &ms->res->err;
    counters *c = &ms->res->counters;
    uint32_t nparts = env->spec->reduces;
    ifile_part **idx = xcalloc(n, sizeof *idx);
    ifile_writer *w = NULL;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        uint32_t np;
        int iv;
        rc = ifile_read_index(runs[i], &idx[i], &np, &iv, e);
    }
    if (rc == 0) rc = ifile_writer_open(&w, out_path, nparts, ms->int_values, e);
    for (uint32_t p = 0; p < nparts && rc == 0; p++) {
        ifile_seg **segs = xcalloc(n, sizeof *segs);
        size_t nseg = 0;
        for (size_t i = 0; i < n && rc == 0; i++) {
            if (idx[i][p].records == 0) continue;
            rc = ifile_seg_open(&segs[nseg], runs[i], idx[i][p].offset, idx[i][p].length, idx[i][p].crc,
                                1, ms->int_values, e);
            if (rc == 0) nseg++;
        }
        merge *m = merge_new(segs, nseg, ms->int_values);
        free(segs);
        const char *key;
        size_t klen;
        tally_values *vals;
        int use_comb = env->job->combine != NULL && !ms->sum_mode;
        while (rc == 0 && (rc = merge_next_group(m, &key, &klen, &vals, e)) == 1) {
            if (ms->sum_mode) {
                /* Native sum across runs: the combiner of TALLY_COMBINE_SUM jobs. */
                int64_t sum = 0, iv;
                const void *v;
                size_t vl;
                int k;
                while ((k = vals->next(vals, &v, &vl, &iv)) == 1) {
                    sum = (int64_t)((uint64_t)sum + (uint64_t)iv);
                    c->v[CNT_COMBINE_INPUT_RECORDS]++;
                }
                if (k < 0) {
                    rc = k;
                    *e = *merge_error(m);
                    break;
                }
                c->v[CNT_COMBINE_OUTPUT_RECORDS]++;
                rc = ifile_writer_add_int(w, p, key, klen, sum, e);
            } else {
                rc = task_write_group(env, w, p, key, klen, vals, use_comb, c, e);
                if (rc == 0 && vals->error) {
                    rc = vals->error;
                    *e = *merge_error(m);
                }
            }
            if (rc == 0 && env->cancel && *env->cancel) rc = err_set(e, -ECANCELED, "cancelled");
        }
        merge_free(m);
    }
    if (w) {
        uint64_t written = ifile_writer_records(w);
        if (rc) ifile_writer_abort(w);
        else rc = ifile_writer_close(w, e);
        if (rc == 0) c->v[CNT_SPILLED_RECORDS] += (int64_t)written;
    }
    for (size_t i = 0; i < n; i++) free(idx[i]);
    free(idx);
    return rc;
}

/* Merges all runs into `final_path`, in passes of at most TASK_MERGE_FANIN runs. */
static int task_merge_all(map_state *ms, const char *final_path)
{
    int rc = 0;
    while (ms->nruns > TASK_MERGE_FANIN && rc == 0) {
        char *path = xasprintf("%s/map-%05u.a%u.run%u", ms->env->work_dir, ms->index, ms->attempt,
                               ms->next_run++);
        rc = task_merge_runs(ms, ms->runs, TASK_MERGE_FANIN, path);
        for (size_t i = 0; i < TASK_MERGE_FANIN; i++) {
            unlink(ms->runs[i]);
            free(ms->runs[i]);
        }
        memmove(ms->runs, ms->runs + TASK_MERGE_FANIN, (ms->nruns - TASK_MERGE_FANIN) * sizeof *ms->runs);
        ms->nruns -= TASK_MERGE_FANIN;
        ms->runs[ms->nruns++] = path;
    }
    if (rc == 0) rc = task_merge_runs(ms, ms->runs, ms->nruns, final_path);
    return rc;
}

static int task_should_skip(const task_env *env, const char *path, uint64_t off)
{
    for (size_t i = 0; i < env->nskip; i++)
        if (env->skip[i].offset == off && strcmp(env->skip[i].path, path) == 0) return 1;
    return 0;
}

static int task_map_split(map_state *ms, const input_split *split, tally_ctx *ctx,
                          _Atomic uint64_t *progress)
{
    const task_env *env = ms->env;
    struct err *e = &ms->res->err;
    counters *c = &ms->res->counters;
    fields_cache *fc = NULL;
    uint64_t done_bytes = 0, split_bytes = 0;
    int rc = 0;
    for (size_t s = 0; s < split->nsegs; s++) split_bytes += split->segs[s].end - split->segs[s].start;
    for (size_t s = 0; s < split->nsegs && rc == 0; s++) {
        const input_segment *seg = &split->segs[s];
        const input_file *f = &env->inputs->files[seg->file];
        reader *r = NULL;
        rc = reader_open(&r, f, seg, env->spec->max_record, e);
        if (rc) {
            /* -EBADMSG: the input itself is bad (a damaged .gz); another attempt cannot help. */
            ms->res->fatal = rc == -ENOENT || rc == -EACCES || rc == -EBADMSG;
            break;
        }
        if (f->format != FIELDS_TEXT && !fc) fc = fields_cache_new();
        tally_record rec = {.file = f->name, .fields = f->format != FIELDS_TEXT ? fc : NULL};
        const char *data;
        size_t len;
        uint64_t off, n = 0;
        int k;
        while ((k = reader_next(r, &data, &len, &off, e)) > 0) {
            if (k == READER_TOO_LONG) {
                static const char empty[TALLY_RECORD_PAD + 1];
                tally_record big = {.data = empty, .len = 0, .file = f->name, .offset = off};
                rc = tally_skip(ctx, &big, "record longer than --max-record");
                if (rc) break;
                continue;
            }
            c->v[CNT_INPUT_RECORDS]++;
            rec.data = data;
            rec.len = len;
            rec.offset = off;
            if (fc) {
                /* Blank lines in CSV and JSON Lines are not records. */
                if (len == 0) {
                    c->v[CNT_INPUT_RECORDS]--;
                    continue;
                }
                fields_cache_reset(fc, f->format, reader_header(r), data, len);
            }
            if (env->nskip && task_should_skip(env, f->name, off)) {
                rc = tally_skip(ctx, &rec, "skipped: crashed the job in earlier attempts");
                if (rc) break;
                continue;
            }
            if (env->live) {
                env->live->file = seg->file;
                env->live->offset = off;
            }
            ms->rec_lo = data;
            ms->rec_hi = data + len + TALLY_RECORD_PAD - 16;
            rc = env->job->map(ctx, &rec);
            if (env->live) env->live->file = UINT32_MAX;
            if (rc) break;
            if ((++n & 255) == 0) {
                if (progress) atomic_store(progress, done_bytes + reader_progress(r));
                if (env->live)
                    task_live_publish(env->live, split_bytes ? (double)(done_bytes + reader_progress(r)) / (double)split_bytes : 0, c);
                task_pace_check(env->pace, 0);
                if (env->cancel && *env->cancel) {
                    rc = err_set(e, -ECANCELED, "cancelled");
                    break;
                }
            }
        }
        if (k < 0 && rc == 0) {
            rc = k;
            /* -EBADMSG from the reader: corrupt input (a truncated or damaged .gz, a CSV split
             * edge inside a misjudged quoted field); retrying cannot help. */
            if (k == -EBADMSG) ms->res->fatal = 1;
        } else if (rc && rc != -ECANCELED && e->code != rc) {
            if (ctx->err.msg[0]) *e = ctx->err;
            else err_set(e, rc, "%s: offset %llu: map failed (code %d)", f->name,
                         (unsigned long long)rec.offset, rc);
            /* --strict failures are about the data: another attempt would fail the same way. */
            if (ctx->strict && rc == -EBADMSG) ms->res->fatal = 1;
        }
        done_bytes += seg->end - seg->start;
        if (progress) atomic_store(progress, done_bytes);
        reader_close(r);
    }
    fields_cache_free(fc);
    return rc;
}

int task_run_map(const task_env *env, const input_split *split, uint32_t index, uint32_t attempt,
                 _Atomic uint64_t *progress, mapbuf **reuse, task_result *res)
{
    const tally_job *job = env->job;
    map_state ms = {.env = env, .index = index, .attempt = attempt, .res = res};
    ms.sum_mode = (job->flags & TALLY_COMBINE_SUM) != 0;
    ms.int_values = task_int_values(job);
    if (job->fold) {
        ms.fold_size = job->fold_size(env->state);
        if (ms.fold_size == 0)
            return err_set(&res->err, -EINVAL, "the job's fold_size() is 0: a fold accumulator needs at least one byte");
        ms.enc_cap = 4 * ms.fold_size + 64;
        ms.enc = xmalloc(ms.enc_cap);
    }
    if (reuse && *reuse &&
        mapbuf_compatible(*reuse, env->spec->reduces, env->spec->sort_buffer, ms.int_values, ms.sum_mode,
                          ms.fold_size, job->partition, env->state)) {
        ms.mb = *reuse;
        *reuse = NULL;
        mapbuf_reset(ms.mb);
    } else if (ms.fold_size) {
        ms.mb = mapbuf_new_fold(env->spec->reduces, env->spec->sort_buffer, ms.fold_size, job->partition,
                                env->state);
    } else {
        ms.mb = mapbuf_new(env->spec->reduces, env->spec->sort_buffer, ms.int_values, ms.sum_mode,
                           job->partition, env->state);
    }
    tally_ctx ctx;
    ctx_init(&ctx, job, env->state, env->spec, &res->counters);
    ctx.emit = task_map_emit;
    ctx.emit_int = task_map_emit_int;
    ctx.emit_int_many = task_map_emit_int_many;
    ctx.sink = &ms;
    ctx.skip_note = res->skip_note;
    ctx.skip_note_cap = sizeof res->skip_note;

    char *final = task_map_output_path(env, index);
    char *tmp = xasprintf("%s.a%u.tmp", final, attempt);
    int rc = task_map_split(&ms, split, &ctx, progress);
    if (rc == 0) {
        if (ms.nruns == 0) {
            rc = task_spill(&ms, tmp);
        } else {
            if (mapbuf_records(ms.mb) > 0) rc = task_spill(&ms, NULL);
            if (rc == 0) rc = task_merge_all(&ms, tmp);
        }
    }
    if (rc == 0 && rename(tmp, final) != 0)
        rc = err_set(&res->err, -errno, "renaming %s: %s", tmp, strerror(errno));
    if (rc) {
        unlink(tmp);
        if (!res->err.msg[0]) err_set(&res->err, rc, "map task %u failed (code %d)", index, rc);
        if (res->err.code == 0) res->err.code = rc;
    }
    for (size_t i = 0; i < ms.nruns; i++) {
        unlink(ms.runs[i]);
        free(ms.runs[i]);
    }
    free(ms.runs);
    free(ms.enc);
    free(tmp);
    free(final);
    if (reuse && rc == 0) {
        mapbuf_free(*reuse);
        *reuse = ms.mb;
    } else {
        mapbuf_free(ms.mb);
    }
    return rc;
}

/* ==== Live progress ======================================================================= */

void task_live_reset(task_live *l)
{
    l->file = UINT32_MAX;
    l->offset = 0;
    uint32_t s = atomic_load_explicit(&l->seq, memory_order_relaxed);
    atomic_store_explicit(&l->seq, s | 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    l->progress = 0;
    memset(l->counters, 0, sizeof l->counters);
    atomic_store_explicit(&l->seq, (s | 1) + 1, memory_order_release);
}

void task_live_publish(task_live *l, double progress, const counters *c)
{
    uint32_t s = atomic_load_explicit(&l->seq, memory_order_relaxed);
    atomic_store_explicit(&l->seq, s + 1, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    l->progress = progress < 0 ? 0 : progress > 1 ? 1 : progress;
    if (c) memcpy(l->counters, c->v, sizeof l->counters);
    atomic_store_explicit(&l->seq, s + 2, memory_order_release);
}

int task_live_read(const task_live *l, double *progress, int64_t values[CNT_NBUILTIN])
{
    for (int tries = 0; tries < 100; tries++) {
        uint32_t s = atomic_load_explicit(&l->seq, memory_order_acquire);
        if (s & 1) continue;
        *progress = l->progress;
        memcpy(values, l->counters, sizeof l->counters);
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&l->seq, memory_order_relaxed) == s) return 0;
    }
    return -1;
}

/* ==== Pacing (--chaos-slow) =============================================================== */

/* Debt below this is carried to the next checkpoint: a nanosleep costs tens of microseconds
 * more than asked (timer slack), which would slow an attempt checkpointed every few
 * microseconds far more than F times. What a sleep overshoots is carried as negative debt. */
#define TASK_PACE_MIN_NS 1000000
#define TASK_PACE_SLICE_NS 10000000

void task_live_set_slow(task_live *l, double factor)
{
    uint64_t bits;
    memcpy(&bits, &factor, sizeof bits);
    atomic_store_explicit(&l->slow_bits, bits, memory_order_relaxed);
}

double task_live_slow(const task_live *l)
{
    uint64_t bits = atomic_load_explicit(&l->slow_bits, memory_order_relaxed);
    double f;
    memcpy(&f, &bits, sizeof f);
    /* The negated test is also true for NaN: a page never set (all zero) or garbage is "off". */
    if (!(f >= 1)) return 1;
    return f > 1000 ? 1000 : f;
}

void task_pace_begin(task_pace *p, const task_live *live)
{
    *p = (task_pace){.live = live, .mark_ns = time_mono_ns()};
}

void task_pace_skip(task_pace *p)
{
    if (p) p->mark_ns = time_mono_ns();
}

void task_pace_check(task_pace *p, int final)
{
    if (!p || !p->live) return;
    uint64_t now = time_mono_ns();
    double f = task_live_slow(p->live);
    if (f <= 1) {
        p->debt_ns = 0; /* made fast again: what was owed is forgiven */
        p->mark_ns = now;
        return;
    }
    p->debt_ns += (int64_t)((f - 1) * (double)(now - p->mark_ns));
    if (p->debt_ns >= TASK_PACE_MIN_NS || final) {
        while (p->debt_ns > 0) {
            int64_t slice = p->debt_ns < TASK_PACE_SLICE_NS ? p->debt_ns : TASK_PACE_SLICE_NS;
            struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)slice};
            nanosleep(&ts, NULL);
            uint64_t after = time_mono_ns();
            p->debt_ns -= (int64_t)(after - now);
            p->slept_ns += after - now;
            now = after;
            if (task_live_slow(p->live) <= 1) {
                p->debt_ns = 0;
                break;
            }
        }
    }
    p->mark_ns = now; /* the sleep is not work */
}

/* ==== Reduce side ========================================================================= */

int task_local_segments(const char *const *paths, size_t n, uint32_t part, task_segment **segs,
                        struct err *e)
{
    task_segment *s = xcalloc(n ? n : 1, sizeof *s);
    for (size_t i = 0; i < n; i++) {
        ifile_part *parts;
        uint32_t np;
        int iv;
        int rc = ifile_read_index(paths[i], &parts, &np, &iv, e);
        if (rc == 0 && part >= np) {
            free(parts);
            rc = err_set(e, -EBADMSG, "%s: has %u partitions, need %u", paths[i], np, part + 1);
        }
        if (rc) {
            task_segments_free(s, i);
            return rc;
        }
        s[i] = (task_segment){.path = xstrdup(paths[i]), .offset = parts[part].offset,
                              .length = parts[part].length, .crc = parts[part].crc};
        free(parts);
    }
    *segs = s;
    return 0;
}

void task_segments_free(task_segment *segs, size_t n)
{
    if (!segs) return;
    for (size_t i = 0; i < n; i++) free(segs[i].path);
    free(segs);
}

typedef struct out_writer {
    int fd;
    char *buf;
    size_t len;
    const char *path;
    counters *counters;
    struct err *e;
} out_writer;

static int task_out_flush(out_writer *o)
{
    if (o->len == 0) return 0;
    int rc = ifile_write_all(o->fd, o->buf, o->len);
    o->len = 0;
    if (rc) return err_set(o->e, rc, "writing %s: %s", o->path, strerror(-rc));
    return 0;
}

static int task_out_put(out_writer *o, const void *p, size_t n)
{
    if (o->len + n > TASK_OUT_BUF) {
        int rc = task_out_flush(o);
        if (rc) return rc;
        if (n > TASK_OUT_BUF) {
            rc = ifile_write_all(o->fd, p, n);
            if (rc) return err_set(o->e, rc, "writing %s: %s", o->path, strerror(-rc));
            return 0;
        }
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
    return 0;
}

static int task_reduce_emit(tally_ctx *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    out_writer *o = ctx->sink;
    int rc;
    if ((rc = task_out_put(o, key, klen)) || (rc = task_out_put(o, "\t", 1)) ||
        (rc = task_out_put(o, val, vlen)) || (rc = task_out_put(o, "\n", 1))) {
        ctx->err = *o->e;
        return rc;
    }
    o->counters->v[CNT_OUTPUT_RECORDS]++;
    o->counters->v[CNT_OUTPUT_BYTES] += (int64_t)(klen + vlen + 2);
    return 0;
}

static int task_reduce_emit_int(tally_ctx *ctx, const void *key, size_t klen, int64_t val)
{
    char tmp[24];
    char *p = tmp + sizeof tmp;
    uint64_t u = val < 0 ? (uint64_t)0 - (uint64_t)val : (uint64_t)val;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (val < 0) *--p = '-';
    return task_reduce_emit(ctx, key, klen, p, (size_t)(tmp + sizeof tmp - p));
}

/* A merge over the non-empty segments of segs[0..n). If one cannot be opened, *rc is set and
 * the merge holds those opened before it (merge_free() closes them); if *rc is already set,
 * the merge is empty. */
static merge *task_merge_open(const task_segment *segs, size_t n, int int_values, int *rc, struct err *e)
{
    ifile_seg **isegs = xcalloc(n ? n : 1, sizeof *isegs);
    size_t nopen = 0;
    for (size_t i = 0; i < n && *rc == 0; i++) {
        if (segs[i].length == 0) continue;
        *rc = ifile_seg_open(&isegs[nopen], segs[i].path, segs[i].offset, segs[i].length, segs[i].crc, 1,
                             int_values, e);
        if (*rc == 0) nopen++;
    }
    merge *m = merge_new(isegs, nopen, int_values);
    free(isegs);
    return m;
}

/* Merges segs[0..n) into a new one-partition file at `path` (a reduce-side merge pass, used
 * when there are more map outputs than can be merged at once) and describes it in *out. */
static int task_merge_pass(const task_segment *segs, size_t n, int int_values, const char *path,
                           task_segment *out, struct err *e)
{
    int rc = 0;
    merge *m = task_merge_open(segs, n, int_values, &rc, e);
    ifile_writer *w = NULL;
    if (rc == 0) rc = ifile_writer_open(&w, path, 1, int_values, e);
    const char *key;
    size_t klen;
    tally_values *vals;
    while (rc == 0 && (rc = merge_next_group(m, &key, &klen, &vals, e)) == 1) {
        const void *v;
        size_t vl;
        int64_t iv;
        int k;
        rc = 0;
        while (rc == 0 && (k = vals->next(vals, &v, &vl, &iv)) != 0) {
            if (k < 0) {
                rc = k;
                *e = *merge_error(m);
                break;
            }
            rc = int_values ? ifile_writer_add_int(w, 0, key, klen, iv, e)
                            : ifile_writer_add(w, 0, key, klen, v, vl, e);
        }
    }
    merge_free(m);
    if (w) {
        if (rc) ifile_writer_abort(w);
        else rc = ifile_writer_close(w, e);
    }
    if (rc) return rc;
    ifile_part *parts;
    uint32_t np;
    int iv;
    rc = ifile_read_index(path, &parts, &np, &iv, e);
    if (rc) return rc;
    *out = (task_segment){.path = xstrdup(path), .offset = parts[0].offset, .length = parts[0].length,
                          .crc = parts[0].crc};
    free(parts);
    return 0;
}

int task_run_reduce(const task_env *env, uint32_t index, uint32_t attempt, const task_segment *orig_segs,
                    size_t nsegs, task_result *res)
{
    const task_segment *segs = orig_segs;
    const tally_job *job = env->job;
    struct err *e = &res->err;
    counters *c = &res->counters;
    int int_values = task_int_values(job);
    char *final = xasprintf("%s/part-%05u", env->out_tmp, index);
    char *tmp = xasprintf("%s.a%u.tmp", final, attempt);
    int rc = 0;
    for (size_t i = 0; i < nsegs; i++) c->v[CNT_SHUFFLE_BYTES] += (int64_t)segs[i].length;
    /* Too many inputs to merge at once: merge them in passes into local files first, so open
     * files and read buffers stay bounded (Hadoop's io.sort.factor). */
    task_segment *passes = NULL;
    size_t npasses = 0;
    uint32_t pass_no = 0;
    while (nsegs > TASK_MERGE_FANIN && rc == 0) {
        size_t take = TASK_MERGE_FANIN;
        char *path = xasprintf("%s/reduce-%05u.a%u.merge%u", env->work_dir, index, attempt, pass_no++);
        task_segment merged;
        rc = task_merge_pass(segs, take, int_values, path, &merged, e);
        free(path);
        if (rc) break;
        task_segment *next = xcalloc(nsegs - take + 1, sizeof *next);
        for (size_t i = take; i < nsegs; i++) next[i - take] = segs[i];
        next[nsegs - take] = merged;
        passes = xrealloc(passes, (npasses + 1) * sizeof *passes);
        passes[npasses++] = merged;
        if (segs != orig_segs) free((void *)segs);
        segs = next;
        nsegs = nsegs - take + 1;
    }
    merge *m = task_merge_open(segs, nsegs, int_values, &rc, e); /* opens nothing if rc is set */
    out_writer o = {.fd = -1, .path = tmp, .counters = c, .e = e};
    if (rc == 0) {
        o.fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (o.fd < 0) rc = err_set(e, -errno, "%s: %s", tmp, strerror(errno));
    }
    o.buf = xmalloc(TASK_OUT_BUF);
    tally_ctx ctx;
    ctx_init(&ctx, job, env->state, env->spec, c);
    ctx.emit = task_reduce_emit;
    ctx.emit_int = task_reduce_emit_int;
    ctx.sink = &o;
    const char *key;
    size_t klen;
    tally_values *vals;
    uint64_t groups = 0;
    while (rc == 0 && (rc = merge_next_group(m, &key, &klen, &vals, e)) == 1) {
        c->v[CNT_REDUCE_INPUT_GROUPS]++;
        rc = job->reduce(&ctx, key, klen, vals);
        if (rc == 0 && vals->error) {
            rc = vals->error;
            *e = *merge_error(m);
        } else if (rc) {
            if (ctx.err.msg[0]) *e = ctx.err;
            else err_set(e, rc, "reduce failed (code %d)", rc);
        }
        /* Every 256 groups rather than more rarely: a job with few, large groups must still
         * have checkpoints for --chaos-slow to pace it evenly. */
        if (rc == 0 && (++groups & 255) == 0) {
            if (env->cancel && *env->cancel) rc = err_set(e, -ECANCELED, "cancelled");
            if (env->live && env->reduce_records)
                task_live_publish(env->live, 0.5 + 0.5 * (double)merge_records(m) / (double)env->reduce_records, c);
            task_pace_check(env->pace, 0);
        }
    }
    c->v[CNT_REDUCE_INPUT_RECORDS] += (int64_t)merge_records(m);
    merge_free(m);
    if (rc == 0) rc = task_out_flush(&o);
    if (o.fd >= 0 && close(o.fd) != 0 && rc == 0) rc = err_set(e, -errno, "closing %s: %s", tmp, strerror(errno));
    free(o.buf);
    if (rc == 0 && rename(tmp, final) != 0) rc = err_set(e, -errno, "renaming %s: %s", tmp, strerror(errno));
    if (rc) {
        unlink(tmp);
        if (e->code == 0) e->code = rc;
    }
    for (size_t k = 0; k < npasses; k++) {
        if (!passes[k].path) continue;
        unlink(passes[k].path);
        free(passes[k].path);
    }
    free(passes);
    if (segs != orig_segs) free((void *)segs);
    free(tmp);
    free(final);
    return rc;
}
