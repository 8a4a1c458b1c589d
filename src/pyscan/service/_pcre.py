"""Translate nmap's PCRE patterns into Python ``re`` patterns over bytes.

How this works
--------------
nmap compiles every ``match`` pattern with PCRE (version 8.x in nmap 7.93, non-UTF 8-bit mode)
and runs it over the raw response bytes. Python's ``re`` in bytes mode has the same matching
model (backtracking, leftmost-first alternation, ASCII-only ``\\w``/``\\d``/``\\s`` and ASCII
case folding) but spells a number of constructs differently or gives them another meaning. One
pass over the pattern rewrites those constructs and copies everything else:

* escapes PCRE has and ``re`` lacks or reads differently: ``\\Z`` (PCRE: end or before a final
  newline), ``\\z``, ``\\G``, ``\\B`` (``re``'s never matches in an empty subject),
  ``\\h \\H \\v \\V \\R \\N \\C \\X \\e \\cX``, ``\\x{..}``, one-digit ``\\xH``, ``\\o{..}``,
  ``\\Q..\\E``, ``\\p{..}``, unknown letter escapes (literal in PCRE 8.x);
* back-references versus octal escapes (``\\1``-``\\7`` always refer to a group; ``\\8`` and
  up only when that many groups were opened before, else octal or a literal digit), ``\\g`` and
  ``\\k`` forms, ``(?<name>..)`` and ``(?'name'..)``;
* character classes are rebuilt from the set of bytes they match, which covers POSIX
  ``[:name:]`` classes, ``-`` next to a class escape, octal digits inside classes and the
  set-operation tokens ``re`` warns about;
* a ``{`` that is not a PCRE quantifier (``{,3}``) is a literal;
* option settings in the middle of a group (``a(?i)b|c``) apply to the rest of the group,
  including later alternatives; they become scoped ``(?i:..)`` groups, re-opened after each
  ``|``. ``x`` (extended) is applied here, ``^`` under ``m`` does not match after a final
  newline as in PCRE;
* a look-behind whose alternatives differ in length is split into one look-behind per
  alternative.

Constructs ``re`` cannot express (recursion, branch reset, ``\\K``, callouts, ungreedy mode,
Unicode scripts) raise :class:`PatternError`, as do PCRE's own syntax errors that ``re``
would accept differently.
"""

from __future__ import annotations

import re
import unicodedata

import attrs

__all__ = ["PatternError", "compile_pattern", "translate"]

