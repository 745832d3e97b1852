"""Library entry points: a reference or a loaded image → Report."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from imagescope import findings
from imagescope.cache import LayerCache, ReadStats
from imagescope.findings.view import ImageView
from imagescope.layers import fill_digests
from imagescope.model import Entry, Image
from imagescope.overlay import replay, rewrite_candidates
from imagescope.progress import Progress
from imagescope.recommend import optimized_bytes, recommend
from imagescope.report import Report, build_report


def analyze(image: Image) -> Report:
    """Replay the layers of a loaded image and account its bytes.

    Content digests that decide identical rewrites and were skipped while streaming (seekable
    plain layers) are computed here, only for the overwritten files that need them; layers
    served from the cache without such digests are read again (`ensure_digests`).
    Findings and recommendations are derived from the same replay.
    """
    result = replay(image.layers)
    if ensure_digests(image, rewrite_candidates(result)):
        result = replay(image.layers)
        ensure_digests(image, rewrite_candidates(result))
    report = build_report(image, result)
    view = ImageView(image, result)
    found = findings.run(view)
    recommendations = recommend(found, view, findings.dockerignore_lines(found))
    return dataclasses.replace(
        report,
        findings=found,
        recommendations=recommendations,
        optimized_bytes=optimized_bytes(report.summary.total_bytes, found, recommendations),
    )


def inspect(reference: str, *, pull: str = "missing", platform: str | None = None,
            progress: Progress | None = None, cache: LayerCache | None = None,
            stats: ReadStats | None = None) -> Report:
    """Load `reference` from any source (engine, archive, OCI layout) and analyze it.

    With `cache`, layer analyses are taken from and stored in it; `stats` counts layers read
    from the source and served from the cache.
    """
    from imagescope.sources import load

    return analyze(load(reference, pull=pull, platform=platform, progress=progress,
                        cache=cache, stats=stats))


def ensure_digests(image: Image, entries: Iterable[Entry]) -> bool:
    """Give `entries` of `image` their content digests where they have none.

    A digest comes from the layer's plain tar (`content_file`) or, for a layer served from the
    cache without digests, by reading the layer again (`Image.reread`). True when that read
    replaced a layer's entries (they disagreed with the source): anything derived from the old
    entries, such as a replay, must be derived again.
    """
    needed = {id(entry) for entry in entries if entry.digest is None}
    if not needed:
        return False
    stale = []
    for layer in image.layers:
        pending = [e for e in layer.entries if id(e) in needed]
        if not pending:
            continue
        if layer.content_file is not None:
            fill_digests(layer.content_file, pending)
        if layer.digests_incomplete and any(e.digest is None for e in pending):
            stale.append(layer)
    if not stale or image.reread is None:
        return False
    return image.reread(stale)
