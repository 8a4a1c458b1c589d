"""Build a pyscan ScanReport from an nmap XML file, for comparisons with real nmap.

Only what nmap writes for port/ping/list scans is read. Folded ports (``<extraports>``) come
back as one PortResult per port from ``<extrareasons ports=...>``.
"""

from __future__ import annotations

import ipaddress
import xml.etree.ElementTree as ET
from typing import Literal, cast

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


def _ports(spec: str) -> list[int]:
    out: list[int] = []
    for item in spec.split(","):
        if "-" in item:
            lo, hi = item.split("-")
            out.extend(range(int(lo), int(hi) + 1))
        elif item:
            out.append(int(item))
    return out


def _reason(el: ET.Element) -> Reason:
    ttl = int(el.get("reason_ttl", "0"))
    ip = el.get("reason_ip")
    return Reason(
        ReasonKind(el.get("reason", "unknown-response")),
        ttl or None,
        ipaddress.ip_address(ip) if ip else None,
    )


def _service(el: ET.Element) -> Service:
    tunnel = el.get("tunnel")
    return Service(
        name=el.get("name", "unknown"),
        product=el.get("product"),
        version=el.get("version"),
        extrainfo=el.get("extrainfo"),
        hostname=el.get("hostname"),
        ostype=el.get("ostype"),
        devicetype=el.get("devicetype"),
        tunnel="ssl" if tunnel == "ssl" else None,
        method=cast(Literal["table", "probed"], el.get("method", "table")),
        conf=int(el.get("conf", "3")),
        cpe=tuple(c.text or "" for c in el.findall("cpe")),
        fingerprint=el.get("servicefp"),
    )


def _host(el: ET.Element) -> HostResult:
    status = el.find("status")
    assert status is not None
    addr_el = el.find("address")
    assert addr_el is not None
    address: IPAddress = ipaddress.ip_address(addr_el.get("addr", ""))
    names = tuple(
        Hostname(h.get("name", ""), cast(Literal["user", "PTR"], h.get("type", "PTR")))
        for h in el.findall("hostnames/hostname")
    )
    ports: list[PortResult] = []
    for extra in el.findall("ports/extraports"):
        state = PortState(extra.get("state"))
        for why in extra.findall("extrareasons"):
            proto = cast(Protocol, why.get("proto", "tcp"))
            reason = Reason(ReasonKind(why.get("reason")))
            ports.extend(
                PortResult(address, proto, n, state, reason) for n in _ports(why.get("ports", ""))
            )
    for p in el.findall("ports/port"):
        st_el = p.find("state")
        assert st_el is not None
        svc = p.find("service")
        ports.append(
            PortResult(
                address,
                cast(Protocol, p.get("protocol")),
                int(p.get("portid", "0")),
                PortState(st_el.get("state")),
                _reason(st_el),
                None if svc is None else _service(svc),
            )
        )
    times = el.find("times")
    host_state = status.get("state", "unknown")
    start = el.get("starttime")
    end = el.get("endtime")
    return HostResult(
        address=address,
        status=HostStatus(host_state if host_state in ("up", "down") else "unknown"),
        reason=_reason(status),
        latency=None if times is None else int(times.get("srtt", "0")) / 1e6,
        hostnames=names,
        ports=tuple(ports),
        start=None if start is None else float(start),
        end=None if end is None else float(end),
    )


def report_from_nmap_xml(text: str) -> ScanReport:
    """The ScanReport equivalent to nmap's XML ``text``."""
    root = ET.fromstring(text)
    types = tuple(s.get("type", "") for s in root.findall("scaninfo"))
    argv = root.get("args", "").split()
    if "-sL" in argv:
        types = (*types, "list")
    elif "-sn" in argv:
        types = (*types, "ping")
    ports = {s.get("protocol", ""): s.get("services", "") for s in root.findall("scaninfo")}
    finished = root.find("runstats/finished")
    hosts_el = root.find("runstats/hosts")
    assert finished is not None
    assert hosts_el is not None
    start = float(root.get("start", "0"))
    stats = ScanStats(
        start=start,
        end=start + float(finished.get("elapsed", "0")),
        hosts_total=int(hosts_el.get("total", "0")),
        hosts_up=int(hosts_el.get("up", "0")),
        hosts_down=int(hosts_el.get("down", "0")),
    )
    return ScanReport(
        hosts=tuple(_host(h) for h in root.findall("host")),
        scan_types=types,
        ports=ports,
        args=root.get("args", "").replace("nmap", "pyscan", 1),
        stats=stats,
        version="0.1.0",
    )
