"""Benchmark 3, transmit paths: the same SYNs on the wire by each way Python can send them.

    python benchmarks/bench_tx_paths.py [--runs N] [--addresses A] [--ports P]
        [--template] [--no-blocking] [--workers W] [--frame-size B] [--masscan-rate R]
        [--timeout S] [--json FILE]

The lab of benchmark 3 (``dark_lab``: A addresses from 198.18.0.10, default 20, that drop
every IP packet but answer ARP); one SYN per (address, port), ports 1..P (default 10000):
200,000 probes. Each sender is its own process in the scanner's namespace and puts the
same packets on the wire (source 198.18.0.1, source port 40000, sequence number
``port * 2654435761 mod 2**32``, the packets of ``_sendto_loop.py``), all built before the
first send:

* ``sendto loop``: ``_sendto_loop.py``, one ``sendto`` per packet on an ``IPPROTO_RAW``
  socket (the kernel routes, resolves the neighbour and adds the Ethernet header);
* ``sendmmsg``: pyscan's ``SlotBatch`` (``pyscan._io.batch``) on the same kind of socket,
  256 packets per ``sendmmsg`` call, each copied into the batch with ``SlotBatch.put``;
* ``txring``: ``pyscan._io.txring.TxRing`` on ``eth0``, whole Ethernet frames (source MAC
  the scanner's ``eth0``, destination MAC the dark host's, as masscan's ``--router-mac``)
  copied in with ``TxRing.put``, a kick (``send``) every 256 frames; with and without
  ``PACKET_QDISC_BYPASS``, kicked with ``MSG_DONTWAIT`` and (unless ``--no-blocking``)
  blocking;
* ``masscan --rate R`` (default 1,000,000), the reference;
* ``... x N workers`` (``--workers N``, default the CPU count up to 4; 1 leaves them out):
  ``sendmmsg`` and the bypassing ring again, from N processes at once, each with its own
  socket or ring and its share of the addresses, started together once all have built
  their packets. They show whether the lab's transmit path gets faster with more senders
  (more cores), or is bound by the kernel's work per packet whatever sends it.

The lab's ``eth0`` is a veth whose qdisc is ``noqueue``, so ``PACKET_QDISC_BYPASS`` has
little to skip; ``--qdisc pfifo_fast`` gives it a real queue first (every path but the
bypassing ring then goes through it), as a NIC has.

``--template`` adds rows where the sender builds each packet in place from a template
instead of copying a prebuilt one (what a scanner does: destination address, port,
sequence number and both checksums patched with ``struct.pack_into``), for ``sendmmsg``
(into the batch's slots) and the TX ring (into the ring's frames).

The figure is ``send/s`` as in benchmark 3 (``_common.py``): packets counted at the
scanner's interface over the window in which the counter rose. ``cpu s`` is the whole
process (building the packets included); the extra table adds ``loop cpu``, the CPU
seconds of the send loop alone (``getrusage`` in the sender, user + system), the loop's
own rate, kicks or system calls, times the ring was full, and the interface's
``tx_dropped`` during the loop. The script also runs itself as the sender
(``--sender ...``, inside the namespace).
"""

from __future__ import annotations

import argparse
import errno
import ipaddress
import json
import os
import resource
import socket
import statistics
import struct
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _sendto_loop import LAB, syn

HERE = Path(__file__).resolve().parent
SPORT = 40000
GOLDEN = 2654435761
ETH_IP = 0x0800
TX_BATCH = 256
_IP = struct.Struct("!BBHHHBBH4s4s")
_TCP = struct.Struct("!HHIIBBHHH")


# -- sender side (runs in the scanner's namespace) --------------------------------------------


def _mac(text: str) -> bytes:
    raw = bytes.fromhex(text.replace(":", ""))
    if len(raw) != 6:
        raise SystemExit(f"bad MAC address {text!r}")
    return raw


def _seq(port: int) -> int:
    return port * GOLDEN & 0xFFFFFFFF


