"""The connect scan's IO: non-blocking connect() calls driven from the event loop's thread.

The probe order (a permutation of hosts x ports) feeds a :class:`ConnectScan`, which starts
connects in bursts of :data:`BURST` from a loop callback. Per try:

* **Fast path.** A non-blocking ``connect()`` to a host on this machine or in a local
  network namespace (loopback, veth) is decided before the call returns: the SYN and the
  answer are processed by the kernel within the call, but the socket is locked by the call
  until it returns ``EINPROGRESS``. So the connect is asked once more at once: ``0`` (open),
  an errno (``ECONNREFUSED``: closed) or ``EALREADY`` (still in progress: the slow path).
  A refused socket is back to unconnected and is reused for the next connect, so a closed
  port costs two ``connect()`` calls and nothing else: no socket, close, epoll or timer.
  When nobody takes the results one by one (``emit`` is ``None``), a closed port is even
  noted as its probe index only, and its :class:`PortResult` made with the others at the
  end: made between two ``connect()`` calls, each costs about twice as much (the kernel's
  work in between leaves the caches cold).
* **Slow path.** A connect still in progress is watched by one epoll (itself a loop reader),
  with a timeout from the host's RTT estimate; silence is retried like a raw probe (the
  retry allowance grows when retries get answers), and answers are classified by
  :func:`~pyscan._scanners.connect.classify_connect`.

**A second thread** (where the process may use more than one CPU). A fast-path connect
is mostly kernel work (the SYN, the target's answer and the socket's state change all
happen within the call), and ``connect()`` releases the GIL. So on a scan of at least
:data:`HELPER_MIN` probes a helper thread takes every other burst of fresh probes: its
connects run while the loop's thread runs its own (on a 2-core lab a bare loop of 65,535
connects takes 0.37-0.45 s on two threads against 0.59-0.71 s on one). The helper only
connects and notes what each call returned; every decision, result, timer and socket on
the slow path stays with the loop's thread, which takes a finished burst as a loop
callback (``call_soon_threadsafe``). The helper starts nothing when the loop's thread has
no room, and hands back the rest of its burst unstarted once it has used its share of the
room, or when a socket cannot be made.
It is given bursts only while most connects are refused within the call (far targets'
connects stay in progress, and a second thread gains nothing there).

``concurrency`` bounds the connects in progress on the slow path (a fast-path connect is
decided before the next one starts). It is bounded by the open-file limit, which is raised to
its hard limit where allowed (and lowered at once if the process runs out of descriptors
anyway). An open port's socket is closed with ``SO_LINGER`` 0: an RST, so no TIME_WAIT piles
up and the service sees an abort rather than a session. Apart from the helper's connect
calls, everything runs on the loop's thread: no result is made in the helper.
"""

from __future__ import annotations

import array
import asyncio
import collections
import contextlib
import dataclasses
import errno
import heapq
import itertools
import os
import queue
import resource
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence

from pyscan._core.gcpause import paused_gc
from pyscan._core.rate import RateLimiter
from pyscan._core.timing import GroupTiming, HostTiming, TimingParams
from pyscan._models import IPAddress, PortResult, PortState, Reason, ReasonKind
from pyscan._scanners.connect import classify_connect, is_final

__all__ = [
    "BURST",
    "HELPER_MIN",
    "MAKE_CHUNK",
    "ConnectScan",
    "raise_nofile_limit",
    "run_connect_scan",
]

#: Tries started per loop callback: the loop gets a turn (progress, cancellation, streaming
#: consumers) at least this often.
BURST = 512

#: Closed ports' results made at the end per loop turn (some 20-40 ms of work).
MAKE_CHUNK = 16384
#: Scans of at least this many probes use the helper thread (see the module's docstring).
HELPER_MIN = 4 * BURST

