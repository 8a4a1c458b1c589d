"""nmap target specifications: syntax, lazy expansion, exclusions, order, nmap as oracle."""

from __future__ import annotations

import collections
import io
import ipaddress
import itertools
import re
import shutil
import subprocess
import tracemalloc
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pyscan._specs.targets import (
    MAX_EXCLUDE_RANGES,
    HostnameTarget,
    IPAddress,
    IPv4Range,
    IPv6Range,
    TargetSet,
    TargetSpec,
    parse_exclude,
    parse_exclude_file,
    parse_input_list,
    parse_target,
    parse_targets,
    read_exclude_file,
    read_input_list,
)
from pyscan.errors import ResolveError, TargetSpecError

V4 = ipaddress.IPv4Address
V6 = ipaddress.IPv6Address


def addresses(spec: str, exclude: str | None = None) -> list[str]:
    return [str(a) for a in parse_targets(spec, exclude=exclude).resolved()]


def net(cidr: str) -> list[str]:
    return [str(a) for a in ipaddress.ip_network(cidr, strict=False)]


def check_consistent(ts: TargetSet, expected: Sequence[IPAddress]) -> None:
    """Iteration, size, at() and membership all describe the same sequence."""
    got = list(ts)
    assert got == list(expected)
    assert ts.size == len(expected)
    assert [ts.at(i) for i in range(ts.size)] == got
    assert all(a in ts for a in got)


# -- syntax forms ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("192.0.2.7", ["192.0.2.7"]),
        ("192.0.2.7/32", ["192.0.2.7"]),
        ("192.0.2.6/31", net("192.0.2.6/31")),
        ("192.0.2.5/30", net("192.0.2.4/30")),  # host bits are dropped, as nmap does
        ("192.0.2.0/24", net("192.0.2.0/24")),  # network and broadcast included
        ("10.0.0.1,3,5-7", ["10.0.0.1", "10.0.0.3", "10.0.0.5", "10.0.0.6", "10.0.0.7"]),
        ("10.0.0.5,1,3", ["10.0.0.1", "10.0.0.3", "10.0.0.5"]),  # each octet ascending
        ("10.0.0.3-5,1-4", [f"10.0.0.{i}" for i in range(1, 6)]),  # overlaps merge
        ("10.0.0.-3", [f"10.0.0.{i}" for i in range(4)]),
        ("10.0.0.253-", ["10.0.0.253", "10.0.0.254", "10.0.0.255"]),
        ("10.0.0.0001", ["10.0.0.1"]),  # leading zeros are decimal
        ("10.0.0.1/032", ["10.0.0.1"]),
        ("10.0.0.7-7", ["10.0.0.7"]),
        ("10.0.0.1,9/30", net("10.0.0.0/30") + net("10.0.0.8/30")),
        ("10.0.0.1-2/31", net("10.0.0.0/30")),
        ("1-2.0.0.1", ["1.0.0.1", "2.0.0.1"]),
        ("-1.0.0.1", ["0.0.0.1", "1.0.0.1"]),
        ("2001:db8::ff/127", ["2001:db8::fe", "2001:db8::ff"]),
        ("2001:db8::5/126", net("2001:db8::4/126")),
        ("::ffff:192.0.2.1", ["::ffff:c000:201"]),
        ("fe80::1%eth0", ["fe80::1"]),
        ("10.0.0.1 10.0.0.1", ["10.0.0.1", "10.0.0.1"]),  # duplicates kept, as nmap lists them
        ("10.0.0.2\t10.0.0.1\n 10.0.0.3 ", ["10.0.0.2", "10.0.0.1", "10.0.0.3"]),  # given order
    ],
)
def test_syntax_forms(spec: str, expected: list[str]) -> None:
    assert addresses(spec) == expected
    check_consistent(parse_targets(spec).resolved(), [ipaddress.ip_address(a) for a in expected])


def test_wildcards_per_octet() -> None:
    assert addresses("10.0.*.1") == [f"10.0.{i}.1" for i in range(256)]
    assert addresses("10.-.0.1") == [f"10.{i}.0.1" for i in range(256)]
    assert addresses("192.168.3-4.1-254") == [
        f"192.168.{c}.{d}" for c in (3, 4) for d in range(1, 255)
    ]


