"""Real Debian daemons in a lab namespace, and their truth table checked against nmap -sV.

The daemons start once for the module (about 5 s); one nmap run per protocol checks the
whole truth table (about 50 s: nmap spends 47 s on telnet alone, whose negotiation none of
its telnet probes completes). A daemon whose package is missing is skipped with the reason
(scripts/install-daemons.sh installs them all).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest

import pyscan.testing.daemons as mod
from pyscan.testing.daemons import (
    DAEMONS,
    SVC_ADDRESS,
    DaemonSet,
    NmapService,
    ServiceTruth,
    _pg_version,
    _revision,
    _upstream,
    daemon_lab_config,
    nmap_services,
    start_daemons,
    truth_table,
)
from pyscan.testing.netlab import NETNS_DIR, Lab, LabConfig, unavailable_reason

NAMES = sorted(DAEMONS)

# --- pure -----------------------------------------------------------------------------------


def test_lab_config_adds_one_quiet_host() -> None:
    alone = daemon_lab_config()
    assert [h.name for h in alone.hosts] == ["svc"]
    svc = alone.hosts[0]
    assert svc.addresses == (SVC_ADDRESS,)
    assert svc.ports == ()
    assert svc.ipv6 is None
    assert not alone.uses_ipv6
    merged = daemon_lab_config(LabConfig.default())
    assert [h.name for h in merged.hosts][-1] == "svc"
    assert len(merged.hosts) == len(LabConfig.default().hosts) + 1
    moved = daemon_lab_config(address="198.18.0.77", host="daemons")
    assert moved.hosts[0].name == "daemons"
    assert moved.hosts[0].addresses == ("198.18.0.77",)


@pytest.mark.parametrize(
    ("version", "upstream", "revision"),
    [
        ("1:9.2p1-2+deb12u10", "9.2p1", "2+deb12u10"),
        ("1.22.1-9+deb12u11", "1.22.1", "9+deb12u11"),
        ("5:7.0.15-1~deb12u10", "7.0.15", "1~deb12u10"),
        ("1:10.11.19-0+deb12u1", "10.11.19", "0+deb12u1"),
        ("15+248+deb12u1", "15+248+deb12u1", ""),
        ("1:2.3.19.1+dfsg1-2.1+deb12u7", "2.3.19.1+dfsg1", "2.1+deb12u7"),
    ],
)
def test_debian_version_split(version: str, upstream: str, revision: str) -> None:
    assert _upstream(version) == upstream
    assert _revision(version) == revision


def test_version_rules() -> None:
    ssh = DAEMONS["sshd"].ports[0]
    assert ssh.version("1:9.2p1-2+deb12u10") == "9.2p1 Debian 2+deb12u10"
    maria = DAEMONS["mariadb"].ports[0]
    assert maria.version("1:10.11.19-0+deb12u1") == "5.5.5-10.11.19-MariaDB-0+deb12u1"
    assert _pg_version("15+248+deb12u1") == "9.6.0 or later"
    assert _pg_version("9.6.24-0+deb9u1") == "9.6.0 or later"
    assert _pg_version("9.4.26-0+deb8u1") is None


def test_every_daemon_has_distinct_ports() -> None:
    keys = [(p.proto, p.port) for d in DAEMONS.values() for p in d.ports]
    assert len(keys) == len(set(keys))


def test_agreement_needs_name_product_and_version() -> None:
    t = ServiceTruth("nginx", "tcp", 443, "http", "ssl", "nginx", "1.22.1", "nginx", "1.22.1-9")
    seen = NmapService("tcp", 443, "open", "http", "ssl", "nginx", "1.22.1", None, "probed")
    assert t.name == "ssl/http"
    assert t.agrees(seen)
    assert not t.agrees(attrs.evolve(seen, tunnel=None))
    assert not t.agrees(attrs.evolve(seen, version="1.22.0"))
    assert not t.agrees(attrs.evolve(seen, product="Apache httpd"))
    assert not t.agrees(attrs.evolve(seen, port=80))
    assert "DIFF" in truth_table({t.key: t}, {})
    assert truth_table({t.key: t}, {t.key: seen}).startswith("ok")


def test_missing_package_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mod, "package_version", lambda package: None)
    missing = mod.missing_daemons(["redis", "nginx"])
    assert set(missing) == {"redis", "nginx"}
    assert "redis-server" in missing["redis"]
    assert "install-daemons.sh" in missing["nginx"]
    with pytest.raises(KeyError):
        mod.missing_daemons(["no-such-daemon"])


# --- the running daemons --------------------------------------------------------------------


@pytest.fixture(scope="module")
def daemons() -> Iterator[DaemonSet]:
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with Lab(daemon_lab_config()) as lab:
        ds = start_daemons(lab)
        if not ds.truth:
            ds.stop()
            pytest.skip("no daemon package installed: " + "; ".join(ds.skipped.values()))
        with ds:
            yield ds


@pytest.fixture(scope="module")
def nmap_seen(daemons: DaemonSet) -> dict[tuple[str, int], NmapService]:
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed (Debian package nmap)")
    return nmap_services(daemons.lab, daemons.address, daemons.ports())


def _need(ds: DaemonSet, name: str) -> None:
    if name in ds.skipped:
        pytest.skip(f"{name}: {ds.skipped[name]}")


def _udp_reply(port: int, payload: bytes) -> bytes:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(2.0)
        sock.sendto(payload, (SVC_ADDRESS, port))
        data, peer = sock.recvfrom(4096)
    assert peer == (SVC_ADDRESS, port)
    return data


def _check_udp(port: int) -> None:
    if port == 53:  # version.bind CH TXT: dnsmasq answers with its version
        query = b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00"
        query += b"\x07version\x04bind\x00\x00\x10\x00\x03"
        data = _udp_reply(53, query)
        assert data[:2] == b"\x12\x34"
        assert data[2] & 0x80  # a response
        assert b"dnsmasq-" in data
    elif port == 123:  # NTP client request: a server reply, mode 4, version 4
        data = _udp_reply(123, b"\x23" + b"\x00" * 47)
        assert len(data) >= 48
        assert data[0] & 0x07 == 4
        assert (data[0] >> 3) & 0x07 == 4
    elif port == 161:  # SNMPv1 GetRequest sysDescr.0 with community public: a GetResponse
        oid = b"\x06\x08\x2b\x06\x01\x02\x01\x01\x01\x00\x05\x00"
        varbinds = b"\x30" + bytes([len(oid) + 2]) + b"\x30" + bytes([len(oid)]) + oid
        pdu = b"\x02\x01\x07\x02\x01\x00\x02\x01\x00" + varbinds
        msg = b"\x02\x01\x00\x04\x06public\xa0" + bytes([len(pdu)]) + pdu
        data = _udp_reply(161, b"\x30" + bytes([len(msg)]) + msg)
        assert data[0] == 0x30
        assert b"\xa2" in data  # GetResponse PDU
        assert b"Linux" in data  # sysDescr is uname
    else:  # pragma: no cover - a new UDP daemon needs its own check here
        raise AssertionError(f"no UDP check for port {port}")


@pytest.mark.lab
@pytest.mark.parametrize("name", NAMES)
def test_daemon_answers_from_the_scanner(daemons: DaemonSet, name: str) -> None:
    _need(daemons, name)
    ports = [k for k, t in daemons.truth.items() if t.daemon == name]
    assert ports, f"{name} has no port in the truth"
    with daemons.lab.scanner_netns():
        for proto, port in ports:
            if proto == "tcp":
                with socket.create_connection((SVC_ADDRESS, port), timeout=2.0):
                    pass
            else:
                _check_udp(port)


def _alive(pid: int) -> bool:
    """Running (a killed orphan may stay a zombie until whoever adopted it reaps it)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _netns_of(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/net").st_ino


@pytest.mark.lab
def test_daemons_run_in_the_target_namespace_only(daemons: DaemonSet) -> None:
    svc_ns = os.stat(NETNS_DIR / daemons.lab.host_ns(daemons.host)).st_ino
    root_ns = os.stat("/proc/self/ns/net").st_ino  # the test runs in the root namespace
    assert svc_ns != root_ns
    assert set(daemons.processes) == set(NAMES) - set(daemons.skipped)
    for name, proc in daemons.processes.items():
        assert proc.poll() is None, f"{name} exited: {daemons.log(name)}"
        assert _netns_of(proc.pid) == svc_ns, name
        assert proc.pid in daemons.lab.pids  # the lab tracks the daemon's own pid
    # the root namespace does not even own the lab address
    addrs = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=True)
    assert SVC_ADDRESS not in addrs.stdout


