"""The connect scan's IO on loopback: the fast path (answers decided within the connect call,
one socket reused for every refused port), the slow path (epoll, timeouts, retries), order of
the results, rate limiting, errors and clean-up.

A port is made silent with a listener whose accept queue is full: the kernel drops further
SYNs, so a connect to it stays in progress until it times out, and completes once the queue
has room again and the kernel resends the SYN (after 1 s).
"""

from __future__ import annotations

import asyncio
import errno
import gc
import ipaddress
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

from pyscan._core.rate import RateLimiter
from pyscan._core.timing import TimingParams, TimingTemplate
from pyscan._io import connect as connect_mod
from pyscan._io.connect import ConnectScan, run_connect_scan
from pyscan._models import IPAddress, PortResult, PortState, ReasonKind
from pyscan._specs.permutation import Permutation, ProbeOrder

LOCAL = ipaddress.ip_address("127.0.0.1")
T4 = TimingTemplate.get(4).params()


def _timing(**changes: object) -> TimingParams:
    return attrs.evolve(T4, **changes)  # type: ignore[arg-type]


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _free_ports(count: int) -> list[int]:
    """Ports nothing listens on (bound once to find them, then released)."""
    socks = []
    for _ in range(count):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


@pytest.fixture
def listener() -> Iterator[int]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(64)
    yield s.getsockname()[1]
    s.close()


