/* fields.c - named field access in CSV and JSON Lines records, parsed lazily once per record. */
#include "data/fields.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/jsonscan.h"
#include "tally/tally.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* How many (header, name) -> column lookups a cache remembers. A job names a handful of fields,
 * always through the same string pointers, so a tiny table answers nearly every lookup. */
#define FIELDS_MEMO 8

/* ---- CSV splitting ----------------------------------------------------------------------- */

/* One field of a split line: points into the line, or into the cache's unescape buffer for a
 * quoted field that contained "" escapes. */
struct csv_span {
    const char *p;
    size_t len;
};

/* Splits one CSV line into at most `max` fields. Quoted fields that contain "" are unescaped
 * into `scratch`, which must have room for `len` bytes (unescaping only shrinks text); all
 * other fields point into `s`, so a record costs no allocation. Returns 0 with the field count
 * in *n, or TALLY_EBADREC with *why and *at (byte offset) describing the problem. */
static int csv_split(const char *s, size_t len, struct csv_span *out, size_t max, char *scratch,
                     size_t *n, const char **why, size_t *at)
{
    size_t i = 0, nf = 0;
    char *w = scratch;

    for (;;) {
        struct csv_span f;
        if (nf == max) {
            *why = "more fields than the header";
            *at = i;
            return TALLY_EBADREC;
        }
        if (i < len && s[i] == '"') {
            size_t open = i;
            const char *p = s + i + 1, *end = s + len, *seg = p;
            char *w0 = w;
            int escaped = 0;
            for (;;) {
                const char *q = memchr(p, '"', (size_t)(end - p));
                if (!q) {
                    *why = "unterminated quote";
                    *at = open;
                    return TALLY_EBADREC;
                }
                if (q + 1 < end && q[1] == '"') {
                    /* "" is one literal quote: copy up to and including the first of the pair. */
                    memcpy(w, seg, (size_t)(q + 1 - seg));
                    w += q + 1 - seg;
                    seg = p = q + 2;
                    escaped = 1;
                    continue;
                }
                if (escaped) {
                    memcpy(w, seg, (size_t)(q - seg));
                    w += q - seg;
                    f.p = w0;
                    f.len = (size_t)(w - w0);
                } else {
                    f.p = s + open + 1;
                    f.len = (size_t)(q - (s + open + 1));
                }
                i = (size_t)(q + 1 - s);
                break;
            }
            if (i < len && s[i] != ',') {
                *why = "text after a closing quote";
                *at = i;
                return TALLY_EBADREC;
            }
        } else {
            const char *c = memchr(s + i, ',', len - i);
            size_t j = c ? (size_t)(c - s) : len;
            f.p = s + i;
            f.len = j - i;
            i = j;
        }
        out[nf++] = f;
        if (i >= len) break;
        i++; /* the comma; a comma at the very end starts one more, empty, field */
    }
    *n = nf;
    return 0;
}

/* The common case of csv_split: a record without quotes, split at its commas 16 bytes at a
 * time (SSE2 compare + movemask, one bit per comma). Returns 1 when it split the record, 0
 * when it holds a quote or more fields than `max`, which csv_split then handles (and words
 * the error for). Profiling the aggregate job showed memchr() calls per field, each a few
 * bytes long, as the largest cost of splitting. */
static int csv_split_plain(const char *s, size_t len, struct csv_span *out, size_t max, size_t *n)
{
    size_t nf = 0, start = 0, i = 0;
#ifdef __SSE2__
    const __m128i comma = _mm_set1_epi8(','), quote = _mm_set1_epi8('"');
    for (; i + 16 <= len; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        if (_mm_movemask_epi8(_mm_cmpeq_epi8(v, quote))) return 0;
        unsigned m = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, comma));
        while (m) {
            size_t at = i + (size_t)__builtin_ctz(m);
            if (nf + 1 >= max) return 0;
            out[nf].p = s + start;
            out[nf].len = at - start;
            nf++;
            start = at + 1;
            m &= m - 1;
        }
    }
#endif
    for (; i < len; i++) {
        if (s[i] == '"') return 0;
        if (s[i] == ',') {
            if (nf + 1 >= max) return 0;
            out[nf].p = s + start;
            out[nf].len = i - start;
            nf++;
            start = i + 1;
        }
    }
    out[nf].p = s + start;
    out[nf].len = len - start;
    *n = nf + 1;
    return 1;
}

/* A record that still ends in \r came from a file whose lines end in \r\r\n or whose last line
 * ends in a lone \r; the \r is line-ending debris, not data, so CSV ignores it. */
static size_t csv_trim_cr(const char *s, size_t len)
{
    return len > 0 && s[len - 1] == '\r' ? len - 1 : len;
}

