"""Benchmark 2: SYN scan of one lab host x 65535 TCP ports: pyscan against nmap -sS -T4.

    python benchmarks/bench_syn_one_host.py [--runs N] [--timeout S] [--json FILE]
        [--pyscan-options JSON ...]

The lab: one target namespace (198.18.0.10) with listeners on 22, 80, 443, 8080, 31337 and
65535; every other port closed (RST). Tools, in the same lab run: ``nmap -sS -n -Pn -T4
-p-`` (the reference) and pyscan ``syn_scan`` with each ``--pyscan-options`` set
(default: ``{"timing": 4}``, nmap's -T4, and ``{"timing": 4, "min_rate": 100000}``), and
the floor of a Python SYN scan here (``_syn_floor.py``: pyscan's probe building and batched
send and receive with nothing else: no engine, timers, retries or results), for scale.
"""

from __future__ import annotations

import json
import sys

from _common import (
    HERE,
    PYTHON,
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

from pyscan.testing.netlab import Behaviour, HostConfig, Lab, LabConfig, PortRule

TARGET = "198.18.0.10"
OPEN = (22, 80, 443, 8080, 31337, 65535)
NMAP = "nmap -sS -T4"
DEFAULT_PYSCAN: list[dict[str, object]] = [{"timing": 4}, {"timing": 4, "min_rate": 100000}]


def one_host_lab() -> LabConfig:
    """One target with a few open ports, everything else closed."""
    rules = tuple(PortRule("tcp", p, Behaviour.OPEN) for p in OPEN)
    return LabConfig(hosts=(HostConfig("target", TARGET, ports=rules),))


def label(kind: str, options: dict[str, object]) -> str:
    """A short column label for a set of pyscan options."""
    parts = [f"T{v}" if k == "timing" else f"{k}={v}" for k, v in options.items()]
    return " ".join([f"pyscan {kind}", *parts])


def main() -> int:
    parser = common_args(__doc__)
    parser.add_argument("--pyscan-options", action="append", type=json.loads)
    parser.add_argument("--no-floor", action="store_true", help="skip the Python floor")
    args = parser.parse_args()
    reason = env_ok()
    if reason:
        print(f"skipped: {reason}")
        return 0
    expected = frozenset((TARGET, "tcp", p) for p in OPEN)
    with Lab(one_host_lab()) as lab:
        counter = TxCounter(lab)
        print(f"# benchmark 2: SYN {TARGET} x 1-65535, {len(OPEN)} open; {load_note()}")
        jobs: list[Job] = []
        if not args.no_reference and have("nmap"):
            argv = ["nmap", "-sS", "-n", "-Pn", "-T4", "-p-", "-oX", "-", TARGET]
            jobs.append(Job(NMAP, argv, "nmap-xml"))
        for options in args.pyscan_options or DEFAULT_PYSCAN:
            argv = pyscan_argv("syn", TARGET, "1-65535", options)
            jobs.append(Job(label("syn", options), argv, "pyscan-json"))
        if not args.no_floor:
            argv = [PYTHON, str(HERE / "_syn_floor.py"), TARGET]
            jobs.append(Job("python floor (no engine)", argv, "pyscan-json"))
        runs = run_jobs(
            lab, counter, jobs, expected, runs=args.runs, timeout=args.timeout, reference=NMAP
        )
    write_json(args.json, "syn_one_host", runs, target=TARGET, ports="1-65535")
    return 0


if __name__ == "__main__":
    sys.exit(main())
