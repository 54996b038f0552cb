/* wire.c - JSON encoders and validating decoders for the cluster protocol. */
#include "cluster/wire.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

int wire_parse_object(const char *body, size_t len, json_t **out, struct err *e)
{
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) return err_set(e, -EINVAL, "malformed JSON at offset %d: %s", je.position, je.text);
    if (!json_is_object(j)) {
        json_decref(j);
        return err_set(e, -EINVAL, "request body must be a JSON object");
    }
    *out = j;
    return 0;
}

char *wire_dump(const json_t *j)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (!s) s = xstrdup("null");
    return s;
}

int wire_get_str(const json_t *obj, const char *key, const char **out, int required, struct err *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        *out = NULL;
        return required ? err_set(e, -EINVAL, "missing field '%s'", key) : 0;
    }
    if (!json_is_string(v)) return err_set(e, -EINVAL, "field '%s' must be a string", key);
    *out = json_string_value(v);
    return 0;
}

int wire_get_u64(const json_t *obj, const char *key, uint64_t max, uint64_t *out, int required,
                 struct err *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) {
        if (required) return err_set(e, -EINVAL, "missing field '%s'", key);
        return 0;
    }
    if (json_is_boolean(v)) {
        *out = json_is_true(v);
        return 0;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return err_set(e, -EINVAL, "field '%s' must be an integer from 0 to %llu", key, (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

json_t *wire_jobspec_encode(const jobspec *s)
{
    json_t *args = json_object();
    for (size_t i = 0; i < s->nargs; i++) json_object_set_new(args, s->arg_names[i], json_string(s->arg_values[i]));
    json_t *inputs = json_array();
    for (size_t i = 0; i < s->ninputs; i++) json_array_append_new(inputs, json_string(s->inputs[i]));
    return json_pack("{s:s, s:o, s:o, s:s, s:I, s:I, s:b, s:i, s:I, s:I, s:I, s:b, s:b, s:I, s:f, s:s?}",
                     "job", s->job, "args", args, "inputs", inputs, "out", s->out ? s->out : "",
                     "maps", (json_int_t)s->maps, "reduces", (json_int_t)s->reduces,
                     "format_forced", s->format_forced, "format", (int)s->format,
                     "sort_buffer", (json_int_t)s->sort_buffer, "max_record", (json_int_t)s->max_record,
                     "split_size", (json_int_t)s->split_size, "strict", s->strict,
                     "overwrite", s->overwrite, "max_attempts", (json_int_t)s->max_attempts,
                     "max_skipped_ratio", s->max_skipped_ratio, "cwd", s->cwd);
}

int wire_jobspec_decode(const json_t *j, jobspec *s, struct err *e)
{
    jobspec_init(s);
    const char *job, *out;
    uint64_t v;
    int rc;
    if (!json_is_object(j)) return err_set(e, -EINVAL, "job spec must be an object");
    if ((rc = wire_get_str(j, "job", &job, 1, e)) || (rc = wire_get_str(j, "out", &out, 1, e))) return rc;
    if (!*job || !*out) return err_set(e, -EINVAL, "job and out must not be empty");
    s->job = xstrdup(job);
    s->out = xstrdup(out);
    json_t *args = json_object_get(j, "args");
    if (args && !json_is_object(args)) return err_set(e, -EINVAL, "field 'args' must be an object");
    const char *k;
    json_t *av;
    json_object_foreach(args, k, av) {
        if (!json_is_string(av)) return err_set(e, -EINVAL, "job argument '%s' must be a string", k);
        jobspec_set_arg(s, k, json_string_value(av));
    }
    json_t *inputs = json_object_get(j, "inputs");
    if (!json_is_array(inputs) || json_array_size(inputs) == 0)
        return err_set(e, -EINVAL, "field 'inputs' must be a non-empty array of paths");
    size_t i;
    json_t *iv;
    json_array_foreach(inputs, i, iv) {
        if (!json_is_string(iv)) return err_set(e, -EINVAL, "inputs[%zu] must be a string", i);
        jobspec_add_input(s, json_string_value(iv));
    }
    v = s->maps;
    if ((rc = wire_get_u64(j, "maps", 1000000, &v, 0, e))) return rc;
    s->maps = v;
    v = s->reduces;
    if ((rc = wire_get_u64(j, "reduces", 100000, &v, 0, e))) return rc;
    if (v == 0) return err_set(e, -EINVAL, "field 'reduces' must be at least 1");
    s->reduces = (uint32_t)v;
    v = (uint64_t)s->format_forced;
    if ((rc = wire_get_u64(j, "format_forced", 1, &v, 0, e))) return rc;
    s->format_forced = (int)v;
    v = (uint64_t)s->format;
    if ((rc = wire_get_u64(j, "format", FIELDS_JSONL, &v, 0, e))) return rc;
    s->format = (fields_format)v;
    if ((rc = wire_get_u64(j, "sort_buffer", 3ull << 30, &s->sort_buffer, 0, e))) return rc;
    if (s->sort_buffer < 4096) return err_set(e, -EINVAL, "field 'sort_buffer' must be at least 4096");
    if ((rc = wire_get_u64(j, "max_record", 1ull << 40, &s->max_record, 0, e))) return rc;
    if (s->max_record < 16) return err_set(e, -EINVAL, "field 'max_record' must be at least 16");
    if ((rc = wire_get_u64(j, "split_size", 1ull << 50, &s->split_size, 0, e))) return rc;
    if (s->split_size < 1) return err_set(e, -EINVAL, "field 'split_size' must be at least 1");
    v = (uint64_t)s->strict;
    if ((rc = wire_get_u64(j, "strict", 1, &v, 0, e))) return rc;
    s->strict = (int)v;
    v = (uint64_t)s->overwrite;
    if ((rc = wire_get_u64(j, "overwrite", 1, &v, 0, e))) return rc;
    s->overwrite = (int)v;
    v = s->max_attempts;
    if ((rc = wire_get_u64(j, "max_attempts", 100, &v, 0, e))) return rc;
    if (v == 0) return err_set(e, -EINVAL, "field 'max_attempts' must be at least 1");
    s->max_attempts = (uint32_t)v;
    json_t *msr = json_object_get(j, "max_skipped_ratio");
    if (msr && (!json_is_number(msr) || !(json_number_value(msr) >= 0 && json_number_value(msr) <= 1)))
        return err_set(e, -EINVAL, "field 'max_skipped_ratio' must be a number from 0 to 1");
    if (msr) s->max_skipped_ratio = json_number_value(msr);
    const char *cwd = NULL;
    if ((rc = wire_get_str(j, "cwd", &cwd, 0, e))) return rc;
    if (cwd && cwd[0] != '/') return err_set(e, -EINVAL, "field 'cwd' must be an absolute path");
    if (cwd) s->cwd = xstrdup(cwd);
    return 0;
}

json_t *wire_counters_encode(const counters *c)
{
    json_t *o = json_object();
    for (int i = 0; i < CNT_NBUILTIN; i++)
        json_object_set_new(o, counters_name((enum counter_id)i), json_integer(c->v[i]));
    for (size_t i = 0; i < c->nuser; i++) json_object_set_new(o, c->user[i].name, json_integer(c->user[i].value));
    return o;
}

int wire_counters_decode(const json_t *j, counters *c, struct err *e)
{
    counters_init(c);
    if (!json_is_object(j)) return err_set(e, -EINVAL, "counters must be an object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v) {
        if (!json_is_integer(v)) return err_set(e, -EINVAL, "counter '%s' must be an integer", k);
        int builtin = -1;
        for (int i = 0; i < CNT_NBUILTIN; i++)
            if (strcmp(k, counters_name((enum counter_id)i)) == 0) builtin = i;
        if (builtin >= 0) c->v[builtin] = json_integer_value(v);
        else if (c->nuser < 1000 && strlen(k) < 256) counters_add_user(c, k, json_integer_value(v));
    }
    return 0;
}

json_t *wire_split_encode(const input_set *in, size_t split)
{
    json_t *files = json_array();
    json_t *segs = json_array();
    const input_split *s = &in->splits[split];
    for (size_t i = 0; i < s->nsegs; i++) {
        const input_file *f = &in->files[s->segs[i].file];
        json_array_append_new(files, json_pack("{s:s, s:s, s:I, s:i, s:b}", "name", f->name, "path", f->path, "size",
                                               (json_int_t)f->size, "format", (int)f->format, "gz", f->gz));
        json_array_append_new(segs, json_pack("{s:i, s:I, s:I}", "file", (int)i, "start",
                                              (json_int_t)s->segs[i].start, "end", (json_int_t)s->segs[i].end));
    }
    return json_pack("{s:o, s:o}", "files", files, "segments", segs);
}

json_t *wire_task_encode(const char *job_id, const sched_job *sj, uint32_t attempt, const json_t *spec,
                         const input_set *in)
{
    const sched_task *t = &sj->tasks[sj->attempts[attempt].task];
    json_t *o = json_pack("{s:s, s:i, s:s, s:i, s:O}", "job", job_id, "attempt", (int)attempt, "phase",
                          t->phase == SCHED_MAP ? "map" : "reduce", "index", (int)t->index, "spec", spec);
    if (t->phase == SCHED_MAP) {
        json_object_set_new(o, "split", wire_split_encode(in, t->index));
        const sched_crash *sk[SCHED_MAX_CRASHES];
        size_t n = sched_map_skips(sj, t->index, sk, SCHED_MAX_CRASHES);
        json_t *skip = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(skip, json_pack("{s:s, s:I}", "file", sk[i]->file, "offset", (json_int_t)sk[i]->offset));
        json_object_set_new(o, "skip", skip);
    }
    return o;
}

int wire_split_decode(const json_t *j, input_set *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    json_t *files = json_object_get(j, "files"), *segs = json_object_get(j, "segments");
    if (!json_is_array(files) || !json_is_array(segs) || json_array_size(files) > 100000 ||
        json_array_size(segs) != json_array_size(files))
        return err_set(e, -EINVAL, "split must have arrays 'files' and 'segments' of equal length");
    size_t n = json_array_size(files);
    out->files = xcalloc(n ? n : 1, sizeof *out->files);
    out->splits = xcalloc(1, sizeof *out->splits);
    out->nsplits = 1;
    out->splits[0].segs = xcalloc(n ? n : 1, sizeof *out->splits[0].segs);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        json_t *f = json_array_get(files, i), *s = json_array_get(segs, i);
        const char *path, *name = NULL;
        uint64_t size = 0, fmt = 0, gz = 0, file = 0, start = 0, end = 0;
        if (!json_is_object(f) || !json_is_object(s)) {
            rc = err_set(e, -EINVAL, "split entry %zu is not an object", i);
            break;
        }
        if ((rc = wire_get_str(f, "path", &path, 1, e)) || (rc = wire_get_str(f, "name", &name, 0, e)) ||
            (rc = wire_get_u64(f, "size", UINT64_MAX >> 1, &size, 1, e)) ||
            (rc = wire_get_u64(f, "format", FIELDS_JSONL, &fmt, 1, e)) || (rc = wire_get_u64(f, "gz", 1, &gz, 0, e)) ||
            (rc = wire_get_u64(s, "file", n - 1, &file, 1, e)) || (rc = wire_get_u64(s, "start", size, &start, 1, e)) ||
            (rc = wire_get_u64(s, "end", size, &end, 1, e)))
            break;
        if (start > end) {
            rc = err_set(e, -EINVAL, "segment %zu: start after end", i);
            break;
        }
        out->files[i] = (input_file){.name = xstrdup(name ? name : path), .path = xstrdup(path), .size = size,
                                     .format = (fields_format)fmt, .gz = (int)gz};
        out->nfiles = i + 1;
        out->splits[0].segs[i] = (input_segment){.file = (uint32_t)file, .start = start, .end = end};
        out->splits[0].nsegs = i + 1;
        out->splits[0].bytes += end - start;
        out->total_bytes += size;
    }
    if (rc) input_set_free(out);
    return rc;
}

/* One inline segment {"data","crc","records"}: data must be base64 of at most WIRE_INLINE_MAX
 * bytes (its characters are checked when it is decoded; a bad segment fails its CRC anyway). */
static int wire_segment_decode(const json_t *seg, const char **data, size_t *len, uint32_t *crc, uint64_t *records,
                               struct err *e)
{
    uint64_t c = 0, r = 0;
    const char *d = NULL;
    int rc;
    if (!json_is_object(seg)) return err_set(e, -EINVAL, "must be an object");
    if ((rc = wire_get_str(seg, "data", &d, 1, e)) || (rc = wire_get_u64(seg, "crc", UINT32_MAX, &c, 1, e)) ||
        (rc = wire_get_u64(seg, "records", UINT64_MAX >> 1, &r, 1, e)))
        return rc;
    size_t n = json_string_length(json_object_get(seg, "data"));
    if (n % 4 || n / 4 * 3 > WIRE_INLINE_MAX + 2)
        return err_set(e, -EINVAL, "field 'data' must be base64 of at most %u bytes", WIRE_INLINE_MAX);
    *data = d;
    *len = n;
    *crc = (uint32_t)c;
    *records = r;
    return 0;
}

int wire_maps_decode(const json_t *arr, wire_map_loc **out, size_t *n, struct err *e)
{
    *out = NULL;
    *n = 0;
    if (!json_is_array(arr) || json_array_size(arr) > 1000000)
        return err_set(e, -EINVAL, "'maps' must be an array of at most 1000000 map locations");
    size_t cnt = json_array_size(arr);
    wire_map_loc *locs = xcalloc(cnt ? cnt : 1, sizeof *locs);
    unsigned char *seen = xcalloc(cnt ? cnt : 1, 1);
    int rc = 0;
    size_t i;
    json_t *m;
    json_array_foreach(arr, i, m) {
        const char *addr = "";
        uint64_t index = 0;
        json_t *att = json_object_get(m, "attempt");
        if ((rc = wire_get_u64(m, "index", cnt ? cnt - 1 : 0, &index, 1, e)) ||
            (rc = wire_get_str(m, "address", &addr, 1, e)))
            break;
        if (strlen(addr) >= sizeof locs->address || seen[index]) {
            rc = err_set(e, -EINVAL, "maps[%zu]: address too long or index %llu repeated", i, (unsigned long long)index);
            break;
        }
        if (att && (!json_is_integer(att) || json_integer_value(att) < -1 || json_integer_value(att) > UINT32_MAX)) {
            rc = err_set(e, -EINVAL, "maps[%zu]: 'attempt' must be an attempt id or -1", i);
            break;
        }
        seen[index] = 1;
        locs[index].index = (uint32_t)index;
        locs[index].attempt = att ? json_integer_value(att) : -1;
        snprintf(locs[index].address, sizeof locs[index].address, "%s", addr);
        json_t *seg = json_object_get(m, "segment");
        if (seg && (rc = wire_segment_decode(seg, &locs[index].data, &locs[index].data_len, &locs[index].crc,
                                             &locs[index].records, e)) != 0) {
            err_prefix(e, "maps[%zu]: segment: ", i);
            break;
        }
    }
    free(seen);
    if (rc) {
        free(locs);
        return rc;
    }
    *out = locs;
    *n = cnt;
    return 0;
}

/* ---- Request bodies ---------------------------------------------------------------------- */

int wire_valid_name(const char *s)
{
    if (!s || !*s || strlen(s) >= 64) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '-' || *s == '.'))
            return 0;
    return 1;
}

