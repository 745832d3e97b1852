"""The files of an opened image: found as of a layer (`analysis.locate`), their bytes read
from the source on demand (`ImageHandle.open_layer`), checked against what the analysis saw.

A file's bytes come from the layer that wrote them: straight from the archive when that layer
is a plain tar in a seekable file (its entries know where each content starts), else from one
pass over the layer's tar up to the file. What is read must have the entry's size and, when
the analysis hashed the content, its digest: anything else is CorruptArchive.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import xxhash

from imagescope.analysis.locate import Located, locate, tree_as_of, where_of
from imagescope.analysis.overlay import Replay, Visible
from imagescope.errors import CorruptArchive, PathNotFound
from imagescope.layer.members import Wanted, read_members, wanted
from imagescope.model import Entry, EntryKind, Image, Layer
from imagescope.sources.source import ImageHandle

Sink = Callable[[bytes], None]
_CHUNK = 1 << 20
KEPT_TREES = 3  # trees as of a layer kept besides the final one


@dataclass(slots=True)
class ImageFiles:
    """`image` as loaded through `handle` (kept open while its files are read); `final` its
    replay, when the analysis made one already."""

    handle: ImageHandle
    image: Image
    final: Replay | None = None
    _trees: dict[int, Replay] = field(default_factory=dict)  # the last KEPT_TREES asked
    # threads (the browser's) share one handle: one read of a source at a time, one tree cache
    _reading: threading.Lock = field(default_factory=threading.Lock)
    _replaying: threading.RLock = field(default_factory=threading.RLock)

    def tree(self, layer: int | None) -> Replay:
        """The tree as of `layer` (None: the final image), replayed once while it is among
        the last few asked (a replay of a million entries holds a few hundred MB)."""
        with self._replaying:
            return self._tree(layer)

    def _tree(self, layer: int | None) -> Replay:
        last = len(self.image.layers) - 1
        if layer is None or layer == last:
            if self.final is None:
                self.final = tree_as_of(self.image.layers, None)
            return self.final
        found = self._trees.pop(layer, None)
        if found is None:
            found = tree_as_of(self.image.layers, layer)
        self._trees[layer] = found  # (the most recent last)
        while len(self._trees) > KEPT_TREES:
            del self._trees[next(iter(self._trees))]
        return found

    def locate(self, path: str, layer: int | None, *, follow_last: bool = True) -> Located:
        return locate(self.tree(layer), path, follow_last=follow_last, where=where_of(layer))

    def walk(self, top: Visible, layer: int | None) -> list[Visible]:
        """`top` and, for a directory, every name below it, parents first."""
        tree = self.tree(layer)
        found: list[Visible] = []
        stack = [top]
        while stack:
            name = stack.pop()
            found.append(name)
            if name.is_dir:
                stack.extend(reversed(tree.listdir(name.path)))
        return found

    def read(self, found: Visible, sink: Sink) -> None:
        """Feed the bytes `found` reaches to `sink`; PathNotFound when it reaches none."""
        self.read_all([(found, sink)])

    def read_all(self, wanted_files: Iterable[tuple[Visible, Sink]]) -> None:
        """`read` each file, one pass per layer at most."""
        by_layer: dict[int, list[tuple[Entry, Sink]]] = {}
        for found, sink in wanted_files:
            entry = found.content
            if entry is None or entry.kind is not EntryKind.FILE:
                raise PathNotFound(f"/{found.path}: not a regular file")
            by_layer.setdefault(found.content_layer, []).append((entry, sink))
        with self._reading:
            for index, files in sorted(by_layer.items()):
                self._read_layer(self.image.layers[index], files)

    def _read_layer(self, layer: Layer, files: list[tuple[Entry, Sink]]) -> None:
        label = f"layer {layer.index}"
        checked = [(entry, _Checked(entry, sink, f"{label}: /{entry.path}"))
                   for entry, sink in files]
        seekable = [(e, c) for e, c in checked if e.offset is not None and layer.content_file]
        streamed = [(e, c) for e, c in checked if e.offset is None or not layer.content_file]
        if seekable:
            assert layer.content_file is not None
            with open(layer.content_file, "rb") as file:
                for entry, check in seekable:
                    assert entry.offset is not None
                    _copy(file.fileno(), entry.offset, entry.size, check)
        if streamed:
            keys = wanted(layer, (entry for entry, _ in streamed))
            fed: dict[Wanted, list[Sink]] = {}
            for entry, check in streamed:  # (two names of one file: both fed)
                fed.setdefault(keys[id(entry)], []).append(check.feed)
            sinks = {key: _fan_out(feeds) for key, feeds in fed.items()}
            with self.handle.open_layer(layer.index) as tar:
                found = read_members(tar, sinks, label=label)
            missing = set(sinks) - found
            if missing:
                name = min(missing, key=_path_of).path
                raise CorruptArchive(f"{label}: /{name} is no longer in the layer")
        for _, check in checked:
            check.finish()


def _fan_out(sinks: list[Sink]) -> Sink:
    if len(sinks) == 1:
        return sinks[0]

    def feed(data: bytes) -> None:
        for sink in sinks:
            sink(data)

    return feed


def _path_of(item: Wanted) -> str:
    return item.path


class _Checked:
    """A sink that counts and hashes what passes, for `finish` to compare with the entry."""

    def __init__(self, entry: Entry, sink: Sink, label: str) -> None:
        self._entry = entry
        self._sink = sink
        self._label = label
        self._size = 0
        self._hash = xxhash.xxh3_128() if entry.digest is not None else None

    def feed(self, data: bytes) -> None:
        self._size += len(data)
        if self._size > self._entry.size:
            raise CorruptArchive(f"{self._label}: longer than the {self._entry.size:,} bytes "
                                 "the analysis read")
        if self._hash is not None:
            self._hash.update(data)
        self._sink(data)

    def finish(self) -> None:
        if self._size != self._entry.size:
            raise CorruptArchive(f"{self._label}: {self._size:,} bytes where the analysis "
                                 f"read {self._entry.size:,}")
        if self._hash is not None and self._hash.digest() != self._entry.digest:
            raise CorruptArchive(f"{self._label}: the content changed since it was analysed")


def _copy(fd: int, offset: int, size: int, check: _Checked) -> None:
    while size > 0:
        data = os.pread(fd, min(size, _CHUNK), offset)
        if not data:
            break
        check.feed(data)
        offset += len(data)
        size -= len(data)
