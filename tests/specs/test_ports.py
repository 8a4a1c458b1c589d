"""nmap port specifications: -p, --exclude-ports, --top-ports, -F."""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
from collections.abc import Iterable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pyscan._specs.ports import (
    ALL_PROTOCOLS,
    PortList,
    default_ports,
    exclude,
    fast_ports,
    parse_exclude_ports,
    parse_ports,
    resolve_ports,
    top_ports,
)
from pyscan._specs.services import (
    ServiceEntry,
    ServicesTable,
    embedded_services,
    find_nmap_services,
    services_from_nmap,
)
from pyscan.errors import PortSpecError

TCP = frozenset({"tcp"})
TU = frozenset({"tcp", "udp"})
TUS = frozenset({"tcp", "udp", "sctp"})
LETTER = {"tcp": "T", "udp": "U", "sctp": "S", "ip": "P"}


def table() -> ServicesTable:
    rows = [
        ("http", 80, "tcp", 0.9),
        ("https", 443, "tcp", 0.8),
        ("ssh", 22, "tcp", 0.7),
        ("ftp", 21, "tcp", 0.6),
        ("mysql", 3306, "tcp", 0.5),
        ("http", 8008, "tcp", 0.4),
        ("http-alt", 8080, "tcp", 0.3),
        ("ms-sql-s", 1433, "tcp", 0.2),
        ("unknown", 4, "tcp", 0.1),
        ("domain", 53, "udp", 0.9),
        ("http", 80, "udp", 0.1),
        ("snmp", 161, "udp", 0.5),
        ("ms-sql-m", 1434, "udp", 0.4),
        ("mysql", 3306, "udp", 0.0),
        ("http", 80, "sctp", 0.0),
        ("m3ua", 2905, "sctp", 0.2),
    ]
    return ServicesTable.from_entries([ServiceEntry(*r) for r in rows], source="test")


T = table()


def pl(spec: str, protocols: Iterable[str] = TCP) -> PortList:
    return parse_ports(spec, protocols=protocols, services=T)


# --- forms ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "protocols", "expected"),
    [
        ("22", TCP, {"tcp": [22]}),
        ("1-5", TCP, {"tcp": [1, 2, 3, 4, 5]}),
        ("-3", TCP, {"tcp": [1, 2, 3]}),
        ("65533-", TCP, {"tcp": [65533, 65534, 65535]}),
        ("0", TCP, {"tcp": [0]}),
        ("0-2", TCP, {"tcp": [0, 1, 2]}),
        ("00022", TCP, {"tcp": [22]}),
        ("80-80", TCP, {"tcp": [80]}),
        ("22,21,22", TCP, {"tcp": [21, 22]}),
        ("22,", TCP, {"tcp": [22]}),
        (" 22 , 80 ", TCP, {"tcp": [22, 80]}),
        ("T:80,443,U:53,S:9", TUS, {"tcp": [80, 443], "udp": [53], "sctp": [9]}),
        ("22,T:80,U:53", TUS, {"tcp": [22, 80], "udp": [22, 53], "sctp": [22]}),
        ("T: 22 ,U:53", TU, {"tcp": [22], "udp": [53]}),
        ("U:53,T:80", TCP, {"tcp": [80]}),  # udp not scanned: dropped, as nmap does
        ("T:80,T:81", TU, {"tcp": [80, 81]}),
        ("http", TUS, {"tcp": [80, 8008], "udp": [80], "sctp": [80]}),
        ("http*", TCP, {"tcp": [80, 443, 8008, 8080]}),
        ("htt?", TCP, {"tcp": [80, 8008]}),
        ("*sql*", TUS, {"tcp": [1433, 3306], "udp": [1434, 3306]}),
        ("U:http,T:ssh", TU, {"tcp": [22], "udp": [80]}),
        ("T:http", TU, {"tcp": [80, 8008]}),
        ("U:nosuch", TCP, {}),  # not scanned, not looked up (nmap does the same)
        ("T:ssh,U:nosuch", TCP, {"tcp": [22]}),
        ("[1-100]", TU, {"tcp": [4, 21, 22, 80], "udp": [53, 80]}),
        ("[-]", {"sctp"}, {"sctp": [80, 2905]}),
        ("[0-]", {"sctp"}, {"sctp": [80, 2905]}),
        ("[1-5,7-30]", TCP, {"tcp": [4, 21, 22]}),
        ("[1-5],[20-21]", TCP, {"tcp": [4, 21]}),
        ("[T:1-100]", TU, {"tcp": [4, 21, 22, 80]}),
        ("T:[1-100]", TU, {"tcp": [4, 21, 22, 80]}),
        ("[http]", TCP, {"tcp": [80, 8008]}),
        ("1-30,[1-100]", TCP, {"tcp": [*range(1, 31), 80]}),
        ("*", TCP, {"tcp": [4, 21, 22, 80, 443, 1433, 3306, 8008, 8080]}),
        ("P:6,17", {"ip"}, {"ip": [6, 17]}),
        ("-", {"ip"}, {"ip": list(range(256))}),
        ("-10", {"ip"}, {"ip": list(range(11))}),
        ("250-", {"ip"}, {"ip": [250, 251, 252, 253, 254, 255]}),
        ("P:6,T:80", {"ip"}, {"ip": [6]}),
    ],
)
def test_forms(spec: str, protocols: Iterable[str], expected: dict[str, list[int]]) -> None:
    got = pl(spec, protocols) if expected else parse_exclude_ports(spec, protocols=protocols)
    for proto in ALL_PROTOCOLS:
        assert list(got.ports(proto)) == expected.get(proto, []), proto


