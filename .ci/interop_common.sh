# Shared by the interop gates (.ci/interop.sh, interop_klap.sh,
# interop_aes.sh, interop_tpap.sh): python-kasa in a venv, our binary, a
# scratch directory, the simulated plugs' cleanup, and the steps the AES and
# TPAP gates share (start_sim, expect_ours, ours_switch; interop.sh and
# interop_klap.sh define their own, with other arguments). Source it with GATE
# set to the gate's name and PEER to the other client's name.
# shellcheck shell=bash

PYKASA_VERSION="${PYKASA_VERSION:-0.12.0}"
VENV="${INTEROP_VENV:-target/interop-venv}"
# shellcheck disable=SC2034 # used by the gates that source this
BIN="target/debug/kasa-thermostat"
LOGDIR="$(mktemp -d)"
SIM_PIDS=()

fail() { echo "$GATE: FAIL: $*" >&2; exit 1; }

cleanup() {
    for pid in "${SIM_PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$LOGDIR"
}
trap cleanup EXIT

# --- python-kasa in a venv (one venv for every gate)
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    echo "$GATE: installing python3-venv"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq && $SUDO apt-get install -y -qq python3-venv
fi
if [ ! -x "$VENV/bin/kasa" ] || ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('python-kasa') != '$PYKASA_VERSION')"; then
    echo "$GATE: installing python-kasa==$PYKASA_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "python-kasa==$PYKASA_VERSION"
fi
# shellcheck disable=SC2034 # used by the gates that source this
KASA="$VENV/bin/kasa"
"$KASA" --version

# --- our binary
cargo build --quiet --bin kasa-thermostat

# --- steps shared by the AES and TPAP gates
# shellcheck disable=SC2034 # SIM_ADDR is read by the gates
start_sim() { # name simulate-plug-args... -> sets SIM_ADDR
    local name="$1" out="$LOGDIR/sim-$1.out"
    shift
    "$BIN" simulate-plug --bind 127.0.0.1:0 "$@" \
        --username "$KASA_USERNAME" --password "$KASA_PASSWORD" \
        ${INTEROP_FAULT:+--fault "$INTEROP_FAULT"} \
        >"$out" 2>"$LOGDIR/sim-$name.err" &
    SIM_PIDS+=("$!")
    for _ in $(seq 1 100); do
        if [ -s "$out" ]; then SIM_ADDR="$(head -n1 "$out")"; return 0; fi
        sleep 0.05
    done
    cat "$LOGDIR/sim-$name.err" >&2
    fail "simulate-plug $* did not print its address"
}

expect_ours() { # addr want protocol
    local got
    got="$("$BIN" plug "$1" state --json --protocol "$3")" || fail "our plug $1 state --protocol $3 failed"
    echo "$got" | grep -q "\"on\":$2" || fail "after $PEER's command, $1 reads $got, expected on=$2"
    echo "  ok: ours (--protocol $3) reads $1 on=$2"
}

ours_switch() { # addr on|off protocol
    local out
    out="$("$BIN" plug "$1" "$2" --protocol "$3")" || fail "our plug $1 $2 --protocol $3 failed"
    [ "$out" = "$1: $2 (verified)" ] || fail "our plug $1 $2 printed: $out"
    echo "  ok: ours switched $1 $2 (--protocol $3)"
}
