"""Image sources: a reference → an `ImageHandle`, from the engine, a registry, an archive or an
OCI layout.

`SOURCES` names the module that reads each kind of reference (`refs.parse_ref`); each such
module defines `SOURCE`, a `source.Source`. A source is imported when first asked for (the
Docker SDK only for the engine).
"""

from __future__ import annotations

import dataclasses
import importlib

from imagescope.errors import UsageError
from imagescope.limits import ReadLimits
from imagescope.model import Image
from imagescope.progress import Progress
from imagescope.sources.access import RegistryAccess
from imagescope.sources.manifests import Platform
from imagescope.sources.refs import (
    ARCHIVE,
    DOCKER_ARCHIVE,
    ENGINE,
    OCI,
    OCI_ARCHIVE,
    REGISTRY,
    parse_ref,
)
from imagescope.sources.source import (
    ImageHandle,
    LayerStore,
    ReadStats,
    Request,
    Reuse,
    Source,
)
from imagescope.sources.verify import DeferredChecks
from imagescope.sources.workers import Readers

PULL_POLICIES = ("missing", "always", "never")

SOURCES: dict[str, str] = {
    ENGINE: "imagescope.sources.engine",
    REGISTRY: "imagescope.sources.registry",
    DOCKER_ARCHIVE: "imagescope.sources.archive",
    OCI_ARCHIVE: "imagescope.sources.archive",
    ARCHIVE: "imagescope.sources.archive",
    OCI: "imagescope.sources.oci",
}


def source_of(kind: str) -> Source:
    """The source that reads references of `kind`."""
    source: Source = importlib.import_module(SOURCES[kind]).SOURCE
    return source


def request(*, pull: str = "missing", platform: str | None = None,
            progress: Progress | None = None, limits: ReadLimits | None = None,
            readers: Readers | None = None, registry: RegistryAccess | None = None) -> Request:
    """A Request from what a user typed; an unknown pull policy or platform is a UsageError."""
    if pull not in PULL_POLICIES:
        raise UsageError(f"--pull {pull!r}: expected one of {', '.join(PULL_POLICIES)}")
    return Request(pull=pull, platform=Platform.parse(platform) if platform else None,
                   progress=progress or Progress(), limits=limits or ReadLimits(),
                   readers=readers or Readers.from_environment(),
                   registry=registry or RegistryAccess())


def resolve(reference: str, asked: Request | None = None) -> ImageHandle:
    """The handle of the image `reference` names (see `refs.parse_ref` for the forms). Every
    failure is a typed ImagescopeError carrying one line for the user."""
    asked = asked or Request()
    ref = parse_ref(reference)
    source = source_of(ref.kind)
    handle = source.resolve(ref, reference, asked)

    def reopen() -> ImageHandle:
        again = dataclasses.replace(asked, pull="never")
        return source.resolve(handle.resolved_again(ref), reference, again)

    handle.reopen = reopen
    return handle


def load(reference: str, *, pull: str = "missing", platform: str | None = None,
         progress: Progress | None = None, cache: LayerStore | None = None,
         stats: ReadStats | None = None, limits: ReadLimits | None = None,
         later: DeferredChecks | None = None, readers: Readers | None = None,
         registry: RegistryAccess | None = None) -> Image:
    """Resolve `reference` and read its image (`ImageHandle.image`): layers `cache` holds are
    served from it, layers read are stored in it; `stats` counts both."""
    asked = request(pull=pull, platform=platform, progress=progress, limits=limits,
                    readers=readers, registry=registry)
    with resolve(reference, asked) as handle:
        return handle.image(Reuse(cache, stats if stats is not None else ReadStats()), later)


__all__ = ["PULL_POLICIES", "SOURCES", "ImageHandle", "Request", "load", "request", "resolve",
           "source_of"]