def test_prefix_on_a_pattern_widens_each_octet_like_nmap() -> None:
    # nmap: every octet value that agrees with a member on the network bits.
    assert addresses("10.0.0.*/30") == net("10.0.0.0/24")
    assert addresses("10.0.5-6.1/23") == net("10.0.4.0/22")
    assert addresses("10.0.*.1/30") == [f"10.0.{c}.{d}" for c in range(256) for d in range(4)]


def test_parsed_target_kinds() -> None:
    v4 = parse_target("10.0.0.1-2")
    assert isinstance(v4, IPv4Range)
    assert v4.octets == ((10,), (0,), (0,), (1, 2))
    assert v4.size == 2
    v6 = parse_target("2001:db8::/64")
    assert isinstance(v6, IPv6Range)
    assert v6.network == ipaddress.ip_network("2001:db8::/64")
    host = parse_target("scanme.example.org/24")
    assert host == HostnameTarget("scanme.example.org", 24, "scanme.example.org/24", 0)
    spec = parse_targets("a.example  10.0.0.1 b.example/30")
    assert [t.position for t in spec.targets] == [0, 11, 20]


def test_big_blocks_have_exact_sizes_and_random_access() -> None:
    ts = parse_targets("10.0.0.0/8 2001:db8::/64 *.*.*.1").resolved()
    assert ts.size == 2**24 + 2**64 + 2**24
    assert ts.at(0) == V4("10.0.0.0")
    assert ts.at(2**24 - 1) == V4("10.255.255.255")
    assert ts.at(2**24) == V6("2001:db8::")
    assert ts.at(2**24 + 2**64 - 1) == V6("2001:db8::ffff:ffff:ffff:ffff")
    assert ts.at(2**24 + 2**64 + 258) == V4("0.1.2.1")
    assert V4("77.1.2.1") in ts
    assert V4("77.1.2.2") not in ts
    assert "2001:db8::1234" in ts
    assert "not an address" not in ts
    assert 42 not in ts
    assert ts.families == {4, 6}
    with pytest.raises(IndexError):
        ts.at(ts.size)


# -- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "reason", "position"),
    [
        ("10.0.0.256", "octet 256 is larger than 255", 7),
        ("256.1.1.1", "octet 256 is larger than 255", 0),
        ("10.0.0.5-1", "reversed octet range '5-1'", 7),
        ("10.0.0.1/33", "prefix /33 is too large for IPv4", 9),
        ("10.0.0.1/", "missing CIDR prefix", 9),
        ("10.0.0.1/a", "bad CIDR prefix 'a'", 9),
        ("10.0.0.1/-1", "bad CIDR prefix '-1'", 9),
        ("10.0.0.1/30/", "more than one '/'", 11),
        ("2001:db8::/129", "prefix /129 is too large for IPv6", 11),
        ("10.0.0", "expected 4 dot-separated octets, found 3", 0),
        ("10.0.0.1.5", "found 5", 8),
        ("10..0.1", "empty octet", 3),
        ("10.0.0.1,,3", "empty element in octet list", 9),
        ("10.0.0.1-3,*", "'*' must stand alone", 11),
        ("10.0.0.1*", "'*' must stand alone", 8),
        ("10.0.0.1--3", "more than one '-'", 7),
        ("fe80::1-5", "IPv6 addresses take no octet ranges", 7),
        ("2001:db8::1,2", "IPv6 addresses take no octet ranges", 11),
        ("2001:db8::*", "IPv6 addresses take no octet ranges", 10),
        ("2001:db8:::1", "not a valid IPv6 address", 0),
        ("[::1]", "not a valid IPv6 address", 0),
        ("ab$c.example", "unexpected character '$'", 2),
        ("a..example", "empty label", 2),
        ("-oops.example", "starts or ends with '-'", 0),
        ("/24", "missing address or host name", 0),
        ("ok.example 10.0.0.300", "octet 300 is larger than 255", 18),  # offset in whole spec
        ("", "no targets given", None),
        ("  \n ", "no targets given", None),
    ],
)
def test_errors_say_what_and_where(spec: str, reason: str, position: int | None) -> None:
    with pytest.raises(TargetSpecError) as info:
        parse_targets(spec)
    assert reason in info.value.reason
    assert info.value.position == position
    assert info.value.spec == spec
    assert isinstance(info.value, ValueError)


