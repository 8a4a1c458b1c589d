"""Classic BPF programs for the raw receive sockets (pure: instructions as bytes).

A raw IPv4 socket of one protocol (TCP or UDP) gets a copy of every such packet the host
receives. :func:`port_filter` builds a program the kernel runs on each before queueing it:
it keeps only packets whose destination port (the second 16-bit word of the transport
header, found past the IP header's own length) lies in one of the given ranges, i.e.
answers to our probes, whose source ports we chose. Everything else (the host's other
traffic, our own probes seen on loopback) never reaches Python.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

__all__ = ["MAX_RANGES", "port_filter", "port_ranges"]

# struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }
_INSN = struct.Struct("=HBBI")
_LDX_MSH_B = 0xB1  # X = 4 * (P[k] & 0xf): the IPv4 header length
_LD_H_IND = 0x48  # A = P[X + k] (16 bits, network order)
_JGE_K = 0x35
_JGT_K = 0x25
_RET_K = 0x06
_ACCEPT = 0xFFFFFFFF  # keep the whole packet
_REJECT = 0
#: Ranges beyond this many make no filter (the caller then keeps every packet).
MAX_RANGES = 100


def port_ranges(ports: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged ``(first, last)`` ranges covering ``ports``."""
    out: list[tuple[int, int]] = []
    for p in sorted(set(ports)):
        if not 0 <= p <= 0xFFFF:
            raise ValueError(f"port {p} is out of range 0-65535")
        if out and p == out[-1][1] + 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


def port_filter(ranges: list[tuple[int, int]]) -> bytes:
    """The program keeping IPv4 packets whose destination port is in ``ranges`` (an
    empty list keeps nothing). Raises ValueError beyond :data:`MAX_RANGES` ranges."""
    if len(ranges) > MAX_RANGES:
        raise ValueError(f"{len(ranges)} port ranges is more than {MAX_RANGES}")
    if not ranges:
        return _INSN.pack(_RET_K, 0, 0, _REJECT)
    accept = 2 + 2 * len(ranges)
    reject = accept + 1
    insns = [(_LDX_MSH_B, 0, 0, 0), (_LD_H_IND, 0, 0, 2)]
    for i, (lo, hi) in enumerate(ranges):
        if not 0 <= lo <= hi <= 0xFFFF:
            raise ValueError(f"bad port range {lo}-{hi}")
        here = 2 + 2 * i
        following = here + 2 if i + 1 < len(ranges) else reject
        # port < lo: try the next range; port > hi: try the next range; else keep
        insns.append((_JGE_K, 0, following - (here + 1), lo))
        insns.append((_JGT_K, following - (here + 2), accept - (here + 2), hi))
    insns.append((_RET_K, 0, 0, _ACCEPT))
    insns.append((_RET_K, 0, 0, _REJECT))
    return b"".join(_INSN.pack(*insn) for insn in insns)
