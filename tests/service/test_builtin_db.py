"""pyscan's own probe file (src/pyscan/data/service-probes): it parses, and it names services.

The sample answers are what the daemons send (banners as Debian packages configure them,
binary greetings built field by field from the protocol specifications).
"""

from __future__ import annotations

import struct
from pathlib import Path

import pytest

from pyscan._io.version import load_builtin_db, load_default_db
from pyscan.service import (
    MatchResult,
    ProbeDatabase,
    find_nmap_file,
    match_with_fallbacks,
    parse_probes,
)
from pyscan.service._engine import Detection, ProbeReply, ServiceDetection

BUILTIN = Path(__file__).parents[2] / "src" / "pyscan" / "data" / "service-probes"


@pytest.fixture(scope="module")
def db() -> ProbeDatabase:
    return load_builtin_db()


# -- sample answers -------------------------------------------------------------------------


def mysql_packet(payload: bytes, seq: int = 0) -> bytes:
    return len(payload).to_bytes(3, "little") + bytes([seq]) + payload


def mysql_greeting(version: bytes) -> bytes:
    payload = (
        b"\x0a"
        + version
        + b"\0"
        + struct.pack("<I", 31)  # connection id
        + b"8charslt\0"  # auth-plugin-data part 1 + filler
        + struct.pack("<HBHH", 0xF7FE, 45, 0x0002, 0x81FF)
        + b"\x15"
        + b"\0" * 10
        + b"twelve_chars\0mysql_native_password\0"
    )
    return mysql_packet(payload)


def dns_txt_answer(txt: bytes, *, tcp: bool) -> bytes:
    question = b"\x07version\x04bind\0\0\x10\0\x03"
    answer = b"\xc0\x0c\0\x10\0\x03\0\0\0\0" + struct.pack("!HB", len(txt) + 1, len(txt)) + txt
    message = b"ps\x84\x00\0\x01\0\x01\0\0\0\0" + question + answer
    return struct.pack("!H", len(message)) + message if tcp else message


def ber(tag: int, body: bytes) -> bytes:
    assert len(body) < 0x80
    return bytes([tag, len(body)]) + body


def snmp_get_response(descr: bytes) -> bytes:
    oid = ber(0x06, bytes.fromhex("2b06010201010100"))
    varbind = ber(0x30, oid + ber(0x04, descr))
    pdu = ber(0xA2, ber(0x02, b"pysc") + ber(0x02, b"\0") + ber(0x02, b"\0") + ber(0x30, varbind))
    return ber(0x30, ber(0x02, b"\0") + ber(0x04, b"public") + pdu)


def ntp_reply(first: int, stratum: int) -> bytes:
    return bytes([first, stratum, 6, 0xE9]) + bytes(28) + b"pyscan!!" + bytes(8)


HTTP_DATE = b"Date: Sat, 21 Nov 2026 20:49:00 GMT\r\n"
DEBIAN_UNAME = b"Linux lab-target 6.1.0-18-amd64 #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 x86_64"

