"""A real network in Linux network namespaces, for integration tests and benchmarks.

How this works::

    scanner ns              switch ns (bridge br0)                target namespaces
    eth0 198.18.0.1 ── ps ──┤                        ├── p0 ── eth0 .10 (listeners, iptables)
                            │                        ├── p1 ── eth0 .11
                            │                        ├── c3 ── b3 ⇄ forwarder ⇄ a3 ── eth0 .14
                            └────────────────────────┘              (delay, loss)

Everything lives in namespaces whose names start with ``<prefix>-<pid>-<random>-`` (unique
per lab, so parallel or leftover labs never collide). Nothing is created in the root
namespace: veth pairs are created inside the switch namespace with their peers sent
straight into the target namespaces; there is no default route anywhere, only the
connected route of the lab network (inside 198.18.0.0/15), so nothing in the lab can reach
the outside world.

A :class:`LabConfig` (attrs values) describes hosts, their addresses, their ports and how
each port behaves (:class:`Behaviour`: a real listener, no listener, or an iptables DROP or
REJECT rule). From it the lab computes its :class:`LabTruth`: for every address, whether it
answers ARP and ICMP echo, and for every configured port the state and reason nmap reports.
Tests assert scan results against that truth; ``tests/lab/test_netlab.py`` checks the truth
itself against nmap.

ICMP rate limiting: by default (``icmp_rate_limited=False``) targets get
``net.ipv4.icmp_ratelimit=0`` and ``icmp_ratemask=0``, so every closed UDP port and every
``REJECT --reject-with icmp-*`` rule answers, deterministically. Benchmarks should use
``icmp_rate_limited=True`` (kernel defaults: about one ICMP error per second per destination
after a small burst), where fast UDP scans see closed ports as open|filtered.

Lifetime: :class:`Lab` is a context manager; it also registers an ``atexit`` hook, and
teardown kills only the processes it started and deletes only the namespaces it created.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import enum
import fcntl
import ipaddress
import json
import os
import re
import secrets
import selectors
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Literal

import attrs

from pyscan.errors import OptionsError, PyscanError

__all__ = [
    "LAB_RANGE",
    "Behaviour",
    "HostConfig",
    "HostTruth",
    "Impairment",
    "Lab",
    "LabConfig",
    "LabSetupError",
    "LabTruth",
    "PortRule",
    "dump_truth",
    "enter_netns",
    "lab_namespaces",
    "unavailable_reason",
]

LAB_RANGE = ipaddress.IPv4Network("198.18.0.0/15")
"""Every lab IPv4 address lies in this benchmarking range (RFC 2544)."""
LAB_RANGE6 = ipaddress.IPv6Network("2001:db8::/32")
NETNS_DIR = Path("/run/netns")
DEFAULT_PREFIX = "pyscanlab"

Proto = Literal["tcp", "udp"]
Expected = tuple[str, str]


class LabSetupError(PyscanError, RuntimeError):
    """The lab could not be built or torn down (a command failed, a helper did not start)."""


class Behaviour(enum.StrEnum):
    """How a target port behaves; the lab makes it so with listeners and iptables rules."""

    OPEN = "open"
    """A real listener: TCP accepts and sends a banner, UDP answers every datagram."""
    OPEN_SILENT = "open-silent"
    """A listener that sends nothing (for UDP nmap then sees open|filtered)."""
    CLOSED = "closed"
    """No listener, no rule: the kernel answers RST (TCP) or ICMP port unreachable (UDP)."""
    DROP = "drop"
    """``iptables -j DROP``."""
    RESET = "reset"
    """``-j REJECT --reject-with tcp-reset`` (TCP only)."""
    PORT_UNREACHABLE = "port-unreach"
    """``-j REJECT --reject-with icmp-port-unreachable``."""
    ADMIN_PROHIBITED = "admin-prohibited"
    """``-j REJECT --reject-with icmp-admin-prohibited``."""
    HOST_PROHIBITED = "host-prohibited"
    """``-j REJECT --reject-with icmp-host-prohibited``."""


_TCP_EXPECTED: dict[Behaviour, Expected] = {
    Behaviour.OPEN: ("open", "syn-ack"),
    Behaviour.OPEN_SILENT: ("open", "syn-ack"),
    Behaviour.CLOSED: ("closed", "reset"),
    Behaviour.DROP: ("filtered", "no-response"),
    Behaviour.RESET: ("closed", "reset"),
    Behaviour.PORT_UNREACHABLE: ("filtered", "port-unreach"),
    Behaviour.ADMIN_PROHIBITED: ("filtered", "admin-prohibited"),
    Behaviour.HOST_PROHIBITED: ("filtered", "host-prohibited"),
}
_UDP_EXPECTED: dict[Behaviour, Expected] = {
    Behaviour.OPEN: ("open", "udp-response"),
    Behaviour.OPEN_SILENT: ("open|filtered", "no-response"),
    Behaviour.CLOSED: ("closed", "port-unreach"),
    Behaviour.DROP: ("open|filtered", "no-response"),
    Behaviour.PORT_UNREACHABLE: ("closed", "port-unreach"),
    Behaviour.ADMIN_PROHIBITED: ("filtered", "admin-prohibited"),
    Behaviour.HOST_PROHIBITED: ("filtered", "host-prohibited"),
}
_SILENT: dict[str, Expected] = {
    "tcp": ("filtered", "no-response"),
    "udp": ("open|filtered", "no-response"),
}
_REJECT_WITH: dict[Behaviour, tuple[str, str]] = {  # (IPv4, IPv6) --reject-with
    Behaviour.RESET: ("tcp-reset", "tcp-reset"),
    Behaviour.PORT_UNREACHABLE: ("icmp-port-unreachable", "icmp6-port-unreachable"),
    Behaviour.ADMIN_PROHIBITED: ("icmp-admin-prohibited", "icmp6-adm-prohibited"),
    Behaviour.HOST_PROHIBITED: ("icmp-host-prohibited", "icmp6-adm-prohibited"),
}


def _check_port(_inst: object, _attr: object, value: int) -> None:
    if not 1 <= value <= 65535:
        raise OptionsError(f"lab port {value!r} is outside 1-65535")


def _check_proto(_inst: object, _attr: object, value: str) -> None:
    if value not in ("tcp", "udp"):
        raise OptionsError(f"lab protocol {value!r} is neither 'tcp' nor 'udp'")


def _check_label(_inst: object, attr: attrs.Attribute[str], value: str) -> None:
    if not re.fullmatch(r"[a-z][a-z0-9]{0,9}", value):
        raise OptionsError(f"lab {attr.name} {value!r}: want 1-10 of [a-z0-9], a letter first")


def _check_fraction(_inst: object, attr: attrs.Attribute[float], value: float) -> None:
    if not 0.0 <= value < (1.0 if attr.name == "loss" else float("inf")):
        raise OptionsError(f"impairment {attr.name} {value!r} is out of range")


def _behaviour(value: str) -> Behaviour:
    try:
        return Behaviour(value)
    except ValueError:
        raise OptionsError(f"unknown lab port behaviour {value!r}") from None


@attrs.frozen
class PortRule:
    """One configured port of a target host."""

    proto: Proto = attrs.field(validator=_check_proto)
    port: int = attrs.field(validator=_check_port)
    behaviour: Behaviour = attrs.field(converter=_behaviour)
    banner: bytes | None = attrs.field(default=None, repr=lambda b: b.hex() if b else repr(b))
    """TCP banner or UDP reply of an OPEN listener (``None``: ``pyscan-lab tcp PORT``)."""

    def __attrs_post_init__(self) -> None:
        if self.proto == "udp" and self.behaviour is Behaviour.RESET:
            raise OptionsError(f"udp port {self.port}: a tcp-reset REJECT needs tcp")

    @property
    def expected(self) -> Expected:
        """``(state, reason)`` as nmap reports this port."""
        table = _TCP_EXPECTED if self.proto == "tcp" else _UDP_EXPECTED
        return table[self.behaviour]

    @property
    def key(self) -> tuple[str, int]:
        """``(proto, port)``."""
        return (self.proto, self.port)


@attrs.frozen
class Impairment:
    """Delay and loss on the path to a host, made by the userspace forwarder."""

    delay: float = attrs.field(default=0.05, validator=_check_fraction)
    """Seconds added to every frame, each direction."""
    loss: float = attrs.field(default=0.05, validator=_check_fraction)
    """Probability that a frame is dropped, each direction."""
    jitter: float = attrs.field(default=0.0, validator=_check_fraction)
    """Extra uniform 0..jitter seconds (reorders frames when non-zero)."""
    seed: int = 1
    """Seed of the forwarder's random generators (loss decisions are reproducible)."""


