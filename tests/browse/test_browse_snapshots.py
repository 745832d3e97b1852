"""Snapshots of the browser's main screens at 80×24 and 160×48 (pytest-textual-snapshot:
`pytest --snapshot-update` rewrites them after a deliberate change; review the SVGs)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from imagescope.browse.app import BrowseApp

SIZES = [(80, 24), (160, 48)]


@pytest.fixture
def app(browse_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
        ) -> Iterator[BrowseApp]:
    from imagescope import api

    shutil.copy(browse_image, tmp_path / "image.tar")
    monkeypatch.chdir(tmp_path)  # the reference shown is the same in every run
    with api.opened("image.tar") as opened:
        yield BrowseApp(opened)


@pytest.mark.parametrize("size", SIZES, ids=lambda size: f"{size[0]}x{size[1]}")
@pytest.mark.parametrize("screen, keys", [
    ("layers", []),
    ("image-as-of-layer-1", ["up", "up", "a"]),
    ("waste", ["2"]),
    ("findings", ["3"]),
    ("advice", ["4"]),
    ("help", ["question_mark"]),
])
def test_screen(snap_compare: Any, app: BrowseApp, size: tuple[int, int], screen: str,
                keys: list[str]) -> None:
    async def run_before(pilot: Any) -> None:
        await pilot.app.workers.wait_for_complete()  # the first tree
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            await pilot.app.workers.wait_for_complete()  # (trees are built on threads)
            await pilot.pause()

    assert snap_compare(app, terminal_size=size, run_before=run_before)
