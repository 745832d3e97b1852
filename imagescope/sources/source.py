"""What every source is: `Source.resolve(ref) -> ImageHandle`, and what reading one may ask of
a layer store (`LayerStore`; `store.LayerCache` is one) and counts (`ReadStats`).

A handle is resolved once: the engine is asked, the archive indexed, the documents read and
checked, the platform chosen. Its `identity` is the image without its layers' entries, from
that alone; `image` reads the layers (those the store does not serve). One module per source
(`archive`, `oci`, `engine`) defines a `SOURCE`; `sources.SOURCES` names the module of each
kind of reference.
"""

from __future__ import annotations

import dataclasses
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Protocol, Self

from imagescope.errors import CorruptArchive
from imagescope.layer.fileio import Readable
from imagescope.limits import ReadLimits
from imagescope.model import Entry, Image, Layer
from imagescope.progress import Progress
from imagescope.sources.access import RegistryAccess
from imagescope.sources.manifests import Platform
from imagescope.sources.refs import SourceRef
from imagescope.sources.verify import DeferredChecks
from imagescope.sources.workers import Readers


@dataclass(frozen=True, slots=True)
class SavedLayer:
    """Where a layer sat in the engine's `docker save` archive, and what it was stored as."""

    key: str  # archive member (`blobs/sha256/<hex>`, `<v1 id>/layer.tar`)
    digest: str | None
    diff_id: str
    media_type: str | None
    stored_bytes: int


@dataclass(frozen=True, slots=True)
class SavedImage:
    """What an engine image's `docker save` told beyond its layers' entries."""

    config: bytes  # the image config document, as saved; sha256(config) == config_digest
    config_digest: str
    manifest_digest: str | None
    layers: tuple[SavedLayer, ...]


class LayerStore(Protocol):
    """Layer analyses kept by digest, and engine image records kept by image ID."""

    def get(self, diff_id: str | None, *, offset_base: int | None = None) -> list[Entry] | None:
        """The entries stored under `diff_id` (offsets rebased to `offset_base`), or None."""

    def put_later(self, diff_id: str | None, entries: list[Entry], *,
                  offset_base: int | None = None,
                  encoded: bytes | None = None) -> Callable[[], bool]:
        """A function that stores `entries` under `diff_id` when called."""

    def get_image(self, image_id: str | None) -> SavedImage | None:
        """The engine image record of `image_id`, or None."""

    def put_image(self, image_id: str | None, record: SavedImage) -> bool:
        """Store an engine image record."""


@dataclass(slots=True)
class ReadStats:
    """What loading cost: layers parsed from the source vs. layers served from the cache, and
    images whose whole report came from the cache.

    Counts are events: a cached layer read again for missing digests counts in both.
    `engine_saves` is the number of `docker save` streams, None when no engine was asked.
    """

    layers_read: int = 0
    layers_from_cache: int = 0
    engine_saves: int | None = None
    reports_from_cache: int = 0  # images answered by a stored report, no layer looked at
    layers_shared: int = 0  # layers of a second image served by the first one's read (diff)
    fetched: list[str] = field(default_factory=list)  # what was fetched from a registry, how
    fetched_bytes: int = 0

    def summary(self) -> str:
        """`layers: 2 read, 3 from cache` (`; reports from cache: N` when some were,
        `; engine saves streamed: N` for engine images)."""
        text = f"layers: {self.layers_read} read, {self.layers_from_cache} from cache"
        if self.reports_from_cache:
            text += f"; reports from cache: {self.reports_from_cache}"
        if self.layers_shared:
            text += f"; shared with the other image (read once): {self.layers_shared}"
        if self.engine_saves is not None:
            text += f"; engine saves streamed: {self.engine_saves}"
        if self.fetched:
            text += (f"; fetched from the registry: {len(self.fetched)} manifests and blobs, "
                     f"{self.fetched_bytes:,} bytes")
        return text


