"""RTT estimation, timing templates and host/group timing state, on a manual clock."""

from __future__ import annotations

import math
import re
import shutil
import subprocess

import attrs
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from pyscan._core.timing import (
    TEMPLATES,
    GroupTiming,
    HostTiming,
    RttEstimator,
    TimingTemplate,
)
from pyscan.errors import OptionsError

NMAP = shutil.which("nmap")

# -- RttEstimator ----------------------------------------------------------------------------


def test_initial_timeout_before_any_sample() -> None:
    est = RttEstimator(initial_timeout=1.0, min_timeout=0.1, max_timeout=10.0)
    assert est.timeout == 1.0
    assert est.srtt is None
    assert est.samples == 0


def test_first_sample_sets_srtt_and_half_rttvar() -> None:
    est = RttEstimator(initial_timeout=1.0, min_timeout=0.0, max_timeout=10.0)
    est.update(0.2)
    assert est.srtt == 0.2
    assert est.rttvar == 0.1
    assert est.timeout == pytest.approx(0.2 + 4 * 0.1)


def test_second_sample_follows_rfc6298() -> None:
    est = RttEstimator(initial_timeout=1.0, min_timeout=0.0, max_timeout=10.0)
    est.update(0.1)
    est.update(0.3)
    # RTTVAR = 3/4 * 0.05 + 1/4 * |0.1 - 0.3| = 0.0875 ; SRTT = 7/8 * 0.1 + 1/8 * 0.3 = 0.125
    assert est.rttvar == pytest.approx(0.0875)
    assert est.srtt == pytest.approx(0.125)
    assert est.timeout == pytest.approx(0.475)


def test_a_stray_sample_seconds_late_is_ignored() -> None:
    # As nmap's: more than max(1.5 s, 3 SRTT + 2 RTTVAR) above SRTT is not a round trip.
    est = RttEstimator(initial_timeout=0.5, min_timeout=0.1, max_timeout=1.25)
    for _ in range(20):
        est.update(0.02)
    before = (est.srtt, est.rttvar, est.samples)
    est.update(3.1)  # a SYN-ACK retransmitted by the target, say
    assert (est.srtt, est.rttvar, est.samples) == before
    assert est.timeout == 0.1
    est.update(1.0)  # slow, but a round trip: taken
    assert est.samples == 21
    assert est.srtt is not None
    assert est.srtt > 0.1
    # the bound grows with the estimate: at SRTT 1 s, 4 s is 3 s above it, under 3 SRTT
    slow = RttEstimator(max_timeout=10.0)
    slow.update(1.0)
    slow.update(4.0)
    assert slow.samples == 2


def test_granularity_floors_the_variance_term() -> None:
    est = RttEstimator(min_timeout=0.0, granularity=0.05)
    for _ in range(200):
        est.update(0.01)
    assert est.unclamped_timeout == pytest.approx(0.06, abs=1e-6)


def test_timeout_is_clamped() -> None:
    est = RttEstimator(initial_timeout=1.0, min_timeout=0.1, max_timeout=1.25)
    est.update(0.001)
    assert est.timeout == 0.1
    est2 = RttEstimator(initial_timeout=1.0, min_timeout=0.1, max_timeout=1.25)
    est2.update(5.0)
    assert est2.timeout == 1.25
    assert est2.unclamped_timeout == pytest.approx(15.0)
    # An initial timeout outside the bounds is clamped too.
    assert RttEstimator(initial_timeout=20.0, max_timeout=10.0).timeout == 10.0


def test_bad_samples_and_bounds_are_rejected() -> None:
    est = RttEstimator()
    for bad in (-0.1, math.nan, math.inf):
        with pytest.raises(ValueError, match="RTT sample"):
            est.update(bad)
    with pytest.raises(OptionsError, match="must not exceed max RTT timeout"):
        RttEstimator(min_timeout=2.0, max_timeout=1.0)
    with pytest.raises(OptionsError, match="initial RTT timeout"):
        RttEstimator(initial_timeout=0.0)


