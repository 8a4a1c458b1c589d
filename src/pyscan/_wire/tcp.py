"""TCP header and options codec (RFC 9293, 7323, 2018).

``parse_tcp`` returns ``(header, payload)``. The header keeps the options area byte-exact in
``options_raw``; ``header.options`` decodes it into typed options on first access (then
cached), so the receive path can skip option decoding (``parse_options=False``) and still
offer it later. Decoding is lossless: ``encode_tcp_options(decode_tcp_options(raw)) == raw``
for every well-formed area (a known kind with an unexpected length is kept as
:class:`UnknownOption`; bytes after EOL are kept in ``EOL.padding``).
"""

from __future__ import annotations

import enum
import functools
import struct
from collections.abc import Iterable

import attrs

from pyscan._wire.checksum import internet_checksum, pseudo_header_sum
from pyscan._wire.reader import Address, Buffer, pack_checked, packed_address
from pyscan.errors import PacketError

__all__ = [
    "EOL",
    "MSS",
    "NOP",
    "SACK",
    "TCP_HEADER",
    "SACKPermitted",
    "TCPFlags",
    "TCPHeader",
    "TCPOption",
    "Timestamps",
    "UnknownOption",
    "WindowScale",
    "build_tcp",
    "decode_tcp_options",
    "encode_tcp_options",
    "parse_tcp",
    "verify_tcp_checksum",
]

TCP_HEADER = struct.Struct("!HHIIBBHHH")
"""The fixed 20-byte TCP header."""

_U16 = struct.Struct("!H")
_U32X2 = struct.Struct("!II")

LAYER = "tcp"
PROTOCOL = 6


class TCPFlags(enum.IntFlag):
    """TCP control bits, NS being bit 8 (the low bit of the data-offset byte)."""

    FIN = 0x01
    SYN = 0x02
    RST = 0x04
    PSH = 0x08
    ACK = 0x10
    URG = 0x20
    ECE = 0x40
    CWR = 0x80
    NS = 0x100


class _FlagsTable(dict[int, TCPFlags]):
    """:class:`TCPFlags` by 9-bit value, each made on first use: building all 512 at import
    costs milliseconds, and a scan only ever sees a handful. Lookups cost as a tuple's."""

    def __missing__(self, value: int) -> TCPFlags:
        flags = self[value] = TCPFlags(value)
        return flags


_FLAGS = _FlagsTable()


def _hex_repr(value: bytes) -> str:
    return f"'{value.hex()}'"


@attrs.frozen
class EOL:
    """End of option list (kind 0); ``padding`` holds the bytes after it (normally zeros)."""

    padding: bytes = attrs.field(default=b"", repr=_hex_repr)


@attrs.frozen
class NOP:
    """No-operation (kind 1), used for alignment."""


@attrs.frozen
class MSS:
    """Maximum segment size (kind 2)."""

    value: int


@attrs.frozen
class WindowScale:
    """Window scale shift count (kind 3)."""

    shift: int


@attrs.frozen
class SACKPermitted:
    """SACK permitted (kind 4)."""


@attrs.frozen
class SACK:
    """Selective acknowledgement blocks (kind 5): ``(left_edge, right_edge)`` pairs."""

    blocks: tuple[tuple[int, int], ...]


@attrs.frozen
class Timestamps:
    """Timestamps (kind 8): TSval and TSecr."""

    value: int
    echo_reply: int


@attrs.frozen
class UnknownOption:
    """Any other option, or a known kind with an unexpected length, kept byte-exact."""

    kind: int
    data: bytes = attrs.field(default=b"", repr=_hex_repr)


TCPOption = EOL | NOP | MSS | WindowScale | SACKPermitted | SACK | Timestamps | UnknownOption

_NOP = NOP()
_SACK_OK = SACKPermitted()


