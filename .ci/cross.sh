#!/usr/bin/env bash
# CI gate for the Pi (issue 5; docs/design.md §13): cross release builds for
# aarch64 musl (static, size-capped) and armv7 gnueabihf, smoke runs under
# qemu-user, the test suite under qemu-aarch64, shellcheck, the systemd unit
# through systemd-analyze, and the deploy script's tests. Installs what it
# needs first. Reuses the default target dir; prints what it measured.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TERM_COLOR=${CARGO_TERM_COLOR:-never}

readonly MUSL=aarch64-unknown-linux-musl
readonly ARMV7=armv7-unknown-linux-gnueabihf
# The size budget of the static aarch64 binary, stripped: 3 MiB. On a Pi the
# file's size matters little (storage is gigabytes); memory and CPU per cycle
# are what count, and the README and docs/design.md record those. The budget
# was 1.75 MiB, and the binary had reached 1.68 MiB (1,762,368 bytes) with
# RSA-1024 for the AES transport (RustCrypto `rsa` 0.10: 184 KiB) and AES
# itself (68 KiB), then 1.71 MiB with the alert hook on std::process; the TPAP
# transport (issue 17) adds P-256 and the AEAD ciphers AES-CCM and
# ChaCha20-Poly1305. So the cap guards against bloat (a stray dependency, a
# debug build) and no longer decides what we hand-write: size alone is no
# reason to write by hand what a well-kept crate does (docs/design.md §13).
readonly MAX_MUSL_BYTES=$((3 * 1024 * 1024))
gate_start=$SECONDS

step() { echo "== cross: $*"; }
die() {
    echo "cross.sh: $*" >&2
    exit 1
}

# --- tools ------------------------------------------------------------------

step "tools"
missing_targets=()
installed_targets=$(rustup target list --installed)
for t in "$MUSL" "$ARMV7"; do
    grep -qx "$t" <<<"$installed_targets" || missing_targets+=("$t")