# (probe, protocol, answer) -> (service, product, version, extrainfo, hostname, ostype)
SAMPLES: list[tuple[str, str, bytes, tuple[str | None, ...]]] = [
    (
        "NULL",
        "tcp",
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        ("ssh", "OpenSSH", "9.2p1 Debian 2+deb12u3", "protocol 2.0", None, "Linux"),
    ),
    (
        "NULL",
        "tcp",
        b"SSH-2.0-OpenSSH_8.9p1 Ubuntu-3ubuntu0.6\r\n",
        ("ssh", "OpenSSH", "8.9p1 Ubuntu 3ubuntu0.6", "Ubuntu Linux; protocol 2.0", None, "Linux"),
    ),
    (
        "NULL",
        "tcp",
        b"SSH-2.0-OpenSSH_9.6\r\n",
        ("ssh", "OpenSSH", "9.6", "protocol 2.0", None, None),
    ),
    (
        "NULL",
        "tcp",
        b"SSH-2.0-dropbear_2022.83\r\n",
        ("ssh", "Dropbear sshd", "2022.83", "protocol 2.0", None, None),
    ),
    ("NULL", "tcp", b"220 (vsFTPd 3.0.3)\r\n", ("ftp", "vsftpd", "3.0.3", None, None, "Unix")),
    (
        "NULL",
        "tcp",
        b"220 ProFTPD Server (Debian) [::ffff:198.18.0.2]\r\n",
        ("ftp", "ProFTPD", None, None, None, None),
    ),
    (
        "NULL",
        "tcp",
        b"220 mail.lab.example ESMTP Postfix (Debian/GNU)\r\n",
        ("smtp", "Postfix smtpd", None, None, "mail.lab.example", None),
    ),
    (
        "NULL",
        "tcp",
        b"220 mx.lab.example ESMTP Exim 4.96 Sat, 21 Nov 2026 20:49:00 +0000\r\n",
        ("smtp", "Exim smtpd", "4.96", None, "mx.lab.example", None),
    ),
    (
        "NULL",
        "tcp",
        b"+OK Dovecot (Debian) ready.\r\n",
        ("pop3", "Dovecot pop3d", None, None, None, None),
    ),
    ("NULL", "tcp", b"+OK Dovecot ready.\r\n", ("pop3", "Dovecot pop3d", None, None, None, None)),
    (
        "NULL",
        "tcp",
        (
            b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS"
            b" AUTH=PLAIN] Dovecot (Debian) ready.\r\n"
        ),
        ("imap", "Dovecot imapd", None, None, None, None),
    ),
    (
        "NULL",
        "tcp",
        mysql_greeting(b"5.5.5-10.11.6-MariaDB-0+deb12u1"),
        ("mysql", "MySQL", "5.5.5-10.11.6-MariaDB-0+deb12u1", None, None, None),
    ),
    (
        "NULL",
        "tcp",
        mysql_greeting(b"8.0.36"),
        ("mysql", "MySQL", "8.0.36", None, None, None),
    ),
    (
        "NULL",
        "tcp",
        mysql_packet(
            b"\xff\x6a\x04Host '198.18.0.2' is not allowed to connect to this MariaDB server"
        ),
        ("mysql", "MariaDB", None, "unauthorized", None, None),
    ),
    (
        "NULL",
        "tcp",
        b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27",
        ("telnet", "Linux telnetd", None, None, None, "Linux"),
    ),
    (
        "NULL",
        "tcp",
        b"\xff\xfd\x01\xff\xfd\x1f\xff\xfb\x01\xff\xfb\x03\r\nlab login: ",
        ("telnet", "BusyBox telnetd", None, None, None, None),
    ),
    ("NULL", "tcp", b"\xff\xfb\x01\xff\xfb\x03", ("telnet", None, None, None, None, None)),
    (
        "GetRequest",
        "tcp",
        b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n" + HTTP_DATE + b"\r\n<html>",
        ("http", "nginx", "1.22.1", None, None, None),
    ),
    (
        "GetRequest",
        "tcp",
        b"HTTP/1.1 200 OK\r\n" + HTTP_DATE + b"Server: Apache/2.4.57 (Debian)\r\n"
        b"Content-Length: 10701\r\n\r\n",
        ("http", "Apache httpd", "2.4.57", "(Debian)", None, None),
    ),
    (
        "GetRequest",
        "tcp",
        b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\nServer: lighttpd/1.4.69\r\n\r\n",
        ("http", "lighttpd", "1.4.69", None, None, None),
    ),
    (
        "GetRequest",
        "tcp",
        b"HTTP/1.0 200 OK\r\nServer: SimpleHTTP/0.6 Python/3.11.2\r\n" + HTTP_DATE + b"\r\n",
        ("http", "SimpleHTTPServer", "0.6", "Python 3.11.2", None, None),
    ),
    (
        "GetRequest",
        "tcp",
        b"HTTP/1.1 404 Not Found\r\nServer: Zorg/0.1\r\n\r\n",
        ("http", None, None, None, None, None),
    ),
    (
        "GetRequest",
        "tcp",
        (
            b"HTTP/1.1 400 Bad Request\r\nServer: nginx/1.22.1\r\n\r\n<html>\r\n<center>The"
            b" plain HTTP request was sent to HTTPS port</center>\r\n"
        ),
        ("ssl", None, None, None, None, None),
    ),
    (
        "GetRequest",
        "tcp",
        b"-ERR wrong number of arguments for 'get' command\r\n",
        ("redis", "Redis key-value store", None, None, None, None),
    ),
    (
        "TLSClientHello",
        "tcp",
        b"\x16\x03\x03\x00\x5d\x02\x00\x00\x59\x03\x03" + bytes(32) + b"\x20" + bytes(32),
        ("ssl", None, None, None, None, None),
    ),
    (
        "TLSClientHello",
        "tcp",
        b"\x15\x03\x01\x00\x02\x02\x46",
        ("ssl", None, None, None, None, None),
    ),
    (
        "RedisInfo",
        "tcp",
        b"$3842\r\n# Server\r\nredis_version:7.0.15\r\nredis_git_sha1:00000000\r\n",
        ("redis", "Redis key-value store", "7.0.15", None, None, None),
    ),
    (
        "RedisInfo",
        "tcp",
        b"-NOAUTH Authentication required.\r\n",
        ("redis", "Redis key-value store", None, None, None, None),
    ),
    (
        "MemcachedVersion",
        "tcp",
        b"VERSION 1.6.18\r\n",
        ("memcached", "Memcached", "1.6.18", None, None, None),
    ),
    (
        "PostgresStartup",
        "tcp",
        b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0",
        ("postgresql", "PostgreSQL DB", None, None, None, None),
    ),
    (
        "PostgresStartup",
        "tcp",
        (
            b'E\0\0\0\x6fSFATAL\0VFATAL\0C28000\0Mno pg_hba.conf entry for host "198.18.0.2"\0'
            b"Fauth.c\0L543\0RClientAuthentication\0\0"
        ),
        ("postgresql", "PostgreSQL DB", None, None, None, None),
    ),
    (
        "DNSVersionBindTCP",
        "tcp",
        dns_txt_answer(b"dnsmasq-2.89", tcp=True),
        ("domain", "dnsmasq", "2.89", None, None, None),
    ),
    (
        "DNSVersionBind",
        "udp",
        dns_txt_answer(b"dnsmasq-2.89", tcp=False),
        ("domain", "dnsmasq", "2.89", None, None, None),
    ),
    (
        "DNSVersionBind",
        "udp",
        dns_txt_answer(b"9.18.19-1~deb12u1-Debian", tcp=False),
        ("domain", "ISC BIND", "9.18.19-1~deb12u1", None, None, "Linux"),
    ),
    (
        "DNSVersionBind",
        "udp",
        dns_txt_answer(b"unbound 1.17.1", tcp=False),
        ("domain", "Unbound", "1.17.1", None, None, None),
    ),
    (
        "NTPClient",
        "udp",
        ntp_reply(0x24, 2),
        ("ntp", "NTP", "v4", "secondary server", None, None),
    ),
    (
        "NTPClient",
        "udp",
        ntp_reply(0xE4, 0),
        ("ntp", "NTP", "v4", "unsynchronized", None, None),
    ),
    (
        "SNMPv1GetPublic",
        "udp",
        snmp_get_response(DEBIAN_UNAME),
        ("snmp", "SNMPv1 server", None, "public", "lab-target", "Linux"),
    ),
    (
        "SNMPv1GetPublic",
        "udp",
        snmp_get_response(b"Cisco IOS Software"),
        ("snmp", "SNMPv1 server", None, "public", None, None),
    ),
]


