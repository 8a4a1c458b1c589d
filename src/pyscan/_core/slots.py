"""Transmit slots: a batch of datagrams laid out in one buffer, ready for ``sendmmsg``.

A :class:`SlotBuffer` holds ``capacity`` fixed-size slots; each is a socket address
(``NAME`` bytes: a Linux ``sockaddr_in`` or ``sockaddr_in6``) followed by room for one
datagram (``DATA`` bytes). Scanners fill slots (:meth:`SlotBuffer.put`, or by writing at
:meth:`SlotBuffer.packet_offset` directly: constant header bytes they lay out once stay
there from batch to batch, which :attr:`SlotBuffer.stamp` records); the engine's
:class:`~pyscan._io.batch.SlotBatch` adds the ``iovec``/``mmsghdr`` arrays that point at
the slots and sends them in one system call. This module is pure: bytes only.
"""

from __future__ import annotations

import ipaddress
import struct

from pyscan._models import IPAddress

__all__ = ["SlotBuffer"]

# Linux's address families (the values of socket.AF_INET / AF_INET6 there).
_AF_INET = 2
_AF_INET6 = 10
_SOCKADDR_IN = struct.Struct("=HH4s8x")
_SOCKADDR_IN6 = struct.Struct("=HHI16sI")


class SlotBuffer:
    """``capacity`` slots of one IP version (see the module docstring)."""

    NAME = 32
    DATA = 1504
    SLOT = NAME + DATA

    def __init__(self, version: int, capacity: int = 256) -> None:
        if version not in (4, 6):
            raise ValueError(f"IP version must be 4 or 6, not {version!r}")
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, not {capacity!r}")
        self.version = version
        self.capacity = capacity
        self.count = 0
        #: What the slots' constant bytes were laid out for (a scanner's choice).
        self.stamp: object = None
        self.buf = bytearray(capacity * self.SLOT)
        self._lengths = [0] * capacity
        self._addr_at = 4 if version == 4 else 8
        self._addr_size = 4 if version == 4 else 16
        for i in range(capacity):
            if version == 4:
                _SOCKADDR_IN.pack_into(self.buf, i * self.SLOT, _AF_INET, 0, bytes(4))
            else:
                _SOCKADDR_IN6.pack_into(self.buf, i * self.SLOT, _AF_INET6, 0, 0, bytes(16), 0)

    @property
    def name_len(self) -> int:
        """The length of the socket addresses (16 for IPv4, 28 for IPv6)."""
        return 16 if self.version == 4 else 28

    def packet_offset(self, slot: int) -> int:
        """Where slot ``slot``'s datagram starts in :attr:`buf`."""
        return slot * self.SLOT + self.NAME

    def address_offset(self, slot: int) -> int:
        """Where slot ``slot``'s destination address bytes start in :attr:`buf`."""
        return slot * self.SLOT + self._addr_at

    def set_length(self, slot: int, length: int) -> None:
        """Set the datagram length of ``slot`` (kept until changed)."""
        if not 0 < length <= self.DATA:
            raise ValueError(f"a datagram of {length} bytes does not fit a slot")
        self._lengths[slot] = length

    def length(self, slot: int) -> int:
        """The datagram length of ``slot``."""
        return self._lengths[slot]

    def put(self, dst: IPAddress, packet: bytes) -> None:
        """Append one datagram for ``dst`` (the general path)."""
        i = self.count
        if i >= self.capacity:
            raise ValueError(f"the batch is full ({self.capacity} slots)")
        if dst.version != self.version:
            raise ValueError(f"IPv{dst.version} destination in an IPv{self.version} batch")
        self.stamp = None  # the slot no longer holds a scanner's layout
        at = self.address_offset(i)
        self.buf[at : at + self._addr_size] = dst.packed
        off = self.packet_offset(i)
        self.buf[off : off + len(packet)] = packet
        if self._lengths[i] != len(packet):
            self.set_length(i, len(packet))
        self.count = i + 1

    def slot(self, slot: int) -> tuple[IPAddress, bytes]:
        """The destination and datagram held in ``slot`` (for checks and tests)."""
        if not 0 <= slot < self.count:
            raise IndexError(f"slot {slot} is not filled ({self.count} are)")
        at = self.address_offset(slot)
        dst = ipaddress.ip_address(bytes(self.buf[at : at + self._addr_size]))
        off = self.packet_offset(slot)
        return dst, bytes(self.buf[off : off + self._lengths[slot]])
