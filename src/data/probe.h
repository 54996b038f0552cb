/* probe.h - a look at the start of each input before a job runs, to refuse a job that cannot
 * work: a field the job needs (tally_require_field) that an input does not have.
 *
 * A misspelt `--group-by prodcer_id` or an unquoted `--where "producer_id==producer-01"`
 * would otherwise skip every record and "succeed" with empty output. A CSV file's fields are
 * its header; a JSON Lines file's are the keys (dotted names walk nested objects; a key whose
 * value is null counts as present) of its first PROBE_JSON_RECORDS records, within its first
 * PROBE_JSON_BYTES bytes. Inputs that cannot be read are left to the job to report.
 */
#ifndef TALLY_PROBE_H
#define TALLY_PROBE_H

#include <stddef.h>

#include "common/util.h"
#include "data/input.h"

#define PROBE_JSON_RECORDS 100
#define PROBE_JSON_BYTES (1u << 20)

/* Checks that every input has each of the n fields names[i]; hints[i] (may be NULL) says who
 * named it. Returns 0, or -EINVAL with a message naming the first missing field, the input
 * and the fields it has. */
int probe_fields(const input_set *in, char *const *names, char *const *hints, size_t n, uint64_t max_record,
                 struct err *e);

#endif
