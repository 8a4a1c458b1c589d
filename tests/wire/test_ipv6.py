"""IPv6 header codec and extension-header walk."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._wire import (
    build_ipv6,
    build_ipv6_extension,
    build_ipv6_fragment_header,
    build_udp,
    parse_ipv6,
)
from pyscan.errors import PacketError

from . import vectors as v
from ._st import wire_ipv6, wire_u8


def test_parse_vector() -> None:
    header, payload = parse_ipv6(v.IPV6_UDP)
    assert header.src_ip == ipaddress.IPv6Address("2001:db8::1")
    assert header.dst_ip == ipaddress.IPv6Address("2001:db8::2")
    assert (header.next_header, header.upper_layer, header.header_length) == (17, 17, 40)
    assert (header.payload_length, header.hop_limit, header.extensions) == (14, 64, ())
    assert payload == v.IPV6_UDP[40:]


def test_build_vector() -> None:
    src, dst = v.IPV6_UDP[8:24], v.IPV6_UDP[24:40]
    udp = build_udp(src=src, dst=dst, src_port=5353, dst_port=53, payload=b"pyscan")
    assert build_ipv6(src=src, dst=dst, next_header=17, payload=udp) == v.IPV6_UDP


@given(
    src=wire_ipv6,
    dst=wire_ipv6,
    tclass=wire_u8,
    flow=st.integers(0, 0xFFFFF),
    hlim=wire_u8,
    payload=st.binary(max_size=40),
    chain=st.lists(st.sampled_from([0, 43, 60, 51, 44, 135]), max_size=5),
    bodies=st.lists(st.binary(max_size=20), min_size=5, max_size=5),
    upper=st.sampled_from([6, 17, 58, 132, 200]),
    padding=st.binary(max_size=6),
)
def test_round_trip_with_extension_chain(
    src: bytes,
    dst: bytes,
    tclass: int,
    flow: int,
    hlim: int,
    payload: bytes,
    chain: list[int],
    bodies: list[bytes],
    upper: int,
    padding: bytes,
) -> None:
    # Build the chain back to front: each header names the one after it.
    data = payload
    nxt = upper
    for kind, body in zip(reversed(chain), bodies, strict=False):
        if kind == 44:
            data = build_ipv6_fragment_header(nxt, 0, more_fragments=True, identification=7) + data
        else:
            data = build_ipv6_extension(kind, nxt, body) + data
        nxt = kind
    built = build_ipv6(
        src=src,
        dst=dst,
        next_header=nxt,
        payload=data,
        hop_limit=hlim,
        traffic_class=tclass,
        flow_label=flow,
    )
    header, got = parse_ipv6(built + padding)
    assert (header.src, header.dst, header.hop_limit) == (src, dst, hlim)
    assert (header.traffic_class, header.flow_label) == (tclass, flow)
    assert header.next_header == nxt
    assert header.upper_layer == upper
    assert header.extensions == tuple(chain)
    assert header.header_length == len(built) - len(payload)
    assert got == payload
    assert header.more_fragments == (44 in chain)
    assert header.fragment_offset == 0


def test_later_fragment_stops_the_walk() -> None:
    data = build_ipv6_fragment_header(6, fragment_offset=185, identification=1) + b"x" * 16
    built = build_ipv6(src=bytes(16), dst=bytes(16), next_header=44, payload=data)
    header, payload = parse_ipv6(built)
    assert header.is_fragment
    assert header.fragment_offset == 185
    assert not header.more_fragments
    assert header.upper_layer == 6
    assert payload == b"x" * 16


def test_ah_length_rule() -> None:
    ah = build_ipv6_extension(51, 59, bytes(10))
    assert len(ah) == 16
    assert ah[1] == 16 // 4 - 2
    built = build_ipv6(src=bytes(16), dst=bytes(16), next_header=51, payload=ah)
    header, payload = parse_ipv6(built)
    assert header.upper_layer == 59
    assert header.header_length == 56
    assert payload == b""


@pytest.mark.parametrize(
    ("mutate", "offset", "match"),
    [
        (lambda b: b[:39], 0, "truncated header"),
        (lambda b: b"\x40" + b[1:], 0, "version is 4"),
        (lambda b: b[:5] + b"\x0f" + b[6:], 54, "truncated datagram"),
        (lambda b: b[:6] + b"\x00" + b[7:], 41, "overruns"),  # next header 0 with a UDP body
    ],
)
def test_errors(mutate: object, offset: int, match: str) -> None:
    with pytest.raises(PacketError, match=match) as info:
        parse_ipv6(mutate(v.IPV6_UDP))  # type: ignore[operator]
    assert (info.value.layer, info.value.offset) == ("ipv6", offset)


def test_builders_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="IPv6"):
        build_ipv6(src=bytes(4), dst=bytes(4), next_header=6)
    with pytest.raises(ValueError, match="out of range"):
        build_ipv6(src=bytes(16), dst=bytes(16), next_header=6, flow_label=1 << 20)
    with pytest.raises(ValueError, match="variable-length"):
        build_ipv6_extension(44, 6)
    with pytest.raises(ValueError, match="13 bits"):
        build_ipv6_fragment_header(6, 0x2000)
