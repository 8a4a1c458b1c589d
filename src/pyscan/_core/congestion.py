"""Congestion control for probes in flight, after nmap's ultra_scan engine.

How this works
--------------
A scan cannot see the network's capacity, so like TCP it keeps a *congestion window*
(``cwnd``): how many probes may be outstanding (sent, neither answered nor given up on).
nmap keeps one window per target host and one for the whole host group; a probe needs
room in both (nmap book, "Scan Code and Algorithms": congestion control and
host/port parallelization). :class:`CongestionWindow` is one such window.

* **Slow start.** While ``cwnd < ssthresh`` each answer adds ``slow_start_increment``
  (times the scale below): the window doubles every round trip.
* **Congestion avoidance.** Above ``ssthresh`` each answer adds
  ``avoidance_increment / cwnd``: about one probe more per round trip.
* **Scaling by response rate.** Many probes are never answered (filtered ports), which
  would starve growth that is driven by answers. As in nmap (David Fifield, nmap-dev,
  "response rate scaled congestion control", 2007) the increment is multiplied by
  ``probes sent / answers received`` (at most ``max_scale``), so the window grows per
  *probe* at roughly the rate it would if everything were answered. The caller passes the
  scale; :class:`~pyscan._core.timing.GroupTiming` computes it.
* **Drops.** A timeout is *not* a drop here -- silence is a normal answer from a filtered
  port. A drop is detected when an answer arrives to a *retransmission*: the original
  probe (or its answer) was lost. Then ``ssthresh`` becomes half the probes in flight
  (at least 2) and the window shrinks: a host window falls back to ``min_cwnd`` (a host
  that drops packets is likely rate limiting or overloaded), the group window is halved
  (``cwnd / drop_cwnd_divisor``), since one host's losses say less about the shared path.
  Like TCP's one reduction per window, a loss of a probe first sent before the last
  reduction belongs to the same congestion episode and is ignored.
* **Bounds.** ``cwnd`` always stays within ``[min_cwnd, max_cwnd]`` (``--min-parallelism`` /
  ``--max-parallelism``; the class defaults are nmap's 1 and 300, scans use a wider
  ceiling, see :meth:`CongestionParams.bounded`; nmap: "the ideal parallelism can drop to one if the
  network proves unreliable and rise to several hundred in perfect conditions", nmap
  reference guide). A send is allowed while ``outstanding < floor(cwnd)``, so at least one
  probe can always be in flight.
"""

from __future__ import annotations

import math

import attrs

from pyscan.errors import OptionsError

__all__ = ["CongestionParams", "CongestionWindow"]


@attrs.frozen
class CongestionParams:
    """Constants of one congestion window (see the module docstring)."""

    min_cwnd: float = 1.0
    max_cwnd: float = 300.0
    initial_cwnd: float = 10.0
    initial_ssthresh: float = 50.0
    slow_start_increment: float = 1.0
    avoidance_increment: float = 1.0
    max_scale: float = 50.0
    #: On a drop: True resets cwnd to min_cwnd (host windows), False divides it (group).
    reset_on_drop: bool = False
    drop_cwnd_divisor: float = 2.0
    drop_ssthresh_divisor: float = 2.0

    def __attrs_post_init__(self) -> None:
        for field in attrs.fields(CongestionParams):
            value = getattr(self, field.name)
            if isinstance(value, bool):
                continue
            if not math.isfinite(value) or value <= 0:
                raise OptionsError(f"congestion {field.name} must be positive, got {value!r}")
        if self.min_cwnd < 1:
            raise OptionsError(f"congestion min_cwnd must be >= 1, got {self.min_cwnd!r}")
        if self.min_cwnd > self.max_cwnd:
            raise OptionsError(
                f"congestion min_cwnd ({self.min_cwnd:g}) must not exceed max_cwnd "
                f"({self.max_cwnd:g})"
            )
        if self.drop_cwnd_divisor < 1 or self.drop_ssthresh_divisor < 1:
            raise OptionsError("congestion drop divisors must be >= 1")
        if self.max_scale < 1:
            raise OptionsError(f"congestion max_scale must be >= 1, got {self.max_scale!r}")

    #: The ceiling scans use when ``--max-parallelism`` is not given (see :meth:`bounded`).
    SCAN_MAX_CWND = 4096.0

    @classmethod
    def bounded(
        cls,
        min_parallelism: int | None,
        max_parallelism: int | None,
        *,
        reset_on_drop: bool = False,
    ) -> CongestionParams:
        """The constants scans use, with the window bounded by ``--min/--max-parallelism``.

        Unlike nmap (ceiling 300, slow start until 50-75), the ceiling is
        :data:`SCAN_MAX_CWND` and slow start runs until the first drop (``ssthresh`` starts
        at the ceiling, as in TCP). Two reasons: raw probes carry a stateless cookie, so a
        wide window costs one set entry per probe in flight; and a Python event loop answers
        in batches, which adds milliseconds of processing latency to every measured round
        trip, so the window must be wider than a C scanner's to sustain the same rate
        (throughput = window / round trip). Drops still halve or reset it at once. The
        initial window (10) is moved inside the bounds.
        """
        low = float(min_parallelism) if min_parallelism is not None else 1.0
        high = (
            float(max_parallelism) if max_parallelism is not None else max(cls.SCAN_MAX_CWND, low)
        )
        initial = min(high, max(low, 10.0))
        return cls(
            min_cwnd=low,
            max_cwnd=high,
            initial_cwnd=initial,
            initial_ssthresh=high,
            reset_on_drop=reset_on_drop,
        )