def _fold(total: int) -> int:
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _sum16(data: bytes) -> int:
    return sum(struct.unpack(f"!{len(data) // 2}H", data))


class SynTemplate:
    """A 40-byte IPv4 SYN whose destination, port, sequence number and checksums are
    patched in place (``write``): the constant part of both checksums is summed once."""

    def __init__(self, src: bytes) -> None:
        self.src = src
        self.src_int = int.from_bytes(src, "big")
        self.ip = _IP.pack(0x45, 0, 40, 0, 0, 64, socket.IPPROTO_TCP, 0, src, bytes(4))
        self.tcp = _TCP.pack(SPORT, 0, 0, 0, 5 << 4, 0x02, 1024, 0, 0)
        self.packet = self.ip + self.tcp
        self.ip_base = _sum16(self.ip)  # dst and checksum are zero in it
        pseudo = src + struct.pack("!BBH", 0, socket.IPPROTO_TCP, 20)
        self.tcp_base = _sum16(pseudo) + _sum16(self.tcp)  # dport, seq, checksum zero
        self._ip_tail = struct.Struct("!HII")  # checksum, src, dst at IP offset 10
        self._ports = struct.Struct("!HI")  # dport, seq at TCP offset 2
        self._csum = struct.Struct("!H")

    def write(self, buf: memoryview | bytearray, at: int, dst: int, dport: int) -> None:
        """Write the SYN to ``dst:dport`` at ``buf[at:at + 40]``."""
        seq = dport * GOLDEN & 0xFFFFFFFF
        dsum = (dst >> 16) + (dst & 0xFFFF)
        ip = self.ip_base + dsum
        ip = (ip & 0xFFFF) + (ip >> 16)
        ip = (ip & 0xFFFF) + (ip >> 16)
        tcp = self.tcp_base + dsum + dport + (seq >> 16) + (seq & 0xFFFF)
        tcp = (tcp & 0xFFFF) + (tcp >> 16)
        tcp = (tcp & 0xFFFF) + (tcp >> 16)
        buf[at : at + 40] = self.packet
        self._ip_tail.pack_into(buf, at + 10, ~ip & 0xFFFF, self.src_int, dst)
        self._ports.pack_into(buf, at + 22, dport, seq)
        self._csum.pack_into(buf, at + 36, ~tcp & 0xFFFF)


def _probes(first: str, count: int, ports: int) -> list[tuple[ipaddress.IPv4Address, int]]:
    dsts = [ipaddress.IPv4Address(first) + i for i in range(count)]
    if not all(d in LAB for d in dsts):
        raise SystemExit(f"refusing to send outside {LAB}")
    return [(d, p) for p in range(1, ports + 1) for d in dsts]


