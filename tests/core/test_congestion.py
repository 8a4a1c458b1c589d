"""Congestion windows: slow start, avoidance, drop reaction and bounds."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._core.congestion import CongestionParams, CongestionWindow
from pyscan.errors import OptionsError


def test_defaults_start_in_slow_start() -> None:
    w = CongestionWindow()
    assert (w.cwnd, w.ssthresh, w.limit) == (10, 50, 10)
    assert w.in_slow_start


def test_slow_start_adds_one_per_answer_then_avoidance_one_per_window() -> None:
    w = CongestionWindow(CongestionParams(initial_cwnd=10, initial_ssthresh=12))
    w.on_answer()
    w.on_answer()
    assert w.cwnd == 12
    assert not w.in_slow_start
    w.on_answer()
    assert w.cwnd == pytest.approx(12 + 1 / 12)
    # A whole window of answers in avoidance adds about one probe.
    start = w.cwnd
    for _ in range(12):
        w.on_answer()
    assert w.cwnd - start == pytest.approx(1.0, abs=0.05)


def test_growth_is_scaled_by_response_rate_and_capped() -> None:
    w = CongestionWindow(CongestionParams(initial_cwnd=10, max_scale=50))
    w.on_answer(scale=4.0)
    assert w.cwnd == 14
    w.on_answer(scale=1000.0)  # capped at max_scale
    assert w.cwnd == 64
    w.on_answer(scale=0.2)  # never below 1
    assert w.cwnd == pytest.approx(64 + 1 / 64)


def test_window_never_exceeds_max() -> None:
    w = CongestionWindow(CongestionParams(max_cwnd=12, initial_cwnd=10))
    for _ in range(10):
        w.on_answer()
    assert w.cwnd == 12


def test_group_drop_halves_the_window_and_sets_ssthresh_from_in_flight() -> None:
    w = CongestionWindow(CongestionParams(initial_cwnd=40, reset_on_drop=False))
    assert w.on_drop(1.0, in_flight=30)
    assert w.cwnd == 20
    assert w.ssthresh == 15
    assert w.drops == 1


def test_host_drop_resets_the_window_to_minimum() -> None:
    w = CongestionWindow(CongestionParams(initial_cwnd=40, min_cwnd=2, reset_on_drop=True))
    assert w.on_drop(1.0, in_flight=3)
    assert w.cwnd == 2
    assert w.ssthresh == 2  # never below 2


def test_losses_from_one_episode_reduce_once() -> None:
    w = CongestionWindow(CongestionParams(initial_cwnd=64))
    assert w.on_drop(5.0, in_flight=64, first_sent=4.0)
    assert w.cwnd == 32
    # Another probe sent before the reduction was lost in the same episode.
    assert not w.on_drop(5.1, in_flight=60, first_sent=4.5)
    assert w.cwnd == 32
    # A probe sent after the reduction: a new episode.
    assert w.on_drop(6.0, in_flight=30, first_sent=5.5)
    assert w.cwnd == 16


def test_can_send_uses_the_whole_part_of_cwnd() -> None:
    w = CongestionWindow(CongestionParams(initial_cwnd=2.9))
    assert w.limit == 2
    assert w.can_send(1)
    assert not w.can_send(2)


def test_bounded_params_follow_parallelism_options() -> None:
    wide = CongestionParams.bounded(None, None)
    assert (wide.min_cwnd, wide.initial_cwnd, wide.max_cwnd) == (1, 10, 4096)
    assert wide.initial_ssthresh == wide.max_cwnd  # slow start until the first drop
    serial = CongestionParams.bounded(None, 1)
    assert (serial.min_cwnd, serial.initial_cwnd, serial.max_cwnd) == (1, 1, 1)
    fast = CongestionParams.bounded(20, None)
    assert (fast.min_cwnd, fast.initial_cwnd, fast.max_cwnd) == (20, 20, 4096)
    huge = CongestionParams.bounded(5000, None)
    assert huge.max_cwnd == 5000  # the ceiling rises to a larger --min-parallelism


def test_serial_window_never_allows_two_in_flight() -> None:
    w = CongestionWindow(CongestionParams.bounded(None, 1))
    for _ in range(100):
        w.on_answer(scale=50)
    assert w.can_send(0)
    assert not w.can_send(1)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"min_cwnd": 0.5}, "min_cwnd must be >= 1"),
        ({"min_cwnd": 5, "max_cwnd": 4}, r"min_cwnd \(5\) must not exceed max_cwnd \(4\)"),
        ({"initial_ssthresh": 0}, "initial_ssthresh must be positive"),
        ({"max_cwnd": math.inf}, "max_cwnd must be positive"),
        ({"drop_cwnd_divisor": 0.5}, "divisors"),
        ({"max_scale": 0.5}, "max_scale"),
    ],
)
def test_params_validation(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(OptionsError, match=match):
        CongestionParams(**kwargs)  # type: ignore[arg-type]


events = st.lists(
    st.one_of(
        st.tuples(st.just("answer"), st.floats(0, 1000, allow_nan=False)),
        st.tuples(st.just("drop"), st.integers(0, 1000)),
    ),
    max_size=200,
)


@given(
    st.integers(1, 50),
    st.integers(0, 400),
    st.floats(0, 600),
    st.booleans(),
    events,
)
def test_cwnd_stays_within_bounds_under_any_events(
    low: int, span: int, initial: float, reset: bool, evs: list[tuple[str, float]]
) -> None:
    params = CongestionParams(
        min_cwnd=low,
        max_cwnd=low + span,
        initial_cwnd=max(initial, 0.1),
        reset_on_drop=reset,
    )
    w = CongestionWindow(params)
    now = 0.0
    for kind, value in evs:
        now += 0.01
        if kind == "answer":
            w.on_answer(scale=value)
        else:
            w.on_drop(now, in_flight=int(value), first_sent=now - 0.005)
        assert low <= w.cwnd <= low + span
        assert w.ssthresh >= 2
        assert 1 <= w.limit <= low + span
        assert w.can_send(0)
