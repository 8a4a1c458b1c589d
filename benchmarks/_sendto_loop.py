"""Baseline for benchmark 3: a plain Python loop of ``sendto`` on a raw socket.

    python _sendto_loop.py FIRST_ADDR COUNT PORTS

Builds one SYN per (address, port) for COUNT addresses from FIRST_ADDR and ports 1..PORTS
(all built before the first send), then sends them in a tight loop: the send ceiling of
one Python thread on this machine, for scale. Refuses addresses outside 198.18.0.0/15.
"""

from __future__ import annotations

import ipaddress
import socket
import struct
import sys
import time

LAB = ipaddress.IPv4Network("198.18.0.0/15")
IP = struct.Struct("!BBHHHBBH4s4s")
TCP = struct.Struct("!HHIIBBHHH")


def checksum(data: bytes) -> int:
    """RFC 1071 ones' complement sum."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return int(~total & 0xFFFF)


def syn(src: bytes, dst: bytes, sport: int, dport: int, seq: int) -> bytes:
    """An IPv4 SYN with correct checksums."""
    header = TCP.pack(sport, dport, seq, 0, 5 << 4, 0x02, 1024, 0, 0)
    pseudo = src + dst + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
    tcp = header[:16] + struct.pack("!H", checksum(pseudo + header)) + header[18:]
    ip = IP.pack(0x45, 0, 40, 0, 0, 64, socket.IPPROTO_TCP, 0, src, dst)
    ip = ip[:10] + struct.pack("!H", checksum(ip)) + ip[12:]
    return ip + tcp


def main() -> None:
    first, count, ports = ipaddress.IPv4Address(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    dsts = [first + i for i in range(count)]
    if not all(d in LAB for d in dsts):
        raise SystemExit(f"refusing to send outside {LAB}")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.connect((str(first), 9))
    src = socket.inet_aton(probe.getsockname()[0])
    probe.close()
    packets = [
        (syn(src, d.packed, 40000, p, p * 2654435761 & 0xFFFFFFFF), (str(d), 0))
        for p in range(1, ports + 1)
        for d in dsts
    ]
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    sendto, sent, retries = sock.sendto, 0, 0
    start = time.perf_counter()
    for packet, addr in packets:
        while True:
            try:
                sendto(packet, addr)
                break
            except BlockingIOError:
                retries += 1
            except OSError as exc:  # ENOBUFS when the qdisc is full: try again
                if exc.errno != 105:
                    raise
                retries += 1
        sent += 1
    elapsed = time.perf_counter() - start
    print(f'{{"sent": {sent}, "seconds": {elapsed:.3f}, "retries": {retries}}}')


if __name__ == "__main__":
    main()
