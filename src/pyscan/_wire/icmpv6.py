"""ICMPv6 codec (RFC 4443), sharing the message classes of :mod:`pyscan._wire.icmp`.

``parse_icmpv6`` returns :class:`~pyscan._wire.icmp.ICMPEcho` (128/129),
:class:`~pyscan._wire.icmp.ICMPError` (1 destination unreachable, 2 packet too big,
3 time exceeded, 4 parameter problem; the quoted datagram parsed leniently) or
:class:`~pyscan._wire.icmp.ICMPOther` (neighbour discovery and the rest). The checksum covers
the IPv6 pseudo-header, so the builders need the addresses.
"""

from __future__ import annotations

import enum
import struct

from pyscan._wire.checksum import internet_checksum, ipv6_pseudo_header_sum
from pyscan._wire.icmp import ICMPMessage, parse_icmp_message
from pyscan._wire.reader import Address, Buffer, pack_checked, packed_address

__all__ = [
    "ICMPv6Type",
    "ICMPv6UnreachCode",
    "build_icmpv6",
    "build_icmpv6_echo",
    "build_icmpv6_error",
    "parse_icmpv6",
    "verify_icmpv6_checksum",
]

LAYER = "icmpv6"
PROTOCOL = 58

_ECHO = struct.Struct("!BBHHH")
_ERROR = struct.Struct("!BBHI")
_U16 = struct.Struct("!H")
_PREFIX = struct.Struct("!BBH")


class ICMPv6Type(enum.IntEnum):
    """ICMPv6 message types."""

    DEST_UNREACH = 1
    PACKET_TOO_BIG = 2
    TIME_EXCEEDED = 3
    PARAMETER_PROBLEM = 4
    ECHO_REQUEST = 128
    ECHO_REPLY = 129
    ROUTER_SOLICIT = 133
    ROUTER_ADVERT = 134
    NEIGHBOR_SOLICIT = 135
    NEIGHBOR_ADVERT = 136
    REDIRECT = 137


class ICMPv6UnreachCode(enum.IntEnum):
    """ICMPv6 destination-unreachable codes."""

    NO_ROUTE = 0
    ADMIN_PROHIBITED = 1
    BEYOND_SCOPE = 2
    ADDRESS = 3
    PORT = 4
    SOURCE_POLICY = 5
    REJECT_ROUTE = 6


def parse_icmpv6(data: Buffer) -> ICMPMessage:
    """Parse an ICMPv6 message (the upper-layer payload). Does not verify the checksum."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    return parse_icmp_message(mv, 0, len(mv), LAYER)


def _pseudo(src: Address, dst: Address, length: int) -> int:
    src_b, dst_b = packed_address(src, "src"), packed_address(dst, "dst")
    if len(src_b) != 16 or len(dst_b) != 16:
        raise ValueError("ICMPv6 needs IPv6 addresses")
    return ipv6_pseudo_header_sum(src_b, dst_b, PROTOCOL, length)


def verify_icmpv6_checksum(data: Buffer, src: Address, dst: Address) -> bool:
    """True if the ICMPv6 message's checksum is right for ``src`` -> ``dst``."""
    return len(data) >= 4 and internet_checksum(data, _pseudo(src, dst, len(data))) == 0


def _finish(msg: bytearray, src: Address, dst: Address, checksum: int | None) -> bytes:
    if checksum is None:
        checksum = internet_checksum(msg, _pseudo(src, dst, len(msg)))
    pack_checked(_U16, msg, 2, checksum)
    return bytes(msg)


def build_icmpv6(
    *,
    src: Address,
    dst: Address,
    icmp_type: int,
    code: int = 0,
    body: Buffer = b"",
    checksum: int | None = None,
) -> bytes:
    """Build any ICMPv6 message from its type, code and the bytes after the checksum."""
    msg = bytearray(4)
    pack_checked(_PREFIX, msg, 0, icmp_type, code, 0)
    msg += body
    return _finish(msg, src, dst, checksum)


def build_icmpv6_echo(
    *,
    src: Address,
    dst: Address,
    identifier: int,
    sequence: int,
    data: Buffer = b"",
    reply: bool = False,
    code: int = 0,
    checksum: int | None = None,
) -> bytes:
    """Build an ICMPv6 echo request (or reply)."""
    msg = bytearray(8)
    pack_checked(_ECHO, msg, 0, 129 if reply else 128, code, 0, identifier, sequence)
    msg += data
    return _finish(msg, src, dst, checksum)


def build_icmpv6_error(
    *,
    src: Address,
    dst: Address,
    icmp_type: int,
    code: int,
    quoted: Buffer,
    rest: int = 0,
    checksum: int | None = None,
) -> bytes:
    """Build an ICMPv6 error (1-4) quoting ``quoted``; ``rest`` is the MTU for packet too big
    or the pointer for parameter problem."""
    msg = bytearray(8)
    pack_checked(_ERROR, msg, 0, icmp_type, code, 0, rest)
    msg += quoted
    return _finish(msg, src, dst, checksum)
