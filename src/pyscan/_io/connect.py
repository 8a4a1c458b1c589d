"""The connect scan's IO: thousands of non-blocking connect() calls in flight.

The probe order (a permutation of hosts x ports) feeds a :class:`ConnectPump`, a thread
that starts connects and watches them with one epoll; each try gets a timeout from the
host's RTT estimate, silence is retried like a raw probe (the retry allowance grows when
retries get answers), and answers are classified by
:func:`~pyscan._scanners.connect.classify_connect`. Concurrency is bounded by the
open-file limit, which is raised to its hard limit where allowed (and lowered at once if
the process runs out of descriptors anyway).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import errno
import heapq
import resource
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from pyscan._core.rate import RateLimiter
from pyscan._core.timing import GroupTiming, HostTiming, TimingParams
from pyscan._models import IPAddress, PortResult, Reason
from pyscan._scanners.connect import classify_connect, is_final

__all__ = ["ConnectPump", "raise_nofile_limit", "run_connect_scan"]

# SO_LINGER on, 0 s: close() sends RST, so no TIME_WAIT piles up and the service sees an
# abort rather than a session.
_LINGER_RST = b"\x01\x00\x00\x00\x00\x00\x00\x00"


def raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard limit where allowed; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        want = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    return soft


class ConnectPump:
    r"""Non-blocking ``connect()`` calls on a thread of their own, watched by one epoll.

    The event loop :meth:`submit`\s jobs ``(job, address, port, timeout)`` and :meth:`kick`\s
    the thread; the thread keeps up to ``concurrency`` connections in flight and hands
    results back to the loop in batches, through ``deliver([(job, errno or None, seconds)])``
    (``0``: connected, ``None``: no answer within the timeout). Per connection this costs a
    socket, one ``connect_ex``, an epoll registration and a ``getsockopt``: no coroutine,
    future or timer handle, which is what limits an asyncio-per-connection scan.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        deliver: Callable[[list[tuple[int, int | None, float]]], None],
        concurrency: int,
        source: str | None = None,
    ) -> None:
        self._loop = loop
        self._deliver = deliver
        self.concurrency = concurrency
        self._source = source
        self._jobs: collections.deque[tuple[int, str, int, int, float]] = collections.deque()
        self._epoll = select.epoll()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._epoll.register(self._wake_r.fileno(), select.EPOLLIN)
        self._running = True
        self._thread = threading.Thread(target=self._main, name="pyscan-connect", daemon=True)
        self._thread.start()

    def submit(self, job: int, address: IPAddress, port: int, timeout: float) -> None:
        """Queue one connect (call :meth:`kick` after a batch of them)."""
        family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        self._jobs.append((job, str(address), port, family, timeout))

    def kick(self) -> None:
        """Wake the thread to start queued jobs."""
        with contextlib.suppress(BlockingIOError, OSError):
            self._wake_w.send(b"x")

    def close(self) -> None:
        """Stop the thread and close every socket it holds."""
        self._running = False
        self.kick()
        self._thread.join(5)
        self._wake_r.close()
        self._wake_w.close()

    def _start(
        self,
        inflight: dict[int, tuple[socket.socket, int, float]],
        deadlines: list[tuple[float, int, int]],
        out: list[tuple[int, int | None, float]],
    ) -> None:
        while self._jobs and len(inflight) < self.concurrency:
            job, addr, port, family, timeout = self._jobs.popleft()
            try:
                sock = socket.socket(family, socket.SOCK_STREAM)
            except OSError as exc:
                if exc.errno in (errno.EMFILE, errno.ENFILE) and inflight:
                    # out of descriptors: wait for some to free, and keep fewer in flight
                    self._jobs.appendleft((job, addr, port, family, timeout))
                    self.concurrency = max(16, len(inflight))
                    return
                out.append((job, exc.errno or errno.EIO, 0.0))
                continue
            started = time.monotonic()
            try:
                sock.setblocking(False)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                if self._source is not None:
                    sock.bind((self._source, 0))
                err = sock.connect_ex((addr, port))
            except OSError as exc:
                err = exc.errno or errno.EIO
            if err in (errno.EINPROGRESS, errno.EALREADY):
                fd = sock.fileno()
                self._epoll.register(fd, select.EPOLLOUT)
                inflight[fd] = (sock, job, started)
                heapq.heappush(deadlines, (started + timeout, fd, job))
            else:
                sock.close()
                out.append((job, err, time.monotonic() - started))

    def _main(self) -> None:
        inflight: dict[int, tuple[socket.socket, int, float]] = {}
        deadlines: list[tuple[float, int, int]] = []
        wake_fd = self._wake_r.fileno()
        try:
            while self._running:
                out: list[tuple[int, int | None, float]] = []
                self._start(inflight, deadlines, out)
                now = time.monotonic()
                wait = deadlines[0][0] - now if deadlines else 1.0
                if out:
                    wait = 0.0
                for fd, _event in self._epoll.poll(max(0.0, min(wait, 1.0)), 1024):
                    if fd == wake_fd:
                        with contextlib.suppress(BlockingIOError, OSError):
                            self._wake_r.recv(4096)
                        continue
                    entry = inflight.pop(fd, None)
                    if entry is None:
                        continue
                    sock, job, started = entry
                    self._epoll.unregister(fd)
                    err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    sock.close()
                    out.append((job, err, time.monotonic() - started))
                now = time.monotonic()
                while deadlines and deadlines[0][0] <= now:
                    _, fd, job = heapq.heappop(deadlines)
                    entry = inflight.get(fd)
                    if entry is None or entry[1] != job:
                        continue  # answered already (the fd may have been reused)
                    del inflight[fd]
                    self._epoll.unregister(fd)
                    entry[0].close()
                    out.append((job, None, now - entry[2]))
                if out:
                    self._loop.call_soon_threadsafe(self._deliver, out)
        except RuntimeError:
            pass  # the loop closed under us: the scan is gone
        finally:
            for sock, _job, _started in inflight.values():
                sock.close()
            self._epoll.close()


