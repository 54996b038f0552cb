/* input.h - turns the INPUT arguments into a list of files and cuts them into map splits.
 *
 * A split is a list of byte ranges ("segments") of one or more files. A record belongs to the
 * split in which it *starts*, so the reader of a segment [start, end) skips the partial record
 * at `start` (unless start is 0) and reads past `end` to finish the last record it owns. With
 * this rule any number of splits covers every record exactly once, including more splits than
 * lines (some splits are then empty). Compressed (.gz) files cannot be cut: each is one split.
 */
#ifndef TALLY_INPUT_H
#define TALLY_INPUT_H

#include <stddef.h>
#include <stdint.h>

#include "common/util.h"
#include "data/fields.h"

typedef struct input_file {
    char *name;           /* as the user gave it (or as found under a given directory): what
                           * jobs see as tally_record.file and messages show */
    char *path;           /* what to open: name, or name resolved against the submitter's
                           * directory when a coordinator expanded it */
    uint64_t size;        /* bytes on disk */
    fields_format format;
    int gz;               /* gzip-compressed: read whole, one split */
} input_file;

typedef struct input_segment {
    uint32_t file;        /* index into input_set.files */
    uint64_t start, end;  /* byte range on disk; for gz files always [0, size) */
} input_segment;

typedef struct input_split {
    input_segment *segs;
    size_t nsegs;
    uint64_t bytes;       /* sum of segment lengths, for progress */
} input_split;

typedef struct input_set {
    input_file *files;
    size_t nfiles;
    uint64_t total_bytes;
    input_split *splits;
    size_t nsplits;
} input_set;

/* Expands INPUT arguments: a regular file is taken as is; a directory contributes every regular
 * file below it, recursively, in byte order of path, skipping names that start with '.' or '_'
 * (as Hadoop does, so a previous job's OUT can be an input); an argument that does not exist
 * but contains *, ? or [ is a glob. `forced` is the --format value or FIELDS_TEXT with
 * `force` 0 to detect the format from the name (.csv, .jsonl, .json, each optionally .gz).
 * Relative arguments are relative to `base` (the directory `tally submit` ran in) or, when base
 * is NULL, to this process's. Fills `out` (caller frees with input_set_free). Errors name the
 * offending path as given. */
int input_expand(char *const *args, size_t nargs, const char *base, int force, fields_format forced, input_set *out,
                 struct err *e);

/* Plans M map tasks over the splittable input, plus one per gz file: the plain (splittable)
 * files are cut into exactly `m` splits of about equal bytes, then one whole split is added per
 * gz file. m == 0 means the default: one split per `split_size` bytes, at least `min_splits`
 * (and at least one). When there are gz files but no plain bytes, there are no plain splits at
 * all, whatever `m` says: only the one per gz file. Returns 0. */
int input_plan(input_set *in, uint64_t m, uint64_t split_size, uint64_t min_splits);

void input_set_free(input_set *in);

/* The format a file name implies (.csv → CSV, .jsonl/.json → JSONL, else text); sets *gz. */
fields_format input_format_for(const char *path, int *gz);

#endif