def test_empty_spec_allowed_when_asked() -> None:
    assert parse_targets("", allow_empty=True).resolved().size == 0
    assert list(parse_targets([], allow_empty=True).resolved()) == []


def test_parse_target_takes_exactly_one_expression() -> None:
    with pytest.raises(TargetSpecError, match="whitespace inside"):
        parse_target("10.0.0.1 10.0.0.2")
    with pytest.raises(TargetSpecError, match="empty target"):
        parse_target("")


def test_list_of_arguments_reports_the_offending_argument() -> None:
    with pytest.raises(TargetSpecError) as info:
        parse_targets(["10.0.0.1", "10.0.0.1-0"])
    assert info.value.spec == "10.0.0.1-0"
    assert info.value.position == 7


# -- exclusions --------------------------------------------------------------------------


def test_exclude_list_semantics() -> None:
    assert addresses("10.0.0.0/29", exclude="10.0.0.1,10.0.0.3-4") == [
        "10.0.0.0", "10.0.0.2", "10.0.0.5", "10.0.0.6", "10.0.0.7"
    ]  # fmt: skip
    assert addresses("10.0.0.0/29", exclude="10.0.0.0/30 10.0.0.7") == [
        "10.0.0.4", "10.0.0.5", "10.0.0.6"
    ]  # fmt: skip
    assert addresses("10.0.0.0/29", exclude="10.0.0.1,") == addresses("10.0.0.0/29")[:1] + [
        f"10.0.0.{i}" for i in range(2, 8)
    ]
    assert addresses("2001:db8::/126", exclude="2001:db8::1,2001:db8::3") == [
        "2001:db8::", "2001:db8::2"
    ]  # fmt: skip
    # IPv4 exclusions never touch IPv6 targets, and the reverse.
    assert addresses("10.0.0.1 ::a", exclude="::/0") == ["10.0.0.1"]
    assert addresses("10.0.0.1 ::a", exclude="0.0.0.0/0") == ["::a"]
    ts = parse_targets("10.0.0.0/29", exclude="10.0.0.0/29").resolved()
    assert ts.size == 0
    assert not ts
    assert list(ts) == []


def test_exclusion_of_a_pattern_from_a_big_block_is_counted_not_listed() -> None:
    ts = parse_targets("10.0.0.0/8", exclude="10.0.*.1,10.1.0.0/16").resolved()
    assert ts.size == 2**24 - 256 - 2**16
    assert ts.at(0) == V4("10.0.0.0")
    assert ts.at(1) == V4("10.0.0.2")
    assert V4("10.0.7.1") not in ts
    assert V4("10.1.2.3") not in ts
    assert V4("10.2.0.1") in ts
    assert ts.at(ts.size - 1) == V4("10.255.255.255")
    # Index 255*255 + 255 skips the 256 .1 addresses of 10.0.0.0/16: it is 10.0.255.255.
    assert ts.at(256 * 255 - 1) == V4("10.0.255.255")
    assert ts.at(256 * 255) == V4("10.2.0.0")


@pytest.mark.parametrize(
    ("spec", "reason", "position"),
    [
        ("10.0.0.1,,10.0.0.2", "empty entry in exclude list", 9),
        (",10.0.0.1", "empty entry in exclude list", 0),
        ("10.0.0.1,3", "commas separate --exclude entries", 9),
        ("10.0.0.0/33", "too large for IPv4", 9),
        ("10.0.0.x!", "unexpected character '!'", 8),
    ],
)
def test_bad_exclude_specs(spec: str, reason: str, position: int) -> None:
    with pytest.raises(TargetSpecError) as info:
        parse_exclude(spec)
    assert reason in info.value.reason
    assert info.value.position == position


def test_exclusions_too_fragmented_to_index_are_refused() -> None:
    assert MAX_EXCLUDE_RANGES < 2**24
    with pytest.raises(TargetSpecError, match="separate address ranges"):
        parse_targets("10.0.0.0/8", exclude="*.*.*.1").resolved()


def test_empty_exclude_is_fine() -> None:
    assert parse_exclude("").targets == ()
    assert addresses("10.0.0.1", exclude="") == ["10.0.0.1"]


