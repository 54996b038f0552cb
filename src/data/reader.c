/* reader.c - buffered line reader over a byte range of a plain or gzip file. */
#include "data/reader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define READER_BLOCK (1u << 20)

struct reader {
    const input_file *file;
    int fd;
    gzFile gz;
    char *buf;
    size_t cap;        /* allocated bytes of buf */
    size_t pos, len;   /* unread data is buf[pos, len) */
    uint64_t buf_off;  /* file offset (uncompressed) of buf[0] */
    uint64_t start, end;
    uint64_t max_record;
    int eof;
    int skip_header;   /* CSV: the next record at offset 0 is the header */
    fields_header *header;
};

/* Reads more data into the buffer, keeping buf[pos, len). Returns bytes read, 0 at EOF, or a
 * negative code. */
static int reader_fill(reader *r, struct err *e)
{
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->buf_off += r->pos;
        r->len -= r->pos;
        r->pos = 0;
    }
    /* One byte stays free after the data so that a record can always be NUL-terminated. */
    if (r->len + 1 >= r->cap) {
        size_t ncap = r->cap * 2;
        r->buf = xrealloc(r->buf, ncap);
        r->cap = ncap;
    }
    size_t want = r->cap - r->len - 1;
    ssize_t n;
    if (r->gz) {
        int got = gzread(r->gz, r->buf + r->len, (unsigned)(want > (1u << 30) ? (1u << 30) : want));
        if (got < 0) {
            int zerr;
            const char *msg = gzerror(r->gz, &zerr);
            return err_set(e, -EIO, "%s: offset %llu: gzip: %s", r->file->path,
                           (unsigned long long)(r->buf_off + r->len), msg);
        }
        n = got;
    } else {
        do {
            n = read(r->fd, r->buf + r->len, want);
        } while (n < 0 && errno == EINTR);
        if (n < 0) return err_set(e, -errno, "%s: %s", r->file->path, strerror(errno));
    }
    if (n == 0) r->eof = 1;
    r->len += (size_t)n;
    return (int)(n > 0);
}

