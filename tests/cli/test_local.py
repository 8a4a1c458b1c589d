"""Real scans of 127.0.0.1 through the command, with listeners this module starts.

Every test passes -n or scans only 127.0.0.0/8 (named from /etc/hosts, never from DNS).
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyscan._io.netutil import has_raw_privilege
from pyscan._specs.services import default_services
from pyscan.cli import main
from pyscan.output import report_from_jsonl

DTD = Path("/usr/share/nmap/nmap.dtd")
ROOT = pytest.mark.skipif(not has_raw_privilege(), reason="needs CAP_NET_RAW")


@pytest.fixture(scope="module")
def tcp_open() -> Iterator[int]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


@pytest.fixture(scope="module")
def tcp_closed() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nobody listens once closed


@pytest.fixture(scope="module")
def udp_open() -> Iterator[int]:
    """A UDP port that answers every datagram (an echo service)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(0.2)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                data, peer = s.recvfrom(2048)
            except TimeoutError:
                continue
            except OSError:
                return
            s.sendto(data or b"\0", peer)

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    yield s.getsockname()[1]
    stop.set()
    t.join(2)
    s.close()


def svc(port: int, proto: str = "tcp") -> str:
    return default_services().name(port, proto) or "unknown"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


START = re.compile(
    r"Starting pyscan \S+ \( https://github\.com/pyscan \) at \d{4}-\d\d-\d\d \d\d:\d\d \S+"
)
DONE = re.compile(
    r"pyscan done: (\d+) IP address(?:es)? \((\d+) hosts? up\) scanned in \d+\.\d\d seconds"
)


def table(out: str) -> list[list[str]]:
    lines = out.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("PORT "))
    rows = []
    for ln in lines[head + 1 :]:
        if not ln.strip():
            break
        rows.append(ln.split())
    return rows


def test_connect_scan_normal_output(
    capsys: pytest.CaptureFixture[str], tcp_open: int, tcp_closed: int
) -> None:
    code, out, err = run(capsys, "-sT", "-p", f"{tcp_open},{tcp_closed}", "-n", "127.0.0.1")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert START.fullmatch(lines[0]), lines[0]
    assert lines[1] == "pyscan scan report for 127.0.0.1"
    assert re.fullmatch(r"Host is up( \(\S+s latency\))?\.", lines[2])
    assert lines[3] == ""
    low, high = sorted([tcp_open, tcp_closed])
    header = lines[4]
    assert header.split() == ["PORT", "STATE", "SERVICE"]
    state = {tcp_open: "open", tcp_closed: "closed"}
    assert table(out) == [[f"{p}/tcp", state[p], svc(p)] for p in (low, high)]
    # columns aligned: STATE starts where the widest PORT cell ends plus one space
    assert lines[5].index(state[low]) == header.index("STATE")
    assert lines[-2] == ""
    m = DONE.fullmatch(lines[-1])
    assert m is not None, lines[-1]
    assert m.groups() == ("1", "1")


def test_reverse_dns_of_loopback_and_reason(
    capsys: pytest.CaptureFixture[str], tcp_open: int
) -> None:
    code, out, _ = run(capsys, "-sT", "-Pn", "--reason", "-p", str(tcp_open), "127.0.0.1")
    assert code == 0
    assert "pyscan scan report for localhost (127.0.0.1)\n" in out
    assert table(out) == [[f"{tcp_open}/tcp", "open", svc(tcp_open), "syn-ack"]]


def test_folded_ports_and_open_only(capsys: pytest.CaptureFixture[str], tcp_open: int) -> None:
    ports = f"1-40,{tcp_open}"
    code, out, _ = run(capsys, "-sT", "-Pn", "-n", "-p", ports, "127.0.0.1")
    assert code == 0
    assert "Not shown: 40 closed tcp ports (conn-refused)\n" in out
    assert table(out) == [[f"{tcp_open}/tcp", "open", svc(tcp_open)]]
    code, out, _ = run(capsys, "-sT", "-Pn", "-n", "--open", "-p", "1-3", "127.0.0.1")
    assert "pyscan scan report" not in out  # no open port: the host is not shown
    assert DONE.search(out)


