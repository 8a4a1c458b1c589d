"""Shared benchmark plumbing: run a command in the lab's scanner namespace and measure it.

Each measurement reports, for one tool's run:

* wall time (start of the process to its exit, interpreter start-up included),
* packets on the wire: the scanner interface's ``tx_packets`` counter (read from
  ``/proc/<pid>/net/dev`` of a holder process living in the scanner namespace, sampled
  every 10 ms), not what a tool says it sent; ``pps`` is that count over the wall time and
  ``send pps`` the count over the window in which the counter was rising (the send rate
  while sending, without start-up and cooldown),
* CPU seconds (user + system of the process and the children it waited for) and peak RSS,
  both from ``wait4`` on that very process (``RUSAGE_CHILDREN`` would carry the largest
  earlier child's RSS over to every later one),
* open ports found against the lab's configured truth, and a count per port state.

Every run is bounded by a timeout: on expiry the process group gets SIGINT, then SIGKILL,
and the row is marked ``timeout`` (what the tool wrote until then is still parsed).
"""

from __future__ import annotations

import argparse
import contextlib
import ipaddress
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import attrs

from pyscan.testing.netlab import Lab, LabTruth

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHON = sys.executable
RUNNER = str(HERE / "_pyscan_run.py")

Port = tuple[str, str, int]
Format = Literal["nmap-xml", "masscan-list", "pyscan-json", "none"]


@attrs.frozen
class Measurement:
    """One tool's run."""

    tool: str
    wall: float
    cpu: float
    peak_rss_mb: float
    tx_packets: int
    send_pps: float
    open_ports: frozenset[Port]
    expected_open: frozenset[Port]
    last_tx: float = 0.0
    states: Mapping[str, int] = attrs.field(factory=dict)
    status: str = "ok"
    extra: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def pps(self) -> float:
        """Packets per second put on the wire by the scanner namespace, over the wall time."""
        return self.tx_packets / self.wall if self.wall else 0.0

    @property
    def exact(self) -> bool:
        """Found exactly the configured open ports."""
        return self.open_ports == self.expected_open

    @property
    def missed(self) -> int:
        """Configured open ports not found."""
        return len(self.expected_open - self.open_ports)

    def to_json(self) -> dict[str, Any]:
        """A JSON-compatible summary (no port lists)."""
        return {
            "tool": self.tool,
            "wall": self.wall,
            "cpu": self.cpu,
            "peak_rss_mb": self.peak_rss_mb,
            "tx_packets": self.tx_packets,
            "pps": self.pps,
            "send_pps": self.send_pps,
            "last_tx": self.last_tx,
            "open_found": len(self.open_ports),
            "open_expected": len(self.expected_open),
            "missed": self.missed,
            "false_open": len(self.open_ports - self.expected_open),
            "exact": self.exact,
            "states": dict(self.states),
            "status": self.status,
            "extra": {k: v for k, v in self.extra.items() if k != "ports"},  # tuple keys
        }


# -- packet counting -------------------------------------------------------------------------


@attrs.define
class TxCounter:
    """Reads the scanner interface's tx counter from outside the namespace, cheaply.

    A ``sleep`` process started in the scanner namespace (and killed at lab teardown)
    lends its ``/proc/<pid>/net/dev``, which shows the counters of its namespace.
    """

    lab: Lab
    interface: str = "eth0"
    _path: Path = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        holder = self.lab.popen(["sleep", "86400"])
        deadline = time.monotonic() + 10
        comm = Path(f"/proc/{holder.pid}/comm")
        while comm.read_text().strip() != "sleep":  # still `ip netns exec`, not yet inside
            if time.monotonic() > deadline:
                raise RuntimeError("tx counter: holder process did not enter the namespace")
            time.sleep(0.005)
        self._path = Path(f"/proc/{holder.pid}/net/dev")
        self.read()

    def read(self) -> int:
        """Packets transmitted so far by the scanner's interface."""
        for line in self._path.read_text().splitlines():
            name, _, fields = line.partition(":")
            if name.strip() == self.interface:
                return int(fields.split()[9])
        raise RuntimeError(f"no interface {self.interface} in {self._path}")


