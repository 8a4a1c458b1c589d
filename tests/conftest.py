"""Shared fixtures: the namespace lab (skips cleanly where root or ip netns is missing)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from lab.fixtures import netlab, netlab_factory, nmap_path

__all__ = ["netlab", "netlab_factory", "nmap_path"]
