"""The public scan functions: ping_scan, connect_scan, syn_scan, udp_scan and scan.

Each returns a :class:`~pyscan._handle.ScanHandle` at once; the scan runs when the handle
is awaited (giving a :class:`~pyscan._models.ScanReport`) or iterated (giving results as
they are decided). Targets and ports accept nmap syntax or the spec objects; options are a
:class:`~pyscan._options.ScanOptions` or its fields as keywords.
"""

from __future__ import annotations

import asyncio
import ipaddress
import itertools
import logging
import operator
import os
import socket
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

import attrs

if TYPE_CHECKING:
    from pyscan._core.demux import FlowKey
    from pyscan._core.probescan import ProbeScanner
    from pyscan._scanners.discovery import DiscoveryProbe

from pyscan._core.hosts import HostTable
from pyscan._core.rate import RateLimiter
from pyscan._handle import Emit, ScanHandle, ScanProgress
from pyscan._io import netutil
from pyscan._io.connect import MAKE_CHUNK, ConnectScan, raise_nofile_limit, run_connect_scan
from pyscan._io.netutil import require_raw, reserve_source_ports, source_address_for
from pyscan._io.resolver import Resolver
from pyscan._models import (
    Hostname,
    HostResult,
    HostStatus,
    IPAddress,
    PortResult,
    PortState,
    Reason,
    ReasonKind,
    ScanReport,
    ScanStats,
    merge_ports,
)
from pyscan._options import ResolvedOptions, ScanOptions
from pyscan._specs.permutation import Permutation, ProbeOrder
from pyscan._specs.ports import PortList, parse_ports, resolve_ports
from pyscan._specs.services import default_services
from pyscan._specs.targets import TargetSet, TargetSpec, parse_exclude, parse_targets
from pyscan._version import __version__
from pyscan.errors import OptionsError, ResolveError

log = logging.getLogger("pyscan")

__all__ = [
    "PortsArg",
    "ScanType",
    "TargetsArg",
    "VersionOptions",
    "connect_scan",
    "ping_scan",
    "scan",
    "syn_scan",
    "udp_scan",
    "version_scan",
]

TargetsArg: TypeAlias = "str | Iterable[str | IPAddress] | TargetSpec | TargetSet"
PortsArg: TypeAlias = "str | Iterable[int] | PortList | None"
ScanType = Literal["syn", "connect", "udp"]

_UNPRIVILEGED_PING_PORTS = (80, 443)


# -- argument normalisation --------------------------------------------------------------


def _options(options: ScanOptions | None, kw: dict[str, Any]) -> ScanOptions:
    try:
        if options is not None:
            return attrs.evolve(options, **kw) if kw else options
        return ScanOptions(**kw)
    except TypeError as exc:  # an unknown keyword
        raise OptionsError(f"unknown scan option: {exc}") from exc


def _port_list(ports: PortsArg, protocols: Sequence[str]) -> PortList:
    if isinstance(ports, PortList):
        return ports.restrict(protocols)
    if ports is None:
        return resolve_ports(None, protocols=protocols)
    if isinstance(ports, str):
        return parse_ports(ports, protocols=protocols)
    values = list(ports)
    return PortList(**dict.fromkeys(protocols, values))


async def _resolve_targets(
    targets: TargetsArg, resolver: Resolver, exclude: str | Iterable[str] | None, ipv6: bool
) -> tuple[HostTable, dict[IPAddress, str]]:
    """The target addresses in scan order, and the names users gave for them."""
    if isinstance(targets, TargetSet):
        if exclude is not None:
            raise OptionsError(
                "exclude= does not apply to a resolved TargetSet: exclude when parsing "
                "(parse_targets(..., exclude=...)) or pass the TargetSpec"
            )
        target_set = targets
        names: dict[IPAddress, str] = {}
    else:
        if isinstance(targets, TargetSpec):
            spec = targets if exclude is None else parse_targets_exclude(targets, exclude)
        else:
            items = [targets] if isinstance(targets, str) else [str(t) for t in targets]
            spec = parse_targets(items, exclude=exclude)
        wanted = spec.hostnames()
        resolved: dict[str, list[IPAddress]] = {}
        if wanted:
            answers = await asyncio.gather(
                *(resolver.resolve(n, ipv6=ipv6) for n in wanted), return_exceptions=True
            )
            for name, answer in zip(wanted, answers, strict=True):
                if isinstance(answer, ResolveError):
                    log.warning("%s", answer)
                elif isinstance(answer, BaseException):
                    raise answer
                else:
                    resolved[name] = answer
        target_set = spec.resolved(resolved)
        names = {addrs[0]: name for name, addrs in resolved.items() if addrs}
    return HostTable(target_set), names


