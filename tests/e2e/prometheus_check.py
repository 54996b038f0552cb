#!/usr/bin/env python3
"""prometheus_check.py - what tests/e2e/prometheus.sh asks of a running Prometheus (stdlib only).

    prometheus_check.py URL up N [SINCE]          every one of N active targets is up (and was
                                                  scraped after SINCE, seconds since the epoch)
    prometheus_check.py URL evaluated SINCE       every rule group was evaluated after SINCE
    prometheus_check.py URL any EXPR              EXPR returns at least one sample
    prometheus_check.py URL firing ALERT [K=V]    ALERT fires (with these labels)
    prometheus_check.py URL quiet                 no alert fires
    prometheus_check.py URL dashboard JSON K=V... every panel query of the dashboard, its variables
                                                  set to the values given, returns data
    prometheus_check.py URL rules YML             every rule of the file is loaded and evaluates
                                                  without error; recording rules return data, and so
                                                  do alert expressions less their comparison

"Returns data" means: the query parses, and its result has at least one sample that is not NaN
(a panel of NaNs draws nothing either). Exit 0 if the check holds, 1 if not (saying why).
"""
import datetime
import json
import math
import re
import sys
import urllib.error
import urllib.parse
import urllib.request

URL = ""


def api(path, **params):
    """GET URL/api/v1/PATH?params; returns the "data" of a successful answer or raises."""
    q = urllib.parse.urlencode(params, doseq=True)
    try:
        with urllib.request.urlopen(f"{URL}/api/v1/{path}" + (f"?{q}" if q else ""), timeout=10) as r:
            body = json.load(r)
    except urllib.error.HTTPError as e:
        body = json.load(e)  # a 400 names the parse error
    if body.get("status") != "success":
        raise ValueError(f"{body.get('errorType')}: {body.get('error')}")
    return body["data"]


def query(expr):
    """The samples of an instant query as [(labels, float)]."""
    d = api("query", query=expr)
    if d["resultType"] == "scalar":
        return [({}, float(d["result"][1]))]
    if d["resultType"] != "vector":
        raise ValueError(f"result type {d['resultType']}, expected a vector")
    return [(s["metric"], float(s["value"][1])) for s in d["result"]]


def has_data(expr):
    """None if expr returns a sample that is not NaN, else why not."""
    try:
        res = query(expr)
    except ValueError as e:
        return f"error: {e}"
    if not res:
        return "no samples"
    if all(math.isnan(v) for _, v in res):
        return f"{len(res)} samples, all NaN"
    return None


def show(res):
    return ", ".join(f"{ {k: v for k, v in m.items() if k != '__name__'} }={v:g}" for m, v in res[:3]) + (
        f" (+{len(res) - 3})" if len(res) > 3 else "")


# ---- PromQL: an expression less its comparison ------------------------------------------------

def top_level(expr):
    """Yields (index, char) of expr outside brackets and string literals."""
    depth, quote, i = 0, None, 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = None
        elif c in "\"'`":
            quote = c
        elif c in "({[":
            depth += 1
        elif c in ")}]":
            depth -= 1
        elif depth == 0:
            yield i, c
        i += 1


def split_set_ops(expr):
    """expr cut at its top-level and/or/unless (which bind looser than comparisons)."""
    cuts, prev = [], 0
    pos = [i for i, _ in top_level(expr)]
    text = set(pos)
    for m in re.finditer(r"\b(and|or|unless)\b", expr):
        if all(k in text for k in range(m.start(), m.end())):
            cuts.append(expr[prev:m.start()])
            prev = m.end()
    cuts.append(expr[prev:])
    return [c.strip() for c in cuts]


def strip_parens(expr):
    while expr.startswith("(") and expr.endswith(")"):
        depth = 0
        for i, c in enumerate(expr):
            depth += c == "("
            depth -= c == ")"
            if depth == 0 and i < len(expr) - 1:
                return expr  # "(a) > (b)": the first parenthesis closes early
        expr = expr[1:-1].strip()
    return expr


def less_comparison(expr):
    """The left operand of the top-level comparison of expr (expr itself if it has none)."""
    expr = strip_parens(expr)
    chars = dict(top_level(expr))
    for i in sorted(chars):
        two = expr[i:i + 2]
        if two in ("==", "!=", ">=", "<="):
            return expr[:i].strip()
        if chars[i] in "<>":
            return expr[:i].strip()
    return expr


