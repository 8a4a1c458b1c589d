"""Hypothesis strategies shared across the test suite (each section owned by its module's tests)."""

from __future__ import annotations

# ---------------------------------------------------------------------------------------
# pyscan._wire: addresses, ports and TCP options for codec round trips.
# ---------------------------------------------------------------------------------------
from hypothesis import strategies as _st

from pyscan._wire import (
    EOL,
    MSS,
    NOP,
    SACK,
    SACKPermitted,
    TCPOption,
    Timestamps,
    UnknownOption,
    WindowScale,
    encode_tcp_options,
)

wire_u8 = _st.integers(0, 0xFF)
wire_u16 = _st.integers(0, 0xFFFF)
wire_u32 = _st.integers(0, 0xFFFFFFFF)
wire_ipv4 = _st.binary(min_size=4, max_size=4)
wire_ipv6 = _st.binary(min_size=16, max_size=16)
wire_address_pair = _st.one_of(_st.tuples(wire_ipv4, wire_ipv4), _st.tuples(wire_ipv6, wire_ipv6))
"""(src, dst) packed addresses of one family."""

wire_tcp_option: _st.SearchStrategy[TCPOption] = _st.one_of(
    _st.just(NOP()),
    _st.builds(MSS, wire_u16),
    _st.builds(WindowScale, wire_u8),
    _st.just(SACKPermitted()),
    _st.builds(SACK, _st.lists(_st.tuples(wire_u32, wire_u32), max_size=4).map(tuple)),
    _st.builds(Timestamps, wire_u32, wire_u32),
    # Kinds 6, 7 and 9+ only: a known kind of the right length decodes as its class.
    _st.builds(
        UnknownOption,
        _st.integers(6, 255).filter(lambda k: k != 8),
        _st.binary(max_size=12),
    ),
)


@_st.composite
def wire_tcp_options(draw: _st.DrawFn, *, eol: bool = True) -> tuple[TCPOption, ...]:
    """Typed options that fit a TCP header (at most 40 bytes once zero-padded), optionally
    ended by an EOL with padding bytes after it."""
    options: list[TCPOption] = []
    for opt in draw(_st.lists(wire_tcp_option, max_size=8)):
        if len(encode_tcp_options([*options, opt])) <= 40:
            options.append(opt)
    if eol and draw(_st.booleans()):
        room = 40 - len(encode_tcp_options(options))
        if room >= 1:
            options.append(EOL(draw(_st.binary(max_size=room - 1))))
    return tuple(options)


# ---------------------------------------------------------------------------------------
# pyscan.testing.fakenet: truth tables for the simulated network (tests/scanners/).
# ---------------------------------------------------------------------------------------
import ipaddress as _ipaddress  # noqa: E402

from pyscan.testing.fakenet import CLOSED as _CLOSED  # noqa: E402
from pyscan.testing.fakenet import DROP as _DROP  # noqa: E402
from pyscan.testing.fakenet import OPEN as _OPEN  # noqa: E402
from pyscan.testing.fakenet import FakeHost as _FakeHost  # noqa: E402
from pyscan.testing.fakenet import PortRule as _PortRule  # noqa: E402
from pyscan.testing.fakenet import Reject as _Reject  # noqa: E402

_ROUTER = _ipaddress.IPv4Address("192.0.2.254")

fakenet_port_rule: _st.SearchStrategy[_PortRule] = _st.one_of(
    _st.sampled_from([_OPEN, _CLOSED, _DROP]),
    _st.builds(_Reject, _st.sampled_from([0, 1, 2, 3, 9, 10, 13])),
    _st.builds(
        _Reject, _st.sampled_from([1, 13]), _st.just(_ROUTER), _st.sampled_from([None, 250])
    ),
)
"""What one port does (ICMPv4 codes for rejections)."""


@_st.composite
def fakenet_truth(
    draw: _st.DrawFn, *, max_hosts: int = 3, max_ports: int = 8
) -> tuple[dict[_ipaddress.IPv4Address, _FakeHost], list[_ipaddress.IPv4Address], list[int]]:
    """``(truth table, targets, ports)``: up to ``max_hosts`` IPv4 targets in 192.0.2.0/24,
    some absent from the table (nothing answers), each present one with random TCP and UDP
    rules on up to ``max_ports`` distinct ports, a random default, TTL and echo behaviour."""
    n_hosts = draw(_st.integers(1, max_hosts))
    targets = [_ipaddress.IPv4Address(f"192.0.2.{10 + i}") for i in range(n_hosts)]
    ports = draw(_st.lists(_st.integers(1, 65535), min_size=1, max_size=max_ports, unique=True))
    truth: dict[_ipaddress.IPv4Address, _FakeHost] = {}
    for addr in targets:
        if draw(_st.integers(0, 4)) == 0:
            continue  # absent
        picked = _st.lists(_st.sampled_from(ports), unique=True)
        truth[addr] = _FakeHost(
            tcp={p: draw(fakenet_port_rule) for p in draw(picked)},
            udp={p: draw(fakenet_port_rule) for p in draw(picked)},
            tcp_default=draw(_st.sampled_from([_CLOSED, _DROP, _OPEN])),
            udp_default=draw(_st.sampled_from([_CLOSED, _DROP])),
            ttl=draw(_st.sampled_from([32, 64, 128, 255])),
            echo=draw(_st.booleans()),
            timestamp=draw(_st.booleans()),
        )
    return truth, targets, ports
