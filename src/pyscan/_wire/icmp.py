"""ICMPv4 codec (RFC 792, 950) and the message classes ICMPv6 shares.

``parse_icmp`` returns one message object (the message holds its own data, so there is no
separate payload): :class:`ICMPEcho`, :class:`ICMPTimestamp`, :class:`ICMPAddressMask`,
:class:`ICMPError` (destination unreachable, source quench, redirect, time exceeded,
parameter problem) or :class:`ICMPOther`. Errors carry the quoted original datagram parsed
as a :class:`QuotedDatagram`: its IP header and the first transport bytes that identify the
probe (ports, TCP sequence, ICMP id/sequence). Routers often quote only the inner IP header
plus 8 bytes, so the quote is parsed leniently; when it is not an IP header at all,
``quoted`` is ``None`` and the raw bytes stay in ``quoted_raw``.
"""

from __future__ import annotations

import enum
import struct

import attrs

from pyscan._wire.checksum import internet_checksum
from pyscan._wire.ipv4 import IPv4Header, parse_ipv4_header
from pyscan._wire.ipv6 import IPv6Header, parse_ipv6_header
from pyscan._wire.reader import Buffer, pack_checked
from pyscan.errors import PacketError

__all__ = [
    "ICMPAddressMask",
    "ICMPEcho",
    "ICMPError",
    "ICMPMessage",
    "ICMPOther",
    "ICMPTimestamp",
    "ICMPType",
    "QuotedDatagram",
    "TimeExceededCode",
    "UnreachCode",
    "build_icmp",
    "build_icmp_address_mask",
    "build_icmp_echo",
    "build_icmp_error",
    "build_icmp_timestamp",
    "parse_icmp",
    "parse_quoted_datagram",
    "verify_icmp_checksum",
]

_PREFIX = struct.Struct("!BBH")
_ECHO = struct.Struct("!BBHHH")
_TIMESTAMP = struct.Struct("!BBHHHIII")
_ERROR = struct.Struct("!BBHI")
_PORTS_SEQ = struct.Struct("!HHI")
_PORTS = struct.Struct("!HH")
_U16 = struct.Struct("!H")

LAYER = "icmp"


class ICMPType(enum.IntEnum):
    """ICMPv4 message types."""

    ECHO_REPLY = 0
    DEST_UNREACH = 3
    SOURCE_QUENCH = 4
    REDIRECT = 5
    ECHO_REQUEST = 8
    ROUTER_ADVERT = 9
    ROUTER_SOLICIT = 10
    TIME_EXCEEDED = 11
    PARAMETER_PROBLEM = 12
    TIMESTAMP_REQUEST = 13
    TIMESTAMP_REPLY = 14
    ADDRESS_MASK_REQUEST = 17
    ADDRESS_MASK_REPLY = 18


class UnreachCode(enum.IntEnum):
    """ICMPv4 destination-unreachable codes (RFC 792, 1122, 1812)."""

    NET = 0
    HOST = 1
    PROTOCOL = 2
    PORT = 3
    FRAG_NEEDED = 4
    SOURCE_ROUTE_FAILED = 5
    NET_UNKNOWN = 6
    HOST_UNKNOWN = 7
    SOURCE_HOST_ISOLATED = 8
    NET_PROHIBITED = 9
    HOST_PROHIBITED = 10
    NET_TOS = 11
    HOST_TOS = 12
    ADMIN_PROHIBITED = 13
    HOST_PRECEDENCE_VIOLATION = 14
    PRECEDENCE_CUTOFF = 15


class TimeExceededCode(enum.IntEnum):
    """ICMPv4 time-exceeded codes."""

    TTL = 0
    REASSEMBLY = 1


ERROR_TYPES_V4 = frozenset({3, 4, 5, 11, 12})
ERROR_TYPES_V6 = frozenset({1, 2, 3, 4})
_ECHO_TYPES = {4: frozenset({0, 8}), 6: frozenset({128, 129})}
_REPLY_TYPES = frozenset({0, 14, 18, 129})


def _hex_repr(value: bytes) -> str:
    return f"'{value.hex()}'"


@attrs.frozen
class QuotedDatagram:
    """The original datagram quoted by an ICMP or ICMPv6 error.

    ``protocol`` is the inner upper-layer protocol; ``transport`` the inner transport bytes
    present (often only 8). Fields that the protocol lacks or the quote cut off are ``None``:
    ports for TCP, UDP, SCTP and UDP-Lite; ``tcp_seq`` for TCP; ``icmp_type``, ``icmp_code``,
    ``icmp_id`` and ``icmp_seq`` for an inner ICMP/ICMPv6 message (id/seq only for echoes).
    """

    ip: IPv4Header | IPv6Header
    protocol: int
    transport: bytes = attrs.field(repr=_hex_repr)
    src_port: int | None = None
    dst_port: int | None = None
    tcp_seq: int | None = None
    icmp_type: int | None = None
    icmp_code: int | None = None
    icmp_id: int | None = None
    icmp_seq: int | None = None

    @property
    def src(self) -> bytes:
        """Inner source address (packed)."""
        return self.ip.src

    @property
    def dst(self) -> bytes:
        """Inner destination address (packed)."""
        return self.ip.dst


