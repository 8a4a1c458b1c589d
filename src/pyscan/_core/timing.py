"""Retransmission timers, timing templates and per-host / per-group timing state.

How this works
--------------
**Round-trip time.** :class:`RttEstimator` follows RFC 6298: the first sample ``R`` sets
``SRTT = R`` and ``RTTVAR = R / 2``; each later sample ``R'`` sets
``RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R'|`` then ``SRTT = 7/8 SRTT + 1/8 R'``. The probe
timeout is ``SRTT + max(G, 4 RTTVAR)`` clamped to ``[min_timeout, max_timeout]``
(``--min-rtt-timeout`` / ``--max-rtt-timeout``); before any sample it is the clamped
``initial_timeout`` (``--initial-rtt-timeout``). There is no exponential back-off: like
nmap, a scan keeps one timeout per host and lets retransmission count, not timer growth,
deal with silence. Also like nmap, a sample that exceeds ``SRTT`` by more than
``max(1.5 s, 3 SRTT + 2 RTTVAR)`` is taken for a stray and ignored: an answer seconds late
(a target's retransmitted SYN-ACK, a packet held in an ARP queue) says nothing about the
path's round trip, and one would hold every silent probe for the maximum timeout.

*Karn's rule is the caller's job:* pass a sample to :meth:`RttEstimator.update` (or
``rtt_sample`` to :meth:`HostTiming.on_answer`) only when the answer is known to belong
to one particular transmission, i.e. the probe carries its try number (sequence number,
source port, ICMP id...). When an answer could be to either the original or a
retransmission, pass no sample.

**Host and group.** nmap scans hosts in groups and keeps timing twice: per target host and
for the whole group (nmap book, "Scan Code and Algorithms"). :class:`GroupTiming` holds the
group's RTT estimate and congestion window and the response-rate counters;
:class:`HostTiming` holds a host's own estimate, window, scan delay, retry allowance and
host-timeout clock. A host with no RTT sample yet uses the group's timeout, so a silent host
profits from what its neighbours taught. A probe may be sent to a host when both windows
have room, the host's scan delay has elapsed and its host timeout has not; the global
``--min-rate``/``--max-rate`` decision is :class:`~pyscan._core.rate.RateLimiter`'s.

**Retries.** ``max_retries`` is a ceiling, not a quota. A host starts allowed one
retransmission per probe; each answer that arrives to try ``k`` (the ``k``-th
retransmission) proves that ``k`` tries can be needed on this path and raises the allowance
to ``k + 1``, never above ``max_retries`` (nmap reference guide, ``--max-retries``: "If a
network seems reliable ... Nmap usually only does one retransmission"; with poor
reliability "it may try many more times"). An answer to a retransmission is also a *drop*:
the host and group windows shrink and the scan delay may be boosted.
"""

from __future__ import annotations

import math
from typing import Final

import attrs

from pyscan._core.congestion import CongestionParams, CongestionWindow
from pyscan._core.rate import ScanDelay
from pyscan.errors import OptionsError

__all__ = [
    "TEMPLATES",
    "GroupTiming",
    "HostTiming",
    "RttEstimator",
    "TimingParams",
    "TimingTemplate",
]

_ALPHA: Final = 1 / 8
_BETA: Final = 1 / 4
_K: Final = 4
# A sample this much (seconds) above SRTT, and more than 3 SRTT + 2 RTTVAR above it, is a
# stray, not a round trip (nmap's rule and figures).
_STRAY_EXCESS: Final = 1.5


