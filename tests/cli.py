"""The one CLI harness: `imagescope ARGS` run in this process through the console entry point
(`imagescope.cli.main`), as a user runs it, its output and exit status captured.

Tests of what only a process shows (a closed or full stdout, signals, a locale, a terminal)
start one themselves; everything else runs here.
"""

from __future__ import annotations

import contextlib
import gc
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from click.testing import CliRunner

from imagescope.cli import main


@dataclass(frozen=True, slots=True)
class CliResult:
    """What a run printed and the status it exited with."""

    returncode: int
    stdout: str
    stderr: str
    stdout_bytes: bytes = b""  # (binary output: cat, export -o -)

    @property
    def exit_code(self) -> int:
        return self.returncode


def run_cli(*args: str | os.PathLike[str], cwd: Path | None = None,
            env: dict[str, str] | None = None, columns: int = 120) -> CliResult:
    """`imagescope ARGS` in `cwd` with `env` added to the environment and a terminal of
    `columns` columns; the collector is left as it was found (`main` turns it off)."""
    runner = CliRunner()
    collecting = gc.isenabled()
    with _working_directory(cwd), runner.isolation(env={"COLUMNS": str(columns),
                                                        **(env or {})}) as (out, err, _):
        try:
            main([os.fspath(a) for a in args])
            code = -1  # main() always exits
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else -2
        finally:
            if collecting:
                gc.enable()
        stdout, stderr = out.getvalue(), err.getvalue() if err is not None else b""
    return CliResult(code, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"),
                     stdout)


@contextlib.contextmanager
def _working_directory(cwd: Path | None) -> Iterator[None]:
    if cwd is None:
        yield
        return
    before = os.getcwd()
    os.chdir(cwd)
    try:
        yield
    finally:
        os.chdir(before)


def run_process(*args: str | os.PathLike[str], cwd: Path | None = None,
                env: dict[str, str] | None = None, timeout: float = 120) -> CliResult:
    """`python -m imagescope ARGS` in a child process: for what only a process shows (its
    stdout's encoding, an interpreter started fresh)."""
    done = subprocess.run([sys.executable, "-m", "imagescope", *map(os.fspath, args)],
                          capture_output=True, text=True, errors="surrogateescape", check=False,
                          cwd=cwd, timeout=timeout,
                          env={**os.environ, "COLUMNS": "120", **(env or {})},
                          stdin=subprocess.DEVNULL)
    return CliResult(done.returncode, done.stdout, done.stderr)
