"""The result model: port and host states, reasons, services, reports.

Everything here is an immutable value (``attrs.frozen``) so results can be shared between
tasks, cached and compared. A report converts to and from plain JSON-compatible dicts
(:meth:`ScanReport.to_dict` / :meth:`ScanReport.from_dict`); ``docs/json-schema.md``
documents that schema and ``SCHEMA_VERSION`` changes whenever it does.
"""

from __future__ import annotations

import enum
import ipaddress
import math
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Literal, TypeAlias

import attrs

from pyscan.errors import ReportFormatError

__all__ = [
    "SCHEMA_VERSION",
    "HostResult",
    "HostStatus",
    "Hostname",
    "IPAddress",
    "PortResult",
    "PortState",
    "Protocol",
    "Reason",
    "ReasonKind",
    "ScanReport",
    "ScanStats",
    "Service",
]

SCHEMA_VERSION = 1

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
Protocol: TypeAlias = Literal["tcp", "udp", "sctp"]
_PROTOCOLS: tuple[Protocol, ...] = ("tcp", "udp", "sctp")


class PortState(enum.Enum):
    """nmap's port states; ``str(state)`` is nmap's spelling."""

    OPEN = "open"
    CLOSED = "closed"
    FILTERED = "filtered"
    UNFILTERED = "unfiltered"
    OPEN_FILTERED = "open|filtered"
    CLOSED_FILTERED = "closed|filtered"

    def __str__(self) -> str:
        return self.value


class HostStatus(enum.Enum):
    """Whether a host answered discovery. With discovery skipped (``-Pn``) hosts are
    reported ``up`` with reason ``user-set``, as nmap does; ``unknown`` is for reports that
    could not tell (a list scan, an interrupted run)."""

    UP = "up"
    DOWN = "down"
    UNKNOWN = "unknown"

    def __str__(self) -> str:
        return self.value


class ReasonKind(enum.Enum):
    """Why a state was decided, in nmap's ``--reason`` vocabulary."""

    SYN_ACK = "syn-ack"
    RESET = "reset"
    CONN_REFUSED = "conn-refused"
    UDP_RESPONSE = "udp-response"
    TCP_RESPONSE = "tcp-response"
    PROTO_RESPONSE = "proto-response"
    PORT_UNREACH = "port-unreach"
    HOST_UNREACH = "host-unreach"
    NET_UNREACH = "net-unreach"
    PROTO_UNREACH = "proto-unreach"
    NET_PROHIBITED = "net-prohibited"
    HOST_PROHIBITED = "host-prohibited"
    ADMIN_PROHIBITED = "admin-prohibited"
    DEST_UNREACH = "dest-unreach"
    TIME_EXCEEDED = "time-exceeded"
    ECHO_REPLY = "echo-reply"
    TIMESTAMP_REPLY = "timestamp-reply"
    ARP_RESPONSE = "arp-response"
    ND_RESPONSE = "nd-response"
    LOCALHOST_RESPONSE = "localhost-response"
    NO_RESPONSE = "no-response"
    USER_SET = "user-set"
    PERM_DENIED = "perm-denied"
    UNKNOWN_RESPONSE = "unknown-response"

    def __str__(self) -> str:
        return self.value


@attrs.frozen
class Reason:
    """A :class:`ReasonKind` with the TTL (and sender, for ICMP) of the deciding packet."""

    kind: ReasonKind
    ttl: int | None = None
    ip: IPAddress | None = None

    def __str__(self) -> str:
        return self.kind.value


@attrs.frozen
class Hostname:
    """A name for a host: ``user`` (given as the target) or ``PTR`` (reverse DNS)."""

    name: str
    type: Literal["user", "PTR"] = "PTR"


@attrs.frozen
class Service:
    """What runs behind a port: from the services table, or probed by version detection."""

    name: str
    product: str | None = None
    version: str | None = None
    extrainfo: str | None = None
    hostname: str | None = None
    ostype: str | None = None
    devicetype: str | None = None
    tunnel: Literal["ssl"] | None = None
    method: Literal["table", "probed"] = "table"
    conf: int = 3
    cpe: tuple[str, ...] = ()
    fingerprint: str | None = None

    def version_line(self) -> str:
        """The VERSION column of nmap's normal output (product version (extrainfo))."""
        parts = [p for p in (self.product, self.version) if p]
        if self.extrainfo:
            parts.append(f"({self.extrainfo})")
        return " ".join(parts)


@attrs.frozen
class PortResult:
    """The state of one port of one host."""

    address: IPAddress
    protocol: Protocol
    port: int
    state: PortState
    reason: Reason
    service: Service | None = None

    @property
    def is_open(self) -> bool:
        """True for ``open`` (not ``open|filtered``)."""
        return self.state is PortState.OPEN


@attrs.frozen
class ScanStats:
    """Counts and timings of a whole run."""

    start: float = 0.0
    end: float = 0.0
    hosts_total: int = 0
    hosts_up: int = 0
    hosts_down: int = 0
    packets_sent: int = 0
    packets_received: int = 0

    @property
    def elapsed(self) -> float:
        """Wall time of the run in seconds."""
        return max(0.0, self.end - self.start)