def test_full_ranges() -> None:
    everything = pl("-", TU)
    assert everything.tcp == tuple(range(1, 65536))
    assert everything.udp == everything.tcp
    assert everything.count == 2 * 65535
    assert (("tcp", 0)) not in everything
    with_zero = pl("0-")
    assert with_zero.tcp == tuple(range(65536))


@pytest.mark.parametrize(
    ("spec", "position", "fragment"),
    [
        ("", None, "empty"),
        ("   ", None, "empty"),
        ("HTTP", 0, "unexpected 'H'"),
        ("Http*", 0, "unexpected 'H'"),
        ("22,,80", 3, "unexpected ','"),
        (",22", 0, "unexpected ','"),
        ("22,,", 3, "unexpected ','"),
        ("T:", 0, "no ports after"),
        ("80,T:", 3, "no ports after"),
        ("T:,80", 0, "no ports after"),
        ("T:U:53", 0, "no ports after"),
        ("[T:]", 1, "no ports after"),
        ("100-1", 0, "backwards"),
        ("-0", 0, "backwards"),
        ("[100-1]", 1, "backwards"),
        ("65536", 0, "out of range"),
        ("1-65536", 2, "out of range"),
        ("99999999999999999999999", 0, "out of range"),
        ("t:80", 0, "qualifier 't:'"),
        ("X:80", 0, "qualifier 'X:'"),
        ("1-2-3", 3, "unexpected '-'"),
        ("22-22-", 5, "unexpected '-'"),
        ("--", 1, "unexpected '-'"),
        ("0x16", 1, "unexpected 'x'"),
        ("+22", 0, "unexpected '+'"),
        ("22 80", 3, "expected ','"),
        ("T :22", 0, "unexpected 'T'"),
        ("1 - 5", 2, "expected ','"),
        ("[[22]]", 1, "nested"),
        ("[22,[23]]", 4, "nested"),
        ("80]", 2, "without a matching"),
        ("[80", 0, "never closed"),
        ("[]", 1, "unexpected ']'"),
        ("nosuch", 0, "no service matches 'nosuch'"),
        ("22,ssh-1", 3, "no service matches 'ssh-1'"),
        ("ssh!", 3, "unexpected '!'"),
        ("[0]", None, "selects no ports"),
        ("S:53", None, "selects no ports"),
        ("22\n", 2, "unexpected"),
    ],
)
def test_errors(spec: str, position: int | None, fragment: str) -> None:
    with pytest.raises(PortSpecError) as info:
        pl(spec, TU)
    assert info.value.position == position
    assert info.value.spec == spec
    assert fragment in str(info.value)
    assert repr(spec) in str(info.value)


