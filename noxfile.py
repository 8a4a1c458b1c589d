"""Developer sessions: ``nox -s tests lint typecheck bench docs``."""

from __future__ import annotations

from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Run the whole test suite (lab tests run when root and ip netns are available)."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole tree."""
    session.install("ruff")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    """mypy --strict over src/."""
    session.install("-e", ".", "mypy")
    session.run("mypy", "--strict", "src/pyscan")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    """Benchmarks against nmap and masscan in the namespace lab (root needed): installs nmap,
    masscan and py-spy, then runs every benchmarks/bench_*.py (posargs, e.g. --runs 3, go to
    each script)."""
    session.install("-e", ".")
    python = str(Path(session.virtualenv.location) / "bin" / "python")
    session.run("bash", "scripts/install-bench-tools.sh", python, external=True)
    session.run("python", "benchmarks/run_all.py", *session.posargs)


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    """Check the docs: every public name documented, examples in docs/ run."""
    session.install("-e", ".[test]")
    session.run(
        "pytest",
        "tests/test_docs.py",
        "tests/test_api_docs.py",
        "tests/test_public_api.py",
        *session.posargs,
    )
