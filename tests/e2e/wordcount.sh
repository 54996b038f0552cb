#!/usr/bin/env bash
# wordcount.sh - `tally run wordcount` against tests/ref/wordcount.py on the Gutenberg books and on
# generated text, over the M x R matrix, with and without --fold-case, checking every invariant.
. "$(dirname "$0")/lib.sh"

step "generate 2 MB of text"
gen_ok text --size 2M --seed 3 -o "$T/gen.txt"
assert_eq "$(wc -c <"$T/gen.txt")" 2097152 "size of tally gen text --size 2M"

# run_matrix NAME FOLD_MATRIX INPUTS...: every (M, R) pair without --fold-case, and with it
# either every pair too (FOLD_MATRIX=full) or the diagonal (FOLD_MATRIX=diagonal), against the
# reference.
run_matrix() {
    local name=$1 fold_matrix=$2
    shift 2
    local nlines nbytes
    nlines=$(lines_in "$@")
    nbytes=$(bytes_in "$@")
    local fold
    for fold in "" --fold-case; do
        ref wordcount $fold --stats "$T/stats.json" "$@" >"$T/ref.txt"
        local total
        total=$(stat_of "$T/stats.json" total)
        local m r
        while read -r m r; do
            step "$name: wordcount $fold -m $m -r $r"
            local out=$T/out-$m-$r
            checked_job "$r" --expect input_records="$nlines" --expect input_bytes="$nbytes" \
                --expect input_files=$# --expect map_tasks="$m" --expect map_output_records="$total" \
                --expect records_skipped=0 -- \
                wordcount $fold -m "$m" -r "$r" -o "$out" "$@"
            compare "$out" "$T/ref.txt"
            rm -rf "$out"
        done < <(if [ -n "$fold" ] && [ "$fold_matrix" = diagonal ]; then TALLY_TEST_SLOW=1 matrix; else matrix; fi)
    done
}

run_matrix books full "${BOOKS[@]}"
run_matrix generated diagonal "$T/gen.txt"

step "--fold-case must change the books' result (else the matrix above proves nothing)"
ref wordcount "${BOOKS[@]}" >"$T/plain.txt"
ref wordcount --fold-case "${BOOKS[@]}" >"$T/folded.txt"
! cmp -s "$T/plain.txt" "$T/folded.txt" || fail "reference gives the same result with --fold-case"

step "UTF-8 words, and --fold-case lowercases ASCII only"
job_ok wordcount --fold-case -o "$T/utf8" "$DATA/edge/utf8.txt"
check_out "$T/utf8" 1
grep -qx $'caf\xc3\xa9\t3' "$T/utf8/part-00000" || fail "expected café 3 (twice café, once Café folded)"
grep -qx $'caf\xc3\x89\t1' "$T/utf8/part-00000" || fail "expected cafÉ 1: only ASCII letters fold"
grep -qx $'\xe6\x9d\xb1\xe4\xba\xac\t1' "$T/utf8/part-00000" || fail "expected the UTF-8 word 東京"
! grep -q '^42' "$T/utf8/part-00000" || fail "digits are not part of words"
ref wordcount --fold-case "$DATA/edge/utf8.txt" >"$T/ref-utf8.txt"
compare "$T/utf8" "$T/ref-utf8.txt"

step "words at every offset of 64-byte blocks: SIMD word masks against the reference"
# Lines of every length from 0 to 300 bytes (64 and 128 included, ending inside a word), words
# of 1 to 90 bytes (longer than the 16 bytes kept inline, longer than a block), ASCII letters
# mixed with digits, punctuation, NULs, tabs, CR and bytes >= 0x80.
python3 - "$T/blocks.txt" <<'PY'
import random, sys
rnd = random.Random(7)
alphabet = b"abcXYZqQ" + bytes(range(0x80, 0x100, 17))
other = b" ,.;0123456789\t\0-@[`{~\x7f\r"
out = bytearray()
for n in list(range(0, 301)) * 3:
    line = bytearray()
    while len(line) < n:
        if rnd.random() < 0.6:
            line += bytes(rnd.choice(alphabet) for _ in range(rnd.choice([1, 2, 3, 7, 8, 9, 15, 16, 17, 33, 64, 65, 90])))
        else:
            line += bytes(rnd.choice(other) for _ in range(rnd.randint(1, 3)))
    out += line[:n] + b"\n"
open(sys.argv[1], "wb").write(bytes(out))
PY
ref wordcount "$T/blocks.txt" >"$T/ref-blocks.txt"
for m in 1 3; do
    job_ok wordcount -m $m -r 2 -o "$T/blocks-$m" "$T/blocks.txt"
    compare "$T/blocks-$m" "$T/ref-blocks.txt"
done

step "default -m and -r: one reduce, correct result"
job_ok wordcount -o "$T/default" "${BOOKS[@]}"
check_out "$T/default" 1 --expect input_records="$(lines_in "${BOOKS[@]}")"
compare "$T/default" "$T/plain.txt"
echo "wordcount: all cases passed"
