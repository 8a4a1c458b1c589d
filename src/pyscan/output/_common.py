"""What every output format shares: options, nmap's "ignored states" rule, names, times.

How this works
--------------
nmap does not list every scanned port. For each host it *ignores* (folds into one
"Not shown" line / ``<extraports>`` element / grepable ``Ignored State``) every port state
that holds more than 25 ports (more with ``-v``), never ``open``; with ``--open`` every state
that cannot be open. :func:`host_view` applies that rule once and returns the folded
states, in nmap's order (most ports first, ties by nmap's internal state number), each
split into (reason, protocol) groups (most ports first), plus the ports left to list.
The writers only lay that view out, so the three text formats always agree.

Times are formatted in local time like nmap, or in ``OutputOptions.tz`` when given (tests
pass UTC). Day and month names are fixed English, independent of the C locale.
"""

from __future__ import annotations

import datetime as _dt
import math
import operator
from collections.abc import Callable, Iterable
from typing import Protocol as _TypingProtocol
from typing import TypeAlias

import attrs

from pyscan._models import (
    HostResult,
    HostStatus,
    PortResult,
    PortState,
    ScanReport,
    ScanStats,
)
from pyscan._version import __version__
from pyscan.errors import OptionsError

__all__ = [
    "PROJECT_URL",
    "OutputOptions",
    "ReportWriter",
    "ServiceNameLookup",
    "write_report",
]

#: Shown where nmap shows its home page.
PROJECT_URL = "https://github.com/pyscan"

#: ``(protocol, port) -> name``: the services-table lookup the writers use for port names.
ServiceNameLookup: TypeAlias = Callable[[str, int], str | None]

# nmap's internal state numbers (portlist.h); they break ties between ignored states.
_STATE_NUMBER = {
    PortState.CLOSED: 1,
    PortState.OPEN: 2,
    PortState.FILTERED: 3,
    PortState.UNFILTERED: 6,
    PortState.OPEN_FILTERED: 7,
    PortState.CLOSED_FILTERED: 8,
}
_MAYBE_OPEN = frozenset({PortState.OPEN, PortState.OPEN_FILTERED, PortState.UNFILTERED})
_PROTO_ORDER = {"tcp": 0, "udp": 1, "sctp": 2}
_STATE_OF = operator.attrgetter("state")

# scaninfo type -> protocol (nmap's scan_types); anything else (ping, list, version) has none.
SCAN_TYPE_PROTOCOL = {
    "syn": "tcp",
    "ack": "tcp",
    "bounce": "tcp",
    "connect": "tcp",
    "null": "tcp",
    "xmas": "tcp",
    "window": "tcp",
    "maimon": "tcp",
    "fin": "tcp",
    "udp": "udp",
    "sctpinit": "sctp",
    "sctpcookieecho": "sctp",
    "ipproto": "ip",
}


def _non_negative(_inst: object, attr: attrs.Attribute[int], value: int) -> None:
    if value < 0:
        raise OptionsError(f"{attr.name} must be >= 0, got {value!r}")


@attrs.frozen
class OutputOptions:
    """Options every writer takes, named after the nmap flags they mirror.

    ``verbose`` / ``debugging`` (``-v`` / ``-d`` levels) show down hosts and fold fewer
    ports; ``reason`` adds the REASON column (``--reason``); ``open_only`` keeps only hosts
    with possibly-open ports and lists only those ports (``--open``). ``service_scan``
    forces the VERSION column and the ``?`` suffix of unsure names on (``-sV``); ``None``
    turns it on when the report says ``"version"`` in ``scan_types`` or a port carries a
    probed service. ``service_name`` is the services-table lookup ``(protocol, port) ->
    name``; a probed service's own name always wins over it, and without either a port is
    ``unknown``. ``tz`` is the time zone for dates (``None``: local time, as nmap).
    """

    verbose: int = attrs.field(default=0, validator=_non_negative)
    debugging: int = attrs.field(default=0, validator=_non_negative)
    reason: bool = False
    open_only: bool = False
    service_scan: bool | None = None
    service_name: ServiceNameLookup | None = attrs.field(default=None, eq=False)
    tz: _dt.tzinfo | None = None


class ReportWriter(_TypingProtocol):
    """The streaming interface of every writer: ``start``, then ``host`` per host, ``finish``."""

    def start(self, report: ScanReport) -> None:
        """Write the header; ``report`` gives args, scan types, ports, version and start time."""

    def host(self, host: HostResult) -> None:
        """Write one finished host (skipped when the options hide it) and flush."""

    def finish(self, stats: ScanStats, *, error: str | None = None) -> None:
        """Write the footer; ``error`` marks an interrupted or failed run."""


