"""The probe-selection state machine, driven with scripted replies (no sockets, no clock)."""

from __future__ import annotations

import ast
import string
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pyscan.service
from pyscan.errors import OptionsError
from pyscan.service import ProbeDatabase, parse_probes
from pyscan.service._engine import (
    Detection,
    ProbeReply,
    ProbeStep,
    ServiceDetection,
)

DB_TEXT = r"""
Exclude T:9100
Probe TCP NULL q||
totalwaitms 6000
tcpwrappedms 3000
match ssh m|^SSH-2\.0-Foo_(\d+)\r\n| p/Foo sshd/ v/$1/
match ssl/imap m|^\* OK SecureIMAP| p/SecureIMAP/
softmatch ftp m|^220 |
softmatch weird m|^WEIRD|

Probe TCP GetRequest q|GET / HTTP/1.0\r\n\r\n|
rarity 1
ports 80
sslports 443
match http m|^HTTP/1\.0 200 OK\r\nServer: Bar/(\d+)\r\n| p/Bar httpd/ v/$1/
softmatch http m|^HTTP/1\.[01] |

Probe TCP FtpHelp q|HELP\r\n|
rarity 3
ports 21
match ftp m|^214 FancyFTP (\d+)| p/FancyFTP/ v/$1/

Probe TCP Rare q|RARE\r\n|
rarity 8
ports 9999
match rare m|^RARE| p/Rare thing/

Probe TCP TLS q|HELLO|
rarity 1
ports 443
fallback GetRequest
match ssl m|^\x16\x03|

Probe TCP Fallbacker q|FB|
rarity 2
fallback FtpHelp
match fbonly m|^FBONLY|

Probe UDP DNS q|DNS|
rarity 1
ports 53
match domain m|^DNSANSWER (\S+)| p/$1/

Probe UDP Other q|OTHER|
rarity 5
match other m|^OTHERANSWER|
"""

TCP_FILE_ORDER = ["GetRequest", "FtpHelp", "Rare", "TLS", "Fallbacker"]


@pytest.fixture(scope="module")
def db() -> ProbeDatabase:
    return parse_probes(DB_TEXT, "test-probes")


Responder = Callable[[ProbeStep], ProbeReply]


def silent(step: ProbeStep) -> ProbeReply:
    return ProbeReply(b"", elapsed=step.wait)


def scripted(answers: Mapping[tuple[bool, str], bytes | ProbeReply]) -> Responder:
    """Reply by (tls, probe name); anything not listed stays silent."""

    def respond(step: ProbeStep) -> ProbeReply:
        answer = answers.get((step.tls, step.probe.name))
        if answer is None:
            return silent(step)
        if isinstance(answer, ProbeReply):
            return answer
        return ProbeReply(answer, elapsed=0.01)

    return respond


def run(
    det: ServiceDetection, respond: Responder, **result_kw: object
) -> tuple[list[ProbeStep], Detection]:
    steps: list[ProbeStep] = []
    while (step := det.next_step()) is not None:
        steps.append(step)
        assert len(steps) < 100, "the engine does not terminate"
        det.on_reply(step, respond(step))
    return steps, det.result(now=1_700_000_000.0, **result_kw)  # type: ignore[arg-type]


def names(steps: list[ProbeStep]) -> list[str]:
    return [("tls:" if s.tls else "") + s.probe.name for s in steps]


# -- order ----------------------------------------------------------------------------------


def test_null_banner_hard_match_ends_at_once(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 2222, "tcp")
    steps, found = run(det, scripted({(False, "NULL"): b"SSH-2.0-Foo_42\r\n"}))
    assert names(steps) == ["NULL"]
    assert found.service is not None
    assert (found.service.name, found.service.product, found.service.version) == (
        "ssh",
        "Foo sshd",
        "42",
    )
    assert found.service.method == "probed"
    assert found.service.conf == 10
    assert found.service.fingerprint is None
    assert found.answered


