"""Layers → the Dockerfile lines that made them, from the SLSA provenance BuildKit attaches in
`mode=max` (pure: the in-toto statement comes as bytes).

Rules:
- BuildKit's metadata is `predicate.metadata` (SLSA v0.2) or `predicate.runDetails.metadata`
  (v1), under `https://mobyproject.org/buildkit@v1#metadata` (`buildkit_metadata` in the v1 of
  newer BuildKits). Without its `source` and `layers` (mode=min) there is nothing to map: no map.
- `layers` gives each build step's output (`stepN:OUTPUT`) as layer chains: its snapshot's blob
  descriptors, bottom-up. Image layer i was made by a step whose chain ends with layer i's blob
  and below it runs the image's layers below i (the whole chain, or its top part); of several
  (a later step that changed nothing), the first in the build's step order with a location.
- That step's `source.locations` range is the instruction of the Dockerfile embedded in
  `source.infos` (read as --dockerfile is: `parse`) that starts and ends on the range's lines.
  A step BuildKit shares between stages is taken at its line in the target stage (the `target`
  build argument, else the last stage) when it has one there, else at its first. Only FROM, RUN,
  COPY, ADD and WORKDIR make layers.
- A layer a FROM line made is a base layer, at that FROM; so are layers no step made below every
  mapped one, at the target stage's FROM. `COPY --from` names its stage, as `dockerfile_map` does.
- Anything else — a layer no step made above a mapped one, no layer found at all, a step without
  a location, a range that is no instruction, no embedded Dockerfile, malformed metadata — is a
  mismatch saying where (never a guess).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from imagescope.analysis.dockerfile_map import (
    DockerfileMap,
    Instruction,
    LayerSource,
    Stage,
    copied_from,
    stages_of,
)
from imagescope.errors import ImagescopeError

SLSA_V02 = "https://slsa.dev/provenance/v0.2"
SLSA_V1 = "https://slsa.dev/provenance/v1"
METADATA_KEYS = ("https://mobyproject.org/buildkit@v1#metadata", "buildkit_metadata")
MAKE_LAYERS = frozenset({"FROM", "RUN", "COPY", "ADD", "WORKDIR"})  # what a layer can come from
_STEP = re.compile(r"step(\d+)")


@dataclass(frozen=True, slots=True)
class _Step:
    """A build step that output layers: its id (`step3`), order, and where it is written."""

    id: str
    number: int
    locations: tuple[tuple[int, int, int], ...]  # (source index, first line, last line)


Parse = Callable[[str, str], Sequence[Instruction]]
"""Dockerfile text and what to call it → its instructions (`dockerfile.parse_dockerfile_text`);
an ImagescopeError when it is no Dockerfile."""


class _Unfit(Exception):
    """The provenance does not map the layers: why."""


def provenance_map(statement: bytes, layer_digests: Sequence[str | None],
                   parse: Parse) -> DockerfileMap | None:
    """The layers (their blob digests, bottom-up) mapped to the Dockerfile the provenance
    `statement` embeds, read with `parse`; None when it carries no BuildKit source and layer
    metadata."""
    count = len(layer_digests)
    path = "Dockerfile"
    if not count:
        return None
    try:
        metadata, target = _metadata(statement)
        if metadata is None or not ("source" in metadata or "layers" in metadata):
            return None
        source = _dict(metadata.get("source"))
        infos = [_dict(info) for info in _list(source.get("infos"))]
        named = [info.get("filename") for info in infos if isinstance(info.get("filename"), str)]
        path = str(named[0]) if named else path
        return _mapped(metadata, source, infos, target, layer_digests, parse)
    except _Unfit as unfit:
        return DockerfileMap(path, (None,) * count, f"the provenance {unfit}")


def _metadata(statement: bytes) -> tuple[dict[str, Any] | None, str | None]:
    """BuildKit's metadata in the statement, and the target stage the build asked for."""
    try:
        doc = json.loads(statement)
    except (ValueError, RecursionError):
        raise _Unfit("is not valid JSON") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("predicate"), dict):
        raise _Unfit("has no predicate object")
    predicate, kind = doc["predicate"], doc.get("predicateType")
    if kind == SLSA_V02:
        metadata = _dict(predicate.get("metadata"))
        args = _dict(_dict(_dict(predicate.get("invocation")).get("parameters")).get("args"))
    elif kind == SLSA_V1:
        metadata = _dict(_dict(predicate.get("runDetails")).get("metadata"))
        external = _dict(_dict(predicate.get("buildDefinition")).get("externalParameters"))
        args = _dict(_dict(external.get("request") or external.get("parameters")).get("args"))
    else:
        raise _Unfit(f"states {str(kind)[:80]!r}, not SLSA provenance v0.2 or v1")
    found = next((metadata[key] for key in METADATA_KEYS if key in metadata), None)
    if found is None:
        return None, None
    if not isinstance(found, dict):
        raise _Unfit("has BuildKit metadata that is not a JSON object")
    target = args.get("target")
    return found, target if isinstance(target, str) and target else None


