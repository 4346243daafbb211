#!/usr/bin/env bash
# Interop gate for TPAP: plugp100 6.0.2 (PyPI), the only published TPAP
# client, drives our simulated Tapo P110 and Kasa KP125M on firmware 1.4.x
# (md5-crypt + AES-128-CCM, and sha256-crypt + ChaCha20-Poly1305): the
# handshake, device info, on, off, a session that expires every 2 requests,
# and a wrong password refused. Our CLI (`plug --protocol tpap` and `auto`,
# which picks TPAP from the 20002 answer) must agree after every step, and
# refuse a wrong password in one line, with ONE login where plugp100 spends
# four (the device's failed-attempts count, which our line quotes, shows it).
# Then `--tpap-preferred false`: announced TPAP, `auto` switches over KLAP.
# Loopback only; python-kasa's venv (interop_common.sh) gets plugp100 too.
#   INTEROP_VENV=DIR   the venv (default target/interop-venv)
#   INTEROP_FAULT=K    start the simulators with --fault K (to see the gate fail)
set -euo pipefail
cd "$(dirname "$0")/.."

export KASA_USERNAME="interop@example.com"
export KASA_PASSWORD="tpap interop secret"
GATE=interop-tpap
PEER=plugp100
PLUGP100_VERSION="${PLUGP100_VERSION:-6.0.2}"
# shellcheck source=.ci/interop_common.sh
source .ci/interop_common.sh

PY="$VENV/bin/python"
if ! "$PY" -c "import importlib.metadata as m, sys; sys.exit(m.version('plugp100') != '$PLUGP100_VERSION')" 2>/dev/null; then
    echo "$GATE: installing plugp100==$PLUGP100_VERSION into $VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "plugp100==$PLUGP100_VERSION"
fi
"$PY" -c "import importlib.metadata as m; print('plugp100', m.version('plugp100'))"

p100() { # mode addr [password] [n] -> stdout of plugp100_tpap.py
    local mode="$1" addr="$2" pw="${3:-$KASA_PASSWORD}" n="${4:-1}"
    echo "+ plugp100 $mode $addr" >&2
    timeout 60 "$PY" .ci/plugp100_tpap.py "$mode" "$addr" "$KASA_USERNAME" "$pw" "$n" \
        2>"$LOGDIR/p100.err" || { cat "$LOGDIR/p100.err" >&2; fail "plugp100 $mode against $addr failed"; }
}

expect_p100() { # addr want(true|false)
    local got
    got="$(p100 info "$1")"
    echo "$got" | grep -q "\"device_on\": $2" || fail "after our command, plugp100 reads $got, expected device_on $2"
    echo "  ok: plugp100 reads device_on $2"
}

drive() { # addr model
    local addr="$1" model="$2" got
    got="$(p100 info "$addr")"
    echo "$got" | grep -q "\"model\": \"$model\"" || fail "plugp100 info shows $got, expected model $model"
    echo "  ok: plugp100 handshake + device info: $got"
    expect_ours "$addr" false tpap
    p100 on "$addr" >/dev/null
    expect_ours "$addr" true tpap
    expect_ours "$addr" true auto
    ours_switch "$addr" off tpap
    expect_p100 "$addr" false
    ours_switch "$addr" on auto
    expect_p100 "$addr" true
    p100 off "$addr" >/dev/null
    expect_ours "$addr" false tpap
    # The wrong password: plugp100 re-handshakes on -2203 (four logins);
    # ours logs in once and says so in one line, quoting the device's count.
    got="$(p100 refused "$addr" "not the password")"
    echo "  ok: plugp100 refuses the wrong password: $got"
    local rc=0
    KASA_PASSWORD="not the password" "$BIN" plug "$addr" on --protocol tpap \
        >/dev/null 2>"$LOGDIR/ours.err" || rc=$?
    [ "$rc" -eq 1 ] || fail "our plug with a wrong password exited $rc"
    [ "$(wc -l <"$LOGDIR/ours.err")" -eq 1 ] || { cat "$LOGDIR/ours.err" >&2; fail "more than one line"; }
    grep -q "refused the login.*Third-Party Compatibility.*5 failed attempts" "$LOGDIR/ours.err" \
        || { cat "$LOGDIR/ours.err" >&2; fail "our line lacks the advice or shows more than one login (4 by plugp100 + 1)"; }
    echo "  ok: ours refuses it in one line after one login: ...$(grep -o "error_code -2203.*" "$LOGDIR/ours.err")"
    # A good login resets the device's count.
    expect_ours "$addr" false tpap
}

start_sim p110 --model p110-tpap
P110="$SIM_ADDR"
start_sim kp125m --model kp125m-tpap
KP125M="$SIM_ADDR"
echo "$GATE: p110-tpap at $P110, kp125m-tpap at $KP125M"
echo "--- Tapo P110 fw 1.4.x: TPAP, md5-crypt, AES-128-CCM"
drive "$P110" P110
echo "--- Kasa KP125M fw 1.4.1: TPAP, sha256-crypt, ChaCha20-Poly1305"
drive "$KP125M" KP125M

echo "--- sessions that expire every 2 requests"
start_sim expire --model p110-tpap --fault expire:2
p100 cycle "$SIM_ADDR" "$KASA_PASSWORD" 3 >/dev/null
echo "  ok: plugp100 survives 3 on/off cycles (12 requests, 6 sessions)"
expect_p100 "$SIM_ADDR" false
ours_switch "$SIM_ADDR" on tpap
ours_switch "$SIM_ADDR" off tpap

echo "--- announces TPAP, tpap_preferred false: auto speaks KLAP"
start_sim notpref --model kp125m-tpap --tpap-preferred false
"$BIN" discover --target "$SIM_ADDR" --json --timeout 0.5 | grep -q '"tpap_preferred":false' \
    || fail "discover --json does not show tpap_preferred false"
ours_switch "$SIM_ADDR" on auto
expect_ours "$SIM_ADDR" true klap

echo "$GATE: plugp100 $PLUGP100_VERSION and our CLI drive the simulated P110 and KP125M over TPAP (expiry, wrong password, not-preferred TPAP): ok"
