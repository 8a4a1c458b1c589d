"""A userspace link impairer: forwards Ethernet frames between two interfaces with delay and loss.

How this works: this kernel has no ``sch_netem``, so the lab puts a Python process in the
switch namespace, between two veth ends ``A`` and ``B`` (``A`` leads to the impaired host,
``B`` to a bridge port). Two ``AF_PACKET`` raw sockets see every frame arriving on each
end (frames the kernel sends out of an interface, including our own, are ignored via
``PACKET_IGNORE_OUTGOING`` and the ``PACKET_OUTGOING`` packet type). Each frame is either
dropped (seeded ``random.Random`` per direction, so a run is reproducible given the same
frame sequence) or queued with a due time of ``now + delay (+ jitter)``; a heap releases
frames to the other interface when due. Frames keep their order when ``jitter`` is 0.

Checksum and segmentation offloads must be off on every interface whose traffic crosses
this path (the lab does that), or frames arrive with unfinished checksums or larger than
the MTU.

Run as a script (the lab starts it with ``ip netns exec``)::

    python _forwarder.py A B --delay 0.05 --loss 0.05 --seed 1

It prints ``ready`` on stdout once both sockets are bound and runs until SIGTERM/SIGINT.
Only the standard library is used so the file can run from any interpreter.
"""

from __future__ import annotations

import argparse
import contextlib
import heapq
import random
import selectors
import signal
import socket
import sys
import time
from types import FrameType

ETH_P_ALL = 0x0003
PACKET_OUTGOING = 4
SOL_PACKET = 263
PACKET_IGNORE_OUTGOING = 23
MAX_FRAME = 65536


def _open(ifname: str) -> socket.socket:
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    with contextlib.suppress(OSError):  # older kernels: the pkttype check still filters
        sock.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    sock.bind((ifname, 0))
    sock.setblocking(False)
    return sock


def forward(
    a: str,
    b: str,
    *,
    delay: float,
    loss: float,
    jitter: float = 0.0,
    seed: int = 0,
    ready: bool = True,
) -> None:
    """Forward frames between interfaces ``a`` and ``b`` until a SIGTERM or SIGINT."""
    socks = {a: _open(a), b: _open(b)}
    peer = {a: socks[b], b: socks[a]}
    rngs = {a: random.Random(f"{seed}:{a}>{b}"), b: random.Random(f"{seed}:{b}>{a}")}
    sel = selectors.DefaultSelector()
    for name, sock in socks.items():
        sel.register(sock, selectors.EVENT_READ, name)
    queue: list[tuple[float, int, str, bytes]] = []
    counter = 0

    def _stop(_signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    if ready:
        sys.stdout.write("ready\n")
        sys.stdout.flush()
    while True:
        now = time.monotonic()
        while queue and queue[0][0] <= now:
            _, _, out, frame = heapq.heappop(queue)
            with contextlib.suppress(OSError):  # a refused frame is lost, as on a wire
                peer[out].send(frame)
        timeout = max(0.0, queue[0][0] - now) if queue else 0.5
        for key, _ in sel.select(timeout):
            name = key.data
            sock = socks[name]
            rng = rngs[name]
            while True:
                try:
                    frame, addr = sock.recvfrom(MAX_FRAME)
                except BlockingIOError:
                    break
                except OSError:
                    break
                if addr[2] == PACKET_OUTGOING:
                    continue
                if loss > 0.0 and rng.random() < loss:
                    continue
                extra = rng.uniform(0.0, jitter) if jitter > 0.0 else 0.0
                counter += 1
                heapq.heappush(queue, (time.monotonic() + delay + extra, counter, name, frame))


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--delay", type=float, default=0.05, help="seconds (default 0.05)")
    parser.add_argument("--jitter", type=float, default=0.0, help="extra 0..J seconds")
    parser.add_argument("--loss", type=float, default=0.05, help="drop probability 0..1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tag", default="", help="ignored; marks the process as a lab's")
    args = parser.parse_args(argv)
    forward(args.a, args.b, delay=args.delay, loss=args.loss, jitter=args.jitter, seed=args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
