"""refinput.py - input handling shared by the reference implementations in tests/ref/.

The references are deliberately naive: they read every file whole into memory, cut it into
lines with bytes.split and never look at split boundaries, so they know nothing of how the
engine plans or reads its input. What they share with the engine is only the spec:

  * an INPUT is a file, a directory (every regular file below it, recursively, in byte order of
    path, skipping names that start with '.' or '_'), or, if it does not exist, a glob;
  * a record is a line without its terminator (\n or \r\n); a last line without \n is a record;
  * except in CSV files, where a record ends at a newline outside double quotes (RFC 4180: a
    quote opens a quoted field at the start of a field, "" inside one is a quote), so a quoted
    field may hold newlines; a quote that is never closed ends its record at the first newline
    after it; the first record is the header; blank records of CSV and JSON Lines files are
    not records at all;
  * a .gz file is read decompressed (offsets are in the decompressed bytes);
  * a record longer than --max-record bytes is skipped and counted.

Standard library only.
"""

import glob
import gzip
import json
import os
import re
import sys


def expand(args):
    """Returns the list of file paths the INPUT arguments name, as the engine should see them."""
    files = []
    for arg in args:
        if os.path.isdir(arg):
            found = []
            for dirpath, dirnames, filenames in os.walk(arg):
                dirnames[:] = [d for d in dirnames if not d.startswith((".", "_"))]
                for name in filenames:
                    path = os.path.join(dirpath, name)
                    if not name.startswith((".", "_")) and os.path.isfile(path):
                        found.append(path)
            found.sort(key=os.fsencode)
            files.extend(found)
        elif os.path.exists(arg):
            files.append(arg)
        elif any(c in arg for c in "*?["):
            files.extend(sorted(glob.glob(arg), key=os.fsencode))
        else:
            sys.exit("ref: %s: no such file" % arg)
    return files


def read_bytes(path):
    """The file's content, decompressed when its name ends in .gz."""
    with open(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    return data


def csv_records(data):
    """Yields (offset, record) for every CSV record of data, terminator (and a \r before it)
    removed: a record ends at a newline outside quotes; a quote never closed ends its record at
    the first newline after it (or at the end). Walked byte by byte, except over lines without
    quotes."""
    i, n = 0, len(data)
    while i < n:
        start = i
        if start == 0 and data.startswith(b"\xef\xbb\xbf"):
            i = 3  # a byte-order mark comes before the first field
        state, qopen, end = "field", None, None
        while i < n:
            if state in ("field", "unquoted"):
                nl = data.find(b"\n", i)
                stop = n if nl < 0 else nl
                if data.find(b'"', i, stop) < 0:  # no quote before the newline: plain sailing
                    if nl >= 0:
                        end = nl
                        break
                    i = n
                    break
            c = data[i:i + 1]
            if state == "quoted":
                if c == b'"':
                    state = "quote seen"
            elif state == "quote seen":
                if c == b"\n":
                    end = i
                    break
                state = {b'"': "quoted", b",": "field"}.get(c, "unquoted")
            else:
                if c == b"\n":
                    end = i
                    break
                if c == b'"' and state == "field":
                    state, qopen = "quoted", i
                else:
                    state = "field" if c == b"," else "unquoted"
            i += 1
        if end is None and state == "quoted":
            nl = data.find(b"\n", qopen)
            end = nl if nl >= 0 else None
        if end is None:
            end = n
        record = data[start:end]
        if record.endswith(b"\r"):
            record = record[:-1]
        yield start, record
        i = end + 1


def lines(data):
    """Yields (offset, line) for every line of data, terminators removed."""
    offset = 0
    parts = data.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()  # data ended with \n (or is empty): no record after it
    for i, line in enumerate(parts):
        start = offset
        offset += len(line) + 1
        if line.endswith(b"\r") and (i < len(parts) - 1 or data.endswith(b"\n")):
            line = line[:-1]
        yield start, line


class Stats:
    """What a reference saw, written with --stats for the tests to compare with _counters.json."""

    def __init__(self):
        self.input_files = 0
        self.input_records = 0  # every line, including skipped ones
        self.records_skipped = 0
        self.skipped = []  # [path, offset] of each skipped record, in input order

    def skip(self, path, offset):
        self.records_skipped += 1
        self.skipped.append([path, offset])

    def write(self, path):
        if path:
            with open(path, "w") as f:
                json.dump(self.__dict__, f)


def records(paths, max_record, stats, fmt=lambda path: "text"):
    """Yields (path, offset, record) over all files; over-long records are skipped and counted.

    fmt(path) is the file's format: "text", "csv" or "jsonl". A CSV file's first record is its
    header, yielded as (path, None, record) and not counted as a record; blank CSV and JSON
    Lines records are neither yielded nor counted.
    """
    for path in paths:
        stats.input_files += 1
        kind = fmt(path)
        first = kind == "csv"
        data = read_bytes(path)
        for offset, line in csv_records(data) if kind == "csv" else lines(data):
            if first:
                first = False
                yield path, None, line  # the header: offset None marks it
                continue
            if kind != "text" and line == b"":
                continue
            stats.input_records += 1
            if len(line) > max_record:
                stats.skip(path, offset)
                continue
            yield path, offset, line


WORD = re.compile(rb"[A-Za-z\x80-\xff]+")


def words(line):
    """The words of a line: maximal runs of ASCII letters or bytes >= 0x80."""
    return WORD.findall(line)


def parse_size(text):
    """'64M' -> 67108864, as the CLI parses sizes."""
    m = re.fullmatch(r"(\d+)([kKmMgG]?)", text)
    if not m:
        sys.exit("ref: bad size %r" % text)
    return int(m.group(1)) * {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}[m.group(2).lower()]


def out(key, value):
    """Writes one key<TAB>value output line."""
    sys.stdout.buffer.write(key + b"\t" + value + b"\n")
