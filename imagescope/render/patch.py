"""The suggested Dockerfile as a unified diff `patch -p1` and `git apply` take: a comment head
with the estimate, then each file's hunks, each hunk's heading the bytes its changes keep out.
Paths are as the user gave them when relative (else the file's name) (pure)."""

from __future__ import annotations

from imagescope.analysis.report import Report
from imagescope.analysis.suggestion import Change, Hunk, Suggestion, hunks
from imagescope.errors import UsageError
from imagescope.render.text import one_line, size


def render(report: Report) -> str:
    """The patch for `report`'s suggestion; a UsageError when there is none to make."""
    suggestion = report.suggestion
    if suggestion is None:
        mapped = report.dockerfile
        if mapped is None:
            raise UsageError("--format patch rewrites the Dockerfile: name it with --dockerfile "
                             "PATH (or `dockerfile` in the config file)")
        raise UsageError(f"--format patch: the layers do not match {mapped.path} "
                         f"({mapped.mismatch}); no patch")
    return patch_text(suggestion, report.image.reference)


def estimate_line(suggestion: Suggestion) -> str:
    """The estimate in words, stating what it is and what it rests on."""
    shipped, estimated = suggestion.shipped_bytes, suggestion.estimated_bytes
    share = f" ({suggestion.saved_bytes / shipped:.0%})" if shipped else ""
    return (f"estimate: built from the suggestion, the image ships {size(estimated)} of file "
            f"content ({estimated:,} bytes) instead of {size(shipped)} ({shipped:,} bytes), "
            f"{size(suggestion.saved_bytes)} less{share}. Worked out from the layers' exact "
            "bytes; it holds if every step writes what it wrote before.")


def patch_text(suggestion: Suggestion, reference: str) -> str:
    name = _name(suggestion.path)
    found = hunks(suggestion)
    head = [f"# imagescope: suggested changes to {name} for {one_line(reference)}",
            f"# {estimate_line(suggestion)}",
            ("# apply with `patch -p1 < FILE` or `git apply FILE`, in the directory the paths "
             "below are relative to"),
            f"# {len(suggestion.changes)} change(s), with the bytes each keeps out:"]
    head += [f"#   {_where(suggestion, change)}: {change.saved_bytes:,} bytes: "
             f"{one_line(change.title)}" for change in suggestion.changes]
    if suggestion.changes:
        head.append("#   (a file two changes keep out counts in each, once in the estimate)")
    if not found:
        return "\n".join([*head, "# nothing to change: no finding has a change to make here"]
                         ) + "\n"
    out = head
    for path in dict.fromkeys(h.path for h in found):
        mine = [h for h in found if h.path == path]
        new_file = path == suggestion.dockerignore_path and suggestion.dockerignore_before is None
        out += ["--- /dev/null" if new_file else f"--- a/{_name(path)}", f"+++ b/{_name(path)}"]
        for hunk in mine:
            out.append(f"{hunk.header} {_heading(hunk)}")
            out += hunk.lines  # (a last line without newline carries its marker line)
    return "\n".join(out) + "\n"


def _where(suggestion: Suggestion, change: Change) -> str:
    if change.lines == ((0, 0),):
        return _name(suggestion.dockerignore_path)
    spans = ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in change.lines)
    return f"{_name(suggestion.path)}:{spans}"


def _heading(hunk: Hunk) -> str:
    what = "; ".join(one_line(change.title) for change in hunk.changes) or "context"
    saved = hunk.saved_bytes
    return (f"saves {saved:,} bytes: {what}" if saved else what)


def _name(path: str) -> str:
    """A path as given when it is relative and stays below where it is relative to, else its
    file name."""
    parts = [p for p in path.replace("\\", "/").split("/") if p not in ("", ".")]
    if path.startswith("/") or ".." in parts or not parts:
        return parts[-1] if parts else path
    return "/".join(parts)
