"""tcpdump as an independent checksum oracle: it re-verifies packets we build, offline.

The packets go into a pcap file (link type RAW) that ``tcpdump -r`` reads; nothing is sent.
Skipped when tcpdump is not installed.
"""

from __future__ import annotations

import random
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from pyscan._wire import (
    MSS,
    NOP,
    SACKPermitted,
    TCPOption,
    Timestamps,
    UDPTemplate,
    WindowScale,
    build_echo_packet,
    build_icmp_error,
    build_icmp_packet,
    build_icmp_timestamp,
    build_tcp_packet,
    build_udp_packet,
    tcp_template,
)

TCPDUMP = shutil.which("tcpdump")
pytestmark = pytest.mark.skipif(TCPDUMP is None, reason="tcpdump is not installed")

LINKTYPE_RAW = 101


def _pcap(path: Path, packets: list[bytes]) -> None:
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, LINKTYPE_RAW)]
    for index, packet in enumerate(packets):
        out.append(struct.pack("<IIII", index, 0, len(packet), len(packet)) + packet)
    path.write_bytes(b"".join(out))


def _random_packets(rng: random.Random, count: int) -> list[tuple[str, bytes]]:
    packets: list[tuple[str, bytes]] = []
    for _ in range(count):
        v6 = rng.random() < 0.5
        size = 16 if v6 else 4
        src, dst = rng.randbytes(size), rng.randbytes(size)
        if not v6:  # tcpdump treats some v4 ranges specially; keep to ordinary unicast
            src, dst = bytes([198, 18]) + src[2:], bytes([198, 19]) + dst[2:]
        sport, dport = rng.randrange(1, 65536), rng.randrange(1, 65536)
        payload = rng.randbytes(rng.randrange(0, 40))
        kind = rng.choice(["tcp", "udp", "echo", "template", "udptemplate", "icmp_error"])
        if kind == "tcp":
            options: list[TCPOption] = rng.choice(
                [
                    [],
                    [MSS(1460)],
                    [
                        MSS(1400),
                        SACKPermitted(),
                        Timestamps(rng.randrange(1 << 32), 0),
                        NOP(),
                        WindowScale(7),
                    ],
                ]
            )
            pkt = build_tcp_packet(
                src=src,
                dst=dst,
                src_port=sport,
                dst_port=dport,
                seq=rng.randrange(1 << 32),
                ack=rng.randrange(1 << 32),
                flags=rng.choice([0x02, 0x12, 0x10, 0x18, 0x04, 0x11]),
                options=options,
                payload=payload,
                ttl=rng.randrange(1, 256),
                identification=rng.randrange(65536),
            )
        elif kind == "udp":
            pkt = build_udp_packet(
                src=src, dst=dst, src_port=sport, dst_port=dport, payload=payload
            )
        elif kind == "echo":
            pkt = build_echo_packet(
                src=src, dst=dst, identifier=sport, sequence=dport, data=payload
            )
        elif kind == "template":
            pkt = tcp_template(src).build(
                int.from_bytes(dst, "big"), dport, sport, rng.randrange(1 << 32)
            )
        elif kind == "udptemplate" and not v6:
            pkt = UDPTemplate(src, payload).build(int.from_bytes(dst, "big"), dport, sport)
        elif not v6:
            probe = build_udp_packet(src=dst, dst=src, src_port=dport, dst_port=sport)
            pkt = build_icmp_packet(
                src=src, dst=dst, message=build_icmp_error(icmp_type=3, code=3, quoted=probe)
            )
        else:
            kind = "echo"
            pkt = build_echo_packet(src=src, dst=dst, identifier=sport, sequence=dport)
        if kind == "echo" and not v6 and rng.random() < 0.3:
            kind = "timestamp"
            pkt = build_icmp_packet(
                src=src,
                dst=dst,
                message=build_icmp_timestamp(
                    identifier=sport, sequence=dport, originate=rng.randrange(1 << 31)
                ),
            )
        packets.append((f"{kind}/{'v6' if v6 else 'v4'}", pkt))
    return packets


def _tcpdump_records(path: Path) -> dict[int, str]:
    assert TCPDUMP is not None
    out = subprocess.run(
        [TCPDUMP, "-r", str(path), "-nn", "-vv", "-tt"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    records: dict[int, str] = {}
    current = -1
    for line in out.splitlines():
        match = re.match(r"^(\d+)\.\d+ ", line)
        if match:
            current = int(match.group(1))
            records[current] = line
        else:
            records[current] += "\n" + line
    return records


def _verdict(text: str) -> bool:
    bad = ("incorrect", "bad cksum", "bad udp cksum", "wrong icmp cksum", "bad icmp6 cksum", "[bad")
    if any(word in text for word in bad):
        return False
    good = ("(correct)", "udp sum ok", "icmp6 sum ok")
    return any(word in text for word in good) or "ICMP" in text


def test_tcpdump_agrees_with_our_checksums(tmp_path: Path) -> None:
    packets = _random_packets(random.Random(20240521), 300)
    path = tmp_path / "ours.pcap"
    _pcap(path, [p for _, p in packets])
    records = _tcpdump_records(path)
    assert len(records) == len(packets)
    failures = [
        (kind, records[i]) for i, (kind, _) in enumerate(packets) if not _verdict(records[i])
    ]
    assert not failures, failures[:3]


def test_tcpdump_catches_corruption(tmp_path: Path) -> None:
    # The oracle must be able to say no: flip one bit of the last byte, which always lies in
    # the transport layer and so breaks its checksum.
    packets = []
    for _, pkt in _random_packets(random.Random(7), 80):
        broken = bytearray(pkt)
        broken[-1] ^= 0x01
        packets.append(bytes(broken))
    path = tmp_path / "broken.pcap"
    _pcap(path, packets)
    records = _tcpdump_records(path)
    assert packets
    assert all(not _verdict(records[i]) for i in range(len(packets)))