done
if [ ${#missing_targets[@]} -gt 0 ]; then
    rustup target add "${missing_targets[@]}"
fi

# command -> Debian package that provides it
packages=()
need() {
    command -v "$1" >/dev/null 2>&1 || packages+=("$2")
}
need aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu
need arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf
[ -e /usr/arm-linux-gnueabihf/lib/crt1.o ] || packages+=(libc6-dev-armhf-cross)
need qemu-aarch64 qemu-user
need qemu-arm qemu-user
need shellcheck shellcheck
need systemd-analyze systemd
need file file
# The suite below drives the completion scripts in zsh and fish.
need zsh zsh
need fish fish
if [ ${#packages[@]} -gt 0 ]; then
    mapfile -t packages < <(printf '%s\n' "${packages[@]}" | sort -u)
    sudo=()
    [ "$(id -u)" = 0 ] || sudo=(sudo)
    echo "installing: ${packages[*]}"
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"
fi

# --- release builds -----------------------------------------------------------

step "release builds ($MUSL, $ARMV7)"
build_start=$SECONDS
cargo build --release --locked --target "$MUSL" --target "$ARMV7"
build_time=$((SECONDS - build_start))

target_dir=${CARGO_TARGET_DIR:-target}
musl_bin=$target_dir/$MUSL/release/kasa-thermostat
armv7_bin=$target_dir/$ARMV7/release/kasa-thermostat
for bin in "$musl_bin" "$armv7_bin"; do
    bytes=$(stat -c %s "$bin")
    printf '  %-58s %8d bytes (%d KiB)\n' "$bin" "$bytes" $((bytes / 1024))
done
musl_info=$(file -b "$musl_bin")
echo "  $MUSL: $musl_info"
case "$musl_info" in
    *"statically linked"* | *"static-pie linked"*) ;;
    *) die "$musl_bin is not static: $musl_info" ;;
esac
case "$musl_info" in
    *"not stripped"*) die "$musl_bin is not stripped (profile.release strip = true?)" ;;
esac
musl_bytes=$(stat -c %s "$musl_bin")
[ "$musl_bytes" -le "$MAX_MUSL_BYTES" ] ||
    die "$musl_bin is $musl_bytes bytes, over the $MAX_MUSL_BYTES-byte (3 MiB) budget"

# --- smoke runs under qemu-user ---------------------------------------------

step "smoke runs under qemu-user"
qemu_musl=(qemu-aarch64)
qemu_armv7=(qemu-arm -L /usr/arm-linux-gnueabihf)
"${qemu_musl[@]}" "$musl_bin" --version
"${qemu_armv7[@]}" "$armv7_bin" --version

# check-config must accept the example config that deploy.sh installs. A
# build whose check-config is still the skeleton's placeholder says so
# ("not built yet"); that alone is tolerated, any other failure is not.
for runner in musl armv7; do
    if [ "$runner" = musl ]; then
        cmd=("${qemu_musl[@]}" "$musl_bin")
    else
        cmd=("${qemu_armv7[@]}" "$armv7_bin")
    fi
    if out=$("${cmd[@]}" check-config deploy/config.example.json 2>&1); then
        echo "  $runner: check-config deploy/config.example.json: ok"
    elif grep -q "not built yet" <<<"$out"; then
        echo "  $runner: check-config is not in this build yet; skipped ($out)"
    else
        echo "$out" >&2
        die "$runner: check-config rejected deploy/config.example.json"
    fi
done

# --- the test suite on the emulated CPU ----------------------------------------

step "cargo test --target $MUSL (under qemu-aarch64, see .cargo/config.toml)"
test_start=$SECONDS
# Tests that spawn the binary put the emulator in front (no binfmt_misc here).
# `kasa_cli` is left to the native run (`cargo test`, first in .ci/run): its
# tests spawn the binary against a simulated plug with the plug schedule
# scaled to 1 % (`--timing-scale 0.01`: a 60 ms budget per request) so that a
# whole retry schedule fits in a test; an emulated process on a busy machine
# does not answer in 60 ms (two of them failed so in one run, three in
# another). The code they drive (worker, devices, transports) runs emulated
# here in kasa_worker, kasa_device and the kasa_* transport tests, and the
# emulated binary's own smoke runs are above. Everything else runs here.
KASA_THERMOSTAT_TEST_RUNNER=qemu-aarch64 cargo test --locked --target "$MUSL" -- \
    --skip kasa_cli::
test_time=$((SECONDS - test_start))

# --- scripts, unit, deploy ------------------------------------------------------

step "shellcheck"
shellcheck deploy/*.sh deploy/test/*.sh deploy/test/local-bin/* deploy/test/remote-bin/* .ci/*.sh .ci/sweep/*.sh .ci/run

step "systemd-analyze verify"
verify_dir=$(mktemp -d)
trap 'rm -rf "$verify_dir"' EXIT
# verify insists that ExecStart's binary exists and is executable.
cp "$musl_bin" "$verify_dir/kasa-thermostat"
sed "s#/usr/local/bin/kasa-thermostat#$verify_dir/kasa-thermostat#" \
    deploy/kasa-thermostat.service >"$verify_dir/kasa-thermostat.service"
if ! verify_out=$(systemd-analyze verify "$verify_dir/kasa-thermostat.service" 2>&1) || [ -n "$verify_out" ]; then
    # Unknown keys are only warnings for systemd; here they fail the gate.
    echo "$verify_out" >&2
    die "systemd-analyze verify complained about deploy/kasa-thermostat.service"
fi
echo "  deploy/kasa-thermostat.service: clean"

step "deploy script tests"
bash deploy/test/deploy_test.sh

echo "== cross: release build ${build_time}s, tests under qemu-aarch64 ${test_time}s, gate $((SECONDS - gate_start))s"
