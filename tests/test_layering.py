"""The module graph runs one way (read statically, every import, lazy ones too):

- `analysis/` (replay, findings, recommendations, diff, gates) is pure: it imports no source,
  layer reader, store, renderer nor edge;
- `layer/` (tar, decompression, entry codec) and `sources/` know nothing of stores, analysis or
  renderers, and `layer/` nothing of sources;
- `store/` (the cache) depends on sources, layers and the report model, never on renderers or
  the edges; `render/` on the report model only;
- no module imports, through any chain, a module that imports it back.

And, loaded in a fresh interpreter, reading an image loads nothing of the report.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import imagescope

PACKAGE = Path(imagescope.__file__).parent
SHARED = ("imagescope.model", "imagescope.records", "imagescope.errors", "imagescope.sizes",
          "imagescope.limits", "imagescope.progress", "imagescope")
ANALYSIS = ("imagescope.analysis",)
LAYER = ("imagescope.layer",)
SOURCES = ("imagescope.sources",)
STORE = ("imagescope.store",)
RENDER = ("imagescope.render",)
BROWSE_MODEL = ("imagescope.browse.model", "imagescope.browse.content")  # pure, as analysis
EDGES = ("imagescope.cli", "imagescope.api", "imagescope.config", "imagescope.__main__",
         "imagescope.files", "imagescope.export", "imagescope.browse")

# package → what it may import from imagescope (besides itself)
ALLOWED: dict[tuple[str, ...], tuple[str, ...]] = {
    ANALYSIS: SHARED,
    LAYER: SHARED,
    SOURCES: SHARED + LAYER,
    STORE: SHARED + LAYER + SOURCES + ANALYSIS,
    RENDER: SHARED + ANALYSIS,
    BROWSE_MODEL: SHARED + ANALYSIS,
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, text: str | None = None) -> set[str]:
    """Every imagescope module `path` (or `text` as its source) imports (`from P import m`
    counts as P.m when m is a module, else as P)."""
    tree = ast.parse(path.read_text(encoding="utf-8") if text is None else text)
    own = module_name(path)
    package = own if path.name == "__init__.py" else own.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                found.add(candidate if candidate in MODULES else base)
    return {name for name in found if name == "imagescope" or name.startswith("imagescope.")}


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}
GRAPH = {name: imports_of(path) for name, path in MODULES.items()}


def inside(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def may_import(target: str, allowed: tuple[str, ...]) -> bool:
    """Whether `target` is one of `allowed` or inside one (the package itself only as such:
    `imagescope` is its version, not everything below it)."""
    return any(target == p if p == "imagescope" else inside(target, (p,)) for p in allowed)


def forbidden(graph: dict[str, set[str]], layer: tuple[str, ...]) -> list[str]:
    allowed = ALLOWED[layer] + layer
    return sorted(f"{module} imports {target}" for module, targets in graph.items()
                  if inside(module, layer)
                  for target in targets if not may_import(target, allowed))


@pytest.mark.parametrize("layer", list(ALLOWED), ids=lambda layer: layer[0])
def test_each_layer_imports_only_what_is_below_it(layer: tuple[str, ...]) -> None:
    assert forbidden(GRAPH, layer) == []


def test_the_shared_vocabulary_imports_no_layer_above_it() -> None:
    shared = [m for m in SHARED if m != "imagescope"]
    wrong = sorted(f"{module} imports {target}" for module in shared
                   for target in GRAPH.get(module, ())
                   if not inside(target, tuple(shared)))
    assert wrong == []


def cycles_in(graph: dict[str, set[str]]) -> list[str]:
    """Every import chain that comes back to where it started (depth first)."""
    cycles = []
    state: dict[str, int] = {}  # 1: on the path, 2: done
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for target in sorted(graph.get(name, ())):
            if target not in graph or target == name:
                continue
            if state.get(target) == 1:
                cycles.append(" → ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    return cycles


def test_no_module_imports_itself_back() -> None:
    assert cycles_in(GRAPH) == []


def test_the_cycle_check_sees_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles_in(graph) == ["a → b → c → a"]


def test_the_graph_check_sees_a_forbidden_import() -> None:
    """The checker itself: an analysis module importing the cache is caught."""
    bad = PACKAGE / "analysis" / "report.py"  # its path names the module; its text is ours
    text = ("from imagescope.store.cache import LayerCache\n"
            "def f():\n    from imagescope.render import json\n")
    graph = {"imagescope.analysis.report": imports_of(bad, text)}
    assert forbidden(graph, ANALYSIS) == [
        "imagescope.analysis.report imports imagescope.render.json",
        "imagescope.analysis.report imports imagescope.store.cache"]


def loaded_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return set(result.stdout.split())


@pytest.mark.parametrize("module", ["imagescope.sources", "imagescope.sources.archive",
                                    "imagescope.sources.oci", "imagescope.sources.registry",
                                    "imagescope.layer.tar"])
def test_reading_an_image_loads_nothing_of_the_report(module: str) -> None:
    loaded = loaded_by(module)
    assert not {m for m in loaded if inside(m, ANALYSIS + STORE + RENDER + EDGES)}


@pytest.mark.parametrize("module", ["imagescope.analysis.overlay", "imagescope.analysis.report",
                                    "imagescope.analysis.findings",
                                    "imagescope.analysis.recommend",
                                    "imagescope.analysis.diff", "imagescope.analysis.gates"])
def test_the_core_loads_no_source_nor_renderer(module: str) -> None:
    loaded = loaded_by(module)
    assert not {m for m in loaded
                if inside(m, SOURCES + LAYER + STORE + RENDER + EDGES + ("docker", "rich"))}


def test_the_command_line_starts_without_the_analysis_or_the_sources() -> None:
    """`imagescope --version` and `--help` load click and the option parsing only: every
    command imports what it runs."""
    loaded = loaded_by("imagescope.cli")
    assert not {m for m in loaded if inside(m, ANALYSIS + SOURCES + LAYER + STORE
                                            + ("docker", "rich", "urllib3"))}


@pytest.mark.parametrize("module", ["imagescope.api", "imagescope.sources.archive",
                                    "imagescope.sources.oci"])
def test_only_a_registry_reference_loads_the_http_client(module: str) -> None:
    loaded = loaded_by(module)
    assert not loaded & {"imagescope.sources.distribution", "imagescope.sources.credentials",
                         "urllib3", "ssl"}
