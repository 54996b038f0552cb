#!/usr/bin/env bash
# spill.sh - a tiny --sort-buffer forces map-side spills and merges; results must not change.
. "$(dirname "$0")/lib.sh"
# 3 MB must not take minutes however small the buffer: a spill per record would.
if slow; then JOB_TIMEOUT=150; else JOB_TIMEOUT=60; fi

gen_ok text --unique --size 3M --seed 11 -o "$T/unique.txt"
nlines=$(lines_in "$T/unique.txt")

step "wordcount, --sort-buffer 64k, one map task holding all 3 MB"
ref wordcount --stats "$T/stats.json" "$T/unique.txt" >"$T/ref-wc.txt"
total=$(stat_of "$T/stats.json" total)
# --unique must really give many distinct words, or nothing would spill.
[ "$(wc -l <"$T/ref-wc.txt")" -gt 50000 ] || fail "test bug: gen text --unique gave only $(wc -l <"$T/ref-wc.txt") distinct words"
if slow; then pairs=("1 1" "3 2"); else pairs=("1 1" "1 4" "3 2"); fi
for mr in "${pairs[@]}"; do
    read -r m r <<<"$mr"
    checked_job "$r" --expect map_tasks="$m" --expect input_records="$nlines" --expect map_output_records="$total" \
        --expect spilled_records='>0' -- \
        wordcount --sort-buffer 64k -m "$m" -r "$r" -o "$T/wc-$m-$r" "$T/unique.txt"
    compare "$T/wc-$m-$r" "$T/ref-wc.txt"
    spilled=$(counter "$T/wc-$m-$r" spilled_records)
    shuffled=$(counter "$T/wc-$m-$r" reduce_input_records)
    echo "spilled_records=$spilled reduce_input_records=$shuffled map_output_records=$(counter "$T/wc-$m-$r" map_output_records)"
    # Every map writes its final output once (counted as spilled); only a real spill under the
    # small buffer writes records more than once.
    [ "$spilled" -gt "$shuffled" ] ||
        fail "--sort-buffer 64k did not spill: spilled_records $spilled <= reduce_input_records $shuffled"
done

step "the same job with the default buffer: same result, no more spilling than with 64k"
checked_job 1 -- wordcount -m 1 -o "$T/wc-big" "$T/unique.txt"
compare "$T/wc-big" "$T/ref-wc.txt"
# 3 MB fits the default 64 MiB buffer: each record is written exactly once.
[ "$(counter "$T/wc-big" spilled_records)" -eq "$(counter "$T/wc-big" reduce_input_records)" ] ||
    fail "the default buffer spilled: spilled_records $(counter "$T/wc-big" spilled_records) != reduce_input_records $(counter "$T/wc-big" reduce_input_records)"
[ "$(counter "$T/wc-big" spilled_records)" -le "$(counter "$T/wc-1-1" spilled_records)" ] ||
    fail "spilled_records with the default buffer ($(counter "$T/wc-big" spilled_records)) exceeds that with --sort-buffer 64k ($(counter "$T/wc-1-1" spilled_records))"

step "byte values spill too: index and grep with --sort-buffer 64k"
ref index "$T/unique.txt" "${BOOKS[0]}" >"$T/ref-ix.txt"
checked_job 3 --expect spilled_records='>0' -- index --sort-buffer 64k -m 2 -r 3 -o "$T/ix" "$T/unique.txt" "${BOOKS[0]}"
compare "$T/ix" "$T/ref-ix.txt"
ref grep -e '^' "$T/unique.txt" >"$T/ref-grep.txt"
checked_job 2 --expect spilled_records='>0' --expect output_records="$nlines" -- \
    grep -e '^' --sort-buffer 64k -m 1 -r 2 -o "$T/grep" "$T/unique.txt"
compare "$T/grep" "$T/ref-grep.txt"

step "aggregate with --sort-buffer 64k"
gen_ok readings --shards 2 --rows 20000 -o "$T/readings"
ref aggregate --group-by id --agg 'count,sum(value)' "$T"/readings/*.csv >"$T/ref-agg.txt"
checked_job 2 --key-fields 1 --columns 3 --expect spilled_records='>0' -- \
    aggregate --group-by id --agg 'count,sum(value)' --sort-buffer 64k -m 2 -r 2 -o "$T/agg" "$T"/readings/*.csv
compare "$T/agg" "$T/ref-agg.txt" --key-fields 1
echo "spill: all cases passed"
