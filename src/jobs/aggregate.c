/* aggregate.c - the built-in `aggregate` job: group CSV/JSONL records and compute aggregates.
 *
 *   tally run aggregate --group-by F1,F2 --agg 'count,avg(value),ratio_if(a!=b)' [--where COND]
 *
 * map turns each record into key = the group values (escaped, TAB-joined) and value = the
 * record's partial aggregates as native aggspec_slots; the engine folds them per key at emit
 * time (fold = aggspec_merge), so a map task holds one accumulator per group and never sorts
 * records (profiling showed sorting, encoding and decoding per record taking a third of the
 * job); fold_encode turns an accumulator into the portable encoding of cond.h that leaves the
 * task; combine merges encoded partials across spills; reduce merges them and writes the
 * aggregates as text, TAB-joined in the order given.
 *
 * A record is judged in this order: WHERE (a field it names is missing: skipped; false:
 * dropped silently), then the group fields, then the aggregates (a missing field, or a
 * sum/avg/min/max value that is not a number: skipped). A skipped record counts for nothing,
 * not even for count. This job uses only the public API of tally.h, like any user job.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobs/cond.h"
#include "tally/tally.h"

/* The job's definition; the registry of built-in jobs declares it too. */
extern const tally_job jobs_aggregate;

/* The most distinct fields one job reads: every group field, aggregate and comparison side. */
#define AGGREGATE_MAX_FIELDS (4 * AGGSPEC_MAX_ITEMS)

/* A distinct field the job reads, with its place in a record's fetched values. The resolver
 * hands these out as the `ref` of conditions and aggregates, so a lookup is an array read. */
struct aggregate_field {
    const char *name;
    size_t idx;
};

/* Parsed arguments; read-only once setup() returns, shared by all task threads. */
struct aggregate_state {
    char **group; /* --group-by fields */
    size_t *gidx; /* their places among fields */
    size_t ngroup;
    /* Every field named, fetched in one call per record (when all could be interned). */
    struct aggregate_field fields[AGGREGATE_MAX_FIELDS];
    const tally_field *refs[AGGREGATE_MAX_FIELDS];
    size_t nfields;
    int flat; /* 1: refs are all valid and the per-record fetch is used */
    aggspec *aggs; /* --agg */
    cond *where;   /* --where, or NULL */
    char *columns; /* the _columns header line */
};

/* Lets cond/aggspec evaluation read fields of the record being mapped: from the values fetched
 * at the start of the record (flat), else by name. */
struct aggregate_record {
    tally_ctx *ctx;
    const tally_record *rec;
    const char **vals;
    size_t *lens;
    int *rcs;
};

static int aggregate_lookup(void *arg, const char *name, const void *ref, const char **val,
                            size_t *vlen)
{
    struct aggregate_record *r = arg;
    if (ref && r->vals) {
        size_t i = ((const struct aggregate_field *)ref)->idx;
        *val = r->vals[i];
        *vlen = r->lens[i];
        return r->rcs[i];
    }
    return tally_record_field(r->ctx, r->rec, name, val, vlen);
}

/* The resolver of cond_bind/aggspec_bind: the field's entry, added on first sight. Profiling
 * showed the per-field calls into the engine (one per comparison side, aggregate and group
 * field) as a tenth of map time; one tally_record_get_many per record replaces them. */
static const void *aggregate_resolve(void *arg, const char *name)
{
    struct aggregate_state *st = arg;
    for (size_t i = 0; i < st->nfields; i++)
        if (strcmp(st->fields[i].name, name) == 0) return &st->fields[i];
    if (st->nfields == AGGREGATE_MAX_FIELDS) {
        st->flat = 0;
        return NULL;
    }
    size_t i = st->nfields++;
    st->fields[i] = (struct aggregate_field){name, i};
    st->refs[i] = tally_field_ref(name);
    if (!st->refs[i]) st->flat = 0;
    return &st->fields[i];
}

static void aggregate_teardown(void *state)
{
    struct aggregate_state *st = state;
    if (!st) return;
    aggspec_free_fields(st->group, st->ngroup);
    free(st->gidx);
    aggspec_free(st->aggs);
    cond_free(st->where);
    free(st->columns);
    free(st);
}

struct aggregate_require {
    tally_ctx *ctx;
    const char *what;
};

/* A field of a condition. One compared with another field may be a string meant as a
 * literal (`producer_id==producer-01`): the hint says how to write that. */
static void aggregate_require_cond_field(void *arg, const char *field, const char *other)
{
    struct aggregate_require *r = arg;
    char hint[512];
    if (other)
        snprintf(hint, sizeof hint, "named by %s, compared with the field %s; to compare with the text, quote it: '%s'",
                 r->what, other, field);
    else
        snprintf(hint, sizeof hint, "named by %s", r->what);
    tally_require_field(r->ctx, field, hint);
}

