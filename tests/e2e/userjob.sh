#!/usr/bin/env bash
# userjob.sh - user jobs loaded from shared objects: the example jobs of build/examples run; the
# test job tests/e2e/jobs/linelen.c exercises the API (options, --job-arg, int and byte values,
# combine, partitioner, job counters, _columns, retries); a wrong ABI or a missing tally_job_def
# is a usage error (exit 2) with a clear message.
. "$(dirname "$0")/lib.sh"

build_linelen linelen
build_linelen linelen_bytes -DLINELEN_BYTES
build_linelen linelen_flaky -DLINELEN_FLAKY
build_linelen linelen_fail -DLINELEN_FAIL
build_linelen bad_abi -DLINELEN_BAD_ABI
build_linelen abi1 -DLINELEN_ABI1
build_linelen no_symbol -DLINELEN_NO_SYMBOL

inputs=("${BOOKS[@]}" "$DATA/edge/crlf.txt")
nlines=$(lines_in "${inputs[@]}")

# parts_follow_partitioner OUT R BUCKET: each key k sits in part (k / BUCKET) mod R.
parts_follow_partitioner() {
    local out=$1 r=$2 bucket=$3 i
    for ((i = 0; i < r; i++)); do
        awk -F'\t' -v r="$r" -v b="$bucket" -v i="$i" 'int(($1 + 0) / b) % r != i { print; bad = 1 } END { exit bad }' \
            "$out/part-$(printf %05d "$i")" || fail "part $i of $out holds keys the job's partitioner puts elsewhere"
    done
}

step "linelen (int values, engine-side sum) with the job option --bucket"
ref linelen --bucket 7 --stats "$T/stats.json" "${inputs[@]}" >"$T/ref7.txt"
empty=$(stat_of "$T/stats.json" empty_lines)
[ "$empty" -gt 0 ] || fail "test bug: the inputs have no empty lines"
while read -r m r; do
    checked_job "$r" --columns 2 --expect input_records="$nlines" --expect map_tasks="$m" \
        --expect linelen_empty_lines="$empty" --expect map_output_records="$nlines" -- \
        "$T/linelen.so" --bucket 7 -m "$m" -r "$r" -o "$T/out" "${inputs[@]}"
    compare "$T/out" "$T/ref7.txt"
    parts_follow_partitioner "$T/out" "$r" 7
    assert_eq "$(cat "$T/out/_columns")" "length	lines" "_columns of linelen"
    rm -rf "$T/out"
done < <(matrix)

step "the short option -b and --job-arg bucket=N reach the job the same way"
ref linelen --bucket 3 "${inputs[@]}" >"$T/ref3.txt"
checked_job 2 --columns 2 -- "$T/linelen.so" -b 3 -r 2 -o "$T/short" "${inputs[@]}"
compare "$T/short" "$T/ref3.txt"
checked_job 2 --columns 2 -- "$T/linelen.so" --job-arg bucket=3 -r 2 -o "$T/jobarg" "${inputs[@]}"
compare "$T/jobarg" "$T/ref3.txt"
ref linelen "${inputs[@]}" >"$T/ref10.txt"
checked_job 1 --columns 2 -- "$T/linelen.so" -o "$T/default" "${inputs[@]}"
compare "$T/default" "$T/ref10.txt"

step "linelen with byte values and a combine callback"
checked_job 3 --columns 2 --expect map_output_records="$nlines" -- \
    "$T/linelen_bytes.so" --bucket 7 -m 5 -r 3 --sort-buffer 64k -o "$T/bytes" "${inputs[@]}"
compare "$T/bytes" "$T/ref7.txt"

step "relative path to the .so (contains '/')"
(cd "$T" && "$TALLY" run ./linelen.so --bucket 7 --work-dir "$WORK" -o "$T/rel" "${inputs[@]}" 2>"$T/stderr") ||
    fail "running ./linelen.so failed: $(tail -3 "$T/stderr")"
compare "$T/rel" "$T/ref7.txt"

step "a failing first attempt is retried and does not count twice"
checked_job 2 --columns 2 --expect task_attempts='>=5' -- "$T/linelen_flaky.so" --bucket 7 -m 3 -r 2 -o "$T/flaky" "${inputs[@]}"
compare "$T/flaky" "$T/ref7.txt"
attempts=$(counter "$T/flaky" task_attempts)
[ "$attempts" -gt 5 ] || fail "task_attempts = $attempts, expected more than 3 maps + 2 reduces after a failure"

step "a job whose map always fails: exit 1, the job's message, no output"
job_fails 1 "$T/linelen_fail.so" -m 2 -o "$T/fail" "${BOOKS[0]}"
assert_stderr_has "failing every map call on purpose"
assert_failed_output "$T/fail"

step "setup rejecting its argument fails the job with the job's message"
job_try "$T/linelen.so" --bucket zero -o "$T/badarg" "${BOOKS[0]}"
[ "$RC" != 0 ] || fail "a job whose setup fails exited 0"
assert_stderr_has "bucket must be a positive integer" "zero"
assert_failed_output "$T/badarg"
assert_workdir_clean

step "a job built for ABI 1 (before fold) still loads and gives the same result"
job_ok "$T/abi1.so" --bucket 7 -m 3 -r 2 -o "$T/abi1" "${inputs[@]}"
compare "$T/abi1" "$T/ref7.txt"

step "wrong ABI version: exit 2, the message says so and names the file"
job_fails 2 "$T/bad_abi.so" -o "$T/abi" "${BOOKS[0]}"
assert_stderr_has "$T/bad_abi.so"
grep -qi 'abi' "$T/stderr" || fail "the message for a wrong ABI does not mention the ABI: $(cat "$T/stderr")"
assert_failed_output "$T/abi"

step "no tally_job_def symbol: exit 2, the message names the symbol"
job_fails 2 "$T/no_symbol.so" -o "$T/nosym" "${BOOKS[0]}"
assert_stderr_has tally_job_def "$T/no_symbol.so"

step "a .so that does not exist or is not a shared object: exit 2"
job_fails 2 "$T/missing.so" -o "$T/missing" "${BOOKS[0]}"
assert_stderr_has "$T/missing.so"
echo "not an ELF file" >"$T/garbage.so"
job_fails 2 "$T/garbage.so" -o "$T/garbage" "${BOOKS[0]}"
assert_stderr_has "$T/garbage.so"
job_fails 2 ./no/such/job -o "$T/missing2" "${BOOKS[0]}"

step "the example jobs in $TALLY_EXAMPLES"
shopt -s nullglob
examples=("$TALLY_EXAMPLES"/*.so)
[ ${#examples[@]} -gt 0 ] || fail "no example jobs in $TALLY_EXAMPLES (make builds build/examples/*.so)"
for so in "${examples[@]}"; do
    name=$(basename "$so" .so)
    if [ -f "$ROOT/tests/e2e/examples/$name.sh" ]; then
        # An example with its own check (arguments, reference) provides it here.
        step "example $name (own check)"
        . "$ROOT/tests/e2e/examples/$name.sh"
    else
        step "example $name on the books"
        checked_job 2 --any-groups -- "$so" -m 3 -r 2 -o "$T/ex-$name" "${BOOKS[@]}"
        [ "$(counter "$T/ex-$name" input_records)" = "$(lines_in "${BOOKS[@]}")" ] ||
            fail "example $name: input_records is not the number of lines"
    fi
done
echo "userjob: all cases passed"
