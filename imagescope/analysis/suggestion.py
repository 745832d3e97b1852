"""A suggested Dockerfile as data: its changes with the bytes each keeps out, and the unified
diff hunks that show it (pure). `suggest` makes one."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from imagescope.analysis.findings.model import FileRef, unique_refs

CONTEXT_LINES = 3  # of a unified diff hunk
NO_NEWLINE = "\n\\ No newline at end of file"  # ends a hunk line that ends its file


@dataclass(frozen=True, slots=True)
class Change:
    """One change: the original lines it rewrites (`(0, 0)` for the .dockerignore) and the
    file contents it keeps out of the image."""

    rule: str
    title: str
    lines: tuple[tuple[int, int], ...]  # the first: where its hunk is
    kept_out: tuple[FileRef, ...]
    whole_bytes: int | None = None  # what it saves, when that is no set of contents

    @property
    def saved_bytes(self) -> int:
        return self.whole_bytes if self.whole_bytes is not None else unique_bytes(self.kept_out)


@dataclass(frozen=True, slots=True)
class Suggestion:
    """The suggested Dockerfile (and .dockerignore) with the changes that make it."""

    path: str
    original: tuple[str, ...]
    rewritten: tuple[str, ...]
    dockerignore_path: str
    dockerignore_before: tuple[str, ...] | None  # None: there is none
    dockerignore_after: tuple[str, ...] | None  # None: unchanged
    changes: tuple[Change, ...]
    shipped_bytes: int  # file content the image ships today
    estimated_bytes: int  # … and would ship built from the suggestion (estimate)
    ends_with_newline: bool = True  # the Dockerfile's last line

    @property
    def keeps_last_line(self) -> bool:
        """Whether the rewrite ends on the Dockerfile's own last line (so, like it, without a
        newline when it had none; with lines added after it, the rewrite ends with one)."""
        return bool(self.original) and self.rewritten[-1:] == self.original[-1:]

    @property
    def rewritten_text(self) -> str:
        end = "" if not self.ends_with_newline and self.keeps_last_line else "\n"
        return "\n".join(self.rewritten) + end if self.rewritten else ""

    @property
    def saved_bytes(self) -> int:
        return self.shipped_bytes - self.estimated_bytes


@dataclass(frozen=True, slots=True)
class Hunk:
    """A unified-diff hunk; `changes` are those counted in it (each change in one hunk: the
    first its lines fall in)."""

    path: str
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    lines: tuple[str, ...]  # each starting with ' ', '-' or '+'
    changes: tuple[Change, ...]

    @property
    def saved_bytes(self) -> int:
        return unique_bytes(ref for change in self.changes for ref in change.kept_out) + sum(
            change.whole_bytes or 0 for change in self.changes)

    @property
    def header(self) -> str:
        return (f"@@ -{_span(self.old_start, self.old_count)} "
                f"+{_span(self.new_start, self.new_count)} @@")


def hunks(suggestion: Suggestion) -> list[Hunk]:
    """The Dockerfile's hunks, then the .dockerignore's."""
    counted: set[int] = set()
    old, new = suggestion.original, suggestion.rewritten
    if not suggestion.ends_with_newline and old:  # (the marker patch and git apply want)
        old = (*old[:-1], old[-1] + NO_NEWLINE)
        if suggestion.keeps_last_line:
            new = (*new[:-1], new[-1] + NO_NEWLINE)
    out = _hunks(suggestion.path, old, new,
                 [c for c in suggestion.changes if c.lines != ((0, 0),)], counted)
    if suggestion.dockerignore_after is not None:
        out += _hunks(suggestion.dockerignore_path, suggestion.dockerignore_before or (),
                      suggestion.dockerignore_after,
                      [c for c in suggestion.changes if c.lines == ((0, 0),)], counted, whole=True)
    return out


def _hunks(path: str, old: Sequence[str], new: Sequence[str], changes: list[Change],
           counted: set[int], *, whole: bool = False) -> list[Hunk]:
    """The diff's hunks; each change counted in the hunk its first lines fall in (else the
    first its other lines do), and only once (`counted`)."""
    matcher = difflib.SequenceMatcher(None, list(old), list(new), autojunk=False)
    groups = list(matcher.get_grouped_opcodes(CONTEXT_LINES))
    spans = [(group[0][1], group[-1][2]) for group in groups]  # old lines (first - 1, last)
    mine: list[list[Change]] = [[] for _ in groups]
    for change in changes:
        if id(change) in counted or not groups:
            continue
        where = [n for n, (first, last) in enumerate(spans)
                 if whole or (change.lines[0][0] <= last and change.lines[0][1] > first)]
        where = where or [n for n, (first, last) in enumerate(spans)
                          if any(a <= last and b > first for a, b in change.lines)]
        if where:
            counted.add(id(change))
            mine[where[0]].append(change)
    out = []
    for group, changed in zip(groups, mine, strict=True):
        lines: list[str] = []
        for tag, i1, i2, j1, j2 in group:
            if tag == "equal":
                lines += [" " + line for line in old[i1:i2]]
                continue
            lines += ["-" + line for line in old[i1:i2]]
            lines += ["+" + line for line in new[j1:j2]]
        i_first, i_last = group[0][1], group[-1][2]
        j_first, j_last = group[0][3], group[-1][4]
        out.append(Hunk(path, i_first + 1 if i_last > i_first else i_first, i_last - i_first,
                        j_first + 1 if j_last > j_first else j_first, j_last - j_first,
                        tuple(lines), tuple(changed)))
    return out


def _span(start: int, count: int) -> str:
    return str(start) if count == 1 else f"{start},{count}"


def unique_bytes(refs: Iterable[FileRef]) -> int:
    """The bytes of `refs`, each content once."""
    return sum(ref.bytes for ref in unique_refs(refs))
