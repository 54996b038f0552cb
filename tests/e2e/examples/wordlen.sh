# wordlen.sh - the check of the example job examples/wordlen.c, sourced by userjob.sh with $so
# set to the built .so: its word-length histogram against tests/ref/wordlen.py.
for min in 1 3; do
    ref wordlen --min $min --stats "$T/stats.json" "${BOOKS[@]}" "$DATA/edge/utf8.txt" >"$T/ref-wordlen.txt"
    short=$(stat_of "$T/stats.json" short_words)
    expect_short=()
    [ "$short" = 0 ] || expect_short=(--expect wordlen_short_words="$short")
    while read -r m r; do
        checked_job "$r" --expect map_tasks="$m" "${expect_short[@]}" -- \
            "$so" --job-arg min=$min -m "$m" -r "$r" -o "$T/wordlen" "${BOOKS[@]}" "$DATA/edge/utf8.txt"
        compare "$T/wordlen" "$T/ref-wordlen.txt"
        rm -rf "$T/wordlen"
    done < <(matrix)
done
job_try "$so" --job-arg min=zero -o "$T/wordlen-bad" "${BOOKS[0]}"
[ "$RC" != 0 ] || fail "wordlen accepted --job-arg min=zero"
assert_stderr_has "min=" "zero"
assert_failed_output "$T/wordlen-bad"
