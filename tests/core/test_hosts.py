"""HostTable: compact target addresses, by index and back."""

from __future__ import annotations

import ipaddress
import tracemalloc

from hypothesis import given
from hypothesis import strategies as st

from pyscan._core.hosts import HostTable
from pyscan._models import IPAddress

# Addresses are only parsed and compared here; nothing is sent.
_v4 = st.integers(0, 40).map(lambda i: ipaddress.IPv4Address(0xC6120000 + i))
_v4_wide = st.integers(0, 2**32 - 1).map(ipaddress.IPv4Address)
_v6 = st.integers(0, 40).map(lambda i: ipaddress.IPv6Address(0x20010DB8 << 96 | i))


def _reference_index(addrs: list[IPAddress]) -> dict[bytes, int]:
    return {a.packed: i for i, a in enumerate(addrs)}  # the last duplicate wins


@given(st.lists(st.one_of(_v4, _v4_wide), max_size=60), st.lists(_v4_wide, max_size=10))
def test_ipv4_index_matches_a_dict_of_the_list(
    addrs: list[IPAddress], probes: list[IPAddress]
) -> None:
    table = HostTable(addrs)
    ref = _reference_index(addrs)
    assert len(table) == len(addrs)
    assert list(table) == addrs
    assert table.blob == b"".join(a.packed for a in addrs)
    for i, a in enumerate(addrs):
        assert table.packed(i) == a.packed
        assert table.ints[i] == int(a)
        assert table.index_of(a.packed) == ref[a.packed]
    for p in probes:
        assert table.index_of(p.packed) == ref.get(p.packed)
        assert (p in table) == (p.packed in ref)
    assert table.index_of(b"\x01\x02\x03") is None
    assert table.index_of(bytes(16)) is None


@given(st.lists(st.one_of(_v4, _v6), max_size=40), st.lists(st.one_of(_v4, _v6), max_size=10))
def test_ipv6_and_mixed_tables_index_the_same_way(
    addrs: list[IPAddress], probes: list[IPAddress]
) -> None:
    table = HostTable(addrs)
    ref = _reference_index(addrs)
    assert list(table) == addrs
    assert table.versions == frozenset(a.version for a in addrs)
    assert table.compact == (table.versions <= {4})  # an empty list is compact too
    for i, a in enumerate(addrs):
        assert table.packed(i) == a.packed
        assert table.ints[i] == int(a)
    for p in [*addrs, *probes]:
        assert table.index_of(p.packed) == ref.get(p.packed)


def test_one_address_object_per_host_made_on_demand() -> None:
    table = HostTable(ipaddress.IPv4Network("198.18.0.0/24"))
    first = table[7]
    assert first == ipaddress.IPv4Address("198.18.0.7")
    assert table[7] is first  # results of one host share one object
    assert table[-1] == ipaddress.IPv4Address("198.18.0.255")
    assert table[2:4] == [ipaddress.IPv4Address("198.18.0.2"), ipaddress.IPv4Address("198.18.0.3")]
    assert repr(table) == "HostTable(256 addresses, versions [4])"


def test_a_slash_16_costs_a_few_bytes_per_host() -> None:
    addrs = list(ipaddress.IPv4Network("198.19.0.0/16"))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        table = HostTable(addrs)
        per_host = (tracemalloc.get_traced_memory()[0] - before) / len(addrs)
    finally:
        tracemalloc.stop()
    # 4 bytes of integer, 4 packed, 8 for the (empty) object slot, and one run of addresses
    # (a list of objects with a dict index: about 250)
    assert per_host < 20
    assert table.index_of(bytes([198, 19, 255, 255])) == 65535
