"""Whole-datagram parsing for the receive path, and one-call datagram builders.

``parse_packet`` reads an IPv4 or IPv6 datagram (by the version nibble) and its upper layer
once, so the demultiplexer can read ``pkt.tcp.dst_port`` or ``pkt.icmp.quoted`` without
further work. TCP options are left undecoded unless asked (``parse_options=True``); they
still decode on first access to ``pkt.tcp.options``. Non-first fragments carry no transport
header: their upper-layer bytes are left in ``payload`` with every transport field ``None``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

import attrs

from pyscan._wire.icmp import ICMPMessage, build_icmp_echo, parse_icmp_message
from pyscan._wire.icmpv6 import build_icmpv6_echo
from pyscan._wire.ipv4 import IPv4Flags, IPv4Header, build_ipv4, parse_ipv4_header
from pyscan._wire.ipv6 import IPv6Header, build_ipv6, parse_ipv6_header
from pyscan._wire.reader import Address, Buffer, packed_address
from pyscan._wire.tcp import TCPFlags, TCPHeader, TCPOption, build_tcp, parse_tcp_header
from pyscan._wire.udp import UDPHeader, build_udp, parse_udp_header
from pyscan.errors import PacketError

__all__ = [
    "Packet",
    "build_echo_packet",
    "build_icmp_packet",
    "build_ip_packet",
    "build_tcp_packet",
    "build_udp_packet",
    "parse_packet",
]

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58


def _hex_repr(value: bytes) -> str:
    return f"'{value.hex()}'"


@attrs.frozen
class Packet:
    """A parsed datagram: the IP header, the upper-layer ``protocol`` and at most one of
    ``tcp`` / ``udp`` / ``icmp`` (ICMPv4) / ``icmpv6`` set.

    ``payload`` is what follows the transport header (TCP/UDP data); for ICMP the message
    object holds its data and ``payload`` is empty; for other protocols and non-first
    fragments it is the whole upper-layer data.
    """

    ip: IPv4Header | IPv6Header
    protocol: int
    tcp: TCPHeader | None = None
    udp: UDPHeader | None = None
    icmp: ICMPMessage | None = None
    icmpv6: ICMPMessage | None = None
    payload: bytes = attrs.field(default=b"", repr=_hex_repr)

    @property
    def version(self) -> int:
        """4 or 6."""
        return self.ip.version

    @property
    def src(self) -> bytes:
        """Packed source address (4 or 16 bytes)."""
        return self.ip.src

    @property
    def dst(self) -> bytes:
        """Packed destination address (4 or 16 bytes)."""
        return self.ip.dst

    @property
    def src_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Source address as an ``ipaddress`` object."""
        return self.ip.src_ip

    @property
    def dst_ip(self) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
        """Destination address as an ``ipaddress`` object."""
        return self.ip.dst_ip


def parse_packet(data: Buffer, *, parse_options: bool = False) -> Packet:
    """Parse an IPv4 or IPv6 datagram and its TCP, UDP, ICMP or ICMPv6 layer.

    Raises :class:`PacketError` if the IP header or the transport layer it parses is
    malformed (offsets are from the start of ``data``). Checksums are not verified.
    """
    mv = data if isinstance(data, memoryview) else memoryview(data)
    end = len(mv)
    if not end:
        raise PacketError("ip", 0, "empty datagram")
    version = mv[0] >> 4
    ip: IPv4Header | IPv6Header
    if version == 4:
        ip = parse_ipv4_header(mv, 0, end, strict=True)
        start = ip.ihl * 4
        end = ip.total_length
        proto = ip.protocol
        icmp_layer = ICMP
    elif version == 6:
        ip = parse_ipv6_header(mv, 0, end, strict=True)
        start = ip.header_length
        end = 40 + ip.payload_length
        proto = ip.upper_layer
        icmp_layer = ICMPV6
    else:
        raise PacketError("ip", 0, f"version is {version}, neither 4 nor 6")
    if ip.fragment_offset:
        return Packet(ip, proto, payload=mv[start:end].tobytes())
    if proto == TCP:
        tcp = parse_tcp_header(mv, start, end, parse_options=parse_options)
        return Packet(ip, proto, tcp=tcp, payload=mv[start + tcp.data_offset * 4 : end].tobytes())
    if proto == UDP:
        udp = parse_udp_header(mv, start, end)
        return Packet(ip, proto, udp=udp, payload=mv[start + 8 : start + udp.length].tobytes())
    if proto == icmp_layer:
        if version == 4:
            return Packet(ip, proto, icmp=parse_icmp_message(mv, start, end, "icmp"))
        return Packet(ip, proto, icmpv6=parse_icmp_message(mv, start, end, "icmpv6"))
    return Packet(ip, proto, payload=mv[start:end].tobytes())