@attrs.frozen
class ICMPEcho:
    """Echo request or reply (ICMPv4 8/0, ICMPv6 128/129)."""

    type: int
    code: int
    checksum: int
    identifier: int
    sequence: int
    data: bytes = attrs.field(default=b"", repr=_hex_repr)

    @property
    def is_reply(self) -> bool:
        """True for an echo reply."""
        return self.type in _REPLY_TYPES


@attrs.frozen
class ICMPTimestamp:
    """Timestamp request (13) or reply (14); times in ms since midnight UT."""

    type: int
    code: int
    checksum: int
    identifier: int
    sequence: int
    originate: int
    receive: int
    transmit: int

    @property
    def is_reply(self) -> bool:
        """True for a timestamp reply."""
        return self.type in _REPLY_TYPES


@attrs.frozen
class ICMPAddressMask:
    """Address mask request (17) or reply (18)."""

    type: int
    code: int
    checksum: int
    identifier: int
    sequence: int
    mask: bytes = attrs.field(repr=_hex_repr)

    @property
    def is_reply(self) -> bool:
        """True for an address mask reply."""
        return self.type in _REPLY_TYPES


@attrs.frozen
class ICMPError:
    """An error quoting the offending datagram.

    ICMPv4: destination unreachable (3), source quench (4), redirect (5), time exceeded (11),
    parameter problem (12). ICMPv6: destination unreachable (1), packet too big (2), time
    exceeded (3), parameter problem (4). ``rest`` is the 32-bit word after the checksum
    (next-hop MTU, pointer, gateway or MTU depending on the type).
    """

    type: int
    code: int
    checksum: int
    rest: int
    quoted: QuotedDatagram | None
    quoted_raw: bytes = attrs.field(repr=_hex_repr)

    @property
    def mtu(self) -> int:
        """The MTU of "fragmentation needed" (low 16 bits of ``rest``) or ICMPv6 "packet
        too big" (all of ``rest``)."""
        return self.rest if self.type == 2 else self.rest & 0xFFFF


@attrs.frozen
class ICMPOther:
    """Any other message: ``body`` is everything after the checksum."""

    type: int
    code: int
    checksum: int
    body: bytes = attrs.field(default=b"", repr=_hex_repr)


ICMPMessage = ICMPEcho | ICMPTimestamp | ICMPAddressMask | ICMPError | ICMPOther


def parse_quoted_datagram(mv: memoryview, start: int, end: int) -> QuotedDatagram | None:
    """Leniently parse a datagram quoted in an ICMP error; ``None`` if it is not IP."""
    if end - start < 1:
        return None
    version = mv[start] >> 4
    ip: IPv4Header | IPv6Header
    try:
        if version == 4:
            ip = parse_ipv4_header(mv, start, end, strict=False)
            tstart = start + ip.ihl * 4
            tend = min(end, start + ip.total_length)
            proto = ip.protocol
            first = ip.fragment_offset == 0
        elif version == 6:
            ip = parse_ipv6_header(mv, start, end, strict=False)
            tstart = start + ip.header_length
            tend = min(end, start + 40 + ip.payload_length)
            proto = ip.upper_layer
            first = ip.fragment_offset == 0
        else:
            return None
    except PacketError:
        return None
    tend = max(tend, tstart)
    have = tend - tstart
    transport = mv[tstart:tend].tobytes()
    if not first:
        return QuotedDatagram(ip, proto, transport)
    if proto == 6 and have >= 8:
        sport, dport, seq = _PORTS_SEQ.unpack_from(mv, tstart)
        return QuotedDatagram(ip, proto, transport, sport, dport, seq)
    if proto in (6, 17, 132, 136) and have >= 4:
        sport, dport = _PORTS.unpack_from(mv, tstart)
        return QuotedDatagram(ip, proto, transport, sport, dport)
    if proto in (1, 58) and have >= 2:
        itype, icode = mv[tstart], mv[tstart + 1]
        if have >= 8 and itype in _ECHO_TYPES[4 if proto == 1 else 6]:
            ident, iseq = _PORTS.unpack_from(mv, tstart + 4)
            return QuotedDatagram(
                ip, proto, transport, icmp_type=itype, icmp_code=icode, icmp_id=ident, icmp_seq=iseq
            )
        return QuotedDatagram(ip, proto, transport, icmp_type=itype, icmp_code=icode)
    return QuotedDatagram(ip, proto, transport)