_MAX_REPEAT = 65535
_ALL = frozenset(range(256))
_DIGITS = frozenset(range(0x30, 0x3A))
_UPPER = frozenset(range(0x41, 0x5B))
_LOWER = frozenset(range(0x61, 0x7B))
_ALPHA = _UPPER | _LOWER
_ALNUM = _ALPHA | _DIGITS
_WORD = _ALNUM | {0x5F}
_SPACE = frozenset({0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x20})
_HSPACE = frozenset({0x09, 0x20, 0xA0})
_VSPACE = frozenset({0x0A, 0x0B, 0x0C, 0x0D, 0x85})
_GRAPH = frozenset(range(0x21, 0x7F))
_POSIX: dict[str, frozenset[int]] = {
    "alpha": _ALPHA,
    "digit": _DIGITS,
    "alnum": _ALNUM,
    "upper": _UPPER,
    "lower": _LOWER,
    "space": _SPACE,
    "blank": frozenset({0x09, 0x20}),
    "cntrl": frozenset(range(0x20)) | {0x7F},
    "graph": _GRAPH,
    "print": _GRAPH | {0x20},
    "punct": _GRAPH - _ALNUM,
    "xdigit": _DIGITS | frozenset(b"abcdefABCDEF"),
    "word": _WORD,
    "ascii": frozenset(range(0x80)),
}
_CLASS_ESCAPES: dict[str, frozenset[int]] = {
    "d": _DIGITS,
    "D": _ALL - _DIGITS,
    "w": _WORD,
    "W": _ALL - _WORD,
    "s": _SPACE,
    "S": _ALL - _SPACE,
    "h": _HSPACE,
    "H": _ALL - _HSPACE,
    "v": _VSPACE,
    "V": _ALL - _VSPACE,
}
_CHAR_ESCAPES = {"n": 0x0A, "r": 0x0D, "t": 0x09, "f": 0x0C, "a": 0x07, "e": 0x1B}
_OCT = "01234567"
_HEX = "0123456789abcdefABCDEF"
_QUANT = re.compile(r"\{(\d+)(?:(,)(\d*))?\}")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")
_X_SPACE = " \t\n\r\f\v"
# Escapes with the same meaning in PCRE and re: class shorthands, \n-style characters,
# two-digit \xHH, \0 plus up to two octal digits, and escaped non-alphanumerics.
_SAME_ESCAPE = r"\\[dDsSwWbAnrtf]|\\x[0-9a-fA-F]{2}|\\0[0-7]{0,2}|\\[^A-Za-z0-9]"
_RUN = re.compile(rf"(?:[^\\\[(){{|]|{_SAME_ESCAPE})+", re.DOTALL)
_M_RUN = re.compile(rf"(?:[^\\\[(){{|^]|{_SAME_ESCAPE})+", re.DOTALL)
_X_RUN = re.compile(rf"(?:[^\\\[(){{|^#{_X_SPACE}]|{_SAME_ESCAPE})+")
# A class whose text means the same to re: single characters (no "&~|" whose doubling re
# reserves), ranges between them, class shorthands, "-" only first or last.
_CLASS_CHAR = r"(?:[^\\\[\]\-&~|]|\\[nrtf]|\\x[0-9a-fA-F]{2}|\\0[0-7]{0,2}(?![0-7])|\\[^A-Za-z0-9])"
_SAFE_CLASS = re.compile(
    rf"\[\^?(?=[^\]])-?(?:{_CLASS_CHAR}(?:-{_CLASS_CHAR})?|\\[dDsSwW])*-?\]", re.DOTALL
)
_SET_OPS = re.compile(r"--|&&|~~|\|\|")


class PatternError(ValueError):
    """A PCRE pattern that is malformed or uses a construct ``re`` cannot express.

    ``offset`` is the 0-based index in the pattern where the problem was found.
    """

    def __init__(self, offset: int, reason: str) -> None:
        self.offset = offset
        self.reason = reason
        super().__init__(f"at pattern offset {offset}: {reason}")


def _lit(value: int) -> str:
    """A Python regex literal for one byte value (outside a class)."""
    ch = chr(value)
    if ch.isascii() and (ch.isalnum() or ch == "_"):
        return ch
    if value == 0x20:
        return ch
    if 0x21 <= value < 0x7F:
        return "\\" + ch
    return f"\\x{value:02x}"


def _class_lit(value: int) -> str:
    ch = chr(value)
    if ch.isascii() and ch.isalnum():
        return ch
    return f"\\x{value:02x}"


def _class_body(members: frozenset[int] | set[int]) -> str:
    parts: list[str] = []
    values = sorted(members)
    start = 0
    while start < len(values):
        end = start
        while end + 1 < len(values) and values[end + 1] == values[end] + 1:
            end += 1
        lo, hi = values[start], values[end]
        if lo == hi:
            parts.append(_class_lit(lo))
        elif hi == lo + 1:
            parts.append(_class_lit(lo) + _class_lit(hi))
        else:
            parts.append(f"{_class_lit(lo)}-{_class_lit(hi)}")
        start = end + 1
    return "".join(parts)


def _class_regex(members: frozenset[int] | set[int], negated: bool) -> str:
    if negated:
        return f"[^{_class_body(members)}]" if members else "[\\x00-\\xff]"
    return f"[{_class_body(members)}]" if members else "(?!)"