static int aggregate_setup(tally_ctx *ctx, void **state)
{
    const char *group = tally_arg(ctx, "group-by");
    const char *agg = tally_arg(ctx, "agg");
    const char *where = tally_arg(ctx, "where");
    struct aggregate_state *st = NULL;
    struct err e = {0};
    int rc = 0;

    if (!group) return tally_error(ctx, "--group-by FIELD[,FIELD...] is required");
    if (!agg) return tally_error(ctx, "--agg AGG[,AGG...] is required, e.g. --agg count");

    st = calloc(1, sizeof *st);
    if (!st) return tally_error(ctx, "out of memory");
    if ((rc = aggspec_parse_fields(group, "--group-by", &st->group, &st->ngroup, &e)) < 0 ||
        (rc = aggspec_parse(agg, "--agg", &st->aggs, &e)) < 0 ||
        (where && (rc = cond_parse(where, "--where", &st->where, &e)) < 0)) {
        tally_error(ctx, "%s", e.msg);
        goto fail;
    }
    st->columns = aggspec_columns(st->aggs, st->group, st->ngroup);
    /* Names resolved once: per record the fields are then fetched in one call and looked up
     * by index, comparing no strings. */
    st->gidx = calloc(st->ngroup ? st->ngroup : 1, sizeof *st->gidx);
    if (!st->gidx) {
        rc = tally_error(ctx, "out of memory");
        goto fail;
    }
    st->flat = 1;
    for (size_t i = 0; i < st->ngroup; i++) {
        const struct aggregate_field *f = aggregate_resolve(st, st->group[i]);
        st->gidx[i] = f ? f->idx : SIZE_MAX;
    }
    cond_bind(st->where, aggregate_resolve, st);
    aggspec_bind(st->aggs, aggregate_resolve, st);
    /* Every field named is needed: a record without it is skipped, so a misspelt name would
     * skip them all. The engine checks the inputs for them before the job starts. */
    for (size_t i = 0; i < st->ngroup; i++) tally_require_field(ctx, st->group[i], "named by --group-by");
    struct aggregate_require req = {ctx, "--where"};
    cond_fields(st->where, aggregate_require_cond_field, &req);
    for (size_t i = 0; i < st->aggs->n; i++) {
        const aggspec_item *it = &st->aggs->items[i];
        if (it->field) tally_require_field(ctx, it->field, "named by --agg");
        req.what = "--agg";
        cond_fields(it->cond, aggregate_require_cond_field, &req);
    }
    *state = st;
    return 0;
fail:
    aggregate_teardown(st);
    return rc;
}

/* A record that cannot be used is skipped with a reason naming the field; an error other than
 * a missing field or a malformed record (e.g. plain-text input) fails the task instead. */
static int aggregate_reject(tally_ctx *ctx, const tally_record *rec, int code,
                            const cond_failure *fail)
{
    char why[256];
    if (code == TALLY_ENOFIELD || code == TALLY_EBADREC || code == AGGSPEC_ENOTNUM) {
        cond_failure_text(code, fail, why, sizeof why);
        return tally_skip(ctx, rec, why);
    }
    if (code == -EINVAL)
        tally_error(ctx, "the input has no fields; aggregate needs CSV or JSON Lines input");
    else
        tally_error(ctx, "cannot read field '%s' (error %d)",
                    fail->field ? fail->field : "?", code);
    return code;
}

static int aggregate_map(tally_ctx *ctx, const tally_record *rec)
{
    const struct aggregate_state *st = tally_state(ctx);
    const char *vals[AGGREGATE_MAX_FIELDS];
    size_t lens[AGGREGATE_MAX_FIELDS];
    int rcs[AGGREGATE_MAX_FIELDS];
    struct aggregate_record r = {ctx, rec, NULL, NULL, NULL};
    cond_failure fail = {0};
    const char *gval[AGGSPEC_MAX_ITEMS];
    size_t glen[AGGSPEC_MAX_ITEMS], need = 0, klen = 0;
    aggspec_slot slots[AGGSPEC_MAX_ITEMS];
    char small[1024], *key = small;
    int rc, match;

    if (st->flat) {
        if ((rc = tally_record_get_many(ctx, rec, st->refs, st->nfields, vals, lens, rcs)) < 0) {
            fail.field = st->nfields ? st->fields[0].name : "?";
            return aggregate_reject(ctx, rec, rc, &fail);
        }
        r.vals = vals;
        r.lens = lens;
        r.rcs = rcs;
    }

    if (st->where) {
        if ((rc = cond_eval(st->where, aggregate_lookup, &r, &match, &fail)) < 0)
            return aggregate_reject(ctx, rec, rc, &fail);
        if (!match) return 0;
    }
    for (size_t i = 0; i < st->ngroup; i++) {
        if (r.vals) {
            size_t k = st->gidx[i];
            rc = rcs[k];
            gval[i] = vals[k];
            glen[i] = lens[k];
        } else {
            rc = tally_record_field(ctx, rec, st->group[i], &gval[i], &glen[i]);
        }
        if (rc < 0) {
            fail.field = st->group[i];
            return aggregate_reject(ctx, rec, rc, &fail);
        }
        need += 2 * glen[i] + 1; /* escaping at most doubles a value; +1 for the TAB */
    }
    if ((rc = aggspec_record(st->aggs, aggregate_lookup, &r, slots, &fail)) < 0)
        return aggregate_reject(ctx, rec, rc, &fail);

    if (need > sizeof small) key = malloc(need);
    if (!key) return tally_error(ctx, "out of memory for a %zu-byte key", need);
    for (size_t i = 0; i < st->ngroup; i++) {
        if (i) key[klen++] = '\t';
        klen += aggspec_escape(gval[i], glen[i], key + klen);
    }
    rc = tally_emit(ctx, key, klen, slots, st->aggs->n * sizeof *slots);
    if (key != small) free(key);
    return rc;
}

