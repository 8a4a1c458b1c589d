"""The result model: JSON round trips and the helpers nmap-style output relies on."""

from __future__ import annotations

import ipaddress
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._models import (
    Hostname,
    HostResult,
    HostStatus,
    PortResult,
    PortState,
    Reason,
    ReasonKind,
    ScanReport,
    ScanStats,
    Service,
    merge_ports,
)
from pyscan.errors import ReportFormatError

ADDR = ipaddress.ip_address("198.18.0.10")

addresses = st.one_of(
    st.ip_addresses(v=4).map(lambda a: ipaddress.ip_address(int(a))),
    st.ip_addresses(v=6).map(lambda a: ipaddress.ip_address(int(a) | (1 << 100))),
)
text = st.text(max_size=20)
reasons = st.builds(
    Reason,
    st.sampled_from(list(ReasonKind)),
    st.none() | st.integers(0, 255),
    st.none() | addresses,
)
services = st.builds(
    Service,
    name=text,
    product=st.none() | text,
    version=st.none() | text,
    extrainfo=st.none() | text,
    tunnel=st.none() | st.just("ssl"),
    method=st.sampled_from(["table", "probed"]),
    conf=st.integers(0, 10),
    cpe=st.lists(text, max_size=3).map(tuple),
    fingerprint=st.none() | text,
)


@st.composite
def hosts(draw: st.DrawFn) -> HostResult:
    addr = draw(addresses)
    keys = draw(
        st.lists(
            st.tuples(st.sampled_from(["tcp", "udp", "sctp"]), st.integers(0, 65535)),
            unique=True,
            max_size=8,
        )
    )
    ports = tuple(
        PortResult(
            addr,
            proto,
            port,
            draw(st.sampled_from(list(PortState))),
            draw(reasons),
            draw(st.none() | services),
        )
        for proto, port in sorted(keys, key=lambda k: (["tcp", "udp", "sctp"].index(k[0]), k[1]))
    )
    finite = st.floats(0, 1e9, allow_nan=False)
    return HostResult(
        address=addr,
        status=draw(st.sampled_from(list(HostStatus))),
        reason=draw(reasons),
        latency=draw(st.none() | finite),
        hostnames=tuple(
            draw(st.lists(st.builds(Hostname, text, st.sampled_from(["user", "PTR"])), max_size=2))
        ),
        ports=ports,
        start=draw(st.none() | finite),
        end=draw(st.none() | finite),
    )


reports = st.builds(
    ScanReport,
    hosts=st.lists(hosts(), max_size=4).map(tuple),
    scan_types=st.lists(st.sampled_from(["syn", "connect", "udp"]), max_size=2).map(tuple),
    ports=st.dictionaries(st.sampled_from(["tcp", "udp"]), text),
    args=text,
    stats=st.builds(
        ScanStats,
        start=st.floats(0, 1e9),
        end=st.floats(0, 1e9),
        hosts_total=st.integers(0, 10**6),
    ),
    version=text,
)


@given(reports)
def test_json_round_trip(report: ScanReport) -> None:
    wire = json.dumps(report.to_dict())
    assert ScanReport.from_dict(json.loads(wire)) == report


def test_to_dict_shape_is_the_documented_one() -> None:
    port = PortResult(ADDR, "tcp", 22, PortState.OPEN, Reason(ReasonKind.SYN_ACK, 64))
    host = HostResult(ADDR, HostStatus.UP, Reason(ReasonKind.ECHO_REPLY, 64), 0.001, (), (port,))
    d = ScanReport(hosts=(host,), scan_types=("syn",), ports={"tcp": "22"}).to_dict()
    assert d["schema"] == 1
    assert d["hosts"][0]["ports"] == [
        {"protocol": "tcp", "port": 22, "state": "open", "reason": {"kind": "syn-ack", "ttl": 64}}
    ]
    assert d["hosts"][0]["reason"] == {"kind": "echo-reply", "ttl": 64}


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda d: d.update(schema=99), "schema 99"),
        (lambda d: d["hosts"][0].update(address="300.1.1.1"), "malformed"),
        (lambda d: d["hosts"][0]["ports"][0].update(state="ajar"), "ajar"),
        (lambda d: d["hosts"][0]["ports"][0].update(port=70000), "70000"),
        (lambda d: d["hosts"][0]["ports"][0].update(protocol="icmp"), "icmp"),
        (lambda d: d["hosts"][0].update(latency="fast"), "fast"),
        (lambda d: d["hosts"][0].update(latency=float("nan")), "finite"),
        (lambda d: d.pop("hosts"), "hosts"),
    ],
)
def test_from_dict_rejects_malformed(mutate: object, needle: str) -> None:
    port = PortResult(ADDR, "tcp", 22, PortState.OPEN, Reason(ReasonKind.SYN_ACK, 64))
    d = ScanReport(hosts=(HostResult(ADDR, ports=(port,)),)).to_dict()
    mutate(d)  # type: ignore[operator]
    with pytest.raises(ReportFormatError, match=needle):
        ScanReport.from_dict(d)


