"""JSON output: the documented, versioned schema (an API: exact integers, stable order)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from imagescope.analysis.findings.model import FileRef
from imagescope.analysis.gates import GateResult
from imagescope.analysis.recommend import changes_base
from imagescope.analysis.report import ImageRef, Report, WastedFile
from imagescope.records import columns_of
from imagescope.render import jsontext

if TYPE_CHECKING:  # an inspect never loads the diff machinery
    from imagescope.analysis.diff import Change, Diff, FindingChange
    from imagescope.analysis.suggestion import Suggestion

SCHEMA_VERSION = 1
MAX_FILES_PER_FINDING = 1000  # the largest; `file_count` says how many there are


# keys in the order of the records' fields (WastedFile, FileRef)
WASTED_FILE_KEYS = ("path", "bytes", "layer_index", "hidden_by_layer", "how")
FINDING_FILE_KEYS = ("path", "bytes", "layer_index", "hidden_by_layer")


def _rows(records: Sequence[Any], keys: tuple[str, ...], record_type: type) -> jsontext.Rows:
    """`records` as JSON rows, their fields named by `keys` (enums are written as text)."""
    return jsontext.Rows(keys, columns_of(records, record_type))


def report_document(report: Report, gate_results: Sequence[GateResult] = ()
                    ) -> dict[str, Any]:
    """The report as the JSON document of schema version SCHEMA_VERSION (plain dicts and
    lists, for `json.dumps`)."""
    return _document(report, gate_results, lambda rows: rows.records)


def _document(report: Report, gate_results: Sequence[GateResult],
              files: Callable[[jsontext.Rows], Any]) -> dict[str, Any]:
    """The document, each list of files given by `files` from its rows."""
    summary = report.summary
    return {
        "schema_version": SCHEMA_VERSION,
        "image": {
            "reference": report.image.reference,
            "source": report.image.source,
            "id": report.image.image_id,
            "repo_digest": report.image.repo_digest,
            "platform": report.image.platform,
        },
        "summary": {
            "total_bytes": summary.total_bytes,
            "final_bytes": summary.final_bytes,
            "wasted_bytes": summary.wasted_bytes,
            "removed_bytes": summary.removed_bytes,
            "overwritten_bytes": summary.overwritten_bytes,
            "identical_rewrite_bytes": summary.identical_rewrite_bytes,
            "efficiency": round(summary.efficiency, 6),
            "layer_count": summary.layer_count,
        },
        "optimized": {
            "shipped_bytes": summary.total_bytes,
            "optimized_bytes": report.optimized_bytes,
            "saved_bytes": (summary.total_bytes - report.optimized_bytes
                            if report.optimized_bytes is not None else None),
            "changes_base": changes_base(report.recommendations),
        },
        "layers": [
            {
                "index": layer.index,
                "digest": layer.digest,
                "diff_id": layer.diff_id,
                "media_type": layer.media_type,
                "stored_bytes": layer.stored_bytes,
                "entry_count": layer.entry_count,
                "added_bytes": layer.added_bytes,
                "wasted_bytes": layer.wasted_bytes,
                "hidden_by": [{"layer_index": index, "bytes": nbytes}
                              for index, nbytes in layer.hidden_by.items()],
                "instruction": layer.instruction,
                "created_by": layer.created_by,
                **_dockerfile_source(report, layer.index),
            }
            for layer in report.layers
        ],
        "wasted_files": files(_rows(report.wasted_files, WASTED_FILE_KEYS, WastedFile)),
        "findings": [
            {
                "rule": finding.rule,
                "category": str(finding.category),
                "severity": str(finding.severity),
                "subject": finding.subject,
                "title": finding.title,
                "detail": finding.detail,
                "bytes": finding.bytes,
                "removable": finding.removable,
                "layers": list(finding.layers),
                "file_count": len(finding.files),
                "files": files(_rows(finding.files[:MAX_FILES_PER_FINDING],
                                     FINDING_FILE_KEYS, FileRef)),
            }
            for finding in report.findings
        ],
        "recommendations": [
            {
                "rule": rec.rule,
                "title": rec.title,
                "saved_bytes": rec.saved_bytes,
                "steps": list(rec.steps),
                "change": rec.change,
                "addresses": list(rec.addresses),
            }
            for rec in report.recommendations
        ],
        "warnings": list(report.warnings),
        **({"base": {"reference": report.base.reference,
                     "detected_from": "base-option" if report.base.reference else "history",
                     "layer_count": report.base.layer_count,
                     "base_bytes": report.base.base_bytes,
                     "own_wasted_bytes": report.base.own_wasted_bytes,
                     "base_hidden_bytes": report.base.base_hidden_bytes,
                     "inherited_wasted_bytes": report.base.inherited_wasted_bytes}}
           if report.base else {}),
        **({"gates": gates_document(gate_results)} if gate_results else {}),
        **({"suggestion": _suggestion(report.suggestion)} if report.suggestion else {}),
    }


def _suggestion(suggestion: Suggestion) -> dict[str, Any]:
    """The suggested Dockerfile: the estimate, each change with its lines and bytes."""
    return {
        "dockerfile": suggestion.path,
        "dockerignore": suggestion.dockerignore_path,
        "shipped_bytes": suggestion.shipped_bytes,
        "estimated_bytes": suggestion.estimated_bytes,
        "saved_bytes": suggestion.saved_bytes,
        "estimate": True,
        "changes": [{"rule": change.rule, "title": change.title,
                     "lines": [list(span) for span in change.lines if span != (0, 0)],
                     "file": (suggestion.dockerignore_path if change.lines == ((0, 0),)
                              else suggestion.path),
                     "saved_bytes": change.saved_bytes}
                    for change in suggestion.changes],
        "dockerfile_text": suggestion.rewritten_text,
        "dockerignore_text": ("\n".join(suggestion.dockerignore_after) + "\n"
                              if suggestion.dockerignore_after is not None else None),
    }


def render(report: Report, gate_results: Sequence[GateResult] = ()) -> str:
    """`json.dumps(report_document(...), indent=2)`: non-ASCII and non-UTF-8 names are escaped,
    so the text is plain ASCII."""
    return jsontext.dumps(_document(report, gate_results, lambda rows: rows)) + "\n"


def _change(change: Change) -> dict[str, Any]:
    return {"old": change.old, "new": change.new, "delta": change.delta}


def diff_document(diff: Diff, gate_results: Sequence[GateResult] = (), *,
                  top: int = 100) -> dict[str, Any]:
    """A diff as the JSON document of schema version SCHEMA_VERSION (`kind: diff`)."""

    def image(ref: ImageRef) -> dict[str, Any]:
        return {"reference": ref.reference, "source": ref.source, "id": ref.image_id,
                "repo_digest": ref.repo_digest, "platform": ref.platform}

    def finding(change: FindingChange) -> dict[str, Any]:
        return {"rule": change.rule, "subject": change.subject, "title": change.title,
                "bytes": _change(change.bytes)}

    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "diff",
        "old": image(diff.old),
        "new": image(diff.new),
        "summary": {
            "total_bytes": _change(diff.total_bytes),
            "final_bytes": _change(diff.final_bytes),
            "wasted_bytes": _change(diff.wasted_bytes),
            "layer_count": _change(diff.layer_count),
            "efficiency": {"old": round(diff.old_efficiency, 6),
                           "new": round(diff.new_efficiency, 6)},
            "shared_layers": diff.shared_layers,
            "shared_bytes": diff.shared_bytes,
            "new_layer_bytes": diff.new_layer_bytes,
            "new_waste_bytes": diff.new_waste_bytes,
            "own_wasted_bytes": _change(diff.own_wasted_bytes),
            "base_hidden_bytes": _change(diff.base_hidden_bytes),
            "newly_hidden_base_bytes": diff.newly_hidden_base_bytes,
            "new_waste_by_step": [{"instruction": step, "bytes": nbytes}
                                  for step, nbytes in diff.new_waste_steps],
        },
        "steps": [
            {"status": step.status, "old_index": step.old_index, "new_index": step.new_index,
             "old_instruction": step.old_instruction, "new_instruction": step.new_instruction,
             "added_bytes": _change(step.added_bytes), "wasted_bytes": _change(step.wasted_bytes)}
            for step in diff.steps
        ],
        "file_count": len(diff.files),
        "files": [
            {"path": change.path, "status": change.status, "size": _change(change.size),
             "changes": list(change.changes)}
            for change in diff.files[:top]
        ],
        "directories": [
            {"path": rollup.path, "added_bytes": rollup.added_bytes,
             "removed_bytes": rollup.removed_bytes, "changed_delta": rollup.changed_delta,
             "net_bytes": rollup.net_bytes, "file_count": rollup.file_count}
            for rollup in diff.directories[:top]
        ],
        "new_findings": [finding(change) for change in diff.new_findings],
        "resolved_findings": [finding(change) for change in diff.resolved_findings],
        "gates": gates_document(gate_results),
    }


def gates_document(results: Sequence[GateResult]) -> list[dict[str, Any]]:
    return [{"gate": r.gate, "passed": r.passed, "message": r.message} for r in results]


def render_diff(diff: Diff, gate_results: Sequence[GateResult] = (), *, top: int = 100) -> str:
    return jsontext.dumps(diff_document(diff, gate_results, top=top)) + "\n"


def _dockerfile_source(report: Report, index: int) -> dict[str, object]:
    """With --dockerfile: the layer's `dockerfile` (line range, text; null on a mismatch)."""
    mapped = report.dockerfile
    if mapped is None:
        return {}
    source = mapped.sources[index]
    if source is None:
        return {"dockerfile": None}
    stage = source.from_stage
    return {"dockerfile": {
        "path": mapped.path, "start_line": source.instruction.start_line,
        "end_line": source.instruction.end_line, "instruction": source.instruction.original,
        "base": source.base,
        "from_stage": None if stage is None else {
            "name": stage.name, "start_line": stage.start.start_line,
            "end_line": stage.end_line}}}