/* The sender's identity, common to the worker messages. */
static int wire_get_sender(const json_t *o, const char **name, const char **inc, struct err *e)
{
    int rc;
    if ((rc = wire_get_str(o, "name", name, 1, e)) || (rc = wire_get_str(o, "incarnation", inc, 1, e))) return rc;
    if (!wire_valid_name(*name)) return err_set(e, -EINVAL, "field 'name' must be 1-63 of [A-Za-z0-9._-]");
    if (strlen(*inc) >= 40) return err_set(e, -EINVAL, "field 'incarnation' is longer than 39 bytes");
    return 0;
}

/* An optional number field within [lo, hi]: absent (or null) leaves *out alone. */
static int wire_get_num(const json_t *obj, const char *key, double lo, double hi, double *out, struct err *e)
{
    json_t *v = json_object_get(obj, key);
    if (!v || json_is_null(v)) return 0;
    double d = json_is_number(v) ? json_number_value(v) : NAN;
    /* The comparisons are false for NaN, so a non-number fails here too. */
    if (!(isfinite(d) && d >= lo && d <= hi))
        return isfinite(hi) ? err_set(e, -EINVAL, "field '%s' must be a number from %g to %g", key, lo, hi)
                            : err_set(e, -EINVAL, "field '%s' must be a number of at least %g", key, lo);
    *out = d;
    return 0;
}

