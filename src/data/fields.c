/* fields.c - named field access in CSV and JSON Lines records, parsed lazily once per record. */
#include "data/fields.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* A bump allocator for JSON field texts that must stay put until the next record: blocks are
 * kept and rewound, never freed, so steady-state records allocate nothing here. */
struct arena {
    char **blocks;
    size_t *caps;
    size_t nblocks, cur, used;
};

struct name_memo {
    uint64_t serial; /* header serial; 0 marks an unused entry */
    const char *name;
    size_t idx;
};

struct col_ref {
    uint64_t serial; /* header serial; 0: not looked up yet */
    size_t idx;      /* column, or SIZE_MAX when the header lacks the name */
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

    /* JSON: the parsed record, and storage for field texts jansson does not hold for us. */
    json_t *root;
    struct arena arena;
    struct buf dump;
};

static char *arena_alloc(struct arena *a, size_t n)
{
    while (a->cur < a->nblocks && a->caps[a->cur] - a->used < n) {
        a->cur++;
        a->used = 0;
    }
    if (a->cur == a->nblocks) {
        size_t cap = n > 4096 ? n : 4096;
        a->blocks = xrealloc(a->blocks, (a->nblocks + 1) * sizeof *a->blocks);
        a->caps = xrealloc(a->caps, (a->nblocks + 1) * sizeof *a->caps);
        a->blocks[a->nblocks] = xmalloc(cap);
        a->caps[a->nblocks] = cap;
        a->nblocks++;
        a->used = 0;
    }
    char *p = a->blocks[a->cur] + a->used;
    a->used += n;
    return p;
}

static char *arena_copy(struct arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = 0;
    return p;
}

fields_cache *fields_cache_new(void) { return xcalloc(1, sizeof(fields_cache)); }

void fields_cache_free(fields_cache *c)
{
    if (!c) return;
    json_decref(c->root);
    free(c->colmap);
    free(c->cols);
    free(c->unq);
    for (size_t i = 0; i < c->arena.nblocks; i++) free(c->arena.blocks[i]);
    free(c->arena.blocks);
    free(c->arena.caps);
    buf_free(&c->dump);
    free(c);
}

void fields_cache_reset(fields_cache *c, fields_format fmt, const fields_header *hdr,
                        const char *data, size_t len)
{
    if (c->root) {
        json_decref(c->root);
        c->root = NULL;
    }
    c->arena.cur = c->arena.used = 0;
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

static int csv_get(fields_cache *c, const char *name, const char **val, size_t *vlen)
{
    /* The reader has no header for a file whose first line is empty: like a header with no
     * columns, it leaves every record with more fields than names. */
    if (!c->hdr) return TALLY_EBADREC;
    if (!c->parsed) {
        c->status = csv_parse_record(c);
        c->parsed = 1;
    }
    if (c->status) return c->status;
    size_t idx = csv_column(c, name);
    if (idx == SIZE_MAX || idx >= c->ncols) return TALLY_ENOFIELD;
    *val = c->cols[idx].p;
    *vlen = c->cols[idx].len;
    return 0;
}

/* ---- JSON records ------------------------------------------------------------------------ */

static int json_parse_record(fields_cache *c)
{
    json_error_t jerr;
    c->root = json_loadb(c->data, c->len, JSON_ALLOW_NUL, &jerr);
    /* jansson refuses integers beyond 64 bits; read such a record with every integer as a real
     * rather than skip it. The field text still comes from the record itself (json_raw_find). */
    if (!c->root && json_error_code(&jerr) == json_error_numeric_overflow)
        c->root = json_loadb(c->data, c->len, JSON_ALLOW_NUL | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!c->root) return TALLY_EBADREC;
    if (!json_is_object(c->root)) {
        json_decref(c->root);
        c->root = NULL;
        return TALLY_EBADREC;
    }
    return 0;
}

/* Walks a dotted name through nested objects; NULL when any step is missing. */
static json_t *json_walk(json_t *v, const char *name)
{
    for (;;) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        if (!json_is_object(v)) return NULL;
        v = json_object_getn(v, name, n);
        if (!v || !dot) return v;
        name = dot + 1;
    }
}

/* The raw scanner below re-finds a value in the record's own text, so that numbers and nested
 * values come out exactly as written ("1.50" stays "1.50"; jansson would keep only a double).
 * It runs only on text jansson has already accepted, so it skips validation; it still checks
 * bounds so that a disagreement can only make it give up, never read out of range. */

