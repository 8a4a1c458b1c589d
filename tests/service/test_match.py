"""The matcher: nmap's first-match rule, fallbacks, soft matches and template filling."""

# ruff: noqa: E501  (probe-file lines in the fixtures cannot be wrapped)

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyscan.service import (
    Match,
    MatchResult,
    ProbeDatabase,
    VersionTemplate,
    apply_match,
    match_response,
    match_with_fallbacks,
    parse_probes,
)

# Patterns and templates written for these tests (not nmap's), answering real banners.
PROBES = r"""
Probe TCP NULL q||
match ssh m|^SSH-([\d.]+)-OpenSSH_([\w._-]+)(?: ([^\r\n]+))?\r?\n| p/OpenSSH/ v/$2 $SUBST(3,"-"," ")/ i/protocol $1/ cpe:/a:openbsd:openssh:$2/
match ftp m=^220 \(vsFTPd ([\d.]+)\)\r\n= p/vsftpd/ v/$1/ o/Unix/ cpe:/a:beasts:vsftpd:$1/a
match smtp m|^220 ([\w.-]+) ESMTP Postfix(?: \(([^)]+)\))?\r\n| p/Postfix smtpd/ h/$1/ i/$2/ cpe:/a:postfix:postfix/a
softmatch ftp m/^220[- ]/
match smtp m|^220 .*ESMTP|

Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
rarity 1
ports 80
match http m|^HTTP/1\.[01] \d\d\d .*?\r\nServer: nginx/([\d.]+)\r\n|s p/nginx/ v/$1/ cpe:/a:igor_sysoev:nginx:$1/
softmatch http m|^HTTP/1\.[01] \d\d\d|

Probe TCP RedisPing q|*1\r\n$4\r\nPING\r\n|
rarity 8
fallback GetRequest
match redis m|^-ERR unknown command| p/Redis key-value store/
match redis m|^\+PONG\r\n| p/Redis key-value store/

Probe UDP Binary q|\x01|
match acme m|^\x01(..)(....)(\0\x41\0\x42\0[\x00-\xff]+)$|s p/ACME/ v/$I(1,">").$I(2,"<")/ i/name $P(3)/ h/$3/
match acme2 m|^\x02(.)(.{9})|s v/$I(2,">")/
"""

BANNERS: list[tuple[str, bytes, dict[str, object]]] = [
    (
        "NULL",
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        {
            "service": "ssh",
            "product": "OpenSSH",
            "version": "9.2p1 Debian 2+deb12u3",
            "extrainfo": "protocol 2.0",
            "cpe": ("cpe:/a:openbsd:openssh:9.2p1",),
        },
    ),
    (
        "NULL",
        b"SSH-2.0-OpenSSH_8.9\n",
        # $3 did not take part, so (as in nmap) the whole version template fails
        {"service": "ssh", "version": None, "cpe": ("cpe:/a:openbsd:openssh:8.9",)},
    ),
    (
        "NULL",
        b"220 (vsFTPd 3.0.3)\r\n",
        {
            "service": "ftp",
            "product": "vsftpd",
            "version": "3.0.3",
            "ostype": "Unix",
            "cpe": ("cpe:/a:beasts:vsftpd:3.0.3",),
        },
    ),
    (
        "NULL",
        b"220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n",
        {"service": "smtp", "hostname": "mail.example.org", "extrainfo": "Debian/GNU"},
    ),
    ("NULL", b"220 ProFTPD Server ready.\r\n", {"service": "ftp", "soft": True}),
    (
        "GetRequest",
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nDate: Mon, 1 Jan 2024\r\n\r\n",
        {"service": "http", "product": "nginx", "version": "1.22.1", "soft": False},
    ),
    ("GetRequest", b"HTTP/1.0 404 Not Found\r\n\r\n", {"service": "http", "soft": True}),
    (
        "RedisPing",
        b"-ERR unknown command 'GET', with args beginning with: '/' \r\n",
        {"service": "redis", "product": "Redis key-value store", "version": None},
    ),
]


@pytest.fixture(scope="module")
def db() -> ProbeDatabase:
    return parse_probes(PROBES, path="test-probes")


@pytest.mark.parametrize(("probe", "banner", "expected"), BANNERS)
def test_real_banners(
    db: ProbeDatabase, probe: str, banner: bytes, expected: dict[str, object]
) -> None:
    found = db.get(probe)
    assert found is not None
    result = match_with_fallbacks(db, found, banner)
    assert result is not None
    for key, value in expected.items():
        assert getattr(result, key) == value, key
    assert result.probe == probe