def _fields(result: MatchResult | None) -> tuple[str | None, ...] | None:
    if result is None:
        return None
    return (
        result.service,
        result.product,
        result.version,
        result.extrainfo,
        result.hostname,
        result.ostype,
    )


# -- the file -------------------------------------------------------------------------------


def test_builtin_file_parses_without_errors(db: ProbeDatabase) -> None:
    again = parse_probes(BUILTIN.read_bytes().decode("latin-1"), str(BUILTIN))
    assert again.probes == db.probes
    assert db.null_probe is not None
    names = [(p.protocol, p.name) for p in db.probes]
    assert len(names) == len(set(names))
    lines = BUILTIN.read_text().splitlines()
    match_lines = [x for x in lines if x.startswith(("match ", "softmatch "))]
    assert sum(len(p.matches) for p in db.probes) == len(match_lines)
    assert sum(1 for x in lines if x.startswith("Probe ")) == len(db.probes)


REQUIRED = {
    "ssh",
    "http",
    "ftp",
    "smtp",
    "pop3",
    "imap",
    "redis",
    "memcached",
    "mysql",
    "postgresql",
    "domain",
    "ntp",
    "snmp",
    "telnet",
    "ssl",
}


def test_every_required_service_has_hard_matches(db: ProbeDatabase) -> None:
    hard = {m.service for p in db.probes for m in p.matches if not m.soft}
    assert hard >= REQUIRED


@pytest.mark.parametrize(
    ("probe", "protocol", "answer", "expected"),
    SAMPLES,
    ids=[f"{s[0]}-{s[3][0]}-{s[3][1]}-{i}" for i, s in enumerate(SAMPLES)],
)
def test_sample_answers_are_identified(
    db: ProbeDatabase, probe: str, protocol: str, answer: bytes, expected: tuple[str | None, ...]
) -> None:
    found = db.get(probe, protocol)  # type: ignore[arg-type]
    assert found is not None
    result = match_with_fallbacks(db, found, answer)
    assert _fields(result) == expected
    assert result is not None
    assert result.soft == (expected[1] is None and expected[0] in {"http"})


