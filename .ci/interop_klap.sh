#!/usr/bin/env bash
# Interop gate for KLAP: python-kasa (the reference client, from PyPI), given
# credentials, must read and switch our simulated Tapo P110, one outlet of our
# simulated P300 strip and our simulated HS100(UK) hw 4.1 (legacy JSON inside
# KLAP v1), and must fail with its authentication error on a wrong password.
# Our own CLI (`plug ... --protocol klap`) must agree after every step.
# Loopback only. Works on a fresh machine: installs python3-venv if missing.
set -euo pipefail
cd "$(dirname "$0")/.."

# The account the simulated devices are bound to. python-kasa and our CLI
# both read these variables.
export KASA_USERNAME="interop@example.com"
export KASA_PASSWORD="klap interop secret"
GATE=interop-klap
# shellcheck source=.ci/interop_common.sh
source .ci/interop_common.sh

# INTEROP_FAULT=badsig (or any --fault KIND) checks that the gate does fail.
start_sim() { # model -> sets SIM_ADDR (no $(...): the pid must reach SIM_PIDS here)
    local model="$1" out="$LOGDIR/sim-$1.out"
    "$BIN" simulate-plug --bind 127.0.0.1:0 --model "$model" \
        --username "$KASA_USERNAME" --password "$KASA_PASSWORD" \
        ${INTEROP_FAULT:+--fault "$INTEROP_FAULT"} \
        >"$out" 2>"$LOGDIR/sim-$model.err" &
    SIM_PIDS+=("$!")
    for _ in $(seq 1 100); do
        if [ -s "$out" ]; then SIM_ADDR="$(head -n1 "$out")"; return 0; fi
        sleep 0.05
    done
    cat "$LOGDIR/sim-$model.err" >&2
    fail "simulate-plug --model $model did not print its address"
}

# python-kasa's connection flags for each simulated family.
# shellcheck disable=SC2034 # used through namerefs (kasa_cmd)
SMART_FLAGS=(--type smart)                                    # SMART.TAPOPLUG, KLAP v2
# shellcheck disable=SC2034
IOT_KLAP_FLAGS=(--device-family IOT.SMARTPLUGSWITCH --encrypt-type KLAP --login-version 1)

kasa_cmd() { # port flags-array-name args...
    local port="$1" flags="$2"; shift 2
    local -n f="$flags"
    echo "+ kasa --host 127.0.0.1 --port $port ${f[*]} $*"
    if ! timeout 60 "$KASA" --host 127.0.0.1 --port "$port" "${f[@]}" "$@" >"$LOGDIR/kasa.out" 2>&1; then
        cat "$LOGDIR/kasa.out" >&2
        fail "kasa $* against 127.0.0.1:$port exited non-zero"
    fi
    if grep -qE "Traceback|Error" "$LOGDIR/kasa.out"; then
        cat "$LOGDIR/kasa.out" >&2
        fail "kasa $* printed an error"
    fi
}

expect_kasa_state() { # want (True/False)
    grep -q "Device state: $1" "$LOGDIR/kasa.out" \
        || { cat "$LOGDIR/kasa.out" >&2; fail "python-kasa does not read the device as $1"; }
    echo "  ok: python-kasa reads $1"
}

# Our side: the same simulators through our CLI.
expect_ours() { # addr want [plug flags...]
    local addr="$1" want="$2"; shift 2
    local got
    got="$("$BIN" plug "$addr" state --json --protocol klap "$@")" || fail "our plug $addr state $* failed"
    echo "$got" | grep -q "\"on\":$want" || fail "after python-kasa's command, $addr $* reads $got, expected on=$want"
    echo "  ok: ours reads $addr $* on=$want"
}

start_sim p110
P110="$SIM_ADDR"
start_sim p300
P300="$SIM_ADDR"
start_sim hs100-klap
HS100="$SIM_ADDR"
echo "interop-klap: p110 at $P110, p300 at $P300, hs100-klap at $HS100"

