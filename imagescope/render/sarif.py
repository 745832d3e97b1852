"""A report as SARIF 2.1.0, for GitHub code scanning (pure).

Rules:
- One result per finding, and one per wasted file of at least WASTE_RESULT_BYTES, each with
  its exact bytes in the message and in `properties.bytes`.
- A result is located at the Dockerfile line of the step to change: the first own step of a
  finding (for hidden waste, the step that wrote the bytes), the step that wrote a wasted file.
  The Dockerfile is `--dockerfile`'s path; without it, or when the layers do not match it, or
  for a finding about the whole image (root user, layer count), the result points at the
  Dockerfile (`Dockerfile` when none was named) without a line.
- `ruleId`s are the findings' rule ids and `wasted-file`: stable, each with help text.
- `partialFingerprints` hash what identifies the issue, not where it is or how big: the rule,
  the subject, the steps by their text (not their numbers) and the files (a wasted file: its
  path and the step that wrote it), so an alert stays put across pushes.
- The Dockerfile's URI is relative to the working directory when it is below it (code
  scanning wants the repository's paths).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from typing import Any

from imagescope import __version__
from imagescope.analysis.dockerfile_map import LayerSource
from imagescope.analysis.findings.model import Category, Finding, Severity
from imagescope.analysis.report import Report, WastedFile
from imagescope.render import jsontext
from imagescope.render.text import size

SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
WASTE_RESULT_BYTES = 1 << 20  # a wasted file this large is a result of its own
WASTE_RULE = "wasted-file"
FINGERPRINT = "imagescope/v1"

# rule id → (name, short description, help)
RULES: dict[str, tuple[str, str, str]] = {
    "hidden-waste": (
        "HiddenWaste", "A step writes files a later step deletes or overwrites",
        ("Bytes written in one layer and hidden by a later one still ship with every pull. "
        "Delete them in the same RUN that writes them, or build them in another stage and "
        "copy only the result.")),
    "identical-rewrite": (
        "IdenticalRewrite", "A step rewrites files without changing their content",
        ("chmod -R, chown -R or touch copy every file they touch into a new layer. Set modes "
        "and owners where the files are written (COPY --chown, COPY --chmod).")),
    "package-cache": (
        "PackageCache", "A package manager's cache ships in the image",
        ("Clean the cache in the same RUN that fills it (apt-get clean, rm -rf "
        "/var/lib/apt/lists/*, pip --no-cache-dir, npm cache clean --force), or use a cache "
        "mount (RUN --mount=type=cache).")),
    "toolchain-files": (
        "ToolchainFiles", "Build tools ship in the final image",
        ("Compilers and headers needed only to build belong in a build stage: copy the built "
        "artefacts into a slim final stage.")),
    "toolchain-packages": (
        "ToolchainPackages", "Build-tool packages are installed in the final image",
        ("Install build-only packages in a build stage, or remove them in the RUN that "
        "installed them.")),
    "build-context": (
        "BuildContext", "Files of the build context leaked into the image",
        ("VCS directories, caches and editor files copied by COPY . ship with the image: list "
        "them in .dockerignore.")),
    "secret": (
        "Secret", "A secret is in the final image",
        "Remove it and rotate it; pass secrets with RUN --mount=type=secret instead."),
    "secret-in-lower-layer": (
        "SecretInLowerLayer", "A secret was deleted but still ships in a lower layer",
        ("Deleting a file in a later step does not remove it from the layer that wrote it: "
        "rotate the secret and pass it with RUN --mount=type=secret.")),
    "docs": (
        "Docs", "Documentation and man pages ship in the image",
        ("Leave out docs (e.g. dpkg path-exclude, --no-install-recommends) or delete them in "
        "the RUN that installs them.")),
    "root-user": (
        "RootUser", "The image runs as root",
        "Add a USER instruction with an unprivileged user before CMD/ENTRYPOINT."),
    "layer-count": (
        "LayerCount", "The image has many layers",
        ("Merge consecutive RUN steps; every layer costs a download request and overlay "
        "lookups.")),
    WASTE_RULE: (
        "WastedFile", "A large file is hidden by a later step and still ships",
        ("The file's bytes stay in the layer that wrote it. Do not write it, delete it in the "
        "same step, or produce it in a build stage.")),
}
_SUBJECT_IS_STEPS = frozenset({Category.HIDDEN_WASTE, Category.IDENTICAL_REWRITE})
_LEVELS = {Severity.HIGH: "error", Severity.MEDIUM: "warning", Severity.LOW: "note",
           Severity.INFO: "note"}


def render(report: Report) -> str:
    return jsontext.dumps(document(report)) + "\n"


def document(report: Report) -> dict[str, Any]:
    """The SARIF log of `report`."""
    rule_ids = sorted(RULES)
    index = {rule: position for position, rule in enumerate(rule_ids)}
    results = [_finding_result(report, finding, index) for finding in report.findings]
    results += [_waste_result(report, wasted, index) for wasted in report.wasted_files
                if wasted.bytes >= WASTE_RESULT_BYTES]
    return {
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "imagescope",
                "version": __version__,
                "informationUri": "https://pypi.org/project/imagescope/",
                "rules": [_rule(rule) for rule in rule_ids],
            }},
            "results": results,
            "properties": {"image": report.image.reference, "imageId": report.image.image_id,
                           "wastedBytes": report.summary.wasted_bytes,
                           "totalBytes": report.summary.total_bytes},
        }],
    }


def _rule(rule: str) -> dict[str, Any]:
    name, short, help_text = RULES[rule]
    return {"id": rule, "name": name, "shortDescription": {"text": short},
            "fullDescription": {"text": help_text},
            "help": {"text": help_text, "markdown": f"**{short}.** {help_text}"},
            "properties": {"tags": ["container", "image-size"]}}


def _finding_result(report: Report, finding: Finding, index: dict[str, int]) -> dict[str, Any]:
    rule = finding.rule if finding.rule in RULES else WASTE_RULE
    message = finding.title + (f" ({finding.bytes:,} bytes, {size(finding.bytes)})"
                               if finding.bytes else "")
    paths = sorted({ref.path for ref in finding.files})
    # steps by their text, not their numbers (a step inserted renumbers those below it)
    steps = [report.layers[n].instruction or "" for n in finding.layers
             if 0 <= n < len(report.layers)]
    subject = "" if finding.category in _SUBJECT_IS_STEPS else finding.subject
    return {
        "ruleId": rule, "ruleIndex": index[rule], "level": _LEVELS[finding.severity],
        "message": {"text": message},
        "locations": [_location(report, finding.layers)],
        "partialFingerprints": {FINGERPRINT: _fingerprint(rule, subject, *steps, *paths)},
        "properties": {"bytes": finding.bytes, "layers": list(finding.layers),
                       "files": len(finding.files), "subject": finding.subject},
    }


def _waste_result(report: Report, wasted: WastedFile, index: dict[str, int]) -> dict[str, Any]:
    return {
        "ruleId": WASTE_RULE, "ruleIndex": index[WASTE_RULE], "level": "warning",
        "message": {"text": f"{wasted.path}: {wasted.bytes:,} bytes ({size(wasted.bytes)}) "
                            f"written by step {wasted.layer_index}, {wasted.how.value} by step "
                            f"{wasted.hidden_by_layer}, still shipped"},
        "locations": [_location(report, (wasted.layer_index,))],
        "partialFingerprints": {FINGERPRINT: _fingerprint(
            WASTE_RULE, wasted.path, report.layers[wasted.layer_index].instruction or "")},
        "properties": {"bytes": wasted.bytes, "layers": [wasted.layer_index,
                                                         wasted.hidden_by_layer],
                       "how": wasted.how.value},
    }


def _location(report: Report, layers: Sequence[int]) -> dict[str, Any]:
    mapped = report.dockerfile
    uri = _relative(mapped.path) if mapped is not None else "Dockerfile"
    physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
    source = _own_source(report, layers)
    if source is not None:
        physical["region"] = {"startLine": source.instruction.start_line,
                              "endLine": source.instruction.end_line}
    return {"physicalLocation": physical}


def _own_source(report: Report, layers: Sequence[int]) -> LayerSource | None:
    mapped = report.dockerfile
    if mapped is None:
        return None
    for layer in layers:
        source = mapped.sources[layer] if 0 <= layer < len(mapped.sources) else None
        if source is not None and not source.base:
            return source
    return None


def _relative(path: str) -> str:
    """`path` relative to the working directory (code scanning wants the repository's
    relative paths) when it is below it; else as given."""
    relative = os.path.relpath(os.path.abspath(path))
    return path if relative.startswith("..") else relative.replace(os.sep, "/")


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode("utf-8", "surrogateescape")).hexdigest()
