/* ctx.h - the engine's side of `tally_ctx`: what a job callback is running inside of.
 *
 * A context is set up by the task that calls the job: the map task points `emit` at the map
 * buffer, a spill points it at the spill file (combiner), the reduce task at the output file.
 * It lives on the task's stack; nothing in it is shared between threads except the job state,
 * which is read-only after setup.
 */
#ifndef TALLY_CTX_H
#define TALLY_CTX_H

#include <tally/tally.h>

#include "common/util.h"
#include "data/fields.h"
#include "exec/counters.h"
#include "exec/jobspec.h"

/* The fields a job said it needs (tally_require_field), collected while its setup() runs. */
typedef struct ctx_fields {
    char **names, **hints; /* hints[i] may be NULL */
    size_t n;
} ctx_fields;
void ctx_fields_free(ctx_fields *f);

/* ctx_init() sets every field (it avoids a memset on the combine path): add new ones there. */
struct tally_ctx {
    const tally_job *job;
    void *state;
    const jobspec *spec;
    counters *counters;
    int (*emit)(tally_ctx *ctx, const void *key, size_t klen, const void *val, size_t vlen);
    int (*emit_int)(tally_ctx *ctx, const void *key, size_t klen, int64_t val);
    /* NULL: tally_emit_int_many calls emit_int per key. */
    int (*emit_int_many)(tally_ctx *ctx, const void *const *keys, const size_t *lens, size_t n, int64_t val);
    void *sink;             /* what emit writes to; owned by the task */
    int strict;
    unsigned skips_logged;
    char *skip_note;        /* where the first skipped record's reason goes ("" until then), or NULL */
    size_t skip_note_cap;
    ctx_fields *required;   /* during setup(): where tally_require_field() records, else NULL */
    struct err err;         /* set by tally_error() or by a failing emit */
};

/* Prepares a context with no sink; emits then fail. */
void ctx_init(tally_ctx *ctx, const tally_job *job, void *state, const jobspec *spec, counters *c);

/* Loads the job named by spec->job and runs its setup(). On a bad job or bad arguments returns
 * a negative code with the message in e (a usage error for the CLI). `required` (may be NULL)
 * receives the fields the job requires (the caller frees it with ctx_fields_free). */
int ctx_job_open(const jobspec *spec, const tally_job **job, void **handle, void **state, ctx_fields *required,
                 struct err *e);
void ctx_job_close(const tally_job *job, void *handle, void *state);

#endif
