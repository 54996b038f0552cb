/* jsonscan.c - the one-pass validating JSON Lines scanner behind fields_get() (see jsonscan.h).
 *
 * Design notes.
 *
 * What is accepted. The scanner must accept exactly what jansson 2.14 accepts with
 * JSON_ALLOW_NUL, retried with JSON_DECODE_INT_AS_REAL when an integer overflows (the rule of
 * fields.c before this module, and still how the wire protocol and the fuzz oracle parse):
 *   - one object, with only space, tab, \n and \r around it;
 *   - numbers -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?. An integer beyond int64 fails
 *     jansson's first pass and is read as a real by the retry, so every number, integer or not,
 *     is accepted unless strtod() overflows it to +-HUGE_VAL (1e999, or an integer of 309 digits);
 *   - true, false, null exactly;
 *   - strings without raw bytes below 0x20, with the escapes \" \\ \/ \b \f \n \r \t \uXXXX only,
 *     \u surrogates in high-low pairs, and well-formed UTF-8 (no overlong forms, no encoded
 *     surrogates, nothing above U+10FFFF); \u0000 is fine in a value but not in a key, which
 *     jansson refuses ("NUL byte in object key not supported") whatever the flags;
 *   - nesting up to JSONSCAN_MAX_DEPTH, counting every value: a container at the maximum depth
 *     must be empty.
 * A number is followed by whatever follows it in its container, so "01", "1.5.3" and "truex" need
 * no rule of their own: the byte after the token is not a comma, a closing bracket or space.
 * One quirk of jansson's is copied on purpose: a single NUL byte right after a number or a literal
 * is skipped ({"a":1\0} is valid; see the value state below), because the fuzz oracle says so.
 *
 * How it is fast. The parser is a loop of labelled states joined by gotos (below, in
 * js_scan) over an explicit stack of open containers, so that a record costs no call per
 * value. String bodies, most of a JSON Lines record, are skipped 16 bytes at a time with SSE2: one
 * signed compare finds control bytes and non-ASCII bytes together, two more find the quote and
 * the backslash, and only those bytes take the slow path. Keys are compared with the plan only
 * while the scan is inside an object the plan descends into, and then by length first; values
 * are only located during the scan: unescaping and compacting wait until jsonscan_get() asks.
 *
 * Repeated keys. The last of repeated keys wins, at every level, so a key met again must forget
 * what was found under its first occurrence. Each trie node remembers the serial of the last scan
 * that met it; a node met twice in one scan clears the values of the paths below it. Values carry
 * the serial of the scan that set them, so starting a scan forgets every value in O(1).
 */
#include "data/jsonscan.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "common/util.h"
#include "tally/tally.h"

#define JS_NONE UINT32_MAX /* no trie node: the scan is where the plan does not reach */

/* Flags of a scanned string. */
#define JS_ESC 1u /* it holds escapes: its text must be unescaped */
#define JS_NUL 2u /* one of them is \u0000 */

/* What a found value is; JS_NULL counts as absent. */
enum js_kind {
    JS_STRING,     /* text between the quotes, no escapes: handed out as is */
    JS_STRING_ESC, /* text between the quotes, to be unescaped */
    JS_NUMBER,     /* the number as written */
    JS_LITERAL,    /* true or false as written */
    JS_NULL,
    JS_COMPOSITE, /* an object or an array as written, to be compacted */
};

/* A node of the plan's trie: one key on the way to one or more paths. Node 0 is the root (the
 * record's top-level object) and has no key. */
struct js_node {
    unsigned char head[16]; /* the key's first 16 bytes, zero-padded: most keys compare in one go */
    char *key;
    size_t klen;
    uint32_t first_child, next_sibling; /* JS_NONE ends the list */
    int32_t path;                       /* index of the path that ends here, or -1 */
    uint64_t seen;                      /* serial of the last scan that met this key */
};

