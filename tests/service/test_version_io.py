"""Version detection over real sockets on 127.0.0.1: fake and real servers, hostile peers.

Every server here listens on 127.0.0.1 only and is closed by the test that starts it.
Waits from the probe files are scaled down (``timeout_scale``) to keep the run short.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ipaddress
import os
import pwd
import random
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pyscan._io.version import detect_service, detect_services, load_builtin_db
from pyscan._models import Service
from pyscan.service import ProbeDatabase, find_nmap_file, load_probes, parse_probes

LOCAL = ipaddress.ip_address("127.0.0.1")
FAST = 0.02  # NULL probe 120 ms, others 100 ms
SCALE = 0.05  # NULL probe 300 ms, others 250 ms

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@contextlib.asynccontextmanager
async def tcp_server(handler: Handler, **kw: object) -> AsyncIterator[int]:
    tasks: set[asyncio.Task[None]] = set()
    writers: set[asyncio.StreamWriter] = set()

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.add(writer)
        try:
            await handler(reader, writer)
        except (OSError, asyncio.IncompleteReadError, ssl.SSLError):
            pass
        finally:
            writer.transport.abort()

    def spawn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        tasks.add(asyncio.ensure_future(guarded(reader, writer)))

    server = await asyncio.start_server(spawn, "127.0.0.1", 0, **kw)  # type: ignore[arg-type]
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for writer in writers:
            writer.transport.abort()  # handlers see the connection go and end by themselves
        pending = {t for t in tasks if not t.done()}
        if pending:
            _, pending = await asyncio.wait(pending, timeout=1)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def banner_then(banner: bytes, replies: dict[bytes, bytes] | None = None) -> Handler:
    """Send ``banner``; answer requests starting with a key of ``replies``; hold the line."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if banner:
            writer.write(banner)
        while data := await reader.read(4096):
            for prefix, answer in (replies or {}).items():
                if data.startswith(prefix):
                    writer.write(answer)
                    break

    return handle


@pytest.fixture(scope="module")
def db() -> ProbeDatabase:
    return load_builtin_db()


async def detect_one(
    db: ProbeDatabase, port: int, protocol: str = "tcp", scale: float = SCALE, **kw: object
) -> tuple[Service | None, bool]:
    found = await detect_service(LOCAL, protocol, port, db, timeout_scale=scale, **kw)  # type: ignore[arg-type]
    return found.service, found.answered


# -- realistic servers through the built-in database ----------------------------------------