class Silent:
    """A listener with a full accept queue: SYNs to it get no answer."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(0)
        self.port: int = self.sock.getsockname()[1]
        self.queued = [socket.create_connection(("127.0.0.1", self.port))]

    def make_room(self) -> None:
        """Accept the queued connection: the next (re)sent SYN is answered."""
        conn, _ = self.sock.accept()
        self.queued.append(conn)

    def close(self) -> None:
        for s in [*self.queued, self.sock]:
            s.close()


@pytest.fixture
def silent() -> Iterator[Silent]:
    s = Silent()
    yield s
    s.close()


def _states(results: list[PortResult]) -> dict[int, tuple[PortState, ReasonKind]]:
    return {r.port: (r.state, r.reason.kind) for r in results}


async def _scan(
    ports: list[int],
    *,
    hosts: list[IPAddress] | None = None,
    timing: TimingParams = T4,
    concurrency: int = 64,
    seed: int | None = 1,
    rate: RateLimiter | None = None,
    source: str | None = None,
    emit: Callable[[PortResult], None] | None = None,
) -> list[PortResult]:
    hosts = hosts or [LOCAL]
    emitted: list[PortResult] = []
    results = await run_connect_scan(
        hosts,
        ports,
        iter(Permutation(len(hosts) * len(ports), seed)),
        timing=timing,
        concurrency=concurrency,
        emit=emit or emitted.append,
        rate=rate,
        source=source,
    )
    if emit is None:
        assert sorted(map(id, emitted)) == sorted(map(id, results))
    return results


async def test_refused_ports_share_one_socket(
    listener: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    made = 0
    new_socket = ConnectScan._new_socket

    def counting(self: ConnectScan, family: int) -> socket.socket:
        nonlocal made
        made += 1
        return new_socket(self, family)

    monkeypatch.setattr(ConnectScan, "_new_socket", counting)
    closed = _free_ports(200)
    results = await _scan([listener, *closed])
    states = _states(results)
    assert states[listener] == (PortState.OPEN, ReasonKind.SYN_ACK)
    assert all(states[p] == (PortState.CLOSED, ReasonKind.CONN_REFUSED) for p in closed)
    assert len(results) == 201
    # one socket for every refused port, one more after the open port consumed its own
    assert made <= 2


async def test_results_come_back_in_port_order(listener: int) -> None:
    ports = sorted([listener, *_free_ports(50)])
    hosts: list[IPAddress] = [LOCAL, ipaddress.ip_address("127.0.0.2")]
    results = await _scan(ports, hosts=hosts, seed=7)
    assert [(r.address, r.port) for r in results] == [(h, p) for h in hosts for p in ports]


async def test_without_emit_closed_results_are_made_at_the_end(
    listener: int, silent: Silent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connect_mod, "MAKE_CHUNK", 100)
    ports = sorted([listener, silent.port, *_free_ports(300)])
    hosts: list[IPAddress] = [LOCAL, ipaddress.ip_address("127.0.0.2")]
    timing = _timing(initial_rtt_timeout=0.2, max_retries=0)
    scans: list[ConnectScan] = []
    seen: list[int] = []  # the scan's progress, read between bursts
    to_make: list[int] = []  # closed results still to make, once every probe is decided

    def started(scan: ConnectScan) -> None:
        scans.append(scan)
        loop = asyncio.get_running_loop()

        def watch() -> None:
            seen.append(scan.decided)
            if scan.finished.done():
                to_make.append(len(scan._closed_later or ()))
            if to_make[-1:] != [0]:
                loop.call_soon(watch)

        loop.call_soon(watch)

    quiet = await run_connect_scan(
        hosts,
        ports,
        iter(Permutation(len(hosts) * len(ports), 3)),
        timing=timing,
        concurrency=64,
        emit=None,
        started=started,
    )
    emitted: list[PortResult] = []
    loud = await run_connect_scan(
        hosts,
        ports,
        iter(Permutation(len(hosts) * len(ports), 3)),
        timing=timing,
        concurrency=64,
        emit=emitted.append,
    )
    assert len(emitted) == len(loud) == len(quiet) == len(hosts) * len(ports)
    assert quiet == loud  # same results, same (host, port) order
    states = {(str(r.address), r.port): r.state for r in quiet}
    assert states.pop(("127.0.0.1", listener)) is PortState.OPEN
    assert states.pop(("127.0.0.1", silent.port)) is PortState.FILTERED
    # everything else is closed, 127.0.0.2's listener and silent port included
    assert set(states.values()) == {PortState.CLOSED}
    # one address object per host, shared by its results (as on the emitting path)
    assert len({id(r.address) for r in quiet}) == len(hosts)
    # progress counts closed ports while their results are not made yet
    (scan,) = scans
    assert scan.decided == len(quiet)
    assert seen == sorted(seen)
    assert any(0 < n < len(quiet) for n in seen)  # seen between bursts, mid-scan
    # made 100 at a time at the end, the loop getting a turn in between
    # (602 closed ports, fewer if the kernel left some for the slow path on a busy machine)
    assert to_make[0] > 300
    assert to_make == [*range(to_make[0], 0, -100), 0]
    assert scan.results == quiet  # made once: asking again gives the same objects
    assert all(a is b for a, b in zip(scan.results, quiet, strict=True))


async def test_silent_port_is_retried_then_filtered(
    silent: Silent, monkeypatch: pytest.MonkeyPatch
) -> None:
    watched: list[int] = []
    watch = ConnectScan._watch

    def counting(
        self: ConnectScan, sock: socket.socket, index: int, tryno: int, started: float
    ) -> None:
        watched.append(tryno)
        watch(self, sock, index, tryno, started)

    monkeypatch.setattr(ConnectScan, "_watch", counting)
    closed = _free_ports(3)
    timing = _timing(initial_rtt_timeout=0.1, max_retries=1)
    start = time.monotonic()
    results = await _scan([silent.port, *closed], timing=timing)
    states = _states(results)
    assert states[silent.port] == (PortState.FILTERED, ReasonKind.NO_RESPONSE)
    assert all(states[p] == (PortState.CLOSED, ReasonKind.CONN_REFUSED) for p in closed)
    assert watched == [0, 1]  # the original try and one retry, both on the slow path
    assert time.monotonic() - start >= 1.0  # a retry waits at least 1 s


async def test_late_answer_on_the_slow_path(silent: Silent) -> None:
    loop = asyncio.get_running_loop()
    loop.call_later(0.2, silent.make_room)
    results = await _scan(
        [silent.port], timing=_timing(initial_rtt_timeout=5.0, max_rtt_timeout=5.0, max_retries=0)
    )
    assert _states(results) == {silent.port: (PortState.OPEN, ReasonKind.SYN_ACK)}


async def test_concurrency_bounds_connects_in_progress(monkeypatch: pytest.MonkeyPatch) -> None:
    silents = [Silent() for _ in range(5)]
    most = 0
    watch = ConnectScan._watch

    def tracking(
        self: ConnectScan, sock: socket.socket, index: int, tryno: int, started: float
    ) -> None:
        nonlocal most
        watch(self, sock, index, tryno, started)
        most = max(most, len(self._pending))

    monkeypatch.setattr(ConnectScan, "_watch", tracking)
    try:
        timing = _timing(initial_rtt_timeout=0.1, max_retries=0)
        results = await _scan([s.port for s in silents], timing=timing, concurrency=2)
    finally:
        for s in silents:
            s.close()
    assert {r.state for r in results} == {PortState.FILTERED}
    assert len(results) == 5
    assert most == 2


async def test_out_of_descriptors_waits_and_lowers_concurrency(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    silents = [Silent() for _ in range(3)]
    calls = 0
    new_socket = ConnectScan._new_socket

    def failing(self: ConnectScan, family: int) -> socket.socket:
        nonlocal calls
        calls += 1
        if calls == 3:  # two connects in progress: wait for them rather than give up
            raise OSError(errno.EMFILE, os.strerror(errno.EMFILE))
        return new_socket(self, family)

    monkeypatch.setattr(ConnectScan, "_new_socket", failing)
    scans: list[ConnectScan] = []
    init = ConnectScan.__init__

    def keep(self: ConnectScan, *args: object, **kwargs: object) -> None:
        init(self, *args, **kwargs)  # type: ignore[arg-type]
        scans.append(self)

    monkeypatch.setattr(ConnectScan, "__init__", keep)
    try:
        timing = _timing(initial_rtt_timeout=0.1, max_retries=0)
        results = await _scan([s.port for s in silents], timing=timing, concurrency=100)
    finally:
        for s in silents:
            s.close()
    assert _states(results) == {
        s.port: (PortState.FILTERED, ReasonKind.NO_RESPONSE) for s in silents
    }
    assert scans[0].concurrency == 16


async def test_max_rate_paces_every_try() -> None:
    ports = _free_ports(30)
    start = time.monotonic()
    results = await _scan(ports, rate=RateLimiter(max_rate=200.0, burst=1))
    assert time.monotonic() - start >= 29 / 200 * 0.9
    assert _states(results) == dict.fromkeys(ports, (PortState.CLOSED, ReasonKind.CONN_REFUSED))


async def test_ipv6_loopback(listener: int) -> None:
    try:
        with socket.socket(socket.AF_INET6) as s6:
            s6.bind(("::1", 0))
            s6.listen(8)
            port6 = s6.getsockname()[1]
            closed = [p for p in _free_ports(20) if p != port6]
            results = await _scan([port6, *closed], hosts=[ipaddress.ip_address("::1")])
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback: {exc}")
    states = _states(results)
    assert states[port6] == (PortState.OPEN, ReasonKind.SYN_ACK)
    assert all(states[p][0] is PortState.CLOSED for p in closed)


async def test_an_emit_that_raises_ends_the_scan_and_closes_everything(
    silent: Silent,
) -> None:
    gc.collect()
    fds_before = _open_fds()
    seen = 0

    def emit(_result: PortResult) -> None:
        nonlocal seen
        seen += 1
        if seen == 5:
            raise RuntimeError("consumer failed")

    ports = [silent.port, *_free_ports(50)]
    with pytest.raises(RuntimeError, match="consumer failed"):
        await _scan(ports, emit=emit, timing=_timing(initial_rtt_timeout=5.0, max_rtt_timeout=5.0))
    gc.collect()
    assert _open_fds() == fds_before


async def test_cancelling_closes_every_socket(silent: Silent) -> None:
    gc.collect()
    fds_before = _open_fds()
    task = asyncio.ensure_future(
        _scan(
            [silent.port, *_free_ports(10)],
            timing=_timing(initial_rtt_timeout=5.0, max_rtt_timeout=5.0),
        )
    )
    await asyncio.sleep(0.2)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    gc.collect()
    assert _open_fds() == fds_before


async def test_the_loop_gets_a_turn_between_bursts() -> None:
    ticks = 0
    stop = False

    async def ticker() -> None:
        nonlocal ticks
        while not stop:
            ticks += 1
            await asyncio.sleep(0)

    task = asyncio.ensure_future(ticker())
    ports = list(range(40000, 40000 + 4 * connect_mod.BURST))
    try:
        results = await _scan(ports)
    finally:
        stop = True
        await task
    assert len(results) == len(ports)
    assert ticks >= 4


def test_source_address_is_kept_by_the_reused_socket() -> None:
    with socket.socket() as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.settimeout(5)
        port = srv.getsockname()[1]
        closed = _free_ports(20)
        # sequential order: the open port is tried last, on the socket the refusals reused
        results = asyncio.run(_scan([*closed, port], seed=None, source="127.0.0.2"))
        conn, peer = srv.accept()
        conn.close()
    assert peer[0] == "127.0.0.2"
    states = _states(results)
    assert states[port] == (PortState.OPEN, ReasonKind.SYN_ACK)
    assert all(states[p] == (PortState.CLOSED, ReasonKind.CONN_REFUSED) for p in closed)


# -- the helper thread -------------------------------------------------------------------


def _helper_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "pyscan-connect"]


class _Bursts:
    """Counts the bursts the helper thread connected, and the probes it handed back."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.connected = 0
        self.probes = 0
        self.handed_back = 0
        connect = connect_mod._Helper._connect
        take = ConnectScan._take_burst

        def counting(helper: Any, indexes: list[int], max_out: int) -> Any:
            self.connected += 1
            self.probes += len(indexes)
            return connect(helper, indexes, max_out)

        def taking(scan: ConnectScan, burst: Any) -> None:
            self.handed_back += len(burst.unstarted)
            take(scan, burst)

        monkeypatch.setattr(connect_mod._Helper, "_connect", counting)
        monkeypatch.setattr(ConnectScan, "_take_burst", taking)


