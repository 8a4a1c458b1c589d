"""The raw-socket engine: one per event loop, shared by every raw scan running in it.

How this works
--------------
The engine owns the raw sockets: one IPv4 send socket (``IPPROTO_RAW``: we write the IP
header), IPv4 receive sockets per protocol a scan needs (TCP, UDP, ICMP: the kernel hands
each a copy of every incoming packet of that protocol, IP header included), and for IPv6
an ``AF_PACKET`` receive socket (raw IPv6 sockets strip the header we need) and an
``IPPROTO_RAW`` send socket. Receive sockets are registered with the loop as readers; a
reader drains its socket, parses each packet once and hands it to the scan that owns its
flow key (:class:`~pyscan._core.demux.Demultiplexer`), then wakes that scan.

Each scan runs :meth:`RawEngine.run`: poll the pure scanner for probes to send, build them
and hand the batch to the transmit thread (:mod:`pyscan._io.batch`: one ``sendmmsg`` per
batch, on its own thread so the kernel's share of sending overlaps the loop; where
``sendmmsg`` is missing, each packet is sent from the loop), then sleep until the
scanner's next deadline or until a packet for it arrives. Nothing in the loop blocks: its
own sends are non-blocking, a full socket buffer only makes the scan wait a little, and a
long transmit backlog makes it wait for the thread. The last scan to leave closes every
socket and stops the thread (also on error and on cancellation).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import errno
import logging
import socket
import struct
from collections.abc import Iterable
from typing import Any

from pyscan._core.demux import Demultiplexer, FlowKey
from pyscan._core.probescan import ProbeScanner
from pyscan._io.batch import (
    BatchReceiver,
    SlotPool,
    TransmitThread,
    sendmmsg_available,
)
from pyscan._io.netutil import require_raw
from pyscan._models import IPAddress
from pyscan._wire.bpf import MAX_RANGES, port_filter, port_ranges
from pyscan.errors import ScanError

__all__ = ["RawEngine"]

log = logging.getLogger("pyscan.engine")

_BATCH = 256  # probes handed out per poll before yielding to the loop
_TX_BACKLOG = 4 * _BATCH  # packets queued for the transmit thread before the loop waits
_READ_BURST = 1024  # packets read per readable callback before yielding
_SO_ATTACH_FILTER = 26  # Linux
_SO_DETACH_FILTER = 27
_SOCK_FPROG = struct.Struct("=H6xQ")  # struct sock_fprog { u16 len; sock_filter *filter; }
_SO_MEMINFO = 55  # Linux: u32[SK_MEMINFO_VARS] socket memory counters
_MEMINFO = struct.Struct("=9I")
_SK_MEMINFO_DROPS = 8
_POOL_BATCHES = 4  # slot batches per address family: at most this many queued for the thread
_ETH_P_IPV6 = 0x86DD
_PACKET_OUTGOING = 4
_IPV6_HDRINCL = 36

_engines: dict[asyncio.AbstractEventLoop, RawEngine] = {}


class RawEngine:
    """Raw sockets, the demultiplexer and the scan loop (see the module docstring)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.demux: Demultiplexer[ProbeScanner[Any]] = Demultiplexer()
        self._send4: socket.socket | None = None
        self._send6: socket.socket | None = None
        self._recv: dict[tuple[int, int], socket.socket] = {}
        self._wakes: dict[ProbeScanner[Any], asyncio.Event] = {}
        self._tx: TransmitThread | None = None
        self.batching = sendmmsg_available()
        self._pools: dict[int, SlotPool] = {}
        self._rx = BatchReceiver() if self.batching else None
        self._users = 0
        self._loop_sent = 0
        self.packets_received = 0
        self.send_errors = 0
        #: Packets the kernel dropped from the receive sockets (buffers full).
        self.kernel_drops = 0
        self._drops_seen: dict[int, int] = {}

    # -- lifetime ------------------------------------------------------------------------

    @classmethod
    @contextlib.asynccontextmanager
    async def acquire(cls, what: str = "this scan") -> Any:
        """The running loop's engine, created on first use and closed after its last user."""
        require_raw(what)
        loop = asyncio.get_running_loop()
        engine = _engines.get(loop)
        if engine is None:
            engine = _engines[loop] = cls(loop)
        engine._users += 1
        try:
            yield engine
        finally:
            engine._users -= 1
            if engine._users == 0:
                engine.close()
                if _engines.get(loop) is engine:
                    del _engines[loop]

    def close(self) -> None:
        """Unregister readers and close every socket."""
        for sock in self._recv.values():
            with contextlib.suppress(Exception):
                self.loop.remove_reader(sock.fileno())
            sock.close()
        self._recv.clear()
        self._drops_seen.clear()
        for s in (self._send4, self._send6):
            if s is not None:
                s.close()
        self._send4 = self._send6 = None
        if self._tx is not None:
            self._tx.close()
            self._tx = None

    @property
    def packets_sent(self) -> int:
        """Packets handed to the kernel so far (by the loop and the transmit thread)."""
        return self._loop_sent + (self._tx.sent if self._tx is not None else 0)

    @property
    def open_sockets(self) -> int:
        """How many sockets the engine holds (0 once closed)."""
        return (
            len(self._recv)
            + (self._send4 is not None)
            + (self._send6 is not None)
            + (self._tx is not None)
        )

    # -- sockets -------------------------------------------------------------------------

    def _open(self, family: int, kind: int, proto: int) -> socket.socket:
        try:
            sock = socket.socket(family, kind, proto)
        except PermissionError as exc:
            require_raw("raw scanning")
            raise ScanError(f"cannot open raw socket: {exc}") from exc
        except OSError as exc:
            raise ScanError(f"cannot open raw socket: {exc.strerror or exc}") from exc
        sock.setblocking(False)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        return sock

    def _listen(self, version: int, proto: int) -> None:
        key = (version, proto if version == 4 else 0)
        if key in self._recv:
            return
        if version == 4:
            sock = self._open(socket.AF_INET, socket.SOCK_RAW, proto)
        else:
            sock = self._open(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_IPV6))
        self._recv[key] = sock
        self.loop.add_reader(sock.fileno(), self._readable, sock, version == 6)

    def _refilter(self) -> None:
        """Give the IPv4 TCP and UDP receive sockets a kernel filter keeping only packets
        to the source ports the running scans registered (:mod:`pyscan._wire.bpf`); with
        too many port ranges, or where the kernel refuses, the socket keeps every packet
        and the demultiplexer drops what is not ours."""
        for (version, proto), sock in self._recv.items():
            if version != 4 or proto not in (6, 17):
                continue
            ranges = port_ranges(self.demux.ports("tcp" if proto == 6 else "udp"))
            try:
                if len(ranges) > MAX_RANGES:
                    sock.setsockopt(socket.SOL_SOCKET, _SO_DETACH_FILTER, 0)
                    continue
                program = port_filter(ranges)
                code = ctypes.create_string_buffer(program, len(program))
                prog = _SOCK_FPROG.pack(len(program) // 8, ctypes.addressof(code))
                sock.setsockopt(socket.SOL_SOCKET, _SO_ATTACH_FILTER, prog)
            except OSError as exc:  # no filter: every packet reaches the demultiplexer
                log.debug("cannot attach a receive filter: %s", exc)

    def _sender(self, version: int) -> socket.socket:
        if version == 4:
            if self._send4 is None:
                self._send4 = self._open(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
            return self._send4
        if self._send6 is None:
            s = self._open(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
            with contextlib.suppress(OSError):
                s.setsockopt(socket.IPPROTO_IPV6, _IPV6_HDRINCL, 1)
            self._send6 = s
        return self._send6

    # -- receive path --------------------------------------------------------------------

    def _readable(self, sock: socket.socket, packet_socket: bool) -> None:
        now = self.loop.time()
        if self._rx is not None and not packet_socket:
            self._readable_batched(sock, now)
            return
        woken: set[ProbeScanner[Any]] = set()
        for _ in range(_READ_BURST):
            try:
                if packet_socket:
                    data, addr = sock.recvfrom(65535)
                    if addr[2] == _PACKET_OUTGOING:
                        continue
                else:
                    data = sock.recv(65535)
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:
                log.debug("receive error: %s", exc)
                break
            self.packets_received += 1
            owner = self.demux.owner_raw(data)
            if owner is not None and owner.receive_bytes(data, now):
                woken.add(owner)
        self._check_drops(sock, now)
        self._wake_owners(woken)

    def _readable_batched(self, sock: socket.socket, now: float) -> None:
        """Drain an IPv4 raw socket with ``recvmmsg`` and hand each scan its packets as one
        burst (:meth:`ProbeScanner.receive_many`)."""
        assert self._rx is not None
        fd = sock.fileno()
        route_many = self.demux.route_many
        woken: set[ProbeScanner[Any]] = set()
        got = 0
        while got < _READ_BURST:
            datas = self._rx.receive(fd)
            if isinstance(datas, int):
                if datas not in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EINTR):
                    log.debug("receive error: %s", errno.errorcode.get(datas, datas))
                break
            got += len(datas)
            for owner, burst in route_many(datas).items():
                if owner.receive_many(burst, now):
                    woken.add(owner)
            if len(datas) < self._rx.capacity:
                break
        self.packets_received += got
        self._check_drops(sock, now)
        self._wake_owners(woken)

    def _check_drops(self, sock: socket.socket, now: float) -> None:
        """Tell the running scans when the kernel dropped packets queued on ``sock`` (its
        receive buffer overflowed: ``SO_MEMINFO``'s drop counter rose)."""
        try:
            info = sock.getsockopt(socket.SOL_SOCKET, _SO_MEMINFO, _MEMINFO.size)
        except OSError:
            return
        drops = _MEMINFO.unpack(info)[_SK_MEMINFO_DROPS]
        seen = self._drops_seen.get(sock.fileno(), 0)
        if drops > seen:
            self._drops_seen[sock.fileno()] = drops
            self.kernel_drops += drops - seen
            for scanner in self._wakes:
                scanner.on_local_drops(drops - seen, now)

    def _wake_owners(self, woken: set[ProbeScanner[Any]]) -> None:
        for owner in woken:
            wake = self._wakes.get(owner)
            if wake is not None:
                wake.set()

    # -- send path -----------------------------------------------------------------------

    def _send_now(self, dst: IPAddress, data: bytes) -> bool:
        """Send without waiting; False when the socket buffer is full (then use _send)."""
        sock = self._sender(dst.version)
        addr: tuple[Any, ...] = (str(dst), 0) if dst.version == 4 else (str(dst), 0, 0, 0)
        try:
            sock.sendto(data, addr)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError as exc:
            if exc.errno == errno.ENOBUFS:
                return False
            self.send_errors += 1
            log.debug("send to %s failed: %s", dst, exc)
            return True
        self._loop_sent += 1
        return True

    def _blocking_sender(self, version: int) -> socket.socket:
        """A blocking raw send socket for the transmit thread."""
        family = socket.AF_INET if version == 4 else socket.AF_INET6
        sock = socket.socket(family, socket.SOCK_RAW, socket.IPPROTO_RAW)
        if version == 6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, _IPV6_HDRINCL, 1)
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
        return sock

    async def _flush(self, limit: float = 2.0) -> None:
        """Wait (briefly) until the transmit thread has sent everything queued, so the
        counters are final when a scan returns."""
        deadline = self.loop.time() + limit
        while self._tx is not None and self._tx.backlog > 0 and self.loop.time() < deadline:
            await asyncio.sleep(0.0005)

    async def _submit(self, items: list[tuple[IPAddress, bytes]]) -> None:
        """Queue a batch for the transmit thread, waiting while its backlog is long."""
        if self._tx is None:
            self._sender(items[0][0].version)  # fail early (privilege) on the loop
            self._tx = TransmitThread(self._blocking_sender)
        while self._tx.backlog > _TX_BACKLOG:
            await asyncio.sleep(0.0005)
        self._tx.submit(items)

    async def _submit_slots(
        self, scanner: ProbeScanner[Any], items: list[tuple[int, int]], family: int
    ) -> None:
        """Build ``items`` into a free slot batch and queue it for the transmit thread,
        waiting while every batch of the pool is queued (the thread's backlog)."""
        if self._tx is None:
            self._sender(4 if family == socket.AF_INET else 6)  # fail early (privilege)
            self._tx = TransmitThread(self._blocking_sender)
        pool = self._pools.get(family)
        if pool is None:
            pool = self._pools[family] = SlotPool(family, _POOL_BATCHES, _BATCH)
        while True:
            batch = pool.take()
            if batch is not None:
                break
            await asyncio.sleep(0.0005)
        try:
            scanner.build_batch(items, batch)
        except BaseException:
            pool.give(batch)
            raise
        self._tx.submit_slots(batch, pool)

    async def _send(self, dst: IPAddress, data: bytes) -> None:
        sock = self._sender(dst.version)
        addr: tuple[Any, ...] = (str(dst), 0) if dst.version == 4 else (str(dst), 0, 0, 0)
        for _ in range(200):
            try:
                sock.sendto(data, addr)
            except (BlockingIOError, InterruptedError):
                await asyncio.sleep(0.001)
                continue
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:
                    await asyncio.sleep(0.001)
                    continue
                # EPERM (a local firewall), ENETUNREACH, EHOSTUNREACH: the probe is lost;
                # the scanner will see silence and decide as nmap does.
                self.send_errors += 1
                log.debug("send to %s failed: %s", dst, exc)
                return
            self._loop_sent += 1
            return
        self.send_errors += 1

    # -- a scan --------------------------------------------------------------------------

    async def run(
        self, scanner: ProbeScanner[Any], keys: Iterable[FlowKey], versions: Iterable[int]
    ) -> None:
        """Drive ``scanner`` to completion, routing packets with ``keys`` to it."""
        versions = set(versions)
        for version in versions:
            for proto in scanner.protocols:
                if version == 4 and proto != 58:
                    self._listen(4, proto)
                elif version == 6 and proto != 1:
                    self._listen(6, 0)
        wake = asyncio.Event()
        self._wakes[scanner] = wake
        registered: list[FlowKey] = []
        try:
            for key in keys:
                self.demux.register(key, scanner)
                registered.append(key)
            self._refilter()
            await self._drive(scanner, wake, versions)
            await self._flush()
        finally:
            self.demux.unregister(scanner)
            self._wakes.pop(scanner, None)
            self._refilter()

    async def _drive(
        self, scanner: ProbeScanner[Any], wake: asyncio.Event, versions: set[int]
    ) -> None:
        loop = self.loop
        single_family = len(versions) == 1
        family = socket.AF_INET6 if 6 in versions else socket.AF_INET
        while not scanner.done:
            now = loop.time()
            batch = scanner.poll(now, _BATCH)
            if self.batching and len(batch) > 1 and single_family:
                await self._submit_slots(scanner, batch, family)
            elif self.batching and len(batch) > 1:
                await self._submit([scanner.build(index, tryno) for index, tryno in batch])
            else:
                for index, tryno in batch:
                    dst, data = scanner.build(index, tryno)
                    if not self._send_now(dst, data):
                        await self._send(dst, data)
            if scanner.done:
                break
            if len(batch) == _BATCH:
                await asyncio.sleep(0)  # let the readers run, then send more
                continue
            deadline = scanner.next_deadline()
            timeout = 1.0 if deadline is None else max(0.0, deadline - loop.time())
            if timeout <= 0:
                await asyncio.sleep(0)
                continue
            wake.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await wake.wait()
