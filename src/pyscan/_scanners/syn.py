"""TCP SYN scan: SYN-ACK -> open, RST -> closed, ICMP unreachable or silence -> filtered.

The probe is a SYN (MSS 1460, like nmap's) whose sequence number is the keyed cookie of
(destination, port, source port); an answer counts only if its acknowledgement number is
that cookie plus one. The scanner sends nothing after a SYN-ACK: the kernel of the scanning
host, which owns no socket for the connection, answers it with a RST.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from pyscan._models import IPAddress, PortResult, PortState, Reason, ReasonKind
from pyscan._scanners._common import Cookie, PortOutcome, PortScanner, int_address, pkt_ttl
from pyscan._wire.icmp import ICMPError
from pyscan._wire.packet import Packet
from pyscan._wire.tcp import TCPFlags
from pyscan._wire.template import TCPTemplate, TCPTemplate6

__all__ = ["SynScanner"]

_SYN_ACK = int(TCPFlags.SYN | TCPFlags.ACK)
_RST = int(TCPFlags.RST)
_TCP_ANSWER = struct.Struct("!HHIIxB")  # ports, seq, ack, (offset), flags
_OPEN = PortState.OPEN
_CLOSED = PortState.CLOSED


class SynScanner(PortScanner):
    """The SYN scan state machine (see the module docstring)."""

    protocol = "tcp"
    protocols = frozenset({6, 1, 58})

    def __init__(
        self,
        *,
        hosts: Sequence[IPAddress],
        ports: Sequence[int],
        sources: Callable[[IPAddress], IPAddress],
        src_ports: Sequence[int],
        emit: Callable[[PortResult], None],
        ttl: int = 64,
        cookie: Cookie | None = None,
        **kw: object,
    ) -> None:
        super().__init__(
            hosts=hosts, ports=ports, sources=sources, src_ports=src_ports, emit=emit, **kw
        )
        self.cookie = cookie or Cookie()
        self._dst_int = [int_address(h) for h in self.hosts]
        templates: dict[IPAddress, TCPTemplate | TCPTemplate6] = {}
        for src in set(self.sources):
            templates[src] = (
                TCPTemplate6(src, hop_limit=ttl) if src.version == 6 else TCPTemplate(src, ttl=ttl)
            )
        self._templates = [templates[s] for s in self.sources]

    def build(self, index: int, tryno: int) -> tuple[IPAddress, bytes]:
        host, k = divmod(index, self.per_host)
        dport = self.ports[k]
        sport = self.src_ports[tryno % len(self.src_ports)]
        seq = self.cookie(self.packed[host], dport, sport)
        return self.hosts[host], self._templates[host].build(self._dst_int[host], dport, sport, seq)

    def receive_bytes(self, data: bytes, now: float) -> bool:
        """Fast path for the common answers (IPv4 SYN-ACK or RST): no objects are built."""
        if len(data) >= 40 and data[0] >> 4 == 4 and data[9] == 6:
            ihl = (data[0] & 15) * 4
            if len(data) < ihl + 14:
                return False
            sport, dport, _seq, ack, flags = _TCP_ANSWER.unpack_from(data, ihl)
            src = data[12:16]
            found = self.locate(src, sport, dport)
            if found is None or (ack - 1) & 0xFFFFFFFF != self.cookie(src, sport, dport):
                return False
            if flags & _RST:
                outcome = (_CLOSED, Reason(ReasonKind.RESET, data[8]))
            elif flags & _SYN_ACK == _SYN_ACK:
                outcome = (_OPEN, Reason(ReasonKind.SYN_ACK, data[8]))
            else:
                return False
            self.now = now
            return self.accept(found[0], found[1], outcome, now)
        return super().receive_bytes(data, now)

    def match(self, pkt: Packet) -> tuple[int, int | None, PortOutcome] | None:
        tcp = pkt.tcp
        if tcp is not None:
            found = self.locate(pkt.src, tcp.src_port, tcp.dst_port)
            if found is None:
                return None
            index, tryno = found
            if (tcp.ack - 1) & 0xFFFFFFFF != self.cookie(pkt.src, tcp.src_port, tcp.dst_port):
                return None
            flags = int(tcp.flags)
            ttl = pkt_ttl(pkt)
            if flags & _RST:
                return index, tryno, (PortState.CLOSED, Reason(ReasonKind.RESET, ttl))
            if flags & _SYN_ACK == _SYN_ACK:
                return index, tryno, (PortState.OPEN, Reason(ReasonKind.SYN_ACK, ttl))
            return None
        icmp = pkt.icmp if pkt.icmp is not None else pkt.icmpv6
        if isinstance(icmp, ICMPError) and icmp.quoted is not None and icmp.quoted.protocol == 6:
            q = icmp.quoted
            found = self.locate(q.dst, q.dst_port, q.src_port)
            if found is None:
                return None
            assert q.dst_port is not None
            assert q.src_port is not None
            if q.tcp_seq is not None and q.tcp_seq != self.cookie(q.dst, q.dst_port, q.src_port):
                return None
            outcome = self.icmp_outcome(pkt, icmp)
            if outcome is None:
                return None
            return found[0], found[1], outcome
        return None

    def timeout_outcome(self, index: int) -> PortOutcome:
        return PortState.FILTERED, Reason(ReasonKind.NO_RESPONSE)