# --- Tapo P110 (SMART over KLAP v2)
P=${P110##*:}
kasa_cmd "$P" SMART_FLAGS state
grep -q "P110" "$LOGDIR/kasa.out" || fail "kasa state does not show the P110 model"
expect_kasa_state False
expect_ours "$P110" false
kasa_cmd "$P" SMART_FLAGS on
kasa_cmd "$P" SMART_FLAGS state
expect_kasa_state True
expect_ours "$P110" true
kasa_cmd "$P" SMART_FLAGS off
kasa_cmd "$P" SMART_FLAGS state
expect_kasa_state False
expect_ours "$P110" false

# --- Tapo P300 strip: one outlet through control_child
P=${P300##*:}
kasa_cmd "$P" SMART_FLAGS state
grep -q "Plug 3" "$LOGDIR/kasa.out" || fail "kasa state does not list three outlets"
kasa_cmd "$P" SMART_FLAGS on --index 1
kasa_cmd "$P" SMART_FLAGS state --index 1
expect_kasa_state True
kasa_cmd "$P" SMART_FLAGS state --index 0
expect_kasa_state False
expect_ours "$P300" true --outlet 1
expect_ours "$P300" false --outlet 0
kasa_cmd "$P" SMART_FLAGS off --index 1
kasa_cmd "$P" SMART_FLAGS state --index 1
expect_kasa_state False
expect_ours "$P300" false --outlet 1

# --- HS100(UK) hw 4.1: legacy JSON inside KLAP v1
P=${HS100##*:}
kasa_cmd "$P" IOT_KLAP_FLAGS state
grep -q "HS100" "$LOGDIR/kasa.out" || fail "kasa state does not show the HS100 model"
expect_kasa_state False
kasa_cmd "$P" IOT_KLAP_FLAGS on
kasa_cmd "$P" IOT_KLAP_FLAGS state
expect_kasa_state True
expect_ours "$HS100" true
kasa_cmd "$P" IOT_KLAP_FLAGS off
kasa_cmd "$P" IOT_KLAP_FLAGS state
expect_kasa_state False
expect_ours "$HS100" false

# --- a wrong password: python-kasa's authentication error, exit non-zero
expect_auth_error() { # addr flags-array-name
    local addr="$1" port=${1##*:}
    local -n f="$2"
    echo "+ kasa --host 127.0.0.1 --port $port ${f[*]} --password <wrong> state"
    if timeout 60 "$KASA" --host 127.0.0.1 --port "$port" "${f[@]}" \
        --username "$KASA_USERNAME" --password "not the password" state >"$LOGDIR/kasa.out" 2>&1; then
        cat "$LOGDIR/kasa.out" >&2
        fail "python-kasa accepted a wrong password on $addr"
    fi
    grep -q "check that your e-mail and password" "$LOGDIR/kasa.out" \
        || { cat "$LOGDIR/kasa.out" >&2; fail "python-kasa did not fail with its authentication error on $addr"; }
    echo "  ok: python-kasa refuses the wrong password on $addr"
}
expect_auth_error "$P110" SMART_FLAGS
expect_auth_error "$HS100" IOT_KLAP_FLAGS

# --- our CLI switches each device, python-kasa reads the result
ours_switch() { # addr on|off want-kasa flags-array-name [outlet]
    local addr="$1" action="$2" want="$3" flags="$4" outlet="${5:-}" port=${1##*:}
    local ours=() theirs=()
    if [ -n "$outlet" ]; then
        ours=(--outlet "$outlet")
        theirs=(--index "$outlet")
    fi
    "$BIN" plug "$addr" "$action" --protocol klap "${ours[@]}" >"$LOGDIR/ours.out" 2>&1 \
        || { cat "$LOGDIR/ours.out" >&2; fail "our plug $addr $action ${ours[*]} failed"; }
    grep -q "(verified)" "$LOGDIR/ours.out" || fail "our plug $addr $action did not verify"
    kasa_cmd "$port" "$flags" state "${theirs[@]}"
    expect_kasa_state "$want"
    echo "  ok: ours switched $addr ${ours[*]} $action, python-kasa agrees"
}
ours_switch "$P110" on True SMART_FLAGS
ours_switch "$P110" off False SMART_FLAGS
ours_switch "$P300" on True SMART_FLAGS 2
ours_switch "$P300" off False SMART_FLAGS 2
ours_switch "$HS100" on True IOT_KLAP_FLAGS
ours_switch "$HS100" off False IOT_KLAP_FLAGS

# --- our CLI with a wrong password: one line, exit 1, at once
for addr in "$P110" "$HS100"; do
    start=$SECONDS
    rc=0
    KASA_PASSWORD="not the password" "$BIN" plug "$addr" on --protocol klap \
        >"$LOGDIR/ours.out" 2>"$LOGDIR/ours.err" || rc=$?
    [ "$rc" -eq 1 ] || fail "our plug with a wrong password exited $rc on $addr"
    [ "$(wc -l <"$LOGDIR/ours.err")" -eq 1 ] || { cat "$LOGDIR/ours.err" >&2; fail "not one line"; }
    grep -q "refused the TP-Link credentials" "$LOGDIR/ours.err" \
        || { cat "$LOGDIR/ours.err" >&2; fail "our error does not say the credentials were refused"; }
    [ $((SECONDS - start)) -le 5 ] || fail "a wrong password took $((SECONDS - start)) s on $addr"
    echo "  ok: ours refuses the wrong password on $addr in one line"
done

echo "interop-klap: python-kasa $PYKASA_VERSION drives the simulated P110, P300 and HS100(UK) hw 4.1 over KLAP: ok"