# -- input lists -------------------------------------------------------------------------

INPUT_LIST = (
    "10.0.0.1 10.0.0.2\n"
    "# a comment line 10.0.0.9\n"
    "10.0.0.3-4 # trailing comment 10.0.0.8\r\n"
    "\t10.0.0.5,7\n"
    "\n"
    "10.0.0.6#comment 10.0.0.10\n"
    "host.example/31"
)


def test_input_list_format() -> None:
    spec = parse_input_list(INPUT_LIST)
    assert spec.hostnames() == ("host.example",)
    ts = spec.resolved({"host.example": [V4("192.0.2.9")]})
    assert [str(a) for a in ts] == [
        "10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4", "10.0.0.5", "10.0.0.7", "10.0.0.6",
        "192.0.2.8", "192.0.2.9",
    ]  # fmt: skip


def test_input_list_errors_name_the_line() -> None:
    with pytest.raises(TargetSpecError) as info:
        parse_input_list("10.0.0.1\n# fine\n  10.0.0.2 10.0.0.300\n", source="hosts.txt")
    assert info.value.reason.startswith("hosts.txt line 3: octet 300")
    assert info.value.spec == "  10.0.0.2 10.0.0.300"
    assert info.value.position == 18
    with pytest.raises(TargetSpecError, match="line 1: unexpected character"):
        parse_input_list("\x00\x01garbage")
    with pytest.raises(TargetSpecError, match="holds no targets"):
        parse_input_list("# only comments\n\n")
    assert parse_input_list("", allow_empty=True).targets == ()


def test_read_input_list_from_file_and_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "targets.txt"
    path.write_text(INPUT_LIST)
    assert read_input_list(path) == parse_input_list(INPUT_LIST)
    monkeypatch.setattr("sys.stdin", io.StringIO("10.0.0.1\n10.0.0.2 # x\n"))
    assert [str(a) for a in read_input_list("-").resolved()] == ["10.0.0.1", "10.0.0.2"]
    with pytest.raises(TargetSpecError, match="cannot read"):
        read_input_list(tmp_path / "missing.txt")
    with pytest.raises(TargetSpecError, match="cannot read"):
        read_input_list(tmp_path)
    garbled = tmp_path / "garbled.txt"
    garbled.write_bytes(b"10.0.0.1\n\xff\xfe\n")
    with pytest.raises(TargetSpecError, match="not UTF-8"):
        read_input_list(garbled)
    bad = tmp_path / "bad.txt"
    bad.write_text("10.0.0.1\n10.0.0.1/40\n")
    with pytest.raises(TargetSpecError, match=r"bad\.txt line 2: prefix /40"):
        read_input_list(bad)


def test_exclude_file(tmp_path: Path) -> None:
    text = "10.0.0.1 10.0.0.3\n#c 10.0.0.4\n10.0.0.5\t10.0.0.6 # 10.0.0.7\n"
    path = tmp_path / "exclude.txt"
    path.write_text(text)
    spec = parse_targets("10.0.0.0/29").excluding(read_exclude_file(path))
    assert [str(a) for a in spec.resolved()] == ["10.0.0.0", "10.0.0.2", "10.0.0.4", "10.0.0.7"]
    assert parse_exclude_file("") == TargetSpec()
    with pytest.raises(TargetSpecError, match="line 2"):
        parse_exclude_file("10.0.0.1\n10.0.0.1,\n")


def test_specs_combine() -> None:
    a = parse_targets("10.0.0.1", exclude="10.0.0.9")
    b = parse_input_list("10.0.0.9 10.0.0.2")
    assert [str(x) for x in (a + b).resolved()] == ["10.0.0.1", "10.0.0.2"]


# -- host names --------------------------------------------------------------------------


