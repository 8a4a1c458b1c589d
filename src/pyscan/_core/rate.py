"""Send-rate arithmetic: token buckets, the min/max rate limiter and the per-host scan delay.

How this works
--------------
A :class:`TokenBucket` holds up to ``burst`` tokens and gains ``rate`` tokens per second.
Sending ``n`` packets takes ``n`` tokens, so over any interval of length ``t`` (starting full)
at most ``rate * t + burst`` packets go out. The bucket stores only the token count and the
time it was last brought up to date; every call takes ``now`` and refills lazily. Time never
runs backwards here: a ``now`` older than the last one seen counts as no time passing.

:class:`RateLimiter` combines nmap's two global rate options with congestion control
(nmap reference guide, "Timing and Performance", ``--min-rate`` / ``--max-rate``):

* ``max_rate`` is a hard ceiling: a token bucket at ``max_rate`` must have a token.
* Congestion control (the caller's ``cc_allows``, from the congestion windows) decides
  whether a send is wanted at all.
* ``min_rate`` overrides congestion control: a second bucket accrues "owed" sends at
  ``min_rate``; while it holds a whole send, a probe may go out even though the congestion
  window is full. Every send pays the debt down, so a scan already faster than ``min_rate``
  never owes anything. The owed credit is capped (``min_slack`` seconds' worth) so that a
  period with nothing to send (end of a host group) does not turn into a flood afterwards,
  which matches nmap's documented exception: the rate may fall below the minimum when there
  is nothing to send.

So a send is permitted when ``max-rate allows and (cc allows or min-rate is owed)``;
``min_rate <= max_rate`` is validated, so the two never contradict.

:class:`ScanDelay` is ``--scan-delay`` / ``--max-scan-delay``: a minimum gap between two
probes to the same host. It starts at the configured minimum and is *boosted* (doubled,
from a small first step when it is zero) when answers keep arriving to retransmissions,
which is how a rate-limiting target shows itself; it never exceeds the maximum and never
shrinks again during a scan (nmap: "Nmap tries to detect rate limiting and adjust the scan
delay accordingly").
"""

from __future__ import annotations

import math

import attrs

from pyscan.errors import OptionsError

__all__ = ["RateLimiter", "ScanDelay", "TokenBucket"]

# Tolerance in tokens for float rounding: a time returned by next_time() must make take()
# succeed even when (t - stamp) * rate rounds a hair below the exact count.
_EPS = 1e-9


