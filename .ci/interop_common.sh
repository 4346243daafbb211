# Shared by the interop gates (.ci/interop.sh, interop_klap.sh,
# interop_aes.sh): python-kasa in a venv, our binary, a scratch directory and
# the simulated plugs' cleanup. Source it with GATE set to the gate's name.
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
