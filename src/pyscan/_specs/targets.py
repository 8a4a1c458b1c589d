"""nmap target specifications: parsed without resolving names, expanded lazily.

How this works
--------------
Parsing turns each whitespace-separated expression into one :data:`Target`:

* :class:`IPv4Range` for everything numeric in IPv4: ``192.0.2.1``, ``192.0.2.0/24`` and
  nmap's octet patterns ``192.168.0-255.1-254``, ``10.0.*.1``, ``10.0.0.-20``,
  ``10.0.0.250-``, ``10.0.0.1,3,5-7`` (``-`` alone, like ``*``, is 0-255). It is the product
  of four octet sets, so it is listed in ascending order, odometer style. A ``/prefix`` on a
  pattern does what nmap does: every octet set grows to all values that agree with one of
  its members on the octet's network bits (``10.0.0.1,9/30`` is ``10.0.0.0-3,8-11``).
* :class:`IPv6Range` for an IPv6 address or CIDR block (no octet ranges in IPv6).
* :class:`HostnameTarget` for a name, optionally with ``/prefix``; it stays unresolved in
  the :class:`TargetSpec`. :meth:`TargetSpec.hostnames` lists the names,
  :meth:`TargetSpec.resolved` takes the answers and builds a :class:`TargetSet`, where
  ``name/24`` is the /24 around the name's (first) address, as in nmap.

A :class:`TargetSet` keeps one *block* per target: an interval of integers (a CIDR block,
single address, or contiguous pattern) or an octet product. Blocks know their size, the
address at an index, and the *rank* of an address (how many members are smaller). Exclusions
are normalised into one sorted list of disjoint address intervals per family; since a block
lists its members in ascending order, the members inside an excluded interval ``[lo, hi]``
are the block indices ``[rank(lo), rank(hi + 1))``. Each block thus stores only the runs of
indices it keeps, which gives exact sizes, ``at(index)`` by two binary searches, and
membership tests without listing anything: ``10.0.0.0/8`` minus a few ranges is a handful of
integers.

Differences from nmap 7.93 (``nmap -sL -n``), all on input nmap accepts oddly or rejects
late. nmap treats a malformed numeric expression as a host name that then fails to resolve
(``10.0.0.5-1``, ``256.1.1.1``, ``10..0.1``); here it is a :class:`TargetSpecError` naming
the problem. nmap's fallback to ``inet_aton`` forms (``10``, ``10.1``, ``0x0a.0.0.1``) is not
kept: fewer than four octets is an error (``0x0a...`` is a host name). ``/33`` makes nmap
warn and use ``/32``; here it is an error. Whitespace may separate expressions inside one
string, and ``--exclude`` also splits on whitespace (nmap: commas only). IPv4 and IPv6
targets may be mixed (nmap needs ``-6`` and one family). An IPv6 scope (``fe80::1%eth0``) is
accepted and dropped, as nmap's list scan shows. A bad line in an ``-iL`` file is an error
naming the line (nmap warns and skips it). Exclusions whose intervals would exceed
:data:`MAX_EXCLUDE_RANGES` (``--exclude '*.*.*.1'``) are refused; nmap tests each address
against its exclude list instead.
"""

from __future__ import annotations

import bisect
import ipaddress
import itertools
import math
import os
import re
import sys
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Final, TypeAlias

import attrs

from pyscan._specs.permutation import Permutation, Seed
from pyscan.errors import ResolveError, TargetSpecError

__all__ = [
    "MAX_EXCLUDE_RANGES",
    "HostnameTarget",
    "IPAddress",
    "IPv4Range",
    "IPv6Range",
    "Target",
    "TargetSet",
    "TargetSpec",
    "parse_exclude",
    "parse_exclude_file",
    "parse_input_list",
    "parse_target",
    "parse_targets",
    "read_exclude_file",
    "read_input_list",
]

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Exclusions are kept as disjoint address intervals; a pattern such as ``*.*.*.1`` would need
#: 16 million of them. Beyond this many in total :meth:`TargetSpec.resolved` refuses.
MAX_EXCLUDE_RANGES: Final = 1 << 20

_FULL_OCTET: Final = tuple(range(256))
_SINGLE: Final = tuple((v,) for v in range(256))
_IPV4_CHARS: Final = frozenset("0123456789.,*-")
_HOST_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._")
_TOKEN: Final = re.compile(r"\S+")
_BITS: Final = {4: 32, 6: 128}

