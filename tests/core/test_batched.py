"""The batched forms of the timing, rate and congestion updates equal their one-at-a-time
forms, and the demultiplexer's burst routing equals routing one packet at a time."""

from __future__ import annotations

import copy
import ipaddress
import math

from hypothesis import given, settings
from hypothesis import strategies as st

from pyscan._core.congestion import CongestionParams, CongestionWindow
from pyscan._core.demux import Demultiplexer
from pyscan._core.rate import RateLimiter
from pyscan._core.timing import RttEstimator
from pyscan._wire.packet import build_tcp_packet, build_udp_packet

A = ipaddress.ip_address("198.18.0.9")
B = ipaddress.ip_address("198.18.0.1")
rates = st.one_of(st.none(), st.floats(1, 1e5))


@settings(deadline=None, max_examples=60)
@given(
    max_rate=rates,
    min_rate=rates,
    steps=st.lists(st.tuples(st.floats(0, 0.05), st.integers(0, 50)), max_size=20),
)
def test_rate_budgets_count_what_one_at_a_time_allows(
    max_rate: float | None, min_rate: float | None, steps: list[tuple[float, int]]
) -> None:
    if max_rate is not None and min_rate is not None and min_rate > max_rate:
        min_rate, max_rate = max_rate, min_rate
    limiter = RateLimiter(max_rate=max_rate, min_rate=min_rate)
    now = 0.0
    cap = 3_000
    for dt, sends in steps:
        now += dt
        ceiling, forced = limiter.ceiling_budget(now), limiter.forced_budget(now)
        probe = copy.deepcopy(limiter)
        allowed = 0
        while allowed < cap and probe.may_send(now, cc_allows=True):
            probe.on_send(now)
            allowed += 1
        assert allowed == min(ceiling, cap)
        probe = copy.deepcopy(limiter)
        due = 0
        while due < cap and probe.min_rate_due(now):
            probe.on_send(now)
            due += 1
        assert due == min(forced, cap)
        limiter.on_send(now, sends)


@given(
    count=st.integers(0, 400),
    scale=st.floats(0.5, 100),
    start=st.floats(1, 400),
    ssthresh=st.floats(2, 500),
)
def test_window_on_answers_equals_repeated_on_answer(
    count: int, scale: float, start: float, ssthresh: float
) -> None:
    params = CongestionParams.bounded(1, 300, reset_on_drop=True)
    a, b = CongestionWindow(params), CongestionWindow(params)
    for w in (a, b):
        w.cwnd = min(params.max_cwnd, start)
        w.ssthresh = ssthresh
    a.on_answers(count, scale)
    for _ in range(count):
        b.on_answer(scale)
    assert math.isclose(a.cwnd, b.cwnd, rel_tol=1e-9)


@given(st.lists(st.floats(0, 5), max_size=30), st.lists(st.floats(0, 5), max_size=30))
def test_rtt_update_many_equals_repeated_update(first: list[float], then: list[float]) -> None:
    a, b = RttEstimator(), RttEstimator()
    a.update_many(first)
    a.update_many(then)
    for x in first + then:
        b.update(x)
    assert (a.srtt, a.rttvar, a.samples) == (b.srtt, b.rttvar, b.samples)
    assert a.timeout == b.timeout


def test_rtt_update_many_rejects_bad_samples_like_update() -> None:
    r = RttEstimator()
    for bad in (-1.0, math.inf, math.nan):
        try:
            r.update_many([0.1, bad])
        except ValueError:
            pass
        else:  # pragma: no cover - the assertion below reports it
            raise AssertionError(f"{bad} accepted")
    assert r.samples == 3  # the good sample before each bad one counted, as update would


packets = st.one_of(
    st.binary(max_size=80),
    st.builds(
        lambda sport, dport, tcp: (
            build_tcp_packet(src=A, dst=B, src_port=sport, dst_port=dport, seq=1)
            if tcp
            else build_udp_packet(src=A, dst=B, src_port=sport, dst_port=dport, payload=b"x")
        ),
        st.integers(0, 65535),
        st.sampled_from([40000, 40001, 40002, 53, 80]),
        st.booleans(),
    ),
)


@settings(max_examples=200)
@given(st.lists(packets, max_size=40))
def test_route_many_equals_owner_raw(datas: list[bytes]) -> None:
    one, many = Demultiplexer[str](), Demultiplexer[str]()
    for d in (one, many):
        d.register(("tcp", 40000), "syn")
        d.register(("tcp", 40001), "syn")
        d.register(("udp", 40000), "udp")
        d.register(("udp", 40002), "udp")
    expected: dict[str, list[bytes]] = {}
    for data in datas:
        owner = one.owner_raw(data)
        if owner is not None:
            expected.setdefault(owner, []).append(data)
    assert many.route_many(datas) == expected
    assert (many.delivered, many.dropped) == (one.delivered, one.dropped)
