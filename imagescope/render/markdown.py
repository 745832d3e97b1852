"""Markdown report for a pull-request comment: stable bytes, always under GitHub's size limit.

The text is a pure function of the Report: no timestamps, no terminal width, lists in the
report's order, so a bot finds its comment by `MARKER` and updates it in place only when the
image changed. Anything taken from the image (paths, instructions, titles quoting them) is
escaped: Markdown and HTML specials in prose, pipes in table cells, backtick runs in code.

Sections in priority order: summary, findings, recommendations, then collapsible details
(layers, wasted files, each finding's files). When the whole would exceed `limit`, the lowest
priority details shrink first — finding file lists, then finding blocks, wasted files, layer
rows, and last recommendations and findings — and a closing note says what was cut and that
`--format json` has everything.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, fields, replace

from imagescope.analysis.findings.model import FileRef, Finding
from imagescope.analysis.gates import GateResult
from imagescope.analysis.overlay import HiddenHow
from imagescope.analysis.recommend import Recommendation
from imagescope.analysis.report import LayerReport, Report, WastedFile, base_layers, layer_name
from imagescope.render.json import MAX_FILES_PER_FINDING
from imagescope.render.text import clip, one_line, printable, size
from imagescope.render.waste_words import (
    base_layers_text,
    base_origin,
    optimized_label,
    waste_split,
)

MARKER = "<!-- imagescope-report -->"
# GitHub rejects a comment body over 65,536 characters; measured here in UTF-8 bytes, which are
# never fewer than characters however a server counts them.
MAX_COMMENT_CHARS = 65_536
# Room for what is never cut: heading, summary, warnings, section heads and the note (all capped
# below; under 8 KiB even when every character of them needs an escape).
MIN_LIMIT = 16_384

# Caps on single cells, so that one huge instruction or title cannot crowd out the rest.
MAX_REFERENCE_CHARS = 200
MAX_INSTRUCTION_CHARS = 300
MAX_TITLE_CHARS = 500
MAX_CHANGE_CHARS = 3_000
MAX_SUMMARY_TITLE_CHARS = 120
MAX_WARNINGS = 5
MAX_WARNING_CHARS = 200

_HOW_LABEL = {
    HiddenHow.REMOVED: "removed",
    HiddenHow.OVERWRITTEN: "overwritten",
    HiddenHow.IDENTICAL_REWRITE: "identical rewrite",
}
# Markdown specials escaped in prose. `<`, `>` and `&` become entities, which also hold in HTML
# blocks; `$` would open GitHub math. Other punctuation is inert where prose appears here (never
# at the start of a line).
_TEXT_ESCAPES = str.maketrans({
    "\\": "\\\\", "`": "\\`", "*": "\\*", "_": "\\_", "[": "\\[", "]": "\\]", "~": "\\~",
    "|": "\\|", "$": "\\$", "<": "&lt;", ">": "&gt;", "&": "&amp;",
})
_HTML_ESCAPES = str.maketrans({"<": "&lt;", ">": "&gt;", "&": "&amp;"})
_CODE_PAIR = re.compile(r"`([^`]+)`")
_BACKTICKS = re.compile(r"`+")


# --- escaping -----------------------------------------------------------------------------

def escape_text(text: str) -> str:
    """Prose as literal text in Markdown, table cells included."""
    return _escape(one_line(text))


def _escape(text: str) -> str:
    return printable(text).translate(_TEXT_ESCAPES)


def _html(text: str) -> str:
    """Literal text inside an HTML block (a `<summary>`), where Markdown is not parsed."""
    return one_line(text).translate(_HTML_ESCAPES)


def code(text: str, *, cell: bool = False) -> str:
    """`text` as inline code, shown verbatim (spaces kept, control characters escaped).

    The fence is one backtick longer than the longest run inside. In a table cell every pipe is
    written `\\|`: GFM takes a pipe right after a backslash as part of the cell whatever comes
    before, and removes that one backslash, inside code too.
    """
    body = printable(text) or " "
    if cell:
        body = body.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in _BACKTICKS.findall(body)), default=0) + 1)
    if body.startswith("`") or body.endswith("`") or (body[0] == " " and body[-1] == " "):
        body = f" {body} "
    return f"{fence}{body}{fence}"


def inline(text: str, *, cell: bool = False) -> str:
    """Prose where `paired backticks` mark code (titles, changes): code kept, the rest escaped."""
    parts = _CODE_PAIR.split(one_line(text))
    return "".join(code(part, cell=cell) if odd else _escape(part)
                   for odd, part in ((i % 2 == 1, p) for i, p in enumerate(parts)))


def code_block(text: str, language: str = "") -> str:
    """A fenced block no line of `text` can close; control characters escaped line by line."""
    lines = [printable(line) for line in text.split("\n")]
    longest = max((len(run) for line in lines for run in _BACKTICKS.findall(line)), default=0)
    fence = "`" * max(3, longest + 1)
    return "\n".join([fence + language, *lines, fence])


_DOCKERFILE_LINE = re.compile(r"^(FROM|RUN|COPY|ADD|USER|WORKDIR|ENV|ARG|CMD|ENTRYPOINT)\b")


def _bytes(nbytes: int) -> str:
    return f"{size(nbytes)} ({nbytes:,} bytes)"


def _steps(indices: Iterable[int]) -> str:
    return ", ".join(str(i) for i in indices) or "-"


# --- document -----------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class _Plan:
    """How many items of each list the document shows, in the order they are cut."""

    finding_files: int  # files listed per finding
    finding_blocks: int  # findings whose files are listed
    wasted_files: int
    layers: int
    suggestion: int  # 1: the suggested Dockerfile shown, 0: not
    recommendations: int
    findings: int


_CUT_ORDER = tuple(f.name for f in fields(_Plan))
_FLOOR = {"finding_files": 1}  # below one file a finding's block is dropped instead


@dataclass(frozen=True, slots=True)
class _FindingBlock:
    number: int  # the finding's row in the findings table
    title: str  # raw, for the <summary>
    head: str  # title, detail and totals in Markdown
    rows: list[str]  # its largest files, up to `top`
    file_count: int


@dataclass(frozen=True, slots=True)
class _Parts:
    """Everything rendered once; a plan only chooses how much of each list to join."""

    head: str
    findings_head: str
    finding_rows: list[str]
    recommendation_blocks: list[str]
    layer_rows: list[str]
    suggestion: str  # the suggested Dockerfile's section ("" without one)
    wasted_rows: list[str]
    finding_blocks: list[_FindingBlock]


def render(report: Report, *, top: int = 10, limit: int = MAX_COMMENT_CHARS,
           gate_results: Sequence[GateResult] = ()) -> str:
    """The report as a pull-request comment of at most `limit` UTF-8 bytes.

    `top` bounds every list: findings, recommendations, wasted files and each finding's files.
    Gate verdicts, when given, follow the summary and are never cut.
    """
    if limit < MIN_LIMIT:
        raise ValueError(f"limit must be at least {MIN_LIMIT} bytes, got {limit}")
    parts = _parts(report, top=top, gate_results=gate_results)
    natural = _Plan(
        finding_files=max((len(block.rows) for block in parts.finding_blocks), default=0),
        finding_blocks=len(parts.finding_blocks),
        wasted_files=len(parts.wasted_rows),
        layers=len(parts.layer_rows),
        suggestion=1 if parts.suggestion else 0,
        recommendations=len(parts.recommendation_blocks),
        findings=len(parts.finding_rows),
    )

    def measure(plan: _Plan) -> int:
        return len(_assemble(report, parts, plan, natural).encode("utf-8"))

    plan = natural
    for name in _CUT_ORDER:
        if measure(plan) <= limit:
            break
        floor = min(_FLOOR.get(name, 0), getattr(natural, name))
        plan = _largest_fitting(plan, name, floor, getattr(natural, name), measure, limit)
    return _assemble(report, parts, plan, natural)


def _largest_fitting(plan: _Plan, name: str, low: int, high: int,
                     measure: Callable[[_Plan], int], limit: int) -> _Plan:
    """`plan` with `name` set to the largest count in [low, high] that fits, else to `low`.

    Only counts that were measured to fit are kept, so the result fits even where a "… N more"
    line makes the size not quite monotonic in the count.
    """
    if measure(replace(plan, **{name: low})) > limit:
        return replace(plan, **{name: low})
    while low < high:
        mid = (low + high + 1) // 2
        if measure(replace(plan, **{name: mid})) <= limit:
            low = mid
        else:
            high = mid - 1
    return replace(plan, **{name: low})


def gates_section(results: Sequence[GateResult]) -> str:
    """A ✅/❌ line per CI gate with what was measured against what; empty without gates."""
    if not results:
        return ""
    lines = ["### Gates", ""]
    for result in results:
        mark = "✅" if result.passed else "❌"
        lines.append(f"- {mark} `{result.gate}`: {escape_text(result.message)}")
    return "\n".join(lines) + "\n"


def _parts(report: Report, *, top: int, gate_results: Sequence[GateResult] = ()) -> _Parts:
    listed = report.findings[:top]
    return _Parts(
        head=_head(report) + (("\n" + gates_section(gate_results)) if gate_results else ""),
        findings_head=_findings_head(report.findings, top),
        finding_rows=[_finding_row(number, finding)
                      for number, finding in enumerate(listed, start=1)],
        recommendation_blocks=[_recommendation(number, rec) for number, rec
                               in enumerate(report.recommendations[:top], start=1)],
        layer_rows=[_layer_row(report, layer) for layer in report.layers],
        suggestion=_suggestion(report),
        wasted_rows=[_wasted_row(wasted) for wasted in report.wasted_files[:top]],
        finding_blocks=[_FindingBlock(number, finding.title, _finding_block_head(number, finding),
                                      [_finding_file_row(ref) for ref in finding.files[:top]],
                                      len(finding.files))
                        for number, finding in enumerate(listed, start=1) if finding.files],
    )


def _assemble(report: Report, parts: _Parts, plan: _Plan, natural: _Plan) -> str:
    out = [parts.head, parts.findings_head]
    if plan.findings:
        out.append(_table(["#", "Severity", "Size", "Steps", "Finding"],
                          ["---:", "---", "---:", "---", "---"],
                          parts.finding_rows[:plan.findings]))
    if parts.finding_rows:
        out += _more("finding", cut=len(parts.finding_rows) - plan.findings,
                     beyond_top=len(report.findings) - len(parts.finding_rows))

    out.append(f"### Recommendations ({len(report.recommendations)})\n")
    if not report.recommendations:
        out.append("No recommendations.\n")
    out += parts.recommendation_blocks[:plan.recommendations]
    out += _more("recommendation", cut=len(parts.recommendation_blocks) - plan.recommendations,
                 beyond_top=len(report.recommendations) - len(parts.recommendation_blocks))

    if plan.suggestion:
        out.append(parts.suggestion)

    if plan.layers:
        out.append(_details(f"Layers ({len(parts.layer_rows)})", [
            _table(["Step", "Stored", "Added", "Wasted", "Instruction"],
                   ["---:", "---:", "---:", "---:", "---"], parts.layer_rows[:plan.layers]),
            *_more("layer", cut=len(parts.layer_rows) - plan.layers),
        ]))

    if plan.wasted_files:
        files = report.wasted_files
        which = (f"largest {plan.wasted_files:,} of {len(files):,}"
                 if plan.wasted_files < len(files) else f"{len(files):,}")
        out.append(_details(
            f"Wasted files: {which}, {_html(size(report.summary.wasted_bytes))} in all",
            [_table(["Size", "How", "Steps", "Path"], ["---:", "---", "---", "---"],
                    parts.wasted_rows[:plan.wasted_files]),
             "Steps: the step that wrote the file → the step that hid it.\n"]))

    for block in parts.finding_blocks[:plan.finding_blocks]:
        shown = block.rows[:plan.finding_files]
        count = block.file_count
        json_has = ("lists every one" if count <= MAX_FILES_PER_FINDING
                    else f"lists the largest {MAX_FILES_PER_FINDING:,}")
        listed = f"{len(shown):,} of {count:,}" if len(shown) < count else f"{count:,}"
        summary = (f"Finding {block.number}: {listed} file{'' if count == 1 else 's'} — "
                   f"{_html(clip(block.title, MAX_SUMMARY_TITLE_CHARS))}")
        out.append(_details(summary, [
            block.head,
            _table(["Size", "Steps", "Path"], ["---:", "---", "---"], shown),
            *_more("file", cut=len(block.rows) - len(shown), beyond_top=count - len(block.rows),
                   json_has=json_has),
        ]))

    note = _truncation_note(plan, natural, report.image.reference)
    if note:
        out.append(note)
    return "\n".join(out)


def _table(header: list[str], align: list[str], rows: list[str]) -> str:
    return "".join([f"| {' | '.join(header)} |\n", f"| {' | '.join(align)} |\n", *rows])


def _details(summary: str, body: list[str]) -> str:
    return "\n".join(["<details>", f"<summary>{summary}</summary>", "", *body, "</details>\n"])


def _more(noun: str, *, cut: int, beyond_top: int = 0,
          json_has: str = "lists every one") -> list[str]:
    """The line that stands for the items not shown, and why they are not."""
    count = cut + beyond_top
    if count <= 0:
        return []
    reasons = []
    if beyond_top:
        reasons.append(f"{beyond_top:,} beyond `--top`" if cut else "beyond `--top`")
    if cut:
        reasons.append(f"{cut:,} left out for length" if beyond_top else "left out for length")
    why = ", ".join(reasons)
    plural = "" if count == 1 else "s"
    return [f"… {count:,} more {noun}{plural} ({why}; `--format json` {json_has}).\n"]


# --- sections -----------------------------------------------------------------------------

def _head(report: Report) -> str:
    image, summary = report.image, report.summary
    facts = [escape_text(clip(image.source, MAX_REFERENCE_CHARS))]
    if image.platform:
        facts.append(escape_text(clip(image.platform, MAX_REFERENCE_CHARS)))
    if image.image_id:
        facts.append(f"ID {code(clip(image.image_id, MAX_REFERENCE_CHARS))}")
    if image.repo_digest:
        facts.append(f"digest {code(clip(image.repo_digest, MAX_REFERENCE_CHARS))}")
    wasted = f"**{_bytes(summary.wasted_bytes)}**" if summary.wasted_bytes else "none"
    rows = [
        ("Shipped (all layers)", _bytes(summary.total_bytes)),
        ("Final filesystem", _bytes(summary.final_bytes)),
        ("Wasted", wasted),
        ("↳ removed by a later step", _bytes(summary.removed_bytes)),
        ("↳ overwritten by a later step", _bytes(summary.overwritten_bytes)),
        ("↳ of which identical rewrites", _bytes(summary.identical_rewrite_bytes)),
        ("Efficiency", f"{summary.efficiency:.2%}"),
        ("Layers", str(summary.layer_count)),
    ]
    if report.base is not None:
        base = report.base
        origin = escape_text(clip(base_origin(base), MAX_REFERENCE_CHARS))
        rows.append(("Base image",
                     f"{base_layers_text(base)}, {_bytes(base.base_bytes)} (from {origin})"))
        rows += [(f"↳ {label}", _bytes(nbytes)) for label, nbytes in waste_split(base)]
    if report.optimized_bytes is not None and report.recommendations:
        saved = summary.total_bytes - report.optimized_bytes
        rows.append((optimized_label(report),
                     f"**{_bytes(report.optimized_bytes)}**, saves {_bytes(saved)}"))
    lines = [
        MARKER,
        f"## imagescope: {code(clip(image.reference, MAX_REFERENCE_CHARS))}",
        "",
        " · ".join(facts),
        "",
        _table(["Summary", "Size"], ["---", "---:"], [f"| {a} | {b} |\n" for a, b in rows]),
    ]
    warnings = report.warnings[:MAX_WARNINGS]
    lines += [f"> **Warning:** {escape_text(clip(w, MAX_WARNING_CHARS))}  " for w in warnings]
    if len(report.warnings) > len(warnings):
        lines.append(f"> … {len(report.warnings) - len(warnings)} more warnings.")
    if warnings:
        lines.append("")
    return "\n".join(lines)


def _findings_head(findings: list[Finding], top: int) -> str:
    text = f"### Findings ({len(findings)})\n"
    if not findings:
        return text + "\nNo findings.\n"
    if not top:
        return text + "\nNone listed (`--top 0`).\n"
    return text


def _finding_row(number: int, finding: Finding) -> str:
    title = inline(clip(finding.title, MAX_TITLE_CHARS), cell=True)
    nbytes = size(finding.bytes) if finding.bytes else "-"
    return f"| {number} | {finding.severity} | {nbytes} | {_steps(finding.layers)} | {title} |\n"


def _recommendation(number: int, rec: Recommendation) -> str:
    facts = []
    if rec.saved_bytes:
        facts.append(f"saves {_bytes(rec.saved_bytes)}")
    if rec.steps:
        facts.append(f"step{'s' if len(rec.steps) > 1 else ''} {_steps(rec.steps)}")
    head = f"**{number}. {inline(clip(rec.title, MAX_TITLE_CHARS))}**"
    if facts:
        head += " · " + " · ".join(facts)
    change = rec.change.strip("\n")
    shortened = len(change) > MAX_CHANGE_CHARS
    change = clip(change, MAX_CHANGE_CHARS)
    lines = change.split("\n")
    if len(lines) == 1:
        body = [f"{head}  ", f"Change: {inline(change)}"]
    else:
        prose = lines[0] if lines[0].endswith(":") else ""
        snippet = "\n".join(lines[1:] if prose else lines)
        language = "dockerfile" if _DOCKERFILE_LINE.match(snippet) else ""
        body = [f"{head}  ", f"Change: {inline(prose)}".rstrip(), "",
                code_block(snippet, language)]
    if shortened:
        body += ["", "The change was shortened; `--format json` has it whole."]
    return "\n".join(body) + "\n"


def _suggestion(report: Report) -> str:
    """The suggested Dockerfile as a diff, its estimate above it; "" without a suggestion."""
    suggestion = report.suggestion
    if suggestion is None:
        return ""
    from imagescope.render.patch import estimate_line, patch_text

    if not suggestion.changes:
        return ""
    diff = "\n".join(line for line in patch_text(suggestion, report.image.reference).split("\n")
                     if not line.startswith("# ")).strip("\n")
    return "\n".join([
        (f"### Suggested Dockerfile ({len(suggestion.changes)} change"
         f"{'' if len(suggestion.changes) == 1 else 's'}, saves "
         f"{_html(size(suggestion.saved_bytes))}, estimate)"), "",
        escape_text(estimate_line(suggestion)) + (" Each hunk says what it keeps out; "
                                                  "`--format patch` writes it to apply."), "",
        code_block(diff, "diff"), ""])


def _layer_row(report: Report, layer: LayerReport) -> str:
    instruction = "-"
    if report.dockerfile is not None and report.dockerfile.sources[layer.index] is not None:
        instruction = code(one_line(clip(layer_name(report, layer.index),
                                         MAX_INSTRUCTION_CHARS)), cell=True)
    elif layer.index < base_layers(report):
        instruction = "base image"
    elif layer.instruction:
        instruction = code(one_line(clip(layer_name(report, layer.index),
                                         MAX_INSTRUCTION_CHARS)), cell=True)
    return (f"| {layer.index} | {size(layer.stored_bytes)} | {size(layer.added_bytes)} "
            f"| {size(layer.wasted_bytes)} | {instruction} |\n")


def _wasted_row(wasted: WastedFile) -> str:
    return (f"| {size(wasted.bytes)} | {_HOW_LABEL[wasted.how]} "
            f"| #{wasted.layer_index} → #{wasted.hidden_by_layer} "
            f"| {code(wasted.path, cell=True)} |\n")


def _finding_block_head(number: int, finding: Finding) -> str:
    lines = [f"**{number}. {inline(clip(finding.title, MAX_TITLE_CHARS))}**  "]
    if finding.detail:
        lines.append(f"{inline(clip(finding.detail, MAX_TITLE_CHARS))}  ")
    count = len(finding.files)
    removable = " · removable from the final image" if finding.removable else ""
    lines.append(f"{finding.severity} · {_bytes(finding.bytes)} in {count:,} "
                 f"file{'' if count == 1 else 's'}{removable}\n")
    return "\n".join(lines)


def _finding_file_row(ref: FileRef) -> str:
    steps = f"#{ref.layer_index}" if ref.hidden_by is None else \
        f"#{ref.layer_index} → #{ref.hidden_by}"
    return f"| {size(ref.bytes)} | {steps} | {code(ref.path, cell=True)} |\n"


_CUT_LABEL = {
    "finding_files": "files listed per finding",
    "finding_blocks": "findings with their files listed",
    "wasted_files": "wasted files listed",
    "layers": "layers listed",
    "suggestion": "suggested Dockerfile shown",
    "recommendations": "recommendations shown",
    "findings": "findings listed",
}


def _truncation_note(plan: _Plan, natural: _Plan, reference: str) -> str:
    cuts = [f"{_CUT_LABEL[name]} {getattr(plan, name):,} of {getattr(natural, name):,}"
            for name in _CUT_ORDER if getattr(plan, name) < getattr(natural, name)]
    if not cuts:
        return ""
    command = "`--format json`"
    if len(reference) <= MAX_REFERENCE_CHARS:
        command = code(f"imagescope inspect {shlex.quote(reference)} --format json")
    return (f"**Truncated** to fit a GitHub comment: {'; '.join(cuts)}. {command} has the full "
            "report.\n")
