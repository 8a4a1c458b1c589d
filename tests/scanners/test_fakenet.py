"""The simulated network itself: the answers must be what a Linux host sends, byte-valid,
and loss, delay, duplication and rate limiting must do exactly what they say."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import pyscan.testing.fakenet as fakenet_module
from pyscan._wire.icmp import (
    ICMPEcho,
    ICMPError,
    ICMPTimestamp,
    build_icmp_echo,
    build_icmp_timestamp,
    verify_icmp_checksum,
)
from pyscan._wire.icmpv6 import build_icmpv6_echo, verify_icmpv6_checksum
from pyscan._wire.ipv4 import verify_ipv4_checksum
from pyscan._wire.packet import (
    Packet,
    build_icmp_packet,
    build_tcp_packet,
    build_udp_packet,
    parse_packet,
)
from pyscan._wire.tcp import MSS, TCPFlags, verify_tcp_checksum
from pyscan._wire.udp import verify_udp_checksum
from pyscan.testing.fakenet import (
    CLOSED,
    DROP,
    OPEN,
    FakeHost,
    FakeNetwork,
    FakeNetworkError,
    ManualClock,
    Reject,
    ScannerStuckError,
    run_scanner,
)

from ._sim import ME4, ME6, ROUTER4, target

T = target(0)
HOST = FakeHost(
    tcp={22: OPEN, 23: CLOSED, 24: DROP, 25: Reject(13), 26: Reject(1, ROUTER4, ttl=200)},
    udp={53: OPEN, 54: CLOSED, 55: DROP},
    ttl=61,
    udp_reply=b"hello",
)


def only_answer(net: FakeNetwork, probe: bytes, now: float = 0.0) -> Packet:
    [answer] = net.answers(parse_packet(probe), now, probe)
    assert_valid(answer)
    return parse_packet(answer)


def assert_valid(data: bytes) -> None:
    pkt = parse_packet(data)
    if pkt.version == 4:
        assert verify_ipv4_checksum(data)
        upper = data[pkt.ip.header_length : pkt.ip.total_length]  # type: ignore[union-attr]
    else:
        upper = data[40:]
    if pkt.tcp is not None:
        assert verify_tcp_checksum(upper, pkt.src, pkt.dst)
    elif pkt.udp is not None:
        assert verify_udp_checksum(upper, pkt.src, pkt.dst)
    elif pkt.icmp is not None:
        assert verify_icmp_checksum(upper)
    else:
        assert verify_icmpv6_checksum(upper, pkt.src, pkt.dst)


def syn(port: int, flags: TCPFlags = TCPFlags.SYN, ack: int = 0, dst: Any = T) -> bytes:
    return build_tcp_packet(
        src=ME4 if dst.version == 4 else ME6,
        dst=dst,
        src_port=40000,
        dst_port=port,
        seq=0xFFFFFFFF,
        ack=ack,
        flags=flags,
        options=[MSS(1460)],
    )


def test_syn_to_open_port_gets_syn_ack() -> None:
    a = only_answer(FakeNetwork({T: HOST}), syn(22))
    assert a.tcp is not None
    assert (a.src_ip, a.dst_ip, a.tcp.src_port, a.tcp.dst_port) == (T, ME4, 22, 40000)
    assert a.tcp.flags == TCPFlags.SYN | TCPFlags.ACK
    assert a.tcp.ack == 0  # seq + 1, wrapped
    assert a.ip.ttl == 61  # type: ignore[union-attr]
    assert a.tcp.option(MSS) == MSS(1460)


def test_syn_to_closed_port_gets_rst_ack() -> None:
    a = only_answer(FakeNetwork({T: HOST}), syn(23))
    assert a.tcp is not None
    assert a.tcp.flags == TCPFlags.RST | TCPFlags.ACK
    assert (a.tcp.seq, a.tcp.ack, a.tcp.window) == (0, 0, 0)


@pytest.mark.parametrize("port", [22, 23])
def test_ack_probe_gets_rst_with_seq_of_its_ack(port: int) -> None:
    a = only_answer(FakeNetwork({T: HOST}), syn(port, TCPFlags.ACK, ack=0xDEADBEEF))
    assert a.tcp is not None
    assert (a.tcp.flags, a.tcp.seq) == (TCPFlags.RST, 0xDEADBEEF)


def test_fin_rst_and_dropped_ports() -> None:
    net = FakeNetwork({T: HOST})
    assert net.answers(parse_packet(syn(22, TCPFlags.FIN))) == []
    assert net.answers(parse_packet(syn(23, TCPFlags.RST))) == []
    assert net.answers(parse_packet(syn(24))) == []
    a = only_answer(net, syn(23, TCPFlags.FIN))
    assert a.tcp is not None
    assert a.tcp.ack == 0


def test_reject_quotes_ip_header_and_eight_bytes() -> None:
    probe = syn(25)
    a = only_answer(FakeNetwork({T: HOST}), probe)
    assert isinstance(a.icmp, ICMPError)
    assert (a.icmp.type, a.icmp.code, a.src_ip, a.ip.ttl) == (3, 13, T, 61)  # type: ignore[union-attr]
    assert a.icmp.quoted_raw == probe[:28]
    routed = only_answer(FakeNetwork({T: HOST}), syn(26))
    assert routed.src_ip == ROUTER4
    assert routed.ip.ttl == 200  # type: ignore[union-attr]
    assert isinstance(routed.icmp, ICMPError)
    assert routed.icmp.code == 1


def test_udp_answers() -> None:
    net = FakeNetwork({T: HOST})

    def probe(port: int) -> bytes:
        return build_udp_packet(src=ME4, dst=T, src_port=40000, dst_port=port, payload=b"q")

    a = only_answer(net, probe(53))
    assert a.udp is not None
    assert (a.udp.src_port, a.udp.dst_port, a.payload) == (
        53,
        40000,
        b"hello",
    )
    e = only_answer(net, probe(54))
    assert isinstance(e.icmp, ICMPError)
    assert (e.icmp.type, e.icmp.code) == (3, 3)
    assert e.icmp.quoted is not None
    assert e.icmp.quoted.dst_port == 54
    assert net.answers(parse_packet(probe(55))) == []


def test_echo_and_timestamp_replies() -> None:
    net = FakeNetwork({T: HOST, target(1, v6=True): FakeHost()})
    req = build_icmp_packet(
        src=ME4, dst=T, message=build_icmp_echo(identifier=7, sequence=0x0102, data=b"abc")
    )
    a = only_answer(net, req)
    assert isinstance(a.icmp, ICMPEcho)
    assert a.icmp.is_reply
    assert (a.icmp.identifier, a.icmp.sequence, a.icmp.data) == (7, 0x0102, b"abc")
    ts = build_icmp_packet(
        src=ME4, dst=T, message=build_icmp_timestamp(identifier=8, sequence=9, originate=1234)
    )
    r = only_answer(net, ts, now=3.5)
    assert isinstance(r.icmp, ICMPTimestamp)
    assert r.icmp.is_reply
    assert (r.icmp.identifier, r.icmp.sequence, r.icmp.originate) == (8, 9, 1234)
    assert r.icmp.receive == r.icmp.transmit == 3500
    h6 = target(1, v6=True)
    req6 = build_icmp_packet(
        src=ME6, dst=h6, message=build_icmpv6_echo(src=ME6, dst=h6, identifier=5, sequence=6)
    )
    a6 = only_answer(net, req6)
    assert isinstance(a6.icmpv6, ICMPEcho)
    assert a6.icmpv6.type == 129
    assert FakeNetwork({T: FakeHost(echo=False)}).answers(parse_packet(req)) == []


def test_absent_host_and_unreachable_host() -> None:
    assert FakeNetwork({}).answers(parse_packet(syn(22))) == []
    net = FakeNetwork({T: FakeHost(unreachable=Reject(1, ROUTER4))})
    a = only_answer(net, syn(22))
    assert a.src_ip == ROUTER4
    assert isinstance(a.icmp, ICMPError)
    assert a.icmp.code == 1


def test_delivery_time_loss_duplication_and_log() -> None:
    net = FakeNetwork({T: HOST}, delay=0.05, duplicate=1.0)
    rec = net.send(syn(22), 1.0)
    assert rec.answers[0] == pytest.approx(1.1)
    assert len(rec.answers) == 2
    assert net.next_delivery() == pytest.approx(1.1)
    assert net.deliver(1.09) == []
    got = net.deliver(2.0)
    assert [d.kind for d in got] == ["answer", "duplicate"]
    assert got[0].probe is rec
    assert net.pending == 0
    assert net.deliveries == got
    lossy = FakeNetwork({T: HOST}, loss=1.0)
    assert lossy.send(syn(22), 0.0).lost
    assert lossy.pending == 0


def test_same_seed_same_fate() -> None:
    def fates(seed: int) -> list[tuple[bool, int]]:
        net = FakeNetwork({T: HOST}, loss=0.3, seed=seed)
        return [(r.lost, len(r.answers)) for r in (net.send(syn(22), i) for i in range(200))]

    assert fates(1) == fates(1)
    assert fates(1) != fates(2)
    lost = sum(1 for lost, n in fates(1) if lost or not n)
    assert 70 <= lost <= 130  # about 1 - 0.7 ** 2 = 51 %


def test_icmp_rate_limit() -> None:
    net = FakeNetwork({T: FakeHost(icmp_rate=(1.0, 6))})

    def probe(port: int) -> bytes:
        return build_udp_packet(src=ME4, dst=T, src_port=40000, dst_port=port)

    answered = [bool(net.answers(parse_packet(probe(p)), 0.0)) for p in range(1, 11)]
    assert answered == [True] * 6 + [False] * 4
    assert net.answers(parse_packet(probe(1)), 0.5) == []
    assert net.answers(parse_packet(probe(1)), 1.0)


def test_malformed_or_badly_checksummed_probes_are_refused() -> None:
    net = FakeNetwork({T: HOST})
    with pytest.raises(FakeNetworkError, match="malformed"):
        net.send(b"\x45\x00", 0.0)
    bad = bytearray(syn(22))
    bad[-1] ^= 0xFF
    with pytest.raises(FakeNetworkError, match="checksum"):
        net.send(bytes(bad), 0.0)


def test_forgeries_are_valid_packets() -> None:
    net = FakeNetwork({T: HOST})
    for probe in (
        syn(22),
        build_udp_packet(src=ME4, dst=T, src_port=40000, dst_port=53),
        build_icmp_packet(src=ME4, dst=T, message=build_icmp_echo(identifier=1, sequence=2)),
    ):
        forged = net.forgeries(parse_packet(probe))
        assert len(forged) >= 3
        for data in forged:
            assert_valid(data)


class _Stuck:
    """A scanner-shaped object that never finishes."""

    src_ports: tuple[int, ...] = ()
    total, n_decided, in_flight, done = 1, 0, 0, False

    def __init__(self, clock: ManualClock, deadline: bool) -> None:
        self.clock, self.deadline = clock, deadline

    def poll(self, now: float, limit: int) -> list[tuple[int, int]]:
        return []

    def next_deadline(self) -> float | None:
        return self.clock.now if self.deadline else None


@pytest.mark.parametrize("deadline", [True, False])
def test_run_scanner_fails_instead_of_hanging(deadline: bool) -> None:
    clock = ManualClock()
    with pytest.raises(ScannerStuckError):
        run_scanner(_Stuck(clock, deadline), FakeNetwork({}), clock, max_time=30)  # type: ignore[arg-type]
    assert clock.now <= 32


def test_manual_clock() -> None:
    clock = ManualClock(5.0)
    assert clock.advance(1.5) == 6.5
    assert clock() == 6.5
    assert clock.advance_to(3.0) == 6.5
    with pytest.raises(ValueError, match="back"):
        clock.advance(-1)


def test_fakenet_is_pure() -> None:
    tree = ast.parse(Path(fakenet_module.__file__).read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[0])
    assert names
    assert not names & {"socket", "asyncio", "time", "select", "subprocess"}