json_t *wire_health_encode(const wire_health *h)
{
    json_t *o = json_object();
    if (h->psi_cpu >= 0) json_object_set_new(o, "psi_cpu", json_real(h->psi_cpu));
    if (h->psi_io >= 0) json_object_set_new(o, "psi_io", json_real(h->psi_io));
    if (h->psi_memory >= 0) json_object_set_new(o, "psi_memory", json_real(h->psi_memory));
    if (h->load1 >= 0) json_object_set_new(o, "load1", json_real(h->load1));
    json_object_set_new(o, "chaos_slow", json_real(h->chaos_slow >= 1 ? h->chaos_slow : 1));
    return o;
}

/* The heartbeat's optional "health": every field optional too, since PSI is missing in many
 * containers and on kernels before 4.20. */
static int wire_health_decode(const json_t *j, wire_health *h, struct err *e)
{
    *h = (wire_health){.psi_cpu = -1, .psi_io = -1, .psi_memory = -1, .load1 = -1, .chaos_slow = 1};
    if (!j || json_is_null(j)) return 0;
    if (!json_is_object(j)) return err_set(e, -EINVAL, "field 'health' must be an object");
    int rc;
    if ((rc = wire_get_num(j, "psi_cpu", 0, 100, &h->psi_cpu, e)) ||
        (rc = wire_get_num(j, "psi_io", 0, 100, &h->psi_io, e)) ||
        (rc = wire_get_num(j, "psi_memory", 0, 100, &h->psi_memory, e)) ||
        (rc = wire_get_num(j, "load1", 0, HUGE_VAL, &h->load1, e)) ||
        (rc = wire_get_num(j, "chaos_slow", 1, 1000, &h->chaos_slow, e)))
        err_prefix(e, "health: ");
    return rc;
}