@pytest.mark.lab
def test_daemons_listen_on_the_lab_address_and_truth_ports_only(daemons: DaemonSet) -> None:
    res = daemons.lab.run(["ss", "-H", "-l", "-n", "-t", "-u"], host=daemons.host, check=True)
    listening = set()
    for line in res.stdout.splitlines():
        netid, _state, _recvq, _sendq, local, peer, *_ = line.split()
        if not peer.endswith(":*"):
            # A UDP socket with a peer is a client, not a listener: glibc's getaddrinfo
            # connects one to each candidate address to sort them (RFC 6724), and ss -l
            # lists it while it lives. CI once caught a daemon's "*:37772 [::1]:22".
            continue
        address, _, port = local.rpartition(":")
        assert address == SVC_ADDRESS, line
        listening.add((netid, int(port)))
    assert listening == set(daemons.truth)


# The binary's own version output: an independent check of the package-derived versions.
_SELF_REPORT: dict[str, tuple[list[str], str]] = {
    "sshd": (["/usr/sbin/sshd", "-V"], r"OpenSSH_([^\s,]+)"),  # usage text names the version
    "nginx": (["/usr/sbin/nginx", "-v"], r"nginx/(\S+)"),
    "apache2": (["/usr/sbin/apache2", "-v"], r"Apache/(\S+)"),
    "lighttpd": (["/usr/sbin/lighttpd", "-v"], r"lighttpd/(\S+)"),
    "exim": (["/usr/sbin/exim4", "--version"], r"Exim version (\S+)"),
    "redis": (["/usr/bin/redis-server", "--version"], r"v=(\S+)"),
    "memcached": (["/usr/bin/memcached", "-V"], r"memcached (\S+)"),
    "mariadb": (["/usr/sbin/mariadbd", "--version"], r"Ver (\S+-MariaDB\S*)"),
    "dnsmasq": (["/usr/sbin/dnsmasq", "--version"], r"Dnsmasq version (\S+)"),
    "pyhttp": (
        ["/usr/bin/python3", "-c", "import http.server as h; print(h.__version__)"],
        r"(\S+)",
    ),
}


