"""Shared benchmark plumbing: run a command in the lab's scanner namespace and measure it.

Each measurement reports wall time, CPU seconds (user+sys of the child), peak RSS, packets
counted at the scanner's interface (not what a tool says it sent) and open ports found.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path

import attrs

from pyscan.testing.netlab import Lab

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


@attrs.frozen
class Measurement:
    """One tool's run."""

    tool: str
    wall: float
    cpu: float
    peak_rss_mb: float
    tx_packets: int
    open_ports: frozenset[tuple[str, str, int]]
    expected_open: frozenset[tuple[str, str, int]]

    @property
    def pps(self) -> float:
        """Packets per second put on the wire by the scanner namespace."""
        return self.tx_packets / self.wall if self.wall else 0.0

    @property
    def exact(self) -> bool:
        """Found exactly the configured open ports."""
        return self.open_ports == self.expected_open


def tx_packets(lab: Lab) -> int:
    """Packets sent so far by the scanner namespace's interface."""
    out = lab.run(["cat", "/sys/class/net/eth0/statistics/tx_packets"], check=True)
    return int(out.stdout.strip())


def measure(
    lab: Lab,
    tool: str,
    argv: Sequence[str],
    expected_open: frozenset[tuple[str, str, int]],
    *,
    timeout: float = 900,
) -> Measurement:
    """Run ``argv`` in the scanner namespace (XML or pyscan JSON on stdout) and measure it."""
    before = tx_packets(lab)
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run(
        lab.netns_argv([*argv]), capture_output=True, text=True, timeout=timeout, check=False
    )
    wall = time.perf_counter() - start
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise RuntimeError(f"{tool} failed ({proc.returncode}): {proc.stderr.strip()[-500:]}")
    sent = tx_packets(lab) - before
    cpu = (usage1.ru_utime - usage0.ru_utime) + (usage1.ru_stime - usage0.ru_stime)
    peak = usage1.ru_maxrss / 1024
    return Measurement(tool, wall, cpu, peak, sent, _open_ports(proc.stdout), expected_open)


def _open_ports(out: str) -> frozenset[tuple[str, str, int]]:
    text = out.lstrip()
    found: set[tuple[str, str, int]] = set()
    if text.startswith(("<?xml", "<nmaprun")):
        for host in ET.fromstring(text).iter("host"):
            addr = host.find("address").get("addr")  # type: ignore[union-attr]
            for port in host.iter("port"):
                if port.find("state").get("state") == "open":  # type: ignore[union-attr]
                    found.add((addr, port.get("protocol"), int(port.get("portid"))))  # type: ignore[arg-type]
        return frozenset(found)
    data = json.loads(text)
    for host in data["hosts"]:
        for port in host["ports"]:
            if port["state"] == "open":
                found.add((host["address"], port["protocol"], port["port"]))
    return frozenset(found)


def pyscan_argv(kind: str, hosts: Sequence[str], ports: str, **options: object) -> list[str]:
    """A pyscan scan through the library (the CLI may not exist yet): JSON report on stdout."""
    opts = ", ".join(f"{k}={v!r}" for k, v in options.items())
    code = (
        "import asyncio, json, pyscan\n"
        f"r = asyncio.run(pyscan.{kind}_scan({list(hosts)!r}, {ports!r}, {opts}).report())\n"
        "print(json.dumps(r.to_dict()))\n"
    )
    return [PYTHON, "-c", code]


def table(rows: Sequence[Measurement], reference: str) -> str:
    """The results as a fixed-width table with each tool's wall-time ratio to ``reference``."""
    ref = {m.tool: m for m in rows}.get(reference)
    header = (
        f"{'tool':28} {'wall s':>8} {'pkts/s':>9} {'cpu s':>7} {'rss MB':>7} "
        f"{'open':>5} {'exact':>5} {'vs ' + reference:>14}"
    )
    lines = [header]
    for m in rows:
        ratio = f"{m.wall / ref.wall:.2f}x" if ref and ref.wall else "-"
        lines.append(
            f"{m.tool:28} {m.wall:8.2f} {m.pps:9.0f} {m.cpu:7.2f} {m.peak_rss_mb:7.1f} "
            f"{len(m.open_ports):5d} {('yes' if m.exact else 'NO'):>5} {ratio:>14}"
        )
    return "\n".join(lines)


def env_ok() -> str | None:
    """Why benchmarks cannot run here, or None."""
    from pyscan.testing.netlab import unavailable_reason  # noqa: PLC0415

    if os.geteuid() != 0:
        return "benchmarks need root (namespace lab, raw sockets)"
    return unavailable_reason()
