"""Import cost: ``import pyscan`` and port scans load no machinery they do not use.

Behavioural checks on ``sys.modules`` in a fresh interpreter, not timings: version detection
(``pyscan.service``, ``pyscan._io.version``), the DNS client (aiodns, pycares) and, for a
plain import, asyncio with its ssl load only when needed.
"""

from __future__ import annotations

import ast
import subprocess
import sys

import pytest

import pyscan

HEAVY = ("pyscan.service", "pyscan._io.version", "aiodns", "pycares", "ssl")
# asyncio itself imports ssl, so a scan always has it; the rest stays out of a scan.
SCAN_HEAVY = tuple(m for m in HEAVY if m != "ssl")


def _loaded(code: str, prefixes: tuple[str, ...]) -> list[str]:
    """The modules matching ``prefixes`` loaded after running ``code`` in a new interpreter."""
    script = (
        f"{code}\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith({prefixes!r})))"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    ).stdout
    found: list[str] = ast.literal_eval(out.strip().splitlines()[-1])
    return found


def test_plain_import_loads_no_heavy_module() -> None:
    assert _loaded("import pyscan", HEAVY) == []


def test_plain_import_loads_no_asyncio_or_scanning_code() -> None:
    assert _loaded("import pyscan", ("asyncio", "attr", "pyscan._")) == ["pyscan._version"]


@pytest.mark.parametrize(
    "code",
    [
        "import pyscan; pyscan.syn_scan, pyscan.connect_scan, pyscan.scan",
        "from pyscan import *",
        "import pyscan.cli",
        # a connect scan of one loopback port, no names to resolve
        (
            "import asyncio, pyscan\n"
            "async def main():\n"
            "    await pyscan.connect_scan('127.0.0.1', '1')\n"
            "asyncio.run(main())"
        ),
    ],
    ids=["api-names", "star-import", "cli", "connect-scan"],
)
def test_scans_load_no_version_detection_or_dns_client(code: str) -> None:
    assert _loaded(code, SCAN_HEAVY) == []


# The raw-packet machinery: a connect scan (always -Pn) sends no raw packet.
RAW = (
    "pyscan._core.demux",
    "pyscan._core.probescan",
    "pyscan._io.engine",
    "pyscan._scanners.discovery",
    "pyscan._scanners.syn",
    "pyscan._scanners.udp",
    "pyscan._wire",
)


def test_connect_scan_loads_no_raw_packet_machinery() -> None:
    code = (
        "import asyncio, pyscan\n"
        "async def main():\n"
        "    await pyscan.connect_scan('127.0.0.1', '1')\n"
        "asyncio.run(main())"
    )
    assert _loaded(code, RAW) == []
    # and the check itself sees them where a scan does use them
    assert "pyscan._scanners.syn" in _loaded("import pyscan._scanners.syn", RAW)


def test_every_public_name_is_importable_and_listed() -> None:
    for name in pyscan.__all__:
        assert name in dir(pyscan)
        assert getattr(pyscan, name) is not None
    namespace: dict[str, object] = {}
    exec("from pyscan import *", namespace)
    assert set(pyscan.__all__) <= set(namespace)
    with pytest.raises(AttributeError, match="no attribute 'no_such_name'"):
        _ = pyscan.no_such_name  # type: ignore[attr-defined]
