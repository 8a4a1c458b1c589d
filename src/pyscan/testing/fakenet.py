"""A simulated network for driving pyscan's pure scanners without sockets or sleeps.

How this works
--------------
A :class:`FakeNetwork` holds a truth table: target address -> :class:`FakeHost` (what each
TCP/UDP port does, whether the host answers ICMP echo and timestamp requests, its TTL, a
router that reports it unreachable...). Addresses not in the table are absent: nothing
answers for them.

The scanner's own bytes go in: :meth:`FakeNetwork.send` parses each probe with
:func:`~pyscan._wire.packet.parse_packet` (and checks its checksums), decides with a seeded
random generator whether it is lost, and computes the packets a Linux host (or the router
in front of it) sends back -- real IPv4/IPv6 datagrams built with the wire codecs:

* TCP SYN to an open port: SYN-ACK, ``ack = seq + 1``; to a closed port: RST/ACK,
  ``ack = seq + 1``; any segment with ACK set (open or closed port): RST, ``seq = its ack``.
* UDP to an open port: a UDP reply; to a closed port: ICMP port unreachable.
* A :class:`Reject` rule: ICMP destination unreachable with its code, from the host or a
  router, quoting the probe's IP header and its first 8 transport bytes.
* ICMP echo / timestamp requests: replies copying identifier, sequence (and echo data).

Answers are queued for delivery at ``now + 2 * one-way delay`` (plus optional jitter,
reordering delay and duplicates); each answer can be lost too. Everything that happens is
logged (:attr:`FakeNetwork.probes`, :attr:`FakeNetwork.deliveries`) so tests can check a
scan's results against what the network really did. Forged answers (wrong cookies, wrong
addresses, unprobed ports) and stray packets can be mixed in.

:func:`run_scanner` drives a :class:`~pyscan._core.probescan.ProbeScanner` the way the raw
engine does -- poll, build, send; route due packets through
:class:`~pyscan._core.demux.Demultiplexer` to ``receive``; sleep until the next deadline or
delivery -- on a :class:`ManualClock`, and fails (:class:`ScannerStuckError`) instead of hanging
when a scanner never finishes.
"""

from __future__ import annotations

import heapq
import ipaddress
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Literal, TypeAlias

import attrs

from pyscan._core.demux import Demultiplexer, FlowKey
from pyscan._core.probescan import ProbeScanner
from pyscan._core.rate import TokenBucket
from pyscan._core.slots import SlotBuffer
from pyscan._models import IPAddress
from pyscan._wire.icmp import (
    ICMPEcho,
    ICMPTimestamp,
    build_icmp_echo,
    build_icmp_error,
    build_icmp_timestamp,
    verify_icmp_checksum,
)
from pyscan._wire.icmpv6 import build_icmpv6_echo, build_icmpv6_error, verify_icmpv6_checksum
from pyscan._wire.ipv4 import verify_ipv4_checksum
from pyscan._wire.packet import (
    Packet,
    build_icmp_packet,
    build_tcp_packet,
    build_udp_packet,
    parse_packet,
)
from pyscan._wire.tcp import MSS, TCPFlags, verify_tcp_checksum
from pyscan._wire.udp import verify_udp_checksum
from pyscan.errors import PacketError

__all__ = [
    "CLOSED",
    "DROP",
    "OPEN",
    "Delivery",
    "FakeHost",
    "FakeNetwork",
    "FakeNetworkError",
    "ManualClock",
    "PortRule",
    "ProbeRecord",
    "Reject",
    "RunStats",
    "ScannerStuckError",
    "run_scanner",
    "stray_packets",
]

OPEN: Literal["open"] = "open"
CLOSED: Literal["closed"] = "closed"
DROP: Literal["drop"] = "drop"

_RST = int(TCPFlags.RST)
_SYN = int(TCPFlags.SYN)
_ACK = int(TCPFlags.ACK)
_FIN = int(TCPFlags.FIN)


class FakeNetworkError(AssertionError):
    """A scanner handed the fake network something a real network would not carry
    (a malformed packet, a bad checksum, a destination that disagrees with the bytes)."""


class ScannerStuckError(AssertionError):
    """:func:`run_scanner` gave up: the scanner was not done within the time allowed, or
    kept asking to be woken at the current time without doing anything."""


