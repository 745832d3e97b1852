"""A path as of a layer → the name there and the layer entry holding its bytes (pure).

Rules:
- "As of layer N" is the tree after applying layers 0..N (the final image: all of them); a file
  a later layer deleted or overwrote is still there as of the layers before.
- Paths are normalised as layer tars' names are (`model.normalize_path`): `..` cannot climb above
  the root.
- Symlinks are followed inside the image only, as the kernel follows them in a container whose
  root is the image: an absolute target starts at the image's root, a `..` in a target climbs
  from where the links before it lead (not from their names), and never above the root; at
  most 40 of them (ELOOP), and the last component only when asked (`cat` does, `export` does
  not).
- A hardlink's bytes are those of the FILE it links to, in whichever layer wrote them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from imagescope.analysis.overlay import Replay, Visible, replay
from imagescope.errors import PathNotFound, UsageError
from imagescope.model import EntryKind, Layer, normalize_path

MAX_SYMLINKS = 40  # Linux's limit on symlinks followed in one lookup


def tree_as_of(layers: Sequence[Layer], layer: int | None) -> Replay:
    """The replay of `layers` up to `layer` (None: all)."""
    if layer is None:
        return replay(layers)
    if not 0 <= layer < len(layers):
        raise UsageError(f"--layer {layer}: the image has layers 0 to {len(layers) - 1}")
    return replay(layers[:layer + 1])


@dataclass(frozen=True, slots=True)
class Located:
    """`asked` as the user wrote it, normalised; `found` the name it reached."""

    asked: str
    found: Visible


def locate(tree: Replay, path: str, *, follow_last: bool, where: str) -> Located:
    """The name `path` reaches in `tree`; PathNotFound (naming `where`) when none."""
    asked = normalize_path(path)
    found = _resolve(tree, asked, follow_last, where)
    return Located(asked, found)


def _resolve(tree: Replay, path: str, follow_last: bool, where: str) -> Visible:
    pending = [part for part in path.split("/") if part] if path else []
    done: list[str] = []
    hops = 0
    while pending:
        part = pending.pop(0)
        if part in ("", "."):
            continue
        if part == "..":  # from where the links so far really lead, as the kernel climbs
            if done:
                done.pop()
            continue
        candidate = "/".join([*done, part])
        found = tree.lookup(candidate)
        if found is None:
            raise PathNotFound(f"/{path}: no such file {where}")
        entry = found.entry
        last = not pending
        if (entry is not None and entry.kind is EntryKind.SYMLINK and not found.is_dir
                and (follow_last or not last)):
            hops += 1
            if hops > MAX_SYMLINKS:
                raise PathNotFound(f"/{path}: too many levels of symbolic links {where}")
            target = entry.link_target or ""
            if target.startswith("/"):
                done = []  # the image's root
            pending = target.split("/") + pending  # (relative: from the link's directory)
            continue
        if not last and not found.is_dir:
            raise PathNotFound(f"/{path}: not a directory {where}")
        done.append(part)
    found = tree.lookup("/".join(done))
    if found is None:  # (the root always is)
        raise PathNotFound(f"/{path}: no such file {where}")
    return found


def where_of(layer: int | None) -> str:
    """How errors say which tree they looked in."""
    return "in the final image" if layer is None else f"as of layer {layer}"
