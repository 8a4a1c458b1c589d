"""The namespace lab itself: isolation, teardown, real listeners, and its truth against nmap."""

from __future__ import annotations

import asyncio
import errno
import ipaddress
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

from pyscan.errors import OptionsError
from pyscan.testing.netlab import (
    Behaviour,
    HostConfig,
    Impairment,
    Lab,
    LabConfig,
    PortRule,
    lab_namespaces,
)

Factory = Callable[[LabConfig], Lab]
lab_mark = pytest.mark.lab


# --- pure: configuration and truth (no root needed) -----------------------------------------


def test_default_truth_has_every_behaviour_and_the_documented_format() -> None:
    truth = LabConfig.default().truth()
    ports = truth.ports()
    web = ports["198.18.0.10"]
    assert web[("tcp", 22)] == ("open", "syn-ack")
    assert web[("tcp", 23)] == ("closed", "reset")
    assert web[("tcp", 24)] == ("filtered", "no-response")
    assert web[("tcp", 25)] == ("filtered", "admin-prohibited")
    assert web[("udp", 53)] == ("open", "udp-response")
    assert web[("udp", 54)] == ("closed", "port-unreach")
    assert web[("udp", 55)] == ("open|filtered", "no-response")
    used = {r.behaviour for h in LabConfig.default().hosts for r in h.ports}
    assert used == set(Behaviour)
    assert truth.down == ("198.18.0.13",)
    assert "198.18.0.13" not in ports
    assert not truth.hosts["198.18.0.12"].echo
    assert truth.hosts["198.18.0.12"].up
    dark = truth.hosts["198.18.0.15"]
    assert dark.up
    assert dark.silent
    assert not dark.echo
    assert dark.state("tcp", 80) == ("filtered", "no-response")
    assert dark.state("udp", 80) == ("open|filtered", "no-response")
    assert truth.hosts["198.18.0.11"].state("tcp", 9) == ("closed", "reset")
    assert truth.hosts["198.18.0.14"].impaired
    assert truth.icmp_rate_limited is False
    with pytest.raises(KeyError):
        truth.hosts["198.18.0.13"].state("tcp", 22)


@pytest.mark.parametrize(
    "make",
    [
        lambda: LabConfig(
            hosts=[HostConfig("a", "10.0.0.5")], network="10.0.0.0/24", scanner="10.0.0.1"
        ),
        lambda: LabConfig(hosts=[HostConfig("a", "198.18.1.5")]),
        lambda: LabConfig(hosts=[HostConfig("a", "198.18.0.1")]),
        lambda: LabConfig(hosts=[HostConfig("a", "198.18.0.5"), HostConfig("a", "198.18.0.6")]),
        lambda: HostConfig("a", "198.18.0.5", silent="198.18.0.6"),
        lambda: HostConfig("Bad", "198.18.0.5"),
        lambda: HostConfig("a", "198.18.0.5", ipv6="2001:470::1"),
        lambda: PortRule("udp", 53, Behaviour.RESET),
        lambda: PortRule("tcp", 0, Behaviour.OPEN),
        lambda: HostConfig(
            "a", "198.18.0.5", ports=[PortRule("tcp", 1, "open"), PortRule("tcp", 1, "drop")]
        ),
        lambda: LabConfig.large(300),
    ],
)
def test_bad_configs_are_refused(make: Callable[[], object]) -> None:
    with pytest.raises(OptionsError):
        make()


def test_large_config_counts_and_is_seeded() -> None:
    cfg = LabConfig.large(100, silent=10, absent=20, seed=3)
    truth = cfg.truth()
    assert len(truth.up) == 100
    assert len(truth.down) == 20
    assert sum(h.silent for h in truth.hosts.values()) == 10
    assert truth.icmp_rate_limited is True
    assert LabConfig.large(100, silent=10, absent=20, seed=3) == cfg
    assert LabConfig.large(100, silent=10, absent=20, seed=4) != cfg
    for address in truth.hosts:
        assert ipaddress.ip_address(address) in ipaddress.ip_network("198.18.0.0/15")


# --- helpers ---------------------------------------------------------------------------------


def _root_snapshot() -> list[str]:
    out = []
    for argv in (
        ["ip", "-o", "link"],
        ["ip", "-o", "addr"],
        ["ip", "route"],
        ["ip", "-6", "route"],
        ["ip", "neigh", "show", "to", "198.18.0.0/15"],
    ):
        res = subprocess.run(argv, capture_output=True, text=True, check=True)
        out.append(res.stdout)
    return out