def _check_seconds(name: str, value: float, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OptionsError(f"{name} must be a number of seconds, got {value!r}")
    if not math.isfinite(value) or value < 0 or (positive and value == 0):
        kind = "> 0" if positive else ">= 0"
        raise OptionsError(f"{name} must be a finite number of seconds {kind}, got {value!r}")


@attrs.define
class RttEstimator:
    """Smoothed RTT and probe timeout per RFC 6298, clamped to nmap's RTT timeout bounds.

    ``granularity`` is RFC 6298's ``G`` (clock granularity) in seconds.
    """

    initial_timeout: float = 1.0
    min_timeout: float = 0.1
    max_timeout: float = 10.0
    granularity: float = 0.001
    srtt: float | None = attrs.field(init=False, default=None)
    rttvar: float | None = attrs.field(init=False, default=None)
    samples: int = attrs.field(init=False, default=0)

    def __attrs_post_init__(self) -> None:
        _check_seconds("initial RTT timeout", self.initial_timeout, positive=True)
        _check_seconds("min RTT timeout", self.min_timeout)
        _check_seconds("max RTT timeout", self.max_timeout, positive=True)
        _check_seconds("clock granularity", self.granularity)
        if self.min_timeout > self.max_timeout:
            raise OptionsError(
                f"min RTT timeout ({self.min_timeout:g}s) must not exceed max RTT timeout "
                f"({self.max_timeout:g}s)"
            )

    def _clamp(self, value: float) -> float:
        return min(self.max_timeout, max(self.min_timeout, value))

    def update(self, sample: float) -> None:
        """Feed one unambiguous round-trip sample in seconds (see Karn's rule above)."""
        self.update_many([sample])

    def update_many(self, samples: list[float]) -> None:
        """Feed several samples in order (the same as calling :meth:`update` on each)."""
        srtt, rttvar, count = self.srtt, self.rttvar, self.samples
        keep_var, keep_rtt, stray, inf = 1 - _BETA, 1 - _ALPHA, _STRAY_EXCESS, math.inf
        try:
            for sample in samples:
                if not 0 <= sample < inf:
                    raise ValueError(
                        f"RTT sample must be a finite number of seconds >= 0, got {sample!r}"
                    )
                if srtt is None or rttvar is None:
                    srtt, rttvar = sample, sample / 2
                elif sample - srtt > stray and sample - srtt > 3 * srtt + 2 * rttvar:
                    continue  # a stray (see the module docstring): not a sample
                else:
                    rttvar = keep_var * rttvar + _BETA * abs(srtt - sample)
                    srtt = keep_rtt * srtt + _ALPHA * sample
                count += 1
        finally:  # the samples before a bad one are taken, as one by one
            self.srtt, self.rttvar, self.samples = srtt, rttvar, count

    @property
    def unclamped_timeout(self) -> float:
        """``SRTT + max(G, 4 RTTVAR)``, or ``initial_timeout`` before the first sample."""
        if self.srtt is None or self.rttvar is None:
            return self.initial_timeout
        return self.srtt + max(self.granularity, _K * self.rttvar)

    @property
    def timeout(self) -> float:
        """The probe timeout, always within ``[min_timeout, max_timeout]``."""
        return self._clamp(self.unclamped_timeout)


@attrs.frozen
class TimingParams:
    """Concrete timing numbers for one scan (seconds; ``None`` = no limit).

    Built by :meth:`TimingTemplate.params` or by
    :meth:`pyscan._options.ScanOptions.resolved` (template values overridden by explicit
    options).
    """

    initial_rtt_timeout: float
    min_rtt_timeout: float
    max_rtt_timeout: float
    max_retries: int
    scan_delay: float
    max_tcp_scan_delay: float
    max_udp_scan_delay: float
    host_timeout: float | None
    min_parallelism: int | None = None
    max_parallelism: int | None = None
    level: int = 3

    def __attrs_post_init__(self) -> None:
        _check_seconds("initial_rtt_timeout", self.initial_rtt_timeout, positive=True)
        _check_seconds("min_rtt_timeout", self.min_rtt_timeout)
        _check_seconds("max_rtt_timeout", self.max_rtt_timeout, positive=True)
        if not self.min_rtt_timeout <= self.max_rtt_timeout:
            raise OptionsError(
                f"min_rtt_timeout ({self.min_rtt_timeout:g}s) must not exceed "
                f"max_rtt_timeout ({self.max_rtt_timeout:g}s)"
            )
        if isinstance(self.max_retries, bool) or not isinstance(self.max_retries, int):
            raise OptionsError(f"max_retries must be an integer, got {self.max_retries!r}")
        if self.max_retries < 0:
            raise OptionsError(f"max_retries must be >= 0, got {self.max_retries}")
        _check_seconds("scan_delay", self.scan_delay)
        _check_seconds("max_tcp_scan_delay", self.max_tcp_scan_delay)
        _check_seconds("max_udp_scan_delay", self.max_udp_scan_delay)
        for name in ("max_tcp_scan_delay", "max_udp_scan_delay"):
            if self.scan_delay > getattr(self, name):
                raise OptionsError(
                    f"scan_delay ({self.scan_delay:g}s) must not exceed {name} "
                    f"({getattr(self, name):g}s)"
                )
        if self.host_timeout is not None:
            _check_seconds("host_timeout", self.host_timeout, positive=True)
        for name in ("min_parallelism", "max_parallelism"):
            value = getattr(self, name)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int) or value < 1
            ):
                raise OptionsError(f"{name} must be an integer >= 1, got {value!r}")
        if (
            self.min_parallelism is not None
            and self.max_parallelism is not None
            and self.min_parallelism > self.max_parallelism
        ):
            raise OptionsError(
                f"min_parallelism ({self.min_parallelism}) must not exceed "
                f"max_parallelism ({self.max_parallelism})"
            )

    def max_scan_delay(self, udp: bool = False) -> float:
        """The scan-delay ceiling for TCP/SCTP-like (default) or UDP probes."""
        return self.max_udp_scan_delay if udp else self.max_tcp_scan_delay