@pytest.mark.parametrize(
    "answer",
    [b"", b"\0" * 64, b"hello\r\n", b"220 ", b"HTTP/1.1", b"+OK", b"SSH-", b"\xff"],
)
def test_fragments_are_not_hard_matches(db: ProbeDatabase, answer: bytes) -> None:
    for probe in db.probes:
        result = match_with_fallbacks(db, probe, answer)
        assert result is None or result.soft or result.service == "telnet", (probe.name, result)


def test_no_match_line_is_taken_from_nmap() -> None:
    nmap = find_nmap_file("nmap-service-probes")
    if nmap is None:
        pytest.skip("nmap-service-probes not installed: nothing to compare with")
    theirs = set(nmap.read_bytes().decode("latin-1").splitlines())
    ours = [x for x in BUILTIN.read_text().splitlines() if x.startswith(("match", "softmatch"))]
    assert ours
    assert [x for x in ours if x in theirs] == []


def test_default_db_choice(monkeypatch: pytest.MonkeyPatch, db: ProbeDatabase) -> None:
    assert load_default_db(use_nmap=False) is db
    monkeypatch.setenv("PYSCAN_NO_NMAP_DATA", "1")
    assert load_default_db() is db
    assert load_default_db(BUILTIN).probes == db.probes
    monkeypatch.setenv("PYSCAN_NO_NMAP_DATA", "0")
    monkeypatch.setenv("NMAPDIR", "/nonexistent")
    if find_nmap_file("nmap-service-probes") is None:
        assert load_default_db() is db


# -- the algorithm over the built-in file ---------------------------------------------------


def detect(
    db: ProbeDatabase, port: int, protocol: str, answers: dict[tuple[bool, str], bytes]
) -> tuple[list[str], Detection]:
    det = ServiceDetection(db, port, protocol)  # type: ignore[arg-type]
    sent: list[str] = []
    while (step := det.next_step()) is not None:
        sent.append(("tls:" if step.tls else "") + step.probe.name)
        data = answers.get((step.tls, step.probe.name), b"")
        det.on_reply(step, ProbeReply(data, elapsed=0.01 if data else step.wait))
    return sent, det.result(now=0.0)


NGINX = b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\n"


@pytest.mark.parametrize(
    ("port", "protocol", "answers", "expected", "first_probes"),
    [
        (22, "tcp", {(False, "NULL"): SAMPLES[0][2]}, ("ssh", "OpenSSH", None), ["NULL"]),
        (80, "tcp", {(False, "GetRequest"): NGINX}, ("http", "nginx", None), ["NULL"]),
        (
            443,
            "tcp",
            {
                (False, "TLSClientHello"): b"\x16\x03\x03\0\x5d\x02\0\0\x59\x03\x03",
                (True, "GetRequest"): NGINX,
            },
            ("http", "nginx", "ssl"),
            ["NULL", "TLSClientHello", "tls:NULL", "tls:GetRequest"],
        ),
        (
            6379,
            "tcp",
            {(False, "RedisInfo"): b"$10\r\n# Server\r\nredis_version:7.0.15\r\n"},
            ("redis", "Redis key-value store", None),
            ["NULL", "RedisInfo"],
        ),
        (
            11211,
            "tcp",
            {(False, "MemcachedVersion"): b"VERSION 1.6.18\r\n"},
            ("memcached", "Memcached", None),
            ["NULL", "MemcachedVersion"],
        ),
        (
            5432,
            "tcp",
            {(False, "PostgresStartup"): b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0"},
            ("postgresql", "PostgreSQL DB", None),
            ["NULL", "PostgresStartup"],
        ),
        (
            53,
            "udp",
            {(False, "DNSVersionBind"): dns_txt_answer(b"dnsmasq-2.89", tcp=False)},
            ("domain", "dnsmasq", None),
            ["DNSVersionBind"],
        ),
        (
            123,
            "udp",
            {(False, "NTPClient"): ntp_reply(0x24, 3)},
            ("ntp", "NTP", None),
            ["NTPClient"],
        ),
        (
            161,
            "udp",
            {(False, "SNMPv1GetPublic"): snmp_get_response(DEBIAN_UNAME)},
            ("snmp", "SNMPv1 server", None),
            ["SNMPv1GetPublic"],
        ),
    ],
)
def test_detection_with_builtin_db(
    db: ProbeDatabase,
    port: int,
    protocol: str,
    answers: dict[tuple[bool, str], bytes],
    expected: tuple[str | None, ...],
    first_probes: list[str],
) -> None:
    sent, found = detect(db, port, protocol, answers)
    assert sent[: len(first_probes)] == first_probes
    assert found.service is not None
    assert (found.service.name, found.service.product, found.service.tunnel) == expected
    assert found.answered
