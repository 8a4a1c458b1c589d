"""nmap's own nmap-service-probes: every line parses, every pattern compiles, nmap's answers.

The file is read from the nmap installation at test time (never copied into the repository);
the tests skip when it is absent. One module-scoped fixture parses it once.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyscan.service import (
    MatchResult,
    ProbeDatabase,
    find_nmap_file,
    load_probes,
    match_response,
    match_with_fallbacks,
)

pytestmark = pytest.mark.nmap

NMAP_PROBES = find_nmap_file("nmap-service-probes")


@pytest.fixture(scope="module")
def nmap_db() -> ProbeDatabase:
    if NMAP_PROBES is None:
        pytest.skip(
            "nmap-service-probes not found ($NMAPDIR, /usr/share/nmap, /usr/local/share/nmap)"
        )
    started = time.perf_counter()
    db = load_probes(NMAP_PROBES)
    print(f"\nparsed and compiled {NMAP_PROBES} in {time.perf_counter() - started:.2f} s")
    return db


def _raw_lines() -> list[str]:
    assert NMAP_PROBES is not None
    return Path(NMAP_PROBES).read_bytes().decode("latin-1").split("\n")


def test_every_line_is_parsed(nmap_db: ProbeDatabase) -> None:
    lines = _raw_lines()
    numbered = list(enumerate(lines, start=1))
    match_lines = {n for n, text in numbered if text.startswith("match ")}
    soft_lines = {n for n, text in numbered if text.startswith("softmatch ")}
    probe_lines = {n for n, text in numbered if text.startswith("Probe ")}
    matches = [m for probe in nmap_db.probes for m in probe.matches]
    assert {m.line for m in matches if not m.soft} == match_lines
    assert {m.line for m in matches if m.soft} == soft_lines
    assert {p.line for p in nmap_db.probes} == probe_lines
    print(f"\n{len(probe_lines)} probes, {len(match_lines)} matches, {len(soft_lines)} softmatches")
    assert len(match_lines) > 10_000
    assert len(soft_lines) > 100
    assert len(probe_lines) > 100
    # every other non-comment line is a probe directive the parser accepted
    known = ("Exclude ", "ports ", "sslports ", "rarity ", "fallback ", "totalwaitms ",
             "tcpwrappedms ")  # fmt: skip
    for text in lines:
        stripped = text.strip()
        if stripped and not stripped.startswith("#"):
            assert stripped.startswith((*known, "match ", "softmatch ", "Probe ")), text


def test_every_pattern_compiled(nmap_db: ProbeDatabase) -> None:
    for probe in nmap_db.probes:
        for match in probe.matches:
            assert isinstance(match.pattern, re.Pattern)
            assert bool(match.pattern.flags & re.IGNORECASE) == ("i" in match.flags)
            assert bool(match.pattern.flags & re.DOTALL) == ("s" in match.flags)


def test_directives(nmap_db: ProbeDatabase) -> None:
    assert nmap_db.exclude == (("tcp", 9100, 9107),)
    null = nmap_db.null_probe
    assert null is not None
    assert null.name == "NULL"
    assert null.line == min(p.line for p in nmap_db.probes)
    get = nmap_db.get("GetRequest", "tcp")
    assert get is not None
    assert get.payload == b"GET / HTTP/1.0\r\n\r\n"
    assert 80 in get.ports
    assert 443 in get.sslports
    assert nmap_db.fallback_chain(get)[-1] is null
    assert any(p.fallback for p in nmap_db.probes)
    assert all(1 <= p.rarity <= 9 for p in nmap_db.probes)
    assert all(nmap_db.fallback_chain(p)[0] is p for p in nmap_db.probes)


MYSQL_HANDSHAKE = (
    b"J\x00\x00\x00\n8.0.35-0ubuntu0.22.04.1\x00\x08\x00\x00\x00\x01\x02\x03\x04\x05\x06\x07"
    b"\x08\x00\xff\xff\xff\x02\x00\xff\xdf\x15\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x01\x02"
    b"\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x00caching_sha2_password\x00"
)

# Banners sent on connect (nmap's NULL probe) and what nmap 7.93 reports for them
# (service, product, version, extrainfo, hostname, ostype, cpe); None for a soft match.
NULL_BANNERS: list[tuple[bytes, str, tuple[object, ...] | None]] = [
    (
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        "ssh",
        ("OpenSSH", "9.2p1 Debian 2+deb12u3", "protocol 2.0", None, "Linux",
         ("cpe:/a:openbsd:openssh:9.2p1", "cpe:/o:linux:linux_kernel")),
    ),
    (
        b"220 (vsFTPd 3.0.3)\r\n",
        "ftp",
        ("vsftpd", "3.0.3", None, None, "Unix", ("cpe:/a:vsftpd:vsftpd:3.0.3",)),
    ),
    (
        b"220 ProFTPD 1.3.8 Server (Debian) [::ffff:127.0.0.1]\r\n",
        "ftp",
        ("ProFTPD", "1.3.8", None, None, "Unix", ("cpe:/a:proftpd:proftpd:1.3.8",)),
    ),
    (
        b"220 mail.example.org ESMTP Postfix (Debian/GNU)\r\n",
        "smtp",
        ("Postfix smtpd", None, None, " mail.example.org", None, ("cpe:/a:postfix:postfix",)),
    ),
    (
        b"220 mx.example.com ESMTP Exim 4.96 Mon, 01 Jan 2024 00:00:00 +0000\r\n",
        "smtp",
        ("Exim smtpd", "4.96", None, "mx.example.com", None, ("cpe:/a:exim:exim:4.96",)),
    ),
    (
        MYSQL_HANDSHAKE,
        "mysql",
        ("MySQL", "8.0.35-0ubuntu0.22.04.1", None, None, None,
         ("cpe:/a:mysql:mysql:8.0.35-0ubuntu0.22.04.1",)),
    ),
    (b"+OK Dovecot (Debian) ready.\r\n", "pop3", None),
]  # fmt: skip


def _fields(result: MatchResult) -> tuple[object, ...]:
    return (result.product, result.version, result.extrainfo, result.hostname,
            result.ostype, result.cpe)  # fmt: skip


@pytest.mark.parametrize(("banner", "service", "fields"), NULL_BANNERS)
def test_null_probe_banners_match_nmaps_answers(
    nmap_db: ProbeDatabase, banner: bytes, service: str, fields: tuple[object, ...] | None
) -> None:
    null = nmap_db.null_probe
    assert null is not None
    result = match_with_fallbacks(nmap_db, null, banner)
    assert result is not None
    assert result.service == service
    assert result.soft == (fields is None)
    if fields is not None:
        assert _fields(result) == fields


def test_probe_responses_match_nmaps_answers(nmap_db: ProbeDatabase) -> None:
    get = nmap_db.get("GetRequest", "tcp")
    redis = nmap_db.get("redis-server", "tcp")
    assert get is not None
    assert redis is not None
    nginx = match_with_fallbacks(
        nmap_db, get, b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Length: 0\r\n\r\n"
    )
    assert nginx is not None
    assert (nginx.service, nginx.product, nginx.version) == ("http", "nginx", "1.22.1")
    assert nginx.cpe == ("cpe:/a:igor_sysoev:nginx:1.22.1",)
    redis_get = match_with_fallbacks(
        nmap_db, get, b"-ERR wrong number of arguments for 'get' command\r\n"
    )
    assert redis_get is not None
    assert (redis_get.service, redis_get.product) == ("redis", "Redis key-value store")
    info = b"$3000\r\n# Server\r\nredis_version:7.0.11\r\nredis_git_sha1:00000000\r\n"
    redis_info = match_response(redis, info)
    assert redis_info is not None
    assert (redis_info.service, redis_info.version) == ("redis", "7.0.11")
    assert redis_info.cpe == ("cpe:/a:redislabs:redis:7.0.11",)


def test_nothing_matches_noise(nmap_db: ProbeDatabase) -> None:
    null = nmap_db.null_probe
    assert null is not None
    assert match_with_fallbacks(nmap_db, null, b"") is None
    assert match_with_fallbacks(nmap_db, null, b"\x8e\x13zq\x00\x01pyscan-unknown") is None


# -- nmap itself as the oracle ---------------------------------------------------------------


@pytest.fixture
def banner_servers() -> Iterator[dict[int, bytes]]:
    """Listeners on 127.0.0.1 that send one banner each to every connection."""
    servers: dict[int, bytes] = {}
    sockets: list[socket.socket] = []
    stop = threading.Event()

    def serve(listener: socket.socket, banner: bytes) -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            with conn:
                try:
                    conn.sendall(banner)
                    time.sleep(0.1)
                except OSError:
                    pass

    threads = []
    for banner, _, _ in NULL_BANNERS:
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        sockets.append(listener)
        servers[listener.getsockname()[1]] = banner
        thread = threading.Thread(target=serve, args=(listener, banner), daemon=True)
        thread.start()
        threads.append(thread)
    yield servers
    stop.set()
    for thread in threads:
        thread.join(2)
    for listener in sockets:
        listener.close()


@pytest.mark.skipif(shutil.which("nmap") is None, reason="nmap is not installed")
def test_same_answers_as_nmap_itself(
    nmap_db: ProbeDatabase, banner_servers: dict[int, bytes]
) -> None:
    ports = ",".join(str(port) for port in banner_servers)
    xml = subprocess.run(
        ["nmap", "-sT", "-Pn", "-n", "-sV", "-p", ports, "127.0.0.1", "-oX", "-"],
        capture_output=True,
        check=True,
        timeout=60,
        text=True,
    ).stdout
    null = nmap_db.null_probe
    assert null is not None
    compared = 0
    for port in ET.fromstring(xml).iter("port"):
        banner = banner_servers[int(port.get("portid", "0"))]
        service = port.find("service")
        assert service is not None
        ours = match_with_fallbacks(nmap_db, null, banner)
        assert ours is not None
        assert ours.service == service.get("name")
        if service.get("servicefp") is None:  # a hard match: every field as nmap has it
            assert not ours.soft
            theirs = (
                *(
                    service.get(key)
                    for key in ("product", "version", "extrainfo", "hostname", "ostype")
                ),
                tuple(cpe.text for cpe in service.iter("cpe")),
            )
            assert _fields(ours) == theirs
        compared += 1
    assert compared == len(banner_servers)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    probe=st.sampled_from(["NULL", "GetRequest", "GenericLines", "RTSPRequest", "Help"]),
    response=st.binary(max_size=48)
    | st.sampled_from([b for b, _, _ in NULL_BANNERS]).flatmap(
        lambda b: st.binary(max_size=6).map(lambda junk: b[: len(b) // 2] + junk)
    ),
)
def test_nmap_database_never_raises(nmap_db: ProbeDatabase, probe: str, response: bytes) -> None:
    found = nmap_db.get(probe, "tcp")
    assert found is not None
    result = match_with_fallbacks(nmap_db, found, response)
    if result is not None:
        for value in (result.service, result.product, result.version, result.extrainfo,
                      result.hostname, result.ostype, result.devicetype, *result.cpe):  # fmt: skip
            assert value is None or re.fullmatch(r"[\x20-\x7e]*", value)