@attrs.frozen
class TimingTemplate:
    """One of nmap's ``-T0`` .. ``-T5`` timing templates (seconds; ``None`` = no limit).

    ``max_parallelism`` of ``None`` means dynamic (congestion control decides).
    """

    level: int
    name: str
    initial_rtt_timeout: float
    min_rtt_timeout: float
    max_rtt_timeout: float
    max_retries: int
    scan_delay: float
    max_tcp_scan_delay: float
    max_udp_scan_delay: float
    host_timeout: float | None
    max_parallelism: int | None

    def params(self) -> TimingParams:
        """This template's values as :class:`TimingParams`."""
        return TimingParams(
            initial_rtt_timeout=self.initial_rtt_timeout,
            min_rtt_timeout=self.min_rtt_timeout,
            max_rtt_timeout=self.max_rtt_timeout,
            max_retries=self.max_retries,
            scan_delay=self.scan_delay,
            max_tcp_scan_delay=self.max_tcp_scan_delay,
            max_udp_scan_delay=self.max_udp_scan_delay,
            host_timeout=self.host_timeout,
            max_parallelism=self.max_parallelism,
            level=self.level,
        )

    @classmethod
    def get(cls, key: TimingTemplate | int | str) -> TimingTemplate:
        """Look a template up by level (``4``), ``"4"``, ``"T4"`` or name (``"aggressive"``).

        Raises :class:`~pyscan.errors.OptionsError` for anything else.
        """
        if isinstance(key, TimingTemplate):
            return key
        if isinstance(key, int) and not isinstance(key, bool):
            if 0 <= key < len(TEMPLATES):
                return TEMPLATES[key]
        elif isinstance(key, str):
            text = key.strip().lower()
            if text.startswith("-t"):
                text = text[2:]
            elif text.startswith("t") and text[1:].isdigit():
                text = text[1:]
            for template in TEMPLATES:
                if text in (str(template.level), template.name):
                    return template
        names = ", ".join(f"T{t.level}/{t.name}" for t in TEMPLATES)
        raise OptionsError(f"unknown timing template {key!r}: expected 0-5 or one of {names}")


# nmap's timing templates, from "Nmap Network Scanning", chapter 6 "Optimizing Nmap
# Performance", Table 6.3 "Timing templates and their effects"
# (https://nmap.org/book/performance-timing-templates.html) and the reference guide's
# "Timing and Performance" section (nmap(1), -T). Checked against `nmap -d -sL -n -T<n>`
# in tests/core/test_timing.py. Scan-delay ceilings of T0/T1 are raised to their scan delay
# (the table's "5 minutes" / "15 seconds"); min-parallelism is dynamic in every template.
TEMPLATES: Final[tuple[TimingTemplate, ...]] = (
    TimingTemplate(0, "paranoid", 300.0, 0.1, 300.0, 10, 300.0, 300.0, 300.0, None, 1),
    TimingTemplate(1, "sneaky", 15.0, 0.1, 15.0, 10, 15.0, 15.0, 15.0, None, 1),
    TimingTemplate(2, "polite", 1.0, 0.1, 10.0, 10, 0.4, 1.0, 1.0, None, 1),
    TimingTemplate(3, "normal", 1.0, 0.1, 10.0, 10, 0.0, 1.0, 1.0, None, None),
    TimingTemplate(4, "aggressive", 0.5, 0.1, 1.25, 6, 0.0, 0.010, 1.0, None, None),
    TimingTemplate(5, "insane", 0.25, 0.05, 0.3, 2, 0.0, 0.005, 1.0, 900.0, None),
)