OctetSets: TypeAlias = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...], tuple[int, ...]]


# -- target expressions ------------------------------------------------------------------


@attrs.frozen
class IPv4Range:
    """An IPv4 address, CIDR block or octet pattern: the product of four octet value sets.

    ``octets`` holds each octet's allowed values, ascending. ``text`` is the expression as
    written and ``position`` its offset in the spec it came from.
    """

    octets: OctetSets
    text: str = ""
    position: int = 0

    @property
    def size(self) -> int:
        """How many addresses the expression stands for."""
        return math.prod(len(s) for s in self.octets)

    def _block(self) -> _Block:
        return _octets_block(self.octets)


@attrs.frozen
class IPv6Range:
    """An IPv6 address or CIDR block (nmap has no octet ranges for IPv6)."""

    network: ipaddress.IPv6Network
    text: str = ""
    position: int = 0

    @property
    def size(self) -> int:
        """How many addresses the block holds."""
        return self.network.num_addresses

    def _block(self) -> _Block:
        first = int(self.network.network_address)
        return _Interval(6, first, first + self.network.num_addresses - 1)


@attrs.frozen
class HostnameTarget:
    """A host name left for the caller to resolve; ``prefix`` is the ``/N`` after it, if any."""

    name: str
    prefix: int | None = None
    text: str = ""
    position: int = 0


Target: TypeAlias = IPv4Range | IPv6Range | HostnameTarget


# -- parsing -----------------------------------------------------------------------------


class _ParseError(Exception):
    """A parse problem at an offset inside one expression; wrapped into TargetSpecError."""

    def __init__(self, reason: str, offset: int) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset


def _number(text: str, offset: int, limit: int, what: str) -> int:
    if not text.isdigit() or not text.isascii():
        raise _ParseError(f"{what} {text!r} is not a decimal number", offset)
    value = int(text)
    if value > limit:
        raise _ParseError(f"{what} {value} is larger than {limit}", offset)
    return value


def _octet_set(part: str, offset: int) -> tuple[int, ...]:
    if part.isdigit():  # the common case: one value
        return _SINGLE[_number(part, offset, 255, "octet")]
    if part == "":
        raise _ParseError("empty octet", offset)
    if part in ("*", "-"):
        return _FULL_OCTET
    values: set[int] = set()
    at = offset
    for item in part.split(","):
        if item == "":
            raise _ParseError("empty element in octet list", at)
        star = item.find("*")
        if star >= 0:
            raise _ParseError("'*' must stand alone for a whole octet", at + star)
        lo_text, dash, hi_text = item.partition("-")
        if not dash:
            values.add(_number(item, at, 255, "octet"))
        else:
            if "-" in hi_text:
                raise _ParseError(f"more than one '-' in octet range {item!r}", at)
            lo = _number(lo_text, at, 255, "octet") if lo_text else 0
            hi = _number(hi_text, at + len(lo_text) + 1, 255, "octet") if hi_text else 255
            if lo > hi:
                raise _ParseError(f"reversed octet range {item!r} ({lo} > {hi})", at)
            values.update(range(lo, hi + 1))
        at += len(item) + 1
    return tuple(sorted(values))


def _widen(values: tuple[int, ...], host_bits: int) -> tuple[int, ...]:
    """All octet values that share their network bits with one of ``values``."""
    if host_bits <= 0:
        return values
    if host_bits >= 8:
        return _FULL_OCTET
    span = 1 << host_bits
    starts = sorted({v & ~(span - 1) for v in values})
    return tuple(v for s in starts for v in range(s, s + span))


def _parse_prefix(text: str, offset: int, limit: int) -> int:
    if text == "":
        raise _ParseError("missing CIDR prefix length after '/'", offset)
    if not text.isdigit() or not text.isascii():
        raise _ParseError(f"bad CIDR prefix {text!r}: expected a number of bits", offset)
    value = int(text)
    if value > limit:
        family = "IPv4" if limit == 32 else "IPv6"
        raise _ParseError(f"prefix /{value} is too large for {family} (at most /{limit})", offset)
    return value


