"""Probe templates: prebuilt IP+TCP / IP+UDP packets re-targeted in place for the send path.

How this works
--------------
A template builds its packet once with every per-probe field zeroed: destination address,
source and destination ports, sequence number, and both checksums. It keeps the packet
bytes and, for each checksum, the ones' complement sum ``S`` of everything the checksum
covers with those fields zero (for TCP/UDP this includes the pseudo-header).

Re-targeting then applies RFC 1624 eqn. 3, ``HC' = ~(~HC + ~m + m')``, once per zeroed
field: ``~HC`` is the stored ``S``, and each old value ``m`` is 0, whose complement 0xFFFF is
ones' complement negative zero and drops out. So the new checksum is ``~(S + sum of the
new fields' 16-bit words)``, folded - a handful of integer additions. One
``Struct.pack_into`` then writes the checksums and the new fields over the same bytes, so a
call allocates nothing but its result (``build``) or nothing at all (``write_into`` into a
caller's buffer, e.g. a batch for ``sendmmsg``).

Destinations are ``int`` (``int(IPv4Address(...))``): the sum of a 32-bit word is
``(d >> 16) + (d & 0xFFFF)``, and for IPv6 ``d % 0xFFFF`` is congruent to the sum of its
eight words, which is all ones' complement addition needs (the folded total cannot be zero
because the constant part of the sum is not).

These classes are plain ``__slots__`` classes rather than attrs ones: they hold precomputed
state for the hot path and are configured once.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from pyscan._wire.checksum import ones_complement_sum
from pyscan._wire.ipv4 import IPv4Flags, build_ipv4
from pyscan._wire.ipv6 import build_ipv6
from pyscan._wire.reader import Address, Buffer, packed_address
from pyscan._wire.tcp import MSS, TCPFlags, TCPOption, build_tcp
from pyscan._wire.udp import build_udp

__all__ = [
    "DEFAULT_SYN_OPTIONS",
    "TCPTemplate",
    "TCPTemplate6",
    "UDPTemplate",
    "UDPTemplate6",
    "tcp_template",
    "udp_template",
]

DEFAULT_SYN_OPTIONS: tuple[TCPOption, ...] = (MSS(1460),)
"""A lone MSS of 1460, as nmap's SYN probes carry."""

_ZERO4 = bytes(4)
_ZERO16 = bytes(16)
_MASK64 = (1 << 64) - 1

# Variable spans, from the IPv4 checksum (offset 10) / IPv6 destination (offset 24) on.
_TCP4_SPAN = struct.Struct("!HIIHHIIHHH")  # ipck src dst sport dport seq ack offflags win tcpck
_UDP4_SPAN = struct.Struct("!HIIHHHH")  # ipck src dst sport dport ulen udpck
_TCP6_SPAN = struct.Struct("!QQHHIIHHH")  # dst_hi dst_lo sport dport seq ack offflags win tcpck
_UDP6_SPAN = struct.Struct("!QQHHHH")  # dst_hi dst_lo sport dport ulen udpck


def _ip4(addr: Address) -> bytes:
    packed = packed_address(addr, "src")
    if len(packed) != 4:
        raise ValueError(f"an IPv4 template needs an IPv4 source, not {addr!r}")
    return packed


def _ip6(addr: Address) -> bytes:
    packed = packed_address(addr, "src")
    if len(packed) != 16:
        raise ValueError(f"an IPv6 template needs an IPv6 source, not {addr!r}")
    return packed


def _zeroed_sum(data: bytearray, *fields: tuple[int, int]) -> int:
    """Ones' complement sum of ``data`` with the ``(offset, length)`` fields zeroed."""
    copy = bytearray(data)
    for offset, length in fields:
        copy[offset : offset + length] = bytes(length)
    return ones_complement_sum(copy)


