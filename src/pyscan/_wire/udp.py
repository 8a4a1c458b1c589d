"""UDP header codec (RFC 768; IPv6 rules from RFC 8200 section 8.1).

``parse_udp`` returns ``(header, payload)`` with the payload cut to the UDP ``length``. A
checksum field of 0 means "no checksum" on IPv4 (:func:`verify_udp_checksum` accepts it
there); ``build_udp`` transmits a computed 0 as 0xFFFF, as both RFCs require.
"""

from __future__ import annotations

import struct

import attrs

from pyscan._wire.checksum import internet_checksum, pseudo_header_sum
from pyscan._wire.reader import Address, Buffer, pack_checked, packed_address
from pyscan.errors import PacketError

__all__ = ["UDP_HEADER", "UDPHeader", "build_udp", "parse_udp", "verify_udp_checksum"]

UDP_HEADER = struct.Struct("!HHHH")
"""The 8-byte UDP header."""

_U16 = struct.Struct("!H")

LAYER = "udp"
PROTOCOL = 17


@attrs.frozen
class UDPHeader:
    """A parsed UDP header (``length`` covers header and payload)."""

    src_port: int
    dst_port: int
    length: int
    checksum: int


def parse_udp_header(mv: memoryview, start: int, end: int, *, strict: bool = True) -> UDPHeader:
    """Parse the UDP header at ``mv[start:end]``; ``strict`` requires ``length`` bytes."""
    avail = end - start
    if avail < 8:
        raise PacketError(LAYER, start, f"truncated header: need 8 bytes, have {max(avail, 0)}")
    sport, dport, length, cksum = UDP_HEADER.unpack_from(mv, start)
    if length < 8:
        raise PacketError(LAYER, start + 4, f"length field {length} is below the minimum of 8")
    if strict and length > avail:
        raise PacketError(
            LAYER, start + avail, f"truncated datagram: length field {length}, have {avail} bytes"
        )
    return UDPHeader(sport, dport, length, cksum)


def parse_udp(data: Buffer) -> tuple[UDPHeader, bytes]:
    """Parse a UDP datagram into its header and payload (cut to the length field)."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    header = parse_udp_header(mv, 0, len(mv))
    return header, mv[8 : header.length].tobytes()


def verify_udp_checksum(datagram: Buffer, src: Address, dst: Address) -> bool:
    """True if the checksum is right for ``src`` -> ``dst``, or absent (0) over IPv4."""
    src_b, dst_b = packed_address(src, "src"), packed_address(dst, "dst")
    if len(src_b) == 4 and len(datagram) >= 8 and datagram[6] == 0 and datagram[7] == 0:
        return True
    return (
        internet_checksum(datagram, pseudo_header_sum(src_b, dst_b, PROTOCOL, len(datagram))) == 0
    )


def build_udp(
    *,
    src: Address,
    dst: Address,
    src_port: int,
    dst_port: int,
    payload: Buffer = b"",
    length: int | None = None,
    checksum: int | None = None,
) -> bytes:
    """Build a UDP datagram with its checksum over the pseudo-header of ``src`` -> ``dst``.

    A computed checksum of 0 is sent as 0xFFFF. ``checksum`` forces a value (0 = none on
    IPv4); ``length`` forces the length field. Raises ``ValueError`` for bad arguments.
    """
    src_b, dst_b = packed_address(src, "src"), packed_address(dst, "dst")
    real = 8 + len(payload)
    out = bytearray(8)
    pack_checked(UDP_HEADER, out, 0, src_port, dst_port, real if length is None else length, 0)
    out += payload
    if checksum is None:
        checksum = internet_checksum(out, pseudo_header_sum(src_b, dst_b, PROTOCOL, real)) or 0xFFFF
    pack_checked(_U16, out, 6, checksum)
    return bytes(out)
