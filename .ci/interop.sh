#!/usr/bin/env bash
# Interop gate: python-kasa (the reference client, from PyPI) must read, switch
# on and switch off our simulated HS100 and one outlet of our simulated HS300,
# and our own `plug ... state --json` must agree after every step.
# Loopback only. Works on a fresh machine: installs python3-venv if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

GATE=interop
# shellcheck source=.ci/interop_common.sh
source .ci/interop_common.sh

# INTEROP_FAULT=stuck (or any --fault KIND) checks that the gate does fail.
start_sim() { # model -> sets SIM_ADDR (no $(...): the pid must reach SIM_PIDS here)
    local model="$1" out="$LOGDIR/sim-$1.out"
    "$BIN" simulate-plug --bind 127.0.0.1:0 --model "$model" ${INTEROP_FAULT:+--fault "$INTEROP_FAULT"} \
        >"$out" 2>"$LOGDIR/sim-$model.err" &
    SIM_PIDS+=("$!")
    for _ in $(seq 1 100); do
        if [ -s "$out" ]; then SIM_ADDR="$(head -n1 "$out")"; return 0; fi
        sleep 0.05
    done
    cat "$LOGDIR/sim-$model.err" >&2
    fail "simulate-plug --model $model did not print its address"
}

kasa_cmd() { # port type args...
    local port="$1" type="$2"; shift 2
    echo "+ kasa --host 127.0.0.1 --port $port --type $type $*"
    if ! timeout 60 "$KASA" --host 127.0.0.1 --port "$port" --type "$type" "$@" >"$LOGDIR/kasa.out" 2>&1; then
        cat "$LOGDIR/kasa.out" >&2
        fail "kasa $* against 127.0.0.1:$port exited non-zero"
    fi
    if grep -qE "Traceback|Error" "$LOGDIR/kasa.out"; then
        cat "$LOGDIR/kasa.out" >&2
        fail "kasa $* printed an error"
    fi
}

expect_state() { # addr want [plug flags...]
    local addr="$1" want="$2"; shift 2
    local got
    got="$("$BIN" plug "$addr" state --json "$@")" || fail "our plug $addr state $* failed"
    if ! echo "$got" | grep -q "\"on\":$want"; then
        fail "after python-kasa's command, $addr $* reads $got, expected on=$want"
    fi
    echo "  ok: $addr $* on=$want"
}

start_sim hs100
HS100="$SIM_ADDR"
start_sim hs300
HS300="$SIM_ADDR"
echo "interop: hs100 at $HS100, hs300 at $HS300"

P=${HS100##*:}
kasa_cmd "$P" plug state
grep -q "HS100" "$LOGDIR/kasa.out" || fail "kasa state does not show the HS100 model"
grep -q "Device state: False" "$LOGDIR/kasa.out" || fail "kasa state does not show the plug off"
expect_state "$HS100" false
kasa_cmd "$P" plug on
expect_state "$HS100" true
kasa_cmd "$P" plug state
grep -q "Device state: True" "$LOGDIR/kasa.out" || fail "kasa state does not show the plug on"
kasa_cmd "$P" plug off
expect_state "$HS100" false

P=${HS300##*:}
kasa_cmd "$P" strip state
grep -q "Plug 6" "$LOGDIR/kasa.out" || fail "kasa state does not list six outlets"
kasa_cmd "$P" strip on --index 2
expect_state "$HS300" true --outlet 2
expect_state "$HS300" false --outlet 1
kasa_cmd "$P" strip off --index 2
expect_state "$HS300" false --outlet 2

echo "interop: python-kasa $PYKASA_VERSION drives the simulated HS100 and HS300: ok"
