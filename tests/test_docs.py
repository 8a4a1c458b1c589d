"""The Python examples in docs/quickstart.md run as written (they scan 127.0.0.1 only)."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parent.parent / "docs"


def test_quickstart_examples_run() -> None:
    text = (DOCS / "quickstart.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    assert len(blocks) >= 5
    namespace: dict[str, object] = {}
    for block in blocks:
        exec(compile(block, "docs/quickstart.md", "exec"), namespace)


def test_docs_exist_for_each_surface() -> None:
    for name in ("quickstart.md", "api.md", "cli.md", "output.md", "json-schema.md"):
        assert (DOCS / name).is_file(), name
