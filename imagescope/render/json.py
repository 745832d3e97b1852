"""JSON output: the documented, versioned schema (an API: exact integers, stable order)."""

from __future__ import annotations

import json
from typing import Any

from imagescope.report import Report

SCHEMA_VERSION = 1


def report_document(report: Report) -> dict[str, Any]:
    """The report as the JSON document of schema version SCHEMA_VERSION."""
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
            }
            for layer in report.layers
        ],
        "wasted_files": [
            {
                "path": wasted.path,
                "bytes": wasted.bytes,
                "layer_index": wasted.layer_index,
                "hidden_by_layer": wasted.hidden_by_layer,
                "how": str(wasted.how),
            }
            for wasted in report.wasted_files
        ],
        "warnings": list(report.warnings),
    }


def render(report: Report) -> str:
    """Indented JSON; non-ASCII and non-UTF-8 names are escaped, so the text is plain ASCII."""
    return json.dumps(report_document(report), indent=2, ensure_ascii=True) + "\n"