def _nmap_xml(
    lab: Lab, args: list[str], timeout: float = 60
) -> dict[str, dict[tuple[str, int], tuple[str, str]]]:
    res = lab.run(["nmap", "-n", "-oX", "-", *args], timeout=timeout)
    assert res.returncode == 0, res.stderr
    found: dict[str, dict[tuple[str, int], tuple[str, str]]] = {}
    for host in ET.fromstring(res.stdout).iter("host"):
        addr = host.find("address[@addrtype='ipv4']")
        if addr is None:
            addr = host.find("address[@addrtype='ipv6']")
        assert addr is not None
        ports = found.setdefault(addr.get("addr", ""), {})
        for port in host.iter("port"):
            st = port.find("state")
            assert st is not None
            key = (port.get("protocol", ""), int(port.get("portid", "0")))
            ports[key] = (st.get("state", ""), st.get("reason", ""))
    return found


def _icmp_echo(dst: str, ident: int, seq: int) -> bytes:
    header = struct.pack("!BBHHH", 8, 0, 0, ident, seq)
    data = b"pyscan-lab-ping"
    total = 0
    msg = header + data
    for i in range(0, len(msg), 2):
        total += (msg[i] << 8) + (msg[i + 1] if i + 1 < len(msg) else 0)
    total = (total >> 16) + (total & 0xFFFF)
    total += total >> 16
    return struct.pack("!BBHHH", 8, 0, ~total & 0xFFFF, ident, seq) + data


def _ping(dst: str, count: int = 1, wait: float = 1.0) -> int:
    """Echo replies received from dst (raw ICMP socket of the calling thread's namespace)."""
    ident = os.getpid() & 0xFFFF
    with socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP) as s:
        for seq in range(count):
            s.sendto(_icmp_echo(dst, ident, seq), (dst, 0))
        seen: set[int] = set()
        deadline = time.monotonic() + wait
        while (left := deadline - time.monotonic()) > 0:
            s.settimeout(left)
            try:
                pkt, (src, _) = s.recvfrom(2048)
            except TimeoutError:
                break
            ihl = (pkt[0] & 0x0F) * 4
            typ, _, _, pid, seq = struct.unpack_from("!BBHHH", pkt, ihl)
            if src == dst and typ == 0 and pid == ident:
                seen.add(seq)
                if len(seen) == count:
                    break
        return len(seen)


# --- the lab ---------------------------------------------------------------------------------


@lab_mark
def test_lifecycle_root_untouched_and_nothing_left(netlab_factory: Factory) -> None:
    before = _root_snapshot()
    t0 = time.monotonic()
    lab = netlab_factory(LabConfig.default())
    up = time.monotonic() - t0
    names = lab.namespaces
    assert all(n.startswith(lab.id + "-") for n in names)
    assert set(names) <= set(lab_namespaces())
    assert _root_snapshot() == before
    pids = lab.pids
    assert pids
    t1 = time.monotonic()
    lab.stop()
    down = time.monotonic() - t1
    assert not set(names) & set(lab_namespaces())
    for pid in pids:
        assert not Path(f"/proc/{pid}").exists()
    assert _root_snapshot() == before
    assert up < 5, up
    assert down < 5, down
    lab.stop()  # idempotent


@lab_mark
def test_parallel_labs_do_not_collide(netlab: Lab, netlab_factory: Factory) -> None:
    other = netlab_factory(LabConfig.default())
    assert other.id != netlab.id
    assert not set(other.namespaces) & set(netlab.namespaces)
    other.stop()
    assert set(netlab.namespaces) <= set(lab_namespaces())
    with netlab.scanner_netns(), socket.create_connection(("198.18.0.10", 80), timeout=1) as s:
        assert s.recv(100) == b"pyscan-lab tcp 80\r\n"


