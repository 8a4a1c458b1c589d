"""IPv4 header codec."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._wire import (
    IPv4Flags,
    IPv4Header,
    build_ipv4,
    internet_checksum,
    parse_ipv4,
    verify_ipv4_checksum,
)
from pyscan.errors import PacketError

from . import vectors as v
from ._st import wire_ipv4, wire_u8, wire_u16


def test_parse_captured_nmap_syn() -> None:
    header, payload = parse_ipv4(v.NMAP_SYN_22)
    assert header == IPv4Header(
        version=4,
        ihl=5,
        tos=0,
        total_length=44,
        identification=0x3819,
        flags=IPv4Flags(0),
        fragment_offset=0,
        ttl=47,
        protocol=6,
        checksum=0x55B1,
        src=bytes([127, 0, 0, 1]),
        dst=bytes([127, 0, 0, 1]),
    )
    assert payload == v.NMAP_SYN_22[20:]
    assert header.src_ip == ipaddress.IPv4Address("127.0.0.1")
    assert header.dst_ip == ipaddress.IPv4Address("127.0.0.1")
    assert verify_ipv4_checksum(v.NMAP_SYN_22)


def test_parse_flags_and_tos() -> None:
    header, _ = parse_ipv4(v.KERNEL_RST_22)
    assert header.dont_fragment
    assert not header.more_fragments
    assert not header.is_fragment
    assert header.flags == IPv4Flags.DF
    unreach, _ = parse_ipv4(v.KERNEL_PORT_UNREACH)
    assert unreach.tos == 0xC0
    assert unreach.dscp == 48
    assert unreach.ecn == 0


def test_build_reproduces_captured_headers() -> None:
    for packet in (v.NMAP_SYN_22, v.KERNEL_RST_22, v.KERNEL_PORT_UNREACH, v.KERNEL_ECHO_REPLY):
        h, payload = parse_ipv4(packet)
        rebuilt = build_ipv4(
            src=h.src,
            dst=h.dst,
            protocol=h.protocol,
            payload=payload,
            ttl=h.ttl,
            identification=h.identification,
            tos=h.tos,
            flags=h.flags,
        )
        assert rebuilt == packet


def test_build_wikipedia_example() -> None:
    built = build_ipv4(
        src=ipaddress.IPv4Address("192.168.0.1"),
        dst=ipaddress.IPv4Address("192.168.0.199"),
        protocol=17,
        payload=bytes(0x73 - 20),
        flags=IPv4Flags.DF,
    )
    assert built[10:12] == v.WIKIPEDIA_IPV4_CHECKSUM.to_bytes(2, "big")
    assert built[:10] == v.WIKIPEDIA_IPV4_HEADER[:10]


@given(
    src=wire_ipv4,
    dst=wire_ipv4,
    protocol=wire_u8,
    payload=st.binary(max_size=64),
    ttl=wire_u8,
    ident=wire_u16,
    tos=wire_u8,
    flags=st.integers(0, 7),
    frag=st.integers(0, 0x1FFF),
    options=st.integers(0, 10).flatmap(lambda n: st.binary(min_size=4 * n, max_size=4 * n)),
    padding=st.binary(max_size=8),
)
def test_round_trip(
    src: bytes,
    dst: bytes,
    protocol: int,
    payload: bytes,
    ttl: int,
    ident: int,
    tos: int,
    flags: int,
    frag: int,
    options: bytes,
    padding: bytes,
) -> None:
    built = build_ipv4(
        src=src,
        dst=dst,
        protocol=protocol,
        payload=payload,
        ttl=ttl,
        identification=ident,
        tos=tos,
        flags=flags,
        fragment_offset=frag,
        options=options,
    )
    assert internet_checksum(built[: 20 + len(options)]) == 0
    assert verify_ipv4_checksum(built)
    header, got_payload = parse_ipv4(built + padding)  # link-layer padding is cut off
    assert got_payload == payload
    assert (header.src, header.dst, header.protocol, header.ttl) == (src, dst, protocol, ttl)
    assert (header.identification, header.tos, int(header.flags)) == (ident, tos, flags)
    assert header.fragment_offset == frag
    assert header.options == options
    assert header.ihl == 5 + len(options) // 4 == header.header_length // 4
    assert header.total_length == len(built)
    assert header.is_fragment == bool(flags & 1 or frag)


def test_bad_checksum_is_detected_not_raised() -> None:
    bad = bytearray(v.NMAP_SYN_22)
    bad[10] ^= 0x40
    assert not verify_ipv4_checksum(bad)
    header, _ = parse_ipv4(bad)  # parsing does not verify
    assert header.checksum == 0x15B1


def test_forced_checksum() -> None:
    built = build_ipv4(src=bytes(4), dst=bytes(4), protocol=6, checksum=0x1234)
    assert built[10:12] == b"\x12\x34"


@pytest.mark.parametrize(
    ("data", "offset", "match"),
    [
        (b"", 0, "truncated header"),
        (bytes.fromhex("65") + v.NMAP_SYN_22[1:], 0, "version is 6"),
        (bytes.fromhex("44") + v.NMAP_SYN_22[1:], 0, "below the minimum"),
        (bytes.fromhex("4f") + v.NMAP_SYN_22[1:], 20, "truncated options"),
        (v.NMAP_SYN_22[:2] + b"\x00\x10" + v.NMAP_SYN_22[4:], 2, "shorter than the header"),
        (v.NMAP_SYN_22[:2] + b"\x00\x2d" + v.NMAP_SYN_22[4:], 44, "truncated datagram"),
    ],
)
def test_errors_name_layer_and_offset(data: bytes, offset: int, match: str) -> None:
    with pytest.raises(PacketError, match=match) as info:
        parse_ipv4(data)
    assert info.value.layer == "ipv4"
    assert info.value.offset == offset


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ttl": 256},
        {"options": b"\x01\x01\x01"},
        {"options": bytes(44)},
        {"fragment_offset": 0x2000},
        {"flags": 8},
        {"payload": bytes(0x10000)},
    ],
)
def test_build_rejects_out_of_range(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        build_ipv4(src=bytes(4), dst=bytes(4), protocol=6, **kwargs)  # type: ignore[arg-type]


def test_build_rejects_ipv6_addresses() -> None:
    with pytest.raises(ValueError, match="IPv4"):
        build_ipv4(src=bytes(16), dst=bytes(16), protocol=6)
