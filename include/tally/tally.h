/* tally.h - the whole job API of tally: what a MapReduce job provides and what it may call.
 *
 * A job is a `tally_job` value. The built-in jobs are compiled into the engine; a user job is a
 * shared object that exports one `const tally_job tally_job_def` whose `abi_version` is
 * TALLY_ABI_VERSION (see examples/ and the README). The engine calls, in each process that runs
 * tasks of the job:
 *
 *   setup(ctx, &state)            once, before any task; parses job arguments into `state`
 *   map(ctx, record)              once per input record
 *   combine(ctx, key, values)     zero or more times per key on map output (must be associative)
 *   fold(state, acc, value)       optional: instead of buffering map output, per value (below)
 *   reduce(ctx, key, values)      once per distinct key, keys in byte order within a partition
 *   teardown(state)               once, at the end
 *
 * Threading: map/combine/reduce of different tasks may run concurrently on several threads
 * sharing one `state`; treat `state` as read-only after setup.
 *
 * Errors: callbacks return 0 on success or a negative errno-style code; a non-zero return
 * fails the task attempt (the engine retries it). Call tally_error() first to say why.
 *
 * Values are byte strings. A job that sets TALLY_INT_VALUES carries int64 values instead, end to
 * end (tally_emit_int / tally_values_next_int), so counting jobs never format or parse numbers;
 * the engine prints them in decimal in the output. TALLY_COMBINE_SUM additionally lets the engine
 * combine by summing in its map-side hash table, without calling back into the job.
 */
#ifndef TALLY_TALLY_H
#define TALLY_TALLY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* 2 added the fold functions at the end of tally_job; jobs built for 1 still load. */
#define TALLY_ABI_VERSION 2

/* Error codes beyond errno values. */
#define TALLY_ENOFIELD (-2)   /* tally_record_field: the record has no such field (= -ENOENT) */
#define TALLY_EBADREC  (-74)  /* tally_record_field: the record cannot be parsed (= -EBADMSG) */

/* Job flags. */
#define TALLY_INT_VALUES  (1u << 0) /* values are int64 everywhere */
#define TALLY_COMBINE_SUM (1u << 1) /* combine = sum of int64 values (implies TALLY_INT_VALUES) */
#define TALLY_NEEDS_FIELDS (1u << 2) /* records must be CSV or JSON Lines (tally_record_field) */

typedef struct tally_ctx tally_ctx;       /* engine context passed to every callback; opaque */
typedef struct tally_values tally_values; /* iterator over one key's values; opaque */

/* One input record. Valid only during the map call that receives it. */
/* A record's bytes are followed by a NUL and at least this many more readable bytes (of no
 * particular value), so that a job may scan it up to 64 bytes at a time without bounds checks. */
#define TALLY_RECORD_PAD 64

typedef struct tally_record {
    const char *data;  /* the record's bytes, without its line terminator (\n or \r\n), followed
                        * by a NUL byte and TALLY_RECORD_PAD readable bytes (the record itself
                        * may contain NULs: use len) */
    size_t len;
    const char *file;  /* the input path as the user gave it */
    uint64_t offset;   /* byte offset of the record in its file (uncompressed, for .gz) */
    void *fields;      /* engine-private: parsed CSV/JSON fields, built lazily */
} tally_record;

/* A job-specific command-line option, e.g. grep's `-e REGEX`. The CLI turns `--name VALUE`,
 * `-s VALUE` (or `--name` alone when has_value is 0) into the job argument `name`. */
typedef struct tally_option {
    const char *name;  /* long name, also the argument name passed to tally_arg() */
    char short_name;   /* 0 for none */
    int has_value;     /* 1: takes a value; 0: a switch whose argument is "1" when given */
    const char *help;
} tally_option;

typedef struct tally_job {
    uint32_t abi_version;       /* TALLY_ABI_VERSION */
    const char *name;
    const char *description;    /* one line for `tally jobs` and --help */
    uint32_t flags;             /* TALLY_* job flags */
    const tally_option *options; /* NULL or terminated by an entry with name == NULL */

    int (*setup)(tally_ctx *ctx, void **state);            /* optional */
    void (*teardown)(void *state);                         /* optional */
    int (*map)(tally_ctx *ctx, const tally_record *rec);   /* required */
    int (*combine)(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals); /* optional */
    int (*reduce)(tally_ctx *ctx, const void *key, size_t klen, tally_values *vals);  /* required */
    /* Optional partitioner: must return a value below nparts and depend only on the key. */
    uint32_t (*partition)(const void *key, size_t klen, uint32_t nparts, void *state);
    /* Optional: a header line (without newline) the engine writes to OUT/_columns. */
    const char *(*columns)(void *state);

    /* Optional (ABI 2): folding at emit time, like the map-side combine of Spark's
     * reduceByKey. When fold is set (combine is then required), a map task keeps one
     * accumulator of fold_size(state) bytes (8-byte aligned) per distinct key in the engine's
     * hash table instead of buffering what map emits: the first value of a key is copied into
     * its accumulator, every later one goes through fold(state, acc, val, vlen), so every value
     * map emits must be fold_size bytes long and fold must be associative. Map's values are
     * thereby private to the job (native structs are fine): what leaves the map task is, per
     * key, fold_encode(state, acc, out, cap), which writes the portable value that combine and
     * reduce receive and returns its length (when that exceeds cap, it is called again with a
     * buffer that large). fold returns 0 or a negative code (which fails the task). */
    size_t (*fold_size)(void *state);
    int (*fold)(void *state, void *acc, const void *val, size_t vlen);
    size_t (*fold_encode)(void *state, const void *acc, void *out, size_t cap);
} tally_job;

