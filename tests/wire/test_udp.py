"""UDP codec and its checksum rules."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._wire import (
    UDPHeader,
    build_udp,
    internet_checksum,
    parse_udp,
    pseudo_header_sum,
    verify_udp_checksum,
)
from pyscan.errors import PacketError

from . import vectors as v
from ._st import wire_address_pair, wire_u16


def test_parse_nmap_probe() -> None:
    header, payload = parse_udp(v.NMAP_UDP_9[20:])
    assert header == UDPHeader(src_port=60031, dst_port=9, length=8, checksum=0x1753)
    assert payload == b""
    assert verify_udp_checksum(v.NMAP_UDP_9[20:], v.NMAP_UDP_9[12:16], v.NMAP_UDP_9[16:20])


def test_build_reproduces_nmap_probe() -> None:
    src, dst = v.NMAP_UDP_9[12:16], v.NMAP_UDP_9[16:20]
    assert build_udp(src=src, dst=dst, src_port=60031, dst_port=9) == v.NMAP_UDP_9[20:]


@given(wire_address_pair, wire_u16, wire_u16, st.binary(max_size=100), st.binary(max_size=5))
def test_round_trip(
    addrs: tuple[bytes, bytes], sport: int, dport: int, payload: bytes, trailer: bytes
) -> None:
    src, dst = addrs
    built = build_udp(src=src, dst=dst, src_port=sport, dst_port=dport, payload=payload)
    assert verify_udp_checksum(built, src, dst)
    header, got = parse_udp(built + trailer)
    assert (header.src_port, header.dst_port, header.length) == (sport, dport, 8 + len(payload))
    assert header.checksum != 0  # 0 is "no checksum": a computed 0 goes out as 0xFFFF
    assert got == payload


def test_computed_zero_is_sent_as_ffff() -> None:
    # Pick a payload word that makes the ones' complement sum 0xFFFF (checksum 0).
    src, dst = bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])
    base = build_udp(src=src, dst=dst, src_port=1, dst_port=2, payload=b"\x00\x00", checksum=0)
    partial = ~internet_checksum(base, pseudo_header_sum(src, dst, 17, 10)) & 0xFFFF
    word = (0xFFFF - partial).to_bytes(2, "big")
    built = build_udp(src=src, dst=dst, src_port=1, dst_port=2, payload=word)
    assert built[6:8] == b"\xff\xff"
    assert verify_udp_checksum(built, src, dst)


def test_zero_checksum_means_none_on_ipv4_only() -> None:
    built = build_udp(src=bytes(4), dst=bytes(4), src_port=1, dst_port=2, payload=b"x", checksum=0)
    assert verify_udp_checksum(built, bytes(4), bytes(4))
    built6 = build_udp(
        src=bytes(16), dst=bytes(16), src_port=1, dst_port=2, payload=b"x", checksum=0
    )
    assert not verify_udp_checksum(built6, bytes(16), bytes(16))


def test_wrong_checksum_fails() -> None:
    bad = bytearray(v.NMAP_UDP_9[20:])
    bad[7] ^= 1
    assert not verify_udp_checksum(bad, v.NMAP_UDP_9[12:16], v.NMAP_UDP_9[16:20])


@pytest.mark.parametrize(
    ("data", "offset", "match"),
    [
        (b"\x00" * 7, 0, "truncated header"),
        (bytes.fromhex("0001000200070000"), 4, "below the minimum"),
        (bytes.fromhex("000100020010000041"), 9, "truncated datagram"),
    ],
)
def test_errors(data: bytes, offset: int, match: str) -> None:
    with pytest.raises(PacketError, match=match) as info:
        parse_udp(data)
    assert (info.value.layer, info.value.offset) == ("udp", offset)


def test_build_rejects_out_of_range_port() -> None:
    with pytest.raises(ValueError, match="out of range"):
        build_udp(src=bytes(4), dst=bytes(4), src_port=70000, dst_port=1)
