"""Probe templates: in-place re-targeting must equal a fresh build."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._wire import (
    MSS,
    NOP,
    TCPFlags,
    TCPTemplate,
    TCPTemplate6,
    UDPTemplate,
    UDPTemplate6,
    WindowScale,
    build_ipv6,
    build_tcp,
    build_tcp_packet,
    build_udp,
    build_udp_packet,
    parse_packet,
    tcp_template,
    udp_template,
    verify_ipv4_checksum,
    verify_tcp_checksum,
    verify_udp_checksum,
)

from . import vectors as v
from ._st import wire_ipv4, wire_ipv6, wire_u8, wire_u16, wire_u32


def test_reproduces_nmap_syn_probe() -> None:
    # nmap's captured SYN: TTL 47, IP id 0x3819, window 1024, MSS 1460.
    template = TCPTemplate(v.NMAP_SYN_22[12:16], ttl=47, identification=0x3819)
    assert template.build(0x7F000001, 22, 50008, 912447347) == v.NMAP_SYN_22
    template = TCPTemplate(v.NMAP_SYN_9[12:16], ttl=42, identification=0x67D7)
    assert template.build(0x7F000001, 9, 50008, 912447347) == v.NMAP_SYN_9


def test_reproduces_nmap_udp_probe() -> None:
    template = UDPTemplate(v.NMAP_UDP_9[12:16], b"", ttl=55, identification=0x62B0)
    assert template.build(0x7F000001, 9, 60031) == v.NMAP_UDP_9


@given(
    src=wire_ipv4,
    targets=st.lists(st.tuples(wire_ipv4, wire_u16, wire_u16, wire_u32), min_size=1, max_size=4),
    window=wire_u16,
    ttl=wire_u8,
    ident=wire_u16,
    tos=wire_u8,
    df=st.booleans(),
    flags=st.sampled_from(
        [TCPFlags.SYN, TCPFlags.ACK, TCPFlags.FIN | TCPFlags.PSH | TCPFlags.URG, TCPFlags(0)]
    ),
    ack=wire_u32,
    options=st.sampled_from([(MSS(1460),), (), (MSS(536), NOP(), WindowScale(7))]),
)
def test_tcp4_matches_fresh_build(
    src: bytes,
    targets: list[tuple[bytes, int, int, int]],
    window: int,
    ttl: int,
    ident: int,
    tos: int,
    df: bool,
    flags: TCPFlags,
    ack: int,
    options: tuple[MSS | NOP | WindowScale, ...],
) -> None:
    template = TCPTemplate(
        src,
        flags=flags,
        window=window,
        ttl=ttl,
        identification=ident,
        tos=tos,
        df=df,
        ack=ack,
        options=options,
    )
    for dst, dport, sport, seq in targets:  # re-targeting repeatedly must not drift
        got = template.build(int.from_bytes(dst, "big"), dport, sport, seq)
        fresh = build_tcp_packet(
            src=src,
            dst=dst,
            src_port=sport,
            dst_port=dport,
            seq=seq,
            ack=ack,
            flags=flags,
            window=window,
            options=options,
            ttl=ttl,
            tos=tos,
            identification=ident,
            df=df,
        )
        assert got == fresh
        assert verify_ipv4_checksum(got)
        assert verify_tcp_checksum(got[20:], src, dst)


@given(
    src=wire_ipv6,
    targets=st.lists(st.tuples(wire_ipv6, wire_u16, wire_u16, wire_u32), min_size=1, max_size=4),
    window=wire_u16,
    hlim=wire_u8,
    tclass=wire_u8,
    flow=st.integers(0, 0xFFFFF),
)
def test_tcp6_matches_fresh_build(
    src: bytes,
    targets: list[tuple[bytes, int, int, int]],
    window: int,
    hlim: int,
    tclass: int,
    flow: int,
) -> None:
    template = TCPTemplate6(
        src, window=window, hop_limit=hlim, traffic_class=tclass, flow_label=flow
    )
    for dst, dport, sport, seq in targets:
        got = template.build(int.from_bytes(dst, "big"), dport, sport, seq)
        seg = build_tcp(
            src=src,
            dst=dst,
            src_port=sport,
            dst_port=dport,
            seq=seq,
            window=window,
            options=[MSS(1460)],
        )
        fresh = build_ipv6(
            src=src,
            dst=dst,
            next_header=6,
            payload=seg,
            hop_limit=hlim,
            traffic_class=tclass,
            flow_label=flow,
        )
        assert got == fresh
        assert verify_tcp_checksum(got[40:], src, dst)


@given(
    src=wire_ipv4,
    payload=st.binary(max_size=60),
    targets=st.lists(st.tuples(wire_ipv4, wire_u16, wire_u16), min_size=1, max_size=4),
    ttl=wire_u8,
    ident=wire_u16,
)
def test_udp4_matches_fresh_build(
    src: bytes, payload: bytes, targets: list[tuple[bytes, int, int]], ttl: int, ident: int
) -> None:
    template = UDPTemplate(src, payload, ttl=ttl, identification=ident)
    for dst, dport, sport in targets:
        got = template.build(int.from_bytes(dst, "big"), dport, sport)
        fresh = build_udp_packet(
            src=src,
            dst=dst,
            src_port=sport,
            dst_port=dport,
            payload=payload,
            ttl=ttl,
            identification=ident,
        )
        assert got == fresh
        assert verify_ipv4_checksum(got)
        assert verify_udp_checksum(got[20:], src, dst)


@given(
    src=wire_ipv6,
    payload=st.binary(max_size=60),
    targets=st.lists(st.tuples(wire_ipv6, wire_u16, wire_u16), min_size=1, max_size=4),
)
def test_udp6_matches_fresh_build(
    src: bytes, payload: bytes, targets: list[tuple[bytes, int, int]]
) -> None:
    template = UDPTemplate6(src, payload)
    for dst, dport, sport in targets:
        got = template.build(int.from_bytes(dst, "big"), dport, sport)
        fresh = build_ipv6(
            src=src,
            dst=dst,
            next_header=17,
            payload=build_udp(src=src, dst=dst, src_port=sport, dst_port=dport, payload=payload),
        )
        assert got == fresh
        assert verify_udp_checksum(got[40:], src, dst)


def test_udp_zero_checksum_goes_out_as_ffff() -> None:
    # Search a destination port for which the computed UDP checksum is 0.
    template = UDPTemplate(bytes([10, 0, 0, 1]), b"abc")
    for port in range(65536):
        got = template.build(0x0A000002, port, 1000)
        if got[26:28] == b"\xff\xff":
            fresh = build_udp_packet(
                src=bytes([10, 0, 0, 1]),
                dst=bytes([10, 0, 0, 2]),
                src_port=1000,
                dst_port=port,
                payload=b"abc",
            )
            assert got == fresh
            assert verify_udp_checksum(got[20:], bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2]))
            return
    pytest.fail("no port gave a zero checksum")


def test_write_into_batch_buffer() -> None:
    template = TCPTemplate(bytes([198, 18, 0, 1]))
    n = template.length
    batch = bytearray(b"\xaa" * (3 * n + 5))
    offsets = [0, n, 2 * n + 5]
    for i, off in enumerate(offsets):
        assert template.write_into(batch, off, 0xC6120100 + i, 80 + i, 40000, i) == n
    for i, off in enumerate(offsets):
        pkt = parse_packet(bytes(batch[off : off + n]))
        assert pkt.tcp is not None
        assert pkt.tcp.dst_port == 80 + i
        assert pkt.tcp.seq == i
        assert pkt.dst == (0xC6120100 + i).to_bytes(4, "big")
    assert batch[2 * n : 2 * n + 5] == b"\xaa" * 5  # the gap is untouched
    view = memoryview(bytearray(n))
    template.write_into(view, 0, 1, 2, 3, 4)
    assert bytes(view) == template.build(1, 2, 3, 4)


def test_factories_pick_the_family() -> None:
    assert isinstance(tcp_template(ipaddress.IPv4Address("198.18.0.1")), TCPTemplate)
    assert isinstance(tcp_template(ipaddress.IPv6Address("2001:db8::1")), TCPTemplate6)
    assert isinstance(udp_template(ipaddress.IPv4Address("198.18.0.1"), b"x"), UDPTemplate)
    assert isinstance(udp_template(ipaddress.IPv6Address("2001:db8::1")), UDPTemplate6)
    t = tcp_template(bytes(4), ttl=9)
    assert t.packet[8] == 9
    assert t.packet[10:12] == b"\x00\x00"


@pytest.mark.parametrize(
    "args", [(1 << 32, 80, 1, 1), (1, 65536, 1, 1), (1, 80, -1, 1), (1, 80, 1, 1 << 32)]
)
def test_out_of_range_targets(args: tuple[int, int, int, int]) -> None:
    with pytest.raises(ValueError, match="out of range"):
        TCPTemplate(bytes(4)).build(*args)


def test_family_mismatch() -> None:
    with pytest.raises(ValueError, match="IPv4 source"):
        TCPTemplate(bytes(16))
    with pytest.raises(ValueError, match="IPv6 source"):
        UDPTemplate6(bytes(4))


def test_default_is_nmap_like_syn() -> None:
    pkt = parse_packet(TCPTemplate(bytes(4)).build(1, 2, 3, 4))
    assert pkt.tcp is not None
    assert pkt.tcp.flags == TCPFlags.SYN
    assert pkt.tcp.options == (MSS(1460),)
    assert pkt.tcp.window == 1024


def test_write_into_needs_room() -> None:
    template = UDPTemplate(bytes(4), b"payload")
    short = bytearray(template.length + 3)
    with pytest.raises(ValueError, match="no room"):
        template.write_into(short, 4, 1, 2, 3)
    assert len(short) == template.length + 3  # a bytearray must not silently grow
    with pytest.raises(ValueError, match="no room"):
        template.write_into(short, -1, 1, 2, 3)