@pytest.mark.parametrize(
    ("spec", "protocols", "position", "fragment"),
    [
        ("300", {"ip"}, 0, "0-255"),
        ("P:1-300", {"tcp"}, 4, "0-255"),  # checked even when ip is not scanned
        ("1-1000", {"tcp", "ip"}, 2, "0-255"),
        ("tcp", {"ip"}, 0, "cannot select IP"),
        ("P:http", {"ip", "tcp"}, 2, "cannot select IP"),
        ("[1-10]", {"ip"}, 1, "cannot select IP"),
    ],
)
def test_ip_protocol_errors(spec: str, protocols: set[str], position: int, fragment: str) -> None:
    with pytest.raises(PortSpecError) as info:
        pl(spec, protocols)
    assert info.value.position == position
    assert fragment in str(info.value)


def test_bad_protocols_argument() -> None:
    with pytest.raises(PortSpecError, match="unknown protocol"):
        pl("22", {"icmp"})
    with pytest.raises(PortSpecError, match="no protocols"):
        pl("22", set())


# --- PortList ---------------------------------------------------------------------------


def test_portlist_normalises_and_validates() -> None:
    p = PortList(tcp=[443, 80, 80], udp=(53,))
    assert p.tcp == (80, 443)
    assert p.count == len(p) == 3
    assert list(p) == [("tcp", 80), ("tcp", 443), ("udp", 53)]
    assert ("tcp", 80) in p
    assert ("udp", 80) not in p
    assert ("tcp", 81) not in p
    assert "tcp" not in p
    assert ("tcp", "80") not in p
    assert (["tcp"], 80) not in p
    assert p.protocols == frozenset({"tcp", "udp"})
    assert p == PortList(tcp=(80, 443), udp=[53])
    assert hash(p) == hash(PortList(tcp=(443, 80), udp=[53]))
    assert not PortList()
    with pytest.raises(PortSpecError):
        PortList(tcp=[65536])
    with pytest.raises(PortSpecError):
        PortList(ip=[256])
    with pytest.raises(PortSpecError):
        PortList(udp=[-1])
    with pytest.raises(TypeError):
        PortList(tcp=["80"])  # type: ignore[list-item]


def test_to_nmap_spec_compacts() -> None:
    p = PortList(tcp=[*range(1, 1025), 8080], udp=[53, 54, 161], ip=[6])
    assert p.to_nmap_spec() == "T:1-1024,8080,U:53-54,161,P:6"
    assert PortList().to_nmap_spec() == ""
    assert p.ranges("udp") == [(53, 54), (161, 161)]
    assert "T:1-1024" in repr(p)


def test_set_operations() -> None:
    a = PortList(tcp=[1, 2, 3], udp=[53])
    b = PortList(tcp=[2], sctp=[9])
    assert a | b == PortList(tcp=[1, 2, 3], udp=[53], sctp=[9])
    assert a - b == PortList(tcp=[1, 3], udp=[53])
    assert a.restrict({"udp"}) == PortList(udp=[53])


# --- property tests ---------------------------------------------------------------------

_port = st.integers(0, 65535)


@st.composite
def _item(draw: st.DrawFn) -> tuple[str, int | None, int | None]:
    kind = draw(st.sampled_from(["single", "range", "open-low", "open-high", "all"]))
    if kind == "single":
        p = draw(_port)
        return str(p), p, p
    if kind == "range":
        a, b = sorted((draw(_port), draw(_port)))
        return f"{a}-{b}", a, b
    if kind == "open-low":
        b = draw(st.integers(1, 65535))
        return f"-{b}", None, b
    if kind == "open-high":
        a = draw(_port)
        return f"{a}-", a, None
    return "-", None, None


Intervals = dict[str, list[tuple[int, int]]]


