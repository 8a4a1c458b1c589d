"""Running a checked :class:`~pyscan._cli_args.CliConfig`: targets, the scan, outputs, signals.

How this works
--------------
Targets are parsed and their names resolved here (not in the API) so the command knows
every address, its user-given name and its family before anything is sent. The scan is a
:class:`~pyscan.ScanHandle` iterated inside the session's task: host results (discovery)
and port results are collected per host, and a host is *complete* when it is found down or
when all its expected port results (ports x scan types) have arrived. A complete host gets
its reverse-DNS name (looked up as soon as the host was known up) and is written to every
output as soon as every earlier target has been written, so outputs stream in target order,
as nmap prints a host group. Hosts left incomplete at the end (``--shard``, host
timeouts) are written after the scan, in target order.

SIGINT and SIGTERM cancel the session's task; leaving the ``async for`` cancels the scan,
whose own cleanup closes its sockets, and every output gets the hosts found so far and an
``interrupted`` footer. A progress task draws a live line on a terminal and prints
``--stats-every`` lines on stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import signal
import socket
import struct
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import attrs

from pyscan._api import ping_scan, scan
from pyscan._cli_args import CliConfig, OutputTarget, UsageError
from pyscan._handle import ScanHandle
from pyscan._io.resolver import Resolver
from pyscan._models import (
    Hostname,
    HostResult,
    HostStatus,
    IPAddress,
    PortResult,
    Reason,
    ReasonKind,
    ScanReport,
    ScanStats,
    merge_ports,
)
from pyscan._specs.ports import PortList
from pyscan._specs.services import default_services
from pyscan._specs.targets import (
    HostnameTarget,
    IPv4Range,
    IPv6Range,
    TargetSet,
    TargetSpec,
    parse_exclude,
    parse_targets,
    read_exclude_file,
    read_input_list,
)
from pyscan._version import __version__
from pyscan.errors import PyscanError, ScanError
from pyscan.output import (
    GrepableWriter,
    JsonLinesWriter,
    NormalWriter,
    OutputOptions,
    ReportWriter,
    XmlWriter,
)

__all__ = ["EXIT_INTERRUPTED", "Session", "interface_address", "run_session"]

EXIT_INTERRUPTED = 130
_LIVE_AFTER = 2.0  # seconds before the live progress line appears
_LIST_CHUNK = 256
_SIOCGIFADDR = 0x8915

_PHASE_TITLES = {
    "ping scan": "Ping Scan",
    "connect scan": "Connect Scan",
    "SYN stealth scan": "SYN Stealth Scan",
    "UDP scan": "UDP Scan",
}


def interface_address(name: str, *, ipv6: bool) -> str:
    """The address of interface ``name`` to send from (``-e``); UsageError if it has none."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        raise UsageError(f"-e: no network interface named {name!r}") from None
    if ipv6:
        try:
            lines = Path("/proc/net/if_inet6").read_text().splitlines()
        except OSError:
            lines = []
        found = [
            ipaddress.IPv6Address(bytes.fromhex(f[0]))
            for f in (line.split() for line in lines)
            if len(f) == 6 and f[5] == name
        ]
        found.sort(key=lambda a: a.is_link_local)
        if not found:
            raise UsageError(f"-e: interface {name!r} has no IPv6 address")
        return str(found[0])
    import fcntl  # noqa: PLC0415 - Linux only, and only for -e

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            raw = fcntl.ioctl(s.fileno(), _SIOCGIFADDR, struct.pack("256s", name.encode()[:15]))
        except OSError:
            raise UsageError(f"-e: interface {name!r} has no IPv4 address") from None
    return socket.inet_ntoa(raw[20:24])


