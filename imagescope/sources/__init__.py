"""Image sources: a reference → one Image, from the engine, an archive or an OCI layout."""

from __future__ import annotations

from imagescope.errors import UsageError
from imagescope.model import Image
from imagescope.progress import Progress
from imagescope.refs import ENGINE, OCI, parse_ref
from imagescope.sources import archive, oci
from imagescope.sources.manifests import Platform

PULL_POLICIES = ("missing", "always", "never")


def load(ref: str, *, pull: str = "missing", platform: str | None = None,
         progress: Progress | None = None) -> Image:
    """Read the image `ref` names (see `refs.parse_ref` for the forms).

    `pull` (missing | always | never) applies to the engine only; `platform` (`os/arch[/variant]`)
    picks an image out of a multi-platform index and must match the image's config when given.
    Every failure is a typed ImagescopeError carrying one line for the user.
    """
    if pull not in PULL_POLICIES:
        raise UsageError(f"--pull {pull!r}: expected one of {', '.join(PULL_POLICIES)}")
    wanted = Platform.parse(platform) if platform else None
    source = parse_ref(ref)
    sink = progress or Progress()
    if source.kind == ENGINE:
        from imagescope.sources import engine  # the Docker SDK is imported only when needed

        return engine.load(source, reference=ref, pull=pull, platform=wanted, progress=sink)
    if source.kind == OCI:
        return oci.load(source, reference=ref, platform=wanted, progress=sink)
    return archive.load(source, reference=ref, platform=wanted, progress=sink)


__all__ = ["PULL_POLICIES", "load"]