# First non-zero scan delay when boosting from zero: TCP answers (RSTs) are rarely rate
# limited as hard as ICMP port-unreachables, which classically allow about one per second.
_FIRST_BOOST_TCP: Final = 0.005
_FIRST_BOOST_UDP: Final = 0.05


@attrs.define
class GroupTiming:
    """Timing shared by one host group in one scan phase (one scan type).

    ``udp`` selects the UDP scan-delay ceiling and first boost step for its hosts.
    """

    params: TimingParams
    udp: bool = False
    rtt: RttEstimator = attrs.field(init=False)
    cwnd: CongestionWindow = attrs.field(init=False)
    probes_sent: int = attrs.field(init=False, default=0)
    answers: int = attrs.field(init=False, default=0)
    drops: int = attrs.field(init=False, default=0)
    _host_params: CongestionParams = attrs.field(init=False, repr=False)

    def __attrs_post_init__(self) -> None:
        p = self.params
        # one (frozen) parameter set shared by every host's window
        self._host_params = CongestionParams.bounded(
            p.min_parallelism, p.max_parallelism, reset_on_drop=True
        )
        self.rtt = RttEstimator(p.initial_rtt_timeout, p.min_rtt_timeout, p.max_rtt_timeout)
        self.cwnd = CongestionWindow(
            CongestionParams.bounded(p.min_parallelism, p.max_parallelism, reset_on_drop=False)
        )

    @property
    def scale(self) -> float:
        """Response-rate scale for window growth: probes sent per answer (at least 1)."""
        if self.answers == 0:
            return 1.0
        return max(1.0, self.probes_sent / self.answers)

    @property
    def probe_timeout(self) -> float:
        """The group's probe timeout (used for hosts without an RTT sample of their own)."""
        return self.rtt.timeout

    def can_send(self, outstanding: int) -> bool:
        """Whether the group window has room with ``outstanding`` probes in flight."""
        return self.cwnd.can_send(outstanding)

    def on_answers(self, count: int, samples: list[float]) -> float:
        """The group's share of ``count`` answers to original tries (with RTT ``samples``)
        from any of its hosts; returns the response-rate scale the hosts' windows grow
        with (see :meth:`HostTiming.on_answers`)."""
        self.answers += count
        if samples:
            self.rtt.update_many(samples)
        scale = self.scale
        self.cwnd.on_answers(count, scale)
        return scale

    def new_host(self, now: float) -> HostTiming:
        """Timing state for a host whose scan starts at ``now`` (its host timeout runs from
        here)."""
        p = self.params
        return HostTiming(
            group=self,
            started=now,
            rtt=RttEstimator(p.initial_rtt_timeout, p.min_rtt_timeout, p.max_rtt_timeout),
            cwnd=CongestionWindow(self._host_params),
            scan_delay=ScanDelay(
                minimum=p.scan_delay,
                maximum=p.max_scan_delay(self.udp),
                first_boost=_FIRST_BOOST_UDP if self.udp else _FIRST_BOOST_TCP,
            ),
        )


