"""TCP header and options codec."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._wire import (
    EOL,
    MSS,
    NOP,
    SACK,
    SACKPermitted,
    TCPFlags,
    TCPOption,
    Timestamps,
    UnknownOption,
    WindowScale,
    build_tcp,
    decode_tcp_options,
    encode_tcp_options,
    parse_tcp,
    verify_tcp_checksum,
)
from pyscan.errors import PacketError

from . import vectors as v
from ._st import wire_address_pair, wire_tcp_options, wire_u16, wire_u32


def test_parse_nmap_syn() -> None:
    header, payload = parse_tcp(v.NMAP_SYN_22[20:])
    assert (header.src_port, header.dst_port) == (50008, 22)
    assert (header.seq, header.ack, header.window) == (912447347, 0, 1024)
    assert header.flags == TCPFlags.SYN
    assert header.data_offset == 6
    assert header.urgent == 0
    assert header.checksum == 0xC4DF
    assert header.options == (MSS(1460),)
    assert header.option(MSS) == MSS(1460)
    assert header.option(Timestamps) is None
    assert payload == b""


def test_parse_kernel_rst() -> None:
    header, _ = parse_tcp(v.KERNEL_RST_22[20:])
    assert header.flags == TCPFlags.RST | TCPFlags.ACK
    assert header.ack == 912447348
    assert header.options == ()
    assert header.options_raw == b""


def test_parse_kernel_syn_options() -> None:
    header, _ = parse_tcp(v.KERNEL_SYN_OPTIONS[20:])
    assert header.options == (
        MSS(65495),
        SACKPermitted(),
        Timestamps(0x92773890, 0),
        NOP(),
        WindowScale(10),
    )
    assert encode_tcp_options(header.options) == header.options_raw


def test_build_reproduces_captured_segments() -> None:
    for packet in (v.NMAP_SYN_22, v.NMAP_SYN_9, v.KERNEL_RST_22):
        h, payload = parse_tcp(packet[20:])
        rebuilt = build_tcp(
            src=packet[12:16],
            dst=packet[16:20],
            src_port=h.src_port,
            dst_port=h.dst_port,
            seq=h.seq,
            ack=h.ack,
            flags=h.flags,
            window=h.window,
            options=h.options,
            payload=payload,
        )
        assert rebuilt == packet[20:]


@given(
    addrs=wire_address_pair,
    sport=wire_u16,
    dport=wire_u16,
    seq=wire_u32,
    ack=wire_u32,
    flags=st.integers(0, 0x1FF),
    window=wire_u16,
    urgent=wire_u16,
    reserved=st.integers(0, 7),
    options=wire_tcp_options(eol=False),
    payload=st.binary(max_size=64),
)
def test_round_trip(
    addrs: tuple[bytes, bytes],
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: int,
    window: int,
    urgent: int,
    reserved: int,
    options: tuple[TCPOption, ...],
    payload: bytes,
) -> None:
    src, dst = addrs
    built = build_tcp(
        src=src,
        dst=dst,
        src_port=sport,
        dst_port=dport,
        seq=seq,
        ack=ack,
        flags=flags,
        window=window,
        urgent=urgent,
        options=options,
        payload=payload,
        reserved=reserved,
    )
    assert verify_tcp_checksum(built, src, dst)
    header, got = parse_tcp(built)
    assert (header.src_port, header.dst_port, header.seq, header.ack) == (sport, dport, seq, ack)
    assert (int(header.flags), header.window, header.urgent) == (flags, window, urgent)
    assert header.reserved == reserved
    assert got == payload
    raw = encode_tcp_options(options)
    pad = -len(raw) % 4
    assert header.options_raw == raw + bytes(pad)
    assert header.data_offset == 5 + (len(raw) + pad) // 4
    assert header.options == options + ((EOL(bytes(pad - 1)),) if pad else ())


@given(wire_tcp_options())
def test_options_codec_is_lossless(options: tuple[TCPOption, ...]) -> None:
    raw = encode_tcp_options(options)
    assert decode_tcp_options(raw) == options
    assert encode_tcp_options(decode_tcp_options(raw)) == raw


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"\x02\x03\x05", (UnknownOption(2, b"\x05"),)),  # MSS with a wrong length
        (b"\x05\x03\x00", (UnknownOption(5, b"\x00"),)),  # SACK not a multiple of 8
        (b"\x05\x02", (SACK(()),)),
        (
            b"\x05\x12" + bytes(range(16)),
            (SACK(((0x00010203, 0x04050607), (0x08090A0B, 0x0C0D0E0F))),),
        ),
        (b"\x01\x00\x00\x00", (NOP(), EOL(b"\x00\x00"))),
        (b"\x00\x02\x04\x05\xb4", (EOL(b"\x02\x04\x05\xb4"),)),  # after EOL is padding
        (b"\x1e\x04ab", (UnknownOption(30, b"ab"),)),
    ],
)
def test_decode_cases(raw: bytes, expected: tuple[TCPOption, ...]) -> None:
    assert decode_tcp_options(raw) == expected
    assert encode_tcp_options(expected) == raw


@pytest.mark.parametrize(
    ("raw", "offset", "match"),
    [
        (b"\x01\x02", 1, "lacks a length byte"),
        (b"\x02\x01\x00\x00", 1, "below 2"),
        (b"\x02\x08\x00\x00", 1, "overruns"),
    ],
)
def test_malformed_options(raw: bytes, offset: int, match: str) -> None:
    with pytest.raises(PacketError, match=match) as info:
        decode_tcp_options(raw)
    assert (info.value.layer, info.value.offset) == ("tcp", offset)


def test_malformed_options_in_segment_lazy_or_eager() -> None:
    seg = bytearray(
        build_tcp(src=bytes(4), dst=bytes(4), src_port=1, dst_port=2, options=[MSS(1460)])
    )
    seg[21] = 9  # MSS length 9 overruns the 4-byte options area
    with pytest.raises(PacketError) as info:
        parse_tcp(seg)
    assert info.value.offset == 21  # absolute offset within the segment
    header, _ = parse_tcp(seg, parse_options=False)
    with pytest.raises(PacketError):
        _ = header.options


def test_flags_include_ns() -> None:
    built = build_tcp(
        src=bytes(4),
        dst=bytes(4),
        src_port=1,
        dst_port=2,
        flags=TCPFlags.NS | TCPFlags.CWR | TCPFlags.ECE | TCPFlags.FIN,
    )
    assert built[12] & 1 == 1
    assert built[13] == 0xC1
    header, _ = parse_tcp(built)
    assert header.flags == TCPFlags.NS | TCPFlags.CWR | TCPFlags.ECE | TCPFlags.FIN


def test_wrong_checksum_fails() -> None:
    bad = bytearray(v.NMAP_SYN_22[20:])
    bad[4] ^= 0x80  # flip a sequence number bit
    assert not verify_tcp_checksum(bad, v.NMAP_SYN_22[12:16], v.NMAP_SYN_22[16:20])


@pytest.mark.parametrize(
    ("data", "offset", "match"),
    [
        (v.NMAP_SYN_22[20:39], 0, "truncated header"),
        (v.NMAP_SYN_22[20:32] + b"\x40" + v.NMAP_SYN_22[33:], 12, "below the minimum"),
        (v.NMAP_SYN_22[20:32] + b"\x70" + v.NMAP_SYN_22[33:], 20, "truncated options"),
    ],
)
def test_errors(data: bytes, offset: int, match: str) -> None:
    with pytest.raises(PacketError, match=match) as info:
        parse_tcp(data)
    assert (info.value.layer, info.value.offset) == ("tcp", offset)


def test_build_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError, match="more than 40"):
        build_tcp(src=bytes(4), dst=bytes(4), src_port=1, dst_port=2, options=[NOP()] * 41)
    with pytest.raises(ValueError, match="out of range"):
        build_tcp(src=bytes(4), dst=bytes(4), src_port=1, dst_port=2, seq=1 << 32)
    with pytest.raises(ValueError, match="out of range"):
        build_tcp(src=bytes(4), dst=bytes(4), src_port=1, dst_port=2, flags=0x200)
    with pytest.raises(ValueError, match="fit"):
        encode_tcp_options([MSS(70000)])
    with pytest.raises(ValueError, match="4 or both 16"):
        build_tcp(src=bytes(4), dst=bytes(16), src_port=1, dst_port=2)
