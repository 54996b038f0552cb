/* fuzz_csv.c - libFuzzer target for CSV field splitting (src/data/fields.c): the header parser,
 * the SSE2 split of quote-free records and the general RFC 4180 split behind it.
 *
 * The input is a header line, a newline, and one record (the rest, newlines included, as the
 * reader would hand over a quoted multi-line record). Each column is read by name, through an
 * interned handle and in one fields_get_many call: the three must agree, every value must lie
 * inside the record or be a shorter unescaped copy, and for a record without quotes the
 * values must be exactly the pieces between its commas (or TALLY_EBADREC when there are more
 * pieces than columns, TALLY_ENOFIELD for the columns after the last piece). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "data/fields.h"
#include "tally/tally.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_COLS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *in = (const char *)data, *nl = memchr(in, '\n', size);
    if (!nl) return 0;
    size_t hlen = (size_t)(nl - in), rlen = size - hlen - 1;
    fields_header *h = NULL;
    struct err e = {0};
    if (fields_header_parse(in, hlen, &h, &e) != 0) return 0;
    size_t ncols = fields_header_count(h);
    if (ncols > FUZZ_COLS) ncols = FUZZ_COLS;
    /* The record in its own allocation, NUL-terminated, so ASan sees any read past it. */
    char *rec = malloc(rlen + 1);
    memcpy(rec, nl + 1, rlen);
    rec[rlen] = 0;
    fields_cache *c = fields_cache_new();
    fields_cache_reset(c, FIELDS_CSV, h, rec, rlen);

    const struct tally_field *refs[FUZZ_COLS];
    const char *vals[FUZZ_COLS];
    size_t lens[FUZZ_COLS];
    int rcs[FUZZ_COLS];
    size_t nrefs = 0;
    for (size_t i = 0; i < ncols; i++) {
        const struct tally_field *f = fields_ref(fields_header_name(h, i));
        if (f) refs[nrefs++] = f;
    }
    fields_get_many(c, refs, nrefs, vals, lens, rcs);

    size_t len = rlen && rec[rlen - 1] == '\r' ? rlen - 1 : rlen;
    int quoted = memchr(rec, '"', len) != NULL;
    size_t pieces = 1;
    for (size_t i = 0; i < len; i++) pieces += rec[i] == ',';
    for (size_t i = 0; i < nrefs; i++) {
        const char *v1, *v2;
        size_t l1, l2;
        int r1 = fields_get(c, refs[i]->name, &v1, &l1), r2 = fields_get_ref(c, refs[i], &v2, &l2);
        if (r1 != r2 || r1 != rcs[i]) abort();
        if (r1 == 0 && (l1 != l2 || l1 != lens[i] || v1 != v2 || v1 != vals[i])) abort();
        if (r1 == 0 && l1 > len) abort();
        if (r1 == 0 && v1 >= rec && v1 <= rec + len && v1 + l1 > rec + len) abort();
        if (quoted) continue;
        /* The column that name maps to (the last column of a repeated name). */
        size_t col = SIZE_MAX;
        for (size_t k = 0; k < fields_header_count(h); k++)
            if (strcmp(fields_header_name(h, k), refs[i]->name) == 0) col = k;
        if (pieces > fields_header_count(h)) {
            if (r1 != TALLY_EBADREC) abort();
            continue;
        }
        if (col >= pieces) {
            if (r1 != TALLY_ENOFIELD) abort();
            continue;
        }
        size_t start = 0, k = 0;
        for (size_t j = 0; j <= len; j++) {
            if (j < len && rec[j] != ',') continue;
            if (k++ == col) {
                if (r1 != 0 || v1 != rec + start || l1 != j - start) abort();
                break;
            }
            start = j + 1;
        }
    }
    fields_cache_free(c);
    fields_header_free(h);
    free(rec);
    return 0;
}
