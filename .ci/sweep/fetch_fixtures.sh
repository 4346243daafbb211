#!/usr/bin/env bash
# Fetches python-kasa's sdist from PyPI (once; cached under target/) and
# prints the directory holding its recorded devices (tests/fixtures). The
# recordings are python-kasa's, not ours: they are never copied into this
# repository, only read from the cache at test time.
#   .ci/sweep/fetch_fixtures.sh            -> target/pykasa-sdist/python_kasa-0.12.0/tests/fixtures
# PYKASA_VERSION overrides the version; PIP overrides the pip to use.
set -euo pipefail
cd "$(dirname "$0")/../.."

PYKASA_VERSION="${PYKASA_VERSION:-0.12.0}"
CACHE="target/pykasa-sdist"
DIR="$CACHE/python_kasa-$PYKASA_VERSION"

if [ ! -d "$DIR/tests/fixtures" ]; then
    mkdir -p "$CACHE"
    PIP="${PIP:-}"
    if [ -z "$PIP" ]; then
        if [ -x target/interop-venv/bin/pip ]; then
            PIP=target/interop-venv/bin/pip
        elif python3 -m pip --version >/dev/null 2>&1; then
            PIP="python3 -m pip"
        else
            echo "fetch-fixtures: no pip (run .ci/interop_klap.sh once, or install python3-pip)" >&2
            exit 1
        fi
    fi
    echo "fetch-fixtures: downloading the python-kasa $PYKASA_VERSION sdist into $CACHE" >&2
    $PIP download -q --disable-pip-version-check --no-deps --no-binary :all: \
        "python-kasa==$PYKASA_VERSION" -d "$CACHE" >&2
    tar -xzf "$CACHE/python_kasa-$PYKASA_VERSION.tar.gz" -C "$CACHE"
fi
if ! [ -d "$DIR/tests/fixtures/iot" ] || ! [ -d "$DIR/tests/fixtures/smart" ]; then
    echo "fetch-fixtures: $DIR has no tests/fixtures/{iot,smart}" >&2
    exit 1
fi
echo "$DIR/tests/fixtures"