async def _scan_silent_ports(count: int, *, seed: int, concurrency: int) -> list[PortResult]:
    """Connect-scan ``count`` ports whose accept queue is full, so every connect stays in
    progress until its 0.2 s timeout: each comes back filtered."""
    silents = [Silent() for _ in range(count)]
    try:
        results = await run_connect_scan(
            [LOCAL],
            [s.port for s in silents],
            iter(Permutation(count, seed)),
            timing=_timing(initial_rtt_timeout=0.2, max_rtt_timeout=0.2, max_retries=0),
            concurrency=concurrency,
            emit=None,
        )
    finally:
        for s in silents:
            s.close()
    assert {r.state for r in results} == {PortState.FILTERED}
    assert len(results) == count
    return results


@pytest.mark.parametrize("emit", [False, True], ids=["results-at-end", "emitted"])
async def test_helper_thread_shares_the_connects_and_decides_nothing_itself(
    listener: int, monkeypatch: pytest.MonkeyPatch, emit: bool
) -> None:
    monkeypatch.setattr(connect_mod, "HELPER_MIN", 100)
    monkeypatch.setattr(connect_mod, "BURST", 64)
    bursts = _Bursts(monkeypatch)
    ports = sorted([listener, *_free_ports(400)])
    hosts: list[IPAddress] = [LOCAL, ipaddress.ip_address("127.0.0.2")]
    gc.collect()
    fds_before = _open_fds()

    async def scan(helper: bool) -> list[PortResult]:
        emitted: list[PortResult] = []
        results = await run_connect_scan(
            hosts,
            ports,
            iter(Permutation(len(hosts) * len(ports), 5)),
            timing=T4,
            concurrency=64,
            emit=emitted.append if emit else None,
            helper=helper,
        )
        if emit:
            assert sorted(map(id, emitted)) == sorted(map(id, results))
        return results

    alone = await scan(helper=False)
    assert bursts.connected == 0
    shared = await scan(helper=True)
    assert shared == alone
    assert _states(shared[: len(ports)])[listener] == (PortState.OPEN, ReasonKind.SYN_ACK)
    assert bursts.connected > 0
    assert 0 < bursts.probes < len(hosts) * len(ports)  # the loop's thread connected too
    assert _helper_threads() == []  # stopped with the scan
    gc.collect()
    assert _open_fds() == fds_before  # its spare sockets closed too


