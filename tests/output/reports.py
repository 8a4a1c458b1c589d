"""Hand-built reports shared by the output tests (lab addresses, never scanned)."""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable

from pyscan._models import (
    Hostname,
    HostResult,
    HostStatus,
    IPAddress,
    PortResult,
    PortState,
    Protocol,
    Reason,
    ReasonKind,
    ScanReport,
    ScanStats,
    Service,
)
from pyscan.output import OutputOptions

T0 = 1795293000.0  # Sat Nov 21 20:30:00 2026 UTC
UTC = datetime.UTC

# A few well-known names, standing in for the services table.
NAMES = {
    ("tcp", 22): "ssh",
    ("tcp", 25): "smtp",
    ("tcp", 53): "domain",
    ("tcp", 80): "http",
    ("tcp", 135): "msrpc",
    ("tcp", 139): "netbios-ssn",
    ("tcp", 443): "https",
    ("tcp", 445): "microsoft-ds",
    ("tcp", 8443): "https-alt",
    ("udp", 53): "domain",
    ("udp", 123): "ntp",
}


def lookup(protocol: str, port: int) -> str | None:
    return NAMES.get((protocol, port))


def opts(**kw: object) -> OutputOptions:
    kw.setdefault("tz", UTC)
    kw.setdefault("service_name", lookup)
    return OutputOptions(**kw)  # type: ignore[arg-type]


def ip(text: str) -> IPAddress:
    return ipaddress.ip_address(text)


def ports(
    address: IPAddress,
    numbers: Iterable[int],
    state: PortState,
    kind: ReasonKind,
    ttl: int | None = None,
    protocol: Protocol = "tcp",
) -> list[PortResult]:
    return [PortResult(address, protocol, n, state, Reason(kind, ttl)) for n in numbers]


def port(
    address: IPAddress,
    number: int,
    state: PortState,
    kind: ReasonKind,
    ttl: int | None = None,
    protocol: Protocol = "tcp",
    service: Service | None = None,
) -> PortResult:
    return PortResult(address, protocol, number, state, Reason(kind, ttl), service)


def stats(total: int, up: int, elapsed: float) -> ScanStats:
    return ScanStats(
        start=T0, end=T0 + elapsed, hosts_total=total, hosts_up=up, hosts_down=total - up
    )


def syn_report() -> ScanReport:
    """One host, 1000 ports: 2 open, 3 filtered, 995 closed (folded)."""
    a = ip("198.18.0.10")
    filtered = {135, 139, 445}
    result = ports(
        a,
        (n for n in range(1, 1001) if n not in {22, 80} | filtered),
        PortState.CLOSED,
        ReasonKind.RESET,
        64,
    )
    result += ports(a, [22, 80], PortState.OPEN, ReasonKind.SYN_ACK, 64)
    result += ports(a, sorted(filtered), PortState.FILTERED, ReasonKind.NO_RESPONSE)
    host = HostResult(
        address=a,
        status=HostStatus.UP,
        reason=Reason(ReasonKind.SYN_ACK, 64),
        latency=0.0012,
        hostnames=(Hostname("web.lab", "PTR"),),
        ports=tuple(sorted(result, key=lambda p: (p.protocol, p.port))),
        start=T0,
        end=T0 + 2,
    )
    return ScanReport(
        hosts=(host,),
        scan_types=("syn",),
        ports={"tcp": "1-1000"},
        args="pyscan -sS --reason -p1-1000 198.18.0.10",
        stats=stats(1, 1, 2.35),
        version="0.1.0",
    )


def mixed_report() -> ScanReport:
    """TCP and UDP on one host, folding two states over two protocols; plus a down host."""
    a = ip("198.18.0.20")
    result = ports(a, range(2, 101), PortState.CLOSED, ReasonKind.RESET, 64)
    result += ports(a, [1], PortState.OPEN, ReasonKind.SYN_ACK, 64)
    closed_udp = (n for n in range(100, 160) if n != 123)
    result += ports(a, closed_udp, PortState.CLOSED, ReasonKind.PORT_UNREACH, 64, "udp")
    result += ports(
        a, range(160, 200), PortState.OPEN_FILTERED, ReasonKind.NO_RESPONSE, protocol="udp"
    )
    result += ports(a, [53], PortState.OPEN, ReasonKind.UDP_RESPONSE, 64, "udp")
    gateway = Reason(ReasonKind.ADMIN_PROHIBITED, 63, ip("198.18.0.1"))
    result.append(PortResult(a, "udp", 123, PortState.FILTERED, gateway))
    up = HostResult(
        address=a,
        status=HostStatus.UP,
        reason=Reason(ReasonKind.ECHO_REPLY, 64),
        latency=0.000095,
        ports=tuple(sorted(result, key=lambda p: (p.protocol, p.port))),
        start=T0,
        end=T0 + 5,
    )
    down = HostResult(address=ip("198.18.0.21"), status=HostStatus.DOWN)
    return ScanReport(
        hosts=(up, down),
        scan_types=("syn", "udp"),
        ports={"tcp": "1-100", "udp": "53,100-199"},
        args="pyscan -sS -sU -p T:1-100,U:53,100-199 198.18.0.20-21",
        stats=stats(2, 1, 12.5),
        version="0.1.0",
    )


