"""Micro-benchmark of the probe templates and the receive-side parser.

Prints packets built (or parsed) per second for each path. Pure computation: sends nothing.

    .venv/bin/python benchmarks/bench_template.py [--seconds 1.0]
"""

from __future__ import annotations

import argparse
import ipaddress
import time
from collections.abc import Callable

from pyscan._wire import (
    TCPTemplate,
    TCPTemplate6,
    UDPTemplate,
    UDPTemplate6,
    build_tcp_packet,
    parse_packet,
)


def rate(label: str, run: Callable[[int], None], seconds: float) -> None:
    """Call ``run(n)`` with growing batches for about ``seconds`` and print the rate."""
    n, done, start = 1000, 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        run(n)
        done += n
        n = min(n * 2, 200_000)
    print(f"{label:<44} {done / elapsed:>12,.0f} /s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=1.0, help="time per measurement")
    seconds = parser.parse_args().seconds

    src4 = ipaddress.IPv4Address("198.18.0.1")
    dst4 = int(ipaddress.IPv4Address("198.18.1.0"))
    src6 = ipaddress.IPv6Address("2001:db8::1")
    dst6 = int(ipaddress.IPv6Address("2001:db8::100"))
    syn4, syn6 = TCPTemplate(src4), TCPTemplate6(src6)
    udp4, udp6 = UDPTemplate(src4, b"\x00" * 40), UDPTemplate6(src6, b"\x00" * 40)

    def tcp4_build(n: int) -> None:
        build = syn4.build
        for i in range(n):
            build(
                dst4 + (i & 0xFF), 1 + (i & 0x3FF), 40000 + (i & 0xFFF), i * 2654435761 & 0xFFFFFFFF
            )

    batch = bytearray(syn4.length * 1024)

    def tcp4_batch(n: int) -> None:
        write, length = syn4.write_into, syn4.length
        for i in range(n):
            write(batch, (i & 1023) * length, dst4 + (i & 0xFF), 1 + (i & 0x3FF), 40000, i)

    def tcp6_build(n: int) -> None:
        build = syn6.build
        for i in range(n):
            build(dst6 + (i & 0xFF), 1 + (i & 0x3FF), 40000, i)

    def udp4_build(n: int) -> None:
        build = udp4.build
        for i in range(n):
            build(dst4 + (i & 0xFF), 1 + (i & 0x3FF), 40000)

    def udp6_build(n: int) -> None:
        build = udp6.build
        for i in range(n):
            build(dst6 + (i & 0xFF), 1 + (i & 0x3FF), 40000)

    def fresh_build(n: int) -> None:
        for i in range(n):
            build_tcp_packet(src=src4, dst=src4, src_port=40000, dst_port=1 + (i & 0x3FF), seq=i)

    reply = build_tcp_packet(src=src4, dst=src4, src_port=80, dst_port=40000, flags=0x12, seq=1)

    def parse(n: int) -> None:
        for _ in range(n):
            parse_packet(reply)

    rate("TCPTemplate.build (IPv4 SYN)", tcp4_build, seconds)
    rate("TCPTemplate.write_into (IPv4 SYN, batch)", tcp4_batch, seconds)
    rate("TCPTemplate6.build (IPv6 SYN)", tcp6_build, seconds)
    rate("UDPTemplate.build (IPv4, 40-byte payload)", udp4_build, seconds)
    rate("UDPTemplate6.build (IPv6, 40-byte payload)", udp6_build, seconds)
    rate("build_tcp_packet (no template, for scale)", fresh_build, seconds)
    rate("parse_packet (IPv4 SYN-ACK)", parse, seconds)


if __name__ == "__main__":
    main()
