"""Human-readable report for a terminal (rich + humanize)."""

from __future__ import annotations

import io
from collections.abc import Sequence

from rich.console import Console, Group, OverflowMethod, RenderableType
from rich.table import Table
from rich.text import Text

from imagescope.analysis.diff import Change, Diff
from imagescope.analysis.findings.model import Severity
from imagescope.analysis.gates import GateResult
from imagescope.analysis.overlay import HiddenHow
from imagescope.analysis.report import Report, layer_name
from imagescope.render.text import one_line, printable, signed, size
from imagescope.render.waste_words import (
    base_layers_text,
    base_origin,
    optimized_label,
    waste_split,
)

_HOW_LABEL = {
    HiddenHow.REMOVED: "removed",
    HiddenHow.OVERWRITTEN: "overwritten",
    HiddenHow.IDENTICAL_REWRITE: "identical rewrite",
}


def literal(text: str, style: str = "", *, no_wrap: bool | None = None,
            overflow: OverflowMethod | None = None) -> Text:
    """`text` from the image as a rich `Text`: escaped (`printable`), never parsed as markup."""
    return Text(printable(text), style=style, no_wrap=no_wrap, overflow=overflow)


def renderables(report: Report, *, top: int) -> list[RenderableType]:
    """The summary, the layer table, the `top` largest wasted files, findings and recommendations."""
    summary = report.summary
    image = report.image
    def grid() -> Table:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="bold", min_width=_LABEL_WIDTH)
        table.add_column()
        return table

    top_rows = grid()
    top_rows.add_row("Image", literal(f"{image.reference}  ({image.source})"))
    heads: list[RenderableType] = [top_rows]
    if image.image_id:  # the value users copy: whole on one line, however narrow the table
        heads.append(Verbatim(f"{'ID':<{_LABEL_WIDTH}}  {printable(image.image_id)}",
                              style="bold"))
    head = grid()
    heads.append(head)
    if image.platform:
        head.add_row("Platform", literal(image.platform))
    head.add_row("Total", f"{size(summary.total_bytes)}  ({summary.total_bytes:,} bytes in "
                          f"{summary.layer_count} layers)")
    head.add_row("Final", f"{size(summary.final_bytes)}  ({summary.final_bytes:,} bytes)")
    head.add_row("Wasted", Text.assemble(
        (f"{size(summary.wasted_bytes)}  ({summary.wasted_bytes:,} bytes)",
         "bold red" if summary.wasted_bytes else "green"),
        f"  removed {size(summary.removed_bytes)}, overwritten {size(summary.overwritten_bytes)}"
        f" (identical rewrites {size(summary.identical_rewrite_bytes)})"))
    head.add_row("Efficiency", f"{summary.efficiency:.2%}")
    if report.base is not None:
        base = report.base
        head.add_row("Base image", literal(
            f"{base_layers_text(base)}, {size(base.base_bytes)} (from "
            f"{base_origin(base)})"))
        for label, nbytes in waste_split(base):
            head.add_row("", f"{size(nbytes)}  {label}")

    layers = Table(title="Layers", title_justify="left", expand=True)
    layers.add_column("Step", justify="right", no_wrap=True)
    layers.add_column("Stored", justify="right", no_wrap=True)
    layers.add_column("Files", justify="right", no_wrap=True)
    layers.add_column("Wasted", justify="right", no_wrap=True)
    layers.add_column("Instruction", no_wrap=True, overflow="ellipsis", ratio=1)
    for layer in report.layers:
        layers.add_row(
            str(layer.index),
            size(layer.stored_bytes),
            size(layer.added_bytes),
            Text(size(layer.wasted_bytes), style="red" if layer.wasted_bytes else ""),
            Text(one_line(layer_name(report, layer.index))),
        )

    parts: list[RenderableType] = [*heads, Text(), layers]
    if top and report.wasted_files:
        parts.append(Text())
        files = Table(title=f"Top wasted files ({min(top, len(report.wasted_files))} of "
                            f"{len(report.wasted_files)})", title_justify="left", expand=True)
        files.add_column("Bytes", justify="right", no_wrap=True)
        files.add_column("How", no_wrap=True)
        files.add_column("Steps", no_wrap=True)
        files.add_column("Path", overflow="fold", ratio=1)
        for wasted in report.wasted_files[:top]:
            files.add_row(size(wasted.bytes), _HOW_LABEL[wasted.how],
                          f"#{wasted.layer_index} → #{wasted.hidden_by_layer}",
                          literal(wasted.path))
        parts.append(Text("Steps: the step that wrote the file → the step that hid it.",
                          style="dim"))
        parts.insert(-1, files)
    elif not report.wasted_files:
        parts += [Text(), Text("No wasted bytes: every file written is visible in the final image.",
                               style="green")]
    parts += _findings(report, top=top)
    parts += _recommendations(report, top=top)
    for warning in report.warnings:
        parts.append(literal(f"warning: {warning}", style="yellow"))
    return parts