def decode_tcp_options(raw: Buffer, base_offset: int = 0) -> tuple[TCPOption, ...]:
    """Decode a TCP options area. ``base_offset`` is added to offsets in errors.

    Raises :class:`PacketError` when an option lacks its length byte, has a length below 2,
    or runs past the end of the area.
    """
    mv = raw if isinstance(raw, memoryview) else memoryview(raw)
    n = len(mv)
    out: list[TCPOption] = []
    pos = 0
    while pos < n:
        kind = mv[pos]
        if kind == 0:
            out.append(EOL(mv[pos + 1 :].tobytes()))
            break
        if kind == 1:
            out.append(_NOP)
            pos += 1
            continue
        if pos + 1 >= n:
            raise PacketError(LAYER, base_offset + pos, f"option kind {kind} lacks a length byte")
        length = mv[pos + 1]
        if length < 2:
            raise PacketError(
                LAYER, base_offset + pos + 1, f"option kind {kind} has length {length}, below 2"
            )
        if pos + length > n:
            raise PacketError(
                LAYER,
                base_offset + pos + 1,
                f"option kind {kind} of length {length} overruns the options area "
                f"({n - pos} bytes left)",
            )
        if kind == 2 and length == 4:
            out.append(MSS(_U16.unpack_from(mv, pos + 2)[0]))
        elif kind == 3 and length == 3:
            out.append(WindowScale(mv[pos + 2]))
        elif kind == 4 and length == 2:
            out.append(_SACK_OK)
        elif kind == 8 and length == 10:
            out.append(Timestamps(*_U32X2.unpack_from(mv, pos + 2)))
        elif kind == 5 and (length - 2) % 8 == 0:
            out.append(
                SACK(tuple(_U32X2.unpack_from(mv, p) for p in range(pos + 2, pos + length, 8)))
            )
        else:
            out.append(UnknownOption(kind, mv[pos + 2 : pos + length].tobytes()))
        pos += length
    return tuple(out)


def encode_tcp_options(options: Iterable[TCPOption]) -> bytes:
    """Encode options in order, without padding. Raises ``ValueError`` for values that do
    not fit their fields."""
    out = bytearray()
    try:
        for opt in options:
            if isinstance(opt, NOP):
                out.append(1)
            elif isinstance(opt, EOL):
                out.append(0)
                out += opt.padding
            elif isinstance(opt, MSS):
                out += struct.pack("!BBH", 2, 4, opt.value)
            elif isinstance(opt, WindowScale):
                out += struct.pack("!BBB", 3, 3, opt.shift)
            elif isinstance(opt, SACKPermitted):
                out += b"\x04\x02"
            elif isinstance(opt, Timestamps):
                out += struct.pack("!BBII", 8, 10, opt.value, opt.echo_reply)
            elif isinstance(opt, SACK):
                out += bytes((5, 2 + 8 * len(opt.blocks)))
                for left, right in opt.blocks:
                    out += _U32X2.pack(left, right)
            else:
                out += bytes((opt.kind, 2 + len(opt.data)))
                out += opt.data
    except (struct.error, ValueError) as exc:
        raise ValueError(f"TCP option does not fit its fields: {exc}") from exc
    return bytes(out)


@attrs.frozen
class TCPHeader:
    """A parsed TCP header. ``data_offset`` is in 32-bit words; ``reserved`` the three bits
    between the data offset and NS; ``options_raw`` the options area as on the wire."""

    src_port: int
    dst_port: int
    seq: int
    ack: int
    data_offset: int
    flags: TCPFlags
    window: int
    checksum: int
    urgent: int
    options_raw: bytes = attrs.field(default=b"", repr=_hex_repr)
    reserved: int = 0

    @property
    def header_length(self) -> int:
        """Header length in bytes (``data_offset * 4``)."""
        return self.data_offset * 4

    @functools.cached_property
    def options(self) -> tuple[TCPOption, ...]:
        """The decoded options (raises :class:`PacketError` if ``options_raw`` is malformed)."""
        return decode_tcp_options(self.options_raw, 20)

    def option(self, kind: type[TCPOption]) -> TCPOption | None:
        """The first option of class ``kind`` (e.g. ``MSS``), or ``None``."""
        for opt in self.options:
            if isinstance(opt, kind):
                return opt
        return None