def _rules(value: Iterable[PortRule]) -> tuple[PortRule, ...]:
    return tuple(value)


def _tuple_of_str(value: Sequence[str] | str) -> tuple[str, ...]:
    return (value,) if isinstance(value, str) else tuple(value)


@attrs.frozen
class HostConfig:
    """A target namespace: one interface with one or many addresses, and its ports."""

    name: str = attrs.field(validator=_check_label)
    """Short label, part of the namespace name."""
    addresses: tuple[str, ...] = attrs.field(converter=_tuple_of_str)
    ports: tuple[PortRule, ...] = attrs.field(default=(), converter=_rules)
    echo: bool = True
    """Answer ICMP echo (``False`` sets ``net.ipv4.icmp_echo_ignore_all=1``)."""
    silent: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    """Addresses (among ``addresses``) that drop every IP packet; they still answer ARP."""
    impairment: Impairment | None = None
    """Put the host behind the delay/loss forwarder."""
    ipv6: str | None = None
    """An address in 2001:db8::/32 (/64 on the link) to give this host, or ``None``."""

    def __attrs_post_init__(self) -> None:
        if not self.addresses:
            raise OptionsError(f"lab host {self.name!r} has no address")
        keys = [rule.key for rule in self.ports]
        if len(set(keys)) != len(keys):
            raise OptionsError(f"lab host {self.name!r} configures a port twice: {keys}")
        stray = set(self.silent) - set(self.addresses)
        if stray:
            raise OptionsError(f"lab host {self.name!r}: silent {sorted(stray)} not its own")
        if self.ipv6 is not None and ipaddress.IPv6Address(self.ipv6) not in LAB_RANGE6:
            raise OptionsError(f"lab host {self.name!r}: IPv6 {self.ipv6!r} not in {LAB_RANGE6}")


