#!/usr/bin/env bash
# errors.sh - the command line's contract for mistakes: usage errors (a bad option, a missing
# input, an unusable OUT) exit 2 with a message that points at the culprit and leave no part
# file or _SUCCESS; a non-empty OUT is refused unless --overwrite; --help answers everywhere.
. "$(dirname "$0")/lib.sh"

BOOK=${BOOKS[0]}
gen_ok readings --shards 1 --rows 200 -o "$T/readings"
CSV=$T/readings/readings_shard0.csv

# usage CULPRIT ARGS...: `tally run ARGS...` must exit 2 and mention CULPRIT (if non-empty); no
# output directory may appear.
usage() {
    local culprit=$1
    shift
    job_fails 2 "$@"
    [ -z "$culprit" ] || assert_stderr_has "$culprit"
    [ ! -e "$T/u" ] || [ -z "$(ls -A "$T/u")" ] || fail "a usage error wrote into OUT: $(ls -A "$T/u")"
    rm -rf "$T/u"
}

step "usage errors: jobs, options, values"
tally_try run
[ "$RC" = 2 ] || fail "'tally run' without arguments: expected exit 2, got $RC"
tally_try frobnicate
[ "$RC" = 2 ] || fail "'tally frobnicate' (unknown command): expected exit 2, got $RC"
usage nosuchjob nosuchjob -o "$T/u" "$BOOK"
usage --frobnicate wordcount --frobnicate -o "$T/u" "$BOOK"
usage --no-such-job-option wordcount --no-such-job-option -o "$T/u" "$BOOK"
usage "" wordcount "$BOOK"                       # no -o
job_fails 2 wordcount -o "$T/u"                  # no INPUT
rm -rf "$T/u"
usage "" wordcount -m 0 -o "$T/u" "$BOOK"
usage abc wordcount -m abc -o "$T/u" "$BOOK"
usage "" wordcount -r 0 -o "$T/u" "$BOOK"
usage "" wordcount -r -1 -o "$T/u" "$BOOK"
usage 12Q wordcount --sort-buffer 12Q -o "$T/u" "$BOOK"
usage lots wordcount --max-record lots -o "$T/u" "$BOOK"
usage xml wordcount --format xml -o "$T/u" "$BOOK"
usage "" wordcount -m -o "$T/u" "$BOOK"
usage "" grep -o "$T/u" "$BOOK"                  # grep needs -e
usage "" grep -e '(' -o "$T/u" "$BOOK"           # not a valid ERE
usage "" grep -e 'a{1' -o "$T/u" "$BOOK"

step "usage errors: aggregate's --group-by, --agg and --where"
usage "" aggregate --agg count -o "$T/u" "$CSV"               # no --group-by
usage "" aggregate --group-by house_id -o "$T/u" "$CSV"       # no --agg
usage median aggregate --group-by house_id --agg 'count,median(value)' -o "$T/u" "$CSV"
usage "avg(value" aggregate --group-by house_id --agg 'count,avg(value' -o "$T/u" "$CSV"
usage "sum()" aggregate --group-by house_id --agg 'sum()' -o "$T/u" "$CSV"
usage "" aggregate --group-by house_id --agg '' -o "$T/u" "$CSV"
usage "" aggregate --group-by house_id --agg 'count,,count' -o "$T/u" "$CSV"
usage "count_if" aggregate --group-by house_id --agg 'count_if(value>)' -o "$T/u" "$CSV"
usage xor aggregate --where 'property==1 xor value>2' --group-by house_id --agg count -o "$T/u" "$CSV"
usage "=>" aggregate --where 'property => 1' --group-by house_id --agg count -o "$T/u" "$CSV"
usage "" aggregate --where 'property==' --group-by house_id --agg count -o "$T/u" "$CSV"
usage "" aggregate --where '(property==1' --group-by house_id --agg count -o "$T/u" "$CSV"
usage "" aggregate --where 'property==1)' --group-by house_id --agg count -o "$T/u" "$CSV"
usage "" aggregate --where 'property==1 and' --group-by house_id --agg count -o "$T/u" "$CSV"
usage "" aggregate --where '' --group-by house_id --agg count -o "$T/u" "$CSV"
usage "" aggregate --where 'property==1' --group-by '' --agg count -o "$T/u" "$CSV"

