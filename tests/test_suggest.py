"""The suggested Dockerfile (`analysis.suggest`) on a hand-made layer stack: each change's text
and the bytes it keeps out, worked out by hand from the layers below."""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest

from imagescope.analysis.dockerfile_map import DockerfileMap, Instruction, map_layers
from imagescope.analysis.report import Report, base_layers, with_dockerfile
from imagescope.analysis.suggest import plain_shell, split_commands, suggest
from imagescope.analysis.suggestion import Suggestion, hunks
from imagescope.api import analyze
from imagescope.dockerfile import parse_dockerfile
from imagescope.errors import ExitCode
from imagescope.model import Entry, HistoryStep
from imagescope.render.patch import patch_text
from imagescope.store import report_codec
from tests.cli import run_cli
from tests.stacks import directory, file, image, symlink, whiteout

DOCKERFILE = """\
FROM debian:12
WORKDIR /app
COPY . /app
RUN chown -R 1000:1000 /app
# the toolchain
RUN apt-get update
RUN apt-get install -y gcc \\
    && make
RUN pip install flask
RUN rm -rf /usr/bin/gcc
EXPOSE 8000
CMD ["python", "main.py"]
"""
HISTORY = ["/bin/sh -c #(nop) ADD file:0123 in / ",
           "/bin/sh -c #(nop) CMD [\"bash\"]",
           "/bin/sh -c #(nop) WORKDIR /app",
           "/bin/sh -c #(nop) COPY dir:feed in /app ",
           "/bin/sh -c chown -R 1000:1000 /app",
           "/bin/sh -c apt-get update",
           "/bin/sh -c apt-get install -y gcc     && make",
           "/bin/sh -c pip install flask",
           "/bin/sh -c rm -rf /usr/bin/gcc",
           "/bin/sh -c #(nop)  EXPOSE 8000",
           "/bin/sh -c #(nop)  CMD [\"python\", \"main.py\"]"]
EMPTY = {1, 2, 9, 10}  # history steps that made no layer (WORKDIR: /app existed)

CONTEXT = [("app/main.py", 400), ("app/.git/objects/pack", 3000), ("app/.git/HEAD", 20)]


def owned(entry: Entry, uid: int = 1000) -> Entry:
    return dataclasses.replace(entry, uid=uid, gid=uid)


def layers() -> list[list[Entry]]:
    return [
        [file("bin/sh", 100), directory("app")],  # 0 base
        [file(p, n) for p, n in CONTEXT],  # 1 COPY . /app
        [owned(file(p, n)) for p, n in CONTEXT],  # 2 chown -R: the same bytes again
        [file("var/lib/apt/lists/deb_Packages", 5000), file("var/lib/apt/lists/lock", 0)],  # 3
        [file("usr/bin/gcc", 7000), file("var/cache/apt/archives/gcc.deb", 2000),
         file("app/main.bin", 600)],  # 4 install, make
        [file("usr/lib/python3/flask/__init__.py", 800),
         file("root/.cache/pip/http/ab", 1500)],  # 5 pip
        [whiteout("usr/bin/gcc")],  # 6 rm gcc
    ]


def mapped_to(report: Report, tmp_path: Path, text: str
              ) -> tuple[DockerfileMap, list[Instruction], Path]:
    """`report`'s layers mapped to `text` written as tmp_path/Dockerfile, which must match."""
    path = tmp_path / "Dockerfile"
    path.write_text(text)
    instructions = parse_dockerfile(str(path))
    mapped = map_layers(str(path), instructions, [layer.created_by for layer in report.layers],
                        base_layers(report))
    assert mapped.mismatch is None, mapped.mismatch
    return mapped, instructions, path


def mapped_report(tmp_path: Path, text: str = DOCKERFILE) -> tuple[Report, str]:
    history = [HistoryStep(h, empty_layer=n in EMPTY) for n, h in enumerate(HISTORY)]
    report = analyze(image(*layers(), history=history))
    mapped, _, path = mapped_to(report, tmp_path, text)
    return with_dockerfile(report, mapped), str(path)


