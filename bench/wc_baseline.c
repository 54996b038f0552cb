/* wc_baseline.c - the benchmark's yardstick: the simplest fast single-threaded word counter in C.
 *
 * usage: wc_baseline [-o OUT] FILE     (FILE may be - for standard input)
 *
 * One pass over FILE with read() in 1 MiB blocks, one open-addressing hash table, no framework.
 * A word is what tally's wordcount calls a word: a maximal run of ASCII letters [A-Za-z] or
 * bytes >= 0x80, case kept. Prints "word<TAB>count" lines, in first-seen order, to standard
 * output or OUT. bench/run.sh compares tally's counts with these and puts its time beside them.
 *
 * Memory layout. Each distinct word is one record in an append-only arena: an 8-byte count, a
 * 4-byte length and the word's bytes, padded to 8. The hash table holds one 8-byte slot per
 * entry: the record's offset (in 8-byte units, plus one so that 0 means empty) and 24 bits of
 * the hash as a tag, so most mismatches are rejected without touching the arena. Growing the
 * table rehashes the arena's records in order; printing walks the arena. */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <xxhash.h>

#define WC_BLOCK (1u << 20)
#define WC_TAG_BITS 24
#define WC_TAG_MASK ((1ull << WC_TAG_BITS) - 1)

struct wc_record {
    uint64_t count;
    uint32_t len;
    unsigned char bytes[]; /* len bytes, then padding to a multiple of 8 */
};

struct wc_table {
    uint64_t *slots;
    size_t mask, used;
    unsigned char *arena; /* records, 8-byte aligned */
    size_t arena_len, arena_cap;
};

static unsigned char wc_in_word[256];

static void wc_oom(size_t n)
{
    fprintf(stderr, "wc_baseline: out of memory allocating %zu bytes\n", n);
    exit(1);
}

/* Asks for transparent huge pages on a large block: the table and the arena are accessed at
 * random, and with 4 KiB pages most lookups in a big table would also miss the TLB. */
static void wc_hugepages(void *p, size_t n)
{
    const uintptr_t huge = 2u << 20;
    uintptr_t start = ((uintptr_t)p + huge - 1) & ~(huge - 1), end = (uintptr_t)p + n;
    if (end > start + huge) madvise((void *)start, (end - start) & ~(huge - 1), MADV_HUGEPAGE);
}

static void *wc_alloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) wc_oom(n);
    wc_hugepages(q, n);
    return q;
}

static void *wc_zalloc(size_t n, size_t size)
{
    void *q = calloc(n, size);
    if (!q) wc_oom(n * size);
    wc_hugepages(q, n * size);
    return q;
}

static size_t wc_record_size(size_t len)
{
    return (sizeof(struct wc_record) + len + 7) & ~(size_t)7;
}

static uint64_t wc_hash(const unsigned char *s, size_t len) { return XXH3_64bits(s, len); }

/* Puts a slot for the record at arena offset `off` into a table known to have room. */
static void wc_place(struct wc_table *t, uint64_t h, size_t off)
{
    size_t i = (size_t)h & t->mask;
    while (t->slots[i]) i = (i + 1) & t->mask;
    t->slots[i] = ((uint64_t)(off / 8 + 1) << WC_TAG_BITS) | (h >> (64 - WC_TAG_BITS));
}

static void wc_grow(struct wc_table *t)
{
    size_t cap = (t->mask + 1) * 2;
    free(t->slots);
    t->slots = wc_zalloc(cap, sizeof *t->slots);
    t->mask = cap - 1;
    for (size_t off = 0; off < t->arena_len;) {
        const struct wc_record *r = (const struct wc_record *)(t->arena + off);
        wc_place(t, wc_hash(r->bytes, r->len), off);
        off += wc_record_size(r->len);
    }
}

static void wc_count(struct wc_table *t, const unsigned char *s, size_t len)
{
    uint64_t h = wc_hash(s, len);
    uint64_t tag = h >> (64 - WC_TAG_BITS);
    size_t i = (size_t)h & t->mask;
    for (;;) {
        uint64_t e = t->slots[i];
        if (e == 0) break;
        if ((e & WC_TAG_MASK) == tag) {
            struct wc_record *r = (struct wc_record *)(t->arena + ((e >> WC_TAG_BITS) - 1) * 8);
            if (r->len == len && memcmp(r->bytes, s, len) == 0) {
                r->count++;
                return;
            }
        }
        i = (i + 1) & t->mask;
    }
    /* A new word: append its record, then keep the table at most 3/4 full. */
    size_t need = wc_record_size(len);
    if (t->arena_len + need > t->arena_cap) {
        while (t->arena_len + need > t->arena_cap) t->arena_cap *= 2;
        t->arena = wc_alloc(t->arena, t->arena_cap);
    }
    size_t off = t->arena_len;
    struct wc_record *r = (struct wc_record *)(t->arena + off);
    r->count = 1;
    r->len = (uint32_t)len;
    memcpy(r->bytes, s, len);
    t->arena_len += need;
    t->slots[i] = ((uint64_t)(off / 8 + 1) << WC_TAG_BITS) | tag;
    if (++t->used * 4 >= (t->mask + 1) * 3) wc_grow(t);
}

