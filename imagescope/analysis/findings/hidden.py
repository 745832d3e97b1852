"""Hidden waste by step pair: bytes step A wrote that step B removed or overwrote (pure).

Identical rewrites (`RUN chmod/chown -R`, `touch`) are reported on their own: the fix differs.
"""

from __future__ import annotations

from imagescope.analysis.findings.model import Category, FileRef, Finding, Severity, make_finding
from imagescope.analysis.findings.view import ImageView
from imagescope.analysis.overlay import HiddenHow, how_hidden

# A pair hiding less than this is listed as low severity; at or above it, medium; 10x, high.
NOTABLE_BYTES = 1 << 20


def find(view: ImageView) -> list[Finding]:
    pairs: dict[tuple[int, int, bool], list[FileRef]] = {}
    for hidden in view.hidden:
        if hidden.entry.size == 0:
            continue
        identical = how_hidden(hidden) is HiddenHow.IDENTICAL_REWRITE
        ref = FileRef("/" + hidden.entry.path, hidden.entry.size, hidden.layer_index,
                      hidden.hidden_by)
        pairs.setdefault((hidden.layer_index, hidden.hidden_by, identical), []).append(ref)
    findings = []
    for (writer, hider, identical), files in sorted(pairs.items()):
        total = sum(f.bytes for f in files)
        severity = _severity(total)
        detail = "these bytes are unreachable in the final image but ship with every pull"
        if view.base_layers and hider < view.base_layers:  # WasteClass.INHERITED
            severity, detail = Severity.INFO, ("written and hidden inside the base image: "
                                               "not yours to reclaim, but every pull ships it")
        elif view.base_layers and writer < view.base_layers:  # WasteClass.BASE_HIDDEN
            severity = severity if total >= NOTABLE_BYTES else Severity.INFO
            detail = ("the base image's bytes ship whatever this step does: hiding them saves "
                      "nothing; only another base or a build stage reclaims them")
        if identical:
            title = (f"{_who(view, hider)} rewrote {len(files)} file(s) unchanged "
                     f"that {_who(view, writer)} wrote")
            category, rule = Category.IDENTICAL_REWRITE, "identical-rewrite"
        elif writer == hider:
            title = f"{_who(view, writer)} wrote {len(files)} file(s) twice in one layer"
            category, rule = Category.HIDDEN_WASTE, "hidden-waste"
        else:
            title = (f"{_who(view, hider)} hid {len(files)} file(s) that "
                     f"{_who(view, writer)} wrote")
            category, rule = Category.HIDDEN_WASTE, "hidden-waste"
        findings.append(make_finding(
            rule=rule, category=category, severity=severity, title=title,
            subject=f"{writer}->{hider}", files=files, layers=tuple(sorted({writer, hider})),
            detail=detail,
        ))
    return findings


def _who(view: ImageView, layer_index: int) -> str:
    """A step as a title names it: `the base image` below a known FROM boundary."""
    if layer_index < view.base_layers:
        return "the base image"
    return _code(view.instruction(layer_index))


def _code(instruction: str, limit: int = 120) -> str:
    """An instruction quoted as inline code (renderers keep it verbatim), shortened to `limit`."""
    text = " ".join(instruction.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return "`" + text.replace("`", "'") + "`"


def _severity(nbytes: int) -> Severity:
    if nbytes >= 10 * NOTABLE_BYTES:
        return Severity.HIGH
    return Severity.MEDIUM if nbytes >= NOTABLE_BYTES else Severity.LOW
