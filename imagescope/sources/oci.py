"""OCI image layout directories (`oci-layout`, `index.json`, `blobs/<alg>/<hex>`)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from imagescope.errors import CorruptArchive, NotAnImage, SourceNotFound
from imagescope.limits import ReadLimits
from imagescope.model import Image
from imagescope.progress import Progress
from imagescope.sources.blobs import BlobSpan, missing_blob, open_regular, read_layers
from imagescope.sources.manifests import (
    MAX_DOCUMENT_BYTES,
    LayerRef,
    Platform,
    oci_plan,
    to_image,
    verifying,
)
from imagescope.sources.refs import OCI, SourceRef
from imagescope.sources.verify import DeferredChecks
from imagescope.store.cache import Reuse


def load(source: SourceRef, *, reference: str, platform: Platform | None,
         progress: Progress, reuse: Reuse | None = None,
         limits: ReadLimits | None = None, later: DeferredChecks | None = None) -> Image:
    """Read an OCI layout: resolve index.json to one manifest, then read its layer blobs
    (`reuse` serves and stores layer analyses, `limits` guards the reads, `later` takes
    digest checks: see `blobs.read_layers`)."""
    root = source.location
    if not os.path.exists(root):
        raise SourceNotFound(f"no such directory: {root}")
    if not os.path.isdir(root):
        raise NotAnImage(f"{root} is a file, not an OCI layout directory; an archive is read "
                         f"with oci-archive:{root} or docker-archive:{root}")
    if not os.path.isfile(os.path.join(root, "oci-layout")) or not os.path.isfile(
            os.path.join(root, "index.json")):
        raise NotAnImage(f"{root} is not an OCI image layout (it needs oci-layout and index.json)")
    progress.status(f"resolving {root}")
    limits = limits or ReadLimits()

    def read(key: str) -> bytes:
        return _read(root, key)

    plan = oci_plan(_read(root, "index.json"), verifying(read) if limits.verify else read,
                    selector=source.selector, wanted=platform, where=root,
                    how_to_pick=f"pick one with oci:{root}:NAME, naming one listed "
                                "(a name or a manifest digest)")
    progress.status(f"reading {len(plan.layers)} layers")

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

    layers = read_layers(plan.layers, locate, progress, reuse, limits, later)
    return to_image(plan, layers, reference=reference, source=OCI)


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


__all__ = ["load"]
