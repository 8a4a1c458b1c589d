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