# SO_LINGER on, 0 s: close() sends RST, so no TIME_WAIT piles up and the service sees an
# abort rather than a session.
_LINGER_RST = b"\x01\x00\x00\x00\x00\x00\x00\x00"
# Sockets are made non-blocking by socket() itself where it can (no extra ioctl).
_NONBLOCK: int = getattr(socket, "SOCK_NONBLOCK", 0)
_SOCK_TYPE = socket.SOCK_STREAM | _NONBLOCK
# Scans of up to this many probes keep their results in a list indexed by probe (8 bytes a
# probe, against some 100 for the result itself).
_INDEXED_MAX = 1 << 22
_EINPROGRESS = errno.EINPROGRESS
_EALREADY = errno.EALREADY
_ECONNREFUSED = errno.ECONNREFUSED
_EMFILE = (errno.EMFILE, errno.ENFILE)
_CLOSED = PortState.CLOSED
_REFUSED = Reason(ReasonKind.CONN_REFUSED)


def usable_cpus() -> int:
    """The CPUs this process may run on: with one, a second thread's connects cannot run
    while the loop's thread runs, and the helper would only add thread switches."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard limit where allowed; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        want = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    return soft


# A try on the slow path: (socket, probe index, try number, start time, serial).
_Pending = tuple[socket.socket, int, int, float, int]


@dataclasses.dataclass
class _Burst:
    """What the helper's connect calls of one burst returned."""

    closed: list[int]  # probe indexes refused (closed ports)
    counts: dict[int, int]  # refused per host
    samples: dict[int, float]  # an RTT sample per host (its first refused connect)
    others: list[tuple[int, int, float, socket.socket]]  # (index, errno, started, socket)
    unstarted: list[int]  # probe indexes handed back without a try
    share: int  # the room for connects in progress it was lent
    error: OSError | None = None  # why a socket could not be made, if that stopped it


class _Helper:
    """The second thread of a connect scan: fast-path connects of the bursts it is given.

    Driven from the loop's thread (:meth:`submit`, :meth:`stop`); each finished burst is put
    in :attr:`done` and announced with ``call_soon_threadsafe(announce)``. Only the helper's
    own spare sockets are its to close; every socket of a finished burst is the scan's.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        scan: ConnectScan,
        announce: Callable[[], None],
    ) -> None:
        self.loop = loop
        self.names = scan._names
        self.families = scan._families
        self.ports = scan.ports
        self.new_socket = scan._new_socket
        self.announce = announce
        self.outstanding = 0  # bursts given and not taken back yet (the loop's thread's view)
        self.done: list[_Burst] = []
        self.lock = threading.Lock()
        self.error: BaseException | None = None
        self._work: queue.SimpleQueue[tuple[list[int], int] | None] = queue.SimpleQueue()
        self._spare: dict[int, socket.socket] = {}
        self._thread = threading.Thread(target=self._main, name="pyscan-connect", daemon=True)
        self._thread.start()

    def submit(self, indexes: list[int], max_out: int) -> None:
        """Connect to ``indexes``, handing back the rest once ``max_out`` sockets are taken
        by connects not refused."""
        self.outstanding += 1
        self._work.put((indexes, max_out))

    def stop(self) -> None:
        """End the thread (after its current burst) and close its spare sockets."""
        self._work.put(None)
        self._thread.join()

    def take(self) -> list[_Burst]:
        """The finished bursts not taken yet."""
        with self.lock:
            done, self.done = self.done, []
        return done

    def _main(self) -> None:
        try:
            while (item := self._work.get()) is not None:
                burst = self._connect(*item)
                with self.lock:
                    self.done.append(burst)
                try:
                    self.loop.call_soon_threadsafe(self.announce)
                except RuntimeError:  # the loop is closed: the scan's close() takes it
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the loop's thread
            self.error = exc
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.announce)
        finally:
            for sock in self._spare.values():
                sock.close()
            self._spare.clear()

    def _connect(self, indexes: list[int], max_out: int) -> _Burst:
        return connect_burst(
            indexes, self.names, self.families, self.ports, self._spare, self.new_socket, max_out
        )


def connect_twice(sock: socket.socket, address: tuple[str, int]) -> int:
    """Start a non-blocking connect and return its errno (0: connected): asked twice when
    the first call says in progress, as the kernel may have had the answer while the call
    held the socket (a near closed port is then refused at once)."""
    try:
        err = sock.connect_ex(address)
        if err == _EINPROGRESS:
            err = sock.connect_ex(address)
    except OSError as exc:
        err = exc.errno or errno.EIO
    return err


def connect_burst(  # noqa: PLR0917 - the hot loop's inputs, passed once per burst
    indexes: list[int],
    names: Sequence[str],
    families: Sequence[int],
    ports: Sequence[int],
    spare: dict[int, socket.socket],
    new_socket: Callable[[int], socket.socket],
    max_out: int,
) -> _Burst:
    """Fast-path connects to the probes ``indexes`` (the hot loop of a connect scan, run by
    either thread): each ``connect()`` is asked twice, a refused socket (closed port) is
    reused, and what each call returned is noted. Stops once ``max_out`` sockets are taken by
    connects not refused, or when a socket cannot be made, handing back the rest unstarted.
    ``spare`` holds the caller's one unconnected socket per family, before and after."""
    per_host = len(ports)
    monotonic = time.monotonic
    burst = _Burst([], {}, {}, [], [], max_out)
    closed, counts, samples, others = burst.closed, burst.counts, burst.samples, burst.others
    family = -1
    sock: socket.socket | None = None
    try:
        for n, index in enumerate(indexes):
            host, k = divmod(index, per_host)
            if families[host] != family:
                if sock is not None:
                    spare[family] = sock
                family = families[host]
                sock = spare.pop(family, None)
            if sock is None:
                try:
                    sock = new_socket(family)
                except OSError as exc:
                    burst.unstarted, burst.error = indexes[n:], exc
                    break
            address = (names[host], ports[k])
            started = monotonic()
            err = connect_twice(sock, address)
            if err == _ECONNREFUSED:
                # closed; the socket is unconnected again and takes the next try
                closed.append(index)
                seen = counts.get(host)
                if seen is None:
                    counts[host] = 1
                    samples[host] = monotonic() - started
                else:
                    counts[host] = seen + 1
            else:
                others.append((index, err, started, sock))
                sock = None
                if len(others) >= max_out:
                    burst.unstarted = indexes[n + 1 :]
                    break
    except BaseException:
        for *_, taken in others:  # never handed over: nobody else would close them
            taken.close()
        raise
    finally:
        if sock is not None:
            spare[family] = sock
    return burst


