"""The pyscan command line: nmap-style arguments into a checked :class:`CliConfig`.

How this works
--------------
nmap's syntax is not quite getopt: ``-sS``/``-oX``/``-Pn`` are multi-letter options with a
single dash, ``-PS22,80`` glues an optional port list to its flag, ``-v2`` is a level and
``-vv`` a count. :func:`_preprocess` walks ``argv`` once and takes out what argparse cannot
express (``-P`` probes, ``-v``/``-d`` levels), rejecting nmap options pyscan does not
implement by name; argparse parses the rest (with ``allow_abbrev=False`` and a custom
``error()`` so every usage error is one line). :func:`build_config` then checks the
combination (conflicting flags, privilege) and resolves ports and options, raising
:class:`UsageError` (or a :class:`~pyscan.errors.PyscanError`) with a one-line message.
"""

from __future__ import annotations

import argparse
import ipaddress
import re
from collections.abc import Sequence
from typing import Any, Literal, NoReturn

import attrs

from pyscan._api import VersionOptions
from pyscan._core.timing import TimingTemplate
from pyscan._options import ScanOptions
from pyscan._scanners.discovery import DiscoveryProbe
from pyscan._specs.ports import PortList, resolve_ports
from pyscan.errors import OptionsError, PortSpecError, PyscanError

__all__ = [
    "NOT_YET",
    "UNSUPPORTED",
    "CliConfig",
    "OutputTarget",
    "UsageError",
    "build_config",
    "build_parser",
    "parse_time",
]

ScanKind = Literal["syn", "connect", "udp"]
OutputFormat = Literal["normal", "xml", "grepable", "jsonl"]


class UsageError(PyscanError, ValueError):
    """A command line that cannot run: printed as ``pyscan: error: <message>``, exit 2."""


# -- options pyscan does not implement -------------------------------------------------------

#: nmap options that are planned (-sV, -O): "not supported yet".
NOT_YET: dict[str, str] = {
    "--version-trace": "service/version detection tracing",
    "-O": "OS detection",
    "--osscan-limit": "OS detection",
    "--osscan-guess": "OS detection",
    "--max-os-tries": "OS detection",
}

#: Other nmap options, refused by name rather than ignored.
UNSUPPORTED: dict[str, str] = {
    "-sA": "TCP ACK scan",
    "-sW": "TCP Window scan",
    "-sM": "TCP Maimon scan",
    "-sN": "TCP Null scan",
    "-sF": "TCP FIN scan",
    "-sX": "TCP Xmas scan",
    "-sO": "IP protocol scan",
    "-sY": "SCTP INIT scan",
    "-sZ": "SCTP COOKIE-ECHO scan",
    "-sI": "idle scan",
    "-sR": "RPC scan",
    "-b": "FTP bounce scan",
    "--scanflags": "custom TCP scan flags",
    "-sC": "script scan",
    "--script": "script scan",
    "--script-args": "script scan",
    "--script-args-file": "script scan",
    "--script-trace": "script scan",
    "--script-updatedb": "script scan",
    "--script-help": "script scan",
    "-A": "aggressive scan (OS, version, script, traceroute)",
    "-PO": "IP protocol ping",
    "-PY": "SCTP INIT ping",
    "-PM": "ICMP netmask ping",
    "-PR": "ARP ping",
    "--disable-arp-ping": "ARP ping control",
    "--discovery-ignore-rst": "discovery tuning",
    "--traceroute": "traceroute",
    "--system-dns": "the system resolver",
    "--resolve-all": "scanning every address of a name",
    "--unique": "address de-duplication",
    "-iR": "random targets",
    "--randomize-hosts": "host order randomisation",
    "-f": "packet fragmentation",
    "--mtu": "packet fragmentation",
    "-D": "decoys",
    "--spoof-mac": "MAC address spoofing",
    "--proxies": "proxies",
    "--data": "custom payloads",
    "--data-string": "custom payloads",
    "--data-length": "custom payloads",
    "--ip-options": "IP options",
    "--badsum": "bad checksums",
    "--adler32": "SCTP checksums",
    "--send-eth": "raw ethernet sending",
    "--send-ip": "the send mode choice",
    "--privileged": "privilege overrides",
    "--unprivileged": "privilege overrides",
    "--port-ratio": "port selection by ratio",
    "--allports": "version detection",
    "--min-hostgroup": "host groups",
    "--max-hostgroup": "host groups",
    "--defeat-rst-ratelimit": "rate-limit tuning",
    "--defeat-icmp-ratelimit": "rate-limit tuning",
    "--nsock-engine": "nsock engines",
    "-oS": "script kiddie output",
    "-oM": "machine output",
    "-oH": "hex output",
    "--append-output": "appending to output files",
    "--resume": "resuming scans",
    "--packet-trace": "packet tracing",
    "--iflist": "interface listing",
    "--datadir": "custom data directories",
    "--servicedb": "custom data files",
    "--webxml": "XML stylesheets",
    "--log-errors": "error logging",
    "--deprecated-xml-osclass": "OS detection",
    "--release-memory": "memory release",
}

