#!/usr/bin/env bash
# layout.sh - the source tree keeps its layering (docs/design.md, "Layers"): the CLI on top, and
# below it libraries that never include anything of the CLI or of a layer above their own. Each
# folder of src/ may include only the folders listed for it here; a few files cross a line for
# a reason written next to them. Also checks that the check works: a copy of src/ with one
# forbidden include must be refused, naming the file and the header.
. "$(dirname "$0")/lib.sh"

# The folders each folder's files may include (its own always; include/tally, the job API, too).
declare -A ALLOWED=(
    [cli]="cluster exec data net obs common jobs gen"
    [cluster]="exec data net obs common"
    [obs]="net common"
    [exec]="data common"
    [net]="common"
    [data]="common"
    [jobs]="common"
    [gen]="common"
    [common]=""
)
# Known crossings: "FILE HEADER" pairs, each with its reason.
EXCEPTIONS=(
    # `tally run` drives the same executor processes as a worker, through the same pipe format.
    "exec/local.c cluster/execpool.h"
    "exec/local.c cluster/wire.h"
    # Its atomic writes go through ifile_write_all(), where the disk-full fault is injected
    # (TALLY_FAULT_ENOSPC_AFTER).
    "common/fsutil.c data/ifile.h"
)

# check_tree SRC: prints one line per forbidden include in SRC (a copy of src/), "FILE: HEADER".
check_tree() {
    local src=$1 f rel dir hdr top ok a
    while IFS= read -r f; do
        rel=${f#"$src"/}
        dir=${rel%%/*}
        [ -n "${ALLOWED[$dir]+x}" ] || { echo "$rel: a folder layout.sh does not know (add it to ALLOWED)"; continue; }
        while IFS= read -r hdr; do
            top=${hdr%%/*}
            [ "$top" = "$dir" ] || [ "$top" = tally ] && continue
            [ -d "$src/$top" ] || continue # a system header (<sys/stat.h>)
            ok=0
            for a in ${ALLOWED[$dir]}; do [ "$a" = "$top" ] && ok=1; done
            for a in "${EXCEPTIONS[@]}"; do [ "$a" = "$rel $hdr" ] && ok=1; done
            [ "$ok" = 1 ] || echo "$rel: $hdr"
        done < <(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]([a-z_]+\/[^>"]+)[>"].*/\1/p' "$f")
    done < <(find "$src" -name '*.[ch]' | sort)
}

step "src/ keeps its layers"
bad=$(check_tree "$ROOT/src")
[ -z "$bad" ] || fail "includes across the layers (docs/design.md, \"Layers\"):
$bad"
# The rule the layout exists for, on its own: nothing below the CLI includes it.
if grep -rlE '^[[:space:]]*#[[:space:]]*include[[:space:]]*[<"]cli/' "$ROOT/src" | grep -v "^$ROOT/src/cli/"; then
    fail "the files above include src/cli/ headers from below the CLI"
fi

step "the check refuses a library that includes the CLI"
cp -r "$ROOT/src" "$T/src"
n=$(check_tree "$T/src" | wc -l)
[ "$n" = 0 ] || fail "test bug: the copy of src/ already has $n forbidden includes"
sed -i '0,/^#include "/s//#include "cli\/opts.h"\n#include "/' "$T/src/cluster/client.c"
grep -q '^#include "cli/opts.h"' "$T/src/cluster/client.c" || fail "test bug: the include was not planted"
got=$(check_tree "$T/src")
[ "$got" = "cluster/client.c: cli/opts.h" ] || fail "a planted cli/ include in cluster/client.c: expected it named, got: $got"
# And one layer reaching up into another: the data path into the cluster.
echo '#include "cluster/wire.h"' >> "$T/src/data/merge.c"
check_tree "$T/src" | grep -qx 'data/merge.c: cluster/wire.h' || fail "data/ including cluster/ was not refused"

echo "ok: src/ keeps its layers"