@attrs.frozen(repr=False)
class HostResult:
    """Everything found about one target address."""

    address: IPAddress
    status: HostStatus = HostStatus.UNKNOWN
    reason: Reason = Reason(ReasonKind.USER_SET)
    latency: float | None = None
    hostnames: tuple[Hostname, ...] = ()
    ports: tuple[PortResult, ...] = ()
    start: float | None = None
    end: float | None = None

    def __repr__(self) -> str:
        # Compact: a host of a full port scan holds 65535 results.
        counts = ", ".join(
            f"{n} {state}" for state, n in sorted(_counts(self.ports).items(), key=str)
        )
        return (
            f"<HostResult {self.address} {self.status} ({self.reason})"
            f"{': ' + counts if counts else ''}>"
        )

    @property
    def is_up(self) -> bool:
        """True unless discovery found the host down."""
        return self.status is not HostStatus.DOWN

    def ports_by(
        self, protocol: Protocol | None = None, state: PortState | None = None
    ) -> tuple[PortResult, ...]:
        """The ports of one protocol and/or state, in port order."""
        # filtered first: of a full port scan's 65,535, few are open
        return tuple(
            sorted(
                (
                    p
                    for p in self.ports
                    if (protocol is None or p.protocol == protocol)
                    and (state is None or p.state is state)
                ),
                key=_port_key,
            )
        )

    def open_ports(self) -> tuple[PortResult, ...]:
        """The ports in state ``open``."""
        return self.ports_by(state=PortState.OPEN)

    def state_counts(self, protocol: Protocol) -> dict[PortState, int]:
        """How many ports of ``protocol`` are in each state (for nmap's "Not shown" line)."""
        return _counts(p for p in self.ports if p.protocol == protocol)


@attrs.frozen(repr=False)
class ScanReport:
    """The result of a scan: hosts in target order, plus what was asked and the statistics."""

    hosts: tuple[HostResult, ...] = ()
    scan_types: tuple[str, ...] = ()
    ports: Mapping[str, str] = attrs.field(factory=dict)
    args: str = ""
    stats: ScanStats = ScanStats()
    version: str = ""

    def __repr__(self) -> str:
        # Compact: asyncio.run() formats the result it returns, and a report can hold
        # millions of port results (the full form is to_dict()).
        ports = sum(len(h.ports) for h in self.hosts)
        kinds = ",".join(self.scan_types) or "-"
        up = sum(1 for h in self.hosts if h.is_up)
        return (
            f"<ScanReport {kinds}: {len(self.hosts)} hosts ({up} up), {ports} port results, "
            f"{self.stats.elapsed:.2f} s>"
        )

    def __iter__(self) -> Iterator[HostResult]:
        return iter(self.hosts)

    def __len__(self) -> int:
        return len(self.hosts)

    def host(self, address: str | IPAddress) -> HostResult:
        """The result for one address; KeyError if it was not scanned."""
        want = ipaddress.ip_address(address)
        for h in self.hosts:
            if h.address == want:
                return h
        raise KeyError(str(want))

    @property
    def up_hosts(self) -> tuple[HostResult, ...]:
        """Hosts not found down."""
        return tuple(h for h in self.hosts if h.is_up)

    def all_ports(self) -> Iterator[PortResult]:
        """Every port result of every host."""
        for h in self.hosts:
            yield from h.ports

    # -- JSON ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """A JSON-compatible dict (schema: docs/json-schema.md)."""
        return {
            "schema": SCHEMA_VERSION,
            "version": self.version,
            "args": self.args,
            "scan_types": list(self.scan_types),
            "ports": dict(self.ports),
            "stats": attrs.asdict(self.stats),
            "hosts": [host_to_dict(h) for h in self.hosts],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ScanReport:
        """Rebuild a report from :meth:`to_dict` output; ReportFormatError if malformed."""
        try:
            schema = data["schema"]
            if schema != SCHEMA_VERSION:
                raise ReportFormatError(f"unsupported report schema {schema!r}")
            return cls(
                hosts=tuple(host_from_dict(h) for h in data["hosts"]),
                scan_types=tuple(str(s) for s in data.get("scan_types", ())),
                ports={str(k): str(v) for k, v in data.get("ports", {}).items()},
                args=str(data.get("args", "")),
                stats=ScanStats(**{k: _num(v) for k, v in data.get("stats", {}).items()}),
                version=str(data.get("version", "")),
            )
        except ReportFormatError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ReportFormatError(f"malformed report: {type(exc).__name__}: {exc}") from exc


def _num(v: Any) -> Any:
    if not isinstance(v, int | float) or isinstance(v, bool):
        raise TypeError(f"expected a number, got {v!r}")
    if isinstance(v, float) and not math.isfinite(v):
        raise ValueError(f"expected a finite number, got {v!r}")
    return v


def _counts(ports: Iterable[PortResult]) -> dict[PortState, int]:
    counts: dict[PortState, int] = {}
    for p in ports:
        counts[p.state] = counts.get(p.state, 0) + 1
    return counts


_PROTOCOL_RANK = {name: i for i, name in enumerate(_PROTOCOLS)}


def _port_key(p: PortResult) -> tuple[int, int]:
    return (_PROTOCOLS.index(p.protocol), p.port)


def reason_to_dict(r: Reason) -> dict[str, Any]:
    """JSON form of a :class:`Reason`."""
    d: dict[str, Any] = {"kind": r.kind.value}
    if r.ttl is not None:
        d["ttl"] = r.ttl
    if r.ip is not None:
        d["ip"] = str(r.ip)
    return d


def reason_from_dict(d: Mapping[str, Any]) -> Reason:
    """Inverse of :func:`reason_to_dict`."""
    ttl = d.get("ttl")
    ip = d.get("ip")
    return Reason(
        ReasonKind(d["kind"]),
        None if ttl is None else int(ttl),
        None if ip is None else ipaddress.ip_address(ip),
    )


def service_to_dict(s: Service) -> dict[str, Any]:
    """JSON form of a :class:`Service` (None fields omitted)."""
    d = attrs.asdict(s, filter=lambda _a, v: v is not None)
    d["cpe"] = list(s.cpe)
    return d


def service_from_dict(d: Mapping[str, Any]) -> Service:
    """Inverse of :func:`service_to_dict`."""
    fields = {a.name for a in attrs.fields(Service)}
    unknown = set(d) - fields
    if unknown:
        raise ValueError(f"unknown service fields {sorted(unknown)}")
    kw = dict(d)
    kw["cpe"] = tuple(str(c) for c in d.get("cpe", ()))
    return Service(**kw)


def port_to_dict(p: PortResult) -> dict[str, Any]:
    """JSON form of a :class:`PortResult` (the address is the enclosing host's)."""
    d: dict[str, Any] = {
        "protocol": p.protocol,
        "port": p.port,
        "state": p.state.value,
        "reason": reason_to_dict(p.reason),
    }
    if p.service is not None:
        d["service"] = service_to_dict(p.service)
    return d


def port_from_dict(address: IPAddress, d: Mapping[str, Any]) -> PortResult:
    """Inverse of :func:`port_to_dict`."""
    proto = d["protocol"]
    if proto not in _PROTOCOLS:
        raise ValueError(f"unknown protocol {proto!r}")
    port = int(d["port"])
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} out of range")
    svc = d.get("service")
    return PortResult(
        address=address,
        protocol=proto,
        port=port,
        state=PortState(d["state"]),
        reason=reason_from_dict(d["reason"]),
        service=None if svc is None else service_from_dict(svc),
    )