async def run_connect_scan(
    hosts: Sequence[IPAddress],
    ports: Sequence[int],
    order: Iterator[int],
    *,
    timing: TimingParams,
    concurrency: int,
    emit: Callable[[PortResult], None],
    source: str | None = None,
    rate: RateLimiter | None = None,
) -> list[PortResult]:
    """Connect-scan ``hosts x ports`` in the given probe order; return every result.

    The connects run on a :class:`ConnectPump`; timing, retries and results stay here. A
    timed-out try is retried while the host's retry allowance lasts (with at least 1 s, so
    the kernel can resend a lost SYN once). ``rate`` (``--max-rate``) paces the attempts,
    retries included.
    """
    loop = asyncio.get_running_loop()
    limit = raise_nofile_limit()
    concurrency = max(1, min(concurrency, limit - 64))
    group = GroupTiming(timing)
    host_timing: dict[int, HostTiming] = {}
    results: list[PortResult] = []
    per_host = len(ports)
    jobs: dict[int, tuple[int, int]] = {}  # job -> (probe index, try)
    retries: collections.deque[tuple[int, int]] = collections.deque()
    next_job = 0
    exhausted = False
    finished = asyncio.Event()
    paced: asyncio.TimerHandle | None = None

    def host_of(index: int) -> HostTiming:
        host = index // per_host
        ht = host_timing.get(host)
        if ht is None:
            ht = host_timing[host] = group.new_host(loop.time())
        return ht

    def feed() -> None:
        nonlocal next_job, exhausted, paced
        paced = None
        submitted = False
        while len(jobs) < 2 * concurrency:
            if rate is not None:
                now = loop.time()
                if not rate.may_send(now):
                    wake = rate.next_time(now)
                    paced = loop.call_at(wake if wake is not None else now + 0.001, feed)
                    break
            if retries:
                index, tryno = retries.popleft()
            elif not exhausted:
                fresh = next(order, None)
                if fresh is None:
                    exhausted = True
                    continue
                index, tryno = fresh, 0
            else:
                break
            if rate is not None:
                rate.on_send(loop.time())
            ht = host_of(index)
            timeout = ht.probe_timeout if tryno == 0 else max(1.0, ht.probe_timeout * 2)
            host, k = divmod(index, per_host)
            jobs[next_job] = (index, tryno)
            pump.submit(next_job, hosts[host], ports[k], timeout)
            next_job += 1
            submitted = True
        if submitted:
            pump.kick()
        if exhausted and not jobs and not retries:
            finished.set()

    def deliver(batch: list[tuple[int, int | None, float]]) -> None:
        now = loop.time()
        for job, err, took in batch:
            found = jobs.pop(job, None)
            if found is None:
                continue
            index, tryno = found
            ht = host_of(index)
            if is_final(err):
                ht.on_answer(now, tryno=tryno, rtt_sample=took if tryno == 0 else None)
            elif ht.may_retransmit(tryno) and not ht.timed_out(now):
                retries.append((index, tryno + 1))
                continue
            host, k = divmod(index, per_host)
            state, kind = classify_connect(err)
            result = PortResult(hosts[host], "tcp", ports[k], state, Reason(kind))
            results.append(result)
            emit(result)
        if paced is None:
            feed()

    pump = ConnectPump(loop, deliver, concurrency, source)
    try:
        feed()
        await finished.wait()
    finally:
        if paced is not None:
            paced.cancel()
        await asyncio.to_thread(pump.close)
    return results
