"""The services table: port numbers, service names and how often each port is found open.

How this works
--------------
A :class:`ServicesTable` maps ``(protocol, port)`` to a service name, a name to its ports,
and ranks every port of a protocol from "most often open" down ("top" order, which is what
``--top-ports N`` and ``-F`` take the head of). Two sources can fill it:

* nmap's ``nmap-services`` (``name  port/proto  frequency  [# comment]``), read at run time
  from ``$NMAPDIR``, ``/usr/share/nmap`` or ``/usr/local/share/nmap``. Its top order is by open
  frequency, highest first, ties in file order (as nmap 7.93 does; nmap's own file is
  sorted by port, so there ties go to the lower port).
* pyscan's own table ``pyscan/data/services.tsv`` (``name  port/proto``), used when nmap's
  file is absent or when asked for (``PYSCAN_NO_NMAP_DATA=1`` or ``use_nmap_data=False``).
  It carries no frequencies: rows appear in rank order within each protocol. See
  ``scripts/make_services_table.py`` for how that table is made.

Both parsers are total: any line that does not fit the format raises
:class:`ServicesFileError` naming the file and line.
"""

from __future__ import annotations

import bisect
import functools
import math
import os
import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path

import attrs

from pyscan.errors import DataFileError

__all__ = [
    "NMAP_DATA_DIRS",
    "NO_NMAP_DATA_ENV",
    "SERVICE_PROTOCOLS",
    "ServiceEntry",
    "ServicesFileError",
    "ServicesTable",
    "default_services",
    "embedded_services",
    "find_nmap_services",
    "parse_embedded_services",
    "parse_nmap_services",
    "services_from_nmap",
]

#: Protocols a services table knows ports for.
SERVICE_PROTOCOLS: tuple[str, ...] = ("tcp", "udp", "sctp")
#: Directories searched for ``nmap-services`` after ``$NMAPDIR``.
NMAP_DATA_DIRS: tuple[str, ...] = ("/usr/share/nmap", "/usr/local/share/nmap")
#: Environment variable: when set to anything but ``""`` or ``"0"``, ignore nmap's data files.
NO_NMAP_DATA_ENV = "PYSCAN_NO_NMAP_DATA"

_EMBEDDED_RESOURCE = "data/services.tsv"
_EMBEDDED_SOURCE = "<pyscan embedded services table>"
_MAX_PORT = 65535
_PORT_PROTO = re.compile(r"(\d{1,5})/([A-Za-z0-9]+)")
_FREQUENCY = re.compile(r"(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?")
# A well-formed nmap-services line (or a blank/comment line: group 1 is None).
_NMAP_LINE = re.compile(
    r"[ \t\f\v]*(?:([^\s#]+)[ \t\f\v]+(\d{1,5})/(tcp|udp|sctp)[ \t\f\v]+("
    + _FREQUENCY.pattern
    + r"))?[ \t\f\v]*(?:#.*)?"
)


# The same, for a whole file at once (data lines only), and what starts a data line.
_NMAP_ROW = re.compile(
    r"^[ \t\f\v]*([^\s#]+)[ \t\f\v]+(\d{1,5})/(tcp|udp|sctp)[ \t\f\v]+("
    + _FREQUENCY.pattern
    + r")[ \t\f\v]*(?:#.*)?$",
    re.MULTILINE,
)
_DATA_LINE = re.compile(r"^[ \t\f\v]*[^\s#]", re.MULTILINE)


class ServicesFileError(DataFileError, ValueError):
    """A line of a services file (nmap-services or pyscan's table) is malformed.

    Carries the file name and the 1-based line number.
    """

    def __init__(self, path: str, line: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.reason = reason
        ValueError.__init__(self, f"{path}:{line}: {reason}")

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.reason}"


@attrs.frozen
class ServiceEntry:
    """One row of a services table."""

    name: str
    port: int
    protocol: str
    #: Open frequency from nmap-services (0..1); ``None`` in pyscan's own table.
    frequency: float | None = None


