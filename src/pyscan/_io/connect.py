"""The connect scan's IO: many non-blocking connect() calls in flight, bounded.

Workers take ``(host, port)`` pairs from the shared (permuted) probe iterator and connect
with a timeout from the host's RTT estimate; silence is retried like a raw probe (the
retry allowance grows when retries get answers), answers are classified by
:func:`~pyscan._scanners.connect.classify_connect`. Concurrency is bounded by the
open-file limit, which is raised to its hard limit where allowed.
"""

from __future__ import annotations

import asyncio
import contextlib
import resource
import socket
from collections.abc import Callable, Iterator, Sequence

from pyscan._core.rate import RateLimiter
from pyscan._core.timing import GroupTiming, HostTiming, TimingParams
from pyscan._models import IPAddress, PortResult, Reason
from pyscan._scanners.connect import classify_connect, is_final

__all__ = ["connect_once", "raise_nofile_limit", "run_connect_scan"]


def raise_nofile_limit() -> int:
    """Raise the soft open-file limit to the hard limit where allowed; return the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        want = 1 << 20 if hard == resource.RLIM_INFINITY else hard
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
            soft = want
    return soft


async def connect_once(
    addr: IPAddress, port: int, timeout: float, source: str | None = None
) -> tuple[int | None, float]:
    """One connect attempt: ``(errno or 0, or None on timeout; seconds it took)``."""
    loop = asyncio.get_running_loop()
    family = socket.AF_INET6 if addr.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    started = loop.time()
    try:
        sock.setblocking(False)
        # RST on close: no TIME_WAIT pile-up, and the service sees an abort, not a session.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        if source is not None:
            sock.bind((source, 0))
        try:
            # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancellation that
            # races with the connect finishing, and the scan would then never stop.
            async with asyncio.timeout(timeout):
                await loop.sock_connect(sock, (str(addr), port))
        except TimeoutError:
            return None, loop.time() - started
        except OSError as exc:
            return exc.errno or 0, loop.time() - started
        return 0, loop.time() - started
    finally:
        sock.close()


async def run_connect_scan(
    hosts: Sequence[IPAddress],
    ports: Sequence[int],
    order: Iterator[int],
    *,
    timing: TimingParams,
    concurrency: int,
    emit: Callable[[PortResult], None],
    source: str | None = None,
    rate: RateLimiter | None = None,
) -> list[PortResult]:
    """Connect-scan ``hosts x ports`` in the given probe order; return every result.

    ``rate`` (``--max-rate``) paces the connection attempts, retries included.
    """
    loop = asyncio.get_running_loop()
    limit = raise_nofile_limit()
    concurrency = max(1, min(concurrency, limit - 64))
    group = GroupTiming(timing)
    host_timing: dict[int, HostTiming] = {}
    results: list[PortResult] = []
    per_host = len(ports)

    async def probe(index: int) -> None:
        host, k = divmod(index, per_host)
        ht = host_timing.get(host)
        if ht is None:
            ht = host_timing[host] = group.new_host(loop.time())
        tryno = 0
        while True:
            # A connect includes the kernel's own SYN retransmissions: give it at least 1 s
            # after a silent try so a lost SYN can be resent once by the kernel.
            timeout = ht.probe_timeout if tryno == 0 else max(1.0, ht.probe_timeout * 2)
            if rate is not None:
                while not rate.may_send(loop.time()):
                    wake = rate.next_time(loop.time())
                    await asyncio.sleep(max(0.0, (wake or loop.time()) - loop.time()) or 0.001)
                rate.on_send(loop.time())
            err, took = await connect_once(hosts[host], ports[k], timeout, source)
            if is_final(err):
                ht.on_answer(loop.time(), tryno=tryno, rtt_sample=took if tryno == 0 else None)
                break
            if not ht.may_retransmit(tryno) or ht.timed_out(loop.time()):
                break
            tryno += 1
        state, kind = classify_connect(err)
        result = PortResult(hosts[host], "tcp", ports[k], state, Reason(kind))
        results.append(result)
        emit(result)

    async def worker() -> None:
        for index in order:
            await probe(index)

    workers = [asyncio.ensure_future(worker()) for _ in range(concurrency)]
    try:
        await asyncio.gather(*workers)
    finally:
        for w in workers:
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
    return results
