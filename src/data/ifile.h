/* ifile.h - the intermediate file: sorted key/value runs, one segment per reduce partition.
 *
 * Layout: the segments of partitions 0..R-1 back to back, then a trailer with, per partition,
 * its offset, length, record count and CRC-32, then R, flags and a magic number. A segment is
 * a sequence of records sorted by key (bytes, memcmp order, shorter first on a tie):
 *     varint klen, then varint vlen and the value bytes after the key   (byte values)
 *     varint klen, then zigzag varint value                             (TALLY_INT_VALUES)
 *     followed by the key bytes (and for byte values, the value bytes).
 * Map outputs, map spill runs and fetched shuffle segments all use this format, so one merge
 * routine serves the map-side merge and the reduce-side merge, locally and in the cluster.
 */
#ifndef TALLY_IFILE_H
#define TALLY_IFILE_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

typedef struct ifile_part {
    uint64_t offset, length, records;
    uint32_t crc;
} ifile_part;

/* ---- Writing ----------------------------------------------------------------------------- */

typedef struct ifile_writer ifile_writer;

/* Creates `path` for `nparts` partitions. int_values selects the integer record form. */
int ifile_writer_open(ifile_writer **out, const char *path, uint32_t nparts, int int_values,
                      struct err *e);
/* Records must arrive in partition order, and in key order within a partition. */
int ifile_writer_add(ifile_writer *w, uint32_t part, const void *key, size_t klen, const void *val,
                     size_t vlen, struct err *e);
int ifile_writer_add_int(ifile_writer *w, uint32_t part, const void *key, size_t klen, int64_t val,
                         struct err *e);
/* Writes the trailer and closes. On any earlier error, call it anyway to free (it fails). */
int ifile_writer_close(ifile_writer *w, struct err *e);
/* Closes and unlinks without finishing (error paths). */
void ifile_writer_abort(ifile_writer *w);
uint64_t ifile_writer_records(const ifile_writer *w);

/* ---- Reading ----------------------------------------------------------------------------- */

/* Reads the trailer of `path`: nparts entries into *parts (caller frees). */
int ifile_read_index(const char *path, ifile_part **parts, uint32_t *nparts, int *int_values,
                     struct err *e);

typedef struct ifile_seg ifile_seg;

/* Opens the byte range [offset, offset+length) of `path` holding `records` records; the CRC is
 * checked when the range has been read to its end (crc 0 with check 0 disables). */
int ifile_seg_open(ifile_seg **out, const char *path, uint64_t offset, uint64_t length, uint32_t crc,
                   int check_crc, int int_values, struct err *e);
/* Returns 1 with the next record (pointers valid until the next call), 0 at the end, or a
 * negative code (truncated or corrupt data, CRC mismatch; message names the file). */
int ifile_seg_next(ifile_seg *s, const char **key, size_t *klen, const char **val, size_t *vlen,
                   int64_t *ival, struct err *e);
void ifile_seg_close(ifile_seg *s);

/* ---- Fault injection --------------------------------------------------------------------- */

/* When the environment sets TALLY_FAULT_ENOSPC_AFTER=N, intermediate writes in this process
 * fail with ENOSPC once N bytes have been written, to test the disk-full paths. */
void ifile_fault_init(void);
/* write() with EINTR handling and the injected fault. Returns 0 or -errno. */
int ifile_write_all(int fd, const void *p, size_t n);

#endif
