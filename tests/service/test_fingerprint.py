"""SF-Port service fingerprints: nmap's layout, escaping, size cap and line wrapping.

The expected strings were produced by nmap 7.93 (-sV against small servers of ours on
127.0.0.1 replaying the bytes below); only V, Time and D are ours to choose.
"""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan.service._fingerprint import (
    FINGERPRINT_LIMIT,
    build_fingerprint,
    escape_response,
    parse_fingerprint,
    unescape_response,
    wrap_fingerprint,
)

PUNCT = b" \x01\x02 . ( ) [ ] + * ? ^ $ | { } \\ / : ; , ' \" # % & @ ! ~ ` = < > _ -\r\n"
NMAP_ESCAPED = (
    r"\x20\x01\x02\x20\.\x20\(\x20\)\x20\[\x20\]\x20\+\x20\*\x20\?\x20\^\x20\$\x20\|\x20{"
    r"\x20}\x20\\\x20/\x20:\x20;\x20,\x20'\x20\"\x20#\x20%\x20&\x20@\x20!\x20~\x20`\x20=\x20<"
    r"\x20>\x20_\x20-\r\n"
)
TIME = 0x6B0203E0


def _day(now: float) -> str:
    when = datetime.datetime.fromtimestamp(now)  # local time, like the module
    return f"{when.month}/{when.day}"


def test_escaping_matches_nmap() -> None:
    assert escape_response(PUNCT) == NMAP_ESCAPED
    assert escape_response(b"\0\t\x0b\x7f\xff\x80A~") == r"\0\t\x0b\x7f\xff\x80A~"
    assert escape_response(b"HELLO zork server 1.2\r\n") == r"HELLO\x20zork\x20server\x201\.2\r\n"


def test_fingerprint_matches_nmap() -> None:
    banner = b"HELLO zork server 1.2\r\n"
    second = banner + b"ERR unknown command" + PUNCT
    fp = build_fingerprint(
        47001,
        "tcp",
        [("NULL", banner), ("GenericLines", b""), ("JavaRMI", second)],
        now=TIME,
        intensity=0,
        version="7.93",
        platform="x86_64-pc-linux-gnu",
    )
    expected = (
        f"SF-Port47001-TCP:V=7.93%I=0%D={_day(TIME)}%Time=6B0203E0%P=x86_64-pc-linux-gnu"
        r'%r(NULL,17,"HELLO\x20zork\x20server\x201\.2\r\n")'
        r'%r(JavaRMI,6F,"HELLO\x20zork\x20server\x201\.2\r\nERR\x20unknown\x20command'
        + NMAP_ESCAPED
        + '");'
    )
    assert fp == expected


def test_long_answers_are_cut_at_nmaps_limit() -> None:
    data = b"\0\t\x0b\x7f\xff\x80A~" + b"z" * 3000 + b"\r\n"
    fp = build_fingerprint(
        47003, "tcp", [("NULL", data)], now=0x6B0204AE, intensity=0, version="7.93"
    )
    head = f"SF-Port47003-TCP:V=7.93%I=0%D={_day(0x6B0204AE)}%Time=6B0204AE%P=x86_64-pc-linux-gnu"
    # nmap 7.93 printed exactly this: the full length (BC2) but 892 of the z's
    assert fp == head + r'%r(NULL,BC2,"\0\t\x0b\x7f\xff\x80A~' + "z" * 892 + '");'
    assert len(fp) == FINGERPRINT_LIMIT + 1
    # a later answer that no longer fits is left out
    more = build_fingerprint(47003, "tcp", [("NULL", data), ("X", b"y")], now=0, version="7.93")
    assert "%r(X," not in more
    assert len(more) <= FINGERPRINT_LIMIT + 1


def test_tls_and_udp_headers() -> None:
    fp = build_fingerprint(53, "udp", [("DNS", b"x")], now=0, tls=True, version="1.0")
    assert fp.startswith("SF-Port53-UDP:V=1.0%T=SSL%I=7%D=")


def test_wrapping_like_nmap_normal_output() -> None:
    fp = build_fingerprint(
        47001, "tcp", [("NULL", b"HELLO zork server 1.2\r\n" * 3)], now=TIME, version="7.93"
    )
    lines = wrap_fingerprint(fp)
    assert len(lines[0]) == 74
    assert all(line.startswith("SF:") for line in lines[1:])
    assert all(len(line) == 74 for line in lines[1:-1])
    assert "".join([lines[0], *(line[3:] for line in lines[1:])]) == fp


def test_parse_reads_wrapped_and_plain_forms() -> None:
    responses = [("NULL", b"SSH-junk\r\n"), ("GetRequest", b'\x00"quoted" (x)|\xff')]
    fp = build_fingerprint(2222, "tcp", responses, now=TIME, version="7.93")
    for text in (fp, "\n".join(wrap_fingerprint(fp))):
        record = parse_fingerprint(text)
        assert (record.port, record.protocol) == (2222, "tcp")
        assert record.fields["V"] == "7.93"
        assert record.fields["Time"] == "6B0203E0"
        assert [(n, d) for n, _, d in record.responses] == responses
        assert [n for _, n, _ in record.responses] == [10, 15]


def test_parse_rejects_other_text() -> None:
    with pytest.raises(ValueError, match="OS:SCAN"):
        parse_fingerprint("OS:SCAN(V=7.93)")


@given(st.binary(max_size=300))
def test_escape_round_trips(data: bytes) -> None:
    text = escape_response(data)
    assert text.isascii()
    assert text.isprintable()
    assert " " not in text
    assert unescape_response(text) == data


@given(st.lists(st.tuples(st.from_regex(r"[A-Za-z][\w-]{0,15}", fullmatch=True), st.binary())))
def test_build_parse_round_trip(responses: list[tuple[str, bytes]]) -> None:
    fp = build_fingerprint(1, "tcp", responses, now=TIME)
    assert len(fp) <= FINGERPRINT_LIMIT + 1
    record = parse_fingerprint(fp)
    kept = [(name, data) for name, data in responses if data]
    assert len(record.responses) <= len(kept)
    for (name, length, data), (want_name, want) in zip(record.responses, kept, strict=False):
        assert name == want_name
        assert length == len(want)
        assert want.startswith(data)
