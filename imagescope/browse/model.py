"""What the browser shows, from an analysis and the image's trees (pure: no terminal, no I/O).

Views of the file tree, both as of a selected layer N:
- the layer's own entries (`LayerTree`): each marked against the image below it — added,
  modified, identical rewrite (same size and content digest), removed (a whiteout; an opaque
  whiteout marks its directory);
- the image as of N (`ImageTree`): every name the layers up to N made; the ones layer N wrote
  marked as above, the others unchanged.
A file is *waste* when a later layer hides its content (the report's wasted files). Directory
sizes are the bytes of the files below them, each content once: at its file's own name
while that is visible, else at the first of its hardlinks sized. Filters: a glob on the absolute
path, only waste, only changes (what layer N wrote). Sorting: largest first, or by name.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from enum import StrEnum

from imagescope.analysis.overlay import Replay, Visible
from imagescope.analysis.report import Report, WastedFile
from imagescope.model import Entry, EntryKind, Image

MAX_MATCHES = 1000  # names a filtered view lists (the rest counted, not shown)


class Mark(StrEnum):
    ADDED = "added"
    MODIFIED = "modified"
    IDENTICAL = "identical rewrite"
    REMOVED = "removed"
    UNCHANGED = ""


MARK_SIGNS = {Mark.ADDED: "+", Mark.MODIFIED: "~", Mark.IDENTICAL: "=", Mark.REMOVED: "-",
              Mark.UNCHANGED: " "}


@dataclass(frozen=True, slots=True)
class Item:
    """A name of a tree view: `size` is a file's bytes, or a directory's files' bytes."""

    path: str  # normalised (no leading /)
    name: str
    is_dir: bool
    size: int
    mark: Mark
    waste: int  # bytes of it a later layer hides
    entry: Entry | None
    layer_index: int  # the layer that made the name (-1: implied by a deeper one)


@dataclass(frozen=True, slots=True)
class Filter:
    glob: str = ""
    only_waste: bool = False
    only_changes: bool = False
    by_name: bool = False

    @property
    def narrows(self) -> bool:
        return bool(self.glob) or self.only_waste or self.only_changes

    def keeps(self, item: Item) -> bool:
        """Whether a file or link (not a directory) passes."""
        if self.only_waste and not item.waste:
            return False
        if self.only_changes and item.mark is Mark.UNCHANGED:
            return False
        return not self.glob or _glob_matches(self.glob, "/" + item.path)


def _glob_matches(glob: str, path: str) -> bool:
    """`*.py` matches a name anywhere; a glob with a `/` the whole path (`*` crossing `/`)."""
    if "/" not in glob:
        return fnmatch.fnmatchcase(path.rpartition("/")[2], glob)
    return fnmatch.fnmatchcase(path, glob if glob.startswith(("/", "*")) else "/" + glob)


def sort_items(items: list[Item], by_name: bool) -> list[Item]:
    if by_name:
        return sorted(items, key=lambda item: item.name)
    return sorted(items, key=lambda item: (-item.size, item.name))


class Waste:
    """The report's wasted files, by the layer that wrote them and path."""

    def __init__(self, report: Report) -> None:
        self._bytes: dict[tuple[int, str], int] = {}
        for wasted in report.wasted_files:
            key = (wasted.layer_index, wasted.path.lstrip("/"))
            self._bytes[key] = self._bytes.get(key, 0) + wasted.bytes

    def of(self, layer_index: int, path: str) -> int:
        return self._bytes.get((layer_index, path), 0)


def _mark(entry: Entry | None, below: Replay | None, path: str) -> Mark:
    """How `entry` at `path` changes the tree `below` it."""
    if entry is not None and entry.kind in (EntryKind.WHITEOUT, EntryKind.OPAQUE):
        return Mark.REMOVED
    before = below.lookup(path) if below is not None else None
    if before is None:
        return Mark.ADDED
    if (entry is not None and entry.kind is EntryKind.FILE and before.content is not None
            and before.content.size == entry.size and entry.digest is not None
            and before.content.digest == entry.digest):
        return Mark.IDENTICAL
    if entry is not None and entry.kind is EntryKind.DIR and before.is_dir:
        return Mark.UNCHANGED  # a directory listed again: its files say what changed
    return Mark.MODIFIED


