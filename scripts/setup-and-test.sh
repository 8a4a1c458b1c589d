#!/usr/bin/env bash
# Install what the test suite needs on a fresh Debian machine (as root) and run it.
#   bash scripts/setup-and-test.sh          install, then pytest
#   bash scripts/setup-and-test.sh --lint   also ruff and mypy --strict (what CI runs)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    apt-get install -y -qq python3-venv nmap ndiff iproute2 iptables ethtool >/dev/null
    # Real daemons for the version-detection lab tests (installed, never started as services).
    bash scripts/install-daemons.sh >/dev/null
fi
python3 -m venv .venv
.venv/bin/pip install -q --upgrade pip
.venv/bin/pip install -q -e '.[dev]'
if [ "${1:-}" = "--lint" ]; then
    .venv/bin/ruff check .
    .venv/bin/ruff format --check .
    .venv/bin/mypy --strict src/pyscan
fi
exec .venv/bin/pytest
