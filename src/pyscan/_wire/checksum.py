"""The Internet checksum (RFC 1071), pseudo-header sums and incremental updates (RFC 1624).

How this works
--------------
The checksum is the ones' complement of the ones' complement sum of the data taken as
big-endian 16-bit words (an odd final byte is padded with a zero byte on the right).

Because 2**16 == 1 (mod 0xFFFF), a buffer read as one big-endian integer is congruent
modulo 0xFFFF to the sum of its 16-bit words. So ``int.from_bytes(data) % 0xFFFF`` gives the
ones' complement sum in one C-level pass, with one wrinkle: ones' complement arithmetic has
two zeros, and an end-around-carry sum is +0 (0x0000) only when every word is zero; any other
data sums to a value in 1..0xFFFF. :func:`_fold` maps a remainder of 0 from non-zero input to
0xFFFF accordingly, so the result is bit-identical to the word-by-word loop of RFC 1071.

Partial sums (``initial``) are un-complemented sums of other data - pseudo-headers, or a
template's constant bytes - and simply add in before the fold.

RFC 1624 eqn. 3 updates a checksum ``HC`` after a 16-bit field changes from ``m`` to ``m'``::

    HC' = ~(~HC + ~m + m')

which, unlike eqn. 2, never yields the -0 (0xFFFF) a fresh computation could not produce.
"""

from __future__ import annotations

from pyscan._wire.reader import Buffer

__all__ = [
    "fold16",
    "internet_checksum",
    "ipv4_pseudo_header_sum",
    "ipv6_pseudo_header_sum",
    "ones_complement_sum",
    "pseudo_header_sum",
    "update_checksum16",
    "update_checksum32",
    "update_checksum_bytes",
]


def fold16(total: int) -> int:
    """Fold a non-negative sum of 16-bit words into one ones' complement word (no complement).

    Returns 0 only for a total of 0, otherwise a value in 1..0xFFFF.
    """
    if total <= 0xFFFF:
        return total
    rem = total % 0xFFFF
    return rem if rem else 0xFFFF


def ones_complement_sum(data: Buffer, initial: int = 0) -> int:
    """The folded 16-bit ones' complement sum of ``data`` plus the partial sum ``initial``."""
    value = int.from_bytes(data, "big")
    if len(data) & 1:
        value <<= 8
    return fold16(fold16(value) + initial)


def internet_checksum(data: Buffer, initial: int = 0) -> int:
    """RFC 1071 checksum of ``data`` with the partial sum ``initial`` (e.g. a pseudo-header).

    Computed over data whose checksum field holds the right value, the result is 0.
    """
    return ~ones_complement_sum(data, initial) & 0xFFFF


def ipv4_pseudo_header_sum(src: bytes, dst: bytes, protocol: int, length: int) -> int:
    """Partial sum of the IPv4 pseudo-header (RFC 793 / 768): src, dst, zero, protocol, length."""
    return fold16(
        int.from_bytes(src, "big") % 0xFFFF
        + int.from_bytes(dst, "big") % 0xFFFF
        + protocol
        + length
    )


def ipv6_pseudo_header_sum(src: bytes, dst: bytes, next_header: int, length: int) -> int:
    """Partial sum of the IPv6 pseudo-header (RFC 8200 section 8.1).

    Source, destination, 32-bit upper-layer length, three zero bytes and the next header.
    """
    return fold16(
        int.from_bytes(src, "big") % 0xFFFF
        + int.from_bytes(dst, "big") % 0xFFFF
        + (length >> 16)
        + (length & 0xFFFF)
        + next_header
    )


def pseudo_header_sum(src: bytes, dst: bytes, protocol: int, length: int) -> int:
    """The IPv4 or IPv6 pseudo-header partial sum, chosen by the address length (4 or 16)."""
    if len(src) == 4 and len(dst) == 4:
        return ipv4_pseudo_header_sum(src, dst, protocol, length)
    if len(src) == 16 and len(dst) == 16:
        return ipv6_pseudo_header_sum(src, dst, protocol, length)
    raise ValueError(
        f"addresses must both be 4 or both 16 bytes, not {len(src)} and {len(dst)} bytes"
    )


def update_checksum16(checksum: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3: the checksum after a 16-bit field changes from ``old`` to ``new``."""
    total = (~checksum & 0xFFFF) + (~old & 0xFFFF) + new
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def update_checksum32(checksum: int, old: int, new: int) -> int:
    """RFC 1624 eqn. 3 for a 32-bit field (two 16-bit words) changing from ``old`` to ``new``."""
    total = (
        (~checksum & 0xFFFF)
        + (~(old >> 16) & 0xFFFF)
        + (~old & 0xFFFF)
        + ((new >> 16) & 0xFFFF)
        + (new & 0xFFFF)
    )
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def update_checksum_bytes(checksum: int, old: Buffer, new: Buffer) -> int:
    """RFC 1624 eqn. 3 for a field of an even number of bytes (e.g. a 4- or 16-byte address).

    The field must start at an even offset of the checksummed data.
    """
    if len(old) != len(new) or len(old) & 1:
        raise ValueError(f"fields must have the same even length, not {len(old)} and {len(new)}")
    # ~m summed word by word equals the complement of sum(m) in ones' complement arithmetic.
    total = (~checksum & 0xFFFF) + (~ones_complement_sum(old) & 0xFFFF) + ones_complement_sum(new)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF
