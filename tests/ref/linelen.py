#!/usr/bin/env python3
"""linelen.py - reference for the test user job tests/e2e/jobs/linelen.c: lines per length bucket.

Key: floor(len / bucket) * bucket as 8 digits; value: the number of lines of that bucket.
"""
import argparse
import collections

import refinput

ap = argparse.ArgumentParser()
ap.add_argument("--bucket", type=int, default=10)
ap.add_argument("--stats")
ap.add_argument("inputs", nargs="+")
a = ap.parse_args()

stats = refinput.Stats()
counts = collections.Counter()
stats.empty_lines = 0  # = the job counter linelen_empty_lines
for _path, _offset, line in refinput.records(refinput.expand(a.inputs), 1 << 26, stats):
    counts[len(line) // a.bucket * a.bucket] += 1
    stats.empty_lines += len(line) == 0
for k, n in counts.items():
    refinput.out(b"%08d" % k, b"%d" % n)
stats.write(a.stats)