def parse_icmp_message(mv: memoryview, start: int, end: int, layer: str) -> ICMPMessage:
    """Parse an ICMPv4 (``layer="icmp"``) or ICMPv6 (``"icmpv6"``) message at ``mv[start:end]``."""
    avail = end - start
    if avail < 4:
        raise PacketError(layer, start, f"truncated header: need 4 bytes, have {max(avail, 0)}")
    typ, code, cksum = _PREFIX.unpack_from(mv, start)
    v6 = layer == "icmpv6"
    if typ in _ECHO_TYPES[6 if v6 else 4]:
        if avail < 8:
            raise PacketError(layer, start + 4, f"truncated echo: need 8 bytes, have {avail}")
        _, _, _, ident, seq = _ECHO.unpack_from(mv, start)
        return ICMPEcho(typ, code, cksum, ident, seq, mv[start + 8 : end].tobytes())
    if typ in (ERROR_TYPES_V6 if v6 else ERROR_TYPES_V4):
        if avail < 8:
            raise PacketError(layer, start + 4, f"truncated error: need 8 bytes, have {avail}")
        rest = _ERROR.unpack_from(mv, start)[3]
        return ICMPError(
            typ,
            code,
            cksum,
            rest,
            parse_quoted_datagram(mv, start + 8, end),
            mv[start + 8 : end].tobytes(),
        )
    if not v6 and typ in (13, 14):
        if avail < 20:
            raise PacketError(layer, start + 4, f"truncated timestamp: need 20 bytes, have {avail}")
        _, _, _, ident, seq, orig, recv, xmit = _TIMESTAMP.unpack_from(mv, start)
        return ICMPTimestamp(typ, code, cksum, ident, seq, orig, recv, xmit)
    if not v6 and typ in (17, 18):
        if avail < 12:
            raise PacketError(
                layer, start + 4, f"truncated address mask: need 12 bytes, have {avail}"
            )
        _, _, _, ident, seq = _ECHO.unpack_from(mv, start)
        return ICMPAddressMask(typ, code, cksum, ident, seq, mv[start + 8 : start + 12].tobytes())
    return ICMPOther(typ, code, cksum, mv[start + 4 : end].tobytes())


def parse_icmp(data: Buffer) -> ICMPMessage:
    """Parse an ICMPv4 message (the IP payload). Does not verify the checksum."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    return parse_icmp_message(mv, 0, len(mv), LAYER)


def verify_icmp_checksum(data: Buffer) -> bool:
    """True if the ICMPv4 message's checksum is right."""
    return len(data) >= 4 and internet_checksum(data) == 0


def _finish(msg: bytearray, checksum: int | None) -> bytes:
    pack_checked(_U16, msg, 2, internet_checksum(msg) if checksum is None else checksum)
    return bytes(msg)


def build_icmp(
    *, icmp_type: int, code: int = 0, body: Buffer = b"", checksum: int | None = None
) -> bytes:
    """Build any ICMPv4 message from its type, code and the bytes after the checksum."""
    msg = bytearray(4)
    pack_checked(_PREFIX, msg, 0, icmp_type, code, 0)
    msg += body
    return _finish(msg, checksum)


def build_icmp_echo(
    *,
    identifier: int,
    sequence: int,
    data: Buffer = b"",
    reply: bool = False,
    code: int = 0,
    checksum: int | None = None,
) -> bytes:
    """Build an ICMPv4 echo request (or reply)."""
    msg = bytearray(8)
    pack_checked(_ECHO, msg, 0, 0 if reply else 8, code, 0, identifier, sequence)
    msg += data
    return _finish(msg, checksum)


def build_icmp_timestamp(
    *,
    identifier: int,
    sequence: int,
    originate: int = 0,
    receive: int = 0,
    transmit: int = 0,
    reply: bool = False,
    code: int = 0,
    checksum: int | None = None,
) -> bytes:
    """Build an ICMPv4 timestamp request (or reply)."""
    msg = bytearray(20)
    pack_checked(
        _TIMESTAMP,
        msg,
        0,
        14 if reply else 13,
        code,
        0,
        identifier,
        sequence,
        originate,
        receive,
        transmit,
    )
    return _finish(msg, checksum)


def build_icmp_address_mask(
    *,
    identifier: int,
    sequence: int,
    mask: bytes = bytes(4),
    reply: bool = False,
    code: int = 0,
    checksum: int | None = None,
) -> bytes:
    """Build an ICMPv4 address mask request (or reply)."""
    if len(mask) != 4:
        raise ValueError(f"mask must be 4 bytes, not {len(mask)}")
    msg = bytearray(8)
    pack_checked(_ECHO, msg, 0, 18 if reply else 17, code, 0, identifier, sequence)
    msg += mask
    return _finish(msg, checksum)


def build_icmp_error(
    *,
    icmp_type: int,
    code: int,
    quoted: Buffer,
    rest: int = 0,
    checksum: int | None = None,
) -> bytes:
    """Build an ICMPv4 error (e.g. type 3 code 3, port unreachable) quoting ``quoted``, the
    start of the offending datagram (conventionally its IP header plus 8 bytes)."""
    msg = bytearray(8)
    pack_checked(_ERROR, msg, 0, icmp_type, code, 0, rest)
    msg += quoted
    return _finish(msg, checksum)
