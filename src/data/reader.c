/* reader.c - reads the records of one input segment: lines, or CSV records (whose quoted fields
 * may hold newlines), from a plain file or a gzip stream.
 *
 * Design notes.
 *
 * Sources. Plain files are read with read(2) into one buffer. Gzip files go through our own
 * inflate loop rather than gzread(): gzread reads a file that is not gzip at all as plain text,
 * and it reports a stream that ends early as a clean end of file. Here a .gz file must start a
 * gzip member; members may follow one another (what `cat a.gz b.gz` makes); zero bytes after a
 * member are padding and ignored; anything else, a stream cut short, or a member that fails its
 * CRC or length check is an error naming the file and the uncompressed offset (-EBADMSG: the
 * data is bad, another attempt cannot help).
 *
 * Records. Text and JSON Lines records are lines. A CSV record ends at a newline outside double
 * quotes (RFC 4180), scanned by a small state machine (enum csv_state): a quote opens a quoted
 * field only at the start of a field, as the field parser in fields.c has it (elsewhere it is a
 * literal character); inside a quoted field "" is one quote and a quote followed by anything
 * else closes the field. Records without quotes, the common case, cost two memchr calls (one
 * for the newline, one for quotes, shared by the records of a buffer).
 *
 * An unterminated quote. A quoted field that never closes would make the rest of the file one
 * record. Instead, when the scan reaches the end of the file inside a quoted field, the record
 * ends at the first newline after the quote that opened it (or at the end of the file when
 * there is none), and reading goes on from there: that record is malformed (the field parser
 * reports it, so jobs skip and count it, or fail under --strict naming file and offset), and
 * the records after it are read as they are. The boundary scan below relies on this rule.
 *
 * Split boundaries of CSV files. Records belong to the split they start in, as for lines, but
 * whether a newline ends a record depends on every quote before it. A reader that starts at
 * byte s > 0 therefore guesses: csv_boundary(s) is the first record start at or after s found
 * by a deterministic forward scan (see there). The reader of [start, end) begins at
 * csv_boundary(start) (0 for the first split) and returns the records that begin before
 * csv_boundary(end). It parses exactly, from a true record start, so it must finish its last
 * record exactly at csv_boundary(end); if it does not, the scan was fooled there and the
 * reader fails with an error naming the file and offsets: a guess can make a job fail, but it
 * can never duplicate or lose a record. By induction from split 0, which starts at 0, every
 * split that reads without error starts at a true record start.
 */
#include "data/reader.h"

#include <tally/tally.h>

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define READER_BLOCK (1u << 20)
#define READER_GZ_IN (256u * 1024)
/* How far past a split edge csv_boundary() looks for evidence (see there). */
#define READER_CSV_WINDOW (256u * 1024)
/* What csv_boundary() charges a hypothesis that cannot hold (a quoted field of its own running
 * into the end of the file, or one open for half the window): more than any count of misplaced
 * quotes within the window. */
#define READER_CSV_INSIDE_AT_END (UINT64_C(1) << 40)

/* Where the scan of a CSV record stands after a byte. */
enum csv_state {
    CSV_FIELD,      /* at the start of a field (a record starts with one) */
    CSV_UNQUOTED,   /* in a field that does not start with a quote: quotes in it are literal */
    CSV_QUOTED,     /* in a quoted field: commas and newlines are data */
    CSV_QUOTE_SEEN, /* just after a quote in a quoted field: "" (one quote) or the closing one */
};

struct reader {
    const input_file *file;
    int fd;
    int csv;                 /* records are CSV records, not lines */
    uint64_t max_record;
    fields_header *header;

    /* The buffer: unread data is buf[pos, len); buf_off is the (uncompressed) file offset of
     * buf[0]. One byte stays free after the data so that a record can be NUL-terminated. */
    char *buf;
    size_t cap, pos, len;
    uint64_t buf_off;
    int eof;                 /* the source has no more bytes */

    uint64_t seg_start, seg_end; /* the planned segment, for progress */
    uint64_t end;            /* records that start at or after `end` belong to the next split */
    int empty;               /* the segment owns no record at all */

    /* Quotes in the buffer, found once per buffer rather than per record: buf[qfrom, qnext)
     * holds none; buf[qnext] is one when qfound, else the search stopped at qnext == len. */
    size_t qfrom, qnext;
    int qfound;

    /* An unterminated quote: the record at forced_off ends at the newline at forced_end. */
    uint64_t forced_off, forced_end;

    /* gzip */
    int gz;
    int zs_ready;            /* inflateInit2() done */
    z_stream zs;
    unsigned char *zin;      /* compressed input */
    int zin_eof;             /* no more compressed bytes in the file */
    uint64_t zin_read;       /* compressed bytes read from the file */
    uint64_t gz_out;         /* uncompressed bytes produced */
    int member;              /* inside a gzip member (else before the first or between two) */
    uint64_t members;        /* members begun */
};