def write_report(writer: ReportWriter, report: ScanReport) -> None:
    """Write a whole report through a streaming writer (start, every host, finish)."""
    writer.start(report)
    for h in report.hosts:
        writer.host(h)
    writer.finish(effective_stats(report))


def effective_stats(report: ScanReport) -> ScanStats:
    """``report.stats``, with host counts taken from the hosts when the stats have none."""
    s = report.stats
    if s.hosts_total or not report.hosts:
        return s
    up = 0 if is_list_scan(report) else sum(1 for h in report.hosts if h.is_up)
    return attrs.evolve(
        s, hosts_total=len(report.hosts), hosts_up=up, hosts_down=len(report.hosts) - up
    )


# -- scan modes -------------------------------------------------------------------------------


def is_list_scan(report: ScanReport) -> bool:
    """A list scan (``-sL``): hosts are only named, never probed."""
    return "list" in report.scan_types


def is_port_scan(report: ScanReport) -> bool:
    """A scan with a port table (not ``-sn`` / ``-sL``)."""
    if is_list_scan(report):
        return False
    return bool(report.ports) or any(t in SCAN_TYPE_PROTOCOL for t in report.scan_types)


def service_scan_on(options: OutputOptions, report: ScanReport | None, host: HostResult) -> bool:
    """Whether the VERSION column (``-sV``) applies to ``host``."""
    if options.service_scan is not None:
        return options.service_scan
    if report is not None and "version" in report.scan_types:
        return True
    return any(p.service is not None and p.service.method == "probed" for p in host.ports)


class HostCounter:
    """Counts the hosts a writer was given, for a footer without stats."""

    def __init__(self) -> None:
        self.total = 0
        self.up = 0

    def add(self, host: HostResult, *, list_scan: bool) -> None:
        self.total += 1
        if host.is_up and not list_scan:
            self.up += 1

    def totals(self, stats: ScanStats, *, list_scan: bool) -> tuple[int, int]:
        """(IP addresses, hosts up) for the footer; nmap counts no host up in a list scan."""
        if stats.hosts_total:
            return stats.hosts_total, 0 if list_scan else stats.hosts_up
        return self.total, self.up


def shows_host(host: HostResult, options: OutputOptions, *, port_scan: bool) -> bool:
    """nmap's rule for whether a host appears in the output at all."""
    if host.status is HostStatus.DOWN:
        return options.verbose > 0 and (not options.open_only or has_open_ports(host))
    if options.open_only and (port_scan or host.ports):
        return has_open_ports(host)
    return True


def has_open_ports(host: HostResult) -> bool:
    """True when a port is open, open|filtered or unfiltered (nmap's ``--open`` test)."""
    return any(p.state in _MAYBE_OPEN for p in host.ports)


# -- folding ports (nmap's "Not shown") -----------------------------------------------------


@attrs.frozen
class ReasonGroup:
    """Folded ports of one state sharing a reason and protocol."""

    reason: str
    protocol: str
    ports: tuple[int, ...]

    @property
    def count(self) -> int:
        return len(self.ports)


@attrs.frozen
class ExtraPorts:
    """One folded ("ignored") state of a host."""

    state: PortState
    count: int
    reasons: tuple[ReasonGroup, ...]


@attrs.frozen
class HostView:
    """A host's ports as nmap lays them out: folded states, then the ports to list."""

    extras: tuple[ExtraPorts, ...]
    shown: tuple[PortResult, ...]
    total: int

    @property
    def all_ignored(self) -> bool:
        return self.total > 0 and not self.shown


def _is_ignored(state: PortState, count: int, options: OutputOptions) -> bool:
    if options.debugging > 2 or state is PortState.OPEN or count == 0:
        return False
    if state is PortState.OPEN_FILTERED and options.verbose > 2:
        return False
    if options.open_only and state not in _MAYBE_OPEN:
        return True
    limit = 25
    if options.verbose or options.debugging:
        limit *= options.verbose + 1 + 20 * options.debugging
    return count > limit


def _view_key(p: PortResult) -> tuple[int, int]:
    return (_PROTO_ORDER.get(p.protocol, 9), p.port)


