"""Batched transmit: many datagrams in one ``sendmmsg(2)`` call, through ctypes.

A batch packs every packet into one buffer, one ``sockaddr`` per packet into another, and
the ``iovec`` and ``mmsghdr`` arrays with precompiled structs, so the per-packet cost is a
few ``pack_into`` calls instead of a Python-level ``sendto`` each. Where ``sendmmsg`` is
missing (not Linux, no libc symbol) :func:`sendmmsg_available` is False and the engine sends
one packet at a time.
"""

from __future__ import annotations

import collections
import ctypes
import ctypes.util
import errno
import queue
import socket
import struct
import threading
import time
from collections.abc import Callable, Sequence

from pyscan._core.slots import SlotBuffer
from pyscan._models import IPAddress

__all__ = [
    "BatchReceiver",
    "BatchSender",
    "SlotBatch",
    "SlotPool",
    "TransmitThread",
    "sendmmsg_available",
]

# struct mmsghdr on 64-bit Linux: msghdr (56 bytes) + msg_len (4) + padding (4).
_MMSGHDR = struct.Struct("=QI4xQQQQi4xI4x")
_IOVEC = struct.Struct("=QQ")
_SOCKADDR_IN = struct.Struct("=HH4s8x")
_SOCKADDR_IN6 = struct.Struct("=HHI16sI")

_libc: ctypes.CDLL | None
try:
    _libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    _sendmmsg = _libc.sendmmsg
    _sendmmsg.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int]
    _sendmmsg.restype = ctypes.c_int
    _recvmmsg = _libc.recvmmsg
    _recvmmsg.argtypes = [
        ctypes.c_int,
        ctypes.c_void_p,
        ctypes.c_uint,
        ctypes.c_int,
        ctypes.c_void_p,
    ]
    _recvmmsg.restype = ctypes.c_int
except (OSError, AttributeError):  # pragma: no cover - non-Linux
    _libc = None

_MSG_DONTWAIT = 0x40
_U64 = struct.Struct("=Q")


def sendmmsg_available() -> bool:
    """Whether this platform's libc has sendmmsg and pointers are 64 bits wide."""
    return _libc is not None and ctypes.sizeof(ctypes.c_void_p) == 8


def _address(buf: bytearray) -> int:
    return ctypes.addressof((ctypes.c_char * len(buf)).from_buffer(buf))


