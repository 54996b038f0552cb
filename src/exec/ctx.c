/* ctx.c - implements the functions of include/tally/tally.h that jobs call. */
#include "exec/ctx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "data/values.h"
#include "exec/jobreg.h"

#define CTX_SKIPS_LOGGED 5

static int ctx_no_emit(tally_ctx *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    (void)key, (void)klen, (void)val, (void)vlen;
    return err_set(&ctx->err, -EINVAL, "tally_emit called outside map, combine or reduce");
}

static int ctx_no_emit_int(tally_ctx *ctx, const void *key, size_t klen, int64_t val)
{
    (void)key, (void)klen, (void)val;
    return err_set(&ctx->err, -EINVAL, "tally_emit_int called outside map, combine or reduce");
}

void ctx_init(tally_ctx *ctx, const tally_job *job, void *state, const jobspec *spec, counters *c)
{
    /* Field by field rather than memset: combine sets up a context per key group at spill
     * time, and clearing the 1 KiB error message each time was wasted work. */
    ctx->job = job;
    ctx->state = state;
    ctx->spec = spec;
    ctx->counters = c;
    ctx->emit = ctx_no_emit;
    ctx->emit_int = ctx_no_emit_int;
    ctx->emit_int_many = NULL;
    ctx->sink = NULL;
    ctx->strict = spec ? spec->strict : 0;
    ctx->skips_logged = 0;
    ctx->skip_note = NULL;
    ctx->skip_note_cap = 0;
    ctx->required = NULL;
    err_clear(&ctx->err);
}

int tally_emit(tally_ctx *ctx, const void *key, size_t klen, const void *val, size_t vlen)
{
    return ctx->emit(ctx, key, klen, val, vlen);
}

int tally_emit_int(tally_ctx *ctx, const void *key, size_t klen, int64_t val)
{
    return ctx->emit_int(ctx, key, klen, val);
}

int tally_emit_int_many(tally_ctx *ctx, const void *const *keys, const size_t *lens, size_t n,
                        int64_t val)
{
    if (ctx->emit_int_many) return ctx->emit_int_many(ctx, keys, lens, n, val);
    for (size_t i = 0; i < n; i++) {
        int rc = ctx->emit_int(ctx, keys[i], lens[i], val);
        if (rc) return rc;
    }
    return 0;
}

int tally_values_next(tally_values *it, const void **val, size_t *vlen)
{
    int64_t iv;
    if (it->int_values) {
        /* An int job reading values as bytes gets the 8 native bytes of each value. */
        static _Thread_local int64_t slot;
        int rc = it->next(it, val, vlen, &iv);
        if (rc == 1) {
            slot = iv;
            *val = &slot;
            *vlen = sizeof slot;
        }
        return rc;
    }
    return it->next(it, val, vlen, &iv);
}

int tally_values_next_int(tally_values *it, int64_t *val)
{
    const void *v;
    size_t vl;
    if (!it->int_values) {
        /* A byte-valued job asking for ints: parse the decimal text so it still works. */
        int rc = it->next(it, &v, &vl, val);
        if (rc == 1) {
            char tmp[32];
            size_t n = vl < sizeof tmp - 1 ? vl : sizeof tmp - 1;
            memcpy(tmp, v, n);
            tmp[n] = 0;
            *val = strtoll(tmp, NULL, 10);
        }
        return rc;
    }
    return it->next(it, &v, &vl, val);
}

int tally_record_field(tally_ctx *ctx, const tally_record *rec, const char *name, const char **val,
                       size_t *vlen)
{
    (void)ctx;
    if (!rec->fields) return -EINVAL;
    return fields_get(rec->fields, name, val, vlen);
}

const tally_field *tally_field_ref(const char *name) { return fields_ref(name); }

int tally_record_get(tally_ctx *ctx, const tally_record *rec, const tally_field *field,
                     const char **val, size_t *vlen)
{
    (void)ctx;
    if (!rec->fields) return -EINVAL;
    return fields_get_ref(rec->fields, field, val, vlen);
}