def test_hostnames_are_kept_for_the_caller_to_resolve() -> None:
    spec = parse_targets("web.example 10.0.0.1 db.example/30 web.example", exclude="admin.example")
    assert spec.hostnames() == ("web.example", "db.example", "admin.example")
    answers: dict[str, list[IPAddress | str]] = {
        "web.example": [V4("192.0.2.10"), V4("192.0.2.11")],
        "db.example": ["198.51.100.6"],
        "admin.example": [V4("198.51.100.5")],
    }
    ts = spec.resolved(answers)
    assert [str(a) for a in ts] == [
        "192.0.2.10", "10.0.0.1", "198.51.100.4", "198.51.100.6", "198.51.100.7", "192.0.2.10"
    ]  # fmt: skip
    every = spec.resolved(answers, resolve_all=True)
    assert [str(a) for a in every] == [
        "192.0.2.10", "192.0.2.11", "10.0.0.1", "198.51.100.4", "198.51.100.6", "198.51.100.7",
        "192.0.2.10", "192.0.2.11",
    ]  # fmt: skip
    # An excluded name drops every address it has, whatever resolve_all says.
    answers["admin.example"] = ["192.0.2.11", "198.51.100.4"]
    assert [str(a) for a in spec.resolved(answers)][:3] == [
        "192.0.2.10",
        "10.0.0.1",
        "198.51.100.5",
    ]


def test_unresolved_target_names_are_skipped_and_reported() -> None:
    ts = parse_targets("gone.example 10.0.0.1 empty.example").resolved({"empty.example": []})
    assert [str(a) for a in ts] == ["10.0.0.1"]
    assert ts.unresolved == ("gone.example", "empty.example")


def test_unresolved_excluded_name_is_an_error_not_a_silent_scan() -> None:
    spec = parse_targets("10.0.0.0/30", exclude="printer.example")
    with pytest.raises(ResolveError, match=r"printer\.example"):
        spec.resolved({})


def test_hostname_prefix_checked_against_the_resolved_family() -> None:
    spec = parse_targets("v6only.example/64 v4.example/40")
    with pytest.raises(TargetSpecError, match=r"too large for v4\.example's IPv4") as info:
        spec.resolved({"v6only.example": ["2001:db8::1"], "v4.example": ["192.0.2.1"]})
    assert info.value.position == len("v6only.example/64 v4.example/")
    ok = spec.resolved({"v6only.example": ["2001:db8::1"]})
    assert ok.size == 2**64
    assert ok.at(0) == V6("2001:db8::")


def test_targetset_parse_shortcut() -> None:
    assert list(TargetSet.parse("10.0.0.1-2", exclude="10.0.0.2")) == [V4("10.0.0.1")]
    with pytest.raises(TargetSpecError, match="need resolving"):
        TargetSet.parse("host.example")


# -- order, shards, resume ---------------------------------------------------------------


def test_random_order_shards_and_resume() -> None:
    ts = parse_targets("10.0.0.0/26 10.0.1.1-20 2001:db8::/124", exclude="10.0.0.7").resolved()
    sequential = list(ts)
    shuffled = list(ts.iter(seed=99))
    assert shuffled != sequential
    assert sorted(shuffled, key=lambda a: (a.version, int(a))) == sorted(
        sequential, key=lambda a: (a.version, int(a))
    )
    assert shuffled == list(ts.iter(seed=99))
    assert shuffled == [sequential[ts.permutation(99).at(i)] for i in range(ts.size)]
    shards = [list(ts.iter(seed=99, shard=(i, 3))) for i in range(3)]
    assert sorted(itertools.chain(*shards), key=int) == sorted(shuffled, key=int)
    assert shards[1] == shuffled[1::3]
    assert list(ts.iter(seed=99, shard=(1, 3), start=5)) == shards[1][5:]
    assert list(ts.iter(start=70)) == sequential[70:]
    assert list(ts.iter(shard=(0, 2))) == sequential[::2]


# -- property tests ----------------------------------------------------------------------

# An octet is drawn as structure, rendered to nmap syntax, and expanded independently of
# the parser: ("*",), ("-",), or a list of (lo, hi, form) items.
_item = st.tuples(st.integers(0, 255), st.integers(0, 255)).map(lambda p: (min(p), max(p)))


