#!/usr/bin/env bash
# py-spy profile of benchmark 1's pyscan run (SYN, /24 x ports 1-1000) in the namespace lab.
#
#   bash benchmarks/profile_syn.sh [OUT_PREFIX] [PYSCAN_OPTIONS_JSON]
#
# Writes OUT_PREFIX.svg (flamegraph, idle samples included: where the wall time goes),
# OUT_PREFIX.txt (collapsed stacks of busy samples: where the CPU goes) and
# OUT_PREFIX.summary.txt (busy time per thread, top functions by own and inclusive samples). Defaults: /tmp/pyscan-profile/syn24, '{"min_rate": 100000}'.
# Needs root and py-spy in the venv (scripts/install-bench-tools.sh). TIMEOUT bounds each
# profiled run in seconds (default 300).
set -euo pipefail
cd "$(dirname "$0")"
PY="${PYTHON:-../.venv/bin/python}"
OUT="${1:-/tmp/pyscan-profile/syn24}"
OPTS="${2:-{\"min_rate\": 100000\}}"
mkdir -p "$(dirname "$OUT")"
"$PY" bench_syn_24.py --profile "$OUT" --pyscan-options "$OPTS" --timeout "${TIMEOUT:-300}"
"$PY" - "$OUT.txt" >"$OUT.summary.txt" <<'PYEOF'
"""Summarise py-spy's collapsed stacks of busy samples (250 Hz): per thread, top functions."""
import collections
import re
import sys

RATE = 250
self_count: collections.Counter[str] = collections.Counter()
total_count: collections.Counter[str] = collections.Counter()
files: collections.Counter[str] = collections.Counter()
threads: collections.Counter[str] = collections.Counter()


def name(frame: str) -> str:
    return re.sub(r":\d+\)$", ")", frame.strip())


for line in open(sys.argv[1], encoding="utf-8"):
    stack, _, count_text = line.rstrip("\n").rpartition(" ")
    if not stack or not count_text.isdigit():
        continue
    count = int(count_text)
    frames = [name(f) for f in stack.split(";")]
    frames = [f for f in frames if not f.startswith(("process ", "thread "))]
    if not frames:
        continue
    worker = next((f for f in frames if f.endswith("_main (pyscan/_io/batch.py)")
                   or (f.startswith("Thread.run") and f != frames[-1])), None)
    threads["worker thread" if worker or frames[0].startswith("Thread._bootstrap")
            else "main thread (event loop)"] += count
    leaf = frames[-1]
    self_count[leaf] += count
    for f in set(frames):
        total_count[f] += count
    m = re.search(r"\(([^:()]+)", leaf)
    files[m.group(1) if m else "?"] += count

total = sum(threads.values()) or 1
print(f"busy samples: {total} = {total / RATE:.1f} CPU-seconds of Python frames "
      f"(idle waits excluded; see the --idle flamegraph for wall time)")
for t, c in threads.most_common():
    print(f"  {c / total:6.1%}  {t} ({c / RATE:.1f} s)")
print("\ntop functions by own busy samples:")
for f, c in self_count.most_common(25):
    print(f"  {c / total:6.1%}  {f}")
print("\ntop functions by inclusive busy samples:")
for f, c in total_count.most_common(30):
    print(f"  {c / total:6.1%}  {f}")
print("\nown busy samples by file:")
for f, c in files.most_common(15):
    print(f"  {c / total:6.1%}  {f}")
PYEOF
echo "flamegraph: $OUT.svg  stacks: $OUT.txt  summary: $OUT.summary.txt"
cat "$OUT.summary.txt"
