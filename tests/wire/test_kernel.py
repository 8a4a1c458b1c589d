"""The Linux kernel as checksum oracle: packets we build are accepted, broken ones are not.

Sends only to 127.0.0.1 through a raw socket with IP_HDRINCL (IPPROTO_RAW). Needs root (or
CAP_NET_RAW). Negative cases send the broken packet first and a good one right after: on
loopback delivery is in order, so if the first reply or datagram belongs to the good one,
the broken one was dropped - no timeout needs to expire.

Note that on send the kernel rewrites the IPv4 header checksum of IP_HDRINCL packets itself,
so the IPv4 checksum is checked by comparing the header the kernel delivered with ours.
"""

from __future__ import annotations

import os
import random
import select
import socket
import time
from collections.abc import Callable, Iterator

import pytest

from pyscan._wire import (
    ICMPEcho,
    ICMPTimestamp,
    IPv4Header,
    Packet,
    TCPFlags,
    TCPTemplate,
    UDPTemplate,
    build_icmp_echo,
    build_icmp_packet,
    build_icmp_timestamp,
    build_ipv4,
    build_udp,
    build_udp_packet,
    parse_packet,
    verify_icmp_checksum,
    verify_ipv4_checksum,
)

LOOPBACK = "127.0.0.1"
LO = bytes([127, 0, 0, 1])


def _raw_sockets_usable() -> str | None:
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root: raw sockets with IP_HDRINCL to 127.0.0.1"
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).close()
    except PermissionError:
        return "raw sockets not permitted here (no CAP_NET_RAW)"
    return None


pytestmark = pytest.mark.skipif(
    _raw_sockets_usable() is not None, reason=_raw_sockets_usable() or ""
)


@pytest.fixture
def sender() -> Iterator[Callable[[bytes], None]]:
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)

    def send(packet: bytes) -> None:
        assert packet[16:20] == LO, "this test sends to 127.0.0.1 only"
        raw.sendto(packet, (LOOPBACK, 0))

    yield send
    raw.close()