static const char *raw_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) p++;
    return p;
}

/* p at an opening quote; returns the position after the closing one, or NULL. */
static const char *raw_string_end(const char *p, const char *end, int *escaped)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            *escaped = 1;
            p++;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

static const char *raw_value_end(const char *p, const char *end)
{
    int esc = 0;
    if (p >= end) return NULL;
    if (*p == '"') return raw_string_end(p, end, &esc);
    if (*p == '{' || *p == '[') {
        size_t depth = 0;
        while (p < end) {
            if (*p == '"') {
                if (!(p = raw_string_end(p, end, &esc))) return NULL;
                continue;
            }
            if (*p == '{' || *p == '[') depth++;
            if ((*p == '}' || *p == ']') && --depth == 0) return p + 1;
            p++;
        }
        return NULL;
    }
    while (p < end && !strchr(",}] \t\r\n", *p)) p++;
    return p;
}

/* Finds the last member named key[0..klen) of the object starting at p (duplicate keys: the
 * last one wins, as in jansson). Returns 1 with the value's span, 0 when absent, or -1 when
 * it cannot tell because some key is written with escapes. */
static int raw_member(const char *p, const char *end, const char *key, size_t klen,
                      const char **vs, const char **ve)
{
    int found = 0;
    p = raw_ws(p, end);
    if (p >= end || *p != '{') return -1;
    p = raw_ws(p + 1, end);
    if (p < end && *p == '}') return 0;
    while (p < end && *p == '"') {
        int escaped = 0;
        const char *kend = raw_string_end(p, end, &escaped);
        if (!kend || escaped) return -1;
        int match = (size_t)(kend - p - 2) == klen && memcmp(p + 1, key, klen) == 0;
        p = raw_ws(kend, end);
        if (p >= end || *p != ':') return -1;
        const char *v = raw_ws(p + 1, end), *vend = raw_value_end(v, end);
        if (!vend) return -1;
        if (match) {
            *vs = v;
            *ve = vend;
            found = 1;
        }
        p = raw_ws(vend, end);
        if (p < end && *p == ',') {
            p = raw_ws(p + 1, end);
            continue;
        }
        return p < end && *p == '}' ? found : -1;
    }
    return -1;
}

/* The raw text of the value at a dotted name; 0 when it cannot be found with certainty. */
static int json_raw_find(const fields_cache *c, const char *name, const char **vs, size_t *vn)
{
    const char *p = c->data, *end = c->data + c->len, *s = NULL, *e = NULL;
    for (;;) {
        const char *dot = strchr(name, '.');
        size_t n = dot ? (size_t)(dot - name) : strlen(name);
        if (raw_member(p, end, name, n, &s, &e) != 1) return 0;
        if (!dot) break;
        p = s;
        name = dot + 1;
    }
    *vs = s;
    *vn = (size_t)(e - s);
    return 1;
}