# Unsupported options that take their argument glued on (``-PO6``, ``-D1.2.3.4``).
_GLUED = ("-PO", "-PY", "-PM", "-PR", "-sI", "-iR", "-D", "-b", "-oS", "-oM", "-oH")

_PROBE_FLAG = re.compile(r"-P([SAU])(.*)", re.DOTALL)
_LEVEL_FLAG = re.compile(r"-([vd])(?:(\1*)|(\d+))")
_TIME = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?")

_PROBE_KINDS: dict[str, Literal["syn", "ack", "udp"]] = {"S": "syn", "A": "ack", "U": "udp"}
# nmap's default ports for a bare -PS / -PA / -PU (nmap(1), "Host discovery").
_PROBE_DEFAULT_PORT = {"S": 80, "A": 80, "U": 40125}


def _unsupported(token: str) -> str | None:
    """The one-line error for an nmap option pyscan refuses, or None."""
    name = token.split("=", 1)[0] if token.startswith("--") else token
    if name in NOT_YET:
        return f"option {name} ({NOT_YET[name]}) is not supported yet"
    if name in UNSUPPORTED:
        return f"option {name} ({UNSUPPORTED[name]}) is not supported by pyscan"
    if name.startswith("-") and not name.startswith("--"):
        for glued in _GLUED:
            if name.startswith(glued):
                return f"option {glued} ({UNSUPPORTED[glued]}) is not supported by pyscan"
    return None


@attrs.frozen
class _Pre:
    argv: list[str]
    probes: tuple[tuple[str, str | None], ...]
    verbose: int
    debugging: int


def _preprocess(argv: Sequence[str]) -> _Pre:
    rest: list[str] = []
    probes: list[tuple[str, str | None]] = []
    verbose = debugging = 0
    options_done = False
    takes_value = _VALUE_OPTIONS
    skip_next = False
    for arg in argv:
        if skip_next and arg.startswith("-") and arg != "-":
            # A value that looks like an option (-oN -O, --max-retries -1): glue it on so
            # argparse takes it as the value, as nmap does.
            rest[-1] += "=" + arg
            skip_next = False
            continue
        if skip_next or options_done or not arg.startswith("-") or arg == "-":
            skip_next = False
            rest.append(arg)
            continue
        if arg == "--":
            options_done = True
            rest.append(arg)
            continue
        why = _unsupported(arg)
        if why is not None:
            raise UsageError(why)
        probe = _PROBE_FLAG.fullmatch(arg)
        if probe is not None:
            probes.append((probe.group(1), probe.group(2) or None))
            continue
        if arg in ("-PE", "-PP"):
            probes.append((arg[2], None))
            continue
        level = _LEVEL_FLAG.fullmatch(arg)
        if level is not None:
            n = int(level.group(3)) if level.group(3) else 1 + len(level.group(2))
            if level.group(1) == "v":
                verbose = n if level.group(3) else verbose + n
            else:
                debugging = n if level.group(3) else debugging + n
            continue
        if arg in takes_value:
            skip_next = True
        rest.append(arg)
    return _Pre(rest, tuple(probes), verbose, debugging)


# -- value converters (argparse ``type=``) -----------------------------------------------------


