/* gen.c - `tally gen`: writes deterministic text, smart-plug readings and inference data sets.
 *
 * Design notes.
 *
 * Determinism. Every byte is a function of the arguments: the data sets draw from xoshiro256**
 * streams seeded (through splitmix64) by --seed and a per-purpose stream number, never from
 * rand(), the clock or the locale. Numbers that are printed are computed in integers (milliwatts,
 * millijoules, ten-thousandths), so formatting never depends on floating point. The one use of
 * floating point is the Zipf sampling table; it is built in a fixed order with IEEE doubles and
 * (for exponents other than 1 and 0) pow(), so it is identical on every run of one build.
 *
 * Text speed. The benchmarks generate 1 GiB, so the text path is built for throughput: each
 * vocabulary word sits in a 16-byte slot already followed by its space, a word is chosen with
 * one random number through Walker's alias table (O(1), no search), copied with one fixed-size
 * memcpy and the cursor advanced by its length; whole lines land in a 4 MiB buffer that is
 * written with one write() call.
 *
 * Shards. readings and inferences generate one continuous stream (ids, timestamps, cumulative
 * work per plug, ObjectId counters) and cut it into files of --rows rows each, so shard k+1
 * continues where shard k stopped, as files exported from one running system would.
 */
#include "gen/gen.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/util.h"

/* ---- Pseudo-random numbers ----------------------------------------------------------------- */

/* Stream numbers keep the generators of different purposes independent of each other, so that,
 * e.g., changing --vocab does not shift the line lengths. */
enum gen_stream {
    GEN_STREAM_VOCAB = 1,
    GEN_STREAM_TEXT,
    GEN_STREAM_PLUGS,
    GEN_STREAM_READINGS,
    GEN_STREAM_PRODUCERS,
    GEN_STREAM_INFERENCES,
};

/* The vocabulary is the same for every --seed: texts generated with different seeds then read
 * like different documents in one language, and their word counts can be merged and compared. */
#define GEN_VOCAB_SEED 0x7a11e5eedull

struct gen_rng {
    uint64_t s[4];
};

static uint64_t gen_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void gen_rng_seed(struct gen_rng *r, uint64_t seed, enum gen_stream stream)
{
    uint64_t x = seed ^ ((uint64_t)stream * 0xd1b54a32d192ed03ull);
    for (int i = 0; i < 4; i++) r->s[i] = gen_splitmix64(&x);
}

static inline uint64_t gen_rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* xoshiro256** by Blackman and Vigna. */
static inline uint64_t gen_rng_next(struct gen_rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = gen_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = gen_rotl(s[3], 45);
    return out;
}

/* A number in [0, n) by multiply-and-shift; the bias (n / 2^32) is far below anything a data
 * set could show, and it avoids a division per draw. */
static inline uint32_t gen_rng_below(struct gen_rng *r, uint32_t n)
{
    return (uint32_t)(((gen_rng_next(r) >> 32) * n) >> 32);
}

/* ---- Buffered output ------------------------------------------------------------------------ */

/* Generators append whole records to `buf` without checking space per byte: there are always
 * GEN_OUT_SLACK bytes past `cap`, more than any record, and they flush once len >= cap. */
#define GEN_OUT_CAP (4u << 20)
#define GEN_OUT_SLACK 4096u

struct gen_out {
    int fd;
    const char *path; /* for messages; "-" is standard output */
    char *buf;
    size_t len, cap;
};

/* Opens `path` ("-" is standard output) for writing, truncating it. The path is borrowed and
 * must outlive the gen_out. Returns 0 or a negative code with a message naming the path. */
static int gen_out_open(struct gen_out *o, const char *path, struct err *e)
{
    memset(o, 0, sizeof *o);
    o->path = path;
    if (strcmp(path, "-") == 0) {
        o->fd = STDOUT_FILENO;
    } else {
        o->fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (o->fd < 0) return err_set(e, -errno, "cannot open %s: %s", path, strerror(errno));
    }
    o->cap = GEN_OUT_CAP;
    o->buf = xmalloc(o->cap + GEN_OUT_SLACK);
    return 0;
}

static int gen_out_flush(struct gen_out *o, struct err *e)
{
    size_t done = 0;
    while (done < o->len) {
        ssize_t n = write(o->fd, o->buf + done, o->len - done);
        if (n < 0) {
            if (errno == EINTR) continue;
            return err_set(e, -errno, "writing %s: %s", o->path, strerror(errno));
        }
        done += (size_t)n;
    }
    o->len = 0;
    return 0;
}

/* Flushes (unless `rc` already reports a failure), closes and frees. Returns the first error. */
static int gen_out_close(struct gen_out *o, int rc, struct err *e)
{
    if (rc == 0) rc = gen_out_flush(o, e);
    if (o->fd >= 0 && o->fd != STDOUT_FILENO && close(o->fd) != 0 && rc == 0)
        rc = err_set(e, -errno, "closing %s: %s", o->path, strerror(errno));
    free(o->buf);
    o->buf = NULL;
    o->fd = -1;
    return rc;
}

/* Writes the decimal digits of v at p; returns how many. */
static size_t gen_put_u64(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
    return n;
}

/* Writes milli / 1000 with up to three decimals and no trailing zeros ("68.451", "12.1", "0"),
 * the way the DEBS data prints its values. */
static size_t gen_put_milli(char *p, uint64_t milli)
{
    size_t n = gen_put_u64(p, milli / 1000);
    uint32_t frac = (uint32_t)(milli % 1000);
    if (frac == 0) return n;
    p[n++] = '.';
    for (uint32_t div = 100; div && frac; div /= 10) {
        p[n++] = (char)('0' + frac / div);
        frac %= div;
    }
    return n;
}

static size_t gen_put_str(char *p, const char *s)
{
    size_t n = strlen(s);
    memcpy(p, s, n);
    return n;
}

