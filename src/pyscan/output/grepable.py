"""Grepable output in nmap's ``-oG`` format.

One ``Host:`` line with the status per shown host and, for port scans, a second one with the
ports::

    Host: 127.0.0.1 (localhost)\\tStatus: Up
    Host: 127.0.0.1 (localhost)\\tPorts: 22/open/tcp//ssh///\\tIgnored State: closed (999)

Each port entry is ``port/state/protocol/owner/service/rpc/version/`` (owner and rpc are
always empty). As in nmap, ``/`` inside the service and version becomes ``|``; pyscan also
writes tabs, newlines and other unprintable characters as ``\\xNN`` so a banner cannot
break a line or field. The name in parentheses is the reverse-DNS (PTR) name.
"""

from __future__ import annotations

import io
from typing import TextIO

import attrs

from pyscan._models import HostResult, HostStatus, ScanReport, ScanStats
from pyscan.output._common import (
    HostCounter,
    OutputOptions,
    ctime,
    display_name,
    done_summary,
    escape_unprintable,
    host_view,
    is_list_scan,
    is_port_scan,
    ptr_name,
    service_scan_on,
    shows_host,
    spec_ranges,
    table_name,
    version_of,
    write_report,
)

__all__ = ["GrepableWriter", "report_to_grepable"]


def _field(text: str) -> str:
    return escape_unprintable(text).replace("/", "|")


@attrs.define
class GrepableWriter:
    """Streaming writer of nmap's grepable format to ``stream``."""

    stream: TextIO
    options: OutputOptions = attrs.field(factory=OutputOptions)
    _report: ScanReport = attrs.field(factory=ScanReport, init=False)
    _counter: HostCounter = attrs.field(factory=HostCounter, init=False)

    def start(self, report: ScanReport) -> None:
        """Write the ``# pyscan ... scan initiated`` line (and ``# Ports scanned`` with -v)."""
        self._report = report
        head = (
            f"# pyscan {version_of(report)} scan initiated "
            f"{ctime(report.stats.start, self.options.tz)} as: "
            f"{escape_unprintable(report.args)}\n"
        )
        out = [head]
        if self.options.verbose:
            parts = []
            for label, proto, top in (
                ("TCP", "tcp", 65535),
                ("UDP", "udp", 65535),
                ("SCTP", "sctp", 65535),
                ("PROTOCOLS", "ip", 255),
            ):
                count, ranges = spec_ranges(report.ports.get(proto, ""), top)
                parts.append(f"{label}({count};{ranges})")
            out.append(f"# Ports scanned: {' '.join(parts)}\n")
        self._write("".join(out))

    def host(self, host: HostResult) -> None:
        """Write the lines of one host (unless the options hide it) and flush."""
        self._counter.add(host, list_scan=is_list_scan(self._report))
        text = self.format_host(host)
        if text:
            self._write(text)

    def format_host(self, host: HostResult) -> str:
        """The lines :meth:`host` writes for ``host`` (``""`` when it is hidden)."""
        opts = self.options
        report = self._report
        prefix = f"Host: {host.address} ({escape_unprintable(ptr_name(host) or '')})"
        if is_list_scan(report):
            return f"{prefix}\tStatus: Unknown\n"
        port_scan = is_port_scan(report) or bool(host.ports)
        if not shows_host(host, opts, port_scan=port_scan):
            return ""
        if host.status is HostStatus.DOWN:
            return f"{prefix}\tStatus: Down\n"
        out = [f"{prefix}\tStatus: Up\n"]
        if port_scan and host.ports:
            out.append(self._ports_line(host, prefix))
        return "".join(out)

    def _ports_line(self, host: HostResult, prefix: str) -> str:
        opts = self.options
        service_scan = service_scan_on(opts, self._report, host)
        view = host_view(host, opts)
        entries = []
        for p in view.shown:
            name = ""
            if table_name(p, opts) is not None or p.service is not None:
                name = _field(display_name(p, opts, service_scan=service_scan))
            version = _field(p.service.version_line()) if p.service else ""
            entries.append(f"{p.port}/{p.state}/{p.protocol}//{name}//{version}/")
        line = f"{prefix}\tPorts: {', '.join(entries)}"
        if len(view.extras) == 1:
            extra = view.extras[0]
            line += f"\tIgnored State: {extra.state} ({extra.count})"
        return line + "\n"

    def finish(self, stats: ScanStats, *, error: str | None = None) -> None:
        """Write the ``# pyscan done at ...`` line (``# pyscan aborted ...`` on error)."""
        total, up = self._counter.totals(stats, list_scan=is_list_scan(self._report))
        when = ctime(stats.end, self.options.tz)
        summary = done_summary(total, up, stats.elapsed)
        if error is None:
            self._write(f"# pyscan done at {when} -- {summary}\n")
        else:
            self._write(
                f"# pyscan aborted at {when} -- {escape_unprintable(error)} -- "
                f"partial results: {summary}\n"
            )

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def report_to_grepable(report: ScanReport, options: OutputOptions | None = None) -> str:
    """A whole report in grepable format."""
    buf = io.StringIO()
    write_report(GrepableWriter(buf, options or OutputOptions()), report)
    return buf.getvalue()
