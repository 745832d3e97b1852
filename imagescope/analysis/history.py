"""Image history → the Dockerfile step that produced each layer."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from imagescope.model import HistoryStep

_SHELL_FORM = re.compile(r"^(?:\|\d+(?: \S+=\S*)* )?/bin/(?:ba)?sh -c (#\(nop\)\s*)?(.*)$", re.DOTALL)
_BUILDKIT_SUFFIX = "# buildkit"


def instruction_of(created_by: str) -> str:
    """The Dockerfile instruction a history `created_by` records.

    `/bin/sh -c #(nop) COPY …` → `COPY …`; `/bin/sh -c CMD` and `|N ARG=… /bin/sh -c CMD` → `RUN CMD`;
    BuildKit's `RUN /bin/sh -c CMD # buildkit` → `RUN CMD`; anything else is kept as written.
    """
    text = created_by.strip()
    if text.endswith(_BUILDKIT_SUFFIX):
        text = text[: -len(_BUILDKIT_SUFFIX)].rstrip()
    if text.startswith("RUN "):
        inner = _SHELL_FORM.match(text[4:])
        if inner and not inner.group(1):
            return "RUN " + inner.group(2).strip()
        return text
    match = _SHELL_FORM.match(text)
    if match is None:
        return text
    body = match.group(2).strip()
    return body if match.group(1) else "RUN " + body


_LEGACY_SOURCE = re.compile(r"^(COPY|ADD) (?:file|dir|multi):[0-9a-f]{64} in (.*)$", re.DOTALL)


def as_written(instruction: str) -> str:
    """An instruction as a person reads it: the legacy builder's `COPY dir:<sha256> in /app`
    (its sources' content hash) becomes `COPY … → /app`; anything else is kept."""
    match = _LEGACY_SOURCE.match(instruction.strip())
    return f"{match.group(1)} … → {match.group(2).strip()}" if match else instruction


_CONFIG_ONLY = ("CMD", "ENTRYPOINT")


def base_layer_count(history: Sequence[HistoryStep], layer_count: int) -> int:
    """How many bottom layers the base image wrote, as far as the history shows the FROM line.

    A base image's history ends with its CMD or ENTRYPOINT (`CMD ["bash"]`): the base ends at the
    last such step with layers both before and after it (the image's own CMD comes last). 0 when
    no step shows the boundary, or the history does not match the layers.
    """
    if sum(1 for step in history if not step.empty_layer) != layer_count:
        return 0
    boundary = layers_before = 0
    for step in history:
        if not step.empty_layer:
            layers_before += 1
        elif (0 < layers_before < layer_count
              and instruction_of(step.created_by).split(" ", 1)[0].upper() in _CONFIG_ONLY):
            boundary = layers_before
    return boundary


@dataclass(frozen=True, slots=True)
class Attribution:
    """Per layer, the step that wrote it (None when history cannot be matched)."""

    steps: list[HistoryStep | None]
    warning: str | None


def attribute(history: Sequence[HistoryStep], layer_count: int) -> Attribution:
    """Match non-empty history entries to layers in order; a count mismatch falls back to None."""
    layer_steps = [step for step in history if not step.empty_layer]
    if len(layer_steps) == layer_count:
        return Attribution(list(layer_steps), None)
    if not history:
        warning = "the image has no history: layers are shown by number"
    else:
        warning = (f"history lists {len(layer_steps)} layer-producing steps for {layer_count} "
                   "layers: layers are shown by number")
    return Attribution([None] * layer_count, warning)
