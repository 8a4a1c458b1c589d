"""The nmap-service-probes parser: every directive, error positions, generated files."""

# ruff: noqa: E501  (probe-file lines in the fixtures cannot be wrapped)

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyscan.errors import DataFileError, ProbeFileError
from pyscan.service import (
    Match,
    ProbeDatabase,
    ServiceProbe,
    Substitution,
    TemplateError,
    VersionTemplate,
    find_nmap_file,
    load_probes,
    parse_probes,
)
from pyscan.service._probes import unescape

from ._st import probe_lists, render

SAMPLE = """\
# A probe file written for these tests.
Exclude T:9100-9102,U:30000,40000-40001

Probe TCP NULL q||
totalwaitms 6000
tcpwrappedms 3000
match ssh m|^SSH-([\\d.]+)-OpenSSH_(\\S+)\\r?\\n| p/OpenSSH/ v/$2/ i/protocol $1/ cpe:/a:openbsd:openssh:$2/
softmatch ftp m=^220[- ]=i
match telnet m%^\\xff\\xfb\\x01%s p|Busy Box/telnetd| d=router=
    # an indented comment

Probe UDP DNS q|\\0\\x06\\x01\\0\\0\\x01| no-payload
rarity 1
ports 53,5353, 5300-5302
sslports 853
fallback Help
match domain m|^\\0\\x06\\x81| p/dnsd/ o/Linux/ h/ns1/ cpe:/o:linux:linux_kernel/a cpe:|h:acme:box|

Probe TCP Help q|HELP\\r\\n| foo no-payload
fallback DNS , NULL
rarity 9
totalwaitms 100
tcpwrappedms 300000
ports 1
ports 2-3
"""


@pytest.fixture(scope="module")
def sample() -> ProbeDatabase:
    return parse_probes(SAMPLE, path="sample-probes")


def test_probes_in_file_order(sample: ProbeDatabase) -> None:
    assert [(p.protocol, p.name, p.line) for p in sample.probes] == [
        ("tcp", "NULL", 4),
        ("udp", "DNS", 12),
        ("tcp", "Help", 19),
    ]
    assert sample.path == "sample-probes"
    assert len(sample) == 3
    assert [p.name for p in sample] == ["NULL", "DNS", "Help"]


def test_exclude(sample: ProbeDatabase) -> None:
    assert sample.exclude == (
        ("tcp", 9100, 9102),
        ("udp", 30000, 30000),
        ("udp", 40000, 40001),
    )
    assert sample.is_excluded(9101, "tcp")
    assert not sample.is_excluded(9101, "udp")
    assert sample.is_excluded(40001, "udp")
    assert not sample.is_excluded(9103, "tcp")


def test_exclude_without_prefix_covers_every_protocol() -> None:
    db = parse_probes("Exclude 7,10-11,U:5,T:6\n")
    assert db.exclude == (
        ("tcp", 7, 7), ("udp", 7, 7), ("sctp", 7, 7),
        ("tcp", 10, 11), ("udp", 10, 11), ("sctp", 10, 11),
        ("udp", 5, 5), ("tcp", 6, 6),
    )  # fmt: skip


def test_probe_directives(sample: ProbeDatabase) -> None:
    null, dns, helper = sample.probes
    assert null.payload == b""
    assert null.is_null
    assert (null.totalwaitms, null.tcpwrappedms, null.rarity) == (6000, 3000, 5)
    assert null.ports == frozenset()
    assert null.fallback == ()
    assert dns.payload == b"\x00\x06\x01\x00\x00\x01"
    assert dns.no_payload
    assert not dns.is_null
    assert dns.rarity == 1
    assert dns.ports == {53, 5353, 5300, 5301, 5302}
    assert dns.sslports == {853}
    assert dns.fallback == ("Help",)
    assert (dns.totalwaitms, dns.tcpwrappedms) == (5000, 2000)  # nmap's defaults
    assert helper.payload == b"HELP\r\n"
    assert helper.no_payload  # unknown options before it are ignored, as nmap does
    assert helper.fallback == ("DNS", "NULL")
    assert (helper.rarity, helper.totalwaitms, helper.tcpwrappedms) == (9, 100, 300000)
    assert helper.ports == {1, 2, 3}  # repeated ports lines add up