class BatchSender:
    """Sends lists of ``(destination, datagram)`` on one raw socket with sendmmsg."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._names: dict[IPAddress, bytes] = {}
        self.family = sock.family

    def _sockaddr(self, dst: IPAddress) -> bytes:
        name = self._names.get(dst)
        if name is None:
            if dst.version == 4:
                name = _SOCKADDR_IN.pack(socket.AF_INET, 0, dst.packed)
            else:
                name = _SOCKADDR_IN6.pack(socket.AF_INET6, 0, 0, dst.packed, 0)
            if len(self._names) > 65536:
                self._names.clear()
            self._names[dst] = name
        return name

    def send(self, packets: Sequence[tuple[IPAddress, bytes]]) -> tuple[int, int]:
        """Send as many of ``packets`` as the socket takes now.

        Returns ``(sent, error)``: the number sent from the front of the list, and the errno
        that stopped the batch (0 if all went; EAGAIN/ENOBUFS when the buffer is full).
        """
        count = len(packets)
        if not count:
            return 0, 0
        data = bytearray(b"".join(p for _, p in packets))
        names = bytearray(b"".join(self._sockaddr(d) for d, _ in packets))
        name_len = 16 if self.family == socket.AF_INET else 28
        iovs = bytearray(_IOVEC.size * count)
        msgs = bytearray(_MMSGHDR.size * count)
        data_at, names_at, iovs_at = _address(data), _address(names), _address(iovs)
        offset = 0
        for i, (_, packet) in enumerate(packets):
            _IOVEC.pack_into(iovs, i * _IOVEC.size, data_at + offset, len(packet))
            _MMSGHDR.pack_into(
                msgs,
                i * _MMSGHDR.size,
                names_at + i * name_len,
                name_len,
                iovs_at + i * _IOVEC.size,
                1,
                0,
                0,
                0,
                0,
            )
            offset += len(packet)
        sent_total = 0
        msgs_at = _address(msgs)
        while sent_total < count:
            n = _sendmmsg(
                self.sock.fileno(),
                msgs_at + sent_total * _MMSGHDR.size,
                count - sent_total,
                0,
            )
            if n < 0:
                err = ctypes.get_errno()
                if err == errno.EINTR:
                    continue
                return sent_total, err
            sent_total += n
        return sent_total, 0


class SlotBatch(SlotBuffer):
    """A :class:`~pyscan._core.slots.SlotBuffer` that ``sendmmsg`` sends: the ``iovec``
    and ``mmsghdr`` arrays pointing at its slots are built once, so a batch costs one
    system call and nothing is allocated per packet."""

    def __init__(self, family: int, capacity: int = 256) -> None:
        super().__init__(4 if family == socket.AF_INET else 6, capacity)
        self.family = family
        self._iovs = bytearray(_IOVEC.size * capacity)
        self._msgs = bytearray(_MMSGHDR.size * capacity)
        base, iovs_at = _address(self.buf), _address(self._iovs)
        self.msgs_at = _address(self._msgs)
        for i in range(capacity):
            _IOVEC.pack_into(self._iovs, i * _IOVEC.size, base + self.packet_offset(i), 0)
            _MMSGHDR.pack_into(
                self._msgs,
                i * _MMSGHDR.size,
                base + i * self.SLOT,
                self.name_len,
                iovs_at + i * _IOVEC.size,
                1,
                0,
                0,
                0,
                0,
            )

    def set_length(self, slot: int, length: int) -> None:
        """Set the datagram length of ``slot`` (kept until changed)."""
        super().set_length(slot, length)
        _U64.pack_into(self._iovs, slot * _IOVEC.size + 8, length)

    def send(self, fd: int, start: int) -> tuple[int, int]:
        """``sendmmsg`` slots ``start..count``; returns ``(sent, errno or 0)``."""
        n = _sendmmsg(fd, self.msgs_at + start * _MMSGHDR.size, self.count - start, 0)
        if n < 0:
            return 0, ctypes.get_errno()
        return n, 0


class SlotPool:
    """Free :class:`SlotBatch` es of one family, shared by the loop (takes) and the transmit
    thread (gives back). ``deque`` appends and pops are atomic, so no lock is needed."""

    def __init__(self, family: int, batches: int = 8, capacity: int = 256) -> None:
        self.family = family
        self._free = collections.deque(SlotBatch(family, capacity) for _ in range(batches))

    def take(self) -> SlotBatch | None:
        """A free batch (emptied), or None when all are queued for sending."""
        try:
            batch = self._free.popleft()
        except IndexError:
            return None
        batch.count = 0
        return batch

    def give(self, batch: SlotBatch) -> None:
        """Return a batch after sending it (or unused)."""
        self._free.append(batch)


class BatchReceiver:
    """Reads up to ``capacity`` datagrams per ``recvmmsg(2)`` call into one buffer of fixed
    slots (``slot`` bytes each: longer datagrams are truncated, which keeps their headers)."""

    def __init__(self, capacity: int = 256, slot: int = 2048) -> None:
        self.capacity = capacity
        self.slot = slot
        self._buf = bytearray(capacity * slot)
        self._view = memoryview(self._buf)
        self._iovs = bytearray(_IOVEC.size * capacity)
        self._msgs = bytearray(_MMSGHDR.size * capacity)
        base, iovs_at = _address(self._buf), _address(self._iovs)
        for i in range(capacity):
            _IOVEC.pack_into(self._iovs, i * _IOVEC.size, base + i * slot, slot)
            _MMSGHDR.pack_into(
                self._msgs, i * _MMSGHDR.size, 0, 0, iovs_at + i * _IOVEC.size, 1, 0, 0, 0, 0
            )
        self._msgs_at = _address(self._msgs)
        # msg_len is the 15th 32-bit word of each 64-byte mmsghdr
        self._words = memoryview(self._msgs).cast("I")

    def receive(self, fd: int) -> list[bytes] | int:
        """The datagrams waiting on ``fd`` (at most ``capacity``), or an errno (EAGAIN when
        none is waiting)."""
        n = _recvmmsg(fd, self._msgs_at, self.capacity, _MSG_DONTWAIT, None)
        if n < 0:
            return ctypes.get_errno()
        view, words, slot = self._view, self._words, self.slot
        return [bytes(view[i * slot : i * slot + words[14 + 16 * i]]) for i in range(n)]


class TransmitThread:
    """Sends batches from a queue on its own thread, so the kernel's share of sending (which
    on a veth path includes the receiver's processing) overlaps the event loop's work:
    ``sendmmsg`` releases the GIL. The thread owns blocking raw sockets of its own; the loop
    only queues batches (:meth:`submit`) and never waits for them.
    """

    def __init__(self, open_socket: Callable[[int], socket.socket]) -> None:
        self._open = open_socket
        self._queue: queue.SimpleQueue[
            list[tuple[IPAddress, bytes]] | tuple[SlotBatch, SlotPool] | None
        ] = queue.SimpleQueue()
        self._senders: dict[int, BatchSender] = {}
        self.sent = 0
        self.errors = 0
        self.queued = 0
        self._thread = threading.Thread(target=self._main, name="pyscan-tx", daemon=True)
        self._thread.start()

    @property
    def backlog(self) -> int:
        """Packets queued and not yet sent."""
        return self.queued - self.sent - self.errors

    def submit(self, items: list[tuple[IPAddress, bytes]]) -> None:
        """Queue packets to send (returns at once)."""
        self.queued += len(items)
        self._queue.put(items)

    def submit_slots(self, batch: SlotBatch, pool: SlotPool) -> None:
        """Queue a filled slot batch; it goes back to ``pool`` once sent."""
        self.queued += batch.count
        self._queue.put((batch, pool))

    def _sender(self, version: int) -> BatchSender:
        sender = self._senders.get(version)
        if sender is None:
            sender = self._senders[version] = BatchSender(self._open(version))
        return sender

    def _send_slots(self, batch: SlotBatch, pool: SlotPool) -> None:
        fd = self._sender(4 if batch.family == socket.AF_INET else 6).sock.fileno()
        done = 0
        try:
            while done < batch.count:
                n, err = batch.send(fd, done)
                done += n
                self.sent += n
                if err in (errno.EAGAIN, errno.ENOBUFS, errno.EWOULDBLOCK, errno.EINTR):
                    if err != errno.EINTR:
                        time.sleep(0.0005)
                elif err:
                    self.errors += 1  # refused (EPERM, unreachable): the probe is lost
                    done += 1
        finally:
            pool.give(batch)

    def _main(self) -> None:
        while True:
            items = self._queue.get()
            if items is None:
                break
            if isinstance(items, tuple):
                self._send_slots(*items)
                continue
            for version in (4, 6):
                group = [item for item in items if item[0].version == version]
                done = 0
                while done < len(group):
                    n, err = self._sender(version).send(group[done:] if done else group)
                    done += n
                    self.sent += n
                    if err in (errno.EAGAIN, errno.ENOBUFS, errno.EWOULDBLOCK):
                        time.sleep(0.0005)
                    elif err:
                        self.errors += 1  # refused (EPERM, unreachable): the probe is lost
                        done += 1

    def close(self, timeout: float = 2.0) -> None:
        """Stop after the queued batches; close the sockets."""
        self._queue.put(None)
        self._thread.join(timeout)
        for sender in self._senders.values():
            sender.sock.close()
        self._senders.clear()