/* The size of an ABI 1 tally_job: everything before fold_size. */
#define TALLY_JOB_V1_SIZE offsetof(tally_job, fold_size)

/* ---- What a job may call ---------------------------------------------------------------- */

/* Emits one key/value pair: from map to the shuffle, from combine to the combined output, from
 * reduce to the job output. The engine copies the bytes. Returns 0 or a negative code. */
int tally_emit(tally_ctx *ctx, const void *key, size_t klen, const void *val, size_t vlen);
int tally_emit_int(tally_ctx *ctx, const void *key, size_t klen, int64_t val);
/* Emits n keys with the same int64 value in one call (keys[i] of lens[i] bytes): what
 * tally_emit_int does n times, without the per-key call into the engine (word count's map
 * emits every word of a line this way). */
int tally_emit_int_many(tally_ctx *ctx, const void *const *keys, const size_t *lens, size_t n,
                        int64_t val);

/* Iterates over one key's values. Returns 1 and sets the out-parameters when there is a value
 * (valid until the next call), 0 at the end, or a negative code on an I/O or format error. */
int tally_values_next(tally_values *it, const void **val, size_t *vlen);
int tally_values_next_int(tally_values *it, int64_t *val);

/* Field access for CSV (header names) and JSON Lines (keys; dots reach into nested objects).
 * On 0, val and vlen hold the field's text: a JSON string unescaped, any other JSON value as
 * written (true, 12.5, {...}); valid during the map call. JSON null counts as absent.
 * Returns TALLY_ENOFIELD, TALLY_EBADREC or -EINVAL (text input has no fields). */
int tally_record_field(tally_ctx *ctx, const tally_record *rec, const char *name,
                       const char **val, size_t *vlen);

/* A field name resolved once, for lookups that compare no strings: tally_field_ref() (from
 * setup(), or any time) returns the same handle for the same name for the life of the process,
 * or NULL when the process already holds TALLY_FIELD_REFS_MAX distinct names (then use
 * tally_record_field). tally_record_get() is tally_record_field() through a handle. */
typedef struct tally_field tally_field;
#define TALLY_FIELD_REFS_MAX 4096
const tally_field *tally_field_ref(const char *name);
int tally_record_get(tally_ctx *ctx, const tally_record *rec, const tally_field *field,
                     const char **val, size_t *vlen);
/* n lookups in one call: rcs[i] is what tally_record_get would return for fields[i] (vals[i]
 * and lens[i] set when it is 0). Returns 0, or -EINVAL for text input. */
int tally_record_get_many(tally_ctx *ctx, const tally_record *rec, const tally_field *const *fields,
                          size_t n, const char **vals, size_t *lens, int *rcs);

/* Skips a record that cannot be used: counted in `records_skipped`, the first few logged with
 * file and offset. Returns 0, or under --strict a negative code after recording the error (the
 * job must fail), so a map callback can simply `return tally_skip(ctx, rec, "why");`. */
int tally_skip(tally_ctx *ctx, const tally_record *rec, const char *why);

/* From setup(): the job cannot use a record that lacks field `name` (it would skip every such
 * record). Before any task runs, the engine looks at each input's CSV header, or at the first
 * records of a JSON Lines input, and refuses the job (a usage error) if the field is in none of
 * them, naming the field, the input and the fields it does have; `hint` (may be NULL) is added
 * to that message, e.g. "named by --group-by". Outside setup() it does nothing. Returns 0. */
int tally_require_field(tally_ctx *ctx, const char *name, const char *hint);

/* Adds to a job-defined counter, reported in _counters.json. */
void tally_counter_add(tally_ctx *ctx, const char *name, int64_t delta);

/* A job argument (job option or --job-arg K=V), or NULL when not given. */
const char *tally_arg(tally_ctx *ctx, const char *name);

/* The state that setup() stored. */
void *tally_state(tally_ctx *ctx);

/* Records a human-readable error for the failing callback; returns -EINVAL for convenience. */
int tally_error(tally_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The engine's default partitioner (XXH3-64 of the key, modulo nparts). */
uint32_t tally_hash_partition(const void *key, size_t klen, uint32_t nparts);

/* The symbol a user job's shared object must export. */
#define TALLY_JOB_SYMBOL "tally_job_def"

#ifdef __cplusplus
}
#endif
#endif
