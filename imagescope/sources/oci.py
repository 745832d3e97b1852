"""OCI image layout directories (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from imagescope.errors import CorruptArchive, NotAnImage, SourceNotFound
from imagescope.model import Image
from imagescope.sources.blobs import BlobSpan, missing_blob, open_regular, read_layers
from imagescope.sources.manifests import (
    MAX_DOCUMENT_BYTES,
    LayerRef,
    oci_plan,
    to_image,
    verifying,
)
from imagescope.sources.refs import OCI, SourceRef
from imagescope.sources.source import ImageHandle, LayerStore, ReadStats, Request, Reuse
from imagescope.sources.verify import DeferredChecks


class OciLayoutSource:
    """OCI image layout directories."""

    def resolve(self, ref: SourceRef, reference: str, request: Request) -> ImageHandle:
        return OciLayout(ref, reference, request)


class OciLayout(ImageHandle):
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

        def read(key: str) -> bytes:
            return _read(root, key)

        self.plan = oci_plan(_read(root, "index.json"),
                             verifying(read) if request.limits.verify else read,
                             selector=ref.selector, wanted=request.platform, where=root,
                             how_to_pick=f"pick one with oci:{root}:NAME, naming one listed "
                                         "(a name or a manifest digest)")

    def identity(self, store: LayerStore | None = None) -> Image:
        return self._image(Reuse(None, ReadStats(), only=frozenset()), None)

    def read(self, reuse: Reuse, later: DeferredChecks | None = None) -> Image:
        self.request.progress.status(f"reading {len(self.plan.layers)} layers")
        return self._image(reuse, later)

    def _image(self, reuse: Reuse, later: DeferredChecks | None) -> Image:
        root = self._root

        @contextmanager
        def locate(ref: LayerRef) -> Iterator[BlobSpan]:
            path = os.path.join(root, *ref.key.split("/"))
            try:
                file = open_regular(path)  # a context manager of its own
            except FileNotFoundError:
                raise missing_blob(root, ref.key) from None
            except OSError as exc:
                raise CorruptArchive(f"{root}: cannot read {ref.key}: {exc.strerror}") from None
            with file:
                yield BlobSpan(file, 0, os.fstat(file.fileno()).st_size, path)

        layers = read_layers(self.plan.layers, locate, self.request.progress, reuse,
                             self.request.limits, later)
        return to_image(self.plan, layers, reference=self.reference, source=OCI)


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
