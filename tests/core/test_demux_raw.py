"""flow_key_raw (straight from bytes) agrees with flow_key (from the parsed packet)."""

from __future__ import annotations

import ipaddress

from hypothesis import given
from hypothesis import strategies as st

from pyscan._core.demux import flow_key, flow_key_raw
from pyscan._wire.icmp import build_icmp_echo, build_icmp_error, build_icmp_timestamp
from pyscan._wire.icmpv6 import build_icmpv6_error
from pyscan._wire.packet import (
    build_echo_packet,
    build_icmp_packet,
    build_tcp_packet,
    build_udp_packet,
    parse_packet,
)
from pyscan.errors import PacketError

V4 = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
V6 = st.integers(0, 2**128 - 1).map(ipaddress.IPv6Address)
PORT = st.integers(0, 65535)


@st.composite
def datagrams(draw: st.DrawFn) -> bytes:
    v6 = draw(st.booleans())
    src, dst = draw(V6 if v6 else V4), draw(V6 if v6 else V4)
    kind = draw(st.sampled_from(["tcp", "udp", "echo", "timestamp", "error"]))
    if kind == "tcp":
        return build_tcp_packet(src=src, dst=dst, src_port=draw(PORT), dst_port=draw(PORT))
    if kind == "udp":
        return build_udp_packet(src=src, dst=dst, src_port=draw(PORT), dst_port=draw(PORT))
    if kind == "echo" or (kind == "timestamp" and v6):
        return (
            build_echo_packet(src=src, dst=dst, identifier=draw(PORT), sequence=draw(PORT))
            if not draw(st.booleans())
            else _echo_reply(src, dst, draw(PORT), v6)
        )
    if kind == "timestamp":
        msg = build_icmp_timestamp(identifier=draw(PORT), sequence=1, reply=draw(st.booleans()))
        return build_icmp_packet(src=src, dst=dst, message=msg)
    # an ICMP error quoting a probe we sent (dst -> src), truncated like real routers do
    inner_kind = draw(st.sampled_from(["tcp", "udp", "echo"]))
    if inner_kind == "tcp":
        inner = build_tcp_packet(src=dst, dst=src, src_port=draw(PORT), dst_port=draw(PORT))
    elif inner_kind == "udp":
        inner = build_udp_packet(src=dst, dst=src, src_port=draw(PORT), dst_port=draw(PORT))
    else:
        inner = build_echo_packet(src=dst, dst=src, identifier=draw(PORT), sequence=2)
    quoted = inner[: (40 if v6 else 20) + draw(st.integers(8, 64))]
    if v6:
        msg = build_icmpv6_error(src=src, dst=dst, icmp_type=1, code=4, quoted=quoted)
    else:
        msg = build_icmp_error(icmp_type=draw(st.sampled_from([3, 11])), code=3, quoted=quoted)
    return build_icmp_packet(src=src, dst=dst, message=msg)


def _echo_reply(src: object, dst: object, ident: int, v6: bool) -> bytes:
    if v6:
        from pyscan._wire.icmpv6 import build_icmpv6_echo  # noqa: PLC0415

        msg = build_icmpv6_echo(src=src, dst=dst, identifier=ident, sequence=3, reply=True)  # type: ignore[arg-type]
    else:
        msg = build_icmp_echo(identifier=ident, sequence=3, reply=True)
    return build_icmp_packet(src=src, dst=dst, message=msg)  # type: ignore[arg-type]


@given(datagrams())
def test_raw_key_equals_parsed_key(data: bytes) -> None:
    assert flow_key_raw(data) == flow_key(parse_packet(data))


@given(st.binary(max_size=120))
def test_raw_key_never_raises_and_agrees_when_parseable(data: bytes) -> None:
    raw = flow_key_raw(data)
    try:
        parsed = flow_key(parse_packet(data))
    except PacketError:
        return
    if raw is not None:
        assert raw == parsed
