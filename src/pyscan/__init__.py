"""pyscan: an asyncio network scanner with a typed API and an nmap-compatible command line.

    import pyscan
    report = await pyscan.syn_scan("198.18.0.0/24", "22,80,443")
    async for result in pyscan.connect_scan("127.0.0.1", "1-1024"):
        print(result.port, result.state)

Every scan function returns a :class:`ScanHandle`: ``await`` it for the :class:`ScanReport`,
or iterate it to get results as soon as they are decided. Errors derive from
:class:`pyscan.errors.PyscanError`.
"""

from pyscan import errors as errors
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
from pyscan._version import __version__ as __version__

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
