"""Streaming, progress and stats lines, driven by a scripted scan (no packets)."""

from __future__ import annotations

import asyncio
import io
import ipaddress
import re
from collections.abc import Callable
from typing import Any

import pytest

from pyscan import PortResult, PortState, Reason, ReasonKind, ScanReport
from pyscan._cli_args import build_config
from pyscan._cli_run import run_session, stats_line
from pyscan._handle import ScanHandle, ScanProgress

A, B = ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("127.0.0.2")


def closed(addr: Any, port: int) -> PortResult:
    return PortResult(addr, "tcp", port, PortState.CLOSED, Reason(ReasonKind.CONN_REFUSED))


class TtyBuffer(io.StringIO):
    def isatty(self) -> bool:
        return True


def scripted(
    monkeypatch: pytest.MonkeyPatch,
    script: Callable[[Callable[[Any], None], Callable[[int], None]], Any],
    total: int,
) -> None:
    """Replace the scan with ``script(emit, set_done)``, reporting progress of ``total``."""
    state = {"done": 0}
    loop_start: list[float] = []

    def progress() -> ScanProgress:
        now = asyncio.get_running_loop().time()
        elapsed = now - loop_start[0] if loop_start else 0.0
        return ScanProgress("connect scan", state["done"], total, elapsed)

    def fake_scan(*_a: object, **_k: object) -> ScanHandle[Any]:
        async def go(emit: Callable[[Any], None]) -> ScanReport:
            loop_start.append(asyncio.get_running_loop().time())

            def set_done(n: int) -> None:
                state["done"] = n

            await script(emit, set_done)
            return ScanReport()

        return ScanHandle(go, progress)

    monkeypatch.setattr("pyscan._cli_run.scan", fake_scan)


def test_hosts_are_written_as_they_complete(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    seen: list[str] = []

    async def script(emit: Callable[[Any], None], _done: Callable[[int], None]) -> None:
        emit(closed(A, 1))
        emit(closed(B, 1))
        emit(closed(A, 2))  # A is complete now; B still waits for port 2
        await asyncio.sleep(0.05)
        seen.append(out.getvalue())
        emit(closed(B, 2))

    scripted(monkeypatch, script, 4)
    cfg = build_config(["-sT", "-Pn", "-n", "-p", "1,2", "127.0.0.1", "127.0.0.2"], has_raw=True)
    assert run_session(cfg, out, io.StringIO()) == 0
    assert "pyscan scan report for 127.0.0.1\n" in seen[0]
    assert "127.0.0.2" not in seen[0]
    assert "pyscan done" not in seen[0]
    final = out.getvalue()
    assert final.index("for 127.0.0.1") < final.index("for 127.0.0.2") < final.index("done")


def test_incomplete_hosts_are_written_at_the_end(monkeypatch: pytest.MonkeyPatch) -> None:
    async def script(emit: Callable[[Any], None], _done: Callable[[int], None]) -> None:
        emit(closed(B, 1))  # as with --shard: not every port of a host comes back

    scripted(monkeypatch, script, 4)
    out = io.StringIO()
    cfg = build_config(["-sT", "-Pn", "-n", "-p", "1,2", "127.0.0.1", "127.0.0.2"], has_raw=True)
    assert run_session(cfg, out, io.StringIO()) == 0
    text = out.getvalue()
    assert "pyscan scan report for 127.0.0.1\nHost is up.\n" in text
    assert "1/tcp closed tcpmux" in text
    assert "2 IP addresses (2 hosts up)" in text


def test_stats_every_prints_nmap_like_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    async def script(emit: Callable[[Any], None], done: Callable[[int], None]) -> None:
        for i in (1, 2, 3, 4):
            await asyncio.sleep(0.3)
            done(i)
            emit(closed(A, i))

    scripted(monkeypatch, script, 4)
    err = io.StringIO()
    cfg = build_config(
        ["-sT", "-Pn", "-n", "-p", "1-4", "--stats-every", "250ms", "127.0.0.1"], has_raw=True
    )
    assert run_session(cfg, io.StringIO(), err) == 0
    lines = err.getvalue().splitlines()
    assert len(lines) >= 3, lines
    pattern = re.compile(
        r"Stats: 0:00:0\d elapsed; Connect Scan Timing: About (\d+\.\d\d)% done"
        r"(; ETC: \d\d:\d\d \(0:00:0\d remaining\))?"
    )
    fractions = []
    for ln in lines:
        m = pattern.fullmatch(ln)
        assert m is not None, ln
        fractions.append(float(m.group(1)))
    assert fractions == sorted(fractions)
    assert fractions[-1] > 0


def test_live_progress_line_on_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("pyscan._cli_run._LIVE_AFTER", 0.0)

    async def script(emit: Callable[[Any], None], done: Callable[[int], None]) -> None:
        done(1)
        await asyncio.sleep(1.3)
        for i in (1, 2):
            emit(closed(A, i))

    scripted(monkeypatch, script, 2)
    err = TtyBuffer()
    cfg = build_config(["-sT", "-Pn", "-n", "-p", "1,2", "127.0.0.1"], has_raw=True)
    assert run_session(cfg, io.StringIO(), err) == 0
    text = err.getvalue()
    assert re.search(
        r"\r\x1b\[KConnect Scan: 50\.0% done \(1/2\), \d+ probes/s, ETA 0:00:0\d", text
    )
    assert text.endswith("\r\x1b[K")  # erased at the end


def test_no_progress_output_when_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    async def script(emit: Callable[[Any], None], _done: Callable[[int], None]) -> None:
        await asyncio.sleep(1.2)
        emit(closed(A, 1))

    scripted(monkeypatch, script, 1)
    err = io.StringIO()
    cfg = build_config(["-sT", "-Pn", "-n", "-p", "1", "127.0.0.1"], has_raw=True)
    assert run_session(cfg, io.StringIO(), err) == 0
    assert err.getvalue() == ""


def test_stats_line_format() -> None:
    assert stats_line("SYN stealth scan", 0.4217, None, 5.2) == (
        "Stats: 0:00:05 elapsed; SYN Stealth Scan Timing: About 42.17% done"
    )
    line = stats_line("UDP scan", 0.5, 3725.0, 3725.0)
    assert re.fullmatch(
        r"Stats: 1:02:05 elapsed; UDP Scan Timing: About 50\.00% done; "
        r"ETC: \d\d:\d\d \(1:02:05 remaining\)",
        line,
    )
    assert stats_line("starting", 0.0, None, 0.0) == "Stats: 0:00:00 elapsed; starting"
