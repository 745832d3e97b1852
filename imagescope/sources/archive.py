"""Archives on disk — `docker save` (legacy and Docker >= 25) and OCI archives — read seekably."""

from __future__ import annotations

import os
from collections.abc import Container, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import BinaryIO

from imagescope.errors import CorruptArchive, NotAnImage, SourceNotFound
from imagescope.layer.compression import decompressed_chunks, sniff_compression
from imagescope.layer.fileio import Readable, uncounted
from imagescope.model import Image
from imagescope.sources.blobs import (
    BlobSpan,
    Member,
    NotRegularFile,
    SeekableImage,
    index_tar,
    missing_blob,
    open_regular,
)
from imagescope.sources.manifests import (
    MAX_DOCUMENT_BYTES,
    LayerRef,
    Plan,
    Platform,
    docker_plan,
    oci_plan,
    verifying,
)
from imagescope.sources.refs import ARCHIVE, DOCKER_ARCHIVE, OCI_ARCHIVE, SourceRef
from imagescope.sources.source import ImageHandle, LayerStore, Request, Reuse
from imagescope.sources.stream import (
    INDEX_JSON,
    MANIFEST_JSON,
    StreamedLayers,
    assemble,
    read_stream,
)
from imagescope.sources.verify import DeferredChecks


class ArchiveSource:
    """Archive tars: `docker save` (legacy and Docker >= 25) and OCI archives, plain or
    gzip/zstd-compressed."""

    def resolve(self, ref: SourceRef, reference: str, request: Request) -> ImageHandle:
        """Open the archive; a plain one is indexed and its documents resolved now."""
        file = _open(ref.location)
        try:
            compression = sniff_compression(file.read(4))
            file.seek(0)
            if compression in ("gzip", "zstd"):
                return CompressedArchive(file, compression, ref, reference, request)
            return PlainArchive(file, ref, reference, request)
        except BaseException:
            file.close()
            raise


class PlainArchive(SeekableImage):
    """An archive read seekably: its members indexed and its manifest resolved once, then only
    its layers read (`blobs.read_layers`).

    The format is told by content unless the reference named it: `manifest.json` makes a
    `docker save` archive (Docker >= 25 ones also hold an OCI layout, read through
    manifest.json), `index.json` alone an OCI archive.
    """

    def __init__(self, file: BinaryIO, ref: SourceRef, reference: str, request: Request) -> None:
        super().__init__(reference, request)
        self._file = file
        self._path = path = ref.location
        request.progress.status(f"indexing {path}")
        self._members = index_tar(file, path)
        self.kind = _kind(ref.kind, self._members, path)
        self.plan = _plan(self.kind, file, self._members, path, ref.selector, request.platform,
                          verify=request.limits.verify)

    @contextmanager
    def locate(self, ref: LayerRef) -> Iterator[BlobSpan]:
        member = self._members.get(ref.key)
        if member is None:
            raise missing_blob(self._path, ref.key)
        yield BlobSpan(self._file, member.offset, member.size, self._path)

    def close(self) -> None:
        self._file.close()
        super().close()


class CompressedArchive(ImageHandle):
    """A gzip- or zstd-compressed archive (`docker save img | gzip`), as `docker load` reads
    it: decompressed as one stream, front to back, never written out; every layer is parsed as
    it passes (nothing can be skipped in a compressed stream) and its analysis cached by the
    same digests as when the archive is plain. Its documents come only with a pass: `identity`
    makes one that parses no layer."""

    def __init__(self, file: BinaryIO, compression: str, ref: SourceRef, reference: str,
                 request: Request) -> None:
        super().__init__(reference, request)
        self._file = file
        self._compression = compression
        self._ref = ref
        self._layers: StreamedLayers | None = None

    def identity(self, store: LayerStore | None = None) -> Image:
        return self._pass(Reuse.nothing())

    def read(self, reuse: Reuse, later: DeferredChecks | None = None) -> Image:
        return self._pass(reuse)

    def _pass(self, reuse: Reuse) -> Image:
        path, request = self._ref.location, self.request
        progress, limits = request.progress, request.limits
        progress.status(f"reading {path} ({self._compression})")
        self._file.seek(0)
        size = os.fstat(self._file.fileno()).st_size
        chunks = decompressed_chunks(self._file, self._compression, path, progress.read_advanced,
                                     limits)
        saved = read_stream(chunks, name=path, size=size, progress=progress, limits=limits,
                            where=path, counted=True, layers_wanted=reuse.only != frozenset())
        kind = _kind(self._ref.kind, saved.documents, path)
        tag_form, name_form = ((f"docker-archive:{path}:REPO:TAG", f"docker-archive:{path}:@N")
                               if kind == DOCKER_ARCHIVE else
                               (f"oci-archive:{path}:NAME", "a manifest digest listed"))
        image, _ = assemble(saved, where=path, reference=self.reference, source_kind=kind,
                            platform=request.platform, selector=self._ref.selector,
                            how_to_pick=f"pick one with {tag_form} or {name_form}",
                            reuse=reuse, limits=limits)
        return image

    def open_layer(self, index: int) -> AbstractContextManager[Readable]:
        path = self._ref.location

        def stream() -> Iterator[bytes]:
            self._file.seek(0)
            return decompressed_chunks(self._file, self._compression, path, uncounted,
                                       self.request.limits)

        if self._layers is None:
            self._layers = StreamedLayers(stream, where=path, platform=self.request.platform,
                                          selector=self._ref.selector,
                                          limits=self.request.limits)
        return self._layers.open_layer(index)

    def close(self) -> None:
        self._file.close()
        super().close()


def _open(path: str) -> BinaryIO:
    try:
        return open_regular(path)
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


SOURCE = ArchiveSource()


__all__ = ["SOURCE", "ArchiveSource", "CompressedArchive", "PlainArchive"]