def parse_tcp_header(
    mv: memoryview, start: int, end: int, *, parse_options: bool = True
) -> TCPHeader:
    """Parse the TCP header at ``mv[start:end]`` (offsets in errors are absolute)."""
    avail = end - start
    if avail < 20:
        raise PacketError(LAYER, start, f"truncated header: need 20 bytes, have {max(avail, 0)}")
    sport, dport, seq, ack, off, flags, window, cksum, urgent = TCP_HEADER.unpack_from(mv, start)
    doff = off >> 4
    if doff < 5:
        raise PacketError(LAYER, start + 12, f"data offset is {doff}, below the minimum of 5")
    hlen = doff * 4
    if hlen > avail:
        raise PacketError(
            LAYER, start + 20, f"truncated options: header length {hlen}, have {avail} bytes"
        )
    header = TCPHeader(
        sport,
        dport,
        seq,
        ack,
        doff,
        _FLAGS[((off & 1) << 8) | flags],
        window,
        cksum,
        urgent,
        mv[start + 20 : start + hlen].tobytes() if doff > 5 else b"",
        (off >> 1) & 7,
    )
    if parse_options and doff > 5:
        decode_tcp_options(mv[start + 20 : start + hlen], start + 20)
    return header


def parse_tcp(data: Buffer, *, parse_options: bool = True) -> tuple[TCPHeader, bytes]:
    """Parse a TCP segment into its header and payload.

    With ``parse_options`` (default) a malformed options area raises :class:`PacketError`
    here; without it, only when ``header.options`` is read.
    """
    mv = data if isinstance(data, memoryview) else memoryview(data)
    header = parse_tcp_header(mv, 0, len(mv), parse_options=parse_options)
    return header, mv[header.data_offset * 4 :].tobytes()


def verify_tcp_checksum(segment: Buffer, src: Address, dst: Address) -> bool:
    """True if ``segment``'s checksum is right for the pseudo-header of ``src`` -> ``dst``."""
    src_b, dst_b = packed_address(src, "src"), packed_address(dst, "dst")
    return internet_checksum(segment, pseudo_header_sum(src_b, dst_b, PROTOCOL, len(segment))) == 0


def build_tcp(
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
    reserved: int = 0,
    checksum: int | None = None,
) -> bytes:
    """Build a TCP segment with its checksum over the IPv4 or IPv6 pseudo-header of
    ``src`` -> ``dst`` (unless ``checksum`` forces a value).

    ``options`` (typed options or raw bytes) are zero-padded to a 4-byte multiple, at most
    40 bytes. Raises ``ValueError`` for out-of-range arguments.
    """
    src_b, dst_b = packed_address(src, "src"), packed_address(dst, "dst")
    raw = options if isinstance(options, bytes) else encode_tcp_options(options)
    raw += bytes(-len(raw) % 4)
    if len(raw) > 40:
        raise ValueError(f"TCP options take {len(raw)} bytes, more than 40")
    flags = int(flags)
    if not 0 <= flags <= 0x1FF or not 0 <= reserved <= 7:
        raise ValueError(f"flags {flags:#x} or reserved bits {reserved} out of range")
    doff = 5 + len(raw) // 4
    seg = bytearray(doff * 4)
    pack_checked(
        TCP_HEADER,
        seg,
        0,
        src_port,
        dst_port,
        seq,
        ack,
        (doff << 4) | (reserved << 1) | (flags >> 8),
        flags & 0xFF,
        window,
        0,
        urgent,
    )
    seg[20:] = raw
    seg += payload
    if checksum is None:
        checksum = internet_checksum(seg, pseudo_header_sum(src_b, dst_b, PROTOCOL, len(seg)))
    pack_checked(_U16, seg, 16, checksum)
    return bytes(seg)
