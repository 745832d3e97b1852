"""What the registry tests compare: a report's figures, apart from where the image came from."""

from __future__ import annotations

import json
import re
from typing import Any

from tests.cli import CliResult, run_cli

# where an image was read from; stored_bytes/digest/media_type differ between compressions
_ORIGIN = ("reference", "source", "repo_digest")
_STORAGE = ("digest", "media_type", "stored_bytes")


def figures(report: dict[str, Any], *, storage_too: bool = True) -> dict[str, Any]:
    """The report without the fields that name its source (and, unless `storage_too`, without
    how its layers are stored)."""
    kept = json.loads(json.dumps(report))
    for key in _ORIGIN:
        kept["image"].pop(key, None)
    if not storage_too:
        for layer in kept["layers"]:
            for key in _STORAGE:
                layer.pop(key, None)
        kept.pop("optimized", None)  # (shipped bytes are stored bytes)
    return kept


def inspect_json(*args: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run_cli("inspect", *args, "--format", "json", env=env)
    assert result.exit_code == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def fetched_layers(result: CliResult) -> list[str]:
    """The layer digests a `--verbose` run says it fetched, in order."""
    return re.findall(r"fetched layer (sha256:[0-9a-f]{64})", result.stderr)


def one_line_error(result: CliResult) -> str:
    """The error a failed run printed: exactly one line, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]