/* Reads the CSV header: the first line of the file, whatever segment this reader covers. */
static int reader_load_header(reader *r, struct err *e)
{
    int fd = open(r->file->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(e, -errno, "%s: %s", r->file->path, strerror(errno));
    gzFile gz = NULL;
    if (r->file->gz) {
        gz = gzdopen(dup(fd), "rb");
        if (!gz) {
            close(fd);
            return err_set(e, -ENOMEM, "%s: cannot open gzip stream", r->file->path);
        }
    }
    struct buf line = {0};
    char tmp[4096];
    int rc = 0;
    for (;;) {
        ssize_t n = gz ? gzread(gz, tmp, sizeof tmp) : read(fd, tmp, sizeof tmp);
        if (n < 0) {
            rc = err_set(e, -EIO, "%s: cannot read the CSV header", r->file->path);
            break;
        }
        if (n == 0) break;
        char *nl = memchr(tmp, '\n', (size_t)n);
        buf_append(&line, tmp, nl ? (size_t)(nl - tmp) : (size_t)n);
        if (nl) break;
        if (line.len > r->max_record) {
            rc = err_set(e, -EINVAL, "%s: offset 0: CSV header longer than --max-record", r->file->path);
            break;
        }
    }
    if (gz) gzclose(gz);
    close(fd);
    if (rc == 0 && line.len > 0) {
        size_t n = line.len;
        if (line.data[n - 1] == '\r') n--;
        if (n > r->max_record) {
            buf_free(&line);
            return err_set(e, -EINVAL, "%s: offset 0: CSV header longer than --max-record", r->file->path);
        }
        /* A UTF-8 byte-order mark is not part of the first column's name. */
        const char *p = line.data;
        if (n >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) {
            p += 3;
            n -= 3;
        }
        rc = fields_header_parse(p, n, &r->header, e);
        if (rc) err_prefix(e, "%s: offset 0: ", r->file->path);
    }
    buf_free(&line);
    return rc;
}

int reader_open(reader **out, const input_file *file, const input_segment *seg, uint64_t max_record,
                struct err *e)
{
    reader *r = xcalloc(1, sizeof *r);
    r->file = file;
    r->fd = -1;
    r->start = seg->start;
    r->end = file->gz ? UINT64_MAX : seg->end;
    r->max_record = max_record;
    /* No bigger than the segment needs: a fresh 1 MiB buffer costs a task 256 page faults,
     * which showed up in the latency of small cluster jobs (each attempt is a new process). */
    r->cap = READER_BLOCK;
    if (!file->gz && seg->end - seg->start + 64 * 1024 < r->cap)
        r->cap = (size_t)(seg->end - seg->start) + 64 * 1024;
    r->buf = xmalloc(r->cap);
    int rc = 0;
    r->fd = open(file->path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        rc = err_set(e, -errno, "%s: %s", file->path, strerror(errno));
        goto fail;
    }
    if (file->format == FIELDS_CSV) {
        rc = reader_load_header(r, e);
        if (rc) goto fail;
    }
    if (file->gz) {
        r->gz = gzdopen(r->fd, "rb");
        if (!r->gz) {
            rc = err_set(e, -ENOMEM, "%s: cannot open gzip stream", file->path);
            goto fail;
        }
        r->fd = -1; /* owned by gz now */
        gzbuffer(r->gz, 256 * 1024);
        r->skip_header = file->format == FIELDS_CSV;
        *out = r;
        return 0;
    }
    posix_fadvise(r->fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    if (r->start == 0) {
        r->skip_header = file->format == FIELDS_CSV;
    } else {
        /* Back up one byte: if it is a newline, a record starts exactly at `start`. Otherwise
         * the record in progress belongs to the previous split; skip through its end. */
        if (lseek(r->fd, (off_t)(r->start - 1), SEEK_SET) < 0) {
            rc = err_set(e, -errno, "%s: %s", file->path, strerror(errno));
            goto fail;
        }
        r->buf_off = r->start - 1;
        for (;;) {
            char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
            if (nl) {
                r->pos = (size_t)(nl - r->buf) + 1;
                break;
            }
            r->pos = r->len; /* discard: reader_fill() slides the offset on */
            if (r->buf_off + r->pos >= r->end) break;
            rc = reader_fill(r, e);
            if (rc < 0) goto fail;
            if (rc == 0) break;
        }
    }
    *out = r;
    return 0;
fail:
    reader_close(r);
    return rc;
}

int reader_next(reader *r, const char **data, size_t *len, uint64_t *offset, struct err *e)
{
    for (;;) {
        uint64_t rec_off = r->buf_off + r->pos;
        if (rec_off >= r->end) return READER_END;
        /* Find the end of the record at pos, filling as needed. */
        size_t scanned = r->pos;
        char *nl = NULL;
        int too_long = 0;
        for (;;) {
            nl = memchr(r->buf + scanned, '\n', r->len - scanned);
            if (nl) break;
            /* +1: a \r before the newline is not part of the record. */
            if (r->len - r->pos > r->max_record && r->len - r->pos - r->max_record > 1) {
                too_long = 1;
                break;
            }
            if (r->eof) break;
            size_t done = r->len - r->pos;
            int rc = reader_fill(r, e);
            if (rc < 0) return rc;
            scanned = done; /* after the fill, pos is 0 */
        }
        if (too_long) {
            /* Drop the record: discard buffered bytes until its newline, without growing. */
            for (;;) {
                nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
                if (nl) {
                    r->pos = (size_t)(nl - r->buf) + 1;
                    break;
                }
                r->pos = r->len;
                if (r->eof) break;
                int rc = reader_fill(r, e);
                if (rc < 0) return rc;
                if (rc == 0) break;
            }
            *offset = rec_off;
            return READER_TOO_LONG;
        }
        size_t n;
        if (nl) {
            n = (size_t)(nl - (r->buf + r->pos));
        } else {
            n = r->len - r->pos;
            if (n == 0) return READER_END; /* clean EOF */
        }
        char *p = r->buf + r->pos;
        r->pos += n + (nl ? 1 : 0);
        if (n > 0 && p[n - 1] == '\r') n--;
        if (n > r->max_record) {
            *offset = rec_off;
            return READER_TOO_LONG;
        }
        if (r->skip_header && rec_off == 0) {
            r->skip_header = 0;
            continue;
        }
        p[n] = 0; /* over the terminator (or the spare byte at EOF): C string functions work */
        *data = p;
        *len = n;
        *offset = rec_off;
        return READER_RECORD;
    }
}

const fields_header *reader_header(const reader *r) { return r->header; }

uint64_t reader_progress(const reader *r)
{
    if (r->gz) return (uint64_t)gzoffset(r->gz);
    uint64_t off = r->buf_off + r->pos;
    if (off < r->start) return 0;
    if (off > r->end) return r->end - r->start;
    return off - r->start;
}

void reader_close(reader *r)
{
    if (!r) return;
    if (r->gz) gzclose(r->gz);
    if (r->fd >= 0) close(r->fd);
    if (r->header) fields_header_free(r->header);
    free(r->buf);
    free(r);
}