@st.composite
def octet(draw: st.DrawFn, span: int) -> tuple[str, frozenset[int]]:
    """One octet as nmap text and its values; ranges are at most ``span`` wide."""
    if span >= 255 and draw(st.integers(0, 5)) == 0:
        return draw(st.sampled_from(["*", "-"])), frozenset(range(256))
    items = []
    values: set[int] = set()
    for _ in range(draw(st.integers(1, 3 if span < 255 else 2))):
        lo, hi = draw(_item)
        hi = min(hi, lo + span)
        form = draw(st.sampled_from(["single", "range", "open_lo", "open_hi"]))
        if form == "single":
            hi = lo
            items.append(str(lo))
        elif form == "open_lo" and hi <= span:
            lo = 0
            items.append(f"-{hi}")
        elif form == "open_hi" and lo >= 255 - span:
            hi = 255
            items.append(f"{lo}-")
        else:
            items.append(f"{lo}-{hi}")
        values.update(range(lo, hi + 1))
    return ",".join(items), frozenset(values)


@st.composite
def ipv4_pattern(
    draw: st.DrawFn, max_size: int = 2000, head: tuple[int, int] | None = None
) -> tuple[str, list[V4]]:
    """A small random pattern and its expected expansion (ascending; nmap's rule for /N).

    ``head`` fixes the first two octets (to make targets and exclusions overlap).
    """
    if head is None:
        wide = draw(st.integers(0, 3))
        parts = [draw(octet(span=255 if k == wide else 1)) for k in range(4)]
    else:
        fixed = [(str(h), frozenset({h})) for h in head]
        parts = [*fixed, draw(octet(span=1)), draw(octet(span=30))]
    count = 1
    for _, values in parts:
        count *= len(values)
    assume(count <= max_size)
    text = ".".join(t for t, _ in parts)
    members = [
        V4(".".join(map(str, combo))) for combo in itertools.product(*(sorted(v) for _, v in parts))
    ]
    prefix = draw(st.one_of(st.none(), st.integers(27, 32)))
    if prefix is None:
        return text, members
    widened: set[V4] = set()
    for member in members:
        widened.update(ipaddress.IPv4Network((member, prefix), strict=False))
    return f"{text}/{prefix}", sorted(widened)


_heads = st.tuples(st.sampled_from([10, 10, 11]), st.integers(0, 1))


@st.composite
def v4_target(draw: st.DrawFn) -> tuple[str, list[V4]]:
    """A pattern inside 10.0-1.x.y or 11.0-1.x.y."""
    return draw(ipv4_pattern(max_size=400, head=draw(_heads)))


@st.composite
def v4_exclusion(draw: st.DrawFn) -> tuple[str, set[V4] | ipaddress.IPv4Network]:
    """A CIDR block or a pattern overlapping v4_target's universe."""
    if draw(st.booleans()):
        network = ipaddress.IPv4Network(
            (draw(st.integers(0x0A000000, 0x0A01FFFF)), draw(st.integers(14, 32))), strict=False
        )
        return str(network), network
    text, members = draw(ipv4_pattern(max_size=400, head=draw(_heads)))
    return text, set(members)


