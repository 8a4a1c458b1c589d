"""The rate/timing modules stay sans-IO: no sockets, event loop, subprocesses or clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pyscan

SRC = Path(pyscan.__file__).parent
MODULES = ["_core/rate.py", "_core/congestion.py", "_core/timing.py", "_options.py"]
FORBIDDEN = {"socket", "asyncio", "aiodns", "select", "selectors", "subprocess", "time", "os"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", MODULES)
def test_module_is_pure(module: str) -> None:
    used = _imports(SRC / module)
    assert used, "the AST walk found no imports at all"
    assert not used & FORBIDDEN, f"{module} imports {sorted(used & FORBIDDEN)}"