@attrs.define
class ManualClock:
    """A clock that only moves when told to: ``now`` in seconds."""

    now: float = 0.0

    def advance(self, seconds: float) -> float:
        """Move forward by ``seconds`` (>= 0); return the new time."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go back ({seconds!r} s)")
        self.now += seconds
        return self.now

    def advance_to(self, when: float) -> float:
        """Move forward to ``when`` (no-op if that is in the past); return the new time."""
        self.now = max(self.now, when)
        return self.now

    def __call__(self) -> float:
        return self.now


@attrs.frozen
class Reject:
    """An ICMP destination unreachable instead of an answer: an iptables ``REJECT`` rule on
    the host (``sender`` None) or a router at ``sender``. ``code`` is the family's code
    (ICMPv4 type 3 or ICMPv6 type 1); ``ttl`` that of the error (default: the host's)."""

    code: int
    sender: IPAddress | None = None
    ttl: int | None = None


PortRule: TypeAlias = Literal["open", "closed", "drop"] | Reject
"""What a port does with a probe: answer (open), refuse (closed), drop it, or reject it."""


def _rules(value: Mapping[int, PortRule] | None) -> dict[int, PortRule]:
    return dict(value or {})


@attrs.frozen
class FakeHost:
    """How one target behaves (Linux-like; see the module docstring).

    ``tcp`` / ``udp`` map ports to rules, other ports follow ``tcp_default`` /
    ``udp_default``. ``unreachable`` makes every probe to the host draw that ICMP error
    instead (a router's "host unreachable" for an absent host). ``delay`` overrides the
    network's one-way delay; ``quote`` is how many transport bytes ICMP errors quote after
    the IP header (None: as much as fits in 576 bytes, IPv6: 1280); ``icmp_rate`` is
    Linux's per-destination ICMP error limit, ``(errors per second, burst)``.
    """

    tcp: dict[int, PortRule] = attrs.field(factory=dict, converter=_rules)
    udp: dict[int, PortRule] = attrs.field(factory=dict, converter=_rules)
    tcp_default: PortRule = CLOSED
    udp_default: PortRule = CLOSED
    echo: bool = True
    timestamp: bool = True
    ttl: int = 64
    unreachable: Reject | None = None
    delay: float | None = None
    udp_reply: bytes = b"fakenet reply"
    quote: int | None = 8
    icmp_rate: tuple[float, int] | None = None

    @classmethod
    def silent(cls) -> FakeHost:
        """A host that drops everything (up, but firewalled shut)."""
        return cls(tcp_default=DROP, udp_default=DROP, echo=False, timestamp=False)

    def rule(self, protocol: Literal["tcp", "udp"], port: int) -> PortRule:
        """The rule for ``protocol``/``port``."""
        if protocol == "tcp":
            return self.tcp.get(port, self.tcp_default)
        return self.udp.get(port, self.udp_default)


@attrs.define(eq=False)
class ProbeRecord:
    """One packet a scanner sent, and what the network did with it.

    ``lost``: the probe never reached its destination. ``answers``: the arrival times of
    the answers that will reach (or reached) the scanner, duplicates included;
    ``answers_lost`` counts answers lost on the way back.
    """

    time: float
    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    packet: Packet = attrs.field(repr=False)
    lost: bool = False
    answers: list[float] = attrs.field(factory=list)
    answers_lost: int = 0

    @property
    def dst(self) -> IPAddress:
        """The probed address."""
        return self.packet.dst_ip

    @property
    def protocol(self) -> Literal["tcp", "udp", "icmp"]:
        """``"tcp"``, ``"udp"`` or ``"icmp"`` (ICMPv4 and ICMPv6)."""
        if self.packet.tcp is not None:
            return "tcp"
        if self.packet.udp is not None:
            return "udp"
        return "icmp"

    @property
    def dst_port(self) -> int | None:
        """The probed TCP/UDP port (None for ICMP)."""
        layer = self.packet.tcp or self.packet.udp
        return None if layer is None else layer.dst_port

    @property
    def src_port(self) -> int | None:
        """The TCP/UDP source port (None for ICMP)."""
        layer = self.packet.tcp or self.packet.udp
        return None if layer is None else layer.src_port

    @property
    def icmp_type(self) -> int | None:
        """The ICMP(v6) message type of an ICMP probe."""
        msg = self.packet.icmp or self.packet.icmpv6
        return None if msg is None else msg.type

    def answered_by(self, when: float) -> bool:
        """Whether an answer to this packet reached the scanner at or before ``when``."""
        return any(t <= when for t in self.answers)


DeliveryKind: TypeAlias = Literal["answer", "duplicate", "forged", "stray"]


@attrs.frozen
class Delivery:
    """A packet handed to the scanner side: when, its bytes, why it exists and, for
    answers and forgeries, the probe that provoked it."""

    time: float
    data: bytes = attrs.field(repr=lambda b: f"<{len(b)} bytes>")
    kind: DeliveryKind
    probe: ProbeRecord | None = None

    @property
    def packet(self) -> Packet:
        """The delivered bytes, parsed."""
        return parse_packet(self.data)


@attrs.define
class RunStats:
    """What :func:`run_scanner` saw: loop iterations, polls that sent something, packets
    sent and delivered, wake-ups with nothing scheduled (the engine's 1 s fallback) and
    wake-ups at the current time that did nothing (busy loops)."""

    iterations: int = 0
    sends: int = 0
    deliveries: int = 0
    idle_wakeups: int = 0
    spins: int = 0
    elapsed: float = 0.0


def _host_table(value: Mapping[IPAddress, FakeHost]) -> dict[IPAddress, FakeHost]:
    return dict(value)


_SPOOFER4 = ipaddress.IPv4Address("203.0.113.66")
_SPOOFER6 = ipaddress.IPv6Address("2001:db8:ffff::66")


@attrs.define
class FakeNetwork:
    """The simulated network (see the module docstring).

    ``delay`` is the one-way delay in seconds (a host's own ``delay`` overrides it);
    ``loss`` the probability that any packet (probe or answer) is lost, independently;
    ``duplicate`` the probability an answer arrives twice; ``reorder`` the probability an
    answer is held back by up to ``reorder_delay`` more seconds (so answers overtake each
    other and may arrive after the scanner's timeout); ``jitter`` a uniform extra delay per
    direction. ``lose`` loses chosen probes deterministically (called with each
    :class:`ProbeRecord` before it is answered). ``forge`` adds, for each probe, forged
    answers that must never be accepted: wrong cookies, right cookies from ``spoofer``,
    answers from ``forge_port`` (keep it out of the scanned ports), ICMP errors quoting an
    altered probe. ``seed`` makes every random choice reproducible.
    """

    hosts: dict[IPAddress, FakeHost] = attrs.field(converter=_host_table)
    delay: float = 0.01
    loss: float = 0.0
    duplicate: float = 0.0
    reorder: float = 0.0
    reorder_delay: float = 0.5
    jitter: float = 0.0
    seed: int = 0
    lose: Callable[[ProbeRecord], bool] | None = None
    forge: bool = False
    forge_port: int = 0
    spoofer: IPAddress | None = None
    verify_checksums: bool = True
    probes: list[ProbeRecord] = attrs.field(init=False, factory=list)
    deliveries: list[Delivery] = attrs.field(init=False, factory=list)
    last_run: RunStats | None = attrs.field(init=False, default=None)
    _queue: list[tuple[float, int, Delivery]] = attrs.field(init=False, factory=list)
    _counter: int = attrs.field(init=False, default=0)
    _rng: random.Random = attrs.field(init=False)
    _icmp_buckets: dict[IPAddress, TokenBucket] = attrs.field(init=False, factory=dict)

    def __attrs_post_init__(self) -> None:
        for name in ("loss", "duplicate", "reorder"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {value!r}")
        for name in ("delay", "reorder_delay", "jitter"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0 seconds, got {getattr(self, name)!r}")
        self._rng = random.Random(self.seed)

    # -- the wire --------------------------------------------------------------------------

    def send(self, data: bytes, now: float) -> ProbeRecord:
        """Carry one packet from the scanner, sent at ``now``; return its log record.

        Raises :class:`FakeNetworkError` if the bytes do not parse or a checksum is wrong.
        """
        data = bytes(data)
        try:
            pkt = parse_packet(data)
        except PacketError as exc:
            raise FakeNetworkError(f"scanner sent a malformed packet {data.hex()}: {exc}") from exc
        if self.verify_checksums:
            self._check(pkt, data)
        record = ProbeRecord(now, data, pkt)
        self.probes.append(record)
        rng = self._rng
        if rng.random() < self.loss or (self.lose is not None and self.lose(record)):
            record.lost = True
        host = self.hosts.get(pkt.dst_ip)
        one_way = self.delay if host is None or host.delay is None else host.delay
        if self.forge:
            for forged in self.forgeries(pkt):
                self._push(now + one_way, forged, "forged", record)
        if record.lost or host is None:
            return record
        for answer in self.answers(pkt, now, data):
            if rng.random() < self.loss:
                record.answers_lost += 1
                continue
            arrival = now + 2 * one_way + rng.uniform(0, 2 * self.jitter)
            if self.reorder and rng.random() < self.reorder:
                arrival += rng.uniform(0, self.reorder_delay)
            self._push(arrival, answer, "answer", record)
            record.answers.append(arrival)
            if self.duplicate and rng.random() < self.duplicate:
                again = arrival + rng.uniform(0, one_way + 1e-4)
                self._push(again, answer, "duplicate", record)
                record.answers.append(again)
        return record

    def inject(
        self, data: bytes, at: float, kind: DeliveryKind = "stray", probe: ProbeRecord | None = None
    ) -> None:
        """Queue any packet for delivery to the scanner side at ``at``."""
        self._push(at, bytes(data), kind, probe)

    def next_delivery(self) -> float | None:
        """When the next queued packet arrives (None: nothing queued)."""
        return self._queue[0][0] if self._queue else None

    def deliver(self, now: float) -> list[Delivery]:
        """Every queued packet due at or before ``now``, in arrival order (logged)."""
        out: list[Delivery] = []
        while self._queue and self._queue[0][0] <= now:
            out.append(heapq.heappop(self._queue)[2])
        self.deliveries.extend(out)
        return out

    @property
    def pending(self) -> int:
        """Packets queued and not yet delivered."""
        return len(self._queue)

    def _push(self, at: float, data: bytes, kind: DeliveryKind, probe: ProbeRecord | None) -> None:
        self._counter += 1
        heapq.heappush(self._queue, (at, self._counter, Delivery(at, data, kind, probe)))

    def _check(self, pkt: Packet, data: bytes) -> None:
        if pkt.version == 4:
            if not verify_ipv4_checksum(data):
                raise FakeNetworkError(f"bad IPv4 header checksum in {data.hex()}")
            start, end = pkt.ip.ihl * 4, pkt.ip.total_length  # type: ignore[union-attr]
        else:
            start, end = pkt.ip.header_length, 40 + pkt.ip.payload_length  # type: ignore[union-attr]
        upper = data[start:end]
        ok = True
        if pkt.tcp is not None:
            ok = verify_tcp_checksum(upper, pkt.src, pkt.dst)
        elif pkt.udp is not None:
            ok = verify_udp_checksum(upper, pkt.src, pkt.dst)
        elif pkt.icmp is not None:
            ok = verify_icmp_checksum(upper)
        elif pkt.icmpv6 is not None:
            ok = verify_icmpv6_checksum(upper, pkt.src, pkt.dst)
        if not ok:
            raise FakeNetworkError(f"bad transport checksum in {data.hex()}")

    # -- what hosts answer -------------------------------------------------------------------

    def answers(self, pkt: Packet, now: float = 0.0, data: bytes | None = None) -> list[bytes]:
        """What the target of ``pkt`` (or its router) sends back at ``now``: a list of zero
        or one packets. ``data`` is the probe's raw bytes (quoted by ICMP errors)."""
        host = self.hosts.get(pkt.dst_ip)
        if host is None:
            return []
        if host.unreachable is not None:
            return self._reject(host, pkt, host.unreachable, now, data)
        if pkt.tcp is not None:
            return self._tcp_answer(host, pkt, host.rule("tcp", pkt.tcp.dst_port), now, data)
        if pkt.udp is not None:
            return self._udp_answer(host, pkt, host.rule("udp", pkt.udp.dst_port), now, data)
        return self._icmp_answer(host, pkt, now)

    def _tcp_answer(
        self, host: FakeHost, pkt: Packet, rule: PortRule, now: float, data: bytes | None
    ) -> list[bytes]:
        tcp = pkt.tcp
        assert tcp is not None
        if isinstance(rule, Reject):
            return self._reject(host, pkt, rule, now, data)
        flags = int(tcp.flags)
        if rule == DROP or flags & _RST:
            return []
        tcp_ = tcp  # narrowed, for the closure

        def reply(flags: TCPFlags, seq: int, ack: int, window: int, options: list[MSS]) -> bytes:
            return build_tcp_packet(
                src=pkt.dst_ip,
                dst=pkt.src_ip,
                src_port=tcp_.dst_port,
                dst_port=tcp_.src_port,
                seq=seq,
                ack=ack,
                flags=flags,
                window=window,
                options=options,
                ttl=host.ttl,
                df=pkt.version == 4,
            )

        if flags & _ACK:  # RFC 793: a segment with ACK to no connection draws RST seq=its ack
            return [reply(TCPFlags.RST, tcp.ack, 0, 0, [])]
        if rule == OPEN:
            if not flags & _SYN:
                return []  # FIN/NULL/Xmas to a listening socket: dropped
            isn = self._rng.getrandbits(32)
            sa = TCPFlags.SYN | TCPFlags.ACK
            return [reply(sa, isn, (tcp.seq + 1) & 0xFFFFFFFF, 64240, [MSS(1460)])]
        length = len(pkt.payload) + (1 if flags & _SYN else 0) + (1 if flags & _FIN else 0)
        ra = TCPFlags.RST | TCPFlags.ACK
        return [reply(ra, 0, (tcp.seq + length) & 0xFFFFFFFF, 0, [])]

    def _udp_answer(
        self, host: FakeHost, pkt: Packet, rule: PortRule, now: float, data: bytes | None
    ) -> list[bytes]:
        udp = pkt.udp
        assert udp is not None
        if isinstance(rule, Reject):
            return self._reject(host, pkt, rule, now, data)
        if rule == DROP:
            return []
        if rule == CLOSED:
            return self._reject(host, pkt, Reject(3 if pkt.version == 4 else 4), now, data)
        return [
            build_udp_packet(
                src=pkt.dst_ip,
                dst=pkt.src_ip,
                src_port=udp.dst_port,
                dst_port=udp.src_port,
                payload=host.udp_reply,
                ttl=host.ttl,
            )
        ]

    def _icmp_answer(self, host: FakeHost, pkt: Packet, now: float) -> list[bytes]:
        msg = pkt.icmp if pkt.icmp is not None else pkt.icmpv6
        src, dst = pkt.dst_ip, pkt.src_ip
        if isinstance(msg, ICMPEcho) and not msg.is_reply and host.echo:
            if pkt.version == 4:
                reply = build_icmp_echo(
                    identifier=msg.identifier, sequence=msg.sequence, data=msg.data, reply=True
                )
            else:
                reply = build_icmpv6_echo(
                    src=src,
                    dst=dst,
                    identifier=msg.identifier,
                    sequence=msg.sequence,
                    data=msg.data,
                    reply=True,
                )
            return [build_icmp_packet(src=src, dst=dst, message=reply, ttl=host.ttl)]
        if isinstance(msg, ICMPTimestamp) and not msg.is_reply and host.timestamp:
            stamp = int(now * 1000) % 86_400_000  # ms since midnight UT (RFC 792)
            reply = build_icmp_timestamp(
                identifier=msg.identifier,
                sequence=msg.sequence,
                originate=msg.originate,
                receive=stamp,
                transmit=stamp,
                reply=True,
            )
            return [build_icmp_packet(src=src, dst=dst, message=reply, ttl=host.ttl)]
        return []

    def _reject(
        self, host: FakeHost, pkt: Packet, rule: Reject, now: float, data: bytes | None
    ) -> list[bytes]:
        if host.icmp_rate is not None:
            bucket = self._icmp_buckets.get(pkt.dst_ip)
            if bucket is None:
                rate, burst = host.icmp_rate
                bucket = self._icmp_buckets[pkt.dst_ip] = TokenBucket(rate, burst)
            if not bucket.take(now):
                return []  # rate limited: the error is never sent
        sender = pkt.dst_ip if rule.sender is None else rule.sender
        ttl = host.ttl if rule.ttl is None else rule.ttl
        return [
            icmp_unreachable(
                pkt, sender=sender, code=rule.code, ttl=ttl, quote=host.quote, data=data
            )
        ]

    # -- forgeries -------------------------------------------------------------------------

    def spoof_address(self, version: int) -> IPAddress:
        """The address forged answers come from (``spoofer``, or a documentation address)."""
        if self.spoofer is not None and self.spoofer.version == version:
            return self.spoofer
        return _SPOOFER4 if version == 4 else _SPOOFER6

    def forgeries(self, probe: Packet) -> list[bytes]:
        """Answers to ``probe`` that a correct scanner must ignore (see the class docstring).

        None of them carries both the right addresses and the right cookie of a probe the
        scanner sent, so accepting any of them is a scanner bug.
        """
        spoof = self.spoof_address(probe.version)
        me, target = probe.src_ip, probe.dst_ip
        out: list[bytes] = []
        if probe.tcp is not None:
            t = probe.tcp
            seq1 = (t.seq + 1) & 0xFFFFFFFF

            def seg(src: IPAddress, sport: int, flags: TCPFlags, seq: int, ack: int) -> bytes:
                return build_tcp_packet(
                    src=src, dst=me, src_port=sport, dst_port=t.src_port, seq=seq, ack=ack,
                    flags=flags,
                )  # fmt: skip

            sa = TCPFlags.SYN | TCPFlags.ACK
            out += [
                seg(target, t.dst_port, sa, 1, (t.seq + 2) & 0xFFFFFFFF),  # wrong cookie
                seg(target, t.dst_port, TCPFlags.RST | TCPFlags.ACK, 0, t.seq),  # wrong cookie
                seg(spoof, t.dst_port, sa, 1, seq1),  # right cookie, wrong address
                seg(spoof, t.dst_port, TCPFlags.RST | TCPFlags.ACK, 0, seq1),
                seg(target, self.forge_port, sa, 1, seq1),  # from an unprobed port
                seg(target, t.dst_port, TCPFlags.SYN, 1, seq1),  # SYN, not SYN-ACK
                seg(
                    target, t.dst_port, TCPFlags.RST, (t.ack + 1) & 0xFFFFFFFF, 0
                ),  # bad ACK cookie
                seg(spoof, t.dst_port, TCPFlags.RST, t.ack, 0),
            ]
            altered = build_tcp_packet(
                src=me,
                dst=target,
                src_port=t.src_port,
                dst_port=t.dst_port,
                seq=t.seq ^ 0x5A5A5A5A,
                flags=t.flags,
            )
            out.append(
                icmp_unreachable(parse_packet(altered), sender=target, code=13, data=altered)
            )
            elsewhere = build_tcp_packet(
                src=me, dst=spoof, src_port=t.src_port, dst_port=t.dst_port, seq=t.seq
            )
            out.append(
                icmp_unreachable(parse_packet(elsewhere), sender=target, code=13, data=elsewhere)
            )
        elif probe.udp is not None:
            u = probe.udp
            out += [
                build_udp_packet(
                    src=spoof, dst=me, src_port=u.dst_port, dst_port=u.src_port, payload=b"x"
                ),
                build_udp_packet(
                    src=target,
                    dst=me,
                    src_port=self.forge_port,
                    dst_port=u.src_port,
                    payload=b"x",
                ),
            ]
            elsewhere = build_udp_packet(
                src=me, dst=spoof, src_port=u.src_port, dst_port=u.dst_port
            )
            code = 3 if probe.version == 4 else 4
            out.append(
                icmp_unreachable(parse_packet(elsewhere), sender=target, code=code, data=elsewhere)
            )
        else:
            out += self._icmp_forgeries(probe, spoof)
        return out

    def _icmp_forgeries(self, probe: Packet, spoof: IPAddress) -> list[bytes]:
        msg = probe.icmp if probe.icmp is not None else probe.icmpv6
        me, target = probe.src_ip, probe.dst_ip
        v4 = probe.version == 4
        out: list[bytes] = []
        if isinstance(msg, ICMPEcho):

            def echo(src: IPAddress, ident: int, seq: int, reply: bool = True) -> bytes:
                if v4:
                    m = build_icmp_echo(identifier=ident, sequence=seq, reply=reply)
                else:
                    m = build_icmpv6_echo(
                        src=src, dst=me, identifier=ident, sequence=seq, reply=reply
                    )
                return build_icmp_packet(src=src, dst=me, message=m)

            out += [
                echo(target, msg.identifier ^ 0x8000, msg.sequence),  # wrong identifier
                echo(target, msg.identifier, msg.sequence, reply=False),  # a request
                echo(spoof, msg.identifier, msg.sequence),  # wrong address
                echo(target, msg.identifier, 0xFF00 | (msg.sequence & 0xFF)),  # no such probe
            ]
            if v4:  # a timestamp reply carrying the echo's identifier and sequence
                m = build_icmp_timestamp(
                    identifier=msg.identifier, sequence=msg.sequence, reply=True
                )
                out.append(build_icmp_packet(src=target, dst=me, message=m))
        elif isinstance(msg, ICMPTimestamp):

            def ts(src: IPAddress, ident: int, seq: int) -> bytes:
                m = build_icmp_timestamp(identifier=ident, sequence=seq, reply=True)
                return build_icmp_packet(src=src, dst=me, message=m)

            out += [
                ts(target, msg.identifier ^ 0x8000, msg.sequence),
                ts(spoof, msg.identifier, msg.sequence),
                ts(target, msg.identifier, 0xFF00 | (msg.sequence & 0xFF)),
            ]
            m = build_icmp_echo(identifier=msg.identifier, sequence=msg.sequence, reply=True)
            out.append(build_icmp_packet(src=target, dst=me, message=m))
        else:
            return out
        # An ICMP error from the target quoting a probe with another identifier.
        if v4:
            q = build_icmp_echo(identifier=msg.identifier ^ 0x8000, sequence=msg.sequence)
        else:
            q = build_icmpv6_echo(
                src=me, dst=target, identifier=msg.identifier ^ 0x8000, sequence=msg.sequence
            )
        raw = build_icmp_packet(src=me, dst=target, message=q)
        out.append(
            icmp_unreachable(parse_packet(raw), sender=target, code=1 if v4 else 3, data=raw)
        )
        return out


def icmp_unreachable(
    pkt: Packet,
    *,
    sender: IPAddress,
    code: int,
    ttl: int = 64,
    quote: int | None = 8,
    data: bytes | None = None,
) -> bytes:
    """An ICMP(v6) destination unreachable from ``sender`` to ``pkt``'s source, quoting
    ``pkt``'s IP header and its first ``quote`` transport bytes (None: as much as fits).

    ``data`` is ``pkt``'s raw bytes when available; otherwise they are rebuilt from
    ``pkt`` (IP header checksums and options may then differ from the original).
    """
    raw = data if data is not None else _raw(pkt)
    if pkt.version == 4:
        header = pkt.ip.header_length
        limit = 576 - 28 if quote is None else header + quote
        message = build_icmp_error(icmp_type=3, code=code, quoted=raw[:limit])
    else:
        header = pkt.ip.header_length
        limit = 1280 - 48 if quote is None else header + quote
        message = build_icmpv6_error(
            src=sender, dst=pkt.src_ip, icmp_type=1, code=code, quoted=raw[:limit]
        )
    return build_icmp_packet(src=sender, dst=pkt.src_ip, message=message, ttl=ttl)


def _raw(pkt: Packet) -> bytes:
    """Re-serialise a parsed probe (TCP, UDP, or ICMP echo) for quoting."""
    ttl = pkt.ip.ttl if pkt.version == 4 else pkt.ip.hop_limit  # type: ignore[union-attr]
    if pkt.tcp is not None:
        t = pkt.tcp
        return build_tcp_packet(
            src=pkt.src_ip,
            dst=pkt.dst_ip,
            src_port=t.src_port,
            dst_port=t.dst_port,
            seq=t.seq,
            ack=t.ack,
            flags=t.flags,
            window=t.window,
            options=t.options_raw,
            payload=pkt.payload,
            ttl=ttl,
        )
    if pkt.udp is not None:
        u = pkt.udp
        return build_udp_packet(
            src=pkt.src_ip,
            dst=pkt.dst_ip,
            src_port=u.src_port,
            dst_port=u.dst_port,
            payload=pkt.payload,
            ttl=ttl,
        )
    raise ValueError("icmp_unreachable needs the raw bytes of a non-TCP/UDP packet (data=...)")


def stray_packets(
    rng: random.Random,
    *,
    dst: IPAddress,
    ports: Sequence[int],
    count: int,
    icmp_ids: Iterable[int] = (),
    avoid: Iterable[IPAddress] = (),
) -> list[bytes]:
    """``count`` random packets to ``dst`` (the scanner's address) from random addresses of
    its family that are not in ``avoid`` (the targets): TCP segments with random flags,
    sequence and acknowledgement numbers, UDP datagrams, ICMP echo/timestamp replies and
    errors. Half of them hit the scanner's own ``ports`` / ``icmp_ids``, so they pass the
    demultiplexer and the scanner itself must reject them."""
    avoid_set = set(avoid)
    ids = list(icmp_ids) or [rng.randrange(1, 0x10000)]
    v4 = dst.version == 4
    out: list[bytes] = []
    while len(out) < count:
        src: IPAddress
        if v4:
            src = ipaddress.IPv4Address(rng.getrandbits(32))
        else:
            src = ipaddress.IPv6Address((0x2001_0DB8 << 96) | rng.getrandbits(96))
        if src in avoid_set or src == dst:
            continue
        port = rng.choice(ports) if ports and rng.random() < 0.5 else rng.randrange(1, 0x10000)
        kind = rng.randrange(4 if v4 else 3)
        if kind == 0:
            out.append(
                build_tcp_packet(
                    src=src,
                    dst=dst,
                    src_port=rng.randrange(1, 0x10000),
                    dst_port=port,
                    seq=rng.getrandbits(32),
                    ack=rng.getrandbits(32),
                    flags=rng.choice([0x12, 0x14, 0x04, 0x10, 0x02, 0x11]),
                )
            )
        elif kind == 1:
            out.append(
                build_udp_packet(
                    src=src,
                    dst=dst,
                    src_port=rng.randrange(1, 0x10000),
                    dst_port=port,
                    payload=rng.randbytes(rng.randrange(16)),
                )
            )
        elif kind == 2:
            ident = rng.choice(ids) if rng.random() < 0.5 else rng.randrange(0x10000)
            if v4:
                m = build_icmp_echo(identifier=ident, sequence=rng.randrange(0x10000), reply=True)
            else:
                m = build_icmpv6_echo(
                    src=src, dst=dst, identifier=ident, sequence=rng.randrange(0x10000), reply=True
                )
            out.append(build_icmp_packet(src=src, dst=dst, message=m))
        else:
            inner = parse_packet(
                build_tcp_packet(
                    src=dst,
                    dst=src,
                    src_port=port,
                    dst_port=rng.randrange(1, 0x10000),
                    seq=rng.getrandbits(32),
                )
            )
            out.append(icmp_unreachable(inner, sender=src, code=rng.choice([0, 1, 3, 13])))
    return out


def _flow_keys(scanner: ProbeScanner[Any]) -> list[FlowKey]:
    keys: list[FlowKey] = []
    for port in getattr(scanner, "src_ports", ()):
        keys += [("tcp", port), ("udp", port)]
    icmp_id = getattr(scanner, "icmp_id", None)
    if icmp_id is not None:
        keys.append(("icmp", icmp_id))
    return keys


def run_scanner(
    scanner: ProbeScanner[Any],
    net: FakeNetwork,
    clock: ManualClock,
    max_time: float = 600.0,
    *,
    batch: int = 256,
    keys: Iterable[FlowKey] | None = None,
    after_poll: Callable[[float, list[tuple[int, int]]], None] | None = None,
    max_spins: int = 1000,
    paths: Literal["engine", "simple"] = "engine",
) -> float:
    """Drive ``scanner`` over ``net`` until it is done; return the simulated seconds taken.

    Like the raw engine: deliver due packets (routed by a
    :class:`~pyscan._core.demux.Demultiplexer` holding ``keys``: by default the scanner's
    ``src_ports`` for TCP and UDP and its ``icmp_id``), poll for up to ``batch`` probes,
    build and send them, then move the clock to the earlier of the scanner's
    ``next_deadline()`` and the network's next delivery. With ``paths="engine"`` (the
    default) packets take the engine's batched paths: each instant's deliveries are routed
    as one burst (``route_many``) and fed to ``receive_many``, and probes are built with
    ``build_batch`` into a real transmit slot batch, each checked byte for byte against
    ``build``; ``paths="simple"`` feeds parsed packets to ``receive`` one by one and sends
    what ``build`` gives. Then move the clock to the earlier of the scanner's
    ``next_deadline()`` and the network's next delivery (1 s later if neither exists, as the
    engine's fallback wake-up does). ``after_poll(now, batch)`` sees every poll's output.
    Raises :class:`ScannerStuckError` after ``max_time`` simulated seconds, or after
    ``max_spins`` consecutive wake-ups at the same instant that neither sent nor received
    anything. Statistics are left in ``net.last_run``.
    """
    demux: Demultiplexer[ProbeScanner[Any]] = Demultiplexer()
    for key in _flow_keys(scanner) if keys is None else keys:
        demux.register(key, scanner)
    stats = RunStats()
    net.last_run = stats
    start = clock.now
    spins = 0
    while True:
        stats.iterations += 1
        now = clock.now
        progressed = False
        deliveries = net.deliver(now)
        if deliveries:
            stats.deliveries += len(deliveries)
            progressed = True
            if paths == "engine":
                burst = demux.route_many([d.data for d in deliveries]).get(scanner)
                if burst:
                    scanner.receive_many(burst, now)
            else:
                for delivery in deliveries:
                    pkt = parse_packet(delivery.data)
                    if demux.owner(pkt) is scanner:
                        scanner.receive(pkt, now)
        if scanner.done:
            break
        sent = scanner.poll(now, batch)
        if after_poll is not None:
            after_poll(now, sent)
        built = [scanner.build(index, tryno) for index, tryno in sent]
        if paths == "engine" and sent:
            _check_build_batch(scanner, sent, built)
        for (index, tryno), (dst, data) in zip(sent, built, strict=True):
            record = net.send(data, now)
            if record.dst != dst:
                raise FakeNetworkError(
                    f"build({index}, {tryno}) said {dst} but the packet goes to {record.dst}"
                )
        if sent:
            stats.sends += 1
            progressed = True
        if scanner.done:
            break
        if clock.now - start > max_time:
            raise ScannerStuckError(
                f"scanner not done after {max_time:g} simulated seconds: "
                f"{scanner.n_decided}/{scanner.total} decided, {scanner.in_flight} in flight"
            )
        if len(sent) == batch:
            continue
        times = [t for t in (scanner.next_deadline(), net.next_delivery()) if t is not None]
        if not times:
            stats.idle_wakeups += 1
            clock.advance(1.0)
            spins = 0
            continue
        nxt = min(times)
        if nxt <= now and not progressed:
            spins += 1
            stats.spins += 1
            if spins > max_spins:
                raise ScannerStuckError(
                    f"scanner asks to be woken at {nxt!r} <= now {now!r} and does nothing "
                    f"({spins} times in a row)"
                )
        else:
            spins = 0
        clock.advance_to(nxt)
    stats.elapsed = clock.now - start
    return stats.elapsed


def _check_build_batch(
    scanner: ProbeScanner[Any],
    sent: list[tuple[int, int]],
    built: list[tuple[IPAddress, bytes]],
) -> None:
    """Build ``sent`` with ``build_batch`` into transmit slots (as the engine does
    when every destination has one address family) and check each slot against ``build``."""
    versions = {dst.version for dst, _ in built}
    if len(versions) != 1:
        return
    out = SlotBuffer(versions.pop(), capacity=len(sent))
    scanner.build_batch(sent, out)
    if out.count != len(sent):
        raise FakeNetworkError(f"build_batch wrote {out.count} probes for {len(sent)}")
    for i, ((index, tryno), (dst, data)) in enumerate(zip(sent, built, strict=True)):
        got_dst, got = out.slot(i)
        if got != data or got_dst != dst:
            raise FakeNetworkError(
                f"build_batch slot {i} ({index}, {tryno}) differs from build: "
                f"{got_dst} {got.hex()} != {dst} {data.hex()}"
            )
