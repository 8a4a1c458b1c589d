"""The target addresses of a scan, by index, in a few bytes each.

A scan of a /16 has 65,536 hosts. Held as a list of ``ipaddress`` objects with a dict from
packed address back to index, that is about 250 bytes a host before a single probe goes
out. :class:`HostTable` keeps IPv4 targets as 4-byte integers (and their packed form, the
bytes a packet carries) and finds an address's index from sorted runs of consecutive
addresses: one run for a CIDR block or a range, at most one per address for any list. An
address *object* is made the first time index ``i`` is asked for and kept, so every result
of a host shares one object, and hosts never asked for (no result yet) cost nothing more.

Anything else (IPv6, or IPv4 and IPv6 mixed) is kept as objects with a dict index, as
those target lists are small.
"""

from __future__ import annotations

import bisect
import ipaddress
import sys
from array import array
from collections.abc import Iterable, Iterator, Sequence
from typing import overload

from pyscan._models import IPAddress

__all__ = ["HostTable"]

_V4 = ipaddress.IPv4Address


class HostTable(Sequence[IPAddress]):
    """Target addresses in scan order (duplicates kept), compact for IPv4 (see module)."""

    __slots__ = ("_dict", "_firsts", "_lengths", "_objs", "_starts", "blob", "ints", "versions")

    def __init__(self, addresses: Iterable[IPAddress]) -> None:
        items = list(addresses)
        self.versions = frozenset(a.version for a in items)
        self._dict: dict[bytes, int] | None = None
        if self.versions <= {4}:
            ints = array("I", [int(a) for a in items])
            assert ints.itemsize == 4
            del items
            self.ints: Sequence[int] = ints
            packed = array("I", ints)
            if sys.byteorder == "little":
                packed.byteswap()
            #: The packed (network order) addresses back to back, 4 bytes each.
            self.blob = packed.tobytes()
            self._objs: list[IPAddress | None] = [None] * len(ints)
            self._index_runs(ints)
        else:
            self.ints = [int(a) for a in items]
            self.blob = b""
            self._objs = list(items)
            # The last of duplicate addresses wins, as the probe tables always did.
            self._dict = {a.packed: i for i, a in enumerate(items)}
            # unused here (index_of goes by the dict); empty, each its own
            self._starts, self._firsts, self._lengths = array("I"), array("I"), array("I")

    def _index_runs(self, ints: array[int]) -> None:
        """Sorted runs of consecutive addresses at consecutive indices: ``(address of the
        run's start, its first index, its length)``. Of duplicate addresses the last index
        is the one found."""
        order = sorted(range(len(ints)), key=lambda i: (ints[i], i))
        starts: list[int] = []
        firsts: list[int] = []
        lengths: list[int] = []
        prev_addr = prev_index = -2
        for i in order:
            a = ints[i]
            if a == prev_addr:  # a duplicate: its later index replaces the earlier
                if lengths[-1] == 1:
                    firsts[-1] = i
                else:
                    lengths[-1] -= 1
                    starts.append(a)
                    firsts.append(i)
                    lengths.append(1)
            elif a == prev_addr + 1 and i == prev_index + 1:
                lengths[-1] += 1
            else:
                starts.append(a)
                firsts.append(i)
                lengths.append(1)
            prev_addr, prev_index = a, i
        self._starts = array("I", starts)
        self._firsts = array("I", firsts)
        self._lengths = array("I", lengths)

    def __len__(self) -> int:
        return len(self._objs)

    @overload
    def __getitem__(self, i: int) -> IPAddress: ...
    @overload
    def __getitem__(self, i: slice) -> list[IPAddress]: ...
    def __getitem__(self, i: int | slice) -> IPAddress | list[IPAddress]:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        obj = self._objs[i]
        if obj is None:
            obj = self._objs[i] = _V4(self.ints[i])
        return obj

    def __iter__(self) -> Iterator[IPAddress]:
        for i in range(len(self._objs)):
            yield self[i]

    @property
    def compact(self) -> bool:
        """Whether the addresses are held compactly (IPv4 only: :attr:`ints`, :attr:`blob`),
        rather than as objects with a dict (IPv6 or a mixed list)."""
        return self._dict is None

    def packed(self, i: int) -> bytes:
        """The address at ``i`` as a packet carries it (4 or 16 bytes)."""
        if self._dict is None:
            return self.blob[4 * i : 4 * i + 4]
        return self[i].packed

    def index_of(self, packed: bytes) -> int | None:
        """The index of the address ``packed`` (the last one, if listed twice), or None."""
        found = self._dict
        if found is not None:
            return found.get(packed)
        if len(packed) != 4:
            return None
        a = int.from_bytes(packed, "big")
        starts = self._starts
        if len(starts) == 1:
            d = a - starts[0]
            return self._firsts[0] + d if 0 <= d < self._lengths[0] else None
        r = bisect.bisect_right(starts, a) - 1
        if r < 0:
            return None
        d = a - starts[r]
        return self._firsts[r] + d if d < self._lengths[r] else None

    def __contains__(self, value: object) -> bool:
        if not isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv6Address)):
            return False
        return self.index_of(value.packed) is not None

    def __repr__(self) -> str:
        return f"HostTable({len(self)} addresses, versions {sorted(self.versions)})"