class TCPTemplate:
    """An IPv4+TCP probe (by default a SYN with MSS 1460) re-targeted per call.

    ``build(dst, dst_port, src_port, seq)`` returns the packet; ``write_into(buf, offset,
    ...)`` writes it into ``buf[offset:offset + length]`` and returns ``length``. ``dst`` is
    the destination address as an int. Out-of-range values raise ``ValueError``.
    """

    __slots__ = (
        "_ack",
        "_base",
        "_ip_sum",
        "_offflags",
        "_scratch",
        "_src",
        "_tcp_sum",
        "_window",
        "length",
    )

    def __init__(
        self,
        src: Address,
        *,
        flags: TCPFlags | int = TCPFlags.SYN,
        window: int = 1024,
        ttl: int = 64,
        identification: int = 0,
        tos: int = 0,
        df: bool = False,
        ack: int = 0,
        options: Iterable[TCPOption] | bytes = DEFAULT_SYN_OPTIONS,
    ) -> None:
        src_b = _ip4(src)
        segment = build_tcp(
            src=src_b,
            dst=_ZERO4,
            src_port=0,
            dst_port=0,
            seq=0,
            ack=ack,
            flags=flags,
            window=window,
            options=options,
            checksum=0,
        )
        packet = build_ipv4(
            src=src_b,
            dst=_ZERO4,
            protocol=6,
            payload=segment,
            ttl=ttl,
            identification=identification,
            tos=tos,
            flags=IPv4Flags.DF if df else 0,
            checksum=0,
        )
        self._base = packet
        self._scratch = bytearray(packet)
        self.length = len(packet)
        self._src = int.from_bytes(src_b, "big")
        self._offflags = int.from_bytes(packet[32:34], "big")
        self._window = window
        self._ack = ack
        self._ip_sum = ones_complement_sum(packet[:20])
        # Pseudo-header (src, zero dst, zero byte + protocol, TCP length) plus the segment.
        self._tcp_sum = ones_complement_sum(segment, ones_complement_sum(src_b) + 6 + len(segment))

    @property
    def packet(self) -> bytes:
        """The packet with every per-probe field (and both checksums) zero."""
        return self._base

    #: The per-probe part of the packet, from the IP checksum (byte 10) to the TCP
    #: checksum: ``ipck src dst sport dport seq ack offflags window tcpck``.
    SPAN = _TCP4_SPAN
    SPAN_OFFSET = 10

    @property
    def span_constants(self) -> tuple[int, int, int, int, int, int]:
        """``(ip_sum, tcp_sum, src, ack, offflags, window)``: what a writer of many probes
        needs to fill :attr:`SPAN` itself (``ip_sum``/``tcp_sum`` are the unfolded
        one's-complement sums of the constant fields; add the per-probe 16-bit words, fold
        twice, complement)."""
        return self._ip_sum, self._tcp_sum, self._src, self._ack, self._offflags, self._window

    def write_into(  # noqa: PLR0917 - positional on purpose: the per-probe hot path
        self,
        buf: bytearray | memoryview,
        offset: int,
        dst: int,
        dst_port: int,
        src_port: int,
        seq: int,
    ) -> int:
        """Write the probe for ``dst:dst_port`` into ``buf`` at ``offset``; return its length."""
        d = (dst >> 16) + (dst & 0xFFFF)
        s = self._ip_sum + d
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        t = self._tcp_sum + d + src_port + dst_port + (seq >> 16) + (seq & 0xFFFF)
        t = (t & 0xFFFF) + (t >> 16)
        t = (t & 0xFFFF) + (t >> 16)
        if offset < 0 or offset + self.length > len(buf):
            raise ValueError(f"no room for {self.length} bytes at offset {offset} of {len(buf)}")
        buf[offset : offset + self.length] = self._base
        try:
            _TCP4_SPAN.pack_into(
                buf,
                offset + 10,
                s ^ 0xFFFF,
                self._src,
                dst,
                src_port,
                dst_port,
                seq,
                self._ack,
                self._offflags,
                self._window,
                t ^ 0xFFFF,
            )
        except struct.error as exc:
            raise _range_error(dst, dst_port, src_port, seq) from exc
        return self.length

    def build(self, dst: int, dst_port: int, src_port: int, seq: int) -> bytes:
        """The probe for ``dst:dst_port`` from ``src_port`` with sequence number ``seq``."""
        self.write_into(self._scratch, 0, dst, dst_port, src_port, seq)
        return bytes(self._scratch)