def suggestion_for(tmp_path: Path, dockerignore: str | None = None) -> Suggestion:
    report, path = mapped_report(tmp_path)
    assert report.dockerfile is not None
    return suggest(report, report.dockerfile, parse_dockerfile(path), DOCKERFILE, dockerignore,
                   str(tmp_path / ".dockerignore"))


def test_the_final_stage_is_rewritten_as_the_findings_ask(tmp_path: Path) -> None:
    suggestion = suggestion_for(tmp_path)
    assert "\n".join(suggestion.rewritten) + "\n" == """\
FROM debian:12
WORKDIR /app
COPY --chown=1000:1000 . /app
# the toolchain
RUN apt-get update \\
    && apt-get install -y gcc \\
    && make \\
    && pip install --no-cache-dir flask \\
    && rm -rf /usr/bin/gcc \\
    && rm -rf /var/lib/apt/lists/* \\
    && apt-get clean
USER 10001:10001
EXPOSE 8000
CMD ["python", "main.py"]
"""
    assert suggestion.dockerignore_before is None
    assert suggestion.dockerignore_after == ("**/.git",)


def test_each_change_keeps_out_the_bytes_worked_out_by_hand(tmp_path: Path) -> None:
    suggestion = suggestion_for(tmp_path)
    saved = {(c.rule, c.title.split(" ")[0]): c.saved_bytes for c in suggestion.changes}
    assert saved == {
        ("merge-run", "merge"): 7000,  # gcc: written by line 7, deleted by line 10
        ("copy-chown", "COPY"): 3420,  # the chown's copies of the three COPYed files
        ("cache-cleanup", "`rm"): 5000,  # the apt lists (the lock is empty)
        ("cache-cleanup", "`apt-get"): 2000,  # gcc.deb
        ("cache-cleanup", "`--no-cache-dir`"): 1500,  # the pip cache
        # .git as COPY wrote it (3020) and as the chown rewrote it (3020)
        ("dockerignore", "a"): 6040,
        ("non-root-user", "USER"): 0,
    }
    # shipped: 100 + 3420 * 2 + 5000 + 9600 + 2300 = 23,840; left: sh, main.py, main.bin and
    # flask = 100 + 400 + 600 + 800 (the .git copies the chown and .dockerignore both keep out
    # counted once)
    assert suggestion.shipped_bytes == 23_840
    assert suggestion.estimated_bytes == 1_900


def test_hunks_carry_their_changes_bytes(tmp_path: Path) -> None:
    found = hunks(suggestion_for(tmp_path))
    assert [(h.path.rpartition("/")[2], h.header) for h in found] == [
        ("Dockerfile", "@@ -1,12 +1,14 @@"), (".dockerignore", "@@ -0,0 +1 @@")]
    dockerfile, ignore = found
    # every Dockerfile change lands in its one hunk; the .git copies shared by the chown and the
    # .dockerignore are counted in both hunks
    assert dockerfile.saved_bytes == 7000 + 3420 + 5000 + 2000 + 1500
    assert ignore.saved_bytes == 6040
    assert ignore.lines == ("+**/.git",)
    assert "-RUN chown -R 1000:1000 /app" in dockerfile.lines


def test_an_existing_dockerignore_is_extended_not_replaced(tmp_path: Path) -> None:
    suggestion = suggestion_for(tmp_path, dockerignore="node_modules\n")
    assert suggestion.dockerignore_after == ("node_modules", "**/.git")
    kept = suggestion_for(tmp_path, dockerignore="**/.git\n")
    assert kept.dockerignore_after is None
    assert "dockerignore" not in {c.rule for c in kept.changes}
    assert kept.estimated_bytes == 1_900 + 3020  # COPY still copies .git (the chown's copy goes)


