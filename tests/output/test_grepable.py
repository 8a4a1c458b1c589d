"""Grepable output: nmap's -oG layout, and lines that parse back to the right ports."""

from __future__ import annotations

import io

import attrs
from hypothesis import given, settings
from hypothesis import strategies as st

from pyscan._models import (
    HostResult,
    HostStatus,
    PortResult,
    PortState,
    Reason,
    ReasonKind,
    ScanReport,
    Service,
)
from pyscan.output import GrepableWriter, report_to_grepable

from .reports import (
    ip,
    list_report,
    mixed_report,
    opts,
    ping_report,
    port,
    stats,
    syn_report,
    version_report,
)

HEAD = "# pyscan 0.1.0 scan initiated Sat Nov 21 20:30:00 2026 as: "


def test_syn_scan_with_one_ignored_state() -> None:
    assert report_to_grepable(syn_report(), opts()) == (
        HEAD + "pyscan -sS --reason -p1-1000 198.18.0.10\n"
        "Host: 198.18.0.10 (web.lab)\tStatus: Up\n"
        "Host: 198.18.0.10 (web.lab)\tPorts: 22/open/tcp//ssh///, 80/open/tcp//http///, "
        "135/filtered/tcp//msrpc///, 139/filtered/tcp//netbios-ssn///, "
        "445/filtered/tcp//microsoft-ds///\tIgnored State: closed (995)\n"
        "# pyscan done at Sat Nov 21 20:30:02 2026 -- 1 IP address (1 host up) "
        "scanned in 2.35 seconds\n"
    )


def test_verbose_header_down_host_and_one_ignored_state() -> None:
    # With -v the limit is 50 ports: 40 open|filtered are listed, 158 closed are not.
    assert report_to_grepable(mixed_report(), opts(verbose=1)) == (
        HEAD + "pyscan -sS -sU -p T:1-100,U:53,100-199 198.18.0.20-21\n"
        "# Ports scanned: TCP(100;1-100) UDP(101;53,100-199) SCTP(0;) PROTOCOLS(0;)\n"
        "Host: 198.18.0.20 ()\tStatus: Up\n"
        "Host: 198.18.0.20 ()\tPorts: 1/open/tcp/////, 53/open/udp//domain///, "
        "123/filtered/udp//ntp///, "
        + ", ".join(f"{n}/open|filtered/udp/////" for n in range(160, 200))
        + "\tIgnored State: closed (158)\n"
        "Host: 198.18.0.21 ()\tStatus: Down\n"
        "# pyscan done at Sat Nov 21 20:30:12 2026 -- 2 IP addresses (1 host up) "
        "scanned in 12.50 seconds\n"
    )


def test_two_ignored_states_have_no_ignored_field() -> None:
    plain = report_to_grepable(mixed_report(), opts())
    assert "Ignored State" not in plain
    assert "160/open" not in plain
    assert "Status: Down" not in plain


def test_versions_and_slashes() -> None:
    lines = report_to_grepable(version_report(), opts()).splitlines()
    assert lines[2] == (
        "Host: 198.18.0.30 ()\tPorts: "
        "22/open/tcp//ssh//OpenSSH 8.9p1 Ubuntu 3ubuntu0.1 (Ubuntu Linux; protocol 2.0)/, "
        "25/closed/tcp//smtp///, 80/open/tcp//http//nginx 1.18.0 (Ubuntu)/, "
        "443/open/tcp//https?///, 8443/open/tcp//ssl|http//Jetty 9.4/"
    )


def test_all_ignored_and_ping_and_list() -> None:
    a = ip("198.18.0.11")
    result = [port(a, n, PortState.CLOSED, ReasonKind.RESET) for n in range(1, 31)]
    host = HostResult(a, HostStatus.UP, ports=tuple(result))
    text = report_to_grepable(ScanReport(hosts=(host,), scan_types=("connect",)), opts())
    assert "Host: 198.18.0.11 ()\tPorts: \tIgnored State: closed (30)\n" in text
    assert report_to_grepable(ping_report(), opts()).splitlines()[1:3] == [
        "Host: 198.18.0.1 ()\tStatus: Up",
        "Host: 198.18.0.3 (printer.lab)\tStatus: Up",
    ]
    assert report_to_grepable(list_report(), opts()).splitlines()[1:3] == [
        "Host: 198.18.0.1 ()\tStatus: Unknown",
        "Host: 198.18.0.2 ()\tStatus: Unknown",
    ]


