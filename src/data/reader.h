/* reader.h - reads the records of one input segment: lines, CSV records, CRLF, gzip, CSV
 * headers, limits.
 *
 * Records are lines, or for CSV files RFC 4180 records: a CSV record ends at a newline outside
 * double quotes, so a quoted field may hold newlines, which stay in the record (a quote never
 * closed ends its record at the first newline after it). Records are handed out NUL-terminated
 * (the terminator replaces the \n or \r); their terminators (\n, \r\n) are not part of them.
 * The reader of segment [start, end) of a file returns the records that begin in it: from the
 * first record that begins at or after `start` to the last that begins before `end` (reading
 * past `end` to finish it). Where a CSV record begins depends on every quote before it; a reader
 * that starts mid-file finds it by a forward scan (see reader.c), and fails rather than read a
 * record twice or lose one when the scan was misled. A record longer than `max_record` bytes is
 * skipped whole and reported as READER_TOO_LONG, so memory stays bounded whatever the input.
 * For CSV files the first record of the file is the header; it is never returned as a record.
 * A .gz file is read whole, decompressed (offsets are uncompressed offsets); it must be gzip
 * (one or more members), complete and intact.
 *
 * Errors are negative codes with a message naming the file as the user gave it (input_file's
 * name): -EBADMSG when the data itself is bad (a .gz that is not gzip, cut short or corrupt; a
 * CSV split edge the scan misjudged), so that another attempt cannot help; other codes (-EIO,
 * -ENOENT, ...) from the system.
 */
#ifndef TALLY_READER_H
#define TALLY_READER_H

#include <stdint.h>

#include "common/util.h"
#include "data/fields.h"
#include "data/input.h"

typedef struct reader reader;

enum {
    READER_END = 0,
    READER_RECORD = 1,
    READER_TOO_LONG = 2, /* a record over max_record was skipped; *offset says where */
};

/* Opens `seg` of `file` (both borrowed: they must outlive the reader); for CSV files reads the
 * header. Returns 0 and a reader owned by the caller (free with reader_close), or a negative
 * code with a message naming the file in e. */
int reader_open(reader **out, const input_file *file, const input_segment *seg, uint64_t max_record,
                struct err *e);
/* The same with a first buffer of `cap` bytes (it grows as records need): for a reader that
 * looks at the first records only (probe.c), where reader_open's 1 MiB would be read whole. */
int reader_open_sized(reader **out, const input_file *file, const input_segment *seg, uint64_t max_record,
                      size_t cap, struct err *e);
/* Returns READER_RECORD with the record (valid until the next call), READER_TOO_LONG,
 * READER_END, or a negative code (I/O error, bad gzip data, a misjudged CSV split edge; message
 * in e). */
int reader_next(reader *r, const char **data, size_t *len, uint64_t *offset, struct err *e);
/* The CSV header of the file, or NULL (text/JSONL). Owned by the reader. */
const fields_header *reader_header(const reader *r);
/* Bytes of the segment consumed so far (for progress; compressed bytes for gz). */
uint64_t reader_progress(const reader *r);
void reader_close(reader *r);

#endif
