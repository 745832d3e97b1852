"""Finding rules: one module per rule family, each `find(view) -> list[Finding]` (pure).

The rule modules load on first use (`rules`, `run`): a report read back from the cache needs
only the model, not the compiled rule tables.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from imagescope.analysis.findings.model import Category, FileRef, Finding, Severity

if TYPE_CHECKING:
    from imagescope.analysis.findings.view import ImageView

Rule = Callable[["ImageView"], list[Finding]]

_SEVERITY_RANK = {Severity.HIGH: 0, Severity.MEDIUM: 1, Severity.LOW: 2, Severity.INFO: 3}


def rules() -> tuple[Rule, ...]:
    """Every rule family's `find`, in the order they run."""
    from imagescope.analysis.findings import (
        caches,
        config,
        context,
        docs,
        hidden,
        secrets,
        toolchain,
    )

    return (hidden.find, caches.find, toolchain.find, context.find, secrets.find, docs.find,
            config.find)


def run(view: ImageView) -> list[Finding]:
    """Every rule's findings, most severe first, then largest, then by rule and subject."""
    findings = [finding for rule in rules() for finding in rule(view)]
    findings.sort(key=lambda f: (_SEVERITY_RANK[f.severity], -f.bytes, f.rule, f.subject,
                                 f.layers))
    return findings


def dockerignore_lines(findings: Iterable[Finding]) -> list[str]:
    """The `.dockerignore` lines for the build-context leaks among `findings` (see `context`)."""
    from imagescope.analysis.findings import context

    return context.dockerignore_lines(findings)


__all__ = ["Category", "FileRef", "Finding", "Rule", "Severity", "dockerignore_lines", "rules",
           "run"]
