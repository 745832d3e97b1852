"""Text taken from an image cannot drive the terminal or the PR comment (issue 14).

An image built by hand carries escape sequences, rich markup, Markdown and HTML in its history,
file names, USER and platform. Each format is run as a user runs it, stdout a pipe: no control
character reaches the output raw, the text is still shown (escaped as `\\x1b`, `\\u202e`), and
nothing in it becomes markup.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fixtures import imagegen as g
from imagescope.errors import ExitCode
from imagescope.render.terminal import printable
from tests.cli import CliResult, run_process
from tests.test_render_markdown import read, table

# Clear the screen, move the cursor, a hyperlink (OSC 8, ST-terminated and BEL-terminated),
# a C1 CSI, a carriage return, a right-to-left override; rich markup, Markdown and HTML.
HISTORY = ("RUN \x1b[2J\x1b[H\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\ "
           "\x1b]8;;https://evil.example/\x07here\x1b]8;;\x07 \x9b31m \x1b[1A\r over "
           "[bold]x[/bold] `tick` a|b <script>alert(1)</script> \u202etxt.exe\nnext line")
PATH = "etc/[bold]p\x1b[31m|`<img src=x onerror=alert(1)>\x07\x9b\x7f\x85\r\u202eq"
USER = "root:\x1b[2J[bold]"
OS = "linux\x1b]0;title\x07"
ARCH = "[red]amd64"

# any control character but the line feed, C0, DEL and C1 alike
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")
BIDI = re.compile("[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def hostile(layer: list[g.Spec]) -> g.ImageSpec:
    return g.ImageSpec(
        layers=[g.layer_tar([g.dir("etc"), g.file(PATH, size=50), g.file("big", size=100)]),
                g.layer_tar(layer)],
        history=[g.Step(HISTORY), g.Step("RUN rm \x1b[2J stuff", comment="a\x1b[2Jcomment")],
        user=USER, os=OS, architecture=ARCH)


@pytest.fixture()
def images(tmp_path: Path) -> tuple[Path, Path]:
    """Two versions, named with markup and an escape too (a reference is shown as well)."""
    old = tmp_path / "[bold]old\x1b[2J.tar"
    new = tmp_path / "new.tar"
    g.write_docker_legacy(old, hostile([g.whiteout(PATH), g.whiteout("big")]))
    g.write_docker_legacy(new, hostile([g.file("new\x1b[2Jfile", size=10), g.whiteout("big")]))
    return old, new


def run(*args: str) -> CliResult:
    """imagescope with stdout and stderr pipes, as in CI or `| less`."""
    return run_process(*args, "--no-cache", env={"COLUMNS": "200"})


def assert_inert(text: str) -> None:
    """No control character but line feeds, no bidi control, no lone surrogate."""
    assert CONTROL.findall(text) == []
    assert BIDI.findall(text) == []
    text.encode("utf-8")


def test_inspect_table_escapes_history_paths_user_and_platform(images: tuple[Path, Path]) -> None:
    result = run("inspect", str(images[0]))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert_inert(out)
    # still shown, escaped; markup printed as written
    assert "RUN \\x1b[2J\\x1b[H\\x1b]8;;https://evil.example/\\x1b\\click" in out
    assert f"/{printable(PATH)}" in out
    assert "Platform    linux\\x1b]0;title\\x07/[red]amd64" in out
    assert "the image runs as root (USER root:\\x1b[2J[bold])" in out
    assert "\\x1b[1A over [bold]x[/bold]" in out  # a finding's title: prose on one line
    assert "\\x1b[1A\\x0d over [bold]x[/bold] `tick` a|b" in out  # a change keeps its CR, shown
    assert "<script>alert(1)</script> \\u202etxt.exe" in out


def test_diff_table_escapes_references_steps_and_paths(images: tuple[Path, Path]) -> None:
    result = run("diff", *map(str, images))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert_inert(out)
    assert "[bold]old\\x1b[2J.tar →" in out  # markup in the title kept, the escape shown
    assert "RUN \\x1b[2J\\x1b[H" in out
    assert "/new\\x1b[2Jfile" in out


@pytest.mark.parametrize("command", ["inspect", "diff"])
def test_markdown_keeps_image_text_out_of_the_markup(images: tuple[Path, Path],
                                                     command: str) -> None:
    args = [str(images[0])] if command == "inspect" else list(map(str, images))
    result = run(command, *args, "--format", "markdown")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert_inert(text)
    page = read(text)
    assert {"script", "img", "b", "strong", "em", "a", "del"} & set(page.tags) <= {"strong"}
    for rows in page.tables:  # no pipe or line break from the image split a row
        assert {len(row) for row in rows} == {len(rows[0])}, rows
    if command == "inspect":
        steps = [row[4] for row in table(page, ["Step", "Stored", "Added", "Wasted", "Instruction"])]
        assert steps[1] == printable(" ".join(HISTORY.split()))
        assert steps[2] == "RUN rm \\x1b[2J stuff"
        paths = [row[3] for row in table(page, ["Size", "How", "Steps", "Path"])]
        assert f"/{printable(PATH)}" in paths
    else:
        paths = [row[0] for row in table(page, ["Path", "Change", "Old", "New", "Δ"])]
        assert "/new\\x1b[2Jfile" in paths
        assert f"`{printable(str(images[0]))}` →" in text


@pytest.mark.parametrize("command", ["inspect", "diff"])
def test_json_is_valid_and_escapes_every_control_character(images: tuple[Path, Path],
                                                           command: str) -> None:
    args = [str(images[0])] if command == "inspect" else list(map(str, images))
    result = run(command, *args, "--format", "json")
    assert result.returncode == 0, result.stderr
    assert_inert(result.stdout)
    assert result.stdout.isascii()
    document = json.loads(result.stdout)
    if command == "inspect":  # the exact text, for programs
        assert document["layers"][0]["created_by"] == HISTORY
        assert document["image"]["platform"] == f"{OS}/{ARCH}"
        assert f"/{PATH}" in [f["path"] for f in document["wasted_files"]]
    else:
        assert document["steps"][0]["new_instruction"] == HISTORY


def test_error_and_gate_lines_on_stderr_are_escaped(tmp_path: Path) -> None:
    secret = tmp_path / "secret.tar"
    g.write_docker_legacy(secret, g.ImageSpec(
        layers=[g.layer_tar([g.dir("\x1b[2J"), g.file("\x1b[2J/.env", b"TOKEN=abc123\n")])],
        history=[g.Step("COPY . /")], user="1000"))
    failing = run("inspect", str(secret), "--fail-on-secrets")
    assert failing.returncode == ExitCode.GATE_FAILED
    assert_inert(failing.stdout + failing.stderr)
    assert "FAIL fail-on-secrets: 1 secret file(s) in the image: /\\x1b[2J/.env" in failing.stdout
    assert failing.stderr == ("imagescope: gate failed: fail-on-secrets: 1 secret file(s) in the "
                              "image: /\\x1b[2J/.env\n")

    # an archive naming a layer it lacks: the error quotes the name
    manifest = json.dumps([{"Config": "c.json", "RepoTags": ["x:1"],
                            "Layers": ["evil\x1b[2J\x07\n/layer.tar"]}]).encode()
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": ["sha256:" + "0" * 64]},
                         "history": []}).encode()
    broken = tmp_path / "broken.tar"
    g.write_tar(broken, [g.Member("manifest.json", manifest), g.Member("c.json", config)])
    missing = run("inspect", str(broken))
    assert missing.returncode == ExitCode.MISSING_BLOB, missing.stderr
    assert_inert(missing.stderr)
    assert len(missing.stderr.splitlines()) == 1
    assert "evil\\x1b[2J\\x07\\x0a/layer.tar" in missing.stderr
