"""The command against the namespace lab, compared with nmap on the same lab by ndiff."""

from __future__ import annotations

import ipaddress
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from pyscan.testing.netlab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.nmap]

NDIFF = shutil.which("ndiff")
DTD = Path("/usr/share/nmap/nmap.dtd")
_MAC = re.compile(r'<address addr="[0-9A-F:]+" addrtype="mac"[^>]*/>\n?')


def plain_hosts(lab: Lab) -> list[str]:
    """Up, unimpaired hosts: nmap finds them by ARP, pyscan by IP probes (same answer)."""
    return [
        a
        for a, h in lab.truth.hosts.items()
        if h.arp and not h.impaired and not h.silent and ipaddress.ip_address(a).version == 4
    ]


def lab_ports(lab: Lab, proto: str) -> str:
    ports = {p for h in lab.truth.hosts.values() for (pr, p) in h.ports if pr == proto}
    return ",".join(map(str, sorted(ports | {1, 9})))


def states(xml: str) -> dict[tuple[str, str, int], str]:
    out = {}
    for host in ET.fromstring(xml).iter("host"):
        addr = host.find("address").get("addr")  # type: ignore[union-attr]
        for port in host.iter("port"):
            key = (addr, port.get("protocol"), int(port.get("portid")))  # type: ignore[arg-type]
            out[key] = port.find("state").get("state")  # type: ignore[union-attr]
    return out


@pytest.mark.parametrize(
    ("flag", "every_port"), [("-sS", False), ("-sT", False), ("-sU", False), ("-sS", True)]
)
def test_same_hosts_ports_and_states_as_nmap(
    netlab: Lab, nmap_path: str, tmp_path: Path, flag: str, every_port: bool
) -> None:
    del nmap_path
    hosts = plain_hosts(netlab)
    ports = lab_ports(netlab, "udp" if flag == "-sU" else "tcp")
    if every_port:  # -p-: all 65535 ports of the host with every port behaviour
        hosts, ports = hosts[:1], "-"
    args = [flag, "-T4", "-n", f"-p{ports}", *hosts]
    ours = tmp_path / "pyscan.xml"
    theirs = tmp_path / "nmap.xml"
    proc = netlab.run(
        [sys.executable, "-m", "pyscan", *args, "-oX", str(ours)], timeout=120, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    assert "pyscan done: " in proc.stdout
    netlab.run(["nmap", *args, "-oX", str(theirs)], timeout=120, check=True)
    assert states(ours.read_text()) == states(theirs.read_text())
    if not every_port:  # every port is listed (fewer than 26 per state)
        assert len(states(ours.read_text())) == len(hosts) * len(ports.split(","))
    if DTD.exists():
        etree = pytest.importorskip("lxml.etree")
        dtd = etree.DTD(str(DTD))
        assert dtd.validate(etree.parse(str(ours))), dtd.error_log.filter_from_errors()
    if NDIFF is None:
        pytest.skip("ndiff is not installed (Debian package ndiff)")
    # The one piece of ndiff noise filtered out: nmap learns each lab host's MAC address from
    # ARP and writes <address addrtype="mac">, which ndiff shows as a changed host heading
    # ("-198.18.0.10, 66:DF:..." / "+198.18.0.10"). pyscan sends no ARP and reports no MAC.
    theirs.write_text(_MAC.sub("", theirs.read_text()))
    diff = subprocess.run(
        [NDIFF, str(theirs), str(ours)], capture_output=True, text=True, timeout=60, check=False
    )
    # ndiff compares host states, addresses, names, ports, states and "Not shown" counts
    # (not reasons or timings). The only difference allowed is its first two lines: the
    # "-Nmap 7.93 scan initiated ..." / "+Nmap 0.1.0 scan initiated ..." header, which
    # carries program version, time and arguments.
    assert diff.returncode == 0, diff.stdout + diff.stderr
    lines = [ln for ln in diff.stdout.splitlines() if ln.strip()]
    assert lines[2:] == [], diff.stdout
    xml_diff = subprocess.run(
        [NDIFF, "--xml", str(theirs), str(ours)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "<hostdiff" not in xml_diff.stdout


def test_ping_scan_reports_down_hosts_with_verbose(netlab: Lab) -> None:
    absent = [a for a, h in netlab.truth.hosts.items() if not h.arp]
    up = plain_hosts(netlab)[:1]
    proc = netlab.run(
        [sys.executable, "-m", "pyscan", "-sn", "-v", "-n", "-T4", *up, *absent],
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for a in absent:
        assert f"pyscan scan report for {a} [host down]\n" in proc.stdout
    assert f"pyscan scan report for {up[0]}\nHost is up" in proc.stdout
    n = len(up) + len(absent)
    assert f"pyscan done: {n} IP addresses ({len(up)} host up)" in proc.stdout