class ConnectScan:
    """One connect scan of ``hosts x ports`` in a probe order, run from loop callbacks.

    :meth:`start` schedules the first burst; :attr:`finished` completes when every probe is
    decided; :meth:`close` releases every socket (also mid-scan, on cancellation). Results
    go to ``emit`` as they are decided; :attr:`results` gives them all.
    """

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        hosts: Sequence[IPAddress],
        ports: Sequence[int],
        order: Iterator[int],
        *,
        timing: TimingParams,
        concurrency: int,
        emit: Callable[[PortResult], None] | None,
        source: str | None = None,
        rate: RateLimiter | None = None,
        helper: bool = True,
    ) -> None:
        self.loop = loop
        self.hosts = hosts
        self.ports = ports
        self.order = order
        self.concurrency = concurrency
        self.emit = emit
        self.source = source
        self.rate = rate
        total = len(hosts) * len(ports)
        # Results are kept by probe index where that costs little, so :attr:`results` comes
        # out in host and port order and merging it into a report sorts a sorted list.
        self._by_index: list[PortResult | None] | None = None
        self._in_order: list[PortResult] = []
        self._store: Callable[[int, PortResult], None]
        #: Probes decided so far (the scan's progress).
        self.decided = 0
        # probe indexes of closed ports whose results are made at the end (emit is None)
        self._closed_later: array.array[int] | None = array.array("Q") if emit is None else None
        if total <= _INDEXED_MAX:
            self._by_index = [None] * total
            self._store = self._by_index.__setitem__
        else:
            self._store = self._store_in_order
        self.finished: asyncio.Future[None] = loop.create_future()
        self._group = GroupTiming(timing)
        self._timing: dict[int, HostTiming] = {}
        self._per_host = len(ports)
        self._names = [str(h) for h in hosts]
        self._families = [socket.AF_INET6 if h.version == 6 else socket.AF_INET for h in hosts]
        self._retries: collections.deque[tuple[int, int]] = collections.deque()
        self._exhausted = False
        # one unconnected socket per family, ready for the next try
        self._spare: dict[int, socket.socket] = {}
        self._pending: dict[int, _Pending] = {}  # fd -> try on the slow path
        self._deadlines: list[tuple[float, int, int]] = []  # (deadline, serial, fd)
        self._serial = 0
        self._epoll: select.epoll | None = None
        self._burst: asyncio.Handle | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        # answers to original tries not yet given to the host timings: their count, and RTT
        # samples (every answer from the slow path, the first per burst from the fast path)
        self._counts: dict[int, int] = {}
        self._samples: dict[int, list[float]] = {}
        self._starved = False  # out of descriptors: start nothing until a connect ends
        self._closed = False
        # the helper thread (see the module's docstring), started with the first burst
        self._use_helper = helper and total >= HELPER_MIN and usable_cpus() > 1
        self._helper: _Helper | None = None
        self._lent = 0  # room for connects in progress lent to the helper's bursts
        self._helping: collections.deque[list[int]] = collections.deque()  # its bursts' probes
        self._left: list[int] | None = None  # undecided probes when the scan was closed
        # whether the last burst's connects were mostly decided within the call: only then
        # is a second thread's connect worth it (a far target's connect is a moment's work
        # for the kernel, and the helper would hand most of its burst back)
        self._fast = True

    @property
    def results(self) -> list[PortResult]:
        """Every result decided so far."""
        self.make_closed()
        if self._by_index is not None:
            return [r for r in self._by_index if r is not None]
        return list(self._in_order)

    def make_closed(self, limit: int | None = None) -> int:
        """Make the results of (up to ``limit``, at least one; None: all) closed ports
        noted by probe index only; return how many are still to make."""
        later = self._closed_later
        if not later:
            return 0
        if limit is None or limit >= len(later) or limit < 1:
            chunk, left = later, 0
        else:
            chunk, left = later[-limit:], len(later) - limit
        hosts, ports, per_host, store = self.hosts, self.ports, self._per_host, self._store
        last, address = 0, hosts[0]
        with paused_gc():
            for index in chunk:
                host, k = divmod(index, per_host)
                if host != last:
                    last, address = host, hosts[host]
                store(index, PortResult(address, "tcp", ports[k], _CLOSED, _REFUSED))
        del later[left:]  # in place: a burst may still hold the array
        return left

    def undecided_taken(self) -> Iterator[int]:
        """The probes taken from the order and not decided yet: connects in progress, tries
        waiting (retries, and probes handed back by the helper), the helper's bursts (as
        they were when the scan was closed, once it is)."""
        if self._left is not None:
            return iter(self._left)
        return itertools.chain(
            (entry[1] for entry in self._pending.values()),
            (index for index, _ in self._retries),
            itertools.chain.from_iterable(self._helping),
        )

    def _store_in_order(self, _index: int, result: PortResult) -> None:
        self._in_order.append(result)

    # -- scheduling ------------------------------------------------------------------------

    def start(self) -> None:
        """Schedule the first burst."""
        self._kick()

    def _kick(self) -> None:
        if self._burst is None and not self._closed:
            self._burst = self.loop.call_soon(self._safely, self._run_burst)

    def _safely(self, callback: Callable[[], None]) -> None:
        """Run a loop callback; an error in it (an ``emit`` that raised) ends the scan."""
        try:
            callback()
        except Exception as exc:  # noqa: BLE001 - handed to the awaiting scan
            self.close()
            if not self.finished.done():
                self.finished.set_exception(exc)

    def _host(self, host: int) -> HostTiming:
        ht = self._timing.get(host)
        if ht is None:
            ht = self._timing[host] = self._group.new_host(self.loop.time())
        return ht

    # -- starting tries --------------------------------------------------------------------

    def _new_socket(self, family: int) -> socket.socket:
        sock = socket.socket(family, _SOCK_TYPE)
        if not _NONBLOCK:
            sock.setblocking(False)
        if self.source is not None:
            try:
                sock.bind((self.source, 0))
            except OSError:
                sock.close()
                raise
        return sock

    def _run_burst(self) -> None:
        self._burst = None
        if self._closed:
            return
        budget = BURST
        # Retries, and every try under --max-rate, go one at a time; fresh tries in bulk.
        while budget and (self._retries or self.rate is not None) and self._room():
            rate = self.rate
            if rate is not None:
                now = self.loop.time()
                if not rate.may_send(now):
                    wake = rate.next_time(now)
                    when = wake if wake is not None else now + 0.001
                    self._burst = self.loop.call_at(when, self._safely, self._run_burst)
                    break
            if self._retries:
                index, tryno = self._retries.popleft()
            else:
                fresh = next(self.order, None)
                if fresh is None:
                    self._exhausted = True
                    break
                index, tryno = fresh, 0
            if rate is not None:
                rate.on_send(self.loop.time())
            budget -= 1
            self._try(index, tryno)
        if budget and self.rate is None and not self._retries and self._room():
            if self._use_helper and self._fast and not self._exhausted:
                self._feed_helper()
            budget = self._fresh(budget)
        self._carry_on()

    def _feed_helper(self) -> None:
        """Give the helper thread bursts of fresh probes: two queued, so it need not wait
        for the loop's thread to take one before it starts the next."""
        helper = self._helper
        if helper is None:
            helper = self._helper = _Helper(
                self.loop, self, lambda: self._safely(self._from_helper)
            )
        while helper.outstanding < 2 and not self._exhausted:
            room = self.concurrency - len(self._pending) - self._lent
            if room < 1:
                return
            indexes = list(itertools.islice(self.order, BURST))
            if len(indexes) < BURST:
                self._exhausted = True
            if not indexes:
                return
            # half the room for connects in progress left now (the loop's thread may use
            # the rest): its share of descriptors, at least one
            share = max(1, room // 2)
            self._lent += share
            self._helping.append(indexes)
            helper.submit(indexes, share)

    def _from_helper(self) -> None:
        """Take the helper's finished bursts (a loop callback)."""
        helper = self._helper
        if helper is None or self._closed:
            return
        if helper.error is not None:
            raise helper.error  # close() takes its finished bursts and closes their sockets
        bursts = helper.take()
        if not bursts:
            return
        try:
            for burst in bursts:
                helper.outstanding -= 1
                self._lent -= burst.share
                self._helping.popleft()  # the helper does its bursts in turn
                self._take_burst(burst)
        except BaseException:
            # an emit that raised ends the scan: no socket of these bursts may be left open
            # (closing one twice, or one close() will close again, does no harm)
            for burst in bursts:
                for *_, sock in burst.others:
                    sock.close()
            raise
        if self.rate is None and self._fast and not self._retries and self._room():
            self._feed_helper()
        self._carry_on()

    def _take_burst(self, burst: _Burst) -> None:
        """Decide what a burst of connects found, the helper's or the loop's thread's own
        (in the loop's thread)."""
        closed = burst.closed
        tried = len(closed) + len(burst.others)
        if tried:
            self._fast = 2 * len(closed) >= tried
        # the sockets first (on the slow path, or closed), then the results
        for index, err, started, sock in burst.others:
            self._settle(sock, index, 0, err, started)
        self.decided += len(closed)
        later = self._closed_later
        if later is not None:
            later.extend(closed)
        else:
            hosts, ports, per_host, store = self.hosts, self.ports, self._per_host, self._store
            for index in closed:
                host, k = divmod(index, per_host)
                result = PortResult(hosts[host], "tcp", ports[k], _CLOSED, _REFUSED)
                store(index, result)
                self.emit(result)  # type: ignore[misc]  # None only with ``later``
        counts, samples = self._counts, self._samples
        for host, count in burst.counts.items():
            counts[host] = counts.get(host, 0) + count
        for host, sample in burst.samples.items():
            samples.setdefault(host, []).append(sample)
        # handed back unstarted (out of room or of descriptors): tried one by one next
        unstarted = burst.unstarted
        error = burst.error
        if error is None or not unstarted:
            self._retries.extendleft((index, 0) for index in reversed(unstarted))
            return
        # a socket could not be made for the first of them: as for a single try
        self._retries.extendleft((index, 0) for index in reversed(unstarted[1:]))
        if error.errno in _EMFILE and self._pending:
            self._out_of_files(unstarted[0], 0)
        else:
            self._decide(unstarted[0], 0, error.errno or errno.EIO, None)

    def _carry_on(self) -> None:
        """After a callback: hand over the answers, start more tries or finish."""
        self._flush_answers()
        if self._room() and (self._retries or not self._exhausted):
            self._kick()
        helping = self._helper is not None and self._helper.outstanding > 0
        done = self._exhausted and not self._retries and not self._pending and not helping
        if done and not self.finished.done():
            self.finished.set_result(None)

    def _room(self) -> bool:
        return len(self._pending) + self._lent < self.concurrency and not self._starved

    def _fresh(self, budget: int) -> int:
        """Start up to ``budget`` fresh tries from the probe order (:func:`connect_burst`,
        with the loop's thread's share of the room); return what is left of ``budget``."""
        indexes = list(itertools.islice(self.order, budget))
        if len(indexes) < budget:
            self._exhausted = True
        if indexes:
            room = self.concurrency - len(self._pending) - self._lent
            burst = connect_burst(
                indexes,
                self._names,
                self._families,
                self.ports,
                self._spare,
                self._new_socket,
                max(1, room),
            )
            self._take_burst(burst)
        return budget - len(indexes)

    def _try(self, index: int, tryno: int) -> None:
        """Start one try (a retry, or any try under a rate limit)."""
        host, k = divmod(index, self._per_host)
        family = self._families[host]
        sock = self._spare.pop(family, None)
        if sock is None:
            try:
                sock = self._new_socket(family)
            except OSError as exc:
                if exc.errno in _EMFILE and self._pending:
                    self._out_of_files(index, tryno)
                else:
                    self._decide(index, tryno, exc.errno or errno.EIO, None)
                return
        address = (self._names[host], self.ports[k])
        started = time.monotonic()
        self._settle(sock, index, tryno, connect_twice(sock, address), started)

    def _settle(
        self, sock: socket.socket, index: int, tryno: int, err: int, started: float
    ) -> None:
        """What follows a connect() call that returned ``err``."""
        if err in (_EALREADY, _EINPROGRESS):
            self._watch(sock, index, tryno, started)
            return
        if err == _ECONNREFUSED:
            family = self._families[index // self._per_host]
            if family in self._spare:
                sock.close()
            else:
                self._spare[family] = sock
        else:
            if err == 0:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            sock.close()
        self._decide(index, tryno, err, time.monotonic() - started)

    def _out_of_files(self, index: int, tryno: int) -> None:
        """Out of descriptors: put the try back, and keep fewer connects in progress."""
        self._retries.appendleft((index, tryno))
        self.concurrency = max(16, len(self._pending))
        self._starved = True

    def _watch(self, sock: socket.socket, index: int, tryno: int, started: float) -> None:
        """Put a connect still in progress on the slow path."""
        ep = self._epoll
        if ep is None:
            ep = self._epoll = select.epoll()
            self.loop.add_reader(ep.fileno(), self._safely, self._on_events)
        fd = sock.fileno()
        try:
            ep.register(fd, select.EPOLLOUT)
        except OSError as exc:  # out of memory or of epoll watches
            sock.close()
            self._decide(index, tryno, exc.errno or errno.EIO, None)
            return
        self._serial += 1
        self._pending[fd] = (sock, index, tryno, started, self._serial)
        ht = self._host(index // self._per_host)
        timeout = ht.probe_timeout if tryno == 0 else max(1.0, ht.probe_timeout * 2)
        deadline = started + timeout
        heapq.heappush(self._deadlines, (deadline, self._serial, fd))
        if self._timer is None or deadline < self._timer_at:
            self._arm(deadline)

    # -- the slow path ---------------------------------------------------------------------

    def _arm(self, deadline: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer_at = deadline
        delay = max(0.0, deadline - time.monotonic())
        self._timer = self.loop.call_later(delay, self._safely, self._on_timer)

    def _on_events(self) -> None:
        ep = self._epoll
        if ep is None or self._closed:
            return
        pending = self._pending
        for fd, _events in ep.poll(0, 1024):
            entry = pending.pop(fd, None)
            if entry is None:
                continue
            sock, index, tryno, started, _serial = entry
            took = time.monotonic() - started
            try:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            except OSError as exc:
                err = exc.errno or errno.EIO
            if err == 0:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
            sock.close()  # also leaves the epoll
            self._decide(index, tryno, err, took)
        self._starved = False
        self._carry_on()

    def _on_timer(self) -> None:
        self._timer = None
        if self._closed:
            return
        now = time.monotonic()
        deadlines = self._deadlines
        pending = self._pending
        while deadlines and deadlines[0][0] <= now:
            _, serial, fd = heapq.heappop(deadlines)
            entry = pending.get(fd)
            if entry is None or entry[4] != serial:
                continue  # answered already (the fd may have been reused)
            del pending[fd]
            sock, index, tryno, started, _serial = entry
            sock.close()  # also leaves the epoll
            self._decide(index, tryno, None, now - started)
        # drop answered entries at the top, so the timer follows a live deadline
        while deadlines and self._stale(deadlines[0]):
            heapq.heappop(deadlines)
        if deadlines:
            self._arm(deadlines[0][0])
        self._starved = False
        self._carry_on()

    def _stale(self, item: tuple[float, int, int]) -> bool:
        entry = self._pending.get(item[2])
        return entry is None or entry[4] != item[1]

    # -- results ---------------------------------------------------------------------------

    def _decide(self, index: int, tryno: int, err: int | None, took: float | None) -> None:
        """One try's outcome (``took``: an RTT sample, if any): a result, or a retry."""
        host, k = divmod(index, self._per_host)
        if is_final(err):
            if tryno == 0:
                self._counts[host] = self._counts.get(host, 0) + 1
                if took is not None:
                    self._samples.setdefault(host, []).append(took)
            else:
                self._host(host).on_answer(self.loop.time(), tryno=tryno)
        else:
            ht = self._host(host)
            if ht.may_retransmit(tryno) and not ht.timed_out(self.loop.time()):
                self._retries.append((index, tryno + 1))
                return
        state, kind = classify_connect(err)
        reason = _REFUSED if kind is ReasonKind.CONN_REFUSED else Reason(kind)
        result = PortResult(self.hosts[host], "tcp", self.ports[k], state, reason)
        self._store(index, result)
        self.decided += 1
        if self.emit is not None:
            self.emit(result)

    def _flush_answers(self) -> None:
        """Give the host timings the answers to original tries collected so far."""
        if self._counts:
            samples = self._samples
            for host, count in self._counts.items():
                self._host(host).on_answers(count, samples.get(host, []))
            self._counts = {}
            self._samples = {}

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        """Stop: cancel the callbacks and close every socket (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._left = list(self.undecided_taken())  # for the resume point, past the close
        if self._helper is not None:
            self._helper.stop()
            for burst in self._helper.take():  # finished, never taken: their sockets
                for *_, sock in burst.others:
                    sock.close()
            self._helper = None
        if self._burst is not None:
            self._burst.cancel()
            self._burst = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        for sock, *_ in self._pending.values():
            sock.close()
        self._pending.clear()
        for sock in self._spare.values():
            sock.close()
        self._spare.clear()
        if self._epoll is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                self.loop.remove_reader(self._epoll.fileno())
            self._epoll.close()
            self._epoll = None


async def run_connect_scan(
    hosts: Sequence[IPAddress],
    ports: Sequence[int],
    order: Iterator[int],
    *,
    timing: TimingParams,
    concurrency: int,
    emit: Callable[[PortResult], None] | None,
    source: str | None = None,
    rate: RateLimiter | None = None,
    started: Callable[[ConnectScan], None] | None = None,
    helper: bool = True,
) -> list[PortResult]:
    """Connect-scan ``hosts x ports`` in the given probe order; return every result.

    See :class:`ConnectScan`. A timed-out try is retried while the host's retry allowance
    lasts (with at least 1 s, so the kernel can resend a lost SYN once). ``rate``
    (``--max-rate``) paces the attempts, retries included. ``emit`` gets each result as it is
    decided (``None``: nobody needs them before the end); ``started`` gets the scan before it
    starts (for its progress, :attr:`ConnectScan.decided`).
    """
    loop = asyncio.get_running_loop()
    limit = raise_nofile_limit()
    concurrency = max(1, min(concurrency, limit - 64))
    scan = ConnectScan(
        loop,
        hosts,
        ports,
        order,
        timing=timing,
        concurrency=concurrency,
        emit=emit,
        source=source,
        rate=rate,
        helper=helper,
    )
    if started is not None:
        started(scan)
    try:
        scan.start()
        await scan.finished
    finally:
        scan.close()
    # Closed ports noted by index are made in chunks, the loop getting a turn in between
    # (a /16 of full port scans would otherwise hold it for seconds).
    while scan.make_closed(MAKE_CHUNK):
        await asyncio.sleep(0)
    return scan.results
