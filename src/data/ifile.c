/* ifile.c - writer and streaming reader of intermediate (spill, map output, shuffle) files. */
#include "data/ifile.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#define IFILE_MAGIC 0x31464954594c4c54ull /* "TLLYTIF1" little-endian */
#define IFILE_WBUF (256u * 1024u)
#define IFILE_RBUF (256u * 1024u)
#define IFILE_PART_BYTES 28

static _Atomic long long ifile_fault_budget = -1; /* bytes left before ENOSPC; -1 = off */

void ifile_fault_init(void)
{
    const char *s = getenv("TALLY_FAULT_ENOSPC_AFTER");
    if (s && *s) atomic_store(&ifile_fault_budget, atoll(s));
}

int ifile_write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    long long budget = atomic_load(&ifile_fault_budget);
    if (budget >= 0) {
        long long left = atomic_fetch_sub(&ifile_fault_budget, (long long)n);
        if (left < (long long)n) {
            atomic_store(&ifile_fault_budget, 0);
            return -ENOSPC;
        }
    }
    while (n > 0) {
        ssize_t w = write(fd, c, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- Writer ------------------------------------------------------------------------------ */

struct ifile_writer {
    char *path;
    int fd;
    int int_values;
    uint32_t nparts, cur;
    ifile_part *parts;
    char *buf;
    size_t len;
    uint64_t off;      /* bytes handed to write() so far */
    uint64_t records;
    int failed;
};

int ifile_writer_open(ifile_writer **out, const char *path, uint32_t nparts, int int_values,
                      struct err *e)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return err_set(e, -errno, "%s: %s", path, strerror(errno));
    ifile_writer *w = xcalloc(1, sizeof *w);
    w->path = xstrdup(path);
    w->fd = fd;
    w->int_values = int_values;
    w->nparts = nparts;
    w->parts = xcalloc(nparts, sizeof *w->parts);
    w->buf = xmalloc(IFILE_WBUF);
    *out = w;
    return 0;
}

static int ifile_flush(ifile_writer *w, struct err *e)
{
    if (w->len == 0) return 0;
    int rc = ifile_write_all(w->fd, w->buf, w->len);
    if (rc) {
        w->failed = 1;
        return err_set(e, rc, "writing %s: %s", w->path, strerror(-rc));
    }
    w->len = 0;
    return 0;
}

/* Appends raw bytes, updating the CRC of the current partition. */
static int ifile_put(ifile_writer *w, const void *p, size_t n, struct err *e)
{
    ifile_part *pt = &w->parts[w->cur];
    pt->crc = (uint32_t)crc32_z(pt->crc, p, n);
    pt->length += n;
    w->off += n;
    const char *c = p;
    while (n > 0) {
        if (w->len == IFILE_WBUF) {
            int rc = ifile_flush(w, e);
            if (rc) return rc;
        }
        size_t k = IFILE_WBUF - w->len;
        if (k > n) k = n;
        memcpy(w->buf + w->len, c, k);
        w->len += k;
        c += k;
        n -= k;
    }
    return 0;
}

static size_t ifile_varint(uint8_t *p, uint64_t v)
{
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static int ifile_select(ifile_writer *w, uint32_t part, struct err *e)
{
    if (part < w->cur || part >= w->nparts) {
        w->failed = 1; /* the file would silently lack this record: it must not close cleanly */
        return err_set(e, -EINVAL, "%s: partition %u out of order", w->path, part);
    }
    while (w->cur < part) {
        w->cur++;
        w->parts[w->cur].offset = w->off;
    }
    return 0;
}

int ifile_writer_add(ifile_writer *w, uint32_t part, const void *key, size_t klen, const void *val,
                     size_t vlen, struct err *e)
{
    if (w->failed) return err_set(e, -EIO, "%s: writer failed earlier", w->path);
    int rc = ifile_select(w, part, e);
    if (rc) return rc;
    uint8_t hdr[20];
    size_t h = ifile_varint(hdr, klen);
    h += ifile_varint(hdr + h, vlen);
    if ((rc = ifile_put(w, hdr, h, e)) || (rc = ifile_put(w, key, klen, e)) ||
        (rc = ifile_put(w, val, vlen, e)))
        return rc;
    w->parts[part].records++;
    w->records++;
    return 0;
}

int ifile_writer_add_int(ifile_writer *w, uint32_t part, const void *key, size_t klen, int64_t val,
                         struct err *e)
{
    if (w->failed) return err_set(e, -EIO, "%s: writer failed earlier", w->path);
    int rc = ifile_select(w, part, e);
    if (rc) return rc;
    /* Fast path: header and key in one copy when they fit in the buffer. */
    uint8_t hdr[20];
    size_t h = ifile_varint(hdr, klen);
    uint64_t zz = ((uint64_t)val << 1) ^ (uint64_t)(val >> 63);
    h += ifile_varint(hdr + h, zz);
    if ((rc = ifile_put(w, hdr, h, e)) || (rc = ifile_put(w, key, klen, e))) return rc;
    w->parts[part].records++;
    w->records++;
    return 0;
}

static void ifile_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t ifile_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

int ifile_writer_close(ifile_writer *w, struct err *e)
{
    int rc = 0;
    if (w->failed) {
        rc = err_set(e, -EIO, "%s: writer failed earlier", w->path);
        goto out;
    }
    while (w->cur + 1 < w->nparts) {
        w->cur++;
        w->parts[w->cur].offset = w->off;
    }
    if ((rc = ifile_flush(w, e))) goto out;
    size_t tlen = (size_t)w->nparts * IFILE_PART_BYTES + 16;
    uint8_t *t = xmalloc(tlen);
    for (uint32_t i = 0; i < w->nparts; i++) {
        uint8_t *p = t + (size_t)i * IFILE_PART_BYTES;
        ifile_le64(p, w->parts[i].offset);
        ifile_le64(p + 8, w->parts[i].length);
        ifile_le64(p + 16, w->parts[i].records);
        uint32_t c = w->parts[i].crc;
        for (int k = 0; k < 4; k++) p[24 + k] = (uint8_t)(c >> (8 * k));
    }
    uint8_t *p = t + (size_t)w->nparts * IFILE_PART_BYTES;
    ifile_le64(p, (uint64_t)w->nparts | ((uint64_t)(w->int_values ? 1 : 0) << 32));
    ifile_le64(p + 8, IFILE_MAGIC);
    rc = ifile_write_all(w->fd, t, tlen);
    free(t);
    if (rc) {
        err_set(e, rc, "writing %s: %s", w->path, strerror(-rc));
        goto out;
    }
    if (close(w->fd) != 0) {
        rc = err_set(e, -errno, "closing %s: %s", w->path, strerror(errno));
        w->fd = -1;
        goto out;
    }
    w->fd = -1;
out:
    if (w->fd >= 0) {
        close(w->fd);
        unlink(w->path);
    } else if (rc) {
        unlink(w->path);
    }
    free(w->path);
    free(w->parts);
    free(w->buf);
    free(w);
    return rc;
}

void ifile_writer_abort(ifile_writer *w)
{
    if (!w) return;
    w->failed = 1;
    ifile_writer_close(w, NULL);
}

uint64_t ifile_writer_records(const ifile_writer *w) { return w->records; }

/* ---- Reader ------------------------------------------------------------------------------ */

int ifile_read_index(const char *path, ifile_part **parts, uint32_t *nparts, int *int_values,
                     struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(e, -errno, "%s: %s", path, strerror(errno));
    int rc = 0;
    uint8_t *t = NULL;
    off_t size = lseek(fd, 0, SEEK_END);
    uint8_t tail[16];
    if (size < 16 || pread(fd, tail, 16, size - 16) != 16 || ifile_get64(tail + 8) != IFILE_MAGIC) {
        rc = err_set(e, -EBADMSG, "%s: not an intermediate file (bad trailer)", path);
        goto out;
    }
    uint64_t meta = ifile_get64(tail);
    uint32_t n = (uint32_t)meta;
    size_t tlen = (size_t)n * IFILE_PART_BYTES;
    if (n == 0 || (off_t)(tlen + 16) > size) {
        rc = err_set(e, -EBADMSG, "%s: corrupt trailer", path);
        goto out;
    }
    t = xmalloc(tlen);
    if (pread(fd, t, tlen, size - 16 - (off_t)tlen) != (ssize_t)tlen) {
        rc = err_set(e, -EIO, "%s: cannot read trailer", path);
        goto out;
    }
    ifile_part *ps = xcalloc(n, sizeof *ps);
    for (uint32_t i = 0; i < n; i++) {
        const uint8_t *p = t + (size_t)i * IFILE_PART_BYTES;
        ps[i].offset = ifile_get64(p);
        ps[i].length = ifile_get64(p + 8);
        ps[i].records = ifile_get64(p + 16);
        ps[i].crc = (uint32_t)p[24] | (uint32_t)p[25] << 8 | (uint32_t)p[26] << 16 | (uint32_t)p[27] << 24;
        if (ps[i].offset + ps[i].length > (uint64_t)size) {
            free(ps);
            rc = err_set(e, -EBADMSG, "%s: corrupt trailer", path);
            goto out;
        }
    }
    *parts = ps;
    *nparts = n;
    *int_values = (int)((meta >> 32) & 1);
out:
    free(t);
    close(fd);
    return rc;
}

struct ifile_seg {
    char *path;
    int fd;
    int int_values;
    int check_crc;
    uint32_t want_crc, crc;
    uint64_t left;   /* bytes of the range not yet read from the file */
    char *buf;
    size_t cap, pos, len;
};

int ifile_seg_open(ifile_seg **out, const char *path, uint64_t offset, uint64_t length, uint32_t crc,
                   int check_crc, int int_values, struct err *e)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return err_set(e, -errno, "%s: %s", path, strerror(errno));
    if (lseek(fd, (off_t)offset, SEEK_SET) < 0) {
        int rc = err_set(e, -errno, "%s: %s", path, strerror(errno));
        close(fd);
        return rc;
    }
    ifile_seg *s = xcalloc(1, sizeof *s);
    s->path = xstrdup(path);
    s->fd = fd;
    s->int_values = int_values;
    s->check_crc = check_crc;
    s->want_crc = crc;
    s->left = length;
    s->cap = length + 64 < IFILE_RBUF ? (size_t)length + 64 : IFILE_RBUF; /* small segments, small buffers */
    s->buf = xmalloc(s->cap);
    *out = s;
    return 0;
}

/* Ensures at least `need` unread bytes are buffered. Returns 1 if so, 0 at a clean end of the
 * range with nothing unread, or a negative code (truncated data). */
static int ifile_seg_need(ifile_seg *s, size_t need, struct err *e)
{
    if (s->len - s->pos >= need) return 1;
    if (s->pos > 0) {
        memmove(s->buf, s->buf + s->pos, s->len - s->pos);
        s->len -= s->pos;
        s->pos = 0;
    }
    if (need > s->cap) {
        while (s->cap < need) s->cap *= 2;
        s->buf = xrealloc(s->buf, s->cap);
    }
    while (s->len < need) {
        if (s->left == 0) {
            if (s->len == 0) return 0;
            return err_set(e, -EBADMSG, "%s: truncated intermediate data", s->path);
        }
        size_t want = s->cap - s->len;
        if (want > s->left) want = (size_t)s->left;
        ssize_t n = read(s->fd, s->buf + s->len, want);
        if (n < 0) {
            if (errno == EINTR) continue;
            return err_set(e, -errno, "%s: %s", s->path, strerror(errno));
        }
        if (n == 0) return err_set(e, -EBADMSG, "%s: truncated intermediate data", s->path);
        if (s->check_crc) s->crc = (uint32_t)crc32_z(s->crc, (const Bytef *)s->buf + s->len, (size_t)n);
        s->len += (size_t)n;
        s->left -= (uint64_t)n;
        if (s->left == 0 && s->check_crc && s->crc != s->want_crc)
            return err_set(e, -EBADMSG, "%s: checksum mismatch in intermediate data", s->path);
    }
    return 1;
}

static int ifile_seg_varint(ifile_seg *s, uint64_t *v, struct err *e)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        int rc = ifile_seg_need(s, 1, e);
        if (rc <= 0) {
            if (rc == 0 && shift > 0) return err_set(e, -EBADMSG, "%s: truncated varint", s->path);
            return rc;
        }
        uint8_t b = (uint8_t)s->buf[s->pos++];
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 1;
        }
    }
    return err_set(e, -EBADMSG, "%s: bad varint", s->path);
}

