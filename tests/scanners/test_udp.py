"""The UDP scan state machine against a simulated network, and the probe payloads it sends
(parsed from the wire, field by field, against the protocols' RFCs)."""

from __future__ import annotations

import random
import struct
from collections import Counter
from typing import Any

import pytest

from pyscan._models import IPAddress, PortState, ReasonKind
from pyscan._wire.packet import build_udp_packet, parse_packet
from pyscan.testing.fakenet import (
    CLOSED,
    DROP,
    OPEN,
    FakeHost,
    FakeNetwork,
    Reject,
    run_scanner,
    stray_packets,
)

from ._sim import (
    ME4,
    ROUTER4,
    ROUTER6,
    SRC_PORTS,
    Run,
    check_port_invariant,
    expected_udp,
    port_run,
    target,
    tries,
)

CODES = [0, 1, 2, 3, 9, 10, 13]


def scan(net: FakeNetwork, hosts: list[IPAddress], ports: list[int], **kw: Any) -> Run:
    run = port_run("udp", net, hosts, ports, **kw)
    run_scanner(run.scanner, net, run.clock, max_time=3000)
    return run


def truth4() -> dict[IPAddress, FakeHost]:
    rules: dict[int, Any] = {53: OPEN, 123: OPEN, 161: DROP, 137: CLOSED, 500: OPEN}
    rules.update({1000 + c: Reject(c) for c in CODES})
    rules.update({2000 + c: Reject(c, ROUTER4, ttl=240) for c in CODES})
    return {
        target(0): FakeHost(udp=rules, ttl=64, udp_reply=b"\x00" * 3),
        target(1): FakeHost(udp={53: OPEN}, udp_default=DROP, ttl=128),
        target(2): FakeHost.silent(),
        target(3): FakeHost(unreachable=Reject(10, ROUTER4)),
    }


PORTS = [53, 123, 137, 161, 500, 9] + [1000 + c for c in CODES] + [2000 + c for c in CODES]


def test_every_state_and_reason_is_exact() -> None:
    net = FakeNetwork(truth4(), delay=0.01)
    hosts = [*net.hosts, target(7)]
    run = scan(net, hosts, PORTS)
    got = run.by_port()
    assert len(got) == len(run.results) == len(hosts) * len(PORTS)
    for (addr, port), r in got.items():
        assert (r.protocol, r.state, r.reason) == ("udp", *expected_udp(net, addr, port)), (
            addr,
            port,
        )
    t0 = target(0)
    assert got[(t0, 53)].state is PortState.OPEN
    assert got[(t0, 53)].reason.kind.value == "udp-response"
    assert got[(t0, 137)].state is PortState.CLOSED
    assert (got[(t0, 137)].reason.kind.value, got[(t0, 137)].reason.ip) == ("port-unreach", t0)
    assert got[(t0, 161)].state is PortState.OPEN_FILTERED
    assert got[(t0, 161)].reason.kind.value == "no-response"
    assert got[(t0, 9)].state is PortState.CLOSED  # the default: closed, port unreachable
    for code in CODES:
        own, routed = got[(t0, 1000 + code)], got[(t0, 2000 + code)]
        want = PortState.CLOSED if code == 3 else PortState.FILTERED
        assert own.state is want, code
        assert (own.reason.ip, routed.reason.ip, routed.reason.ttl) == (t0, ROUTER4, 240)
    assert got[(target(1), 53)].reason.ttl == 128
    assert got[(target(3), 53)].reason.kind.value == "host-prohibited"
    assert {got[(target(2), p)].state for p in PORTS} == {PortState.OPEN_FILTERED}


def test_ipv6_states() -> None:
    h = target(0, v6=True)
    rules = {53: OPEN, 54: CLOSED, 55: DROP, 56: Reject(1), 57: Reject(3, ROUTER6)}
    net = FakeNetwork({h: FakeHost(udp=rules)})  # type: ignore[arg-type]
    run = scan(net, [h], sorted(rules))
    got = run.by_port()
    for (addr, port), r in got.items():
        assert (r.state, r.reason) == expected_udp(net, addr, port), port
    assert got[(h, 54)].state is PortState.CLOSED  # ICMPv6 code 4: port unreachable
    assert got[(h, 56)].reason.kind is ReasonKind.ADMIN_PROHIBITED


def test_probe_budget_without_loss() -> None:
    net = FakeNetwork(truth4(), delay=0.01)
    hosts = list(net.hosts)
    scan(net, hosts, PORTS)
    for addr in hosts:
        for port in PORTS:
            n = len(tries(net, addr, "udp", port))
            silent = expected_udp(net, addr, port)[1].kind is ReasonKind.NO_RESPONSE
            # A host that answers closed ports with its own port-unreachables may be rate
            # limiting them: its silent ports get every retry (T3: 10), the last two of them
            # as bench rounds.
            sends_unreach = any(
                expected_udp(net, addr, p)[1].kind is ReasonKind.PORT_UNREACH
                and expected_udp(net, addr, p)[1].ip in (None, addr)
                for p in PORTS
            )
            want = (11 if sends_unreach else 2) if silent else 1
            assert n == want, (addr, port)


