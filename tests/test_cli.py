"""The command line as a user meets it: help, output streams, files written, exit codes."""

from __future__ import annotations

import fcntl
import io
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from imagescope import __version__, cli
from imagescope.errors import ExitCode
from tests.cli import run_cli, run_process

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "fixtures" / "example-image.tar"
GOLDEN = Path(__file__).resolve().parent / "golden"


run = run_cli


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


# --- stdout that fails ------------------------------------------------------------------------

def popen(*args: str, stdout: int, env: dict[str, str | None] | None = None
          ) -> subprocess.Popen[bytes]:
    full_env = {**os.environ, "COLUMNS": "120"}
    for name, value in (env or {}).items():
        if value is None:
            full_env.pop(name, None)
        else:
            full_env[name] = value
    return subprocess.Popen([sys.executable, "-m", "imagescope", *args], stdout=stdout,
                            stderr=subprocess.PIPE, cwd=ROOT, env=full_env)


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs Linux pipes")
@pytest.mark.parametrize("unbuffered", ["1", None])
@pytest.mark.parametrize("fmt", ["json", "table"])
def test_a_closed_pipe_ends_the_run_quietly_with_141(fmt: str, unbuffered: str | None) -> None:
    """`imagescope inspect … | head -c1`: no message, no traceback, no "Exception ignored", and
    141 as for any tool a closed pipe stops — also with PYTHONUNBUFFERED, where the text layer
    would drop what a write left over instead of failing."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)  # a page: the report cannot fit
    process = popen("inspect", "fixtures/example-image.tar", "--format", fmt, "--no-cache",
                    stdout=write_end, env={"PYTHONUNBUFFERED": unbuffered})
    os.close(write_end)
    try:
        assert os.read(read_end, 1) in (b"{", b"I")
    finally:
        os.close(read_end)
    _, stderr = process.communicate(timeout=120)
    assert stderr == b""
    assert process.returncode == ExitCode.BROKEN_PIPE
    assert int(ExitCode.BROKEN_PIPE) == 128 + signal.SIGPIPE


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
@pytest.mark.parametrize("fmt", ["json", "table", "markdown"])
def test_a_full_stdout_fails_as_a_full_output_file_does(fmt: str) -> None:
    """`> /dev/full` and `-o /dev/full`: exit 13 and one line on stderr, not an internal error."""
    with open("/dev/full", "w") as full:
        process = popen("inspect", "fixtures/example-image.tar", "--format", fmt,
                        stdout=full.fileno())
        _, stderr = process.communicate(timeout=120)
    assert process.returncode == ExitCode.OUTPUT_ERROR
    assert stderr.decode() == "imagescope: error: cannot write to stdout: No space left on device\n"
    named = run("inspect", str(EXAMPLE), "--format", fmt, "-o", "/dev/full")
    assert named.returncode == ExitCode.OUTPUT_ERROR
    assert named.stderr == "imagescope: error: cannot write /dev/full: No space left on device\n"


def test_a_closed_stdout_fails_before_the_analysis() -> None:
    """Started with stdout closed (`>&-`): exit 13, as for a file that cannot be written."""
    result = subprocess.run(["sh", "-c", 'exec "$@" >&-', "sh", sys.executable, "-m",
                             "imagescope", "inspect", str(EXAMPLE)],
                            capture_output=True, check=False, text=True, cwd=ROOT, timeout=120)
    assert result.returncode == ExitCode.OUTPUT_ERROR
    assert result.stderr == "imagescope: error: cannot write to stdout: it is closed\n"


def test_a_stdout_that_cannot_encode_the_report_gets_escapes() -> None:
    """A non-UTF-8 locale: the whole report, what ASCII lacks written as \\u escapes."""
    result = run_process("inspect", str(EXAMPLE), "--format", "markdown",
                         env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 0, result.stderr
    assert result.stdout.isascii()
    assert "| \\u21b3 removed by a later step |" in result.stdout


def test_an_output_name_too_long_is_an_output_error(tmp_path: Path) -> None:
    result = run("inspect", str(EXAMPLE), "-o", str(tmp_path / ("x" * 300)))
    assert result.returncode == ExitCode.OUTPUT_ERROR
    assert result.stderr.startswith("imagescope: error: cannot write ")
    assert result.stderr.endswith(": File name too long\n")


@pytest.mark.skipif(not hasattr(fcntl, "F_SETPIPE_SZ"), reason="needs Linux pipes")
def test_progress_on_a_closed_pipe_ends_the_run_with_141_too() -> None:
    """`imagescope inspect --progress … 2>&1 | head -c1`: the bars meet the closed pipe first
    (rich alone would exit 1 there)."""
    read_end, write_end = os.pipe()
    fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, 4096)
    process = subprocess.Popen(
        [sys.executable, "-m", "imagescope", "inspect", "fixtures/example-image.tar",
         "--progress", "--no-cache"], stdout=write_end, stderr=write_end, cwd=ROOT,
        env={**os.environ, "FORCE_TERMINAL": "1"})
    os.close(write_end)
    try:
        assert os.read(read_end, 1)
    finally:
        os.close(read_end)
    assert process.wait(timeout=120) == ExitCode.BROKEN_PIPE


def test_a_broken_pipe_elsewhere_is_an_internal_error_not_a_quiet_exit(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """EPIPE from a socket or a worker's pipe, stdout and stderr fine: reported, exit 70."""

    def broken(*args: object, **kwargs: object) -> None:
        raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr("imagescope.api.inspect", broken)
    stderr = io.StringIO()
    monkeypatch.setattr(sys, "stderr", stderr)
    monkeypatch.delenv("IMAGESCOPE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exited:
        cli.main(["inspect", str(EXAMPLE), "--no-cache", "--format", "json"])
    assert exited.value.code == ExitCode.INTERNAL_ERROR
    assert stderr.getvalue() == ("imagescope: internal error: RuntimeError: a pipe or socket "
                                 "closed under imagescope ([Errno 32] Broken pipe) (please "
                                 "report it; IMAGESCOPE_DEBUG=1 shows the traceback)\n")


def test_columns_is_honoured_and_what_users_copy_stays_whole(tmp_path: Path) -> None:
    """Piped, the table takes COLUMNS; the image ID and Dockerfile snippets are never wrapped
    nor cut, whatever the width, so they paste as they are."""
    narrow = run("inspect", str(EXAMPLE), "--no-cache", cwd=tmp_path, env={"COLUMNS": "60"})
    assert narrow.returncode == 0, narrow.stderr
    doc = json.loads(run("inspect", str(EXAMPLE), "--no-cache", "--format", "json",
                         cwd=tmp_path).stdout)
    lines = narrow.stdout.splitlines()
    assert f"ID          {doc['image']['id']}" in lines
    merge = next(r for r in doc["recommendations"] if r["rule"] == "merge-run")
    snippet = merge["change"].splitlines()
    assert len(snippet) == 2 and snippet[0].endswith("\\")
    assert [line[3:] for line in lines if line[3:] in snippet] == snippet
    verbatim = {f"ID          {doc['image']['id']}", *("   " + s for s in snippet)}
    assert all(len(line) <= 60 for line in lines if line not in verbatim)
    assert max(map(len, lines)) > 60  # the verbatim lines run past the width
    wide = run("inspect", str(EXAMPLE), "--no-cache", cwd=tmp_path, env={"COLUMNS": "150"})
    assert max(map(len, wide.stdout.splitlines())) > 120


def test_markdown_fences_dockerfile_snippets_as_dockerfile(tmp_path: Path) -> None:
    result = run("inspect", str(EXAMPLE), "--no-cache", "--format", "markdown", cwd=tmp_path)
    assert "```dockerfile\nRUN apt-get update && apt-get install -y build-essential \\\n" \
        in result.stdout
    assert "```\n**/.git\n" in result.stdout  # a .dockerignore is no Dockerfile
