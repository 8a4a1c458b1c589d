"""Parser for nmap's ``nmap-service-probes`` file.

How this works
--------------
The file is line oriented. ``Exclude`` may appear once, before the first probe. Each ``Probe``
line opens a probe; the directive lines after it (``match``, ``softmatch``, ``ports``,
``sslports``, ``rarity``, ``fallback``, ``totalwaitms``, ``tcpwrappedms``) belong to it until the
next ``Probe``. ``#`` starts a comment line. The file is read as bytes (one character per byte,
Latin-1), as nmap reads it, so patterns and payloads see exactly the bytes in the file.

Delimited fields (``q|...|``, ``m/.../``, ``p/.../``, ``cpe:/.../``) end at the first
following occurrence of their delimiter, as in nmap: a field cannot contain its delimiter.
Patterns are translated from PCRE and compiled when parsed (see :mod:`._pcre`); version
templates are parsed into literal bytes and substitutions. Every problem raises
:class:`~pyscan.errors.ProbeFileError` naming the file, the line and the column.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import attrs

from pyscan.errors import DataFileError, ProbeFileError
from pyscan.service._pcre import PatternError, compile_pattern, translate

__all__ = [
    "Match",
    "ProbeDatabase",
    "Protocol",
    "ServiceProbe",
    "Substitution",
    "TemplateError",
    "TemplatePart",
    "VersionTemplate",
    "find_nmap_file",
    "load_probes",
    "parse_probes",
    "unescape",
]

Protocol = Literal["tcp", "udp"]

DEFAULT_RARITY = 5
DEFAULT_TOTALWAITMS = 5000
DEFAULT_TCPWRAPPEDMS = 2000
_MAX_FALLBACKS = 17  # nmap stops at MAXFALLBACKS - 3 named fallbacks
_WAIT_RANGE = (100, 300_000)
_NMAP_DIRS = ("/usr/share/nmap", "/usr/local/share/nmap")
_SPACE = " \t\v\f\r\n"
_VERSION_FIELDS = {
    "p": "product",
    "v": "version",
    "i": "extrainfo",
    "h": "hostname",
    "o": "ostype",
    "d": "devicetype",
}
_SIMPLE_ESCAPES = {
    "0": 0,
    "a": 7,
    "b": 8,
    "t": 9,
    "n": 10,
    "v": 11,
    "f": 12,
    "r": 13,
    "\\": 0x5C,
}
_HEX = "0123456789abcdefABCDEF"


def _byte_text(text: str) -> str:
    """One character per byte: characters above U+00FF become their UTF-8 bytes."""
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        pass
    else:
        return text
    return "".join(ch if ord(ch) < 0x100 else ch.encode("utf-8").decode("latin-1") for ch in text)


def _hex(data: bytes) -> str:
    return data.hex()


class TemplateError(ValueError):
    """A version template or escaped string is malformed; ``offset`` indexes its text."""

    def __init__(self, offset: int, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        super().__init__(f"at offset {offset}: {reason}")


def unescape(text: str) -> bytes:
    """Decode a probe string: ``\\0 \\a \\b \\t \\n \\v \\f \\r \\\\ \\xHH``; ``\\c`` is ``c``.

    Raises :class:`TemplateError` for ``\\x`` without two hex digits or a trailing ``\\``.
    """
    text = _byte_text(text)
    if "\\" not in text:
        return text.encode("latin-1")
    out = bytearray()
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch != "\\":
            out.append(ord(ch))
            i += 1
            continue
        if i + 1 >= n:
            raise TemplateError(i, "lone backslash at the end")
        esc = text[i + 1]
        if esc == "x":
            digits = text[i + 2 : i + 4]
            if len(digits) != 2 or any(d not in _HEX for d in digits):
                raise TemplateError(i, f"\\x needs two hex digits, found {digits!r}")
            out.append(int(digits, 16))
            i += 4
            continue
        out.append(_SIMPLE_ESCAPES.get(esc, ord(esc)))
        i += 2
    return bytes(out)


# -- version templates ---------------------------------------------------------------------


@attrs.frozen
class Substitution:
    """One ``$`` variable of a version template.

    ``kind`` is ``"$"`` for ``$n`` (raw capture), ``"P"`` for ``$P(n)`` (printable bytes only),
    ``"SUBST"`` for ``$SUBST(n,"find","replace")`` and ``"I"`` for ``$I(n,">")`` /
    ``$I(n,"<")`` (capture unpacked as a big- or little-endian unsigned integer).
    """

    kind: Literal["$", "P", "SUBST", "I"]
    group: int
    find: bytes = attrs.field(default=b"", repr=_hex)
    replace: bytes = attrs.field(default=b"", repr=_hex)
    endian: Literal["", ">", "<"] = ""


TemplatePart = bytes | Substitution

_ARG_INT = re.compile(r"\s*(0[xX][0-9a-fA-F]+|\d+)\s*")
_ARG_SEP = re.compile(r"\s*([,)])")


def _string_arg(text: str, start: int) -> tuple[bytes, int]:
    """A double-quoted argument at ``text[start] == '"'``; returns (value, index past it)."""
    i = start + 1
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text[i] == '"':
            try:
                return unescape(text[start + 1 : i]), i + 1
            except TemplateError as exc:
                raise TemplateError(start + 1 + exc.offset, exc.reason) from None
        i += 1
    raise TemplateError(start, "unterminated string argument")


def _command_args(text: str, start: int) -> tuple[list[int | bytes], int]:
    """Arguments after ``$NAME(`` at ``start``; returns (args, index past ``)``)."""
    args: list[int | bytes] = []
    i = start
    while True:
        while i < len(text) and text[i] in _SPACE:
            i += 1
        if i >= len(text):
            raise TemplateError(start - 1, "missing ) after template arguments")
        if text[i] == ")" and not args:
            return args, i + 1
        if text[i] == '"':
            value, i = _string_arg(text, i)
            args.append(value)
        else:
            m = _ARG_INT.match(text, i)
            if m is None:
                raise TemplateError(i, "template argument must be a number or a quoted string")
            args.append(int(m.group(1), 0))
            i = m.end()
        sep = _ARG_SEP.match(text, i)
        if sep is None:
            raise TemplateError(i, "expected , or ) after a template argument")
        i = sep.end()
        if sep.group(1) == ")":
            return args, i


def _group_arg(args: list[int | bytes], at: int) -> int:
    group = args[0] if args else None
    if not isinstance(group, int) or not 1 <= group <= 9:
        raise TemplateError(at, "the first argument must be a capture group number 1-9")
    return group


def parse_template(text: str) -> tuple[TemplatePart, ...]:
    """Split a version template into literal bytes and :class:`Substitution` parts."""
    text = _byte_text(text)
    parts: list[TemplatePart] = []
    i = 0
    while i < len(text):
        dollar = text.find("$", i)
        if dollar < 0:
            parts.append(text[i:].encode("latin-1"))
            break
        if dollar > i:
            parts.append(text[i:dollar].encode("latin-1"))
        i = dollar + 1
        if i < len(text) and text[i].isdigit():
            if text[i] == "0":
                raise TemplateError(dollar, "$0 is not a capture group (use $1 to $9)")
            parts.append(Substitution("$", int(text[i])))
            i += 1
            continue
        m = re.compile(r"(P|SUBST|I)\(").match(text, i)
        if m is None:
            raise TemplateError(
                dollar, 'a "$" must start $1-$9, $P(n), $SUBST(n,"from","to") or $I(n,">")'
            )
        args, i = _command_args(text, m.end())
        group = _group_arg(args, dollar)
        name = m.group(1)
        if name == "P":
            if len(args) != 1:
                raise TemplateError(dollar, "$P takes one argument: $P(n)")
            parts.append(Substitution("P", group))
        elif name == "SUBST":
            find, replace = [*args[1:], 0, 0][:2]
            if len(args) != 3 or not isinstance(find, bytes) or not isinstance(replace, bytes):
                raise TemplateError(dollar, '$SUBST takes $SUBST(n,"from","to")')
            if not find:
                raise TemplateError(dollar, "$SUBST needs a non-empty string to replace")
            parts.append(Substitution("SUBST", group, find, replace))
        else:
            endian = args[1] if len(args) == 2 else None
            if endian == b">":
                parts.append(Substitution("I", group, endian=">"))
            elif endian == b"<":
                parts.append(Substitution("I", group, endian="<"))
            else:
                raise TemplateError(dollar, '$I takes $I(n,">") or $I(n,"<")')
    return tuple(parts)


@attrs.frozen
class VersionTemplate:
    """A version field template such as ``p/OpenSSH/`` or ``cpe:/a:openbsd:openssh:$2/``.

    ``text`` is the template between the delimiters (for CPE templates without the
    ``cpe:/`` prefix), ``flags`` the letters after the closing delimiter (``"a"`` on a CPE
    template). ``parts`` is ``text`` parsed into literal bytes and substitutions; constructing
    a template with a malformed ``$`` variable raises :class:`TemplateError`.
    """

    text: str
    flags: str = ""
    parts: tuple[TemplatePart, ...] = attrs.field(init=False, eq=False, repr=False)

    @parts.default
    def _parse_parts(self) -> tuple[TemplatePart, ...]:
        return parse_template(self.text)


# -- data model ------------------------------------------------------------------------------


@attrs.frozen
class Match:
    """A ``match`` or ``softmatch`` line of a probe.

    ``source`` is the PCRE pattern as written in the file, ``flags`` the pattern options
    (``i`` caseless, ``s`` dot matches newline) and ``pattern`` its compiled Python form,
    which matches bytes (compiled on first use and kept: a scan touches few of nmap's ~12,000
    patterns). The version templates are ``None`` when the line has none. ``line`` is the
    1-based line in the file (not part of equality).
    """

    service: str
    source: str
    flags: str = attrs.field(default="", validator=attrs.validators.matches_re(r"[is]*"))
    soft: bool = False
    product: VersionTemplate | None = None
    version: VersionTemplate | None = None
    extrainfo: VersionTemplate | None = None
    hostname: VersionTemplate | None = None
    ostype: VersionTemplate | None = None
    devicetype: VersionTemplate | None = None
    cpe: tuple[VersionTemplate, ...] = ()
    line: int = attrs.field(default=0, eq=False)
    _compiled: list[re.Pattern[bytes]] = attrs.field(init=False, eq=False, repr=False, factory=list)

    def __attrs_post_init__(self) -> None:
        # Translating checks the PCRE syntax (PatternError); re.compile waits for first use.
        translate(_byte_text(self.source))

    @property
    def pattern(self) -> re.Pattern[bytes]:
        """The compiled pattern (PatternError if it does not compile)."""
        if not self._compiled:
            self._compiled.append(
                compile_pattern(
                    _byte_text(self.source), caseless="i" in self.flags, dotall="s" in self.flags
                )
            )
        return self._compiled[0]


@attrs.frozen
class ServiceProbe:
    """A ``Probe`` with its directives and match lines, as in ``nmap-service-probes``.

    ``payload`` is the decoded probe string (empty for the NULL probe, which only listens);
    ``no_payload`` is nmap's ``no-payload`` option (the probe is not used as a UDP payload
    elsewhere). ``ports`` and ``sslports`` are the ports the probe is most likely to
    succeed on, in clear and over TLS. ``fallback`` names other probes whose match lines also
    apply to this probe's response (see :meth:`ProbeDatabase.fallback_chain`). Wait times are
    in milliseconds. ``line`` is the line of the ``Probe`` directive (not part of equality).
    """

    protocol: Protocol
    name: str
    payload: bytes = attrs.field(default=b"", repr=_hex)
    no_payload: bool = False
    ports: frozenset[int] = frozenset()
    sslports: frozenset[int] = frozenset()
    rarity: int = DEFAULT_RARITY
    fallback: tuple[str, ...] = ()
    totalwaitms: int = DEFAULT_TOTALWAITMS
    tcpwrappedms: int = DEFAULT_TCPWRAPPEDMS
    matches: tuple[Match, ...] = ()
    line: int = attrs.field(default=0, eq=False)
    services: frozenset[str] = attrs.field(init=False, eq=False, repr=False)

    @services.default
    def _services(self) -> frozenset[str]:
        return frozenset(match.service for match in self.matches)

    @property
    def is_null(self) -> bool:
        """True for the NULL probe: a TCP probe that sends nothing and waits for a banner."""
        return self.protocol == "tcp" and not self.payload

    def may_identify(self, service: str) -> bool:
        """Whether a match line of this probe names ``service``.

        After a soft match, nmap only tries further probes that may identify the soft-matched
        service.
        """
        return service in self.services


@attrs.frozen
class ProbeDatabase:
    """All probes of a service-probe file, in file order, and its ``Exclude`` ports.

    ``exclude`` holds ``(protocol, low, high)`` port ranges, protocol one of ``"tcp"``,
    ``"udp"``, ``"sctp"``.
    """

    probes: tuple[ServiceProbe, ...] = ()
    exclude: tuple[tuple[str, int, int], ...] = ()
    path: str = "<string>"
    _index: dict[tuple[str, str], ServiceProbe] = attrs.field(init=False, eq=False, repr=False)

    @_index.default
    def _build_index(self) -> dict[tuple[str, str], ServiceProbe]:
        index: dict[tuple[str, str], ServiceProbe] = {}
        for probe in self.probes:
            index.setdefault((probe.protocol, probe.name), probe)
        return index

    def __iter__(self) -> Iterator[ServiceProbe]:
        return iter(self.probes)

    def __len__(self) -> int:
        return len(self.probes)

    @property
    def null_probe(self) -> ServiceProbe | None:
        """The TCP probe with an empty payload, or ``None``."""
        return next((probe for probe in self.probes if probe.is_null), None)

    def get(self, name: str, protocol: Protocol | None = None) -> ServiceProbe | None:
        """The first probe called ``name``, preferring ``protocol``; ``None`` if absent.

        As nmap does when resolving fallbacks, a probe of the other protocol is returned when
        none of ``protocol`` has that name (the NULL probe only for TCP).
        """
        if protocol is not None:
            found = self._index.get((protocol, name))
            if found is not None:
                return found
        for probe in self.probes:
            if probe.name == name and not (probe.is_null and protocol == "udp"):
                return probe
        return None

    def probes_for(self, protocol: Protocol) -> tuple[ServiceProbe, ...]:
        """The probes of one protocol, in file order."""
        return tuple(probe for probe in self.probes if probe.protocol == protocol)

    def fallback_chain(self, probe: ServiceProbe) -> tuple[ServiceProbe, ...]:
        """Probes whose match lines are tried, in order, on a response to ``probe``.

        As in nmap: the probe itself, then its ``fallback`` probes, then (TCP only) the NULL
        probe. The NULL probe's chain is itself alone. Raises ``KeyError`` for a fallback
        name that is not in the database.
        """
        if probe.is_null:
            return (probe,)
        chain = [probe]
        for name in probe.fallback:
            found = self.get(name, probe.protocol)
            if found is None:
                raise KeyError(f"probe {probe.name!r}: unknown fallback probe {name!r}")
            if all(found is not seen for seen in chain):
                chain.append(found)
        null = self.null_probe
        if probe.protocol == "tcp" and null is not None and all(null is not p for p in chain):
            chain.append(null)
        return tuple(chain)

    def is_excluded(self, port: int, protocol: str) -> bool:
        """Whether the ``Exclude`` directive exempts ``port`` from version detection."""
        return any(proto == protocol and low <= port <= high for proto, low, high in self.exclude)


# -- parser ----------------------------------------------------------------------------------


@attrs.define
class _Line:
    """One line under the cursor, for column-accurate errors."""

    path: str
    number: int
    text: str
    pos: int = 0

    def error(self, reason: str, index: int | None = None) -> ProbeFileError:
        at = self.pos if index is None else index
        return ProbeFileError(self.path, self.number, at + 1, reason)

    def skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in _SPACE:
            self.pos += 1

    def word(self) -> tuple[str, int]:
        self.skip_space()
        start = self.pos
        while self.pos < len(self.text) and self.text[self.pos] not in _SPACE:
            self.pos += 1
        return self.text[start : self.pos], start

    def rest(self) -> tuple[str, int]:
        self.skip_space()
        return self.text[self.pos :], self.pos

    def delimited(self, what: str) -> tuple[str, str, str, int]:
        """``mode<d>body<d>flags`` -> (mode, body, flags, index of body)."""
        self.skip_space()
        start = self.pos
        while self.pos < len(self.text) and (
            self.text[self.pos].isalpha() or self.text[self.pos] in ":"
        ):
            self.pos += 1
        mode = self.text[start : self.pos]
        if self.pos >= len(self.text) or self.text[self.pos] in _SPACE:
            raise self.error(f"{what}: expected a delimiter after {mode!r}", start)
        delimiter = self.text[self.pos]
        body_start = self.pos + 1
        end = self.text.find(delimiter, body_start)
        if end < 0:
            raise self.error(f"{what}: no closing delimiter {delimiter!r}", self.pos)
        self.pos = end + 1
        flag_start = self.pos
        while self.pos < len(self.text) and self.text[self.pos].isalpha():
            self.pos += 1
        flags = self.text[flag_start : self.pos]
        if self.pos < len(self.text) and self.text[self.pos] not in _SPACE:
            raise self.error(f"{what}: expected a space after {mode}{delimiter}...{delimiter}")
        return mode, self.text[body_start:end], flags, body_start


@attrs.define
class _ProbeBuilder:
    protocol: Protocol
    name: str
    payload: bytes
    no_payload: bool
    line: int
    ports: set[int] = attrs.field(factory=set)
    sslports: set[int] = attrs.field(factory=set)
    rarity: int = DEFAULT_RARITY
    fallback: tuple[str, ...] = ()
    fallback_at: tuple[int, ...] = ()
    fallback_line: int = 0
    totalwaitms: int = DEFAULT_TOTALWAITMS
    tcpwrappedms: int = DEFAULT_TCPWRAPPEDMS
    matches: list[Match] = attrs.field(factory=list)

    def build(self) -> ServiceProbe:
        return ServiceProbe(
            protocol=self.protocol,
            name=self.name,
            payload=self.payload,
            no_payload=self.no_payload,
            ports=frozenset(self.ports),
            sslports=frozenset(self.sslports),
            rarity=self.rarity,
            fallback=self.fallback,
            totalwaitms=self.totalwaitms,
            tcpwrappedms=self.tcpwrappedms,
            matches=tuple(self.matches),
            line=self.line,
        )


_PORT_ITEM = re.compile(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?")


def _port_list(line: _Line) -> set[int]:
    """``21-25,53,80`` as in a ``ports`` directive."""
    text, start = line.rest()
    ports: set[int] = set()
    i = 0
    while True:
        m = _PORT_ITEM.match(text, i)
        if m is None:
            raise line.error('bad port list; the form is "21-25,53,80"', start + i)
        low = int(m.group(1))
        high = int(m.group(2)) if m.group(2) is not None else low
        if high > 65535 or low > high:
            raise line.error(f"bad port range {m.group().strip()!r}", start + i)
        ports.update(range(low, high + 1))
        i = m.end()
        if i >= len(text):
            return ports
        if text[i] != ",":
            raise line.error('bad port list; the form is "21-25,53,80"', start + i)
        i += 1


_EXCLUDE_ITEM = re.compile(r"\s*(?:([TUS]):)?\s*(\d*)\s*(-?)\s*(\d*)\s*")
_EXCLUDE_PROTOCOLS = {"T": ("tcp",), "U": ("udp",), "S": ("sctp",)}


def _exclude_list(line: _Line) -> tuple[tuple[str, int, int], ...]:
    """``T:9100-9107,U:53`` as after ``Exclude`` (nmap's -p syntax, numbers only)."""
    text, start = line.rest()
    protocols: tuple[str, ...] = ("tcp", "udp", "sctp")
    ranges: list[tuple[str, int, int]] = []
    i = 0
    while True:
        m = _EXCLUDE_ITEM.match(text, i)
        assert m is not None  # every group is optional
        prefix, low_text, dash, high_text = m.groups()
        if prefix:
            protocols = _EXCLUDE_PROTOCOLS[prefix]
        if not low_text and not dash:
            raise line.error("expected a port or a port range", start + m.end())
        low = int(low_text) if low_text else 1
        high = (int(high_text) if high_text else 65535) if dash else low
        if high > 65535 or low > high:
            raise line.error(f"bad port range {m.group().strip()!r}", start + i)
        ranges.extend((proto, low, high) for proto in protocols)
        i = m.end()
        if i >= len(text):
            return tuple(ranges)
        if text[i] != ",":
            raise line.error("expected , between port ranges", start + i)
        i += 1


def _int_directive(line: _Line, what: str, low: int, high: int) -> int:
    text, start = line.rest()
    if not re.fullmatch(r"\d+", text.rstrip()):
        raise line.error(f"{what} takes a whole number, not {text!r}", start)
    value = int(text)
    if not low <= value <= high:
        raise line.error(f"{what} must be between {low} and {high}, not {value}", start)
    return value


def _probe_line(line: _Line) -> _ProbeBuilder:
    protocol, at = line.word()
    if protocol not in ("TCP", "UDP"):
        raise line.error(f"probe protocol must be TCP or UDP, not {protocol!r}", at)
    name, at = line.word()
    if not name:
        raise line.error("missing probe name", at)
    if not name[0].isalnum():
        raise line.error(f"probe name must start with a letter or digit: {name!r}", at)
    line.skip_space()
    if not line.text.startswith("q", line.pos):
        raise line.error("the probe string must look like q|...|")
    mode, body, flags, body_at = line.delimited("probe string")
    if mode != "q" or flags:
        raise line.error("the probe string must look like q|...|", body_at - 2)
    try:
        payload = unescape(body)
    except TemplateError as exc:
        raise line.error(f"probe string: {exc.reason}", body_at + exc.offset) from None
    options = line.rest()[0].split()
    return _ProbeBuilder(
        protocol="tcp" if protocol == "TCP" else "udp",
        name=name,
        payload=payload,
        no_payload="no-payload" in options,  # nmap ignores options it does not know
        line=line.number,
    )


def _match_line(line: _Line, soft: bool, lazy: bool = False) -> Match:
    service, at = line.word()
    if not service:
        raise line.error("missing service name", at)
    mode, source, flags, source_at = line.delimited("pattern")
    if mode != "m":
        raise line.error("expected the pattern as m/regex/ after the service name", source_at - 2)
    for k, flag in enumerate(flags):
        if flag not in "is":
            raise line.error(
                f"unknown pattern option {flag!r} (only i and s)", line.pos - len(flags) + k
            )
    fields: dict[str, VersionTemplate] = {}
    cpe: list[VersionTemplate] = []
    while True:
        line.skip_space()
        if line.pos >= len(line.text):
            break
        mode, text, template_flags, text_at = line.delimited("version field")
        try:
            template = VersionTemplate(text, template_flags)
        except TemplateError as exc:
            raise line.error(exc.reason, text_at + exc.offset) from None
        if mode == "cpe:":
            cpe.append(template)
        elif mode in _VERSION_FIELDS:
            fields[_VERSION_FIELDS[mode]] = template  # a repeated field replaces, as in nmap
        else:
            raise line.error(
                f"unknown version field {mode!r} (expected p, v, i, h, o, d or cpe:)",
                text_at - 1 - len(mode),
            )
    try:
        match = Match(
            service=service,
            source=source,
            flags=flags,
            soft=soft,
            cpe=tuple(cpe),
            line=line.number,
            **fields,
        )
        if not lazy:
            match.pattern  # noqa: B018 - compile now: errors get this line and column
    except PatternError as exc:
        raise line.error(f"bad pattern: {exc.reason}", source_at + exc.offset) from None
    return match


_DIRECTIVES = frozenset(
    {"ports", "sslports", "rarity", "fallback", "totalwaitms", "tcpwrappedms", "match", "softmatch"}
)


def parse_probes(text: str, path: str = "<string>", *, lazy: bool = False) -> ProbeDatabase:
    """Parse the text of an ``nmap-service-probes`` file.

    ``path`` names the source in error messages. Raises
    :class:`~pyscan.errors.ProbeFileError` with the line and column of the first problem.
    With ``lazy``, patterns are only translated now and compiled on first use (loading
    nmap's file takes a fifth of the time); a pattern Python's ``re`` then refuses raises
    PatternError at that point, so keep the default for files not known to be good.
    """
    builders: list[_ProbeBuilder] = []
    exclude: tuple[tuple[str, int, int], ...] | None = None
    current: _ProbeBuilder | None = None
    null_seen = False
    for number, raw in enumerate(text.split("\n"), start=1):
        line = _Line(path, number, raw[:-1] if raw.endswith("\r") else raw)
        line.skip_space()
        if line.pos >= len(line.text) or line.text[line.pos] == "#":
            continue
        directive, at = line.word()
        if directive == "Exclude":
            if exclude is not None:
                raise line.error("only one Exclude directive is allowed", at)
            if current is not None:
                raise line.error("Exclude must come before the first Probe", at)
            exclude = _exclude_list(line)
        elif directive == "Probe":
            current = _probe_line(line)
            if current.protocol == "tcp" and not current.payload:
                if null_seen:
                    raise line.error("only one TCP probe may have an empty probe string", at)
                null_seen = True
            builders.append(current)
        elif directive in _DIRECTIVES:
            if current is None:
                raise line.error(f"{directive} must follow a Probe line", at)
            _probe_directive(line, directive, current, lazy)
        else:
            raise line.error(f"unknown directive {directive!r}", at)
    database = ProbeDatabase(
        probes=tuple(builder.build() for builder in builders),
        exclude=exclude or (),
        path=path,
    )
    for builder, probe in zip(builders, database.probes, strict=True):
        for name, column in zip(builder.fallback, builder.fallback_at, strict=True):
            if database.get(name, probe.protocol) is None:
                raise ProbeFileError(
                    path, builder.fallback_line, column + 1, f"unknown fallback probe {name!r}"
                )
    return database


def _probe_directive(line: _Line, directive: str, probe: _ProbeBuilder, lazy: bool) -> None:
    if directive in ("match", "softmatch"):
        probe.matches.append(_match_line(line, soft=directive == "softmatch", lazy=lazy))
    elif directive == "ports":
        probe.ports |= _port_list(line)
    elif directive == "sslports":
        probe.sslports |= _port_list(line)
    elif directive == "rarity":
        probe.rarity = _int_directive(line, "rarity", 1, 9)
    elif directive == "totalwaitms":
        probe.totalwaitms = _int_directive(line, "totalwaitms", *_WAIT_RANGE)
    elif directive == "tcpwrappedms":
        probe.tcpwrappedms = _int_directive(line, "tcpwrappedms", *_WAIT_RANGE)
    else:
        text, start = line.rest()
        names = [(m.group(), start + m.start()) for m in re.finditer(r"[^,\s]+", text)]
        if not names:
            raise line.error("fallback needs at least one probe name", start)
        if len(names) > _MAX_FALLBACKS:
            raise line.error(f"at most {_MAX_FALLBACKS} fallback probes are allowed", start)
        probe.fallback = tuple(name for name, _ in names)
        probe.fallback_at = tuple(column for _, column in names)
        probe.fallback_line = line.number


def find_nmap_file(name: str) -> Path | None:
    """Locate an nmap data file: ``$NMAPDIR``, then /usr/share/nmap, /usr/local/share/nmap."""
    directories = [os.environ.get("NMAPDIR", ""), *_NMAP_DIRS]
    for directory in directories:
        if directory:
            candidate = Path(directory) / name
            if candidate.is_file():
                return candidate
    return None


def load_probes(path: str | os.PathLike[str] | None = None, *, lazy: bool = False) -> ProbeDatabase:
    """Read and parse a service-probe file; by default nmap's ``nmap-service-probes``.

    ``lazy`` compiles patterns on first use (see :func:`parse_probes`).

    Raises :class:`~pyscan.errors.DataFileError` when the file cannot be found or read and
    :class:`~pyscan.errors.ProbeFileError` when it is malformed.
    """
    if path is None:
        found = find_nmap_file("nmap-service-probes")
        if found is None:
            raise DataFileError(
                "cannot find nmap-service-probes in $NMAPDIR, "
                + " or ".join(_NMAP_DIRS)
                + "; install nmap or pass a path"
            )
        path = found
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise DataFileError(
            exc.errno, f"cannot read service-probe file: {exc.strerror}", os.fspath(path)
        ) from None
    return parse_probes(data.decode("latin-1"), path=os.fspath(path), lazy=lazy)
