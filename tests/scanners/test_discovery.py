"""Raw host discovery against a simulated network: each probe type on its own, latency,
down hosts, router errors, settling a host's other probes, forgeries."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyscan._models import HostStatus, IPAddress, ReasonKind
from pyscan._scanners.discovery import DEFAULT_PROBES, DiscoveryProbe
from pyscan._wire.packet import build_tcp_packet, parse_packet
from pyscan._wire.tcp import TCPFlags
from pyscan.testing.fakenet import (
    CLOSED,
    DROP,
    OPEN,
    FakeHost,
    FakeNetwork,
    Reject,
    icmp_unreachable,
    run_scanner,
    stray_packets,
)
from strategies import fakenet_truth

from ._sim import ICMP_ID, ME4, ROUTER4, SRC_PORTS, Run, discovery_run, target

NOTHING = {"tcp_default": DROP, "udp_default": DROP, "echo": False, "timestamp": False}


def only(**kw: Any) -> FakeHost:
    """A host that answers nothing except what ``kw`` turns on."""
    return FakeHost(**{**NOTHING, **kw})


def discover(net: FakeNetwork, hosts: list[IPAddress], **kw: Any) -> Run:
    run = discovery_run(net, hosts, **kw)
    run_scanner(run.scanner, net, run.clock, max_time=600)
    return run


CASES = {
    "echo": (only(echo=True), ReasonKind.ECHO_REPLY),
    "syn443-synack": (only(tcp={443: OPEN}), ReasonKind.SYN_ACK),
    "syn443-rst": (only(tcp={443: CLOSED}), ReasonKind.RESET),
    "ack80-rst-open": (only(tcp={80: OPEN}), ReasonKind.RESET),
    "ack80-rst-closed": (only(tcp={80: CLOSED}), ReasonKind.RESET),
    "timestamp": (only(timestamp=True), ReasonKind.TIMESTAMP_REPLY),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_each_probe_type_alone_finds_the_host_up(case: str) -> None:
    host, kind = CASES[case]
    net = FakeNetwork({target(0): host, target(1): FakeHost.silent()}, delay=0.015)
    run = discover(net, [target(0), target(1)])
    got = run.by_host()
    up = got[target(0)]
    assert (up.status, up.reason.kind, up.reason.ttl) == (HostStatus.UP, kind, 64)
    assert up.latency == pytest.approx(0.03)
    down = got[target(1)]
    assert (down.status, down.reason.kind, down.latency) == (
        HostStatus.DOWN,
        ReasonKind.NO_RESPONSE,
        None,
    )


def test_udp_probe_up_by_reply_or_port_unreachable() -> None:
    probes = [DiscoveryProbe("udp", 53)]
    net = FakeNetwork(
        {target(0): only(udp={53: OPEN}), target(1): only(udp={53: CLOSED})}, delay=0.01
    )
    got = discover(net, [target(0), target(1)], probes=probes).by_host()
    assert got[target(0)].reason.kind is ReasonKind.UDP_RESPONSE
    assert got[target(1)].status is HostStatus.UP
    assert got[target(1)].reason.kind is ReasonKind.PORT_UNREACH


def test_latency_is_the_round_trip_of_each_host() -> None:
    delays = [0.001, 0.02, 0.15]
    net = FakeNetwork({target(i): FakeHost(delay=d) for i, d in enumerate(delays)})
    got = discover(net, [target(i) for i in range(3)]).by_host()
    for i, d in enumerate(delays):
        assert got[target(i)].latency == pytest.approx(2 * d)


def test_down_hosts_after_retries() -> None:
    net = FakeNetwork({target(0): FakeHost.silent()}, delay=0.01)
    run = discover(net, [target(0), target(1)])
    for h in (target(0), target(1)):
        r = run.by_host()[h]
        assert (r.status, r.reason.kind) == (HostStatus.DOWN, ReasonKind.NO_RESPONSE)
        # Every probe type, 1 + retries allowed (1) tries each.
        sent = [p for p in net.probes if p.dst == h]
        assert len(sent) == 2 * len(DEFAULT_PROBES)
        kinds = sorted((p.protocol, p.dst_port or p.icmp_type) for p in sent)
        assert kinds == sorted(2 * [("icmp", 8), ("tcp", 443), ("tcp", 80), ("icmp", 13)])


def test_router_host_unreachable_is_the_reason_for_a_down_host() -> None:
    net = FakeNetwork({target(0): FakeHost(unreachable=Reject(1, ROUTER4, ttl=251))})
    r = discover(net, [target(0)]).by_host()[target(0)]
    assert r.status is HostStatus.DOWN
    assert (r.reason.kind, r.reason.ip, r.reason.ttl) == (ReasonKind.HOST_UNREACH, ROUTER4, 251)


def test_error_from_the_target_itself_means_up() -> None:
    net = FakeNetwork({target(0): only(tcp={443: Reject(13)})})
    r = discover(net, [target(0)]).by_host()[target(0)]
    assert r.status is HostStatus.UP
    assert r.reason.kind is ReasonKind.ADMIN_PROHIBITED


def test_an_answer_settles_the_hosts_other_probes() -> None:
    """One probe at a time: once the echo reply is in, nothing more goes to the host."""
    net = FakeNetwork({target(0): only(echo=True)}, delay=0.01)
    run = discover(net, [target(0)], order_seed=None, max_parallelism=1)
    [r] = run.results
    assert r.reason.kind is ReasonKind.ECHO_REPLY
    assert [p.icmp_type for p in net.probes] == [8]
    assert run.scanner.done
    assert run.scanner.in_flight == 0


def test_an_answer_cancels_retransmissions_of_the_other_probes() -> None:
    """All four probes go out together; the timestamp reply decides the host and the three
    silent probes are never retransmitted."""
    net = FakeNetwork({target(0): only(timestamp=True), target(1): FakeHost.silent()})
    discover(net, [target(0), target(1)])
    assert len([p for p in net.probes if p.dst == target(0)]) == len(DEFAULT_PROBES)
    assert len([p for p in net.probes if p.dst == target(1)]) == 2 * len(DEFAULT_PROBES)


def test_many_hosts_each_decided_once() -> None:
    rng = random.Random(3)
    truth = {
        target(i): rng.choice([FakeHost(), only(echo=True), only(tcp={80: CLOSED})])
        for i in range(0, 60, 2)
    }
    hosts = [target(i) for i in range(60)]
    run = discover(FakeNetwork(truth, delay=0.003), hosts)
    got = run.by_host()
    assert len(run.results) == 60
    assert {h for h, r in got.items() if r.status is HostStatus.UP} == set(truth)


def test_ipv6_echo() -> None:
    h = target(0, v6=True)
    net = FakeNetwork({h: FakeHost()}, delay=0.01)
    probes = [DiscoveryProbe("echo"), DiscoveryProbe("syn", 443)]
    r = discover(net, [h, target(1, v6=True)], probes=probes).by_host()
    assert r[h].status is HostStatus.UP
    assert r[h].reason.kind in (ReasonKind.ECHO_REPLY, ReasonKind.RESET)
    assert r[target(1, v6=True)].status is HostStatus.DOWN


@pytest.mark.parametrize("with_loss", [False, True])
def test_icmp_forgeries_and_strays_change_nothing(with_loss: bool) -> None:
    probes = [DiscoveryProbe("echo"), DiscoveryProbe("timestamp")]
    truth = {target(0): only(echo=True), target(1): only(timestamp=True), target(2): only()}
    hosts = [target(i) for i in range(4)]
    net = FakeNetwork(truth, forge=True, duplicate=0.3, seed=2, loss=0.1 if with_loss else 0)
    run = discovery_run(net, hosts, probes=probes)
    rng = random.Random(5)
    strays = stray_packets(rng, dst=ME4, ports=SRC_PORTS, count=200, icmp_ids=[ICMP_ID])
    for i, pkt in enumerate(strays):
        net.inject(pkt, at=i * 0.01)
    run_scanner(run.scanner, net, run.clock, max_time=600)
    got = run.by_host()
    for h in (target(2), target(3)):
        assert got[h].status is HostStatus.DOWN
    if not with_loss:
        assert got[target(0)].reason.kind is ReasonKind.ECHO_REPLY
        assert got[target(1)].reason.kind is ReasonKind.TIMESTAMP_REPLY


def test_forged_icmp_error_quoting_a_wrong_syn_cookie_does_not_make_a_host_up() -> None:
    net = FakeNetwork({})
    run = discovery_run(net, [target(0)], probes=[DiscoveryProbe("syn", 443)])
    sc = run.scanner
    assert sc.poll(0.0, 10) == [(0, 0)]
    forged_probe = build_tcp_packet(
        src=ME4, dst=target(0), src_port=SRC_PORTS[0], dst_port=443, seq=12345,
        flags=TCPFlags.SYN,
    )  # fmt: skip
    err = icmp_unreachable(parse_packet(forged_probe), sender=target(0), code=13)
    sc.receive(parse_packet(err), 0.01)
    run_scanner(sc, net, run.clock, max_time=60)
    assert run.by_host()[target(0)].status is HostStatus.DOWN


def test_all_forgeries_change_nothing_with_default_probes() -> None:
    truth = {target(0): FakeHost(), target(1): FakeHost.silent()}
    net = FakeNetwork(truth, forge=True)
    got = discover(net, [target(0), target(1), target(2)]).by_host()
    assert got[target(0)].status is HostStatus.UP
    assert got[target(1)].status is got[target(2)].status is HostStatus.DOWN


def _answers_discovery(host: FakeHost) -> bool:
    """Whether a host answers at least one of the default probes itself."""
    if host.unreachable is not None:
        return False
    if host.echo or host.timestamp:
        return True
    for port in (443, 80):
        rule = host.rule("tcp", port)
        if rule in (OPEN, CLOSED) or (isinstance(rule, Reject) and rule.sender is None):
            return True
    return False


@settings(max_examples=60, deadline=None, derandomize=True)
@given(table=fakenet_truth(max_hosts=4, max_ports=1), delay=st.sampled_from([0.0, 0.01, 0.2]))
def test_up_exactly_when_the_host_answers_something(table: Any, delay: float) -> None:
    truth, targets, _ = table
    run = discover(FakeNetwork(truth, delay=delay), targets)
    got = run.by_host()
    assert set(got) == set(targets)
    for addr in targets:
        host = truth.get(addr)
        up = host is not None and _answers_discovery(host)
        assert got[addr].status is (HostStatus.UP if up else HostStatus.DOWN), (addr, host)
        if up:
            assert got[addr].latency == pytest.approx(2 * delay)
