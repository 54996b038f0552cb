#!/usr/bin/env python3
"""index.py - reference for `tally run index`: an inverted index of words to files.

For each word (as wordcount, case kept): `N doc1,doc2,...`, the number of input files that
contain it and their paths as given, byte-sorted and comma-joined.
"""
import argparse
import collections
import os

import refinput

ap = argparse.ArgumentParser()
ap.add_argument("--max-record", default="64M")
ap.add_argument("--stats")
ap.add_argument("inputs", nargs="+")
a = ap.parse_args()

stats = refinput.Stats()
docs = collections.defaultdict(set)
for path, _offset, line in refinput.records(refinput.expand(a.inputs),
                                            refinput.parse_size(a.max_record), stats):
    for word in refinput.words(line):
        docs[word].add(os.fsencode(path))
for word, paths in docs.items():
    refinput.out(word, b"%d %s" % (len(paths), b",".join(sorted(paths))))
stats.write(a.stats)
