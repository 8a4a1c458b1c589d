"""pyscan._wire stays sans-IO, and its package re-exports everything it defines."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import pyscan._wire as wire

WIRE = Path(wire.__file__).parent
FORBIDDEN = {"socket", "asyncio", "aiodns", "select", "selectors", "subprocess", "time", "os"}
MODULES = sorted(p.name for p in WIRE.glob("*.py"))


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
    used = _imports(WIRE / module)
    assert used, "the AST walk found no imports at all"
    assert not used & FORBIDDEN, f"{module} imports {sorted(used & FORBIDDEN)}"


@pytest.mark.parametrize("module", [m[:-3] for m in MODULES if m != "__init__.py"])
def test_package_reexports_module(module: str) -> None:
    mod = importlib.import_module(f"pyscan._wire.{module}")
    for name in mod.__all__:
        assert getattr(wire, name) is getattr(mod, name), name
        assert name in wire.__all__, name
        obj = getattr(mod, name)
        if callable(obj) and not isinstance(obj, type(int | None)):
            assert getattr(obj, "__doc__", None), f"{module}.{name} lacks a docstring"
