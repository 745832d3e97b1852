"""The read-only view every finding rule works on: final files, hidden files, steps (pure)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

from imagescope.history import attribute, instruction_of
from imagescope.model import Entry, Image
from imagescope.overlay import Hidden, Replay, VisibleFile


@dataclass(frozen=True, slots=True)
class LiveFile:
    """A path in the final filesystem reaching content; `entry.content` is set when captured."""

    path: str  # relative, no leading "/" (the form used by the rule tables)
    entry: Entry
    layer_index: int

    @property
    def bytes(self) -> int:
        return self.entry.size


class ImageView:
    """An analyzed image as finding rules see it."""

    def __init__(self, image: Image, result: Replay) -> None:
        self.image = image
        self._result = result
        self.hidden: list[Hidden] = result.hidden
        attribution = attribute(image.history, len(image.layers))
        self.instructions: list[str | None] = [
            instruction_of(step.created_by) if step else None for step in attribution.steps
        ]

    @cached_property
    def live_files(self) -> list[LiveFile]:
        """Every name reaching content in the final filesystem, in path order."""
        return [LiveFile(v.path, v.entry, v.layer_index) for v in self._visible()]

    @cached_property
    def live_by_path(self) -> dict[str, LiveFile]:
        return {f.path: f for f in self.live_files}

    def _visible(self) -> list[VisibleFile]:
        return list(self._result.visible_files())

    def instruction(self, layer_index: int) -> str:
        """The step that wrote a layer, or `layer N` when history does not say."""
        text = self.instructions[layer_index] if layer_index < len(self.instructions) else None
        return text or f"layer {layer_index}"

    def is_base_rootfs(self, layer_index: int) -> bool:
        """True for a base image's root filesystem layer (`ADD file:<hash> in /`)."""
        text = self.instructions[layer_index] if layer_index < len(self.instructions) else None
        return text is not None and _BASE_ROOTFS.match(text) is not None

    def is_context_step(self, layer_index: int) -> bool:
        """True for COPY/ADD steps, where build-context files come from.

        A base image's root filesystem (`ADD file:<hash> in /`) is not the build context.
        """
        text = self.instructions[layer_index] if layer_index < len(self.instructions) else None
        if text is None or self.is_base_rootfs(layer_index):
            return False
        return text.split(" ", 1)[0].upper() in ("COPY", "ADD")


_BASE_ROOTFS = re.compile(r"^ADD (?:file|multi):[0-9a-f]+ in /\s*$")