@settings(max_examples=100, deadline=None)
@given(ipv4_pattern())
def test_random_patterns_expand_as_expected(case: tuple[str, list[V4]]) -> None:
    text, expected = case
    ts = parse_targets(text).resolved()
    check_consistent(ts, expected)
    members = set(expected)
    near = {V4(int(a) ^ bit) for a in expected[:50] for bit in (1, 256, 65536)}
    assert all((a in ts) == (a in members) for a in near)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(v4_target(), min_size=1, max_size=3),
    st.lists(v4_exclusion(), max_size=4),
)
def test_exclusions_are_set_difference_in_nmap_order(
    targets: list[tuple[str, list[V4]]],
    excludes: list[tuple[str, set[V4] | ipaddress.IPv4Network]],
) -> None:
    def excluded(a: V4) -> bool:
        return any(a in e for _, e in excludes)

    expected = [a for _, members in targets for a in members if not excluded(a)]
    # Exclusions go through the target parser: --exclude text cannot hold octet lists.
    spec = parse_targets(
        " ".join(t for t, _ in targets),
        exclude=parse_targets([e for e, _ in excludes], allow_empty=True),
    )
    ts = spec.resolved()
    check_consistent(ts, expected)
    for _, members in targets:
        assert all((a in ts) == (not excluded(a)) for a in members)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1023), st.integers(120, 128)), min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(0, 1023), st.integers(118, 128)), max_size=3),
)
def test_ipv6_blocks_and_exclusions(
    targets: list[tuple[int, int]], excludes: list[tuple[int, int]]
) -> None:
    base = int(V6("2001:db8::"))
    t_nets = [ipaddress.IPv6Network((base + a, p), strict=False) for a, p in targets]
    x_nets = [ipaddress.IPv6Network((base + a, p), strict=False) for a, p in excludes]
    expected = [a for n in t_nets for a in n if not any(a in x for x in x_nets)]
    ts = parse_targets(
        [str(V6(base + a)) + f"/{p}" for a, p in targets],
        exclude=[str(x) for x in x_nets],
    ).resolved()
    check_consistent(ts, expected)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(v4_target(), min_size=1, max_size=2),
    st.lists(v4_exclusion(), max_size=2),
    st.integers(0, 2**64),
    st.integers(1, 5),
    st.data(),
)
def test_random_order_is_a_permutation_and_shards_partition(
    targets: list[tuple[str, list[V4]]],
    excludes: list[tuple[str, set[V4] | ipaddress.IPv4Network]],
    seed: int,
    count: int,
    data: st.DataObject,
) -> None:
    ts = parse_targets(
        " ".join(t for t, _ in targets),
        exclude=parse_targets([e for e, _ in excludes], allow_empty=True),
    ).resolved()
    sequential = list(ts)
    shuffled = list(ts.iter(seed=seed))
    assert sorted(shuffled) == sorted(sequential)
    shards = [list(ts.iter(seed=seed, shard=(i, count))) for i in range(count)]
    assert sorted(itertools.chain(*shards)) == sorted(sequential)
    i = data.draw(st.integers(0, count - 1))
    k = data.draw(st.integers(0, len(shards[i]) + 1))
    assert list(ts.iter(seed=seed, shard=(i, count), start=k)) == shards[i][k:]
    assert list(ts.iter(start=k)) == sequential[k:]


# -- laziness ----------------------------------------------------------------------------


@pytest.mark.slow  # tracemalloc slows the million iterations about fivefold
def test_a_slash_8_iterates_in_flat_memory() -> None:
    # Parsed and iterated only: nothing is sent anywhere.
    ts = parse_targets("10.0.0.0/8", exclude="10.0.0.5,10.200.0.0/16").resolved()
    assert ts.size == 2**24 - 1 - 2**16  # known without enumerating
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        # Consumed in C (deque of length 1) so the test times the iterator, not its loop.
        iterator = iter(ts)
        tail = collections.deque(itertools.islice(iterator, 1_000_000), maxlen=1)
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # The millionth address: 10.0.0.5 was skipped, so it is 10.0.0.0 + 1_000_000.
    assert tail[0] == V4(0x0A000000 + 1_000_000)
    assert next(iterator) == V4(0x0A000000 + 1_000_001)
    assert peak - before < 64 * 1024
    assert current - before < 16 * 1024


def test_random_access_into_a_slash_8_in_flat_memory() -> None:
    ts = parse_targets("10.0.0.0/8").resolved()
    tracemalloc.start()
    try:
        seen = set()
        for address in itertools.islice(ts.iter(seed=1), 20_000):
            seen.add(int(address) >> 16)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert len(seen) > 250  # scattered over the /8's 256 /16s
    assert peak < 4 * 1024 * 1024  # the set of /16 numbers, not 16 million addresses


# -- nmap as the oracle ------------------------------------------------------------------

NMAP = shutil.which("nmap")
needs_nmap = pytest.mark.skipif(NMAP is None, reason="nmap is not installed")
_REPORT = re.compile(r"^Nmap scan report for (?:\S+ \((\S+)\)|(\S+))$", re.MULTILINE)


def nmap_list(
    specs: Iterable[str], options: Iterable[str] = (), ipv6: bool = False
) -> list[IPAddress]:
    """The addresses ``nmap -sL -n`` lists (a list scan without DNS sends no packets)."""
    assert NMAP is not None
    command = [NMAP, "-sL", "-n", *(["-6"] if ipv6 else []), *options, "--", *specs]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    return [ipaddress.ip_address(a or b) for a, b in _REPORT.findall(out.stdout)]


