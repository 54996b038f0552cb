#!/usr/bin/env bash
# grep.sh - `tally run grep -e REGEX` against tests/ref/grep.py (which asks GNU grep -E): keys
# FILE:OFFSET with the path as given, values the line without its terminator.
. "$(dirname "$0")/lib.sh"

nlines=$(lines_in "${BOOKS[@]}")

# grep_case R M REGEX INPUTS...: one run checked against the reference.
grep_case() {
    local m=$1 r=$2 re=$3
    shift 3
    step "grep -e '$re' -m $m -r $r"
    ref grep -e "$re" --stats "$T/stats.json" "$@" >"$T/ref.txt"
    [ -s "$T/ref.txt" ] || [ "$re" = zzqqxxjj ] || fail "test bug: '$re' matches nothing in $*"
    local out=$T/out
    checked_job "$r" --expect map_tasks="$m" --expect input_records="$(stat_of "$T/stats.json" input_records)" \
        --expect map_output_records="$(wc -l <"$T/ref.txt")" --expect records_skipped=0 -- \
        grep -e "$re" -m "$m" -r "$r" -o "$out" "$@"
    compare "$out" "$T/ref.txt"
    rm -rf "$out"
}

# The matrix on one regex with plenty of matches in every book.
while read -r m r; do
    grep_case "$m" "$r" '[Ll]ove|hate' "${BOOKS[@]}"
done < <(matrix)

# ERE features, each at one configuration. The first must match nothing: empty parts.
regexes=('zzqqxxjj' '^$' '[0-9]{4}' '(^| )[Aa][a-z]*ed( |$)' '[[:upper:]]{3,}' '^The ' \
    'Dorian|Gregor|Victor' '\.$' 'a.c' '^[^aeiou]*$')
slow && regexes=("${regexes[@]:0:5}")
for re in "${regexes[@]}"; do
    grep_case 7 2 "$re" "${BOOKS[@]}"
done
ref grep -e zzqqxxjj "${BOOKS[@]}" >"$T/none.txt"
[ ! -s "$T/none.txt" ] || fail "test bug: zzqqxxjj should match nothing"

step "generated text"
gen_ok text --size 2M --seed 4 -o "$T/gen.txt"
grep_case 5 3 '(^| )[a-z]{9,}( |$)' "$T/gen.txt"
grep_case 50 2 '^[a-m]' "$T/gen.txt" "${BOOKS[1]}"

step "paths as given: relative paths stay relative in keys"
(cd "$DATA" && "$TALLY" run grep -e 'Gregor' -r 2 --work-dir "$WORK" -o "$T/rel" gutenberg/pg-metamorphosis.txt) ||
    fail "grep with a relative input path failed"
assert_workdir_clean
check_out "$T/rel" 2
(cd "$DATA" && "$PYTHON" "$REF/grep.py" -e Gregor gutenberg/pg-metamorphosis.txt) >"$T/ref-rel.txt"
compare "$T/rel" "$T/ref-rel.txt"
grep -q '^gutenberg/pg-metamorphosis\.txt:[0-9]*	' "$T/rel/part-00000" "$T/rel/part-00001" ||
    fail "keys should start with the relative path as given"

step "CRLF: values without \\r, offsets of line starts"
job_ok grep -e 'l' -o "$T/crlf" "$DATA/edge/crlf.txt"
check_out "$T/crlf" 1
printf '%s\n' "$DATA/edge/crlf.txt:0	Hello World" "$DATA/edge/crlf.txt:13	hello again" \
    "$DATA/edge/crlf.txt:28	last line, CRLF" >"$T/want-crlf.txt"
compare "$T/crlf" "$T/want-crlf.txt"

step "no final newline: the last line is still a record"
job_ok grep -e 'newline' -o "$T/nofinal" "$DATA/edge/no_final_newline.txt"
printf '%s\n' "$DATA/edge/no_final_newline.txt:11	second line without newline" >"$T/want-nofinal.txt"
compare "$T/nofinal" "$T/want-nofinal.txt"

step "grep on UTF-8 bytes (byte semantics)"
grep_case 2 1 $'\xc3\xa9' "$DATA/edge/utf8.txt"
echo "grep: all cases passed"
