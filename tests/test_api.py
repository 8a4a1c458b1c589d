"""The public async API on loopback: reports, streaming, cancellation, privileges."""

from __future__ import annotations

import asyncio
import gc
import ipaddress
import os
import socket
from collections.abc import Iterator

import pytest

import pyscan
from pyscan._io import engine as engine_mod
from pyscan._io import netutil
from pyscan.errors import OptionsError, PrivilegeError

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="raw-socket scans need root (CAP_NET_RAW)")


@pytest.fixture
def listeners() -> Iterator[tuple[list[int], list[int]]]:
    """Two open TCP ports and two closed ones on 127.0.0.1."""
    socks, open_ports = [], []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        socks.append(s)
        open_ports.append(s.getsockname()[1])
    closed = []
    for _ in range(2):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        closed.append(s.getsockname()[1])
        s.close()
    yield open_ports, closed
    for s in socks:
        s.close()


def _open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def test_connect_scan_report(listeners: tuple[list[int], list[int]]) -> None:
    open_ports, closed = listeners
    report = await pyscan.connect_scan("127.0.0.1", open_ports + closed)
    host = report.host("127.0.0.1")
    assert {p.port for p in host.open_ports()} == set(open_ports)
    states = {p.port: (p.state, p.reason.kind) for p in host.ports}
    for port in closed:
        assert states[port] == (pyscan.PortState.CLOSED, pyscan.ReasonKind.CONN_REFUSED)
    assert report.scan_types == ("connect",)
    assert report.stats.hosts_up == 1


@needs_root
async def test_syn_scan_report(listeners: tuple[list[int], list[int]]) -> None:
    open_ports, closed = listeners
    report = await pyscan.syn_scan("127.0.0.1", open_ports + closed)
    got = {p.port: (p.state.value, p.reason.kind.value, p.reason.ttl) for p in report.all_ports()}
    for port in open_ports:
        assert got[port] == ("open", "syn-ack", 64)
    for port in closed:
        assert got[port] == ("closed", "reset", 64)
    assert report.stats.packets_sent >= 4


@needs_root
async def test_udp_scan_report() -> None:
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    u.setblocking(False)
    port = u.getsockname()[1]
    loop = asyncio.get_running_loop()

    async def answer() -> None:
        while True:
            _data, addr = await loop.sock_recvfrom(u, 2048)
            await loop.sock_sendto(u, b"pong", addr)

    task = asyncio.create_task(answer())
    try:
        report = await pyscan.udp_scan("127.0.0.1", [port, 9])
    finally:
        task.cancel()
        u.close()
    got = {p.port: (p.state.value, p.reason.kind.value) for p in report.all_ports()}
    assert got == {port: ("open", "udp-response"), 9: ("closed", "port-unreach")}


@needs_root
async def test_ping_scan_loopback() -> None:
    report = await pyscan.ping_scan("127.0.0.1")
    (host,) = report.hosts
    assert host.status is pyscan.HostStatus.UP
    assert host.latency is not None
    assert host.latency < 1


@pytest.mark.parametrize("kind", ["connect", "syn"])
async def test_results_stream_before_the_scan_ends(
    kind: str, listeners: tuple[list[int], list[int]]
) -> None:
    if kind == "syn" and not ROOT:
        pytest.skip("SYN scan needs root")
    open_ports, _ = listeners
    # 200 closed ports keep the scan busy after the first answers arrive.
    fn = pyscan.connect_scan if kind == "connect" else pyscan.syn_scan
    handle = fn("127.0.0.1", [*open_ports, *range(20000, 20200)], timing=3, max_retries=3)
    first_seen_while_running = None
    count = 0
    async for _result in handle:
        if first_seen_while_running is None:
            first_seen_while_running = not handle.done()
        count += 1
    assert first_seen_while_running is True
    assert count == 202
    report = await handle
    assert len(list(report.all_ports())) == 202


async def test_iterating_after_awaiting_is_an_error(listeners: tuple[list[int], list[int]]) -> None:
    handle = pyscan.connect_scan("127.0.0.1", listeners[0])
    await handle
    with pytest.raises(RuntimeError, match="iterate a scan before awaiting"):
        async for _ in handle:
            pass


