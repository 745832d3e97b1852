"""Library entry points: a reference or a loaded image → Report; two references → Diff."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from imagescope.analysis import findings
from imagescope.analysis.build_results import result_roots
from imagescope.analysis.findings.view import ImageView
from imagescope.analysis.history import base_layer_count
from imagescope.analysis.overlay import replay, rewrite_candidates
from imagescope.analysis.provenance import provenance_map
from imagescope.analysis.recommend import optimized_bytes, recommend
from imagescope.analysis.report import Report, base_image, build_report, with_provenance
from imagescope.dockerfile import parse_dockerfile_text
from imagescope.files import ImageFiles
from imagescope.layer.digests import fill_digests
from imagescope.limits import ReadLimits
from imagescope.model import Entry, Image, PendingChecks
from imagescope.progress import Progress
from imagescope.sources import request, resolve
from imagescope.sources.access import RegistryAccess
from imagescope.sources.source import ReadStats
from imagescope.store.cache import LayerCache
from imagescope.store.cached import CachedImage

if TYPE_CHECKING:  # imported by compare: an inspect never loads the diff machinery
    from imagescope.analysis.diff import Diff
from imagescope.sources.verify import DeferredChecks
from imagescope.store.report_codec import image_key


@dataclass(frozen=True, slots=True)
class Analysis:
    """A loaded image, the view its findings were computed on, and its report."""

    image: Image
    view: ImageView
    report: Report


@dataclass(frozen=True, slots=True)
class BaseRef:
    """The base image a user named (`--base`): its reference and its layers' diff_ids."""

    reference: str
    diff_ids: tuple[str | None, ...]

    @classmethod
    def of(cls, report: Report) -> BaseRef:
        return cls(report.image.reference, tuple(layer.diff_id for layer in report.layers))

    def layers_under(self, image: Image) -> int:
        """How many bottom layers of `image` are this base's (matched by diff_id, in order)."""
        count = 0
        for ours, theirs in zip(image.layers, self.diff_ids, strict=False):
            if ours.diff_id is None or ours.diff_id != theirs:
                break
            count += 1
        return count


def base_layers_of(image: Image, base: BaseRef | None) -> int:
    """The base's layers in `image`: those of `base` when named, else as the history shows."""
    if base is not None:
        return base.layers_under(image)
    return base_layer_count(image.history, len(image.layers))


def analyze(image: Image, base: BaseRef | None = None) -> Report:
    """The report of a loaded image (see `analyze_image`)."""
    return analyze_image(image, base).report


def analyze_image(image: Image, base: BaseRef | None = None) -> Analysis:
    """Replay the layers of a loaded image and account its bytes.

    Content digests that decide identical rewrites and were skipped while streaming (seekable
    plain layers) are computed here, only for the overwritten files that need them; layers
    served from the cache without such digests are read again (`ensure_digests`).
    Findings and recommendations are derived from the same replay, knowing which bottom layers
    are the base image's (`base_layers_of`): savings are claimed only where a change can make
    them. An image with BuildKit's provenance (mode=max) has its layers mapped to the lines of
    the Dockerfile it embeds (`provenance_map`).
    """
    result = replay(image.layers)
    if ensure_digests(image, rewrite_candidates(result)):
        result = replay(image.layers)
        ensure_digests(image, rewrite_candidates(result))
    report = build_report(image, result)
    if image.provenance is not None:
        mapped = provenance_map(image.provenance.statement,
                                [layer.digest for layer in image.layers], parse_dockerfile_text)
        if mapped is not None:
            report = with_provenance(report, mapped)
    in_base = base_layers_of(image, base)
    view = ImageView(image, result, base_layers=in_base)
    found = findings.run(view)
    recommendations = recommend(found, view, findings.dockerignore_lines(found))
    report = dataclasses.replace(
        report,
        build_results=result_roots(view, found),
        findings=found,
        recommendations=recommendations,
        optimized_bytes=optimized_bytes(report.summary.total_bytes, found, recommendations,
                                        in_base),
        base=base_image(report, base.reference if base else None, in_base) if in_base else None,
    )
    return Analysis(image, view, report)


def inspect(reference: str, *, pull: str = "missing", platform: str | None = None,
            progress: Progress | None = None, cache: LayerCache | None = None,
            stats: ReadStats | None = None, limits: ReadLimits | None = None,
            base: BaseRef | None = None, registry: RegistryAccess | None = None) -> Report:
    """Resolve `reference` once from any source (engine, archive, OCI layout) and analyze it.

    With `cache`, an image inspected before is answered by its stored report (by
    `report_codec.image_key`: nothing but the image's documents is read), and otherwise layer
    analyses are taken from and stored in it, and the report stored (from verified reads only).
    `stats` counts layers read from the source and served from the cache, and reports served;
    `limits` guards the reads (`ReadLimits`); `base` names the base image (`BaseRef`);
    `registry` says how registries are reached (`RegistryAccess`).
    """
    asked = request(pull=pull, platform=platform, progress=progress, limits=limits,
                    registry=registry)
    with CachedImage(resolve(reference, asked), cache, stats) as handle:
        key_of = partial(_report_key, base=base)
        stored = handle.stored_report(key_of)
        if stored is not None:
            return stored
        image = handle.image(DeferredChecks.within_memory())
        with settled([image]):
            report = analyze(image, base)
        handle.store_report(image, key_of, report)
    return report


