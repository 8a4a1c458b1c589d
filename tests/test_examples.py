"""The examples in examples/ run for real (scanning 127.0.0.1 only)."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_scan_localhost_script_finds_a_listener() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, str(EXAMPLES / "scan_localhost.py"), f"{port},1-100"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr
    assert f"{port}/tcp open" in proc.stdout
    assert "101 ports scanned" in proc.stdout


def test_quickstart_notebook_runs_with_top_level_await() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    nb = nbformat.read(EXAMPLES / "quickstart.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=60, kernel_name="python3").execute()
    outputs = [c.outputs for c in nb.cells if c.cell_type == "code"]
    port = int(outputs[0][0]["data"]["text/plain"])
    states = outputs[1][0]["data"]["text/plain"]
    assert f"({port}, 'open', 'syn-ack')" in states
    assert f"({port + 1}, 'closed', 'conn-refused')" in states
    assert str(port) in outputs[2][0]["data"]["text/plain"]
    assert outputs[3][0]["data"]["text/plain"] == "True"