def test_abort_line() -> None:
    buf = io.StringIO()
    writer = GrepableWriter(buf, opts())
    writer.start(attrs.evolve(syn_report(), hosts=()))
    # Stats without host counts: the writer counts the hosts it was given (none here).
    writer.finish(attrs.evolve(syn_report().stats, hosts_total=0), error="interrupted")
    assert buf.getvalue().splitlines()[-1] == (
        "# pyscan aborted at Sat Nov 21 20:30:02 2026 -- interrupted -- partial results: "
        "0 IP addresses (0 hosts up) scanned in 2.35 seconds"
    )


# -- parsing back -------------------------------------------------------------------------------


def parse_ports_line(line: str) -> tuple[list[tuple[int, str, str, str, str]], str | None]:
    """(port, state, protocol, service, version) entries and the Ignored State field."""
    fields = line.split("\t")
    assert fields[0].startswith("Host: ")
    assert fields[1].startswith("Ports: ")
    body = fields[1][len("Ports: ") :]
    entries = []
    for item in body.split(", ") if body else []:
        parts = item.split("/")
        assert len(parts) == 8, item
        assert parts[3] == parts[5] == parts[7] == ""
        entries.append((int(parts[0]), parts[1], parts[2], parts[4], parts[6]))
    ignored = None
    if len(fields) > 2:
        assert fields[2].startswith("Ignored State: ")
        ignored = fields[2][len("Ignored State: ") :]
    assert len(fields) <= 3
    return entries, ignored


# Printable text without commas (nmap's format separates port entries with ", ").
free_text = st.text(
    st.characters(categories=["L", "N", "P", "S"], exclude_characters=",") | st.just(" "),
    max_size=12,
)
port_entries = st.dictionaries(
    st.tuples(st.sampled_from(["tcp", "udp"]), st.integers(1, 65535)),
    st.tuples(st.sampled_from(list(PortState)), st.none() | free_text, free_text),
    max_size=80,
)


@settings(max_examples=150, deadline=None)
@given(entries=port_entries, verbose=st.integers(0, 2), open_only=st.booleans())
def test_grepable_parses_back(
    entries: dict[tuple[str, int], tuple[PortState, str | None, str]],
    verbose: int,
    open_only: bool,
) -> None:
    a = ip("198.18.0.70")
    result = []
    for (proto, number), (state, product, name) in entries.items():
        svc = Service(name or "svc", product=product, method="probed", conf=10) if product else None
        result.append(
            PortResult(a, proto, number, state, Reason(ReasonKind.NO_RESPONSE), svc)  # type: ignore[arg-type]
        )
    host = HostResult(a, HostStatus.UP, ports=tuple(result))
    report = ScanReport(hosts=(host,), scan_types=("syn", "udp"), stats=stats(1, 1, 1))
    text = report_to_grepable(report, opts(verbose=verbose, open_only=open_only))
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    maybe_open = {PortState.OPEN, PortState.OPEN_FILTERED, PortState.UNFILTERED}
    if open_only and not any(p.state in maybe_open for p in result):
        assert lines == []
        return
    if not result:
        assert lines == ["Host: 198.18.0.70 ()\tStatus: Up"]
        return
    assert lines[0] == "Host: 198.18.0.70 ()\tStatus: Up"
    listed, ignored = parse_ports_line(lines[1])
    by_key: dict[tuple[int, str], PortResult] = {(p.port, p.protocol): p for p in result}
    listed_keys = [(n, proto) for n, _, proto, _, _ in listed]
    assert len(set(listed_keys)) == len(listed_keys)
    for n, state_text, proto, _svc, version in listed:
        original = by_key[(n, proto)]
        assert state_text == str(original.state)
        expected_version = original.service.version_line() if original.service else ""
        assert version == expected_version.replace("/", "|")
    # Every open port is listed; nothing unlisted is open.
    unlisted = [p for p in result if (p.port, p.protocol) not in set(listed_keys)]
    assert all(p.state is not PortState.OPEN for p in unlisted)
    # Listed entries come in nmap's order: tcp before udp, then by port.
    order = {"tcp": 0, "udp": 1}
    assert listed_keys == sorted(listed_keys, key=lambda k: (order[k[1]], k[0]))
    unlisted_states = {p.state for p in unlisted}
    if ignored is not None:
        state_text, _, count = ignored.rpartition(" (")
        assert {str(s) for s in unlisted_states} == {state_text}
        assert int(count.rstrip(")")) == len(unlisted)
    else:
        assert len(unlisted_states) != 1
    if not open_only:
        limit = 25 * (verbose + 1) if verbose else 25
        for s in unlisted_states:
            assert sum(1 for p in result if p.state is s) > limit