def host_view(host: HostResult, options: OutputOptions) -> HostView:
    """Fold ``host``'s ports the way nmap does (see the module docstring).

    One pass over the ports: a full port scan has 65,535, so the folded ones are only
    counted and grouped (their port numbers sorted as numbers), and only the few shown are
    sorted as results.
    """
    counts: dict[PortState, int] = {}
    for state in map(_STATE_OF, host.ports):
        counts[state] = counts.get(state, 0) + 1
    ignored = [s for s, n in counts.items() if _is_ignored(s, n, options)]
    ignored.sort(key=lambda s: (-counts[s], _STATE_NUMBER[s]))
    if not ignored:
        return HostView((), tuple(sorted(host.ports, key=_view_key)), len(host.ports))
    folded: dict[PortState, dict[tuple[str, str], list[int]]] = {s: {} for s in ignored}
    shown: list[PortResult] = []
    for p in host.ports:
        groups = folded.get(p.state)
        if groups is None:
            shown.append(p)
            continue
        key = (p.reason.kind.value, p.protocol)
        nums = groups.get(key)
        if nums is None:
            groups[key] = [p.port]
        else:
            nums.append(p.port)
    extras = []
    for state in ignored:
        groups = folded[state]
        for nums in groups.values():
            nums.sort()
        # biggest group first; ties in port order (protocol first) of their first port
        ordered = sorted(
            groups.items(),
            key=lambda kv: (-len(kv[1]), _PROTO_ORDER.get(kv[0][1], 9), kv[1][0]),
        )
        extras.append(
            ExtraPorts(
                state,
                counts[state],
                tuple(ReasonGroup(r, proto, tuple(nums)) for (r, proto), nums in ordered),
            )
        )
    return HostView(tuple(extras), tuple(sorted(shown, key=_view_key)), len(host.ports))


# -- names ------------------------------------------------------------------------------------


def user_name(host: HostResult) -> str | None:
    """The name the user gave for the target, if any."""
    return next((n.name for n in host.hostnames if n.type == "user"), None)


def ptr_name(host: HostResult) -> str | None:
    """The reverse-DNS name, if any."""
    return next((n.name for n in host.hostnames if n.type == "PTR"), None)


def name_ip(host: HostResult) -> str:
    """nmap's ``name (address)`` or ``address``; the user's name wins over the PTR name."""
    name = user_name(host) or ptr_name(host)
    return f"{name} ({host.address})" if name else str(host.address)


def table_name(port: PortResult, options: OutputOptions) -> str | None:
    """The service name of a port, or None when neither probe nor table knows it."""
    svc = port.service
    if svc is not None and svc.method == "probed" and svc.name:
        return svc.name
    if options.service_name is not None:
        looked_up = options.service_name(port.protocol, port.port)
        if looked_up:
            return looked_up
    if svc is not None and svc.name:
        return svc.name
    return None


def display_name(port: PortResult, options: OutputOptions, *, service_scan: bool) -> str:
    """The SERVICE column: ``ssl/`` for tunnels, ``?`` when version detection is unsure."""
    name = table_name(port, options)
    tunnel = "ssl/" if port.service is not None and port.service.tunnel == "ssl" else ""
    if name is None or name == "unknown":
        return f"{tunnel}unknown"
    unsure = (
        service_scan
        and port.state is PortState.OPEN
        and (port.service is None or port.service.conf <= 5)
    )
    return f"{tunnel}{name}{'?' if unsure else ''}"


def reason_text(port: PortResult) -> str:
    """The REASON column: ``syn-ack`` or ``syn-ack ttl 64``."""
    r = port.reason
    return f"{r.kind.value} ttl {r.ttl}" if r.ttl else r.kind.value


# -- numbers and words ------------------------------------------------------------------------


def plural(n: int, one: str, many: str) -> str:
    return one if n == 1 else many


def done_summary(total: int, up: int, elapsed: float) -> str:
    """``1 IP address (1 host up) scanned in 0.07 seconds``."""
    return (
        f"{total} {plural(total, 'IP address', 'IP addresses')} "
        f"({up} {plural(up, 'host', 'hosts')} up) scanned in {elapsed:.2f} seconds"
    )


def sig_digits(value: float, digits: int = 2) -> str:
    """``value`` rounded to ``digits`` significant digits, in fixed notation (nmap's latency).

    Halves round up, as nmap's do (``round`` would take 10.5 to 10: a latency of 105 us
    would read 0.00010s where nmap writes 0.00011s)."""
    if value == 0 or not math.isfinite(value):
        return f"{0:.{digits}f}"  # nmap's zero: "0.00"
    shift = math.floor(math.log10(abs(value))) - digits + 1
    rounded = math.floor(value / 10.0**shift + 0.5) * 10.0**shift
    return f"{rounded:.{max(0, -shift)}f}"


