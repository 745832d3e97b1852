"""Hand-made layer stacks for the pure core: entries built directly, no tar involved."""

from __future__ import annotations

import hashlib

from imagescope.model import Entry, EntryKind, HistoryStep, Image, Layer


def file(path: str, size: int, content: str = "") -> Entry:
    """A FILE of `size` bytes; equal `content` labels and sizes give equal digests."""
    digest = hashlib.sha256(f"{content or path}:{size}".encode()).digest()[:16]
    return Entry(path, EntryKind.FILE, size=size, digest=digest)


def directory(path: str) -> Entry:
    return Entry(path, EntryKind.DIR, mode=0o755)


def hardlink(path: str, target: str) -> Entry:
    return Entry(path, EntryKind.HARDLINK, link_target=target)


def symlink(path: str, target: str) -> Entry:
    return Entry(path, EntryKind.SYMLINK, link_target=target)


def whiteout(path: str) -> Entry:
    return Entry(path, EntryKind.WHITEOUT)


def opaque(directory_path: str) -> Entry:
    return Entry(directory_path, EntryKind.OPAQUE)


def image(*layers: list[Entry], history: list[HistoryStep] | None = None) -> Image:
    return Image(reference="test", source="test",
                 layers=[Layer(index=i, entries=list(e)) for i, e in enumerate(layers)],
                 history=history or [])
