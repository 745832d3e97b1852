"""Replay layers as an overlay filesystem applies them and record every byte made unreachable.

Rules (OCI image spec, "Representing Changes"):
- `.wh.NAME` hides NAME, and everything below it, in lower layers.
- `.wh..wh..opq` hides every lower-layer child of its directory, never the same layer's own
  entries: a layer's whiteouts are applied before its other entries.
- A non-directory at a path hides a lower directory there and everything below it; a directory
  over a lower directory merges; a directory over a lower non-directory replaces it.
- Within one layer a later entry for the same path replaces an earlier one.
- Hardlinks share content: bytes stay reachable while any name linked to them is visible.

Each piece of content (an inode: a FILE entry and the hardlinks to it) ends either visible in the
final filesystem or hidden exactly once, by the layer that removed its last visible name. It is
*overwritten* when that name was written again at the same path, *removed* otherwise (whiteout,
opaque whiteout, an ancestor replaced by a non-directory).

Pure: no I/O. Cost is linear in the number of entries; each node is hidden at most once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from enum import StrEnum
from typing import NamedTuple

from imagescope.model import Entry, EntryKind, Layer


class _Inode:
    __slots__ = ("entry", "layer_index", "names")

    def __init__(self, entry: Entry, layer_index: int) -> None:
        self.entry = entry
        self.layer_index = layer_index
        self.names = 1


class _Node:
    """A visible path: a directory (`children` is a dict) or a non-directory (`children` None)."""

    __slots__ = ("children", "entry", "inode", "layer_index")

    def __init__(self, children: dict[str, _Node] | None, inode: _Inode | None,
                 layer_index: int, entry: Entry | None) -> None:
        self.children = children
        self.inode = inode
        self.layer_index = layer_index
        self.entry = entry


class Hidden(NamedTuple):
    """Content that no visible name reaches any more.

    `entry` is the FILE entry that wrote the bytes; `replacement` is the FILE entry whose content
    took its path when it was overwritten by content (None for a removal or a non-file).
    """

    entry: Entry
    layer_index: int
    hidden_by: int
    overwritten: bool
    replacement: Entry | None


class HiddenHow(StrEnum):
    """Why content is unreachable: see overlay's module docstring."""

    REMOVED = "removed"
    OVERWRITTEN = "overwritten"
    IDENTICAL_REWRITE = "identical_rewrite"


def how_hidden(hidden: Hidden) -> HiddenHow:
    """An overwrite whose replacement has the same size and content digest is an identical rewrite."""
    if not hidden.overwritten:
        return HiddenHow.REMOVED
    replacement = hidden.replacement
    if (replacement is not None and replacement.size == hidden.entry.size
            and hidden.entry.digest is not None and replacement.digest == hidden.entry.digest):
        return HiddenHow.IDENTICAL_REWRITE
    return HiddenHow.OVERWRITTEN


class VisibleFile(NamedTuple):
    """A name in the final filesystem that reaches content (a FILE or a hardlink to one)."""

    path: str
    entry: Entry  # the FILE entry holding the content
    layer_index: int  # layer that wrote the content

    @property
    def bytes(self) -> int:
        return self.entry.size


class Visible(NamedTuple):
    """A name of the replayed tree: the entry that made it (None for a directory a deeper
    entry implied) and its layer; for a name reaching content, the FILE entry holding it and
    the layer that wrote it (another layer's, through a hardlink)."""

    path: str
    entry: Entry | None
    layer_index: int
    is_dir: bool
    content: Entry | None
    content_layer: int


