#!/usr/bin/env bash
# aggregate.sh - `tally run aggregate` against tests/ref/aggregate.py on generated readings (CSV)
# and inferences (JSON Lines): the two command lines of the spec, the M x R matrix, every
# aggregate, WHERE with and/or/parentheses, dotted JSON names, .gz and --format; mistakes that
# would skip every record (a misspelt field, an unquoted string) are refused, and a job that
# skips more than --max-skipped-ratio of its records fails.
. "$(dirname "$0")/lib.sh"

gen_ok readings --shards 5 --rows 2000 -o "$T/readings"
gen_ok inferences --shards 3 --rows 2000 -o "$T/inferences"
READINGS=("$T"/readings/readings_shard*.csv)
INFERENCES=("$T"/inferences/*.jsonl)
assert_eq "${#READINGS[@]}" 5 "readings shards"
assert_eq "${#INFERENCES[@]}" 3 "inference shards"
assert_eq "$(head -n 1 "${READINGS[0]}")" "id,timestamp,value,property,plug_id,household_id,house_id" \
    "readings header"

# agg_case R NGROUP NAGG [outcheck options] -- JOB ARGS (with -o $T/out) -- REF ARGS: runs the
# job, checks the invariants and compares with the reference (numbers within tolerance).
agg_case() {
    local r=$1 ng=$2 na=$3
    shift 3
    local -a checks=() job=() refargs=()
    while [ "$1" != "--" ]; do checks+=("$1"); shift; done
    shift
    while [ "$1" != "--" ]; do job+=("$1"); shift; done
    shift
    refargs=("$@")
    step "aggregate ${job[*]}"
    ref aggregate --stats "$T/stats.json" "${refargs[@]}" >"$T/ref.txt"
    [ -s "$T/ref.txt" ] || fail "test bug: the reference output is empty for ${refargs[*]}"
    checked_job "$r" --key-fields "$ng" --columns $((ng + na)) \
        --expect input_records="$(stat_of "$T/stats.json" input_records)" \
        --expect records_skipped="$(stat_of "$T/stats.json" records_skipped)" "${checks[@]}" -- \
        aggregate "${job[@]}"
    compare "$T/out" "$T/ref.txt" --key-fields "$ng"
    rm -rf "$T/out"
}

# 1. The first command line of the spec: per-producer error counts and ratios.
AGG1='count_if(ground_truth!=inferred),count,ratio_if(ground_truth!=inferred)'
agg_case 1 1 3 -- --group-by producer_id --agg "$AGG1" -o "$T/out" "${INFERENCES[@]}" -- \
    --group-by producer_id --agg "$AGG1" "${INFERENCES[@]}"
ref aggregate --group-by producer_id --agg "$AGG1" "${INFERENCES[@]}" >"$T/producers.txt"
assert_eq "$(wc -l <"$T/producers.txt")" 10 "producers in the reference"

# 2. The second command line of the spec, and the same over the whole M x R matrix.
AGG2='count,avg(value),min(value),max(value)'
agg_case 2 3 4 --expect map_tasks=10 -- --where 'property==1' --group-by house_id,household_id,plug_id \
    --agg "$AGG2" -m 10 -r 2 -o "$T/out" "$T"/readings/readings_shard*.csv -- \
    --where 'property==1' --group-by house_id,household_id,plug_id --agg "$AGG2" "${READINGS[@]}"
while read -r m r; do
    agg_case "$r" 3 4 --expect map_tasks="$m" -- --where 'property==1' \
        --group-by house_id,household_id,plug_id --agg "$AGG2" -m "$m" -r "$r" -o "$T/out" "${READINGS[@]}" -- \
        --where 'property==1' --group-by house_id,household_id,plug_id --agg "$AGG2" "${READINGS[@]}"
done < <(matrix)

# 3. The glob form of the spec's first command line, given to tally unexpanded.
agg_case 1 1 3 -- --group-by producer_id --agg "$AGG1" -o "$T/out" "$T/inferences/*.jsonl" -- \
    --group-by producer_id --agg "$AGG1" "${INFERENCES[@]}"

# 4. Every aggregate, integer and fractional inputs, dotted names, two group fields.
AGG4='count,sum(latency_ms),avg(latency_ms),min(latency_ms),max(latency_ms),sum(confidence),min(confidence),max(confidence),avg(confidence)'
agg_case 3 2 9 -- --group-by meta.model,meta.version --agg "$AGG4" -m 4 -r 3 -o "$T/out" "${INFERENCES[@]}" -- \
    --group-by meta.model,meta.version --agg "$AGG4" "${INFERENCES[@]}"

# 5. WHERE with and/or/parentheses, string and number literals, field-to-field comparison.
W5='confidence>=0.5 and (ground_truth=="cat" or inferred=="dog") and latency_ms<100'
agg_case 2 1 2 -- --where "$W5" --group-by inferred --agg 'count,avg(confidence)' -m 3 -r 2 -o "$T/out" \
    "${INFERENCES[@]}" -- --where "$W5" --group-by inferred --agg 'count,avg(confidence)' "${INFERENCES[@]}"
W6='(property==0 or value>1000) and house_id<=4 and plug_id!=household_id'
agg_case 2 1 5 -- --where "$W6" --group-by house_id --agg 'count,sum(value),count_if(value>100),ratio_if(property==0),max(value)' \
    -m 5 -r 2 -o "$T/out" "${READINGS[@]}" -- \
    --where "$W6" --group-by house_id --agg 'count,sum(value),count_if(value>100),ratio_if(property==0),max(value)' \
    "${READINGS[@]}"

# 6. Integer sums stay integers, and string comparison where a side is not a number.
agg_case 1 1 3 -- --where 'ground_truth>="d"' --group-by ground_truth \
    --agg 'sum(meta.version),min(meta.version),count_if(producer_id<"producer-05")' -o "$T/out" "${INFERENCES[@]}" -- \
    --where 'ground_truth>="d"' --group-by ground_truth \
    --agg 'sum(meta.version),min(meta.version),count_if(producer_id<"producer-05")' "${INFERENCES[@]}"

# 7. .gz input equals plain input (CSV header read from the decompressed stream).
mkdir -p "$T/gz"
cp "${READINGS[0]}" "${READINGS[1]}" "$T/gz/"
gzip "$T/gz/readings_shard0.csv"
agg_case 1 1 2 -- --group-by plug_id --agg 'count,sum(value)' -o "$T/out" "$T/gz/readings_shard0.csv.gz" \
    "$T/gz/readings_shard1.csv" -- --group-by plug_id --agg 'count,sum(value)' "${READINGS[0]}" "${READINGS[1]}"

# 8. --format overrides the name: CSV and JSON Lines in .txt files.
cp "${READINGS[2]}" "$T/readings2.txt"
cp "${INFERENCES[1]}" "$T/inferences1.txt"
agg_case 1 1 1 -- --group-by property --agg count --format csv -o "$T/out" "$T/readings2.txt" -- \
    --group-by property --agg count --format csv "$T/readings2.txt"
agg_case 1 1 1 -- --group-by meta.model --agg count --format jsonl -o "$T/out" "$T/inferences1.txt" -- \
    --group-by meta.model --agg count --format jsonl "$T/inferences1.txt"

# 9. CRLF CSV: the \r is not part of the last field.
agg_case 1 1 2 -- --group-by k --agg 'sum(v),max(v)' -o "$T/out" "$DATA/edge/crlf.csv" -- \
    --group-by k --agg 'sum(v),max(v)' "$DATA/edge/crlf.csv"
grep -qx $'a\t4\t3' "$T/ref.txt" || fail "test bug: the reference should give a<TAB>4<TAB>3 for crlf.csv"

step "_columns names the group fields"
job_ok aggregate --group-by producer_id --agg count -o "$T/cols" "${INFERENCES[0]}"
head -n 1 "$T/cols/_columns" | grep -q '^producer_id	' || fail "_columns should start with producer_id<TAB>: $(cat "$T/cols/_columns")"
step "a field no input has is refused before the job runs (exit 2), naming it and the fields there are"
job_fails 2 aggregate --group-by prodcer_id --agg count -o "$T/typo" "${READINGS[@]}"
assert_stderr_has "'prodcer_id'" "--group-by" "readings_shard0.csv" "household_id, house_id"
[ ! -e "$T/typo" ] || fail "a refused job created its OUT"
job_fails 2 aggregate --group-by producer_id --agg 'avg(confidance)' -o "$T/typo" "${INFERENCES[@]}"
assert_stderr_has "'confidance'" "--agg" "producer_id" "confidence"
job_fails 2 aggregate --where 'producer_id==producer-01' --group-by producer_id --agg count -o "$T/typo" \
    "${INFERENCES[@]}"
assert_stderr_has "'producer-01'" "quote it" "'producer-01'"
job_fails 2 aggregate --where 'meta.modle=="vit_b16"' --group-by producer_id --agg count -o "$T/typo" "${INFERENCES[@]}"
assert_stderr_has "'meta.modle'"
job_fails 2 aggregate --group-by house_id --agg 'count_if(propety==1)' -o "$T/typo" "${READINGS[@]}"
assert_stderr_has "'propety'"
# The same command lines written right run; a single = means ==, as the README says.
job_ok aggregate --where 'producer_id=="producer-01"' --group-by producer_id --agg count -o "$T/quoted" "${INFERENCES[@]}"
job_ok aggregate --where "producer_id='producer-01'" --group-by producer_id --agg count -o "$T/single-eq" "${INFERENCES[@]}"
cmp "$T/quoted/part-00000" "$T/single-eq/part-00000" || fail "= and == gave different results"
assert_eq "$(cut -f1 "$T/quoted/part-00000")" "producer-01" "the group of the quoted comparison"
# A JSON key that is present but null in every probed record exists: the job runs (and skips
# those records, null being absent to the job).
printf '{"k":"a","opt":null}\n{"k":"b","opt":null}\n' >"$T/nulls.jsonl"
job_ok aggregate --group-by k --agg 'count_if(opt==1)' --max-skipped-ratio 1 -o "$T/nulls" "$T/nulls.jsonl"
assert_eq "$(counter "$T/nulls" records_skipped)" 2 "records skipped for a null field"

step "more than --max-skipped-ratio of the records skipped fails the job, naming the first"
job_fails 1 aggregate --group-by producer_id --agg 'avg(producer_id)' -o "$T/skips" "${INFERENCES[@]}"
assert_stderr_has "max-skipped-ratio" "6000 of 6000" "not a number"
assert_failed_output "$T/skips"
job_ok aggregate --group-by producer_id --agg 'avg(producer_id)' --max-skipped-ratio 1 -o "$T/skips" "${INFERENCES[@]}"
assert_eq "$(counter "$T/skips" records_skipped)" 6000 "records_skipped with --max-skipped-ratio 1"
# Below the limit: 3 bad records of 2003 are skipped and counted, the job succeeds.
{ cat "${INFERENCES[0]}"; printf '{"producer_id":"x","confidence":"high"}\n%.0s' 1 2 3; } >"$T/few-bad.jsonl"
job_ok aggregate --group-by producer_id --agg 'avg(confidence)' -o "$T/fewbad" "$T/few-bad.jsonl"
assert_eq "$(counter "$T/fewbad" records_skipped)" 3 "records_skipped below the limit"
job_fails 2 aggregate --group-by producer_id --agg count --max-skipped-ratio 1.5 -o "$T/u" "${INFERENCES[0]}"
assert_stderr_has "--max-skipped-ratio"

echo "aggregate: all cases passed"
