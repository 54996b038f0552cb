/* wire.h - JSON encodings of what crosses the network: job specs, task assignments, attempt
 * reports and counters (protocol version TALLY_WIRE_VERSION, see docs/protocol.md). Every
 * decoder validates types and bounds and fails with a message naming the bad field; nothing a
 * peer sends can crash the receiver. */
#ifndef TALLY_WIRE_H
#define TALLY_WIRE_H

#include <jansson.h>
#include <stdint.h>

#include "common/util.h"
#include "data/input.h"
#include "exec/counters.h"
#include "exec/jobspec.h"

#define TALLY_WIRE_VERSION 1

json_t *wire_jobspec_encode(const jobspec *s);
int wire_jobspec_decode(const json_t *j, jobspec *s, struct err *e);

json_t *wire_counters_encode(const counters *c);
int wire_counters_decode(const json_t *j, counters *c, struct err *e);

/* A map task's input: the files it reads and its segments, as one input_set with one split. */
json_t *wire_split_encode(const input_set *in, size_t split);
int wire_split_decode(const json_t *j, input_set *out, struct err *e);

/* Where each map's committed output is, as handed to a reducer and answered by
 * GET /v1/jobs/ID/maps: [{"index","address","attempt"}], attempt -1 (address "") while the
 * map has no committed output. */
typedef struct wire_map_loc {
    uint32_t index;
    int64_t attempt;
    char address[160];   /* host:port of the worker serving it */
} wire_map_loc;

/* Decodes the array into n entries indexed by map number (every index 0..n-1 exactly once). */
int wire_maps_decode(const json_t *arr, wire_map_loc **out, size_t *n, struct err *e);

/* Fetches a string/int field with bounds; helpers shared by the decoders and handlers. */
int wire_get_str(const json_t *obj, const char *key, const char **out, int required, struct err *e);
int wire_get_u64(const json_t *obj, const char *key, uint64_t max, uint64_t *out, int required,
                 struct err *e);
/* Parses a request body into an object; -EINVAL with a message if it is not one. */
int wire_parse_object(const char *body, size_t len, json_t **out, struct err *e);
/* Serialises compactly; caller frees. */
char *wire_dump(const json_t *j);

#endif
