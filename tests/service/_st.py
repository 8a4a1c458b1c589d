"""Hypothesis strategies for service-probe files: structures and the text that spells them."""

from __future__ import annotations

from typing import Any, cast

from hypothesis import strategies as st

from pyscan.service import Match, ServiceProbe, VersionTemplate

# Delimiters nmap files use, and a few more; never letters, ":" or white space.
DELIMITERS = "|/=%!@#,;~^&*+_-.<>'\"[]{}()?"

_NAME = st.text(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", min_size=1, max_size=12
)
probe_names = _NAME.filter(lambda s: s[0].isalnum())
service_names = st.text("abcdefghijklmnopqrstuvwxyz0123456789-_/.", min_size=1, max_size=12)

_ESCAPES = {0: ["\\0", "\\x00"], 7: ["\\a"], 8: ["\\b"], 9: ["\\t"], 10: ["\\n"], 11: ["\\v"],
            12: ["\\f"], 13: ["\\r"], 0x5C: ["\\\\"]}  # fmt: skip


@st.composite
def escaped_payload(draw: st.DrawFn, payload: bytes, delimiter: str) -> str:
    """``payload`` spelled with a random mix of escapes, never containing ``delimiter``."""
    out: list[str] = []
    for b in payload:
        ch = chr(b)
        choices = [f"\\x{b:02x}", f"\\x{b:02X}", *_ESCAPES.get(b, [])]
        if 0x20 <= b < 0x7F and ch not in ("\\", delimiter):
            choices.append(ch)
            if not ch.isalnum():
                choices.append("\\" + ch)  # any other escaped character stands for itself
        out.append(choices[draw(_INDEX) % len(choices)])
    return "".join(out)


def _free_delimiter(draw: st.DrawFn, *texts: str) -> str:
    free = [d for d in DELIMITERS if all(d not in t for t in texts)]
    return free[draw(_INDEX) % len(free)]


# Patterns: PCRE text built from pieces that compile, with any delimiter left free.
_PATTERN_PIECES = [
    "^", "$", "a", "SSH-", r"\d+", r"[\w._-]+", r"\r\n", r"\0", r"\x00\xff", "(\\d+)", "(.*)",
    r"(?:x|y)", r"[^\r\n]*", r"\s", "=", "%", "|", "/", "#", "!", "@", ",", r"\Z", r"[[:alpha:]]",
    r"\h", "(?i)b", r"a++", r"(q)\1", r"\x{41}", r"\Q+\E", r"(?#c)", " ", "\t", "é",
]  # fmt: skip
patterns = st.lists(st.sampled_from(tuple(_PATTERN_PIECES)), max_size=6).map("".join)
_TEMPLATE_TEXT = st.text(st.characters(codec="latin-1", exclude_characters="$\n\r"), max_size=10)
_VARIABLES = ("$1", "$2", "$P(1)", '$SUBST(1,"_",".")', '$I(1,">")', '$I(2,"<")', "$9")
_TEMPLATE_PIECES = st.lists(st.one_of(_TEMPLATE_TEXT, st.sampled_from(_VARIABLES)), max_size=4)
_INDEX = st.integers(0, 255)
_FALLBACK_INDEXES = st.lists(_INDEX, max_size=3)


@st.composite
def template_texts(draw: st.DrawFn) -> str:
    pieces = draw(_TEMPLATE_PIECES)
    return "".join(pieces)


@st.composite
def matches(draw: st.DrawFn) -> Match:
    fields = {
        key: VersionTemplate(draw(template_texts()))
        for key in ("product", "version", "extrainfo", "hostname", "ostype", "devicetype")
        if draw(st.booleans())
    }
    cpe = tuple(
        VersionTemplate(part + ":" + draw(template_texts()), draw(st.sampled_from(("", "a"))))
        for part in draw(st.lists(st.sampled_from("aho"), max_size=2))
    )
    return Match(
        service=draw(service_names),
        source=draw(patterns),
        flags=draw(st.sampled_from(("", "i", "s", "si", "is"))),
        soft=draw(st.booleans()),
        cpe=cpe,
        **cast("dict[str, Any]", fields),
    )