def merge(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


@st.composite
def valid_specs(draw: st.DrawFn) -> tuple[str, frozenset[str], Intervals]:
    """A spec of ports/ranges with qualifiers, the scanned protocols, and the intended sets
    (as intervals, so that ``-`` stays cheap)."""
    protocols = frozenset(
        draw(st.sets(st.sampled_from(["tcp", "udp", "sctp"]), min_size=1, max_size=3))
    )
    expected: Intervals = {p: [] for p in ALL_PROTOCOLS}
    parts: list[str] = []
    current: str | None = None
    for _ in range(draw(st.integers(1, 8))):
        if draw(st.booleans()) and draw(st.booleans()):
            current = draw(st.sampled_from(["tcp", "udp", "sctp"]))
            prefix = LETTER[current] + ":" + draw(st.sampled_from(["", " "]))
        else:
            prefix = ""
        text, lo, hi = draw(_item())
        for proto in (current,) if current else tuple(protocols):
            if proto in protocols:
                expected[proto].append((1 if lo is None else lo, 65535 if hi is None else hi))
        parts.append(draw(st.sampled_from(["", " "])) + prefix + text)
    spec = ",".join(parts) + draw(st.sampled_from(["", ",", " "]))
    return spec, protocols, expected


@settings(max_examples=60, deadline=None)
@given(valid_specs())
@example(("0-,T:5", TU, {"tcp": [(0, 65535)], "udp": [(0, 65535)]}))
@example(("T:1-3,2,U:9-", TU, {"tcp": [(1, 3), (2, 2)], "udp": [(9, 65535)]}))
def test_valid_specs_parse_to_intended_sets(case: tuple[str, frozenset[str], Intervals]) -> None:
    spec, protocols, expected = case
    if not any(expected.values()):
        with pytest.raises(PortSpecError, match="selects no ports"):
            parse_ports(spec, protocols=protocols, services=T)
        return
    got = parse_ports(spec, protocols=protocols, services=T)
    for proto in ALL_PROTOCOLS:
        want = merge(expected.get(proto, []))
        ports = got.ports(proto)
        assert len(ports) == sum(hi - lo + 1 for lo, hi in want), proto
        for lo, hi in want:
            assert (proto, lo) in got
            assert (proto, hi) in got
            assert (proto, lo - 1) not in got
            assert (proto, hi + 1) not in got
    # round trip through the compact spec
    again = parse_ports(got.to_nmap_spec(), protocols=protocols, services=T)
    assert again == got


@given(
    st.builds(
        PortList,
        tcp=st.lists(_port, max_size=30),
        udp=st.lists(_port, max_size=30),
        sctp=st.lists(_port, max_size=5),
        ip=st.lists(st.integers(0, 255), max_size=5),
    )
)
def test_to_nmap_spec_round_trips(ports: PortList) -> None:
    spec = ports.to_nmap_spec()
    if not ports:
        assert spec == ""
        return
    assert parse_ports(spec, protocols=ALL_PROTOCOLS, services=T) == ports
    assert len(spec) <= 7 * ports.count + 2 * 4


_junk = st.text(alphabet="0123456789-,:[]TUSPXt *?abhpsl_.\t!é", max_size=25)


@given(st.one_of(_junk, st.text(max_size=25)), st.sets(st.sampled_from(ALL_PROTOCOLS), min_size=1))
def test_junk_only_raises_port_spec_error(spec: str, protocols: set[str]) -> None:
    try:
        result = parse_ports(spec, protocols=protocols, services=T)
    except PortSpecError as exc:
        error = exc
    else:
        assert result.count > 0
        assert result.protocols <= protocols
        return
    assert error.spec == spec
    assert error.position is None or 0 <= error.position <= len(spec)


# --- top ports, -F, defaults, exclusions ------------------------------------------------


def test_top_ports_synthetic() -> None:
    assert top_ports(3, TCP, T).tcp == (22, 80, 443)
    assert top_ports(3, TU, T) == PortList(tcp=[22, 80, 443], udp=[53, 161, 1434])
    assert top_ports(100, {"sctp"}, T).sctp == (80, 2905)
    assert top_ports(2, TCP, T, exclude=PortList(tcp=[80])).tcp == (22, 443)
    assert top_ports(2, TCP, T, within=PortList(tcp=range(1, 100))).tcp == (22, 80)
    assert top_ports(5, {"ip"}, T).ip == tuple(range(256))
    for bad in (0, -1, True):
        with pytest.raises(PortSpecError, match="1 or greater"):
            top_ports(bad, TCP, T)


def test_fast_and_default_use_the_ranking() -> None:
    emb = embedded_services()
    assert fast_ports(TCP, emb).tcp == tuple(sorted(emb.top("tcp", 100)))
    d = default_ports(TU, emb)
    assert len(d.tcp) == 1000
    assert d.udp == tuple(sorted(emb.top("udp", 1000)))
    assert default_ports({"ip"}, emb).ip == tuple(range(256))


def test_exclude() -> None:
    base = pl("1-10", TU)
    assert exclude(base, "5,U:1-9", services=T) == PortList(
        tcp=[1, 2, 3, 4, 6, 7, 8, 9, 10], udp=[10]
    )
    assert exclude(base, PortList(tcp=[1])) == PortList(tcp=range(2, 11), udp=range(1, 11))
    assert not exclude(pl("22"), "22", services=T)
    assert not exclude(pl("22"), "-", services=T)
    assert exclude(pl("22"), "[0]", services=T) == pl("22")  # an exclusion may select nothing
    with pytest.raises(PortSpecError, match="no service matches"):
        exclude(base, "nosuch", services=T)


def test_resolve_ports_combinations() -> None:
    assert resolve_ports(protocols=TCP, services=T).tcp == tuple(sorted(T.top("tcp")))
    assert resolve_ports(fast=True, protocols=TCP, services=T) == top_ports(100, TCP, T)
    assert resolve_ports(top=2, fast=True, protocols=TCP, services=T).tcp == (80, 443)
    assert resolve_ports("1-1000", top=3, protocols=TCP, services=T).tcp == (22, 80, 443)
    got = resolve_ports("1-1000", top=3, exclude_spec="80", protocols=TCP, services=T)
    assert got.tcp == (21, 22, 443)
    assert resolve_ports(top=2, exclude_spec="80", protocols=TCP, services=T).tcp == (22, 443)
    got = resolve_ports("1-10", exclude_spec="5", protocols=TCP, services=T)
    assert got.tcp == (1, 2, 3, 4, 6, 7, 8, 9, 10)
    with pytest.raises(PortSpecError, match="-F cannot"):
        resolve_ports("22", fast=True, services=T)
    with pytest.raises(PortSpecError, match="no ports left"):
        resolve_ports("22", exclude_spec="22", services=T)
    with pytest.raises(PortSpecError, match="no ports left"):
        resolve_ports("36", top=10, services=T)


def test_embedded_table_names_work_in_specs() -> None:
    emb = embedded_services()
    assert parse_ports("ssh", services=emb).tcp == (22,)
    assert 443 in parse_ports("http*", services=emb).tcp
    assert parse_ports("domain", protocols=TU, services=emb) == PortList(tcp=[53], udp=[53])
    brackets = parse_ports("[1-1024]", services=emb)
    assert set(brackets.tcp) == set(emb.named("tcp", 1, 1024))
    assert {22, 80, 443} <= set(brackets.tcp)


# --- against nmap -----------------------------------------------------------------------

NMAP = shutil.which("nmap")
NMAP_SERVICES = find_nmap_services()
ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_nmap = pytest.mark.skipif(
    NMAP is None or NMAP_SERVICES is None, reason="nmap and its nmap-services are not installed"
)


def expand_nmap_list(text: str) -> list[int]:
    ports: list[int] = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        ports.extend(range(int(low), int(high or low) + 1))
    return ports


def nmap_ports(args: list[str], protocols: frozenset[str]) -> dict[str, list[int]] | None:
    """The ports nmap would scan, from <scaninfo>; no target, so nothing is sent.

    ``None`` when nmap refuses the options.
    """
    assert NMAP is not None
    assert NMAP_SERVICES is not None
    flags = {"tcp": "-sS" if ROOT else "-sT", "udp": "-sU", "sctp": "-sY"}
    cmd = [NMAP, "-oX", "-", "-n", "-Pn", "--datadir", str(NMAP_SERVICES.parent)]
    cmd += [flags[p] for p in sorted(protocols)] + args
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False).stdout
    if 'exit="error"' in out:
        return None
    found = re.findall(r'protocol="(\w+)" numservices="\d+" services="([^"]*)"', out)
    return {proto: expand_nmap_list(text) for proto, text in found}