/* Counts the words of fd. A word cut by a block boundary is gathered in `carry` and counted
 * once its end is seen (or at end of file). Returns 0 or an errno value. */
static int wc_scan(int fd, struct wc_table *t)
{
    unsigned char *buf = wc_alloc(NULL, WC_BLOCK);
    unsigned char *carry = NULL;
    size_t carry_len = 0, carry_cap = 0;
    int rc = 0;
    for (;;) {
        ssize_t n = read(fd, buf, WC_BLOCK);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = errno;
            break;
        }
        if (n == 0) break;
        const unsigned char *p = buf, *end = buf + n;
        if (carry_len) {
            const unsigned char *q = p;
            while (q < end && wc_in_word[*q]) q++;
            size_t add = (size_t)(q - p);
            if (carry_len + add > carry_cap) {
                carry_cap = (carry_len + add) * 2;
                carry = wc_alloc(carry, carry_cap);
            }
            memcpy(carry + carry_len, p, add);
            carry_len += add;
            if (q == end) continue; /* the word goes on into the next block */
            wc_count(t, carry, carry_len);
            carry_len = 0;
            p = q;
        }
        for (;;) {
            while (p < end && !wc_in_word[*p]) p++;
            if (p == end) break;
            const unsigned char *s = p;
            while (p < end && wc_in_word[*p]) p++;
            if (p == end) {
                size_t len = (size_t)(end - s);
                if (len > carry_cap) {
                    carry_cap = len * 2;
                    carry = wc_alloc(carry, carry_cap);
                }
                memcpy(carry, s, len);
                carry_len = len;
                break;
            }
            wc_count(t, s, (size_t)(p - s));
        }
    }
    if (rc == 0 && carry_len) wc_count(t, carry, carry_len);
    free(carry);
    free(buf);
    return rc;
}

static int wc_print(const struct wc_table *t, FILE *out)
{
    static char obuf[1 << 20];
    setvbuf(out, obuf, _IOFBF, sizeof obuf);
    for (size_t off = 0; off < t->arena_len;) {
        const struct wc_record *r = (const struct wc_record *)(t->arena + off);
        fwrite(r->bytes, 1, r->len, out);
        fprintf(out, "\t%llu\n", (unsigned long long)r->count);
        off += wc_record_size(r->len);
    }
    return fflush(out) == 0 && !ferror(out) ? 0 : errno ? errno : EIO;
}

int main(int argc, char **argv)
{
    const char *out_path = NULL, *in_path = NULL;
    int bad = 0;
    for (int i = 1; i < argc && !bad; i++) {
        if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) out_path = argv[++i];
        else if (!in_path && (argv[i][0] != '-' || strcmp(argv[i], "-") == 0)) in_path = argv[i];
        else bad = 1; /* -h, --help, unknown options and extra arguments all get the usage */
    }
    if (bad || !in_path) {
        fprintf(stderr, "usage: wc_baseline [-o OUT] FILE\n"
                        "Counts words (runs of [A-Za-z] or bytes >= 0x80) in FILE (- for stdin)\n"
                        "and prints word<TAB>count lines.\n");
        return 2;
    }
    for (int c = 0; c < 256; c++)
        wc_in_word[c] = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c >= 0x80;

    int fd = strcmp(in_path, "-") == 0 ? STDIN_FILENO : open(in_path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        fprintf(stderr, "wc_baseline: %s: %s\n", in_path, strerror(errno));
        return 1;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    struct wc_table t = {0};
    t.mask = (1u << 16) - 1;
    t.slots = wc_zalloc(t.mask + 1, sizeof *t.slots);
    t.arena_cap = 1u << 20;
    t.arena = wc_alloc(NULL, t.arena_cap);

    int rc = wc_scan(fd, &t);
    if (rc) {
        fprintf(stderr, "wc_baseline: reading %s: %s\n", in_path, strerror(rc));
        return 1;
    }
    if (fd != STDIN_FILENO) close(fd);

    FILE *out = stdout;
    if (out_path && !(out = fopen(out_path, "w"))) {
        fprintf(stderr, "wc_baseline: %s: %s\n", out_path, strerror(errno));
        return 1;
    }
    rc = wc_print(&t, out);
    if (rc == 0 && out != stdout && fclose(out) != 0) rc = errno;
    if (rc) {
        fprintf(stderr, "wc_baseline: writing %s: %s\n", out_path ? out_path : "stdout",
                strerror(rc));
        return 1;
    }
    free(t.slots);
    free(t.arena);
    return 0;
}
