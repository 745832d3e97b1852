"""CI gates: thresholds checked against a report or a diff, each with a verdict and a reason (pure).

`--ignore GLOB` paths are left out of every waste and secret figure a gate checks (a cache a team
keeps on purpose); size and growth gates measure the whole image. Waste has three classes
(`report.WasteClass`) once the base image is known (`--base`, or the history's FROM boundary):
`max-wasted` and `min-efficiency` count all of it, or with `own_only` only what own steps wrote
(the waste a Dockerfile change reclaims). `max-new-waste` always counts only waste own steps
wrote: hiding the base's files saves nothing and costs nothing, so it never fails the gate.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from imagescope.analysis.report import Report, WasteClass, WastedFile, waste_class
from imagescope.sizes import Growth

if TYPE_CHECKING:  # imported by check_diff: an inspect never loads the diff machinery
    from imagescope.analysis.diff import Diff


@dataclass(frozen=True, slots=True)
class GateSettings:
    max_wasted: int | None = None
    min_efficiency: float | None = None
    max_size: int | None = None
    fail_on_secrets: bool = False
    max_growth: Growth | None = None
    max_new_waste: int | None = None
    ignore: tuple[str, ...] = ()
    own_only: bool = False

    @property
    def any(self) -> bool:
        return any(value not in (None, False, ()) for value in
                   (self.max_wasted, self.min_efficiency, self.max_size, self.fail_on_secrets,
                    self.max_growth, self.max_new_waste))


@dataclass(frozen=True, slots=True)
class GateResult:
    gate: str  # the option's name, e.g. "max-wasted"
    passed: bool
    message: str  # what was measured against what, and by how much it failed


@dataclass(frozen=True, slots=True)
class Scope:
    """What the gates look at: layers below `base_layers` belong to the base image."""

    base_layers: int = 0
    ignore: tuple[str, ...] = ()

    def ignored(self, path: str) -> bool:
        """`--ignore` globs match the absolute path; a glob for a directory covers what is below."""
        return any(fnmatch.fnmatchcase(path, glob) or fnmatch.fnmatchcase(path, glob.rstrip("/")
                                                                          + "/*")
                   for glob in self.ignore)

    def own(self, wasted: WastedFile) -> bool:
        """Waste an own step wrote (`WasteClass.OWN`)."""
        return waste_class(wasted, self.base_layers) is WasteClass.OWN


def counted_waste(report: Report, scope: Scope, own_only: bool) -> list[WastedFile]:
    """The wasted files gates count: not ignored, and only own steps' with `own_only`."""
    return [w for w in report.wasted_files
            if not scope.ignored(w.path) and (not own_only or scope.own(w))]


def _fmt(nbytes: int) -> str:
    """Exact bytes, with binary units beside them from 1 KiB on: `52,428,800 bytes (50.0 MiB)`."""
    if abs(nbytes) < 1024:
        return f"{nbytes:,} bytes"
    import humanize  # (only where a gate reports a size)

    return f"{nbytes:,} bytes ({humanize.naturalsize(abs(nbytes), binary=True, format='%.1f')})"


def check_report(report: Report, settings: GateSettings) -> list[GateResult]:
    """Gates of `inspect`; the report's `base` (if any) decides what waste is inherited."""
    scope = _scope(report, settings)
    results: list[GateResult] = []
    label = "own wasted" if settings.own_only and scope.base_layers else "wasted"
    if settings.max_wasted is not None:
        wasted = sum(w.bytes for w in counted_waste(report, scope, settings.own_only))
        over = wasted - settings.max_wasted
        results.append(GateResult(
            "max-wasted", over <= 0,
            f"{label} {_fmt(wasted)}, limit {_fmt(settings.max_wasted)}"
            + (f": {_fmt(over)} over" if over > 0 else "")
            + ("" if settings.own_only or not scope.base_layers
               else " (all waste; --own-only counts only what own steps wrote)")))
    if settings.min_efficiency is not None:
        ignored = sum(w.bytes for w in report.wasted_files if scope.ignored(w.path))
        not_own = (sum(w.bytes for w in report.wasted_files
                       if not scope.ignored(w.path) and not scope.own(w))
                   if settings.own_only else 0)
        total = report.summary.total_bytes - ignored - not_own
        efficiency = report.summary.final_bytes / total if total else 1.0
        results.append(GateResult(
            "min-efficiency", efficiency >= settings.min_efficiency,
            f"efficiency {efficiency:.2%}, minimum {settings.min_efficiency:.2%}"))
    if settings.max_size is not None:
        size = report.summary.total_bytes
        over = size - settings.max_size
        results.append(GateResult(
            "max-size", over <= 0,
            f"size {_fmt(size)}, limit {_fmt(settings.max_size)}"
            + (f": {_fmt(over)} over" if over > 0 else "")))
    if settings.fail_on_secrets:
        secrets = [f for f in report.findings if f.category == "secret"
                   and any(not scope.ignored(ref.path) for ref in f.files)]
        paths = sorted({ref.path for f in secrets for ref in f.files
                        if not scope.ignored(ref.path)})
        results.append(GateResult(
            "fail-on-secrets", not secrets,
            f"{len(paths)} secret file(s) in the image: {', '.join(paths[:5])}"
            + (" …" if len(paths) > 5 else "") if secrets else "no secrets found"))
    return results


def check_diff(diff: Diff, old: Report, new: Report, settings: GateSettings) -> list[GateResult]:
    """Gates of `diff`: the inspect gates on NEW, plus growth and new waste.

    Each report's own `base` decides what its inherited waste is.
    """
    from imagescope.analysis.diff import new_waste_bytes

    results = check_report(new, settings)
    if settings.max_growth is not None:
        growth = diff.total_bytes.delta
        limit = settings.max_growth.limit_for(diff.total_bytes.old)
        percent = diff.total_bytes.percent
        shown = f" ({percent:+.1f}%)" if percent is not None else ""
        verb = "grew" if growth >= 0 else "shrank"
        results.append(GateResult(
            "max-growth", growth <= limit,
            f"{verb} {_fmt(abs(growth))}{shown}, limit {settings.max_growth}"
            + (f": {_fmt(growth - limit)} over" if growth > limit else "")))
    if settings.max_new_waste is not None:
        new_scope, old_scope = _scope(new, settings), _scope(old, settings)
        fresh = new_waste_bytes(old, new, counted_waste(new, new_scope, own_only=True),
                                counted_waste(old, old_scope, own_only=True))
        over = fresh - settings.max_new_waste
        hidden = diff.newly_hidden_base_bytes
        results.append(GateResult(
            "max-new-waste", over <= 0,
            f"new waste {_fmt(fresh)} written by own steps, limit "
            f"{_fmt(settings.max_new_waste)}" + (f": {_fmt(over)} over" if over > 0 else "")
            + (f"; base files newly hidden {_fmt(hidden)} (not counted: they ship either way)"
               if hidden else "")))
    return results


def _scope(report: Report, settings: GateSettings) -> Scope:
    return Scope(base_layers=report.base.layer_count if report.base else 0,
                 ignore=settings.ignore)


def failed(results: Sequence[GateResult]) -> list[GateResult]:
    return [r for r in results if not r.passed]
