"""OCI image layout directories (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from imagescope.errors import CorruptArchive, NotAnImage, SourceNotFound
from imagescope.sources.blobs import BlobSpan, SeekableImage, missing_blob, open_regular
from imagescope.sources.manifests import (
    MAX_DOCUMENT_BYTES,
    LayerRef,
    oci_plan,
    verifying,
)
from imagescope.sources.refs import OCI, SourceRef
from imagescope.sources.source import ImageHandle, Request


class OciLayoutSource:
    """OCI image layout directories."""

    def resolve(self, ref: SourceRef, reference: str, request: Request) -> ImageHandle:
        return OciLayout(ref, reference, request)


class OciLayout(SeekableImage):
    """An OCI layout: index.json resolved to one manifest and its config once, then its layer
    blobs read (`blobs.read_layers`)."""

    def __init__(self, ref: SourceRef, reference: str, request: Request) -> None:
        super().__init__(reference, request)
        self._root = root = ref.location
        if not os.path.exists(root):
            raise SourceNotFound(f"no such directory: {root}")
        if not os.path.isdir(root):
            raise NotAnImage(f"{root} is a file, not an OCI layout directory; an archive is "
                             f"read with oci-archive:{root} or docker-archive:{root}")
        if not os.path.isfile(os.path.join(root, "oci-layout")) or not os.path.isfile(
                os.path.join(root, "index.json")):
            raise NotAnImage(f"{root} is not an OCI image layout (it needs oci-layout and "
                             "index.json)")
        request.progress.status(f"resolving {root}")
        self.kind = OCI

        def read(key: str) -> bytes:
            return _read(root, key)

        self.plan = oci_plan(_read(root, "index.json"),
                             verifying(read) if request.limits.verify else read,
                             selector=ref.selector, wanted=request.platform, where=root,
                             how_to_pick=f"pick one with oci:{root}:NAME, naming one listed "
                                         "(a name or a manifest digest)")

    @contextmanager
    def locate(self, ref: LayerRef) -> Iterator[BlobSpan]:
        root = self._root
        path = os.path.join(root, *ref.key.split("/"))
        try:
            file = open_regular(path)  # a context manager of its own
        except FileNotFoundError:
            raise missing_blob(root, ref.key) from None
        except OSError as exc:
            raise CorruptArchive(f"{root}: cannot read {ref.key}: {exc.strerror}") from None
        with file:
            yield BlobSpan(file, 0, os.fstat(file.fileno()).st_size, path)


SOURCE = OciLayoutSource()


def _read(root: str, key: str) -> bytes:
    """A JSON document of the layout (bounded: a huge "document" is not one)."""
    path = os.path.join(root, *key.split("/"))
    try:
        with open_regular(path) as file:
            data = file.read(MAX_DOCUMENT_BYTES + 1)
    except FileNotFoundError:
        raise missing_blob(root, key) from None
    except OSError as exc:
        raise CorruptArchive(f"{root}: cannot read {key}: {exc.strerror}") from None
    return data


__all__ = ["SOURCE", "OciLayout", "OciLayoutSource"]
