"""Benchmark 4: TCP connect scan of one lab host x 65535 ports: pyscan against nmap -sT -T4.

    python benchmarks/bench_connect.py [--runs N] [--timeout S] [--json FILE]
        [--pyscan-options JSON ...]

The lab: one target namespace (198.18.0.10) with listeners on 22, 80, 443, 8080, 31337 and
65535; every other port closed (RST). Tools, in the same lab run: ``nmap -sT -n -Pn -T4
-p-`` (the reference) and pyscan ``connect_scan`` with each ``--pyscan-options`` set
(default: ``{"timing": 4}``, nmap's -T4; ``connect_concurrency`` sets the connections in
flight).
"""

from __future__ import annotations

import json
import sys

from _common import (
    Job,
    TxCounter,
    common_args,
    env_ok,
    have,
    load_note,
    pyscan_argv,
    run_jobs,
    write_json,
)
from bench_syn_one_host import OPEN, TARGET, label, one_host_lab  # benchmark 2's lab

from pyscan.testing.netlab import Lab

NMAP = "nmap -sT -T4"
DEFAULT_PYSCAN: list[dict[str, object]] = [{"timing": 4}]


def main() -> int:
    parser = common_args(__doc__)
    parser.add_argument("--pyscan-options", action="append", type=json.loads)
    args = parser.parse_args()
    reason = env_ok()
    if reason:
        print(f"skipped: {reason}")
        return 0
    expected = frozenset((TARGET, "tcp", p) for p in OPEN)
    with Lab(one_host_lab()) as lab:
        counter = TxCounter(lab)
        print(f"# benchmark 4: connect {TARGET} x 1-65535, {len(OPEN)} open; {load_note()}")
        jobs: list[Job] = []
        if not args.no_reference and have("nmap"):
            argv = ["nmap", "-sT", "-n", "-Pn", "-T4", "-p-", "-oX", "-", TARGET]
            jobs.append(Job(NMAP, argv, "nmap-xml"))
        for options in args.pyscan_options or DEFAULT_PYSCAN:
            argv = pyscan_argv("connect", TARGET, "1-65535", options)
            jobs.append(Job(label("connect", options), argv, "pyscan-json"))
        runs = run_jobs(
            lab, counter, jobs, expected, runs=args.runs, timeout=args.timeout, reference=NMAP
        )
    write_json(args.json, "connect_one_host", runs, target=TARGET, ports="1-65535")
    return 0


if __name__ == "__main__":
    sys.exit(main())