class ImageTree:
    """The image as of layer `layer`: `tree` its replay, `below` the one before it."""

    def __init__(self, tree: Replay, below: Replay | None, layer: int, waste: Waste) -> None:
        self._tree = tree
        self._below = below
        self._layer = layer
        self._waste = waste
        self._sizes: dict[str, tuple[int, int]] = {}
        self._claims: dict[int, str] = {}  # content whose file is gone → the link counting it

    def children(self, path: str, view: Filter) -> list[Item]:
        items = [self._item(name) for name in self._tree.listdir(path)]
        return sort_items(items, view.by_name)

    def _item(self, name: Visible) -> Item:
        size, waste = self._totals(name)
        if not name.is_dir and name.content is not None:  # a hardlink shows what it reaches
            size = name.content.size
            waste = self._waste.of(name.content_layer, name.content.path)
        mark = (_mark(name.entry, self._below, name.path) if name.layer_index == self._layer
                else Mark.UNCHANGED)
        return Item(name.path, name.path.rpartition("/")[2], name.is_dir, size, mark, waste,
                    name.entry, name.layer_index)

    def _totals(self, name: Visible) -> tuple[int, int]:
        if not name.is_dir:
            content = name.content
            if content is None or not self._counts_at(content, name.path):
                return 0, 0  # (a hardlink: its content counts at one name only)
            return content.size, self._waste.of(name.content_layer, content.path)
        found = self._sizes.get(name.path)
        if found is None:
            size = waste = 0
            for below in self._tree.listdir(name.path):
                more, wasted = self._totals(below)
                size += more
                waste += wasted
            found = self._sizes[name.path] = (size, waste)
        return found

    def _counts_at(self, content: Entry, path: str) -> bool:
        """Whether `path` is the one name that counts `content`: its file's own path while
        that is visible, else the first of its hardlinks sized."""
        if path == content.path:
            return True
        found = self._tree.lookup(content.path)
        if found is not None and found.content is content:
            return False
        return self._claims.setdefault(id(content), path) == path

    def matches(self, view: Filter) -> tuple[list[Item], int]:
        """The names `view` keeps (files and links, at most MAX_MATCHES), and how many."""
        found: list[Item] = []
        count = 0
        stack = [""]
        while stack:
            directory = stack.pop()
            for name in self._tree.listdir(directory):
                if name.is_dir:
                    stack.append(name.path)
                    continue
                item = self._item(name)
                if view.keeps(item):
                    count += 1
                    if len(found) < MAX_MATCHES:
                        found.append(item)
        return found, count


class LayerTree:
    """Layer `layer`'s own entries, marked against `below` (the image before it)."""

    def __init__(self, image: Image, layer: int, below: Replay | None, waste: Waste) -> None:
        self._by_dir: dict[str, dict[str, Item]] = {"": {}}
        self._below = below
        sizes: dict[str, list[int]] = {}
        for entry in image.layers[layer].entries:
            if not entry.path:
                continue
            is_dir = entry.kind is EntryKind.DIR or entry.kind is EntryKind.OPAQUE
            size = entry.size if entry.kind is EntryKind.FILE else 0
            wasted = waste.of(layer, entry.path) if entry.kind is EntryKind.FILE else 0
            item = Item(entry.path, entry.path.rpartition("/")[2], is_dir, size,
                        _mark(entry, below, entry.path), wasted, entry, layer)
            self._place(item, sizes)
        self._sizes = sizes

    def _place(self, item: Item, sizes: dict[str, list[int]]) -> None:
        parent = item.path.rpartition("/")[0]
        self._ensure(parent)
        siblings = self._by_dir[parent]
        previous = siblings.get(item.name)
        if item.is_dir:
            self._by_dir.setdefault(item.path, {})
            if previous is not None and previous.is_dir and item.mark is not Mark.REMOVED:
                return  # listed again (or implied first): keep it
        siblings[item.name] = item
        if not item.is_dir:
            part = parent
            while True:
                totals = sizes.setdefault(part, [0, 0])
                totals[0] += item.size - (previous.size if previous else 0)
                totals[1] += item.waste - (previous.waste if previous else 0)
                if not part:
                    break
                part = part.rpartition("/")[0]

    def _ensure(self, directory: str) -> None:
        if directory in self._by_dir:
            return
        parent, _, name = directory.rpartition("/")
        self._ensure(parent)
        self._by_dir[directory] = {}
        existed = self._below is not None and self._below.lookup(directory) is not None
        self._by_dir[parent].setdefault(name, Item(
            directory, name, True, 0, Mark.UNCHANGED if existed else Mark.ADDED, 0, None, -1))

    def children(self, path: str, view: Filter) -> list[Item]:
        items = [self._sized(item) for item in self._by_dir.get(path, {}).values()]
        return sort_items(items, view.by_name)

    def _sized(self, item: Item) -> Item:
        if not item.is_dir:
            return item
        size, waste = self._sizes.get(item.path, (0, 0))
        return Item(item.path, item.name, True, size, item.mark, waste, item.entry,
                    item.layer_index)

    def matches(self, view: Filter) -> tuple[list[Item], int]:
        found = [item for items in self._by_dir.values() for item in items.values()
                 if not item.is_dir and view.keeps(item)]
        found.sort(key=lambda item: item.path)
        return found[:MAX_MATCHES], len(found)


def ancestors(path: str) -> Iterator[str]:
    """The directories above `path`, from the root's child down."""
    parts = path.split("/")[:-1]
    for end in range(1, len(parts) + 1):
        yield "/".join(parts[:end])


def written_by(image: Image, path: str) -> list[tuple[int, Entry]]:
    """Every layer entry at `path`, bottom-up: who wrote (or removed) the name."""
    return [(layer.index, entry) for layer in image.layers for entry in layer.entries
            if entry.path == path]


def waste_rows(report: Report) -> list[WastedFile]:
    """The hidden files, most bytes first (as the report ranks them)."""
    return list(report.wasted_files)


def first(items: Iterable[Item], keep: Callable[[Item], bool]) -> Item | None:
    return next((item for item in items if keep(item)), None)
