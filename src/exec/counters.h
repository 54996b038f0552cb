/* counters.h - job counters: the built-in ones by index (fast), job-defined ones by name. */
#ifndef TALLY_COUNTERS_H
#define TALLY_COUNTERS_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"

/* The built-in counters, in the order _counters.json lists them. */
#define COUNTERS_BUILTIN(X)                                                                  \
    X(INPUT_FILES, "input_files")                                                            \
    X(INPUT_BYTES, "input_bytes")                                                            \
    X(INPUT_RECORDS, "input_records")                                                        \
    X(MAP_OUTPUT_RECORDS, "map_output_records")                                              \
    X(COMBINE_INPUT_RECORDS, "combine_input_records")                                        \
    X(COMBINE_OUTPUT_RECORDS, "combine_output_records")                                      \
    X(SPILLED_RECORDS, "spilled_records")                                                    \
    X(SHUFFLE_BYTES, "shuffle_bytes")                                                        \
    X(REDUCE_INPUT_RECORDS, "reduce_input_records")                                          \
    X(REDUCE_INPUT_GROUPS, "reduce_input_groups")                                            \
    X(OUTPUT_RECORDS, "output_records")                                                      \
    X(OUTPUT_BYTES, "output_bytes")                                                          \
    X(RECORDS_SKIPPED, "records_skipped")                                                    \
    X(MAP_TASKS, "map_tasks")                                                                \
    X(REDUCE_TASKS, "reduce_tasks")                                                          \
    X(TASK_ATTEMPTS, "task_attempts")

enum counter_id {
#define COUNTERS_ENUM(id, name) CNT_##id,
    COUNTERS_BUILTIN(COUNTERS_ENUM)
#undef COUNTERS_ENUM
    CNT_NBUILTIN
};

typedef struct counter_user {
    char *name;
    int64_t value;
} counter_user;

typedef struct counters {
    int64_t v[CNT_NBUILTIN];
    counter_user *user;
    size_t nuser, cap;
} counters;

void counters_init(counters *c);
void counters_free(counters *c);
/* Adds to a job-defined counter, creating it at 0. Names of built-ins are refused (ignored). */
void counters_add_user(counters *c, const char *name, int64_t delta);
/* dst += src, counter by counter. */
void counters_merge(counters *dst, const counters *src);
/* Appends one flat JSON object (built-ins first, then job counters by name) to out. */
void counters_to_json(const counters *c, struct buf *out);
const char *counters_name(enum counter_id id);

#endif