@attrs.frozen
class HostTruth:
    """What the lab guarantees about one target address."""

    address: str
    host: str
    """Label of the :class:`HostConfig` (namespace) owning it, ``""`` for absent addresses."""
    arp: bool
    """Answers ARP. nmap as root on the lab segment reports such hosts up (arp-response)."""
    echo: bool
    """Answers ICMP echo requests."""
    silent: bool
    """Drops every IP packet (but ``arp`` is still true)."""
    impaired: bool
    """Reached through the delay/loss forwarder."""
    ports: Mapping[tuple[str, int], Expected]
    """Configured ports: ``(proto, port) -> (state, reason)`` as nmap reports them."""

    @property
    def up(self) -> bool:
        """Host discovery from the lab segment (ARP) finds it."""
        return self.arp

    def state(self, proto: str, port: int) -> Expected:
        """Expected ``(state, reason)`` of any port, configured or not."""
        if not self.arp:
            raise KeyError(f"{self.address} is absent: no port state")
        if (proto, port) in self.ports:
            return self.ports[(proto, port)]
        if self.silent:
            return _SILENT[proto]
        return (
            _TCP_EXPECTED[Behaviour.CLOSED] if proto == "tcp" else _UDP_EXPECTED[Behaviour.CLOSED]
        )


@attrs.frozen
class LabTruth:
    """The configured ground truth of a lab, keyed by address."""

    hosts: Mapping[str, HostTruth]
    """Every target address, absent ones included (``arp=False``)."""
    scanner: str
    icmp_rate_limited: bool
    """``False``: targets answer every ICMP error (deterministic UDP closed ports).
    ``True``: kernel defaults, ~1 ICMP error/s per destination after a burst of ~6."""

    @property
    def up(self) -> tuple[str, ...]:
        """Addresses that answer ARP, in address order."""
        return tuple(a for a, h in self.hosts.items() if h.arp)

    @property
    def down(self) -> tuple[str, ...]:
        """Addresses nobody answers for, in address order."""
        return tuple(a for a, h in self.hosts.items() if not h.arp)

    def ports(self) -> dict[str, dict[tuple[str, int], Expected]]:
        """``{address: {(proto, port): (state, reason)}}`` for every present address."""
        return {a: dict(h.ports) for a, h in self.hosts.items() if h.arp}


def _address_key(text: str) -> tuple[int, int]:
    addr = ipaddress.ip_address(text)
    return (addr.version, int(addr))


def _hosts(value: Iterable[HostConfig]) -> tuple[HostConfig, ...]:
    return tuple(value)