def nmap_protocol_sets() -> list[frozenset[str]]:
    return [TUS] if ROOT else [TCP]


@functools.cache
def nmap_table() -> ServicesTable:
    assert NMAP_SERVICES is not None
    return services_from_nmap(NMAP_SERVICES)


NMAP_SPECS = [
    "22",
    "1-1024",
    "-",
    "-100",
    "60000-",
    "0-",
    "0-5,65535",
    "T:80,443,U:53,S:9",
    "22,T:80,U:53",
    "http",
    "http*",
    "*sql*",
    "h*p,domain",
    "[1-1024]",
    "[-]",
    "ftp,[20-22],8000-8010",
    "U:[1-200],T:1-3",
    "22,",
]


@pytest.mark.nmap
@needs_nmap
@pytest.mark.parametrize("spec", NMAP_SPECS)
def test_parse_matches_nmap(spec: str) -> None:
    for protocols in nmap_protocol_sets():
        theirs = nmap_ports(["-p", spec], protocols)
        assert theirs is not None, spec
        ours = parse_ports(spec, protocols=protocols, services=nmap_table())
        for proto in protocols:
            assert list(ours.ports(proto)) == theirs.get(proto, []), (spec, proto)


@pytest.mark.nmap
@needs_nmap
@pytest.mark.parametrize(
    "spec", ["100-1", "65536", "-0", "22,,80", ",22", "1-2-3", "HTTP", "nosuch", "[0]", "80]"]
)
def test_errors_match_nmap(spec: str) -> None:
    assert nmap_ports(["-p", spec], TCP) is None
    with pytest.raises(PortSpecError):
        parse_ports(spec, services=nmap_table())


