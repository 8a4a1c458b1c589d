"""Benchmark 3: pure send rate: SYN probes to silent addresses (nothing answers).

    python benchmarks/bench_send_rate.py [--runs N] [--addresses A] [--ports P]
        [--pyscan-options JSON ...] [--masscan-rate R] [--timeout S] [--json FILE]

The lab: A addresses (default 20, from 198.18.0.10) owned by one namespace that drops every
IP packet (they still answer ARP). Each tool sends one SYN per (address, port), ports
1..P (default 10000): a fixed count of A x P probes (200,000). The figure that matters is
``send/s``: packets counted at the scanner interface over the window in which the counter
rose (start-up and the final wait excluded), in the same lab run as masscan.

Tools: ``masscan --rate R`` (default 1,000,000; ``--retries 0``, its default, so one packet
per probe), pyscan ``syn_scan`` with each ``--pyscan-options`` set (default: T5,
``max_retries=0``, ``min_rate=1000000``: one try per probe, as masscan), and a plain Python
``sendto`` loop of prebuilt SYNs on a raw socket (``_sendto_loop.py``), the ceiling of
one Python thread here.
"""

from __future__ import annotations

import ipaddress
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
    masscan_argv,
    pyscan_argv,
    run_jobs,
    scratch_dir,
    write_json,
)

from pyscan.testing.netlab import HostConfig, Lab, LabConfig

FIRST = ipaddress.IPv4Address("198.18.0.10")
MASSCAN = "masscan --rate {}k"
DEFAULT_PYSCAN: list[dict[str, object]] = [
    {"timing": 5, "max_retries": 0, "min_rate": 1000000},
]


def dark_lab(count: int) -> LabConfig:
    """``count`` addresses in one namespace that drops every IP packet."""
    addresses = [str(FIRST + i) for i in range(count)]
    return LabConfig(hosts=(HostConfig("dark", addresses, silent=addresses),))


def label(options: dict[str, object]) -> str:
    """A short column label for a set of pyscan options."""
    parts = [f"T{v}" if k == "timing" else f"{k}={v}" for k, v in options.items()]
    return " ".join(["pyscan", *parts])


def main() -> int:
    parser = common_args(__doc__)
    parser.add_argument("--addresses", type=int, default=20)
    parser.add_argument("--ports", type=int, default=10000)
    parser.add_argument("--pyscan-options", action="append", type=json.loads)
    parser.add_argument("--masscan-rate", type=int, default=1000000)
    parser.add_argument("--no-baseline", action="store_true", help="skip the sendto loop")
    args = parser.parse_args()
    reason = env_ok()
    if reason:
        print(f"skipped: {reason}")
        return 0
    last = FIRST + args.addresses - 1
    targets, ports = f"{FIRST}-{str(last).rsplit('.', 1)[1]}", f"1-{args.ports}"
    probes = args.addresses * args.ports
    masscan_name = MASSCAN.format(args.masscan_rate // 1000)
    with Lab(dark_lab(args.addresses)) as lab, scratch_dir() as tmp:
        counter = TxCounter(lab)
        print(
            f"# benchmark 3: send rate, SYN to {args.addresses} silent addresses x {ports} "
            f"({probes} probes, no answers); {load_note()}"
        )
        jobs: list[Job] = []
        if not args.no_reference and have("masscan"):
            out = tmp / "masscan.txt"
            argv = masscan_argv(
                lab, f"{FIRST}-{last}", ports, args.masscan_rate, out, router_host="dark", wait=1
            )
            bound = probes / 50000 + 1 + 15  # at worst 50k/s, --wait 1, slack for a hang
            jobs.append(Job(masscan_name, argv, "masscan-list", out, bound))
        jobs.extend(
            Job(label(options), pyscan_argv("syn", targets, ports, options), "none")
            for options in args.pyscan_options or DEFAULT_PYSCAN
        )
        if not args.no_baseline:
            argv = [PYTHON, str(HERE / "_sendto_loop.py"), str(FIRST), str(args.addresses)]
            jobs.append(Job("python sendto loop (prebuilt)", [*argv, str(args.ports)], "none"))
        reference = masscan_name if any(j.tool == masscan_name for j in jobs) else None
        runs = run_jobs(
            lab, counter, jobs, frozenset(), runs=args.runs, timeout=args.timeout,
            reference=reference,
        )  # fmt: skip
    write_json(args.json, "send_rate", runs, probes=probes, targets=targets, ports=ports)
    return 0


if __name__ == "__main__":
    sys.exit(main())
