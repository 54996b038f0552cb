/* jsonscan.h - a one-pass, fully validating JSON Lines scanner that finds the values of a set of
 * dotted paths in a record without building a tree.
 *
 * A scanner holds a *plan*, the set of wanted paths compiled into a trie of keys, and the state of
 * the last record scanned. jsonscan_record() makes one forward pass over a record that both
 * decides whether jansson 2.14 would accept it (json_loadb with JSON_ALLOW_NUL, retried with
 * JSON_DECODE_INT_AS_REAL when an integer overflows; the top level must be an object) and notes
 * where the value of every wanted path is. jsonscan_get() then hands out a value's text.
 *
 * Paths: "meta.device.id" walks nested objects, one key per dot-separated part; a part may be
 * empty ("" names the key ""). Dots always mean nesting, so a key that itself holds a dot cannot
 * be reached; arrays are never walked. Keys are compared after unescaping ("k\u0065y" is "key").
 * Of repeated keys the last wins at every level: {"o":{"v":1},"o":5} has no o.v.
 *
 * Values: a string yields its unescaped bytes (it may hold NULs: \u0000 is allowed); true and
 * false yield "true" and "false"; a number yields its text as written ("1.50"); an object or an
 * array yields its text as written with the whitespace outside strings removed; null is absent.
 *
 * Typical use, as data/fields.c does it: paths are added as a job first asks for them, so the
 * plan grows during the first record (which is then rescanned) and stays fixed afterwards.
 *
 *     jsonscan *s = jsonscan_new();
 *     size_t user;
 *     jsonscan_add(s, "user", &user);
 *     for (each record)
 *         if (jsonscan_record(s, data, len) == 0 && jsonscan_get(s, user, &v, &n) == 0) ...
 *     jsonscan_free(s);
 *
 * A scanner is not thread-safe; use one per thread. Scanning allocates nothing per record once
 * the scratch space for unescaped strings and compacted composites has grown to fit.
 */
#ifndef TALLY_JSONSCAN_H
#define TALLY_JSONSCAN_H

#include <stddef.h>

/* jansson's JSON_PARSER_MAX_DEPTH: a value nested deeper than this (the top-level object is at
 * depth 1, its members' values at 2) makes the record malformed. */
#define JSONSCAN_MAX_DEPTH 2048

typedef struct jsonscan jsonscan;

/* A scanner with an empty plan; the caller owns it and frees it with jsonscan_free(). */
jsonscan *jsonscan_new(void);
void jsonscan_free(jsonscan *s);

/* Adds the NUL-terminated dotted `path` (copied) to the plan, or finds it there: 0 with its index
 * in *index. Indices count from 0 in the order paths were first added and never change. A path
 * added after a record was scanned has no value for it until jsonscan_rescan(). */
int jsonscan_add(jsonscan *s, const char *path, size_t *index);
/* Number of paths in the plan, and the i-th one (owned by the scanner). */
size_t jsonscan_count(const jsonscan *s);
const char *jsonscan_path(const jsonscan *s, size_t i);

/* Scans one record, data[0..len) (borrowed: it must stay unchanged while values are read).
 * Returns 0, or TALLY_EBADREC when jansson would reject it. Values handed out for the previous
 * record become invalid. */
int jsonscan_record(jsonscan *s, const char *data, size_t len);
/* Scans the current record again, for paths added since; values already handed out for it stay
 * valid. Returns what jsonscan_record() returned, or -EINVAL when there is no record. */
int jsonscan_rescan(jsonscan *s);

/* The value of path `index` in the current record: 0 with val and vlen set (pointing into the
 * record or into the scanner's scratch space, valid until the next jsonscan_record() or
 * jsonscan_free(); not NUL-terminated), TALLY_ENOFIELD when the path is absent or null or was
 * added after the scan, TALLY_EBADREC when the record is malformed, or -EINVAL when no record
 * has been scanned or `index` is not in the plan. */
int jsonscan_get(jsonscan *s, size_t index, const char **val, size_t *vlen);

#endif