NMAP_CASES = [
    (["192.0.2.4/30"], None),
    (["192.0.2.6/31"], None),
    (["192.0.2.9/32"], None),
    (["192.0.2.77/24"], "192.0.2.0-10,192.0.2.250-"),
    (["192.168.0-3.1-254"], None),
    (["10.0.*.1"], "10.0.5-200.*"),
    (["10.0.0.-20", "10.0.0.250-"], None),
    (["-2.0.0.1"], None),
    (["10.0.0.1,3,5-7", "10.0.0.7,5,3"], None),
    (["10.0.0.1", "10.0.0.1", "10.0.0.0/31"], None),
    (["10.0.0.1,9/30", "10.0.5-6.1/23"], "10.0.5.0/25"),
    (["10.0.0.*/30"], None),
    (["10.-.0.1"], "10.0-100.0.1"),
    (["198.51.100.0/24", "203.0.113.9"], "198.51.100.0/26,198.51.100.200-210,203.0.113.9"),
    (["10.0.0.0001", "10.0.0.1/032"], None),
    (["172.16.0.0/22"], "172.16.1.*"),
]
NMAP_V6_CASES = [
    (["2001:db8::/126"], None),
    (["2001:db8::ff/127", "2001:db8::1", "2001:db8::1"], None),
    (["2001:db8::/120"], "2001:db8::/126,2001:db8::80"),
    (["::ffff:192.0.2.1", "fe80::1%lo"], None),
]


@pytest.mark.nmap
@needs_nmap
@pytest.mark.parametrize(("specs", "exclude"), NMAP_CASES + NMAP_V6_CASES)
def test_same_addresses_in_the_same_order_as_nmap(specs: list[str], exclude: str | None) -> None:
    ipv6 = any(":" in s for s in specs)
    options = ["--exclude", exclude] if exclude else []
    expected = nmap_list(specs, options, ipv6=ipv6)
    assert expected, f"nmap listed nothing for {specs} {options}"
    assert list(parse_targets(specs, exclude=exclude).resolved()) == expected


@pytest.mark.nmap
@needs_nmap
def test_input_and_exclude_files_like_nmap(tmp_path: Path) -> None:
    targets = tmp_path / "targets.txt"
    targets.write_text(
        "# lab targets\n192.0.2.1 192.0.2.2\n192.0.2.3-4 # two more 192.0.2.99\r\n"
        "\t192.0.2.5,7\n\n192.0.2.16/29#trailing\n192.0.2.1\n"
    )
    excludes = tmp_path / "excludes.txt"
    excludes.write_text("192.0.2.2\n# 192.0.2.3\n192.0.2.18-19 192.0.2.7\n")
    expected = nmap_list([], ["-iL", str(targets), "--excludefile", str(excludes)])
    assert len(expected) > 5
    spec = read_input_list(targets).excluding(read_exclude_file(excludes))
    assert list(spec.resolved()) == expected


# Odd input: what nmap 7.93 does, and what we do instead (documented in targets.py).
NMAP_REJECTS = [
    "10.0.0.5-1",  # nmap: "Failed to resolve" (tried as a host name)
    "256.1.1.1",
    "10..0.1",
    "10.0.0.1-3,*",
    "10.0.0.1/",  # nmap: "Unable to split netmask"
    "10.0.0.1/a",
    "fe80::1-5",
]


@pytest.mark.nmap
@needs_nmap
@pytest.mark.parametrize("spec", NMAP_REJECTS)
def test_specs_nmap_rejects_are_errors_here(spec: str) -> None:
    assert nmap_list([spec], ipv6=":" in spec) == []
    with pytest.raises(TargetSpecError):
        parse_targets(spec)


@pytest.mark.nmap
@needs_nmap
def test_documented_differences_from_nmap() -> None:
    # nmap warns "Illegal netmask" and scans the /32; we refuse the prefix.
    assert nmap_list(["192.0.2.4/33"]) == [V4("192.0.2.4")]
    with pytest.raises(TargetSpecError, match="too large"):
        parse_targets("192.0.2.4/33")
    # nmap falls back to inet_aton for three-octet forms; we want four octets.
    assert nmap_list(["10.0.0"]) == [V4("10.0.0.0")]
    with pytest.raises(TargetSpecError, match="expected 4"):
        parse_targets("10.0.0")
