"""The services table: nmap-services parser, pyscan's embedded table, loader selection."""

from __future__ import annotations

import os
import random
import re
import shutil
import subprocess
import tempfile
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._specs import services as svc
from pyscan._specs.services import (
    ServiceEntry,
    ServicesFileError,
    ServicesTable,
    default_services,
    embedded_services,
    find_nmap_services,
    parse_embedded_services,
    parse_nmap_services,
    services_from_nmap,
)
from pyscan.errors import DataFileError

NMAP = shutil.which("nmap")
NMAP_SERVICES = find_nmap_services()

SAMPLE = """\
# comment line
http\t80/tcp\t0.484143\t# World Wide Web HTTP
http\t80/udp\t0.035767
ssh\t22/tcp\t0.182286\t# Secure Shell Login
https\t443/tcp\t0.208669
http-alt\t8080/tcp\t0.042052
domain\t53/udp\t0.213496
unknown\t4/tcp\t0.000477

ms-sql-s\t1433/tcp\t0.007929
tie-b\t9001/tcp\t0.042052
tie-a\t9000/tcp\t0.042052
echo\t7/sctp\t0.000000
"""


def sample_table() -> ServicesTable:
    return ServicesTable.from_entries(parse_nmap_services(SAMPLE, "sample"), source="sample")


# --- parser ----------------------------------------------------------------------------


def test_parse_sample_fields() -> None:
    entries = parse_nmap_services(SAMPLE, "sample")
    assert len(entries) == 11
    assert entries[0] == ServiceEntry("http", 80, "tcp", 0.484143)
    assert entries[-1] == ServiceEntry("echo", 7, "sctp", 0.0)


def test_table_lookups() -> None:
    t = sample_table()
    assert t.name(80, "tcp") == "http"
    assert t.name(80, "udp") == "http"
    assert t.name(81, "tcp") is None
    assert t.name(53, "tcp") is None
    assert t.ports("http", "tcp") == (80,)
    assert t.ports("http", "sctp") == ()
    assert t.match("http*", "tcp") == (80, 443, 8080)
    assert t.match("*s*", "tcp") == (22, 443, 1433)
    assert t.match("ht?p", "udp") == (80,)
    assert t.match("tie-?", "tcp") == (9000, 9001)
    assert t.named("tcp", 1, 100) == (4, 22, 80)
    assert t.named("sctp") == (7,)
    assert len(t) == 11


def test_top_order_by_frequency_then_port() -> None:
    t = sample_table()
    # 8080, 9001, 9000 share a frequency: file order breaks the tie, as in nmap
    assert t.top("tcp") == (80, 443, 22, 8080, 9001, 9000, 1433, 4)
    assert t.top("tcp", 2) == (80, 443)
    assert t.top("udp") == (53, 80)
    assert t.top("tcp", 0) == ()


def test_first_duplicate_wins() -> None:
    text = "a\t1/tcp\t0.5\nb\t1/tcp\t0.9\n"
    t = ServicesTable.from_entries(parse_nmap_services(text), source="x")
    assert t.name(1, "tcp") == "a"
    assert t.top("tcp") == (1,)


@pytest.mark.parametrize(
    ("text", "line", "fragment"),
    [
        ("ok\t1/tcp\t0.1\nbad\t2/tcp\n", 2, "fields"),
        ("bad\t2/tcp\t0.1\textra\n", 1, "fields"),
        ("bad\t70000/tcp\t0.1\n", 1, "out of range"),
        ("bad\t123456/tcp\t0.1\n", 1, "port/protocol"),
        ("bad\t2/ddp\t0.1\n", 1, "unknown protocol"),
        ("bad\t2-tcp\t0.1\n", 1, "port/protocol"),
        ("bad\t/tcp\t0.1\n", 1, "port/protocol"),
        ("bad\t2/tcp\tnan\n", 1, "frequency"),
        ("bad\t2/tcp\t-0.1\n", 1, "frequency"),
        ("bad\t2/tcp\t1.5\n", 1, "0..1"),
        ("bad\t2/tcp\t1e400\n", 1, "0..1"),
        ("\n\n# c\nbad\n", 4, "fields"),
    ],
)
def test_malformed_lines(text: str, line: int, fragment: str) -> None:
    with pytest.raises(ServicesFileError) as info:
        parse_nmap_services(text, "f.txt")
    assert info.value.line == line
    assert str(info.value).startswith(f"f.txt:{line}: ")
    assert fragment in str(info.value)
    assert isinstance(info.value, DataFileError)


def test_bad_utf8_reports_line() -> None:
    with pytest.raises(ServicesFileError, match=r"^f:3: "):
        parse_nmap_services(b"a\t1/tcp\t0.1\n\nb\xff\t2/tcp\t0.1\n", "f")


