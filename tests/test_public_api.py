"""The public surface: __all__ is complete and documented; the pure core never does IO."""

from __future__ import annotations

import ast
import inspect
import types
from pathlib import Path

import pytest

import pyscan
import pyscan.output
import pyscan.service

SRC = Path(pyscan.__file__).parent
PUBLIC_PACKAGES = [pyscan, pyscan.output, pyscan.service]


@pytest.mark.parametrize("package", PUBLIC_PACKAGES, ids=lambda p: p.__name__)
def test_all_is_complete_and_documented(package: types.ModuleType) -> None:
    exported = set(package.__all__)
    public = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_")
        and not isinstance(value, types.ModuleType)
        and getattr(value, "__module__", "").startswith("pyscan")
    }
    assert public <= exported, f"public but not in __all__: {sorted(public - exported)}"
    for name in exported:
        assert hasattr(package, name), f"__all__ names a missing {name}"
        value = getattr(package, name)
        if isinstance(value, type | types.FunctionType | types.ModuleType):
            assert inspect.getdoc(value), f"{package.__name__}.{name} has no docstring"


def test_errors_module_is_a_tree_under_pyscan_error() -> None:
    for name in pyscan.errors.__all__:
        cls = getattr(pyscan.errors, name)
        assert issubclass(cls, pyscan.errors.PyscanError)
        assert inspect.getdoc(cls)
    assert issubclass(pyscan.errors.TargetSpecError, ValueError)
    assert issubclass(pyscan.errors.PrivilegeError, PermissionError)


# -- sans-IO: the pure core imports no IO, directly or through other pyscan modules ----------

PURE = [
    "_wire",
    "_specs/ports.py",
    "_specs/permutation.py",
    "_specs/services.py",
    "_core",
    "_scanners",
    "_models.py",
    "_options.py",
    "service/_probes.py",
    "service/_pcre.py",
    "service/_match.py",
    "service/_engine.py",
    "service/_fingerprint.py",
    "output",
]
FORBIDDEN = {"socket", "asyncio", "aiodns", "pycares", "select", "selectors", "subprocess"}


def _module_files(entry: str) -> list[Path]:
    path = SRC / entry
    return sorted(path.rglob("*.py")) if path.is_dir() else [path]


def _imports(path: Path) -> set[str]:
    """Absolute module names imported by ``path`` (relative imports resolved)."""
    rel = path.relative_to(SRC.parent).with_suffix("")
    package = list(rel.parts[:-1])
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, node.module] if node.module else base)
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def _file_of(module: str) -> Path | None:
    if not module.startswith("pyscan"):
        return None
    parts = module.split(".")[1:]
    for candidate in (SRC.joinpath(*parts).with_suffix(".py"), SRC.joinpath(*parts, "__init__.py")):
        if candidate.is_file():
            return candidate
    return None


@pytest.mark.parametrize("entry", PURE)
def test_pure_modules_do_no_io(entry: str) -> None:
    seen: set[Path] = set()
    todo = _module_files(entry)
    assert todo
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        imported = _imports(path)
        bad = {m for m in imported if m.split(".")[0] in FORBIDDEN}
        assert not bad, f"{path.relative_to(SRC)} imports {sorted(bad)}"
        todo.extend(p for m in imported if (p := _file_of(m)) is not None)