def test_silent_port_tries_file_order_up_to_intensity(db: ProbeDatabase) -> None:
    steps, found = run(ServiceDetection(db, 12345, "tcp", intensity=7), silent)
    assert names(steps) == ["NULL", "GetRequest", "FtpHelp", "TLS", "Fallbacker"]
    assert found.service is None
    assert not found.answered


@pytest.mark.parametrize(
    ("intensity", "expected"),
    [
        (0, ["NULL"]),
        (1, ["NULL", "GetRequest", "TLS"]),
        (2, ["NULL", "GetRequest", "TLS", "Fallbacker"]),
        (7, ["NULL", "GetRequest", "FtpHelp", "TLS", "Fallbacker"]),
        (9, ["NULL", *TCP_FILE_ORDER]),
    ],
)
def test_rarity_cutoff(db: ProbeDatabase, intensity: int, expected: list[str]) -> None:
    steps, _ = run(ServiceDetection(db, 12345, "tcp", intensity=intensity), silent)
    assert names(steps) == expected


def test_probes_listing_the_port_go_first_whatever_their_rarity(db: ProbeDatabase) -> None:
    steps, _ = run(ServiceDetection(db, 9999, "tcp", intensity=0), silent)
    assert names(steps) == ["NULL", "Rare"]
    steps, _ = run(ServiceDetection(db, 21, "tcp", intensity=7), silent)
    assert names(steps) == ["NULL", "FtpHelp", "GetRequest", "TLS", "Fallbacker"]
    steps, _ = run(ServiceDetection(db, 443, "tcp", intensity=2), silent)
    assert names(steps) == ["NULL", "TLS", "GetRequest", "Fallbacker"]


def test_waits_come_from_the_file_scaled(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 80, "tcp", timeout_scale=0.01)
    null = det.next_step()
    assert null is not None
    assert null.wait == pytest.approx(0.06)
    assert null.tcpwrapped == pytest.approx(0.03)
    det.on_reply(null, ProbeReply(b"", elapsed=0.06))
    get = det.next_step()
    assert get is not None
    assert get.probe.name == "GetRequest"
    assert get.wait == pytest.approx(0.05)
    assert get.tcpwrapped is None


def test_silent_null_probe_connection_is_reused_once(db: ProbeDatabase) -> None:
    steps, _ = run(ServiceDetection(db, 80, "tcp"), silent)
    assert [s.reuse for s in steps] == [False, True, False, False, False]


@pytest.mark.parametrize(
    "null_reply",
    [
        ProbeReply(b"garbage", elapsed=6.0),  # it spoke: a fresh connection for the next probe
        ProbeReply(b"", closed=True, elapsed=4.0),  # it closed (late: not tcpwrapped)
    ],
)
def test_no_reuse_after_null_data_or_close(db: ProbeDatabase, null_reply: ProbeReply) -> None:
    steps, _ = run(ServiceDetection(db, 80, "tcp"), scripted({(False, "NULL"): null_reply}))
    assert steps[1].probe.name == "GetRequest"
    assert not steps[1].reuse


# -- soft matches ---------------------------------------------------------------------------


def test_softmatch_restricts_later_probes(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 12345, "tcp", intensity=9)
    steps, found = run(det, scripted({(False, "NULL"): b"220 welcome\r\n"}))
    # only probes with a line for "ftp": FtpHelp (GetRequest, Rare, TLS have none)
    assert names(steps) == ["NULL", "FtpHelp"]
    assert found.service is not None
    assert found.service.name == "ftp"
    assert found.service.product is None
    assert found.service.method == "probed"
    assert found.service.fingerprint is not None
    assert found.service.fingerprint.startswith("SF-Port12345-TCP:V=")
    assert '%r(NULL,D,"220\\x20welcome\\r\\n")' in found.service.fingerprint


def test_softmatch_then_hard_match_for_it(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 12345, "tcp")
    answers = {(False, "NULL"): b"220 welcome\r\n", (False, "FtpHelp"): b"214 FancyFTP 9\r\n"}
    steps, found = run(det, scripted(answers))
    assert names(steps) == ["NULL", "FtpHelp"]
    assert found.service is not None
    assert (found.service.name, found.service.product, found.service.version) == (
        "ftp",
        "FancyFTP",
        "9",
    )
    assert found.service.fingerprint is None