def test_match_lines(sample: ProbeDatabase) -> None:
    ssh, ftp, telnet = sample.probes[0].matches
    assert ssh == Match(
        service="ssh",
        source=r"^SSH-([\d.]+)-OpenSSH_(\S+)\r?\n",
        product=VersionTemplate("OpenSSH"),
        version=VersionTemplate("$2"),
        extrainfo=VersionTemplate("protocol $1"),
        cpe=(VersionTemplate("a:openbsd:openssh:$2"),),
    )
    assert ssh.line == 7
    assert not ssh.soft
    assert ssh.pattern.search(b"SSH-2.0-OpenSSH_9.2\n") is not None
    assert ftp.soft
    assert ftp.service == "ftp"
    assert ftp.flags == "i"
    assert ftp.pattern.search(b"220-hello") is not None
    assert ftp.product is None
    assert ftp.cpe == ()
    assert telnet.flags == "s"
    assert telnet.product == VersionTemplate("Busy Box/telnetd")
    assert telnet.devicetype == VersionTemplate("router")
    domain = sample.probes[1].matches[0]
    assert domain.ostype == VersionTemplate("Linux")
    assert domain.hostname == VersionTemplate("ns1")
    assert domain.cpe == (
        VersionTemplate("o:linux:linux_kernel", "a"),
        VersionTemplate("h:acme:box"),
    )


def test_services_a_probe_may_identify(sample: ProbeDatabase) -> None:
    null = sample.probes[0]
    assert null.services == {"ssh", "ftp", "telnet"}
    assert null.may_identify("ftp")
    assert not null.may_identify("domain")


def test_lookup_and_fallback_chain(sample: ProbeDatabase) -> None:
    null, dns, helper = sample.probes
    assert sample.null_probe is null
    assert sample.get("DNS") is dns
    assert sample.get("DNS", "tcp") is dns  # other protocol when none matches, like nmap
    assert sample.get("NULL", "udp") is None  # the NULL probe only serves TCP
    assert sample.get("nope") is None
    assert sample.probes_for("udp") == (dns,)
    assert sample.fallback_chain(null) == (null,)
    assert sample.fallback_chain(helper) == (helper, dns, null)
    assert sample.fallback_chain(dns) == (dns, helper)  # UDP: no NULL at the end
    # a UDP probe does not fall back to NULL implicitly, and NULL is TCP-only
    udp_db = parse_probes("Probe TCP NULL q||\nProbe UDP U q|x|\nProbe TCP T q|y|\n")
    assert [p.name for p in udp_db.fallback_chain(udp_db.probes[1])] == ["U"]
    assert [p.name for p in udp_db.fallback_chain(udp_db.probes[2])] == ["T", "NULL"]


def test_repeated_version_field_replaces_the_earlier_one() -> None:
    db = parse_probes("Probe TCP NULL q||\nmatch x m/a/ p/one/ p/two/\n")
    assert db.probes[0].matches[0].product == VersionTemplate("two")


def test_crlf_line_endings_and_no_final_newline() -> None:
    db = parse_probes("Probe TCP NULL q||\r\nmatch x m/a\\r/ p/P/\r\n\r\nrarity 3")
    probe = db.probes[0]
    assert probe.rarity == 3
    assert probe.matches[0].product == VersionTemplate("P")
    assert probe.matches[0].pattern.search(b"a\r") is not None


@pytest.mark.parametrize(
    ("escaped", "expected"),
    [
        (r"\0\x00\xfF", b"\x00\x00\xff"),
        (r"\r\n\t\\", b"\r\n\t\\"),
        (r"\a\b\f\v", b"\x07\x08\x0c\x0b"),
        (r"\|\"\q\ ", b'|"q '),
        (r"\012", b"\x0012"),  # nmap's \0 is one NUL byte, not an octal escape
        ("plain é", b"plain \xe9"),
        ("λ", "λ".encode()),  # beyond Latin-1: the UTF-8 bytes a UTF-8 file would hold
    ],
)
def test_probe_string_escapes(escaped: str, expected: bytes) -> None:
    assert unescape(escaped) == expected


def test_template_parts() -> None:
    template = VersionTemplate('v$1.$P(2) $SUBST(3,"_",".")$I(4,">")$I( 5 , "<" )x')
    assert template.parts == (
        b"v",
        Substitution("$", 1),
        b".",
        Substitution("P", 2),
        b" ",
        Substitution("SUBST", 3, b"_", b"."),
        Substitution("I", 4, endian=">"),
        Substitution("I", 5, endian="<"),
        b"x",
    )
    assert VersionTemplate('$SUBST(1,"\\x00","\\n")').parts == (
        Substitution("SUBST", 1, b"\x00", b"\n"),
    )
    assert VersionTemplate("$12").parts == (Substitution("$", 1), b"2")


