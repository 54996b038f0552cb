/* merge.h - k-way merge of sorted intermediate segments, grouped by key.
 *
 * The merge owns a binary heap of segment readers ordered by their current key (ties broken by
 * source index, so equal keys come out in source order). A group is one key with an iterator
 * over all its values across every source; values not consumed by the caller are skipped
 * before the next group starts. Memory is one read buffer per source plus the current key.
 */
#ifndef TALLY_MERGE_H
#define TALLY_MERGE_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "data/ifile.h"
#include "data/values.h"

typedef struct merge merge;

/* Takes ownership of the `n` segment readers (closed by merge_free). */
merge *merge_new(ifile_seg **segs, size_t n, int int_values);
/* Returns 1 with the next key (valid until the next call) and its values, 0 when all sources
 * are exhausted, or a negative code with the message in e. */
int merge_next_group(merge *m, const char **key, size_t *klen, tally_values **vals, struct err *e);
/* Error seen while iterating values (the iterator returns a negative code and records it). */
const struct err *merge_error(const merge *m);
uint64_t merge_records(const merge *m);
void merge_free(merge *m);

#endif
