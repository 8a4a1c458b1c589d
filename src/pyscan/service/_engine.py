"""Which probe next: the version-detection algorithm for one port, as a state machine.

How this works
--------------
One :class:`ServiceDetection` per ``(address, protocol, port)``. The IO layer loops::

    step = detection.next_step()        # None: finished
    ...connect (or reuse), TLS if step.tls, send step.probe.payload, then read; after
       each chunk ask detection.check(step, data) -- True means stop reading...
    detection.on_reply(step, ProbeReply(data, closed=..., elapsed=...))

and finally calls :meth:`ServiceDetection.result`. Nothing here touches a socket or a
clock; times are seconds measured by the caller.

The order is nmap's:

1. TCP only: the NULL probe (send nothing, listen for a banner up to its ``totalwaitms``).
2. The probes whose ``ports`` list the port (``sslports`` once inside TLS), in file order,
   whatever their rarity.
3. The other probes of the protocol with ``rarity <= intensity``, in file order.

Each response is matched (on every chunk, and once more when the probe ends) against the
probe's fallback chain (:func:`~pyscan.service.match_with_fallbacks`). A hard match ends
detection. A soft match names the service; from then on only probes that may identify
that service are sent, and only a hard match (or nothing) changes the answer. A match
naming the service ``ssl`` restarts the whole sequence inside TLS (once); ``ssl/NAME``
is NAME with the TLS tunnel noted. After a silent NULL probe the next probe goes out on
the same connection; every other probe gets a fresh one. A NULL probe whose connection
the peer closes without sending anything within ``tcpwrappedms`` is ``tcpwrapped``.

Responses longer than :data:`MATCH_LIMIT` stop the reading (nmap's limit), and no read
keeps more than :data:`READ_LIMIT` bytes per probe.
"""

from __future__ import annotations

from typing import Literal

import attrs

from pyscan._models import Service
from pyscan.errors import OptionsError
from pyscan.service._fingerprint import build_fingerprint
from pyscan.service._match import MatchResult, match_with_fallbacks
from pyscan.service._probes import ProbeDatabase, Protocol, ServiceProbe

__all__ = [
    "MATCH_LIMIT",
    "READ_LIMIT",
    "Detection",
    "ProbeReply",
    "ProbeStep",
    "ServiceDetection",
]

MATCH_LIMIT = 4096  # stop reading a response once it is this long
READ_LIMIT = 65536  # never keep more than this per probe
_CONF_PROBED = 10
_CONF_TCPWRAPPED = 8
_CONF_TABLE = 3


@attrs.frozen
class ProbeStep:
    """What to do next: send ``probe`` and read its answer for up to ``wait`` seconds.

    ``reuse``: send on the connection of the previous step (it was a silent NULL probe)
    instead of a new one. ``tls``: the connection runs TLS. ``tcpwrapped``: for the NULL
    probe, a close by the peer without data before this many seconds means tcpwrapped.
    """

    probe: ServiceProbe
    protocol: Protocol
    tls: bool
    reuse: bool
    wait: float
    tcpwrapped: float | None = None
    number: int = 0


@attrs.frozen
class ProbeReply:
    """What the IO layer saw for one step.

    ``data``: everything read (at most :data:`READ_LIMIT` bytes). ``closed``: the peer
    closed or reset the connection. ``elapsed``: seconds from the connection being ready
    (or the send) to the close or the end of the wait. ``error``: ``"refused"`` for a
    refused connect or an ICMP port unreachable, ``"failed"`` for a connect timeout, an
    unreachable network or a failed TLS handshake.
    """

    data: bytes = b""
    closed: bool = False
    elapsed: float = 0.0
    error: Literal["refused", "failed"] | None = None


@attrs.frozen
class Detection:
    """The outcome for one port.

    ``service`` is ``None`` when nothing answered (the caller keeps the services-table
    name) or the port turned out closed or excluded. ``answered``: some probe got data
    (for UDP this makes an ``open|filtered`` port ``open``). ``closed``: the port refused
    the connection or sent an ICMP port unreachable. ``match`` is the deciding match line.
    """

    service: Service | None
    answered: bool = False
    closed: bool = False
    excluded: bool = False
    probes_sent: int = 0
    match: MatchResult | None = None


def _service_from_match(
    result: MatchResult, *, tls: bool, fingerprint: str | None = None
) -> Service:
    name = result.service
    tunnel: Literal["ssl"] | None = "ssl" if tls else None
    if name.startswith("ssl/") and len(name) > 4:
        name, tunnel = name[4:], "ssl"
    return Service(
        name=name,
        product=result.product,
        version=result.version,
        extrainfo=result.extrainfo,
        hostname=result.hostname,
        ostype=result.ostype,
        devicetype=result.devicetype,
        tunnel=tunnel,
        method="probed",
        conf=_CONF_PROBED,
        cpe=result.cpe,
        fingerprint=fingerprint,
    )


