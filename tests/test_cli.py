"""The command line as a user meets it: help, output streams, files written, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from imagescope import __version__
from imagescope.errors import ExitCode

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example-image.tar"
GOLDEN = Path(__file__).resolve().parent / "golden"


def run(*args: str, cwd: Path | None = None, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "COLUMNS": "120", **(env or {})}
    return subprocess.run([sys.executable, "-m", "imagescope", *args], capture_output=True,
                          check=False, text=True, cwd=cwd, env=full_env, timeout=120)


def test_version_and_help() -> None:
    assert run("--version").stdout.strip() == f"imagescope, version {__version__}"
    top = run("--help")
    assert top.returncode == 0 and "inspect" in top.stdout
    sub = run("inspect", "--help")
    assert sub.returncode == 0
    for option in ("--format", "--output", "--top", "--pull", "--platform", "oci-archive:"):
        assert option in sub.stdout


@pytest.mark.parametrize("args", [["inspect"], ["inspect", "x", "--format", "yaml"], ["bogus"],
                                  ["inspect", "x", "--top", "-1"]])
def test_usage_errors_are_one_line_with_exit_2(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == ExitCode.USAGE
    assert len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith("imagescope: error:")


def test_table_report_on_the_example_image(tmp_path: Path) -> None:
    result = run("inspect", str(EXAMPLE), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Efficiency" in result.stdout and "Top wasted files" in result.stdout
    assert result.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_json_to_a_named_file_writes_only_that_file(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = run("inspect", str(EXAMPLE), "--format", "json", "-o", str(out), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    document = json.loads(out.read_text())
    assert document["schema_version"] == 1
    summary = document["summary"]
    assert summary["wasted_bytes"] == summary["total_bytes"] - summary["final_bytes"]
    assert summary["wasted_bytes"] == summary["removed_bytes"] + summary["overwritten_bytes"]
    assert sum(f["bytes"] for f in document["wasted_files"]) == summary["wasted_bytes"]
    assert sum(layer["wasted_bytes"] for layer in document["layers"]) == summary["wasted_bytes"]


def test_unwritable_output_fails_before_analysis(tmp_path: Path) -> None:
    result = run("inspect", str(EXAMPLE), "-o", str(tmp_path / "missing-dir" / "r.json"))
    assert result.returncode == ExitCode.OUTPUT_ERROR
    assert "does not exist" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("fmt", ["json", "table", "markdown"])
def test_renderers_match_golden_files(fmt: str) -> None:
    """The example image renders byte-for-byte as reviewed; regenerate with UPDATE_GOLDEN=1."""
    result = run("inspect", "fixtures/example-image.tar", "--format", fmt, "--top", "20", cwd=ROOT)
    assert result.returncode == 0, result.stderr
    golden = GOLDEN / f"example.{'md' if fmt == 'markdown' else fmt}"
    if os.environ.get("UPDATE_GOLDEN"):
        golden.parent.mkdir(exist_ok=True)
        golden.write_text(result.stdout)
    assert result.stdout == golden.read_text()
