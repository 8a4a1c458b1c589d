"""The receive filter: a small interpreter of the instructions used checks the program
against plain set membership; on loopback the kernel runs it."""

from __future__ import annotations

import ctypes
import os
import socket
import struct
import time

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._wire.bpf import MAX_RANGES, port_filter, port_ranges

_INSN = struct.Struct("=HBBI")


def run_filter(program: bytes, packet: bytes) -> int:
    """Interpret the subset of classic BPF that port_filter emits."""
    insns = [_INSN.unpack_from(program, i) for i in range(0, len(program), 8)]
    a = x = pc = 0
    for _ in range(1000):
        code, jt, jf, k = insns[pc]
        pc += 1
        if code == 0xB1:
            x = 4 * (packet[k] & 0xF)
        elif code == 0x48:
            if x + k + 2 > len(packet):
                return 0
            a = packet[x + k] << 8 | packet[x + k + 1]
        elif code == 0x35:
            pc += jt if a >= k else jf
        elif code == 0x25:
            pc += jt if a > k else jf
        elif code == 0x06:
            return k
        else:  # pragma: no cover - the assertion says which
            raise AssertionError(f"unexpected opcode {code:#x}")
    raise AssertionError("no return")  # pragma: no cover


def ip_packet(dport: int, ihl: int = 5) -> bytes:
    header = bytes([0x40 | ihl]) + bytes(4 * ihl - 1)
    return header + struct.pack("!HH", 1234, dport) + bytes(16)


@given(
    st.lists(st.integers(0, 65535), max_size=60),
    st.integers(0, 65535),
    st.integers(5, 15),
)
def test_program_keeps_exactly_the_ports(ports: list[int], dport: int, ihl: int) -> None:
    ranges = port_ranges(ports)
    kept = run_filter(port_filter(ranges), ip_packet(dport, ihl)) != 0
    assert kept == (dport in set(ports))


def test_ranges_merge_and_bounds() -> None:
    assert port_ranges([7, 5, 6, 10, 3, 11]) == [(3, 3), (5, 7), (10, 11)]
    assert run_filter(port_filter([]), ip_packet(80)) == 0
    with pytest.raises(ValueError, match="more than"):
        port_filter([(2 * i, 2 * i) for i in range(MAX_RANGES + 1)])
    with pytest.raises(ValueError, match="out of range"):
        port_ranges([70000])


@pytest.mark.skipif(os.geteuid() != 0, reason="raw sockets need root (CAP_NET_RAW)")
def test_the_kernel_runs_it_on_a_raw_socket() -> None:
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        program = port_filter([(50000, 50010)])
        code = ctypes.create_string_buffer(program, len(program))
        prog = struct.pack("=H6xQ", len(program) // 8, ctypes.addressof(code))
        raw.setsockopt(socket.SOL_SOCKET, 26, prog)
        raw.settimeout(0.5)
        for port in (50020, 50005, 40000, 50010):
            tx.sendto(b"probe %d" % port, ("127.0.0.1", port))
        got: list[int] = []
        deadline = time.monotonic() + 2
        while time.monotonic() < deadline:
            try:
                data = raw.recv(2048)
            except TimeoutError:
                break
            ihl = (data[0] & 15) * 4
            got.append(data[ihl + 2] << 8 | data[ihl + 3])
        assert got == [50005, 50010]
    finally:
        raw.close()
        tx.close()
