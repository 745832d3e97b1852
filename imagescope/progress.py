"""Progress reporting seam: the core calls these hooks; the CLI implements them with rich."""

from __future__ import annotations


class Progress:
    """No-op progress sink. Subclass and override what you display."""

    def status(self, text: str) -> None:
        """A phase started (resolving, pulling, reading)."""

    def pull(self, item: str, status: str, current: int | None, total: int | None) -> None:
        """A pull progress event from the engine for one layer (`item`)."""

    def read_started(self, label: str, total_bytes: int | None) -> None:
        """Reading of one blob or stream began; `total_bytes` as stored, when known."""

    def read_advanced(self, nbytes: int) -> None:
        """`nbytes` more stored bytes of the current blob or stream were consumed."""

    def read_finished(self) -> None:
        """The current blob or stream is done."""
