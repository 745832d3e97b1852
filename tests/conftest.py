"""Shared pytest setup: the repository root on sys.path, so `fixtures` and `imagescope` import;
every test gets a cache directory of its own, never the user's."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def private_cache_home(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> Path:
    """XDG_CACHE_HOME → an empty temp dir (outside tmp_path), inherited by CLI subprocesses."""
    home = tmp_path_factory.mktemp("xdg-cache")
    monkeypatch.setenv("XDG_CACHE_HOME", str(home))
    return home


@pytest.fixture(params=["workers", "threads"])
def readers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Compressed layers read side by side by forked workers, or on threads (as where this
    process may not fork); two readers even on a one-CPU machine (IMAGESCOPE_READERS)."""
    monkeypatch.setenv("IMAGESCOPE_READERS", "2" if request.param == "workers" else "2,threads")
    return str(request.param)


@pytest.fixture(params=["compiled", "python"])
def tar_readers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Layer tars read with the compiled scan of plain headers (imagescope/layer/_tarscan.c), or by
    Python alone (what an install without a C compiler does)."""
    from imagescope.layer import tar as layers

    if request.param == "compiled" and layers.compiled_scan() is None:
        pytest.skip("imagescope.layer._tarscan is not built (no C compiler at install)")
    if request.param == "python":
        monkeypatch.setenv("IMAGESCOPE_TAR_SCAN", "python")
    return str(request.param)