def test_softmatch_is_not_replaced_by_another_softmatch(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 80, "tcp")
    answers = {(False, "NULL"): b"WEIRD", (False, "GetRequest"): b"HTTP/1.1 404 Nope\r\n"}
    steps, found = run(det, scripted(answers))
    assert found.service is not None
    assert found.service.name == "weird"
    # no probe may identify "weird": nothing after the NULL probe
    assert names(steps) == ["NULL"]


def test_hard_match_of_another_service_beats_a_softmatch(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 21, "tcp")
    answers = {
        (False, "NULL"): b"220 hi\r\n",
        (False, "FtpHelp"): b"SSH-2.0-Foo_7\r\n",  # via the NULL probe's lines (fallback)
    }
    _, found = run(det, scripted(answers))
    assert found.service is not None
    assert (found.service.name, found.service.version) == ("ssh", "7")


def test_check_is_true_only_for_hard_matches(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 80, "tcp")
    step = det.next_step()
    assert step is not None
    assert not det.check(step, b"220 partial")
    assert not det.check(step, b"")
    assert det.check(step, b"SSH-2.0-Foo_1\r\n")


# -- fallbacks ------------------------------------------------------------------------------


def test_fallback_chain_lines_apply(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 12345, "tcp", intensity=2)
    steps, found = run(det, scripted({(False, "Fallbacker"): b"214 FancyFTP 3\r\n"}))
    assert names(steps)[-1] == "Fallbacker"
    assert found.service is not None
    assert (found.service.name, found.service.version) == ("ftp", "3")
    assert found.match is not None
    assert found.match.probe == "Fallbacker"
    assert found.match.matched_by == "FtpHelp"


def test_null_probe_lines_apply_to_every_tcp_probe(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 80, "tcp")
    _, found = run(det, scripted({(False, "GetRequest"): b"SSH-2.0-Foo_5\r\n"}))
    assert found.service is not None
    assert found.service.name == "ssh"
    assert found.match is not None
    assert found.match.matched_by == "NULL"


# -- tcpwrapped -----------------------------------------------------------------------------


def test_close_without_data_on_null_probe_is_tcpwrapped(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 80, "tcp")
    steps, found = run(det, scripted({(False, "NULL"): ProbeReply(b"", closed=True, elapsed=0.01)}))
    assert names(steps) == ["NULL"]
    assert found.service is not None
    assert (found.service.name, found.service.method, found.service.conf) == (
        "tcpwrapped",
        "probed",
        8,
    )


def test_late_close_is_not_tcpwrapped(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 80, "tcp")
    late = ProbeReply(b"", closed=True, elapsed=3.5)  # tcpwrappedms is 3000
    steps, found = run(det, scripted({(False, "NULL"): late}))
    assert len(steps) > 1
    assert found.service is None


def test_close_on_a_later_probe_is_not_tcpwrapped(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 80, "tcp")
    closes = ProbeReply(b"", closed=True, elapsed=0.001)
    _, found = run(det, scripted({(False, "GetRequest"): closes}))
    assert found.service is None


# -- TLS ------------------------------------------------------------------------------------


def test_ssl_match_redoes_detection_inside_tls(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 443, "tcp")
    answers = {
        (False, "TLS"): b"\x16\x03\x03\x00\x40\x02",
        (True, "GetRequest"): b"HTTP/1.0 200 OK\r\nServer: Bar/3\r\n\r\n",
    }
    steps, found = run(det, scripted(answers))
    assert names(steps) == ["NULL", "TLS", "tls:NULL", "tls:GetRequest"]
    assert [s.reuse for s in steps] == [False, True, False, True]
    assert found.service is not None
    assert (found.service.name, found.service.product, found.service.tunnel) == (
        "http",
        "Bar httpd",
        "ssl",
    )