@dataclass(frozen=True, slots=True)
class Opened:
    """An image analysed, its source kept open to read its files (`ImageFiles`)."""

    analysis: Analysis
    files: ImageFiles


@contextmanager
def opened(reference: str, *, pull: str = "missing", platform: str | None = None,
           progress: Progress | None = None, cache: LayerCache | None = None,
           stats: ReadStats | None = None, limits: ReadLimits | None = None,
           registry: RegistryAccess | None = None) -> Iterator[Opened]:
    """`inspect`'s load and analysis (the layer cache used, the report not: the entries are
    wanted), the source held open until the block ends."""
    asked = request(pull=pull, platform=platform, progress=progress, limits=limits,
                    registry=registry)
    with CachedImage(resolve(reference, asked), cache, stats) as handle:
        image = handle.image(DeferredChecks.within_memory())
        with settled([image]):
            analysis = analyze_image(image)
        yield Opened(analysis, ImageFiles(handle.handle, image, analysis.view.replay))


def _report_key(image: Image, base: BaseRef | None) -> str | None:
    """What the report of `image` is kept by: the image's identity and, when one is named,
    how many of its layers the base holds."""
    key = image_key(image)
    if key is None or base is None:
        return key
    named = f"{key}+base{base.layers_under(image)}".encode()
    return "sha256:" + hashlib.sha256(named).hexdigest()


def compare(old_reference: str, new_reference: str, *, pull: str = "missing",
            platform: str | None = None, progress: Progress | None = None,
            cache: LayerCache | None = None, stats: ReadStats | None = None,
            limits: ReadLimits | None = None, base: BaseRef | None = None,
            registry: RegistryAccess | None = None) -> tuple[Diff, Report, Report]:
    """Resolve and analyze two images (any sources, mixed freely) and compare OLD → NEW, each
    with `base` as its base image when given.

    Files of the same size written by different layers are compared by content digest; digests
    skipped while streaming are computed for those files only. With `cache`, an image whose
    report it holds is not analysed again: only its layers' entries are taken (from the cache),
    for the files to compare. Both images are read with one request: a layer of NEW that OLD
    has (by digest) is not fetched again from a registry.
    """
    asked = request(pull=pull, platform=platform, progress=progress, limits=limits,
                    registry=registry)
    stats = stats if stats is not None else ReadStats()
    key_of = partial(_report_key, base=base)
    with ExitStack() as handles:
        analyses: list[Analysis] = []
        images: list[Image] = []
        with settled(images):
            for reference in (old_reference, new_reference):
                handle = handles.enter_context(CachedImage(resolve(reference, asked), cache,
                                                           stats))
                stored = handle.stored_report(key_of)
                image = handle.image(DeferredChecks.within_memory())
                images.append(image)
                analyses.append(_reused(image, stored, base) if stored is not None
                                else analyze_image(image, base))
                _settle([image])  # its layers stored now: NEW's shared ones are served from them
                if stored is None:
                    handle.store_report(image, key_of, analyses[-1].report)
            return _compared(analyses, base)


def _reused(image: Image, report: Report, base: BaseRef | None) -> Analysis:
    """The analysis of `image` with its stored `report`: only the replay is made again."""
    return Analysis(image, ImageView(image, replay(image.layers),
                                     base_layers=base_layers_of(image, base)), report)


def _compared(analyses: list[Analysis], base: BaseRef | None) -> tuple[Diff, Report, Report]:
    """`compare` of two analysed images."""
    from imagescope.analysis.diff import compare as compare_files
    from imagescope.analysis.diff import content_candidates, final_files

    old_files, new_files = (final_files(a.view, a.report) for a in analyses)
    candidates = content_candidates(old_files, new_files)
    replaced = [ensure_digests(a.image, candidates) for a in analyses]
    if any(replaced):  # a layer's entries were replaced by a re-read: derive everything again
        analyses = [analyze_image(a.image, base) if again else a
                    for a, again in zip(analyses, replaced, strict=True)]
        old_files, new_files = (final_files(a.view, a.report) for a in analyses)
        for analysis in analyses:
            ensure_digests(analysis.image, content_candidates(old_files, new_files))
    old, new = (a.report for a in analyses)
    return compare_files(old, old_files, new, new_files), old, new


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