def parse_targets_exclude(spec: TargetSpec, exclude: str | Iterable[str]) -> TargetSpec:
    """``spec`` with ``--exclude`` entries added to its exclusions."""
    return spec.excluding(parse_exclude(exclude))


# With shard= and no seed=, every shard must still walk the same permutation.
_SHARD_SEED = 0x70797363616E


def _order(
    total: int, opts: ResolvedOptions, *, shard: bool = True, resume: bool = False
) -> tuple[ProbeOrder, int]:
    """Probe order, a seeded permutation of the probe space (sequential with ``-r``), and
    how many probes it yields: all, or with ``shard`` this shard's share; with ``resume``,
    from ``opts.resume_from`` on. Shards of one scan split one permutation: without
    ``seed`` they use a fixed one."""
    if opts.seed is not None:
        seed = opts.seed
    elif opts.shard is not None:
        seed = _SHARD_SEED
    else:
        seed = int.from_bytes(os.urandom(8), "big")
    perm = Permutation(total, seed if opts.randomize_ports else None)
    start = (opts.resume_from or 0) if resume else 0
    order = ProbeOrder(perm, start=start, shard=opts.shard if shard else None)
    return order, order.size


def _rate(opts: ResolvedOptions) -> RateLimiter | None:
    if opts.min_rate is None and opts.max_rate is None:
        return None
    return RateLimiter(max_rate=opts.max_rate, min_rate=opts.min_rate)


def _sources(opts: ResolvedOptions) -> Callable[[IPAddress], IPAddress]:
    fixed = None if opts.source_address is None else ipaddress.ip_address(opts.source_address)
    cache: dict[IPAddress, IPAddress] = {}

    def source(dst: IPAddress) -> IPAddress:
        if fixed is not None:
            return fixed
        got = cache.get(dst)
        if got is None:
            got = cache[dst] = source_address_for(dst)
        return got

    return source


# -- the scan runs -----------------------------------------------------------------------


