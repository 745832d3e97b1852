"""What a build stage would hand a runtime stage: the directories the image's own steps filled
with results, not with the toolchain, package caches, docs or package-manager state (pure).

A result is a file alive in the final image that an own step wrote and no toolchain, cache or
docs finding names, outside the package manager's and the system's scratch places (`STATE`).
Its root is its highest directory holding results only: no other live file, none of the base
image's (its layers below the history's FROM boundary; the bottom layer when none is known). `COPY --from=build ROOT ROOT` then copies results and nothing else, and ships exactly
the root's live bytes (each content once). Roots are only worked out when a toolchain was
found: a two-stage build is what they are for; and none when an own step did what copying the
roots would not redo (deleted, linked, made a directory outside them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from imagescope.analysis.findings.model import Category, Finding
from imagescope.analysis.findings.tables import PathTable
from imagescope.analysis.findings.view import ImageView
from imagescope.model import EntryKind

# Written by package managers and builds, read by neither the program nor a runtime stage.
STATE = PathTable([("state", glob) for glob in (
    "var/lib/dpkg/**", "var/lib/apt/**", "var/lib/apk/**", "lib/apk/**", "var/lib/rpm/**",
    "var/cache/**", "var/log/**", "tmp/**", "var/tmp/**", "etc/ld.so.cache", "~/.cache/**",
    "usr/lib/sysimage/**",
)])
NOT_RESULTS = frozenset({Category.TOOLCHAIN, Category.PACKAGE_CACHE, Category.DOCS})


@dataclass(frozen=True, slots=True)
class ResultRoot:
    """A directory (or file) of results: `COPY --from=build PATH PATH` ships `bytes`."""

    path: str  # absolute
    bytes: int
    files: int


def result_roots(view: ImageView, findings: Iterable[Finding]) -> tuple[ResultRoot, ...]:
    """The roots of the own steps' results, by path; none without a toolchain finding."""
    found = list(findings)
    if not any(f.category is Category.TOOLCHAIN for f in found):
        return ()
    left_out = {ref.key for f in found if f.category in NOT_RESULTS for ref in f.files}
    base = max(view.base_layers, 1)  # (unknown: the bottom layer is a base's root filesystem)
    results = []
    mixed: set[str] = {""}  # directories holding a live file that is no result
    for live in view.live_files:
        if live.layer_index >= base and (live.layer_index, "/" + live.path) not in left_out \
                and STATE.subject(live.path) is None:
            results.append(live)
            continue
        parts = live.path.split("/")
        for depth in range(len(parts)):
            mixed.add("/".join(parts[:depth]))
    roots: dict[str, list[int]] = {}  # path → [bytes, files]
    contents: set[tuple[str, int, int]] = set()  # (root, layer, FILE entry): once per root
    for live in results:
        parts = live.path.split("/")
        root = next(("/".join(parts[:depth]) for depth in range(1, len(parts))
                     if "/".join(parts[:depth]) not in mixed), live.path)
        counts = roots.setdefault(root, [0, 0])
        content = (root, live.layer_index, id(live.entry))
        if content not in contents:
            contents.add(content)
            counts[0] += live.bytes
        counts[1] += 1
    if _left_outside(view, base, set(roots), mixed):
        return ()
    return tuple(ResultRoot("/" + path, nbytes, files)
                 for path, (nbytes, files) in sorted(roots.items()))


def _left_outside(view: ImageView, base: int, roots: set[str], mixed: set[str]) -> bool:
    """Whether an own step did something outside the roots that copying them would not redo:
    a deletion, a symlink, a device, a hardlink, a directory of its own."""
    def covered(path: str) -> bool:
        return any(path == root or path.startswith(root + "/") for root in roots)

    for layer in view.image.layers[base:]:
        for entry in layer.entries:
            if entry.kind is EntryKind.FILE or covered(entry.path):
                continue
            if entry.kind is EntryKind.DIR and (entry.path in mixed or any(
                    root.startswith(entry.path + "/") for root in roots)):
                continue
            return True
    return False