def test_host_helpers() -> None:
    def p(proto: str, port: int, state: PortState) -> PortResult:
        return PortResult(ADDR, proto, port, state, Reason(ReasonKind.RESET))  # type: ignore[arg-type]

    host = HostResult(
        ADDR,
        ports=(
            p("udp", 53, PortState.OPEN),
            p("tcp", 80, PortState.CLOSED),
            p("tcp", 22, PortState.OPEN),
        ),
    )
    assert [x.port for x in host.open_ports()] == [22, 53]
    assert [x.port for x in host.ports_by("tcp")] == [22, 80]
    assert host.state_counts("tcp") == {PortState.OPEN: 1, PortState.CLOSED: 1}
    merged = merge_ports(host, [p("tcp", 80, PortState.OPEN)])
    assert merged.state_counts("tcp") == {PortState.OPEN: 2}
    report = ScanReport(hosts=(host,))
    assert report.host("198.18.0.10") is host
    with pytest.raises(KeyError):
        report.host("198.18.0.11")


def test_strings_are_nmaps() -> None:
    assert str(PortState.OPEN_FILTERED) == "open|filtered"
    assert str(Reason(ReasonKind.ADMIN_PROHIBITED, 63)) == "admin-prohibited"
    assert Service("http", "nginx", "1.22.1", "Debian").version_line() == "nginx 1.22.1 (Debian)"


def test_reprs_stay_short_for_big_reports() -> None:
    ports = tuple(
        PortResult(ADDR, "tcp", n, PortState.CLOSED, Reason(ReasonKind.RESET))
        for n in range(1, 5001)
    )
    host = HostResult(ADDR, HostStatus.UP, Reason(ReasonKind.ECHO_REPLY), ports=ports)
    report = ScanReport(hosts=(host,), scan_types=("syn",))
    assert repr(report) == "<ScanReport syn: 1 hosts (1 up), 5000 port results, 0.00 s>"
    assert repr(host) == "<HostResult 198.18.0.10 up (echo-reply): 5000 closed>"


@pytest.mark.parametrize("count", [50, 20000])
def test_merge_ports_orders_by_protocol_and_port_and_later_results_win(count: int) -> None:
    # Two ways in merge_ports (a dict sorted for a few ports, slots for many): the same
    # answer, here against a plain reference.
    import random  # noqa: PLC0415

    rng = random.Random(count)
    states = list(PortState)
    host = HostResult(
        ADDR,
        HostStatus.UP,
        Reason(ReasonKind.USER_SET),
        ports=tuple(
            PortResult(ADDR, "udp", n, PortState.OPEN, Reason(ReasonKind.UDP_RESPONSE))
            for n in (53, 7)
        ),
    )
    new = [
        PortResult(
            ADDR,
            rng.choice(["tcp", "udp", "sctp"]),
            rng.randrange(65536),
            rng.choice(states),
            Reason(ReasonKind.RESET),
        )
        for _ in range(count)
    ]
    rank = {"tcp": 0, "udp": 1, "sctp": 2}
    reference: dict[tuple[int, int], PortResult] = {}
    for r in [*host.ports, *new]:
        reference[rank[r.protocol], r.port] = r
    merged = merge_ports(host, new)
    expected = [reference[k] for k in sorted(reference)]
    assert len(merged.ports) == len(expected)
    assert all(a is b for a, b in zip(merged.ports, expected, strict=True))