class Replay:
    """The outcome of applying all layers: what was hidden, and the final tree."""

    def __init__(self, root: _Node, hidden: list[Hidden]) -> None:
        self._root = root
        self.hidden = hidden

    def lookup(self, path: str) -> Visible | None:
        """The name at normalised `path` (`""`: the root), not following symlinks."""
        node = _node_at(self._root, path)
        return _visible(path, node) if node is not None else None

    def listdir(self, path: str) -> list[Visible]:
        """The names in directory `path`, by name (empty when it is none)."""
        node = _node_at(self._root, path)
        children = (node.children if node is not None else None) or {}
        return [_visible(f"{path}/{name}" if path else name, children[name])
                for name in sorted(children)]

    def visible_files(self) -> Iterator[VisibleFile]:
        """Every visible name reaching content, depth first: a directory's own names (in
        descending order), then its subdirectories (in ascending order)."""
        stack: list[tuple[str, _Node]] = [("", self._root)]
        pop, push = stack.pop, stack.append
        while stack:
            prefix, node = pop()
            children = node.children
            assert children is not None
            for name in sorted(children, reverse=True):
                child = children[name]
                if child.children is not None:
                    push((f"{prefix}/{name}" if prefix else name, child))
                else:
                    inode = child.inode
                    if inode is not None:
                        # a non-directory node sits at its entry's path: reuse that string
                        # unless leading slashes make it longer than the walk's path
                        path = child.entry.path if child.entry is not None else ""
                        if len(path) != len(prefix) + len(name) + (1 if prefix else 0):
                            path = f"{prefix}/{name}" if prefix else name
                        yield VisibleFile(path, inode.entry, inode.layer_index)

    def final_bytes(self) -> int:
        """Bytes reachable in the final filesystem, each inode once."""
        seen: set[int] = set()
        total = 0
        for visible in self.visible_files():
            key = id(visible.entry)
            if key not in seen:
                seen.add(key)
                total += visible.entry.size
        return total


def _node_at(root: _Node, path: str) -> _Node | None:
    """The node at normalised `path` under `root` (`""`: the root), not following symlinks."""
    node = root
    if path:
        for part in path.split("/"):
            children = node.children
            child = children.get(part) if children is not None else None
            if child is None:
                return None
            node = child
    return node


def _visible(path: str, node: _Node) -> Visible:
    inode = node.inode
    return Visible(path, node.entry, node.layer_index, node.children is not None,
                   inode.entry if inode is not None else None,
                   inode.layer_index if inode is not None else -1)


def _split(path: str) -> tuple[str, str]:
    parent, _, name = path.rpartition("/")
    return parent, name