/* ---- Sources: plain files and gzip streams ------------------------------------------------ */

/* The uncompressed offset the next byte from the source will have. */
static uint64_t reader_source_pos(const reader *r) { return r->buf_off + r->len; }

static int reader_gz_error(reader *r, size_t produced, struct err *e)
{
    const char *path = r->file->name;
    unsigned long long at = (unsigned long long)(r->gz_out + produced);
    const char *why = r->zs.msg ? r->zs.msg : "corrupt data";
    if (r->members == 1 && r->gz_out + produced == 0 &&
        (strcmp(why, "incorrect header check") == 0 || strcmp(why, "unknown compression method") == 0))
        return err_set(e, -EBADMSG, "%s: not in gzip format (a .gz file must be gzip-compressed)", path);
    if (r->members > 1 && strcmp(why, "incorrect header check") == 0)
        return err_set(e, -EBADMSG, "%s: uncompressed offset %llu: data after the end of the gzip stream "
                       "(compressed offset %llu) is not gzip", path, at,
                       (unsigned long long)(r->zin_read - r->zs.avail_in));
    if (strcmp(why, "incorrect data check") == 0 || strcmp(why, "incorrect length check") == 0)
        return err_set(e, -EBADMSG, "%s: uncompressed offset %llu: the gzip member ending here fails its "
                       "check (%s): the file is corrupt", path, at, why);
    return err_set(e, -EBADMSG, "%s: uncompressed offset %llu: corrupt gzip data (%s)", path, at, why);
}

/* Inflates up to `want` bytes into dst. Returns the number of bytes (> 0), 0 at the clean end of
 * the last member, or a negative code. */
static ssize_t reader_gz_read(reader *r, char *dst, size_t want, struct err *e)
{
    z_stream *zs = &r->zs;
    uInt avail = (uInt)(want > (1u << 30) ? (1u << 30) : want);
    zs->next_out = (unsigned char *)dst;
    zs->avail_out = avail;
    for (;;) {
        if (zs->avail_in == 0 && !r->zin_eof) {
            ssize_t n;
            do {
                n = read(r->fd, r->zin, READER_GZ_IN);
            } while (n < 0 && errno == EINTR);
            if (n < 0) return err_set(e, -errno, "%s: %s", r->file->name, strerror(errno));
            if (n == 0) r->zin_eof = 1;
            zs->next_in = r->zin;
            zs->avail_in = (uInt)n;
            r->zin_read += (uint64_t)n;
        }
        size_t produced = avail - zs->avail_out;
        if (!r->member) {
            /* Between members zero bytes are padding (tape blocks); anything else must begin
             * another member, which inflate checks. The file itself must begin with one. */
            while (r->members > 0 && zs->avail_in > 0 && *zs->next_in == 0) {
                zs->next_in++;
                zs->avail_in--;
            }
            if (zs->avail_in == 0) {
                if (!r->zin_eof) continue;
                if (r->members == 0)
                    return err_set(e, -EBADMSG, "%s: not in gzip format (the file is empty)", r->file->name);
                r->gz_out += produced;
                return (ssize_t)produced;
            }
            if (r->members > 0 && inflateReset(zs) != Z_OK) return reader_gz_error(r, produced, e);
            r->member = 1;
            r->members++;
        }
        int zrc = inflate(zs, Z_NO_FLUSH);
        produced = avail - zs->avail_out;
        if (zrc == Z_STREAM_END) {
            r->member = 0;
        } else if (zrc == Z_OK || zrc == Z_BUF_ERROR) {
            if (zs->avail_in == 0 && r->zin_eof && produced == 0)
                return err_set(e, -EBADMSG, "%s: uncompressed offset %llu: the gzip stream ends early "
                               "(the file is truncated)", r->file->name, (unsigned long long)r->gz_out);
            if (zrc == Z_BUF_ERROR && zs->avail_in > 0 && produced == 0) return reader_gz_error(r, 0, e);
        } else {
            return reader_gz_error(r, produced, e);
        }
        if (produced > 0) {
            r->gz_out += produced;
            return (ssize_t)produced;
        }
    }
}