@attrs.frozen
class LabConfig:
    """A whole lab: the scanner, the target hosts, the addresses nobody answers for."""

    hosts: tuple[HostConfig, ...] = attrs.field(converter=_hosts)
    absent: tuple[str, ...] = attrs.field(default=(), converter=_tuple_of_str)
    """Addresses in the network that nobody answers (not even ARP)."""
    network: str = "198.18.0.0/24"
    scanner: str = "198.18.0.1"
    scanner_ipv6: str = "2001:db8::1"
    """Used only when some host has an IPv6 address."""
    icmp_rate_limited: bool = False
    """See the module docstring: ``False`` for tests, ``True`` for benchmarks."""
    prefix: str = attrs.field(default=DEFAULT_PREFIX, validator=_check_label)

    def __attrs_post_init__(self) -> None:
        net = ipaddress.IPv4Network(self.network)
        if not net.subnet_of(LAB_RANGE):
            raise OptionsError(f"lab network {self.network!r} is not inside {LAB_RANGE}")
        names = [h.name for h in self.hosts]
        if len(set(names)) != len(names):
            raise OptionsError(f"lab host names repeat: {names}")
        seen: set[str] = set()
        everything = [self.scanner, *self.absent, *(a for h in self.hosts for a in h.addresses)]
        for text in everything:
            addr = ipaddress.IPv4Address(text)
            if addr not in net or addr in (net.network_address, net.broadcast_address):
                raise OptionsError(f"lab address {text!r} is not a host of {self.network}")
            if text in seen:
                raise OptionsError(f"lab address {text!r} is used twice")
            seen.add(text)

    @property
    def prefixlen(self) -> int:
        """Prefix length of the lab network."""
        return ipaddress.IPv4Network(self.network).prefixlen

    @property
    def uses_ipv6(self) -> bool:
        """Some host has an IPv6 address."""
        return any(h.ipv6 for h in self.hosts)

    def truth(self) -> LabTruth:
        """The ground truth this configuration produces."""
        hosts: dict[str, HostTruth] = {}
        for h in self.hosts:
            ports4 = {rule.key: rule.expected for rule in h.ports}
            ports6 = {  # ICMPv6 has no host-prohibited code: the lab rejects adm-prohibited
                rule.key: ("filtered", "admin-prohibited")
                if rule.behaviour is Behaviour.HOST_PROHIBITED
                else rule.expected
                for rule in h.ports
            }
            addrs = [*h.addresses, *([h.ipv6] if h.ipv6 else [])]
            for address in addrs:
                ports = ports6 if ":" in address else ports4
                silent = address in h.silent
                hosts[address] = HostTruth(
                    address=address,
                    host=h.name,
                    arp=True,
                    echo=h.echo and not silent,
                    silent=silent,
                    impaired=h.impairment is not None,
                    ports={k: _SILENT[k[0]] for k in ports} if silent else dict(ports),
                )
        for address in self.absent:
            hosts[address] = HostTruth(address, "", False, False, False, False, {})
        ordered = dict(sorted(hosts.items(), key=lambda item: _address_key(item[0])))
        return LabTruth(ordered, self.scanner, self.icmp_rate_limited)

    @classmethod
    def default(cls) -> LabConfig:
        """The small lab used by tests: comes up in well under a second.

        ====== =============== ==================================================
        name   address         what it is
        ====== =============== ==================================================
        web    198.18.0.10     every port behaviour; IPv6 2001:db8::10
        db     198.18.0.11     a few open/closed/filtered ports
        noping 198.18.0.12     ignores ICMP echo, ports answer
        (none) 198.18.0.13     absent: nobody answers, not even ARP
        lossy  198.18.0.14     behind the forwarder: 50 ms each way, 5 % loss
        dark   198.18.0.15     answers ARP only, drops every IP packet
        ====== =============== ==================================================
        """
        b = Behaviour
        web = HostConfig(
            "web",
            "198.18.0.10",
            ports=(
                PortRule("tcp", 22, b.OPEN, b"SSH-2.0-pyscanlab_1.0\r\n"),
                PortRule("tcp", 23, b.CLOSED),
                PortRule("tcp", 24, b.DROP),
                PortRule("tcp", 25, b.ADMIN_PROHIBITED),
                PortRule("tcp", 26, b.RESET),
                PortRule("tcp", 27, b.HOST_PROHIBITED),
                PortRule("tcp", 28, b.PORT_UNREACHABLE),
                PortRule("tcp", 80, b.OPEN),
                PortRule("tcp", 81, b.OPEN_SILENT),
                PortRule("udp", 53, b.OPEN),
                PortRule("udp", 54, b.CLOSED),
                PortRule("udp", 55, b.DROP),
                PortRule("udp", 56, b.OPEN_SILENT),
                PortRule("udp", 57, b.ADMIN_PROHIBITED),
                PortRule("udp", 58, b.HOST_PROHIBITED),
            ),
            ipv6="2001:db8::10",
        )
        db = HostConfig(
            "db",
            "198.18.0.11",
            ports=(
                PortRule("tcp", 22, b.OPEN),
                PortRule("tcp", 443, b.DROP),
                PortRule("tcp", 3306, b.OPEN),
                PortRule("tcp", 5432, b.CLOSED),
                PortRule("udp", 161, b.CLOSED),
                PortRule("udp", 123, b.OPEN),
            ),
        )
        noping = HostConfig(
            "noping",
            "198.18.0.12",
            echo=False,
            ports=(
                PortRule("tcp", 22, b.OPEN),
                PortRule("tcp", 80, b.CLOSED),
                PortRule("udp", 53, b.OPEN),
            ),
        )
        lossy = HostConfig(
            "lossy",
            "198.18.0.14",
            impairment=Impairment(delay=0.05, loss=0.05, seed=1),
            ports=(
                PortRule("tcp", 22, b.OPEN),
                PortRule("tcp", 80, b.OPEN),
                PortRule("tcp", 443, b.CLOSED),
                PortRule("tcp", 8080, b.DROP),
            ),
        )
        dark = HostConfig("dark", "198.18.0.15", silent="198.18.0.15", ports=())
        return cls(hosts=(web, db, noping, lossy, dark), absent=("198.18.0.13",))

    @classmethod
    def large(
        cls,
        live: int = 200,
        *,
        silent: int = 20,
        absent: int = 34,
        tcp_open: Sequence[int] = (22, 80, 443),
        tcp_drop: Sequence[int] = (25,),
        udp_open: Sequence[int] = (53,),
        network: str = "198.18.0.0/24",
        seed: int = 0,
        icmp_rate_limited: bool = True,
        impairment: Impairment | None = None,
    ) -> LabConfig:
        """A benchmark lab: ``live`` addresses owned by one namespace (``silent`` of them drop
        everything), ``absent`` more addresses nobody answers, chosen by a seeded shuffle of
        the network after the scanner's address. Ports not listed are closed."""
        import random  # noqa: PLC0415 - only this factory needs it

        net = ipaddress.IPv4Network(network)
        scanner = net.network_address + 1
        pool = [str(a) for a in net.hosts() if a != scanner]
        if live + absent > len(pool) or not 0 <= silent <= live or live < 1:
            raise OptionsError(f"large lab: {live} live + {absent} absent do not fit {network}")
        rng = random.Random(seed)
        chosen = pool[: live + absent]
        rng.shuffle(chosen)
        live_addrs = sorted(chosen[:live], key=_address_key)
        absent_addrs = sorted(chosen[live:], key=_address_key)
        silent_addrs = sorted(rng.sample(live_addrs, silent), key=_address_key)
        rules = [
            *(PortRule("tcp", p, Behaviour.OPEN) for p in tcp_open),
            *(PortRule("tcp", p, Behaviour.DROP) for p in tcp_drop),
            *(PortRule("udp", p, Behaviour.OPEN) for p in udp_open),
        ]
        group = HostConfig(
            "farm", live_addrs, ports=rules, silent=silent_addrs, impairment=impairment
        )
        return cls(
            hosts=(group,),
            absent=absent_addrs,
            network=network,
            scanner=str(scanner),
            icmp_rate_limited=icmp_rate_limited,
        )


# --- namespaces and setns -------------------------------------------------------------------

_CLONE_NEWNET = 0x40000000
_libc: ctypes.CDLL | None = None


