"""Baseline for benchmark 2: the least a Python SYN scan of one host x 65535 ports does.

    python _syn_floor.py TARGET [WAIT]

Uses pyscan's own building blocks without its engine: probes built by
``SynScanner.build_batch`` (keyed cookie, both checksums) into ``SlotBatch`` es that a
second thread sends with ``sendmmsg``; the main thread reads answers with ``recvmmsg``
(``BatchReceiver``), checks each one's cookie and marks its port open or closed in a
bytearray. There is no scheduling, congestion control, retransmission, timer, result
object, report or asyncio: one try per port, in a random order. It stops when every port
has an answer, or WAIT seconds (default 2) after the last one. Prints the summary line
the benchmark driver reads for pyscan (``open``, ``states``, ``scan_seconds``).
Refuses targets outside 198.18.0.0/15.
"""

from __future__ import annotations

import time

START = time.perf_counter()

import ipaddress  # noqa: E402
import json  # noqa: E402
import random  # noqa: E402
import select  # noqa: E402
import socket  # noqa: E402
import struct  # noqa: E402
import sys  # noqa: E402
import threading  # noqa: E402

from pyscan._core.timing import TimingTemplate  # noqa: E402
from pyscan._io.batch import BatchReceiver, SlotBatch  # noqa: E402
from pyscan._scanners._common import Cookie  # noqa: E402
from pyscan._scanners.syn import SynScanner  # noqa: E402

LAB = ipaddress.IPv4Network("198.18.0.0/15")
SPORT = 40123
ANSWER = struct.Struct("!HHIIxB")  # ports, seq, ack, (offset), flags


def main() -> None:
    target = ipaddress.IPv4Address(sys.argv[1])
    wait = float(sys.argv[2]) if len(sys.argv) > 2 else 2.0
    if target not in LAB:
        raise SystemExit(f"refusing to send outside {LAB}")
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.connect((str(target), 9))
    source = ipaddress.IPv4Address(probe.getsockname()[0])
    probe.close()
    order = list(range(65535))
    random.shuffle(order)
    scanner = SynScanner(
        hosts=[target],
        ports=range(1, 65536),
        sources=lambda _host: source,
        src_ports=[SPORT],
        emit=lambda _result: None,
        order=iter(order),
        timing=TimingTemplate.get(4).params(),
    )
    tx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    rx = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    rx.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)  # as the engine's
    rx.setblocking(False)

    def send() -> None:
        batch = SlotBatch(socket.AF_INET, 256)
        for at in range(0, len(order), 256):
            batch.count = 0
            scanner.build_batch([(index, 0) for index in order[at : at + 256]], batch)
            done = 0
            while done < batch.count:
                n, err = batch.send(tx.fileno(), done)
                if err:
                    time.sleep(0.0001)  # ENOBUFS: the qdisc is full
                done += n

    sender = threading.Thread(target=send)
    sender.start()
    dst = target.packed
    key, pack = scanner.cookie.key, Cookie.PACK.pack
    state = bytearray(65536)  # 0 no answer, 1 open, 2 closed
    left, fd, receiver = 65535, rx.fileno(), BatchReceiver(256)
    last = time.monotonic()
    while left and time.monotonic() < last + wait:
        got = receiver.receive(fd)
        if isinstance(got, int):
            select.select([rx], [], [], 0.05)
            continue
        last = time.monotonic()
        for data in got:
            if data[12:16] != dst:
                continue
            port, to, _seq, ack, flags = ANSWER.unpack_from(data, 20)
            if to != SPORT or state[port]:
                continue
            if (ack - 1) & 0xFFFFFFFF != hash(pack(key, dst, port, SPORT)) & 0xFFFFFFFF:
                continue
            state[port] = 2 if flags & 0x04 else 1
            left -= 1
    sender.join()
    opened = [[str(target), "tcp", p] for p in range(1, 65536) if state[p] == 1]
    states = {"open": len(opened), "closed": state.count(2), "no answer": left}
    elapsed = time.perf_counter() - START
    print(json.dumps({"open": opened, "states": states, "scan_seconds": elapsed}))


if __name__ == "__main__":
    main()
