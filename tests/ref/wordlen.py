#!/usr/bin/env python3
"""wordlen.py - reference for the example user job examples/wordlen.c: a word-length histogram.

Words as wordcount's; a word shorter than --min is only counted in the job counter
wordlen_short_words; the key is the length (at most 9999) as four digits, the value the count.
"""
import argparse
import collections

import refinput

ap = argparse.ArgumentParser()
ap.add_argument("--min", type=int, default=1)
ap.add_argument("--stats")
ap.add_argument("inputs", nargs="+")
a = ap.parse_args()

stats = refinput.Stats()
stats.short_words = 0
counts = collections.Counter()
for _path, _offset, line in refinput.records(refinput.expand(a.inputs), 1 << 26, stats):
    for word in refinput.words(line):
        if len(word) < a.min:
            stats.short_words += 1
        else:
            counts[min(len(word), 9999)] += 1
for n, c in counts.items():
    refinput.out(b"%04d" % n, b"%d" % c)
stats.write(a.stats)