int wire_chaos_decode(const char *body, size_t len, double *slow, struct err *e)
{
    json_t *o = NULL;
    int rc = wire_parse_object(body, len, &o, e);
    json_t *v = rc == 0 ? json_object_get(o, "slow") : NULL;
    if (rc == 0 && (!v || json_is_null(v))) rc = err_set(e, -EINVAL, "missing field 'slow'");
    if (rc == 0) rc = wire_get_num(o, "slow", 1, 1000, slow, e);
    json_decref(o);
    return rc;
}

void wire_heartbeat_free(wire_heartbeat *hb)
{
    for (size_t i = 0; i < hb->nrunning; i++) counters_free(&hb->running[i].counters);
    free(hb->running);
    json_decref(hb->root);
    memset(hb, 0, sizeof *hb);
}

int wire_heartbeat_decode(const char *body, size_t len, wire_heartbeat *hb, struct err *e)
{
    memset(hb, 0, sizeof *hb);
    uint64_t version = 0, slots = 0;
    int rc = wire_parse_object(body, len, &hb->root, e);
    if (rc == 0 && (rc = wire_get_u64(hb->root, "version", 1000, &version, 1, e)) == 0 && version != TALLY_WIRE_VERSION)
        rc = err_set(e, -EINVAL, "protocol version %llu, this coordinator speaks %d", (unsigned long long)version,
                     TALLY_WIRE_VERSION);
    if (rc == 0) rc = wire_get_sender(hb->root, &hb->name, &hb->incarnation, e);
    if (rc == 0) rc = wire_get_str(hb->root, "address", &hb->address, 1, e);
    if (rc == 0 && strlen(hb->address) >= 160) rc = err_set(e, -EINVAL, "field 'address' is longer than 159 bytes");
    if (rc == 0) rc = wire_get_u64(hb->root, "slots", 256, &slots, 1, e);
    if (rc == 0 && slots == 0) rc = err_set(e, -EINVAL, "field 'slots' must be at least 1");
    if (rc == 0) rc = wire_get_u64(hb->root, "wait_ms", 60000, &hb->wait_ms, 0, e);
    if (rc == 0) rc = wire_health_decode(json_object_get(hb->root, "health"), &hb->health, e);
    json_t *running = rc == 0 ? json_object_get(hb->root, "running") : NULL;
    if (rc == 0 && running && (!json_is_array(running) || json_array_size(running) > 4096))
        rc = err_set(e, -EINVAL, "field 'running' must be an array of at most 4096 attempts");
    hb->slots = (uint32_t)slots;
    if (rc == 0 && json_array_size(running)) hb->running = xcalloc(json_array_size(running), sizeof *hb->running);
    size_t i;
    json_t *r;
    json_array_foreach(rc == 0 ? running : NULL, i, r) {
        wire_running *x = &hb->running[i];
        uint64_t att = 0;
        counters_init(&x->counters);
        hb->nrunning = i + 1;
        json_t *p = json_object_get(r, "progress");
        if ((rc = wire_get_str(r, "job", &x->job, 1, e)) || (rc = wire_get_u64(r, "attempt", UINT32_MAX, &att, 1, e))) {
            err_prefix(e, "running[%zu]: ", i);
            break;
        }
        x->attempt = (uint32_t)att;
        if ((rc = wire_get_num(r, "rate", 0, 1e6, &x->rate, e)) != 0) {
            err_prefix(e, "running[%zu]: ", i);
            break;
        }
        if (p) {
            if (!json_is_number(p) || !(json_number_value(p) >= 0 && json_number_value(p) <= 1) ||
                (rc = wire_counters_decode(json_object_get(r, "counters"), &x->counters, e)) != 0) {
                if (!rc) rc = err_set(e, -EINVAL, "'progress' must be a number from 0 to 1");
                err_prefix(e, "running[%zu]: ", i);
                break;
            }
            x->has_progress = 1;
            x->progress = json_number_value(p);
        }
    }
    if (rc) wire_heartbeat_free(hb);
    return rc;
}