int ifile_seg_next(ifile_seg *s, const char **key, size_t *klen, const char **val, size_t *vlen,
                   int64_t *ival, struct err *e)
{
    uint64_t kl, vl;
    int rc = ifile_seg_varint(s, &kl, e);
    if (rc <= 0) return rc;
    rc = ifile_seg_varint(s, &vl, e);
    if (rc == 0) return err_set(e, -EBADMSG, "%s: truncated record", s->path);
    if (rc < 0) return rc;
    size_t body = (size_t)kl;
    if (!s->int_values) body += (size_t)vl;
    if (kl > (1ull << 40) || (!s->int_values && vl > (1ull << 40)))
        return err_set(e, -EBADMSG, "%s: corrupt record length", s->path);
    rc = ifile_seg_need(s, body, e);
    if (rc == 0) return err_set(e, -EBADMSG, "%s: truncated record", s->path);
    if (rc < 0) return rc;
    *key = s->buf + s->pos;
    *klen = (size_t)kl;
    if (s->int_values) {
        *ival = (int64_t)((vl >> 1) ^ (~(vl & 1) + 1));
        *val = NULL;
        *vlen = 0;
    } else {
        *val = s->buf + s->pos + kl;
        *vlen = (size_t)vl;
    }
    s->pos += body;
    return 1;
}

void ifile_seg_close(ifile_seg *s)
{
    if (!s) return;
    close(s->fd);
    free(s->path);
    free(s->buf);
    free(s);
}