def test_first_matching_line_wins_even_if_soft(db: ProbeDatabase) -> None:
    null = db.null_probe
    assert null is not None
    # line 5 (softmatch ftp) precedes line 6 (match smtp): nmap stops at the soft match
    result = match_response(null, b"220 relay ESMTP ready\r\n")
    assert result is not None
    assert result.soft
    assert result.service == "ftp"
    assert result.line == 6
    restricted = match_response(null, b"220 relay ESMTP ready\r\n", restrict_service="smtp")
    assert restricted is not None
    assert not restricted.soft
    assert restricted.service == "smtp"
    assert restricted.line == 7


def test_no_match_gives_none(db: ProbeDatabase) -> None:
    null = db.null_probe
    assert null is not None
    assert match_response(null, b"") is None
    assert match_response(null, b"hello\r\n") is None
    assert match_response(null, b"SSH-2.0-OpenSSH_9\r\n", restrict_service="ftp") is None


def test_fallback_chain_order(db: ProbeDatabase) -> None:
    redis = db.get("RedisPing")
    assert redis is not None
    # RedisPing's own lines, then GetRequest's (its fallback), then NULL's
    http = match_with_fallbacks(db, redis, b"HTTP/1.1 400 Bad Request\r\n\r\n")
    assert http is not None
    assert (http.service, http.probe, http.matched_by) == ("http", "RedisPing", "GetRequest")
    ssh = match_with_fallbacks(db, redis, b"SSH-2.0-OpenSSH_9.6\r\n")
    assert ssh is not None
    assert (ssh.service, ssh.probe, ssh.matched_by) == ("ssh", "RedisPing", "NULL")
    assert match_response(redis, b"SSH-2.0-OpenSSH_9.6\r\n") is None
    # a UDP probe never falls back to the NULL probe
    binary = db.get("Binary")
    assert binary is not None
    assert match_with_fallbacks(db, binary, b"SSH-2.0-OpenSSH_9.6\r\n") is None


def test_integer_printable_and_raw_substitutions(db: ProbeDatabase) -> None:
    binary = db.get("Binary")
    assert binary is not None
    response = b"\x01\x01\x02\x10\x00\x00\x00\x00A\x00B\x00\x07C"
    result = match_response(binary, response)
    assert result is not None
    assert result.version == "258.16"  # 0x0102 big-endian, 0x00000010 little-endian
    assert result.extrainfo == "name ABC"  # $P keeps printable bytes only
    assert result.hostname is None  # raw $3 starts with NUL: nmap's string ends there
    too_long = match_response(binary, b"\x02\x01" + b"\xff" * 9)
    assert too_long is not None
    assert too_long.version is None  # $I takes at most 8 bytes


def _fill(template: str, pattern: bytes, subject: bytes, field: str = "version") -> str | None:
    fields: dict[str, Any] = {field: VersionTemplate(template)}
    match = Match(service="x", source=pattern.decode("latin-1"), **fields)
    m = match.pattern.search(subject)
    assert m is not None
    value = getattr(apply_match(match, m, "P", "P"), field)
    assert value is None or isinstance(value, str)
    return value


@pytest.mark.parametrize(
    ("template", "pattern", "subject", "expected"),
    [
        ("$1", rb"(\w+)", b"abc", "abc"),
        ("v$1-$2", rb"(a)(b)", b"ab", "va-b"),
        ("$1", rb"(.+)", b"a\x01\xffb", "a..b"),  # unprintable bytes are shown as "."
        ("$1 end", rb"(.+)", b"ab\x00cd", "ab end"),  # a raw capture ends at NUL
        ("$P(1)", rb"(.+)", b"W\x00O\x00R\x00K\x00\xe9", "WORK"),
        ('$SUBST(1,"_",".")', rb"(.+)", b"1_2_3", "1.2.3"),
        ('$SUBST(1,"ab","X")', rb"(.+)", b"aabab", "aXX"),
        ('$I(1,">")', rb"(....)", b"\x00\x00\x01\x00", "256"),
        ('$I(1,"<")', rb"(..)", b"\x01\x01", "257"),
        ('$I(1,">")', rb"(.{8})", b"\xff" * 8, "18446744073709551615"),
        ('$I(1,">")', rb"a()", b"a", "0"),
        ("$1, ,  ", rb"(x)", b"x", "x"),  # trailing blanks and commas are trimmed
        ("  lead", rb"x", b"x", "  lead"),
        ("$2", rb"(a)|(b)", b"a", None),  # a group that did not take part: no field
        ("$3", rb"(a)(b)", b"ab", None),  # no such group
        ("x$1", rb"(a?)", b"", "x"),
        ("", rb"a", b"a", None),
        ("é", rb"a", b"a", "."),  # template bytes outside ASCII too (Latin-1 text: one byte)
        ("λ", rb"a", b"a", ".."),  # beyond Latin-1: its two UTF-8 bytes
    ],
)
def test_template_filling(
    template: str, pattern: bytes, subject: bytes, expected: str | None
) -> None:
    assert _fill(template, pattern, subject) == expected


