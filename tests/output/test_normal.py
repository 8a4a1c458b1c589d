"""Normal output: exact texts laid out after real nmap 7.93 output (see docs/output.md)."""

from __future__ import annotations

import io

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan._models import (
    Hostname,
    HostResult,
    HostStatus,
    PortState,
    ReasonKind,
    ScanReport,
    Service,
)
from pyscan.output import NormalWriter, OutputOptions, report_to_normal

from .reports import (
    UTC,
    ip,
    ipv6_report,
    list_report,
    mixed_report,
    opts,
    ping_report,
    port,
    ports,
    stats,
    syn_report,
    version_report,
)

START = "Starting pyscan 0.1.0 ( https://github.com/pyscan ) at 2026-11-21 20:30 UTC\n"


def test_syn_scan_with_reason() -> None:
    assert report_to_normal(syn_report(), opts(reason=True)) == (
        START + "pyscan scan report for web.lab (198.18.0.10)\n"
        "Host is up, received syn-ack ttl 64 (0.0012s latency).\n"
        "Not shown: 995 closed tcp ports (reset)\n"
        "PORT    STATE    SERVICE      REASON\n"
        "22/tcp  open     ssh          syn-ack ttl 64\n"
        "80/tcp  open     http         syn-ack ttl 64\n"
        "135/tcp filtered msrpc        no-response\n"
        "139/tcp filtered netbios-ssn  no-response\n"
        "445/tcp filtered microsoft-ds no-response\n"
        "\n"
        "pyscan done: 1 IP address (1 host up) scanned in 2.35 seconds\n"
    )


def test_log_file_form() -> None:
    text = report_to_normal(syn_report(), opts(), log_file=True)
    lines = text.splitlines()
    assert lines[0] == (
        "# pyscan 0.1.0 scan initiated Sat Nov 21 20:30:00 2026 as: "
        "pyscan -sS --reason -p1-1000 198.18.0.10"
    )
    assert lines[3] == "Not shown: 995 closed tcp ports (reset)"
    assert lines[4] == "PORT    STATE    SERVICE"
    assert lines[5] == "22/tcp  open     ssh"
    assert lines[-1] == (
        "# pyscan done at Sat Nov 21 20:30:02 2026 -- 1 IP address (1 host up) "
        "scanned in 2.35 seconds"
    )
    assert "Starting" not in text


def test_two_states_two_protocols_folded_and_down_host_hidden() -> None:
    assert report_to_normal(mixed_report(), opts()) == (
        START + "pyscan scan report for 198.18.0.20\n"
        "Host is up (0.000095s latency).\n"
        "Not shown: 99 closed tcp ports (reset), 59 closed udp ports (port-unreach), "
        "40 open|filtered udp ports (no-response)\n"
        "PORT    STATE    SERVICE\n"
        "1/tcp   open     unknown\n"
        "53/udp  open     domain\n"
        "123/udp filtered ntp\n"
        "\n"
        "pyscan done: 2 IP addresses (1 host up) scanned in 12.50 seconds\n"
    )


def test_verbose_shows_down_host_and_folds_less() -> None:
    text = report_to_normal(mixed_report(), opts(verbose=1, reason=True))
    # 40 open|filtered ports stay listed with -v (the limit becomes 50); 158 closed do not.
    assert "Not shown: 99 closed tcp ports (reset), 59 closed udp ports (port-unreach)\n" in text
    assert "160/udp open|filtered unknown no-response\n" in text
    assert "123/udp filtered      ntp     admin-prohibited ttl 63\n" in text
    assert "pyscan scan report for 198.18.0.21 [host down, received user-set]\n" in text
    assert text.index("[host down") > text.index("199/udp")


def test_single_state_pluralisation_follows_the_state_total() -> None:
    # nmap pluralises "ports" by the state's total, not by each reason group.
    a = ip("198.18.0.40")
    result = ports(a, range(1, 48), PortState.FILTERED, ReasonKind.NO_RESPONSE)
    result.append(port(a, 48, PortState.FILTERED, ReasonKind.HOST_PROHIBITED, 63))
    result.append(port(a, 49, PortState.OPEN, ReasonKind.SYN_ACK, 63))
    host = HostResult(a, HostStatus.UP, ports=tuple(result))
    report = ScanReport(hosts=(host,), scan_types=("syn",), stats=stats(1, 1, 1.0))
    text = report_to_normal(report, opts())
    assert (
        "Not shown: 47 filtered tcp ports (no-response), 1 filtered tcp ports (host-prohibited)\n"
        "PORT   STATE SERVICE\n"
        "49/tcp open  unknown\n"
    ) in text
    # Host is up without latency when the model has none.
    assert "Host is up.\n" in text


def test_all_ports_ignored() -> None:
    a = ip("198.18.0.11")
    host = HostResult(
        a,
        HostStatus.UP,
        latency=0.5,
        ports=tuple(ports(a, range(1, 1001), PortState.FILTERED, ReasonKind.NO_RESPONSE)),
    )
    report = ScanReport(hosts=(host,), scan_types=("syn",), stats=stats(1, 1, 201.0))
    assert report_to_normal(report, opts()) == (
        START + "pyscan scan report for 198.18.0.11\n"
        "Host is up (0.50s latency).\n"
        "All 1000 scanned ports on 198.18.0.11 are in ignored states.\n"
        "Not shown: 1000 filtered tcp ports (no-response)\n"
        "\n"
        "pyscan done: 1 IP address (1 host up) scanned in 201.00 seconds\n"
    )


