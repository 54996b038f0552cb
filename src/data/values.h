/* values.h - the engine side of `tally_values`: one iterator shape that every grouping source
 * (the map buffer, the k-way merge) implements, so combine and reduce see one interface. */
#ifndef TALLY_VALUES_H
#define TALLY_VALUES_H

#include <stddef.h>
#include <stdint.h>

#include <tally/tally.h>

struct tally_values {
    /* Returns 1 and the next value (bytes in val and vlen, or *ival when int_values), 0 at the
     * end of the group, or a negative code. */
    int (*next)(struct tally_values *it, const void **val, size_t *vlen, int64_t *ival);
    int int_values;
    int error;          /* first negative code seen, reported by the task */
};

#endif
