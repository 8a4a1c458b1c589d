"""Normal (human) output, laid out like nmap's terminal output and ``-oN`` files.

A port scan host reads::

    pyscan scan report for localhost (127.0.0.1)
    Host is up (0.00013s latency).
    Not shown: 995 closed tcp ports (reset)
    PORT    STATE SERVICE
    22/tcp  open  ssh
    ...

with a blank line after each host. Ping scans print only the first two lines per host, list
scans only the first; down hosts appear with ``-v`` as ``... [host down]``.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import TextIO

import attrs

from pyscan._models import HostResult, HostStatus, PortState, ScanReport, ScanStats
from pyscan.output._common import (
    PROJECT_URL,
    HostCounter,
    OutputOptions,
    ctime,
    display_name,
    done_summary,
    escape_unprintable,
    full_time,
    host_view,
    is_list_scan,
    is_port_scan,
    name_ip,
    plural,
    ptr_name,
    reason_text,
    service_scan_on,
    shows_host,
    sig_digits,
    start_time,
    user_name,
    version_of,
    write_report,
)

__all__ = ["NormalWriter", "report_to_normal"]


@attrs.define
class NormalWriter:
    """Streaming writer of normal output to ``stream``.

    ``log_file=False`` writes the terminal form (``Starting pyscan ...`` /
    ``pyscan done: ...``); ``log_file=True`` the ``-oN`` file form (``# pyscan ... scan
    initiated ... as: ...`` / ``# pyscan done at ...``). Call :meth:`start`, then
    :meth:`host` for each finished host, then :meth:`finish`.
    """

    stream: TextIO
    options: OutputOptions = attrs.field(factory=OutputOptions)
    log_file: bool = attrs.field(default=False, kw_only=True)
    _report: ScanReport = attrs.field(factory=ScanReport, init=False)
    _counter: HostCounter = attrs.field(factory=HostCounter, init=False)
    _service_scan: bool = attrs.field(default=False, init=False)

    def start(self, report: ScanReport) -> None:
        """Write the start line (terminal) or the ``# ... scan initiated`` line (file)."""
        self._report = report
        tz = self.options.tz
        if self.log_file:
            self._write(
                f"# pyscan {version_of(report)} scan initiated "
                f"{ctime(report.stats.start, tz)} as: {escape_unprintable(report.args)}\n"
            )
        else:
            self._write(
                f"Starting pyscan {version_of(report)} ( {PROJECT_URL} ) at "
                f"{start_time(report.stats.start, tz)}\n"
            )

    def host(self, host: HostResult) -> None:
        """Write the report of one host, unless the options hide it (down, ``--open``)."""
        list_scan = is_list_scan(self._report)
        self._counter.add(host, list_scan=list_scan)
        self.stream.write(self.format_host(host))
        self.stream.flush()

    def format_host(self, host: HostResult) -> str:
        """The text :meth:`host` writes for ``host`` (``""`` when it is hidden)."""
        opts = self.options
        report = self._report
        port_scan = is_port_scan(report) or bool(host.ports)
        title = escape_unprintable(name_ip(host))
        if is_list_scan(report):
            return f"pyscan scan report for {title}\n"
        if not shows_host(host, opts, port_scan=port_scan):
            return ""
        if host.status is HostStatus.DOWN:
            why = f", received {host.reason.kind.value}" if opts.reason else ""
            return f"pyscan scan report for {title} [host down{why}]\n"
        out = [f"pyscan scan report for {title}\n", _status_line(host, opts)]
        user, ptr = user_name(host), ptr_name(host)
        if user and ptr and user != ptr:
            out.append(f"rDNS record for {host.address}: {escape_unprintable(ptr)}\n")
        if not port_scan:
            return "".join(out)
        if host.ports:
            service_scan = service_scan_on(opts, report, host)
            self._service_scan = self._service_scan or service_scan
            out.append(self._ports(host, title, service_scan=service_scan))
        out.append(_service_info(host))
        out.append("\n")
        return "".join(out)

    def _ports(self, host: HostResult, title: str, *, service_scan: bool) -> str:
        opts = self.options
        out = []
        if (opts.verbose > 1 or opts.debugging) and host.start is not None:
            end = host.end if host.end is not None else host.start
            out.append(
                f"Scanned at {full_time(host.start, opts.tz)} for {int(end) - int(host.start)}s\n"
            )
        view = host_view(host, opts)
        if view.extras:
            if view.all_ignored:
                out.append(f"All {view.total} scanned ports on {title} are in ignored states.\n")
            parts: list[str] = []
            for extra in view.extras:
                ports_word = plural(extra.count, "port", "ports")
                parts.extend(
                    f"{g.count} {extra.state} {g.protocol} {ports_word} ({g.reason})"
                    for g in extra.reasons
                )
            out.append("Not shown: " + ", ".join(parts))
        out.append("\n")
        if view.all_ignored:
            return "".join(out)
        header = ["PORT", "STATE", "SERVICE"]
        if opts.reason:
            header.append("REASON")
        if service_scan:
            header.append("VERSION")
        rows = [header]
        for p in view.shown:
            row = [
                f"{p.port}/{p.protocol}",
                str(p.state),
                escape_unprintable(display_name(p, opts, service_scan=service_scan)),
            ]
            if opts.reason:
                row.append(reason_text(p))
            if service_scan:
                row.append(escape_unprintable(p.service.version_line()) if p.service else "")
            rows.append(row)
        out.append(_table(rows))
        return "".join(out)

    def finish(self, stats: ScanStats, *, error: str | None = None) -> None:
        """Write the closing lines: notes, then ``pyscan done`` with the host counts."""
        report = self._report
        list_scan = is_list_scan(report)
        total, up = self._counter.totals(stats, list_scan=list_scan)
        summary = done_summary(total, up, stats.elapsed)
        tz = self.options.tz
        out = []
        if error is not None:
            why = escape_unprintable(error)
            if self.log_file:
                out.append(
                    f"# pyscan aborted at {ctime(stats.end, tz)} -- {why} -- partial results: "
                    f"{summary}\n"
                )
            else:
                out.append(f"pyscan aborted: {why} -- partial results: {summary}\n")
            self._write("".join(out))
            return
        if not self.log_file and not list_scan and total == 1 and up == 0:
            out.append(
                "Note: Host seems down. If it is really up, but blocking our ping probes, try -Pn\n"
            )
        elif up > 0 and (self._service_scan or self.options.service_scan):
            out.append(
                "Service detection performed. Please report any incorrect results at "
                f"{PROJECT_URL} .\n"
            )
        if self.log_file:
            out.append(f"# pyscan done at {ctime(stats.end, tz)} -- {summary}\n")
        else:
            out.append(f"pyscan done: {summary}\n")
            if self.options.verbose and (stats.packets_sent or stats.packets_received):
                out.append(
                    f"           Raw packets sent: {stats.packets_sent} | "
                    f"Rcvd: {stats.packets_received}\n"
                )
        self._write("".join(out))

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def _status_line(host: HostResult, opts: OutputOptions) -> str:
    line = "Host is up"
    if opts.reason:
        line += f", received {host.reason.kind.value}"
        if host.reason.ttl:
            line += f" ttl {host.reason.ttl}"
    if host.latency is not None:
        line += f" ({sig_digits(host.latency)}s latency)"
    return line + ".\n"


def _table(rows: Sequence[Sequence[str]]) -> str:
    """nmap's table layout: columns padded to their widest cell plus one space, no trailing
    blanks (a row stops after its last non-empty cell)."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = []
    for row in rows:
        last = max((i for i, cell in enumerate(row) if cell), default=-1)
        cells = [row[i].ljust(widths[i]) + " " for i in range(last)]
        cells.append(row[last] if last >= 0 else "")
        lines.append("".join(cells) + "\n")
    return "".join(lines)


def _service_info(host: HostResult) -> str:
    """nmap's ``Service Info: Host: x; OS: y; Device: z; CPE: ...`` line from open ports."""
    hosts: list[str] = []
    oses: list[str] = []
    devices: list[str] = []
    cpes: list[str] = []
    ptr = (ptr_name(host) or "").lower()
    for p in host.ports_by(state=PortState.OPEN):
        s = p.service
        if s is None:
            continue
        if s.hostname and s.hostname.lower() != ptr:
            _add(hosts, s.hostname, fold=True)
        if s.ostype:
            _add(oses, s.ostype)
        if s.devicetype:
            _add(devices, s.devicetype)
        for cpe in s.cpe:
            if not cpe.startswith("cpe:/a"):
                _add(cpes, cpe)
    parts = []
    for label, values in (("Host", hosts), ("OS", oses), ("Device", devices)):
        if values:
            parts.append(f"{label}{plural(len(values), '', 's')}: {', '.join(values)}")
    if cpes:
        parts.append(f"CPE: {', '.join(cpes)}")
    if not parts:
        return ""
    return escape_unprintable("Service Info: " + "; ".join(parts)) + "\n"


def _add(values: list[str], value: str, *, fold: bool = False) -> None:
    if fold:
        if value.lower() not in (v.lower() for v in values):
            values.append(value)
    elif value not in values:
        values.append(value)


def report_to_normal(
    report: ScanReport, options: OutputOptions | None = None, *, log_file: bool = False
) -> str:
    """A whole report as normal output (terminal form, or ``-oN`` form with ``log_file``)."""
    buf = io.StringIO()
    write_report(NormalWriter(buf, options or OutputOptions(), log_file=log_file), report)
    return buf.getvalue()