def _setns(fd: int) -> None:
    global _libc  # noqa: PLW0603 - loaded once, lazily
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
    if _libc.setns(fd, _CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")


@contextlib.contextmanager
def enter_netns(name_or_path: str) -> Iterator[None]:
    """Move the current thread into a network namespace for the ``with`` block.

    Network namespaces are per thread: sockets this thread creates inside the block live
    in that namespace (and stay there after it); so do threads and processes it starts
    inside the block. Other, existing threads are unaffected. The thread's original
    namespace is restored on exit, even on error.
    """
    path = name_or_path if "/" in name_or_path else str(NETNS_DIR / name_or_path)
    original = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        target = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            _setns(target)
        finally:
            os.close(target)
        try:
            yield
        finally:
            _setns(original)
    finally:
        os.close(original)


def _write_sysctls(netns: str, values: Mapping[str, str]) -> None:
    # /proc/sys/net/* follows the writing thread's network namespace.
    with enter_netns(netns):
        for key, value in values.items():
            path = Path("/proc/sys") / key.replace(".", "/")
            if path.exists():
                path.write_text(value)


_SIOCETHTOOL = 0x8946
_ETHTOOL_OFF = (0x17, 0x1F, 0x24, 0x2C)  # STXCSUM, STSO, SGSO, SGRO


def _offloads_off(netns: str, ifnames: Sequence[str]) -> None:
    """``ethtool -K IF tx off tso off gso off gro off`` in a namespace.

    Uses the ethtool binary when installed (it also clears newer TSO variants through
    netlink); otherwise the legacy SIOCETHTOOL ioctls, which cover checksum, TSO, GSO, GRO.
    """
    ethtool = shutil.which("ethtool")
    if ethtool is not None:
        for ifname in ifnames:
            argv = ["ip", "netns", "exec", netns, ethtool, "-K", ifname]
            argv += ["tx", "off", "tso", "off", "gso", "off", "gro", "off"]
            res = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=30)
            if res.returncode != 0:
                raise LabSetupError(f"ethtool -K {ifname} in {netns}: {res.stderr.strip()}")
        return
    with enter_netns(netns), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for ifname in ifnames:
            for cmd in _ETHTOOL_OFF:
                value = ctypes.create_string_buffer(struct.pack("=II", cmd, 0), 8)
                ifreq = struct.pack("16sP", ifname.encode(), ctypes.addressof(value))
                fcntl.ioctl(sock.fileno(), _SIOCETHTOOL, ifreq.ljust(40, b"\0"))


def lab_namespaces(prefix: str = DEFAULT_PREFIX) -> list[str]:
    """Names of existing namespaces that belong to some lab with this prefix."""
    try:
        names = sorted(p.name for p in NETNS_DIR.iterdir())
    except FileNotFoundError:
        return []
    return [n for n in names if n.startswith(prefix + "-")]


def unavailable_reason() -> str | None:
    """Why a lab cannot be built here (a skip reason), or ``None`` when it can."""
    if not sys.platform.startswith("linux"):
        return "the namespace lab needs Linux"
    if os.geteuid() != 0:
        return "the namespace lab needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN)"
    for tool, package in (("ip", "iproute2"), ("iptables-restore", "iptables")):
        if shutil.which(tool) is None:
            return f"the namespace lab needs {tool!r} (Debian package {package})"
    probe = subprocess.run(
        ["ip", "netns", "list"], capture_output=True, text=True, check=False, timeout=10
    )
    if probe.returncode != 0:
        return f"'ip netns' does not work here: {probe.stderr.strip()}"
    if not Path("/proc/thread-self/ns/net").exists():
        return "/proc/thread-self/ns/net is missing"
    return None


# --- the lab --------------------------------------------------------------------------------

_HERE = Path(__file__).resolve().parent


def _ranges(addresses: Sequence[str]) -> list[tuple[str, str]]:
    """Contiguous runs of IPv4 addresses as ``(first, last)``."""
    nums = sorted(int(ipaddress.IPv4Address(a)) for a in addresses)
    runs: list[list[int]] = []
    for n in nums:
        if runs and runs[-1][1] + 1 == n:
            runs[-1][1] = n
        else:
            runs.append([n, n])
    return [(str(ipaddress.IPv4Address(a)), str(ipaddress.IPv4Address(b))) for a, b in runs]


def _iptables_rules(host: HostConfig, v6: bool) -> str:
    lines = ["*filter", ":INPUT ACCEPT [0:0]", ":FORWARD ACCEPT [0:0]", ":OUTPUT ACCEPT [0:0]"]
    if not v6:
        for first, last in _ranges(host.silent):
            match = f"-d {first}" if first == last else f"-m iprange --dst-range {first}-{last}"
            lines.append(f"-A INPUT {match} -j DROP")
    for rule in host.ports:
        head = f"-A INPUT -p {rule.proto} -m {rule.proto} --dport {rule.port}"
        if rule.behaviour is Behaviour.DROP:
            lines.append(f"{head} -j DROP")
        elif rule.behaviour in _REJECT_WITH:
            lines.append(f"{head} -j REJECT --reject-with {_REJECT_WITH[rule.behaviour][v6]}")
    lines.append("COMMIT")
    return "\n".join(lines) + "\n"


def _listener_args(host: HostConfig) -> list[str]:
    args: list[str] = []
    for rule in host.ports:
        if rule.behaviour is Behaviour.OPEN:
            banner = "" if rule.banner is None else "=" + rule.banner.hex()
            args += [f"--{rule.proto}", f"{rule.port}{banner}"]
        elif rule.behaviour is Behaviour.OPEN_SILENT:
            args += (
                ["--tcp", f"{rule.port}="]
                if rule.proto == "tcp"
                else ["--udp-silent", str(rule.port)]
            )
    if args and host.ipv6:
        args.append("--ipv6")
    return args


@attrs.define
class _Proc:
    popen: subprocess.Popen[bytes]
    what: str


