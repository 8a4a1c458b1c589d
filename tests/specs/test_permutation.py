"""The seeded full-cycle permutation behind randomised target and probe order."""

from __future__ import annotations

import itertools
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyscan._specs.permutation import Permutation, ProbeOrder, _Mixer
from pyscan.errors import OptionsError

seeds = st.one_of(st.integers(-(2**80), 2**80), st.text(max_size=8), st.binary(max_size=8))
sizes = st.integers(0, 3000)


@given(sizes, seeds)
def test_every_permutation_is_a_bijection(n: int, seed: int | str | bytes) -> None:
    perm = Permutation(n, seed)
    values = list(perm)
    assert len(values) == n
    assert sorted(values) == list(range(n))


@given(sizes, seeds)
def test_at_and_index_agree_with_iteration(n: int, seed: int | str | bytes) -> None:
    perm = Permutation(n, seed)
    for position, value in enumerate(perm):
        assert perm.at(position) == value
        assert perm.index(value) == position


@given(st.integers(1, 12), st.integers(0, 2**32))
def test_mixer_permutes_its_whole_power_of_two_domain(bits: int, seed: int) -> None:
    mixer = _Mixer.from_seed(bits, seed)
    image = [mixer.forward(x) for x in range(1 << bits)]
    assert sorted(image) == list(range(1 << bits))
    assert [mixer.backward(y) for y in image] == list(range(1 << bits))


@given(st.integers(0, 2000), seeds, st.integers(1, 12))
def test_shards_are_disjoint_and_cover_everything(
    n: int, seed: int | str | bytes, count: int
) -> None:
    perm = Permutation(n, seed)
    shards = [list(perm.shard(i, count)) for i in range(count)]
    assert [len(s) for s in shards] == [perm.shard_size(i, count) for i in range(count)]
    flat = [v for s in shards for v in s]
    assert len(flat) == len(set(flat)) == n
    assert set(flat) == set(range(n))
    # Shard sizes differ by at most one: the work is split evenly.
    assert max(map(len, shards)) - min(map(len, shards)) <= 1


@given(st.integers(0, 2000), seeds, st.integers(1, 6), st.data())
def test_resume_yields_exactly_the_tail(
    n: int, seed: int | str | bytes, count: int, data: st.DataObject
) -> None:
    perm = Permutation(n, seed)
    shard = data.draw(st.integers(0, count - 1))
    whole = list(perm.shard(shard, count))
    k = data.draw(st.integers(0, len(whole) + 2))
    assert list(perm.shard(shard, count, start=k)) == whole[k:]
    assert list(perm.iter(start=k, shard=(shard, count))) == whole[k:]
    stop = data.draw(st.integers(0, len(whole) + 2))
    assert list(perm.iter(start=k, stop=stop, shard=(shard, count))) == whole[k:stop]


def test_none_seed_is_sequential_order() -> None:
    perm = Permutation(10)
    assert list(perm) == list(range(10))
    assert list(perm.shard(1, 3)) == [1, 4, 7]
    assert list(perm.iter(start=7)) == [7, 8, 9]
    assert perm.at(4) == 4
    assert perm.index(4) == 4


def test_same_seed_same_order_and_different_seeds_differ() -> None:
    n = 1000
    a = list(Permutation(n, 12345))
    assert a == list(Permutation(n, 12345))
    assert a != list(range(n))
    others = {tuple(Permutation(n, s)) for s in (1, 2, "12345", b"12345", -12345)}
    assert tuple(a) not in others
    assert len(others) == 5


@pytest.mark.parametrize("n", [2**32, 2**64 + 7, 2**128, 2**128 + 1, 2**200 - 3])
def test_huge_sizes_have_random_access_without_enumerating(n: int) -> None:
    perm = Permutation(n, "huge")
    rng = random.Random(n)
    positions = [0, 1, n - 1] + [rng.randrange(n) for _ in range(200)]
    values = [perm.at(p) for p in positions]
    assert all(0 <= v < n for v in values)
    assert len(set(values)) == len(set(positions))
    assert [perm.index(v) for v in values] == positions
    assert list(itertools.islice(perm, 5)) == [perm.at(i) for i in range(5)]
    tail = perm.iter(start=n - 2)
    assert list(tail) == [perm.at(n - 2), perm.at(n - 1)]