/* What the current record holds for one path. */
struct js_value {
    uint64_t serial; /* the scan that found it; any other means absent */
    enum js_kind kind;
    const char *raw; /* in the record */
    size_t rawlen;
    const char *text; /* the text handed out, once jsonscan_get() made it; NULL before */
    size_t textlen;
};

/* An open object or array. */
struct js_frame {
    const char *start; /* its opening bracket */
    uint32_t node;     /* trie node its members are matched against (objects), or JS_NONE */
    int32_t path;      /* path whose value it is, or -1 */
    char close;        /* '}' or ']' */
};

/* Scratch space for the texts jsonscan_get() makes: blocks are kept and rewound per record, so
 * that a record allocates nothing once the blocks fit, and texts never move once handed out. */
struct js_arena {
    char **blocks;
    size_t *caps;
    size_t nblocks, cur, used;
};

struct jsonscan {
    /* The plan. */
    struct js_node *nodes;
    size_t nnodes, nodes_cap;
    char **paths;
    struct js_value *values; /* one per path */
    size_t npaths, paths_cap;

    /* The current record. */
    const char *data;
    size_t len;
    int have_record;
    int status;      /* what the last scan returned */
    uint64_t serial; /* counts scans */

    struct js_frame *stack; /* JSONSCAN_MAX_DEPTH frames */
    struct buf key;         /* a key written with escapes, unescaped for matching */
    struct buf num;         /* a number that might overflow, NUL-terminated for strtod */
    struct js_arena arena;
};

/* ---- Character classes ------------------------------------------------------------------- */

/* Whitespace as JSON (and jansson) has it. */
static const unsigned char js_ws[256] = {[' '] = 1, ['\t'] = 1, ['\n'] = 1, ['\r'] = 1};

/* 1 for the bytes a string body holds as they are: printable ASCII but the quote and the
 * backslash. (The vector loop finds the others; this is for the last few bytes of a record.) */
static inline int js_plain(unsigned char c) { return c >= 0x20 && c < 0x80 && c != '"' && c != '\\'; }

/* Value of a hex digit, or -1. */
static inline int js_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20; /* lower case */
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static inline const char *js_skip_ws(const char *p, const char *end)
{
    while (p < end && js_ws[(unsigned char)*p]) p++;
    return p;
}

static inline int js_digit(char c) { return (unsigned char)(c - '0') < 10; }

/* ---- Tokens ------------------------------------------------------------------------------ */

/* The four hex digits at p as a number, or -1 when there are not four. */
static int32_t js_hex4(const char *p, const char *end)
{
    if (end - p < 4) return -1;
    int32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int h = js_hexval((unsigned char)p[i]);
        if (h < 0) return -1;
        v = v << 4 | h;
    }
    return v;
}

/* Checks the escape at p (a backslash); returns the position after it, or NULL. */
static const char *js_escape(const char *p, const char *end, unsigned *flags)
{
    *flags |= JS_ESC;
    if (end - p < 2) return NULL;
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't': return p + 2;
    case 'u': break;
    default: return NULL;
    }
    int32_t u = js_hex4(p + 2, end);
    if (u < 0) return NULL;
    p += 6;
    if (u >= 0xD800 && u <= 0xDBFF) {
        /* A high surrogate must be followed at once by an escaped low one. */
        if (end - p < 2 || p[0] != '\\' || p[1] != 'u') return NULL;
        int32_t lo = js_hex4(p + 2, end);
        return lo >= 0xDC00 && lo <= 0xDFFF ? p + 6 : NULL;
    }
    if (u >= 0xDC00 && u <= 0xDFFF) return NULL;
    if (u == 0) *flags |= JS_NUL;
    return p;
}

/* Length of the well-formed UTF-8 sequence at p (a byte >= 0x80), or 0. These are the rules of
 * jansson's utf8_check_first() and utf8_check_full(), written as the ranges of RFC 3629. */