@pytest.mark.parametrize(
    ("text", "offset"),
    [
        ("a $", 2),
        ("$0", 0),
        ("x$Q(1)", 1),
        ("$P(1", 4),
        ("$P(10)", 0),
        ("$P(1,2)", 0),
        ('$P("a")', 0),
        ('$SUBST(1,"a")', 0),
        ('$SUBST(1,"","b")', 0),
        ('$SUBST(1,"a" "b")', 12),
        ('$SUBST(1,"a,"b")', 13),
        ('$I(1,"=")', 0),
        ("$I(1)", 0),
        ("$P(x)", 3),
        ('$SUBST(1,"\\x4","b")', 10),
    ],
)
def test_bad_templates(text: str, offset: int) -> None:
    with pytest.raises(TemplateError) as info:
        VersionTemplate(text)
    assert info.value.offset == offset


# (file text, line, column, words in the reason)
ERRORS = [
    ("Probe TCP NULL q||\nbogus 1\n", 2, 1, "unknown directive"),
    ("match x m/a/\n", 1, 1, "must follow a Probe"),
    ("ports 80\n", 1, 1, "must follow a Probe"),
    ("Exclude T:1\nExclude T:2\n", 2, 1, "only one Exclude"),
    ("Probe TCP NULL q||\nExclude T:1\n", 2, 1, "before the first Probe"),
    ("Exclude T:1-x\n", 1, 13, "expected , between"),
    ("Exclude T:5-4\n", 1, 9, "bad port range"),
    ("Exclude 70000\n", 1, 9, "bad port range"),
    ("Exclude ,\n", 1, 9, "expected a port"),
    ("Probe SCTP x q||\n", 1, 7, "TCP or UDP"),
    ("Probe TCP\n", 1, 10, "missing probe name"),
    ("Probe TCP -x q||\n", 1, 11, "start with a letter"),
    ("Probe TCP x\n", 1, 12, "q|...|"),
    ("Probe TCP x r|a|\n", 1, 13, "q|...|"),
    ("Probe TCP x q|abc\n", 1, 14, "no closing delimiter"),
    ("Probe TCP x q\n", 1, 13, "expected a delimiter"),
    ("Probe TCP x q|a\\x4|\n", 1, 16, "two hex digits"),
    ("Probe TCP x q|a\\|\n", 1, 16, "lone backslash"),
    ("Probe TCP NULL q||\nProbe TCP N2 q||\n", 2, 1, "empty probe string"),
    ("Probe TCP x q|a|\nports 80,\n", 2, 10, "bad port list"),
    ("Probe TCP x q|a|\nports 80;81\n", 2, 9, "bad port list"),
    ("Probe TCP x q|a|\nports 9-8\n", 2, 7, "bad port range"),
    ("Probe TCP x q|a|\nsslports 65536\n", 2, 10, "bad port range"),
    ("Probe TCP x q|a|\nrarity 0\n", 2, 8, "between 1 and 9"),
    ("Probe TCP x q|a|\nrarity five\n", 2, 8, "whole number"),
    ("Probe TCP x q|a|\ntotalwaitms 99\n", 2, 13, "between 100 and 300000"),
    ("Probe TCP x q|a|\ntcpwrappedms 300001\n", 2, 14, "between 100 and 300000"),
    ("Probe TCP x q|a|\nfallback\n", 2, 9, "at least one"),
    ("Probe UDP x q|a|\nfallback NULL\n", 2, 10, "unknown fallback probe 'NULL'"),
    ("Probe TCP x q|a|\nfallback y, NULL\n", 2, 10, "unknown fallback probe 'y'"),
    ("Probe TCP x q|a|\nmatch\n", 2, 6, "missing service"),
    ("Probe TCP x q|a|\nmatch svc\n", 2, 10, "expected a delimiter"),
    ("Probe TCP x q|a|\nmatch svc r/a/\n", 2, 11, "m/regex/"),
    ("Probe TCP x q|a|\nmatch svc m/a\n", 2, 12, "no closing delimiter"),
    ("Probe TCP x q|a|\nmatch svc m/a/ix\n", 2, 16, "unknown pattern option 'x'"),
    ("Probe TCP x q|a|\nmatch svc m/a/p/x/\n", 2, 16, "expected a space"),
    ("Probe TCP x q|a|\nmatch svc m/a(/\n", 2, 14, "bad pattern"),
    ("Probe TCP x q|a|\nmatch svc m/ab\\L/\n", 2, 15, "does not support"),
    ("Probe TCP x q|a|\nmatch svc m/a/ z/b/\n", 2, 16, "unknown version field 'z'"),
    ("Probe TCP x q|a|\nmatch svc m/a/ p/b\n", 2, 17, "no closing delimiter"),
    ("Probe TCP x q|a|\nmatch svc m/a/ v/1.$Q(1)/\n", 2, 20, '"$" must start'),
    ("Probe TCP x q|a|\nmatch svc m/a/ p\n", 2, 16, "expected a delimiter"),
    ("Probe TCP x q|a|\nsoftmatch svc m/[z-a]/\n", 2, 18, "range"),
]