class TCPTemplate6:
    """An IPv6+TCP probe re-targeted per call (same interface as :class:`TCPTemplate`;
    ``dst`` is the 128-bit address as an int)."""

    __slots__ = ("_ack", "_base", "_offflags", "_scratch", "_tcp_sum", "_window", "length")

    def __init__(
        self,
        src: Address,
        *,
        flags: TCPFlags | int = TCPFlags.SYN,
        window: int = 1024,
        hop_limit: int = 64,
        traffic_class: int = 0,
        flow_label: int = 0,
        ack: int = 0,
        options: Iterable[TCPOption] | bytes = DEFAULT_SYN_OPTIONS,
    ) -> None:
        src_b = _ip6(src)
        segment = build_tcp(
            src=src_b,
            dst=_ZERO16,
            src_port=0,
            dst_port=0,
            seq=0,
            ack=ack,
            flags=flags,
            window=window,
            options=options,
            checksum=0,
        )
        packet = build_ipv6(
            src=src_b,
            dst=_ZERO16,
            next_header=6,
            payload=segment,
            hop_limit=hop_limit,
            traffic_class=traffic_class,
            flow_label=flow_label,
        )
        self._base = packet
        self._scratch = bytearray(packet)
        self.length = len(packet)
        self._offflags = int.from_bytes(packet[52:54], "big")
        self._window = window
        self._ack = ack
        self._tcp_sum = ones_complement_sum(segment, ones_complement_sum(src_b) + 6 + len(segment))

    @property
    def packet(self) -> bytes:
        """The packet with every per-probe field (and the checksum) zero."""
        return self._base

    def write_into(  # noqa: PLR0917 - positional on purpose: the per-probe hot path
        self,
        buf: bytearray | memoryview,
        offset: int,
        dst: int,
        dst_port: int,
        src_port: int,
        seq: int,
    ) -> int:
        """Write the probe for ``dst:dst_port`` into ``buf`` at ``offset``; return its length."""
        t = self._tcp_sum + dst % 0xFFFF + src_port + dst_port + (seq >> 16) + (seq & 0xFFFF)
        t = (t & 0xFFFF) + (t >> 16)
        t = (t & 0xFFFF) + (t >> 16)
        if offset < 0 or offset + self.length > len(buf):
            raise ValueError(f"no room for {self.length} bytes at offset {offset} of {len(buf)}")
        buf[offset : offset + self.length] = self._base
        try:
            _TCP6_SPAN.pack_into(
                buf,
                offset + 24,
                dst >> 64,
                dst & _MASK64,
                src_port,
                dst_port,
                seq,
                self._ack,
                self._offflags,
                self._window,
                t ^ 0xFFFF,
            )
        except struct.error as exc:
            raise _range_error(dst, dst_port, src_port, seq) from exc
        return self.length

    def build(self, dst: int, dst_port: int, src_port: int, seq: int) -> bytes:
        """The probe for ``dst:dst_port`` from ``src_port`` with sequence number ``seq``."""
        self.write_into(self._scratch, 0, dst, dst_port, src_port, seq)
        return bytes(self._scratch)


class UDPTemplate:
    """An IPv4+UDP probe with a fixed payload, re-targeted per call.

    ``build(dst, dst_port, src_port)`` / ``write_into(buf, offset, dst, dst_port,
    src_port)``; a computed UDP checksum of 0 is sent as 0xFFFF.
    """

    __slots__ = ("_base", "_ip_sum", "_scratch", "_src", "_udp_len", "_udp_sum", "length")

    def __init__(
        self,
        src: Address,
        payload: Buffer = b"",
        *,
        ttl: int = 64,
        identification: int = 0,
        tos: int = 0,
        df: bool = False,
    ) -> None:
        src_b = _ip4(src)
        datagram = build_udp(
            src=src_b, dst=_ZERO4, src_port=0, dst_port=0, payload=payload, checksum=0
        )
        packet = build_ipv4(
            src=src_b,
            dst=_ZERO4,
            protocol=17,
            payload=datagram,
            ttl=ttl,
            identification=identification,
            tos=tos,
            flags=IPv4Flags.DF if df else 0,
            checksum=0,
        )
        self._base = packet
        self._scratch = bytearray(packet)
        self.length = len(packet)
        self._src = int.from_bytes(src_b, "big")
        self._udp_len = len(datagram)
        self._ip_sum = ones_complement_sum(packet[:20])
        self._udp_sum = ones_complement_sum(
            datagram, ones_complement_sum(src_b) + 17 + len(datagram)
        )

    @property
    def packet(self) -> bytes:
        """The packet with every per-probe field (and both checksums) zero."""
        return self._base

    def write_into(
        self, buf: bytearray | memoryview, offset: int, dst: int, dst_port: int, src_port: int
    ) -> int:
        """Write the probe for ``dst:dst_port`` into ``buf`` at ``offset``; return its length."""
        d = (dst >> 16) + (dst & 0xFFFF)
        s = self._ip_sum + d
        s = (s & 0xFFFF) + (s >> 16)
        s = (s & 0xFFFF) + (s >> 16)
        u = self._udp_sum + d + src_port + dst_port
        u = (u & 0xFFFF) + (u >> 16)
        u = (u & 0xFFFF) + (u >> 16)
        if offset < 0 or offset + self.length > len(buf):
            raise ValueError(f"no room for {self.length} bytes at offset {offset} of {len(buf)}")
        buf[offset : offset + self.length] = self._base
        try:
            _UDP4_SPAN.pack_into(
                buf,
                offset + 10,
                s ^ 0xFFFF,
                self._src,
                dst,
                src_port,
                dst_port,
                self._udp_len,
                (u ^ 0xFFFF) or 0xFFFF,
            )
        except struct.error as exc:
            raise _range_error(dst, dst_port, src_port, 0) from exc
        return self.length

    def build(self, dst: int, dst_port: int, src_port: int) -> bytes:
        """The probe for ``dst:dst_port`` from ``src_port``."""
        self.write_into(self._scratch, 0, dst, dst_port, src_port)
        return bytes(self._scratch)


