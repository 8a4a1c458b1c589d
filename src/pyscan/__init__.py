"""pyscan: an asyncio network scanner with a typed API and an nmap-compatible command line.

    import pyscan
    report = await pyscan.syn_scan("198.18.0.0/24", "22,80,443")
    async for result in pyscan.connect_scan("127.0.0.1", "1-1024"):
        print(result.port, result.state)

Every scan function returns a :class:`ScanHandle`: ``await`` it for the :class:`ScanReport`,
or iterate it to get results as soon as they are decided. Errors derive from
:class:`pyscan.errors.PyscanError`.
"""

# The public names load on first use (PEP 562 ``__getattr__``), so ``import pyscan`` stays
# cheap: asyncio, attrs and the scanning machinery are imported only when a name needing
# them is used. ``from pyscan import X`` and ``dir(pyscan)`` work as for plain imports.

import sys as _sys

from pyscan import errors as errors
from pyscan._version import __version__ as __version__

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (mypy knows the name)
if TYPE_CHECKING:
    from pyscan._api import VersionOptions as VersionOptions
    from pyscan._api import connect_scan as connect_scan
    from pyscan._api import ping_scan as ping_scan
    from pyscan._api import scan as scan
    from pyscan._api import syn_scan as syn_scan
    from pyscan._api import udp_scan as udp_scan
    from pyscan._api import version_scan as version_scan
    from pyscan._core.congestion import CongestionWindow as CongestionWindow
    from pyscan._core.rate import RateLimiter as RateLimiter
    from pyscan._core.rate import TokenBucket as TokenBucket
    from pyscan._core.timing import RttEstimator as RttEstimator
    from pyscan._core.timing import TimingTemplate as TimingTemplate
    from pyscan._handle import ScanHandle as ScanHandle
    from pyscan._handle import ScanProgress as ScanProgress
    from pyscan._models import Hostname as Hostname
    from pyscan._models import HostResult as HostResult
    from pyscan._models import HostStatus as HostStatus
    from pyscan._models import PortResult as PortResult
    from pyscan._models import PortState as PortState
    from pyscan._models import Reason as Reason
    from pyscan._models import ReasonKind as ReasonKind
    from pyscan._models import ScanReport as ScanReport
    from pyscan._models import ScanStats as ScanStats
    from pyscan._models import Service as Service
    from pyscan._options import ScanOptions as ScanOptions
    from pyscan._scanners.discovery import DiscoveryProbe as DiscoveryProbe
    from pyscan._specs.ports import PortList as PortList
    from pyscan._specs.ports import parse_ports as parse_ports
    from pyscan._specs.ports import top_ports as top_ports
    from pyscan._specs.services import ServicesTable as ServicesTable
    from pyscan._specs.services import default_services as default_services
    from pyscan._specs.targets import TargetSet as TargetSet
    from pyscan._specs.targets import TargetSpec as TargetSpec
    from pyscan._specs.targets import parse_targets as parse_targets

__all__ = [
    "CongestionWindow",
    "DiscoveryProbe",
    "HostResult",
    "HostStatus",
    "Hostname",
    "PortList",
    "PortResult",
    "PortState",
    "RateLimiter",
    "Reason",
    "ReasonKind",
    "RttEstimator",
    "ScanHandle",
    "ScanOptions",
    "ScanProgress",
    "ScanReport",
    "ScanStats",
    "Service",
    "ServicesTable",
    "TargetSet",
    "TargetSpec",
    "TimingTemplate",
    "TokenBucket",
    "VersionOptions",
    "__version__",
    "connect_scan",
    "default_services",
    "errors",
    "parse_ports",
    "parse_targets",
    "ping_scan",
    "scan",
    "syn_scan",
    "top_ports",
    "udp_scan",
    "version_scan",
]

# The module defining each lazily loaded public name.
_LAZY: dict[str, str] = {
    "VersionOptions": "pyscan._api",
    "connect_scan": "pyscan._api",
    "ping_scan": "pyscan._api",
    "scan": "pyscan._api",
    "syn_scan": "pyscan._api",
    "udp_scan": "pyscan._api",
    "version_scan": "pyscan._api",
    "CongestionWindow": "pyscan._core.congestion",
    "RateLimiter": "pyscan._core.rate",
    "TokenBucket": "pyscan._core.rate",
    "RttEstimator": "pyscan._core.timing",
    "TimingTemplate": "pyscan._core.timing",
    "ScanHandle": "pyscan._handle",
    "ScanProgress": "pyscan._handle",
    "Hostname": "pyscan._models",
    "HostResult": "pyscan._models",
    "HostStatus": "pyscan._models",
    "PortResult": "pyscan._models",
    "PortState": "pyscan._models",
    "Reason": "pyscan._models",
    "ReasonKind": "pyscan._models",
    "ScanReport": "pyscan._models",
    "ScanStats": "pyscan._models",
    "Service": "pyscan._models",
    "ScanOptions": "pyscan._options",
    "DiscoveryProbe": "pyscan._scanners.discovery",
    "PortList": "pyscan._specs.ports",
    "parse_ports": "pyscan._specs.ports",
    "top_ports": "pyscan._specs.ports",
    "ServicesTable": "pyscan._specs.services",
    "default_services": "pyscan._specs.services",
    "TargetSet": "pyscan._specs.targets",
    "TargetSpec": "pyscan._specs.targets",
    "parse_targets": "pyscan._specs.targets",
}


if not TYPE_CHECKING:  # type checkers see the imports above, and no catch-all attribute

    def __getattr__(name: str) -> object:
        """Import a public name's module on first use and cache the name here."""
        module = _LAZY.get(name)
        if module is None:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        __import__(module)
        value = getattr(_sys.modules[module], name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