def _send_rate(samples: Sequence[tuple[float, int]]) -> float:
    """Packets per second over the window in which the counter rose."""
    if len(samples) < 2:
        return 0.0
    base = samples[0][1]
    rising = [i for i in range(1, len(samples)) if samples[i][1] > samples[i - 1][1]]
    if not rising:
        return 0.0
    first, last = rising[0] - 1, rising[-1]
    span = samples[last][0] - samples[first][0]
    # ignore the trickle of a long cooldown: trim to the window holding 99% of the packets
    total = samples[last][1] - base
    if total <= 0 or span <= 0:
        return 0.0
    lo = next(i for i in range(first, last + 1) if samples[i][1] - base >= 0.005 * total)
    hi = next(i for i in range(first, last + 1) if samples[i][1] - base >= 0.995 * total)
    lo = max(first, lo - 1)
    if samples[hi][0] - samples[lo][0] > 0.05:
        return (samples[hi][1] - samples[lo][1]) / (samples[hi][0] - samples[lo][0])
    return total / span


# -- running tools ---------------------------------------------------------------------------


@attrs.frozen
class RunResult:
    """What :func:`run_measured` observed of one process."""

    wall: float
    cpu: float
    peak_rss_mb: float
    tx_packets: int
    send_pps: float
    stdout: str
    stderr: str
    status: str
    samples: tuple[tuple[float, int], ...]
    hwm_mb: float
    rss_samples: tuple[tuple[float, float], ...] = ()

    @property
    def last_tx(self) -> float:
        """Seconds from start to the last sample in which the tx counter rose."""
        last = 0.0
        for (_, a), (t, b) in zip(self.samples, self.samples[1:], strict=False):
            if b > a:
                last = t
        return min(last, self.wall)