def test_inside_tls_sslports_decide_the_first_probes(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 443, "tcp", intensity=0)
    steps, found = run(det, scripted({(False, "TLS"): b"\x16\x03\x01"}), default_name="https")
    assert names(steps) == ["NULL", "TLS", "tls:NULL", "tls:GetRequest"]
    assert found.service is not None
    assert (found.service.name, found.service.tunnel, found.service.method) == (
        "https",
        "ssl",
        "table",
    )
    assert found.service.conf == 3


def test_failed_tls_handshake_reports_ssl(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 443, "tcp")
    answers: dict[tuple[bool, str], bytes | ProbeReply] = {
        (False, "TLS"): b"\x16\x03\x01",
        (True, "NULL"): ProbeReply(error="failed"),
    }
    steps, found = run(det, scripted(answers))
    assert names(steps) == ["NULL", "TLS", "tls:NULL"]
    assert found.service is not None
    assert (found.service.name, found.service.tunnel) == ("ssl", None)


def test_ssl_prefix_in_a_match_names_the_tunnel(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 993, "tcp")
    _, found = run(det, scripted({(False, "NULL"): b"* OK SecureIMAP ready\r\n"}))
    assert found.service is not None
    assert (found.service.name, found.service.tunnel, found.service.product) == (
        "imap",
        "ssl",
        "SecureIMAP",
    )


def test_tls_is_entered_only_once(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 443, "tcp")
    hello = b"\x16\x03\x03"
    _, found = run(det, scripted({(False, "TLS"): hello, (True, "TLS"): hello}))
    assert found.service is not None
    assert (found.service.name, found.service.tunnel) == ("ssl", "ssl")


# -- connection errors ----------------------------------------------------------------------


def test_refused_first_connect_means_closed(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 80, "tcp")
    steps, found = run(det, lambda step: ProbeReply(error="refused"))
    assert len(steps) == 1
    assert found.closed
    assert found.service is None


def test_later_refusals_only_skip_the_probe(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 80, "tcp")
    answers: dict[tuple[bool, str], bytes | ProbeReply] = {
        (False, "GetRequest"): ProbeReply(error="refused"),
        (False, "FtpHelp"): b"214 FancyFTP 1\r\n",
    }
    _, found = run(det, scripted(answers))
    assert not found.closed
    assert found.service is not None
    assert found.service.name == "ftp"


def test_excluded_port_sends_nothing(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 9100, "tcp")
    assert det.next_step() is None
    found = det.result(now=0.0)
    assert found.excluded
    assert found.service is None
    steps, _ = run(ServiceDetection(db, 9100, "udp"), silent)  # Exclude T: is TCP only
    assert steps


@pytest.mark.parametrize(
    "kwargs", [{"intensity": 10}, {"intensity": -1}, {"timeout_scale": 0}, {"port": 70000}]
)
def test_bad_options_raise(db: ProbeDatabase, kwargs: dict[str, int]) -> None:
    args: dict[str, object] = {"db": db, "port": 80, "protocol": "tcp", **kwargs}
    with pytest.raises(OptionsError):
        ServiceDetection(**args)  # type: ignore[arg-type]


# -- UDP ------------------------------------------------------------------------------------


def test_udp_answer_matches_and_opens_the_port(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 53, "udp")
    steps, found = run(det, scripted({(False, "DNS"): b"DNSANSWER dnsmasq"}))
    assert names(steps) == ["DNS"]
    assert found.answered
    assert found.service is not None
    assert (found.service.name, found.service.product) == ("domain", "dnsmasq")


def test_udp_has_no_null_probe_and_honours_rarity(db: ProbeDatabase) -> None:
    steps, found = run(ServiceDetection(db, 5000, "udp", intensity=4), silent)
    assert names(steps) == ["DNS"]
    steps, found = run(ServiceDetection(db, 5000, "udp", intensity=5), silent)
    assert names(steps) == ["DNS", "Other"]
    assert not found.answered
    assert found.service is None