@lab_mark
def test_failed_setup_tears_down(netlab_factory: Factory, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = LabConfig(hosts=[HostConfig("a", "198.18.0.5", ports=[PortRule("tcp", 22, "open")])])
    lab = Lab(cfg)

    def boom(*args: object) -> None:
        raise RuntimeError("helper start fails")

    monkeypatch.setattr(Lab, "_spawn", boom)  # fails after namespaces and links exist
    with pytest.raises(RuntimeError, match="helper start fails"):
        lab.start()
    assert not lab.running
    assert not set(lab.namespaces) & set(lab_namespaces())


@lab_mark
def test_scanner_namespace_has_no_default_route(netlab: Lab) -> None:
    for ns_host in (None, "web", "lossy"):
        routes = netlab.run(["ip", "route"], host=ns_host, check=True).stdout
        assert "default" not in routes
        assert routes.strip().startswith("198.18.0.0/24")
    routes6 = netlab.run(["ip", "-6", "route"], check=True).stdout
    assert "default" not in routes6
    assert netlab.run(["ip", "-6", "addr"], host="db", check=True).stdout == ""
    with netlab.scanner_netns(), socket.socket() as s, pytest.raises(OSError) as err:
        s.connect(("192.0.2.1", 9))
    assert err.value.errno == errno.ENETUNREACH


@lab_mark
def test_scanner_netns_is_per_thread_and_restored(netlab: Lab) -> None:
    def ns() -> str:
        return os.readlink("/proc/thread-self/ns/net")

    mine = ns()
    seen: list[str] = []
    go, done = threading.Event(), threading.Event()

    def other() -> None:
        go.wait(5)
        seen.append(ns())
        done.set()

    t_before = threading.Thread(target=other)
    t_before.start()
    with netlab.scanner_netns():
        inside = ns()
        go.set()
        done.wait(5)
        t_inside = threading.Thread(target=lambda: seen.append(ns()))  # inherits the lab's
        t_inside.start()
        t_inside.join()
    t_before.join()
    assert inside != mine
    assert seen == [mine, inside]
    assert ns() == mine


@lab_mark
def test_tcp_from_scanner_namespace(netlab: Lab) -> None:
    with netlab.scanner_netns():
        with socket.create_connection(("198.18.0.10", 22), timeout=1) as s:
            assert s.recv(100) == b"SSH-2.0-pyscanlab_1.0\r\n"
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("198.18.0.10", 23), timeout=1)
        with pytest.raises(ConnectionRefusedError):  # REJECT --reject-with tcp-reset
            socket.create_connection(("198.18.0.10", 26), timeout=1)
        t0 = time.monotonic()
        with pytest.raises(TimeoutError):
            socket.create_connection(("198.18.0.10", 24), timeout=1)
        assert 0.9 < time.monotonic() - t0 < 2
        with pytest.raises(OSError) as err:  # REJECT --reject-with icmp-admin-prohibited
            socket.create_connection(("198.18.0.10", 25), timeout=1)
        assert err.value.errno == errno.EHOSTUNREACH
        with pytest.raises(TimeoutError):  # the dark host answers ARP only
            socket.create_connection(("198.18.0.15", 22), timeout=0.5)
        with socket.create_connection(("2001:db8::10", 80), timeout=1) as s:
            assert s.recv(100) == b"pyscan-lab tcp 80\r\n"


@lab_mark
def test_run_helper_uses_scanner_namespace(netlab: Lab) -> None:
    code = (
        "import socket; s = socket.create_connection(('198.18.0.11', 3306), timeout=1);"
        "print(s.recv(100).decode().strip())"
    )
    res = netlab.run([sys.executable, "-c", code], check=True)
    assert res.stdout.strip() == "pyscan-lab tcp 3306"
    assert "198.18.0.1/24" in netlab.run(["ip", "-o", "addr"], check=True).stdout


@lab_mark
def test_udp_from_scanner_namespace(netlab: Lab) -> None:
    with netlab.scanner_netns():

        def ask(port: int) -> bytes:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.settimeout(0.5)
                s.connect(("198.18.0.10", port))
                s.send(b"")
                return s.recv(100)

        assert ask(53) == b"pyscan-lab udp 53\n"
        with pytest.raises(ConnectionRefusedError):
            ask(54)
        for silent in (55, 56):
            with pytest.raises(TimeoutError):
                ask(silent)


@lab_mark
def test_icmp_rate_limit_is_off_by_default(netlab: Lab) -> None:
    assert netlab.run(["cat", "/proc/sys/net/ipv4/icmp_ratelimit"], host="web").stdout == "0\n"
    refused = 0
    with netlab.scanner_netns():
        socks = []
        for port in range(40000, 40030):  # 30 closed ports at once: more than the ICMP burst
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.connect(("198.18.0.11", port))
            s.send(b"x")
            socks.append(s)
        time.sleep(0.2)
        for s in socks:
            s.settimeout(0.01)
            try:
                s.recv(10)
            except ConnectionRefusedError:
                refused += 1
            except TimeoutError:
                pass
            s.close()
    assert refused == 30