static size_t js_utf8(const char *s, const char *end)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t left = (size_t)(end - s);
    unsigned c = p[0], lo, hi;
    if (c < 0xC2) return 0; /* a continuation byte, or C0/C1 (overlong ASCII) */
    if (c < 0xE0) return left >= 2 && (p[1] & 0xC0) == 0x80 ? 2 : 0;
    if (c < 0xF0) {
        if (left < 3 || (p[2] & 0xC0) != 0x80) return 0;
        lo = c == 0xE0 ? 0xA0 : 0x80; /* E0 80..9F would be overlong */
        hi = c == 0xED ? 0x9F : 0xBF; /* ED A0..BF would be a surrogate */
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c < 0xF5) {
        if (left < 4 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80) return 0;
        lo = c == 0xF0 ? 0x90 : 0x80; /* F0 80..8F would be overlong */
        hi = c == 0xF4 ? 0x8F : 0xBF; /* F4 90.. would be above U+10FFFF */
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

/* Scans a string body from p (just after the opening quote): returns the position of the closing
 * quote, or NULL when the string is malformed or unterminated. Sets JS_ESC and JS_NUL in *flags. */
static inline __attribute__((always_inline)) const char *js_string(const char *p, const char *end, unsigned *flags)
{
    unsigned char c;
    for (;;) {
#ifdef __SSE2__
        /* A signed compare with 0x20 is true for 0x00-0x1f and for 0x80-0xff alike. */
        const __m128i quote = _mm_set1_epi8('"'), bslash = _mm_set1_epi8('\\'),
                      space = _mm_set1_epi8(0x20);
        while (end - p >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, bslash)),
                                       _mm_cmplt_epi8(v, space));
            unsigned m = (unsigned)_mm_movemask_epi8(hit);
            if (m) {
                p += __builtin_ctz(m);
                goto special;
            }
            p += 16;
        }
#endif
        /* The last bytes of the record, or every byte without SSE2. */
        while (p < end && js_plain((unsigned char)*p)) p++;
        if (p == end) return NULL;
#ifdef __SSE2__
    special:
#endif
        c = (unsigned char)*p;
        if (c == '"') return p;
        if (c == '\\') {
            if (!(p = js_escape(p, end, flags))) return NULL;
        } else if (c < 0x20) {
            return NULL;
        } else {
            /* Non-ASCII text comes in runs (words, whole strings): stay in this loop while it
             * lasts, rather than go back to the vector loop for every character. */
            do {
                size_t n = js_utf8(p, end);
                if (!n) return NULL;
                p += n;
                while (p < end && js_plain((unsigned char)*p)) p++;
            } while (p < end && (unsigned char)*p >= 0x80);
        }
    }
}

/* 1 when strtod() takes the number [p, e) to +-HUGE_VAL with ERANGE, jansson's overflow test. */
static int js_overflows(jsonscan *s, const char *p, const char *e)
{
    s->num.len = 0;
    buf_append(&s->num, p, (size_t)(e - p)); /* NUL-terminates */
    errno = 0;
    double v = strtod(s->num.data, NULL);
    return (v == HUGE_VAL || v == -HUGE_VAL) && errno == ERANGE;
}

/* Scans a number from p (a '-' or a digit): returns its end, or NULL when it is malformed or
 * overflows a double. */
static inline const char *js_number(jsonscan *s, const char *p, const char *end)
{
    const char *start = p;
    if (*p == '-' && ++p == end) return NULL;
    const char *digits = p;
    if (*p == '0') {
        p++;
    } else if (js_digit(*p)) {
        do p++;
        while (p < end && js_digit(*p));
    } else {
        return NULL;
    }
    long long mag = p - digits; /* the number is below 10^mag */
    if (p < end && *p == '.') {
        if (++p == end || !js_digit(*p)) return NULL;
        do p++;
        while (p < end && js_digit(*p));
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        int neg = 0;
        long long exp = 0;
        if (++p < end && (*p == '+' || *p == '-')) neg = *p++ == '-';
        if (p == end || !js_digit(*p)) return NULL;
        do {
            if (exp < 1000000) exp = exp * 10 + (*p - '0'); /* saturates: only > 308 matters */
            p++;
        } while (p < end && js_digit(*p));
        mag += neg ? -exp : exp;
    }
    /* Below 10^308 a number cannot round past DBL_MAX (1.797e308), so strtod is needed only for
     * the rare number with a big exponent or a very long integer part. */
    if (mag > 308 && js_overflows(s, start, p)) return NULL;
    return p;
}