def _tx_dropped(interface: str) -> int:
    try:
        return int(Path(f"/sys/class/net/{interface}/statistics/tx_dropped").read_text())
    except OSError:
        return -1


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _send_sendmmsg(args: argparse.Namespace, src: bytes) -> dict[str, object]:
    from pyscan._io.batch import SlotBatch  # noqa: PLC0415 - only the sender needs it

    probes = _probes(args.first, args.count, args.ports)
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)  # as pyscan's engine
    fd = sock.fileno()
    batch = SlotBatch(socket.AF_INET, TX_BATCH)
    calls = retries = 0
    in_calls = 0.0
    clock = time.perf_counter

    def send() -> None:
        nonlocal calls, retries, in_calls
        done = 0
        while done < batch.count:
            c0 = clock()
            n, err = batch.send(fd, done)
            in_calls += clock() - c0
            calls += 1
            done += n
            if err in (errno.EAGAIN, errno.ENOBUFS):
                retries += 1
                time.sleep(0.0005)
            elif err and err != errno.EINTR:
                raise OSError(err, os.strerror(err))

    if args.build == "prebuilt":
        packets = [(d, syn(src, d.packed, SPORT, p, _seq(p))) for d, p in probes]
        _start_together(args)
        drops0, cpu0, t0 = _tx_dropped(args.interface), _cpu(), time.perf_counter()
        put = batch.put
        for i in range(0, len(packets), TX_BATCH):
            batch.count = 0
            for dst, packet in packets[i : i + TX_BATCH]:
                put(dst, packet)
            send()
    else:
        template = SynTemplate(src)
        got = bytearray(40)
        d0, p0 = probes[-1]
        template.write(got, 0, int(d0), p0)
        assert bytes(got) == syn(src, d0.packed, SPORT, p0, _seq(p0)), "template differs"
        items = [(int(d), d.packed, p) for d, p in probes]
        for i in range(TX_BATCH):
            batch.set_length(i, 40)
        buf, write = batch.buf, template.write
        slots = [(batch.address_offset(i), batch.packet_offset(i)) for i in range(TX_BATCH)]
        _start_together(args)
        drops0, cpu0, t0 = _tx_dropped(args.interface), _cpu(), time.perf_counter()
        for i in range(0, len(items), TX_BATCH):
            chunk = items[i : i + TX_BATCH]
            for (at_addr, at), (dst, packed, port) in zip(slots, chunk, strict=False):
                buf[at_addr : at_addr + 4] = packed
                write(buf, at, dst, port)
            batch.count = len(chunk)
            send()
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    sock.close()
    return {
        "sent": len(probes),
        "seconds": seconds,
        "loop_cpu": cpu,
        "syscalls": calls,
        "syscall_s": in_calls,
        "retries": retries,
        "tx_dropped": _tx_dropped(args.interface) - drops0,
    }


def _send_txring(args: argparse.Namespace, src: bytes) -> dict[str, object]:
    from pyscan._io.txring import TxRing  # noqa: PLC0415 - only the sender needs it

    probes = _probes(args.first, args.count, args.ports)
    eth = _mac(args.dst_mac) + _mac(args.src_mac) + struct.pack("!H", ETH_IP)
    template = SynTemplate(src)
    ring = TxRing(
        args.interface,
        frame_size=args.frame_size,
        frames=args.frames,
        batch=TX_BATCH,
        blocking=args.blocking,
        qdisc_bypass=args.bypass,
    )
    in_kicks = 0.0
    flush, clock = ring.flush, time.perf_counter

    def timed_flush() -> int:
        nonlocal in_kicks
        c0 = clock()
        try:
            return flush()
        finally:
            in_kicks += clock() - c0

    ring.flush = timed_flush  # type: ignore[method-assign]  # put() kicks through it
    if args.build == "prebuilt":
        frames = [eth + syn(src, d.packed, SPORT, p, _seq(p)) for d, p in probes]
        _start_together(args)
        drops0, cpu0, t0 = _tx_dropped(args.interface), _cpu(), time.perf_counter()
        put = ring.put
        for frame in frames:
            put(frame)
    else:
        items = [(int(d), p) for d, p in probes]
        frame54 = eth + template.packet
        got = bytearray(54)
        got[:14] = eth
        d0, p0 = probes[-1]
        template.write(got, 14, int(d0), p0)
        assert bytes(got) == eth + syn(src, d0.packed, SPORT, p0, _seq(p0)), "template differs"
        _start_together(args)
        drops0, cpu0, t0 = _tx_dropped(args.interface), _cpu(), time.perf_counter()
        buf, reserve, commit, write = ring.buffer, ring.reserve, ring.commit, template.write
        for dst, port in items:
            at = reserve()
            buf[at : at + 14] = frame54[:14]
            write(buf, at + 14, dst, port)
            commit(54)
    ring.flush()
    idle = ring.wait_idle(10.0)
    seconds, cpu = time.perf_counter() - t0, _cpu() - cpu0
    out: dict[str, object] = {
        "sent": ring.committed,
        "seconds": seconds,
        "loop_cpu": cpu,
        "syscalls": ring.kicks,
        "syscall_s": in_kicks,
        "full_waits": ring.full_waits,
        "idle": idle,
        "qdisc_bypass": ring.qdisc_bypass,
        "bypass_error": ring.bypass_error,
        "tx_dropped": _tx_dropped(args.interface) - drops0,
    }
    ring.close()
    return out


