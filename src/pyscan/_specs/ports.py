"""nmap port specifications (``-p``, ``--exclude-ports``, ``--top-ports``, ``-F``).

How this works
--------------
A spec is a comma-separated list of elements, read left to right by a small scanner that
remembers the current protocol qualifier and whether a ``[`` is open::

    spec    := element ("," element)* [","]
    element := ["["] [QUAL] ["["] item ["]"]          (whitespace allowed around parts)
    QUAL    := "T:" | "U:" | "S:" | "P:"               (tcp, udp, sctp, IP protocol)
    item    := N | N "-" N | "-" N | N "-" | "-" | name-pattern

* A qualifier applies to every element after it until the next qualifier; elements before
  any qualifier apply to every scanned protocol (the ``protocols`` argument).
* Open range ends are 1 and 65535 for ports (0 and 255 for IP protocols): ``-`` is 1-65535,
  so port 0 is scanned only when written, e.g. ``0``, ``0-`` or ``0-100``.
* A name pattern (``http``, ``http*``, ``*sql*``; ``*`` and ``?`` are wildcards) selects the
  ports the services table gives that name, per protocol. It must match something in at
  least one protocol it applies to. Names cannot select IP protocols.
* Inside ``[...]`` (which may span elements) a range keeps only ports the services table
  lists: ``[1-1024]``, ``[-]``.
* Qualified elements for protocols that are not scanned are checked but contribute nothing,
  as in nmap. Each protocol collects into a 64 KiB bitmap, read out as a sorted tuple.

Differences from nmap 7.93, all on input nmap accepts oddly: a qualifier with nothing after
it (``T:U:53``, ``80,T:``) and an unclosed ``[`` are errors here; whitespace is allowed only
around elements and after a qualifier (nmap also takes ``1 -5``).
"""

from __future__ import annotations

import bisect
import itertools
from array import array
from collections.abc import Callable, Iterable, Iterator
from typing import Final

import attrs

from pyscan._specs.services import ServicesTable, default_services
from pyscan.errors import PortSpecError

__all__ = [
    "ALL_PROTOCOLS",
    "PortList",
    "default_ports",
    "exclude",
    "fast_ports",
    "parse_exclude_ports",
    "parse_ports",
    "resolve_ports",
    "top_ports",
]

#: Protocols a :class:`PortList` holds, in iteration order. ``ip`` holds IP protocol numbers.
ALL_PROTOCOLS: Final = ("tcp", "udp", "sctp", "ip")
_QUALIFIERS: Final = {"T": "tcp", "U": "udp", "S": "sctp", "P": "ip"}
_PREFIX: Final = {proto: letter for letter, proto in _QUALIFIERS.items()}
_MAX: Final = {"tcp": 65535, "udp": 65535, "sctp": 65535, "ip": 255}
_OPEN_LOW: Final = {"tcp": 1, "udp": 1, "sctp": 1, "ip": 0}
_TCP_ONLY: Final = frozenset({"tcp"})
_NAME_START: Final = frozenset("abcdefghijklmnopqrstuvwxyz*?")
_NAME_CHARS: Final = _NAME_START | frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-")
_DIGITS: Final = frozenset("0123456789")
_SPACE: Final = frozenset(" \t")


def _as_ports(values: Iterable[int]) -> tuple[int, ...]:
    ports = tuple(sorted(set(values)))
    try:
        array("q", ports)  # rejects non-integers in C, fast on 65536 ports
    except (TypeError, OverflowError):
        raise TypeError(f"ports must be integers, got {ports!r:.80}") from None
    return ports


def _check_range(
    maximum: int,
) -> Callable[[object, attrs.Attribute[tuple[int, ...]], tuple[int, ...]], None]:
    def check(
        _inst: object, attribute: attrs.Attribute[tuple[int, ...]], v: tuple[int, ...]
    ) -> None:
        if v and (v[0] < 0 or v[-1] > maximum):
            bad = v[0] if v[0] < 0 else v[-1]
            raise PortSpecError(str(bad), f"{attribute.name} value out of range 0-{maximum}")

    return check


