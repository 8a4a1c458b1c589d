"""Host discovery with raw probes (nmap's -PE -PP -PS -PA -PU).

Each host gets every configured probe; the first answer from the host itself decides it up
(with the probe's reason and the round trip as latency) and settles its other probes. A
host whose probes all go unanswered after their retries is down (``no-response``, or the
ICMP error a router sent about it). nmap's privileged default is ICMP echo, SYN to 443,
ACK to 80 and ICMP timestamp: :data:`DEFAULT_PROBES`.

Answers are recognised without per-probe tables: ICMP queries carry the scan's identifier
(and the probe slot and try in the sequence number), TCP probes leave from the scan's
source ports with a keyed cookie in the sequence number (SYN) or acknowledgement number
(ACK; the RST it provokes carries it back as its sequence number).
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from typing import Literal

import attrs

from pyscan._core.hosts import HostTable
from pyscan._core.probescan import ProbeScanner
from pyscan._models import HostResult, HostStatus, IPAddress, Reason, ReasonKind
from pyscan._scanners._common import UNREACH6_REASONS, UNREACH_REASONS, Cookie, pkt_ttl
from pyscan._scanners.payloads import udp_payload
from pyscan._wire.icmp import ICMPEcho, ICMPError, ICMPTimestamp, build_icmp_timestamp
from pyscan._wire.packet import (
    Packet,
    build_echo_packet,
    build_icmp_packet,
    build_tcp_packet,
    build_udp_packet,
)
from pyscan._wire.tcp import TCPFlags

__all__ = ["DEFAULT_PROBES", "DiscoveryProbe", "DiscoveryScanner"]

ProbeKind = Literal["echo", "timestamp", "syn", "ack", "udp"]


@attrs.frozen
class DiscoveryProbe:
    """One kind of discovery probe: ICMP echo/timestamp, or TCP SYN/ACK or UDP to a port."""

    kind: ProbeKind
    port: int = 0

    def __str__(self) -> str:
        return f"{self.kind}/{self.port}" if self.kind in ("syn", "ack", "udp") else self.kind


DEFAULT_PROBES: tuple[DiscoveryProbe, ...] = (
    DiscoveryProbe("echo"),
    DiscoveryProbe("syn", 443),
    DiscoveryProbe("ack", 80),
    DiscoveryProbe("timestamp"),
)

HostOutcome = tuple[HostStatus, Reason, float | None]
Found = tuple[int, int | None, HostOutcome]
_SYN_ACK = int(TCPFlags.SYN | TCPFlags.ACK)


class DiscoveryScanner(ProbeScanner[HostOutcome]):
    """The raw host-discovery state machine (see the module docstring)."""

    protocols = frozenset({1, 6, 17, 58})
    # The first packet to a neighbour waits for ARP, and a lost ARP request is repeated
    # after 1 s (Linux's retrans_time): a host is not written off before that has had a
    # chance, whatever the timing template (T4 would give 0.5 s, T5 0.25 s).
    unanswered_timeout_floor = 1.0

    def __init__(
        self,
        *,
        hosts: Sequence[IPAddress],
        probes: Sequence[DiscoveryProbe] = DEFAULT_PROBES,
        sources: Callable[[IPAddress], IPAddress],
        src_ports: Sequence[int],
        icmp_id: int | None = None,
        emit: Callable[[HostResult], None],
        ttl: int = 64,
        cookie: Cookie | None = None,
        **kw: object,
    ) -> None:
        if not probes:
            raise ValueError("host discovery needs at least one probe")
        super().__init__(n_hosts=len(hosts), per_host=len(probes), **kw)  # type: ignore[arg-type]
        self.hosts = hosts if isinstance(hosts, HostTable) else HostTable(hosts)
        self.probes = tuple(probes)
        # (Discovery makes a HostResult per host anyway: objects per host are fine here.)
        self.sources = [sources(h) for h in self.hosts]
        self.src_ports = list(src_ports)
        # With one source port (-g) an answer cannot say which try it answers.
        self.src_index: dict[int, int | None] = {
            p: (i if len(self.src_ports) > 1 else None) for i, p in enumerate(self.src_ports)
        }
        self.icmp_id = icmp_id if icmp_id is not None else random.randrange(1, 0x10000)
        self.cookie = cookie or Cookie()
        self.ttl = ttl
        self.emit = emit
        self.results: list[HostResult] = []
        self._silent: dict[int, int] = {}
        self._down_reason: dict[int, Reason] = {}

    # -- probes --------------------------------------------------------------------------

    def _ack_cookie(self, dst: bytes, port: int, sport: int) -> int:
        return self.cookie(dst, port, sport ^ 0xFFFF)

    def build(self, index: int, tryno: int) -> tuple[IPAddress, bytes]:
        host, k = divmod(index, self.per_host)
        probe = self.probes[k]
        dst, src = self.hosts[host], self.sources[host]
        sport = self.src_ports[tryno % len(self.src_ports)]
        seq = (k << 8) | (tryno & 0xFF)
        if probe.kind == "echo":
            data = build_echo_packet(
                src=src, dst=dst, identifier=self.icmp_id, sequence=seq, ttl=self.ttl
            )
        elif probe.kind == "timestamp":
            message = build_icmp_timestamp(identifier=self.icmp_id, sequence=seq)
            data = build_icmp_packet(src=src, dst=dst, message=message, ttl=self.ttl)
        elif probe.kind == "syn":
            cookie = self.cookie(dst.packed, probe.port, sport)
            data = build_tcp_packet(
                src=src,
                dst=dst,
                src_port=sport,
                dst_port=probe.port,
                seq=cookie,
                flags=TCPFlags.SYN,
                ttl=self.ttl,
            )
        elif probe.kind == "ack":
            cookie = self._ack_cookie(dst.packed, probe.port, sport)
            data = build_tcp_packet(
                src=src,
                dst=dst,
                src_port=sport,
                dst_port=probe.port,
                seq=0,
                ack=cookie,
                flags=TCPFlags.ACK,
                ttl=self.ttl,
            )
        else:
            data = build_udp_packet(
                src=src,
                dst=dst,
                src_port=sport,
                dst_port=probe.port,
                payload=udp_payload(probe.port),
                ttl=self.ttl,
            )
        return dst, data

    def _slot(self, kind: ProbeKind, port: int) -> int | None:
        for k, p in enumerate(self.probes):
            if p.kind == kind and p.port == port:
                return k
        return None

    # -- answers -------------------------------------------------------------------------

    def _up(self, host: int, k: int, tryno: int | None, kind: ReasonKind, pkt: Packet) -> Found:
        index = host * self.per_host + k
        sent = self.last_sent(index)
        latency = None if sent is None else max(0.0, self.now - sent)
        return index, tryno, (HostStatus.UP, Reason(kind, pkt_ttl(pkt)), latency)

    def match(self, pkt: Packet) -> Found | None:
        icmp = pkt.icmp if pkt.icmp is not None else pkt.icmpv6
        if pkt.tcp is not None:
            return self._match_tcp(pkt)
        if pkt.udp is not None:
            host = self.hosts.index_of(pkt.src)
            k = self._slot("udp", pkt.udp.src_port)
            if pkt.udp.dst_port not in self.src_index:
                return None
            tryno = self.src_index[pkt.udp.dst_port]
            if host is None or k is None:
                return None
            return self._up(host, k, tryno, ReasonKind.UDP_RESPONSE, pkt)
        if isinstance(icmp, ICMPEcho | ICMPTimestamp):
            host = self.hosts.index_of(pkt.src)
            if host is None or not icmp.is_reply or icmp.identifier != self.icmp_id:
                return None
            k, tryno = icmp.sequence >> 8, icmp.sequence & 0xFF
            if k >= self.per_host:
                return None
            want = "timestamp" if isinstance(icmp, ICMPTimestamp) else "echo"
            if self.probes[k].kind != want:
                return None
            kind = ReasonKind.TIMESTAMP_REPLY if want == "timestamp" else ReasonKind.ECHO_REPLY
            return self._up(host, k, tryno, kind, pkt)
        if isinstance(icmp, ICMPError) and icmp.quoted is not None:
            return self._match_error(pkt, icmp)
        return None

    def _match_tcp(self, pkt: Packet) -> Found | None:
        tcp = pkt.tcp
        assert tcp is not None
        host = self.hosts.index_of(pkt.src)
        if host is None or tcp.dst_port not in self.src_index:
            return None
        tryno = self.src_index[tcp.dst_port]
        flags = int(tcp.flags)
        k = self._slot("syn", tcp.src_port)
        if k is not None and (tcp.ack - 1) & 0xFFFFFFFF == self.cookie(
            pkt.src, tcp.src_port, tcp.dst_port
        ):
            if flags & TCPFlags.RST:
                return self._up(host, k, tryno, ReasonKind.RESET, pkt)
            if flags & _SYN_ACK == _SYN_ACK:
                return self._up(host, k, tryno, ReasonKind.SYN_ACK, pkt)
        k = self._slot("ack", tcp.src_port)
        if (
            k is not None
            and flags & TCPFlags.RST
            and tcp.seq == self._ack_cookie(pkt.src, tcp.src_port, tcp.dst_port)
        ):
            return self._up(host, k, tryno, ReasonKind.RESET, pkt)
        return None

    def _match_error(self, pkt: Packet, icmp: ICMPError) -> Found | None:
        q = icmp.quoted
        assert q is not None
        host = self.hosts.index_of(q.dst)
        if host is None:
            return None
        k: int | None = None
        tryno: int | None = None
        if q.protocol in (1, 58) and q.icmp_id == self.icmp_id and q.icmp_seq is not None:
            k, tryno = q.icmp_seq >> 8, q.icmp_seq & 0xFF
        elif (
            q.protocol in (6, 17)
            and q.dst_port is not None
            and q.src_port is not None
            and q.src_port in self.src_index
        ):
            tryno = self.src_index[q.src_port]
            for j, p in enumerate(self.probes):
                if p.port == q.dst_port and (p.kind == "udp") == (q.protocol == 17):
                    if p.kind == "syn" and q.tcp_seq != self.cookie(q.dst, p.port, q.src_port):
                        continue  # not our SYN: a forged or stray quote
                    if p.kind == "ack" and q.tcp_seq != 0:
                        continue  # our ACK probes carry sequence number 0
                    k = j
                    break
        if k is None or k >= self.per_host:
            return None
        v6 = pkt.version == 6
        unreach = (UNREACH6_REASONS if v6 else UNREACH_REASONS).get(icmp.code)
        kind = unreach if icmp.type == (1 if v6 else 3) and unreach else ReasonKind.DEST_UNREACH
        if icmp.type == (3 if v6 else 11):
            kind = ReasonKind.TIME_EXCEEDED
        if pkt.src == q.dst:
            # The target itself answered (port or protocol unreachable): it is up.
            return self._up(host, k, tryno, kind, pkt)
        # A router speaks for the target: keep it as the reason if the host stays silent.
        self._down_reason[host] = Reason(kind, pkt_ttl(pkt), pkt.src_ip)
        return None

    def timeout_outcome(self, index: int) -> HostOutcome:
        return HostStatus.DOWN, Reason(ReasonKind.NO_RESPONSE), None

    def decided(self, index: int, outcome: HostOutcome, now: float) -> None:
        host = index // self.per_host
        status, reason, latency = outcome
        if status is HostStatus.UP:
            for j in range(self.per_host):
                self.settle(host * self.per_host + j)
            self._finish(HostResult(self.hosts[host], status, reason, latency))
            return
        silent = self._silent[host] = self._silent.get(host, 0) + 1
        if silent == self.per_host:
            reason = self._down_reason.get(host, reason)
            self._finish(HostResult(self.hosts[host], HostStatus.DOWN, reason))

    def _finish(self, result: HostResult) -> None:
        self.results.append(result)
        self.emit(result)