def _parse_ipv4(body: str, prefix: int | None) -> OctetSets:
    parts = body.split(".")
    if len(parts) != 4:
        raise _ParseError(
            f"expected 4 dot-separated octets, found {len(parts)} in {body!r}",
            0 if len(parts) < 4 else sum(len(p) + 1 for p in parts[:4]) - 1,
        )
    sets: list[tuple[int, ...]] = []
    at = 0
    for part in parts:
        sets.append(_octet_set(part, at))
        at += len(part) + 1
    if prefix is not None:
        sets = [_widen(s, 8 * (k + 1) - prefix) for k, s in enumerate(sets)]
    return (sets[0], sets[1], sets[2], sets[3])


def _parse_expression(text: str) -> Target:
    """One expression (no whitespace); raises _ParseError with an offset into ``text``."""
    if ":" in text:
        return _parse_ipv6(text)
    body, slash, prefix_text = text.partition("/")
    if body == "":
        raise _ParseError("missing address or host name before '/'", 0)
    if "/" in prefix_text:
        raise _ParseError("more than one '/'", len(body) + 1 + prefix_text.index("/"))
    if set(body) <= _IPV4_CHARS:
        prefix = _parse_prefix(prefix_text, len(body) + 1, 32) if slash else None
        return IPv4Range(_parse_ipv4(body, prefix), text)
    for i, char in enumerate(body):
        if char not in _HOST_CHARS:
            raise _ParseError(f"unexpected character {char!r} in host name", i)
    if len(body.rstrip(".")) > 253:
        raise _ParseError("host name longer than 253 characters", 0)
    at = 0
    labels = body[:-1].split(".") if body.endswith(".") else body.split(".")
    for label in labels:
        if label == "":
            raise _ParseError("empty label in host name", at)
        if label.startswith("-") or label.endswith("-"):
            raise _ParseError(f"host name label {label!r} starts or ends with '-'", at)
        at += len(label) + 1
    prefix = _parse_prefix(prefix_text, len(body) + 1, 128) if slash else None
    return HostnameTarget(body, prefix, text)


def _parse_ipv6(text: str) -> IPv6Range:
    body, slash, prefix_text = text.partition("/")
    address_part = body.partition("%")[0]
    for i, char in enumerate(address_part):
        if char in ",*-":
            raise _ParseError(f"IPv6 addresses take no octet ranges or wildcards ({char!r})", i)
    if "/" in prefix_text:
        raise _ParseError("more than one '/'", len(body) + 1 + prefix_text.index("/"))
    try:
        address = ipaddress.IPv6Address(body)
    except ValueError as exc:
        raise _ParseError(f"not a valid IPv6 address: {exc}", 0) from None
    prefix = _parse_prefix(prefix_text, len(body) + 1, 128) if slash else 128
    network = ipaddress.IPv6Network((int(address), prefix), strict=False)
    return IPv6Range(network, text)


def parse_target(expression: str) -> Target:
    """Parse one target expression (an address, CIDR block, octet pattern or host name)."""
    if expression == "" or expression.isspace():
        raise TargetSpecError(expression, "empty target expression", None)
    if _TOKEN.fullmatch(expression) is None:
        at = next(i for i, c in enumerate(expression) if c.isspace())
        raise TargetSpecError(expression, "whitespace inside one target expression", at)
    return _located(expression, expression, 0)


def _located(spec: str, expression: str, offset: int) -> Target:
    try:
        target = _parse_expression(expression)
    except _ParseError as fail:
        raise TargetSpecError(spec, fail.reason, offset + fail.offset) from None
    return attrs.evolve(target, position=offset)


def _split_whitespace(spec: str) -> Iterator[Target]:
    for match in _TOKEN.finditer(spec):
        yield _located(spec, match.group(), match.start())


def _split_exclude(spec: str) -> Iterator[Target]:
    for match in _TOKEN.finditer(spec):
        word = match.group()
        pieces = word.split(",")
        at = match.start()
        for i, piece in enumerate(pieces):
            if piece == "":
                if i == len(pieces) - 1 and i > 0:
                    break  # a trailing comma, as nmap allows
                raise TargetSpecError(spec, "empty entry in exclude list", at)
            try:
                yield _located(spec, piece, at)
            except TargetSpecError as exc:
                if i == 0 or "." in piece:
                    raise
                hint = "; commas separate --exclude entries, so octet lists are not available"
                raise TargetSpecError(spec, exc.reason + hint, exc.position) from None
            at += len(piece) + 1


