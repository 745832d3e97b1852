"""Documentation, man pages, info pages and locales in the final image (pure).

Files below the directories in the table are read by people, not programs: removable (dpkg
`path-exclude`, `--no-install-recommends`, a slimmer base). Kept: the C.UTF-8 locale programs
fall back to. Packages' copyright files under /usr/share/doc count as documentation; a dpkg
`path-exclude` recipe usually keeps them with `path-include /usr/share/doc/*/copyright`.
"""

from __future__ import annotations

from imagescope.analysis.findings.model import Category, Finding, Severity
from imagescope.analysis.findings.tables import PathTable, grouped_findings
from imagescope.analysis.findings.view import ImageView

RULE = "docs"

DOCS: tuple[tuple[str, str], ...] = (
    ("doc", "usr/share/doc/**"),
    ("doc", "usr/local/share/doc/**"),
    ("man", "usr/share/man/**"),
    ("man", "usr/local/share/man/**"),
    ("info", "usr/share/info/**"),
    ("locale", "usr/share/locale/**"),
    ("locale", "usr/lib/locale/**"),
)
NOT_DOCS: tuple[str, ...] = (
    "usr/lib/locale/C.utf8/**",
    "usr/lib/locale/C.UTF-8/**",
)

LABELS: dict[str, str] = {
    "doc": "documentation (/usr/share/doc)",
    "man": "man pages (/usr/share/man)",
    "info": "info pages (/usr/share/info)",
    "locale": "locales and translations (/usr/share/locale, /usr/lib/locale)",
}

_TABLE = PathTable(DOCS, exclude=NOT_DOCS)


def find(view: ImageView) -> list[Finding]:
    """One finding per kind of documentation holding bytes in the final image."""
    return grouped_findings(view, _TABLE, rule=RULE, category=Category.DOCS, labels=LABELS,
                            severity=lambda nbytes: Severity.LOW)
