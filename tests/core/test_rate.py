"""Token buckets, the min/max rate limiter and the per-host scan delay, on a manual clock."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyscan._core.rate import RateLimiter, ScanDelay, TokenBucket
from pyscan.errors import OptionsError

TOL = 1e-6

rates = st.floats(min_value=0.5, max_value=5000, allow_nan=False, allow_infinity=False)
bursts = st.integers(min_value=1, max_value=20)
# A schedule of (time step, tokens asked for) pairs.
schedules = st.lists(
    st.tuples(st.floats(min_value=0, max_value=2, allow_nan=False), st.integers(1, 5)),
    min_size=1,
    max_size=60,
)


# -- TokenBucket ---------------------------------------------------------------------------


def test_bucket_starts_full_then_refills_at_rate() -> None:
    b = TokenBucket(rate=10, burst=3)
    assert [b.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert not b.take(0.05)
    assert b.take(0.1)
    assert not b.take(0.1)
    assert b.available(10.0) == 3  # capped at burst after a long pause


def test_bucket_next_time_is_exact_and_take_then_succeeds() -> None:
    b = TokenBucket(rate=10, burst=1)
    assert b.next_time(0.0) == 0.0
    assert b.take(0.0)
    t = b.next_time(0.0)
    assert t == pytest.approx(0.1)
    assert not b.take(t - 1e-3)
    assert b.take(t)


def test_bucket_next_time_for_several_tokens() -> None:
    b = TokenBucket(rate=4, burst=5, initial=0)
    assert b.available(1.0) == 0  # the clock starts at the first call
    assert b.next_time(1.0, n=2) == pytest.approx(1.5)
    assert b.available(1.25) == pytest.approx(1.0)


def test_bucket_refuses_impossible_waits_and_bad_construction() -> None:
    b = TokenBucket(rate=1, burst=2)
    with pytest.raises(OptionsError, match="burst 2"):
        b.next_time(0.0, n=3)
    for rate in (0, -1, math.inf, math.nan):
        with pytest.raises(OptionsError, match="rate"):
            TokenBucket(rate=rate, burst=1)
    with pytest.raises(OptionsError, match="burst"):
        TokenBucket(rate=1, burst=0)
    with pytest.raises(OptionsError, match="initial"):
        TokenBucket(rate=1, burst=2, initial=3)


def test_bucket_ignores_time_going_backwards() -> None:
    b = TokenBucket(rate=1, burst=1)
    assert b.take(10.0)
    assert not b.take(5.0)
    assert not b.take(10.5)
    assert b.take(11.0)


def test_bucket_force_goes_into_debt() -> None:
    b = TokenBucket(rate=10, burst=1)
    b.force(0.0, 3)  # 1 - 3 = -2 tokens
    assert b.available(0.0) == 0
    assert b.next_time(0.0) == pytest.approx(0.3)


@given(rates, bursts, schedules)
def test_bucket_never_exceeds_rate_times_t_plus_burst(
    rate: float, burst: int, schedule: list[tuple[float, int]]
) -> None:
    b = TokenBucket(rate=rate, burst=burst)
    now = 0.0
    granted: list[tuple[float, int]] = []
    for step, n in schedule:
        now += step
        if b.take(now, n):
            granted.append((now, n))
    # Over every window [t_i, t_j] of the schedule, not only from the start.
    for i, (start, _) in enumerate(granted):
        total = 0
        for end, n in granted[i:]:
            total += n
            assert total <= rate * (end - start) + burst + TOL


@given(rates, bursts, schedules)
def test_bucket_next_time_is_when_take_succeeds(
    rate: float, burst: int, schedule: list[tuple[float, int]]
) -> None:
    b = TokenBucket(rate=rate, burst=burst)
    now = 0.0
    for step, n in schedule:
        now += step
        n = min(n, burst)
        t = b.next_time(now, n)
        assert t >= now
        if t > now:
            assert not b.take(now, n)
        assert b.take(t, n)
        now = t


@given(rates, bursts, st.floats(min_value=0.1, max_value=5))
def test_greedy_sender_reaches_the_rate(rate: float, burst: int, horizon: float) -> None:
    b = TokenBucket(rate=rate, burst=burst)
    now, sent = 0.0, 0
    while True:
        now = b.next_time(now)
        if now > horizon:
            break
        assert b.take(now)
        sent += 1
    assert sent >= math.floor(rate * horizon) + burst - 1
    assert sent <= rate * horizon + burst + TOL


# -- RateLimiter -----------------------------------------------------------------------------


def test_unlimited_limiter_follows_congestion_control() -> None:
    rl = RateLimiter()
    assert rl.may_send(0.0, cc_allows=True)
    assert not rl.may_send(0.0, cc_allows=False)
    assert rl.next_time(3.0, cc_allows=True) == 3.0
    assert rl.next_time(3.0, cc_allows=False) is None
    assert rl.try_send(3.0)
    assert rl.sent == 1


def test_max_rate_caps_even_when_cc_allows() -> None:
    rl = RateLimiter(max_rate=10, burst=1)
    assert rl.try_send(0.0)
    assert not rl.try_send(0.05)
    assert rl.next_time(0.05) == pytest.approx(0.1)
    assert rl.try_send(0.1)


def test_default_burst_is_ten_milliseconds_of_packets() -> None:
    rl = RateLimiter(max_rate=1000)
    sent = 0
    while rl.try_send(0.0):
        sent += 1
    assert sent == 10
    assert RateLimiter(max_rate=5).next_time(0.0) == 0.0


def test_sends_without_asking_put_the_ceiling_in_debt() -> None:
    rl = RateLimiter(max_rate=10, burst=1)
    for _ in range(5):  # one from the burst, four on credit
        rl.on_send(0.0)
    # 0.4 s to pay the debt back, 0.1 s more for a whole token.
    assert rl.next_time(0.0) == pytest.approx(0.5)
    assert not rl.may_send(0.49)
    assert rl.may_send(0.5)


def test_min_rate_overrides_congestion_control() -> None:
    rl = RateLimiter(min_rate=4)
    # Owes one send at the start, then one every 1/4 s.
    assert rl.try_send(0.0, cc_allows=False)
    assert not rl.may_send(0.2, cc_allows=False)
    assert rl.next_time(0.2, cc_allows=False) == pytest.approx(0.25)
    assert rl.min_rate_due(0.25)
    assert rl.try_send(0.25, cc_allows=False)


def test_sends_under_cc_pay_down_the_min_rate_quota() -> None:
    rl = RateLimiter(min_rate=10)
    for i in range(20):  # 20 sends in the first second: twice the minimum
        assert rl.try_send(i * 0.05, cc_allows=True)
    assert not rl.min_rate_due(1.0)
    assert rl.next_time(1.0, cc_allows=False) == pytest.approx(1.05)


def test_min_rate_does_not_flood_after_an_idle_period() -> None:
    rl = RateLimiter(min_rate=100, min_slack=0.1)
    rl.on_send(0.0)
    forced = 0
    while rl.try_send(60.0, cc_allows=False):  # nothing was sent for a minute
        forced += 1
    assert forced == 10  # 0.1 s worth of catch-up, not 6000 packets


def test_min_rate_never_breaks_max_rate() -> None:
    rl = RateLimiter(min_rate=10, max_rate=10, burst=1)
    assert rl.try_send(0.0, cc_allows=False)
    assert not rl.try_send(0.05, cc_allows=False)
    assert rl.next_time(0.05, cc_allows=False) == pytest.approx(0.1)


def test_limiter_validation() -> None:
    with pytest.raises(OptionsError, match=r"min_rate \(20\) must not exceed max_rate \(10\)"):
        RateLimiter(min_rate=20, max_rate=10)
    with pytest.raises(OptionsError, match="max_rate"):
        RateLimiter(max_rate=-1)
    with pytest.raises(OptionsError, match="min_rate"):
        RateLimiter(min_rate=0)
    with pytest.raises(OptionsError, match="min_slack"):
        RateLimiter(min_rate=1, min_slack=-1)


@settings(max_examples=60)
@given(
    st.floats(min_value=1, max_value=2000),
    st.one_of(st.none(), st.floats(min_value=1, max_value=4)),
    st.floats(min_value=0.5, max_value=3),
)
def test_min_rate_is_honoured_when_cc_never_allows(
    min_rate: float, max_factor: float | None, horizon: float
) -> None:
    max_rate = None if max_factor is None else min_rate * max_factor
    rl = RateLimiter(min_rate=min_rate, max_rate=max_rate)
    now, sent = 0.0, 0
    while True:
        t = rl.next_time(now, cc_allows=False)
        assert t is not None
        if t > horizon:
            break
        now = t
        assert rl.try_send(now, cc_allows=False)
        sent += 1
    assert sent >= math.floor(min_rate * horizon)
    if max_rate is not None:
        burst = max(1, math.ceil(max_rate * 0.01))
        assert sent <= max_rate * horizon + burst + TOL


@settings(max_examples=60)
@given(
    st.floats(min_value=1, max_value=1000),
    st.lists(st.tuples(st.floats(0, 0.05), st.booleans()), min_size=1, max_size=200),
)
def test_max_rate_holds_for_any_cc_pattern(
    max_rate: float, events: list[tuple[float, bool]]
) -> None:
    rl = RateLimiter(max_rate=max_rate, min_rate=max_rate / 2)
    burst = max(1, math.ceil(max_rate * 0.01))
    now, times = 0.0, []
    for step, cc in events:
        now += step
        if rl.try_send(now, cc_allows=cc):
            times.append(now)
    for i, start in enumerate(times):
        for j in range(i, len(times)):
            assert j - i + 1 <= max_rate * (times[j] - start) + burst + TOL


# -- ScanDelay -----------------------------------------------------------------------------


def test_scan_delay_gates_probes_to_one_host() -> None:
    d = ScanDelay(minimum=0.4, maximum=1.0)
    assert d.ready(0.0)
    d.on_send(0.0)
    assert not d.ready(0.3)
    assert d.next_time(0.3) == pytest.approx(0.4)
    assert d.ready(0.4)
    assert d.next_time(5.0) == 5.0


def test_scan_delay_boosts_from_zero_then_doubles_up_to_the_maximum() -> None:
    d = ScanDelay(minimum=0.0, maximum=0.05, first_boost=0.005)
    assert [d.boost() for _ in range(5)] == pytest.approx([0.005, 0.01, 0.02, 0.04, 0.05])
    assert d.boost() == 0.05


def test_scan_delay_boost_never_drops_below_the_minimum() -> None:
    d = ScanDelay(minimum=0.4, maximum=1.0, first_boost=0.005)
    assert d.current == 0.4
    assert d.boost() == pytest.approx(0.8)
    assert d.boost() == pytest.approx(1.0)


def test_scan_delay_boosts_only_when_drops_are_frequent() -> None:
    d = ScanDelay(maximum=1.0, boost_min_drops=5, boost_drop_ratio=0.1)
    # 100 clean answers and 4 drops: not enough drops.
    assert not any(d.note_answer(False) for _ in range(100))
    assert not any(d.note_answer(True) for _ in range(4))
    assert d.current == 0
    # A fifth drop, but 5/105 < 10%: still no boost.
    assert not d.note_answer(True)
    d2 = ScanDelay(maximum=1.0, boost_min_drops=5, boost_drop_ratio=0.1)
    for _ in range(20):
        d2.note_answer(False)
    boosted = [d2.note_answer(True) for _ in range(5)]
    assert boosted == [False, False, False, False, True]
    assert d2.current == pytest.approx(0.005)


def test_scan_delay_validation() -> None:
    with pytest.raises(OptionsError, match="must not exceed max scan delay"):
        ScanDelay(minimum=2.0, maximum=1.0)
    with pytest.raises(OptionsError, match="minimum"):
        ScanDelay(minimum=-1.0)


@given(
    st.floats(0, 1),
    st.floats(0, 2),
    st.lists(st.sampled_from(["send", "answer", "drop", "boost"]), max_size=100),
)
def test_scan_delay_stays_within_bounds(lo: float, extra: float, events: list[str]) -> None:
    d = ScanDelay(minimum=lo, maximum=lo + extra)
    now = 0.0
    for ev in events:
        if ev == "send":
            now = d.next_time(now)
            assert d.ready(now)
            d.on_send(now)
        elif ev == "boost":
            d.boost()
        else:
            d.note_answer(ev == "drop")
        assert lo <= d.current <= lo + extra


def test_losses_from_before_a_boost_do_not_boost_again() -> None:
    # A burst loses many probes at t < 1; the delay is boosted at t = 1 after five drops.
    d = ScanDelay(maximum=1.0, boost_min_drops=5, boost_drop_ratio=0.1)
    for i in range(5):
        d.note_answer(True, first_sent=0.5, now=1.0 + i * 0.001)
    assert d.current == pytest.approx(0.005)
    assert d.boosted_at == pytest.approx(1.004)
    # Their retransmissions keep being answered while the delay paces them: the loss was
    # already answered by the boost, so the delay stays.
    for i in range(50):
        assert not d.note_answer(True, first_sent=0.9, now=2.0 + i)
    assert d.current == pytest.approx(0.005)
    # New losses (probes first sent after the boost) still boost it: the sixth makes
    # more than 10 % of the 56 answers since the boost.
    boosted = [d.note_answer(True, first_sent=60.0, now=61.0 + i) for i in range(6)]
    assert boosted == [False] * 5 + [True]
    assert d.current == pytest.approx(0.01)
    # Without times, every drop counts (the rule needs them).
    d3 = ScanDelay(maximum=1.0, boost_min_drops=5, boost_drop_ratio=0.1)
    assert [d3.note_answer(True) for _ in range(5)][-1]
