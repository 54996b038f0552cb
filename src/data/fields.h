/* fields.h - named field access in CSV and JSON Lines records, behind tally_record_field().
 *
 * The reader (data/reader.c) owns one `fields_cache` per task. For every record it calls
 * fields_cache_reset(), which only remembers the record; the record is parsed on the first
 * fields_get() for it, so jobs that never look at fields pay nothing.
 *
 * CSV (RFC 4180 subset): a record is what the reader hands over (data/reader.h), newlines of
 * quoted fields included; fields are separated by commas; a field may be enclosed in double
 * quotes, inside which commas and newlines are literal and "" is one quote (a quote elsewhere
 * is an ordinary character). A quote that is never closed, or text after a closing quote, makes
 * the record malformed (TALLY_EBADREC). The first record of each file is its header: the field
 * names. A record with fewer fields than the header lacks the missing ones (TALLY_ENOFIELD);
 * one with more is malformed.
 *
 * JSON Lines: each record is one JSON object, accepted or refused exactly as jansson would (the
 * scan is data/jsonscan.c's, one pass per record for every name asked for). A name with dots
 * ("meta.device.id") walks nested objects. A string yields its unescaped bytes; numbers, true
 * and false yield their JSON text as written; objects and arrays yield their text without the
 * whitespace outside strings; null is absent.
 */
#ifndef TALLY_FIELDS_H
#define TALLY_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

typedef enum fields_format {
    FIELDS_TEXT = 0, /* plain lines: no fields */
    FIELDS_CSV,
    FIELDS_JSONL,
} fields_format;

/* A CSV header: the column names of one file. */
typedef struct fields_header fields_header;

/* Parses a CSV header line (without its terminator). Returns 0 and a new header owned by the
 * caller, or a negative code with a message in e (e.g. an unterminated quote). */
int fields_header_parse(const char *line, size_t len, fields_header **out, struct err *e);
void fields_header_free(fields_header *h);
/* Number of columns and the i-th name (NUL-terminated, owned by the header). */
size_t fields_header_count(const fields_header *h);
const char *fields_header_name(const fields_header *h, size_t i);

/* Per-task parse state, reused across records to avoid allocation per record. */
typedef struct fields_cache fields_cache;

fields_cache *fields_cache_new(void);
void fields_cache_free(fields_cache *c);
/* Points the cache at a new record. `hdr` is the record's file header for CSV (borrowed; it
 * must outlive the record), NULL otherwise. `data` is borrowed until the next reset. */
void fields_cache_reset(fields_cache *c, fields_format fmt, const fields_header *hdr,
                        const char *data, size_t len);
/* Looks up a field of the current record: 0 with val and vlen set (valid until the next reset),
 * TALLY_ENOFIELD, TALLY_EBADREC, or -EINVAL for FIELDS_TEXT. */
int fields_get(fields_cache *c, const char *name, const char **val, size_t *vlen);

/* Interned field names (tally_field_ref): one handle per distinct name for the life of the
 * process, with a small dense id, so that a lookup through a handle finds its CSV column by
 * indexing an array instead of comparing names. Thread-safe; NULL past TALLY_FIELD_REFS_MAX
 * names (a bound, since handles are never freed). */
struct tally_field {
    const char *name;
    size_t len;
    uint32_t id;
};
const struct tally_field *fields_ref(const char *name);
int fields_get_ref(fields_cache *c, const struct tally_field *f, const char **val, size_t *vlen);
/* fields_get_ref for n fields at once: rcs[i] its code, vals[i] and lens[i] set where 0. */
void fields_get_many(fields_cache *c, const struct tally_field *const *f, size_t n, const char **vals,
                     size_t *lens, int *rcs);

#endif
