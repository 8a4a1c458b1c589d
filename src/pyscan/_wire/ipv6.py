"""IPv6 header codec (RFC 8200), skipping extension headers to the upper layer.

``parse_ipv6`` returns ``(header, payload)`` where ``payload`` is the upper-layer data after
any extension headers (cut to ``payload_length``). The header records the first
``next_header`` as on the wire, the final protocol in ``upper_layer`` and the upper-layer
offset in ``header_length``. A non-first fragment stops the walk: its data is not an
upper-layer header (``is_fragment`` tells). ESP (50) and No Next Header (59) also stop it.
"""

from __future__ import annotations

import ipaddress
import struct

import attrs

from pyscan._wire.reader import Address, Buffer, Reader, pack_checked, packed_address
from pyscan.errors import PacketError

__all__ = [
    "EXTENSION_HEADERS",
    "IPV6_HEADER",
    "IPv6Header",
    "build_ipv6",
    "build_ipv6_extension",
    "build_ipv6_fragment_header",
    "parse_ipv6",
]

IPV6_HEADER = struct.Struct("!IHBB16s16s")
"""The fixed 40-byte IPv6 header."""

_EXT_PREFIX = struct.Struct("!BB")
_FRAGMENT = struct.Struct("!BBHI")

HOP_BY_HOP, ROUTING, FRAGMENT, AUTH, DEST_OPTS = 0, 43, 44, 51, 60
EXTENSION_HEADERS = frozenset({HOP_BY_HOP, ROUTING, FRAGMENT, AUTH, DEST_OPTS, 135, 139, 140})
"""Next-header values the parser skips: hop-by-hop, routing, fragment, AH, destination
options, mobility, HIP and shim6."""

LAYER = "ipv6"


def _addr_repr(value: bytes) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        return value.hex()


@attrs.frozen
class IPv6Header:
    """A parsed IPv6 header plus what the extension-header walk found.

    ``next_header`` is the fixed header's field; ``upper_layer`` the protocol after the
    extension headers; ``header_length`` the upper-layer offset (40 + extension bytes);
    ``extensions`` the extension header types crossed, in order. ``fragment_offset`` (8-byte
    units) and ``more_fragments`` come from a fragment header, 0/False without one.
    """

    version: int
    traffic_class: int
    flow_label: int
    payload_length: int
    next_header: int
    hop_limit: int
    src: bytes = attrs.field(repr=_addr_repr)
    dst: bytes = attrs.field(repr=_addr_repr)
    upper_layer: int
    header_length: int
    extensions: tuple[int, ...] = ()
    fragment_offset: int = 0
    more_fragments: bool = False

    @property
    def is_fragment(self) -> bool:
        """True for a fragment of a fragmented datagram (M set or a non-zero offset)."""
        return self.more_fragments or self.fragment_offset != 0

    @property
    def src_ip(self) -> ipaddress.IPv6Address:
        """Source address as an ``ipaddress`` object."""
        return ipaddress.IPv6Address(self.src)

    @property
    def dst_ip(self) -> ipaddress.IPv6Address:
        """Destination address as an ``ipaddress`` object."""
        return ipaddress.IPv6Address(self.dst)