def test_far_apart_steps_with_a_copy_between_are_not_merged(tmp_path: Path) -> None:
    text = DOCKERFILE.replace("RUN pip install flask", "COPY . /app2\nRUN pip install flask")
    history = [*HISTORY[:7], "/bin/sh -c #(nop) COPY dir:feed in /app2 ", *HISTORY[7:]]
    stack = layers()
    stack.insert(5, [file("app2/x", 10)])
    empty = {1, 2, 10, 11}
    report = analyze(image(*stack, history=[HistoryStep(h, empty_layer=n in empty)
                                            for n, h in enumerate(history)]))
    mapped, instructions, _ = mapped_to(report, tmp_path, text)
    suggestion = suggest(report, mapped, instructions, text, None, ".dockerignore")
    assert "merge-run" not in [c.rule for c in suggestion.changes]
    assert "RUN rm -rf /usr/bin/gcc" in suggestion.rewritten  # left alone: a COPY between
    # apt-get update and install still merged (the lists are removed after the install)
    assert "RUN apt-get update \\" in suggestion.rewritten
    # as before, but gcc (7000) still ships, and so does the new COPY's file (10)
    assert suggestion.estimated_bytes == 1_900 + 7000 + 10


@pytest.mark.parametrize(("command", "parts"), [
    ("a &&  b", ["a", "b"]),
    ("echo 'x && y' && z", ["echo 'x && y'", "z"]),
    ('echo "a \\" && b" && c', ['echo "a \\" && b"', "c"]),
    ("a \\&\\& b", ["a \\&\\& b"]),
    ("a   b\t c", ["a b c"]),
])
def test_commands_split_at_top_level_ands(command: str, parts: list[str]) -> None:
    assert split_commands(command) == parts


EXAMPLE = Path(__file__).parent.parent / "fixtures"


def example_dockerfile(tmp_path: Path, *, newline: bool = True) -> Path:
    """The bundled example's Dockerfile, alone in a directory (its .dockerignore made anew)."""
    text = (EXAMPLE / "example-image.Dockerfile").read_text()
    path = tmp_path / "Dockerfile"
    path.write_text(text if newline else text.rstrip("\n"))
    return path


@pytest.mark.parametrize("newline", [True, False], ids=["newline", "no-final-newline"])
def test_the_patch_applies_with_patch_p1_and_gives_the_suggested_text(tmp_path: Path,
                                                                      newline: bool) -> None:
    path = example_dockerfile(tmp_path, newline=newline)
    image = str(EXAMPLE / "example-image.tar")
    document = json.loads(run_cli("inspect", image, "--dockerfile", path, "--format", "json",
                                  "--no-cache").stdout)
    suggestion = document["suggestion"]
    result = run_cli("inspect", image, "--dockerfile", path, "--format", "patch", "--no-cache")
    assert result.exit_code == ExitCode.OK, result.stderr
    assert f"({suggestion['estimated_bytes']:,} bytes)" in result.stdout.split("\n")[1]
    applied = subprocess.run(["patch", "-p1", "--forward"], input=result.stdout, cwd=tmp_path,
                             capture_output=True, text=True, check=False)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    expected = suggestion["dockerfile_text"]
    assert path.read_text() == (expected if newline else expected.rstrip("\n"))
    assert (tmp_path / ".dockerignore").read_text() == suggestion["dockerignore_text"]
    assert "USER 10001:10001" in expected.split("\n")
    hunk_heads = [line for line in result.stdout.split("\n") if line.startswith("@@")]
    assert len(hunk_heads) == 2 and all("saves " in h for h in hunk_heads)