@given(
    st.floats(0, 5),
    st.floats(0.001, 20),
    st.floats(0.001, 400),
    st.lists(st.floats(0, 100, allow_nan=False), max_size=100),
)
def test_rto_always_within_clamps(
    lo: float, span: float, initial: float, samples: list[float]
) -> None:
    est = RttEstimator(initial_timeout=initial, min_timeout=lo, max_timeout=lo + span)
    assert lo <= est.timeout <= lo + span
    for s in samples:
        est.update(s)
        assert lo <= est.timeout <= lo + span
        assert est.rttvar is not None
        assert est.rttvar >= 0


@given(st.floats(0.0001, 5), st.floats(0, 5))
def test_steady_samples_converge(rtt: float, first: float) -> None:
    # (unless the steady RTT is a stray from the first sample's view: then, as in nmap, it
    # is ignored; see test_a_stray_sample_seconds_late_is_ignored)
    assume(rtt - first <= max(1.5, 4 * first))
    est = RttEstimator(min_timeout=0.0, max_timeout=1000.0, granularity=0.0)
    est.update(first)
    for _ in range(400):
        est.update(rtt)
    assert est.srtt == pytest.approx(rtt, rel=1e-6, abs=1e-9)
    assert est.timeout == pytest.approx(rtt, rel=1e-3, abs=1e-6)


# -- Timing templates ------------------------------------------------------------------------

# Table 6.3 of "Nmap Network Scanning" (performance-timing-templates): min/max/initial RTT
# timeout, max retries, initial scan delay, max TCP scan delay, host timeout (seconds).
BOOK = {
    0: (0.1, 300, 300, 10, 300, 300, None),
    1: (0.1, 15, 15, 10, 15, 15, None),
    2: (0.1, 10, 1, 10, 0.4, 1, None),
    3: (0.1, 10, 1, 10, 0, 1, None),
    4: (0.1, 1.25, 0.5, 6, 0, 0.01, None),
    5: (0.05, 0.3, 0.25, 2, 0, 0.005, 900),
}


@pytest.mark.parametrize("level", range(6))
def test_templates_match_the_nmap_book(level: int) -> None:
    t = TEMPLATES[level]
    got = (
        t.min_rtt_timeout,
        t.max_rtt_timeout,
        t.initial_rtt_timeout,
        t.max_retries,
        t.scan_delay,
        t.max_tcp_scan_delay,
        t.host_timeout,
    )
    assert got == pytest.approx(BOOK[level])
    # T0-T2 are serial; T3-T5 leave parallelism dynamic.
    assert t.max_parallelism == (1 if level <= 2 else None)
    assert t.params().level == level


_NMAP_REPORT = re.compile(
    r"rtt-timeouts: init (?P<init>\d+), min (?P<min>\d+), max (?P<max>\d+)\s+"
    r"max-scan-delay: TCP (?P<tcp>\d+), UDP (?P<udp>\d+), SCTP \d+\s+"
    r"parallelism: min \d+, max (?P<par>\d+)\s+"
    r"max-retries: (?P<retries>\d+), host-timeout: (?P<host>\d+)"
)


