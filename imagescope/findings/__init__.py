"""Finding rules: one module per rule family, each `find(view) -> list[Finding]` (pure)."""

from __future__ import annotations

from collections.abc import Callable

from imagescope.findings import caches, config, context, docs, hidden, secrets, toolchain
from imagescope.findings.context import dockerignore_lines
from imagescope.findings.model import Category, FileRef, Finding, Severity
from imagescope.findings.view import ImageView

Rule = Callable[[ImageView], list[Finding]]

RULES: tuple[Rule, ...] = (
    hidden.find,
    caches.find,
    toolchain.find,
    context.find,
    secrets.find,
    docs.find,
    config.find,
)

_SEVERITY_RANK = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2, Severity.INFO: 3}


def run(view: ImageView) -> list[Finding]:
    """Every rule's findings, most severe first, then largest, then by rule and subject."""
    findings = [finding for rule in RULES for finding in rule(view)]
    findings.sort(key=lambda f: (_SEVERITY_RANK[f.severity], -f.bytes, f.rule, f.subject,
                                 f.layers))
    return findings


__all__ = ["RULES", "Category", "FileRef", "Finding", "ImageView", "Severity",
           "dockerignore_lines", "run"]
