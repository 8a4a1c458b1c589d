"""Benchmark 1: SYN scan of a /24 x ports 1-1000: pyscan against nmap and masscan.

    python benchmarks/bench_syn_24.py [--runs N] [--timeout S] [--json FILE]
        [--pyscan-options JSON ...] [--masscan-rate R] [--profile PREFIX]

The lab (LabConfig.large): 241 live addresses in one namespace, 51 of them silent (drop
every IP packet, still answer ARP), 12 absent (nobody answers, not even ARP); open ports
22, 80 and 443 on each answering address (570 open ports), port 25 dropped, every other
port closed (RST). Scanned: 198.18.0.2-254 (the /24 without its network, scanner and
broadcast addresses: 241 live + 12 absent = 253 targets) x 1-1000 = 253,000 probes.

Tools, in the same lab run (their order rotates from run to run):

* ``nmap -sS -n -Pn --min-rate 100000 -p1-1000`` (the reference),
* ``masscan --rate R --wait 2`` (frames addressed to the target namespace's MAC),
* pyscan ``syn_scan`` with each ``--pyscan-options`` set (default: T4 and T5, both with
  ``min_rate=100000`` as nmap's row).

``--profile PREFIX`` runs only the first pyscan set, under ``py-spy record``, and writes
``PREFIX.svg`` (flamegraph) and ``PREFIX.txt`` (collapsed stacks); see profile_syn.sh.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from _common import (
    Job,
    TxCounter,
    address_range,
    common_args,
    env_ok,
    expected_open,
    have,
    load_note,
    masscan_argv,
    pyscan_argv,
    run_jobs,
    run_measured,
    scratch_dir,
    write_json,
)

from pyscan.testing.netlab import Lab, LabConfig

TARGETS_NMAP = "198.18.0.2-254"
TARGETS_MASSCAN = "198.18.0.2-198.18.0.254"
FIRST, LAST = "198.18.0.2", "198.18.0.254"
PORTS = "1-1000"
NMAP = "nmap -sS --min-rate 100000"
DEFAULT_PYSCAN: list[dict[str, object]] = [
    {"timing": 4, "min_rate": 100000},
    {"timing": 5, "min_rate": 100000},
]


def label(options: dict[str, object]) -> str:
    """A short column label for a set of pyscan options."""
    parts = []
    for key, value in options.items():
        if key == "timing":
            parts.append(f"T{value}")
        elif key in ("min_rate", "max_rate") and isinstance(value, int | float):
            parts.append(f"{key}={value / 1000:g}k")
        else:
            parts.append(f"{key}={value}")
    return "pyscan " + " ".join(parts)


def lab_config() -> LabConfig:
    """The issue's reference /24: 241 live (51 silent), absent addresses, RST on closed."""
    return LabConfig.large(241, silent=51, absent=12)


def profile(
    lab: Lab, counter: TxCounter, options: dict[str, object], prefix: Path, timeout: float
) -> None:
    """py-spy record the pyscan run twice: a flamegraph with idle samples (where the wall
    time goes) and collapsed stacks of busy samples only (where the CPU goes)."""
    spy = str(Path(sys.executable).with_name("py-spy"))
    argv = pyscan_argv("syn", TARGETS_NMAP, PORTS, options)
    for fmt, suffix, idle in (("flamegraph", ".svg", ["--idle"]), ("raw", ".txt", [])):
        out = prefix.with_name(prefix.name + suffix)
        res = run_measured(
            lab,
            counter,
            [spy, "record", *idle, "--rate", "250", "--format", fmt, "-o", str(out), "--", *argv],
            timeout=timeout,
        )
        print(
            f"py-spy {fmt}{' --idle' if idle else ''}: {out} ({res.status}, {res.wall:.1f} s, "
            f"{res.tx_packets} pkts, {res.cpu:.1f} CPU s)"
        )


def main() -> int:
    parser = common_args(__doc__)
    parser.add_argument(
        "--pyscan-options",
        action="append",
        type=json.loads,
        help="a JSON object of syn_scan options; repeat for several pyscan rows",
    )
    parser.add_argument("--masscan-rate", type=int, default=100000)
    parser.add_argument("--profile", type=Path, help="py-spy the first pyscan run only")
    args = parser.parse_args()
    reason = env_ok()
    if reason:
        print(f"skipped: {reason}")
        return 0
    variants = args.pyscan_options or DEFAULT_PYSCAN
    addresses = address_range(FIRST, LAST)
    with Lab(lab_config()) as lab, scratch_dir() as tmp:
        counter = TxCounter(lab)
        expected = expected_open(lab.truth, addresses, "tcp", range(1, 1001))
        if args.profile:
            profile(lab, counter, variants[0], args.profile, args.timeout)
            return 0
        print(
            f"# benchmark 1: SYN {TARGETS_NMAP} x {PORTS} ({len(addresses) * 1000} probes), "
            f"{len(lab.truth.up)} live ({sum(h.silent for h in lab.truth.hosts.values())} "
            f"silent), {len(lab.truth.down)} absent, {len(expected)} open; {load_note()}"
        )
        jobs: list[Job] = []
        if not args.no_reference and have("nmap"):
            nmap = ["nmap", "-sS", "-n", "-Pn", "--min-rate", "100000", "-p", PORTS, "-oX", "-"]
            jobs.append(Job(NMAP, [*nmap, TARGETS_NMAP], "nmap-xml"))
        if not args.no_reference and have("masscan"):
            out = tmp / "masscan.txt"
            argv = masscan_argv(
                lab, TARGETS_MASSCAN, PORTS, args.masscan_rate, out, router_host="farm"
            )
            bound = len(addresses) * 1000 / args.masscan_rate + 2 + 20  # send + --wait + slack
            tool = f"masscan --rate {args.masscan_rate // 1000}k"
            jobs.append(Job(tool, argv, "masscan-list", out, bound))
        for options in variants:
            argv = pyscan_argv("syn", TARGETS_NMAP, PORTS, options)
            jobs.append(Job(label(options), argv, "pyscan-json"))
        all_runs = run_jobs(
            lab, counter, jobs, expected, runs=args.runs, timeout=args.timeout, reference=NMAP
        )
    write_json(args.json, "syn_24", all_runs, targets=TARGETS_NMAP, ports=PORTS)
    return 0


if __name__ == "__main__":
    sys.exit(main())