@lab_mark
def test_icmp_echo(netlab: Lab) -> None:
    with netlab.scanner_netns():
        assert _ping("198.18.0.10") == 1
        assert _ping("198.18.0.12", wait=0.5) == 0  # icmp_echo_ignore_all
        assert _ping("198.18.0.15", wait=0.5) == 0  # silent


@lab_mark
def test_lossy_path_delays_and_loses(netlab: Lab) -> None:
    with netlab.scanner_netns():
        t0 = time.monotonic()
        for _ in range(6):  # a lost SYN or SYN-ACK (~10 %) costs a 1 s retransmission: retry
            try:
                with socket.create_connection(("198.18.0.14", 22), timeout=0.8) as s:
                    rtt = time.monotonic() - t0
                    assert s.recv(100) == b"pyscan-lab tcp 22\r\n"  # offloads are off
                break
            except TimeoutError:
                t0 = time.monotonic()
        else:
            pytest.fail("no connection through the forwarder")
        assert rtt >= 0.1  # 50 ms each way
        received = _ping("198.18.0.14", count=200, wait=0.6)
    assert 150 <= received < 200  # about 0.95 ** 2 of them


@lab_mark
def test_offloads_off_on_forwarded_path(netlab: Lab) -> None:
    if not Path("/usr/sbin/ethtool").exists():
        pytest.skip("ethtool not installed")
    out = netlab.run(["ethtool", "-k", "eth0"], host="lossy", check=True).stdout
    assert "tx-checksumming: off" in out
    assert "tcp-segmentation-offload: off" in out


@lab_mark
@pytest.mark.nmap
def test_nmap_agrees_with_truth_tcp(netlab: Lab, nmap_path: str) -> None:
    truth = netlab.truth
    hosts = [a for a, h in truth.hosts.items() if h.up and not h.impaired and ":" not in a]
    ports = sorted({p for a in hosts for (proto, p) in truth.hosts[a].ports if proto == "tcp"})
    plist = ",".join(map(str, ports))
    found = _nmap_xml(netlab, ["-sS", "-Pn", "-p", plist, "--max-retries", "1", *hosts])
    assert set(found) == set(hosts)
    for a in hosts:
        expected = {("tcp", p): truth.hosts[a].state("tcp", p) for p in ports}
        assert found[a] == expected, a


@lab_mark
@pytest.mark.nmap
def test_nmap_agrees_with_truth_udp_and_ipv6(netlab: Lab, nmap_path: str) -> None:
    truth = netlab.truth
    hosts = [a for a, h in truth.hosts.items() if h.up and not h.impaired and ":" not in a]
    ports = sorted({p for a in hosts for (proto, p) in truth.hosts[a].ports if proto == "udp"})
    found = _nmap_xml(
        netlab, ["-sU", "-Pn", "-p", ",".join(map(str, ports)), "--max-retries", "1", *hosts]
    )
    for a in hosts:
        assert found[a] == {("udp", p): truth.hosts[a].state("udp", p) for p in ports}, a
    v6 = truth.hosts["2001:db8::10"]
    plist = ",".join(f"{'T' if proto == 'tcp' else 'U'}:{p}" for (proto, p) in sorted(v6.ports))
    found6 = _nmap_xml(
        netlab, ["-6", "-sS", "-sU", "-Pn", "-p", plist, "--max-retries", "1", "2001:db8::10"]
    )
    assert found6["2001:db8::10"] == v6.ports
    assert v6.ports[("tcp", 27)] == ("filtered", "admin-prohibited")  # no icmp6 host-prohib


@lab_mark
@pytest.mark.nmap
def test_nmap_host_discovery_agrees_with_truth(netlab: Lab, nmap_path: str) -> None:
    res = netlab.run(["nmap", "-sn", "-n", "-oX", "-", "198.18.0.10-15"], timeout=60)
    up = set()
    for host in ET.fromstring(res.stdout).iter("host"):
        status = host.find("status")
        addr = host.find("address[@addrtype='ipv4']")
        assert status is not None
        assert addr is not None
        if status.get("state") == "up":
            up.add(addr.get("addr"))
            assert status.get("reason") == "arp-response"
    assert up == set(netlab.truth.up) - {"2001:db8::10"}