def test_without_a_matching_dockerfile_there_is_no_patch(tmp_path: Path) -> None:
    image = str(EXAMPLE / "example-image.tar")
    missing = run_cli("inspect", image, "--format", "patch", "--no-cache")
    assert missing.exit_code == ExitCode.USAGE
    assert missing.stderr.count("\n") == 1 and "--dockerfile" in missing.stderr
    edited = tmp_path / "Dockerfile"
    edited.write_text((EXAMPLE / "example-image.Dockerfile").read_text()
                      .replace("COPY . /app", "COPY . /srv"))
    mismatch = run_cli("inspect", image, "--dockerfile", edited, "--format", "patch",
                       "--no-cache")
    assert mismatch.exit_code == ExitCode.USAGE
    assert mismatch.stderr.count("\n") == 1 and "do not match" in mismatch.stderr


def test_the_markdown_report_carries_the_suggestion_as_a_diff(tmp_path: Path) -> None:
    path = example_dockerfile(tmp_path)
    result = run_cli("inspect", str(EXAMPLE / "example-image.tar"), "--dockerfile", path,
                     "--format", "markdown", "--no-cache")
    assert result.exit_code == ExitCode.OK, result.stderr
    section = result.stdout.partition("### Suggested Dockerfile")[2]
    assert section.startswith(" (3 changes, saves ")
    assert "estimate" in section.split("\n")[0]
    block = section.partition("```diff\n")[2].partition("\n```")[0]
    assert block.startswith("--- a/Dockerfile\n+++ b/Dockerfile\n@@ ")
    assert "+USER 10001:10001" in block.split("\n")


def test_the_build_context_gives_the_dockerfile(tmp_path: Path) -> None:
    example_dockerfile(tmp_path)
    (tmp_path / ".dockerignore").write_text("**/.git\n")
    document = json.loads(run_cli("inspect", str(EXAMPLE / "example-image.tar"), "--context",
                                  tmp_path, "--format", "json", "--no-cache").stdout)
    assert document["layers"][-1]["dockerfile"]["start_line"] == 8
    assert document["suggestion"]["dockerignore_text"] == "**/.git\n**/__pycache__\n**/*.py[co]\n"
    missing = run_cli("inspect", str(EXAMPLE / "example-image.tar"), "--context",
                      tmp_path / "nowhere")
    assert missing.exit_code == ExitCode.SOURCE_NOT_FOUND and missing.stderr.count("\n") == 1


TWO_STAGE = """\
FROM debian:12
WORKDIR /app
RUN apt-get install -y gcc
COPY . /app
RUN make && cp server /usr/local/bin/server
ENV PORT=8000
USER 1000
CMD ["server"]
"""
TWO_STAGE_HISTORY = [("/bin/sh -c #(nop) ADD file:0123 in / ", False),
                     ("/bin/sh -c #(nop) CMD [\"bash\"]", True),
                     ("/bin/sh -c #(nop) WORKDIR /app", True),
                     ("/bin/sh -c apt-get install -y gcc", False),
                     ("/bin/sh -c #(nop) COPY dir:feed in /app ", False),
                     ("/bin/sh -c make && cp server /usr/local/bin/server", False),
                     ("/bin/sh -c #(nop)  ENV PORT=8000", True),
                     ("/bin/sh -c #(nop)  USER 1000", True),
                     ("/bin/sh -c #(nop)  CMD [\"server\"]", True)]


def two_stage_report(extra: list[Entry] | None = None) -> Report:
    stack = [
        [file("bin/sh", 100), file("usr/lib/libc.so", 1000)],  # base
        [file("usr/bin/gcc", 7000), file("usr/lib/gcc/x86_64-linux-gnu/12/cc1", 9000),
         file("var/lib/dpkg/status", 300)],  # the toolchain, and dpkg's state
        [file("app/main.c", 400)],
        [file("app/server", 2000), file("usr/local/bin/server", 2000, "copy"), *(extra or [])],
    ]
    return analyze(image(*stack, user="1000", history=[
        HistoryStep(text, empty_layer=empty) for text, empty in TWO_STAGE_HISTORY]))