/* Reads up to `want` bytes at the source's position into dst: >0 bytes, 0 at EOF, or < 0. */
static ssize_t reader_source_read(reader *r, char *dst, size_t want, struct err *e)
{
    if (r->gz) return reader_gz_read(r, dst, want, e);
    ssize_t n;
    do {
        n = read(r->fd, dst, want);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return err_set(e, -errno, "%s: %s", r->file->name, strerror(errno));
    return n;
}

/* Reads more data into the buffer, keeping buf[pos, len) (moved to the front). Returns 1 if
 * bytes came, 0 at EOF, or a negative code. Indices into the buffer shift down by the old pos. */
static int reader_fill(reader *r, struct err *e)
{
    if (r->pos > 0) {
        size_t shift = r->pos;
        memmove(r->buf, r->buf + shift, r->len - shift);
        r->buf_off += shift;
        r->len -= shift;
        r->pos = 0;
        if (r->qnext >= shift) {
            r->qfrom = r->qfrom > shift ? r->qfrom - shift : 0;
            r->qnext -= shift;
        } else {
            r->qfrom = r->qnext = 0;
            r->qfound = 0;
        }
    }
    if (r->len + 1 >= r->cap) {
        r->cap *= 2;
        r->buf = xrealloc(r->buf, r->cap + TALLY_RECORD_PAD);
    }
    ssize_t n = reader_source_read(r, r->buf + r->len, r->cap - r->len - 1, e);
    if (n < 0) return (int)n;
    if (n == 0) r->eof = 1;
    r->len += (size_t)n;
    return n > 0;
}

/* Moves the reader to file offset `off` with an empty buffer. A gzip stream is read again from
 * its start when `off` lies behind (rare: only after an unterminated quote, see reader_record). */
static int reader_seek(reader *r, uint64_t off, struct err *e)
{
    uint64_t at = reader_source_pos(r);
    r->pos = r->len = 0;
    r->qfrom = r->qnext = 0;
    r->qfound = 0;
    r->eof = 0;
    if (!r->gz) {
        if (lseek(r->fd, (off_t)off, SEEK_SET) < 0)
            return err_set(e, -errno, "%s: %s", r->file->name, strerror(errno));
        r->buf_off = off;
        return 0;
    }
    if (off < at) {
        if (lseek(r->fd, 0, SEEK_SET) < 0) return err_set(e, -errno, "%s: %s", r->file->name, strerror(errno));
        if (inflateReset(&r->zs) != Z_OK) return reader_gz_error(r, 0, e);
        r->zs.avail_in = 0;
        r->zin_eof = 0;
        r->zin_read = r->gz_out = r->members = 0;
        r->member = 0;
        at = 0;
    }
    while (at < off) {
        uint64_t left = off - at;
        ssize_t n = reader_source_read(r, r->buf, left < r->cap - 1 ? (size_t)left : r->cap - 1, e);
        if (n < 0) return (int)n;
        if (n == 0) {
            r->eof = 1;
            break;
        }
        at += (uint64_t)n;
    }
    r->buf_off = at;
    return 0;
}

/* ---- CSV records ------------------------------------------------------------------------------ */

/* Index of the first quote in buf[from, len), or len; see qfrom/qnext in struct reader. */
static size_t reader_quote_from(reader *r, size_t from)
{
    if (from < r->qfrom || from > r->qnext) {
        r->qfrom = r->qnext = from;
        r->qfound = 0;
    }
    if (!r->qfound && r->qnext < r->len) {
        const char *q = memchr(r->buf + r->qnext, '"', r->len - r->qnext);
        r->qnext = q ? (size_t)(q - r->buf) : r->len;
        r->qfound = q != NULL;
    }
    return r->qfound ? r->qnext : r->len;
}

/* 1 if buf[pos, lim) holds no quote: answered from the cache for nearly every record. */
static inline int reader_quote_free(reader *r, size_t lim)
{
    if (r->qfrom <= r->pos && lim <= r->qnext) return 1;
    return reader_quote_from(r, r->pos) >= lim;
}

/* Scans p[0, n) of a CSV record from state *st. Returns the index of the newline that ends the
 * record, or n when the record goes on. Leaves in *st the state after the scanned bytes and in
 * *qopen the index of the last quote that opened a quoted field (unchanged if none did). */
static size_t csv_scan(const char *p, size_t n, int *st, size_t *qopen)
{
    size_t i = 0;
    while (i < n) {
        switch (*st) {
        case CSV_QUOTED: {
            const char *q = memchr(p + i, '"', n - i);
            if (!q) return n;
            i = (size_t)(q - p) + 1;
            *st = CSV_QUOTE_SEEN;
            break;
        }
        case CSV_QUOTE_SEEN:
            if (p[i] == '\n') {
                *st = CSV_FIELD;
                return i;
            }
            /* "" is one quote; after a closing quote comes a comma, or text that makes the
             * field malformed (fields.c reports it) and in which quotes are literal. */
            *st = p[i] == '"' ? CSV_QUOTED : p[i] == ',' ? CSV_FIELD : CSV_UNQUOTED;
            i++;
            break;
        default: { /* CSV_FIELD or CSV_UNQUOTED */
            if (*st == CSV_FIELD && p[i] == '"') {
                *st = CSV_QUOTED;
                *qopen = i++;
                break;
            }
            const char *nl = memchr(p + i, '\n', n - i);
            size_t lim = nl ? (size_t)(nl - p) : n;
            /* Only a quote right after a comma opens a field here (p[i] was checked above). */
            const char *q = memchr(p + i, '"', lim - i);
            while (q && (q == p + i || q[-1] != ','))
                q = memchr(q + 1, '"', lim - (size_t)(q + 1 - p));
            if (q) {
                *st = CSV_QUOTED;
                *qopen = (size_t)(q - p);
                i = *qopen + 1;
                break;
            }
            if (nl) {
                *st = CSV_FIELD;
                return lim;
            }
            *st = p[n - 1] == ',' ? CSV_FIELD : CSV_UNQUOTED;
            return n;
        }
        }
    }
    return n;
}

/* The same machine one byte at a time, counting bytes that well-formed CSV never has there (a
 * quote inside an unquoted field, text after a closing quote) in *viol, and setting *ends when
 * the byte ends a record. Only the boundary scan uses it. */
static int csv_step(int st, unsigned char c, uint64_t *viol, int *ends)
{
    *ends = 0;
    switch (st) {
    case CSV_QUOTED:
        return c == '"' ? CSV_QUOTE_SEEN : CSV_QUOTED;
    case CSV_QUOTE_SEEN:
        if (c == '"') return CSV_QUOTED;
        if (c == ',') return CSV_FIELD;
        if (c == '\n') {
            *ends = 1;
            return CSV_FIELD;
        }
        if (c != '\r') ++*viol;
        return CSV_UNQUOTED;
    case CSV_FIELD:
        if (c == '"') return CSV_QUOTED;
        /* fall through */
    default:
        if (c == ',') return CSV_FIELD;
        if (c == '\n') {
            *ends = 1;
            return CSV_FIELD;
        }
        if (c == '"') ++*viol;
        return CSV_UNQUOTED;
    }
}

static int csv_outside(int st) { return st == CSV_FIELD || st == CSV_UNQUOTED; }

/* Reads file bytes at `off` into the buffer (for the boundary scan, before any record is read):
 * returns how many (0 at EOF) or a negative code. */
static ssize_t reader_peek(reader *r, uint64_t off, uint64_t want, struct err *e)
{
    size_t n_want = want < r->cap - 1 ? (size_t)want : r->cap - 1;
    ssize_t n;
    do {
        n = pread(r->fd, r->buf, n_want, (off_t)off);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return err_set(e, -errno, "%s: %s", r->file->name, strerror(errno));
    return n;
}

/* The first record start at or after byte s (0 < s) of a plain CSV file, or UINT64_MAX when no
 * record starts there: the split edge rule of the design notes. Deterministic: it depends on
 * the file's bytes and s only, so the readers on both sides of an edge agree on it.
 *
 * A record can only start right after a newline. At c1, the first such position at or after s,
 * the scan is in one of two states: at a record start (hypothesis A) or inside a quoted field
 * that holds that newline (B). Both machines run over the same bytes until they agree (from
 * then on they are the same), counting bytes that well-formed CSV never has where they put them:
 * under the wrong hypothesis quotes soon stand in impossible places. A machine that is still in
 * a quoted field when the scan reaches the end of the file has an unterminated quote: one more
 * malformed byte if the machine opened it, and wrong if the field began before c1 (the reader
 * ends such a record at the first newline after its quote, before c1: see the design notes). A
 * machine in a quoted field open for at least half the window when the window ends counts as
 * wrong too (quoted fields that long are rare). The hypothesis with fewer malformed bytes
 * wins and ties go to A, so when nothing decides it (no quotes near s) c1 is taken to lie
 * outside quotes. Under B the answer is the first record end of B's machine after c1. A wrong
 * guess is caught by the reader of the previous split, which parses exactly and must end its
 * last record at the answer. */
/* The file offset of the first newline at or after `from` (UINT64_MAX if none) in *at. */
static int reader_find_newline(reader *r, uint64_t from, uint64_t *at, struct err *e)
{
    for (;;) {
        ssize_t n = reader_peek(r, from, 64 * 1024, e);
        if (n < 0) return (int)n;
        if (n == 0) {
            *at = UINT64_MAX;
            return 0;
        }
        const char *nl = memchr(r->buf, '\n', (size_t)n);
        if (nl) {
            *at = from + (uint64_t)(nl - r->buf);
            return 0;
        }
        from += (uint64_t)n;
    }
}

static int csv_boundary(reader *r, uint64_t s, uint64_t *out, struct err *e)
{
    *out = UINT64_MAX;
    /* c1: just after the first newline at or after s - 1. */
    uint64_t c1;
    int rc = reader_find_newline(r, s - 1, &c1, e);
    if (rc < 0 || c1 == UINT64_MAX) return rc;
    c1++;

    int sa = CSV_FIELD, sb = CSV_QUOTED, ends, a_ends;
    uint64_t va = 0, vb = 0, b1 = UINT64_MAX; /* b1: B's first record start after c1 */
    /* Where each machine's current quoted field opened; UINT64_MAX: before c1 (B's own). */
    uint64_t qa = 0, qb = UINT64_MAX;
    uint64_t p = c1, lim = c1 + READER_CSV_WINDOW;
    int converged = 0, at_eof = 0;
    while (p < lim && !converged) {
        ssize_t got = reader_peek(r, p, lim - p, e);
        if (got < 0) return (int)got;
        if (got == 0) {
            at_eof = 1;
            break;
        }
        const char *c = r->buf, *cend = r->buf + got;
        while (c < cend) {
            /* One machine in a quoted field, the other outside: until the next quote the first
             * stays and the second only moves between fields and records. */
            int a_out = csv_outside(sa), b_out = csv_outside(sb);
            if ((a_out && sb == CSV_QUOTED) || (b_out && sa == CSV_QUOTED)) {
                const char *q = memchr(c, '"', (size_t)(cend - c));
                const char *stop = q ? q : cend;
                if (stop > c) {
                    int st = stop[-1] == ',' || stop[-1] == '\n' ? CSV_FIELD : CSV_UNQUOTED;
                    if (b_out && b1 == UINT64_MAX) {
                        const char *nl = memchr(c, '\n', (size_t)(stop - c));
                        if (nl) b1 = p + (uint64_t)(nl - r->buf) + 1;
                    }
                    if (a_out) sa = st;
                    else sb = st;
                    c = stop;
                    continue;
                }
            }
            int na = csv_step(sa, (unsigned char)*c, &va, &a_ends);
            int nb = csv_step(sb, (unsigned char)*c, &vb, &ends);
            if (na == CSV_QUOTED && sa == CSV_FIELD) qa = p + (uint64_t)(c - r->buf);
            if (nb == CSV_QUOTED && sb == CSV_FIELD) qb = p + (uint64_t)(c - r->buf);
            sa = na;
            sb = nb;
            c++;
            if (ends && b1 == UINT64_MAX) b1 = p + (uint64_t)(c - r->buf);
            if (sa == sb) {
                converged = 1;
                break;
            }
        }
        p += (uint64_t)(c - r->buf);
    }
    if (!converged && at_eof) {
        /* A quote that never closes: malformed if the machine opened it, impossible if it is
         * B's own (the reader would have ended the record before c1). */
        if (sa == CSV_QUOTED) va += 1;
        if (sb == CSV_QUOTED) vb += qb == UINT64_MAX ? READER_CSV_INSIDE_AT_END : 1;
    } else if (!converged) {
        uint64_t half = READER_CSV_WINDOW / 2;
        if (sa == CSV_QUOTED && p - qa >= half) va += READER_CSV_INSIDE_AT_END;
        if (sb == CSV_QUOTED && (qb == UINT64_MAX || p - qb >= half)) vb += READER_CSV_INSIDE_AT_END;
    }
    if (vb >= va) {
        *out = c1 < r->file->size ? c1 : UINT64_MAX;
        return 0;
    }
    if (b1 != UINT64_MAX) {
        *out = b1 < r->file->size ? b1 : UINT64_MAX;
        return 0;
    }
    /* B, and its first record end lies beyond the evidence: follow its machine to it. */
    int st = sb;
    uint64_t qopen = qb; /* where B's current quoted field opened, if it is in one */
    for (;;) {
        ssize_t got = reader_peek(r, p, UINT64_MAX, e);
        if (got < 0) return (int)got;
        if (got == 0) break;
        size_t qo = SIZE_MAX;
        size_t k = csv_scan(r->buf, (size_t)got, &st, &qo);
        if (qo != SIZE_MAX) qopen = p + qo;
        if (k < (size_t)got) {
            *out = p + k + 1 < r->file->size ? p + k + 1 : UINT64_MAX;
            return 0;
        }
        p += (uint64_t)got;
    }
    if (st == CSV_QUOTED) {
        /* Unterminated: the record ends at the first newline after its opening quote. If that
         * is B's own quote, from before c1, B was wrong after all (the reader would have ended
         * that record before c1). */
        if (qopen == UINT64_MAX) {
            *out = c1 < r->file->size ? c1 : UINT64_MAX;
            return 0;
        }
        uint64_t nl;
        if ((rc = reader_find_newline(r, qopen, &nl, e)) < 0) return rc;
        if (nl != UINT64_MAX && nl + 1 < r->file->size) *out = nl + 1;
    }
    return 0;
}

/* ---- Records ---------------------------------------------------------------------------------- */

/* How far the scan of the record that starts at rec_off has got. */
struct reader_scan {
    size_t done;    /* buf[pos, done) has been scanned */
    int st;         /* CSV state after those bytes */
    uint64_t qopen; /* file offset of the quote that opened the current quoted field */
    uint64_t qnl;   /* file offset of the first newline after qopen, or UINT64_MAX */
};

/* Scans the new bytes buf[done, len) of the record at rec_off. Returns the index of the newline
 * that ends it, or SIZE_MAX when it goes on past len. */
static size_t reader_scan(reader *r, uint64_t rec_off, struct reader_scan *sc)
{
    size_t from = sc->done;
    sc->done = r->len;
    if (r->forced_off == rec_off)
        return r->forced_end < reader_source_pos(r) ? (size_t)(r->forced_end - r->buf_off) : SIZE_MAX;
    if (!r->csv) {
        const char *nl = memchr(r->buf + from, '\n', r->len - from);
        return nl ? (size_t)(nl - r->buf) : SIZE_MAX;
    }
    if (csv_outside(sc->st)) {
        /* The fast path: no quote before the newline. */
        const char *nl = memchr(r->buf + from, '\n', r->len - from);
        size_t lim = nl ? (size_t)(nl - r->buf) : r->len;
        if (reader_quote_from(r, from) >= lim) {
            if (nl) return lim;
            if (lim > from) sc->st = r->buf[lim - 1] == ',' ? CSV_FIELD : CSV_UNQUOTED;
            return SIZE_MAX;
        }
    }
    size_t qo = SIZE_MAX;
    size_t k = csv_scan(r->buf + from, r->len - from, &sc->st, &qo);
    if (qo != SIZE_MAX) {
        sc->qopen = r->buf_off + from + qo;
        sc->qnl = UINT64_MAX;
    }
    if (k < r->len - from) return from + k;
    /* Still inside a quoted field: should it never close, the record ends at the first newline
     * after its opening quote, so note where that is. */
    if (sc->st == CSV_QUOTED && sc->qopen != UINT64_MAX && sc->qnl == UINT64_MAX) {
        size_t lo = sc->qopen > r->buf_off + from ? (size_t)(sc->qopen - r->buf_off) : from;
        const char *nl = memchr(r->buf + lo, '\n', r->len - lo);
        if (nl) sc->qnl = r->buf_off + (uint64_t)(nl - r->buf);
    }
    return SIZE_MAX;
}

/* After a CSV record that started before r->end: the next one must start at or before it. */
static int reader_check_end(reader *r, uint64_t rec_off, struct err *e)
{
    uint64_t next = r->buf_off + r->pos;
    if (!r->csv || r->end == UINT64_MAX || next <= r->end) return 0;
    return err_set(e, -EBADMSG,
                   "%s: offset %llu: this CSV record runs on past offset %llu, where the scan for "
                   "split edges found the next record to start: a quoted field it misjudged (an "
                   "unbalanced quote, or a quoted field over %u KiB); reading the file whole "
                   "(-m 1, or gzip it) avoids the guess",
                   r->file->name, (unsigned long long)rec_off, (unsigned long long)r->end,
                   READER_CSV_WINDOW / 1024);
}

/* The next record of the segment, header included: READER_RECORD, READER_TOO_LONG, READER_END
 * or a negative code. */
static int reader_record(reader *r, const char **data, size_t *len, uint64_t *offset, struct err *e)
{
    for (;;) {
        if (r->empty) return READER_END;
        uint64_t rec_off = r->buf_off + r->pos;
        if (rec_off >= r->end) return READER_END;
        /* The fast path: the record's newline is buffered and, in CSV, no quote comes before it
         * (then it cannot run past r->end either: a split edge lies after a newline). */
        char *p = r->buf + r->pos;
        char *nl_fast = memchr(p, '\n', r->len - r->pos);
        if (nl_fast && (!r->csv || (rec_off != 0 && r->forced_off != rec_off &&
                                    reader_quote_free(r, (size_t)(nl_fast - r->buf))))) {
            size_t n = (size_t)(nl_fast - p);
            r->pos += n + 1;
            if (n > 0 && p[n - 1] == '\r') n--;
            *offset = rec_off;
            if (n > r->max_record) return READER_TOO_LONG;
            p[n] = 0;
            *data = p;
            *len = n;
            return READER_RECORD;
        }
        struct reader_scan sc = {.done = r->pos, .st = CSV_FIELD, .qopen = UINT64_MAX, .qnl = UINT64_MAX};
        int rc;
        if (r->csv && rec_off == 0) {
            /* A UTF-8 byte-order mark comes before the first field. */
            while (r->len - r->pos < 3 && !r->eof) {
                size_t shift = r->pos;
                if ((rc = reader_fill(r, e)) < 0) return rc;
                sc.done -= shift;
            }
            if (r->len - r->pos >= 3 && memcmp(r->buf + r->pos, "\xEF\xBB\xBF", 3) == 0) sc.done += 3;
        }
        size_t nl;
        int too_long = 0;
        for (;;) {
            nl = reader_scan(r, rec_off, &sc);
            if (nl != SIZE_MAX) break;
            /* +1: a \r before the newline is not part of the record. */
            if (r->len - r->pos > r->max_record && r->len - r->pos - r->max_record > 1) {
                too_long = 1;
                break;
            }
            if (r->eof) break;
            size_t shift = r->pos;
            if ((rc = reader_fill(r, e)) < 0) return rc;
            sc.done -= shift;
        }
        int unterminated = r->csv && nl == SIZE_MAX && sc.st == CSV_QUOTED && sc.qnl != UINT64_MAX &&
                           r->forced_off != rec_off;
        if (too_long) {
            /* Drop the record: discard buffered bytes through its end, without growing. */
            while (nl == SIZE_MAX && !r->eof) {
                r->pos = r->len; /* discarded: reader_fill() slides the offset on */
                if ((rc = reader_fill(r, e)) < 0) return rc;
                sc.done = 0;
                nl = reader_scan(r, rec_off, &sc);
            }
            unterminated = r->csv && nl == SIZE_MAX && sc.st == CSV_QUOTED && sc.qnl != UINT64_MAX &&
                           r->forced_off != rec_off;
            if (!unterminated) {
                r->pos = nl != SIZE_MAX ? nl + 1 : r->len;
                if ((rc = reader_check_end(r, rec_off, e)) < 0) return rc;
                if (r->forced_off == rec_off) r->forced_off = UINT64_MAX;
                *offset = rec_off;
                return READER_TOO_LONG;
            }
        }
        if (unterminated) {
            /* The quote never closes: the record ends at the first newline after it. Read it
             * again with that end (it is still buffered unless it was too long). */
            r->forced_off = rec_off;
            r->forced_end = sc.qnl;
            if (rec_off < r->buf_off && (rc = reader_seek(r, rec_off, e)) < 0) return rc;
            continue;
        }
        size_t n;
        if (nl != SIZE_MAX) {
            n = nl - r->pos;
        } else {
            n = r->len - r->pos;
            if (n == 0) return READER_END; /* clean EOF */
        }
        p = r->buf + r->pos;
        r->pos += n + (nl != SIZE_MAX);
        if ((rc = reader_check_end(r, rec_off, e)) < 0) return rc;
        if (r->forced_off == rec_off) r->forced_off = UINT64_MAX;
        if (n > 0 && p[n - 1] == '\r') n--;
        *offset = rec_off;
        if (n > r->max_record) return READER_TOO_LONG;
        p[n] = 0; /* over the terminator (or the spare byte at EOF): C string functions work */
        *data = p;
        *len = n;
        return READER_RECORD;
    }
}

/* ---- Opening ---------------------------------------------------------------------------------- */

static int reader_open_cap(reader **out, const input_file *file, const input_segment *seg,
                           uint64_t max_record, size_t cap, struct err *e);

/* The CSV header: the first record of the file, which a reader that starts at 0 reads now. */
static int reader_take_header(reader *r, struct err *e)
{
    const char *p;
    size_t n;
    uint64_t off;
    int k = reader_record(r, &p, &n, &off, e);
    if (k < 0) return k;
    if (k == READER_TOO_LONG)
        return err_set(e, -EBADMSG, "%s: offset 0: CSV header longer than --max-record", r->file->name);
    if (k == READER_END || n == 0) return 0; /* no header: every record will lack its fields */
    /* A UTF-8 byte-order mark is not part of the first column's name. */
    if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
        p += 3;
        n -= 3;
    }
    /* A bad header is the data's fault: -EBADMSG, so that the attempt is not retried. */
    int rc = fields_header_parse(p, n, &r->header, e);
    if (rc) {
        err_prefix(e, "%s: offset 0: ", r->file->name);
        rc = e->code = -EBADMSG;
    }
    return rc;
}

/* The CSV header for a reader that starts mid-file: from a small reader of the file's start. */
static int reader_header_from_start(reader *r, struct err *e)
{
    input_segment whole = {.start = 0, .end = r->file->size};
    reader *h = NULL;
    int rc = reader_open_cap(&h, r->file, &whole, r->max_record, 64 * 1024, e);
    if (rc) return rc;
    r->header = h->header;
    h->header = NULL;
    reader_close(h);
    return 0;
}

/* Positions a line reader at the first line that starts at or after seg_start (> 0): back up
 * one byte; if it is a newline, a line starts exactly at seg_start, otherwise the line in
 * progress belongs to the previous split: skip through its end. */
static int reader_start_lines(reader *r, struct err *e)
{
    int rc = reader_seek(r, r->seg_start - 1, e);
    if (rc) return rc;
    for (;;) {
        char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
        if (nl) {
            r->pos = (size_t)(nl - r->buf) + 1;
            return 0;
        }
        r->pos = r->len; /* discard: reader_fill() slides the offset on */
        if (r->buf_off + r->pos >= r->end) return 0;
        rc = reader_fill(r, e);
        if (rc <= 0) return rc;
    }
}

/* Places a plain CSV reader on its split's edges (see the design notes). */
static int reader_start_csv(reader *r, struct err *e)
{
    uint64_t hs = 0, he = UINT64_MAX;
    int rc;
    if (r->seg_end < r->file->size && (rc = csv_boundary(r, r->seg_end, &he, e)) < 0) return rc;
    if (r->seg_start > 0 && (rc = csv_boundary(r, r->seg_start, &hs, e)) < 0) return rc;
    if (hs > he)
        return err_set(e, -EBADMSG,
                       "%s: offsets %llu and %llu: the scans for CSV split edges disagree (a quoted "
                       "field they misjudged); reading the file whole (-m 1, or gzip it) avoids the guess",
                       r->file->name, (unsigned long long)r->seg_start, (unsigned long long)r->seg_end);
    r->end = he;
    if (hs == he) {
        r->empty = 1;
        return 0;
    }
    return reader_seek(r, hs, e);
}

static int reader_open_cap(reader **out, const input_file *file, const input_segment *seg,
                           uint64_t max_record, size_t cap, struct err *e)
{
    reader *r = xcalloc(1, sizeof *r);
    r->file = file;
    r->fd = -1;
    r->csv = file->format == FIELDS_CSV;
    r->gz = file->gz;
    r->max_record = max_record;
    r->seg_start = file->gz ? 0 : seg->start;
    r->seg_end = file->gz ? file->size : seg->end;
    /* The last split of a file reads to its end, whatever the file's size now. */
    r->end = file->gz || seg->end >= file->size ? UINT64_MAX : seg->end;
    r->forced_off = UINT64_MAX;
    r->cap = cap;
    /* TALLY_RECORD_PAD bytes past the end, so that a record, NUL included, always has that many
     * readable bytes after it for word-at-a-time and SIMD scanning (tally.h promises it). */
    r->buf = xcalloc(1, r->cap + TALLY_RECORD_PAD);
    int rc = 0;
    r->fd = open(file->path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = err_set(e, -errno, "%s: %s", file->name, strerror(errno));
        goto fail;
    }
    if (r->gz) {
        r->zin = xmalloc(READER_GZ_IN);
        if (inflateInit2(&r->zs, 16 + MAX_WBITS) != Z_OK) {
            rc = err_set(e, -ENOMEM, "%s: cannot start gzip decompression", file->name);
            goto fail;
        }
        r->zs_ready = 1;
    } else {
        posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
        if (r->csv) rc = reader_start_csv(r, e);
        else if (r->seg_start > 0) rc = reader_start_lines(r, e);
        if (rc) goto fail;
    }
    if (r->csv) {
        rc = r->seg_start == 0 ? reader_take_header(r, e) : reader_header_from_start(r, e);
        if (rc) goto fail;
    }
    *out = r;
    return 0;
fail:
    reader_close(r);
    return rc;
}

int reader_open(reader **out, const input_file *file, const input_segment *seg, uint64_t max_record,
                struct err *e)
{
    /* No bigger than the segment needs: a fresh 1 MiB buffer costs a task 256 page faults,
     * which showed up in the latency of small cluster jobs (each attempt is a new process). */
    size_t cap = READER_BLOCK;
    if (!file->gz && seg->end - seg->start + 64 * 1024 < cap) cap = (size_t)(seg->end - seg->start) + 64 * 1024;
    return reader_open_cap(out, file, seg, max_record, cap, e);
}

int reader_open_sized(reader **out, const input_file *file, const input_segment *seg, uint64_t max_record,
                      size_t cap, struct err *e)
{
    return reader_open_cap(out, file, seg, max_record, cap < 256 ? 256 : cap, e);
}

int reader_next(reader *r, const char **data, size_t *len, uint64_t *offset, struct err *e)
{
    return reader_record(r, data, len, offset, e);
}

const fields_header *reader_header(const reader *r) { return r->header; }

uint64_t reader_progress(const reader *r)
{
    if (r->gz) return r->zin_read - r->zs.avail_in;
    if (r->empty) return r->seg_end - r->seg_start;
    uint64_t off = r->buf_off + r->pos;
    if (off < r->seg_start) return 0;
    if (off > r->seg_end) return r->seg_end - r->seg_start;
    return off - r->seg_start;
}

void reader_close(reader *r)
{
    if (!r) return;
    if (r->zs_ready) inflateEnd(&r->zs);
    free(r->zin);
    if (r->fd >= 0) close(r->fd);
    if (r->header) fields_header_free(r->header);
    free(r->buf);
    free(r);
}
