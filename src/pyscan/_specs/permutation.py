"""Seeded full-cycle permutations of ``range(n)`` with random access, sharding and resume.

How this works
--------------
The domain is widened to the smallest power of two ``2**b >= n`` (so ``2**b < 2n``). On it we
apply a keyed *bijective mixer*: three rounds of

    x = (x XOR/+ k_i) mod 2**b;   x = (x * m_i) mod 2**b;   x ^= x >> s

with seed-derived keys ``k_i`` and odd seed-derived multipliers ``m_i`` (the shape of
Kensler's hash-based permutation and of the murmur/splitmix finalisers). Every step is
invertible on ``Z / 2**b``: adding or xoring a constant, multiplying by an odd number (it has
an inverse modulo ``2**b``), and ``x ^ (x >> s)`` for ``s >= 1`` (the top ``s`` bits pass
through unchanged and determine the next ones). So the mixer is a bijection of ``[0, 2**b)``.

*Cycle walking* restricts it to ``[0, n)``: ``at(i) = mix(i)``, and while the value is
``>= n`` apply ``mix`` again. Because ``mix`` permutes the wider domain, following its cycle
from ``i < n`` must come back below ``n``; and two different starting points cannot land on the
same value (walk one backwards with ``mix``'s inverse and you retrace the other's walk), so
``at`` is a bijection of ``range(n)`` for every ``n`` and every seed. As ``2**b < 2n`` the
expected walk is under two mixes.

Why this rather than ZMap's cyclic multiplicative group modulo a prime: the mixer gives exact
random access (``at(i)`` is the i-th element, ``index(v)`` its inverse) in O(1), which the
engine uses to number probes, resume at a position and split the work into interleaved shards
with plain index arithmetic. A cyclic group only walks its cycle (positions include the skipped
values above ``n``), and needs a prime above ``n`` whose ``p - 1`` is factored to test a
generator, which is awkward for arbitrary ``n`` up to ``2**128``. The mixer is not a
cryptographic permutation; it only has to scatter consecutive probes across the space.

Sharding: shard ``i`` of ``count`` is the positions ``i, i + count, i + 2 count, ...``;
the shards are disjoint and cover ``range(n)``. ``start`` counts elements already done in
the (sharded) sequence, so a resumed run yields exactly the tail. ``seed=None`` is the
identity (sequential order) with the same interface.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator

import attrs

from pyscan.errors import OptionsError

__all__ = ["Permutation", "ProbeOrder", "Seed"]

Seed = int | str | bytes | None

_ROUNDS = 3


def _seed_bytes(seed: int | str | bytes) -> bytes:
    if isinstance(seed, bytes):
        return b"b" + seed
    if isinstance(seed, str):
        return b"s" + seed.encode("utf-8")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise OptionsError(f"permutation seed must be an int, str, bytes or None, not {seed!r}")
    return b"i" + seed.to_bytes((seed.bit_length() + 8) // 8, "big", signed=True)


@attrs.frozen
class _Mixer:
    """The keyed bijection of ``[0, 2**bits)``; see the module comment."""

    bits: int
    keys: tuple[int, ...]
    mults: tuple[int, ...]
    shift: int
    inverses: tuple[int, ...] = attrs.field(init=False)

    @inverses.default
    def _inverses(self) -> tuple[int, ...]:
        return tuple(pow(m, -1, 1 << self.bits) for m in self.mults)

    @classmethod
    def from_seed(cls, bits: int, seed: int | str | bytes) -> _Mixer:
        width = max(1, (bits + 7) // 8)
        stream = hashlib.shake_256(b"pyscan-permutation\0" + _seed_bytes(seed)).digest(
            2 * _ROUNDS * (width + 8)
        )
        mask = (1 << bits) - 1
        chunk = width + 8
        words = [
            int.from_bytes(stream[j * chunk : (j + 1) * chunk], "big") for j in range(2 * _ROUNDS)
        ]
        keys = tuple(w & mask for w in words[:_ROUNDS])
        # Odd multipliers with the top bit set spread low input bits into high output bits.
        top = 1 << (bits - 1) if bits > 1 else 0
        mults = tuple((w & mask) | 1 | top for w in words[_ROUNDS:])
        return cls(bits, keys, mults, max(1, (bits + 1) // 2))

    def forward(self, x: int) -> int:
        mask = (1 << self.bits) - 1
        s = self.shift
        k0, k1, k2 = self.keys
        m0, m1, m2 = self.mults
        x = ((x ^ k0) * m0) & mask
        x ^= x >> s
        x = (((x + k1) & mask) * m1) & mask
        x ^= x >> s
        x = ((x ^ k2) * m2) & mask
        return x ^ (x >> s)

    def backward(self, y: int) -> int:
        mask = (1 << self.bits) - 1
        k0, k1, k2 = self.keys
        i0, i1, i2 = self.inverses
        y = self._unshift(y)
        y = ((y * i2) & mask) ^ k2
        y = self._unshift(y)
        y = (((y * i1) & mask) - k1) & mask
        y = self._unshift(y)
        return ((y * i0) & mask) ^ k0

    def _unshift(self, y: int) -> int:
        # Inverts x ^ (x >> s): each pass fixes s more bits from the top down.
        x = y
        for _ in range(self.bits // self.shift + 1):
            x = y ^ (x >> self.shift)
        return x


def _make_mixer(perm: Permutation) -> _Mixer | None:
    # Runs before attrs validators do, so it checks the arguments itself.
    _check_size(perm.size)
    if perm.seed is not None:
        _seed_bytes(perm.seed)
    if perm.seed is None or perm.size <= 1:
        return None
    return _Mixer.from_seed(max(2, (perm.size - 1).bit_length()), perm.seed)


@attrs.frozen
class Permutation:
    """A seeded bijection of ``range(size)``; ``seed=None`` is the identity (sequential order).

    ``at(i)`` is the i-th element and ``index(v)`` its inverse; iteration, :meth:`shard` and
    :meth:`iter` yield elements lazily. ``size`` may be any non-negative int (``2**128`` and
    beyond); there is no ``__len__`` because ``len()`` cannot exceed ``sys.maxsize``.
    """

    size: int
    seed: Seed = None
    _mixer: _Mixer | None = attrs.field(
        init=False, repr=False, eq=False, default=attrs.Factory(_make_mixer, takes_self=True)
    )

    def at(self, index: int) -> int:
        """The element at position ``index`` (``0 <= index < size``)."""
        if not 0 <= index < self.size:
            raise IndexError(f"permutation index {index} out of range for size {self.size}")
        mixer = self._mixer
        if mixer is None:
            return index
        x = mixer.forward(index)
        while x >= self.size:
            x = mixer.forward(x)
        return x

    def index(self, value: int) -> int:
        """The position of ``value`` (inverse of :meth:`at`)."""
        if not 0 <= value < self.size:
            raise ValueError(f"{value} is not in a permutation of range({self.size})")
        mixer = self._mixer
        if mixer is None:
            return value
        x = mixer.backward(value)
        while x >= self.size:
            x = mixer.backward(x)
        return x

    def __contains__(self, value: object) -> bool:
        return isinstance(value, int) and 0 <= value < self.size

    def __iter__(self) -> Iterator[int]:
        return self.iter()

    def shard_positions(self, shard: int, count: int) -> range:
        """The positions (arguments of :meth:`at`) making up shard ``shard`` of ``count``."""
        _check_shard(shard, count)
        return range(shard, self.size, count)

    def shard_size(self, shard: int, count: int) -> int:
        """How many elements shard ``shard`` of ``count`` has."""
        _check_shard(shard, count)
        return max(0, (self.size - shard + count - 1) // count)

    def shard(self, shard: int, count: int, start: int = 0) -> Iterator[int]:
        """Elements of shard ``shard`` (0-based) of ``count``, from its ``start``-th element.

        Shard ``i`` holds positions ``i, i + count, ...``: the shards are disjoint and
        together yield every element exactly once.
        """
        return self.iter(start=start, shard=(shard, count))

    def iter(
        self, *, start: int = 0, stop: int | None = None, shard: tuple[int, int] | None = None
    ) -> Iterator[int]:
        """Elements at positions ``start`` (inclusive) to ``stop`` (exclusive).

        With ``shard=(i, count)`` positions count within that shard's sequence, so a run
        resumed with ``start=k`` yields exactly what remained after ``k`` elements.
        """
        index, count = shard if shard is not None else (0, 1)
        positions = self.shard_positions(index, count)
        if start < 0 or (stop is not None and stop < 0):
            raise OptionsError(f"start and stop must be >= 0, got start={start} stop={stop}")
        return self._walk(positions[start:stop])

    def _walk(self, positions: range) -> Iterator[int]:
        mixer = self._mixer
        if mixer is None:
            yield from positions
            return
        # The mixer inlined: this loop is the hot path of probe generation.
        n = self.size
        mask = (1 << mixer.bits) - 1
        s = mixer.shift
        k0, k1, k2 = mixer.keys
        m0, m1, m2 = mixer.mults
        for x in positions:
            while True:
                x = ((x ^ k0) * m0) & mask
                x ^= x >> s
                x = (((x + k1) & mask) * m1) & mask
                x ^= x >> s
                x = ((x ^ k2) * m2) & mask
                x ^= x >> s
                if x < n:
                    break
            yield x


def _check_size(size: object) -> None:
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise OptionsError(f"permutation size must be a non-negative int, not {size!r}")


def _check_shard(shard: int, count: int) -> None:
    if count < 1:
        raise OptionsError(f"shard count must be >= 1, got {count}")
    if not 0 <= shard < count:
        raise OptionsError(f"shard index {shard} is out of range for {count} shards")


class ProbeOrder:
    """A scan's probe order: a permutation's elements (or one shard's) from position
    ``start`` on, as an iterator that counts what it has given, and the **resume point**.

    The resume point is the first position (counted like ``start``) whose probe is not
    decided yet: a run started there with the same permutation and shard misses nothing,
    though it may repeat probes decided after that point. It is found from the probes the
    scanner has taken and not decided (:meth:`resume_point`), few at any moment, so asking
    costs no walk over what was decided.
    """

    __slots__ = ("_count", "_it", "_perm", "_shard", "given", "size", "start")

    def __init__(
        self, perm: Permutation, *, start: int = 0, shard: tuple[int, int] | None = None
    ) -> None:
        self._perm = perm
        self._shard, self._count = shard if shard is not None else (0, 1)
        full = perm.shard_size(self._shard, self._count)
        if start > full:
            raise OptionsError(
                f"resume_from ({start}) is past the end of the probe order ({full} probes)"
            )
        self._it = self._counting(perm.iter(start=start, shard=shard))
        self.start = start
        #: Probes the order yields in all (from ``start``).
        self.size = full - start
        #: Probes given so far.
        self.given = 0

    def __iter__(self) -> Iterator[int]:
        """The elements, counted in :attr:`given` (a generator: scanners take from it with
        no Python-level ``__next__`` call per probe)."""
        return self._it

    def __next__(self) -> int:
        return next(self._it)

    def _counting(self, elements: Iterator[int]) -> Iterator[int]:
        for value in elements:
            self.given += 1
            yield value

    def position(self, value: int) -> int:
        """The position of ``value`` in this order's sequence (the shard's, if sharded)."""
        return (self._perm.index(value) - self._shard) // self._count

    def resume_point(self, undecided: Iterable[int]) -> int:
        """The resume point, given the probes taken from the order and not decided yet."""
        return min(map(self.position, undecided), default=self.start + self.given)
