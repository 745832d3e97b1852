"""The analysis result: image → replay → exact byte accounting per image, layer and file (pure)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, NamedTuple

from imagescope.analysis.build_results import ResultRoot
from imagescope.analysis.dockerfile_map import DockerfileMap, location
from imagescope.analysis.findings.model import Finding
from imagescope.analysis.history import as_written, attribute, instruction_of
from imagescope.analysis.overlay import HiddenHow, Replay, how_hidden
from imagescope.analysis.recommend import Recommendation
from imagescope.model import Image
from imagescope.records import largest_first

if TYPE_CHECKING:
    from imagescope.analysis.suggestion import Suggestion


@dataclass(frozen=True, slots=True)
class ImageRef:
    reference: str
    source: str
    image_id: str | None
    repo_digest: str | None
    platform: str | None


@dataclass(frozen=True, slots=True)
class Summary:
    """`wasted = total − final = removed + overwritten`; identical rewrites are part of overwritten."""

    total_bytes: int
    final_bytes: int
    wasted_bytes: int
    removed_bytes: int
    overwritten_bytes: int
    identical_rewrite_bytes: int
    layer_count: int

    @property
    def efficiency(self) -> float:
        """final / total; an image without file bytes is fully efficient."""
        return self.final_bytes / self.total_bytes if self.total_bytes else 1.0


@dataclass(frozen=True, slots=True)
class LayerReport:
    index: int
    digest: str | None
    diff_id: str | None
    media_type: str | None
    stored_bytes: int | None
    entry_count: int
    added_bytes: int  # regular-file bytes this layer writes
    wasted_bytes: int  # of added_bytes, hidden by later layers (or later in this layer)
    hidden_by: dict[int, int]  # hiding layer index → bytes of this layer it hid
    created_by: str | None
    instruction: str | None


class WastedFile(NamedTuple):
    path: str  # absolute, as shown to users
    bytes: int
    layer_index: int
    hidden_by_layer: int
    how: HiddenHow


class WasteClass(StrEnum):
    """Who can reclaim wasted bytes. Bytes a base image wrote ship whatever the Dockerfile does:
    deleting them in an own step hides them and saves nothing."""

    OWN = "own"  # written by an own step: changing the Dockerfile reclaims it
    BASE_HIDDEN = "base_hidden"  # written by the base, hidden by an own step: only another
    # base or a build stage reclaims it (or leaving the files alone, which hides nothing)
    INHERITED = "inherited"  # written and hidden inside the base: not yours


def waste_class(wasted: WastedFile, base_layers: int) -> WasteClass:
    """The class of a wasted file when the bottom `base_layers` layers are the base's."""
    if wasted.layer_index >= base_layers:
        return WasteClass.OWN
    if wasted.hidden_by_layer >= base_layers:
        return WasteClass.BASE_HIDDEN
    return WasteClass.INHERITED


@dataclass(frozen=True, slots=True)
class BaseImage:
    """The base image's share of a report: its layers are the bottom `layer_count` ones, known
    from `--base` (`reference`) or from the history's FROM boundary (`reference` None)."""

    reference: str | None
    layer_count: int
    base_bytes: int  # file bytes the base's layers add: what any image on it ships
    inherited_wasted_bytes: int  # WasteClass.INHERITED
    base_hidden_bytes: int  # WasteClass.BASE_HIDDEN
    own_wasted_bytes: int  # WasteClass.OWN


def base_image(report: Report, reference: str | None, layer_count: int) -> BaseImage:
    """The waste of `report` split by class, its bottom `layer_count` layers the base's."""
    split = dict.fromkeys(WasteClass, 0)
    for wasted in report.wasted_files:
        split[waste_class(wasted, layer_count)] += wasted.bytes
    return BaseImage(reference, layer_count,
                     sum(layer.added_bytes for layer in report.layers[:layer_count]),
                     split[WasteClass.INHERITED], split[WasteClass.BASE_HIDDEN],
                     split[WasteClass.OWN])


@dataclass(frozen=True, slots=True)
class Report:
    image: ImageRef
    summary: Summary
    layers: list[LayerReport]
    wasted_files: Sequence[WastedFile]  # largest first, then by path
    warnings: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # most severe first, then largest
    recommendations: list[Recommendation] = field(default_factory=list)  # most bytes saved first
    optimized_bytes: int | None = None  # shipped bytes with every recommendation applied
    base: BaseImage | None = None
    dockerfile: DockerfileMap | None = None  # the layers' Dockerfile lines (--dockerfile, or
    # the image's provenance: `with_provenance`)
    suggestion: Suggestion | None = None  # the Dockerfile rewritten (when `dockerfile` matched)
    build_results: tuple[ResultRoot, ...] = ()  # where own steps put results (a toolchain found)