async def test_helper_thread_gets_half_the_room_and_hands_back_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Listeners whose accept queue is full: every connect to them stays in progress, so
    # each takes a descriptor until it times out.
    monkeypatch.setattr(connect_mod, "HELPER_MIN", 10)
    monkeypatch.setattr(connect_mod, "BURST", 10)  # both threads connect in a burst
    bursts = _Bursts(monkeypatch)
    in_progress: list[int] = []
    watch = ConnectScan._watch

    def watching(self: ConnectScan, *args: Any) -> None:
        watch(self, *args)
        in_progress.append(len(self._pending))

    monkeypatch.setattr(ConnectScan, "_watch", watching)
    await _scan_silent_ports(40, seed=2, concurrency=8)
    assert max(in_progress) <= 8  # the helper's share counted against the bound
    assert bursts.connected > 0
    assert bursts.handed_back > 0  # its burst stopped at its share (4), the rest came back
    assert _helper_threads() == []


async def test_an_error_in_the_helper_thread_ends_the_scan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(connect_mod, "HELPER_MIN", 100)

    def broken(_helper: Any, _indexes: list[int], _max_out: int) -> Any:
        raise RuntimeError("helper failed")

    monkeypatch.setattr(connect_mod._Helper, "_connect", broken)
    gc.collect()
    fds_before = _open_fds()
    with pytest.raises(RuntimeError, match="helper failed"):
        await _scan(_free_ports(300))
    assert _helper_threads() == []
    gc.collect()
    assert _open_fds() == fds_before