def test_missing_file() -> None:
    with pytest.raises(DataFileError, match="cannot read"):
        services_from_nmap("/nonexistent/nmap-services")


_names = st.from_regex(r"[a-z][a-z0-9.:_-]{0,12}", fullmatch=True)
_rows = st.lists(
    st.tuples(
        _names,
        st.integers(0, 65535),
        st.sampled_from(["tcp", "udp", "sctp"]),
        st.integers(0, 10**6),
        st.sampled_from(["", "\t# a comment", "  # x # y"]),
    ),
    max_size=40,
)


@given(_rows, st.sampled_from(["\t", " ", " \t "]))
def test_generated_files_roundtrip(rows: list[tuple[str, int, str, int, str]], sep: str) -> None:
    text = "".join(
        f"{name}{sep}{port}/{proto}{sep}{freq / 10**6:.6f}{comment}\n"
        for name, port, proto, freq, comment in rows
    )
    entries = parse_nmap_services(text, "gen")
    assert [(e.name, e.port, e.protocol) for e in entries] == [r[:3] for r in rows]
    table = ServicesTable.from_entries(entries, source="gen")
    first: dict[tuple[str, int], tuple[str, int]] = {}
    for name, port, proto, freq, _ in rows:
        first.setdefault((proto, port), (name, freq))
    assert len(table) == len(first)
    for proto in ("tcp", "udp", "sctp"):
        order = list(first)
        expected = sorted(
            (p for (pr, p) in first if pr == proto),
            key=lambda p: (-first[(proto, p)][1], order.index((proto, p))),
        )
        assert list(table.top(proto)) == expected
        for port in expected:
            assert table.name(port, proto) == first[(proto, port)][0]


@given(st.text(max_size=80))
def test_junk_only_raises_services_file_error(text: str) -> None:
    try:
        entries = parse_nmap_services(text, "junk")
    except ServicesFileError:
        return
    ServicesTable.from_entries(entries, source="junk")


def _loaded_both_ways(path: Path) -> tuple[object, object]:
    """``services_from_nmap`` (one pass over the file when it is well-formed) and the line by
    line parse, each as a table or the error it raised."""
    results: list[object] = []
    for load in (
        lambda: services_from_nmap(path),
        lambda: ServicesTable.from_entries(
            parse_nmap_services(path.read_bytes(), str(path)), source=str(path)
        ),
    ):
        try:
            table = load()
        except ServicesFileError as exc:
            results.append(str(exc))
        else:
            results.append(
                (
                    table.source,
                    len(table),
                    list(table),
                    [table.top(p) for p in ("tcp", "udp", "sctp")],
                    [table.named(p) for p in ("tcp", "udp", "sctp")],
                    [table.entry(port) for port in range(70)],
                )
            )
    return results[0], results[1]


@given(
    _rows,
    st.sampled_from(["\t", " ", " \t "]),
    st.lists(
        st.sampled_from(
            ["", "# c", "   ", "bad\t1/tcp", "x\t1/tcp\t1.5", "x 2/tcp 0.1\r", "x\t1/ddp\t0"]
        ),
        max_size=3,
    ),
)
def test_loading_a_file_in_one_pass_equals_parsing_it_line_by_line(
    rows: list[tuple[str, int, str, int, str]], sep: str, extra: list[str]
) -> None:
    lines = [
        f"{name}{sep}{port}/{proto}{sep}{freq / 10**6:.6f}{comment}"
        for name, port, proto, freq, comment in rows
    ]
    for i, line in enumerate(extra):  # blank, comment and malformed lines in between
        lines.insert((i * 7) % (len(lines) + 1), line)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nmap-services"
        path.write_text("\n".join(lines) + "\n")
        fast, slow = _loaded_both_ways(path)
    assert fast == slow


def test_a_table_works_out_its_orders_only_when_asked() -> None:
    table = ServicesTable.from_entries(parse_nmap_services(SAMPLE, "sample"), source="sample")
    assert table.name(22) is not None
    assert table._lazy == {}  # naming ports needs no ranking
    assert table.top("tcp")
    assert "ranks" in table._lazy


# --- embedded table ----------------------------------------------------------------------


def test_embedded_table_is_sane() -> None:
    t = embedded_services()
    tcp = t.top("tcp")
    assert len(tcp) >= 1000
    assert len(set(tcp[:1000])) == 1000
    assert len(t.top("udp")) >= 200
    assert len(set(t.top("udp"))) == len(t.top("udp"))
    assert t.top("sctp")
    for port, name in [(22, "ssh"), (80, "http"), (443, "https"), (53, "domain"), (25, "smtp")]:
        assert t.name(port, "tcp") == name
    assert t.name(53, "udp") == "domain"
    assert t.name(123, "udp") == "ntp"
    assert t.name(161, "udp") == "snmp"
    assert set(tcp[:10]) >= {80, 443, 22}
    assert set(t.top("udp", 10)) >= {53, 123, 161}
    assert all(0 < p <= 65535 for p in tcp)


