"""What the raw port scanners share: the probe space, the keyed cookie, ICMP reasons."""

from __future__ import annotations

import ipaddress
import os
import struct
from array import array
from collections.abc import Callable, Iterable, Sequence

from pyscan._core.gcpause import paused_gc
from pyscan._core.hosts import HostTable
from pyscan._core.probescan import FROM_US, ProbeScanner
from pyscan._models import IPAddress, PortResult, PortState, Protocol, Reason, ReasonKind
from pyscan._wire.icmp import ICMPError
from pyscan._wire.packet import Packet

__all__ = [
    "UNREACH_REASONS",
    "Cookie",
    "PortOutcome",
    "PortScanner",
]

#: ICMP destination-unreachable codes (v4) that mean "filtered", with nmap's reasons.
UNREACH_REASONS: dict[int, ReasonKind] = {
    0: ReasonKind.NET_UNREACH,
    1: ReasonKind.HOST_UNREACH,
    2: ReasonKind.PROTO_UNREACH,
    3: ReasonKind.PORT_UNREACH,
    9: ReasonKind.NET_PROHIBITED,
    10: ReasonKind.HOST_PROHIBITED,
    13: ReasonKind.ADMIN_PROHIBITED,
}
#: ICMPv6 destination-unreachable codes, mapped the same way.
UNREACH6_REASONS: dict[int, ReasonKind] = {
    0: ReasonKind.NET_UNREACH,  # no route
    1: ReasonKind.ADMIN_PROHIBITED,
    3: ReasonKind.HOST_UNREACH,  # address unreachable
    4: ReasonKind.PORT_UNREACH,
}

PortOutcome = tuple[PortState, Reason]

_COOKIE_INPUT = struct.Struct("!16s16sHH")


class Cookie:
    """A keyed 32-bit cookie of (destination, destination port, source port).

    Carried in a probe's sequence number, it lets an answer be recognised from its
    acknowledgement number alone: no table of sent probes is needed, and blind or stray
    packets do not match. The hash is SipHash (CPython's hash of bytes, keyed per process)
    over a 16-byte secret of this scan followed by the addresses and ports, so it is
    unpredictable without the secret and costs well under a microsecond (a keyed BLAKE2
    costs four times as much, and this runs twice per probe).
    """

    __slots__ = ("_key",)

    def __init__(self, key: bytes | None = None) -> None:
        self._key = key if key is not None else os.urandom(16)

    @property
    def key(self) -> bytes:
        """The scan's secret (hot paths compute the cookie inline: see :attr:`PACK`)."""
        return self._key

    #: The hash input layout: ``hash(PACK.pack(key, dst, dst_port, src_port)) & 0xFFFFFFFF``.
    PACK = _COOKIE_INPUT

    def __call__(self, dst: bytes, dst_port: int, src_port: int) -> int:
        return hash(_COOKIE_INPUT.pack(self._key, dst, dst_port, src_port)) & 0xFFFFFFFF