def test_threshold_is_more_than_25() -> None:
    a = ip("198.18.0.12")
    for n, folded in ((25, False), (26, True)):
        result = ports(a, range(1, n + 1), PortState.CLOSED, ReasonKind.RESET)
        host = HostResult(a, HostStatus.UP, ports=tuple(result))
        text = report_to_normal(ScanReport(hosts=(host,), scan_types=("syn",)), opts())
        assert ("Not shown" in text) is folded
        assert (f"{n}/tcp" in text) is not folded


def test_version_scan_columns_and_service_info() -> None:
    assert report_to_normal(version_report(), opts()) == (
        START + "pyscan scan report for 198.18.0.30\n"
        "Host is up (0.00031s latency).\n"
        "\n"
        "PORT     STATE  SERVICE  VERSION\n"
        "22/tcp   open   ssh      OpenSSH 8.9p1 Ubuntu 3ubuntu0.1 (Ubuntu Linux; protocol 2.0)\n"
        "25/tcp   closed smtp\n"
        "80/tcp   open   http     nginx 1.18.0 (Ubuntu)\n"
        "443/tcp  open   https?\n"
        "8443/tcp open   ssl/http Jetty 9.4\n"
        "Service Info: Host: app.lab; OS: Linux; CPE: cpe:/o:linux:linux_kernel\n"
        "\n"
        "Service detection performed. Please report any incorrect results at "
        "https://github.com/pyscan .\n"
        "pyscan done: 1 IP address (1 host up) scanned in 9.87 seconds\n"
    )


def test_reason_and_version_columns_order() -> None:
    text = report_to_normal(version_report(), opts(reason=True))
    assert "PORT     STATE  SERVICE  REASON         VERSION\n" in text
    assert "25/tcp   closed smtp     reset ttl 64\n" in text


def test_probed_name_wins_over_table_and_unknown_fallback() -> None:
    a = ip("198.18.0.13")
    probed = Service("http", method="probed", conf=10)
    table_only = Service("from-model")
    host = HostResult(
        a,
        HostStatus.UP,
        ports=(
            port(a, 22, PortState.OPEN, ReasonKind.SYN_ACK, service=probed),
            port(a, 4000, PortState.OPEN, ReasonKind.SYN_ACK, service=table_only),
            port(a, 4001, PortState.OPEN, ReasonKind.SYN_ACK),
        ),
    )
    report = ScanReport(hosts=(host,), scan_types=("syn",))
    text = report_to_normal(report, opts(service_scan=False))
    assert "22/tcp   open  http\n" in text  # probed beats the table's "ssh"
    assert "4000/tcp open  from-model\n" in text  # no table entry: the model's name
    assert "4001/tcp open  unknown\n" in text
    no_table = report_to_normal(report, OutputOptions(tz=UTC))
    assert "22/tcp   open  http\n" in no_table


def test_open_only() -> None:
    a, b = ip("198.18.0.14"), ip("198.18.0.15")
    with_open = HostResult(
        a,
        HostStatus.UP,
        ports=(
            port(a, 22, PortState.OPEN, ReasonKind.SYN_ACK),
            port(a, 23, PortState.CLOSED, ReasonKind.RESET),
            port(a, 25, PortState.FILTERED, ReasonKind.NO_RESPONSE),
        ),
    )
    closed_only = HostResult(
        b, HostStatus.UP, ports=(port(b, 22, PortState.CLOSED, ReasonKind.RESET),)
    )
    report = ScanReport(hosts=(with_open, closed_only), scan_types=("syn",), stats=stats(2, 2, 1))
    text = report_to_normal(report, opts(open_only=True))
    assert text == (
        START + "pyscan scan report for 198.18.0.14\n"
        "Host is up.\n"
        "Not shown: 1 closed tcp port (reset), 1 filtered tcp port (no-response)\n"
        "PORT   STATE SERVICE\n"
        "22/tcp open  ssh\n"
        "\n"
        "pyscan done: 2 IP addresses (2 hosts up) scanned in 1.00 seconds\n"
    )


def test_ping_scan() -> None:
    assert report_to_normal(ping_report(), opts()) == (
        START + "pyscan scan report for 198.18.0.1\n"
        "Host is up (0.00042s latency).\n"
        "pyscan scan report for printer.lab (198.18.0.3)\n"
        "Host is up (0.0015s latency).\n"
        "pyscan done: 3 IP addresses (2 hosts up) scanned in 1.20 seconds\n"
    )
    verbose = report_to_normal(ping_report(), opts(verbose=1, reason=True))
    assert "pyscan scan report for 198.18.0.2 [host down, received no-response]\n" in verbose
    assert "Host is up, received echo-reply ttl 64 (0.00042s latency).\n" in verbose
    assert "Host is up, received arp-response (0.0015s latency).\n" in verbose