/* ---- CSV headers ------------------------------------------------------------------------- */

struct fields_header {
    size_t count;
    char **names;
    size_t *slots;   /* open-addressing table of column index + 1; 0 is an empty slot */
    size_t mask;     /* table size - 1 (a power of two) */
    uint64_t serial; /* unique per header, so a cache never trusts a stale (freed) header */
};

static atomic_uint_fast64_t fields_next_serial = 1;

static uint64_t fields_hash(const char *s)
{
    uint64_t h = 14695981039346656037ull; /* FNV-1a: names are short, quality is plenty */
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

/* Column index of `name`, or SIZE_MAX. */
static size_t header_find(const fields_header *h, const char *name)
{
    for (size_t k = fields_hash(name) & h->mask;; k = (k + 1) & h->mask) {
        size_t v = h->slots[k];
        if (!v) return SIZE_MAX;
        if (strcmp(h->names[v - 1], name) == 0) return v - 1;
    }
}

int fields_header_parse(const char *line, size_t len, fields_header **out, struct err *e)
{
    len = csv_trim_cr(line, len);
    size_t max = 1, n = 0, at = 0;
    for (const char *c = line; (c = memchr(c, ',', len - (size_t)(c - line))); c++) max++;

    struct csv_span *spans = xmalloc(max * sizeof *spans);
    char *scratch = xmalloc(len + 1);
    const char *why = NULL;
    fields_header *h = NULL;
    int rc = csv_split(line, len, spans, max, scratch, &n, &why, &at);
    if (rc < 0) {
        rc = err_set(e, -EINVAL, "CSV header: %s at offset %zu", why, at);
        goto out;
    }

    h = xcalloc(1, sizeof *h);
    h->count = n;
    h->names = xmalloc(n * sizeof *h->names);
    for (size_t i = 0; i < n; i++) h->names[i] = xstrndup(spans[i].p, spans[i].len);
    size_t size = 8;
    while (size < 2 * n) size *= 2;
    h->slots = xcalloc(size, sizeof *h->slots);
    h->mask = size - 1;
    for (size_t i = 0; i < n; i++) {
        size_t k = fields_hash(h->names[i]) & h->mask;
        /* A repeated name maps to its last column, as if the row were read into a dictionary
         * column by column; the reference implementation in tests/ref does exactly that. */
        while (h->slots[k] && strcmp(h->names[h->slots[k] - 1], h->names[i]) != 0)
            k = (k + 1) & h->mask;
        h->slots[k] = i + 1;
    }
    h->serial = atomic_fetch_add(&fields_next_serial, 1);
    *out = h;
out:
    free(spans);
    free(scratch);
    return rc;
}

void fields_header_free(fields_header *h)
{
    if (!h) return;
    for (size_t i = 0; i < h->count; i++) free(h->names[i]);
    free(h->names);
    free(h->slots);
    free(h);
}

size_t fields_header_count(const fields_header *h) { return h->count; }

const char *fields_header_name(const fields_header *h, size_t i)
{
    return i < h->count ? h->names[i] : NULL;
}

/* ---- The per-task cache ------------------------------------------------------------------ */

struct name_memo {
    uint64_t serial; /* header serial; 0 marks an unused entry */
    const char *name;
    size_t idx;
};

struct col_ref {
    uint64_t serial; /* header serial; 0: not looked up yet */
    size_t idx;      /* column, or SIZE_MAX when the header lacks the name */
};

/* A JSON name a job asked for, and its path index in the cache's scanner. */
struct json_name {
    const char *name; /* the caller's pointer; NULL marks an unused entry */
    size_t idx;
};

struct fields_cache {
    fields_format fmt;
    const fields_header *hdr;
    const char *data;
    size_t len;
    int parsed; /* the current record has been parsed: status is meaningful */
    int status; /* 0, or TALLY_EBADREC for a malformed record */

    /* CSV: the fields of the current record, and room to unescape quoted ones. */
    struct csv_span *cols;
    size_t ncols, cols_cap;
    char *unq;
    size_t unq_cap;
    struct name_memo memo[FIELDS_MEMO];
    unsigned memo_next;
    struct col_ref *colmap; /* by tally_field id: that name's column in header `serial` */
    size_t colmap_cap;

    /* JSON: the scanner (made on the first JSON lookup), and which of its paths each recently
     * asked name is. */
    jsonscan *js;
    struct json_name json_memo[FIELDS_MEMO];
    unsigned json_memo_next;
    size_t *jsmap; /* by tally_field id: 1 + the scanner's index of that name, 0: not added yet */
    size_t jsmap_cap;
};

fields_cache *fields_cache_new(void) { return xcalloc(1, sizeof(fields_cache)); }

void fields_cache_free(fields_cache *c)
{
    if (!c) return;
    free(c->colmap);
    free(c->jsmap);
    free(c->cols);
    free(c->unq);
    jsonscan_free(c->js);
    free(c);
}

void fields_cache_reset(fields_cache *c, fields_format fmt, const fields_header *hdr,
                        const char *data, size_t len)
{
    c->fmt = fmt;
    c->hdr = hdr;
    c->data = data;
    c->len = len;
    c->parsed = 0;
    c->status = 0;
    c->ncols = 0;
}

/* ---- CSV records ------------------------------------------------------------------------- */

static int csv_parse_record(fields_cache *c)
{
    size_t len = csv_trim_cr(c->data, c->len), at;
    const char *why;
    if (c->cols_cap < c->hdr->count) {
        c->cols = xrealloc(c->cols, c->hdr->count * sizeof *c->cols);
        c->cols_cap = c->hdr->count;
    }
    if (c->unq_cap < len + 1) {
        /* Grow geometrically so that slowly lengthening records do not realloc each time. */
        size_t cap = c->unq_cap ? c->unq_cap : 256;
        while (cap < len + 1) cap *= 2;
        c->unq = xrealloc(c->unq, cap);
        c->unq_cap = cap;
    }
    if (c->hdr->count > 0 && csv_split_plain(c->data, len, c->cols, c->hdr->count, &c->ncols)) return 0;
    return csv_split(c->data, len, c->cols, c->hdr->count, c->unq, &c->ncols, &why, &at);
}

/* Column of `name` in the current header, remembered per (header, name pointer). The name is
 * compared again on a hit because a caller may reuse one buffer for different names. */
static size_t csv_column(fields_cache *c, const char *name)
{
    const fields_header *h = c->hdr;
    for (unsigned i = 0; i < FIELDS_MEMO; i++) {
        const struct name_memo *m = &c->memo[i];
        if (m->serial == h->serial && m->name == name && strcmp(h->names[m->idx], name) == 0)
            return m->idx;
    }
    size_t idx = header_find(h, name);
    if (idx != SIZE_MAX) {
        struct name_memo *m = &c->memo[c->memo_next++ % FIELDS_MEMO];
        m->serial = h->serial;
        m->name = name;
        m->idx = idx;
    }
    return idx;
}

/* Parses the current CSV record if not done yet: 0, or why it cannot give fields. The reader
 * has no header for a file whose first line is empty: like a header with no columns, it leaves
 * every record with more fields than names. */
static inline int csv_ready(fields_cache *c)
{
    if (!c->hdr) return TALLY_EBADREC;
    if (!c->parsed) {
        c->status = csv_parse_record(c);
        c->parsed = 1;
    }
    return c->status;
}

/* Column idx of the current (parsed) record: 0 with its text, or TALLY_ENOFIELD. */
static inline int csv_value(const fields_cache *c, size_t idx, const char **val, size_t *vlen)
{
    if (idx == SIZE_MAX || idx >= c->ncols) return TALLY_ENOFIELD;
    *val = c->cols[idx].p;
    *vlen = c->cols[idx].len;
    return 0;
}

static int csv_get(fields_cache *c, const char *name, const char **val, size_t *vlen)
{
    int rc = csv_ready(c);
    return rc ? rc : csv_value(c, csv_column(c, name), val, vlen);
}

/* A cache's array indexed by interned field id (tally_field.id), grown to hold `id` with the
 * new entries zeroed: *cap counts entries of `elem` bytes. */
static void *fields_id_map(void *map, size_t *cap, size_t elem, uint32_t id)
{
    if (id < *cap) return map;
    size_t n = *cap ? *cap : 16;
    while (n <= id) n *= 2;
    map = xrealloc(map, n * elem);
    memset((char *)map + *cap * elem, 0, (n - *cap) * elem);
    *cap = n;
    return map;
}

/* ---- JSON records ------------------------------------------------------------------------ */

/* The scanner's index for `name`, remembered per name pointer (compared again on a hit, as in
 * csv_column). Sets *added when the name is new to the scanner: the current record has not been
 * scanned for it. */
static size_t json_path(fields_cache *c, const char *name, int *added)
{
    for (unsigned i = 0; i < FIELDS_MEMO; i++) {
        const struct json_name *m = &c->json_memo[i];
        if (m->name == name && strcmp(jsonscan_path(c->js, m->idx), name) == 0)
            return m->idx;
    }
    size_t before = jsonscan_count(c->js), idx;
    jsonscan_add(c->js, name, &idx);
    *added = jsonscan_count(c->js) > before;
    struct json_name *m = &c->json_memo[c->json_memo_next++ % FIELDS_MEMO];
    m->name = name;
    m->idx = idx;
    return idx;
}

/* The record is scanned once, on its first lookup, for every name asked for so far; a name new
 * to the scanner (`added`: in practice during a job's first record) makes it scan the record
 * again. Returns the record's status: 0, or why it has no fields. */
static int json_scanned(fields_cache *c, int added)
{
    if (!c->parsed) {
        c->status = jsonscan_record(c->js, c->data, c->len);
        c->parsed = 1;
    } else if (added && c->status == 0) {
        c->status = jsonscan_rescan(c->js);
    }
    return c->status;
}

static int json_get(fields_cache *c, const char *name, const char **val, size_t *vlen)
{
    int added = 0;
    if (!c->js) c->js = jsonscan_new();
    size_t idx = json_path(c, name, &added);
    int rc = json_scanned(c, added);
    return rc ? rc : jsonscan_get(c->js, idx, val, vlen);
}

/* json_get through an interned name: its scanner index comes from an array by the name's id,
 * without comparing names. */
static int json_get_ref(fields_cache *c, const struct tally_field *f, const char **val, size_t *vlen)
{
    int added = 0;
    if (!c->js) c->js = jsonscan_new();
    c->jsmap = fields_id_map(c->jsmap, &c->jsmap_cap, sizeof *c->jsmap, f->id);
    if (!c->jsmap[f->id]) {
        size_t before = jsonscan_count(c->js), idx;
        int rc = jsonscan_add(c->js, f->name, &idx);
        if (rc) return rc;
        added = jsonscan_count(c->js) > before;
        c->jsmap[f->id] = idx + 1;
    }
    int rc = json_scanned(c, added);
    return rc ? rc : jsonscan_get(c->js, c->jsmap[f->id] - 1, val, vlen);
}

int fields_get(fields_cache *c, const char *name, const char **val, size_t *vlen)
{
    switch (c->fmt) {
    case FIELDS_CSV: return csv_get(c, name, val, vlen);
    case FIELDS_JSONL: return json_get(c, name, val, vlen);
    default: return -EINVAL;
    }
}

/* ---- Interned names ---------------------------------------------------------------------- */

static pthread_mutex_t fields_ref_lock = PTHREAD_MUTEX_INITIALIZER;
static struct tally_field *fields_refs[TALLY_FIELD_REFS_MAX];
static size_t fields_nrefs;

const struct tally_field *fields_ref(const char *name)
{
    struct tally_field *f = NULL;
    if (!name) return NULL;
    pthread_mutex_lock(&fields_ref_lock);
    for (size_t i = 0; i < fields_nrefs; i++) {
        if (strcmp(fields_refs[i]->name, name) == 0) {
            f = fields_refs[i];
            goto out;
        }
    }
    if (fields_nrefs < TALLY_FIELD_REFS_MAX) {
        f = xmalloc(sizeof *f);
        f->name = xstrdup(name);
        f->len = strlen(name);
        f->id = (uint32_t)fields_nrefs;
        fields_refs[fields_nrefs++] = f;
    }
out:
    pthread_mutex_unlock(&fields_ref_lock);
    return f;
}

/* The column of f in the current header, through the cache's map from field id to column. */
static inline size_t csv_ref_column(fields_cache *c, const struct tally_field *f)
{
    c->colmap = fields_id_map(c->colmap, &c->colmap_cap, sizeof *c->colmap, f->id);
    struct col_ref *r = &c->colmap[f->id];
    if (r->serial != c->hdr->serial) {
        r->serial = c->hdr->serial;
        r->idx = header_find(c->hdr, f->name);
    }
    return r->idx;
}

int fields_get_ref(fields_cache *c, const struct tally_field *f, const char **val, size_t *vlen)
{
    if (c->fmt == FIELDS_JSONL) return json_get_ref(c, f, val, vlen);
    if (c->fmt != FIELDS_CSV) return -EINVAL;
    int rc = csv_ready(c);
    return rc ? rc : csv_value(c, csv_ref_column(c, f), val, vlen);
}

void fields_get_many(fields_cache *c, const struct tally_field *const *f, size_t n, const char **vals,
                     size_t *lens, int *rcs)
{
    if (c->fmt != FIELDS_CSV) {
        for (size_t i = 0; i < n; i++) rcs[i] = fields_get_ref(c, f[i], &vals[i], &lens[i]);
        return;
    }
    /* The record's state checked once for all n, not per field: this runs once per record of
     * the aggregate job. */
    int rc = csv_ready(c);
    for (size_t i = 0; i < n; i++) rcs[i] = rc ? rc : csv_value(c, csv_ref_column(c, f[i]), &vals[i], &lens[i]);
}