@attrs.define
class ServiceDetection:
    """Version detection for one port; see the module docstring for the protocol.

    ``timeout_scale`` multiplies every wait from the probe file (tests use small values).
    """

    db: ProbeDatabase
    port: int
    protocol: Protocol
    intensity: int = 7
    timeout_scale: float = 1.0
    tls: bool = attrs.field(default=False, init=False)
    soft: MatchResult | None = attrs.field(default=None, init=False)
    hard: MatchResult | None = attrs.field(default=None, init=False)
    ssl_match: MatchResult | None = attrs.field(default=None, init=False)
    tcpwrapped: bool = attrs.field(default=False, init=False)
    closed: bool = attrs.field(default=False, init=False)
    excluded: bool = attrs.field(default=False, init=False)
    answered: bool = attrs.field(default=False, init=False)
    probes_sent: int = attrs.field(default=0, init=False)
    responses: list[tuple[str, bytes]] = attrs.field(factory=list, init=False)
    _plan: list[ServiceProbe] = attrs.field(factory=list, init=False)
    _next: int = attrs.field(default=0, init=False)
    _done: bool = attrs.field(default=False, init=False)
    _reusable: bool = attrs.field(default=False, init=False)
    _connected: bool = attrs.field(default=False, init=False)
    _tls_steps: int = attrs.field(default=0, init=False)
    _tls_ok: bool = attrs.field(default=False, init=False)
    _cache: tuple[int, int, MatchResult | None] | None = attrs.field(default=None, init=False)

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.intensity <= 9:
            raise OptionsError(f"version intensity must be 0-9, not {self.intensity!r}")
        if not 0 < self.timeout_scale <= 100:
            raise OptionsError(f"timeout_scale must be in (0, 100], not {self.timeout_scale!r}")
        if not 0 <= self.port <= 65535:
            raise OptionsError(f"port must be 0-65535, not {self.port!r}")
        if self.db.is_excluded(self.port, self.protocol):
            self.excluded = True
            self._done = True
            return
        self._plan = self._make_plan()

    # -- the plan ----------------------------------------------------------------------

    def _make_plan(self) -> list[ServiceProbe]:
        probes = [p for p in self.db.probes_for(self.protocol) if not p.is_null]
        listed = [p for p in probes if self.port in (p.sslports if self.tls else p.ports)]
        rest = [p for p in probes if p.rarity <= self.intensity and all(p is not q for q in listed)]
        null = self.db.null_probe if self.protocol == "tcp" else None
        return ([null] if null is not None else []) + listed + rest

    @property
    def done(self) -> bool:
        """True once no further probe will be sent."""
        return self._done

    def next_step(self) -> ProbeStep | None:
        """The next probe to send, or ``None`` when detection is over."""
        while not self._done and self._next < len(self._plan):
            probe = self._plan[self._next]
            self._next += 1
            soft = self.soft
            if soft is not None and not probe.is_null and not probe.may_identify(soft.service):
                continue
            scale = self.timeout_scale
            return ProbeStep(
                probe=probe,
                protocol=self.protocol,
                tls=self.tls,
                reuse=self._reusable,
                wait=probe.totalwaitms / 1000 * scale,
                tcpwrapped=probe.tcpwrappedms / 1000 * scale if probe.is_null else None,
                number=self.probes_sent,
            )
        self._done = True
        return None

    def upcoming(self, limit: int) -> list[ProbeStep]:
        """The next ``limit`` probes :meth:`next_step` would give if every reply until then
        decided nothing (state unchanged), each on a fresh connection. The IO layer may start
        them early; their replies must still go through :meth:`on_reply` in order, when
        :meth:`next_step` gives the same probe."""
        found: list[ProbeStep] = []
        index = self._next
        soft = self.soft
        while not self._done and index < len(self._plan) and len(found) < limit:
            probe = self._plan[index]
            index += 1
            if probe.is_null or (soft is not None and not probe.may_identify(soft.service)):
                continue
            found.append(
                ProbeStep(
                    probe=probe,
                    protocol=self.protocol,
                    tls=self.tls,
                    reuse=False,
                    wait=probe.totalwaitms / 1000 * self.timeout_scale,
                    tcpwrapped=None,
                    number=-1,
                )
            )
        return found

    # -- matching ----------------------------------------------------------------------

    def _match(self, step: ProbeStep, data: bytes) -> MatchResult | None:
        key = (step.number, len(data))
        if self._cache is not None and self._cache[:2] == key:
            return self._cache[2]
        data = data[:READ_LIMIT]
        soft = self.soft
        if soft is None:
            result = match_with_fallbacks(self.db, step.probe, data)
        else:
            result = match_with_fallbacks(self.db, step.probe, data, restrict_service=soft.service)
            if result is None or result.soft:
                other = match_with_fallbacks(self.db, step.probe, data)
                if other is not None and not other.soft:
                    result = other
        self._cache = (key[0], key[1], result)
        return result

    def check(self, step: ProbeStep, data: bytes) -> bool:
        """Whether ``data`` read so far for ``step`` already decides (a hard match).

        The IO layer calls it after each chunk and stops reading when it is true.
        """
        result = self._match(step, data)
        return result is not None and not result.soft

    def on_reply(self, step: ProbeStep, reply: ProbeReply) -> None:
        """Take in what happened to ``step``; decides the next step or the end."""
        if self._done:
            return
        self.probes_sent += 1
        first_tls_step = step.tls and self._tls_steps == 0
        if step.tls:
            self._tls_steps += 1
        self._reusable = False
        if reply.error is not None:
            self._on_error(step, reply, first_tls_step=first_tls_step)
            return
        self._connected = True
        self._tls_ok = self._tls_ok or step.tls
        data = reply.data[:READ_LIMIT]
        if not data:
            wrapped = step.tcpwrapped
            if (
                step.probe.is_null
                and reply.closed
                and wrapped is not None
                and reply.elapsed < wrapped
            ):
                self.tcpwrapped = True
                self._done = True
                return
            self._reusable = step.probe.is_null and not reply.closed
            return
        self.answered = True
        result = self._match(step, data)
        if (
            result is not None
            and result.service == "ssl"
            and not self.tls
            and self.protocol == "tcp"
        ):
            self._start_tls(result)
            return
        if result is not None and not result.soft:
            self.hard = result
            self._done = True
            return
        if result is not None and self.soft is None:
            self.soft = result
        self.responses.append((step.probe.name, data))

    def _on_error(self, step: ProbeStep, reply: ProbeReply, *, first_tls_step: bool) -> None:
        if reply.error == "refused" and (step.protocol == "udp" or not self._connected):
            # nothing listens (any more): a closed port, unless something answered before
            if not self.answered:
                self.closed = True
            self._done = True
        elif first_tls_step:
            # the TLS handshake fails: report the ssl match found in clear
            self._done = True

    def _start_tls(self, result: MatchResult) -> None:
        self.ssl_match = result
        self.tls = True
        self.soft = None
        self.responses = []
        self._cache = None
        self._plan = self._make_plan()
        self._next = 0

    # -- the answer --------------------------------------------------------------------

    def result(
        self,
        *,
        now: float,
        default_name: str | None = None,
        version: str | None = None,
        platform: str | None = None,
    ) -> Detection:
        """The service found so far (call when :meth:`next_step` returned ``None``).

        ``now`` (Unix time) dates the fingerprint of an unmatched service; ``default_name``
        names an unmatched service that answered (nmap uses its services table; default
        ``"unknown"``); ``version``/``platform`` override the fingerprint's ``V``/``P``.
        """
        if self.excluded:
            return Detection(None, excluded=True)
        if self.closed:
            return Detection(None, closed=True, probes_sent=self.probes_sent)
        tunnel: Literal["ssl"] | None = "ssl" if self.tls else None
        service: Service | None = None
        match: MatchResult | None = None
        if self.hard is not None:
            match = self.hard
            service = _service_from_match(match, tls=self.tls)
        elif self.tcpwrapped:
            service = Service(
                name="tcpwrapped", tunnel=tunnel, method="probed", conf=_CONF_TCPWRAPPED
            )
        elif self.tls and not self._tls_ok and self.ssl_match is not None:
            # TLS never came up: what was seen in clear is the answer
            match = self.ssl_match
            service = _service_from_match(match, tls=False)
        else:
            fingerprint = self._fingerprint(now, version, platform)
            if self.soft is not None:
                match = self.soft
                service = _service_from_match(match, tls=self.tls, fingerprint=fingerprint)
            elif self.tls or fingerprint is not None:
                match = self.ssl_match
                service = Service(
                    name=default_name or "unknown",
                    tunnel=tunnel,
                    method="table",
                    conf=_CONF_TABLE,
                    fingerprint=fingerprint,
                )
        return Detection(service, answered=self.answered, probes_sent=self.probes_sent, match=match)

    def _fingerprint(self, now: float, version: str | None, platform: str | None) -> str | None:
        if not self.responses:
            return None
        extra: dict[str, str] = {}
        if version is not None:
            extra["version"] = version
        if platform is not None:
            extra["platform"] = platform
        return build_fingerprint(
            self.port,
            self.protocol,
            self.responses,
            now=now,
            intensity=self.intensity,
            tls=self.tls,
            **extra,
        )
