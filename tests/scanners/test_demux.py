"""flow_key for every kind of packet, and the demultiplexer's routing and drop counting."""

from __future__ import annotations

import random
from typing import Any

import pytest

import pyscan._core.demux as demux_module
from pyscan._core.demux import Demultiplexer, flow_key
from pyscan._wire.icmp import (
    build_icmp,
    build_icmp_address_mask,
    build_icmp_echo,
    build_icmp_timestamp,
)
from pyscan._wire.icmpv6 import build_icmpv6, build_icmpv6_echo
from pyscan._wire.packet import (
    build_icmp_packet,
    build_ip_packet,
    build_tcp_packet,
    build_udp_packet,
    parse_packet,
)
from pyscan.testing.fakenet import FakeNetwork, icmp_unreachable, stray_packets

from ._sim import ME4, ME6, target

T4, T6 = target(0), target(0, v6=True)


def tcp(src: object = T4, dst: object = ME4, sport: int = 80, dport: int = 40001) -> bytes:
    return build_tcp_packet(src=src, dst=dst, src_port=sport, dst_port=dport)  # type: ignore[arg-type]


def udp(src: object = T4, dst: object = ME4, sport: int = 53, dport: int = 40002) -> bytes:
    return build_udp_packet(src=src, dst=dst, src_port=sport, dst_port=dport)  # type: ignore[arg-type]


def icmp4(message: bytes, src: object = T4) -> bytes:
    return build_icmp_packet(src=src, dst=ME4, message=message)  # type: ignore[arg-type]


def icmp6(typ: int, body: bytes = b"") -> bytes:
    m = build_icmpv6(src=T6, dst=ME6, icmp_type=typ, body=body)
    return build_icmp_packet(src=T6, dst=ME6, message=m)


def error_quoting(probe: bytes, code: int = 3) -> bytes:
    pkt = parse_packet(probe)
    return icmp_unreachable(pkt, sender=pkt.dst_ip, code=code, data=probe)


