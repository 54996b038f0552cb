/* cond.h - the aggregate job's small languages: --where conditions, --agg lists, partial sums.
 *
 * CONDITIONS (cond_*)
 *
 *   cond     := conj { ("or" | "OR") conj }          "and" binds tighter than "or"
 *   conj     := primary { ("and" | "AND") primary }
 *   primary  := "(" cond ")" | operand op operand     at least one operand is a field
 *   op       := "==" | "=" | "!=" | "<" | "<=" | ">" | ">="
 *   operand  := field | number | 'string' | "string"
 *
 * A field name is made of letters, digits, '_', '.', '-' and bytes >= 0x80, and starts with a
 * letter, '_' or a byte >= 0x80. A number is [+-]digits[.digits][e[+-]digits] (also "1." and
 * ".5"). Inside a quoted string the quote is written twice or as \' (\" in "..."), and \\ is one
 * backslash; any other backslash is literal. Whitespace between tokens is optional.
 *
 * Two values compare as numbers when both are numbers by the rule above (and finite), whether
 * they came from a field or a literal, quoted or not; otherwise as byte strings (memcmp, a
 * proper prefix sorts first). So '10' > 9, but 'abc' < 'abd' and '10' < 'x'.
 *
 * Evaluation reads every field the condition names, even where the result is already decided,
 * so that a record lacking any of them is reported (and skipped) the same way every time.
 *
 * AGGREGATE LISTS (aggspec_*)
 *
 *   count | count_if(COND) | ratio_if(COND) | sum(F) | avg(F) | min(F) | max(F)
 *
 * separated by commas outside parentheses and quotes. A record contributes a partial aggregate
 * (aggspec_record); partials merge associatively (aggspec_merge); a portable byte encoding
 * carries them between processes (aggspec_encode / aggspec_decode_merge); aggspec_format prints
 * the final values.
 *
 * Parse errors point into the text: `--where: expected a comparison operator at offset 12:
 * "a = 1 and b ~ 2"` and, on a second line, a caret under offset 12.
 */
#ifndef TALLY_COND_H
#define TALLY_COND_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* ---- Conditions -------------------------------------------------------------------------- */

typedef struct cond cond;

/* Looks up a field of the record being evaluated, like tally_record_field(): 0 with the value
 * (valid for the whole evaluation), or a negative code such as TALLY_ENOFIELD/TALLY_EBADREC.
 * `ref` is what the resolver given to cond_bind/aggspec_bind returned for the name (NULL when
 * unbound), so that a lookup can skip comparing names. */
typedef int (*cond_lookup_fn)(void *arg, const char *name, const void *ref, const char **val,
                              size_t *vlen);
/* Turns a field name into the caller's handle for it (e.g. tally_field_ref). */
typedef const void *(*cond_resolve_fn)(void *arg, const char *name);

/* Why a record could not be evaluated: the field involved and, for a value that is not a
 * number, the value. Pointers are borrowed from the spec and from the record. */
typedef struct cond_failure {
    const char *field;
    const char *val;
    size_t vlen;
} cond_failure;

/* Parses a condition. `what` names its source in messages ("--where"). Returns 0 and a new
 * condition owned by the caller (cond_free), or -EINVAL with a pointing message in e. */
int cond_parse(const char *text, const char *what, cond **out, struct err *e);
void cond_free(cond *c);
/* Resolves every field the condition names once, for the lookups (c may be NULL). */
void cond_bind(cond *c, cond_resolve_fn resolve, void *arg);

/* Evaluates c against one record: 0 with *match set to 0 or 1, or the first negative code the
 * lookup returned, with the field's name in fail->field (fail may be NULL). Safe to call from
 * several threads at once on the same condition. */
int cond_eval(const cond *c, cond_lookup_fn lookup, void *arg, int *match, cond_failure *fail);

/* Calls fn once per field the condition names, in the order written; `other` is the field on
 * the other side of the comparison when both sides are fields (a string literal left unquoted
 * looks like that), else NULL. */
void cond_fields(const cond *c, void (*fn)(void *arg, const char *field, const char *other), void *arg);

/* 1 with *out set when s[0..n) is a finite decimal number by the rule above, else 0. */
int cond_number(const char *s, size_t n, double *out);
/* Compares two values as a condition does: <0, 0 or >0. */
int cond_compare(const char *a, size_t alen, const char *b, size_t blen);

/* Writes why a record was skipped, for tally_skip(): "missing field 'x'", "malformed record",
 * "field 'x' is not a number: \"abc\"", ... `code` is what cond_eval/aggspec_record returned. */
void cond_failure_text(int code, const cond_failure *f, char *out, size_t cap);

/* ---- Aggregate lists --------------------------------------------------------------------- */

/* Most aggregates in one list and most --group-by fields, so that per-record work can use
 * fixed-size stack arrays. */
