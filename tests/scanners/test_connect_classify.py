"""What a connect() outcome means for the port: the errno table, nmap's reasons."""

from __future__ import annotations

import errno

import pytest

from pyscan._models import PortState, ReasonKind
from pyscan._scanners.connect import classify_connect, is_final

OPEN_, C, F = PortState.OPEN, PortState.CLOSED, PortState.FILTERED
TABLE = [
    (0, OPEN_, ReasonKind.SYN_ACK, True),
    (errno.ECONNREFUSED, C, ReasonKind.CONN_REFUSED, True),
    (errno.ECONNRESET, C, ReasonKind.CONN_REFUSED, True),
    (errno.EHOSTUNREACH, F, ReasonKind.HOST_UNREACH, True),
    (errno.EHOSTDOWN, F, ReasonKind.HOST_UNREACH, True),
    (errno.ENETUNREACH, F, ReasonKind.NET_UNREACH, True),
    (errno.ENETDOWN, F, ReasonKind.NET_UNREACH, True),
    (errno.ENOPROTOOPT, F, ReasonKind.PROTO_UNREACH, True),
    (errno.EACCES, F, ReasonKind.ADMIN_PROHIBITED, True),
    (errno.EPERM, F, ReasonKind.ADMIN_PROHIBITED, True),
    (errno.ETIMEDOUT, F, ReasonKind.NO_RESPONSE, False),
    (None, F, ReasonKind.NO_RESPONSE, False),
]


@pytest.mark.parametrize(
    ("err", "state", "reason", "final"),
    TABLE,
    ids=[errno.errorcode.get(e, str(e)) if e else repr(e) for e, *_ in TABLE],
)
def test_errno_table(err: int | None, state: PortState, reason: ReasonKind, final: bool) -> None:
    assert classify_connect(err) == (state, reason)
    assert is_final(err) is final


@pytest.mark.parametrize("err", [errno.EINVAL, errno.EADDRNOTAVAIL, errno.EMFILE, 9999])
def test_unknown_errno_is_filtered_unknown_response(err: int) -> None:
    assert classify_connect(err) == (F, ReasonKind.UNKNOWN_RESPONSE)
    assert is_final(err)


def test_only_success_is_open_and_only_refusals_are_closed() -> None:
    known = [e for e in errno.errorcode if e]
    states = {e: classify_connect(e)[0] for e in known}
    assert [e for e, s in states.items() if s is OPEN_] == []
    assert {e for e, s in states.items() if s is C} == {errno.ECONNREFUSED, errno.ECONNRESET}