def _split_lines(text: str, source: str) -> Iterator[Target]:
    for number, line in enumerate(text.splitlines(), 1):
        content = line.partition("#")[0]
        for match in _TOKEN.finditer(content):
            try:
                target = _parse_expression(match.group())
            except _ParseError as fail:
                reason = f"{source} line {number}: {fail.reason}"
                raise TargetSpecError(line, reason, match.start() + fail.offset) from None
            yield attrs.evolve(target, position=match.start())


def _as_strings(specs: str | Iterable[str]) -> list[str]:
    return [specs] if isinstance(specs, str) else list(specs)


def parse_targets(
    specs: str | Iterable[str],
    *,
    exclude: str | Iterable[str] | TargetSpec | None = None,
    allow_empty: bool = False,
) -> TargetSpec:
    """Parse target expressions as given on nmap's command line.

    ``specs`` is one string (expressions separated by whitespace) or several (command-line
    arguments). ``exclude`` is ``--exclude`` text (commas or whitespace between entries), a
    list of such strings, or a parsed spec. Raises :class:`TargetSpecError` for a malformed
    expression, and for no targets at all unless ``allow_empty``.
    """
    targets: list[Target] = []
    for spec in _as_strings(specs):
        targets.extend(_split_whitespace(spec))
    if not targets and not allow_empty:
        shown = specs if isinstance(specs, str) else " ".join(_as_strings(specs))
        raise TargetSpecError(shown, "no targets given", None)
    result = TargetSpec(tuple(targets))
    if exclude is None:
        return result
    if not isinstance(exclude, TargetSpec):
        exclude = parse_exclude(exclude)
    return result.excluding(exclude)


def parse_exclude(specs: str | Iterable[str]) -> TargetSpec:
    """Parse ``--exclude`` text: entries separated by commas or whitespace (may be empty).

    Commas separate entries here, so octet lists like ``1,3`` are not available; use ranges.
    """
    targets: list[Target] = []
    for spec in _as_strings(specs):
        targets.extend(_split_exclude(spec))
    return TargetSpec(tuple(targets))


def parse_input_list(text: str, *, source: str = "-", allow_empty: bool = False) -> TargetSpec:
    """Parse the contents of an ``-iL`` file: expressions separated by whitespace or newlines,
    ``#`` starting a comment that runs to the end of the line.

    Errors carry the offending line as ``spec``, the column as ``position``, and
    ``"<source> line N: ..."`` as the reason.
    """
    targets = tuple(_split_lines(text, source))
    if not targets and not allow_empty:
        raise TargetSpecError(source, "the input list holds no targets", None)
    return TargetSpec(targets)


def parse_exclude_file(text: str, *, source: str = "-") -> TargetSpec:
    """Parse the contents of an ``--excludefile`` (same format as ``-iL``; may be empty)."""
    return TargetSpec(tuple(_split_lines(text, source)))


def _read(path: str | os.PathLike[str]) -> tuple[str, str]:
    name = os.fspath(path)
    if name == "-":
        return sys.stdin.read(), "stdin"
    try:
        with open(name, encoding="utf-8") as handle:
            return handle.read(), name
    except UnicodeDecodeError as exc:
        raise TargetSpecError(name, f"not UTF-8 text (byte {exc.start})", None) from None
    except OSError as exc:
        raise TargetSpecError(name, f"cannot read the file: {exc.strerror or exc}", None) from None


def read_input_list(path: str | os.PathLike[str], *, allow_empty: bool = False) -> TargetSpec:
    """Read and parse an ``-iL`` file; ``"-"`` reads standard input."""
    text, source = _read(path)
    return parse_input_list(text, source=source, allow_empty=allow_empty)


def read_exclude_file(path: str | os.PathLike[str]) -> TargetSpec:
    """Read and parse an ``--excludefile``; ``"-"`` reads standard input."""
    text, source = _read(path)
    return parse_exclude_file(text, source=source)


# -- the parsed spec ---------------------------------------------------------------------