_SEVERITY_STYLE = {Severity.HIGH: "bold red", Severity.MEDIUM: "yellow", Severity.LOW: "",
                   Severity.INFO: "dim"}


def _findings(report: Report, *, top: int) -> list[RenderableType]:
    """The `top` findings, most severe first: severity, bytes, steps and title."""
    findings = report.findings
    if not findings:
        return [Text(), Text("No findings.", style="green")]
    if not top:
        return [Text(), Text(f"{len(findings)} findings (--top 0 lists none).")]
    table = Table(title=f"Findings ({min(top, len(findings))} of {len(findings)})",
                  title_justify="left", expand=True)
    table.add_column("Severity", no_wrap=True)
    table.add_column("Bytes", justify="right", no_wrap=True)
    table.add_column("Steps", no_wrap=True)
    table.add_column("Finding", overflow="fold", ratio=1)
    for finding in findings[:top]:
        table.add_row(Text(str(finding.severity), style=_SEVERITY_STYLE[finding.severity]),
                      size(finding.bytes) if finding.bytes else "-",
                      ", ".join(str(i) for i in finding.layers) or "-",
                      Text(one_line(finding.title)))
    return [Text(), table]


_LABEL_WIDTH = len("Efficiency")  # the longest label of the summary


class Verbatim(Text):
    """A line printed as it is, however wide: never wrapped, never cut (`_to_text`)."""


def split_change(change: str) -> tuple[str, list[str]]:
    """A recommendation's change as its prose line and the snippet lines that follow it: a
    one-line change is prose; a longer one is a snippet, after a first line ending in `:`."""
    lines = change.strip("\n").split("\n")
    if len(lines) == 1:
        return lines[0], []
    if lines[0].endswith(":"):
        return lines[0], lines[1:]
    return "", lines


def _recommendations(report: Report, *, top: int) -> list[RenderableType]:
    """The `top` recommendations, most bytes saved first, and the size if all are applied."""
    recommendations = report.recommendations
    if not recommendations or not top:
        return []
    shown = recommendations[:top]
    parts: list[RenderableType] = [
        Text(), Text(f"Recommendations ({len(shown)} of {len(recommendations)})", style="italic"),
    ]
    for number, rec in enumerate(shown, start=1):
        facts = []
        if rec.saved_bytes:
            facts.append(f"saves {size(rec.saved_bytes)} ({rec.saved_bytes:,} bytes)")
        if rec.steps:
            facts.append(f"step{'s' if len(rec.steps) > 1 else ''} "
                         + ", ".join(str(i) for i in rec.steps))
        body = [Text(one_line(rec.title), style="bold")]
        if facts:
            body.append(Text(" · ".join(facts), style="dim"))
        prose, snippet = split_change(rec.change)
        if prose:
            body.append(literal(prose))
        entry = Table.grid(padding=(0, 1))
        entry.add_column(justify="right", no_wrap=True, min_width=len(str(len(shown))) + 1)
        entry.add_column(overflow="fold", ratio=1)
        entry.add_row(f"{number}.", Group(*body))
        parts.append(entry)
        indent = " " * (len(str(len(shown))) + 2)
        # a snippet is printed as written, never re-wrapped nor cut: it must paste into a
        # Dockerfile
        parts += [Verbatim(indent + printable(line)) for line in snippet]
        parts.append(Text())  # a blank line after each
    if report.optimized_bytes is not None:
        saved = report.summary.total_bytes - report.optimized_bytes
        parts.append(Text(f"{optimized_label(report)}: {size(report.optimized_bytes)} (saves "
                          f"{size(saved)})", style="bold"))
    return parts


def render(report: Report, *, top: int, width: int = 100, color: bool = False,
           gate_results: Sequence[GateResult] = ()) -> str:
    """The report as text of the given width (ANSI colours only when `color`)."""
    return _to_text([*renderables(report, top=top), *_gate_lines(gate_results)], width=width,
                    color=color)


def _to_text(parts: list[RenderableType], *, width: int, color: bool) -> str:
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color,
                      highlight=False, emoji=False)
    for part in parts:
        console.print(part, soft_wrap=isinstance(part, Verbatim))
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())