/* Creates `dir` and its missing parents, like mkdir -p. */
static int gen_mkdirs(const char *dir, struct err *e)
{
    if (!*dir) return err_set(e, -EINVAL, "empty output directory name");
    char *p = xstrdup(dir);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != 0) continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            rc = err_set(e, -errno, "cannot create directory %s: %s", p, strerror(errno));
            break;
        }
        *s = c;
        if (!c) break;
    }
    free(p);
    struct stat st;
    if (rc == 0 && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        rc = err_set(e, -ENOTDIR, "cannot create directory %s: a file of that name exists", dir);
    return rc;
}

/* ---- Arguments ------------------------------------------------------------------------------ */

enum gen_set {
    GEN_TEXT = 1u << 0,
    GEN_READINGS = 1u << 1,
    GEN_INFERENCES = 1u << 2,
    GEN_SHARDED = GEN_READINGS | GEN_INFERENCES,
    GEN_ALL = GEN_TEXT | GEN_SHARDED,
};

enum gen_optid { GEN_OPT_SIZE, GEN_OPT_VOCAB, GEN_OPT_ZIPF, GEN_OPT_UNIQUE, GEN_OPT_SHARDS,
                 GEN_OPT_ROWS, GEN_OPT_SEED, GEN_OPT_OUTPUT, GEN_OPT_HELP };

#define GEN_DEFAULT_VOCAB 100000u
#define GEN_MAX_VOCAB 10000000u
#define GEN_MAX_SHARDS 99999u /* file names carry five digits */
/* About 1.3 MB per readings shard and 1.8 MB per inferences shard at the default sizes. */
#define GEN_DEFAULT_READINGS_ROWS 41000u
#define GEN_DEFAULT_INFERENCES_ROWS 10000u

/* The options of every data set, in --help order: one table feeds parsing and help. */
struct gen_option {
    unsigned sets; /* the data sets that take it */
    enum gen_optid id;
    const char *name;
    char short_name;
    const char *metavar; /* NULL: a switch without value */
    const char *help;
};

static const struct gen_option gen_options[] = {
    {GEN_TEXT, GEN_OPT_SIZE, "size", 0, "SIZE",
     "output size in bytes, exactly; suffixes k, M, G (required)"},
    {GEN_TEXT, GEN_OPT_VOCAB, "vocab", 0, "N",
     "vocabulary size (default 100000, at most 10000000)"},
    {GEN_TEXT, GEN_OPT_ZIPF, "zipf", 0, "EXP",
     "Zipf exponent of word frequencies (default 1.0; 0 is uniform)"},
    {GEN_TEXT, GEN_OPT_UNIQUE, "unique", 0, NULL,
     "mostly distinct words instead: random 8-14-letter strings"},
    {GEN_SHARDED, GEN_OPT_SHARDS, "shards", 0, "N", "number of files (default 1)"},
    {GEN_READINGS, GEN_OPT_ROWS, "rows", 0, "R", "rows per file (default 41000, about 1.3 MB)"},
    {GEN_INFERENCES, GEN_OPT_ROWS, "rows", 0, "R", "rows per file (default 10000, about 1.8 MB)"},
    {GEN_ALL, GEN_OPT_SEED, "seed", 0, "S", "seed of the pseudo-random generator (default 1)"},
    {GEN_TEXT, GEN_OPT_OUTPUT, "output", 'o', "FILE",
     "output file, - for standard output (required)"},
    {GEN_SHARDED, GEN_OPT_OUTPUT, "output", 'o', "DIR",
     "output directory, created if missing (required)"},
    {GEN_ALL, GEN_OPT_HELP, "help", 'h', NULL, "print this help and exit"},
};

struct gen_args {
    uint64_t size;
    int have_size;
    uint64_t vocab;
    double zipf;
    int have_vocab, have_zipf;
    int unique;
    uint64_t shards;
    uint64_t rows;
    int have_rows;
    uint64_t seed;
    const char *output;
};

struct gen_set_def {
    enum gen_set set;
    const char *name;
    const char *synopsis;
    const char *description;
    int (*run)(const struct gen_args *a, struct err *e);
};

static int gen_text_run(const struct gen_args *a, struct err *e);
static int gen_readings_run(const struct gen_args *a, struct err *e);
static int gen_inferences_run(const struct gen_args *a, struct err *e);

static const struct gen_set_def gen_sets[] = {
    {GEN_TEXT, "text", "--size SIZE [--seed S] [--vocab N] [--zipf EXP] [--unique] -o FILE|-",
     "Lines of 8-16 words separated by single spaces, words drawn Zipf-distributed from a\n"
     "synthetic vocabulary (syllable-built words of 2-12 letters, a few percent Capitalised,\n"
     "short words the most frequent). The output is exactly SIZE bytes and ends with a\n"
     "newline; its last line is cut to fit and may end inside a word. The vocabulary is the\n"
     "same for every seed.",
     gen_text_run},
    {GEN_READINGS, "readings", "[--shards N] [--rows R] [--seed S] -o DIR",
     "Smart-plug readings like the DEBS 2014 Grand Challenge data, in\n"
     "DIR/readings_shard0.csv ... readings_shard{N-1}.csv with the header\n"
     "id,timestamp,value,property,plug_id,household_id,house_id. property 0 is the cumulative\n"
     "work of a plug in kWh, property 1 its load in W; some 200 plugs in houses 0-9. Shard\n"
     "k+1 continues the stream of shard k.",
     gen_readings_run},
    {GEN_INFERENCES, "inferences", "[--shards N] [--rows R] [--seed S] -o DIR",
     "Image-classifier results from 10 producers with different error rates over 8 labels, as\n"
     "JSON Lines the way mongoexport writes them, in DIR/inferences-00000.jsonl ...",
     gen_inferences_run},
};

