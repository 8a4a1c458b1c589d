"""nmap as the oracle: scan 127.0.0.1 with nmap, rebuild its result as a pyscan report from its
XML, write that report with our writers and compare with nmap's own files.

Only loopback is scanned, always with ``-n`` (no DNS traffic).
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from libnmap.parser import NmapParser  # type: ignore[import-untyped]

from pyscan.output import OutputOptions, report_to_grepable, report_to_normal, report_to_xml

from .nmapxml import report_from_nmap_xml

NMAP = shutil.which("nmap")
NDIFF = shutil.which("ndiff")
DTD_PATH = Path("/usr/share/nmap/nmap.dtd")

pytestmark = [
    pytest.mark.nmap,
    pytest.mark.skipif(NMAP is None, reason="nmap is not installed"),
]


@pytest.fixture(scope="module")
def open_port() -> Iterator[int]:
    """A listening TCP port on 127.0.0.1 for nmap to find open."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        s.listen(8)
        yield s.getsockname()[1]


def run_nmap(tmp: Path, *args: str) -> dict[str, str]:
    """Run nmap on loopback (with -n) writing -oX/-oN/-oG; return the three texts."""
    assert NMAP is not None
    assert "-n" in args
    assert args[-1].startswith("127.")
    files = {"xml": tmp / "n.xml", "normal": tmp / "n.nmap", "grep": tmp / "n.gnmap"}
    cmd = ["nmap", *args[:-1], "-oX", str(files["xml"]), "-oN", str(files["normal"])]
    cmd += ["-oG", str(files["grep"]), args[-1]]
    subprocess.run(cmd, executable=NMAP, check=True, capture_output=True, timeout=120)
    return {k: p.read_text() for k, p in files.items()}


_CTIME = re.compile(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}")


def as_pyscan(nmap_text: str) -> str:
    """nmap's text with nmap's name and version where pyscan writes its own."""
    text = re.sub(r"Nmap \d+\.\d+\w*", "pyscan 0.1.0", nmap_text)
    text = text.replace("# Nmap done", "# pyscan done").replace(
        "Nmap scan report", "pyscan scan report"
    )
    text = text.replace(" as: nmap ", " as: pyscan ")
    # -v: nmap names its data directory; pyscan has no such line.
    text = re.sub(r"(?m)^Read data files from: .*\n", "", text)
    # The closing date is the clock at the end; we only know start + elapsed.
    return re.sub(r"(done at )" + _CTIME.pattern, r"\1<DATE>", text)


def mask_done(text: str) -> str:
    return re.sub(r"(done at )" + _CTIME.pattern, r"\1<DATE>", text)


def compare_all(tmp_path: Path, texts: dict[str, str], options: OutputOptions) -> None:
    report = report_from_nmap_xml(texts["xml"])
    assert mask_done(report_to_normal(report, options, log_file=True)) == as_pyscan(texts["normal"])
    assert mask_done(report_to_grepable(report, options)) == as_pyscan(texts["grep"])
    ours = report_to_xml(report, options)
    compare_xml(tmp_path, texts["xml"], ours)


def compare_xml(tmp_path: Path, theirs: str, ours: str) -> None:
    a = tmp_path / "nmap.xml"
    b = tmp_path / "pyscan.xml"
    a.write_text(theirs)
    b.write_text(ours)
    if NDIFF is not None:
        text = subprocess.run(
            [NDIFF, str(a), str(b)], capture_output=True, text=True, timeout=60, check=False
        )
        assert text.returncode == 0, text.stdout + text.stderr
        # Only the scan line may differ (name, version, args); no host, port or state.
        assert [ln for ln in text.stdout.splitlines() if ln.strip()][2:] == []
        xml = subprocess.run(
            [NDIFF, "--xml", str(a), str(b)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert "<hostdiff" not in xml.stdout
    if DTD_PATH.exists():
        etree = pytest.importorskip("lxml.etree")
        dtd = etree.DTD(str(DTD_PATH))
        assert dtd.validate(etree.parse(str(b))), dtd.error_log.filter_from_errors()
    nmap_parsed = NmapParser.parse_fromstring(theirs)
    ours_parsed = NmapParser.parse_fromstring(ours)
    assert ours_parsed.hosts_total == nmap_parsed.hosts_total
    assert ours_parsed.hosts_up == nmap_parsed.hosts_up
    for h_nmap, h_ours in zip(nmap_parsed.hosts, ours_parsed.hosts, strict=True):
        assert (h_ours.address, h_ours.status) == (h_nmap.address, h_nmap.status)
        assert h_ours.get_ports() == h_nmap.get_ports()
        for portno, proto in h_nmap.get_ports():
            s_nmap = h_nmap.get_service(portno, proto)
            s_ours = h_ours.get_service(portno, proto)
            assert (s_ours.state, s_ours.reason, s_ours.service) == (
                s_nmap.state,
                s_nmap.reason,
                s_nmap.service,
            )
        assert h_ours.extraports_state == h_nmap.extraports_state
        assert h_ours.extraports_reasons == h_nmap.extraports_reasons


def test_connect_scan_few_ports(tmp_path: Path, open_port: int) -> None:
    texts = run_nmap(tmp_path, "-sT", "-n", "-p", f"22,25,80,443,3306,{open_port}", "127.0.0.1")
    compare_all(tmp_path, texts, OutputOptions())


def test_connect_scan_folded_with_reason_and_verbose(tmp_path: Path, open_port: int) -> None:
    texts = run_nmap(
        tmp_path, "-sT", "-n", "--reason", "-v", "-p", f"1-100,{open_port}", "127.0.0.1"
    )
    compare_all(tmp_path, texts, OutputOptions(verbose=1, reason=True))


def test_all_ports_ignored(tmp_path: Path, open_port: int) -> None:
    # A range without our open port (nothing else listens that low in the test image,
    # and if it does the comparison still holds: both sides list it).
    texts = run_nmap(tmp_path, "-sT", "-n", "-p", "1-30", "127.0.0.1")
    compare_all(tmp_path, texts, OutputOptions())


def test_open_only(tmp_path: Path, open_port: int) -> None:
    texts = run_nmap(tmp_path, "-sT", "-n", "--open", "-p", f"1-40,{open_port}", "127.0.0.1")
    compare_all(tmp_path, texts, OutputOptions(open_only=True))


def test_ping_scan(tmp_path: Path) -> None:
    texts = run_nmap(tmp_path, "-sn", "-n", "127.0.0.1-3")
    compare_all(tmp_path, texts, OutputOptions())


def test_list_scan(tmp_path: Path) -> None:
    texts = run_nmap(tmp_path, "-sL", "-n", "127.0.0.1-3")
    compare_all(tmp_path, texts, OutputOptions())