# A row of a table: (name, frequency or None, the order it was given in).
_Row = tuple[str, float | None, int]


def _rank_key(item: tuple[tuple[str, int], _Row]) -> tuple[int, float, int]:
    _, (_, frequency, index) = item
    if frequency is None:
        return (1, 0.0, index)
    return (0, -frequency, index)


@attrs.frozen(eq=False)
class _Ranks:
    """A table's orders: top (best first), ascending, and by service name."""

    top: Mapping[str, tuple[int, ...]]
    sorted: Mapping[str, tuple[int, ...]]
    by_name: Mapping[str, Mapping[str, tuple[int, ...]]]


@attrs.frozen(eq=False)
class ServicesTable:
    """Service names and popularity ranking per protocol.

    Build one with :meth:`from_entries`, :func:`services_from_nmap`,
    :func:`embedded_services` or :func:`default_services`. The orders (:meth:`top`,
    :meth:`named`, :meth:`ports`) are worked out the first time one is asked for: a scan
    that only names its ports (the CLI's output) never needs them.
    """

    #: Where the data came from: a file path or ``"<pyscan embedded services table>"``.
    source: str
    _rows: Mapping[tuple[str, int], _Row]
    _lazy: dict[str, _Ranks] = attrs.field(factory=dict, repr=False)

    @classmethod
    def from_entries(cls, entries: Iterable[ServiceEntry], *, source: str) -> ServicesTable:
        """Build a table; the first entry for a ``(protocol, port)`` wins.

        Top order: entries with a frequency first, highest frequency first and ties in the
        order given; then entries without one, in the order given.
        """
        rows: dict[tuple[str, int], _Row] = {}
        for index, entry in enumerate(entries):
            if entry.protocol not in SERVICE_PROTOCOLS:
                raise ValueError(f"unknown protocol {entry.protocol!r} for {entry.name!r}")
            if not 0 <= entry.port <= _MAX_PORT:
                raise ValueError(f"port {entry.port} of {entry.name!r} is out of range")
            rows.setdefault((entry.protocol, entry.port), (entry.name, entry.frequency, index))
        return cls(source=source, rows=rows)

    @property
    def _ranks(self) -> _Ranks:
        ranks = self._lazy.get("ranks")
        if ranks is None:
            top: dict[str, list[int]] = {p: [] for p in SERVICE_PROTOCOLS}
            by_name: dict[str, dict[str, list[int]]] = {}
            for (protocol, port), (name, _, _) in sorted(self._rows.items(), key=_rank_key):
                top[protocol].append(port)
                by_name.setdefault(name, {}).setdefault(protocol, []).append(port)
            ranks = self._lazy["ranks"] = _Ranks(
                top={p: tuple(ports) for p, ports in top.items()},
                sorted={p: tuple(sorted(ports)) for p, ports in top.items()},
                by_name={
                    name: {p: tuple(sorted(ports)) for p, ports in protos.items()}
                    for name, protos in by_name.items()
                },
            )
        return ranks

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Iterator[ServiceEntry]:
        """Entries by protocol, each protocol in top order."""
        top = self._ranks.top
        for protocol in SERVICE_PROTOCOLS:
            for port in top[protocol]:
                name, frequency, _ = self._rows[(protocol, port)]
                yield ServiceEntry(name, port, protocol, frequency)

    def entry(self, port: int, protocol: str = "tcp") -> ServiceEntry | None:
        """The entry for ``port``/``protocol``, or ``None``."""
        row = self._rows.get((protocol, port))
        return None if row is None else ServiceEntry(row[0], port, protocol, row[1])

    def name(self, port: int, protocol: str = "tcp") -> str | None:
        """The service name of ``port``/``protocol``, or ``None`` when the table lacks it."""
        row = self._rows.get((protocol, port))
        return None if row is None else row[0]

    def ports(self, name: str, protocol: str = "tcp") -> tuple[int, ...]:
        """Ports (ascending) whose service is exactly ``name`` for ``protocol``."""
        return self._ranks.by_name.get(name, {}).get(protocol, ())

    def match(self, pattern: str, protocol: str = "tcp") -> tuple[int, ...]:
        """Ports (ascending) whose service name matches ``pattern``.

        ``*`` matches any run of characters and ``?`` any one character; everything else
        matches itself, case-sensitively.
        """
        if "*" not in pattern and "?" not in pattern:
            return self.ports(pattern, protocol)
        regex = _wildcard(pattern)
        found: list[int] = []
        for name, protos in self._ranks.by_name.items():
            if protocol in protos and regex.fullmatch(name):
                found.extend(protos[protocol])
        return tuple(sorted(found))

    def named(self, protocol: str, low: int = 0, high: int = _MAX_PORT) -> tuple[int, ...]:
        """Ports (ascending) within ``low..high`` that the table lists for ``protocol``."""
        ports = self._ranks.sorted.get(protocol, ())
        return ports[bisect.bisect_left(ports, low) : bisect.bisect_right(ports, high)]

    def top(self, protocol: str, n: int | None = None) -> tuple[int, ...]:
        """The ``n`` (default: all) ports most often open for ``protocol``, best first."""
        ranked = self._ranks.top.get(protocol, ())
        return ranked if n is None else ranked[: max(n, 0)]

    def __repr__(self) -> str:
        counts = ", ".join(
            f"{p}={sum(1 for q, _ in self._rows if q == p)}" for p in SERVICE_PROTOCOLS
        )
        return f"<ServicesTable {self.source!r} {counts}>"