@attrs.frozen
class TargetSpec:
    """Parsed targets and exclusions, host names still unresolved."""

    targets: tuple[Target, ...] = ()
    excludes: tuple[Target, ...] = ()

    def hostnames(self) -> tuple[str, ...]:
        """The names to resolve (targets' then exclusions'), each once, in order of appearance."""
        names = (t.name for t in self.targets + self.excludes if isinstance(t, HostnameTarget))
        return tuple(dict.fromkeys(names))

    def excluding(self, other: TargetSpec) -> TargetSpec:
        """This spec with the targets of ``other`` added to its exclusions."""
        return attrs.evolve(self, excludes=self.excludes + other.targets)

    def __add__(self, other: TargetSpec) -> TargetSpec:
        if not isinstance(other, TargetSpec):
            return NotImplemented
        return TargetSpec(self.targets + other.targets, self.excludes + other.excludes)

    def resolved(
        self,
        addresses: Mapping[str, Sequence[IPAddress | str]] | None = None,
        *,
        resolve_all: bool = False,
    ) -> TargetSet:
        """The address set, given each host name's addresses.

        A target name uses its first address (every address with ``resolve_all``, like
        nmap's ``--resolve-all``); one missing from ``addresses`` or mapped to nothing is
        skipped and listed in :attr:`TargetSet.unresolved`, as nmap skips names that fail to
        resolve. An *excluded* name excludes all its addresses, and one that is missing
        raises :class:`~pyscan.errors.ResolveError` rather than scan what was to be left out.
        """
        answers = addresses or {}
        blocks: list[_Block] = []
        unresolved: list[str] = []
        for target in self.targets:
            if not isinstance(target, HostnameTarget):
                blocks.append(target._block())
                continue
            found = _addresses(answers, target.name)
            if not found:
                unresolved.append(target.name)
            blocks.extend(_host_block(target, a) for a in found[: None if resolve_all else 1])
        exclusions = _Exclusions.build(self.excludes, answers)
        return TargetSet._build(blocks, exclusions, tuple(dict.fromkeys(unresolved)))


def _addresses(answers: Mapping[str, Sequence[IPAddress | str]], name: str) -> list[IPAddress]:
    return [ipaddress.ip_address(str(a).partition("%")[0]) for a in answers.get(name, ())]


def _host_block(target: HostnameTarget, address: IPAddress) -> _Block:
    value = int(address)
    bits = _BITS[address.version]
    if target.prefix is None:
        return _Interval(address.version, value, value)
    if target.prefix > bits:
        raise TargetSpecError(
            target.text,
            f"prefix /{target.prefix} is too large for {target.name}'s IPv{address.version}"
            f" address {address} (at most /{bits})",
            target.position + len(target.name) + 1,
        )
    span = 1 << (bits - target.prefix)
    first = value & ~(span - 1)
    return _Interval(address.version, first, first + span - 1)


# -- blocks: what one target expands to --------------------------------------------------


@attrs.frozen
class _Interval:
    """Consecutive addresses ``first..last`` of one family."""

    version: int
    first: int
    last: int

    @property
    def size(self) -> int:
        return self.last - self.first + 1

    def at(self, index: int) -> int:
        return self.first + index

    def rank(self, value: int) -> int:
        return min(max(value - self.first, 0), self.size)

    def contains(self, value: int) -> bool:
        return self.first <= value <= self.last

    def ints(self, start: int, stop: int) -> Iterable[int]:
        return range(self.first + start, self.first + stop)

    def interval_count(self) -> int:
        return 1

    def intervals(self) -> Iterator[tuple[int, int]]:
        yield self.first, self.last


def _runs(values: tuple[int, ...]) -> list[tuple[int, int]]:
    runs: list[tuple[int, int]] = []
    for v in values:
        if runs and runs[-1][1] == v - 1:
            runs[-1] = (runs[-1][0], v)
        else:
            runs.append((v, v))
    return runs


