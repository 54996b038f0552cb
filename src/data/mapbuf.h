/* mapbuf.h - the map-side buffer: collects map output in memory within a byte budget, combines
 * it when it can, and hands it out sorted by (partition, key) for a spill.
 *
 * Three layouts, chosen by the job:
 *  - sum mode (TALLY_COMBINE_SUM): an open-addressing hash table from key to an int64 sum. Each
 *    emit folds into the table at once (in-memory combining as Phoenix does), so a job such as
 *    word count keeps one entry per distinct key and rarely spills at all.
 *  - fold mode (a job with a fold function): the same table, each key holding the job's
 *    accumulator of a fixed size (8-byte aligned) that the caller folds values into; the
 *    group iteration then yields one value per key, the accumulator itself.
 *  - list mode (everything else): records appended to an arena plus a 16-byte index entry each;
 *    sorting the index groups equal keys for the job's combiner at spill time (as Hadoop does).
 * The budget counts the arena, the table or index, and the scratch space a sort needs, so the
 * memory of a map task is bounded by --sort-buffer whatever the input.
 */
#ifndef TALLY_MAPBUF_H
#define TALLY_MAPBUF_H

#include <stddef.h>
#include <stdint.h>

#include <tally/tally.h>

#include "data/values.h"

typedef struct mapbuf mapbuf;

/* `partition` may be NULL for the default hash partitioner; `pstate` is passed to it. */
mapbuf *mapbuf_new(uint32_t nparts, uint64_t limit, int int_values, int sum_mode,
                   uint32_t (*partition)(const void *, size_t, uint32_t, void *), void *pstate);
void mapbuf_free(mapbuf *mb);
/* acc_size must be at least 1. */
mapbuf *mapbuf_new_fold(uint32_t nparts, uint64_t limit, size_t acc_size,
                        uint32_t (*partition)(const void *, size_t, uint32_t, void *), void *pstate);
/* True when mb was made with these parameters (acc_size 0: not fold mode), so it can serve
 * another task after a reset. */
int mapbuf_compatible(const mapbuf *mb, uint32_t nparts, uint64_t limit, int int_values, int sum_mode,
                      size_t acc_size, uint32_t (*partition)(const void *, size_t, uint32_t, void *),
                      void *pstate);

/* Adds one record; the bytes are copied. Returns 1 when the buffer has reached its budget and
 * must be spilled, else 0. In sum mode adds are batched: hashes are computed and table lines
 * prefetched for a batch of keys before any is probed, so that cache misses overlap. */
int mapbuf_add(mapbuf *mb, const void *key, size_t klen, const void *val, size_t vlen);
int mapbuf_add_int(mapbuf *mb, const void *key, size_t klen, int64_t val);
/* Sum mode: adds keys[0..n) with one value each, stopping early when the buffer reaches its
 * budget; returns how many it added (the caller spills and goes on with the rest). `padded`:
 * every key is followed by at least 16 readable bytes, so it can be loaded without branches. */
size_t mapbuf_add_int_many(mapbuf *mb, const void *const *keys, const size_t *lens, size_t n, int64_t val,
                           int padded);

/* Fold mode: the accumulator of key (acc_size bytes, 8-byte aligned, valid until the next call
 * or reset), *is_new set when the key was not there (its accumulator is then uninitialised).
 * Check mapbuf_full() afterwards. */
void *mapbuf_fold_slot(mapbuf *mb, const void *key, size_t klen, int *is_new);

/* Records held (after in-memory combining in sum mode); applies any batched adds first. */
uint64_t mapbuf_records(mapbuf *mb);
/* Bytes of memory held by the buffer now. */
uint64_t mapbuf_bytes(const mapbuf *mb);
int mapbuf_full(const mapbuf *mb);

/* Sorts the buffer by (partition, key) and starts the group iteration (applying batched adds). */
void mapbuf_sort(mapbuf *mb);
/* Returns 1 with the next group: its partition, key (valid until mapbuf_reset) and an iterator
 * over its values (valid until the next call); 0 when done. */
int mapbuf_next_group(mapbuf *mb, uint32_t *part, const char **key, size_t *klen, tally_values **vals);
/* Empties the buffer after a spill, keeping its memory for reuse (up to the budget). */
void mapbuf_reset(mapbuf *mb);

#endif