def test_all_file_outputs(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, tcp_open: int, tcp_closed: int
) -> None:
    base = tmp_path / "scan"
    jl = tmp_path / "scan.jsonl"
    ports = f"{tcp_open},{tcp_closed}"
    code, out, _ = run(
        capsys, "-sT", "-n", "-p", ports, "-oA", str(base), "-oJ", str(jl), "127.0.0.1"
    )
    assert code == 0
    normal = (tmp_path / "scan.nmap").read_text()
    assert normal.startswith("# pyscan ")
    assert f"as: pyscan -sT -n -p {ports} -oA {base} -oJ {jl} 127.0.0.1\n" in normal
    assert re.search(r"^# pyscan done at .* -- 1 IP address \(1 host up\)", normal, re.M)
    # the file has the terminal's host block
    block = out[out.index("pyscan scan report") : out.index("pyscan done")]
    assert block in normal
    gnmap = (tmp_path / "scan.gnmap").read_text()
    assert "Host: 127.0.0.1 ()\tStatus: Up\n" in gnmap
    # grepable leaves the service empty when the table has no name (as nmap)
    gsvc = {p: default_services().name(p, "tcp") or "" for p in (tcp_open, tcp_closed)}
    assert f"{tcp_open}/open/tcp//{gsvc[tcp_open]}///" in gnmap
    assert f"{tcp_closed}/closed/tcp//{gsvc[tcp_closed]}///" in gnmap
    xml = (tmp_path / "scan.xml").read_text()
    root = ET.fromstring(xml)
    assert root.tag == "nmaprun"
    assert root.find("scaninfo").attrib["type"] == "connect"
    got = {int(p.get("portid")): p.find("state").get("state") for p in root.iter("port")}
    assert got == {tcp_open: "open", tcp_closed: "closed"}
    assert root.find("runstats/finished").get("exit") == "success"
    validate_xml(xml)
    report = report_from_jsonl(jl.read_text())
    assert [str(h.address) for h in report.hosts] == ["127.0.0.1"]
    assert {p.port: p.state.value for p in report.hosts[0].ports} == got
    assert json.loads(jl.read_text().splitlines()[-1])["exit"] == "success"


def validate_xml(text: str) -> None:
    if not DTD.exists():
        return
    etree = pytest.importorskip("lxml.etree")
    dtd = etree.DTD(str(DTD))
    doc = etree.fromstring(text.encode())
    assert dtd.validate(doc), dtd.error_log.filter_from_errors()


def test_stdout_output_replaces_terminal_output(
    capsys: pytest.CaptureFixture[str], tcp_open: int
) -> None:
    code, out, _ = run(capsys, "-sT", "-Pn", "-n", "-p", str(tcp_open), "-oX", "-", "127.0.0.1")
    assert code == 0
    assert out.startswith('<?xml version="1.0"')
    assert "Starting pyscan" not in out
    validate_xml(out)
    code, out, _ = run(capsys, "-sT", "-Pn", "-n", "-p", str(tcp_open), "-oN", "-", "127.0.0.1")
    assert out.startswith("# pyscan ")
    assert "Starting pyscan" not in out


def test_unprivileged_default_is_connect_scan_with_notice(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tcp_open: int
) -> None:
    monkeypatch.setattr("pyscan._io.netutil.has_raw_privilege", lambda: False)
    code, out, err = run(capsys, "-Pn", "-n", "-p", str(tcp_open), "-oX", "-", "127.0.0.1")
    assert code == 0
    assert err == (
        "pyscan: note: no raw-socket privilege (CAP_NET_RAW): using a TCP connect scan (-sT) "
        "instead of a SYN scan (-sS)\n"
    )
    assert '<scaninfo type="connect"' in out