def _start_together(args: argparse.Namespace) -> None:
    """With ``--workers``, wait until every worker has built its frames."""
    barrier = getattr(args, "barrier", None)
    if barrier is not None:
        barrier.wait(60)


def _in_workers(
    args: argparse.Namespace, src: bytes, send: Callable[[argparse.Namespace, bytes], Any]
) -> dict[str, object]:
    """``send`` in ``args.workers`` forked processes at once, each with its share of the
    addresses and its own socket or ring; they start sending together (after building)."""
    import multiprocessing  # noqa: PLC0415 - only this row needs it

    ctx = multiprocessing.get_context("fork")
    barrier = ctx.Barrier(args.workers)
    results = ctx.SimpleQueue()
    base, extra = divmod(args.count, args.workers)
    first = ipaddress.IPv4Address(args.first)
    shares = []
    for i in range(args.workers):
        count = base + (i < extra)
        shares.append((first, count))
        first += count

    def work(first: ipaddress.IPv4Address, count: int) -> None:
        share = argparse.Namespace(**vars(args))
        share.first, share.count, share.workers, share.barrier = str(first), count, 1, barrier
        results.put(send(share, src))

    procs = [ctx.Process(target=work, args=share) for share in shares if share[1]]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(120)
    if any(proc.exitcode != 0 for proc in procs):
        raise SystemExit(f"a worker failed: exit codes {[proc.exitcode for proc in procs]}")
    parts = [results.get() for _ in procs]
    out: dict[str, object] = {"workers": len(parts)}
    for key in ("sent", "loop_cpu", "syscalls", "syscall_s", "full_waits"):
        out[key] = sum(part.get(key, 0) for part in parts)
    out["seconds"] = max(part["seconds"] for part in parts)
    out["tx_dropped"] = max(part["tx_dropped"] for part in parts)  # the interface's, shared
    return out


