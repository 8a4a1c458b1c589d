"""Run one pyscan scan through the public API and print a compact JSON summary.

    python _pyscan_run.py KIND TARGETS PORTS [--options JSON] [--all-ports]

KIND is syn, connect or udp; TARGETS and PORTS are nmap syntax; ``--options`` is a JSON
object of ScanOptions fields (``{"min_rate": 100000, "max_retries": 2}``). The summary
holds the open ports, a count per state, the scan's own statistics and the time spent in
the scan (without interpreter start-up); with ``--all-ports`` every port's state too.
With ``--stream`` the results are collected as the scan decides them (the handle is
iterated), and a SIGINT prints what was decided so far (``"interrupted": true``).
Closed ports are not printed one by one by default: serialising 250,000 results would time
JSON encoding, not scanning.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import time
from typing import Any

import attrs

import pyscan
from pyscan import PortResult, PortState, ScanReport


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("kind", choices=("syn", "connect", "udp"))
    parser.add_argument("targets")
    parser.add_argument("ports")
    parser.add_argument("--options", default="{}", help="ScanOptions fields as a JSON object")
    parser.add_argument("--all-ports", action="store_true", help="print every port's state")
    parser.add_argument(
        "--stream", action="store_true", help="iterate results; on Ctrl-C print what was found"
    )
    args = parser.parse_args()
    options: dict[str, Any] = json.loads(args.options)
    scan = getattr(pyscan, f"{args.kind}_scan")
    handle = scan(args.targets.split(","), args.ports, **options)
    results: list[PortResult] = []
    stats: dict[str, Any] | None = None
    interrupted = False
    start = time.perf_counter()
    if args.stream:

        async def stream() -> ScanReport:
            async for result in handle:
                results.append(result)
            report: ScanReport = await handle
            return report

        try:
            stats = attrs.asdict(asyncio.run(stream()).stats)
        except KeyboardInterrupt:
            interrupted = True
    else:
        report = asyncio.run(handle.report())
        stats = attrs.asdict(report.stats)
        results = [port for host in report.hosts for port in host.ports]
    elapsed = time.perf_counter() - start
    # counted by state object, named once per state (not per port: 65,535 attribute reads
    # of the enum's value cost more than the counting)
    states = collections.Counter(port.state for port in results)
    opened = [(str(p.address), p.protocol, p.port) for p in results if p.state is PortState.OPEN]
    every: list[tuple[str, str, int, str]] = []
    if args.all_ports:
        every = [(str(p.address), p.protocol, p.port, p.state.value) for p in results]
    out: dict[str, Any] = {
        "open": opened,
        "states": {state.value: n for state, n in states.items()},
        "scan_seconds": elapsed,
        "stats": stats,
        "interrupted": interrupted,
    }
    if args.all_ports:
        out["ports"] = every
    print(json.dumps(out))


if __name__ == "__main__":
    main()