def _mapped(metadata: dict[str, Any], source: dict[str, Any], infos: list[dict[str, Any]],
            target: str | None, layer_digests: Sequence[str | None],
            parse: Parse) -> DockerfileMap:
    if not infos:
        raise _Unfit("embeds no Dockerfile (no source.infos)")
    made_by = _made_by(_chains(metadata.get("layers")), _dict(source.get("locations")),
                       layer_digests)
    mapped = [i for i, step in enumerate(made_by) if step is not None]
    if not mapped:
        raise _Unfit("lists none of the image's layers among its build steps' layers: it "
                     "describes another build of the image")
    for index in range(mapped[0], len(made_by)):
        if made_by[index] is None:
            raise _Unfit(f"lists layer {index} ({_short(layer_digests[index])}) among no build "
                         "step's layers, though it lists layers below it")
    used = {location[0] for i in mapped for location in _step(made_by, i).locations}
    if len(used) != 1:
        raise _Unfit(f"places the layers in {len(used)} source files")
    (source_index,) = used
    if not 0 <= source_index < len(infos):
        raise _Unfit(f"places the layers in source {source_index}, which it does not embed")
    path = str(infos[source_index].get("filename") or "Dockerfile")
    text, instructions = _embedded(infos[source_index], path, parse)
    stages = stages_of(instructions)
    if not stages:
        raise _Unfit(f"embeds a {path} with no FROM line")
    by_name = {stage.name.lower(): stage for stage in stages if stage.name}
    final = by_name.get(target.lower(), stages[-1]) if target else stages[-1]
    at = {(i.start_line, i.end_line): i for i in instructions}
    sources: list[LayerSource | None] = [LayerSource(final.start, base=True)] * mapped[0]
    for index in mapped:
        step = _step(made_by, index)
        found = [at.get((first, last)) for _, first, last in step.locations]
        spans = [str(first) if first == last else f"{first}-{last}"
                 for _, first, last in step.locations]
        lines = ("line " if spans[0].isdigit() and len(spans) == 1 else "lines ") + ", ".join(spans)
        if any(instruction is None for instruction in found):
            raise _Unfit(f"places layer {index}'s step {step.id} at {lines} of {path}, "
                         "where no instruction starts and ends: the embedded Dockerfile is not "
                         "the one built")
        chosen = _in_stage([i for i in found if i is not None], final)
        if chosen.keyword not in MAKE_LAYERS:
            raise _Unfit(f"places layer {index}'s step {step.id} at {lines} of {path}, "
                         f"which holds {chosen.keyword}: no layer comes from that instruction")
        if chosen.keyword == "FROM":
            sources.append(LayerSource(chosen, base=True))
        else:
            sources.append(LayerSource(chosen, from_stage=copied_from(chosen, by_name, stages)))
    return DockerfileMap(path, tuple(sources), text=text)


