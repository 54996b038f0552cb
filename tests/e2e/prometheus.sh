#!/usr/bin/env bash
# prometheus.sh - deploy/prometheus and deploy/grafana against a real cluster and a real
# Prometheus: the rules pass `promtool check rules` and their unit tests; the shipped
# prometheus.yml (targets, intervals, token path and rule path replaced) passes `promtool check
# config`, and so does its commented Kubernetes job (but for the discovery itself, which
# Debian's Prometheus lacks); Prometheus, started on a free port with that config, scrapes a
# coordinator and 2 workers with the token from its credentials_file; after a wordcount job,
# every panel query of the dashboard (its variables set to that job, worker w1, phase map and a
# $__rate_interval of 1m) returns data, every rule evaluates without error, every recording rule
# returns data and so does every alert expression less its comparison (whether the comparison
# fires is what rules_test.yml tests); no alert fires on the healthy cluster, and
# TallyWorkerLost fires once a worker is restarted. The checks against the HTTP API are in
# tests/e2e/prometheus_check.py.
. "$(dirname "$0")/cluster_lib.sh"

DEPLOY=$ROOT/deploy
CHECK=("$PYTHON" "$ROOT/tests/e2e/prometheus_check.py")
for tool in prometheus promtool; do
    command -v $tool >/dev/null || fail "$tool is not installed (scripts/install-deps.sh installs Debian's prometheus)"
done

step "promtool: the rules check and pass their unit tests"
promtool check rules "$DEPLOY/prometheus/rules.yml" >"$T/promtool.txt" 2>&1 ||
    fail "promtool check rules: $(cat "$T/promtool.txt")"
promtool test rules "$DEPLOY/prometheus/rules_test.yml" >"$T/promtool.txt" 2>&1 ||
    fail "promtool test rules: $(tail -n 20 "$T/promtool.txt")"

step "a coordinator and 2 workers"
JOB_TIMEOUT=60
# No speculation or probation: a worker slowed by another test on these cores must not make
# copies or probations (tail.sh tests those); their metrics are there all the same.
cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 15000 --speculation off --probation off
cl_start_worker w1 --slots 2
cl_start_worker w2 --slots 2
w1=$(cl_q 'w["w1"]["address"]')
w2=$(cl_q 'w["w2"]["address"]')

step "the shipped prometheus.yml with this cluster's targets, 1 s intervals and the token file"
PROM=$T/prom
mkdir -p "$PROM"
# prom_config SRC DEST [k8s]: SRC with the replacements, each of which must apply exactly as
# often as expected (else prometheus.yml changed under the test); with k8s, its commented
# Kubernetes job uncommented too.
prom_config() {
    "$PYTHON" - "$@" "$CL_TOKEN_FILE" "$DEPLOY/prometheus/rules.yml" "$CL_COORD" "$w1" "$w2" <<'EOF'
import re, sys
src, dest = sys.argv[1], sys.argv[2]
k8s = len(sys.argv) > 8
token, rules, coord, w1, w2 = sys.argv[-5:]
text = open(src).read()
reps = [("scrape_interval: 15s", "scrape_interval: 1s", 1),
        ("evaluation_interval: 15s", "evaluation_interval: 1s", 1),
        ("credentials_file: /etc/prometheus/tally-token", f"credentials_file: {token}", 2),
        ("  - rules.yml\n", f"  - {rules}\n", 1),
        ("targets: ['127.0.0.1:7070']", f"targets: ['{coord}']", 1),
        ("targets: ['127.0.0.1:7071', '127.0.0.1:7072']", f"targets: ['{w1}', '{w2}']", 1)]
for old, new, n in reps:
    if text.count(old) != n:
        sys.exit(f"{src}: expected {old!r} {n} time(s), found it {text.count(old)}: update tests/e2e/prometheus.sh")
    text = text.replace(old, new)
if k8s:
    head, sep, job = text.partition("  # - job_name: tally-pods\n")
    if not sep:
        sys.exit(f"{src}: no commented Kubernetes job '  # - job_name: tally-pods'")
    lines = [sep] + job.splitlines(keepends=True)
    if not all(l.startswith("  # ") or l.strip() == "#" for l in lines):
        sys.exit(f"{src}: the Kubernetes job is not the last, commented block")
    job = "".join("  " + l[4:] if l.startswith("  # ") else "\n" for l in lines)
    job = job.replace("/etc/prometheus/secrets/tally-token/token", token)
    # Debian's Prometheus is built without Kubernetes discovery ("field kubernetes_sd_configs
    # not found"): a static target stands in for it, so that the rest of the job (token,
    # relabelling) is still checked.
    job, n = re.subn(r"    kubernetes_sd_configs:\n(      .*\n)+", "    static_configs:\n      - targets: ['127.0.0.1:1']\n", job)
    if n != 1:
        sys.exit(f"{src}: no kubernetes_sd_configs block in the Kubernetes job")
    text = head + job
open(dest, "w").write(text)
EOF
}
prom_config "$DEPLOY/prometheus/prometheus.yml" "$PROM/prometheus.yml" || fail "cannot make the Prometheus config"
prom_config "$DEPLOY/prometheus/prometheus.yml" "$PROM/k8s.yml" k8s || fail "cannot make the Kubernetes variant"
grep -q 'job_name: tally-pods' "$PROM/k8s.yml" || fail "test bug: the Kubernetes job was not uncommented"
for f in prometheus.yml k8s.yml; do
    promtool check config "$PROM/$f" >"$T/promtool.txt" 2>&1 || fail "promtool check config $f: $(cat "$T/promtool.txt")"
