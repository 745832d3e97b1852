"""The layer cache around an image handle: layers served from and stored in it, and the report
of an image analysed before answered from it without reading a layer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

from imagescope.analysis.report import Report
from imagescope.layer.codec import collector_paused
from imagescope.model import Image
from imagescope.sources.source import ImageHandle, ReadStats, Reuse
from imagescope.sources.verify import DeferredChecks
from imagescope.store import report_codec
from imagescope.store.cache import LayerCache

ReportKey = Callable[[Image], "str | None"]


class CachedImage:
    """`handle` with `cache` around it (None: no cache; every read goes to the source)."""

    def __init__(self, handle: ImageHandle, cache: LayerCache | None,
                 stats: ReadStats | None = None) -> None:
        self.handle = handle
        self.cache = cache.under(handle.request.limits) if cache is not None else None
        self.stats = stats if stats is not None else ReadStats()
        handle.count_in(self.stats)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.handle.close()

    def stored_report(self, key_of: ReportKey) -> Report | None:
        """The report stored for the image's identity (`key_of` its key), counted as served;
        None when there is none, none that decodes, or the identity is not known."""
        if self.cache is None:
            return None
        known = self.handle.identity(self.cache)
        encoded = self.cache.get_report(key_of(known)) if known is not None else None
        if encoded is None:
            return None
        try:
            with collector_paused():
                report = report_codec.decode(encoded)
        except ValueError:
            return None
        self.stats.reports_from_cache += 1
        return report

    def image(self, later: DeferredChecks | None = None) -> Image:
        """The image, its layers served by the cache where it holds them (`ImageHandle.image`)."""
        return self.handle.image(Reuse(self.cache, self.stats), later)

    def store_report(self, image: Image, key_of: ReportKey, report: Report) -> None:
        """Keep `report` for the image's identity, when it came from a verified read."""
        if self.cache is not None and self.handle.request.limits.verify:
            self.cache.put_report(key_of(image), report_codec.encode(report))


__all__ = ["CachedImage", "ReportKey"]