def test_a_toolchain_moves_to_a_build_stage_and_only_the_results_are_copied(
        tmp_path: Path) -> None:
    report = two_stage_report()
    mapped, instructions, _ = mapped_to(report, tmp_path, TWO_STAGE)
    # results: /app (main.c, server: 2400 bytes) and /usr/local (2000); /usr itself holds the
    # base's libc and the toolchain, /var dpkg's state
    assert [(r.path, r.bytes, r.files) for r in report.build_results] == [
        ("/app", 2400, 2), ("/usr/local", 2000, 1)]
    assert report_codec.decode(report_codec.encode(report)).build_results == report.build_results
    suggestion = suggest(report, mapped, instructions, TWO_STAGE, None, ".dockerignore")
    assert "\n".join(suggestion.rewritten) + "\n" == """\
FROM debian:12 AS build
WORKDIR /app
RUN apt-get install -y gcc
COPY . /app
RUN make && cp server /usr/local/bin/server
ENV PORT=8000
USER 1000
CMD ["server"]

FROM debian:12
COPY --from=build /app /app
COPY --from=build /usr/local /usr/local
WORKDIR /app
ENV PORT=8000
USER 1000
CMD ["server"]
"""
    # ships the base (1100) and the results (2400 + 2000) of the 21,800 bytes it ships now
    assert (suggestion.shipped_bytes, suggestion.estimated_bytes) == (21_800, 5_500)
    (stage,) = suggestion.changes
    assert (stage.rule, stage.saved_bytes) == ("multi-stage", 16_300)
    found = hunks(suggestion)
    assert [h.saved_bytes for h in found] == [0, 16_300]  # FROM … AS build, then the new stage


def test_no_build_stage_without_a_toolchain(tmp_path: Path) -> None:
    report, _ = mapped_report(tmp_path)
    assert report.build_results == ()
    suggestion = suggestion_for(tmp_path)
    assert "multi-stage" not in {c.rule for c in suggestion.changes}


def test_a_step_that_links_or_deletes_outside_the_results_gets_no_build_stage() -> None:
    # copying /app and /usr/local would not redo the symlink, nor the deletion
    assert two_stage_report([symlink("usr/bin/server", "/app/server")]).build_results == ()
    assert two_stage_report([whiteout("usr/lib/libc.so")]).build_results == ()


def test_lines_added_after_a_last_line_without_newline_apply_with_git_and_patch(
        tmp_path: Path) -> None:
    report = two_stage_report()
    text = TWO_STAGE.rstrip("\n")
    mapped, instructions, path = mapped_to(report, tmp_path, text)
    suggestion = suggest(report, mapped, instructions, text, None, str(tmp_path / ".di"))
    patch = patch_text(suggestion, "test")
    for tool in (["patch", "-p1", "--forward"], ["git", "apply", "-"]):
        path.write_text(text)
        applied = subprocess.run(tool, input=patch, cwd=tmp_path, capture_output=True,
                                 text=True, check=False)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert path.read_text() == suggestion.rewritten_text
    assert 'CMD ["server"]\n\nFROM debian:12\n' in suggestion.rewritten_text


@pytest.mark.parametrize(("command", "plain"), [
    ("apt-get update && apt-get install -y gcc", True),
    ("make > build.log && rm -f x", True),
    ("make;", False),
    ("make # build it", False),
    ("rm -rf /x || true", False),
    ("cd sub && make", False),
    ("make && export A=1", False),
    ("echo $(date)", False),
    ("sleep 1 &", False),
])
def test_only_plain_commands_are_merged_or_extended(command: str, plain: bool) -> None:
    assert plain_shell(command) is plain


def test_a_crlf_dockerfile_is_left_as_it_is(tmp_path: Path) -> None:
    report, path = mapped_report(tmp_path)
    assert report.dockerfile is not None
    text = DOCKERFILE.replace("\n", "\r\n")
    suggestion = suggest(report, report.dockerfile, parse_dockerfile(path), text, None, ".di")
    assert suggestion.changes == () and suggestion.estimated_bytes == suggestion.shipped_bytes
