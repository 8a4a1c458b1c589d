"""UDP scan: any UDP answer -> open, ICMP port unreachable -> closed, other ICMP
unreachables -> filtered, silence after retries -> open|filtered.

Probes carry a protocol payload for well-known ports (:mod:`.payloads`). Targets running
Linux rate-limit ICMP errors (about one per second per destination after a small burst),
so closed ports answer slowly: the congestion control treats an answer to a
retransmission as a drop, shrinks the window and raises the per-host retry allowance and
scan delay, as nmap does. See docs/udp.md for what to expect on large UDP scans.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pyscan._core.timing import HostTiming
from pyscan._models import IPAddress, PortResult, PortState, Reason, ReasonKind
from pyscan._scanners._common import PortOutcome, PortScanner, pkt_ttl
from pyscan._scanners.payloads import udp_payload
from pyscan._wire.icmp import ICMPError
from pyscan._wire.packet import Packet
from pyscan._wire.template import UDPTemplate, UDPTemplate6

__all__ = ["UdpScanner"]


def _bench_rounds(max_retries: int) -> int:
    """How many of ``max_retries`` a rate-limited host's silent port spends on the bench."""
    return min(2, max_retries)


class UdpScanner(PortScanner):
    """The UDP scan state machine (see the module docstring)."""

    protocol = "udp"
    protocols = frozenset({17, 1, 58})

    def __init__(
        self,
        *,
        hosts: Sequence[IPAddress],
        ports: Sequence[int],
        sources: Callable[[IPAddress], IPAddress],
        src_ports: Sequence[int],
        emit: Callable[[PortResult], None] | None,
        ttl: int = 64,
        payload: Callable[[int], bytes] = udp_payload,
        **kw: object,
    ) -> None:
        super().__init__(
            hosts=hosts,
            ports=ports,
            sources=sources,
            src_ports=src_ports,
            emit=emit,
            udp=True,
            **kw,
        )
        self._payload = payload
        self._templates: dict[tuple[IPAddress, bytes], UDPTemplate | UDPTemplate6] = {}
        self._ttl = ttl
        #: Hosts that answered closed ports with ICMP port-unreachable: their silence may be
        #: ICMP rate limiting rather than an open|filtered port.
        self._icmp_hosts: set[int] = set()

    def _template(self, src: IPAddress, data: bytes) -> UDPTemplate | UDPTemplate6:
        t = self._templates.get((src, data))
        if t is None:
            t = (
                UDPTemplate6(src, data, hop_limit=self._ttl)
                if src.version == 6
                else UDPTemplate(src, data, ttl=self._ttl)
            )
            self._templates[(src, data)] = t
        return t

    def build(self, index: int, tryno: int) -> tuple[IPAddress, bytes]:
        host, k = divmod(index, self.per_host)
        dport = self.ports[k]
        sport = self.src_ports[tryno % len(self.src_ports)]
        template = self._template(self.source(host), self._payload(dport))
        return self.hosts[host], template.build(self.hosts.ints[host], dport, sport)

    def match(self, pkt: Packet) -> tuple[int, int | None, PortOutcome] | None:
        udp = pkt.udp
        if udp is not None:
            found = self.locate(pkt.src, udp.src_port, udp.dst_port)
            if found is None:
                return None
            reason = Reason(ReasonKind.UDP_RESPONSE, pkt_ttl(pkt))
            return found[0], found[1], (PortState.OPEN, reason)
        icmp = pkt.icmp if pkt.icmp is not None else pkt.icmpv6
        if isinstance(icmp, ICMPError) and icmp.quoted is not None and icmp.quoted.protocol == 17:
            q = icmp.quoted
            found = self.locate(q.dst, q.dst_port, q.src_port)
            if found is None:
                return None
            outcome = self.icmp_outcome(pkt, icmp)
            if outcome is None:
                return None
            if outcome[1].kind is ReasonKind.PORT_UNREACH and pkt.src == q.dst:
                self._icmp_hosts.add(found[0] // self.per_host)
            return found[0], self.icmp_tryno(pkt, found[0], found[1]), outcome
        return None

    def may_retry(self, index: int, tryno: int, ht: HostTiming) -> bool:
        """A host known to send port-unreachables gets every retry ``max_retries`` allows
        before a silent port is called open|filtered: on Linux its ICMP errors are rate
        limited (about one per second), so silence says little. Answers to those retries
        count as drops and slow the host down, as in nmap. Up to two of the retries are kept
        for the bench (:meth:`may_bench`), so a probe never gets more than ``max_retries``."""
        if index // self.per_host in self._icmp_hosts:
            max_retries = ht.group.params.max_retries
            return tryno < max_retries - _bench_rounds(max_retries)
        return ht.may_retransmit(tryno)

    def may_bench(self, index: int, rounds: int) -> bool:
        """Silent ports of a host that rate-limits its port-unreachables keep their last
        (up to two) retries for rounds once everything else is sent, at the scan delay the
        drops have raised by then."""
        limit = _bench_rounds(self._group.params.max_retries)
        return rounds < limit and index // self.per_host in self._icmp_hosts

    def accept(self, index: int, tryno: int | None, outcome: PortOutcome, now: float) -> bool:
        """As the base, and: a port-unreachable that answers a retransmission means the
        host's ICMP errors are being rate limited (Linux: about one a second), so its scan
        delay goes straight to ``max_udp_scan_delay`` (1 s in T2-T5): at that pace every
        further port gets its answer, which is slow, as nmap's UDP scans of Linux are, but
        exact."""
        taken = super().accept(index, tryno, outcome, now)
        if taken and tryno and outcome[1].kind is ReasonKind.PORT_UNREACH:
            host = index // self.per_host
            if host in self._icmp_hosts:
                delay = self.host_timing(host, now).scan_delay
                while delay.current < delay.maximum:
                    delay.boost(now)
        return taken

    def icmp_state(self, kind: ReasonKind) -> PortState:
        return PortState.CLOSED if kind is ReasonKind.PORT_UNREACH else PortState.FILTERED

    def timeout_outcome(self, index: int) -> PortOutcome:
        return PortState.OPEN_FILTERED, Reason(ReasonKind.NO_RESPONSE)
