"""Renderers: pure functions of a Report or a Diff to text, chosen by format name.

Each format's module is imported only when asked for (rich is not loaded for JSON)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from imagescope.analysis.diff import Diff
    from imagescope.analysis.gates import GateResult
    from imagescope.analysis.report import Report

FORMATS = ("table", "json", "markdown")


@dataclass(frozen=True, slots=True)
class Page:
    """Where the text goes: the number of report entries to list, and for a table its width and
    whether it may use colour."""

    top: int
    width: int = 120
    color: bool = False


def render_report(fmt: str, report: Report, results: Sequence[GateResult], page: Page) -> str:
    """`inspect`'s output in format `fmt` (one of FORMATS)."""
    if fmt == "json":
        from imagescope.render import json

        return json.render(report, results)
    if fmt == "markdown":
        from imagescope.render import markdown

        return markdown.render(report, top=page.top, gate_results=results)
    from imagescope.render import terminal

    return terminal.render(report, top=page.top, width=page.width, color=page.color,
                           gate_results=results)


def render_diff(fmt: str, diff: Diff, results: Sequence[GateResult], page: Page) -> str:
    """`diff`'s output in format `fmt` (one of FORMATS)."""
    if fmt == "json":
        from imagescope.render import json

        return json.render_diff(diff, results, top=max(page.top, 100))
    if fmt == "markdown":
        from imagescope.render import markdown_diff

        return markdown_diff.render(diff, results, top=page.top)
    from imagescope.render import terminal

    return terminal.render_diff(diff, results, top=page.top, width=page.width, color=page.color)
