"""JSON lines: one object per line, host lines as host_to_dict, and reading them back."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._models import (
    HostResult,
    HostStatus,
    PortState,
    ReasonKind,
    ScanReport,
    Service,
    host_to_dict,
)
from pyscan.errors import ReportFormatError
from pyscan.output import JsonLinesWriter, report_from_jsonl, report_to_jsonl

from .reports import (
    T0,
    ip,
    ipv6_report,
    list_report,
    mixed_report,
    opts,
    ping_report,
    port,
    stats,
    syn_report,
    version_report,
)


def test_lines() -> None:
    report = mixed_report()
    lines = [json.loads(line) for line in report_to_jsonl(report, opts()).splitlines()]
    assert lines[0] == {
        "type": "scan",
        "schema": 1,
        "version": "0.1.0",
        "args": "pyscan -sS -sU -p T:1-100,U:53,100-199 198.18.0.20-21",
        "scan_types": ["syn", "udp"],
        "ports": {"tcp": "1-100", "udp": "53,100-199"},
        "start": T0,
    }
    # The down host is left out without verbose, as in the other formats.
    assert lines[1] == {"type": "host", **host_to_dict(report.hosts[0])}
    assert lines[2] == {
        "type": "stats",
        "stats": {
            "start": T0,
            "end": T0 + 12.5,
            "hosts_total": 2,
            "hosts_up": 1,
            "hosts_down": 1,
            "packets_sent": 0,
            "packets_received": 0,
        },
        "exit": "success",
        "errormsg": None,
    }
    assert len(lines) == 3


@pytest.mark.parametrize(
    "make", [syn_report, mixed_report, version_report, ping_report, list_report, ipv6_report]
)
def test_round_trip(make: Callable[[], ScanReport]) -> None:
    report = make()
    assert report_from_jsonl(report_to_jsonl(report, opts(verbose=1))) == report


def test_open_only_keeps_possibly_open_ports() -> None:
    text = report_to_jsonl(mixed_report(), opts(open_only=True))
    back = report_from_jsonl(text)
    assert {(p.protocol, p.port) for p in back.hosts[0].ports} == {
        ("tcp", 1),
        ("udp", 53),
        *(("udp", n) for n in range(160, 200)),
    }


def test_partial_file_and_error_footer() -> None:
    report = syn_report()
    buf = io.StringIO()
    writer = JsonLinesWriter(buf, opts())
    writer.start(attrs.evolve(report, hosts=()))
    writer.host(report.hosts[0])
    cut = report_from_jsonl(buf.getvalue())
    assert cut.hosts == report.hosts
    assert cut.stats.start == T0
    assert cut.stats.hosts_total == 0
    writer.finish(attrs.evolve(report.stats, hosts_total=0), error="interrupted")
    last = json.loads(buf.getvalue().splitlines()[-1])
    assert (last["exit"], last["errormsg"]) == ("error", "interrupted")
    assert last["stats"]["hosts_total"] == 1  # counted from the hosts written


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("not json\n", "line 1"),
        ('{"type": "scan", "schema": 1}\n[1]\n', "line 2"),
        ('{"type": "scan", "schema": 1}\n{"type": "weird"}\n', "line 2"),
        ('{"type": "host", "address": "198.18.0.1"}\n', "no 'scan' line"),
        ('{"type": "scan", "schema": 1}\n{"type": "scan", "schema": 1}\n', "line 2"),
        ('{"type": "scan", "schema": 99}\n', "schema"),
        ('{"type": "scan", "schema": 1}\n{"type": "host", "address": "nope"}\n', "malformed"),
        ('{"type": "scan", "schema": 1}\n{"type": "stats", "stats": 3}\n', "line 2"),
    ],
)
def test_malformed_input(text: str, where: str) -> None:
    with pytest.raises(ReportFormatError, match=where):
        report_from_jsonl(text)


@given(st.text(), st.text())
def test_hostile_strings_stay_on_one_line_and_round_trip(product: str, banner: str) -> None:
    a = ip("198.18.0.80")
    svc = Service("x", product=product, fingerprint=banner, method="probed", conf=10)
    host = HostResult(
        a, HostStatus.UP, ports=(port(a, 80, PortState.OPEN, ReasonKind.SYN_ACK, service=svc),)
    )
    report = ScanReport(hosts=(host,), scan_types=("syn",), stats=stats(1, 1, 1), version="0.1.0")
    text = report_to_jsonl(report, opts())
    assert text.isascii()
    assert len(text.splitlines()) == 3
    assert report_from_jsonl(text) == report