def _property_set(name: str, offset: int) -> frozenset[int]:
    """Bytes whose Latin-1 code point has Unicode general category ``name``."""
    if name == "Any":
        return _ALL
    if name == "L&":
        wanted: tuple[str, ...] = ("Lu", "Ll", "Lt")
    elif len(name) in (1, 2) and name[0] in "CLMNPSZ":
        wanted = (name,)
    else:
        raise PatternError(offset, f"Unicode property \\p{{{name}}} is not supported")
    return frozenset(
        b for b in range(256) if any(unicodedata.category(chr(b)).startswith(w) for w in wanted)
    )


@attrs.define
class _Group:
    kind: str  # "top", "group", "lookbehind=", "lookbehind!"
    outer_x: bool  # x and m options in force outside the group, restored at ")"
    outer_m: bool
    out_start: int
    on: set[str] = attrs.field(factory=set)
    off: set[str] = attrs.field(factory=set)
    wrappers: int = 0
    bars: list[int] = attrs.field(factory=list)


@attrs.define
class _Translator:
    src: str
    pos: int = 0
    out: list[str] = attrs.field(factory=list)
    where: list[int] = attrs.field(factory=list)
    verbatim: list[bool] = attrs.field(factory=list)
    groups: int = 0
    x: bool = False
    m: bool = False
    stack: list[_Group] = attrs.field(factory=list)

    def emit(self, piece: str, at: int, *, verbatim: bool = False) -> None:
        self.out.append(piece)
        self.where.append(at)
        self.verbatim.append(verbatim)

    def fail(self, reason: str, at: int | None = None) -> PatternError:
        return PatternError(self.pos if at is None else at, reason)

    def run(self) -> str:
        self.stack.append(_Group("top", False, False, 0))
        src, n = self.src, len(self.src)
        while self.pos < n:
            # Fast path: runs of characters and escapes both dialects read alike.
            run = (_X_RUN if self.x else _M_RUN if self.m else _RUN).match(src, self.pos)
            if run is not None:
                self.emit(run.group(), self.pos, verbatim=True)
                self.pos = run.end()
                if self.pos >= n:
                    break
            c = src[self.pos]
            if c == "[":
                safe = _SAFE_CLASS.match(src, self.pos)
                if safe is not None and not _SET_OPS.search(safe.group()):
                    self.emit(safe.group(), self.pos, verbatim=True)
                    self.pos = safe.end()
                    continue
            if self.x and c in _X_SPACE:
                self.pos += 1
            elif self.x and c == "#":
                nl = src.find("\n", self.pos)
                self.pos = n if nl < 0 else nl + 1
            elif c == "\\":
                self.escape()
            elif c == "[":
                self.char_class()
            elif c == "(":
                self.open_group()
            elif c == ")":
                self.close_group()
            elif c == "|":
                self.bar()
            elif c == "{":
                self.brace()
            elif c == "^" and self.m:
                self.emit("(?:\\A|(?<=\\n)(?!\\Z))", self.pos)
                self.pos += 1
            elif c in "*+?.^$":
                self.emit(c, self.pos)
                self.pos += 1
            else:
                self.emit(_lit(ord(c)), self.pos)
                self.pos += 1
        if len(self.stack) > 1:
            raise self.fail("missing ) to close a group", self.stack[-1].out_start)
        self.emit(")" * self.stack[-1].wrappers, n)
        return "".join(self.out)

    # -- escapes outside classes -------------------------------------------------------

    def escape(self) -> None:
        src, n, at = self.src, len(self.src), self.pos
        if at + 1 >= n:
            raise self.fail("\\ at end of pattern")
        c = src[at + 1]
        self.pos = at + 2
        if c in "dDsSwWbA":
            self.emit("\\" + c, at)
        elif c == "B":
            # re's \B never matches in an empty subject; PCRE's does
            self.emit("(?:(?<=\\w)(?=\\w)|(?<!\\w)(?!\\w))", at)
        elif c in _CHAR_ESCAPES:
            self.emit(_lit(_CHAR_ESCAPES[c]), at)
        elif c in "hHvV":
            self.emit(_class_regex(_CLASS_ESCAPES[c], False), at)
        elif c == "Z":
            self.no_quantifier_follows("\\Z")
            self.emit("(?=\\n?\\Z)", at)
        elif c == "z":
            self.emit("\\Z", at)
        elif c == "G":
            self.emit("\\A", at)
        elif c == "R":
            self.emit("(?>\\r\\n|[\\n\\x0b\\x0c\\r\\x85])", at)
        elif c == "N":
            if self.pos < n and src[self.pos] == "{" and not _QUANT.match(src, self.pos):
                raise self.fail("\\N{name} is not supported", at)
            self.emit("[^\\n]", at)
        elif c == "C":
            self.emit("[\\x00-\\xff]", at)
        elif c == "X":
            self.emit("(?>\\r\\n|[\\x00-\\xff])", at)
        elif c == "Q":
            end = src.find("\\E", self.pos)
            stop = n if end < 0 else end
            self.emit("".join(_lit(ord(ch) & 0xFF) for ch in src[self.pos : stop]), at)
            self.pos = n if end < 0 else end + 2
        elif c == "E":
            pass
        elif c in "xoc0":
            self.emit(_lit(self.char_escape(c, at)), at)
        elif c in "123456789":
            self.numeric_escape(at)
        elif c in "gk":
            self.named_or_numbered_ref(c, at)
        elif c in "pP":
            members = self.property_escape(c, at)
            # PCRE: caseless matching does not apply to \p; keep re from folding the set.
            self.emit(f"(?-i:{_class_regex(members, False)})", at)
        elif c in "LlUu":
            raise self.fail(f"PCRE does not support \\{c}", at)
        elif c == "K":
            raise self.fail("\\K (reset match start) is not supported", at)
        else:
            # PCRE 8.x: any other escaped character, letters included, is literal.
            self.emit(_lit(ord(c) & 0xFF), at)

    def no_quantifier_follows(self, what: str) -> None:
        if self.pos < len(self.src) and self.src[self.pos] in "*+?":
            raise self.fail(f"nothing to repeat after {what}")

    def char_escape(self, c: str, at: int) -> int:
        """Value of ``\\x``, ``\\o``, ``\\c`` or ``\\0`` escapes; self.pos is past the letter."""
        src, n = self.src, len(self.src)
        if c == "x":
            if self.pos < n and src[self.pos] == "{":
                end = src.find("}", self.pos)
                digits = src[self.pos + 1 : end] if end > 0 else ""
                if end > 0 and digits and all(d in _HEX for d in digits):
                    self.pos = end + 1
                    value = int(digits, 16)
                    if value > 0xFF:
                        raise self.fail("character value in \\x{} is too large", at)
                    return value
                return 0  # PCRE reads "\x" followed by a non-hex "{" as NUL
            digits = ""
            while len(digits) < 2 and self.pos < n and src[self.pos] in _HEX:
                digits += src[self.pos]
                self.pos += 1
            return int(digits, 16) if digits else 0
        if c == "o":
            end = src.find("}", self.pos)
            if self.pos >= n or src[self.pos] != "{" or end < 0:
                raise self.fail("missing braces after \\o", at)
            digits = src[self.pos + 1 : end]
            if not digits or any(d not in _OCT for d in digits):
                raise self.fail("non-octal character in \\o{}", at)
            self.pos = end + 1
            value = int(digits, 8)
            if value > 0xFF:
                raise self.fail("character value in \\o{} is too large", at)
            return value
        if c == "c":
            if self.pos >= n:
                raise self.fail("\\c at end of pattern", at)
            ch = src[self.pos]
            if ord(ch) > 0x7F:
                raise self.fail("\\c must be followed by an ASCII character", at)
            self.pos += 1
            return ord(ch.upper()) ^ 0x40
        # "\0" plus up to two more octal digits
        digits = ""
        while len(digits) < 2 and self.pos < n and src[self.pos] in _OCT:
            digits += src[self.pos]
            self.pos += 1
        return int(digits, 8) if digits else 0

    def numeric_escape(self, at: int) -> None:
        src, n = self.src, len(self.src)
        end = at + 1
        while end < n and src[end].isdigit():
            end += 1
        number = int(src[at + 1 : end])
        if number < 8 or number <= self.groups:
            self.pos = end
            self.backref(str(number), at)
            return
        if src[at + 1] in "89":
            # PCRE: \8 and \9 that are not back-references are the literal digits
            self.pos = end
            self.emit("".join(_lit(ord(d)) for d in src[at + 1 : end]), at)
            return
        digits = ""
        self.pos = at + 1
        while len(digits) < 3 and self.pos < n and src[self.pos] in _OCT:
            digits += src[self.pos]
            self.pos += 1
        value = int(digits, 8)
        if value > 0xFF:
            raise self.fail("octal value is greater than \\377", at)
        self.emit(_lit(value), at)

    def backref(self, ref: str, at: int) -> None:
        if ref.isdigit():
            if int(ref) == 0 or int(ref) > self.groups:
                raise self.fail(f"reference to group {ref}, which is not defined before it", at)
            self.emit(f"(?:\\{int(ref)})", at)
        else:
            self.emit(f"(?P={ref})", at)

    def named_or_numbered_ref(self, c: str, at: int) -> None:
        src, n = self.src, len(self.src)
        if self.pos >= n:
            raise self.fail(f"\\{c} at end of pattern", at)
        opener = src[self.pos]
        closer = {"{": "}", "<": ">", "'": "'"}.get(opener)
        if c == "g" and opener in "<'":
            raise self.fail("subroutine calls (\\g<...>) are not supported", at)
        if closer is None:
            if c == "k":
                raise self.fail("\\k must be followed by <name>, 'name' or {name}", at)
            m = re.compile(r"-?\d+").match(src, self.pos)
            if m is None:
                raise self.fail("a numbered reference is required after \\g", at)
            ref = m.group()
            self.pos = m.end()
        else:
            end = src.find(closer, self.pos + 1)
            if end < 0:
                raise self.fail(f"missing terminator {closer!r} in \\{c} reference", at)
            ref = src[self.pos + 1 : end]
            self.pos = end + 1
        if re.fullmatch(r"[+-]?\d+", ref):
            number = int(ref)
            if ref.startswith("-"):
                number = self.groups + 1 + number
            elif ref.startswith("+"):
                raise self.fail("forward relative references are not supported", at)
            self.backref(str(number), at)
        elif _NAME.fullmatch(ref):
            self.backref(ref, at)
        else:
            raise self.fail(f"invalid group name {ref!r}", at)

    def property_escape(self, c: str, at: int) -> frozenset[int]:
        src, n = self.src, len(self.src)
        if self.pos >= n:
            raise self.fail(f"malformed \\{c}", at)
        if src[self.pos] == "{":
            end = src.find("}", self.pos)
            if end < 0:
                raise self.fail(f"malformed \\{c}{{...}}", at)
            name = src[self.pos + 1 : end]
            self.pos = end + 1
        else:
            name = src[self.pos]
            self.pos += 1
        negate = c == "P"
        if name.startswith("^"):
            negate, name = not negate, name[1:]
        members = _property_set(name, at)
        return _ALL - members if negate else members

    # -- character classes ---------------------------------------------------------------

    def char_class(self) -> None:
        src, n, at = self.src, len(self.src), self.pos
        self.pos += 1
        negated = False
        if self.pos < n and src[self.pos] == "^":
            negated = True
            self.pos += 1
        members: set[int] = set()
        first = True
        quoting = False
        while True:
            if self.pos >= n:
                raise self.fail("missing terminating ] for character class", at)
            c = src[self.pos]
            if quoting:
                if src.startswith("\\E", self.pos):
                    quoting = False
                    self.pos += 2
                    continue
                self.pos += 1
                self.class_char(members, ord(c) & 0xFF)
                first = False
                continue
            if c == "]" and not first:
                self.pos += 1
                break
            first = False
            if c == "[" and self.pos + 1 < n and src[self.pos + 1] in ":.=":
                posix = self.posix_class()
                if posix is not None:
                    members |= posix
                    continue
            if c == "\\":
                if src.startswith("\\Q", self.pos):
                    quoting = True
                    self.pos += 2
                    continue
                if src.startswith("\\E", self.pos):
                    self.pos += 2
                    continue
                item = self.class_escape()
                if isinstance(item, frozenset):
                    members |= item
                    continue
                self.class_char(members, item)
                continue
            self.pos += 1
            self.class_char(members, ord(c) & 0xFF)
        self.emit(_class_regex(members, negated), at)

    def class_char(self, members: set[int], value: int) -> None:
        """Add one character to a class, or the range it starts."""
        src, n = self.src, len(self.src)
        if self.pos + 1 < n and src[self.pos] == "-" and src[self.pos + 1] != "]":
            at = self.pos
            self.pos += 1
            c = src[self.pos]
            if c == "\\":
                end = self.class_escape()
                if isinstance(end, frozenset):
                    raise self.fail("invalid range in character class", at)
            elif c == "[" and self.pos + 1 < n and src[self.pos + 1] in ":.=":
                raise self.fail("invalid range in character class", at)
            else:
                end = ord(c) & 0xFF
                self.pos += 1
            if end < value:
                raise self.fail("range out of order in character class", at)
            members.update(range(value, end + 1))
            return
        members.add(value)

    def posix_class(self) -> frozenset[int] | None:
        src, start = self.src, self.pos
        term = src[start + 1]
        j = start + 2
        while j < len(src) and src[j] != "]":
            if src[j] == term and j + 1 < len(src) and src[j + 1] == "]":
                break
            j += 1
        else:
            return None
        if j >= len(src) or src[j] == "]":
            return None
        if term != ":":
            raise self.fail("POSIX collating elements are not supported")
        name = src[start + 2 : j]
        negate = name.startswith("^")
        members = _POSIX.get(name.lstrip("^"))
        if members is None:
            raise self.fail(f"unknown POSIX class name {name!r}")
        self.pos = j + 2
        return _ALL - members if negate else members

    def class_escape(self) -> int | frozenset[int]:
        """One escape inside a class: a byte value or a set of bytes."""
        src, n, at = self.src, len(self.src), self.pos
        if at + 1 >= n:
            raise self.fail("\\ at end of pattern")
        c = src[at + 1]
        self.pos = at + 2
        if c in _CLASS_ESCAPES:
            return _CLASS_ESCAPES[c]
        if c == "b":
            return 0x08
        if c in _CHAR_ESCAPES:
            return _CHAR_ESCAPES[c]
        if c in "xoc0":
            return self.char_escape(c, at)
        if c in "1234567":
            digits = c
            while len(digits) < 3 and self.pos < n and src[self.pos] in _OCT:
                digits += src[self.pos]
                self.pos += 1
            value = int(digits, 8)
            if value > 0xFF:
                raise self.fail("octal value is greater than \\377", at)
            return value
        if c in "pP":
            return self.property_escape(c, at)
        if c == "N":
            raise self.fail("\\N is not supported in a class", at)
        if c in "LlUu":
            raise self.fail(f"PCRE does not support \\{c}", at)
        return ord(c) & 0xFF

    # -- groups, alternation, quantifiers ---------------------------------------------------

    def push(self, kind: str, opener: str, at: int) -> None:
        self.stack.append(_Group(kind, self.x, self.m, len(self.out)))
        self.emit(opener, at)

    def open_group(self) -> None:
        src, n, at = self.src, len(self.src), self.pos
        if at + 1 >= n or src[at + 1] != "?":
            if at + 1 < n and src[at + 1] == "*":
                raise self.fail("(* verbs are not supported")
            self.groups += 1
            self.pos += 1
            self.push("group", "(", at)
            return
        rest = src[at + 2 : at + 4]
        if rest.startswith("#"):
            end = src.find(")", at)
            if end < 0:
                raise self.fail("missing ) after comment")
            self.pos = end + 1
            return
        for prefix, kind in (("<=", "lookbehind="), ("<!", "lookbehind!")):
            if rest.startswith(prefix):
                self.pos = at + 4
                self.push(kind, f"(?{prefix}", at)
                return
        if rest[:1] in (":", "=", "!", ">"):
            self.pos = at + 3
            self.push("group", f"(?{rest[0]}", at)
            return
        name = re.compile(r"\(\?(?:P?<([^>]*)>|'([^']*)')").match(src, at)
        if name is not None:
            ident = name.group(1) if name.group(1) is not None else name.group(2)
            if not _NAME.fullmatch(ident):
                raise self.fail(f"invalid group name {ident!r}")
            self.groups += 1
            self.pos = name.end()
            self.push("group", f"(?P<{ident}>", at)
            return
        ref = re.compile(r"\(\?P=([^)]*)\)").match(src, at)
        if ref is not None:
            if not _NAME.fullmatch(ref.group(1)):
                raise self.fail(f"invalid group name {ref.group(1)!r}")
            self.pos = ref.end()
            self.backref(ref.group(1), at)
            return
        if rest.startswith("("):
            self.conditional(at)
            return
        flags = re.compile(r"\(\?([imsxJUX]*)(?:-([imsxJUX]*))?([:)])").match(src, at)
        if flags is not None:
            self.option_setting(flags, at)
            return
        if rest[:1] in ("|", "R", "&", "+") or rest[:1].isdigit() or rest.startswith("P>"):
            raise self.fail("recursion, subroutine calls and branch reset are not supported")
        if rest[:1] == "-" and rest[1:2].isdigit():
            raise self.fail("recursion, subroutine calls and branch reset are not supported")
        raise self.fail("unrecognized character after (?")

    def conditional(self, at: int) -> None:
        cond = re.compile(r"\(\?\((?:(\d+)|<([^>]*)>|'([^']*)'|([A-Za-z_]\w*))\)").match(
            self.src, at
        )
        if cond is None or (cond.group(4) is not None and cond.group(4).startswith("R")):
            raise self.fail("only group-number and group-name conditions are supported")
        if cond.group(4) == "DEFINE":
            raise self.fail("(?(DEFINE)...) is not supported")
        ref = next(g for g in cond.groups() if g is not None)
        if ref.isdigit() and (int(ref) == 0 or int(ref) > self.groups):
            raise self.fail(f"reference to non-existent group {ref}")
        self.pos = cond.end()
        self.push("group", f"(?({ref})", at)

    def option_setting(self, flags: re.Match[str], at: int) -> None:
        on, off = set(flags.group(1)), set(flags.group(2) or "")
        if "U" in on:
            raise self.fail("the ungreedy option (?U) is not supported")
        self.pos = flags.end()
        x = (self.x or "x" in on) and "x" not in off
        m = (self.m or "m" in on) and "m" not in off
        py_on = sorted(on & {"i", "m", "s"})
        py_off = sorted((off & {"i", "m", "s"}) - set(py_on))
        spec = "".join(py_on) + ("-" + "".join(py_off) if py_off else "")
        if flags.group(3) == ":":
            self.push("group", f"(?{spec}:", at)
            self.x, self.m = x, m
            return
        group = self.stack[-1]
        self.x, self.m = x, m
        for letter in on:
            group.on.add(letter)
            group.off.discard(letter)
        for letter in off - on:
            group.off.add(letter)
            group.on.discard(letter)
        if spec:
            self.emit(f"(?{spec}:", at)
            group.wrappers += 1

    def bar(self) -> None:
        group, at = self.stack[-1], self.pos
        self.pos += 1
        self.emit(")" * group.wrappers, at)
        group.bars.append(len(self.out))
        self.emit("|", at)
        group.wrappers = 0
        py_on = sorted(group.on & {"i", "m", "s"})
        py_off = sorted(group.off & {"i", "m", "s"})
        if py_on or py_off:
            self.emit("(?" + "".join(py_on) + ("-" + "".join(py_off) if py_off else "") + ":", at)
            group.wrappers = 1

    def close_group(self) -> None:
        at = self.pos
        if len(self.stack) == 1:
            raise self.fail("unmatched )")
        self.pos += 1
        group = self.stack.pop()
        self.emit(")" * group.wrappers, at)
        if group.kind.startswith("lookbehind") and group.bars:
            self.split_lookbehind(group)
        self.emit(")", at)
        self.x, self.m = group.outer_x, group.outer_m

    def split_lookbehind(self, group: _Group) -> None:
        """Rewrite ``(?<=a|bc`` as ``(?:(?<=a)|(?<=bc)`` (and ``(?<!``... as a sequence)."""
        bounds = [group.out_start + 1, *group.bars, len(self.out)]
        alts: list[str] = []
        for k in range(len(bounds) - 1):
            lo = bounds[k] + (1 if k else 0)  # skip the "|" piece itself
            alts.append("".join(self.out[lo : bounds[k + 1]]))
        at = self.where[group.out_start]
        del self.out[group.out_start :]
        del self.where[group.out_start :]
        del self.verbatim[group.out_start :]
        if group.kind == "lookbehind=":
            self.emit("(?:" + "|".join(f"(?<={alt})" for alt in alts), at)
        else:
            self.emit("(?:" + "".join(f"(?<!{alt})" for alt in alts), at)

    def brace(self) -> None:
        m = _QUANT.match(self.src, self.pos)
        if m is None:
            self.emit("\\{", self.pos)
            self.pos += 1
            return
        low = int(m.group(1))
        high = int(m.group(3)) if m.group(3) else None
        if low > _MAX_REPEAT or (high is not None and high > _MAX_REPEAT):
            raise self.fail("number too big in {} quantifier")
        if high is not None and high < low:
            raise self.fail("numbers out of order in {} quantifier")
        self.emit(m.group(), self.pos)
        self.pos = m.end()


