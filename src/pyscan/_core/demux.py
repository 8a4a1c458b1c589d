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

The demultiplexer is then one dict lookup; packets with no key, or a key nobody
registered (the host's other traffic, our own outgoing probes seen on loopback), are
dropped and counted. Finer checks (the SYN cookie in the acknowledgement number, that the
answer comes from the probed address) belong to the owning scan.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, Literal, TypeAlias, TypeVar

from pyscan._wire.icmp import ICMPEcho, ICMPError, ICMPTimestamp
from pyscan._wire.packet import Packet

__all__ = ["Demultiplexer", "FlowKey", "flow_key"]

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

    def __len__(self) -> int:
        return len(self._owners)