@dataclass(slots=True)
class Reuse:
    """How one read of a handle uses the layer store and what it counts.

    `only` is set when layers are read again for their digests: exactly those diff_ids are read
    from the source (never from the store) and stored; every other layer may be skipped.
    """

    cache: LayerStore | None = None
    stats: ReadStats = field(default_factory=ReadStats)
    only: frozenset[str] | None = None

    @classmethod
    def nothing(cls) -> Reuse:
        """A read that wants no layer's entries: each layer is located and left empty (what
        `ImageHandle.identity` reads)."""
        return cls(None, ReadStats(), only=frozenset())

    def wanted(self, diff_id: str | None) -> bool:
        """Whether this read needs the layer at all."""
        return self.only is None or diff_id in self.only

    def lookup(self, diff_id: str | None, *, offset_base: int | None = None) -> list[Entry] | None:
        """The stored entries, counted as served from the cache; None when they must be read."""
        entries = self.lookup_quietly(diff_id, offset_base=offset_base)
        if entries is not None:
            self.stats.layers_from_cache += 1
        return entries

    def lookup_quietly(self, diff_id: str | None, *,
                       offset_base: int | None = None) -> list[Entry] | None:
        """The stored entries, not yet counted (the caller counts them when it uses them)."""
        if self.cache is None or self.only is not None:
            return None
        return self.cache.get(diff_id, offset_base=offset_base)

    def read(self, diff_id: str | None, entries: list[Entry], *,
             offset_base: int | None = None) -> None:
        """A layer was parsed from the source: count it and store its entries."""
        self.read_later(diff_id, entries, offset_base=offset_base)()

    def read_later(self, diff_id: str | None, entries: list[Entry], *,
                   offset_base: int | None = None,
                   encoded: bytes | None = None) -> Callable[[], bool]:
        """`read`, counted now; the function returned stores the entries (once their blob
        is verified). `encoded`: the entries as `codec.encode_entries` made them already."""
        self.stats.layers_read += 1
        if self.cache is None:
            return _written_nothing
        return self.cache.put_later(diff_id, entries, offset_base=offset_base, encoded=encoded)


def _written_nothing() -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Request:
    """What a user asks of a source besides the reference.

    `pull` (missing | always | never) applies to the engine only; `platform` picks an image out
    of a multi-platform index and must match the image's config when given; `limits` bound
    decompression and ask for digest verification; `readers` decode compressed layers side by
    side; `registry` says how registries are reached. `run_layers` holds the layers read from
    a registry by this request (by the digest they were verified against), for a second image
    asked with it (a diff) not to fetch the layers it shares.
    """

    pull: str = "missing"
    platform: Platform | None = None
    progress: Progress = field(default_factory=Progress)
    limits: ReadLimits = field(default_factory=ReadLimits)
    readers: Readers = field(default_factory=Readers)
    registry: RegistryAccess = field(default_factory=RegistryAccess)
    run_layers: dict[str, list[Entry]] = field(default_factory=dict, compare=False, repr=False)


