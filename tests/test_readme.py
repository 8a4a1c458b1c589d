"""The README's first screen: exactly two set-up commands, the second being what CI runs."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _first_screen_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    first_screen = "\n".join(text.splitlines()[:30])
    block = re.search(r"```sh\n(.*?)```", first_screen, flags=re.S)
    assert block, "the README's first screen has a shell block"
    return [line for line in block.group(1).splitlines() if line and not line.startswith("#")]


def test_two_setup_commands() -> None:
    commands = _first_screen_commands()
    assert len(commands) == 2
    scan, tests = commands
    assert "pip install ." in scan
    assert scan.endswith("pyscan 127.0.0.1")
    assert tests == "bash scripts/setup-and-test.sh"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    assert "bash scripts/setup-and-test.sh --lint" in ci
    script = (ROOT / "scripts" / "setup-and-test.sh").read_text()
    assert "exec .venv/bin/pytest" in script
