"""The image as imagescope sees it: plain, source-independent records (no I/O)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Protocol


class EntryKind(IntEnum):
    """What a layer-tar entry does to the filesystem when the layer is applied."""

    FILE = 0  # regular file; the only kind that carries bytes
    HARDLINK = 1  # another name for an inode already seen (link_target)
    DIR = 2
    SYMLINK = 3
    SPECIAL = 4  # character/block device, FIFO
    WHITEOUT = 5  # `.wh.NAME`: `path` is the hidden NAME
    OPAQUE = 6  # `.wh..wh..opq`: `path` is the directory whose lower children are hidden


@dataclass(slots=True)
class Entry:
    """One tar entry. `path` is normalised: no leading `/` or `./`, no trailing `/`.

    `digest` is a content hash of a FILE (None until computed); `offset` is where the
    content starts in `Layer.content_file`, when the layer sits uncompressed in a seekable file;
    `content` holds the bytes of the few small files the findings read (see `capture`).
    """

    path: str
    kind: EntryKind
    size: int = 0
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    link_target: str | None = None
    digest: bytes | None = None
    offset: int | None = None
    content: bytes | None = None


@dataclass(slots=True)
class Layer:
    """A layer's entries in tar order plus what the source knows of the blob."""

    index: int
    entries: list[Entry]
    digest: str | None = None  # blob digest as stored (may be compressed)
    diff_id: str | None = None  # digest of the uncompressed tar, from the image config
    media_type: str | None = None
    stored_bytes: int | None = None  # blob size as stored (compressed size when compressed)
    content_file: str | None = None  # file holding the plain tar, for deferred digests
    # Served from a cache entry made by a seeking pass: some FILE digests may be missing with
    # no content_file to compute them from; `Image.reread` reads the layer again when needed.
    digests_incomplete: bool = False

    def added_bytes(self) -> int:
        """The content bytes the layer adds: the sizes of its FILE entries."""
        return sum(e.size for e in self.entries if e.kind is EntryKind.FILE)


@dataclass(frozen=True, slots=True)
class HistoryStep:
    """One entry of the image config's history (a Dockerfile step)."""

    created_by: str
    empty_layer: bool = False
    comment: str | None = None


@dataclass(frozen=True, slots=True)
class Provenance:
    """The SLSA provenance attestation BuildKit attached to an image: the in-toto statement
    as stored (`digest` names its blob), and its predicate type (`https://slsa.dev/provenance/…`)."""

    digest: str
    predicate_type: str
    statement: bytes = field(repr=False)


@dataclass(slots=True)
class Image:
    """An image read from a source: metadata, history and its layers bottom-up."""

    reference: str
    source: str  # engine | docker-archive | oci | oci-archive
    layers: list[Layer]
    history: list[HistoryStep] = field(default_factory=list)
    image_id: str | None = None  # config digest
    repo_digest: str | None = None  # manifest digest, when known
    platform: str | None = None  # os/arch[/variant]
    user: str | None = None  # config.User
    warnings: list[str] = field(default_factory=list)
    provenance: Provenance | None = None  # BuildKit's provenance attestation, when attached
    # Set by a source that served layers with `digests_incomplete`: reads those layers again
    # from the source, every content hashed, and gives their entries the digests; True when it
    # had to replace the entries instead (they disagreed with the source).
    reread: Callable[[list[Layer]], bool] | None = field(default=None, repr=False, compare=False)
    # Set by a load that left the digest checks of some blobs running (`sources.load`).
    pending: PendingChecks | None = field(default=None, repr=False, compare=False)


class PendingChecks(Protocol):
    """Checks of an image's blobs still running after the image was loaded."""

    def settle(self) -> None:
        """Wait for them; raise the first failure in layer order."""

    def abandon(self) -> None:
        """Stop them."""


def normalize_path(raw: str) -> str:
    """`./a`, `a`, `/a/` and `//a` are one path `a`; `..` cannot climb above the root."""
    if raw.startswith(("/", ".")) or "//" in raw or "/." in raw:  # else no "", "." or ".." part
        parts: list[str] = []
        for part in raw.split("/"):
            if part in ("", "."):
                continue
            if part == "..":
                if parts:
                    parts.pop()
                continue
            parts.append(part)
        return "/".join(parts)
    return raw.rstrip("/")