def test_ping_scan(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-sn", "-n", "127.0.0.1", "127.0.0.2")
    assert code == 0
    assert "PORT" not in out
    assert sorted(ln for ln in out.splitlines() if ln.startswith("pyscan scan report")) == [
        "pyscan scan report for 127.0.0.1",
        "pyscan scan report for 127.0.0.2",
    ]
    assert DONE.search(out).groups() == ("2", "2")  # type: ignore[union-attr]


def test_ping_scan_skipping_discovery_sends_nothing(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "-sn", "-Pn", "-n", "127.0.0.1")
    assert code == 0
    assert "pyscan scan report for 127.0.0.1\nHost is up.\n" in out


def test_list_scan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    xml = tmp_path / "l.xml"
    code, out, _ = run(capsys, "-sL", "-n", "127.0.0.1/30", "-oX", str(xml))
    assert code == 0
    lines = out.splitlines()
    assert lines[1:-1] == [f"pyscan scan report for 127.0.0.{i}" for i in range(4)]
    assert DONE.fullmatch(lines[-1]).groups() == ("4", "0")  # type: ignore[union-attr]
    root = ET.parse(xml).getroot()
    assert [h.find("status").get("state") for h in root.iter("host")] == ["unknown"] * 4
    validate_xml(xml.read_text())
    # without -n, names come from /etc/hosts for loopback (never from DNS)
    code, out, _ = run(capsys, "-sL", "127.0.0.1/31", "--exclude", "127.0.0.0")
    assert out.splitlines()[1:-1] == ["pyscan scan report for localhost (127.0.0.1)"]


def test_input_list_and_exclude_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    targets = tmp_path / "t.txt"
    targets.write_text("127.0.0.1 # first\n127.0.0.5-7\n")
    excl = tmp_path / "x.txt"
    excl.write_text("127.0.0.6\n")
    code, out, _ = run(capsys, "-sL", "-n", "-iL", str(targets), "--excludefile", str(excl))
    assert code == 0
    assert [ln.split()[-1] for ln in out.splitlines()[1:-1]] == [
        "127.0.0.1", "127.0.0.5", "127.0.0.7",
    ]  # fmt: skip


def test_hostname_target_is_shown_as_given(
    capsys: pytest.CaptureFixture[str], tcp_open: int
) -> None:
    code, out, _ = run(capsys, "-sT", "-Pn", "-n", "-p", str(tcp_open), "localhost")
    assert code == 0
    assert "pyscan scan report for localhost (127.0.0.1)\n" in out


@ROOT
def test_syn_and_udp_scan(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    tcp_open: int,
    tcp_closed: int,
    udp_open: int,
) -> None:
    xml = tmp_path / "s.xml"
    ports = f"T:{tcp_open},{tcp_closed},U:{udp_open},{tcp_closed}"
    code, out, err = run(
        capsys, "-sS", "-sU", "-n", "--reason", "-p", ports, "-oX", str(xml), "127.0.0.1"
    )
    assert (code, err) == (0, "")
    rows = {r[0]: r[1:] for r in table(out)}
    assert rows[f"{tcp_open}/tcp"][0] == "open"
    assert rows[f"{tcp_open}/tcp"][2:] == ["syn-ack", "ttl", "64"]
    assert rows[f"{tcp_closed}/tcp"][0] == "closed"
    assert rows[f"{udp_open}/udp"][0] == "open"
    assert rows[f"{udp_open}/udp"][2] == "udp-response"
    assert rows[f"{tcp_closed}/udp"][0] == "closed"
    assert rows[f"{tcp_closed}/udp"][2] == "port-unreach"
    root = ET.parse(xml).getroot()
    assert [s.get("type") for s in root.iter("scaninfo")] == ["syn", "udp"]
    validate_xml(xml.read_text())


@ROOT
def test_default_scan_is_syn_with_discovery(
    capsys: pytest.CaptureFixture[str], tcp_open: int
) -> None:
    code, out, _ = run(capsys, "-n", "-p", str(tcp_open), "-oX", "-", "-v", "127.0.0.1")
    assert code == 0
    root = ET.fromstring(out)
    assert root.find("scaninfo").get("type") == "syn"
    assert root.find("host/status").get("state") == "up"
    assert root.find("host/status").get("reason") != "user-set"  # discovery ran


def _interrupt(tmp_path: Path, sig: int) -> None:
    xml, jl = tmp_path / "i.xml", tmp_path / "i.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pyscan", "-sT", "-p1-65535", "--max-rate", "500",
         "-oX", str(xml), "-oJ", str(jl), "127.0.0.1", "-n"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    # wait until the scan has really started (the XML header is written), then a second
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (xml.exists() and xml.stat().st_size):
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
    assert "pyscan aborted: interrupted -- partial results: 1 IP address (1 host up)" in out
    text = xml.read_text()
    root = ET.fromstring(text)
    finished = root.find("runstats/finished")
    assert (finished.get("exit"), finished.get("errormsg")) == ("error", "interrupted")
    scanned = sum(int(e.get("count")) for e in root.iter("extraports"))
    scanned += len(list(root.iter("port")))
    assert 0 < scanned < 65535  # partial: the ports decided before the signal
    validate_xml(text)
    lines = [json.loads(ln) for ln in jl.read_text().splitlines()]
    assert [ln["type"] for ln in lines] == ["scan", "host", "stats"]
    assert lines[-1]["exit"] == "error"
    assert len(lines[1]["ports"]) == scanned


def test_sigint_writes_partial_results(tmp_path: Path) -> None:
    _interrupt(tmp_path, signal.SIGINT)


def test_sigterm_writes_partial_results(tmp_path: Path) -> None:
    _interrupt(tmp_path, signal.SIGTERM)


def test_real_session_subprocess(tcp_open: int) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyscan", "-sT", "-p", f"22,80,443,{tcp_open}", "127.0.0.1"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "pyscan scan report for localhost (127.0.0.1)\n" in proc.stdout
    assert f"{tcp_open}/tcp " in proc.stdout
    assert DONE.search(proc.stdout)


def test_an_interrupted_scan_says_where_to_resume(tmp_path: Path) -> None:
    jl = tmp_path / "r.jsonl"
    argv = [sys.executable, "-m", "pyscan", "-sT", "-Pn", "-n", "--seed", "5", "-p1-65535",
            "--max-rate", "500", "-oJ", str(jl), "127.0.0.1"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (jl.exists() and jl.stat().st_size):
        time.sleep(0.05)
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    found = re.search(r"pyscan: note: to resume, run the same scan with --resume-from (\d+)\n", err)
    assert found, err
    point = int(found.group(1))
    lines = [json.loads(ln) for ln in jl.read_text().splitlines()]
    decided = len(lines[1]["ports"])
    assert 0 < point <= decided < 65535  # everything before the point was written out
    # without a reproducible order (no --seed) there is nothing to say
    proc = subprocess.Popen(argv[:6] + argv[8:], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)  # fmt: skip
    time.sleep(1.5)
    proc.send_signal(signal.SIGINT)
    _out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "--resume-from" not in err
