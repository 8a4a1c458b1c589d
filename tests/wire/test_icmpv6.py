"""ICMPv6 codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._wire import (
    ICMPEcho,
    ICMPError,
    ICMPOther,
    ICMPv6Type,
    ICMPv6UnreachCode,
    IPv6Header,
    build_icmpv6,
    build_icmpv6_echo,
    build_icmpv6_error,
    build_ipv6,
    build_ipv6_extension,
    build_tcp,
    build_udp_packet,
    ipv6_pseudo_header_sum,
    parse_icmpv6,
    verify_icmpv6_checksum,
)
from pyscan.errors import PacketError

from . import vectors as v
from ._st import wire_ipv6, wire_u8, wire_u16, wire_u32
from .test_checksum import naive_checksum


@given(wire_ipv6, wire_ipv6, wire_u16, wire_u16, st.binary(max_size=64), st.booleans())
def test_echo_round_trip(
    src: bytes, dst: bytes, ident: int, seq: int, data: bytes, reply: bool
) -> None:
    built = build_icmpv6_echo(
        src=src, dst=dst, identifier=ident, sequence=seq, data=data, reply=reply
    )
    # Independent oracle: the word-by-word sum over an explicit pseudo-header.
    pseudo = src + dst + len(built).to_bytes(4, "big") + b"\x00\x00\x00\x3a"
    zeroed = built[:2] + b"\x00\x00" + built[4:]
    assert int.from_bytes(built[2:4], "big") == naive_checksum(pseudo + zeroed)
    assert verify_icmpv6_checksum(built, src, dst)
    msg = parse_icmpv6(built)
    assert isinstance(msg, ICMPEcho)
    assert msg.is_reply == reply
    assert msg.type == (ICMPv6Type.ECHO_REPLY if reply else ICMPv6Type.ECHO_REQUEST)
    assert (msg.identifier, msg.sequence, msg.data) == (ident, seq, data)


@given(
    src=wire_ipv6,
    dst=wire_ipv6,
    sport=wire_u16,
    dport=wire_u16,
    icmp_type=st.sampled_from([1, 2, 3, 4]),
    code=wire_u8,
    rest=wire_u32,
    cut=st.integers(0, 20),
)
def test_error_round_trip(
    src: bytes, dst: bytes, sport: int, dport: int, icmp_type: int, code: int, rest: int, cut: int
) -> None:
    inner = build_udp_packet(src=src, dst=dst, src_port=sport, dst_port=dport, payload=bytes(30))
    quoted = inner[: 48 + cut]
    built = build_icmpv6_error(
        src=dst, dst=src, icmp_type=icmp_type, code=code, quoted=quoted, rest=rest
    )
    assert verify_icmpv6_checksum(built, dst, src)
    msg = parse_icmpv6(built)
    assert isinstance(msg, ICMPError)
    assert msg.quoted is not None
    assert (msg.type, msg.code, msg.rest, msg.quoted_raw) == (icmp_type, code, rest, quoted)
    assert (msg.quoted.src_port, msg.quoted.dst_port) == (sport, dport)
    assert msg.quoted.protocol == 17
    assert msg.quoted.src == src
    if icmp_type == 2:
        assert msg.mtu == rest


def test_quoted_with_extension_headers_and_tcp() -> None:
    src, dst = bytes(15) + b"\x01", bytes(15) + b"\x02"
    tcp = build_tcp(src=src, dst=dst, src_port=4444, dst_port=80, seq=0xDEADBEEF)
    inner = build_ipv6(
        src=src, dst=dst, next_header=60, payload=build_ipv6_extension(60, 6, b"") + tcp
    )
    built = build_icmpv6_error(
        src=dst, dst=src, icmp_type=1, code=ICMPv6UnreachCode.PORT, quoted=inner[:56]
    )
    msg = parse_icmpv6(built)
    assert isinstance(msg, ICMPError)
    assert msg.quoted is not None
    q = msg.quoted
    assert q.protocol == 6
    assert (q.src_port, q.dst_port, q.tcp_seq) == (4444, 80, 0xDEADBEEF)
    assert isinstance(q.ip, IPv6Header)
    assert q.ip.extensions == (60,)


def test_quoted_echo() -> None:
    src, dst = bytes(16), bytes(15) + b"\x09"
    echo = build_icmpv6_echo(src=src, dst=dst, identifier=77, sequence=5)
    inner = build_ipv6(src=src, dst=dst, next_header=58, payload=echo)
    msg = parse_icmpv6(build_icmpv6_error(src=dst, dst=src, icmp_type=3, code=0, quoted=inner))
    assert isinstance(msg, ICMPError)
    assert msg.quoted is not None
    assert (msg.quoted.icmp_type, msg.quoted.icmp_id, msg.quoted.icmp_seq) == (128, 77, 5)


def test_neighbour_solicitation_is_other() -> None:
    src, dst = bytes(16), bytes(16)
    built = build_icmpv6(src=src, dst=dst, icmp_type=135, body=bytes(20))
    assert parse_icmpv6(built) == ICMPOther(135, 0, int.from_bytes(built[2:4], "big"), bytes(20))
    assert verify_icmpv6_checksum(built, src, dst)


def test_checksum_depends_on_addresses() -> None:
    a, b = bytes(16), bytes(15) + b"\x01"
    built = build_icmpv6_echo(src=a, dst=b, identifier=1, sequence=1)
    assert not verify_icmpv6_checksum(built, a, a)
    assert ipv6_pseudo_header_sum(a, b, 58, 8) != ipv6_pseudo_header_sum(a, a, 58, 8)


def test_ipv4_types_are_not_special_in_v6() -> None:
    # Type 13 is a timestamp in ICMPv4 but unassigned in ICMPv6: kept generic.
    msg = parse_icmpv6(b"\x0d\x00\x00\x00" + bytes(4))
    assert isinstance(msg, ICMPOther)
    assert isinstance(parse_icmpv6(v.IPV6_UDP[40:]), ICMPOther)  # type 0x14: unassigned


@pytest.mark.parametrize(
    ("data", "offset", "match"),
    [
        (b"\x80", 0, "truncated header"),
        (b"\x81\x00\x00\x00\x00", 4, "truncated echo"),
        (b"\x02\x00\x00\x00", 4, "truncated error"),
    ],
)
def test_errors(data: bytes, offset: int, match: str) -> None:
    with pytest.raises(PacketError, match=match) as info:
        parse_icmpv6(data)
    assert (info.value.layer, info.value.offset) == ("icmpv6", offset)


def test_builders_need_ipv6_addresses() -> None:
    with pytest.raises(ValueError, match="IPv6"):
        build_icmpv6_echo(src=bytes(4), dst=bytes(4), identifier=1, sequence=1)
