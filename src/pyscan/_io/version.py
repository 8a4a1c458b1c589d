"""Version detection's IO: connections, TLS, datagrams and bounded reads.

The decisions (which probe, when to stop, what the answer is) belong to the pure
:class:`~pyscan.service._engine.ServiceDetection`; this module only performs its steps:
connect (or reuse the connection of a silent NULL probe), wrap in TLS when asked, send the
payload, and read until the probe's wait runs out, the peer closes, the response reaches
:data:`~pyscan.service._engine.MATCH_LIMIT` bytes or the engine reports a hard match.
Every await is bounded by a timeout and every read by a size, so hostile services
(floods, byte-a-second drips, garbage, instant closes, silence) cost at most the probe
waits, capped per port by ``port_timeout``. Ports run concurrently up to
``concurrency`` (also bounded by the open-file limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import platform
import ssl
import sys
import time
import typing
from collections.abc import Callable, Iterator, Sequence
from importlib import resources
from pathlib import Path

import attrs

from pyscan._io.connect import raise_nofile_limit
from pyscan._models import IPAddress, Protocol, Service
from pyscan.errors import DataFileError, OptionsError
from pyscan.service._engine import (
    MATCH_LIMIT,
    READ_LIMIT,
    Detection,
    ProbeReply,
    ProbeStep,
    ServiceDetection,
)
from pyscan.service._match import match_with_fallbacks
from pyscan.service._probes import ProbeDatabase, find_nmap_file, load_probes, parse_probes

__all__ = [
    "BUILTIN_PROBES",
    "detect_service",
    "detect_services",
    "load_builtin_db",
    "load_default_db",
]

BUILTIN_PROBES = "data/service-probes"  # inside the pyscan package
READ_CHUNK = 8192
CHECK_INTERVAL = 0.05  # match a trickling response at most this often (plus at its end)
DEFAULT_PORT_TIMEOUT = 120.0  # seconds per port, times timeout_scale
PROBES_AHEAD = 3  # probes of one port started before their turn (detect_service)

Target = tuple[IPAddress, Protocol, int]
Emit = Callable[[IPAddress, Protocol, int, Service | None, bool], None]
ServiceNames = Callable[[int, str], str | None]


# -- the probe database ------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def load_builtin_db() -> ProbeDatabase:
    """pyscan's own probe file, shipped in the package (parsed once per process)."""
    text = resources.files("pyscan").joinpath(BUILTIN_PROBES).read_bytes().decode("latin-1")
    return parse_probes(text, path="<pyscan>/" + BUILTIN_PROBES)


@functools.lru_cache(maxsize=4)
def _load_file(path: str, mtime_ns: int, lazy: bool) -> ProbeDatabase:
    del mtime_ns  # part of the cache key only
    return load_probes(path, lazy=lazy)


def _load_cached(path: str | os.PathLike[str], *, lazy: bool = False) -> ProbeDatabase:
    try:
        mtime = Path(path).stat().st_mtime_ns
    except OSError as exc:
        raise DataFileError(
            exc.errno, f"cannot read service-probe file: {exc.strerror}", os.fspath(path)
        ) from None
    return _load_file(os.fspath(path), mtime, lazy)


def load_default_db(
    path: str | os.PathLike[str] | None = None, *, use_nmap: bool | None = None
) -> ProbeDatabase:
    """The probe database for version detection.

    ``path``: that file. Otherwise ``use_nmap=True`` requires nmap's ``nmap-service-probes``
    (``$NMAPDIR``, /usr/share/nmap, /usr/local/share/nmap; :class:`DataFileError` when
    absent), ``use_nmap=False`` takes pyscan's built-in file, and ``None`` (the default)
    takes nmap's when installed and the built-in one otherwise, or always the built-in one
    when the environment sets ``PYSCAN_NO_NMAP_DATA=1``. Parsed files are cached.
    """
    if path is not None:
        return _load_cached(path)
    if use_nmap is None and os.environ.get("PYSCAN_NO_NMAP_DATA", "") not in ("", "0"):
        use_nmap = False
    if use_nmap is False:
        return load_builtin_db()
    found = find_nmap_file("nmap-service-probes")
    if found is not None:
        # nmap's own file is known to compile (tests/service/test_nmap_db.py): compile each
        # pattern on first use, which cuts loading from ~2.5 s to ~0.5 s.
        return _load_cached(found, lazy=True)
    if use_nmap:
        return load_probes()  # raises DataFileError naming the places searched
    return load_builtin_db()


# -- one step ----------------------------------------------------------------------------


def tls_client_context() -> ssl.SSLContext:
    """A TLS client context that talks to anything: no verification, old versions allowed."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE  # we identify services, we do not trust them
    with contextlib.suppress(ValueError, ssl.SSLError):
        ctx.minimum_version = ssl.TLSVersion.MINIMUM_SUPPORTED
    with contextlib.suppress(ssl.SSLError):
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    return ctx


class _Connection:
    """A stream connection kept between a silent NULL probe and the next probe."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    def close(self) -> None:
        # abort: no close handshake to wait for (a hostile peer could stall it)
        with contextlib.suppress(Exception):
            self.writer.transport.abort()