def test_list_scan() -> None:
    assert report_to_normal(list_report(), opts()) == (
        START + "pyscan scan report for 198.18.0.1\n"
        "pyscan scan report for gw.lab (198.18.0.2)\n"
        "pyscan done: 2 IP addresses (0 hosts up) scanned in 0.00 seconds\n"
    )


def test_ipv6_names_and_rdns_line() -> None:
    assert report_to_normal(ipv6_report(), opts()) == (
        START + "pyscan scan report for example.test (2001:db8::1)\n"
        "Host is up (0.012s latency).\n"
        "rDNS record for 2001:db8::1: host.example.test\n"
        "\n"
        "PORT   STATE    SERVICE\n"
        "22/tcp open     ssh\n"
        "80/tcp filtered http\n"
        "\n"
        "pyscan done: 1 IP address (1 host up) scanned in 1.50 seconds\n"
    )


def test_single_down_host_note() -> None:
    host = HostResult(ip("198.18.0.16"), HostStatus.DOWN)
    report = ScanReport(hosts=(host,), scan_types=("syn",), stats=stats(1, 0, 3.04))
    assert report_to_normal(report, opts()) == (
        START + "Note: Host seems down. If it is really up, but blocking our ping probes, "
        "try -Pn\n"
        "pyscan done: 1 IP address (0 hosts up) scanned in 3.04 seconds\n"
    )


def test_counts_come_from_hosts_when_stats_are_empty() -> None:
    report = attrs.evolve(ping_report(), stats=attrs.evolve(ping_report().stats, hosts_total=0))
    assert "3 IP addresses (2 hosts up)" in report_to_normal(report, opts())


def test_streaming_and_abort() -> None:
    buf = io.StringIO()
    writer = NormalWriter(buf, opts(), log_file=True)
    report = syn_report()
    writer.start(
        ScanReport(
            scan_types=report.scan_types,
            ports=report.ports,
            args=report.args,
            stats=report.stats,
            version="0.1.0",
        )
    )
    first = buf.getvalue()
    assert first.startswith("# pyscan 0.1.0 scan initiated")
    writer.host(report.hosts[0])
    assert buf.getvalue().startswith(first)
    assert "PORT" in buf.getvalue()
    writer.finish(report.stats, error="interrupted by user")
    assert buf.getvalue().endswith(
        "# pyscan aborted at Sat Nov 21 20:30:02 2026 -- interrupted by user -- "
        "partial results: 1 IP address (1 host up) scanned in 2.35 seconds\n"
    )


def test_verbose_scanned_at_and_packet_counts() -> None:
    report = attrs.evolve(
        syn_report(),
        stats=attrs.evolve(syn_report().stats, packets_sent=2000, packets_received=1003),
    )
    text = report_to_normal(report, opts(verbose=2))
    assert "Scanned at 2026-11-21 20:30:00 UTC for 2s\n" in text
    assert text.endswith("           Raw packets sent: 2000 | Rcvd: 1003\n")
    assert "Raw packets" not in report_to_normal(report, opts())


hostile = st.text(st.characters(codec="utf-8") | st.sampled_from("\x00\n\r\t\x1b\x7f\u2028\udc80"))


@given(product=hostile, name=hostile, hostname=hostile)
def test_hostile_strings_cannot_break_lines(product: str, name: str, hostname: str) -> None:
    a = ip("198.18.0.17")
    svc = Service(name or "x", product=product, method="probed", conf=10, hostname=hostname)
    host = HostResult(
        a,
        HostStatus.UP,
        hostnames=(Hostname(hostname, "PTR"),),
        ports=(port(a, 80, PortState.OPEN, ReasonKind.SYN_ACK, service=svc),),
    )
    report = ScanReport(hosts=(host,), scan_types=("syn",), stats=stats(1, 1, 1))
    lines = report_to_normal(report, opts()).split("\n")
    assert lines[1].startswith("pyscan scan report for ")
    assert lines[2] == "Host is up."
    assert lines[4].startswith("PORT ")
    assert lines[5].startswith("80/tcp open ")
    assert all(ch.isprintable() for line in lines for ch in line)


@pytest.mark.parametrize(
    ("latency", "text"),
    [(0.00069, "0.00069"), (0.000095, "0.000095"), (0.0012, "0.0012"), (0.5, "0.50"), (12.3, "12")],
)
def test_latency_two_significant_digits(latency: float, text: str) -> None:
    host = HostResult(ip("198.18.0.18"), HostStatus.UP, latency=latency)
    report = ScanReport(hosts=(host,), scan_types=("ping",))
    assert f"Host is up ({text}s latency).\n" in report_to_normal(report, opts())


def test_hidden_down_host_and_time_zone() -> None:
    report = ScanReport(
        hosts=(HostResult(ip("198.18.0.19"), HostStatus.DOWN),),
        scan_types=("ping",),
        stats=stats(1, 0, 1),
    )
    text = report_to_normal(report, OutputOptions(tz=UTC))
    assert "198.18.0.19" not in text
    assert text.startswith(START)
