"""The packet demultiplexer: which running scan owns a received packet.

How this works
--------------
Every probe a scan sends carries something the answer gives back unchanged: the TCP or UDP
source port (answers come back to it, ICMP errors quote it), or the ICMP identifier (echo
and timestamp replies copy it, ICMP errors quote it). Each scan reserves its own block of
source ports and its own ICMP identifier and registers them here as *flow keys*.

:func:`flow_key` computes the key of a received packet in one step (no per-probe state):

* TCP or UDP answer            -> ("tcp" | "udp", destination port)
* ICMP echo / timestamp reply  -> ("icmp", identifier)
* ICMP error quoting our probe -> the key of the quoted probe, seen from our side:
  ("tcp" | "udp", quoted source port) or ("icmp", quoted identifier)

:func:`flow_key_raw` computes the same key straight from the bytes of an IPv4 or IPv6
datagram without building any object, so stray packets are dropped before they are
parsed. The demultiplexer is then one dict lookup; packets with no key, or a key nobody
registered (the host's other traffic, our own outgoing probes seen on loopback), are
dropped and counted. Finer checks (the SYN cookie in the acknowledgement number, that the
answer comes from the probed address) belong to the owning scan.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Literal, TypeAlias, TypeVar

from pyscan._wire.icmp import ICMPEcho, ICMPError, ICMPTimestamp
from pyscan._wire.packet import Packet

__all__ = ["Demultiplexer", "FlowKey", "flow_key", "flow_key_raw"]

FlowKey: TypeAlias = tuple[Literal["tcp", "udp", "icmp"], int]
Owner = TypeVar("Owner", bound=Hashable)


def flow_key(pkt: Packet) -> FlowKey | None:
    """The flow key of a received packet (see the module docstring), or None."""
    if pkt.tcp is not None:
        return ("tcp", pkt.tcp.dst_port)
    if pkt.udp is not None:
        return ("udp", pkt.udp.dst_port)
    icmp = pkt.icmp if pkt.icmp is not None else pkt.icmpv6
    if icmp is None:
        return None
    if isinstance(icmp, ICMPEcho | ICMPTimestamp):
        return ("icmp", icmp.identifier) if icmp.is_reply else None
    if isinstance(icmp, ICMPError):
        quoted = icmp.quoted
        if quoted is None:
            return None
        if quoted.protocol in (6, 17):
            if quoted.src_port is None:
                return None
            return ("tcp" if quoted.protocol == 6 else "udp", quoted.src_port)
        if quoted.protocol in (1, 58) and quoted.icmp_id is not None:
            return ("icmp", quoted.icmp_id)
    return None


_ICMP4_QUERY_REPLIES = frozenset({0, 14})
_ICMP4_ERRORS = frozenset({3, 4, 5, 11, 12})
_ICMP6_QUERY_REPLIES = frozenset({129})
_ICMP6_ERRORS = frozenset({1, 2, 3, 4})
_V6_EXTENSIONS = frozenset({0, 43, 60})  # skipped by the raw key; others fall back to None


def _l4_key(data: bytes, proto: int, at: int, quoted: bool) -> FlowKey | None:
    """Key of the transport header at ``at`` (answer: destination port; quoted probe:
    source port)."""
    if proto in (6, 17):
        off = at if quoted else at + 2
        if len(data) < off + 2:
            return None
        return ("tcp" if proto == 6 else "udp", data[off] << 8 | data[off + 1])
    return None


def _ip_layer(data: bytes, start: int) -> tuple[int, int] | None:
    """``(upper-layer protocol, its offset)`` of the IP datagram at ``start``."""
    if len(data) < start + 20:
        return None
    version = data[start] >> 4
    if version == 4:
        return data[start + 9], start + (data[start] & 15) * 4
    if version == 6 and len(data) >= start + 40:
        proto, at = data[start + 6], start + 40
        while proto in _V6_EXTENSIONS and len(data) >= at + 8:
            proto, at = data[at], at + (data[at + 1] + 1) * 8
        return proto, at
    return None


def flow_key_raw(data: bytes) -> FlowKey | None:
    """:func:`flow_key` computed from the raw datagram bytes (None when not ours to know)."""
    layer = _ip_layer(data, 0)
    if layer is None:
        return None
    proto, at = layer
    if proto in (6, 17):
        return _l4_key(data, proto, at, quoted=False)
    if proto not in (1, 58) or len(data) < at + 8:
        return None
    icmp_type = data[at]
    replies, errors = (
        (_ICMP4_QUERY_REPLIES, _ICMP4_ERRORS)
        if proto == 1
        else (_ICMP6_QUERY_REPLIES, _ICMP6_ERRORS)
    )
    if icmp_type in replies:
        return ("icmp", data[at + 4] << 8 | data[at + 5])
    if icmp_type in errors:
        inner = _ip_layer(data, at + 8)
        if inner is None:
            return None
        inner_proto, inner_at = inner
        if inner_proto in (1, 58):
            if len(data) < inner_at + 6:
                return None
            return ("icmp", data[inner_at + 4] << 8 | data[inner_at + 5])
        return _l4_key(data, inner_proto, inner_at, quoted=True)
    return None


class Demultiplexer(Generic[Owner]):
    """Routes packets to the scan that registered their flow key."""

    def __init__(self) -> None:
        self._owners: dict[FlowKey, Owner] = {}
        self.delivered = 0
        self.dropped = 0

    def register(self, key: FlowKey, owner: Owner) -> None:
        """Claim ``key``; ValueError if another owner holds it."""
        held = self._owners.get(key)
        if held is not None and held != owner:
            raise ValueError(f"flow key {key} is already owned by another scan")
        self._owners[key] = owner

    def unregister(self, owner: Owner) -> None:
        """Release every key ``owner`` holds."""
        for key in [k for k, o in self._owners.items() if o == owner]:
            del self._owners[key]

    def owner(self, pkt: Packet) -> Owner | None:
        """The owner of ``pkt``, or None (counted as dropped)."""
        key = flow_key(pkt)
        found = None if key is None else self._owners.get(key)
        if found is None:
            self.dropped += 1
        else:
            self.delivered += 1
        return found

    def owner_raw(self, data: bytes) -> Owner | None:
        """The owner of a raw datagram, found without parsing it (None: counted as dropped)."""
        key = flow_key_raw(data)
        found = None if key is None else self._owners.get(key)
        if found is None:
            self.dropped += 1
        else:
            self.delivered += 1
        return found

    def route_many(self, datas: list[bytes]) -> dict[Owner, list[bytes]]:
        """Sort a burst of raw datagrams by owner (like :meth:`owner_raw` on each; the key
        of a TCP or UDP packet in an IPv4 header without options is read inline)."""
        owners = self._owners
        out: dict[Owner, list[bytes]] = {}
        dropped = 0
        for data in datas:
            if len(data) >= 24 and data[0] == 0x45 and (data[9] == 6 or data[9] == 17):
                key: FlowKey | None = (
                    "tcp" if data[9] == 6 else "udp",
                    data[22] << 8 | data[23],
                )
            else:
                key = flow_key_raw(data)
            found = None if key is None else owners.get(key)
            if found is None:
                dropped += 1
                continue
            burst = out.get(found)
            if burst is None:
                out[found] = [data]
            else:
                burst.append(data)
        self.dropped += dropped
        self.delivered += len(datas) - dropped
        return out

    def ports(self, protocol: Literal["tcp", "udp"]) -> list[int]:
        """The ports registered for ``protocol`` (sorted): what a kernel filter keeps."""
        return sorted(port for proto, port in self._owners if proto == protocol)

    def __len__(self) -> int:
        return len(self._owners)
