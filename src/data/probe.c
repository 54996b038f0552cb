/* probe.c - checks the fields a job needs against the start of each input (see probe.h). */
#include "data/probe.h"

/* The first read of a probed file (more is read only as its first records need). */
#define PROBE_FIRST_READ 4096

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/reader.h"

/* 1 if the dotted name is a key path of object o (the last key may hold null). */
static int probe_json_has(json_t *o, const char *name)
{
    char part[256];
    for (;;) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        if (!json_is_object(o) || n >= sizeof part) return 0;
        memcpy(part, name, n);
        part[n] = '\0';
        json_t *v = json_object_get(o, part);
        if (!v) {
            /* A key that itself contains dots ("a.b": 1) is found whole, as fields.c does. */
            return dot && json_object_get(o, name) != NULL;
        }
        if (!dot) return 1;
        o = v;
        name = dot + 1;
    }
}

/* Appends the list of fields an input has, for the message. */
static void probe_list(struct buf *b, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (b->len > 600) {
            buf_appendf(b, ", ... (%zu in all)", n);
            break;
        }
        buf_appendf(b, "%s%s", i ? ", " : "", names[i]);
    }
    if (n == 0) buf_appendf(b, "(none)");
}

static int probe_missing(const input_file *f, const char *where, const char *name, const char *hint,
                         const char *const *have, size_t nhave, struct err *e)
{
    struct buf b = {0};
    probe_list(&b, have, nhave);
    buf_putc(&b, '\0');
    err_set(e, -EINVAL, "field '%s'%s%s%s is not in %s %s; its fields are: %s", name, hint ? " (" : "", hint ? hint : "",
            hint ? ")" : "", where, f->name, b.data);
    buf_free(&b);
    return -EINVAL;
}

static int probe_csv(const input_file *f, const input_segment *seg, char *const *names, char *const *hints, size_t n,
                     uint64_t max_record, struct err *e)
{
    reader *r = NULL;
    struct err ignored = {0};
    /* Only the header is read: a small first buffer (it grows for a longer header), not the
     * 1 MiB a map reads at once; every submit probes every input file. */
    if (reader_open_sized(&r, f, seg, max_record, PROBE_FIRST_READ, &ignored) != 0) return 0;
    const fields_header *h = reader_header(r);
    int rc = 0;
    if (h) {
        size_t nh = fields_header_count(h);
        const char **have = xcalloc(nh ? nh : 1, sizeof *have);
        for (size_t k = 0; k < nh; k++) have[k] = fields_header_name(h, k);
        for (size_t i = 0; i < n && rc == 0; i++) {
            int found = 0;
            for (size_t k = 0; k < nh && !found; k++) found = strcmp(have[k], names[i]) == 0;
            if (!found) rc = probe_missing(f, "the header of", names[i], hints[i], have, nh, e);
        }
        free(have);
    }
    reader_close(r);
    return rc;
}

static int probe_jsonl(const input_file *f, const input_segment *seg, char *const *names, char *const *hints,
                       size_t n, uint64_t max_record, struct err *e)
{
    reader *r = NULL;
    struct err ignored = {0};
    if (reader_open_sized(&r, f, seg, max_record, PROBE_FIRST_READ, &ignored) != 0) return 0;
    char *found = xcalloc(n ? n : 1, 1);
    const char **keys = NULL; /* top-level keys seen, for the message */
    size_t nkeys = 0, records = 0;
    const char *data;
    size_t len;
    uint64_t off = 0;
    json_t **docs = xcalloc(PROBE_JSON_RECORDS, sizeof *docs);
    int k;
    while (records < PROBE_JSON_RECORDS && off < PROBE_JSON_BYTES &&
           (k = reader_next(r, &data, &len, &off, &ignored)) > 0) {
        if (k != READER_RECORD || len == 0) continue;
        json_t *o = json_loadb(data, len, 0, NULL);
        if (!json_is_object(o)) {
            json_decref(o);
            continue; /* a malformed record says nothing about the fields */
        }
        docs[records++] = o;
        for (size_t i = 0; i < n; i++)
            if (!found[i]) found[i] = (char)probe_json_has(o, names[i]);
        const char *key;
        json_t *v;
        json_object_foreach(o, key, v) {
            int seen = 0;
            for (size_t i = 0; i < nkeys && !seen; i++) seen = strcmp(keys[i], key) == 0;
            if (!seen && nkeys < 64) {
                keys = xrealloc(keys, (nkeys + 1) * sizeof *keys);
                keys[nkeys++] = key; /* owned by docs[] until the end */
            }
        }
    }
    int rc = 0;
    char where[64];
    snprintf(where, sizeof where, "the first %zu record%s of", records, records == 1 ? "" : "s");
    for (size_t i = 0; records > 0 && i < n && rc == 0; i++)
        if (!found[i]) rc = probe_missing(f, where, names[i], hints[i], keys, nkeys, e);
    for (size_t i = 0; i < records; i++) json_decref(docs[i]);
    free(docs);
    free(keys);
    free(found);
    reader_close(r);
    return rc;
}

int probe_fields(const input_set *in, char *const *names, char *const *hints, size_t n, uint64_t max_record,
                 struct err *e)
{
    if (n == 0) return 0;
    int rc = 0;
    for (size_t i = 0; i < in->nfiles && rc == 0; i++) {
        const input_file *f = &in->files[i];
        input_segment seg = {.file = (uint32_t)i, .start = 0, .end = f->size};
        if (f->format == FIELDS_CSV) rc = probe_csv(f, &seg, names, hints, n, max_record, e);
        else if (f->format == FIELDS_JSONL) rc = probe_jsonl(f, &seg, names, hints, n, max_record, e);
    }
    return rc;
}