@needs_root
async def test_cancelling_a_scan_leaves_no_socket_or_task() -> None:
    gc.collect()
    fds_before = _open_fds()
    tasks_before = len(asyncio.all_tasks())
    # 65535 ports at T2 (0.4 s between probes) run for hours: cancel one mid-way.
    handle = pyscan.syn_scan("127.0.0.1", "1-65535", timing=2)
    task = handle.start()
    await asyncio.sleep(0.3)
    assert not task.done()
    assert engine_mod._engines, "the engine is open while scanning"
    handle.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert not engine_mod._engines, "the engine closed its sockets"
    gc.collect()
    assert _open_fds() == fds_before
    assert len(asyncio.all_tasks()) == tasks_before


async def test_breaking_out_of_iteration_cancels_the_connect_scan() -> None:
    gc.collect()
    fds_before = _open_fds()
    handle = pyscan.connect_scan("127.0.0.1", "1-65535", timing=4)
    async for _ in handle:
        break
    # The abandoned iterator is finalised by the loop (asyncgen hooks), which cancels the scan.
    for _ in range(100):
        if handle.done():
            break
        await asyncio.sleep(0.01)
    assert handle.done()
    gc.collect()
    assert _open_fds() == fds_before


async def test_two_scans_share_one_engine(listeners: tuple[list[int], list[int]]) -> None:
    if not ROOT:
        pytest.skip("SYN scan needs root")
    open_ports, closed = listeners
    a, b = await asyncio.gather(
        pyscan.syn_scan("127.0.0.1", open_ports), pyscan.syn_scan("127.0.0.1", closed)
    )
    assert {p.state.value for p in a.all_ports()} == {"open"}
    assert {p.state.value for p in b.all_ports()} == {"closed"}
    assert not engine_mod._engines


def test_works_from_asyncio_run(listeners: tuple[list[int], list[int]]) -> None:
    report = asyncio.run(pyscan.connect_scan("127.0.0.1", listeners[0]).report())
    assert len(report.host("127.0.0.1").open_ports()) == 2