def build_report(image: Image, result: Replay) -> Report:
    """Account every regular-file byte of `image` from its replay."""
    layer_count = len(image.layers)
    wasted_by_layer = [0] * layer_count
    hidden_by: list[dict[int, int]] = [{} for _ in range(layer_count)]
    removed = overwritten = identical = 0
    wasted_files: list[WastedFile] = []
    for hidden in result.hidden:
        size = hidden.entry.size
        if size == 0:
            continue
        how = how_hidden(hidden)
        if how is HiddenHow.REMOVED:
            removed += size
        else:
            overwritten += size
            if how is HiddenHow.IDENTICAL_REWRITE:
                identical += size
        wasted_by_layer[hidden.layer_index] += size
        by = hidden_by[hidden.layer_index]
        by[hidden.hidden_by] = by.get(hidden.hidden_by, 0) + size
        wasted_files.append(WastedFile("/" + hidden.entry.path, size, hidden.layer_index,
                                       hidden.hidden_by, how))
    wasted_files = largest_first(wasted_files)

    attribution = attribute(image.history, layer_count)
    layers: list[LayerReport] = []
    total = 0
    for position, layer in enumerate(image.layers):
        added = layer.added_bytes()
        total += added
        step = attribution.steps[position]
        layers.append(LayerReport(
            index=position,
            digest=layer.digest,
            diff_id=layer.diff_id,
            media_type=layer.media_type,
            stored_bytes=layer.stored_bytes,
            entry_count=len(layer.entries),
            added_bytes=added,
            wasted_bytes=wasted_by_layer[position],
            hidden_by=dict(sorted(hidden_by[position].items())),
            created_by=step.created_by if step else None,
            instruction=instruction_of(step.created_by) if step else None,
        ))
    wasted = removed + overwritten
    summary = Summary(
        total_bytes=total,
        final_bytes=total - wasted,
        wasted_bytes=wasted,
        removed_bytes=removed,
        overwritten_bytes=overwritten,
        identical_rewrite_bytes=identical,
        layer_count=layer_count,
    )
    warnings = list(image.warnings)
    if attribution.warning:
        warnings.append(attribution.warning)
    return Report(
        image=ImageRef(image.reference, image.source, image.image_id, image.repo_digest,
                       image.platform),
        summary=summary,
        layers=layers,
        wasted_files=wasted_files,
        warnings=warnings,
    )


def waste_key(report: Report, wasted: WastedFile) -> tuple[str, str, str | None]:
    """Identifies the same waste in two images: path, how, and the writing layer's diff_id."""
    return wasted.path, str(wasted.how), report.layers[wasted.layer_index].diff_id


def base_layers(report: Report) -> int:
    """How many bottom layers of `report` are its base image's (0: none known)."""
    return report.base.layer_count if report.base is not None else 0


def layer_name(report: Report, index: int) -> str:
    """A layer as users know it: `Dockerfile:LINE` and the Dockerfile's own text when the
    layers map to one; else its instruction, `base image` below the FROM boundary, or `layer N`
    when the history does not say."""
    mapped = report.dockerfile
    source = mapped.sources[index] if mapped is not None else None
    if mapped is not None and source is not None:
        text = " ".join(source.instruction.original.split())
        where = location(source, mapped.path)
        if source.base:
            return f"{where} base image ({text})"
        if source.from_stage is not None:
            stage = source.from_stage
            text += f" (stage {stage.name or '?'}, lines {stage.start.start_line}-{stage.end_line})"
        return f"{where} {text}"
    if index < base_layers(report):
        return "base image"
    instruction = report.layers[index].instruction
    return as_written(instruction) if instruction else f"layer {index}"


def with_dockerfile(report: Report, mapped: DockerfileMap) -> Report:
    """`report` with its layers' Dockerfile lines, in place of any it had (the provenance's:
    its mismatch warning goes with it); a mismatch becomes a warning."""
    stale = _mismatch_warnings(report.dockerfile)
    warnings = [warning for warning in report.warnings if warning not in stale]
    if mapped.mismatch is not None:
        warnings.append(_dockerfile_warning(mapped))
    return dataclasses.replace(report, dockerfile=mapped, warnings=warnings)


def with_provenance(report: Report, mapped: DockerfileMap) -> Report:
    """`report` with the layers' Dockerfile lines its image's provenance gives; a mismatch
    becomes a warning."""
    warnings = list(report.warnings)
    if mapped.mismatch is not None:
        warnings.append(_provenance_warning(mapped))
    return dataclasses.replace(report, dockerfile=mapped, warnings=warnings)


def _dockerfile_warning(mapped: DockerfileMap) -> str:
    return (f"--dockerfile {mapped.path}: the layers do not match it ({mapped.mismatch}); "
            "steps are shown from the image history")


def _provenance_warning(mapped: DockerfileMap) -> str:
    return (f"the image's provenance attestation does not map its layers to {mapped.path} "
            f"lines ({mapped.mismatch}); steps are shown from the image history")


def _mismatch_warnings(mapped: DockerfileMap | None) -> set[str]:
    """The warnings a mapping's mismatch made, whichever made it."""
    if mapped is None or mapped.mismatch is None:
        return set()
    return {_dockerfile_warning(mapped), _provenance_warning(mapped)}