@lab_mark
@pytest.mark.nmap
def test_nmap_through_the_lossy_path(netlab: Lab, nmap_path: str) -> None:
    lossy = netlab.truth.hosts["198.18.0.14"]
    ports = sorted(p for (proto, p) in lossy.ports)
    want = {k for k, v in lossy.ports.items() if v[0] == "open"}
    # At 5 % loss each way nmap itself sometimes loses every try of a probe (seen once in
    # about ten runs), so one exact run out of three is required; a port nmap calls open
    # must always be open.
    exact = False
    for _ in range(3):
        found = _nmap_xml(netlab, ["-sS", "-Pn", "-p", ",".join(map(str, ports)), "198.18.0.14"])
        opened = {k for k, v in found["198.18.0.14"].items() if v[0] == "open"}
        assert opened <= want
        if opened == want:
            exact = True
            break
    assert exact


@lab_mark
@pytest.mark.nmap
def test_large_lab(netlab_factory: Factory, nmap_path: str) -> None:
    cfg = LabConfig.large(60, silent=6, absent=10, network="198.18.7.0/24", seed=5)
    t0 = time.monotonic()
    lab = netlab_factory(cfg)
    assert time.monotonic() - t0 < 5
    for key, default in (("icmp_ratelimit", "1000"), ("icmp_ratemask", "6168")):  # benchmarks
        res = lab.run(["cat", f"/proc/sys/net/ipv4/{key}"], host="farm", check=True)
        assert res.stdout.strip() == default
    res = lab.run(["nmap", "-sn", "-n", "-oG", "-", "198.18.7.2-71"], timeout=60)
    up = {line.split()[1] for line in res.stdout.splitlines() if line.endswith("Status: Up")}
    assert up == set(lab.truth.up)
    sample = [*lab.truth.up[:3], *(a for a, h in lab.truth.hosts.items() if h.silent)][:6]
    found = _nmap_xml(lab, ["-sS", "-Pn", "-p", "22,25,80,81", "--max-retries", "1", *sample])
    for a in sample:
        assert found[a] == {
            ("tcp", p): lab.truth.hosts[a].state("tcp", p) for p in (22, 25, 80, 81)
        }


@lab_mark
def test_impairment_config_reaches_forwarder(netlab_factory: Factory) -> None:
    cfg = LabConfig(
        hosts=[
            HostConfig(
                "slow",
                "198.18.0.20",
                ports=[PortRule("tcp", 7, "open")],
                impairment=Impairment(delay=0.2, loss=0.0),
            )
        ]
    )
    lab = netlab_factory(cfg)
    with lab.scanner_netns():
        t0 = time.monotonic()
        with socket.create_connection(("198.18.0.20", 7), timeout=3) as s:
            assert 0.4 <= time.monotonic() - t0 < 1.5
            assert s.recv(100) == b"pyscan-lab tcp 7\r\n"


@lab_mark
def test_asyncio_inside_scanner_netns(netlab: Lab) -> None:
    async def banner() -> bytes:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("198.18.0.12", 22), 1)
        data = await asyncio.wait_for(reader.readline(), 1)
        writer.close()
        await writer.wait_closed()
        return data

    with netlab.scanner_netns():
        assert asyncio.run(banner()) == b"pyscan-lab tcp 22\r\n"


@lab_mark
def test_detach_then_destroy(netlab_factory: Factory) -> None:
    lab = netlab_factory(
        LabConfig(hosts=[HostConfig("a", "198.18.0.5", ports=[PortRule("udp", 9, "open")])])
    )
    names = lab.namespaces
    state = lab.detach()
    assert not lab.running
    assert set(names) <= set(lab_namespaces())  # survives detach (and the fixture's stop)
    assert sorted(Lab.destroy(state)) == sorted(names)
    assert not set(names) & set(lab_namespaces())
    deadline = time.monotonic() + 3
    pids = [int(p) for p in state["pids"]]  # type: ignore[attr-defined]

    def alive(pid: int) -> bool:  # still our child after detach: a zombie counts as dead
        try:
            return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
        except OSError:
            return False

    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(map(alive, pids))
