"""parse_packet and the one-call datagram builders."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._wire import (
    MSS,
    ICMPEcho,
    ICMPError,
    ICMPTimestamp,
    IPv4Header,
    IPv6Header,
    Packet,
    TCPFlags,
    build_echo_packet,
    build_icmp_error,
    build_icmp_packet,
    build_icmp_timestamp,
    build_ip_packet,
    build_ipv4,
    build_ipv6,
    build_ipv6_fragment_header,
    build_tcp_packet,
    build_udp_packet,
    parse_packet,
    verify_icmp_checksum,
    verify_icmpv6_checksum,
    verify_ipv4_checksum,
    verify_tcp_checksum,
    verify_udp_checksum,
)
from pyscan.errors import PacketError

from . import vectors as v
from ._st import wire_address_pair, wire_u8, wire_u16, wire_u32


@pytest.mark.parametrize("name", sorted(v.ALL_VALID))
def test_captured_vectors_parse(name: str) -> None:
    pkt = parse_packet(v.ALL_VALID[name])
    assert isinstance(pkt, Packet)
    layers = [pkt.tcp, pkt.udp, pkt.icmp, pkt.icmpv6]
    assert sum(layer is not None for layer in layers) == 1


def test_nmap_syn_fields_ready() -> None:
    pkt = parse_packet(v.NMAP_SYN_22)
    assert pkt.version == 4
    assert pkt.protocol == 6
    assert pkt.src_ip == pkt.dst_ip == ipaddress.IPv4Address("127.0.0.1")
    assert pkt.tcp is not None
    assert pkt.tcp.flags == TCPFlags.SYN
    assert pkt.tcp.dst_port == 22
    assert pkt.tcp.options == (MSS(1460),)  # decoded lazily on access
    assert pkt.udp is None
    assert pkt.icmp is None
    assert pkt.icmpv6 is None
    assert pkt.payload == b""


def test_port_unreachable_ready_for_demux() -> None:
    pkt = parse_packet(v.KERNEL_PORT_UNREACH)
    assert isinstance(pkt.icmp, ICMPError)
    assert pkt.icmp.quoted is not None
    assert (pkt.icmp.quoted.dst_port, pkt.icmp.quoted.src_port) == (9, 60031)


def test_ipv6_udp_vector() -> None:
    pkt = parse_packet(v.IPV6_UDP)
    assert isinstance(pkt.ip, IPv6Header)
    assert pkt.udp is not None
    assert (pkt.udp.src_port, pkt.udp.dst_port, pkt.payload) == (5353, 53, b"pyscan")


@given(
    addrs=wire_address_pair,
    sport=wire_u16,
    dport=wire_u16,
    seq=wire_u32,
    flags=st.integers(0, 0x1FF),
    payload=st.binary(max_size=32),
    ttl=wire_u8,
    trailer=st.binary(max_size=4),
)
def test_tcp_packet_round_trip(
    addrs: tuple[bytes, bytes],
    sport: int,
    dport: int,
    seq: int,
    flags: int,
    payload: bytes,
    ttl: int,
    trailer: bytes,
) -> None:
    src, dst = addrs
    built = build_tcp_packet(
        src=src,
        dst=dst,
        src_port=sport,
        dst_port=dport,
        seq=seq,
        flags=flags,
        payload=payload,
        ttl=ttl,
        options=[MSS(1400)],
    )
    pkt = parse_packet(built + (trailer if len(src) == 4 else b""))
    assert (pkt.src, pkt.dst, pkt.protocol, pkt.payload) == (src, dst, 6, payload)
    assert pkt.tcp is not None
    assert pkt.udp is None
    assert (pkt.tcp.src_port, pkt.tcp.dst_port, pkt.tcp.seq, int(pkt.tcp.flags)) == (
        sport,
        dport,
        seq,
        flags,
    )
    l4 = built[20:] if len(src) == 4 else built[40:]
    assert verify_tcp_checksum(l4, src, dst)
    if isinstance(pkt.ip, IPv4Header):
        assert pkt.ip.ttl == ttl
        assert verify_ipv4_checksum(built)
    else:
        assert pkt.ip.hop_limit == ttl


@given(addrs=wire_address_pair, sport=wire_u16, dport=wire_u16, payload=st.binary(max_size=32))
def test_udp_packet_round_trip(
    addrs: tuple[bytes, bytes], sport: int, dport: int, payload: bytes
) -> None:
    src, dst = addrs
    built = build_udp_packet(src=src, dst=dst, src_port=sport, dst_port=dport, payload=payload)
    pkt = parse_packet(built)
    assert pkt.udp is not None
    assert (pkt.udp.src_port, pkt.udp.dst_port) == (sport, dport)
    assert pkt.payload == payload
    assert verify_udp_checksum(built[-(8 + len(payload)) :], src, dst)


@given(addrs=wire_address_pair, ident=wire_u16, seq=wire_u16, data=st.binary(max_size=16))
def test_echo_packet_round_trip(
    addrs: tuple[bytes, bytes], ident: int, seq: int, data: bytes
) -> None:
    src, dst = addrs
    built = build_echo_packet(src=src, dst=dst, identifier=ident, sequence=seq, data=data)
    pkt = parse_packet(built)
    msg = pkt.icmp if len(src) == 4 else pkt.icmpv6
    assert isinstance(msg, ICMPEcho)
    assert not msg.is_reply
    assert (msg.identifier, msg.sequence, msg.data) == (ident, seq, data)
    if len(src) == 4:
        assert pkt.icmpv6 is None
        assert verify_icmp_checksum(built[20:])
    else:
        assert pkt.icmp is None
        assert verify_icmpv6_checksum(built[40:], src, dst)


def test_icmp_packet_and_ipaddress_arguments() -> None:
    src, dst = ipaddress.IPv4Address("198.18.0.1"), ipaddress.IPv4Address("198.18.0.2")
    built = build_icmp_packet(
        src=src,
        dst=dst,
        ttl=3,
        df=True,
        identification=9,
        message=build_icmp_timestamp(identifier=1, sequence=2),
    )
    pkt = parse_packet(built)
    assert isinstance(pkt.icmp, ICMPTimestamp)
    assert pkt.src_ip == src
    assert pkt.dst_ip == dst
    assert isinstance(pkt.ip, IPv4Header)
    assert pkt.ip.dont_fragment
    assert pkt.ip.identification == 9
    assert pkt.ip.ttl == 3


def test_icmp_error_about_our_probe() -> None:
    probe = build_tcp_packet(
        src=bytes([198, 18, 0, 1]),
        dst=bytes([198, 18, 0, 9]),
        src_port=40000,
        dst_port=443,
        seq=0x01020304,
    )
    error = build_icmp_error(icmp_type=3, code=13, quoted=probe[:28])
    pkt = parse_packet(
        build_icmp_packet(src=bytes([198, 18, 0, 254]), dst=bytes([198, 18, 0, 1]), message=error)
    )
    assert isinstance(pkt.icmp, ICMPError)
    assert pkt.icmp.quoted is not None
    q = pkt.icmp.quoted
    assert (q.dst, q.dst_port, q.src_port, q.tcp_seq) == (probe[16:20], 443, 40000, 0x01020304)


def test_unknown_protocol_keeps_payload() -> None:
    pkt = parse_packet(build_ip_packet(src=bytes(4), dst=bytes(4), protocol=47, payload=b"gre"))
    assert pkt.protocol == 47
    assert pkt.payload == b"gre"
    assert pkt.tcp is None
    assert pkt.udp is None
    assert pkt.icmp is None


def test_later_fragments_have_no_transport() -> None:
    v4 = build_ipv4(src=bytes(4), dst=bytes(4), protocol=6, fragment_offset=3, payload=b"x" * 8)
    pkt = parse_packet(v4)
    assert pkt.tcp is None
    assert pkt.payload == b"x" * 8
    frag = build_ipv6_fragment_header(17, fragment_offset=2) + b"y" * 8
    pkt6 = parse_packet(build_ipv6(src=bytes(16), dst=bytes(16), next_header=44, payload=frag))
    assert pkt6.udp is None
    assert pkt6.protocol == 17
    assert pkt6.payload == b"y" * 8


def test_first_fragment_is_parsed() -> None:
    udp = build_udp_packet(src=bytes(4), dst=bytes(4), src_port=1, dst_port=2, payload=b"z")[20:]
    v4 = build_ipv4(src=bytes(4), dst=bytes(4), protocol=17, flags=1, payload=udp)
    assert parse_packet(v4).udp is not None


@pytest.mark.parametrize(
    ("data", "layer", "offset"),
    [
        (b"", "ip", 0),
        (b"\x50" + bytes(30), "ip", 0),
        (v.NMAP_SYN_22[:30], "ipv4", 30),
        (v.NMAP_SYN_22[:2] + b"\x00\x27" + v.NMAP_SYN_22[4:], "tcp", 20),
        (v.IPV6_UDP[:5] + b"\x07" + v.IPV6_UDP[6:47], "udp", 40),
    ],
)
def test_errors(data: bytes, layer: str, offset: int) -> None:
    with pytest.raises(PacketError) as info:
        parse_packet(data)
    assert (info.value.layer, info.value.offset) == (layer, offset)


def test_parse_options_flag() -> None:
    bad = bytearray(v.NMAP_SYN_22)
    bad[41] = 9  # MSS length overruns the options area
    pkt = parse_packet(bad)  # options not decoded on the fast path
    assert pkt.tcp is not None
    with pytest.raises(PacketError) as info:
        parse_packet(bad, parse_options=True)
    assert (info.value.layer, info.value.offset) == ("tcp", 41)


def test_builders_reject_mixed_families() -> None:
    with pytest.raises(ValueError, match="same address family"):
        build_ip_packet(src=bytes(4), dst=bytes(16), protocol=6)
    with pytest.raises(ValueError, match="4 or 16"):
        build_ip_packet(src=b"abc", dst=bytes(4), protocol=6)