void wire_report_free(wire_report *r)
{
    counters_free(&r->counters);
    json_decref(r->root);
    memset(r, 0, sizeof *r);
}

int wire_result_decode(const json_t *res, wire_report *r, struct err *e)
{
    uint64_t fm = 0;
    json_t *crash;
    int rc = 0;
    if (!json_is_object(res)) return err_set(e, -EINVAL, "field 'result' must be an object");
    if (rc == 0) rc = wire_get_str(res, "error", &r->error, 0, e);
    if (rc == 0) rc = wire_get_str(res, "skip_example", &r->skip_example, 0, e);
    if (rc == 0 && json_object_get(res, "counters")) rc = wire_counters_decode(json_object_get(res, "counters"), &r->counters, e);
    if (rc == 0 && json_object_get(res, "fetch_failed_map")) {
        rc = wire_get_u64(res, "fetch_failed_map", UINT32_MAX, &fm, 1, e);
        r->fetch_failed_map = (int64_t)fm;
    }
    if (rc == 0 && (crash = json_object_get(res, "crash")) != NULL &&
        ((rc = wire_get_str(crash, "file", &r->crash_file, 1, e)) ||
         (rc = wire_get_u64(crash, "offset", UINT64_MAX >> 1, &r->crash_offset, 1, e))))
        err_prefix(e, "crash: ");
    json_t *output = json_object_get(res, "output");
    if (rc == 0 && output) {
        size_t i;
        json_t *seg;
        uint64_t bytes = 0;
        if (!json_is_array(output) || json_array_size(output) > 100000)
            rc = err_set(e, -EINVAL, "field 'output' must be an array of at most 100000 segments");
        json_array_foreach(output, i, seg) {
            const char *d;
            size_t n;
            uint32_t c;
            uint64_t recs;
            if (rc) break;
            if ((rc = wire_segment_decode(seg, &d, &n, &c, &recs, e)) != 0) err_prefix(e, "output[%zu]: ", i);
            bytes += n;
        }
        if (rc == 0 && bytes / 4 * 3 > WIRE_INLINE_MAX + 2 * json_array_size(output))
            rc = err_set(e, -EINVAL, "field 'output' holds more than %u bytes", WIRE_INLINE_MAX);
        if (rc == 0) {
            r->output = output;
            r->output_bytes = bytes;
        }
    }
    r->ok = json_is_true(json_object_get(res, "ok"));
    r->fatal = json_is_true(json_object_get(res, "fatal"));
    if (!r->error) r->error = "";
    return rc;
}