def test_field_length_limits_follow_nmaps_buffers() -> None:
    pattern, subject = rb"(a+)", b"a" * 300
    assert _fill("$1", rb"(a{78})", subject) == "a" * 78
    assert _fill("$1", rb"(a{79})", subject) is None  # after a substitution: 78 bytes at most
    assert _fill("a" * 79, pattern, subject) == "a" * 79  # literal text: 79
    assert _fill("a" * 80, pattern, subject) is None
    assert _fill("$1", rb"(a{254})", subject, "extrainfo") == "a" * 254
    assert _fill("$1", rb"(a{255})", subject, "extrainfo") is None
    assert _fill("$1", rb"(a{30})", subject, "ostype") == "a" * 30
    assert _fill("$1", rb"(a{31})", subject, "devicetype") is None


def test_cpe_templates() -> None:
    match = Match(
        service="x",
        source=r"^(\S+) (.+)$",
        cpe=(
            VersionTemplate("a:Vendor:$1:$2"),
            VersionTemplate("o:linux:linux_kernel", "a"),
            VersionTemplate("a:later:wins"),
            VersionTemplate("x:ignored:part"),
            VersionTemplate("h:acme:$9"),  # cannot be filled: left out
        ),
    )
    m = match.pattern.search(b"Prod/1 2.0 (beta) A:B\xff")
    assert m is not None
    result = apply_match(match, m, "P", "P")
    assert result.cpe == ("cpe:/a:later:wins", "cpe:/o:linux:linux_kernel")
    only_first = Match(
        service="x", source=r"^(\S+) (.+)$", cpe=(VersionTemplate("a:Vendor:$1:$2"),)
    )
    m = only_first.pattern.search(b"Prod/1 2.0 (beta) A:B\xff")
    assert m is not None
    assert apply_match(only_first, m, "P", "P").cpe == (
        "cpe:/a:Vendor:prod%2F1:2.0_%28beta%29_a%3Ab.",
    )  # substitutions lower-cased and escaped, the literal text kept as written


def test_result_is_frozen(db: ProbeDatabase) -> None:
    null = db.null_probe
    assert null is not None
    result = match_response(null, b"220 (vsFTPd 2.3.4)\r\n")
    assert isinstance(result, MatchResult)
    with pytest.raises(AttributeError):
        result.service = "other"  # type: ignore[misc]


_PRINTABLE = re.compile(r"[\x20-\x7e]*")


def _assert_printable(result: MatchResult | None) -> None:
    if result is None:
        return
    for value in (result.service, result.product, result.version, result.extrainfo,
                  result.hostname, result.ostype, result.devicetype, *result.cpe):  # fmt: skip
        assert value is None or _PRINTABLE.fullmatch(value), value


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    probe=st.sampled_from(["NULL", "GetRequest", "RedisPing", "Binary"]),
    response=st.one_of(
        st.binary(max_size=64),
        st.sampled_from([b for _, b, _ in BANNERS]).flatmap(
            lambda b: st.binary(max_size=8).map(lambda junk: b + junk)
        ),
        st.binary(max_size=40).map(lambda b: b"\x01" + b),
        st.binary(max_size=40).map(lambda b: b"SSH-2.0-OpenSSH_" + b + b"\r\n"),
    ),
)
def test_matcher_never_raises_and_fields_are_printable(
    db: ProbeDatabase, probe: str, response: bytes
) -> None:
    found = db.get(probe)
    assert found is not None
    _assert_printable(match_with_fallbacks(db, found, response))
    _assert_printable(match_response(found, response, restrict_service="acme"))


@settings(max_examples=200, deadline=None)
@given(
    template=st.text(st.characters(codec="latin-1"), max_size=12).map(lambda t: t.replace("$", ""))
    | st.sampled_from(["$1", "$P(1)", '$SUBST(1,"a","\\x00\\xff")', '$I(1,"<")', "x $1 y"]),
    subject=st.binary(max_size=20),
)
def test_any_template_on_any_bytes_gives_printable_text(template: str, subject: bytes) -> None:
    match = Match(
        service="svc",
        source=r"(.*)",
        flags="s",
        product=VersionTemplate(template),
        cpe=(VersionTemplate("a:" + template),),
    )
    m = match.pattern.search(subject)
    assert m is not None
    _assert_printable(apply_match(match, m, "P", "P"))
