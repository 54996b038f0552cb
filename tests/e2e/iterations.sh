#!/usr/bin/env bash
# iterations.sh - iteration runs (--iterations, --keep-iterations, --results) of tally run and
# tally submit: one CSV row per iteration with the exact header, the output of the last (or of
# each) iteration equal to a single plain run, the default file name in a --results directory,
# refusals before anything runs (another header, bad N, a non-empty OUT), and a series that
# stops at a failing iteration or at SIGTERM keeps the rows and the output of the iterations
# that succeeded and leaves nothing of the one that did not.
. "$(dirname "$0")/cluster_lib.sh"

HEADER='iteration,start,total_ms,map_ms,reduce_ms,slowest_attempt_ms,attempts,speculative_attempts,killed_attempts,slowest_worker'

gen_ok readings --shards 5 --rows 2000 -o "$T/readings"
READINGS=("$T"/readings/readings_shard*.csv)
assert_eq "${#READINGS[@]}" 5 "readings shards"
# The smart-plug aggregation of the README, M=10, R=2.
AGG=(aggregate --where 'property==1' --group-by house_id,household_id,plug_id --agg 'count,avg(value)' -m 10 -r 2)

# check_csv FILE ROWS MIN_ATTEMPTS WORKER...: FILE has the exact header and ROWS rows numbered
# 1..ROWS whose numbers parse, whose phases fit in their total time, which ran one after the
# other, with at least MIN_ATTEMPTS attempts each and the slowest attempt on one of WORKER.
check_csv() {
    local file=$1 rows=$2 min=$3
    shift 3
    [ -f "$file" ] || fail "no results file $file"
    assert_eq "$(head -n 1 "$file")" "$HEADER" "header of $file"
    "$PYTHON" - "$file" "$rows" "$min" "$@" <<'EOF' || fail "results file $file is not what it should be (see above)"
import csv, datetime, re, sys
path, rows, least, workers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), set(sys.argv[4:])
with open(path, newline="") as f:
    data = list(csv.reader(f))[1:]
bad = []
if len(data) != rows:
    bad.append(f"{len(data)} rows, expected {rows}")
prev_end = None
for n, r in enumerate(data, 1):
    if len(r) != 10:
        bad.append(f"row {n}: {len(r)} fields")
        continue
    it, start, total, mp, rd, slow, att, spec, killed, worker = r
    try:
        it, total, mp, rd, slow, att, spec, killed = map(int, (it, total, mp, rd, slow, att, spec, killed))
    except ValueError:
        bad.append(f"row {n}: a number does not parse: {r}")
        continue
    if not re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", start):
        bad.append(f"row {n}: start '{start}' is not ISO-8601 UTC with milliseconds")
        continue
    t = datetime.datetime.strptime(start, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc)
    t_ms = t.timestamp() * 1000
    if abs(t_ms / 1000 - datetime.datetime.now(datetime.timezone.utc).timestamp()) > 3600:
        bad.append(f"row {n}: start {start} is not about now")
    if it != n: bad.append(f"row {n}: iteration {it}")
    if total <= 0: bad.append(f"row {n}: total_ms {total}")
    if mp + rd > total + 5: bad.append(f"row {n}: map_ms {mp} + reduce_ms {rd} > total_ms {total} + 5")
    if slow > total + 5: bad.append(f"row {n}: slowest_attempt_ms {slow} > total_ms {total}")
    if att < least: bad.append(f"row {n}: {att} attempts, fewer than {least}")
    if spec < 0 or killed < 0 or spec > att or killed > att: bad.append(f"row {n}: speculative {spec}, killed {killed}")
    if worker not in workers: bad.append(f"row {n}: slowest_worker '{worker}' is none of {sorted(workers)}")
    if prev_end is not None and t_ms + 5 < prev_end:
        bad.append(f"row {n}: started at {start}, before the iteration before it ended")
    prev_end = t_ms + total
for b in bad: print(b)
sys.exit(1 if bad else 0)
EOF
}

# rows_of FILE: the number of rows under the header.
rows_of() { echo $(($(wc -l <"$1") - 1)); }

# same_output OUT REF_OUT: the same part files, byte for byte, and a _SUCCESS.
same_output() {
    [ -e "$1/_SUCCESS" ] || fail "$1/_SUCCESS is missing"
    local p n=0
    for p in "$2"/part-*; do
        cmp -s "$p" "$1/$(basename "$p")" || fail "$1/$(basename "$p") differs from the plain run's $p"
        n=$((n + 1))
    done
    assert_eq "$(cd "$1" && ls part-* | wc -l)" "$n" "part files in $1"
}

