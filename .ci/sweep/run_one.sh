#!/usr/bin/env bash
# One row of the fixture sweep: serves one python-kasa recording with
# `simulate-plug --fixture` and drives it with our own `plug` command as a
# user would. Reads one line of .ci/sweep/classify.py output on stdin
# (path kind protocol outlets family model); prints one tab-separated row:
#     name  kind  protocol  outcome  detail
# outcome: switched | no-relay | WRONG (a wrong failure: a parse error on a
# real reply, a wrong state, a panic, a hang). Uses $BIN and $WORK.
set -uo pipefail

IFS=$'\t' read -r path kind protocol outlets family model
name="$(basename "$path" .json)"
tag="$(printf '%s' "$name" | tr -c 'A-Za-z0-9_.-' '_')"
dir="$WORK/$tag"
mkdir -p "$dir"
# Each device is bound to an account; our CLI reads the same variables.
export KASA_USERNAME="sweep@example.com" KASA_PASSWORD="sweep secret"

row() { printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$kind" "$protocol" "$1" "$2"; }

"$BIN" simulate-plug --bind 127.0.0.1:0 --fixture "$path" \
    --username "$KASA_USERNAME" --password "$KASA_PASSWORD" \
    --transitions "$dir/transitions.jsonl" >"$dir/sim.out" 2>"$dir/sim.err" &
sim=$!
trap 'kill "$sim" 2>/dev/null; wait "$sim" 2>/dev/null' EXIT
addr=""
for _ in $(seq 1 200); do
    if [ -s "$dir/sim.out" ]; then addr="$(head -n1 "$dir/sim.out")"; break; fi
    kill -0 "$sim" 2>/dev/null || break
    sleep 0.05
done
if [ -z "$addr" ]; then
    row WRONG "simulate-plug did not start: $(tr '\n' ' ' <"$dir/sim.err" | cut -c1-200)"
    exit 0
fi

# Runs `plug ADDR ARGS...` (bounded: a hang is a wrong failure); sets OUT,
# ERR, RC. Any panic anywhere is a wrong failure.
N=0
plug() {
    N=$((N + 1))
    timeout 30 "$BIN" plug "$addr" "$@" >"$dir/$N.out" 2>"$dir/$N.err"
    RC=$?
    OUT="$(cat "$dir/$N.out")"
    ERR="$(cat "$dir/$N.err")"
    if [ "$RC" -eq 124 ]; then
        row WRONG "hang: plug $* (killed after 30 s)"
        exit 0
    fi
    if grep -q "panicked" "$dir/$N.err" "$dir/sim.err"; then
        row WRONG "panic: plug $*: $(tr '\n' ' ' <"$dir/$N.err" | cut -c1-200)"
        exit 0
    fi
}
wrong() { row WRONG "$1: rc=$RC out=${OUT:0:120} err=${ERR:0:200}"; exit 0; }

# The relay of outlet $1 (or of the plug, "null") in the simulator's own
# record must end $2: the device really switched, whatever we print. The
# simulator writes its record every 20 ms: wait for it, up to 2 s.
device_says() {
    local want="$2" last
    for _ in $(seq 1 40); do
        last="$(grep -F "\"outlet\":$1," "$dir/transitions.jsonl" 2>/dev/null | tail -n1)"
        [[ "$last" == *"\"on\":$want"* ]] && return 0
        sleep 0.05
    done
    return 1
}

# One verified switch: `plug on|off [--outlet N]`, checked on the device.
switch() { # on|off outlet-index-or-empty
    local o=() idx="null" want=false
    if [ -n "$2" ]; then o=(--outlet "$2"); idx="$2"; fi
    [ "$1" = on ] && want=true
    plug "$1" "${o[@]}"
    if ! { [ "$RC" -eq 0 ] && [[ "$OUT" == *": $1 (verified)"* ]]; }; then
        wrong "$1 ${o[*]}"
    fi
    device_says "$idx" "$want" || wrong "$1 ${o[*]}: the device did not switch $1"
    plug state "${o[@]}" --json
    if ! { [ "$RC" -eq 0 ] && [[ "$OUT" == *"\"on\":$want"* ]]; }; then
        wrong "state after $1 ${o[*]}"
    fi
}

# state with --protocol P, then on and off with auto (off, on, off when
# the recording has the relay on), each checked on the device.
cycle() { # outlet-index-or-empty
    local o=()
    if [ -n "$1" ]; then o=(--outlet "$1"); fi
    plug state "${o[@]}" --protocol "$protocol" --json
    [ "$RC" -eq 0 ] || wrong "state ${o[*]} --protocol $protocol failed"
    if [[ "$OUT" == *'"on":true'* ]]; then
        switch off "$1"
    fi
    switch on "$1"
    switch off "$1"
}

case "$kind" in
    plug | strip | switch)
        if [ "$outlets" -gt 0 ]; then
            # Without an outlet: one line that says how many there are.
            plug state
            if ! { [ "$RC" -eq 1 ] && [[ "$ERR" == *"with $outlets outlets"* ]]; }; then
                wrong "state without --outlet"
            fi
            cycle 0
            cycle $((outlets - 1))
            row switched "outlets 0 and $((outlets - 1)) of $outlets"
        else
            cycle ""
            row switched "${model} (${family})"
        fi
        ;;
    norelay)
        plug state --protocol "$protocol"
        if ! { [ "$RC" -eq 1 ] && [[ "$ERR" == *"has no relay"* ]]; }; then
            wrong "state on a device with no relay"
        fi
        [ "$(printf '%s\n' "$ERR" | wc -l)" -eq 1 ] || wrong "more than one line"
        said="${ERR##*: }"
        plug on
        if ! { [ "$RC" -eq 1 ] && [[ "$ERR" == *"has no relay"* ]] && [[ "$ERR" == *"not retried"* ]]; }; then
            wrong "on on a device with no relay"
        fi
        [ ! -s "$dir/transitions.jsonl" ] || wrong "a device with no relay switched"
        plug sysinfo --json
        [ "$RC" -eq 0 ] || wrong "sysinfo on a device with no relay"
        row no-relay "${said:0:90}"
        ;;
    *)
        row skipped "not an iot or smart device recording"
        ;;
esac