def sender(argv: Sequence[str]) -> int:
    """``--sender sendmmsg|txring``: send the probes, append a JSON line to ``--out``."""
    p = argparse.ArgumentParser()
    p.add_argument("--sender", choices=("sendmmsg", "txring"), required=True)
    p.add_argument("--tool", required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--first", required=True)
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--ports", type=int, required=True)
    p.add_argument("--src", required=True)
    p.add_argument("--interface", default="eth0")
    p.add_argument("--src-mac")
    p.add_argument("--dst-mac")
    p.add_argument("--build", choices=("prebuilt", "template"), default="prebuilt")
    p.add_argument("--bypass", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--blocking", action="store_true")
    p.add_argument("--frame-size", type=int, default=2048)
    p.add_argument("--frames", type=int, default=4096)
    p.add_argument("--workers", type=int, default=1, help="processes sending at once")
    args = p.parse_args(argv)
    src = ipaddress.IPv4Address(args.src)
    if src not in LAB:
        raise SystemExit(f"refusing a source outside {LAB}")
    if args.sender == "sendmmsg":
        send = _send_sendmmsg
    else:
        if not (args.src_mac and args.dst_mac):
            raise SystemExit("txring needs --src-mac and --dst-mac")
        send = _send_txring
    result = _in_workers(args, src.packed, send) if args.workers > 1 else send(args, src.packed)
    result["tool"] = args.tool
    with args.out.open("a") as f:
        f.write(json.dumps(result) + "\n")
    print(json.dumps(result))
    return 0


# -- benchmark side ---------------------------------------------------------------------------


def main() -> int:
    from _common import (  # noqa: PLC0415 - the sender side does not need the lab
        PYTHON,
        Job,
        TxCounter,
        common_args,
        env_ok,
        have,
        interface_mac,
        load_note,
        masscan_argv,
        run_jobs,
        scratch_dir,
        write_json,
    )
    from bench_send_rate import FIRST, MASSCAN, dark_lab  # noqa: PLC0415

    from pyscan.testing.netlab import Lab  # noqa: PLC0415

    parser = common_args(__doc__)
    parser.add_argument("--addresses", type=int, default=20)
    parser.add_argument("--ports", type=int, default=10000)
    parser.add_argument("--masscan-rate", type=int, default=1000000)
    parser.add_argument("--template", action="store_true", help="also build in place")
    parser.add_argument("--no-blocking", action="store_true", help="skip the blocking kick row")
    parser.add_argument(
        "--workers",
        type=int,
        default=min(os.cpu_count() or 1, 4),
        help="also send from this many processes at once (rows 'x N workers'; 1: none)",
    )
    parser.add_argument("--frame-size", type=int, default=2048, help="TX ring frame size")
    parser.add_argument("--frames", type=int, default=4096, help="TX ring frames")
    parser.add_argument(
        "--qdisc",
        choices=("pfifo_fast", "pfifo"),
        help="replace the scanner eth0's noqueue with this qdisc (as on a real NIC), "
        "to see what PACKET_QDISC_BYPASS skips",
    )
    args = parser.parse_args()
    reason = env_ok()
    if reason:
        print(f"skipped: {reason}")
        return 0
    last = FIRST + args.addresses - 1
    probes = args.addresses * args.ports
    ports = f"1-{args.ports}"
    masscan_name = MASSCAN.format(args.masscan_rate // 1000)
    with Lab(dark_lab(args.addresses)) as lab, scratch_dir() as tmp:
        counter = TxCounter(lab)
        src_mac, dst_mac = interface_mac(lab), interface_mac(lab, "dark")
        if args.qdisc:  # inside the scanner's namespace only
            lab.run(["tc", "qdisc", "replace", "dev", "eth0", "root", args.qdisc], check=True)
        qdisc = lab.run(["tc", "qdisc", "show", "dev", "eth0"]).stdout.strip()
        print(
            f"# benchmark 3, transmit paths: SYN to {args.addresses} silent addresses x "
            f"{ports} ({probes} probes, no answers); {load_note()}; "
            f"{time.strftime('%Y-%m-%d %H:%M:%S %Z')}; scanner eth0 qdisc: {qdisc or '?'}; "
            f"TX ring {args.frames} x {args.frame_size} B"
        )
        results = tmp / "senders.jsonl"
        base = [PYTHON, str(Path(__file__).resolve()), "--out", str(results)]
        base += ["--first", str(FIRST), "--count", str(args.addresses), "--ports", str(args.ports)]
        base += ["--src", lab.scanner_address, "--interface", lab.interface]
        ring = ["--src-mac", src_mac, "--dst-mac", dst_mac]
        ring += ["--frame-size", str(args.frame_size), "--frames", str(args.frames)]
        rows: list[tuple[str, list[str]]] = [
            ("sendmmsg SlotBatch x256", ["--sender", "sendmmsg"]),
            ("txring bypass dontwait", ["--sender", "txring", *ring]),
            ("txring qdisc dontwait", ["--sender", "txring", "--no-bypass", *ring]),
        ]
        if not args.no_blocking:
            rows.append(("txring bypass blocking", ["--sender", "txring", "--blocking", *ring]))
        if args.workers > 1:
            many = ["--workers", str(args.workers)]
            rows += [
                (f"sendmmsg x{args.workers} workers", ["--sender", "sendmmsg", *many]),
                (f"txring bypass x{args.workers} workers", ["--sender", "txring", *many, *ring]),
            ]
        if args.template:
            rows += [
                ("sendmmsg template", ["--sender", "sendmmsg", "--build", "template"]),
                (
                    "txring bypass template",
                    ["--sender", "txring", "--build", "template", *ring],
                ),
            ]
        jobs: list[Job] = []
        if not args.no_reference and have("masscan"):
            out = tmp / "masscan.txt"
            argv = masscan_argv(
                lab, f"{FIRST}-{last}", ports, args.masscan_rate, out, router_host="dark", wait=1
            )
            bound = probes / 50000 + 1 + 15  # as benchmark 3: at worst 50k/s, slack for a hang
            jobs.append(Job(masscan_name, argv, "masscan-list", out, bound))
        sendto = [PYTHON, str(HERE / "_sendto_loop.py"), str(FIRST), str(args.addresses)]
        jobs.append(Job("python sendto loop", [*sendto, str(args.ports)], "none"))
        jobs.extend(Job(t, [*base, "--tool", t, *extra], "none") for t, extra in rows)
        reference = masscan_name if any(j.tool == masscan_name for j in jobs) else None
        runs = run_jobs(
            lab, counter, jobs, frozenset(), runs=args.runs, timeout=args.timeout,
            reference=reference,
        )  # fmt: skip
        senders = [json.loads(line) for line in results.read_text().splitlines() if line]
    print(f"\n## the send loops (medians over {args.runs} runs, from the senders themselves)")
    print(loop_table(runs, senders, reference))
    write_json(
        args.json, "tx_paths", runs, probes=probes, ports=ports, senders=senders, qdisc=qdisc
    )
    return 0


def loop_table(
    runs: Sequence[Sequence[Any]], senders: list[dict[str, Any]], ref: str | None
) -> str:
    """send/s (interface counter), its ratio to the reference, CPU, and the loops' own
    figures, one row per tool (medians)."""
    by_tool: dict[str, list[Any]] = {}
    for rows in runs:
        for m in rows:
            by_tool.setdefault(m.tool, []).append(m)
    loops: dict[str, list[dict[str, Any]]] = {}
    for s in senders:
        loops.setdefault(str(s["tool"]), []).append(s)

    def med(values: Sequence[float]) -> float:
        return float(statistics.median(values)) if values else float("nan")

    ref_send = med([m.send_pps for m in by_tool.get(ref or "", [])])
    header = (
        f"{'path':28} {'runs':>4} {'send/s':>9} {'min':>9} {'max':>9} {'vs ref':>6} "
        f"{'cpu s':>6} {'loop s':>6} {'in sys':>6} {'loop cpu':>8} {'us/pkt':>6} "
        f"{'calls':>6} {'full':>6} {'drops':>5}"
    )
    lines = [header]
    for tool, ms in by_tool.items():
        send = [m.send_pps for m in ms]
        cpu = med([m.cpu for m in ms])
        ls = loops.get(tool, [])
        loop_s = med([float(s["seconds"]) for s in ls])
        loop_cpu = med([float(s["loop_cpu"]) for s in ls])
        sent = med([float(s["sent"]) for s in ls])
        per = loop_cpu / sent * 1e6 if ls and sent else float("nan")
        calls = med([float(s.get("syscalls", 0)) for s in ls])
        in_sys = med([float(s.get("syscall_s", 0)) for s in ls])
        full = med([float(s.get("full_waits", 0)) for s in ls])
        drops = med([float(s.get("tx_dropped", 0)) for s in ls])
        ratio = f"{med(send) / ref_send:.2f}x" if ref_send == ref_send and ref_send else "-"
        extra = (
            f"{loop_s:6.2f} {in_sys:6.2f} {loop_cpu:8.2f} {per:6.2f} {calls:6.0f} "
            f"{full:6.0f} {drops:5.0f}"
            if ls
            else f"{'-':>6} {'-':>6} {'-':>8} {'-':>6} {'-':>6} {'-':>6} {'-':>5}"
        )
        lines.append(
            f"{tool:28} {len(ms):4d} {med(send):9.0f} {min(send):9.0f} {max(send):9.0f} "
            f"{ratio:>6} {cpu:6.2f} {extra}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    if "--sender" in sys.argv[1:]:
        sys.exit(sender(sys.argv[1:]))
    sys.exit(main())