def test_order_scatters_consecutive_positions() -> None:
    # A scan must not hammer one subnet: the first 1024 of 2**24 positions should land in
    # most of the 256 top-octet buckets (a uniform draw fills about 251 of them) and
    # consecutive elements should rarely share a /16.
    perm = Permutation(2**24, 7)
    first = [perm.at(i) for i in range(1024)]
    assert len({v >> 16 for v in first}) > 230
    close = sum(1 for a, b in itertools.pairwise(first) if a >> 8 == b >> 8)
    assert close < 10


def test_tiny_sizes() -> None:
    assert list(Permutation(0, 1)) == []
    assert list(Permutation(1, 1)) == [0]
    assert sorted(Permutation(2, 1)) == [0, 1]
    assert Permutation(0, 1).shard_size(3, 4) == 0
    with pytest.raises(IndexError):
        Permutation(0, 1).at(0)
    with pytest.raises(IndexError):
        Permutation(5, 1).at(5)
    with pytest.raises(ValueError, match="not in a permutation"):
        Permutation(5, 1).index(5)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((-1, 1), "non-negative"),
        ((1.5, 1), "non-negative"),
        ((10, 1.5), "seed must be"),
        ((10, True), "seed must be"),
    ],
)
def test_bad_arguments(args: tuple[object, object], message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        Permutation(*args)  # type: ignore[arg-type]


@pytest.mark.parametrize(("shard", "count"), [(0, 0), (3, 3), (-1, 2)])
def test_bad_shards(shard: int, count: int) -> None:
    with pytest.raises(OptionsError, match="shard"):
        Permutation(10, 1).shard(shard, count)


def test_negative_start_is_refused() -> None:
    with pytest.raises(OptionsError):
        Permutation(10, 1).iter(start=-1)


@settings(max_examples=25)
@given(st.integers(2**20, 2**130), seeds)
def test_large_shards_start_where_the_whole_sequence_does(n: int, seed: int | str | bytes) -> None:
    perm = Permutation(n, seed)
    head = list(itertools.islice(perm, 12))
    for count in (1, 3, 4):
        for shard in range(count):
            got = list(itertools.islice(perm.shard(shard, count), 3))
            assert got == head[shard::count][:3]


# -- ProbeOrder: counting, positions, the resume point -------------------------------------


@given(
    size=st.integers(0, 300),
    seed=st.one_of(st.none(), st.integers(0, 2**32)),
    sharding=st.one_of(
        st.none(), st.integers(1, 5).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n)))
    ),
    data=st.data(),
)
def test_probe_order_resume_point_is_the_first_undecided_position(
    size: int, seed: int | None, sharding: tuple[int, int] | None, data: st.DataObject
) -> None:
    perm = Permutation(size, seed)
    full = list(perm.iter(shard=sharding))
    start = data.draw(st.integers(0, len(full)), label="start")
    order = ProbeOrder(perm, start=start, shard=sharding)
    assert order.size == len(full) - start
    taken = data.draw(st.integers(0, order.size), label="taken")
    got = list(itertools.islice(order, taken))
    assert got == full[start : start + taken]  # a resumed order yields exactly the tail
    assert order.given == taken
    for k, value in enumerate(got):
        assert order.position(value) == start + k
    undecided = data.draw(st.lists(st.sampled_from(got), unique=True) if got else st.just([]))
    point = order.resume_point(undecided)
    expected = min((got.index(v) for v in undecided), default=taken) + start
    assert point == expected
    # every probe before the point is taken and not in the undecided set
    assert set(full[start:point]).isdisjoint(undecided)
    assert list(order) == full[start + taken :]  # the rest, and nothing more
    assert order.resume_point([]) == len(full)


def test_probe_order_start_past_the_end_is_an_options_error() -> None:
    perm = Permutation(10, 1)
    assert list(ProbeOrder(perm, start=10)) == []
    with pytest.raises(OptionsError, match=r"resume_from \(11\) is past the end .*10 probes"):
        ProbeOrder(perm, start=11)
    with pytest.raises(OptionsError, match=r"past the end .*\(3 probes\)"):
        ProbeOrder(perm, start=5, shard=(1, 3))  # shard 1 of 3: positions 1, 4, 7: 3 probes