def host_to_dict(h: HostResult) -> dict[str, Any]:
    """JSON form of a :class:`HostResult` (also one line of ``-oJ`` output)."""
    return {
        "address": str(h.address),
        "status": h.status.value,
        "reason": reason_to_dict(h.reason),
        "latency": h.latency,
        "hostnames": [{"name": n.name, "type": n.type} for n in h.hostnames],
        "ports": [port_to_dict(p) for p in sorted(h.ports, key=_port_key)],
        "start": h.start,
        "end": h.end,
    }


def host_from_dict(d: Mapping[str, Any]) -> HostResult:
    """Inverse of :func:`host_to_dict`."""
    address = ipaddress.ip_address(d["address"])
    names = []
    for n in d.get("hostnames", ()):
        if n["type"] not in ("user", "PTR"):
            raise ValueError(f"unknown hostname type {n['type']!r}")
        names.append(Hostname(str(n["name"]), n["type"]))
    latency, start, end = d.get("latency"), d.get("start"), d.get("end")
    return HostResult(
        address=address,
        status=HostStatus(d["status"]),
        reason=reason_from_dict(d["reason"]),
        latency=None if latency is None else float(_num(latency)),
        hostnames=tuple(names),
        ports=tuple(port_from_dict(address, p) for p in d.get("ports", ())),
        start=None if start is None else float(_num(start)),
        end=None if end is None else float(_num(end)),
    )


_BUCKETS = 8192  # from this many ports on, merge_ports sorts by slots, not by sorting


def merge_ports(host: HostResult, ports: Iterable[PortResult]) -> HostResult:
    """A copy of ``host`` with ``ports`` added (a later result for the same port wins)."""
    rank = _PROTOCOL_RANK
    combined = [*host.ports, *ports]
    if len(combined) > _BUCKETS:
        # Many ports (a full 1-65535 scan): one slot per (protocol, port) in key order, a
        # later result overwriting an earlier one, beats sorting objects by a key (15 ms
        # instead of 60 ms for 65,535).
        slots: list[PortResult | None] = [None] * (len(rank) << 16)
        for p in combined:
            slots[rank[p.protocol] << 16 | p.port] = p
        return attrs.evolve(host, ports=tuple([p for p in slots if p is not None]))
    by_key = {rank[p.protocol] << 16 | p.port: p for p in combined}
    return attrs.evolve(host, ports=tuple([by_key[k] for k in sorted(by_key)]))