def _chains(layers: Any) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Each step's output chains (`stepN:OUTPUT` → [[descriptor…]…]), by their top blob
    digest: {top: [(step id, chain)…]}."""
    if not isinstance(layers, dict) or not layers:
        raise _Unfit("lists no build step's layers (no layers)")
    by_top: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for key, chains in layers.items():
        step_id = str(key).partition(":")[0]
        for chain in chains if isinstance(chains, list) else [None]:
            if not isinstance(chain, list) or not chain:
                raise _Unfit(f"lists layers of {key} that are no list of layer chains")
            digests = tuple(str(_dict(desc).get("digest") or "") for desc in chain)
            if not all(digests):
                raise _Unfit(f"lists a layer of {key} with no digest")
            by_top.setdefault(digests[-1], []).append((step_id, digests))
    return by_top


def _made_by(by_top: dict[str, list[tuple[str, tuple[str, ...]]]], locations: dict[str, Any],
             layer_digests: Sequence[str | None]) -> list[_Step | None]:
    """The step that made each layer, None where none did."""
    made_by: list[_Step | None] = []
    for index, digest in enumerate(layer_digests):
        below = tuple(layer_digests[:index + 1])
        fits = {step_id for step_id, chain in by_top.get(digest or "", [])
                if len(chain) <= len(below) and below[len(below) - len(chain):] == chain}
        steps = sorted((_step_of(step_id, locations) for step_id in fits),
                       key=lambda step: (step.number, step.id))
        placed = [step for step in steps if step.locations]
        if steps and not placed:
            raise _Unfit(f"gives layer {index}'s step {steps[0].id} no Dockerfile location")
        made_by.append(placed[0] if placed else None)
    return made_by


def _step_of(step_id: str, locations: dict[str, Any]) -> _Step:
    match = _STEP.fullmatch(step_id)
    found = []
    for location in _list(_dict(locations.get(step_id)).get("locations")):
        location = _dict(location)
        ranges = [_dict(r) for r in _list(location.get("ranges"))]
        if not ranges:
            continue
        index = location.get("sourceIndex", 0)  # (Go omits a zero)
        first = min(_line(r.get("start")) for r in ranges)
        last = max(_line(r.get("end")) for r in ranges)
        found.append((index if isinstance(index, int) else -1, first, last))
    return _Step(step_id, int(match.group(1)) if match else 1 << 62, tuple(found))


def _line(position: Any) -> int:
    line = _dict(position).get("line", 0)
    return line if isinstance(line, int) else 0


def _step(made_by: list[_Step | None], index: int) -> _Step:
    step = made_by[index]
    assert step is not None
    return step


def _embedded(info: dict[str, Any], path: str, parse: Parse) -> tuple[str, list[Instruction]]:
    """The embedded Dockerfile's text and instructions."""
    language = info.get("language")
    if isinstance(language, str) and language and language.lower() != "dockerfile":
        raise _Unfit(f"embeds {path} as {language[:40]!r}, not a Dockerfile")
    data = info.get("data")
    if not isinstance(data, str) or not data:
        raise _Unfit(f"embeds no text of {path} (source.infos data)")
    try:
        text = base64.b64decode(data, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _Unfit(f"embeds {path} as no base64 of UTF-8 text") from None
    try:
        return text, list(parse(text, f"the {path} the provenance embeds"))
    except ImagescopeError as exc:
        raise _Unfit(f"embeds a {path} the parser refuses ({exc})") from None


def _in_stage(found: list[Instruction], stage: Stage) -> Instruction:
    """The first of `found` that is in `stage`, else the first."""
    ours = [stage.start, *stage.instructions]
    return next((i for i in found if any(i is own for own in ours)), found[0])


def _short(digest: str | None) -> str:
    return f"{digest[:19]}…" if digest else "no digest"


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


__all__ = ["METADATA_KEYS", "SLSA_V02", "SLSA_V1", "provenance_map"]