int wire_report_decode(const char *body, size_t len, wire_report *r, struct err *e)
{
    memset(r, 0, sizeof *r);
    counters_init(&r->counters);
    r->fetch_failed_map = -1;
    uint64_t att = 0;
    int rc = wire_parse_object(body, len, &r->root, e);
    if (rc == 0) rc = wire_get_sender(r->root, &r->name, &r->incarnation, e);
    if (rc == 0) rc = wire_get_str(r->root, "job", &r->job, 1, e);
    if (rc == 0) rc = wire_get_u64(r->root, "attempt", UINT32_MAX, &att, 1, e);
    if (rc == 0) rc = wire_result_decode(json_object_get(r->root, "result"), r, e);
    r->attempt = (uint32_t)att;
    if (!r->error) r->error = "";
    if (rc) wire_report_free(r);
    return rc;
}

void wire_fetch_failure_free(wire_fetch_failure *f)
{
    json_decref(f->root);
    memset(f, 0, sizeof *f);
}

int wire_fetch_failure_decode(const char *body, size_t len, wire_fetch_failure *f, struct err *e)
{
    memset(f, 0, sizeof *f);
    uint64_t att = 0, map = 0;
    json_t *ma = NULL;
    int rc = wire_parse_object(body, len, &f->root, e);
    if (rc == 0) rc = wire_get_sender(f->root, &f->name, &f->incarnation, e);
    if (rc == 0) rc = wire_get_str(f->root, "job", &f->job, 1, e);
    if (rc == 0) rc = wire_get_u64(f->root, "attempt", UINT32_MAX, &att, 1, e);
    if (rc == 0) rc = wire_get_u64(f->root, "map", UINT32_MAX, &map, 1, e);
    if (rc == 0) rc = wire_get_str(f->root, "error", &f->error, 0, e);
    if (rc == 0 && (!json_is_integer(ma = json_object_get(f->root, "map_attempt")) || json_integer_value(ma) < -1 ||
                    json_integer_value(ma) > UINT32_MAX))
        rc = err_set(e, -EINVAL, "field 'map_attempt' must be an attempt id or -1");
    f->attempt = (uint32_t)att;
    f->map = (uint32_t)map;
    f->map_attempt = ma ? json_integer_value(ma) : -1;
    if (!f->error) f->error = "";
    if (rc) wire_fetch_failure_free(f);
    return rc;
}

