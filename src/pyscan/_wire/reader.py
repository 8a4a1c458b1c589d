"""A bounds-checked reader over a memoryview, and the address helpers every codec shares.

Every codec reads through :class:`Reader` (or checks lengths itself before one
``struct.unpack_from``), so malformed input surfaces as :class:`~pyscan.errors.PacketError`
naming the layer and the absolute byte offset in the buffer the caller gave, never as
``IndexError`` or ``struct.error``.
"""

from __future__ import annotations

import ipaddress
import struct
from typing import TypeAlias

from pyscan.errors import PacketError

__all__ = ["Address", "Buffer", "Reader", "pack_checked", "packed_address"]

Buffer: TypeAlias = bytes | bytearray | memoryview
"""Anything the parsers accept: a bytes-like object holding the packet."""

Address: TypeAlias = bytes | ipaddress.IPv4Address | ipaddress.IPv6Address
"""An address for the builders: 4 or 16 packed bytes, or an ``ipaddress`` object."""


def packed_address(addr: Address, what: str = "address") -> bytes:
    """Return ``addr`` as 4 or 16 packed bytes; raise ``ValueError`` for anything else."""
    if isinstance(addr, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return addr.packed
    if isinstance(addr, bytes | bytearray | memoryview):
        raw = bytes(addr)
        if len(raw) in (4, 16):
            return raw
    raise ValueError(f"{what} must be 4 or 16 packed bytes or an ip address, not {addr!r}")


class Reader:
    """Sequential bounds-checked reads from ``data[start:end]`` for one protocol layer.

    ``pos`` is an absolute offset into ``data``; errors report it.
    """

    __slots__ = ("_mv", "end", "layer", "pos")

    def __init__(self, data: Buffer, layer: str, start: int = 0, end: int | None = None) -> None:
        self._mv = data if isinstance(data, memoryview) else memoryview(data)
        self.layer = layer
        self.pos = start
        self.end = len(self._mv) if end is None else end

    @property
    def remaining(self) -> int:
        """Bytes left before ``end``."""
        return self.end - self.pos

    def error(self, reason: str, offset: int | None = None) -> PacketError:
        """A :class:`PacketError` for this layer at ``offset`` (default: the current position)."""
        return PacketError(self.layer, self.pos if offset is None else offset, reason)

    def need(self, n: int, what: str) -> None:
        """Raise unless ``n`` more bytes are available; ``what`` names what was expected."""
        if self.end - self.pos < n:
            raise self.error(
                f"truncated {what}: need {n} bytes, have {max(self.end - self.pos, 0)}"
            )

    def unpack(self, st: struct.Struct, what: str) -> tuple[int, ...]:
        """Unpack ``st`` at the current position and advance past it."""
        self.need(st.size, what)
        values = st.unpack_from(self._mv, self.pos)
        self.pos += st.size
        return values

    def u8(self, what: str) -> int:
        """Read one byte."""
        self.need(1, what)
        value = self._mv[self.pos]
        self.pos += 1
        return value

    def take(self, n: int, what: str) -> bytes:
        """Read ``n`` bytes as ``bytes``."""
        self.need(n, what)
        value = self._mv[self.pos : self.pos + n].tobytes()
        self.pos += n
        return value

    def rest(self) -> bytes:
        """Read everything up to ``end``."""
        value = self._mv[self.pos : self.end].tobytes()
        self.pos = self.end
        return value


def pack_checked(st: struct.Struct, buf: bytearray, offset: int, *values: object) -> None:
    """``st.pack_into`` for builders: out-of-range arguments raise ``ValueError``."""
    try:
        st.pack_into(buf, offset, *values)
    except struct.error as exc:
        raise ValueError(f"field out of range for {st.format!r}: {exc}") from exc
