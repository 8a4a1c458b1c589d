"""Import the shared strategies whichever way pytest put ``tests/`` on the path."""

from __future__ import annotations

try:
    from strategies import (
        wire_address_pair,
        wire_ipv4,
        wire_ipv6,
        wire_tcp_options,
        wire_u8,
        wire_u16,
        wire_u32,
    )
except ImportError:  # tests/ imported as a package
    from tests.strategies import (  # type: ignore[no-redef,import-not-found,unused-ignore]
        wire_address_pair,
        wire_ipv4,
        wire_ipv6,
        wire_tcp_options,
        wire_u8,
        wire_u16,
        wire_u32,
    )

__all__ = [
    "wire_address_pair",
    "wire_ipv4",
    "wire_ipv6",
    "wire_tcp_options",
    "wire_u8",
    "wire_u16",
    "wire_u32",
]
