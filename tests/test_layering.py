"""The module graph runs one way: sources read images and know nothing of reports, findings or
renderers; the core does no I/O of sources or renderers (checked in a fresh interpreter)."""

from __future__ import annotations

import subprocess
import sys

import pytest

ABOVE_SOURCES = ("imagescope.analysis.report", "imagescope.store.report_codec", "imagescope.analysis.findings",
                 "imagescope.analysis.recommend", "imagescope.render", "imagescope.api")
EDGES = ("imagescope.sources", "imagescope.render", "imagescope.cli", "docker", "rich")


def loaded_by(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sorted(sys.modules)))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    return set(result.stdout.split())


@pytest.mark.parametrize("module", ["imagescope.sources", "imagescope.sources.archive",
                                    "imagescope.sources.oci", "imagescope.store.cache"])
def test_reading_an_image_loads_nothing_of_the_report(module: str) -> None:
    loaded = loaded_by(module)
    assert not {m for m in loaded if m.startswith(ABOVE_SOURCES)}


@pytest.mark.parametrize("module", ["imagescope.analysis.overlay", "imagescope.analysis.report",
                                    "imagescope.analysis.findings", "imagescope.analysis.recommend",
                                    "imagescope.analysis.diff", "imagescope.analysis.gates"])
def test_the_core_loads_no_source_nor_renderer(module: str) -> None:
    loaded = loaded_by(module)
    assert not {m for m in loaded if m.startswith(EDGES) and m != module}
