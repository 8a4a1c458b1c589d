"""XML output in nmap's format (``-oX``), valid against nmap's ``nmap.dtd``.

The root is ``<nmaprun scanner="nmap" ...>``: nmap.dtd allows no other scanner value, and
tools that validate or check it (XSLT reports, importers) would refuse anything else.
ndiff and python-libnmap accept any value; pass ``scanner="pyscan"`` to :class:`XmlWriter`
if you prefer honesty over compatibility. pyscan identifies itself in the ``version``
attribute (its own version) and in the leading comment (``pyscan X scan initiated ...``).

The writer streams: :meth:`XmlWriter.start` writes everything up to ``<debugging>``,
:meth:`XmlWriter.host` one complete ``<host>`` element (then flushes), and
:meth:`XmlWriter.finish` ``<runstats>`` and the closing tag. A run interrupted between
hosts therefore leaves a file that only lacks its end; ``finish(stats, error="...")``
closes it properly with ``exit="error"``.

All text is escaped like nmap's (``<>&"'``, the second ``-`` of ``--``, and every
character outside printable ASCII as a character reference), except that characters XML
1.0 cannot carry at all (NUL and other C0 controls, lone surrogates from undecodable
bytes, U+FFFE/U+FFFF) are written as the text ``\\xNN`` / ``\\uNNNN``, so a hostile banner
can never make the document ill-formed. The output is pure ASCII.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from typing import TextIO

import attrs

from pyscan._models import HostResult, HostStatus, PortResult, ScanReport, ScanStats
from pyscan.output._common import (
    SCAN_TYPE_PROTOCOL,
    HostCounter,
    OutputOptions,
    ctime,
    done_summary,
    escape_char,
    host_view,
    is_list_scan,
    is_port_scan,
    is_xml_char,
    port_ranges,
    ptr_name,
    shows_host,
    spec_ranges,
    table_name,
    user_name,
    version_of,
    write_report,
)

__all__ = ["XML_OUTPUT_VERSION", "XmlWriter", "report_to_xml", "xml_escape"]

#: The ``xmloutputversion`` nmap 7.9x writes; our elements follow that version of the DTD.
XML_OUTPUT_VERSION = "1.05"

_UNSAFE = re.compile(r"[^\x20-\x7e]|[<>&\"']|--")
_ENTITIES = {"<": "&lt;", ">": "&gt;", "&": "&amp;", '"': "&quot;", "'": "&apos;"}


def xml_escape(text: str) -> str:
    """Escape ``text`` for an XML attribute, text node or comment (see the module docstring)."""
    if not _UNSAFE.search(text):
        return text
    out = []
    prev = ""
    for ch in text:
        cp = ord(ch)
        if not is_xml_char(ch):
            out.append(escape_char(ch))
        elif ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch == "-" and prev == "-":
            out.append("&#45;")
        elif cp < 0x20 or cp > 0x7E:
            out.append(f"&#x{cp:x};")
        else:
            out.append(ch)
        prev = ch
    return "".join(out)


def _tag(name: str, attributes: Sequence[tuple[str, object]], *, empty: bool = True) -> str:
    attrs_text = "".join(f' {k}="{xml_escape(str(v))}"' for k, v in attributes)
    return f"<{name}{attrs_text}{'/' if empty else ''}>"


# nmap writes <scaninfo> in this order whatever order the scans were asked in.
_SCANINFO_ORDER = tuple(SCAN_TYPE_PROTOCOL)


@attrs.define
class XmlWriter:
    """Streaming writer of nmap-format XML to ``stream``.

    ``stylesheet`` adds an ``<?xml-stylesheet?>`` instruction (nmap points it at its
    ``nmap.xsl``; pyscan writes none unless asked). ``scanner`` is the ``nmaprun`` scanner
    attribute (see the module docstring for why it defaults to ``"nmap"``).
    """

    stream: TextIO
    options: OutputOptions = attrs.field(factory=OutputOptions)
    stylesheet: str | None = attrs.field(default=None, kw_only=True)
    scanner: str = attrs.field(default="nmap", kw_only=True)
    _report: ScanReport = attrs.field(factory=ScanReport, init=False)
    _counter: HostCounter = attrs.field(factory=HostCounter, init=False)

    def start(self, report: ScanReport) -> None:
        """Write the prologue, ``<nmaprun>``, ``<scaninfo>``, ``<verbose>``, ``<debugging>``."""
        self._report = report
        version = version_of(report)
        start = int(report.stats.start)
        startstr = ctime(report.stats.start, self.options.tz)
        out = ['<?xml version="1.0" encoding="UTF-8"?>\n', "<!DOCTYPE nmaprun>\n"]
        if self.stylesheet is not None:
            out.append(f'<?xml-stylesheet href="{xml_escape(self.stylesheet)}" type="text/xsl"?>\n')
        out.append(
            f"<!-- {xml_escape(f'pyscan {version} scan initiated {startstr} as: {report.args}')}"
            " -->\n"
        )
        out.append(
            _tag(
                "nmaprun",
                [
                    ("scanner", self.scanner),
                    ("args", report.args),
                    ("start", start),
                    ("startstr", startstr),
                    ("version", version),
                    ("xmloutputversion", XML_OUTPUT_VERSION),
                ],
                empty=False,
            )
            + "\n"
        )
        wanted = set(report.scan_types)
        for scan_type in _SCANINFO_ORDER:
            if scan_type not in wanted or is_list_scan(report):
                continue
            proto = SCAN_TYPE_PROTOCOL[scan_type]
            count, services = spec_ranges(
                report.ports.get(proto, ""), 255 if proto == "ip" else 65535
            )
            out.append(
                _tag(
                    "scaninfo",
                    [
                        ("type", scan_type),
                        ("protocol", proto),
                        ("numservices", count),
                        ("services", services),
                    ],
                )
                + "\n"
            )
        out.append(_tag("verbose", [("level", self.options.verbose)]) + "\n")
        out.append(_tag("debugging", [("level", self.options.debugging)]) + "\n")
        self._write("".join(out))

    def host(self, host: HostResult) -> None:
        """Write one ``<host>`` element (unless the options hide the host) and flush."""
        self._counter.add(host, list_scan=is_list_scan(self._report))
        text = self.format_host(host)
        if text:
            self._write(text)

    def format_host(self, host: HostResult) -> str:
        """The ``<host>`` element :meth:`host` writes (``""`` when the host is hidden)."""
        opts = self.options
        report = self._report
        list_scan = is_list_scan(report)
        port_scan = is_port_scan(report) or bool(host.ports)
        if not list_scan and not shows_host(host, opts, port_scan=port_scan):
            return ""
        if list_scan:
            state = "unknown"
        elif host.status is HostStatus.DOWN:
            state = "down"
        else:
            state = "up"  # nmap reports -Pn targets (discovery skipped) as up, user-set
        times = []
        if host.start is not None and not list_scan:
            times = [("starttime", int(host.start)), ("endtime", int(host.end or host.start))]
        out = [_tag("host", times, empty=False)]
        out.append(
            _tag(
                "status",
                [
                    ("state", state),
                    ("reason", host.reason.kind.value),
                    ("reason_ttl", host.reason.ttl or 0),
                ],
            )
            + "\n"
        )
        addrtype = "ipv4" if host.address.version == 4 else "ipv6"
        out.append(_tag("address", [("addr", host.address), ("addrtype", addrtype)]) + "\n")
        user, ptr = user_name(host), ptr_name(host)
        if user or ptr or state == "up":
            out.append("<hostnames>\n")
            if user:
                out.append(_tag("hostname", [("name", user), ("type", "user")]) + "\n")
            if ptr:
                out.append(_tag("hostname", [("name", ptr), ("type", "PTR")]) + "\n")
            out.append("</hostnames>\n")
        if state == "up" and port_scan and host.ports:
            out.append(self._ports(host))
        if host.latency is not None and state != "unknown":
            srtt = round(host.latency * 1_000_000)
            rttvar = max(5000, min(srtt, 2_000_000))
            timeout = max(100_000, srtt + 4 * rttvar)
            out.append(_tag("times", [("srtt", srtt), ("rttvar", rttvar), ("to", timeout)]) + "\n")
        out.append("</host>\n")
        return "".join(out)

    def _ports(self, host: HostResult) -> str:
        view = host_view(host, self.options)
        out = ["<ports>"]
        for extra in view.extras:
            out.append(
                _tag("extraports", [("state", extra.state), ("count", extra.count)], empty=False)
                + "\n"
            )
            out.extend(
                _tag(
                    "extrareasons",
                    [
                        ("reason", g.reason),
                        ("count", g.count),
                        ("proto", g.protocol),
                        ("ports", port_ranges(g.ports)),
                    ],
                )
                + "\n"
                for g in extra.reasons
            )
            out.append("</extraports>\n")
        out.extend(self._port(p) for p in view.shown)
        out.append("</ports>\n")
        return "".join(out)

    def _port(self, p: PortResult) -> str:
        state: list[tuple[str, object]] = [
            ("state", p.state),
            ("reason", p.reason.kind.value),
            ("reason_ttl", p.reason.ttl or 0),
        ]
        if p.reason.ip is not None:
            state.append(("reason_ip", p.reason.ip))
        out = [
            _tag("port", [("protocol", p.protocol), ("portid", p.port)], empty=False),
            _tag("state", state),
        ]
        name = table_name(p, self.options)
        s = p.service
        if s is not None or name is not None:
            fields: list[tuple[str, object]] = [("name", name or "unknown")]
            if s is not None:
                for key in ("product", "version", "extrainfo", "hostname", "ostype", "devicetype"):
                    value = getattr(s, key)
                    if value:
                        fields.append((key, value))
                if s.fingerprint:
                    fields.append(("servicefp", s.fingerprint))
                if s.tunnel == "ssl":
                    fields.append(("tunnel", "ssl"))
            fields.append(("method", s.method if s is not None else "table"))
            fields.append(("conf", min(10, max(0, s.conf)) if s is not None else 3))
            if s is not None and s.cpe:
                out.append(_tag("service", fields, empty=False))
                out.extend(f"<cpe>{xml_escape(c)}</cpe>" for c in s.cpe)
                out.append("</service>")
            else:
                out.append(_tag("service", fields))
        out.append("</port>\n")
        return "".join(out)

    def finish(self, stats: ScanStats, *, error: str | None = None) -> None:
        """Write ``<runstats>`` and close ``<nmaprun>``; ``error`` sets ``exit="error"``."""
        total, up = self._counter.totals(stats, list_scan=is_list_scan(self._report))
        timestr = ctime(stats.end, self.options.tz)
        summary = f"pyscan done at {timestr}; {done_summary(total, up, stats.elapsed)}"
        finished: list[tuple[str, object]] = [
            ("time", int(stats.end)),
            ("timestr", timestr),
            ("summary", summary),
            ("elapsed", f"{stats.elapsed:.2f}"),
            ("exit", "success" if error is None else "error"),
        ]
        if error is not None:
            finished.append(("errormsg", error))
        self._write(
            "<runstats>"
            + _tag("finished", finished)
            + _tag("hosts", [("up", up), ("down", total - up), ("total", total)])
            + "\n</runstats>\n</nmaprun>\n"
        )

    def _write(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()


def report_to_xml(
    report: ScanReport,
    options: OutputOptions | None = None,
    *,
    stylesheet: str | None = None,
    scanner: str = "nmap",
) -> str:
    """A whole report as nmap-format XML."""
    buf = io.StringIO()
    writer = XmlWriter(buf, options or OutputOptions(), stylesheet=stylesheet, scanner=scanner)
    write_report(writer, report)
    return buf.getvalue()