def _default_signals() -> None:
    """In the child: SIGINT back to its default (a shell's ``&`` may have ignored it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _raise_interrupt(signum: int, _frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def install_signal_handlers() -> None:
    """SIGINT and SIGTERM raise KeyboardInterrupt, so that labs are torn down on both
    (also when started in the background, where SIGINT arrives ignored)."""
    signal.signal(signal.SIGINT, _raise_interrupt)
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _kill_group(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)


def _vm_mb(pid: int, field: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run_measured(
    lab: Lab,
    counter: TxCounter,
    argv: Sequence[str],
    *,
    timeout: float,
    stop_after: float | None = None,
    grace: float = 5.0,
    sample_rss: bool = False,
) -> RunResult:
    """Run ``argv`` in the scanner namespace; measure it; stop it at ``timeout``.

    ``stop_after``: a planned stop (SIGINT after that many seconds, status ``stopped``), for
    runs whose interesting part is a window, e.g. peak memory. ``sample_rss``: record the
    process's VmRSS every 10 ms (``rss_samples``).
    """
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        before = counter.read()
        start = time.perf_counter()
        proc = subprocess.Popen(
            lab.netns_argv(list(argv)),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
            start_new_session=True,
            preexec_fn=_default_signals,  # noqa: PLW1509 - no threads here
        )
        samples: list[tuple[float, int]] = [(0.0, 0)]
        rss: list[tuple[float, float]] = []
        status, signalled_at, hwm, interrupted_twice = "ok", None, 0.0, False
        limit = timeout if stop_after is None else min(timeout, stop_after)
        try:
            while True:
                pid, wstatus, usage = os.wait4(proc.pid, os.WNOHANG)
                now = time.perf_counter() - start
                samples.append((now, counter.read() - before))
                if pid:
                    break
                if sample_rss:
                    rss_now = _vm_mb(proc.pid, "VmRSS:")
                    rss.append((now, rss_now))
                hwm = max(hwm, _vm_mb(proc.pid, "VmHWM:"))
                if signalled_at is None and now > limit:
                    status = "timeout" if stop_after is None or timeout < stop_after else "stopped"
                    _kill_group(proc.pid, signal.SIGINT)
                    signalled_at = now
                elif signalled_at is not None and now > signalled_at + grace:
                    _kill_group(proc.pid, signal.SIGKILL)
                elif signalled_at is not None and now > signalled_at + 1 and not interrupted_twice:
                    _kill_group(proc.pid, signal.SIGINT)  # masscan: a second ^C exits at once
                    interrupted_twice = True
                time.sleep(0.01)
        except BaseException:
            _kill_group(proc.pid, signal.SIGKILL)
            proc.wait()
            raise
        proc.returncode = os.waitstatus_to_exitcode(wstatus)
        wall = time.perf_counter() - start
        time.sleep(0.05)  # let the last packets of the run reach the counter
        sent = counter.read() - before
        samples.append((wall + 0.05, sent))
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if status == "ok" and proc.returncode != 0:
        status = f"exit {proc.returncode}"
    return RunResult(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        tx_packets=sent,
        send_pps=_send_rate(samples),
        stdout=stdout,
        stderr=stderr,
        status=status,
        samples=tuple(samples),
        hwm_mb=hwm,
        rss_samples=tuple(rss),
    )


def measure(
    lab: Lab,
    counter: TxCounter,
    tool: str,
    argv: Sequence[str],
    expected_open: frozenset[Port],
    *,
    fmt: Format,
    timeout: float = 300,
    output_file: Path | None = None,
    all_ports: Iterable[Port] | None = None,
) -> Measurement:
    """Run a scanner and measure it; its results come from stdout or ``output_file``.

    ``all_ports``: the port space scanned, so that nmap's collapsed ``extraports`` can be
    counted per state.
    """
    res = run_measured(lab, counter, argv, timeout=timeout)
    text = output_file.read_text() if output_file and output_file.exists() else res.stdout
    try:
        opened, states, extra = parse_results(text, fmt, all_ports)
    except (ValueError, ET.ParseError, KeyError) as exc:
        opened, states, extra = frozenset(), {}, {"parse_error": str(exc)}
    if fmt == "masscan-list":  # its own count: the list file can lose lines when it hangs
        counts = re.findall(r"found=(\d+)", res.stderr)
        if counts:
            extra = {**extra, "masscan_found": int(counts[-1])}
    if res.status != "ok":
        extra = {**extra, "stderr": res.stderr.strip()[-300:]}
        print(f"  ! {tool}: {res.status}: {res.stderr.strip()[-300:]}", file=sys.stderr)
    return Measurement(
        tool=tool,
        wall=res.wall,
        cpu=res.cpu,
        peak_rss_mb=res.peak_rss_mb,
        tx_packets=res.tx_packets,
        send_pps=res.send_pps,
        open_ports=opened,
        expected_open=expected_open,
        last_tx=res.last_tx,
        states=states,
        status=res.status,
        extra=extra,
    )


# -- parsing results -------------------------------------------------------------------------


def parse_results(
    text: str, fmt: Format, all_ports: Iterable[Port] | None = None
) -> tuple[frozenset[Port], dict[str, int], dict[str, Any]]:
    """Open ports, a count per state and tool-specific extras from a tool's output."""
    if fmt == "none":
        return frozenset(), {}, {}
    if fmt == "pyscan-json":
        data = json.loads(text.strip().splitlines()[-1]) if text.strip() else {}
        opened = frozenset((a, p, int(n)) for a, p, n in data.get("open", ()))
        extra = {"scan_seconds": data.get("scan_seconds"), "stats": data.get("stats")}
        if "ports" in data:
            extra["ports"] = {(a, p, int(n)): s for a, p, n, s in data["ports"]}
        return opened, dict(data.get("states", {})), extra
    if fmt == "masscan-list":
        found = set()
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 4 and parts[0] == "open":
                found.add((parts[3], parts[1], int(parts[2])))
        return frozenset(found), {"open": len(found)}, {}
    return _parse_nmap_xml(text, all_ports)


