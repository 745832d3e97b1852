"""Library entry points: a reference or a loaded image → Report; two references → Diff."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagescope import findings
from imagescope.cache import LayerCache, ReadStats
from imagescope.findings.view import ImageView
from imagescope.layers import fill_digests
from imagescope.limits import ReadLimits
from imagescope.model import Entry, Image, PendingChecks
from imagescope.overlay import replay, rewrite_candidates
from imagescope.progress import Progress
from imagescope.recommend import optimized_bytes, recommend
from imagescope.report import Report, build_report, with_base

if TYPE_CHECKING:  # imported by compare: an inspect never loads the diff machinery
    from imagescope.diff import Diff
from imagescope.report_codec import image_key
from imagescope.sources.verify import DeferredChecks


@dataclass(frozen=True, slots=True)
class Analysis:
    """A loaded image, the view its findings were computed on, and its report."""

    image: Image
    view: ImageView
    report: Report


def analyze(image: Image) -> Report:
    """The report of a loaded image (see `analyze_image`)."""
    return analyze_image(image).report


def analyze_image(image: Image) -> Analysis:
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
    report = dataclasses.replace(
        report,
        findings=found,
        recommendations=recommendations,
        optimized_bytes=optimized_bytes(report.summary.total_bytes, found, recommendations),
    )
    return Analysis(image, view, report)


def inspect(reference: str, *, pull: str = "missing", platform: str | None = None,
            progress: Progress | None = None, cache: LayerCache | None = None,
            stats: ReadStats | None = None, limits: ReadLimits | None = None) -> Report:
    """Load `reference` from any source (engine, archive, OCI layout) and analyze it.

    With `cache`, an image inspected before is answered by its stored report (by
    `report_codec.image_key`: nothing but the image's documents is read), and otherwise layer
    analyses are taken from and stored in it, and the report stored (from verified reads only).
    `stats` counts layers read from the source and served from the cache, and reports served;
    `limits` guards the reads (`ReadLimits`).
    """
    from imagescope.sources import identify, load

    stats = stats if stats is not None else ReadStats()
    limits = limits or ReadLimits()
    if cache is not None:
        known = identify(reference, pull=pull, platform=platform, progress=progress,
                         cache=cache, stats=stats, limits=limits)
        stored = cache.get_report(image_key(known)) if known is not None else None
        if stored is not None:
            stats.reports_from_cache += 1
            return stored
    image = load(reference, pull=pull, platform=platform, progress=progress, cache=cache,
                 stats=stats, limits=limits, later=DeferredChecks.within_memory())
    with settled([image]):
        report = analyze(image)
    if cache is not None and limits.verify:
        cache.put_report(image_key(image), report)
    return report


def compare(old_reference: str, new_reference: str, *, pull: str = "missing",
            platform: str | None = None, progress: Progress | None = None,
            cache: LayerCache | None = None, stats: ReadStats | None = None,
            limits: ReadLimits | None = None) -> tuple[Diff, Report, Report]:
    """Load and analyze two images (any sources, mixed freely) and compare OLD → NEW.

    Files of the same size written by different layers are compared by content digest; digests
    skipped while streaming are computed for those files only.
    """
    from imagescope.sources import load

    images: list[Image] = []
    with settled(images):
        for reference in (old_reference, new_reference):
            images.append(load(reference, pull=pull, platform=platform, progress=progress,
                               cache=cache, stats=stats, limits=limits,
                               later=DeferredChecks.within_memory()))
        return _compared(images[0], images[1])


def _compared(old_image: Image, new_image: Image) -> tuple[Diff, Report, Report]:
    """`compare` of two loaded images."""
    from imagescope.diff import compare as compare_files
    from imagescope.diff import content_candidates, final_files

    analyses = [analyze_image(image) for image in (old_image, new_image)]
    old_files, new_files = (final_files(a.view, a.report) for a in analyses)
    candidates = content_candidates(old_files, new_files)
    replaced = [ensure_digests(a.image, candidates) for a in analyses]
    if any(replaced):  # a layer's entries were replaced by a re-read: derive everything again
        analyses = [analyze_image(a.image) if again else a
                    for a, again in zip(analyses, replaced, strict=True)]
        old_files, new_files = (final_files(a.view, a.report) for a in analyses)
        for analysis in analyses:
            ensure_digests(analysis.image, content_candidates(old_files, new_files))
    old, new = (a.report for a in analyses)
    return compare_files(old, old_files, new, new_files), old, new


def base_layer_count(report: Report, base: Report) -> int:
    """How many bottom layers of `report` are the base image's (matched by diff_id, in order)."""
    count = 0
    for ours, theirs in zip(report.layers, base.layers, strict=False):
        if ours.diff_id is None or ours.diff_id != theirs.diff_id:
            break
        count += 1
    return count


def attribute_base(report: Report, base: Report) -> Report:
    """`report` with the layers it shares with `base` (bottom-up, by diff_id) reported apart."""
    return with_base(report, base.image.reference, base_layer_count(report, base))


@contextmanager
def settled(images: list[Image]) -> Iterator[None]:
    """Work on `images` while the checks their loads left running (`Image.pending`) finish;
    a blob that does not match its digest is the error, whatever the work raised.
    Interrupted, the checks are stopped."""
    try:
        yield
    except Exception:
        _settle(images)
        raise
    except BaseException:
        for pending in _pending(images):
            pending.abandon()
        raise
    _settle(images)


def _settle(images: list[Image]) -> None:
    """Settle each image's checks in turn; once one fails, stop the others."""
    pendings = _pending(images)
    for position, pending in enumerate(pendings):
        try:
            pending.settle()
        except BaseException:
            for rest in pendings[position + 1:]:
                rest.abandon()
            raise


def _pending(images: list[Image]) -> list[PendingChecks]:
    """The checks `images` have left running, taken from them."""
    found = [image.pending for image in images if image.pending is not None]
    for image in images:
        image.pending = None
    return found


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