int tally_record_get_many(tally_ctx *ctx, const tally_record *rec, const tally_field *const *fields,
                          size_t n, const char **vals, size_t *lens, int *rcs)
{
    (void)ctx;
    if (!rec->fields) return -EINVAL;
    fields_get_many(rec->fields, fields, n, vals, lens, rcs);
    return 0;
}

int tally_skip(tally_ctx *ctx, const tally_record *rec, const char *why)
{
    if (ctx->strict)
        return err_set(&ctx->err, -EBADMSG, "%s: offset %llu: %s (--strict)", rec->file,
                       (unsigned long long)rec->offset, why);
    if (ctx->counters) ctx->counters->v[CNT_RECORDS_SKIPPED]++;
    if (ctx->skip_note && !ctx->skip_note[0])
        snprintf(ctx->skip_note, ctx->skip_note_cap, "%s: offset %llu: %s", rec->file, (unsigned long long)rec->offset,
                 why);
    if (ctx->skips_logged < CTX_SKIPS_LOGGED) {
        ctx->skips_logged++;
        log_warn("skipped record at %s: offset %llu: %s", rec->file, (unsigned long long)rec->offset, why);
    }
    return 0;
}

int tally_require_field(tally_ctx *ctx, const char *name, const char *hint)
{
    ctx_fields *f = ctx->required;
    if (!f || !name || !*name) return 0;
    for (size_t i = 0; i < f->n; i++)
        if (strcmp(f->names[i], name) == 0) return 0;
    f->names = xrealloc(f->names, (f->n + 1) * sizeof *f->names);
    f->hints = xrealloc(f->hints, (f->n + 1) * sizeof *f->hints);
    f->names[f->n] = xstrdup(name);
    f->hints[f->n] = hint && *hint ? xstrdup(hint) : NULL;
    f->n++;
    return 0;
}

void ctx_fields_free(ctx_fields *f)
{
    for (size_t i = 0; i < f->n; i++) {
        free(f->names[i]);
        free(f->hints[i]);
    }
    free(f->names);
    free(f->hints);
    memset(f, 0, sizeof *f);
}

void tally_counter_add(tally_ctx *ctx, const char *name, int64_t delta)
{
    if (ctx->counters) counters_add_user(ctx->counters, name, delta);
}

const char *tally_arg(tally_ctx *ctx, const char *name)
{
    return ctx->spec ? jobspec_arg(ctx->spec, name) : NULL;
}

void *tally_state(tally_ctx *ctx) { return ctx->state; }

int tally_error(tally_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctx->err.msg, sizeof ctx->err.msg, fmt, ap);
    va_end(ap);
    ctx->err.code = -EINVAL;
    return -EINVAL;
}

int ctx_job_open(const jobspec *spec, const tally_job **job, void **handle, void **state, ctx_fields *required,
                 struct err *e)
{
    if (required) memset(required, 0, sizeof *required);
    *state = NULL;
    int rc = jobreg_load(spec->job, job, handle, e);
    if (rc) return rc;
    if ((*job)->setup) {
        tally_ctx ctx;
        counters c;
        counters_init(&c);
        ctx_init(&ctx, *job, NULL, spec, &c);
        ctx.required = required;
        rc = (*job)->setup(&ctx, state);
        counters_free(&c);
        if (rc) {
            if (ctx.err.msg[0]) err_set(e, rc < 0 ? rc : -EINVAL, "%s: %s", (*job)->name, ctx.err.msg);
            else err_set(e, rc < 0 ? rc : -EINVAL, "%s: setup failed (code %d)", (*job)->name, rc);
            jobreg_unload(*handle);
            *handle = NULL;
            *job = NULL;
            if (required) ctx_fields_free(required);
            return e ? e->code : -EINVAL;
        }
    }
    return 0;
}

void ctx_job_close(const tally_job *job, void *handle, void *state)
{
    if (job && job->teardown) job->teardown(state);
    jobreg_unload(handle);
}