/* Merges every partial of one key into slots. */
static int aggregate_merge_values(tally_ctx *ctx, const struct aggregate_state *st,
                                  tally_values *vals, aggspec_slot *slots)
{
    const void *v;
    size_t vlen;
    int rc;
    aggspec_init(st->aggs, slots);
    while ((rc = tally_values_next(vals, &v, &vlen)) > 0) {
        if (aggspec_decode_merge(st->aggs, slots, v, vlen) < 0) {
            tally_error(ctx, "a %zu-byte value is not a partial aggregate of this --agg list",
                        vlen);
            return -EBADMSG;
        }
    }
    if (rc < 0) tally_error(ctx, "cannot read the values of a key (error %d)", rc);
    return rc;
}

static int aggregate_combine(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals)
{
    const struct aggregate_state *st = tally_state(ctx);
    aggspec_slot slots[AGGSPEC_MAX_ITEMS];
    unsigned char enc[AGGSPEC_ENCODED_MAX];
    int rc = aggregate_merge_values(ctx, st, vals, slots);
    if (rc < 0) return rc;
    return tally_emit(ctx, key, klen, enc, aggspec_encode(st->aggs, slots, enc));
}

static int aggregate_reduce(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals)
{
    const struct aggregate_state *st = tally_state(ctx);
    aggspec_slot slots[AGGSPEC_MAX_ITEMS];
    char text[AGGSPEC_TEXT_MAX];
    int rc = aggregate_merge_values(ctx, st, vals, slots);
    if (rc < 0) return rc;
    return tally_emit(ctx, key, klen, text, aggspec_format(st->aggs, slots, text));
}

static size_t aggregate_fold_size(void *state)
{
    const struct aggregate_state *st = state;
    return st->aggs->n * sizeof(aggspec_slot);
}

/* val is the slots array map emitted (the engine passes map's own pointer through). */
static int aggregate_fold(void *state, void *acc, const void *val, size_t vlen)
{
    const struct aggregate_state *st = state;
    (void)vlen;
    aggspec_merge(st->aggs, acc, val);
    return 0;
}

static size_t aggregate_fold_encode(void *state, const void *acc, void *out, size_t cap)
{
    const struct aggregate_state *st = state;
    size_t need = AGGSPEC_ENCODED_SIZE(st->aggs->n);
    if (cap < need) return need;
    return aggspec_encode(st->aggs, acc, out);
}

static const char *aggregate_columns(void *state)
{
    const struct aggregate_state *st = state;
    return st->columns;
}

static const tally_option aggregate_options[] = {
    {"group-by", 0, 1, "FIELD[,FIELD...]: the fields whose values form a group"},
    {"agg", 0, 1,
     "AGG[,AGG...]: what to compute per group: count, count_if(COND), ratio_if(COND), sum(F), "
     "avg(F), min(F), max(F)"},
    {"where", 0, 1,
     "COND: use only records where COND holds, e.g. \"status=='ok' and ms>=100\" (== != < <= > "
     ">=, and, or, parentheses)"},
    {0},
};

const tally_job jobs_aggregate = {
    .abi_version = TALLY_ABI_VERSION,
    .name = "aggregate",
    .description = "group CSV or JSON Lines records by fields and compute count, sum, avg, min, "
                   "max, count_if and ratio_if per group",
    .flags = TALLY_NEEDS_FIELDS,
    .options = aggregate_options,
    .setup = aggregate_setup,
    .teardown = aggregate_teardown,
    .map = aggregate_map,
    .combine = aggregate_combine,
    .reduce = aggregate_reduce,
    .columns = aggregate_columns,
    .fold_size = aggregate_fold_size,
    .fold = aggregate_fold,
    .fold_encode = aggregate_fold_encode,
};
