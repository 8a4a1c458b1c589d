"""nmap-style service fingerprints (``SF-Port...``) for services nothing matched.

A fingerprint records what a port answered to each probe so that it can be submitted or
matched against a newer probe file later. The layout is nmap's::

    SF-Port47001-TCP:V=7.93%I=7%D=11/21%Time=6B0203E0%P=x86_64-pc-linux-gnu%r(NULL,17,"HELL
    O\\x20zork\\x20server\\x201\\.2\\r\\n");

``V`` is the scanner's version (pyscan's own), ``T=SSL`` (after ``V``) marks responses read
through TLS, ``I`` the version intensity, ``D`` the month/day and ``Time`` the Unix time in
hex, ``P`` the platform; then one ``%r(probe,length in hex,"escaped bytes")`` per probe that got an
answer, ending with ``;``. Letters, digits and most punctuation stand for themselves;
regex metacharacters are backslash-escaped, ``\\0 \\t \\r \\n`` are written so, and any other
byte as ``\\xhh``. Like nmap the whole string is kept under 1000 characters (long answers are
cut, their length field still gives the full size); :func:`wrap_fingerprint` splits it into
nmap's ``SF:`` lines for normal output.

Pure: the time is a parameter.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence

import attrs

from pyscan._version import __version__

__all__ = [
    "FINGERPRINT_LIMIT",
    "FingerprintRecord",
    "build_fingerprint",
    "escape_response",
    "parse_fingerprint",
    "unescape_response",
    "wrap_fingerprint",
]

FINGERPRINT_LIMIT = 1000  # characters before the final ";" (nmap's cap)
_FIRST_LINE = 74
_NEXT_LINE = 71
_REGEX_SPECIAL = frozenset(b'\\.()[]+*?^$|"')
_NAMED = {0: "\\0", 9: "\\t", 10: "\\n", 13: "\\r"}


def _escape_byte(b: int) -> str:
    if b in _NAMED:
        return _NAMED[b]
    if b in _REGEX_SPECIAL:
        return "\\" + chr(b)
    if 0x21 <= b <= 0x7E:
        return chr(b)
    return f"\\x{b:02x}"


_ESCAPES = tuple(_escape_byte(b) for b in range(256))


def escape_response(data: bytes) -> str:
    """Bytes as nmap writes them inside ``%r(...)``."""
    return "".join(_ESCAPES[b] for b in data)


_UNESCAPE = re.compile(r"\\(x[0-9a-fA-F]{2}|.)", re.DOTALL)
_UNNAMED = {"0": "\0", "t": "\t", "n": "\n", "r": "\r"}


def unescape_response(text: str) -> bytes:
    """Inverse of :func:`escape_response` (also reads other printable escapes literally)."""

    def one(m: re.Match[str]) -> str:
        code = m.group(1)
        if code[0] == "x" and len(code) == 3:
            return chr(int(code[1:], 16))
        return _UNNAMED.get(code, code)

    return _UNESCAPE.sub(one, text).encode("latin-1")


def build_fingerprint(
    port: int,
    protocol: str,
    responses: Sequence[tuple[str, bytes]],
    *,
    now: float,
    intensity: int = 7,
    tls: bool = False,
    version: str = __version__,
    platform: str = "x86_64-pc-linux-gnu",
) -> str:
    """The fingerprint of a port given ``(probe name, response)`` pairs in probe order.

    ``now`` is the Unix time of the scan (local date as nmap prints it). Empty responses
    are left out; the result never exceeds :data:`FINGERPRINT_LIMIT` characters plus ``;``.
    """
    when = datetime.datetime.fromtimestamp(now)  # local time, as nmap prints it
    out = (
        f"SF-Port{port}-{protocol.upper()}:V={version}{'%T=SSL' if tls else ''}"
        f"%I={intensity}%D={when.month}/{when.day}%Time={int(now) & 0xFFFFFFFF:X}%P={platform}"
    )
    for name, data in responses:
        if not data:
            continue
        head = f'%r({name},{len(data):X},"'
        room = FINGERPRINT_LIMIT - len(out) - len(head) - 2
        if room <= 0:
            break
        pieces: list[str] = []
        for b in data:
            piece = _ESCAPES[b]
            if len(piece) > room:
                break
            pieces.append(piece)
            room -= len(piece)
        out += head + "".join(pieces) + '")'
    return out + ";"


def wrap_fingerprint(fingerprint: str) -> list[str]:
    """nmap's normal-output lines: 74 characters, then ``SF:`` and 71 characters each."""
    lines = [fingerprint[:_FIRST_LINE]]
    rest = fingerprint[_FIRST_LINE:]
    lines.extend("SF:" + rest[i : i + _NEXT_LINE] for i in range(0, len(rest), _NEXT_LINE))
    return lines


@attrs.frozen
class FingerprintRecord:
    """A parsed fingerprint: the header fields and the ``(probe, length, bytes)`` answers.

    ``length`` is the answer's full size; ``data`` may be shorter when the fingerprint cut it.
    """

    port: int
    protocol: str
    fields: dict[str, str]
    responses: tuple[tuple[str, int, bytes], ...]


_HEADER = re.compile(r"SF-Port(\d+)-([A-Z]+):")
_RESPONSE = re.compile(r'%r\(([^,()]+),([0-9A-Fa-f]+),"((?:[^"\\]|\\.)*)"\)', re.DOTALL)


def parse_fingerprint(text: str) -> FingerprintRecord:
    """Read a fingerprint back, from one string or wrapped ``SF:`` lines.

    Raises ``ValueError`` quoting the text when it is not a service fingerprint.
    """
    lines = [line.strip() for line in text.strip().splitlines()]
    joined = "".join(line[3:] if line.startswith("SF:") else line for line in lines)
    header = _HEADER.match(joined)
    if header is None:
        raise ValueError(f"not a service fingerprint (no SF-Port header): {text[:40]!r}")
    first = joined.find("%r(", header.end())
    head_end = len(joined.rstrip(";")) if first < 0 else first
    fields: dict[str, str] = {}
    for item in joined[header.end() : head_end].split("%"):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"malformed fingerprint field {item!r} in {text[:40]!r}")
        fields[key] = value
    responses = tuple(
        (m.group(1), int(m.group(2), 16), unescape_response(m.group(3)))
        for m in _RESPONSE.finditer(joined, head_end)
    )
    return FingerprintRecord(
        port=int(header.group(1)),
        protocol=header.group(2).lower(),
        fields=fields,
        responses=responses,
    )
