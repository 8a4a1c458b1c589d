"""pytest fixtures for the network-namespace lab (``pyscan.testing.netlab``).

Register them from ``tests/conftest.py`` (``from tests.lab.fixtures import *`` or by name).
Every fixture skips, with the reason, where the lab cannot run (not root, no ``ip netns``).

- ``netlab``: the default lab (:meth:`LabConfig.default`), shared by the whole session.
- ``netlab_factory``: ``make(config) -> Lab`` for custom labs, torn down after the test.
- ``nmap_path``: path of an installed nmap (skips when absent).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator

import pytest

from pyscan.testing.netlab import Lab, LabConfig, unavailable_reason

__all__ = ["netlab", "netlab_factory", "nmap_path", "require_lab"]


def require_lab() -> None:
    """Skip the calling test when the namespace lab cannot be built here."""
    reason = unavailable_reason()
    if reason is not None:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def netlab() -> Iterator[Lab]:
    """The default lab, up for the whole session."""
    require_lab()
    with Lab(LabConfig.default()) as lab:
        yield lab


@pytest.fixture
def netlab_factory() -> Iterator[Callable[[LabConfig], Lab]]:
    """Build extra labs from configs; each is torn down when the test ends."""
    labs: list[Lab] = []

    def make(config: LabConfig) -> Lab:
        require_lab()
        lab = Lab(config)
        labs.append(lab)
        return lab.start()

    yield make
    for lab in reversed(labs):
        lab.stop()


@pytest.fixture(scope="session")
def nmap_path() -> str:
    """The installed nmap binary."""
    path = shutil.which("nmap")
    if path is None:
        pytest.skip("nmap is not installed (Debian package nmap)")
    return path
