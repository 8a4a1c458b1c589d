"""Match a service response against probe match lines and fill in version templates.

How this works
--------------
A response to a probe is tried against the probe's ``match`` and ``softmatch`` lines in file
order with an unanchored search over the raw bytes; the first line that matches, soft or hard,
decides (nmap's rule). When none does, the probes of the fallback chain are tried the same way
(:meth:`~pyscan.service.ProbeDatabase.fallback_chain`: the probe's ``fallback`` probes, then
the NULL probe for TCP).

A hard match ends version detection for the port. A soft match only names the service: the
engine keeps it, goes on sending the probes that may identify that service
(:meth:`~pyscan.service.ServiceProbe.may_identify`) and can pass ``restrict_service`` so
that only lines for that service are tried. If nothing better turns up, the soft match is
the answer.

Templates are filled the way nmap fills them, so results compare equal with nmap's:

* ``$1``..``$9`` copy a capture up to its first NUL byte; ``$P(n)`` keeps only printable
  ASCII; ``$SUBST(n,"a","b")`` replaces every ``a`` with ``b``; ``$I(n,">")`` / ``$I(n,"<")``
  print a big- / little-endian unsigned capture of at most 8 bytes as decimal;
* a capture that did not participate, or a result longer than nmap's field buffer
  (80 bytes; extrainfo 256; ostype and devicetype 32), leaves the field empty;
* trailing white space and commas are removed; any byte outside printable ASCII still in
  the result becomes ``.``, as nmap does before reporting, so fields hold printable text only;
* in CPE templates each substituted value is lower-cased, spaces become ``_`` and CPE
  punctuation is %-escaped; one CPE per part (a, h, o) is kept, reported in that order.
"""

from __future__ import annotations

import re

import attrs

from pyscan.service._probes import (
    Match,
    ProbeDatabase,
    ServiceProbe,
    Substitution,
    TemplatePart,
    VersionTemplate,
)

__all__ = ["MatchResult", "apply_match", "match_response", "match_with_fallbacks"]

# nmap's buffer sizes (SERVICE_FIELD_LEN, SERVICE_EXTRA_LEN, SERVICE_TYPE_LEN)
_FIELD_SIZE = 80
_SIZES = {
    "product": 80,
    "version": 80,
    "extrainfo": 256,
    "hostname": 80,
    "ostype": 32,
    "devicetype": 32,
}
_TRIM = b" \t\n\v\f\r,"
_CPE_SPECIAL = frozenset(b":/?#[]@!$&'()*+,;=%<>\"")
_CPE_SPACE = frozenset(b" \t\n\v\f\r")
_PRINTABLE = bytes(range(0x20, 0x7F))
_SANITIZE = bytes(b if 0x20 <= b < 0x7F else 0x2E for b in range(256))


@attrs.frozen
class MatchResult:
    """What a match line says about a service.

    ``soft`` is true for a ``softmatch`` line (service name only, keep probing). Version
    fields are ``None`` when the line has no template for them or the template could not be
    filled. ``cpe`` holds the CPE names (``cpe:/a:...``) for the application, hardware and
    OS parts, in that order. ``probe`` is the probe whose response matched, ``matched_by``
    the probe that owns the matching line (another one for a fallback match) and ``line``
    the line of that match in the probe file. All strings are printable ASCII.
    """

    service: str
    soft: bool
    probe: str
    matched_by: str
    line: int
    product: str | None = None
    version: str | None = None
    extrainfo: str | None = None
    hostname: str | None = None
    ostype: str | None = None
    devicetype: str | None = None
    cpe: tuple[str, ...] = ()


def _sanitize(data: bytes) -> str:
    return data.translate(_SANITIZE).decode("ascii")


def _substitute(part: Substitution, m: re.Match[bytes]) -> bytes | None:
    if part.group > (m.re.groups or 0):
        return None
    capture = m.group(part.group)
    if capture is None:
        return None
    if part.kind == "$":
        value = capture
    elif part.kind == "P":
        value = bytes(b for b in capture if 0x20 <= b < 0x7F)
    elif part.kind == "SUBST":
        value = capture.replace(part.find, part.replace)
    else:
        if len(capture) > 8:
            return None
        number = int.from_bytes(capture, "big" if part.endian == ">" else "little")
        value = str(number).encode("ascii")
    return value.split(b"\0", 1)[0]