def version_report() -> ScanReport:
    """-sV results: probed services, an unsure table name, an SSL tunnel, Service Info."""
    a = ip("198.18.0.30")
    ssh = Service(
        "ssh",
        product="OpenSSH",
        version="8.9p1 Ubuntu 3ubuntu0.1",
        extrainfo="Ubuntu Linux; protocol 2.0",
        ostype="Linux",
        method="probed",
        conf=10,
        cpe=("cpe:/a:openbsd:openssh:8.9p1", "cpe:/o:linux:linux_kernel"),
    )
    http = Service(
        "http",
        product="nginx",
        version="1.18.0",
        extrainfo="Ubuntu",
        ostype="Linux",
        method="probed",
        conf=10,
        cpe=("cpe:/a:igor_sysoev:nginx:1.18.0", "cpe:/o:linux:linux_kernel"),
    )
    jetty = Service(
        "http",
        product="Jetty",
        version="9.4",
        tunnel="ssl",
        method="probed",
        conf=10,
        hostname="app.lab",
    )
    host = HostResult(
        address=a,
        status=HostStatus.UP,
        reason=Reason(ReasonKind.SYN_ACK, 64),
        latency=0.00031,
        ports=(
            port(a, 22, PortState.OPEN, ReasonKind.SYN_ACK, 64, service=ssh),
            port(a, 25, PortState.CLOSED, ReasonKind.RESET, 64),
            port(a, 80, PortState.OPEN, ReasonKind.SYN_ACK, 64, service=http),
            port(a, 443, PortState.OPEN, ReasonKind.SYN_ACK, 64),
            port(a, 8443, PortState.OPEN, ReasonKind.SYN_ACK, 64, service=jetty),
        ),
        start=T0,
        end=T0 + 9,
    )
    return ScanReport(
        hosts=(host,),
        scan_types=("syn",),
        ports={"tcp": "22,25,80,443,8443"},
        args="pyscan -sV -p22,25,80,443,8443 198.18.0.30",
        stats=stats(1, 1, 9.87),
        version="0.1.0",
    )


def ping_report() -> ScanReport:
    hosts = (
        HostResult(ip("198.18.0.1"), HostStatus.UP, Reason(ReasonKind.ECHO_REPLY, 64), 0.00042),
        HostResult(ip("198.18.0.2"), HostStatus.DOWN, Reason(ReasonKind.NO_RESPONSE)),
        HostResult(
            ip("198.18.0.3"),
            HostStatus.UP,
            Reason(ReasonKind.ARP_RESPONSE),
            0.0015,
            hostnames=(Hostname("printer.lab", "PTR"),),
        ),
    )
    return ScanReport(
        hosts=hosts,
        scan_types=("ping",),
        args="pyscan -sn 198.18.0.1-3",
        stats=stats(3, 2, 1.2),
        version="0.1.0",
    )


def list_report() -> ScanReport:
    hosts = (
        HostResult(ip("198.18.0.1")),
        HostResult(ip("198.18.0.2"), hostnames=(Hostname("gw.lab", "user"),)),
    )
    return ScanReport(
        hosts=hosts,
        scan_types=("list",),
        args="pyscan -sL 198.18.0.1 gw.lab",
        stats=ScanStats(start=T0, end=T0, hosts_total=2, hosts_up=0, hosts_down=0),
        version="0.1.0",
    )


def ipv6_report() -> ScanReport:
    a = ip("2001:db8::1")
    host = HostResult(
        address=a,
        status=HostStatus.UP,
        reason=Reason(ReasonKind.SYN_ACK, 64),
        latency=0.012,
        hostnames=(Hostname("example.test", "user"), Hostname("host.example.test", "PTR")),
        ports=(
            port(a, 22, PortState.OPEN, ReasonKind.SYN_ACK, 64),
            port(a, 80, PortState.FILTERED, ReasonKind.NO_RESPONSE),
        ),
        start=T0,
        end=T0 + 1,
    )
    return ScanReport(
        hosts=(host,),
        scan_types=("connect",),
        ports={"tcp": "22,80"},
        args="pyscan -6 -sT -p22,80 example.test",
        stats=stats(1, 1, 1.5),
        version="0.1.0",
    )
