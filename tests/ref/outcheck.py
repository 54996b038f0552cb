#!/usr/bin/env python3
"""outcheck.py - checks the invariants of a finished job's OUT directory.

    outcheck.py OUT --reduces R [--key-fields G] [--columns N] [--expect NAME=VALUE]...

Checks: exactly part-00000..part-<R-1>, _counters.json and _SUCCESS (plus _columns with
--columns) and nothing else; every line is key<TAB>value with a final newline; keys strictly
increasing in byte order within each part; no key in two parts; _counters.json a flat object
with every standard counter, each a non-negative integer, consistent with each other and with
the parts. --expect NAME=VALUE pins a counter: VALUE is N, N|M (either), >N or >=N.
The key of a line is its first G TAB-separated fields (aggregate keys contain TABs).
Exits 1 with one line per broken invariant.
"""
import argparse
import json
import os
import sys

COUNTERS = ["input_files", "input_bytes", "input_records", "map_output_records",
            "combine_input_records", "combine_output_records", "spilled_records",
            "reduce_input_groups", "output_records", "records_skipped", "map_tasks",
            "reduce_tasks", "task_attempts"]

ap = argparse.ArgumentParser()
ap.add_argument("out")
ap.add_argument("--reduces", type=int, required=True)
ap.add_argument("--key-fields", type=int, default=1)
ap.add_argument("--columns", type=int, help="expect _columns with this many TAB-separated names")
ap.add_argument("--expect", action="append", default=[])
ap.add_argument("--any-groups", action="store_true",
                help="do not require reduce_input_groups == output_records (user jobs)")
a = ap.parse_args()

errors = []


def err(msg):
    errors.append(msg)


expected_files = {"part-%05d" % i for i in range(a.reduces)} | {"_counters.json", "_SUCCESS"}
if a.columns is not None:
    expected_files.add("_columns")
present = set(os.listdir(a.out))
for name in sorted(expected_files - present):
    err("missing %s" % name)
for name in sorted(present - expected_files):
    err("unexpected file %s in OUT" % name)

owner = {}
total_lines = 0
for i in range(a.reduces):
    path = os.path.join(a.out, "part-%05d" % i)
    if not os.path.exists(path):
        continue
    with open(path, "rb") as f:
        data = f.read()
    if data and not data.endswith(b"\n"):
        err("%s: last line has no newline" % path)
    prev = None
    for n, line in enumerate(data.split(b"\n")[:-1] if data else [], 1):
        total_lines += 1
        fields = line.split(b"\t")
        if len(fields) <= a.key_fields:
            err("%s:%d: not key<TAB>value: %r" % (path, n, line[:80]))
            continue
        key = b"\t".join(fields[:a.key_fields])
        if prev is not None and not prev < key:
            err("%s:%d: key %r not after %r (byte order, no duplicates)" % (path, n, key[:60],
                                                                            prev[:60]))
        prev = key
        if key in owner and owner[key] != i:
            err("key %r in part %d and part %d" % (key[:60], owner[key], i))
        owner[key] = i

if a.columns is not None and os.path.exists(os.path.join(a.out, "_columns")):
    with open(os.path.join(a.out, "_columns"), "rb") as f:
        cols = f.read()
    if cols.count(b"\n") != 1 or not cols.endswith(b"\n"):
        err("_columns is not one line: %r" % cols[:200])
    elif len(cols[:-1].split(b"\t")) != a.columns:
        err("_columns has %d TAB-separated names, expected %d: %r"
            % (len(cols[:-1].split(b"\t")), a.columns, cols[:200]))

c = {}
try:
    with open(os.path.join(a.out, "_counters.json")) as f:
        c = json.load(f)
    if not isinstance(c, dict):
        err("_counters.json is not an object")
        c = {}
except (OSError, ValueError) as e:
    err("_counters.json unreadable: %s" % e)
for name, v in c.items():
    if isinstance(v, (dict, list)):
        err("_counters.json is not flat: %s is %r" % (name, v))
for name in COUNTERS:
    if name not in c:
        err("_counters.json lacks %s" % name)
    elif not isinstance(c[name], int) or isinstance(c[name], bool) or c[name] < 0:
        err("counter %s = %r is not a non-negative integer" % (name, c[name]))

if c and all(isinstance(c.get(n), int) for n in COUNTERS):
    if c["output_records"] != total_lines:
        err("output_records = %d but the parts hold %d lines" % (c["output_records"], total_lines))
    if c["reduce_tasks"] != a.reduces:
        err("reduce_tasks = %d, expected %d" % (c["reduce_tasks"], a.reduces))
    if not a.any_groups and c["reduce_input_groups"] != c["output_records"]:
        err("reduce_input_groups = %d != output_records = %d" % (c["reduce_input_groups"],
                                                                 c["output_records"]))
    if c["map_output_records"] < c["reduce_input_groups"]:
        err("map_output_records = %d < reduce_input_groups = %d" % (c["map_output_records"],
                                                                    c["reduce_input_groups"]))
    if c["combine_output_records"] > c["combine_input_records"]:
        err("combine_output_records = %d > combine_input_records = %d"
            % (c["combine_output_records"], c["combine_input_records"]))
    if c["task_attempts"] < c["map_tasks"] + c["reduce_tasks"]:
        err("task_attempts = %d < map_tasks + reduce_tasks = %d"
            % (c["task_attempts"], c["map_tasks"] + c["reduce_tasks"]))
    if c["records_skipped"] > c["input_records"]:
        err("records_skipped = %d > input_records = %d" % (c["records_skipped"],
                                                           c["input_records"]))

for spec in a.expect:
    name, _, want = spec.partition("=")
    have = c.get(name)
    if not isinstance(have, int):
        err("counter %s missing or not an integer (expected %s)" % (name, want))
    elif want.startswith(">="):
        if not have >= int(want[2:]):
            err("counter %s = %d, expected >= %s" % (name, have, want[2:]))
    elif want.startswith(">"):
        if not have > int(want[1:]):
            err("counter %s = %d, expected > %s" % (name, have, want[1:]))
    elif have not in [int(w) for w in want.split("|")]:
        err("counter %s = %d, expected %s" % (name, have, want))

if errors:
    for e in errors[:20]:
        print("outcheck: %s: %s" % (a.out, e), file=sys.stderr)
    if len(errors) > 20:
        print("outcheck: ... and %d more" % (len(errors) - 20), file=sys.stderr)
    sys.exit(1)
