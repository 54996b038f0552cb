#!/usr/bin/env bash
# splits.sh - how input is cut and found: every record exactly once for any number of splits
# (including more splits than lines and more than bytes), CRLF, no final newline, CSV records
# whose quoted fields hold newlines, .gz, directories, globs, and a previous job's OUT as input.
. "$(dirname "$0")/lib.sh"

# A file with every awkward line shape: empty lines, CRLF, a CR inside a line, long and short
# lines, and no final newline.
{
    printf 'alpha beta\n\n\ngamma\r\ndelta epsilon\r\n\r\nzeta'
    printf ' eta%.0s' $(seq 1 200)
    printf '\nx\ny\rz\n'
    for i in $(seq 1 40); do printf 'line %d of %s\n' "$i" "$(printf 'w%.0s' $(seq 1 "$i"))"; done
    printf 'the end, no newline'
} >"$T/shapes.txt"
size=$(wc -c <"$T/shapes.txt")
nlines=$(lines_in "$T/shapes.txt")
ref grep -e '^' "$T/shapes.txt" >"$T/ref-all.txt"
assert_eq "$(wc -l <"$T/ref-all.txt")" "$nlines" "test bug: reference grep '^' lines"

# grep '^' emits every record with its offset: any lost, doubled or shifted record shows.
if slow; then
    ms="1 2 3 5 8 13 21 34 $nlines $((nlines + 1)) $size"
else
    ms="$(seq 1 40) $nlines $((nlines + 1)) $((size / 2)) $((size - 1)) $size $((size + 3)) $((size * 2))"
fi
for m in $ms; do
    step "grep '^' -m $m on a $size-byte file of $nlines lines"
    checked_job 2 --expect map_tasks="$m" --expect input_records="$nlines" --expect map_output_records="$nlines" -- \
        grep -e '^' -m "$m" -r 2 -o "$T/out" "$T/shapes.txt"
    compare "$T/out" "$T/ref-all.txt"
    rm -rf "$T/out"
done

step "M larger than the number of lines: wordcount on a 2-line file with -m 50"
ref wordcount "$DATA/edge/no_final_newline.txt" >"$T/ref-nf.txt"
checked_job 3 --expect map_tasks=50 --expect input_records=2 -- \
    wordcount -m 50 -r 3 -o "$T/nf" "$DATA/edge/no_final_newline.txt"
compare "$T/nf" "$T/ref-nf.txt"

step "CRLF file split at every byte"
crlf=$DATA/edge/crlf.txt
ref grep -e '^' "$crlf" >"$T/ref-crlf.txt"
for m in 1 2 3 7 $(wc -c <"$crlf"); do
    checked_job 1 --expect map_tasks="$m" --expect input_records=4 -- grep -e '^' -m "$m" -o "$T/crlf-$m" "$crlf"
    compare "$T/crlf-$m" "$T/ref-crlf.txt"
done
! grep -q $'\r' "$T/crlf-1/part-00000" || fail "a value kept the \\r of its CRLF terminator"

step ".gz input gives the plain result"
mkdir -p "$T/gz"
cp "${BOOKS[0]}" "${BOOKS[1]}" "$T/gz/"
gzip -k "$T/gz/$(basename "${BOOKS[0]}")" "$T/gz/$(basename "${BOOKS[1]}")"
plain=("$T/gz/$(basename "${BOOKS[0]}")" "$T/gz/$(basename "${BOOKS[1]}")")
gz=("${plain[0]}.gz" "${plain[1]}.gz")
ref wordcount "${plain[@]}" >"$T/ref-gz.txt"
checked_job 2 --expect input_records="$(lines_in "${plain[@]}")" --expect map_tasks=2 -- \
    wordcount -r 2 -o "$T/gzout" "${gz[@]}"
compare "$T/gzout" "$T/ref-gz.txt"
# Offsets in a .gz file are offsets in the decompressed text: the same as in the plain file.
ref grep -e 'Gregor|Algernon' "${plain[0]}" | sed "s|^${plain[0]}:|${gz[0]}:|" >"$T/ref-gzgrep.txt"
job_ok grep -e 'Gregor|Algernon' -m 4 -o "$T/gzgrep" "${gz[0]}"
compare "$T/gzgrep" "$T/ref-gzgrep.txt"
# -m counts the splits of the splittable (plain) input: with only .gz files there is none, so
# one map task per .gz file and no empty ones.
checked_job 1 --expect map_tasks=1 --expect input_records="$(lines_in "${plain[0]}")" -- \
    wordcount -m 20 -o "$T/gz-m20" "${gz[0]}"
checked_job 1 --expect map_tasks=2 -- wordcount -m 20 -o "$T/gz2-m20" "${gz[@]}"
compare "$T/gz2-m20" "$T/ref-gz.txt"
# Mixed: -m 3 cuts the plain file into 3 splits; each .gz file adds one.
checked_job 1 --expect map_tasks=5 -- wordcount -m 3 -o "$T/mixed" "${plain[0]}" "${gz[1]}" "${BOOKS[2]}" "$T/gz/$(basename "${BOOKS[0]}").gz"
ref wordcount "${plain[0]}" "${plain[1]}" "${BOOKS[2]}" "${plain[0]}" >"$T/ref-mixed.txt"
compare "$T/mixed" "$T/ref-mixed.txt"