# no_temporary OUT: nothing of a claim or a half-done commit is left in OUT.
no_temporary() {
    [ ! -e "$1/_temporary" ] || fail "$1/_temporary left: $(ls -A "$1/_temporary")"
    ! compgen -G "$1/.tally-*" >/dev/null || fail "claim staging left in $1"
}

step "a plain run, the answer every iteration must give"
job_ok "${AGG[@]}" -o "$T/plain" "${READINGS[@]}"
[ -s "$T/plain/part-00000" ] || fail "test bug: the plain run's output is empty"

step "run --iterations 3 --results F.csv: 3 rows, the output of a plain run"
job_ok "${AGG[@]}" --iterations 3 --results "$T/f.csv" -o "$T/it" "${READINGS[@]}"
check_csv "$T/f.csv" 3 12 local
same_output "$T/it" "$T/plain"
no_temporary "$T/it"
for i in 1 2 3; do
    grep -qE "^tally: iteration $i/3: [0-9]+ ms \(map [0-9]+ ms, reduce [0-9]+ ms\)$" "$T/stderr" ||
        fail "no line for iteration $i/3 on stderr"
done

step "a second series appends to F.csv (one header), and -q prints no line per iteration"
job_ok "${AGG[@]}" -q --overwrite --iterations 2 --results "$T/f.csv" -o "$T/it" "${READINGS[@]}"
assert_eq "$(grep -c '^iteration,' "$T/f.csv")" 1 "header lines in the appended file"
assert_eq "$(rows_of "$T/f.csv")" 5 "rows after appending a series of 2"
assert_eq "$(sed -n '5p;6p' "$T/f.csv" | cut -d, -f1 | tr '\n' ' ')" "1 2 " "iteration numbers of the appended rows"
! grep -q '^tally: iteration' "$T/stderr" || fail "-q still printed iteration lines"
same_output "$T/it" "$T/plain"

step "an empty results file gets the header; TALLY_ITERATIONS sets N"
: >"$T/empty.csv"
TALLY_ITERATIONS=2 job_ok "${AGG[@]}" --results "$T/empty.csv" -o "$T/env" "${READINGS[@]}"
check_csv "$T/empty.csv" 2 12 local

step "--keep-iterations: OUT/iter-0001..0003, each a complete output equal to a plain run"
job_ok "${AGG[@]}" --iterations 3 --keep-iterations -o "$T/keep" "${READINGS[@]}"
assert_eq "$(ls -A "$T/keep" | tr '\n' ' ')" "iter-0001 iter-0002 iter-0003 " "entries of OUT"
for i in 1 2 3; do
    same_output "$T/keep/iter-000$i" "$T/plain"
    no_temporary "$T/keep/iter-000$i"
done
job_fails 2 "${AGG[@]}" --iterations 2 --keep-iterations -o "$T/keep" "${READINGS[@]}"
assert_stderr_has "$T/keep: output directory is not empty"
[ ! -e "$T/keep/iter-0001/_temporary" ] || fail "a refused series touched $T/keep"

