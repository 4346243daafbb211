#!/usr/bin/env bash
# Interop gate for AES ("securePassthrough"): python-kasa (the reference
# client, from PyPI), given credentials, must read and switch our simulated
# Tapo P110 (EU) fw 1.2.3 and Kasa EP25 (US) hw 2.6, and must fail with its
# authentication error on a wrong password; our own CLI (`plug ...
# --protocol aes`, and `auto`, which learns AES from the UDP 20002 answer)
# must agree after every step and refuse the wrong password in one line.
# Then the same for two of python-kasa's own AES recordings served by
# `simulate-plug --fixture` (the sdist is fetched and cached under target/).
# Loopback only. Works on a fresh machine: installs python3-venv if missing.
#   INTEROP_VENV=DIR   use this python-kasa venv (default target/interop-venv)
#   INTEROP_FAULT=K    start the simulators with --fault K (to see the gate fail)
set -euo pipefail
cd "$(dirname "$0")/.."

export KASA_USERNAME="interop@example.com"
export KASA_PASSWORD="aes interop secret"
GATE=interop-aes
PEER=python-kasa
# shellcheck source=.ci/interop_common.sh
source .ci/interop_common.sh

kasa_cmd() { # port family args...
    local port="$1" family="$2"; shift 2
    local flags=(--device-family "$family" --encrypt-type AES --login-version 2)
    echo "+ kasa --host 127.0.0.1 --port $port ${flags[*]} $*"
    if ! timeout 60 "$KASA" --host 127.0.0.1 --port "$port" "${flags[@]}" "$@" >"$LOGDIR/kasa.out" 2>&1; then
        cat "$LOGDIR/kasa.out" >&2
        fail "kasa $* against 127.0.0.1:$port exited non-zero"
    fi
    # A recording lacks some answers python-kasa's own test harness makes
    # up (HomeKit, Matter...): python-kasa then drops that module with a
    # warning, which is no protocol error. Only for recordings ($GAPS).
    if grep -vE "${GAPS:-^$}" "$LOGDIR/kasa.out" | grep -qE "Traceback|Error"; then
        cat "$LOGDIR/kasa.out" >&2
        fail "kasa $* printed an error"
    fi
}

expect_kasa_state() { # True/False
    grep -q "Device state: $1" "$LOGDIR/kasa.out" \
        || { cat "$LOGDIR/kasa.out" >&2; fail "python-kasa does not read the device as $1"; }
    echo "  ok: python-kasa reads $1"
}

expect_auth_errors() { # addr family
    local addr="$1" port=${1##*:} family="$2"
    echo "+ kasa --host 127.0.0.1 --port $port ... --password <wrong> state"
    if timeout 60 "$KASA" --host 127.0.0.1 --port "$port" --device-family "$family" \
        --encrypt-type AES --login-version 2 \
        --username "$KASA_USERNAME" --password "not the password" state >"$LOGDIR/kasa.out" 2>&1; then
        cat "$LOGDIR/kasa.out" >&2
        fail "python-kasa accepted a wrong password on $addr"
    fi
    grep -q "LOGIN_ERROR" "$LOGDIR/kasa.out" \
        || { cat "$LOGDIR/kasa.out" >&2; fail "python-kasa did not fail with its login error on $addr"; }
    echo "  ok: python-kasa refuses the wrong password on $addr"
    local rc=0
    KASA_PASSWORD="not the password" "$BIN" plug "$addr" state --protocol aes \
        >/dev/null 2>"$LOGDIR/ours.err" || rc=$?
    [ "$rc" -eq 1 ] || fail "our plug with a wrong password exited $rc"
    [ "$(wc -l <"$LOGDIR/ours.err")" -eq 1 ] || { cat "$LOGDIR/ours.err" >&2; fail "more than one line"; }
    grep -q "refused the TP-Link credentials" "$LOGDIR/ours.err" \
        || { cat "$LOGDIR/ours.err" >&2; fail "our error does not say the credentials were refused"; }
    echo "  ok: ours refuses the wrong password on $addr in one line"
}

drive() { # addr family model-substring
    local addr="$1" family="$2" model="$3" port=${1##*:}
    kasa_cmd "$port" "$family" state
    grep -q "$model" "$LOGDIR/kasa.out" || fail "kasa state does not show the $model model"
    expect_kasa_state False
    expect_ours "$addr" false aes
    kasa_cmd "$port" "$family" on
    kasa_cmd "$port" "$family" state
    expect_kasa_state True
    expect_ours "$addr" true aes
    expect_ours "$addr" true auto
    ours_switch "$addr" off aes
    kasa_cmd "$port" "$family" state
    expect_kasa_state False
    ours_switch "$addr" on auto
    kasa_cmd "$port" "$family" state
    expect_kasa_state True
    kasa_cmd "$port" "$family" off
    expect_ours "$addr" false aes
    expect_auth_errors "$addr" "$family"
}

start_sim p110-aes --model p110-aes
P110="$SIM_ADDR"
start_sim ep25 --model ep25
EP25="$SIM_ADDR"
echo "interop-aes: p110-aes at $P110, ep25 at $EP25"
echo "--- Tapo P110 (EU) fw 1.2.3, SMART over AES"
drive "$P110" SMART.TAPOPLUG P110
echo "--- Kasa EP25 (US) hw 2.6, SMART over AES"
drive "$EP25" SMART.KASAPLUG EP25

# --- python-kasa's own recordings of the same devices, served by our fixture server
FIXTURES="$(PIP="$VENV/bin/pip" .ci/sweep/fetch_fixtures.sh)"
GAPS="^WARNING:kasa\.smart\.smartdevice:Error processing [A-Za-z]+ for device .*, module will be unavailable"
for fx in "P110(EU)_1.0_1.2.3:SMART.TAPOPLUG:P110" "EP25(US)_2.6_1.0.2:SMART.KASAPLUG:EP25"; do
    IFS=: read -r name family model <<<"$fx"
    start_sim "fx-$model" --fixture "$FIXTURES/smart/$name.json"
    echo "--- recording $name at $SIM_ADDR"
    # The recordings were made with the plug on: switch it off first.
    kasa_cmd "${SIM_ADDR##*:}" "$family" off
    drive "$SIM_ADDR" "$family" "$model"
done

echo "interop-aes: python-kasa $PYKASA_VERSION and our CLI drive the simulated P110 (EU) fw 1.2.3 and EP25 (US) hw 2.6 over AES, and two AES recordings: ok"
