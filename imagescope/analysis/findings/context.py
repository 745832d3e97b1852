"""Build-context leaks: files a COPY/ADD brought in that the image does not need (pure).

Only files alive in the final image that a COPY or ADD step brought in count, wherever their live
copy ended up (a later `chmod -R` rewrites them; they still came from the context; the finding
names the COPY); a base image's root filesystem is not the build context. A path counts at the shallowest directory that matches,
so `tests/__pycache__/x.pyc` is a test file. Installed-package trees (`site-packages`,
`dist-packages`) are not the build context, even when a builder stage's are copied in. A
`node_modules/` counts only when the step that copied it also copied the `package.json` beside
it — the app's directory came in whole; a `node_modules` copied alone is taken to come from a
builder stage. One finding per kind; `dockerignore_lines` gives the lines that keep them out.
"""

from __future__ import annotations

from collections.abc import Iterable

from imagescope.analysis.findings.model import Category, Finding, Severity, make_finding
from imagescope.analysis.findings.tables import PathTable, alive_refs, steps_text
from imagescope.analysis.findings.view import ImageView, LiveFile
from imagescope.model import EntryKind

RULE = "build-context"

# (kind, glob). Globs start with `**/`: a COPY destination can be anywhere.
CONTEXT_FILES: tuple[tuple[str, str], ...] = (
    ("git", "**/.git/**"),
    ("git", "**/.git"),  # a worktree's or submodule's .git file
    ("node_modules", "**/node_modules/**"),
    ("pycache", "**/__pycache__/**"),
    ("pycache", "**/*.pyc"),
    ("pycache", "**/*.pyo"),
    ("tests", "**/tests/**"),
    ("tests", "**/test/**"),
    ("logs", "**/*.log"),
    ("ds_store", "**/.DS_Store"),
    ("editor-swap", "**/*.swp"),
    ("editor-swap", "**/*.swo"),
    ("editor-swap", "**/*~"),
    ("editor-swap", "**/.#*"),
    ("dockerfile", "**/Dockerfile"),
    ("dockerfile", "**/Dockerfile.*"),
    ("dockerfile", "**/*.dockerfile"),
    ("dockerfile", "**/docker-compose*.yml"),
    ("dockerfile", "**/docker-compose*.yaml"),
)
NOT_CONTEXT: tuple[str, ...] = (
    "**/site-packages/**",
    "**/dist-packages/**",
)

# .dockerignore lines per kind, in the order they are written.
DOCKERIGNORE: dict[str, tuple[str, ...]] = {
    "git": ("**/.git",),
    "node_modules": ("**/node_modules",),
    "pycache": ("**/__pycache__", "**/*.py[co]"),
    "tests": ("**/tests", "**/test"),
    "logs": ("**/*.log",),
    "ds_store": ("**/.DS_Store",),
    "editor-swap": ("**/*.swp", "**/*.swo", "**/*~", "**/.#*"),
    "dockerfile": ("Dockerfile*", "**/*.dockerfile", "docker-compose*.yml",
                   "docker-compose*.yaml"),
}

LABELS: dict[str, str] = {
    "git": "a .git directory",
    "node_modules": "node_modules from the build context",
    "pycache": "Python bytecode (__pycache__, *.pyc)",
    "tests": "test directories",
    "logs": "log files",
    "ds_store": ".DS_Store files",
    "editor-swap": "editor swap and backup files",
    "dockerfile": "Dockerfiles and compose files",
}

# History can hold secrets and is often the largest leak; everything else is clutter.
SEVERITY: dict[str, Severity] = {"git": Severity.MEDIUM, "node_modules": Severity.MEDIUM}

_TABLE = PathTable(CONTEXT_FILES, exclude=NOT_CONTEXT)
_NODE_MODULES = "node_modules/"


def find(view: ImageView) -> list[Finding]:
    """One finding per kind of build-context leak alive in the final image."""
    context_layers = {i for i in range(len(view.image.layers)) if view.is_context_step(i)}
    if not context_layers:
        return []
    brought_by = _brought_by(view, context_layers)
    copied = (f for f in view.live_files if f.path in brought_by)
    grouped = _TABLE.group(copied)
    if "node_modules" in grouped:
        grouped["node_modules"] = _beside_an_app(view, grouped["node_modules"])
    findings = []
    for subject, files in sorted(grouped.items()):
        refs = alive_refs(view, files)
        if not refs:
            continue
        layers = tuple(sorted({brought_by.get(r.path[1:], r.layer_index) for r in refs}))
        findings.append(make_finding(
            rule=RULE, category=Category.BUILD_CONTEXT,
            severity=SEVERITY.get(subject, Severity.LOW),
            title=f"{LABELS.get(subject, subject)} copied into the image: {len(refs)} file(s)",
            subject=subject, files=refs, removable=True, layers=layers,
            detail=f"copied by {steps_text(view, layers)}; keep it out with .dockerignore",
        ))
    return findings


def _brought_by(view: ImageView, context_layers: set[int]) -> dict[str, int]:
    """Live paths a COPY/ADD brought in → that step: a live copy from the step itself, or from
    a later step that rewrote it (`RUN chmod -R`, `chown -R`, `touch`): the path still came from
    the build context."""
    first_copied: dict[str, int] = {}
    for index in sorted(context_layers):
        for entry in view.image.layers[index].entries:
            if entry.kind is EntryKind.FILE:
                first_copied.setdefault(entry.path, index)
    brought: dict[str, int] = {}
    for live in view.live_files:
        if live.layer_index in context_layers:
            brought[live.path] = live.layer_index
            continue
        origin = first_copied.get(live.path)
        if origin is not None and origin < live.layer_index:
            brought[live.path] = origin
    return brought


def _beside_an_app(view: ImageView, files: list[LiveFile]) -> list[LiveFile]:
    """The node_modules files whose step also copied a package.json next to node_modules/."""
    wanted: dict[int, set[str]] = {}  # layer → package.json paths that would place the app
    roots: list[tuple[LiveFile, str]] = []
    for live in files:
        path = live.path
        at = 0 if path.startswith(_NODE_MODULES) else path.find("/" + _NODE_MODULES) + 1
        manifest = path[:at] + "package.json"
        wanted.setdefault(live.layer_index, set()).add(manifest)
        roots.append((live, manifest))
    copied = {layer: _present_in_layer(view, layer, manifests)
              for layer, manifests in wanted.items()}
    return [live for live, manifest in roots if manifest in copied[live.layer_index]]


def _present_in_layer(view: ImageView, layer: int, paths: set[str]) -> set[str]:
    return {e.path for e in view.image.layers[layer].entries if e.path in paths}


def dockerignore_lines(findings: Iterable[Finding]) -> list[str]:
    """The .dockerignore lines keeping out the build-context leaks found, in a fixed order."""
    found = {f.subject for f in findings if f.rule == RULE}
    lines: list[str] = []
    for subject, patterns in DOCKERIGNORE.items():
        if subject in found:
            lines.extend(p for p in patterns if p not in lines)
    return lines