def _parse_nmap_xml(
    text: str, all_ports: Iterable[Port] | None
) -> tuple[frozenset[Port], dict[str, int], dict[str, Any]]:
    if not text.strip():
        return frozenset(), {}, {}
    root = ET.fromstring(text)
    found: set[Port] = set()
    states: Counter[str] = Counter()
    listed: dict[Port, str] = {}
    collapsed: dict[str, Counter[str]] = {}
    for host in root.iter("host"):
        addr_el = host.find("address")
        if addr_el is None:
            continue
        addr = addr_el.get("addr", "")
        for port in host.iter("port"):
            state_el = port.find("state")
            state = state_el.get("state", "") if state_el is not None else ""
            key = (addr, port.get("protocol", ""), int(port.get("portid", "0")))
            listed[key] = state
            states[state] += 1
            if state == "open":
                found.add(key)
        for extra in host.iter("extraports"):
            count, state = int(extra.get("count", "0")), extra.get("state", "")
            states[state] += count
            collapsed.setdefault(addr, Counter())[state] += count
    out: dict[str, Any] = {}
    if all_ports is not None:  # per-port states where nmap's collapsing leaves no doubt
        per_port: dict[Port, str] = {}
        for key in all_ports:
            if key in listed:
                per_port[key] = listed[key]
            elif len(collapsed.get(key[0], ())) == 1:
                per_port[key] = next(iter(collapsed[key[0]]))
        out["ports"] = per_port
    finished = root.find("runstats/finished")
    if finished is not None:
        out["nmap_elapsed"] = float(finished.get("elapsed", "0"))
    return frozenset(found), dict(states), out


# -- truth -----------------------------------------------------------------------------------


def expected_states(
    truth: LabTruth, addresses: Iterable[str], proto: str, ports: Iterable[int]
) -> dict[Port, str]:
    """The configured state of every (address, port) of the scan (absent hosts omitted)."""
    port_list = list(ports)
    out: dict[Port, str] = {}
    for address in addresses:
        host = truth.hosts.get(address)
        if host is None or not host.arp:
            continue
        for port in port_list:
            out[(address, proto, port)] = host.state(proto, port)[0]
    return out


def expected_open(
    truth: LabTruth, addresses: Iterable[str], proto: str, ports: Iterable[int]
) -> frozenset[Port]:
    """The configured open ports among the scanned ones."""
    wanted = set(ports)
    out = set()
    for address in addresses:
        host = truth.hosts.get(address)
        if host is None or not host.arp:
            continue
        for (p, n), (state, _reason) in host.ports.items():
            if p == proto and n in wanted and state == "open":
                out.add((address, proto, n))
    return frozenset(out)


def address_range(first: str, last: str) -> list[str]:
    """Every IPv4 address from ``first`` to ``last`` inclusive."""
    a, b = int(ipaddress.IPv4Address(first)), int(ipaddress.IPv4Address(last))
    return [str(ipaddress.IPv4Address(i)) for i in range(a, b + 1)]


def port_range(spec: str) -> list[int]:
    """``"1-1000"`` or ``"22,80,100-200"`` as a list of ports."""
    out: list[int] = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out.extend(range(int(lo), int(hi or lo) + 1))
    return out


# -- commands --------------------------------------------------------------------------------


def pyscan_argv(
    kind: str,
    targets: str,
    ports: str,
    options: Mapping[str, object] | None = None,
    *,
    all_ports: bool = False,
    stream: bool = False,
) -> list[str]:
    """A pyscan scan through the library API (``_pyscan_run.py``): JSON summary on stdout.

    ``stream``: iterate the handle (results as decided), so that a run stopped at its time
    bound still reports what it had found.
    """
    argv = [PYTHON, RUNNER, kind, targets, ports, "--options", json.dumps(dict(options or {}))]
    return argv + ["--all-ports"] * all_ports + ["--stream"] * stream


def interface_mac(lab: Lab, host: str | None = None) -> str:
    """MAC address of ``eth0`` in the scanner's namespace (or a target host's)."""
    return lab.run(["cat", "/sys/class/net/eth0/address"], host=host, check=True).stdout.strip()