@attrs.define
class HostTiming:
    """Timing state of one target host; create it with :meth:`GroupTiming.new_host`."""

    group: GroupTiming = attrs.field(repr=False)
    started: float
    rtt: RttEstimator
    cwnd: CongestionWindow
    scan_delay: ScanDelay
    max_successful_tryno: int = 0
    probes_sent: int = 0
    answers: int = 0

    @property
    def probe_timeout(self) -> float:
        """How long to wait for an answer before retransmitting or giving up.

        The host's own estimate once it has a sample, the group's until then.
        """
        if self.rtt.samples:
            return self.rtt.timeout
        return self.group.probe_timeout

    def probe_deadline(self, sent_at: float) -> float:
        """When a probe sent at ``sent_at`` times out."""
        return sent_at + self.probe_timeout

    @property
    def host_deadline(self) -> float | None:
        """When ``--host-timeout`` gives up on this host (``None``: never)."""
        limit = self.group.params.host_timeout
        return None if limit is None else self.started + limit

    def timed_out(self, now: float) -> bool:
        """Whether the host timeout has expired at ``now``."""
        deadline = self.host_deadline
        return deadline is not None and now >= deadline

    @property
    def retries_allowed(self) -> int:
        """Retransmissions currently allowed per probe (see module docstring)."""
        ceiling = self.group.params.max_retries
        return min(ceiling, max(1, self.max_successful_tryno + 1))

    def may_retransmit(self, tryno: int) -> bool:
        """Whether a probe whose try ``tryno`` (0 = original) timed out may be sent again."""
        return tryno + 1 <= self.retries_allowed

    def can_send(self, now: float, host_outstanding: int, group_outstanding: int) -> bool:
        """Whether a probe may go to this host at ``now`` as far as timing is concerned.

        Checks the host timeout, the scan delay, and room in the host and group windows.
        """
        return (
            not self.timed_out(now)
            and self.scan_delay.ready(now)
            and self.cwnd.can_send(host_outstanding)
            and self.group.can_send(group_outstanding)
        )

    def next_send_time(self, now: float) -> float:
        """When the scan delay next lets a probe go (window room only frees on events)."""
        return self.scan_delay.next_time(now)

    def next_deadline(self, now: float) -> float | None:
        """The earliest future time this host needs attention without any event: the end
        of a running scan delay or the host timeout; ``None`` when neither is pending."""
        times = [t for t in (self.host_deadline,) if t is not None and t > now]
        gate = self.scan_delay.next_time(now)
        if gate > now:
            times.append(gate)
        return min(times) if times else None

    def on_send(self, now: float) -> None:
        """Record one probe (original or retransmission) sent to this host at ``now``."""
        self.scan_delay.on_send(now)
        self.probes_sent += 1
        self.group.probes_sent += 1

    def on_answers(self, count: int, samples: list[float], scale: float | None = None) -> None:
        """Record ``count`` answers to original tries (no drop revealed) at once, with the
        unambiguous RTT ``samples`` among them: for this host the same as ``count`` calls
        of :meth:`on_answer` with ``tryno=0``, the response-rate ``scale`` taken once.

        The group's share (its counts, RTT and window) is left to the caller when it
        passes ``scale``: a burst of answers from many hosts updates the group once
        (:meth:`GroupTiming.on_answers`). Without ``scale`` the group is updated here.
        """
        if count <= 0:
            return
        if scale is None:
            scale = self.group.on_answers(count, samples)
        self.answers += count
        if samples:
            self.rtt.update_many(samples)
        self.cwnd.on_answers(count, scale)
        self.scan_delay.note_answers(count)

    def on_answer(
        self,
        now: float,
        *,
        tryno: int = 0,
        rtt_sample: float | None = None,
        host_outstanding: int = 0,
        group_outstanding: int = 0,
        first_sent: float | None = None,
    ) -> bool:
        """Record an answer from this host; return whether it revealed a drop.

        ``tryno`` is the try the answer is known to belong to (0 = the original; pass 0 when
        that is not known), ``rtt_sample`` an unambiguous round-trip time or ``None``
        (Karn's rule), ``*_outstanding`` the probes in flight as the caller counts them,
        ``first_sent`` when the answered probe's first try went out (groups losses into one
        congestion episode; ``None`` treats every drop as new).
        """
        if tryno < 0:
            raise ValueError(f"tryno must be >= 0, got {tryno}")
        group = self.group
        self.answers += 1
        group.answers += 1
        if rtt_sample is not None:
            self.rtt.update(rtt_sample)
            group.rtt.update(rtt_sample)
        dropped = tryno > 0
        if dropped:
            self.max_successful_tryno = max(self.max_successful_tryno, tryno)
            group.drops += 1
            self.cwnd.on_drop(now, host_outstanding, first_sent)
            group.cwnd.on_drop(now, group_outstanding, first_sent)
        else:
            scale = group.scale
            self.cwnd.on_answer(scale)
            group.cwnd.on_answer(scale)
        self.scan_delay.note_answer(dropped, first_sent=first_sent, now=now)
        return dropped
