"""RFC 1071 checksums, pseudo-header sums and RFC 1624 incremental updates."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._wire import (
    internet_checksum,
    ipv4_pseudo_header_sum,
    ipv6_pseudo_header_sum,
    ones_complement_sum,
    pseudo_header_sum,
    update_checksum16,
    update_checksum32,
    update_checksum_bytes,
)

from . import vectors as v


def naive_sum(data: bytes) -> int:
    """RFC 1071 section 4.1, word by word with end-around carry: the test oracle."""
    if len(data) % 2:
        data += b"\x00"
    total = 0
    for (word,) in struct.iter_unpack("!H", data):
        total += word
        total = (total & 0xFFFF) + (total >> 16)
    return total


def naive_checksum(data: bytes) -> int:
    return ~naive_sum(data) & 0xFFFF


@given(st.binary(max_size=2000))
def test_matches_word_by_word_oracle(data: bytes) -> None:
    assert ones_complement_sum(data) == naive_sum(data)
    assert internet_checksum(data) == naive_checksum(data)


@given(st.lists(st.sampled_from([0, 1, 0xFF, 0xFFFF, 0x8000]), max_size=50))
def test_edge_words(words: list[int]) -> None:
    # All-zero, all-ones and carry-heavy data are where the mod-0xFFFF shortcut could slip.
    data = struct.pack(f"!{len(words)}H", *words)
    assert ones_complement_sum(data) == naive_sum(data)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", 0xFFFF),
        (b"\x00\x00", 0xFFFF),
        (b"\xff\xff", 0x0000),
        (b"\x01", 0xFEFF),  # odd byte is the high half of a zero-padded word
        (b"\x00\x01\xf2\x03\xf4\xf5\xf6\xf7", ~0xDDF2 & 0xFFFF),  # RFC 1071 section 3 example
    ],
)
def test_known_sums(data: bytes, expected: int) -> None:
    assert internet_checksum(data) == expected


@given(st.binary(max_size=200), st.binary(max_size=200))
def test_initial_is_a_partial_sum(head: bytes, tail: bytes) -> None:
    if len(head) % 2:
        head += b"\x00"
    assert internet_checksum(tail, ones_complement_sum(head)) == naive_checksum(head + tail)


def test_accepts_bytearray_and_memoryview() -> None:
    data = bytes(range(7))
    assert internet_checksum(bytearray(data)) == internet_checksum(memoryview(data))
    assert internet_checksum(data) == naive_checksum(data)


def test_wikipedia_ipv4_header() -> None:
    assert internet_checksum(v.WIKIPEDIA_IPV4_HEADER) == v.WIKIPEDIA_IPV4_CHECKSUM


@pytest.mark.parametrize("name", sorted(v.ALL_VALID))
def test_captured_ip_headers_check_out(name: str) -> None:
    packet = v.ALL_VALID[name]
    if packet[0] >> 4 == 4:
        assert internet_checksum(packet[: (packet[0] & 0xF) * 4]) == 0


def test_captured_transport_checksums_check_out() -> None:
    for packet in (v.NMAP_SYN_22, v.NMAP_SYN_9, v.KERNEL_RST_22):
        pseudo = ipv4_pseudo_header_sum(packet[12:16], packet[16:20], 6, len(packet) - 20)
        assert internet_checksum(packet[20:], pseudo) == 0
    pseudo = ipv4_pseudo_header_sum(v.NMAP_UDP_9[12:16], v.NMAP_UDP_9[16:20], 17, 8)
    assert internet_checksum(v.NMAP_UDP_9[20:], pseudo) == 0
    for packet in (v.KERNEL_PORT_UNREACH, v.KERNEL_ECHO_REPLY, v.KERNEL_TIMESTAMP_REPLY):
        assert internet_checksum(packet[20:]) == 0
    pseudo = ipv6_pseudo_header_sum(v.IPV6_UDP[8:24], v.IPV6_UDP[24:40], 17, 14)
    assert internet_checksum(v.IPV6_UDP[40:], pseudo) == 0
    # The loopback SYN's checksum is the unfinished (offloaded) one: it must NOT verify.
    p = v.KERNEL_SYN_OPTIONS
    assert internet_checksum(p[20:], ipv4_pseudo_header_sum(p[12:16], p[16:20], 6, 40)) != 0


@given(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4), st.integers(0, 255))
def test_ipv4_pseudo_header(src: bytes, dst: bytes, proto: int) -> None:
    length = 1234
    pseudo = src + dst + bytes((0, proto)) + struct.pack("!H", length)
    assert ipv4_pseudo_header_sum(src, dst, proto, length) == naive_sum(pseudo)
    assert pseudo_header_sum(src, dst, proto, length) == naive_sum(pseudo)


@given(
    st.binary(min_size=16, max_size=16),
    st.binary(min_size=16, max_size=16),
    st.integers(0, 255),
    st.integers(0, 0xFFFFFFFF),
)
def test_ipv6_pseudo_header(src: bytes, dst: bytes, nxt: int, length: int) -> None:
    pseudo = src + dst + struct.pack("!I", length) + bytes((0, 0, 0, nxt))
    assert ipv6_pseudo_header_sum(src, dst, nxt, length) == naive_sum(pseudo)
    assert pseudo_header_sum(src, dst, nxt, length) == naive_sum(pseudo)


def test_pseudo_header_rejects_mixed_families() -> None:
    with pytest.raises(ValueError, match="4 or both 16"):
        pseudo_header_sum(bytes(4), bytes(16), 6, 20)


@given(st.binary(min_size=2, max_size=100), st.data())
def test_update16_equals_recompute(data: bytes, draw: st.DataObject) -> None:
    data = data + b"\x00" * (len(data) % 2)
    # The RFC 1624 equivalence needs data that is not all zero (else 0xFFFF vs 0x0000).
    data = b"\x45\x00" + data
    pos = draw.draw(st.integers(0, len(data) // 2 - 1)) * 2
    new = draw.draw(st.integers(0, 0xFFFF))
    old = int.from_bytes(data[pos : pos + 2], "big")
    changed = data[:pos] + new.to_bytes(2, "big") + data[pos + 2 :]
    if not any(changed):
        return
    assert update_checksum16(naive_checksum(data), old, new) == naive_checksum(changed)


@given(st.binary(min_size=4, max_size=100), st.data())
def test_update32_and_bytes_equal_recompute(data: bytes, draw: st.DataObject) -> None:
    data = b"\x45\x00" + data + b"\x00" * (len(data) % 2)
    pos = draw.draw(st.integers(1, len(data) // 2 - 2)) * 2
    new = draw.draw(st.integers(0, 0xFFFFFFFF))
    old = int.from_bytes(data[pos : pos + 4], "big")
    changed = data[:pos] + new.to_bytes(4, "big") + data[pos + 4 :]
    expected = naive_checksum(changed)
    assert update_checksum32(naive_checksum(data), old, new) == expected
    assert (
        update_checksum_bytes(naive_checksum(data), data[pos : pos + 4], new.to_bytes(4, "big"))
        == expected
    )


def test_update_rfc1624_example() -> None:
    # RFC 1624 section 4: HC = 0xDD2F, m = 0x5555 -> m' = 0x3285 gives 0x0000, not 0xFFFF.
    assert update_checksum16(0xDD2F, 0x5555, 0x3285) == 0x0000


def test_update_bytes_rejects_bad_fields() -> None:
    with pytest.raises(ValueError, match="even length"):
        update_checksum_bytes(0, b"abc", b"abd")
