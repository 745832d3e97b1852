"""`--help` is a pip-installed user's manual: examples, every exit code, and nothing wider
than the terminal."""

from __future__ import annotations

import pytest

from imagescope.errors import ExitCode
from tests.cli import run_cli

COMMANDS = [(), ("inspect",), ("diff",)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "imagescope")
@pytest.mark.parametrize("columns", [80, 60])
def test_no_help_line_is_wider_than_the_terminal(command: tuple[str, ...], columns: int) -> None:
    result = run_cli(*command, "--help", columns=columns)
    assert result.returncode == 0, result.stderr
    # examples and the exit-code table are not rewrapped: they fit 80 columns, not 60
    limit = max(columns, 80)
    wide = [line for line in result.stdout.splitlines() if len(line) > limit]
    assert wide == []
    assert "README" not in result.stdout


@pytest.mark.parametrize("command", ["inspect", "diff"])
def test_help_shows_examples_and_every_exit_code(command: str) -> None:
    text = run_cli(command, "--help", columns=80).stdout
    examples = text.split("Examples:")[1].split("Exit codes:")[0]
    assert examples.count(f"imagescope {command} ") >= 3
    table = text.split("Exit codes:")[1]
    codes = {int(line.split()[0]) for line in table.splitlines() if line.strip()}
    assert codes == {int(code) for code in ExitCode}


def test_the_examples_parse_as_the_command_reads_them() -> None:
    """Each example's options exist: `--help` after it still answers, no usage error."""
    text = run_cli("diff", "--help", columns=80).stdout
    example = next(line for line in text.split("Examples:")[1].splitlines()
                   if "--max-new-waste" in line)
    args = example.split()[1:]  # without `imagescope`
    assert run_cli(*args, "--help").returncode == 0