@attrs.frozen
class _Octets:
    """The product of four octet sets, listed in ascending order (last octet fastest)."""

    sets: OctetSets
    version: int = 4
    strides: tuple[int, int, int, int] = attrs.field(init=False)
    size: int = attrs.field(init=False)

    @strides.default
    def _strides(self) -> tuple[int, int, int, int]:
        n1, n2, n3 = (len(s) for s in self.sets[1:])
        return (n1 * n2 * n3, n2 * n3, n3, 1)

    @size.default
    def _size(self) -> int:
        return self.strides[0] * len(self.sets[0])

    @property
    def first(self) -> int:
        return self.at(0)

    @property
    def last(self) -> int:
        return self.at(self.size - 1)

    def at(self, index: int) -> int:
        value = 0
        for values, stride in zip(self.sets, self.strides, strict=True):
            digit, index = divmod(index, stride)
            value = value << 8 | values[digit]
        return value

    def rank(self, value: int) -> int:
        if value >= 1 << 32:
            return self.size
        result = 0
        for k, (values, stride) in enumerate(zip(self.sets, self.strides, strict=True)):
            octet = value >> (24 - 8 * k) & 0xFF
            pos = bisect.bisect_left(values, octet)
            result += pos * stride
            if pos == len(values) or values[pos] != octet:
                return result
        return result

    def contains(self, value: int) -> bool:
        if not 0 <= value < 1 << 32:
            return False
        values = self.sets
        octets = (value >> 24, value >> 16 & 0xFF, value >> 8 & 0xFF, value & 0xFF)
        return all(_has(values[k], octets[k]) for k in range(4))

    def ints(self, start: int, stop: int) -> Iterator[int]:
        last = self.sets[3]
        width = len(last)
        row, column = divmod(start, width)
        while start < stop:
            base = self.at(row * width) & ~0xFF
            take = min(width - column, stop - start)
            for v in last[column : column + take]:
                yield base | v
            start += take
            row += 1
            column = 0

    def _split(self) -> int:
        """Index of the last octet that is not 0-255 (-1 if all are)."""
        return max((k for k in range(4) if len(self.sets[k]) != 256), default=-1)

    def interval_count(self) -> int:
        k = self._split()
        if k < 0:
            return 1
        return math.prod(len(s) for s in self.sets[:k]) * len(_runs(self.sets[k]))

    def intervals(self) -> Iterator[tuple[int, int]]:
        k = self._split()
        if k < 0:
            yield 0, (1 << 32) - 1
            return
        shift = 8 * (3 - k)
        runs = _runs(self.sets[k])
        for head in itertools.product(*self.sets[:k]):
            base = 0
            for octet in head:
                base = base << 8 | octet
            base <<= 8
            for lo, hi in runs:
                yield (base | lo) << shift, ((base | hi) << shift) | ((1 << shift) - 1)


def _has(values: tuple[int, ...], octet: int) -> bool:
    pos = bisect.bisect_left(values, octet)
    return pos < len(values) and values[pos] == octet


_Block: TypeAlias = _Interval | _Octets


def _octets_block(sets: OctetSets) -> _Block:
    # Contiguous when the octets before the last non-full one are single values and that
    # one is a run: then the product is one interval (an address, a CIDR block, a range).
    split = max((k for k in range(4) if len(sets[k]) != 256), default=-1)
    head = sets[split] if split >= 0 else _FULL_OCTET
    if all(len(s) == 1 for s in sets[: max(split, 0)]) and head[-1] - head[0] + 1 == len(head):
        first = last = 0
        for values in sets:
            first = first << 8 | values[0]
            last = last << 8 | values[-1]
        return _Interval(4, first, last)
    return _Octets(sets)


# -- exclusions --------------------------------------------------------------------------


@attrs.frozen
class _Exclusions:
    """Excluded addresses as sorted, disjoint, non-adjacent intervals per family."""

    firsts: Mapping[int, list[int]]
    lasts: Mapping[int, list[int]]

    @classmethod
    def build(
        cls, excludes: Sequence[Target], answers: Mapping[str, Sequence[IPAddress | str]]
    ) -> _Exclusions:
        blocks: list[tuple[Target, _Block]] = []
        for target in excludes:
            if isinstance(target, HostnameTarget):
                found = _addresses(answers, target.name)
                if not found:
                    raise ResolveError(
                        f"cannot exclude {target.name!r}: no address for it was resolved"
                    )
                blocks.extend((target, _host_block(target, a)) for a in found)
            else:
                blocks.append((target, target._block()))
        total = 0
        for target, block in blocks:
            total += block.interval_count()
            if total > MAX_EXCLUDE_RANGES:
                raise TargetSpecError(
                    target.text,
                    f"exclusions expand to more than {MAX_EXCLUDE_RANGES} separate address"
                    " ranges; use fewer or wider ones",
                    None,
                )
        pieces: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for _, block in blocks:
            pieces[block.version].extend(block.intervals())
        firsts: dict[int, list[int]] = {}
        lasts: dict[int, list[int]] = {}
        for version, spans in pieces.items():
            spans.sort()
            f: list[int] = []
            la: list[int] = []
            for lo, hi in spans:
                if la and lo <= la[-1] + 1:
                    la[-1] = max(la[-1], hi)
                else:
                    f.append(lo)
                    la.append(hi)
            firsts[version], lasts[version] = f, la
        return cls(firsts, lasts)

    def overlapping(self, version: int, lo: int, hi: int) -> Iterator[tuple[int, int]]:
        firsts, lasts = self.firsts[version], self.lasts[version]
        j = bisect.bisect_left(lasts, lo)
        while j < len(firsts) and firsts[j] <= hi:
            yield firsts[j], lasts[j]
            j += 1

    def contains(self, version: int, value: int) -> bool:
        firsts = self.firsts[version]
        j = bisect.bisect_right(firsts, value) - 1
        return j >= 0 and value <= self.lasts[version][j]