#define GEN_NSETS (sizeof gen_sets / sizeof gen_sets[0])
#define GEN_NOPTIONS (sizeof gen_options / sizeof gen_options[0])

static void gen_usage_all(FILE *f)
{
    fprintf(f, "usage: tally gen SET [options]\n\n"
               "Writes a deterministic synthetic data set: the same arguments always give the\n"
               "same bytes. Sets:\n");
    for (size_t i = 0; i < GEN_NSETS; i++)
        fprintf(f, "  tally gen %s %s\n", gen_sets[i].name, gen_sets[i].synopsis);
    fprintf(f, "\nRun 'tally gen SET --help' for the options of one set.\n");
}

static void gen_usage_set(FILE *f, const struct gen_set_def *d)
{
    fprintf(f, "usage: tally gen %s %s\n\n%s\n\noptions:\n", d->name, d->synopsis, d->description);
    for (size_t i = 0; i < GEN_NOPTIONS; i++) {
        const struct gen_option *o = &gen_options[i];
        if (!(o->sets & d->set)) continue;
        char left[64];
        snprintf(left, sizeof left, "%c%c%s--%s%s%s", o->short_name ? '-' : ' ',
                 o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
                 o->metavar ? " " : "", o->metavar ? o->metavar : "");
        fprintf(f, "  %-22s %s\n", left, o->help);
    }
}

static const struct gen_option *gen_find_option(enum gen_set set, const char *name, size_t len,
                                                char short_name)
{
    for (size_t i = 0; i < GEN_NOPTIONS; i++) {
        const struct gen_option *o = &gen_options[i];
        if (!(o->sets & set)) continue;
        if (short_name ? o->short_name == short_name
                       : strlen(o->name) == len && memcmp(o->name, name, len) == 0)
            return o;
    }
    return NULL;
}

/* Stores one option's value. Returns 0, or -EINVAL after printing why. */
static int gen_set_option(struct gen_args *a, const struct gen_set_def *d,
                          const struct gen_option *o, const char *val)
{
    int rc = 0;
    const char *what = "";
    switch (o->id) {
    case GEN_OPT_SIZE:
        rc = util_parse_size(val, &a->size);
        a->have_size = 1;
        what = "a size such as 4096, 64k, 256M or 1G";
        break;
    case GEN_OPT_VOCAB:
        rc = util_parse_u64(val, 1, GEN_MAX_VOCAB, &a->vocab);
        a->have_vocab = 1;
        what = "a number from 1 to 10000000";
        break;
    case GEN_OPT_ZIPF: {
        char *end;
        errno = 0;
        a->zipf = strtod(val, &end);
        if (errno || end == val || *end || !(a->zipf >= 0 && a->zipf <= 100)) rc = -EINVAL;
        a->have_zipf = 1;
        what = "a number from 0 to 100";
        break;
    }
    case GEN_OPT_UNIQUE: a->unique = 1; break;
    case GEN_OPT_SHARDS:
        rc = util_parse_u64(val, 1, GEN_MAX_SHARDS, &a->shards);
        what = "a number from 1 to 99999";
        break;
    case GEN_OPT_ROWS:
        rc = util_parse_u64(val, 0, UINT64_MAX, &a->rows);
        a->have_rows = 1;
        what = "a non-negative number";
        break;
    case GEN_OPT_SEED:
        rc = util_parse_u64(val, 0, UINT64_MAX, &a->seed);
        what = "a non-negative number";
        break;
    case GEN_OPT_OUTPUT:
        a->output = val;
        if (!*val) {
            rc = -EINVAL;
            what = "a path";
        }
        break;
    case GEN_OPT_HELP: break;
    }
    if (rc != 0)
        fprintf(stderr, "tally gen %s: --%s '%s': expected %s\n", d->name, o->name, val, what);
    return rc;
}

/* Parses argv[2..] of `tally gen SET ...`. Returns 0 to run, 1 when help was printed, or
 * -EINVAL after printing a usage error. Accepts --name VALUE, --name=VALUE and -o VALUE. */
static int gen_parse(const struct gen_set_def *d, int argc, char **argv, struct gen_args *a)
{
    memset(a, 0, sizeof *a);
    a->seed = 1;
    a->vocab = GEN_DEFAULT_VOCAB;
    a->zipf = 1.0;
    a->shards = 1;
    for (int i = 2; i < argc; i++) {
        const char *arg = argv[i];
        const struct gen_option *o = NULL;
        const char *val = NULL;
        if (arg[0] == '-' && arg[1] == '-' && arg[2]) {
            const char *name = arg + 2;
            const char *eq = strchr(name, '=');
            size_t len = eq ? (size_t)(eq - name) : strlen(name);
            o = gen_find_option(d->set, name, len, 0);
            if (eq) val = eq + 1;
        } else if (arg[0] == '-' && arg[1] && !arg[2]) {
            o = gen_find_option(d->set, NULL, 0, arg[1]);
        } else {
            fprintf(stderr, "tally gen %s: unexpected argument '%s' (see 'tally gen %s --help')\n",
                    d->name, arg, d->name);
            return -EINVAL;
        }
        if (!o) {
            fprintf(stderr, "tally gen %s: unknown option '%s' (see 'tally gen %s --help')\n",
                    d->name, arg, d->name);
            return -EINVAL;
        }
        if (o->id == GEN_OPT_HELP) {
            gen_usage_set(stdout, d);
            return 1;
        }
        if (o->metavar && !val) {
            if (i + 1 >= argc) {
                fprintf(stderr, "tally gen %s: option '%s' needs a value %s\n", d->name, arg,
                        o->metavar);
                return -EINVAL;
            }
            val = argv[++i];
        } else if (!o->metavar && val) {
            fprintf(stderr, "tally gen %s: option --%s takes no value\n", d->name, o->name);
            return -EINVAL;
        }
        if (gen_set_option(a, d, o, val) != 0) return -EINVAL;
    }
    const char *missing = NULL;
    if (d->set == GEN_TEXT && !a->have_size) missing = "--size SIZE";
    else if (!a->output) missing = d->set == GEN_TEXT ? "-o FILE" : "-o DIR";
    if (missing) {
        fprintf(stderr, "tally gen %s: %s is required (see 'tally gen %s --help')\n", d->name,
                missing, d->name);
        return -EINVAL;
    }
    if (a->unique && (a->have_vocab || a->have_zipf)) {
        fprintf(stderr,
                "tally gen text: --unique draws random words; it takes no --vocab or --zipf\n");
        return -EINVAL;
    }
    return 0;
}

