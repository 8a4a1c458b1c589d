"""TCP connect scan classification: what a connect() outcome means for the port.

Pure: the IO driver (:mod:`pyscan._io.connect`) makes the non-blocking connects and hands
the errno (0 for success, None for our own timeout) here.
"""

from __future__ import annotations

import errno

from pyscan._models import PortState, ReasonKind

__all__ = ["classify_connect", "is_final"]

_ERRNO_OUTCOMES: dict[int, tuple[PortState, ReasonKind]] = {
    0: (PortState.OPEN, ReasonKind.SYN_ACK),
    errno.ECONNREFUSED: (PortState.CLOSED, ReasonKind.CONN_REFUSED),
    errno.ECONNRESET: (PortState.CLOSED, ReasonKind.CONN_REFUSED),
    errno.EHOSTUNREACH: (PortState.FILTERED, ReasonKind.HOST_UNREACH),
    errno.EHOSTDOWN: (PortState.FILTERED, ReasonKind.HOST_UNREACH),
    errno.ENETUNREACH: (PortState.FILTERED, ReasonKind.NET_UNREACH),
    errno.ENETDOWN: (PortState.FILTERED, ReasonKind.NET_UNREACH),
    errno.ENOPROTOOPT: (PortState.FILTERED, ReasonKind.PROTO_UNREACH),
    errno.EACCES: (PortState.FILTERED, ReasonKind.ADMIN_PROHIBITED),
    errno.EPERM: (PortState.FILTERED, ReasonKind.ADMIN_PROHIBITED),
    errno.ETIMEDOUT: (PortState.FILTERED, ReasonKind.NO_RESPONSE),
}


def classify_connect(err: int | None) -> tuple[PortState, ReasonKind]:
    """The state and reason for a connect() that ended with ``err``.

    ``0`` is success, ``None`` our own timeout (no answer at all); an errno we do not know
    leaves the port filtered with reason ``unknown-response``.
    """
    if err is None:
        return PortState.FILTERED, ReasonKind.NO_RESPONSE
    return _ERRNO_OUTCOMES.get(err, (PortState.FILTERED, ReasonKind.UNKNOWN_RESPONSE))


def is_final(err: int | None) -> bool:
    """Whether an outcome is an answer (as opposed to silence, worth retrying)."""
    return err is not None and err != errno.ETIMEDOUT
