"""The ``pyscan`` command: nmap's command line over pyscan's scan API.

``main(argv)`` parses the arguments (:mod:`pyscan._cli_args`), runs the scan and writes the
outputs (:mod:`pyscan._cli_run`), and turns every failure into one line on stderr and an
exit code: 0 success, 1 a runtime failure of the scan, 2 a usage, specification, option or
privilege error, 130 interrupted (SIGINT/SIGTERM). See ``docs/cli.md``.
"""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Sequence
from typing import TextIO

from pyscan._cli_args import HELP, USAGE, UsageError, build_config
from pyscan._cli_run import run_session
from pyscan._io import netutil
from pyscan._version import __version__
from pyscan.errors import DataFileError, PyscanError, ScanError

__all__ = ["EXIT_ERROR", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "main"]

EXIT_OK = 0
EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _fail(stderr: TextIO, message: str, code: int, *, usage: bool = False) -> int:
    prefix = "pyscan: error: " if usage else "pyscan: "
    stderr.write(prefix + _one_line(message) + "\n")
    stderr.flush()
    return code


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command with ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    As a console script the return value becomes the process's exit status.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    stdout, stderr = sys.stdout, sys.stderr
    debug = any(a.startswith("-d") and a[1:].strip("d0123456789") == "" for a in args)
    try:
        cfg = build_config(args, has_raw=netutil.has_raw_privilege())
        if cfg.mode == "help":
            stdout.write(HELP.format(version=__version__, usage=USAGE))
            return EXIT_OK
        if cfg.mode == "version":
            stdout.write(f"pyscan version {__version__} ( https://github.com/pyscan )\n")
            return EXIT_OK
        return run_session(cfg, stdout, stderr)
    except UsageError as exc:
        return _fail(stderr, str(exc), EXIT_USAGE, usage=True)
    except (ScanError, DataFileError) as exc:
        return _fail(stderr, str(exc), EXIT_ERROR)
    except PyscanError as exc:
        return _fail(stderr, str(exc), EXIT_USAGE)
    except KeyboardInterrupt:
        return _fail(stderr, "interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (pyscan ... | head): stop quietly, as other tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR
    except Exception as exc:  # noqa: BLE001 - the last line of defence: no tracebacks
        if debug:
            traceback.print_exc(file=stderr)
        return _fail(stderr, f"internal error: {type(exc).__name__}: {exc}", EXIT_ERROR)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