async def test_cancelling_stops_the_helper_thread_and_closes_its_sockets(
    silent: Silent, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connect_mod, "HELPER_MIN", 100)
    bursts = _Bursts(monkeypatch)
    gc.collect()
    fds_before = _open_fds()
    task = asyncio.ensure_future(
        _scan(
            [silent.port, *_free_ports(500)],
            timing=_timing(initial_rtt_timeout=5.0, max_rtt_timeout=5.0),
        )
    )
    await asyncio.sleep(0.3)  # the free ports are done; the silent one waits 5 s
    assert not task.done()
    assert bursts.connected > 0
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert _helper_threads() == []
    gc.collect()
    assert _open_fds() == fds_before


async def test_helper_thread_is_not_fed_while_connects_stay_in_progress(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Far targets: every connect stays in progress (here: full accept queues), so a second
    # thread's connect() gains nothing; once a burst shows it, the helper gets no more.
    monkeypatch.setattr(connect_mod, "HELPER_MIN", 10)
    monkeypatch.setattr(connect_mod, "BURST", 10)
    bursts = _Bursts(monkeypatch)
    await _scan_silent_ports(60, seed=4, concurrency=128)
    assert bursts.connected == 2  # the two queued at the start
    assert bursts.probes == 20


async def test_undecided_probes_are_known_at_every_turn_and_after_a_close(
    silent: Silent, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The resume point rests on this: the probes taken from the order and not decided are
    # exactly those in progress, waiting for a try, or in the helper's bursts.
    monkeypatch.setattr(connect_mod, "HELPER_MIN", 100)
    monkeypatch.setattr(connect_mod, "BURST", 32)
    ports = [silent.port, *_free_ports(600)]
    order = ProbeOrder(Permutation(len(ports), 8))
    checked = 0
    scans: list[ConnectScan] = []

    def decided(scan: ConnectScan) -> set[int]:
        assert scan._by_index is not None
        made = {i for i, r in enumerate(scan._by_index) if r is not None}
        return made | set(scan._closed_later or ())

    def check(scan: ConnectScan) -> None:
        nonlocal checked
        taken = {Permutation(len(ports), 8).at(p) for p in range(order.given)}
        assert set(scan.undecided_taken()) == taken - decided(scan)
        checked += 1

    def started(scan: ConnectScan) -> None:
        scans.append(scan)
        loop = asyncio.get_running_loop()

        def watch() -> None:
            check(scan)
            if not scan.finished.done():
                # not call_soon: a loop that never idles would starve the helper of the GIL
                loop.call_later(0.002, watch)

        loop.call_soon(watch)

    task = asyncio.ensure_future(
        run_connect_scan(
            [LOCAL],
            ports,
            order,
            timing=_timing(initial_rtt_timeout=5.0, max_rtt_timeout=5.0),
            concurrency=64,
            emit=None,
            started=started,
        )
    )
    await asyncio.sleep(0.3)  # every closed port is done; the silent one waits 5 s
    (scan,) = scans
    assert checked > 5
    assert order.given == len(ports)
    assert list(scan.undecided_taken()) == [ports.index(silent.port)]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # closed: the silent port's probe is still known as undecided
    assert list(scan.undecided_taken()) == [ports.index(silent.port)]
    assert order.resume_point(scan.undecided_taken()) == order.position(ports.index(silent.port))


async def test_an_emit_that_raises_on_a_helper_burst_leaves_no_socket_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The helper's bursts hold sockets of connects still in progress (full accept queues);
    # the consumer fails on a result of such a burst: every socket is closed all the same.
    monkeypatch.setattr(connect_mod, "HELPER_MIN", 10)
    monkeypatch.setattr(connect_mod, "BURST", 16)
    bursts = _Bursts(monkeypatch)
    silents = [Silent() for _ in range(20)]
    gc.collect()
    fds_before = _open_fds()
    taken = 0
    take = ConnectScan._take_burst

    def failing(self: ConnectScan, burst: Any) -> None:
        nonlocal taken
        taken += 1
        if burst.others:
            self.emit = _raise  # the consumer fails on this burst's results
        take(self, burst)

    def _raise(_result: PortResult) -> None:
        raise RuntimeError("consumer failed")

    monkeypatch.setattr(ConnectScan, "_take_burst", failing)
    ports = [p for s in silents for p in (s.port,)] + _free_ports(100)
    try:
        with pytest.raises(RuntimeError, match="consumer failed"):
            await run_connect_scan(
                [LOCAL],
                ports,
                iter(Permutation(len(ports), 6)),
                timing=_timing(initial_rtt_timeout=5.0, max_rtt_timeout=5.0),
                concurrency=256,
                emit=lambda _r: None,
            )
    finally:
        for s in silents:
            s.close()
    assert bursts.connected > 0
    assert taken > 0
    assert _helper_threads() == []
    gc.collect()
    assert _open_fds() == fds_before - 2 * len(silents)  # the listeners and their queued


async def test_no_helper_thread_on_one_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    # one CPU: a second thread's connects could not run while the loop's thread runs
    monkeypatch.setattr(connect_mod, "HELPER_MIN", 10)
    monkeypatch.setattr(connect_mod, "usable_cpus", lambda: 1)
    bursts = _Bursts(monkeypatch)
    results = await _scan(_free_ports(200))
    assert len(results) == 200
    assert bursts.connected == 0
    assert connect_mod.usable_cpus() == 1
    monkeypatch.undo()
    assert connect_mod.usable_cpus() >= 1
