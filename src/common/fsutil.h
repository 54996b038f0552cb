/* fsutil.h - file-system helpers: recursive mkdir/remove, atomic file writes. */
#ifndef TALLY_FSUTIL_H
#define TALLY_FSUTIL_H

#include <stddef.h>

#include "common/util.h"

/* mkdir -p; returns 0 or -errno with the path in e. */
int fs_mkdirs(const char *path, struct err *e);
/* rm -rf; returns 0 or the first -errno (keeps going). Refuses "" and "/". */
int fs_rmtree(const char *path);
/* Writes `data` to path via a temporary file in the same directory and rename(). */
int fs_write_atomic(const char *path, const void *data, size_t len, struct err *e);
/* 1 if `path` is a directory with at least one entry, 0 if empty or absent, -errno if it is
 * something else or unreadable. */
int fs_dir_nonempty(const char *path);
/* Creates a fresh directory "<parent>/<prefix>XXXXXX"; returns its malloc'd path or NULL. */
char *fs_mkdtemp(const char *parent, const char *prefix, struct err *e);

#endif