@attrs.frozen
class _Part:
    """One block with the index runs it keeps after exclusions.

    ``starts[k]`` is the output index where kept run ``k`` begins and ``origins[k]`` the
    block index it maps to; ``None`` when nothing in the block is excluded.
    """

    block: _Block
    size: int
    starts: list[int] | None = None
    origins: list[int] | None = None

    @classmethod
    def build(cls, block: _Block, exclusions: _Exclusions) -> _Part:
        cut: list[tuple[int, int]] = []
        for lo, hi in exclusions.overlapping(block.version, block.first, block.last):
            a, b = block.rank(lo), block.rank(hi + 1)
            if a < b:
                cut.append((a, b))
        if not cut:
            return cls(block, block.size)
        starts: list[int] = []
        origins: list[int] = []
        done = 0
        position = 0
        for a, b in [*cut, (block.size, block.size)]:
            if a > position:
                starts.append(done)
                origins.append(position)
                done += a - position
            position = b
        return cls(block, done, starts, origins)

    def at(self, index: int) -> int:
        if self.starts is None or self.origins is None:
            return self.block.at(index)
        k = bisect.bisect_right(self.starts, index) - 1
        return self.block.at(self.origins[k] + index - self.starts[k])

    def ints(self, start: int) -> Iterator[int]:
        if self.starts is None or self.origins is None:
            yield from self.block.ints(start, self.size)
            return
        k = max(0, bisect.bisect_right(self.starts, start) - 1)
        ends = [*self.starts[1:], self.size]
        for run in range(k, len(self.starts)):
            skip = max(0, start - self.starts[run])
            origin = self.origins[run]
            yield from self.block.ints(origin + skip, origin + ends[run] - self.starts[run])


_MAKE: Final[Mapping[int, type[IPAddress]]] = {
    4: ipaddress.IPv4Address,
    6: ipaddress.IPv6Address,
}


def _address(version: int, value: int) -> IPAddress:
    if version == 4:
        return ipaddress.IPv4Address(value)
    return ipaddress.IPv6Address(value)


# -- the resolved set --------------------------------------------------------------------


