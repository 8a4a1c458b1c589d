"""TCP SYN scan: SYN-ACK -> open, RST -> closed, ICMP unreachable or silence -> filtered.

The probe is a SYN (MSS 1460, like nmap's) whose sequence number is the keyed cookie of
(destination, port, source port); an answer counts only if its acknowledgement number is
that cookie plus one. The scanner sends nothing after a SYN-ACK: the kernel of the scanning
host, which owns no socket for the connection, answers it with a RST.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence

from pyscan._core.probescan import BatchOut
from pyscan._core.slots import SlotBuffer
from pyscan._models import IPAddress, PortResult, PortState, Reason, ReasonKind
from pyscan._scanners._common import Cookie, PortOutcome, PortScanner, pkt_ttl
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
_SILENT = (PortState.FILTERED, Reason(ReasonKind.NO_RESPONSE))  # a value, shared


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
        emit: Callable[[PortResult], None] | None,
        ttl: int = 64,
        cookie: Cookie | None = None,
        **kw: object,
    ) -> None:
        super().__init__(
            hosts=hosts, ports=ports, sources=sources, src_ports=src_ports, emit=emit, **kw
        )
        self.cookie = cookie or Cookie()
        # One template per source address (see source_of), not per host.
        self._templates = [
            TCPTemplate6(src, hop_limit=ttl) if src.version == 6 else TCPTemplate(src, ttl=ttl)
            for src in self.source_list
        ]
        self._ipv4_only = all(src.version == 4 for src in self.source_list)
        self._layout = self._templates[0].packet if self._templates else b""
        self._consts = [
            t.span_constants if isinstance(t, TCPTemplate) else (0, 0, 0, 0, 0, 0)
            for t in self._templates
        ]
        # Outcomes are values: one per (answer kind, TTL), shared by every port it decides.
        self._outcomes: dict[int, PortOutcome] = {}

    def _outcome(self, code: int) -> PortOutcome:
        """The outcome for answer ``code``: ``kind << 8 | ttl`` (kind 0 RST, 1 SYN-ACK)."""
        found = self._outcomes.get(code)
        if found is None:
            if code >> 8:
                found = (_OPEN, Reason(ReasonKind.SYN_ACK, code & 255))
            else:
                found = (_CLOSED, Reason(ReasonKind.RESET, code & 255))
            self._outcomes[code] = found
        return found

    def build_batch(self, items: list[tuple[int, int]], out: BatchOut) -> None:
        """Write IPv4 probes straight into the engine's slot batch: the constant header
        bytes are laid out once per batch, then each probe is its destination address and
        one packed span (addresses, ports, cookie, both checksums). Any other batch gets
        :meth:`build`'s packets."""
        if not isinstance(out, SlotBuffer) or not self._ipv4_only or out.version != 4:
            super().build_batch(items, out)
            return
        buf = out.buf
        slot_size = out.SLOT
        name_size = out.NAME
        layout = self._layout
        if out.stamp != layout:
            for i in range(out.capacity):
                at = out.packet_offset(i)
                buf[at : at + len(layout)] = layout
                out.set_length(i, len(layout))
            out.stamp = layout
        per_host = self.per_host
        ports = self.ports
        src_ports = self.src_ports
        n_src = len(src_ports)
        blob = self.hosts.blob
        dst_int = self.hosts.ints
        source_of = self.source_of
        consts = self._consts
        one = consts[0] if source_of is None else None
        cookie_pack = Cookie.PACK.pack
        key = self.cookie.key
        span = TCPTemplate.SPAN.pack_into
        span_at = name_size + TCPTemplate.SPAN_OFFSET
        i = out.count
        for index, tryno in items:
            host, k = divmod(index, per_host)
            dport = ports[k]
            sport = src_ports[tryno % n_src]
            dst = blob[4 * host : 4 * host + 4]
            seq = hash(cookie_pack(key, dst, dport, sport)) & 0xFFFFFFFF
            d = dst_int[host]
            ip_sum, tcp_sum, src, ack, offflags, window = one or consts[source_of[host]]  # type: ignore[index]
            dd = (d >> 16) + (d & 0xFFFF)
            c = ip_sum + dd
            c = (c & 0xFFFF) + (c >> 16)
            c = (c & 0xFFFF) + (c >> 16)
            t = tcp_sum + dd + sport + dport + (seq >> 16) + (seq & 0xFFFF)
            t = (t & 0xFFFF) + (t >> 16)
            t = (t & 0xFFFF) + (t >> 16)
            at = i * slot_size
            buf[at + 4 : at + 8] = dst
            span(buf, at + span_at, c ^ 0xFFFF, src, d, sport, dport, seq, ack, offflags,
                 window, t ^ 0xFFFF)  # fmt: skip
            i += 1
        out.count = i

    def receive_many(self, datas: list[bytes], now: float) -> bool:
        """Match a burst: IPv4 answers without IP options are checked inline (ports,
        cookie, flags) and taken together (:meth:`accept_many`); anything else goes the
        general way."""
        host_index = self.hosts.index_of
        port_index = self.port_index
        src_index = self.src_index
        multi = len(self.src_ports) > 1
        per_host = self.per_host
        cookie_pack = Cookie.PACK.pack
        key = self.cookie.key
        unpack = _TCP_ANSWER.unpack_from
        outcomes = self._outcomes
        answers: list[tuple[int, int | None, PortOutcome]] = []
        hit = False
        for data in datas:
            if len(data) < 40 or data[0] != 0x45 or data[9] != 6:
                # IP options, ICMP, IPv6: parsed and matched the general way
                if super().receive_bytes(data, now):
                    hit = True
                continue
            sport, dport, _seq, ack, flags = unpack(data, 20)
            src = data[12:16]
            h = host_index(src)
            k = port_index.get(sport)
            t = src_index.get(dport)
            if h is None or k is None or t is None:
                continue
            if (ack - 1) & 0xFFFFFFFF != hash(cookie_pack(key, src, sport, dport)) & 0xFFFFFFFF:
                continue
            if flags & _RST:
                code = data[8]
            elif flags & _SYN_ACK == _SYN_ACK:
                code = 256 | data[8]
            else:
                continue
            outcome = outcomes.get(code) or self._outcome(code)
            answers.append((h * per_host + k, t if multi else None, outcome))
        if answers:
            self.now = now
            if self.accept_many(answers, now):
                hit = True
        return hit

    def build(self, index: int, tryno: int) -> tuple[IPAddress, bytes]:
        host, k = divmod(index, self.per_host)
        dport = self.ports[k]
        sport = self.src_ports[tryno % len(self.src_ports)]
        seq = self.cookie(self.hosts.packed(host), dport, sport)
        template = self._templates[self.source_index(host)]
        return self.hosts[host], template.build(self.hosts.ints[host], dport, sport, seq)

    def receive_bytes(self, data: bytes, now: float) -> bool:
        """One datagram: the burst path of :meth:`receive_many`."""
        return self.receive_many([data], now)

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
                return index, tryno, self._outcome(ttl)
            if flags & _SYN_ACK == _SYN_ACK:
                return index, tryno, self._outcome(256 | ttl)
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
            return found[0], self.icmp_tryno(pkt, found[0], found[1]), outcome
        return None

    def timeout_outcome(self, index: int) -> PortOutcome:
        return _SILENT