_PORT_SETS = st.frozensets(st.integers(0, 65535), max_size=6)


@st.composite
def probes(draw: st.DrawFn, name: str, protocol: str, others: list[str]) -> ServiceProbe:
    payload = draw(st.binary(min_size=1, max_size=16))
    return ServiceProbe(
        protocol="tcp" if protocol == "tcp" else "udp",
        name=name,
        payload=payload,
        no_payload=draw(st.booleans()),
        ports=draw(_PORT_SETS),
        sslports=draw(_PORT_SETS),
        rarity=draw(st.integers(1, 9)),
        fallback=tuple(others[i % len(others)] for i in draw(_FALLBACK_INDEXES)) if others else (),
        totalwaitms=draw(st.integers(100, 300_000)),
        tcpwrappedms=draw(st.integers(100, 300_000)),
        matches=tuple(draw(st.lists(matches(), max_size=3))),
    )


@st.composite
def probe_lists(draw: st.DrawFn) -> list[ServiceProbe]:
    names = draw(st.lists(probe_names, min_size=1, max_size=4, unique=True))
    result: list[ServiceProbe] = []
    for i, name in enumerate(names):
        protocol = draw(st.sampled_from(("tcp", "udp")))
        result.append(draw(probes(name, protocol, names[:i])))
    return result


def _ports_text(draw: st.DrawFn, ports: frozenset[int]) -> str:
    forms = [(str(p), f"{p}-{p}", f" {p} ")[draw(_INDEX) % 3] for p in sorted(ports)]
    return ",".join(forms)


@st.composite
def render(draw: st.DrawFn, probe_list: list[ServiceProbe]) -> tuple[str, list[int]]:
    """The file text for ``probe_list`` and the line number of each ``Probe`` line."""
    lines: list[str] = ["# generated"]
    probe_lines: list[int] = []

    def noise() -> None:
        if draw(st.booleans()):
            lines.append(draw(st.sampled_from(("", "# comment", "   ", "#Probe TCP x q||"))))

    for probe in probe_list:
        noise()
        delimiter = draw(st.sampled_from(tuple(DELIMITERS)))
        body = draw(escaped_payload(probe.payload, delimiter))
        option = " no-payload" if probe.no_payload else ""
        protocol = probe.protocol.upper()
        lines.append(f"Probe {protocol} {probe.name} q{delimiter}{body}{delimiter}{option}")
        probe_lines.append(len(lines))
        directives = [f"rarity {probe.rarity}", f"totalwaitms {probe.totalwaitms}",
                      f"tcpwrappedms {probe.tcpwrappedms}"]  # fmt: skip
        if probe.ports:
            directives.append("ports " + _ports_text(draw, probe.ports))
        if probe.sslports:
            directives.append("sslports " + _ports_text(draw, probe.sslports))
        if probe.fallback:
            directives.append("fallback " + ",".join(probe.fallback))
        for directive in draw(st.permutations(directives)):
            lines.append(directive)
            noise()
        for match in probe.matches:
            lines.append(draw(_match_text(match)))
            noise()
    return "\n".join(lines) + draw(st.sampled_from(("", "\n"))), probe_lines


@st.composite
def _match_text(draw: st.DrawFn, match: Match) -> str:
    keyword = "softmatch" if match.soft else "match"
    d = _free_delimiter(draw, match.source)
    parts = [f"{keyword} {match.service} m{d}{match.source}{d}{match.flags}"]
    fields = [(letter, getattr(match, name)) for letter, name in
              (("p", "product"), ("v", "version"), ("i", "extrainfo"), ("h", "hostname"),
               ("o", "ostype"), ("d", "devicetype"))]  # fmt: skip
    for letter, template in draw(st.permutations(fields)):
        if template is not None:
            d = _free_delimiter(draw, template.text)
            parts.append(f"{letter}{d}{template.text}{d}")
    for template in match.cpe:
        d = _free_delimiter(draw, template.text)
        parts.append(f"cpe:{d}{template.text}{d}{template.flags}")
    return draw(st.sampled_from((" ", "  ", "\t"))).join(parts)
