"""IPv4 header codec (RFC 791).

``parse_ipv4`` returns ``(header, payload)`` with the payload cut to ``total_length`` (link
padding after it is dropped). It does not verify the header checksum: call
:func:`verify_ipv4_checksum` when that matters (the kernel already dropped bad ones for
packets read from a raw socket). ``build_ipv4`` always computes the checksum unless one is
forced with ``checksum=``.
"""

from __future__ import annotations

import enum
import ipaddress
import struct

import attrs

from pyscan._wire.checksum import internet_checksum
from pyscan._wire.reader import Address, Buffer, pack_checked, packed_address
from pyscan.errors import PacketError

__all__ = [
    "IPV4_HEADER",
    "IPv4Flags",
    "IPv4Header",
    "build_ipv4",
    "parse_ipv4",
    "verify_ipv4_checksum",
]

IPV4_HEADER = struct.Struct("!BBHHHBBH4s4s")
"""The fixed 20-byte IPv4 header."""

LAYER = "ipv4"


class IPv4Flags(enum.IntFlag):
    """The three flag bits of the IPv4 fragment word."""

    RESERVED = 4
    DF = 2
    MF = 1


_FLAGS = tuple(IPv4Flags(i) for i in range(8))


def _addr_repr(value: bytes) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value.hex()


def _hex_repr(value: bytes) -> str:
    return f"'{value.hex()}'"


@attrs.frozen
class IPv4Header:
    """A parsed IPv4 header. ``fragment_offset`` is in 8-byte units, as on the wire."""

    version: int
    ihl: int
    tos: int
    total_length: int
    identification: int
    flags: IPv4Flags
    fragment_offset: int
    ttl: int
    protocol: int
    checksum: int
    src: bytes = attrs.field(repr=_addr_repr)
    dst: bytes = attrs.field(repr=_addr_repr)
    options: bytes = attrs.field(default=b"", repr=_hex_repr)

    @property
    def header_length(self) -> int:
        """Header length in bytes (``ihl * 4``)."""
        return self.ihl * 4

    @property
    def dscp(self) -> int:
        """Differentiated services code point (upper six bits of the TOS byte)."""
        return self.tos >> 2

    @property
    def ecn(self) -> int:
        """Explicit congestion notification (lower two bits of the TOS byte)."""
        return self.tos & 3

    @property
    def dont_fragment(self) -> bool:
        """The DF bit."""
        return bool(self.flags & IPv4Flags.DF)

    @property
    def more_fragments(self) -> bool:
        """The MF bit."""
        return bool(self.flags & IPv4Flags.MF)

    @property
    def is_fragment(self) -> bool:
        """True for any fragment of a fragmented datagram (MF set or a non-zero offset)."""
        return bool(self.flags & IPv4Flags.MF) or self.fragment_offset != 0

    @property
    def src_ip(self) -> ipaddress.IPv4Address:
        """Source address as an ``ipaddress`` object."""
        return ipaddress.IPv4Address(self.src)

    @property
    def dst_ip(self) -> ipaddress.IPv4Address:
        """Destination address as an ``ipaddress`` object."""
        return ipaddress.IPv4Address(self.dst)


def parse_ipv4_header(mv: memoryview, start: int, end: int, *, strict: bool) -> IPv4Header:
    """Parse the header at ``mv[start:end]``.

    ``strict`` requires ``total_length`` bytes to be present; quoted datagrams inside ICMP
    errors are parsed with ``strict=False`` since routers quote only the first bytes.
    """
    avail = end - start
    if avail < 20:
        raise PacketError(LAYER, start, f"truncated header: need 20 bytes, have {max(avail, 0)}")
    (vihl, tos, total, ident, frag, ttl, proto, cksum, src, dst) = IPV4_HEADER.unpack_from(
        mv, start
    )
    version = vihl >> 4
    if version != 4:
        raise PacketError(LAYER, start, f"version is {version}, not 4")
    ihl = vihl & 0xF
    if ihl < 5:
        raise PacketError(LAYER, start, f"header length field is {ihl}, below the minimum of 5")
    hlen = ihl * 4
    if hlen > avail:
        raise PacketError(
            LAYER, start + 20, f"truncated options: header length {hlen}, have {avail} bytes"
        )
    if total < hlen:
        raise PacketError(
            LAYER, start + 2, f"total length {total} is shorter than the header length {hlen}"
        )
    if strict and total > avail:
        raise PacketError(
            LAYER, start + avail, f"truncated datagram: total length {total}, have {avail} bytes"
        )
    return IPv4Header(
        version,
        ihl,
        tos,
        total,
        ident,
        _FLAGS[frag >> 13],
        frag & 0x1FFF,
        ttl,
        proto,
        cksum,
        src,
        dst,
        mv[start + 20 : start + hlen].tobytes() if ihl > 5 else b"",
    )


def parse_ipv4(data: Buffer) -> tuple[IPv4Header, bytes]:
    """Parse an IPv4 datagram into its header and payload (cut to ``total_length``)."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    header = parse_ipv4_header(mv, 0, len(mv), strict=True)
    return header, mv[header.ihl * 4 : header.total_length].tobytes()


def verify_ipv4_checksum(data: Buffer) -> bool:
    """True if the header checksum of the IPv4 datagram in ``data`` is correct."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    header = parse_ipv4_header(mv, 0, len(mv), strict=False)
    return internet_checksum(mv[: header.ihl * 4]) == 0


def build_ipv4(
    *,
    src: Address,
    dst: Address,
    protocol: int,
    payload: Buffer = b"",
    ttl: int = 64,
    identification: int = 0,
    tos: int = 0,
    flags: IPv4Flags | int = 0,
    fragment_offset: int = 0,
    options: bytes = b"",
    total_length: int | None = None,
    checksum: int | None = None,
) -> bytes:
    """Build an IPv4 datagram: header (checksum computed unless given) followed by ``payload``.

    ``options`` must be a multiple of 4 bytes, at most 40. ``total_length`` defaults to the
    real length; give it (or ``checksum``) only to build deliberately odd packets.
    Raises ``ValueError`` for out-of-range arguments.
    """
    src_b = packed_address(src, "src")
    dst_b = packed_address(dst, "dst")
    if len(src_b) != 4 or len(dst_b) != 4:
        raise ValueError("build_ipv4 needs IPv4 addresses")
    if len(options) % 4 or len(options) > 40:
        raise ValueError(f"options must be a multiple of 4 bytes, at most 40, not {len(options)}")
    hlen = 20 + len(options)
    length = hlen + len(payload) if total_length is None else total_length
    if not 0 <= length <= 0xFFFF:
        raise ValueError(f"total length {length} does not fit in 16 bits")
    if not 0 <= fragment_offset <= 0x1FFF:
        raise ValueError(f"fragment offset {fragment_offset} does not fit in 13 bits")
    if not 0 <= int(flags) <= 7:
        raise ValueError(f"flags {int(flags)} do not fit in 3 bits")
    header = bytearray(hlen)
    pack_checked(
        IPV4_HEADER,
        header,
        0,
        0x40 | (hlen >> 2),
        tos,
        length,
        identification,
        (int(flags) << 13) | fragment_offset,
        ttl,
        protocol,
        0,
        src_b,
        dst_b,
    )
    header[20:] = options
    cksum = internet_checksum(header) if checksum is None else checksum
    header[10] = cksum >> 8
    header[11] = cksum & 0xFF
    return bytes(header) + bytes(payload)
