#!/usr/bin/env bash
# CI step before `cargo test`: installs the shells whose completion scripts
# the test suite loads and drives (tests/it/cli.rs). Those tests fail when a
# shell is missing, so this runs first. Idempotent: nothing is fetched when
# every shell is already there, and `apt-get update` runs only when something
# must be installed.
set -euo pipefail

packages=()
for shell in bash zsh fish; do
    command -v "$shell" >/dev/null 2>&1 || packages+=("$shell")
done
if [ ${#packages[@]} -eq 0 ]; then
    echo "shells: bash, zsh and fish are installed"
    exit 0
fi
sudo=()
[ "$(id -u)" = 0 ] || sudo=(sudo)
echo "shells: installing ${packages[*]}"
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${packages[@]}"
