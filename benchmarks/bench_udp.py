"""Benchmark 5: UDP scan of one lab host x 1000 ports, closed ports ICMP rate limited.

    python benchmarks/bench_udp.py [--runs N] [--timeout S] [--json FILE]
        [--pyscan-options JSON ...] [--nmap-full]

The lab (``icmp_rate_limited=True``: the target kernel's defaults, about one ICMP port
unreachable per second after a small burst): one target, 198.18.0.10, with UDP listeners
answering on 53, 123 and 161 (open), a listener that never answers on 500 and a DROP rule
on 700 (both open|filtered), every other port of 1-1000 closed (995). Accuracy is the
share of the 1000 ports whose reported state equals this truth.

Tools, in the same lab run:

* ``nmap -sU -T4 --max-retries 1 -p1-1000``: nmap bounded to finish in seconds; it sees
  most closed ports as open|filtered (the reference for wall time);
* ``nmap -sU -T4 -p1-100``: nmap's own adaptation to the rate limit (it slows down to about
  one probe per second per closed port) on a 100-port subset, for its time per port;
  ``--nmap-full`` runs it on all 1000 ports instead (about 17 minutes);
* pyscan ``udp_scan``, the same two ways: ``timing=4, max_retries=1`` on 1-1000 and
  ``timing=4`` (its own adaptation) on 1-100 (or 1-1000 with ``--nmap-full``);
  ``--pyscan-options`` replaces these with rows of 1-1000 ports.

pyscan results are streamed (``async for``), so a run stopped at its time bound still
reports what it had decided.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping, Sequence

from _common import (
    Job,
    Measurement,
    Port,
    TxCounter,
    common_args,
    env_ok,
    expected_states,
    have,
    load_note,
    pyscan_argv,
    run_jobs,
    write_json,
)

from pyscan.testing.netlab import Behaviour, HostConfig, Lab, LabConfig, PortRule

TARGET = "198.18.0.10"
PORTS = range(1, 1001)
NMAP_FAST = "nmap -sU -T4 --max-retries 1"
DEFAULT_PYSCAN: list[tuple[dict[str, object], int]] = [
    ({"timing": 4, "max_retries": 1}, 1000),
    ({"timing": 4}, 100),
]


def udp_lab() -> LabConfig:
    """One target; three answering UDP services, one silent, one dropped; rate-limited ICMP."""
    rules = [
        *(PortRule("udp", p, Behaviour.OPEN) for p in (53, 123, 161)),
        PortRule("udp", 500, Behaviour.OPEN_SILENT),
        PortRule("udp", 700, Behaviour.DROP),
    ]
    return LabConfig(hosts=(HostConfig("target", TARGET, ports=rules),), icmp_rate_limited=True)


def accuracy_table(
    runs: Sequence[Sequence[Measurement]], truth: Mapping[Port, str], subsets: Mapping[str, int]
) -> str:
    """Per tool and run: states found against the truth, and the share of ports right."""
    want: dict[str, int] = {}
    for state in truth.values():
        want[state] = want.get(state, 0) + 1
    lines = [
        (
            f"{'tool':34} {'run':>3} {'ports':>5} {'open':>9} {'closed':>9} {'open|filt':>9} "
            f"{'right':>6} {'wall s':>7}"
        )
    ]
    for i, rows in enumerate(runs, 1):
        for m in rows:
            n = subsets.get(m.tool, len(truth))
            scope = {k: v for k, v in truth.items() if k[2] <= n}
            found = m.extra.get("ports", {})
            right = sum(found.get(k) == v for k, v in scope.items())
            counts = {s: sum(1 for k in scope if found.get(k) == s) for s in want}
            exp = {s: sum(1 for v in scope.values() if v == s) for s in want}
            cells = [f"{counts.get(s, 0):>4}/{exp.get(s, 0):<4}" for s in ("open", "closed")]
            cells.append(f"{counts.get('open|filtered', 0):>4}/{exp.get('open|filtered', 0):<4}")
            lines.append(
                f"{m.tool:34} {i:>3} {n:>5} {' '.join(cells)} {right / len(scope):6.1%} "
                f"{m.wall:7.2f}"
            )
    return "\n".join(lines)


def main() -> int:
    parser = common_args(__doc__)
    parser.add_argument("--pyscan-options", action="append", type=json.loads)
    parser.add_argument("--nmap-full", action="store_true", help="nmap -sU -T4 on all 1000")
    args = parser.parse_args()
    reason = env_ok()
    if reason:
        print(f"skipped: {reason}")
        return 0
    with Lab(udp_lab()) as lab:
        counter = TxCounter(lab)
        truth = expected_states(lab.truth, [TARGET], "udp", PORTS)
        expected = frozenset(k for k, v in truth.items() if v == "open")
        print(
            f"# benchmark 5: UDP {TARGET} x 1-1000 (ICMP rate limited), truth: "
            f"{sum(v == 'open' for v in truth.values())} open, "
            f"{sum(v == 'closed' for v in truth.values())} closed, "
            f"{sum(v == 'open|filtered' for v in truth.values())} open|filtered; {load_note()}"
        )
        jobs: list[Job] = []
        subsets: dict[str, int] = {}
        nmap = ["nmap", "-sU", "-n", "-Pn", "-T4", "-oX", "-"]
        if not args.no_reference and have("nmap"):
            jobs.append(
                Job(NMAP_FAST, [*nmap, "--max-retries", "1", "-p1-1000", TARGET], "nmap-xml")
            )
            top = 1000 if args.nmap_full else 100
            name = f"nmap -sU -T4 (ports 1-{top})" if top < 1000 else "nmap -sU -T4"
            subset = frozenset(k for k in expected if k[2] <= top)
            jobs.append(Job(name, [*nmap, f"-p1-{top}", TARGET], "nmap-xml", expected=subset))
            subsets[name] = top
        top = 1000 if args.nmap_full else 100
        rows = [(o, 1000) for o in args.pyscan_options or ()] or [
            (o, top if n < 1000 else n) for o, n in DEFAULT_PYSCAN
        ]
        for options, n in rows:
            parts = [f"T{v}" if k == "timing" else f"{k}={v}" for k, v in options.items()]
            name = " ".join(["pyscan udp", *parts]) + ("" if n == 1000 else f" (ports 1-{n})")
            argv = pyscan_argv("udp", TARGET, f"1-{n}", options, all_ports=True, stream=True)
            subset = frozenset(k for k in expected if k[2] <= n)
            jobs.append(Job(name, argv, "pyscan-json", expected=subset))
            if n < 1000:
                subsets[name] = n
        runs = run_jobs(
            lab, counter, jobs, expected, runs=args.runs, timeout=args.timeout,
            reference=NMAP_FAST if jobs and jobs[0].tool == NMAP_FAST else None,
            all_ports=[(TARGET, "udp", p) for p in PORTS],
        )  # fmt: skip
        print("\n## accuracy against the lab's truth (found/expected per state)")
        print(accuracy_table(runs, truth, subsets))
    write_json(args.json, "udp", runs, target=TARGET, ports="1-1000")
    return 0


if __name__ == "__main__":
    sys.exit(main())
