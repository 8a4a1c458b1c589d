"""Shared rules of the writers: nmap's port folding, numbers, times, names, the public API."""

from __future__ import annotations

import datetime
import inspect

import pytest
from hypothesis import given
from hypothesis import strategies as st

import pyscan.output
from pyscan._models import Hostname, HostResult, HostStatus, PortState, ReasonKind, Service
from pyscan.errors import OptionsError
from pyscan.output import OutputOptions
from pyscan.output._common import (
    _STATE_NUMBER,
    ExtraPorts,
    HostView,
    ReasonGroup,
    _is_ignored,
    ctime,
    display_name,
    escape_unprintable,
    host_view,
    name_ip,
    port_ranges,
    sig_digits,
    spec_ranges,
    start_time,
)

from .reports import UTC, ip, port, ports

A = ip("198.18.0.90")


def host_with(counts: dict[PortState, int]) -> HostResult:
    result = []
    n = 1
    for state, count in counts.items():
        result += ports(A, range(n, n + count), state, ReasonKind.NO_RESPONSE)
        n += count
    return HostResult(A, HostStatus.UP, ports=tuple(result))


def folded(counts: dict[PortState, int], **kw: object) -> list[tuple[str, int]]:
    view = host_view(host_with(counts), OutputOptions(**kw))  # type: ignore[arg-type]
    return [(str(e.state), e.count) for e in view.extras]


def test_open_is_never_folded() -> None:
    assert folded({PortState.OPEN: 500, PortState.CLOSED: 10}) == []


def test_order_by_count_then_nmap_state_number() -> None:
    counts = {
        PortState.OPEN_FILTERED: 30,
        PortState.FILTERED: 40,
        PortState.CLOSED: 30,
        PortState.UNFILTERED: 100,
    }
    # Ties (30) go to the lower nmap state number: closed (1) before open|filtered (7).
    assert folded(counts) == [
        ("unfiltered", 100),
        ("filtered", 40),
        ("closed", 30),
        ("open|filtered", 30),
    ]


@pytest.mark.parametrize(
    ("verbose", "debugging", "count", "is_folded"),
    [
        (0, 0, 26, True),
        (1, 0, 50, False),
        (1, 0, 51, True),
        (2, 0, 75, False),
        (2, 0, 76, True),
        (0, 1, 525, False),  # -d: 25 * (0 + 1 + 20)
        (0, 1, 526, True),
        (0, 3, 10_000, False),  # -ddd shows everything
    ],
)
def test_limits(verbose: int, debugging: int, count: int, is_folded: bool) -> None:
    got = folded({PortState.CLOSED: count}, verbose=verbose, debugging=debugging)
    assert bool(got) is is_folded


def test_open_filtered_listed_with_vvv() -> None:
    counts = {PortState.OPEN_FILTERED: 1000, PortState.CLOSED: 1000}
    assert folded(counts, verbose=3) == [("closed", 1000)]


def test_open_only_folds_every_state_that_cannot_be_open() -> None:
    counts = {
        PortState.OPEN: 1,
        PortState.CLOSED: 1,
        PortState.FILTERED: 2,
        PortState.OPEN_FILTERED: 3,
        PortState.UNFILTERED: 1,
        PortState.CLOSED_FILTERED: 1,
    }
    assert folded(counts, open_only=True) == [
        ("filtered", 2),
        ("closed", 1),
        ("closed|filtered", 1),
    ]


def test_reason_groups_sorted_by_size() -> None:
    result = ports(A, range(1, 11), PortState.FILTERED, ReasonKind.HOST_UNREACH)
    result += ports(A, range(11, 41), PortState.FILTERED, ReasonKind.NO_RESPONSE)
    result += ports(A, range(1, 6), PortState.FILTERED, ReasonKind.NO_RESPONSE, protocol="udp")
    view = host_view(HostResult(A, HostStatus.UP, ports=tuple(result)), OutputOptions())
    (extra,) = view.extras
    assert [(g.reason, g.protocol, g.count) for g in extra.reasons] == [
        ("no-response", "tcp", 30),
        ("host-unreach", "tcp", 10),
        ("no-response", "udp", 5),
    ]
    assert view.all_ignored


def _reference_view(host: HostResult, options: OutputOptions) -> HostView:
    """host_view as first written (sort everything, then fold): the reference."""
    order = {"tcp": 0, "udp": 1, "sctp": 2}
    ranked = sorted(host.ports, key=lambda p: (order.get(p.protocol, 9), p.port))
    counts: dict[PortState, int] = {}
    for p in ranked:
        counts[p.state] = counts.get(p.state, 0) + 1
    ignored = [s for s, n in counts.items() if _is_ignored(s, n, options)]
    ignored.sort(key=lambda s: (-counts[s], _STATE_NUMBER[s]))
    extras = []
    for state in ignored:
        groups: dict[tuple[str, str], list[int]] = {}
        for p in ranked:
            if p.state is state:
                groups.setdefault((p.reason.kind.value, p.protocol), []).append(p.port)
        ordered = sorted(groups.items(), key=lambda kv: -len(kv[1]))
        extras.append(
            ExtraPorts(
                state,
                counts[state],
                tuple(ReasonGroup(r, proto, tuple(nums)) for (r, proto), nums in ordered),
            )
        )
    skip = set(ignored)
    return HostView(tuple(extras), tuple(p for p in ranked if p.state not in skip), len(ranked))