class UDPTemplate6:
    """An IPv6+UDP probe with a fixed payload (same interface as :class:`UDPTemplate`)."""

    __slots__ = ("_base", "_scratch", "_udp_len", "_udp_sum", "length")

    def __init__(
        self,
        src: Address,
        payload: Buffer = b"",
        *,
        hop_limit: int = 64,
        traffic_class: int = 0,
        flow_label: int = 0,
    ) -> None:
        src_b = _ip6(src)
        datagram = build_udp(
            src=src_b, dst=_ZERO16, src_port=0, dst_port=0, payload=payload, checksum=0
        )
        packet = build_ipv6(
            src=src_b,
            dst=_ZERO16,
            next_header=17,
            payload=datagram,
            hop_limit=hop_limit,
            traffic_class=traffic_class,
            flow_label=flow_label,
        )
        self._base = packet
        self._scratch = bytearray(packet)
        self.length = len(packet)
        self._udp_len = len(datagram)
        self._udp_sum = ones_complement_sum(
            datagram, ones_complement_sum(src_b) + 17 + len(datagram)
        )

    @property
    def packet(self) -> bytes:
        """The packet with every per-probe field (and the checksum) zero."""
        return self._base

    def write_into(
        self, buf: bytearray | memoryview, offset: int, dst: int, dst_port: int, src_port: int
    ) -> int:
        """Write the probe for ``dst:dst_port`` into ``buf`` at ``offset``; return its length."""
        u = self._udp_sum + dst % 0xFFFF + src_port + dst_port
        u = (u & 0xFFFF) + (u >> 16)
        u = (u & 0xFFFF) + (u >> 16)
        if offset < 0 or offset + self.length > len(buf):
            raise ValueError(f"no room for {self.length} bytes at offset {offset} of {len(buf)}")
        buf[offset : offset + self.length] = self._base
        try:
            _UDP6_SPAN.pack_into(
                buf,
                offset + 24,
                dst >> 64,
                dst & _MASK64,
                src_port,
                dst_port,
                self._udp_len,
                (u ^ 0xFFFF) or 0xFFFF,
            )
        except struct.error as exc:
            raise _range_error(dst, dst_port, src_port, 0) from exc
        return self.length

    def build(self, dst: int, dst_port: int, src_port: int) -> bytes:
        """The probe for ``dst:dst_port`` from ``src_port``."""
        self.write_into(self._scratch, 0, dst, dst_port, src_port)
        return bytes(self._scratch)


def _range_error(dst: int, dst_port: int, src_port: int, seq: int) -> ValueError:
    return ValueError(
        f"probe field out of range: dst={dst:#x} dst_port={dst_port} src_port={src_port} "
        f"seq={seq} (or the buffer is too short)"
    )


def tcp_template(
    src: Address,
    *,
    flags: TCPFlags | int = TCPFlags.SYN,
    window: int = 1024,
    ttl: int = 64,
    tos: int = 0,
    options: Iterable[TCPOption] | bytes = DEFAULT_SYN_OPTIONS,
) -> TCPTemplate | TCPTemplate6:
    """A TCP template for the family of ``src`` (``ttl``/``tos`` are hop limit/traffic class
    for IPv6)."""
    if len(packed_address(src, "src")) == 4:
        return TCPTemplate(src, flags=flags, window=window, ttl=ttl, tos=tos, options=options)
    return TCPTemplate6(
        src, flags=flags, window=window, hop_limit=ttl, traffic_class=tos, options=options
    )


def udp_template(
    src: Address, payload: Buffer = b"", *, ttl: int = 64, tos: int = 0
) -> UDPTemplate | UDPTemplate6:
    """A UDP template for the family of ``src``."""
    if len(packed_address(src, "src")) == 4:
        return UDPTemplate(src, payload, ttl=ttl, tos=tos)
    return UDPTemplate6(src, payload, hop_limit=ttl, traffic_class=tos)