class PortScanner(ProbeScanner[PortOutcome]):
    """A raw scan of ``hosts x ports`` of one protocol, results emitted as PortResults.

    The try number travels in the source port: try ``t`` leaves from ``src_ports[t %
    len(src_ports)]``, so an answer says which transmission it answers (Karn's rule).
    """

    protocol: Protocol = "tcp"

    def __init__(
        self,
        *,
        hosts: Sequence[IPAddress],
        ports: Sequence[int],
        sources: Callable[[IPAddress], IPAddress],
        src_ports: Sequence[int],
        emit: Callable[[PortResult], None] | None,
        **kw: object,
    ) -> None:
        super().__init__(n_hosts=len(hosts), per_host=len(ports), **kw)  # type: ignore[arg-type]
        #: The targets, compactly (a few bytes a host: see :class:`HostTable`).
        self.hosts = hosts if isinstance(hosts, HostTable) else HostTable(hosts)
        self.ports = list(ports)
        self.port_index = {p: i for i, p in enumerate(self.ports)}
        self.src_ports = list(src_ports)
        self.src_index = {p: i for i, p in enumerate(self.src_ports)}
        # Each host's source address, as an index into the few distinct ones (the route
        # to each target is looked up once; no address object is kept per host).
        distinct: dict[IPAddress, int] = {}
        of = array("H")
        for h in range(len(self.hosts)):
            src = sources(_transient(self.hosts, h))
            of.append(distinct.setdefault(src, len(distinct)))
        #: The distinct source addresses; :attr:`source_of` indexes them per host (None:
        #: one source for every host).
        self.source_list = list(distinct)
        self.source_of: array[int] | None = of if len(distinct) > 1 else None
        #: Who takes each result as it is decided; None: nobody, and the decisions are
        #: kept as probe index and outcome (16 bytes, the outcome a shared value) until
        #: :attr:`results` or :meth:`make_later` makes them (out of the scan's loop, with
        #: the collector paused).
        self.emit = emit
        self._made: list[PortResult] = []
        self._later_index = array("Q")
        self._later_outcome: list[PortOutcome] = []

    def source_index(self, host: int) -> int:
        """Which of :attr:`source_list` host ``host``'s probes leave from."""
        return 0 if self.source_of is None else self.source_of[host]

    def source(self, host: int) -> IPAddress:
        """The source address of host ``host``'s probes."""
        return self.source_list[self.source_index(host)]

    def locate(
        self, dst: bytes, dst_port: int | None, src_port: int | None
    ) -> tuple[int, int | None] | None:
        """``(index, tryno)`` of the probe sent to ``dst:dst_port`` from ``src_port``
        (tryno None when a single source port cannot tell the tries apart)."""
        if dst_port is None or src_port is None:
            return None
        host = self.hosts.index_of(dst)
        k = self.port_index.get(dst_port)
        t = self.src_index.get(src_port)
        if host is None or k is None or t is None:
            return None
        # With one source port (-g) the port cannot tell the try: unknown, not try 0.
        return host * self.per_host + k, (t if len(self.src_ports) > 1 else None)

    def icmp_outcome(self, pkt: Packet, icmp: ICMPError) -> PortOutcome | None:
        """The outcome an ICMP destination-unreachable gives a probe, or None."""
        v6 = pkt.version == 6
        if icmp.type != (1 if v6 else 3):
            return None
        kind = (UNREACH6_REASONS if v6 else UNREACH_REASONS).get(icmp.code)
        if kind is None:
            return None
        state = self.icmp_state(kind)
        return state, Reason(kind, pkt_ttl(pkt), pkt.src_ip)

    def icmp_tryno(self, pkt: Packet, index: int, tryno: int | None) -> int | None:
        """The try number to report for an ICMP error about probe ``index``:
        :data:`~pyscan._core.probescan.FROM_US` when our own host sent it (its source is
        the probe's source address, and the target is not our own host), else ``tryno``."""
        host = index // self.per_host
        src = pkt.src
        if src == self.source(host).packed and src != self.hosts.packed(host):
            return FROM_US
        return tryno

    def icmp_state(self, kind: ReasonKind) -> PortState:
        """The state an ICMP unreachable of ``kind`` means for this protocol."""
        return PortState.FILTERED

    defer_decisions = True  # decided() touches no other probe

    def decided(self, index: int, outcome: PortOutcome, now: float) -> None:
        self.decided_many([(index, outcome)], now)

    def decided_many(self, items: list[tuple[int, PortOutcome]], now: float) -> None:
        emit = self.emit
        if emit is None:
            if items:
                indices, outcomes = zip(*items, strict=True)
                self._later_index.extend(indices)
                self._later_outcome.extend(outcomes)
            return
        made = self._make(items)
        self._made.extend(made)
        for result in made:
            emit(result)

    def _make(self, items: Iterable[tuple[int, PortOutcome]]) -> list[PortResult]:
        hosts, ports, per_host, protocol = self.hosts, self.ports, self.per_host, self.protocol
        return [
            PortResult(hosts[i // per_host], protocol, ports[i % per_host], o[0], o[1])
            for i, o in items
        ]

    @property
    def results(self) -> list[PortResult]:
        """Every result decided so far (those nobody took yet are made now)."""
        self.make_later()
        return self._made

    def make_later(self, limit: int | None = None) -> int:
        """Make the results of up to ``limit`` (None, or less than 1: all) decisions kept
        while nobody took them; return how many are still to make. The scan's caller
        makes them in chunks after the scan, the loop getting a turn in between."""
        indices, outcomes = self._later_index, self._later_outcome
        if not indices:
            return 0
        left = 0 if limit is None or limit < 1 else max(0, len(indices) - limit)
        with paused_gc():
            self._made.extend(self._make(zip(indices[left:], outcomes[left:], strict=True)))
        del indices[left:]  # from the end: nothing before it moves
        del outcomes[left:]
        return left


def _transient(hosts: HostTable, i: int) -> IPAddress:
    """Address ``i`` of ``hosts`` without keeping an object for it in the table."""
    if hosts.compact:
        return ipaddress.IPv4Address(hosts.ints[i])
    return hosts[i]


def pkt_ttl(pkt: Packet) -> int:
    """The TTL (IPv4) or hop limit (IPv6) a packet arrived with."""
    ip = pkt.ip
    return ip.hop_limit if pkt.version == 6 else ip.ttl  # type: ignore[union-attr]
