"""Human-readable report for a terminal (rich + humanize)."""

from __future__ import annotations

import io

import humanize
from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from imagescope.report import HiddenHow, Report

_HOW_LABEL = {
    HiddenHow.REMOVED: "removed",
    HiddenHow.OVERWRITTEN: "overwritten",
    HiddenHow.IDENTICAL_REWRITE: "identical rewrite",
}


def size(nbytes: int | None) -> str:
    """Binary-unit size for people; exact figures live in the JSON output."""
    if nbytes is None:
        return "-"
    if nbytes < 1024:
        return f"{nbytes} B"
    return humanize.naturalsize(nbytes, binary=True, format="%.1f")


def printable(path: str) -> str:
    """A path safe to print: undecodable bytes shown as \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def renderables(report: Report, *, top: int) -> list[RenderableType]:
    """The summary, the layer table and the `top` largest wasted files."""
    summary = report.summary
    image = report.image
    head = Table.grid(padding=(0, 2))
    head.add_column(style="bold")
    head.add_column()
    head.add_row("Image", Text(f"{image.reference}  ({image.source})"))
    if image.image_id:
        head.add_row("ID", image.image_id)
    if image.platform:
        head.add_row("Platform", image.platform)
    head.add_row("Total", f"{size(summary.total_bytes)}  ({summary.total_bytes:,} bytes in "
                          f"{summary.layer_count} layers)")
    head.add_row("Final", f"{size(summary.final_bytes)}  ({summary.final_bytes:,} bytes)")
    head.add_row("Wasted", Text.assemble(
        (f"{size(summary.wasted_bytes)}  ({summary.wasted_bytes:,} bytes)",
         "bold red" if summary.wasted_bytes else "green"),
        f"  removed {size(summary.removed_bytes)}, overwritten {size(summary.overwritten_bytes)}"
        f" (identical rewrites {size(summary.identical_rewrite_bytes)})"))
    head.add_row("Efficiency", f"{summary.efficiency:.2%}")

    layers = Table(title="Layers", title_justify="left", expand=True)
    layers.add_column("#", justify="right", no_wrap=True)
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
            Text(" ".join((layer.instruction or "-").split())),
        )

    parts: list[RenderableType] = [head, Text(), layers]
    if top and report.wasted_files:
        parts.append(Text())
        files = Table(title=f"Top wasted files ({min(top, len(report.wasted_files))} of "
                            f"{len(report.wasted_files)})", title_justify="left", expand=True)
        files.add_column("Bytes", justify="right", no_wrap=True)
        files.add_column("How", no_wrap=True)
        files.add_column("Layers", no_wrap=True)
        files.add_column("Path", overflow="fold", ratio=1)
        for wasted in report.wasted_files[:top]:
            files.add_row(size(wasted.bytes), _HOW_LABEL[wasted.how],
                          f"#{wasted.layer_index} → #{wasted.hidden_by_layer}",
                          Text(printable(wasted.path)))
        parts.append(Text("Layers: the step that wrote the file → the step that hid it.",
                          style="dim"))
        parts.insert(-1, files)
    elif not report.wasted_files:
        parts += [Text(), Text("No wasted bytes: every file written is visible in the final image.",
                               style="green")]
    for warning in report.warnings:
        parts.append(Text(f"warning: {warning}", style="yellow"))
    return parts


def render(report: Report, *, top: int, width: int = 100, color: bool = False) -> str:
    """The report as text of the given width (ANSI colours only when `color`)."""
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, force_terminal=color, no_color=not color,
                      highlight=False, emoji=False)
    console.print(Group(*renderables(report, top=top)))
    return "".join(line.rstrip() + "\n" for line in buffer.getvalue().splitlines())