def test_privilege_error_names_the_capability(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(netutil, "has_raw_privilege", lambda: False)
    with pytest.raises(PrivilegeError, match=r"CAP_NET_RAW.*connect_scan \(-sT\)"):
        pyscan.syn_scan("127.0.0.1", "80")
    with pytest.raises(PrivilegeError, match="CAP_NET_RAW"):
        pyscan.udp_scan("127.0.0.1", "53")


def test_bad_options_raise_options_error() -> None:
    with pytest.raises(OptionsError):
        pyscan.connect_scan("127.0.0.1", "80", min_rate=10, max_rate=1)
    with pytest.raises(OptionsError):
        pyscan.connect_scan("127.0.0.1", "80", no_such_option=1)


def test_unknown_option_with_an_options_object_is_an_options_error() -> None:
    with pytest.raises(OptionsError, match="unknown scan option"):
        pyscan.connect_scan("127.0.0.1", "80", options=pyscan.ScanOptions(), bogus=1)


async def test_exclude_applies_to_a_target_spec_and_is_refused_for_a_target_set(
    listeners: tuple[list[int], list[int]],
) -> None:
    spec = pyscan.parse_targets("127.0.0.1-2")
    report = await pyscan.connect_scan(spec, listeners[0], exclude="127.0.0.2")
    assert [str(h.address) for h in report.hosts] == ["127.0.0.1"]
    with pytest.raises(OptionsError, match="TargetSet"):
        await pyscan.connect_scan(spec.resolved(), listeners[0], exclude="127.0.0.2")


@needs_root
async def test_a_fixed_source_port_is_used_for_every_probe(
    listeners: tuple[list[int], list[int]],
) -> None:
    open_ports, closed = listeners
    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    sport = probe.getsockname()[1]
    probe.close()
    report = await pyscan.syn_scan("127.0.0.1", open_ports + closed, source_port=sport)
    states = {p.port: p.state.value for p in report.all_ports()}
    assert states == {**dict.fromkeys(open_ports, "open"), **dict.fromkeys(closed, "closed")}


@pytest.mark.parametrize("kind", ["connect", "syn", "udp"])
async def test_shards_finish_and_partition_the_probe_space(kind: str) -> None:
    if kind != "connect" and not ROOT:
        pytest.skip("raw scans need root")
    fn = {"connect": pyscan.connect_scan, "syn": pyscan.syn_scan, "udp": pyscan.udp_scan}[kind]
    shards = []
    for i in range(3):  # no seed: the shards must still split one permutation
        report = await asyncio.wait_for(fn("127.0.0.1", "1-40", shard=(i, 3), timing=4), 60)
        shards.append([p.port for p in report.all_ports()])
    flat = [port for shard in shards for port in shard]
    assert sorted(flat) == list(range(1, 41))  # disjoint, and together every port
    assert all(shards)


@needs_root
async def test_scan_with_discovery_shards_by_host() -> None:
    seen = []
    for i in range(2):
        report = await asyncio.wait_for(pyscan.scan("127.0.0.1-4", "22", shard=(i, 2)), 60)
        seen.append({str(h.address) for h in report.hosts})
        assert all(len(h.ports) == 1 for h in report.hosts)  # each host scanned whole
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == {f"127.0.0.{n}" for n in range(1, 5)}


@pytest.mark.parametrize("streamed", [False, True], ids=["awaited", "iterated"])
@pytest.mark.parametrize("kind", ["connect", "syn"])
def test_a_finished_scan_leaves_no_cycle_holding_its_results(
    listeners: tuple[list[int], list[int]], kind: str, streamed: bool
) -> None:
    # The results go with the report, freed by reference counting: nothing of the scan
    # (scanner -> the handle's emit -> the handle -> the run -> the scanner) keeps them in
    # a cycle for the garbage collector (which, at exit, took ~0.2 s for 65,535).
    import weakref  # noqa: PLC0415

    if kind == "syn" and not ROOT:
        pytest.skip("SYN scan needs root")
    open_ports, closed = listeners
    scan = pyscan.syn_scan if kind == "syn" else pyscan.connect_scan

    async def run(handle: pyscan.ScanHandle[pyscan.PortResult]) -> pyscan.ScanReport:
        if streamed:
            async for _ in handle:
                pass
        return await handle

    gc.collect()
    gc.disable()
    try:
        handle = scan("127.0.0.1", open_ports + closed, timing=5)
        report = asyncio.run(run(handle))
        alive = weakref.ref(report.hosts[0].ports[0])
        progress = handle.progress()
        assert progress.done == progress.total == len(open_ports + closed)
        del report, handle
        assert alive() is None
    finally:
        gc.enable()


async def test_a_scan_hands_results_over_one_by_one_only_when_iterated() -> None:
    # Awaited, the scan gets no emit (None) and may make its results at the end (the
    # connect scan does, for closed ports); iterated, it gets one that queues each result.
    got: list[object] = []

    async def go(emit: object) -> pyscan.ScanReport:
        got.append(emit)
        if callable(emit):
            emit("a result")
        return pyscan.ScanReport()

    await pyscan.ScanHandle(go)
    streamed = [r async for r in pyscan.ScanHandle(go)]
    assert got[0] is None
    assert callable(got[1])
    assert streamed == ["a result"]


def test_merge_groups_results_by_host_one_host_or_many() -> None:
    from pyscan._api import _make_run, _merge  # noqa: PLC0415
    from pyscan._models import PortResult, PortState, Reason, ReasonKind  # noqa: PLC0415

    refused = Reason(ReasonKind.CONN_REFUSED)

    def result(address: str, port: int, state: PortState = PortState.CLOSED) -> PortResult:
        return PortResult(ipaddress.ip_address(address), "tcp", port, state, refused)

    def merged(*batches: list[PortResult]) -> dict[str, list[tuple[int, str]]]:
        run = _make_run(None, {}, ("connect",), None, False, None)
        for batch in batches:
            _merge(run, batch)
        return {
            str(h.address): [(p.port, p.state.value) for p in h.ports]
            for h in run.report("test").hosts
        }

    one = ipaddress.ip_address("127.0.0.1")
    shared = [PortResult(one, "tcp", p, PortState.CLOSED, refused) for p in (3, 1, 2)]
    # one host, one address object: the fast path; a later batch's result for a port wins
    assert merged(shared, [result("127.0.0.1", 2, PortState.OPEN)]) == {
        "127.0.0.1": [(1, "closed"), (2, "open"), (3, "closed")]
    }
    # equal addresses in different objects, and several hosts: merged by address all the same
    mixed = [result("127.0.0.2", 5), result("127.0.0.1", 4), *shared, result("127.0.0.2", 1)]
    assert merged(mixed) == {
        "127.0.0.2": [(1, "closed"), (5, "closed")],
        "127.0.0.1": [(1, "closed"), (2, "closed"), (3, "closed"), (4, "closed")],
    }
    assert merged([]) == {}


@pytest.mark.parametrize("kind", ["connect", "syn"])
async def test_an_interrupted_port_scan_resumes_where_it_stopped(kind: str) -> None:
    if kind == "syn" and not ROOT:
        pytest.skip("SYN scan needs root")
    from pyscan._specs.permutation import Permutation  # noqa: PLC0415

    scan = pyscan.connect_scan if kind == "connect" else pyscan.syn_scan
    opts: dict[str, object] = {"seed": 7, "timing": 4}
    full = await scan("127.0.0.1", "1-20000", **opts)
    want = {p.port: p.state for p in full.all_ports()}
    assert len(want) == 20000

    handle = scan("127.0.0.1", "1-20000", **opts)
    first: dict[int, pyscan.PortState] = {}
    async for result in handle:
        first[result.port] = result.state
        if len(first) >= 5000:
            break  # cancels the scan
    position = handle.progress().resume_from
    assert position is not None
    assert len(first) >= position  # every probe before it was decided ...
    perm = Permutation(20000, 7)
    assert all(perm.at(p) + 1 in first for p in range(position))  # ... by this run
    assert position < 20000

    rest = await scan("127.0.0.1", "1-20000", resume_from=position, **opts)
    second = {p.port: p.state for p in rest.all_ports()}
    assert len(second) == 20000 - position  # the tail of the order, nothing more
    assert {perm.at(p) + 1 for p in range(position, 20000)} == set(second)
    merged = {**{port: first[port] for port in (perm.at(p) + 1 for p in range(position))}}
    merged.update(second)
    assert merged == want


async def _resume_point_midway(handle: pyscan.ScanHandle[pyscan.PortResult]) -> int | None:
    """Iterate ``handle`` until 200 ports are decided; its resume point then (it stops)."""
    taken = 0
    async for _result in handle:
        taken += 1
        if taken >= 200:
            break
    return handle.progress().resume_from


async def test_the_resume_point_is_given_only_where_a_rerun_could_use_it() -> None:
    scan = pyscan.connect_scan
    assert await _resume_point_midway(scan("127.0.0.1", "1-5000", seed=3)) is not None
    assert (
        await _resume_point_midway(scan("127.0.0.1", "1-5000", randomize_ports=False)) is not None
    )
    # a random order, not to be walked again: resume_from= would be refused
    assert await _resume_point_midway(scan("127.0.0.1", "1-5000")) is None


@pytest.mark.skipif(not ROOT, reason="SYN and UDP scans need root")
async def test_no_resume_point_with_two_scan_types_or_discovery() -> None:
    both = pyscan.scan(
        "127.0.0.1", "T:1-5000,U:1", scan_types=("syn", "udp"), skip_discovery=True, seed=3
    )
    assert await _resume_point_midway(both) is None
    syn = pyscan.scan("127.0.0.1", "1-5000", scan_types=("syn",), seed=3)  # with discovery
    assert await _resume_point_midway(syn) is None
    syn = pyscan.scan("127.0.0.1", "1-5000", scan_types=("syn",), skip_discovery=True, seed=3)
    assert await _resume_point_midway(syn) is not None