@attrs.frozen(eq=False)
class TargetSet:
    """The addresses a resolved :class:`TargetSpec` stands for, never materialised.

    Index ``i`` (``0 <= i < size``) numbers the addresses in nmap's order: targets in the
    order given (duplicates kept, as nmap lists them), each block ascending, exclusions
    removed. :meth:`iter` walks them in that order or in a seeded random order, optionally
    one shard of several and from a resume position. There is no ``__len__`` (sizes exceed
    ``sys.maxsize``); use :attr:`size`.
    """

    _parts: tuple[_Part, ...]
    _offsets: tuple[int, ...]
    _exclusions: _Exclusions
    _intervals: Mapping[int, tuple[list[int], list[int]]]
    _patterns: tuple[_Octets, ...]
    size: int
    unresolved: tuple[str, ...] = ()
    """Target host names that had no address (skipped, as nmap skips them)."""

    @classmethod
    def _build(
        cls, blocks: Sequence[_Block], exclusions: _Exclusions, unresolved: tuple[str, ...]
    ) -> TargetSet:
        parts = tuple(_Part.build(b, exclusions) for b in blocks)
        offsets = tuple(itertools.accumulate((p.size for p in parts), initial=0))
        spans: dict[int, list[tuple[int, int]]] = {4: [], 6: []}
        for b in blocks:
            if isinstance(b, _Interval):
                spans[b.version].append((b.first, b.last))
        merged: dict[int, tuple[list[int], list[int]]] = {}
        for version, found in spans.items():
            found.sort()
            firsts: list[int] = []
            lasts: list[int] = []
            for lo, hi in found:
                if lasts and lo <= lasts[-1] + 1:
                    lasts[-1] = max(lasts[-1], hi)
                else:
                    firsts.append(lo)
                    lasts.append(hi)
            merged[version] = (firsts, lasts)
        patterns = tuple(dict.fromkeys(b for b in blocks if isinstance(b, _Octets)))
        return cls(parts, offsets[:-1], exclusions, merged, patterns, offsets[-1], unresolved)

    @classmethod
    def parse(
        cls, specs: str | Iterable[str], *, exclude: str | Iterable[str] | None = None
    ) -> TargetSet:
        """Parse numeric targets straight into a set (host names raise TargetSpecError)."""
        spec = parse_targets(specs, exclude=exclude, allow_empty=True)
        for target in spec.targets + spec.excludes:
            if isinstance(target, HostnameTarget):
                raise TargetSpecError(target.text, "host names need resolving first", None)
        return spec.resolved()

    @property
    def families(self) -> frozenset[int]:
        """IP versions (4, 6) present."""
        return frozenset(p.block.version for p in self._parts if p.size)

    def at(self, index: int) -> IPAddress:
        """The address at ``index`` in sequential order."""
        if not 0 <= index < self.size:
            raise IndexError(f"target index {index} out of range for {self.size} targets")
        # The last part starting at or before index holds it (empty parts come earlier).
        k = bisect.bisect_right(self._offsets, index) - 1
        part = self._parts[k]
        return _address(part.block.version, part.at(index - self._offsets[k]))

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            try:
                item = ipaddress.ip_address(item)
            except ValueError:
                return False
        if not isinstance(item, ipaddress.IPv4Address | ipaddress.IPv6Address):
            return False
        version, value = item.version, int(item)
        if self._exclusions.contains(version, value):
            return False
        firsts, lasts = self._intervals[version]
        j = bisect.bisect_right(firsts, value) - 1
        if j >= 0 and value <= lasts[j]:
            return True
        return version == 4 and any(p.contains(value) for p in self._patterns)

    def __bool__(self) -> bool:
        return self.size > 0

    def __iter__(self) -> Iterator[IPAddress]:
        return self.iter()

    def iter(
        self,
        *,
        seed: Seed = None,
        shard: tuple[int, int] | None = None,
        start: int = 0,
    ) -> Iterator[IPAddress]:
        """Addresses in sequential order (``seed=None``) or in a seeded random order.

        ``shard=(i, count)`` yields only shard ``i`` (0-based) of ``count`` disjoint shards
        whose union is the whole set; ``start`` skips the first ``start`` addresses of the
        (sharded) sequence, so a resumed run yields exactly the rest.
        """
        if seed is None and shard is None:
            return self._sequential(start)
        return self._pick(Permutation(self.size, seed).iter(start=start, shard=shard))

    def permutation(self, seed: Seed) -> Permutation:
        """The index permutation :meth:`iter` uses for ``seed``."""
        return Permutation(self.size, seed)

    def _pick(self, positions: Iterable[int]) -> Iterator[IPAddress]:
        """``at`` for each position, with the lookups hoisted out of the loop."""
        parts = self._parts
        if len(parts) == 1 and parts[0].starts is None and isinstance(parts[0].block, _Interval):
            make = _MAKE[parts[0].block.version]
            first = parts[0].block.first
            for i in positions:
                yield make(first + i)
            return
        offsets = self._offsets
        find = bisect.bisect_right
        for i in positions:
            k = find(offsets, i) - 1
            part = parts[k]
            yield _MAKE[part.block.version](part.at(i - offsets[k]))

    def _sequential(self, start: int) -> Iterator[IPAddress]:
        if start < 0:
            raise IndexError(f"start {start} must be >= 0")
        k = max(0, bisect.bisect_right(self._offsets, start) - 1)
        for j in range(k, len(self._parts)):
            part = self._parts[j]
            skip = max(0, start - self._offsets[j])
            if skip >= part.size:
                continue
            make = _MAKE[part.block.version]
            for value in part.ints(skip):
                yield make(value)
