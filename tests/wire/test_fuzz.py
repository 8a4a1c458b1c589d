"""Totality: any bytes either parse or raise PacketError; every truncation is caught."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pyscan._wire import (
    MSS,
    SACKPermitted,
    Timestamps,
    build_echo_packet,
    build_icmp_error,
    build_icmp_packet,
    build_ipv4,
    build_ipv6,
    build_ipv6_extension,
    build_tcp_packet,
    build_udp_packet,
    decode_tcp_options,
    parse_icmp,
    parse_icmpv6,
    parse_ipv4,
    parse_ipv6,
    parse_packet,
    parse_tcp,
    parse_udp,
    verify_ipv4_checksum,
)
from pyscan.errors import PacketError

from . import vectors as v


def _tcp_lazy(data: bytes) -> object:
    header, _ = parse_tcp(data, parse_options=False)
    return header.options


def _packet_all(data: bytes) -> object:
    pkt = parse_packet(data)
    return pkt.tcp.options if pkt.tcp is not None else pkt


PARSERS: dict[str, Callable[[bytes], object]] = {
    "ipv4": parse_ipv4,
    "ipv6": parse_ipv6,
    "tcp": parse_tcp,
    "tcp_lazy_options": _tcp_lazy,
    "udp": parse_udp,
    "icmp": parse_icmp,
    "icmpv6": parse_icmpv6,
    "packet": parse_packet,
    "packet_options": lambda d: parse_packet(d, parse_options=True),
    "packet_lazy_options": _packet_all,
    "tcp_options": decode_tcp_options,
    "verify_ipv4": verify_ipv4_checksum,
}


def _only_packet_error(parse: Callable[[bytes], object], data: bytes) -> None:
    error: PacketError | None = None
    try:
        parse(data)
    except PacketError as exc:
        error = exc
    if error is not None:
        assert error.layer
        assert 0 <= error.offset <= len(data), (error.layer, error.offset, len(data))
        assert str(error).startswith(f"{error.layer} at offset {error.offset}: ")


# Plausible starts make random data reach the deeper layers more often.
_prefixes = st.sampled_from([b"", b"\x45", b"\x46\x00", b"\x60", b"\x4f", b"\x45\x00\x00"])


@pytest.mark.parametrize("name", sorted(PARSERS))
@settings(max_examples=300)
@given(prefix=_prefixes, data=st.binary(max_size=120))
@example(prefix=b"", data=b"")
def test_random_bytes_only_raise_packet_error(name: str, prefix: bytes, data: bytes) -> None:
    _only_packet_error(PARSERS[name], prefix + data)


def _samples() -> list[bytes]:
    a4, b4 = bytes([198, 18, 0, 1]), bytes([198, 18, 0, 2])
    a6, b6 = bytes(15) + b"\x01", bytes(15) + b"\x02"
    probe = build_tcp_packet(src=a4, dst=b4, src_port=1, dst_port=2, seq=3)
    tcp6 = build_tcp_packet(
        src=a6,
        dst=b6,
        src_port=1,
        dst_port=2,
        options=[MSS(1220), SACKPermitted(), Timestamps(1, 2)],
    )
    return [
        *v.ALL_VALID.values(),
        probe,
        tcp6,
        build_udp_packet(src=a6, dst=b6, src_port=5, dst_port=6, payload=b"hello"),
        build_echo_packet(src=a6, dst=b6, identifier=7, sequence=8),
        build_icmp_packet(
            src=b4, dst=a4, message=build_icmp_error(icmp_type=11, code=0, quoted=probe[:28])
        ),
        build_ipv4(src=a4, dst=b4, protocol=6, options=b"\x01\x01\x01\x00", payload=probe[20:]),
        build_ipv6(
            src=a6,
            dst=b6,
            next_header=0,
            payload=build_ipv6_extension(0, 43, bytes(4))
            + build_ipv6_extension(43, 17, bytes(10))
            + build_udp_packet(src=a6, dst=b6, src_port=1, dst_port=2)[40:],
        ),
    ]


SAMPLES = _samples()


@pytest.mark.parametrize("index", range(len(SAMPLES)))
def test_every_proper_prefix_fails_cleanly(index: int) -> None:
    packet = SAMPLES[index]
    parse_packet(packet, parse_options=True)  # the whole datagram is valid
    for cut in range(len(packet)):
        with pytest.raises(PacketError) as info:
            parse_packet(packet[:cut], parse_options=True)
        assert 0 <= info.value.offset <= cut


@pytest.mark.parametrize("packet", [v.NMAP_SYN_22, v.KERNEL_RST_22, v.KERNEL_SYN_OPTIONS])
def test_every_prefix_of_a_bare_tcp_header_fails(packet: bytes) -> None:
    segment = packet[20:]
    parse_tcp(segment)
    for cut in range(len(segment)):
        with pytest.raises(PacketError):
            parse_tcp(segment[:cut])


def test_every_prefix_of_udp_fails() -> None:
    datagram = v.IPV6_UDP[40:]
    for cut in range(len(datagram)):
        with pytest.raises(PacketError):
            parse_udp(datagram[:cut])


@pytest.mark.parametrize("index", range(len(SAMPLES)))
@settings(max_examples=60)
@given(data=st.data())
def test_mutated_packets_only_raise_packet_error(index: int, data: st.DataObject) -> None:
    packet = bytearray(SAMPLES[index])
    for _ in range(data.draw(st.integers(1, 4))):
        pos = data.draw(st.integers(0, len(packet) - 1))
        packet[pos] = data.draw(st.integers(0, 255))
    for parse in PARSERS.values():
        _only_packet_error(parse, bytes(packet))
