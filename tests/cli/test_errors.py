"""Every bad invocation gives one exact line on stderr, nothing on stdout, and exit 2."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pyscan._handle import ScanHandle
from pyscan.cli import main
from pyscan.errors import ScanError

from .cases import BAD_INVOCATIONS, UNPRIVILEGED

DOCS = Path(__file__).parents[2] / "docs" / "cli.md"


def _ids(cases: list[tuple[list[str], str]]) -> list[str]:
    return [" ".join(argv) for argv, _ in cases]


@pytest.mark.parametrize(("argv", "message"), BAD_INVOCATIONS, ids=_ids(BAD_INVOCATIONS))
def test_bad_invocation_in_process(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert err == message + "\n"
    assert out == ""


@pytest.mark.parametrize(("argv", "message"), UNPRIVILEGED, ids=_ids(UNPRIVILEGED))
def test_raw_scan_without_privilege(
    argv: list[str],
    message: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("pyscan._io.netutil.has_raw_privilege", lambda: False)
    assert main(argv) == 2
    out, err = capsys.readouterr()
    assert (out, err) == ("", message + "\n")


def test_same_invocation_with_privilege_passes_the_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # The privilege check is what fails above: with privilege the same -sS line gets past
    # it and stops at the next problem we planted (an unwritable output file).
    monkeypatch.setattr("pyscan._io.netutil.has_raw_privilege", lambda: True)
    assert main(["-sS", "-oX", "/nonexistent/dir/x", "127.0.0.1"]) == 2
    assert "cannot write -oX output file" in capsys.readouterr().err


# A sample through the real entry point: `python -m pyscan` in a fresh process.
SUBPROCESS_SAMPLE = [BAD_INVOCATIONS[i] for i in (0, 2, 4, 12, 16, 24, 26, 27, 29, 31)]


@pytest.mark.parametrize(("argv", "message"), SUBPROCESS_SAMPLE, ids=_ids(SUBPROCESS_SAMPLE))
def test_bad_invocation_subprocess(argv: list[str], message: str) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "pyscan", *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    assert proc.stderr == message + "\n"
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""


def test_docs_table_lists_every_bad_invocation() -> None:
    text = DOCS.read_text()
    for argv, message in BAD_INVOCATIONS + UNPRIVILEGED:
        row = f"| `pyscan {' '.join(argv)}` | `{message}` |"
        assert row in text, row


def test_unknown_runtime_failure_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*_a: object, **_k: object) -> object:
        raise RuntimeError("engine exploded\nsecond line")

    monkeypatch.setattr("pyscan._cli_run.scan", boom)
    assert main(["-sT", "-Pn", "-n", "-p", "1", "127.0.0.1"]) == 1
    _out, err = capsys.readouterr()
    assert err == "pyscan: internal error: RuntimeError: engine exploded second line\n"


def test_scan_error_is_one_line_exit_1_and_closes_outputs(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    async def fail(_emit: object) -> object:
        raise ScanError("no route to 127.0.0.1: Network is unreachable")

    monkeypatch.setattr("pyscan._cli_run.scan", lambda *a, **k: ScanHandle(fail))
    xml = tmp_path / "x.xml"
    assert main(["-sT", "-Pn", "-n", "-p", "1", "-oX", str(xml), "127.0.0.1"]) == 1
    out, err = capsys.readouterr()
    assert err == "pyscan: no route to 127.0.0.1: Network is unreachable\n"
    assert "pyscan aborted: no route to 127.0.0.1" in out
    assert 'exit="error"' in xml.read_text()
    assert xml.read_text().rstrip().endswith("</nmaprun>")
