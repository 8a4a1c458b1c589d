"""The generic probe-scanning state machine shared by the SYN, UDP and discovery scanners.

How this works
--------------
A scan is a space of ``n_hosts * per_host`` probes; probe ``i`` is slot ``i % per_host``
of host ``i // per_host``. The probes are visited in the order an iterator of indices
gives (a seeded permutation, so hosts interleave and no host is hammered); nothing is
materialised per probe except

* ``decided``: one bit per probe (the only state proportional to the space),
* ``times``: for each probe sent and not yet decided, the send time of each of its tries
  (tuple index = try number; the first tries sent together share one tuple), so an answer
  that names its try gives an exact round trip even when a later try is already out (a
  slow host among fast ones),
* ``inflight``: the probes whose latest try awaits an answer or its timeout (bounded by
  the congestion window), plus their timeouts in waves: one list per 2 ms tick of
  deadlines (rounded up), the ticks in a heap, answered entries skipped lazily,
* ``ready``: probes whose try timed out and that wait for their retransmission, and
  probes whose host could not take a probe when they came up (scan delay, host window),
* ``parked``: per host, probes whose host could not take another probe when they came up
  (its congestion window full, or its scan delay running). They wait there, out of the
  way of other hosts' probes, until that host has room again (one of its probes is
  answered or times out, or its scan delay passes), then go back to the front of
  ``ready``. Silent hosts with full windows thus never stall the rest of the scan. Sends
  owed to ``min_rate`` ignore both the window and the scan delay (as nmap's
  ``--min-rate``): while some are owed, parked probes are candidates again.
* ``bench``: probes out of tries on a host that looks rate limited (a scanner's
  :meth:`may_bench` says so, as nmap's "probe bench"): they get another round once nothing
  else is left to send, by when the host's scan delay has grown.

Per host, what every host needs is kept in flat arrays indexed by host (a few bytes each,
so a /16 costs well under a megabyte): its probes in flight, and only where the options
make them matter, when its scan started (``host_timeout``) and when it was last sent to
(``scan_delay``). A host's full timing state (:class:`HostTiming`: RTT estimate, window,
scan-delay boosts, retry allowance) exists only from its first answer: until then it is
exactly the group's defaults, and silent hosts, the bulk of a large scan, never get one.

``poll(now, limit)`` expires timed-out probes (each either queued for retransmission,
while the host's retry allowance lasts, or decided by :meth:`timeout_outcome`) and then
hands out up to ``limit`` ``(index, tryno)`` pairs to send, as far as the rate limiter and
the group and host congestion windows allow: retransmissions and deferred probes first,
then fresh ones. ``receive(packet, now)`` asks the subclass to ``match`` the packet to a
probe; an answer decides the probe, feeds an RTT sample when the try it answers is known
(Karn's rule: the try number travels in the probe) and tells the congestion control
whether it revealed a drop (an answer to a retransmission).

Subclasses build the packets (``build``), recognise answers (``match``), say what silence
means (``timeout_outcome``) and turn decisions into results (``decided``). Everything here
is pure: the engine feeds packets and the clock and sends what ``poll`` hands out.
"""

from __future__ import annotations

import abc
import heapq
import itertools
import math
from array import array
from collections import deque
from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

from pyscan._core.rate import RateLimiter
from pyscan._core.timing import GroupTiming, HostTiming, TimingParams
from pyscan._models import IPAddress
from pyscan._wire.packet import Packet, parse_packet
from pyscan.errors import PacketError

__all__ = ["FROM_US", "BatchOut", "Outcome", "ProbeScanner"]

Outcome = TypeVar("Outcome")


class BatchOut(Protocol):
    """Where :meth:`ProbeScanner.build_batch` puts probes (the engine's transmit batch)."""

    def put(self, dst: IPAddress, packet: bytes) -> None:
        """Append one datagram for ``dst``."""


_MAX_PARKED_PER_POLL = 4096  # bound on the work one poll spends parking probes
_TICK = 0.002  # seconds: timeouts are rounded up to a multiple of this (see _waves)
_GRACE = -1  # the "try number" of a wave entry that decides a probe out of tries by silence
#: The "try number" :meth:`ProbeScanner.match` gives an error our own host sent about a
#: probe (no ARP answer for an address on our link, a local firewall's REJECT): it decides
#: the probe, but it is no round trip and nothing heard from the target, so it does not
#: feed the timing (Linux reports a failed ARP after about 3 s: taken as round trips, those
#: errors held a /24's timeouts at their maximum).
FROM_US = -2


