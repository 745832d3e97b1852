"""Markdown for `imagescope diff`: a pull-request comment, stable across runs, within GitHub's limit."""

from __future__ import annotations

from collections.abc import Sequence

from imagescope.analysis.diff import Change, Diff, FileChange, FindingChange, StepChange
from imagescope.analysis.gates import GateResult
from imagescope.render.markdown import MAX_COMMENT_CHARS, code, gates_section, inline
from imagescope.render.text import clip, signed, size

MARKER = "<!-- imagescope-diff -->"
MAX_INSTRUCTION_CHARS = 120
_STATUS_LABEL = {"unchanged": "unchanged", "rebuilt": "rebuilt", "changed": "changed",
                 "added": "**added**", "removed": "~~removed~~"}


def percent(change: Change) -> str:
    value = change.percent
    return "" if value is None else f" ({value:+.1f}%)"


def headline(diff: Diff) -> str:
    """One sentence: how much the change adds and where new waste comes from."""
    growth = diff.total_bytes.delta
    verb = "adds" if growth > 0 else "removes" if growth < 0 else "keeps the size:"
    text = f"This change {verb} {size(abs(growth))}{percent(diff.total_bytes)}" if growth else \
        "This change keeps the shipped size"
    if diff.new_waste_steps:
        step, nbytes = diff.new_waste_steps[0]
        text += f"; new waste: {size(diff.new_waste_bytes)}, most from {code(_clip(step))}"
        if nbytes != diff.new_waste_bytes:
            text += f" ({size(nbytes)})"
    else:
        text += "; no new waste from own steps"
    if diff.newly_hidden_base_bytes:
        text += (f"; it hides {size(diff.newly_hidden_base_bytes)} more of the base image's "
                 "files (they ship either way)")
    return text + "."


def _clip(text: str, limit: int = MAX_INSTRUCTION_CHARS) -> str:
    return clip(" ".join(text.split()), limit)


def _row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |\n"


def _summary(diff: Diff) -> list[str]:
    def line(label: str, change: Change) -> str:
        return _row([label, size(change.old), size(change.new),
                     signed(change.delta) + percent(change)])

    rows = [
        "| | Old | New | Change |\n", "|---|---:|---:|---:|\n",
        line("Shipped (all layers)", diff.total_bytes),
        line("Final filesystem", diff.final_bytes),
        line("Wasted", diff.wasted_bytes),
        line("↳ written by own steps", diff.own_wasted_bytes),
        *([line("↳ base files hidden by own steps", diff.base_hidden_bytes)]
          if diff.base_hidden_bytes.old or diff.base_hidden_bytes.new else []),
        _row(["Efficiency", f"{diff.old_efficiency:.2%}", f"{diff.new_efficiency:.2%}",
              f"{(diff.new_efficiency - diff.old_efficiency) * 100:+.2f} pp"]),
        _row(["Layers", str(diff.layer_count.old), str(diff.layer_count.new),
              f"{diff.layer_count.delta:+d}"]),
    ]
    shared = (f"{diff.shared_layers} layer(s) shared with the old image "
              f"({size(diff.shared_bytes)}); new layers add {size(diff.new_layer_bytes)}.")
    return ["".join(rows), shared, ""]


def _step_row(step: StepChange) -> str:
    if step.status in ("changed",):
        text = (f"{code(_clip(step.old_instruction or ''), cell=True)} → "
                f"{code(_clip(step.new_instruction or ''), cell=True)}")
    else:
        text = code(_clip(step.new_instruction or step.old_instruction or ""), cell=True)
    index = "-" if step.new_index is None else str(step.new_index)
    return _row([index, _STATUS_LABEL[step.status], text, signed(step.added_bytes.delta),
                 signed(step.wasted_bytes.delta)])


def _steps(diff: Diff) -> list[str]:
    changed = [s for s in diff.steps if s.status != "unchanged"]
    unchanged = len(diff.steps) - len(changed)
    lines = [f"### Steps ({len(changed)} changed, {unchanged} unchanged)", ""]
    if changed:
        lines.append("| # | Status | Instruction | Added | Wasted |\n|---:|---|---|---:|---:|\n"
                     + "".join(_step_row(s) for s in changed))
    return lines


def _finding_lines(title: str, changes: list[FindingChange], new: bool) -> list[str]:
    if not changes:
        return []
    lines = [f"### {title} ({len(changes)})", ""]
    for change in changes:
        nbytes = change.bytes.new if new else change.bytes.old
        amount = f" — {size(nbytes)}" if nbytes else ""
        lines.append(f"- {inline(change.title)}{amount}")
    return [*lines, ""]


def _file_row(change: FileChange) -> str:
    what = ", ".join(change.changes) if change.status == "changed" else change.status
    return _row([code(change.path, cell=True), what,
                 size(change.size.old) if change.status != "added" else "-",
                 size(change.size.new) if change.status != "removed" else "-",
                 signed(change.size.delta)])


def _details(summary: str, table: str) -> str:
    return f"<details>\n<summary>{summary}</summary>\n\n{table}\n</details>\n"


def _files(diff: Diff, top: int) -> list[str]:
    blocks = []
    if diff.directories:
        rows = "".join(_row([code(r.path, cell=True), signed(r.added_bytes),
                             signed(-r.removed_bytes), signed(r.changed_delta),
                             signed(r.net_bytes)]) for r in diff.directories[:top])
        blocks.append(_details(
            f"Directories ({min(top, len(diff.directories))} of {len(diff.directories)})",
            "| Directory | Added | Removed | Changed | Net |\n|---|---:|---:|---:|---:|\n" + rows))
    if diff.files:
        rows = "".join(_file_row(c) for c in diff.files[:top])
        blocks.append(_details(
            f"Files ({min(top, len(diff.files))} of {len(diff.files)} changed)",
            "| Path | Change | Old | New | Δ |\n|---|---|---:|---:|---:|\n" + rows))
    return blocks


def render(diff: Diff, gate_results: Sequence[GateResult] = (), *, top: int = 10,
           limit: int = MAX_COMMENT_CHARS) -> str:
    """The diff as a PR comment: headline, sizes, gates, steps, findings, then file details.

    File details shrink first, then steps, to stay within `limit` characters.
    """
    title = (f"## imagescope: {code(_clip(diff.old.reference, 200))} → "
             f"{code(_clip(diff.new.reference, 200))}")
    head = [MARKER, title, "", headline(diff), "", *_summary(diff), gates_section(gate_results)]
    findings = [*_finding_lines("New findings", diff.new_findings, True),
                *_finding_lines("Resolved findings", diff.resolved_findings, False)]
    for rows in (top, 20, 5, 0):
        text = "\n".join([*head, *_steps(diff), "", *findings, *_files(diff, rows)])
        if len(text.encode()) <= limit - 200:
            return text if rows == top else text + (
                f"\n_Lists shortened to {rows} rows to fit a comment; `--format json` has "
                "everything._\n")
    text = "\n".join([*head, *findings]).encode()[: limit - 200].decode(errors="ignore")
    return text + "\n\n_Truncated to fit a comment; `--format json` has " \
                                 "everything._\n"