@attrs.define(eq=False)
class Lab:
    """A running namespace lab. Use as a context manager, or call :meth:`start` / :meth:`stop`.

    >>> with Lab(LabConfig.default()) as lab:              # doctest: +SKIP
    ...     lab.run(["nmap", "-sS", "-n", "-Pn", "-p22", "198.18.0.10"])
    ...     with lab.scanner_netns():
    ...         socket.create_connection(("198.18.0.10", 22), timeout=1)
    """

    config: LabConfig = attrs.field(factory=LabConfig.default)
    id: str = attrs.field(init=False)
    """``<prefix>-<pid>-<random>``: the common prefix of this lab's namespace names."""
    truth: LabTruth = attrs.field(init=False)
    timings: dict[str, float] = attrs.field(init=False, factory=dict)
    """Seconds spent in ``setup`` and ``teardown``."""
    _created: list[str] = attrs.field(init=False, factory=list)
    _procs: list[_Proc] = attrs.field(init=False, factory=list)
    _running: bool = attrs.field(init=False, default=False)
    _lock: threading.Lock = attrs.field(init=False, factory=threading.Lock)

    def __attrs_post_init__(self) -> None:
        self.id = f"{self.config.prefix}-{os.getpid()}-{secrets.token_hex(2)}"
        self.truth = self.config.truth()

    # namespace names
    @property
    def scanner_ns(self) -> str:
        """Name of the scanner's namespace."""
        return f"{self.id}-sc"

    @property
    def switch_ns(self) -> str:
        """Name of the namespace holding the bridge (and the forwarders)."""
        return f"{self.id}-sw"

    def host_ns(self, host: str) -> str:
        """Name of a target host's namespace, by its :class:`HostConfig` label."""
        if host not in {h.name for h in self.config.hosts}:
            raise KeyError(f"no lab host named {host!r}")
        return f"{self.id}-h-{host}"

    @property
    def namespaces(self) -> list[str]:
        """Every namespace of this lab (created or to be created)."""
        return [self.switch_ns, self.scanner_ns, *(self.host_ns(h.name) for h in self.config.hosts)]

    @property
    def scanner_address(self) -> str:
        """The scanner's IPv4 address."""
        return self.config.scanner

    @property
    def interface(self) -> str:
        """The scanner's interface name inside its namespace."""
        return "eth0"

    @property
    def pids(self) -> list[int]:
        """Process ids of the helpers (listeners, forwarders, :meth:`popen`) this lab started."""
        return [p.popen.pid for p in self._procs]

    @property
    def running(self) -> bool:
        """Set up and not yet torn down."""
        return self._running

    # lifetime
    def __enter__(self) -> Lab:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Lab:
        """Build the lab; on any failure tear down what was built and raise."""
        reason = unavailable_reason()
        if reason is not None:
            raise LabSetupError(reason)
        if self.config.uses_ipv6 and shutil.which("ip6tables-restore") is None:
            raise LabSetupError("an IPv6 lab host needs ip6tables-restore (package iptables)")
        t0 = time.monotonic()
        atexit.register(self.stop)
        self._running = True
        try:
            self._build()
        except BaseException:
            self.stop()
            raise
        self.timings["setup"] = time.monotonic() - t0
        return self

    def stop(self) -> None:
        """Tear down: kill the processes this lab started, delete its namespaces. Idempotent."""
        with self._lock:
            if not self._running:
                return
            t0 = time.monotonic()
            errors: list[str] = []
            for proc in self._procs:
                if proc.popen.poll() is None:
                    with contextlib.suppress(ProcessLookupError):
                        proc.popen.send_signal(signal.SIGTERM)
            for proc in self._procs:
                _terminate(proc.popen)
            self._procs.clear()
            existing = [n for n in self._created if (NETNS_DIR / n).exists()]
            if existing:
                script = "".join(f"netns del {n}\n" for n in existing)
                res = subprocess.run(
                    ["ip", "-force", "-batch", "-"],
                    input=script,
                    capture_output=True,
                    text=True,
                    check=False,
                    timeout=30,
                )
                if res.returncode != 0:
                    errors.append(res.stderr.strip())
            self._created.clear()
            self._running = False
            atexit.unregister(self.stop)
            self.timings["teardown"] = time.monotonic() - t0
            if errors:
                raise LabSetupError(f"lab {self.id} teardown: {'; '.join(errors)}")

    def detach(self) -> dict[str, object]:
        """Forget the lab without tearing it down (for ``scripts/netlab up``).

        Returns the state :meth:`destroy` needs later: namespace names and process ids.
        """
        state: dict[str, object] = {
            "id": self.id,
            "namespaces": list(self._created),
            "pids": [p.popen.pid for p in self._procs],
            "scanner_ns": self.scanner_ns,
            "truth": _truth_json(self.truth),
        }
        self._procs.clear()
        self._created.clear()
        self._running = False
        atexit.unregister(self.stop)
        return state

    @staticmethod
    def destroy(state: Mapping[str, object]) -> list[str]:
        """Tear down a detached lab from its :meth:`detach` state. Returns what was deleted.

        A process id is killed only if it is still a process of that lab (its command line
        carries the lab id); only the recorded namespaces are deleted.
        """
        lab_id = str(state["id"])
        pids = state.get("pids", [])
        names = state.get("namespaces", [])
        assert isinstance(pids, list)
        assert isinstance(names, list)
        for pid in pids:
            try:
                cmdline = Path(f"/proc/{int(pid)}/cmdline").read_bytes()
            except OSError:
                continue
            if lab_id.encode() in cmdline:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(int(pid), signal.SIGTERM)
        deleted = []
        for name in names:
            if str(name).startswith(lab_id + "-") and (NETNS_DIR / str(name)).exists():
                subprocess.run(["ip", "netns", "del", str(name)], check=False, timeout=30)
                deleted.append(str(name))
        return deleted

    # running things in the lab
    def netns_argv(self, argv: Sequence[str], host: str | None = None) -> list[str]:
        """``ip netns exec <ns> argv``: the scanner's namespace, or a target host's by label."""
        ns = self.scanner_ns if host is None else self.host_ns(host)
        return ["ip", "netns", "exec", ns, *argv]

    def run(
        self,
        argv: Sequence[str],
        *,
        host: str | None = None,
        timeout: float | None = 60.0,
        check: bool = False,
        input: str | None = None,  # noqa: A002 - mirrors subprocess.run
    ) -> subprocess.CompletedProcess[str]:
        """Run a command in the scanner's namespace (or ``host``'s), capturing text output."""
        self._require_running()
        return subprocess.run(
            self.netns_argv(argv, host),
            input=input,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=check,
        )

    def popen(
        self, argv: Sequence[str], *, host: str | None = None, stdout: int | None = None
    ) -> subprocess.Popen[bytes]:
        """Start a background command in the lab; teardown kills it if still running."""
        self._require_running()
        proc = subprocess.Popen(
            self.netns_argv(argv, host),
            stdout=stdout,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        self._procs.append(_Proc(proc, " ".join(argv)))
        return proc

    @contextlib.contextmanager
    def scanner_netns(self) -> Iterator[None]:
        """Move the current thread into the scanner's namespace (see :func:`enter_netns`)."""
        self._require_running()
        with enter_netns(self.scanner_ns):
            yield

    @contextlib.contextmanager
    def host_netns(self, host: str) -> Iterator[None]:
        """Move the current thread into a target host's namespace."""
        self._require_running()
        with enter_netns(self.host_ns(host)):
            yield

    def describe(self) -> str:
        """A human-readable summary: namespaces, addresses, port truth."""
        lines = [f"lab {self.id}: scanner {self.scanner_address} in {self.scanner_ns}"]
        for address, h in self.truth.hosts.items():
            flags = [
                "up" if h.arp else "absent",
                *(["no-echo"] if h.arp and not h.echo else []),
                *(["silent"] if h.silent else []),
                *(["impaired"] if h.impaired else []),
            ]
            ports = " ".join(f"{p}/{proto}={s[0]}" for (proto, p), s in sorted(h.ports.items()))
            lines.append(f"  {address:<15} {h.host or '-':<8} {','.join(flags):<24} {ports}")
        return "\n".join(lines)

    # internals
    def _require_running(self) -> None:
        if not self._running:
            raise LabSetupError(f"lab {self.id} is not running")

    def _ip_batch(self, ns: str | None, commands: Sequence[str]) -> None:
        argv = ["ip", "-batch", "-"] if ns is None else ["ip", "-n", ns, "-batch", "-"]
        res = subprocess.run(
            argv,
            input="".join(c + "\n" for c in commands),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        if res.returncode != 0:
            where = ns or "root namespace (netns add)"
            raise LabSetupError(f"lab {self.id}: ip batch in {where} failed: {res.stderr.strip()}")

    def _build(self) -> None:
        cfg = self.config
        ipv6 = Path("/proc/sys/net/ipv6").exists()
        if cfg.uses_ipv6 and not ipv6:
            raise LabSetupError("an IPv6 lab host needs a kernel with IPv6")
        # 1. namespaces (a name in /run/netns, nothing in the root network namespace)
        for name in self.namespaces:
            if (NETNS_DIR / name).exists():
                raise LabSetupError(f"namespace {name!r} already exists")
        self._created.extend(self.namespaces)
        self._ip_batch(None, [f"netns add {n}" for n in self.namespaces])
        # 2. sysctls, before interfaces appear (IPv6 defaults apply to new interfaces)
        v6_hosts = {h.name for h in self.config.hosts if h.ipv6}
        for ns, host in [
            (self.switch_ns, None),
            (self.scanner_ns, None),
            *((self.host_ns(h.name), h) for h in cfg.hosts),
        ]:
            values: dict[str, str] = {}
            want_v6 = (ns == self.scanner_ns and cfg.uses_ipv6) or (
                host is not None and host.name in v6_hosts
            )
            if ipv6:
                for scope in ("all", "default"):
                    values[f"net.ipv6.conf.{scope}.disable_ipv6"] = "0" if want_v6 else "1"
                    if want_v6:
                        values[f"net.ipv6.conf.{scope}.accept_dad"] = "0"
                        values[f"net.ipv6.conf.{scope}.accept_ra"] = "0"
                        values[f"net.ipv6.conf.{scope}.router_solicitations"] = "0"
            if host is not None:
                values["net.ipv4.icmp_echo_ignore_all"] = "0" if host.echo else "1"
                if not cfg.icmp_rate_limited:
                    values["net.ipv4.icmp_ratelimit"] = "0"
                    values["net.ipv4.icmp_ratemask"] = "0"
                    if ipv6:
                        values["net.ipv6.icmp.ratelimit"] = "0"
            _write_sysctls(ns, values)
        # 3. switch: bridge, veth pairs with the peers sent straight into their namespaces
        sw = [
            "link set lo up",
            "link add br0 type bridge stp_state 0 forward_delay 0",
            "link set br0 up",
            f"link add ps type veth peer name eth0 netns {self.scanner_ns}",
            "link set ps master br0 up",
        ]
        offload_sw: list[str] = []
        impaired: list[tuple[HostConfig, str, str]] = []
        for i, h in enumerate(cfg.hosts):
            ns = self.host_ns(h.name)
            if h.impairment is None:
                sw += [
                    f"link add p{i} type veth peer name eth0 netns {ns}",
                    f"link set p{i} master br0 up",
                ]
            else:
                a, b, c = f"a{i}", f"b{i}", f"c{i}"
                sw += [
                    f"link add {a} type veth peer name eth0 netns {ns}",
                    f"link add {b} type veth peer name {c}",
                    f"link set {c} master br0 up",
                    f"link set {a} up",
                    f"link set {b} up",
                ]
                offload_sw += [a, b, c]
                impaired.append((h, a, b))
        self._ip_batch(self.switch_ns, sw)
        # 4. addresses: connected routes only, never a default route
        plen = cfg.prefixlen
        scanner_cmds = ["link set lo up", f"addr add {cfg.scanner}/{plen} dev eth0"]
        if cfg.uses_ipv6:
            scanner_cmds.append(f"addr add {cfg.scanner_ipv6}/64 dev eth0 nodad")
        self._ip_batch(self.scanner_ns, [*scanner_cmds, "link set eth0 up"])
        for h in cfg.hosts:
            cmds = ["link set lo up", *(f"addr add {a}/{plen} dev eth0" for a in h.addresses)]
            if h.ipv6:
                cmds.append(f"addr add {h.ipv6}/64 dev eth0 nodad")
            self._ip_batch(self.host_ns(h.name), [*cmds, "link set eth0 up"])
        # 5. offloads off on every interface whose frames cross a forwarder
        if impaired:
            _offloads_off(self.switch_ns, offload_sw)
            _offloads_off(self.scanner_ns, ["eth0"])
            for h, _, _ in impaired:
                _offloads_off(self.host_ns(h.name), ["eth0"])
        # 6. firewall rules
        for h in cfg.hosts:
            if not h.silent and not any(
                r.behaviour in _REJECT_WITH or r.behaviour is Behaviour.DROP for r in h.ports
            ):
                continue
            tools = [("iptables-restore", False)] + (
                [("ip6tables-restore", True)] if h.ipv6 else []
            )
            for tool, v6 in tools:
                res = self.run([tool], host=h.name, input=_iptables_rules(h, v6), timeout=30)
                if res.returncode != 0:
                    raise LabSetupError(f"lab {self.id}: {tool} in {h.name}: {res.stderr.strip()}")
        # 7. helper processes: listeners and forwarders, started together, awaited together
        starting: list[_Proc] = []
        for h in cfg.hosts:
            args = _listener_args(h)
            if args:
                argv = [sys.executable, str(_HERE / "_listener.py"), *args, "--tag", self.id]
                starting.append(self._spawn(argv, self.host_ns(h.name), f"listener {h.name}"))
        for h, a, b in impaired:
            imp = h.impairment
            assert imp is not None
            argv = [
                sys.executable,
                str(_HERE / "_forwarder.py"),
                a,
                b,
                f"--delay={imp.delay}",
                f"--loss={imp.loss}",
                f"--jitter={imp.jitter}",
                f"--seed={imp.seed}",
                f"--tag={self.id}",
            ]
            starting.append(self._spawn(argv, self.switch_ns, f"forwarder {h.name}"))
        self._await_ready(starting, timeout=15.0)

    def _spawn(self, argv: list[str], ns: str, what: str) -> _Proc:
        popen = subprocess.Popen(
            ["ip", "netns", "exec", ns, *argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )
        proc = _Proc(popen, what)
        self._procs.append(proc)
        return proc

    def _await_ready(self, procs: list[_Proc], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        sel = selectors.DefaultSelector()
        for proc in procs:
            assert proc.popen.stdout is not None
            sel.register(proc.popen.stdout, selectors.EVENT_READ, proc)
        pending = set(range(len(procs)))
        index = {id(p): i for i, p in enumerate(procs)}
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                names = ", ".join(procs[i].what for i in pending)
                raise LabSetupError(f"lab {self.id}: {names} did not start within {timeout}s")
            for key, _ in sel.select(left):
                proc = key.data
                assert isinstance(proc, _Proc)
                assert proc.popen.stdout is not None
                line = proc.popen.stdout.readline()
                sel.unregister(proc.popen.stdout)
                if line.strip() != b"ready":
                    proc.popen.wait(5)
                    err = (
                        proc.popen.stderr.read().decode(errors="replace")
                        if proc.popen.stderr
                        else ""
                    )
                    raise LabSetupError(f"lab {self.id}: {proc.what} failed: {err.strip()}")
                pending.discard(index[id(proc)])
        sel.close()
        for proc in procs:  # they print nothing more; do not keep pipes that could fill
            for stream in (proc.popen.stdout, proc.popen.stderr):
                if stream is not None:
                    stream.close()


def _terminate(popen: subprocess.Popen[bytes]) -> None:
    if popen.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            popen.send_signal(signal.SIGTERM)
        try:
            popen.wait(2)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                popen.kill()
            popen.wait(5)
    for stream in (popen.stdout, popen.stderr):
        if stream is not None:
            stream.close()


def _truth_json(truth: LabTruth) -> dict[str, object]:
    return {
        "scanner": truth.scanner,
        "icmp_rate_limited": truth.icmp_rate_limited,
        "hosts": {
            a: {
                "host": h.host,
                "arp": h.arp,
                "echo": h.echo,
                "silent": h.silent,
                "impaired": h.impaired,
                "ports": {f"{p}/{proto}": list(s) for (proto, p), s in sorted(h.ports.items())},
            }
            for a, h in truth.hosts.items()
        },
    }


def dump_truth(truth: LabTruth) -> str:
    """The truth as JSON text (ports keyed ``"22/tcp"``)."""
    return json.dumps(_truth_json(truth), indent=2)