@attrs.define
class CongestionWindow:
    """One congestion window (a host's or the group's)."""

    params: CongestionParams = attrs.field(factory=CongestionParams)
    cwnd: float = attrs.field(init=False)
    ssthresh: float = attrs.field(init=False)
    drops: int = attrs.field(init=False, default=0)
    last_drop: float | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        p = self.params
        self.cwnd = min(p.max_cwnd, max(p.min_cwnd, p.initial_cwnd))
        self.ssthresh = p.initial_ssthresh

    @property
    def in_slow_start(self) -> bool:
        """Whether the window is below ``ssthresh`` (growing by whole probes)."""
        return self.cwnd < self.ssthresh

    @property
    def limit(self) -> int:
        """How many probes may be outstanding at once: ``floor(cwnd)``, at least 1."""
        return max(1, math.floor(self.cwnd))

    def can_send(self, outstanding: int) -> bool:
        """Whether one more probe fits with ``outstanding`` probes already in flight."""
        return outstanding < self.limit

    def on_answer(self, scale: float = 1.0) -> None:
        """Grow the window for one answer to a probe that was not retransmitted.

        ``scale`` is the response-rate scale (``sent / answered``, clamped to
        ``[1, max_scale]`` here).
        """
        self.on_answers(1, scale)

    def on_answers(self, count: int, scale: float = 1.0) -> None:
        """:meth:`on_answer` ``count`` times with one ``scale``."""
        p = self.params
        s = min(p.max_scale, max(1.0, scale)) if math.isfinite(scale) else p.max_scale
        cwnd, ssthresh = self.cwnd, self.ssthresh
        lo, hi = p.min_cwnd, p.max_cwnd
        slow, avoid = p.slow_start_increment * s, p.avoidance_increment * s
        for _ in range(count):
            cwnd = min(hi, max(lo, cwnd + slow if cwnd < ssthresh else cwnd + avoid / cwnd))
            if cwnd >= hi:
                break
        self.cwnd = cwnd

    def on_drop(self, now: float, in_flight: int, first_sent: float | None = None) -> bool:
        """React to a detected loss; return whether the window was reduced.

        ``in_flight`` is the number of probes outstanding for this window, ``first_sent``
        the time the lost probe was first sent: a loss of a probe sent before the last
        reduction is part of the episode already reacted to and changes nothing.
        """
        if first_sent is not None and self.last_drop is not None and first_sent < self.last_drop:
            return False
        p = self.params
        self.drops += 1
        self.last_drop = now
        self.ssthresh = max(2.0, max(0, in_flight) / p.drop_ssthresh_divisor)
        if p.reset_on_drop:
            self.cwnd = p.min_cwnd
        else:
            self.cwnd = max(p.min_cwnd, self.cwnd / p.drop_cwnd_divisor)
        return True
