"""Version detection (-sV) on the lab's real Debian daemons: pyscan against nmap -sV.

    python benchmarks/bench_version.py [--runs N]

Starts the daemons of pyscan.testing.daemons in a lab namespace, then runs, in the same lab
run and on the same ports: ``nmap -sV``, ``pyscan -sV`` with nmap's probe file, and
``pyscan -sV`` with pyscan's built-in probe file. Prints wall time, the ratio to nmap, and
how many ports got nmap's answer (service, product, version; the built-in file is judged on
service and product).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from pyscan.testing.daemons import DaemonSet, daemon_lab_config, start_daemons
from pyscan.testing.netlab import Lab, unavailable_reason

PYSCAN = str(Path(sys.executable).with_name("pyscan"))
Key = tuple[str, int]


def _services(xml: str) -> dict[Key, tuple[str | None, str | None, str | None]]:
    found = {}
    for port in ET.fromstring(xml).iter("port"):
        svc = port.find("service")
        state = port.find("state")
        if state is None or state.get("state") != "open" or svc is None:
            continue
        name = ("ssl/" if svc.get("tunnel") == "ssl" else "") + (svc.get("name") or "")
        key = (port.get("protocol") or "", int(port.get("portid") or 0))
        found[key] = (name, svc.get("product"), svc.get("version"))
    return found


def _run(lab: Lab, argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    start = time.perf_counter()
    proc = subprocess.run(
        lab.netns_argv(argv), capture_output=True, text=True, timeout=900, check=False,
        env={**os.environ, **(env or {})},
    )  # fmt: skip
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{argv[0]} failed: {proc.stderr.strip()[-400:]}")
    return wall, proc.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    reason = unavailable_reason()
    nmap = shutil.which("nmap")
    if reason or nmap is None or os.geteuid() != 0:
        print(f"skipped: {reason or 'needs root and nmap'}")
        return 0
    with Lab(daemon_lab_config()) as lab:
        ds: DaemonSet = start_daemons(lab)
        with ds:
            tcp = sorted(p for proto, p in ds.truth if proto == "tcp")
            udp = sorted(p for proto, p in ds.truth if proto == "udp")
            spec = ",".join([f"T:{p}" for p in tcp] + [f"U:{p}" for p in udp])
            common = ["-n", "-Pn", "-sS", "-sU", "-sV", "-p", spec, "-oX", "-", ds.address]
            tools = {
                "nmap -sV": ([nmap, *common], None),
                "pyscan -sV (nmap db)": ([PYSCAN, *common], None),
                "pyscan -sV (built-in db)": ([PYSCAN, *common], {"PYSCAN_NO_NMAP_DATA": "1"}),
            }
            walls: dict[str, list[float]] = {name: [] for name in tools}
            answers: dict[str, dict[Key, tuple[str | None, str | None, str | None]]] = {}
            for _ in range(args.runs):
                for name, (argv, env) in tools.items():
                    wall, out = _run(lab, argv, env)
                    walls[name].append(wall)
                    answers[name] = _services(out)
            ref = answers["nmap -sV"]
            ref_wall = statistics.median(walls["nmap -sV"])
            print(
                f"{len(ds.truth)} daemon ports ({len(tcp)} TCP, {len(udp)} UDP), runs={args.runs}"
            )
            print(f"{'tool':28} {'wall s':>8} {'vs nmap':>8} {'agree':>12}")
            for name in tools:
                wall = statistics.median(walls[name])
                got = answers[name]
                width = 2 if "built-in" in name else 3
                agree = sum(
                    1 for k, v in ref.items() if got.get(k, (None,) * 3)[:width] == v[:width]
                )
                what = "svc+product" if width == 2 else "svc+prod+ver"
                print(f"{name:28} {wall:8.1f} {wall / ref_wall:7.2f}x {agree:3d}/{len(ref)} {what}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
