"""Scan 127.0.0.1 with the pyscan API and print open ports as they are found.

    python examples/scan_localhost.py [PORTS]

Uses a SYN scan when run as root (CAP_NET_RAW), a connect scan otherwise.
"""

from __future__ import annotations

import asyncio
import sys

import pyscan


async def main(ports: str) -> pyscan.ScanReport:
    handle = pyscan.scan("127.0.0.1", ports, skip_discovery=True, timing=4)
    async for result in handle:
        if isinstance(result, pyscan.PortResult) and result.is_open:
            reason = f"{result.reason}, ttl {result.reason.ttl}"
            print(f"{result.port}/{result.protocol} open ({reason})")
    report = await handle
    print(
        f"{len(report.host('127.0.0.1').ports)} ports scanned in {report.stats.elapsed:.2f} s "
        f"({', '.join(report.scan_types)} scan)"
    )
    return report


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1] if len(sys.argv) > 1 else "1-1024"))
