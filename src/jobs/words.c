/* words.c - the byte class table behind words_next(). */
#include "jobs/words.h"

#define W16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
const uint8_t words_class[256] = {
    /* 0x00-0x3f: no letters */
    [0x41] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* A-Z */
    [0x61] = 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, /* a-z */
    [0x80] = W16, W16, W16, W16, W16, W16, W16, W16,                                      /* >= 0x80 */
};