step "--results DIR: DIR/results_M10_R2_iters2_YYYYMMDD_HHMMSS.csv, named on stderr"
mkdir "$T/resdir"
job_ok "${AGG[@]}" --iterations 2 --results "$T/resdir" -o "$T/rd" "${READINGS[@]}"
files=("$T"/resdir/*)
assert_eq "${#files[@]}" 1 "files in the --results directory"
name=$(basename "${files[0]}")
[[ $name =~ ^results_M10_R2_iters2_[0-9]{8}_[0-9]{6}\.csv$ ]] || fail "unexpected results file name '$name'"
assert_stderr_has "${files[0]}"
check_csv "${files[0]}" 2 12 local

step "a results file with another header is refused before anything runs"
printf 'iteration,start,total_ms\n1,x,3\n' >"$T/other.csv"
cp "$T/other.csv" "$T/other.orig"
job_fails 2 "${AGG[@]}" --iterations 3 --results "$T/other.csv" -o "$T/refused" "${READINGS[@]}"
assert_stderr_has "$T/other.csv" "another header"
cmp -s "$T/other.csv" "$T/other.orig" || fail "the refused results file was changed"
[ ! -e "$T/refused" ] || fail "a refused series created its OUT"

step "bad --iterations values are usage errors"
for n in 0 1000001 abc -1; do
    job_fails 2 "${AGG[@]}" --iterations "$n" -o "$T/bad-n" "${READINGS[@]}"
    assert_stderr_has "--iterations"
    [ ! -e "$T/bad-n" ] || fail "--iterations $n created OUT"
done
job_ok "${AGG[@]}" --iterations 1000000 --help >/dev/null # the upper bound itself is accepted

step "a series whose first iteration fails: exit 1, no output, a CSV without rows"
mkdir -p "$T/gz"
gzip -c "${READINGS[0]}" >"$T/gz/ok.txt.gz"
head -c $(($(wc -c <"$T/gz/ok.txt.gz") / 2)) "$T/gz/ok.txt.gz" >"$T/gz/cut.txt.gz"
job_fails 1 wordcount --iterations 3 --results "$T/fail1.csv" -o "$T/fail1" "$T/gz/cut.txt.gz"
assert_stderr_has "stopped at iteration 1 of 3"
assert_failed_output "$T/fail1"
[ ! -e "$T/fail1" ] || fail "a series that failed at once left its OUT: $(ls -A "$T/fail1")"
assert_eq "$(cat "$T/fail1.csv")" "$HEADER" "results file of a series that failed at once"
job_fails 1 wordcount --iterations 3 --keep-iterations -o "$T/fail1k" "$T/gz/cut.txt.gz"
[ ! -e "$T/fail1k" ] || fail "a --keep-iterations series that failed at once left its OUT: $(ls -A "$T/fail1k")"

step "a series whose second iteration fails keeps the first's row and output, and nothing of the second"
build_linelen linelen_fail_at -DLINELEN_FAIL_AT
BOOK=${BOOKS[0]}
job_ok "$T/linelen_fail_at.so" -m 1 -r 2 --job-arg fail_file="$T/count0" -o "$T/ll-plain" "$BOOK"
job_fails 1 "$T/linelen_fail_at.so" -m 1 -r 2 --max-attempts 1 --job-arg fail_file="$T/count1" --job-arg fail_at=2 \
    --iterations 3 --results "$T/fail2.csv" -o "$T/fail2" "$BOOK"
assert_stderr_has "failing run 2 on purpose" "stopped at iteration 2 of 3"
check_csv "$T/fail2.csv" 1 3 local
same_output "$T/fail2" "$T/ll-plain" # iteration 1's output, put back after iteration 2 failed
no_temporary "$T/fail2"
job_fails 1 "$T/linelen_fail_at.so" -m 1 -r 2 --max-attempts 1 --job-arg fail_file="$T/count2" --job-arg fail_at=2 \
    --iterations 3 --keep-iterations -o "$T/fail2k" "$BOOK"
assert_eq "$(ls -A "$T/fail2k" | tr '\n' ' ')" "iter-0001 " "entries of OUT after iteration 2 failed"
same_output "$T/fail2k/iter-0001" "$T/ll-plain"

step "SIGTERM during a series: exit 130, the rows so far kept, OUT holds the last committed iteration"
build_linelen linelen_slow -DLINELEN_SLOW
SLOW_IN=("${BOOKS[@]:0:2}")
job_ok "$T/linelen_slow.so" -m 2 -o "$T/slow-plain" "${SLOW_IN[@]}"
"$TALLY" run "$T/linelen_slow.so" -m 2 --iterations 50 --results "$T/term.csv" --work-dir "$WORK" -o "$T/term" \
    "${SLOW_IN[@]}" >"$T/term.out" 2>"$T/term.err" &
pid=$!
BG_PIDS+=("$pid")
two_started() { [ -s "$T/term.csv" ] && [ "$(rows_of "$T/term.csv")" -ge 1 ] && [ -e "$T/term/_temporary/_owner" ]; }
poll_until 60 "iteration 1 to write its row and iteration 2 to claim OUT" two_started
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
assert_eq "$rc" 130 "exit status after SIGTERM"
rows=$(rows_of "$T/term.csv")
[ "$rows" -ge 1 ] && [ "$rows" -lt 50 ] || fail "$rows rows after SIGTERM, expected 1 to 49"
check_csv "$T/term.csv" "$rows" 3 local
same_output "$T/term" "$T/slow-plain"
no_temporary "$T/term"
assert_workdir_clean

# ---- tally submit -------------------------------------------------------------------------------

JOB_TIMEOUT=60
cl_start_coordinator --heartbeat-ms 100 --worker-timeout-ms 15000
cl_start_worker w1 --slots 2
cl_start_worker w2 --slots 2

step "submit --iterations 3 --results F.csv: 3 rows naming a worker, 3 jobs, the output of a plain run"
cl_submit "${AGG[@]}" --iterations 3 --results "$T/c.csv" -o "$T/cout" "${READINGS[@]}"
[ "$RC" = 0 ] || fail "submit exited $RC: $LAST_CMD"
check_csv "$T/c.csv" 3 12 w1 w2
same_output "$T/cout" "$T/plain"
no_temporary "$T/cout"
assert_eq "$(grep -c '^tally: job .* succeeded' "$T/stdout")" 3 "jobs that submit saw succeed"
cl_q 'sum(x["state"] == "succeeded" and x["out"] == a[0] for x in d["jobs"]) == 3' "$T/cout" >/dev/null ||
    fail "the coordinator does not list 3 succeeded jobs on $T/cout"

step "submit --keep-iterations --iterations 2: OUT/iter-0001 and iter-0002"
cl_submit "${AGG[@]}" --iterations 2 --keep-iterations -o "$T/ckeep" "${READINGS[@]}"
[ "$RC" = 0 ] || fail "submit exited $RC: $LAST_CMD"
assert_eq "$(ls -A "$T/ckeep" | tr '\n' ' ')" "iter-0001 iter-0002 " "entries of OUT"
same_output "$T/ckeep/iter-0001" "$T/plain"
same_output "$T/ckeep/iter-0002" "$T/plain"

step "SIGTERM during a submitted series: the running iteration's job is cancelled, OUT holds the one before"
"$TALLY" submit --coordinator "$CL_COORD" --token-file "$CL_TOKEN_FILE" "$T/linelen_slow.so" -m 2 --iterations 5 \
    --results "$T/cterm.csv" -o "$T/cterm" "${SLOW_IN[@]}" >"$T/cterm.out" 2>"$T/cterm.err" &
pid=$!
BG_PIDS+=("$pid")
second_running() {
    [ -s "$T/cterm.csv" ] && [ "$(rows_of "$T/cterm.csv")" -ge 1 ] &&
        cl_q 'any(x["state"] == "running" and x["out"] == a[0] for x in d["jobs"])' "$T/cterm" >/dev/null
}
poll_until 60 "iteration 1 to write its row and iteration 2's job to run" second_running
kill -TERM "$pid"
rc=0
wait "$pid" || rc=$?
assert_eq "$rc" 130 "exit status of submit after SIGTERM"
grep -q "interrupted: cancelled job" "$T/cterm.err" || fail "submit did not cancel the running job: $(cat "$T/cterm.err")"
cl_until 20 "no job on $T/cterm running" 'not any(x["state"] in ("queued", "running") and x["out"] == a[0] for x in d["jobs"])' "$T/cterm"
cl_q 'sum(x["state"] == "cancelled" and x["out"] == a[0] for x in d["jobs"]) == 1' "$T/cterm" >/dev/null ||
    fail "the interrupted iteration's job was not cancelled"
rows=$(rows_of "$T/cterm.csv")
[ "$rows" -ge 1 ] && [ "$rows" -lt 5 ] || fail "$rows rows after SIGTERM, expected 1 to 4"
check_csv "$T/cterm.csv" "$rows" 3 w1 w2
same_output "$T/cterm" "$T/slow-plain"
no_temporary "$T/cterm"

step "submit: a failing job stops the series with exit 1; --detach does not go with a series"
cl_submit wordcount --iterations 3 --results "$T/cfail.csv" -o "$T/cfail" "$T/gz/cut.txt.gz"
assert_eq "$RC" 1 "exit of a submitted series whose job fails"
assert_eq "$(cat "$T/cfail.csv")" "$HEADER" "results file of a submitted series that failed at once"
assert_failed_output "$T/cfail"
cl_submit --detach "${AGG[@]}" --iterations 2 -o "$T/cdetach" "${READINGS[@]}"
assert_eq "$RC" 2 "exit of submit --detach --iterations 2"
assert_stderr_has "--detach"
[ ! -e "$T/cdetach" ] || fail "a refused submit created its OUT"