def _clock(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


@attrs.define
class _Outputs:
    """The requested writers and the files they own."""

    writers: list[ReportWriter] = attrs.field(factory=list)
    files: list[TextIO] = attrs.field(factory=list)

    def start(self, report: ScanReport) -> None:
        for w in self.writers:
            w.start(report)

    def host(self, host: HostResult) -> None:
        for w in self.writers:
            w.host(host)

    def finish(self, stats: ScanStats, error: str | None = None) -> None:
        for w in self.writers:
            w.finish(stats, error=error)

    def close(self) -> None:
        for f in self.files:
            with contextlib.suppress(OSError):
                f.close()


def _uncancel() -> None:
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


@attrs.define
class Session:
    """One run of the command: ``await Session(cfg, stdout, stderr).run()`` -> exit code.

    PyscanErrors raised before any output was started (targets, output files, options)
    propagate; errors during the scan are written to every output as the footer and then
    propagate too.
    """

    cfg: CliConfig
    stdout: TextIO
    stderr: TextIO
    started: float = attrs.field(factory=time.time)
    interrupted: bool = False
    outputs: _Outputs = attrs.field(factory=_Outputs)
    resolver: Resolver | None = None
    handle: ScanHandle[Any] | None = None
    addresses: list[IPAddress] = attrs.field(factory=list)
    user_names: dict[IPAddress, str] = attrs.field(factory=dict)
    hosts: dict[IPAddress, HostResult] = attrs.field(factory=dict)
    ports: dict[IPAddress, list[PortResult]] = attrs.field(factory=dict)
    # the last result's address, its list in ``ports`` and its ``expected`` count (results
    # come host by host: an address object hashes in Python code, so once per host)
    _last_address: IPAddress | None = None
    _last_ports: list[PortResult] | None = None
    _last_expected: int | None = None
    #: Port results a host known to be up will have in all: once its list in ``ports`` is
    #: that long, it is complete.
    expected: dict[IPAddress, int] = attrs.field(factory=dict)
    written: set[IPAddress] = attrs.field(factory=set)
    #: Finished hosts waiting for an earlier target to finish (output is in target order).
    ready: dict[IPAddress, HostResult] = attrs.field(factory=dict)
    cursor: int = 0
    names: dict[IPAddress, asyncio.Task[str | None]] = attrs.field(factory=dict)
    pending: set[asyncio.Task[None]] = attrs.field(factory=set)
    live_shown: bool = False
    packets: tuple[int, int] = (0, 0)
    _task: asyncio.Task[Any] | None = None

    def note(self, text: str) -> None:
        """One ``pyscan: ...`` line on stderr (clearing the live progress line first)."""
        self._clear_live()
        self.stderr.write(f"pyscan: {text}\n")
        self.stderr.flush()

    # -- the run ---------------------------------------------------------------------------

    async def run(self) -> int:
        """Run the command and return its exit code."""
        for notice in self.cfg.notices:
            self.note(f"note: {notice}")
        self.resolver = Resolver(self.cfg.dns_servers or None)
        loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self._on_signal)
        try:
            try:
                target_set = await self._targets()
            except asyncio.CancelledError:
                if not self.interrupted:
                    raise
                _uncancel()
                self.note("interrupted before the scan started")
                return EXIT_INTERRUPTED
            if self.cfg.mode == "list":
                self._open_outputs()
                return await self._list(target_set)
            return await self._scan(target_set)
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            self._clear_live()
            await self.resolver.close()
            self.outputs.close()

    def _on_signal(self) -> None:
        self.interrupted = True
        if self._task is not None and not self._task.done():
            self._task.cancel()

    # -- targets ---------------------------------------------------------------------------

    async def _targets(self) -> TargetSet:
        cfg = self.cfg
        spec = parse_targets(cfg.targets, allow_empty=True)
        if cfg.input_list is not None:
            spec = spec + read_input_list(cfg.input_list)
        excluded = parse_exclude(cfg.exclude)
        if cfg.exclude_file is not None:
            excluded = excluded + read_exclude_file(cfg.exclude_file)
        spec = spec.excluding(excluded)
        self._check_families(spec)
        assert self.resolver is not None
        wanted = spec.hostnames()
        results = await asyncio.gather(
            *(self.resolver.resolve(n, ipv6=cfg.ipv6) for n in wanted), return_exceptions=True
        )
        target_names = {t.name for t in spec.targets if isinstance(t, HostnameTarget)}
        answers: dict[str, list[IPAddress]] = {}
        for name, got in zip(wanted, results, strict=True):
            if isinstance(got, PyscanError) and name in target_names:
                self.note(f"warning: {got}; skipping it")
                continue
            if isinstance(got, BaseException):
                raise got
            answers[name] = got
        target_set = spec.resolved(answers)
        for name, addrs in answers.items():
            if addrs and name in target_names:
                self.user_names.setdefault(addrs[0], name)
        return target_set

    def _check_families(self, spec: TargetSpec) -> None:
        for t in spec.targets:
            if isinstance(t, IPv4Range) and self.cfg.ipv6:
                raise UsageError(
                    f"IPv4 target {t.text!r} given with -6: scan IPv4 and IPv6 targets in "
                    "separate runs"
                )
            if isinstance(t, IPv6Range) and not self.cfg.ipv6:
                raise UsageError(f"{t.text!r} is an IPv6 target: add -6 to scan IPv6")

    # -- outputs ---------------------------------------------------------------------------

    def _output_options(self) -> OutputOptions:
        return OutputOptions(
            verbose=self.cfg.verbose,
            debugging=self.cfg.debugging,
            reason=self.cfg.reason,
            open_only=self.cfg.open_only,
            # loaded on first use: list and ping scans never need the table
            service_name=lambda proto, port: default_services().name(port, proto),
        )

    def _open_outputs(self) -> None:
        opts = self._output_options()
        streams = [self.stdout if t.path == "-" else self._open(t) for t in self.cfg.outputs]
        if not any(t.path == "-" for t in self.cfg.outputs):
            self.outputs.writers.append(NormalWriter(self.stdout, opts))
        for target, stream in zip(self.cfg.outputs, streams, strict=True):
            self.outputs.writers.append(self._writer(target, stream, opts))

    def _open(self, target: OutputTarget) -> TextIO:
        try:
            f = open(target.path, "w", encoding="utf-8")  # noqa: SIM115 - closed by _Outputs
        except OSError as exc:
            raise UsageError(
                f"cannot write {target.flag} output file {target.path!r}: {exc.strerror or exc}"
            ) from None
        self.outputs.files.append(f)
        return f

    def _writer(self, target: OutputTarget, stream: TextIO, opts: OutputOptions) -> ReportWriter:
        if target.format == "normal":
            return NormalWriter(stream, opts, log_file=True)
        if target.format == "xml":
            return XmlWriter(stream, opts, stylesheet=self.cfg.stylesheet)
        if target.format == "grepable":
            return GrepableWriter(stream, opts)
        return JsonLinesWriter(stream, opts)

    def _header(self) -> ScanReport:
        cfg = self.cfg
        ports: dict[str, str] = {}
        if cfg.ports is not None:
            for proto in sorted(cfg.ports.protocols):
                ports[proto] = PortList(**{proto: cfg.ports.ports(proto)}).to_nmap_spec()[2:]
        types: tuple[str, ...] = {"list": ("list",), "ping": ("ping",)}.get(cfg.mode, cfg.kinds)
        if cfg.version is not None:
            types = (*types, "version")
        return ScanReport(
            scan_types=types,
            ports=ports,
            args=cfg.args,
            stats=ScanStats(start=self.started),
            version=__version__,
        )

    def _stats(self, *, partial: bool) -> ScanStats:
        total = 0 if partial else len(self.addresses)
        up = 0 if partial else sum(1 for a in self.addresses if self._is_up(a))
        return ScanStats(
            start=self.started,
            end=time.time(),
            hosts_total=total,
            hosts_up=up,
            hosts_down=total - up,
            packets_sent=self.packets[0],
            packets_received=self.packets[1],
        )

    def _is_up(self, addr: IPAddress) -> bool:
        host = self.hosts.get(addr)
        return host is not None and host.status is not HostStatus.DOWN

    # -- the scan --------------------------------------------------------------------------

    async def _scan(self, target_set: TargetSet) -> int:
        cfg = self.cfg
        self.addresses = list(target_set)
        if not self.addresses:
            self.note("warning: no targets were specified, so 0 hosts scanned")
        handle = self._handle(target_set)  # option and privilege errors come before output
        self._open_outputs()
        self.outputs.start(self._header())
        assumed_up = cfg.skip_discovery or handle is None
        if assumed_up:
            for addr in self.addresses:
                self._host_known(HostResult(addr, HostStatus.UP, Reason(ReasonKind.USER_SET)))
        if handle is None or not self.addresses:  # -sn -Pn, or nothing to scan
            await self._drain()
            self.outputs.finish(self._stats(partial=False))
            return 0
        self.handle = handle
        progress = asyncio.create_task(self._progress())
        try:
            async for item in handle:
                if isinstance(item, HostResult):
                    self._host_known(item)
                else:
                    self._port(item)
            report = await handle
            self.packets = (report.stats.packets_sent, report.stats.packets_received)
            await self._drain()
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
            _uncancel()
            self._resume_note()
            return self._abort("interrupted", EXIT_INTERRUPTED)
        except PyscanError as exc:
            self._abort(str(exc), 1 if isinstance(exc, ScanError) else 2)
            raise
        finally:
            progress.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await progress
            self._clear_live()
        self.outputs.finish(self._stats(partial=False))
        return 0

    def _handle(self, target_set: TargetSet) -> ScanHandle[Any] | None:
        cfg = self.cfg
        opts = cfg.options
        if opts.interface is not None:
            source = interface_address(opts.interface, ipv6=cfg.ipv6)
            if opts.source_address is None:
                opts = attrs.evolve(opts, source_address=source)
        probes = list(cfg.probes) or None
        if cfg.mode == "ping":
            if cfg.skip_discovery:
                return None
            return ping_scan(target_set, probes=probes, ipv6=cfg.ipv6, options=opts)
        return scan(
            target_set,
            cfg.ports,
            scan_types=cfg.kinds,
            skip_discovery=cfg.skip_discovery,
            probes=probes,
            ipv6=cfg.ipv6,
            version=cfg.version or False,
            options=opts,
        )

    def _expected(self) -> int:
        ports = self.cfg.ports
        if ports is None:
            return 0
        return sum(len(ports.ports("udp" if k == "udp" else "tcp")) for k in self.cfg.kinds)

    def _host_known(self, result: HostResult) -> None:
        addr = result.address
        if result.start is None:
            result = attrs.evolve(result, start=time.time())
        self.hosts[addr] = result
        up = result.status is not HostStatus.DOWN
        self._lookup(addr, up=up)
        expected = self._expected() if up else 0
        if expected:
            self.expected[addr] = expected
        if addr == self._last_address:
            self._last_address = None  # _port looks its count up again
        if not expected or len(self.ports.get(addr, ())) >= expected:
            self._complete(addr)

    def _port(self, result: PortResult) -> None:
        addr = result.address
        ports = self._last_ports
        if addr is not self._last_address or ports is None:
            # a scanner's results of a host share its address object
            self._last_address = addr
            ports = self._last_ports = self.ports.setdefault(addr, [])
            self._last_expected = self.expected.get(addr)
        ports.append(result)
        if len(ports) == self._last_expected:
            self._complete(addr)

    def _lookup(self, addr: IPAddress, *, up: bool) -> None:
        mode = self.cfg.reverse_dns
        if addr in self.names or mode == "never" or (mode == "up" and not up):
            return
        assert self.resolver is not None
        self.names[addr] = asyncio.create_task(self.resolver.reverse(addr))

    def _complete(self, addr: IPAddress) -> None:
        task = asyncio.create_task(self._write_when_named(addr))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _write_when_named(self, addr: IPAddress) -> None:
        lookup = self.names.get(addr)
        if lookup is not None:
            await asyncio.gather(lookup, return_exceptions=True)
        self._write(addr)

    def _final(self, addr: IPAddress) -> HostResult:
        host = self.hosts.get(addr) or HostResult(addr, HostStatus.UP, Reason(ReasonKind.USER_SET))
        host = merge_ports(host, self.ports.get(addr, ()))
        names = []
        if addr in self.user_names:
            names.append(Hostname(self.user_names[addr], "user"))
        lookup = self.names.get(addr)
        if lookup is not None and lookup.done() and not lookup.cancelled():
            ptr = lookup.result() if lookup.exception() is None else None
            if ptr:
                names.append(Hostname(ptr, "PTR"))
        return attrs.evolve(host, hostnames=tuple(names), end=time.time())

    def _write(self, addr: IPAddress) -> None:
        """Queue a finished host; hosts go out in target order, each as soon as every
        earlier target has gone out (as nmap prints a host group in order)."""
        if addr in self.written or addr in self.ready:
            return
        self.ready[addr] = self._final(addr)
        while self.cursor < len(self.addresses):
            nxt = self.addresses[self.cursor]
            if nxt in self.written:
                self.cursor += 1
                continue
            host = self.ready.pop(nxt, None)
            if host is None:
                return
            self._emit(host)
            self.cursor += 1

    def _emit(self, host: HostResult) -> None:
        self.written.add(host.address)
        self._clear_live()
        self.outputs.host(host)

    def _flush(self) -> None:
        """Write every queued host, in target order, gaps or not."""
        for addr in self.addresses:
            host = self.ready.pop(addr, None)
            if host is not None and addr not in self.written:
                self._emit(host)

    async def _drain(self) -> None:
        """Wait for the hosts being written, then write the rest in target order."""
        while self.pending:
            await asyncio.gather(*list(self.pending))
        rest = [a for a in self.addresses if a not in self.written and a in self.hosts]
        for addr in rest:
            self._lookup(addr, up=self._is_up(addr))
        lookups = [self.names[a] for a in rest if a in self.names]
        if lookups:
            await asyncio.gather(*lookups, return_exceptions=True)
        for addr in rest:
            self._write(addr)
        self._flush()

    def _resume_note(self) -> None:
        """After an interrupt: where a rerun can take the port scan up (when it can)."""
        # None where --resume-from would be refused or could miss probes: host discovery,
        # more than one scan type, an order that is not reproducible, version detection
        point = self.handle.progress().resume_from if self.handle is not None else None
        if point is None:
            return
        self.note(f"note: to resume, run the same scan with --resume-from {point}")

    def _abort(self, why: str, code: int) -> int:
        """Write what is known so far to every output, with an error footer."""
        for task in [*self.pending, *self.names.values()]:
            task.cancel()
        if self.handle is not None:
            self.packets = (self.handle.progress().packets_sent, 0)
        for addr in self.addresses:
            host = self.hosts.get(addr)
            if addr in self.written or host is None:
                continue
            reached = host.status is HostStatus.DOWN or self.cfg.mode != "port"
            if reached or self.ports.get(addr):
                self._write(addr)
        self._flush()
        self.outputs.finish(self._stats(partial=True), error=why)
        return code

    # -- list scan -------------------------------------------------------------------------

    async def _list(self, target_set: TargetSet) -> int:
        self.outputs.start(self._header())
        count = 0
        assert self.resolver is not None
        try:
            for chunk in _chunks(target_set, _LIST_CHUNK):
                ptrs: dict[IPAddress, str] = {}
                if self.cfg.reverse_dns != "never":
                    ptrs = await self.resolver.reverse_all(chunk)
                for addr in chunk:
                    names = []
                    if addr in self.user_names:
                        names.append(Hostname(self.user_names[addr], "user"))
                    if addr in ptrs:
                        names.append(Hostname(ptrs[addr], "PTR"))
                    unknown = HostResult(addr, HostStatus.UNKNOWN, Reason(ReasonKind.USER_SET))
                    self.outputs.host(attrs.evolve(unknown, hostnames=tuple(names)))
                    count += 1
        except asyncio.CancelledError:
            if not self.interrupted:
                raise
            _uncancel()
            self.outputs.finish(ScanStats(start=self.started, end=time.time()), "interrupted")
            return EXIT_INTERRUPTED
        if count == 0:
            self.note("warning: no targets were specified, so 0 hosts scanned")
        self.outputs.finish(
            ScanStats(start=self.started, end=time.time(), hosts_total=count, hosts_down=count)
        )
        return 0

    # -- progress --------------------------------------------------------------------------

    async def _progress(self) -> None:
        every = self.cfg.stats_every
        tty = _isatty(self.stderr)
        if not tty and every is None:
            return
        tick = 1.0 if every is None else min(1.0, every)
        next_stats = None if every is None else time.monotonic() + every
        while True:
            await asyncio.sleep(tick)
            assert self.handle is not None
            p = self.handle.progress()
            elapsed = time.time() - self.started
            if next_stats is not None and every is not None and time.monotonic() >= next_stats:
                next_stats += every
                self._clear_live()
                self.stderr.write(stats_line(p.phase, p.fraction, p.eta, elapsed) + "\n")
                self.stderr.flush()
            if tty and elapsed >= _LIVE_AFTER and p.total:
                rate = p.done / p.elapsed if p.elapsed > 0 else 0.0
                eta = "?" if p.eta is None else _clock(p.eta)
                self.stderr.write(
                    f"\r\x1b[K{_PHASE_TITLES.get(p.phase, p.phase)}: {100 * p.fraction:.1f}% "
                    f"done ({p.done}/{p.total}), {rate:.0f} probes/s, ETA {eta}"
                )
                self.stderr.flush()
                self.live_shown = True

    def _clear_live(self) -> None:
        if self.live_shown:
            self.stderr.write("\r\x1b[K")
            self.stderr.flush()
            self.live_shown = False


def stats_line(phase: str, fraction: float, eta: float | None, elapsed: float) -> str:
    """nmap's periodic stats line (``--stats-every``)."""
    title = _PHASE_TITLES.get(phase)
    head = f"Stats: {_clock(elapsed)} elapsed"
    if title is None:
        return f"{head}; {phase}"
    line = f"{head}; {title} Timing: About {100 * fraction:.2f}% done"
    if eta is not None:
        etc = time.strftime("%H:%M", time.localtime(time.time() + eta))
        line += f"; ETC: {etc} ({_clock(eta)} remaining)"
    return line


def _isatty(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def _chunks(addrs: Iterable[IPAddress], size: int) -> Iterator[list[IPAddress]]:
    chunk: list[IPAddress] = []
    for a in addrs:
        chunk.append(a)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def run_session(cfg: CliConfig, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``cfg`` in a fresh event loop and return the exit code (PyscanErrors propagate)."""
    session = Session(cfg, stdout or sys.stdout, stderr or sys.stderr)
    return asyncio.run(session.run())