done

step "Prometheus on a free port scrapes the cluster with the token"
# Its log is named *.wlog so that cl_dump_logs shows its tail when the test fails; cl_spawn
# records its process group, which the EXIT trap kills on every way out.
cl_spawn "$CL/prometheus.wlog" "$CL/prometheus.out" prometheus --config.file="$PROM/prometheus.yml" \
    --storage.tsdb.path="$PROM/data" --web.listen-address=127.0.0.1:0 --log.level=info
PROM_PID=$CL_PID
prom_listening() {
    cl_alive "$PROM_PID" || fail "prometheus exited at start: $(tail -n 5 "$CL/prometheus.wlog")"
    grep -q 'msg="Listening on" address=127.0.0.1:[1-9]' "$CL/prometheus.wlog"
}
poll_until 30 "prometheus to listen" prom_listening
URL=http://$(sed -n 's/.*msg="Listening on" address=\(127\.0\.0\.1:[0-9]*\).*/\1/p' "$CL/prometheus.wlog" | head -n 1)
echo "prometheus at $URL (pid $PROM_PID)"
poll_until 30 "prometheus to be ready" curl -sf -o /dev/null "$URL/-/ready"
# prom_until SECONDS WHAT CHECK...: polls `prometheus_check.py URL CHECK...` until it holds; on
# timeout the failure shows what its last try said.
prom_until() {
    local secs=$1 what=$2
    shift 2
    local deadline=$((SECONDS + secs))
    until "${CHECK[@]}" "$URL" "$@" >"$T/check.txt" 2>&1; do
        [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for $what: $(cat "$T/check.txt")"
        sleep 0.1
    done
}
# Prometheus applies new targets at most every 5 s: the first scrapes come that late.
prom_until 20 "the coordinator and both workers to be scraped (up) with the token" up 3
cat "$T/check.txt"

step "a wordcount job, seen by Prometheus once it is done"
cl_submit_ok wordcount -m 20 -r 5 -o "$T/wc" "$DATA/gutenberg"
done_at=$(date +%s.%N)
echo "job $CL_JOB"
# Every target scraped after the end of the job (so each counter has a sample from before it
# and one from after), then every rule group evaluated after those scrapes.
prom_until 20 "a scrape of every target after the job" up 3 "$done_at"
scraped_at=$(date +%s.%N)
prom_until 20 "an evaluation of the rules after that" evaluated "$scraped_at"
"${CHECK[@]}" "$URL" any "job_id:tally_job_tasks_succeeded:ratio{job_id=\"$CL_JOB\"} == 1" >"$T/check.txt" ||
    fail "the recorded completion of job $CL_JOB is not 1: $(cat "$T/check.txt")"

step "every panel query of the dashboard returns data"
"${CHECK[@]}" "$URL" dashboard "$DEPLOY/grafana/tally-dashboard.json" job_id="$CL_JOB" worker=w1 phase=map \
    __rate_interval=1m >"$T/check.txt" 2>&1 || fail "dashboard: $(grep -v '^ok ' "$T/check.txt")"
cat "$T/check.txt"

step "every rule evaluates; recording rules and alert expressions less their comparison return data"
"${CHECK[@]}" "$URL" rules "$DEPLOY/prometheus/rules.yml" >"$T/check.txt" 2>&1 ||
    fail "rules: $(grep -v '^ok ' "$T/check.txt")"
cat "$T/check.txt"
"${CHECK[@]}" "$URL" quiet >"$T/check.txt" || fail "an alert fires on a healthy cluster: $(cat "$T/check.txt")"

step "a restarted worker: TallyWorkerLost fires"
cl_restart_worker w2
prom_until 20 "TallyWorkerLost to fire" firing TallyWorkerLost job=tally-coordinator instance="$CL_COORD"
grep 'TallyWorkerLost firing' "$T/check.txt"

step "Prometheus stops on SIGTERM"
kill -TERM "$PROM_PID"
prom_gone() { ! cl_alive "$PROM_PID"; }
poll_until 20 "prometheus (pid $PROM_PID) to exit" prom_gone
echo "prometheus: all cases passed"
