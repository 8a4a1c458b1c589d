"""ProbeScanner mechanics on the simulated network: congestion windows, the rate limiter,
Karn's rule, scan delay, host timeout, and a property test of the results against the truth
under loss, duplication and reordering."""

from __future__ import annotations

import itertools
from collections import Counter, defaultdict
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyscan._models import IPAddress, PortState
from pyscan.testing.fakenet import (
    CLOSED,
    DROP,
    OPEN,
    FakeHost,
    FakeNetwork,
    Reject,
    run_scanner,
)
from strategies import fakenet_truth

from ._sim import (
    ME4,
    SRC_PORTS,
    Run,
    check_port_invariant,
    expected_syn,
    expected_udp,
    port_run,
    target,
)


def scan(kind: str, net: FakeNetwork, hosts: list[IPAddress], ports: list[int], **kw: Any) -> Run:
    run = port_run(kind, net, hosts, ports, **kw)
    run_scanner(run.scanner, net, run.clock, max_time=3000)
    return run


# -- congestion windows ----------------------------------------------------------------------


def _outstanding_by_host(run: Run) -> Counter[int]:
    sc = run.scanner
    return Counter(i // sc.per_host for i in range(sc.total) if sc.last_sent(i) is not None)


@pytest.mark.parametrize("limit", [1, 4, 25])
def test_max_parallelism_bounds_probes_in_flight(limit: int) -> None:
    net = FakeNetwork(
        {target(0): FakeHost(tcp_default=DROP, tcp=dict.fromkeys(range(0, 300, 7), OPEN))}
    )
    run = port_run("syn", net, [target(0)], list(range(1, 301)), max_parallelism=limit)
    seen: list[int] = []

    def check(now: float, sent: list[tuple[int, int]]) -> None:
        seen.append(run.scanner.in_flight)

    run_scanner(run.scanner, net, run.clock, max_time=3000, after_poll=check)
    assert max(seen) == limit  # the window is used, and never exceeded
    assert len(run.results) == 300


def test_windows_start_at_ten_grow_with_answers_and_are_respected() -> None:
    truth = {target(i): FakeHost(tcp=dict.fromkeys(range(1, 400, 3), OPEN)) for i in range(3)}
    net = FakeNetwork(truth, delay=0.01)
    run = port_run("syn", net, list(truth), list(range(1, 401)))
    sc = run.scanner
    first: list[int] = []
    peak = 0

    def check(now: float, sent: list[tuple[int, int]]) -> None:
        nonlocal peak
        if not first:
            first.append(len(sent))
        peak = max(peak, sc.in_flight)
        out = _outstanding_by_host(run)
        for host in {i // sc.per_host for i, _ in sent}:
            assert out[host] <= sc.host_timing(host, now).cwnd.limit

    run_scanner(sc, net, run.clock, max_time=3000, after_poll=check)
    assert first == [10]  # initial group window
    assert peak > 30  # slow start grew it
    assert len(run.results) == 1200


def test_drops_shrink_the_host_window() -> None:
    truth = {target(0): FakeHost(tcp_default=CLOSED)}
    net = FakeNetwork(truth, delay=0.01, loss=0.2, seed=4)
    run = scan("syn", net, [target(0)], list(range(1, 201)))
    ht = run.scanner.host_timing(0, 0.0)
    assert ht.cwnd.drops > 0
    assert ht.max_successful_tryno >= 1


# -- rate limiting ---------------------------------------------------------------------------


@pytest.mark.parametrize("max_rate", [20.0, 150.0])
def test_max_rate_bounds_the_send_schedule(max_rate: float) -> None:
    truth = {target(i): FakeHost(tcp_default=CLOSED) for i in range(2)}
    net = FakeNetwork(truth, delay=0.002)
    ports = list(range(1, 151))
    scan("syn", net, list(truth), ports, max_rate=max_rate)
    times = sorted(p.time for p in net.probes)
    assert len(times) == 300
    burst = max(1, int(max_rate * 0.01 + 0.999))
    # Any k consecutive sends span at least (k - burst) / rate seconds.
    for k in (burst + 1, 10, 50, 299):
        for i in range(len(times) - k):
            assert times[i + k] - times[i] >= (k - burst) / max_rate - 1e-9, (k, i)
    assert times[-1] >= (len(times) - burst) / max_rate - 1e-9
    # And the limiter is the bottleneck: the average rate is close to the maximum.
    assert len(times) / times[-1] > 0.9 * max_rate


def test_min_rate_overrides_a_full_window() -> None:
    """One probe in flight at a time and every port silent: without --min-rate that is one
    probe per timeout; with it, probes go out at about min_rate anyway."""
    truth = {target(0): FakeHost.silent()}
    ports = list(range(1, 201))
    slow = FakeNetwork(truth)
    scan("syn", slow, [target(0)], ports[:20], max_parallelism=1)
    assert Counter(int(p.time) for p in slow.probes)[0] <= 2
    net = FakeNetwork(truth)
    scan("syn", net, [target(0)], ports, max_parallelism=1, min_rate=100)
    first_second = sum(1 for p in net.probes if p.time < 1.0)
    assert 90 <= first_second <= 112


# -- Karn's rule -----------------------------------------------------------------------------


def test_rtt_samples_from_unambiguous_answers_are_exact() -> None:
    net = FakeNetwork({target(0): FakeHost(tcp={22: OPEN})}, delay=0.0125)
    run = scan("syn", net, [target(0)], list(range(20, 40)))
    ht = run.scanner.host_timing(0, 0.0)
    assert ht.rtt.samples == 20
    assert ht.rtt.srtt == pytest.approx(0.025)


def test_no_rtt_sample_from_an_answer_to_an_earlier_try() -> None:
    """Round trip 0.8 s, timeout 0.5 s: every answer is to try 0 and arrives after try 1
    went out. Measuring it from try 1 (0.3 s) would be Karn's mistake."""
    net = FakeNetwork({target(0): FakeHost(tcp_default=CLOSED)}, delay=0.4)
    run = scan("syn", net, [target(0)], list(range(1, 6)), initial_rtt_timeout=0.5)
    ht = run.scanner.host_timing(0, 0.0)
    assert {r.state for r in run.results} == {PortState.CLOSED}
    assert ht.rtt.srtt is None or ht.rtt.srtt >= 0.8 - 1e-9
    assert run.scanner.host_timing(0, 0.0).max_successful_tryno == 0  # not a drop


def test_rtt_sample_from_an_answer_to_a_retransmission_is_taken_from_its_send() -> None:
    net = FakeNetwork(
        {target(0): FakeHost(tcp_default=CLOSED)},
        delay=0.01,
        lose=lambda rec: rec.src_port == SRC_PORTS[0],
    )
    run = scan("syn", net, [target(0)], [80])
    ht = run.scanner.host_timing(0, 0.0)
    assert ht.rtt.samples == 1
    assert ht.rtt.srtt == pytest.approx(0.02)
    assert ht.max_successful_tryno == 1


def test_a_slow_host_among_fast_ones_keeps_its_open_ports() -> None:
    near = {target(i): FakeHost(tcp={22: OPEN}) for i in range(3)}
    far = {target(9): FakeHost(tcp=dict.fromkeys(range(20, 30), OPEN), delay=0.2)}
    net = FakeNetwork({**near, **far}, delay=0.005)
    run = scan("syn", net, [*near, *far], list(range(20, 30)), order_seed=None)
    got = run.by_port()
    assert {got[(target(9), p)].state for p in range(20, 30)} == {PortState.OPEN}


# -- congestion episodes ---------------------------------------------------------------------


def test_losses_of_one_episode_shrink_the_window_once() -> None:
    """Probe A first sent at 0.0, probe B at 0.5 (scan delay); both originals lost. A's
    retransmission is answered at 1.05 (window reduced); B, first sent at 0.5 < 1.05,
    belongs to the same episode and must not reduce it again."""
    truth = {target(0): FakeHost(tcp={1: OPEN, 2: OPEN})}
    net = FakeNetwork(truth, delay=0.025, lose=lambda rec: rec.src_port == SRC_PORTS[0])
    run = scan("syn", net, [target(0)], [1, 2], order_seed=None, scan_delay=0.5)
    assert [round(p.time, 3) for p in net.probes] == [0.0, 0.5, 1.0, 1.5]
    assert run.scanner.host_timing(0, 0.0).cwnd.drops == 1


# -- scan delay and host timeout ---------------------------------------------------------------


def test_scan_delay_defers_probes_until_they_may_go() -> None:
    truth = {target(0): FakeHost(tcp={1: OPEN}), target(1): FakeHost.silent()}
    net = FakeNetwork(truth, delay=0.01)
    run = scan("syn", net, list(truth), list(range(1, 9)), scan_delay=0.25)
    assert len(run.results) == 16
    per_host: dict[IPAddress, list[float]] = defaultdict(list)
    for p in net.probes:
        per_host[p.dst].append(p.time)
    for times in per_host.values():
        gaps = [b - a for a, b in itertools.pairwise(times)]
        assert min(gaps) >= 0.25 - 1e-9
    # The delay is per host: the two hosts' probes interleave.
    assert net.probes[0].dst != net.probes[1].dst or net.probes[1].time == 0.0
    assert run.net.last_run is not None
    assert run.net.last_run.idle_wakeups == 0


def test_min_rate_overrides_the_scan_delay_as_nmaps_does() -> None:
    """nmap lets a probe owed to --min-rate go whatever the host's scan delay (its
    HostScanStats::sendOK asks the rate first): 40 ports at a 0.25 s scan delay take 10 s
    alone, at min_rate 100 about 0.4 s, and every port is still decided right."""
    truth = {target(0): FakeHost(tcp={3: OPEN})}
    ports = list(range(1, 41))
    paced = FakeNetwork(truth, delay=0.01)
    scan("syn", paced, [target(0)], ports, scan_delay=0.25)
    assert paced.probes[-1].time >= 39 * 0.25 - 1e-9
    net = FakeNetwork(truth, delay=0.01)
    run = scan("syn", net, [target(0)], ports, scan_delay=0.25, min_rate=100)
    assert net.probes[-1].time < 0.5
    assert sorted(r.port for r in run.results if r.state is PortState.OPEN) == [3]
    assert len(run.results) == 40


def test_min_rate_takes_only_the_owed_probes_off_the_park() -> None:
    """Owed sends unpark only as many probes as are owed, longest parked host first: the
    others stay parked (putting them all back made every poll park them again, 30x the
    CPU on 200 delayed hosts at min_rate 1000)."""
    from collections import deque  # noqa: PLC0415

    net = FakeNetwork({target(0): FakeHost.silent()})
    sc = port_run("syn", net, [target(i) for i in range(3)], list(range(1, 11))).scanner
    sc._parked.update({2: deque([20, 21, 22]), 0: deque([0, 1]), 1: deque([10])})
    sc._ready.extend([5])
    sc._unpark_owed(4)
    assert list(sc._ready) == [20, 21, 22, 0, 5]
    assert {h: list(q) for h, q in sc._parked.items()} == {0: [1], 1: [10]}
    sc._unpark_owed(10)
    assert list(sc._ready) == [1, 10, 20, 21, 22, 0, 5]
    assert sc._parked == {}


def test_silent_hosts_hold_the_window_for_the_groups_timeout() -> None:
    """As nmap's: a host that has not answered gets the group's probe timeout (here ~0.1 s
    at T4, its minimum, once near hosts have answered), so silent hosts' probes do not hold
    their window for the initial RTT timeout (0.5 s). 3 silent hosts x 300 ports, 2 tries
    each, 10 in flight per host: about 300 * 2 * 0.1 / 10 = 6 s, not 30 s."""
    truth = {target(0): FakeHost(tcp={22: OPEN})}
    truth.update({target(i): FakeHost.silent() for i in range(1, 4)})
    net = FakeNetwork(truth, delay=0.0005)
    run = scan("syn", net, list(truth), list(range(1, 301)), timing=4)
    assert len(run.results) == 4 * 300
    assert net.probes[-1].time < 10.0
    silent = {target(i) for i in range(1, 4)}
    assert all(r.state is PortState.FILTERED for r in run.results if r.address in silent)
    assert Counter(p.dst for p in net.probes)[target(1)] == 600  # 2 tries each, as before


@pytest.mark.parametrize("kind", ["syn", "udp"])
def test_our_own_kernels_unreachables_are_no_round_trips(kind: str) -> None:
    """An absent address on the scanner's own link: our kernel queues each probe while it
    asks ARP, gives up (after about 3 s on Linux; 0.4 s here) and reports "host
    unreachable" from our own address. That decides the probe (filtered), but is no round
    trip: taken as one, such samples made the group's timeout T4's maximum (1.25 s) on the
    lab's /24, and silent hosts, paced by it, took minutes instead of seconds."""
    ours = Reject(1, ME4, ttl=64)
    truth = {target(0): FakeHost(tcp={22: OPEN}, udp={53: OPEN})}
    truth.update({target(i): FakeHost.silent() for i in range(1, 4)})
    truth.update({target(i): FakeHost(unreachable=ours, delay=0.2) for i in (4, 5)})
    net = FakeNetwork(truth, delay=0.0005)
    run = scan(kind, net, list(truth), list(range(1, 201)), timing=4)
    assert len(run.results) == 6 * 200
    absent = {target(4), target(5)}
    by_us = [r for r in run.results if r.address in absent and r.reason.ip == ME4]
    assert by_us  # some decided by our kernel's error ...
    assert all(r.state is PortState.FILTERED for r in by_us)
    sc = run.scanner
    assert sc._group.rtt.srtt < 0.01  # ... but the round trips are the near host's only
    assert not {4, 5} & set(sc._hosts)  # and those hosts have no timing of their own
    assert net.probes[-1].time < 15.0
    # scanning our own address, its errors are the target's: round trips
    mine = FakeNetwork({ME4: FakeHost(tcp={22: OPEN}, tcp_default=Reject(3))}, delay=0.0005)
    own = scan(kind, mine, [ME4], list(range(1, 21)), timing=4)
    assert {r.reason.ip for r in own.results if r.port != 22} == {ME4}
    assert own.scanner._group.rtt.samples >= 19


def test_a_far_host_among_near_ones_is_decided_right() -> None:
    """The group's timeout comes from the near hosts (0.1 s, T4's minimum); the far host's
    answers take 0.4 s and its first probes go once the near hosts have set that timeout
    (sequential order, 10 probes in flight at most). They are retransmitted early, as
    nmap's are, but decided by silence only once the initial RTT timeout (or, from its
    first answer on, the host's own timeout) has passed since their last try: the late
    answers still decide every one of them."""
    near = {target(i): FakeHost(tcp={22: OPEN}) for i in range(3)}
    far = FakeHost(tcp={22: OPEN, 80: OPEN}, tcp_default=CLOSED, delay=0.2)
    truth = {**near, target(3): far}
    net = FakeNetwork(truth, delay=0.0005)
    ports = list(range(1, 301))
    run = scan("syn", net, list(truth), ports, timing=4, order_seed=None, max_parallelism=10)
    first_far = min(p.time for p in net.probes if p.dst == target(3))
    assert first_far > 0.05  # after the near hosts' answers
    got = {(r.address, r.port): r.state for r in run.results}
    assert len(got) == 4 * 300
    assert [p for p in ports if got[target(3), p] is PortState.OPEN] == [22, 80]
    assert all(got[target(3), p] is PortState.CLOSED for p in ports if p not in (22, 80))


def test_host_timeout_gives_up_on_the_rest_of_a_host() -> None:
    truth = {target(0): FakeHost(tcp_default=CLOSED)}
    net = FakeNetwork(truth, delay=0.01)
    run = scan("syn", net, [target(0)], list(range(1, 21)), scan_delay=0.3, host_timeout=1.0)
    assert run.scanner.done
    assert len(run.results) == 20
    assert len(net.probes) <= 5
    assert all(p.time < 1.0 for p in net.probes)


def test_silent_hosts_keep_no_timing_objects() -> None:
    # Hosts that never answer stay "pristine": the group's defaults and a few bytes of
    # arrays each, however many probes went to them. Answering hosts get full timing.
    truth = {target(i): FakeHost.silent() for i in range(6)}
    truth[target(6)] = FakeHost(tcp={1: OPEN}, tcp_default=CLOSED)
    net = FakeNetwork(truth, delay=0.01)
    run = scan("syn", net, list(truth), list(range(1, 11)), max_retries=2, host_timeout=60.0)
    sc = run.scanner
    assert sc.done
    assert len(run.results) == 70
    assert set(sc._hosts) == {6}
    # Silent ports got their retries (one retransmission while the host has not answered)
    assert len([p for p in net.probes if p.dst == target(0)]) == 20
    assert sc._host_out.tolist() == [0] * 7


def test_a_host_first_answering_late_keeps_its_host_timeout_from_its_first_probe() -> None:
    # The host timeout runs from the host's first probe, also when its full timing state
    # is made later, at its first answer.
    truth = {target(0): FakeHost(tcp_default=CLOSED)}
    net = FakeNetwork(truth, delay=0.01)
    run = port_run("syn", net, [target(0)], list(range(1, 21)), scan_delay=0.3, host_timeout=1.0)
    sc = run.scanner
    sc.poll(5.0, 1)
    assert sc.host_timing(0, 5.5).started == 5.0
    assert sc.host_timing(0, 5.5).scan_delay.last_send == 5.0


def test_scan_delay_of_a_pristine_host_carries_into_its_timing() -> None:
    truth = {target(0): FakeHost.silent()}
    net = FakeNetwork(truth, delay=0.01)
    run = port_run("syn", net, [target(0)], list(range(1, 5)), scan_delay=0.5)
    sc = run.scanner
    assert len(sc.poll(1.0, 10)) == 1  # the delay holds the others back
    assert sc.poll(1.2, 10) == []
    assert sc.next_deadline() == pytest.approx(1.5)
    assert len(sc.poll(1.5, 10)) == 1
    assert sc._hosts == {}


# -- property: the results are the truth, or a fully lost probe ---------------------------------


@settings(
    max_examples=100,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(
    table=fakenet_truth(),
    kind=st.sampled_from(["syn", "udp"]),
    loss=st.sampled_from([0.0, 0.0, 0.05, 0.2, 0.5]),
    delay=st.sampled_from([0.0, 0.001, 0.02, 0.2]),
    duplicate=st.sampled_from([0.0, 0.3]),
    reorder=st.sampled_from([0.0, 0.0, 0.3]),
    seed=st.integers(0, 2**32 - 1),
    order_seed=st.integers(0, 100),
)
def test_results_are_the_truth_or_all_tries_lost(
    table: Any,
    kind: str,
    loss: float,
    delay: float,
    duplicate: float,
    reorder: float,
    seed: int,
    order_seed: int,
) -> None:
    truth, targets, ports = table
    net = FakeNetwork(
        truth, delay=delay, loss=loss, duplicate=duplicate, reorder=reorder, seed=seed
    )
    run = scan(kind, net, targets, ports, order_seed=order_seed)
    counts = check_port_invariant(run, kind, ports)
    if loss == 0 and reorder == 0:
        assert counts["all_lost"] == 0
        expect = expected_syn if kind == "syn" else expected_udp
        for (addr, port), r in run.by_port().items():
            assert (r.state, r.reason) == expect(net, addr, port)
    assert run.scanner.done
    assert run.scanner.n_decided == len(targets) * len(ports)
    # Bounded effort: never more than 1 + max_retries (10) tries of one probe, bench rounds
    # included.
    per_probe = Counter((p.dst, p.dst_port) for p in net.probes)
    assert max(per_probe.values()) <= 11