/* ---- Unescaping and compacting ----------------------------------------------------------- */

static size_t js_put_utf8(char *w, uint32_t cp)
{
    if (cp < 0x80) {
        w[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        w[0] = (char)(0xC0 | cp >> 6);
        w[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        w[0] = (char)(0xE0 | cp >> 12);
        w[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        w[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    w[0] = (char)(0xF0 | cp >> 18);
    w[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    w[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    w[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* Unescapes a string body that js_string() accepted into out, which has room for n bytes (text
 * only shrinks: \uXXXX is at most 3 bytes, a surrogate pair 4); returns the length. */
static size_t js_unescape(char *out, const char *p, size_t n)
{
    const char *end = p + n;
    char *w = out;
    for (;;) {
        const char *bs = memchr(p, '\\', (size_t)(end - p));
        size_t run = (size_t)((bs ? bs : end) - p);
        memcpy(w, p, run);
        w += run;
        if (!bs) break;
        p = bs + 2;
        switch (bs[1]) {
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            uint32_t cp = (uint32_t)js_hex4(p, end);
            p += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF) {
                uint32_t lo = (uint32_t)js_hex4(p + 2, end);
                cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                p += 6;
            }
            w += js_put_utf8(w, cp);
            break;
        }
        default: *w++ = bs[1]; break; /* " \ / */
        }
    }
    return (size_t)(w - out);
}

/* End of the string whose opening quote is at p, in text that has been validated. */
static const char *js_string_end(const char *p)
{
    for (p++; *p != '"'; p++)
        if (*p == '\\') p++;
    return p + 1;
}

static char *js_arena_alloc(struct js_arena *a, size_t n)
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

/* The text of a validated object or array without the whitespace outside its strings (nor the
 * NUL bytes jansson skips after numbers and literals): the record's own bytes when there is none,
 * else a copy in the arena. */
static void js_compact(jsonscan *s, const char *p, size_t n, const char **out, size_t *outlen)
{
    const char *end = p + n, *q = p;
    while (q < end && *q && !js_ws[(unsigned char)*q]) q = *q == '"' ? js_string_end(q) : q + 1;
    if (q == end) {
        *out = p;
        *outlen = n;
        return;
    }
    char *buf = js_arena_alloc(&s->arena, n), *w = buf;
    memcpy(w, p, (size_t)(q - p));
    w += q - p;
    while (q < end) {
        if (*q == '"') {
            const char *e = js_string_end(q);
            memcpy(w, q, (size_t)(e - q));
            w += e - q;
            q = e;
        } else {
            if (*q && !js_ws[(unsigned char)*q]) *w++ = *q;
            q++;
        }
    }
    *out = buf;
    *outlen = (size_t)(w - buf);
}

/* ---- The plan ---------------------------------------------------------------------------- */

static uint32_t js_node_add(jsonscan *s, const char *key, size_t klen)
{
    if (s->nnodes == s->nodes_cap) {
        s->nodes_cap = s->nodes_cap ? 2 * s->nodes_cap : 16;
        s->nodes = xrealloc(s->nodes, s->nodes_cap * sizeof *s->nodes);
    }
    struct js_node *n = &s->nodes[s->nnodes];
    n->key = key ? xstrndup(key, klen) : NULL;
    n->klen = klen;
    memset(n->head, 0, sizeof n->head);
    if (key) memcpy(n->head, key, klen < sizeof n->head ? klen : sizeof n->head);
    n->first_child = n->next_sibling = JS_NONE;
    n->path = -1;
    n->seen = 0;
    return (uint32_t)s->nnodes++;
}

/* The child of `parent` with key [key, key+klen), created when missing. */
static uint32_t js_node_child(jsonscan *s, uint32_t parent, const char *key, size_t klen)
{
    uint32_t last = JS_NONE;
    for (uint32_t c = s->nodes[parent].first_child; c != JS_NONE; c = s->nodes[c].next_sibling) {
        if (s->nodes[c].klen == klen && memcmp(s->nodes[c].key, key, klen) == 0) return c;
        last = c;
    }
    uint32_t id = js_node_add(s, key, klen); /* may move the nodes: link by index after it */
    if (last == JS_NONE) s->nodes[parent].first_child = id;
    else s->nodes[last].next_sibling = id;
    return id;
}

jsonscan *jsonscan_new(void)
{
    jsonscan *s = xcalloc(1, sizeof *s);
    s->stack = xmalloc(JSONSCAN_MAX_DEPTH * sizeof *s->stack);
    js_node_add(s, NULL, 0); /* the root */
    return s;
}

void jsonscan_free(jsonscan *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->nnodes; i++) free(s->nodes[i].key);
    free(s->nodes);
    for (size_t i = 0; i < s->npaths; i++) free(s->paths[i]);
    free(s->paths);
    free(s->values);
    free(s->stack);
    buf_free(&s->key);
    buf_free(&s->num);
    for (size_t i = 0; i < s->arena.nblocks; i++) free(s->arena.blocks[i]);
    free(s->arena.blocks);
    free(s->arena.caps);
    free(s);
}

int jsonscan_add(jsonscan *s, const char *path, size_t *index)
{
    for (size_t i = 0; i < s->npaths; i++) {
        if (strcmp(s->paths[i], path) == 0) {
            *index = i;
            return 0;
        }
    }
    uint32_t n = 0;
    for (const char *part = path;;) {
        const char *dot = strchr(part, '.');
        size_t len = dot ? (size_t)(dot - part) : strlen(part);
        n = js_node_child(s, n, part, len);
        if (!dot) break;
        part = dot + 1;
    }
    if (s->npaths == s->paths_cap) {
        s->paths_cap = s->paths_cap ? 2 * s->paths_cap : 8;
        s->paths = xrealloc(s->paths, s->paths_cap * sizeof *s->paths);
        s->values = xrealloc(s->values, s->paths_cap * sizeof *s->values);
    }
    s->paths[s->npaths] = xstrdup(path);
    memset(&s->values[s->npaths], 0, sizeof s->values[s->npaths]); /* serial 0: never found */
    s->nodes[n].path = (int32_t)s->npaths;
    *index = s->npaths++;
    return 0;
}

size_t jsonscan_count(const jsonscan *s) { return s->npaths; }

const char *jsonscan_path(const jsonscan *s, size_t i) { return i < s->npaths ? s->paths[i] : NULL; }

/* ---- The scan ---------------------------------------------------------------------------- */

/* Forgets the values found below node n: its key was met again, and the last one wins. */
static void js_forget_below(jsonscan *s, uint32_t n)
{
    for (uint32_t c = s->nodes[n].first_child; c != JS_NONE; c = s->nodes[c].next_sibling) {
        if (s->nodes[c].path >= 0) s->values[s->nodes[c].path].serial = 0;
        js_forget_below(s, c);
    }
}

/* 1 when node n's key is [k, k+klen); `room` says 16 bytes can be read from k. */
static inline int js_key_equal(const struct js_node *n, const char *k, size_t klen, int room)
{
    if (n->klen != klen) return 0;
#ifdef __SSE2__
    if (klen <= 16 && room) {
        __m128i a = _mm_loadu_si128((const __m128i *)(const void *)k);
        __m128i b = _mm_loadu_si128((const __m128i *)(const void *)n->head);
        unsigned eq = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(a, b)), want = (1u << klen) - 1;
        return (eq & want) == want;
    }
#else
    (void)room;
#endif
    return memcmp(n->key, k, klen) == 0;
}

/* The child of `parent` whose key is the scanned key [k, k+klen) (unescaped first when it was
 * written with escapes), or JS_NONE. */
static inline uint32_t js_match(jsonscan *s, uint32_t parent, const char *k, size_t klen, unsigned flags,
                                const char *end)
{
    int room = end - k >= 16;
    if (flags & JS_ESC) {
        s->key.len = 0;
        buf_reserve(&s->key, klen);
        klen = js_unescape(s->key.data, k, klen);
        k = s->key.data;
        room = 0;
    }
    for (uint32_t c = s->nodes[parent].first_child; c != JS_NONE; c = s->nodes[c].next_sibling) {
        struct js_node *n = &s->nodes[c];
        if (!js_key_equal(n, k, klen, room)) continue;
        if (n->seen == s->serial) js_forget_below(s, c);
        n->seen = s->serial;
        return c;
    }
    return JS_NONE;
}

static inline void js_set(jsonscan *s, int32_t path, enum js_kind kind, const char *p, size_t n)
{
    struct js_value *v = &s->values[path];
    v->serial = s->serial;
    v->kind = kind;
    v->raw = p;
    v->rawlen = n;
    v->text = NULL;
}

/* One pass over the record. The states, each a label below:
 *   open_object  at '{': pushes a frame; an empty object closes at once, else -> member
 *   member       at a key: scans it and the colon, matches it with the plan -> value
 *   value        at a value: a scalar is scanned and noted -> after; '{' -> open_object;
 *                '[' -> open_array
 *   open_array   at '[': pushes a frame; an empty array closes at once, else -> value
 *   after        after a value: ',' -> member or value; the closing bracket -> close
 *   close        past a closing bracket: notes the container, pops its frame; -> after, or the
 *                end of the record when the top-level object closed.
 * `node` and `path` say where the value being scanned sits in the plan (JS_NONE and -1 when it
 * does not); a frame keeps them for a container until it closes. */
static int js_scan(jsonscan *s)
{
    const char *p = s->data, *end = s->data + s->len, *vs;
    struct js_frame *const base = s->stack, *top = NULL;
    uint32_t node = 0;
    int32_t path = -1;
    unsigned flags;

    s->serial++;
    p = js_skip_ws(p, end);
    if (p == end || *p != '{') return TALLY_EBADREC;

open_object:
    top = top ? top + 1 : base;
    if (top - base == JSONSCAN_MAX_DEPTH) return TALLY_EBADREC;
    top->start = p;
    top->node = node != JS_NONE && s->nodes[node].first_child != JS_NONE ? node : JS_NONE;
    top->path = path;
    top->close = '}';
    p = js_skip_ws(p + 1, end);
    if (p < end && *p == '}') {
        p++;
        goto close;
    }
    /* Members of a container at the maximum depth would be one level too deep. */
    if (top - base == JSONSCAN_MAX_DEPTH - 1) return TALLY_EBADREC;

member:
    if (p == end || *p != '"') return TALLY_EBADREC;
    vs = ++p;
    flags = 0;
    if (!(p = js_string(p, end, &flags)) || (flags & JS_NUL)) return TALLY_EBADREC;
    node = JS_NONE;
    path = -1;
    if (top->node != JS_NONE) {
        node = js_match(s, top->node, vs, (size_t)(p - vs), flags, end);
        if (node != JS_NONE) path = s->nodes[node].path;
    }
    p = js_skip_ws(p + 1, end);
    if (p == end || *p != ':') return TALLY_EBADREC;
    p = js_skip_ws(p + 1, end);

value:
    if (p == end) return TALLY_EBADREC;
    switch (*p) {
    case '"':
        vs = ++p;
        flags = 0;
        if (!(p = js_string(p, end, &flags))) return TALLY_EBADREC;
        if (path >= 0) js_set(s, path, flags & JS_ESC ? JS_STRING_ESC : JS_STRING, vs, (size_t)(p - vs));
        p++;
        goto after;
    case '{': goto open_object;
    case '[': goto open_array;
    case '-': case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9':
        vs = p;
        if (!(p = js_number(s, p, end))) return TALLY_EBADREC;
        if (path >= 0) js_set(s, path, JS_NUMBER, vs, (size_t)(p - vs));
        break;
    case 't':
        if (end - p < 4 || memcmp(p, "true", 4) != 0) return TALLY_EBADREC;
        if (path >= 0) js_set(s, path, JS_LITERAL, p, 4);
        p += 4;
        break;
    case 'f':
        if (end - p < 5 || memcmp(p, "false", 5) != 0) return TALLY_EBADREC;
        if (path >= 0) js_set(s, path, JS_LITERAL, p, 5);
        p += 5;
        break;
    case 'n':
        if (end - p < 4 || memcmp(p, "null", 4) != 0) return TALLY_EBADREC;
        if (path >= 0) js_set(s, path, JS_NULL, p, 4);
        p += 4;
        break;
    default: return TALLY_EBADREC;
    }
    /* jansson reads one byte past a number or a literal and puts it back; a NUL byte put back is
     * lost (its stream buffer takes a NUL for "empty"), so one NUL right after such a token is
     * as good as nothing. */
    if (p < end && *p == '\0') p++;

after:
    p = js_skip_ws(p, end);
    if (p == end) return TALLY_EBADREC;
    if (*p == ',') {
        p = js_skip_ws(p + 1, end);
        if (top->close == '}') goto member;
        node = JS_NONE;
        path = -1;
        goto value;
    }
    if (*p != top->close) return TALLY_EBADREC;
    p++;

close:
    if (top->path >= 0) js_set(s, top->path, JS_COMPOSITE, top->start, (size_t)(p - top->start));
    if (top == base) return js_skip_ws(p, end) == end ? 0 : TALLY_EBADREC;
    top--;
    goto after;

open_array:
    top++;
    if (top - base == JSONSCAN_MAX_DEPTH) return TALLY_EBADREC;
    top->start = p;
    top->node = JS_NONE; /* arrays are not walked */
    top->path = path;
    top->close = ']';
    p = js_skip_ws(p + 1, end);
    if (p < end && *p == ']') {
        p++;
        goto close;
    }
    if (top - base == JSONSCAN_MAX_DEPTH - 1) return TALLY_EBADREC;
    node = JS_NONE;
    path = -1;
    goto value;
}

int jsonscan_record(jsonscan *s, const char *data, size_t len)
{
    s->data = data;
    s->len = len;
    s->have_record = 1;
    s->arena.cur = s->arena.used = 0;
    s->status = js_scan(s);
    return s->status;
}

int jsonscan_rescan(jsonscan *s)
{
    if (!s->have_record) return -EINVAL;
    s->status = js_scan(s);
    return s->status;
}

int jsonscan_get(jsonscan *s, size_t index, const char **val, size_t *vlen)
{
    if (!s->have_record || index >= s->npaths) return -EINVAL;
    if (s->status) return s->status;
    struct js_value *v = &s->values[index];
    if (v->serial != s->serial || v->kind == JS_NULL) return TALLY_ENOFIELD;
    if (!v->text) {
        switch (v->kind) {
        case JS_STRING_ESC: {
            char *out = js_arena_alloc(&s->arena, v->rawlen);
            v->textlen = js_unescape(out, v->raw, v->rawlen);
            v->text = out;
            break;
        }
        case JS_COMPOSITE: js_compact(s, v->raw, v->rawlen, &v->text, &v->textlen); break;
        default:
            v->text = v->raw;
            v->textlen = v->rawlen;
            break;
        }
    }
    *val = v->text;
    *vlen = v->textlen;
    return 0;
}