@pytest.mark.parametrize(("loss", "seed"), [(0.05, 1), (0.15, 2)])
def test_lossy_network_invariant(loss: float, seed: int) -> None:
    hosts = {
        target(i): FakeHost(udp=dict.fromkeys(range(100 + i, 200, 4), OPEN), udp_default=DROP)
        for i in range(2)
    }
    net = FakeNetwork(hosts, delay=0.005, loss=loss, seed=seed)
    ports = list(range(100, 200))
    run = scan(net, list(hosts), ports, order_seed=seed)
    counts = check_port_invariant(run, "udp", ports)
    assert counts["right"] >= 0.97 * len(run.results)


RATE_LIMITED = FakeHost(udp={7: OPEN}, icmp_rate=(1.0, 6))  # Linux: ~1 error/s after a burst


def test_icmp_rate_limited_host_results_are_consistent() -> None:
    """Closed ports of a host that rate-limits ICMP errors answer slowly. Whatever the scan
    concludes, nothing is reported open but the open port, every port whose error arrived is
    closed, and an answer to a retransmission raised the retry allowance."""
    net = FakeNetwork({target(0): RATE_LIMITED}, delay=0.002)
    ports = list(range(1, 41))
    run = scan(net, [target(0)], ports)
    counts = check_port_invariant(run, "udp", ports)
    states = Counter(r.state for r in run.results)
    assert run.by_port()[(target(0), 7)].state is PortState.OPEN
    assert states[PortState.OPEN] == 1
    assert states[PortState.CLOSED] + states[PortState.OPEN_FILTERED] == 39
    assert counts["right"] == states[PortState.CLOSED] + 1
    assert states[PortState.CLOSED] >= 6  # at least the burst
    assert run.scanner.host_timing(0, 0.0).retries_allowed > 1


def test_icmp_rate_limited_host_closed_ports_are_found() -> None:
    net = FakeNetwork({target(0): RATE_LIMITED}, delay=0.002)
    ports = list(range(1, 41))
    run = scan(net, [target(0)], ports)
    states = Counter(r.state for r in run.results)
    assert states[PortState.CLOSED] >= 0.9 * 39


def test_forgeries_and_strays_change_nothing() -> None:
    truth = truth4()
    clean = scan(FakeNetwork(truth, delay=0.01), list(truth), PORTS)
    net = FakeNetwork(truth, delay=0.01, forge=True, duplicate=0.5, seed=5)
    run = port_run("udp", net, list(truth), PORTS)
    rng = random.Random(11)
    for i, pkt in enumerate(stray_packets(rng, dst=ME4, ports=SRC_PORTS, count=300, avoid=truth)):
        net.inject(pkt, at=i * 0.004)
    run_scanner(run.scanner, net, run.clock, max_time=300)
    assert Counter(d.kind for d in net.deliveries)["forged"] >= 3 * len(PORTS)
    assert {k: (r.state, r.reason) for k, r in run.by_port().items()} == {
        k: (r.state, r.reason) for k, r in clean.by_port().items()
    }


def test_reply_to_an_unprobed_port_or_from_elsewhere_is_ignored() -> None:
    net = FakeNetwork({})
    run = port_run("udp", net, [target(0)], [53])
    sc = run.scanner
    assert sc.poll(0.0, 10) == [(0, 0)]

    def reply(src: IPAddress, sport: int, dport: int) -> bool:
        data = build_udp_packet(src=src, dst=ME4, src_port=sport, dst_port=dport, payload=b"x")
        return bool(sc.receive(parse_packet(data), 0.01))

    assert not reply(target(0), 54, SRC_PORTS[0])  # a port we did not probe
    assert not reply(target(1), 53, SRC_PORTS[0])  # another host
    assert not reply(target(0), 53, 39999)  # not our source port
    assert not run.results
    assert reply(target(0), 53, SRC_PORTS[1])  # from the port of try 1 (a retransmission)
    assert [(r.port, r.state) for r in run.results] == [(53, PortState.OPEN)]


# -- payloads, parsed from the probes on the wire ---------------------------------------


def _wire_payloads(ports: list[int]) -> dict[int, bytes]:
    net = FakeNetwork({target(0): FakeHost(udp_default=OPEN)})
    scan(net, [target(0)], ports)
    out = {}
    for p in net.probes:
        assert p.packet.udp is not None
        assert p.dst_port is not None
        assert p.packet.udp.length == 8 + len(p.packet.payload)
        out[p.dst_port] = p.packet.payload
    assert set(out) == set(ports)
    return out


