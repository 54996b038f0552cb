/* util.h - allocation that cannot fail, the error-message idiom, growable buffers, time. */
#ifndef TALLY_UTIL_H
#define TALLY_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

/* Allocation: on out-of-memory these print a message and abort, as Redis' zmalloc does; a
 * process that cannot allocate a few bytes cannot report anything useful either. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The error idiom: functions return 0 or a negative errno-style code; where a person will read
 * why, they also fill a `struct err` passed by the caller. err_set() returns `code` so that a
 * failure reads `return err_set(e, -ENOENT, "%s: no such file", path);`. e may be NULL. */
struct err {
    int code;
    char msg[1024];
};
int err_set(struct err *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Prefixes an existing message: "reading x: " + old message. */
int err_prefix(struct err *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void err_clear(struct err *e);

/* A growable byte buffer. Zero-initialise to start; buf_free() releases. */
struct buf {
    char *data;
    size_t len, cap;
};
void buf_reserve(struct buf *b, size_t extra);
void buf_append(struct buf *b, const void *p, size_t n);
void buf_appendf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_putc(struct buf *b, char c);
/* Appends s as one CSV field: quoted (RFC 4180) only when it holds a comma, quote or line break. */
void buf_append_csv_field(struct buf *b, const char *s);
void buf_free(struct buf *b);
/* Appends the base64 (RFC 4648, padded) of [p, p+n); NUL-terminates b. */
void buf_append_base64(struct buf *b, const void *p, size_t n);
/* Appends the bytes of the base64 text [s, s+n) (padded, no whitespace); 0, or -EINVAL for
 * anything else (b then holds what was decoded before the bad spot). */
int buf_append_unbase64(struct buf *b, const char *s, size_t n);

/* Monotonic milliseconds/nanoseconds, and wall-clock milliseconds since the epoch. */
uint64_t time_mono_ms(void);
uint64_t time_mono_ns(void);
uint64_t time_wall_ms(void);

/* Parses "64M", "1G", "512k", "1000" into bytes; returns 0 or -EINVAL. */
int util_parse_size(const char *s, uint64_t *out);
/* Parses a non-negative integer in [min, max]; returns 0 or -EINVAL. */
int util_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out);
/* Parses a finite decimal number in [min, max]; returns 0 or -EINVAL. */
int util_parse_double(const char *s, double min, double max, double *out);
/* "on"/"off" (also 1/0, yes/no, true/false) into 1/0; returns 0 or -EINVAL. */
int util_parse_switch(const char *s, int *out);
/* Number of online CPUs, at least 1. */
int util_ncpus(void);
/* Has SIGINT and SIGTERM call fn (which should only set a flag the process polls). */
void util_catch_stop_signals(void (*fn)(int));
/* Starts fn(arg) on a detached thread; 0 or a negative errno. */
int util_thread_detached(void *(*fn)(void *), void *arg);

#endif
