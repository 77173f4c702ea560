#!/usr/bin/env bash
# Install everything the tests need on a fresh Debian machine, then run them all:
# lint, types, unit/integration/browser tests and the nbval-checked notebooks.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v chromium >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

make --no-print-directory setup
if [ -f tests/js/package.json ]; then
    (cd tests/js && npm ci --no-audit --no-fund --silent)
fi

VENV=.venv
$VENV/bin/ruff check .
$VENV/bin/mypy
$VENV/bin/python -m pytest -q -p no:cacheprovider tests notebooks --nbval-lax --nbval-current-env "$@"
