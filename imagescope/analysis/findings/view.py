"""The read-only view every finding rule works on: final files, hidden files, steps (pure)."""

from __future__ import annotations

import re
from functools import cached_property

from imagescope.analysis.history import attribute, instruction_of
from imagescope.analysis.overlay import Hidden, Replay, VisibleFile
from imagescope.model import Image

LiveFile = VisibleFile
"""A path in the final filesystem reaching content (`path` relative, the form the rule tables
use); `entry.content` is set when captured. The replay's own records, not copies of them."""


class ImageView:
    """An analyzed image as finding rules see it."""

    def __init__(self, image: Image, result: Replay, base_layers: int = 0) -> None:
        self.image = image
        self.base_layers = base_layers  # the bottom layers the base image wrote (0: unknown)
        self._result = result
        self.replay = result  # (the final tree: the browser and `cat` look names up in it)
        self.hidden: list[Hidden] = result.hidden
        attribution = attribute(image.history, len(image.layers))
        self.instructions: list[str | None] = [
            instruction_of(step.created_by) if step else None for step in attribution.steps
        ]

    @cached_property
    def live_files(self) -> list[LiveFile]:
        """Every name reaching content in the final filesystem, in the replay's walk order."""
        return list(self._result.visible_files())

    @cached_property
    def live_by_path(self) -> dict[str, LiveFile]:
        return {f.path: f for f in self.live_files}

    def instruction(self, layer_index: int) -> str:
        """The step that wrote a layer, or `layer N` when history does not say."""
        text = self.instructions[layer_index] if layer_index < len(self.instructions) else None
        return text or f"layer {layer_index}"

    def in_base(self, layer_index: int) -> bool:
        """True for a layer the base image wrote: below the known FROM boundary, or, when none
        is known, a base's root filesystem layer."""
        if self.base_layers:
            return layer_index < self.base_layers
        return self.is_base_rootfs(layer_index)

    def is_base_rootfs(self, layer_index: int) -> bool:
        """True for a base image's root filesystem layer (`ADD file:<hash> in /`)."""
        text = self.instructions[layer_index] if layer_index < len(self.instructions) else None
        return text is not None and _BASE_ROOTFS.match(text) is not None

    def is_context_step(self, layer_index: int) -> bool:
        """True for COPY/ADD steps, where build-context files come from.

        The base image's layers (its root filesystem, `ADD file:<hash> in /`) are not.
        """
        text = self.instructions[layer_index] if layer_index < len(self.instructions) else None
        if text is None or self.in_base(layer_index):
            return False
        return text.split(" ", 1)[0].upper() in ("COPY", "ADD")


_BASE_ROOTFS = re.compile(r"^ADD (?:file|multi):[0-9a-f]+ in /\s*$")
