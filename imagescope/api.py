"""Library entry points: a reference or a loaded image → Report."""

from __future__ import annotations

from imagescope.layers import fill_digests
from imagescope.model import Image
from imagescope.overlay import replay, rewrite_candidates
from imagescope.progress import Progress
from imagescope.report import Report, build_report


def analyze(image: Image) -> Report:
    """Replay the layers of a loaded image and account its bytes.

    Content digests that decide identical rewrites and were skipped while streaming (seekable
    plain layers) are computed here, only for the overwritten files that need them.
    """
    result = replay(image.layers)
    needed = {id(entry) for entry in rewrite_candidates(result)}
    if needed:
        for layer in image.layers:
            if layer.content_file is None:
                continue
            pending = [e for e in layer.entries if id(e) in needed]
            if pending:
                fill_digests(layer.content_file, pending)
    return build_report(image, result)


def inspect(reference: str, *, pull: str = "missing", platform: str | None = None,
            progress: Progress | None = None) -> Report:
    """Load `reference` from any source (engine, archive, OCI layout) and analyze it."""
    from imagescope.sources import load

    return analyze(load(reference, pull=pull, platform=platform, progress=progress))
