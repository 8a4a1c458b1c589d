"""Scanner plug-ins: each builds its probes, recognises answers and decides results.

They are pure state machines over :class:`~pyscan._core.probescan.ProbeScanner` (raw
probes) or pure classification functions (the connect scan's errno mapping); the engine in
:mod:`pyscan._io` feeds them packets and time and sends what they hand out.
"""