#define AGGSPEC_MAX_ITEMS 64
/* Buffer sizes for aggspec_encode and aggspec_format, enough for AGGSPEC_MAX_ITEMS entries. */
#define AGGSPEC_ENCODED_SIZE(n) (12 + 32 * (size_t)(n))
#define AGGSPEC_ENCODED_MAX AGGSPEC_ENCODED_SIZE(AGGSPEC_MAX_ITEMS)
#define AGGSPEC_TEXT_MAX (32 * AGGSPEC_MAX_ITEMS)
/* aggspec_record: a sum/avg/min/max field is not a number. */
#define AGGSPEC_ENOTNUM (-EDOM)

typedef enum aggspec_kind {
    AGGSPEC_COUNT,
    AGGSPEC_COUNT_IF,
    AGGSPEC_RATIO_IF,
    AGGSPEC_SUM,
    AGGSPEC_AVG,
    AGGSPEC_MIN,
    AGGSPEC_MAX,
} aggspec_kind;

typedef struct aggspec_item {
    aggspec_kind kind;
    char *text;  /* as written, surrounding whitespace trimmed: the column header */
    char *field; /* sum/avg/min/max: the field */
    cond *cond;  /* count_if/ratio_if: the condition */
    const void *ref; /* the field's handle (aggspec_bind), or NULL */
    size_t same;     /* 1 + the index of an earlier entry of the same field, else 0: a record's
                      * value is then parsed once for avg(x),min(x),max(x) */
} aggspec_item;

typedef struct aggspec {
    aggspec_item *items;
    size_t n;
} aggspec;

/* Parses an aggregate list. `what` names its source in messages ("--agg"). Returns 0 and a new
 * spec owned by the caller (aggspec_free), or -EINVAL with a pointing message in e. */
int aggspec_parse(const char *text, const char *what, aggspec **out, struct err *e);
void aggspec_free(aggspec *a);
/* Resolves the fields of every entry (and of their conditions) once, for the lookups. */
void aggspec_bind(aggspec *a, cond_resolve_fn resolve, void *arg);

/* Parses a comma-separated list of field names (--group-by): each is trimmed and must not be
 * empty; at most AGGSPEC_MAX_ITEMS. Returns 0 with a new array of new strings, owned by the
 * caller (aggspec_free_fields), or -EINVAL with a pointing message. */
int aggspec_parse_fields(const char *text, const char *what, char ***names, size_t *n,
                         struct err *e);
void aggspec_free_fields(char **names, size_t n);

/* The partial aggregate of one list entry. Which members count depends on the kind:
 *   count, count_if: n;   ratio_if: n of total;
 *   sum, avg: n values; while is_int their exact sum as a 128-bit integer hi:lo, afterwards a
 *             Neumaier-compensated double sum + comp;
 *   min, max: n values; the extreme as ival while is_int, afterwards as dval.
 * is_int means every value so far was written as an integer that fits in int64. */
typedef struct aggspec_slot {
    uint64_t n, total;
    int is_int;
    uint64_t lo;
    int64_t hi;
    double sum, comp;
    int64_t ival;
    double dval;
} aggspec_slot;

/* Sets slots[0..a->n) to the empty aggregate. */
void aggspec_init(const aggspec *a, aggspec_slot *slots);
/* Computes one record's contribution into slots (which it initialises). Returns 0, a lookup's
 * negative code, or AGGSPEC_ENOTNUM; fail says which field (and value) was at fault. */
int aggspec_record(const aggspec *a, cond_lookup_fn lookup, void *arg, aggspec_slot *slots,
                   cond_failure *fail);
/* into += from, entry by entry. */
void aggspec_merge(const aggspec *a, aggspec_slot *into, const aggspec_slot *from);

/* Encodes slots into out (AGGSPEC_ENCODED_MAX bytes) and returns the length. The layout is
 * fixed little-endian with no pointers, so partials can cross processes and machines. */
size_t aggspec_encode(const aggspec *a, const aggspec_slot *slots, unsigned char *out);
/* Decodes an encoded partial and merges it into `into`. Returns 0, or -EBADMSG for bytes that
 * are not a partial of this spec (into may then be partly merged). */
int aggspec_decode_merge(const aggspec *a, aggspec_slot *into, const void *val, size_t len);

/* Writes the final values, TAB-separated, into out (AGGSPEC_TEXT_MAX bytes), NUL-terminated;
 * returns the length. count and count_if print as integers; sum, min and max as integers when
 * is_int (and a sum fits int64), else as doubles; avg and ratio_if always as doubles. */
size_t aggspec_format(const aggspec *a, const aggspec_slot *slots, char *out);
/* Prints d with the fewest significant digits in 10..17 that read back as d ("0.5",
 * "0.3333333333333333"); out needs 32 bytes. Returns the length. */
size_t aggspec_format_double(double d, char *out);

/* Copies s[0..n) to out escaping TAB, LF, CR and backslash as \t \n \r \\, so that values can
 * be joined with TABs. out needs 2n bytes; returns the length written. */
size_t aggspec_escape(const char *s, size_t n, char *out);
/* The column header: the group fields, then the aggregates as written, escaped, TAB-joined.
 * Returns a new string owned by the caller. */
char *aggspec_columns(const aggspec *a, char *const *group, size_t ngroup);

#endif