def translate(pattern: str) -> str:
    """Rewrite a PCRE pattern (one character per byte) as an equivalent ``re`` pattern."""
    return _Translator(pattern).run()


def _map_offset(translator: _Translator, pos: int | None) -> int:
    if pos is None:
        return 0
    total = 0
    for piece, at, verbatim in zip(
        translator.out, translator.where, translator.verbatim, strict=True
    ):
        if total + len(piece) > pos:
            return at + (pos - total if verbatim else 0)
        total += len(piece)
    return len(translator.src)


def compile_pattern(
    pattern: str, *, caseless: bool = False, dotall: bool = False
) -> re.Pattern[bytes]:
    """Compile a PCRE pattern for matching raw bytes as nmap does.

    ``pattern`` holds one character per byte (Latin-1). ``caseless`` and ``dotall`` are
    the ``i`` and ``s`` flags after the closing delimiter of an nmap ``m`` pattern.
    """
    translator = _Translator(pattern)
    translated = translator.run()
    flags = (re.IGNORECASE if caseless else 0) | (re.DOTALL if dotall else 0)
    try:
        return re.compile(translated.encode("latin-1"), flags)
    except re.error as exc:
        raise PatternError(_map_offset(translator, exc.pos), exc.msg) from None
    except (OverflowError, RecursionError) as exc:
        raise PatternError(0, f"pattern too complex: {exc}") from None