def _dns_name(data: bytes, offset: int) -> tuple[str, int]:
    labels: list[str] = []
    while True:
        n = data[offset]
        offset += 1
        if n == 0:
            return ".".join(labels), offset
        assert n < 64, "compression pointers have no place in a query"
        labels.append(data[offset : offset + n].decode("ascii"))
        offset += n


def _ber(data: bytes, offset: int) -> tuple[int, bytes, int]:
    """(tag, value, next offset) of one BER TLV (definite lengths only)."""
    tag = data[offset]
    n = data[offset + 1]
    offset += 2
    if n & 0x80:
        size = n & 0x7F
        assert 1 <= size <= 2
        n = int.from_bytes(data[offset : offset + size], "big")
        offset += size
    value = data[offset : offset + n]
    assert len(value) == n, "BER length runs past the end"
    return tag, value, offset + n


def _ber_all(data: bytes) -> list[tuple[int, bytes]]:
    out, offset = [], 0
    while offset < len(data):
        tag, value, offset = _ber(data, offset)
        out.append((tag, value))
    assert offset == len(data)
    return out


def _oid(value: bytes) -> str:
    parts = [value[0] // 40, value[0] % 40]
    acc = 0
    for b in value[1:]:
        acc = acc << 7 | (b & 0x7F)
        if not b & 0x80:
            parts.append(acc)
            acc = 0
    return ".".join(map(str, parts))


@pytest.fixture(scope="module")
def payloads() -> dict[int, bytes]:
    return _wire_payloads([53, 123, 137, 161, 9999])


def test_dns_payload_is_a_well_formed_query(payloads: dict[int, bytes]) -> None:
    data = payloads[53]
    ident, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", data)
    assert flags & 0x8000 == 0, "QR must be 0 (a query)"
    assert (flags >> 11) & 0xF == 0, "opcode QUERY"
    assert (qd, an, ns, ar) == (1, 0, 0, 0)
    name, offset = _dns_name(data, 12)
    qtype, qclass = struct.unpack_from("!HH", data, offset)
    assert offset + 4 == len(data), "nothing after the question"
    assert (name, qtype, qclass) == ("version.bind", 16, 3)  # TXT CH, as nmap asks
    del ident


def test_ntp_payload_is_a_client_request(payloads: dict[int, bytes]) -> None:
    data = payloads[123]
    assert len(data) == 48
    li, vn, mode = data[0] >> 6, (data[0] >> 3) & 7, data[0] & 7
    assert mode == 3, "client mode"
    assert vn in (3, 4)
    assert li in (0, 3)


def test_netbios_payload_is_an_nbstat_query(payloads: dict[int, bytes]) -> None:
    data = payloads[137]
    _, flags, qd, an, ns, ar = struct.unpack_from("!HHHHHH", data)
    assert flags & 0x8000 == 0
    assert (flags >> 11) & 0xF == 0
    assert (qd, an, ns, ar) == (1, 0, 0, 0)
    assert data[12] == 32, "NetBIOS names are 32 bytes, first-level encoded"
    encoded = data[13:45]
    assert all(0x41 <= c <= 0x50 for c in encoded)
    name = bytes(
        ((a - 0x41) << 4) | (b - 0x41) for a, b in zip(encoded[::2], encoded[1::2], strict=False)
    )
    assert name == b"*" + b"\0" * 15
    assert data[45] == 0
    assert struct.unpack_from("!HH", data, 46) == (0x21, 1)  # NBSTAT, IN
    assert len(data) == 50


def test_snmp_payload_is_a_v1_get_request(payloads: dict[int, bytes]) -> None:
    data = payloads[161]
    assert data[0] == 0x30
    [(tag, message)] = _ber_all(data)
    assert tag == 0x30
    (t_ver, version), (t_comm, community), (t_pdu, pdu) = _ber_all(message)
    assert (t_ver, version) == (0x02, b"\x00")  # version-1
    assert (t_comm, community) == (0x04, b"public")
    assert t_pdu == 0xA0  # GetRequest-PDU
    (t_id, _), (t_err, err), (t_idx, idx), (t_vbl, vbl) = _ber_all(pdu)
    assert (t_id, t_err, err, t_idx, idx, t_vbl) == (0x02, 0x02, b"\x00", 0x02, b"\x00", 0x30)
    [(t_vb, vb)] = _ber_all(vbl)
    (t_oid, oid), (t_null, null) = _ber_all(vb)
    assert t_vb == 0x30
    assert (t_oid, t_null, null) == (0x06, 0x05, b"")
    assert _oid(oid) == "1.3.6.1.2.1.1.1.0"  # sysDescr.0


def test_port_without_a_protocol_gets_an_empty_datagram(payloads: dict[int, bytes]) -> None:
    assert payloads[9999] == b""