def test_udp_unmatched_answer_is_open_with_a_fingerprint(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 5000, "udp")
    _, found = run(det, scripted({(False, "Other"): b"\x01\x02what"}), default_name="upnp")
    assert found.answered
    assert found.service is not None
    assert (found.service.name, found.service.method) == ("upnp", "table")
    assert found.service.fingerprint is not None
    assert found.service.fingerprint.startswith("SF-Port5000-UDP:")
    assert '%r(Other,6,"\\x01\\x02what")' in found.service.fingerprint


def test_udp_port_unreachable_is_closed(db: ProbeDatabase) -> None:
    _, found = run(ServiceDetection(db, 53, "udp"), lambda s: ProbeReply(error="refused"))
    assert found.closed
    assert not found.answered


# -- properties -----------------------------------------------------------------------------

_replies = st.builds(
    ProbeReply,
    data=st.one_of(
        st.binary(max_size=64),
        st.sampled_from(
            [b"SSH-2.0-Foo_1\r\n", b"220 x", b"\x16\x03\x01", b"HTTP/1.0 200 OK\r\n", b"WEIRD"]
        ),
    ),
    closed=st.booleans(),
    elapsed=st.floats(0, 10),
    error=st.sampled_from([None, None, None, "refused", "failed"]),
)


@settings(max_examples=150, deadline=None)
@given(
    port=st.sampled_from([21, 53, 80, 443, 9999, 12345]),
    protocol=st.sampled_from(["tcp", "udp"]),
    intensity=st.integers(0, 9),
    replies=st.lists(_replies, min_size=1, max_size=30),
)
def test_any_replies_terminate_with_printable_fields(
    db: ProbeDatabase, port: int, protocol: str, intensity: int, replies: list[ProbeReply]
) -> None:
    det = ServiceDetection(db, port, protocol, intensity=intensity)  # type: ignore[arg-type]
    feed = iter(replies * 10)
    steps, found = run(det, lambda step: next(feed, ProbeReply()))
    # every probe at most once per tunnel phase: NULL + 5 TCP probes, twice with TLS
    assert len(steps) <= 12
    if found.service is not None:
        printable = set(string.printable) - set("\t\n\r\x0b\x0c")
        for value in (found.service.product, found.service.version, found.service.extrainfo):
            assert value is None or set(value) <= printable
        if found.service.fingerprint is not None:
            assert len(found.service.fingerprint) <= 1001


# -- purity ---------------------------------------------------------------------------------

FORBIDDEN = {"socket", "asyncio", "aiodns", "select", "selectors", "subprocess", "ssl", "time"}


@pytest.mark.parametrize("module", ["_engine.py", "_fingerprint.py"])
def test_module_is_pure(module: str) -> None:
    path = Path(pyscan.service.__file__).parent / module
    used: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            used.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            used.add(node.module.split(".")[0])
    assert used
    assert not used & FORBIDDEN, f"{module} imports {sorted(used & FORBIDDEN)}"


# -- looking ahead (the IO layer starts upcoming probes early) --------------------------------


def test_upcoming_lists_what_next_step_would_give_without_changing_state(
    db: ProbeDatabase,
) -> None:
    det = ServiceDetection(db, 12345, "tcp", intensity=9)
    first = det.next_step()
    assert first is not None
    assert first.probe.is_null
    ahead = det.upcoming(10)
    assert all(not s.probe.is_null and not s.reuse for s in ahead)
    det.on_reply(first, ProbeReply(b"", closed=True, elapsed=9.0))  # silent NULL, closed
    given = []
    while (step := det.next_step()) is not None:
        given.append(step.probe.name)
        det.on_reply(step, ProbeReply(b"", closed=True, elapsed=0.1))
    assert [s.probe.name for s in ahead] == given


def test_upcoming_respects_a_softmatch(db: ProbeDatabase) -> None:
    det = ServiceDetection(db, 12345, "tcp", intensity=9)
    first = det.next_step()
    assert first is not None
    det.on_reply(first, ProbeReply(b"220 welcome\r\n", closed=False, elapsed=0.1))
    assert [s.probe.name for s in det.upcoming(10)] == ["FtpHelp"]  # only probes for "ftp"
