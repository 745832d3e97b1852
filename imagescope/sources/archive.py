"""Archives on disk — `docker save` (legacy and Docker >= 25) and OCI archives — read seekably."""

from __future__ import annotations

import os
from collections.abc import Container, Iterator
from contextlib import contextmanager
from typing import BinaryIO

from imagescope.errors import CorruptArchive, NotAnImage, SourceNotFound
from imagescope.layer.tar import decompressed_chunks, sniff_compression
from imagescope.limits import ReadLimits
from imagescope.model import Image
from imagescope.progress import Progress
from imagescope.sources.blobs import (
    BlobSpan,
    Locate,
    Member,
    NotRegularFile,
    index_tar,
    missing_blob,
    open_regular,
    read_layers,
)
from imagescope.sources.manifests import (
    MAX_DOCUMENT_BYTES,
    LayerRef,
    Plan,
    Platform,
    docker_plan,
    oci_plan,
    to_image,
    verifying,
)
from imagescope.sources.refs import ARCHIVE, DOCKER_ARCHIVE, OCI_ARCHIVE, SourceRef
from imagescope.sources.stream import INDEX_JSON, MANIFEST_JSON, assemble, read_stream
from imagescope.sources.verify import DeferredChecks
from imagescope.store.cache import Reuse


def load(source: SourceRef, *, reference: str, platform: Platform | None,
         progress: Progress, reuse: Reuse | None = None,
         limits: ReadLimits | None = None, later: DeferredChecks | None = None) -> Image:
    """Read an archive tar: index its members, resolve the manifest, then read only its layers.

    The format is told by content unless the reference named it: `manifest.json` makes a
    `docker save` archive (Docker >= 25 ones also hold an OCI layout, read through
    manifest.json), `index.json` alone an OCI archive. `reuse` serves and stores layer analyses,
    `limits` guards the reads, `later` takes digest checks (see `blobs.read_layers`).
    """
    path = source.location
    try:
        file = open_regular(path)  # closed below, after every layer is read
    except FileNotFoundError:
        raise SourceNotFound(f"no such file: {path}") from None
    except IsADirectoryError:
        raise NotAnImage(f"{path} is a directory; an OCI layout directory is read with "
                         f"oci:{path}") from None
    except NotRegularFile:
        raise NotAnImage(f"{path} is not a regular file (a pipe, socket or device); save the "
                         "archive to a file first") from None
    except OSError as exc:
        raise SourceNotFound(f"cannot open {path}: {exc.strerror}") from None
    with file:
        compression = sniff_compression(file.read(4))
        file.seek(0)
        if compression in ("gzip", "zstd"):
            return _load_compressed(file, compression, source, reference=reference,
                                    platform=platform, progress=progress, reuse=reuse,
                                    limits=limits or ReadLimits())
        progress.status(f"indexing {path}")
        members = index_tar(file, path)
        kind = _kind(source.kind, members, path)
        plan = _plan(kind, file, members, path, source.selector, platform,
                     verify=(limits or ReadLimits()).verify)
        progress.status(f"reading {len(plan.layers)} layers")
        layers = read_layers(plan.layers, _locator(file, members, path), progress, reuse,
                             limits, later)
    return to_image(plan, layers, reference=reference, source=kind)


def _load_compressed(file: BinaryIO, compression: str, source: SourceRef, *, reference: str,
                     platform: Platform | None, progress: Progress, reuse: Reuse | None,
                     limits: ReadLimits) -> Image:
    """A gzip- or zstd-compressed archive (`docker save img | gzip`), as `docker load` reads
    it: decompressed as one stream, front to back, never written out; every layer is parsed as
    it passes (nothing can be skipped in a compressed stream) and its analysis cached by the
    same digests as when the archive is plain."""
    path = source.location
    progress.status(f"reading {path} ({compression})")
    size = os.fstat(file.fileno()).st_size
    chunks = decompressed_chunks(file, compression, path, progress.read_advanced, limits)
    saved = read_stream(chunks, name=path, size=size, progress=progress, limits=limits,
                        where=path, counted=True,
                        layers_wanted=reuse is None or reuse.only != frozenset())
    kind = _kind(source.kind, saved.documents, path)
    tag_form, name_form = ((f"docker-archive:{path}:REPO:TAG", f"docker-archive:{path}:@N")
                           if kind == DOCKER_ARCHIVE else
                           (f"oci-archive:{path}:NAME", "a manifest digest listed"))
    image, _ = assemble(saved, where=path, reference=reference, source_kind=kind,
                        platform=platform, selector=source.selector,
                        how_to_pick=f"pick one with {tag_form} or {name_form}",
                        reuse=reuse, limits=limits)
    return image


def _kind(asked: str, members: Container[str], path: str) -> str:
    if asked == DOCKER_ARCHIVE and MANIFEST_JSON not in members:
        raise NotAnImage(f"{path} is not a docker save archive (no manifest.json)")
    if asked == OCI_ARCHIVE and INDEX_JSON not in members:
        raise NotAnImage(f"{path} is not an OCI archive (no index.json)")
    if asked != ARCHIVE:
        return asked
    if MANIFEST_JSON in members:
        return DOCKER_ARCHIVE
    if INDEX_JSON in members:
        return OCI_ARCHIVE
    raise NotAnImage(f"{path} is a tar but not an image archive (no manifest.json nor index.json)")


def _plan(kind: str, file: BinaryIO, members: dict[str, Member], path: str,
          selector: str | None, platform: Platform | None, *, verify: bool) -> Plan:
    def read_member(name: str) -> bytes:
        member = members.get(name)
        if member is None:
            raise missing_blob(path, name)
        if member.size > MAX_DOCUMENT_BYTES:
            raise CorruptArchive(f"{path}: {name} is {member.size} bytes: too large for a JSON "
                                 "document")
        file.seek(member.offset)
        data = file.read(member.size)
        if len(data) != member.size:
            raise CorruptArchive(f"{path}: {name} is truncated")
        return data

    read = verifying(read_member) if verify else read_member
    oci_index = read(INDEX_JSON) if INDEX_JSON in members else None
    if kind == DOCKER_ARCHIVE:
        return docker_plan(read(MANIFEST_JSON), read, selector=selector, wanted=platform,
                           where=path, oci_index=oci_index,
                           how_to_pick=f"pick one with docker-archive:{path}:REPO:TAG or "
                                       f"docker-archive:{path}:@N")
    assert oci_index is not None
    try:
        return oci_plan(oci_index, read, selector=selector, wanted=platform, where=path,
                        how_to_pick=f"pick one with oci-archive:{path}:NAME, naming one "
                                    "listed (a name or a manifest digest)")
    except CorruptArchive as exc:
        if MANIFEST_JSON in members:  # Docker >= 25 lists only foreign layers in its manifest
            raise CorruptArchive(f"{exc}; this is a docker save archive: read it as "
                                 f"docker-archive:{path}") from None
        raise


def _locator(file: BinaryIO, members: dict[str, Member], path: str) -> Locate:
    @contextmanager
    def locate(ref: LayerRef) -> Iterator[BlobSpan]:
        member = members.get(ref.key)
        if member is None:
            raise missing_blob(path, ref.key)
        yield BlobSpan(file, member.offset, member.size, path)

    return locate


__all__ = ["load"]
