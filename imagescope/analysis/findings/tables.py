"""Rule tables: path globs compiled into one regex per table, and the FileRefs of matched files.

The glob language of every table (paths are relative, no leading `/`):
- `*` any run of characters inside one path component, `?` one character;
- `**/` zero or more whole components, a trailing `/**` one or more (everything below);
- `{a,b,}` one of the comma-separated choices (an empty one included), not nested;
- a leading `~/` a home directory: `root/` or `home/<user>/`;
- anything else is literal.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from itertools import compress, repeat
from operator import attrgetter, is_not

from imagescope.analysis.findings.model import Category, FileRef, Finding, Severity, make_finding
from imagescope.analysis.findings.view import ImageView, LiveFile

_HOME = "(?:root|home/[^/]+)/"
_ANY_DIRS = "(?:[^/]+/)*"
_HOME_FIRST = ("root", "home")
_LITERAL_SPLIT = re.compile(r"\*\*/|/\*\*$|[*?]|\{[^}]*\}")


def glob_regex(pattern: str) -> str:
    """The regex text (unanchored) of one glob, in the language the module docstring states."""
    out: list[str] = []
    i = 0
    if pattern.startswith("~/"):
        out.append(_HOME)
        i = 2
    n = len(pattern)
    while i < n:
        if pattern.startswith("**/", i) and (i == 0 or pattern[i - 1] == "/"):
            out.append(_ANY_DIRS)
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == n:
            out.append("/.+")
            i += 3
        elif pattern[i] == "{":
            close = pattern.index("}", i)
            choices = pattern[i + 1:close].split(",")
            out.append("(?:" + "|".join(glob_regex(c) for c in choices) + ")")
            i = close + 1
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return "".join(out)


def choice(names: Iterable[str]) -> str:
    """`{a,b,c}`: a glob alternation of `names`, for tables built from name lists."""
    return "{" + ",".join(names) + "}"


class PathTable:
    """(subject, glob) rows, compiled once, giving a path its subject in one regex match.

    A path gets at most one subject. Rows anchored at the root are tried first, in table order;
    then rows starting with `**/`, the one matching at the shallowest directory winning (so
    `app/node_modules/x/tests/t.js` is node_modules, not tests), ties in table order. A path
    matching any `exclude` glob gets none.

    Anchored rows are filed by their first path component, so a path is only tried against the
    rows that can match it; rows starting with `**/` are only tried on a path holding a literal
    part of one of them. Most paths cost a dict lookup and a regex scan in C.
    """

    def __init__(self, rows: Iterable[tuple[str, str]], exclude: Iterable[str] = ()) -> None:
        by_first: dict[str, list[str]] = {}
        anywhere: list[str] = []  # anchored rows whose first component is a pattern
        floating: list[str] = []
        needles: list[str] = []  # per floating row, a literal every match contains
        every_anchored: list[str] = []  # each anchored row, unnamed, for the screen
        self._subjects: dict[str, str] = {}
        for number, (subject, glob) in enumerate(rows):
            group = f"g{number}"
            self._subjects[group] = subject
            if glob.startswith("**/"):
                body = glob[3:]
                floating.append(f"(?P<{group}>{glob_regex(body)}\\Z)")
                needles.append(max(_LITERAL_SPLIT.split(body), key=len))
                continue
            every_anchored.append(f"{glob_regex(glob)}\\Z")
            branch = f"(?P<{group}>{glob_regex(glob)}\\Z)"
            first = glob.split("/", 1)[0]
            if first == "~":
                for key in _HOME_FIRST:
                    by_first.setdefault(key, list(anywhere)).append(branch)
            elif any(c in first for c in "*?{"):
                anywhere.append(branch)
                for branches in by_first.values():
                    branches.append(branch)
            else:
                by_first.setdefault(first, list(anywhere)).append(branch)
        self._by_first = {key: _compile(branches) for key, branches in by_first.items()}
        self._other = _compile(anywhere) if anywhere else None
        # lazy: the shallowest directory where some row matches wins
        self._floating = (_compile([f"(?:[^/]+/)*?(?:{'|'.join(floating)})"]) if floating
                          else None)
        # a path containing none of the needles cannot match a floating row: one C-level scan
        self._needles = (None if not needles or "" in needles else
                         _compile([re.escape(n) for n in sorted(set(needles))]))
        excluded = [glob_regex(glob) + "\\Z" for glob in exclude]
        self._exclude = _compile(excluded) if excluded else None
        # a C-level call that lets most paths skip `subject`: for a table of anchored rows
        # only, one regex matching what any row matches; for one of floating rows only, the
        # needles (a table mixing both screens nothing)
        self._screen: Callable[[str], object] | None
        if not floating:
            self._screen = _compile(every_anchored).match if every_anchored else _never
        elif not every_anchored and self._needles is not None:
            self._screen = self._needles.search
        else:
            self._screen = None

    def subject(self, path: str) -> str | None:
        anchored = self._by_first.get(path.partition("/")[0], self._other)
        match = anchored.match(path) if anchored is not None else None
        if match is None and self._floating is not None and (
                self._needles is None or self._needles.search(path)):
            match = self._floating.match(path)
        if match is None:
            return None
        if self._exclude is not None and self._exclude.match(path):
            return None
        group = match.lastgroup
        assert group is not None
        return self._subjects[group]

    def matching(self, files: Iterable[LiveFile]) -> Iterable[LiveFile]:
        """`files` less most of those no row matches (in order): what `subject` must look at."""
        if self._screen is None:
            return files
        files = files if isinstance(files, list) else list(files)
        return compress(files, map(self._screen, map(_PATH, files)))

    def may_match(self, path: str) -> bool:
        """False for most paths no row matches, True for every path a row matches."""
        return self._screen is None or self._screen(path) is not None

    def may_match_each(self, paths: Iterable[str]) -> Iterator[bool]:
        """`may_match` of each path, in a C-level loop."""
        if self._screen is None:
            return map(_always, paths)
        return map(is_not, map(self._screen, paths), repeat(None))

    def group(self, files: Iterable[LiveFile]) -> dict[str, list[LiveFile]]:
        """The files each subject matches, in the files' order; subjects without a file absent."""
        found: dict[str, list[LiveFile]] = {}
        subject_of = self.subject
        for live in self.matching(files):
            subject = subject_of(live.path)
            if subject is not None:
                found.setdefault(subject, []).append(live)
        return found


