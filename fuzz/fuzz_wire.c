/* fuzz_wire.c - libFuzzer target for every decoder of bytes a peer sends: request bodies
 * (job specs, splits, counters, heartbeats, reports), COND/--agg texts and CSV/JSON records. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cluster/wire.h"
#include "data/fields.h"
#include "jobs/cond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err e = {0};
    json_t *o = NULL;
    if (wire_parse_object((const char *)data, size, &o, &e) == 0) {
        jobspec s;
        if (wire_jobspec_decode(json_object_get(o, "spec"), &s, &e) == 0) {
            json_t *back = wire_jobspec_encode(&s);
            json_decref(back);
        }
        jobspec_free(&s);
        input_set in;
        if (wire_split_decode(json_object_get(o, "split"), &in, &e) == 0) input_set_free(&in);
        counters c;
        wire_counters_decode(json_object_get(o, "counters"), &c, &e);
        counters_free(&c);
        const char *str;
        uint64_t v;
        wire_get_str(o, "name", &str, 1, &e);
        wire_get_u64(o, "slots", 256, &v, 1, &e);
        json_decref(o);
    }
    /* The same bytes as a CSV header + record and as a JSON Lines record. */
    fields_header *h = NULL;
    const char *nl = memchr(data, '\n', size);
    size_t hl = nl ? (size_t)(nl - (const char *)data) : size;
    if (fields_header_parse((const char *)data, hl, &h, &e) == 0) {
        fields_cache *fc = fields_cache_new();
        const char *rec = nl ? nl + 1 : "";
        size_t rl = nl ? size - hl - 1 : 0;
        fields_cache_reset(fc, FIELDS_CSV, h, rec, rl);
        const char *val;
        size_t vl;
        for (size_t i = 0; i < fields_header_count(h); i++) fields_get(fc, fields_header_name(h, i), &val, &vl);
        fields_cache_reset(fc, FIELDS_JSONL, NULL, (const char *)data, size);
        fields_get(fc, "a.b", &val, &vl);
        fields_get(fc, "producer_id", &val, &vl);
        fields_cache_free(fc);
        fields_header_free(h);
    }
    /* The bytes as --where and --agg text. */
    char *text = xstrndup((const char *)data, size);
    cond *c = NULL;
    if (cond_parse(text, "--where", &c, &e) == 0) cond_free(c);
    aggspec *a = NULL;
    if (aggspec_parse(text, "--agg", &a, &e) == 0) aggspec_free(a);
    free(text);
    return 0;
}
