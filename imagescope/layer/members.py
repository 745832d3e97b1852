"""The contents of chosen regular files of one layer tar, in one pass over its stream.

A member is chosen by its normalised path and its occurrence (`Wanted.occurrence`): a tar may
name a path more than once, the later entry replacing the earlier, and the analysis counts
both. Bytes are handed to the member's sink in chunks as they pass; no member is held whole.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable, Iterable, Mapping
from typing import IO, NamedTuple, cast

from imagescope.errors import CorruptArchive
from imagescope.layer.fileio import Readable
from imagescope.layer.tar import WHITEOUT_PREFIX, normalize_path
from imagescope.model import Entry, EntryKind, Layer

_CHUNK = 1 << 20
Sink = Callable[[bytes], None]


class Wanted(NamedTuple):
    """A FILE entry of the layer: its path and which of the entries at that path it is."""

    path: str
    occurrence: int


def wanted(layer: Layer, entries: Iterable[Entry]) -> dict[int, Wanted]:
    """How each of `entries` (FILEs of `layer`, by identity) is found again in the layer's tar,
    by `id(entry)`: one pass over the layer, however many are asked."""
    asked = {id(entry) for entry in entries}
    paths = {entry.path for entry in layer.entries if id(entry) in asked}
    found: dict[int, Wanted] = {}
    seen: dict[str, int] = {}
    for entry in layer.entries:
        if entry.path not in paths or entry.kind in _NOT_MEMBERS:
            continue
        occurrence = seen.get(entry.path, 0)
        seen[entry.path] = occurrence + 1
        if id(entry) in asked:
            found[id(entry)] = Wanted(entry.path, occurrence)
    if len(found) != len(asked):
        raise ValueError(f"not every entry asked for is an entry of layer {layer.index}")
    return found


def read_members(tar: Readable, sinks: Mapping[Wanted, Sink], *, label: str) -> set[Wanted]:
    """Feed each wanted member's content to its sink; the ones found."""
    found: set[Wanted] = set()
    seen: dict[str, int] = {}
    try:
        with tarfile.open(fileobj=cast(IO[bytes], tar), mode="r|") as archive:
            for info in archive:
                path = normalize_path(info.name)
                if path.rpartition("/")[2].startswith(WHITEOUT_PREFIX):
                    continue
                occurrence = seen.get(path, 0)
                seen[path] = occurrence + 1
                key = Wanted(path, occurrence)
                sink = sinks.get(key)
                if sink is None or not info.isreg():
                    continue
                file = archive.extractfile(info)
                assert file is not None
                while chunk := file.read(_CHUNK):
                    sink(chunk)
                found.add(key)
                if len(found) == len(sinks):
                    break
    except (tarfile.TarError, EOFError) as exc:
        raise CorruptArchive(f"{label}: {exc}") from None
    return found


_NOT_MEMBERS = frozenset({EntryKind.WHITEOUT, EntryKind.OPAQUE})