def test_embedded_file_says_it_is_ours() -> None:
    text = resources.files("pyscan").joinpath("data/services.tsv").read_text()
    assert "pyscan's own" in text.splitlines()[0]
    assert "nmap-services" not in text
    # same rows as the loader sees, in order
    assert len(parse_embedded_services(text)) == len(embedded_services())


def test_embedded_parser_rejects_bad_rows() -> None:
    with pytest.raises(ServicesFileError, match=r"^t:2: "):
        parse_embedded_services("a\t1/tcp\nb\t2/tcp\t0.3\n", "t")
    t = ServicesTable.from_entries(parse_embedded_services("b\t9/tcp\na\t1/tcp\n"), source="t")
    assert t.top("tcp") == (9, 1)  # order of rows is the ranking


# --- loader selection -------------------------------------------------------------------


def test_find_nmap_services_prefers_nmapdir(tmp_path: Path) -> None:
    (tmp_path / "nmap-services").write_text(SAMPLE)
    assert find_nmap_services({"NMAPDIR": str(tmp_path)}) == tmp_path / "nmap-services"
    empty = tmp_path / "empty"
    empty.mkdir()
    found = find_nmap_services({"NMAPDIR": str(empty)})
    assert found is None or str(found.parent) in svc.NMAP_DATA_DIRS


def test_default_services_env_switch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "nmap-services").write_text(SAMPLE)
    monkeypatch.setenv("NMAPDIR", str(tmp_path))
    monkeypatch.delenv(svc.NO_NMAP_DATA_ENV, raising=False)
    table = default_services()
    assert table.source == str(tmp_path / "nmap-services")
    assert table.top("tcp", 1) == (80,)
    assert default_services() is table  # cached
    monkeypatch.setenv(svc.NO_NMAP_DATA_ENV, "1")
    assert default_services() is embedded_services()
    monkeypatch.setenv(svc.NO_NMAP_DATA_ENV, "0")
    assert default_services() is table
    assert default_services(use_nmap_data=False) is embedded_services()


def test_default_services_falls_back_without_nmap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(svc, "NMAP_DATA_DIRS", ())
    monkeypatch.delenv("NMAPDIR", raising=False)
    assert default_services(use_nmap_data=True) is embedded_services()


def test_broken_nmap_file_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    (tmp_path / "nmap-services").write_text("http\t80/tcp\n")
    monkeypatch.setenv("NMAPDIR", str(tmp_path))
    with pytest.raises(ServicesFileError, match="nmap-services:1:"):
        default_services(use_nmap_data=True)


# --- against the installed nmap ---------------------------------------------------------


@pytest.mark.nmap
@pytest.mark.skipif(NMAP_SERVICES is None, reason="nmap's nmap-services is not installed")
def test_installed_nmap_services_parses() -> None:
    assert NMAP_SERVICES is not None
    t = services_from_nmap(NMAP_SERVICES)
    assert len(t) > 1000
    assert t.name(22, "tcp") == "ssh"
    assert t.top("tcp", 1) == (80,)


@pytest.mark.nmap
@pytest.mark.skipif(NMAP is None, reason="nmap is not installed")
def test_servicedb_matches_nmap_top_order(tmp_path: Path) -> None:
    """A generated file given to nmap (--servicedb) ranks the same in both."""
    assert NMAP is not None
    rng = random.Random(7)
    # few distinct frequencies, so that many ties need the file-order rule
    lines = [
        f"svc{port}\t{port}/tcp\t{rng.choice([0.5, 0.25, 0.125, 0.0]):.6f}"
        for port in rng.sample(range(1, 65536), 300)
    ]
    path = tmp_path / "services"
    path.write_text("\n".join(lines) + "\n")
    table = services_from_nmap(path)
    env = dict(os.environ)
    for n in (1, 7, 40, 75, 150, 299):
        out = subprocess.run(
            [NMAP, "-oX", "-", "-n", "-Pn", "-sT", "--servicedb", str(path), "--top-ports", str(n)],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        ).stdout
        m = re.search(r'protocol="tcp" numservices="\d+" services="([^"]*)"', out)
        assert m is not None, out
        assert _expand(m.group(1)) == sorted(table.top("tcp", n)), n


def _expand(text: str) -> list[int]:
    ports: list[int] = []
    for part in filter(None, text.split(",")):
        low, _, high = part.partition("-")
        ports.extend(range(int(low), int(high or low) + 1))
    return ports