ECHO_REQ6 = build_icmpv6_echo(src=ME6, dst=T6, identifier=0x1234, sequence=1)
ECHO_REQ6_PKT = build_icmp_packet(src=ME6, dst=T6, message=ECHO_REQ6)
ECHO_REQ4 = build_icmp_packet(src=ME4, dst=T4, message=build_icmp_echo(identifier=91, sequence=2))
GRE_OUT = build_ip_packet(src=ME4, dst=T4, protocol=47, payload=bytes(8))
CASES = {
    "tcp": (tcp(), ("tcp", 40001)),
    "tcp6": (tcp(T6, ME6, 22, 40003), ("tcp", 40003)),
    "udp": (udp(), ("udp", 40002)),
    "udp6": (udp(T6, ME6, 53, 40004), ("udp", 40004)),
    "echo-reply": (icmp4(build_icmp_echo(identifier=77, sequence=3, reply=True)), ("icmp", 77)),
    "echo-request": (icmp4(build_icmp_echo(identifier=77, sequence=3)), None),
    "timestamp-reply": (
        icmp4(build_icmp_timestamp(identifier=78, sequence=1, reply=True)),
        ("icmp", 78),
    ),
    "timestamp-request": (icmp4(build_icmp_timestamp(identifier=78, sequence=1)), None),
    "mask-reply": (icmp4(build_icmp_address_mask(identifier=79, sequence=1, reply=True)), None),
    "router-advert": (icmp4(build_icmp(icmp_type=9, body=bytes(8))), None),
    "echo6-reply": (
        build_icmp_packet(
            src=T6,
            dst=ME6,
            message=build_icmpv6_echo(src=T6, dst=ME6, identifier=90, sequence=1, reply=True),
        ),
        ("icmp", 90),
    ),
    "echo6-request": (ECHO_REQ6_PKT, None),
    "neighbour-advert6": (icmp6(136, bytes(20)), None),
    "error-quoting-tcp": (error_quoting(tcp(ME4, T4, 40005, 443), 13), ("tcp", 40005)),
    "error-quoting-udp": (error_quoting(udp(ME4, T4, 40006, 161)), ("udp", 40006)),
    "error-quoting-echo": (error_quoting(ECHO_REQ4, 1), ("icmp", 91)),
    "error6-quoting-tcp": (error_quoting(tcp(ME6, T6, 40007, 80), 1), ("tcp", 40007)),
    "error6-quoting-echo": (error_quoting(ECHO_REQ6_PKT, 3), ("icmp", 0x1234)),
    "error-quoting-garbage": (
        icmp4(build_icmp(icmp_type=3, code=3, body=bytes(4) + b"junk")),
        None,
    ),
    "error-quoting-4-bytes-of-ip": (
        icmp4(build_icmp(icmp_type=3, code=3, body=bytes(4) + tcp(ME4, T4, 40008, 80)[:4])),
        None,
    ),
    "error-quoting-other-protocol": (error_quoting(GRE_OUT, 2), None),
    "gre": (build_ip_packet(src=T4, dst=ME4, protocol=47, payload=bytes(8)), None),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_flow_key(case: str) -> None:
    data, key = CASES[case]
    assert flow_key(parse_packet(data)) == key


def test_error_quoting_only_the_ports_still_has_a_key() -> None:
    probe = udp(ME4, T4, 40009, 53)
    pkt = parse_packet(probe)
    err = icmp_unreachable(pkt, sender=T4, code=3, quote=4, data=probe)
    assert flow_key(parse_packet(err)) == ("udp", 40009)


def test_demultiplexer_routes_registered_keys_and_counts_strays() -> None:
    demux: Demultiplexer[str] = Demultiplexer()
    demux.register(("tcp", 40001), "syn")
    demux.register(("tcp", 40001), "syn")  # the same owner again is fine
    demux.register(("udp", 40002), "udp")
    demux.register(("icmp", 77), "ping")
    assert len(demux) == 3
    with pytest.raises(ValueError, match="40001"):
        demux.register(("tcp", 40001), "other")
    for case, owner in [("tcp", "syn"), ("udp", "udp"), ("echo-reply", "ping")]:
        assert demux.owner(parse_packet(CASES[case][0])) == owner
    assert demux.owner(parse_packet(CASES["error-quoting-tcp"][0])) is None
    assert demux.owner(parse_packet(CASES["echo-request"][0])) is None
    assert (demux.delivered, demux.dropped) == (3, 2)
    demux.unregister("syn")
    assert demux.owner(parse_packet(CASES["tcp"][0])) is None
    assert len(demux) == 2


def test_random_strays_never_reach_an_owner_of_other_keys() -> None:
    demux: Demultiplexer[str] = Demultiplexer()
    ours = list(range(40000, 40011))
    for p in ours:
        demux.register(("tcp", p), "scan")
        demux.register(("udp", p), "scan")
    demux.register(("icmp", 4242), "scan")
    rng = random.Random(1)
    strays = stray_packets(rng, dst=ME4, ports=[50000, 50001], count=300, icmp_ids=[1, 2])
    strays += stray_packets(rng, dst=ME6, ports=[50000], count=100, icmp_ids=[1])
    routed = 0
    for data in strays:
        pkt = parse_packet(data)
        key = flow_key(pkt)
        owner = demux.owner(pkt)
        assert (owner == "scan") == (key is not None and key[1] in (*ours, 4242)), data.hex()
        routed += owner is not None
    # Random ports / identifiers land on ours only by chance, rarely.
    assert routed <= 5
    assert demux.dropped == len(strays) - routed


def _flow_key_raw() -> Any:
    raw = getattr(demux_module, "flow_key_raw", None)
    if raw is None:
        pytest.skip("flow_key_raw not available")
    return raw


@pytest.mark.parametrize("case", sorted(CASES))
def test_flow_key_raw_agrees_with_flow_key(case: str) -> None:
    data, key = CASES[case]
    assert _flow_key_raw()(data) == key


def test_flow_key_raw_agrees_on_strays_and_forgeries() -> None:
    raw = _flow_key_raw()
    rng = random.Random(9)
    packets = stray_packets(rng, dst=ME4, ports=[40000], count=300, icmp_ids=[7])
    packets += stray_packets(rng, dst=ME6, ports=[40000], count=100, icmp_ids=[7])
    net = FakeNetwork({})
    for probe in (ECHO_REQ4, ECHO_REQ6_PKT, tcp(ME4, T4, 40000, 80), udp(ME6, T6, 40001, 53)):
        packets += net.forgeries(parse_packet(probe))
    for data in packets:
        assert raw(data) == flow_key(parse_packet(data)), data.hex()
