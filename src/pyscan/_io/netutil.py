"""Small OS-facing helpers: privileges, the source address for a destination, source ports."""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import random
import socket
from pathlib import Path

import attrs

from pyscan._models import IPAddress
from pyscan.errors import PrivilegeError, ScanError

__all__ = [
    "PortReservation",
    "has_raw_privilege",
    "require_raw",
    "reserve_source_ports",
    "source_address_for",
]

_CAP_NET_RAW = 13


def has_raw_privilege() -> bool:
    """True when this process may open raw sockets (CAP_NET_RAW in its effective set)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("CapEff:"):
                return bool(int(line.split()[1], 16) >> _CAP_NET_RAW & 1)
    except (OSError, ValueError, IndexError):
        pass
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW).close()
    except PermissionError:
        return False
    return True


def require_raw(what: str, alternative: str = "connect_scan (-sT)") -> None:
    """Raise PrivilegeError naming CAP_NET_RAW and the unprivileged alternative."""
    if not has_raw_privilege():
        raise PrivilegeError(
            f"{what} needs raw sockets (CAP_NET_RAW): run as root or grant the capability, "
            f"or use {alternative}, which needs no privilege"
        )


def source_address_for(dst: IPAddress) -> IPAddress:
    """The address the kernel would send from to reach ``dst`` (sends nothing).

    Raises ScanError when there is no route (for instance a lab without a default route).
    """
    family = socket.AF_INET6 if dst.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((str(dst), 9))
        except OSError as exc:
            reason = errno.errorcode.get(exc.errno or 0, "") if exc.errno else ""
            raise ScanError(f"no route to {dst}: {exc.strerror or reason or exc}") from exc
        return ipaddress.ip_address(s.getsockname()[0])


def _ephemeral_range() -> tuple[int, int]:
    try:
        lo, hi = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(lo), int(hi)
    except (OSError, ValueError):
        return 32768, 60999


@attrs.define
class PortReservation:
    """Source ports held by bound sockets so the kernel hands them to nobody else."""

    ports: list[int]
    sockets: list[socket.socket] = attrs.field(factory=list, repr=False)

    def close(self) -> None:
        """Release the ports."""
        for s in self.sockets:
            s.close()
        self.sockets.clear()


def reserve_source_ports(
    count: int,
    *,
    family: int = socket.AF_INET,
    first: int | None = None,
    rng: random.Random | None = None,
) -> PortReservation:
    """Reserve ``count`` consecutive source ports for raw probes.

    The block lies outside the kernel's ephemeral range and is held by bound TCP and UDP
    sockets (never listening: answers to them still reach our raw sockets, and the kernel's
    own connections cannot take the same ports). With ``first`` given (``-g``), that exact
    block is used even if it is taken. Raises ScanError if no free block is found.
    """
    rng = rng or random.Random()
    if first is not None:
        if not 0 <= first <= 65536 - count:
            raise ScanError(f"source port {first} leaves no room for {count} ports")
        res = PortReservation(list(range(first, first + count)))
        with contextlib.suppress(OSError):
            res.sockets = _bind_block(first, count, family)
        return res
    lo, hi = _ephemeral_range()
    windows = [(1024, lo - count), (hi + 1, 65535 - count + 1)]
    windows = [(a, b) for a, b in windows if b > a]
    for _ in range(64):
        a, b = rng.choice(windows)
        start = rng.randrange(a, b)
        try:
            return PortReservation(
                list(range(start, start + count)), _bind_block(start, count, family)
            )
        except OSError:
            continue
    raise ScanError(f"found no free block of {count} source ports")


def _bind_block(start: int, count: int, family: int) -> list[socket.socket]:
    held: list[socket.socket] = []
    any_addr = "::" if family == socket.AF_INET6 else "0.0.0.0"  # noqa: S104 - a bind, not a listener
    try:
        for port in range(start, start + count):
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                s = socket.socket(family, kind)
                held.append(s)
                s.bind((any_addr, port))
    except OSError:
        for s in held:
            s.close()
        raise
    return held