class ProbeScanner(abc.ABC, Generic[Outcome]):
    """Base of the raw-packet scanners (see the module docstring)."""

    #: IP protocols whose packets this scanner wants to see (6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6).
    protocols: frozenset[int] = frozenset()
    #: Floor (seconds) of the per-try timeout of a host that has not answered yet.
    unanswered_timeout_floor: float = 0.0

    def __init__(
        self,
        *,
        n_hosts: int,
        expected: int | None = None,
        per_host: int,
        order: Iterator[int],
        timing: TimingParams,
        rate: RateLimiter | None = None,
        udp: bool = False,
    ) -> None:
        self.n_hosts = n_hosts
        self.per_host = per_host
        self.total = n_hosts * per_host
        #: Probes this scanner decides: all of them, or its shard's share (``order`` then
        #: yields only those).
        self.expected = self.total if expected is None else expected
        self._order = order
        self._group = GroupTiming(timing, udp=udp)
        # Full timing state of the hosts that have answered (see the module docstring);
        # the others are "pristine": the group's defaults, as this template has them.
        self._hosts: dict[int, HostTiming] = {}
        self._pristine = self._group.new_host(0.0)
        # When each host's scan started (-1: not yet), for the host timeout only.
        self._started: array[float] | None = None
        if timing.host_timeout is not None:
            self._started = array("d", [-1.0]) * n_hosts
        # When each pristine host was last sent to (-1: never), for a --scan-delay only.
        self._last: array[float] | None = None
        if self._pristine.scan_delay.current > 0:
            self._last = array("d", [-1.0]) * n_hosts
        self._rate = rate
        self._decided = bytearray((self.total + 7) // 8)
        self.n_decided = 0
        self._times: dict[int, tuple[float, ...]] = {}
        self._inflight: set[int] = set()
        self._host_out = array("I", bytes(4 * n_hosts))  # probes in flight, per host
        # Timeouts of in-flight tries, in waves: every try whose deadline falls in one
        # tick (_TICK seconds, deadlines rounded up) shares a flat list [index, tryno, ...]
        # under that tick; a heap orders the ticks. One heap operation per wave, not per
        # probe: a burst of probes sent together times out together.
        self._waves: dict[int, list[int]] = {}
        self._wave_ticks: list[int] = []
        self._ready: deque[int] = deque()
        self._bench: deque[int] = deque()
        self._parked: dict[int, deque[int]] = {}
        self._unblocked: set[int] = set()  # hosts with parked probes that may have room
        self._gates: list[tuple[float, int]] = []  # (scan delay passes, host) to unpark
        self._bench_rounds: dict[int, int] = {}
        self._fresh_exhausted = self.expected == 0
        self._wake: float | None = None
        self.packets_sent = 0
        self.packets_matched = 0
        #: Packets the kernel dropped from our receive sockets while this scan ran.
        self.local_drops = 0
        #: The time of the packet being matched (for latency in ``match``).
        self.now = 0.0

    # -- hooks ---------------------------------------------------------------------------

    @abc.abstractmethod
    def build(self, index: int, tryno: int) -> tuple[IPAddress, bytes]:
        """The destination and the bytes of try ``tryno`` of probe ``index``."""

    @abc.abstractmethod
    def match(self, pkt: Packet) -> tuple[int, int | None, Outcome] | None:
        """``(index, tryno or None if unknown, outcome)`` for an answer to one of our
        probes, or None for anything else."""

    @abc.abstractmethod
    def timeout_outcome(self, index: int) -> Outcome:
        """What it means that probe ``index`` got no answer after its last try."""

    @abc.abstractmethod
    def decided(self, index: int, outcome: Outcome, now: float) -> None:
        """Probe ``index`` has its final outcome (called once per probe)."""

    #: Whether :meth:`accept_many` may report a burst's decisions together, after the
    #: burst (:meth:`decided_many`): only for scanners whose :meth:`decided` does not
    #: settle other probes (a host decided by one answer settles its others).
    defer_decisions: bool = False

    def decided_many(self, items: list[tuple[int, Outcome]], now: float) -> None:
        """Several probes have their final outcomes (default: :meth:`decided` on each)."""
        for index, outcome in items:
            self.decided(index, outcome, now)

    # -- state ---------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """Whether every probe is decided."""
        return self.n_decided >= self.expected

    def is_decided(self, index: int) -> bool:
        """Whether probe ``index`` has its final outcome."""
        return bool(self._decided[index >> 3] >> (index & 7) & 1)

    def undecided_taken(self) -> Iterator[int]:
        """The probes taken from the order and not decided yet: sent (in flight, or waiting
        for a retry or on the bench) or parked behind their host's window or scan delay.
        (A fresh probe goes straight from the order to one of these, or is decided.)"""
        decided = self._decided
        pools = itertools.chain(self._times, self._ready, self._bench, *self._parked.values())
        return (i for i in pools if not decided[i >> 3] >> (i & 7) & 1)

    @property
    def in_flight(self) -> int:
        """Probes sent and waiting for an answer or a timeout."""
        return len(self._inflight)

    def host_timing(self, host: int, now: float) -> HostTiming:
        """The full timing state of host ``host``, made from its pristine state (when its
        scan started, when it was last sent to) on first use: its first answer."""
        ht = self._hosts.get(host)
        if ht is None:
            ht = self._hosts[host] = self._group.new_host(self._start_of(host, now))
            if self._last is not None and self._last[host] >= 0.0:
                ht.scan_delay.last_send = self._last[host]
        return ht

    def _start_of(self, host: int, now: float) -> float:
        """When host ``host``'s scan started: its first send, or ``now`` if not yet (and
        then from ``now``, as far as the host timeout is concerned)."""
        started = self._started
        if started is None:
            return now
        if started[host] < 0.0:
            started[host] = now
        return started[host]

    def _timed_out(self, host: int, now: float) -> bool:
        """Whether host ``host``'s host timeout has passed at ``now``."""
        limit = self._group.params.host_timeout
        return limit is not None and now >= self._start_of(host, now) + limit

    def _view(self, host: int) -> HostTiming:
        """Host ``host``'s timing for reading: its own once it has answered, else the
        pristine template (the group's defaults; never to be changed through this)."""
        return self._hosts.get(host) or self._pristine

    def last_sent(self, index: int) -> float | None:
        """When the latest try of in-flight probe ``index`` was sent (None if not in flight)."""
        times = self._times.get(index)
        return times[-1] if times and index in self._inflight else None

    def settle(self, index: int) -> bool:
        """Mark ``index`` decided without an outcome (a host already decided by another of
        its probes); return False if it already was."""
        if self.is_decided(index):
            return False
        self._decided[index >> 3] |= 1 << (index & 7)
        self.n_decided += 1
        self._times.pop(index, None)
        self._bench_rounds.pop(index, None)
        if index in self._inflight:
            self._inflight.discard(index)
            host = index // self.per_host
            self._host_out[host] -= 1
            if host in self._parked:
                self._unblocked.add(host)
        return True

    def _decide(self, index: int, outcome: Outcome, now: float) -> None:
        if self.settle(index):
            self.decided(index, outcome, now)

    # -- time ----------------------------------------------------------------------------

    def _expire(self, now: float) -> None:
        ticks = self._wave_ticks
        if not ticks or ticks[0] * _TICK > now:
            return
        inflight = self._inflight
        times_of = self._times
        host_out = self._host_out
        parked = self._parked
        ready = self._ready
        per_host = self.per_host
        hosts = self._hosts
        pristine = self._pristine
        started = self._started
        # The common case written out: the default retry rule, the host not timed out.
        plain = type(self).may_retry is ProbeScanner.may_retry
        host_timeout = self._group.params.host_timeout
        # ... and, with no probe bench, silence after the last try decides at once: those
        # decisions are made together at the end (decided_many) where the scanner allows.
        final = plain and type(self).may_bench is ProbeScanner.may_bench
        deferred: list[tuple[int, Outcome]] | None = [] if self.defer_decisions else None
        decided = self._decided
        # What pristine hosts share does not change within this call (no answer is taken
        # in it): their retry allowance, and how long after its last try silence decides
        # one of their probes (_silence_timeout), are looked up once.
        pristine_allowed = pristine.retries_allowed
        unanswered: float | None = None
        while ticks and ticks[0] * _TICK <= now:
            wave = self._waves.pop(heapq.heappop(ticks))
            for i in range(0, len(wave), 2):
                index = wave[i]
                tryno = wave[i + 1]
                if tryno == _GRACE:  # out of tries, its late answer no longer awaited
                    if index not in inflight and self.settle(index):
                        outcome = self.timeout_outcome(index)
                        if deferred is None:
                            self.decided(index, outcome, now)
                        else:
                            deferred.append((index, outcome))
                    continue
                if index not in inflight or len(times_of[index]) - 1 != tryno:
                    continue  # answered, or a later try is in flight
                host = index // per_host
                ht = hosts.get(host) or pristine
                if (
                    started is not None
                    and host_timeout is not None
                    and now >= started[host] + host_timeout
                ):
                    self._expire_one(index, tryno, now)
                    continue
                if ht is pristine:
                    retry = plain and tryno < pristine_allowed
                else:
                    retry = plain and ht.may_retransmit(tryno)
                if not retry and not final:
                    self._expire_one(index, tryno, now)
                    continue
                inflight.discard(index)
                host_out[host] -= 1
                if host in parked:
                    self._unblocked.add(host)
                if retry:
                    ready.append(index)
                    continue
                if ht is pristine:
                    if unanswered is None:
                        unanswered = self._unanswered_timeout()
                    timeout = unanswered
                else:
                    timeout = self._silence_timeout(ht)
                if self._grace(index, timeout, now):
                    continue
                decided[index >> 3] |= 1 << (index & 7)
                self.n_decided += 1
                del times_of[index]
                outcome = self.timeout_outcome(index)
                if deferred is None:
                    self.decided(index, outcome, now)
                else:
                    deferred.append((index, outcome))
        if deferred:
            self.decided_many(deferred, now)

    def _expire_one(self, index: int, tryno: int, now: float) -> None:
        """Try ``tryno`` of in-flight probe ``index`` timed out: retry, bench or decide."""
        self._inflight.discard(index)
        host = index // self.per_host
        self._host_out[host] -= 1
        if host in self._parked:
            self._unblocked.add(host)
        gone = self._timed_out(host, now)
        if not gone and self.may_retry(index, tryno, self._view(host)):
            self._ready.append(index)
        elif not gone and self.may_bench(index, self._bench_rounds.get(index, 0)):
            self._bench_rounds[index] = self._bench_rounds.get(index, 0) + 1
            self._bench.append(index)
        elif gone or not self._grace(index, self._silence_timeout(self._view(host)), now):
            self._decide(index, self.timeout_outcome(index), now)

    def _unanswered_rto(self) -> float:
        """The per-try timeout of a host with no RTT sample of its own (a host with one has
        :attr:`HostTiming.probe_timeout`): the group's, as nmap's, estimated from the hosts
        that have answered (at least ``unanswered_timeout_floor``). Silent hosts, the bulk
        of many scans, hold their window no longer than an answer would take."""
        return max(self._group.probe_timeout, self.unanswered_timeout_floor)

    def _unanswered_timeout(self) -> float:
        """How long after its last try a probe of a host with no RTT sample of its own is
        decided by silence: never less than the initial RTT timeout. The group's estimate
        comes from other hosts, and a host farther away than they are would otherwise have
        its probes decided before its answers come; with this grace they are retransmitted
        early (:meth:`_unanswered_rto`) but a late answer still decides them."""
        return max(self._unanswered_rto(), self._group.params.initial_rtt_timeout)

    def _silence_timeout(self, ht: HostTiming) -> float:
        """How long after its last try silence decides a probe of the host timed by ``ht``:
        its timeout as it is now, the host's own if it has RTT samples by now (its tries may
        have been timed before it had), else :meth:`_unanswered_timeout`."""
        return ht.probe_timeout if ht.rtt.samples else self._unanswered_timeout()

    def _grace(self, index: int, timeout: float, now: float) -> bool:
        """Probe ``index`` is out of tries at ``now``; silence decides it ``timeout`` after
        its last try (:meth:`_silence_timeout`). If that is still to come, wait for it (out
        of the window) and return True; else return False (decide now)."""
        times = self._times.get(index)
        if not times:
            return False
        due = times[-1] + timeout
        if due <= now:
            return False
        wave = self._wave(due)
        wave.append(index)
        wave.append(_GRACE)
        return True

    def may_retry(self, index: int, tryno: int, ht: HostTiming) -> bool:
        """Whether probe ``index`` whose try ``tryno`` timed out gets another try (the host's
        retry allowance; scanners may widen it)."""
        del index
        return ht.may_retransmit(tryno)

    def may_bench(self, index: int, rounds: int) -> bool:
        """Whether probe ``index``, out of tries, goes to the bench for another round
        (``rounds`` it already had there). Default: never; the UDP scanner benches probes of
        hosts that rate-limit their ICMP errors."""
        del index, rounds
        return False

    def next_deadline(self) -> float | None:
        """When :meth:`poll` next needs calling without any packet arriving."""
        times = [t for t in (self._wake,) if t is not None]
        if self._wave_ticks:
            times.append(self._wave_ticks[0] * _TICK)
        return min(times) if times else None

    # -- sending -------------------------------------------------------------------------

    def _candidate(self) -> tuple[int, int] | None:
        while self._ready:
            index = self._ready.popleft()
            if not self.is_decided(index) and index not in self._inflight:
                return index, len(self._times.get(index, ()))
        while not self._fresh_exhausted:
            fresh = next(self._order, None)
            if fresh is None:
                self._fresh_exhausted = True
                break
            if not self.is_decided(fresh):
                return fresh, 0
        while self._bench and not self._ready:
            index = self._bench.popleft()
            if not self.is_decided(index) and index not in self._inflight:
                return index, len(self._times.get(index, ()))
        return None

    def poll(self, now: float, limit: int) -> list[tuple[int, int]]:
        """Expire what timed out, then the probes to send now: ``(index, tryno)`` pairs.

        The caller sends them (``build``) right away; they count as sent at ``now``.
        (This is the hot path of every raw scan: the checks of the module docstring are
        written out inline, with per-host figures looked up once per call.)
        """
        self._expire(now)
        self._unpark(now)
        self._wake = None
        out: list[tuple[int, int]] = []
        parked = 0
        rate = self._rate
        group = self._group
        glimit = group.cwnd.limit
        inflight = self._inflight
        times = self._times
        host_out = self._host_out
        hosts = self._hosts
        per_host = self.per_host
        decided = self._decided
        ready = self._ready
        order = self._order
        host_timeout = group.params.host_timeout
        started = self._started
        lasts = self._last
        # Pristine hosts (no answer yet) share the group's defaults: one timeout, one
        # window limit and the --scan-delay as it was set.
        pristine = self._pristine
        pristine_limit = pristine.cwnd.limit
        pristine_delay = pristine.scan_delay.current
        pristine_wave: list[int] | None = None
        first_try = (now,)  # the send times of every probe whose first try goes now
        # per host, for this call: (its timing if it has answered, window limit, the wave
        # its tries time out in, whether its host timeout has passed)
        cache: dict[int, tuple[HostTiming | None, int, list[int], bool]] = {}
        # Within one call the clock stands still, so the rate buckets do not refill: how
        # many sends the max_rate ceiling allows and how many min_rate forces are known.
        if rate is not None:
            ceiling = rate.ceiling_budget(now)
            forced_left = rate.forced_budget(now)
        else:
            ceiling = limit
            forced_left = 0
        if forced_left and self._parked:
            # sends owed to min_rate go whatever the host's scan delay or window (as nmap's
            # --min-rate): as many parked probes as are owed are candidates again
            self._unpark_owed(forced_left)
        rate_stop = False
        while len(out) < limit and parked < _MAX_PARKED_PER_POLL:
            n = len(out)
            cc = len(inflight) < glimit
            if n >= ceiling:
                rate_stop = True
                break
            forced = n < forced_left
            if not (cc or forced):
                rate_stop = rate is not None
                break
            if not ready and not self._fresh_exhausted:
                index = next(order, -1)
                if index < 0:
                    self._fresh_exhausted = True
                    continue
                if decided[index >> 3] >> (index & 7) & 1:
                    continue
                tryno = 0
            else:
                cand = self._candidate()
                if cand is None:
                    break
                index, tryno = cand
            host = index // per_host
            cached = cache.get(host)
            if cached is None:
                ht = hosts.get(host)
                if ht is None or not ht.rtt.samples:
                    if pristine_wave is None:
                        pristine_wave = self._wave(now + self._unanswered_rto())
                    wave = pristine_wave
                else:
                    wave = self._wave(now + ht.probe_timeout)
                gone = False
                if started is not None and host_timeout is not None:
                    if started[host] < 0.0:
                        started[host] = now
                    gone = now >= started[host] + host_timeout
                hlimit = pristine_limit if ht is None else ht.cwnd.limit
                cached = cache[host] = (ht, hlimit, wave, gone)
            ht, hlimit, wave, gone = cached
            if gone:  # the host timeout (HostTiming.timed_out) has passed
                self._decide(index, self.timeout_outcome(index), now)
                continue
            ho = host_out[host]
            if ht is None:
                delay = pristine_delay
                last = lasts[host] if lasts is not None and lasts[host] >= 0.0 else None
            else:
                delay = ht.scan_delay.current
                last = ht.scan_delay.last_send
            if not forced and ((last is not None and now < last + delay) or ho >= hlimit):
                queue = self._parked.get(host)
                if queue is None:
                    queue = self._parked[host] = deque()
                    gate = now if last is None else max(now, last + delay)
                    if gate > now:
                        heapq.heappush(self._gates, (gate, host))
                    elif not ho:
                        self._unblocked.add(host)  # nothing in flight will free it
                queue.append(index)
                parked += 1
                continue
            tl = times.get(index)
            times[index] = first_try if tl is None else (*tl, now)
            inflight.add(index)
            host_out[host] = ho + 1
            wave.append(index)
            wave.append(tryno)
            if last is None or now > last:
                if ht is not None:
                    ht.scan_delay.last_send = now
                elif lasts is not None:
                    lasts[host] = now
            out.append((index, tryno))
        sent = len(out)
        group.probes_sent += sent
        if rate is not None:
            if sent:
                rate.on_send(now, sent)
            if rate_stop:
                self._wake = rate.next_time(now, len(inflight) < glimit)
        if self._gates and (self._wake is None or self._gates[0][0] < self._wake):
            self._wake = self._gates[0][0]
        self.packets_sent += sent
        return out

    def _wave(self, deadline: float) -> list[int]:
        """The wave of timeouts that a try whose deadline is ``deadline`` joins."""
        tick = math.ceil(deadline / _TICK)
        wave = self._waves.get(tick)
        if wave is None:
            wave = self._waves[tick] = []
            heapq.heappush(self._wave_ticks, tick)
        return wave

    def build_batch(self, items: list[tuple[int, int]], out: BatchOut) -> None:
        """Build the probes ``items`` (from :meth:`poll`) into ``out`` (a transmit batch
        with room for them). Scanners with fixed-size probes override this to write into
        the batch's buffer directly."""
        for index, tryno in items:
            dst, data = self.build(index, tryno)
            out.put(dst, data)

    def _unpark(self, now: float) -> None:
        """Put back at the front of ``ready`` the parked probes of hosts that may have room
        again (a probe of theirs ended, or their scan delay has passed)."""
        while self._gates and self._gates[0][0] <= now:
            self._unblocked.add(heapq.heappop(self._gates)[1])
        if not self._unblocked:
            return
        back: list[int] = []
        for host in self._unblocked:
            queue = self._parked.pop(host, None)
            if queue:
                back.extend(queue)
        self._unblocked.clear()
        self._ready.extendleft(reversed(back))

    def _unpark_owed(self, count: int) -> None:
        """Put up to ``count`` parked probes (the longest parked hosts' first) back at the
        front of ``ready``: sends owed to ``min_rate`` take them whatever their host's
        window or scan delay. Only as many as are owed: the rest would only be parked
        again, poll after poll."""
        parked = self._parked
        back: list[int] = []
        emptied: list[int] = []
        for host, queue in parked.items():
            while queue and len(back) < count:
                back.append(queue.popleft())
            if not queue:
                emptied.append(host)
            if len(back) >= count:
                break
        for host in emptied:
            del parked[host]
        self._ready.extendleft(reversed(back))

    def pending_send(self) -> bool:
        """Whether probes wait to be sent (as opposed to answers being awaited)."""
        return (
            bool(self._ready)
            or bool(self._bench)
            or bool(self._parked)
            or not self._fresh_exhausted
        )

    def on_local_drops(self, count: int, now: float) -> bool:
        """The kernel dropped ``count`` packets queued for our receive sockets (the buffer
        was full: answers were read too slowly, and some of them were this scan's). Send
        slower: the group window reacts as to a drop, once per episode (drops reported
        within one probe timeout of the last reaction are part of it). Returns whether the
        window was reduced."""
        self.local_drops += count
        return self._group.cwnd.on_drop(
            now, len(self._inflight), first_sent=now - self._group.probe_timeout
        )

    # -- receiving -----------------------------------------------------------------------

    def receive_bytes(self, data: bytes, now: float) -> bool:
        """Feed a raw datagram routed here; return whether it decided a probe.

        Scanners may override this with a fast path for their common answers; this default
        parses the packet and calls :meth:`receive`. Malformed bytes decide nothing.
        """
        try:
            pkt = parse_packet(data)
        except PacketError:
            return False
        return self.receive(pkt, now)

    def receive_many(self, datas: list[bytes], now: float) -> bool:
        """Feed several raw datagrams routed here; return whether any decided a probe.
        Scanners override this to match a whole burst at once (:meth:`accept_many`)."""
        hit = False
        for data in datas:
            if self.receive_bytes(data, now):
                hit = True
        return hit

    def receive(self, pkt: Packet, now: float) -> bool:
        """Feed a packet the demultiplexer routed here; return whether it decided a probe."""
        self.now = now
        found = self.match(pkt)
        if found is None:
            return False
        index, tryno, outcome = found
        if tryno == FROM_US:
            if not 0 <= index < self.total or self.is_decided(index):
                return False
            self.packets_matched += 1
            self._decide(index, outcome, now)
            return True
        return self.accept(index, tryno, outcome, now)

    def accept(self, index: int, tryno: int | None, outcome: Outcome, now: float) -> bool:
        """Take an answer matched to probe ``index`` (try ``tryno`` if known)."""
        return self.accept_many([(index, tryno, outcome)], now) > 0

    def accept_many(self, answers: list[tuple[int, int | None, Outcome]], now: float) -> int:
        """Take a burst of matched answers (all received at ``now``); return how many
        decided a probe. Each host's timing takes its answers to original tries together,
        once at the end of the burst (:meth:`~pyscan._core.timing.HostTiming.on_answers`,
        equal to taking them one by one); answers to retransmissions (drops) are taken at
        once, in order."""
        total = self.total
        decided = self._decided
        times_of = self._times
        inflight = self._inflight
        host_out = self._host_out
        parked = self._parked
        unblocked = self._unblocked
        per_host = self.per_host
        hosts = self._hosts
        bench_rounds = self._bench_rounds
        on_decided = self.decided
        deferred: list[tuple[int, Outcome]] | None = [] if self.defer_decisions else None
        counts: dict[int, int] = {}  # answers to original tries, per host
        samples_of: dict[int, list[float]] = {}  # their RTT samples, per host
        n = 0
        for index, tryno, outcome in answers:
            if not 0 <= index < total:
                continue
            at, bit = index >> 3, 1 << (index & 7)
            if decided[at] & bit:
                continue
            host = index // per_host
            times = times_of.pop(index, None)
            sample: float | None = None
            if times:
                # Karn's rule: a sample only when the answer says which try it answers (or
                # there was only one).
                if tryno is not None and tryno < len(times):
                    sample = now - times[tryno]
                elif tryno is None and len(times) == 1:
                    sample = now - times[0]
                if sample is not None and sample < 0.0:
                    sample = 0.0
            if tryno:
                ht = hosts.get(host) or self.host_timing(host, now)
                ht.on_answer(
                    now,
                    tryno=tryno,
                    rtt_sample=sample,
                    host_outstanding=host_out[host],
                    group_outstanding=len(inflight),
                    first_sent=times[0] if times else None,
                )
            else:
                counts[host] = counts.get(host, 0) + 1
                if sample is not None:
                    got = samples_of.get(host)
                    if got is None:
                        samples_of[host] = [sample]
                    else:
                        got.append(sample)
            decided[at] |= bit
            self.n_decided += 1
            if index in inflight:
                inflight.discard(index)
                host_out[host] -= 1
                if host in parked:
                    unblocked.add(host)
            if bench_rounds:
                bench_rounds.pop(index, None)
            n += 1
            if deferred is None:
                on_decided(index, outcome, now)
            else:
                deferred.append((index, outcome))
        self.packets_matched += n
        if deferred:
            self.decided_many(deferred, now)
        if counts:
            everything = [x for samples in samples_of.values() for x in samples]
            scale = self._group.on_answers(sum(counts.values()), everything)
            no_samples: list[float] = []
            for host, count in counts.items():
                ht = hosts.get(host) or self.host_timing(host, now)
                ht.on_answers(count, samples_of.get(host, no_samples), scale)
        return n
