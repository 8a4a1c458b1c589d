"""Service and version detection data: nmap's service-probe file and its matcher.

This subpackage is pure (no networking). It reads nmap's ``nmap-service-probes`` file into a
:class:`ProbeDatabase` and matches responses the way nmap's version detection does::

    from pyscan.service import load_probes, match_with_fallbacks

    db = load_probes()                      # $NMAPDIR, /usr/share/nmap, /usr/local/share/nmap
    null = db.null_probe
    result = match_with_fallbacks(db, null, b"SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3\\r\\n")
    result.service, result.product, result.version   # ('ssh', 'OpenSSH', '9.2p1 Debian 2+deb12u3')

Patterns are nmap's PCRE regular expressions translated for Python's :mod:`re`, matched on
raw bytes; template fields come out as printable ASCII, exactly as nmap reports them.
"""

from pyscan.service._match import (
    MatchResult as MatchResult,
)
from pyscan.service._match import (
    apply_match as apply_match,
)
from pyscan.service._match import (
    match_response as match_response,
)
from pyscan.service._match import (
    match_with_fallbacks as match_with_fallbacks,
)
from pyscan.service._probes import (
    Match as Match,
)
from pyscan.service._probes import (
    ProbeDatabase as ProbeDatabase,
)
from pyscan.service._probes import (
    Protocol as Protocol,
)
from pyscan.service._probes import (
    ServiceProbe as ServiceProbe,
)
from pyscan.service._probes import (
    Substitution as Substitution,
)
from pyscan.service._probes import (
    TemplateError as TemplateError,
)
from pyscan.service._probes import (
    VersionTemplate as VersionTemplate,
)
from pyscan.service._probes import (
    find_nmap_file as find_nmap_file,
)
from pyscan.service._probes import (
    load_probes as load_probes,
)
from pyscan.service._probes import (
    parse_probes as parse_probes,
)

__all__ = [
    "Match",
    "MatchResult",
    "ProbeDatabase",
    "Protocol",
    "ServiceProbe",
    "Substitution",
    "TemplateError",
    "VersionTemplate",
    "apply_match",
    "find_nmap_file",
    "load_probes",
    "match_response",
    "match_with_fallbacks",
    "parse_probes",
]
