"""Build-context leaks: only in COPY/ADD layers, one finding per kind, and .dockerignore lines."""

from __future__ import annotations

import pytest

from imagescope.analysis.findings import context
from imagescope.analysis.findings.model import Category, Finding, Severity
from imagescope.analysis.findings.view import ImageView
from imagescope.model import Entry
from tests.stacks import file, view, whiteout

BASE = "/bin/sh -c #(nop) ADD file:0123abcd in / "
COPY = "/bin/sh -c #(nop) COPY dir:feed in /app "
BUILDKIT_COPY = "COPY . /app # buildkit"
RUN = "/bin/sh -c make build"


def copied(*entries: Entry, step: str = COPY) -> ImageView:
    return view([file("bin/sh", 10)], list(entries), steps=[BASE, step])


def by_subject(findings: list[Finding]) -> dict[str, tuple[int, list[tuple[str, int, int]]]]:
    return {f.subject: (f.bytes, [(r.path, r.bytes, r.layer_index) for r in f.files])
            for f in findings}


@pytest.mark.parametrize(("path", "subject"), [
    ("app/.git/HEAD", "git"),
    ("app/.git/objects/ab/cdef", "git"),
    ("app/vendor/lib/.git", "git"),  # a submodule's .git file
    ("app/__pycache__/main.cpython-312.pyc", "pycache"),
    ("app/old.pyc", "pycache"),
    ("app/old.pyo", "pycache"),
    ("app/tests/test_main.py", "tests"),
    ("app/src/test/java/AppTest.java", "tests"),
    ("app/tests/__pycache__/t.pyc", "tests"),  # the shallowest match decides
    ("app/build.log", "logs"),
    ("app/.DS_Store", "ds_store"),
    ("app/.main.py.swp", "editor-swap"),
    ("app/.main.py.swo", "editor-swap"),
    ("app/main.py~", "editor-swap"),
    ("app/.#main.py", "editor-swap"),
    ("app/Dockerfile", "dockerfile"),
    ("app/Dockerfile.dev", "dockerfile"),
    ("app/api.dockerfile", "dockerfile"),
    ("app/docker-compose.yml", "dockerfile"),
    ("app/docker-compose.override.yaml", "dockerfile"),
])
def test_each_leak_kind(path: str, subject: str) -> None:
    (finding,) = context.find(copied(file(path, 77)))
    assert (finding.rule, finding.category, finding.subject) == (
        "build-context", Category.BUILD_CONTEXT, subject)
    assert (finding.bytes, finding.removable, finding.layers) == (77, True, (1,))


@pytest.mark.parametrize("path", [
    "app/main.py",
    "app/.gitignore",
    "app/testing.py",
    "app/latest/x.py",
    "app/.env",  # a secret, not a leak of this rule
    "usr/local/lib/python3.12/site-packages/pkg/tests/test_x.py",  # a builder's packages
    "usr/lib/python3/dist-packages/pkg/__pycache__/x.pyc",
])
def test_not_leaks(path: str) -> None:
    assert context.find(copied(file(path, 5))) == []


def test_only_copy_and_add_layers_count() -> None:
    # the same leaks written by the base's rootfs ADD and by a RUN step are not the context
    leaks = [file("app/.git/HEAD", 21), file("app/x.log", 8)]
    assert context.find(view(leaks, steps=[BASE])) == []
    assert context.find(view([file("bin/sh", 1)], leaks, steps=[BASE, RUN])) == []
    assert context.find(view(leaks)) == []  # no history: no step is known to be a COPY
    assert [f.subject for f in context.find(copied(*leaks, step=BUILDKIT_COPY))] == [
        "git", "logs"]


def test_bytes_per_kind_are_the_live_files_from_copy_layers() -> None:
    # COPY (layer 1) brings .git (21 + 700) and two logs (8, 4); RUN (layer 2) deletes one log
    # and writes its own (6); COPY (layer 3) brings a third log (3): logs alive from COPY = 8 + 3
    v = view([file("bin/sh", 10)],
             [file("app/.git/HEAD", 21), file("app/.git/objects/ab/cd", 700),
              file("app/a.log", 8), file("app/b.log", 4)],
             [whiteout("app/b.log"), file("app/run.log", 6)],
             [file("app/c.log", 3)],
             steps=[BASE, COPY, "/bin/sh -c rm app/b.log > app/run.log", "COPY c.log /app/"])
    assert by_subject(context.find(v)) == {
        "git": (721, [("/app/.git/objects/ab/cd", 700, 1), ("/app/.git/HEAD", 21, 1)]),
        "logs": (11, [("/app/a.log", 8, 1), ("/app/c.log", 3, 3)]),
    }
    severities = {f.subject: f.severity for f in context.find(v)}
    assert severities == {"git": Severity.MEDIUM, "logs": Severity.LOW}