def _compile(branches: list[str]) -> re.Pattern[str]:
    return re.compile("|".join(branches), re.DOTALL)


def _never(path: str) -> None:
    """The screen of a table without rows."""


def _always(path: str) -> bool:
    return True


_PATH = attrgetter("path")


def alive_refs(view: ImageView, files: Iterable[LiveFile]) -> list[FileRef]:
    """One FileRef per content among `files`, for files alive in the final image.

    Hardlinked names of one content count once, under the name the content was written as when
    that name is still visible (so two rules matching different names of it agree on the key);
    otherwise under the first of the names given.
    """
    refs: list[FileRef] = []
    seen: set[int] = set()
    by_path: dict[str, LiveFile] | None = None
    for live in files:
        entry = live.entry
        if id(entry) in seen:
            continue
        seen.add(id(entry))
        path = live.path
        if path != entry.path:  # a hardlink's name
            if by_path is None:
                by_path = view.live_by_path
            original = by_path.get(entry.path)
            if original is not None and original.entry is entry:
                path = entry.path
        refs.append(FileRef("/" + path, entry.size, live.layer_index))
    return refs


def severity_by_bytes(nbytes: int, *, high_from: int) -> Severity:
    """MEDIUM, or HIGH from `high_from` bytes."""
    return Severity.HIGH if nbytes >= high_from else Severity.MEDIUM


def step_label(view: ImageView, layer: int) -> str:
    """`layer 3 (RUN)`: a step by number and keyword.

    Arguments are left to the renderers' layer table: they can be kilobytes long, and may hold
    what a finding must not print (`RUN echo TOKEN=… > .env`).
    """
    text = view.instructions[layer] if layer < len(view.instructions) else None
    return f"layer {layer} ({text.split(' ', 1)[0]})" if text else f"layer {layer}"


def steps_text(view: ImageView, layers: Sequence[int]) -> str:
    """`layer 3 (RUN), layer 5 (COPY)` for the steps named in a detail line."""
    return ", ".join(step_label(view, i) for i in layers)


def grouped_findings(view: ImageView, table: PathTable, *, rule: str, category: Category,
                     labels: Mapping[str, str], severity: Callable[[int], Severity],
                     where: str = "in the final image", why: str = "") -> list[Finding]:
    """One removable finding per table subject whose live files hold bytes."""
    findings = []
    for subject, files in sorted(table.group(view.live_files).items()):
        refs = alive_refs(view, files)
        total = sum(r.bytes for r in refs)
        if total == 0:
            continue
        layers = tuple(sorted({r.layer_index for r in refs}))
        findings.append(make_finding(
            rule=rule, category=category, severity=severity(total),
            title=f"{labels.get(subject, subject)} {where}: {len(refs)} file(s)",
            subject=subject, files=refs, removable=True,
            detail=f"written by {steps_text(view, layers)}" + (f"; {why}" if why else ""),
        ))
    return findings
