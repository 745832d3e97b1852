"""Hand-made layer stacks for the pure core: entries built directly, no tar involved."""

from __future__ import annotations

import hashlib

from imagescope.analysis.findings.view import ImageView
from imagescope.analysis.overlay import replay
from imagescope.model import Entry, EntryKind, HistoryStep, Image, Layer


def file(path: str, size: int, content: str | bytes = "") -> Entry:
    """A FILE of `size` bytes; equal `content` labels and sizes give equal digests.

    `content` as bytes is the file's captured content (`Entry.content`, see `capture`); `size`
    must then be its length.
    """
    if isinstance(content, bytes):
        assert size == len(content), f"{path}: size {size} != {len(content)} captured bytes"
        digest = hashlib.sha256(content).digest()[:16]
        return Entry(path, EntryKind.FILE, size=size, digest=digest, content=content)
    digest = hashlib.sha256(f"{content or path}:{size}".encode()).digest()[:16]
    return Entry(path, EntryKind.FILE, size=size, digest=digest)


def captured(path: str, content: bytes) -> Entry:
    """A FILE whose content was captured while streaming, sized by it."""
    return file(path, len(content), content)


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


def image(*layers: list[Entry], history: list[HistoryStep] | None = None,
          user: str | None = None) -> Image:
    return Image(reference="test", source="test",
                 layers=[Layer(index=i, entries=list(e)) for i, e in enumerate(layers)],
                 history=history or [], user=user)


def view(*layers: list[Entry], steps: list[str] | None = None,
         user: str | None = None) -> ImageView:
    """The finding rules' view of a stack; `steps` are history `created_by`s, one per layer."""
    img = image(*layers, history=[HistoryStep(s) for s in steps or []], user=user)
    return ImageView(img, replay(img.layers))