def parse_time(text: str) -> float:
    """nmap's <time>: a number of seconds, or with a unit ``ms``, ``s``, ``m`` or ``h``."""
    m = _TIME.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(
            f"invalid time {text!r}: expected a number with an optional unit ms, s, m or h "
            "(e.g. 500ms, 2s, 1m)"
        )
    scale = {"ms": 0.001, "s": 1.0, None: 1.0, "m": 60.0, "h": 3600.0}[m.group(2)]
    return float(m.group(1)) * scale


def _rate(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(
            f"invalid rate {text!r}: expected a positive number of packets per second"
        )
    return value


def _int_in(low: int, high: int | None, what: str) -> Any:
    def convert(text: str) -> int:
        try:
            value = int(text, 10)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            span = f"{low}..{high}" if high is not None else f"{low} or greater"
            raise argparse.ArgumentTypeError(f"invalid {what} {text!r}: expected an integer {span}")
        return value

    return convert


def _template(text: str) -> TimingTemplate:
    try:
        return TimingTemplate.get(text)
    except OptionsError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _shard(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)/(\d+)", text.strip())
    if m is None or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise argparse.ArgumentTypeError(
            f"invalid shard {text!r}: expected i/n with 1 <= i <= n (e.g. 1/4)"
        )
    return int(m.group(1)), int(m.group(2))


def _address(text: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"invalid address {text!r}: expected an IPv4 or IPv6 address"
        ) from None
    return text


def _interface(text: str) -> str:
    if not text or len(text) > 15 or any(c == "/" or c.isspace() for c in text):
        raise argparse.ArgumentTypeError(f"invalid interface name {text!r}")
    return text


def _seed(text: str) -> int:
    try:
        return int(text, 0)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid seed {text!r}: expected an integer") from None


# -- the parser --------------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


_VALUE_OPTIONS = frozenset(
    {
        "-iL", "--exclude", "--excludefile", "--dns-servers", "-p", "--top-ports",
        "--exclude-ports", "-T", "--min-rate", "--max-rate", "--max-retries",
        "--min-rtt-timeout", "--max-rtt-timeout", "--initial-rtt-timeout", "--host-timeout",
        "--scan-delay", "--max-scan-delay", "--min-parallelism", "--max-parallelism", "-g",
        "--source-port", "-S", "-e", "--ttl", "-oN", "-oX", "-oG", "-oA", "-oJ",
        "--stats-every", "--seed", "--shard", "--resume-from", "--stylesheet",
        "--version-intensity",
        "--versiondb",
    }
)  # fmt: skip

USAGE = "pyscan [Scan Type(s)] [Options] {target specification}"

HELP = """\
pyscan {version}: an asyncio network scanner with nmap's command line
Usage: {usage}
TARGET SPECIFICATION:
  Hostnames, IP addresses, networks: 198.18.0.1, 10.0.0.0/24, 192.168.0-1.1-254, ::1 (with -6)
  -iL <file>: read targets from a file ('-' for standard input)
  --exclude <host1[,host2],...>: exclude hosts/networks
  --excludefile <file>: exclude the targets listed in a file
  -6: scan IPv6 targets
HOST DISCOVERY:
  -sL: list targets only (no packets to them)
  -sn: ping scan, no port scan
  -Pn: treat every host as up, skip discovery
  -PS/PA/PU[portlist]: TCP SYN/ACK or UDP discovery to the given ports
  -PE/PP: ICMP echo and timestamp discovery probes
  -n/-R: never do reverse DNS / do it for every host [default: up hosts]
  --dns-servers <serv1[,serv2],...>: DNS servers to use
SCAN TECHNIQUES:
  -sS/sT: TCP SYN / connect() scan;  -sU: UDP scan (combinable: -sS -sU)
SERVICE/VERSION DETECTION:
  -sV: probe open ports to determine service/version info
  --version-intensity <0-9>: light (2) to all probes (9) [default: 7]
  --version-light / --version-all: intensity 2 / 9
  --versiondb <file>: probe file [default: nmap's nmap-service-probes, else pyscan's own]
PORT SPECIFICATION AND SCAN ORDER:
  -p <port ranges>: e.g. -p22; -p1-65535; -p U:53,111,T:21-25,80; -p- for all
  --exclude-ports <port ranges>: leave these ports out
  -F: fast mode, top 100 ports;  --top-ports <n>: the n most common ports
  -r: scan ports in order, not randomised
TIMING AND PERFORMANCE (<time>: seconds, or 500ms, 2s, 1m, 1h):
  -T<0-5>: timing template (or -T paranoid|sneaky|polite|normal|aggressive|insane)
  --min-rate/--max-rate <number>: packets per second floor / ceiling
  --max-retries <tries>: cap probe retransmissions
  --min-rtt-timeout/max-rtt-timeout/initial-rtt-timeout <time>: probe timeouts
  --host-timeout <time>: give up on a host after this long
  --scan-delay/--max-scan-delay <time>: delay between probes
  --min-parallelism/--max-parallelism <n>: probe parallelism bounds
  --seed <n>: seed the probe order (reproducible runs);  --shard <i/n>: scan slice i of n
  --resume-from <n>: start the port scan at this position of its order (with -Pn, --seed)
PACKETS:
  -S <address>: source address;  -e <iface>: interface;  -g/--source-port <port>
  --ttl <value>: IP time-to-live
OUTPUT:
  -oN/-oX/-oG/-oJ <file>: normal, XML, grepable, JSON lines output ('-' = stdout)
  -oA <basename>: normal, XML and grepable at once
  -v/-vv/-v<n>: verbosity;  -d/-dd/-d<n>: debugging
  --reason: show why each port has its state;  --open: show only (possibly) open ports
  --stats-every <time>: print progress periodically on stderr
  --stylesheet <path/URL>: XSL stylesheet for XML output
MISC:
  --version/-V: print the version;  -h/--help: this summary
Not supported yet: -O (OS detection).
See docs/cli.md for every option, exit codes and the differences from nmap.
"""


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser for everything :func:`_preprocess` leaves in argv."""
    p = _Parser(prog="pyscan", usage=USAGE, add_help=False, allow_abbrev=False)
    a = p.add_argument
    a("targets", nargs="*")
    a("-iL", dest="input_list", metavar="FILE")
    a("--exclude", action="append", default=[])
    a("--excludefile")
    a("-6", dest="ipv6", action="store_true")
    a("-sL", dest="list_scan", action="store_true")
    a("-sn", "-sP", dest="ping_only", action="store_true")
    a("-Pn", "-P0", dest="no_ping", action="store_true")
    a("-n", dest="no_dns", action="store_true")
    a("-R", dest="all_dns", action="store_true")
    a("--dns-servers")
    a("-sS", dest="syn", action="store_true")
    a("-sT", dest="connect", action="store_true")
    a("-sU", dest="udp", action="store_true")
    a("-sV", dest="version_scan", action="store_true")
    a("--version-intensity", type=_int_in(0, 9, "version intensity"))
    a("--version-light", action="store_true")
    a("--version-all", action="store_true")
    a("--versiondb", metavar="FILE")
    a("-p", dest="ports")
    a("--top-ports", type=_int_in(1, None, "--top-ports count"))
    a("-F", dest="fast", action="store_true")
    a("-r", dest="sequential", action="store_true")
    a("--exclude-ports")
    a("-T", dest="timing", type=_template)
    a("--min-rate", type=_rate)
    a("--max-rate", type=_rate)
    a("--max-retries", type=_int_in(0, None, "retry count"))
    for name in (
        "--min-rtt-timeout",
        "--max-rtt-timeout",
        "--initial-rtt-timeout",
        "--host-timeout",
        "--scan-delay",
        "--max-scan-delay",
    ):
        a(name, type=parse_time)
    a("--min-parallelism", type=_int_in(1, None, "parallelism"))
    a("--max-parallelism", type=_int_in(1, None, "parallelism"))
    a("-g", "--source-port", dest="source_port", type=_int_in(0, 65535, "port"))
    a("-S", dest="source_address", type=_address)
    a("-e", dest="interface", type=_interface)
    a("--ttl", type=_int_in(0, 255, "TTL"))
    a("--seed", type=_seed)
    a("--resume-from", dest="resume_from", type=_int_in(0, None, "position"))
    a("--shard", type=_shard)
    for flag in ("-oN", "-oX", "-oG", "-oA", "-oJ"):
        a(flag, dest="o" + flag[2], metavar="FILE")
    a("--open", dest="open_only", action="store_true")
    a("--reason", action="store_true")
    a("--stats-every", type=parse_time)
    a("--stylesheet")
    a("--no-stylesheet", action="store_true")
    a("--noninteractive", action="store_true")
    a("--version", "-V", dest="show_version", action="store_true")
    a("-h", "--help", dest="show_help", action="store_true")
    return p


# -- the checked configuration -----------------------------------------------------------------


@attrs.frozen
class OutputTarget:
    """One requested output file: its format and path (``"-"`` is standard output)."""

    format: OutputFormat
    path: str
    flag: str


@attrs.frozen(kw_only=True)
class CliConfig:
    """Everything the run needs, checked."""

    mode: Literal["list", "ping", "port", "help", "version"]
    targets: tuple[str, ...] = ()
    input_list: str | None = None
    exclude: tuple[str, ...] = ()
    exclude_file: str | None = None
    ipv6: bool = False
    skip_discovery: bool = False
    probes: tuple[DiscoveryProbe, ...] = ()
    reverse_dns: Literal["never", "up", "all"] = "up"
    dns_servers: tuple[str, ...] = ()
    kinds: tuple[ScanKind, ...] = ()
    ports: PortList | None = None
    options: ScanOptions = attrs.field(factory=ScanOptions)
    outputs: tuple[OutputTarget, ...] = ()
    verbose: int = 0
    debugging: int = 0
    reason: bool = False
    open_only: bool = False
    stats_every: float | None = None
    stylesheet: str | None = None
    version: VersionOptions | None = None
    notices: tuple[str, ...] = ()
    args: str = "pyscan"


def _probe(letter: str, ports: str | None) -> list[DiscoveryProbe]:
    if letter == "E":
        return [DiscoveryProbe("echo")]
    if letter == "P":
        return [DiscoveryProbe("timestamp")]
    kind = _PROBE_KINDS[letter]
    proto = "udp" if letter == "U" else "tcp"
    if ports is None:
        return [DiscoveryProbe(kind, _PROBE_DEFAULT_PORT[letter])]
    try:
        plist = resolve_ports(ports, protocols=[proto])
    except PortSpecError as exc:
        raise UsageError(f"-P{letter}: {exc}") from None
    return [DiscoveryProbe(kind, port) for port in plist.ports(proto)]


def _outputs(ns: argparse.Namespace) -> tuple[OutputTarget, ...]:
    outs: list[OutputTarget] = []
    if ns.oA is not None:
        if ns.oA == "-":
            raise UsageError("-oA cannot write to standard output ('-'): give a base name")
        outs += [
            OutputTarget("normal", ns.oA + ".nmap", "-oA"),
            OutputTarget("xml", ns.oA + ".xml", "-oA"),
            OutputTarget("grepable", ns.oA + ".gnmap", "-oA"),
        ]
    formats: tuple[tuple[str, OutputFormat], ...] = (
        ("N", "normal"),
        ("X", "xml"),
        ("G", "grepable"),
        ("J", "jsonl"),
    )
    for letter, fmt in formats:
        path = getattr(ns, "o" + letter)
        if path is not None:
            outs.append(OutputTarget(fmt, path, "-o" + letter))
    to_stdout = [o.flag for o in outs if o.path == "-"]
    if len(to_stdout) > 1:
        raise UsageError(
            f"only one output can go to standard output ('-'): {' and '.join(to_stdout)} both do"
        )
    paths = [o.path for o in outs if o.path != "-"]
    for path in paths:
        if paths.count(path) > 1:
            raise UsageError(f"two outputs would write the same file {path!r}")
    return tuple(outs)


def _scan_options(ns: argparse.Namespace) -> ScanOptions:
    if ns.min_rate is not None and ns.max_rate is not None and ns.min_rate > ns.max_rate:
        raise UsageError(
            f"--min-rate ({ns.min_rate:g}) must not exceed --max-rate ({ns.max_rate:g})"
        )
    pairs = (
        ("min_rtt_timeout", "max_rtt_timeout"),
        ("min_rtt_timeout", "initial_rtt_timeout"),
        ("initial_rtt_timeout", "max_rtt_timeout"),
        ("scan_delay", "max_scan_delay"),
        ("min_parallelism", "max_parallelism"),
    )
    for low, high in pairs:
        lo, hi = getattr(ns, low), getattr(ns, high)
        if lo is not None and hi is not None and lo > hi:
            raise UsageError(
                f"--{low.replace('_', '-')} ({lo:g}) must not exceed --{high.replace('_', '-')} "
                f"({hi:g})"
            )
    for name in ("max_rtt_timeout", "initial_rtt_timeout"):
        if getattr(ns, name) == 0:
            raise UsageError(f"--{name.replace('_', '-')} must be greater than 0")
    kw: dict[str, Any] = {}
    for name in (
        "min_rate", "max_rate", "max_retries", "min_rtt_timeout", "max_rtt_timeout",
        "initial_rtt_timeout", "host_timeout", "scan_delay", "max_scan_delay",
        "min_parallelism", "max_parallelism", "source_port", "source_address", "interface",
        "ttl", "seed", "resume_from",
    ):  # fmt: skip
        value = getattr(ns, name)
        if value is not None:
            kw[name] = value
    if ns.timing is not None:
        kw["timing"] = ns.timing
    if ns.shard is not None:
        kw["shard"] = (ns.shard[0] - 1, ns.shard[1])
    if ns.sequential:
        kw["randomize_ports"] = False
    try:
        return ScanOptions(**kw)
    except OptionsError as exc:
        raise UsageError(str(exc)) from None


def _flag_list(ns: argparse.Namespace, names: Sequence[tuple[str, str]]) -> list[str]:
    """The flags among ``names`` ((dest, flag) pairs) that were given."""
    return [flag for attr, flag in names if getattr(ns, attr) not in (None, False, [])]


_PORT_FLAGS = (("ports", "-p"), ("top_ports", "--top-ports"), ("fast", "-F"))
_PORT_FLAGS_ALL = (*_PORT_FLAGS, ("exclude_ports", "--exclude-ports"))
_SCAN_FLAGS = (("syn", "-sS"), ("connect", "-sT"), ("udp", "-sU"))


def _version(ns: argparse.Namespace, mode: str) -> VersionOptions | None:
    """-sV and its intensity options (nmap: --version-* without -sV do nothing: we refuse)."""
    given = [
        flag
        for attr, flag in (
            ("version_intensity", "--version-intensity"),
            ("version_light", "--version-light"),
            ("version_all", "--version-all"),
            ("versiondb", "--versiondb"),
        )
        if getattr(ns, attr) not in (None, False)
    ]
    if not ns.version_scan:
        if given:
            raise UsageError(f"{given[0]} needs -sV (version detection)")
        return None
    if mode != "port":
        raise UsageError(f"-sV cannot be combined with {'-sL' if mode == 'list' else '-sn'}")
    levels = [f for f in given if f != "--versiondb"]
    if len(levels) > 1:
        raise UsageError(f"{levels[0]} and {levels[1]} cannot be combined")
    intensity = 7
    if ns.version_intensity is not None:
        intensity = ns.version_intensity
    elif ns.version_light:
        intensity = 2
    elif ns.version_all:
        intensity = 9
    return VersionOptions(intensity=intensity, probe_file=ns.versiondb)


def build_config(argv: Sequence[str], *, has_raw: bool) -> CliConfig:
    """Parse and check ``argv`` (without the program name); UsageError on any problem.

    ``has_raw`` is whether this process has CAP_NET_RAW: it picks the default scan type and
    rejects raw scans and probes without it.
    """
    pre = _preprocess(argv)
    ns, extra = build_parser().parse_known_args(pre.argv)
    for arg in extra:
        if arg.startswith("-") and arg != "-":
            raise UsageError(f"unrecognized option {arg.split('=', 1)[0]!r}")
    if ns.show_help or not argv:
        return CliConfig(mode="help")
    if ns.show_version:
        return CliConfig(mode="version")
    targets = tuple(ns.targets) + tuple(t for t in extra if t != "--")
    if not targets and ns.input_list is None:
        raise UsageError("no targets given: name hosts or networks, or use -iL FILE")

    scans = _flag_list(ns, _SCAN_FLAGS)
    probe_flags = [f"-P{letter}" for letter, _ in pre.probes]
    notices: list[str] = []
    if ns.syn and ns.connect:
        raise UsageError("-sS and -sT cannot be combined: choose one TCP scan type")
    if ns.all_dns and ns.no_dns:
        raise UsageError("-n and -R cannot be combined")
    if ns.list_scan:
        clash = scans + (["-sn"] if ns.ping_only else []) + _flag_list(ns, _PORT_FLAGS_ALL)
        clash += probe_flags
        if clash:
            raise UsageError(f"-sL (list scan) cannot be combined with {clash[0]}")
        mode: Literal["list", "ping", "port"] = "list"
    elif ns.ping_only:
        clash = scans + _flag_list(ns, _PORT_FLAGS_ALL)
        if clash:
            raise UsageError(f"-sn (ping scan, no port scan) cannot be combined with {clash[0]}")
        mode = "ping"
    else:
        mode = "port"
    if ns.no_ping and probe_flags:
        raise UsageError(f"-Pn (skip discovery) cannot be combined with {probe_flags[0]}")

    probes: list[DiscoveryProbe] = []
    for letter, spec in pre.probes:
        probes.extend(p for p in _probe(letter, spec) if p not in probes)

    kinds: list[ScanKind] = []
    if mode == "port":
        if ns.syn:
            kinds.append("syn")
        if ns.connect:
            kinds.append("connect")
        if ns.udp:
            kinds.append("udp")
        if not kinds:
            if has_raw:
                kinds.append("syn")
            else:
                kinds.append("connect")
                notices.append(
                    "no raw-socket privilege (CAP_NET_RAW): using a TCP connect scan (-sT) "
                    "instead of a SYN scan (-sS)"
                )
    if not has_raw and mode != "list":
        for flag, what in (("-sS", "SYN scan"), ("-sU", "UDP scan")):
            if flag in scans:
                alt = (
                    "use -sT (connect scan), which"
                    if flag == "-sS"
                    else "pyscan has no UDP scan that"
                )
                raise UsageError(
                    f"{flag} ({what}) needs raw sockets (CAP_NET_RAW): run as root or grant "
                    f"the capability; {alt} needs no privilege"
                )
        if probe_flags:
            raise UsageError(
                f"{probe_flags[0]} (discovery probes) needs raw sockets (CAP_NET_RAW): run as "
                "root or grant the capability, or leave the -P options out to use the "
                "unprivileged connect() ping"
            )

    ports: PortList | None = None
    if mode == "port":
        protocols = sorted({"udp" if k == "udp" else "tcp" for k in kinds})
        ports = resolve_ports(
            ns.ports,
            protocols=protocols,
            top=ns.top_ports,
            fast=ns.fast,
            exclude_spec=ns.exclude_ports,
        )
        for proto in protocols:
            if not ports.ports(proto):
                raise PortSpecError(ns.ports or "", f"selects no {proto} ports to scan")

    version = _version(ns, mode)

    if ns.stats_every is not None and ns.stats_every <= 0:
        raise UsageError("--stats-every must be greater than 0")
    if ns.stylesheet is not None and ns.no_stylesheet:
        raise UsageError("--stylesheet and --no-stylesheet cannot be combined")
    dns_servers: tuple[str, ...] = ()
    if ns.dns_servers is not None:
        dns_servers = tuple(s for s in ns.dns_servers.split(",") if s)
        if not dns_servers:
            raise UsageError(f"--dns-servers {ns.dns_servers!r} names no server")

    return CliConfig(
        mode=mode,
        targets=targets,
        input_list=ns.input_list,
        exclude=tuple(ns.exclude),
        exclude_file=ns.excludefile,
        ipv6=ns.ipv6,
        skip_discovery=ns.no_ping,
        probes=tuple(probes),
        reverse_dns="never" if ns.no_dns else "all" if ns.all_dns or mode == "list" else "up",
        dns_servers=dns_servers,
        kinds=tuple(kinds),
        ports=ports,
        options=_scan_options(ns),
        outputs=_outputs(ns),
        verbose=pre.verbose,
        debugging=pre.debugging,
        reason=ns.reason,
        open_only=ns.open_only,
        stats_every=ns.stats_every,
        stylesheet=ns.stylesheet,
        version=version,
        notices=tuple(notices),
        args=" ".join(["pyscan", *argv]),
    )
