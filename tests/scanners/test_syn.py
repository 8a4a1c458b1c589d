"""The SYN scan state machine against a simulated network: states, reasons, retries,
forgeries, probe budgets."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from pyscan._models import IPAddress, PortState, ReasonKind
from pyscan._scanners._common import Cookie
from pyscan._specs.permutation import Permutation, ProbeOrder
from pyscan._wire.packet import build_tcp_packet, parse_packet
from pyscan._wire.tcp import TCPFlags
from pyscan.testing.fakenet import (
    CLOSED,
    DROP,
    OPEN,
    FakeHost,
    FakeNetwork,
    PortRule,
    Reject,
    run_scanner,
    stray_packets,
)

from ._sim import (
    KEY,
    ME4,
    ROUTER4,
    ROUTER6,
    SRC_PORTS,
    UNREACH4,
    Run,
    check_port_invariant,
    expected_syn,
    port_run,
    target,
    tries,
)

CODES = [0, 1, 2, 3, 9, 10, 13]
PORTS = [21, 22, 23, 25, 80, 110, 443, 8080] + [1000 + c for c in CODES] + [2000 + c for c in CODES]


def truth4() -> dict[IPAddress, FakeHost]:
    """Several hosts with every rule: open, closed, dropped, and each ICMP code from the
    host itself (1000 + code) and from a router (2000 + code); different TTLs."""
    rules: dict[int, PortRule] = {22: OPEN, 80: OPEN, 443: CLOSED, 8080: DROP, 25: DROP}
    rules.update({1000 + c: Reject(c) for c in CODES})
    rules.update({2000 + c: Reject(c, ROUTER4, ttl=250) for c in CODES})
    return {
        target(0): FakeHost(tcp=rules, ttl=64),
        target(1): FakeHost(tcp={21: OPEN, 23: OPEN, 110: CLOSED}, ttl=128, tcp_default=DROP),
        target(2): FakeHost.silent(),
        target(3): FakeHost(unreachable=Reject(1, ROUTER4, ttl=253)),
        target(4): FakeHost(ttl=255, delay=0.03),  # all closed, a little further away
    }


def scan(net: FakeNetwork, hosts: list[IPAddress], ports: list[int] = PORTS, **kw: Any) -> Run:
    run = port_run("syn", net, hosts, ports, **kw)
    # Lossy runs are slow in simulated time (scan delay boosted to 1 s), not in real time.
    run_scanner(run.scanner, net, run.clock, max_time=3000)
    return run


def test_every_state_and_reason_is_exact() -> None:
    net = FakeNetwork(truth4(), delay=0.01)
    hosts = [*net.hosts, target(5)]  # target(5): absent, nothing answers
    run = scan(net, hosts)
    got = run.by_port()
    assert len(got) == len(hosts) * len(PORTS) == len(run.results)
    for (addr, port), result in got.items():
        state, reason = expected_syn(net, addr, port)
        assert (result.protocol, result.state, result.reason) == ("tcp", state, reason), (
            addr,
            port,
        )
    # Spot checks written out in full, so the oracle above cannot hide a shared mistake.
    t0, t1 = target(0), target(1)
    assert got[(t0, 22)].state is PortState.OPEN
    assert got[(t0, 22)].reason.kind is ReasonKind.SYN_ACK
    assert got[(t0, 22)].reason.ttl == 64
    assert got[(t1, 23)].reason.ttl == 128
    assert got[(t0, 443)].state is PortState.CLOSED
    assert got[(t0, 443)].reason.kind.value == "reset"
    assert got[(t0, 8080)].state is PortState.FILTERED
    assert got[(t0, 8080)].reason.kind.value == "no-response"
    for code in CODES:
        own, routed = got[(t0, 1000 + code)], got[(t0, 2000 + code)]
        assert own.state is routed.state is PortState.FILTERED
        assert own.reason.kind is routed.reason.kind is UNREACH4[code]
        assert (own.reason.ip, own.reason.ttl) == (t0, 64)
        assert (routed.reason.ip, routed.reason.ttl) == (ROUTER4, 250)
    assert got[(target(3), 80)].reason.kind.value == "host-unreach"
    assert got[(target(3), 80)].reason.ip == ROUTER4
    assert got[(target(4), 80)].reason.ttl == 255
    assert Counter(r.state for r in run.results)[PortState.OPEN] == 4


def test_ipv6_states_and_reasons() -> None:
    h = target(0, v6=True)
    rules = {22: OPEN, 23: CLOSED, 24: DROP, 30: Reject(0), 31: Reject(1), 33: Reject(3)}
    rules[34] = Reject(4, ROUTER6, ttl=60)
    net = FakeNetwork({h: FakeHost(tcp=rules, ttl=57)})  # type: ignore[arg-type]
    ports = sorted(rules)
    run = scan(net, [h, target(9, v6=True)], ports)
    got = run.by_port()
    for (addr, port), result in got.items():
        assert (result.state, result.reason) == expected_syn(net, addr, port), (addr, port)
    assert got[(h, 22)].reason.ttl == 57
    assert got[(h, 31)].reason.kind is ReasonKind.ADMIN_PROHIBITED
    assert got[(h, 34)].reason.ip == ROUTER6
    assert all(p.packet.version == 6 for p in net.probes)


def test_probe_budget_without_loss() -> None:
    """No loss: one probe per port that answers, 1 + retries_allowed (= 2 at the start)
    per silent one, and nothing else: no retransmission storm."""
    net = FakeNetwork(truth4(), delay=0.01)
    hosts = list(net.hosts)
    run = scan(net, hosts)
    for addr in hosts:
        for port in PORTS:
            sent = tries(net, addr, "tcp", port)
            _, reason = expected_syn(net, addr, port)
            if reason.kind is ReasonKind.NO_RESPONSE:
                allowed = run.scanner.host_timing(hosts.index(addr), 0.0).retries_allowed
                assert allowed == 1
                assert len(sent) == 1 + allowed, (addr, port)
            else:
                assert len(sent) == 1, (addr, port)
            # Each try leaves from the source port of its try number, same cookie host/port.
            assert [p.src_port for p in sent] == SRC_PORTS[: len(sent)]
            assert len({p.packet.tcp.seq for p in sent}) == len(sent)  # type: ignore[union-attr]
    assert run.scanner.packets_sent == len(net.probes)
    assert run.scanner.done


@pytest.mark.parametrize("retries", [0, 3])
def test_max_retries_caps_tries_of_silent_ports(retries: int) -> None:
    net = FakeNetwork({target(0): FakeHost.silent()})
    run = scan(net, [target(0)], [1, 2, 3], max_retries=retries)
    for port in (1, 2, 3):
        assert len(tries(net, target(0), "tcp", port)) == 1 + min(retries, 1)
    assert {r.state for r in run.results} == {PortState.FILTERED}


@pytest.mark.parametrize(("loss", "seed"), [(0.05, 1), (0.05, 2), (0.1, 3), (0.2, 5)])
def test_lossy_network_open_ports_still_found(loss: float, seed: int) -> None:
    hosts = {
        target(i): FakeHost(
            tcp=dict.fromkeys(range(100 + i, 300, 5), OPEN), tcp_default=CLOSED if i else DROP
        )
        for i in range(3)
    }
    net = FakeNetwork(hosts, delay=0.005, loss=loss, seed=seed)
    ports = list(range(100, 300))
    run = scan(net, list(hosts), ports, order_seed=seed)
    counts = check_port_invariant(run, "syn", ports)
    n_open = sum(len(h.tcp) for h in hosts.values())
    found = sum(1 for r in run.results if r.state is PortState.OPEN)
    # Every miss is a probe all of whose tries were lost (checked above), and there are few.
    assert found == n_open - sum(
        1
        for (a, p), r in run.by_port().items()
        if hosts[a].rule("tcp", p) == OPEN and r.state is not PortState.OPEN
    )
    # Like nmap, the first probes get one retransmission until answers to retransmissions
    # show that more are needed, so a probe can lose both tries (about 1 % at 5 % loss each
    # way): a miss is only ever such a probe (checked above).
    assert found >= 0.97 * n_open
    assert counts["all_lost"] <= 0.03 * len(run.results)
    # Answers to retransmissions raised the retry allowance above its starting value of 1.
    allowances = [run.scanner.host_timing(i, 0.0).retries_allowed for i in range(3)]
    assert max(allowances) > 1
    # ... and no probe ever goes out more than 1 + max_retries times.
    per_probe = Counter((p.dst, p.dst_port) for p in net.probes)
    assert max(per_probe.values()) <= 1 + 10


def test_retry_allowance_stays_at_one_without_loss() -> None:
    hosts = {target(0): FakeHost(tcp=dict.fromkeys(range(100, 200, 3), OPEN), tcp_default=DROP)}
    net = FakeNetwork(hosts, delay=0.005)
    run = scan(net, list(hosts), list(range(100, 200)))
    assert run.scanner.host_timing(0, 0.0).retries_allowed == 1
    per_probe = Counter(p.dst_port for p in net.probes)
    assert max(per_probe.values()) == 2


def test_forgeries_strays_and_duplicates_change_nothing() -> None:
    truth = truth4()
    clean = scan(FakeNetwork(truth, delay=0.01), list(truth))
    net = FakeNetwork(truth, delay=0.01, forge=True, duplicate=0.5, seed=3)
    run = port_run("syn", net, list(truth), PORTS)
    rng = random.Random(7)
    for i, pkt in enumerate(stray_packets(rng, dst=ME4, ports=SRC_PORTS, count=400, avoid=truth)):
        net.inject(pkt, at=i * 0.003)
    run_scanner(run.scanner, net, run.clock, max_time=300)
    kinds = Counter(d.kind for d in net.deliveries)
    assert kinds["forged"] > 10 * len(PORTS)
    assert kinds["duplicate"] > 10
    assert kinds["stray"] > 100
    assert {k: (r.state, r.reason) for k, r in run.by_port().items()} == {
        k: (r.state, r.reason) for k, r in clean.by_port().items()
    }
    # Only genuine answers were matched: one per port that answers.
    answered = sum(1 for r in clean.results if r.reason.kind is not ReasonKind.NO_RESPONSE)
    assert run.scanner.packets_matched == answered


def test_right_cookie_from_unprobed_port_or_other_address_is_ignored() -> None:
    net = FakeNetwork({target(0): FakeHost(tcp_default=DROP)})
    run = port_run("syn", net, [target(0)], [80])
    sc = run.scanner
    cookie = Cookie(KEY)
    assert sc.poll(0.0, 10) == [(0, 0)]

    def answer(src: object, sport: int, dport: int, ack: int, flags: TCPFlags) -> bool:
        data = build_tcp_packet(
            src=src,  # type: ignore[arg-type]
            dst=ME4,
            src_port=sport,
            dst_port=dport,
            seq=1,
            ack=ack & 0xFFFFFFFF,
            flags=flags,
        )
        return bool(sc.receive(parse_packet(data), 0.01))

    sa = TCPFlags.SYN | TCPFlags.ACK
    t0 = target(0)
    sp = SRC_PORTS[0]
    # Unprobed port, with the cookie a probe to it would carry.
    assert not answer(t0, 81, sp, cookie(t0.packed, 81, sp) + 1, sa)
    # Right cookie, but from another address.
    assert not answer(target(1), 80, sp, cookie(t0.packed, 80, sp) + 1, sa)
    # To a source port that is not ours.
    assert not answer(t0, 80, 39999, cookie(t0.packed, 80, 39999) + 1, sa)
    # The cookie itself, not cookie + 1, and a bare ACK.
    assert not answer(t0, 80, sp, cookie(t0.packed, 80, sp), sa)
    assert not answer(t0, 80, sp, cookie(t0.packed, 80, sp) + 1, TCPFlags.ACK)
    assert sc.n_decided == 0
    assert not run.results
    # The genuine answer is accepted, once.
    assert answer(t0, 80, sp, cookie(t0.packed, 80, sp) + 1, sa)
    assert not answer(t0, 80, sp, cookie(t0.packed, 80, sp) + 1, TCPFlags.RST | TCPFlags.ACK)
    assert [(r.port, r.state) for r in run.results] == [(80, PortState.OPEN)]


def test_answer_to_a_later_try_uses_that_tries_source_port() -> None:
    """An answer to a retransmission (which left from the next source port) is matched."""
    truth = {target(0): FakeHost(tcp={80: OPEN})}
    net = FakeNetwork(truth, lose=lambda rec: rec.src_port == SRC_PORTS[0])
    run = scan(net, [target(0)], [80])
    assert [(r.state, r.reason.kind) for r in run.results] == [(PortState.OPEN, ReasonKind.SYN_ACK)]
    assert [p.src_port for p in net.probes] == SRC_PORTS[:2]
    assert run.scanner.host_timing(0, 0.0).retries_allowed == 2


def test_replayed_answers_after_the_scan_change_nothing() -> None:
    net = FakeNetwork(truth4(), delay=0.01)
    run = scan(net, list(net.hosts))
    before = list(run.results)
    for d in list(net.deliveries):
        assert not run.scanner.receive(parse_packet(d.data), run.clock.now + 1)
    assert run.results == before


def test_done_means_quiet() -> None:
    net = FakeNetwork(truth4(), delay=0.01)
    run = scan(net, list(net.hosts))
    sc = run.scanner
    assert sc.done
    assert sc.in_flight == 0
    assert not sc.pending_send()
    assert sc.n_decided == sc.total == len(run.results)
    later = run.clock.now + 100
    assert sc.poll(later, 1000) == []
    assert sc.packets_sent == len(net.probes)
    assert all(sc.is_decided(i) for i in range(sc.total))
    deadline = sc.next_deadline()
    assert deadline is None or sc.poll(max(deadline, later), 1000) == []


def test_empty_scan_is_done_at_once() -> None:
    net = FakeNetwork({})
    run = port_run("syn", net, [], [80])
    assert run.scanner.done
    assert run_scanner(run.scanner, net, run.clock) == 0.0
    assert net.probes == []


def test_many_hosts_interleave_and_finish() -> None:
    truth = {target(i): FakeHost(tcp={22: OPEN}) for i in range(40)}
    net = FakeNetwork(truth, delay=0.002)
    run = scan(net, list(truth), [22, 80, 443])
    assert len(run.results) == 120
    assert sum(r.state is PortState.OPEN for r in run.results) == 40
    assert len(net.probes) == 120


class _InterruptedError(Exception):
    pass


@pytest.mark.parametrize(
    ("loss", "delay"),
    [(0.0, 0.0), (0.2, 0.0), (0.0, 0.02)],
    ids=["clean", "lossy", "scan-delay"],
)
@pytest.mark.parametrize("stop_at", [3, 12, 30])
def test_resume_point_and_a_resumed_run_decide_every_probe(
    loss: float, delay: float, stop_at: int
) -> None:
    # A scan is interrupted after ``stop_at`` polls; a second scanner resumes its probe
    # order at the first scan's resume point. Together they decide every probe, each as the
    # truth says; before the point, every probe was decided by the first run. (Losses send
    # probes back for retries; a scan delay parks probes taken from the order.)
    hosts = [*truth4(), target(5)]
    total = len(hosts) * len(PORTS)
    perm = Permutation(total, 99)
    first = ProbeOrder(perm)
    net = FakeNetwork(truth4(), delay=0.01, loss=loss, seed=stop_at)
    run1 = port_run("syn", net, hosts, PORTS, order=first, max_retries=2, scan_delay=delay)
    points: list[int] = []
    polls = 0

    def check(_now: float, _sent: list[tuple[int, int]]) -> None:
        nonlocal polls
        decided = run1.scanner.is_decided
        taken = {perm.at(p) for p in range(first.given)}
        assert set(run1.scanner.undecided_taken()) == {i for i in taken if not decided(i)}
        point = first.resume_point(run1.scanner.undecided_taken())
        # exactly the first position taken and not decided (all taken and decided: given)
        lowest = (p for p in range(first.given) if not decided(perm.at(p)))
        assert point == next(lowest, first.given)
        assert not points or point >= points[-1]  # it only moves on
        points.append(point)
        polls += 1
        if polls == stop_at:
            raise _InterruptedError

    with pytest.raises(_InterruptedError):
        run_scanner(run1.scanner, net, run1.clock, max_time=3000, batch=16, after_poll=check)
    point = points[-1]
    assert 0 < point < total  # interrupted mid-way, with probes decided and left
    second = ProbeOrder(perm, start=point)
    net2 = FakeNetwork(truth4(), delay=0.01, loss=loss, seed=stop_at + 1)
    run2 = port_run("syn", net2, hosts, PORTS, order=second, expected=second.size, max_retries=2)
    run_scanner(run2.scanner, net2, run2.clock, max_time=3000)
    assert run2.scanner.n_decided == total - point
    before = {perm.at(p) for p in range(point)}
    merged = {}
    for r in run1.results:
        index = hosts.index(r.address) * len(PORTS) + PORTS.index(r.port)
        if index in before:
            merged[(r.address, r.port)] = r
    for r in run2.results:
        merged[(r.address, r.port)] = r
    assert len(merged) == total
    if loss == 0.0:  # with loss, a silenced answer is a fair "filtered"
        for (addr, port), result in merged.items():
            assert (result.state, result.reason) == expected_syn(net, addr, port)


@pytest.mark.parametrize("kind", ["syn", "udp"])
def test_without_emit_results_are_made_after_the_scan(kind: str) -> None:
    # nobody takes results one by one (an awaited scan): decisions are kept as (index,
    # outcome) pairs, no PortResult is made in the scan's loop, and the results made
    # afterwards, in chunks or at once, are those an emitting scan gives
    def net() -> FakeNetwork:
        host = FakeHost(
            tcp={22: OPEN, 23: DROP, 25: CLOSED}, tcp_default=CLOSED,
            udp={53: OPEN, 54: DROP}, udp_default=CLOSED,
        )  # fmt: skip
        return FakeNetwork({target(0): host, target(1): FakeHost.silent()})

    ports = list(range(20, 60))
    hosts = [target(0), target(1)]
    emitting = port_run(kind, net(), hosts, ports, timing=5, max_retries=1)
    run_scanner(emitting.scanner, emitting.net, emitting.clock, max_time=600)
    quiet = port_run(kind, net(), hosts, ports, timing=5, max_retries=1)
    quiet.scanner.emit = None
    run_scanner(quiet.scanner, quiet.net, quiet.clock, max_time=600)
    scanner = quiet.scanner
    assert scanner.done
    assert not quiet.emitted
    assert scanner._made == []
    assert len(scanner._later_index) == 80
    assert scanner.make_later(30) == 50
    assert scanner.make_later(30) == 20
    assert len(scanner._made) == 60
    made = scanner.results  # the rest, at once
    assert scanner.make_later(30) == 0
    assert scanner.results is made
    key = lambda r: (r.address, r.port)  # noqa: E731
    assert sorted(made, key=key) == sorted(emitting.results, key=key)
    assert {r.state for r in made} >= {PortState.OPEN, PortState.CLOSED}
