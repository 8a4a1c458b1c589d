"""ScanOptions: validation, template resolution, and nmap as the oracle for the merge rules."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._core.timing import TEMPLATES
from pyscan._options import DEFAULT_CONNECT_CONCURRENCY, ScanOptions
from pyscan.errors import OptionsError

NMAP = shutil.which("nmap")


def test_defaults_are_t3() -> None:
    opts = ScanOptions()
    assert opts.timing is TEMPLATES[3]
    r = opts.resolved()
    assert r.timing == TEMPLATES[3].params()
    assert (r.min_rate, r.max_rate, r.seed, r.shard) == (None, None, None, None)
    assert r.randomize_ports
    assert not r.randomize_hosts
    assert r.connect_concurrency == DEFAULT_CONNECT_CONCURRENCY


@pytest.mark.parametrize("key", [4, "4", "T4", "aggressive", TEMPLATES[4]])
def test_template_by_any_name(key: Any) -> None:
    assert ScanOptions(timing=key).timing is TEMPLATES[4]


def test_explicit_values_override_the_template() -> None:
    r = ScanOptions(
        timing=4,
        max_retries=1,
        min_rtt_timeout=0.2,
        max_rtt_timeout=0.8,
        initial_rtt_timeout=0.3,
        host_timeout=60,
        scan_delay=0.001,
        max_scan_delay=0.002,
        max_parallelism=50,
        min_rate=10,
        max_rate=100,
    ).resolved()
    t = r.timing
    assert (t.min_rtt_timeout, t.max_rtt_timeout, t.initial_rtt_timeout) == (0.2, 0.8, 0.3)
    assert (t.max_retries, t.host_timeout, t.scan_delay) == (1, 60.0, 0.001)
    assert (t.max_tcp_scan_delay, t.max_udp_scan_delay) == (0.002, 0.002)
    assert (t.max_parallelism, t.level) == (50, 4)
    assert (r.min_rate, r.max_rate, r.connect_concurrency) == (10.0, 100.0, 50)


def test_host_timeout_zero_means_no_limit_even_with_t5() -> None:
    assert ScanOptions(timing=5).resolved().timing.host_timeout == 900
    assert ScanOptions(timing=5, host_timeout=0).resolved().timing.host_timeout is None


def test_template_values_make_room_for_explicit_ones() -> None:
    t = ScanOptions(timing=5, min_rtt_timeout=0.5).resolved().timing
    assert (t.initial_rtt_timeout, t.min_rtt_timeout, t.max_rtt_timeout) == (0.5, 0.5, 0.5)
    t = ScanOptions(initial_rtt_timeout=20).resolved().timing
    assert t.max_rtt_timeout == 20
    t = ScanOptions(initial_rtt_timeout=0.05).resolved().timing
    assert t.min_rtt_timeout == 0.05
    t = ScanOptions(scan_delay=2).resolved().timing
    assert (t.max_tcp_scan_delay, t.max_udp_scan_delay) == (2, 2)
    t = ScanOptions(timing=2, max_scan_delay=0.1).resolved().timing
    assert t.scan_delay == 0.1  # the template's 0.4 s delay lowered to the ceiling
    t = ScanOptions(timing=2, min_parallelism=10).resolved().timing
    assert (t.min_parallelism, t.max_parallelism) == (10, 10)


def test_connect_concurrency_follows_parallelism_unless_given() -> None:
    assert ScanOptions(timing=1).resolved().connect_concurrency == 1
    assert ScanOptions(timing=1, connect_concurrency=8).resolved().connect_concurrency == 8


def test_options_are_frozen_and_evolvable() -> None:
    opts = ScanOptions(max_rate=5)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        opts.max_rate = 6  # type: ignore[misc]
    assert attrs.evolve(opts, max_rate=6).max_rate == 6
    with pytest.raises(OptionsError, match="min_rate"):
        attrs.evolve(opts, min_rate=6)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"timing": 7}, "unknown timing template 7"),
        ({"timing": "fast"}, "unknown timing template 'fast'"),
        (
            {"min_rate": -1},
            "min_rate must be a positive finite number of packets per second",
        ),
        ({"max_rate": 0}, "max_rate must be a positive finite number"),
        ({"max_rate": math.inf}, "max_rate must be a positive finite number"),
        ({"max_rate": "10"}, "max_rate must be a positive finite number"),
        ({"min_rate": 10, "max_rate": 5}, r"min_rate \(10/s\) must not exceed max_rate \(5/s\)"),
        (
            {"min_rtt_timeout": 2, "max_rtt_timeout": 1},
            r"min_rtt_timeout \(2s\) must not exceed max_rtt_timeout \(1s\)",
        ),
        (
            {"min_rtt_timeout": 0.5, "initial_rtt_timeout": 0.2},
            r"min_rtt_timeout \(0.5s\) must not exceed initial_rtt_timeout \(0.2s\)",
        ),
        (
            {"initial_rtt_timeout": 3, "max_rtt_timeout": 2},
            r"initial_rtt_timeout \(3s\) must not exceed max_rtt_timeout \(2s\)",
        ),
        ({"max_rtt_timeout": 0}, "max_rtt_timeout must be greater than 0 seconds"),
        ({"initial_rtt_timeout": -1}, "initial_rtt_timeout must be a finite number of seconds"),
        ({"min_rtt_timeout": math.nan}, "min_rtt_timeout must be a finite number of seconds"),
        ({"host_timeout": -5}, "host_timeout must be a finite number of seconds >= 0, got -5"),
        ({"scan_delay": 2, "max_scan_delay": 1}, r"scan_delay \(2s\) must not exceed"),
        ({"max_retries": -1}, "max_retries must be >= 0, got -1"),
        ({"max_retries": 2.5}, "max_retries must be an integer"),
        ({"max_parallelism": 0}, "max_parallelism must be >= 1, got 0"),
        ({"min_parallelism": 5, "max_parallelism": 2}, r"min_parallelism \(5\) must not exceed"),
        ({"connect_concurrency": 0}, "connect_concurrency must be >= 1"),
        ({"source_port": 65536}, "source_port must be within 0..65535, got 65536"),
        ({"source_port": -1}, "source_port must be within 0..65535, got -1"),
        ({"source_port": True}, "source_port must be an integer"),
        ({"ttl": 256}, "ttl must be within 0..255, got 256"),
        ({"source_address": "10.0.0.256"}, "source_address '10.0.0.256' is not an IPv4 or IPv6"),
        ({"source_address": 5}, "source_address must be an IP address string"),
        ({"interface": ""}, "interface '' is not a valid interface name: it is empty"),
        ({"interface": "eth 0"}, "interface 'eth 0' is not a valid interface name: it contains"),
        ({"interface": "x" * 16}, "is longer than 15 characters"),
        ({"shard": (2, 2)}, r"shard index 2 is out of range for 2 shards \(expected 0..1\)"),
        ({"shard": (-1, 2)}, "shard index -1 is out of range"),
        ({"shard": (0, 0)}, "shard count must be >= 1, got 0"),
        ({"shard": (1,)}, "shard must be a tuple"),
        ({"shard": [0, 1]}, "shard must be a tuple"),
        ({"seed": "abc"}, "seed must be an integer"),
        ({"randomize_ports": 1}, "randomize_ports must be True or False"),
    ],
)
def test_invalid_options_raise_precise_errors(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        ScanOptions(**kwargs)


def test_valid_edge_values() -> None:
    opts = ScanOptions(
        source_port=0,
        ttl=0,
        min_rtt_timeout=0,
        max_retries=0,
        shard=(0, 1),
        source_address="::1",
        interface="lo",
        seed=-3,
    )
    assert opts.resolved().timing.min_rtt_timeout == 0
    assert ScanOptions(source_port=65535, ttl=255, shard=(4, 5)).shard == (4, 5)


# -- property: validation rejects exactly the invalid combinations ---------------------------

maybe_rate = st.one_of(
    st.none(), st.sampled_from([-1.0, 0.0, math.inf]), st.floats(0.01, 1e6, allow_nan=False)
)
maybe_secs = st.one_of(st.none(), st.sampled_from([-0.5, 0.0]), st.floats(0.001, 1000))
maybe_retries = st.one_of(st.none(), st.integers(-3, 15))
maybe_shard = st.one_of(st.none(), st.tuples(st.integers(-2, 6), st.integers(-1, 5)))
maybe_port = st.one_of(st.none(), st.integers(-10, 70000))


def _expected_valid(kw: dict[str, Any]) -> bool:
    def ok_rate(v: float | None) -> bool:
        return v is None or (0 < v < math.inf)

    lo_rate, hi_rate = kw["min_rate"], kw["max_rate"]
    if not (ok_rate(lo_rate) and ok_rate(hi_rate)):
        return False
    if lo_rate is not None and hi_rate is not None and lo_rate > hi_rate:
        return False
    mn, mx, init = kw["min_rtt_timeout"], kw["max_rtt_timeout"], kw["initial_rtt_timeout"]
    if mn is not None and mn < 0:
        return False
    if any(v is not None and v <= 0 for v in (mx, init)):
        return False
    given_order = [v for v in (mn, init, mx) if v is not None]
    if given_order != sorted(given_order):
        return False
    if kw["max_retries"] is not None and kw["max_retries"] < 0:
        return False
    if kw["shard"] is not None:
        index, count = kw["shard"]
        if not (count >= 1 and 0 <= index < count):
            return False
    return kw["source_port"] is None or 0 <= kw["source_port"] <= 65535


@given(
    st.integers(0, 5),
    maybe_rate,
    maybe_rate,
    maybe_secs,
    maybe_secs,
    maybe_secs,
    maybe_retries,
    maybe_shard,
    maybe_port,
)
def test_validation_rejects_exactly_the_invalid_combinations(
    level: int,
    min_rate: float | None,
    max_rate: float | None,
    min_rtt: float | None,
    max_rtt: float | None,
    initial_rtt: float | None,
    retries: int | None,
    shard: tuple[int, int] | None,
    port: int | None,
) -> None:
    kw: dict[str, Any] = {
        "timing": level,
        "min_rate": min_rate,
        "max_rate": max_rate,
        "min_rtt_timeout": min_rtt,
        "max_rtt_timeout": max_rtt,
        "initial_rtt_timeout": initial_rtt,
        "max_retries": retries,
        "shard": shard,
        "source_port": port,
    }
    if not _expected_valid(kw):
        with pytest.raises(OptionsError):
            ScanOptions(**kw)
        return
    opts = ScanOptions(**kw)
    t = opts.resolved().timing
    template = TEMPLATES[level]
    assert t.min_rtt_timeout <= t.initial_rtt_timeout <= t.max_rtt_timeout
    # Explicit values are kept exactly; unset ones come from the template unless they had
    # to move out of an explicit value's way.
    for name, value in (
        ("min_rtt_timeout", min_rtt),
        ("max_rtt_timeout", max_rtt),
        ("initial_rtt_timeout", initial_rtt),
    ):
        if value is not None:
            assert getattr(t, name) == value
    if min_rtt is None and max_rtt is None and initial_rtt is None:
        assert t.min_rtt_timeout == template.min_rtt_timeout
        assert t.max_rtt_timeout == template.max_rtt_timeout
    assert t.max_retries == (template.max_retries if retries is None else retries)


# -- nmap as the oracle for merging templates with explicit values ---------------------------

_NMAP_REPORT = re.compile(
    r"rtt-timeouts: init (?P<init>\d+), min (?P<min>\d+), max (?P<max>\d+)\s+"
    r"max-scan-delay: TCP (?P<tcp>\d+), UDP (?P<udp>\d+), SCTP \d+\s+"
    r"parallelism: min \d+, max (?P<par>\d+)\s+"
    r"max-retries: (?P<retries>\d+), host-timeout: (?P<host>\d+)"
)

_FLAGS = {
    "min_rtt_timeout": "--min-rtt-timeout",
    "max_rtt_timeout": "--max-rtt-timeout",
    "initial_rtt_timeout": "--initial-rtt-timeout",
    "scan_delay": "--scan-delay",
    "max_scan_delay": "--max-scan-delay",
    "host_timeout": "--host-timeout",
}


@pytest.mark.nmap
@pytest.mark.skipif(NMAP is None, reason="nmap is not installed")
@pytest.mark.parametrize(
    "kwargs",
    [
        {"timing": 5, "min_rtt_timeout": 0.5},
        {"timing": 3, "initial_rtt_timeout": 20},
        {"timing": 3, "initial_rtt_timeout": 0.05},
        {"timing": 5, "max_rtt_timeout": 0.1},
        {"timing": 4, "initial_rtt_timeout": 2, "min_rtt_timeout": 1.5},
        {"timing": 3, "scan_delay": 2},
        {"timing": 4, "max_scan_delay": 0.002},
        {"timing": 2, "max_scan_delay": 0.1},
        {"timing": 5, "host_timeout": 0},
        {"timing": 1, "host_timeout": 60},
        {"timing": 2, "max_parallelism": 5},
        {"timing": 4, "max_retries": 3},
    ],
)
def test_resolution_matches_nmap(kwargs: dict[str, Any]) -> None:
    """`nmap -d -sL -n` prints its merged timing values (ms) and sends nothing."""
    assert NMAP is not None
    args = [f"-T{kwargs['timing']}"]
    for name, value in kwargs.items():
        if name in _FLAGS:
            args += [_FLAGS[name], f"{round(value * 1000)}ms"]
        elif name == "max_parallelism":
            args += ["--max-parallelism", str(value)]
        elif name == "max_retries":
            args += ["--max-retries", str(value)]
    out = subprocess.run(
        [NMAP, "-d", "-sL", "-n", *args, "127.0.0.1"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    m = _NMAP_REPORT.search(out)
    assert m, f"no timing report in nmap -d output:\n{out}"
    rep = {k: int(v) / 1000 for k, v in m.groupdict().items()}
    t = ScanOptions(**kwargs).resolved().timing
    assert rep["init"] == pytest.approx(t.initial_rtt_timeout)
    assert rep["min"] == pytest.approx(t.min_rtt_timeout)
    assert rep["max"] == pytest.approx(t.max_rtt_timeout)
    assert rep["retries"] * 1000 == t.max_retries
    assert rep["host"] == pytest.approx(t.host_timeout or 0)
    assert rep["par"] * 1000 == (t.max_parallelism or 0)
    # nmap prints the ceiling before raising it to the scan delay.
    assert max(rep["tcp"], t.scan_delay) == pytest.approx(t.max_tcp_scan_delay)
    assert max(rep["udp"], t.scan_delay) == pytest.approx(t.max_udp_scan_delay)


def test_resume_from_needs_a_reproducible_order() -> None:
    with pytest.raises(OptionsError, match=r"resume_from needs the probe order .* same seed"):
        ScanOptions(resume_from=10)
    with pytest.raises(OptionsError, match="resume_from must be >= 0"):
        ScanOptions(resume_from=-1, seed=1)
    with pytest.raises(OptionsError, match="resume_from must be an integer"):
        ScanOptions(resume_from="3", seed=1)  # type: ignore[arg-type]
    for ok in (
        ScanOptions(resume_from=10, seed=1),
        ScanOptions(resume_from=10, shard=(0, 2)),  # shards share a fixed order
        ScanOptions(resume_from=10, randomize_ports=False),  # sequential
    ):
        assert ok.resolved().resume_from == 10
    assert ScanOptions().resolved().resume_from is None
