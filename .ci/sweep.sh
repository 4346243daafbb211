#!/usr/bin/env bash
# The fixture sweep: every device python-kasa has recorded (the fixtures of
# its PyPI sdist, fetched and cached under target/, never copied here) is
# served by `simulate-plug --fixture` over the transport its recording names
# (legacy XOR, KLAP, AES) and driven by our own `plug` command as a user
# would: `state`, `on`, `off` (and for strips and multi-gang switches the
# first and last outlet), every switch checked on the simulated device
# itself. Plugs, strips and wall switches must switch and verify; bulbs,
# light strips, hubs, sensors and vacuums must give one clear "no relay"
# line at once. Any other outcome (a parse error on a real reply, a wrong
# state, a panic, a hang) fails the sweep.
#
#   .ci/sweep.sh                 all recordings, 8 at a time
#   SWEEP_JOBS=2 .ci/sweep.sh    fewer at a time
#   .ci/sweep.sh 'P110*' 'HS300*'   only recordings whose file name matches
#
# Prints a table (fixture, kind, protocol, outcome, detail) and a summary by
# outcome and protocol. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."

# Mostly waiting on sockets (the 20002 probe of legacy devices): 8 at a time
# is fine on 2 cores.
JOBS="${SWEEP_JOBS:-8}"
export BIN="${SWEEP_BIN:-target/debug/kasa-thermostat}"
WORK="$(mktemp -d)"
export WORK
trap 'rm -rf "$WORK"' EXIT

FIXTURES="$(.ci/sweep/fetch_fixtures.sh)"
[ -n "${SWEEP_BIN:-}" ] || cargo build --quiet --bin kasa-thermostat

files=()
for f in "$FIXTURES"/iot/*.json "$FIXTURES"/smart/*.json; do
    if [ "$#" -eq 0 ]; then
        files+=("$f")
    else
        for pat in "$@"; do
            # shellcheck disable=SC2053
            if [[ "$(basename "$f")" == $pat ]]; then files+=("$f"); break; fi
        done
    fi
done
[ "${#files[@]}" -gt 0 ] || { echo "sweep: no fixture matches $*" >&2; exit 1; }

python3 .ci/sweep/classify.py "${files[@]}" >"$WORK/plan.tsv"
start=$(date +%s)
# One recording per job; rows come back in any order, sorted below. ($1 is
# the inner shell's: the single quotes are meant.)
# shellcheck disable=SC2016
tr '\n' '\0' <"$WORK/plan.tsv" \
    | xargs -0 -P "$JOBS" -I{} bash -c 'printf "%s\n" "$1" | .ci/sweep/run_one.sh' _ {} \
    >"$WORK/rows.tsv"
took=$(( $(date +%s) - start ))

sort -t$'\t' -k1,1 "$WORK/rows.tsv" >"$WORK/sorted.tsv"
{
    printf 'FIXTURE\tKIND\tPROTOCOL\tOUTCOME\tDETAIL\n'
    cat "$WORK/sorted.tsv"
} | column -t -s$'\t'

echo
echo "sweep: ${#files[@]} recordings in ${took} s; outcomes by protocol:"
awk -F'\t' '{n[$4" "$3]++} END {for (k in n) printf "  %-20s %d\n", k, n[k]}' "$WORK/sorted.tsv" | sort
echo "sweep: switched, by kind:"
awk -F'\t' '$4=="switched" {n[$2]++} END {for (k in n) printf "  %-8s %d\n", k, n[k]}' "$WORK/sorted.tsv" | sort
plugs_strips=$(awk -F'\t' '$4=="switched" && ($2=="plug" || $2=="strip")' "$WORK/sorted.tsv" | wc -l)
planned=$(awk -F'\t' '$2=="plug" || $2=="strip"' "$WORK/plan.tsv" | wc -l)
echo "sweep: plug and strip recordings switched and verified: $plugs_strips of $planned"

rows=$(wc -l <"$WORK/sorted.tsv")
if [ "$rows" -ne "${#files[@]}" ]; then
    echo "sweep: FAIL: ${#files[@]} recordings but $rows rows (a run died without a verdict)" >&2
    exit 1
fi
if grep -q $'\tWRONG\t' "$WORK/sorted.tsv"; then
    echo "sweep: FAIL: wrong outcomes:" >&2
    grep $'\tWRONG\t' "$WORK/sorted.tsv" >&2
    exit 1
fi
echo "sweep: ok"
