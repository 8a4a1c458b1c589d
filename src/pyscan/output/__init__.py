"""Output writers: nmap's normal, XML and grepable formats, and JSON lines.

Every writer is a pure function of the result model, writing to a text stream, and streams:
``start(report)`` writes the header (``report`` may have no hosts yet: only its ``args``,
``scan_types``, ``ports``, ``version`` and ``stats.start`` are used), ``host(h)`` writes
one finished host and flushes, ``finish(stats, error=None)`` writes the footer. A
``report_to_*`` helper turns a whole :class:`~pyscan.ScanReport` into a string.

>>> import io
>>> from pyscan.output import OutputOptions, XmlWriter
>>> buf = io.StringIO()
>>> writer = XmlWriter(buf, OutputOptions(reason=True))

See ``docs/output.md`` for each format and the JSON lines schema.
"""

from pyscan.output._common import PROJECT_URL as PROJECT_URL
from pyscan.output._common import OutputOptions as OutputOptions
from pyscan.output._common import ReportWriter as ReportWriter
from pyscan.output._common import ServiceNameLookup as ServiceNameLookup
from pyscan.output._common import write_report as write_report
from pyscan.output.grepable import GrepableWriter as GrepableWriter
from pyscan.output.grepable import report_to_grepable as report_to_grepable
from pyscan.output.jsonl import JsonLinesWriter as JsonLinesWriter
from pyscan.output.jsonl import report_from_jsonl as report_from_jsonl
from pyscan.output.jsonl import report_to_jsonl as report_to_jsonl
from pyscan.output.normal import NormalWriter as NormalWriter
from pyscan.output.normal import report_to_normal as report_to_normal
from pyscan.output.xml import XML_OUTPUT_VERSION as XML_OUTPUT_VERSION
from pyscan.output.xml import XmlWriter as XmlWriter
from pyscan.output.xml import report_to_xml as report_to_xml
from pyscan.output.xml import xml_escape as xml_escape

__all__ = [
    "PROJECT_URL",
    "XML_OUTPUT_VERSION",
    "GrepableWriter",
    "JsonLinesWriter",
    "NormalWriter",
    "OutputOptions",
    "ReportWriter",
    "ServiceNameLookup",
    "XmlWriter",
    "report_from_jsonl",
    "report_to_grepable",
    "report_to_jsonl",
    "report_to_normal",
    "report_to_xml",
    "write_report",
    "xml_escape",
]