@pytest.mark.lab
@pytest.mark.parametrize("name", sorted(_SELF_REPORT))
def test_truth_version_matches_the_binary(daemons: DaemonSet, name: str) -> None:
    _need(daemons, name)
    argv, pattern = _SELF_REPORT[name]
    res = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
    found = re.search(pattern, res.stdout + res.stderr)
    assert found, f"{argv}: {res.stdout!r} {res.stderr!r}"
    for truth in (t for t in daemons.truth.values() if t.daemon == name):
        assert truth.version is not None
        # MariaDB greets as "5.5.5-<its version>" (a MySQL-compatible prefix)
        prefix = "5.5.5-" if name == "mariadb" else ""
        assert truth.version.startswith(prefix + found[1]), (truth, found[1])


@pytest.mark.lab
@pytest.mark.nmap
@pytest.mark.parametrize("name", NAMES)
def test_nmap_agrees_with_the_truth(
    daemons: DaemonSet, nmap_seen: dict[tuple[str, int], NmapService], name: str
) -> None:
    _need(daemons, name)
    mine = {k: t for k, t in daemons.truth.items() if t.daemon == name}
    for key, truth in mine.items():
        seen = nmap_seen.get(key)
        assert seen is not None, f"nmap did not report {key}"
        assert seen.state == "open", seen
        assert truth.agrees(seen), "\n" + truth_table(mine, nmap_seen)
        if truth.version is not None or truth.tunnel is not None:
            assert seen.method == "probed", seen


@pytest.mark.lab
def test_stop_ends_every_daemon_and_its_children(daemons: DaemonSet) -> None:
    # runs last in this module: the fixture's own stop is then a no-op
    svc_ns = os.stat(NETNS_DIR / daemons.lab.host_ns(daemons.host)).st_ino

    def in_svc() -> set[int]:
        pids = set()
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    if os.stat(entry / "ns" / "net").st_ino == svc_ns:
                        pids.add(int(entry.name))
                except OSError:
                    continue
        return pids

    masters = {p.pid for p in daemons.processes.values()}
    before = in_svc()
    assert masters <= before
    if "nginx" in daemons.processes:
        assert len(before) > len(masters)  # workers: nginx, apache2, postgres, dovecot...
    directory = daemons.directory
    orphans: list[int] = []
    if "nginx" in daemons.processes:  # orphan its worker: stop must still end it
        nginx = daemons.processes["nginx"]
        orphans = [p for p in before if p != nginx.pid and os.getpgid(p) == nginx.pid]
        assert orphans
        nginx.send_signal(signal.SIGKILL)
        nginx.wait(5)
        time.sleep(0.2)
        assert set(orphans) <= in_svc()  # nginx workers outlive their master
    t0 = time.monotonic()
    daemons.stop()
    assert time.monotonic() - t0 < 15
    assert not in_svc()
    assert not any(_alive(p) for p in orphans)
    assert not directory.exists()
    with daemons.lab.scanner_netns():
        for _proto, port in daemons.ports("tcp"):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection((SVC_ADDRESS, port), timeout=2.0).close()
    daemons.stop()  # idempotent
