"""Renderers: pure functions of a Report or a Diff to text, looked up by format name.

`RENDERERS` holds one `Renderer` per format; the CLI offers `FORMATS` and calls
`renderer(fmt)`. Each format's module is imported only when asked for (rich is not loaded for
JSON)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagescope.analysis.diff import Diff
    from imagescope.analysis.gates import GateResult
    from imagescope.analysis.report import Report


@dataclass(frozen=True, slots=True)
class Page:
    """Where the text goes: the number of report entries to list, and for a table its width and
    whether it may use colour."""

    top: int
    width: int = 120
    color: bool = False


Results = Sequence["GateResult"]


@dataclass(frozen=True, slots=True)
class Renderer:
    """One output format: `inspect`'s report and `diff`'s comparison as text."""

    report: Callable[[Report, Results, Page], str]
    diff: Callable[[Diff, Results, Page], str]


def _table_report(report: Report, results: Results, page: Page) -> str:
    from imagescope.render import terminal

    return terminal.render(report, top=page.top, width=page.width, color=page.color,
                           gate_results=results)


def _table_diff(diff: Diff, results: Results, page: Page) -> str:
    from imagescope.render import terminal

    return terminal.render_diff(diff, results, top=page.top, width=page.width, color=page.color)


def _json_report(report: Report, results: Results, page: Page) -> str:
    from imagescope.render import json

    return json.render(report, results)


def _json_diff(diff: Diff, results: Results, page: Page) -> str:
    from imagescope.render import json

    return json.render_diff(diff, results, top=max(page.top, 100))


def _markdown_report(report: Report, results: Results, page: Page) -> str:
    from imagescope.render import markdown

    return markdown.render(report, top=page.top, gate_results=results)


def _markdown_diff(diff: Diff, results: Results, page: Page) -> str:
    from imagescope.render import markdown_diff

    return markdown_diff.render(diff, results, top=page.top)


def _sarif_report(report: Report, results: Results, page: Page) -> str:
    from imagescope.render import sarif

    return sarif.render(report)


def _sarif_diff(diff: Diff, results: Results, page: Page) -> str:
    from imagescope.errors import UsageError

    raise UsageError("--format sarif is for inspect: annotate the new image with "
                     "`imagescope inspect NEW --format sarif`")


def _patch_report(report: Report, results: Results, page: Page) -> str:
    from imagescope.render import patch

    return patch.render(report)


def _patch_diff(diff: Diff, results: Results, page: Page) -> str:
    from imagescope.errors import UsageError

    raise UsageError("--format patch is for inspect: `imagescope inspect NEW --dockerfile PATH "
                     "--format patch`")


RENDERERS: dict[str, Renderer] = {
    "table": Renderer(_table_report, _table_diff),
    "json": Renderer(_json_report, _json_diff),
    "markdown": Renderer(_markdown_report, _markdown_diff),
    "sarif": Renderer(_sarif_report, _sarif_diff),
    "patch": Renderer(_patch_report, _patch_diff),
}
FORMATS = tuple(RENDERERS)


def renderer(fmt: str) -> Renderer:
    """The renderer of format `fmt` (one of FORMATS)."""
    return RENDERERS[fmt]


__all__ = ["FORMATS", "RENDERERS", "Page", "Renderer", "renderer"]