step "CSV records with quoted newlines, commas, \"\" and CRLF: the reference's result for every M"
# multiline.csv has a quoted field with a comma and a newline, fields that are only newlines,
# "" escapes next to newlines, CRLF inside quotes and as terminators, group names with commas
# and quotes, bad records, and no final newline; M runs past its number of records and bytes,
# so a split edge falls on every byte.
ml=$DATA/edge/multiline.csv
ref aggregate --group-by group --agg 'count,sum(value)' --stats "$T/ml-stats.json" "$ml" >"$T/ref-ml.txt"
ml_records=$(stat_of "$T/ml-stats.json" input_records)
ml_skipped=$(stat_of "$T/ml-stats.json" records_skipped)
assert_eq "$ml_records" 15 "test bug: records the reference finds in multiline.csv"
ml_size=$(wc -c <"$ml")
if slow; then
    ms="1 2 5 16 $ml_size"
else
    ms="$(seq 1 40) $ml_size"
fi
for m in $ms; do
    checked_job 2 --key-fields 1 --columns 3 --expect map_tasks="$m" --expect input_records="$ml_records" \
        --expect records_skipped="$ml_skipped" -- \
        aggregate --group-by group --agg 'count,sum(value)' --max-skipped-ratio 1 -m "$m" -r 2 -o "$T/ml-$m" "$ml"
    compare "$T/ml-$m" "$T/ref-ml.txt" --key-fields 1
    rm -rf "$T/ml-$m"
done

step "a generated CSV with multi-line quoted fields, plain and .gz, for several M"
"$PYTHON" - "$T/quoted.csv" <<'PY'
import random, sys
rnd = random.Random(14)
pieces = ["word", "two words", ",", "\n", "\r\n", '""', "a, b", "\n\n", " "]
with open(sys.argv[1], "w", newline="") as f:
    f.write('id,group,"the\ntext",value\r\n')  # the header is a record too
    for i in range(30000):
        group = rnd.choice(["g1", '"g,2"', '"g ""3"""', "g4"])
        if rnd.random() < 0.5:
            text = '"' + "".join(rnd.choice(pieces) for _ in range(rnd.randrange(6))) + '"'
        else:
            text = "plain%d" % rnd.randrange(100)
        f.write("%d,%s,%s,%d%s" % (i, group, text, rnd.randrange(1000), rnd.choice(["\n", "\r\n"])))
PY
ref aggregate --group-by group --agg 'count,sum(value),max(id)' --stats "$T/q-stats.json" "$T/quoted.csv" >"$T/ref-q.txt"
assert_eq "$(stat_of "$T/q-stats.json" input_records)" 30000 "test bug: records the reference finds in quoted.csv"
assert_eq "$(stat_of "$T/q-stats.json" records_skipped)" 0 "test bug: skipped records in quoted.csv"
gzip -c "$T/quoted.csv" >"$T/quoted-gz.csv.gz"
for m in 1 2 3 7 16 50; do
    checked_job 2 --key-fields 1 --columns 4 --expect map_tasks="$m" --expect input_records=30000 \
        --expect records_skipped=0 -- \
        aggregate --group-by group --agg 'count,sum(value),max(id)' -m "$m" -r 2 -o "$T/q-$m" "$T/quoted.csv"
    compare "$T/q-$m" "$T/ref-q.txt" --key-fields 1
    rm -rf "$T/q-$m"
done
checked_job 1 --key-fields 1 --columns 4 --expect map_tasks=1 --expect input_records=30000 -- \
    aggregate --group-by group --agg 'count,sum(value),max(id)' -m 5 -o "$T/q-gz" "$T/quoted-gz.csv.gz"
compare "$T/q-gz" "$T/ref-q.txt" --key-fields 1

step "directory input: every regular file below it, recursively"
mkdir -p "$T/dir/a/b" "$T/dir/c"
cp "${BOOKS[0]}" "$T/dir/"
cp "${BOOKS[1]}" "$T/dir/a/"
cp "$DATA/edge/crlf.txt" "$T/dir/a/b/"
cp "$DATA/edge/utf8.txt" "$T/dir/c/"
cp "$DATA/edge/empty.txt" "$T/dir/c/"
ref index "$T/dir" >"$T/ref-dir.txt"
grep -q "$T/dir/a/b/crlf.txt" "$T/ref-dir.txt" || fail "test bug: reference index did not walk the dir"
checked_job 2 --expect input_files=5 -- index -m 4 -r 2 -o "$T/dirout" "$T/dir"
compare "$T/dirout" "$T/ref-dir.txt"
# A directory and a file together.
ref wordcount "$T/dir" "${BOOKS[3]}" >"$T/ref-dir2.txt"
checked_job 1 --expect input_files=6 -- wordcount -o "$T/dirout2" "$T/dir" "${BOOKS[3]}"
compare "$T/dirout2" "$T/ref-dir2.txt"

step "glob input (quoted, expanded by tally) equals the shell's expansion"
ref grep -e 'Gregor|Earnest' "$T"/dir/*.txt "$T"/dir/a/*.txt >"$T/ref-glob.txt"
[ -s "$T/ref-glob.txt" ] || fail "test bug: the glob reference is empty"
checked_job 2 --expect input_files=2 -- grep -e 'Gregor|Earnest' -r 2 -o "$T/globout" "$T/dir/*.txt" "$T/dir/a/*.txt"
compare "$T/globout" "$T/ref-glob.txt"
checked_job 1 --expect input_files=3 -- wordcount -o "$T/globout2" "$T/dir/[ac]/*.txt"
ref wordcount "$T"/dir/[ac]/*.txt >"$T/ref-glob2.txt"
compare "$T/globout2" "$T/ref-glob2.txt"

step "a previous job's OUT as input: _SUCCESS, _counters.json are skipped"
checked_job 1 --expect input_files=2 -- wordcount -o "$T/again" "$T/dirout"
ref wordcount "$T"/dirout/part-* >"$T/ref-again.txt"
compare "$T/again" "$T/ref-again.txt"
echo "splits: all cases passed"