int gen_main(int argc, char **argv)
{
    if (argc < 2) {
        gen_usage_all(stderr);
        return 2;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        gen_usage_all(stdout);
        return 0;
    }
    const struct gen_set_def *d = NULL;
    for (size_t i = 0; i < GEN_NSETS; i++)
        if (strcmp(gen_sets[i].name, name) == 0) d = &gen_sets[i];
    if (!d && name[0] == '-') {
        fprintf(stderr, "tally gen: unknown option '%s' (the data set comes first; see 'tally gen --help')\n", name);
        return 2;
    }
    if (!d) {
        fprintf(stderr, "tally gen: unknown data set '%s' (expected text, readings or inferences; "
                        "see 'tally gen --help')\n", name);
        return 2;
    }
    struct gen_args a;
    int rc = gen_parse(d, argc, argv, &a);
    if (rc == 1) return 0;
    if (rc != 0) return 2;
    struct err e;
    err_clear(&e);
    if (d->run(&a, &e) != 0) {
        fprintf(stderr, "tally gen %s: %s\n", d->name, e.msg);
        return 1;
    }
    return 0;
}

/* ---- text: the synthetic vocabulary ------------------------------------------------------- */

/* A vocabulary word lives in a 16-byte slot: its letters (2-12), a space, padding, and in the
 * last byte its length including the space. Copying whole slots makes emitting a word one
 * unaligned 16-byte store. */
#define GEN_SLOT 16
#define GEN_WORD_MAX 12

/* Walker's alias method: draw a column uniformly, then keep it with probability prob/2^32 or
 * take its alias. One random number per draw, whatever the vocabulary size. */
struct gen_alias {
    uint32_t prob;
    uint32_t alias;
};

struct gen_vocab {
    uint32_t n;
    unsigned char *slots;    /* n * GEN_SLOT bytes, rank order: slot 0 is the most frequent word */
    struct gen_alias *table; /* n columns */
};

/* Syllable parts; repeated entries make those sounds more frequent. */
static const char *const gen_onsets[] = {
    "",  "",  "",  "b",  "c",  "d",  "f",  "g",  "h",  "j",  "k",  "l",  "m",  "n",  "p",   "r",
    "s", "t", "t", "v",  "w",  "y",  "z",  "bl", "br", "ch", "cl", "cr", "dr", "fl", "fr",  "gl",
    "gr", "pl", "pr", "qu", "sc", "sh", "sk", "sl", "sm", "sn", "sp", "st", "str", "sw", "th", "tr",
    "wh"};
static const char *const gen_nuclei[] = {"a",  "e",  "i",  "o",  "u",  "a",  "e",  "i", "o",
                                         "ai", "au", "ea", "ee", "ie", "oa", "oo", "ou", "y"};
static const char *const gen_codas[] = {"",   "",   "",   "",   "",   "n",  "r",  "s",  "t", "l",
                                        "m",  "nd", "nt", "st", "ck", "ng", "rd", "rn", "x", "sh",
                                        "th"};
#define GEN_NELEM(a) (sizeof(a) / sizeof((a)[0]))

struct gen_word {
    char w[GEN_WORD_MAX];
    uint8_t len;
    uint32_t key; /* sort key: length plus noise, so that short words tend to rank first */
    uint32_t seq; /* creation order, the tie-breaker that keeps qsort deterministic */
};

