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


def test_api_resume_example_runs_and_covers_every_port() -> None:
    # docs/api.md, "Resuming a port scan": a connect scan of 127.0.0.1 stopped and resumed
    text = (DOCS / "api.md").read_text()
    section = text[text.index("### Resuming a port scan") :]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)[:1]
    namespace: dict[str, object] = {}
    exec(compile(block, "docs/api.md", "exec"), namespace)
    found, rest, position = namespace["found"], namespace["rest"], namespace["position"]
    ports = {r.port for r in found} | {r.port for r in rest.all_ports()}  # type: ignore[attr-defined]
    assert len(ports) == 65535
    assert isinstance(position, int)
    assert 0 < position <= len(found)  # type: ignore[arg-type]