# ---- Checks -----------------------------------------------------------------------------------

def check_up(n, since=None):
    targets = api("targets", state="active")["activeTargets"]
    for t in targets:
        print(f"target {t['labels'].get('job')} {t['scrapeUrl']}: {t['health']} {t.get('lastError', '')} "
              f"last scraped {t['lastScrape']}")
    return len(targets) == int(n) and all(
        t["health"] == "up" and (since is None or scraped_at(t["lastScrape"]) > float(since)) for t in targets)


def scraped_at(rfc3339):
    """Seconds since the epoch of a time Prometheus gives, "2026-01-02T03:04:05.123456789Z"."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", rfc3339)
    if not m:
        return 0.0
    base = datetime.datetime.strptime(m.group(1) + (m.group(3) if m.group(3) != "Z" else "+00:00"),
                                      "%Y-%m-%dT%H:%M:%S%z")
    return base.timestamp() + float(m.group(2) or 0)


def check_evaluated(since):
    groups = api("rules")["groups"]
    for g in groups:
        print(f"group {g['name']}: last evaluated {g['lastEvaluation']}")
    return bool(groups) and all(scraped_at(g["lastEvaluation"]) > float(since) for g in groups)


def check_firing(name, *want):
    want = dict(w.split("=", 1) for w in want)
    alerts = api("alerts")["alerts"]
    for a in alerts:
        print(f"alert {a['labels'].get('alertname')} {a['state']} {a['labels']}")
    return any(a["labels"].get("alertname") == name and a["state"] == "firing" and
               all(a["labels"].get(k) == v for k, v in want.items()) for a in alerts)


def check_quiet():
    alerts = api("alerts")["alerts"]
    for a in alerts:
        print(f"alert {a['labels'].get('alertname')} {a['state']} {a['labels']}")
    return not any(a["state"] == "firing" for a in alerts)


# The metrics the dashboard must show, as issue 11 lists its panels: a panel lost in an edit
# fails the test here, not on the day someone needs it.
REQUIRED = [
    ("task completion per job", r"tally_job_tasks\b"),
    ("attempts running per worker", r"tally_attempts_running\b"),
    ("attempt duration quantiles per worker", r"histogram_quantile\(.*tally_worker_attempt_duration_seconds_bucket"),
    ("CPU per process", r"process_cpu_seconds_total"),
    ("memory per process", r"process_resident_memory_bytes"),
    ("shuffle bytes", r"tally_shuffle_served_bytes_total|tally_shuffle_bytes_total"),
    ("fetch failures", r"tally_shuffle_fetch_failures_total"),
    ("heartbeat delay", r"tally_heartbeat_gap_seconds_bucket"),
    ("speculative attempts", r"tally_speculative_attempts_total"),
    ("probation", r"tally_worker_probation\b"),
    ("leader", r"tally_coordinator_leader\b"),
    ("elections", r"tally_leader_elections_total"),
]
def all_panels(panels):
    for p in panels:
        yield p
        yield from all_panels(p.get("panels", []))


def substitute(expr, values):
    """expr with $var, ${var} and ${var:format} replaced (Grafana's own, such as $__rate_interval,
    too); raises KeyError on a variable values does not have."""
    def one(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(name)
        return values[name]
    return re.sub(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)", one, expr)


def check_dashboard(path, *assignments):
    values = dict(a.split("=", 1) for a in assignments)
    d = json.load(open(path))
    bad = []
    for key in ("title", "uid", "schemaVersion", "panels", "templating"):
        if key not in d:
            bad.append(f"the dashboard has no {key!r}")
    variables = {v["name"]: v for v in d["templating"]["list"]}
    ds = variables.get("datasource", {})
    if ds.get("type") != "datasource" or ds.get("query") != "prometheus":
        bad.append("no `datasource` variable of type datasource for Prometheus (needed for import and provisioning)")
    for name in variables:
        if name != "datasource" and name not in values:
            bad.append(f"test bug: no value given for dashboard variable ${name}")
    # Each variable's query offers the value the panels are checked with.
    for name, v in variables.items():
        if v["type"] == "query":
            q = v["query"] if isinstance(v["query"], str) else v["query"].get("query", "")
            m = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", q.strip())
            if not m:
                bad.append(f"variable ${name}: query {q!r} is not label_values(METRIC, LABEL)")
                continue
            offered = api(f"label/{m.group(2)}/values", **{"match[]": m.group(1)})
            print(f"variable ${name}: {q} -> {offered}")
            if values.get(name) not in offered:
                bad.append(f"variable ${name}: {q} does not offer {values.get(name)!r} (offers {offered})")
        elif v["type"] == "custom":
            if values.get(name) not in [o.strip() for o in v["query"].split(",")]:
                bad.append(f"variable ${name}: {v['query']!r} does not offer {values.get(name)!r}")
    ids, exprs = set(), []
    for p in all_panels(d["panels"]):
        where = f"panel {p.get('id')} {p.get('title')!r}"
        if p.get("id") in ids:
            bad.append(f"{where}: duplicate id")
        ids.add(p.get("id"))
        g = p.get("gridPos", {})
        if not all(isinstance(g.get(k), int) for k in "xywh") or g["x"] + g["w"] > 24:
            bad.append(f"{where}: gridPos {g} is not within the 24 columns")
        if p.get("type") == "row":
            continue
        if p.get("datasource", {}).get("uid") != "${datasource}":
            bad.append(f"{where}: its datasource is not the $datasource variable")
        targets = p.get("targets", [])
        if not targets:
            bad.append(f"{where}: no query")
        refs = [t.get("refId") for t in targets]
        if len(set(refs)) != len(refs):
            bad.append(f"{where}: duplicate refIds {refs}")
        for t in targets:
            if t.get("datasource", {}).get("uid") != "${datasource}":
                bad.append(f"{where} {t.get('refId')}: its datasource is not the $datasource variable")
            exprs.append((where, t.get("refId"), t["expr"]))
    for what, pattern in REQUIRED:
        if not any(re.search(pattern, e, re.S) for _, _, e in exprs):
            bad.append(f"no panel shows {what} (a query matching {pattern!r})")
    for where, ref, expr in exprs:
        try:
            q = substitute(expr, values)
        except KeyError as e:
            bad.append(f"{where} {ref}: unknown variable ${e.args[0]} in {expr!r}")
            continue
        why = has_data(q)
        if why:
            bad.append(f"{where} {ref}: {why}: {q}")
        else:
            print(f"ok {where} {ref}: {show(query(q))}")
    print(f"{len(exprs)} panel queries")
    for b in bad:
        print("BAD", b)
    return not bad


def check_rules(path):
    text = open(path).read()
    want = len(re.findall(r"^\s*- (?:record|alert):", text, re.M))
    groups = api("rules")["groups"]
    rules = [r for g in groups for r in g["rules"]]
    bad = []
    if len(rules) != want or want == 0:
        bad.append(f"Prometheus loaded {len(rules)} rules, {path} has {want}")
    for r in rules:
        name = r["name"]
        if r["health"] != "ok" or r.get("lastError"):
            bad.append(f"{name}: health {r['health']} {r.get('lastError', '')}")
        checks = []
        if r["type"] == "recording":
            checks = [r["query"], name]
        else:
            # The whole expression must run (it may well return nothing: nothing is wrong);
            # what it compares must return data.
            try:
                query(r["query"])
            except ValueError as e:
                bad.append(f"alert {name}: {e}: {r['query']}")
            checks = [less_comparison(part) for part in split_set_ops(r["query"])]
        for q in checks:
            why = has_data(q)
            if why:
                bad.append(f"{r['type']} {name}: {why}: {q}")
            else:
                print(f"ok {r['type']} {name}: {q} -> {show(query(q))}")
    print(f"{len(rules)} rules")
    for b in bad:
        print("BAD", b)
    return not bad


def main(argv):
    global URL
    URL = argv[1].rstrip("/")
    cmd, args = argv[2], argv[3:]
    if cmd == "up":
        ok = check_up(*args)
    elif cmd == "evaluated":
        ok = check_evaluated(*args)
    elif cmd == "any":
        res = query(args[0])
        print(show(res))
        ok = bool(res)
    elif cmd == "firing":
        ok = check_firing(*args)
    elif cmd == "quiet":
        ok = check_quiet()
    elif cmd == "dashboard":
        ok = check_dashboard(*args)
    elif cmd == "rules":
        ok = check_rules(*args)
    else:
        sys.exit(f"unknown check {cmd!r}")
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main(sys.argv))
    except (OSError, ValueError) as e:  # Prometheus not answering (yet), or a bad answer
        print(f"prometheus_check: {e}")
        sys.exit(1)
