"""ICMPv4 codec: echo, timestamp, address mask, errors with quoted datagrams."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._wire import (
    ICMPAddressMask,
    ICMPEcho,
    ICMPError,
    ICMPOther,
    ICMPTimestamp,
    ICMPType,
    IPv4Header,
    TimeExceededCode,
    UnreachCode,
    build_icmp,
    build_icmp_address_mask,
    build_icmp_echo,
    build_icmp_error,
    build_icmp_timestamp,
    build_ipv4,
    build_tcp_packet,
    build_udp_packet,
    parse_icmp,
    verify_icmp_checksum,
)
from pyscan.errors import PacketError

from . import vectors as v
from ._st import wire_ipv4, wire_u8, wire_u16, wire_u32


def test_parse_kernel_echo_reply() -> None:
    msg = parse_icmp(v.KERNEL_ECHO_REPLY[20:])
    assert msg == ICMPEcho(
        type=0, code=0, checksum=0x2F36, identifier=0x1234, sequence=1, data=b"pyscan-vector"
    )
    assert msg.is_reply


def test_build_kernel_echo_reply() -> None:
    built = build_icmp_echo(identifier=0x1234, sequence=1, data=b"pyscan-vector", reply=True)
    assert built == v.KERNEL_ECHO_REPLY[20:]


def test_parse_and_build_kernel_timestamp_reply() -> None:
    msg = parse_icmp(v.KERNEL_TIMESTAMP_REPLY[20:])
    assert isinstance(msg, ICMPTimestamp)
    assert msg.is_reply
    assert (msg.identifier, msg.sequence, msg.originate) == (0x1234, 1, 0x01020304)
    assert msg.receive == msg.transmit == 0x04612A2A
    built = build_icmp_timestamp(
        identifier=0x1234,
        sequence=1,
        originate=0x01020304,
        receive=0x04612A2A,
        transmit=0x04612A2A,
        reply=True,
    )
    assert built == v.KERNEL_TIMESTAMP_REPLY[20:]


def test_parse_kernel_port_unreachable() -> None:
    msg = parse_icmp(v.KERNEL_PORT_UNREACH[20:])
    assert isinstance(msg, ICMPError)
    assert msg.type == ICMPType.DEST_UNREACH
    assert msg.code == UnreachCode.PORT
    quoted = msg.quoted
    assert quoted is not None
    assert isinstance(quoted.ip, IPv4Header)
    assert quoted.ip.identification == 0x62B0
    assert quoted.protocol == 17
    assert (quoted.src_port, quoted.dst_port) == (60031, 9)
    assert quoted.tcp_seq is None
    assert quoted.src == quoted.dst == bytes([127, 0, 0, 1])
    assert msg.quoted_raw == v.NMAP_UDP_9
    built = build_icmp_error(icmp_type=3, code=3, quoted=v.NMAP_UDP_9)
    assert built == v.KERNEL_PORT_UNREACH[20:]
    assert verify_icmp_checksum(built)


@given(wire_u16, wire_u16, st.binary(max_size=64), st.booleans(), wire_u8)
def test_echo_round_trip(ident: int, seq: int, data: bytes, reply: bool, code: int) -> None:
    built = build_icmp_echo(identifier=ident, sequence=seq, data=data, reply=reply, code=code)
    assert verify_icmp_checksum(built)
    msg = parse_icmp(built)
    assert isinstance(msg, ICMPEcho)
    assert (msg.identifier, msg.sequence, msg.data, msg.code) == (ident, seq, data, code)
    assert msg.type == (0 if reply else 8)
    assert msg.is_reply == reply


@given(wire_u16, wire_u16, wire_u32, wire_u32, wire_u32, st.booleans())
def test_timestamp_round_trip(
    ident: int, seq: int, orig: int, recv: int, xmit: int, reply: bool
) -> None:
    built = build_icmp_timestamp(
        identifier=ident, sequence=seq, originate=orig, receive=recv, transmit=xmit, reply=reply
    )
    assert verify_icmp_checksum(built)
    msg = parse_icmp(built)
    assert msg == ICMPTimestamp(14 if reply else 13, 0, msg.checksum, ident, seq, orig, recv, xmit)


@given(wire_u16, wire_u16, wire_ipv4, st.booleans())
def test_address_mask_round_trip(ident: int, seq: int, mask: bytes, reply: bool) -> None:
    built = build_icmp_address_mask(identifier=ident, sequence=seq, mask=mask, reply=reply)
    assert verify_icmp_checksum(built)
    msg = parse_icmp(built)
    assert isinstance(msg, ICMPAddressMask)
    assert msg.is_reply == reply
    assert (msg.identifier, msg.sequence, msg.mask) == (ident, seq, mask)


@given(
    src=wire_ipv4,
    dst=wire_ipv4,
    sport=wire_u16,
    dport=wire_u16,
    seq=wire_u32,
    kind=st.sampled_from(["tcp", "udp"]),
    icmp_type=st.sampled_from([3, 4, 5, 11, 12]),
    code=st.integers(0, 15),
    rest=wire_u32,
    cut=st.integers(0, 40),
)
def test_error_quoting_transport(
    src: bytes,
    dst: bytes,
    sport: int,
    dport: int,
    seq: int,
    kind: str,
    icmp_type: int,
    code: int,
    rest: int,
    cut: int,
) -> None:
    if kind == "tcp":
        inner = build_tcp_packet(
            src=src, dst=dst, src_port=sport, dst_port=dport, seq=seq, payload=b"p" * 20
        )
    else:
        inner = build_udp_packet(
            src=src, dst=dst, src_port=sport, dst_port=dport, payload=b"p" * 40
        )
    quoted_bytes = inner[: 28 + cut]  # inner IP + 8 bytes (RFC 792), or a bit more
    built = build_icmp_error(icmp_type=icmp_type, code=code, quoted=quoted_bytes, rest=rest)
    assert verify_icmp_checksum(built)
    msg = parse_icmp(built)
    assert isinstance(msg, ICMPError)
    assert (msg.type, msg.code, msg.rest, msg.quoted_raw) == (icmp_type, code, rest, quoted_bytes)
    q = msg.quoted
    assert q is not None
    assert (q.src, q.dst, q.src_port, q.dst_port) == (src, dst, sport, dport)
    assert q.protocol == (6 if kind == "tcp" else 17)
    assert q.tcp_seq == (seq if kind == "tcp" else None)
    assert q.transport == quoted_bytes[20:]


@given(wire_u16, wire_u16, st.integers(0, 8))
def test_error_quoting_echo(ident: int, seq: int, cut: int) -> None:
    echo = build_icmp_echo(identifier=ident, sequence=seq, data=b"abcdefgh")
    inner = build_ipv4(src=bytes(4), dst=bytes([1, 2, 3, 4]), protocol=1, payload=echo)
    msg = parse_icmp(
        build_icmp_error(icmp_type=11, code=TimeExceededCode.TTL, quoted=inner[: 20 + cut])
    )
    assert isinstance(msg, ICMPError)
    assert msg.quoted is not None
    q = msg.quoted
    assert q.protocol == 1
    assert q.src_port is None
    if cut >= 2:
        assert (q.icmp_type, q.icmp_code) == (8, 0)
    if cut >= 8:
        assert (q.icmp_id, q.icmp_seq) == (ident, seq)
    else:
        assert q.icmp_id is None
        assert q.icmp_seq is None


def test_error_with_short_quote_keeps_ports_none() -> None:
    inner = build_udp_packet(src=bytes(4), dst=bytes(4), src_port=1, dst_port=2)
    msg = parse_icmp(build_icmp_error(icmp_type=3, code=3, quoted=inner[:22]))
    assert isinstance(msg, ICMPError)
    assert msg.quoted is not None
    assert msg.quoted.src_port is None
    assert msg.quoted.transport == inner[20:22]


@pytest.mark.parametrize("junk", [b"", b"\x00" * 30, b"\x65" + bytes(30), b"\x46" + bytes(19)])
def test_error_with_unparseable_quote(junk: bytes) -> None:
    msg = parse_icmp(build_icmp_error(icmp_type=3, code=1, quoted=junk))
    assert isinstance(msg, ICMPError)
    assert msg.quoted is None
    assert msg.quoted_raw == junk


def test_fragment_needed_mtu() -> None:
    msg = parse_icmp(build_icmp_error(icmp_type=3, code=4, quoted=b"", rest=1400))
    assert isinstance(msg, ICMPError)
    assert msg.mtu == 1400


@given(
    st.integers(0, 255).filter(lambda t: t not in {0, 3, 4, 5, 8, 11, 12, 13, 14, 17, 18}),
    wire_u8,
    st.binary(max_size=40),
)
def test_other_round_trip(icmp_type: int, code: int, body: bytes) -> None:
    built = build_icmp(icmp_type=icmp_type, code=code, body=body)
    assert verify_icmp_checksum(built)
    assert parse_icmp(built) == ICMPOther(icmp_type, code, int.from_bytes(built[2:4], "big"), body)


@pytest.mark.parametrize(
    ("data", "offset", "match"),
    [
        (b"\x08\x00\x00", 0, "truncated header"),
        (b"\x08\x00\x00\x00\x00", 4, "truncated echo"),
        (b"\x03\x03\x00\x00\x00", 4, "truncated error"),
        (bytes(19).replace(b"\x00", b"\x0d", 1), 4, "truncated timestamp"),
        (b"\x11" + bytes(10), 4, "truncated address mask"),
    ],
)
def test_errors(data: bytes, offset: int, match: str) -> None:
    with pytest.raises(PacketError, match=match) as info:
        parse_icmp(data)
    assert (info.value.layer, info.value.offset) == ("icmp", offset)


def test_wrong_checksum_fails() -> None:
    bad = bytearray(v.KERNEL_ECHO_REPLY[20:])
    bad[-1] ^= 1
    assert not verify_icmp_checksum(bad)
    assert not verify_icmp_checksum(b"\x08")


def test_builders_reject_bad_arguments() -> None:
    with pytest.raises(ValueError, match="mask"):
        build_icmp_address_mask(identifier=1, sequence=1, mask=b"\xff")
    with pytest.raises(ValueError, match="out of range"):
        build_icmp_echo(identifier=1 << 16, sequence=1)


def test_quote_is_cut_at_inner_total_length() -> None:
    # RFC 4884 and some stacks pad the quote past the inner datagram: not transport bytes.
    inner = build_udp_packet(src=bytes(4), dst=bytes(4), src_port=7, dst_port=9)
    msg = parse_icmp(build_icmp_error(icmp_type=3, code=3, quoted=inner + bytes(12)))
    assert isinstance(msg, ICMPError)
    assert msg.quoted is not None
    assert msg.quoted.transport == inner[20:]
    assert msg.quoted_raw == inner + bytes(12)
