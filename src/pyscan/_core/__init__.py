"""The sans-IO core of the scan engine.

Everything here decides something from bytes, counts and times, and never touches a socket,
the event loop or the clock: time is passed in as ``now`` (float seconds of a monotonic clock)
and components say when they next need attention. Modules:

``demux``
    :func:`~pyscan._core.demux.flow_key` and the
    :class:`~pyscan._core.demux.Demultiplexer`: which running scan owns a received packet.
``rate``
    :class:`~pyscan._core.rate.TokenBucket`, :class:`~pyscan._core.rate.RateLimiter`
    (``--min-rate`` / ``--max-rate`` combined with congestion control) and
    :class:`~pyscan._core.rate.ScanDelay` (``--scan-delay`` / ``--max-scan-delay``).
``congestion``
    :class:`~pyscan._core.congestion.CongestionWindow`: slow start, congestion avoidance and
    drop reaction for a host or a whole host group, as nmap's ultra_scan does.
``timing``
    :class:`~pyscan._core.timing.RttEstimator` (RFC 6298), the ``-T0`` .. ``-T5``
    :class:`~pyscan._core.timing.TimingTemplate` table, and the per-host / per-group timing
    state :class:`~pyscan._core.timing.HostTiming` / :class:`~pyscan._core.timing.GroupTiming`.
"""
