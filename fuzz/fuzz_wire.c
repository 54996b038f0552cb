/* fuzz_wire.c - libFuzzer target for every decoder of bytes a peer sends: request bodies
 * (heartbeats, reports, fetch failures, /v1/chaos, job specs, splits, counters, map
 * locations), executor pipe frames, COND/--agg texts and CSV/JSON records; and the job plans
 * and descriptions a coordinator reads back from its state. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cluster/taskproc.h"
#include "cluster/wire.h"
#include "data/fields.h"
#include "jobs/cond.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct err e = {0};
    json_t *o = NULL;
    /* The three worker messages, whole bodies as the coordinator receives them. */
    wire_heartbeat hb;
    if (wire_heartbeat_decode((const char *)data, size, &hb, &e) == 0) wire_heartbeat_free(&hb);
    wire_report rep;
    if (wire_report_decode((const char *)data, size, &rep, &e) == 0) wire_report_free(&rep);
    wire_fetch_failure ff;
    if (wire_fetch_failure_decode((const char *)data, size, &ff, &e) == 0) wire_fetch_failure_free(&ff);
    /* A worker's POST /v1/chaos body. */
    double slow;
    (void)wire_chaos_decode((const char *)data, size, &slow, &e);
    /* An executor pipe frame: length prefix and body. */
    int fds[2];
    if (size <= 65536 && pipe(fds) == 0) {
        if (write(fds[1], data, size) == (ssize_t)size) {
            close(fds[1]);
            char *frame = NULL;
            size_t flen = 0;
            if (taskproc_frame_read(fds[0], &frame, &flen) == 1) free(frame);
        } else {
            close(fds[1]);
        }
        close(fds[0]);
    }
    if (wire_parse_object((const char *)data, size, &o, &e) == 0) {
        jobspec s;
        if (wire_jobspec_decode(json_object_get(o, "spec"), &s, &e) == 0) {
            json_t *back = wire_jobspec_encode(&s);
            json_decref(back);
        }
        jobspec_free(&s);
        input_set in;
        if (wire_split_decode(json_object_get(o, "split"), &in, &e) == 0) input_set_free(&in);
        /* What a coordinator reads back from its journal or ZooKeeper (cluster/state.h). */
        if (wire_plan_decode(json_object_get(o, "plan"), &in, &e) == 0) input_set_free(&in);
        execpool_job desc;
        if (wire_desc_decode(json_object_get(o, "desc"), &desc, &e) == 0) execpool_job_free(&desc);
        counters c;
        wire_counters_decode(json_object_get(o, "counters"), &c, &e);
        counters_free(&c);
        wire_map_loc *locs = NULL;
        size_t nlocs = 0;
        if (wire_maps_decode(json_object_get(o, "maps"), &locs, &nlocs, &e) == 0) free(locs);
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