def _sniffer(proto: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    sock.setblocking(False)
    return sock


def _collect(
    sock: socket.socket, want: Callable[[Packet], bool], seconds: float, grace: float = 0.2
) -> list[Packet]:
    """Parsed packets from ``sock`` matching ``want``: wait up to ``seconds`` for the first,
    then ``grace`` more for any later ones."""
    deadline = time.monotonic() + seconds
    found: list[Packet] = []
    while (left := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([sock], [], [], left)
        if not ready:
            break
        data = sock.recv(65535)
        pkt = parse_packet(data)
        if want(pkt):
            if not found:
                deadline = min(deadline, time.monotonic() + grace)
            found.append(pkt)
    return found


def test_udp_delivered_and_bad_checksum_dropped(sender: Callable[[bytes], None]) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind((LOOPBACK, 0))
        port = receiver.getsockname()[1]
        sport = random.randint(20000, 60000)
        bad = bytearray(
            build_udp_packet(src=LO, dst=LO, src_port=sport, dst_port=port, payload=b"broken")
        )
        bad[27] ^= 0x01  # UDP checksum low byte
        sender(bytes(bad))
        good = UDPTemplate(LO, b"accepted").build(0x7F000001, port, sport)
        sender(good)
        receiver.settimeout(2)
        data, addr = receiver.recvfrom(100)
        assert (data, addr) == (b"accepted", (LOOPBACK, sport))
        receiver.setblocking(False)
        with pytest.raises(BlockingIOError):
            receiver.recvfrom(100)


def test_kernel_ip_header_equals_ours(sender: Callable[[bytes], None]) -> None:
    # The kernel recomputes the IPv4 checksum of IP_HDRINCL packets; what it delivers must
    # be byte-identical to what we built, even when we sent a corrupted checksum.
    sniff = _sniffer(socket.IPPROTO_UDP)
    with sniff, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind((LOOPBACK, 0))
        port = receiver.getsockname()[1]
        ident = random.randint(1, 0xFFFF)
        udp = build_udp(src=LO, dst=LO, src_port=ident, dst_port=port, payload=b"ip-check")
        built = build_ipv4(
            src=LO,
            dst=LO,
            protocol=17,
            payload=udp,
            identification=ident,
            ttl=33,
            tos=0x10,
            options=b"\x01\x01\x01\x00",
        )
        corrupted = bytearray(built)
        corrupted[10] ^= 0xFF
        for packet in (built, bytes(corrupted)):
            sender(packet)
            seen = _collect(sniff, lambda p: p.udp is not None and p.udp.src_port == ident, 2)
            assert seen, "the kernel did not deliver the datagram"
            assert isinstance(seen[0].ip, IPv4Header)
            assert seen[0].ip.checksum == int.from_bytes(built[10:12], "big")
            assert receiver.recv(100) == b"ip-check"  # IP options accepted too


def test_kernel_answers_echo_and_ignores_bad_checksum(sender: Callable[[bytes], None]) -> None:
    ident = random.randint(1, 0xFFFF)
    sniff = _sniffer(socket.IPPROTO_ICMP)
    with sniff:
        bad = bytearray(build_icmp_echo(identifier=ident, sequence=1, data=b"pyscan"))
        bad[2] ^= 0x01
        sender(build_icmp_packet(src=LO, dst=LO, message=bytes(bad), identification=ident))
        good = build_icmp_echo(identifier=ident, sequence=2, data=b"pyscan")
        sender(build_icmp_packet(src=LO, dst=LO, message=good, identification=ident))

        def ours(p: Packet) -> bool:
            return isinstance(p.icmp, ICMPEcho) and p.icmp.is_reply and p.icmp.identifier == ident

        replies = _collect(sniff, ours, 1.0)
    assert [r.icmp.sequence for r in replies if isinstance(r.icmp, ICMPEcho)] == [2]
    reply = replies[0]
    assert isinstance(reply.icmp, ICMPEcho)
    assert reply.icmp.data == b"pyscan"
    # The kernel's own checksums (computed in software) pass our verifiers, and our builder
    # produces the very same reply message.
    raw_reply = build_icmp_echo(identifier=ident, sequence=2, data=b"pyscan", reply=True)
    assert reply.icmp.checksum == int.from_bytes(raw_reply[2:4], "big")
    assert verify_icmp_checksum(raw_reply)


def test_kernel_answers_timestamp_request(sender: Callable[[bytes], None]) -> None:
    ident = random.randint(1, 0xFFFF)
    sniff = _sniffer(socket.IPPROTO_ICMP)
    with sniff:
        request = build_icmp_timestamp(identifier=ident, sequence=9, originate=123456)
        sender(build_icmp_packet(src=LO, dst=LO, message=request, identification=ident))

        def ours(p: Packet) -> bool:
            return (
                isinstance(p.icmp, ICMPTimestamp) and p.icmp.is_reply and p.icmp.identifier == ident
            )

        replies = _collect(sniff, ours, 1.0)
    assert replies, "no timestamp reply"
    msg = replies[0].icmp
    assert isinstance(msg, ICMPTimestamp)
    assert msg.originate == 123456
    rebuilt = build_icmp_timestamp(
        identifier=ident,
        sequence=9,
        originate=123456,
        receive=msg.receive,
        transmit=msg.transmit,
        reply=True,
    )
    assert int.from_bytes(rebuilt[2:4], "big") == msg.checksum


def test_kernel_answers_template_syn_and_ignores_bad_checksum(
    sender: Callable[[bytes], None],
) -> None:
    sniff = _sniffer(socket.IPPROTO_TCP)
    with sniff, socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind((LOOPBACK, 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        sport = random.randint(20000, 60000)
        template = TCPTemplate(LO, identification=4321)
        bad = bytearray(template.build(0x7F000001, port, sport, 1000))
        bad[37] ^= 0x01  # TCP checksum low byte
        sender(bytes(bad))
        sender(template.build(0x7F000001, port, sport, 5000))

        def ours(p: Packet) -> bool:
            return p.tcp is not None and p.tcp.src_port == port and p.tcp.dst_port == sport

        answers = _collect(sniff, ours, 1.0)
    assert answers, "no SYN-ACK: the kernel rejected our SYN"
    first = answers[0]
    assert first.tcp is not None
    assert first.tcp.flags & (TCPFlags.SYN | TCPFlags.ACK) == TCPFlags.SYN | TCPFlags.ACK
    assert [a.tcp.ack for a in answers if a.tcp is not None and a.tcp.flags & TCPFlags.SYN] == [
        5001
    ], "the SYN with a broken checksum was answered too"
    # The kernel finishes IPv4 header checksums in software even on loopback.
    assert isinstance(first.ip, IPv4Header)
    assert first.ip.checksum != 0


def test_kernel_ip_checksum_verifies() -> None:
    # A packet the kernel built entirely: its IPv4 header checksum must pass our verifier.
    sniff = _sniffer(socket.IPPROTO_UDP)
    with sniff, socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as a:
        a.bind((LOOPBACK, 0))
        sport = a.getsockname()[1]
        a.sendto(b"kernel-built", (LOOPBACK, sport))
        seen = _collect(sniff, lambda p: p.udp is not None and p.udp.src_port == sport, 2)
    assert seen
    header = seen[0].ip
    assert isinstance(header, IPv4Header)
    rebuilt = build_ipv4(
        src=header.src,
        dst=header.dst,
        protocol=17,
        ttl=header.ttl,
        identification=header.identification,
        tos=header.tos,
        flags=header.flags,
        payload=bytes(header.total_length - 20),
    )
    assert int.from_bytes(rebuilt[10:12], "big") == header.checksum
    assert verify_ipv4_checksum(rebuilt)
