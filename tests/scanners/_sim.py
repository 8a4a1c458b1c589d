"""Shared set-up for the scanner tests: addresses, scanners wired to a FakeNetwork, the
expected result of each truth-table rule (written out here, independently of the code under
test), and the invariant checks."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterator, Sequence
from typing import Any

import attrs

from pyscan._core.rate import RateLimiter
from pyscan._core.timing import TimingParams
from pyscan._models import HostResult, IPAddress, PortResult, PortState, Reason, ReasonKind
from pyscan._options import ScanOptions
from pyscan._scanners._common import Cookie
from pyscan._scanners.discovery import DEFAULT_PROBES, DiscoveryProbe, DiscoveryScanner
from pyscan._scanners.syn import SynScanner
from pyscan._scanners.udp import UdpScanner
from pyscan.testing.fakenet import (
    CLOSED,
    DROP,
    OPEN,
    FakeHost,
    FakeNetwork,
    ManualClock,
    PortRule,
    ProbeRecord,
    Reject,
)

ip = ipaddress.ip_address

ME4 = ipaddress.IPv4Address("192.0.2.1")
ME6 = ipaddress.IPv6Address("2001:db8::1")
ROUTER4 = ipaddress.IPv4Address("192.0.2.254")
ROUTER6 = ipaddress.IPv6Address("2001:db8::fe")
SRC_PORTS = list(range(40000, 40011))
KEY = b"pyscan-test-key!"
ICMP_ID = 0x4242

# The reasons nmap gives each ICMPv4 / ICMPv6 destination-unreachable code.
UNREACH4 = {
    0: ReasonKind.NET_UNREACH,
    1: ReasonKind.HOST_UNREACH,
    2: ReasonKind.PROTO_UNREACH,
    3: ReasonKind.PORT_UNREACH,
    9: ReasonKind.NET_PROHIBITED,
    10: ReasonKind.HOST_PROHIBITED,
    13: ReasonKind.ADMIN_PROHIBITED,
}
UNREACH6 = {
    0: ReasonKind.NET_UNREACH,
    1: ReasonKind.ADMIN_PROHIBITED,
    3: ReasonKind.HOST_UNREACH,
    4: ReasonKind.PORT_UNREACH,
}


def target(i: int, v6: bool = False) -> IPAddress:
    """The ``i``-th test target (TEST-NET-1 or 2001:db8::/32)."""
    return ipaddress.IPv6Address(f"2001:db8::{0x100 + i:x}") if v6 else ip(f"192.0.2.{10 + i}")


def source_for(h: IPAddress) -> IPAddress:
    return ME6 if h.version == 6 else ME4


def timing(**kw: Any) -> TimingParams:
    """Resolved timing of ``ScanOptions(**kw)`` (template T3 unless ``timing=`` says)."""
    return ScanOptions(**kw).resolved().timing


def rate(**kw: Any) -> RateLimiter | None:
    opts = ScanOptions(**kw).resolved()
    if opts.max_rate is None and opts.min_rate is None:
        return None
    return RateLimiter(max_rate=opts.max_rate, min_rate=opts.min_rate)


@attrs.define
class Run:
    """A scanner, its network and clock, and what it emitted with the time of each."""

    scanner: Any
    net: FakeNetwork
    clock: ManualClock
    emitted: list[tuple[float, Any]] = attrs.field(factory=list)

    def emit(self, result: Any) -> None:
        self.emitted.append((self.clock.now, result))

    @property
    def results(self) -> list[Any]:
        return [r for _, r in self.emitted]

    def by_port(self) -> dict[tuple[IPAddress, int], PortResult]:
        out: dict[tuple[IPAddress, int], PortResult] = {}
        for r in self.results:
            assert (r.address, r.port) not in out, f"{r.address}:{r.port} decided twice"
            out[(r.address, r.port)] = r
        return out

    def by_host(self) -> dict[IPAddress, HostResult]:
        out: dict[IPAddress, HostResult] = {}
        for r in self.results:
            assert r.address not in out, f"{r.address} decided twice"
            out[r.address] = r
        return out

    def decided_at(self) -> dict[Any, float]:
        return {
            (r.address, r.port) if isinstance(r, PortResult) else r.address: t
            for t, r in self.emitted
        }


def _order(total: int, seed: int | None) -> Any:
    indices = list(range(total))
    if seed is not None:
        random.Random(seed).shuffle(indices)
    return iter(indices)


def port_run(
    kind: str,
    net: FakeNetwork,
    targets: Sequence[IPAddress],
    ports: Sequence[int],
    *,
    order_seed: int | None = 1,
    src_ports: Sequence[int] = SRC_PORTS,
    order: Iterator[int] | None = None,
    expected: int | None = None,
    **opts: Any,
) -> Run:
    """A SYN (``kind="syn"``) or UDP scanner of ``targets x ports`` over ``net`` (probe
    order: ``order``, or a shuffle seeded with ``order_seed``)."""
    clock = ManualClock()
    run = Run(None, net, clock)
    cls = SynScanner if kind == "syn" else UdpScanner
    extra: dict[str, Any] = {"cookie": Cookie(KEY)} if kind == "syn" else {}
    run.scanner = cls(
        hosts=list(targets),
        ports=list(ports),
        sources=source_for,
        src_ports=list(src_ports),
        emit=run.emit,
        order=_order(len(targets) * len(ports), order_seed) if order is None else order,
        expected=expected,
        timing=timing(**opts),
        rate=rate(**opts),
        **extra,
    )
    return run


def discovery_run(
    net: FakeNetwork,
    targets: Sequence[IPAddress],
    probes: Sequence[DiscoveryProbe] = DEFAULT_PROBES,
    *,
    order_seed: int | None = 1,
    **opts: Any,
) -> Run:
    clock = ManualClock()
    run = Run(None, net, clock)
    run.scanner = DiscoveryScanner(
        hosts=list(targets),
        probes=probes,
        sources=source_for,
        src_ports=SRC_PORTS,
        icmp_id=ICMP_ID,
        emit=run.emit,
        cookie=Cookie(KEY),
        order=_order(len(targets) * len(probes), order_seed),
        timing=timing(**opts),
        rate=rate(**opts),
    )
    return run


# -- expected results (the truth the fake network implements) ------------------------------


def rule_of(net: FakeNetwork, addr: IPAddress, proto: str, port: int) -> PortRule | None:
    """The rule deciding ``addr``/``proto``/``port``; None for an absent host."""
    host = net.hosts.get(addr)
    if host is None:
        return None
    if host.unreachable is not None:
        return host.unreachable
    return host.rule("tcp" if proto == "tcp" else "udp", port)


def _unreach(addr: IPAddress, host: FakeHost, rule: Reject) -> tuple[ReasonKind, int, IPAddress]:
    table = UNREACH6 if addr.version == 6 else UNREACH4
    sender = addr if rule.sender is None else rule.sender
    return table[rule.code], host.ttl if rule.ttl is None else rule.ttl, sender


def expected_syn(net: FakeNetwork, addr: IPAddress, port: int) -> tuple[PortState, Reason]:
    rule = rule_of(net, addr, "tcp", port)
    host = net.hosts.get(addr)
    if rule is None or rule == DROP or host is None:
        return PortState.FILTERED, Reason(ReasonKind.NO_RESPONSE)
    if rule == OPEN:
        return PortState.OPEN, Reason(ReasonKind.SYN_ACK, host.ttl)
    if rule == CLOSED:
        return PortState.CLOSED, Reason(ReasonKind.RESET, host.ttl)
    assert isinstance(rule, Reject)
    kind, ttl, sender = _unreach(addr, host, rule)
    return PortState.FILTERED, Reason(kind, ttl, sender)


def expected_udp(net: FakeNetwork, addr: IPAddress, port: int) -> tuple[PortState, Reason]:
    rule = rule_of(net, addr, "udp", port)
    host = net.hosts.get(addr)
    if rule is None or rule == DROP or host is None:
        return PortState.OPEN_FILTERED, Reason(ReasonKind.NO_RESPONSE)
    if rule == OPEN:
        return PortState.OPEN, Reason(ReasonKind.UDP_RESPONSE, host.ttl)
    if rule == CLOSED:
        rule = Reject(3 if addr.version == 4 else 4)
    assert isinstance(rule, Reject)
    kind, ttl, sender = _unreach(addr, host, rule)
    state = PortState.CLOSED if kind is ReasonKind.PORT_UNREACH else PortState.FILTERED
    return state, Reason(kind, ttl, sender)


TIMEOUT_OUTCOME = {
    "syn": (PortState.FILTERED, Reason(ReasonKind.NO_RESPONSE)),
    "udp": (PortState.OPEN_FILTERED, Reason(ReasonKind.NO_RESPONSE)),
}


def tries(net: FakeNetwork, addr: IPAddress, proto: str, port: int) -> list[ProbeRecord]:
    """Every packet the scanner sent to ``addr``/``proto``/``port``."""
    return [p for p in net.probes if p.dst == addr and p.protocol == proto and p.dst_port == port]


def check_port_invariant(run: Run, kind: str, ports: Sequence[int]) -> dict[str, int]:
    """Every probe decided exactly once; every result is the truth, or the timeout outcome
    of a probe none of whose tries got an answer back before the decision. Returns counts."""
    expect = expected_syn if kind == "syn" else expected_udp
    proto = "tcp" if kind == "syn" else "udp"
    got = run.by_port()
    decided = run.decided_at()
    targets = run.scanner.hosts
    assert set(got) == {(h, p) for h in targets for p in ports}
    counts = {"right": 0, "all_lost": 0}
    for (addr, port), result in got.items():
        want = expect(run.net, addr, port)
        if (result.state, result.reason) == want:
            counts["right"] += 1
            continue
        sent = tries(run.net, addr, proto, port)
        assert (result.state, result.reason) == TIMEOUT_OUTCOME[kind], (
            f"{addr}:{port} is {result.state}/{result.reason!r}, truth {want}"
        )
        when = decided[(addr, port)]
        answered = [p for p in sent if p.answered_by(when)]
        assert sent, f"{addr}:{port} decided without a probe"
        assert not answered, (
            f"{addr}:{port} timed out although an answer to try sent at {answered[0].time} "
            f"arrived before the decision at {when}"
        )
        counts["all_lost"] += 1
    return counts