class _Checks(typing.Protocol):
    def check(self, step: ProbeStep, data: bytes) -> bool: ...


@attrs.frozen
class _HardMatch:
    """The early-stop test for a probe started ahead of its turn: stop reading at a hard
    match of any service, which is also when the engine would stop (a hard match always
    wins over a soft match, restricted or not)."""

    db: ProbeDatabase

    def check(self, step: ProbeStep, data: bytes) -> bool:
        result = match_with_fallbacks(self.db, step.probe, data[:READ_LIMIT])
        return result is not None and not result.soft


async def _read_stream(
    det: _Checks, step: ProbeStep, conn: _Connection, started: float
) -> ProbeReply:
    """Read a response until the wait ends, the peer closes, it is long or it matched."""
    loop = asyncio.get_running_loop()
    deadline = started + step.wait
    data = bytearray()
    closed = False
    pending = False  # data arrived that has not been matched yet
    last_check = float("-inf")
    try:
        while len(data) < MATCH_LIMIT:
            now = loop.time()
            if now >= deadline:
                break
            budget = min(deadline - now, CHECK_INTERVAL) if pending else deadline - now
            try:
                async with asyncio.timeout(budget):
                    chunk = await conn.reader.read(min(READ_CHUNK, READ_LIMIT - len(data)))
            except TimeoutError:
                if pending:
                    pending = False
                    last_check = loop.time()
                    if det.check(step, bytes(data)):
                        break
                continue
            if not chunk:
                closed = True
                break
            data += chunk
            if loop.time() - last_check >= CHECK_INTERVAL:
                pending = False
                last_check = loop.time()
                if det.check(step, bytes(data)):
                    break
            else:
                pending = True
    except (OSError, ssl.SSLError, EOFError):
        closed = True
    return ProbeReply(bytes(data), closed=closed, elapsed=loop.time() - started)


async def _tcp_step(
    det: _Checks,
    step: ProbeStep,
    address: IPAddress,
    port: int,
    *,
    conn: _Connection | None,
    tls: ssl.SSLContext,
) -> tuple[ProbeReply, _Connection | None]:
    loop = asyncio.get_running_loop()
    if conn is None or not step.reuse:
        if conn is not None:
            conn.close()
        connect_wait = max(step.wait, 1.0)
        try:
            async with asyncio.timeout(connect_wait):
                reader, writer = await asyncio.open_connection(
                    str(address),
                    port,
                    ssl=tls if step.tls else None,
                    ssl_handshake_timeout=connect_wait if step.tls else None,
                    limit=READ_LIMIT,
                )
        except ConnectionRefusedError:
            return ProbeReply(error="refused"), None
        except (OSError, ssl.SSLError, TimeoutError, EOFError):
            return ProbeReply(error="failed"), None
        conn = _Connection(reader, writer)
    started = loop.time()
    if step.probe.payload:
        try:
            conn.writer.write(step.probe.payload)
        except (OSError, RuntimeError):
            conn.close()
            return ProbeReply(closed=True, elapsed=loop.time() - started), None
    reply = await _read_stream(det, step, conn, started)
    if reply.closed:
        conn.close()
        return reply, None
    return reply, conn