def _ranges(ports: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    if not ports:
        return
    first = last = ports[0]
    for port in ports[1:]:
        if port != last + 1:
            yield first, last
            first = port
        last = port
    yield first, last


@attrs.frozen(repr=False)
class PortList:
    """The ports to scan per protocol: sorted, de-duplicated tuples.

    Iterating yields ``(protocol, port)`` pairs, protocol by protocol (tcp, udp, sctp, ip),
    each in ascending order; ``in`` takes the same pairs.
    """

    tcp: tuple[int, ...] = attrs.field(
        default=(), converter=_as_ports, validator=_check_range(65535)
    )
    udp: tuple[int, ...] = attrs.field(
        default=(), converter=_as_ports, validator=_check_range(65535)
    )
    sctp: tuple[int, ...] = attrs.field(
        default=(), converter=_as_ports, validator=_check_range(65535)
    )
    #: IP protocol numbers (``-sO``), 0-255.
    ip: tuple[int, ...] = attrs.field(default=(), converter=_as_ports, validator=_check_range(255))

    def ports(self, protocol: str) -> tuple[int, ...]:
        """The ports of one protocol (``"tcp"``, ``"udp"``, ``"sctp"`` or ``"ip"``)."""
        if protocol not in _MAX:
            raise ValueError(f"unknown protocol {protocol!r}")
        ports: tuple[int, ...] = getattr(self, protocol)
        return ports

    @property
    def count(self) -> int:
        """Number of ``(protocol, port)`` pairs."""
        return len(self.tcp) + len(self.udp) + len(self.sctp) + len(self.ip)

    @property
    def protocols(self) -> frozenset[str]:
        """Protocols with at least one port."""
        return frozenset(p for p in ALL_PROTOCOLS if self.ports(p))

    def __len__(self) -> int:
        return self.count

    def __repr__(self) -> str:
        return f"<PortList {self.to_nmap_spec() or '(empty)'} ({self.count} ports)>"

    def __bool__(self) -> bool:
        return self.count > 0

    def __iter__(self) -> Iterator[tuple[str, int]]:
        for protocol in ALL_PROTOCOLS:
            for port in self.ports(protocol):
                yield protocol, port

    def __contains__(self, item: object) -> bool:
        if not (isinstance(item, tuple) and len(item) == 2):
            return False
        protocol, port = item
        if not (isinstance(protocol, str) and protocol in _MAX and isinstance(port, int)):
            return False
        ports = self.ports(protocol)
        i = bisect.bisect_left(ports, port)
        return i < len(ports) and ports[i] == port

    def ranges(self, protocol: str) -> list[tuple[int, int]]:
        """Maximal runs ``(first, last)`` of consecutive ports of ``protocol``."""
        return list(_ranges(self.ports(protocol)))

    def to_nmap_spec(self) -> str:
        """A compact, fully qualified nmap spec, e.g. ``"T:1-1024,U:53"`` (``""`` if empty)."""
        parts: list[str] = []
        for protocol in ALL_PROTOCOLS:
            items = [f"{a}" if a == b else f"{a}-{b}" for a, b in self.ranges(protocol)]
            if items:
                parts.append(f"{_PREFIX[protocol]}:{','.join(items)}")
        return ",".join(parts)

    def restrict(self, protocols: Iterable[str]) -> PortList:
        """Only the given protocols."""
        keep = frozenset(protocols)
        return PortList(**{p: self.ports(p) if p in keep else () for p in ALL_PROTOCOLS})

    def __or__(self, other: PortList) -> PortList:
        return PortList(**{p: self.ports(p) + other.ports(p) for p in ALL_PROTOCOLS})

    def __sub__(self, other: PortList) -> PortList:
        out: dict[str, tuple[int, ...]] = {}
        for p in ALL_PROTOCOLS:
            drop = frozenset(other.ports(p))
            out[p] = tuple(x for x in self.ports(p) if x not in drop)
        return PortList(**out)


def _check_protocols(protocols: Iterable[str], spec: str) -> frozenset[str]:
    protos = frozenset(protocols)
    unknown = sorted(protos - frozenset(ALL_PROTOCOLS))
    if unknown:
        raise PortSpecError(spec, f"unknown protocol(s) {', '.join(unknown)}")
    if not protos:
        raise PortSpecError(spec, "no protocols to scan")
    return protos


@attrs.define
class _Parser:
    """One pass over a spec; collects into per-protocol bitmaps."""

    spec: str
    protocols: frozenset[str]
    services: ServicesTable | None
    bitmaps: dict[str, bytearray] = attrs.Factory(
        lambda: {p: bytearray(_MAX[p] + 1) for p in ALL_PROTOCOLS}
    )
    pos: int = 0
    qualifier: str | None = None
    bracket: int | None = None

    def fail(self, reason: str, position: int | None) -> PortSpecError:
        return PortSpecError(self.spec, reason, position)

    def table(self) -> ServicesTable:
        if self.services is None:
            self.services = default_services()
        return self.services

    def skip_space(self) -> None:
        while self.pos < len(self.spec) and self.spec[self.pos] in _SPACE:
            self.pos += 1

    def peek(self) -> str:
        return self.spec[self.pos] if self.pos < len(self.spec) else ""

    def run(self) -> None:
        spec = self.spec
        self.skip_space()
        if self.pos >= len(spec):
            raise self.fail("empty port specification", None)
        while True:
            self.element()
            self.skip_space()
            if self.pos >= len(spec):
                break
            if spec[self.pos] != ",":
                raise self.fail(f"unexpected {spec[self.pos]!r}; expected ','", self.pos)
            self.pos += 1
            self.skip_space()
            if self.pos >= len(spec):
                break  # one trailing comma, as nmap allows
        if self.bracket is not None:
            raise self.fail("'[' is never closed", self.bracket)

    def open_bracket(self) -> None:
        if self.peek() == "[":
            if self.bracket is not None:
                raise self.fail("'[' cannot be nested", self.pos)
            self.bracket = self.pos
            self.pos += 1
            self.skip_space()
            if self.peek() == "[":
                raise self.fail("'[' cannot be nested", self.pos)

    def element(self) -> None:
        spec = self.spec
        self.open_bracket()
        c = self.peek()
        if c.isascii() and c.isalpha() and spec[self.pos + 1 : self.pos + 2] == ":":
            if c not in _QUALIFIERS:
                raise self.fail(
                    f"unknown protocol qualifier '{c}:' (use T:, U:, S: or P:)", self.pos
                )
            start = self.pos
            self.pos += 2
            self.skip_space()
            nxt = self.peek()
            if nxt in ("", ",", "]") or (
                nxt.isascii() and nxt.isalpha() and spec[self.pos + 1 : self.pos + 2] == ":"
            ):
                raise self.fail(f"qualifier '{c}:' has no ports after it", start)
            self.qualifier = _QUALIFIERS[c]
            self.open_bracket()
        c = self.peek()
        if c in _DIGITS or c == "-":
            self.numeric()
        elif c in _NAME_START:
            self.name()
        elif c == "":
            raise self.fail("expected a port, range or service name at the end", self.pos)
        else:
            raise self.fail(f"unexpected {c!r}; expected a port, range or service name", self.pos)
        self.skip_space()
        if self.peek() == "]":
            if self.bracket is None:
                raise self.fail("']' without a matching '['", self.pos)
            self.bracket = None
            self.pos += 1

    def targets(self) -> tuple[str, ...]:
        if self.qualifier is not None:
            return (self.qualifier,)
        return tuple(p for p in ALL_PROTOCOLS if p in self.protocols)

    def number(self) -> tuple[int | None, int]:
        start = self.pos
        while self.peek() in _DIGITS and self.peek():
            self.pos += 1
        digits = self.spec[start : self.pos]
        if not digits:
            return None, start
        value = int(digits) if len(digits.lstrip("0")) <= 6 else 10**6
        if value > 65535:
            raise self.fail(f"port {digits} is out of range 0-65535", start)
        return value, start

    def numeric(self) -> None:
        start = self.pos
        low, _ = self.number()
        high: int | None = low
        high_pos = start
        if self.peek() == "-":
            self.pos += 1
            high, high_pos = self.number()
        c = self.peek()
        if c and c not in _SPACE and c not in ",]":
            raise self.fail(f"unexpected {c!r} in port range", self.pos)
        for protocol in self.targets():
            lo = _OPEN_LOW[protocol] if low is None else low
            hi = _MAX[protocol] if high is None else high
            if protocol == "ip":
                for value, where in ((low, start), (high, high_pos)):
                    if value is not None and value > 255:
                        raise self.fail(f"IP protocol {value} is out of range 0-255", where)
            if lo > hi:
                text = self.spec[start : self.pos]
                raise self.fail(f"range {text!r} is backwards ({lo} > {hi})", start)
            if protocol not in self.protocols:
                continue
            if self.bracket is None:
                self.bitmaps[protocol][lo : hi + 1] = b"\x01" * (hi - lo + 1)
            elif protocol == "ip":
                raise self.fail("'[...]' selects named ports; it cannot select IP protocols", start)
            else:
                bitmap = self.bitmaps[protocol]
                for port in self.table().named(protocol, lo, hi):
                    bitmap[port] = 1

    def name(self) -> None:
        start = self.pos
        while self.peek() and self.peek() in _NAME_CHARS:
            self.pos += 1
        pattern = self.spec[start : self.pos]
        c = self.peek()
        if c and c not in _SPACE and c not in ",]":
            raise self.fail(f"unexpected {c!r} in service name", self.pos)
        scanned = [p for p in self.targets() if p in self.protocols]
        if not scanned:
            return
        port_protos = [p for p in scanned if p != "ip"]
        if not port_protos:
            raise self.fail(f"service name {pattern!r} cannot select IP protocols", start)
        found = False
        for protocol in port_protos:
            bitmap = self.bitmaps[protocol]
            for port in self.table().match(pattern, protocol):
                bitmap[port] = 1
                found = True
        if not found:
            raise self.fail(f"no service matches {pattern!r} for {'/'.join(port_protos)}", start)

    def result(self) -> PortList:
        return PortList(**{p: _read_bitmap(bm) for p, bm in self.bitmaps.items()})


def _read_bitmap(bitmap: bytearray) -> list[int]:
    out: list[int] = []
    start = bitmap.find(1)
    while start != -1:
        end = bitmap.find(0, start)
        end = len(bitmap) if end == -1 else end
        out.extend(range(start, end))
        start = bitmap.find(1, end)
    return out


def _parse(
    spec: str, protocols: Iterable[str], services: ServicesTable | None
) -> tuple[PortList, frozenset[str]]:
    if not isinstance(spec, str):
        raise TypeError(f"port specification must be str, not {type(spec).__name__}")
    protos = _check_protocols(protocols, spec)
    parser = _Parser(spec, protos, services)
    parser.run()
    return parser.result(), protos


def parse_ports(
    spec: str,
    *,
    protocols: Iterable[str] = _TCP_ONLY,
    services: ServicesTable | None = None,
) -> PortList:
    """Parse an nmap ``-p`` value into the ports to scan for ``protocols``.

    ``protocols`` are the scanned protocols (any of tcp, udp, sctp, ip); unqualified elements
    apply to all of them. ``services`` resolves names and ``[...]``; default
    :func:`~pyscan._specs.services.default_services`, loaded only when needed.
    Raises :class:`~pyscan.errors.PortSpecError` on malformed input or when nothing is
    selected.
    """
    result, protos = _parse(spec, protocols, services)
    if not result:
        raise PortSpecError(spec, f"selects no ports for {'/'.join(sorted(protos))}")
    return result


def parse_exclude_ports(
    spec: str,
    *,
    protocols: Iterable[str] = _TCP_ONLY,
    services: ServicesTable | None = None,
) -> PortList:
    """Parse an ``--exclude-ports`` value: same syntax as ``-p``; may select nothing."""
    return _parse(spec, protocols, services)[0]


def exclude(
    ports: PortList,
    excluded: PortList | str,
    *,
    protocols: Iterable[str] | None = None,
    services: ServicesTable | None = None,
) -> PortList:
    """``ports`` without ``excluded`` (a :class:`PortList` or an ``--exclude-ports`` spec).

    A spec's unqualified elements apply to ``protocols`` (default: the protocols of
    ``ports``, or tcp when it is empty). The result may be empty.
    """
    if isinstance(excluded, str):
        protos = protocols if protocols is not None else (ports.protocols or _TCP_ONLY)
        excluded = parse_exclude_ports(excluded, protocols=protos, services=services)
    return ports - excluded


def top_ports(
    n: int,
    protocols: Iterable[str] = _TCP_ONLY,
    services: ServicesTable | None = None,
    *,
    within: PortList | None = None,
    exclude: PortList | None = None,
) -> PortList:
    """The ``n`` ports most often open per protocol (``--top-ports N``).

    ``exclude`` is removed before choosing (nmap chooses N among the ports not excluded);
    ``within`` (the ``-p`` list, when both are given) limits the choice to its ports. Only
    ports in the services table are ranked. IP protocols are not ranked: ``ip`` yields all of
    0-255 (less exclusions), as nmap's ``-sO`` does. Fewer than ``n`` ports come back when
    the table has fewer.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise PortSpecError(str(n), "--top-ports must be an integer 1 or greater")
    protos = _check_protocols(protocols, str(n))
    table = default_services() if services is None and protos - {"ip"} else services
    out: dict[str, list[int]] = {}
    for protocol in protos:
        drop = frozenset(exclude.ports(protocol)) if exclude is not None else frozenset()
        allow = frozenset(within.ports(protocol)) if within is not None else None
        if protocol == "ip":
            ranked: Iterable[int] = range(256)
        else:
            assert table is not None
            ranked = table.top(protocol)
        chosen = (p for p in ranked if p not in drop and (allow is None or p in allow))
        out[protocol] = list(chosen if protocol == "ip" else itertools.islice(chosen, n))
    return PortList(**out)


def fast_ports(
    protocols: Iterable[str] = _TCP_ONLY,
    services: ServicesTable | None = None,
    *,
    exclude: PortList | None = None,
) -> PortList:
    """``-F``: the 100 ports most often open per protocol."""
    return top_ports(100, protocols, services, exclude=exclude)


def default_ports(
    protocols: Iterable[str] = _TCP_ONLY,
    services: ServicesTable | None = None,
    *,
    exclude: PortList | None = None,
) -> PortList:
    """What nmap scans with no port option: the top 1000 per protocol (all 256 for ip)."""
    return top_ports(1000, protocols, services, exclude=exclude)


def resolve_ports(
    spec: str | None = None,
    *,
    protocols: Iterable[str] = _TCP_ONLY,
    services: ServicesTable | None = None,
    top: int | None = None,
    fast: bool = False,
    exclude_spec: str | None = None,
) -> PortList:
    """Combine ``-p``, ``--top-ports``, ``-F`` and ``--exclude-ports`` the way nmap does.

    Exclusions are applied first; ``--top-ports`` with ``-p`` picks the top N among the
    ``-p`` ports; ``--top-ports`` wins over ``-F``; ``-F`` with ``-p`` is an error. Raises
    :class:`~pyscan.errors.PortSpecError` when no port is left at all.
    """
    protos = _check_protocols(protocols, spec or "")
    if fast and spec is not None and top is None:
        raise PortSpecError(spec, "-F cannot be combined with -p; use --top-ports N with -p")
    dropped = (
        parse_exclude_ports(exclude_spec, protocols=protos, services=services)
        if exclude_spec is not None
        else PortList()
    )
    if spec is not None:
        chosen = parse_ports(spec, protocols=protos, services=services) - dropped
        if top is not None:
            chosen = top_ports(top, protos, services, within=chosen)
    else:
        n = top if top is not None else 100 if fast else 1000
        chosen = top_ports(n, protos, services, exclude=dropped)
    if not chosen:
        raise PortSpecError(spec or "", "no ports left to scan")
    return chosen
