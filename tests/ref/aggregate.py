#!/usr/bin/env python3
"""aggregate.py - reference for `tally run aggregate`: group-by with aggregates over CSV/JSONL.

    aggregate.py --group-by F1[,F2..] --agg A1[,A2..] [--where COND] [--format csv|jsonl] INPUT...

Output: group values joined by TAB, TAB, aggregate values joined by TAB, one line per group.
Aggregates: count, count_if(COND), ratio_if(COND), sum(F), avg(F), min(F), max(F).
COND: comparisons `X OP Y` (OP one of == = != < <= > >=; X, Y a field name, a number or a quoted
string without escapes) joined by `and` / `or` (and binds tighter), with parentheses. Two values compare as
numbers when both parse as numbers, else as byte strings.

The order in which a record is judged (the spec leaves some of it open, see the report):
  1. a record that cannot be parsed is skipped (counted);
  2. every field the WHERE condition names must be present, else the record is skipped;
     WHERE false drops the record silently;
  3. every other field named by --group-by or --agg must be present, else skipped;
  4. a non-numeric value for sum/avg/min/max skips the record.
A skipped record contributes to no group, not even to count.
"""
import argparse
import json
import math
import re
import sys

import refinput

NUMBER = re.compile(rb"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
INTEGER = re.compile(rb"[+-]?\d+")


class Skip(Exception):
    """The record cannot be used; the message says why."""


# ---- Field access ------------------------------------------------------------------------

class RawNumber(str):
    """A JSON number kept as written, because the engine reports numbers as their JSON text."""


def csv_split(line):
    """Splits a CSV record (RFC 4180 subset: quoted fields may hold commas, newlines and "").
    Raises Skip when malformed."""
    fields, i, n = [], 0, len(line)
    while True:
        if i < n and line[i:i + 1] == b'"':
            i += 1
            value = bytearray()
            while True:
                if i >= n:
                    raise Skip("unterminated quote")
                c = line[i:i + 1]
                if c == b'"':
                    if line[i + 1:i + 2] == b'"':
                        value += b'"'
                        i += 2
                        continue
                    i += 1
                    break
                value += c
                i += 1
            if i < n and line[i:i + 1] != b",":
                raise Skip("text after a closing quote")
            fields.append(bytes(value))
        else:
            j = line.find(b",", i)
            j = n if j < 0 else j
            fields.append(line[i:j])
            i = j
        if i >= n:
            return fields
        i += 1  # the comma


def json_text(v):
    """The text the engine gives for a JSON value: strings unescaped, others as written."""
    if isinstance(v, str) and not isinstance(v, RawNumber):
        return v.encode("utf-8")
    if isinstance(v, RawNumber):
        return v.encode()
    if v is True:
        return b"true"
    if v is False:
        return b"false"
    return json.dumps(v, separators=(",", ":")).encode()


def no_constants(name):
    raise ValueError("JSON has no %s" % name)


def record_getter(fmt, header, line):
    """Returns get(name) -> bytes or None (absent) for one record; raises Skip if unparsable."""
    if fmt == "csv":
        values = csv_split(line)
        if len(values) > len(header):
            raise Skip("more fields than the header")
        row = dict(zip(header, values))
        return row.get
    try:
        obj = json.loads(line.decode("utf-8"), parse_int=RawNumber, parse_float=RawNumber,
                         parse_constant=no_constants)
    except (ValueError, UnicodeDecodeError) as e:
        raise Skip("bad JSON: %s" % e)
    if not isinstance(obj, dict):
        raise Skip("not a JSON object")

    def get(name):
        v = obj
        for part in name.decode().split("."):
            if not isinstance(v, dict) or part not in v:
                return None
            v = v[part]
        return None if v is None else json_text(v)
    return get


# ---- COND: tokenizer and recursive-descent parser -----------------------------------------

TOKEN = re.compile(r"\s*(?:(==|!=|<=|>=|<|>|=|\(|\))|(\"[^\"]*\"|'[^']*')"
                   r"|([+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)"
                   r"|([A-Za-z_\x80-\U0010ffff][-A-Za-z0-9_.\x80-\U0010ffff]*))")


def tokenize(text):
    """Tokens of a condition; `=` means `==`, and/or may be written in capitals."""
    toks, i = [], 0
    while i < len(text):
        if text[i:].strip() == "":
            break
        m = TOKEN.match(text, i)
        if not m:
            sys.exit("ref: cannot parse condition at %r" % text[i:])
        op, string, number, name = m.groups()
        if op:
            toks.append(("op", "==" if op == "=" else op))
        elif string:
            toks.append(("lit", string[1:-1].encode()))
        elif number:
            toks.append(("lit", number.encode()))
        elif name in ("and", "or", "AND", "OR"):
            toks.append((name.lower(), name))
        else:
            toks.append(("field", name.encode()))
        i = m.end()
    return toks


class Cond:
    """A parsed condition: a tree of ('and'|'or', l, r) and ('cmp', op, x, y) nodes."""

    def __init__(self, text):
        self.toks, self.pos = tokenize(text), 0
        self.tree = self.parse_or()
        if self.pos != len(self.toks):
            sys.exit("ref: trailing text in condition %r" % text)

    def peek(self):
        return self.toks[self.pos] if self.pos < len(self.toks) else (None, None)

    def take(self):
        tok = self.peek()
        self.pos += 1
        return tok

    def parse_or(self):
        node = self.parse_and()
        while self.peek()[0] == "or":
            self.take()
            node = ("or", node, self.parse_and())
        return node

    def parse_and(self):
        node = self.parse_primary()
        while self.peek()[0] == "and":
            self.take()
            node = ("and", node, self.parse_primary())
        return node

    def parse_primary(self):
        if self.peek() == ("op", "("):
            self.take()
            node = self.parse_or()
            if self.take() != ("op", ")"):
                sys.exit("ref: missing ) in condition")
            return node
        x = self.take()
        op = self.take()
        y = self.take()
        if x[0] not in ("lit", "field") or y[0] not in ("lit", "field") or op[0] != "op":
            sys.exit("ref: bad comparison in condition")
        return ("cmp", op[1], x, y)

    def fields(self, node=None):
        node = node or self.tree
        if node[0] == "cmp":
            return [t[1] for t in node[2:] if t[0] == "field"]
        return self.fields(node[1]) + self.fields(node[2])

    def eval(self, get, node=None):
        node = node or self.tree
        if node[0] == "and":
            return self.eval(get, node[1]) and self.eval(get, node[2])
        if node[0] == "or":
            return self.eval(get, node[1]) or self.eval(get, node[2])
        _, op, x, y = node
        a = get(x[1]) if x[0] == "field" else x[1]
        b = get(y[1]) if y[0] == "field" else y[1]
        if NUMBER.fullmatch(a) and NUMBER.fullmatch(b):
            a, b = float(a), float(b)
        return {"==": a == b, "!=": a != b, "<": a < b, "<=": a <= b, ">": a > b,
                ">=": a >= b}[op]


# ---- Aggregates -------------------------------------------------------------------------

def split_top(text):
    """Splits on commas outside parentheses and quotes."""
    parts, depth, quote, cur = [], 0, None, ""
    for c in text:
        if quote:
            quote = None if c == quote else quote
        elif c in "'\"":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif c == "," and depth == 0:
            parts.append(cur)
            cur = ""
            continue
        cur += c
    parts.append(cur)
    return [p.strip() for p in parts]


class Agg:
    def __init__(self, text):
        m = re.fullmatch(r"(\w+)(?:\((.*)\))?", text, re.S)
        if not m:
            sys.exit("ref: bad aggregate %r" % text)
        self.fn, arg = m.group(1), m.group(2)
        self.cond = Cond(arg) if self.fn in ("count_if", "ratio_if") else None
        self.field = arg.encode() if self.fn in ("sum", "avg", "min", "max") else None
        if self.fn not in ("count", "count_if", "ratio_if", "sum", "avg", "min", "max"):
            sys.exit("ref: unknown aggregate %r" % self.fn)

    def fields(self):
        return self.cond.fields() if self.cond else [self.field] if self.field else []

    def value(self, get):
        """The record's contribution: 1/0 for count(_if), a number for the others."""
        if self.fn == "count":
            return 1
        if self.cond:
            return 1 if self.cond.eval(get) else 0
        text = get(self.field)
        if INTEGER.fullmatch(text):
            return int(text)
        if NUMBER.fullmatch(text):
            return float(text)
        raise Skip("non-numeric %s" % self.field.decode())

    def result(self, vals):
        if self.fn in ("count", "count_if"):
            return b"%d" % sum(vals)
        if self.fn == "ratio_if":
            return repr(sum(vals) / len(vals)).encode()
        if self.fn == "avg":
            return repr(math.fsum(vals) / len(vals)).encode()
        if self.fn == "sum":
            v = sum(vals) if all(isinstance(x, int) for x in vals) else math.fsum(vals)
        else:
            v = (min if self.fn == "min" else max)(vals)
            if not all(isinstance(x, int) for x in vals):
                v = float(v)
        return str(v).encode() if isinstance(v, int) else repr(v).encode()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--group-by", required=True)
    ap.add_argument("--agg", required=True)
    ap.add_argument("--where")
    ap.add_argument("--format", choices=["csv", "jsonl"])
    ap.add_argument("--max-record", default="64M")
    ap.add_argument("--stats")
    ap.add_argument("inputs", nargs="+")
    a = ap.parse_args()

    group_by = [g.strip().encode() for g in a.group_by.split(",")]
    aggs = [Agg(t) for t in split_top(a.agg)]
    where = Cond(a.where) if a.where else None
    needed = group_by + [f for agg in aggs for f in agg.fields()]

    def fmt_of(path):
        if a.format:
            return a.format
        name = path[:-3] if path.endswith(".gz") else path
        if name.endswith(".csv"):
            return "csv"
        if name.endswith((".jsonl", ".json")):
            return "jsonl"
        sys.exit("ref: %s is neither CSV nor JSON Lines" % path)

    stats = refinput.Stats()
    groups = {}
    header = {}
    for path, offset, line in refinput.records(refinput.expand(a.inputs),
                                               refinput.parse_size(a.max_record), stats, fmt_of):
        if offset is None:  # the CSV header of a new file (a byte-order mark is not a name)
            if line.startswith(b"\xef\xbb\xbf"):
                line = line[3:]
            try:
                header[path] = csv_split(line)
            except Skip:
                header[path] = []
            continue
        try:
            get = record_getter(fmt_of(path), header.get(path), line)
            if where:
                if any(get(f) is None for f in where.fields()):
                    raise Skip("missing a WHERE field")
                if not where.eval(get):
                    continue
            if any(get(f) is None for f in needed):
                raise Skip("missing a field")
            key = tuple(get(g) for g in group_by)
            contrib = [agg.value(get) for agg in aggs]
        except Skip:
            stats.skip(path, offset)
            continue
        lists = groups.setdefault(key, [[] for _ in aggs])
        for lst, v in zip(lists, contrib):
            lst.append(v)
    for key, lists in groups.items():
        refinput.out(b"\t".join(key), b"\t".join(agg.result(v) for agg, v in zip(aggs, lists)))
    stats.write(a.stats)


if __name__ == "__main__":
    main()
