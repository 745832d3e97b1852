"""Layers → the Dockerfile lines that made them (pure: the Dockerfile comes parsed).

Rules:
- The layers of the image are the final stage's, on top of its base's: walking both from the
  top, each layer takes the next instruction of the final stage (bottom-up) it matches.
  Instructions passed over must be ones that can make no layer: configuration (ENV, CMD,
  USER, …), and RUN or WORKDIR that changed nothing (Docker records no layer then); a COPY or
  ADD always makes one. The layers left when the stage's instructions run out are the base's:
  they map to the stage's FROM line. Passing over a RUN or WORKDIR is trusted only when the
  history's FROM boundary confirms the count of the base's layers.
- A layer matches an instruction when its history records the same keyword and, for RUN, the
  same command (whitespace aside; the exec form by keyword only); for COPY and ADD the same
  destination (the legacy builder records `COPY file:<hash> in /dest`).
- `COPY --from=STAGE` maps to its own line and names the stage it copies from, with that
  stage's line range.
- Anything else — an instruction left over with layers, a keyword or command that differs, a
  base of another size than the history's FROM boundary says — is a mismatch: every layer keeps
  its history text, and the mismatch says where the two part (never a guess).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from imagescope.analysis.history import instruction_of

ALWAYS_A_LAYER = frozenset({"COPY", "ADD"})
MAY_MAKE_NONE = frozenset({"RUN", "WORKDIR"})  # none when they changed nothing


@dataclass(frozen=True, slots=True)
class Instruction:
    """One Dockerfile instruction as the parser gives it: `original` is its text with the
    continuation lines joined; `json` for the exec form."""

    keyword: str
    original: str
    arguments: tuple[str, ...]
    flags: tuple[str, ...]
    start_line: int
    end_line: int
    json: bool = False


@dataclass(frozen=True, slots=True)
class Stage:
    """A build stage: its FROM instruction, its name (`AS name`), what follows."""

    start: Instruction
    name: str | None
    instructions: tuple[Instruction, ...]

    @property
    def end_line(self) -> int:
        return max([self.start.end_line, *(i.end_line for i in self.instructions)])


@dataclass(frozen=True, slots=True)
class LayerSource:
    """Where a layer comes from in the Dockerfile: its instruction (the FROM line for the
    base's layers), and for `COPY --from` the stage copied from."""

    instruction: Instruction
    base: bool = False
    from_stage: Stage | None = None


@dataclass(frozen=True, slots=True)
class DockerfileMap:
    """Each layer's source (None for all when `mismatch` says why they do not match)."""

    path: str
    sources: tuple[LayerSource | None, ...]
    mismatch: str | None = None
    text: str | None = None  # the Dockerfile's text, when it came with the image (provenance)


def stages_of(instructions: Sequence[Instruction]) -> list[Stage]:
    """The build stages, in order (ARGs before the first FROM belong to none)."""
    stages: list[Stage] = []
    current: list[Instruction] = []
    start: Instruction | None = None
    for instruction in instructions:
        if instruction.keyword == "FROM":
            if start is not None:
                stages.append(_stage(start, current))
            start, current = instruction, []
        elif start is not None:
            current.append(instruction)
    if start is not None:
        stages.append(_stage(start, current))
    return stages


def _stage(start: Instruction, instructions: list[Instruction]) -> Stage:
    words = start.arguments
    name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else None
    return Stage(start, name, tuple(instructions))


def map_layers(path: str, instructions: Sequence[Instruction], layer_history: Sequence[str | None],
               base_layers: int | None) -> DockerfileMap:
    """Map the layers (bottom-up; each its history `created_by`, None when unknown) to the
    Dockerfile at `path` (its parsed `instructions`); `base_layers` is how many bottom layers
    the history's FROM boundary gives the base (None: not known)."""
    count = len(layer_history)
    stages = stages_of(instructions)
    if not stages:
        return DockerfileMap(path, (None,) * count, f"{path} has no FROM line")
    final = stages[-1]
    by_name = {stage.name.lower(): stage for stage in stages if stage.name}
    pending = list(final.instructions)
    sources: list[LayerSource | None] = [None] * count
    layer = count - 1
    lowest = base_layers or 0  # (a known base's layers are not the stage's to match)
    passed_over: list[Instruction] = []  # RUN/WORKDIR taken to have made no layer
    while layer >= lowest and pending:
        history = layer_history[layer]
        if history is None:
            return _mismatch(path, count, f"layer {layer} has no history to match")
        recorded = instruction_of(history)
        keyword = recorded.partition(" ")[0].upper()
        matched: Instruction | None = None
        while pending and matched is None:
            candidate = pending.pop()
            problem = _differs(candidate, recorded, keyword)
            if problem is None:
                matched = candidate
            elif candidate.keyword in MAY_MAKE_NONE:
                passed_over.append(candidate)
            elif candidate.keyword in ALWAYS_A_LAYER:
                return _mismatch(path, count, f"layer {layer} ({_clip(recorded)}) does not "
                                 f"match {path}:{candidate.start_line} "
                                 f"({_clip(candidate.original)}): {problem}")
        if matched is None:
            break  # the stage's instructions ran out: this layer and those below are the base's
        sources[layer] = LayerSource(matched, from_stage=copied_from(matched, by_name, stages))
        layer -= 1
    left = [i for i in pending if i.keyword in ALWAYS_A_LAYER]
    if left:
        return _mismatch(path, count, f"{path}:{left[-1].start_line} "
                         f"({_clip(left[-1].original)}) made no layer of the image: the image "
                         "was built from another Dockerfile, or an edited one")
    base = layer + 1
    if base_layers is not None and base != base_layers:
        return _mismatch(path, count, f"{path}'s final stage accounts for the top "
                         f"{count - base} of the {count} layers, leaving {base} to the base "
                         f"image, but the history puts {base_layers} in the base image")
    if base_layers is None and passed_over:
        skipped = passed_over[0]
        return _mismatch(path, count, f"{path}:{skipped.start_line} "
                         f"({_clip(skipped.original)}) matches no layer, and without the "
                         "history's FROM boundary it cannot be told whether it made none")
    for index in range(base):
        sources[index] = LayerSource(final.start, base=True)
    return DockerfileMap(path, tuple(sources))


def _differs(instruction: Instruction, recorded: str, keyword: str) -> str | None:
    """Why `instruction` is not the one the history `recorded`, or None."""
    if keyword != instruction.keyword:
        return f"{keyword} where the Dockerfile has {instruction.keyword}"
    if keyword == "RUN" and not instruction.json:
        command = _words(" ".join(instruction.arguments))
        if _words(recorded[4:]) != command:
            return "another command"
    if keyword in ("COPY", "ADD") and instruction.arguments:
        destination = instruction.arguments[-1]
        legacy = re.search(r" in (\S+)\s*$", recorded)
        found = legacy.group(1) if legacy else recorded.split()[-1]
        if found.rstrip("/") != destination.rstrip("/"):
            return f"destination {found} where the Dockerfile has {destination}"
    return None


def copied_from(instruction: Instruction, by_name: dict[str, Stage],
                stages: Sequence[Stage]) -> Stage | None:
    """The stage a `COPY --from=NAME|N` copies from (`by_name`: the stages by lowercased
    name), or None."""
    for flag in instruction.flags:
        if flag.startswith("--from="):
            name = flag.partition("=")[2]
            if name.isdigit() and int(name) < len(stages):
                return stages[int(name)]
            return by_name.get(name.lower())
    return None


def _words(text: str) -> list[str]:
    return text.split()


def _clip(text: str, limit: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _mismatch(path: str, count: int, why: str) -> DockerfileMap:
    return DockerfileMap(path, (None,) * count, why)


def location(source: LayerSource | None, path: str) -> str | None:
    """`Dockerfile:12` or `Dockerfile:12-14` for a layer's source."""
    if source is None:
        return None
    start, end = source.instruction.start_line, source.instruction.end_line
    name = path.rpartition("/")[2] or path
    return f"{name}:{start}" if start == end else f"{name}:{start}-{end}"