@pytest.mark.parametrize(("text", "line", "column", "reason"), ERRORS)
def test_errors_name_line_and_column(text: str, line: int, column: int, reason: str) -> None:
    with pytest.raises(ProbeFileError) as info:
        parse_probes(text, path="bad.probes")
    error = info.value
    assert (error.path, error.line, error.column) == ("bad.probes", line, column), str(error)
    assert reason in error.reason
    assert str(error).startswith(f"bad.probes:{line}:{column}: ")
    assert isinstance(error, ValueError)


def test_load_probes_reads_bytes_as_latin1(tmp_path: Path) -> None:
    path = tmp_path / "probes"
    path.write_bytes(b"Probe TCP NULL q||\nmatch x m|^\xe9\\xff| p/caf\xc3\xa9/\n")
    db = load_probes(path)
    assert db.path == str(path)
    match = db.probes[0].matches[0]
    assert match.pattern.search(b"\xe9\xff") is not None
    assert match.product is not None
    assert match.product.parts == (b"caf\xc3\xa9",)


def test_load_probes_errors(tmp_path: Path) -> None:
    with pytest.raises(DataFileError) as info:
        load_probes(tmp_path / "missing")
    assert "missing" in str(info.value)
    bad = tmp_path / "bad"
    bad.write_text("Probe TCP NULL q||\n\nmatch x m/(/\n")
    with pytest.raises(ProbeFileError) as perr:
        load_probes(bad)
    assert (perr.value.path, perr.value.line, perr.value.column) == (str(bad), 3, 11)


def test_find_nmap_file_search_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "nmap-service-probes").write_text("Probe TCP NULL q||\n")
    monkeypatch.setenv("NMAPDIR", str(tmp_path))
    assert find_nmap_file("nmap-service-probes") == tmp_path / "nmap-service-probes"
    assert load_probes().path == str(tmp_path / "nmap-service-probes")
    assert find_nmap_file("no-such-file-here") is None
    monkeypatch.setenv("NMAPDIR", str(tmp_path / "empty"))
    found = find_nmap_file("nmap-service-probes")
    assert found is None or found.parent in (Path("/usr/share/nmap"), Path("/usr/local/share/nmap"))


def test_direct_construction_validates() -> None:
    with pytest.raises(ValueError, match="unmatched"):
        Match(service="x", source="a)")
    with pytest.raises(ValueError, match="flags"):
        Match(service="x", source="a", flags="x")
    with pytest.raises(TemplateError):
        VersionTemplate("$")
    probe = ServiceProbe(protocol="udp", name="x", payload=b"\x01\xff")
    assert "01ff" in repr(probe)
    db = ProbeDatabase(
        probes=(ServiceProbe(protocol="tcp", name="t", payload=b"x", fallback=("nope",)),)
    )
    with pytest.raises(KeyError):
        db.fallback_chain(db.probes[0])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_generated_files_parse_back(data: st.DataObject) -> None:
    generated = data.draw(probe_lists())
    text, probe_lines = data.draw(render(generated))
    db = parse_probes(text)
    assert list(db.probes) == generated
    assert [p.line for p in db.probes] == probe_lines
    for probe in db.probes:
        for match in probe.matches:
            line = text.split("\n")[match.line - 1]
            assert line.startswith(("match ", "softmatch ")), line


_PREFIXES = ["", "match x ", "softmatch x m", "Probe TCP ", "Probe UDP x q", "ports ", "rarity ",
             "fallback ", "Exclude ", "match x m/a/ ", "match x m|(", "totalwaitms "]  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(
    prefix=st.sampled_from(_PREFIXES),
    lines=st.lists(st.text(st.characters(codec="latin-1"), max_size=30), max_size=4),
)
def test_random_lines_only_raise_probe_file_error(prefix: str, lines: list[str]) -> None:
    text = "Probe TCP NULL q||\n" + prefix + "\n".join(lines)
    error: ProbeFileError | None = None
    try:
        db = parse_probes(text, path="fuzz")
    except ProbeFileError as exc:
        error = exc
    if error is None:
        assert db.probes[0].name == "NULL"
        return
    assert error.path == "fuzz"
    assert 1 <= error.line <= text.count("\n") + 1
    assert 1 <= error.column <= len(text.split("\n")[error.line - 1].rstrip("\r")) + 1
    assert re.match(r"fuzz:\d+:\d+: \S", str(error))
