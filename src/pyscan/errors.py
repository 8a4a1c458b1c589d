"""The exceptions pyscan raises.

Every error pyscan raises on purpose derives from :class:`PyscanError`. Where a builtin
exception already names the kind of failure, the pyscan class inherits it too, so callers
may catch either::

    PyscanError
    ├── SpecError (ValueError)             bad user input in nmap syntax
    │   ├── TargetSpecError                  a target, exclusion or -iL entry
    │   └── PortSpecError                    a -p / --exclude-ports / --top-ports value
    ├── OptionsError (ValueError)          inconsistent or out-of-range scan options
    ├── PacketError (ValueError)           bytes that do not parse as the named layer
    ├── ReportFormatError (ValueError)     a stored JSON report that does not follow the schema
    ├── DataFileError (OSError)            an nmap data file that cannot be read
    │   └── ProbeFileError (ValueError)      a malformed nmap-service-probes line
    ├── ResolveError (OSError)             a hostname that does not resolve
    ├── PrivilegeError (PermissionError)   raw sockets without CAP_NET_RAW
    └── ScanError (RuntimeError)           the engine cannot go on (socket or routing failure)

Messages quote the offending input and say where in it the problem is, so a command line
can print ``str(exc)`` as its one-line error.
"""

from __future__ import annotations

__all__ = [
    "DataFileError",
    "OptionsError",
    "PacketError",
    "PortSpecError",
    "PrivilegeError",
    "ProbeFileError",
    "PyscanError",
    "ReportFormatError",
    "ResolveError",
    "ScanError",
    "SpecError",
    "TargetSpecError",
]


class PyscanError(Exception):
    """Root of every exception pyscan raises on purpose."""


class SpecError(PyscanError, ValueError):
    """A specification in nmap syntax is malformed.

    ``spec`` is the whole text given, ``position`` the 0-based index in it where the
    problem starts (or ``None`` when it concerns the whole spec).
    """

    kind = "spec"

    def __init__(self, spec: str, reason: str, position: int | None = None) -> None:
        self.spec = spec
        self.reason = reason
        self.position = position
        where = f" at position {position}" if position is not None else ""
        super().__init__(f"invalid {self.kind} {spec!r}{where}: {reason}")


class TargetSpecError(SpecError):
    """A target specification (address, range, CIDR, hostname, input list) is malformed."""

    kind = "target specification"


class PortSpecError(SpecError):
    """A port specification is malformed or names an unknown service."""

    kind = "port specification"


class OptionsError(PyscanError, ValueError):
    """Scan options are out of range or contradict each other."""


class PacketError(PyscanError, ValueError):
    """Bytes do not parse as the named protocol layer.

    ``layer`` names the header (``"ipv4"``, ``"tcp"``, ...), ``offset`` is the byte offset
    within the buffer given to the parser where parsing failed.
    """

    def __init__(self, layer: str, offset: int, reason: str) -> None:
        self.layer = layer
        self.offset = offset
        self.reason = reason
        super().__init__(f"{layer} at offset {offset}: {reason}")


class ReportFormatError(PyscanError, ValueError):
    """A stored report does not follow the JSON schema (docs/json-schema.md)."""


class DataFileError(PyscanError, OSError):
    """A data file (nmap-services, nmap-service-probes, ...) cannot be found or read."""


class ProbeFileError(DataFileError, ValueError):
    """A line of a service-probe file is malformed.

    Carries the file name, 1-based line and column of the problem.
    """

    def __init__(self, path: str, line: int, column: int, reason: str) -> None:
        self.path = path
        self.line = line
        self.column = column
        self.reason = reason
        ValueError.__init__(self, f"{path}:{line}:{column}: {reason}")

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.reason}"


class ResolveError(PyscanError, OSError):
    """A hostname could not be resolved to an address."""


class PrivilegeError(PyscanError, PermissionError):
    """The operation needs a privilege (such as CAP_NET_RAW) this process lacks."""


class ScanError(PyscanError, RuntimeError):
    """The scan engine cannot continue (socket, routing or interface failure)."""