/* ---- What a coordinator keeps of a job (cluster/state.h) ---------------------------------- */

json_t *wire_plan_encode(const input_set *in)
{
    json_t *files = json_array(), *splits = json_array();
    for (size_t i = 0; i < in->nfiles; i++) {
        const input_file *f = &in->files[i];
        json_array_append_new(files, json_pack("[s, s, I, i, b]", f->name, f->path, (json_int_t)f->size,
                                               (int)f->format, f->gz));
    }
    /* Splits as flat [file, start, end, file, start, end, ...]: a plan of 100000 splits stays
     * a few MB (ZooKeeper chunks what is larger than a znode). */
    for (size_t i = 0; i < in->nsplits; i++) {
        json_t *s = json_array();
        for (size_t k = 0; k < in->splits[i].nsegs; k++) {
            const input_segment *g = &in->splits[i].segs[k];
            json_array_append_new(s, json_integer((json_int_t)g->file));
            json_array_append_new(s, json_integer((json_int_t)g->start));
            json_array_append_new(s, json_integer((json_int_t)g->end));
        }
        json_array_append_new(splits, s);
    }
    return json_pack("{s:o, s:o}", "files", files, "splits", splits);
}

int wire_plan_decode(const json_t *j, input_set *out, struct err *e)
{
    memset(out, 0, sizeof *out);
    json_t *files = json_object_get(j, "files"), *splits = json_object_get(j, "splits");
    if (!json_is_array(files) || !json_is_array(splits) || json_array_size(files) > 10000000 ||
        json_array_size(splits) > 10000000)
        return err_set(e, -EINVAL, "plan: expected arrays 'files' and 'splits'");
    size_t nf = json_array_size(files), ns = json_array_size(splits);
    out->files = xcalloc(nf ? nf : 1, sizeof *out->files);
    out->splits = xcalloc(ns ? ns : 1, sizeof *out->splits);
    int rc = 0;
    for (size_t i = 0; i < nf && rc == 0; i++) {
        json_t *f = json_array_get(files, i);
        const char *name = NULL, *path = NULL;
        json_int_t size = -1;
        int fmt = -1, gz = 0;
        if (json_unpack(f, "[s, s, I, i, b]", &name, &path, &size, &fmt, &gz) != 0 || size < 0 || fmt < 0 ||
            fmt > FIELDS_JSONL) {
            rc = err_set(e, -EINVAL, "plan: files[%zu] is not [name, path, size, format, gz]", i);
            break;
        }
        out->files[i] = (input_file){.name = xstrdup(name), .path = xstrdup(path), .size = (uint64_t)size,
                                     .format = (fields_format)fmt, .gz = gz};
        out->nfiles = i + 1;
        out->total_bytes += (uint64_t)size;
    }
    for (size_t i = 0; i < ns && rc == 0; i++) {
        json_t *s = json_array_get(splits, i);
        size_t n = json_is_array(s) ? json_array_size(s) : 1;
        if (!json_is_array(s) || n % 3 != 0) {
            rc = err_set(e, -EINVAL, "plan: splits[%zu] is not a list of (file, start, end)", i);
            break;
        }
        input_split *sp = &out->splits[i];
        sp->segs = xcalloc(n / 3 ? n / 3 : 1, sizeof *sp->segs);
        out->nsplits = i + 1;
        for (size_t k = 0; k < n / 3; k++) {
            json_t *fv = json_array_get(s, 3 * k), *sv = json_array_get(s, 3 * k + 1), *ev = json_array_get(s, 3 * k + 2);
            if (!json_is_integer(fv) || !json_is_integer(sv) || !json_is_integer(ev) || json_integer_value(fv) < 0 ||
                (size_t)json_integer_value(fv) >= nf || json_integer_value(sv) < 0 ||
                json_integer_value(ev) < json_integer_value(sv) ||
                (uint64_t)json_integer_value(ev) > out->files[json_integer_value(fv)].size) {
                rc = err_set(e, -EINVAL, "plan: splits[%zu] segment %zu is not a range of one of the files", i, k);
                break;
            }
            sp->segs[k] = (input_segment){.file = (uint32_t)json_integer_value(fv),
                                          .start = (uint64_t)json_integer_value(sv),
                                          .end = (uint64_t)json_integer_value(ev)};
            sp->nsegs = k + 1;
            sp->bytes += sp->segs[k].end - sp->segs[k].start;
        }
    }
    if (rc) input_set_free(out);
    return rc;
}