def port_ranges(ports: Iterable[int]) -> str:
    """``1-100,8080``: sorted, consecutive ports collapsed (nmap's range lists)."""
    return _format_ranges(_merge((p, p) for p in ports))


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for lo, hi in sorted(intervals):
        if merged and lo <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(hi, merged[-1][1]))
        else:
            merged.append((lo, hi))
    return merged


def _format_ranges(intervals: list[tuple[int, int]]) -> str:
    return ",".join(str(lo) if lo == hi else f"{lo}-{hi}" for lo, hi in intervals)


def spec_ranges(spec: str, highest: int = 65535) -> tuple[int, str]:
    """Count and canonical range list of a numeric port spec (``"80,1-100,-5,60000-"``).

    Items that are not numbers or ranges (service names) are kept as given after the
    numeric ranges and not counted.
    """
    intervals: list[tuple[int, int]] = []
    other: list[str] = []
    for raw in spec.split(","):
        item = raw.strip()
        if not item:
            continue
        lo_s, sep, hi_s = item.partition("-")
        try:
            if sep:
                lo = int(lo_s) if lo_s else 1
                hi = int(hi_s) if hi_s else highest
            else:
                lo = hi = int(item)
        except ValueError:
            other.append(item)
            continue
        if 0 <= lo <= hi <= highest:
            intervals.append((lo, hi))
        else:
            other.append(item)
    merged = _merge(intervals)
    count = sum(hi - lo + 1 for lo, hi in merged)
    return count, ",".join([_format_ranges(merged), *other]).strip(",")


# -- times --------------------------------------------------------------------------------------

_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def to_datetime(ts: float, tz: _dt.tzinfo | None) -> _dt.datetime:
    """A POSIX timestamp in ``tz`` (local time when None)."""
    if tz is None:
        return _dt.datetime.fromtimestamp(ts).astimezone()
    return _dt.datetime.fromtimestamp(ts, tz)


def ctime(ts: float, tz: _dt.tzinfo | None) -> str:
    """``Sat Nov 21 20:24:23 2026`` (C's ctime, as nmap's file headers)."""
    d = to_datetime(ts, tz)
    return (
        f"{_DAYS[d.weekday()]} {_MONTHS[d.month - 1]} {d.day:2d} "
        f"{d.hour:02d}:{d.minute:02d}:{d.second:02d} {d.year}"
    )


def start_time(ts: float, tz: _dt.tzinfo | None) -> str:
    """``2026-11-21 20:30 UTC`` (the terminal start line)."""
    d = to_datetime(ts, tz)
    return f"{d:%Y-%m-%d %H:%M} {d.tzname() or ''}".rstrip()


def full_time(ts: float, tz: _dt.tzinfo | None) -> str:
    """``2026-11-21 20:30:05 UTC`` (``Scanned at`` with ``-vv``)."""
    d = to_datetime(ts, tz)
    return f"{d:%Y-%m-%d %H:%M:%S} {d.tzname() or ''}".rstrip()


def version_of(report: ScanReport) -> str:
    return report.version or __version__


# -- hostile text -------------------------------------------------------------------------------


def escape_unprintable(text: str) -> str:
    r"""Replace control, separator, surrogate and non-characters with ``\xNN`` / ``\uNNNN``.

    Lone surrogates from ``errors="surrogateescape"`` decoding become ``\xNN`` of the
    original byte. Backslashes themselves are kept, as nmap does.
    """
    if text.isprintable():
        return text
    out = []
    for ch in text:
        if ch.isprintable():
            out.append(ch)
        else:
            out.append(escape_char(ch))
    return "".join(out)


def escape_char(ch: str) -> str:
    r"""The ``\xNN`` / ``\uNNNN`` / ``\UNNNNNNNN`` spelling of one character."""
    cp = ord(ch)
    if 0xDC80 <= cp <= 0xDCFF:
        return f"\\x{cp - 0xDC00:02x}"
    if cp < 0x100:
        return f"\\x{cp:02x}"
    if cp < 0x10000:
        return f"\\u{cp:04x}"
    return f"\\U{cp:08x}"


def is_xml_char(ch: str) -> bool:
    """True for characters XML 1.0 allows (its ``Char`` production)."""
    cp = ord(ch)
    return (
        cp in (0x9, 0xA, 0xD)
        or 0x20 <= cp <= 0xD7FF
        or 0xE000 <= cp <= 0xFFFD
        or 0x10000 <= cp <= 0x10FFFF
    )