@pytest.mark.nmap
@needs_nmap
@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        ([], {}),
        (["-F"], {"fast": True}),
        (["--top-ports", "10"], {"top": 10}),
        (["--top-ports", "1500"], {"top": 1500}),
        (
            ["--exclude-ports", "80,T:443", "--top-ports", "10"],
            {"top": 10, "exclude_spec": "80,T:443"},
        ),
        (
            ["-p", "1-1000", "--top-ports", "10", "--exclude-ports", "80"],
            {"spec": "1-1000", "top": 10, "exclude_spec": "80"},
        ),
        (
            ["-p", "1-100", "--exclude-ports", "ssh,[1-20]"],
            {"spec": "1-100", "exclude_spec": "ssh,[1-20]"},
        ),
    ],
)
def test_top_fast_exclude_match_nmap(args: list[str], kwargs: dict[str, object]) -> None:
    for protocols in nmap_protocol_sets():
        theirs = nmap_ports(args, protocols)
        assert theirs is not None, args
        ours = resolve_ports(protocols=protocols, services=nmap_table(), **kwargs)  # type: ignore[arg-type]
        for proto in protocols:
            assert list(ours.ports(proto)) == theirs.get(proto, []), (args, proto)


@pytest.mark.nmap
@needs_nmap
@pytest.mark.skipif(not ROOT, reason="nmap -sO needs root")
@pytest.mark.parametrize("spec", ["6,17", "-", "-10", "200-", "P:1-3,T:80", "0"])
def test_ip_protocols_match_nmap(spec: str) -> None:
    assert NMAP is not None
    cmd = [NMAP, "-oX", "-", "-n", "-Pn", "-sO", "-p", spec]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False).stdout
    m = re.search(r'protocol="ip" numservices="\d+" services="([^"]*)"', out)
    assert m is not None, out
    assert list(parse_ports(spec, protocols={"ip"}).ip) == expand_nmap_list(m.group(1))
