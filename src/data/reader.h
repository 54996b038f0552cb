/* reader.h - reads the records of one input segment: lines, CRLF, gzip, CSV headers, limits.
 *
 * Records are lines, handed out NUL-terminated (the terminator replaces the \n or \r). The reader of segment [start, end) of a file starts at the first record
 * that begins at or after `start` and stops after the last record that begins before `end`
 * (reading past `end` to finish it). Line terminators (\n, \r\n) are not part of the record.
 * A record longer than `max_record` bytes is skipped whole and reported as READER_TOO_LONG, so
 * memory stays bounded whatever the input. For CSV files the first line of the file is the
 * header; it is never returned as a record.
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

/* Opens `seg` of `file`. Returns 0 and a reader owned by the caller, or a negative code with a
 * message naming the file in e. */
int reader_open(reader **out, const input_file *file, const input_segment *seg, uint64_t max_record,
                struct err *e);
/* Returns READER_RECORD with the record (valid until the next call), READER_TOO_LONG,
 * READER_END, or a negative code (I/O or decompression error, message in e). */
int reader_next(reader *r, const char **data, size_t *len, uint64_t *offset, struct err *e);
/* The CSV header of the file, or NULL (text/JSONL). Owned by the reader. */
const fields_header *reader_header(const reader *r);
/* Bytes of the segment consumed so far (for progress; compressed bytes for gz). */
uint64_t reader_progress(const reader *r);
void reader_close(reader *r);

#endif
