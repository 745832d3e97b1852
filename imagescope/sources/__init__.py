"""Image sources: a reference → one Image, from the engine, an archive or an OCI layout."""

from __future__ import annotations

import dataclasses
from functools import partial

from imagescope.errors import CorruptArchive, UsageError
from imagescope.limits import ReadLimits
from imagescope.model import Entry, Image, Layer
from imagescope.progress import Progress
from imagescope.sources import archive, oci
from imagescope.sources.manifests import Platform
from imagescope.sources.refs import ENGINE, OCI, SourceRef, parse_ref
from imagescope.sources.verify import DeferredChecks
from imagescope.store.cache import LayerCache, ReadStats, Reuse

PULL_POLICIES = ("missing", "always", "never")


def load(ref: str, *, pull: str = "missing", platform: str | None = None,
         progress: Progress | None = None, cache: LayerCache | None = None,
         stats: ReadStats | None = None, limits: ReadLimits | None = None,
         later: DeferredChecks | None = None) -> Image:
    """Read the image `ref` names (see `refs.parse_ref` for the forms).

    `pull` (missing | always | never) applies to the engine only; `platform` (`os/arch[/variant]`)
    picks an image out of a multi-platform index and must match the image's config when given.
    With `cache`, layers whose diff_id it holds are not read from the source, and layers read are
    stored in it; `stats` counts both. `limits` bounds decompression and asks for digest
    verification (default: `ReadLimits()`). Every failure is a typed ImagescopeError carrying
    one line for the user.

    With `later` (and `limits.verify`), the stored bytes of compressed blobs in files are
    checked beside the decoding rather than in it (`verify.DeferredChecks`), and the image
    comes back with `pending` set: the caller settles it (or abandons it) once done with the
    image, and must not trust what it made of the image before. Such layers are stored in
    `cache` only once their blob matched.
    """
    source, wanted, sink = _asked(ref, pull, platform, progress)
    reuse = Reuse(cache, stats if stats is not None else ReadStats())
    limits = limits or ReadLimits()
    later = later if limits.verify else None
    try:
        image = _load(source, ref, pull, wanted, sink, reuse, limits, later)
    except Exception:
        if later is not None:
            later.settle()  # a lower blob that does not match is the error to report first
        raise
    except BaseException:  # interrupted: no error to report, the child is stopped
        if later is not None:
            later.abandon()
        raise
    image.pending = later
    if any(layer.digests_incomplete for layer in image.layers):
        image.reread = partial(_reread, image, source, ref, wanted, sink, reuse, limits)
    return image


def identify(ref: str, *, pull: str = "missing", platform: str | None = None,
             progress: Progress | None = None, cache: LayerCache,
             stats: ReadStats | None = None, limits: ReadLimits | None = None) -> Image | None:
    """The image `load` would return, every layer's entries left empty, without reading a
    layer: from the archive's or layout's documents (verified per `limits`), or for an engine
    image from its metadata and the image record in `cache` (None when there is none; `stats`
    then counts the engine as asked, no save streamed yet).

    Fails as `load` fails on a missing image or broken documents.
    """
    source, wanted, sink = _asked(ref, pull, platform, progress)
    if source.kind == ENGINE:
        from imagescope.sources import engine

        if stats is not None and stats.engine_saves is None:
            stats.engine_saves = 0
        return engine.identify(source, reference=ref, pull=pull, platform=wanted,
                               progress=sink, cache=cache)
    nothing = Reuse(None, ReadStats(), only=frozenset())
    return _load(source, ref, pull, wanted, sink, nothing, limits or ReadLimits())


def _asked(ref: str, pull: str, platform: str | None, progress: Progress | None
           ) -> tuple[SourceRef, Platform | None, Progress]:
    """The source, platform and progress sink a load or an identification asks for."""
    if pull not in PULL_POLICIES:
        raise UsageError(f"--pull {pull!r}: expected one of {', '.join(PULL_POLICIES)}")
    wanted = Platform.parse(platform) if platform else None
    return parse_ref(ref), wanted, progress or Progress()


def _load(source: SourceRef, ref: str, pull: str, platform: Platform | None, progress: Progress,
          reuse: Reuse, limits: ReadLimits, later: DeferredChecks | None = None) -> Image:
    if source.kind == ENGINE:
        from imagescope.sources import engine  # the Docker SDK is imported only when needed

        return engine.load(source, reference=ref, pull=pull, platform=platform,
                           progress=progress, reuse=reuse, limits=limits)
    if source.kind == OCI:
        return oci.load(source, reference=ref, platform=platform, progress=progress, reuse=reuse,
                        limits=limits, later=later)
    return archive.load(source, reference=ref, platform=platform, progress=progress, reuse=reuse,
                        limits=limits, later=later)


def _reread(image: Image, source: SourceRef, ref: str, platform: Platform | None,
            progress: Progress, reuse: Reuse, limits: ReadLimits, layers: list[Layer]) -> bool:
    """Read `layers` of `image` again from its source with every content hashed, give their
    entries the digests and upgrade their cache entries. An engine image is named by its ID, so
    the same image is streamed even if its tag moved meanwhile.

    The entries stay the same objects unless the fresh read disagrees with them (a cache entry
    that was wrong for its diff_id): then they are replaced, and True says so.
    """
    wanted = frozenset(layer.diff_id for layer in layers if layer.diff_id is not None)
    again = Reuse(reuse.cache, reuse.stats, only=wanted)
    if source.kind == ENGINE and image.image_id:
        source = SourceRef(ENGINE, image.image_id)
    fresh = _load(source, ref, "never", platform, progress, again, limits)
    by_diff_id = {layer.diff_id: layer for layer in fresh.layers if layer.diff_id in wanted}
    replaced = False
    for layer in layers:
        found = by_diff_id.get(layer.diff_id) if layer.diff_id is not None else None
        if found is None or found.digests_incomplete:
            raise CorruptArchive(f"{ref} changed while it was read: layer {layer.index} "
                                 f"({layer.diff_id}) is no longer in it")
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


def _same_entries(ours: list[Entry], fresh: list[Entry]) -> bool:
    return len(ours) == len(fresh) and all(
        (a.path, a.kind, a.size) == (b.path, b.kind, b.size) for a, b in zip(ours, fresh))


__all__ = ["PULL_POLICIES", "identify", "load"]
