"""Live progress on stderr with rich: pulls and layer reads."""

from __future__ import annotations

import errno
import os
import time
from typing import Any, Self

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)
from rich.progress import Progress as RichBar

from imagescope.progress import Progress
from imagescope.render.terminal import literal
from imagescope.render.text import printable

_REFRESH_SECONDS = 0.1


class StderrConsole(Console):
    """rich's console on stderr, a closed pipe there raising BrokenPipeError as it would
    anywhere else (rich's own answer is to exit 1 on the spot, stdout pointed at /dev/null:
    the report lost, and a status no one documents)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(stderr=True, **options)

    def on_broken_pipe(self) -> None:
        self.quiet = True  # nothing more to draw: the bars' teardown must not fail again
        raise BrokenPipeError(errno.EPIPE, os.strerror(errno.EPIPE))


class RichProgress(Progress):
    """Shows one bar per pulled layer and one for the blob being read; use as a context manager.

    The bars are redrawn by the events themselves (at most every _REFRESH_SECONDS), not by a
    thread of rich's: a process running one thread may fork the workers that read layers
    (`sources.workers`).
    """

    def __init__(self, console: Console) -> None:
        self._bar = RichBar(TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                            TransferSpeedColumn(), TimeElapsedColumn(), console=console,
                            transient=True, auto_refresh=False)
        self._pulls: dict[str, TaskID] = {}
        self._reading: TaskID | None = None
        self._drawn = 0.0

    def __enter__(self) -> Self:
        self._bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()

    def status(self, text: str) -> None:
        self._bar.console.print(literal(text, style="dim"), highlight=False)

    def pull(self, item: str, status: str, current: int | None, total: int | None) -> None:
        task = self._pulls.get(item)
        if task is None:
            task = self._pulls[item] = self._bar.add_task(_shown(f"pull {item[:12]}"),
                                                          total=total)
        self._bar.update(task, completed=current or 0, total=total,
                         description=_shown(f"{status.lower()} {item[:12]}"))
        self._redraw()

    def read_started(self, label: str, total_bytes: int | None) -> None:
        self._reading = self._bar.add_task(_shown(f"read {label}"), total=total_bytes)
        self._redraw()

    def read_advanced(self, nbytes: int) -> None:
        if self._reading is not None:
            self._bar.advance(self._reading, nbytes)
            self._redraw()

    def read_finished(self) -> None:
        if self._reading is not None:
            self._bar.remove_task(self._reading)
            self._reading = None
            self._redraw()

    def _redraw(self) -> None:
        now = time.monotonic()
        if now - self._drawn >= _REFRESH_SECONDS:
            self._drawn = now
            self._bar.refresh()


def _shown(text: str) -> str:
    """A bar's description (rich markup, as TextColumn reads it) showing `text` literally."""
    return escape(printable(text))