def test_node_modules_counts_beside_an_app_copied_with_it() -> None:
    # `COPY . /app`: package.json beside node_modules/ → the context's node_modules, 40 + 2 bytes
    v = copied(file("app/package.json", 30), file("app/node_modules/left-pad/index.js", 40),
               file("app/node_modules/left-pad/test/t.js", 2))
    assert by_subject(context.find(v)) == {
        "node_modules": (42, [("/app/node_modules/left-pad/index.js", 40, 1),
                              ("/app/node_modules/left-pad/test/t.js", 2, 1)])}


def test_node_modules_copied_alone_is_a_builders() -> None:
    # `COPY --from=build /app/node_modules ./node_modules`: no package.json in that layer
    v = view([file("bin/sh", 10)], [file("app/package.json", 30)],
             [file("app/node_modules/left-pad/index.js", 40)],
             steps=[BASE, COPY, "COPY /app/node_modules /app/node_modules # buildkit"])
    assert context.find(v) == []


def test_dockerignore_lines_for_the_kinds_found_in_a_fixed_order() -> None:
    v = copied(file("app/z.log", 1), file("app/.git/HEAD", 1), file("app/a.pyc", 1),
               file("app/Dockerfile", 1), file("app/.DS_Store", 1))
    findings = context.find(v)
    lines = context.dockerignore_lines(findings)
    assert lines == ["**/.git", "**/__pycache__", "**/*.py[co]", "**/*.log", "**/.DS_Store",
                     "Dockerfile*", "**/*.dockerfile", "docker-compose*.yml",
                     "docker-compose*.yaml"]
    assert context.dockerignore_lines(list(reversed(findings))) == lines
    assert context.dockerignore_lines([]) == []


def test_every_kind_has_a_label_and_dockerignore_lines() -> None:
    subjects = {subject for subject, _ in context.CONTEXT_FILES}
    assert subjects == set(context.LABELS) == set(context.DOCKERIGNORE)


def test_a_leak_rewritten_by_a_later_step_is_still_the_copy_s() -> None:
    """`COPY . /app` then `RUN chmod -R 755 /app`: the live copies are the chmod's, but the
    files came from the build context. Bytes by hand: pack 4000, log 300, Dockerfile 120 (live,
    in layer 2); main.py 50 is the app. The finding names the COPY (layer 1) as its step."""
    import dataclasses

    def chmodded(entry: Entry) -> Entry:
        return dataclasses.replace(entry, mode=0o755)

    leaked = [file("app/.git/objects/pack/p.pack", 4000, "pack"), file("app/app.log", 300, "log"),
              file("app/Dockerfile", 120, "df"), file("app/main.py", 50, "main")]
    stack = view([file("bin/sh", 10)], leaked, [chmodded(e) for e in leaked],
                 steps=[BASE, BUILDKIT_COPY, "RUN /bin/sh -c chmod -R 755 /app # buildkit"])
    found = context.find(stack)
    assert by_subject(found) == {
        "git": (4000, [("/app/.git/objects/pack/p.pack", 4000, 2)]),
        "logs": (300, [("/app/app.log", 300, 2)]),
        "dockerfile": (120, [("/app/Dockerfile", 120, 2)]),
    }
    assert {f.layers for f in found} == {(1,)}
    lines = context.dockerignore_lines(found)
    assert "**/.git" in lines and "**/*.log" in lines and "Dockerfile*" in lines


def test_a_file_a_run_wrote_fresh_is_no_leak() -> None:
    """A log a RUN writes (no COPY brought that path in) is not the build context."""
    stack = view([file("bin/sh", 10)], [file("app/main.py", 50)], [file("app/build.log", 300)],
                 steps=[BASE, COPY, RUN])
    assert context.find(stack) == []