static int gen_word_cmp(const void *pa, const void *pb)
{
    const struct gen_word *a = pa, *b = pb;
    if (a->key != b->key) return a->key < b->key ? -1 : 1;
    return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Builds one lowercase word of 2-12 letters from 1-4 syllables; returns its length. */
static size_t gen_word_make(struct gen_rng *r, char *w)
{
    static const uint8_t nsyl_by_draw[10] = {1, 1, 1, 2, 2, 2, 2, 3, 3, 4};
    for (;;) {
        uint32_t nsyl = nsyl_by_draw[gen_rng_below(r, 10)];
        char tmp[64];
        size_t len = 0;
        for (uint32_t s = 0; s < nsyl; s++) {
            len += gen_put_str(tmp + len, gen_onsets[gen_rng_below(r, GEN_NELEM(gen_onsets))]);
            len += gen_put_str(tmp + len, gen_nuclei[gen_rng_below(r, GEN_NELEM(gen_nuclei))]);
            len += gen_put_str(tmp + len, gen_codas[gen_rng_below(r, GEN_NELEM(gen_codas))]);
        }
        if (len >= 2 && len <= GEN_WORD_MAX) {
            memcpy(w, tmp, len);
            return len;
        }
    }
}

static uint64_t gen_hash_bytes(const char *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a: only used while building the vocabulary */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
    /* FNV's low bits are weak for short strings of similar bytes; the table uses low bits. */
    return gen_splitmix64(&h);
}

/* Fills w[0..n) with distinct words in rank order, most frequent first. Words are compared in
 * lowercase, so no word also appears Capitalised as a second vocabulary entry. */
static void gen_vocab_words(struct gen_word *w, uint32_t n)
{
    struct gen_rng r;
    gen_rng_seed(&r, GEN_VOCAB_SEED, GEN_STREAM_VOCAB);
    size_t cap = 16;
    while (cap < (size_t)n * 2) cap *= 2;
    uint32_t *set = xcalloc(cap, sizeof *set); /* index + 1 into w; 0 is empty */
    for (uint32_t i = 0; i < n;) {
        struct gen_word *cur = &w[i];
        cur->len = (uint8_t)gen_word_make(&r, cur->w);
        size_t slot = gen_hash_bytes(cur->w, cur->len) & (cap - 1);
        int dup = 0;
        while (set[slot]) {
            const struct gen_word *o = &w[set[slot] - 1];
            if (o->len == cur->len && memcmp(o->w, cur->w, cur->len) == 0) {
                dup = 1;
                break;
            }
            slot = (slot + 1) & (cap - 1);
        }
        if (dup) continue;
        set[slot] = i + 1;
        /* Noise worth up to 32 letters keeps the ranking loose: the most frequent words are
         * short, yet the text averages about 5.8 bytes per word, close to English prose. */
        cur->key = (uint32_t)cur->len * 8 + gen_rng_below(&r, 256);
        cur->seq = i;
        i++;
    }
    free(set);
    qsort(w, n, sizeof *w, gen_word_cmp);
    /* Capitalise about 3% of the words, like names, but none of the 50 most frequent: those
     * are the function words of the language and would make capitals far too common. */
    for (uint32_t i = 50; i < n; i++)
        if (gen_rng_below(&r, 100) < 3) w[i].w[0] = (char)(w[i].w[0] - 'a' + 'A');
}

/* Builds the alias table for P(rank k) proportional to 1 / k^s (Vose's variant of Walker). */
static struct gen_alias *gen_alias_build(uint32_t n, double s)
{
    double *p = xmalloc((size_t)n * sizeof *p);
    uint32_t *small = xmalloc((size_t)n * sizeof *small);
    uint32_t *large = xmalloc((size_t)n * sizeof *large);
    struct gen_alias *t = xmalloc((size_t)n * sizeof *t);
    double sum = 0;
    for (uint32_t k = 0; k < n; k++) {
        /* 1/k is exact IEEE division, so the default table does not depend on libm's pow(). */
        double rank = (double)k + 1;
        p[k] = s == 0 ? 1.0 : s == 1 ? 1.0 / rank : pow(rank, -s);
        sum += p[k];
    }
    size_t ns = 0, nl = 0;
    for (uint32_t k = 0; k < n; k++) {
        p[k] = p[k] * n / sum;
        if (p[k] < 1) small[ns++] = k;
        else large[nl++] = k;
    }
    while (ns && nl) {
        uint32_t lo = small[--ns], hi = large[nl - 1];
        t[lo].prob = (uint32_t)(p[lo] * 4294967296.0);
        t[lo].alias = hi;
        p[hi] = (p[hi] + p[lo]) - 1;
        if (p[hi] < 1) {
            nl--;
            small[ns++] = hi;
        }
    }
    /* What is left has probability 1 up to rounding: always keep the column. */
    while (nl) {
        uint32_t k = large[--nl];
        t[k].prob = UINT32_MAX;
        t[k].alias = k;
    }
    while (ns) {
        uint32_t k = small[--ns];
        t[k].prob = UINT32_MAX;
        t[k].alias = k;
    }
    free(p);
    free(small);
    free(large);
    return t;
}

static inline uint32_t gen_alias_draw(const struct gen_alias *t, uint32_t n, uint64_t rnd)
{
    uint32_t col = (uint32_t)(((rnd >> 32) * n) >> 32);
    return (uint32_t)rnd < t[col].prob ? col : t[col].alias;
}

static void gen_vocab_build(struct gen_vocab *v, uint32_t n, double zipf)
{
    struct gen_word *w = xmalloc((size_t)n * sizeof *w);
    gen_vocab_words(w, n);
    v->n = n;
    v->slots = xcalloc(n, GEN_SLOT);
    for (uint32_t i = 0; i < n; i++) {
        unsigned char *slot = v->slots + (size_t)i * GEN_SLOT;
        memcpy(slot, w[i].w, w[i].len);
        slot[w[i].len] = ' ';
        slot[GEN_SLOT - 1] = (unsigned char)(w[i].len + 1);
    }
    free(w);
    v->table = gen_alias_build(n, zipf);
}

static void gen_vocab_free(struct gen_vocab *v)
{
    free(v->slots);
    free(v->table);
    memset(v, 0, sizeof *v);
}

/* ---- text: lines ---------------------------------------------------------------------------- */

/* Writes one line of 8-16 vocabulary words at dst and returns its length. It stores up to
 * GEN_SLOT - 1 bytes past the returned length (at most 16 * 13 + 16 bytes in all). */
static size_t gen_text_line(unsigned char *dst, const struct gen_vocab *v, struct gen_rng *r)
{
    unsigned char *p = dst;
    uint32_t nwords = 8 + gen_rng_below(r, 9);
    for (uint32_t i = 0; i < nwords; i++) {
        uint32_t rank = gen_alias_draw(v->table, v->n, gen_rng_next(r));
        const unsigned char *slot = v->slots + (size_t)rank * GEN_SLOT;
        memcpy(p, slot, GEN_SLOT);
        p += slot[GEN_SLOT - 1];
    }
    p[-1] = '\n';
    return (size_t)(p - dst);
}

/* Writes six base-26 digits of the fraction x / 2^32 as letters: six letters use 28.2 of the 32
 * bits, so one 32-bit half of a random number gives six nearly uniform letters. */
static inline void gen_letters6(unsigned char *p, uint32_t x)
{
    for (int i = 0; i < 6; i++) {
        uint64_t m = (uint64_t)x * 26;
        p[i] = (unsigned char)('a' + (m >> 32));
        x = (uint32_t)m;
    }
}

/* Writes one line of 8-16 random words of 8-14 letters; with 26^8 or more strings per length
 * nearly every word of a 160 MiB text is distinct. Stores up to 4 bytes past the result. */
static size_t gen_unique_line(unsigned char *dst, struct gen_rng *r)
{
    unsigned char *p = dst;
    uint32_t nwords = 8 + gen_rng_below(r, 9);
    for (uint32_t i = 0; i < nwords; i++) {
        uint64_t a = gen_rng_next(r), b = gen_rng_next(r);
        uint32_t len = 8 + (uint32_t)(((b & 0xffffffffu) * 7) >> 32);
        gen_letters6(p, (uint32_t)(a >> 32));
        gen_letters6(p + 6, (uint32_t)a);
        gen_letters6(p + 12, (uint32_t)(b >> 32));
        p[len] = ' ';
        p += len + 1;
    }
    p[-1] = '\n';
    return (size_t)(p - dst);
}

static int gen_text_run(const struct gen_args *a, struct err *e)
{
    struct gen_vocab v = {0};
    if (!a->unique) gen_vocab_build(&v, (uint32_t)a->vocab, a->zipf);
    struct gen_rng r;
    gen_rng_seed(&r, a->seed, GEN_STREAM_TEXT);
    struct gen_out o;
    int rc = gen_out_open(&o, a->output, e);
    if (rc != 0) goto done;
    uint64_t left = a->size;
    while (left > 0 && rc == 0) {
        /* Fill at least min(left, cap) bytes with whole lines, then cut the very last chunk to
         * the exact size and end it with a newline. */
        size_t want = left < o.cap ? (size_t)left : o.cap;
        unsigned char *b = (unsigned char *)o.buf;
        size_t len = 0;
        while (len < want)
            len += a->unique ? gen_unique_line(b + len, &r) : gen_text_line(b + len, &v, &r);
        if (len >= left) {
            len = (size_t)left;
            b[len - 1] = '\n';
            /* A cut just after a space would leave one at the end of the line; lengthen the
             * word instead, so lines stay words separated by single spaces. */
            if (len >= 2 && b[len - 2] == ' ') b[len - 2] = 's';
        }
        o.len = len;
        rc = gen_out_flush(&o, e);
        left -= len;
    }
    rc = gen_out_close(&o, rc, e);
done:
    gen_vocab_free(&v);
    return rc;
}

/* ---- readings: DEBS 2014 smart plugs -------------------------------------------------------- */

/* Appliance profiles: load when on, standby load, and the mean length of on and off periods.
 * Plugs switch state at random with these means, so loads show realistic on/off runs. */
struct gen_appliance {
    uint32_t on_w, standby_mw, mean_on_s, mean_off_s;
};

static const struct gen_appliance gen_appliances[] = {
    {120, 2000, 600, 1200},   /* fridge */
    {95, 1000, 3600, 7200},   /* television */
    {40, 0, 3000, 5000},      /* lamp */
    {2000, 0, 180, 7200},     /* kettle */
    {150, 3000, 5000, 3000},  /* computer */
    {550, 1000, 3000, 20000}, /* washing machine */
    {8, 0, 7200, 7200},       /* phone charger */
    {1200, 0, 1200, 2400},    /* heater */
    {7, 7000, 1000000, 1},    /* router: always on */
    {900, 2000, 120, 10000},  /* microwave */
};

struct gen_plug {
    uint8_t house, household, plug;
    uint8_t on;
    const struct gen_appliance *kind;
    uint64_t on_mw;   /* this plug's load when on, milliwatts */
    uint64_t work_mj; /* cumulative work, millijoules */
};

/* The DEBS 2014 data starts on 2013-09-01; its first timestamp. */
#define GEN_READINGS_T0 1377986401ull

struct gen_readings {
    struct gen_plug *plugs;
    size_t nplugs;
    size_t cursor;    /* the next plug to visit in the current second */
    int pending_load; /* the work row of plugs[cursor] went out; its load row is due */
    uint64_t load_mw; /* that pending load */
    uint64_t id, ts;
    struct gen_rng r;
};

/* The plug population: houses 0-9 with 1-5 households of 2-12 plugs each, the same in every
 * shard since it depends only on the seed. */
static void gen_readings_init(struct gen_readings *g, uint64_t seed)
{
    struct gen_rng pr;
    gen_rng_seed(&pr, seed, GEN_STREAM_PLUGS);
    memset(g, 0, sizeof *g);
    g->plugs = xmalloc(10 * 5 * 12 * sizeof *g->plugs);
    for (uint8_t house = 0; house < 10; house++) {
        uint8_t households = (uint8_t)(1 + gen_rng_below(&pr, 5));
        for (uint8_t hh = 0; hh < households; hh++) {
            uint8_t plugs = (uint8_t)(2 + gen_rng_below(&pr, 11));
            for (uint8_t pl = 0; pl < plugs; pl++) {
                struct gen_plug *p = &g->plugs[g->nplugs++];
                p->house = house;
                p->household = hh;
                p->plug = pl;
                p->kind = &gen_appliances[gen_rng_below(&pr, GEN_NELEM(gen_appliances))];
                /* Models differ: +-20% around the profile's load. */
                p->on_mw = (uint64_t)p->kind->on_w * (800 + gen_rng_below(&pr, 401));
                uint64_t period = (uint64_t)p->kind->mean_on_s + p->kind->mean_off_s;
                p->on = gen_rng_below(&pr, (uint32_t)period) < p->kind->mean_on_s;
                /* Up to 50 kWh already counted when the recording starts. */
                p->work_mj = (uint64_t)gen_rng_below(&pr, 50000) * 3600000ull;
            }
        }
    }
    gen_rng_seed(&g->r, seed, GEN_STREAM_READINGS);
    g->ts = GEN_READINGS_T0;
}

/* Advances a plug by one second and returns its load in milliwatts. */
static uint64_t gen_plug_tick(struct gen_plug *p, struct gen_rng *r)
{
    uint32_t mean = p->on ? p->kind->mean_on_s : p->kind->mean_off_s;
    if (gen_rng_below(r, mean) == 0) p->on = !p->on;
    uint64_t mw;
    if (p->on) mw = p->on_mw * (950 + gen_rng_below(r, 101)) / 1000; /* +-5% noise */
    else mw = p->kind->standby_mw ? p->kind->standby_mw * (900 + gen_rng_below(r, 201)) / 1000 : 0;
    p->work_mj += mw; /* one second at mw milliwatts is mw millijoules */
    return mw;
}

static size_t gen_readings_put(char *dst, uint64_t id, uint64_t ts, uint64_t milli, int property,
                               const struct gen_plug *p)
{
    char *q = dst;
    q += gen_put_u64(q, id);
    *q++ = ',';
    q += gen_put_u64(q, ts);
    *q++ = ',';
    q += gen_put_milli(q, milli);
    *q++ = ',';
    *q++ = (char)('0' + property);
    *q++ = ',';
    q += gen_put_u64(q, p->plug);
    *q++ = ',';
    q += gen_put_u64(q, p->household);
    *q++ = ',';
    q += gen_put_u64(q, p->house);
    *q++ = '\n';
    return (size_t)(q - dst);
}

/* Writes the next row of the stream. Every second each plug reports, 95% of the time, its
 * cumulative work (property 0, kWh) and then its load (property 1, W); the rest are gaps,
 * as in the real recording. */
static size_t gen_readings_row(struct gen_readings *g, char *dst)
{
    for (;;) {
        if (g->pending_load) {
            g->pending_load = 0;
            const struct gen_plug *p = &g->plugs[g->cursor++];
            return gen_readings_put(dst, g->id++, g->ts, g->load_mw, 1, p);
        }
        if (g->cursor == g->nplugs) {
            g->cursor = 0;
            g->ts++;
        }
        struct gen_plug *p = &g->plugs[g->cursor];
        uint64_t mw = gen_plug_tick(p, &g->r);
        if (gen_rng_below(&g->r, 100) < 95) {
            g->pending_load = 1;
            g->load_mw = mw;
            /* kWh with three decimals is whole watt-hours: 3.6e6 mJ each. */
            return gen_readings_put(dst, g->id++, g->ts, p->work_mj / 3600000ull, 0, p);
        }
        g->cursor++;
    }
}

/* Writes `shards` files of `rows` rows each, named by `name_fmt` (one unsigned long long
 * conversion), each starting with `header`; next_row() produces the stream. */
static int gen_write_shards(const struct gen_args *a, const char *name_fmt, const char *header,
                            size_t (*next_row)(void *gen, char *dst), void *gen, struct err *e)
{
    int rc = gen_mkdirs(a->output, e);
    if (rc != 0) return rc;
    uint64_t rows = a->rows;
    for (uint64_t k = 0; k < a->shards && rc == 0; k++) {
        size_t dlen = strlen(a->output);
        while (dlen > 1 && a->output[dlen - 1] == '/') dlen--;
        char *name = xasprintf(name_fmt, (unsigned long long)k);
        char *path = xasprintf("%.*s/%s", (int)dlen, a->output, name);
        free(name);
        struct gen_out o;
        rc = gen_out_open(&o, path, e);
        if (rc == 0) {
            o.len = gen_put_str(o.buf, header);
            for (uint64_t i = 0; i < rows && rc == 0; i++) {
                o.len += next_row(gen, o.buf + o.len);
                if (o.len >= o.cap) rc = gen_out_flush(&o, e);
            }
            rc = gen_out_close(&o, rc, e);
        }
        free(path);
    }
    return rc;
}

static size_t gen_readings_next(void *gen, char *dst)
{
    return gen_readings_row(gen, dst);
}

static int gen_readings_run(const struct gen_args *a, struct err *e)
{
    struct gen_args args = *a;
    if (!args.have_rows) args.rows = GEN_DEFAULT_READINGS_ROWS;
    struct gen_readings g;
    gen_readings_init(&g, a->seed);
    int rc = gen_write_shards(&args, "readings_shard%llu.csv",
                              "id,timestamp,value,property,plug_id,household_id,house_id\n",
                              gen_readings_next, &g, e);
    free(g.plugs);
    return rc;
}

/* ---- inferences: classifier results as mongoexport JSON ------------------------------------ */

static const char *const gen_labels[] = {"cat", "dog", "bird", "car", "truck", "person",
                                         "bicycle", "horse"};
/* How often each label is the ground truth, in percent. */
static const uint8_t gen_label_weight[] = {18, 18, 10, 16, 8, 20, 5, 5};
/* The label a wrong answer most often picks instead, e.g. cat for dog. */
static const uint8_t gen_label_confused[] = {1, 0, 0, 4, 3, 6, 5, 1};

struct gen_model {
    const char *name;
    uint32_t latency_ms; /* typical latency */
};

static const struct gen_model gen_models[] = {
    {"resnet50", 23}, {"mobilenet_v3", 7}, {"efficientnet_b0", 12}, {"vit_b16", 41}};

#define GEN_NPRODUCERS 10
/* 2024-06-01T00:00:00Z; about 40 inferences per second across all producers. */
#define GEN_INFERENCES_T0 1717200000ull
#define GEN_INFERENCES_PER_S 40

struct gen_producer {
    uint32_t error_permille; /* how often its answer is wrong */
    uint32_t weight;         /* relative share of the rows */
    const struct gen_model *model;
    uint32_t version;
    uint8_t oid_random[5]; /* an ObjectId's per-process random part */
    uint32_t oid_counter;  /* an ObjectId's 24-bit counter */
};

struct gen_inferences {
    struct gen_producer producers[GEN_NPRODUCERS];
    uint32_t total_weight;
    uint64_t row;
    struct gen_rng r;
};

static void gen_inferences_init(struct gen_inferences *g, uint64_t seed)
{
    struct gen_rng pr;
    gen_rng_seed(&pr, seed, GEN_STREAM_PRODUCERS);
    memset(g, 0, sizeof *g);
    for (int i = 0; i < GEN_NPRODUCERS; i++) {
        struct gen_producer *p = &g->producers[i];
        /* Error rates spread from 2% to 35%, so per-producer ratios clearly differ. */
        p->error_permille = 20 + gen_rng_below(&pr, 331);
        p->weight = 1 + gen_rng_below(&pr, 3);
        p->model = &gen_models[gen_rng_below(&pr, GEN_NELEM(gen_models))];
        p->version = 1 + gen_rng_below(&pr, 5);
        uint64_t rnd = gen_rng_next(&pr);
        for (int b = 0; b < 5; b++) p->oid_random[b] = (uint8_t)(rnd >> (8 * b));
        p->oid_counter = (uint32_t)(rnd >> 40);
        g->total_weight += p->weight;
    }
    gen_rng_seed(&g->r, seed, GEN_STREAM_INFERENCES);
}

static uint32_t gen_pick_weighted(struct gen_rng *r, const uint8_t *w, size_t n, uint32_t total)
{
    uint32_t x = gen_rng_below(r, total);
    size_t i = 0;
    while (i + 1 < n && x >= w[i]) x -= w[i++];
    return (uint32_t)i;
}

static size_t gen_put_hex(char *p, const uint8_t *bytes, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        p[2 * i] = hex[bytes[i] >> 4];
        p[2 * i + 1] = hex[bytes[i] & 15];
    }
    return 2 * n;
}

