"""pyscan: an asyncio network scanner with a typed API and an nmap-compatible command line."""

from pyscan._version import __version__ as __version__

__all__ = ["__version__"]