def _cpe_escape(value: bytes) -> bytes:
    out = bytearray()
    for b in value:
        if b in _CPE_SPECIAL:
            out += b"%%%02X" % b
        elif b in _CPE_SPACE:
            out.append(0x5F)
        elif 0x41 <= b <= 0x5A:
            out.append(b + 0x20)
        else:
            out.append(b)
    return bytes(out)


def _fill(
    parts: tuple[TemplatePart, ...], m: re.Match[bytes], size: int, *, cpe: bool = False
) -> str | None:
    """One template filled in as nmap's dotmplsubst does; ``None`` when it fails."""
    out = bytearray(b"cpe:/" if cpe else b"")
    through_last_substitution = 0
    for part in parts:
        if isinstance(part, bytes):
            out += part
            continue
        value = _substitute(part, m)
        if value is None:
            return None
        out += _cpe_escape(value) if cpe else value
        through_last_substitution = len(out)
    # nmap needs room for a NUL (and, after a substitution, one byte more)
    if through_last_substitution > size - 2 or len(out) > size - 1:
        return None
    text = _sanitize(bytes(out).split(b"\0", 1)[0].rstrip(_TRIM))
    return text or None


def _field(template: VersionTemplate | None, m: re.Match[bytes], size: int) -> str | None:
    return None if template is None else _fill(template.parts, m, size)


def apply_match(match: Match, m: re.Match[bytes], probe: str, matched_by: str) -> MatchResult:
    """The result of ``match`` given the regex match ``m`` of its pattern on a response."""
    cpes: dict[str, str] = {}
    for template in match.cpe:
        part = template.text[:1]
        if part not in ("a", "h", "o"):
            continue  # nmap ignores CPE templates with an unknown part
        value = _fill(template.parts, m, _FIELD_SIZE, cpe=True)
        if value is not None:
            cpes[part] = value
    return MatchResult(
        service=_sanitize(match.service.encode("latin-1", "replace")),
        soft=match.soft,
        probe=probe,
        matched_by=matched_by,
        line=match.line,
        product=_field(match.product, m, _SIZES["product"]),
        version=_field(match.version, m, _SIZES["version"]),
        extrainfo=_field(match.extrainfo, m, _SIZES["extrainfo"]),
        hostname=_field(match.hostname, m, _SIZES["hostname"]),
        ostype=_field(match.ostype, m, _SIZES["ostype"]),
        devicetype=_field(match.devicetype, m, _SIZES["devicetype"]),
        cpe=tuple(cpes[part] for part in ("a", "h", "o") if part in cpes),
    )


def match_response(
    probe: ServiceProbe, response: bytes, *, restrict_service: str | None = None
) -> MatchResult | None:
    """The first of ``probe``'s match lines (soft or hard, file order) matching ``response``.

    With ``restrict_service`` only lines naming that service are tried (use it after a soft
    match). Returns ``None`` when no line matches. Never raises for any ``response``.
    """
    for match in probe.matches:
        if restrict_service is not None and match.service != restrict_service:
            continue
        m = match.pattern.search(response)
        if m is not None:
            return apply_match(match, m, probe.name, probe.name)
    return None


def match_with_fallbacks(
    database: ProbeDatabase,
    probe: ServiceProbe,
    response: bytes,
    *,
    restrict_service: str | None = None,
) -> MatchResult | None:
    """Match ``response`` to ``probe`` against its whole fallback chain, as nmap does.

    The probe's own lines first, then those of its ``fallback`` probes, then the NULL
    probe's (TCP); the first probe with a matching line decides.
    """
    for candidate in database.fallback_chain(probe):
        result = match_response(candidate, response, restrict_service=restrict_service)
        if result is not None:
            return attrs.evolve(result, probe=probe.name)
    return None