class _Replayer:
    def __init__(self) -> None:
        self.root = _Node({}, None, -1, None)
        self.hidden: list[Hidden] = []
        self._parent_cache: tuple[str, _Node] | None = None

    def lookup(self, path: str) -> _Node | None:
        """The visible node at path, not following symlinks."""
        return _node_at(self.root, path)

    def hide(self, top: _Node, hidden_by: int, replacement: Entry | None,
             overwritten: bool) -> None:
        """Detached `top` and its subtree lose their names; content left with none is hidden."""
        self._parent_cache = None
        stack = [top]
        while stack:
            node = stack.pop()
            if node.children is not None:
                stack.extend(node.children.values())
                continue
            inode = node.inode
            if inode is None:
                continue
            inode.names -= 1
            if inode.names == 0:
                at_path = node is top and overwritten
                self.hidden.append(Hidden(
                    entry=inode.entry,
                    layer_index=inode.layer_index,
                    hidden_by=hidden_by,
                    overwritten=at_path,
                    replacement=replacement if at_path else None,
                ))

    def apply_whiteout(self, entry: Entry, layer_index: int) -> None:
        parent_path, name = _split(entry.path)
        parent = self.lookup(parent_path)
        if parent is None or parent.children is None:
            return
        node = parent.children.pop(name, None)
        if node is not None:
            self.hide(node, layer_index, None, overwritten=False)

    def apply_opaque(self, entry: Entry, layer_index: int) -> None:
        directory = self.lookup(entry.path)
        if directory is None or not directory.children:
            return
        lower_children = directory.children
        directory.children = {}
        for node in lower_children.values():
            self.hide(node, layer_index, None, overwritten=False)

    def parent_dir(self, parent_path: str, layer_index: int) -> _Node:
        """The directory node at parent_path, creating missing directories on the way.

        A non-directory standing where a directory is needed is replaced (overwritten).
        """
        cached = self._parent_cache
        if cached is not None and cached[0] == parent_path:
            return cached[1]
        node = self.root
        if parent_path:
            for part in parent_path.split("/"):
                assert node.children is not None
                child = node.children.get(part)
                if child is None or child.children is None:
                    new = _Node({}, None, layer_index, None)
                    if child is not None:
                        self.hide(child, layer_index, None, overwritten=True)
                    node.children[part] = new
                    child = new
                node = child
        self._parent_cache = (parent_path, node)
        return node

    def apply_layer(self, entries: Sequence[Entry], layer_index: int) -> None:
        """`apply` every entry of a layer but its whiteouts, in order.

        A FILE at a name its parent does not hold yet (most entries) is placed here directly;
        everything else goes through `apply`.
        """
        file, directory, skip = EntryKind.FILE, EntryKind.DIR, _WHITEOUT_KINDS
        node, inode = _Node, _Inode
        for entry in entries:
            kind = entry.kind
            path = entry.path
            if kind in skip or not path:
                continue
            if kind is file or kind is directory:
                parent_path, _, name = path.rpartition("/")
                cached = self._parent_cache
                parent = (cached[1] if cached is not None and cached[0] == parent_path
                          else self.parent_dir(parent_path, layer_index))
                children = parent.children
                assert children is not None
                existing = children.get(name)
                if existing is None:
                    if kind is file:
                        children[name] = node(None, inode(entry, layer_index), layer_index,
                                              entry)
                    else:
                        new = children[name] = node({}, None, layer_index, entry)
                        if parent_path or name == path:  # (`/a` is not `a` to parent_dir)
                            self._parent_cache = (path, new)  # a tar lists its contents next
                    continue
                if kind is directory and existing.children is not None:
                    existing.layer_index = layer_index  # directories merge
                    existing.entry = entry
                    if parent_path or name == path:
                        self._parent_cache = (path, existing)
                    continue
            self.apply(entry, layer_index)

    def apply(self, entry: Entry, layer_index: int) -> None:
        parent_path, name = _split(entry.path)
        parent = self.parent_dir(parent_path, layer_index)
        assert parent.children is not None
        existing = parent.children.get(name)
        if entry.kind is EntryKind.DIR:
            if existing is not None and existing.children is not None:
                existing.layer_index = layer_index  # directories merge
                existing.entry = entry
                return
            new = _Node({}, None, layer_index, entry)
        else:
            inode: _Inode | None = None
            if entry.kind is EntryKind.FILE:
                inode = _Inode(entry, layer_index)
            elif entry.kind is EntryKind.HARDLINK and entry.link_target is not None:
                target = self.lookup(entry.link_target)
                if target is not None and target.inode is not None:
                    inode = target.inode
                    inode.names += 1
            new = _Node(None, inode, layer_index, entry)
        if existing is not None:
            replacement = new.inode.entry if new.inode is not None else None
            self.hide(existing, layer_index, replacement, overwritten=True)
            self._parent_cache = (parent_path, parent)
        parent.children[name] = new


_WHITEOUT_KINDS = frozenset({EntryKind.WHITEOUT, EntryKind.OPAQUE})


def replay(layers: Sequence[Layer]) -> Replay:
    """Apply `layers` bottom-up (list order) and return what was hidden and the final tree."""
    replayer = _Replayer()
    whiteout, opaque = EntryKind.WHITEOUT, EntryKind.OPAQUE
    for position, layer in enumerate(layers):
        entries = layer.entries
        for entry in entries:
            kind = entry.kind
            if kind is whiteout:
                replayer.apply_whiteout(entry, position)
            elif kind is opaque:
                replayer.apply_opaque(entry, position)
        replayer._parent_cache = None
        replayer.apply_layer(entries, position)
    return Replay(replayer.root, replayer.hidden)


def rewrite_candidates(result: Replay) -> list[Entry]:
    """FILE entries whose digest decides whether an overwrite rewrote identical content."""
    needed: list[Entry] = []
    for hidden in result.hidden:
        replacement = hidden.replacement
        if (replacement is not None and replacement.size == hidden.entry.size
                and hidden.entry.size > 0):
            needed.extend(e for e in (hidden.entry, replacement) if e.digest is None)
    return needed