/* Writes the next document as one line; fields in the order mongoexport keeps them. */
static size_t gen_inferences_row(struct gen_inferences *g, char *dst)
{
    struct gen_rng *r = &g->r;
    uint32_t x = gen_rng_below(r, g->total_weight), pi = 0;
    while (x >= g->producers[pi].weight) x -= g->producers[pi++].weight;
    struct gen_producer *p = &g->producers[pi];

    uint32_t truth = gen_pick_weighted(r, gen_label_weight, GEN_NELEM(gen_label_weight), 100);
    uint32_t inferred = truth, conf;
    if (gen_rng_below(r, 1000) < p->error_permille) {
        if (gen_rng_below(r, 2) == 0) {
            inferred = gen_label_confused[truth];
        } else {
            inferred = gen_rng_below(r, GEN_NELEM(gen_labels) - 1);
            if (inferred >= truth) inferred++;
        }
        conf = 2000 + gen_rng_below(r, 6500); /* wrong answers are less sure */
    } else {
        uint32_t c1 = gen_rng_below(r, 4000), c2 = gen_rng_below(r, 4000);
        conf = 6000 + (c1 > c2 ? c1 : c2);
    }
    uint64_t lat = (uint64_t)p->model->latency_ms * (700 + gen_rng_below(r, 700)) / 1000;
    if (gen_rng_below(r, 100) < 3) lat *= 2 + gen_rng_below(r, 5); /* a slow tail */
    if (lat == 0) lat = 1;

    /* ObjectId: 4-byte big-endian seconds, 5 random bytes per producer, 3-byte counter. */
    uint8_t oid[12];
    uint32_t secs = (uint32_t)(GEN_INFERENCES_T0 + g->row / GEN_INFERENCES_PER_S);
    for (int b = 0; b < 4; b++) oid[b] = (uint8_t)(secs >> (24 - 8 * b));
    memcpy(oid + 4, p->oid_random, 5);
    p->oid_counter = (p->oid_counter + 1) & 0xffffff;
    for (int b = 0; b < 3; b++) oid[9 + b] = (uint8_t)(p->oid_counter >> (16 - 8 * b));
    g->row++;

    char *q = dst;
    q += gen_put_str(q, "{\"_id\":{\"$oid\":\"");
    q += gen_put_hex(q, oid, sizeof oid);
    q += gen_put_str(q, "\"},\"producer_id\":\"producer-");
    *q++ = (char)('0' + pi / 10);
    *q++ = (char)('0' + pi % 10);
    q += gen_put_str(q, "\",\"ground_truth\":\"");
    q += gen_put_str(q, gen_labels[truth]);
    q += gen_put_str(q, "\",\"inferred\":\"");
    q += gen_put_str(q, gen_labels[inferred]);
    q += gen_put_str(q, "\",\"confidence\":0.");
    /* Four decimals without trailing zeros, as a double prints: 0.83, not 0.8300. */
    char digits[4] = {(char)('0' + conf / 1000), (char)('0' + conf / 100 % 10),
                      (char)('0' + conf / 10 % 10), (char)('0' + conf % 10)};
    int nd = 4;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    memcpy(q, digits, (size_t)nd);
    q += nd;
    q += gen_put_str(q, ",\"latency_ms\":");
    q += gen_put_u64(q, lat);
    q += gen_put_str(q, ",\"meta\":{\"model\":\"");
    q += gen_put_str(q, p->model->name);
    q += gen_put_str(q, "\",\"version\":");
    q += gen_put_u64(q, p->version);
    q += gen_put_str(q, "}}\n");
    return (size_t)(q - dst);
}

static size_t gen_inferences_next(void *gen, char *dst)
{
    return gen_inferences_row(gen, dst);
}

static int gen_inferences_run(const struct gen_args *a, struct err *e)
{
    struct gen_args args = *a;
    if (!args.have_rows) args.rows = GEN_DEFAULT_INFERENCES_ROWS;
    struct gen_inferences g;
    gen_inferences_init(&g, a->seed);
    return gen_write_shards(&args, "inferences-%05llu.jsonl", "", gen_inferences_next, &g, e);
}
