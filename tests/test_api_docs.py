"""docs/api.md covers the public surface, and its examples are valid Python.

The examples are compiled, never run: they scan lab addresses (198.18.0.0/15) that only
exist inside a running namespace lab. Top-level ``await`` is allowed, as in Jupyter.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import pyscan
import pyscan.errors

API_MD = Path(__file__).resolve().parent.parent / "docs" / "api.md"


def _text() -> str:
    return API_MD.read_text(encoding="utf-8")


def _python_blocks(text: str) -> list[tuple[int, str]]:
    """``(line number, source)`` of every fenced ```python block."""
    return [
        (text.count("\n", 0, m.start()) + 2, m.group(1))
        for m in re.finditer(r"^```python\n(.*?)^```", text, flags=re.S | re.M)
    ]


def _documented(name: str, text: str) -> bool:
    """Whether ``name`` appears as inline code: `name`, `pyscan.name`, `name(...)`."""
    pattern = rf"`(?:pyscan\.)?{re.escape(name)}(?:`|\()"
    return re.search(pattern, text) is not None


@pytest.mark.parametrize("name", sorted(pyscan.__all__))
def test_every_public_name_is_documented(name: str) -> None:
    assert _documented(name, _text()), f"docs/api.md does not mention `{name}`"


@pytest.mark.parametrize("name", sorted(pyscan.errors.__all__))
def test_every_error_class_is_documented(name: str) -> None:
    assert _documented(name, _text()), f"docs/api.md does not mention `{name}`"


def test_the_name_check_can_fail() -> None:
    text = "`scan_types` and pyscan.ping_scan and `syn_scan(` and `pyscan.udp_scan`"
    assert not _documented("scan", text)
    assert not _documented("ping_scan", text)
    assert _documented("syn_scan", text)
    assert _documented("udp_scan", text)


def test_python_examples_compile() -> None:
    blocks = _python_blocks(_text())
    assert len(blocks) >= 10, "docs/api.md lost its examples"
    for line, source in blocks:
        try:
            compile(source, f"docs/api.md:{line}", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
        except SyntaxError as exc:
            pytest.fail(f"example at docs/api.md line {line} does not compile: {exc}")


def test_timing_table_matches_the_templates() -> None:
    rows = {}
    for line in _text().splitlines():
        m = re.match(r"\| T(\d) \w+", line)
        if m:
            rows[int(m.group(1))] = [cell.strip() for cell in line.strip("|").split("|")]
    assert sorted(rows) == [0, 1, 2, 3, 4, 5]

    def num(value: float | None) -> str:
        return "none" if value is None else f"{value:g}"

    for level, cells in rows.items():
        t = pyscan.TimingTemplate.get(level)
        assert cells[1:6] == [
            num(t.initial_rtt_timeout),
            num(t.min_rtt_timeout),
            num(t.max_rtt_timeout),
            str(t.max_retries),
            num(t.scan_delay),
        ], f"T{level}"
        tcp, udp = (float(v) for v in cells[6].split("/"))
        assert (tcp, udp) == (t.max_tcp_scan_delay, t.max_udp_scan_delay), f"T{level}"
        assert cells[7] == num(t.host_timeout), f"T{level}"
        want = "dynamic" if t.max_parallelism is None else str(t.max_parallelism)
        assert cells[8].startswith(want), f"T{level}"
