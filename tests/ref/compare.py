#!/usr/bin/env python3
"""compare.py - compares a job's output (all OUT/part-* files) with a reference's output.

    compare.py OUT REF_FILE                     lines must match exactly, as a multiset
    compare.py OUT REF_FILE --key-fields G      aggregate output: the first G TAB fields are the
                                                key; integers must match exactly, other numbers
                                                within a relative tolerance of 1e-9
Exits 1 after printing the first differences.
"""
import argparse
import collections
import glob
import math
import os
import re
import sys

INTEGER = re.compile(rb"[+-]?\d+")

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("ref")
ap.add_argument("--key-fields", type=int)
a = ap.parse_args()


def lines_of(paths):
    result = []
    for p in paths:
        with open(p, "rb") as f:
            result.extend(f.read().splitlines())
    return result


got = lines_of(sorted(glob.glob(os.path.join(a.out, "part-*"))))
want = lines_of([a.ref])
problems = []

if a.key_fields is None:
    g, w = collections.Counter(got), collections.Counter(want)
    missing = sorted((w - g).elements())
    extra = sorted((g - w).elements())
    for line in missing[:8]:
        problems.append("missing: %r" % line[:150])
    for line in extra[:8]:
        problems.append("unexpected: %r" % line[:150])
    if missing or extra:
        problems.append("%d lines missing, %d unexpected (of %d expected, %d got)"
                        % (len(missing), len(extra), len(want), len(got)))
else:
    def split(lines, side):
        d = {}
        for line in lines:
            f = line.split(b"\t")
            key, vals = tuple(f[:a.key_fields]), f[a.key_fields:]
            if key in d:
                problems.append("%s: key %r twice" % (side, key))
            d[key] = vals
        return d

    gd, wd = split(got, "output"), split(want, "reference")
    for key in sorted(set(wd) - set(gd))[:8]:
        problems.append("missing group %r (reference: %r)" % (key, wd[key]))
    for key in sorted(set(gd) - set(wd))[:8]:
        problems.append("unexpected group %r: %r" % (key, gd[key]))
    bad = 0
    for key in sorted(set(gd) & set(wd)):
        gv, wv = gd[key], wd[key]
        ok = len(gv) == len(wv)
        for x, y in zip(gv, wv):
            if INTEGER.fullmatch(y):
                ok = ok and x == y
            else:
                try:
                    ok = ok and math.isclose(float(x), float(y), rel_tol=1e-9, abs_tol=1e-12)
                except ValueError:
                    ok = False
        if not ok:
            bad += 1
            if bad <= 8:
                problems.append("group %r: got %r, reference %r" % (key, gv, wv))
    if bad or set(gd) != set(wd):
        problems.append("%d groups differ, %d missing, %d unexpected (of %d)"
                        % (bad, len(set(wd) - set(gd)), len(set(gd) - set(wd)), len(wd)))

if problems:
    for p in problems:
        print("compare: %s vs %s: %s" % (a.out, a.ref, p), file=sys.stderr)
    sys.exit(1)