def masscan_argv(
    lab: Lab, targets: str, ports: str, rate: int, output: Path, *, router_host: str, wait: int = 2
) -> list[str]:
    """masscan from the scanner namespace, frames addressed to ``router_host``'s MAC.

    The lab has no router: every live address is owned by one target namespace, so its
    MAC serves as masscan's ``--router-mac``; frames for absent addresses reach that host
    too and are dropped there, as an absent host would.
    """
    return [
        "masscan",
        targets,
        "-p",
        ports,
        "--rate",
        str(rate),
        "--wait",
        str(wait),
        "--interface",
        lab.interface,
        "--adapter-ip",
        lab.scanner_address,
        "--adapter-mac",
        interface_mac(lab),
        "--router-mac",
        interface_mac(lab, router_host),
        "-oL",
        str(output),
    ]


# -- reporting -------------------------------------------------------------------------------


def _fmt_ratio(value: float, ref: float) -> str:
    return f"{value / ref:.2f}x" if ref else "-"


def table(rows: Sequence[Measurement], reference: str | None) -> str:
    """One run's results as a fixed-width table with ratios to the ``reference`` tool."""
    ref = {m.tool: m for m in rows}.get(reference) if reference else None
    w = max([34, *(len(m.tool) for m in rows)])
    header = (
        f"{'tool':{w}} {'wall s':>7} {'lastTx':>6} {'pkts':>9} {'pkts/s':>8} "
        f"{'send/s':>8} {'cpu s':>6} {'rssMB':>6} {'open':>9} {'exact':>5} "
        f"{'wall:ref':>8} {'send:ref':>8}  status"
    )
    lines = [header]
    lines.extend(
        (
            f"{m.tool:{w}} {m.wall:7.2f} {m.last_tx:6.2f} {m.tx_packets:9d} {m.pps:8.0f} "
            f"{m.send_pps:8.0f} "
            f"{m.cpu:6.2f} {m.peak_rss_mb:6.1f} {len(m.open_ports):>4}/{len(m.expected_open):<4} "
            f"{('yes' if m.exact else 'NO'):>5} "
            f"{_fmt_ratio(m.wall, ref.wall) if ref else '-':>8} "
            f"{_fmt_ratio(m.send_pps, ref.send_pps) if ref else '-':>8}  {m.status}"
        )
        for m in rows
    )
    return "\n".join(lines)


def summary(runs: Sequence[Sequence[Measurement]], reference: str | None) -> str:
    """Medians per tool over ``runs`` (each a list of one run's measurements)."""
    by_tool: dict[str, list[Measurement]] = {}
    for rows in runs:
        for m in rows:
            by_tool.setdefault(m.tool, []).append(m)

    def med(tool: str, key: str) -> float:
        return float(statistics.median(getattr(m, key) for m in by_tool[tool]))

    w = max([34, *(len(t) for t in by_tool)])
    header = (
        f"{'tool (median of runs)':{w}} {'wall s':>7} {'lastTx':>6} {'pkts':>9} "
        f"{'pkts/s':>8} {'send/s':>8} "
        f"{'cpu s':>6} {'rssMB':>6} {'open(min)':>9} {'exact':>5} {'wall:ref':>8} {'send:ref':>8}"
    )
    lines = [header]
    for tool, ms in by_tool.items():
        wall, send = med(tool, "wall"), med(tool, "send_pps")
        ref_wall = med(reference, "wall") if reference in by_tool else 0.0
        ref_send = med(reference, "send_pps") if reference in by_tool else 0.0
        exact = sum(m.exact for m in ms)
        lines.append(
            f"{tool:{w}} {wall:7.2f} {med(tool, 'last_tx'):6.2f} {med(tool, 'tx_packets'):9.0f} "
            f"{med(tool, 'pps'):8.0f} "
            f"{send:8.0f} {med(tool, 'cpu'):6.2f} {med(tool, 'peak_rss_mb'):6.1f} "
            f"{min(len(m.open_ports) for m in ms):>4}/{len(ms[0].expected_open):<4} "
            f"{exact}/{len(ms):<3} "
            f"{_fmt_ratio(wall, ref_wall) if ref_wall else '-':>8} "
            f"{_fmt_ratio(send, ref_send) if ref_send else '-':>8}"
        )
    return "\n".join(lines)


def load_note() -> str:
    """The machine's load average, to print next to results (the machine may be shared)."""
    try:
        one, five, fifteen = Path("/proc/loadavg").read_text().split()[:3]
    except OSError:
        return "load: unknown"
    return f"load average {one} {five} {fifteen} on {os.cpu_count()} CPUs"