@functools.lru_cache(maxsize=256)
def _wildcard(pattern: str) -> re.Pattern[str]:
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.DOTALL)


def _decode(data: bytes, path: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ServicesFileError(path, line, "not valid UTF-8 text") from None


def _port_proto(field: str, path: str, lineno: int) -> tuple[int, str]:
    m = _PORT_PROTO.fullmatch(field)
    if m is None:
        raise ServicesFileError(path, lineno, f"expected port/protocol, got {field!r}")
    port, protocol = int(m.group(1)), m.group(2)
    if port > _MAX_PORT:
        raise ServicesFileError(path, lineno, f"port {port} is out of range 0-65535")
    if protocol not in SERVICE_PROTOCOLS:
        raise ServicesFileError(path, lineno, f"unknown protocol {protocol!r} in {field!r}")
    return port, protocol


def _data_lines(text: str) -> Iterator[tuple[int, list[str]]]:
    for lineno, raw in enumerate(text.splitlines(), start=1):
        fields = raw.split("#", 1)[0].split()
        if fields:
            yield lineno, fields


def parse_nmap_services(text: str | bytes, path: str = "nmap-services") -> list[ServiceEntry]:
    """Parse the text of an nmap-services file (``name port/proto frequency [# comment]``)."""
    if isinstance(text, bytes):
        text = _decode(text, path)
    entries: list[ServiceEntry] = []
    fast = _NMAP_LINE.fullmatch
    for lineno, line in enumerate(text.splitlines(), start=1):
        m = fast(line)
        if m is not None:
            if m.group(1) is None:
                continue  # blank or comment
            port, frequency = int(m.group(2)), float(m.group(4))
            if port <= _MAX_PORT and frequency <= 1.0:
                entries.append(ServiceEntry(m.group(1), port, m.group(3), frequency))
                continue
        entry = _nmap_line(line, path, lineno)
        if entry is not None:
            entries.append(entry)
    return entries


def _nmap_line(line: str, path: str, lineno: int) -> ServiceEntry | None:
    """Field-by-field parse of one line, with a precise error; ``None`` for no data."""
    for _, fields in _data_lines(line):
        if len(fields) != 3:
            raise ServicesFileError(
                path, lineno, f"expected 'name port/protocol frequency', got {len(fields)} fields"
            )
        name, where, freq_text = fields
        port, protocol = _port_proto(where, path, lineno)
        if _FREQUENCY.fullmatch(freq_text) is None:
            raise ServicesFileError(path, lineno, f"bad open frequency {freq_text!r}")
        frequency = float(freq_text)
        if not (math.isfinite(frequency) and frequency <= 1.0):
            raise ServicesFileError(path, lineno, f"open frequency {freq_text!r} is not in 0..1")
        return ServiceEntry(name, port, protocol, frequency)
    return None


def parse_embedded_services(text: str | bytes, path: str = _EMBEDDED_SOURCE) -> list[ServiceEntry]:
    """Parse pyscan's own table format (``name port/proto``; rank = order within protocol)."""
    if isinstance(text, bytes):
        text = _decode(text, path)
    entries: list[ServiceEntry] = []
    for lineno, fields in _data_lines(text):
        if len(fields) != 2:
            raise ServicesFileError(
                path, lineno, f"expected 'name port/protocol', got {len(fields)} fields"
            )
        port, protocol = _port_proto(fields[1], path, lineno)
        entries.append(ServiceEntry(fields[0], port, protocol))
    return entries


def services_from_nmap(path: str | os.PathLike[str]) -> ServicesTable:
    """Load an nmap-services file."""
    name = os.fspath(path)
    try:
        data = Path(name).read_bytes()
    except OSError as exc:
        raise DataFileError(f"cannot read services file {name!r}: {exc.strerror or exc}") from exc
    text = _decode(data, name)
    rows = _nmap_rows(text)
    if rows is not None:
        return ServicesTable(source=name, rows=rows)
    return ServicesTable.from_entries(parse_nmap_services(text, name), source=name)


def _nmap_rows(text: str) -> dict[tuple[str, int], _Row] | None:
    """The rows of a well-formed nmap-services text, matched in one pass (a few ms for
    nmap's 27,000 lines, where parsing line by line takes 0.1 s); ``None`` if any line is not
    well-formed, for :func:`parse_nmap_services` to say which and why."""
    found = _NMAP_ROW.findall(text)
    if len(found) != len(_DATA_LINE.findall(text)):
        return None
    rows: dict[tuple[str, int], _Row] = {}
    for index, (name, port_text, protocol, frequency_text) in enumerate(found):
        port, frequency = int(port_text), float(frequency_text)
        if port > _MAX_PORT or not frequency <= 1.0:
            return None
        key = (protocol, port)
        if key not in rows:
            rows[key] = (name, frequency, index)
    return rows


@functools.cache
def embedded_services() -> ServicesTable:
    """pyscan's own services table, shipped in the package."""
    from importlib import resources  # noqa: PLC0415 - costly to import, needed only here

    data = resources.files("pyscan").joinpath(_EMBEDDED_RESOURCE).read_bytes()
    return ServicesTable.from_entries(parse_embedded_services(data), source=_EMBEDDED_SOURCE)


def find_nmap_services(environ: Mapping[str, str] | None = None) -> Path | None:
    """The nmap-services file nmap would use: ``$NMAPDIR``, then the usual install dirs."""
    env = os.environ if environ is None else environ
    dirs = [env["NMAPDIR"]] if env.get("NMAPDIR") else []
    dirs.extend(NMAP_DATA_DIRS)
    for directory in dirs:
        candidate = Path(directory) / "nmap-services"
        if candidate.is_file():
            return candidate
    return None


@functools.lru_cache(maxsize=8)
def _load(path: str | None) -> ServicesTable:
    return embedded_services() if path is None else services_from_nmap(path)


def default_services(*, use_nmap_data: bool | None = None) -> ServicesTable:
    """The services table to use: nmap's when installed, else pyscan's own (cached).

    ``use_nmap_data=None`` consults ``$PYSCAN_NO_NMAP_DATA``; ``False`` forces the embedded
    table; ``True`` looks for nmap's file and still falls back when it is absent.
    """
    if use_nmap_data is None:
        use_nmap_data = os.environ.get(NO_NMAP_DATA_ENV, "") in ("", "0")
    path = find_nmap_services() if use_nmap_data else None
    return _load(None if path is None else str(path))
