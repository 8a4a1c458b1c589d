"""Parsing the nmap-style command line into a CliConfig (no packets sent)."""

from __future__ import annotations

import argparse

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyscan import DiscoveryProbe
from pyscan._cli_args import NOT_YET, UNSUPPORTED, UsageError, build_config, parse_time
from pyscan.cli import main


def cfg(*argv: str, raw: bool = True):  # type: ignore[no-untyped-def]
    return build_config(list(argv), has_raw=raw)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("500ms", 0.5), ("2s", 2.0), ("1m", 60.0), ("1h", 3600.0), ("7", 7.0), ("1.5", 1.5),
     ("0.25s", 0.25), (".5m", 30.0), ("0", 0.0)],
)  # fmt: skip
def test_time_syntax(text: str, seconds: float) -> None:
    assert parse_time(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5x", "ms", "1 s", "-1", "1e3", "1.2.3", "2sec", "inf"])
def test_bad_time_values(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid time"):
        parse_time(text)


@given(st.integers(0, 10**6), st.sampled_from(["", "ms", "s", "m", "h"]))
def test_time_scales(n: int, unit: str) -> None:
    scale = {"": 1, "ms": 0.001, "s": 1, "m": 60, "h": 3600}[unit]
    assert parse_time(f"{n}{unit}") == pytest.approx(n * scale)


def test_default_scan_type_follows_privilege() -> None:
    assert cfg("127.0.0.1").kinds == ("syn",)
    c = cfg("127.0.0.1", raw=False)
    assert c.kinds == ("connect",)
    assert c.notices == (
        (
            "no raw-socket privilege (CAP_NET_RAW): using a TCP connect scan (-sT) instead of a "
            "SYN scan (-sS)"
        ),
    )


def test_combined_scan_types_and_ports() -> None:
    c = cfg("-sS", "-sU", "-p", "T:22,U:53,80", "127.0.0.1")
    assert c.kinds == ("syn", "udp")
    assert c.ports is not None
    assert c.ports.ports("tcp") == (22,)  # after U: every number is UDP, as in nmap
    assert c.ports.ports("udp") == (53, 80)


@pytest.mark.parametrize(
    ("argv", "probes"),
    [
        (["-PS"], [DiscoveryProbe("syn", 80)]),
        (["-PS22,80"], [DiscoveryProbe("syn", 22), DiscoveryProbe("syn", 80)]),
        (["-PA"], [DiscoveryProbe("ack", 80)]),
        (["-PU"], [DiscoveryProbe("udp", 40125)]),
        (["-PU53"], [DiscoveryProbe("udp", 53)]),
        (["-PE", "-PP"], [DiscoveryProbe("echo"), DiscoveryProbe("timestamp")]),
        (["-PS443", "-PS443"], [DiscoveryProbe("syn", 443)]),
    ],
)
def test_discovery_probe_flags(argv: list[str], probes: list[DiscoveryProbe]) -> None:
    assert list(cfg(*argv, "-sn", "127.0.0.1").probes) == probes


@pytest.mark.parametrize(
    ("argv", "verbose", "debugging"),
    [(["-v"], 1, 0), (["-vv"], 2, 0), (["-v", "-v"], 2, 0), (["-v3"], 3, 0), (["-d"], 0, 1),
     (["-dd", "-v"], 1, 2), (["-d4"], 0, 4), ([], 0, 0)],
)  # fmt: skip
def test_verbosity_levels(argv: list[str], verbose: int, debugging: int) -> None:
    c = cfg(*argv, "127.0.0.1")
    assert (c.verbose, c.debugging) == (verbose, debugging)


@pytest.mark.parametrize("form", [["-T4"], ["-T", "4"], ["-Taggressive"], ["-T", "aggressive"]])
def test_timing_template_forms(form: list[str]) -> None:
    assert cfg(*form, "127.0.0.1").options.timing.level == 4


def test_options_reach_scan_options() -> None:
    c = cfg(
        "--min-rate", "10", "--max-rate", "200.5", "--max-retries", "3", "--host-timeout", "2m",
        "--scan-delay", "20ms", "--initial-rtt-timeout", "250ms", "-g", "53", "-S", "127.0.0.1",
        "--ttl", "9", "--seed", "0x10", "--shard", "2/4", "-r", "127.0.0.1",
    )  # fmt: skip
    o = c.options
    assert (o.min_rate, o.max_rate, o.max_retries, o.host_timeout) == (10, 200.5, 3, 120)
    assert (o.scan_delay, o.initial_rtt_timeout) == (0.02, 0.25)
    assert (o.source_port, o.source_address, o.ttl, o.seed) == (53, "127.0.0.1", 9, 16)
    assert o.shard == (1, 4)  # --shard is 1-based like the docs, ScanOptions 0-based
    assert o.randomize_ports is False


def test_positional_targets_may_follow_options() -> None:
    assert cfg("127.0.0.1", "-p", "80", "127.0.0.2", "-n").targets == ("127.0.0.1", "127.0.0.2")


def test_dns_modes() -> None:
    assert cfg("127.0.0.1").reverse_dns == "up"
    assert cfg("-n", "127.0.0.1").reverse_dns == "never"
    assert cfg("-R", "127.0.0.1").reverse_dns == "all"
    assert cfg("-sL", "127.0.0.1").reverse_dns == "all"
    assert cfg("--dns-servers", "198.18.0.53,198.18.0.54", "127.0.0.1").dns_servers == (
        "198.18.0.53",
        "198.18.0.54",
    )


def test_output_flags() -> None:
    c = cfg("-oA", "base", "-oJ", "-", "127.0.0.1")
    assert [(o.format, o.path, o.flag) for o in c.outputs] == [
        ("normal", "base.nmap", "-oA"),
        ("xml", "base.xml", "-oA"),
        ("grepable", "base.gnmap", "-oA"),
        ("jsonl", "-", "-oJ"),
    ]
    with pytest.raises(UsageError, match="two outputs would write the same file"):
        cfg("-oA", "base", "-oX", "base.xml", "127.0.0.1")
    with pytest.raises(UsageError, match="-oA cannot write to standard output"):
        cfg("-oA", "-", "127.0.0.1")


def test_every_refused_option_is_refused_by_name() -> None:
    for name in [*NOT_YET, *UNSUPPORTED]:
        with pytest.raises(UsageError) as info:
            cfg(name, "127.0.0.1")
        assert f"option {name} (" in str(info.value)
        assert ("not supported yet" in str(info.value)) == (name in NOT_YET)


def test_values_after_value_options_are_not_options() -> None:
    # "-O" here is a file name for -oN, not OS detection.
    c = cfg("-oN", "-O", "127.0.0.1")
    assert c.outputs[0].path == "-O"


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("pyscan ")
    assert "-sS/sT" in out
    assert "-oA <basename>" in out
    assert main([]) == 0
    assert capsys.readouterr().out == out
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("pyscan version ")
