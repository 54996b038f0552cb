#!/usr/bin/env python3
"""grep.py - reference for `tally run grep -e REGEX`: the matching lines and where they start.

The matching itself is done by GNU grep (-E, byte semantics under LC_ALL=C), not by Python's
re, whose dialect differs from POSIX ERE. grep is fed the records (terminators already removed,
over-long ones dropped) one per line and reports matching line numbers with -n; this script
maps them back to FILE:OFFSET keys. Key = path as given + ':' + byte offset of the line start.
"""
import argparse
import os
import subprocess
import sys

import refinput

ap = argparse.ArgumentParser()
ap.add_argument("-e", dest="regex", required=True)
ap.add_argument("--max-record", default="64M")
ap.add_argument("--stats")
ap.add_argument("inputs", nargs="+")
a = ap.parse_args()

stats = refinput.Stats()
recs = list(refinput.records(refinput.expand(a.inputs), refinput.parse_size(a.max_record), stats))
feed = b"".join(line + b"\n" for _path, _offset, line in recs)
env = dict(os.environ, LC_ALL="C")
p = subprocess.run(["grep", "-a", "-n", "-E", "-e", a.regex], input=feed, stdout=subprocess.PIPE,
                   env=env)
if p.returncode not in (0, 1):
    sys.exit("ref: grep failed (exit %d) for regex %r" % (p.returncode, a.regex))
for hit in p.stdout.split(b"\n"):
    if hit:
        path, offset, line = recs[int(hit.split(b":", 1)[0]) - 1]
        refinput.out(b"%s:%d" % (os.fsencode(path), offset), line)
stats.write(a.stats)