json_t *wire_desc_encode(const execpool_job *d)
{
    json_t *req = json_array();
    for (size_t i = 0; i < d->required.n; i++)
        json_array_append_new(req, json_pack("[s, s]", d->required.names[i], d->required.hints[i] ? d->required.hints[i] : ""));
    json_t *o = json_pack("{s:s, s:I, s:o}", "name", d->name ? d->name : "", "flags", (json_int_t)d->flags,
                          "required", req);
    if (d->columns) json_object_set_new(o, "columns", json_string(d->columns));
    return o;
}

int wire_desc_decode(const json_t *j, execpool_job *d, struct err *e)
{
    memset(d, 0, sizeof *d);
    const char *name = NULL, *columns = NULL;
    json_int_t flags = 0;
    json_t *req = NULL;
    if (json_unpack((json_t *)j, "{s:s, s:I, s?s, s:o}", "name", &name, "flags", &flags, "columns", &columns,
                    "required", &req) != 0 || !json_is_array(req) || flags < 0 || flags > UINT32_MAX)
        return err_set(e, -EINVAL, "job description: expected name, flags, columns and required");
    d->name = xstrdup(name);
    d->flags = (uint32_t)flags;
    d->columns = columns ? xstrdup(columns) : NULL;
    size_t n = json_array_size(req);
    d->required.names = xcalloc(n ? n : 1, sizeof(char *));
    d->required.hints = xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        const char *fname = NULL, *hint = NULL;
        if (json_unpack(json_array_get(req, i), "[s, s]", &fname, &hint) != 0) {
            execpool_job_free(d);
            return err_set(e, -EINVAL, "job description: required[%zu] is not [field, hint]", i);
        }
        d->required.names[i] = xstrdup(fname);
        d->required.hints[i] = *hint ? xstrdup(hint) : NULL; /* "" stands for no hint */
        d->required.n = i + 1;
    }
    return 0;
}