def _nmap_timing_report(*args: str) -> dict[str, int]:
    """`nmap -d -sL -n` prints its timing values (milliseconds) and sends nothing."""
    assert NMAP is not None
    out = subprocess.run(
        [NMAP, "-d", "-sL", "-n", *args, "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    m = _NMAP_REPORT.search(out)
    assert m, f"no timing report in nmap -d output:\n{out}"
    return {k: int(v) for k, v in m.groupdict().items()}


@pytest.mark.nmap
@pytest.mark.skipif(NMAP is None, reason="nmap is not installed")
@pytest.mark.parametrize("level", range(6))
def test_templates_match_installed_nmap(level: int) -> None:
    rep = _nmap_timing_report(f"-T{level}")
    t = TEMPLATES[level]
    assert rep["init"] / 1000 == pytest.approx(t.initial_rtt_timeout)
    assert rep["min"] / 1000 == pytest.approx(t.min_rtt_timeout)
    assert rep["max"] / 1000 == pytest.approx(t.max_rtt_timeout)
    assert rep["retries"] == t.max_retries
    assert rep["host"] / 1000 == (t.host_timeout or 0)
    assert rep["par"] == (t.max_parallelism or 0)
    # nmap prints the ceiling before raising it to the scan delay (T0/T1: 5 min, 15 s).
    assert max(rep["tcp"] / 1000, t.scan_delay) == pytest.approx(t.max_tcp_scan_delay)
    assert max(rep["udp"] / 1000, t.scan_delay) == pytest.approx(t.max_udp_scan_delay)


@pytest.mark.parametrize(
    ("key", "level"),
    [
        (4, 4),
        ("4", 4),
        ("T4", 4),
        ("t2", 2),
        ("-T5", 5),
        ("aggressive", 4),
        ("Paranoid", 0),
        (" insane ", 5),
        (TEMPLATES[1], 1),
    ],
)
def test_template_lookup(key: int | str | TimingTemplate, level: int) -> None:
    assert TimingTemplate.get(key).level == level


@pytest.mark.parametrize("key", [6, -1, "T6", "fast", "", True, 3.0])
def test_unknown_template(key: object) -> None:
    with pytest.raises(OptionsError, match="unknown timing template"):
        TimingTemplate.get(key)  # type: ignore[arg-type]


def test_timing_params_validation() -> None:
    base = TEMPLATES[3].params()
    with pytest.raises(OptionsError, match="min_rtt_timeout"):
        attrs.evolve(base, min_rtt_timeout=20.0)
    with pytest.raises(OptionsError, match="max_retries must be >= 0"):
        attrs.evolve(base, max_retries=-1)
    with pytest.raises(OptionsError, match="scan_delay"):
        attrs.evolve(base, scan_delay=2.0)
    with pytest.raises(OptionsError, match="min_parallelism"):
        attrs.evolve(base, min_parallelism=5, max_parallelism=2)
    with pytest.raises(OptionsError, match="host_timeout"):
        attrs.evolve(base, host_timeout=0.0)


# -- Host and group timing -------------------------------------------------------------------


def make(level: int = 3, **changes: object) -> tuple[GroupTiming, HostTiming]:
    params = attrs.evolve(TEMPLATES[level].params(), **changes)  # type: ignore[arg-type]
    group = GroupTiming(params)
    return group, group.new_host(0.0)


def test_host_uses_group_timeout_until_it_has_its_own_sample() -> None:
    group, host = make(3)
    assert host.probe_timeout == 1.0
    other = group.new_host(0.0)
    other.on_answer(0.5, rtt_sample=0.02)
    # The group learnt from the other host; this host has no sample of its own yet.
    assert group.probe_timeout == pytest.approx(0.1)  # 0.02 + 4 * 0.01 < min 100 ms
    assert host.probe_timeout == group.probe_timeout
    host.on_answer(1.0, rtt_sample=2.0)
    assert host.probe_timeout == pytest.approx(2.0 + 4 * 1.0)
    assert host.probe_deadline(3.0) == pytest.approx(9.0)


def test_retry_allowance_starts_at_one_and_rises_with_drops() -> None:
    _, host = make(3)  # max_retries 10
    assert host.retries_allowed == 1
    assert host.may_retransmit(0)
    assert not host.may_retransmit(1)
    assert host.on_answer(1.0, tryno=3)
    assert host.retries_allowed == 4
    assert host.may_retransmit(3)
    assert not host.may_retransmit(4)
    host.on_answer(2.0, tryno=40)
    assert host.retries_allowed == 10  # the ceiling


def test_zero_max_retries_never_retransmits() -> None:
    _, host = make(3, max_retries=0)
    assert host.retries_allowed == 0
    assert not host.may_retransmit(0)


def test_answer_to_a_retransmission_shrinks_both_windows() -> None:
    group, host = make(3)
    for i in range(30):
        host.on_send(i * 0.01)
        host.on_answer(i * 0.01 + 0.005, rtt_sample=0.005)
    assert host.cwnd.cwnd == 40
    assert group.cwnd.cwnd == 40
    assert host.on_answer(1.0, tryno=1, host_outstanding=20, group_outstanding=30)
    assert host.cwnd.cwnd == 1  # host window back to the minimum
    assert host.cwnd.ssthresh == 10
    assert group.cwnd.cwnd == 20  # group window halved
    assert group.cwnd.ssthresh == 15
    assert group.drops == 1


def test_growth_is_scaled_by_unanswered_probes() -> None:
    group, host = make(3)
    for i in range(40):  # 40 probes, one answer: a mostly filtered host
        host.on_send(i * 0.001)
    assert group.scale == 1.0
    host.on_answer(0.1)
    assert group.scale == 40
    assert host.cwnd.cwnd == 50  # 10 + 40 (slow start, scaled)


def test_can_send_checks_windows_scan_delay_and_host_timeout() -> None:
    _, host = make(5)  # host timeout 15 min
    assert host.can_send(0.0, host_outstanding=9, group_outstanding=9)
    assert not host.can_send(0.0, host_outstanding=10, group_outstanding=0)
    assert not host.can_send(0.0, host_outstanding=0, group_outstanding=10)
    assert host.host_deadline == 900.0
    assert not host.can_send(900.0, host_outstanding=0, group_outstanding=0)
    assert host.timed_out(900.0)
    assert not host.timed_out(899.9)


def test_serial_templates_keep_one_probe_in_flight_and_space_them() -> None:
    _, host = make(2)  # polite: parallelism 1, scan delay 0.4 s
    assert host.can_send(0.0, 0, 0)
    host.on_send(0.0)
    assert not host.can_send(0.5, 1, 1)  # window full
    assert not host.can_send(0.3, 0, 0)  # scan delay
    assert host.next_send_time(0.3) == pytest.approx(0.4)
    assert host.can_send(0.4, 0, 0)


def test_next_deadline() -> None:
    _, host = make(5)
    assert host.next_deadline(0.0) == 900.0
    host.scan_delay.current = 0.005
    host.on_send(1.0)
    assert host.next_deadline(1.0) == pytest.approx(1.005)
    assert host.next_deadline(2.0) == 900.0
    assert host.next_deadline(901.0) is None
    _, t3 = make(3)
    assert t3.next_deadline(0.0) is None


def test_drops_boost_the_scan_delay_up_to_the_template_ceiling() -> None:
    _, host = make(4)  # max TCP scan delay 10 ms
    for i in range(200):
        host.on_answer(float(i), tryno=1, first_sent=float(i) - 0.5)
    assert host.scan_delay.current == pytest.approx(0.010)
    udp_group = GroupTiming(TEMPLATES[4].params(), udp=True)
    udp_host = udp_group.new_host(0.0)
    assert udp_host.scan_delay.maximum == 1.0
    for i in range(200):
        udp_host.on_answer(float(i), tryno=1)
    assert udp_host.scan_delay.current == 1.0


def test_negative_tryno_is_a_caller_bug() -> None:
    _, host = make(3)
    with pytest.raises(ValueError, match="tryno"):
        host.on_answer(0.0, tryno=-1)


@given(
    st.integers(0, 5),
    st.lists(
        st.tuples(
            st.sampled_from(["send", "answer", "drop"]),
            st.floats(0, 3),
            st.integers(0, 12),
        ),
        max_size=150,
    ),
)
def test_host_timing_invariants_under_any_events(
    level: int, events: list[tuple[str, float, int]]
) -> None:
    group, host = make(level)
    p = group.params
    now, host_out, group_out = 0.0, 0, 0
    for kind, value, n in events:
        now += 0.01
        if kind == "send":
            host.on_send(now)
            host_out += 1
            group_out += 1
        else:
            host.on_answer(
                now,
                tryno=n if kind == "drop" else 0,
                rtt_sample=value,
                host_outstanding=host_out,
                group_outstanding=group_out,
            )
            host_out = max(0, host_out - 1)
            group_out = max(0, group_out - 1)
        for w in (host.cwnd, group.cwnd):
            assert w.params.min_cwnd <= w.cwnd <= w.params.max_cwnd
        assert p.min_rtt_timeout <= host.probe_timeout <= p.max_rtt_timeout
        assert 0 <= host.retries_allowed <= p.max_retries
        assert p.scan_delay <= host.scan_delay.current <= p.max_tcp_scan_delay
        if p.max_parallelism == 1:
            assert host.cwnd.limit == 1