class _Datagrams(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.queue: asyncio.Queue[bytes | OSError] = asyncio.Queue()
        self.size = 0

    def datagram_received(self, data: bytes, addr: object) -> None:
        if self.size < READ_LIMIT:  # a flood is dropped, not queued
            self.size += len(data)
            self.queue.put_nowait(data)

    def error_received(self, exc: Exception) -> None:
        if isinstance(exc, OSError):
            self.queue.put_nowait(exc)


async def _udp_step(det: _Checks, step: ProbeStep, address: IPAddress, port: int) -> ProbeReply:
    loop = asyncio.get_running_loop()
    try:
        transport, proto = await loop.create_datagram_endpoint(
            _Datagrams, remote_addr=(str(address), port)
        )
    except OSError:
        return ProbeReply(error="failed")
    started = loop.time()
    deadline = started + step.wait
    data = bytearray()
    try:
        transport.sendto(step.probe.payload)
        while len(data) < MATCH_LIMIT:
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            try:
                async with asyncio.timeout(remaining):
                    item = await proto.queue.get()
            except TimeoutError:
                break
            if isinstance(item, ConnectionRefusedError):
                if not data:
                    return ProbeReply(error="refused", elapsed=loop.time() - started)
                break
            if isinstance(item, OSError):
                continue  # other ICMP errors: keep listening until the wait ends
            data += item[: READ_LIMIT - len(data)]
            if det.check(step, bytes(data)):
                break
    finally:
        transport.abort()
    return ProbeReply(bytes(data), elapsed=loop.time() - started)


# -- one port ----------------------------------------------------------------------------


def _platform() -> str:
    machine = platform.machine() or "unknown"
    if sys.platform.startswith("linux"):
        return f"{machine}-pc-linux-gnu"
    return f"{machine}-{sys.platform}"


async def detect_service(
    address: IPAddress,
    protocol: Protocol,
    port: int,
    db: ProbeDatabase,
    *,
    intensity: int = 7,
    timeout_scale: float = 1.0,
    port_timeout: float | None = None,
    default_name: str | None = None,
    tls_context: ssl.SSLContext | None = None,
    ahead: int = PROBES_AHEAD,
) -> Detection:
    """Run version detection on one port and return the full :class:`Detection`.

    ``port_timeout`` caps the whole port (default 120 s times ``timeout_scale``); when it
    runs out, what was learnt so far is the answer. Never raises for anything the peer
    does.

    nmap sends a port's probes one after another, each waiting out its ``totalwaitms`` when
    the service says nothing that matches. Every probe but the one after a silent NULL probe
    uses a fresh connection, so up to ``ahead`` of the probes the engine will ask for next
    are started early, on connections of their own; the engine still takes their replies in
    its own order (:meth:`ServiceDetection.upcoming`), so the answer is the one sending them
    in turn would give, and a port that needs many probes takes a fraction of the time. The
    cost: probes a hard match makes unnecessary may already have gone out. ``ahead=0`` is
    nmap's strictly sequential behaviour.
    """
    if protocol not in ("tcp", "udp"):
        return Detection(None)
    det = ServiceDetection(db, port, protocol, intensity=intensity, timeout_scale=timeout_scale)
    tls = tls_context if tls_context is not None else tls_client_context()
    budget = DEFAULT_PORT_TIMEOUT * timeout_scale if port_timeout is None else port_timeout
    conn: _Connection | None = None
    early: dict[tuple[str, bool], asyncio.Task[ProbeReply]] = {}
    checker = _HardMatch(db)

    async def fetch(step: ProbeStep) -> ProbeReply:
        if protocol == "udp":
            return await _udp_step(checker, step, address, port)
        reply, extra = await _tcp_step(checker, step, address, port, conn=None, tls=tls)
        if extra is not None:
            extra.close()
        return reply

    try:
        async with asyncio.timeout(budget):
            while (step := det.next_step()) is not None:
                if ahead and not step.probe.is_null:
                    for up in det.upcoming(ahead):
                        key = (up.probe.name, up.tls)
                        if key not in early:
                            early[key] = asyncio.ensure_future(fetch(up))
                started = early.pop((step.probe.name, step.tls), None)
                if started is not None and not step.reuse:
                    reply = await started
                elif protocol == "tcp":
                    reply, conn = await _tcp_step(det, step, address, port, conn=conn, tls=tls)
                else:
                    reply = await _udp_step(det, step, address, port)
                det.on_reply(step, reply)
    except TimeoutError:
        pass
    finally:
        if conn is not None:
            conn.close()
        for task in early.values():
            task.cancel()
        await asyncio.gather(*early.values(), return_exceptions=True)
    return det.result(now=time.time(), default_name=default_name, platform=_platform())


async def detect_services(
    targets: Sequence[Target],
    db: ProbeDatabase,
    *,
    intensity: int = 7,
    concurrency: int = 64,
    timeout_scale: float = 1.0,
    emit: Emit | None = None,
    port_timeout: float | None = None,
    service_names: ServiceNames | None = None,
) -> dict[Target, tuple[Service | None, bool]]:
    """Version-detect every ``(address, protocol, port)``; at most ``concurrency`` at once.

    Returns, per target, the :class:`~pyscan._models.Service` found (``None`` when nothing
    answered, the port refused or is excluded by the probe file, or the protocol is not
    TCP/UDP: keep the services-table name) and whether the port answered any probe (a UDP
    ``open|filtered`` port that answered is ``open``). ``emit`` is called as each port
    finishes. ``service_names(port, protocol)`` names services that answered but matched
    nothing (nmap uses its services table; default ``"unknown"``). ``timeout_scale``
    multiplies every wait of the probe file; ``port_timeout`` caps one port.
    """
    if not 0 <= intensity <= 9:
        raise OptionsError(f"version intensity must be 0-9, not {intensity!r}")
    if concurrency < 1:
        raise OptionsError(f"concurrency must be at least 1, not {concurrency!r}")
    if not 0 < timeout_scale <= 100:
        raise OptionsError(f"timeout_scale must be in (0, 100], not {timeout_scale!r}")
    limit = raise_nofile_limit()
    workers_wanted = max(1, min(concurrency, len(targets), max(1, limit - 64)))
    tls = tls_client_context()
    results: dict[Target, tuple[Service | None, bool]] = {}
    queue: Iterator[Target] = iter(list(dict.fromkeys(targets)))

    async def worker() -> None:
        for target in queue:
            address, protocol, port = target
            name = service_names(port, protocol) if service_names is not None else None
            found = await detect_service(
                address,
                protocol,
                port,
                db,
                intensity=intensity,
                timeout_scale=timeout_scale,
                port_timeout=port_timeout,
                default_name=name,
                tls_context=tls,
            )
            results[target] = (found.service, found.answered)
            if emit is not None:
                emit(address, protocol, port, found.service, found.answered)

    tasks = [asyncio.ensure_future(worker()) for _ in range(workers_wanted if targets else 0)]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return results
