"""The kernel's receive-buffer drops reach the running scans as a congestion signal."""

from __future__ import annotations

import asyncio
import socket
import time

from pyscan._io.engine import RawEngine
from pyscan.testing.fakenet import FakeHost, FakeNetwork

from ._sim import port_run, target


class _Listener:
    def __init__(self) -> None:
        self.calls: list[int] = []

    def on_local_drops(self, count: int, now: float) -> bool:
        self.calls.append(count)
        return True


def test_overflowing_a_receive_buffer_is_reported_to_the_scans() -> None:
    async def main() -> list[int]:
        engine = RawEngine(asyncio.get_running_loop())
        listener = _Listener()
        engine._wakes[listener] = asyncio.Event()  # type: ignore[index]
        rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            rx.bind(("127.0.0.1", 0))
            engine._check_drops(rx, 0.0)
            assert listener.calls == []
            for _ in range(200):
                tx.sendto(b"x" * 512, rx.getsockname())
            time.sleep(0.05)
            engine._check_drops(rx, 1.0)
            engine._check_drops(rx, 2.0)  # nothing new: no second report
            assert engine.kernel_drops == sum(listener.calls)
            return listener.calls
        finally:
            rx.close()
            tx.close()
            engine.close()

    calls = asyncio.run(main())
    assert len(calls) == 1
    assert calls[0] > 0


def test_local_drops_shrink_the_group_window_once_per_episode() -> None:
    net = FakeNetwork({target(0): FakeHost()}, delay=0.01)
    run = port_run("syn", net, [target(0)], list(range(1, 200)))
    scanner = run.scanner
    group = scanner._group
    group.cwnd.cwnd = 400.0
    assert scanner.on_local_drops(10, now=5.0)
    assert group.cwnd.cwnd < 400.0
    after = group.cwnd.cwnd
    assert not scanner.on_local_drops(3, now=5.0 + group.probe_timeout / 2)
    assert group.cwnd.cwnd == after
    assert scanner.on_local_drops(3, now=5.0 + 3 * group.probe_timeout)
    assert scanner.local_drops == 16
