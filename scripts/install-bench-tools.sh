#!/usr/bin/env bash
# Install what the benchmarks compare against and profile with (Debian, as root):
#   nmap and masscan from Debian's packages, py-spy into the project's venv.
#   bash scripts/install-bench-tools.sh [PYTHON]    (PYTHON: the venv's python, default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
PY="${1:-.venv/bin/python}"
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    missing=()
    command -v nmap >/dev/null || missing+=(nmap)
    command -v masscan >/dev/null || missing+=(masscan)
    if [ "${#missing[@]}" -gt 0 ]; then
        apt-get update -qq
        apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
else
    echo "install-bench-tools: not root or no apt-get: install nmap and masscan yourself" >&2
fi
"$PY" -m pip install -q py-spy
for tool in nmap masscan; do
    command -v "$tool" >/dev/null && echo "$tool: $(command -v "$tool")" || echo "$tool: MISSING"
done
"$PY" -m pip show py-spy 2>/dev/null | sed -n 's/^Version: /py-spy: /p'