def common_args(description: str | None) -> argparse.ArgumentParser:
    """``--runs``, ``--timeout``, ``--json`` for every benchmark script (and the signal
    handlers that make Ctrl-C and SIGTERM tear the lab down)."""
    install_signal_handlers()
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=1, help="repetitions (medians reported)")
    parser.add_argument("--timeout", type=float, default=300.0, help="per-scan time bound, s")
    parser.add_argument("--json", type=Path, help="also write every measurement here")
    parser.add_argument("--no-reference", action="store_true", help="run pyscan only")
    return parser


def write_json(
    path: Path | None, name: str, runs: Sequence[Sequence[Measurement]], **info: Any
) -> None:
    """Dump the measurements (for the README table)."""
    if path is None:
        return
    data = {
        "benchmark": name,
        "load": load_note(),
        "runs": [[m.to_json() for m in rows] for rows in runs],
        **info,
    }
    path.write_text(json.dumps(data, indent=1, default=str))


def precompile() -> None:
    """Byte-compile pyscan once, as ``pip install`` does: a development checkout run with
    ``PYTHONDONTWRITEBYTECODE`` set would otherwise compile every module in every run and
    time the compiler (0.15-0.2 s a run here)."""
    import compileall  # noqa: PLC0415

    import pyscan  # noqa: PLC0415

    compileall.compile_dir(str(Path(pyscan.__file__).parent), quiet=1)


def env_ok() -> str | None:
    """Why benchmarks cannot run here, or None."""
    from pyscan.testing.netlab import unavailable_reason  # noqa: PLC0415

    if os.geteuid() != 0:
        return "benchmarks need root (namespace lab, raw sockets)"
    return unavailable_reason()


def have(tool: str) -> bool:
    """``tool`` is on PATH."""
    import shutil  # noqa: PLC0415

    return shutil.which(tool) is not None


@contextlib.contextmanager
def scratch_dir() -> Iterator[Path]:
    """A temporary directory for tool output files."""
    with tempfile.TemporaryDirectory(prefix="pyscan-bench-") as d:
        yield Path(d)


# -- a benchmark's runs ----------------------------------------------------------------------


@attrs.frozen
class Job:
    """One tool's command in a benchmark."""

    tool: str
    argv: list[str]
    fmt: Format
    output_file: Path | None = None
    timeout: float | None = None
    """Tighter than the benchmark's ``--timeout`` (e.g. masscan, which may hang at exit)."""
    expected: frozenset[Port] | None = None
    """The open ports this job should find, when it scans a subset of the benchmark's."""


def run_jobs(
    lab: Lab,
    counter: TxCounter,
    jobs: Sequence[Job],
    expected: frozenset[Port],
    *,
    runs: int,
    timeout: float,
    reference: str | None,
    all_ports: Sequence[Port] | None = None,
) -> list[list[Measurement]]:
    """Run every job ``runs`` times (order rotating from run to run), printing each run's
    table and, for several runs, the medians."""
    precompile()
    all_runs: list[list[Measurement]] = []
    names = [j.tool for j in jobs]
    for run in range(runs):
        rows: list[Measurement] = []
        shift = run % len(jobs) if jobs else 0
        for job in [*jobs[shift:], *jobs[:shift]]:
            if job.output_file is not None:
                job.output_file.unlink(missing_ok=True)
            limit = timeout if job.timeout is None else min(timeout, job.timeout)
            rows.append(
                measure(
                    lab, counter, job.tool, job.argv,
                    expected if job.expected is None else job.expected,
                    fmt=job.fmt, timeout=limit,
                    output_file=job.output_file, all_ports=all_ports,
                )
            )  # fmt: skip
        rows.sort(key=lambda m: names.index(m.tool))
        all_runs.append(rows)
        print(f"\n## run {run + 1}/{runs}; {load_note()}")
        print(table(rows, reference))
        sys.stdout.flush()
    if runs > 1:
        print(f"\n## medians over {runs} runs (exact: runs that found exactly the open ports)")
        print(summary(all_runs, reference))
    return all_runs