/* Compacts a raw object or array: whitespace outside strings goes, the rest stays as written. */
static void json_raw_compact(fields_cache *c, const char *s, size_t n, const char **val,
                             size_t *vlen)
{
    const char *end = s + n;
    int esc = 0;
    size_t spaces = 0;
    for (const char *p = s; p < end;) {
        if (*p == '"') {
            p = raw_string_end(p, end, &esc);
            if (!p) break;
            continue;
        }
        if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') spaces++;
        p++;
    }
    if (!spaces) {
        *val = s;
        *vlen = n;
        return;
    }
    char *out = arena_alloc(&c->arena, n - spaces + 1), *w = out;
    for (const char *p = s; p < end;) {
        if (*p == '"') {
            const char *q = raw_string_end(p, end, &esc);
            if (!q) q = end;
            memcpy(w, p, (size_t)(q - p));
            w += q - p;
            p = q;
            continue;
        }
        if (!(*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) *w++ = *p;
        p++;
    }
    *w = 0;
    *val = out;
    *vlen = (size_t)(w - out);
}

static int json_dump_to_buf(const char *s, size_t n, void *arg)
{
    buf_append(arg, s, n);
    return 0;
}

/* Text for a number, object or array when the raw text cannot be located (a key written with
 * escapes): integers in decimal, reals with %.17g, composites as jansson's compact JSON. */
static void json_format(fields_cache *c, json_t *v, const char **val, size_t *vlen)
{
    char num[64];
    int n;
    if (json_is_integer(v)) {
        n = snprintf(num, sizeof num, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    } else if (json_is_real(v)) {
        n = snprintf(num, sizeof num, "%.17g", json_real_value(v));
    } else {
        c->dump.len = 0;
        json_dump_callback(v, json_dump_to_buf, &c->dump, JSON_COMPACT | JSON_ENCODE_ANY);
        *val = arena_copy(&c->arena, c->dump.data ? c->dump.data : "", c->dump.len);
        *vlen = c->dump.len;
        return;
    }
    *val = arena_copy(&c->arena, num, (size_t)n);
    *vlen = (size_t)n;
}

static int json_get(fields_cache *c, const char *name, const char **val, size_t *vlen)
{
    if (!c->parsed) {
        c->status = json_parse_record(c);
        c->parsed = 1;
    }
    if (c->status) return c->status;
    json_t *v = json_walk(c->root, name);
    if (!v || json_is_null(v)) return TALLY_ENOFIELD;

    const char *raw;
    size_t rawlen;
    switch (json_typeof(v)) {
    case JSON_STRING:
        *val = json_string_value(v);
        *vlen = json_string_length(v);
        return 0;
    case JSON_TRUE:
        *val = "true";
        *vlen = 4;
        return 0;
    case JSON_FALSE:
        *val = "false";
        *vlen = 5;
        return 0;
    case JSON_INTEGER:
    case JSON_REAL:
        if (json_raw_find(c, name, &raw, &rawlen) && rawlen > 0 &&
            (raw[0] == '-' || (raw[0] >= '0' && raw[0] <= '9'))) {
            *val = raw;
            *vlen = rawlen;
            return 0;
        }
        break;
    default:
        if (json_raw_find(c, name, &raw, &rawlen) && rawlen > 0 &&
            raw[0] == (json_is_object(v) ? '{' : '[')) {
            json_raw_compact(c, raw, rawlen, val, vlen);
            return 0;
        }
        break;
    }
    json_format(c, v, val, vlen);
    return 0;
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
    if (f->id >= c->colmap_cap) {
        size_t cap = c->colmap_cap ? c->colmap_cap : 16;
        while (cap <= f->id) cap *= 2;
        c->colmap = xrealloc(c->colmap, cap * sizeof *c->colmap);
        memset(c->colmap + c->colmap_cap, 0, (cap - c->colmap_cap) * sizeof *c->colmap);
        c->colmap_cap = cap;
    }
    struct col_ref *r = &c->colmap[f->id];
    if (r->serial != c->hdr->serial) {
        r->serial = c->hdr->serial;
        r->idx = header_find(c->hdr, f->name);
    }
    return r->idx;
}

/* Parses the current CSV record if not done yet: 0, or why it cannot give fields. */
static inline int csv_ready(fields_cache *c)
{
    if (!c->hdr) return TALLY_EBADREC;
    if (!c->parsed) {
        c->status = csv_parse_record(c);
        c->parsed = 1;
    }
    return c->status;
}

int fields_get_ref(fields_cache *c, const struct tally_field *f, const char **val, size_t *vlen)
{
    if (c->fmt != FIELDS_CSV) return fields_get(c, f->name, val, vlen);
    int rc = csv_ready(c);
    if (rc) return rc;
    size_t idx = csv_ref_column(c, f);
    if (idx == SIZE_MAX || idx >= c->ncols) return TALLY_ENOFIELD;
    *val = c->cols[idx].p;
    *vlen = c->cols[idx].len;
    return 0;
}

void fields_get_many(fields_cache *c, const struct tally_field *const *f, size_t n, const char **vals,
                     size_t *lens, int *rcs)
{
    if (c->fmt != FIELDS_CSV) {
        for (size_t i = 0; i < n; i++) rcs[i] = fields_get_ref(c, f[i], &vals[i], &lens[i]);
        return;
    }
    int rc = csv_ready(c);
    for (size_t i = 0; i < n; i++) {
        size_t idx;
        if (rc) {
            rcs[i] = rc;
        } else if ((idx = csv_ref_column(c, f[i])) == SIZE_MAX || idx >= c->ncols) {
            rcs[i] = TALLY_ENOFIELD;
        } else {
            vals[i] = c->cols[idx].p;
            lens[i] = c->cols[idx].len;
            rcs[i] = 0;
        }
    }
}
