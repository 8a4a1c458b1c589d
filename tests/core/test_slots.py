"""Transmit slots (pure) and their sendmmsg/recvmmsg forms on loopback."""

from __future__ import annotations

import ipaddress
import os
import socket

import pytest

from pyscan._core.slots import SlotBuffer
from pyscan._io.batch import BatchReceiver, SlotBatch, sendmmsg_available
from pyscan._wire.packet import build_udp_packet

LO = ipaddress.ip_address("127.0.0.1")


def test_put_and_read_back_each_slot() -> None:
    buf = SlotBuffer(4, capacity=3)
    buf.put(LO, b"abc")
    buf.put(ipaddress.ip_address("127.0.0.2"), b"x" * 100)
    assert buf.count == 2
    assert buf.slot(0) == (LO, b"abc")
    assert buf.slot(1) == (ipaddress.ip_address("127.0.0.2"), b"x" * 100)
    with pytest.raises(IndexError):
        buf.slot(2)
    buf.put(LO, b"z")
    with pytest.raises(ValueError, match="full"):
        buf.put(LO, b"z")


def test_family_and_size_are_checked() -> None:
    buf = SlotBuffer(6, capacity=1)
    with pytest.raises(ValueError, match="IPv4 destination in an IPv6 batch"):
        buf.put(LO, b"a")
    with pytest.raises(ValueError, match="does not fit"):
        buf.put(ipaddress.ip_address("::1"), b"a" * (SlotBuffer.DATA + 1))
    with pytest.raises(ValueError, match="version"):
        SlotBuffer(5)


def test_put_clears_a_scanners_layout_stamp() -> None:
    buf = SlotBuffer(4, capacity=2)
    buf.stamp = b"layout"
    buf.put(LO, b"a")
    assert buf.stamp is None


@pytest.mark.skipif(os.geteuid() != 0, reason="raw sockets need root (CAP_NET_RAW)")
def test_sendmmsg_slots_and_recvmmsg_on_loopback() -> None:
    if not sendmmsg_available():
        pytest.skip("no sendmmsg on this platform")
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    try:
        rx.bind(("127.0.0.1", 0))
        port = rx.getsockname()[1]
        batch = SlotBatch(socket.AF_INET, capacity=8)
        payloads = [f"datagram {i}".encode() * (i + 1) for i in range(8)]
        for i, payload in enumerate(payloads):
            packet = build_udp_packet(
                src=LO, dst=LO, src_port=40000 + i, dst_port=port, payload=payload
            )
            batch.put(LO, packet)
        assert batch.send(tx.fileno(), 0) == (8, 0)
        receiver = BatchReceiver(capacity=4, slot=256)
        got: list[bytes] = []
        rx.settimeout(2)
        while len(got) < 8:
            out = receiver.receive(rx.fileno())
            if isinstance(out, int):
                rx.recv(0, socket.MSG_PEEK)  # wait for more (bounded by the timeout)
                continue
            assert len(out) <= 4
            got += out
        assert got == payloads
        assert receiver.receive(rx.fileno()) == 11  # EAGAIN: nothing left
    finally:
        rx.close()
        tx.close()
