#!/usr/bin/env python3
"""wordcount.py - reference for `tally run wordcount`: each word and how often it occurs.

A word is a maximal run of ASCII letters or bytes >= 0x80; --fold-case lowercases ASCII only
(bytes.lower() does exactly that). Prints key<TAB>count lines in no particular order.
"""
import argparse
import collections

import refinput

ap = argparse.ArgumentParser()
ap.add_argument("--fold-case", action="store_true")
ap.add_argument("--max-record", default="64M")
ap.add_argument("--stats")
ap.add_argument("inputs", nargs="+")
a = ap.parse_args()

stats = refinput.Stats()
counts = collections.Counter()
for _path, _offset, line in refinput.records(refinput.expand(a.inputs),
                                             refinput.parse_size(a.max_record), stats):
    if a.fold_case:
        line = line.lower()
    counts.update(refinput.words(line))
for word, n in counts.items():
    refinput.out(word, b"%d" % n)
stats.total = sum(counts.values())  # = map_output_records: one emit per word
stats.write(a.stats)
