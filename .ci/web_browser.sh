#!/usr/bin/env bash
# Gate: the web page in a real browser. Headless Chromium (Debian's package)
# driven over the DevTools protocol by .ci/web_browser.py (stdlib +
# websocket-client in a venv) against `kasa-thermostat run --simulate`:
# wrong password, right password, the temperature, mode and limits changed
# through the controls and seen in `kasa-thermostat status`, the chart, the
# page's weight, and screenshots at a 390-px phone width
# (target/web-phone.png) and a 1280-px desktop (target/web-desktop.png).
# Fails when Chromium cannot be had. About 70 s once Chromium is installed.
set -euo pipefail
cd "$(dirname "$0")/.."
GATE=web_browser
WS_CLIENT_VERSION=1.8.0
VENV="${WEB_VENV:-target/web-venv}"
SHOT="target/web-phone.png"
fail() { echo "$GATE: FAIL: $*" >&2; exit 1; }

if ! command -v chromium >/dev/null 2>&1; then
    echo "$GATE: installing chromium"
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update -qq || true
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core \
        || fail "cannot install Debian's chromium"
fi
command -v chromium >/dev/null 2>&1 || fail "chromium is not installed"
chromium --version

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get install -y -qq python3-venv || fail "cannot install python3-venv"
fi
if ! "$VENV/bin/python" -c "import importlib.metadata as m, sys; sys.exit(m.version('websocket-client') != '$WS_CLIENT_VERSION')" 2>/dev/null; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install -q --disable-pip-version-check "websocket-client==$WS_CLIENT_VERSION"
fi

cargo build --quiet --bin kasa-thermostat
BIN=target/debug/kasa-thermostat
SCRATCH=$(mktemp -d)
DEMO_PID=""
CHROME_PID=""
cleanup() {
    [ -n "$CHROME_PID" ] && kill "$CHROME_PID" 2>/dev/null && wait "$CHROME_PID" 2>/dev/null
    if [ -n "$DEMO_PID" ]; then
        kill -INT "$DEMO_PID" 2>/dev/null && wait "$DEMO_PID" 2>/dev/null
    fi
    rm -rf "$SCRATCH"
}
trap cleanup EXIT

"$BIN" run --simulate --speed 20 >"$SCRATCH/demo.out" 2>"$SCRATCH/demo.err" &
DEMO_PID=$!
for _ in $(seq 100); do
    grep -q '^web page: http' "$SCRATCH/demo.out" 2>/dev/null && break
    kill -0 "$DEMO_PID" 2>/dev/null || { cat "$SCRATCH/demo.err" >&2; fail "the demo ended"; }
    sleep 0.1
done
URL=$(sed -n 's/^web page: \(http[^ ]*\)$/\1/p' "$SCRATCH/demo.out" | head -n1)
PASSWORD=$(sed -n 's/^web page password: //p' "$SCRATCH/demo.out" | head -n1)
DEMO_DIR=$(sed -n 's/^logs: \(.*\)\/kasa-thermostat.log,.*/\1/p' "$SCRATCH/demo.out" | head -n1)
if [ -z "$URL" ] || [ -z "$PASSWORD" ] || [ -z "$DEMO_DIR" ]; then
    cat "$SCRATCH/demo.out" >&2
    fail "the demo printed no page address or password"
fi
echo "$GATE: the demo serves $URL"

PROFILE="$SCRATCH/chromium-profile"
mkdir -p "$PROFILE"
chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --disable-dev-shm-usage --user-data-dir="$PROFILE" --remote-debugging-port=0 \
    --remote-allow-origins='*' about:blank >"$SCRATCH/chromium.log" 2>&1 &
CHROME_PID=$!
for _ in $(seq 150); do
    [ -s "$PROFILE/DevToolsActivePort" ] && break
    kill -0 "$CHROME_PID" 2>/dev/null || { cat "$SCRATCH/chromium.log" >&2; fail "chromium ended"; }
    sleep 0.1
done
[ -s "$PROFILE/DevToolsActivePort" ] || { cat "$SCRATCH/chromium.log" >&2; fail "chromium opened no DevTools port"; }
DEVTOOLS_PORT=$(head -n1 "$PROFILE/DevToolsActivePort")

mkdir -p target
rm -f "$SHOT"
"$VENV/bin/python" .ci/web_browser.py "$DEVTOOLS_PORT" "$URL" "$PASSWORD" "$BIN" "$DEMO_DIR/state.json" "$SHOT"
[ -s "$SHOT" ] || fail "no screenshot"
echo "$GATE: passed; the phone screenshot is $SHOT"
