"""XML output: exact layout, nmap.dtd validity, python-libnmap and ndiff as consumers."""

from __future__ import annotations

import io
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from libnmap.parser import NmapParser  # type: ignore[import-untyped]

from pyscan._models import (
    Hostname,
    HostResult,
    HostStatus,
    PortState,
    Reason,
    ReasonKind,
    ScanReport,
    Service,
)
from pyscan.output import OutputOptions, XmlWriter, report_to_xml, xml_escape

from .reports import (
    UTC,
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

etree = pytest.importorskip("lxml.etree")

DTD_PATH = Path("/usr/share/nmap/nmap.dtd")
NDIFF = shutil.which("ndiff")
ALL_REPORTS = [syn_report, mixed_report, version_report, ping_report, list_report, ipv6_report]


@pytest.fixture(scope="module")
def dtd() -> Any:
    if not DTD_PATH.exists():
        pytest.skip(f"{DTD_PATH} absent (install nmap to validate against its DTD)")
    return etree.DTD(str(DTD_PATH))


def parse(text: str) -> Any:
    # The whole document is ASCII; lxml parses bytes with an encoding declaration.
    return etree.fromstring(text.encode("ascii"))


def assert_valid(dtd: Any, text: str) -> Any:
    root = parse(text)
    assert dtd.validate(root), dtd.error_log.filter_from_errors()
    return root


def test_exact_document() -> None:
    assert report_to_xml(ipv6_report(), opts()) == (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        "<!DOCTYPE nmaprun>\n"
        "<!-- pyscan 0.1.0 scan initiated Sat Nov 21 20:30:00 2026 as: "
        "pyscan -6 -sT -p22,80 example.test -->\n"
        '<nmaprun scanner="nmap" args="pyscan -6 -sT -p22,80 example.test" start="1795293000" '
        'startstr="Sat Nov 21 20:30:00 2026" version="0.1.0" xmloutputversion="1.05">\n'
        '<scaninfo type="connect" protocol="tcp" numservices="2" services="22,80"/>\n'
        '<verbose level="0"/>\n'
        '<debugging level="0"/>\n'
        '<host starttime="1795293000" endtime="1795293001">'
        '<status state="up" reason="syn-ack" reason_ttl="64"/>\n'
        '<address addr="2001:db8::1" addrtype="ipv6"/>\n'
        "<hostnames>\n"
        '<hostname name="example.test" type="user"/>\n'
        '<hostname name="host.example.test" type="PTR"/>\n'
        "</hostnames>\n"
        '<ports><port protocol="tcp" portid="22"><state state="open" reason="syn-ack" '
        'reason_ttl="64"/><service name="ssh" method="table" conf="3"/></port>\n'
        '<port protocol="tcp" portid="80"><state state="filtered" reason="no-response" '
        'reason_ttl="0"/><service name="http" method="table" conf="3"/></port>\n'
        "</ports>\n"
        '<times srtt="12000" rttvar="12000" to="100000"/>\n'
        "</host>\n"
        '<runstats><finished time="1795293001" timestr="Sat Nov 21 20:30:01 2026" '
        'summary="pyscan done at Sat Nov 21 20:30:01 2026; 1 IP address (1 host up) scanned '
        'in 1.50 seconds" elapsed="1.50" exit="success"/><hosts up="1" down="0" total="1"/>\n'
        "</runstats>\n"
        "</nmaprun>\n"
    )


def test_extraports_and_reason_ip() -> None:
    root = parse(report_to_xml(mixed_report(), opts()))
    host = root.find("host")
    extras = host.findall("ports/extraports")
    assert [(e.get("state"), e.get("count")) for e in extras] == [
        ("closed", "158"),
        ("open|filtered", "40"),
    ]
    assert [dict(r.attrib) for r in extras[0]] == [
        {"reason": "reset", "count": "99", "proto": "tcp", "ports": "2-100"},
        {"reason": "port-unreach", "count": "59", "proto": "udp", "ports": "100-122,124-159"},
    ]
    listed = [(p.get("protocol"), p.get("portid")) for p in host.findall("ports/port")]
    assert listed == [("tcp", "1"), ("udp", "53"), ("udp", "123")]
    state = host.find("ports/port[@portid='123']/state")
    assert state.get("reason_ip") == "198.18.0.1"
    assert state.get("reason_ttl") == "63"
    # No name known for 1/tcp: no <service>, as nmap.
    assert host.find("ports/port[@portid='1']/service") is None
    # Down host hidden without -v, still counted.
    assert len(root.findall("host")) == 1
    assert dict(root.find("runstats/hosts").attrib) == {"up": "1", "down": "1", "total": "2"}
    scaninfo = [dict(s.attrib) for s in root.findall("scaninfo")]
    assert scaninfo == [
        {"type": "syn", "protocol": "tcp", "numservices": "100", "services": "1-100"},
        {"type": "udp", "protocol": "udp", "numservices": "101", "services": "53,100-199"},
    ]


def test_list_and_ping_hosts() -> None:
    root = parse(report_to_xml(list_report(), opts()))
    assert [h.find("status").get("state") for h in root.findall("host")] == ["unknown"] * 2
    assert root.findall("host")[0].find("hostnames") is None
    assert root.find("scaninfo") is None
    assert root.find("runstats/hosts").attrib["up"] == "0"
    root = parse(report_to_xml(ping_report(), opts(verbose=1)))
    states = [h.find("status").get("state") for h in root.findall("host")]
    assert states == ["up", "down", "up"]
    assert root.findall("host")[0].find("ports") is None


@pytest.mark.parametrize("make", ALL_REPORTS)
@pytest.mark.parametrize(
    "options",
    [opts(), opts(verbose=3, reason=True), opts(open_only=True), opts(debugging=3)],
    ids=["plain", "verbose", "open", "debug"],
)
def test_valid_against_nmap_dtd(
    dtd: Any, make: Callable[[], ScanReport], options: OutputOptions
) -> None:
    assert_valid(dtd, report_to_xml(make(), options))


def test_streaming_partial_file_and_error_exit(dtd: Any) -> None:
    report = mixed_report()
    buf = io.StringIO()
    writer = XmlWriter(buf, opts(verbose=1))
    writer.start(attrs.evolve(report, hosts=()))
    writer.host(report.hosts[0])
    # Interrupted here: libnmap reads the partial file (it appends the closing tag).
    partial = NmapParser.parse_fromstring(buf.getvalue(), incomplete=True)
    assert [h.address for h in partial.hosts] == ["198.18.0.20"]
    writer.finish(report.stats, error="interrupted by user (SIGINT)")
    root = assert_valid(dtd, buf.getvalue())
    finished = root.find("runstats/finished")
    assert finished.get("exit") == "error"
    assert finished.get("errormsg") == "interrupted by user (SIGINT)"


def test_stylesheet_and_scanner_options(dtd: Any) -> None:
    text = report_to_xml(syn_report(), opts(), stylesheet="file:///x/nmap.xsl")
    assert '<?xml-stylesheet href="file:///x/nmap.xsl" type="text/xsl"?>\n' in text
    assert_valid(dtd, text)
    other = parse(report_to_xml(syn_report(), opts(), scanner="pyscan"))
    assert other.get("scanner") == "pyscan"


def test_libnmap_reads_hosts_ports_and_services() -> None:
    parsed = NmapParser.parse_fromstring(report_to_xml(version_report(), opts()))
    assert (parsed.hosts_total, parsed.hosts_up, parsed.elapsed) == (1, 1, 9.87)
    assert parsed.scan_type == "syn"
    host = parsed.hosts[0]
    assert host.address == "198.18.0.30"
    assert host.is_up()
    assert host.get_ports() == [(22, "tcp"), (25, "tcp"), (80, "tcp"), (443, "tcp"), (8443, "tcp")]
    assert host.get_open_ports() == [(22, "tcp"), (80, "tcp"), (443, "tcp"), (8443, "tcp")]
    ssh = host.get_service(22, "tcp")
    assert (ssh.state, ssh.service, ssh.reason, ssh.reason_ttl) == ("open", "ssh", "syn-ack", "64")
    assert ssh.service_dict["product"] == "OpenSSH"
    assert ssh.service_dict["version"] == "8.9p1 Ubuntu 3ubuntu0.1"
    assert [c.cpestring for c in ssh.cpelist] == [
        "cpe:/a:openbsd:openssh:8.9p1",
        "cpe:/o:linux:linux_kernel",
    ]
    assert host.get_service(8443, "tcp").tunnel == "ssl"
    assert host.get_service(25, "tcp").state == "closed"

    ipv6 = NmapParser.parse_fromstring(report_to_xml(ipv6_report(), opts())).hosts[0]
    assert ipv6.address == "2001:db8::1"
    assert ipv6.hostnames == ["example.test", "host.example.test"]


def _ndiff(a: Path, b: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    assert NDIFF is not None
    return subprocess.run(
        [NDIFF, *extra, str(a), str(b)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.mark.skipif(NDIFF is None, reason="ndiff (from nmap) is not installed")
def test_ndiff_identical_and_changed(tmp_path: Path) -> None:
    report = syn_report()
    a = tmp_path / "a.xml"
    a.write_text(report_to_xml(report, opts()))
    same = tmp_path / "same.xml"
    same.write_text(report_to_xml(report, opts()))
    result = _ndiff(a, same)
    assert (result.returncode, result.stdout.strip()) == (0, "")

    host = report.hosts[0]
    changed_ports = []
    for p in host.ports:
        if p.port == 22:
            p = attrs.evolve(p, state=PortState.CLOSED, reason=Reason(ReasonKind.RESET))
        elif p.port == 80:
            svc = Service("http", product="nginx", version="1.2", method="probed", conf=10)
            p = attrs.evolve(p, service=svc)
        elif p.port == 135:
            continue
        changed_ports.append(p)
    b = tmp_path / "b.xml"
    b.write_text(
        report_to_xml(
            attrs.evolve(report, hosts=(attrs.evolve(host, ports=tuple(changed_ports)),)), opts()
        )
    )
    result = _ndiff(a, b)
    assert result.returncode == 1, result.stderr
    changes = {line for line in result.stdout.splitlines() if line.startswith(("+", "-"))}
    assert changes == {
        "-Not shown: 995 closed ports",
        "+Not shown: 996 closed ports",
        "-22/tcp  open     ssh",
        "-80/tcp  open     http",
        "+80/tcp  open     http    nginx 1.2",
        "-135/tcp filtered msrpc",
    }


hostile_char = st.characters(codec=None) | st.sampled_from(
    ["\x00", "\x01", "\x08", "\x0b", "\x1b", "\x7f", "\x85", "\ud800", "\udc80", "\ufffe", "\uffff"]
)
hostile_text = (
    st.text(hostile_char, max_size=30)
    | st.sampled_from(["--", "-->", "]]>", "<!--", "\"'<&>", "&amp;", "a-", "---", "\r\n\t"])
    | st.binary(max_size=30).map(lambda b: b.decode("utf-8", "surrogateescape"))
    | st.binary(max_size=30).map(lambda b: b.decode("latin-1"))
)


def _xml_ok(text: str) -> bool:
    return all(
        c in "\t\n\r" or 0x20 <= ord(c) <= 0xD7FF or 0xE000 <= ord(c) <= 0xFFFD or ord(c) >= 0x10000
        for c in text
    )


@settings(max_examples=150, deadline=None)
@given(
    product=hostile_text,
    extrainfo=hostile_text,
    hostname=hostile_text,
    cpe=hostile_text,
    args=hostile_text,
    error=hostile_text,
)
def test_hostile_strings_give_valid_xml(
    product: str, extrainfo: str, hostname: str, cpe: str, args: str, error: str
) -> None:
    a = ip("198.18.0.50")
    svc = Service(
        "x" + product,
        product=product,
        version=hostname,
        extrainfo=extrainfo,
        hostname=hostname,
        ostype=extrainfo,
        devicetype=product,
        method="probed",
        conf=10,
        cpe=(cpe,),
        fingerprint=product + extrainfo,
    )
    host = HostResult(
        a,
        HostStatus.UP,
        hostnames=(Hostname(hostname, "user"), Hostname(product, "PTR")),
        ports=(port(a, 80, PortState.OPEN, ReasonKind.SYN_ACK, service=svc),),
    )
    report = ScanReport(hosts=(host,), scan_types=("syn",), args=args, stats=stats(1, 1, 1))
    buf = io.StringIO()
    writer = XmlWriter(buf, opts())
    writer.start(report)
    writer.host(host)
    writer.finish(report.stats, error=error)
    text = buf.getvalue()
    assert text.isascii()
    root = parse(text)  # well-formed, or lxml raises
    if DTD_PATH.exists():
        dtd = etree.DTD(str(DTD_PATH))
        assert dtd.validate(root), dtd.error_log.filter_from_errors()
    service = root.find("host/ports/port/service")
    for key, value in (("product", product), ("extrainfo", extrainfo), ("hostname", hostname)):
        if value and _xml_ok(value):
            assert service.get(key) == value
    if _xml_ok(cpe):
        assert (service.find("cpe").text or "") == cpe
    if _xml_ok(args):
        assert root.get("args") == args
    if _xml_ok(error):
        assert root.find("runstats/finished").get("errormsg") == error


@given(hostile_text)
def test_escape_never_leaves_double_dash_or_specials(text: str) -> None:
    escaped = xml_escape(text)
    assert "--" not in escaped
    assert not set(escaped) & set("<>\"'")
    assert escaped.isascii()
    assert all(0x20 <= ord(c) < 0x7F for c in escaped)
    # As a comment, too (where nmap puts the command line).
    parse(f"<!-- {escaped} --><r/>")


def test_escape_examples() -> None:
    assert xml_escape("a--b") == "a-&#45;b"
    assert xml_escape("---") == "-&#45;&#45;"
    assert xml_escape("<&>\"'") == "&lt;&amp;&gt;&quot;&apos;"
    assert xml_escape("\t\n\r") == "&#x9;&#xa;&#xd;"
    assert xml_escape("caf\u00e9 \U0001f600") == "caf&#xe9; &#x1f600;"
    assert xml_escape("\x00\x1b\udc9f\ufffe") == "\\x00\\x1b\\x9f\\ufffe"


def test_open_only_drops_hosts_without_open_ports() -> None:
    a = ip("198.18.0.60")
    closed = HostResult(a, HostStatus.UP, ports=(port(a, 22, PortState.CLOSED, ReasonKind.RESET),))
    report = ScanReport(hosts=(closed,), scan_types=("syn",), stats=stats(1, 1, 1))
    root = parse(report_to_xml(report, OutputOptions(open_only=True, tz=UTC)))
    assert root.find("host") is None
    assert root.find("runstats/hosts").get("up") == "1"
