/* words.h - the word definition shared by wordcount and index: a maximal run of ASCII letters
 * or bytes >= 0x80 (so UTF-8 letters stay inside words). */
#ifndef TALLY_WORDS_H
#define TALLY_WORDS_H

#include <stddef.h>
#include <stdint.h>

extern const uint8_t words_class[256]; /* 1 for bytes that belong to words */

/* Finds the next word in [*p, end): returns its start and sets *len, advancing *p past it;
 * returns NULL when there is none. */
static inline const uint8_t *words_next(const uint8_t **p, const uint8_t *end, size_t *len)
{
    const uint8_t *s = *p;
    while (s < end && !words_class[*s]) s++;
    if (s == end) {
        *p = end;
        return NULL;
    }
    const uint8_t *t = s + 1;
    while (t < end && words_class[*t]) t++;
    *len = (size_t)(t - s);
    *p = t;
    return s;
}

#endif
