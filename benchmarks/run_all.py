"""Run every benchmark in this folder (``nox -s bench``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    status = 0
    for script in sorted(HERE.glob("bench_*.py")):
        if script.name == "bench_template.py":  # a micro-benchmark without lab options
            argv = [sys.executable, str(script)]
            print(f"\n=== {script.name}", flush=True)
            status |= subprocess.run(argv, cwd=HERE, check=False).returncode
            continue
        print(f"\n=== {script.name}", flush=True)
        status |= subprocess.run(
            [sys.executable, str(script), *sys.argv[1:]], cwd=HERE, check=False
        ).returncode
    return status


if __name__ == "__main__":
    sys.exit(main())