step "every documented option is accepted together"
ref wordcount --fold-case "$BOOK" >"$T/ref-opts.txt"
job_ok wordcount --fold-case -m 2 -r 3 -w 1 --format text --sort-buffer 1M --max-record 1M --strict \
    --quiet -o "$T/opts" "$BOOK"
check_out "$T/opts" 3 --expect map_tasks=2
compare "$T/opts" "$T/ref-opts.txt"

step "a missing input is a usage error (exit 2) that names the path"
job_fails 2 wordcount -o "$T/f1" "$BOOK" "$T/no/such/file.txt"
assert_stderr_has "$T/no/such/file.txt"
assert_failed_output "$T/f1"
[ ! -e "$T/f1" ] || fail "a refused job created its OUT $T/f1"
job_fails 2 wordcount -o "$T/f1b" "$T/nothing-matches-*.txt"
assert_stderr_has "$T/nothing-matches-*.txt"
assert_failed_output "$T/f1b"

if [ "$(id -u)" != 0 ]; then
    step "an unreadable input fails the job and names the path"
    cp "$BOOK" "$T/secret.txt"
    chmod 000 "$T/secret.txt"
    job_fails 2 wordcount -o "$T/f2" "$T/secret.txt"
    assert_stderr_has "$T/secret.txt"
    assert_failed_output "$T/f2"
else
    echo "(running as root: the unreadable-input case cannot be made, skipped)"
fi

step "a directory with no files is a usage error"
mkdir -p "$T/emptydir/sub/deeper"
job_fails 2 wordcount -o "$T/f3" "$T/emptydir"
assert_stderr_has "$T/emptydir"
assert_failed_output "$T/f3"

step "a non-empty OUT is refused and left alone; --overwrite replaces it"
mkdir -p "$T/full"
echo precious >"$T/full/keep.txt"
job_fails 2 wordcount -o "$T/full" "$BOOK"
assert_stderr_has "$T/full"
assert_eq "$(cat "$T/full/keep.txt")" precious "OUT content after a refused run"
assert_failed_output "$T/full"
ref wordcount "$BOOK" >"$T/ref.txt"
job_ok wordcount --overwrite -r 5 -o "$T/full" "$BOOK"
check_out "$T/full" 5
compare "$T/full" "$T/ref.txt"
# An earlier run's OUT with more parts: a rerun with -r 2 must leave exactly 2 parts.
job_fails 2 wordcount -r 2 -o "$T/full" "$BOOK"
check_out "$T/full" 5
job_ok wordcount --overwrite -r 2 -o "$T/full" "$BOOK"
check_out "$T/full" 2
compare "$T/full" "$T/ref.txt"

step "an existing empty OUT is fine"
mkdir -p "$T/emptyout"
job_ok wordcount -o "$T/emptyout" "$BOOK"
check_out "$T/emptyout" 1
compare "$T/emptyout" "$T/ref.txt"

step "--help answers for run and for each job; options may come before the job"
tally_try run --help
[ "$RC" = 0 ] || fail "tally run --help: exit $RC"
grep -q 'tally run JOB --help' "$T/stdout" || fail "tally run --help does not say that tally run JOB --help lists a job's options"
for job in wordcount grep index aggregate; do
    tally_try run "$job" --help
    [ "$RC" = 0 ] || fail "tally run $job --help: exit $RC"
    grep -q -- '--sort-buffer' "$T/stdout" || fail "tally run $job --help does not list the engine options"
done
tally_try run grep --help
grep -q -- '-e, --regex' "$T/stdout" || grep -q -- '-e,' "$T/stdout" || fail "tally run grep --help does not list grep's -e"
job_ok -q -m 2 wordcount -o "$T/before" "$BOOK"
compare "$T/before" "$T/ref.txt"
usage --frobnicate --frobnicate wordcount -o "$T/u" "$BOOK"
usage "after its name" --regex x grep -o "$T/u" "$BOOK" # a job option before the job's name

step "--log-level debug shows the plan and every attempt; the default shows none of it"
job_ok --log-level debug wordcount -m 2 -o "$T/debug" "$BOOK"
assert_stderr_has "2 map tasks, 1 reduce task," "task=m00000 attempt=a0 assigned" "task=r00000 attempt=a2 succeeded" \
    "executor DEBUG" "committed 1 part(s)"
job_ok wordcount -m 2 -o "$T/nodebug" "$BOOK"
! grep -q DEBUG "$T/stderr" || fail "DEBUG lines without --log-level debug"

echo "errors: all cases passed"