def _check_rate(name: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise OptionsError(f"{name} must be a number of packets per second, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise OptionsError(f"{name} must be a positive finite number, got {value!r}")
    return float(value)


@attrs.define
class TokenBucket:
    """A token bucket: ``rate`` tokens per second, at most ``burst`` stored.

    It starts holding ``initial`` tokens (``burst`` by default) at the first ``now`` it sees.
    """

    rate: float
    burst: int
    initial: float | None = None
    _tokens: float = attrs.field(init=False, default=0.0)
    _stamp: float | None = attrs.field(init=False, default=None)

    def __attrs_post_init__(self) -> None:
        self.rate = _check_rate("token bucket rate", self.rate)
        if isinstance(self.burst, bool) or not isinstance(self.burst, int) or self.burst < 1:
            raise OptionsError(f"token bucket burst must be an integer >= 1, got {self.burst!r}")
        start = float(self.burst) if self.initial is None else float(self.initial)
        if not 0.0 <= start <= self.burst:
            raise OptionsError(
                f"token bucket initial tokens must be within 0..{self.burst}, got {self.initial!r}"
            )
        self._tokens = start

    def _refill(self, now: float) -> None:
        if self._stamp is None:
            self._stamp = now
        elif now > self._stamp:
            self._tokens = min(float(self.burst), self._tokens + (now - self._stamp) * self.rate)
            self._stamp = now

    def available(self, now: float) -> float:
        """Tokens held at ``now`` (a float: fractions of a token accrue continuously)."""
        self._refill(now)
        return max(0.0, self._tokens)

    def take(self, now: float, n: int = 1) -> bool:
        """Take ``n`` tokens if they are all there; return whether they were taken."""
        self._refill(now)
        if self._tokens + _EPS >= n:
            self._tokens -= n
            return True
        return False

    def force(self, now: float, n: int = 1) -> None:
        """Take ``n`` tokens even if they are not there: the bucket goes into debt, and later
        sends wait until it is paid back, so the long-run rate still holds."""
        self._refill(now)
        self._tokens -= n

    def drain(self, now: float, n: int = 1) -> None:
        """Take up to ``n`` tokens, as many as there are (never goes below zero)."""
        self._refill(now)
        self._tokens = max(0.0, self._tokens - n)

    def next_time(self, now: float, n: int = 1) -> float:
        """The earliest time ``>= now`` at which ``n`` tokens will be available.

        Raises :class:`~pyscan.errors.OptionsError` when ``n > burst`` (never possible).
        """
        if n > self.burst:
            raise OptionsError(f"cannot wait for {n} tokens from a bucket of burst {self.burst}")
        self._refill(now)
        missing = n - self._tokens
        if missing <= _EPS:
            return now
        assert self._stamp is not None
        return max(now, self._stamp + missing / self.rate)


def _default_burst(rate: float) -> int:
    # 10 ms worth of packets: enough to absorb timer jitter of an event loop at high rates,
    # one packet at a time at low rates.
    return max(1, math.ceil(rate * 0.01))


@attrs.define
class RateLimiter:
    """Global send permission combining ``--max-rate``, ``--min-rate`` and congestion control.

    ``burst`` is the ``max_rate`` bucket size (default: 10 ms of packets, at least 1);
    ``min_slack`` is how many seconds of unsent ``min_rate`` quota may be caught up later.
    Either rate may be ``None`` (no limit / no minimum).
    """

    max_rate: float | None = None
    min_rate: float | None = None
    burst: int | None = None
    min_slack: float = 0.1
    sent: int = attrs.field(init=False, default=0)
    _ceiling: TokenBucket | None = attrs.field(init=False, default=None, repr=False)
    _owed: TokenBucket | None = attrs.field(init=False, default=None, repr=False)

    def __attrs_post_init__(self) -> None:
        if self.max_rate is not None:
            self.max_rate = _check_rate("max_rate", self.max_rate)
            burst = _default_burst(self.max_rate) if self.burst is None else self.burst
            self._ceiling = TokenBucket(self.max_rate, burst)
        if self.min_rate is not None:
            self.min_rate = _check_rate("min_rate", self.min_rate)
            if self.max_rate is not None and self.min_rate > self.max_rate:
                raise OptionsError(
                    f"min_rate ({self.min_rate:g}) must not exceed max_rate ({self.max_rate:g})"
                )
            if not math.isfinite(self.min_slack) or self.min_slack < 0:
                raise OptionsError(f"min_slack must be >= 0 seconds, got {self.min_slack!r}")
            cap = max(1, math.ceil(self.min_rate * self.min_slack))
            # Starts owing one send, so a scan with min_rate sends at once.
            self._owed = TokenBucket(self.min_rate, cap, initial=1.0)

    def min_rate_due(self, now: float) -> bool:
        """Whether ``min_rate`` currently requires a send, whatever congestion control says."""
        return self._owed is not None and self._owed.available(now) + _EPS >= 1.0

    def ceiling_budget(self, now: float) -> int:
        """How many sends ``max_rate`` allows at ``now`` before the bucket refills (a large
        number without a ceiling): :meth:`may_send` says yes that many times in a row."""
        if self._ceiling is None:
            return 1 << 62
        return max(0, math.floor(self._ceiling.available(now) + _EPS))

    def forced_budget(self, now: float) -> int:
        """How many sends ``min_rate`` requires at ``now`` whatever congestion control says
        (:meth:`min_rate_due` says yes that many times in a row, as each send pays one)."""
        if self._owed is None:
            return 0
        return max(0, math.floor(self._owed.available(now) + _EPS))

    def may_send(self, now: float, cc_allows: bool = True) -> bool:
        """Whether one probe may be sent at ``now`` (a pure query; see :meth:`on_send`)."""
        if self._ceiling is not None and self._ceiling.available(now) + _EPS < 1.0:
            return False
        return cc_allows or self.min_rate_due(now)

    def on_send(self, now: float, n: int = 1) -> None:
        """Record that ``n`` probes were sent at ``now``.

        Sends beyond the ceiling (the caller did not ask first) put the ``max_rate`` bucket in
        debt, so the average stays at or below ``max_rate``, as nmap documents.
        """
        if self._ceiling is not None:
            self._ceiling.force(now, n)
        if self._owed is not None:
            self._owed.drain(now, n)
        self.sent += n

    def try_send(self, now: float, cc_allows: bool = True) -> bool:
        """:meth:`may_send` and, when it says yes, :meth:`on_send`; returns the answer."""
        if self.may_send(now, cc_allows):
            self.on_send(now)
            return True
        return False

    def next_time(self, now: float, cc_allows: bool = True) -> float | None:
        """When a send may next be permitted.

        With ``cc_allows`` true this is when the ``max_rate`` ceiling allows one (``now`` if
        it does already). With ``cc_allows`` false it is when ``min_rate`` will force one, or
        ``None`` without a ``min_rate``: then only a congestion-control event (an answer or a
        timeout freeing the window) can allow a send, so there is no deadline to arm.
        """
        ceiling = now if self._ceiling is None else self._ceiling.next_time(now)
        if cc_allows:
            return ceiling
        if self._owed is None:
            return None
        return max(ceiling, self._owed.next_time(now))


@attrs.define
class ScanDelay:
    """The minimum gap between two probes to one host (``--scan-delay``, ``--max-scan-delay``).

    ``minimum`` is the configured ``--scan-delay`` (the starting and lowest value),
    ``maximum`` the ceiling boosting may reach, ``first_boost`` the delay used when boosting
    from zero (nmap-like: a few ms for TCP, more for UDP whose ICMP errors are rate limited).
    Boosting happens in :meth:`note_answer` once at least ``boost_min_drops`` answers to
    retransmissions make up more than ``boost_drop_ratio`` of the answers since the last
    change; these thresholds are pyscan's own (nmap documents the behaviour, not numbers).
    A drop of a probe first sent before the last boost belongs to the losses that boost
    answered and counts as a plain answer (given the times, see :meth:`note_answer`):
    otherwise retransmissions of probes lost in one burst, answered one by one while the
    delay paces them, would boost it again and again to ``maximum`` long after the loss.
    """

    minimum: float = 0.0
    maximum: float = 1.0
    first_boost: float = 0.005
    boost_min_drops: int = 5
    boost_drop_ratio: float = 0.1
    current: float = attrs.field(init=False, default=0.0)
    #: When the delay was last raised (None: never, or the caller gave no time).
    boosted_at: float | None = attrs.field(init=False, default=None)
    last_send: float | None = attrs.field(init=False, default=None)
    _answers: int = attrs.field(init=False, default=0, repr=False)
    _drops: int = attrs.field(init=False, default=0, repr=False)

    def __attrs_post_init__(self) -> None:
        for name in ("minimum", "maximum", "first_boost"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:
                raise OptionsError(f"scan delay {name} must be >= 0 seconds, got {value!r}")
        if self.minimum > self.maximum:
            raise OptionsError(
                f"scan delay ({self.minimum:g}s) must not exceed max scan delay ({self.maximum:g}s)"
            )
        self.current = self.minimum

    def ready(self, now: float) -> bool:
        """Whether a probe may go to this host at ``now``."""
        return self.last_send is None or now >= self.last_send + self.current

    def next_time(self, now: float) -> float:
        """The earliest time ``>= now`` at which the next probe may go."""
        if self.last_send is None:
            return now
        return max(now, self.last_send + self.current)

    def on_send(self, now: float) -> None:
        """Record a probe sent to this host at ``now``."""
        if self.last_send is None or now > self.last_send:
            self.last_send = now

    def boost(self, now: float | None = None) -> float:
        """Raise the delay one step (zero -> ``first_boost``, else double), capped at
        ``maximum``, at time ``now``; returns the new delay."""
        step = self.first_boost if self.current <= 0 else self.current * 2
        self.current = min(self.maximum, max(self.minimum, step))
        self._answers = self._drops = 0
        if now is not None:
            self.boosted_at = now
        return self.current

    def note_answers(self, count: int) -> None:
        """Count ``count`` answers to original tries (they never boost the delay: only the
        share of drops among answers does, and these lower it)."""
        self._answers += count

    def note_answer(
        self, retransmitted: bool, *, first_sent: float | None = None, now: float | None = None
    ) -> bool:
        """Count an answer (``retransmitted``: it answered a retransmission, so the original
        was lost; ``first_sent``: when that original went out) and boost the delay if drops
        have become frequent; returns whether it did. ``now`` dates a boost."""
        self._answers += 1
        old_loss = (
            first_sent is not None and self.boosted_at is not None and first_sent < self.boosted_at
        )
        if retransmitted and not old_loss:
            self._drops += 1
        if (
            self._drops >= self.boost_min_drops
            and self._drops > self.boost_drop_ratio * self._answers
            and self.current < self.maximum
        ):
            self.boost(now)
            return True
        return False