def diff_renderables(diff: Diff, gate_results: Sequence[GateResult] = (), *,
                     top: int) -> list[RenderableType]:
    """Sizes old → new, shared layers, changed steps, findings, the largest file changes."""

    def row(label: str, change: Change) -> tuple[str, str, str, str]:
        pct = f" ({change.percent:+.1f}%)" if change.percent is not None else ""
        return label, size(change.old), size(change.new), signed(change.delta) + pct

    head = Table(title=literal(f"{diff.old.reference} → {diff.new.reference}"),
                 title_justify="left")
    for name, justify in (("", "left"), ("Old", "right"), ("New", "right"), ("Change", "right")):
        head.add_column(name, justify=justify, no_wrap=True)  # type: ignore[arg-type]
    head.add_row(*row("Shipped", diff.total_bytes))
    head.add_row(*row("Final", diff.final_bytes))
    head.add_row(*row("Wasted", diff.wasted_bytes))
    head.add_row(*row("  by own steps", diff.own_wasted_bytes))
    if diff.base_hidden_bytes.old or diff.base_hidden_bytes.new:
        head.add_row(*row("  base files hidden", diff.base_hidden_bytes))
    head.add_row("Efficiency", f"{diff.old_efficiency:.2%}", f"{diff.new_efficiency:.2%}",
                 f"{(diff.new_efficiency - diff.old_efficiency) * 100:+.2f} pp")
    head.add_row("Layers", str(diff.layer_count.old), str(diff.layer_count.new),
                 f"{diff.layer_count.delta:+d}")
    parts: list[RenderableType] = [head, Text(
        f"{diff.shared_layers} layer(s) shared ({size(diff.shared_bytes)}); new layers add "
        f"{size(diff.new_layer_bytes)}; new waste {size(diff.new_waste_bytes)} written by own "
        "steps" + (f"; base files newly hidden {size(diff.newly_hidden_base_bytes)} (ship "
                   "either way)" if diff.newly_hidden_base_bytes else ""))]
    steps = Table(title="Steps", title_justify="left", expand=True)
    for name in ("#", "Status", "Added", "Wasted"):
        steps.add_column(name, no_wrap=True, justify="right" if name != "Status" else "left")
    steps.add_column("Instruction", no_wrap=True, overflow="ellipsis", ratio=1)
    for step in diff.steps:
        text = step.new_instruction or step.old_instruction or ""
        if step.status == "changed":
            text = f"{step.old_instruction} → {step.new_instruction}"
        steps.add_row("-" if step.new_index is None else str(step.new_index), step.status,
                      signed(step.added_bytes.delta), signed(step.wasted_bytes.delta),
                      Text(one_line(text)))
    parts += [Text(), steps]
    for title, changes, new in (("New findings", diff.new_findings, True),
                                ("Resolved findings", diff.resolved_findings, False)):
        if changes:
            parts.append(Text(f"{title} ({len(changes)})", style="bold"))
            for change in changes[:top]:
                nbytes = change.bytes.new if new else change.bytes.old
                parts.append(Text(f"  {size(nbytes):>10}  {one_line(change.title)}"))
    if diff.files and top:
        files = Table(title=f"Files ({min(top, len(diff.files))} of {len(diff.files)} changed)",
                      title_justify="left", expand=True)
        for name in ("Δ", "Change"):
            files.add_column(name, no_wrap=True, justify="right" if name == "Δ" else "left")
        files.add_column("Path", overflow="fold", ratio=1)
        for file_change in diff.files[:top]:
            what = (", ".join(file_change.changes) if file_change.status == "changed"
                    else file_change.status)
            files.add_row(signed(file_change.size.delta), what, literal(file_change.path))
        parts += [Text(), files]
    parts += _gate_lines(gate_results)
    return parts


def _gate_lines(results: Sequence[GateResult]) -> list[RenderableType]:
    lines: list[RenderableType] = []
    if results:
        lines.append(Text())
    for result in results:
        mark, style = ("PASS", "green") if result.passed else ("FAIL", "bold red")
        lines.append(Text.assemble((f"{mark} ", style),
                                   one_line(f"{result.gate}: {result.message}")))
    return lines


def render_diff(diff: Diff, gate_results: Sequence[GateResult] = (), *, top: int,
                width: int = 100, color: bool = False) -> str:
    return _to_text(diff_renderables(diff, gate_results, top=top), width=width, color=color)
