"""JSON lines output: one JSON object per line, written as hosts complete.

Every line has a ``"type"``:

* ``"scan"`` (first line): ``schema``, ``version``, ``args``, ``scan_types``, ``ports``, ``start``;
* ``"host"`` (one per shown host): the fields of :func:`pyscan._models.host_to_dict`;
* ``"stats"`` (last line): ``stats`` (the :class:`ScanStats` fields as given to ``finish``;
  host counts filled in from the hosts written when they are all zero), ``exit``
  (``"success"`` / ``"error"``) and ``errormsg`` (``null`` unless an error).

A file cut short (Ctrl-C, crash) simply lacks its ``stats`` line. :func:`report_from_jsonl`
reads the format back; ``docs/output.md`` documents it.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any, TextIO

import attrs

from pyscan._models import (
    SCHEMA_VERSION,
    HostResult,
    PortState,
    ScanReport,
    ScanStats,
    host_to_dict,
)
from pyscan.errors import ReportFormatError
from pyscan.output._common import (
    HostCounter,
    OutputOptions,
    has_open_ports,
    is_list_scan,
    is_port_scan,
    shows_host,
    version_of,
    write_report,
)

__all__ = ["JsonLinesWriter", "report_from_jsonl", "report_to_jsonl"]

_MAYBE_OPEN = (PortState.OPEN, PortState.OPEN_FILTERED, PortState.UNFILTERED)


def _dumps(obj: dict[str, Any]) -> str:
    import json  # noqa: PLC0415 - this writer is rarely used: json loads with it

    # allow_nan=False: NaN/Infinity are not JSON; ensure_ascii keeps hostile text on one line.
    return json.dumps(obj, ensure_ascii=True, allow_nan=False, separators=(",", ":"))


@attrs.define
class JsonLinesWriter:
    """Streaming writer of JSON lines to ``stream``.

    Hosts are filtered as in the other formats: down hosts only with ``verbose``; with
    ``open_only`` only hosts with a possibly-open port, and only those ports. Everything
    else in the options is about layout and does not apply here.
    """

    stream: TextIO
    options: OutputOptions = attrs.field(factory=OutputOptions)
    _report: ScanReport = attrs.field(factory=ScanReport, init=False)
    _counter: HostCounter = attrs.field(factory=HostCounter, init=False)

    def start(self, report: ScanReport) -> None:
        """Write the ``scan`` line."""
        self._report = report
        self._write(
            {
                "type": "scan",
                "schema": SCHEMA_VERSION,
                "version": version_of(report),
                "args": report.args,
                "scan_types": list(report.scan_types),
                "ports": dict(report.ports),
                "start": report.stats.start,
            }
        )

    def host(self, host: HostResult) -> None:
        """Write one ``host`` line (unless the options hide the host) and flush."""
        list_scan = is_list_scan(self._report)
        self._counter.add(host, list_scan=list_scan)
        port_scan = is_port_scan(self._report) or bool(host.ports)
        if not list_scan and not shows_host(host, self.options, port_scan=port_scan):
            return
        if self.options.open_only and has_open_ports(host):
            host = attrs.evolve(host, ports=tuple(p for p in host.ports if p.state in _MAYBE_OPEN))
        self._write({"type": "host", **host_to_dict(host)})

    def finish(self, stats: ScanStats, *, error: str | None = None) -> None:
        """Write the ``stats`` line."""
        counted = stats
        if not stats.hosts_total:
            total, up = self._counter.totals(stats, list_scan=is_list_scan(self._report))
            counted = attrs.evolve(stats, hosts_total=total, hosts_up=up, hosts_down=total - up)
        self._write(
            {
                "type": "stats",
                "stats": attrs.asdict(counted),
                "exit": "success" if error is None else "error",
                "errormsg": error,
            }
        )

    def _write(self, obj: dict[str, Any]) -> None:
        try:
            line = _dumps(obj)
        except ValueError as exc:
            raise ReportFormatError(f"cannot write a JSON line: {exc}") from exc
        self.stream.write(line + "\n")
        self.stream.flush()


def report_to_jsonl(report: ScanReport, options: OutputOptions | None = None) -> str:
    """A whole report as JSON lines."""
    buf = io.StringIO()
    write_report(JsonLinesWriter(buf, options or OutputOptions()), report)
    return buf.getvalue()


def report_from_jsonl(lines: str | Iterable[str]) -> ScanReport:
    """Read JSON lines back into a :class:`ScanReport` (a cut-short file gives zero stats).

    Raises :class:`~pyscan.errors.ReportFormatError` naming the line that does not follow
    the format.
    """
    import json  # noqa: PLC0415 - see _dumps

    if isinstance(lines, str):
        lines = lines.splitlines()
    data: dict[str, Any] = {"schema": SCHEMA_VERSION, "hosts": []}
    seen_scan = False
    for lineno, raw in enumerate(lines, 1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except ValueError as exc:
            raise ReportFormatError(f"line {lineno}: not JSON: {exc}") from exc
        kind = obj.get("type") if isinstance(obj, dict) else None
        if kind == "scan":
            if seen_scan:
                raise ReportFormatError(f"line {lineno}: a second 'scan' line")
            seen_scan = True
            start = obj.get("start", 0.0)
            for key in ("schema", "version", "args", "scan_types", "ports"):
                if key in obj:
                    data[key] = obj[key]
            data["stats"] = {"start": start}
        elif kind == "host":
            data["hosts"].append({k: v for k, v in obj.items() if k != "type"})
        elif kind == "stats":
            stats = obj.get("stats")
            if not isinstance(stats, dict):
                raise ReportFormatError(f"line {lineno}: 'stats' is not an object: {raw!r}")
            data["stats"] = stats
        else:
            raise ReportFormatError(f"line {lineno}: no known 'type' in {raw[:80]!r}")
    if not seen_scan:
        raise ReportFormatError("no 'scan' line: not pyscan JSON lines output")
    return ScanReport.from_dict(data)
