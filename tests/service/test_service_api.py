"""pyscan.service: a documented public surface, and pure (no networking, no clock)."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import pyscan.service

SRC = Path(pyscan.service.__file__).parent
FORBIDDEN = {"socket", "asyncio", "aiodns", "select", "selectors", "subprocess", "time", "ssl"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("module", ["_probes.py", "_pcre.py", "_match.py", "__init__.py"])
def test_module_is_pure(module: str) -> None:
    used = _imports(SRC / module)
    assert used, "the AST walk found no imports at all"
    assert not used & FORBIDDEN, f"{module} imports {sorted(used & FORBIDDEN)}"


def test_all_is_complete_and_documented() -> None:
    public = {
        name
        for name, value in vars(pyscan.service).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("pyscan.")
    }
    assert set(pyscan.service.__all__) == public | {"Protocol"}
    assert pyscan.service.__doc__
    for name in pyscan.service.__all__:
        value = getattr(pyscan.service, name)
        if name == "Protocol":  # a typing alias: Literal["tcp", "udp"]
            continue
        assert inspect.getdoc(value), f"{name} has no docstring"