class ImageHandle(ABC):
    """One image, resolved once by its source; its layers read on demand."""

    def __init__(self, reference: str, request: Request) -> None:
        self.reference = reference
        self.request = request
        self.closed = False
        # resolves the same image again, for a re-read after `close` (set by `sources.resolve`)
        self.reopen: Callable[[], ImageHandle] | None = None

    @abstractmethod
    def identity(self, store: LayerStore | None = None) -> Image | None:
        """The image with every layer's entries empty, from what resolving it read: no layer
        is read and no document parsed again. None when that cannot be known without reading
        layers (an engine image `store` holds no record of)."""

    @abstractmethod
    def read(self, reuse: Reuse, later: DeferredChecks | None = None) -> Image:
        """The image with its layers' entries: served by `reuse` where it can, read otherwise.
        With `later`, the stored bytes of compressed blobs in files may be checked beside the
        decoding rather than in it (`verify.DeferredChecks`)."""

    def open_layer(self, index: int) -> AbstractContextManager[Readable]:
        """The tar of layer `index`, decompressed, read again from the source: what a file's
        content is read from (`cat`, `export`, `browse`)."""
        raise NotImplementedError

    def count_in(self, stats: ReadStats) -> None:
        """Note in `stats` what this source counts before anything is read (the engine: the
        `docker save` streams, none yet)."""

    def resolved_again(self, ref: SourceRef) -> SourceRef:
        """What a re-read after `close` resolves: `ref` (an engine image: its ID)."""
        return ref

    def close(self) -> None:
        """Let go of what the handle holds open (a file, an engine connection)."""
        self.closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def image(self, reuse: Reuse | None = None, later: DeferredChecks | None = None) -> Image:
        """`read`, and what comes with it: the image's `pending` checks (with `later` and
        verification; the caller settles them once done with the image, and must not trust
        what it made of the image before), and `reread` for layers served without digests.

        A lower blob that does not match is the error reported first; interrupted, the checks
        are stopped.
        """
        reuse = reuse or Reuse()
        later = later if self.request.limits.verify else None
        try:
            image = self.read(reuse, later)
        except Exception:
            if later is not None:
                later.settle()
            raise
        except BaseException:
            if later is not None:
                later.abandon()
            raise
        image.pending = later
        if any(layer.digests_incomplete for layer in image.layers):
            def reread(layers: list[Layer]) -> bool:
                return self.reread(image, layers, reuse)

            image.reread = reread
        return image

    def reread(self, image: Image, layers: list[Layer], reuse: Reuse) -> bool:
        """Read `layers` of `image` again with every content hashed, give their entries the
        digests and upgrade their cache entries (through this handle, or, once it is closed,
        one resolved again: an engine image is named by its ID then, so the same image is read
        even if its tag moved meanwhile).

        The entries stay the same objects unless the fresh read disagrees with them (a cache
        entry that was wrong for its diff_id): then they are replaced, and True says so.
        """
        wanted = frozenset(layer.diff_id for layer in layers if layer.diff_id is not None)
        again = Reuse(reuse.cache, reuse.stats, only=wanted)
        if self.closed and self.reopen is not None:
            with self.reopen() as handle:
                fresh = handle.read(again)
        else:
            fresh = self.read(again)
        by_diff_id = {layer.diff_id: layer for layer in fresh.layers if layer.diff_id in wanted}
        replaced = False
        for layer in layers:
            found = by_diff_id.get(layer.diff_id) if layer.diff_id is not None else None
            if found is None or found.digests_incomplete:
                raise CorruptArchive(f"{self.reference} changed while it was read: layer "
                                     f"{layer.index} ({layer.diff_id}) is no longer in it")
            if _same_entries(layer.entries, found.entries):
                for old, new in zip(layer.entries, found.entries, strict=True):
                    if old.digest is None:
                        old.digest = new.digest
            else:
                layer.entries = [dataclasses.replace(e) for e in found.entries]
                replaced = True
            layer.content_file = found.content_file
            layer.digests_incomplete = False
        return replaced


class Source(Protocol):
    """Resolves a reference of its kind to one image."""

    def resolve(self, ref: SourceRef, reference: str, request: Request) -> ImageHandle:
        """The handle of the image `ref` names (`reference` as the user wrote it); every
        failure is a typed ImagescopeError carrying one line for the user."""


def _same_entries(ours: list[Entry], fresh: list[Entry]) -> bool:
    return len(ours) == len(fresh) and all(
        (a.path, a.kind, a.size) == (b.path, b.kind, b.size) for a, b in zip(ours, fresh))


__all__ = ["ImageHandle", "LayerStore", "ReadStats", "Request", "Reuse", "SavedImage",
           "SavedLayer", "Source"]