MARIADB_GREETING = (
    (b"\x0a5.5.5-10.11.6-MariaDB-0+deb12u1\0" + struct.pack("<I", 7) + b"abcdefgh\0")
    + struct.pack("<HBHH", 0xF7FE, 45, 2, 0x81FF)
    + b"\x15"
    + bytes(10)
    + b"ijklmnopqrst\0mysql_native_password\0"
)
BANNERS: list[tuple[bytes, dict[bytes, bytes], tuple[str, str | None, str | None]]] = [
    (
        b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\r\n",
        {},
        ("ssh", "OpenSSH", "9.2p1 Debian 2+deb12u3"),
    ),
    (b"220 (vsFTPd 3.0.3)\r\n", {}, ("ftp", "vsftpd", "3.0.3")),
    (b"220 mail.lab.example ESMTP Postfix (Debian/GNU)\r\n", {}, ("smtp", "Postfix smtpd", None)),
    (
        b"220 mx.lab.example ESMTP Exim 4.96 Sat, 21 Nov 2026 20:49:00 +0000\r\n",
        {},
        ("smtp", "Exim smtpd", "4.96"),
    ),
    (b"+OK Dovecot (Debian) ready.\r\n", {}, ("pop3", "Dovecot pop3d", None)),
    (
        (
            b"* OK [CAPABILITY IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS "
            b"AUTH=PLAIN] Dovecot (Debian) ready.\r\n"
        ),
        {},
        ("imap", "Dovecot imapd", None),
    ),
    (
        len(MARIADB_GREETING).to_bytes(3, "little") + b"\0" + MARIADB_GREETING,
        {},
        ("mysql", "MySQL", "5.5.5-10.11.6-MariaDB-0+deb12u1"),
    ),
    (b"\xff\xfd\x18\xff\xfd\x20\xff\xfd\x23\xff\xfd\x27", {}, ("telnet", "Linux telnetd", None)),
    (
        b"",
        {b"*1\r\n$4\r\nINFO": b"$40\r\n# Server\r\nredis_version:7.0.15\r\nredis_mode:x\r\n"},
        ("redis", "Redis key-value store", "7.0.15"),
    ),
    (b"", {b"version\r\n": b"VERSION 1.6.18\r\n"}, ("memcached", "Memcached", "1.6.18")),
    (
        b"",
        {b"\0\0\0\x25\0\x03\0\0": b"R\0\0\0\x17\0\0\0\x0aSCRAM-SHA-256\0\0"},
        ("postgresql", "PostgreSQL DB", None),
    ),
    (
        b"",
        {b"GET / ": b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\nhello"},
        ("http", "nginx", "1.22.1"),
    ),
]


async def test_realistic_servers_with_builtin_db(db: ProbeDatabase) -> None:
    async with contextlib.AsyncExitStack() as stack:
        ports = [
            await stack.enter_async_context(tcp_server(banner_then(b, r))) for b, r, _ in BANNERS
        ]
        emitted: list[int] = []
        started = time.monotonic()
        results = await detect_services(
            [(LOCAL, "tcp", p) for p in ports],
            db,
            timeout_scale=SCALE,
            emit=lambda a, pr, po, s, ans: emitted.append(po),
        )
        elapsed = time.monotonic() - started
    assert sorted(emitted) == sorted(ports)
    for port, (_, _, expected) in zip(ports, BANNERS, strict=True):
        service, answered = results[(LOCAL, "tcp", port)]
        assert service is not None, expected
        assert (service.name, service.product, service.version) == expected
        assert service.method == "probed"
        assert answered
    # the slowest (PostgreSQL: six probes before its own) needs about two seconds at SCALE
    assert elapsed < 6


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - stdlib name
        pass


@contextlib.contextmanager
def python_http_server() -> Iterator[int]:
    handler = functools.partial(_QuietHandler, directory=tempfile.gettempdir())
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


async def test_python_http_server(db: ProbeDatabase) -> None:
    with python_http_server() as port:
        service, answered = await detect_one(db, port)
    assert service is not None
    assert (service.name, service.product, service.version) == ("http", "SimpleHTTPServer", "0.6")
    assert service.extrainfo is not None
    assert service.extrainfo.startswith("Python 3.")
    assert answered


@pytest.fixture(scope="module")
def tls_server_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed: cannot make a test certificate")
    where = tmp_path_factory.mktemp("tls")
    key, cert = where / "key.pem", where / "cert.pem"
    subprocess.run(
        [
            *(openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=lab"),
        ],
        check=True,
        capture_output=True,
    )
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    return ctx


async def test_tls_service_is_detected_inside_tls(
    db: ProbeDatabase, tls_server_context: ssl.SSLContext
) -> None:
    handler = banner_then(b"", {b"GET / ": b"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\n\r\n"})
    async with tcp_server(handler, ssl=tls_server_context) as port:
        service, _ = await detect_one(db, port)
        imap = banner_then(b"* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n")
        async with tcp_server(imap, ssl=tls_server_context) as imaps:
            service_993, _ = await detect_one(db, imaps)
    assert service is not None
    assert (service.name, service.product, service.version, service.tunnel) == (
        "http",
        "nginx",
        "1.22.1",
        "ssl",
    )
    assert service_993 is not None
    assert (service_993.name, service_993.product, service_993.tunnel) == (
        "imap",
        "Dovecot imapd",
        "ssl",
    )


# -- UDP ------------------------------------------------------------------------------------


class _UdpResponder(asyncio.DatagramProtocol):
    def __init__(self, replies: dict[bytes, bytes]) -> None:
        self.replies = replies
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        for prefix, answer in self.replies.items():
            if data.startswith(prefix) and self.transport is not None:
                self.transport.sendto(answer, addr)


@contextlib.asynccontextmanager
async def udp_server(replies: dict[bytes, bytes]) -> AsyncIterator[int]:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _UdpResponder(replies), local_addr=("127.0.0.1", 0)
    )
    try:
        yield transport.get_extra_info("sockname")[1]
    finally:
        transport.close()


def _dns_answer(txt: bytes) -> bytes:
    question = b"\x07version\x04bind\0\0\x10\0\x03"
    rdata = bytes([len(txt)]) + txt
    answer = b"\xc0\x0c\0\x10\0\x03\0\0\0\0" + struct.pack("!H", len(rdata)) + rdata
    return b"ps\x84\x00\0\x01\0\x01\0\0\0\0" + question + answer


def _snmp_answer(descr: bytes) -> bytes:
    def tlv(tag: int, body: bytes) -> bytes:
        return bytes([tag, len(body)]) + body

    varbind = tlv(0x30, tlv(0x06, bytes.fromhex("2b06010201010100")) + tlv(0x04, descr))
    pdu = tlv(0xA2, tlv(2, b"pysc") + tlv(2, b"\0") + tlv(2, b"\0") + tlv(0x30, varbind))
    return tlv(0x30, tlv(2, b"\0") + tlv(4, b"public") + pdu)


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_udp_services(db: ProbeDatabase) -> None:
    dns = {b"ps\0\0\0\x01": _dns_answer(b"dnsmasq-2.89")}
    ntp = {b"\x23\0": bytes([0x24, 2, 6, 0xE9]) + bytes(44)}
    snmp = {b"0\x29\x02\x01\x00\x04\x06public": _snmp_answer(b"Linux lab 6.1.0-18-amd64 #1")}
    async with (
        udp_server(dns) as p1,
        udp_server(ntp) as p2,
        udp_server(snmp) as p3,
        udp_server({}) as silent,
    ):
        closed = _free_udp_port()
        ports = [p1, p2, p3, silent, closed]
        results = await detect_services([(LOCAL, "udp", p) for p in ports], db, timeout_scale=SCALE)
    got = {p: results[(LOCAL, "udp", p)] for p in ports}

    def fields(port: int, *names: str) -> tuple[object, ...]:
        service = got[port][0]
        assert service is not None
        return tuple(getattr(service, name) for name in names)

    assert fields(p1, "name", "product", "version") == ("domain", "dnsmasq", "2.89")
    assert fields(p2, "name", "product", "extrainfo") == ("ntp", "NTP", "secondary server")
    assert fields(p3, "name", "product", "hostname") == ("snmp", "SNMPv1 server", "lab")
    assert all(got[p][1] for p in (p1, p2, p3))  # answered: open|filtered -> open
    assert got[silent] == (None, False)
    assert got[closed] == (None, False)


async def test_udp_unmatched_answer_opens_port_with_fingerprint(db: ProbeDatabase) -> None:
    async with udp_server({b"": b"\x00\x01who are you?"}) as port:
        service, answered = await detect_one(db, port, "udp")
    assert answered
    assert service is not None
    assert service.name == "unknown"
    assert service.fingerprint is not None
    assert service.fingerprint.startswith(f"SF-Port{port}-UDP:")


# -- hostile peers --------------------------------------------------------------------------


FLOOD_CHUNK = random.Random(1).randbytes(65536)


async def _flood(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    for _ in range(16):  # 1 MiB
        writer.write(FLOOD_CHUNK)
        await writer.drain()
    await reader.read()  # hold until the client goes


async def _drip(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    rng = random.Random(2)
    while True:
        writer.write(bytes([rng.randrange(256)]))
        await writer.drain()
        await asyncio.sleep(0.01)


async def _close_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.close()


async def _reset_at_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read()


async def _garbage_and_close(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    writer.write(os.urandom(300) + b'\xff\xff\x00\r\n%r("')
    await writer.drain()
    writer.close()


async def _fake_tls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    # looks like a ServerHello to any request, but no TLS handshake ever completes
    while await reader.read(4096):
        writer.write(b"\x16\x03\x03\x00\x05\x02\x00\x00\x01\x03\x03garbage")


HOSTILE: list[tuple[str, Handler, Callable[[Service | None, bool], bool]]] = [
    ("flood", _flood, lambda s, a: a and s is not None and s.fingerprint is not None),
    ("drip", _drip, lambda s, a: a and s is not None and s.fingerprint is not None),
    ("close", _close_at_once, lambda s, a: s is not None and s.name == "tcpwrapped"),
    ("reset", _reset_at_once, lambda s, a: s is not None and s.name == "tcpwrapped"),
    ("silent", _silent, lambda s, a: s is None and not a),
    ("garbage", _garbage_and_close, lambda s, a: a and s is not None and s.name == "unknown"),
    ("fake-tls", _fake_tls, lambda s, a: s is not None and (s.name, s.tunnel) == ("ssl", None)),
]


async def test_hostile_servers_are_bounded_and_never_raise(db: ProbeDatabase) -> None:
    async with contextlib.AsyncExitStack() as stack:
        ports = [await stack.enter_async_context(tcp_server(h)) for _, h, _ in HOSTILE]
        started = time.monotonic()
        results = await detect_services([(LOCAL, "tcp", p) for p in ports], db, timeout_scale=FAST)
        elapsed = time.monotonic() - started
    for port, (name, _, ok) in zip(ports, HOSTILE, strict=True):
        service, answered = results[(LOCAL, "tcp", port)]
        assert ok(service, answered), (name, service, answered)
        if service is not None and service.fingerprint is not None:
            assert len(service.fingerprint) <= 1001
    # seven probe waits at most (0.12 + 6 * 0.1 s), run side by side; generous for slow CI
    assert elapsed < 5


async def test_port_timeout_caps_a_drip(db: ProbeDatabase) -> None:
    async with tcp_server(_drip) as port:
        started = time.monotonic()
        found = await detect_service(LOCAL, "tcp", port, db, timeout_scale=1.0, port_timeout=0.5)
        elapsed = time.monotonic() - started
    assert elapsed < 1.5
    assert found.service is None or found.service.name != "tcpwrapped"


async def test_closed_tcp_port(db: ProbeDatabase) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused
        found = await detect_service(LOCAL, "tcp", port, db, timeout_scale=FAST)
    assert found.closed
    assert found.service is None
    assert found.probes_sent == 1


async def test_many_ports_respect_concurrency(db: ProbeDatabase) -> None:
    active = peak = 0

    async def counting(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # a client waits for the banner: while we hold it back, its detection is running
        nonlocal active, peak
        active += 1
        peak = max(peak, active)
        await asyncio.sleep(0.03)
        active -= 1
        writer.write(b"SSH-2.0-OpenSSH_9.6\r\n")
        await reader.read()

    async with contextlib.AsyncExitStack() as stack:
        ports = [await stack.enter_async_context(tcp_server(counting)) for _ in range(20)]
        results = await detect_services(
            [(LOCAL, "tcp", p) for p in ports], db, concurrency=4, timeout_scale=FAST
        )
    assert len(results) == 20
    assert all(s is not None and s.product == "OpenSSH" for s, _ in results.values())
    assert 1 < peak <= 4


# -- a real PostgreSQL -----------------------------------------------------------------------


def _postgres_bin() -> Path | None:
    for version in ("17", "16", "15", "14", "13"):
        candidate = Path(f"/usr/lib/postgresql/{version}/bin")
        if (candidate / "initdb").exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def postgres_port() -> Iterator[int]:
    bindir = _postgres_bin()
    if bindir is None or os.geteuid() != 0:
        pytest.skip("needs PostgreSQL's binaries and root (to run them as postgres)")
    try:
        user = pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("no postgres user to run the server as")
    where = Path(tempfile.mkdtemp(prefix="pyscan-pg-"))
    proc: subprocess.Popen[bytes] | None = None
    try:
        os.chown(where, user.pw_uid, user.pw_gid)
        password = where / "pw"
        password.write_text("not-a-secret\n")
        os.chown(password, user.pw_uid, user.pw_gid)
        subprocess.run(
            [
                *(str(bindir / "initdb"), "-D", str(where / "data"), "-U", "postgres"),
                *("-A", "scram-sha-256", f"--pwfile={password}"),
            ],
            check=True,
            capture_output=True,
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
        )
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        proc = subprocess.Popen(
            [
                *(str(bindir / "postgres"), "-D", str(where / "data"), "-k", str(where)),
                *("-h", "127.0.0.1", "-p", str(port)),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
                break
            time.sleep(0.1)
        else:
            pytest.skip("PostgreSQL did not start")
        yield port
    finally:
        if proc is not None:
            proc.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(where, ignore_errors=True)


async def test_real_postgresql_with_builtin_db(db: ProbeDatabase, postgres_port: int) -> None:
    service, answered = await detect_one(db, postgres_port)
    assert service is not None
    assert (service.name, service.product) == ("postgresql", "PostgreSQL DB")
    assert answered


# -- nmap's database, and nmap itself as the oracle -----------------------------------------


@pytest.fixture(scope="module")
def nmap_db() -> ProbeDatabase:
    path = find_nmap_file("nmap-service-probes")
    if path is None:
        pytest.skip("nmap-service-probes not installed")
    return load_probes(path)


# Services that speak first and that nmap's file identifies on the banner alone (nmap's file
# only softmatches Debian's "Dovecot (Debian) ready." greeting, and keeps probing for long).
NMAP_BANNERS = [b for b in BANNERS if b[0] and b"Dovecot" not in b[0]]


@pytest.mark.nmap
async def test_real_postgresql_with_nmap_db(nmap_db: ProbeDatabase, postgres_port: int) -> None:
    # nmap 7.93 -sV answers "PostgreSQL DB 9.6.0 or later" here (a soft match, with a
    # fingerprint): the same algorithm over the same file must too
    service, _ = await detect_one(nmap_db, postgres_port)
    assert service is not None
    assert (service.name, service.product, service.version) == (
        "postgresql",
        "PostgreSQL DB",
        "9.6.0 or later",
    )
    assert service.fingerprint is not None
    assert "%r(SMBProgNeg," in service.fingerprint


@pytest.mark.nmap
async def test_realistic_servers_with_nmap_db(nmap_db: ProbeDatabase) -> None:
    async with contextlib.AsyncExitStack() as stack:
        ports = [
            await stack.enter_async_context(tcp_server(banner_then(b, r)))
            for b, r, _ in NMAP_BANNERS
        ]
        results = await detect_services(
            [(LOCAL, "tcp", p) for p in ports], nmap_db, timeout_scale=SCALE
        )
        with python_http_server() as http_port:
            http, _ = await detect_one(nmap_db, http_port)
    for port, (_, _, (name, product, _)) in zip(ports, NMAP_BANNERS, strict=True):
        service, _ = results[(LOCAL, "tcp", port)]
        assert service is not None
        assert (service.name, service.product) == (name, product)
    assert http is not None
    assert (http.name, http.product, http.version) == ("http", "SimpleHTTPServer", "0.6")


@pytest.mark.nmap
@pytest.mark.slow
async def test_same_answers_as_nmap(nmap_db: ProbeDatabase, db: ProbeDatabase) -> None:
    """With nmap's file every field equals nmap's; with ours, service and product do."""
    nmap = shutil.which("nmap")
    if nmap is None:
        pytest.skip("nmap not installed")
    async with contextlib.AsyncExitStack() as stack:
        ports = [
            await stack.enter_async_context(tcp_server(banner_then(b, r)))
            for b, r, _ in NMAP_BANNERS
        ]
        spec = ",".join(map(str, ports))
        proc = await asyncio.create_subprocess_exec(
            nmap, "-sV", "-Pn", "-n", "-p", spec, "127.0.0.1", "-oX", "-",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )  # fmt: skip
        ours_task = asyncio.ensure_future(
            detect_services([(LOCAL, "tcp", p) for p in ports], nmap_db, timeout_scale=SCALE)
        )
        builtin_task = asyncio.ensure_future(
            detect_services([(LOCAL, "tcp", p) for p in ports], db, timeout_scale=SCALE)
        )
        out, _ = await asyncio.wait_for(proc.communicate(), 120)
        ours = await ours_task
        builtin = await builtin_task
    theirs: dict[int, tuple[object, ...]] = {}
    for port_el in ET.fromstring(out).iter("port"):
        svc = port_el.find("service")
        assert svc is not None
        theirs[int(port_el.get("portid", "0"))] = (
            svc.get("name"),
            svc.get("product"),
            svc.get("version"),
            svc.get("extrainfo"),
            svc.get("hostname"),
            svc.get("ostype"),
            tuple(c.text or "" for c in svc.iter("cpe")),
        )
    for port in ports:
        service, _ = ours[(LOCAL, "tcp", port)]
        assert service is not None
        mine: tuple[object, ...] = (
            service.name,
            service.product,
            service.version,
            service.extrainfo,
            service.hostname,
            service.ostype,
            service.cpe,
        )
        assert mine == theirs[port], port
        own, _ = builtin[(LOCAL, "tcp", port)]
        assert own is not None
        assert (own.name, own.product) == theirs[port][:2]


async def test_probes_started_ahead_give_the_sequential_answer() -> None:
    """A server that answers only the third probe after NULL: with probes started ahead the
    engine takes the same replies in the same order, so the answer and the probes it counts
    are those of nmap's one-at-a-time order, in less time."""
    db = parse_probes(
        "Probe TCP NULL q||\ntotalwaitms 300\n"
        "Probe TCP One q|one\\r\\n|\nrarity 1\ntotalwaitms 300\n"
        "Probe TCP Two q|two\\r\\n|\nrarity 1\ntotalwaitms 300\n"
        "Probe TCP Three q|three\\r\\n|\nrarity 1\ntotalwaitms 300\n"
        "match third m|^THIRD (\\d)| p/Third/ v/$1/\n",
        "ahead-probes",
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), 2)
            if line == b"three\r\n":
                writer.write(b"THIRD 7\r\n")
                await writer.drain()
            await asyncio.sleep(1)
        except (TimeoutError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    addr = ipaddress.ip_address("127.0.0.1")
    try:
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        seq = await detect_service(addr, "tcp", port, db, ahead=0)
        t1 = loop.time()
        fast = await detect_service(addr, "tcp", port, db, ahead=3)
        t2 = loop.time()
    finally:
        server.close()
        await server.wait_closed()
    assert seq.service is not None
    assert fast.service is not None
    assert (fast.service.name, fast.service.product, fast.service.version) == (
        "third",
        "Third",
        "7",
    )
    assert fast.service == seq.service
    assert t2 - t1 < (t1 - t0) * 0.8