def parse_ipv6_header(mv: memoryview, start: int, end: int, *, strict: bool) -> IPv6Header:
    """Parse the header at ``mv[start:end]`` and walk its extension headers.

    With ``strict=False`` (quoted datagrams in ICMPv6 errors) the datagram may be shorter
    than ``payload_length`` says; the walk then stops where the bytes end.
    """
    avail = end - start
    if avail < 40:
        raise PacketError(LAYER, start, f"truncated header: need 40 bytes, have {max(avail, 0)}")
    word, plen, nxt, hlim, src, dst = IPV6_HEADER.unpack_from(mv, start)
    version = word >> 28
    if version != 6:
        raise PacketError(LAYER, start, f"version is {version}, not 6")
    if 40 + plen > avail:
        if strict:
            raise PacketError(
                LAYER,
                start + avail,
                f"truncated datagram: payload length {plen}, have {avail - 40} bytes",
            )
        stop = end
    else:
        stop = start + 40 + plen
    proto = nxt
    offset = start + 40
    exts: list[int] = []
    frag_off = 0
    more = False
    reader = Reader(mv, LAYER, offset, stop)
    while proto in EXTENSION_HEADERS:
        if not strict and stop - offset < 8:
            break  # quoted datagram cut inside its extension headers
        reader.pos = offset
        exts.append(proto)
        if proto == FRAGMENT:
            nxt_ext, _, offflags, _ident = reader.unpack(_FRAGMENT, "fragment header")
            frag_off = offflags >> 3
            more = bool(offflags & 1)
            offset += 8
            proto = nxt_ext
            if frag_off:
                break  # later fragments carry no upper-layer header
            continue
        nxt_ext, hlen_field = reader.unpack(_EXT_PREFIX, f"extension header {proto}")
        length = (hlen_field + 2) * 4 if proto == AUTH else (hlen_field + 1) * 8
        if offset + length > stop:
            if not strict:
                break
            raise PacketError(
                LAYER,
                offset + 1,
                f"extension header {proto} of {length} bytes overruns the payload "
                f"({stop - offset} bytes left)",
            )
        offset += length
        proto = nxt_ext
    return IPv6Header(
        6,
        (word >> 20) & 0xFF,
        word & 0xFFFFF,
        plen,
        nxt,
        hlim,
        src,
        dst,
        proto,
        offset - start,
        tuple(exts),
        frag_off,
        more,
    )


def parse_ipv6(data: Buffer) -> tuple[IPv6Header, bytes]:
    """Parse an IPv6 datagram into its header and upper-layer payload."""
    mv = data if isinstance(data, memoryview) else memoryview(data)
    header = parse_ipv6_header(mv, 0, len(mv), strict=True)
    return header, mv[header.header_length : 40 + header.payload_length].tobytes()


def build_ipv6(
    *,
    src: Address,
    dst: Address,
    next_header: int,
    payload: Buffer = b"",
    hop_limit: int = 64,
    traffic_class: int = 0,
    flow_label: int = 0,
    payload_length: int | None = None,
) -> bytes:
    """Build an IPv6 datagram. ``payload`` includes any extension headers (see
    :func:`build_ipv6_extension`), ``next_header`` names the first of them.
    Raises ``ValueError`` for out-of-range arguments."""
    src_b = packed_address(src, "src")
    dst_b = packed_address(dst, "dst")
    if len(src_b) != 16 or len(dst_b) != 16:
        raise ValueError("build_ipv6 needs IPv6 addresses")
    if not 0 <= traffic_class <= 0xFF or not 0 <= flow_label <= 0xFFFFF:
        raise ValueError(f"traffic class {traffic_class} or flow label {flow_label} out of range")
    plen = len(payload) if payload_length is None else payload_length
    header = bytearray(40)
    pack_checked(
        IPV6_HEADER,
        header,
        0,
        (6 << 28) | (traffic_class << 20) | flow_label,
        plen,
        next_header,
        hop_limit,
        src_b,
        dst_b,
    )
    return bytes(header) + bytes(payload)


def build_ipv6_extension(kind: int, next_header: int, body: bytes = b"") -> bytes:
    """Build one extension header of type ``kind`` (not fragment: see
    :func:`build_ipv6_fragment_header`), zero-padding ``body`` to the size rule of ``kind``
    (8-byte multiples; the AH length field counts 4-byte words minus 2)."""
    if kind not in EXTENSION_HEADERS or kind == FRAGMENT:
        raise ValueError(f"{kind} is not a variable-length extension header type")
    total = -(-(2 + len(body)) // 8) * 8
    length_field = total // 4 - 2 if kind == AUTH else total // 8 - 1
    if length_field > 0xFF:
        raise ValueError(f"extension body of {len(body)} bytes is too long")
    return bytes((next_header, length_field)) + body + bytes(total - 2 - len(body))


def build_ipv6_fragment_header(
    next_header: int,
    fragment_offset: int = 0,
    more_fragments: bool = False,
    identification: int = 0,
) -> bytes:
    """Build an 8-byte fragment header (``fragment_offset`` in 8-byte units)."""
    if not 0 <= fragment_offset <= 0x1FFF:
        raise ValueError(f"fragment offset {fragment_offset} does not fit in 13 bits")
    out = bytearray(8)
    pack_checked(
        _FRAGMENT,
        out,
        0,
        next_header,
        0,
        (fragment_offset << 3) | int(more_fragments),
        identification,
    )
    return bytes(out)
