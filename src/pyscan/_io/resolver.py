"""Asynchronous name resolution with aiodns: forward lookups of target names, reverse DNS.

Loopback addresses and names in the hosts file are answered from the hosts file alone: no
DNS server is ever asked about them. Everything else goes to the configured servers (or
``dns_servers``), concurrently, bounded by a semaphore and a per-query timeout. DNS
failures become :class:`~pyscan.errors.ResolveError` for forward lookups and simply "no
name" for reverse lookups, as in nmap.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pyscan._models import IPAddress
from pyscan.errors import ResolveError

if TYPE_CHECKING:
    import aiodns

# aiodns (and pycares under it) is imported on the first question to a DNS server: scans of
# addresses, loopback and hosts-file names never load it.

__all__ = ["HostsFile", "Resolver"]


class HostsFile:
    """The static name table (``/etc/hosts`` format)."""

    def __init__(self, text: str = "") -> None:
        self.by_name: dict[str, list[IPAddress]] = {}
        self.by_addr: dict[IPAddress, str] = {}
        for line in text.splitlines():
            fields = line.split("#", 1)[0].split()
            if len(fields) < 2:
                continue
            try:
                addr = ipaddress.ip_address(fields[0].split("%", 1)[0])
            except ValueError:
                continue
            for name in fields[1:]:
                self.by_name.setdefault(name.lower(), []).append(addr)
            self.by_addr.setdefault(addr, fields[1])

    @classmethod
    def system(cls, path: str = "/etc/hosts") -> HostsFile:
        """The machine's hosts file (empty if unreadable)."""
        try:
            return cls(Path(path).read_text(errors="replace"))
        except OSError:
            return cls()


def _is_local(addr: IPAddress) -> bool:
    return addr.is_loopback or addr.is_unspecified


class Resolver:
    """Forward and reverse lookups for one scan; create inside the running loop."""

    def __init__(
        self,
        nameservers: Sequence[str] | None = None,
        *,
        timeout: float = 3.0,
        concurrency: int = 64,
        hosts: HostsFile | None = None,
    ) -> None:
        self.hosts = hosts if hosts is not None else HostsFile.system()
        self.timeout = timeout
        self._nameservers = list(nameservers) if nameservers else None
        self._dns: aiodns.DNSResolver | None = None
        self._limit = asyncio.Semaphore(concurrency)

    def _client(self) -> aiodns.DNSResolver:
        import aiodns  # noqa: PLC0415 - see the module comment

        if self._dns is None:
            self._dns = aiodns.DNSResolver(
                nameservers=self._nameservers, timeout=self.timeout, tries=2
            )
        return self._dns

    async def close(self) -> None:
        """Release the c-ares channel."""
        if self._dns is not None:
            dns, self._dns = self._dns, None
            close = getattr(dns, "close", None)
            if close is not None:
                result = close()
                if asyncio.iscoroutine(result):
                    await result

    async def resolve(self, name: str, *, ipv6: bool = False) -> list[IPAddress]:
        """The addresses of ``name`` (of one family), or ResolveError."""
        local = self.hosts.by_name.get(name.lower().rstrip("."))
        want = 6 if ipv6 else 4
        if local:
            found = [a for a in local if a.version == want]
            if found:
                return found
        import aiodns  # noqa: PLC0415 - see the module comment

        family = socket.AF_INET6 if ipv6 else socket.AF_INET
        async with self._limit:
            try:
                async with asyncio.timeout(self.timeout * 2):
                    result = await self._client().getaddrinfo(name, family=family)
            except (aiodns.error.DNSError, TimeoutError) as exc:
                raise ResolveError(f"failed to resolve {name!r}: {_dns_reason(exc)}") from exc
        addrs: list[IPAddress] = []
        for node in result.nodes:
            raw = node.addr[0]
            addr = ipaddress.ip_address(raw.decode() if isinstance(raw, bytes) else raw)
            if addr not in addrs:
                addrs.append(addr)
        if not addrs:
            family_name = "IPv6" if ipv6 else "IPv4"
            raise ResolveError(f"failed to resolve {name!r}: no {family_name} address")
        return addrs

    async def resolve_all(
        self, names: Iterable[str], *, ipv6: bool = False
    ) -> dict[str, list[IPAddress]]:
        """Resolve many names concurrently; the first failure raises ResolveError."""
        names = list(dict.fromkeys(names))
        results = await asyncio.gather(*(self.resolve(n, ipv6=ipv6) for n in names))
        return dict(zip(names, results, strict=True))

    async def reverse(self, addr: IPAddress) -> str | None:
        """The PTR name of ``addr``, or None (no name, timeout, server failure)."""
        name = self.hosts.by_addr.get(addr)
        if name is not None or _is_local(addr):
            return name
        import aiodns  # noqa: PLC0415 - see the module comment

        async with self._limit:
            try:
                async with asyncio.timeout(self.timeout * 2):
                    result = await self._client().gethostbyaddr(str(addr))
            except (aiodns.error.DNSError, TimeoutError):
                return None
        name = getattr(result, "name", None)
        return str(name) if name else None

    async def reverse_all(self, addrs: Iterable[IPAddress]) -> dict[IPAddress, str]:
        """Reverse-resolve many addresses concurrently; addresses without a name are left out."""
        addrs = list(dict.fromkeys(addrs))
        names = await asyncio.gather(*(self.reverse(a) for a in addrs))
        return {a: n for a, n in zip(addrs, names, strict=True) if n}


def _dns_reason(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timed out"
    args: tuple[object, ...] = exc.args
    if len(args) >= 2:
        return str(args[1])
    return str(exc) or type(exc).__name__
