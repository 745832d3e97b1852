"""Running `imagescope inspect` on hostile input in-process, under the failure contract: a
documented exit code, one line on stderr, no traceback, no output file on failure, no hang."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from imagescope.cli import main
from imagescope.errors import ExitCode

HANG_SECONDS = 20  # a run still going after this long is a hang (SIGALRM interrupts it)

# What hostile input may end in: success or a typed error. Never 70 (internal error).
ALLOWED = frozenset({
    ExitCode.OK, ExitCode.USAGE, ExitCode.NOT_AN_IMAGE, ExitCode.CORRUPT_ARCHIVE,
    ExitCode.MISSING_BLOB, ExitCode.UNSUPPORTED_MEDIA_TYPE, ExitCode.PLATFORM_NOT_FOUND,
    ExitCode.IMAGE_NOT_FOUND, ExitCode.LAYER_TOO_LARGE, ExitCode.DIGEST_MISMATCH,
})


class Hang(BaseException):
    """An example ran past HANG_SECONDS (a BaseException: nothing under test may swallow it)."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    def expire(signum: int, frame: FrameType | None) -> None:
        raise Hang(f"still running after {seconds} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass(frozen=True)
class Outcome:
    code: ExitCode
    stderr: str
    report: dict[str, Any] | None  # the JSON report when the run succeeded with --format json


def inspect(ref: Path | str, *flags: str, output_format: str = "json",
            cache: Path | None = None) -> Outcome:
    """`imagescope inspect REF` in-process: the exit code, stderr, the report.

    IMAGESCOPE_DEBUG=1 makes an internal error raise, so Hypothesis shows its traceback.
    The failure contract is checked here: a documented code, one line on stderr.
    """
    with tempfile.TemporaryDirectory(prefix="imagescope-fuzz-") as scratch:
        output = Path(scratch) / "report"
        args = ["inspect", str(ref), "--format", output_format, "-o", str(output), *flags]
        args += ["--no-cache"] if cache is None else []
        stderr = io.StringIO()
        environment = {"IMAGESCOPE_DEBUG": "1"}
        if cache is not None:
            environment["XDG_CACHE_HOME"] = str(cache)
        with _environ(environment), contextlib.redirect_stderr(stderr), \
                time_limit(HANG_SECONDS):
            try:
                main(args)
                raise AssertionError("main() returned instead of exiting")
            except SystemExit as exc:
                code = ExitCode(exc.code)
        text = stderr.getvalue()
        assert code in ALLOWED, f"exit {int(code)} ({code.name}): {text!r}"
        assert "Traceback" not in text
        if code == ExitCode.OK:
            assert text == "", text
            report = output.read_text(encoding="utf-8")
            return Outcome(code, text, json.loads(report) if output_format == "json" else None)
        lines = text.splitlines()
        assert len(lines) == 1 and lines[0].startswith("imagescope: error: "), text
        assert not output.exists(), "a failed run wrote its output file"
        return Outcome(code, text, None)


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def comparable(report: dict[str, Any] | None) -> dict[str, Any]:
    """A report without the reference it was asked for (the path of the file read)."""
    assert report is not None
    return {**report, "image": {**report["image"], "reference": None}}


def write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path
