"""`imagescope browse` from the command line: a one-line hint without the tui extra, and a
one-line refusal without a terminal (no traceback either way)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from imagescope.errors import ExitCode

ROOT = Path(__file__).resolve().parents[2]


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, stdin=subprocess.DEVNULL, timeout=120, check=False)


def test_without_textual_browse_says_which_extra_to_install() -> None:
    done = run("import sys; sys.modules['textual'] = None\n"
               "from imagescope.cli import main\n"
               "main(['browse', 'fixtures/example-image.tar'])")
    assert done.returncode == ExitCode.USAGE
    assert done.stderr == ("imagescope: error: imagescope browse needs Textual: "
                           "pip install 'imagescope[tui]'\n")


def test_without_a_terminal_browse_refuses_in_one_line() -> None:
    done = run("from imagescope.cli import main\n"
               "main(['browse', 'fixtures/example-image.tar'])")
    assert done.returncode == ExitCode.USAGE
    assert done.stderr.count("\n") == 1 and "needs a terminal" in done.stderr