@attrs.frozen
class VersionOptions:
    """Version detection (-sV) settings: nmap's intensity 0-9 (light = 2, all = 9), the
    probe file (None: nmap's when installed, else pyscan's built-in one), how many ports are
    probed at once, and a factor on every wait of the probe file."""

    intensity: int = attrs.field(default=7)
    probe_file: str | None = None
    concurrency: int = attrs.field(default=64)
    timeout_scale: float = attrs.field(default=1.0)

    @concurrency.validator
    def _check_concurrency(self, _attr: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise OptionsError(f"version detection concurrency must be >= 1, got {value!r}")

    @timeout_scale.validator
    def _check_scale(self, _attr: attrs.Attribute[float], value: float) -> None:
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 100:
            raise OptionsError(f"version timeout_scale must be in (0, 100], got {value!r}")

    @intensity.validator
    def _check_intensity(self, _attr: attrs.Attribute[int], value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
            raise OptionsError(f"version intensity must be an integer 0-9, got {value!r}")


_USER_SET = Reason(ReasonKind.USER_SET)  # a value: one for every host taken as up


class _Resume:
    """The resume point of a port scan phase (see :class:`ProbeOrder`): the first position
    of its order whose probe is not decided, or decided with a result the consumer has not
    taken yet. ``undecided`` gives the scanner's probes taken and not decided; :meth:`freeze`
    keeps them as they are when the phase ends, and lets the scanner go."""

    def __init__(
        self,
        order: ProbeOrder,
        hosts: Sequence[IPAddress],
        ports: Sequence[int],
        undecided: Callable[[], Iterable[int]],
    ) -> None:
        self.order = order
        self.hosts = hosts
        self.ports = ports
        self.undecided = undecided

    def freeze(self) -> None:
        left = list(self.undecided())
        self.undecided = lambda: left

    def __call__(self, unconsumed: Iterable[object] = ()) -> int:
        results = [r for r in unconsumed if isinstance(r, PortResult)]
        extra: list[int] = []
        if results:
            hosts = self.hosts if isinstance(self.hosts, HostTable) else HostTable(self.hosts)
            port_at = {port: k for k, port in enumerate(self.ports)}
            per_host = len(self.ports)
            for r in results:
                h = hosts.index_of(r.address.packed)
                k = port_at.get(r.port)
                if h is not None and k is not None:
                    extra.append(h * per_host + k)
        return self.order.resume_point(itertools.chain(self.undecided(), extra))


@attrs.define
class _Run:
    """Book-keeping of one scan run: options, results, statistics."""

    opts: ResolvedOptions
    scan_types: tuple[str, ...]
    ports: PortList | None
    resolve_names: bool
    dns_servers: Sequence[str] | None
    started: float = attrs.field(factory=time.time)
    hosts: dict[IPAddress, HostResult] = attrs.field(factory=dict)
    order: list[IPAddress] = attrs.field(factory=list)
    #: Targets taken as up without discovery (-Pn): their HostResults are made when their
    #: ports are merged or at the end (:meth:`settle_assumed`), not one per target upfront.
    assumed: Sequence[IPAddress] | None = None
    packets_sent: int = 0
    packets_received: int = 0
    phase: str = "starting"
    phase_started: float = attrs.field(factory=time.monotonic)
    phase_total: int = 0
    counter: Callable[[], int] | None = None
    sent: Callable[[], int] | None = None
    resume: _Resume | None = None
    version: VersionOptions | None = None
    #: Whether a rerun could take this scan up where it stops (``resume_from=``): one scan
    #: type, no discovery, and a probe order the rerun can walk again.
    resumable: bool = False

    def enter(
        self,
        phase: str,
        total: int,
        counter: Callable[[], int],
        sent: Callable[[], int] | None = None,
        resume: _Resume | None = None,
    ) -> None:
        """Start a phase of ``total`` probes whose decided count ``counter`` reports (and
        ``sent`` the packets it has sent so far, ``resume`` its resume point)."""
        self.phase, self.phase_total, self.counter, self.sent = phase, total, counter, sent
        self.resume = resume
        self.phase_started = time.monotonic()

    def leave(self) -> None:
        """End the current phase: its figures stay as they ended (its packets are in
        :attr:`packets_sent` by now), and the scanner that counted them is let go. Held
        here, it would close a reference cycle (scanner -> the handle's emit -> the handle
        -> this run -> the scanner) that keeps every result alive until the cyclic garbage
        collector runs, rather than going with the report: ~0.2 s at exit for 65,535."""
        done = self.counter() if self.counter is not None else 0
        self.counter = lambda: done
        self.sent = None
        if self.resume is not None:
            self.resume.freeze()

    def resume_point(self, unconsumed: Iterable[object]) -> int | None:
        """The current phase's resume point, with results the consumer has not taken."""
        return self._resume_point(unconsumed)

    def _resume_point(self, unconsumed: Iterable[object] = ()) -> int | None:
        if self.resume is None or not self.resumable:
            return None  # resume_from= would be refused, or could miss probes
        return self.resume(unconsumed)

    def progress(self) -> ScanProgress:
        """The current phase's progress."""
        done = self.counter() if self.counter is not None else 0
        elapsed = time.monotonic() - self.phase_started
        sent = self.packets_sent + (self.sent() if self.sent is not None else 0)
        resume = self._resume_point()
        return ScanProgress(self.phase, done, self.phase_total, elapsed, sent, resume)

    def add_host(self, result: HostResult) -> None:
        if result.address not in self.hosts:
            self.order.append(result.address)
        self.hosts[result.address] = result

    def host(self, address: IPAddress) -> HostResult:
        """The result of host ``address`` so far (up, user-set, if assumed up and not yet
        seen)."""
        found = self.hosts.get(address)
        if found is None:
            found = HostResult(address, HostStatus.UP, _USER_SET)
        return found

    def settle_assumed(self) -> None:
        """Give every target assumed up its HostResult, in target order (then any other
        host added, in the order added)."""
        if self.assumed is None:
            return
        hosts: dict[IPAddress, HostResult] = {}
        for address in self.assumed:
            if address not in hosts:
                hosts[address] = self.host(address)
        for address in self.order:
            if address not in hosts:
                hosts[address] = self.hosts[address]
        self.hosts, self.order, self.assumed = hosts, list(hosts), None

    def report(self, args: str) -> ScanReport:
        hosts = tuple(self.hosts[a] for a in self.order)
        up = sum(1 for h in hosts if h.status is not HostStatus.DOWN)
        ports = {}
        if self.ports is not None:
            for proto in sorted(self.ports.protocols):
                ports[proto] = PortList(**{proto: self.ports.ports(proto)}).to_nmap_spec()[2:]
        return ScanReport(
            hosts=hosts,
            scan_types=self.scan_types,
            ports=ports,
            args=args,
            stats=ScanStats(
                start=self.started,
                end=time.time(),
                hosts_total=len(hosts),
                hosts_up=up,
                hosts_down=len(hosts) - up,
                packets_sent=self.packets_sent,
                packets_received=self.packets_received,
            ),
            version=__version__,
        )


async def _run_raw(
    run: _Run, scanner: ProbeScanner[Any], what: str, icmp_id: int | None = None
) -> None:
    from pyscan._io.engine import RawEngine  # noqa: PLC0415

    async with RawEngine.acquire(what) as engine:
        sent0, recv0 = engine.packets_sent, engine.packets_received
        keys: list[FlowKey] = []
        protos = ["tcp", "udp"] if {6, 17} & scanner.protocols else []
        src_ports: list[int] = scanner.src_ports  # type: ignore[attr-defined]
        keys += [(p, port) for p in protos for port in src_ports]  # type: ignore[misc]
        if icmp_id is not None:
            keys.append(("icmp", icmp_id))
        versions = set(scanner.hosts.versions)  # type: ignore[attr-defined]
        await engine.run(scanner, keys, versions)
        run.packets_sent += engine.packets_sent - sent0
        run.packets_received += engine.packets_received - recv0


def _src_block(opts: ResolvedOptions) -> int:
    """How many source ports a raw scan reserves: one per try (the try number travels in
    the source port), or exactly the one ``-g``/``source_port`` names, as nmap does (answers
    then cannot say which try they answer, so retries give no RTT samples)."""
    if opts.source_port is not None:
        return 1
    return max(2, min(opts.timing.max_retries + 1, 16))


async def _discover(
    run: _Run,
    hosts: Sequence[IPAddress],
    emit: Emit[HostResult],
    probes: Sequence[DiscoveryProbe] | None,
) -> list[HostResult]:
    opts = run.opts
    if not hosts:
        return []
    if not netutil.has_raw_privilege():
        return await _discover_unprivileged(run, hosts, emit)
    family = socket.AF_INET6 if hosts[0].version == 6 else socket.AF_INET
    reservation = reserve_source_ports(_src_block(opts), family=family, first=opts.source_port)
    try:
        # imported here: a connect scan (-Pn) needs none of the raw-packet machinery
        from pyscan._scanners.discovery import DEFAULT_PROBES, DiscoveryScanner  # noqa: PLC0415

        probes = probes or DEFAULT_PROBES
        scanner = DiscoveryScanner(
            hosts=hosts,
            probes=probes,
            sources=_sources(opts),
            src_ports=reservation.ports,
            emit=emit,
            ttl=64 if opts.ttl is None else opts.ttl,
            order=iter(_order(len(hosts) * len(probes), opts, shard=False)[0]),
            timing=opts.timing,
            rate=_rate(opts),
        )
        run.enter(
            "ping scan", scanner.expected, lambda: scanner.n_decided, lambda: scanner.packets_sent
        )
        await _run_raw(run, scanner, "host discovery", scanner.icmp_id)
    finally:
        run.leave()
        reservation.close()
    by_addr = {r.address: r for r in scanner.results}
    return [by_addr[h] for h in hosts if h in by_addr]


async def _discover_unprivileged(
    run: _Run, hosts: Sequence[IPAddress], emit: Emit[HostResult]
) -> list[HostResult]:
    """nmap's unprivileged ping: a connect to 80 and 443; an answer of any kind means up."""
    found: dict[IPAddress, HostResult] = {}
    ports = list(_UNPRIVILEGED_PING_PORTS)

    def on_port(p: PortResult) -> None:
        if p.address in found:
            return
        if p.reason.kind in (ReasonKind.SYN_ACK, ReasonKind.CONN_REFUSED):
            result = HostResult(p.address, HostStatus.UP, Reason(p.reason.kind))
            found[p.address] = result
            emit(result)

    await run_connect_scan(
        hosts,
        ports,
        iter(range(len(hosts) * len(ports))),
        timing=attrs.evolve(run.opts.timing, max_retries=0),
        concurrency=run.opts.connect_concurrency,
        emit=on_port,
        source=run.opts.source_address,
    )
    results = []
    for h in hosts:
        if h not in found:
            found[h] = HostResult(h, HostStatus.DOWN, Reason(ReasonKind.NO_RESPONSE))
            emit(found[h])
        results.append(found[h])
    return results


async def _port_scan(
    run: _Run,
    kind: ScanType,
    hosts: Sequence[IPAddress],
    ports: Sequence[int],
    emit: Emit[PortResult] | None,
    *,
    shard: bool = True,
) -> list[PortResult]:
    """Scan ``hosts x ports``; ``emit`` (``None``: nobody takes them one by one) gets each
    result as it is decided."""
    opts = run.opts
    if not hosts or not ports:
        return []
    order, expected = _order(len(hosts) * len(ports), opts, shard=shard, resume=True)
    if kind == "connect":

        def started(scan: ConnectScan) -> None:
            resume = _Resume(order, hosts, ports, scan.undecided_taken)
            # with version detection, open ports reach the consumer later: no resume point
            run.enter(
                "connect scan",
                expected,
                lambda: scan.decided,
                resume=resume if run.version is None else None,
            )

        try:
            return await run_connect_scan(
                hosts,
                ports,
                iter(order),
                timing=opts.timing,
                concurrency=opts.connect_concurrency,
                emit=emit,
                source=opts.source_address,
                rate=RateLimiter(max_rate=opts.max_rate) if opts.max_rate else None,
                started=started,
            )
        finally:
            run.leave()
    family = socket.AF_INET6 if hosts[0].version == 6 else socket.AF_INET
    reservation = reserve_source_ports(_src_block(opts), family=family, first=opts.source_port)
    try:
        from pyscan._scanners.syn import SynScanner  # noqa: PLC0415
        from pyscan._scanners.udp import UdpScanner  # noqa: PLC0415

        cls = SynScanner if kind == "syn" else UdpScanner
        scanner = cls(
            hosts=hosts,
            ports=ports,
            sources=_sources(opts),
            src_ports=reservation.ports,
            emit=emit,
            ttl=64 if opts.ttl is None else opts.ttl,
            order=iter(order),
            expected=expected,
            timing=opts.timing,
            rate=_rate(opts),
        )
        what = "SYN scan (-sS)" if kind == "syn" else "UDP scan (-sU)"
        run.enter(
            "SYN stealth scan" if kind == "syn" else "UDP scan",
            scanner.expected,
            lambda: scanner.n_decided,
            lambda: scanner.packets_sent,
            _Resume(order, hosts, ports, scanner.undecided_taken) if run.version is None else None,
        )
        await _run_raw(run, scanner, what)
    finally:
        run.leave()
        reservation.close()
    # Decisions nobody took one by one are made into results in chunks, the loop getting
    # a turn in between (a /16 of full port scans would otherwise hold it for seconds).
    while scanner.make_later(MAKE_CHUNK):
        await asyncio.sleep(0)
    return scanner.results


async def _execute(
    run: _Run,
    targets: TargetsArg,
    *,
    exclude: str | Iterable[str] | None,
    ipv6: bool,
    discovery: bool,
    probes: Sequence[DiscoveryProbe] | None,
    kinds: Sequence[ScanType],
    emit_host: Emit[HostResult] | None,
    emit_port: Emit[PortResult] | None,
    args: str,
) -> ScanReport:
    resolver = Resolver(run.dns_servers)
    try:
        hosts, names = await _resolve_targets(targets, resolver, exclude, ipv6)
        shard_probes = True
        if discovery and run.opts.shard is not None:
            # A shard takes a share of the hosts, each discovered and scanned whole: host
            # discovery cannot decide a host from part of its probes.
            picked, _ = _order(len(hosts), run.opts)
            hosts = HostTable(hosts[i] for i in sorted(picked))
            shard_probes = False
        if discovery:
            found = await _discover(run, hosts, emit_host or _ignore, probes)
            for r in found:
                run.add_host(r)
            up: Sequence[IPAddress] = HostTable(
                r.address for r in found if r.status is HostStatus.UP
            )
        else:
            run.assumed = up = hosts
        emit = emit_port
        detector: _Detector | None = None
        if run.version is not None:
            # Open ports are reported once, with their service, after detection, which
            # starts on each as soon as it is found.
            detector = _Detector(run, run.version, emit or _ignore)
            plain = emit or _ignore

            def emit(r: PortResult) -> None:
                if _wants_detection(r):
                    detector.submit(r)
                else:
                    plain(r)

        for kind in kinds:
            proto = "udp" if kind == "udp" else "tcp"
            assert run.ports is not None
            ports = run.ports.ports(proto)
            results = await _port_scan(run, kind, up, ports, emit, shard=shard_probes)
            _merge(run, results)
        if detector is not None:
            _merge(run, await detector.wait())
        run.settle_assumed()
        await _attach_names(run, resolver, names)
    finally:
        await resolver.close()
    return run.report(args)


def _ignore(_result: object) -> None:
    """The ``emit`` of a scan whose results nobody takes one by one."""


_ADDRESS = operator.attrgetter("address")


def _merge(run: _Run, results: Iterable[PortResult]) -> None:
    # Grouped by the identity of the address object (a scanner gives every result of a
    # host the same one): hashing an ipaddress object is Python code, run per result.
    # Equal addresses held by different objects are merged one after the other.
    results = list(results)
    if not results:
        return
    first = results[0].address
    if all(map(operator.is_, map(_ADDRESS, results), itertools.repeat(first))):
        # One host (a full port scan of it): checked by identity, in C, stopping at the
        # first other host.
        run.add_host(merge_ports(run.host(first), results))
        return
    by_host: dict[int, tuple[IPAddress, list[PortResult]]] = {}
    for p in results:
        entry = by_host.get(id(p.address))
        if entry is None:
            entry = by_host[id(p.address)] = (p.address, [])
        entry[1].append(p)
    for addr, plist in by_host.values():
        run.add_host(merge_ports(run.host(addr), plist))


def _wants_detection(r: PortResult) -> bool:
    return r.state is PortState.OPEN or (r.protocol == "udp" and r.state is PortState.OPEN_FILTERED)


class _Detector:
    """Version detection that starts on each open port as soon as the port scan finds it.

    The probe database loads on a worker thread while the scan runs; at most
    ``concurrency`` ports are probed at once. A UDP open|filtered port that answers a probe
    becomes open (reason udp-response).
    """

    def __init__(self, run: _Run, version: VersionOptions, emit: Emit[PortResult]) -> None:
        # Version detection's machinery (probe database, matcher, ssl) loads only when used.
        from pyscan._io.version import load_default_db, tls_client_context  # noqa: PLC0415

        self.run = run
        self.version = version
        self.emit = emit
        self.db = asyncio.ensure_future(asyncio.to_thread(load_default_db, version.probe_file))
        self.table = default_services()
        self.tls = tls_client_context()
        self.limit = asyncio.Semaphore(max(1, min(version.concurrency, raise_nofile_limit() - 64)))
        self.tasks: list[asyncio.Future[None]] = []
        self.done: list[PortResult] = []

    def submit(self, port: PortResult) -> None:
        """Start detecting ``port`` (called from the scan's emit callback)."""
        self.tasks.append(asyncio.ensure_future(self._one(port)))

    async def _one(self, p: PortResult) -> None:
        from pyscan._io.version import detect_service  # noqa: PLC0415 - see __init__

        if p.protocol in ("tcp", "udp"):
            db = await self.db
            async with self.limit:
                found = await detect_service(
                    p.address,
                    p.protocol,
                    p.port,
                    db,
                    intensity=self.version.intensity,
                    timeout_scale=self.version.timeout_scale,
                    default_name=self.table.name(p.port, p.protocol),
                    tls_context=self.tls,
                )
            if found.service is not None:
                p = attrs.evolve(p, service=found.service)
            if found.answered and p.state is PortState.OPEN_FILTERED:
                p = attrs.evolve(p, state=PortState.OPEN, reason=Reason(ReasonKind.UDP_RESPONSE))
        self.done.append(p)
        self.emit(p)

    async def wait(self) -> list[PortResult]:
        """Wait for every submitted port; cancel them all if this is cancelled."""
        self.run.enter("service scan", len(self.tasks), lambda: len(self.done))
        try:
            await asyncio.gather(*self.tasks)
            await self.db  # surface a probe-file error even when no port was open
        finally:
            self.db.cancel()
            for task in self.tasks:
                task.cancel()
            await asyncio.gather(*self.tasks, self.db, return_exceptions=True)
        return self.done


async def _attach_names(run: _Run, resolver: Resolver, names: dict[IPAddress, str]) -> None:
    ptr: dict[IPAddress, str] = {}
    if run.resolve_names:
        up = [a for a, h in run.hosts.items() if h.status is not HostStatus.DOWN]
        ptr = await resolver.reverse_all(up)
    for addr, host in list(run.hosts.items()):
        hostnames = []
        if addr in names:
            hostnames.append(Hostname(names[addr], "user"))
        if addr in ptr:
            hostnames.append(Hostname(ptr[addr], "PTR"))
        if hostnames:
            run.hosts[addr] = attrs.evolve(host, hostnames=tuple(hostnames))


def _make_run(  # noqa: PLR0917 - private, called from three places with the same six values
    options: ScanOptions | None,
    kw: dict[str, Any],
    scan_types: tuple[str, ...],
    ports: PortList | None,
    resolve_names: bool,
    dns_servers: Sequence[str] | None,
) -> _Run:
    opts = _options(options, kw).resolved()
    return _Run(opts, scan_types, ports, resolve_names, dns_servers)


# -- public functions --------------------------------------------------------------------


def ping_scan(
    targets: TargetsArg,
    *,
    probes: Sequence[DiscoveryProbe] | None = None,
    exclude: str | Iterable[str] | None = None,
    ipv6: bool = False,
    resolve_names: bool = False,
    dns_servers: Sequence[str] | None = None,
    options: ScanOptions | None = None,
    **option_kw: Any,
) -> ScanHandle[HostResult]:
    """Host discovery only (nmap ``-sn``): which targets are up, with reason and latency.

    With CAP_NET_RAW it sends nmap's default probes (ICMP echo, SYN to 443, ACK to 80, ICMP
    timestamp) or ``probes``; without, a TCP connect to ports 80 and 443.
    """
    run = _make_run(options, option_kw, ("ping",), None, resolve_names, dns_servers)
    if run.opts.resume_from is not None:
        raise OptionsError("resume_from resumes a port scan's probe order, not a ping scan's")

    async def go(emit: Emit[HostResult] | None) -> ScanReport:
        return await _execute(
            run,
            targets,
            exclude=exclude,
            ipv6=ipv6,
            discovery=True,
            probes=probes,
            kinds=(),
            emit_host=emit,
            emit_port=None,
            args="ping_scan",
        )

    return ScanHandle(go, run.progress, run.resume_point)


def _port_scan_handle(
    kinds: tuple[ScanType, ...],
    targets: TargetsArg,
    ports: PortsArg,
    *,
    discovery: bool,
    probes: Sequence[DiscoveryProbe] | None,
    exclude: str | Iterable[str] | None,
    ipv6: bool,
    resolve_names: bool,
    dns_servers: Sequence[str] | None,
    options: ScanOptions | None,
    option_kw: dict[str, Any],
    stream_hosts: bool,
    name: str,
    version: VersionOptions | None = None,
) -> ScanHandle[Any]:
    if not kinds:
        raise OptionsError("no scan type given")
    for kind in kinds:
        if kind not in ("syn", "connect", "udp"):
            raise OptionsError(f"unknown scan type {kind!r}: expected syn, connect or udp")
        if kind != "connect":
            require_raw("SYN scan (-sS)" if kind == "syn" else "UDP scan (-sU)")
    protocols = sorted({"udp" if k == "udp" else "tcp" for k in kinds})
    port_list = _port_list(ports, protocols)
    types = tuple({"syn": "syn", "connect": "connect", "udp": "udp"}[k] for k in kinds)
    if version is not None:
        types += ("version",)
    run = _make_run(options, option_kw, types, port_list, resolve_names, dns_servers)
    if run.opts.resume_from is not None:
        if discovery:
            raise OptionsError(
                "resume_from resumes a port scan without host discovery (skip_discovery=True,"
                " -Pn): with it the hosts found up, and so the probe order, could differ"
            )
        if len(kinds) != 1:
            raise OptionsError(
                f"resume_from resumes the probe order of one scan type, not of {len(kinds)}"
                f" ({', '.join(kinds)})"
            )
    run.version = version
    opts = run.opts
    run.resumable = (
        not discovery
        and len(kinds) == 1
        and (opts.seed is not None or opts.shard is not None or not opts.randomize_ports)
    )

    async def go(emit: Emit[Any] | None) -> ScanReport:
        return await _execute(
            run,
            targets,
            exclude=exclude,
            ipv6=ipv6,
            discovery=discovery,
            probes=probes,
            kinds=kinds,
            emit_host=emit if stream_hosts else None,
            emit_port=emit,
            args=name,
        )

    return ScanHandle(go, run.progress, run.resume_point)


def connect_scan(
    targets: TargetsArg,
    ports: PortsArg = None,
    *,
    exclude: str | Iterable[str] | None = None,
    ipv6: bool = False,
    resolve_names: bool = False,
    dns_servers: Sequence[str] | None = None,
    options: ScanOptions | None = None,
    **option_kw: Any,
) -> ScanHandle[PortResult]:
    """TCP connect scan (nmap ``-sT``): needs no privilege. Discovery is skipped (-Pn)."""
    return _port_scan_handle(
        ("connect",), targets, ports, discovery=False, probes=None, exclude=exclude,
        ipv6=ipv6, resolve_names=resolve_names, dns_servers=dns_servers, options=options,
        option_kw=option_kw, stream_hosts=False, name="connect_scan",
    )  # fmt: skip


def syn_scan(
    targets: TargetsArg,
    ports: PortsArg = None,
    *,
    exclude: str | Iterable[str] | None = None,
    ipv6: bool = False,
    resolve_names: bool = False,
    dns_servers: Sequence[str] | None = None,
    options: ScanOptions | None = None,
    **option_kw: Any,
) -> ScanHandle[PortResult]:
    """TCP SYN scan (nmap ``-sS``); needs CAP_NET_RAW. Discovery is skipped (-Pn)."""
    return _port_scan_handle(
        ("syn",), targets, ports, discovery=False, probes=None, exclude=exclude,
        ipv6=ipv6, resolve_names=resolve_names, dns_servers=dns_servers, options=options,
        option_kw=option_kw, stream_hosts=False, name="syn_scan",
    )  # fmt: skip


def udp_scan(
    targets: TargetsArg,
    ports: PortsArg = None,
    *,
    exclude: str | Iterable[str] | None = None,
    ipv6: bool = False,
    resolve_names: bool = False,
    dns_servers: Sequence[str] | None = None,
    options: ScanOptions | None = None,
    **option_kw: Any,
) -> ScanHandle[PortResult]:
    """UDP scan (nmap ``-sU``); needs CAP_NET_RAW. Discovery is skipped (-Pn)."""
    return _port_scan_handle(
        ("udp",), targets, ports, discovery=False, probes=None, exclude=exclude,
        ipv6=ipv6, resolve_names=resolve_names, dns_servers=dns_servers, options=options,
        option_kw=option_kw, stream_hosts=False, name="udp_scan",
    )  # fmt: skip


def scan(
    targets: TargetsArg,
    ports: PortsArg = None,
    *,
    scan_types: Sequence[ScanType] | None = None,
    skip_discovery: bool = False,
    probes: Sequence[DiscoveryProbe] | None = None,
    exclude: str | Iterable[str] | None = None,
    ipv6: bool = False,
    resolve_names: bool = False,
    dns_servers: Sequence[str] | None = None,
    version: bool | VersionOptions = False,
    options: ScanOptions | None = None,
    **option_kw: Any,
) -> ScanHandle[HostResult | PortResult]:
    """Discovery, then port scans of the hosts found up (nmap's default flow).

    ``scan_types`` defaults to SYN with CAP_NET_RAW and connect without (as nmap chooses);
    ``skip_discovery=True`` is nmap's ``-Pn``. ``version=True`` (or a
    :class:`VersionOptions`) adds version detection (``-sV``): open ports are then reported
    once, with their service, after detection. Iterating yields HostResults from discovery
    and PortResults from the port scans.
    """
    kinds: tuple[ScanType, ...] = (
        tuple(scan_types)
        if scan_types is not None
        else (("syn",) if netutil.has_raw_privilege() else ("connect",))
    )
    return _port_scan_handle(
        kinds, targets, ports, discovery=not skip_discovery, probes=probes,
        exclude=exclude, ipv6=ipv6, resolve_names=resolve_names, dns_servers=dns_servers,
        options=options, option_kw=option_kw, stream_hosts=True, name="scan",
        version=_version_options(version),
    )  # fmt: skip


def _version_options(version: bool | VersionOptions) -> VersionOptions | None:
    if isinstance(version, VersionOptions):
        return version
    return VersionOptions() if version else None


def version_scan(
    targets: TargetsArg | None,
    ports_or_report: PortsArg | ScanReport = None,
    *,
    intensity: int = 7,
    probe_file: str | None = None,
    concurrency: int = 64,
    timeout_scale: float = 1.0,
    scan_type: ScanType | None = None,
    exclude: str | Iterable[str] | None = None,
    ipv6: bool = False,
    resolve_names: bool = False,
    dns_servers: Sequence[str] | None = None,
    options: ScanOptions | None = None,
    **option_kw: Any,
) -> ScanHandle[PortResult]:
    """Service and version detection (nmap ``-sV``) with nmap's probe-file algorithm.

    Given a :class:`ScanReport`, probe its open ports (and UDP open|filtered ones) and
    return that report with services added; ``targets`` may then be None. Given ports (nmap
    syntax or numbers), port-scan them first (SYN with CAP_NET_RAW, connect without, or
    ``scan_type``; discovery skipped) and probe the open ones. ``intensity`` is 0-9 (light
    2, all 9); ``probe_file`` defaults to nmap's ``nmap-service-probes`` when nmap is
    installed, else pyscan's own built-in file.
    """
    settings = VersionOptions(intensity, probe_file, concurrency, timeout_scale)
    if isinstance(ports_or_report, ScanReport):
        report = ports_or_report
        run = _make_run(options, option_kw, (*report.scan_types, "version"), None, False, None)

        async def go(emit: Emit[PortResult] | None) -> ScanReport:
            for host in report.hosts:
                run.add_host(host)
            detector = _Detector(run, settings, emit or _ignore)
            for port in report.all_ports():
                if _wants_detection(port):
                    detector.submit(port)
            _merge(run, await detector.wait())
            merged = run.report(report.args or "version_scan")
            return attrs.evolve(merged, ports=report.ports, stats=report.stats)

        return ScanHandle(go, run.progress, run.resume_point)
    if targets is None:
        raise OptionsError("version_scan needs targets when it is given ports, not a report")
    kind: ScanType = scan_type or ("syn" if netutil.has_raw_privilege() else "connect")
    return _port_scan_handle(
        (kind,), targets, ports_or_report, discovery=False, probes=None, exclude=exclude,
        ipv6=ipv6, resolve_names=resolve_names, dns_servers=dns_servers, options=options,
        option_kw=option_kw, stream_hosts=False, name="version_scan", version=settings,
    )  # fmt: skip
