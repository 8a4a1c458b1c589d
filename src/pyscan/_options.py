"""Scan options: what the engine needs to know besides targets and ports.

:class:`ScanOptions` is what a caller writes: a timing template (nmap's ``-T``, default
``T3``/normal) plus any fine-grained overrides. :meth:`ScanOptions.resolved` merges them
into :class:`ResolvedOptions`, where every number is concrete. As in nmap, an explicit
option always beats the template's value ("the fine-grained controls that you specify will
take precedence over the timing template default for that parameter", nmap(1), ``-T``), and
a template value that would contradict an explicit one is moved out of its way (e.g.
``-T5 --min-rtt-timeout 500ms`` raises the template's 300 ms maximum to 500 ms), which is
what nmap does. Two *explicit* values that contradict each other are an error.

Times are float seconds; rates are packets per second.
"""

from __future__ import annotations

import ipaddress
import math
from typing import Any, TypeGuard

import attrs

from pyscan._core.timing import TEMPLATES, TimingParams, TimingTemplate
from pyscan.errors import OptionsError

__all__ = ["DEFAULT_CONNECT_CONCURRENCY", "ResolvedOptions", "ScanOptions"]

#: Simultaneous connect() attempts when neither connect_concurrency nor max_parallelism is
#: given: well under the usual 1024 open-file limit.
DEFAULT_CONNECT_CONCURRENCY = 256


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _rate(inst: Any, attr: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not _is_number(value) or not math.isfinite(value) or value <= 0:
        raise OptionsError(
            f"{attr.name} must be a positive finite number of packets per second, got {value!r}"
        )


def _seconds(inst: Any, attr: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not _is_number(value) or not math.isfinite(value) or value < 0:
        raise OptionsError(f"{attr.name} must be a finite number of seconds >= 0, got {value!r}")


def _positive_seconds(inst: Any, attr: attrs.Attribute[Any], value: object) -> None:
    _seconds(inst, attr, value)
    if value == 0:
        raise OptionsError(f"{attr.name} must be greater than 0 seconds, got {value!r}")


def _int_range(low: int, high: int | None) -> Any:
    def check(inst: Any, attr: attrs.Attribute[Any], value: object) -> None:
        if value is None:
            return
        top = "" if high is None else f"..{high}"
        if not _is_int(value):
            raise OptionsError(f"{attr.name} must be an integer {low}{top}, got {value!r}")
        assert isinstance(value, int)
        if value < low or (high is not None and value > high):
            if high is None:
                raise OptionsError(f"{attr.name} must be >= {low}, got {value}")
            raise OptionsError(f"{attr.name} must be within {low}..{high}, got {value}")

    return check


def _optional_int(inst: Any, attr: attrs.Attribute[Any], value: object) -> None:
    if value is not None and not _is_int(value):
        raise OptionsError(f"{attr.name} must be an integer or None, got {value!r}")


def _bool(inst: Any, attr: attrs.Attribute[Any], value: object) -> None:
    if not isinstance(value, bool):
        raise OptionsError(f"{attr.name} must be True or False, got {value!r}")


def _address(inst: Any, attr: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise OptionsError(f"{attr.name} must be an IP address string, got {value!r}")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise OptionsError(f"{attr.name} {value!r} is not an IPv4 or IPv6 address") from None


def _interface(inst: Any, attr: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise OptionsError(f"{attr.name} must be an interface name string, got {value!r}")
    # Linux: IFNAMSIZ is 16 including the NUL; '/' and whitespace are never allowed.
    bad = next((c for c in value if c == "/" or c.isspace()), None)
    if not value or len(value) > 15 or bad is not None:
        why = (
            "is empty"
            if not value
            else f"is longer than 15 characters ({len(value)})"
            if len(value) > 15
            else f"contains {bad!r}"
        )
        raise OptionsError(f"{attr.name} {value!r} is not a valid interface name: it {why}")


def _shard(inst: Any, attr: attrs.Attribute[Any], value: object) -> None:
    if value is None:
        return
    if not (isinstance(value, tuple) and len(value) == 2 and all(_is_int(v) for v in value)):
        raise OptionsError(f"shard must be a tuple (index, count) of two integers, got {value!r}")
    index, count = value
    if count < 1:
        raise OptionsError(f"shard count must be >= 1, got {count} in shard {value!r}")
    if not 0 <= index < count:
        raise OptionsError(
            f"shard index {index} is out of range for {count} shards "
            f"(expected 0..{count - 1}) in shard {value!r}"
        )


def _to_template(value: TimingTemplate | int | str) -> TimingTemplate:
    return TimingTemplate.get(value)


@attrs.frozen(kw_only=True)
class ScanOptions:
    """Options for one scan; ``None`` means "the timing template's value" / "not set".

    Timing (seconds unless noted):

    * ``timing``: a :class:`~pyscan._core.timing.TimingTemplate`, its level ``0``..``5``,
      ``"T4"`` or its name (``"aggressive"``); default ``T3`` (normal).
    * ``min_rate``, ``max_rate``: packets per second (``--min-rate`` / ``--max-rate``).
    * ``max_retries``: retransmission ceiling per probe (``--max-retries``).
    * ``min_rtt_timeout``, ``max_rtt_timeout``, ``initial_rtt_timeout``: probe timeouts.
    * ``host_timeout``: give up on a host after this long; ``0`` means no limit (overrides
      ``T5``'s 15 minutes, as in nmap).
    * ``scan_delay``, ``max_scan_delay``: gap between probes to one host and its ceiling.
    * ``min_parallelism``, ``max_parallelism``: bounds of the congestion windows.
    * ``connect_concurrency``: simultaneous connect() attempts for connect-based scans.

    Packets: ``source_port`` (0-65535), ``source_address`` (an IP literal), ``interface``,
    ``ttl`` (0-255).

    Order: ``seed`` for the probe-order permutation (``None``: the engine seeds from
    ``os.urandom`` at scan start), ``shard`` as ``(index, count)`` with
    ``0 <= index < count`` (this run scans the ``index``-th of ``count`` disjoint slices),
    ``randomize_hosts`` (nmap's ``--randomize-hosts``, off by default) and
    ``randomize_ports`` (on by default; nmap's ``-r`` turns it off). ``resume_from``
    starts a port scan at that position of its probe order (the shard's, with ``shard``),
    as :attr:`ScanProgress.resume_from <pyscan.ScanProgress.resume_from>` of an earlier run
    gave it: with the same targets, ports, scan type, ``seed`` and ``shard``, and without
    host discovery (the hosts found up could differ). The order must be reproducible:
    ``seed`` given, or ``shard`` (shards share a fixed order), or ``randomize_ports=False``.

    Raises :class:`~pyscan.errors.OptionsError` on out-of-range or contradictory values.
    """

    timing: TimingTemplate = attrs.field(default=TEMPLATES[3], converter=_to_template)
    min_rate: float | None = attrs.field(default=None, validator=_rate)
    max_rate: float | None = attrs.field(default=None, validator=_rate)
    max_retries: int | None = attrs.field(default=None, validator=_int_range(0, None))
    min_rtt_timeout: float | None = attrs.field(default=None, validator=_seconds)
    max_rtt_timeout: float | None = attrs.field(default=None, validator=_positive_seconds)
    initial_rtt_timeout: float | None = attrs.field(default=None, validator=_positive_seconds)
    host_timeout: float | None = attrs.field(default=None, validator=_seconds)
    scan_delay: float | None = attrs.field(default=None, validator=_seconds)
    max_scan_delay: float | None = attrs.field(default=None, validator=_seconds)
    min_parallelism: int | None = attrs.field(default=None, validator=_int_range(1, None))
    max_parallelism: int | None = attrs.field(default=None, validator=_int_range(1, None))
    connect_concurrency: int | None = attrs.field(default=None, validator=_int_range(1, None))
    source_port: int | None = attrs.field(default=None, validator=_int_range(0, 65535))
    source_address: str | None = attrs.field(default=None, validator=_address)
    interface: str | None = attrs.field(default=None, validator=_interface)
    ttl: int | None = attrs.field(default=None, validator=_int_range(0, 255))
    seed: int | None = attrs.field(default=None, validator=_optional_int)
    shard: tuple[int, int] | None = attrs.field(default=None, validator=_shard)
    randomize_hosts: bool = attrs.field(default=False, validator=_bool)
    randomize_ports: bool = attrs.field(default=True, validator=_bool)
    resume_from: int | None = attrs.field(default=None, validator=_int_range(0, None))

    def __attrs_post_init__(self) -> None:
        def conflict(low_name: str, low: float, high_name: str, high: float, what: str) -> None:
            if low > high:
                raise OptionsError(
                    f"{low_name} ({low:g}{what}) must not exceed {high_name} ({high:g}{what})"
                )

        if self.min_rate is not None and self.max_rate is not None:
            conflict("min_rate", self.min_rate, "max_rate", self.max_rate, "/s")
        mn, mx, init = self.min_rtt_timeout, self.max_rtt_timeout, self.initial_rtt_timeout
        if mn is not None and mx is not None:
            conflict("min_rtt_timeout", mn, "max_rtt_timeout", mx, "s")
        if mn is not None and init is not None:
            conflict("min_rtt_timeout", mn, "initial_rtt_timeout", init, "s")
        if init is not None and mx is not None:
            conflict("initial_rtt_timeout", init, "max_rtt_timeout", mx, "s")
        if self.scan_delay is not None and self.max_scan_delay is not None:
            conflict("scan_delay", self.scan_delay, "max_scan_delay", self.max_scan_delay, "s")
        if self.min_parallelism is not None and self.max_parallelism is not None:
            conflict(
                "min_parallelism", self.min_parallelism, "max_parallelism", self.max_parallelism, ""
            )
        if (
            self.resume_from is not None
            and self.seed is None
            and self.shard is None
            and self.randomize_ports
        ):
            raise OptionsError(
                "resume_from needs the probe order of the run it resumes: give the same seed "
                "(or shard, or randomize_ports=False)"
            )

    def resolved(self) -> ResolvedOptions:
        """Concrete values: the template's, overridden by the explicit options."""
        t = self.timing

        # RTT timeouts: explicit values win; template values make room for them.
        mn = t.min_rtt_timeout if self.min_rtt_timeout is None else self.min_rtt_timeout
        mx = t.max_rtt_timeout if self.max_rtt_timeout is None else self.max_rtt_timeout
        init = t.initial_rtt_timeout
        if self.min_rtt_timeout is not None:
            mx = max(mx, mn)
        if self.max_rtt_timeout is not None:
            mn = min(mn, mx)
        if self.initial_rtt_timeout is not None:
            init = self.initial_rtt_timeout
            mn = min(mn, init)
            mx = max(mx, init)
        else:
            init = min(mx, max(mn, init))

        # Scan delay: an explicit delay raises the template's ceilings, an explicit ceiling
        # lowers the template's delay.
        delay = t.scan_delay if self.scan_delay is None else self.scan_delay
        if self.max_scan_delay is not None:
            tcp_max = udp_max = self.max_scan_delay
            delay = min(delay, self.max_scan_delay)
        else:
            tcp_max = max(t.max_tcp_scan_delay, delay)
            udp_max = max(t.max_udp_scan_delay, delay)

        # An explicit 0 means "no limit" and overrides T5's 15 minutes.
        host_timeout = t.host_timeout if self.host_timeout is None else self.host_timeout or None

        max_par = t.max_parallelism if self.max_parallelism is None else self.max_parallelism
        if max_par is not None and self.min_parallelism is not None:
            max_par = max(max_par, self.min_parallelism)

        if self.connect_concurrency is not None:
            concurrency = self.connect_concurrency
        elif max_par is not None:
            concurrency = max_par
        else:
            concurrency = DEFAULT_CONNECT_CONCURRENCY

        params = TimingParams(
            initial_rtt_timeout=float(init),
            min_rtt_timeout=float(mn),
            max_rtt_timeout=float(mx),
            max_retries=t.max_retries if self.max_retries is None else self.max_retries,
            scan_delay=float(delay),
            max_tcp_scan_delay=float(tcp_max),
            max_udp_scan_delay=float(udp_max),
            host_timeout=None if host_timeout is None else float(host_timeout),
            min_parallelism=self.min_parallelism,
            max_parallelism=max_par,
            level=t.level,
        )
        return ResolvedOptions(
            template=t,
            timing=params,
            min_rate=None if self.min_rate is None else float(self.min_rate),
            max_rate=None if self.max_rate is None else float(self.max_rate),
            connect_concurrency=concurrency,
            source_port=self.source_port,
            source_address=self.source_address,
            interface=self.interface,
            ttl=self.ttl,
            seed=self.seed,
            shard=self.shard,
            randomize_hosts=self.randomize_hosts,
            randomize_ports=self.randomize_ports,
            resume_from=self.resume_from,
        )


@attrs.frozen(kw_only=True)
class ResolvedOptions:
    """:class:`ScanOptions` with every timing value made concrete (see ``timing``).

    ``min_rate`` / ``max_rate`` stay ``None`` when unset (no minimum / no ceiling);
    ``seed`` stays ``None`` when the engine is to pick one.
    """

    template: TimingTemplate
    timing: TimingParams
    min_rate: float | None
    max_rate: float | None
    connect_concurrency: int
    source_port: int | None
    source_address: str | None
    interface: str | None
    ttl: int | None
    seed: int | None
    shard: tuple[int, int] | None
    randomize_hosts: bool
    randomize_ports: bool
    resume_from: int | None = None