@given(
    st.dictionaries(
        st.tuples(st.sampled_from(["tcp", "udp", "sctp"]), st.integers(1, 400)),
        st.tuples(
            st.sampled_from(list(PortState)),
            st.sampled_from([ReasonKind.NO_RESPONSE, ReasonKind.RESET, ReasonKind.HOST_UNREACH]),
        ),
        max_size=300,
    ),
    st.integers(0, 3),
    st.booleans(),
)
def test_host_view_folds_as_the_reference_does(
    table: dict[tuple[str, int], tuple[PortState, ReasonKind]], verbose: int, open_only: bool
) -> None:
    result = [
        port(A, number, state, kind, protocol=proto)  # type: ignore[arg-type]
        for (proto, number), (state, kind) in table.items()
    ]
    host = HostResult(A, HostStatus.UP, ports=tuple(result))  # in no particular order
    options = OutputOptions(verbose=verbose, open_only=open_only)
    assert host_view(host, options) == _reference_view(host, options)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.00069, "0.00069"),
        (0.000095, "0.000095"),
        (0.000105, "0.00011"),  # halves round up, as nmap's (105 us: nmap's own case)
        (0.000125, "0.00013"),
        (2.5, "2.5"),
        (125.0, "130"),
        (0.0012, "0.0012"),
        (0.5, "0.50"),
        (1.0, "1.0"),
        (12.3, "12"),
        (1234.0, "1200"),
        (0.0, "0.00"),  # as nmap writes a zero
    ],
)
def test_sig_digits(value: float, text: str) -> None:
    assert sig_digits(value) == text


@given(st.floats(min_value=1e-7, max_value=1e4))
def test_sig_digits_is_close(value: float) -> None:
    assert abs(float(sig_digits(value)) - value) <= value * 0.05 + 1e-12


@pytest.mark.parametrize(
    ("spec", "count", "text"),
    [
        ("1-100,8080", 101, "1-100,8080"),
        ("80,22,23,24", 4, "22-24,80"),
        ("-", 65535, "1-65535"),
        ("-5,65530-", 11, "1-5,65530-65535"),
        ("", 0, ""),
        ("22,http", 1, "22,http"),
        ("5-1", 0, "5-1"),
    ],
)
def test_spec_ranges(spec: str, count: int, text: str) -> None:
    assert spec_ranges(spec) == (count, text)


@given(st.sets(st.integers(0, 65535), max_size=200))
def test_port_ranges_round_trip(numbers: set[int]) -> None:
    text = port_ranges(numbers)
    back: set[int] = set()
    for item in filter(None, text.split(",")):
        lo, _, hi = item.partition("-")
        back.update(range(int(lo), int(hi or lo) + 1))
    assert back == numbers
    assert spec_ranges(text) == (len(numbers), text)


def test_times() -> None:
    ts = 1795292663.0  # nmap wrote "Sat Nov 21 20:24:23 2026" for this start, in UTC
    assert ctime(ts, UTC) == "Sat Nov 21 20:24:23 2026"
    assert ctime(1796083200.0, UTC) == "Tue Dec  1 00:00:00 2026"
    assert start_time(ts, UTC) == "2026-11-21 20:24 UTC"
    cet = datetime.timezone(datetime.timedelta(hours=1), "CET")
    assert start_time(ts, cet) == "2026-11-21 21:24 CET"


def test_names() -> None:
    both = HostResult(A, hostnames=(Hostname("p.lab", "PTR"), Hostname("u.lab", "user")))
    assert name_ip(both) == "u.lab (198.18.0.90)"
    assert name_ip(HostResult(A)) == "198.18.0.90"
    ssl = port(A, 443, PortState.OPEN, ReasonKind.SYN_ACK, service=Service("http", tunnel="ssl"))
    assert display_name(ssl, OutputOptions(), service_scan=False) == "ssl/http"
    assert display_name(ssl, OutputOptions(), service_scan=True) == "ssl/http?"
    unknown = port(
        A, 9, PortState.OPEN, ReasonKind.SYN_ACK, service=Service("unknown", tunnel="ssl")
    )
    assert display_name(unknown, OutputOptions(), service_scan=True) == "ssl/unknown"


def test_escape_unprintable() -> None:
    assert escape_unprintable("plain text é") == "plain text é"
    assert escape_unprintable("a\tb\nc\x00") == "a\\x09b\\x0ac\\x00"
    assert escape_unprintable("\udcff\u2028\U000e0001") == "\\xff\\u2028\\U000e0001"


@pytest.mark.parametrize("field", ["verbose", "debugging"])
def test_options_reject_negative_levels(field: str) -> None:
    with pytest.raises(OptionsError, match=field):
        OutputOptions(**{field: -1})  # type: ignore[arg-type]


def test_public_api_is_complete_and_documented() -> None:
    exported = set(pyscan.output.__all__)
    public = {n for n in vars(pyscan.output) if not n.startswith("_")}
    modules = {"grepable", "jsonl", "normal", "xml"}
    assert public - modules == exported
    for name in exported:
        obj = getattr(pyscan.output, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert inspect.getdoc(obj), name
            for meth_name, meth in vars(obj).items() if inspect.isclass(obj) else ():
                if inspect.isfunction(meth) and not meth_name.startswith("_"):
                    assert inspect.getdoc(meth), f"{name}.{meth_name}"