def build_ip_packet(
    *,
    src: Address,
    dst: Address,
    protocol: int,
    payload: Buffer = b"",
    ttl: int = 64,
    tos: int = 0,
    identification: int = 0,
    df: bool = False,
    flow_label: int = 0,
) -> bytes:
    """Wrap ``payload`` in an IPv4 or IPv6 header, by the family of ``src``/``dst``.

    For IPv6, ``ttl`` is the hop limit and ``tos`` the traffic class; ``identification`` and
    ``df`` apply to IPv4 only, ``flow_label`` to IPv6 only.
    """
    src_b, dst_b = packed_address(src, "src"), packed_address(dst, "dst")
    if len(src_b) != len(dst_b):
        raise ValueError("src and dst must be of the same address family")
    if len(src_b) == 4:
        return build_ipv4(
            src=src_b,
            dst=dst_b,
            protocol=protocol,
            payload=payload,
            ttl=ttl,
            tos=tos,
            identification=identification,
            flags=IPv4Flags.DF if df else 0,
        )
    return build_ipv6(
        src=src_b,
        dst=dst_b,
        next_header=protocol,
        payload=payload,
        hop_limit=ttl,
        traffic_class=tos,
        flow_label=flow_label,
    )


def build_tcp_packet(
    *,
    src: Address,
    dst: Address,
    src_port: int,
    dst_port: int,
    seq: int = 0,
    ack: int = 0,
    flags: TCPFlags | int = TCPFlags.SYN,
    window: int = 1024,
    urgent: int = 0,
    options: Iterable[TCPOption] | bytes = (),
    payload: Buffer = b"",
    ttl: int = 64,
    tos: int = 0,
    identification: int = 0,
    df: bool = False,
    flow_label: int = 0,
) -> bytes:
    """Build an IPv4 or IPv6 datagram carrying one TCP segment (checksums computed)."""
    segment = build_tcp(
        src=src,
        dst=dst,
        src_port=src_port,
        dst_port=dst_port,
        seq=seq,
        ack=ack,
        flags=flags,
        window=window,
        urgent=urgent,
        options=options,
        payload=payload,
    )
    return build_ip_packet(
        src=src,
        dst=dst,
        protocol=TCP,
        payload=segment,
        ttl=ttl,
        tos=tos,
        identification=identification,
        df=df,
        flow_label=flow_label,
    )


def build_udp_packet(
    *,
    src: Address,
    dst: Address,
    src_port: int,
    dst_port: int,
    payload: Buffer = b"",
    ttl: int = 64,
    tos: int = 0,
    identification: int = 0,
    df: bool = False,
    flow_label: int = 0,
) -> bytes:
    """Build an IPv4 or IPv6 datagram carrying one UDP datagram (checksums computed)."""
    datagram = build_udp(src=src, dst=dst, src_port=src_port, dst_port=dst_port, payload=payload)
    return build_ip_packet(
        src=src,
        dst=dst,
        protocol=UDP,
        payload=datagram,
        ttl=ttl,
        tos=tos,
        identification=identification,
        df=df,
        flow_label=flow_label,
    )


def build_icmp_packet(
    *,
    src: Address,
    dst: Address,
    message: Buffer,
    ttl: int = 64,
    tos: int = 0,
    identification: int = 0,
    df: bool = False,
    flow_label: int = 0,
) -> bytes:
    """Wrap an ICMP message built by ``build_icmp_*`` (IPv4) or ``build_icmpv6_*`` (IPv6,
    whose checksum already covers these addresses) in an IP header."""
    proto = ICMP if len(packed_address(src, "src")) == 4 else ICMPV6
    return build_ip_packet(
        src=src,
        dst=dst,
        protocol=proto,
        payload=message,
        ttl=ttl,
        tos=tos,
        identification=identification,
        df=df,
        flow_label=flow_label,
    )


def build_echo_packet(
    *,
    src: Address,
    dst: Address,
    identifier: int,
    sequence: int,
    data: Buffer = b"",
    ttl: int = 64,
    tos: int = 0,
    identification: int = 0,
    df: bool = False,
    flow_label: int = 0,
) -> bytes:
    """Build an ICMPv4 or ICMPv6 echo request datagram, by the family of ``src``/``dst``."""
    if len(packed_address(src, "src")) == 4:
        message = build_icmp_echo(identifier=identifier, sequence=sequence, data=data)
    else:
        message = build_icmpv6_echo(
            src=src, dst=dst, identifier=identifier, sequence=sequence, data=data
        )
    return build_icmp_packet(
        src=src,
        dst=dst,
        message=message,
        ttl=ttl,
        tos=tos,
        identification=identification,
        df=df,
        flow_label=flow_label,
    )
