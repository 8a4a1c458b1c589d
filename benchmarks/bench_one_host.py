"""One lab host x 65535 TCP ports: pyscan SYN and connect scans against nmap -sS/-sT -T4.

    python benchmarks/bench_one_host.py [--runs N]

Prints, for each tool in the same lab run: wall time, packets/s at the scanner interface,
CPU seconds, peak RSS, open ports found (and whether exactly the configured ones) and the
wall-time ratio to the matching nmap run.
"""

from __future__ import annotations

import argparse
import shutil
import sys

from _common import env_ok, measure, pyscan_argv, table

from pyscan.testing.netlab import Behaviour, HostConfig, Lab, LabConfig, PortRule

OPEN = (22, 80, 443, 8080, 31337, 65535)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    args = parser.parse_args()
    reason = env_ok()
    if reason:
        print(f"skipped: {reason}")
        return 0
    nmap = shutil.which("nmap")
    rules = tuple(PortRule("tcp", p, Behaviour.OPEN) for p in OPEN)
    config = LabConfig(hosts=(HostConfig("target", "198.18.0.10", ports=rules),))
    target = "198.18.0.10"
    expected = frozenset((target, "tcp", p) for p in OPEN)
    scan = ([target], "1-65535")
    nmap_args = ["-n", "-Pn", "-T4", "-p-", "-oX", "-"]
    with Lab(config) as lab:
        for run in range(args.runs):
            syn = [measure(lab, "pyscan syn (T4)", pyscan_argv("syn", *scan), expected)]
            connect = [measure(lab, "pyscan connect (T4)", pyscan_argv("connect", *scan), expected)]
            if nmap:
                syn.append(
                    measure(lab, "nmap -sS -T4", [nmap, *nmap_args, "-sS", target], expected)
                )
                connect.append(
                    measure(lab, "nmap -sT -T4", [nmap, *nmap_args, "-sT", target], expected)
                )
            print(f"\n# run {run + 1}: 1 host x 65535 TCP ports, {len(OPEN)} open")
            print(table(syn, "nmap -sS -T4"))
            print(table(connect, "nmap -sT -T4"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
