#!/usr/bin/env bash
# index.sh - `tally run index` against tests/ref/index.py: word -> `N doc1,doc2,...` with the
# paths as given, byte-sorted; on the books over the M x R matrix, on generated text and edges.
. "$(dirname "$0")/lib.sh"

gen_ok text --size 1M --seed 5 -o "$T/gen-a.txt"
gen_ok text --size 1M --seed 6 --unique -o "$T/gen-b.txt"

ref index --stats "$T/stats.json" "${BOOKS[@]}" >"$T/ref.txt"
nlines=$(lines_in "${BOOKS[@]}")
while read -r m r; do
    step "index -m $m -r $r on the books"
    checked_job "$r" --expect map_tasks="$m" --expect input_records="$nlines" \
        --expect input_files=${#BOOKS[@]} --expect records_skipped=0 -- \
        index -m "$m" -r "$r" -o "$T/out" "${BOOKS[@]}"
    compare "$T/out" "$T/ref.txt"
    rm -rf "$T/out"
done < <(matrix)

# The reference must contain words in one, some and all books, or the test proves little.
for n in 1 2 4; do
    grep -q "	$n " "$T/ref.txt" || fail "test bug: no word in exactly $n books"
done

step "index on generated text and the edge files, files given in reverse order"
inputs=("$T/gen-b.txt" "$T/gen-a.txt" "$DATA/edge/utf8.txt" "$DATA/edge/crlf.txt"
    "$DATA/edge/empty.txt" "$DATA/edge/no_final_newline.txt")
ref index "${inputs[@]}" >"$T/ref-gen.txt"
checked_job 3 --expect map_tasks=5 --expect input_files=6 -- index -m 5 -r 3 -o "$T/gen" "${inputs[@]}"
compare "$T/gen" "$T/ref-gen.txt"

step "relative paths are kept as given"
(cd "$DATA" && "$TALLY" run index -r 2 --work-dir "$WORK" -o "$T/rel" edge/crlf.txt edge/utf8.txt) ||
    fail "index with relative input paths failed"
assert_workdir_clean
check_out "$T/rel" 2
(cd "$DATA" && "$PYTHON" "$REF/index.py" edge/crlf.txt edge/utf8.txt) >"$T/ref-rel.txt"
compare "$T/rel" "$T/ref-rel.txt"
cat "$T"/rel/part-* | grep -q '^line	1 edge/crlf.txt$' || fail "expected 'line<TAB>1 edge/crlf.txt'"
echo "index: all cases passed"
