"""A Report as bytes and back, exactly, for the report cache (pure).

Layout: `marshal` of plain tuples, file lists as columns (`records.Records`), so decoding makes
one object per column and per layer, finding and recommendation, not one per file. Decoding
input that is not an encoded report raises ValueError.
"""

from __future__ import annotations

import dataclasses
import hashlib
import marshal
from collections.abc import Sequence
from typing import Any

from imagescope.analysis.build_results import ResultRoot
from imagescope.analysis.dockerfile_map import DockerfileMap, Instruction, LayerSource, Stage
from imagescope.analysis.findings.model import Category, FileRef, Finding, Severity
from imagescope.analysis.overlay import HiddenHow
from imagescope.analysis.recommend import Recommendation
from imagescope.analysis.report import BaseImage, ImageRef, LayerReport, Report, Summary, WastedFile
from imagescope.model import Image
from imagescope.records import Records, columns_of

_HOWS = {str(how): how for how in HiddenHow}
_CATEGORIES = {str(category): category for category in Category}
_SEVERITIES = {str(severity): severity for severity in Severity}


def image_key(image: Image) -> str | None:
    """What decides the report of `image`, as `sha256:<hex>`; None when a layer has no diff_id.

    Everything but the layers' entries: those are named by the diff_ids (as the layer cache
    names them), so two loads with the same key give the same report. The provenance
    attestation is named by its statement's digest.
    """
    if any(layer.diff_id is None for layer in image.layers):
        return None
    identity = (
        image.reference, image.source, image.image_id, image.repo_digest, image.platform,
        image.user, tuple(image.warnings),
        tuple((step.created_by, step.empty_layer, step.comment) for step in image.history),
        tuple((layer.index, layer.digest, layer.diff_id, layer.media_type, layer.stored_bytes)
              for layer in image.layers),
        image.provenance.digest if image.provenance is not None else None,
    )
    return "sha256:" + hashlib.sha256(marshal.dumps(identity)).hexdigest()


def encode(report: Report) -> bytes:
    """The report as bytes `decode` turns back into an equal Report."""
    return marshal.dumps((
        _fields(report.image),
        _fields(report.summary),
        tuple((layer.index, layer.digest, layer.diff_id, layer.media_type, layer.stored_bytes,
               layer.entry_count, layer.added_bytes, layer.wasted_bytes,
               tuple(layer.hidden_by.items()), layer.created_by, layer.instruction)
              for layer in report.layers),
        _wasted_columns(report.wasted_files),
        tuple(report.warnings),
        tuple((f.rule, str(f.category), str(f.severity), f.title, f.subject, f.bytes,
               _file_columns(f.files), tuple(f.layers), f.removable, f.detail)
              for f in report.findings),
        tuple((r.rule, r.title, r.saved_bytes, tuple(r.steps), r.change, tuple(r.addresses))
              for r in report.recommendations),
        report.optimized_bytes,
        _fields(report.base) if report.base is not None else None,
        _dockerfile_map(report.dockerfile) if report.dockerfile is not None else None,
        tuple(map(_fields, report.build_results)),
    ))


def decode(data: bytes) -> Report:
    """The Report `encode` made; ValueError when `data` is not one."""
    try:
        (image, summary, layers, wasted, warnings, findings, recommendations, optimized,
         base, dockerfile, roots) = marshal.loads(data)
        paths, sizes, written, hidden_by, hows = wasted
        return Report(
            image=ImageRef(*image),
            summary=Summary(*summary),
            layers=[LayerReport(index=index, digest=digest, diff_id=diff_id,
                                media_type=media_type, stored_bytes=stored, entry_count=count,
                                added_bytes=added, wasted_bytes=wasted_bytes,
                                hidden_by=dict(by), created_by=created_by,
                                instruction=instruction)
                    for (index, digest, diff_id, media_type, stored, count, added, wasted_bytes,
                         by, created_by, instruction) in layers],
            wasted_files=Records(WastedFile, (paths, sizes, written, hidden_by,
                                              [_HOWS[how] for how in hows])),
            warnings=list(warnings),
            findings=[Finding(rule=rule, category=_CATEGORIES[category],
                              severity=_SEVERITIES[severity], title=title, subject=subject,
                              bytes=nbytes, files=Records(FileRef, files), layers=tuple(involved),
                              removable=removable, detail=detail)
                      for (rule, category, severity, title, subject, nbytes, files, involved,
                           removable, detail) in findings],
            recommendations=[Recommendation(rule, title, saved, tuple(steps), change,
                                            tuple(addresses))
                             for rule, title, saved, steps, change, addresses in recommendations],
            optimized_bytes=optimized,
            base=BaseImage(*base) if base is not None else None,
            dockerfile=_decoded_map(dockerfile) if dockerfile is not None else None,
            build_results=tuple(ResultRoot(*root) for root in roots),
        )
    except (EOFError, TypeError, ValueError, KeyError) as exc:
        raise ValueError(f"not an encoded report: {exc}") from None


def _dockerfile_map(mapped: DockerfileMap) -> tuple[Any, ...]:
    """(path, sources, mismatch, text); a source is (instruction, base, stage or None), a stage
    (its FROM, name, instructions), an instruction its fields."""
    def stage(found: Stage | None) -> tuple[Any, ...] | None:
        if found is None:
            return None
        return (_fields(found.start), found.name, tuple(map(_fields, found.instructions)))

    return (mapped.path,
            tuple(None if s is None else (_fields(s.instruction), s.base, stage(s.from_stage))
                  for s in mapped.sources),
            mapped.mismatch, mapped.text)


def _decoded_map(encoded: tuple[Any, ...]) -> DockerfileMap:
    def instruction(fields: tuple[Any, ...]) -> Instruction:
        keyword, original, arguments, flags, start, end, json = fields
        return Instruction(keyword, original, tuple(arguments), tuple(flags), start, end, json)

    def stage(fields: tuple[Any, ...] | None) -> Stage | None:
        if fields is None:
            return None
        start, name, instructions = fields
        return Stage(instruction(start), name, tuple(map(instruction, instructions)))

    path, sources, mismatch, text = encoded
    return DockerfileMap(path, tuple(
        None if s is None else LayerSource(instruction(s[0]), s[1], stage(s[2]))
        for s in sources), mismatch, text)


def _fields(record: Any) -> tuple[Any, ...]:
    return tuple(getattr(record, field.name) for field in dataclasses.fields(record))


def _wasted_columns(files: Sequence[WastedFile]) -> tuple[tuple[Any, ...], ...]:
    *head, hows = columns_of(files, WastedFile)
    return (*map(tuple, head), tuple(map(str, hows)))


def _file_columns(files: Sequence[FileRef]) -> tuple[tuple[Any, ...], ...]:
    return tuple(map(tuple, columns_of(files, FileRef)))


__all__ = ["decode", "encode", "image_key"]
