"""The rule tables' glob language and matcher, against a plain reference implementation."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imagescope.analysis.findings.tables import PathTable, alive_refs, glob_regex
from tests.stacks import file, hardlink, view, whiteout


def matches(glob: str, path: str) -> bool:
    return re.fullmatch(glob_regex(glob), path, re.DOTALL) is not None


@pytest.mark.parametrize(("glob", "path", "expected"), [
    ("var/lib/apt/lists/**", "var/lib/apt/lists/a", True),
    ("var/lib/apt/lists/**", "var/lib/apt/lists/partial/a", True),
    ("var/lib/apt/lists/**", "var/lib/apt/lists", False),  # below it, not the directory itself
    ("var/cache/apt/*.bin", "var/cache/apt/pkgcache.bin", True),
    ("var/cache/apt/*.bin", "var/cache/apt/x/pkgcache.bin", False),  # `*` stays in a component
    ("usr/lib/**/*.a", "usr/lib/libc.a", True),  # `**/` may be no directory at all
    ("usr/lib/**/*.a", "usr/lib/x/y/libc.a", True),
    ("**/.env", ".env", True),
    ("**/.env", "app/.env", True),
    ("**/.env", "app/x.env", False),
    ("~/.cache/pip/**", "root/.cache/pip/x", True),
    ("~/.cache/pip/**", "home/app/.cache/pip/x", True),
    ("~/.cache/pip/**", "home/.cache/pip/x", False),
    ("~/.cache/pip/**", "srv/.cache/pip/x", False),
    ("usr/{,local/}bin/{gcc,g++}{,-*}", "usr/bin/g++-12", True),
    ("usr/{,local/}bin/{gcc,g++}{,-*}", "usr/local/bin/gcc", True),
    ("usr/{,local/}bin/{gcc,g++}{,-*}", "usr/bin/gccgo", False),
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("file.txt", "fileXtxt", False),  # everything else is literal
])
def test_glob_language(glob: str, path: str, expected: bool) -> None:
    assert matches(glob, path) is expected


def test_anchored_rows_win_then_shallowest_floating_row_then_table_order() -> None:
    table = PathTable([("tests", "**/tests/**"), ("modules", "**/node_modules/**"),
                       ("logs", "**/*.log"), ("var", "var/**"), ("also-logs", "**/*.log")])
    assert table.subject("app/node_modules/x/tests/t.js") == "modules"  # shallower
    assert table.subject("app/tests/node_modules/x.js") == "tests"
    assert table.subject("var/tests/a.log") == "var"  # anchored first
    assert table.subject("a.log") == "logs"  # same depth: table order
    assert table.subject("app/main.py") is None


def test_exclusions_veto_any_row() -> None:
    table = PathTable([("lists", "var/lib/apt/lists/**"), ("env", "**/.env.*")],
                      exclude=["var/lib/apt/lists/lock", "**/.env.example"])
    assert table.subject("var/lib/apt/lists/lock") is None
    assert table.subject("var/lib/apt/lists/lock2") == "lists"
    assert table.subject("app/.env.example") is None
    assert table.subject("app/.env.local") == "env"


ROWS = [("a", "**/x/**"), ("b", "**/*.q"), ("c", "p/**"), ("d", "*/x/y"), ("e", "~/c/**"),
        ("f", "**/p?"), ("g", "**/x.q"), ("h", "{p,q}/*.q")]


def reference(rows: list[tuple[str, str]], path: str) -> str | None:
    """The documented order, tried one row at a time."""
    for subject, glob in rows:
        if not glob.startswith("**/") and matches(glob, path):
            return subject
    parts = path.split("/")
    for depth in range(len(parts)):
        rest = "/".join(parts[depth:])
        for subject, glob in rows:
            if glob.startswith("**/") and matches(glob[3:], rest):
                return subject
    return None


component = st.sampled_from(["x", "y", "p", "q", "c", "root", "home", "x.q", "pq", "a.q", "z"])


@settings(max_examples=400, deadline=None)
@given(st.lists(component, min_size=1, max_size=6))
def test_one_compiled_regex_agrees_with_the_row_by_row_reference(parts: list[str]) -> None:
    path = "/".join(parts)
    assert PathTable(ROWS).subject(path) == reference(ROWS, path)


def test_alive_refs_count_hardlinked_content_once_under_its_written_name() -> None:
    v = view([file("usr/bin/rustup", 900), hardlink("usr/bin/rustc", "usr/bin/rustup"),
              hardlink("usr/bin/cargo", "usr/bin/rustup"), file("usr/bin/other", 5)])
    linked = [f for f in v.live_files if f.path in ("usr/bin/cargo", "usr/bin/rustc")]
    assert [(r.path, r.bytes, r.layer_index) for r in alive_refs(v, linked)] == [
        ("/usr/bin/rustup", 900, 0)]


def test_alive_refs_keep_a_links_name_when_the_written_name_is_gone() -> None:
    v = view([file("a", 10), hardlink("b", "a")], [whiteout("a")])
    assert [(r.path, r.bytes, r.layer_index) for r in alive_refs(v, v.live_files)] == [
        ("/b", 10, 0)]
