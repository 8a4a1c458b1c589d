"""The AF_PACKET transmit ring (``pyscan._io.txring``) on a veth pair between two throwaway
network namespaces: frames put into the ring arrive on the peer byte for byte and in
order (with and without qdisc bypass, copied or written in place, kicked with and
without ``MSG_DONTWAIT``), a full ring waits for the kernel and wraps around, a frame the
kernel refuses is reported, and ``close`` releases the socket and the mapping.

The frames carry the IEEE local experimental EtherType 0x88B5 (no IP at all) and never
leave the two namespaces, which exist only for the test (nothing in the root namespace).
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import socket
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

from pyscan._io import txring as txring_mod
from pyscan._io.txring import FrameFormatError, TxRing, TxRingError, txring_available
from pyscan.testing.netlab import enter_netns

ETHERTYPE = 0x88B5  # IEEE 802 local experimental EtherType 1
TX_IF, RX_IF = "tx0", "rx0"


def _skip_reason() -> str | None:
    if not txring_available():
        return "AF_PACKET needs Linux"
    if os.geteuid() != 0:
        return "needs root: CAP_NET_ADMIN (namespaces, veth) and CAP_NET_RAW (AF_PACKET)"
    if shutil.which("ip") is None:
        return "needs the 'ip' tool (Debian package iproute2)"
    if not Path("/proc/thread-self/ns/net").exists():
        return "/proc/thread-self/ns/net is missing"
    return None


needs_root = pytest.mark.skipif(_skip_reason() is not None, reason=str(_skip_reason()))


def _ip(*args: str) -> None:
    res = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=30, check=False)
    if res.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")


@attrs.frozen
class Pair:
    """A veth pair: ``tx0`` in namespace ``tx_ns``, ``rx0`` in ``rx_ns``."""

    tx_ns: str
    rx_ns: str
    rx_mac: bytes
    tx_mac: bytes

    def frame(self, payload: bytes) -> bytes:
        """An Ethernet frame from tx0 to rx0 carrying ``payload``."""
        return self.rx_mac + self.tx_mac + struct.pack("!H", ETHERTYPE) + payload

    def ring(self, **options: object) -> TxRing:
        """A ring on tx0 (the socket lives in tx_ns)."""
        with enter_netns(self.tx_ns):
            return TxRing(TX_IF, **options)  # type: ignore[arg-type]

    def receiver(self) -> socket.socket:
        """An AF_PACKET socket on rx0 that sees only the test EtherType."""
        with enter_netns(self.rx_ns):
            sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETHERTYPE))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        sock.bind((RX_IF, ETHERTYPE))
        sock.settimeout(2.0)
        return sock


def _mac(ns: str, ifname: str) -> bytes:
    with enter_netns(ns), socket.socket(socket.AF_PACKET, socket.SOCK_RAW, 0) as s:
        s.bind((ifname, 0))
        return s.getsockname()[4]


@pytest.fixture
def pair() -> Iterator[Pair]:
    reason = _skip_reason()
    if reason is not None:
        pytest.skip(reason)
    tag = f"pyscantx-{os.getpid()}-{secrets.token_hex(3)}"
    tx_ns, rx_ns = f"{tag}-a", f"{tag}-b"
    created: list[str] = []
    try:
        for ns in (tx_ns, rx_ns):
            _ip("netns", "add", ns)
            created.append(ns)
        _ip(
            "-n", tx_ns, "link", "add", TX_IF, "type", "veth", "peer", "name", RX_IF, "netns", rx_ns
        )
        _ip("-n", tx_ns, "link", "set", TX_IF, "up")
        _ip("-n", rx_ns, "link", "set", RX_IF, "up")
        yield Pair(tx_ns, rx_ns, _mac(rx_ns, RX_IF), _mac(tx_ns, TX_IF))
    finally:
        for ns in created:
            subprocess.run(["ip", "netns", "del", ns], check=False, timeout=30)


def _receive(sock: socket.socket, count: int) -> list[bytes]:
    out = []
    for _ in range(count):
        try:
            out.append(sock.recv(65536))
        except TimeoutError:
            break
    return out


def _payloads(count: int, seed: int = 0) -> list[bytes]:
    """Payloads of varied lengths (46-1500 bytes: frames 60-1514) and distinct content."""
    rng = __import__("random").Random(seed)
    return [
        struct.pack("!I", i) + rng.randbytes(rng.choice((42, 100, 500, 1496))) for i in range(count)
    ]


# -- no root needed ------------------------------------------------------------------------


def test_frame_size_is_checked_before_opening_a_socket() -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        TxRing("lo", frame_size=2050)
    with pytest.raises(ValueError, match="at least"):
        TxRing("lo", frame_size=32)
    with pytest.raises(ValueError, match="frames"):
        TxRing("lo", frames=0)


def test_layout_constants_follow_the_uapi_header() -> None:
    # TPACKET2_HDRLEN = TPACKET_ALIGN(sizeof(struct tpacket2_hdr)) + sizeof(sockaddr_ll)
    assert txring_mod.TPACKET2_HDRLEN == 52
    assert txring_mod.DATA_OFFSET == 32
    assert txring_mod.DATA_OFFSET % txring_mod.TPACKET_ALIGNMENT == 0


# -- on a veth pair --------------------------------------------------------------------------


@needs_root
@pytest.mark.parametrize("bypass", [True, False], ids=["qdisc-bypass", "qdisc"])
@pytest.mark.parametrize("blocking", [False, True], ids=["dontwait", "blocking"])
def test_frames_arrive_byte_for_byte_in_order(pair: Pair, bypass: bool, blocking: bool) -> None:
    frames = [pair.frame(p) for p in _payloads(600)]
    rx = pair.receiver()
    ring = pair.ring(frames=256, batch=64, qdisc_bypass=bypass, blocking=blocking)
    try:
        assert ring.qdisc_bypass is bypass, ring.bypass_error
        assert (ring.bypass_error is None) is bypass
        for frame in frames:
            ring.put(frame)
        ring.flush()
        assert ring.wait_idle(5.0)
        got = _receive(rx, len(frames))
    finally:
        ring.close()
        rx.close()
    assert ring.committed == len(frames)
    assert len(got) == len(frames)
    assert got == frames


@needs_root
def test_frames_written_in_place(pair: Pair) -> None:
    """reserve/commit with pack_into on the ring buffer, and slot() views."""
    header = pair.frame(b"")
    rx = pair.receiver()
    ring = pair.ring(frames=64, batch=0)
    expected = []
    try:
        for i in range(100):
            at = ring.reserve()
            buf = ring.buffer
            buf[at : at + 14] = header
            struct.pack_into("!IH", buf, at + 14, i, 0xABCD)
            buf[at + 20 : at + 60] = bytes([i]) * 40
            ring.commit(60)
            expected.append(header + struct.pack("!IH", i, 0xABCD) + bytes([i]) * 40)
        for i in range(100, 150):
            view = ring.slot()
            assert len(view) == ring.capacity
            frame = pair.frame(bytes([i]) * (i * 3))
            view[: len(frame)] = frame
            ring.commit(len(frame))
            with pytest.raises(ValueError):  # released: the kernel owns the frame now
                view[0] = 0
            expected.append(frame)
        ring.flush()
        assert ring.wait_idle(5.0)
        got = _receive(rx, len(expected))
    finally:
        ring.close()
        rx.close()
    assert got == expected


@needs_root
def test_a_full_ring_waits_for_the_kernel_and_wraps(pair: Pair) -> None:
    """An 8-frame ring, never kicked by the caller: put() finds it full, kicks, waits for
    frames to come back and reuses them; every frame arrives once, in order."""
    frames = [pair.frame(p) for p in _payloads(500, seed=1)]
    rx = pair.receiver()
    ring = pair.ring(frames=8, batch=0)
    try:
        assert ring.frames == 8
        for frame in frames[:8]:
            ring.put(frame)
        assert ring.kicks == 0
        assert all(ring.status(i) == txring_mod.TP_STATUS_SEND_REQUEST for i in range(8))
        assert ring.in_flight() == 8
        for frame in frames[8:]:
            ring.put(frame)
        assert ring.full_waits >= (len(frames) - 8) // 8
        assert ring.wait_idle(5.0)
        assert ring.in_flight() == 0
        got = _receive(rx, len(frames))
    finally:
        ring.close()
        rx.close()
    assert got == frames


@needs_root
def test_frame_too_long_for_the_device_is_reported(pair: Pair) -> None:
    """1600 bytes exceed the veth's MTU 1500 + 14 + 4 (VLAN): the kernel marks the frame
    TP_STATUS_WRONG_FORMAT; the frames before it are sent, the ring refuses more."""
    good = [pair.frame(p) for p in _payloads(5, seed=2)]
    rx = pair.receiver()
    ring = pair.ring(frames=16, batch=0)
    try:
        for frame in good:
            ring.put(frame)
        ring.put(pair.frame(bytes(1600 - 14)))
        with pytest.raises(FrameFormatError) as info:
            ring.flush()
        assert info.value.index == 5
        assert info.value.length == 1600
        assert info.value.errno == errno.EMSGSIZE
        assert ring.status(5) == txring_mod.TP_STATUS_WRONG_FORMAT
        with pytest.raises(FrameFormatError):
            ring.put(good[0])
        got = _receive(rx, len(good) + 1)
    finally:
        ring.close()
        rx.close()
    assert got == good
    assert ring.closed


@needs_root
def test_close_releases_socket_and_mapping(pair: Pair) -> None:
    def maps() -> int:
        return Path("/proc/self/maps").read_text().count("socket:")

    fds, mapped = len(os.listdir("/proc/self/fd")), maps()
    rings = [pair.ring(frames=64) for _ in range(20)]
    assert maps() == mapped + 20
    for r in rings:
        r.put(pair.frame(b"x" * 46))
        r.close()
        r.close()  # idempotent
    assert len(os.listdir("/proc/self/fd")) == fds
    assert maps() == mapped
    ring = rings[0]
    assert ring.closed
    assert ring.sock.fileno() == -1
    with pytest.raises(TxRingError, match="closed"):
        ring.put(pair.frame(b"x" * 46))
    with pytest.raises(TxRingError, match="closed"):
        ring.flush()
    with pair.ring(frames=8) as r2:  # context manager
        r2.put(pair.frame(b"y" * 46))
    assert r2.closed
    assert len(os.listdir("/proc/self/fd")) == fds


@needs_root
def test_unknown_interface_is_an_error(pair: Pair) -> None:
    with enter_netns(pair.tx_ns), pytest.raises(TxRingError, match="nosuchif"):
        TxRing("nosuchif")


@needs_root
def test_close_with_a_view_still_held_closes_the_socket_and_says_so(pair: Pair) -> None:
    ring = pair.ring(frames=8)
    held = ring.buffer[0:64]  # a derived view keeps the mapping exported
    with pytest.raises(TxRingError, match="still held"):
        ring.close()
    assert ring.closed
    assert ring.sock.fileno() == -1
    held.release()
    ring._map.close()  # now it can go
    ring.close()  # idempotent
