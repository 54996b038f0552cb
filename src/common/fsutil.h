/* fsutil.h - file-system helpers: recursive mkdir/remove, atomic file writes, canonical paths. */
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
/* The absolute form of `path` with symbolic links and "." / ".." resolved: realpath() of its
 * longest existing prefix, then the rest normalised as mkdir -p would create it. Never fails
 * for a well-formed path (malloc'd; NULL only if the working directory is unreadable). */
char *fs_canonical(const char *path);
/* 1 if canonical path `child` is `parent` or lies below it. */
int fs_path_within(const char *child, const char *parent);
/* Creates a fresh directory "<parent>/<prefix>XXXXXX"; returns its malloc'd path or NULL. */
char *fs_mkdtemp(const char *parent, const char *prefix, struct err *e);

#endif
